//! Seals: the agent's signed word on where the audit chain stood, kept where someone who can
//! edit the log directory cannot take it back.
//!
//! A [`Seal`] says: at `time`, the record `seq` of the log `log` had `hash`, and the agent keeps
//! the records from `files[0]` on — `files` being the first seq of each file of the rotation
//! set, oldest first, the live file last. It is signed with the agent's Ed25519 key over
//! [`DOMAIN`] followed by its canonical JSON without `sig` (keys sorted, compact, as records are
//! hashed). This module is the format: writing and checking one line. The agent writes seals
//! with a [`super::sealer::Sealer`]; `audit verify` holds a log to them
//! ([`super::evidence`]).

use std::fs::File;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::capability::Signer;

/// What a seal's signature covers before its canonical JSON.
pub const DOMAIN: &[u8] = b"aether-vault-audit-seal-v1\n";

/// The seal format's version.
pub const VERSION: u32 = 1;

/// The seal file's name in the state directory when `audit.seal_file` is not set.
pub const DEFAULT_FILE_NAME: &str = "audit.seals";

/// Longest seal line read; longer lines are not seals.
pub const MAX_LINE: usize = 64 * 1024;

/// Most entries of a seal's `files`; past it the oldest are dropped (the seal then promises
/// less, never more).
pub const MAX_FILES: usize = 1024;

/// Why a seal was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealReason {
    /// The agent started (the head it found, or the sealed head it went on from).
    Start,
    /// `audit.seal_interval_seconds` passed and the chain had moved.
    Interval,
    /// The log is about to rotate; `files` is the set as it will be after.
    Rotate,
    /// The log was moved away (logrotate, a deletion) and a new file opened.
    Reopen,
    /// The agent is stopping.
    Stop,
}

impl SealReason {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            SealReason::Start => "start",
            SealReason::Interval => "interval",
            SealReason::Rotate => "rotate",
            SealReason::Reopen => "reopen",
            SealReason::Stop => "stop",
        }
    }
}

/// One seal (without its signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// First seq of each file of the rotation set the agent keeps, oldest first, the live file
    /// last: the agent keeps every record from `files[0]` on.
    pub files: Vec<u64>,
    /// `hash` of record `seq` ([`super::chain::GENESIS`] for seq 0).
    pub hash: String,
    /// The log's path, its directory resolved (see [`log_identity`]).
    pub log: String,
    /// Seals written by this start of the agent before this one.
    pub n: u64,
    /// Why it was written.
    pub reason: SealReason,
    /// The sealed record's seq (0: no record yet).
    pub seq: u64,
    /// This start of the agent: 128 random bits, hex.
    pub start: String,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// [`VERSION`].
    pub v: u32,
}

/// Why a seal line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSeal {
    /// Not a JSON object with the fields of a seal.
    #[error("not a seal: {0}")]
    Malformed(String),
    /// The signature is not the key's over the line.
    #[error("the signature does not verify")]
    Signature,
}

impl Seal {
    /// The first seq the agent keeps.
    pub fn kept_from(&self) -> u64 {
        self.files.first().copied().unwrap_or(self.seq + 1)
    }

    /// The signed line (with its `\n`) and the signature (base64).
    pub fn signed_line(&self, signer: &Signer) -> (String, String) {
        let mut fields = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            // Cannot happen for this struct; an empty object does not parse back as a seal.
            _ => Map::new(),
        };
        let signature = B64.encode(signer.sign_message(&signed_bytes(&fields)));
        fields.insert("sig".into(), Value::from(signature.clone()));
        let mut line = Value::Object(fields).to_string();
        line.push('\n');
        (line, signature)
    }

    /// Parses one line and checks its signature with `key`.
    pub fn parse(line: &str, key: &VerifyingKey) -> Result<Seal, BadSeal> {
        if line.len() > MAX_LINE {
            return Err(BadSeal::Malformed("line too long".into()));
        }
        let mut fields: Map<String, Value> = match serde_json::from_str(line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(BadSeal::Malformed("not a JSON object".into())),
        };
        let Some(Value::String(sig)) = fields.remove("sig") else {
            return Err(BadSeal::Malformed("no sig".into()));
        };
        let signature = B64
            .decode(sig.as_bytes())
            .ok()
            .and_then(|raw| Signature::from_slice(&raw).ok())
            .ok_or(BadSeal::Signature)?;
        key.verify(&signed_bytes(&fields), &signature)
            .map_err(|_| BadSeal::Signature)?;
        let seal: Seal = serde_json::from_value(Value::Object(fields))
            .map_err(|e| BadSeal::Malformed(e.to_string()))?;
        if seal.v != VERSION {
            return Err(BadSeal::Malformed(format!("version {}", seal.v)));
        }
        Ok(seal)
    }
}

/// [`DOMAIN`] then the compact JSON of `fields` (sorted: serde_json's map is ordered by key).
fn signed_bytes(fields: &Map<String, Value>) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    if serde_json::to_writer(&mut out, fields).is_err() {
        out.truncate(DOMAIN.len());
    }
    out
}

/// How a seal names its log: the log's directory resolved (symlinks, `..`), then its file name;
/// the path as given (made absolute) when the directory cannot be resolved.
pub fn log_identity(log: &Path) -> String {
    let absolute = std::path::absolute(log).unwrap_or_else(|_| log.to_path_buf());
    let resolved = match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    };
    resolved.to_string_lossy().into_owned()
}

/// The seq of the first record of `file` (read from its start, at most `MAX_FIRST` bytes);
/// `None` when it has none or it cannot be read.
pub fn first_seq(file: &File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    const MAX_FIRST: usize = 4 << 20;
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    loop {
        let n = file.read_at(&mut buf[have..], have as u64).ok()?;
        have += n;
        if let Some(end) = buf[..have].iter().position(|b| *b == b'\n') {
            #[derive(Deserialize)]
            struct Seq {
                seq: u64,
            }
            return serde_json::from_slice::<Seq>(&buf[..end])
                .ok()
                .map(|s| s.seq);
        }
        if n == 0 || have >= MAX_FIRST {
            return None;
        }
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn signer() -> Arc<Signer> {
        Arc::new(Signer::from_seed([9; 32]))
    }

    fn seal(seq: u64) -> Seal {
        Seal {
            files: vec![1, 40],
            hash: format!("{seq:064x}"),
            log: "/var/log/aether-vault/audit.log".into(),
            n: 3,
            reason: SealReason::Interval,
            seq,
            start: "00".repeat(16),
            time: "2026-01-01T00:00:00Z".into(),
            v: VERSION,
        }
    }

    #[test]
    fn a_seal_verifies_with_its_key_only_and_every_field_is_signed() {
        let s = signer();
        let (line, sig) = seal(42).signed_line(&s);
        assert!(line.ends_with('\n') && line.contains(&sig));
        let key = s.public_key();
        assert_eq!(Seal::parse(line.trim_end(), &key).unwrap(), seal(42));
        assert_eq!(
            Seal::parse(&line, &Signer::from_seed([8; 32]).public_key()),
            Err(BadSeal::Signature),
            "another key"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        for (field, other) in [
            ("seq", json(43)),
            ("hash", json("0".repeat(64))),
            ("log", json("/tmp/x.log")),
            ("files", json([5, 40])),
            ("reason", json("stop")),
            ("time", json("2027-01-01T00:00:00Z")),
            ("start", json("11".repeat(16))),
            ("n", json(4)),
            ("extra", json(1)),
        ] {
            let mut forged = v.clone();
            forged[field] = other;
            assert_eq!(
                Seal::parse(&forged.to_string(), &key),
                Err(BadSeal::Signature),
                "{field} is signed"
            );
        }
        let mut unsigned = v.clone();
        unsigned.as_object_mut().unwrap().remove("sig");
        assert!(matches!(
            Seal::parse(&unsigned.to_string(), &key),
            Err(BadSeal::Malformed(_))
        ));
        for junk in [
            "",
            "{",
            "[]",
            "{\"sig\":\"%%%\"}",
            &"x".repeat(MAX_LINE + 1),
        ] {
            assert!(Seal::parse(junk, &key).is_err(), "{junk:.20}");
        }
    }

    fn json<T: Serialize>(v: T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn the_signed_bytes_are_the_domain_then_the_sorted_compact_json() {
        // What docs/durability.md tells a verifier in another language to rebuild.
        let s = signer();
        let (line, _) = seal(7).signed_line(&s);
        let mut v: Map<String, Value> = serde_json::from_str(&line).unwrap();
        let sig = B64
            .decode(v.remove("sig").unwrap().as_str().unwrap())
            .unwrap();
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.starts_with("{\"files\":[1,40],\"hash\":"), "{text}");
        let mut msg = b"aether-vault-audit-seal-v1\n".to_vec();
        msg.extend_from_slice(text.as_bytes());
        s.public_key()
            .verify(&msg, &Signature::from_slice(&sig).unwrap())
            .unwrap();
    }

    #[test]
    fn first_seq_reads_the_first_record_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(
            &p,
            format!(
                "{{\"seq\":7,\"x\":\"{}\"}}\n{{\"seq\":8}}\n",
                "y".repeat(200_000)
            ),
        )
        .unwrap();
        assert_eq!(first_seq(&File::open(&p).unwrap()), Some(7));
        std::fs::write(&p, "").unwrap();
        assert_eq!(first_seq(&File::open(&p).unwrap()), None);
        std::fs::write(&p, "{\"seq\":7").unwrap();
        assert_eq!(first_seq(&File::open(&p).unwrap()), None, "no whole line");
    }
}
