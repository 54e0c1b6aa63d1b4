//! A grant between its decision and its answer, for the `CapabilityRegistry` actor: the
//! capability waiting for its signature (made on the signing thread,
//! [`crate::capability::sign_worker`]) and what its answer will carry.

use std::time::Instant;

use jiff::Timestamp;

use super::registry::Decided;
use crate::audit::{AuditEvent, Outcome};
use crate::protocol::ErrorCode;
use crate::protocol::types::{Capability, CapabilityResponse, Holder, PolicyResult};

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Where a grant stands after its decision.
// Returned once per grant request and taken apart at once: boxing would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Step {
    /// Answered (denied, or failed).
    Done(Decided<CapabilityResponse>),
    /// Allowed and booked: this capability is to be signed, then issued.
    Sign(Capability, Box<Unsigned>),
}

/// The rest of an allowed grant while its capability is being signed.
pub(super) struct Unsigned {
    pub(super) holder: Holder,
    pub(super) expires: Timestamp,
    pub(super) now: Timestamp,
    pub(super) message: String,
    pub(super) policy_result: PolicyResult,
    pub(super) event: AuditEvent,
    pub(super) answer: Answer,
}

/// What every answer to a grant carries.
pub(super) struct Answer {
    pub(super) request_id: String,
    pub(super) received: Instant,
}

impl Answer {
    /// An answer without a capability, and its record.
    pub(super) fn decided(
        &self,
        status: &str,
        message: String,
        policy_result: PolicyResult,
        event: AuditEvent,
    ) -> Decided<CapabilityResponse> {
        Decided {
            answer: CapabilityResponse {
                capability: None,
                status: status.to_string(),
                message,
                request_id: self.request_id.clone(),
                processing_time: nanos(self.received),
                policy_result: Some(policy_result),
                code: None,
            },
            event,
            durable: None,
        }
    }

    /// An internal failure: nothing was granted.
    pub(super) fn failed(
        &self,
        why: &str,
        policy_result: PolicyResult,
        mut event: AuditEvent,
    ) -> Decided<CapabilityResponse> {
        event.outcome = Outcome::Failure;
        event.reason = Some(format!("internal error: {why}"));
        let mut d = self.decided(
            "error",
            "internal error; nothing was granted".into(),
            policy_result,
            event,
        );
        d.answer.code = Some(ErrorCode::InternalError);
        d
    }
}
