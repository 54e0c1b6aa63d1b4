//! `audit verify|tail`: checking the audit log's hash chain, and reading it as a person.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::args::{AuditCommand, AuditTailArgs, AuditVerifyArgs};
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format};
use crate::audit::chain::{self, Verified};
use crate::config::{self, Overrides, PathDefaults};

/// Runs an `audit` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &AuditCommand) -> Result<Outcome, CliError> {
    match command {
        AuditCommand::Verify(args) => verify(ctx, args),
        AuditCommand::Tail(args) => tail(ctx, args),
    }
}

fn configured_log(ctx: &Context<'_>) -> Result<PathBuf, CliError> {
    Ok(config::load(
        ctx.config.as_deref(),
        &Overrides::default(),
        &PathDefaults::for_current_user(),
    )?
    .config
    .audit
    .log_file)
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))
}

fn verify(ctx: &mut Context<'_>, args: &AuditVerifyArgs) -> Result<Outcome, CliError> {
    let files = match args.files.as_slice() {
        [] => chain::rotation_set(&configured_log(ctx)?),
        [one] => chain::rotation_set(one),
        many => many.to_vec(),
    };
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.exists() || args.files.contains(p))
        .collect();
    if files.is_empty() {
        return Err(CliError::Failed("no audit log found".into()));
    }
    let contents = files
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    match chain::verify(&contents) {
        Ok(v) => {
            let report = json!({"ok": true, "records": v.records, "first_seq": v.first_seq, "last_seq": v.head.seq,
                                "from_genesis": v.from_genesis, "files": files});
            ctx.print(&output::render(ctx.format, &report, || {
                verified_text(&v, files.len())
            }))?;
            Ok(Outcome::Success)
        }
        Err(b) => {
            if ctx.format != Format::Table {
                let report = json!({"ok": false, "file": b.file, "line": b.line, "seq": b.seq, "reason": b.reason});
                ctx.print(&output::render(ctx.format, &report, String::new))?;
            }
            Err(CliError::Failed(format!(
                "the audit chain is broken at {b}"
            )))
        }
    }
}

/// The table form of a verification that passed.
pub fn verified_text(v: &Verified, files: usize) -> String {
    if v.records == 0 {
        return format!(
            "OK: no records in {files} file{}\n",
            if files == 1 { "" } else { "s" }
        );
    }
    let start = if v.from_genesis {
        "the chain starts at the first record ever written".to_string()
    } else {
        format!(
            "the chain starts at seq {} (older records were rotated away)",
            v.first_seq.unwrap_or_default()
        )
    };
    format!(
        "OK: {} records (seq {}–{}) in {files} file{}; {start}\n",
        v.records,
        v.first_seq.unwrap_or_default(),
        v.head.seq,
        if files == 1 { "" } else { "s" }
    )
}

/// Whether a record passes the `--type`/`--uid` filters.
pub fn wanted(record: &Value, args: &AuditTailArgs) -> bool {
    args.kind.as_deref().is_none_or(|k| record["type"] == k)
        && args
            .uid
            .is_none_or(|u| record["identity"]["uid"].as_u64() == Some(u as u64))
}

/// Text from a record made safe for a terminal: control characters (a client's escape codes,
/// newlines) are shown escaped.
fn clean(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// One record as a line for people.
pub fn human_line(r: &Value) -> String {
    let s = |k: &str| clean(r[k].as_str().unwrap_or_default());
    let mut line = format!(
        "{} #{} {} {}",
        s("timestamp"),
        r["seq"],
        s("type"),
        s("outcome")
    );
    if let Some(uid) = r["identity"]["uid"].as_u64() {
        line.push_str(&format!(" uid={uid}"));
        if let Some(u) = r["identity"]["user"].as_str() {
            line.push_str(&format!("({u})"));
        }
        if let Some(p) = r["identity"]["pid"].as_u64() {
            line.push_str(&format!(" pid={p}"));
        }
    }
    if let Some(res) = r["resource"].as_str() {
        line.push_str(&format!(" {}", clean(res)));
    }
    if let Some(actions) = r["actions"].as_array() {
        let a: Vec<String> = actions
            .iter()
            .filter_map(Value::as_str)
            .map(clean)
            .collect();
        line.push_str(&format!(" [{}]", a.join(",")));
    }
    if let Some(c) = r["capability_id"].as_str() {
        line.push_str(&format!(" {c}"));
    }
    if let Some(reason) = r["reason"].as_str() {
        line.push_str(&format!(" — {}", clean(reason)));
    }
    line.push('\n');
    line
}

fn show(ctx: &mut Context<'_>, line: &str, args: &AuditTailArgs) -> Result<(), CliError> {
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        return Ok(());
    };
    if !wanted(&record, args) {
        return Ok(());
    }
    let text = match ctx.format {
        Format::Table => human_line(&record),
        Format::Json => format!("{line}\n"),
        Format::Yaml => format!("---\n{}", crate::yaml::to_string(&record)),
    };
    ctx.print(&text)
}

fn tail(ctx: &mut Context<'_>, args: &AuditTailArgs) -> Result<Outcome, CliError> {
    let path = match &args.file {
        Some(f) => f.clone(),
        None => configured_log(ctx)?,
    };
    let text = read(&path)?;
    let matching: Vec<&str> = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|r| wanted(&r, args)))
        .collect();
    for line in &matching[matching.len().saturating_sub(args.lines)..] {
        show(ctx, line, args)?;
    }
    if !args.follow {
        return Ok(Outcome::Success);
    }
    let mut offset = text.len() as u64;
    let mut inode = std::fs::metadata(&path)
        .map(|m| m.ino())
        .unwrap_or_default();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.ino() != inode || meta.len() < offset {
            // Rotated or replaced: start from the top of the new file.
            inode = meta.ino();
            offset = 0;
        }
        if meta.len() == offset {
            continue;
        }
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        if f.seek(SeekFrom::Start(offset)).is_err() {
            continue;
        }
        for line in BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            offset += line.len() as u64 + 1;
            show(ctx, &line, args)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines_and_filters() {
        let r = json!({"seq":7,"timestamp":"2026-01-01T00:00:00Z","type":"capability_request","outcome":"granted",
                        "identity":{"uid":1000,"user":"alice","pid":42},"resource":"secret:/db","actions":["read"],
                        "capability_id":"cap_1","reason":"ok"});
        let l = human_line(&r);
        assert_eq!(
            l,
            "2026-01-01T00:00:00Z #7 capability_request granted uid=1000(alice) pid=42 secret:/db [read] cap_1 — ok\n"
        );
        let mut args = AuditTailArgs {
            file: None,
            lines: 10,
            follow: false,
            kind: Some("capability_request".into()),
            uid: Some(1000),
        };
        assert!(wanted(&r, &args));
        args.uid = Some(0);
        assert!(!wanted(&r, &args));
        args.uid = None;
        args.kind = Some("agent_stop".into());
        assert!(!wanted(&r, &args));
        let evil = json!({"seq":1,"type":"capability_revocation","outcome":"revoked","reason":"x\u{1b}[2Jy\nz"});
        let l = human_line(&evil);
        assert!(
            !l.contains('\u{1b}') && l.matches('\n').count() == 1,
            "{l:?}"
        );
    }
}
