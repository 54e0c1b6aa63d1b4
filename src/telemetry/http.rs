//! The optional HTTP endpoint (`telemetry.listen`): `GET /metrics` (the metrics text) and
//! `GET /health` (200 when healthy, 503 when not, with a small JSON body naming each check and
//! whether it passed: no error text, nothing per resource). Anything else is 404, or 405 for
//! another method on those two paths.
//!
//! hyper 1 on the agent's own tokio runtime: a well-kept HTTP/1 parser that takes a limit on
//! the request head (`telemetry.max_header_bytes`) and a timer for it, without a thread of its
//! own. One request per connection (no keep-alive); at most `telemetry.max_connections` at
//! once (one more is closed at once); each connection has `telemetry.timeout_seconds` from
//! accept to its answer written, then it is closed. Binding happens at start and never waits;
//! a bind failure is logged and the agent serves its socket without HTTP. At shutdown the
//! endpoint is dropped first, with every connection it has open.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::actors::SharedRef;
use crate::config::TelemetryConfig;

/// A running endpoint; dropping it (or [`Endpoint::stop`]) closes it and its connections.
pub struct Endpoint {
    /// The address bound (the port, when `:0` was asked for).
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Stops accepting and drops every open connection.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `telemetry.listen` and serves it, if set. A bind failure is logged, not fatal.
pub fn start(config: &TelemetryConfig, shared: SharedRef) -> Option<Endpoint> {
    let addr = config.listen?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            address = %addr,
            "telemetry.listen is not a loopback address: anyone who can reach it can read the agent's metrics and health"
        );
    }
    let listener = match std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot serve telemetry over HTTP; the agent goes on without it");
            return None;
        }
    };
    let local_addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local_addr, "serving /metrics and /health over HTTP");
    let limits = Limits::from(config);
    let task = actix_rt::spawn(serve(listener, limits, shared));
    Some(Endpoint { local_addr, task })
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    max_header_bytes: usize,
    timeout: Duration,
}

impl From<&TelemetryConfig> for Limits {
    fn from(c: &TelemetryConfig) -> Self {
        Limits {
            max_connections: c.max_connections,
            max_header_bytes: c.max_header_bytes,
            timeout: Duration::from_secs(c.timeout_seconds),
        }
    }
}

async fn serve(listener: TcpListener, limits: Limits, shared: SharedRef) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Owned here: when this task is aborted, every connection goes with it.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "telemetry: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                limit = limits.max_connections,
                "telemetry: connection closed, telemetry.max_connections reached"
            );
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        connections.spawn_local(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, &req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(false)
                .max_buf_size(limits.max_header_bytes)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.timeout)
                .serve_connection(TokioIo::new(stream), service);
            // Whatever happens (a timeout, garbage, a reset), the connection just ends.
            let _ = tokio::time::timeout(limits.timeout, conn).await;
        });
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// What one request gets.
async fn answer(shared: &SharedRef, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/health") {
        return text(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    }
    if req.method() != Method::GET {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    if path == "/metrics" {
        return match super::metrics_text(shared).await {
            Ok(t) => text(StatusCode::OK, crate::metrics::CONTENT_TYPE, t),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "the agent could not gather its metrics\n",
            ),
        };
    }
    let (status, body) = match super::health(shared).await {
        Ok(report) => (
            if report.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            health_body(&report),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"healthy": false}),
        ),
    };
    text(status, "application/json", format!("{body}\n"))
}

/// `{"healthy": …, "checks": {"audit": true, …}}`: names and results only, no error text (an
/// error may name a file or a secret's path).
pub fn health_body(r: &super::health::HealthReport) -> serde_json::Value {
    let checks: serde_json::Map<String, serde_json::Value> = r
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.healthy.into()))
        .collect();
    serde_json::json!({"healthy": r.healthy, "checks": checks})
}
