//! The AuditWriter actor: the front of the audit log's group-commit writer thread
//! ([`crate::durable::Committer`]). Each [`Append`] is answered once its record is durable;
//! with auditing disabled, appends succeed without writing. Records are sealed into the hash
//! chain in the order they are written.
//!
//! An [`AppendAll`] says what it waits for ([`Wait`]). With `audit.sync: periodic`, a
//! [`Wait::Written`] append — the record of a decision that changed nothing — is written here,
//! on the event loop, with one `write` to the log (shared with the writer thread behind a
//! mutex that is held across a sync only while the writer thread rotates the log), answered at
//! once, and synced by the writer thread `audit.sync_interval_ms` later; see
//! docs/durability.md. Everything else is answered once synced: written and synced by the
//! writer thread — where concurrent requests share one `fdatasync` — or, when the agent has
//! one client connection and the writer thread nothing queued or running, written and synced
//! here on the event loop, which spares the lone request's answer two thread hand-offs (the
//! client could not have sent anything else meanwhile; another connection sends records
//! through the thread again).
//!
//! It also keeps the log's health for `agent status`, and applies `audit.failure_action` when a
//! write fails: `deny` lets the caller refuse the request (and the next write retries), `halt`
//! exits the process non-zero so that systemd restarts it.
//!
//! It answers a health [`Ping`] once its writer thread has taken a no-op job (queued behind
//! the writes before it), with the last write error if the log is failing.
//!
//! Every record it takes is first bounded ([`crate::audit::bound`]: long fields cut, with a
//! digest of the whole, before sealing), and a non-administrator's refusal beyond its budget is
//! counted instead of written ([`crate::audit::summary`]), answered at once, and not logged to
//! the journal one by one; every `audit.summary_interval_seconds`, and at [`Summarize`] and
//! [`Flush`] (the agent stopping), the counts are written as `refusal_summary` records. Counts
//! whose summary cannot be written are kept for the next try (and logged as errors).
//!
//! With `audit.seal` ([`AuditWriter::sealed`]), the writer thread seals the chain's head
//! ([`crate::audit::seal`]) at start, every `audit.seal_interval_seconds`, before rotating, and
//! when sent [`SealNow`] (at stop), each time after making the sealed records durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use serde::Serialize;

use super::health::{Health, Ping, writer_fault};
use crate::audit::bound::{RecordLimits, bound};
use crate::audit::seal::SealReason;
use crate::audit::sealer::Sealer;
use crate::audit::summary::{Admins, Aggregator};
use crate::audit::{AuditError, AuditEvent, AuditLog, Rotation, WrittenBy};
use crate::capability::Signer;
use crate::config::{AuditConfig, AuditSync, FailureAction};
use crate::durable::{Batching, Committer, Pending};

/// Appends one record; answers when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Append(pub AuditEvent);

/// Appends records in order as one unit: they are written together (one write) or not at all;
/// answers when they are as safe as `wait` asks.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AppendAll {
    /// The records, in order.
    pub events: Vec<AuditEvent>,
    /// What the answer waits for.
    pub wait: Wait,
}

/// What an append waits for before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The records are on disk (`fdatasync`): for records that go with a change of durable
    /// state (a grant, a revocation, a use counted, a secret written), so that no change
    /// survives a power loss without its record.
    Durable,
    /// With `audit.sync: periodic`, the records are written to the log file (they survive the
    /// agent being killed) and reach the disk within `audit.sync_interval_ms`; with `always`,
    /// the same as [`Wait::Durable`]. For decisions that change nothing: validations,
    /// refusals, reads.
    Written,
}

/// Answers once every record queued before it is durable (used at shutdown), after writing the
/// refusal summaries still pending.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

/// Writes the refusal summaries of the interval so far now (at stop, before `agent_stop`);
/// answers how many summary records were written.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct Summarize;

/// Seals the chain's head now (once what was written before is durable); with sealing off,
/// does nothing.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SealNow(pub SealReason);

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

/// The log as the writer thread and, with `audit.sync: periodic`, the actor share it.
pub struct SharedLog {
    log: Arc<Mutex<AuditLog>>,
    /// `audit.sync: always`: each batch is written and synced under the lock (nobody else
    /// writes), and a failed sync cuts the batch off again. `periodic`: the lock is held only
    /// to write (and to rotate, once per `max_file_size`), so that the event loop's appends do
    /// not wait for the disk.
    sync_under_lock: bool,
}

impl SharedLog {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, AuditLog>, String> {
        self.log
            .lock()
            .map_err(|_| "the audit log's lock is poisoned".to_string())
    }

    /// Makes every record written so far durable, and rotates the log if the event loop's
    /// writes have taken it past `max_file_size` (they leave rotating to this thread).
    fn sync(&self) -> Result<(), String> {
        let (file, seq) = {
            let mut log = self.lock()?;
            log.rotate_if_due();
            (
                log.sync_handle().map_err(|e| e.to_string())?,
                log.head().seq,
            )
        };
        file.sync_data()
            .map_err(|e| format!("audit log: cannot sync: {e}"))?;
        self.lock()?.synced_up_to(seq);
        Ok(())
    }

    /// Seals the head as it is now, once it is durable, without holding the log meanwhile
    /// (records written meanwhile on the event loop wait for the next seal).
    fn seal(&self, reason: SealReason) -> Result<(), String> {
        let (head, file, sealer) = self.lock()?.durable_head().map_err(|e| e.to_string())?;
        let Some(sealer) = sealer else {
            return Ok(());
        };
        let sealed = file
            .sync_data()
            .map_err(|e| format!("audit log: cannot sync: {e}"))
            .and_then(|()| {
                sealer
                    .lock()
                    .map_err(|_| "the audit sealer's lock is poisoned".to_string())?
                    .seal(&head, reason)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = &sealed {
            tracing::error!(error = %e, reason = reason.as_str(), "the audit log could not be sealed");
        }
        sealed
    }
}

impl crate::durable::Sink for SharedLog {
    type Item = AuditEvent;

    fn write(&mut self, items: &[AuditEvent]) -> Result<(), String> {
        let began = std::time::Instant::now();
        let refs: Vec<&AuditEvent> = items.iter().collect();
        let result = if self.sync_under_lock {
            self.lock()
                .and_then(|mut log| log.append_batch(&refs).map_err(|e| e.to_string()))
        } else {
            self.lock()
                .and_then(|mut log| {
                    log.write_batch(&refs, WrittenBy::WriterThread)
                        .map_err(|e| e.to_string())
                })
                .and_then(|()| self.sync())
        };
        match &result {
            Ok(()) => crate::metrics::global().audit_sync(began.elapsed()),
            Err(e) => {
                tracing::error!(error = %e, records = items.len(), "audit records could not be written")
            }
        }
        result
    }
}

/// The audit writer.
pub struct AuditWriter {
    log: Option<Committer<SharedLog>>,
    /// The log the writer thread writes, shared.
    file: Option<Arc<Mutex<AuditLog>>>,
    /// `audit.sync: periodic`: [`Wait::Written`] appends are made here, on the event loop, in
    /// `file`, without a hand-off to the writer thread.
    inline: bool,
    /// How soon a record written inline is synced.
    sync_interval: std::time::Duration,
    /// Open client connections (the server's count): with at most one, a durable append with
    /// the writer thread idle is written and synced here.
    connections: Option<Arc<AtomicUsize>>,
    /// Whether a sync of inline-written records is scheduled.
    sync_pending: bool,
    health: HealthRef,
    failure_action: FailureAction,
    /// `audit.max_record_bytes`, `audit.max_field_bytes`.
    limits: RecordLimits,
    /// Per-uid refusal budgets and counts.
    refusals: Aggregator,
    /// Whose refusals are never counted.
    admins: Admins,
    /// `audit.summary_interval_seconds`.
    summary_interval: std::time::Duration,
    /// With sealing on, how often the head is sealed.
    seal_every: Option<std::time::Duration>,
    /// The agent's `region` label, written into every record.
    region: Option<String>,
}

impl AuditWriter {
    /// A writer per `config` (opening the log and starting its thread when enabled).
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let health = Arc::new(Mutex::new(AuditHealth {
            healthy: true,
            ..Default::default()
        }));
        let sync_interval = std::time::Duration::from_millis(config.sync_interval_ms);
        let writer = AuditWriter {
            log: None,
            file: None,
            inline: false,
            sync_interval,
            connections: None,
            sync_pending: false,
            health,
            failure_action: config.failure_action,
            limits: RecordLimits {
                max_record_bytes: config.max_record_bytes,
                max_field_bytes: config.max_field_bytes,
            },
            refusals: Aggregator::new(config.refusal_budget, config.summary_interval_seconds),
            admins: Admins {
                agent_uid: nix::unistd::geteuid().as_raw(),
                admin_gid: None,
            },
            summary_interval: std::time::Duration::from_secs(
                config.summary_interval_seconds.max(1),
            ),
            seal_every: None,
            region: None,
        };
        if !config.enable {
            return Ok(writer);
        }
        let rotation = Rotation {
            max_file_size: config.max_file_size,
            max_backup_files: config.max_backup_files,
            min_age: std::time::Duration::from_secs(
                config.min_retention_days.saturating_mul(86400),
            ),
        };
        let log = Arc::new(Mutex::new(AuditLog::open_with(&config.log_file, rotation)?));
        let periodic = config.sync == AuditSync::Periodic;
        let shared = SharedLog {
            log: log.clone(),
            sync_under_lock: !periodic,
        };
        let committer = Committer::start(
            "audit-writer",
            shared,
            Batching::up_to(config.group_commit_delay()),
        )
        .map_err(|e| AuditError::Io {
            path: config.log_file.clone(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
        Ok(AuditWriter {
            log: Some(committer),
            file: Some(log),
            inline: periodic,
            ..writer
        })
    }

    /// Writes the agent's `region` label into every record from now on.
    pub fn with_region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// Who counts as an administrator (root and the agent's own uid by default; the server
    /// adds `ipc.admin_group`).
    pub fn with_admins(mut self, admins: Admins) -> Self {
        self.admins = admins;
        self
    }

    /// What of `events` is to be written: each bounded and logged for operators, except a
    /// non-administrator's refusal beyond its budget, which is counted instead. While the log
    /// is failing nothing is counted, so that refusals too wait for the disk and are refused
    /// with it, as every other record.
    fn take_in(&mut self, events: Vec<AuditEvent>) -> Vec<AuditEvent> {
        let healthy = self.health.lock().is_ok_and(|h| h.healthy);
        events
            .into_iter()
            .filter_map(|mut ev| {
                if healthy && !self.refusals.admit(&mut ev, &self.admins) {
                    return None;
                }
                ev.region.clone_from(&self.region);
                bound(&mut ev, &self.limits);
                crate::oplog::event(&ev);
                Some(ev)
            })
            .collect()
    }

    /// Ends the refusal interval: what was counted is written as `refusal_summary` records
    /// (through the writer thread, durably); answers how many. Counts whose records cannot be
    /// written go back to the aggregator for the next try, and are logged as errors, so that
    /// they are not lost without a trace if the agent stops first.
    fn summarize(&mut self) -> ResponseActFuture<Self, Result<usize, String>> {
        let batch = self.refusals.end_interval();
        if batch.is_empty() {
            return Box::pin(actix::fut::ready(Ok(0)));
        }
        let events: Vec<AuditEvent> = batch
            .iter()
            .map(|c| {
                let mut ev = self.refusals.summary_event(c);
                ev.region.clone_from(&self.region);
                bound(&mut ev, &self.limits);
                crate::oplog::event(&ev);
                ev
            })
            .collect();
        let n = events.len();
        let reasons: Vec<String> = events.iter().filter_map(|e| e.reason.clone()).collect();
        Box::pin(
            self.submit(events)
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(()) => Ok(n),
                    Err(e) => {
                        for r in &reasons {
                            tracing::error!(error = %e, "a refusal summary could not be written (kept for the next try): {r}");
                        }
                        act.refusals.restore(batch);
                        Err(e)
                    }
                }),
        )
    }

    /// Turns sealing on per `config` (`audit.seal`, with the log enabled): opens the seal file
    /// (`audit.seal_file`, else in `state_dir`), takes up the log as its last seal left it, and
    /// seals the head found (`start`).
    pub async fn sealed(
        mut self,
        config: &AuditConfig,
        state_dir: &std::path::Path,
        signer: Arc<Signer>,
    ) -> Result<Self, AuditError> {
        let Some(c) = &self.log else {
            return Ok(self);
        };
        if !config.seal {
            return Ok(self);
        }
        let rotates = config.max_file_size > 0;
        let sealer = Sealer::open(
            &config.seal_path(state_dir),
            &config.log_file,
            signer,
            rotates,
        )?;
        c.run(move |s| {
            s.lock()?
                .attach_sealer(sealer)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|message| AuditError::Io {
            path: config.log_file.clone(),
            message,
        })?;
        self.seal_every = Some(std::time::Duration::from_secs(config.seal_interval_seconds));
        Ok(self)
    }

    /// Lets durable appends be written and synced on the event loop while `connections`, the
    /// server's count of open client connections, is at most one and the writer thread idle.
    pub fn with_connections(mut self, connections: Arc<AtomicUsize>) -> Self {
        self.connections = Some(connections);
        self
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
            Some(c) if !events.is_empty() => self.watch(c.submit(events)),
            _ => Box::pin(async { Ok(()) }),
        }
    }

    /// A durable append for a client waiting for it: written and synced here when that is
    /// the quickest way and keeps the order (one connection at most, the writer thread idle,
    /// the log healthy), else through the writer thread.
    fn durable(&self, events: Vec<AuditEvent>) -> Pending {
        let alone = self
            .connections
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed) <= 1);
        let idle = self.log.as_ref().is_some_and(|c| c.idle());
        let Some(log) = self
            .file
            .as_ref()
            .filter(|_| alone && idle && self.healthy())
        else {
            return self.submit(events);
        };
        let refs: Vec<&AuditEvent> = events.iter().collect();
        // What the writer thread does with `always` (one write and one fdatasync under the
        // lock, cut back on failure), whatever `audit.sync` says.
        let result = match log.lock() {
            Ok(mut l) => l.append_batch(&refs).map_err(|e| e.to_string()),
            Err(_) => Err("the audit log's lock is poisoned".to_string()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, records = events.len(), "audit records could not be written");
        }
        self.watch(Box::pin(std::future::ready(result)))
    }

    fn healthy(&self) -> bool {
        self.health.lock().is_ok_and(|h| h.healthy)
    }

    /// A [`Wait::Written`] append: with `audit.sync: periodic` and a healthy log, written here
    /// and now, with a sync scheduled within the interval; otherwise as durable as any.
    fn write_now(&mut self, events: Vec<AuditEvent>, ctx: &mut Context<Self>) -> Pending {
        let Some(log) = self.file.as_ref().filter(|_| self.inline) else {
            return self.durable(events);
        };
        // After a failure, every append waits for the disk again until one succeeds: a log
        // that cannot be synced must not go on answering as if it could.
        if !self.healthy() {
            return self.submit(events);
        }
        let refs: Vec<&AuditEvent> = events.iter().collect();
        let result = match log.lock() {
            Ok(mut l) => l
                .write_batch(&refs, WrittenBy::EventLoop)
                .map_err(|e| e.to_string()),
            Err(_) => Err("the audit log's lock is poisoned".to_string()),
        };
        match &result {
            Ok(()) if !self.sync_pending => {
                self.sync_pending = true;
                ctx.run_later(self.sync_interval, |act, ctx| {
                    act.sync_pending = false;
                    if let Some(c) = &act.log {
                        let synced = act.watch(c.run(|s| s.sync()));
                        ctx.spawn(
                            async move {
                                let _ = synced.await;
                            }
                            .into_actor(act),
                        );
                    }
                });
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, records = events.len(), "audit records could not be written")
            }
        }
        self.watch(Box::pin(std::future::ready(result)))
    }
}

impl Actor for AuditWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.summary_interval, |act, ctx| {
            ctx.spawn(act.summarize().map(|_, _, _| ()));
        });
        if let Some(every) = self.seal_every {
            ctx.run_interval(every, |act, ctx| {
                if let Some(c) = &act.log {
                    let job = c.run(|s| s.seal(SealReason::Interval));
                    ctx.spawn(
                        async move {
                            let _ = job.await;
                        }
                        .into_actor(act),
                    );
                }
            });
        }
    }
}

impl Handler<SealNow> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: SealNow, _: &mut Context<Self>) -> Self::Result {
        match (&self.log, self.seal_every) {
            (Some(c), Some(_)) => c.run(move |s| s.seal(msg.0)),
            _ => Box::pin(async { Ok(()) }),
        }
    }
}

impl Handler<Append> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) -> Self::Result {
        let events = self.take_in(vec![msg.0]);
        self.submit(events)
    }
}

impl Handler<AppendAll> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: AppendAll, ctx: &mut Context<Self>) -> Self::Result {
        let events = self.take_in(msg.events);
        if events.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        match msg.wait {
            Wait::Durable => self.durable(events),
            Wait::Written => self.write_now(events, ctx),
        }
    }
}

impl Handler<Summarize> for AuditWriter {
    type Result = ResponseActFuture<Self, Result<usize, String>>;

    fn handle(&mut self, _: Summarize, _: &mut Context<Self>) -> Self::Result {
        self.summarize()
    }
}

impl Handler<Flush> for AuditWriter {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        // The summaries still pending first, then a sync behind every queued write, which also
        // syncs what was written inline.
        let summaries = self.summarize();
        let synced = self.log.as_ref().map(|c| self.watch(c.run(|s| s.sync())));
        Box::pin(summaries.then(move |written, _, _| {
            actix::fut::wrap_future(async move {
                let synced = match synced {
                    Some(s) => s.await,
                    None => Ok(()),
                };
                written.and(synced)
            })
        }))
    }
}

impl Handler<Reopen> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Reopen, _: &mut Context<Self>) -> Self::Result {
        match &self.log {
            // A failure (the old file could not be synced, the new one not opened) counts
            // against the log's health like a failed write.
            Some(c) => self.watch(c.run(|s| s.lock()?.reopen().map_err(|e| e.to_string()))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventType, Outcome, chain};

    fn config(dir: &std::path::Path, sync: AuditSync) -> AuditConfig {
        AuditConfig {
            enable: true,
            log_file: dir.join("audit.log"),
            failure_action: FailureAction::Deny,
            max_file_size: 0,
            max_backup_files: 1,
            min_retention_days: 7,
            max_record_bytes: 8192,
            max_field_bytes: 1024,
            refusal_budget: 50,
            summary_interval_seconds: 10,
            sync,
            sync_interval_ms: 5,
            group_commit_delay_us: None,
            seal: false,
            seal_interval_seconds: 10,
            seal_file: None,
        }
    }

    fn lines(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// With `periodic`, the answer to a [`Wait::Written`] append does not wait for the disk,
    /// but the answer to a [`Wait::Durable`] one (a grant, a revocation, a counted use, a
    /// secret changed, a credential delivered) waits until its record is synced — and with it
    /// everything written before. With `always`, every answer waits for the sync.
    #[actix_rt::test]
    async fn durable_appends_are_synced_before_their_answer_in_both_modes() {
        for sync in [AuditSync::Periodic, AuditSync::Always] {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = config(dir.path(), sync);
            // Far beyond the test's length: no periodic sync happens by itself meanwhile.
            cfg.sync_interval_ms = 1000;
            let writer = AuditWriter::open(&cfg).unwrap();
            let log = writer.file.clone().unwrap();
            let writer = writer.start();
            let append = |kind, wait| AppendAll {
                events: vec![AuditEvent::new(kind, Outcome::Success)],
                wait,
            };
            let synced = || {
                let l = log.lock().unwrap();
                (l.synced_through(), l.head().seq)
            };
            for _ in 0..3 {
                let answered = writer.send(append(EventType::CapabilityValidation, Wait::Written));
                answered.await.unwrap().unwrap();
            }
            assert_eq!(
                lines(dir.path()).len(),
                3,
                "{sync:?}: written before the answer"
            );
            let (through, head) = synced();
            match sync {
                AuditSync::Periodic => assert!(through < head, "periodic: not waited for"),
                AuditSync::Always => assert_eq!(through, head, "always: synced"),
            }
            let answered = writer.send(append(EventType::CapabilityRequest, Wait::Durable));
            answered.await.unwrap().unwrap();
            assert_eq!(synced(), (4, 4), "{sync:?}: synced before the answer");
        }
    }

    /// With one client connection and the writer thread idle, a durable append is written and
    /// synced on the event loop (no hand-off); with two, through the writer thread, where
    /// concurrent requests share a sync. Either way it is synced before the answer.
    #[actix_rt::test]
    async fn a_lone_connection_syncs_on_the_event_loop_and_more_share_the_thread() {
        for sync in [AuditSync::Always, AuditSync::Periodic] {
            let dir = tempfile::tempdir().unwrap();
            let connections = Arc::new(AtomicUsize::new(1));
            let writer = AuditWriter::open(&config(dir.path(), sync))
                .unwrap()
                .with_connections(connections.clone());
            let (log, thread) = (writer.file.clone().unwrap(), writer.log.clone().unwrap());
            let writer = writer.start();
            let durable = |kind| AppendAll {
                events: vec![AuditEvent::new(kind, Outcome::Success)],
                wait: Wait::Durable,
            };
            writer
                .send(durable(EventType::CapabilityRequest))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(thread.jobs_taken(), 0, "{sync:?}: no hand-off");
            assert_eq!(log.lock().unwrap().synced_through(), 1, "{sync:?}");
            // With `always`, a record of a decision that changed nothing is durable too.
            if sync == AuditSync::Always {
                writer
                    .send(AppendAll {
                        events: vec![AuditEvent::new(
                            EventType::CapabilityValidation,
                            Outcome::Valid,
                        )],
                        wait: Wait::Written,
                    })
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(thread.jobs_taken(), 0, "no hand-off");
                assert_eq!(log.lock().unwrap().synced_through(), 2);
            }
            connections.store(2, Ordering::Relaxed);
            writer
                .send(durable(EventType::CapabilityRevocation))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(thread.jobs_taken(), 1, "{sync:?}: through the thread");
            let l = log.lock().unwrap();
            assert_eq!(l.synced_through(), l.head().seq, "{sync:?}");
        }
    }

    #[actix_rt::test]
    async fn written_and_durable_appends_share_one_chain_in_both_modes() {
        for sync in [AuditSync::Always, AuditSync::Periodic] {
            let dir = tempfile::tempdir().unwrap();
            let writer = AuditWriter::open(&config(dir.path(), sync))
                .unwrap()
                .start();
            // A Written append is in the file when it is answered (in both modes).
            let ev = AuditEvent::new(EventType::CapabilityValidation, Outcome::Valid);
            writer
                .send(AppendAll {
                    events: vec![ev],
                    wait: Wait::Written,
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(lines(dir.path()).len(), 1, "{sync:?}");
            let sends: Vec<_> = (0..200)
                .map(|i| {
                    let kind = if i % 3 == 0 {
                        EventType::CapabilityRequest
                    } else {
                        EventType::CapabilityValidation
                    };
                    let wait = if i % 3 == 0 {
                        Wait::Durable
                    } else {
                        Wait::Written
                    };
                    writer.send(AppendAll {
                        events: vec![
                            AuditEvent::new(kind, Outcome::Success),
                            AuditEvent::new(kind, Outcome::Success),
                        ],
                        wait,
                    })
                })
                .collect();
            for s in sends {
                s.await.unwrap().unwrap();
            }
            writer.send(Flush).await.unwrap().unwrap();
            let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
            let v = chain::verify(&[(dir.path().join("audit.log"), text)]).unwrap();
            assert_eq!((v.records, v.from_genesis), (401, true), "{sync:?}");
            assert!(
                writer.send(Ping).await.unwrap().fault.is_none(),
                "{sync:?}: healthy"
            );
        }
    }
}
