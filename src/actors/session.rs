//! The Session actor: one per connection, owning its reader and writer.
//!
//! Requests are decoded from the byte stream ([`RequestReader`]: size, nesting and
//! `ipc.request_deadline` limits) and handled one at a time (`ctx.wait`), so responses leave in
//! request order and a slow request holds back only its own connection. Nothing is read while a
//! request is handled, so a client that sends faster than it is answered waits in its own
//! socket buffer. Each request first passes the uid's rate limit (`ipc.rate_limit_per_uid`,
//! answered `RATE_LIMITED`). The session writes each response itself, awaiting the socket: a
//! client that does not read fills its socket's send buffer (`ipc.max_queued_bytes`), and once
//! a response has waited `ipc.write_timeout` seconds the connection is closed; nothing piles up
//! in the agent. A connection idle for `ipc.conn_timeout` seconds is told so and closed; at
//! shutdown a session finishes the request in hand, then closes. Refusals are audited as
//! `connection_rejected` (beyond the uid's audit budget, counted into a summary).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::dispatch::{After, Caller, Reply, error, frame_error, handle_frame};
use crate::protocol::{ErrorCode, ErrorPayload};
use crate::transport::framing::{DEFAULT_MAX_DEPTH, JsonStreamDecoder};
use crate::transport::reader::{ReadError, RequestReader};

/// One client connection.
pub struct Session {
    caller: Arc<Caller>,
    reader: Option<OwnedReadHalf>,
    writer: Option<OwnedWriteHalf>,
    /// When the last request began (or the connection, before any): what the idle timer
    /// measures from. A request only moves it; the one timer re-arms itself for the rest of
    /// the period when it fires early, instead of being replaced for every request.
    last_active: Instant,
}

impl Session {
    /// A session for an accepted connection (the connection is already counted).
    pub fn new(caller: Caller, stream: tokio::net::UnixStream) -> Session {
        let (reader, writer) = stream.into_split();
        Session {
            caller: Arc::new(caller),
            reader: Some(reader),
            writer: Some(writer),
            last_active: Instant::now(),
        }
    }

    /// Fires `wait` from now; closes the connection if it has been idle for
    /// `ipc.conn_timeout` by then, else waits again for the rest of the period.
    fn arm_idle_timer(&mut self, ctx: &mut Context<Self>, wait: Duration) {
        let secs = self.caller.shared.config.ipc.conn_timeout;
        if secs == 0 {
            return;
        }
        ctx.run_later(wait, move |act, ctx| {
            let period = Duration::from_secs(secs);
            let idle = act.last_active.elapsed();
            if idle < period {
                act.arm_idle_timer(ctx, period - idle);
                return;
            }
            let reply = error(
                "",
                ErrorPayload::new(
                    ErrorCode::IdleTimeout,
                    format!("connection idle for {secs} seconds; closing"),
                ),
                After::Close,
            );
            act.respond(ctx, async move { reply });
        });
    }

    /// Runs `reply` to completion, writes it, and closes if asked to or if writing fails;
    /// nothing else on this connection is processed meanwhile.
    fn respond(
        &mut self,
        ctx: &mut Context<Self>,
        reply: impl std::future::Future<Output = Reply> + 'static,
    ) {
        let writer = self.writer.take();
        let write_timeout = Duration::from_secs(self.caller.shared.config.ipc.write_timeout);
        ctx.wait(
            async move {
                let mut reply = reply.await;
                let Some(mut w) = writer else {
                    return (None, false, false);
                };
                if reply.line.is_empty() {
                    return (Some(w), reply.after == After::KeepOpen, false);
                }
                let outcome = tokio::time::timeout(write_timeout, w.write_all(&reply.line)).await;
                // A response may carry secret values: wipe it once it is on the socket.
                zeroize::Zeroize::zeroize(&mut reply.line);
                let stalled = outcome.is_err();
                let written = matches!(outcome, Ok(Ok(())));
                (Some(w), written && reply.after == After::KeepOpen, stalled)
            }
            .into_actor(self)
            .map(|(writer, keep_open, stalled), act, ctx| {
                act.writer = writer;
                if stalled {
                    let secs = act.caller.shared.config.ipc.write_timeout;
                    tracing::debug!(peer = %act.caller.identity.describe(), "closing connection: the client does not read");
                    act.caller.shared.audit_rejection(
                        Some(&act.caller.identity),
                        format!("NOT_READING: a response waited {secs} s for the client to read (ipc.write_timeout); closed"),
                    );
                }
                if !keep_open {
                    ctx.stop();
                }
            }),
        );
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(reader) = self.reader.take() {
            let ipc = &self.caller.shared.config.ipc;
            let requests = RequestReader::new(
                reader,
                JsonStreamDecoder::new(ipc.max_request_bytes, DEFAULT_MAX_DEPTH),
                Duration::from_secs(ipc.request_deadline),
            );
            ctx.add_stream(futures_util::stream::unfold(requests, |mut r| async move {
                r.next().await.map(|item| (item, r))
            }));
        }
        let mut closing = self.caller.shared.closing.clone();
        ctx.spawn(
            async move {
                while !*closing.borrow() {
                    if closing.changed().await.is_err() {
                        break;
                    }
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        );
        let period = Duration::from_secs(self.caller.shared.config.ipc.conn_timeout);
        self.arm_idle_timer(ctx, period);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.caller
            .shared
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.caller
            .shared
            .uid_connections
            .close(self.caller.identity.uid);
    }
}

impl StreamHandler<Result<Bytes, ReadError>> for Session {
    fn handle(&mut self, item: Result<Bytes, ReadError>, ctx: &mut Context<Self>) {
        self.last_active = Instant::now();
        let shared = &self.caller.shared;
        let uid = self.caller.identity.uid;
        match item {
            Ok(_)
                if !shared.rates.allow(
                    uid,
                    shared.config.ipc.rate_limit_per_uid,
                    shared.config.ipc.rate_burst_per_uid,
                    std::time::Instant::now(),
                ) =>
            {
                let rate = shared.config.ipc.rate_limit_per_uid;
                shared.audit_rejection(
                    Some(&self.caller.identity),
                    format!("RATE_LIMITED: uid {uid} above {rate} requests a second (ipc.rate_limit_per_uid)"),
                );
                let reply = error(
                    "",
                    ErrorPayload::new(
                        ErrorCode::RateLimited,
                        format!(
                            "uid {uid} is making more than {rate} requests a second; slow down"
                        ),
                    ),
                    After::KeepOpen,
                );
                self.respond(ctx, async move { reply });
            }
            Ok(frame) => {
                let caller = self.caller.clone();
                self.respond(ctx, handle_frame(caller, frame));
            }
            Err(ReadError::Frame(e)) => {
                tracing::debug!(error = %e, peer = %self.caller.identity.describe(), "closing connection");
                let reply = frame_error(&e);
                self.respond(ctx, async move { reply });
            }
            Err(ReadError::Deadline(d)) => {
                tracing::debug!(peer = %self.caller.identity.describe(), "closing connection: request deadline");
                shared.audit_rejection(
                    Some(&self.caller.identity),
                    format!("REQUEST_TIMEOUT: a request took over {} s to arrive (ipc.request_deadline)", d.as_secs()),
                );
                let reply = error(
                    "",
                    ErrorPayload::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "a request must arrive within {} seconds of its first byte; closing",
                            d.as_secs()
                        ),
                    ),
                    After::Close,
                );
                self.respond(ctx, async move { reply });
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
