//! The AuditWriter actor: owns the audit log file and appends records in arrival order.
//!
//! Each [`Append`] is answered after its line is written, so a session can hold a response until
//! its decision is on record. With auditing disabled, appends succeed without writing.

use actix::prelude::*;

use crate::audit::{AuditError, AuditEvent, AuditFile};

/// Appends one record; answers when it is written.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Append(pub AuditEvent);

/// Flushes the file to disk (at shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// The audit writer.
pub struct AuditWriter {
    file: Option<AuditFile>,
}

impl AuditWriter {
    /// A writer for an open file, or a no-op writer when auditing is off.
    pub fn new(file: Option<AuditFile>) -> Self {
        AuditWriter { file }
    }

    /// Opens `path` when `enabled`.
    pub fn open(enabled: bool, path: &std::path::Path) -> Result<Self, AuditError> {
        Ok(AuditWriter::new(if enabled {
            Some(AuditFile::open(path)?)
        } else {
            None
        }))
    }
}

impl Actor for AuditWriter {
    type Context = Context<Self>;
}

impl Handler<Append> for AuditWriter {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) -> Self::Result {
        match &mut self.file {
            Some(f) => f.append(&msg.0).map_err(|e| {
                tracing::error!(error = %e, "audit record could not be written");
                e.to_string()
            }),
            None => Ok(()),
        }
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = Result<(), String>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        match &mut self.file {
            Some(f) => f.sync().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}
