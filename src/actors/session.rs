//! The Session actor: one per connection, owning its reader and writer.
//!
//! Requests are decoded from the byte stream ([`JsonStreamDecoder`]) and handled one at a time
//! (`ctx.wait`), so responses leave in request order and a slow request holds back only its own
//! connection. The session writes each response itself, awaiting the socket, so a client that
//! does not read fills its own socket buffer and then times out; nothing piles up in the agent.
//! A connection idle for `ipc.conn_timeout` seconds is told so and closed; at shutdown a session
//! finishes the request in hand, then closes.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;

use super::dispatch::{After, Caller, Reply, error, frame_error, handle_frame};
use crate::protocol::{ErrorCode, ErrorPayload};
use crate::transport::framing::{DEFAULT_MAX_DEPTH, FrameError, JsonStreamDecoder};

/// How long one response may take to be written before the connection is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One client connection.
pub struct Session {
    caller: Arc<Caller>,
    reader: Option<OwnedReadHalf>,
    writer: Option<OwnedWriteHalf>,
    idle: Option<SpawnHandle>,
}

impl Session {
    /// A session for an accepted connection (the connection is already counted).
    pub fn new(caller: Caller, stream: tokio::net::UnixStream) -> Session {
        let (reader, writer) = stream.into_split();
        Session {
            caller: Arc::new(caller),
            reader: Some(reader),
            writer: Some(writer),
            idle: None,
        }
    }

    fn arm_idle_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.idle.take() {
            ctx.cancel_future(h);
        }
        let secs = self.caller.shared.config.ipc.conn_timeout;
        if secs == 0 {
            return;
        }
        self.idle = Some(ctx.run_later(Duration::from_secs(secs), move |act, ctx| {
            let reply = error(
                "",
                ErrorPayload::new(
                    ErrorCode::IdleTimeout,
                    format!("connection idle for {secs} seconds; closing"),
                ),
                After::Close,
            );
            act.respond(ctx, async move { reply });
        }));
    }

    /// Runs `reply` to completion, writes it, and closes if asked to or if writing fails;
    /// nothing else on this connection is processed meanwhile.
    fn respond(
        &mut self,
        ctx: &mut Context<Self>,
        reply: impl std::future::Future<Output = Reply> + 'static,
    ) {
        let writer = self.writer.take();
        ctx.wait(
            async move {
                let mut reply = reply.await;
                let Some(mut w) = writer else {
                    return (None, false);
                };
                if reply.line.is_empty() {
                    return (Some(w), reply.after == After::KeepOpen);
                }
                let written = matches!(
                    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&reply.line)).await,
                    Ok(Ok(()))
                );
                // A response may carry secret values: wipe it once it is on the socket.
                zeroize::Zeroize::zeroize(&mut reply.line);
                (Some(w), written && reply.after == After::KeepOpen)
            }
            .into_actor(self)
            .map(|(writer, keep_open), act, ctx| {
                act.writer = writer;
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
            let max = self.caller.shared.config.ipc.max_request_bytes;
            ctx.add_stream(FramedRead::new(
                reader,
                JsonStreamDecoder::new(max, DEFAULT_MAX_DEPTH),
            ));
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
        self.arm_idle_timer(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.caller
            .shared
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl StreamHandler<Result<Bytes, FrameError>> for Session {
    fn handle(&mut self, item: Result<Bytes, FrameError>, ctx: &mut Context<Self>) {
        self.arm_idle_timer(ctx);
        match item {
            Ok(frame) => {
                let caller = self.caller.clone();
                self.respond(ctx, handle_frame(caller, frame));
            }
            Err(e) => {
                tracing::debug!(error = %e, peer = %self.caller.identity.describe(), "closing connection");
                let reply = frame_error(&e);
                self.respond(ctx, async move { reply });
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
