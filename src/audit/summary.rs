//! Refusal summaries: a uid cannot flood the audit log with refusals, and none goes unrecorded.
//!
//! A refusal is a record that anyone can make the agent write without any permission: a denied
//! `capability_request`, an invalid `capability_validation` (a refused secret redemption
//! included), a rejected `capability_revocation`, a `connection_rejected`, a denied
//! `credential_delivery` ([`is_refusal`]).
//! Each uid may have `audit.refusal_budget` of them recorded one by one per interval of
//! `audit.summary_interval_seconds`; beyond that its refusals are counted ([`Counted`]: counts
//! by type and outcome, the first and last request id, the first and last time), and at the end
//! of the interval one `refusal_summary` record per uid says what was counted. The agent also
//! writes the summaries when it stops.
//!
//! Never summarized: the records of administrators ([`Admins`]: root, the agent's own uid,
//! members of `ipc.admin_group`), and every record that is not a refusal (grants, revocations,
//! validations that passed, secret access, reloads, start and stop).
//!
//! All non-administrators together have [`TOTAL_BUDGETS`] budgets of records one by one per
//! interval, and at most [`MAX_SUMMARIZED_UIDS`] uids get a summary of their own; the refusals
//! of further uids are counted together into one more (a local user can have many uids: the
//! 65,536 subordinate uids of a rootless container). So records and memory stay bounded
//! whatever the number of uids: at most that many budget entries and counts, each count holding
//! at most two request ids, and the distinct further uids (a few bytes each, at most 65,536).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::event::{AuditEvent, AuditIdentity, EventType, Outcome, RefusalSummary};

/// Who is an administrator, as `Shared::is_admin` says: root, the agent's own uid, and members
/// of `ipc.admin_group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admins {
    /// The agent's own uid.
    pub agent_uid: u32,
    /// The gid of `ipc.admin_group`.
    pub admin_gid: Option<u32>,
}

impl Admins {
    /// Whether `id` is an administrator.
    pub fn include(&self, id: &AuditIdentity) -> bool {
        id.uid == 0
            || id.uid == self.agent_uid
            || self
                .admin_gid
                .is_some_and(|g| id.gid == g || id.groups.contains(&g))
    }
}

/// Whether `ev` is a refusal: a record anyone can cause without any permission.
pub fn is_refusal(ev: &AuditEvent) -> bool {
    matches!(
        (ev.kind, ev.outcome),
        (EventType::CapabilityRequest, Outcome::Denied)
            | (EventType::CapabilityValidation, Outcome::Invalid)
            | (EventType::CapabilityRevocation, Outcome::Rejected)
            | (EventType::ConnectionRejected, _)
            | (EventType::CredentialDelivery, Outcome::Denied)
    )
}

/// `"TYPE OUTCOME"`, as a summary counts it.
fn kind_key(ev: &AuditEvent) -> String {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    format!(
        "{} {}",
        name(serde_json::to_value(ev.kind)),
        name(serde_json::to_value(ev.outcome))
    )
}

/// Refusals of all non-administrators together recorded one by one per interval, in
/// `audit.refusal_budget`s: a local user with many uids (the 65,536 subordinate uids of a
/// rootless container) gets no more records than ten uids.
pub const TOTAL_BUDGETS: u32 = 10;
/// Uids with a summary of their own per interval; the refusals of any further uids are counted
/// together, in one summary without an identity that says how many uids they were.
pub const MAX_SUMMARIZED_UIDS: usize = 64;
/// Distinct further uids counted exactly (beyond, the summary says "at least").
const MAX_COUNTED_OTHER_UIDS: usize = 65_536;

/// The refusals of one uid (or of the further uids together) counted, not recorded one by one,
/// since the last summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The uid (and gid and user name) of the first counted refusal; `None` for peers whose
    /// identity could not be read, and for the further uids together.
    pub identity: Option<AuditIdentity>,
    /// For the further uids together: how many distinct uids.
    pub uids: Option<u64>,
    /// Counts by `"TYPE OUTCOME"`.
    pub counts: BTreeMap<String, u64>,
    /// The sum of `counts`.
    pub total: u64,
    /// The first request id seen.
    pub first_request_id: Option<String>,
    /// When the first was decided.
    pub first_time: String,
    /// The last request id seen.
    pub last_request_id: Option<String>,
    /// When the last was decided.
    pub last_time: String,
}

impl Counted {
    fn first(ev: &AuditEvent) -> Counted {
        Counted {
            identity: ev.identity.as_ref().map(|i| AuditIdentity {
                uid: i.uid,
                gid: i.gid,
                pid: None,
                user: i.user.clone(),
                unit: None,
                exe: None,
                unverified: Vec::new(),
                groups: Vec::new(),
            }),
            uids: None,
            counts: BTreeMap::new(),
            total: 0,
            first_request_id: None,
            first_time: ev.timestamp.clone(),
            last_request_id: None,
            last_time: ev.timestamp.clone(),
        }
    }

    /// Counts `ev`, taking its request id (a counted refusal's record is not written, so its
    /// id is moved here rather than copied; at most two are kept).
    fn add(&mut self, ev: &mut AuditEvent) {
        *self.counts.entry(kind_key(ev)).or_insert(0) += 1;
        self.total += 1;
        if let Some(id) = ev.request_id.take() {
            if self.first_request_id.is_none() {
                self.first_request_id = Some(id);
            } else {
                self.last_request_id = Some(id);
            }
        }
        self.last_time = ev.timestamp.clone();
    }

    /// `self` followed by `newer`, as one count.
    fn then(mut self, newer: Counted) -> Counted {
        for (k, n) in newer.counts {
            *self.counts.entry(k).or_insert(0) += n;
        }
        self.total += newer.total;
        self.uids = match (self.uids, newer.uids) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut newer_ids = [newer.first_request_id, newer.last_request_id]
            .into_iter()
            .flatten();
        if self.first_request_id.is_none() {
            self.first_request_id = newer_ids.next();
        }
        if let Some(last) = newer_ids.last() {
            self.last_request_id = Some(last);
        }
        self.last_time = newer.last_time;
        self
    }

    /// The last request id seen: the last one kept, else the first.
    fn last_id(&self) -> Option<&String> {
        self.last_request_id
            .as_ref()
            .or(self.first_request_id.as_ref())
    }
}

/// Per-uid budgets and counts (plain data; the audit writer owns it and ends each interval).
/// Bounded whatever the number of uids: budgets are tracked only while the total budget lasts
/// (at most [`TOTAL_BUDGETS`] × budget entries), counts for at most [`MAX_SUMMARIZED_UIDS`]
/// uids plus one for the others (whose distinct uids are remembered up to 65,536, a few bytes
/// each), each count holding at most two request ids.
#[derive(Debug)]
pub struct Aggregator {
    budget: u32,
    period_seconds: u64,
    /// Refusals of all non-administrators recorded one by one in this interval.
    recorded_total: u32,
    /// Refusals recorded one by one in this interval, by uid.
    recorded: HashMap<Option<u32>, u32>,
    /// Refusals counted since the last summary, by uid.
    counted: HashMap<Option<u32>, Counted>,
    /// The refusals of uids beyond [`MAX_SUMMARIZED_UIDS`], together.
    others: Option<Counted>,
    /// Their distinct uids.
    other_uids: HashSet<Option<u32>>,
}

impl Aggregator {
    /// `budget` refusals per uid recorded one by one per interval of `period_seconds` (and
    /// [`TOTAL_BUDGETS`] times that for all uids together); 0 = all.
    pub fn new(budget: u32, period_seconds: u64) -> Aggregator {
        Aggregator {
            budget,
            period_seconds,
            recorded_total: 0,
            recorded: HashMap::new(),
            counted: HashMap::new(),
            others: None,
            other_uids: HashSet::new(),
        }
    }

    /// Whether `ev` is to be written: `false` when it is a non-administrator's refusal beyond
    /// its uid's budget or the total budget, which is then counted for the next summary (its
    /// request id moved into the count).
    pub fn admit(&mut self, ev: &mut AuditEvent, admins: &Admins) -> bool {
        if self.budget == 0
            || !is_refusal(ev)
            || ev.identity.as_ref().is_some_and(|i| admins.include(i))
        {
            return true;
        }
        let uid = ev.identity.as_ref().map(|i| i.uid);
        if self.recorded_total < self.budget.saturating_mul(TOTAL_BUDGETS) {
            let n = self.recorded.entry(uid).or_insert(0);
            if *n < self.budget {
                *n += 1;
                self.recorded_total += 1;
                return true;
            }
        }
        if let Some(c) = self.counted.get_mut(&uid) {
            c.add(ev);
        } else if self.counted.len() < MAX_SUMMARIZED_UIDS {
            let mut c = Counted::first(ev);
            c.add(ev);
            self.counted.insert(uid, c);
        } else {
            if self.other_uids.len() < MAX_COUNTED_OTHER_UIDS {
                self.other_uids.insert(uid);
            }
            let others = self.others.get_or_insert_with(|| Counted {
                identity: None,
                ..Counted::first(ev)
            });
            others.uids = Some(self.other_uids.len() as u64);
            others.add(ev);
        }
        false
    }

    /// Ends the interval: every budget is whole again, and what was counted is handed out (by
    /// uid, the further uids last) to be written as summaries.
    pub fn end_interval(&mut self) -> Vec<Counted> {
        self.recorded_total = 0;
        self.recorded.clear();
        self.other_uids.clear();
        let mut out: Vec<Counted> = self.counted.drain().map(|(_, c)| c).collect();
        out.sort_by_key(|c| c.identity.as_ref().map(|i| i.uid));
        out.extend(self.others.take());
        out
    }

    /// Takes back counts whose summaries could not be written, before anything counted since.
    pub fn restore(&mut self, batch: Vec<Counted>) {
        for c in batch {
            if c.uids.is_some() {
                self.others = Some(match self.others.take() {
                    Some(newer) => c.then(newer),
                    None => c,
                });
            } else {
                let uid = c.identity.as_ref().map(|i| i.uid);
                let merged = match self.counted.remove(&uid) {
                    Some(newer) => c.then(newer),
                    None => c,
                };
                self.counted.insert(uid, merged);
            }
        }
    }

    /// Refusals counted and not yet handed out.
    pub fn pending(&self) -> u64 {
        self.counted
            .values()
            .chain(self.others.as_ref())
            .map(|c| c.total)
            .sum()
    }

    /// The `refusal_summary` record of `c`.
    pub fn summary_event(&self, c: &Counted) -> AuditEvent {
        let mut ev = AuditEvent::new(EventType::RefusalSummary, Outcome::Rejected);
        ev.identity = c.identity.clone();
        let who = match (&c.identity, c.uids) {
            (_, Some(n)) if n as usize >= MAX_COUNTED_OTHER_UIDS => {
                format!(
                    "at least {n} further uids (beyond the {MAX_SUMMARIZED_UIDS} summarized one by one)"
                )
            }
            (_, Some(n)) => {
                format!("{n} further uids (beyond the {MAX_SUMMARIZED_UIDS} summarized one by one)")
            }
            (Some(i), None) => format!("uid {}", i.uid),
            (None, None) => "peers without a readable identity".to_string(),
        };
        let counts: Vec<String> = c.counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        ev.reason = Some(format!(
            "{} refusals of {who} beyond the audit budget of {} per {} s were counted, not recorded one by one ({})",
            c.total,
            self.budget,
            self.period_seconds,
            counts.join(", ")
        ));
        ev.summary = Some(RefusalSummary {
            budget: self.budget,
            counts: c.counts.clone(),
            first_request_id: c.first_request_id.clone(),
            first_time: c.first_time.clone(),
            last_request_id: c.last_id().cloned(),
            last_time: c.last_time.clone(),
            period_seconds: self.period_seconds,
            total: c.total,
            uids: c.uids,
        });
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PeerIdentity;

    const ADMINS: Admins = Admins {
        agent_uid: 990,
        admin_gid: Some(50),
    };

    fn denial(uid: u32, id: &str) -> AuditEvent {
        AuditEvent::new(EventType::CapabilityRequest, Outcome::Denied)
            .by(&PeerIdentity::bare(uid, uid))
            .request(id)
    }

    #[test]
    fn what_is_a_refusal() {
        let r = |kind, outcome| is_refusal(&AuditEvent::new(kind, outcome));
        assert!(r(EventType::CapabilityRequest, Outcome::Denied));
        assert!(r(EventType::CapabilityValidation, Outcome::Invalid));
        assert!(r(EventType::CapabilityRevocation, Outcome::Rejected));
        assert!(r(EventType::ConnectionRejected, Outcome::Rejected));
        assert!(r(EventType::CredentialDelivery, Outcome::Denied));
        assert!(!r(EventType::CredentialDelivery, Outcome::Success));
        assert!(!r(EventType::CredentialDelivery, Outcome::Failure));
        assert!(!r(EventType::CapabilityRequest, Outcome::Granted));
        assert!(!r(EventType::CapabilityRequest, Outcome::Failure));
        assert!(!r(EventType::CapabilityValidation, Outcome::Valid));
        assert!(!r(EventType::CapabilityRevocation, Outcome::Revoked));
        assert!(!r(EventType::SecretAccess, Outcome::Rejected));
        assert!(!r(EventType::PolicyReload, Outcome::Failure));
        assert!(!r(EventType::RefusalSummary, Outcome::Rejected));
    }

    #[test]
    fn beyond_the_budget_refusals_are_counted_with_first_and_last() {
        let mut a = Aggregator::new(2, 10);
        assert!(a.admit(&mut denial(1000, "m1"), &ADMINS));
        assert!(a.admit(&mut denial(1000, "m2"), &ADMINS));
        assert!(!a.admit(&mut denial(1000, "m3"), &ADMINS));
        let mut v = AuditEvent::new(EventType::CapabilityValidation, Outcome::Invalid)
            .by(&PeerIdentity::bare(1000, 1000));
        v.timestamp = "2030-01-01T00:00:00Z".into();
        assert!(!a.admit(&mut v, &ADMINS), "no request id");
        assert!(!a.admit(&mut denial(1000, "m5"), &ADMINS));
        assert!(
            a.admit(&mut denial(1001, "x1"), &ADMINS),
            "another uid's budget"
        );
        assert_eq!(a.pending(), 3);
        let batch = a.end_interval();
        assert_eq!(batch.len(), 1);
        let c = &batch[0];
        assert_eq!(c.identity.as_ref().unwrap().uid, 1000);
        assert_eq!(c.total, 3);
        assert_eq!(c.counts["capability_request denied"], 2);
        assert_eq!(c.counts["capability_validation invalid"], 1);
        assert_eq!(
            (c.first_request_id.as_deref(), c.last_request_id.as_deref()),
            (Some("m3"), Some("m5"))
        );
        assert_eq!(a.pending(), 0);
        assert!(a.admit(&mut denial(1000, "m6"), &ADMINS), "a new interval");
        let ev = a.summary_event(c);
        assert_eq!(ev.kind, EventType::RefusalSummary);
        let s = ev.summary.as_ref().unwrap();
        assert_eq!((s.total, s.budget, s.period_seconds), (3, 2, 10));
        assert!(ev.reason.unwrap().starts_with("3 refusals of uid 1000"));
    }

    #[test]
    fn administrators_and_other_records_are_never_counted() {
        let mut a = Aggregator::new(1, 10);
        for _ in 0..10 {
            assert!(a.admit(&mut denial(0, "root"), &ADMINS));
            assert!(a.admit(&mut denial(990, "agent"), &ADMINS));
            let mut member = PeerIdentity::bare(1234, 1234);
            member.groups = vec![7, 50];
            let mut ev =
                AuditEvent::new(EventType::ConnectionRejected, Outcome::Rejected).by(&member);
            assert!(a.admit(&mut ev, &ADMINS), "an admin_group member");
            let mut grant = AuditEvent::new(EventType::CapabilityRequest, Outcome::Granted)
                .by(&PeerIdentity::bare(1000, 1000));
            assert!(a.admit(&mut grant, &ADMINS));
        }
        assert_eq!(a.pending(), 0);
        // Budget 0: nothing is counted, everything is recorded.
        let mut a = Aggregator::new(0, 10);
        assert!((0..100).all(|_| a.admit(&mut denial(1000, "m"), &ADMINS)));
    }

    #[test]
    fn counts_that_could_not_be_written_come_back_first() {
        let mut a = Aggregator::new(1, 10);
        a.admit(&mut denial(1000, "a1"), &ADMINS);
        a.admit(&mut denial(1000, "a2"), &ADMINS);
        a.admit(&mut denial(1000, "a3"), &ADMINS);
        let failed = a.end_interval();
        a.admit(&mut denial(1000, "b1"), &ADMINS);
        a.admit(&mut denial(1000, "b2"), &ADMINS);
        a.restore(failed);
        assert_eq!(a.pending(), 3);
        let batch = a.end_interval();
        let c = &batch[0];
        assert_eq!(c.total, 3);
        assert_eq!(
            (c.first_request_id.as_deref(), c.last_request_id.as_deref()),
            (Some("a2"), Some("b2"))
        );
    }

    #[test]
    fn many_uids_get_no_more_records_and_no_more_memory_than_a_few() {
        // The 10,000 subordinate uids of a rootless container, three refusals each.
        let mut a = Aggregator::new(2, 10);
        let mut written = 0u64;
        for uid in 100_000..110_000u32 {
            for _ in 0..3 {
                if a.admit(&mut denial(uid, &format!("u{uid}")), &ADMINS) {
                    written += 1;
                }
            }
        }
        assert_eq!(written, 2 * u64::from(TOTAL_BUDGETS), "the total budget");
        assert_eq!(a.recorded.len(), TOTAL_BUDGETS as usize);
        assert_eq!(a.counted.len(), MAX_SUMMARIZED_UIDS);
        assert_eq!(a.pending(), 30_000 - written, "nothing dropped");
        let batch = a.end_interval();
        assert_eq!(batch.len(), MAX_SUMMARIZED_UIDS + 1);
        assert_eq!(batch.iter().map(|c| c.total).sum::<u64>(), 30_000 - written);
        let others = batch.last().unwrap();
        assert_eq!(others.uids, Some(10_000 - MAX_SUMMARIZED_UIDS as u64));
        assert!(others.identity.is_none());
        assert_eq!(
            (
                others.first_request_id.as_deref(),
                others.last_id().map(String::as_str)
            ),
            (Some("u100064"), Some("u109999"))
        );
        let ev = a.summary_event(others);
        assert!(ev.identity.is_none());
        assert_eq!(ev.summary.as_ref().unwrap().uids, Some(9_936));
        assert!(
            ev.reason.unwrap().contains("9936 further uids"),
            "summarized"
        );
        assert!(
            a.recorded.is_empty() && a.other_uids.is_empty(),
            "all forgotten"
        );
        assert!(
            a.admit(&mut denial(100_000, "again"), &ADMINS),
            "a new interval"
        );
    }
}
