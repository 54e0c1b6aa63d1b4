//! What a failed answer from Vault means: the server's own words (scrubbed of the token and of
//! the request's values, multi-line lists flattened) and the cause they name, as a
//! [`SecretError`]. Plain functions over the status and the body; no I/O.
//!
//! | answer | cause | error |
//! |---|---|---|
//! | 404 with no message | no secret there | `NotFound` |
//! | 404 `namespace not found` | the namespace does not exist | `Misconfigured` |
//! | 404 `no handler for route` | nothing is mounted at the mount path | `Misconfigured` |
//! | 400 `Invalid path for a versioned K/V secrets engine` | a KV v2 mount spoken to as v1 | `Misconfigured` |
//! | 400 `Client sent an HTTP request to an HTTPS server` | `http://` to a TLS port | `Misconfigured` |
//! | 400 otherwise | the request itself | `Invalid` |
//! | 403 (to a token Vault accepts) | Vault's policy for the token | `Denied` |
//! | 405 | the mount does not do that (another engine) | `Misconfigured` |
//! | 429, 503, 3xx, 5xx, any other | Vault cannot answer now | `Unavailable` |

use crate::secrets::SecretError;

/// How long the server's quoted words may be in our messages.
pub(super) const MAX_QUOTED: usize = 300;

/// What the failed request was, for the message.
pub(super) struct Asked<'a> {
    /// The secret or folder, as the user named it (`app/db`, `app/db version 3`).
    pub what: &'a str,
    /// `read`, `write`, `list`, `delete`.
    pub op: &'a str,
    /// The path in Vault's API, after `/v1/` (`secret/data/app/db`).
    pub api_path: &'a str,
    /// The KV mount, without `/`.
    pub mount: &'a str,
    /// The namespace sent, if any.
    pub namespace: Option<&'a str>,
    /// The KV version the requests are shaped for.
    pub kv_version: u8,
}

impl Asked<'_> {
    fn in_namespace(&self) -> String {
        match self.namespace {
            Some(ns) => format!(" in namespace {ns:?}"),
            None => String::new(),
        }
    }
}

/// The server's words in a failed answer: the `errors` of a JSON body (each entry of Vault's
/// multi-error lists `1 error occurred:\n\t* …` as one message), or the first line of a body
/// that is not JSON. Each is scrubbed of `scrub`, freed of control characters and shortened.
pub(super) fn server_said(text: &str, scrub: &[&str]) -> Vec<String> {
    /// Vault puts some refusals in `warnings` (a KV version 1 read of a version 2 mount is a
    /// 404 with no `errors` and the reason as a warning).
    #[derive(serde::Deserialize)]
    struct ErrorAnswer {
        #[serde(default)]
        errors: Vec<String>,
        #[serde(default)]
        warnings: Option<Vec<String>>,
    }
    let raw: Vec<String> = match serde_json::from_str::<ErrorAnswer>(text) {
        Ok(answer) => answer
            .errors
            .iter()
            .chain(answer.warnings.iter().flatten())
            .flat_map(|e| flatten(e))
            .collect(),
        Err(_) if text.trim_start().starts_with('{') => Vec::new(),
        Err(_) => text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| vec![l.to_string()])
            .unwrap_or_default(),
    };
    raw.into_iter()
        .map(|m| clean(&m, scrub))
        .filter(|m| !m.is_empty())
        .collect()
}

/// Vault's (go-multierror's) `N errors occurred:\n\t* a\n\t* b\n\n` as `[a, b]`; any other
/// message as itself.
fn flatten(message: &str) -> Vec<String> {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or_default().trim();
    let is_list = first.ends_with("occurred:")
        && first
            .split_whitespace()
            .next()
            .is_some_and(|n| n.parse::<u32>().is_ok());
    if !is_list {
        return vec![message.to_string()];
    }
    lines
        .filter_map(|l| l.trim().strip_prefix('*'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Scrubbed, control characters and runs of spaces as one space, at most [`MAX_QUOTED`]
/// characters.
fn clean(message: &str, scrub: &[&str]) -> String {
    let mut m = message.to_string();
    for s in scrub.iter().filter(|s| !s.is_empty()) {
        m = m.replace(s, "***");
    }
    let m = m
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = m.chars().take(MAX_QUOTED).collect();
    if short.len() < m.len() {
        short.push('…');
    }
    short
}

/// `": a; b"`, or empty when the server said nothing.
pub(super) fn quote(said: &[String]) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {}", said.join("; "))
    }
}

/// The error a failed answer means. `status` is not 2xx.
pub(super) fn failure(status: u16, text: &str, asked: &Asked<'_>, scrub: &[&str]) -> SecretError {
    let said = server_said(text, scrub);
    let q = quote(&said);
    let says = |needle: &str| said.iter().any(|m| m.contains(needle));
    let what = asked.what;
    if says("Client sent an HTTP request to an HTTPS server") {
        return SecretError::Misconfigured(format!(
            "vault speaks HTTPS on that port, but the address says http://{q}; write the address with https://"
        ));
    }
    match status {
        400 | 404 if says("Invalid path for a versioned K/V secrets engine") => {
            SecretError::Misconfigured(format!(
                "the mount {}/{} is KV version 2, but the agent speaks version {} to it{q}; set `kv_version: 2` or leave it out to have it detected",
                asked.mount,
                asked.in_namespace(),
                asked.kv_version
            ))
        }
        404 if says("namespace not found") => SecretError::Misconfigured(format!(
            "vault has no namespace {:?}{q}; check `namespace` (VAULT_NAMESPACE)",
            asked.namespace.unwrap_or_default()
        )),
        404 if says("no handler for route") => SecretError::Misconfigured(format!(
            "vault has no secrets engine mounted at {}/{}{q}; check `mount` (VAULT_MOUNT_PATH)",
            asked.mount,
            asked.in_namespace()
        )),
        404 if said.is_empty() => SecretError::NotFound(what.to_string()),
        404 => SecretError::Misconfigured(format!(
            "vault found nothing to {} at {} (404){q}",
            asked.op, asked.api_path
        )),
        400 => SecretError::Invalid(format!("vault rejected the request for {what}{q}")),
        403 => SecretError::Denied(format!(
            "vault's policy for the agent's token does not allow {} on {}{} (403){q}",
            asked.op,
            asked.api_path,
            asked.in_namespace()
        )),
        405 => SecretError::Misconfigured(format!(
            "vault does not support {} on {} (405){q}; is {}/ a KV secrets engine?",
            asked.op, asked.api_path, asked.mount
        )),
        429 => SecretError::Unavailable(format!("vault is rate limiting or in standby (429){q}")),
        503 => SecretError::Unavailable(format!("vault is sealed or unavailable (503){q}")),
        300..=399 => SecretError::Unavailable(format!(
            "vault answered with a redirect ({status}); set the address to the active node"
        )),
        _ => SecretError::Unavailable(format!("vault answered {status} for {what}{q}")),
    }
}

/// The error for a request that got no answer: a TLS mismatch or an untrusted certificate is a
/// configuration to fix, anything else an outage. `reason` is the transport's own text.
pub(super) fn no_answer(address: &str, reason: &str) -> SecretError {
    let tls_to_plain = ["InvalidContentType", "corrupt message", "WrongVersion"];
    if address.starts_with("https://") && tls_to_plain.iter().any(|s| reason.contains(s)) {
        return SecretError::Misconfigured(format!(
            "vault at {address} does not speak TLS ({reason}); if it serves plain HTTP, write the address with http://"
        ));
    }
    let untrusted = [
        "UnknownIssuer",
        "invalid peer certificate",
        "NotValidForName",
        "BadSignature",
    ];
    if untrusted.iter().any(|s| reason.contains(s)) {
        return SecretError::Misconfigured(format!(
            "the certificate of vault at {address} is not trusted ({reason}); set `ca_cert` (VAULT_CACERT) to the CA that signed it"
        ));
    }
    SecretError::Unavailable(format!("cannot reach vault at {address}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Asked<'static> {
        Asked {
            what: "app/db",
            op: "read",
            api_path: "secret/data/app/db",
            mount: "secret",
            namespace: None,
            kv_version: 2,
        }
    }

    #[test]
    fn multi_line_errors_are_one_message_each() {
        let body = r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#;
        assert_eq!(server_said(body, &[]), vec!["permission denied"]);
        let body = r#"{"errors":["2 errors occurred:\n\t* a b\n\t* c\n\n", "plain\tone"]}"#;
        assert_eq!(server_said(body, &[]), vec!["a b", "c", "plain one"]);
        assert_eq!(server_said(r#"{"errors":[]}"#, &[]), Vec::<String>::new());
        assert_eq!(server_said("", &[]), Vec::<String>::new());
        // A body that is not JSON: its first line.
        assert_eq!(
            server_said("Client sent an HTTP request to an HTTPS server.\n", &[]),
            vec!["Client sent an HTTP request to an HTTPS server."]
        );
        // A broken JSON body is not quoted raw (it could hold anything).
        assert_eq!(server_said(r#"{"errors":"#, &[]), Vec::<String>::new());
    }

    #[test]
    fn scrubbed_and_shortened() {
        let body = r#"{"errors":["token hvs.SECRET and value hunter2 rejected"]}"#;
        let said = server_said(body, &["hvs.SECRET", "hunter2", ""]);
        assert_eq!(said, vec!["token *** and value *** rejected"]);
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000));
        let said = server_said(&long, &[]);
        assert_eq!(said[0].chars().count(), MAX_QUOTED + 1);
        assert!(said[0].ends_with('…'));
    }

    #[test]
    fn causes_are_named() {
        let a = asked();
        let e = failure(404, r#"{"errors":[]}"#, &a, &[]);
        assert_eq!(e, SecretError::NotFound("app/db".into()));
        let e = failure(404, r#"{"errors":["namespace not found"]}"#, &a, &[]);
        assert!(
            matches!(&e, SecretError::Misconfigured(m) if m.contains("no namespace") && m.contains("namespace not found")),
            "{e}"
        );
        let e = failure(
            404,
            r#"{"errors":["no handler for route \"nope/data/x\". route entry not found."]}"#,
            &a,
            &[],
        );
        assert!(
            matches!(&e, SecretError::Misconfigured(m) if m.contains("no secrets engine mounted at secret/") && m.contains("no handler for route")),
            "{e}"
        );
        let e = failure(
            400,
            r#"{"errors":["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."]}"#,
            &Asked { kv_version: 1, ..a },
            &[],
        );
        assert!(
            matches!(&e, SecretError::Misconfigured(m) if m.contains("KV version 2") && m.contains("version 1")),
            "{e}"
        );
        let e = failure(
            404,
            r#"{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine. See the API docs."]}"#,
            &Asked {
                kv_version: 1,
                ..asked()
            },
            &[],
        );
        assert!(
            matches!(&e, SecretError::Misconfigured(m) if m.contains("KV version 2")),
            "{e}"
        );
        let a = asked();
        let e = failure(
            403,
            r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
            &a,
            &[],
        );
        assert_eq!(
            e,
            SecretError::Denied(
                "vault's policy for the agent's token does not allow read on secret/data/app/db (403): permission denied".into()
            )
        );
        let e = failure(
            400,
            "Client sent an HTTP request to an HTTPS server.\n",
            &a,
            &[],
        );
        assert!(
            matches!(&e, SecretError::Misconfigured(m) if m.contains("https://") && m.contains("Client sent")),
            "{e}"
        );
        let e = failure(400, r#"{"errors":["bad field"]}"#, &a, &[]);
        assert!(matches!(&e, SecretError::Invalid(m) if m.ends_with(": bad field")));
        let e = failure(503, r#"{"errors":["Vault is sealed"]}"#, &a, &[]);
        assert!(matches!(&e, SecretError::Unavailable(m) if m.contains("sealed")));
        let e = failure(307, "", &a, &[]);
        assert!(matches!(&e, SecretError::Unavailable(m) if m.contains("redirect")));
    }

    #[test]
    fn transport_failures_tell_tls_mismatches_from_outages() {
        let e = no_answer(
            "https://127.0.0.1:8200",
            "Connection Failed: received corrupt message of type InvalidContentType",
        );
        assert!(matches!(&e, SecretError::Misconfigured(m) if m.contains("http://")));
        let e = no_answer(
            "https://127.0.0.1:8200",
            "Connection Failed: invalid peer certificate: UnknownIssuer",
        );
        assert!(matches!(&e, SecretError::Misconfigured(m) if m.contains("ca_cert")));
        let e = no_answer(
            "http://127.0.0.1:8200",
            "Connection Failed: Connection refused",
        );
        assert!(matches!(&e, SecretError::Unavailable(_)));
    }
}
