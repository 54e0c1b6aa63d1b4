//! What the agent says about itself: `status_request` and `agent_status`, `policy_list`,
//! `agent_config`, and the notice a reload gives when the configuration file changed. Also
//! what the telemetry endpoint serves ([`crate::telemetry`] builds on [`status`]).

use super::SharedRef;
use super::dispatch::internal;
use super::policy_watcher::{GetStatus, PolicyStatus};
use super::registry::Stats;
use crate::protocol::types::{
    ConfigResponse, IgnoredFile, PolicyFileInfo, PolicyListResponse, StatusDetail, StatusResponse,
};
use crate::protocol::{ErrorPayload, RequestType};

/// The reload notice when the configuration file is not as it was at start (logged too).
pub(super) fn config_notice(shared: &super::Shared) -> Option<String> {
    let notice = shared.provenance.restart_notice();
    if let Some(n) = &notice {
        tracing::warn!("{n}");
    }
    notice
}

/// `agent_config`: the effective configuration, redacted, with where each value came from.
pub(super) fn running_config(shared: &super::Shared) -> ConfigResponse {
    let p = &shared.provenance;
    ConfigResponse {
        file: p
            .file
            .as_ref()
            .filter(|_| p.file_read)
            .map(|f| f.path.display().to_string()),
        file_changed: p.file.as_ref().and_then(|f| f.change_notice()),
        config: crate::config::redact(&serde_json::to_value(&shared.config).unwrap_or_default()),
        sources: p.sources.clone(),
    }
}

/// Builds `policy_list_response` from the watcher's status.
pub(super) fn policy_list(st: &PolicyStatus) -> PolicyListResponse {
    let set = &st.set;
    PolicyListResponse {
        generation: set.generation,
        loaded_at: crate::timefmt::rfc3339(set.loaded_at),
        directory: st.directory.display().to_string(),
        files: set
            .summaries
            .iter()
            .map(|f| PolicyFileInfo {
                path: f.path.display().to_string(),
                policy_id: f.policy_id.clone(),
                rules: f.rules,
                active: f.active,
            })
            .collect(),
        rules: set.rules().len(),
        ignored: set
            .ignored
            .iter()
            .map(|(p, why)| IgnoredFile {
                path: p.display().to_string(),
                reason: why.clone(),
            })
            .collect(),
        last_error: st.last_error.clone(),
        fallback: set.fallback.describe(),
    }
}

/// The `capability_engine` section of a status answer.
fn engine_status(
    ce: &crate::config::CapabilityEngineConfig,
    stats: &crate::actors::registry::RegistryStats,
) -> crate::protocol::types::CapabilityEngineStatus {
    crate::protocol::types::CapabilityEngineStatus {
        issuer: ce.issuer.clone(),
        signature_algorithm: "Ed25519".to_string(),
        default_ttl: ce.default_ttl,
        max_ttl: ce.max_ttl,
        max_uses: ce.max_uses,
        max_active_per_uid: ce.max_active_per_uid,
        max_retained_per_uid: ce.max_retained_per_uid,
        grant_rate_per_uid: ce.grant_rate_per_uid,
        grant_burst_per_uid: ce.grant_burst_per_uid,
        active: stats.active,
        held: stats.by_status.clone(),
    }
}

/// Builds `status_response`; `detail` adds the admin-only section.
pub async fn status(shared: &SharedRef, detail: bool) -> Result<StatusResponse, ErrorPayload> {
    let policy = shared
        .policy
        .send(GetStatus)
        .await
        .map_err(|_| internal("policy watcher"))?;
    let stats = shared
        .registry
        .send(Stats)
        .await
        .map_err(|_| internal("capability registry"))?;
    // The store's writer thread answers a no-op job, or says why it cannot.
    let store_error = shared
        .registry
        .send(super::health::Ping)
        .await
        .map_err(|_| internal("capability registry"))?
        .fault;
    let cfg = &shared.config;
    let set = &policy.set;
    let audit = shared
        .audit_health
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    // A backend's health check may make a network call: never on the event loop.
    let backend = shared.secrets.clone();
    let (secrets, secrets_cache) = actix_rt::task::spawn_blocking(move || {
        let cache = if detail { backend.cache_stats() } else { None };
        (backend.health(), cache)
    })
    .await
    .map_or((None, None), |(health, cache)| (Some(health), cache));
    Ok(StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: RequestType::ALL
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        uptime: u64::try_from(shared.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        connection_count: shared.connection_count(),
        mode: cfg.mode.to_string(),
        socket_path: shared.socket_path.clone(),
        max_connections: cfg.ipc.max_connections,
        capabilities_active: stats.active,
        policy_generation: set.generation,
        policy_files: set.files.len(),
        policy_rules: set.rules().len(),
        policy_loaded_at: crate::timefmt::rfc3339(set.loaded_at),
        policy_last_error: policy.last_error.clone(),
        policy_fallback: set.fallback.describe(),
        public_key: shared.public_key.clone(),
        audit_healthy: audit.healthy,
        store_healthy: store_error.is_none(),
        store_error,
        secrets,
        credentials: Some(
            shared
                .credentials
                .as_ref()
                .map(|c| c.status())
                .unwrap_or_default(),
        ),
        region: cfg.region.clone(),
        capability_engine: Some(engine_status(&cfg.capability_engine, &stats)),
        detail: detail.then(|| StatusDetail {
            pid: std::process::id(),
            uid: shared.agent_uid,
            started_at: crate::timefmt::rfc3339(shared.started_at),
            policy_directory: policy.directory.display().to_string(),
            state_directory: cfg.state_dir.display().to_string(),
            audit_file: cfg
                .audit
                .enable
                .then(|| cfg.audit.log_file.display().to_string()),
            socket_activated: shared.socket_activated,
            capabilities_by_status: stats.by_status.clone(),
            default_ttl: cfg.capability_engine.default_ttl,
            max_ttl: cfg.capability_engine.max_ttl,
            max_uses: cfg.capability_engine.max_uses,
            policy_file_list: set.files.iter().map(|f| f.display().to_string()).collect(),
            audit_failures: audit.failures,
            audit_last_error: audit.last_error.clone(),
            audit_sync: cfg.audit.enable.then(|| cfg.audit.sync.name().to_string()),
            secrets_cache,
        }),
    })
}
