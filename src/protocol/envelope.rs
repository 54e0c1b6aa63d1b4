//! The envelope that wraps every request and response.
//!
//! ```json
//! {"version":"1.0","type":"ping_request","id":"msg_1700000000","timestamp":"2026-11-23T10:00:00Z","payload":null}
//! ```
//! Requests are read leniently (only `type` is required, as the upstream client always sends
//! it); responses always carry every field, echo the request `id`, and use RFC 3339 UTC
//! timestamps with whole seconds.

use serde::{Deserialize, Serialize};

/// The protocol version this agent writes in every response envelope.
pub const PROTOCOL_VERSION: &str = "1.0";

/// A request envelope as received, before its payload is interpreted.
///
/// The payload stays a `serde_json::Value` so that an unknown `type` can still be answered
/// (with `unknown message type`) without closing the connection.
#[derive(Debug, Clone, Deserialize)]
pub struct RawRequest {
    /// Protocol version claimed by the client; informational only.
    #[serde(default)]
    pub version: Option<String>,
    /// Message type, e.g. `capability_request`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Client-chosen id, echoed in the response so a client can pair them.
    #[serde(default)]
    pub id: Option<String>,
    /// Client's timestamp; informational only, never used for a decision.
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
    /// The message payload; `null` or absent for payload-less requests.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Upstream reserves this field and never sets it; accepted and ignored.
    #[serde(default)]
    pub signature: Option<serde_json::Value>,
}

/// A response envelope, generic over its payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<P> {
    /// Always [`PROTOCOL_VERSION`] in responses.
    pub version: String,
    /// Response type, e.g. `capability_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The id of the request this answers (empty when the request had none or was unreadable).
    pub id: String,
    /// When the response was made: RFC 3339, UTC, whole seconds, `Z`.
    pub timestamp: String,
    /// The response payload.
    pub payload: P,
}

impl<P> Envelope<P> {
    /// Builds an envelope with the current time.
    pub fn new(kind: impl Into<String>, id: impl Into<String>, payload: P) -> Self {
        Envelope {
            version: PROTOCOL_VERSION.to_string(),
            kind: kind.into(),
            id: id.into(),
            timestamp: crate::timefmt::now_rfc3339(),
            payload,
        }
    }
}

impl<P: Serialize> Envelope<P> {
    /// Compact JSON plus the trailing `\n` the protocol puts after every response.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing plain data structs with string keys cannot fail. The buffer is sized for
        // a typical answer rather than grown from empty.
        let mut out = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut out, self).is_err() {
            out.clear();
            out.extend_from_slice(b"{}");
        }
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upstream_status_request_with_null_payload() {
        let raw: RawRequest = serde_json::from_str(
            r#"{"version":"1.0","type":"status_request","id":"msg_1","timestamp":"2026-01-01T00:00:00.123456789Z","payload":null}"#,
        )
        .unwrap();
        assert_eq!(raw.kind, "status_request");
        assert_eq!(raw.id.as_deref(), Some("msg_1"));
        assert!(raw.payload.is_null());
    }

    #[test]
    fn only_type_is_required() {
        let raw: RawRequest = serde_json::from_str(r#"{"type":"ping_request"}"#).unwrap();
        assert_eq!(raw.kind, "ping_request");
        assert!(raw.id.is_none());
        assert!(serde_json::from_str::<RawRequest>(r#"{"id":"x"}"#).is_err());
    }

    #[test]
    fn response_line_is_compact_and_newline_terminated() {
        let line =
            Envelope::new("ping_response", "a", serde_json::json!({"message":"pong"})).to_line();
        assert_eq!(*line.last().unwrap(), b'\n');
        let text = std::str::from_utf8(&line[..line.len() - 1]).unwrap();
        assert!(!text.contains('\n') && !text.contains(": "));
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["id"], "a");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
