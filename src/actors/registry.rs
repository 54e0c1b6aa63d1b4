//! The CapabilityRegistry actor: the one owner of all capabilities.
//!
//! Every grant, revocation and use of a use-limited capability is queued to the durable store
//! (group commit) as it happens in memory; the answer carries a [`Pending`] that the session
//! awaits before it replies, so nothing a client was told is lost in a crash.
//!
//! It evaluates policy for a grant against the policy set in force at that moment, checks the
//! per-uid limits (reserving the grant's place) and builds the capability in one handler; the
//! capability is signed on the signing thread ([`crate::capability::sign_worker`]) while other
//! requests proceed, then held, stored and answered as decided (every later use decides again
//! against the policy then in force). Validation, revocation and listing apply
//! the holder rules: only the holder's uid validates; only the holder or an admin revokes;
//! non-admins list only their own. Expired capabilities stay listable for an hour, then a
//! periodic sweep drops them.
//!
//! It answers a health [`Ping`] with the number of active capabilities, once the store's writer
//! thread has taken a no-op job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use jiff::Timestamp;

use super::grant_step::{Answer, Step, Unsigned};
use super::health::{Health, Ping, writer_fault};
use super::policy_watcher::PolicyHandle;
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::capability::listing;
use crate::capability::per_uid::{UidBook, UidLimits};
use crate::capability::record::check;
use crate::capability::redeem::{redemption_path, still_allowed};
use crate::capability::sign_worker::SignWorker;
use crate::capability::store::{CapStore, StoreOp};
use crate::capability::{
    CapStatus, GrantLimits, Record, Revocation, Signer, grant_message, issue, new_capability_id,
    plan_grant,
};
use crate::durable::{Committer, Pending};
use crate::identity::PeerIdentity;
use crate::policy::{EvalInput, evaluate};
use crate::protocol::types::{
    Capability, CapabilityFilter, CapabilityRequest, CapabilityResponse, ListResponse,
    PolicyResult, RequestContext, RevokeResponse, ValidationIssue, ValidationResult,
};
use crate::protocol::{ErrorCode, ErrorPayload};

/// How often expired capabilities are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
pub use crate::capability::listing::MAX_LIST;

/// Asks for a capability.
#[derive(Message)]
#[rtype(result = "Decided<CapabilityResponse>")]
pub struct Grant {
    /// The verified caller.
    pub identity: Arc<PeerIdentity>,
    /// Whether the caller is an administrator (not held to the grant rate).
    pub is_admin: bool,
    /// What it asks for (already checked for sense).
    pub request: CapabilityRequest,
    /// The envelope id.
    pub request_id: String,
    /// When the request arrived (for `processingTime`).
    pub received: Instant,
}

/// Validates (and uses once) a capability.
#[derive(Message)]
#[rtype(result = "Decided<ValidationResult>")]
pub struct Validate {
    /// The verified caller.
    pub identity: Arc<PeerIdentity>,
    /// The capability id.
    pub capability_id: String,
    /// Facts for constraints.
    pub context: Option<RequestContext>,
    /// The envelope id.
    pub request_id: String,
    /// When the request arrived.
    pub received: Instant,
}

/// Revokes a capability.
#[derive(Message)]
#[rtype(result = "Decided<Result<RevokeResponse, ErrorPayload>>")]
pub struct Revoke {
    /// The verified caller.
    pub identity: Arc<PeerIdentity>,
    /// Whether the caller is an admin.
    pub is_admin: bool,
    /// The capability id.
    pub capability_id: String,
    /// Why.
    pub reason: Option<String>,
    /// The envelope id.
    pub request_id: String,
}

/// Lists capabilities.
#[derive(Message)]
#[rtype(result = "Result<ListResponse, ErrorPayload>")]
pub struct List {
    /// The verified caller.
    pub identity: Arc<PeerIdentity>,
    /// Whether the caller is an admin.
    pub is_admin: bool,
    /// The filter.
    pub filter: CapabilityFilter,
}

/// Redeems a capability for a secret operation: validates it for the caller (one use), checks
/// that it carries the action and covers the path, and answers with the path to act on.
#[derive(Message)]
#[rtype(result = "Decided<Result<String, ErrorPayload>>")]
pub struct Redeem {
    /// The verified caller.
    pub identity: Arc<PeerIdentity>,
    /// The capability.
    pub capability_id: String,
    /// `read`, `write`, `list` or `delete`.
    pub action: &'static str,
    /// The secret path asked for (required when the capability's resource is a pattern).
    pub path: Option<String>,
    /// The envelope id.
    pub request_id: String,
}

/// Withdraws a capability whose grant could not be recorded (it never reached the client).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Discard(pub String);

/// Asks for counts.
#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

/// Counts by status.
#[derive(Debug, Clone, Default)]
pub struct RegistryStats {
    /// Active capabilities.
    pub active: usize,
    /// All held capabilities by status name.
    pub by_status: BTreeMap<String, usize>,
}

/// An answer, the audit record that must be written before it is sent, and the store write
/// that must be durable before it is sent.
pub struct Decided<T> {
    /// The answer for the client.
    pub answer: T,
    /// The record of the decision.
    pub event: AuditEvent,
    /// The store write this decision made, if any.
    pub durable: Option<Pending>,
}

/// The registry.
pub struct CapabilityRegistry {
    caps: HashMap<String, Record>,
    signer: Arc<Signer>,
    /// Signs grants off the event loop; `None` if its thread could not start (then the
    /// registry signs itself).
    sign_worker: Option<SignWorker>,
    limits: GrantLimits,
    policy: PolicyHandle,
    store: Option<Committer<CapStore>>,
    /// What each uid holds, and may ask for (`capability_engine.*_per_uid`).
    book: UidBook,
    /// Test builds only: a grant of this resource panics, so that tests can check that the
    /// agent stops when an actor dies (`AETHER_VAULT_AGENT_TEST_PANIC_ON`). Not compiled into
    /// release builds.
    #[cfg(debug_assertions)]
    panic_on: Option<String>,
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl CapabilityRegistry {
    /// A registry holding `caps` (restored from `store`), writing every change to `store`.
    pub fn new(
        signer: Arc<Signer>,
        limits: GrantLimits,
        policy: PolicyHandle,
        caps: HashMap<String, Record>,
        store: Option<Committer<CapStore>>,
    ) -> Self {
        let book = UidBook::new(UidLimits::default(), &HashMap::new(), Timestamp::now()).0;
        let sign_worker = SignWorker::start(signer.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "no signing thread; grants are signed on the event loop"))
            .ok();
        let mut registry = CapabilityRegistry {
            caps,
            signer,
            sign_worker,
            limits,
            policy,
            store,
            book,
            #[cfg(debug_assertions)]
            panic_on: std::env::var("AETHER_VAULT_AGENT_TEST_PANIC_ON").ok(),
        };
        registry = registry.with_uid_limits(UidLimits {
            max_retained: usize::MAX,
            ..UidLimits::default()
        });
        registry
    }

    /// Applies the per-uid limits (`capability_engine.max_active_per_uid`,
    /// `max_retained_per_uid`, `grant_rate_per_uid`, `grant_burst_per_uid`); expired and
    /// revoked capabilities beyond a uid's retention quota are forgotten now.
    pub fn with_uid_limits(mut self, limits: UidLimits) -> Self {
        let (book, forget) = UidBook::new(limits, &self.caps, Timestamp::now());
        if !forget.is_empty() {
            tracing::info!(
                forgotten = forget.len(),
                "expired and revoked capabilities beyond capability_engine.max_retained_per_uid forgotten"
            );
        }
        for id in forget {
            self.caps.remove(&id);
        }
        self.book = book;
        self
    }

    fn persist(&self, ops: Vec<StoreOp>) -> Option<Pending> {
        self.store.as_ref().map(|s| s.submit(ops))
    }

    fn sweep(&mut self) {
        let now = Timestamp::now();
        let before = self.caps.len();
        self.caps.retain(|_, r| !r.droppable(now));
        for id in self.book.sweep(&self.caps, now) {
            self.caps.remove(&id);
        }
        let dropped = before - self.caps.len();
        if dropped > 0 {
            tracing::debug!(
                dropped,
                "dropped capabilities expired for over an hour, or beyond their uid's retention quota"
            );
        }
        if let Some(store) = &self.store {
            // The snapshot is queued behind every change made so far, so the compacted store
            // holds them all.
            let live: Vec<Record> = self.caps.values().cloned().collect();
            // The job is queued now; nobody needs to wait for its outcome.
            drop(store.run(move |s| {
                if crate::capability::store::worth_compacting(s.size(), &live) {
                    tracing::info!(
                        bytes = s.size(),
                        live = live.len(),
                        "compacting the capability store"
                    );
                    s.compact(live.iter()).map_err(|e| {
                        tracing::error!(error = %e, "capability store compaction failed; the log keeps growing");
                        e.to_string()
                    })
                } else {
                    Ok(())
                }
            }));
        }
    }

    /// Decides a grant and, if it is allowed and within the limits, books a reservation for
    /// it and returns the capability to sign ([`CapabilityRegistry::issue`] completes it).
    fn grant(&mut self, msg: Grant) -> Step {
        let Grant {
            identity,
            is_admin,
            request,
            request_id,
            received,
        } = msg;
        #[cfg(debug_assertions)]
        if self.panic_on.as_deref() == Some(request.resource.as_str()) {
            panic!("injected fault: AETHER_VAULT_AGENT_TEST_PANIC_ON");
        }
        let now = Timestamp::now();
        let set = self.policy.load();
        let eval_start = Instant::now();
        let decision = evaluate(
            &set,
            EvalInput {
                identity: &identity,
                resource: &request.resource,
                actions: &request.actions,
                now,
            },
        );
        let policy_result = decision.policy_result(nanos(eval_start));
        let mut event = AuditEvent::new(EventType::CapabilityRequest, Outcome::Denied)
            .by(&identity)
            .request(&request_id);
        event.claimed_identity = Some(request.identity.clone()).filter(|s| !s.is_empty());
        event.resource = Some(request.resource.clone());
        event.actions = request.actions.clone();
        event.rules = decision.applied_rules.clone();
        event.policy_generation = Some(decision.generation);
        let answer = Answer {
            request_id,
            received,
        };
        if !decision.allowed {
            event.reason = Some(decision.reasoning);
            return Step::Done(answer.decided(
                "denied",
                "Capability request denied by policy".into(),
                policy_result,
                event,
            ));
        }
        // The policy allows, but a limit refuses: denied, saying which limit.
        let refuse = |why: String, mut pr: PolicyResult, mut event: AuditEvent| {
            pr.decision = "deny".into();
            pr.reasoning = format!("{why} (policy would allow: {})", decision.reasoning);
            event.reason = Some(why.clone());
            Step::Done(answer.decided("denied", why, pr, event))
        };
        let plan = match plan_grant(&request, &self.limits, &decision) {
            Ok(p) => p,
            Err(why) => return refuse(why, policy_result, event),
        };
        let Some(expires) = crate::capability::grant::expiry(now, plan.ttl) else {
            let why = format!(
                "a TTL of {} seconds ends after the last time the agent can represent",
                plan.ttl
            );
            return refuse(why, policy_result, event);
        };
        let id = match new_capability_id() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a capability id");
                return Step::Done(answer.failed("no randomness", policy_result, event));
            }
        };
        // Last: an admitted grant holds a reservation against the uid's active cap.
        if let Err(why) = self
            .book
            .admit(identity.uid, is_admin, &self.caps, now, Instant::now())
        {
            return refuse(why, policy_result, event);
        }
        let cap = issue::unsigned(&request, &plan, id, &self.limits.issuer, now, expires);
        let message = grant_message(&request, &plan, &decision);
        event.reason = Some(decision.reasoning);
        Step::Sign(
            cap,
            Box::new(Unsigned {
                holder: issue::holder(&identity),
                expires,
                now,
                message,
                policy_result,
                event,
                answer,
            }),
        )
    }

    /// Completes a grant whose capability has been signed: holds, stores and answers it.
    fn issue(&mut self, cap: Capability, u: Unsigned) -> Decided<CapabilityResponse> {
        let Unsigned {
            holder,
            expires,
            now,
            message,
            policy_result,
            mut event,
            answer,
        } = u;
        let id = cap.id.clone();
        // Expiry is computed from the whole-second timestamp written into the capability.
        let expires_at = crate::timefmt::parse(&cap.expires_at).unwrap_or(expires);
        let record = Record {
            cap,
            holder,
            expires_at,
            revoked: None,
        };
        let wire = record.to_wire(now);
        let durable = self.persist(vec![StoreOp::Grant {
            cap: Box::new(record.cap.clone()),
            holder: record.holder.clone(),
        }]);
        let uid = record.holder.uid;
        self.caps.insert(id.clone(), record);
        for old in self.book.granted(uid, id.clone()) {
            self.caps.remove(&old);
        }
        event.outcome = Outcome::Granted;
        event.capability_id = Some(id);
        let mut decided = answer.decided("granted", message, policy_result, event);
        decided.answer.capability = Some(wire);
        decided.durable = durable;
        decided
    }

    fn validate(&mut self, msg: Validate) -> Decided<ValidationResult> {
        let now = Timestamp::now();
        let mut event = AuditEvent::new(EventType::CapabilityValidation, Outcome::Invalid)
            .by(&msg.identity)
            .request(&msg.request_id)
            .capability(&msg.capability_id);
        let mut ops = Vec::new();
        let outcome = match self.caps.get_mut(&msg.capability_id) {
            None => Err(ValidationIssue {
                code: ErrorCode::CapNotFound,
                message: "capability not found".into(),
            }),
            Some(rec) => {
                event.resource = Some(rec.cap.resource.clone());
                let checked = check(
                    rec,
                    msg.identity.uid,
                    msg.context.as_ref(),
                    now,
                    &self.signer,
                )
                .and_then(|()| {
                    still_allowed(&self.policy.load(), &msg.identity, &rec.cap, now).map_err(
                        |(why, rules)| {
                            event.rules = rules;
                            ValidationIssue {
                                code: ErrorCode::PermissionDenied,
                                message: why,
                            }
                        },
                    )
                });
                match checked {
                    Ok(()) => {
                        rec.cap.used_count += 1;
                        if rec.cap.max_uses > 0 {
                            ops.push(StoreOp::Use {
                                id: rec.cap.id.clone(),
                                count: rec.cap.used_count,
                            });
                        }
                        Ok(rec.remaining_uses())
                    }
                    Err(issue) => Err(issue),
                }
            }
        };
        let answer = match outcome {
            Ok(remaining) => {
                event.outcome = Outcome::Valid;
                let warnings = match remaining {
                    Some(0) => vec![ValidationIssue {
                        code: ErrorCode::LastUse,
                        message: "this was the capability's last use".into(),
                    }],
                    _ => vec![],
                };
                ValidationResult {
                    valid: true,
                    errors: vec![],
                    warnings,
                    validation_time: nanos(msg.received),
                    remaining_uses: remaining,
                }
            }
            Err(issue) => {
                event.reason = Some(format!("{}: {}", issue.code, issue.message));
                if issue.code == ErrorCode::NotHolder {
                    // Nothing about someone else's capability goes back, or into our record's resource.
                    event.resource = None;
                }
                ValidationResult {
                    valid: false,
                    errors: vec![issue],
                    warnings: vec![],
                    validation_time: nanos(msg.received),
                    remaining_uses: None,
                }
            }
        };
        let durable = if ops.is_empty() {
            None
        } else {
            self.persist(ops)
        };
        Decided {
            durable,
            answer,
            event,
        }
    }

    fn redeem(&mut self, msg: Redeem) -> Decided<Result<String, ErrorPayload>> {
        let now = Timestamp::now();
        let mut event = AuditEvent::new(EventType::CapabilityValidation, Outcome::Invalid)
            .by(&msg.identity)
            .request(&msg.request_id)
            .capability(&msg.capability_id);
        event.actions = vec![msg.action.to_string()];
        let refuse = |event: AuditEvent, code: ErrorCode, why: String| Decided {
            durable: None,
            answer: Err(ErrorPayload::new(code, why.clone())),
            event: event.because(format!("{code}: {why}")),
        };
        let Some(rec) = self.caps.get_mut(&msg.capability_id) else {
            return refuse(event, ErrorCode::CapNotFound, "capability not found".into());
        };
        if let Err(issue) = check(rec, msg.identity.uid, None, now, &self.signer) {
            return refuse(event, issue.code, issue.message);
        }
        let path = match redemption_path(&rec.cap, msg.action, msg.path.as_deref()) {
            Ok(p) => p,
            Err((code, why)) => return refuse(event, code, why),
        };
        // The capability's terms cover the path; decide again on the concrete path, with the
        // policy in force now and the caller as verified on this connection, so a pattern
        // cannot reach what a rule denies and a tightened policy takes effect at once.
        let concrete = format!("secret:/{path}");
        let actions = [msg.action.to_string()];
        let decision = evaluate(
            &self.policy.load(),
            EvalInput {
                identity: &msg.identity,
                resource: &concrete,
                actions: &actions,
                now,
            },
        );
        if !decision.allowed {
            event.rules = decision.applied_rules.clone();
            return refuse(
                event,
                ErrorCode::PermissionDenied,
                format!(
                    "the policy does not allow {} on {concrete}: {}",
                    msg.action, decision.reasoning
                ),
            );
        }
        let Some(rec) = self.caps.get_mut(&msg.capability_id) else {
            return refuse(event, ErrorCode::CapNotFound, "capability not found".into());
        };
        rec.cap.used_count += 1;
        let use_op = (rec.cap.max_uses > 0).then(|| StoreOp::Use {
            id: rec.cap.id.clone(),
            count: rec.cap.used_count,
        });
        let durable = use_op.and_then(|op| self.persist(vec![op]));
        event.outcome = Outcome::Valid;
        event.resource = Some(format!("secret:/{path}"));
        event.reason = Some(format!("redeemed for secret {}", msg.action));
        Decided {
            durable,
            answer: Ok(path),
            event,
        }
    }

    fn revoke(&mut self, msg: Revoke) -> Decided<Result<RevokeResponse, ErrorPayload>> {
        let mut event = AuditEvent::new(EventType::CapabilityRevocation, Outcome::Rejected)
            .by(&msg.identity)
            .request(&msg.request_id)
            .capability(&msg.capability_id);
        let Some(rec) = self.caps.get_mut(&msg.capability_id) else {
            event.reason = Some("CAP_NOT_FOUND".into());
            return Decided {
                durable: None,
                answer: Err(ErrorPayload::new(
                    ErrorCode::CapNotFound,
                    "capability not found",
                )),
                event,
            };
        };
        if rec.holder.uid != msg.identity.uid && !msg.is_admin {
            event.reason = Some("PERMISSION_DENIED: not the holder and not an admin".into());
            return Decided {
                durable: None,
                answer: Err(ErrorPayload::new(
                    ErrorCode::PermissionDenied,
                    "only the capability's holder or an administrator may revoke it",
                )),
                event,
            };
        }
        let now = Timestamp::now();
        let revocation = rec
            .revoked
            .get_or_insert_with(|| Revocation {
                at: now,
                reason: msg.reason.clone(),
                by_uid: msg.identity.uid,
            })
            .clone();
        event.outcome = Outcome::Revoked;
        event.resource = Some(rec.cap.resource.clone());
        event.reason = msg.reason.clone().or(Some("no reason given".into()));
        let op = StoreOp::Revoke {
            id: msg.capability_id.clone(),
            at: crate::timefmt::rfc3339(revocation.at),
            reason: revocation.reason.clone(),
            by_uid: revocation.by_uid,
        };
        // Written even when already revoked in memory: an earlier attempt whose write failed
        // was answered STORE_UNAVAILABLE, and its retry must make the revocation durable.
        let durable = self.persist(vec![op]);
        Decided {
            durable,
            answer: Ok(RevokeResponse {
                status: "revoked".into(),
                message: "Capability revoked successfully".into(),
                capability_id: msg.capability_id,
                revoked_at: crate::timefmt::rfc3339(revocation.at),
            }),
            event,
        }
    }

    fn list(&self, msg: List) -> Result<ListResponse, ErrorPayload> {
        listing::list(
            self.caps.values(),
            &msg.filter,
            msg.identity.uid,
            msg.is_admin,
            Timestamp::now(),
        )
    }

    fn active_count(&self) -> usize {
        let now = Timestamp::now();
        self.caps
            .values()
            .filter(|r| r.status(now) == CapStatus::Active)
            .count()
    }

    fn stats(&self) -> RegistryStats {
        let now = Timestamp::now();
        let mut s = RegistryStats::default();
        for r in self.caps.values() {
            let status = r.status(now);
            if status == CapStatus::Active {
                s.active += 1;
            }
            *s.by_status.entry(status.as_str().to_string()).or_default() += 1;
        }
        s
    }
}

impl Actor for CapabilityRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP_INTERVAL, |act, _| act.sweep());
    }
}

impl Handler<Ping> for CapabilityRegistry {
    type Result = ResponseFuture<Health>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        let active = self.active_count();
        let job = self.store.as_ref().map(|s| s.run(|_| Ok(())));
        Box::pin(async move {
            let fault = match job {
                Some(job) => writer_fault("capability store", job.await),
                None => None,
            };
            Health {
                fault,
                active_capabilities: Some(active),
                ..Health::alive()
            }
        })
    }
}

impl Handler<Grant> for CapabilityRegistry {
    type Result = ResponseActFuture<Self, Decided<CapabilityResponse>>;

    /// Signs on the signing thread: other requests proceed while an Ed25519 signature is
    /// made; the grant is held, stored and answered once it is signed.
    fn handle(&mut self, msg: Grant, _: &mut Context<Self>) -> Self::Result {
        let (cap, unsigned) = match self.grant(msg) {
            Step::Done(decided) => return Box::pin(actix::fut::ready(decided)),
            Step::Sign(cap, unsigned) => (cap, *unsigned),
        };
        let uid = unsigned.holder.uid;
        let Some(worker) = &self.sign_worker else {
            let mut cap = cap;
            cap.signature = self.signer.sign(&cap, uid);
            return Box::pin(actix::fut::ready(self.issue(cap, unsigned)));
        };
        let signing = worker.sign(cap, uid);
        Box::pin(signing.into_actor(self).map(move |signed, act, _| {
            if let Some(cap) = signed {
                return act.issue(cap, unsigned);
            }
            act.book.release(uid);
            tracing::error!("a capability could not be signed; nothing was granted");
            let Unsigned {
                policy_result,
                event,
                answer,
                ..
            } = unsigned;
            answer.failed("signing failed", policy_result, event)
        }))
    }
}

impl Handler<Validate> for CapabilityRegistry {
    type Result = MessageResult<Validate>;
    fn handle(&mut self, msg: Validate, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.validate(msg))
    }
}

impl Handler<Revoke> for CapabilityRegistry {
    type Result = MessageResult<Revoke>;
    fn handle(&mut self, msg: Revoke, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.revoke(msg))
    }
}

impl Handler<List> for CapabilityRegistry {
    type Result = Result<ListResponse, ErrorPayload>;
    fn handle(&mut self, msg: List, _: &mut Context<Self>) -> Self::Result {
        self.list(msg)
    }
}

impl Handler<Redeem> for CapabilityRegistry {
    type Result = MessageResult<Redeem>;
    fn handle(&mut self, msg: Redeem, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.redeem(msg))
    }
}

impl Handler<Discard> for CapabilityRegistry {
    type Result = ();
    fn handle(&mut self, msg: Discard, _: &mut Context<Self>) {
        if self.caps.remove(&msg.0).is_some() {
            tracing::warn!(capability = %msg.0, "grant withdrawn: it could not be recorded");
            // If the grant did reach the store, make sure it never comes back.
            let _ = self.persist(vec![StoreOp::Revoke {
                id: msg.0,
                at: crate::timefmt::now_rfc3339(),
                reason: Some("withdrawn: the grant could not be recorded".into()),
                by_uid: 0,
            }]);
        }
    }
}

impl Handler<Stats> for CapabilityRegistry {
    type Result = MessageResult<Stats>;
    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats())
    }
}
