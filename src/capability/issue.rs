//! The capability a grant issues, before it is signed: its fields from the request, the plan
//! and the clock, and the holder from the verified caller.
//!
//! Plain data; the `CapabilityRegistry` actor builds it on its event loop, has it signed off
//! the loop (an Ed25519 signature is most of a grant's CPU), then books and stores it.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::grant::{GrantPlan, derive_type};
use crate::identity::PeerIdentity;
use crate::protocol::types::{Capability, CapabilityRequest, Holder};

/// The capability `id` that `plan` grants for `request`, issued at `now` by `issuer`, expiring
/// at `expires`; its signature is empty.
pub fn unsigned(
    request: &CapabilityRequest,
    plan: &GrantPlan,
    id: String,
    issuer: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Capability {
    let mut metadata = BTreeMap::new();
    if let Some(p) = &request.purpose {
        metadata.insert("purpose".to_string(), serde_json::Value::String(p.clone()));
    }
    if let Some(c) = &request.context {
        metadata.insert("context".to_string(), c.clone());
    }
    Capability {
        id,
        kind: derive_type(&request.actions).to_string(),
        resource: request.resource.clone(),
        actions: request.actions.clone(),
        identity: request.identity.clone(),
        issuer: issuer.to_string(),
        issued_at: crate::timefmt::rfc3339(now),
        expires_at: crate::timefmt::rfc3339(expires),
        ttl: plan.ttl,
        max_uses: plan.max_uses,
        used_count: 0,
        signature: String::new(),
        metadata,
        constraints: request.constraints.clone(),
        status: None,
        holder: None,
    }
}

/// The holder of a capability granted to `identity`.
pub fn holder(identity: &PeerIdentity) -> Holder {
    Holder {
        uid: identity.uid,
        gid: identity.gid,
        user: identity.user.clone(),
        unit: identity.unit.clone(),
    }
}

/// Tests: an unsigned read capability `id` on `secret:/x`, issued at `issued` (Unix seconds)
/// for `ttl` seconds.
#[cfg(test)]
pub(crate) fn sample(id: &str, issued: i64, ttl: u64) -> Capability {
    let request = CapabilityRequest {
        resource: "secret:/x".into(),
        actions: vec!["read".into()],
        ..Default::default()
    };
    let plan = GrantPlan { ttl, max_uses: 0 };
    let now = Timestamp::from_second(issued).unwrap_or(Timestamp::UNIX_EPOCH);
    let expires = super::grant::expiry(now, ttl).unwrap_or(now);
    unsigned(&request, &plan, id.into(), "a", now, expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_request_plan_and_times_unsigned() {
        let request = CapabilityRequest {
            identity: "job".into(),
            resource: "secret:/db".into(),
            actions: vec!["read".into()],
            purpose: Some("backup".into()),
            context: Some(serde_json::json!({"ticket": 7})),
            ..Default::default()
        };
        let plan = GrantPlan {
            ttl: 60,
            max_uses: 3,
        };
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let expires = Timestamp::from_second(1_700_000_060).unwrap();
        let cap = unsigned(&request, &plan, "cap_x".into(), "agent", now, expires);
        assert_eq!(
            (cap.id.as_str(), cap.kind.as_str(), cap.issuer.as_str()),
            ("cap_x", "read", "agent")
        );
        assert_eq!((cap.ttl, cap.max_uses, cap.used_count), (60, 3, 0));
        assert_eq!(cap.issued_at, crate::timefmt::rfc3339(now));
        assert_eq!(cap.expires_at, crate::timefmt::rfc3339(expires));
        assert_eq!(cap.metadata["purpose"], "backup");
        assert_eq!(cap.metadata["context"]["ticket"], 7);
        assert!(cap.signature.is_empty() && cap.status.is_none() && cap.holder.is_none());
    }
}
