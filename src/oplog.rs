//! Operational log records for the decisions the audit log records, with structured fields
//! for journald: `AV_EVENT`, `AV_OUTCOME`, `AV_DECISION`, `AV_UID`, `AV_PID`, `AV_UNIT`,
//! `AV_RESOURCE`, `AV_CAPABILITY_ID`, `AV_POLICY_GENERATION`, `AV_REQUEST_ID`, and a fixed
//! `MESSAGE_ID` per kind of event (see [`message_id`]), so `journalctl MESSAGE_ID=…` finds them.
//! Credential deliveries and refusals have their own form ([`credential`]).
//!
//! Priorities: routine successes (a grant, a valid capability, a secret read or listed) are
//! informational (debug level), denials, refusals and secret writes and deletes are notices
//! (info level), a failed reload or an unrecordable decision is
//! an error. Journald rate-limits and drops under load by design; the audit log is the record of
//! decisions, this is for operators. Signatures and keys are never logged.
//!
//! Text a client chose (a resource, a reason, a request or capability id) goes through
//! [`clean`] before it reaches a log line or a journald field, so that it cannot start a line
//! of its own, or pass for one of the agent's messages.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::audit::{AuditEvent, EventType, Outcome};

/// Whether `c` must not reach a log as itself: control characters (line breaks, escape
/// sequences), Unicode line and paragraph separators, and the bidirectional controls that can
/// make a line read as something else.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every character [`needs_escape`] written as `\u{…}`; borrowed when there is
/// none (almost always).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The journald `MESSAGE_ID` of each kind of event.
pub fn message_id(kind: EventType) -> &'static str {
    match kind {
        EventType::CapabilityRequest => "ee6fb2ffd9ef443284590a7d0c167059",
        EventType::CapabilityValidation => "f7b2e311d37243b2a25b57d03b32ba52",
        EventType::CapabilityRevocation => "395f99d6d28b4efdb62d990e518ac428",
        EventType::PolicyEvaluation => "165763a7457147a8b5d62577b054f4f8",
        EventType::PolicyReload => "ca6ebcf9ccd940f2903a515085d8b647",
        EventType::AgentStart => "7d27c8c3342445b891b3c7c943b0dd54",
        EventType::AgentStop => "6c85bcd20a6442a7b6b18e4bd18d1dd6",
        EventType::ConnectionRejected => "e12aeb8250cc474e91faed432d5fd011",
        EventType::SecretAccess => "dae65361f0e7463cb7bb542fa4142d37",
        EventType::RefusalSummary => "cac2875dc92b41219037436babf2253d",
        EventType::CredentialDelivery => CREDENTIAL_DELIVERED,
    }
}

/// The journald `MESSAGE_ID` of a systemd credential delivered to a unit's start.
pub const CREDENTIAL_DELIVERED: &str = "753cd20bf1f447d3a55823d491529281";

/// The journald `MESSAGE_ID` of a systemd credential refused (denied, or its value could not
/// be had): the unit's start fails, and this entry says which unit, which credential and why,
/// which systemd's own message cannot. See [`credential`].
pub const CREDENTIAL_REFUSED: &str = "71a1c7180d1f4704b4798ed6421bbe48";

/// The tracing target of credential deliveries and refusals, let through at info level
/// whatever `log_level` says (see [`crate::logging`]).
pub const CREDENTIALS_TARGET: &str = "aether_vault_credentials";

/// Logs a `credential_delivery` record for operators, with `MESSAGE_ID`
/// [`CREDENTIAL_DELIVERED`] (info) or [`CREDENTIAL_REFUSED`] (a warning when denied, an error
/// when the value could not be had), and the fields `AV_CREDENTIAL_UNIT`, `AV_CREDENTIAL_ID`,
/// `AV_RESOURCE`, `AV_OUTCOME`, `AV_REASON`, `AV_UID`, `AV_PID` and `AV_POLICY_GENERATION`.
pub fn credential(ev: &AuditEvent) {
    let id = ev.identity.as_ref();
    let unit = ev.credential.as_ref().map(|c| clean(&c.unit));
    let cred = ev.credential.as_ref().map(|c| clean(&c.id));
    let resource = ev.resource.as_deref().map(clean);
    let reason = ev.reason.as_deref().map(clean);
    let what = match (&unit, &cred) {
        (Some(u), Some(c)) => format!("credential {c} of unit {u}"),
        _ => "a credential request".to_string(),
    };
    macro_rules! log_credential {
        ($level:ident, $message_id:expr, $verb:expr) => {
            tracing::$level!(
                target: "aether_vault_credentials",
                message_id = $message_id,
                av_event = "credential_delivery",
                av_outcome = name(&ev.outcome).as_str(),
                av_credential_unit = unit.as_deref(),
                av_credential_id = cred.as_deref(),
                av_resource = resource.as_deref(),
                av_reason = reason.as_deref(),
                av_uid = id.map(|i| i.uid),
                av_pid = id.and_then(|i| i.pid),
                av_policy_generation = ev.policy_generation,
                "{what}: {}",
                reason.as_deref().unwrap_or($verb),
            )
        };
    }
    match ev.outcome {
        Outcome::Success => log_credential!(info, CREDENTIAL_DELIVERED, "delivered"),
        Outcome::Failure => log_credential!(error, CREDENTIAL_REFUSED, "refused"),
        _ => log_credential!(warn, CREDENTIAL_REFUSED, "refused"),
    }
}

/// The journald `MESSAGE_ID` of an audit seal ([`seal`]).
pub const AUDIT_SEAL_MESSAGE_ID: &str = "976ab5590c7c48b799fa2c2256f12900";

/// Logs a seal of the audit chain (see [`crate::audit::seal`]) with its own `MESSAGE_ID` and
/// fields `AV_SEAL_LOG`, `AV_SEAL_SEQ`, `AV_SEAL_HASH`, `AV_SEAL_REASON`,
/// `AV_SEAL_SIGNATURE` and `AV_SEAL` (the signed line, which `audit verify` reads back). Its
/// target, `aether_vault_seal`, is always let through at info level, whatever `log_level`
/// says (see [`crate::logging`]).
pub fn seal(seal: &crate::audit::seal::Seal, line: &str, signature: &str) {
    tracing::info!(
        target: "aether_vault_seal",
        message_id = AUDIT_SEAL_MESSAGE_ID,
        av_seal_log = seal.log.as_str(),
        av_seal_seq = seal.seq,
        av_seal_hash = seal.hash.as_str(),
        av_seal_reason = seal.reason.as_str(),
        av_seal_signature = signature,
        av_seal = line,
        "audit chain sealed at seq {} ({})",
        seal.seq,
        seal.reason.as_str(),
    );
}

/// The journald `MESSAGE_ID` of a file or directory the agent refused to use (and therefore
/// did not start): see [`file_refused`].
pub const FILE_REFUSED: &str = "d2f268b47433441c88c4bd2c2317e9f9";

/// Logs a refused file at error level with `MESSAGE_ID` [`FILE_REFUSED`], `AV_FILE` (the path)
/// and `AV_FIX` (the command that fixes it), so `journalctl MESSAGE_ID=…` finds why the agent
/// did not start.
pub fn file_refused(e: &crate::trust::FileError) {
    tracing::error!(
        message_id = FILE_REFUSED,
        av_file = %e.path.display(),
        av_fix = e.fix.as_deref(),
        "{e}"
    );
}

/// How loud an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loudness {
    /// Routine: journald priority informational.
    Routine,
    /// Worth noticing: priority notice.
    Notice,
    /// Something is wrong: priority error.
    Error,
}

/// The loudness of an event.
pub fn loudness(ev: &AuditEvent) -> Loudness {
    match ev.outcome {
        Outcome::Failure => Loudness::Error,
        Outcome::Granted | Outcome::Valid => Loudness::Routine,
        Outcome::Denied | Outcome::Invalid | Outcome::Rejected | Outcome::Revoked => {
            Loudness::Notice
        }
        Outcome::Success => match ev.kind {
            EventType::PolicyEvaluation => Loudness::Routine,
            // A read or list changed nothing, as a valid validation did not: routine. A write
            // or delete changed a secret: a notice.
            EventType::SecretAccess if only_looked(ev) => Loudness::Routine,
            _ => Loudness::Notice,
        },
    }
}

/// Whether a `secret_access` only read: every action is `read` or `list` (and there is one).
fn only_looked(ev: &AuditEvent) -> bool {
    !ev.actions.is_empty() && ev.actions.iter().all(|a| a == "read" || a == "list")
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

macro_rules! emit {
    ($level:ident, $ev:expr) => {{
        let ev = $ev;
        let id = ev.identity.as_ref();
        let resource = ev.resource.as_deref().map(clean);
        let reason = ev.reason.as_deref().map(clean);
        tracing::$level!(
            message_id = message_id(ev.kind),
            av_event = name(&ev.kind).as_str(),
            av_outcome = name(&ev.outcome).as_str(),
            av_decision = name(&ev.outcome).as_str(),
            av_uid = id.map(|i| i.uid),
            av_pid = id.and_then(|i| i.pid),
            av_unit = id.and_then(|i| i.unit.as_deref()).map(clean).as_deref(),
            av_resource = resource.as_deref(),
            av_capability_id = ev.capability_id.as_deref().map(clean).as_deref(),
            av_policy_generation = ev.policy_generation,
            av_request_id = ev.request_id.as_deref().map(clean).as_deref(),
            "{} {}{}{}",
            name(&ev.kind),
            name(&ev.outcome),
            resource
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
        )
    }};
}

/// Logs one audited event for operators.
pub fn event(ev: &AuditEvent) {
    if ev.kind == EventType::CredentialDelivery {
        return credential(ev);
    }
    match loudness(ev) {
        Loudness::Routine => emit!(debug, ev),
        Loudness::Notice => emit!(info, ev),
        Loudness::Error => emit!(error, ev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_distinct_128_bit_hex() {
        let kinds = [
            EventType::CapabilityRequest,
            EventType::CapabilityValidation,
            EventType::CapabilityRevocation,
            EventType::PolicyEvaluation,
            EventType::PolicyReload,
            EventType::AgentStart,
            EventType::AgentStop,
            EventType::ConnectionRejected,
            EventType::SecretAccess,
            EventType::RefusalSummary,
            EventType::CredentialDelivery,
        ];
        let mut ids: std::collections::HashSet<&str> =
            kinds.iter().map(|k| message_id(*k)).collect();
        ids.insert(AUDIT_SEAL_MESSAGE_ID);
        ids.insert(FILE_REFUSED);
        ids.insert(CREDENTIAL_REFUSED);
        assert_eq!(ids.len(), kinds.len() + 3);
        assert!(
            ids.iter()
                .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn client_text_cannot_break_a_line() {
        assert!(matches!(clean("secret:/db/primary"), Cow::Borrowed(_)));
        assert_eq!(
            clean("x\nINFO forged\r\u{1b}[2J\u{2028}\u{202e}é"),
            "x\\u{a}INFO forged\\u{d}\\u{1b}[2J\\u{2028}\\u{202e}é"
        );
    }

    #[test]
    fn denials_are_notices_and_failures_errors() {
        let l = |kind, outcome| loudness(&AuditEvent::new(kind, outcome));
        assert_eq!(
            l(EventType::CapabilityRequest, Outcome::Denied),
            Loudness::Notice
        );
        assert_eq!(
            l(EventType::CapabilityRequest, Outcome::Granted),
            Loudness::Routine
        );
        assert_eq!(
            l(EventType::PolicyReload, Outcome::Failure),
            Loudness::Error
        );
        assert_eq!(
            l(EventType::PolicyReload, Outcome::Success),
            Loudness::Notice
        );
    }

    #[test]
    fn secret_reads_are_routine_and_changes_notices() {
        let access = |action: &str, outcome| {
            let mut ev = AuditEvent::new(EventType::SecretAccess, outcome);
            ev.actions = vec![action.to_string()];
            loudness(&ev)
        };
        assert_eq!(access("read", Outcome::Success), Loudness::Routine);
        assert_eq!(access("list", Outcome::Success), Loudness::Routine);
        assert_eq!(access("write", Outcome::Success), Loudness::Notice);
        assert_eq!(access("delete", Outcome::Success), Loudness::Notice);
        assert_eq!(access("read", Outcome::Rejected), Loudness::Notice);
        assert_eq!(access("read", Outcome::Failure), Loudness::Error);
        let none = AuditEvent::new(EventType::SecretAccess, Outcome::Success);
        assert_eq!(loudness(&none), Loudness::Notice, "no action: not a read");
    }
}
