//! The durable capability store: an append-only log of what happened to capabilities.
//!
//! `STATE_DIR/capabilities.log` (0600, in a 0700 directory) holds one operation per line —
//! a grant, a revocation, or a use count — as `CRC32 JSON\n`, the CRC (hex) covering the JSON.
//! On start the log is replayed: a torn or corrupt *last* record (a write cut by a crash, never
//! acknowledged) is cut off; a corrupt record *followed by good ones* stops the start with an
//! error, because skipping a revocation would bring a capability back. Use counts are written
//! as absolute values and only ever raise a count, so replay is order-safe and no count goes
//! backwards. Compaction writes the live set to a new file and renames it over the log, so the
//! store is never briefly absent.
//!
//! Why a small log of our own rather than an embedded database: the data is a few hundred bytes
//! per capability with three kinds of change, the durability contract is exactly "this line is
//! on disk before the answer", and group commit is one `fdatasync` over a batch of lines.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{Record, Revocation};
use crate::protocol::types::{Capability, Holder};

/// File name of the store inside the state directory.
pub const STORE_FILE: &str = "capabilities.log";

/// One change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StoreOp {
    /// A capability was issued.
    Grant {
        /// The signed capability (without status and holder).
        cap: Box<Capability>,
        /// Its holder.
        holder: Holder,
    },
    /// A capability was revoked.
    Revoke {
        /// Its id.
        id: String,
        /// When (RFC 3339).
        at: String,
        /// Why.
        reason: Option<String>,
        /// By whom (verified uid).
        by_uid: u32,
    },
    /// A capability's use count reached `count`.
    Use {
        /// Its id.
        id: String,
        /// The new count.
        count: u64,
    },
}

/// Why the store cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("capability store {path}: {message}")]
pub struct StoreError {
    /// The store file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// The open store.
#[derive(Debug)]
pub struct CapStore {
    path: PathBuf,
    file: File,
}

/// Compact the store when it is this much larger than its live records would be, and above
/// [`COMPACT_MIN_BYTES`].
const COMPACT_FACTOR: u64 = 4;
/// Never compact a store smaller than this.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// Whether a store of `size` bytes holding `live` is worth compacting: above
/// [`COMPACT_MIN_BYTES`] and [`COMPACT_FACTOR`] times what the live records would take.
pub fn worth_compacting(size: u64, live: &[Record]) -> bool {
    // About 1 KiB a record, plus what its requester chose to keep in it.
    let estimate: u64 = live
        .iter()
        .map(|r| {
            let chosen = crate::protocol::checks::json_size(&r.cap.metadata)
                + crate::protocol::checks::json_size(&r.cap.constraints);
            1024 + chosen as u64
        })
        .sum::<u64>()
        + 1024;
    size > COMPACT_MIN_BYTES && size > COMPACT_FACTOR * estimate
}

/// Appends `op` as one line, `CRC32 JSON\n`, to `out`.
fn encode_into(out: &mut Vec<u8>, op: &StoreOp) {
    let start = out.len();
    // Room for the CRC and its space, filled in once the JSON is there.
    out.extend_from_slice(b"00000000 ");
    if serde_json::to_writer(&mut *out, op).is_err() {
        out.truncate(start + 9);
    }
    let crc = crc32fast::hash(&out[start + 9..]);
    out[start..start + 8].copy_from_slice(format!("{crc:08x}").as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
fn encode(op: &StoreOp) -> Vec<u8> {
    let mut line = Vec::new();
    encode_into(&mut line, op);
    line
}

fn decode(line: &[u8]) -> Option<StoreOp> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    if line.get(8) != Some(&b' ') {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    (crc32fast::hash(json) == crc)
        .then(|| serde_json::from_slice(json).ok())
        .flatten()
}

/// Applies one operation to the in-memory registry.
pub fn apply(records: &mut HashMap<String, Record>, op: StoreOp) {
    match op {
        StoreOp::Grant { cap, holder } => {
            let expires_at =
                crate::timefmt::parse(&cap.expires_at).unwrap_or_else(jiff::Timestamp::now);
            records.entry(cap.id.clone()).or_insert(Record {
                cap: *cap,
                holder,
                expires_at,
                revoked: None,
            });
        }
        StoreOp::Revoke {
            id,
            at,
            reason,
            by_uid,
        } => {
            if let Some(r) = records.get_mut(&id) {
                let at = crate::timefmt::parse(&at).unwrap_or_else(jiff::Timestamp::now);
                r.revoked.get_or_insert(Revocation { at, reason, by_uid });
            }
        }
        StoreOp::Use { id, count } => {
            if let Some(r) = records.get_mut(&id) {
                r.cap.used_count = r.cap.used_count.max(count);
            }
        }
    }
}

/// The operations that rebuild `r` exactly.
pub fn ops_for(r: &Record) -> Vec<StoreOp> {
    let mut cap = r.cap.clone();
    let used = cap.used_count;
    cap.used_count = 0;
    cap.status = None;
    cap.holder = None;
    let mut ops = vec![StoreOp::Grant {
        cap: Box::new(cap),
        holder: r.holder.clone(),
    }];
    if used > 0 {
        ops.push(StoreOp::Use {
            id: r.cap.id.clone(),
            count: used,
        });
    }
    if let Some(rev) = &r.revoked {
        ops.push(StoreOp::Revoke {
            id: r.cap.id.clone(),
            at: crate::timefmt::rfc3339(rev.at),
            reason: rev.reason.clone(),
            by_uid: rev.by_uid,
        });
    }
    ops
}

impl CapStore {
    /// Opens (creating if needed) the store in `state_dir` and replays it.
    pub fn open(state_dir: &Path) -> Result<(CapStore, HashMap<String, Record>), StoreError> {
        let path = state_dir.join(STORE_FILE);
        let err = |m: String| StoreError {
            path: path.clone(),
            message: m,
        };
        if !state_dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(|e| err(format!("cannot create the state directory: {e}")))?;
        }
        // Never through a symbolic link (the owner and mode are checked at start, with the
        // state directory's: crate::trust::check_agent_files).
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| err(format!("cannot open: {e}")))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let mut records = HashMap::new();
        let mut good_end = 0usize;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let Some(nl) = bytes[pos..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let line = &bytes[pos..pos + nl];
            match decode(line) {
                Some(op) => {
                    apply(&mut records, op);
                    pos += nl + 1;
                    good_end = pos;
                }
                None => {
                    let rest = &bytes[pos + nl + 1..];
                    if rest.split(|b| *b == b'\n').any(|l| decode(l).is_some()) {
                        return Err(err(format!(
                            "record at byte {pos} is corrupt and good records follow it; refusing to guess (move the file aside to start with no capabilities)"
                        )));
                    }
                    break;
                }
            }
        }
        if good_end < bytes.len() {
            tracing::warn!(path = %path.display(), bytes = bytes.len() - good_end, "cutting off a torn last capability record (never acknowledged)");
            file.set_len(good_end as u64)
                .map_err(|e| err(format!("cannot truncate: {e}")))?;
            file.sync_data()
                .map_err(|e| err(format!("cannot sync: {e}")))?;
        }
        Ok((CapStore { path, file }, records))
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends operations durably: one write, one `fdatasync`; nothing half-written remains on
    /// failure.
    pub fn append(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(ops.len() * 1024);
        for op in ops {
            encode_into(&mut bytes, op);
        }
        let before = self
            .file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.error(format!("cannot stat: {e}")))?;
        if let Err(e) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            let _ = self.file.set_len(before);
            return Err(self.error(format!("cannot write: {e}")));
        }
        Ok(())
    }

    /// Replaces the log with one holding only `live`, atomically (write, sync, rename, sync
    /// the directory). The old log stays whole until the rename.
    pub fn compact<'a>(
        &mut self,
        live: impl Iterator<Item = &'a Record>,
    ) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("log.compact");
        let mut bytes = Vec::new();
        for op in live.flat_map(ops_for) {
            encode_into(&mut bytes, &op);
        }
        let write = || -> std::io::Result<File> {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().read(true).append(true).open(&self.path)
        };
        match write() {
            Ok(f) => {
                self.file = f;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(self.error(format!("cannot compact: {e}")))
            }
        }
    }

    /// The log's size in bytes.
    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn error(&self, message: String) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message,
        }
    }
}

impl crate::durable::Sink for CapStore {
    type Item = StoreOp;

    fn write(&mut self, items: &[StoreOp]) -> Result<(), String> {
        self.append(items).map_err(|e| {
            tracing::error!(error = %e, records = items.len(), "capability records could not be written");
            e.to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn cap(id: &str) -> Capability {
        Capability {
            id: id.into(),
            kind: "read".into(),
            resource: "secret:/x".into(),
            actions: vec!["read".into()],
            identity: String::new(),
            issuer: "i".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2099-01-01T00:00:00Z".into(),
            ttl: 60,
            max_uses: 10,
            used_count: 0,
            signature: "sig".into(),
            metadata: BTreeMap::new(),
            constraints: None,
            status: None,
            holder: None,
        }
    }

    fn holder() -> Holder {
        Holder {
            uid: 1000,
            gid: 1000,
            user: None,
            unit: None,
        }
    }

    #[test]
    fn replays_grants_revocations_and_uses_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (mut s, recs) = CapStore::open(&state).unwrap();
        assert!(recs.is_empty());
        s.append(&[
            StoreOp::Grant {
                cap: Box::new(cap("a")),
                holder: holder(),
            },
            StoreOp::Grant {
                cap: Box::new(cap("b")),
                holder: holder(),
            },
        ])
        .unwrap();
        s.append(&[
            StoreOp::Use {
                id: "a".into(),
                count: 3,
            },
            StoreOp::Use {
                id: "a".into(),
                count: 2,
            },
        ])
        .unwrap();
        s.append(&[StoreOp::Revoke {
            id: "b".into(),
            at: "2026-01-01T00:00:01Z".into(),
            reason: None,
            by_uid: 0,
        }])
        .unwrap();
        drop(s);
        let (_, recs) = CapStore::open(&state).unwrap();
        assert_eq!(recs["a"].cap.used_count, 3, "use counts never go backwards");
        assert!(recs["b"].revoked.is_some());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.join(STORE_FILE)), 0o600);
        assert_eq!(mode(&state), 0o700);
    }

    #[test]
    fn a_torn_last_record_is_cut_but_mid_file_corruption_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = CapStore::open(dir.path()).unwrap();
        s.append(&[StoreOp::Grant {
            cap: Box::new(cap("a")),
            holder: holder(),
        }])
        .unwrap();
        drop(s);
        let path = dir.path().join(STORE_FILE);
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(
            &encode(&StoreOp::Grant {
                cap: Box::new(cap("b")),
                holder: holder(),
            })[..40],
        );
        std::fs::write(&path, &torn).unwrap();
        let (_, recs) = CapStore::open(dir.path()).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            good,
            "the torn tail was cut off"
        );
        // A flipped byte in the first of two records.
        let mut two = good.clone();
        two.extend_from_slice(&encode(&StoreOp::Revoke {
            id: "a".into(),
            at: "2026-01-01T00:00:00Z".into(),
            reason: None,
            by_uid: 0,
        }));
        two[20] ^= 1;
        std::fs::write(&path, &two).unwrap();
        assert!(
            CapStore::open(dir.path())
                .unwrap_err()
                .message
                .contains("corrupt")
        );
    }

    #[test]
    fn compaction_keeps_exactly_the_live_state() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = CapStore::open(dir.path()).unwrap();
        s.append(&[
            StoreOp::Grant {
                cap: Box::new(cap("a")),
                holder: holder(),
            },
            StoreOp::Use {
                id: "a".into(),
                count: 4,
            },
            StoreOp::Grant {
                cap: Box::new(cap("b")),
                holder: holder(),
            },
            StoreOp::Revoke {
                id: "b".into(),
                at: "2026-01-01T00:00:01Z".into(),
                reason: Some("r".into()),
                by_uid: 7,
            },
        ])
        .unwrap();
        drop(s);
        let (mut s, recs) = CapStore::open(dir.path()).unwrap();
        s.compact(recs.values()).unwrap();
        s.append(&[StoreOp::Use {
            id: "a".into(),
            count: 5,
        }])
        .unwrap();
        drop(s);
        let (_, after) = CapStore::open(dir.path()).unwrap();
        assert_eq!(after["a"].cap.used_count, 5);
        assert_eq!(after["b"].revoked.as_ref().unwrap().by_uid, 7);
        assert_eq!(after["a"].cap, {
            let mut c = cap("a");
            c.used_count = 5;
            c
        });
        assert!(!dir.path().join("capabilities.log.compact").exists());
    }
}
