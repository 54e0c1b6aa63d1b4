//! How a command ends: [`Outcome`] for an answer (yes → 0, no → 2) and [`CliError`] for a
//! failure (exit 1, reported as `Error: <message>` on stderr, and with `--format json|yaml` also
//! as `{"error": <message>, "code": <CODE>}` on stdout; see [`report`]).

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
    /// `agent health`: the agent answered, and a check failed: exit 1.
    Unhealthy,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Negative => 2,
            Outcome::Child(code) => code,
            Outcome::Unhealthy => 1,
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
    /// A failure with an exit code other than 1 (`agent health` that reaches no agent: 2).
    #[error("{error}")]
    WithExit {
        /// The failure.
        error: Box<CliError>,
        /// The exit code.
        exit: u8,
    },
    /// A failure that comes with a report of its own (a failed reload's answer, a failed audit
    /// verification): with `--format json|yaml` the report is printed, carrying `error` (unless
    /// it has one) and `code`, as the one document on stdout.
    #[error("{error}")]
    WithReport {
        /// The failure.
        error: Box<CliError>,
        /// The report (a JSON object).
        report: serde_json::Value,
    },
}

impl CliError {
    /// The process exit code: 1 (2 is reserved for a "no" from the agent), unless the command
    /// gave another ([`CliError::WithExit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::WithExit { exit, .. } => *exit,
            _ => 1,
        }
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
            CliError::WithReport { error, .. } | CliError::WithExit { error, .. } => error.code(),
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
/// `Error: <message>`, and with `--format json|yaml` also to `out` as [`error_payload`], so that
/// a script reading stdout keeps the code; the exit code is the same either way.
pub fn report(
    format: Format,
    result: Result<Outcome, CliError>,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> u8 {
    match result {
        Ok(outcome) => outcome.code(),
        Err(CliError::WithReport { error, report }) if format != Format::Table => {
            let mut doc = match report {
                serde_json::Value::Object(map) => map,
                other => {
                    let mut map = serde_json::Map::new();
                    map.insert("report".into(), other);
                    map
                }
            };
            doc.entry("error")
                .or_insert_with(|| error.to_string().into());
            doc.insert("code".into(), error.code().into());
            let text = super::output::render(format, &serde_json::Value::Object(doc), String::new);
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            let _ = writeln!(err, "Error: {error}");
            error.exit_code()
        }
        Err(e) => {
            report_error(format, &e.to_string(), e.code(), out, err);
            e.exit_code()
        }
    }
}

/// Writes one error: `Error: <message>` on `err`, and with `--format json|yaml` the payload on
/// `out`.
pub fn report_error(
    format: Format,
    message: &str,
    code: &str,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) {
    if format != Format::Table {
        let text = super::output::render(format, &error_payload(message, code), String::new);
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    let _ = writeln!(err, "Error: {message}");
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
            assert_eq!(
                String::from_utf8(err).unwrap(),
                "Error: --ttl must be positive\n"
            );
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
        // A failure with a report of its own: one document, carrying the code.
        let with = || CliError::WithReport {
            error: Box::new(CliError::Failed("the audit chain is broken".into())),
            report: serde_json::json!({"ok": false, "line": 3}),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(report(Format::Json, Err(with()), &mut out, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Error: the audit chain is broken\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ok": false, "line": 3, "error": "the audit chain is broken",
                               "code": "FAILED"})
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(report(Format::Table, Err(with()), &mut out, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Error: the audit chain is broken\n"
        );
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
