//! The AuditWriter actor: the front of a writer thread that owns the audit log.
//!
//! Each [`Append`] is queued to the thread and answered only once its record is on disk. The
//! thread takes everything queued since its last write as one batch — one write, one
//! `fdatasync` ([`AuditLog::append_batch`]) — so concurrent requests share a sync: durability
//! costs each request a little latency, not the agent its throughput. With auditing disabled,
//! appends succeed without writing. Records are sealed in the order they are queued.

use std::sync::mpsc;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::audit::{AuditError, AuditEvent, AuditLog};

/// Most records written in one batch.
const MAX_BATCH: usize = 4096;

/// Appends one record; answers when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Append(pub AuditEvent);

/// Answers once every record queued before it is durable (used at shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// A record (or, for a flush, none) and who waits for it.
struct Job {
    event: Option<AuditEvent>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The audit writer.
pub struct AuditWriter {
    jobs: Option<mpsc::Sender<Job>>,
}

impl AuditWriter {
    /// A writer for `path` when `enabled` (opening the log and starting its thread), else a
    /// writer that records nothing.
    pub fn open(enabled: bool, path: &std::path::Path) -> Result<Self, AuditError> {
        if !enabled {
            return Ok(AuditWriter { jobs: None });
        }
        let log = AuditLog::open(path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(log, rx))
            .map_err(|e| AuditError::Io {
                path: path.to_path_buf(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(AuditWriter { jobs: Some(tx) })
    }

    fn submit(&self, event: Option<AuditEvent>) -> ResponseFuture<Result<(), String>> {
        let Some(jobs) = &self.jobs else {
            return Box::pin(async { Ok(()) });
        };
        let (done, wait) = oneshot::channel();
        if jobs.send(Job { event, done }).is_err() {
            return Box::pin(async { Err("the audit writer has stopped".to_string()) });
        }
        Box::pin(async move {
            wait.await
                .unwrap_or_else(|_| Err("the audit writer has stopped".to_string()))
        })
    }
}

/// The writer thread: batches whatever is queued, writes it durably, answers everyone.
fn write_loop(mut log: AuditLog, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let events: Vec<&AuditEvent> = batch.iter().filter_map(|j| j.event.as_ref()).collect();
        let result = log.append_batch(&events).map_err(|e| {
            tracing::error!(error = %e, records = events.len(), "audit records could not be written");
            e.to_string()
        });
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

impl Actor for AuditWriter {
    type Context = Context<Self>;
}

impl Handler<Append> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) -> Self::Result {
        self.submit(Some(msg.0))
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        self.submit(None)
    }
}
