//! The hash chain that makes the audit log tamper-evident.
//!
//! Each record carries `seq` (one more than the record before it), `prev_hash` (the `hash` of
//! the record before it; 64 zeros for the very first) and `hash`: SHA-256, in hex, over the
//! record's canonical form — its JSON object without `hash`, keys sorted, compact. Records are
//! written in that canonical form plus `hash`, so verifying is re-serializing what was read.
//! The chain continues across rotated files. Changing a byte of a record changes its hash;
//! deleting or reordering records breaks `seq` and `prev_hash`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::event::AuditEvent;

/// `prev_hash` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The position of the last record: what the next record chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// `seq` of the last record (0 before the first).
    pub seq: u64,
    /// `hash` of the last record ([`GENESIS`] before the first).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        ChainHead {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// SHA-256 (hex) of a record's canonical form: `fields` without `hash`, keys sorted, compact.
pub fn hash_of(fields: &Map<String, Value>) -> String {
    if fields.contains_key("hash") {
        let mut without = fields.clone();
        without.remove("hash");
        return digest(&without);
    }
    digest(fields)
}

/// SHA-256 (hex) of `fields` (which have no `hash`) serialized compactly; serde_json's `Map` is
/// ordered by key, so the serialization is canonical.
fn digest(fields: &Map<String, Value>) -> String {
    let mut hasher = HashWriter(Sha256::new());
    if serde_json::to_writer(&mut hasher, fields).is_err() {
        // Cannot happen for a map of JSON values; hash what an empty serialization would be.
        return hex::encode(Sha256::digest(b""));
    }
    hex::encode(hasher.0.finalize())
}

/// Feeds serialized bytes straight into the hash, without an intermediate buffer.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Seals `fields` (a record without chain fields) onto the chain: sets `seq`, `prev_hash` and
/// `hash`, advances `head`, and returns the line to write (with its `\n`). The general form,
/// through a `Map`, which the writer's [`seal_event`] is held to in the tests.
#[cfg(test)]
pub fn seal(mut fields: Map<String, Value>, head: &mut ChainHead) -> Vec<u8> {
    let seq = head.seq + 1;
    fields.insert("seq".into(), Value::from(seq));
    fields.insert("prev_hash".into(), Value::from(head.hash.clone()));
    fields.remove("hash");
    let hash = digest(&fields);
    fields.insert("hash".into(), Value::from(hash.clone()));
    *head = ChainHead { seq, hash };
    let mut line = Vec::with_capacity(512);
    if serde_json::to_writer(&mut line, &fields).is_err() {
        line.clear();
    }
    line.push(b'\n');
    line
}

/// Seals `event` onto the chain as [`seal`] seals its JSON object — the same bytes — but
/// serializing the event directly in canonical key order instead of through a `Map`.
pub fn seal_event(event: &AuditEvent, head: &mut ChainHead) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(512);
    seal_into(event, head, &mut line)?;
    Ok(line)
}

/// [`seal_event`] appending the line to `out`: what the audit writer does for every record.
/// The record is serialized once — the keys sorted before `hash`, then those after it, which is
/// the hashed form — hashed, and `"hash":"…",` put in between. On error, `out` and `head` are
/// as they were.
pub fn seal_into(
    event: &AuditEvent,
    head: &mut ChainHead,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    let start = out.len();
    let seq = head.seq + 1;
    let (before, after) = event.canonical(seq, &head.hash);
    let written = (|| {
        serde_json::to_writer(&mut *out, &before)?;
        // `{…}` or `{}`: keep the opening brace and the keys, and end with a comma if any.
        out.pop();
        if out.len() > start + 1 {
            out.push(b',');
        }
        let mark = out.len();
        serde_json::to_writer(&mut *out, &after)?;
        // Never empty (`outcome`, `seq`… are always there): drop its opening brace.
        out.remove(mark);
        Ok(mark)
    })();
    let mark = match written {
        Ok(mark) => mark,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    let hash = hex::encode(Sha256::digest(&out[start..]));
    let field = format!("\"hash\":\"{hash}\",");
    out.splice(mark..mark, field.into_bytes());
    out.push(b'\n');
    *head = ChainHead { seq, hash };
    Ok(())
}

/// The first record that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: record {}: {reason}", file.display(), seq.map(|s| s.to_string()).unwrap_or_else(|| "?".into()))]
pub struct Broken {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The record's `seq`, if it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// `seq` of the first record.
    pub first_seq: Option<u64>,
    /// Whether the first record is the first ever (`prev_hash` is the genesis value); if not,
    /// older files are missing (rotated away) and the chain is checked from there on.
    pub from_genesis: bool,
    /// Where the chain ends.
    pub head: ChainHead,
}

/// Verifies records given as (file, contents), oldest file first, as one chain.
pub fn verify(files: &[(PathBuf, String)]) -> Result<Verified, Broken> {
    verify_observing(files, &mut |_, _, _| {})
}

/// [`verify`], telling `seen` the file, `seq` and `hash` of every record that keeps the chain
/// (what the seals are held to, in [`super::evidence`]).
pub fn verify_observing(
    files: &[(PathBuf, String)],
    seen: &mut dyn FnMut(&Path, u64, &str),
) -> Result<Verified, Broken> {
    let mut head: Option<ChainHead> = None;
    let mut out = Verified {
        records: 0,
        first_seq: None,
        from_genesis: false,
        head: ChainHead::default(),
    };
    for (file, text) in files {
        if !text.is_empty() && !text.ends_with('\n') {
            let line = text.lines().count();
            return Err(Broken {
                file: file.clone(),
                line,
                seq: None,
                reason: "the last record is incomplete".into(),
            });
        }
        for (i, line) in text.lines().enumerate() {
            let at = |seq: Option<u64>, reason: String| Broken {
                file: file.clone(),
                line: i + 1,
                seq,
                reason,
            };
            let fields: Map<String, Value> = match serde_json::from_str(line) {
                Ok(Value::Object(m)) => m,
                _ => return Err(at(None, "not a JSON record".into())),
            };
            let seq = fields.get("seq").and_then(Value::as_u64);
            let (Some(s), Some(prev), Some(hash)) = (
                seq,
                fields.get("prev_hash").and_then(Value::as_str),
                fields.get("hash").and_then(Value::as_str),
            ) else {
                return Err(at(seq, "missing seq, prev_hash or hash".into()));
            };
            if hash_of(&fields) != hash {
                return Err(at(
                    seq,
                    "hash does not match the record's contents (the record was changed)".into(),
                ));
            }
            match &head {
                None => {
                    out.first_seq = Some(s);
                    out.from_genesis = prev == GENESIS;
                    if out.from_genesis && s != 1 {
                        return Err(at(seq, format!("the first record has seq {s}, expected 1")));
                    }
                }
                Some(h) => {
                    if s > h.seq + 1 {
                        let missing = if s == h.seq + 2 {
                            format!("record {} is missing", h.seq + 1)
                        } else {
                            format!("records {}–{} are missing", h.seq + 1, s - 1)
                        };
                        let place = if i == 0 {
                            " before this file (a rotated file was deleted, or the file before it cut)"
                        } else {
                            ""
                        };
                        return Err(at(
                            seq,
                            format!("seq {s} follows {}: {missing}{place}", h.seq),
                        ));
                    }
                    if s != h.seq + 1 {
                        return Err(at(
                            seq,
                            format!("seq {s} follows {} (records reordered or repeated)", h.seq),
                        ));
                    }
                    if prev != h.hash {
                        return Err(at(seq, "prev_hash is not the previous record's hash (a record was removed or replaced)".into()));
                    }
                }
            }
            seen(file, s, hash);
            head = Some(ChainHead {
                seq: s,
                hash: hash.to_string(),
            });
            out.records += 1;
        }
    }
    out.head = head.unwrap_or_default();
    Ok(out)
}

/// The chain head at the end of `text`; `None` when the last record is unreadable.
pub fn head_of(text: &str) -> Option<ChainHead> {
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let v: Map<String, Value> = serde_json::from_str(last).ok()?;
    Some(ChainHead {
        seq: v.get("seq")?.as_u64()?,
        hash: v.get("hash")?.as_str()?.to_string(),
    })
}

/// Rotated files of `log` (`log.1` is the newest backup), oldest first, then `log` itself.
pub fn rotation_set(log: &Path) -> Vec<PathBuf> {
    let mut backups: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) {
        if let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            for e in entries.flatten() {
                let fname = e.file_name();
                let Some(f) = fname.to_str() else { continue };
                if let Some(n) = f
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|n| n.parse().ok())
                {
                    backups.push((n, dir.join(f)));
                }
            }
        }
    }
    backups.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut out: Vec<PathBuf> = backups.into_iter().map(|(_, p)| p).collect();
    out.push(log.to_path_buf());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::RefusalSummary;
    use crate::audit::{AuditIdentity, EventType, Outcome};
    use proptest::prelude::*;
    use serde_json::json;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z/_:.-]{1,20}",
            any::<String>(),
            "[\\x00-\\x1f\"\\\\é€😀]{0,8}",
        ]
    }

    fn event() -> impl Strategy<Value = AuditEvent> {
        let identity = proptest::option::of(
            (
                any::<u32>(),
                any::<u32>(),
                proptest::option::of(any::<u32>()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
                any::<bool>(),
            )
                .prop_map(|(uid, gid, pid, user, unit, exe, gone)| AuditIdentity {
                    uid,
                    gid,
                    pid,
                    user,
                    unit,
                    exe,
                    unverified: if gone {
                        vec![
                            crate::identity::Attribute::Unit,
                            crate::identity::Attribute::Exe,
                        ]
                    } else {
                        Vec::new()
                    },
                    groups: vec![gid],
                }),
        );
        let kinds = prop_oneof![
            Just(EventType::CapabilityValidation),
            Just(EventType::CapabilityRequest),
            Just(EventType::SecretAccess),
            Just(EventType::ConnectionRejected),
            Just(EventType::RefusalSummary),
            Just(EventType::CredentialDelivery),
        ];
        let outcomes = prop_oneof![
            Just(Outcome::Valid),
            Just(Outcome::Denied),
            Just(Outcome::Failure),
        ];
        (
            (text(), kinds, outcomes, identity),
            (
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(text()),
                proptest::option::of(text()),
            ),
            (
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(text()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(summary()),
            ),
            (
                proptest::option::of((text(), text())),
                proptest::option::of(text()),
            ),
        )
            .prop_map(
                |(
                    (timestamp, kind, outcome, identity),
                    (claimed_identity, resource, actions, capability_id, request_id),
                    (rules, reason, policy_generation, version, summary),
                    (credential, region),
                )| AuditEvent {
                    timestamp,
                    kind,
                    outcome,
                    identity,
                    claimed_identity,
                    credential: credential
                        .map(|(unit, id)| crate::audit::CredentialRef { id, unit }),
                    resource,
                    actions,
                    capability_id,
                    request_id,
                    rules,
                    reason,
                    policy_generation,
                    region,
                    version,
                    summary,
                },
            )
    }

    fn summary() -> impl Strategy<Value = RefusalSummary> {
        (
            any::<u32>(),
            proptest::collection::btree_map(text(), any::<u64>(), 0..3),
            proptest::option::of(text()),
            proptest::option::of(text()),
            (
                text(),
                text(),
                any::<u64>(),
                any::<u64>(),
                proptest::option::of(any::<u64>()),
            ),
        )
            .prop_map(
                |(
                    budget,
                    counts,
                    first_request_id,
                    last_request_id,
                    (ft, lt, period, total, uids),
                )| {
                    RefusalSummary {
                        budget,
                        counts,
                        first_request_id,
                        first_time: ft,
                        last_request_id,
                        last_time: lt,
                        period_seconds: period,
                        total,
                        uids,
                    }
                },
            )
    }

    proptest! {
        /// The writer's direct serialization is byte for byte the `Map` form that `verify`
        /// recomputes: a field added to `AuditEvent` but not to `CanonicalRecord`, or declared
        /// out of order, fails here.
        #[test]
        fn canonical_form_is_the_sorted_map_form(ev in event(), seq in 0u64..1_000_000) {
            let start = ChainHead { seq, hash: format!("{seq:064x}") };
            let mut fast_head = start.clone();
            let fast = seal_event(&ev, &mut fast_head).unwrap();
            let Value::Object(fields) = serde_json::to_value(&ev).unwrap() else {
                panic!("an event is an object");
            };
            let mut map_head = start;
            let general = seal(fields, &mut map_head);
            prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&general));
            prop_assert_eq!(fast_head, map_head);
        }
    }

    fn record(i: u64) -> Map<String, Value> {
        match json!({"type":"capability_request","outcome":"granted","timestamp":"2026-01-01T00:00:00Z",
                     "resource": format!("secret:/{i}"), "reason": "é \"quoted\" \n"})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn chain(n: u64, head: &mut ChainHead) -> String {
        (1..=n)
            .map(|i| String::from_utf8(seal(record(i), head)).unwrap())
            .collect()
    }

    #[test]
    fn a_sealed_chain_verifies_across_files() {
        let mut head = ChainHead::default();
        let a = chain(3, &mut head);
        let b = chain(2, &mut head);
        let v = verify(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        assert_eq!((v.records, v.first_seq, v.from_genesis), (5, Some(1), true));
        assert_eq!(v.head, head);
        assert_eq!(head_of(&b), Some(head.clone()));
        // A rotated-away beginning verifies from where it starts, and says so.
        let v = verify(&[("b".into(), b)]).unwrap();
        assert!(!v.from_genesis);
        assert_eq!(v.first_seq, Some(4));
    }

    #[test]
    fn one_changed_byte_names_that_record() {
        let mut head = ChainHead::default();
        let text = chain(5, &mut head);
        let tampered = text.replacen("secret:/3", "secret:/8", 1);
        let e = verify(&[("log".into(), tampered)]).unwrap_err();
        assert_eq!((e.line, e.seq), (3, Some(3)), "{e}");
        assert!(e.reason.contains("changed"));
    }

    #[test]
    fn a_deleted_or_reordered_line_is_named() {
        let mut head = ChainHead::default();
        let text = chain(5, &mut head);
        let lines: Vec<&str> = text.lines().collect();
        let deleted = [lines[0], lines[1], lines[3], lines[4]]
            .map(|l| format!("{l}\n"))
            .concat();
        let e = verify(&[("log".into(), deleted)]).unwrap_err();
        assert_eq!((e.line, e.seq), (3, Some(4)), "{e}");
        let swapped = [lines[0], lines[2], lines[1], lines[3]]
            .map(|l| format!("{l}\n"))
            .concat();
        assert_eq!(verify(&[("log".into(), swapped)]).unwrap_err().line, 2);
        let first_gone = [lines[1], lines[2]].map(|l| format!("{l}\n")).concat();
        assert!(
            verify(&[("log".into(), first_gone)]).is_ok(),
            "a chain may start mid-way (rotated away)"
        );
        let e = verify(&[("log".into(), format!("{}\ngarbage\n", lines[0]))]).unwrap_err();
        assert_eq!(e.line, 2);
        let e = verify(&[("log".into(), text[..text.len() - 5].to_string())]).unwrap_err();
        assert!(e.reason.contains("incomplete"));
    }

    #[test]
    fn rotation_set_orders_backups_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        for f in [
            "audit.log",
            "audit.log.1",
            "audit.log.2",
            "audit.log.10",
            "audit.logx",
            "other.1",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names: Vec<String> = rotation_set(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["audit.log.10", "audit.log.2", "audit.log.1", "audit.log"]
        );
    }
}
