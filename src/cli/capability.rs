//! `capability request|validate|revoke|list|show|status`: building the requests from flags and
//! the exit code each answer maps to; the table forms are in [`super::capability_table`].

use serde_json::Value;

use super::args::{CapabilityCommand, ListArgs, RequestArgs, RevokeArgs, ShowArgs, ValidateArgs};
pub use super::capability_table::{
    capability_table, denial_table, grant_table, list_table, status_summary, status_table,
    validation_table,
};
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format};
use crate::protocol::RequestType;
use crate::protocol::types::{
    CapabilityFilter, CapabilityRequest, CapabilityResponse, Constraints, ListRequest,
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
        CapabilityCommand::Show(args) => show(ctx, args),
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
            if let Some(notice) = super::ttl::shortened_notice(args.ttl, &resp) {
                ctx.note(&notice);
            }
            let verbose = ctx.verbose;
            ctx.print(&output::render(ctx.format, &raw, || {
                grant_table(&resp, verbose)
            }))?;
        }
        Ok(Outcome::Negative | Outcome::Child(_) | Outcome::Unhealthy) => {
            ctx.print(&output::render(ctx.format, &raw, || denial_table(&resp)))?;
        }
        // An error is reported once, as `{"error", "code"}` with --format json|yaml.
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
    if ctx.format == Format::Table && resp.capabilities.is_empty() {
        // Said on stderr, so that a script reading the table reads nothing.
        ctx.note(match (resp.total, narrows(args)) {
            (0, false) => "no capabilities",
            (0, true) => "no capabilities match",
            _ => "no capabilities on this page (see --offset)",
        });
        return Ok(Outcome::Success);
    }
    let headers = !args.no_headers;
    ctx.print(&output::render(ctx.format, &raw, || {
        list_table(&resp, headers)
    }))?;
    Ok(Outcome::Success)
}

/// `capability show`: a `capability_list` narrowed to one id, which spends no use; a
/// capability that is not there (or not the caller's) is `CAP_NOT_FOUND`, exit 1.
fn show(ctx: &mut Context<'_>, args: &ShowArgs) -> Result<Outcome, CliError> {
    let req = ListRequest {
        filter: Some(CapabilityFilter {
            id: Some(args.id.clone()),
            ..CapabilityFilter::default()
        }),
    };
    let mut session = ctx.connect()?;
    let (resp, _): (ListResponse, Value) = session.exchange(RequestType::CapabilityList, &req)?;
    let Some(cap) = resp.capabilities.into_iter().find(|c| c.id == args.id) else {
        return Err(CliError::Answer {
            message: format!(
                "no capability {} (it never existed, was dropped after expiring, or is not yours)",
                args.id
            ),
            code: crate::protocol::ErrorCode::CapNotFound,
        });
    };
    let raw = serde_json::to_value(&cap).map_err(|e| CliError::Failed(e.to_string()))?;
    ctx.print(&output::render(ctx.format, &raw, || capability_table(&cap)))?;
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
        id: None,
        identity: args.identity.clone(),
        resource: args.resource.clone(),
        kind: args.kind.map(|k| k.as_str().to_string()),
        status: args.status.map(|s| s.as_str().to_string()),
        issuer: args.issuer.clone(),
        uid: args.uid,
        limit: args.limit,
        offset: args.offset,
        sort_by: args.sort_by.map(|s| s.as_str().to_string()),
        sort_order: args.sort_order.map(|o| o.as_str().to_string()),
        ..CapabilityFilter::default()
    };
    (filter != CapabilityFilter::default()).then_some(filter)
}

/// Whether a flag leaves capabilities out of the list (the order and the page do not).
fn narrows(args: &ListArgs) -> bool {
    build_filter(args).is_some_and(|f| {
        CapabilityFilter {
            limit: None,
            offset: None,
            sort_by: None,
            sort_order: None,
            ..f
        } != CapabilityFilter::default()
    })
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
            let message = if resp.message.is_empty() {
                format!("the request failed (status {other:?})")
            } else {
                resp.message.clone()
            };
            Err(match resp.code {
                Some(code) => CliError::Answer { message, code },
                None => CliError::Failed(message),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::capability_table::tests::response;
    use serde_json::json;

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
            sort_by: None,
            sort_order: None,
            no_headers: false,
        };
        assert_eq!(build_filter(&l), None);
        assert!(!narrows(&l));
        l.limit = Some(3);
        l.sort_by = Some(super::super::args::SortBy::ExpiresAt);
        l.sort_order = Some(super::super::args::SortOrder::Desc);
        assert!(!narrows(&l), "the page and the order leave nothing out");
        assert_eq!(
            serde_json::to_value(build_filter(&l)).unwrap(),
            json!({"limit":3,"sortBy":"expires_at","sortOrder":"desc"})
        );
        l.status = Some(super::super::args::StatusFilter::Active);
        assert!(narrows(&l));
        assert_eq!(
            serde_json::to_value(build_filter(&l)).unwrap(),
            json!({"status":"active","limit":3,"sortBy":"expires_at","sortOrder":"desc"})
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
}
