//! A figment provider for one YAML file, parsed with the pure-Rust [`crate::yaml`] module.
//!
//! The file is read and parsed once, before figment sees it ([`YamlFile::read`]), so that a file
//! that cannot be read or parsed is reported once, as `FILE:LINE:COLUMN: what`, and so that the
//! text stays at hand to place later errors (a key's line and column, a value as written).

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map};
use figment::{Error, Metadata, Profile, Provider, Source};

use super::ConfigError;

/// The YAML configuration file as a figment layer.
#[derive(Debug, Clone)]
pub struct YamlFile {
    path: PathBuf,
    text: String,
    dict: Dict,
}

impl YamlFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File(format!("{shown}: cannot read: {e}")))?;
        let value = crate::yaml::parse(&text).map_err(|e| {
            ConfigError::File(format!("{shown}:{}:{}: {}", e.line, e.column, e.message))
        })?;
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
                return Err(ConfigError::File(format!(
                    "{shown}: the top level must be a mapping of keys"
                )));
            }
        };
        let dict = figment::value::Value::serialize(value)
            .ok()
            .and_then(|v| v.into_dict())
            .ok_or_else(|| {
                ConfigError::File(format!("{shown}: the top level must be a mapping of keys"))
            })?;
        Ok(YamlFile {
            path: path.to_path_buf(),
            text,
            dict,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
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
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}
