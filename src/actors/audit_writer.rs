//! The AuditWriter actor: the front of the audit log's group-commit writer thread
//! ([`crate::durable::Committer`]). Each [`Append`] is answered once its record is durable;
//! with auditing disabled, appends succeed without writing. Records are sealed into the hash
//! chain in the order they are queued.

use actix::prelude::*;

use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::durable::{Committer, Pending};

/// Appends one record; answers when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Append(pub AuditEvent);

/// Answers once every record queued before it is durable (used at shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// The audit writer.
pub struct AuditWriter {
    log: Option<Committer<AuditLog>>,
}

impl AuditWriter {
    /// A writer for `path` when `enabled` (opening the log and starting its thread), else a
    /// writer that records nothing.
    pub fn open(enabled: bool, path: &std::path::Path) -> Result<Self, AuditError> {
        if !enabled {
            return Ok(AuditWriter { log: None });
        }
        let log = AuditLog::open(path)?;
        let committer = Committer::start("audit-writer", log).map_err(|e| AuditError::Io {
            path: path.to_path_buf(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(AuditWriter {
            log: Some(committer),
        })
    }

    fn submit(&self, events: Vec<AuditEvent>) -> Pending {
        match &self.log {
            Some(c) => c.submit(events),
            None => Box::pin(async { Ok(()) }),
        }
    }
}

impl Actor for AuditWriter {
    type Context = Context<Self>;
}

impl Handler<Append> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) -> Self::Result {
        self.submit(vec![msg.0])
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        self.submit(Vec::new())
    }
}
