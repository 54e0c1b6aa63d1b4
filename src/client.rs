//! A small blocking client for the agent's socket, used by the `aether-vault` CLI and by tests.
//!
//! One request at a time: write one compact JSON envelope plus `\n`, read one response line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::DefaultPaths;
use crate::protocol::types::{
    CapabilityFilter, CapabilityRequest, CapabilityResponse, ListRequest, ListResponse,
    PingResponse, ReloadResponse, RequestContext, RevokeRequest, RevokeResponse, StatusResponse,
    StopResponse, ValidateRequest, ValidationResult,
};
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

    fn typed<T: DeserializeOwned>(
        &mut self,
        kind: &str,
        payload: impl Serialize,
    ) -> Result<T, ClientError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (_, answer) = self.call(kind, payload)?;
        serde_json::from_value(answer).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `capability_request`.
    pub fn request_capability(
        &mut self,
        req: &CapabilityRequest,
    ) -> Result<CapabilityResponse, ClientError> {
        self.typed("capability_request", req)
    }

    /// `capability_validate`.
    pub fn validate(
        &mut self,
        id: &str,
        context: Option<RequestContext>,
    ) -> Result<ValidationResult, ClientError> {
        self.typed(
            "capability_validate",
            ValidateRequest {
                capability_id: id.to_string(),
                context,
            },
        )
    }

    /// `capability_revoke`.
    pub fn revoke(
        &mut self,
        id: &str,
        reason: Option<String>,
    ) -> Result<RevokeResponse, ClientError> {
        self.typed(
            "capability_revoke",
            RevokeRequest {
                capability_id: id.to_string(),
                reason,
                revoked_by: None,
            },
        )
    }

    /// `capability_list`.
    pub fn list(&mut self, filter: Option<CapabilityFilter>) -> Result<ListResponse, ClientError> {
        self.typed("capability_list", ListRequest { filter })
    }

    /// `status_request`.
    pub fn status(&mut self) -> Result<StatusResponse, ClientError> {
        self.typed("status_request", Value::Null)
    }

    /// `agent_status` (admin).
    pub fn agent_status(&mut self) -> Result<StatusResponse, ClientError> {
        self.typed("agent_status", Value::Null)
    }

    /// `agent_reload` (admin); returns after the reload finished.
    pub fn reload(&mut self) -> Result<ReloadResponse, ClientError> {
        self.typed("agent_reload", Value::Null)
    }

    /// `agent_stop` (admin).
    pub fn stop(&mut self) -> Result<StopResponse, ClientError> {
        self.typed("agent_stop", Value::Null)
    }

    /// `ping_request`.
    pub fn ping(&mut self) -> Result<PingResponse, ClientError> {
        self.typed("ping_request", Value::Null)
    }
}
