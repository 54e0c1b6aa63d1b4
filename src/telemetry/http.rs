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
//!
//! Gathering an answer asks every actor for its figures (as `agent status` does), so an answer
//! is kept and served again for `telemetry.cache_ms` (a second by default), and requests that
//! come during a gathering wait for it: a flood of requests costs the agent at most one
//! gathering per path in that time, not one per request.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    cache_for: Duration,
}

impl From<&TelemetryConfig> for Limits {
    fn from(c: &TelemetryConfig) -> Self {
        Limits {
            max_connections: c.max_connections,
            max_header_bytes: c.max_header_bytes,
            timeout: Duration::from_secs(c.timeout_seconds),
            cache_for: Duration::from_millis(c.cache_ms),
        }
    }
}

/// An answer kept for a while: the status code and body of the last gathering.
#[derive(Debug, Clone)]
pub struct Kept {
    for_how_long: Duration,
    answer: Option<(Instant, StatusCode, Bytes)>,
}

impl Kept {
    /// Keeps answers for `for_how_long` (zero: never).
    pub fn new(for_how_long: Duration) -> Kept {
        Kept {
            for_how_long,
            answer: None,
        }
    }

    /// The kept answer, if it was gathered less than the keeping time before `now`.
    pub fn get(&self, now: Instant) -> Option<(StatusCode, Bytes)> {
        let (at, code, body) = self.answer.as_ref()?;
        (now.saturating_duration_since(*at) < self.for_how_long).then(|| (*code, body.clone()))
    }

    /// Keeps `code` and `body`, gathered at `at`, unless what is kept was gathered later.
    pub fn put(&mut self, at: Instant, code: StatusCode, body: Bytes) {
        if self.answer.as_ref().is_some_and(|(kept, _, _)| *kept > at) {
            return;
        }
        self.answer = Some((at, code, body));
    }
}

/// One path's kept answer, and the lock that lets one request at a time gather it: the others
/// wait for that gathering and are answered with it.
#[derive(Debug)]
struct Slot {
    kept: RefCell<Kept>,
    gathering: tokio::sync::Mutex<()>,
}

impl Slot {
    fn new(keep_for: Duration) -> Slot {
        Slot {
            kept: RefCell::new(Kept::new(keep_for)),
            gathering: tokio::sync::Mutex::new(()),
        }
    }

    /// The kept answer if it is fresh; else one gathered by `gather` (by this request, or by
    /// the one that held the lock before it). With nothing kept (`cache_ms: 0`) every request
    /// gathers its own, without waiting for another's.
    async fn answer<F, Fut>(&self, gather: F) -> (StatusCode, Bytes)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (StatusCode, Bytes)>,
    {
        let keeps = !self.kept.borrow().for_how_long.is_zero();
        if !keeps {
            return gather().await;
        }
        if let Some(kept) = self.kept.borrow().get(Instant::now()) {
            return kept;
        }
        let _turn = self.gathering.lock().await;
        if let Some(kept) = self.kept.borrow().get(Instant::now()) {
            return kept;
        }
        let at = Instant::now();
        let (code, body) = gather().await;
        self.kept.borrow_mut().put(at, code, body.clone());
        (code, body)
    }
}

/// The kept answers of `/metrics` and `/health`, shared by the connections of the event loop.
#[derive(Debug)]
struct Answers {
    metrics: Slot,
    health: Slot,
}

async fn serve(listener: TcpListener, limits: Limits, shared: SharedRef) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let answers = Rc::new(Answers {
        metrics: Slot::new(limits.cache_for),
        health: Slot::new(limits.cache_for),
    });
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
        let answers = answers.clone();
        connections.spawn_local(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let answers = answers.clone();
                async move { Ok::<_, Infallible>(answer(&shared, &answers, &req).await) }
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
async fn answer(
    shared: &SharedRef,
    answers: &Answers,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
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
        let (code, body) = answers.metrics.answer(|| metrics_answer(shared)).await;
        let content_type = if code == StatusCode::OK {
            crate::metrics::CONTENT_TYPE
        } else {
            "text/plain"
        };
        return text(code, content_type, body);
    }
    let (code, body) = answers.health.answer(|| health_answer(shared)).await;
    text(code, "application/json", body)
}

/// `/metrics`' status code and body, gathered now.
async fn metrics_answer(shared: &SharedRef) -> (StatusCode, Bytes) {
    match super::metrics_text(shared).await {
        Ok(t) => (StatusCode::OK, Bytes::from(t)),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(b"the agent could not gather its metrics\n"),
        ),
    }
}

/// `/health`'s status code and body, gathered now.
async fn health_answer(shared: &SharedRef) -> (StatusCode, Bytes) {
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
    (status, Bytes::from(format!("{body}\n")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_its_time_and_no_longer() {
        let t0 = Instant::now();
        let mut kept = Kept::new(Duration::from_millis(1000));
        assert_eq!(kept.get(t0), None, "nothing gathered yet");
        kept.put(t0, StatusCode::OK, Bytes::from_static(b"a"));
        assert_eq!(
            kept.get(t0 + Duration::from_millis(999)),
            Some((StatusCode::OK, Bytes::from_static(b"a")))
        );
        assert_eq!(kept.get(t0 + Duration::from_millis(1000)), None);
        // A clock read before the gathering (another connection's) still gets it.
        assert!(
            kept.get(t0.checked_sub(Duration::from_millis(5)).unwrap_or(t0))
                .is_some()
        );
        let mut never = Kept::new(Duration::ZERO);
        never.put(t0, StatusCode::OK, Bytes::from_static(b"a"));
        assert_eq!(never.get(t0), None, "0 keeps nothing");
        // A gathering that started earlier and ended later does not replace a newer answer.
        let later = t0 + Duration::from_millis(10);
        kept.put(
            later,
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"b"),
        );
        kept.put(t0, StatusCode::OK, Bytes::from_static(b"a"));
        assert_eq!(
            kept.get(later),
            Some((StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"b")))
        );
    }

    #[actix_rt::test]
    async fn concurrent_misses_wait_for_one_gathering() {
        let slot = Rc::new(Slot::new(Duration::from_secs(60)));
        let gathered = Rc::new(std::cell::Cell::new(0));
        let ask = |slot: Rc<Slot>, gathered: Rc<std::cell::Cell<u32>>| async move {
            slot.answer(|| async {
                gathered.set(gathered.get() + 1);
                tokio::time::sleep(Duration::from_millis(20)).await;
                (StatusCode::OK, Bytes::from_static(b"m"))
            })
            .await
        };
        let answers =
            futures_util::future::join_all((0..5).map(|_| ask(slot.clone(), gathered.clone())))
                .await;
        assert!(answers.iter().all(|a| a.1 == "m"));
        assert_eq!(gathered.get(), 1, "one gathering for five requests");
        // Nothing kept: every request gathers its own.
        let none = Rc::new(Slot::new(Duration::ZERO));
        let n = Rc::new(std::cell::Cell::new(0));
        futures_util::future::join_all((0..3).map(|_| ask(none.clone(), n.clone()))).await;
        assert_eq!(n.get(), 3);
    }
}
