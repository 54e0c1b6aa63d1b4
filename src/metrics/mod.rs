//! Metrics in the Prometheus text format (0.0.4), through the `prometheus` crate: what the
//! agent counts as it works ([`registry::Metrics`], one per process: [`global`]), the label
//! values it may use ([`labels`]: fixed sets only), and what a scrape adds from the agent's
//! status ([`snapshot`]). Served by `metrics_request` on the socket and, when
//! `telemetry.listen` is set, by `GET /metrics` ([`crate::telemetry`]).
//!
//! Why not `prometheus-client`: it writes only the OpenMetrics text format, whose counters
//! (`# TYPE x counter` over samples named `x_total`) the Prometheus text format parsers read as
//! an empty counter plus an untyped series — Python's `prometheus_client.parser` does, and so
//! does node_exporter's textfile collector, which reads only the Prometheus text format. The
//! Prometheus server reads either.

pub mod labels;
pub mod registry;

use std::sync::LazyLock;

pub use labels::RequestOutcome;
pub use registry::{Metrics, Snapshot};

use crate::protocol::types::StatusResponse;

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// The scrape-time figures a status answer (with its admin detail) carries.
pub fn snapshot(s: &StatusResponse) -> Snapshot {
    let detail = s.detail.as_ref();
    Snapshot {
        version: s.version.clone(),
        uptime_seconds: s.uptime as f64 / 1e9,
        connections: s.connection_count,
        max_connections: s.max_connections,
        capabilities_active: s.capabilities_active,
        audit_healthy: s.audit_healthy,
        audit_failures: detail.map_or(0, |d| d.audit_failures),
        store_healthy: s.store_healthy,
        policy_generation: s.policy_generation,
        policy_rules: s.policy_rules,
        policy_error: s.policy_last_error.is_some(),
        secrets: s.secrets.as_ref().map(|h| {
            let backend = match h.backend.as_str() {
                "file" => "file",
                "vault" => "vault",
                _ => "other",
            };
            (backend, h.healthy)
        }),
        cache: detail.and_then(|d| d.secrets_cache.clone()),
        credentials: s
            .credentials
            .as_ref()
            .filter(|c| c.socket.is_some())
            .map(|c| (c.delivered, c.refused)),
    }
}
