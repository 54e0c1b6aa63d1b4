//! Appending records to the audit log file.
//!
//! The file is opened in append mode, created 0640 (its directory 0750), and each record is
//! written with a single `write` of the whole line, so concurrent readers never see half a
//! record from a healthy writer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::event::AuditEvent;

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Opening or writing the file failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    file: File,
}

impl AuditFile {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<AuditFile, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(io)?;
        Ok(AuditFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn append(&mut self, event: &AuditEvent) -> Result<(), AuditError> {
        self.file
            .write_all(&event.to_line())
            .map_err(|source| AuditError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes file data to disk.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| AuditError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventType, Outcome};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_lines_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let mut f = AuditFile::open(&path).unwrap();
        f.append(&AuditEvent::new(EventType::AgentStart, Outcome::Success))
            .unwrap();
        drop(f);
        let mut f = AuditFile::open(&path).unwrap();
        f.append(&AuditEvent::new(EventType::AgentStop, Outcome::Success))
            .unwrap();
        f.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let types: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(types, vec!["agent_start", "agent_stop"]);
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
}
