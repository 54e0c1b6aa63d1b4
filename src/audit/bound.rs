//! Bounded records: whatever a client sends, its audit record stays small, and still proves
//! what was asked.
//!
//! Before a record is sealed, every string in it that a client, a file name or a process can
//! make long (the resource, the actions, the claimed identity, a credential's unit and id, the
//! capability and request ids,
//! the reason that may repeat them, the user, unit and executable, the rules, a summary's
//! request ids) is measured as it will be written (JSON-escaped). One longer than
//! `audit.max_field_bytes` keeps its first bytes up to that length, followed by a marker with
//! the whole value's length in bytes and its SHA-256:
//!
//! ```text
//! secret:/aaaa…aaaa…[cut: 65000 bytes, sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08]
//! ```
//!
//! so that whoever holds the value can show it is the one asked for (`printf %s VALUE |
//! sha256sum`). A list (`actions`, `rules`) keeps at most [`MAX_LIST_ITEMS`] items; longer, its
//! last kept item is a marker with the number of items and the SHA-256 of the whole list as
//! compact JSON (`["read","write"]`). If the record is still longer than
//! `audit.max_record_bytes`, the field length and the number of list items are halved until it
//! fits, down to [`MIN_FIELD_BYTES`] and [`MIN_LIST_ITEMS`]; with `max_record_bytes` at least
//! [`MIN_RECORD_BYTES`], every record then fits (the chain fields, about 170 bytes, come on
//! top). The cutting happens before the record is hashed into the chain, so `audit verify`
//! checks the record as written.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::event::{AuditEvent, AuditIdentity, CredentialRef, RefusalSummary};

/// The most list items a record keeps (the protocol allows 32 actions).
pub const MAX_LIST_ITEMS: usize = 32;
/// The fewest bytes of a long field a record keeps, however many fields are long.
pub const MIN_FIELD_BYTES: usize = 32;
/// The fewest items of a long list a record keeps (the last one being the marker).
pub const MIN_LIST_ITEMS: usize = 2;
/// The smallest `audit.max_record_bytes`: a record cut to the minimums always fits in it.
pub const MIN_RECORD_BYTES: usize = 4096;

/// How long a record may be (`audit.max_record_bytes`, `audit.max_field_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Longest record, as written, without its chain fields.
    pub max_record_bytes: usize,
    /// Longest string kept whole, as written (JSON-escaped), without its quotes.
    pub max_field_bytes: usize,
}

impl RecordLimits {
    /// The defaults: 8 KiB records, 1 KiB fields.
    pub const DEFAULT: RecordLimits = RecordLimits {
        max_record_bytes: 8192,
        max_field_bytes: 1024,
    };
}

/// Cuts `ev`'s long fields (see the module header); returns whether anything was cut.
pub fn bound(ev: &mut AuditEvent, limits: &RecordLimits) -> bool {
    let mut field = limits.max_field_bytes.max(MIN_FIELD_BYTES);
    let mut items = MAX_LIST_ITEMS;
    if within(ev, field, items) && written_len(ev) <= limits.max_record_bytes {
        return false;
    }
    let original = std::mem::replace(ev, AuditEvent::new(ev.kind, ev.outcome));
    let digests = Digests::default();
    loop {
        *ev = cut_event(&original, field, items, &digests);
        let floor = field == MIN_FIELD_BYTES && items == MIN_LIST_ITEMS;
        if floor || written_len(ev) <= limits.max_record_bytes {
            return true;
        }
        field = (field / 2).max(MIN_FIELD_BYTES);
        items = (items / 2).max(MIN_LIST_ITEMS);
    }
}

/// The bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The bytes `s` takes inside a JSON string, counting only up to `limit + 1`.
fn escaped_len_upto(s: &str, limit: usize) -> usize {
    let mut n = 0;
    for c in s.chars() {
        n += escaped_len(c);
        if n > limit {
            break;
        }
    }
    n
}

/// Whether every string and list of `ev` is within the limits (nothing to cut).
fn within(ev: &AuditEvent, field: usize, items: usize) -> bool {
    let short = |s: &str| s.len() <= field / 6 || escaped_len_upto(s, field) <= field;
    let short_opt = |s: &Option<String>| s.as_deref().is_none_or(short);
    let list = |v: &[String]| v.len() <= items && v.iter().all(|s| short(s));
    let id = ev.identity.as_ref();
    let summary = ev.summary.as_ref();
    short_opt(&ev.claimed_identity)
        && ev
            .credential
            .as_ref()
            .is_none_or(|c| short(&c.unit) && short(&c.id))
        && short_opt(&ev.resource)
        && short_opt(&ev.capability_id)
        && short_opt(&ev.request_id)
        && short_opt(&ev.reason)
        && id.is_none_or(|i| short_opt(&i.user) && short_opt(&i.unit) && short_opt(&i.exe))
        && summary.is_none_or(|s| short_opt(&s.first_request_id) && short_opt(&s.last_request_id))
        && list(&ev.actions)
        && list(&ev.rules)
}

/// SHA-256 digests of the original's values, computed once however often they are cut.
#[derive(Default)]
struct Digests(RefCell<HashMap<(usize, usize), String>>);

impl Digests {
    fn of(&self, key: (usize, usize), bytes: impl FnOnce() -> Vec<u8>) -> String {
        self.0
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| hex::encode(Sha256::digest(bytes())))
            .clone()
    }

    fn of_str(&self, s: &str) -> String {
        self.of((s.as_ptr() as usize, s.len()), || s.as_bytes().to_vec())
    }

    fn of_list(&self, v: &[String]) -> String {
        self.of((v.as_ptr() as usize, usize::MAX - v.len()), || {
            serde_json::to_vec(v).unwrap_or_default()
        })
    }
}

/// `s` cut to `limit` escaped bytes with the marker, or whole if it fits.
fn cut(s: &str, limit: usize, digests: &Digests) -> String {
    let mut n = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        n += escaped_len(c);
        if n > limit {
            return format!(
                "{}…[cut: {} bytes, sha256:{}]",
                &s[..end],
                s.len(),
                digests.of_str(s)
            );
        }
        end = i + c.len_utf8();
    }
    s.to_string()
}

fn cut_opt(s: &Option<String>, limit: usize, digests: &Digests) -> Option<String> {
    s.as_deref().map(|s| cut(s, limit, digests))
}

/// `v` with each item cut, and at most `items` items, the last one then the marker.
fn cut_list(v: &[String], items: usize, limit: usize, digests: &Digests) -> Vec<String> {
    if v.len() <= items {
        return v.iter().map(|s| cut(s, limit, digests)).collect();
    }
    let mut out: Vec<String> = v[..items - 1]
        .iter()
        .map(|s| cut(s, limit, digests))
        .collect();
    out.push(format!(
        "…[cut: {} items, sha256:{}]",
        v.len(),
        digests.of_list(v)
    ));
    out
}

/// `ev` with every field cut to `field` bytes and every list to `items` items.
fn cut_event(ev: &AuditEvent, field: usize, items: usize, d: &Digests) -> AuditEvent {
    AuditEvent {
        timestamp: ev.timestamp.clone(),
        kind: ev.kind,
        outcome: ev.outcome,
        identity: ev.identity.as_ref().map(|i| AuditIdentity {
            uid: i.uid,
            gid: i.gid,
            pid: i.pid,
            user: cut_opt(&i.user, field, d),
            unit: cut_opt(&i.unit, field, d),
            exe: cut_opt(&i.exe, field, d),
            unverified: i.unverified.clone(),
            groups: i.groups.clone(),
        }),
        claimed_identity: cut_opt(&ev.claimed_identity, field, d),
        credential: ev.credential.as_ref().map(|c| CredentialRef {
            id: cut(&c.id, field, d),
            unit: cut(&c.unit, field, d),
        }),
        resource: cut_opt(&ev.resource, field, d),
        actions: cut_list(&ev.actions, items, field, d),
        capability_id: cut_opt(&ev.capability_id, field, d),
        request_id: cut_opt(&ev.request_id, field, d),
        rules: cut_list(&ev.rules, items, field, d),
        reason: cut_opt(&ev.reason, field, d),
        policy_generation: ev.policy_generation,
        region: ev.region.clone(),
        version: ev.version,
        summary: ev.summary.as_ref().map(|s| RefusalSummary {
            first_request_id: cut_opt(&s.first_request_id, field, d),
            last_request_id: cut_opt(&s.last_request_id, field, d),
            ..s.clone()
        }),
    }
}

/// Counts bytes without keeping them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `ev` as written, without chain fields (the key order does not change it).
pub fn written_len(ev: &AuditEvent) -> usize {
    let mut c = Counter(0);
    match serde_json::to_writer(&mut c, ev) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventType, Outcome};
    use crate::identity::PeerIdentity;

    fn sha(s: &[u8]) -> String {
        hex::encode(Sha256::digest(s))
    }

    fn denial(action_len: usize, actions: usize) -> AuditEvent {
        let mut ev = AuditEvent::new(EventType::CapabilityRequest, Outcome::Denied)
            .by(&PeerIdentity::bare(65534, 65534))
            .request(&"q".repeat(1000))
            .because("denied: ".to_string() + &"no rule allows this; ".repeat(5000));
        ev.resource = Some(format!("secret:/{}", "r".repeat(1000)));
        ev.claimed_identity = Some("i".repeat(1000));
        ev.actions = (0..actions)
            .map(|i| format!("{i:02}{}", "x".repeat(action_len)))
            .collect();
        ev
    }

    #[test]
    fn a_small_record_is_left_alone() {
        let mut ev = AuditEvent::new(EventType::CapabilityRequest, Outcome::Granted)
            .by(&PeerIdentity::bare(1000, 1000))
            .request("msg_1")
            .because("granted: \"read\" is allowed by rule p/r");
        ev.resource = Some(format!("secret:/{}", "r".repeat(1000)));
        ev.actions = vec!["read".into(), "write".into()];
        let before = ev.clone();
        assert!(!bound(&mut ev, &RecordLimits::DEFAULT));
        assert_eq!(ev, before, "a 1 KiB resource is kept whole");
    }

    #[test]
    fn a_long_field_keeps_its_start_its_length_and_its_digest() {
        let mut ev = AuditEvent::new(EventType::CapabilityValidation, Outcome::Invalid);
        let id = format!("cap_{}", "é".repeat(20_000));
        ev.capability_id = Some(id.clone());
        let limits = RecordLimits {
            max_record_bytes: 8192,
            max_field_bytes: 100,
        };
        assert!(bound(&mut ev, &limits));
        let kept = ev.capability_id.unwrap();
        let (start, marker) = kept.split_once('…').unwrap();
        assert!(id.starts_with(start) && start.len() <= 100 && start.len() >= 98);
        assert_eq!(
            marker,
            format!("[cut: {} bytes, sha256:{}]", id.len(), sha(id.as_bytes()))
        );
    }

    #[test]
    fn escaping_counts_as_written() {
        // Control characters take 6 bytes each as JSON: 100 of them are 600 bytes written.
        let mut ev = AuditEvent::new(EventType::CapabilityRequest, Outcome::Denied);
        ev.resource = Some("\u{1}".repeat(100));
        let limits = RecordLimits {
            max_record_bytes: 8192,
            max_field_bytes: 64,
        };
        assert!(bound(&mut ev, &limits));
        let r = ev.resource.unwrap();
        assert_eq!(r.split_once('…').unwrap().0, "\u{1}".repeat(10));
    }

    #[test]
    fn a_long_list_keeps_its_first_items_and_a_digest_of_the_whole() {
        let mut ev = AuditEvent::new(EventType::CapabilityRequest, Outcome::Denied);
        ev.actions = (0..100).map(|i| format!("a{i}")).collect();
        let whole = serde_json::to_vec(&ev.actions).unwrap();
        assert!(bound(&mut ev, &RecordLimits::DEFAULT));
        assert_eq!(ev.actions.len(), MAX_LIST_ITEMS);
        assert_eq!(ev.actions[0], "a0");
        assert_eq!(ev.actions[30], "a30");
        assert_eq!(
            ev.actions[31],
            format!("…[cut: 100 items, sha256:{}]", sha(&whole))
        );
    }

    #[test]
    fn the_issue_s_denial_of_160_kb_fits_in_a_record() {
        let mut ev = denial(1930, 32);
        assert!(written_len(&ev) > 150_000, "{}", written_len(&ev));
        assert!(bound(&mut ev, &RecordLimits::DEFAULT));
        let n = written_len(&ev);
        assert!(n <= 8192, "{n}");
        // The first actions are still there, recognizably, and the digest of the whole list.
        let whole = serde_json::to_vec(&denial(1930, 32).actions).unwrap();
        assert!(ev.actions.len() >= MIN_LIST_ITEMS, "{:?}", ev.actions);
        assert!(ev.actions[0].starts_with("00xx") && ev.actions[0].contains("sha256:"));
        assert_eq!(
            ev.actions.last().unwrap(),
            &format!("…[cut: 32 items, sha256:{}]", sha(&whole))
        );
        let line = String::from_utf8(ev.to_line()).unwrap();
        assert!(line.contains(&sha("q".repeat(1000).as_bytes())), "{line}");
    }

    #[test]
    fn every_record_fits_the_smallest_record_size_whatever_it_holds() {
        let limits = RecordLimits {
            max_record_bytes: MIN_RECORD_BYTES,
            max_field_bytes: 1 << 20,
        };
        let worst = "\u{1}".repeat(5_000);
        let mut id = PeerIdentity::bare(u32::MAX, u32::MAX);
        id.pid = Some(u32::MAX);
        id.user = Some(worst.clone());
        id.unit = Some(worst.clone());
        id.exe = Some(worst.clone());
        let mut ev = AuditEvent::new(EventType::RefusalSummary, Outcome::Rejected)
            .by(&id)
            .request(&worst)
            .capability(&worst)
            .because(worst.clone());
        ev.resource = Some(worst.clone());
        ev.claimed_identity = Some(worst.clone());
        ev.actions = vec![worst.clone(); 1_000];
        ev.rules = vec![worst.clone(); 1_000];
        ev.policy_generation = Some(u64::MAX);
        ev.version = Some(u64::MAX);
        ev.summary = Some(RefusalSummary {
            budget: u32::MAX,
            counts: [
                "capability_request denied",
                "capability_validation invalid",
                "capability_revocation rejected",
                "connection_rejected rejected",
            ]
            .iter()
            .map(|k| (k.to_string(), u64::MAX))
            .collect(),
            first_request_id: Some(worst.clone()),
            first_time: crate::timefmt::now_rfc3339(),
            last_request_id: Some(worst.clone()),
            last_time: crate::timefmt::now_rfc3339(),
            period_seconds: u64::MAX,
            total: u64::MAX,
            uids: Some(u64::MAX),
        });
        assert!(bound(&mut ev, &limits));
        let n = written_len(&ev);
        assert!(n <= MIN_RECORD_BYTES, "{n}");
    }

    #[test]
    fn cutting_is_before_sealing_so_the_chain_verifies() {
        let mut ev = denial(1930, 32);
        bound(&mut ev, &RecordLimits::DEFAULT);
        let mut head = super::super::chain::ChainHead::default();
        let line = super::super::chain::seal_event(&ev, &mut head).unwrap();
        let text = String::from_utf8(line).unwrap();
        let v = super::super::chain::verify(&[("log".into(), text)]).unwrap();
        assert_eq!(v.records, 1);
    }
}
