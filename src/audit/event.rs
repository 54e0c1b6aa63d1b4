//! One audit record.
//!
//! ```json
//! {"timestamp":"2026-11-23T10:00:00Z","type":"capability_request","outcome":"granted",
//!  "identity":{"uid":1000,"gid":1000,"pid":4242,"user":"alice","unit":"billing.service",
//!              "exe":"/usr/bin/billing"},
//!  "claimed_identity":"billing-app","resource":"secret:/db/primary","actions":["read"],
//!  "capability_id":"cap_…","request_id":"msg_1","rules":["default/allow-billing"],
//!  "reason":"granted: \"read\" is allowed by rule default/allow-billing","policy_generation":3}
//! ```
//! Signatures and key material never appear in a record. Long client-supplied values are cut
//! before a record is sealed ([`super::bound`]), and refusals beyond a uid's budget are counted
//! into `refusal_summary` records ([`super::summary`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::identity::{Attribute, PeerIdentity};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A capability was asked for (granted, denied or failed).
    CapabilityRequest,
    /// A capability was validated.
    CapabilityValidation,
    /// A capability was revoked (or a revocation refused).
    CapabilityRevocation,
    /// A policy was evaluated without issuing anything.
    PolicyEvaluation,
    /// The policy set was (re)loaded, or failed to.
    PolicyReload,
    /// The agent started serving.
    AgentStart,
    /// The agent stopped.
    AgentStop,
    /// A connection was refused (limits).
    ConnectionRejected,
    /// A secret was read, written, listed or deleted with a capability.
    SecretAccess,
    /// Refusals of one uid beyond its audit budget, counted instead of recorded one by one.
    RefusalSummary,
    /// A systemd credential was delivered to a unit's start, or refused.
    CredentialDelivery,
}

/// The result, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A capability was issued.
    Granted,
    /// Policy or limits refused it.
    Denied,
    /// Validation passed.
    Valid,
    /// Validation failed.
    Invalid,
    /// Revocation done.
    Revoked,
    /// Something went right (start, stop, reload).
    Success,
    /// Something failed (reload, request errors).
    Failure,
    /// The caller was refused.
    Rejected,
}

/// The verified identity, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditIdentity {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// pid, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// user name, if resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// systemd unit, if verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// executable, if verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Attributes that could not be verified (a deny rule testing one applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<Attribute>,
    /// Supplementary groups, not recorded: the audit writer needs them to know an
    /// administrator (`ipc.admin_group`), whose refusals are never summarized.
    #[serde(skip)]
    pub groups: Vec<u32>,
}

impl From<&PeerIdentity> for AuditIdentity {
    fn from(id: &PeerIdentity) -> Self {
        AuditIdentity {
            uid: id.uid,
            gid: id.gid,
            pid: id.pid,
            user: id.user.clone(),
            unit: id.unit.clone(),
            exe: id.exe.clone(),
            unverified: id.unverified.clone(),
            groups: id.groups.clone(),
        }
    }
}

/// What a `refusal_summary` record counts: the refusals of one uid in one interval beyond its
/// budget (`audit.refusal_budget`). Its fields are declared in sorted order (the canonical form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefusalSummary {
    /// Refusals recorded one by one per interval before counting began.
    pub budget: u32,
    /// Counts by `"TYPE OUTCOME"` (e.g. `"capability_request denied"`).
    pub counts: BTreeMap<String, u64>,
    /// The first counted refusal's request id, if any carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_request_id: Option<String>,
    /// When the first counted refusal was decided (RFC 3339).
    pub first_time: String,
    /// The last counted refusal's request id, if any carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<String>,
    /// When the last counted refusal was decided (RFC 3339).
    pub last_time: String,
    /// `audit.summary_interval_seconds`.
    pub period_seconds: u64,
    /// All the refusals counted (the sum of `counts`).
    pub total: u64,
    /// For the refusals of the uids beyond those summarized one by one, counted together: how
    /// many distinct uids they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uids: Option<u64>,
}

/// For a `credential_delivery`: the credential asked for, as the caller's address names it.
/// Its fields are declared in sorted order (the canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialRef {
    /// The credential id.
    pub id: String,
    /// The unit being started.
    pub unit: String,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When, RFC 3339 UTC.
    pub timestamp: String,
    /// What kind.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The result.
    pub outcome: Outcome,
    /// The verified caller, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<AuditIdentity>,
    /// The label the caller gave itself (never trusted, kept for the record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_identity: Option<String>,
    /// For a `credential_delivery`: the unit and credential id asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    /// The resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// The capability concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability_id: Option<String>,
    /// The request envelope's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Rules that decided, as `policy/rule`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Why, in words (or the error code and text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The policy generation that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_generation: Option<u64>,
    /// The agent's `region` label, when it has one: set by the audit writer on every record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// For secret access: the version read or written (never the value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// For a `refusal_summary`: what was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<RefusalSummary>,
}

impl AuditEvent {
    /// A record of `kind` with `outcome` now; fill the rest with the builder methods.
    pub fn new(kind: EventType, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            timestamp: crate::timefmt::now_rfc3339(),
            kind,
            outcome,
            identity: None,
            claimed_identity: None,
            credential: None,
            resource: None,
            actions: Vec::new(),
            capability_id: None,
            request_id: None,
            rules: Vec::new(),
            reason: None,
            policy_generation: None,
            region: None,
            version: None,
            summary: None,
        }
    }

    /// Sets the verified caller.
    pub fn by(mut self, id: &PeerIdentity) -> Self {
        self.identity = Some(id.into());
        self
    }

    /// Sets the request id.
    pub fn request(mut self, id: &str) -> Self {
        if !id.is_empty() {
            self.request_id = Some(id.to_string());
        }
        self
    }

    /// Sets the reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the capability id.
    pub fn capability(mut self, id: &str) -> Self {
        self.capability_id = Some(id.to_string());
        self
    }

    /// The record as the chain writes it, borrowing this event: the same JSON object as
    /// `serde_json::to_value(self)` plus the chain fields, with every key (nested ones too) in
    /// sorted order, so that serializing it directly gives the canonical form that
    /// [`crate::audit::chain::hash_of`] computes through a `Map`, without building one.
    /// It comes in two objects, the keys sorted before `hash` and those after it, so that the
    /// record can be serialized once, hashed, and `hash` put in between
    /// ([`crate::audit::chain::seal_into`]).
    pub fn canonical<'a>(
        &'a self,
        seq: u64,
        prev_hash: &'a str,
    ) -> (CanonicalBefore<'a>, CanonicalAfter<'a>) {
        let before = CanonicalBefore {
            actions: &self.actions,
            capability_id: self.capability_id.as_deref(),
            claimed_identity: self.claimed_identity.as_deref(),
            credential: self.credential.as_ref(),
        };
        let after = CanonicalAfter {
            identity: self.identity.as_ref().map(|i| CanonicalIdentity {
                exe: i.exe.as_deref(),
                gid: i.gid,
                pid: i.pid,
                uid: i.uid,
                unit: i.unit.as_deref(),
                unverified: &i.unverified,
                user: i.user.as_deref(),
            }),
            outcome: self.outcome,
            policy_generation: self.policy_generation,
            prev_hash,
            reason: self.reason.as_deref(),
            region: self.region.as_deref(),
            request_id: self.request_id.as_deref(),
            resource: self.resource.as_deref(),
            rules: &self.rules,
            seq,
            summary: self.summary.as_ref(),
            timestamp: &self.timestamp,
            kind: self.kind,
            version: self.version,
        };
        (before, after)
    }

    /// The record as one JSON line with its `\n`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}

/// The keys of a sealed record sorted before `hash`, in canonical order (see
/// [`AuditEvent::canonical`]). The fields here and in [`CanonicalAfter`] are declared sorted by
/// their JSON names; the test `canonical_form_is_the_sorted_map_form` holds them to that.
#[derive(Serialize)]
pub struct CanonicalBefore<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    actions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    capability_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claimed_identity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<&'a CredentialRef>,
}

/// The keys of a sealed record sorted after `hash` (see [`CanonicalBefore`]); never empty.
#[derive(Serialize)]
pub struct CanonicalAfter<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<CanonicalIdentity<'a>>,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_generation: Option<u64>,
    prev_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    rules: &'a [String],
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a RefusalSummary>,
    timestamp: &'a str,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

/// [`AuditIdentity`] in canonical key order.
#[derive(Serialize)]
struct CanonicalIdentity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    exe: Option<&'a str>,
    gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Attribute]>::is_empty")]
    unverified: &'a [Attribute],
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_the_upstream_type_names_and_no_empty_fields() {
        let mut id = PeerIdentity::bare(1000, 100);
        id.pid = Some(7);
        let e = AuditEvent::new(EventType::CapabilityRequest, Outcome::Granted)
            .by(&id)
            .request("msg_1")
            .capability("cap_x")
            .because("ok");
        let line = e.to_line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "capability_request");
        assert_eq!(v["outcome"], "granted");
        assert_eq!(v["identity"]["uid"], 1000);
        assert_eq!(v["identity"]["pid"], 7);
        assert!(v.get("resource").is_none() && v.get("rules").is_none());
    }
}
