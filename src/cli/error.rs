//! How a command ends: [`Outcome`] for an answer (yes → 0, no → 2) and [`CliError`] for a
//! failure (exit 1, reported as `Error: <message>` on stderr).

use std::path::PathBuf;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::transport::socket::SocketError;

/// A command that ran to the end, and what its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, granted, valid: exit 0.
    Success,
    /// The agent answered no (a denial, an invalid capability): exit 2.
    Negative,
    /// `exec`: the child's own exit status.
    Child(u8),
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Negative => 2,
            Outcome::Child(code) => code,
        }
    }
}

/// Why a command failed. Every variant exits 1; the message is printed as `Error: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the agent failed, or the agent answered with an `error_response`.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The configuration cannot be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The agent could not start, or stopped with an error.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The socket systemd passed is unusable.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// A flag's value is unusable (e.g. `--constraints` that is not JSON).
    #[error("{0}")]
    Input(String),
    /// The agent answered, and the answer is a failure (`status: "error"`, a failed reload, an
    /// agent that does not stop).
    #[error("{0}")]
    Failed(String),
    /// A local file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard output or error could not be written.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    /// The process exit code: always 1 (2 is reserved for a "no" from the agent).
    pub fn exit_code(&self) -> u8 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_errors_map_to_exit_codes() {
        assert_eq!(Outcome::Success.code(), 0);
        assert_eq!(Outcome::Negative.code(), 2);
        assert_eq!(CliError::Input("x".into()).exit_code(), 1);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
    }

    #[test]
    fn connect_errors_name_the_socket() {
        let e = CliError::from(ClientError::Connect {
            path: PathBuf::from("/nonexistent.sock"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert!(
            e.to_string()
                .starts_with("cannot connect to the agent at /nonexistent.sock: "),
            "{e}"
        );
    }
}
