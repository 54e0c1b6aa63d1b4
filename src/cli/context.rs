//! What every command handler gets: the global flags, where stdout and stderr go, and the
//! connection to the agent, through which each request returns both the typed answer (for the
//! command's logic) and the exact payload the agent sent (for `--format json|yaml`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::CliError;
use super::output::Format;
use crate::client::{Client, ClientError, default_socket_path, socket_candidates};
use crate::protocol::RequestType;

/// How long the client waits for each read and write on the socket.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The global flags and the output streams of one command.
pub struct Context<'a> {
    /// `--format`.
    pub format: Format,
    /// `--verbose`.
    pub verbose: bool,
    /// `--socket-path`, exactly as given.
    pub socket_flag: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// Standard output: only the requested output goes here.
    pub out: &'a mut dyn Write,
    /// Standard error: errors, notes, `--verbose` chatter.
    pub err: &'a mut dyn Write,
}

impl Context<'_> {
    /// The socket to talk to: `--socket-path`, else the environment, else the defaults.
    pub fn socket_path(&self) -> PathBuf {
        default_socket_path(self.socket_flag.as_deref())
    }

    /// Writes requested output to stdout; a closed pipe (`| head -1`) is not an error.
    pub fn print(&mut self, text: &str) -> Result<(), CliError> {
        match self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
            _ => Ok(()),
        }
    }

    /// Writes a line to stderr (best effort).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }

    /// Writes a line to stderr when `--verbose` was given.
    pub fn debug(&mut self, text: &str) {
        if self.verbose {
            self.note(text);
        }
    }

    /// Connects to the agent: the first socket of [`socket_candidates`] that answers; the error
    /// names every one tried.
    pub fn connect(&mut self) -> Result<Session, CliError> {
        let candidates = socket_candidates(self.socket_flag.as_deref());
        for (path, origin) in &candidates {
            self.debug(&format!("trying {} ({origin})", path.display()));
        }
        Ok(Session {
            client: Client::connect_first(&candidates, CLIENT_TIMEOUT)?,
        })
    }
}

/// A connection to the agent.
pub struct Session {
    client: Client,
}

impl Session {
    /// The socket this session talks to.
    pub fn path(&self) -> &Path {
        self.client.path()
    }

    /// Sends one request; returns the typed answer and the payload exactly as the agent sent it.
    /// An `error_response` is an error.
    pub fn exchange<T: DeserializeOwned>(
        &mut self,
        kind: RequestType,
        payload: &impl Serialize,
    ) -> Result<(T, Value), CliError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let (_, raw) = self.client.call(kind.as_str(), payload)?;
        let typed = serde_json::from_value(raw.clone())
            .map_err(|e| ClientError::Protocol(format!("{} answer: {e}", kind.as_str())))?;
        Ok((typed, raw))
    }
}
