//! A Juju charm for Apache ZooKeeper.
//!
//! One binary serves every hook and action. The pipeline of a dispatch:
//! environment -> [`juju::Context`] (pure) -> [`engine::dispatch`] (replay deferred events, then the
//! current one; decide deferral in one place) -> [`charm::ZooKeeperCharm`] (read Juju state once,
//! reconcile, write) -> exit code.
//!
//! Layout: the `charm-engine` crate (`engine/`, re-exported here as `juju`, `engine`, `logging`,
//! `secret`, `files`) is the only code that runs hook tools and the only code that orders and
//! defers events; it knows nothing about ZooKeeper.

pub mod charm;
pub mod clients;
pub mod engine;
pub use charm_engine::files;
#[cfg(feature = "harness")]
pub mod harness;
pub use charm_engine::juju;
pub use charm_engine::logging;
pub mod quorum;
pub mod restart;
pub use charm_engine::secret;
pub mod state;
pub mod tls;
pub mod upgrade;
pub mod workload;
pub mod zk;

use std::process::ExitCode;

use juju::{Context, ContextError};

pub use charm_engine::unix_now;

/// The process entry point: parse the context, run one dispatch, map the result to an exit code.
/// Exit 0 commits the hook's changes in Juju; non-zero drops them and puts the unit in error, so
/// it is used only for real failures.
pub fn main_entry() -> ExitCode {
    let env = charm_engine::environment();
    let argv0 = std::env::args().next();
    let ctx = match Context::from_env(&env, argv0.as_deref()) {
        Ok(ctx) => ctx,
        Err(e @ ContextError::NotUnderJuju) => {
            eprintln!("zookeeper-charm: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("zookeeper-charm: cannot read the hook context: {e}");
            return ExitCode::from(1);
        }
    };
    logging::init(env.get("ZOOKEEPER_CHARM_DEBUG").map(String::as_str) == Some("1"));
    let tools = juju::process::ProcessTools::new();
    let now = unix_now();
    let queue = engine::load_queue(&ctx.charm_dir);
    let workload = workload::from_env(&env);
    let mut ensemble = zk::admin::EnsembleAdmin::new(workload.flavor());
    let mut opts = charm::Options::from_env(&env);
    opts.now = now;
    let cached = charm::cached_tools(&tools, &ctx);
    let mut charm =
        charm::ZooKeeperCharm::new(&ctx, &cached, workload.as_ref(), &mut ensemble, opts);
    let result = engine::dispatch(&mut charm, &ctx.event, queue, now);
    match result {
        Ok(_) => {
            tracing::debug!(tool_calls = tools.calls(), "{} done", ctx.event);
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{} failed: {e}", ctx.event);
            ExitCode::from(1)
        }
    }
}

/// Helpers for the crate's own tests.
#[cfg(test)]
pub(crate) mod testutil {
    /// xorshift64*: deterministic per seed, no dependency.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        }
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }
}
