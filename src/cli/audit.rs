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
use crate::audit::evidence;
use crate::audit::seal::{self, Seal};
use crate::config::{self, Overrides, PathDefaults};

/// Runs an `audit` subcommand.
pub fn run(ctx: &mut Context<'_>, command: &AuditCommand) -> Result<Outcome, CliError> {
    match command {
        AuditCommand::Verify(args) => verify(ctx, args),
        AuditCommand::Tail(args) => tail(ctx, args),
    }
}

fn load_config(ctx: &Context<'_>) -> Result<config::AgentConfig, CliError> {
    Ok(config::load(
        ctx.config.as_deref(),
        &Overrides::default(),
        &PathDefaults::for_current_user(),
    )?
    .config)
}

fn configured_log(ctx: &Context<'_>) -> Result<PathBuf, CliError> {
    Ok(load_config(ctx)?.audit.log_file)
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// The seals `verify` found for a log, and where it looked.
#[derive(Debug, Default)]
struct Sealing {
    /// Whether seals were looked for at all.
    looked: bool,
    /// Signed by the agent's key, of this log, from both places (duplicates removed).
    seals: Vec<Seal>,
    /// The seal file read (or missing).
    file: Option<PathBuf>,
    from_file: usize,
    from_journal: usize,
    /// Seal-like entries with a signature that is not the agent's.
    rejected: usize,
    /// Why the journal was not read, if it was not.
    journal: Option<String>,
    /// What is wrong with the seals themselves (none found when they must be).
    problem: Option<String>,
    /// Why nothing was checked against seals (said on stderr).
    note: Option<String>,
}

/// Reads the seals of `log` from the seal file and the journal. They are required — their
/// absence is a failure — when the log is the configured one and the configuration seals it,
/// or when `--seals`, `--state-dir` or `--public-key` point at them.
fn gather_seals(
    args: &AuditVerifyArgs,
    config: Option<&config::AgentConfig>,
    log: &Path,
) -> Result<Sealing, CliError> {
    if args.no_seals {
        return Ok(Sealing {
            note: Some("--no-seals: only the hash chain was checked".into()),
            ..Default::default()
        });
    }
    let log_id = seal::log_identity(log);
    let configured = config.is_some_and(|c| {
        c.audit.enable && c.audit.seal && seal::log_identity(&c.audit.log_file) == log_id
    });
    let required =
        configured || args.seals.is_some() || args.state_dir.is_some() || args.public_key.is_some();
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| config.map(|c| c.state_dir.clone()));
    let seal_file = args.seals.clone().or_else(|| {
        let dir = state_dir.as_deref()?;
        Some(match config {
            Some(c) => c.audit.seal_path(dir),
            None => dir.join(seal::DEFAULT_FILE_NAME),
        })
    });
    let key = match (&args.public_key, &state_dir) {
        (Some(k), _) => evidence::key_from_base64(k),
        (None, Some(dir)) => {
            evidence::key_from_file(&dir.join(crate::capability::signing::KEY_FILE))
        }
        (None, None) => Err("no state directory is configured (give --state-dir)".into()),
    };
    let key = match key {
        Ok(k) => k,
        Err(e) if required => {
            return Err(CliError::Failed(format!(
                "cannot check the audit log's seals without the agent's public key: {e}; run as root or as the agent's user, give --public-key (agent status shows it), or --no-seals to check the hash chain alone"
            )));
        }
        Err(e) => {
            return Ok(Sealing {
                note: Some(format!(
                    "not checked against seals (no key: {e}); only the hash chain was checked"
                )),
                ..Default::default()
            });
        }
    };
    let mut out = Sealing {
        looked: true,
        file: seal_file.clone(),
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut add = |out: &mut Sealing, found: evidence::Found| {
        out.rejected += found.rejected;
        let mut n = 0;
        for s in found.seals {
            if seen.insert((s.start.clone(), s.n, s.seq)) {
                out.seals.push(s);
            }
            n += 1;
        }
        n
    };
    let mut file_missing = false;
    if let Some(path) = &seal_file {
        match std::fs::read(path) {
            Ok(bytes) => {
                let found =
                    evidence::from_seal_file(&String::from_utf8_lossy(&bytes), &key, &log_id);
                out.from_file = add(&mut out, found);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => file_missing = true,
            Err(e) if required => {
                return Err(CliError::Failed(format!(
                    "cannot read the seal file {}: {e}",
                    path.display()
                )));
            }
            Err(e) => out.note = Some(format!("cannot read the seal file {}: {e}", path.display())),
        }
    }
    if args.no_journal {
        out.journal = Some("--no-journal".into());
    } else {
        match evidence::read_journal(&key, &log_id) {
            Ok(found) => out.from_journal = add(&mut out, found),
            Err(e) => out.journal = Some(e),
        }
    }
    let where_ = match &seal_file {
        Some(p) => format!("in {}", p.display()),
        None => "in no seal file".into(),
    };
    if required && file_missing {
        out.problem = Some(format!(
            "the seal file {} is missing{}: the agent writes it at start and never removes it, so it was deleted or moved (--no-seals checks the hash chain alone)",
            seal_file.as_deref().unwrap_or(Path::new("?")).display(),
            if out.from_journal > 0 {
                format!(
                    " (the journal holds {} seals of this log)",
                    out.from_journal
                )
            } else {
                String::new()
            }
        ));
    } else if required && out.seals.is_empty() {
        out.problem = Some(format!(
            "no seal of {log_id} was found {where_}{}{}: the agent seals its log when it starts, so the seals were removed, or no agent with audit.seal on has run (--no-seals checks the hash chain alone)",
            if out.journal.is_none() {
                " nor in the journal"
            } else {
                ""
            },
            match out.rejected {
                0 => String::new(),
                n => format!(
                    " ({n} seals signed with another key were ignored: is the key the agent's?)"
                ),
            }
        ));
    } else if out.seals.is_empty() {
        out.looked = false;
        out.note = Some(format!(
            "not sealed: no seal of {log_id} was found {where_}; only the hash chain was checked, so a cut tail would not show"
        ));
    }
    Ok(out)
}

/// Numbered files missing between `log.1` and the highest one present.
fn holes(log: &Path, set: &[PathBuf]) -> Vec<PathBuf> {
    let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let numbers: std::collections::BTreeSet<u32> = set
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_prefix(name)?
                .strip_prefix('.')?
                .parse()
                .ok()
        })
        .collect();
    let top = numbers.last().copied().unwrap_or(0);
    (1..top)
        .filter(|n| !numbers.contains(n))
        .map(|n| {
            let mut p = log.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        })
        .collect()
}

fn seals_json(s: &Sealing) -> Value {
    let last = s
        .seals
        .iter()
        .max_by(|a, b| (a.seq, &a.time, a.n).cmp(&(b.seq, &b.time, b.n)));
    json!({
        "checked": s.looked,
        "count": s.seals.len(),
        "seal_file": s.file,
        "from_seal_file": s.from_file,
        "from_journal": s.from_journal,
        "journal_not_read": s.journal,
        "rejected": s.rejected,
        "last": last.map(|l| json!({"seq": l.seq, "hash": l.hash, "time": l.time, "reason": l.reason.as_str(), "kept_from": l.kept_from()})),
    })
}

fn seals_text(s: &Sealing) -> String {
    let Some(last) = s
        .seals
        .iter()
        .max_by(|a, b| (a.seq, &a.time, a.n).cmp(&(b.seq, &b.time, b.n)))
    else {
        return String::new();
    };
    let mut places = vec![format!("{} from the seal file", s.from_file)];
    match &s.journal {
        None => places.push(format!("{} from the journal", s.from_journal)),
        Some(why) => places.push(format!("journal not read: {why}")),
    }
    let rejected = match s.rejected {
        0 => String::new(),
        n => format!("; {n} entries with a signature not the agent's were ignored"),
    };
    format!(
        "Sealed: the log holds every record the agent sealed, up to seq {} ({}, {}); {} seals checked ({}){rejected}\n",
        last.seq,
        last.time,
        last.reason.as_str(),
        s.seals.len(),
        places.join(", ")
    )
}

fn verify(ctx: &mut Context<'_>, args: &AuditVerifyArgs) -> Result<Outcome, CliError> {
    // Without FILE the configuration names the log; with FILE it only says where seals are.
    let config = if args.files.is_empty() {
        Some(load_config(ctx)?)
    } else {
        load_config(ctx).ok()
    };
    let derived = args.files.len() <= 1;
    let set = match args.files.as_slice() {
        [] => chain::rotation_set(
            &config
                .as_ref()
                .map(|c| c.audit.log_file.clone())
                .unwrap_or_default(),
        ),
        [one] => chain::rotation_set(one),
        many => many.to_vec(),
    };
    let log = set.last().cloned().unwrap_or_default();
    // Seals before the log: a seal is written only once its records are on disk, so none read
    // now is ahead of the files read next.
    let sealing = gather_seals(args, config.as_ref(), &log)?;
    if let Some(note) = &sealing.note {
        ctx.note(&format!("note: {note}"));
    }
    if let Some(why) = sealing.journal.as_deref().filter(|_| sealing.looked) {
        ctx.debug(&format!("seals: journal not read: {why}"));
    }
    let files: Vec<PathBuf> = set
        .iter()
        .filter(|p| p.exists() || args.files.contains(p))
        .cloned()
        .collect();
    if files.is_empty() && sealing.seals.is_empty() {
        return Err(CliError::Failed("no audit log found".into()));
    }
    let contents = files
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    let holes = if derived {
        holes(&log, &files)
    } else {
        Vec::new()
    };
    // A gap in the numbering names the file when the chain breaks there; alone (a rotation's
    // renames cut short by a crash) it loses no record.
    let holes: Vec<Value> = holes
        .iter()
        .map(|h| {
            json!({"kind": "file_missing", "file": h,
                   "message": format!("{} is missing from the rotated files", h.display())})
        })
        .collect();
    let mut problems: Vec<Value> = Vec::new();
    let (v, seen) = match evidence::walk(&contents, &sealing.seals) {
        Ok(walked) => walked,
        Err(b) => {
            for p in &holes {
                ctx.note(&format!(
                    "Error: {}",
                    p["message"].as_str().unwrap_or_default()
                ));
            }
            let report = json!({"ok": false, "file": b.file, "line": b.line, "seq": b.seq, "reason": b.reason,
                                "problems": holes});
            // With --format json|yaml the report is printed with the error (`error::report`).
            return Err(CliError::WithReport {
                error: Box::new(CliError::Failed(format!(
                    "the audit chain is broken at {b}"
                ))),
                report,
            });
        }
    };
    for h in &holes {
        ctx.debug(&format!(
            "note: {} (a rotation cut short by a crash leaves such a gap; no record is missing)",
            h["message"].as_str().unwrap_or_default()
        ));
    }
    if let Some(p) = &sealing.problem {
        problems.push(json!({"kind": "seals_missing", "message": p}));
    }
    let log_name = log.display().to_string();
    let mut found = evidence::check(&seen, &sealing.seals, &log_name);
    if found.iter().any(|p| p.kind() == "files_missing") {
        // A rotation between reading the seals and listing the files may have deleted the
        // oldest file: it seals the set it leaves before deleting, so seals read now say so.
        let later = gather_seals(args, config.as_ref(), &log)?;
        if !evidence::check(&seen, &later.seals, &log_name)
            .iter()
            .any(|p| p.kind() == "files_missing")
        {
            found.retain(|p| p.kind() != "files_missing");
        }
    }
    for p in found {
        problems.push(json!({"kind": p.kind(), "message": p.to_string(),
                             "missing": p.missing().map(|(a, b)| [a, b])}));
    }
    let report = json!({"ok": problems.is_empty(), "records": v.records, "first_seq": v.first_seq,
                        "last_seq": v.head.seq, "from_genesis": v.from_genesis, "files": files,
                        "seals": seals_json(&sealing), "problems": problems});
    if problems.is_empty() {
        ctx.print(&output::render(ctx.format, &report, || {
            format!("{}{}", verified_text(&v, files.len()), seals_text(&sealing))
        }))?;
        return Ok(Outcome::Success);
    }
    for p in &problems {
        ctx.note(&format!(
            "Error: {}",
            p["message"].as_str().unwrap_or_default()
        ));
    }
    Err(CliError::WithReport {
        error: Box::new(CliError::Failed(format!(
            "the audit log fails its check against the agent's seals ({} problem{})",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ))),
        report,
    })
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
