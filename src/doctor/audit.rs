//! The audit log: its hash chain across the rotated files ([`crate::audit::chain::verify`]),
//! and, when the agent seals it, the chain held to the seals in the seal file
//! ([`crate::audit::evidence`]): a changed, cut or replaced log is a problem. The journal's
//! copies of the seals are left to `aether-vault audit verify`, which reads them too.

use std::path::PathBuf;

use super::{Finding, not_readable};
use crate::audit::{chain, evidence, seal};
use crate::config::AgentConfig;

const CHECK: &str = "audit";

/// The most of the seal file read (it holds one short line per seal).
const MAX_SEAL_FILE: u64 = 256 << 20;

/// The fix for a log that fails its check: it is evidence, not something to repair.
const KEEP: &str = "keep the files as evidence and find out who changed them (aether-vault audit verify shows the details); the agent goes on from its last seal";

/// The most doctor reads of one file of the rotation set: what the agent writes into one file
/// (`audit.max_file_size`, which one batch can overshoot) with room to spare, or 1 GiB when the
/// agent never rotates. Doctor often runs as root; a file the agent's user made huge (a sparse
/// one costs nothing to make) must not exhaust its memory.
fn file_limit(max_file_size: u64) -> u64 {
    match max_file_size {
        0 => 1 << 30,
        n => n.saturating_add(16 << 20),
    }
}

/// The findings for the configured audit log.
pub fn audit_log(config: &AgentConfig) -> Vec<Finding> {
    if !config.audit.enable {
        return vec![Finding::warning(
            CHECK,
            "auditing is off: no decision is recorded",
            "set audit.enable: true in the configuration",
        )];
    }
    let log = &config.audit.log_file;
    if let Some(dir) = log.parent().filter(|d| d.exists() && !super::can_enter(d)) {
        return vec![not_readable(CHECK, dir)];
    }
    let set: Vec<PathBuf> = chain::rotation_set(log)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let limit = file_limit(config.audit.max_file_size);
    let mut contents = Vec::new();
    for p in &set {
        match super::read_regular(p, limit.saturating_add(1)) {
            Ok(b) if b.len() as u64 > limit => {
                return vec![Finding::warning(
                    CHECK,
                    format!(
                        "not checked: {} is larger than {limit} bytes, more than audit.max_file_size lets the agent write",
                        p.display()
                    ),
                    "aether-vault audit verify reads a log of any size; find out why the file is that large",
                )];
            }
            Ok(b) => contents.push((p.clone(), String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return vec![not_readable(CHECK, p)];
            }
            Err(e) => {
                return vec![Finding::problem(
                    CHECK,
                    format!("cannot read {}: {e}", p.display()),
                    super::RUN_AS_ROOT,
                )];
            }
        }
    }
    let sealed = seals(config);
    let (v, seen) = match evidence::walk(&contents, sealed.as_deref().unwrap_or_default()) {
        Ok(walked) => walked,
        Err(b) => {
            return vec![Finding::problem(
                CHECK,
                format!("the audit chain is broken at {b}"),
                KEEP,
            )];
        }
    };
    let mut out = Vec::new();
    if let Some(seals) = &sealed {
        for p in evidence::check(&seen, seals, &seal::log_identity(log)) {
            out.push(Finding::problem(
                CHECK,
                format!("{}: {p}", log.display()),
                KEEP,
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::ok(
            CHECK,
            match (set.len(), &sealed) {
                (0, _) => format!("{}: no audit log yet", log.display()),
                (n, Some(s)) => format!(
                    "{}: {} records in {n} files, chain intact, held to {} seals",
                    log.display(),
                    v.records,
                    s.len()
                ),
                (n, None) => format!(
                    "{}: {} records in {n} files, chain intact (seals not checked)",
                    log.display(),
                    v.records
                ),
            },
        ));
    }
    out
}

/// The seals of the log in the seal file, signed by the agent's key; `None` when the agent
/// does not seal or there is no key (or seal file) to read yet.
fn seals(config: &AgentConfig) -> Option<Vec<seal::Seal>> {
    if !config.audit.seal {
        return None;
    }
    let key = super::read_regular(
        &config.state_dir.join(crate::capability::signing::KEY_FILE),
        64,
    )
    .ok()?;
    let key = crate::capability::Signer::from_seed(key.as_slice().try_into().ok()?).public_key();
    let text =
        super::read_regular(&config.audit.seal_path(&config.state_dir), MAX_SEAL_FILE).ok()?;
    let text = String::from_utf8_lossy(&text);
    let log = seal::log_identity(&config.audit.log_file);
    Some(evidence::from_seal_file(&text, &key, &log).seals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DefaultPaths, Mode};
    use crate::doctor::Status;

    #[test]
    fn a_changed_record_breaks_the_chain() {
        let base = tempfile::tempdir().unwrap();
        let mut c = AgentConfig::defaults(Mode::Standard, &DefaultPaths::user(base.path()));
        c.state_dir = base.path().join("state");
        c.audit.log_file = base.path().join("audit.log");
        assert!(audit_log(&c)[0].message.contains("no audit log yet"));
        let mut head = chain::ChainHead::default();
        let mut text = Vec::new();
        for kind in [
            crate::audit::EventType::AgentStart,
            crate::audit::EventType::AgentStop,
        ] {
            let ev = crate::audit::AuditEvent::new(kind, crate::audit::Outcome::Success);
            text.extend(chain::seal_event(&ev, &mut head).unwrap());
        }
        std::fs::write(&c.audit.log_file, &text).unwrap();
        let f = audit_log(&c);
        assert_eq!(f[0].status, Status::Ok, "{f:?}");
        assert!(f[0].message.contains("2 records"), "{f:?}");
        let tampered = String::from_utf8(text)
            .unwrap()
            .replace("agent_stop", "agent_xtop");
        std::fs::write(&c.audit.log_file, tampered).unwrap();
        let f = audit_log(&c);
        assert_eq!(f[0].status, Status::Problem, "{f:?}");
        assert!(f[0].message.contains("broken at"), "{f:?}");
    }

    #[test]
    fn a_huge_sparse_log_is_not_read_into_memory() {
        let base = tempfile::tempdir().unwrap();
        let mut c = AgentConfig::defaults(Mode::Standard, &DefaultPaths::user(base.path()));
        c.state_dir = base.path().join("state");
        c.audit.log_file = base.path().join("audit.log");
        c.audit.max_file_size = 1 << 20;
        // 1 TiB that takes no disk: read whole, it would exhaust the machine.
        let f = std::fs::File::create(&c.audit.log_file).unwrap();
        f.set_len(1 << 40).unwrap();
        let found = audit_log(&c);
        assert_eq!(found[0].status, Status::Warning, "{found:?}");
        assert!(found[0].message.contains("larger than"), "{found:?}");
    }
}
