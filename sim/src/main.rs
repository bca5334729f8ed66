//! `jujusim`: a local Juju 3.6 model that runs real charms (see `sim/README.md`).
//!
//! The binary is multi-call: started under a hook-tool name (`relation-get`, `status-set`, ...)
//! it is that tool, talking to the simulator over the model's unix socket; otherwise it is the
//! `jujusim` command line. The tool check comes first, before any other work, so tool calls
//! stay fast.

mod agent;
mod charm;
mod cli;
mod driver;
mod error;
mod juju_cli;
mod lifecycle;
mod model;
mod ops;
mod overlay;
mod procs;
mod render;
mod runner;
mod scheduler;
mod schema;
mod session;
mod timeline;
mod tools;
mod util;

fn main() {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if tools::is_tool(&name) {
        std::process::exit(tools::client::main(&name));
    }
    if name == "juju" {
        let args = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        std::process::exit(juju_cli::main(args));
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(cli::main(args));
}
