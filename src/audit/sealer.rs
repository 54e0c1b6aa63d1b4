//! The agent's side of the seals ([`super::seal`]): the [`Sealer`] writes one at start, every
//! `audit.seal_interval_seconds` when the chain moved, before a rotation deletes the oldest
//! file, after the log was moved away and a new file opened (at the next interval), and at stop
//! — each only for records already on disk, so after a crash the seals may be behind the log,
//! never ahead of it. Each goes to the seal file (`audit.seal_file`: outside the log directory,
//! appended to, 0600, opened with `O_NOFOLLOW`, compacted past 8 MiB) and to the
//! journal ([`crate::oplog::seal`]).
//!
//! At start the sealer reads its last seal of this log: if the log ends before it, or the
//! record at its seq is another one, the log was cut or replaced while the agent was down; that
//! is logged as an error and the chain goes on from the sealed record, so that the gap stays in
//! the chain itself.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::chain::ChainHead;
use super::seal::{MAX_FILES, Seal, SealReason, VERSION, log_identity};
use crate::capability::Signer;

/// The seal file is compacted when it grows past this many bytes.
const COMPACT_AT: u64 = 8 << 20;

/// Interval seals kept by a compaction (the newest).
const KEEP_INTERVAL: usize = 1024;

/// Other seals (start, stop, rotate, reopen) kept by a compaction (the newest).
const KEEP_OTHER: usize = 16384;

/// Most bytes of the seal file read at start, from its end.
const READ_AT_START: u64 = 32 << 20;

/// `dir` with symlinks and `..` resolved as far as it exists, the rest appended as given.
fn resolve(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut base = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                base = parent;
            }
            _ => return absolute,
        }
    }
}

/// Why the seal file cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit seal file {path}: {message}")]
pub struct SealError {
    /// The seal file.
    pub path: PathBuf,
    /// What is wrong, and the fix when there is one.
    pub message: String,
}

/// The agent's side: writes seals of its log.
pub struct Sealer {
    signer: Arc<Signer>,
    path: PathBuf,
    file: File,
    log: String,
    start: String,
    n: u64,
    /// First seq of each file of the set, oldest first, the live file last.
    files: VecDeque<u64>,
    /// Whether the agent rotates the log itself. If not, logrotate moves the files, and the
    /// agent vouches only for the live one.
    rotates: bool,
    /// The last seal of this log, written now or found at open.
    last: Option<Seal>,
    /// A new file was opened since the last seal.
    reopened: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.path.display())
    }
}

impl Sealer {
    /// Opens (creating 0600, its directory 0700) the seal file at `path` for the log `log`,
    /// which the agent rotates itself when `rotates` (else logrotate's job; which rotated files
    /// the agent keeps is decided at each rotation, see [`Sealer::rotating`]).
    /// Refuses a seal file in the log's directory, and (through [`crate::trust::open`]) a
    /// symlink or a file not the agent's or that others can read or write. (A directory below
    /// the log's, like the per-user layout's `~/.aether-vault/state`, is only as safe as the
    /// log's directory.)
    pub fn open(
        path: &Path,
        log: &Path,
        signer: Arc<Signer>,
        rotates: bool,
    ) -> Result<Sealer, SealError> {
        let fail = |message: String| SealError {
            path: path.to_path_buf(),
            message,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let log_dir = log
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let logs = resolve(log_dir);
        if resolve(dir) == logs {
            return Err(fail(format!(
                "it is in the audit log's directory {}, where whoever can change the log could change it too; set audit.seal_file outside it",
                logs.display()
            )));
        }
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        // The shared rule for the agent's files: never through a symbolic link, a regular file
        // of the agent's user that no one else may read or write.
        let mut file = crate::trust::open(
            path,
            "audit seal file",
            OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .mode(0o600),
            crate::trust::Owner::agent(nix::unistd::geteuid().as_raw()),
            crate::trust::Secrecy::Private,
        )
        .map_err(|e| fail(e.to_string()))?;
        let log = log_identity(log);
        let key = signer.public_key();
        let tail =
            read_end(&mut file, READ_AT_START).map_err(|e| fail(format!("cannot read: {e}")))?;
        // Other logs' seals (an earlier audit.log_file) are passed over before any signature
        // is checked.
        let mine = format!("\"log\":{}", Value::from(log.as_str()));
        let last = String::from_utf8_lossy(&tail)
            .lines()
            .rev()
            .filter(|l| l.contains(&mine))
            .filter_map(|l| Seal::parse(l, &key).ok())
            .find(|s| s.log == log);
        if !tail.is_empty() && !tail.ends_with(b"\n") {
            // A seal torn by a crash: end its line, so the next seal starts a line of its own.
            file.write_all(b"\n")
                .and_then(|()| file.sync_data())
                .map_err(|e| fail(format!("cannot write: {e}")))?;
        }
        let mut start = [0u8; 16];
        getrandom::fill(&mut start).map_err(|e| fail(format!("no randomness: {e}")))?;
        Ok(Sealer {
            signer,
            path: path.to_path_buf(),
            file,
            log,
            start: hex::encode(start),
            n: 0,
            files: VecDeque::new(),
            rotates,
            last,
            reopened: false,
        })
    }

    /// The last seal of this log (found at open, or written since).
    pub fn last(&self) -> Option<&Seal> {
        self.last.as_ref()
    }

    /// Takes up the log found at start: `head` is where its chain ends on disk, `live_first`
    /// the seq of the live file's first record (`None`: it is empty), `on_disk` the first seqs
    /// of the files on disk (asked for only when there is no earlier seal of this log). Returns
    /// the sealed head to go on from when the log on disk ends before it or differs at it.
    pub fn begin(
        &mut self,
        head: &ChainHead,
        live_first: Option<u64>,
        on_disk: impl FnOnce() -> Vec<u64>,
    ) -> Option<ChainHead> {
        let adopted = self.last.as_ref().and_then(|l| {
            let sealed = ChainHead {
                seq: l.seq,
                hash: l.hash.clone(),
            };
            if l.seq > head.seq {
                tracing::error!(
                    log = %self.log, sealed_seq = l.seq, sealed_at = %l.time, log_seq = head.seq,
                    "the audit log ends at seq {} but seq {} was sealed at {}: records {}–{} are missing (the log was cut or replaced while the agent was down); the chain goes on from the sealed record",
                    head.seq, l.seq, l.time, head.seq + 1, l.seq
                );
                Some(sealed)
            } else if l.seq == head.seq && l.hash != head.hash {
                tracing::error!(
                    log = %self.log, sealed_seq = l.seq, sealed_at = %l.time,
                    "the audit log's record {} is not the one sealed at {} (the log was replaced or rewritten while the agent was down); the chain goes on from the sealed record",
                    l.seq, l.time
                );
                Some(sealed)
            } else {
                None
            }
        });
        let now = adopted.as_ref().unwrap_or(head);
        let live = live_first.unwrap_or(now.seq + 1);
        self.files = match &self.last {
            Some(l) => l.files.iter().copied().collect(),
            None => on_disk().into_iter().collect(),
        };
        // The live file is the last one; files the seal counted after it (a rotation sealed
        // but not done before a crash) do not exist.
        while self.files.back().is_some_and(|f| *f > live) {
            self.files.pop_back();
        }
        if self.files.back() != Some(&live) {
            self.files.push_back(live);
        }
        self.trim();
        adopted
    }

    /// Drops the oldest entries past what a seal holds: with logrotate all but the live file,
    /// else all but [`MAX_FILES`] (the agent's own deletions are dropped by
    /// [`Sealer::rotating`]; a file opened anew in between stays counted until a rotation
    /// deletes the files before it).
    fn trim(&mut self) {
        let most = if self.rotates { MAX_FILES } else { 1 };
        while self.files.len() > most {
            self.files.pop_front();
        }
    }

    /// The log is about to rotate, `head` is on disk: seals the set as it will be — a new live
    /// file from `head.seq + 1`, and without the files the rotation deletes — before anything
    /// is renamed or deleted. `deleted_from` is the rotation's decision
    /// ([`super::retention::Plan::deleted_from`]): the lowest number, after the renames, of
    /// the files it deletes, every file numbered above it going too (`None`: nothing is
    /// deleted). Entries are numbered from the back as the files are (the new live file 0,
    /// `FILE.1` 1…), the renames keeping any gap, so exactly the entries of the deleted files
    /// and of files already gone before them are dropped: the agent forgets only what it deletes
    /// itself, and a file deleted by hand stays sealed as kept, to be reported missing.
    /// Returns the set before, for [`Sealer::rotation_failed`].
    pub fn rotating(&mut self, head: &ChainHead, deleted_from: Option<u32>) -> Vec<u64> {
        let before: Vec<u64> = self.files.iter().copied().collect();
        self.files.push_back(head.seq + 1);
        if let Some(from) = deleted_from {
            while self.files.len() > from as usize {
                self.files.pop_front();
            }
        }
        self.trim();
        if let Err(e) = self.seal(head, SealReason::Rotate) {
            tracing::error!(error = %e, "the audit log could not be sealed before rotating");
        }
        before
    }

    /// The rotation did not happen: the set is as before.
    pub fn rotation_failed(&mut self, before: Vec<u64>) {
        self.files = before.into_iter().collect();
    }

    /// A new live file was opened (logrotate moved the log, or it was deleted), starting at
    /// `first`; it is sealed at the next interval.
    pub fn new_file(&mut self, first: u64) {
        if self.files.back() != Some(&first) {
            self.files.push_back(first);
        }
        self.trim();
        self.reopened = true;
    }

    /// Seals `head`, which must be on disk. An interval seal is skipped when nothing changed
    /// since the last seal.
    pub fn seal(&mut self, head: &ChainHead, reason: SealReason) -> Result<(), SealError> {
        let unchanged = self.last.as_ref().is_some_and(|l| {
            l.seq == head.seq && l.hash == head.hash && l.files.iter().eq(self.files.iter())
        });
        if reason == SealReason::Interval && unchanged && !self.reopened {
            return Ok(());
        }
        let reason = if reason == SealReason::Interval && self.reopened {
            SealReason::Reopen
        } else {
            reason
        };
        let seal = Seal {
            files: self.files.iter().copied().collect(),
            hash: head.hash.clone(),
            log: self.log.clone(),
            n: self.n,
            reason,
            seq: head.seq,
            start: self.start.clone(),
            time: crate::timefmt::now_rfc3339(),
            v: VERSION,
        };
        self.n += 1;
        let (line, signature) = seal.signed_line(&self.signer);
        let written = self.append(line.as_bytes());
        crate::oplog::seal(&seal, line.trim_end(), &signature);
        // A seal the file did not take is written again at the next interval.
        written?;
        self.last = Some(seal);
        self.reopened = false;
        if self.file.metadata().is_ok_and(|m| m.len() > COMPACT_AT) {
            self.compact()?;
        }
        Ok(())
    }

    fn error(&self, message: String) -> SealError {
        SealError {
            path: self.path.clone(),
            message,
        }
    }

    /// Appends one line durably; on failure, cuts the file back.
    fn append(&mut self, line: &[u8]) -> Result<(), SealError> {
        let before = self
            .file
            .metadata()
            .map_err(|e| self.error(format!("cannot stat: {e}")))?
            .len();
        let written = self
            .file
            .write_all(line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(before);
            return Err(self.error(format!("cannot write: {e}")));
        }
        Ok(())
    }

    /// Rewrites the seal file with its newest seals only ([`KEEP_INTERVAL`] interval seals,
    /// [`KEEP_OTHER`] others), atomically: a new file beside it, synced, renamed over it.
    fn compact(&mut self) -> Result<(), SealError> {
        let text = read_end(&mut self.file, READ_AT_START)
            .map_err(|e| self.error(format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&text);
        let kept = select_for_compaction(text.lines());
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| self.error(format!("cannot compact: {e}")))?;
        let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
        out.write_all(body.as_bytes())
            .and_then(|()| out.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| self.error(format!("cannot compact: {e}")))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|e| self.error(format!("cannot reopen after compacting: {e}")))?;
        Ok(())
    }
}

/// The lines a compaction keeps, in file order: the newest [`KEEP_INTERVAL`] interval seals
/// and the newest [`KEEP_OTHER`] others; lines that are not seals are dropped.
fn select_for_compaction<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> Vec<&'a str> {
    let (mut interval, mut other) = (0, 0);
    let mut kept: Vec<&str> = Vec::new();
    for line in lines.rev() {
        let reason = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string));
        let slot = match reason.as_deref() {
            None => continue,
            Some("interval") => &mut interval,
            Some(_) => &mut other,
        };
        let limit = if reason.as_deref() == Some("interval") {
            KEEP_INTERVAL
        } else {
            KEEP_OTHER
        };
        if *slot < limit {
            *slot += 1;
            kept.push(line);
        }
    }
    kept.reverse();
    kept
}

/// The last `most` bytes of `file`.
fn read_end(file: &mut File, most: u64) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(most);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut buf)?;
    if start > 0 {
        // Start at a whole line.
        let cut = buf
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        buf.drain(..cut);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::GENESIS;
    use crate::audit::seal::DEFAULT_FILE_NAME;
    use std::os::unix::fs::PermissionsExt;

    fn signer() -> Arc<Signer> {
        Arc::new(Signer::from_seed([9; 32]))
    }

    fn head(seq: u64) -> ChainHead {
        ChainHead {
            seq,
            hash: if seq == 0 {
                GENESIS.into()
            } else {
                format!("{seq:064x}")
            },
        }
    }

    fn lines(path: &Path) -> Vec<Seal> {
        let key = signer().public_key();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| Seal::parse(l, &key).ok())
            .collect()
    }

    #[test]
    fn the_sealer_seals_on_change_and_picks_up_its_last_seal() {
        let dir = tempfile::tempdir().unwrap();
        let (state, logs) = (dir.path().join("state"), dir.path().join("logs"));
        std::fs::create_dir_all(&logs).unwrap();
        let (path, log) = (state.join(DEFAULT_FILE_NAME), logs.join("audit.log"));
        let mut s = Sealer::open(&path, &log, signer(), true).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(s.begin(&head(0), None, Vec::new).is_none());
        s.seal(&head(0), SealReason::Start).unwrap();
        s.seal(&head(0), SealReason::Interval).unwrap();
        assert_eq!(lines(&path).len(), 1, "nothing changed: no interval seal");
        s.seal(&head(5), SealReason::Interval).unwrap();
        // Rotations: the set is sealed as it will be; the third deletes FILE.3 (its number
        // after the renames), the oldest.
        for (i, (at, deleted_from)) in [(10u64, None), (20, None), (30, Some(3))]
            .into_iter()
            .enumerate()
        {
            s.rotating(&head(at), deleted_from);
            assert_eq!(
                lines(&path).last().unwrap().reason,
                SealReason::Rotate,
                "{i}"
            );
        }
        let all = lines(&path);
        assert_eq!(
            all.iter().map(|s| s.files.clone()).collect::<Vec<_>>(),
            vec![
                vec![1],
                vec![1],
                vec![1, 11],
                vec![1, 11, 21],
                vec![11, 21, 31]
            ]
        );
        assert_eq!(all.last().unwrap().kept_from(), 11);
        assert_eq!(
            all.iter().map(|s| s.n).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        let undo = s.rotating(&head(35), Some(2));
        s.rotation_failed(undo);
        s.new_file(36);
        s.seal(&head(36), SealReason::Interval).unwrap();
        let last = lines(&path).pop().unwrap();
        assert_eq!(
            (last.reason, last.files.clone()),
            (SealReason::Reopen, vec![11, 21, 31, 36])
        );
        drop(s);
        // A new start picks the set up from the last seal, not from the disk.
        let mut s = Sealer::open(&path, &log, signer(), true).unwrap();
        assert_eq!(s.last().unwrap().seq, 36);
        assert!(
            s.begin(&head(40), Some(36), || panic!("not asked"))
                .is_none()
        );
        s.seal(&head(40), SealReason::Start).unwrap();
        assert_eq!(lines(&path).pop().unwrap().files, vec![11, 21, 31, 36]);
        s.rotating(&head(41), Some(3));
        assert_eq!(lines(&path).pop().unwrap().files, vec![31, 36, 42]);
        // Nothing deleted (the files are younger than audit.min_retention_days): every file
        // stays sealed as kept, past any count.
        s.rotating(&head(50), None);
        s.rotating(&head(60), None);
        assert_eq!(lines(&path).pop().unwrap().files, vec![31, 36, 42, 51, 61]);
        assert_ne!(
            lines(&path).pop().unwrap().start,
            last.start,
            "a new start id"
        );
    }

    #[test]
    fn a_log_behind_its_last_seal_or_different_at_it_goes_on_from_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let (path, log) = (dir.path().join("s/seals"), dir.path().join("l/audit.log"));
        std::fs::create_dir_all(dir.path().join("l")).unwrap();
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        s.begin(&head(0), None, Vec::new);
        s.seal(&head(50), SealReason::Stop).unwrap();
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        assert_eq!(s.begin(&head(20), None, Vec::new), Some(head(50)), "cut");
        assert_eq!(s.files, [51], "an emptied live file starts after the seal");
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        let other = ChainHead {
            seq: 50,
            hash: "f".repeat(64),
        };
        assert_eq!(
            s.begin(&other, Some(1), Vec::new),
            Some(head(50)),
            "replaced"
        );
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        assert_eq!(
            s.begin(&head(60), Some(1), Vec::new),
            None,
            "ahead: a crash"
        );
        assert_eq!(
            s.files,
            [1],
            "logrotate mode vouches for the live file only"
        );
        // Another log's seals are not this one's.
        let mut s = Sealer::open(&path, &dir.path().join("l/other.log"), signer(), false).unwrap();
        assert!(s.last().is_none());
        assert_eq!(s.begin(&head(3), Some(1), || vec![1]), None);
    }

    #[test]
    fn a_torn_seal_is_ended_and_refused_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/audit.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let path = dir.path().join("state/seals");
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        s.begin(&head(0), None, Vec::new);
        s.seal(&head(3), SealReason::Interval).unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"files\":[1],\"ha").unwrap();
        drop(f);
        let mut s = Sealer::open(&path, &log, signer(), false).unwrap();
        assert_eq!(s.last().unwrap().seq, 3);
        s.begin(&head(3), Some(1), Vec::new);
        s.seal(&head(4), SealReason::Stop).unwrap();
        assert_eq!(lines(&path).len(), 2, "the seal after a torn one is whole");

        let beside = Sealer::open(&dir.path().join("logs/seals"), &log, signer(), false);
        assert!(
            beside
                .unwrap_err()
                .to_string()
                .contains("in the audit log's directory")
        );
        let renamed = Sealer::open(
            &dir.path().join("state/../logs/seals"),
            &log,
            signer(),
            false,
        );
        assert!(renamed.is_err(), "the same directory by another name");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let open = Sealer::open(&path, &log, signer(), false);
        assert!(open.unwrap_err().to_string().contains("chmod 600"));
        let link = dir.path().join("state/link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let open = Sealer::open(&link, &log, signer(), false);
        assert!(open.unwrap_err().to_string().contains("symbolic link"));
    }

    #[test]
    fn compaction_keeps_the_newest_seals_of_each_kind() {
        let mut text = Vec::new();
        for i in 0..(KEEP_INTERVAL + 10) {
            text.push(format!("{{\"reason\":\"interval\",\"seq\":{i}}}"));
            if i % 100 == 0 {
                text.push(format!("{{\"reason\":\"stop\",\"seq\":{i}}}"));
                text.push("torn{".to_string());
            }
        }
        let kept = select_for_compaction(text.iter().map(String::as_str));
        let interval = kept.iter().filter(|l| l.contains("interval")).count();
        assert_eq!(interval, KEEP_INTERVAL);
        assert_eq!(kept.iter().filter(|l| l.contains("stop")).count(), 11);
        assert!(kept[0].contains("\"stop\",\"seq\":0"), "old stops stay");
        assert!(
            kept.last()
                .unwrap()
                .contains(&format!("{}", KEEP_INTERVAL + 9))
        );
        assert!(!kept.iter().any(|l| l.starts_with("torn")));
    }
}
