//! The checks behind the fuzz targets, shared with the main crate's `tests/fuzz_corpus.rs`
//! (which includes this file with `#[path]`), so that the fuzzer and CI assert the same
//! invariants on the same inputs. Every check panics when an invariant breaks: that is what
//! libFuzzer reports as a crash, and what the corpus test reports as a failing file.
//!
//! - [`check_request_stream`]: raw bytes as a client would send them, read by the session's
//!   `RequestReader` (over a `JsonStreamDecoder`) in several chunkings, then every frame
//!   through the steps `actors::dispatch::handle_frame` takes (JSON value, envelope, type,
//!   payload, the payload checks), for every request type.
//! - [`check_policy`]: bytes as a policy file, through the loader's own parse and validate
//!   functions, as JSON and as YAML.
//!
//! Only the items of the agent's library are used, never copies of them, except the few lines
//! of `handle_frame`/`dispatch` that live in an actor (private glue over the public functions
//! called here); [`session_outcome`] mirrors them step by step.

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aether_vault_agent::actors::dispatch::{After, parse_envelope};
use aether_vault_agent::config::RequestLimits;
use aether_vault_agent::identity::PeerIdentity;
use aether_vault_agent::policy::document::PolicyDocument;
use aether_vault_agent::policy::load::{LoadError, compile, parse_document, parse_yaml_document};
use aether_vault_agent::policy::{EvalInput, Fallback, PolicySet, RuleIndex, evaluate};
use aether_vault_agent::protocol::checks;
use aether_vault_agent::protocol::credentials::CredentialTestRequest;
use aether_vault_agent::protocol::types::{
    CapabilityRequest, ListRequest, PolicyTestRequest, RevokeRequest, SecretRequest,
    ValidateRequest,
};
use aether_vault_agent::protocol::{Envelope, ErrorCode, ErrorPayload, Payload, RequestType};
use aether_vault_agent::transport::framing::{DEFAULT_MAX_DEPTH, FrameError, JsonStreamDecoder};
use aether_vault_agent::transport::reader::{ReadError, RequestReader};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, ReadBuf};

/// The decoder's two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `ipc.max_request_bytes`.
    pub max_bytes: usize,
    /// The nesting limit.
    pub max_depth: usize,
}

/// What the session runs with by default: `ipc.max_request_bytes` 65536, depth 64.
pub const SESSION: Limits = Limits {
    max_bytes: 65536,
    max_depth: DEFAULT_MAX_DEPTH,
};

/// The smallest size limit the configuration accepts (1024), with the session's depth.
pub const SMALLEST: Limits = Limits {
    max_bytes: 1024,
    max_depth: DEFAULT_MAX_DEPTH,
};

/// Limits no configuration uses, small enough that short fuzz inputs cross both of them.
pub const TIGHT: Limits = Limits {
    max_bytes: 48,
    max_depth: 3,
};

/// How the bytes reach the decoder.
#[derive(Debug, Clone, Copy)]
pub enum Chunking {
    /// As much as the read buffer takes at once.
    Whole,
    /// One byte per read: the worst case for resumable scanning.
    Bytewise,
    /// Reads of pseudo-random sizes (1 to 97 bytes, sometimes 4 KiB), from this seed.
    Random(u64),
}

/// An in-memory socket that hands out `data` in the reads `chunking` says, then EOF.
struct ChunkedReader<'a> {
    data: &'a [u8],
    pos: usize,
    chunking: Chunking,
    state: u64,
}

impl ChunkedReader<'_> {
    fn next_len(&mut self) -> usize {
        match self.chunking {
            Chunking::Whole => usize::MAX,
            Chunking::Bytewise => 1,
            Chunking::Random(_) => {
                // xorshift64
                let mut x = self.state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.state = x;
                if x % 16 == 0 {
                    4096
                } else {
                    1 + (x >> 8) as usize % 97
                }
            }
        }
    }
}

impl AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.data.len() - self.pos;
        let n = self.next_len().min(left).min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// How a byte stream ended for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// EOF between requests.
    Clean,
    /// `REQUEST_TOO_LARGE`.
    TooLarge,
    /// Nesting over the limit (`MALFORMED_REQUEST`).
    TooDeep,
    /// Not a stream of JSON objects (`MALFORMED_REQUEST`), with the decoder's message.
    Malformed(String),
    /// Reading failed (cannot happen with an in-memory reader).
    Io(String),
}

impl From<FrameError> for End {
    fn from(e: FrameError) -> End {
        match e {
            FrameError::TooLarge { .. } => End::TooLarge,
            FrameError::TooDeep { .. } => End::TooDeep,
            FrameError::Malformed(m) => End::Malformed(m),
            FrameError::Io(e) => End::Io(e.to_string()),
        }
    }
}

/// What the session's reader makes of a byte stream: the frames, in order, and how it ended
/// (the session closes the connection at the first error, so nothing after it counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The frames handed to `handle_frame`.
    pub frames: Vec<Bytes>,
    /// Why the stream ended.
    pub end: End,
}

/// How long a request may take to arrive; never reached by an in-memory reader.
const DEADLINE: Duration = Duration::from_secs(3600);

thread_local! {
    /// The reader's deadline needs tokio's timer: one runtime per thread, reused.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// Runs `data` through the session's reader (`transport::reader::RequestReader` over a
/// `JsonStreamDecoder`) exactly as the session's stream does: requests until the first error
/// or the end of the stream.
pub fn decode(data: &[u8], limits: Limits, chunking: Chunking) -> Decoded {
    let state = match chunking {
        Chunking::Random(seed) => seed | 1,
        _ => 1,
    };
    let reader = ChunkedReader {
        data,
        pos: 0,
        chunking,
        state,
    };
    let mut requests = RequestReader::new(
        reader,
        JsonStreamDecoder::new(limits.max_bytes, limits.max_depth),
        DEADLINE,
    );
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let mut frames = Vec::new();
            // Every call yields a frame, an error or the end, so this bound is never reached
            // unless the reader loops.
            for _ in 0..=data.len() + 1 {
                match requests.next().await {
                    Some(Ok(frame)) => frames.push(frame),
                    Some(Err(ReadError::Frame(e))) => {
                        assert!(requests.next().await.is_none(), "nothing after an error");
                        return Decoded {
                            frames,
                            end: e.into(),
                        };
                    }
                    Some(Err(e @ ReadError::Deadline(_))) => {
                        panic!("an in-memory request missed its deadline: {e}")
                    }
                    None => {
                        return Decoded {
                            frames,
                            end: End::Clean,
                        };
                    }
                }
            }
            panic!("the reader made no progress: more requests than bytes");
        })
    })
}

/// FNV-1a, to derive a chunking from the input itself.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Nesting depth of a JSON value: an object or array is one level more than its deepest
/// element; the request object itself is level 1.
pub fn value_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A plain, whole-buffer scan of one frame: its deepest nesting, and where its top level
/// closed (strings and escapes respected). Independent of the decoder's resumable state.
fn scan_frame(frame: &[u8]) -> (usize, Option<usize>) {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for (i, &b) in frame.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (max, Some(i));
                }
            }
            _ => {}
        }
    }
    (max, None)
}

/// Checks one decoding of `data` against the framing contract, and against what serde_json's
/// own stream reader finds in the same bytes.
fn check_framing(data: &[u8], limits: Limits, d: &Decoded) {
    // The frames are the input minus JSON whitespace between them, in order, each one balanced
    // object within both limits.
    let mut pos = 0;
    let mut ends = Vec::new();
    for f in &d.frames {
        assert!(
            f.len() <= limits.max_bytes,
            "a frame of {} bytes passed the limit of {}",
            f.len(),
            limits.max_bytes
        );
        while pos < data.len() && is_ws(data[pos]) {
            pos += 1;
        }
        assert!(
            data[pos..].starts_with(f),
            "frame at byte {pos} is not the next slice of the input"
        );
        assert_eq!(f.first(), Some(&b'{'), "a frame must start with '{{'");
        let (depth, closed) = scan_frame(f);
        assert!(
            depth <= limits.max_depth,
            "a frame nesting {depth} levels passed the limit of {}",
            limits.max_depth
        );
        assert_eq!(
            closed,
            Some(f.len() - 1),
            "a frame must end where its top-level object closes"
        );
        pos += f.len();
        ends.push(pos);
    }
    if d.end == End::Clean {
        assert!(
            data[pos..].iter().all(|b| is_ws(*b)),
            "a clean end left unread bytes"
        );
    }
    assert!(
        !matches!(d.end, End::Io(_)),
        "an in-memory read failed: {:?}",
        d.end
    );

    // serde_json's stream reader, on the same bytes, as a reference: every value it reads is a
    // frame if it is an object within the limits, else the decoder stops there with the error
    // the limits say. (It stops comparing at the first value serde_json refuses.)
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
    let mut index = 0;
    let mut start_of = 0;
    loop {
        while start_of < data.len() && is_ws(data[start_of]) {
            start_of += 1;
        }
        match stream.next() {
            None => {
                assert_eq!(
                    d.end,
                    End::Clean,
                    "serde_json reads {index} valid requests and nothing else, but the decoder ended with {:?}",
                    d.end
                );
                assert_eq!(d.frames.len(), index);
                return;
            }
            Some(Err(_)) => return,
            Some(Ok(v)) => {
                let end = stream.byte_offset();
                let len = end - start_of;
                let depth = value_depth(&v);
                let (big, deep) = (len > limits.max_bytes, depth > limits.max_depth);
                if !v.is_object() {
                    assert_eq!(d.frames.len(), index, "a non-object became a frame");
                    assert!(
                        matches!(d.end, End::Malformed(_)),
                        "a non-object value must be malformed, got {:?}",
                        d.end
                    );
                    return;
                }
                if big || deep {
                    assert_eq!(
                        d.frames.len(),
                        index,
                        "a request of {len} bytes nesting {depth} levels became a frame (limits {limits:?})"
                    );
                    let expected_end = match (big, deep) {
                        (true, false) => d.end == End::TooLarge,
                        (false, true) => d.end == End::TooDeep,
                        _ => matches!(d.end, End::TooLarge | End::TooDeep),
                    };
                    assert!(
                        expected_end,
                        "a request of {len} bytes nesting {depth} levels (limits {limits:?}) ended {:?}",
                        d.end
                    );
                    return;
                }
                assert!(
                    index < d.frames.len(),
                    "serde_json reads request {index} ({len} bytes, {depth} levels) but the decoder ended with {:?}",
                    d.end
                );
                assert_eq!(
                    &d.frames[index][..],
                    &data[start_of..end],
                    "the decoder and serde_json disagree on where request {index} ends"
                );
                assert_eq!(ends[index], end);
                index += 1;
                start_of = end;
            }
        }
    }
}

/// What the session answers to one frame (the steps of `actors::dispatch::handle_frame` and
/// `dispatch` that come before any other actor is asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not JSON: `MALFORMED_REQUEST`, then the connection closes.
    Malformed,
    /// JSON, but no string `type` (or a bad `id`/`version`): `INVALID_REQUEST`.
    InvalidRequest,
    /// A `type` this agent does not know: `UNKNOWN_MESSAGE_TYPE`.
    UnknownType,
    /// A known type whose payload is refused: `INVALID_PAYLOAD`.
    InvalidPayload(RequestType),
    /// A known type with an acceptable payload: handed on to the actors.
    Accepted(RequestType),
}

/// Decodes `body` as `T` the way `dispatch` does ([`Payload::parse`]), checks that this gives
/// what reading its tree with `serde_json::from_value` gives (the same `T`, or the same error
/// message), and that what decodes re-serializes and decodes to the same `T`, both through a
/// `Value` and through JSON text (what a response, the capability store and the audit log do
/// with it).
fn typed<T>(body: &Payload<'_>) -> Result<T, String>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let parsed = body.parse::<T>().map_err(|e| e.to_string());
    let tree = body
        .to_value()
        .expect("a payload that came as JSON text reads as a tree");
    let via_tree = serde_json::from_value::<T>(tree).map_err(|e| e.to_string());
    assert_eq!(
        parsed, via_tree,
        "the payload read from its text differs from the payload read from its tree"
    );
    let t: T = parsed?;
    let again = serde_json::to_value(&t).expect("a decoded payload serializes");
    let via_value: T = serde_json::from_value(again).expect("a re-serialized payload decodes");
    assert_eq!(via_value, t, "payload changed through a Value round trip");
    let text = serde_json::to_vec(&t).expect("a decoded payload serializes as text");
    let via_text: T = serde_json::from_slice(&text).expect("re-serialized payload text decodes");
    assert_eq!(
        via_text, t,
        "payload changed through a JSON text round trip"
    );
    Ok(t)
}

/// The payload checks of `dispatch` for one request type.
fn payload_outcome(kind: RequestType, body: &Payload<'_>) -> Result<(), String> {
    let limits = RequestLimits::default();
    match kind {
        RequestType::PingRequest
        | RequestType::MetricsRequest
        | RequestType::StatusRequest
        | RequestType::AgentStatus
        | RequestType::AgentReload
        | RequestType::AgentStop
        | RequestType::AgentConfig
        | RequestType::PolicyList
        | RequestType::CredentialList => Ok(()),
        RequestType::CredentialTest => {
            checks::check_credential_test(&typed::<CredentialTestRequest>(body)?)
        }
        RequestType::CapabilityRequest => {
            let r: CapabilityRequest = typed(body)?;
            checks::check_request(&r, &limits)
        }
        RequestType::CapabilityValidate => {
            checks::check_validate(&typed::<ValidateRequest>(body)?, &limits)
        }
        RequestType::CapabilityRevoke => {
            checks::check_revoke(&typed::<RevokeRequest>(body)?, &limits)
        }
        RequestType::CapabilityList => {
            if !body.is_null() {
                typed::<ListRequest>(body)?;
            }
            Ok(())
        }
        RequestType::PolicyTest => {
            // `dispatch` then resolves the described identity in the user database
            // (`policy::tester::resolve`): a lookup, not parsing, so it is left out here.
            checks::check_policy_test(&typed::<PolicyTestRequest>(body)?, &limits)
        }
        RequestType::SecretRead
        | RequestType::SecretWrite
        | RequestType::SecretList
        | RequestType::SecretDelete => {
            let r: SecretRequest = typed(body)?;
            checks::check_capability_id(&r.capability_id)?;
            if kind == RequestType::SecretWrite && r.data.as_ref().is_none_or(|d| d.is_empty()) {
                return Err("secret_write needs data with at least one field".to_string());
            }
            Ok(())
        }
    }
}

/// Checks an error response as the session would write it: one compact JSON object on one
/// line, which reads back with the same id and code.
fn check_error_line(id: &str, payload: ErrorPayload) {
    let code = payload.code;
    let line = Envelope::new("error_response", id, payload).to_line();
    assert_eq!(line.last(), Some(&b'\n'), "a response ends in a newline");
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "a response is one line"
    );
    let v: Value = serde_json::from_slice(&line).expect("a response is JSON");
    assert_eq!(v["id"].as_str(), Some(id), "the response echoes the id");
    assert_eq!(v["payload"]["code"].as_str(), Some(code.as_str()));
}

/// Runs one frame through the session's parsing ([`parse_envelope`], then the payload) and
/// checks what it answers.
pub fn session_outcome(frame: &[u8]) -> Outcome {
    let parsed = parse_envelope(frame);
    let value: Value = match serde_json::from_slice(frame) {
        Ok(v) => v,
        Err(_) => {
            let refused = parsed.expect_err("a frame that is not JSON is refused");
            assert_eq!(refused.error.code, ErrorCode::MalformedRequest);
            assert_eq!(refused.after, After::Close, "malformed JSON closes");
            check_error_line(&refused.id, refused.error);
            return Outcome::Malformed;
        }
    };
    assert!(value.is_object(), "a frame that parses is an object");
    // The frame re-serializes and re-parses to the same value: what the agent records
    // (capability metadata, audit) must read back as what it decided on.
    let text = serde_json::to_vec(&value).expect("a parsed value serializes");
    let again: Value = serde_json::from_slice(&text).expect("a serialized value parses");
    assert_eq!(
        again, value,
        "the request changed through a JSON round trip"
    );

    // Every payload type, whatever the `type` says, as the session holds the payload (the
    // client's own text, when the envelope was read in one pass) and from its tree: none may
    // panic, both give the same, and each round-trips.
    let body = value.get("payload").unwrap_or(&Value::Null);
    let text = serde_json::to_string(body).expect("a parsed value serializes");
    let reserialized: Option<&RawValue> =
        serde_json::from_str(&text).expect("serialized JSON parses");
    let held = match &parsed {
        Ok((_, _, payload)) => payload,
        Err(_) => &Payload::Text(reserialized),
    };
    for kind in RequestType::ALL {
        let as_held = payload_outcome(kind, held);
        let from_tree = payload_outcome(kind, &Payload::Tree(body.clone()));
        assert_eq!(as_held, from_tree, "{kind:?}");
    }

    let readable_id = value
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (kind, id, payload) = match parsed {
        Ok(p) => p,
        Err(refused) => {
            assert_eq!(refused.after, After::KeepOpen, "{refused:?}");
            let outcome = match refused.error.code {
                ErrorCode::InvalidRequest => Outcome::InvalidRequest,
                ErrorCode::UnknownMessageType => Outcome::UnknownType,
                other => panic!("a JSON frame refused with {other:?}"),
            };
            check_error_line(&refused.id, refused.error);
            return outcome;
        }
    };
    assert_eq!(id, readable_id, "the id read early is the envelope's id");
    assert_eq!(Some(kind.as_str()), value["type"].as_str());
    match payload_outcome(kind, &payload) {
        Ok(()) => Outcome::Accepted(kind),
        Err(e) => {
            check_error_line(&id, ErrorPayload::new(ErrorCode::InvalidPayload, e));
            Outcome::InvalidPayload(kind)
        }
    }
}

/// The request-stream target: `data` is what a client writes on its connection.
///
/// Invariants: the same frames and the same end whatever the chunking; no frame larger than
/// the size limit or nesting deeper than the depth limit; frames are exactly the objects
/// serde_json finds in the stream, up to the first that crosses a limit or is not an object
/// (which ends the stream with the right error); every frame goes through the session's
/// parsing without panicking, and what parses round-trips.
pub fn check_request_stream(data: &[u8]) {
    let whole = decode(data, SESSION, Chunking::Whole);
    check_framing(data, SESSION, &whole);
    for chunking in [Chunking::Bytewise, Chunking::Random(fnv(data))] {
        let other = decode(data, SESSION, chunking);
        assert_eq!(
            other, whole,
            "decoding depends on the chunking ({chunking:?})"
        );
    }
    for limits in [SMALLEST, TIGHT] {
        let d = decode(data, limits, Chunking::Random(fnv(data).rotate_left(17)));
        check_framing(data, limits, &d);
    }
    for frame in &whole.frames {
        session_outcome(frame);
    }
}

/// Checks where a load error points: lines and columns are 1-based and inside the text.
fn check_position(e: &LoadError, text: &str) {
    let lines = text.split('\n').count();
    if let Some(line) = e.line {
        assert!(
            (1..=lines).contains(&line),
            "error line {line} outside 1..={lines}: {e}"
        );
    }
    if let Some(col) = e.column {
        assert!(e.line.is_some(), "a column without a line: {e}");
        assert!(col >= 1, "columns are 1-based: {e}");
    }
    assert!(!e.message.is_empty(), "an error says what is wrong");
    let _ = e.to_string();
}

/// What loading one document gives, in a form two loads can be compared by.
fn load_one(path: &Path, parsed: Result<PolicyDocument, LoadError>, text: &str) -> Option<String> {
    let doc = match parsed {
        Ok(d) => d,
        Err(e) => {
            check_position(&e, text);
            return None;
        }
    };
    match compile(vec![(path.to_path_buf(), doc)]) {
        Ok(loaded) => {
            let shown = format!("{:?}", (&loaded.policies, &loaded.rules));
            check_loaded(loaded);
            Some(shown)
        }
        Err(e) => {
            assert_eq!(
                e.file.as_deref(),
                Some(path),
                "a compile error names the file"
            );
            check_position(&e, text);
            None
        }
    }
}

/// A resource the pattern matches: `*` as nothing, `?` as one letter.
fn instance(pattern: &str) -> String {
    pattern
        .chars()
        .filter(|c| *c != '*')
        .map(|c| if c == '?' { 'x' } else { c })
        .collect()
}

/// Checks a compiled set: the prefix index never leaves out a rule that matches, and a
/// decision over it can be made.
fn check_loaded(loaded: aether_vault_agent::policy::LoadedPolicies) {
    let index = RuleIndex::build(&loaded.rules);
    let mut probes = Vec::new();
    for (i, rule) in loaded.rules.iter().enumerate() {
        for p in &rule.resources {
            let resource = instance(p.as_str());
            if p.matches(&resource) {
                assert!(
                    index.candidates(&resource).contains(&i),
                    "the index leaves out rule {i} for {resource:?}, which its pattern {:?} matches",
                    p.as_str()
                );
            }
            probes.push(resource);
        }
    }
    let set = PolicySet::from_loaded(1, loaded, Fallback::DenyAll);
    let identity = PeerIdentity::bare(1000, 1000);
    let actions = vec!["read".to_string(), "write".to_string()];
    let now = jiff::Timestamp::from_second(1_700_000_000).expect("a valid timestamp");
    for resource in probes.iter().take(8) {
        let d = evaluate(
            &set,
            EvalInput {
                identity: &identity,
                resource,
                actions: &actions,
                now,
            },
        );
        assert!(d.allowed == d.reasoning.starts_with("granted"), "{d:?}");
    }
}

/// The policy target: `data` is the content of a policy file.
///
/// Invariants: neither parser panics; errors point inside the text (1-based line and column);
/// a document that loads as JSON loads the same after a JSON round trip of its text, and one
/// that loads as YAML loads the same once its data is written as JSON; the rule
/// index never leaves out a rule whose pattern matches; a decision can be made over what
/// loads. (A YAML round trip through the agent's YAML writer was checked too, and dropped:
/// see docs/fuzzing.md.)
pub fn check_policy(data: &[u8]) {
    // The loader refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let json_path = PathBuf::from("fuzz.json");
    let from_json = load_one(&json_path, parse_document(&json_path, text), text);
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let again = serde_json::to_string(&v).expect("a JSON value serializes");
        let reloaded = load_one(&json_path, parse_document(&json_path, &again), &again);
        // (Not the other way round: a text with a duplicate key is refused, and its value,
        // which keeps the last, may load.)
        if from_json.is_some() {
            assert_eq!(
                from_json, reloaded,
                "a policy's JSON round trip changes its rules"
            );
        }
    }

    // YAML the agent writes (every `--format yaml` output) reads back as the same data.
    if let Ok(v) = aether_vault_agent::yaml::parse(text) {
        let written = aether_vault_agent::yaml::to_string(&v);
        let back = aether_vault_agent::yaml::parse(&written);
        assert!(
            back.as_ref().is_ok_and(|b| *b == v),
            "YAML written by the agent does not read back: {written:?} -> {back:?}"
        );
    }

    let yaml_path = PathBuf::from("fuzz.yaml");
    let from_yaml = load_one(&yaml_path, parse_yaml_document(&yaml_path, text), text);
    // The same data written as JSON loads the same rules: the YAML reader adds syntax, never
    // meaning.
    if from_yaml.is_some() {
        let v = aether_vault_agent::yaml::parse(text).expect("a YAML document that loads parses");
        let json = serde_json::to_string(&v).expect("YAML data serializes as JSON");
        let as_json = load_one(&json_path, parse_document(&json_path, &json), &json);
        assert_eq!(
            from_yaml, as_json,
            "a YAML policy loads differently once written as JSON"
        );
    }
}

/// The glob target: `data` is two patterns, one per line (at most 64 characters each), then
/// bytes that choose strings the second pattern matches.
///
/// Invariants of `policy::glob`: `intersects` is symmetric, and says no only when no string
/// matches both; `contains` says yes only when every string the inner pattern matches, the
/// outer matches too (every chosen instance of the inner is matched by the outer), it holds
/// for a pattern and itself, and it implies `intersects`. The decision relies on these: a
/// pattern request is granted only through `contains`, and a deny rule is passed over only
/// through `intersects`.
pub fn check_glob(data: &[u8]) {
    use aether_vault_agent::policy::glob::{contains, intersects};
    use aether_vault_agent::policy::selector::Pattern;
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let take = |p: Option<&[u8]>| -> String {
        String::from_utf8_lossy(p.unwrap_or_default())
            .chars()
            .take(64)
            .collect()
    };
    let (outer, inner) = (take(parts.next()), take(parts.next()));
    let choices = parts.next().unwrap_or_default();

    let meet = intersects(&outer, &inner);
    assert_eq!(meet, intersects(&inner, &outer), "intersects is symmetric");
    assert!(contains(&outer, &outer), "{outer:?} contains itself");
    let covers = contains(&outer, &inner);
    assert!(
        !covers || meet,
        "{outer:?} contains {inner:?} but does not meet it"
    );

    let outer_matcher = Pattern::new(&outer);
    let inner_matcher = Pattern::new(&inner);
    // Instances of `inner`: each `*` becomes 0 to 3 characters, each `?` one, chosen by the
    // bytes (from the characters of both patterns, so that literals can meet).
    let alphabet: Vec<char> = outer
        .chars()
        .chain(inner.chars())
        .filter(|c| *c != '*' && *c != '?')
        .chain(['a', '/'])
        .collect();
    for round in 0..8usize {
        let mut pick = choices
            .iter()
            .skip(round * 16)
            .copied()
            .chain(std::iter::repeat(round as u8));
        let mut next = || pick.next().unwrap_or_default() as usize;
        let mut word = String::new();
        for c in inner.chars() {
            match c {
                '*' => {
                    for _ in 0..next() % 4 {
                        word.push(alphabet[next() % alphabet.len()]);
                    }
                }
                '?' => word.push(alphabet[next() % alphabet.len()]),
                c => word.push(c),
            }
        }
        assert!(
            inner_matcher.matches(&word),
            "{word:?} is an instance of {inner:?}"
        );
        if covers {
            assert!(
                outer_matcher.matches(&word),
                "{outer:?} contains {inner:?}, yet {word:?} matches only the second"
            );
        }
        if !meet {
            assert!(
                !outer_matcher.matches(&word),
                "{outer:?} and {inner:?} do not meet, yet {word:?} matches both"
            );
        }
    }
}
