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
    BackendHealth, SecretBackend, SecretError, SecretMap, SecretString, SecretVersion, check_path,
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
    /// Without it the bundled public roots are. `VAULT_CACERT` overrides it.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate: for labs only. `VAULT_SKIP_VERIFY` overrides it.
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
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), SecretError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
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
                SecretError::Invalid(format!("VAULT_SKIP_VERIFY={v:?} is neither true/1 nor false/0"))
            })?;
        }
        if let Some(v) = get("VAULT_MOUNT_PATH") {
            self.mount = v;
        }
        if let Some(v) = get("VAULT_KV_VERSION") {
            self.kv_version = match v.as_str() {
                "1" => 1,
                "2" => 2,
                _ => return Err(SecretError::Invalid(format!("VAULT_KV_VERSION={v:?} is neither 1 nor 2"))),
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
            _ => return bad(format!("vault address {:?} must start with https:// or http://", self.address)),
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#', '@']) || rest.contains(char::is_whitespace) {
            return bad(format!("vault address {:?} must be scheme://host[:port][/path]", self.address));
        }
        if self.kv_version != 1 && self.kv_version != 2 {
            return bad(format!("vault kv_version is {}; it must be 1 or 2", self.kv_version));
        }
        check_path(&self.mount, true).and_then(|m| {
            if m.trim_end_matches('/').is_empty() { Err(SecretError::Invalid("empty".into())) } else { Ok(m) }
        })
        .map_err(|_| SecretError::Invalid(format!("vault mount {:?} is not a valid mount path", self.mount)))?;
        if let Some(ns) = &self.namespace {
            if !header_safe(ns) {
                return bad(format!("vault namespace {ns:?} is not a valid header value"));
            }
        }
        if self.timeout.is_zero() {
            return bad("vault timeout must be more than 0 seconds".into());
        }
        if let VaultAuth::AppRole { role_id, mount, .. } = &self.auth {
            if role_id.trim().is_empty() {
                return bad("vault AppRole role_id is empty".into());
            }
            if check_path(mount, false).is_err() {
                return bad(format!("vault AppRole mount {mount:?} is not a valid mount path"));
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
        if d.subsec_nanos() == 0 { s.serialize_u64(d.as_secs()) } else { s.serialize_f64(d.as_secs_f64()) }
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
            u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("a duration cannot be negative"))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|_| E::custom("a duration must be a non-negative number of seconds"))
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
            token: Mutex::new(TokenState { token: None, obtained: Instant::now(), lease: Duration::ZERO, renewable: false }),
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
        let mut req = self.agent.request(method, url).set("X-Vault-Request", "true");
        if namespaced {
            if let Some(ns) = &self.namespace {
                req = req.set("X-Vault-Namespace", ns);
            }
        }
        if let Some(token) = token {
            req = req.set("X-Vault-Token", token);
        }
        let result = match body {
            Some(body) => req.set("Content-Type", "application/json").send_string(body),
            None => req.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                let reason = transport_reason(&t);
                debug!(method, url, %reason, "vault request failed");
                return Err(SecretError::Unavailable(format!("cannot reach vault at {}: {reason}", self.api)));
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
    fn authed(&self, method: &str, url: &str, body: Option<&str>) -> Result<(u16, Zeroizing<String>, Zeroizing<String>), SecretError> {
        let token = self.token()?;
        let (status, text) = self.send(method, url, Some(&token), body, true)?;
        if status != 403 {
            return Ok((status, text, token));
        }
        debug!(method, url, "vault answered 403; getting a token again and retrying once");
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
                    if elapsed >= st.lease || (elapsed * 3 > st.lease * 2 && !st.renewable) {
                        self.login(&mut st)?;
                    } else if elapsed * 3 > st.lease * 2 {
                        if let Err(e) = self.renew(&mut st) {
                            warn!(error = %e, "renewing the vault token failed; logging in again");
                            self.login(&mut st)?;
                        }
                    }
                }
            }
        }
        st.token.clone().ok_or_else(|| SecretError::Unavailable("no vault token".into()))
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
        let VaultAuth::AppRole { role_id, secret_id_file, mount } = &self.auth else {
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
            serde_json::to_string(&Login { role_id, secret_id: &secret_id })
                .map_err(|_| SecretError::Invalid("cannot encode the AppRole login".into()))?,
        );
        let mount = encode_path(mount.trim_matches('/'));
        let url = format!("{}/auth/{mount}/login", self.api);
        let started = Instant::now();
        let (status, text) = self.send("POST", &url, None, Some(&body), true)?;
        if !(200..300).contains(&status) {
            let said = vault_errors(&text, &[secret_id.as_str(), role_id.as_str()]);
            return Err(SecretError::Unavailable(format!("AppRole login at auth/{mount} failed ({status}){said}")));
        }
        let auth = parse::<AuthAnswer>(&text, "the AppRole login")?
            .auth
            .ok_or_else(|| SecretError::Unavailable("vault's AppRole login answer has no auth".into()))?;
        if !header_safe(&auth.client_token) {
            return Err(SecretError::Unavailable("vault's AppRole login answer has no usable token".into()));
        }
        info!(lease_seconds = auth.lease_duration, renewable = auth.renewable, "logged in to vault with AppRole");
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
            return Err(SecretError::Unavailable(format!("token renewal failed ({status}){said}")));
        }
        let auth = parse::<AuthAnswer>(&text, "the token renewal")?
            .auth
            .ok_or_else(|| SecretError::Unavailable("vault's renewal answer has no auth".into()))?;
        let lease = Duration::from_secs(auth.lease_duration);
        if header_safe(&auth.client_token) {
            st.token = Some(auth.client_token);
        }
        debug!(lease_seconds = auth.lease_duration, "renewed the vault token");
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
        cache.insert((path.to_string(), version), CacheEntry { value: value.clone(), stored: Instant::now() });
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
        *lock(&self.health) = Some(BackendHealth { backend: "vault".into(), healthy, last_error });
    }

    /// Maps a failed status to an error; `what` names the secret, `scrub` what must not appear.
    fn failure(status: u16, text: &str, what: &str, scrub: &[&str]) -> SecretError {
        let said = vault_errors(text, scrub);
        match status {
            404 => SecretError::NotFound(what.to_string()),
            400 => SecretError::Invalid(format!("vault rejected the request for {what}{said}")),
            403 => SecretError::Unavailable(format!("vault denied access to {what} (403) even with a fresh token{said}")),
            429 => SecretError::Unavailable(format!("vault is rate limiting or in standby (429){said}")),
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
            let data = parse::<Kv1Read>(&text, &what)?.data.ok_or_else(|| SecretError::NotFound(what.clone()))?;
            return Ok(SecretVersion { version: 1, created_time: String::new(), data: fields(data) });
        }
        let mut url = format!("{}/{}/data/{enc}", self.api, self.mount);
        if let Some(v) = version {
            url.push_str(&format!("?version={v}"));
        }
        let (status, text, token) = self.authed("GET", &url, None)?;
        if !(200..300).contains(&status) {
            return Err(Self::failure(status, &text, &what, &[token.as_str()]));
        }
        let answer = parse::<Kv2Read>(&text, &what)?.data.ok_or_else(|| SecretError::NotFound(what.clone()))?;
        let (Some(data), Some(meta)) = (answer.data, answer.metadata) else {
            // A deleted or destroyed version: metadata without data.
            return Err(SecretError::NotFound(what));
        };
        Ok(SecretVersion { version: meta.version, created_time: meta.created_time, data: fields(data) })
    }

    fn store(&self, path: &str, data: &SecretMap) -> Result<u64, SecretError> {
        let enc = encode_path(path);
        let values: Vec<&str> = data.values().map(SecretString::expose).collect();
        let (url, body) = if self.kv_version == 1 {
            (format!("{}/{}/{enc}", self.api, self.mount), serde_json::to_string(data))
        } else {
            #[derive(Serialize)]
            struct Write<'a> {
                data: &'a SecretMap,
            }
            (format!("{}/{}/data/{enc}", self.api, self.mount), serde_json::to_string(&Write { data }))
        };
        let body = Zeroizing::new(body.map_err(|_| SecretError::Invalid("cannot encode the secret".into()))?);
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
        BackendHealth { backend: "vault".into(), healthy, last_error }
    }
}

impl SecretBackend for VaultBackend {
    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError> {
        let path = check_path(path, false)?;
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
        let path = check_path(path, false)?;
        if data.is_empty() {
            return Err(SecretError::Invalid("a secret needs at least one field".into()));
        }
        self.forget(&path);
        let result = self.store(&path, &data);
        // Whatever happened, what was cached may be out of date now.
        self.forget(&path);
        self.note(&result);
        result
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
        let prefix = check_path(prefix, true)?;
        let result = self.keys(&prefix);
        self.note(&result);
        result
    }

    fn delete(&self, path: &str) -> Result<(), SecretError> {
        let path = check_path(path, false)?;
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
        SecretError::Unavailable(format!("cannot read the {what} file {}: {e}", path.display()))
    })?);
    let value = Zeroizing::new(raw.trim().to_string());
    if value.is_empty() {
        return Err(SecretError::Unavailable(format!("the {what} file {} is empty", path.display())));
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
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
        builder.with_root_certificates(load_roots(path)?).with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// The certificates of a PEM file, as trust roots.
fn load_roots(path: &Path) -> Result<rustls::RootCertStore, SecretError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| SecretError::Invalid(format!("vault CA file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        roots.add(cert).map_err(|e| bad(format!("unusable certificate ({e})")))?;
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {}
