//! The configuration's shape, its per-mode defaults and its value checks.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DefaultPaths;
pub use super::credentials::{CREDENTIAL_SIZE_MAX, CredentialsConfig};
pub use super::telemetry::TelemetryConfig;

/// Operating mode: sets the defaults of the upstream table.
///
/// | | standard | hardened | development |
/// |---|---|---|---|
/// | default TTL s | 300 | 60 | 3600 |
/// | max TTL s | 3600 | 300 | 7200 |
/// | max connections | 100 | 50 | 200 |
/// | log level | info | warn | debug |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Local development: long TTLs; with no policy, the agent's own uid is allowed.
    Development,
    /// The default.
    Standard,
    /// Short TTLs, fewer connections.
    Hardened,
}

impl Mode {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Standard => "standard",
            Mode::Hardened => "hardened",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The largest `capability_engine.max_ttl` accepted: 10 years, in seconds. Expiry times stay
/// far inside what the agent can represent.
pub const MAX_TTL_LIMIT: u64 = 10 * 365 * 86_400;

/// The whole agent configuration (`agent.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Configuration format version (accepted for upstream files; only `1.0` exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Operating mode.
    pub mode: Mode,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub log_level: String,
    /// Where to listen when not socket-activated.
    pub socket_path: PathBuf,
    /// Where state lives (the signing key). Created 0700.
    pub state_dir: PathBuf,
    /// A label for where this agent runs (`--region`, `VAULT_AGENT_REGION`), e.g. `us-west-2`:
    /// shown in the status and written into every audit record, so that records collected from
    /// many hosts say where they were made. Only a label: nothing is decided by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A socket-activated agent exits after this many seconds without a client connection
    /// (systemd starts it again on the next one); 0 = never. Ignored when the agent binds its
    /// socket itself, since then nothing would start it again.
    #[serde(default)]
    pub idle_exit_seconds: u64,
    /// Capability issuing limits (a file may call it `capabilities`, as upstream docs do).
    pub capability_engine: CapabilityEngineConfig,
    /// Policy source.
    pub policy_engine: PolicyEngineConfig,
    /// Audit log.
    pub audit: AuditConfig,
    /// Socket and connection limits.
    pub ipc: IpcConfig,
    /// Where secrets redeemed with capabilities are kept.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// The most one request may carry.
    #[serde(default)]
    pub requests: RequestLimits,
    /// The systemd credentials socket (`LoadCredential=ID:SOCKET`).
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// The optional HTTP endpoint for metrics and health (off by default).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `secrets` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// `file` (embedded, encrypted under the state directory) or `vault` (HashiCorp Vault or
    /// OpenBao).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// File backend: versions kept per secret.
    #[serde(default = "default_max_versions")]
    pub max_versions: usize,
    /// File backend: the systemd credential holding the key (`LoadCredentialEncrypted=NAME`);
    /// without it, `STATE_DIR/secrets.key` is used (created on first start).
    #[serde(default = "default_credential")]
    pub credential: String,
    /// Vault backend settings (see docs/configuration.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<serde_json::Value>,
}

fn default_backend() -> String {
    "file".into()
}

fn default_max_versions() -> usize {
    10
}

fn default_credential() -> String {
    "secrets-key".into()
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            backend: default_backend(),
            max_versions: default_max_versions(),
            credential: default_credential(),
            vault: None,
        }
    }
}

/// `capability_engine` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityEngineConfig {
    /// Must be true: the agent exists to issue capabilities (upstream docs carry the key).
    #[serde(default = "yes")]
    pub enable: bool,
    /// TTL when a request names none, seconds.
    pub default_ttl: u64,
    /// Largest TTL a request may ask for, seconds; above it the request is denied.
    pub max_ttl: u64,
    /// Uses when a request names none, and the most it may ask for; 0 = unlimited.
    pub max_uses: u64,
    /// The `issuer` written into every capability.
    pub issuer: String,
    /// Active capabilities one uid may hold; a grant beyond it is denied, saying so. 0 = no cap.
    pub max_active_per_uid: usize,
    /// Expired and revoked capabilities kept for listing per uid (for an hour after expiry);
    /// beyond it, that uid's oldest are forgotten early. 0 = keep none.
    #[serde(default = "default_max_retained_per_uid")]
    pub max_retained_per_uid: usize,
    /// Grants per second one uid may get (a token bucket); beyond it a request is denied,
    /// saying so. Administrators (root, the agent's uid, `ipc.admin_group`) are not limited.
    /// 0 = no limit.
    #[serde(default = "default_grant_rate_per_uid")]
    pub grant_rate_per_uid: u32,
    /// Grants one uid may get at once before `grant_rate_per_uid` applies.
    #[serde(default = "default_grant_burst_per_uid")]
    pub grant_burst_per_uid: u32,
}

fn default_max_retained_per_uid() -> usize {
    1000
}

fn default_grant_rate_per_uid() -> u32 {
    20
}

fn default_grant_burst_per_uid() -> u32 {
    100
}

/// `requests` section: the most one request may carry. A request over a limit is refused
/// with `INVALID_PAYLOAD`, naming the limit's key. Sizes are in bytes; the `context` and
/// metadata sizes are those of their compact JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLimits {
    /// Actions one request may name.
    pub max_actions: usize,
    /// Bytes of one action name or pattern.
    pub max_action_len: usize,
    /// Bytes of a resource.
    pub max_resource_len: usize,
    /// Bytes of the `identity` label a client gives (and of a revocation's `revoked_by`).
    pub max_identity_len: usize,
    /// Bytes of a `purpose` (and of a revocation's `reason`).
    pub max_purpose_len: usize,
    /// Bytes of a request's `context`, and of a validation's.
    pub max_context_bytes: usize,
    /// Bytes of everything a capability keeps that its requester chose besides the resource
    /// and actions: `purpose`, `context` and `constraints` together.
    pub max_metadata_bytes: usize,
    /// Pattern characters (`*`, `?`) a request's resource may hold, and each of its actions: a
    /// pattern request is compared with the rules' patterns, at a cost that grows with them.
    /// 0 = requests may not be patterns.
    pub max_wildcards: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_actions: 32,
            max_action_len: crate::resource::MAX_ACTION_LEN,
            max_resource_len: crate::resource::MAX_RESOURCE_LEN,
            max_identity_len: 256,
            max_purpose_len: 1024,
            max_context_bytes: 4096,
            max_metadata_bytes: 8192,
            max_wildcards: 8,
        }
    }
}

fn yes() -> bool {
    true
}

/// `policy_engine` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEngineConfig {
    /// Directory of policy files.
    pub directory: PathBuf,
    /// Decision when no rule matches; only `deny` is accepted.
    pub default_decision: String,
}

/// `audit` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Whether decisions are written to `log_file`.
    pub enable: bool,
    /// The JSON-lines audit log.
    pub log_file: PathBuf,
    /// What happens when a record cannot be written: `deny` answers `AUDIT_UNAVAILABLE` and
    /// recovers by itself once writing works; `halt` exits non-zero (systemd restarts it).
    #[serde(default)]
    pub failure_action: FailureAction,
    /// Rotate the log when it grows past this many bytes; 0 = never (leave it to logrotate).
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
    /// Rotated files kept (`FILE.1` … `FILE.N`); older ones are deleted once they are
    /// `min_retention_days` old.
    #[serde(default = "default_max_backup_files")]
    pub max_backup_files: u32,
    /// A rotated file beyond `max_backup_files` is deleted only once its last record is this
    /// many days old; until then the set grows past the count. 0 = deleted at once.
    #[serde(default = "default_min_retention_days")]
    pub min_retention_days: u64,
    /// Longest record, bytes as written (without the chain fields); long fields are cut
    /// further until it fits. At least 4096.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// Longest value kept whole in a record, bytes as written; a longer one is cut, with a
    /// marker giving its length and SHA-256. 32 up to `max_record_bytes`.
    #[serde(default = "default_max_field_bytes")]
    pub max_field_bytes: usize,
    /// Refusals (denials, invalid validations, rejected revocations and connections) of one
    /// non-administrator uid recorded one by one per `summary_interval_seconds`; beyond it they
    /// are counted into one `refusal_summary` record per interval. 0 = all recorded one by one.
    #[serde(default = "default_refusal_budget")]
    pub refusal_budget: u32,
    /// The interval of `refusal_budget`, and how often summaries are written (1–3600).
    #[serde(default = "default_summary_interval_seconds")]
    pub summary_interval_seconds: u64,
    /// When a record reaches the disk: `always` before the request it records is answered;
    /// `periodic` lets records of decisions that change nothing (validations, refusals, reads)
    /// be answered once written to the file, synced within `sync_interval_ms`. Records of
    /// state changes are synced before the answer either way. Default per mode: `periodic` in
    /// standard and development mode, `always` in hardened mode.
    #[serde(default)]
    pub sync: AuditSync,
    /// With `sync: periodic`, the most milliseconds between writing such a record and its
    /// `fdatasync` (1–1000).
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// The most microseconds a synced batch (of the audit log, and of the capability store)
    /// waits for more records while many requests are in flight (0–10000; 0 never waits). The
    /// wait is the average sync time, at most this; with fewer than
    /// [`crate::durable::MIN_OTHERS`] other requests in flight nothing waits. Unset: 200 with
    /// `sync: periodic`, 0 with `sync: always`, written in at load ([`crate::config::load`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_commit_delay_us: Option<u64>,
    /// Whether the agent seals the chain's head with its key, so that a cut, emptied or
    /// replaced log and deleted rotated files show (docs/durability.md).
    #[serde(default = "yes")]
    pub seal: bool,
    /// Seconds between two seals while records are being written (1–86400); the agent also
    /// seals at start, before rotating and at stop.
    #[serde(default = "default_seal_interval_seconds")]
    pub seal_interval_seconds: u64,
    /// Where seals are kept, outside the log's directory; unset: `STATE_DIR/audit.seals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_file: Option<PathBuf>,
}

impl AuditConfig {
    /// The longest group-commit wait: `group_commit_delay_us`, else 200 µs with `sync:
    /// periodic` and none with `sync: always`. With `always` every read's record is synced, the
    /// disk is the limit and the syncs batch by themselves: a wait cost a fifth of the reads at
    /// 64 connections there, while it gave durable grants 12 % more with `periodic`
    /// (docs/benchmarks.md).
    pub fn group_commit_delay(&self) -> std::time::Duration {
        std::time::Duration::from_micros(
            self.group_commit_delay_us
                .unwrap_or_else(|| self.group_commit_delay_default_us()),
        )
    }

    /// `group_commit_delay_us` when unset: it follows `sync`.
    pub fn group_commit_delay_default_us(&self) -> u64 {
        match self.sync {
            AuditSync::Periodic => GROUP_COMMIT_DELAY_DEFAULT_US,
            AuditSync::Always => 0,
        }
    }

    /// The seal file: `seal_file`, else `audit.seals` in `state_dir`.
    pub fn seal_path(&self, state_dir: &std::path::Path) -> PathBuf {
        self.seal_file
            .clone()
            .unwrap_or_else(|| state_dir.join(crate::audit::seal::DEFAULT_FILE_NAME))
    }
}

fn default_seal_interval_seconds() -> u64 {
    10
}

/// When audit records reach the disk (see docs/durability.md). The built-in default depends on
/// the mode ([`AgentConfig::defaults`]); the type's own default, `always`, is the stricter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSync {
    /// Every record is on disk before the request it records is answered.
    #[default]
    Always,
    /// Records that go with a change of durable state are on disk before the answer; the
    /// others are written to the file before it (they survive the agent being killed) and
    /// synced within `sync_interval_ms` (a power loss can lose that much).
    Periodic,
}

impl AuditSync {
    /// The name the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            AuditSync::Always => "always",
            AuditSync::Periodic => "periodic",
        }
    }
}

fn default_sync_interval_ms() -> u64 {
    10
}

/// `audit.group_commit_delay_us` when unset and `sync` is `periodic`.
pub const GROUP_COMMIT_DELAY_DEFAULT_US: u64 = 200;

/// Largest `audit.group_commit_delay_us`.
pub const GROUP_COMMIT_DELAY_MAX_US: u64 = 10_000;

/// What to do when the audit log cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Refuse requests until writing works again.
    #[default]
    Deny,
    /// Exit non-zero.
    Halt,
}

fn default_max_file_size() -> u64 {
    100 << 20
}

fn default_max_backup_files() -> u32 {
    10
}

fn default_min_retention_days() -> u64 {
    7
}

fn default_max_record_bytes() -> usize {
    crate::audit::bound::RecordLimits::DEFAULT.max_record_bytes
}

fn default_max_field_bytes() -> usize {
    crate::audit::bound::RecordLimits::DEFAULT.max_field_bytes
}

fn default_refusal_budget() -> u32 {
    50
}

fn default_summary_interval_seconds() -> u64 {
    10
}

/// `ipc` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpcConfig {
    /// Most simultaneous client connections; more are answered `TOO_MANY_CONNECTIONS`.
    pub max_connections: usize,
    /// Seconds a connection may stay idle before the agent closes it; 0 = never.
    pub conn_timeout: u64,
    /// Largest request, bytes; larger ones get `REQUEST_TOO_LARGE` and the connection closes.
    pub max_request_bytes: usize,
    /// Connections one uid may have open; one more is answered `TOO_MANY_CONNECTIONS`. 0 = only
    /// `max_connections` applies.
    pub max_connections_per_uid: usize,
    /// Seconds a request may take to arrive once its first byte has (slow-drip clients get
    /// `REQUEST_TIMEOUT` and are closed). At least 1.
    pub request_deadline: u64,
    /// Requests per second one uid may make over all its connections (a token bucket); more are
    /// answered `RATE_LIMITED`. 0 = no limit.
    pub rate_limit_per_uid: u32,
    /// Requests one uid may make at once above the rate (the bucket's size).
    pub rate_burst_per_uid: u32,
    /// Bytes of responses the kernel may hold for a client that does not read (the socket's
    /// send buffer); when it is full and the client still does not read for `write_timeout`
    /// seconds, the connection is closed.
    pub max_queued_bytes: usize,
    /// Seconds a response may wait for a client to read before the connection is closed.
    /// At least 1.
    pub write_timeout: u64,
    /// Mode of the socket file the agent binds (octal, e.g. `"0666"`).
    pub socket_mode: SocketMode,
    /// Members of this group (besides root and the agent's own user) may use admin messages.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Connections kept for administrators (root, the agent's user, `admin_group`): anyone else
    /// is answered `TOO_MANY_CONNECTIONS` once `max_connections - admin_reserved_connections`
    /// are open, so that no set of other users can lock the administrators out. Below
    /// `max_connections`; 0 keeps none.
    #[serde(default = "default_admin_reserved_connections")]
    pub admin_reserved_connections: usize,
}

fn default_admin_reserved_connections() -> usize {
    4
}

/// A file mode written in octal. Accepts a string (`"0666"`, `"666"`, `"0o666"`) or an integer
/// whose decimal digits are read as octal, as chmod does (YAML reads `0666` as the integer 666).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketMode(pub u32);

impl Serialize for SocketMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

impl<'de> Deserialize<'de> for SocketMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        let digits = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Text(s) => s.trim().trim_start_matches("0o").to_string(),
        };
        match u32::from_str_radix(&digits, 8) {
            Ok(m) if m <= 0o777 => Ok(SocketMode(m)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid socket mode {digits:?}: write it in octal, like \"0666\""
            ))),
        }
    }
}

impl AgentConfig {
    /// Built-in defaults for a mode.
    pub fn defaults(mode: Mode, paths: &DefaultPaths) -> AgentConfig {
        let (default_ttl, max_ttl, max_connections, log_level) = match mode {
            Mode::Standard => (300, 3600, 100, "info"),
            Mode::Hardened => (60, 300, 50, "warn"),
            Mode::Development => (3600, 7200, 200, "debug"),
        };
        // One uid may take half the connections; requests per second and active
        // capabilities are capped well above what one well-behaved service needs.
        let (rate_limit_per_uid, max_active_per_uid, max_retained_per_uid) = match mode {
            Mode::Hardened => (200, 200, 200),
            Mode::Standard | Mode::Development => (1000, 1000, default_max_retained_per_uid()),
        };
        // Records of state changes are synced before the answer in every mode; `periodic`
        // lets the others be answered once written, synced within `sync_interval_ms`
        // (docs/durability.md). Hardened mode waits for the disk for every record.
        let audit_sync = match mode {
            Mode::Hardened => AuditSync::Always,
            Mode::Standard | Mode::Development => AuditSync::Periodic,
        };
        AgentConfig {
            version: None,
            mode,
            log_level: log_level.to_string(),
            socket_path: paths.socket_path.clone(),
            state_dir: paths.state_dir.clone(),
            region: None,
            idle_exit_seconds: 0,
            capability_engine: CapabilityEngineConfig {
                enable: true,
                default_ttl,
                max_ttl,
                max_uses: 100,
                issuer: "aether-vault-agent".to_string(),
                max_active_per_uid,
                max_retained_per_uid,
                grant_rate_per_uid: default_grant_rate_per_uid(),
                grant_burst_per_uid: default_grant_burst_per_uid(),
            },
            policy_engine: PolicyEngineConfig {
                directory: paths.policy_dir.clone(),
                default_decision: "deny".to_string(),
            },
            audit: AuditConfig {
                enable: true,
                log_file: paths.audit_file.clone(),
                failure_action: FailureAction::Deny,
                max_file_size: default_max_file_size(),
                max_backup_files: default_max_backup_files(),
                min_retention_days: default_min_retention_days(),
                max_record_bytes: default_max_record_bytes(),
                max_field_bytes: default_max_field_bytes(),
                refusal_budget: default_refusal_budget(),
                summary_interval_seconds: default_summary_interval_seconds(),
                sync: audit_sync,
                sync_interval_ms: default_sync_interval_ms(),
                group_commit_delay_us: None,
                seal: true,
                seal_interval_seconds: default_seal_interval_seconds(),
                seal_file: None,
            },
            ipc: IpcConfig {
                max_connections,
                conn_timeout: 60,
                max_request_bytes: 65536,
                max_connections_per_uid: max_connections / 2,
                request_deadline: 10,
                rate_limit_per_uid,
                rate_burst_per_uid: rate_limit_per_uid * 2,
                max_queued_bytes: 256 * 1024,
                write_timeout: 10,
                socket_mode: SocketMode(0o666),
                admin_group: None,
                admin_reserved_connections: default_admin_reserved_connections(),
            },
            secrets: SecretsConfig::default(),
            requests: RequestLimits::default(),
            credentials: CredentialsConfig {
                socket_path: paths.credentials_socket.clone(),
                ..CredentialsConfig::default()
            },
            telemetry: TelemetryConfig::default(),
        }
    }

    /// Checks values that parse but make no sense; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |k: &str, m: String| Err((k.to_string(), m));
        super::tilde::check_no_tilde(self)?;
        if let Some(v) = &self.version {
            if v != "1.0" && v != "1" {
                return fail(
                    "version",
                    format!("unsupported configuration version {v:?} (expected \"1.0\")"),
                );
            }
        }
        if let Some(r) = &self.region {
            if let Err(why) = check_region(r) {
                return fail("region", why);
            }
        }
        if !["trace", "debug", "info", "warn", "error"].contains(&self.log_level.as_str()) {
            return fail(
                "log_level",
                format!(
                    "{:?} is not one of trace, debug, info, warn, error",
                    self.log_level
                ),
            );
        }
        let ce = &self.capability_engine;
        if !ce.enable {
            return fail(
                "capability_engine.enable",
                "the capability engine cannot be disabled".into(),
            );
        }
        if ce.default_ttl == 0 {
            return fail(
                "capability_engine.default_ttl",
                "must be at least 1 second".into(),
            );
        }
        if ce.max_ttl > MAX_TTL_LIMIT {
            return fail(
                "capability_engine.max_ttl",
                format!(
                    "{} is above the limit of {MAX_TTL_LIMIT} seconds (10 years)",
                    ce.max_ttl
                ),
            );
        }
        if ce.max_ttl < ce.default_ttl {
            return fail(
                "capability_engine.max_ttl",
                format!("{} is below default_ttl {}", ce.max_ttl, ce.default_ttl),
            );
        }
        if ce.issuer.trim().is_empty() {
            return fail("capability_engine.issuer", "must not be empty".into());
        }
        if ce.grant_rate_per_uid > 0 && ce.grant_burst_per_uid == 0 {
            return fail(
                "capability_engine.grant_burst_per_uid",
                "must be at least 1 when grant_rate_per_uid is set".into(),
            );
        }
        let r = &self.requests;
        for (key, value, most) in [
            ("requests.max_actions", r.max_actions, 1024),
            ("requests.max_action_len", r.max_action_len, 1024),
            (
                "requests.max_resource_len",
                r.max_resource_len,
                crate::resource::MAX_RESOURCE_LEN,
            ),
            ("requests.max_identity_len", r.max_identity_len, 65536),
            ("requests.max_purpose_len", r.max_purpose_len, 65536),
            ("requests.max_context_bytes", r.max_context_bytes, 1 << 20),
            ("requests.max_metadata_bytes", r.max_metadata_bytes, 1 << 20),
        ] {
            if !(1..=most).contains(&value) {
                return fail(key, format!("{value} is not between 1 and {most}"));
            }
        }
        if r.max_wildcards > 64 {
            return fail(
                "requests.max_wildcards",
                format!("{} is not between 0 and 64", r.max_wildcards),
            );
        }
        if self.policy_engine.default_decision != "deny" {
            return fail(
                "policy_engine.default_decision",
                format!(
                    "{:?} is not supported: only \"deny\" is, so that nothing is granted by accident",
                    self.policy_engine.default_decision
                ),
            );
        }
        if self.audit.max_file_size > 0 && self.audit.max_backup_files == 0 {
            return fail(
                "audit.max_backup_files",
                "must be at least 1 when audit.max_file_size rotates the log (rotating into nothing would delete records)".into(),
            );
        }
        let min_record = crate::audit::bound::MIN_RECORD_BYTES;
        if self.audit.max_record_bytes < min_record {
            return fail(
                "audit.max_record_bytes",
                format!(
                    "{} is below the least, {min_record}",
                    self.audit.max_record_bytes
                ),
            );
        }
        let min_field = crate::audit::bound::MIN_FIELD_BYTES;
        if !(min_field..=self.audit.max_record_bytes).contains(&self.audit.max_field_bytes) {
            return fail(
                "audit.max_field_bytes",
                format!(
                    "{} is not between {min_field} and audit.max_record_bytes ({})",
                    self.audit.max_field_bytes, self.audit.max_record_bytes
                ),
            );
        }
        if !(1..=3600).contains(&self.audit.summary_interval_seconds) {
            return fail(
                "audit.summary_interval_seconds",
                format!(
                    "{} is not between 1 and 3600",
                    self.audit.summary_interval_seconds
                ),
            );
        }
        if self.audit.min_retention_days > 36500 {
            return fail(
                "audit.min_retention_days",
                format!(
                    "{} is more than 36500 (100 years)",
                    self.audit.min_retention_days
                ),
            );
        }
        if !(1..=1000).contains(&self.audit.sync_interval_ms) {
            return fail(
                "audit.sync_interval_ms",
                format!("{} is not between 1 and 1000", self.audit.sync_interval_ms),
            );
        }
        if let Some(us) = self
            .audit
            .group_commit_delay_us
            .filter(|us| *us > GROUP_COMMIT_DELAY_MAX_US)
        {
            return fail(
                "audit.group_commit_delay_us",
                format!("{us} is more than {GROUP_COMMIT_DELAY_MAX_US}"),
            );
        }
        if !(1..=86400).contains(&self.audit.seal_interval_seconds) {
            return fail(
                "audit.seal_interval_seconds",
                format!(
                    "{} is not between 1 and 86400",
                    self.audit.seal_interval_seconds
                ),
            );
        }
        let dir_of = |p: &std::path::Path| {
            std::path::absolute(p)
                .ok()
                .and_then(|a| a.parent().map(std::path::Path::to_path_buf))
        };
        let seals = self.audit.seal_path(&self.state_dir);
        if let (true, Some(s), Some(l)) = (
            self.audit.enable && self.audit.seal,
            dir_of(&seals),
            dir_of(&self.audit.log_file),
        ) {
            if s == l {
                return fail(
                    if self.audit.seal_file.is_some() {
                        "audit.seal_file"
                    } else {
                        "state_dir"
                    },
                    format!(
                        "the seal file {} would be in the audit log's directory {}, where whoever can change the log could change the seals too",
                        seals.display(),
                        l.display()
                    ),
                );
            }
        }
        if !["file", "vault"].contains(&self.secrets.backend.as_str()) {
            return fail(
                "secrets.backend",
                format!("{:?} is not file or vault", self.secrets.backend),
            );
        }
        if self.secrets.max_versions == 0 {
            return fail("secrets.max_versions", "must be at least 1".into());
        }
        if self.ipc.max_connections == 0 {
            return fail("ipc.max_connections", "must be at least 1".into());
        }
        if self.ipc.admin_reserved_connections >= self.ipc.max_connections {
            return fail(
                "ipc.admin_reserved_connections",
                format!(
                    "{} is not below ipc.max_connections ({}): lower it (0 reserves none) or raise max_connections",
                    self.ipc.admin_reserved_connections, self.ipc.max_connections
                ),
            );
        }
        if self.ipc.max_request_bytes < 1024 {
            return fail("ipc.max_request_bytes", "must be at least 1024".into());
        }
        if self.ipc.request_deadline == 0 {
            return fail("ipc.request_deadline", "must be at least 1 second".into());
        }
        if self.ipc.write_timeout == 0 {
            return fail("ipc.write_timeout", "must be at least 1 second".into());
        }
        if self.ipc.rate_limit_per_uid > 0 && self.ipc.rate_burst_per_uid == 0 {
            return fail(
                "ipc.rate_burst_per_uid",
                "must be at least 1 when rate_limit_per_uid is set".into(),
            );
        }
        if self.ipc.max_queued_bytes < 4096 {
            return fail("ipc.max_queued_bytes", "must be at least 4096".into());
        }
        if self.socket_path.as_os_str().is_empty() {
            return fail("socket_path", "must not be empty".into());
        }
        if self.socket_path.as_os_str().len() >= 108 {
            return fail(
                "socket_path",
                "longer than a Unix socket path may be (107 bytes)".into(),
            );
        }
        self.credentials.validate(&self.socket_path)?;
        self.telemetry.validate()
    }
}

/// The longest `region` label, in bytes.
pub const REGION_MAX_LEN: usize = 64;

/// Checks a `region` label: 1 to [`REGION_MAX_LEN`] ASCII letters, digits, `.`, `_` or `-`
/// (`us-west-2`, `eu-central-1`, `dc1.rack4`), so that it reads the same in the status, the
/// audit log and the journal.
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = !region.is_empty()
        && region.len() <= REGION_MAX_LEN
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not a region label: use 1 to {REGION_MAX_LEN} letters, digits, '.', '_' or '-' (e.g. us-west-2)"
        ))
    }
}
