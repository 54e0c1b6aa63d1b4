//! Agent configuration: what the agent reads, from where, and in what order.
//!
//! Layers, later ones winning: built-in defaults for the mode (development, standard, hardened:
//! the upstream table) < YAML file (`--config`, `VAULT_AGENT_CONFIG_FILE`, else
//! `/etc/aether-vault/agent.yaml` for root or `~/.aether-vault/agent.yaml`) < `VAULT_AGENT_*`
//! environment variables < command-line flags. Path defaults are per-user, except for root in
//! standard and hardened mode ([`PathDefaults`]): development mode never uses system paths,
//! nor searches the system's configuration file when the mode is given by flag or environment. Key names are upstream's. An unknown key or a bad
//! value is an error that names the key and where it came from.
//!
//! Environment: `VAULT_AGENT_MODE`, `VAULT_AGENT_LOG_LEVEL`, `VAULT_AGENT_SOCKET_PATH`,
//! `VAULT_AGENT_POLICY_DIR`, `VAULT_AGENT_AUDIT_FILE`, `VAULT_AGENT_STATE_DIR`,
//! `VAULT_AGENT_IDLE_EXIT_SECONDS`, `VAULT_AGENT_REGION`, and any nested key with `__` between levels
//! (`VAULT_AGENT_IPC__MAX_CONNECTIONS=50`).

mod credentials;
mod errors;
mod model;
mod provenance;
mod telemetry;
mod tilde;
mod yaml_provider;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Serialized};

pub use model::{
    AgentConfig, AuditConfig, AuditSync, CREDENTIAL_SIZE_MAX, CapabilityEngineConfig,
    CredentialsConfig, FailureAction, IpcConfig, MAX_TTL_LIMIT, Mode, PolicyEngineConfig,
    REGION_MAX_LEN, RequestLimits, SocketMode, TelemetryConfig, check_region,
};
pub use provenance::{FileStamp, Provenance, leaf_keys, redact};
pub use yaml_provider::YamlFile;

/// Why there is no high-availability setting (upstream's `--enable-ha`, `VAULT_AGENT_HA`,
/// `VAULT_AGENT_PEER_ADDRESSES`), and what to do instead.
pub const NO_HA: &str = "this agent has no high-availability mode. It is a per-host agent: it \
serves the processes of its own host over a Unix socket and takes their identity from that \
host's kernel, so an agent on another host could not stand in for it. Run one agent on every \
host (systemd's socket unit restarts it on the next request; in Kubernetes, a DaemonSet) and \
keep the secrets highly available in their backend instead (secrets.backend: vault, with a \
Vault or OpenBao cluster).";

/// Top-level keys of upstream's high-availability setup, refused with [`NO_HA`].
const HA_KEYS: [&str; 3] = ["ha", "enable_ha", "peer_addresses"];

/// A configuration that cannot be used. Each names where the value came from once and the key
/// plainly ([`errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, or its value has the wrong type or is not acceptable.
    #[error("{origin}: {key}: {message}")]
    Value {
        /// Where the value came from: `FILE:LINE:COLUMN`, `environment variable NAME`,
        /// `command-line flag --NAME`.
        origin: String,
        /// The key, e.g. `capability_engine.default_ttl`.
        key: String,
        /// What is wrong, and the fix where one is known.
        message: String,
    },
    /// The configuration file cannot be read or parsed (`FILE:LINE:COLUMN: what`).
    #[error("{0}")]
    File(String),
    /// The named configuration file does not exist.
    #[error("configuration file {0} not found")]
    MissingFile(PathBuf),
}

/// The name of the command-line layer.
const FLAGS: &str = "command-line flags";
/// The start of the name of the built-in defaults layer.
const DEFAULTS: &str = "built-in defaults";

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Overrides {
    /// `--mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `--socket-path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<PathBuf>,
    /// `--log-level`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `--state-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// `--region`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `--policy-dir`, nested as `policy_engine.directory`.
    #[serde(skip)]
    pub policy_dir: Option<PathBuf>,
    /// `--audit-file`, nested as `audit.log_file`.
    #[serde(skip)]
    pub audit_file: Option<PathBuf>,
    /// `--credentials-socket`, nested as `credentials.socket_path` (empty turns it off).
    #[serde(skip)]
    pub credentials_socket: Option<PathBuf>,
}

impl Overrides {
    /// Whether no value is given.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none()
            && self.socket_path.is_none()
            && self.log_level.is_none()
            && self.state_dir.is_none()
            && self.policy_dir.is_none()
            && self.audit_file.is_none()
            && self.credentials_socket.is_none()
    }

    fn to_value(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}));
        if let Some(d) = &self.policy_dir {
            v["policy_engine"] = serde_json::json!({ "directory": d });
        }
        if let Some(f) = &self.audit_file {
            v["audit"] = serde_json::json!({ "log_file": f });
        }
        if let Some(c) = &self.credentials_socket {
            v["credentials"] = serde_json::json!({ "socket_path": c });
        }
        v
    }
}

/// One set of built-in path defaults: the system's or one user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPaths {
    /// The agent socket.
    pub socket_path: PathBuf,
    /// The policy directory.
    pub policy_dir: PathBuf,
    /// The state directory (signing key, capability store, secrets).
    pub state_dir: PathBuf,
    /// The audit log.
    pub audit_file: PathBuf,
    /// The configuration file searched when none is named.
    pub config_file: PathBuf,
    /// The systemd credentials socket; empty (none) for a per-user agent, which the service
    /// manager (root) has no business asking.
    pub credentials_socket: PathBuf,
}

impl DefaultPaths {
    /// System-wide paths (root, standard and hardened mode).
    pub fn system() -> Self {
        DefaultPaths {
            socket_path: PathBuf::from("/run/aether-vault/agent.sock"),
            policy_dir: PathBuf::from("/etc/aether-vault/policies.d"),
            state_dir: PathBuf::from("/var/lib/aether-vault"),
            audit_file: PathBuf::from("/var/log/aether-vault/audit.log"),
            config_file: PathBuf::from("/etc/aether-vault/agent.yaml"),
            credentials_socket: PathBuf::from("/run/aether-vault/credentials.sock"),
        }
    }

    /// Per-user paths under `home/.aether-vault`.
    pub fn user(home: &Path) -> Self {
        let base = home.join(".aether-vault");
        DefaultPaths {
            socket_path: base.join("agent.sock"),
            policy_dir: base.join("policies"),
            state_dir: base.join("state"),
            audit_file: base.join("audit.log"),
            config_file: base.join("agent.yaml"),
            credentials_socket: PathBuf::new(),
        }
    }
}

/// The path defaults a process chooses from: its user's always, the system's only for root,
/// and those only in standard and hardened mode. Development mode never uses system paths,
/// even as root: a trial run must not leave root-owned files where the packaged service (which
/// runs as its own user) keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDefaults {
    /// Per-user paths.
    pub user: DefaultPaths,
    /// System paths, when the process may use them (euid 0).
    pub system: Option<DefaultPaths>,
}

impl PathDefaults {
    /// For the current process: per-user under [`home_dir`], and system paths if euid is 0.
    pub fn for_current_user() -> Self {
        PathDefaults {
            user: DefaultPaths::user(&home_dir()),
            system: nix::unistd::geteuid().is_root().then(DefaultPaths::system),
        }
    }

    /// Per-user paths under `home` only.
    pub fn user_only(home: &Path) -> Self {
        PathDefaults {
            user: DefaultPaths::user(home),
            system: None,
        }
    }

    /// The defaults of `mode`: system paths only in standard and hardened mode, and only when
    /// there are any; per-user paths otherwise.
    pub fn for_mode(&self, mode: Mode) -> &DefaultPaths {
        match (&self.system, mode) {
            (Some(system), Mode::Standard | Mode::Hardened) => system,
            _ => &self.user,
        }
    }
}

/// `$HOME`, else the passwd entry's home, else `/`.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// A loaded configuration and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The effective configuration.
    pub config: AgentConfig,
    /// The YAML file that was read, if any.
    pub file: Option<PathBuf>,
    /// Where each value came from, and the file as it was at start.
    pub provenance: Provenance,
}

/// Loads the configuration: mode defaults < file < environment < flags.
///
/// `config_file` is `--config`; without it `VAULT_AGENT_CONFIG_FILE`, then the default path
/// (which may be absent). A file that was named explicitly must exist.
pub fn load(
    config_file: Option<&Path>,
    overrides: &Overrides,
    paths: &PathDefaults,
) -> Result<LoadedConfig, ConfigError> {
    let named = config_file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("VAULT_AGENT_CONFIG_FILE").map(PathBuf::from));
    // A mode given by flag or environment picks the default file: development mode does not
    // read the system's, whose paths are the packaged service's.
    let early_mode: Option<Mode> = Figment::new()
        .merge(env_provider())
        .merge(Named {
            name: FLAGS.into(),
            value: overrides.to_value(),
        })
        .extract_inner("mode")
        .ok();
    let default_file = &paths
        .for_mode(early_mode.unwrap_or(Mode::Standard))
        .config_file;
    let searched = named.is_none().then(|| default_file.clone());
    let file = match named {
        Some(p) if !p.exists() => return Err(ConfigError::MissingFile(p)),
        Some(p) => Some(p),
        None if default_file.exists() => Some(default_file.clone()),
        None => None,
    };

    let yaml = file.as_deref().map(YamlFile::read).transpose()?;
    let upper = {
        let mut f = Figment::new();
        if let Some(y) = &yaml {
            f = f.merge(y.clone());
        }
        f.merge(env_provider()).merge(Named {
            name: FLAGS.into(),
            value: overrides.to_value(),
        })
    };
    let plain = |e| errors::from_figment(e, yaml.as_ref());
    let mode: Mode = match upper.find_value("mode") {
        Ok(_) => upper.extract_inner("mode").map_err(plain)?,
        Err(_) => Mode::Standard,
    };
    let figment = Figment::from(Named {
        name: format!("{DEFAULTS} for {mode} mode"),
        value: serde_json::to_value(AgentConfig::defaults(mode, paths.for_mode(mode)))
            .unwrap_or_default(),
    })
    .merge(upper);
    let mut config: AgentConfig = figment.extract().map_err(plain)?;
    // Unset, it follows `audit.sync` (whichever layer set that): written in, so that the
    // effective configuration shows it.
    let delay_key = "audit.group_commit_delay_us";
    let delay_follows_sync = config.audit.group_commit_delay_us.is_none();
    if delay_follows_sync {
        config.audit.group_commit_delay_us = Some(config.audit.group_commit_delay_default_us());
    }
    config
        .validate()
        .map_err(|(key, message)| ConfigError::Value {
            origin: errors::origin(figment.find_metadata(&key), &key, yaml.as_ref()),
            key,
            message,
        })?;
    let sources = serde_json::to_value(&config)
        .map(|v| leaf_keys(&v))
        .unwrap_or_default()
        .into_iter()
        .map(|key| {
            let source = if delay_follows_sync && key == delay_key {
                format!("default for audit.sync: {}", config.audit.sync.name())
            } else {
                errors::source_of(&figment, &key, yaml.as_ref())
            };
            (key, source)
        })
        .collect();
    let provenance = Provenance {
        sources,
        file: match &yaml {
            Some(y) => Some(FileStamp::of(y.path(), y.text().as_bytes())),
            None => searched.as_deref().map(FileStamp::absent),
        },
        file_read: yaml.is_some(),
    };
    Ok(LoadedConfig {
        config,
        file,
        provenance,
    })
}

/// A figment layer from plain data, with a name for error messages ("command-line flags").
struct Named {
    name: String,
    value: serde_json::Value,
}

impl figment::Provider for Named {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name.clone())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::defaults(&self.value).data()
    }
}

fn env_provider() -> Env {
    Env::prefixed("VAULT_AGENT_")
        .filter(|k| k != "config_file")
        .map(|k| env_key(k.as_str()).into())
}

/// The key a `VAULT_AGENT_` variable sets, from the rest of its name.
fn env_key(suffix: &str) -> String {
    match suffix.to_ascii_lowercase().as_str() {
        "policy_dir" => "policy_engine.directory".into(),
        "audit_file" => "audit.log_file".into(),
        other => other.replace("__", "."),
    }
}

#[cfg(test)]
mod tests;
