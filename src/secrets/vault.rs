//! The `vault` secrets backend: HashiCorp Vault or OpenBao, reached over their HTTP API.
//!
//! This module owns:
//! - the backend's configuration ([`VaultConfig`], [`VaultAuth`]) and its `VAULT_*` environment
//!   overrides ([`VaultConfig::apply_env`]);
//! - the blocking HTTP client (`ureq` with rustls) and its TLS settings: a CA file
//!   (`ca_cert` / `VAULT_CACERT`) or, for labs only, no verification at all (`skip_verify`);
//! - the Vault token: read from a file, or got by AppRole login, renewed once two thirds of its
//!   lease have passed, and got again once when Vault answers 403;
//! - the KV version 1 and version 2 request shapes, and the mapping of Vault's answers to
//!   [`SecretError`] (404 → `NotFound`, 400 → `Invalid`, anything else that fails →
//!   `Unavailable`);
//! - an in-memory cache of reads, which serves an expired value during an outage only when
//!   `stale_if_error` is set.
//!
//! Neither a secret value nor the token is ever logged or put into an error: Vault's own error
//! texts are scrubbed of the token and of the values of the request before they are quoted.
//! Values read from Vault that are not JSON strings (numbers, objects) become their JSON text.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use super::{
    BackendHealth, PathKind, SecretBackend, SecretError, SecretMap, SecretString, SecretVersion,
    check_path,
};

/// How long Vault's quoted error texts may be in our messages.
const MAX_QUOTED: usize = 300;

/// The `vault` backend's settings.
///
/// Durations are written in seconds. Every field but `auth` has a default; the `VAULT_*`
/// environment variables override the file (see [`VaultConfig::apply_env`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Where Vault listens, e.g. `https://vault.example.com:8200` (default
    /// `https://127.0.0.1:8200`, Vault's own default). `VAULT_ADDR` overrides it.
    #[serde(default = "default_address")]
    pub address: String,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`. `VAULT_NAMESPACE`
    /// overrides it.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Where the KV secrets engine is mounted (default `secret`). `VAULT_MOUNT_PATH` overrides it.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// KV engine version, 1 or 2 (default 2). `VAULT_KV_VERSION` overrides it.
    #[serde(default = "default_kv_version")]
    pub kv_version: u8,
    /// PEM file of the CA(s) that signed Vault's certificate; when set, only these are trusted.
    /// Without it the public roots bundled in the binary (Mozilla's, via `webpki-roots`) are,
    /// not the system's store: a private CA must be named here. `VAULT_CACERT` overrides it.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate, whatever `ca_cert` says: for labs only (a loud warning is logged).
    /// `VAULT_SKIP_VERIFY` overrides it.
    #[serde(default)]
    pub skip_verify: bool,
    /// How the agent logs in.
    pub auth: VaultAuth,
    /// How long a read is served from memory, seconds (default 60; 0 = no cache).
    #[serde(default = "default_cache_ttl", with = "seconds")]
    pub cache_ttl: Duration,
    /// While Vault is unavailable, serve the last value read even when it is older than
    /// `cache_ttl` (default false: an outage is reported as `BACKEND_UNAVAILABLE`).
    #[serde(default)]
    pub stale_if_error: bool,
    /// Time limit of one HTTP request, seconds (default 10).
    #[serde(default = "default_timeout", with = "seconds")]
    pub timeout: Duration,
}

/// How the agent gets its Vault token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuth {
    /// A token kept in a file (written, say, by Vault Agent's sink); read when first needed and
    /// again when Vault answers 403. The agent does not renew it.
    TokenFile(PathBuf),
    /// AppRole login (`POST /v1/auth/{mount}/login`); the token is renewed before it expires.
    #[serde(rename = "approle")]
    AppRole {
        /// The role's id. `VAULT_ROLE_ID` overrides it.
        role_id: String,
        /// File holding the secret id; read at each login.
        secret_id_file: PathBuf,
        /// Where the AppRole auth method is mounted (default `approle`).
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
}

fn default_address() -> String {
    "https://127.0.0.1:8200".into()
}

fn default_mount() -> String {
    "secret".into()
}

fn default_kv_version() -> u8 {
    2
}

fn default_cache_ttl() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_approle_mount() -> String {
    "approle".into()
}

impl VaultConfig {
    /// A configuration with every default and the given way to log in.
    pub fn new(auth: VaultAuth) -> Self {
        VaultConfig {
            address: default_address(),
            namespace: None,
            mount: default_mount(),
            kv_version: default_kv_version(),
            ca_cert: None,
            skip_verify: false,
            auth,
            cache_ttl: default_cache_ttl(),
            stale_if_error: false,
            timeout: default_timeout(),
        }
    }

    /// Applies the `VAULT_*` environment variables, which win over the file: `VAULT_ADDR`,
    /// `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_SKIP_VERIFY` (`true`/`1` or `false`/`0`),
    /// `VAULT_MOUNT_PATH`, `VAULT_KV_VERSION`, and `VAULT_ROLE_ID` (with AppRole only). Unset or
    /// empty variables change nothing. `lookup` reads one variable, e.g.
    /// `|k| std::env::var(k).ok()`.
    ///
    /// `VAULT_TOKEN` and `VAULT_SECRET_ID` are deliberately not read: credentials come from
    /// files, not from the environment, which child processes inherit.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), SecretError> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = get("VAULT_ADDR") {
            self.address = v;
        }
        if let Some(v) = get("VAULT_NAMESPACE") {
            self.namespace = Some(v);
        }
        if let Some(v) = get("VAULT_CACERT") {
            self.ca_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = get("VAULT_SKIP_VERIFY") {
            self.skip_verify = parse_bool(&v).ok_or_else(|| {
                SecretError::Invalid(format!(
                    "VAULT_SKIP_VERIFY={v:?} is neither true/1 nor false/0"
                ))
            })?;
        }
        if let Some(v) = get("VAULT_MOUNT_PATH") {
            self.mount = v;
        }
        if let Some(v) = get("VAULT_KV_VERSION") {
            self.kv_version = match v.as_str() {
                "1" => 1,
                "2" => 2,
                _ => {
                    return Err(SecretError::Invalid(format!(
                        "VAULT_KV_VERSION={v:?} is neither 1 nor 2"
                    )));
                }
            };
        }
        if let Some(v) = get("VAULT_ROLE_ID") {
            if let VaultAuth::AppRole { role_id, .. } = &mut self.auth {
                *role_id = v;
            }
        }
        Ok(())
    }

    /// [`VaultConfig::apply_env`] with the process environment.
    pub fn apply_process_env(&mut self) -> Result<(), SecretError> {
        self.apply_env(|key| std::env::var(key).ok())
    }

    /// Checks the values: an `http`/`https` address, KV version 1 or 2, mount paths, a timeout.
    pub fn validate(&self) -> Result<(), SecretError> {
        let bad = |m: String| Err(SecretError::Invalid(m));
        let rest = match self.address.split_once("://") {
            Some(("http" | "https", rest)) => rest,
            _ => {
                return bad(format!(
                    "vault address {:?} must start with https:// or http://",
                    self.address
                ));
            }
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#', '@']) || rest.contains(char::is_whitespace) {
            return bad(format!(
                "vault address {:?} must be scheme://host[:port][/path]",
                self.address
            ));
        }
        if self.kv_version != 1 && self.kv_version != 2 {
            return bad(format!(
                "vault kv_version is {}; it must be 1 or 2",
                self.kv_version
            ));
        }
        check_path(self.mount.trim_matches('/'), PathKind::Secret).map_err(|_| {
            SecretError::Invalid(format!(
                "vault mount {:?} is not a valid mount path",
                self.mount
            ))
        })?;
        if let Some(ns) = &self.namespace {
            if !header_safe(ns) {
                return bad(format!(
                    "vault namespace {ns:?} is not a valid header value"
                ));
            }
        }
        if self.timeout.is_zero() {
            return bad("vault timeout must be more than 0 seconds".into());
        }
        if let VaultAuth::AppRole { role_id, mount, .. } = &self.auth {
            if role_id.trim().is_empty() {
                return bad("vault AppRole role_id is empty".into());
            }
            if check_path(mount.trim_matches('/'), PathKind::Secret).is_err() {
                return bad(format!(
                    "vault AppRole mount {mount:?} is not a valid mount path"
                ));
            }
        }
        Ok(())
    }
}

/// Go's `strconv.ParseBool`, which Vault's own tools use for `VAULT_SKIP_VERIFY`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Durations written as (possibly fractional) seconds.
mod seconds {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Seconds)
    }

    struct Seconds;

    impl Visitor<'_> for Seconds {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| E::custom("a duration must be a non-negative number of seconds"))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            match v.trim().parse::<f64>() {
                Ok(n) => self.visit_f64(n),
                Err(_) => Err(E::custom(format!("{v:?} is not a number of seconds"))),
            }
        }
    }
}

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
    /// `{address}/v1`.
    api: String,
    /// The KV mount, without surrounding `/`, percent-encoded.
    mount: String,
    kv_version: u8,
    namespace: Option<String>,
    auth: VaultAuth,
    cache_ttl: Duration,
    stale_if_error: bool,
    agent: ureq::Agent,
    token: Mutex<TokenState>,
    cache: Mutex<HashMap<(String, Option<u64>), CacheEntry>>,
    /// `None` until Vault was first contacted.
    health: Mutex<Option<BackendHealth>>,
}

impl fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBackend")
            .field("api", &self.api)
            .field("mount", &self.mount)
            .field("kv_version", &self.kv_version)
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
            .user_agent(concat!("aether-vault-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls_config(&config)? {
            builder = builder.tls_config(tls);
        }
        let mount = encode_path(config.mount.trim_matches('/'));
        Ok(VaultBackend {
            api: format!("{address}/v1"),
            mount,
            kv_version: config.kv_version,
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
            health: Mutex::new(None),
        })
    }

    // ---- HTTP -------------------------------------------------------------------------------

    /// Sends one request; returns the status and the body, whatever the status.
    fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&str>,
        namespaced: bool,
    ) -> Result<(u16, Zeroizing<String>), SecretError> {
        let mut req = self
            .agent
            .request(method, url)
            .set("X-Vault-Request", "true");
        if namespaced {
            if let Some(ns) = &self.namespace {
                req = req.set("X-Vault-Namespace", ns);
            }
        }
        if let Some(token) = token {
            req = req.set("X-Vault-Token", token);
        }
        let result = match body {
            Some(body) => req
                .set("Content-Type", "application/json")
                .send_string(body),
            None => req.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                let reason = transport_reason(&t);
                debug!(method, url, %reason, "vault request failed");
                return Err(SecretError::Unavailable(format!(
                    "cannot reach vault at {}: {reason}",
                    self.api
                )));
            }
        };
        let status = response.status();
        debug!(method, url, status, "vault answered");
        let text = response.into_string().map(Zeroizing::new).map_err(|e| {
            SecretError::Unavailable(format!("reading vault's answer failed: {}", e.kind()))
        })?;
        Ok((status, text))
    }

    /// Sends a request with the token: logs in first if needed, and on a 403 gets a token again
    /// (re-login or re-read of the token file) and retries once.
    fn authed(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<(u16, Zeroizing<String>, Zeroizing<String>), SecretError> {
        let token = self.token()?;
        let (status, text) = self.send(method, url, Some(&token), body, true)?;
        if status != 403 {
            return Ok((status, text, token));
        }
        debug!(
            method,
            url, "vault answered 403; getting a token again and retrying once"
        );
        self.reauth(&token)?;
        let token = self.token()?;
        let (status, text) = self.send(method, url, Some(&token), body, true)?;
        Ok((status, text, token))
    }

    // ---- Token ------------------------------------------------------------------------------

    /// The token to use now: read, logged in for, or renewed as needed.
    fn token(&self) -> Result<Zeroizing<String>, SecretError> {
        let mut st = lock(&self.token);
        match &self.auth {
            VaultAuth::TokenFile(path) => {
                if st.token.is_none() {
                    st.token = Some(read_secret_file(path, "vault token")?);
                    st.obtained = Instant::now();
                }
            }
            VaultAuth::AppRole { .. } => {
                if st.token.is_none() {
                    self.login(&mut st)?;
                } else if !st.lease.is_zero() {
                    let elapsed = st.obtained.elapsed();
                    // Two thirds of the lease; no multiplication, so no overflow on any lease.
                    let renew_at = st.lease - st.lease / 3;
                    if elapsed >= st.lease || (elapsed > renew_at && !st.renewable) {
                        self.login(&mut st)?;
                    } else if elapsed > renew_at {
                        if let Err(e) = self.renew(&mut st) {
                            warn!(error = %e, "renewing the vault token failed; logging in again");
                            self.login(&mut st)?;
                        }
                    }
                }
            }
        }
        st.token
            .clone()
            .ok_or_else(|| SecretError::Unavailable("no vault token".into()))
    }

    /// After a 403 with `used`: gets a new token, unless another thread already did.
    fn reauth(&self, used: &str) -> Result<(), SecretError> {
        let mut st = lock(&self.token);
        if st.token.as_deref().is_some_and(|t| t.as_str() != used) {
            return Ok(());
        }
        match &self.auth {
            VaultAuth::TokenFile(path) => {
                st.token = Some(read_secret_file(path, "vault token")?);
                st.obtained = Instant::now();
                Ok(())
            }
            VaultAuth::AppRole { .. } => self.login(&mut st),
        }
    }

    /// AppRole login; on success the new token and its lease are in `st`.
    fn login(&self, st: &mut TokenState) -> Result<(), SecretError> {
        let VaultAuth::AppRole {
            role_id,
            secret_id_file,
            mount,
        } = &self.auth
        else {
            return Err(SecretError::Unavailable("no AppRole configured".into()));
        };
        st.token = None;
        let secret_id = read_secret_file(secret_id_file, "AppRole secret id")?;
        #[derive(Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        let body = Zeroizing::new(
            serde_json::to_string(&Login {
                role_id,
                secret_id: &secret_id,
            })
            .map_err(|_| SecretError::Invalid("cannot encode the AppRole login".into()))?,
        );
        let mount = encode_path(mount.trim_matches('/'));
        let url = format!("{}/auth/{mount}/login", self.api);
        let started = Instant::now();
        let (status, text) = self.send("POST", &url, None, Some(&body), true)?;
        if !(200..300).contains(&status) {
            let said = vault_errors(&text, &[secret_id.as_str(), role_id.as_str()]);
            return Err(SecretError::Unavailable(format!(
                "AppRole login at auth/{mount} failed ({status}){said}"
            )));
        }
        let auth = parse::<AuthAnswer>(&text, "the AppRole login")?
            .auth
            .ok_or_else(|| {
                SecretError::Unavailable("vault's AppRole login answer has no auth".into())
            })?;
        if !header_safe(&auth.client_token) {
            return Err(SecretError::Unavailable(
                "vault's AppRole login answer has no usable token".into(),
            ));
        }
        info!(
            lease_seconds = auth.lease_duration,
            renewable = auth.renewable,
            "logged in to vault with AppRole"
        );
        st.token = Some(auth.client_token);
        st.obtained = started;
        st.lease = Duration::from_secs(auth.lease_duration);
        st.renewable = auth.renewable;
        Ok(())
    }

    /// `POST /v1/auth/token/renew-self`; a lease cut short (the token's max TTL) is not renewed
    /// again: the next renewal point logs in instead.
    fn renew(&self, st: &mut TokenState) -> Result<(), SecretError> {
        let Some(token) = st.token.clone() else {
            return Err(SecretError::Unavailable("no token to renew".into()));
        };
        let url = format!("{}/auth/token/renew-self", self.api);
        let started = Instant::now();
        let (status, text) = self.send("POST", &url, Some(&token), Some("{}"), true)?;
        if !(200..300).contains(&status) {
            let said = vault_errors(&text, &[token.as_str()]);
            return Err(SecretError::Unavailable(format!(
                "token renewal failed ({status}){said}"
            )));
        }
        let auth = parse::<AuthAnswer>(&text, "the token renewal")?
            .auth
            .ok_or_else(|| SecretError::Unavailable("vault's renewal answer has no auth".into()))?;
        let lease = Duration::from_secs(auth.lease_duration);
        if header_safe(&auth.client_token) {
            st.token = Some(auth.client_token);
        }
        debug!(
            lease_seconds = auth.lease_duration,
            "renewed the vault token"
        );
        st.renewable = auth.renewable && lease >= st.lease;
        st.lease = lease;
        st.obtained = started;
        Ok(())
    }

    // ---- Cache and health -------------------------------------------------------------------

    /// A cached read: fresh only, or (`stale`) of any age.
    fn cached(&self, path: &str, version: Option<u64>, stale: bool) -> Option<SecretVersion> {
        let cache = lock(&self.cache);
        let entry = cache.get(&(path.to_string(), version))?;
        (stale || entry.stored.elapsed() < self.cache_ttl).then(|| entry.value.clone())
    }

    fn remember(&self, path: &str, version: Option<u64>, value: &SecretVersion) {
        if self.cache_ttl.is_zero() && !self.stale_if_error {
            return;
        }
        let mut cache = lock(&self.cache);
        if !self.stale_if_error {
            let ttl = self.cache_ttl;
            cache.retain(|_, e| e.stored.elapsed() < ttl);
        }
        cache.insert(
            (path.to_string(), version),
            CacheEntry {
                value: value.clone(),
                stored: Instant::now(),
            },
        );
    }

    fn forget(&self, path: &str) {
        lock(&self.cache).retain(|(p, _), _| p != path);
    }

    /// Records how a call to Vault went, for [`SecretBackend::health`].
    fn note<T>(&self, result: &Result<T, SecretError>) {
        let (healthy, last_error) = match result {
            Ok(_) | Err(SecretError::NotFound(_) | SecretError::Invalid(_)) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        *lock(&self.health) = Some(BackendHealth {
            backend: "vault".into(),
            healthy,
            last_error,
        });
    }

    /// Maps a failed status to an error; `what` names the secret, `scrub` what must not appear.
    fn failure(status: u16, text: &str, what: &str, scrub: &[&str]) -> SecretError {
        let said = vault_errors(text, scrub);
        match status {
            404 => SecretError::NotFound(what.to_string()),
            400 => SecretError::Invalid(format!("vault rejected the request for {what}{said}")),
            403 => SecretError::Unavailable(format!(
                "vault denied access to {what} (403) even with a fresh token{said}"
            )),
            429 => SecretError::Unavailable(format!(
                "vault is rate limiting or in standby (429){said}"
            )),
            503 => SecretError::Unavailable(format!("vault is sealed or unavailable (503){said}")),
            300..=399 => SecretError::Unavailable(format!(
                "vault answered with a redirect ({status}); set the address to the active node"
            )),
            _ => SecretError::Unavailable(format!("vault answered {status} for {what}{said}")),
        }
    }

    // ---- KV operations ----------------------------------------------------------------------

    fn fetch(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError> {
        let what = match version {
            Some(v) => format!("{path} version {v}"),
            None => path.to_string(),
        };
        let enc = encode_path(path);
        if self.kv_version == 1 {
            if version.is_some_and(|v| v != 1) {
                return Err(SecretError::NotFound(what));
            }
            let url = format!("{}/{}/{enc}", self.api, self.mount);
            let (status, text, token) = self.authed("GET", &url, None)?;
            if !(200..300).contains(&status) {
                return Err(Self::failure(status, &text, &what, &[token.as_str()]));
            }
            let data = parse::<Kv1Read>(&text, &what)?
                .data
                .ok_or_else(|| SecretError::NotFound(what.clone()))?;
            return Ok(SecretVersion {
                version: 1,
                created_time: String::new(),
                data: fields(data),
            });
        }
        let mut url = format!("{}/{}/data/{enc}", self.api, self.mount);
        if let Some(v) = version {
            url.push_str(&format!("?version={v}"));
        }
        let (status, text, token) = self.authed("GET", &url, None)?;
        if !(200..300).contains(&status) {
            return Err(Self::failure(status, &text, &what, &[token.as_str()]));
        }
        let answer = parse::<Kv2Read>(&text, &what)?
            .data
            .ok_or_else(|| SecretError::NotFound(what.clone()))?;
        let (Some(data), Some(meta)) = (answer.data, answer.metadata) else {
            // A deleted or destroyed version: metadata without data.
            return Err(SecretError::NotFound(what));
        };
        Ok(SecretVersion {
            version: meta.version,
            created_time: meta.created_time,
            data: fields(data),
        })
    }

    fn store(&self, path: &str, data: &SecretMap) -> Result<u64, SecretError> {
        let enc = encode_path(path);
        let values: Vec<&str> = data.values().map(SecretString::expose).collect();
        let (url, body) = if self.kv_version == 1 {
            (
                format!("{}/{}/{enc}", self.api, self.mount),
                serde_json::to_string(data),
            )
        } else {
            #[derive(Serialize)]
            struct Write<'a> {
                data: &'a SecretMap,
            }
            (
                format!("{}/{}/data/{enc}", self.api, self.mount),
                serde_json::to_string(&Write { data }),
            )
        };
        let body = Zeroizing::new(
            body.map_err(|_| SecretError::Invalid("cannot encode the secret".into()))?,
        );
        let (status, text, token) = self.authed("POST", &url, Some(&body))?;
        if !(200..300).contains(&status) {
            let mut scrub = values;
            scrub.push(token.as_str());
            return Err(Self::failure(status, &text, path, &scrub));
        }
        if self.kv_version == 1 {
            return Ok(1);
        }
        Ok(parse::<Kv2Write>(&text, path)?.data.version)
    }

    fn keys(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
        let enc = encode_path(prefix);
        let url = if self.kv_version == 1 {
            format!("{}/{}/{enc}", self.api, self.mount)
        } else {
            format!("{}/{}/metadata/{enc}", self.api, self.mount)
        };
        let (status, text, token) = self.authed("LIST", &url, None)?;
        if status == 404 {
            // Vault answers 404 to a LIST that finds nothing.
            return Ok(Vec::new());
        }
        if !(200..300).contains(&status) {
            return Err(Self::failure(status, &text, prefix, &[token.as_str()]));
        }
        Ok(parse::<ListAnswer>(&text, prefix)?.data.keys)
    }

    fn remove(&self, path: &str) -> Result<(), SecretError> {
        let enc = encode_path(path);
        let url = if self.kv_version == 1 {
            format!("{}/{}/{enc}", self.api, self.mount)
        } else {
            format!("{}/{}/metadata/{enc}", self.api, self.mount)
        };
        let (status, text, token) = self.authed("DELETE", &url, None)?;
        if !(200..300).contains(&status) {
            return Err(Self::failure(status, &text, path, &[token.as_str()]));
        }
        Ok(())
    }

    /// `GET /v1/sys/health`, for a status asked before any other call.
    fn probe(&self) -> BackendHealth {
        let url = format!("{}/sys/health", self.api);
        let (healthy, last_error) = match self.send("GET", &url, None, None, false) {
            Ok((200 | 429 | 473, _)) => (true, None),
            Ok((501, _)) => (false, Some("vault is not initialized".to_string())),
            Ok((503, _)) => (false, Some("vault is sealed".to_string())),
            Ok((status, _)) => (false, Some(format!("vault health answered {status}"))),
            Err(e) => (false, Some(e.to_string())),
        };
        BackendHealth {
            backend: "vault".into(),
            healthy,
            last_error,
        }
    }
}

impl SecretBackend for VaultBackend {
    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        if version == Some(0) {
            return Err(SecretError::Invalid("secret versions start at 1".into()));
        }
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
                if matches!(e, SecretError::NotFound(_)) {
                    lock(&self.cache).remove(&(path, version));
                }
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
}

// ---- Vault's answers ------------------------------------------------------------------------

#[derive(Deserialize)]
struct AuthAnswer {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: Zeroizing<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Kv2Read {
    data: Option<Kv2ReadData>,
}

#[derive(Deserialize)]
struct Kv2ReadData {
    data: Option<BTreeMap<String, Field>>,
    metadata: Option<Kv2Meta>,
}

#[derive(Deserialize)]
struct Kv2Meta {
    version: u64,
    #[serde(default)]
    created_time: String,
}

#[derive(Deserialize)]
struct Kv2Write {
    data: Kv2Meta,
}

#[derive(Deserialize)]
struct Kv1Read {
    data: Option<BTreeMap<String, Field>>,
}

#[derive(Deserialize)]
struct ListAnswer {
    data: ListData,
}

#[derive(Deserialize)]
struct ListData {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    errors: Vec<String>,
}

/// One field of a secret as Vault sent it: a string as is, anything else as its JSON text.
struct Field(SecretString);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl FieldVisitor {
    fn text(s: String) -> Field {
        Field(SecretString::new(s))
    }
}

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret field")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Self::text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Self::text(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(Self::text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field, E> {
        Ok(Self::text(serde_json::Value::from(v).to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Self::text("null".into()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Self::text("null".into()))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Field, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Self::text(v.to_string()))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Field, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Self::text(v.to_string()))
    }
}

fn fields(data: BTreeMap<String, Field>) -> SecretMap {
    data.into_iter().map(|(k, Field(v))| (k, v)).collect()
}

/// Parses an answer. serde's messages can quote the offending value, so only its position is
/// reported.
fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, SecretError> {
    serde_json::from_str(text).map_err(|e| {
        SecretError::Unavailable(format!(
            "vault's answer for {what} is not what its API documents (JSON {:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Vault's `errors`, as `": a; b"`, scrubbed of `scrub` and shortened; empty when none.
fn vault_errors(text: &str, scrub: &[&str]) -> String {
    let Ok(answer) = serde_json::from_str::<ErrorAnswer>(text) else {
        return String::new();
    };
    let mut said = answer.errors.join("; ");
    for s in scrub.iter().filter(|s| !s.is_empty()) {
        said = said.replace(s, "***");
    }
    let said = said.replace(|c: char| c.is_control(), " ");
    if said.trim().is_empty() {
        return String::new();
    }
    let mut short: String = said.chars().take(MAX_QUOTED).collect();
    if short.len() < said.len() {
        short.push('…');
    }
    format!(": {short}")
}

/// Why a request did not get an answer. Not `Transport`'s `Display`: for a bad header it quotes
/// the header, which could be the token.
fn transport_reason(t: &ureq::Transport) -> String {
    use std::error::Error as _;
    let kind = t.kind();
    if kind == ureq::ErrorKind::BadHeader {
        return kind.to_string();
    }
    match t.source() {
        Some(source) => format!("{kind}: {source}"),
        None => match t.message() {
            Some(m) => format!("{kind}: {m}"),
            None => kind.to_string(),
        },
    }
}

// ---- Helpers --------------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Printable ASCII without spaces: what a token or namespace may be in a header.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Reads a credential file, trimmed.
fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, SecretError> {
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
fn encode_path(path: &str) -> String {
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

fn is_loopback(address: &str) -> bool {
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

/// The TLS settings when they differ from ureq's default (bundled public roots).
fn tls_config(config: &VaultConfig) -> Result<Option<Arc<rustls::ClientConfig>>, SecretError> {
    if !config.skip_verify && config.ca_cert.is_none() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SecretError::Invalid(format!("TLS setup failed: {e}")))?;
    let mut tls = if config.skip_verify {
        warn!(address = %config.address, "TLS verification is OFF; for labs only");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let path = config.ca_cert.as_deref().unwrap_or(Path::new(""));
        builder
            .with_root_certificates(load_roots(path)?)
            .with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// The certificates of a PEM file, as trust roots.
fn load_roots(path: &Path) -> Result<rustls::RootCertStore, SecretError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad =
        |why: String| SecretError::Invalid(format!("vault CA file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(roots)
}

/// `skip_verify`: accepts any certificate (signatures on the handshake are still checked).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;

    use serde_json::{Value, json};

    use super::*;

    const SECRET: &str = "s3cr3t-VALUE-do-not-leak";
    const ROLE_ID: &str = "db02de05-fa39-4855-059b-67221c5c2f63";
    const SECRET_ID: &str = "6a174c20-f6de-a53c-74d2-6018fcceff64";
    const TOKEN_PREFIX: &str = "hvs.CAESIFAKE";

    // ---- A fake Vault, written from Vault's HTTP API documentation --------------------------
    //
    // KV v2 mounted at `secret/`, KV v1 at `kv/`, AppRole at `auth/approle/`. Answers carry
    // the JSON bodies the API docs show. It checks X-Vault-Request, X-Vault-Namespace (when
    // told to expect one) and X-Vault-Token, and can be told to answer 503 (sealed), to refuse
    // every token (403), to forget the tokens it issued (expiry), or to hang.

    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        /// Decoded path.
        path: String,
        /// The path as sent.
        raw_path: String,
        query: String,
        headers: HashMap<String, String>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(String::as_str)
        }
    }

    struct Stored {
        version: u64,
        created_time: String,
        data: Value,
    }

    #[derive(Default)]
    struct State {
        namespace: Option<String>,
        lease: u64,
        renewable: bool,
        tokens: HashSet<String>,
        issued: u32,
        logins: u32,
        renewals: u32,
        fail_renew: bool,
        deny_all: bool,
        force: Option<u16>,
        hang: bool,
        echo_on_write: bool,
        kv2: BTreeMap<String, Vec<Stored>>,
        kv1: BTreeMap<String, Value>,
        seen: Vec<Seen>,
    }

    struct FakeVault {
        addr: SocketAddr,
        tls: bool,
        state: Arc<Mutex<State>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl FakeVault {
        fn start() -> Self {
            Self::start_with(None)
        }

        fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let state = Arc::new(Mutex::new(State {
                lease: 3600,
                renewable: true,
                ..State::default()
            }));
            let stop = Arc::new(AtomicBool::new(false));
            let is_tls = tls.is_some();
            let thread = {
                let (state, stop) = (state.clone(), stop.clone());
                std::thread::spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(mut tcp) = conn else { continue };
                        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                        match &tls {
                            None => serve(&mut tcp, &state),
                            Some(cfg) => {
                                let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else {
                                    continue;
                                };
                                let mut stream = rustls::StreamOwned::new(conn, tcp);
                                serve(&mut stream, &state);
                                stream.conn.send_close_notify();
                                let _ = stream.flush();
                            }
                        }
                    }
                })
            };
            FakeVault {
                addr,
                tls: is_tls,
                state,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self) -> String {
            format!(
                "{}://{}",
                if self.tls { "https" } else { "http" },
                self.addr
            )
        }

        fn state(&self) -> MutexGuard<'_, State> {
            lock(&self.state)
        }

        /// (logins, renewals).
        fn counts(&self) -> (u32, u32) {
            let st = self.state();
            (st.logins, st.renewals)
        }

        fn count(&self, method: &str, path: &str) -> usize {
            self.state()
                .seen
                .iter()
                .filter(|r| r.method == method && r.path == path)
                .count()
        }
    }

    impl Drop for FakeVault {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve<S: Read + Write>(stream: &mut S, state: &Mutex<State>) {
        let Some(req) = read_request(stream) else {
            return;
        };
        if lock(state).hang {
            std::thread::sleep(Duration::from_millis(1500));
            return;
        }
        let (status, body) = handle(&mut lock(state), req);
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            503 => "Service Unavailable",
            _ => "Other",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
        let _ = stream.flush();
    }

    fn read_request<S: Read>(stream: &mut S) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let target = first.next()?.to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let (raw_path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        Some(Seen {
            method,
            path: decode(&raw_path),
            raw_path,
            query,
            headers,
            body: String::from_utf8(body).ok()?,
        })
    }

    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn errors(msgs: &[&str]) -> String {
        json!({ "errors": msgs }).to_string()
    }

    fn now() -> String {
        jiff::Timestamp::now().to_string()
    }

    fn auth_answer(token: &str, st: &State) -> String {
        json!({
            "request_id": "1f5a5c5e-4b0b-4b0a-9f5d-0f5e0c2c2b1a",
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "wrap_info": null,
            "warnings": null,
            "auth": {
                "renewable": st.renewable,
                "lease_duration": st.lease,
                "metadata": { "role_name": "agent" },
                "policies": ["default", "agent"],
                "token_policies": ["default", "agent"],
                "accessor": "fd6c9a00-d2dc-3b11-0be5-af7ae0e1d374",
                "client_token": token,
            }
        })
        .to_string()
    }

    fn list_keys<'a>(names: impl Iterator<Item = &'a String>, prefix: &str) -> (u16, String) {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        let mut keys = BTreeSet::new();
        for name in names {
            if let Some(rest) = name.strip_prefix(&prefix) {
                keys.insert(match rest.split_once('/') {
                    Some((dir, _)) => format!("{dir}/"),
                    None => rest.to_string(),
                });
            }
        }
        if keys.is_empty() {
            return (404, errors(&[]));
        }
        (200, json!({ "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0, "data": { "keys": keys }, "wrap_info": null, "warnings": null, "auth": null }).to_string())
    }

    fn handle(st: &mut State, req: Seen) -> (u16, String) {
        st.seen.push(req.clone());
        if let Some(code) = st.force {
            return (
                code,
                errors(&[if code == 503 {
                    "Vault is sealed"
                } else {
                    "internal error"
                }]),
            );
        }
        let Some(p) = req.path.strip_prefix("/v1/") else {
            return (404, errors(&[]));
        };
        let method = req.method.as_str();
        if method == "GET" && p == "sys/health" {
            return (200, json!({ "initialized": true, "sealed": false, "standby": false, "version": "1.15.0" }).to_string());
        }
        if req.header("x-vault-request") != Some("true") {
            return (400, errors(&["missing X-Vault-Request header"]));
        }
        if let Some(ns) = &st.namespace {
            if req.header("x-vault-namespace") != Some(ns.as_str()) {
                return (403, errors(&["permission denied"]));
            }
        }
        if method == "POST" && p == "auth/approle/login" {
            let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            if body["role_id"] != ROLE_ID || body["secret_id"] != SECRET_ID {
                return (400, errors(&["invalid role or secret ID"]));
            }
            st.logins += 1;
            st.issued += 1;
            let token = format!("{TOKEN_PREFIX}{:04}", st.issued);
            st.tokens.insert(token.clone());
            return (200, auth_answer(&token, st));
        }
        let token = req.header("x-vault-token").unwrap_or_default().to_string();
        if st.deny_all || !st.tokens.contains(&token) {
            return (403, errors(&["permission denied"]));
        }
        if method == "POST" && p == "auth/token/renew-self" {
            if st.fail_renew {
                return (403, errors(&["permission denied"]));
            }
            st.renewals += 1;
            return (200, auth_answer(&token, st));
        }
        if let Some(path) = p.strip_prefix("secret/data/") {
            return match method {
                "GET" => {
                    let wanted = req
                        .query
                        .strip_prefix("version=")
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|v| *v > 0);
                    let versions = st.kv2.get(path);
                    let found = versions.and_then(|vs| match wanted {
                        Some(w) => vs.iter().find(|v| v.version == w),
                        None => vs.last(),
                    });
                    match found {
                        None => (404, errors(&[])),
                        Some(v) => (
                            200,
                            json!({
                                "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
                                "data": {
                                    "data": v.data,
                                    "metadata": {
                                        "created_time": v.created_time, "custom_metadata": null,
                                        "deletion_time": "", "destroyed": false, "version": v.version
                                    }
                                },
                                "wrap_info": null, "warnings": null, "auth": null
                            })
                            .to_string(),
                        ),
                    }
                }
                "POST" | "PUT" => {
                    if st.echo_on_write {
                        return (
                            400,
                            errors(&[&format!("cannot store {} (token {token})", req.body)]),
                        );
                    }
                    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
                    if !body["data"].is_object() {
                        return (400, errors(&["no data provided"]));
                    }
                    let versions = st.kv2.entry(path.to_string()).or_default();
                    let version = versions.last().map_or(1, |v| v.version + 1);
                    let created_time = now();
                    versions.push(Stored {
                        version,
                        created_time: created_time.clone(),
                        data: body["data"].clone(),
                    });
                    (
                        200,
                        json!({
                            "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
                            "data": { "created_time": created_time, "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": version },
                            "wrap_info": null, "warnings": null, "auth": null
                        })
                        .to_string(),
                    )
                }
                _ => (405, errors(&["unsupported operation"])),
            };
        }
        if p == "secret/metadata" || p.starts_with("secret/metadata/") {
            let path = p
                .strip_prefix("secret/metadata")
                .unwrap_or_default()
                .trim_start_matches('/');
            let listing = method == "LIST"
                || (method == "GET" && req.query.split('&').any(|q| q == "list=true"));
            if listing {
                return list_keys(st.kv2.keys(), path);
            }
            if method == "DELETE" {
                st.kv2.remove(path);
                return (204, String::new());
            }
            return (405, errors(&["unsupported operation"]));
        }
        if p == "kv" || p.starts_with("kv/") {
            let path = p
                .strip_prefix("kv")
                .unwrap_or_default()
                .trim_start_matches('/');
            return match method {
                "LIST" => list_keys(st.kv1.keys(), path),
                "GET" => match st.kv1.get(path) {
                    None => (404, errors(&[])),
                    Some(data) => (
                        200,
                        json!({ "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 2764800, "data": data, "wrap_info": null, "warnings": null, "auth": null }).to_string(),
                    ),
                },
                "POST" | "PUT" => {
                    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
                    if !body.is_object() {
                        return (400, errors(&["no data provided"]));
                    }
                    st.kv1.insert(path.to_string(), body);
                    (204, String::new())
                }
                "DELETE" => {
                    st.kv1.remove(path);
                    (204, String::new())
                }
                _ => (405, errors(&["unsupported operation"])),
            };
        }
        (404, errors(&[]))
    }

    // ---- Helpers -----------------------------------------------------------------------------

    fn approle_config(vault: &FakeVault, dir: &tempfile::TempDir) -> VaultConfig {
        let secret_id_file = dir.path().join("secret-id");
        std::fs::write(&secret_id_file, format!("{SECRET_ID}\n")).expect("write secret id");
        let mut c = VaultConfig::new(VaultAuth::AppRole {
            role_id: ROLE_ID.into(),
            secret_id_file,
            mount: "approle".into(),
        });
        c.address = vault.url();
        c.timeout = Duration::from_secs(5);
        c
    }

    fn approle_backend(vault: &FakeVault, dir: &tempfile::TempDir) -> VaultBackend {
        VaultBackend::new(approle_config(vault, dir)).expect("backend")
    }

    fn fields_of(pairs: &[(&str, &str)]) -> SecretMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::new(v.to_string())))
            .collect()
    }

    fn field<'a>(v: &'a SecretVersion, name: &str) -> &'a str {
        v.data.get(name).map(SecretString::expose).expect("field")
    }

    fn ago(d: Duration) -> Instant {
        Instant::now()
            .checked_sub(d)
            .expect("the clock goes back that far")
    }

    fn age_cache(b: &VaultBackend, by: Duration) {
        for e in lock(&b.cache).values_mut() {
            e.stored = ago(by);
        }
    }

    fn age_token(b: &VaultBackend, by: Duration) {
        lock(&b.token).obtained = ago(by);
    }

    fn assert_clean(msg: &str) {
        for bad in [SECRET, SECRET_ID, TOKEN_PREFIX, "hvs.FILE"] {
            assert!(!msg.contains(bad), "{msg:?} contains {bad:?}");
        }
    }

    // ---- Tests -------------------------------------------------------------------------------

    #[test]
    fn approle_round_trip_with_namespace() {
        let vault = FakeVault::start();
        vault.state().namespace = Some("team-a".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = approle_config(&vault, &dir);
        config.namespace = Some("team-a".into());
        let b = VaultBackend::new(config).expect("backend");

        assert_eq!(
            b.write(
                "db/primary",
                fields_of(&[("user", "app"), ("password", "one")])
            )
            .expect("write"),
            1
        );
        assert_eq!(
            b.write(
                "db/primary",
                fields_of(&[("user", "app"), ("password", SECRET)])
            )
            .expect("write"),
            2
        );
        let latest = b.read("db/primary", None).expect("read");
        assert_eq!(latest.version, 2);
        assert_eq!(field(&latest, "password"), SECRET);
        assert!(
            latest.created_time.ends_with('Z'),
            "{}",
            latest.created_time
        );
        let first = b.read("db/primary", Some(1)).expect("read v1");
        assert_eq!((first.version, field(&first, "password")), (1, "one"));
        assert_eq!(
            b.read("db/primary", Some(7)),
            Err(SecretError::NotFound("db/primary version 7".into()))
        );

        b.write("db/replica", fields_of(&[("password", "x")]))
            .expect("write");
        b.write("app", fields_of(&[("key", "y")])).expect("write");
        assert_eq!(
            b.list("").expect("list"),
            vec!["app".to_string(), "db/".to_string()]
        );
        assert_eq!(
            b.list("db/").expect("list"),
            vec!["primary".to_string(), "replica".to_string()]
        );

        b.delete("db/primary").expect("delete");
        assert_eq!(
            b.read("db/primary", None),
            Err(SecretError::NotFound("db/primary".into()))
        );
        assert_eq!(b.list("db/").expect("list"), vec!["replica".to_string()]);
        b.delete("db/replica").expect("delete");
        assert_eq!(
            b.list("db/").expect("list of nothing"),
            Vec::<String>::new()
        );

        let st = vault.state();
        assert_eq!(st.logins, 1, "one login serves every call");
        let login = st
            .seen
            .iter()
            .find(|r| r.path == "/v1/auth/approle/login")
            .expect("login");
        assert_eq!(login.method, "POST");
        assert_eq!(login.header("x-vault-token"), None);
        let body: Value = serde_json::from_str(&login.body).expect("login body");
        assert_eq!(body, json!({ "role_id": ROLE_ID, "secret_id": SECRET_ID }));
        for r in &st.seen {
            assert_eq!(r.header("x-vault-request"), Some("true"), "{r:?}");
            assert_eq!(r.header("x-vault-namespace"), Some("team-a"), "{r:?}");
            if r.path != "/v1/auth/approle/login" {
                assert_eq!(
                    r.header("x-vault-token"),
                    Some(format!("{TOKEN_PREFIX}0001").as_str()),
                    "{r:?}"
                );
            }
        }
        let write = st
            .seen
            .iter()
            .find(|r| r.method == "POST" && r.path == "/v1/secret/data/db/primary")
            .expect("write");
        let body: Value = serde_json::from_str(&write.body).expect("write body");
        assert_eq!(
            body,
            json!({ "data": { "user": "app", "password": "one" } })
        );
        assert!(st.seen.iter().any(|r| r.method == "GET"
            && r.path == "/v1/secret/data/db/primary"
            && r.query == "version=1"));
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "LIST" && r.path == "/v1/secret/metadata/db/")
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "LIST" && r.path == "/v1/secret/metadata/")
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "DELETE" && r.path == "/v1/secret/metadata/db/primary")
        );
        drop(st);
        let h = b.health();
        assert_eq!(
            (h.backend.as_str(), h.healthy, h.last_error),
            ("vault", true, None)
        );
    }

    #[test]
    fn missing_secret_is_not_found() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        assert_eq!(
            b.read("nope", None),
            Err(SecretError::NotFound("nope".into()))
        );
        assert!(b.health().healthy, "a 404 reached the store");
        assert!(matches!(
            b.read("../etc", None),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(b.read("x", Some(0)), Err(SecretError::Invalid(_))));
        assert!(matches!(
            b.write("x", SecretMap::new()),
            Err(SecretError::Invalid(_))
        ));
    }

    #[test]
    fn outage_is_unavailable_without_stale_data() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        b.write("app", fields_of(&[("pw", SECRET)])).expect("write");
        assert_eq!(field(&b.read("app", None).expect("read"), "pw"), SECRET);

        vault.state().force = Some(503);
        // Within cache_ttl the cached read is the answer.
        assert_eq!(
            field(&b.read("app", None).expect("fresh cache"), "pw"),
            SECRET
        );
        age_cache(&b, Duration::from_secs(61));
        let err = b.read("app", None).expect_err("stale must not be served");
        let SecretError::Unavailable(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("503") && msg.contains("sealed"), "{msg}");
        assert_clean(&err.to_string());
        let h = b.health();
        assert!(!h.healthy);
        assert!(
            h.last_error
                .as_deref()
                .is_some_and(|e| e.contains("sealed")),
            "{h:?}"
        );
        assert!(matches!(
            b.write("app", fields_of(&[("pw", "z")])),
            Err(SecretError::Unavailable(_))
        ));
        assert!(matches!(b.list(""), Err(SecretError::Unavailable(_))));
        assert!(matches!(b.delete("app"), Err(SecretError::Unavailable(_))));

        vault.state().force = None;
        assert_eq!(field(&b.read("app", None).expect("back"), "pw"), SECRET);
        assert!(b.health().healthy);
    }

    #[test]
    fn outage_serves_cached_value_with_stale_if_error() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = approle_config(&vault, &dir);
        config.stale_if_error = true;
        let b = VaultBackend::new(config).expect("backend");
        b.write("app", fields_of(&[("pw", SECRET)])).expect("write");
        b.read("app", None).expect("read");
        vault.state().force = Some(503);
        age_cache(&b, Duration::from_secs(3600));
        let v = b.read("app", None).expect("stale value");
        assert_eq!((v.version, field(&v, "pw")), (1, SECRET));
        assert_eq!(
            vault.count("GET", "/v1/secret/data/app"),
            2,
            "it did ask vault first"
        );
        assert!(!b.health().healthy);
        assert!(matches!(
            b.read("never-read", None),
            Err(SecretError::Unavailable(_))
        ));
    }

    #[test]
    fn cache_hit_stays_local_and_write_invalidates() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        b.write("app", fields_of(&[("pw", "one")])).expect("write");
        for _ in 0..3 {
            assert_eq!(field(&b.read("app", None).expect("read"), "pw"), "one");
        }
        assert_eq!(vault.count("GET", "/v1/secret/data/app"), 1);
        b.read("app", Some(1)).expect("read v1");
        b.read("app", Some(1)).expect("read v1");
        assert_eq!(
            vault.count("GET", "/v1/secret/data/app"),
            2,
            "(path, version) is its own entry"
        );

        b.write("app", fields_of(&[("pw", "two")])).expect("write");
        let v = b.read("app", None).expect("read");
        assert_eq!((v.version, field(&v, "pw")), (2, "two"));
        assert_eq!(vault.count("GET", "/v1/secret/data/app"), 3);

        b.delete("app").expect("delete");
        assert!(matches!(b.read("app", None), Err(SecretError::NotFound(_))));
        assert!(matches!(
            b.read("app", Some(1)),
            Err(SecretError::NotFound(_))
        ));

        b.write("ttl", fields_of(&[("pw", "x")])).expect("write");
        b.read("ttl", None).expect("read");
        age_cache(&b, Duration::from_secs(61));
        b.read("ttl", None).expect("read");
        assert_eq!(
            vault.count("GET", "/v1/secret/data/ttl"),
            2,
            "an expired entry is fetched again"
        );
    }

    #[test]
    fn forbidden_logs_in_again_and_retries_once() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        b.write("app", fields_of(&[("pw", SECRET)])).expect("write");
        vault.state().tokens.clear(); // the token expired on the server
        assert_eq!(
            field(&b.read("app", None).expect("read after re-login"), "pw"),
            SECRET
        );
        assert_eq!(vault.state().logins, 2);
        assert_eq!(
            vault.count("GET", "/v1/secret/data/app"),
            2,
            "the first try and one retry"
        );
        let last = vault.state().seen.last().cloned().expect("seen");
        assert_eq!(
            last.header("x-vault-token"),
            Some(format!("{TOKEN_PREFIX}0002").as_str())
        );

        // A 403 that a new token does not cure: one more login, then BACKEND_UNAVAILABLE.
        vault.state().deny_all = true;
        let err = b
            .write("app", fields_of(&[("pw", SECRET)]))
            .expect_err("denied");
        let SecretError::Unavailable(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("403"), "{msg}");
        assert_clean(&err.to_string());
        assert_eq!(vault.state().logins, 3);
    }

    #[test]
    fn token_file_is_read_again_after_403() {
        let vault = FakeVault::start();
        vault.state().tokens.insert("hvs.FILE-TOKEN-1".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "  hvs.FILE-TOKEN-1\n").expect("write token");
        let mut config = VaultConfig::new(VaultAuth::TokenFile(token_file.clone()));
        config.address = vault.url();
        let b = VaultBackend::new(config).expect("backend");
        b.write("app", fields_of(&[("pw", "one")])).expect("write");
        assert_eq!(
            vault.state().seen[0].header("x-vault-token"),
            Some("hvs.FILE-TOKEN-1")
        );

        {
            let mut st = vault.state();
            st.tokens.clear();
            st.tokens.insert("hvs.FILE-TOKEN-2".into());
        }
        std::fs::write(&token_file, "hvs.FILE-TOKEN-2\n").expect("rotate token");
        assert_eq!(field(&b.read("app", None).expect("read"), "pw"), "one");
        let st = vault.state();
        assert_eq!(
            st.seen.last().and_then(|r| r.header("x-vault-token")),
            Some("hvs.FILE-TOKEN-2")
        );
        assert_eq!(st.logins, 0);
        drop(st);

        std::fs::remove_file(&token_file).expect("rm");
        vault.state().tokens.clear();
        let err = b.read("other", None).expect_err("no token");
        assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
        assert_clean(&err.to_string());
    }

    #[test]
    fn token_is_renewed_before_expiry_and_login_follows_a_failed_renewal() {
        let vault = FakeVault::start();
        vault.state().lease = 30;
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        b.list("").expect("list");
        age_token(&b, Duration::from_secs(15));
        b.list("").expect("list");
        assert_eq!(vault.counts(), (1, 0), "half the lease: nothing to do");

        age_token(&b, Duration::from_secs(21));
        b.list("").expect("list");
        assert_eq!(vault.counts(), (1, 1), "past 2/3: renew-self");
        let renew = vault
            .state()
            .seen
            .iter()
            .find(|r| r.path == "/v1/auth/token/renew-self")
            .cloned()
            .expect("renew");
        assert_eq!(renew.method, "POST");
        assert_eq!(
            renew.header("x-vault-token"),
            Some(format!("{TOKEN_PREFIX}0001").as_str())
        );

        vault.state().fail_renew = true;
        age_token(&b, Duration::from_secs(21));
        b.list("").expect("list");
        assert_eq!(vault.counts(), (2, 1), "renewal failed: log in again");

        age_token(&b, Duration::from_secs(31));
        b.list("").expect("list");
        assert_eq!(vault.counts(), (3, 1), "expired: log in, no renewal");
    }

    #[test]
    fn concurrent_403s_log_in_once_and_huge_leases_do_not_overflow() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = approle_config(&vault, &dir);
        config.cache_ttl = Duration::ZERO;
        let b = VaultBackend::new(config).expect("backend");
        b.write("app", fields_of(&[("pw", "x")])).expect("write");
        vault.state().tokens.clear();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..3 {
                        assert_eq!(field(&b.read("app", None).expect("read"), "pw"), "x");
                    }
                });
            }
        });
        assert_eq!(vault.counts(), (2, 0), "one re-login serves every thread");

        vault.state().lease = u64::MAX;
        vault.state().tokens.clear();
        b.read("app", None).expect("read");
        age_token(&b, Duration::from_secs(3600));
        b.read("app", None).expect("read");
        assert_eq!(vault.counts(), (3, 0));
    }

    #[test]
    fn kv_version_1_paths() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = approle_config(&vault, &dir);
        config.mount = "kv".into();
        config.kv_version = 1;
        let b = VaultBackend::new(config).expect("backend");
        assert_eq!(
            b.write("app/db", fields_of(&[("pw", SECRET)]))
                .expect("write"),
            1
        );
        assert_eq!(
            b.write("app/db", fields_of(&[("pw", "two")]))
                .expect("write"),
            1
        );
        let v = b.read("app/db", None).expect("read");
        assert_eq!(
            (v.version, field(&v, "pw"), v.created_time.as_str()),
            (1, "two", "")
        );
        assert_eq!(b.read("app/db", Some(1)).expect("read v1").version, 1);
        assert!(matches!(
            b.read("app/db", Some(2)),
            Err(SecretError::NotFound(_))
        ));
        assert_eq!(b.list("").expect("list"), vec!["app/".to_string()]);
        assert_eq!(b.list("app/").expect("list"), vec!["db".to_string()]);
        b.delete("app/db").expect("delete");
        assert!(matches!(
            b.read("app/db", None),
            Err(SecretError::NotFound(_))
        ));

        let st = vault.state();
        let write = st
            .seen
            .iter()
            .find(|r| r.method == "POST" && r.path == "/v1/kv/app/db")
            .expect("write");
        assert_eq!(
            serde_json::from_str::<Value>(&write.body).expect("body"),
            json!({ "pw": SECRET })
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "GET" && r.path == "/v1/kv/app/db")
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "LIST" && r.path == "/v1/kv/")
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "LIST" && r.path == "/v1/kv/app/")
        );
        assert!(
            st.seen
                .iter()
                .any(|r| r.method == "DELETE" && r.path == "/v1/kv/app/db")
        );
        assert!(
            !st.seen
                .iter()
                .any(|r| r.path.contains("/data/") || r.path.contains("/metadata/"))
        );
    }

    #[test]
    fn paths_are_percent_encoded_and_non_string_values_read_as_json_text() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        b.write("team a/db%1", fields_of(&[("pw", "x")]))
            .expect("write");
        assert!(
            vault
                .state()
                .seen
                .iter()
                .any(|r| r.raw_path == "/v1/secret/data/team%20a/db%251")
        );
        assert_eq!(
            field(&b.read("team a/db%1", None).expect("read"), "pw"),
            "x"
        );

        vault.state().kv2.insert(
            "typed".into(),
            vec![Stored {
                version: 4,
                created_time: "2018-03-22T02:24:06.945319214Z".into(),
                data: json!({ "port": 5432, "on": true, "ratio": 0.5, "none": null, "obj": { "a": [1, "b"] } }),
            }],
        );
        let v = b.read("typed", None).expect("read");
        assert_eq!(v.version, 4);
        assert_eq!(v.created_time, "2018-03-22T02:24:06.945319214Z");
        assert_eq!(field(&v, "port"), "5432");
        assert_eq!(field(&v, "on"), "true");
        assert_eq!(field(&v, "ratio"), "0.5");
        assert_eq!(field(&v, "none"), "null");
        assert_eq!(field(&v, "obj"), r#"{"a":[1,"b"]}"#);
    }

    #[test]
    fn errors_never_carry_secret_values_or_tokens() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        // A server whose error text quotes the request and the token.
        vault.state().echo_on_write = true;
        let err = b
            .write("app", fields_of(&[("pw", SECRET)]))
            .expect_err("rejected");
        let SecretError::Invalid(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("cannot store") && msg.contains("***"), "{msg}");
        assert_clean(&err.to_string());
        assert_clean(&format!("{err:?}"));
        assert_clean(&format!("{b:?}"));
        assert_clean(&format!("{:?}", b.health()));

        // A wrong secret id: the login fails, and says so without quoting it.
        std::fs::write(dir.path().join("secret-id"), format!("{SECRET}\n")).expect("write");
        vault.state().tokens.clear();
        let err = b.read("app", None).expect_err("login refused");
        let SecretError::Unavailable(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("AppRole login") && msg.contains("400"),
            "{msg}"
        );
        assert_clean(&err.to_string());
        assert_clean(&format!("{:?}", b.health()));
    }

    #[test]
    fn unreachable_and_hanging_servers_are_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "hvs.FILE-TOKEN-1").expect("write");
        let mut config = VaultConfig::new(VaultAuth::TokenFile(token_file));
        config.address = format!("http://127.0.0.1:{port}");
        config.timeout = Duration::from_millis(300);
        let b = VaultBackend::new(config.clone()).expect("backend");
        let err = b.read("app", None).expect_err("refused");
        let SecretError::Unavailable(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("cannot reach vault"), "{msg}");
        assert_clean(msg);
        let h = b.health();
        assert!(!h.healthy && h.last_error.is_some(), "{h:?}");

        let vault = FakeVault::start();
        vault.state().hang = true;
        config.address = vault.url();
        let b = VaultBackend::new(config).expect("backend");
        let started = Instant::now();
        assert!(matches!(
            b.read("app", None),
            Err(SecretError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "the timeout applies"
        );
    }

    #[test]
    fn health_probes_vault_before_any_call() {
        let vault = FakeVault::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = approle_backend(&vault, &dir);
        assert!(b.health().healthy);
        assert_eq!(vault.count("GET", "/v1/sys/health"), 1);
        assert_eq!(vault.state().logins, 0, "the probe needs no token");

        vault.state().force = Some(503);
        let b = approle_backend(&vault, &dir);
        let h = b.health();
        assert!(!h.healthy);
        assert_eq!(h.last_error.as_deref(), Some("vault is sealed"));
    }

    #[test]
    fn config_from_file_shape_with_defaults() {
        let c: VaultConfig =
            serde_json::from_value(json!({ "auth": { "token_file": "/run/vault/token" } }))
                .expect("minimal");
        assert_eq!(
            c,
            VaultConfig::new(VaultAuth::TokenFile("/run/vault/token".into()))
        );
        assert_eq!(
            (c.mount.as_str(), c.kv_version, c.cache_ttl, c.timeout),
            (
                "secret",
                2,
                Duration::from_secs(60),
                Duration::from_secs(10)
            )
        );
        assert!(!c.stale_if_error && !c.skip_verify);

        let c: VaultConfig = serde_json::from_value(json!({
            "address": "https://vault.example.com:8200",
            "namespace": "team-a",
            "kv_version": 1,
            "auth": { "approle": { "role_id": "r", "secret_id_file": "/etc/aether/secret-id" } },
            "cache_ttl": 5,
            "timeout": 2.5,
            "stale_if_error": true
        }))
        .expect("full");
        assert_eq!(
            c.auth,
            VaultAuth::AppRole {
                role_id: "r".into(),
                secret_id_file: "/etc/aether/secret-id".into(),
                mount: "approle".into()
            }
        );
        assert_eq!(
            (c.cache_ttl, c.timeout),
            (Duration::from_secs(5), Duration::from_millis(2500))
        );
        c.validate().expect("valid");
        let back: VaultConfig =
            serde_json::from_value(serde_json::to_value(&c).expect("ser")).expect("de");
        assert_eq!(back, c);

        for bad in [
            json!({ "auth": { "token_file": "/t" }, "adress": "x" }),
            json!({ "auth": { "approle": { "role_id": "r", "secret_id_file": "/s", "secret_id": "x" } } }),
            json!({ "auth": { "kerberos": {} } }),
            json!({ "auth": { "token_file": "/t" }, "cache_ttl": -1 }),
        ] {
            assert!(
                serde_json::from_value::<VaultConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }

        let mut c = VaultConfig::new(VaultAuth::TokenFile("/t".into()));
        c.validate().expect("defaults are valid");
        c.kv_version = 3;
        assert!(matches!(c.validate(), Err(SecretError::Invalid(_))));
        c.kv_version = 2;
        for bad in [
            "vault:8200",
            "ftp://vault",
            "https://",
            "https://a b",
            "https://u@vault",
        ] {
            c.address = bad.into();
            assert!(VaultBackend::new(c.clone()).is_err(), "{bad}");
        }
        c.address = "https://vault.example.com:8200/".into();
        c.mount = "/".into();
        assert!(c.validate().is_err());
        c.mount = "kv/team-a".into();
        c.validate().expect("nested mount");
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = VaultConfig::new(VaultAuth::AppRole {
            role_id: "file-role".into(),
            secret_id_file: "/s".into(),
            mount: "approle".into(),
        });
        c.address = "https://from-file:8200".into();
        c.namespace = Some("file-ns".into());
        let env: HashMap<&str, &str> = [
            ("VAULT_ADDR", "https://vault.example.com:8200"),
            ("VAULT_NAMESPACE", "atom"),
            ("VAULT_CACERT", "/etc/ssl/vault-ca.pem"),
            ("VAULT_SKIP_VERIFY", "1"),
            ("VAULT_MOUNT_PATH", "kv"),
            ("VAULT_KV_VERSION", "1"),
            ("VAULT_ROLE_ID", "env-role"),
            ("VAULT_TOKEN", "hvs.ignored"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string()))
            .expect("apply");
        assert_eq!(c.address, "https://vault.example.com:8200");
        assert_eq!(c.namespace.as_deref(), Some("atom"));
        assert_eq!(
            c.ca_cert.as_deref(),
            Some(Path::new("/etc/ssl/vault-ca.pem"))
        );
        assert!(c.skip_verify);
        assert_eq!((c.mount.as_str(), c.kv_version), ("kv", 1));
        assert!(matches!(&c.auth, VaultAuth::AppRole { role_id, .. } if role_id == "env-role"));

        let before = c.clone();
        c.apply_env(|k| (k == "VAULT_ADDR").then(String::new))
            .expect("empty is unset");
        assert_eq!(c, before);
        for (value, want) in [
            ("true", true),
            ("false", false),
            ("0", false),
            ("TRUE", true),
        ] {
            c.apply_env(|k| (k == "VAULT_SKIP_VERIFY").then(|| value.to_string()))
                .expect("bool");
            assert_eq!(c.skip_verify, want, "{value}");
        }
        assert!(
            c.apply_env(|k| (k == "VAULT_SKIP_VERIFY").then(|| "maybe".to_string()))
                .is_err()
        );
        assert!(
            c.apply_env(|k| (k == "VAULT_KV_VERSION").then(|| "3".to_string()))
                .is_err()
        );

        let mut t = VaultConfig::new(VaultAuth::TokenFile("/t".into()));
        t.apply_env(|k| (k == "VAULT_ROLE_ID").then(|| "r".to_string()))
            .expect("apply");
        assert_eq!(
            t.auth,
            VaultAuth::TokenFile("/t".into()),
            "a role id alone does not switch to AppRole"
        );
    }

    struct Pki {
        ca_pem: String,
        server: Arc<rustls::ServerConfig>,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test vault CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params")
                .signed_by(&leaf_key, &ca, &ca_key)
                .expect("leaf");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
                leaf_key.serialize_der(),
            )),
        )
        .expect("server config");
        Pki {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }

    #[test]
    fn tls_with_own_ca_default_roots_and_skip_verify() {
        let pki = pki();
        let vault = FakeVault::start_with(Some(pki.server.clone()));
        vault.state().tokens.insert("hvs.FILE-TOKEN-1".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "hvs.FILE-TOKEN-1").expect("write");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).expect("write");
        let mut config = VaultConfig::new(VaultAuth::TokenFile(token_file));
        config.address = vault.url();

        // Our CA: verified, and it works.
        let mut with_ca = config.clone();
        with_ca.ca_cert = Some(ca_file.clone());
        let b = VaultBackend::new(with_ca).expect("backend with CA");
        assert_eq!(
            b.write("app", fields_of(&[("pw", "x")]))
                .expect("write over TLS"),
            1
        );

        // The public roots do not know our CA: refused before any request is sent.
        let before = vault.state().seen.len();
        let b = VaultBackend::new(config.clone()).expect("backend with public roots");
        let err = b.read("app", None).expect_err("unknown issuer");
        assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
        assert_eq!(vault.state().seen.len(), before);

        // skip_verify: accepted.
        let mut lab = config.clone();
        lab.skip_verify = true;
        let b = VaultBackend::new(lab).expect("backend without verification");
        assert_eq!(field(&b.read("app", None).expect("read"), "pw"), "x");

        // A CA file that is not one fails at construction.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        for path in [junk, dir.path().join("missing.pem")] {
            let mut bad = config.clone();
            bad.ca_cert = Some(path);
            assert!(matches!(
                VaultBackend::new(bad),
                Err(SecretError::Invalid(_))
            ));
        }
    }

    #[test]
    fn loopback_detection() {
        for a in [
            "http://127.0.0.1:8200",
            "http://localhost:8200",
            "http://[::1]:8200",
            "http://localhost",
        ] {
            assert!(is_loopback(a), "{a}");
        }
        for a in [
            "http://10.0.0.1:8200",
            "http://vault:8200",
            "http://[2001:db8::1]:8200",
        ] {
            assert!(!is_loopback(a), "{a}");
        }
    }
}
