//! The Listener actor: owns the listening socket, reads each peer's identity at accept, enforces
//! the connection limit, and starts a Session per connection.
//!
//! A connection over `ipc.max_connections`, or one that arrives during shutdown, gets an
//! `error_response` with a code before it is closed: never a silent drop.

use std::os::fd::AsFd;

use actix::prelude::*;
use futures_util::stream;
use tokio::net::{UnixListener, UnixStream};

use super::SharedRef;
use super::audit_writer::Append;
use super::dispatch::{After, Caller, error};
use super::session::Session;
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::identity;
use crate::protocol::{ErrorCode, ErrorPayload};

/// Stop accepting connections (the listening socket is closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccepting;

/// The listener.
pub struct Listener {
    listener: Option<UnixListener>,
    shared: SharedRef,
}

impl Listener {
    /// A listener actor for a bound or inherited socket.
    pub fn new(listener: UnixListener, shared: SharedRef) -> Self {
        Listener {
            listener: Some(listener),
            shared,
        }
    }

    fn refuse(&self, stream: UnixStream, code: ErrorCode, message: &str) {
        // Best effort, never blocking: the error fits in an empty socket buffer.
        let reply = error("", ErrorPayload::new(code, message), After::Close);
        let _ = stream.try_write(&reply.line);
    }

    fn accept(&mut self, stream: UnixStream) {
        let shared = &self.shared;
        if shared
            .shutting_down
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.refuse(
                stream,
                ErrorCode::ShuttingDown,
                "the agent is shutting down",
            );
            return;
        }
        let max = shared.config.ipc.max_connections;
        let before = shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if before >= max {
            shared
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let peer = identity::from_socket(stream.as_fd()).ok();
            tracing::warn!(max, peer = ?peer.as_ref().map(|p| p.describe()), "connection refused: too many connections");
            let mut ev = AuditEvent::new(EventType::ConnectionRejected, Outcome::Rejected)
                .because(format!("TOO_MANY_CONNECTIONS: {max} connections open"));
            if let Some(p) = &peer {
                ev = ev.by(p);
            }
            shared.audit.do_send(Append(ev));
            self.refuse(
                stream,
                ErrorCode::TooManyConnections,
                &format!("the agent serves at most {max} connections"),
            );
            return;
        }
        let identity = match identity::from_socket(stream.as_fd()) {
            Ok(id) => id,
            Err(e) => {
                shared
                    .connections
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(error = %e, "connection refused: no peer credentials");
                self.refuse(
                    stream,
                    ErrorCode::PermissionDenied,
                    "the caller's identity could not be verified",
                );
                return;
            }
        };
        tracing::debug!(peer = %identity.describe(), "connection accepted");
        let is_admin = shared.is_admin(&identity);
        let caller = Caller {
            shared: shared.clone(),
            identity: std::sync::Arc::new(identity),
            is_admin,
        };
        Session::new(caller, stream).start();
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let accepts = stream::unfold(listener, |l| async move {
            let r = l.accept().await.map(|(s, _)| s);
            if r.is_err() {
                // e.g. EMFILE: do not spin; the limit may clear.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Some((r, l))
        });
        ctx.add_stream(accepts);
    }
}

impl StreamHandler<std::io::Result<UnixStream>> for Listener {
    fn handle(&mut self, item: std::io::Result<UnixStream>, _: &mut Context<Self>) {
        match item {
            Ok(stream) => self.accept(stream),
            Err(e) => tracing::warn!(error = %e, "accept failed"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<StopAccepting> for Listener {
    type Result = ();

    fn handle(&mut self, _: StopAccepting, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
