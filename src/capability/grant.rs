//! From a request and a policy decision to the terms of a grant.
//!
//! TTL: the request's, else the mode's default; a request above the mode's maximum is denied
//! with a message naming the maximum; a granting rule's `max_ttl` lowers it further. Uses: the
//! request's, else `capability_engine.max_uses` (0 there means unlimited), never above that
//! value when it is set, and never above a granting rule's `max_uses`.

use crate::policy::Decision;
use crate::protocol::types::CapabilityRequest;

/// The limits of the mode and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLimits {
    /// TTL when none is asked, seconds.
    pub default_ttl: u64,
    /// Largest TTL that may be asked, seconds.
    pub max_ttl: u64,
    /// Uses when none are asked, and the most that may be; 0 = unlimited.
    pub max_uses: u64,
    /// The issuer name.
    pub issuer: String,
}

impl From<&crate::config::CapabilityEngineConfig> for GrantLimits {
    fn from(c: &crate::config::CapabilityEngineConfig) -> Self {
        GrantLimits {
            default_ttl: c.default_ttl,
            max_ttl: c.max_ttl,
            max_uses: c.max_uses,
            issuer: c.issuer.clone(),
        }
    }
}

/// The terms a grant gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantPlan {
    /// Lifetime, seconds.
    pub ttl: u64,
    /// Uses; 0 = unlimited.
    pub max_uses: u64,
}

/// The terms for a granted request, or the reason to deny it (a TTL above the maximum).
pub fn plan_grant(
    req: &CapabilityRequest,
    limits: &GrantLimits,
    decision: &Decision,
) -> Result<GrantPlan, String> {
    let asked_ttl = req.ttl.filter(|t| *t > 0).map(|t| t as u64);
    if let Some(t) = asked_ttl {
        if t > limits.max_ttl {
            return Err(format!(
                "requested TTL of {t} seconds exceeds the maximum of {} seconds",
                limits.max_ttl
            ));
        }
    }
    let mut ttl = asked_ttl.unwrap_or(limits.default_ttl);
    if let Some(cap) = decision.max_ttl {
        ttl = ttl.min(cap);
    }
    let mut uses = match req.max_uses.filter(|u| *u > 0).map(|u| u as u64) {
        Some(u) if limits.max_uses > 0 => u.min(limits.max_uses),
        Some(u) => u,
        None => limits.max_uses,
    };
    if let Some(cap) = decision.max_uses.filter(|c| *c > 0) {
        uses = if uses == 0 { cap } else { uses.min(cap) };
    }
    Ok(GrantPlan {
        ttl,
        max_uses: uses,
    })
}

/// The `message` of a grant: `Capability granted`, or, when a rule's `max_ttl` made it shorter
/// than the TTL asked, `Capability granted for N seconds, not the M asked: the max_ttl of rule
/// P/R` (so a client can tell the caller instead of shortening silently).
pub fn grant_message(req: &CapabilityRequest, plan: &GrantPlan, decision: &Decision) -> String {
    match req.ttl.filter(|t| *t > 0).map(|t| t as u64) {
        Some(asked) if plan.ttl < asked => {
            let limit = match &decision.max_ttl_rule {
                Some(rule) => format!("the max_ttl of rule {rule} ({} seconds)", plan.ttl),
                None => format!("the agent's limit of {} seconds", plan.ttl),
            };
            format!(
                "Capability granted for {} seconds, not the {asked} asked: {limit}",
                plan.ttl
            )
        }
        _ => "Capability granted".to_string(),
    }
}

/// When a grant of `ttl` seconds made at `now` expires; `None` when that is past the last time
/// the agent can represent (the configuration keeps TTLs far below that, but a client must
/// never be able to panic the registry with one).
pub fn expiry(now: jiff::Timestamp, ttl: u64) -> Option<jiff::Timestamp> {
    let secs = i64::try_from(ttl).ok()?;
    now.checked_add(jiff::SignedDuration::from_secs(secs)).ok()
}

/// The capability type upstream derives from the actions. An action pattern counts as every
/// action it covers (`d*` as `delete`), so the type is never milder than what was granted.
pub fn derive_type(actions: &[String]) -> &'static str {
    // A plain action is compared as it is; only a pattern is compiled (once per question).
    let has = |names: &[&str]| {
        actions.iter().any(|a| {
            if crate::resource::is_pattern(a) {
                let p = crate::policy::selector::Pattern::new(a);
                names.iter().any(|n| p.matches(n))
            } else {
                names.contains(&a.as_str())
            }
        })
    };
    if has(&["admin", "*"]) {
        "admin"
    } else if has(&["delete"]) {
        "delete"
    } else if has(&["write", "create", "update"]) {
        "write"
    } else if has(&["execute", "run"]) {
        "execute"
    } else {
        "read"
    }
}

/// A fresh capability id: `cap_` and 128 random bits in hex.
pub fn new_capability_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let mut id = String::with_capacity(36);
    id.push_str("cap_");
    id.push_str(&hex::encode(bytes));
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GrantLimits {
        GrantLimits {
            default_ttl: 300,
            max_ttl: 3600,
            max_uses: 100,
            issuer: "i".into(),
        }
    }
    fn decision(max_ttl: Option<u64>, max_uses: Option<u64>) -> Decision {
        Decision {
            allowed: true,
            applied_policies: vec![],
            applied_rules: vec![],
            reasoning: String::new(),
            max_ttl,
            max_ttl_rule: max_ttl.map(|_| "p/short".to_string()),
            max_uses,
            generation: 1,
        }
    }
    fn req(ttl: Option<i64>, uses: Option<i64>) -> CapabilityRequest {
        CapabilityRequest {
            resource: "secret:/r".into(),
            actions: vec!["read".into()],
            ttl,
            max_uses: uses,
            ..Default::default()
        }
    }

    #[test]
    fn ttl_defaults_caps_and_denies_above_max() {
        let d = decision(None, None);
        assert_eq!(
            plan_grant(&req(None, None), &limits(), &d).unwrap().ttl,
            300
        );
        assert_eq!(
            plan_grant(&req(Some(0), None), &limits(), &d).unwrap().ttl,
            300
        );
        assert_eq!(
            plan_grant(&req(Some(3600), None), &limits(), &d)
                .unwrap()
                .ttl,
            3600
        );
        let e = plan_grant(&req(Some(3601), None), &limits(), &d).unwrap_err();
        assert!(e.contains("3600"), "{e}");
        assert_eq!(
            plan_grant(&req(Some(600), None), &limits(), &decision(Some(60), None))
                .unwrap()
                .ttl,
            60
        );
    }

    #[test]
    fn a_shortened_grant_names_the_rule() {
        let d = decision(Some(60), None);
        let r = req(Some(600), None);
        let plan = plan_grant(&r, &limits(), &d).unwrap();
        assert_eq!(
            grant_message(&r, &plan, &d),
            "Capability granted for 60 seconds, not the 600 asked: the max_ttl of rule p/short (60 seconds)"
        );
        for r in [req(Some(60), None), req(Some(30), None), req(None, None)] {
            let plan = plan_grant(&r, &limits(), &d).unwrap();
            assert_eq!(grant_message(&r, &plan, &d), "Capability granted");
        }
    }

    #[test]
    fn uses_default_cap_and_unlimited() {
        let d = decision(None, None);
        assert_eq!(
            plan_grant(&req(None, None), &limits(), &d)
                .unwrap()
                .max_uses,
            100
        );
        assert_eq!(
            plan_grant(&req(None, Some(5)), &limits(), &d)
                .unwrap()
                .max_uses,
            5
        );
        assert_eq!(
            plan_grant(&req(None, Some(500)), &limits(), &d)
                .unwrap()
                .max_uses,
            100
        );
        let unlimited = GrantLimits {
            max_uses: 0,
            ..limits()
        };
        assert_eq!(
            plan_grant(&req(None, None), &unlimited, &d)
                .unwrap()
                .max_uses,
            0
        );
        assert_eq!(
            plan_grant(&req(None, Some(500)), &unlimited, &d)
                .unwrap()
                .max_uses,
            500
        );
        assert_eq!(
            plan_grant(&req(None, None), &unlimited, &decision(None, Some(3)))
                .unwrap()
                .max_uses,
            3
        );
        assert_eq!(
            plan_grant(&req(None, Some(50)), &limits(), &decision(None, Some(3)))
                .unwrap()
                .max_uses,
            3
        );
    }

    #[test]
    fn expiry_never_overflows() {
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(
            expiry(now, 60),
            Some(jiff::Timestamp::from_second(1_700_000_060).unwrap())
        );
        for huge in [u64::MAX, i64::MAX as u64, 1 << 40, 300_000_000_000] {
            assert_eq!(expiry(now, huge), None, "{huge}");
        }
        assert!(expiry(now, crate::config::MAX_TTL_LIMIT).is_some());
    }

    #[test]
    fn types_as_upstream() {
        let t = |a: &[&str]| derive_type(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["read"]), "read");
        assert_eq!(t(&["read", "write"]), "write");
        assert_eq!(t(&["create"]), "write");
        assert_eq!(t(&["write", "delete"]), "delete");
        assert_eq!(t(&["run"]), "execute");
        assert_eq!(t(&["read", "*"]), "admin");
        assert_eq!(t(&["list"]), "read");
        assert_eq!(t(&["d*"]), "delete");
        assert_eq!(t(&["wr?te"]), "write");
        assert_eq!(t(&["re*"]), "read");
    }

    #[test]
    fn ids_have_128_random_bits() {
        let a = new_capability_id().unwrap();
        let b = new_capability_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 32);
        assert!(a.starts_with("cap_") && a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
