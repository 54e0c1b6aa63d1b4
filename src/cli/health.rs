//! `agent health` and `agent metrics`: what a monitoring script or node_exporter's textfile
//! collector asks the running agent.
//!
//! `agent health` exits 0 when every check passes, 1 when one fails (audit, store, secrets
//! backend, policy; see [`crate::telemetry::health`]) and 2 when no agent can be reached; one
//! line per check, or the report with `--format json|yaml`.

use serde_json::Value;

use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format};
use crate::client::ClientError;
use crate::protocol::RequestType;
use crate::protocol::types::{MetricsResponse, StatusResponse};
use crate::telemetry::health::{assess, lines};

/// The exit code of `agent health` when no agent answers.
pub const UNREACHABLE: u8 = 2;

/// `agent health`.
pub fn health(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let answer = ctx.connect().and_then(|mut session| {
        session.exchange::<StatusResponse>(RequestType::StatusRequest, &Value::Null)
    });
    let status = match answer {
        Ok((status, _)) => status,
        Err(e @ CliError::Client(ClientError::Connect { .. } | ClientError::NoAgent(_))) => {
            return Err(CliError::WithExit {
                error: Box::new(e),
                exit: UNREACHABLE,
            });
        }
        Err(e) => return Err(e),
    };
    let report = assess(&status);
    let value = serde_json::to_value(&report)
        .map_err(|e| CliError::Failed(format!("cannot show the health report: {e}")))?;
    ctx.print(&output::render(ctx.format, &value, || lines(&report)))?;
    Ok(if report.healthy {
        Outcome::Success
    } else {
        Outcome::Unhealthy
    })
}

/// `agent metrics`: the metrics text as the agent sent it (or its answer, with
/// `--format json|yaml`).
pub fn metrics(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let mut session = ctx.connect()?;
    let (answer, raw): (MetricsResponse, Value) =
        session.exchange(RequestType::MetricsRequest, &Value::Null)?;
    let text = match ctx.format {
        Format::Table => answer.text,
        f => output::render(f, &raw, String::new),
    };
    ctx.print(&text)?;
    Ok(Outcome::Success)
}
