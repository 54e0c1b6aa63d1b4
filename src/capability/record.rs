//! A capability as the registry keeps it, and the validation checks.
//!
//! Validation order: exists (the registry's job) → holder (`NOT_HOLDER`, and nothing else is
//! revealed) → signature → revoked → expired → uses → constraints. A successful validation
//! counts one use.

use jiff::{SignedDuration, Timestamp};

use super::constraints::check_holds;
use super::signing::Signer;
use crate::protocol::ErrorCode;
use crate::protocol::types::{Capability, Holder, RequestContext, ValidationIssue};

/// How long an expired capability stays listable (as `expired`) before it is dropped.
pub const EXPIRED_RETENTION: SignedDuration = SignedDuration::from_hours(1);

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// When.
    pub at: Timestamp,
    /// Why, as given.
    pub reason: Option<String>,
    /// Who (verified uid).
    pub by_uid: u32,
}

/// Active, revoked or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapStatus {
    /// Usable.
    Active,
    /// Revoked (wins over expired).
    Revoked,
    /// Past `expires_at`.
    Expired,
}

impl CapStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CapStatus::Active => "active",
            CapStatus::Revoked => "revoked",
            CapStatus::Expired => "expired",
        }
    }
}

/// One capability in the registry.
#[derive(Debug, Clone)]
pub struct Record {
    /// The signed capability (its `status` and `holder` are filled only on the way out).
    pub cap: Capability,
    /// Who it was issued to.
    pub holder: Holder,
    /// `cap.expires_at`, parsed.
    pub expires_at: Timestamp,
    /// Set once revoked.
    pub revoked: Option<Revocation>,
}

impl Record {
    /// Status at `now`.
    pub fn status(&self, now: Timestamp) -> CapStatus {
        if self.revoked.is_some() {
            CapStatus::Revoked
        } else if now >= self.expires_at {
            CapStatus::Expired
        } else {
            CapStatus::Active
        }
    }

    /// The capability as shown to clients, with status and holder.
    pub fn to_wire(&self, now: Timestamp) -> Capability {
        let mut cap = self.cap.clone();
        cap.status = Some(self.status(now).as_str().to_string());
        cap.holder = Some(self.holder.clone());
        cap
    }

    /// Whether it has been expired long enough to drop.
    pub fn droppable(&self, now: Timestamp) -> bool {
        // An expiry within an hour of the last representable time is never dropped for age.
        self.expires_at
            .checked_add(EXPIRED_RETENTION)
            .is_ok_and(|t| now >= t)
    }

    /// Uses left after the current count; `None` when unlimited.
    pub fn remaining_uses(&self) -> Option<u64> {
        (self.cap.max_uses > 0).then(|| self.cap.max_uses.saturating_sub(self.cap.used_count))
    }
}

fn issue(code: ErrorCode, message: impl Into<String>) -> ValidationIssue {
    ValidationIssue {
        code,
        message: message.into(),
    }
}

/// Checks whether `caller_uid` may use the capability now. Does not count the use.
pub fn check(
    rec: &Record,
    caller_uid: u32,
    ctx: Option<&RequestContext>,
    now: Timestamp,
    signer: &Signer,
) -> Result<(), ValidationIssue> {
    if rec.holder.uid != caller_uid {
        return Err(issue(
            ErrorCode::NotHolder,
            "the capability was not issued to the caller",
        ));
    }
    if !signer.verify(&rec.cap, rec.holder.uid) {
        return Err(issue(
            ErrorCode::InvalidSignature,
            "the capability's signature does not verify",
        ));
    }
    if let Some(r) = &rec.revoked {
        return Err(issue(
            ErrorCode::Revoked,
            format!(
                "the capability was revoked at {}",
                crate::timefmt::rfc3339(r.at)
            ),
        ));
    }
    if now >= rec.expires_at {
        return Err(issue(
            ErrorCode::Expired,
            format!("the capability expired at {}", rec.cap.expires_at),
        ));
    }
    if rec.cap.max_uses > 0 && rec.cap.used_count >= rec.cap.max_uses {
        return Err(issue(
            ErrorCode::UsageLimitExceeded,
            format!(
                "all {} uses of the capability have been used",
                rec.cap.max_uses
            ),
        ));
    }
    if let Some(c) = &rec.cap.constraints {
        check_holds(c, ctx, now).map_err(|m| issue(ErrorCode::ConstraintViolation, m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn record(signer: &Signer, max_uses: u64, expires_in: i64) -> (Record, Timestamp) {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let exp = now + SignedDuration::from_secs(expires_in);
        let mut cap = Capability {
            id: "cap_1".into(),
            kind: "read".into(),
            resource: "secret:/db".into(),
            actions: vec!["read".into()],
            identity: "app".into(),
            issuer: "i".into(),
            issued_at: crate::timefmt::rfc3339(now),
            expires_at: crate::timefmt::rfc3339(exp),
            ttl: expires_in as u64,
            max_uses,
            used_count: 0,
            signature: String::new(),
            metadata: BTreeMap::new(),
            constraints: None,
            status: None,
            holder: None,
        };
        cap.signature = signer.sign(&cap, 1000);
        let holder = Holder {
            uid: 1000,
            gid: 1000,
            user: None,
            unit: None,
        };
        (
            Record {
                cap,
                holder,
                expires_at: exp,
                revoked: None,
            },
            now,
        )
    }

    fn code(r: Result<(), ValidationIssue>) -> Option<ErrorCode> {
        r.err().map(|i| i.code)
    }

    #[test]
    fn each_check_in_order() {
        let s = Signer::from_seed([1; 32]);
        let (mut rec, now) = record(&s, 2, 60);
        assert_eq!(code(check(&rec, 1000, None, now, &s)), None);
        assert_eq!(
            code(check(&rec, 1001, None, now, &s)),
            Some(ErrorCode::NotHolder)
        );
        let after = now + SignedDuration::from_secs(60);
        assert_eq!(
            code(check(&rec, 1000, None, after, &s)),
            Some(ErrorCode::Expired)
        );
        // The holder check comes first: a foreign caller learns nothing about expiry.
        assert_eq!(
            code(check(&rec, 1001, None, after, &s)),
            Some(ErrorCode::NotHolder)
        );
        rec.cap.used_count = 2;
        assert_eq!(
            code(check(&rec, 1000, None, now, &s)),
            Some(ErrorCode::UsageLimitExceeded)
        );
        rec.cap.used_count = 0;
        rec.revoked = Some(Revocation {
            at: now,
            reason: None,
            by_uid: 1000,
        });
        assert_eq!(
            code(check(&rec, 1000, None, now, &s)),
            Some(ErrorCode::Revoked)
        );
        assert_eq!(
            rec.status(after),
            CapStatus::Revoked,
            "revoked wins over expired"
        );
        rec.revoked = None;
        rec.cap.resource.push_str("/other");
        assert_eq!(
            code(check(&rec, 1000, None, now, &s)),
            Some(ErrorCode::InvalidSignature)
        );
    }

    #[test]
    fn constraints_are_checked_and_unlimited_never_runs_out() {
        let s = Signer::from_seed([1; 32]);
        let (mut rec, now) = record(&s, 0, 60);
        rec.cap.used_count = 1_000_000;
        rec.cap.constraints = Some(
            serde_json::from_value(serde_json::json!({"ipAddresses":["10.0.0.0/8"]})).unwrap(),
        );
        rec.cap.signature = s.sign(&rec.cap, 1000);
        assert_eq!(
            code(check(&rec, 1000, None, now, &s)),
            Some(ErrorCode::ConstraintViolation)
        );
        let ctx: RequestContext =
            serde_json::from_value(serde_json::json!({"ipAddress":"10.1.1.1"})).unwrap();
        assert_eq!(code(check(&rec, 1000, Some(&ctx), now, &s)), None);
        assert_eq!(rec.remaining_uses(), None);
    }

    #[test]
    fn retention() {
        let s = Signer::from_seed([1; 32]);
        let (rec, now) = record(&s, 1, 60);
        assert!(!rec.droppable(now + SignedDuration::from_secs(61)));
        assert_eq!(
            rec.status(now + SignedDuration::from_secs(61)),
            CapStatus::Expired
        );
        assert!(rec.droppable(now + SignedDuration::from_secs(60 + 3600)));
    }
}
