//! The agent process: logging, configuration, the listening socket, signals, and then
//! [`crate::server::run`]. Both `aether-vault-agent` and `aether-vault agent start` end up here.

use std::path::PathBuf;

use crate::config::{ConfigError, Overrides};
use crate::transport::socket::{AgentListener, SocketError};

/// Where operational logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogTarget {
    /// journald when the process runs under systemd (or stderr is not a terminal and the
    /// journal socket exists), else stderr.
    #[default]
    Auto,
    /// Always journald.
    Journald,
    /// Always stderr.
    Stderr,
}

/// How to start the agent.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// `--config`: the YAML configuration file.
    pub config_file: Option<PathBuf>,
    /// Flag values that override file and environment.
    pub overrides: Overrides,
    /// Where operational logs go.
    pub log_target: LogTarget,
}

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No listening socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Anything else that stops the agent.
    #[error("{0}")]
    Fatal(String),
}

/// Runs the agent in the foreground until SIGTERM/SIGINT or `agent_stop`.
///
/// `activated` is the socket systemd passed, taken by
/// [`crate::transport::socket::take_activated`] before any thread started.
pub fn run(options: DaemonOptions, activated: Option<AgentListener>) -> Result<(), DaemonError> {
    let _ = (options, activated);
    Err(DaemonError::Fatal("not implemented yet".into()))
}
