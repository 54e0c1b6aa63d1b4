//! The audit log file: appending sealed records durably, and picking the chain up again.
//!
//! The file is opened in append mode, created 0640 (its directory 0750). On open, the chain
//! head is read from the end of the file (or of the newest rotated file, `FILE.1`, when the file
//! is new), and a torn last line — a record whose write was cut by a crash, and so was never
//! acknowledged — is cut off. [`AuditLog::append_batch`] seals a batch of records, writes them
//! with one `write`, and makes them durable with one `fdatasync`: the group commit that lets
//! many concurrent requests share one sync. [`AuditLog::write_batch`] writes without the sync
//! (`audit.sync: periodic`), and [`AuditLog::sync`] / [`AuditLog::sync_handle`] sync later. On
//! any failure the file is cut back to where it was and the chain head does not move, so a
//! failed batch leaves no half-record behind.
//!
//! Every batch checks the open file's link count (one `fstat`, which also gives the length to
//! cut back to on failure): a deleted file (an operator's `rm`) is noticed at once and a new
//! file opened, the chain continuing from the last record written. The path itself is looked
//! up at least once a second: a renamed or replaced file (logrotate's `create` without a
//! `SIGHUP`) is noticed then, and records written meanwhile are in the renamed file, on the
//! chain. So a synced batch costs one `fstat`, one `write` and one `fdatasync`. Past
//! `max_file_size` the log rotates itself: `FILE` becomes `FILE.1`, `FILE.1` becomes `FILE.2`…
//! Rotated files beyond `max_backup_files` are deleted, oldest first, but only once they are
//! `min_age` old (their last write, the file's mtime): until then the set grows past the count,
//! so that no flood of records can delete evidence faster than an administrator can react.
//! Which files a rotation deletes is decided once, before anything moves
//! ([`super::retention::Plan`]), and both carried out here and sealed.
//!
//! With a [`Sealer`] attached ([`AuditLog::attach_sealer`]), the log is sealed at start and
//! before a rotation renames or deletes anything (the set as that rotation leaves it), and a
//! new file is reported to it; the writer seals at intervals what [`AuditLog::durable_head`]
//! gives it (see [`super::sealer`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::chain::{self, ChainHead};
use super::event::AuditEvent;
pub use super::retention::Rotation;
use super::retention::{self, Plan};
use super::seal::{self, SealReason};
use super::sealer::{SealError, Sealer};

/// Why the log could not be written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// Opening, reading or writing the file failed.
    #[error("audit log {path}: {message}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The seal file cannot be used.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// How much of the end of the file is read to find the chain head.
const TAIL_BYTES: u64 = 1 << 20;

/// An open audit log and the head of its chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    head: ChainHead,
    rotation: Rotation,
    /// (device, inode) of the open file, to notice it being deleted or replaced.
    identity: (u64, u64),
    /// When the path was last looked up (see [`AuditLog::ensure_current`]).
    path_checked: Instant,
    /// `seq` of the last record known to be on disk (synced).
    synced: u64,
    /// Seals the chain, when sealing is on. Its own lock, so that a seal's `fdatasync` (of the
    /// seal file) need not hold the log: lock the log first, then the sealer, never the
    /// other way round.
    sealer: Option<SharedSealer>,
}

/// Where a batch is written from, which decides what the write may wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrittenBy {
    /// The writer thread: the path is looked up before the batch, and the log rotates after
    /// it when due (rotating syncs the old file and the directory).
    WriterThread,
    /// The event loop (`audit.sync: periodic`): never a wait for the disk; rotation waits for
    /// the writer thread's next batch or sync.
    EventLoop,
}

/// A [`Sealer`] shared by the log (rotation, new files) and whoever seals at intervals.
pub type SharedSealer = Arc<Mutex<Sealer>>;

fn lock(s: &SharedSealer) -> Result<MutexGuard<'_, Sealer>, AuditError> {
    s.lock().map_err(|_| AuditError::Io {
        path: PathBuf::new(),
        message: "the audit sealer's lock is poisoned".into(),
    })
}

/// Longest time between two lookups of the log's path (a deletion is noticed at once, by the
/// open file's link count).
const PATH_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn file_identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Opens (creating 0640) the log for appending, never through a symbolic link: a link planted
/// at the path fails with ELOOP instead of leading the records elsewhere.
fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` and finds where its chain ends; it never
    /// rotates itself.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(path, Rotation::default())
    }

    /// Opens the log with a rotation policy.
    pub fn open_with(path: &Path, rotation: Rotation) -> Result<AuditLog, AuditError> {
        let io = |what: &str, e: std::io::Error| AuditError::Io {
            path: path.to_path_buf(),
            message: format!("{what}: {e}"),
        };
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| io("cannot create directory", e))?;
        }
        let mut file = open_append(path).map_err(|e| io("cannot open", e))?;
        let tail = read_tail(&mut file).map_err(|e| io("cannot read", e))?;
        let len = file.metadata().map_err(|e| io("cannot stat", e))?.len();
        let keep = match tail.iter().rposition(|b| *b == b'\n') {
            Some(i) => len - (tail.len() - i - 1) as u64,
            None if len <= TAIL_BYTES => 0,
            None => len,
        };
        if keep < len {
            tracing::warn!(path = %path.display(), bytes = len - keep, "cutting off a torn last audit record (never acknowledged)");
            file.set_len(keep)
                .map_err(|e| io("cannot truncate a torn record", e))?;
            file.sync_data().map_err(|e| io("cannot sync", e))?;
        }
        let text =
            String::from_utf8_lossy(&tail[..tail.len() - (len - keep) as usize]).into_owned();
        let head = match chain::head_of(&text) {
            Some(h) => h,
            None if keep == 0 => previous_head(path),
            None => {
                return Err(AuditError::Io {
                    path: path.to_path_buf(),
                    message: "the last record cannot be read, so the hash chain cannot continue; move the file aside".into(),
                });
            }
        };
        let identity = file_identity(&file.metadata().map_err(|e| io("cannot stat", e))?);
        // What the file holds was synced by whoever wrote it, or is about to be (a torn
        // record was cut and synced above).
        let synced = head.seq;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            head,
            rotation,
            identity,
            path_checked: Instant::now(),
            synced,
            sealer: None,
        })
    }

    /// Starts sealing with `sealer`: takes up the set as its last seal left it (going on from
    /// the sealed record if the log on disk ends before it or differs at it), makes the log
    /// durable and seals it (`start`). Returns the sealer, to seal at intervals with
    /// [`AuditLog::durable_head`].
    pub fn attach_sealer(&mut self, mut sealer: Sealer) -> Result<SharedSealer, AuditError> {
        let path = self.path.clone();
        let on_disk = || {
            chain::rotation_set(&path)
                .iter()
                .filter_map(|p| File::open(p).ok().and_then(|f| seal::first_seq(&f)))
                .collect()
        };
        if let Some(sealed) = sealer.begin(&self.head, seal::first_seq(&self.file), on_disk) {
            self.head = sealed;
        }
        self.sync()?;
        sealer.seal(&self.head, SealReason::Start)?;
        let shared = Arc::new(Mutex::new(sealer));
        self.sealer = Some(shared.clone());
        Ok(shared)
    }

    /// The chain head and a handle whose `fdatasync` makes every record up to it durable
    /// (what may be sealed once synced), and the sealer, if one is attached.
    pub fn durable_head(&self) -> Result<(ChainHead, File, Option<SharedSealer>), AuditError> {
        Ok((self.head.clone(), self.sync_handle()?, self.sealer.clone()))
    }

    /// Opens a new file at the path, continuing the chain from the last record written (for
    /// logrotate's SIGHUP, and when the file was deleted or replaced).
    pub fn reopen(&mut self) -> Result<(), AuditError> {
        let before = self.identity;
        let reopened = self.open_new_file();
        if self.identity != before {
            if let Some(s) = &self.sealer {
                lock(s)?.new_file(self.head.seq + 1);
            }
        }
        reopened
    }

    fn open_new_file(&mut self) -> Result<(), AuditError> {
        // Records written but not yet synced (`audit.sync: periodic`) go to disk with the old
        // file. If they cannot, the new file is opened all the same, and the failure is the
        // caller's error: answered records may not be on disk.
        let synced = self.file.sync_data();
        let file =
            open_append(&self.path).map_err(|e| self.error(format!("cannot reopen: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| self.error(format!("cannot stat: {e}")))?;
        self.identity = file_identity(&meta);
        self.file = file;
        synced.map_err(|e| self.error(format!("cannot sync the previous file: {e}")))?;
        self.synced = self.head.seq;
        Ok(())
    }

    /// Reopens when the path no longer names the open file; returns the open file's length.
    /// The open file's link count, read for every batch, notices a deletion at once; the path
    /// itself (a rename away, a replacement) is looked up at least every [`PATH_CHECK_EVERY`],
    /// which spares every batch a lookup — records written meanwhile are in the renamed file,
    /// on the chain.
    fn ensure_current(&mut self) -> Result<u64, AuditError> {
        use std::os::unix::fs::MetadataExt;
        let meta = self
            .file
            .metadata()
            .map_err(|e| self.error(format!("cannot stat: {e}")))?;
        if !(meta.nlink() == 0 || self.path_checked.elapsed() >= PATH_CHECK_EVERY) {
            return Ok(meta.len());
        }
        self.path_checked = Instant::now();
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| file_identity(&m));
        if current == Some(self.identity) {
            return Ok(meta.len());
        }
        tracing::warn!(path = %self.path.display(), "the audit log was deleted or replaced; opening a new one");
        self.reopen()?;
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| self.error(format!("cannot stat: {e}")))
    }

    /// `FILE.n`.
    fn numbered(&self, n: u32) -> PathBuf {
        retention::numbered(&self.path, n)
    }

    /// Rotates: decides which rotated files go ([`Plan::for_log`]); with a sealer, seals the
    /// set as the plan leaves it before anything moves; renames every rotated file `FILE.n`
    /// (n ≥ 1) to `FILE.n+1`, highest first, and `FILE` to `FILE.1`; opens a new `FILE`; then
    /// deletes what the plan says ([`AuditLog::expire`]).
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        let plan = Plan::for_log(&self.path, &self.rotation);
        let sealer = self.sealer.clone();
        let before = match &sealer {
            Some(s) => Some(lock(s)?.rotating(&self.head, plan.deleted_from())),
            None => None,
        };
        let shifted = self.shift_files(&plan);
        if let (Err(_), Some(s), Some(before)) = (&shifted, &sealer, before) {
            lock(s)?.rotation_failed(before);
        }
        shifted?;
        self.expire(&plan);
        Ok(())
    }

    /// The renames of a rotation, and a new `FILE`.
    fn shift_files(&mut self, plan: &Plan) -> Result<(), AuditError> {
        for n in &plan.renames {
            std::fs::rename(self.numbered(*n), self.numbered(n + 1))
                .map_err(|e| self.error(format!("cannot rotate: {e}")))?;
        }
        std::fs::rename(&self.path, self.numbered(1))
            .map_err(|e| self.error(format!("cannot rotate: {e}")))?;
        self.open_new_file()?;
        if let Some(dir) = self.path.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        tracing::info!(path = %self.path.display(), "audit log rotated");
        Ok(())
    }

    /// Deletes the rotated files `plan` says go (after its renames), oldest first.
    fn expire(&self, plan: &Plan) {
        for n in &plan.deletes {
            let file = self.numbered(*n);
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::error!(file = %file.display(), error = %e, "cannot delete an expired rotated audit log");
            }
        }
        let keep = self.rotation.max_backup_files.max(1);
        let beyond = plan.keeps.iter().filter(|n| **n > keep).count();
        if beyond > 0 {
            tracing::warn!(
                path = %self.path.display(),
                max_backup_files = keep,
                beyond,
                min_retention_days = self.rotation.min_age.as_secs() / 86400,
                "rotated audit logs beyond audit.max_backup_files are kept: they are younger than audit.min_retention_days"
            );
        }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the chain ends.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// Seals and appends `events` in order, durably (one write, one `fdatasync`), from the
    /// writer thread. On failure the file is cut back and the chain head does not move.
    pub fn append_batch(&mut self, events: &[&AuditEvent]) -> Result<(), AuditError> {
        self.append(events, true, WrittenBy::WriterThread)
    }

    /// Seals and appends `events` in order with one `write`, without waiting for the disk:
    /// once this returns they are in the kernel's hands (they survive the agent being killed,
    /// not a power loss) until the next [`AuditLog::sync`]. On failure the file is cut back
    /// and the chain head does not move.
    pub fn write_batch(
        &mut self,
        events: &[&AuditEvent],
        from: WrittenBy,
    ) -> Result<(), AuditError> {
        self.append(events, false, from)
    }

    /// Rotates the log if it has reached `max_file_size` (see [`WrittenBy::EventLoop`], which
    /// leaves that to the writer thread).
    pub fn rotate_if_due(&mut self) {
        if self.rotation.max_file_size == 0 {
            return;
        }
        let Ok(size) = self.file.metadata().map(|m| m.len()) else {
            return;
        };
        self.rotate_if_past(size);
    }

    /// Rotates the log if `size`, its length, has reached `max_file_size`.
    fn rotate_if_past(&mut self, size: u64) {
        if self.rotation.max_file_size > 0 && size >= self.rotation.max_file_size {
            // What was written is written already; a failed rotation is retried later.
            if let Err(e) = self.rotate() {
                tracing::error!(error = %e, "audit log rotation failed");
            }
        }
    }

    /// A handle to the open file, to `fdatasync` it without holding the log (see
    /// [`AuditLog::write_batch`]); it stays valid, and syncs the right data, even if the log
    /// moves to a new file meanwhile, because moving first syncs the old one.
    pub fn sync_handle(&self) -> Result<File, AuditError> {
        self.file
            .try_clone()
            .map_err(|e| self.error(format!("cannot duplicate the file handle: {e}")))
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.file
            .sync_data()
            .map_err(|e| self.error(format!("cannot sync: {e}")))?;
        self.synced = self.head.seq;
        Ok(())
    }

    /// `seq` of the last record known to be on disk: every record up to it was synced, by a
    /// durable batch, a sync, or before the log was opened. Records after it were written but
    /// may not have reached the disk yet (`audit.sync: periodic`).
    pub fn synced_through(&self) -> u64 {
        self.synced
    }

    /// Notes that a sync begun when the chain ended at `seq` (through a
    /// [`AuditLog::sync_handle`], without holding the log) succeeded.
    pub fn synced_up_to(&mut self, seq: u64) {
        self.synced = self.synced.max(seq.min(self.head.seq));
    }

    fn append(
        &mut self,
        events: &[&AuditEvent],
        durable: bool,
        from: WrittenBy,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut head = self.head.clone();
        let mut bytes = Vec::with_capacity(events.len() * 512);
        for ev in events {
            chain::seal_into(ev, &mut head, &mut bytes)
                .map_err(|e| self.error(format!("a record could not be encoded: {e}")))?;
        }
        let before = self.ensure_current()?;
        let written = self.file.write_all(&bytes).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Leave no half-record behind; the head stays where it was.
            let _ = self.file.set_len(before);
            return Err(self.error(format!("cannot write: {e}")));
        }
        self.head = head;
        if durable {
            self.synced = self.head.seq;
        }
        if from == WrittenBy::WriterThread {
            // The length is known: no second `fstat`.
            self.rotate_if_past(before + bytes.len() as u64);
        }
        Ok(())
    }

    fn error(&self, message: String) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            message,
        }
    }
}

fn read_tail(file: &mut File) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// The head of the newest rotated file, so a fresh file continues the chain.
fn previous_head(path: &Path) -> ChainHead {
    let mut backup = path.as_os_str().to_owned();
    backup.push(".1");
    let Ok(mut f) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(PathBuf::from(backup))
    else {
        return ChainHead::default();
    };
    read_tail(&mut f)
        .ok()
        .and_then(|t| chain::head_of(&String::from_utf8_lossy(&t)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::retention::backup_numbers;
    use crate::audit::{EventType, Outcome};
    use std::os::unix::fs::PermissionsExt;

    fn ev(kind: EventType) -> AuditEvent {
        AuditEvent::new(kind, Outcome::Success)
    }

    fn verify(path: &Path) -> chain::Verified {
        let files: Vec<(PathBuf, String)> = chain::rotation_set(path)
            .into_iter()
            .map(|p| {
                let t = std::fs::read_to_string(&p).unwrap();
                (p, t)
            })
            .collect();
        chain::verify(&files).unwrap()
    }

    #[test]
    fn appends_a_chain_that_continues_across_opens_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let mut log = AuditLog::open(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStart), &ev(EventType::PolicyReload)])
            .unwrap();
        drop(log);
        let mut log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head().seq, 2);
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        let v = verify(&path);
        assert_eq!((v.records, v.from_genesis), (3, true));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o750
        );
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStart)]).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"type\":\"capab").unwrap();
        drop(f);
        let mut log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head().seq, 1);
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        assert_eq!(verify(&path).records, 2);
    }

    #[test]
    fn a_new_file_continues_the_rotated_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStart), &ev(EventType::AgentStop)])
            .unwrap();
        drop(log);
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        let mut log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head().seq, 2);
        log.append_batch(&[&ev(EventType::AgentStart)]).unwrap();
        let v = verify(&path);
        assert_eq!((v.records, v.from_genesis), (3, true));
    }

    #[test]
    fn rotates_by_size_keeping_the_chain_and_n_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open_with(
            &path,
            Rotation {
                max_file_size: 1000,
                max_backup_files: 2,
                min_age: std::time::Duration::ZERO,
            },
        )
        .unwrap();
        for _ in 0..20 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
        }
        assert!(dir.path().join("audit.log.2").exists());
        assert!(
            !dir.path().join("audit.log.3").exists(),
            "only two backups are kept"
        );
        let v = verify(&path);
        assert!(!v.from_genesis, "the oldest records were rotated away");
        assert_eq!(v.head.seq, 20);
    }

    #[test]
    fn rotated_files_younger_than_the_minimum_age_are_kept_beyond_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotation = Rotation {
            max_file_size: 1000,
            max_backup_files: 2,
            min_age: std::time::Duration::from_secs(86400),
        };
        let mut log = AuditLog::open_with(&path, rotation).unwrap();
        for _ in 0..40 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
        }
        let backups = backup_numbers(&path);
        assert!(backups.len() > 2, "kept past the count: {backups:?}");
        let v = verify(&path);
        assert!(v.from_genesis, "nothing deleted");
        assert_eq!(v.records, 40);
        // Files whose last write is two days old go, oldest first, down to the count; the
        // young ones beyond it stay, and no gap is left.
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
        for n in backups.iter().filter(|n| **n >= 4) {
            let f = File::options().append(true).open(log.numbered(*n)).unwrap();
            f.set_modified(two_days_ago).unwrap();
        }
        // Also a file the agent does not number (`FILE.0`, a manual move): never touched.
        std::fs::write(dir.path().join("audit.log.0"), "").unwrap();
        let mut head = log.head().seq;
        while backup_numbers(&path) == backups {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
            head += 1;
        }
        assert_eq!(backup_numbers(&path), vec![4, 3, 2, 1]);
        assert!(dir.path().join("audit.log.0").exists());
        std::fs::remove_file(dir.path().join("audit.log.0")).unwrap();
        let v = verify(&path);
        assert!(!v.from_genesis);
        assert_eq!(v.head.seq, head);
    }

    #[test]
    fn a_deleted_or_replaced_file_is_noticed_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::open(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStart)]).unwrap();
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        // Renamed away: noticed by the next lookup of the path (at most PATH_CHECK_EVERY).
        log.path_checked -= PATH_CHECK_EVERY;
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        assert!(path.exists(), "a new file was opened");
        assert_eq!(verify(&path).records, 2, "and the chain continues into it");
        // Deleted: noticed at once, through the link count.
        std::fs::remove_file(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        // Deleted and replaced by another file: the link count notices it too, and the file
        // at the path is opened, continuing the chain.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(chain::head_of(&text).unwrap().seq, 4, "the chain goes on");
    }

    #[test]
    fn writes_notice_a_deletion_at_once_and_a_rename_by_the_next_lookup() {
        for durable in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.log");
            let rotated = dir.path().join("audit.log.1");
            let mut log = AuditLog::open(&path).unwrap();
            let write = |log: &mut AuditLog, kind| {
                if durable {
                    log.append_batch(&[&ev(kind)]).unwrap()
                } else {
                    log.write_batch(&[&ev(kind)], WrittenBy::EventLoop).unwrap()
                }
            };
            write(&mut log, EventType::AgentStart);
            log.sync().unwrap();
            // Renamed away: writes go on into the renamed file, on the chain...
            std::fs::rename(&path, &rotated).unwrap();
            write(&mut log, EventType::CapabilityValidation);
            assert!(!path.exists(), "no lookup yet");
            assert_eq!(
                std::fs::read_to_string(&rotated).unwrap().lines().count(),
                2
            );
            // ...until the path is looked up, at most PATH_CHECK_EVERY later.
            log.path_checked -= PATH_CHECK_EVERY;
            write(&mut log, EventType::CapabilityRequest);
            assert!(path.exists(), "a new file was opened");
            // Deleted: noticed by the very next write, through the link count.
            std::fs::remove_file(&path).unwrap();
            write(&mut log, EventType::AgentStop);
            assert!(path.exists(), "a deletion is noticed at once");
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), 1);
            assert_eq!(chain::head_of(&text).unwrap().seq, 4, "the chain goes on");
            log.sync().unwrap();
            let files: Vec<(PathBuf, String)> = [&rotated, &path]
                .iter()
                .map(|p| ((*p).clone(), std::fs::read_to_string(p).unwrap()))
                .collect();
            // The deleted file's record is gone with it; the rest verifies in two parts.
            assert_eq!(chain::verify(&files[..1]).unwrap().records, 2);
        }
    }

    #[test]
    fn the_event_loop_never_rotates_the_writer_thread_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotation = Rotation {
            max_file_size: 1000,
            max_backup_files: 2,
            min_age: std::time::Duration::ZERO,
        };
        let mut log = AuditLog::open_with(&path, rotation).unwrap();
        for _ in 0..10 {
            log.write_batch(
                &[&ev(EventType::CapabilityValidation)],
                WrittenBy::EventLoop,
            )
            .unwrap();
        }
        assert!(
            !dir.path().join("audit.log.1").exists(),
            "rotating syncs: not on the event loop"
        );
        log.rotate_if_due();
        assert!(dir.path().join("audit.log.1").exists());
        log.write_batch(&[&ev(EventType::AgentStop)], WrittenBy::WriterThread)
            .unwrap();
        let v = verify(&path);
        assert_eq!((v.records, v.from_genesis), (11, true));
    }

    fn seals_of(path: &Path) -> Vec<seal::Seal> {
        let key = crate::capability::Signer::from_seed([3; 32]).public_key();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| seal::Seal::parse(l, &key).unwrap())
            .collect()
    }

    fn sealer(seals: &Path, log: &Path, rotates: bool) -> Sealer {
        let signer = std::sync::Arc::new(crate::capability::Signer::from_seed([3; 32]));
        Sealer::open(seals, log, signer, rotates).unwrap()
    }

    #[test]
    fn rotation_is_sealed_before_it_deletes_and_a_cut_log_keeps_its_gap() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seals) = (
            dir.path().join("logs/audit.log"),
            dir.path().join("state/seals"),
        );
        let rotation = Rotation {
            max_file_size: 1000,
            max_backup_files: 2,
            min_age: std::time::Duration::ZERO,
        };
        let mut log = AuditLog::open_with(&path, rotation).unwrap();
        let shared = log.attach_sealer(sealer(&seals, &path, true)).unwrap();
        for _ in 0..20 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
        }
        let v = verify(&path);
        let all = seals_of(&seals);
        let rotations: Vec<&seal::Seal> = all
            .iter()
            .filter(|s| s.reason == SealReason::Rotate)
            .collect();
        assert!(rotations.len() >= 3, "{all:?}");
        let last = rotations.last().unwrap();
        assert_eq!(
            last.kept_from(),
            v.first_seq.unwrap(),
            "the last rotation sealed exactly what it kept"
        );
        assert_eq!(*last.files.last().unwrap(), last.seq + 1);
        // The interval seal: the head made durable, then sealed without the log held.
        let (head, file, interval) = log.durable_head().unwrap();
        file.sync_data().unwrap();
        interval
            .unwrap()
            .lock()
            .unwrap()
            .seal(&head, SealReason::Interval)
            .unwrap();
        assert_eq!(seals_of(&seals).last().unwrap().seq, 20);
        // A deleted live file: the new one is counted, and said at the next seal.
        std::fs::remove_file(&path).unwrap();
        log.append_batch(&[&ev(EventType::AgentStop)]).unwrap();
        shared
            .lock()
            .unwrap()
            .seal(log.head(), SealReason::Interval)
            .unwrap();
        let reopen = seals_of(&seals).pop().unwrap();
        assert_eq!(
            (reopen.reason, *reopen.files.last().unwrap()),
            (SealReason::Reopen, 21)
        );
        drop((log, shared));

        // Cut while nobody writes: at the next open the chain goes on from the seal (seq 21),
        // so the records cut off leave a gap the chain itself shows.
        std::fs::write(&path, "").unwrap();
        let mut log = AuditLog::open_with(&path, rotation).unwrap();
        assert_eq!(log.head().seq, 20, "from audit.log.1");
        log.attach_sealer(sealer(&seals, &path, true)).unwrap();
        assert_eq!(log.head().seq, 21, "the sealed head");
        log.append_batch(&[&ev(EventType::AgentStart)]).unwrap();
        let files: Vec<(PathBuf, String)> = chain::rotation_set(&path)
            .into_iter()
            .map(|p| {
                let t = std::fs::read_to_string(&p).unwrap();
                (p, t)
            })
            .collect();
        let broken = chain::verify(&files).unwrap_err();
        assert!(broken.reason.contains("record 21 is missing"), "{broken}");
    }

    /// The first seq of each file of the set on disk, oldest first; for the live file, while
    /// it is empty, the seq its first record will have.
    fn firsts_on_disk(log: &AuditLog) -> Vec<u64> {
        let mut set = chain::rotation_set(log.path());
        set.pop();
        let first = |p: &Path| File::open(p).ok().and_then(|f| seal::first_seq(&f));
        let mut out: Vec<u64> = set.iter().filter_map(|p| first(p)).collect();
        out.push(first(log.path()).unwrap_or(log.head().seq + 1));
        out
    }

    #[test]
    fn each_rotation_seals_exactly_the_files_it_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let (path, seals) = (dir.path().join("l/audit.log"), dir.path().join("s/seals"));
        let rotation = Rotation {
            max_file_size: 1000,
            max_backup_files: 2,
            min_age: std::time::Duration::from_secs(86400),
        };
        let mut log = AuditLog::open_with(&path, rotation).unwrap();
        log.attach_sealer(sealer(&seals, &path, true)).unwrap();
        let mut rotations = 0;
        // Young files are all kept, past the count, and all sealed as kept.
        while rotations < 6 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
            let last = seals_of(&seals).pop().unwrap();
            if last.reason == SealReason::Rotate && last.seq == log.head().seq {
                rotations += 1;
                assert_eq!(last.files, firsts_on_disk(&log), "rotation {rotations}");
            }
        }
        assert_eq!(backup_numbers(&path).len(), 6);
        // The oldest turn two days old: the next rotation deletes those beyond the count, down
        // to the first young one, and seals the rest.
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
        for n in [6, 5, 4, 2] {
            let f = File::options().append(true).open(log.numbered(n)).unwrap();
            f.set_modified(two_days_ago).unwrap();
        }
        while backup_numbers(&path).len() == 6 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
        }
        assert_eq!(
            backup_numbers(&path),
            vec![4, 3, 2, 1],
            "FILE.3, young, stops it"
        );
        let last = seals_of(&seals).pop().unwrap();
        assert_eq!(last.reason, SealReason::Rotate);
        assert_eq!(last.files, firsts_on_disk(&log));
        assert_eq!(last.kept_from(), verify(&path).first_seq.unwrap());
        // A file deleted by hand is not one the agent deleted: it stays sealed as kept (the
        // next rotation deletes nothing once the old FILE.3 is young again).
        let gone = firsts_on_disk(&log)[0];
        let f = File::options().append(true).open(log.numbered(3)).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
        std::fs::remove_file(log.numbered(4)).unwrap();
        while backup_numbers(&path).len() == 3 {
            log.append_batch(&[&ev(EventType::CapabilityRequest)])
                .unwrap();
        }
        assert_eq!(backup_numbers(&path), vec![4, 3, 2, 1]);
        assert_eq!(seals_of(&seals).pop().unwrap().kept_from(), gone);
    }

    #[test]
    fn an_unreadable_last_record_refuses_to_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "not json\n").unwrap();
        assert!(
            AuditLog::open(&path)
                .unwrap_err()
                .to_string()
                .contains("chain")
        );
    }
}
