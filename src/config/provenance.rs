//! Where each value of the effective configuration came from, and what the configuration file
//! held when the agent started: for `agent config --running` (the `agent_config` message) and
//! for a reload to say that a changed file needs a restart (only the policies are reloaded).
//!
//! The configuration holds no secret today (tokens and keys live in files it names), but a
//! value that could be one is shown as `(redacted)` ([`redact`]), so that a future key cannot
//! leak through this view.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The largest configuration file read again to compare it with the one read at start.
const MAX_COMPARED_BYTES: u64 = 16 << 20;

/// The configuration file as the agent found it at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// The file read, or the default file searched and not found.
    pub path: PathBuf,
    /// SHA-256 of its bytes at start; `None` if it did not exist.
    pub digest: Option<[u8; 32]>,
}

impl FileStamp {
    /// A stamp of `bytes` read from `path` (made absolute, so that messages name it whole).
    pub fn of(path: &Path, bytes: &[u8]) -> FileStamp {
        FileStamp {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            digest: Some(Sha256::digest(bytes).into()),
        }
    }

    /// The stamp of a file that was searched and not found.
    pub fn absent(path: &Path) -> FileStamp {
        FileStamp {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            digest: None,
        }
    }

    /// Reads the file again: `None` when it is as it was at start, else what happened to it
    /// ("changed", "was created", "was removed", "cannot be read: …").
    pub fn change(&self) -> Option<String> {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking, so that a FIFO put in the file's place cannot hold the event loop.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        let now = match opened {
            Ok(f) if !f.metadata().is_ok_and(|m| m.is_file()) => {
                return Some("is no longer a regular file".to_string());
            }
            Ok(f) => {
                let mut hasher = Sha256::new();
                match std::io::copy(&mut f.take(MAX_COMPARED_BYTES), &mut hasher) {
                    Ok(_) => Some(<[u8; 32]>::from(hasher.finalize())),
                    Err(e) => return Some(format!("cannot be read ({e})")),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Some(format!("cannot be read ({e})")),
        };
        match (self.digest, now) {
            (a, b) if a == b => None,
            (None, Some(_)) => Some("was created".to_string()),
            (Some(_), None) => Some("was removed".to_string()),
            _ => Some("changed".to_string()),
        }
    }

    /// What to tell when the file is not as it was at start.
    pub fn change_notice(&self) -> Option<String> {
        self.change().map(|what| {
            format!(
                "the configuration file {} {what} since start; restart the agent to apply it",
                self.path.display()
            )
        })
    }

    /// The notice a reload gives when the file is not as it was at start.
    pub fn restart_notice(&self) -> Option<String> {
        self.change_notice()
            .map(|n| format!("{n} (policies were reloaded)"))
    }
}

/// What the agent knows about its configuration besides the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// Where each leaf value came from, by dotted key (`ipc.max_connections`): `file
    /// PATH:LINE:COLUMN`, `environment variable NAME`, `command-line flag --NAME`, `default
    /// (MODE mode)`.
    pub sources: BTreeMap<String, String>,
    /// The configuration file at start (the one read, or the default one searched), if any.
    pub file: Option<FileStamp>,
    /// Whether the file was read (not only searched).
    pub file_read: bool,
}

impl Provenance {
    /// The reload notice, if the configuration file is not as it was at start.
    pub fn restart_notice(&self) -> Option<String> {
        self.file.as_ref().and_then(FileStamp::restart_notice)
    }
}

/// The dotted keys of the leaves of `value` (objects are walked; anything else is a leaf).
pub fn leaf_keys(value: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out.retain(|k| !k.is_empty());
    out
}

/// Names of keys whose values are, or could be, secret.
const SECRET_KEYS: [&str; 6] = [
    "token",
    "password",
    "secret",
    "secret_id",
    "role_id",
    "credential_value",
];

/// `value` with secret-valued keys replaced by `"(redacted)"` and the user-info part of URLs
/// (`https://user:pass@host`) removed.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEYS.contains(&k.as_str()) && !v.is_null() {
                        Value::String("(redacted)".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) => Value::String(without_userinfo(s)),
        other => other.clone(),
    }
}

/// A URL without its user-info (`scheme://user:pass@host…` → `scheme://(redacted)@host…`).
fn without_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://(redacted)@{}", &s[..scheme_end], &rest[at + 1..]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_and_redaction() {
        let v = json!({"a": {"b": 1, "c": {"d": "x"}}, "e": [1], "f": {}});
        assert_eq!(leaf_keys(&v), vec!["a.b", "a.c.d", "e", "f"]);
        let r = redact(
            &json!({"vault": {"address": "https://u:p@vault:8200/x", "auth":
            {"approle": {"role_id": "r", "secret_id_file": "/f"}}, "token": null}}),
        );
        assert_eq!(r["vault"]["address"], "https://(redacted)@vault:8200/x");
        assert_eq!(r["vault"]["auth"]["approle"]["role_id"], "(redacted)");
        assert_eq!(r["vault"]["auth"]["approle"]["secret_id_file"], "/f");
        assert_eq!(r["vault"]["token"], Value::Null);
        assert_eq!(without_userinfo("https://h/a@b"), "https://h/a@b");
    }

    #[test]
    fn a_stamp_tells_a_changed_created_or_removed_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.yaml");
        std::fs::write(&f, "mode: standard\n").unwrap();
        let stamp = FileStamp::of(&f, b"mode: standard\n");
        assert_eq!(stamp.change(), None);
        std::fs::write(&f, "mode: hardened\n").unwrap();
        assert_eq!(stamp.change().as_deref(), Some("changed"));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(stamp.change().as_deref(), Some("was removed"));
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            stamp.change().as_deref(),
            Some("is no longer a regular file"),
            "a FIFO does not block"
        );
        std::fs::remove_file(&f).unwrap();
        let absent = FileStamp::absent(&f);
        assert_eq!(absent.change(), None);
        std::fs::write(&f, "").unwrap();
        assert_eq!(absent.change().as_deref(), Some("was created"));
        assert!(absent.restart_notice().unwrap().ends_with(
            "was created since start; restart the agent to apply it (policies were reloaded)"
        ));
    }
}
