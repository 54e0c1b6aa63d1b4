//! `capability request|validate|revoke|list|status`: building the requests from flags, the
//! exit code each answer maps to, and the table form of each answer.

use serde_json::{Value, json};

use super::args::{CapabilityCommand, ListArgs, RequestArgs, RevokeArgs, ValidateArgs};
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format, KeyValues, columns, human_nanos};
use crate::protocol::RequestType;
use crate::protocol::types::{
    Capability, CapabilityFilter, CapabilityRequest, CapabilityResponse, Constraints, ListRequest,
    ListResponse, PingResponse, RequestContext, RevokeRequest, RevokeResponse, StatusResponse,
    ValidateRequest, ValidationResult,
};

/// What `capability revoke` prints in table format: exactly this line.
pub const REVOKED_LINE: &str = "Capability revoked successfully\n";

/// Runs a `capability` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &CapabilityCommand) -> Result<Outcome, CliError> {
    match command {
        CapabilityCommand::Request(args) => request(ctx, args),
        CapabilityCommand::Validate(args) => validate(ctx, args),
        CapabilityCommand::Revoke(args) => revoke(ctx, args),
        CapabilityCommand::List(args) => list(ctx, args),
        CapabilityCommand::Status => status(ctx),
    }
}

fn request(ctx: &mut Context<'_>, args: &RequestArgs) -> Result<Outcome, CliError> {
    let req = build_request(args)?;
    ctx.debug(&format!(
        "request: {}",
        serde_json::to_string(&req).unwrap_or_default()
    ));
    let mut session = ctx.connect()?;
    let (resp, raw): (CapabilityResponse, Value) =
        session.exchange(RequestType::CapabilityRequest, &req)?;
    let outcome = request_outcome(&resp);
    match &outcome {
        Ok(Outcome::Success) => {
            if let Some(path) = &args.output {
                output::write_private_file(path, output::json(&raw).as_bytes())?;
                ctx.debug(&format!("wrote {}", path.display()));
            }
            let verbose = ctx.verbose;
            ctx.print(&output::render(ctx.format, &raw, || {
                grant_table(&resp, verbose)
            }))?;
        }
        Ok(Outcome::Negative | Outcome::Child(_)) => {
            ctx.print(&output::render(ctx.format, &raw, || denial_table(&resp)))?;
        }
        Err(_) if ctx.format != Format::Table => {
            ctx.print(&output::render(ctx.format, &raw, String::new))?
        }
        Err(_) => {}
    }
    outcome
}

fn validate(ctx: &mut Context<'_>, args: &ValidateArgs) -> Result<Outcome, CliError> {
    let context = match &args.context {
        Some(text) => Some(parse_typed::<RequestContext>("--context", text)?),
        None => None,
    };
    let req = ValidateRequest {
        capability_id: args.id.clone(),
        context,
    };
    let mut session = ctx.connect()?;
    let (result, raw): (ValidationResult, Value) =
        session.exchange(RequestType::CapabilityValidate, &req)?;
    ctx.print(&output::render(ctx.format, &raw, || {
        validation_table(&args.id, &result)
    }))?;
    Ok(if result.valid {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

fn revoke(ctx: &mut Context<'_>, args: &RevokeArgs) -> Result<Outcome, CliError> {
    let req = RevokeRequest {
        capability_id: args.id.clone(),
        reason: args.reason.clone(),
        revoked_by: None,
    };
    let mut session = ctx.connect()?;
    let (resp, raw): (RevokeResponse, Value) =
        session.exchange(RequestType::CapabilityRevoke, &req)?;
    if resp.status != "revoked" {
        return Err(CliError::Failed(format!(
            "the agent did not revoke {}: {}",
            args.id, resp.message
        )));
    }
    ctx.print(&output::render(ctx.format, &raw, || {
        REVOKED_LINE.to_string()
    }))?;
    Ok(Outcome::Success)
}

fn list(ctx: &mut Context<'_>, args: &ListArgs) -> Result<Outcome, CliError> {
    let req = ListRequest {
        filter: build_filter(args),
    };
    let mut session = ctx.connect()?;
    let (resp, raw): (ListResponse, Value) = session.exchange(RequestType::CapabilityList, &req)?;
    if ctx.format == Format::Table && resp.count < resp.total {
        ctx.note(&format!(
            "showing {} of {} capabilities",
            resp.count, resp.total
        ));
    }
    ctx.print(&output::render(ctx.format, &raw, || list_table(&resp)))?;
    Ok(Outcome::Success)
}

fn status(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let mut session = ctx.connect()?;
    let (ping, _): (PingResponse, Value) =
        session.exchange(RequestType::PingRequest, &Value::Null)?;
    let (status, _): (StatusResponse, Value) =
        session.exchange(RequestType::StatusRequest, &Value::Null)?;
    let summary = status_summary(&session.path().display().to_string(), &ping, &status);
    ctx.print(&output::render(ctx.format, &summary, || {
        status_table(&summary)
    }))?;
    Ok(Outcome::Success)
}

/// Builds the `capability_request` payload from the flags.
pub fn build_request(args: &RequestArgs) -> Result<CapabilityRequest, CliError> {
    let constraints = match &args.constraints {
        Some(text) => Some(parse_typed::<Constraints>("--constraints", text)?),
        None => None,
    };
    let context = match &args.context {
        Some(text) => Some(parse_json("--context", text)?),
        None => None,
    };
    Ok(CapabilityRequest {
        identity: args.identity.clone().unwrap_or_default(),
        resource: canonical_resource(&args.resource)?,
        actions: normalize_actions(&args.actions)?,
        ttl: args.ttl,
        max_uses: args.max_uses,
        constraints,
        context,
        purpose: args.purpose.clone(),
    })
}

/// The canonical spelling of a resource a user typed (`secret://db` → `secret:/db`), as the
/// agent requires it; an error when it has none.
pub fn canonical_resource(text: &str) -> Result<String, CliError> {
    let canonical = crate::resource::canonicalize(text)
        .map_err(|why| CliError::Input(format!("resource {text:?} {why}")))?;
    crate::resource::check_request_resource(&canonical)
        .map_err(|e| CliError::Input(e.to_string()))?;
    Ok(canonical)
}

/// The actions from `--action` values (already split on commas): trimmed, empty ones dropped,
/// duplicates dropped, order kept. At least one must remain.
pub fn normalize_actions(values: &[String]) -> Result<Vec<String>, CliError> {
    let mut actions: Vec<String> = Vec::new();
    for a in values.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        if !actions.iter().any(|x| x == a) {
            actions.push(a.to_string());
        }
    }
    if actions.is_empty() {
        return Err(CliError::Input(
            "--action needs at least one action, e.g. --action read".into(),
        ));
    }
    Ok(actions)
}

/// Parses a flag's JSON value.
pub fn parse_json(flag: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text)
        .map_err(|e| CliError::Input(format!("{flag} is not valid JSON: {e}")))
}

/// Parses a flag's JSON value into the payload type it must fit.
pub fn parse_typed<T: serde::de::DeserializeOwned>(flag: &str, text: &str) -> Result<T, CliError> {
    let value = parse_json(flag, text)?;
    serde_json::from_value(value)
        .map_err(|e| CliError::Input(format!("{flag} is not acceptable: {e}")))
}

/// The `capability_list` filter from the flags; `None` when no flag narrows the list.
pub fn build_filter(args: &ListArgs) -> Option<CapabilityFilter> {
    let filter = CapabilityFilter {
        identity: args.identity.clone(),
        resource: args.resource.clone(),
        kind: args.kind.map(|k| k.as_str().to_string()),
        status: args.status.map(|s| s.as_str().to_string()),
        issuer: args.issuer.clone(),
        uid: args.uid,
        limit: args.limit,
        offset: args.offset,
    };
    (filter != CapabilityFilter::default()).then_some(filter)
}

/// The exit code an answer to `capability_request` maps to: granted → 0, denied → 2; anything
/// else (`error`, or a status this client does not know) is an error, exit 1.
pub fn request_outcome(resp: &CapabilityResponse) -> Result<Outcome, CliError> {
    match resp.status.as_str() {
        "granted" if resp.capability.is_some() => Ok(Outcome::Success),
        "granted" => Err(CliError::Failed(
            "the agent granted the request but sent no capability".into(),
        )),
        "denied" => Ok(Outcome::Negative),
        other => {
            let mut msg = if resp.message.is_empty() {
                format!("the request failed (status {other:?})")
            } else {
                resp.message.clone()
            };
            if let Some(code) = resp.code {
                msg.push_str(&format!(" ({code})"));
            }
            Err(CliError::Failed(msg))
        }
    }
}

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

/// Table form of a list: a header and one row per capability.
pub fn list_table(resp: &ListResponse) -> String {
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
    columns(
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
    )
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
    .row("socket", s("socket_path"))
    .row(
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
    kv.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use crate::protocol::types::{PolicyResult, ValidationIssue};

    fn args(actions: &[&str]) -> RequestArgs {
        RequestArgs {
            resource: "secret:/db".into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            ttl: Some(60),
            max_uses: None,
            identity: None,
            purpose: Some("test".into()),
            constraints: None,
            context: None,
            output: None,
        }
    }

    fn capability() -> Capability {
        serde_json::from_value(json!({
            "id":"cap_0123","type":"read","resource":"secret:/db","actions":["read","write"],
            "identity":"app","issuer":"aether-vault-agent","issued_at":"2026-01-01T00:00:00Z",
            "expires_at":"2026-01-01T00:01:00Z","ttl":60,"maxUses":0,"usedCount":2,
            "signature":"sig","metadata":{"purpose":"nightly"},"status":"active",
            "holder":{"uid":1000,"gid":1000,"user":"alice"}
        }))
        .unwrap()
    }

    fn response(status: &str) -> CapabilityResponse {
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
    fn request_exit_codes() {
        assert_eq!(request_outcome(&response("granted")).unwrap().code(), 0);
        assert_eq!(request_outcome(&response("denied")).unwrap().code(), 2);
        let e = request_outcome(&response("error")).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "Capability error (INTERNAL_ERROR)");
        let mut odd = response("granted");
        odd.capability = None;
        assert_eq!(request_outcome(&odd).unwrap_err().exit_code(), 1);
        assert_eq!(
            request_outcome(&response("maybe")).unwrap_err().exit_code(),
            1
        );
    }

    #[test]
    fn actions_are_trimmed_deduplicated_and_required() {
        let a =
            normalize_actions(&["read".into(), " write".into(), "".into(), "read".into()]).unwrap();
        assert_eq!(a, vec!["read", "write"]);
        assert!(normalize_actions(&["".into(), " ".into()]).is_err());
    }

    #[test]
    fn request_payload_from_flags() {
        let mut a = args(&["read", "write"]);
        a.constraints = Some(r#"{"ipAddresses":["10.0.0.0/8"]}"#.into());
        a.context = Some(r#"{"job":"export"}"#.into());
        let req = build_request(&a).unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"identity":"","resource":"secret:/db","actions":["read","write"],"ttl":60,
                   "constraints":{"ipAddresses":["10.0.0.0/8"]},"context":{"job":"export"},
                   "purpose":"test"})
        );
    }

    #[test]
    fn bad_json_flags_are_input_errors() {
        let mut a = args(&["read"]);
        a.constraints = Some("{nope".into());
        let e = build_request(&a).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--constraints is not valid JSON: "),
            "{e}"
        );
        a.constraints = Some(r#"{"ipAdresses":[]}"#.into());
        let e = build_request(&a).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--constraints is not acceptable: "),
            "{e}"
        );
        let mut a = args(&["read"]);
        a.context = Some("[1,".into());
        assert!(
            build_request(&a)
                .unwrap_err()
                .to_string()
                .starts_with("--context is not valid JSON: ")
        );
        assert!(parse_typed::<RequestContext>("--context", "42").is_err());
    }

    #[test]
    fn filter_is_absent_unless_narrowed() {
        let mut l = ListArgs {
            status: None,
            resource: None,
            identity: None,
            kind: None,
            issuer: None,
            uid: None,
            limit: None,
            offset: None,
        };
        assert_eq!(build_filter(&l), None);
        l.status = Some(super::super::args::StatusFilter::Active);
        l.limit = Some(3);
        assert_eq!(
            serde_json::to_value(build_filter(&l)).unwrap(),
            json!({"status":"active","limit":3})
        );
    }

    #[test]
    fn revoke_table_is_exactly_the_line() {
        let raw = json!({"status":"revoked","message":"Capability revoked successfully",
                         "capability_id":"cap_1","revoked_at":"2026-01-01T00:00:00Z"});
        assert_eq!(
            output::render(Format::Table, &raw, || REVOKED_LINE.to_string()),
            "Capability revoked successfully\n"
        );
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
        let t = list_table(&resp);
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
        assert_eq!(list_table(&empty).lines().count(), 1);
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
    }
}
