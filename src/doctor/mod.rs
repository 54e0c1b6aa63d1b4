//! `aether-vault doctor`: checks of an installation, each a plain function over the
//! configuration and the files, returning [`Finding`]s: `ok`, `warning`, `problem` or
//! `skipped` (not checked here, and why), each problem and warning with the command or
//! configuration key that fixes it.
//!
//! The checks: the socket and its directory ([`socket`]), the systemd units ([`unit`]), the
//! modes and owners of every file the agent uses ([`files`]), the policy directory and the
//! users and groups its rules name ([`policy`]), the audit chain and its seals ([`audit`]),
//! the key files ([`files::keys`]) and the secrets backend ([`secrets`]). The command
//! ([`crate::cli::doctor`]) runs them with the configuration the agent would load and exits 1
//! when any finding is a problem (warnings alone exit 0).

pub mod audit;
pub mod files;
pub mod policy;
pub mod secrets;
pub mod socket;
pub mod unit;

use serde::Serialize;

use crate::trust::FileError;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Not checked here (no systemd, nothing to check yet); not a problem.
    Skipped,
    /// Works, but probably not as meant.
    Warning,
    /// Broken: the agent refuses to start, refuses requests, or trusts what it should not.
    Problem,
}

impl Status {
    /// The word the table shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check (`socket`, `unit`, `files`, `policy`, `users`, `audit`, `keys`, `secrets`,
    /// `config`).
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found, naming the file or thing.
    pub message: String,
    /// The command or configuration key that fixes it (problems and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(check: &'static str, status: Status, message: String, fix: Option<String>) -> Finding {
        Finding {
            check,
            status,
            message,
            fix,
        }
    }

    /// A passed check.
    pub fn ok(check: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(check, Status::Ok, message.into(), None)
    }

    /// A check not made, and why.
    pub fn skipped(check: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(check, Status::Skipped, message.into(), None)
    }

    /// A warning and its fix.
    pub fn warning(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(check, Status::Warning, message.into(), Some(fix.into()))
    }

    /// A problem and its fix.
    pub fn problem(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(check, Status::Problem, message.into(), Some(fix.into()))
    }

    /// A refused file as a problem: what and where, what is wrong, and the fix the agent's own
    /// check gives ([`crate::trust`]).
    pub fn file(check: &'static str, e: &FileError) -> Finding {
        Finding {
            check,
            status: Status::Problem,
            message: format!("{} {}: {}", e.what, e.path.display(), e.problem),
            fix: Some(e.fix.clone().unwrap_or_else(|| {
                format!(
                    "make {} a file or directory the agent's user owns, writable by no one else",
                    e.path.display()
                )
            })),
        }
    }
}

/// The fix when this process may not look at something the agent uses.
pub const RUN_AS_ROOT: &str = "run aether-vault doctor as root (sudo) or as the agent's user";

/// Whether this process may list and enter `dir` (doctor run by another user than the
/// agent's may not: then what is inside is not checked, rather than blamed).
pub fn can_enter(dir: &std::path::Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(dir, AccessFlags::R_OK | AccessFlags::X_OK).is_ok()
}

/// Whether this process may read `file`.
pub fn can_read(file: &std::path::Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(file, AccessFlags::R_OK).is_ok()
}

/// Reads a regular file, at most `limit` bytes: never through a symbolic link, and never
/// waiting on a FIFO or reading a device (a state directory others can write may hold those in
/// place of a key, to hang or exhaust whoever looks).
pub fn read_regular(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut out = Vec::new();
    file.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// A warning that `path` was not checked because this process may not read it.
pub fn not_readable(check: &'static str, path: &std::path::Path) -> Finding {
    Finding::warning(
        check,
        format!(
            "not checked: {} is not readable by uid {}",
            path.display(),
            nix::unistd::geteuid()
        ),
        RUN_AS_ROOT,
    )
}

/// All findings of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In the order the checks ran.
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// 0 when no finding is a problem, else 1.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.count(Status::Problem) > 0)
    }

    /// The JSON form: `ok`, the counts and every finding.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.exit_code() == 0,
            "problems": self.count(Status::Problem),
            "warnings": self.count(Status::Warning),
            "checks": self.findings,
        })
    }

    /// The text form: one line per finding, `status  check  message` (and `fix: …` on the
    /// same line), then a summary line.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!(
                "{:<8} {:<8} {}",
                f.status.as_str(),
                f.check,
                one_line(&f.message)
            ));
            if let Some(fix) = &f.fix {
                out.push_str(&format!(" — fix: {}", one_line(fix)));
            }
            out.push('\n');
        }
        let (p, w) = (self.count(Status::Problem), self.count(Status::Warning));
        out.push_str(&match (p, w) {
            (0, 0) => "No problem found.\n".to_string(),
            _ => format!("{p} problem{}, {w} warning{}.\n", plural(p), plural(w)),
        });
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Text from files or the agent, on one line: control characters escaped.
fn one_line(s: &str) -> String {
    crate::oplog::clean(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_exits_1_and_warnings_alone_0() {
        let mut r = Report::default();
        r.findings.push(Finding::ok("socket", "fine"));
        r.findings
            .push(Finding::skipped("unit", "not checked: no systemd"));
        r.findings
            .push(Finding::warning("policy", "no dir", "mkdir"));
        assert_eq!(r.exit_code(), 0);
        assert!(
            r.table().ends_with("0 problems, 1 warning.\n"),
            "{}",
            r.table()
        );
        r.findings
            .push(Finding::problem("keys", "bad\nkey", "chmod 600 k"));
        assert_eq!(r.exit_code(), 1);
        let t = r.table();
        assert!(
            t.contains("problem  keys     bad\\u{a}key — fix: chmod 600 k\n"),
            "{t}"
        );
        assert!(
            t.contains("skipped  unit     not checked: no systemd\n"),
            "{t}"
        );
        let j = r.to_json();
        assert_eq!(j["ok"], false);
        assert_eq!(j["problems"], 1);
        assert_eq!(j["checks"][3]["status"], "problem");
        assert_eq!(j["checks"][3]["fix"], "chmod 600 k");
        assert!(j["checks"][0].get("fix").is_none());
    }
}
