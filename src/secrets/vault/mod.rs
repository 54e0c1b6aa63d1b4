//! The `vault` secrets backend: HashiCorp Vault or OpenBao, reached over their HTTP API.
//!
//! This module owns:
//! - the backend's configuration ([`VaultConfig`], [`VaultAuth`]) and its `VAULT_*` environment
//!   overrides ([`VaultConfig::apply_env`]);
//! - the blocking HTTP client (`ureq` with rustls) and its TLS settings: a CA file
//!   (`ca_cert` / `VAULT_CACERT`) or, for labs only, no verification at all (`skip_verify`);
//! - the Vault token: read from a file, or got by an AppRole, Kubernetes or JWT login (each
//!   method's request: `login.rs`), renewed once two thirds of its lease have passed, and got
//!   again once when Vault answers 403 and no longer accepts it (`auth/token/lookup-self`; a
//!   403 to a live token is Vault's policy: `Denied`);
//! - the KV version 1 and version 2 request shapes, the mount's version asked of Vault before
//!   the first request (`kv.rs`), and the mapping of Vault's answers to [`SecretError`] with
//!   the server's own words (`diagnose.rs`: `NotFound`, `Invalid`, `Denied`, `Misconfigured`,
//!   `Unavailable`);
//! - an in-memory cache of reads, which serves an expired value during an outage only when
//!   `stale_if_error` is set, and counts its hits, misses and stale answers for `agent status`.
//!
//! Neither a secret value nor the token is ever logged or put into an error: Vault's own error
//! texts are scrubbed of the token and of the values of the request before they are quoted.
//! Values read from Vault that are not JSON strings (numbers, objects) become their JSON text.

mod answers;
mod auth;
mod cache;
mod config;
mod diagnose;
mod http;
mod kv;
mod login;
#[cfg(test)]
mod tests;
mod tls;

pub use config::{VaultAuth, VaultConfig};
use tls::tls_config;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::warn;
use zeroize::Zeroizing;

use super::{
    BackendHealth, CacheStats, PathKind, SecretBackend, SecretError, SecretMap, SecretVersion,
    check_path, check_version,
};

/// How many idle HTTP connections to Vault are kept for reuse.
const IDLE_CONNECTIONS: usize = 64;

/// The token in use and what Vault said of its lease.
struct TokenState {
    token: Option<Zeroizing<String>>,
    /// When the lease started (just before the login or renewal was sent).
    obtained: Instant,
    /// Lease length; zero = no expiry known (a token file, or a token that never expires).
    lease: Duration,
    /// Whether renew-self may extend it.
    renewable: bool,
}

/// One cached read.
struct CacheEntry {
    value: SecretVersion,
    stored: Instant,
}

/// The `vault` backend: a [`SecretBackend`] over Vault's (or OpenBao's) KV secrets engine.
///
/// Built by [`VaultBackend::new`], which checks the configuration and the TLS files but does not
/// contact Vault; the first operation logs in.
pub struct VaultBackend {
    /// The address, without a trailing `/`, for messages.
    address: String,
    /// `{address}/v1`.
    api: String,
    /// The KV mount, without surrounding `/`, percent-encoded.
    mount: String,
    /// `kv_version` as configured; `None` = detect it.
    configured_kv: Option<u8>,
    /// The KV version spoken to the mount, once decided (see [`VaultBackend::engine`]).
    engine: Mutex<Option<u8>>,
    namespace: Option<String>,
    auth: VaultAuth,
    cache_ttl: Duration,
    stale_if_error: bool,
    agent: ureq::Agent,
    token: Mutex<TokenState>,
    cache: Mutex<HashMap<(String, Option<u64>), CacheEntry>>,
    counters: cache::Counters,
    /// `None` until Vault was first contacted.
    health: Mutex<Option<BackendHealth>>,
}

impl fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBackend")
            .field("api", &self.api)
            .field("mount", &self.mount)
            .field("kv_version", &self.configured_kv)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl VaultBackend {
    /// Checks `config`, loads its CA file and builds the HTTP client. Does not contact Vault.
    pub fn new(config: VaultConfig) -> Result<Self, SecretError> {
        config.validate()?;
        let address = config.address.trim_end_matches('/').to_string();
        if address.starts_with("http://") && !is_loopback(&address) {
            warn!(%address, "the vault address is plain HTTP: the token crosses the network unencrypted");
        }
        let mut builder = ureq::AgentBuilder::new()
            .timeout(config.timeout)
            // A redirect would carry X-Vault-Token to wherever it points; refuse them.
            .redirects(0)
            // Keep a connection for each request that may run at once (reads run on blocking
            // threads): with ureq's default of one idle connection per host, about half the
            // reads at 16 connections opened a new connection (docs/benchmarks.md).
            .max_idle_connections_per_host(IDLE_CONNECTIONS)
            .max_idle_connections(IDLE_CONNECTIONS)
            .user_agent(concat!("aether-vault-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls_config(&config)? {
            builder = builder.tls_config(tls);
        }
        let mount = encode_path(config.mount.trim_matches('/'));
        Ok(VaultBackend {
            api: format!("{address}/v1"),
            address,
            mount,
            configured_kv: config.kv_version,
            engine: Mutex::new(None),
            namespace: config.namespace.filter(|ns| !ns.is_empty()),
            auth: config.auth,
            cache_ttl: config.cache_ttl,
            stale_if_error: config.stale_if_error,
            agent: builder.build(),
            token: Mutex::new(TokenState {
                token: None,
                obtained: Instant::now(),
                lease: Duration::ZERO,
                renewable: false,
            }),
            cache: Mutex::new(HashMap::new()),
            counters: cache::Counters::default(),
            health: Mutex::new(None),
        })
    }
}

impl VaultBackend {
    /// The KV version in use (detected, else configured, else 2), for messages.
    fn kv_version(&self) -> u8 {
        lock(&self.engine).or(self.configured_kv).unwrap_or(2)
    }
}

impl SecretBackend for VaultBackend {
    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        check_version(version)?;
        if let Some(hit) = self.cached(&path, version, false) {
            return Ok(hit);
        }
        let result = self.fetch(&path, version);
        self.note(&result);
        match result {
            Ok(v) => {
                self.remember(&path, version, &v);
                Ok(v)
            }
            Err(SecretError::Unavailable(reason)) => {
                if self.stale_if_error {
                    if let Some(v) = self.cached(&path, version, true) {
                        warn!(path, %reason, "vault is unavailable; serving the cached value (stale_if_error)");
                        return Ok(v);
                    }
                }
                Err(SecretError::Unavailable(reason))
            }
            Err(e) => {
                // Vault answered, and the answer is no (no such secret, not for this token, not
                // set up so): what was cached for the path is not served again, not even by
                // `stale_if_error` in a later outage.
                self.forget(&path);
                Err(e)
            }
        }
    }

    fn write(&self, path: &str, data: SecretMap) -> Result<u64, SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        if data.is_empty() {
            return Err(SecretError::Invalid(
                "a secret needs at least one field".into(),
            ));
        }
        self.forget(&path);
        let result = self.store(&path, &data);
        // Whatever happened, what was cached may be out of date now.
        self.forget(&path);
        self.note(&result);
        result
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
        let prefix = check_path(prefix, PathKind::Folder)?;
        let result = self.keys(&prefix);
        self.note(&result);
        result
    }

    fn delete(&self, path: &str) -> Result<(), SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        self.forget(&path);
        let result = self.remove(&path);
        self.forget(&path);
        self.note(&result);
        result
    }

    fn health(&self) -> BackendHealth {
        if let Some(h) = lock(&self.health).clone() {
            return h;
        }
        let h = self.probe();
        *lock(&self.health) = Some(h.clone());
        h
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        Some(self.stats())
    }
}

// ---- Helpers --------------------------------------------------------------------------------

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Printable ASCII without spaces: what a token or namespace may be in a header.
pub(super) fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Reads a credential file, trimmed.
pub(super) fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, SecretError> {
    let raw = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        SecretError::Unavailable(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?);
    let value = Zeroizing::new(raw.trim().to_string());
    if value.is_empty() {
        return Err(SecretError::Unavailable(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    if !header_safe(&value) {
        return Err(SecretError::Unavailable(format!(
            "the {what} file {} holds characters a token cannot have",
            path.display()
        )));
    }
    Ok(value)
}

/// Percent-encodes a `/`-separated path, keeping the separators.
pub(super) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn is_loopback(address: &str) -> bool {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
