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
