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
