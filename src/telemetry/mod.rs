//! What the agent tells monitoring: its metrics ([`metrics_text`], from [`crate::metrics`]) and
//! its health ([`health::assess`]), both gathered the way `agent status` gathers its answer
//! ([`crate::actors::reports::status`]), and the optional HTTP endpoint that serves them
//! (`telemetry.listen`, [`http`]).

pub mod health;
pub mod http;

use crate::actors::SharedRef;
use crate::protocol::ErrorPayload;

/// The metrics text a scrape gets: the counters, and the figures of a status answer with the
/// admin detail (counts and health only; nothing per resource or per uid).
pub async fn metrics_text(shared: &SharedRef) -> Result<String, ErrorPayload> {
    let status = crate::actors::reports::status(shared, true).await?;
    Ok(crate::metrics::global().render(&crate::metrics::snapshot(&status)))
}

/// The health checks of a public status answer (what `aether-vault agent health` shows).
pub async fn health(shared: &SharedRef) -> Result<health::HealthReport, ErrorPayload> {
    let status = crate::actors::reports::status(shared, false).await?;
    Ok(health::assess(&status))
}
