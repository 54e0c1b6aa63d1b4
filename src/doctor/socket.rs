//! The agent's socket: its directory (the agent's own rule, [`crate::trust::socket_dir`]), the
//! file (missing, not a socket, a stale socket nothing listens on, or one that answers), who
//! owns it (a socket bound by another user could be an impostor), and, when the agent answers,
//! what its status says is failing (audit, secrets backend, policy).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::Finding;
use crate::protocol::types::StatusResponse;

const CHECK: &str = "socket";

/// How to start the agent, for fixes.
pub const START: &str = "start the agent: systemctl start aether-vault-agent.socket (packaged), or aether-vault agent start";

/// What is at the socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Nothing.
    Missing,
    /// Something that is not a socket.
    NotASocket,
    /// A socket file nothing listens on (an agent that was killed).
    Stale,
    /// A socket something listens on, bound by this uid.
    Listening {
        /// The file's owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// It could not be looked at or connected to, and why.
    Unusable(String),
}

/// Looks at `path` and tries to connect.
pub fn probe(path: &Path) -> State {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::Missing,
        Err(e) => return State::Unusable(e.to_string()),
    };
    if !meta.file_type().is_socket() {
        return State::NotASocket;
    }
    match UnixStream::connect(path) {
        Ok(_) => State::Listening {
            owner: meta.uid(),
            mode: meta.mode() & 0o7777,
        },
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => State::Stale,
        Err(e) => State::Unusable(e.to_string()),
    }
}

/// The findings for the socket at `path` in state `state`, the agent's uid being `agent_uid`.
pub fn findings(path: &Path, state: &State, agent_uid: u32) -> Vec<Finding> {
    let shown = path.display();
    let mut out = Vec::new();
    if let Some(dir) = path.parent().filter(|d| d.exists()) {
        if let Err(e) = crate::trust::socket_dir(dir, agent_uid) {
            out.push(Finding::file(CHECK, &e));
        }
    }
    out.push(match state {
        State::Missing => Finding::problem(
            CHECK,
            format!("no socket at {shown}: the agent is not running (or listens elsewhere: socket_path)"),
            START,
        ),
        State::NotASocket => Finding::problem(
            CHECK,
            format!("{shown} is not a socket: the agent cannot bind there"),
            format!("move {shown} away, then {START}"),
        ),
        State::Stale => Finding::problem(
            CHECK,
            format!("{shown} is a stale socket: nothing listens on it (the agent stopped without removing it)"),
            format!("rm {shown}, then {START}"),
        ),
        State::Unusable(why) => Finding::problem(
            CHECK,
            format!("cannot connect to {shown}: {why}"),
            "run aether-vault doctor as root or as a member of the socket's group",
        ),
        // systemd binds the packaged socket as root; otherwise the agent binds it as itself.
        State::Listening { owner, .. } if *owner != 0 && *owner != agent_uid => Finding::problem(
            CHECK,
            format!("{shown} belongs to uid {owner}, neither root nor the agent's uid {agent_uid}: another process may be posing as the agent"),
            format!("find who listens (ss -xlp | grep {shown}), stop it, rm {shown}, then {START}"),
        ),
        State::Listening { owner, mode } => Finding::ok(
            CHECK,
            format!("{shown}: listening (owner uid {owner}, mode {mode:04o})"),
        ),
    });
    out
}

/// What a running agent's status says is failing.
pub fn agent_status(status: &StatusResponse) -> Vec<Finding> {
    const AGENT: &str = "agent";
    let mut out = vec![Finding::ok(
        AGENT,
        format!(
            "version {}, {} mode, policy generation {} ({} files, {} rules), {} active capabilities",
            status.version,
            status.mode,
            status.policy_generation,
            status.policy_files,
            status.policy_rules,
            status.capabilities_active
        ),
    )];
    if !status.audit_healthy {
        out.push(Finding::problem(
            AGENT,
            "the agent cannot write its audit log: it refuses requests until it can",
            "journalctl -u aether-vault-agent shows why (a full disk, a file that changed owner); fix it and the agent resumes by itself",
        ));
    }
    if let Some(e) = &status.policy_last_error {
        out.push(Finding::problem(
            AGENT,
            format!("the agent's last policy load failed: {e}"),
            "correct the file, then aether-vault agent reload",
        ));
    }
    if let Some(h) = status.secrets.as_ref().filter(|h| !h.healthy) {
        out.push(Finding::problem(
            AGENT,
            format!(
                "the agent's secrets backend ({}) is failing: {}",
                h.backend,
                h.last_error.as_deref().unwrap_or("no detail")
            ),
            "see the secrets check below, and journalctl -u aether-vault-agent",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn missing_stale_and_listening_sockets_are_told_apart() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("agent.sock");
        assert_eq!(probe(&path), State::Missing);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        assert!(matches!(probe(&path), State::Listening { owner, .. } if owner == me));
        drop(listener);
        assert_eq!(probe(&path), State::Stale);
        let f = findings(&path, &State::Stale, me);
        let last = f.last().unwrap();
        assert_eq!(last.status, Status::Problem);
        assert!(last.message.contains("stale socket"), "{f:?}");
        assert!(
            last.fix
                .as_deref()
                .unwrap()
                .starts_with(&format!("rm {}", path.display())),
            "{f:?}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert_eq!(probe(&path), State::NotASocket);
        let f = findings(
            &path,
            &State::Listening {
                owner: 4242,
                mode: 0o666,
            },
            999,
        );
        assert!(
            f.last().unwrap().message.contains("posing as the agent"),
            "{f:?}"
        );
    }
}
