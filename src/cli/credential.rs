//! `credential list|test`: the systemd credentials units get at start (`LoadCredential=`), as
//! the running agent has them in force, and what a start of a unit would get: offline from the
//! policy files, or `--live` from the running agent (which also asks its secrets backend).

use serde_json::Value;

use super::args::{CredentialCommand, CredentialTestArgs};
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, KeyValues, columns};
use crate::credentials::explain;
use crate::credentials::names::{check_credential_id, check_unit_name};
use crate::protocol::RequestType;
use crate::protocol::credentials::{
    CredentialListResponse, CredentialTestRequest, CredentialTestResponse,
};

/// Runs a `credential` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &CredentialCommand) -> Result<Outcome, CliError> {
    match command {
        CredentialCommand::List => list(ctx),
        CredentialCommand::Test(args) => test(ctx, args),
    }
}

fn list(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let (resp, raw): (CredentialListResponse, Value) = ctx
        .connect()?
        .exchange(RequestType::CredentialList, &Value::Null)?;
    ctx.print(&output::render(ctx.format, &raw, || list_table(&resp)))?;
    Ok(Outcome::Success)
}

/// The table form of the mappings in force.
pub fn list_table(r: &CredentialListResponse) -> String {
    let mut kv = KeyValues::new();
    kv.row("generation", r.generation);
    kv.row(
        "socket",
        r.socket
            .as_deref()
            .unwrap_or("(none: nothing is delivered)"),
    );
    kv.row("mappings", r.credentials.len());
    let mut out = kv.render();
    if !r.credentials.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = r
            .credentials
            .iter()
            .map(|c| {
                vec![
                    c.unit.clone(),
                    c.id.clone(),
                    c.secret.clone(),
                    c.policy.clone(),
                    c.file.clone(),
                ]
            })
            .collect();
        out.push_str(&columns(&["UNIT", "ID", "SECRET", "POLICY", "FILE"], &rows));
    }
    out
}

fn test(ctx: &mut Context<'_>, args: &CredentialTestArgs) -> Result<Outcome, CliError> {
    check_unit_name(&args.unit)
        .and(check_credential_id(&args.id))
        .map_err(CliError::Input)?;
    let (answer, raw): (CredentialTestResponse, Value) = if args.live {
        let req = CredentialTestRequest {
            unit: args.unit.clone(),
            id: args.id.clone(),
        };
        ctx.connect()?.exchange(RequestType::CredentialTest, &req)?
    } else {
        let cfg = super::policy::local_config(ctx)?.config;
        let dir = args
            .dir
            .clone()
            .unwrap_or(cfg.policy_engine.directory.clone());
        let set = super::policy::offline_set(ctx, &dir, cfg.mode)?;
        let answer = explain(&set, &args.unit, &args.id);
        let raw = serde_json::to_value(&answer).map_err(|e| CliError::Failed(e.to_string()))?;
        (answer, raw)
    };
    ctx.print(&output::render(ctx.format, &raw, || test_table(&answer)))?;
    Ok(if answer.decision == "deliver" {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The table form of a credential test.
pub fn test_table(a: &CredentialTestResponse) -> String {
    let mut kv = KeyValues::new();
    kv.row("decision", &a.decision);
    kv.row("reason", &a.reason);
    kv.row("unit", &a.unit);
    kv.row("id", &a.id);
    kv.row(
        "secret",
        a.mapping
            .as_ref()
            .map(|m| format!("{} ({})", m.secret, m.file))
            .unwrap_or_else(|| "(no mapping)".to_string()),
    );
    kv.row(
        "rules",
        if a.rules.is_empty() {
            "(none)".to_string()
        } else {
            a.rules.join(", ")
        },
    );
    kv.row(
        "backend",
        match (&a.backend, a.bytes) {
            (Some(b), Some(n)) => format!("{b}: {n} bytes"),
            (Some(b), None) => b.clone(),
            (None, _) => "not asked (offline; --live asks the agent)".to_string(),
        },
    );
    kv.row("generation", a.generation);
    kv.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::credentials::CredentialInfo;

    #[test]
    fn tables_show_what_matters() {
        let info = CredentialInfo {
            unit: "billing.service".into(),
            id: "db-password".into(),
            secret: "secret:/db/primary#password".into(),
            resource: "secret:/db/primary".into(),
            field: Some("password".into()),
            policy: "billing".into(),
            file: "/etc/p/billing.json".into(),
        };
        let l = list_table(&CredentialListResponse {
            generation: 4,
            socket: Some("/run/aether-vault/credentials.sock".into()),
            credentials: vec![info.clone()],
        });
        assert!(
            l.contains("billing.service")
                && l.contains("db-password")
                && l.contains("secret:/db/primary#password")
                && l.contains("credentials.sock"),
            "{l}"
        );
        let t = test_table(&CredentialTestResponse {
            unit: "billing.service".into(),
            id: "db-password".into(),
            decision: "refuse".into(),
            reason: "refused: the rules do not allow read".into(),
            mapping: Some(info),
            rules: vec![],
            generation: 4,
            backend: None,
            bytes: None,
        });
        assert!(
            t.contains("refuse") && t.contains("do not allow") && t.contains("offline"),
            "{t}"
        );
    }
}
