//! A figment provider for one YAML file, parsed with the pure-Rust [`crate::yaml`] module.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map};
use figment::{Error, Metadata, Profile, Provider, Source};

/// The YAML configuration file as a figment layer. Errors name the file (and line for syntax).
#[derive(Debug, Clone)]
pub struct YamlFile {
    path: PathBuf,
}

impl YamlFile {
    /// A provider reading `path` when figment asks for data.
    pub fn new(path: &Path) -> Self {
        YamlFile {
            path: path.to_path_buf(),
        }
    }
}

impl Provider for YamlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            format!("YAML file {}", self.path.display()),
            Source::File(self.path.clone()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let shown = self.path.display();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| Error::from(format!("cannot read {shown}: {e}")))?;
        let value = crate::yaml::parse(&text).map_err(|e| Error::from(format!("{shown}: {e}")))?;
        let value = match value {
            serde_json::Value::Null => serde_json::json!({}),
            serde_json::Value::Object(mut map) => {
                // Upstream docs call the section `capabilities`; accept it under our name.
                if !map.contains_key("capability_engine") {
                    if let Some(section) = map.remove("capabilities") {
                        map.insert("capability_engine".to_string(), section);
                    }
                }
                // YAML reads an unquoted `0o644` as 420 and `0644` as 644: take the mode as
                // written, so that it is read as octal text.
                if let Some(raw) = crate::yaml::plain_scalars(&text).get("ipc/socket_mode") {
                    if let Some(serde_json::Value::Object(ipc)) = map.get_mut("ipc") {
                        ipc.insert(
                            "socket_mode".to_string(),
                            serde_json::Value::String(raw.clone()),
                        );
                    }
                }
                serde_json::Value::Object(map)
            }
            _ => {
                return Err(Error::from(format!(
                    "{shown}: the top level must be a mapping of keys"
                )));
            }
        };
        let dict = figment::value::Value::serialize(value)?
            .into_dict()
            .ok_or_else(|| Error::from(format!("{shown}: the top level must be a mapping")))?;
        Ok(Profile::Default.collect(dict))
    }
}
