//! One request to Vault and what its answer means: sending with the token and namespace, and
//! turning a failed status into a [`SecretError`] that keeps what Vault said (scrubbed).

use serde::de::DeserializeOwned;
use tracing::{debug, warn};
use zeroize::Zeroizing;

use super::VaultBackend;
use super::diagnose::{self, Asked};
use crate::secrets::SecretError;

impl VaultBackend {
    /// Sends one request; returns the status and the body, whatever the status.
    pub(super) fn send(
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
                return Err(diagnose::no_answer(&self.address, &reason));
            }
        };
        let status = response.status();
        debug!(method, url, status, "vault answered");
        let text = response.into_string().map(Zeroizing::new).map_err(|e| {
            SecretError::Unavailable(format!("reading vault's answer failed: {}", e.kind()))
        })?;
        Ok((status, text))
    }

    /// Sends a request with the token (logging in first if needed). A 403 is either Vault's
    /// policy for the token or a token Vault no longer accepts (revoked, expired, rotated in
    /// its file); `auth/token/lookup-self` tells which. Only a dead token is replaced (the file
    /// read again, or a new login) and the request sent once more; a policy denial is returned
    /// as is, so a working token (and an AppRole `secret_id` with a use limit) is never spent on
    /// it.
    pub(super) fn authed(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<(u16, Zeroizing<String>, Zeroizing<String>), SecretError> {
        let token = self.token()?;
        let (status, text) = self.send(method, url, Some(&token), body, true)?;
        if status != 403 || self.token_alive(&token)? {
            return Ok((status, text, token));
        }
        debug!(
            method,
            url, "vault answered 403 and no longer accepts the token; getting one again"
        );
        self.reauth(&token)?;
        let token = self.token()?;
        let (status, text) = self.send(method, url, Some(&token), body, true)?;
        if status == 403 && !self.token_alive(&token)? {
            let said = diagnose::quote(&diagnose::server_said(&text, &[token.as_str()]));
            return Err(SecretError::Misconfigured(format!(
                "vault does not accept the agent's token, even a fresh one from {} (403{said}; auth/token/lookup-self answers 403 too: the token is revoked or expired, or lacks Vault's `default` policy, which allows that lookup)",
                self.token_source()
            )));
        }
        Ok((status, text, token))
    }

    /// Whether Vault still accepts `token`: `GET auth/token/lookup-self`, which Vault's
    /// `default` policy allows every token. 200 → yes; 403 → no; no answer → the error.
    fn token_alive(&self, token: &str) -> Result<bool, SecretError> {
        let url = format!("{}/auth/token/lookup-self", self.api);
        let (status, text) = self.send("GET", &url, Some(token), None, true)?;
        match status {
            200..=299 => Ok(true),
            403 | 401 => Ok(false),
            _ => {
                let asked = Asked {
                    what: "the agent's token",
                    op: "read",
                    api_path: "auth/token/lookup-self",
                    mount: "auth/token",
                    namespace: self.namespace.as_deref(),
                    kv_version: self.kv_version(),
                };
                let e = diagnose::failure(status, &text, &asked, &[token]);
                warn!(error = %e, "cannot tell whether vault still accepts the agent's token");
                Err(e)
            }
        }
    }

    /// The error a failed answer to `op` on `api_path` means; `what` names the secret, `scrub`
    /// what must not appear.
    pub(super) fn failure(
        &self,
        status: u16,
        text: &str,
        (op, what, api_path): (&str, &str, &str),
        scrub: &[&str],
    ) -> SecretError {
        let asked = Asked {
            what,
            op,
            api_path,
            mount: &self.mount,
            namespace: self.namespace.as_deref(),
            kv_version: self.kv_version(),
        };
        diagnose::failure(status, text, &asked, scrub)
    }
}

/// Parses an answer. serde's messages can quote the offending value, so only its position is
/// reported.
pub(super) fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, SecretError> {
    serde_json::from_str(text).map_err(|e| {
        SecretError::Unavailable(format!(
            "vault's answer for {what} is not what its API documents (JSON {:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Why a request did not get an answer. Not `Transport`'s `Display`: for a bad header it quotes
/// the header, which could be the token.
pub(super) fn transport_reason(t: &ureq::Transport) -> String {
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
