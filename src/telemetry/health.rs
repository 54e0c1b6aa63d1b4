//! What "healthy" means, decided from a status answer: the audit log can be written, the
//! capability store's writer works, the secrets backend answers (when one is configured) and
//! the last policy load did not fail. `aether-vault agent health` and `GET /health` both use
//! [`assess`], so they always agree.

use serde::{Deserialize, Serialize};

use crate::protocol::types::StatusResponse;

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `audit`, `store`, `secrets` or `policy`.
    pub name: String,
    /// Whether it passed.
    pub healthy: bool,
    /// What was found, in words.
    pub detail: String,
}

/// Every check, and whether all passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// All checks passed.
    pub healthy: bool,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
}

fn check(name: &str, healthy: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        healthy,
        detail: detail.into(),
    }
}

/// The checks a status answer (public or with the admin detail) supports.
pub fn assess(s: &StatusResponse) -> HealthReport {
    let audit_error = s.detail.as_ref().and_then(|d| d.audit_last_error.clone());
    let checks = vec![
        if s.audit_healthy {
            check("audit", true, "records can be written")
        } else {
            check(
                "audit",
                false,
                audit_error.unwrap_or_else(|| {
                    "records cannot be written; requests are refused".to_string()
                }),
            )
        },
        if s.store_healthy {
            check("store", true, "the capability store can be written")
        } else {
            check(
                "store",
                false,
                s.store_error
                    .clone()
                    .unwrap_or_else(|| "the capability store cannot be written".to_string()),
            )
        },
        match &s.secrets {
            None => check("secrets", true, "no backend configured"),
            Some(h) if h.healthy => {
                check("secrets", true, format!("{} backend answers", h.backend))
            }
            Some(h) => check(
                "secrets",
                false,
                format!(
                    "{} backend: {}",
                    h.backend,
                    h.last_error.as_deref().unwrap_or("not answering")
                ),
            ),
        },
        match &s.policy_last_error {
            None => check(
                "policy",
                true,
                format!(
                    "generation {} ({} rules) in force",
                    s.policy_generation, s.policy_rules
                ),
            ),
            Some(e) => check(
                "policy",
                false,
                format!(
                    "the last load failed (generation {} stays in force): {e}",
                    s.policy_generation
                ),
            ),
        },
    ];
    HealthReport {
        healthy: checks.iter().all(|c| c.healthy),
        checks,
    }
}

/// One line per check: `audit: ok (records can be written)`, `secrets: FAILING: …`.
pub fn lines(r: &HealthReport) -> String {
    r.checks
        .iter()
        .map(|c| {
            if c.healthy {
                format!("{}: ok ({})\n", c.name, c.detail)
            } else {
                format!("{}: FAILING: {}\n", c.name, c.detail)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> StatusResponse {
        serde_json::from_value(serde_json::json!({
            "version":"0.1.0","capabilities":[],"uptime":1,"connectionCount":1,"mode":"standard",
            "socket_path":"/s","max_connections":100,"capabilities_active":0,"policy_generation":2,
            "policy_files":1,"policy_rules":3,"policy_loaded_at":"2026-01-01T00:00:00Z",
            "policy_last_error":null,"policy_fallback":"deny","public_key":"k"
        }))
        .unwrap()
    }

    #[test]
    fn any_failing_check_makes_the_agent_unhealthy() {
        let s = status();
        let r = assess(&s);
        assert!(r.healthy, "{r:?}");
        let names: Vec<_> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["audit", "store", "secrets", "policy"]);
        assert_eq!(
            lines(&r).lines().next(),
            Some("audit: ok (records can be written)")
        );

        let mut bad = s.clone();
        bad.audit_healthy = false;
        assert!(!assess(&bad).healthy);
        let mut bad = s.clone();
        bad.store_healthy = false;
        assert!(!assess(&bad).healthy);
        let mut bad = s.clone();
        bad.policy_last_error = Some("a.json: bad".into());
        let r = assess(&bad);
        assert!(!r.healthy);
        assert!(lines(&r).contains("policy: FAILING: the last load failed"));
        let mut bad = s;
        bad.secrets = Some(crate::secrets::BackendHealth {
            backend: "vault".into(),
            healthy: false,
            last_error: Some("connection refused".into()),
        });
        let r = assess(&bad);
        assert!(!r.healthy);
        assert!(
            lines(&r).contains("secrets: FAILING: vault backend: connection refused\n"),
            "{}",
            lines(&r)
        );
    }
}
