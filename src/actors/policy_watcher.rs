//! The PolicyWatcher actor: loads the policy directory at start and on request (SIGHUP,
//! `agent_reload`), and publishes each new immutable [`PolicySet`] through a [`PolicyHandle`].
//!
//! A load is all or nothing ([`crate::policy::load_dir`]); a failed reload changes nothing but
//! `last_error`. At start, a set that fails to load leaves standard and hardened modes denying
//! everything, and development mode behaving as with an empty directory.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

use super::audit_writer::{Append, AuditWriter};
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::config::Mode;
use crate::policy::{Fallback, PolicySet, load_dir};

/// Where evaluators read the current set: one atomic pointer swap per reload.
pub type PolicyHandle = Arc<ArcSwap<PolicySet>>;

/// Reload now; answers with the outcome after the new set is in force (or failed).
#[derive(Message)]
#[rtype(result = "ReloadOutcome")]
pub struct Reload;

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
}

/// The fallback for a mode when no rule is loaded.
pub fn fallback_for(mode: Mode, agent_uid: u32) -> Fallback {
    match mode {
        Mode::Development => Fallback::OwnerOnly { uid: agent_uid },
        Mode::Standard | Mode::Hardened => Fallback::DenyAll,
    }
}

/// Loads `directory` into a set of `generation`.
pub fn build_set(
    directory: &std::path::Path,
    mode: Mode,
    agent_uid: u32,
    generation: u64,
) -> Result<PolicySet, String> {
    let loaded = load_dir(directory).map_err(|e| e.to_string())?;
    let fallback = if loaded.rules.is_empty() {
        fallback_for(mode, agent_uid)
    } else {
        Fallback::DenyAll
    };
    Ok(PolicySet {
        generation,
        loaded_at: jiff::Timestamp::now(),
        files: loaded.files,
        policies: loaded.policies,
        rules: loaded.rules,
        fallback,
    })
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
                let fallback = match mode {
                    Mode::Development => fallback_for(mode, agent_uid),
                    _ => Fallback::DenyAll,
                };
                (PolicySet::empty(0, fallback), Some(e))
            }
        };
        tracing::info!(
            generation = set.generation,
            files = set.files.len(),
            rules = set.rules.len(),
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
        };
        (watcher, handle)
    }

    /// Records reloads in the audit log through `audit`.
    pub fn with_audit(mut self, audit: Addr<AuditWriter>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The error of the initial load, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn reload(&mut self) -> ReloadOutcome {
        let current = self.handle.load_full();
        let next_gen = current.generation + 1;
        let outcome = match build_set(&self.directory, self.mode, self.agent_uid, next_gen) {
            Ok(set) => {
                let (files, rules) = (set.files.len(), set.rules.len());
                self.handle.store(Arc::new(set));
                self.last_error = None;
                tracing::info!(generation = next_gen, files, rules, "policy set reloaded");
                ReloadOutcome {
                    ok: true,
                    generation: next_gen,
                    files,
                    rules,
                    error: None,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, generation = current.generation, "policy reload failed; the previous set stays in force");
                self.last_error = Some(e.clone());
                ReloadOutcome {
                    ok: false,
                    generation: current.generation,
                    files: current.files.len(),
                    rules: current.rules.len(),
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
                    "reload failed, generation {} stays in force: {e}",
                    outcome.generation
                ),
                None => format!(
                    "generation {} loaded: {} files, {} rules",
                    outcome.generation, outcome.files, outcome.rules
                ),
            });
            audit.do_send(Append(ev));
        }
        outcome
    }
}

impl Actor for PolicyWatcher {
    type Context = Context<Self>;
}

impl Handler<Reload> for PolicyWatcher {
    type Result = MessageResult<Reload>;

    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        crate::notify::reloading();
        let outcome = self.reload();
        crate::notify::ready(&format!(
            "policy generation {}{}",
            outcome.generation,
            if outcome.ok {
                ""
            } else {
                " (last reload failed)"
            }
        ));
        MessageResult(outcome)
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
