//! The CredentialListener actor: serves the systemd credentials socket
//! (`LoadCredential=ID:/run/aether-vault/credentials.sock`, see [`crate::credentials`]).
//!
//! It speaks no protocol. For each connection it reads who the caller is from the kernel
//! (`SO_PEERCRED`, the process pinned with a pidfd, its unit from `/proc/PID/cgroup`) and the
//! address the caller bound (`getpeername`), decides with the set in force
//! ([`crate::credentials::decide`]), reads the secret from the backend off the event loop,
//! writes a `credential_delivery` audit record (synced, for a delivery, before a byte of the
//! value leaves), then writes the value, shuts the connection down and closes it. A refusal is
//! recorded too, and answered as the decision says: nothing at all, or, to the service manager
//! itself, more bytes than systemd takes, so that the unit's start fails.
//!
//! Bounds: at most `credentials.max_connections` connections are served at once, the others
//! wait in the socket's queue (refusing them would let their units start with an empty
//! credential); nothing is ever read from a connection; what it holds is one value of at most
//! `credentials.max_value_bytes`. Deciding and reading the backend must end within
//! `credentials.deadline_seconds` of the accept (a backend too slow is a failure, refused);
//! writing the answer then has `credentials.deadline_seconds` of its own, so that a refusal
//! decided late is still written whole (cut short, it would be a credential systemd accepts),
//! and a caller that does not read is cut off after it.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use super::SharedRef;
use super::audit_writer::{AppendAll, Wait};
use super::listener::StopAccepting;
use super::policy_watcher::PolicyHandle;
use crate::audit::{AuditEvent, CredentialRef, EventType, Outcome};
use crate::credentials::address::{self, AddressError, PeerAddress};
use crate::credentials::{Answer, FAIL_START_BYTES, Refusal, Verdict, decide, render};
use crate::identity::{self, PeerIdentity};
use crate::protocol::credentials::CredentialsStatus;

/// What the credentials socket has done, for `agent status`.
#[derive(Debug, Default)]
pub struct CredentialStats {
    /// The socket's path, when known.
    pub socket: Option<String>,
    /// Whether systemd passed it.
    pub activated: bool,
    open: AtomicUsize,
    delivered: AtomicU64,
    refused: AtomicU64,
}

impl CredentialStats {
    /// Stats for a socket at `socket` (passed by systemd if `activated`).
    pub fn new(socket: Option<String>, activated: bool) -> CredentialStats {
        CredentialStats {
            socket,
            activated,
            ..Default::default()
        }
    }

    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The counts as `status_response` shows them.
    pub fn status(&self) -> CredentialsStatus {
        CredentialsStatus {
            socket: self.socket.clone(),
            activated: self.activated,
            delivered: self.delivered.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Counts a connection as open while it lives.
struct Open(Arc<CredentialStats>);

impl Open {
    fn new(stats: &Arc<CredentialStats>) -> Open {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Open(stats.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one connection's handling needs.
struct Serve {
    shared: SharedRef,
    policy: PolicyHandle,
    stats: Arc<CredentialStats>,
}

/// The credentials socket's listener.
pub struct CredentialListener {
    listener: Option<UnixListener>,
    serve: Arc<Serve>,
}

impl CredentialListener {
    /// A listener for the credentials socket, deciding with the sets `policy` publishes.
    pub fn new(
        listener: UnixListener,
        shared: SharedRef,
        policy: PolicyHandle,
        stats: Arc<CredentialStats>,
    ) -> CredentialListener {
        CredentialListener {
            listener: Some(listener),
            serve: Arc::new(Serve {
                shared,
                policy,
                stats,
            }),
        }
    }
}

impl Actor for CredentialListener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let serve = self.serve.clone();
        let slots = Arc::new(Semaphore::new(
            serve.shared.config.credentials.max_connections.max(1),
        ));
        // Stopping the actor drops this loop, and with it the listening socket.
        let accepts = async move {
            loop {
                // Past the limit, connections wait in the socket's queue.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let serve = serve.clone();
                        let open = Open::new(&serve.stats);
                        actix_rt::spawn(async move {
                            serve.connection(stream).await;
                            drop((open, slot));
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "credentials socket: accept failed");
                        // e.g. EMFILE: do not spin; the limit may clear.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        };
        ctx.spawn(accepts.into_actor(self));
    }
}

/// The supervisor's ping ([`crate::supervise`]): answering it shows the actor is alive, so a
/// stopped listener stops the watchdog's keep-alives (and the agent, restarted whole).
impl Handler<crate::actors::health::Ping> for CredentialListener {
    type Result = actix::MessageResult<crate::actors::health::Ping>;

    fn handle(&mut self, _: crate::actors::health::Ping, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(crate::actors::health::Health::alive())
    }
}

impl Handler<StopAccepting> for CredentialListener {
    type Result = ();

    fn handle(&mut self, _: StopAccepting, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Who asked, as far as the kernel and the caller's address say.
struct Caller {
    identity: PeerIdentity,
    address: Result<PeerAddress, AddressError>,
}

/// Reads who is on the other end of `stream`: its credentials (completed, pinned, for root
/// only: nobody else can be the service manager) and the address it bound.
fn identify(stream: &UnixStream) -> Result<Caller, String> {
    let fd = stream.as_fd();
    let mut identity = identity::peer_credentials(fd).map_err(|e| e.to_string())?;
    if identity.uid == 0 {
        identity::complete(&mut identity, fd);
    }
    let address = address::peer_name(fd).and_then(|name| address::parse(&name));
    Ok(Caller { identity, address })
}

impl Serve {
    /// Handles one connection to its end.
    async fn connection(&self, mut stream: UnixStream) {
        let deadline =
            Instant::now() + Duration::from_secs(self.shared.config.credentials.deadline_seconds);
        let caller = match identify(&stream) {
            Ok(c) => c,
            Err(e) => {
                let ev = AuditEvent::new(EventType::CredentialDelivery, Outcome::Denied)
                    .because(format!("refused: the caller could not be identified: {e}"));
                self.refused(ev).await;
                return;
            }
        };
        let set = self.policy.load_full();
        let verdict = decide(
            &set,
            &caller.identity,
            &caller.address,
            jiff::Timestamp::now(),
        );
        drop(set);
        let delivery = match verdict {
            Verdict::Refuse(r) => return self.refuse(&mut stream, &caller, r).await,
            Verdict::Deliver(d) => d,
        };
        let backend = self.shared.secrets.clone();
        let path = delivery.mapping.path.clone();
        let read = actix_rt::task::spawn_blocking(move || backend.read(&path, None));
        let value = match timeout_at(deadline, read).await {
            Err(_) => Err(format!(
                "the secrets backend did not answer within credentials.deadline_seconds ({} s)",
                self.shared.config.credentials.deadline_seconds
            )),
            Ok(Err(_)) => Err("the secrets backend's thread failed".to_string()),
            Ok(Ok(Err(e))) => Err(format!("{}: {e}", delivery.mapping.resource)),
            Ok(Ok(Ok(version))) => render(
                &version,
                &delivery.mapping,
                self.shared.config.credentials.max_value_bytes,
            ),
        };
        let value = match value {
            Ok(v) => v,
            Err(why) => {
                let r = Refusal::failure(&delivery, format!("refused: {why}"));
                return self.refuse(&mut stream, &caller, r).await;
            }
        };
        let mut ev = event(
            &caller,
            Outcome::Success,
            &delivery.rules,
            delivery.generation,
        )
        .because(format!(
            "delivered {} bytes of {}: {}",
            value.len(),
            delivery.mapping.secret,
            delivery.reasoning
        ));
        ev.resource = Some(delivery.mapping.resource.clone());
        ev.actions = vec!["read".to_string()];
        // A delivery is on disk before a byte of the value leaves.
        if let Err(e) = self.append(ev, Wait::Durable).await {
            tracing::error!(error = %e, "a credential delivery could not be recorded; it is refused");
            let r = Refusal::failure(
                &delivery,
                "refused: the delivery could not be recorded in the audit log".to_string(),
            );
            return self.refuse(&mut stream, &caller, r).await;
        }
        let written = timeout_at(self.write_deadline(), async {
            stream.write_all(&value).await?;
            stream.shutdown().await
        })
        .await;
        drop(value);
        let failed = match written {
            Ok(Ok(())) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Err(e)) => format!("writing it failed: {e}"),
            Err(_) => format!(
                "writing it took longer than credentials.deadline_seconds ({} s)",
                self.shared.config.credentials.deadline_seconds
            ),
        };
        let mut ev = event(
            &caller,
            Outcome::Failure,
            &delivery.rules,
            delivery.generation,
        )
        .because(format!(
            "not delivered after all: {failed}; the unit did not get it whole"
        ));
        ev.resource = Some(delivery.mapping.resource.clone());
        self.refused(ev).await;
    }

    /// Records a refusal, then answers as it says: nothing, or enough bytes to fail the start.
    async fn refuse(&self, stream: &mut UnixStream, caller: &Caller, r: Refusal) {
        let mut ev = event(
            caller,
            r.outcome,
            &r.rules,
            r.generation.unwrap_or_default(),
        )
        .because(match r.answer {
            Answer::Nothing => r.reason.clone(),
            Answer::FailStart => format!("{}; the unit's start fails", r.reason),
        });
        ev.policy_generation = r.generation;
        if let Some(m) = &r.mapping {
            ev.resource = Some(m.resource.clone());
            ev.actions = vec!["read".to_string()];
        }
        self.refused(ev).await;
        if r.answer == Answer::FailStart {
            // Zeros, never anything of the secret; systemd stops reading at its limit and
            // fails the start, so an error writing the rest is expected.
            static ZEROS: [u8; 65536] = [0; 65536];
            let _ = timeout_at(self.write_deadline(), async {
                let mut left = FAIL_START_BYTES;
                while left > 0 {
                    let n = left.min(ZEROS.len());
                    stream.write_all(&ZEROS[..n]).await?;
                    left -= n;
                }
                stream.shutdown().await
            })
            .await;
        }
    }

    /// When writing an answer that starts now must have ended.
    fn write_deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.shared.config.credentials.deadline_seconds)
    }

    /// Counts and records a refusal (the record is written as refusals are, and also goes to
    /// the journal if it cannot be).
    async fn refused(&self, ev: AuditEvent) {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.append(ev, Wait::Written).await {
            tracing::error!(error = %e, "a credential refusal could not be recorded");
        }
    }

    async fn append(&self, ev: AuditEvent, wait: Wait) -> Result<(), String> {
        match self
            .shared
            .audit
            .send(AppendAll {
                events: vec![ev],
                wait,
            })
            .await
        {
            Ok(r) => r,
            Err(_) => Err("the audit writer is gone".to_string()),
        }
    }
}

/// A `credential_delivery` record of `caller` with `outcome`.
fn event(caller: &Caller, outcome: Outcome, rules: &[String], generation: u64) -> AuditEvent {
    let mut ev = AuditEvent::new(EventType::CredentialDelivery, outcome).by(&caller.identity);
    if let Ok(a) = &caller.address {
        ev.credential = Some(CredentialRef {
            id: a.id.clone(),
            unit: a.unit.clone(),
        });
    }
    ev.rules = rules.to_vec();
    ev.policy_generation = Some(generation);
    ev
}
