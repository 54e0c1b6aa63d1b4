//! Secrets behind capabilities: where the values live, and the one interface the agent uses to
//! reach them.
//!
//! A [`SecretBackend`] stores KV-version-2-style secrets: a path (`db/primary`) holds versions,
//! each a map of string fields. Backends: [`file`] (embedded, encrypted at rest) and `vault`
//! (HashiCorp Vault / OpenBao over HTTPS). Values are [`SecretString`]s: zeroized when dropped,
//! and never printed by `Debug`.

pub mod file;
pub mod vault;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::resource::PathKind;

/// A secret value: wiped from memory when dropped, shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub Zeroizing<String>);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }

    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The fields of one version of a secret.
pub type SecretMap = BTreeMap<String, SecretString>;

/// One version of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    /// Version number, from 1.
    pub version: u64,
    /// When it was written, RFC 3339 UTC.
    pub created_time: String,
    /// Its fields.
    pub data: SecretMap,
}

/// Why a backend could not do what was asked. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret (or no such version) at the path.
    #[error("no secret at {0}")]
    NotFound(String),
    /// The request itself is wrong (bad path, empty data).
    #[error("{0}")]
    Invalid(String),
    /// The backend cannot be reached or cannot answer now (a Vault outage, a sealed Vault, a
    /// login that fails): answered as `BACKEND_UNAVAILABLE`. The only error a cached value may
    /// be served through (`stale_if_error`).
    #[error("secrets backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered and said no to the agent itself (Vault's 403 to a token it
    /// accepts: its policy does not cover the path): answered as `BACKEND_DENIED`. Not an
    /// outage: nothing cached is served, and the backend stays healthy.
    #[error("secrets backend denied access: {0}")]
    Denied(String),
    /// The backend is not set up the way the agent's configuration says (a mount or namespace
    /// that does not exist, a KV version that differs, HTTP spoken to an HTTPS port, a
    /// certificate signed by a CA the agent does not trust): answered as
    /// `BACKEND_MISCONFIGURED`. It does not heal by itself, so nothing cached is served.
    #[error("secrets backend misconfigured: {0}")]
    Misconfigured(String),
    /// Local storage or decryption failed.
    #[error("secrets storage: {0}")]
    Storage(String),
}

/// How a backend is doing, for `agent status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// `file` or `vault`.
    pub backend: String,
    /// Whether the last operation reached the store.
    pub healthy: bool,
    /// The last failure, while failing.
    pub last_error: Option<String>,
}

/// What a backend's cache of reads has done since the agent started, for
/// `agent status --verbose` (`detail.secrets_cache`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Values held now: fresh ones, and older ones kept for `stale_if_error`.
    pub entries: u64,
    /// Of those, the ones younger than `ttl` (served without asking the store).
    pub fresh: u64,
    /// Reads answered from a fresh value, without asking the store.
    pub hits: u64,
    /// Reads that found no fresh value and asked the store.
    pub misses: u64,
    /// Answers served from a value older than `ttl` because the store was unavailable
    /// (`stale_if_error`); each one is a miss too.
    pub stale_served: u64,
    /// How long a value is served from memory, seconds, as configured (fractions allowed;
    /// 0: every read asks the store). Whole numbers are written as integers.
    #[serde(serialize_with = "whole_or_fraction")]
    pub ttl: f64,
    /// Whether an older value is served while the store is unavailable.
    pub stale_if_error: bool,
}

/// `60` for 60.0, `0.5` for 0.5.
fn whole_or_fraction<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && (0.0..9.0e15).contains(v) {
        s.serialize_u64(*v as u64)
    } else {
        s.serialize_f64(*v)
    }
}

/// A store of secrets. Implementations are called from blocking threads, never from the
/// actors' event loop.
pub trait SecretBackend: Send + Sync {
    /// Reads the latest (or a given) version of the secret at `path`.
    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError>;
    /// Writes a new version of the secret at `path`; returns its version number. Durable
    /// before it returns.
    fn write(&self, path: &str, data: SecretMap) -> Result<u64, SecretError>;
    /// Lists the names directly under `prefix` (a folder ends in `/`), as Vault's LIST does.
    fn list(&self, prefix: &str) -> Result<Vec<String>, SecretError>;
    /// Deletes the secret at `path`, all versions.
    fn delete(&self, path: &str) -> Result<(), SecretError>;
    /// Health for `agent status`.
    fn health(&self) -> BackendHealth;
    /// The figures of the backend's cache of reads, for `agent status --verbose`; `None` for a
    /// backend without one (the file backend, whose secrets are all in memory anyway). Cheap:
    /// counters and a count of the entries, no I/O.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
    /// Whether `read` and `list` only look at this process's memory: no file or network access,
    /// nothing anyone else can observe, and never a wait for a disk (no lock held across I/O).
    /// The agent may then do them on its event loop, while the redemption is still being
    /// written, rather than after it on a blocking thread.
    fn reads_are_local(&self) -> bool {
        false
    }
}

/// Checks a secret path for a backend: canonical ([`crate::resource::check_secret_path`]),
/// naming what `kind` says; returned unchanged. A backend acts on exactly the text the policy
/// decided on, never on a cleaned-up copy of it.
pub fn check_path(path: &str, kind: PathKind) -> Result<String, SecretError> {
    crate::resource::check_secret_path(path, kind)
        .map(str::to_string)
        .map_err(|e| SecretError::Invalid(e.to_string()))
}

/// Checks a version number asked for: versions start at 1, in both backends, so version 0 is
/// a mistake in the request (`Invalid`), not a version that happens not to exist.
pub fn check_version(version: Option<u64>) -> Result<(), SecretError> {
    if version == Some(0) {
        return Err(SecretError::Invalid("secret versions start at 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_never_changed() {
        assert_eq!(
            check_path("db/primary", PathKind::Secret).unwrap(),
            "db/primary"
        );
        assert_eq!(check_path("db/", PathKind::Folder).unwrap(), "db/");
        assert_eq!(check_path("", PathKind::Folder).unwrap(), "");
        for bad in [
            "",
            "/db/primary",
            "//prod/db",
            "db//x",
            "../etc",
            "db/./x",
            "db/",
            "a\nb",
        ] {
            assert!(check_path(bad, PathKind::Secret).is_err(), "{bad:?}");
        }
        for bad in ["db", "/db/", "db//"] {
            assert!(check_path(bad, PathKind::Folder).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cache_ttl_is_written_whole_or_with_its_fraction() {
        let ttl = |t: f64| {
            let stats = CacheStats {
                ttl: t,
                ..CacheStats::default()
            };
            serde_json::to_string(&serde_json::to_value(&stats).unwrap()["ttl"]).unwrap()
        };
        assert_eq!(
            (ttl(60.0), ttl(0.0), ttl(0.5)),
            ("60".into(), "0".into(), "0.5".into())
        );
        let back: CacheStats = serde_json::from_str(
            r#"{"entries":1,"fresh":0,"hits":2,"misses":3,"stale_served":1,"ttl":60,"stale_if_error":true}"#,
        )
        .unwrap();
        assert_eq!((back.ttl, back.stale_served), (60.0, 1));
    }

    #[test]
    fn values_do_not_print() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "***");
        let v = SecretVersion {
            version: 1,
            created_time: "t".into(),
            data: [("pw".to_string(), s)].into(),
        };
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
