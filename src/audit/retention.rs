//! Which rotated audit files a rotation keeps: one decision per rotation, taken before anything
//! moves, which the rotation carries out ([`super::file`]) and the sealer seals
//! ([`super::sealer::Sealer::rotating`]), so that the seal's `files` are by construction the
//! files left on disk.
//!
//! A rotation renames every rotated file `FILE.n` (n ≥ 1) to `FILE.n+1` and `FILE` to `FILE.1`.
//! After the renames, the files numbered beyond `max_backup_files` are deleted, the oldest
//! (highest number) first, but only once their last write (the file's mtime) is `min_age` old:
//! deletion stops at the first younger file (or one whose age cannot be read), so the set grows
//! past the count rather than lose a record younger than `min_age`, and no gap is left in the
//! chain. With a zero `min_age` everything beyond the count is deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// When the log rotates itself, and which rotated files it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rotation {
    /// Rotate past this many bytes; 0 = never.
    pub max_file_size: u64,
    /// Rotated files kept.
    pub max_backup_files: u32,
    /// A rotated file beyond `max_backup_files` is deleted only once its last write is this
    /// old; zero = at once.
    pub min_age: Duration,
}

/// `LOG.n`.
pub fn numbered(log: &Path, n: u32) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// The numbers n ≥ 1 of the rotated files `LOG.n` that exist, highest (oldest) first.
pub fn backup_numbers(log: &Path) -> Vec<u32> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(name)?
                .strip_prefix('.')?
                .parse()
                .ok()
        })
        .filter(|n| *n >= 1)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

/// How many of `rotated` — the rotated files as numbered after a rotation's renames, highest
/// first, each with the age of its last write (`None`: unknown) — the rotation deletes: the
/// leading ones numbered beyond `max_backup_files` (at least 1) and at least `min_age` old.
/// The rule itself, free of the file system.
pub fn expired(rotated: &[(u32, Option<Duration>)], rotation: &Rotation) -> usize {
    let keep = rotation.max_backup_files.max(1);
    rotated
        .iter()
        .take_while(|(n, age)| {
            *n > keep && (rotation.min_age.is_zero() || age.is_some_and(|a| a >= rotation.min_age))
        })
        .count()
}

/// What one rotation of a log does, decided before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rotated files renamed up by one, by their numbers before the rotation, highest
    /// first (the order the renames must go in).
    pub renames: Vec<u32>,
    /// The rotated files deleted after the renames, by their numbers after them, highest first.
    pub deletes: Vec<u32>,
    /// The rotated files kept, by their numbers after the renames, highest first; the last is
    /// 1 (the file that was live).
    pub keeps: Vec<u32>,
}

impl Plan {
    /// Decides the rotation of `log` from the rotated files on disk and their mtimes.
    pub fn for_log(log: &Path, rotation: &Rotation) -> Plan {
        // FILE.4294967295 cannot go up; it is left where it is, and never deleted.
        let renames: Vec<u32> = backup_numbers(log)
            .into_iter()
            .filter(|n| n.checked_add(1).is_some())
            .collect();
        let after: Vec<(u32, Option<Duration>)> = renames
            .iter()
            .map(|n| {
                let age = std::fs::metadata(numbered(log, *n))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                (n + 1, age)
            })
            .chain(std::iter::once((1, Some(Duration::ZERO))))
            .collect();
        let gone = expired(&after, rotation);
        Plan {
            renames,
            deletes: after[..gone].iter().map(|(n, _)| *n).collect(),
            keeps: after[gone..].iter().map(|(n, _)| *n).collect(),
        }
    }

    /// The lowest number (after the renames) the rotation deletes: that file and every one
    /// numbered above it are gone after the rotation. `None`: nothing is deleted.
    pub fn deleted_from(&self) -> Option<u32> {
        self.deletes.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn rotation(keep: u32, min_age: Duration) -> Rotation {
        Rotation {
            max_file_size: 1,
            max_backup_files: keep,
            min_age,
        }
    }

    #[test]
    fn beyond_the_count_goes_oldest_first_until_a_young_file() {
        let ages = |days: &[u64]| -> Vec<(u32, Option<Duration>)> {
            let n = days.len() as u32;
            days.iter()
                .enumerate()
                .map(|(i, d)| (n - i as u32, Some(DAY * *d as u32)))
                .collect()
        };
        // Numbers 6…1 after the renames, ages in days.
        let set = ages(&[9, 8, 1, 9, 0, 0]);
        assert_eq!(expired(&set, &rotation(2, Duration::ZERO)), 4, "by count");
        assert_eq!(
            expired(&set, &rotation(2, 7 * DAY)),
            2,
            "stops at the young .4"
        );
        assert_eq!(expired(&set, &rotation(2, 10 * DAY)), 0);
        assert_eq!(expired(&set, &rotation(6, Duration::ZERO)), 0);
        assert_eq!(
            expired(&set, &rotation(0, Duration::ZERO)),
            5,
            "at least one kept"
        );
        let unknown = vec![(3, None), (2, Some(9 * DAY)), (1, Some(Duration::ZERO))];
        assert_eq!(
            expired(&unknown, &rotation(1, DAY)),
            0,
            "an unknown age stays"
        );
        assert_eq!(expired(&unknown, &rotation(1, Duration::ZERO)), 2);
        assert_eq!(expired(&[], &rotation(1, Duration::ZERO)), 0);
    }

    #[test]
    fn the_plan_follows_the_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        for f in [
            "audit.log",
            "audit.log.1",
            "audit.log.2",
            "audit.log.3",
            "audit.log.0",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let old = std::time::SystemTime::now() - 3 * DAY;
        for n in [3, 2] {
            let f = std::fs::File::options()
                .append(true)
                .open(numbered(&log, n))
                .unwrap();
            f.set_modified(old).unwrap();
        }
        let p = Plan::for_log(&log, &rotation(1, 2 * DAY));
        assert_eq!(p.renames, vec![3, 2, 1], "FILE.0 is not the agent's");
        assert_eq!(p.deleted_from(), Some(3));
        assert_eq!((p.deletes, p.keeps), (vec![4, 3], vec![2, 1]));
        let p = Plan::for_log(&log, &rotation(1, 4 * DAY));
        assert_eq!(p.deleted_from(), None);
        assert_eq!((p.deletes, p.keeps), (vec![], vec![4, 3, 2, 1]));
        let p = Plan::for_log(&dir.path().join("none.log"), &rotation(1, Duration::ZERO));
        assert_eq!((p.renames, p.deletes, p.keeps), (vec![], vec![], vec![1]));
    }
}
