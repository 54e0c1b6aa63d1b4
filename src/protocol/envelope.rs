//! The envelope that wraps every request and response.
//!
//! ```json
//! {"version":"1.0","type":"ping_request","id":"msg_1700000000","timestamp":"2026-11-23T10:00:00Z","payload":null}
//! ```
//! Requests are read leniently (only `type` is required, as the upstream client always sends
//! it); responses always carry every field, echo the request `id`, and use RFC 3339 UTC
//! timestamps with whole seconds.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

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

/// A request envelope read in one pass, its payload left as the JSON text it came as.
///
/// The fields and their types are [`RawRequest`]'s, so that a frame this reads (and that reads
/// as [`Checked`]) is one [`RawRequest`] reads too, with the same values; a frame this cannot
/// read (a duplicate key, a field of the wrong type) is read again as a [`RawRequest`], which
/// decides and words the error as before.
#[derive(Debug, Deserialize)]
pub struct TextRequest<'a> {
    /// As [`RawRequest::version`].
    #[serde(default)]
    pub version: Option<String>,
    /// As [`RawRequest::kind`].
    #[serde(rename = "type")]
    pub kind: String,
    /// As [`RawRequest::id`].
    #[serde(default)]
    pub id: Option<String>,
    /// As [`RawRequest::timestamp`]: anything, never looked at.
    #[serde(default)]
    pub timestamp: Option<serde::de::IgnoredAny>,
    /// The payload's JSON text; `None` when it is absent or `null`.
    #[serde(default, borrow)]
    pub payload: Option<&'a RawValue>,
    /// As [`RawRequest::signature`]: anything, never looked at.
    #[serde(default)]
    pub signature: Option<serde::de::IgnoredAny>,
}

/// JSON read the way reading it into a `serde_json::Value` reads it, keeping nothing: every
/// string and key decoded (valid UTF-8, no lone surrogate), every number in range, nesting
/// within serde_json's recursion limit.
///
/// Skipping a value (an ignored field, a `RawValue`) checks its syntax only, so a frame that
/// [`TextRequest`] reads can hold what a tree refuses (`1e400`, `"\ud800"`, invalid UTF-8, 200
/// levels of nesting); such a frame must be refused as malformed, as it always was. Reading the
/// frame as `Checked` as well finds those.
pub struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

/// Visits any JSON value as [`Checked`].
struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// A request's payload, not yet read as the type its request type names.
#[derive(Debug)]
pub enum Payload<'a> {
    /// The payload's JSON text as it came in the frame; `None` when absent or `null`.
    Text(Option<&'a RawValue>),
    /// The payload as a tree, when the envelope had to be read as one.
    Tree(Value),
}

impl Payload<'_> {
    /// Whether the payload is absent or `null`.
    pub fn is_null(&self) -> bool {
        match self {
            Payload::Text(t) => t.is_none(),
            Payload::Tree(v) => v.is_null(),
        }
    }

    /// The payload read as `T`, with the same result and the same error as reading the tree
    /// with `serde_json::from_value` (the way every payload used to be read).
    ///
    /// The text is read straight into `T`, the fast way; when that fails, the text is read
    /// as a tree and the tree as `T`, so an error is worded as `from_value` words it (without
    /// a line and column of the payload text) and a duplicate key keeps its last value, as
    /// in a tree.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Payload::Text(None) => serde_json::from_value(Value::Null),
            Payload::Text(Some(raw)) => serde_json::from_str(raw.get())
                .or_else(|_| serde_json::from_value(serde_json::from_str::<Value>(raw.get())?)),
            Payload::Tree(v) => serde_json::from_value(v.clone()),
        }
    }

    /// The payload as a tree (`null` when absent).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Payload::Text(None) => Ok(Value::Null),
            Payload::Text(Some(raw)) => serde_json::from_str(raw.get()),
            Payload::Tree(v) => Ok(v.clone()),
        }
    }
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
    fn a_payload_reads_from_its_text_as_from_its_tree() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct P {
            a: u32,
        }
        let text = |s: &str| {
            let raw: Option<&RawValue> = serde_json::from_str(s).unwrap();
            Payload::Text(raw).parse::<P>().map_err(|e| e.to_string())
        };
        let tree = |s: &str| {
            let v: Value = serde_json::from_str(s).unwrap();
            Payload::Tree(v).parse::<P>().map_err(|e| e.to_string())
        };
        for s in [
            r#"{"a":1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":"x"}"#,
            r#"{"a":-1}"#,
            r#"{"b":1}"#,
            "null",
            "[]",
            "[7]",
        ] {
            assert_eq!(text(s), tree(s), "{s}");
        }
        assert_eq!(text(r#"{"a":1}"#), Ok(P { a: 1 }));
        assert_eq!(
            text(r#"{"a":1,"a":2}"#),
            Ok(P { a: 2 }),
            "the last of two keys"
        );
        assert_eq!(
            text(r#"{"a":"x"}"#),
            Err("invalid type: string \"x\", expected u32".into()),
            "worded without a line and column of the payload's text"
        );
        assert!(Payload::Text(None).is_null());
    }

    #[test]
    fn an_envelope_read_as_text_reads_as_a_raw_request() {
        let frame = r#"{"version":"1.0","type":"ping_request","id":"m","timestamp":5,"payload":{"x":[1]},"signature":null,"extra":true}"#;
        let t: TextRequest<'_> = serde_json::from_str(frame).unwrap();
        let r: RawRequest = serde_json::from_str(frame).unwrap();
        assert_eq!((t.version, t.kind, t.id), (r.version, r.kind, r.id));
        assert_eq!(
            serde_json::from_str::<Value>(t.payload.unwrap().get()).unwrap(),
            r.payload
        );
        let t: TextRequest<'_> = serde_json::from_str(r#"{"type":"x","payload":null}"#).unwrap();
        assert!(t.payload.is_none());
        for wrong in [
            r#"{"type":1}"#,
            r#"{"type":"x","id":2}"#,
            r#"{"type":"x","version":1}"#,
        ] {
            assert!(
                serde_json::from_str::<TextRequest<'_>>(wrong).is_err(),
                "{wrong}"
            );
            assert!(
                serde_json::from_str::<RawRequest>(wrong).is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn checked_refuses_what_a_tree_refuses_and_skipping_does_not() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let bad: [&[u8]; 6] = [
            br#"{"t":1e400}"#,
            br#"{"t":-1e400}"#,
            br#"{"t":"\ud800"}"#,
            br#"{"\udc00x":1}"#,
            b"{\"t\":\"\xff\"}",
            deep.as_bytes(),
        ];
        for frame in bad {
            let shown = String::from_utf8_lossy(frame);
            assert!(serde_json::from_slice::<Value>(frame).is_err(), "{shown}");
            assert!(serde_json::from_slice::<Checked>(frame).is_err(), "{shown}");
            assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(frame).is_ok(),
                "skipping lets {shown} through (why Checked exists)"
            );
        }
        let good = br#"{"a":[1,-2,3.5e10,"x\u00e9\ud83d\ude00",null,true,{"b":{}}],"c":18446744073709551616}"#;
        assert!(serde_json::from_slice::<Value>(good).is_ok());
        assert!(serde_json::from_slice::<Checked>(good).is_ok());
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
