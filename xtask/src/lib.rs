//! Packing the charm: the file layout of a `.charm` and the hook entries metadata.yaml implies.
//!
//! A `.charm` is a zip whose root is the charm directory; unix modes are kept so `dispatch`,
//! the hook entries and `bin/zookeeper-charm` stay executable.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where the binary lives inside the charm; `dispatch` ends with `exec ./<this>`.
pub const CHARM_BINARY: &str = "bin/zookeeper-charm";

/// Hooks every charm can receive, whatever its metadata says.
const UNIT_HOOKS: &[&str] = &[
    "install",
    "start",
    "stop",
    "remove",
    "config-changed",
    "update-status",
    "upgrade-charm",
    "leader-elected",
    "leader-settings-changed",
    "secret-changed",
    "secret-rotate",
    "secret-expired",
    "secret-remove",
];

const RELATION_PHASES: &[&str] = &["created", "joined", "changed", "departed", "broken"];

#[derive(Debug)]
pub struct PackError(pub String);

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PackError {}

fn err(msg: impl Into<String>) -> PackError {
    PackError(msg.into())
}

fn io(path: &Path, e: std::io::Error) -> PackError {
    err(format!("{}: {e}", path.display()))
}

/// Every hook name metadata.yaml implies: the unit hooks, five per relation endpoint, two per storage.
pub fn expected_hooks(metadata_yaml: &str) -> Result<BTreeSet<String>, PackError> {
    let meta: serde_yaml::Value =
        serde_yaml::from_str(metadata_yaml).map_err(|e| err(format!("metadata.yaml: {e}")))?;
    let mut hooks: BTreeSet<String> = UNIT_HOOKS.iter().map(|s| s.to_string()).collect();
    for section in ["peers", "provides", "requires"] {
        if let Some(map) = meta.get(section).and_then(|v| v.as_mapping()) {
            for ep in map.keys().filter_map(|k| k.as_str()) {
                for p in RELATION_PHASES {
                    hooks.insert(format!("{ep}-relation-{p}"));
                }
            }
        }
    }
    if let Some(map) = meta.get("storage").and_then(|v| v.as_mapping()) {
        for name in map.keys().filter_map(|k| k.as_str()) {
            hooks.insert(format!("{name}-storage-attached"));
            hooks.insert(format!("{name}-storage-detaching"));
        }
    }
    Ok(hooks)
}

/// Checks the repository's `hooks/` against metadata.yaml and returns the entries.
pub fn check_hooks(root: &Path) -> Result<Vec<PathBuf>, PackError> {
    let meta_path = root.join("metadata.yaml");
    let meta = fs::read_to_string(&meta_path).map_err(|e| io(&meta_path, e))?;
    let want = expected_hooks(&meta)?;
    let dir = root.join("hooks");
    let mut have = BTreeSet::new();
    for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
        let entry = entry.map_err(|e| io(&dir, e))?;
        have.insert(entry.file_name().to_string_lossy().into_owned());
    }
    let missing: Vec<_> = want.difference(&have).cloned().collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "hooks/ lacks entries for: {}",
            missing.join(", ")
        )));
    }
    Ok(want.into_iter().map(|h| dir.join(h)).collect())
}

/// The files of the charm: (path inside the charm, source on disk, executable).
pub fn charm_files(root: &Path, binary: &Path) -> Result<Vec<(String, PathBuf, bool)>, PackError> {
    let mut files = vec![
        (
            "metadata.yaml".to_string(),
            root.join("metadata.yaml"),
            false,
        ),
        (
            "config.yaml".to_string(),
            root.join("charm/config.yaml"),
            false,
        ),
        (
            "actions.yaml".to_string(),
            root.join("charm/actions.yaml"),
            false,
        ),
        ("dispatch".to_string(), root.join("charm/dispatch"), true),
        ("README.md".to_string(), root.join("README.md"), false),
        (CHARM_BINARY.to_string(), binary.to_path_buf(), true),
    ];
    for hook in check_hooks(root)? {
        let name = hook
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((format!("hooks/{name}"), hook, true));
    }
    for (_, src, _) in &files {
        if !src.is_file() {
            return Err(err(format!("{} is missing", src.display())));
        }
    }
    Ok(files)
}

/// `manifest.yaml` as charmcraft writes it; Juju 3 reads `bases` to pick a local charm's base.
pub fn manifest() -> String {
    "charmcraft-version: xtask\nanalysis:\n  attributes:\n  - name: language\n    result: rust\n  - name: framework\n    result: zookeeper-charm\nbases:\n- name: ubuntu\n  channel: '22.04'\n  architectures:\n  - amd64\n- name: ubuntu\n  channel: '24.04'\n  architectures:\n  - amd64\n".to_string()
}

/// What distinguishes one pack of the charm from another: its release (the `version` file,
/// which the charm publishes and Juju shows) and the ZooKeeper build it carries.
#[derive(Clone, Debug, Default)]
pub struct Pin {
    /// Appended to the crate version in `version` (`0.1.0+<label>`).
    pub label: Option<String>,
    /// A Debian version and the directory holding its `zookeeper.jar` and
    /// `zookeeper-jute.jar`: packed under `workload/` with `workload/build` naming it.
    pub workload: Option<(String, PathBuf)>,
}

/// The jars a pinned build carries (the rest of the class path is the distribution's).
pub const WORKLOAD_JARS: &[&str] = &["zookeeper.jar", "zookeeper-jute.jar"];

impl Pin {
    /// The release this pack says it is.
    pub fn release(&self) -> String {
        let base = env!("CARGO_PKG_VERSION");
        match (&self.label, &self.workload) {
            (Some(l), _) => format!("{base}+{l}"),
            (None, Some((v, _))) => format!("{base}+{v}"),
            (None, None) => base.to_string(),
        }
    }

    fn entries(&self) -> Result<Vec<(String, Vec<u8>, u32)>, PackError> {
        let mut out = vec![(
            "version".to_string(),
            format!("{}\n", self.release()).into_bytes(),
            0o644,
        )];
        if let Some((version, dir)) = &self.workload {
            out.push((
                "workload/build".into(),
                format!("{version}\n").into_bytes(),
                0o644,
            ));
            for jar in WORKLOAD_JARS {
                let src = dir.join(jar);
                let data = fs::read(&src).map_err(|e| io(&src, e))?;
                out.push((format!("workload/{jar}"), data, 0o644));
            }
        }
        Ok(out)
    }
}

/// Writes the charm directory (`out_dir`) and the zip (`out_zip`).
pub fn write_charm(
    root: &Path,
    binary: &Path,
    out_dir: &Path,
    out_zip: &Path,
) -> Result<(), PackError> {
    write_charm_pinned(root, binary, out_dir, out_zip, &Pin::default())
}

/// [`write_charm`] with a release label and a pinned ZooKeeper build.
pub fn write_charm_pinned(
    root: &Path,
    binary: &Path,
    out_dir: &Path,
    out_zip: &Path,
    pin: &Pin,
) -> Result<(), PackError> {
    use std::os::unix::fs::PermissionsExt;
    let files = charm_files(root, binary)?;
    if out_dir.exists() {
        fs::remove_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    }
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for (name, src, exec) in files {
        let mut data = Vec::new();
        fs::File::open(&src)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| io(&src, e))?;
        entries.push((name, data, if exec { 0o755 } else { 0o644 }));
    }
    entries.push(("manifest.yaml".into(), manifest().into_bytes(), 0o644));
    entries.extend(pin.entries()?);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, data, mode) in &entries {
        let path = out_dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        fs::write(&path, data).map_err(|e| io(&path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).map_err(|e| io(&path, e))?;
    }
    if let Some(parent) = out_zip.parent() {
        fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = tempfile::NamedTempFile::new_in(out_zip.parent().unwrap_or(Path::new(".")))
        .map_err(|e| io(out_zip, e))?;
    let mut zip = zip::ZipWriter::new(tmp.reopen().map_err(|e| io(out_zip, e))?);
    let zerr = |e: zip::result::ZipError| err(format!("{}: {e}", out_zip.display()));
    for (name, data, mode) in &entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        zip.start_file(name.as_str(), opts).map_err(zerr)?;
        zip.write_all(data).map_err(|e| io(out_zip, e))?;
    }
    zip.finish().map_err(zerr)?;
    tmp.persist(out_zip).map_err(|e| io(out_zip, e.error))?;
    Ok(())
}

/// Unpacks a `.charm` into `dir`, keeping unix modes.
pub fn unpack(charm: &Path, dir: &Path) -> Result<(), PackError> {
    let file = fs::File::open(charm).map_err(|e| io(charm, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| err(format!("{}: {e}", charm.display())))?;
    zip.extract(dir)
        .map_err(|e| err(format!("{}: {e}", charm.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_implied_by_metadata() {
        let hooks = expected_hooks(
            "name: x\npeers:\n  cluster:\n    interface: c\nprovides:\n  zookeeper:\n    interface: zookeeper\nstorage:\n  data:\n    type: filesystem\n",
        )
        .unwrap();
        for h in [
            "install",
            "cluster-relation-created",
            "zookeeper-relation-broken",
            "data-storage-attached",
            "data-storage-detaching",
            "leader-settings-changed",
        ] {
            assert!(hooks.contains(h), "{h}");
        }
        assert_eq!(hooks.len(), UNIT_HOOKS.len() + 10 + 2);
    }

    #[test]
    fn repository_hooks_match_metadata() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let hooks = check_hooks(root).unwrap();
        assert_eq!(hooks.len(), 50);
        for h in hooks {
            let text = fs::read_to_string(&h).unwrap();
            assert!(
                text.trim_end().ends_with("exec ./dispatch"),
                "{}",
                h.display()
            );
        }
    }
}
