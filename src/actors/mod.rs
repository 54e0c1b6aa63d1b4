//! The actors that wire the pure logic to the socket, and what they share.
//!
//! - [`listener::Listener`]: owns the listening socket, reads each peer's identity, starts a
//!   [`session::Session`] per connection.
//! - [`session::Session`]: decodes requests, asks the others, writes responses in order.
//! - [`registry::CapabilityRegistry`]: issues, validates, revokes, lists and expires
//!   capabilities; evaluates policy for grants against the current policy set.
//! - [`policy_watcher::PolicyWatcher`]: loads the policy directory and publishes immutable sets.
//! - [`audit_writer::AuditWriter`]: appends audit records and acknowledges each.
//! - [`credentials::CredentialListener`]: serves the systemd credentials socket; the
//!   `credential_list` and `credential_test` messages are in [`credential_requests`].
//!
//! A session hands each request to [`dispatch`], which asks the actors; what the agent says
//! about itself (status, policy list, running configuration) is built in [`reports`].
//!
//! Each of the long-lived ones answers a [`health::Ping`], which [`crate::supervise`] sends.

pub mod audit_writer;
pub mod credential_requests;
pub mod credentials;
pub mod dispatch;
mod grant_step;
pub mod health;
pub mod listener;
pub mod policy_watcher;
pub mod registry;
pub mod reports;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use actix::Addr;
use tokio::sync::{mpsc, watch};

use crate::config::AgentConfig;
use crate::identity::PeerIdentity;

/// Commands to the server loop (from signals, from `agent_stop`, from tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Reload the policy set (SIGHUP).
    Reload,
    /// Stop gracefully (SIGTERM, SIGINT, `agent_stop`).
    Shutdown,
    /// Stop gracefully because no client was connected for `idle_seconds` (a socket-activated
    /// agent with `idle_exit_seconds`); the listener has already stopped accepting.
    IdleExit {
        /// The configured idle time.
        idle_seconds: u64,
    },
}

/// What every session needs: configuration, counters and the other actors' addresses.
pub struct Shared {
    /// The effective configuration.
    pub config: AgentConfig,
    /// Where each of its values came from, and the configuration file as it was at start.
    pub provenance: crate::config::Provenance,
    /// When the agent started (for `uptime`).
    pub started: Instant,
    /// The same, as a timestamp.
    pub started_at: jiff::Timestamp,
    /// Open client connections (shared with the audit writer, see
    /// [`audit_writer::AuditWriter::with_connections`]).
    pub connections: Arc<AtomicUsize>,
    /// Set once shutdown began: new connections are refused.
    pub shutting_down: AtomicBool,
    /// The socket path shown in status.
    pub socket_path: String,
    /// Whether the socket came from systemd.
    pub socket_activated: bool,
    /// The agent's own uid (an admin; the development-mode owner).
    pub agent_uid: u32,
    /// The gid of `ipc.admin_group`, resolved at start.
    pub admin_gid: Option<u32>,
    /// The signing key's public half, base64.
    pub public_key: String,
    /// The audit log's health.
    pub audit_health: audit_writer::HealthRef,
    /// Where secrets live.
    pub secrets: Arc<dyn crate::secrets::SecretBackend>,
    /// The capability registry.
    pub registry: Addr<registry::CapabilityRegistry>,
    /// The policy watcher.
    pub policy: Addr<policy_watcher::PolicyWatcher>,
    /// The audit writer.
    pub audit: Addr<audit_writer::AuditWriter>,
    /// Sends commands to the server loop.
    pub commands: mpsc::UnboundedSender<Command>,
    /// Flips to `true` when sessions must finish and close.
    pub closing: watch::Receiver<bool>,
    /// Open connections per uid (`ipc.max_connections_per_uid`).
    pub uid_connections: crate::limits::UidConnections,
    /// Requests per second per uid (`ipc.rate_limit_per_uid`).
    pub rates: crate::limits::RateLimiter,
    /// The credentials socket's counts, when there is one.
    pub credentials: Option<Arc<credentials::CredentialStats>>,
}

impl Shared {
    /// Whether `id` may use admin messages: root, the agent's own uid, or `ipc.admin_group`.
    pub fn is_admin(&self, id: &PeerIdentity) -> bool {
        id.uid == 0 || id.uid == self.agent_uid || self.admin_gid.is_some_and(|g| id.has_gid(g))
    }

    /// Open connections now.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Open connections now, those of the credentials socket included: what idle exit and the
    /// drain at shutdown wait for.
    pub fn busy_count(&self) -> usize {
        self.connection_count() + self.credentials.as_ref().map_or(0, |c| c.open())
    }

    /// Audits a refused connection or request as `connection_rejected`. Like every refusal,
    /// beyond its uid's budget it is counted into a `refusal_summary` record instead of written
    /// one by one (see [`crate::audit::summary`]): a flood of refusals cannot flood the log.
    pub fn audit_rejection(&self, who: Option<&PeerIdentity>, reason: String) {
        let mut ev = crate::audit::AuditEvent::new(
            crate::audit::EventType::ConnectionRejected,
            crate::audit::Outcome::Rejected,
        )
        .because(reason);
        if let Some(p) = who {
            ev = ev.by(p);
        }
        self.audit.do_send(audit_writer::Append(ev));
    }
}

/// What SIGHUP and `agent_reload` both do: reopen the audit log (for logrotate; a failure is
/// logged and counts against the log's health), then reload the policy set and answer how it
/// went. `Err` only if the policy watcher is gone.
pub async fn reopen_and_reload(
    audit: &Addr<audit_writer::AuditWriter>,
    policy: &Addr<policy_watcher::PolicyWatcher>,
    trigger: policy_watcher::Trigger,
) -> Result<policy_watcher::ReloadOutcome, actix::MailboxError> {
    if let Ok(Err(e)) = audit.send(audit_writer::Reopen).await {
        tracing::error!(error = %e, "cannot reopen the audit log");
    }
    policy.send(policy_watcher::Reload(trigger)).await
}

/// Shared state handle.
pub type SharedRef = Arc<Shared>;
