//! Charms on disk: reading `metadata.yaml` / `config.yaml` / `actions.yaml` (or `charmcraft.yaml`),
//! unpacking `.charm` zips and copying charm directories (unix modes and symlinks kept).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::error::{Result, SimError};
use crate::fail;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Peer,
    Provider,
    Requirer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub role: Role,
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageMeta {
    /// `filesystem` or `block`.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigOption {
    /// `string`, `int`, `float`, `boolean` or `secret`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    #[serde(default)]
    pub description: String,
    /// The parameter schema as a JSON-schema object (`type: object`, `properties`, `required`,
    /// `additionalProperties`).
    pub schema: Value,
}

/// Everything the simulator needs to know about a charm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub name: String,
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    pub extra_bindings: Vec<String>,
    #[serde(default)]
    pub storage: BTreeMap<String, StorageMeta>,
    #[serde(default)]
    pub options: BTreeMap<String, ConfigOption>,
    #[serde(default)]
    pub actions: BTreeMap<String, ActionSpec>,
    #[serde(default)]
    pub resources: Vec<String>,
}

fn read_yaml(path: &Path) -> Result<Option<Yaml>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|e| SimError::Failed(format!("{}: not valid YAML: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SimError::io("cannot read", path, e)),
    }
}

fn yaml_to_json(y: &Yaml) -> Value {
    serde_json::to_value(y).unwrap_or(Value::Null)
}

fn as_map(y: Option<&Yaml>) -> Vec<(String, Yaml)> {
    match y {
        Some(Yaml::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

impl Meta {
    /// Reads a charm directory: `metadata.yaml`, `config.yaml`, `actions.yaml`, falling back to
    /// (or completing from) `charmcraft.yaml`.
    pub fn read(dir: &Path) -> Result<Meta> {
        let metadata = read_yaml(&dir.join("metadata.yaml"))?;
        let charmcraft = read_yaml(&dir.join("charmcraft.yaml"))?;
        let Some(md) = metadata.as_ref().or(charmcraft.as_ref()) else {
            fail!(
                "{} is not a charm: it has neither metadata.yaml nor charmcraft.yaml",
                dir.display()
            )
        };
        let name = md
            .get("name")
            .and_then(Yaml::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            fail!("{}: the charm metadata has no `name`", dir.display());
        }
        let mut meta = Meta {
            name,
            ..Meta::default()
        };
        for (section, role) in [
            ("peers", Role::Peer),
            ("provides", Role::Provider),
            ("requires", Role::Requirer),
        ] {
            for (ep, spec) in as_map(md.get(section)) {
                let interface = spec
                    .get("interface")
                    .and_then(Yaml::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        SimError::Failed(format!(
                            "{}: endpoint {ep:?} in `{section}` has no interface",
                            dir.display()
                        ))
                    })?;
                let limit = spec.get("limit").and_then(Yaml::as_u64).map(|l| l as u32);
                if meta.endpoints.contains_key(&ep) {
                    fail!("{}: endpoint {ep:?} is declared twice", dir.display());
                }
                meta.endpoints.insert(
                    ep,
                    Endpoint {
                        role,
                        interface,
                        limit,
                    },
                );
            }
        }
        meta.extra_bindings = as_map(md.get("extra-bindings"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for (name, spec) in as_map(md.get("storage")) {
            let kind = spec
                .get("type")
                .and_then(Yaml::as_str)
                .unwrap_or("filesystem")
                .to_string();
            meta.storage.insert(name, StorageMeta { kind });
        }
        meta.resources = as_map(md.get("resources"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();

        let config = read_yaml(&dir.join("config.yaml"))?;
        let options = config
            .as_ref()
            .and_then(|c| c.get("options"))
            .or_else(|| charmcraft.as_ref()?.get("config")?.get("options"));
        for (name, spec) in as_map(options) {
            let kind = spec
                .get("type")
                .and_then(Yaml::as_str)
                .unwrap_or("string")
                .to_string();
            if !matches!(
                kind.as_str(),
                "string" | "int" | "float" | "boolean" | "secret"
            ) {
                fail!(
                    "{}: config option {name:?} has unknown type {kind:?} (string, int, float, boolean, secret)",
                    dir.display()
                );
            }
            let default = spec
                .get("default")
                .map(yaml_to_json)
                .filter(|v| !v.is_null());
            meta.options.insert(name, ConfigOption { kind, default });
        }

        let actions = read_yaml(&dir.join("actions.yaml"))?;
        let actions = actions
            .as_ref()
            .or_else(|| charmcraft.as_ref()?.get("actions"));
        for (name, spec) in as_map(actions) {
            let description = spec
                .get("description")
                .and_then(Yaml::as_str)
                .unwrap_or_default()
                .to_string();
            let mut schema = serde_json::Map::new();
            schema.insert("type".into(), Value::String("object".into()));
            schema.insert(
                "properties".into(),
                spec.get("params")
                    .map(yaml_to_json)
                    .filter(|v| v.is_object())
                    .unwrap_or_else(|| Value::Object(Default::default())),
            );
            if let Some(req) = spec.get("required") {
                schema.insert("required".into(), yaml_to_json(req));
            }
            if let Some(ap) = spec.get("additionalProperties") {
                schema.insert("additionalProperties".into(), yaml_to_json(ap));
            }
            meta.actions.insert(
                name,
                ActionSpec {
                    description,
                    schema: Value::Object(schema),
                },
            );
        }
        Ok(meta)
    }

    /// The metadata of a stub application: one endpoint, nothing else.
    pub fn stub(name: &str, endpoint: &str, role: Role, interface: &str) -> Meta {
        let mut meta = Meta {
            name: name.to_string(),
            ..Meta::default()
        };
        meta.endpoints.insert(
            endpoint.to_string(),
            Endpoint {
                role,
                interface: interface.to_string(),
                limit: None,
            },
        );
        meta
    }

    /// Bindings `network-get` knows: every endpoint and extra binding.
    pub fn has_binding(&self, name: &str) -> bool {
        self.endpoints.contains_key(name) || self.extra_bindings.iter().any(|b| b == name)
    }
}

/// Puts a charm (a directory or a `.charm` zip) at `dest`, which must not exist yet.
pub fn install(src: &Path, dest: &Path) -> Result<()> {
    let md = fs::metadata(src).map_err(|e| SimError::io("cannot read charm", src, e))?;
    if md.is_dir() {
        copy_dir(src, dest)
    } else {
        fs::create_dir_all(dest).map_err(|e| SimError::io("cannot create", dest, e))?;
        let file = fs::File::open(src).map_err(|e| SimError::io("cannot open", src, e))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| {
            SimError::Failed(format!(
                "{}: not a charm directory nor a .charm zip: {e}",
                src.display()
            ))
        })?;
        zip.extract(dest)
            .map_err(|e| SimError::Failed(format!("cannot unpack {}: {e}", src.display())))
    }
}

/// Recursive copy keeping permissions and symlinks.
pub fn copy_dir(src: &Path, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| SimError::io("cannot create", dest, e))?;
    let perms = fs::metadata(src)
        .map_err(|e| SimError::io("cannot read", src, e))?
        .permissions();
    let entries = fs::read_dir(src).map_err(|e| SimError::io("cannot read", src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SimError::io("cannot read", src, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let ft = entry
            .file_type()
            .map_err(|e| SimError::io("cannot read", &from, e))?;
        if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| SimError::io("cannot read", &from, e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| SimError::io("cannot create", &to, e))?;
        } else if ft.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            fs::copy(&from, &to).map_err(|e| SimError::io("cannot copy", &from, e))?;
        }
    }
    fs::set_permissions(dest, perms).map_err(|e| SimError::io("cannot chmod", dest, e))?;
    Ok(())
}

/// What runs for a hook or action: `dispatch`, else `hooks/<name>` / `actions/<name>`, else
/// nothing (a "missing" hook, skipped silently as Juju does).
pub fn entry_point(charm_dir: &Path, dispatch_path: &str) -> Option<std::path::PathBuf> {
    let dispatch = charm_dir.join("dispatch");
    if dispatch.is_file() {
        return Some(dispatch);
    }
    let legacy = charm_dir.join(dispatch_path);
    legacy.is_file().then_some(legacy)
}

/// The charm's manifest: every file, directory and symlink under `dir`, as paths relative to
/// it with `/` separators, sorted (Juju's `ArchiveMembers`: what an upgrade may delete later).
pub fn manifest(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        let here = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let entries = fs::read_dir(&here).map_err(|e| SimError::io("cannot read", &here, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SimError::io("cannot read", &here, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry
                .file_type()
                .map_err(|e| SimError::io("cannot read", &entry.path(), e))?;
            // A name with a line break cannot be written in the manifest: such a file is never
            // deleted by an upgrade (it is still deployed).
            if !path.contains('\n') {
                out.push(path.clone());
            }
            if ft.is_dir() {
                walk(root, &path, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Writes a unit's manifest (one path a line), atomically.
pub fn write_manifest(path: &Path, manifest: &[String]) -> Result<()> {
    let mut text = manifest.join("\n");
    text.push('\n');
    crate::util::atomic_write(path, text.as_bytes())
        .map_err(|e| SimError::io("cannot write", path, e))
}

/// A unit's manifest; `None` when it has none (a model made before manifests were kept: an
/// upgrade then deletes nothing, as Juju does when it finds no manifest).
pub fn read_manifest(path: &Path) -> Result<Option<Vec<String>>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SimError::io("cannot read", path, e)),
    }
}

/// Deploys the charm at `src` over a unit's charm directory `dest` with Juju's manifest
/// semantics (`manifest_deployer.go`): paths of the previous charm (`old`) that the new one
/// lacks are deleted (a directory with everything in it), then every file of the new charm is
/// written; whatever the charm created itself (state files, `.deferred.json`) stays. A file is
/// written to a temporary name and renamed over the old one, never truncated in place (a
/// process still running the old binary keeps its copy); modes and symlinks are kept. Returns
/// the new manifest.
pub fn deploy_over(src: &Path, dest: &Path, old: Option<&[String]>) -> Result<Vec<String>> {
    let new = manifest(src)?;
    if let Some(old) = old {
        let keep: std::collections::BTreeSet<&str> = new.iter().map(String::as_str).collect();
        for p in old.iter().filter(|p| !keep.contains(p.as_str())) {
            // Only paths inside the charm directory: a manifest never names `..` or `/x`.
            if Path::new(p)
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                continue;
            }
            remove_any(&dest.join(p))?;
        }
    }
    fs::create_dir_all(dest).map_err(|e| SimError::io("cannot create", dest, e))?;
    overlay_dir(src, dest)?;
    Ok(new)
}

/// Removes a file, symlink or directory tree; a path already gone is fine.
fn remove_any(path: &Path) -> Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SimError::io("cannot read", path, e)),
    };
    let r = if md.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SimError::io("cannot remove", path, e))
        }
        _ => Ok(()),
    }
}

/// A temporary name beside `to` for a write that is renamed over it.
fn temp_beside(to: &Path) -> std::path::PathBuf {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    to.with_file_name(format!(".{name}.jujusim-{}", std::process::id()))
}

/// Writes `src`'s tree into the existing directory `dest`: directories merged (their modes set),
/// files and symlinks replaced by rename, anything of another kind in the way removed first.
fn overlay_dir(src: &Path, dest: &Path) -> Result<()> {
    let entries = fs::read_dir(src).map_err(|e| SimError::io("cannot read", src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SimError::io("cannot read", src, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let ft = entry
            .file_type()
            .map_err(|e| SimError::io("cannot read", &from, e))?;
        let existing = fs::symlink_metadata(&to).ok();
        if ft.is_dir() {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                remove_any(&to)?;
            }
            fs::create_dir_all(&to).map_err(|e| SimError::io("cannot create", &to, e))?;
            overlay_dir(&from, &to)?;
            continue;
        }
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            remove_any(&to)?;
        }
        let tmp = temp_beside(&to);
        remove_any(&tmp)?;
        if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| SimError::io("cannot read", &from, e))?;
            std::os::unix::fs::symlink(&target, &tmp)
                .map_err(|e| SimError::io("cannot create", &tmp, e))?;
        } else {
            fs::copy(&from, &tmp).map_err(|e| SimError::io("cannot copy", &from, e))?;
        }
        fs::rename(&tmp, &to).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            SimError::io("cannot replace", &to, e)
        })?;
    }
    let perms = fs::metadata(src)
        .map_err(|e| SimError::io("cannot read", src, e))?
        .permissions();
    fs::set_permissions(dest, perms).map_err(|e| SimError::io("cannot chmod", dest, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// Juju's manifest deployer: the old charm's paths the new one lacks go (a directory with
    /// what the charm put in it), the charm's own files stay, new files arrive by rename
    /// (a reader of the old file keeps its content), modes and symlinks kept.
    #[test]
    fn an_upgrade_deletes_only_what_the_old_charm_shipped() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new, unit) = (
            tmp.path().join("old"),
            tmp.path().join("new"),
            tmp.path().join("unit"),
        );
        write(&old, "dispatch", "old");
        write(&old, "data/keep.txt", "old keep");
        write(&old, "data/gone.txt", "x");
        write(&old, "bin/tool", "x");
        write(&new, "dispatch", "new");
        fs::set_permissions(new.join("dispatch"), fs::Permissions::from_mode(0o755)).unwrap();
        write(&new, "data/keep.txt", "new keep");
        write(&new, "data/added.txt", "x");
        std::os::unix::fs::symlink("data/keep.txt", new.join("current")).unwrap();
        copy_dir(&old, &unit).unwrap();
        let old_manifest = manifest(&old).unwrap();
        assert_eq!(
            old_manifest,
            [
                "bin",
                "bin/tool",
                "data",
                "data/gone.txt",
                "data/keep.txt",
                "dispatch"
            ]
        );
        // The charm's own files, beside and inside the charm's directories.
        write(&unit, ".state.json", "mine");
        write(&unit, "data/cache", "mine");
        write(
            &unit,
            "bin/cache",
            "mine (in a directory the new charm drops)",
        );
        let mut reader = fs::File::open(unit.join("data/keep.txt")).unwrap();
        let got = deploy_over(&new, &unit, Some(&old_manifest)).unwrap();
        assert_eq!(got, manifest(&new).unwrap());
        for kept in [".state.json", "data/cache", "data/added.txt", "current"] {
            assert!(fs::symlink_metadata(unit.join(kept)).is_ok(), "{kept}");
        }
        for gone in ["data/gone.txt", "bin"] {
            assert!(fs::symlink_metadata(unit.join(gone)).is_err(), "{gone}");
        }
        assert_eq!(
            fs::read_to_string(unit.join("data/keep.txt")).unwrap(),
            "new keep"
        );
        let mut was = String::new();
        reader.read_to_string(&mut was).unwrap();
        assert_eq!(was, "old keep", "the file was rewritten in place");
        let mode = fs::metadata(unit.join("dispatch"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(fs::symlink_metadata(unit.join("current"))
            .unwrap()
            .file_type()
            .is_symlink());
        // No manifest (an older model): nothing is deleted.
        let again = deploy_over(&old, &unit, None).unwrap();
        assert_eq!(again, old_manifest);
        assert!(unit.join("data/added.txt").is_file());
        // Nothing left behind by the renames.
        let leftovers: Vec<String> = manifest(&unit)
            .unwrap()
            .into_iter()
            .filter(|p| p.contains(".jujusim-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
