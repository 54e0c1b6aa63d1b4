//! The systemd units of the packaged agent: `aether-vault-agent.socket` and `.service`, as
//! `systemctl is-enabled` and `is-active` report them. Where systemd does not run (a container,
//! a per-user agent started by hand) nothing is checked, and that is no problem.

use std::path::Path;
use std::process::Command;

use super::Finding;

const CHECK: &str = "unit";

/// The socket unit.
pub const SOCKET_UNIT: &str = "aether-vault-agent.socket";
/// The service unit.
pub const SERVICE_UNIT: &str = "aether-vault-agent.service";

/// Whether systemd is the running init system (what `sd_booted` checks).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemctl VERB UNIT`'s one-word answer (`active`, `enabled`, `not-found`, …), or `None`
/// when systemctl cannot be run.
pub fn systemctl(verb: &str, unit: &str) -> Option<String> {
    // An absolute path and an empty environment: doctor often runs as root from a user's
    // shell (`sudo -E`, `su`), whose PATH must not choose what runs as root.
    let binary = ["/usr/bin/systemctl", "/bin/systemctl"]
        .into_iter()
        .find(|p| Path::new(p).is_file())?;
    let out = Command::new(binary)
        .env_clear()
        .args([verb, "--", unit])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The findings for both units, asking `query(verb, unit)`; skipped without systemd.
pub fn units(running: bool, query: &dyn Fn(&str, &str) -> Option<String>) -> Vec<Finding> {
    if !running {
        return vec![Finding::skipped(CHECK, "not checked: no systemd")];
    }
    let ask = |verb, unit| query(verb, unit).unwrap_or_else(|| "unknown".to_string());
    let socket = (
        ask("is-enabled", SOCKET_UNIT),
        ask("is-active", SOCKET_UNIT),
    );
    let service = (
        ask("is-enabled", SERVICE_UNIT),
        ask("is-active", SERVICE_UNIT),
    );
    interpret(&socket, &service)
}

fn not_installed(enabled: &str) -> bool {
    enabled == "not-found" || enabled.is_empty()
}

/// What (is-enabled, is-active) of the socket and of the service mean.
pub fn interpret(socket: &(String, String), service: &(String, String)) -> Vec<Finding> {
    if not_installed(&socket.0) && not_installed(&service.0) {
        return vec![Finding::skipped(
            CHECK,
            format!("not checked: {SOCKET_UNIT} is not installed (an agent started by hand)"),
        )];
    }
    let mut out = Vec::new();
    out.push(match (socket.0.as_str(), socket.1.as_str()) {
        (_, "failed") => Finding::problem(
            CHECK,
            format!("{SOCKET_UNIT} failed"),
            format!("journalctl -u {SOCKET_UNIT} -b shows why; then systemctl reset-failed {SOCKET_UNIT} && systemctl start {SOCKET_UNIT}"),
        ),
        (_, "active") if socket.0 != "enabled" => Finding::warning(
            CHECK,
            format!("{SOCKET_UNIT} is active but {}: the agent will not listen after a reboot", socket.0),
            format!("systemctl enable {SOCKET_UNIT}"),
        ),
        (_, "active") => Finding::ok(CHECK, format!("{SOCKET_UNIT}: enabled, active")),
        (enabled, active) => Finding::problem(
            CHECK,
            format!("{SOCKET_UNIT} is {active} ({enabled}): clients cannot reach the agent"),
            format!("systemctl enable --now {SOCKET_UNIT}"),
        ),
    });
    out.push(match service.1.as_str() {
        "failed" => Finding::problem(
            CHECK,
            format!("{SERVICE_UNIT} failed"),
            format!("journalctl -u {SERVICE_UNIT} -b shows why (a refused file names its fix there); then systemctl reset-failed {SERVICE_UNIT}"),
        ),
        "active" => Finding::ok(CHECK, format!("{SERVICE_UNIT}: active")),
        other => Finding::ok(
            CHECK,
            format!("{SERVICE_UNIT}: {other} (the socket starts it at the first connection)"),
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn unit_states_read_as_findings() {
        assert_eq!(
            units(false, &|_, _| None)[0].message,
            "not checked: no systemd"
        );
        assert_eq!(units(false, &|_, _| None)[0].status, Status::Skipped);
        let f = interpret(
            &pair("not-found", "inactive"),
            &pair("not-found", "inactive"),
        );
        assert_eq!(f[0].status, Status::Skipped);
        let f = interpret(&pair("enabled", "active"), &pair("static", "inactive"));
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
        let f = interpret(&pair("disabled", "inactive"), &pair("static", "failed"));
        assert_eq!(f[0].status, Status::Problem);
        assert!(
            f[0].fix.as_deref().unwrap().contains("enable --now"),
            "{f:?}"
        );
        assert_eq!(f[1].status, Status::Problem);
        let f = interpret(&pair("disabled", "active"), &pair("static", "active"));
        assert_eq!(f[0].status, Status::Warning);
    }
}
