//! The table forms of capability answers: a grant, a denial, a validation result, a list
//! (with or without its header, and a line when it is empty), one capability, and the
//! `capability status` summary.

use serde_json::{Value, json};

use super::output::{KeyValues, columns, human_nanos};
use crate::protocol::types::{
    Capability, CapabilityResponse, ListResponse, PingResponse, StatusResponse, ValidationResult,
};

fn uses(c: &Capability) -> String {
    match c.max_uses {
        0 => format!("{}/unlimited", c.used_count),
        max => format!("{}/{max}", c.used_count),
    }
}

fn holder(c: &Capability) -> Option<String> {
    c.holder.as_ref().map(|h| match &h.user {
        Some(user) => format!("{user} (uid {}, gid {})", h.uid, h.gid),
        None => format!("uid {}, gid {}", h.uid, h.gid),
    })
}

fn capability_rows(kv: &mut KeyValues, c: &Capability) {
    kv.row("id", &c.id)
        .row("type", &c.kind)
        .row("resource", &c.resource)
        .row("actions", c.actions.join(","))
        .row("identity", &c.identity)
        .opt("status", c.status.as_deref())
        .row("issued_at", &c.issued_at)
        .row("expires_at", &c.expires_at)
        .row("ttl", format!("{}s", c.ttl))
        .row("uses", uses(c))
        .opt("holder", holder(c))
        .row("issuer", &c.issuer);
    if let Some(p) = c.metadata.get("purpose").and_then(Value::as_str) {
        kv.row("purpose", p);
    }
    if let Some(cons) = &c.constraints {
        kv.row(
            "constraints",
            serde_json::to_string(cons).unwrap_or_default(),
        );
    }
}

fn policy_rows(kv: &mut KeyValues, resp: &CapabilityResponse) {
    if let Some(p) = &resp.policy_result {
        kv.row("decision", &p.decision);
        if !p.applied_policies.is_empty() {
            kv.row("policies", p.applied_policies.join(", "));
        }
        if !p.applied_rules.is_empty() {
            kv.row("rules", p.applied_rules.join(", "));
        }
        kv.row("reasoning", &p.reasoning);
    }
}

/// Table form of a grant: the capability's fields, the id first; with `verbose`, also the
/// policy decision.
pub fn grant_table(resp: &CapabilityResponse, verbose: bool) -> String {
    let mut kv = KeyValues::new();
    if let Some(c) = &resp.capability {
        capability_rows(&mut kv, c);
    }
    if verbose {
        policy_rows(&mut kv, resp);
        kv.row("processing_time", human_nanos(resp.processing_time));
    }
    kv.render()
}

/// Table form of a denial: the message, then the policy's reasoning.
pub fn denial_table(resp: &CapabilityResponse) -> String {
    let mut out = format!("Capability denied: {}\n", resp.message);
    let mut kv = KeyValues::new();
    policy_rows(&mut kv, resp);
    kv.opt("code", resp.code);
    out.push_str(&kv.render());
    out
}

/// Table form of a validation result.
pub fn validation_table(id: &str, result: &ValidationResult) -> String {
    let mut out = if result.valid {
        format!("Capability {id} is valid\n")
    } else {
        format!("Capability {id} is invalid\n")
    };
    for e in &result.errors {
        out.push_str(&format!("  error:   {}: {}\n", e.code, e.message));
    }
    for w in &result.warnings {
        out.push_str(&format!("  warning: {}: {}\n", w.code, w.message));
    }
    if let Some(n) = result.remaining_uses {
        out.push_str(&format!("  remaining uses: {n}\n"));
    }
    out
}

/// Table form of one capability (`capability show`): its fields, the id first.
pub fn capability_table(c: &Capability) -> String {
    let mut kv = KeyValues::new();
    capability_rows(&mut kv, c);
    kv.render()
}

/// Table form of a list: a header (unless `headers` is false) and one row per capability.
pub fn list_table(resp: &ListResponse, headers: bool) -> String {
    let rows: Vec<Vec<String>> = resp
        .capabilities
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.kind.clone(),
                c.status.clone().unwrap_or_else(|| "-".into()),
                c.resource.clone(),
                c.actions.join(","),
                c.expires_at.clone(),
                uses(c),
            ]
        })
        .collect();
    let table = columns(
        &[
            "ID",
            "TYPE",
            "STATUS",
            "RESOURCE",
            "ACTIONS",
            "EXPIRES_AT",
            "USED/MAX",
        ],
        &rows,
    );
    if headers {
        return table;
    }
    match table.split_once('\n') {
        Some((_, rest)) => rest.to_string(),
        None => String::new(),
    }
}

/// What `capability status` reports: reachability and counts, from a ping and a status answer.
pub fn status_summary(socket: &str, ping: &PingResponse, status: &StatusResponse) -> Value {
    json!({
        "reachable": true,
        "socket_path": socket,
        "server": ping.server,
        "version": status.version,
        "mode": status.mode,
        "uptime": status.uptime,
        "capabilities_active": status.capabilities_active,
        "connectionCount": status.connection_count,
        "max_connections": status.max_connections,
        "policy_generation": status.policy_generation,
        "policy_files": status.policy_files,
        "policy_rules": status.policy_rules,
        "policy_last_error": status.policy_last_error,
        "audit_healthy": status.audit_healthy,
        "secrets": status.secrets,
        "region": status.region,
        "capability_engine": status.capability_engine,
    })
}

/// Table form of [`status_summary`].
pub fn status_table(summary: &Value) -> String {
    let s = |k: &str| match &summary[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let mut kv = KeyValues::new();
    kv.row(
        "agent",
        format!(
            "reachable ({} {}, {} mode)",
            s("server"),
            s("version"),
            s("mode")
        ),
    )
    .row("socket", s("socket_path"));
    if let Some(r) = summary["region"].as_str() {
        kv.row("region", r);
    }
    kv.row(
        "uptime",
        human_nanos(summary["uptime"].as_u64().unwrap_or(0)),
    )
    .row("active capabilities", s("capabilities_active"))
    .row(
        "connections",
        format!("{} of {}", s("connectionCount"), s("max_connections")),
    )
    .row(
        "policy generation",
        format!(
            "{} ({} files, {} rules)",
            s("policy_generation"),
            s("policy_files"),
            s("policy_rules")
        ),
    );
    if let Some(e) = summary["policy_last_error"].as_str() {
        kv.row("policy error", e);
    }
    if let Some(engine) = engine_line(&summary["capability_engine"]) {
        kv.row("capability engine", engine);
    }
    kv.row(
        "audit",
        if summary["audit_healthy"] == false {
            "FAILING (requests are refused)"
        } else {
            "healthy"
        },
    );
    let secrets = &summary["secrets"];
    kv.row(
        "secrets",
        match (secrets["backend"].as_str(), secrets["healthy"].as_bool()) {
            (Some(b), Some(true)) => format!("{b}, healthy"),
            (Some(b), _) => match secrets["last_error"].as_str() {
                Some(e) => format!("{b}, FAILING: {e}"),
                None => format!("{b}, FAILING"),
            },
            (None, _) => "none configured".to_string(),
        },
    );
    kv.render()
}

/// The `capability_engine` section in one line: signing, TTLs, uses, what is held.
fn engine_line(engine: &Value) -> Option<String> {
    let n = |k: &str| engine[k].as_u64();
    let (default_ttl, max_ttl) = (n("default_ttl")?, n("max_ttl")?);
    let uses = match n("max_uses") {
        Some(0) | None => "unlimited uses".to_string(),
        Some(u) => format!("at most {u} uses"),
    };
    let held: Vec<String> = engine["held"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    Some(format!(
        "{}, issuer {}; ttl default {}, max {}; {uses}; held: {}",
        engine["signature_algorithm"].as_str().unwrap_or("?"),
        engine["issuer"].as_str().unwrap_or("?"),
        super::output::human_seconds(default_ttl),
        super::output::human_seconds(max_ttl),
        if held.is_empty() {
            "none".to_string()
        } else {
            held.join(", ")
        }
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use crate::protocol::types::{PolicyResult, ValidationIssue};

    pub(crate) fn capability() -> Capability {
        serde_json::from_value(json!({
            "id":"cap_0123","type":"read","resource":"secret:/db","actions":["read","write"],
            "identity":"app","issuer":"aether-vault-agent","issued_at":"2026-01-01T00:00:00Z",
            "expires_at":"2026-01-01T00:01:00Z","ttl":60,"maxUses":0,"usedCount":2,
            "signature":"sig","metadata":{"purpose":"nightly"},"status":"active",
            "holder":{"uid":1000,"gid":1000,"user":"alice"}
        }))
        .unwrap()
    }

    pub(crate) fn response(status: &str) -> CapabilityResponse {
        CapabilityResponse {
            capability: (status == "granted").then(capability),
            status: status.into(),
            message: format!("Capability {status}"),
            request_id: "msg_1".into(),
            processing_time: 1000,
            policy_result: Some(PolicyResult {
                decision: if status == "granted" {
                    "allow".into()
                } else {
                    "deny".into()
                },
                applied_policies: vec!["default".into()],
                applied_rules: vec!["default/r1".into()],
                reasoning: "no rule allows write".into(),
                evaluation_time: 10,
            }),
            code: (status == "error").then_some(ErrorCode::InternalError),
        }
    }

    #[test]
    fn grant_table_starts_with_the_id() {
        let t = grant_table(&response("granted"), false);
        let first = t.lines().next().unwrap();
        assert!(
            first.starts_with("id:") && first.ends_with("cap_0123"),
            "{t}"
        );
        assert!(t.contains("uses:        2/unlimited\n"), "{t}");
        assert!(t.contains("alice (uid 1000, gid 1000)"), "{t}");
        assert!(!t.contains("reasoning"));
        assert!(grant_table(&response("granted"), true).contains("reasoning:"));
    }

    #[test]
    fn one_capability_shows_its_fields() {
        let t = capability_table(&capability());
        assert!(t.starts_with("id:"), "{t}");
        assert!(t.contains("uses:") && t.contains("2/unlimited"), "{t}");
        assert!(t.contains("status:") && t.contains("active"), "{t}");
    }

    #[test]
    fn denial_table_gives_message_and_reasoning() {
        let t = denial_table(&response("denied"));
        assert!(
            t.starts_with("Capability denied: Capability denied\n"),
            "{t}"
        );
        assert!(t.contains("no rule allows write"), "{t}");
    }

    #[test]
    fn validation_tables() {
        let ok = ValidationResult {
            valid: true,
            errors: vec![],
            warnings: vec![],
            validation_time: 1,
            remaining_uses: Some(4),
        };
        assert_eq!(
            validation_table("cap_1", &ok),
            "Capability cap_1 is valid\n  remaining uses: 4\n"
        );
        let bad = ValidationResult {
            valid: false,
            errors: vec![ValidationIssue {
                code: ErrorCode::Expired,
                message: "expired at X".into(),
            }],
            ..ok
        };
        assert_eq!(
            validation_table("cap_1", &bad),
            "Capability cap_1 is invalid\n  error:   EXPIRED: expired at X\n  remaining uses: 4\n"
        );
    }

    #[test]
    fn list_table_has_a_header_and_a_row_each() {
        let resp = ListResponse {
            capabilities: vec![capability(), capability()],
            count: 2,
            total: 2,
        };
        let bare = list_table(&resp, false);
        assert_eq!(bare.lines().count(), 2, "{bare}");
        assert!(bare.starts_with("cap_0123  read  active"), "{bare}");
        let t = list_table(&resp, true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("USED/MAX"));
        assert!(
            lines[1].starts_with("cap_0123  read  active  secret:/db  read,write"),
            "{t}"
        );
        assert!(lines[1].ends_with("2/unlimited"));
        let empty = ListResponse {
            capabilities: vec![],
            count: 0,
            total: 0,
        };
        assert_eq!(list_table(&empty, true).lines().count(), 1);
        assert_eq!(list_table(&empty, false), "");
    }

    #[test]
    fn status_summary_and_table() {
        let status: StatusResponse = serde_json::from_value(json!({
            "version":"0.1.0","capabilities":["ping_request"],"uptime":3_723_000_000_000u64,
            "connectionCount":1,"mode":"development","socket_path":"/s","max_connections":200,
            "capabilities_active":3,"policy_generation":2,"policy_files":1,"policy_rules":4,
            "policy_loaded_at":"2026-01-01T00:00:00Z","policy_last_error":null,
            "policy_fallback":"deny","public_key":"k"
        }))
        .unwrap();
        let ping = PingResponse {
            message: "pong".into(),
            server: "aether-vault-agent".into(),
        };
        let v = status_summary("/s", &ping, &status);
        assert_eq!(v["capabilities_active"], 3);
        assert_eq!(v["connectionCount"], 1);
        let t = status_table(&v);
        assert!(t.starts_with("agent:"), "{t}");
        assert!(
            t.contains("reachable (aether-vault-agent 0.1.0, development mode)"),
            "{t}"
        );
        assert!(t.contains("1h 2m 3s"), "{t}");
        assert!(t.contains("2 (1 files, 4 rules)"), "{t}");
        assert!(!t.contains("policy error"));
        assert!(t.contains("audit:") && t.contains("healthy"), "{t}");
        assert!(t.contains("none configured"), "{t}");
    }
}
