//! The label values the metrics may carry: every one a `&'static str` from a fixed set, so
//! that no client can create a series. Message types come from the known set
//! ([`RequestType::ALL`], anything else is `unknown`), outcomes from [`RequestOutcome`], and
//! decisions from the audit event's own enums. Never a resource, uid, capability id or any
//! other string a client chose.

use crate::audit::{EventType, Outcome};
use crate::protocol::{ErrorCode, RequestType};
use crate::secrets::SecretError;

/// The `type` label of a request: its wire name, or `unknown` for a frame whose type could not
/// be read or is not one this agent knows.
pub fn message_type(kind: Option<RequestType>) -> &'static str {
    kind.map_or("unknown", RequestType::as_str)
}

/// How a request ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Answered with the message's own response (a policy denial inside a
    /// `capability_response` included: `decisions_total` counts those; an error inside one,
    /// `AUDIT_UNAVAILABLE` or `STORE_UNAVAILABLE`, is [`RequestOutcome::Error`]).
    Ok,
    /// `PERMISSION_DENIED`: an admin message from someone else.
    Denied,
    /// The request could not be read or its payload is invalid.
    Invalid,
    /// Refused for a reason of the capability or secret asked about (not found, revoked,
    /// expired, used up, constraint, …).
    Refused,
    /// The agent could not do it: audit, store or secrets backend unavailable, internal error.
    Error,
}

impl RequestOutcome {
    /// Every outcome, in the order they are documented.
    pub const ALL: [RequestOutcome; 5] = [
        RequestOutcome::Ok,
        RequestOutcome::Denied,
        RequestOutcome::Invalid,
        RequestOutcome::Refused,
        RequestOutcome::Error,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Denied => "denied",
            RequestOutcome::Invalid => "invalid",
            RequestOutcome::Refused => "refused",
            RequestOutcome::Error => "error",
        }
    }

    /// The outcome an `error_response` with `code` means.
    pub fn of_error(code: ErrorCode) -> RequestOutcome {
        use ErrorCode as C;
        match code {
            C::PermissionDenied => RequestOutcome::Denied,
            C::RequestTooLarge
            | C::MalformedRequest
            | C::UnknownMessageType
            | C::InvalidRequest
            | C::InvalidPayload => RequestOutcome::Invalid,
            C::AuditUnavailable
            | C::StoreUnavailable
            | C::BackendUnavailable
            | C::BackendDenied
            | C::BackendMisconfigured
            | C::InternalError => RequestOutcome::Error,
            _ => RequestOutcome::Refused,
        }
    }
}

/// The `event` label of a decision.
pub fn event(kind: EventType) -> &'static str {
    match kind {
        EventType::CapabilityRequest => "capability_request",
        EventType::CapabilityValidation => "capability_validation",
        EventType::CapabilityRevocation => "capability_revocation",
        EventType::PolicyEvaluation => "policy_evaluation",
        EventType::PolicyReload => "policy_reload",
        EventType::AgentStart => "agent_start",
        EventType::AgentStop => "agent_stop",
        EventType::ConnectionRejected => "connection_rejected",
        EventType::SecretAccess => "secret_access",
        EventType::RefusalSummary => "refusal_summary",
        EventType::CredentialDelivery => "credential_delivery",
    }
}

/// The `outcome` label of a decision.
pub fn decision(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Granted => "granted",
        Outcome::Denied => "denied",
        Outcome::Valid => "valid",
        Outcome::Invalid => "invalid",
        Outcome::Revoked => "revoked",
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Rejected => "rejected",
    }
}

/// The `outcome` label of a secrets backend call.
pub fn secret_result<T>(result: &Result<T, SecretError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(SecretError::NotFound(_)) => "not_found",
        Err(SecretError::Invalid(_)) => "invalid",
        Err(SecretError::Unavailable(_)) => "unavailable",
        Err(SecretError::Denied(_)) => "denied",
        Err(SecretError::Misconfigured(_)) => "misconfigured",
        Err(SecretError::Storage(_)) => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_from_a_fixed_set() {
        assert_eq!(message_type(None), "unknown");
        for (i, o) in RequestOutcome::ALL.into_iter().enumerate() {
            assert_eq!(o as usize, i, "the metrics index outcomes by their order");
        }
        for t in RequestType::ALL {
            assert_eq!(message_type(Some(t)), t.as_str());
        }
        assert_eq!(
            RequestOutcome::of_error(ErrorCode::PermissionDenied),
            RequestOutcome::Denied
        );
        assert_eq!(
            RequestOutcome::of_error(ErrorCode::UnknownMessageType),
            RequestOutcome::Invalid
        );
        assert_eq!(
            RequestOutcome::of_error(ErrorCode::Expired),
            RequestOutcome::Refused
        );
        assert_eq!(
            RequestOutcome::of_error(ErrorCode::AuditUnavailable),
            RequestOutcome::Error
        );
        assert_eq!(
            secret_result::<()>(&Err(SecretError::NotFound("x".into()))),
            "not_found"
        );
    }
}
