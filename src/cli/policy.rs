//! `policy check|test|list`: linting policy files with the agent's own loader, asking what a
//! policy decides, and showing the live set.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::args::{PolicyCheckArgs, PolicyCommand, PolicyTestArgs};
use super::capability::normalize_actions;
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, KeyValues, columns};
use crate::capability::GrantLimits;
use crate::config::{self, LoadedConfig, Mode, Overrides, PathDefaults};
use crate::policy::load::{FileKind, classify};
use crate::policy::mode;
use crate::policy::tester::{explain, resolve};
use crate::policy::{LoadOptions, PolicySet, load_file};
use crate::protocol::RequestType;
use crate::protocol::types::{
    IdentitySpec, PolicyListResponse, PolicyTestRequest, PolicyTestResponse,
};

/// Runs a `policy` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &PolicyCommand) -> Result<Outcome, CliError> {
    match command {
        PolicyCommand::Check(args) => check(ctx, args),
        PolicyCommand::Test(args) => test(ctx, args),
        PolicyCommand::List => list(ctx),
    }
}

pub(super) fn local_config(ctx: &Context<'_>) -> Result<LoadedConfig, CliError> {
    local_config_in(ctx, None)
}

/// The local configuration, with `mode` (a `--mode` flag) over the configured one.
fn local_config_in(ctx: &Context<'_>, mode: Option<Mode>) -> Result<LoadedConfig, CliError> {
    Ok(config::load(
        ctx.config.as_deref(),
        &Overrides {
            mode,
            ..Overrides::default()
        },
        &PathDefaults::for_current_user(),
    )?)
}

/// How one path checks: loaded, missing (a warning: the agent runs with an empty set), or an
/// error.
enum Checked {
    /// Files read, rules in force, entries ignored (and why).
    Loaded(usize, usize, Vec<(PathBuf, String)>),
    Missing(String),
}

fn load_path(path: &Path, mode: Mode) -> Result<Checked, crate::policy::LoadError> {
    let agent_uid = LoadOptions::current().agent_uid;
    if mode::is_missing(path) {
        // A named file that is missing is a typo; a missing directory is what the agent runs
        // with until it is created.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(classify(name), FileKind::Json | FileKind::Yaml) {
            return Err(crate::policy::LoadError {
                file: Some(path.to_path_buf()),
                line: None,
                column: None,
                message: "no such file".into(),
            });
        }
        return Ok(Checked::Missing(mode::missing_warning(
            path, mode, agent_uid,
        )));
    }
    if path.is_dir() {
        // The agent's own code path: what it would put in force.
        let set = mode::build_set(path, mode, agent_uid, 0)?;
        Ok(Checked::Loaded(
            set.files.len(),
            set.rules().len(),
            set.ignored,
        ))
    } else {
        let l = load_file(path, LoadOptions::current())?;
        Ok(Checked::Loaded(l.files.len(), l.rules.len(), l.ignored))
    }
}

fn check(ctx: &mut Context<'_>, args: &PolicyCheckArgs) -> Result<Outcome, CliError> {
    let cfg = local_config_in(ctx, args.mode)?.config;
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        vec![cfg.policy_engine.directory]
    } else {
        args.paths.clone()
    };
    let mut results = Vec::new();
    let mut failed = 0;
    for path in &paths {
        match load_path(path, cfg.mode) {
            Ok(Checked::Loaded(files, rules, ignored)) => {
                results.push(json!({"path": path, "ok": true, "files": files, "rules": rules,
                    "ignored": ignored.iter().map(|(p, why)| json!({"path": p, "reason": why})).collect::<Vec<_>>()}));
            }
            Ok(Checked::Missing(warning)) => {
                ctx.note(&format!("Warning: {warning}"));
                results.push(
                    json!({"path": path, "ok": true, "missing": true, "files": 0, "rules": 0,
                    "ignored": [], "warning": warning}),
                );
            }
            Err(e) => {
                failed += 1;
                ctx.note(&format!("Error: {e}"));
                results.push(json!({"path": path, "ok": false, "error": e.to_string()}));
            }
        }
    }
    let report = Value::Array(results);
    ctx.print(&output::render(ctx.format, &report, || {
        check_table(&report)
    }))?;
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} of {} policy paths have errors",
            paths.len()
        )));
    }
    Ok(Outcome::Success)
}

/// The table form of a check report.
pub fn check_table(report: &Value) -> String {
    let mut out = String::new();
    for r in report.as_array().into_iter().flatten() {
        let path = r["path"].as_str().unwrap_or_default();
        if r["missing"] == true {
            out.push_str(&format!("WARNING {path}: missing (empty set)\n"));
        } else if r["ok"] == true {
            out.push_str(&format!(
                "OK {path}: {} files, {} rules\n",
                r["files"], r["rules"]
            ));
            for i in r["ignored"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "   ignored {} ({})\n",
                    i["path"].as_str().unwrap_or_default(),
                    i["reason"].as_str().unwrap_or_default()
                ));
            }
        } else {
            out.push_str(&format!("FAILED {path}\n"));
        }
    }
    out
}

fn test(ctx: &mut Context<'_>, args: &PolicyTestArgs) -> Result<Outcome, CliError> {
    let actions = normalize_actions(&args.actions)?;
    let spec = IdentitySpec {
        uid: args.uid,
        user: args.user.clone(),
        groups: args.groups.clone(),
        unit: args.unit.clone(),
        exe: args.exe.as_ref().map(|p| p.display().to_string()),
    };
    if spec.uid.is_none() && spec.user.is_none() {
        return Err(CliError::Input(
            "name the caller with --uid or --user".into(),
        ));
    }
    let resource = super::capability::canonical_resource(&args.resource)?;
    let (answer, raw): (PolicyTestResponse, Value) = if args.live {
        let req = PolicyTestRequest {
            resource: resource.clone(),
            actions,
            identity: spec,
        };
        ctx.connect()?.exchange(RequestType::PolicyTest, &req)?
    } else {
        let cfg = local_config_in(ctx, args.mode)?.config;
        let dir = args
            .dir
            .clone()
            .unwrap_or(cfg.policy_engine.directory.clone());
        let set = offline_set(ctx, &dir, cfg.mode)?;
        let identity = resolve(&spec).map_err(CliError::Input)?;
        let answer = explain(
            &set,
            identity,
            &resource,
            &actions,
            &GrantLimits::from(&cfg.capability_engine),
        );
        let raw = serde_json::to_value(&answer).map_err(|e| CliError::Failed(e.to_string()))?;
        (answer, raw)
    };
    ctx.print(&output::render(ctx.format, &raw, || test_table(&answer)))?;
    Ok(if answer.result.decision == "allow" {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The set the agent would put in force from `dir` in `mode` (its own code path), for offline
/// tests; a missing directory is a warning on stderr, as the agent logs it.
pub(super) fn offline_set(
    ctx: &mut Context<'_>,
    dir: &Path,
    mode: Mode,
) -> Result<PolicySet, CliError> {
    let agent_uid = LoadOptions::current().agent_uid;
    if mode::is_missing(dir) {
        ctx.note(&format!(
            "Warning: {}",
            mode::missing_warning(dir, mode, agent_uid)
        ));
    }
    mode::build_set(dir, mode, agent_uid, 0)
        .map_err(|e| CliError::Failed(format!("{e} ({})", mode::on_failure(mode, agent_uid))))
}

/// The table form of a policy test.
pub fn test_table(a: &PolicyTestResponse) -> String {
    let mut kv = KeyValues::new();
    kv.row("decision", &a.result.decision);
    kv.row("reasoning", &a.result.reasoning);
    kv.row(
        "rules",
        if a.result.applied_rules.is_empty() {
            "(none)".to_string()
        } else {
            a.result.applied_rules.join(", ")
        },
    );
    kv.opt("ttl", a.ttl.map(|t| format!("{t}s")));
    kv.opt(
        "max uses",
        a.max_uses.map(|u| {
            if u == 0 {
                "unlimited".to_string()
            } else {
                u.to_string()
            }
        }),
    );
    let who = match &a.identity.user {
        Some(u) => format!("uid {} ({u})", a.identity.uid),
        None => format!("uid {}", a.identity.uid),
    };
    kv.row("caller", who);
    kv.row("generation", a.generation);
    kv.render()
}

fn list(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let (resp, raw): (PolicyListResponse, Value) = ctx
        .connect()?
        .exchange(RequestType::PolicyList, &Value::Null)?;
    ctx.print(&output::render(ctx.format, &raw, || list_table(&resp)))?;
    Ok(Outcome::Success)
}

/// The table form of the live set.
pub fn list_table(r: &PolicyListResponse) -> String {
    let mut kv = KeyValues::new();
    kv.row("generation", r.generation);
    kv.row("loaded at", &r.loaded_at);
    kv.row("directory", &r.directory);
    kv.row("rules", r.rules);
    kv.opt("last error", r.last_error.as_ref());
    if r.files.is_empty() {
        kv.row("fallback", &r.fallback);
    }
    let mut out = kv.render();
    if !r.files.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = r
            .files
            .iter()
            .map(|f| {
                vec![
                    f.path.clone(),
                    f.policy_id.clone(),
                    f.rules.to_string(),
                    if f.active { "yes" } else { "no" }.to_string(),
                ]
            })
            .collect();
        out.push_str(&columns(&["FILE", "POLICY", "RULES", "ACTIVE"], &rows));
    }
    if !r.ignored.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = r
            .ignored
            .iter()
            .map(|i| vec![i.path.clone(), i.reason.clone()])
            .collect();
        out.push_str(&columns(&["IGNORED", "WHY"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{IgnoredFile, PolicyFileInfo, PolicyResult, TestedIdentity};

    #[test]
    fn tables_show_what_matters() {
        let t = test_table(&PolicyTestResponse {
            result: PolicyResult {
                decision: "deny".into(),
                reasoning: "denied: no rule allows \"read\"".into(),
                ..Default::default()
            },
            ttl: None,
            max_uses: None,
            generation: 3,
            identity: TestedIdentity {
                uid: 0,
                gid: 0,
                user: Some("root".into()),
                groups: vec![],
                unit: None,
                exe: None,
            },
        });
        assert!(
            t.contains("deny") && t.contains("no rule allows") && t.contains("uid 0 (root)"),
            "{t}"
        );
        let l = list_table(&PolicyListResponse {
            generation: 2,
            loaded_at: "2026-01-01T00:00:00Z".into(),
            directory: "/etc/p".into(),
            files: vec![PolicyFileInfo {
                path: "/etc/p/a.json".into(),
                policy_id: "a".into(),
                rules: 4,
                active: true,
            }],
            rules: 4,
            ignored: vec![IgnoredFile {
                path: "/etc/p/a.json~".into(),
                reason: "editor or package-manager leftover".into(),
            }],
            last_error: Some("/etc/p/b.json:3:1: bad".into()),
            fallback: String::new(),
        });
        assert!(
            l.contains("/etc/p/a.json") && l.contains("a.json~") && l.contains("b.json:3:1"),
            "{l}"
        );
        let r = json!([{"path":"/x","ok":true,"files":2,"rules":5,"ignored":[{"path":"/x/n.txt","reason":"r"}]},{"path":"/y","ok":false}]);
        let c = check_table(&r);
        assert!(
            c.contains("OK /x: 2 files, 5 rules")
                && c.contains("ignored /x/n.txt")
                && c.contains("FAILED /y"),
            "{c}"
        );
    }
}
