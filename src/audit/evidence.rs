//! What `audit verify` holds a log to besides its hash chain: the agent's seals
//! ([`super::seal`]), read from the seal file and from the journal, each checked against the
//! agent's public key.
//!
//! Against the newest seal: the log must reach its seq (else its tail was cut, or it was emptied
//! or deleted), and hold every record from the seal's `files[0]` on (else rotated files were
//! deleted, or the oldest one cut: [`Problem::HeadMissing`] names them). Against every seal
//! whose record is in the log: that record must be the one sealed (else the log was replaced or
//! rewritten). The checks are plain functions of what was read; the CLI reads the files.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use super::chain::ChainHead;
use super::seal::{BadSeal, Seal};

/// Most journal entries read (the newest).
pub const JOURNAL_ENTRIES: usize = 100_000;

/// Seals of one log found in one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Signed by the key, of this log.
    pub seals: Vec<Seal>,
    /// Lines that looked like seals but whose signature is not the key's (forged, or another
    /// agent's).
    pub rejected: usize,
    /// Lines that are not seals (a seal torn by a crash).
    pub unreadable: usize,
}

impl Found {
    fn take(&mut self, line: &str, key: &VerifyingKey, log: &str) {
        match Seal::parse(line, key) {
            Ok(s) if s.log == log => self.seals.push(s),
            Ok(_) => {}
            Err(BadSeal::Signature) => self.rejected += 1,
            Err(BadSeal::Malformed(_)) => self.unreadable += 1,
        }
    }
}

/// The seals of `log` in the text of a seal file.
pub fn from_seal_file(text: &str, key: &VerifyingKey, log: &str) -> Found {
    let mut found = Found::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        found.take(line, key, log);
    }
    found
}

/// The seals of `log` in `journalctl -o json` output (one JSON object per line, the signed
/// line in `AV_SEAL`).
pub fn from_journal_json(text: &str, key: &VerifyingKey, log: &str) -> Found {
    let mut found = Found::default();
    for line in text.lines() {
        if line.len() > 2 * super::seal::MAX_LINE {
            found.unreadable += 1;
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(entry) => match entry.get("AV_SEAL").and_then(Value::as_str) {
                Some(seal) => found.take(seal, key, log),
                None => found.unreadable += 1,
            },
            Err(_) => found.unreadable += 1,
        }
    }
    found
}

/// The seals of `log` in the journal, through `journalctl` (the newest [`JOURNAL_ENTRIES`]
/// entries with the seals' `MESSAGE_ID` and this log). `Err` says why the journal could not be
/// read (no `journalctl`, no journal).
pub fn read_journal(key: &VerifyingKey, log: &str) -> Result<Found, String> {
    let out = std::process::Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "-r", "-n"])
        .arg(JOURNAL_ENTRIES.to_string())
        .arg(format!(
            "MESSAGE_ID={}",
            crate::oplog::AUDIT_SEAL_MESSAGE_ID
        ))
        .arg(format!("AV_SEAL_LOG={log}"))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run journalctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "journalctl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(from_journal_json(
        &String::from_utf8_lossy(&out.stdout),
        key,
        log,
    ))
}

/// The agent's public key from its key file (`STATE_DIR/signing.key`, 32 bytes of seed).
pub fn key_from_file(path: &Path) -> Result<VerifyingKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "{}: expected 32 bytes, found {}",
            path.display(),
            bytes.len()
        )
    })?;
    Ok(crate::capability::Signer::from_seed(seed).public_key())
}

/// The agent's public key in base64, as `agent status` shows it.
pub fn key_from_base64(text: &str) -> Result<VerifyingKey, String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the public key is not base64: {e}"))?;
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("the public key has {} bytes, not 32", raw.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// The seqs whose hash the chain walk must note for [`check`].
pub fn sealed_seqs(seals: &[Seal]) -> HashSet<u64> {
    seals.iter().map(|s| s.seq).filter(|s| *s > 0).collect()
}

/// What the chain walk saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The first record's seq, if there is a record.
    pub first_seq: Option<u64>,
    /// Where the chain ends (seq 0 when there is no record).
    pub head: ChainHead,
    /// The hash of each record whose seq is in [`sealed_seqs`].
    pub hashes: HashMap<u64, String>,
}

/// Verifies the chain of `files` (oldest first, as [`super::chain::verify`]), noting the hash
/// of every record a seal of `seals` names: what the walk saw, for [`check`].
pub fn walk(
    files: &[(std::path::PathBuf, String)],
    seals: &[Seal],
) -> Result<(super::chain::Verified, Seen), super::chain::Broken> {
    let wanted = sealed_seqs(seals);
    let mut hashes = HashMap::new();
    let v = super::chain::verify_observing(files, &mut |_, seq, hash| {
        if wanted.contains(&seq) {
            hashes.insert(seq, hash.to_string());
        }
    })?;
    let seen = Seen {
        first_seq: v.first_seq,
        head: v.head.clone(),
        hashes,
    };
    Ok((v, seen))
}

/// Something the seals show is wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The log ends before the newest seal: records `from`–`to` are missing.
    TailCut {
        /// The log's last seq (0: no record).
        last: u64,
        /// First missing seq.
        from: u64,
        /// The sealed seq, the last missing one.
        to: u64,
        /// When it was sealed.
        time: String,
    },
    /// Record `seq` is in the log, but not as sealed.
    Differs {
        /// The lowest such seq.
        seq: u64,
        /// When it was sealed.
        time: String,
        /// How many sealed records differ in all.
        count: usize,
    },
    /// Records the agent keeps are missing from the start of the set.
    HeadMissing {
        /// First missing seq.
        from: u64,
        /// Last missing seq (the one before the set's first record).
        to: u64,
        /// The files (as named when sealed) that held them and are gone.
        files: Vec<String>,
        /// The file whose beginning was cut, if the set starts inside one.
        cut: Option<String>,
        /// When the agent sealed that it keeps them.
        time: String,
    },
}

impl Problem {
    /// A short name, for `--format json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::TailCut { .. } => "tail_cut",
            Problem::Differs { .. } => "not_as_sealed",
            Problem::HeadMissing { .. } => "files_missing",
        }
    }

    /// The missing records, first and last.
    pub fn missing(&self) -> Option<(u64, u64)> {
        match self {
            Problem::TailCut { from, to, .. } | Problem::HeadMissing { from, to, .. } => {
                Some((*from, *to))
            }
            Problem::Differs { .. } => None,
        }
    }
}

fn records(from: u64, to: u64) -> String {
    if from == to {
        format!("record {from} is")
    } else {
        format!("records {from}–{to} are")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TailCut {
                last,
                from,
                to,
                time,
            } => {
                let ends = if *last == 0 {
                    "the log has no records".to_string()
                } else {
                    format!("the log ends at seq {last}")
                };
                write!(
                    f,
                    "{ends}, but the agent sealed seq {to} at {time}: {} missing (the end of the log was cut, or the log emptied, deleted or replaced)",
                    records(*from, *to)
                )
            }
            Problem::Differs { seq, time, count } => {
                let more = match count {
                    0 | 1 => String::new(),
                    n => format!(" ({} more sealed records differ too)", n - 1),
                };
                write!(
                    f,
                    "record {seq} is not the record the agent sealed at {time}{more}: the log was replaced or rewritten"
                )
            }
            Problem::HeadMissing {
                from,
                to,
                files,
                cut,
                time,
            } => {
                write!(
                    f,
                    "{} missing from the start of the set, though the agent sealed at {time} that it keeps the records from seq {from} on",
                    records(*from, *to)
                )?;
                if !files.is_empty() {
                    let s = if files.len() == 1 { "" } else { "s" };
                    write!(f, ": missing file{s} {}", files.join(", "))?;
                }
                if let Some(c) = cut {
                    let sep = if files.is_empty() { ":" } else { ";" };
                    write!(f, "{sep} the beginning of {c} was cut")?;
                }
                Ok(())
            }
        }
    }
}

/// The file of position `i` (0 = oldest) among `count` files of `log`'s set: `log.N` … `log`.
fn file_name(log: &str, i: usize, count: usize) -> String {
    match count - 1 - i {
        0 => log.to_string(),
        n => format!("{log}.{n}"),
    }
}

/// What the seals say is wrong with what the chain walk saw of `log`; empty when nothing.
pub fn check(seen: &Seen, seals: &[Seal], log: &str) -> Vec<Problem> {
    let Some(latest) = seals
        .iter()
        .max_by(|a, b| (a.seq, &a.time, a.n).cmp(&(b.seq, &b.time, b.n)))
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let kept = latest.kept_from().max(1);
    let head = seen.head.seq;
    if seen.first_seq.is_some_and(|f| f > kept) {
        let first = seen.first_seq.unwrap_or(kept);
        let (mut files, mut cut) = (Vec::new(), None);
        let count = latest.files.len();
        for (i, start) in latest.files.iter().enumerate() {
            let next = latest.files.get(i + 1).copied().unwrap_or(u64::MAX);
            if next <= first {
                files.push(file_name(log, i, count));
            } else if *start < first {
                cut = Some(file_name(log, i, count));
            }
        }
        problems.push(Problem::HeadMissing {
            from: kept,
            to: first - 1,
            files,
            cut,
            time: latest.time.clone(),
        });
    }
    if latest.seq >= kept && head < latest.seq {
        let from = match seen.first_seq {
            Some(_) if head >= kept => head + 1,
            _ => kept,
        };
        problems.push(Problem::TailCut {
            last: head,
            from,
            to: latest.seq,
            time: latest.time.clone(),
        });
    }
    let first = seen.first_seq.unwrap_or(u64::MAX);
    let mut differ: Vec<&Seal> = seals
        .iter()
        .filter(|s| s.seq >= first && s.seq <= head && s.seq > 0)
        .filter(|s| seen.hashes.get(&s.seq) != Some(&s.hash))
        .collect();
    differ.sort_by_key(|s| s.seq);
    differ.dedup_by_key(|s| s.seq);
    if let Some(lowest) = differ.first() {
        problems.push(Problem::Differs {
            seq: lowest.seq,
            time: lowest.time.clone(),
            count: differ.len(),
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::seal::{SealReason, VERSION};
    use crate::capability::Signer;

    const LOG: &str = "/l/audit.log";

    fn seal(seq: u64, files: &[u64]) -> Seal {
        Seal {
            files: files.to_vec(),
            hash: h(seq),
            log: LOG.into(),
            n: 0,
            reason: SealReason::Interval,
            seq,
            start: "ab".repeat(16),
            time: format!("2026-01-01T00:00:{:02}Z", seq % 60),
            v: VERSION,
        }
    }

    fn h(seq: u64) -> String {
        format!("{seq:064x}")
    }

    /// A healthy walk over `first..=last`.
    fn seen(first: u64, last: u64, seals: &[Seal]) -> Seen {
        let wanted = sealed_seqs(seals);
        Seen {
            first_seq: (last >= first).then_some(first),
            head: ChainHead {
                seq: if last >= first { last } else { 0 },
                hash: h(last),
            },
            hashes: (first..=last)
                .filter(|s| wanted.contains(s))
                .map(|s| (s, h(s)))
                .collect(),
        }
    }

    #[test]
    fn a_healthy_log_passes_including_records_after_the_last_seal() {
        let seals = [seal(10, &[1]), seal(20, &[1, 15]), seal(0, &[1])];
        assert_eq!(check(&seen(1, 25, &seals), &seals, LOG), vec![]);
        // Rotated away as the agent's retention says: the set starts at files[0].
        let seals = [seal(20, &[1, 15]), seal(30, &[15, 25])];
        assert_eq!(check(&seen(15, 30, &seals), &seals, LOG), vec![]);
        // Logrotate mode after a reopen: the agent vouches for the empty live file only.
        let seals = [seal(30, &[31])];
        assert_eq!(check(&seen(1, 0, &seals), &seals, LOG), vec![]);
        assert_eq!(
            check(&seen(1, 0, &[]), &[], LOG),
            vec![],
            "no seals, nothing to say"
        );
    }

    #[test]
    fn a_cut_tail_names_the_missing_records() {
        let seals = [seal(10, &[1]), seal(20, &[1])];
        let p = check(&seen(1, 17, &seals), &seals, LOG);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].missing(), Some((18, 20)));
        assert!(
            p[0].to_string().contains("records 18–20 are missing"),
            "{}",
            p[0]
        );
        // Emptied: every kept record is missing.
        let p = check(&seen(1, 0, &seals), &seals, LOG);
        assert_eq!(p[0].missing(), Some((1, 20)), "{p:?}");
        assert!(p[0].to_string().starts_with("the log has no records"));
    }

    #[test]
    fn a_replaced_log_differs_at_a_sealed_record() {
        let seals = [seal(10, &[1]), seal(20, &[1])];
        let mut s = seen(1, 40, &seals);
        s.hashes.insert(10, "f".repeat(64));
        s.hashes.insert(20, "e".repeat(64));
        let p = check(&s, &seals, LOG);
        assert_eq!(
            p,
            vec![Problem::Differs {
                seq: 10,
                time: "2026-01-01T00:00:10Z".into(),
                count: 2
            }]
        );
        assert!(p[0].to_string().contains("1 more sealed records differ"));
    }

    #[test]
    fn deleted_rotated_files_are_named_as_sealed() {
        // Set: audit.log.3 (1–9), .2 (10–19), .1 (20–29), audit.log (30–).
        let seals = [seal(35, &[1, 10, 20, 30])];
        let p = check(&seen(20, 35, &seals), &seals, LOG);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].missing(), Some((1, 19)));
        let text = p[0].to_string();
        assert!(
            text.contains("missing files /l/audit.log.3, /l/audit.log.2"),
            "{text}"
        );
        // Starting inside .2: .3 gone, .2 cut.
        let p = check(&seen(12, 35, &seals), &seals, LOG);
        let text = p[0].to_string();
        assert!(
            text.contains("missing file /l/audit.log.3; the beginning of /l/audit.log.2 was cut"),
            "{text}"
        );
        // Everything deleted, the agent going on from its seal: the head is missing.
        let p = check(&seen(36, 40, &seals), &seals, LOG);
        assert_eq!(p[0].missing(), Some((1, 35)), "{p:?}");
    }

    #[test]
    fn journal_and_seal_file_lines_are_read_and_forgeries_counted() {
        let agent = Signer::from_seed([1; 32]);
        let other = Signer::from_seed([2; 32]);
        let key = agent.public_key();
        let (good, _) = seal(5, &[1]).signed_line(&agent);
        let (forged, _) = seal(500, &[1]).signed_line(&other);
        let mut elsewhere = seal(6, &[1]);
        elsewhere.log = "/other.log".into();
        let (elsewhere, _) = elsewhere.signed_line(&agent);
        let file = format!("{good}{forged}{elsewhere}{{\"files\":[1],\"ha\n");
        let found = from_seal_file(&file, &key, LOG);
        assert_eq!(
            (found.seals.len(), found.rejected, found.unreadable),
            (1, 1, 1)
        );
        let journal: String = [&good, &forged, &elsewhere]
            .iter()
            .map(|l| {
                format!(
                    "{}\n",
                    serde_json::json!({"MESSAGE_ID": "x", "AV_SEAL": l.trim_end()})
                )
            })
            .chain(["{\"MESSAGE\":\"no seal\"}\n".to_string(), "junk\n".into()])
            .collect();
        let found = from_journal_json(&journal, &key, LOG);
        assert_eq!(
            (found.seals.len(), found.rejected, found.unreadable),
            (1, 1, 2)
        );
        assert_eq!(found.seals[0].seq, 5);
    }

    #[test]
    fn keys_are_read_from_a_key_file_or_base64() {
        let dir = tempfile::tempdir().unwrap();
        let s = Signer::load_or_create(dir.path()).unwrap();
        let from_file = key_from_file(&dir.path().join("signing.key")).unwrap();
        assert_eq!(from_file, s.public_key());
        assert_eq!(key_from_base64(&s.public_key_base64()).unwrap(), from_file);
        assert!(key_from_base64("%%").is_err() && key_from_base64("AAAA").is_err());
        std::fs::write(dir.path().join("short"), b"x").unwrap();
        assert!(
            key_from_file(&dir.path().join("short"))
                .unwrap_err()
                .contains("32 bytes")
        );
    }
}
