//! How a command ends: [`Outcome`] for an answer (yes → 0, no → 2) and [`CliError`] for a
//! failure (exit 1, reported as `Error: <message>` on stderr, or with `--format json|yaml` as
//! `{"error": <message>, "code": <CODE>}` on stdout; see [`report`]).

use std::path::PathBuf;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::protocol::ErrorCode;
use crate::transport::socket::SocketError;

use super::output::Format;

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
    /// The agent answered a failure that carries its error code (a `capability_response` with
    /// `status: "error"`).
    #[error("{message} ({code})")]
    Answer {
        /// The agent's message.
        message: String,
        /// The agent's code.
        code: ErrorCode,
    },
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

    /// The machine-readable code printed with `--format json|yaml`: the agent's own code when
    /// the agent answered with one (`PERMISSION_DENIED`, `CAP_NOT_FOUND`, …), else one of the
    /// CLI's: `CANNOT_CONNECT` (no agent answers on any socket tried), `CONNECTION_LOST` (the
    /// connection broke mid-request), `BAD_ANSWER` (an answer this CLI cannot read),
    /// `CONFIG_ERROR` (the configuration cannot be loaded), `SOCKET_ERROR` (the agent's socket
    /// is unusable), `AGENT_FAILED` (the agent could not start or stopped with an error),
    /// `INVALID_INPUT` (a flag's value is unusable), `FAILED` (the agent answered a failure
    /// without a code, or a local check failed), `WRITE_FAILED` (a local file could not be
    /// written), `OUTPUT_FAILED` (stdout could not be written). `USAGE` (a command line clap
    /// refused) is [`parse_error_code`]'s.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Client(ClientError::Agent(e)) => e.code.as_str(),
            CliError::Client(ClientError::Connect { .. } | ClientError::NoAgent(_)) => {
                "CANNOT_CONNECT"
            }
            CliError::Client(ClientError::Io { .. }) => "CONNECTION_LOST",
            CliError::Client(ClientError::Protocol(_)) => "BAD_ANSWER",
            CliError::Config(_) | CliError::Daemon(DaemonError::Config(_)) => "CONFIG_ERROR",
            CliError::Socket(_) | CliError::Daemon(DaemonError::Socket(_)) => "SOCKET_ERROR",
            CliError::Daemon(DaemonError::Fatal(_)) => "AGENT_FAILED",
            CliError::Input(_) => "INVALID_INPUT",
            CliError::Failed(_) => "FAILED",
            CliError::Answer { code, .. } => code.as_str(),
            CliError::Write { .. } => "WRITE_FAILED",
            CliError::Output(_) => "OUTPUT_FAILED",
        }
    }
}

/// The code of a command line clap refused, with `--format json|yaml`.
pub fn parse_error_code() -> &'static str {
    "USAGE"
}

/// An error as a script reads it: `{"error": <message>, "code": <CODE>}`.
pub fn error_payload(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "error": message, "code": code })
}

/// Reports how a command ended and returns the exit code. An error goes to `err` as
/// `Error: <message>`, or with `--format json|yaml` to `out` as [`error_payload`] (only there,
/// so that `2>&1 | jq` still reads one document); the exit code is the same either way.
pub fn report(
    format: Format,
    result: Result<Outcome, CliError>,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> u8 {
    match result {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            report_error(format, &e.to_string(), e.code(), out, err);
            e.exit_code()
        }
    }
}

/// Writes one error: `Error: <message>` on `err` for a table, or the payload on `out`.
pub fn report_error(
    format: Format,
    message: &str,
    code: &str,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) {
    let payload = error_payload(message, code);
    match format {
        Format::Table => {
            let _ = writeln!(err, "Error: {message}");
        }
        Format::Json | Format::Yaml => {
            let text = super::output::render(format, &payload, String::new);
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
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
    fn errors_carry_a_code_the_agent_gave_or_the_clis() {
        let agent = CliError::from(ClientError::Agent(crate::protocol::ErrorPayload {
            error: "admin only".into(),
            code: ErrorCode::PermissionDenied,
            kind: None,
        }));
        assert_eq!(agent.code(), "PERMISSION_DENIED");
        assert_eq!(CliError::Input("x".into()).code(), "INVALID_INPUT");
        let answer = CliError::Answer {
            message: "internal error".into(),
            code: ErrorCode::InternalError,
        };
        assert_eq!(answer.code(), "INTERNAL_ERROR");
        assert_eq!(answer.to_string(), "internal error (INTERNAL_ERROR)");
        let connect = CliError::from(ClientError::Connect {
            path: PathBuf::from("/x.sock"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(connect.code(), "CANNOT_CONNECT");
    }

    #[test]
    fn json_and_yaml_errors_go_to_stdout_with_the_code() {
        for format in [Format::Json, Format::Yaml] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = report(
                format,
                Err(CliError::Input("--ttl must be positive".into())),
                &mut out,
                &mut err,
            );
            assert_eq!(code, 1);
            assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
            let text = String::from_utf8(out).unwrap();
            let v = match format {
                Format::Json => serde_json::from_str(&text).unwrap(),
                _ => crate::yaml::parse(&text).unwrap(),
            };
            assert_eq!(
                v,
                serde_json::json!({"error":"--ttl must be positive","code":"INVALID_INPUT"})
            );
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = report(
            Format::Table,
            Err(CliError::Failed("boom".into())),
            &mut out,
            &mut err,
        );
        assert_eq!(code, 1);
        assert!(out.is_empty());
        assert_eq!(String::from_utf8(err).unwrap(), "Error: boom\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            report(Format::Json, Ok(Outcome::Negative), &mut out, &mut err),
            2
        );
        assert!(out.is_empty() && err.is_empty());
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
