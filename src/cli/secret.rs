//! `secret get|put|list|delete` and `exec`: secrets through short-lived capabilities.
//!
//! Without `--capability`, each command asks the agent for a capability for exactly that path
//! and action (TTL 30 s, one use), redeems it, and revokes it. Values go only where they were
//! asked for: standard output for `secret get`, a 0600 file with `--output`, a child's
//! environment for `exec`; never an error message.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::args::{ExecArgs, SecretCommand, SecretGetArgs, SecretPutArgs};
use super::context::{Context, Session};
use super::error::{CliError, Outcome};
use super::output::{self, Format, KeyValues};
use crate::protocol::RequestType;
use crate::protocol::types::{
    CapabilityRequest, CapabilityResponse, RevokeRequest, SecretRequest, SecretResponse,
};
use crate::secrets::{PathKind, SecretMap, SecretString};

/// Runs a `secret` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &SecretCommand) -> Result<Outcome, CliError> {
    match command {
        SecretCommand::Get(a) => get(ctx, a),
        SecretCommand::Put(a) => put(ctx, a),
        SecretCommand::List(a) => simple(
            ctx,
            RequestType::SecretList,
            "list",
            &a.path,
            a.capability.as_deref(),
        ),
        SecretCommand::Delete(a) => simple(
            ctx,
            RequestType::SecretDelete,
            "delete",
            &a.path,
            a.capability.as_deref(),
        ),
    }
}

/// The canonical secret path of what a user typed, as the agent requires it:
/// `secret:/db/primary`, `/db//primary` → `db/primary`; for a folder (`list`), `db` → `db/`.
pub fn normalize_path(path: &str, kind: PathKind) -> Result<String, CliError> {
    let bare = path.strip_prefix("secret:").unwrap_or(path);
    let canonical = crate::resource::canonical_secret_path(bare, kind)
        .map_err(|why| CliError::Input(format!("secret path {path:?} {why}")))?;
    crate::resource::check_secret_path(&canonical, kind)
        .map_err(|e| CliError::Input(e.to_string()))?;
    Ok(canonical)
}

/// A capability to use, and whether this command asked for it (and so revokes it after).
struct Cap {
    id: String,
    ours: bool,
}

/// Asks for a one-use capability for `action` on `path`; `Ok(None)` when denied (reported).
fn acquire(
    ctx: &mut Context<'_>,
    s: &mut Session,
    action: &str,
    path: &str,
    given: Option<&str>,
) -> Result<Option<Cap>, CliError> {
    if let Some(id) = given {
        return Ok(Some(Cap {
            id: id.to_string(),
            ours: false,
        }));
    }
    let req = CapabilityRequest {
        resource: format!("secret:/{path}"),
        actions: vec![action.to_string()],
        ttl: Some(30),
        max_uses: Some(1),
        purpose: Some(format!("aether-vault secret {action}")),
        ..Default::default()
    };
    let (resp, raw): (CapabilityResponse, Value) =
        s.exchange(RequestType::CapabilityRequest, &req)?;
    if resp.status == "denied" && ctx.format != Format::Table {
        // A script gets the denial as `capability request` prints it: the agent's answer.
        ctx.print(&output::render(ctx.format, &raw, String::new))?;
    }
    match (resp.status.as_str(), resp.capability) {
        ("granted", Some(cap)) => Ok(Some(Cap {
            id: cap.id,
            ours: true,
        })),
        ("denied", _) => {
            let why = resp
                .policy_result
                .map(|p| p.reasoning)
                .unwrap_or(resp.message);
            ctx.note(&super::output::denied_line(&why));
            Ok(None)
        }
        _ => Err(match resp.code {
            Some(code) => CliError::Answer {
                message: resp.message,
                code,
            },
            None => CliError::Failed(resp.message),
        }),
    }
}

fn release(s: &mut Session, cap: &Cap) {
    if cap.ours {
        let req = RevokeRequest {
            capability_id: cap.id.clone(),
            reason: Some("used".into()),
            revoked_by: None,
        };
        let _ = s.exchange::<Value>(RequestType::CapabilityRevoke, &req);
    }
}

/// Acquires, redeems, releases.
fn redeem(
    ctx: &mut Context<'_>,
    kind: RequestType,
    action: &str,
    path: &str,
    given: Option<&str>,
    mut req: SecretRequest,
) -> Result<Option<(SecretResponse, Value)>, CliError> {
    let mut s = ctx.connect()?;
    let Some(cap) = acquire(ctx, &mut s, action, path, given)? else {
        return Ok(None);
    };
    req.capability_id = cap.id.clone();
    if !path.is_empty() || !cap.ours {
        req.path = (!path.is_empty()).then(|| path.to_string());
    }
    let answer = s.exchange::<SecretResponse>(kind, &req);
    release(&mut s, &cap);
    Ok(Some(answer?))
}

fn get(ctx: &mut Context<'_>, a: &SecretGetArgs) -> Result<Outcome, CliError> {
    let path = match a.path.as_deref() {
        Some(p) => normalize_path(p, PathKind::Secret)?,
        None => String::new(),
    };
    if path.is_empty() && a.capability.is_none() {
        return Err(CliError::Input(
            "name the secret path (or give --capability)".into(),
        ));
    }
    let req = SecretRequest {
        version: a.version,
        ..Default::default()
    };
    let Some((resp, raw)) = redeem(
        ctx,
        RequestType::SecretRead,
        "read",
        &path,
        a.capability.as_deref(),
        req,
    )?
    else {
        return Ok(Outcome::Negative);
    };
    let data = resp.data.unwrap_or_default();
    let text = match &a.field {
        Some(f) => {
            let value = data.get(f).ok_or_else(|| {
                CliError::Failed(format!(
                    "{} has no field {f:?} (fields: {})",
                    resp.path,
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            match ctx.format {
                Format::Table => format!("{}\n", value.expose()),
                _ => output::render(
                    ctx.format,
                    &Value::String(value.expose().to_string()),
                    String::new,
                ),
            }
        }
        None => output::render(ctx.format, &raw, || {
            let mut kv = KeyValues::new();
            for (k, v) in &data {
                kv.row(k, v.expose());
            }
            kv.render()
        }),
    };
    match &a.output {
        Some(file) => output::write_private_file(file, text.as_bytes())?,
        None => ctx.print(&text)?,
    }
    Ok(Outcome::Success)
}

/// Parses `key=value` and `key=@file` pairs.
pub fn parse_pairs(pairs: &[String]) -> Result<SecretMap, CliError> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            CliError::Input(format!(
                "{:?} is not key=value",
                p.split('=').next().unwrap_or_default()
            ))
        })?;
        if k.is_empty() {
            return Err(CliError::Input("a field name is empty".into()));
        }
        let value = match v.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(Path::new(file))
                .map_err(|e| CliError::Input(format!("cannot read {file}: {e}")))?,
            None => v.to_string(),
        };
        out.insert(k.to_string(), SecretString::new(value));
    }
    Ok(out)
}

fn put(ctx: &mut Context<'_>, a: &SecretPutArgs) -> Result<Outcome, CliError> {
    let path = normalize_path(&a.path, PathKind::Secret)?;
    let req = SecretRequest {
        data: Some(parse_pairs(&a.pairs)?),
        ..Default::default()
    };
    let Some((resp, raw)) = redeem(
        ctx,
        RequestType::SecretWrite,
        "write",
        &path,
        a.capability.as_deref(),
        req,
    )?
    else {
        return Ok(Outcome::Negative);
    };
    ctx.print(&output::render(ctx.format, &raw, || {
        format!(
            "Success! Data written to: {} (version {})\n",
            resp.path,
            resp.version.unwrap_or_default()
        )
    }))?;
    Ok(Outcome::Success)
}

fn simple(
    ctx: &mut Context<'_>,
    kind: RequestType,
    action: &str,
    path: &str,
    given: Option<&str>,
) -> Result<Outcome, CliError> {
    let path = match (kind, path) {
        // The top folder.
        (RequestType::SecretList, "" | "/" | "secret:" | "secret:/") => String::new(),
        (RequestType::SecretList, p) => normalize_path(p, PathKind::Folder)?,
        (_, p) => normalize_path(p, PathKind::Secret)?,
    };
    let Some((resp, raw)) = redeem(ctx, kind, action, &path, given, SecretRequest::default())?
    else {
        return Ok(Outcome::Negative);
    };
    if ctx.format == Format::Table && resp.keys.as_ref().is_some_and(Vec::is_empty) {
        ctx.note(&format!("nothing under secret:/{path}"));
    }
    ctx.print(&output::render(ctx.format, &raw, || match &resp.keys {
        Some(keys) => keys.iter().map(|k| format!("{k}\n")).collect(),
        None => format!("Success! Data deleted at: {}\n", resp.path),
    }))?;
    Ok(Outcome::Success)
}

/// One `--secret` of `exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSecret {
    /// The environment variable.
    pub env: String,
    /// The secret path.
    pub path: String,
    /// The field, if named.
    pub field: Option<String>,
}

/// Parses `ENV=secret:/PATH#field`.
pub fn parse_exec_secret(spec: &str) -> Result<ExecSecret, CliError> {
    let bad = || CliError::Input(format!("--secret {spec:?} is not ENV=secret:/PATH#field"));
    let (env, rest) = spec.split_once('=').ok_or_else(bad)?;
    if env.is_empty()
        || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || env.as_bytes()[0].is_ascii_digit()
    {
        return Err(bad());
    }
    let rest = rest.strip_prefix("secret:").ok_or_else(bad)?;
    let (path, field) = match rest.split_once('#') {
        Some((p, f)) if !f.is_empty() => (p, Some(f.to_string())),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let path = normalize_path(path, PathKind::Secret).map_err(|_| bad())?;
    Ok(ExecSecret {
        env: env.to_string(),
        path,
        field,
    })
}

/// `exec`: reads each secret through its own one-use capability, then runs the command with
/// them in its environment and exits with its status.
pub fn exec(ctx: &mut Context<'_>, a: &ExecArgs) -> Result<Outcome, CliError> {
    let specs = a
        .secrets
        .iter()
        .map(|s| parse_exec_secret(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut by_path: BTreeMap<String, SecretMap> = BTreeMap::new();
    for spec in &specs {
        if by_path.contains_key(&spec.path) {
            continue;
        }
        let Some((resp, _)) = redeem(
            ctx,
            RequestType::SecretRead,
            "read",
            &spec.path,
            None,
            SecretRequest::default(),
        )?
        else {
            return Ok(Outcome::Negative);
        };
        by_path.insert(spec.path.clone(), resp.data.unwrap_or_default());
    }
    let (program, args) = a
        .command
        .split_first()
        .ok_or_else(|| CliError::Input("no command given after --".into()))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for spec in &specs {
        let data = &by_path[&spec.path];
        let fields = || data.keys().cloned().collect::<Vec<_>>().join(", ");
        let value = match &spec.field {
            Some(f) => data.get(f).ok_or_else(|| {
                CliError::Input(format!(
                    "secret:/{} has no field {f:?} to put in {} (its fields: {})",
                    spec.path,
                    spec.env,
                    fields()
                ))
            })?,
            None if data.len() == 1 => data
                .values()
                .next()
                .ok_or_else(|| CliError::Input(format!("secret:/{} has no field", spec.path)))?,
            None => {
                return Err(CliError::Input(format!(
                    "secret:/{} has {} fields; name the one to put in {} with #field (its fields: {})",
                    spec.path,
                    data.len(),
                    spec.env,
                    fields()
                )));
            }
        };
        cmd.env(&spec.env, value.expose());
    }
    drop(by_path);
    let status = cmd
        .status()
        .map_err(|e| CliError::Failed(format!("cannot run {program}: {e}")))?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    Ok(Outcome::Child(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_specs() {
        assert_eq!(
            parse_exec_secret("DB_PASS=secret:/db/primary#password").unwrap(),
            ExecSecret {
                env: "DB_PASS".into(),
                path: "db/primary".into(),
                field: Some("password".into())
            }
        );
        assert_eq!(
            parse_exec_secret("T=secret:/web/token").unwrap().field,
            None
        );
        for bad in [
            "=secret:/x",
            "1X=secret:/x",
            "X=/x",
            "X=secret:/",
            "X=secret:/x#",
            "X-Y=secret:/x",
            "X",
        ] {
            assert!(parse_exec_secret(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v");
        std::fs::write(&f, "from file").unwrap();
        let m = parse_pairs(&[
            "user=app".into(),
            format!("pw=@{}", f.display()),
            "eq=a=b".into(),
        ])
        .unwrap();
        assert_eq!(m["user"].expose(), "app");
        assert_eq!(m["pw"].expose(), "from file");
        assert_eq!(m["eq"].expose(), "a=b");
        assert!(parse_pairs(&["novalue".into()]).is_err());
        assert!(parse_pairs(&["=x".into()]).is_err());
        let n = |p, k| normalize_path(p, k).unwrap();
        assert_eq!(n("secret:/db/x", PathKind::Secret), "db/x");
        assert_eq!(n("/db/x", PathKind::Secret), "db/x");
        assert_eq!(n("secret://db//x/", PathKind::Secret), "db/x");
        assert_eq!(n("db", PathKind::Folder), "db/");
        assert!(normalize_path("db/*", PathKind::Secret).is_err());
        assert!(normalize_path("../x", PathKind::Secret).is_err());
    }
}
