//! The Listener actor: owns the listening socket, reads each peer's identity at accept, enforces
//! the connection limit, and starts a Session per connection.
//!
//! A connection over `ipc.max_connections`, or one that arrives during shutdown, gets an
//! `error_response` with a code before it is closed: never a silent drop. The last
//! `ipc.admin_reserved_connections` slots are kept for administrators (root, the agent's user,
//! `ipc.admin_group`), so that other users holding every other connection cannot lock them out.
//!
//! Idle exit (`idle_exit_seconds`, socket-activated agents only): the listener itself checks,
//! a few times per idle period, whether a client is connected ([`IdleClock`]). When none has
//! been for long enough, it closes its copy of the listening socket in the same step as the
//! check, before it could accept anything else, and asks the server to stop. A connection that
//! raced with the check is therefore either already accepted and counted (so there is no exit)
//! or still waiting in the kernel's queue of the socket systemd holds, for the next instance.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::stream;
use tokio::net::{UnixListener, UnixStream};

use super::dispatch::{After, Caller, error};
use super::health::{Health, Ping};
use super::session::Session;
use super::{Command, Shared, SharedRef};
use crate::identity::{self, PeerIdentity};
use crate::limits;
use crate::protocol::{ErrorCode, ErrorPayload};
use nix::sys::socket::{setsockopt, sockopt};

/// Stop accepting connections (the listening socket is closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccepting;

/// How long the agent has been without a client, as far as the listener can tell: it knows
/// when it last accepted a connection and, at each check, whether any is open.
#[derive(Debug, Clone, Copy)]
pub struct IdleClock {
    busy_at: Instant,
}

impl IdleClock {
    /// A clock that starts counting at `now` (the agent has just started).
    pub fn new(now: Instant) -> IdleClock {
        IdleClock { busy_at: now }
    }

    /// A connection was accepted at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.busy_at = self.busy_at.max(now);
    }

    /// How long there has been no client at `now`, given the open `connections`; `None` while
    /// one is connected. The time a client left is not seen, only that it was there at an
    /// earlier check, so this errs on the side of staying up, by at most one check period.
    pub fn observe(&mut self, now: Instant, connections: usize) -> Option<Duration> {
        if connections > 0 {
            self.touch(now);
            return None;
        }
        Some(now.saturating_duration_since(self.busy_at))
    }
}

/// How often to check for idleness: four times per idle period, between 50 ms and 1 s.
pub fn idle_check_period(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// The listener.
pub struct Listener {
    listener: Option<UnixListener>,
    shared: SharedRef,
    /// With idle exit: the idle time that ends the agent, and the clock.
    idle_exit: Option<(Duration, IdleClock)>,
}

impl Listener {
    /// A listener actor for a bound or inherited socket.
    pub fn new(listener: UnixListener, shared: SharedRef) -> Self {
        Listener {
            listener: Some(listener),
            shared,
            idle_exit: None,
        }
    }

    /// Stops accepting and asks the server to stop once no client has been connected for
    /// `limit` (only for a socket-activated agent: the caller decides).
    pub fn with_idle_exit(mut self, limit: Duration) -> Self {
        self.idle_exit = Some((limit, IdleClock::new(Instant::now())));
        self
    }

    /// Exits if the agent has been idle for long enough. Runs on the listener's own context,
    /// so no connection is accepted between the check and the close.
    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let Some((limit, clock)) = self.idle_exit.as_mut() else {
            return;
        };
        if self
            .shared
            .shutting_down
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let idle = clock.observe(Instant::now(), self.shared.busy_count());
        if idle.is_none_or(|idle| idle < *limit) {
            return;
        }
        let idle_seconds = limit.as_secs();
        tracing::info!(
            idle_seconds,
            "no client connected for idle_exit_seconds: stopping; the socket stays with systemd, which starts the agent again on the next connection"
        );
        self.idle_exit = None;
        self.shared
            .shutting_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // Stopping drops the accept stream, which closes our copy of the socket; no further
        // accept is polled after this handler returns.
        ctx.stop();
        let _ = self
            .shared
            .commands
            .send(Command::IdleExit { idle_seconds });
    }

    fn refuse(&self, stream: UnixStream, code: ErrorCode, message: &str) {
        // Best effort, never blocking: the error fits in an empty socket buffer.
        let reply = error("", ErrorPayload::new(code, message), After::Close);
        let _ = stream.try_write(&reply.line);
    }

    /// Whether the peer is an administrator, from what the kernel recorded at `connect()`:
    /// its uid and gid, and only if those do not settle it and there is an admin group, its
    /// supplementary groups (one more `getsockopt`; asked only when the reserved slots are
    /// reached). Nothing the client says counts.
    fn admin_at_connect(shared: &Shared, peer: &mut PeerIdentity, fd: BorrowedFd<'_>) -> bool {
        if shared.is_admin(peer) {
            return true;
        }
        if shared.admin_gid.is_none() {
            return false;
        }
        peer.groups = identity::supplementary_groups(fd);
        shared.is_admin(peer)
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
        // The limits need only the kernel's uid (one getsockopt); the full identity (/proc,
        // NSS) is read only for a connection that will be served.
        let mut peer = match identity::peer_credentials(stream.as_fd()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "connection refused: no peer credentials");
                self.refuse(
                    stream,
                    ErrorCode::PermissionDenied,
                    "the caller's identity could not be verified",
                );
                return;
            }
        };
        let max = shared.config.ipc.max_connections;
        let reserved = shared.config.ipc.admin_reserved_connections;
        let before = shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = limits::connection_slot(before, max, reserved, || {
            Self::admin_at_connect(shared, &mut peer, stream.as_fd())
        });
        if slot != limits::Slot::Free {
            shared
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let (audit, answer) = if slot == limits::Slot::Full {
                (
                    format!("TOO_MANY_CONNECTIONS: {max} connections open (ipc.max_connections)"),
                    format!("the agent serves at most {max} connections"),
                )
            } else {
                (
                    format!(
                        "TOO_MANY_CONNECTIONS: {before} connections open; the last {reserved} of ipc.max_connections {max} are for administrators (ipc.admin_reserved_connections)"
                    ),
                    format!(
                        "the agent serves at most {} connections of users other than administrators",
                        max - reserved
                    ),
                )
            };
            tracing::warn!(max, reserved, peer = %peer.describe(), "connection refused: too many connections");
            shared.audit_rejection(Some(&peer), audit);
            self.refuse(stream, ErrorCode::TooManyConnections, &answer);
            return;
        }
        let per_uid = shared.config.ipc.max_connections_per_uid;
        if let Err(open) = shared.uid_connections.try_open(peer.uid, per_uid) {
            shared
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(per_uid, peer = %peer.describe(), "connection refused: too many connections for this uid");
            shared.audit_rejection(
                Some(&peer),
                format!(
                    "TOO_MANY_CONNECTIONS: uid {} has {open} connections open (ipc.max_connections_per_uid)",
                    peer.uid
                ),
            );
            self.refuse(
                stream,
                ErrorCode::TooManyConnections,
                &format!(
                    "uid {} already has {open} connections open, the most one uid may have",
                    peer.uid
                ),
            );
            return;
        }
        identity::complete(&mut peer, stream.as_fd());
        let identity = peer;
        // Bound what the kernel holds for a client that does not read (Linux doubles the
        // value it is given, for its own bookkeeping).
        let queued = shared.config.ipc.max_queued_bytes / 2;
        if let Err(e) = setsockopt(&stream, sockopt::SndBuf, &queued) {
            tracing::debug!(error = %e, "cannot set SO_SNDBUF");
        }
        if let Some((_, clock)) = self.idle_exit.as_mut() {
            clock.touch(Instant::now());
        }
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
        if let Some((limit, _)) = self.idle_exit {
            ctx.run_interval(idle_check_period(limit), |act, ctx| act.check_idle(ctx));
        }
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

impl Handler<Ping> for Listener {
    type Result = MessageResult<Ping>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Health::alive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_counts_from_the_last_client_seen() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = IdleClock::new(t0);
        assert_eq!(c.observe(t0 + s(1), 0), Some(s(1)), "idle since the start");
        assert_eq!(c.observe(t0 + s(2), 1), None, "a client is connected");
        assert_eq!(
            c.observe(t0 + s(5), 0),
            Some(s(3)),
            "since it was last seen"
        );
        c.touch(t0 + s(6));
        assert_eq!(
            c.observe(t0 + s(7), 0),
            Some(s(1)),
            "a client that came and went between two checks still counts"
        );
        c.touch(t0 + s(3));
        assert_eq!(c.observe(t0 + s(8), 0), Some(s(2)), "never goes back");
    }

    #[test]
    fn the_check_period_is_a_quarter_of_the_limit_within_bounds() {
        assert_eq!(
            idle_check_period(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            idle_check_period(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
        assert_eq!(
            idle_check_period(Duration::from_millis(1)),
            Duration::from_millis(50)
        );
    }
}
