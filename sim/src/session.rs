//! A command's hold on a model: the model's lock, the world shared with the hook-tool server,
//! and the driver that runs hooks. Read-only commands read the saved world without the lock.

use std::fs;
use std::path::Path;
use std::sync::MutexGuard;
use std::time::Duration;

use crate::cli::Global;
use crate::driver::{Driver, Options};
use crate::error::{Result, SimError};
use crate::model::{ModelLock, Paths, World};
use crate::tools::server::{self, Core, Server};

/// A mutating command's hold on a model: the lock, the world shared with the tool server, and
/// the driver.
pub struct Session {
    pub paths: Paths,
    pub shared: server::Shared,
    pub driver: Driver,
    pub no_wait: bool,
    // Dropped last: the server stops before the lock is released.
    _server: Server,
    _lock: ModelLock,
}

fn ensure_tools(paths: &Paths) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| SimError::Failed(format!("cannot find the jujusim executable: {e}")))?;
    let dir = paths.tools();
    fs::create_dir_all(&dir).map_err(|e| SimError::io("cannot create", &dir, e))?;
    let probe = dir.join(crate::tools::TOOL_NAMES[0]);
    if fs::read_link(&probe).ok().as_deref() == Some(exe.as_path()) {
        return Ok(());
    }
    for name in crate::tools::TOOL_NAMES {
        let link = dir.join(name);
        let _ = fs::remove_file(&link);
        if std::os::unix::fs::symlink(&exe, &link).is_err() {
            // Hard link, else a copy.
            if fs::hard_link(&exe, &link).is_err() {
                fs::copy(&exe, &link).map_err(|e| SimError::io("cannot install tool", &link, e))?;
            }
        }
    }
    Ok(())
}

/// Temporary files a crash left behind while writing model.json (we hold the lock: nobody is
/// writing one now).
fn remove_torn_temp_files(paths: &Paths) {
    if let Ok(entries) = fs::read_dir(&paths.root) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn model_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if name.is_empty() {
        "default".into()
    } else {
        name
    }
}

impl Session {
    /// Opens an existing model (or creates it when `create`), taking its lock.
    pub fn open(g: &Global, create: bool) -> Result<Session> {
        let paths = Paths::new(g.model.clone());
        let exists = paths.model_json().is_file();
        if !exists && !create {
            World::load(&paths)?;
        }
        fs::create_dir_all(&paths.root)
            .map_err(|e| SimError::io("cannot create", &paths.root, e))?;
        let lock = ModelLock::acquire(&paths, Duration::from_secs(900))?;
        Session::open_locked(g, lock)
    }

    /// Opens the model whose lock the caller holds.
    pub fn open_locked(g: &Global, lock: ModelLock) -> Result<Session> {
        let paths = Paths::new(g.model.clone());
        let mut world = if paths.model_json().is_file() {
            let w = World::load(&paths)?;
            match loopback::Range::reopen_for_dir(w.range.0, w.range.1, &paths.root) {
                Ok(r) => r.keep(),
                Err(e) => eprintln!("jujusim: warning: address range of this model: {e}"),
            }
            w
        } else {
            let range = loopback::Range::claim_for_dir(&paths.root)
                .map_err(|e| SimError::Failed(format!("cannot claim a loopback range: {e}")))?;
            let octets = range.octets();
            range.keep();
            let w = World::new(&model_name(&paths.root), octets);
            w.save(&paths)?;
            w
        };
        ensure_tools(&paths)?;
        remove_torn_temp_files(&paths);
        world.commands += 1;
        let socket = paths.socket(&world.uuid);
        let shared = server::shared(Core::new(world));
        let srv = Server::start(&socket, shared.clone())?;
        let driver = Driver::new(
            shared.clone(),
            paths.clone(),
            Options {
                hook_timeout: g.hook_timeout,
                seed: g.seed,
                max_hooks: g.max_hooks,
                serial: g.serial,
                pause: g.pause.clone(),
                yielding: false,
            },
        );
        Ok(Session {
            paths,
            shared,
            driver,
            no_wait: g.no_wait,
            _server: srv,
            _lock: lock,
        })
    }

    pub fn core(&self) -> MutexGuard<'_, Core> {
        server::lock(&self.shared)
    }

    /// Saves the world, then runs hooks until idle (unless --no-wait).
    pub fn commit(&mut self) -> Result<usize> {
        self.core().world.save(&self.paths)?;
        if self.no_wait {
            return Ok(0);
        }
        let n = self.driver.run_until_idle();
        self.report();
        n
    }

    /// Prints what went wrong in hooks (they do not fail the command, as in Juju).
    pub fn report(&mut self) {
        for n in self.driver.notes.drain(..) {
            let unit = n.split(':').next().unwrap_or_default().to_string();
            eprintln!("jujusim: {n}; see `jujusim log --unit {unit}`");
        }
    }
}

/// Reads a model without taking its lock (read-only commands).
pub fn read_world(g: &Global) -> Result<(Paths, World)> {
    let paths = Paths::new(g.model.clone());
    let w = World::load(&paths)?;
    Ok((paths, w))
}
