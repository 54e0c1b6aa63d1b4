//! The `vault` backend's configuration: the `secrets.vault` keys, their defaults, the `VAULT_*`
//! environment overrides and the checks done before anything is contacted.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::header_safe;
use crate::secrets::{PathKind, SecretError, check_path};

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
    /// KV engine version, 1 or 2. Left out (the default), it is asked of Vault
    /// (`sys/internal/ui/mounts/MOUNT`) before the first request; set, a mount of the other
    /// version is refused before anything is read or written. `VAULT_KV_VERSION` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_version: Option<u8>,
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
    /// Kubernetes auth (`POST /v1/auth/{mount}/login` with the pod's service-account token);
    /// the token is renewed before it expires, like AppRole's.
    Kubernetes {
        /// The Vault role the service account logs in as. It may be left out here when
        /// `VAULT_KUBERNETES_ROLE` gives it, as that variable overrides it.
        #[serde(default)]
        role: String,
        /// File holding the service-account token, read at each login (Kubernetes rotates it;
        /// default `/var/run/secrets/kubernetes.io/serviceaccount/token`).
        #[serde(default = "default_kubernetes_token_file")]
        token_file: PathBuf,
        /// Where the Kubernetes auth method is mounted (default `kubernetes`).
        #[serde(default = "default_kubernetes_mount")]
        mount: String,
    },
    /// JWT auth (`POST /v1/auth/{mount}/login` with a JWT that Vault checks against its keys);
    /// the token is renewed before it expires, like AppRole's.
    Jwt {
        /// The Vault role to log in as.
        role: String,
        /// File holding the JWT, read at each login (whoever issues it may rotate it).
        token_file: PathBuf,
        /// Where the JWT auth method is mounted (default `jwt`).
        #[serde(default = "default_jwt_mount")]
        mount: String,
    },
}

pub(super) fn default_address() -> String {
    "https://127.0.0.1:8200".into()
}

pub(super) fn default_mount() -> String {
    "secret".into()
}

pub(super) fn default_cache_ttl() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_approle_mount() -> String {
    "approle".into()
}

pub(super) fn default_kubernetes_token_file() -> PathBuf {
    PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
}

pub(super) fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}

pub(super) fn default_jwt_mount() -> String {
    "jwt".into()
}

impl VaultConfig {
    /// A configuration with every default and the given way to log in.
    pub fn new(auth: VaultAuth) -> Self {
        VaultConfig {
            address: default_address(),
            namespace: None,
            mount: default_mount(),
            kv_version: None,
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
    /// `VAULT_MOUNT_PATH`, `VAULT_KV_VERSION`, `VAULT_ROLE_ID` (with AppRole only) and
    /// `VAULT_KUBERNETES_ROLE` (with Kubernetes auth only). Unset or empty variables change
    /// nothing; neither role variable chooses the auth method. `lookup` reads one variable, e.g.
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
                "1" => Some(1),
                "2" => Some(2),
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
        if let Some(v) = get("VAULT_KUBERNETES_ROLE") {
            if let VaultAuth::Kubernetes { role, .. } = &mut self.auth {
                *role = v;
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
        if let Some(v) = self.kv_version.filter(|v| !matches!(v, 1 | 2)) {
            return bad(format!(
                "vault kv_version is {v}; it must be 1 or 2 (or left out to have it detected)"
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
        match &self.auth {
            VaultAuth::TokenFile(_) => Ok(()),
            VaultAuth::AppRole { role_id, mount, .. } => {
                check_login("AppRole", role_id, mount, None, "role_id is empty")
            }
            VaultAuth::Kubernetes {
                role,
                token_file,
                mount,
            } => check_login(
                "Kubernetes",
                role,
                mount,
                Some(token_file),
                "role is empty: set auth.kubernetes.role or VAULT_KUBERNETES_ROLE",
            ),
            VaultAuth::Jwt {
                role,
                token_file,
                mount,
            } => check_login("JWT", role, mount, Some(token_file), "role is empty"),
        }
    }
}

/// The checks every login method shares: a role, a valid mount path, a credential file named.
/// `no_role` says what is wrong when the role is empty.
fn check_login(
    method: &str,
    role: &str,
    mount: &str,
    token_file: Option<&PathBuf>,
    no_role: &str,
) -> Result<(), SecretError> {
    if role.trim().is_empty() {
        return Err(SecretError::Invalid(format!("vault {method} {no_role}")));
    }
    if check_path(mount.trim_matches('/'), PathKind::Secret).is_err() {
        return Err(SecretError::Invalid(format!(
            "vault {method} mount {mount:?} is not a valid mount path"
        )));
    }
    if token_file.is_some_and(|f| f.as_os_str().is_empty()) {
        return Err(SecretError::Invalid(format!(
            "vault {method} token_file is empty"
        )));
    }
    Ok(())
}

/// Go's `strconv.ParseBool`, which Vault's own tools use for `VAULT_SKIP_VERIFY`.
pub(super) fn parse_bool(v: &str) -> Option<bool> {
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
