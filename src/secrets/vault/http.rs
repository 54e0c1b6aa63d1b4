//! One request to Vault and what its answer means: sending with the token and namespace, and
//! turning a failed status into a [`SecretError`] that keeps what Vault said (scrubbed).

use serde::de::DeserializeOwned;
use tracing::debug;
use zeroize::Zeroizing;

use super::VaultBackend;
use super::answers::ErrorAnswer;
use crate::secrets::SecretError;

/// How long Vault's quoted error texts may be in our messages.
pub(super) const MAX_QUOTED: usize = 300;

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
    pub(super) fn authed(
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

    /// Maps a failed status to an error; `what` names the secret, `scrub` what must not appear.
    pub(super) fn failure(status: u16, text: &str, what: &str, scrub: &[&str]) -> SecretError {
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

/// Vault's `errors`, as `": a; b"`, scrubbed of `scrub` and shortened; empty when none.
pub(super) fn vault_errors(text: &str, scrub: &[&str]) -> String {
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
