//! The `telemetry` section of the configuration: the optional HTTP endpoint serving
//! `GET /metrics` and `GET /health` (see [`crate::telemetry::http`]), off by default.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `telemetry` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The address to serve HTTP on (`127.0.0.1:9090`); none = no HTTP endpoint (the default).
    /// An address other than loopback is warned about in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// HTTP connections served at once; one more is closed at once.
    pub max_connections: usize,
    /// Largest request head (request line and headers), bytes; a larger one is refused.
    pub max_header_bytes: usize,
    /// Seconds one connection may take from accept to its answer written (the request head
    /// included); a slower one is closed.
    pub timeout_seconds: u64,
    /// Milliseconds an answer of `/metrics` or `/health` is served again before it is gathered
    /// anew (0–60000; 0: every request gathers its own). Gathering asks every actor for its
    /// figures; this bounds what a flood of requests costs the agent.
    pub cache_ms: u64,
}

/// The smallest `max_header_bytes` (the HTTP library's own minimum buffer).
pub const MIN_HEADER_BYTES: usize = 8192;
/// The largest `max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            listen: None,
            max_connections: 8,
            max_header_bytes: MIN_HEADER_BYTES,
            timeout_seconds: 10,
            cache_ms: 1000,
        }
    }
}

impl TelemetryConfig {
    /// Checks the values; the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |k: &str, m: String| Err((k.to_string(), m));
        if !(1..=1024).contains(&self.max_connections) {
            return fail(
                "telemetry.max_connections",
                format!("{} is not between 1 and 1024", self.max_connections),
            );
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return fail(
                "telemetry.max_header_bytes",
                format!(
                    "{} is not between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}",
                    self.max_header_bytes
                ),
            );
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return fail(
                "telemetry.timeout_seconds",
                format!("{} is not between 1 and 300", self.timeout_seconds),
            );
        }
        if self.cache_ms > 60_000 {
            return fail(
                "telemetry.cache_ms",
                format!("{} is more than 60000", self.cache_ms),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_limits_are_checked() {
        let c = TelemetryConfig::default();
        assert_eq!(c.listen, None);
        assert!(c.validate().is_ok());
        let bad = |f: fn(&mut TelemetryConfig)| {
            let mut c = TelemetryConfig::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(|c| c.max_connections = 0), "telemetry.max_connections");
        assert_eq!(
            bad(|c| c.max_header_bytes = 100),
            "telemetry.max_header_bytes"
        );
        assert_eq!(
            bad(|c| c.max_header_bytes = MAX_HEADER_BYTES + 1),
            "telemetry.max_header_bytes"
        );
        assert_eq!(bad(|c| c.timeout_seconds = 0), "telemetry.timeout_seconds");
        assert_eq!(bad(|c| c.cache_ms = 60_001), "telemetry.cache_ms");
        assert_eq!(c.cache_ms, 1000);
    }
}
