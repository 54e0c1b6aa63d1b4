//! Error codes and the error payload.
//!
//! Every error the agent sends is `{"error": "<text for people>", "code": "<CODE>"}` inside an
//! `error_response` envelope (an unknown type also carries upstream's `type` field). Validation
//! failures use the same codes inside a `validation_response`'s `errors` list.

use serde::{Deserialize, Serialize};

/// A machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A request exceeded `ipc.max_request_bytes`; the connection is closed after this.
    RequestTooLarge,
    /// The bytes were not a JSON object; the connection is closed after this.
    MalformedRequest,
    /// The envelope's `type` is not one this agent knows; the connection stays usable.
    UnknownMessageType,
    /// The envelope is JSON but lacks what every request needs.
    InvalidRequest,
    /// The payload does not fit the message type.
    InvalidPayload,
    /// The caller is not allowed to do this (admin messages, revoking another's capability).
    PermissionDenied,
    /// No capability with that id (or it was dropped after expiring).
    CapNotFound,
    /// The caller is not the process owner the capability was issued to.
    NotHolder,
    /// The capability was revoked.
    Revoked,
    /// The capability's `expires_at` has passed.
    Expired,
    /// The capability's `maxUses` were all used.
    UsageLimitExceeded,
    /// The capability's signature does not verify.
    InvalidSignature,
    /// A constraint of the capability does not hold.
    ConstraintViolation,
    /// The connection limit `ipc.max_connections` is reached.
    TooManyConnections,
    /// The agent is shutting down.
    ShuttingDown,
    /// The connection was idle for `ipc.conn_timeout` seconds and is closed.
    IdleTimeout,
    /// A request did not arrive whole within `ipc.request_deadline` seconds of its first byte;
    /// the connection is closed after this.
    RequestTimeout,
    /// The caller's uid made more than `ipc.rate_limit_per_uid` requests a second (beyond the
    /// burst); the request was not handled, the connection stays usable.
    RateLimited,
    /// The decision could not be recorded in the audit log, so nothing was granted.
    AuditUnavailable,
    /// The capability store could not be written, so nothing was granted or used.
    StoreUnavailable,
    /// The secrets backend cannot be reached (a Vault outage); nothing stale was served.
    BackendUnavailable,
    /// The secrets backend refused the agent (Vault's policy for the agent's token does not
    /// cover the path); nothing cached was served.
    BackendDenied,
    /// The secrets backend is not set up as the agent's configuration says (a missing mount or
    /// namespace, another KV version, a TLS mismatch).
    BackendMisconfigured,
    /// No secret at that path (or no such version).
    SecretNotFound,
    /// A warning, not an error: this validation used the capability's last use.
    LastUse,
    /// Something failed inside the agent; nothing was granted.
    InternalError,
}

impl ErrorCode {
    /// The wire spelling, e.g. `REQUEST_TOO_LARGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            ErrorCode::MalformedRequest => "MALFORMED_REQUEST",
            ErrorCode::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InvalidPayload => "INVALID_PAYLOAD",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::CapNotFound => "CAP_NOT_FOUND",
            ErrorCode::NotHolder => "NOT_HOLDER",
            ErrorCode::Revoked => "REVOKED",
            ErrorCode::Expired => "EXPIRED",
            ErrorCode::UsageLimitExceeded => "USAGE_LIMIT_EXCEEDED",
            ErrorCode::InvalidSignature => "INVALID_SIGNATURE",
            ErrorCode::ConstraintViolation => "CONSTRAINT_VIOLATION",
            ErrorCode::TooManyConnections => "TOO_MANY_CONNECTIONS",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::IdleTimeout => "IDLE_TIMEOUT",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::AuditUnavailable => "AUDIT_UNAVAILABLE",
            ErrorCode::LastUse => "LAST_USE",
            ErrorCode::BackendUnavailable => "BACKEND_UNAVAILABLE",
            ErrorCode::BackendDenied => "BACKEND_DENIED",
            ErrorCode::BackendMisconfigured => "BACKEND_MISCONFIGURED",
            ErrorCode::SecretNotFound => "SECRET_NOT_FOUND",
            ErrorCode::StoreUnavailable => "STORE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The payload of every `error_response`.
///
/// ```json
/// {"error":"unknown message type","code":"UNKNOWN_MESSAGE_TYPE","type":"secret_dump"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Text for people.
    pub error: String,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// For an unknown message type: the type that was sent (upstream compatibility).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl ErrorPayload {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, error: impl Into<String>) -> Self {
        ErrorPayload {
            error: error.into(),
            code,
            kind: None,
        }
    }

    /// Upstream's answer to an unknown type.
    pub fn unknown_type(kind: &str) -> Self {
        ErrorPayload {
            error: "unknown message type".to_string(),
            code: ErrorCode::UnknownMessageType,
            kind: Some(kind.to_string()),
        }
    }
}

impl std::fmt::Display for ErrorPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in [
            ErrorCode::RequestTooLarge,
            ErrorCode::CapNotFound,
            ErrorCode::NotHolder,
        ] {
            let s = serde_json::to_string(&code).unwrap();
            assert_eq!(s, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn unknown_type_keeps_upstream_fields() {
        let v = serde_json::to_value(ErrorPayload::unknown_type("x")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error":"unknown message type","code":"UNKNOWN_MESSAGE_TYPE","type":"x"})
        );
        let v = serde_json::to_value(ErrorPayload::new(ErrorCode::InvalidPayload, "bad")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error":"bad","code":"INVALID_PAYLOAD"})
        );
    }
}
