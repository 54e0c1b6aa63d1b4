//! The live metrics: counters and histograms the agent updates as it works (atomics, through
//! the `prometheus` crate), and the text a scrape gets ([`Metrics::render`]), which adds the
//! figures read at scrape time (connections, capabilities, health) from a [`Snapshot`].
//!
//! Recording a request is cheap: its series (one per message type and outcome) is created on
//! first use and then found by index, without a hash or a lock; counting is an atomic add.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::labels::{self, RequestOutcome};
use crate::audit::{EventType, Outcome};
use crate::protocol::RequestType;

/// Request latency buckets, seconds: 10 µs to 2.5 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05, 0.25,
    2.5,
];
/// Audit write-and-sync buckets, seconds: 10 µs to 1 s.
const SYNC_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1, 1.0,
];

/// Message types (the known ones, then `unknown`) times outcomes.
const TYPES: usize = RequestType::ALL.len() + 1;
const OUTCOMES: usize = RequestOutcome::ALL.len();

/// One request series: its counter and its latency histogram, created on first use.
type Series = OnceLock<(IntCounter, Histogram)>;

/// The figures read when scraped rather than counted as they happen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The agent's version (`build_info`).
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Open client connections.
    pub connections: usize,
    /// `ipc.max_connections`.
    pub max_connections: usize,
    /// Capabilities neither revoked nor expired.
    pub capabilities_active: usize,
    /// Whether the last audit write succeeded.
    pub audit_healthy: bool,
    /// Audit writes that failed since start.
    pub audit_failures: u64,
    /// Whether the capability store's writer works.
    pub store_healthy: bool,
    /// The policy generation in force.
    pub policy_generation: u64,
    /// Rules in force.
    pub policy_rules: usize,
    /// Whether the last policy load failed.
    pub policy_error: bool,
    /// The secrets backend (`file`, `vault`) and whether it is healthy.
    pub secrets: Option<(&'static str, bool)>,
    /// The secrets cache's figures, when there is a cache.
    pub cache: Option<crate::secrets::CacheStats>,
    /// Credentials delivered and refused on the credentials socket, when there is one.
    pub credentials: Option<(u64, u64)>,
}

/// The counters and histograms the agent updates.
pub struct Metrics {
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    /// The series of `requests` and `request_seconds`, by type index and outcome index.
    by_request: Box<[[Series; OUTCOMES]; TYPES]>,
    decisions: IntCounterVec,
    secret_calls: IntCounterVec,
    audit_sync: Histogram,
    policy_reloads: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

// The names, help texts and label names below are constants, so building them cannot fail.
fn counters(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

fn histograms(name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("a valid metric")
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Metrics {
        Metrics {
            requests: counters(
                "requests_total",
                "Requests handled, by message type and outcome",
                &["type", "outcome"],
            ),
            request_seconds: histograms(
                "request_duration_seconds",
                "Time from a request's arrival to its answer, by message type and outcome",
                &LATENCY_BUCKETS,
                &["type", "outcome"],
            ),
            by_request: Box::new(std::array::from_fn(|_| {
                std::array::from_fn(|_| OnceLock::new())
            })),
            decisions: counters(
                "decisions_total",
                "Decisions recorded in the audit log, by event and outcome",
                &["event", "outcome"],
            ),
            secret_calls: counters(
                "secrets_backend_calls_total",
                "Calls to the secrets backend, by operation and outcome",
                &["operation", "outcome"],
            ),
            audit_sync: Histogram::with_opts(
                HistogramOpts::new(
                    "audit_sync_seconds",
                    "Time to write and sync one batch of audit records on the writer thread",
                )
                .buckets(SYNC_BUCKETS.to_vec()),
            )
            .expect("a valid metric"),
            policy_reloads: counters(
                "policy_reloads_total",
                "Policy set loads after the first, by outcome",
                &["outcome"],
            ),
        }
    }

    /// One request handled: its type (`None`: unknown or unreadable), how it ended, and how
    /// long it took.
    pub fn request(&self, kind: Option<RequestType>, outcome: RequestOutcome, took: Duration) {
        let t = kind
            .and_then(|k| RequestType::ALL.iter().position(|&x| x == k))
            .unwrap_or(TYPES - 1);
        let o = outcome as usize;
        let (count, latency) = self.by_request[t][o].get_or_init(|| {
            let values = [labels::message_type(kind), outcome.as_str()];
            (
                self.requests.with_label_values(&values),
                self.request_seconds.with_label_values(&values),
            )
        });
        count.inc();
        latency.observe(took.as_secs_f64());
    }

    /// One decision recorded (its audit event's type and outcome).
    pub fn decision(&self, kind: EventType, outcome: Outcome) {
        self.decisions
            .with_label_values(&[labels::event(kind), labels::decision(outcome)])
            .inc();
    }

    /// One call to the secrets backend: the operation (`read`, `write`, `list`, `delete`) and
    /// its result label ([`labels::secret_result`]).
    pub fn secret_call(&self, operation: &'static str, outcome: &'static str) {
        self.secret_calls
            .with_label_values(&[operation, outcome])
            .inc();
    }

    /// One batch of audit records written and synced by the writer thread.
    pub fn audit_sync(&self, took: Duration) {
        self.audit_sync.observe(took.as_secs_f64());
    }

    /// One policy load after the first (reload, watch, SIGHUP), and whether it worked.
    pub fn policy_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.policy_reloads.with_label_values(&[outcome]).inc();
    }

    /// The text a scrape gets: every family in the Prometheus text format (version 0.0.4,
    /// [`super::CONTENT_TYPE`]), names prefixed `aether_vault_`.
    pub fn render(&self, snap: &Snapshot) -> String {
        let live: [Box<dyn Collector>; 6] = [
            Box::new(self.requests.clone()),
            Box::new(self.request_seconds.clone()),
            Box::new(self.decisions.clone()),
            Box::new(self.secret_calls.clone()),
            Box::new(self.audit_sync.clone()),
            Box::new(self.policy_reloads.clone()),
        ];
        let registry = match Registry::new_custom(Some("aether_vault".into()), None) {
            Ok(r) => r,
            Err(_) => return String::new(),
        };
        for c in live.into_iter().chain(snapshot_gauges(snap)) {
            // Every name is distinct and constant: registering cannot fail.
            let _ = registry.register(c);
        }
        let mut text = String::new();
        let mut bytes = Vec::new();
        if TextEncoder::new()
            .encode(&registry.gather(), &mut bytes)
            .is_ok()
        {
            text = String::from_utf8(bytes).unwrap_or_default();
        }
        text
    }
}

fn gauge(name: &str, help: &str, value: i64) -> Box<dyn Collector> {
    let g = IntGauge::new(name, help).expect("a valid metric");
    g.set(value);
    Box::new(g)
}

/// A counter read from elsewhere (a total kept by another part of the agent).
fn counter(name: &str, help: &str, value: u64) -> Box<dyn Collector> {
    let c = IntCounter::new(name, help).expect("a valid metric");
    c.inc_by(value);
    Box::new(c)
}

fn labelled_gauge(name: &str, help: &str, label: (&str, &str), value: i64) -> Box<dyn Collector> {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label.0]).expect("a valid metric");
    g.with_label_values(&[label.1]).set(value);
    Box::new(g)
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn snapshot_gauges(s: &Snapshot) -> Vec<Box<dyn Collector>> {
    let uptime = prometheus::Gauge::new("uptime_seconds", "Time since the agent started")
        .expect("a valid metric");
    uptime.set(s.uptime_seconds);
    let mut v: Vec<Box<dyn Collector>> = vec![
        labelled_gauge(
            "build_info",
            "The agent's version",
            ("version", &s.version),
            1,
        ),
        Box::new(uptime),
        gauge(
            "connections",
            "Open client connections",
            count(s.connections),
        ),
        gauge(
            "connections_max",
            "The connection limit (ipc.max_connections)",
            count(s.max_connections),
        ),
        gauge(
            "capabilities_active",
            "Capabilities neither revoked nor expired",
            count(s.capabilities_active),
        ),
        gauge(
            "audit_healthy",
            "1 while audit records can be written (requests are refused otherwise)",
            flag(s.audit_healthy),
        ),
        counter(
            "audit_write_failures_total",
            "Audit writes that failed since start",
            s.audit_failures,
        ),
        gauge(
            "store_healthy",
            "1 while the capability store's writer works",
            flag(s.store_healthy),
        ),
        gauge(
            "policy_generation",
            "The policy set generation in force",
            i64::try_from(s.policy_generation).unwrap_or(i64::MAX),
        ),
        gauge("policy_rules", "Rules in force", count(s.policy_rules)),
        gauge(
            "policy_load_error",
            "1 while the last policy load failed (the previous set stays in force)",
            flag(s.policy_error),
        ),
    ];
    if let Some((backend, healthy)) = s.secrets {
        v.push(labelled_gauge(
            "secrets_backend_healthy",
            "1 while the secrets backend answers",
            ("backend", backend),
            flag(healthy),
        ));
    }
    if let Some(c) = &s.cache {
        v.push(counter(
            "secrets_cache_hits_total",
            "Secret reads answered from the cache",
            c.hits,
        ));
        v.push(counter(
            "secrets_cache_misses_total",
            "Secret reads that asked the backend",
            c.misses,
        ));
        v.push(counter(
            "secrets_cache_stale_served_total",
            "Answers served from an expired cache entry while the backend was unavailable",
            c.stale_served,
        ));
        v.push(gauge(
            "secrets_cache_entries",
            "Values held in the secrets cache",
            i64::try_from(c.entries).unwrap_or(i64::MAX),
        ));
    }
    if let Some((delivered, refused)) = s.credentials {
        v.push(counter(
            "credentials_delivered_total",
            "systemd credentials delivered",
            delivered,
        ));
        v.push(counter(
            "credentials_refused_total",
            "systemd credential fetches refused",
            refused,
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_snapshot_are_rendered_with_bounded_labels() {
        let m = Metrics::new();
        for took in [20, 30] {
            m.request(
                Some(RequestType::PingRequest),
                RequestOutcome::Ok,
                Duration::from_micros(took),
            );
        }
        m.request(None, RequestOutcome::Invalid, Duration::from_micros(5));
        m.decision(EventType::CapabilityRequest, Outcome::Denied);
        m.secret_call("read", "not_found");
        m.policy_reload(false);
        m.audit_sync(Duration::from_millis(1));
        let text = m.render(&Snapshot {
            version: "9.9.9".into(),
            connections: 3,
            audit_healthy: true,
            secrets: Some(("vault", false)),
            ..Snapshot::default()
        });
        for line in [
            "# TYPE aether_vault_requests_total counter",
            "aether_vault_requests_total{outcome=\"ok\",type=\"ping_request\"} 2",
            "aether_vault_requests_total{outcome=\"invalid\",type=\"unknown\"} 1",
            "aether_vault_request_duration_seconds_count{outcome=\"ok\",type=\"ping_request\"} 2",
            "aether_vault_decisions_total{event=\"capability_request\",outcome=\"denied\"} 1",
            "aether_vault_secrets_backend_calls_total{operation=\"read\",outcome=\"not_found\"} 1",
            "aether_vault_policy_reloads_total{outcome=\"failed\"} 1",
            "aether_vault_audit_sync_seconds_count 1",
            "aether_vault_connections 3",
            "aether_vault_audit_healthy 1",
            "aether_vault_store_healthy 0",
            "aether_vault_secrets_backend_healthy{backend=\"vault\"} 0",
            "aether_vault_build_info{version=\"9.9.9\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(
            !text.contains("secrets_cache"),
            "no cache, no cache figures"
        );
        assert!(
            !text.contains("credentials_"),
            "no socket, no credential figures"
        );
    }
}
