//! The agent process: logging, configuration, the listening socket, signals, and then
//! [`crate::server::run`]. Both `aether-vault-agent` and `aether-vault agent start` end up here.

use std::path::PathBuf;

use crate::actors::Command;
use crate::config::{self, ConfigError, Overrides, PathDefaults};
use crate::server::{self, Control};
use crate::transport::socket::{self, Activated, AgentListener, SocketError};

/// Where operational logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogTarget {
    /// journald when the process runs under systemd (or stderr is not a terminal and the
    /// journal socket exists), else stderr.
    #[default]
    Auto,
    /// Always journald.
    Journald,
    /// Always stderr.
    Stderr,
}

/// How to start the agent.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// `--config`: the YAML configuration file.
    pub config_file: Option<PathBuf>,
    /// Flag values that override file and environment.
    pub overrides: Overrides,
    /// Where operational logs go.
    pub log_target: LogTarget,
}

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No listening socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Anything else that stops the agent.
    #[error("{0}")]
    Fatal(String),
}

/// Runs the agent in the foreground until SIGTERM/SIGINT or `agent_stop`.
///
/// `activated` holds the sockets systemd passed, taken by
/// [`crate::transport::socket::take_activated`] before any thread started, and told apart
/// here by their paths and names ([`crate::transport::socket::choose`]). A socket it does not
/// hold is bound here: the agent's at `socket_path`, the credentials socket at
/// `credentials.socket_path` unless that is empty. A credentials socket systemd passed is
/// served whatever the key says: the socket unit is what asked for it.
pub fn run(options: DaemonOptions, activated: Activated) -> Result<(), DaemonError> {
    let paths = PathDefaults::for_current_user();
    let loaded = config::load(options.config_file.as_deref(), &options.overrides, &paths)?;
    crate::logging::init(&loaded.config.log_level, options.log_target);
    stop_on_panic();
    match &loaded.file {
        Some(f) => tracing::info!(file = %f.display(), "configuration loaded"),
        None => tracing::info!("no configuration file; using defaults, environment and flags"),
    }
    let refused = |e: &SocketError| {
        if let SocketError::Untrusted(f) = e {
            crate::oplog::file_refused(f);
        }
    };
    let (agent, credentials) = activated.split(
        &loaded.config.socket_path,
        &loaded.config.credentials.socket_path,
    )?;
    let listener = match agent {
        Some(l) => l,
        None => socket::bind(&loaded.config.socket_path, loaded.config.ipc.socket_mode.0)
            .inspect_err(refused)?,
    };
    let credentials = match credentials_socket(credentials, &loaded.config) {
        Ok(c) => c,
        Err(e) => {
            refused(&e);
            listener.cleanup();
            return Err(e.into());
        }
    };
    let control = Control::new();
    forward_signals(control.sender())
        .map_err(|e| DaemonError::Fatal(format!("cannot handle signals: {e}")))?;
    let (config, provenance) = (loaded.config, loaded.provenance);
    let cleanup_origin = listener.origin.clone();
    let cleanup_credentials = credentials.as_ref().map(|c| c.origin.clone());
    let result = actix_rt::System::new().block_on(server::run(
        listener,
        credentials,
        config,
        provenance,
        control,
    ));
    if let Err(e) = &result {
        // A refused file goes to the journal with its own MESSAGE_ID, the path and the fix.
        if let Some(f) = e.refused_file() {
            crate::oplog::file_refused(f);
        }
        cleanup_origin.cleanup();
        if let Some(c) = cleanup_credentials {
            c.cleanup();
        }
    }
    result.map_err(|e| DaemonError::Fatal(e.to_string()))
}

/// The credentials socket: the one systemd passed, else bound at `credentials.socket_path`
/// (mode 0600: only root, the service manager, may connect; the agent's own user owns it),
/// else none.
fn credentials_socket(
    activated: Option<AgentListener>,
    config: &crate::config::AgentConfig,
) -> Result<Option<AgentListener>, SocketError> {
    let path = &config.credentials.socket_path;
    if let Some(l) = activated {
        if l.path() != Some(path.as_path()) {
            tracing::info!(
                passed = %l.path().map(|p| p.display().to_string()).unwrap_or_else(|| "(unnamed)".into()),
                configured = %path.display(),
                "serving the credentials socket systemd passed, not credentials.socket_path"
            );
        }
        return Ok(Some(l));
    }
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    socket::bind(path, 0o600).map(Some)
}

/// The exit status after a panic (`EX_SOFTWARE`).
pub const PANIC_EXIT: i32 = 70;

/// Makes a panic anywhere in the agent (an actor's handler, a blocking task) stop the process,
/// after saying where in the log: an agent whose registry or audit writer is gone would stay
/// half-alive, refusing every request with INTERNAL_ERROR. Exiting non-zero lets systemd
/// restart it (`Restart=on-failure`) with its state intact.
fn stop_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(
            panic = %crate::oplog::clean(&what),
            location = %at,
            thread = %thread,
            "a part of the agent panicked; stopping so that it is restarted whole"
        );
        crate::notify::status(&format!("stopped: panic at {at}"));
        print(info);
        std::process::exit(PANIC_EXIT);
    }));
}

/// SIGTERM and SIGINT stop the agent; SIGHUP reloads policies.
fn forward_signals(tx: tokio::sync::mpsc::UnboundedSender<Command>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let cmd = if sig == SIGHUP {
                    Command::Reload
                } else {
                    Command::Shutdown
                };
                tracing::info!(signal = sig, "signal received");
                if tx.send(cmd).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}
