//! The KV secrets engine's requests, version 1 and version 2: which version the mount is
//! (asked of Vault once, before the first request that depends on it), the request shapes,
//! and what their answers mean. Also the health probe.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use zeroize::Zeroizing;

use super::answers::{Kv1Read, Kv2Read, Kv2Write, ListAnswer, fields};
use super::diagnose::server_said;
use super::http::parse;
use super::{VaultBackend, encode_path, lock};
use crate::secrets::{BackendHealth, SecretError, SecretMap, SecretString, SecretVersion};

/// `GET sys/internal/ui/mounts/PATH`: the mount a path is in (what Vault's own `vault kv`
/// commands ask to learn the KV version).
#[derive(Deserialize)]
struct MountAnswer {
    data: MountData,
}

#[derive(Deserialize)]
struct MountData {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    options: Option<MountOptions>,
}

#[derive(Deserialize)]
struct MountOptions {
    #[serde(default)]
    version: Option<String>,
}

impl VaultBackend {
    /// The KV version to speak to the mount. Asked of Vault the first time
    /// (`sys/internal/ui/mounts/MOUNT`) and kept:
    /// - a mount that is not a KV engine, or whose version differs from a configured
    ///   `kv_version`, or a `mount` that names a folder inside another mount, is
    ///   `Misconfigured`, before anything is read or written;
    /// - when Vault will not say (the token's policy does not cover the mount's own path, which
    ///   is also Vault's answer for a mount that does not exist), the configured version is
    ///   used, or 2 when none is; the KV requests' own answers then name any mismatch.
    pub(super) fn engine(&self) -> Result<u8, SecretError> {
        if let Some(v) = *lock(&self.engine) {
            return Ok(v);
        }
        let api_path = format!("sys/internal/ui/mounts/{}", self.mount);
        let (status, text, token) = self.authed("GET", &self.url(&api_path), None)?;
        let fallback = self.configured_kv.unwrap_or(2);
        let version = match status {
            200..=299 => self.check_mount(parse::<MountAnswer>(&text, "the mount")?.data)?,
            403 | 404 => {
                let asked = ("read", "the mount", api_path.as_str());
                let e = self.failure(status, &text, asked, &[token.as_str()]);
                let said = server_said(&text, &[token.as_str()]);
                if said.iter().any(|m| m.contains("namespace not found")) {
                    return Err(e);
                }
                warn!(
                    mount = %self.mount,
                    kv_version = fallback,
                    reason = %e,
                    "vault does not tell the agent's token which KV version the mount is; using the configured one"
                );
                fallback
            }
            _ => {
                let asked = ("read", "the mount", api_path.as_str());
                return Err(self.failure(status, &text, asked, &[token.as_str()]));
            }
        };
        *lock(&self.engine) = Some(version);
        Ok(version)
    }

    /// What `sys/internal/ui/mounts` said of the mount, against the configuration.
    fn check_mount(&self, mount: MountData) -> Result<u8, SecretError> {
        let want = format!("{}/", self.mount);
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace {n:?}"))
            .unwrap_or_default();
        if !matches!(mount.kind.as_str(), "kv" | "generic") {
            return Err(SecretError::Misconfigured(format!(
                "the mount {want}{ns} is a {:?} secrets engine, not KV; check `mount` (VAULT_MOUNT_PATH)",
                mount.kind
            )));
        }
        if !mount.path.is_empty() && mount.path != want {
            return Err(SecretError::Misconfigured(format!(
                "{want}{ns} is a folder inside the KV mount {}; set `mount: {}`",
                mount.path,
                mount.path.trim_end_matches('/')
            )));
        }
        let found = match mount.options.and_then(|o| o.version).as_deref() {
            Some("2") => 2,
            _ => 1,
        };
        if let Some(configured) = self.configured_kv {
            if configured != found {
                return Err(SecretError::Misconfigured(format!(
                    "the mount {want}{ns} is KV version {found}, but `kv_version` is {configured}; set `kv_version: {found}` or leave it out to have it detected"
                )));
            }
        }
        info!(mount = %want, kv_version = found, "vault KV mount version detected");
        Ok(found)
    }

    pub(super) fn fetch(
        &self,
        path: &str,
        version: Option<u64>,
    ) -> Result<SecretVersion, SecretError> {
        let what = match version {
            Some(v) => format!("{path} version {v}"),
            None => path.to_string(),
        };
        let enc = encode_path(path);
        if self.engine()? == 1 {
            if version.is_some_and(|v| v != 1) {
                return Err(SecretError::NotFound(what));
            }
            let api_path = format!("{}/{enc}", self.mount);
            let (status, text, token) = self.authed("GET", &self.url(&api_path), None)?;
            if !(200..300).contains(&status) {
                let asked = ("read", what.as_str(), api_path.as_str());
                return Err(self.failure(status, &text, asked, &[token.as_str()]));
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
        let mut api_path = format!("{}/data/{enc}", self.mount);
        if let Some(v) = version {
            api_path.push_str(&format!("?version={v}"));
        }
        let (status, text, token) = self.authed("GET", &self.url(&api_path), None)?;
        if !(200..300).contains(&status) {
            let asked = ("read", what.as_str(), api_path.as_str());
            return Err(self.failure(status, &text, asked, &[token.as_str()]));
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

    pub(super) fn store(&self, path: &str, data: &SecretMap) -> Result<u64, SecretError> {
        let enc = encode_path(path);
        let values: Vec<&str> = data.values().map(SecretString::expose).collect();
        let kv = self.engine()?;
        let (api_path, body) = if kv == 1 {
            (format!("{}/{enc}", self.mount), serde_json::to_string(data))
        } else {
            #[derive(Serialize)]
            struct Write<'a> {
                data: &'a SecretMap,
            }
            (
                format!("{}/data/{enc}", self.mount),
                serde_json::to_string(&Write { data }),
            )
        };
        let body = Zeroizing::new(
            body.map_err(|_| SecretError::Invalid("cannot encode the secret".into()))?,
        );
        let (status, text, token) = self.authed("POST", &self.url(&api_path), Some(&body))?;
        if !(200..300).contains(&status) {
            let mut scrub = values;
            scrub.push(token.as_str());
            let asked = ("write", path, api_path.as_str());
            return Err(self.failure(status, &text, asked, &scrub));
        }
        if kv == 1 {
            return Ok(1);
        }
        // Vault took the write: whatever its answer, the value is stored, and the message says so.
        parse::<Kv2Write>(&text, path)
            .map(|w| w.data.version)
            .map_err(|_| {
                SecretError::Misconfigured(format!(
                    "vault stored the value at {api_path} but did not answer as a KV version 2 mount does ({status}, {} bytes); the mount may be KV version 1 (then the value now sits at data/{path} in it): set `kv_version: 1`",
                    text.len()
                ))
            })
    }

    /// The names directly under `prefix`. A folder with nothing under it does not exist in
    /// Vault (LIST answers 404): `NotFound`, as with the file backend.
    pub(super) fn keys(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
        let enc = encode_path(prefix);
        let api_path = if self.engine()? == 1 {
            format!("{}/{enc}", self.mount)
        } else {
            format!("{}/metadata/{enc}", self.mount)
        };
        let (status, text, token) = self.authed("LIST", &self.url(&api_path), None)?;
        if !(200..300).contains(&status) {
            let asked = ("list", prefix, api_path.as_str());
            return Err(self.failure(status, &text, asked, &[token.as_str()]));
        }
        let keys = parse::<ListAnswer>(&text, prefix)?.data.keys;
        if keys.is_empty() {
            return Err(SecretError::NotFound(prefix.to_string()));
        }
        Ok(keys)
    }

    /// Deletes every version. Vault answers 204 to a DELETE of a path that holds nothing, so
    /// the agent looks first: a missing secret is `NotFound`, as with the file backend. A
    /// token allowed to delete but not to look deletes without the look.
    pub(super) fn remove(&self, path: &str) -> Result<(), SecretError> {
        let enc = encode_path(path);
        let api_path = if self.engine()? == 1 {
            format!("{}/{enc}", self.mount)
        } else {
            format!("{}/metadata/{enc}", self.mount)
        };
        let url = self.url(&api_path);
        let (status, text, token) = self.authed("GET", &url, None)?;
        match status {
            200..=299 | 403 => {}
            _ => {
                let asked = ("read", path, api_path.as_str());
                return Err(self.failure(status, &text, asked, &[token.as_str()]));
            }
        }
        let (status, text, token) = self.authed("DELETE", &url, None)?;
        if !(200..300).contains(&status) {
            let asked = ("delete", path, api_path.as_str());
            return Err(self.failure(status, &text, asked, &[token.as_str()]));
        }
        Ok(())
    }

    /// `{address}/v1/{api_path}`.
    fn url(&self, api_path: &str) -> String {
        format!("{}/{api_path}", self.api)
    }

    /// `GET /v1/sys/health`, for a status asked before any other call.
    pub(super) fn probe(&self) -> BackendHealth {
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
