//! The AuditWriter actor: the front of the audit log's group-commit writer thread
//! ([`crate::durable::Committer`]). Each [`Append`] is answered once its record is durable;
//! with auditing disabled, appends succeed without writing. Records are sealed into the hash
//! chain in the order they are queued.
//!
//! It also keeps the log's health for `agent status`, and applies `audit.failure_action` when a
//! write fails: `deny` lets the caller refuse the request (and the next write retries), `halt`
//! exits the process non-zero so that systemd restarts it.
//!
//! It answers a health [`Ping`] once its writer thread has taken a no-op job (queued behind
//! the writes before it), with the last write error if the log is failing.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use serde::Serialize;

use super::health::{Health, Ping, writer_fault};
use crate::audit::{AuditError, AuditEvent, AuditLog, Rotation};
use crate::config::{AuditConfig, FailureAction};
use crate::durable::{Committer, Pending};

/// Appends one record; answers when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Append(pub AuditEvent);

/// Appends records in order as one unit: they become durable together (one write, one
/// `fdatasync`) or not at all; answers when they are durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AppendAll(pub Vec<AuditEvent>);

/// Answers once every record queued before it is durable (used at shutdown).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// Opens the log file anew, continuing the chain (SIGHUP, for logrotate).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Reopen;

/// The audit log's health, as `agent status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditHealth {
    /// Whether the last write succeeded (true before the first).
    pub healthy: bool,
    /// Failed writes so far.
    pub failures: u64,
    /// The last failure, when the last write failed.
    pub last_error: Option<String>,
}

/// Shared view of [`AuditHealth`].
pub type HealthRef = Arc<Mutex<AuditHealth>>;

/// The audit writer.
pub struct AuditWriter {
    log: Option<Committer<AuditLog>>,
    health: HealthRef,
    failure_action: FailureAction,
}

impl AuditWriter {
    /// A writer per `config` (opening the log and starting its thread when enabled).
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let health = Arc::new(Mutex::new(AuditHealth {
            healthy: true,
            ..Default::default()
        }));
        if !config.enable {
            return Ok(AuditWriter {
                log: None,
                health,
                failure_action: config.failure_action,
            });
        }
        let rotation = Rotation {
            max_file_size: config.max_file_size,
            max_backup_files: config.max_backup_files,
        };
        let log = AuditLog::open_with(&config.log_file, rotation)?;
        let committer = Committer::start("audit-writer", log).map_err(|e| AuditError::Io {
            path: config.log_file.clone(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(AuditWriter {
            log: Some(committer),
            health,
            failure_action: config.failure_action,
        })
    }

    /// The health, shared with status.
    pub fn health(&self) -> HealthRef {
        self.health.clone()
    }

    fn watch(&self, pending: Pending) -> Pending {
        let (health, action) = (self.health.clone(), self.failure_action);
        Box::pin(async move {
            let result = pending.await;
            if let Ok(mut h) = health.lock() {
                match &result {
                    Ok(()) => {
                        if !h.healthy {
                            tracing::info!("the audit log is writable again");
                        }
                        h.healthy = true;
                        h.last_error = None;
                    }
                    Err(e) => {
                        h.healthy = false;
                        h.failures += 1;
                        h.last_error = Some(e.clone());
                    }
                }
            }
            if let (Err(e), FailureAction::Halt) = (&result, action) {
                tracing::error!(error = %e, "the audit log cannot be written and audit.failure_action is halt: exiting");
                crate::notify::status(&format!("halted: audit log unwritable: {e}"));
                std::process::exit(1);
            }
            result
        })
    }

    fn submit(&self, events: Vec<AuditEvent>) -> Pending {
        match &self.log {
            Some(c) => self.watch(c.submit(events)),
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
        crate::oplog::event(&msg.0);
        self.submit(vec![msg.0])
    }
}

impl Handler<AppendAll> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: AppendAll, _: &mut Context<Self>) -> Self::Result {
        for ev in &msg.0 {
            crate::oplog::event(ev);
        }
        self.submit(msg.0)
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        self.submit(Vec::new())
    }
}

impl Handler<Reopen> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Reopen, _: &mut Context<Self>) -> Self::Result {
        match &self.log {
            Some(c) => c.run(|log| log.reopen().map_err(|e| e.to_string())),
            None => Box::pin(async { Ok(()) }),
        }
    }
}

impl Handler<Ping> for AuditWriter {
    type Result = ResponseFuture<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        let last_error = self.health.lock().ok().and_then(|h| {
            if h.healthy {
                None
            } else {
                h.last_error.clone()
            }
        });
        let job = self.log.as_ref().map(|c| c.run(|_| Ok(())));
        Box::pin(async move {
            let fault = match job {
                Some(job) => writer_fault("audit", job.await),
                None => None,
            };
            Health {
                fault,
                last_error,
                ..Health::alive()
            }
        })
    }
}
