//! The server: starts the actors around a listening socket and runs until told to stop.
//!
//! [`run`] takes its listener and its commands from outside, so the daemon (bound or
//! socket-activated socket, signals) and tests plug in the same way. Shutdown: stop accepting,
//! let each session finish the request in hand (at most [`DRAIN_TIMEOUT`]), write the
//! `agent_stop` record, flush and seal the audit log, remove the socket file if we bound it.
//!
//! Once serving, [`crate::supervise`] keeps systemd's watchdog fed and `STATUS=` current. A
//! socket-activated agent with `idle_exit_seconds` stops the same way when no client has been
//! connected for that long ([`Command::IdleExit`]); the socket stays with systemd.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, watch};

use crate::actors::audit_writer::{Append, AuditWriter, Flush, SealNow, Summarize};
use crate::actors::credentials::{CredentialListener, CredentialStats};
use crate::actors::listener::{Listener, StopAccepting};
use crate::actors::policy_watcher::{PolicyWatcher, Trigger};
use crate::actors::registry::{CapabilityRegistry, Stats};
use crate::actors::{Command, Shared};
use crate::audit::{AuditError, AuditEvent, EventType, Outcome};
use crate::capability::store::{CapStore, StoreError};
use crate::capability::{GrantLimits, KeyError, Signer};
use crate::config::AgentConfig;
use crate::durable::Committer;
use crate::supervise::{self, Supervisor, Targets};
use crate::transport::socket::AgentListener;

/// Longest wait for in-flight requests at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The signing key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The capability store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secrets backend cannot be opened.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    /// The listening socket cannot be used.
    #[error("listening socket: {0}")]
    Socket(std::io::Error),
    /// A file or directory of the agent's is not one it can trust or use.
    #[error(transparent)]
    File(#[from] crate::trust::FileError),
}

impl ServerError {
    /// The refused file, when that is why the server could not run.
    pub fn refused_file(&self) -> Option<&crate::trust::FileError> {
        match self {
            ServerError::File(f) | ServerError::Key(KeyError::File(f)) => Some(f),
            _ => None,
        }
    }
}

/// The command channel of a server: keep a [`Control::sender`] to reload or stop it.
pub struct Control {
    tx: mpsc::UnboundedSender<Command>,
    rx: mpsc::UnboundedReceiver<Command>,
}

impl Control {
    /// A new channel.
    pub fn new() -> Control {
        let (tx, rx) = mpsc::unbounded_channel();
        Control { tx, rx }
    }

    /// A handle that sends commands to the server.
    pub fn sender(&self) -> mpsc::UnboundedSender<Command> {
        self.tx.clone()
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

/// Opens the configured secrets backend.
fn open_secrets(
    config: &AgentConfig,
) -> Result<Arc<dyn crate::secrets::SecretBackend>, crate::secrets::SecretError> {
    use crate::secrets::file::{FileBackend, load_key};
    match config.secrets.backend.as_str() {
        "file" => {
            let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
            let (key, source) = load_key(
                &config.state_dir,
                creds.as_deref(),
                &config.secrets.credential,
            )?;
            tracing::info!(key = ?source, "secrets: file backend");
            Ok(Arc::new(FileBackend::open(
                &config.state_dir,
                &key,
                config.secrets.max_versions,
            )?))
        }
        "vault" => {
            use crate::secrets::SecretError;
            use crate::secrets::vault::{VaultBackend, VaultConfig};
            let section = config.secrets.vault.clone().ok_or_else(|| {
                SecretError::Invalid(
                    "secrets.backend is vault, but there is no secrets.vault section".into(),
                )
            })?;
            let mut vc: VaultConfig = serde_json::from_value(section)
                .map_err(|e| SecretError::Invalid(format!("secrets.vault: {e}")))?;
            vc.apply_process_env()?;
            vc.validate()?;
            Ok(Arc::new(VaultBackend::new(vc)?))
        }
        other => Err(crate::secrets::SecretError::Invalid(format!(
            "secrets.backend {other:?} is not file or vault"
        ))),
    }
}

/// Serves `listener` (and the systemd credentials socket `credentials`, if any) with `config`
/// until a [`Command::Shutdown`] arrives (or every sender is gone). Must run inside an actix
/// `System`.
pub async fn run(
    listener: AgentListener,
    credentials: Option<AgentListener>,
    config: AgentConfig,
    provenance: crate::config::Provenance,
    control: Control,
) -> Result<(), ServerError> {
    let agent_uid = nix::unistd::geteuid().as_raw();
    // Every file the agent trusts is checked before any is opened.
    crate::trust::check_agent_files(&config, agent_uid)?;
    // A per-user agent's first start: the policy directory the upstream docs point at.
    match crate::user_layout::prepare_policy_dir(&config, &crate::config::home_dir(), agent_uid) {
        Ok(Some(dir)) => tracing::info!(
            directory = %dir.display(),
            "made the policy directory, with a README and an inert example"
        ),
        Ok(None) => {}
        // Not fatal: a missing directory is an empty policy set, which denies.
        Err(e) => tracing::warn!(error = %e, "the policy directory could not be made"),
    }
    let signer = Arc::new(Signer::load_or_create(&config.state_dir)?);
    let admin_gid = config.ipc.admin_group.as_deref().and_then(|name| {
        let gid = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        if gid.is_none() {
            tracing::warn!(
                group = name,
                "ipc.admin_group does not exist; only root and the agent's user are admins"
            );
        }
        gid
    });
    let secrets = open_secrets(&config)?;
    let connections = Arc::new(AtomicUsize::new(0));
    let audit_writer = AuditWriter::open(&config.audit)?
        .with_admins(crate::audit::summary::Admins {
            agent_uid,
            admin_gid,
        })
        .with_connections(connections.clone())
        .with_region(config.region.clone())
        .sealed(&config.audit, &config.state_dir, signer.clone())
        .await?;
    let audit_health = audit_writer.health();
    let audit = audit_writer.start();
    let (watcher, policy_handle) = PolicyWatcher::start_load(
        config.policy_engine.directory.clone(),
        config.mode,
        agent_uid,
    );
    let start_error = watcher.last_error().map(str::to_string);
    let status_refresh = Arc::new(tokio::sync::Notify::new());
    let policy = watcher
        .with_audit(audit.clone())
        .with_status_refresh(status_refresh.clone())
        .start();
    let limits = GrantLimits::from(&config.capability_engine);
    let (mut store, mut caps) = CapStore::open(&config.state_dir)?;
    let now = jiff::Timestamp::now();
    caps.retain(|_, r| !r.droppable(now));
    // Start from a compact store: one atomic rename, never briefly absent.
    store.compact(caps.values())?;
    tracing::info!(capabilities = caps.len(), store = %store.path().display(), "capability registry restored");
    let store = Committer::start(
        "capability-store",
        store,
        crate::durable::Batching::up_to(config.audit.group_commit_delay()),
    )
    .map_err(|e| {
        ServerError::Store(StoreError {
            path: config.state_dir.clone(),
            message: e.to_string(),
        })
    })?;
    let registry = CapabilityRegistry::new(
        signer.clone(),
        limits,
        policy_handle.clone(),
        caps,
        Some(store),
    )
    .with_uid_limits((&config.capability_engine).into())
    .start();

    let AgentListener {
        listener: std_listener,
        origin,
    } = listener;
    let socket_activated = matches!(origin, crate::transport::socket::Origin::Activated { .. });
    let socket_path = match &origin {
        crate::transport::socket::Origin::Bound { path, .. } => path.display().to_string(),
        crate::transport::socket::Origin::Activated { path } => path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(inherited)".into()),
    };
    let tokio_listener =
        tokio::net::UnixListener::from_std(std_listener).map_err(ServerError::Socket)?;
    let credentials = match credentials {
        Some(c) => {
            let activated = matches!(c.origin, crate::transport::socket::Origin::Activated { .. });
            let stats = Arc::new(CredentialStats::new(
                c.path().map(|p| p.display().to_string()),
                activated,
            ));
            let l = tokio::net::UnixListener::from_std(c.listener).map_err(ServerError::Socket)?;
            Some((l, c.origin, stats))
        }
        None => None,
    };
    let (closing_tx, closing_rx) = watch::channel(false);
    let Control {
        tx: commands,
        rx: mut command_rx,
    } = control;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        started_at: jiff::Timestamp::now(),
        connections,
        shutting_down: AtomicBool::new(false),
        socket_path: socket_path.clone(),
        socket_activated,
        agent_uid,
        admin_gid,
        public_key: signer.public_key_base64(),
        audit_health,
        secrets,
        registry: registry.clone(),
        policy: policy.clone(),
        audit: audit.clone(),
        commands,
        closing: closing_rx,
        uid_connections: crate::limits::UidConnections::default(),
        rates: crate::limits::RateLimiter::default(),
        credentials: credentials.as_ref().map(|(_, _, stats)| stats.clone()),
        config,
        provenance,
    });
    let idle_exit = match shared.config.idle_exit_seconds {
        0 => None,
        secs if socket_activated => {
            tracing::info!(
                idle_exit_seconds = secs,
                "idle exit on: the agent stops when no client has been connected for that long"
            );
            Some(Duration::from_secs(secs))
        }
        secs => {
            tracing::warn!(
                idle_exit_seconds = secs,
                "idle_exit_seconds is ignored: the socket is not socket-activated, so nothing would start the agent again"
            );
            None
        }
    };
    // Binding never waits; a failure is logged and the agent goes on without HTTP.
    let telemetry = crate::telemetry::http::start(&shared.config.telemetry, shared.clone());
    let mut listener_actor = Listener::new(tokio_listener, shared.clone());
    if let Some(limit) = idle_exit {
        listener_actor = listener_actor.with_idle_exit(limit);
    }
    let listener_addr = listener_actor.start();
    let (credentials_addr, credentials_origin) = match credentials {
        Some((l, origin, stats)) => {
            tracing::info!(
                socket = stats.socket.as_deref().unwrap_or("(unnamed)"),
                activated = stats.activated,
                "serving systemd credentials"
            );
            let actor = CredentialListener::new(l, shared.clone(), policy_handle.clone(), stats);
            (Some(actor.start()), Some(origin))
        }
        None => (None, None),
    };
    let targets = Targets {
        listener: listener_addr.clone(),
        registry: registry.clone(),
        policy: policy.clone(),
        audit: audit.clone(),
        credentials: credentials_addr.clone(),
    };
    let watchdog = crate::notify::watchdog_timeout();

    let set = policy_handle.load();
    let credentials_note = match shared.credentials.as_ref() {
        Some(c) => format!(
            "; systemd credentials on {} ({} mappings)",
            c.socket.as_deref().unwrap_or("(unnamed)"),
            set.credentials.len()
        ),
        None => String::new(),
    };
    let mut start = AuditEvent::new(EventType::AgentStart, Outcome::Success).because(format!(
        "serving {socket_path}{credentials_note} in {} mode; policy generation {} ({} rules){}",
        shared.config.mode,
        set.generation,
        set.rules().len(),
        start_error
            .as_deref()
            .map(|e| format!("; policy load failed: {e}"))
            .unwrap_or_default()
    ));
    start.policy_generation = Some(set.generation);
    let _ = audit.send(Append(start)).await;
    tracing::info!(
        socket = %socket_path,
        activated = socket_activated,
        mode = %shared.config.mode,
        policy_generation = set.generation,
        fallback = %set.fallback.describe(),
        "agent ready"
    );
    drop(set);
    let first = supervise::probe_all(
        &targets,
        supervise::ping_timeout(supervise::tick_period(watchdog)),
    )
    .await;
    let status = supervise::status_line(
        &socket_path,
        shared.connection_count(),
        &supervise::assess(&first),
    );
    crate::notify::ready(&status);
    let supervisor = Supervisor::start(targets, shared.clone(), watchdog, status_refresh, status);

    let mut idle_stop = None;
    while let Some(cmd) = command_rx.recv().await {
        match cmd {
            Command::Reload => {
                // SIGHUP also reopens the audit log, for logrotate.
                if crate::actors::reopen_and_reload(&audit, &policy, Trigger::Signal)
                    .await
                    .is_err()
                {
                    tracing::error!("policy watcher is gone");
                }
                if let Some(notice) = shared.provenance.restart_notice() {
                    tracing::warn!("{notice}");
                }
            }
            Command::Shutdown => break,
            Command::IdleExit { idle_seconds } => {
                idle_stop = Some(idle_seconds);
                break;
            }
        }
    }

    tracing::info!("shutting down");
    if let Some(endpoint) = telemetry {
        endpoint.stop();
    }
    supervisor.stop().await;
    match idle_stop {
        Some(secs) => crate::notify::stopping_because(&format!("no client for {secs} s")),
        None => crate::notify::stopping(),
    }
    shared.shutting_down.store(true, Ordering::Relaxed);
    let _ = listener_addr.send(StopAccepting).await;
    if let Some(c) = &credentials_addr {
        let _ = c.send(StopAccepting).await;
    }
    let _ = closing_tx.send(true);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.busy_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = shared.busy_count();
    if left > 0 {
        tracing::warn!(
            connections = left,
            "connections still open after the drain timeout"
        );
    }
    let active = registry.send(Stats).await.map(|s| s.active).unwrap_or(0);
    let mut reason = match idle_stop {
        Some(secs) => format!(
            "stopped after {secs} s idle (idle_exit_seconds); {active} capabilities were active"
        ),
        None => format!("stopped; {active} capabilities were active"),
    };
    // Refusals counted beyond their uid's budget since the last summaries are written now,
    // before the agent_stop record, rather than with a next interval this process will not see.
    match audit.send(Summarize).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => reason.push_str(&format!(
            "; {n} refusal_summary records written at stop for the refusals counted since the last ones"
        )),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the refusal summaries could not be written at stop");
            reason.push_str("; the refusal summaries could not be written at stop (see the agent's log)");
        }
        Err(_) => tracing::error!("the audit writer is gone"),
    }
    let stop = AuditEvent::new(EventType::AgentStop, Outcome::Success).because(reason);
    let _ = audit.send(Append(stop)).await;
    if let Ok(Err(e)) = audit.send(Flush).await {
        tracing::error!(error = %e, "audit flush failed");
    }
    let _ = audit
        .send(SealNow(crate::audit::seal::SealReason::Stop))
        .await;
    origin.cleanup();
    if let Some(o) = credentials_origin {
        o.cleanup();
    }
    Ok(())
}
