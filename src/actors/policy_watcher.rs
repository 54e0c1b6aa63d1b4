//! The PolicyWatcher actor: loads the policy directory at start, on request (SIGHUP,
//! `agent_reload`) and when the directory changes (inotify through the notify crate, debounced:
//! one editor save is several events; a missing directory is watched for through its nearest
//! existing ancestor, so that creating it takes effect without a reload), and publishes each new immutable [`PolicySet`] through a
//! [`PolicyHandle`].
//!
//! A load is all or nothing ([`crate::policy::load_dir`]); a failed reload changes nothing but
//! `last_error`. At start, a set that fails to load leaves standard and hardened modes denying
//! everything, and development mode behaving as with an empty directory.
//!
//! The directory is read and compiled on a blocking thread, one reload at a time, so that a
//! large set (10,000 rules take tens of milliseconds) never stalls the event loop and the
//! connections on it; the watcher itself answers nothing else until the reload is done.
//!
//! After every reload it asks the supervisor ([`crate::supervise`]) to send `STATUS=` at once;
//! a reload on SIGHUP is wrapped in `RELOADING=1` … `READY=1` for systemd. It answers a health
//! [`Ping`] with the generation in force and the last load error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arc_swap::ArcSwap;

use super::audit_writer::{Append, AuditWriter};
use super::health::{Health, Ping};
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::config::Mode;
use crate::policy::PolicySet;
use crate::policy::mode::fallback_for;

/// Where evaluators read the current set: one atomic pointer swap per reload.
pub type PolicyHandle = Arc<ArcSwap<PolicySet>>;

/// How long the directory must be quiet before a change is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Reload now; answers with the outcome after the new set is in force (or failed).
#[derive(Message)]
#[rtype(result = "ReloadOutcome")]
pub struct Reload(pub Trigger);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP: systemd is told RELOADING=1, then READY=1.
    Signal,
    /// An `agent_reload` request (the packaged unit's `ExecReload=`, so that `systemctl reload`
    /// returns only after the reload): systemd is told RELOADING=1, then READY=1, as for SIGHUP.
    Request,
    /// A change in the policy directory.
    Watch,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Request => "request",
            Trigger::Watch => "directory change",
        }
    }
}

/// The outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Whether a new set is in force.
    pub ok: bool,
    /// The generation in force afterwards.
    pub generation: u64,
    /// Files in force.
    pub files: usize,
    /// Rules in force.
    pub rules: usize,
    /// The load error, when it failed.
    pub error: Option<String>,
}

/// Asks for the current policy status.
#[derive(Message)]
#[rtype(result = "PolicyStatus")]
pub struct GetStatus;

/// Policy status for `status_response`.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    /// The set in force.
    pub set: Arc<PolicySet>,
    /// The last failed load's error, cleared by a successful load.
    pub last_error: Option<String>,
    /// The policy directory.
    pub directory: PathBuf,
}

/// The policy watcher.
pub struct PolicyWatcher {
    directory: PathBuf,
    mode: Mode,
    agent_uid: u32,
    handle: PolicyHandle,
    last_error: Option<String>,
    audit: Option<Addr<AuditWriter>>,
    /// The inotify watch; `None` if watching is off or failed (SIGHUP still works).
    watcher: Option<notify::RecommendedWatcher>,
    /// The paths watched now ([`watch_paths`]).
    watched: Vec<PathBuf>,
    /// The pending debounced reload.
    pending: Option<SpawnHandle>,
    /// Poked after each reload so that `STATUS=` is brought up to date at once.
    status_refresh: Option<Arc<tokio::sync::Notify>>,
}

/// Whether a filesystem event concerns the policy directory itself, a policy file in it, or
/// one of the directory's ancestors (a missing directory is watched for through its nearest
/// existing ancestor, so its creation, or a parent's, must be noticed). Changes to ignored files,
/// such as an editor's swap file, do not reload.
fn concerns(dir: &Path, event: &notify::Event) -> bool {
    !matches!(event.kind, notify::EventKind::Access(_))
        && event.paths.iter().any(|p| {
            dir.starts_with(p)
                || (p.parent() == Some(dir)
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        !matches!(
                            crate::policy::load::classify(n),
                            crate::policy::load::FileKind::Ignored(_)
                        )
                    }))
        })
}

/// The directory as watched: absolute, so that a relative `--policy-dir` has ancestors to watch
/// while it is missing and events name it the same way.
fn watched_dir(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The paths to watch for `dir`: the directory and its parent (so that its removal or
/// replacement is noticed) when it exists; else its nearest existing ancestor, so that its
/// creation is noticed without a reload.
fn watch_paths(dir: &Path) -> Vec<PathBuf> {
    if dir.is_dir() {
        return [Some(dir), dir.parent()]
            .into_iter()
            .flatten()
            .map(Path::to_path_buf)
            .collect();
    }
    dir.ancestors()
        .skip(1)
        .find(|a| a.is_dir())
        .map(|a| vec![a.to_path_buf()])
        .unwrap_or_default()
}

/// Loads `directory` into a set of `generation`: the code path `aether-vault policy check|test`
/// share ([`crate::policy::mode`]).
fn build_set(
    directory: &Path,
    mode: Mode,
    agent_uid: u32,
    generation: u64,
) -> Result<PolicySet, String> {
    crate::policy::mode::build_set(directory, mode, agent_uid, generation)
        .map_err(|e| e.to_string())
}

impl PolicyWatcher {
    /// Performs the initial load and returns the watcher and the handle evaluators read.
    pub fn start_load(
        directory: PathBuf,
        mode: Mode,
        agent_uid: u32,
    ) -> (PolicyWatcher, PolicyHandle) {
        let (set, last_error) = match build_set(&directory, mode, agent_uid, 1) {
            Ok(set) => (set, None),
            Err(e) => {
                tracing::error!(error = %e, "policy set failed to load at start");
                (PolicySet::empty(0, fallback_for(mode, agent_uid)), Some(e))
            }
        };
        tracing::info!(
            directory = %directory.display(),
            generation = set.generation,
            files = set.files.len(),
            rules = set.rules().len(),
            fallback = %set.fallback.describe(),
            "policy set in force"
        );
        let handle: PolicyHandle = Arc::new(ArcSwap::from_pointee(set));
        let watcher = PolicyWatcher {
            directory,
            mode,
            agent_uid,
            handle: handle.clone(),
            last_error,
            audit: None,
            watcher: None,
            watched: Vec::new(),
            pending: None,
            status_refresh: None,
        };
        (watcher, handle)
    }

    /// Records reloads in the audit log through `audit`.
    pub fn with_audit(mut self, audit: Addr<AuditWriter>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Pokes `refresh` after every reload (the supervisor then sends the new status).
    pub fn with_status_refresh(mut self, refresh: Arc<tokio::sync::Notify>) -> Self {
        self.status_refresh = Some(refresh);
        self
    }

    fn refresh_status(&self) {
        if let Some(r) = &self.status_refresh {
            r.notify_one();
        }
    }

    /// (Re)arms the inotify watches on [`watch_paths`]: called at start, on every change (before
    /// the debounced load, so that nothing written after the load reads the directory goes
    /// unnoticed) and after every reload. Watching a path again is harmless (and picks up a
    /// directory that was replaced); paths no longer wanted are unwatched.
    fn arm_watch(&mut self, ctx: &mut Context<Self>) {
        if self.watcher.is_none() {
            let addr = ctx.address();
            let dir = watched_dir(&self.directory);
            let made =
                notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                    Ok(ev) if concerns(&dir, &ev) => addr.do_send(Changed),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "policy directory watch error"),
                });
            match made {
                Ok(w) => self.watcher = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the policy directory; reload with SIGHUP or agent reload");
                    return;
                }
            }
        }
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        use notify::Watcher as _;
        let dir = watched_dir(&self.directory);
        let wanted = watch_paths(&dir);
        for old in self.watched.iter().filter(|p| !wanted.contains(p)) {
            let _ = w.unwatch(old);
        }
        for path in &wanted {
            if let Err(e) = w.watch(path, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(error = %e, path = %path.display(), "cannot watch");
            }
        }
        if wanted.first() != Some(&dir) {
            tracing::debug!(directory = %self.directory.display(), watching = ?wanted, "the policy directory does not exist; watching for it");
        }
        self.watched = wanted;
    }

    /// The error of the initial load, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Loads the directory on a blocking thread, then puts the new set in force (or records
    /// the failure). Run it with `ctx.wait`, so that reloads happen one at a time and nothing
    /// else reaches the watcher meanwhile; the event loop, and every connection on it, goes on
    /// while a large set is read and compiled.
    fn reload_later(
        &mut self,
        trigger: Trigger,
    ) -> impl ActorFuture<Self, Output = ReloadOutcome> + use<> {
        let (dir, mode, agent_uid) = (self.directory.clone(), self.mode, self.agent_uid);
        let next_gen = self.handle.load().generation + 1;
        let load =
            actix_rt::task::spawn_blocking(move || build_set(&dir, mode, agent_uid, next_gen));
        async move {
            load.await
                .unwrap_or_else(|_| Err("the policy load thread failed".to_string()))
        }
        .into_actor(self)
        .map(move |built, act, _| act.apply(trigger, next_gen, built))
    }

    fn apply(
        &mut self,
        trigger: Trigger,
        next_gen: u64,
        built: Result<PolicySet, String>,
    ) -> ReloadOutcome {
        let current = self.handle.load_full();
        crate::metrics::global().policy_reload(built.is_ok());
        let outcome = match built {
            Ok(set) => {
                let (files, rules) = (set.files.len(), set.rules().len());
                self.handle.store(Arc::new(set));
                self.last_error = None;
                tracing::info!(
                    generation = next_gen,
                    files,
                    rules,
                    trigger = trigger.as_str(),
                    "policy set reloaded"
                );
                ReloadOutcome {
                    ok: true,
                    generation: next_gen,
                    files,
                    rules,
                    error: None,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, generation = current.generation, trigger = trigger.as_str(), "policy reload failed; the previous set stays in force");
                self.last_error = Some(e.clone());
                ReloadOutcome {
                    ok: false,
                    generation: current.generation,
                    files: current.files.len(),
                    rules: current.rules().len(),
                    error: Some(e),
                }
            }
        };
        if let Some(audit) = &self.audit {
            let mut ev = AuditEvent::new(
                EventType::PolicyReload,
                if outcome.ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            );
            ev.policy_generation = Some(outcome.generation);
            ev.reason = Some(match &outcome.error {
                Some(e) => format!(
                    "reload on {} failed, generation {} stays in force: {e}",
                    trigger.as_str(),
                    outcome.generation
                ),
                None => format!(
                    "reload on {}: generation {} loaded: {} files, {} rules",
                    trigger.as_str(),
                    outcome.generation,
                    outcome.files,
                    outcome.rules
                ),
            });
            audit.do_send(Append(ev));
        }
        outcome
    }
}

/// Something changed in the policy directory (sent by the inotify thread).
#[derive(Message)]
#[rtype(result = "()")]
struct Changed;

impl Actor for PolicyWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.arm_watch(ctx);
    }
}

impl Handler<Changed> for PolicyWatcher {
    type Result = ();

    fn handle(&mut self, _: Changed, ctx: &mut Context<Self>) {
        self.arm_watch(ctx);
        if let Some(h) = self.pending.take() {
            ctx.cancel_future(h);
        }
        self.pending = Some(ctx.run_later(DEBOUNCE, |act, ctx| {
            act.pending = None;
            ctx.wait(act.reload_later(Trigger::Watch).map(|_, act, ctx| {
                act.refresh_status();
                act.arm_watch(ctx);
            }));
        }));
    }
}

impl Handler<Reload> for PolicyWatcher {
    type Result = ResponseFuture<ReloadOutcome>;

    fn handle(&mut self, msg: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let Reload(trigger) = msg;
        // An operator's reload is one systemd hears about; a directory change is not.
        let operator = trigger != Trigger::Watch;
        if operator {
            crate::notify::reloading();
        }
        let (done, outcome) = tokio::sync::oneshot::channel();
        ctx.wait(self.reload_later(trigger).map(move |outcome, act, ctx| {
            if operator {
                crate::notify::reloaded();
            }
            act.refresh_status();
            act.arm_watch(ctx);
            let _ = done.send(outcome);
        }));
        Box::pin(async move {
            outcome.await.unwrap_or_else(|_| ReloadOutcome {
                ok: false,
                generation: 0,
                files: 0,
                rules: 0,
                error: Some("the policy watcher stopped during the reload".into()),
            })
        })
    }
}

impl Handler<Ping> for PolicyWatcher {
    type Result = MessageResult<Ping>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Health {
            policy_generation: Some(self.handle.load().generation),
            last_error: self.last_error.clone(),
            ..Health::alive()
        })
    }
}

impl Handler<GetStatus> for PolicyWatcher {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(PolicyStatus {
            set: self.handle.load_full(),
            last_error: self.last_error.clone(),
            directory: self.directory.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Any));
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn only_policy_files_and_the_directory_itself_matter() {
        let dir = Path::new("/etc/p");
        assert!(concerns(dir, &ev(&["/etc/p/a.json"])));
        assert!(concerns(dir, &ev(&["/etc/p/b.yaml"])));
        assert!(concerns(dir, &ev(&["/etc/p"])));
        assert!(
            concerns(dir, &ev(&["/etc/p/.a.json.swp", "/etc/p/a.json"])),
            "a rename onto a policy file"
        );
        assert!(!concerns(dir, &ev(&["/etc/p/.a.json.swp"])));
        assert!(!concerns(dir, &ev(&["/etc/p/a.json~"])));
        assert!(!concerns(dir, &ev(&["/etc/other.json"])));
        assert!(!concerns(dir, &ev(&["/etc/p/sub/x.json"])));
        assert!(
            concerns(dir, &ev(&["/etc"])),
            "an ancestor, watched while /etc/p is missing"
        );
        assert!(!concerns(dir, &ev(&["/etc/pp"])));
    }

    #[test]
    fn a_missing_directory_is_watched_through_its_nearest_ancestor() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b/policies");
        assert_eq!(watch_paths(&dir), vec![base.path().to_path_buf()]);
        std::fs::create_dir_all(base.path().join("a/b")).unwrap();
        assert_eq!(watch_paths(&dir), vec![base.path().join("a/b")]);
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(
            watch_paths(&dir),
            vec![dir.clone(), base.path().join("a/b")]
        );
    }
}
