//! Local files the charm keeps (its state, the deferred queue, the server's files): one rule for
//! any of them that cannot be used (unreadable, garbage, a directory in its place).

use std::path::{Path, PathBuf};

/// Moves `path` aside (`<name>.corrupt-<nanoseconds>`, kept for a look) so that a good one can be
/// written in its place; if it cannot be moved, removes it. Says what it did, for the log.
pub fn move_aside(path: &Path) -> (Option<PathBuf>, String) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".corrupt-{stamp}"));
    let to = path.with_file_name(name);
    match std::fs::rename(path, &to) {
        Ok(()) => {
            let said = format!("moved it to {}", to.display());
            (Some(to), said)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
            (None, format!("could not move it aside ({e}), removed it"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state.json");
        std::fs::write(&f, b"garbage").unwrap();
        let (to, said) = move_aside(&f);
        assert!(
            !f.exists() && to.as_ref().is_some_and(|t| t.exists()),
            "{said}"
        );
        std::fs::create_dir(&f).unwrap();
        std::fs::write(f.join("inside"), b"x").unwrap();
        let (to2, _) = move_aside(&f);
        assert!(!f.exists() && to2.is_some_and(|t| t.join("inside").exists()));
        assert_ne!(to, None);
    }
}
