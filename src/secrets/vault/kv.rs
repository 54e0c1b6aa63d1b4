//! The KV secrets engine's requests, version 1 and version 2, and the health probe.

use serde::Serialize;
use zeroize::Zeroizing;

use super::answers::{Kv1Read, Kv2Read, Kv2Write, ListAnswer, fields};
use super::http::parse;
use super::{VaultBackend, encode_path};
use crate::secrets::{BackendHealth, SecretError, SecretMap, SecretString, SecretVersion};

impl VaultBackend {
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

    pub(super) fn store(&self, path: &str, data: &SecretMap) -> Result<u64, SecretError> {
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

    pub(super) fn keys(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
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

    pub(super) fn remove(&self, path: &str) -> Result<(), SecretError> {
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
