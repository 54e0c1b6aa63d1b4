//! Payload types, with JSON field names exactly as upstream (`maxUses`, `usedCount`,
//! `issued_at`, `policyResult`…) so the upstream Go client decodes our answers.
//!
//! Durations on the wire are integer nanoseconds (`processingTime`, `uptime`…) and TTLs are
//! integer seconds, as upstream. Timestamps are RFC 3339 UTC strings with whole seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `capability_request` payload.
///
/// ```json
/// {"identity":"billing-app","resource":"secret:/db/primary","actions":["read"],"ttl":300,
///  "maxUses":10,"purpose":"nightly export"}
/// ```
/// `identity` is only a label: it is recorded, never used to decide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    /// Label the client gives itself (recorded in the capability and the audit log).
    #[serde(default)]
    pub identity: String,
    /// The resource, e.g. `secret:/db/primary`.
    pub resource: String,
    /// The actions wanted, e.g. `["read"]`; all must be allowed for a grant.
    pub actions: Vec<String>,
    /// Requested lifetime in seconds; absent or 0 means the mode's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Requested number of uses; absent or 0 means the configured default.
    #[serde(
        rename = "maxUses",
        alias = "max_uses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_uses: Option<i64>,
    /// Restrictions the capability carries and every validation checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// Free-form context from the client; recorded in `metadata.context`, never decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Why the capability is wanted; recorded in `metadata.purpose`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// Restrictions a capability carries. Unknown keys are refused so that a misspelt restriction
/// never silently grants more; `rateLimit` and `geography` exist upstream but cannot be enforced
/// on a local socket, so a request carrying them is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Allowed client addresses or CIDR blocks, matched against the validation context's
    /// `ipAddress`. A validation without an address fails the constraint.
    #[serde(
        rename = "ipAddresses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_addresses: Option<Vec<String>>,
    /// When the capability may be used.
    #[serde(
        rename = "timeWindow",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub time_window: Option<TimeWindow>,
    /// Key/value pairs the validation context's `environment` must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
    /// Upstream field; refused (not enforceable here).
    #[serde(rename = "rateLimit", default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Value>,
    /// Upstream field; refused (not enforceable here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geography: Option<Value>,
}

/// A time window, evaluated in UTC or in the one time zone it names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Hours of the day (0–23) in which use is allowed; absent = any hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Vec<u8>>,
    /// Days of the week (0 = Sunday … 6) on which use is allowed; absent = any day.
    #[serde(
        rename = "daysOfWeek",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub days_of_week: Option<Vec<u8>>,
    /// The IANA time zone (one) in which `hours` and `daysOfWeek` are read; absent = UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezones: Option<Vec<String>>,
    /// Periods (RFC 3339 `start`/`end`) in which use is refused.
    #[serde(
        rename = "blackoutPeriods",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub blackout_periods: Option<Vec<Period>>,
}

/// A period between two RFC 3339 instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Start, inclusive.
    pub start: String,
    /// End, exclusive.
    pub end: String,
}

/// A capability as it travels on the wire.
///
/// ```json
/// {"id":"cap_3f2a…","type":"read","resource":"secret:/db/primary","actions":["read"],
///  "identity":"billing-app","issuer":"aether-vault-agent","issued_at":"2026-11-23T10:00:00Z",
///  "expires_at":"2026-11-23T10:05:00Z","ttl":300,"maxUses":100,"usedCount":0,
///  "signature":"base64…","metadata":{"purpose":"nightly export"},"status":"active",
///  "holder":{"uid":1000,"gid":1000,"user":"alice"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    /// `cap_` followed by 32 hex digits (128 random bits).
    pub id: String,
    /// Derived from the actions: `read|write|delete|execute|admin`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource it grants access to.
    pub resource: String,
    /// The actions it grants.
    pub actions: Vec<String>,
    /// The label the client gave (not an identity the agent trusts).
    pub identity: String,
    /// Who issued it (`capability_engine.issuer`).
    pub issuer: String,
    /// Issue time, RFC 3339 UTC.
    pub issued_at: String,
    /// Expiry time, RFC 3339 UTC.
    pub expires_at: String,
    /// Lifetime in seconds.
    pub ttl: u64,
    /// How many successful validations it allows; 0 = unlimited.
    #[serde(rename = "maxUses")]
    pub max_uses: u64,
    /// How many successful validations it has had.
    #[serde(rename = "usedCount")]
    pub used_count: u64,
    /// Ed25519 signature (base64) over the canonical form of the immutable fields.
    pub signature: String,
    /// `purpose` and `context` from the request.
    pub metadata: BTreeMap<String, Value>,
    /// Restrictions checked at every validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// `active`, `revoked` or `expired` (an addition to upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The kernel-verified process owner it was issued to (an addition to upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// The verified identity a capability is bound to, as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's uid; validation and revocation compare against it.
    pub uid: u32,
    /// The holder's primary gid at issue time.
    pub gid: u32,
    /// The holder's user name, when it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The holder's systemd unit, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The outcome of evaluating a request against the policy set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// `allow` or `deny`.
    pub decision: String,
    /// Ids of the policies whose rules decided.
    #[serde(rename = "appliedPolicies")]
    pub applied_policies: Vec<String>,
    /// Ids of the rules that decided, as `policy/rule`.
    #[serde(rename = "appliedRules")]
    pub applied_rules: Vec<String>,
    /// Why, in words an operator understands.
    pub reasoning: String,
    /// How long evaluation took, in nanoseconds.
    #[serde(rename = "evaluationTime")]
    pub evaluation_time: u64,
}

/// `capability_response` payload for a request.
///
/// A denial carries `status: "denied"`, a message and the `policyResult` that explains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityResponse {
    /// The capability, when granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<Capability>,
    /// `granted`, `denied` or `error`.
    pub status: String,
    /// What happened, for people.
    pub message: String,
    /// The request envelope's id.
    #[serde(rename = "requestId")]
    pub request_id: String,
    /// Time spent in the agent, in nanoseconds.
    #[serde(rename = "processingTime")]
    pub processing_time: u64,
    /// The policy decision, when one was made.
    #[serde(
        rename = "policyResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub policy_result: Option<PolicyResult>,
    /// For `status: "error"` or a denial that is not a policy decision: the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<super::ErrorCode>,
}

/// `capability_validate` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The capability to check.
    #[serde(default)]
    pub capability_id: String,
    /// Facts for the capability's constraints (`ipAddress`, `environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RequestContext>,
}

/// Context a client supplies with a validation, checked against the capability's constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    /// The client's address, for `ipAddresses` constraints.
    #[serde(
        rename = "ipAddress",
        alias = "ip_address",
        alias = "sourceIp",
        alias = "sourceIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address: Option<String>,
    /// Environment key/values, for `environment` constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
    /// Upstream's `RuntimeContext` (`type`, `id`, `version`, `container.*`, `host.*`), where
    /// upstream reads `environment` constraints; read here too, by dotted key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Value>,
    /// Anything else the client sent; kept for the audit trail only.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationIssue {
    /// Machine-readable code, e.g. `EXPIRED`.
    pub code: super::ErrorCode,
    /// Text for people.
    pub message: String,
}

/// `validation_response` payload.
///
/// ```json
/// {"valid":false,"errors":[{"code":"EXPIRED","message":"capability expired at 2026-11-23T10:05:00Z"}],
///  "warnings":[],"validationTime":5120}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationResult {
    /// Whether the capability may be used now (this validation counted one use).
    pub valid: bool,
    /// Why it may not.
    pub errors: Vec<ValidationIssue>,
    /// Things worth knowing that do not invalidate it (e.g. last use).
    pub warnings: Vec<ValidationIssue>,
    /// Time spent, in nanoseconds.
    #[serde(rename = "validationTime")]
    pub validation_time: u64,
    /// On success: uses left after this one (absent when unlimited).
    #[serde(
        rename = "remainingUses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remaining_uses: Option<u64>,
}

/// `capability_revoke` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// The capability to revoke.
    #[serde(default)]
    pub capability_id: String,
    /// Why; recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A label the client gives; recorded, never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

/// `capability_response` payload for a revocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// Always `revoked`.
    pub status: String,
    /// Always `Capability revoked successfully`.
    pub message: String,
    /// The revoked capability.
    pub capability_id: String,
    /// When it was revoked (the first revocation's time, if revoked twice).
    pub revoked_at: String,
}

/// `capability_list` payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRequest {
    /// What to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<CapabilityFilter>,
}

/// Filter for `capability_list`. Non-admins only ever see their own capabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityFilter {
    /// Only the capability with this id (`capability show`: one capability, no use spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Only capabilities with this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Only capabilities for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Only capabilities of this type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `active`, `revoked` or `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only capabilities from this issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Admins only: capabilities held by this uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Skip this many first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Only capabilities issued in this period (either end may be left out).
    #[serde(
        rename = "timeRange",
        alias = "time_range",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub time_range: Option<TimeRange>,
    /// Only capabilities whose `metadata` has each of these keys with an equal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Value>>,
    /// The order: `issued_at` (default), `expires_at`, `id`, `type`, `resource`, `identity`.
    #[serde(
        rename = "sortBy",
        alias = "sort_by",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sort_by: Option<String>,
    /// `asc` or `desc` (default `asc` with `sortBy`; newest first without it).
    #[serde(
        rename = "sortOrder",
        alias = "sort_order",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sort_order: Option<String>,
}

/// A list filter's period: RFC 3339 instants, both inclusive; a missing end is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// From this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Until this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `capability_response` payload for a list: never `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResponse {
    /// The page of capabilities, newest first.
    pub capabilities: Vec<Capability>,
    /// How many are in `capabilities`.
    pub count: usize,
    /// How many matched before `limit`/`offset`.
    pub total: usize,
}

/// `ping_response` payload: `{"message":"pong","server":"aether-vault-agent"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResponse {
    /// Always `pong`.
    pub message: String,
    /// Always `aether-vault-agent`.
    pub server: String,
}

/// `status_response` payload. The first four fields are exactly what the upstream Go client
/// decodes (`uptime` is integer nanoseconds); the rest are additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Agent version.
    pub version: String,
    /// Feature names (the message types this agent answers).
    pub capabilities: Vec<String>,
    /// Time since start, in nanoseconds.
    pub uptime: u64,
    /// Open client connections.
    #[serde(rename = "connectionCount")]
    pub connection_count: usize,
    /// `development`, `standard` or `hardened`.
    pub mode: String,
    /// The socket the agent serves.
    pub socket_path: String,
    /// The connection limit.
    pub max_connections: usize,
    /// Capabilities neither revoked nor expired.
    pub capabilities_active: usize,
    /// Policy set generation (increments on every successful load).
    pub policy_generation: u64,
    /// Policy files in force.
    pub policy_files: usize,
    /// Rules in force.
    pub policy_rules: usize,
    /// When the policy set in force was loaded.
    pub policy_loaded_at: String,
    /// The last failed load, if the last load failed.
    pub policy_last_error: Option<String>,
    /// What happens when no rule is loaded, in words.
    pub policy_fallback: String,
    /// The agent's Ed25519 public key, base64.
    pub public_key: String,
    /// Whether the last audit write succeeded (requests are refused while it does not).
    #[serde(default = "yes")]
    pub audit_healthy: bool,
    /// Whether the capability store's writer thread works (grants and revocations are refused
    /// while it does not).
    #[serde(default = "yes")]
    pub store_healthy: bool,
    /// Why the store is not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
    /// The secrets backend and its health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<crate::secrets::BackendHealth>,
    /// The systemd credentials socket and its counts (`socket` is null when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<super::credentials::CredentialsStatus>,
    /// The `region` label the agent was given (`--region`), if any.
    #[serde(default)]
    pub region: Option<String>,
    /// The capability engine: its limits and what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_engine: Option<CapabilityEngineStatus>,
    /// Admin-only details (`agent_status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<StatusDetail>,
}

/// `capability_engine` in a status answer: the limits grants are held to
/// (`capability_engine.*` in the configuration) and the capabilities held, counted by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityEngineStatus {
    /// The `issuer` of every capability.
    pub issuer: String,
    /// How capabilities are signed (`Ed25519`).
    pub signature_algorithm: String,
    /// TTL of a request that names none, seconds.
    pub default_ttl: u64,
    /// The largest TTL granted, seconds.
    pub max_ttl: u64,
    /// Uses of a request that names none, and the most granted; 0 = unlimited.
    pub max_uses: u64,
    /// Active capabilities one uid may hold; 0 = no cap.
    pub max_active_per_uid: usize,
    /// Expired and revoked capabilities kept per uid for listing.
    pub max_retained_per_uid: usize,
    /// Grants per second per uid (administrators are not limited); 0 = no limit.
    pub grant_rate_per_uid: u32,
    /// Grants one uid may get at once before the rate applies.
    pub grant_burst_per_uid: u32,
    /// Capabilities neither revoked nor expired (all uids).
    pub active: usize,
    /// Capabilities held in memory (all uids: restored from the store at start, dropped an
    /// hour after expiry), by status (`active`, `expired`, `revoked`): counts only.
    pub held: BTreeMap<String, usize>,
}

/// Extra detail in `agent_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// The agent's pid.
    pub pid: u32,
    /// The agent's uid.
    pub uid: u32,
    /// When the agent started.
    pub started_at: String,
    /// The policy directory.
    pub policy_directory: String,
    /// The state directory (signing key).
    pub state_directory: String,
    /// The audit log file, if auditing is on.
    pub audit_file: Option<String>,
    /// Whether the listening socket came from systemd.
    pub socket_activated: bool,
    /// Capabilities held in memory, by status.
    pub capabilities_by_status: BTreeMap<String, usize>,
    /// Default and maximum TTL, default max uses.
    pub default_ttl: u64,
    /// Maximum TTL in seconds.
    pub max_ttl: u64,
    /// Default maximum uses (0 = unlimited).
    pub max_uses: u64,
    /// Policy files in force, in load order.
    pub policy_file_list: Vec<String>,
    /// Audit writes that failed since start.
    #[serde(default)]
    pub audit_failures: u64,
    /// The last audit write error, while writes fail.
    #[serde(default)]
    pub audit_last_error: Option<String>,
    /// When audit records reach the disk (`audit.sync`: `always` or `periodic`), if auditing
    /// is on.
    #[serde(default)]
    pub audit_sync: Option<String>,
    /// The secrets backend's cache of reads (the `vault` backend's); `None` for a backend
    /// without one (`file`).
    #[serde(default)]
    pub secrets_cache: Option<crate::secrets::CacheStats>,
}

fn yes() -> bool {
    true
}

/// Answer to `metrics_request`: the agent's metrics as a scrape gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsResponse {
    /// The media type of `text`: the Prometheus text format, `text/plain; version=0.0.4`.
    pub content_type: String,
    /// The metrics.
    pub text: String,
}

/// `reload_response` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadResponse {
    /// `reloaded` or `failed`.
    pub status: String,
    /// Generation in force after the attempt.
    pub generation: u64,
    /// Policy files in force.
    pub files: usize,
    /// Rules in force.
    pub rules: usize,
    /// Why the load failed (the previous set stays in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when the configuration file is not as it was at start: a reload applies only the
    /// policies, so the agent must be restarted to apply it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// `config_response` payload: the running agent's effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResponse {
    /// The configuration file read at start, if one was.
    pub file: Option<String>,
    /// Set when the configuration file (or the default file searched) is not as it was at
    /// start: what happened to it, and that a restart applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_changed: Option<String>,
    /// The effective configuration, with secret-valued keys shown as `(redacted)`.
    pub config: Value,
    /// Where each value came from, by dotted key.
    pub sources: BTreeMap<String, String>,
}

/// `stop_response` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopResponse {
    /// Always `stopping`.
    pub status: String,
    /// For people.
    pub message: String,
}

/// `policy_list` answer: the live policy set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyListResponse {
    /// Generation in force.
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: String,
    /// The policy directory.
    pub directory: String,
    /// Files in force, in load order.
    pub files: Vec<PolicyFileInfo>,
    /// Rules in force.
    pub rules: usize,
    /// Directory entries not loaded, and why.
    pub ignored: Vec<IgnoredFile>,
    /// The last failed load, if the last load failed.
    pub last_error: Option<String>,
    /// What applies when no rule is loaded.
    pub fallback: String,
}

/// One policy file in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFileInfo {
    /// The file.
    pub path: String,
    /// Its policy id.
    pub policy_id: String,
    /// Its rule count.
    pub rules: usize,
    /// Whether its rules are in force.
    pub active: bool,
}

/// A directory entry that was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredFile {
    /// The entry.
    pub path: String,
    /// Why it was not loaded.
    pub reason: String,
}

/// `policy_test` payload (admin only): what would the live set decide for this described
/// identity?
///
/// ```json
/// {"resource":"secret:/db/primary","actions":["read"],"identity":{"user":"alice","groups":["deploy"]}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTestRequest {
    /// The resource.
    pub resource: String,
    /// The actions.
    pub actions: Vec<String>,
    /// Who is asking (described, not verified).
    pub identity: IdentitySpec,
}

/// A described identity: `uid` or `user`, and optional groups, unit and executable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// The uid (else resolved from `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user name (else resolved from `uid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group names (the user's primary group is added when it resolves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The systemd unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The executable path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
}

/// The identity a policy test evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestedIdentity {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// User name, if it resolved.
    pub user: Option<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Executable.
    pub exe: Option<String>,
}

/// `policy_test` answer: the decision as a `policyResult`, and the terms a grant would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTestResponse {
    /// The decision, exactly as a capability request would report it.
    #[serde(flatten)]
    pub result: PolicyResult,
    /// TTL a grant would get, seconds (when allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Uses a grant would get, 0 = unlimited (when allowed).
    #[serde(rename = "maxUses", default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    /// The generation of the set that decided.
    pub generation: u64,
    /// The identity as evaluated.
    pub identity: TestedIdentity,
}

/// `secret_read`, `secret_write`, `secret_list` and `secret_delete` payload.
///
/// ```json
/// {"capability_id":"cap_…","path":"db/primary","version":2}
/// {"capability_id":"cap_…","path":"db/primary","data":{"password":"…"}}
/// ```
/// `path` may be left out when the capability names one secret (`secret:/db/primary`); it is
/// required when its resource is a pattern (`secret:/db/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    /// The capability redeemed (one use).
    #[serde(default)]
    pub capability_id: String,
    /// The secret path, without `secret:/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For reads: a version (default the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// For writes: the fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::secrets::SecretMap>,
}

/// `secret_response` payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretResponse {
    /// The secret path.
    pub path: String,
    /// The version read or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When the version read was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// The fields read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::secrets::SecretMap>,
    /// The names listed (folders end in `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Set by a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capability_request_reads_upstream_shape() {
        let r: CapabilityRequest = serde_json::from_value(json!({
            "identity":"app","resource":"secret:/db","actions":["read","write"],"ttl":60,
            "maxUses":3,"purpose":"p","context":{"x":1}
        }))
        .unwrap();
        assert_eq!(r.max_uses, Some(3));
        assert_eq!(r.actions, vec!["read", "write"]);
    }

    #[test]
    fn misspelt_request_fields_and_unknown_constraints_are_refused() {
        assert!(
            serde_json::from_value::<CapabilityRequest>(json!({
                "resource":"r","actions":["read"],"maxuses":3
            }))
            .is_err()
        );
        assert!(serde_json::from_value::<Constraints>(json!({"ipAdresses":["10.0.0.1"]})).is_err());
    }

    #[test]
    fn list_response_is_never_null() {
        let v = serde_json::to_value(ListResponse {
            capabilities: vec![],
            count: 0,
            total: 0,
        })
        .unwrap();
        assert_eq!(v["capabilities"], json!([]));
    }

    /// Regression (found by fuzzing, fuzz/regressions/request_stream/): serde_json's default
    /// float parser is not correctly rounded, so a number in a request's `context` read back
    /// from its own shortest form as another float, and a capability carrying it no longer
    /// verified once replayed from the capability store (INVALID_SIGNATURE after a restart).
    #[test]
    fn numbers_in_a_request_read_back_exactly_and_a_stored_capability_still_verifies() {
        let text = r#"{"resource":"secret:/db","actions":["read"],"context":{"ratio":1.0715660391465826e-75,"big":1.2222222222222222e+60,"many":-1.603964615428183e+143,"small":-9.643915712060552e-234}}"#;
        let req: CapabilityRequest = serde_json::from_str(text).unwrap();
        let again: CapabilityRequest =
            serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
        assert_eq!(again, req);

        let signer = crate::capability::Signer::from_seed([3; 32]);
        let mut cap = Capability {
            id: "cap_00000000000000000000000000000001".into(),
            kind: "read".into(),
            resource: req.resource.clone(),
            actions: req.actions.clone(),
            identity: String::new(),
            issuer: "aether-vault-agent".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T00:05:00Z".into(),
            ttl: 300,
            max_uses: 0,
            used_count: 0,
            signature: String::new(),
            metadata: BTreeMap::from([("context".to_string(), req.context.clone().unwrap())]),
            constraints: None,
            status: None,
            holder: None,
        };
        cap.signature = signer.sign(&cap, 1000);
        // What the capability store writes and reads back on start.
        let replayed: Capability =
            serde_json::from_slice(&serde_json::to_vec(&cap).unwrap()).unwrap();
        assert!(signer.verify(&replayed, 1000));
    }

    #[test]
    fn context_accepts_upstream_spellings_and_keeps_the_rest() {
        let c: RequestContext =
            serde_json::from_value(json!({"sourceIp":"10.1.2.3","userAgent":"x"})).unwrap();
        assert_eq!(c.ip_address.as_deref(), Some("10.1.2.3"));
        assert_eq!(c.extra["userAgent"], json!("x"));
    }
}
