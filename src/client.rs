//! A small blocking client for the agent's socket, used by the `aether-vault` CLI and by tests.
//!
//! One request at a time: write one compact JSON envelope plus `\n`, read one response line.
//! Callers deserialize the payload into the type they expect (see `cli::context::Session`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::DefaultPaths;
use crate::protocol::{ErrorPayload, PROTOCOL_VERSION};

/// What went wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error("cannot connect to the agent at {path}: {source}")]
    Connect {
        /// The socket tried.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The connection broke mid-request.
    #[error("talking to the agent at {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The agent answered something this client cannot read.
    #[error("unexpected answer from the agent: {0}")]
    Protocol(String),
    /// The agent answered with an `error_response`.
    #[error("{}", .0.error)]
    Agent(ErrorPayload),
    /// No socket tried answers: each one with why, and how to start the agent.
    #[error("{}", describe_attempts(.0))]
    NoAgent(Vec<Attempt>),
}

/// A socket the CLI tried, and why nothing answered there.
#[derive(Debug)]
pub struct Attempt {
    /// The socket.
    pub path: PathBuf,
    /// Where the path came from (`--socket-path`, the system agent's socket, …).
    pub origin: &'static str,
    /// Why connecting failed.
    pub source: std::io::Error,
}

/// Why a connection to `path` failed, in words that tell a missing socket, a stale one
/// (the file is there, nothing listens) and a permission problem apart.
pub fn diagnose(source: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match source.kind() {
        ErrorKind::NotFound => "no such socket: no agent has been started there".to_string(),
        ErrorKind::ConnectionRefused => "stale socket: the file is there but no agent listens \
            on it (left by an agent that stopped or crashed; starting the agent replaces it)"
            .to_string(),
        ErrorKind::PermissionDenied => "permission denied: this user may not open the socket \
            (see the mode of the socket and of its directory)"
            .to_string(),
        _ => source.to_string(),
    }
}

/// The message of [`ClientError::NoAgent`]: every path tried with its diagnosis, then how to
/// start the agent.
pub fn describe_attempts(attempts: &[Attempt]) -> String {
    let mut text = String::from("cannot connect to the agent");
    match attempts {
        [one] => text.push_str(&format!(
            " at {}: {}",
            one.path.display(),
            diagnose(&one.source)
        )),
        many => {
            text.push_str("; tried:");
            for a in many {
                text.push_str(&format!(
                    "\n  {} ({}): {}",
                    a.path.display(),
                    a.origin,
                    diagnose(&a.source)
                ));
            }
        }
    }
    let only_permission = !attempts.is_empty()
        && attempts
            .iter()
            .all(|a| a.source.kind() == std::io::ErrorKind::PermissionDenied);
    if only_permission {
        text.push_str(
            "\nAsk the agent's administrator for access, or run your own agent \
            with `aether-vault agent start` and point --socket-path at its socket.",
        );
    } else {
        text.push_str(
            "\nStart the agent: `aether-vault agent start` (in the foreground), or \
            for the system agent `systemctl start aether-vault-agent.socket`.",
        );
    }
    text
}

/// The sockets the CLI tries, in order, with where each path came from: `--socket-path` alone
/// when given, else `VAULT_AGENT_SOCKET_PATH` alone when set, else the system socket and then
/// the per-user socket.
pub fn socket_candidates(flag: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    if let Some(p) = flag {
        return vec![(p.to_path_buf(), "--socket-path")];
    }
    if let Some(p) = std::env::var_os("VAULT_AGENT_SOCKET_PATH").filter(|p| !p.is_empty()) {
        return vec![(PathBuf::from(p), "$VAULT_AGENT_SOCKET_PATH")];
    }
    vec![
        (DefaultPaths::system().socket_path, "the system agent"),
        (
            DefaultPaths::user(&crate::config::home_dir()).socket_path,
            "your per-user agent",
        ),
    ]
}

/// A connection to the agent.
pub struct Client {
    path: PathBuf,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

/// The socket the CLI talks to: `--socket-path`, else `VAULT_AGENT_SOCKET_PATH`, else the system
/// socket if it exists, else the per-user socket.
pub fn default_socket_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("VAULT_AGENT_SOCKET_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let system = DefaultPaths::system().socket_path;
    if system.exists() {
        return system;
    }
    DefaultPaths::user(&crate::config::home_dir()).socket_path
}

impl Client {
    /// Connects to the agent at `path`, with `timeout` for each read and write.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let io = |source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        };
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let reader = BufReader::new(stream.try_clone().map_err(io)?);
        Ok(Client {
            path: path.to_path_buf(),
            writer: stream,
            reader,
            next_id: 0,
        })
    }

    /// Connects to the first of `candidates` that answers; when none does, the error names
    /// every one tried and why ([`ClientError::NoAgent`]).
    pub fn connect_first(
        candidates: &[(PathBuf, &'static str)],
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let mut attempts = Vec::new();
        for (path, origin) in candidates {
            match Client::connect(path, timeout) {
                Ok(client) => return Ok(client),
                Err(ClientError::Connect { path, source }) => attempts.push(Attempt {
                    path,
                    origin,
                    source,
                }),
                Err(other) => return Err(other),
            }
        }
        Err(ClientError::NoAgent(attempts))
    }

    /// The socket this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns the response's type and payload; an `error_response`
    /// becomes [`ClientError::Agent`].
    pub fn call(&mut self, kind: &str, payload: Value) -> Result<(String, Value), ClientError> {
        self.next_id += 1;
        let id = format!("msg_{}_{}", std::process::id(), self.next_id);
        let envelope = serde_json::json!({
            "version": PROTOCOL_VERSION,
            "type": kind,
            "id": id,
            "timestamp": crate::timefmt::now_rfc3339(),
            "payload": payload,
        });
        let mut line =
            serde_json::to_vec(&envelope).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        self.writer.write_all(&line).map_err(io)?;
        let mut answer = String::new();
        let n = self
            .reader
            .read_line(&mut answer)
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(ClientError::Protocol(
                "the agent closed the connection".into(),
            ));
        }
        let v: Value =
            serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        let payload = v.get("payload").cloned().unwrap_or(Value::Null);
        if kind == "error_response" {
            let err: ErrorPayload = serde_json::from_value(payload.clone())
                .map_err(|_| ClientError::Protocol(format!("bad error payload: {payload}")))?;
            return Err(ClientError::Agent(err));
        }
        Ok((kind, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn no_agent_tells_missing_stale_and_forbidden_sockets_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sock");
        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap()); // the file stays, nothing listens
        let candidates = vec![
            (missing.clone(), "the system agent"),
            (stale.clone(), "your per-user agent"),
        ];
        let Err(e) = Client::connect_first(&candidates, Duration::from_secs(1)) else {
            panic!("nothing listens")
        };
        let text = e.to_string();
        assert!(
            text.starts_with("cannot connect to the agent; tried:\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{} (the system agent): no such socket",
                missing.display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{} (your per-user agent): stale socket",
                stale.display()
            )),
            "{text}"
        );
        assert!(text.contains("aether-vault agent start"), "{text}");
        assert!(
            text.contains("systemctl start aether-vault-agent.socket"),
            "{text}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(diagnose(&denied).starts_with("permission denied"));
        let only = describe_attempts(&[Attempt {
            path: PathBuf::from("/run/x.sock"),
            origin: "--socket-path",
            source: denied,
        }]);
        assert!(
            only.starts_with("cannot connect to the agent at /run/x.sock: permission denied"),
            "{only}"
        );
        assert!(only.contains("Ask the agent's administrator"), "{only}");
    }

    #[test]
    fn a_flag_or_the_environment_is_the_only_candidate() {
        let c = socket_candidates(Some(Path::new("/x.sock")));
        assert_eq!(c, vec![(PathBuf::from("/x.sock"), "--socket-path")]);
    }
}
