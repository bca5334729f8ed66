//! Private loopback ranges: a `127.A.B.0/24` per test ensemble or jujusim model, so that servers
//! on the standard ports (2181/2888/3888) never collide when tests and models run in parallel.
//!
//! A claim is a file `<CLAIM_DIR>/127.A.B` created exclusively (`O_CREAT|O_EXCL`), holding one line:
//! - `pid <N>`: owned by a process (a test); valid while that process lives; released on drop;
//! - `dir <ABSOLUTE PATH>`: owned by a directory (a jujusim model); valid while the directory
//!   exists; released explicitly (`destroy`).
//!
//! A stale claim (dead pid, missing directory) is removed by whoever finds it. Only 127.0.0.0/8 is
//! ever used. `A` ranges over 2..=254 (127.0.x and 127.1.x are left to everything else).

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where claims live. Override with `ZK_LOOPBACK_CLAIMS` (tests of this crate do).
pub fn claim_dir() -> PathBuf {
    std::env::var_os("ZK_LOOPBACK_CLAIMS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/zk-charm-loopback"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Pid(u32),
    Dir(PathBuf),
}

impl Owner {
    fn line(&self) -> String {
        match self {
            Owner::Pid(p) => format!("pid {p}\n"),
            Owner::Dir(d) => format!("dir {}\n", d.display()),
        }
    }
    fn parse(s: &str) -> Option<Owner> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("pid ") {
            return p.parse().ok().map(Owner::Pid);
        }
        s.strip_prefix("dir ").map(|d| Owner::Dir(PathBuf::from(d)))
    }
    fn alive(&self) -> bool {
        match self {
            // SAFETY: kill with signal 0 only checks for existence.
            Owner::Pid(p) => unsafe {
                libc::kill(*p as libc::pid_t, 0) == 0 || *libc::__errno_location() == libc::EPERM
            },
            Owner::Dir(d) => d.is_dir(),
        }
    }
}

/// A claimed `127.A.B.0/24`.
#[derive(Debug)]
pub struct Range {
    a: u8,
    b: u8,
    file: PathBuf,
    owner: Owner,
}

const A_MIN: u32 = 2;
const A_COUNT: u32 = 253;
const SLOTS: u32 = A_COUNT * 256;

impl Range {
    /// Claims a free range for the lifetime of this process (released when dropped).
    pub fn claim_for_process() -> io::Result<Range> {
        Self::claim(Owner::Pid(std::process::id()))
    }

    /// Claims a free range for as long as `dir` exists (released by [`Range::release`]).
    pub fn claim_for_dir(dir: &Path) -> io::Result<Range> {
        Self::claim(Owner::Dir(fs::canonicalize(dir)?))
    }

    /// Re-opens a range this directory claimed before (a later CLI call of the same model).
    pub fn reopen_for_dir(a: u8, b: u8, dir: &Path) -> io::Result<Range> {
        let owner = Owner::Dir(fs::canonicalize(dir)?);
        let file = claim_dir().join(format!("127.{a}.{b}"));
        match fs::read_to_string(&file)
            .ok()
            .and_then(|s| Owner::parse(&s))
        {
            Some(o) if o == owner => Ok(Range { a, b, file, owner }),
            Some(o) => Err(io::Error::other(format!(
                "range 127.{a}.{b}.0/24 is claimed by {}",
                o.line().trim()
            ))),
            None => {
                // The claim file vanished (e.g. /tmp was cleaned): claim it again if free.
                Self::try_create(&file, &owner)?
                    .then_some(())
                    .ok_or_else(|| {
                        io::Error::other(format!("range 127.{a}.{b}.0/24 was taken over"))
                    })?;
                Ok(Range { a, b, file, owner })
            }
        }
    }

    fn try_create(file: &Path, owner: &Owner) -> io::Result<bool> {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
        {
            Ok(mut f) => {
                f.write_all(owner.line().as_bytes())?;
                f.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn claim(owner: Owner) -> io::Result<Range> {
        let dir = claim_dir();
        fs::create_dir_all(&dir)?;
        // Start at a pseudo-random slot so parallel claimers rarely race for the same file.
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        let start = (seed.wrapping_mul(6364136223846793005) >> 33) as u32 % SLOTS;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let (a, b) = ((A_MIN + slot / 256) as u8, (slot % 256) as u8);
            let file = dir.join(format!("127.{a}.{b}"));
            if Self::try_create(&file, &owner)? {
                return Ok(Range { a, b, file, owner });
            }
            // Taken: is the owner still there? If not, clear the stale claim and try once more.
            let stale = match fs::read_to_string(&file) {
                Ok(s) => Owner::parse(&s).map(|o| !o.alive()).unwrap_or(true),
                Err(_) => false,
            };
            if stale && fs::remove_file(&file).is_ok() && Self::try_create(&file, &owner)? {
                return Ok(Range { a, b, file, owner });
            }
        }
        Err(io::Error::other("no free 127.A.B.0/24 loopback range left"))
    }

    pub fn octets(&self) -> (u8, u8) {
        (self.a, self.b)
    }

    /// `127.A.B.host`.
    pub fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.a, self.b, host)
    }

    /// Gives the range back (for directory claims; process claims also release on drop).
    pub fn release(self) {
        drop(self)
    }

    /// Keeps a directory claim on disk when this value is dropped (the model lives on).
    pub fn keep(mut self) {
        self.owner = Owner::Pid(0);
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        if self.owner == Owner::Pid(0) {
            return;
        }
        // Only remove the file if it is still ours.
        if fs::read_to_string(&self.file)
            .ok()
            .and_then(|s| Owner::parse(&s))
            .as_ref()
            == Some(&self.owner)
        {
            let _ = fs::remove_file(&self.file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test function: the claim directory is process-global (an env var).
    #[test]
    fn claims_are_exclusive_stale_ones_are_reused_and_drop_releases() {
        let tmp = tempfile::tempdir().unwrap();
        std::env::set_var("ZK_LOOPBACK_CLAIMS", tmp.path().join("claims"));

        let r1 = Range::claim_for_process().unwrap();
        let r2 = Range::claim_for_process().unwrap();
        assert_ne!(r1.octets(), r2.octets());
        assert!(r1.addr(11).is_loopback());
        let (a, b) = r1.octets();
        let f1 = claim_dir().join(format!("127.{a}.{b}"));
        assert_eq!(
            fs::read_to_string(&f1).unwrap(),
            format!("pid {}\n", std::process::id())
        );
        drop(r1);
        assert!(!f1.exists());

        // A directory claim survives drop with keep(), can be reopened, and is released after.
        let model = tmp.path().join("model");
        fs::create_dir(&model).unwrap();
        let r = Range::claim_for_dir(&model).unwrap();
        let (a, b) = r.octets();
        r.keep();
        let again = Range::reopen_for_dir(a, b, &model).unwrap();
        assert_eq!(again.octets(), (a, b));
        let other = tmp.path().join("other");
        fs::create_dir(&other).unwrap();
        assert!(Range::reopen_for_dir(a, b, &other).is_err());
        again.release();
        assert!(!claim_dir().join(format!("127.{a}.{b}")).exists());

        // Fill every slot with stale claims (a dead pid): claiming still succeeds by reusing one.
        let dead = Owner::Dir(tmp.path().join("gone")).line();
        for slot in 0..SLOTS {
            let (a, b) = ((A_MIN + slot / 256) as u8, (slot % 256) as u8);
            let f = claim_dir().join(format!("127.{a}.{b}"));
            if !f.exists() {
                fs::write(f, &dead).unwrap();
            }
        }
        let r3 = Range::claim_for_process().unwrap();
        assert_ne!(r3.octets(), r2.octets());
    }
}
