//! The message types the agent understands, and the response type each one gets.
//!
//! | request | response |
//! |---|---|
//! | `capability_request` | `capability_response` |
//! | `capability_validate` | `validation_response` |
//! | `capability_revoke` | `capability_response` |
//! | `capability_list` | `capability_response` |
//! | `status_request` | `status_response` |
//! | `ping_request` | `ping_response` |
//! | `metrics_request` | `metrics_response` |
//! | `agent_status` (admin) | `status_response` |
//! | `agent_reload` (admin) | `reload_response` |
//! | `agent_stop` (admin) | `stop_response` |
//! | `agent_config` (admin) | `config_response` |
//! | `policy_list` (admin) | `policy_list_response` |
//! | `policy_test` (admin) | `policy_test_response` |
//! | `secret_read`, `secret_write`, `secret_list`, `secret_delete` | `secret_response` |
//! | `credential_list` (admin) | `credential_list_response` |
//! | `credential_test` (admin) | `credential_test_response` |
//! | anything else | `error_response` |

/// A request type this agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// Ask for a new capability.
    CapabilityRequest,
    /// Check (and use once) a capability.
    CapabilityValidate,
    /// Revoke a capability.
    CapabilityRevoke,
    /// List capabilities.
    CapabilityList,
    /// Public agent status (the upstream client's handshake).
    StatusRequest,
    /// Liveness check.
    PingRequest,
    /// The agent's metrics (Prometheus/OpenMetrics text); the same access as `status_request`.
    MetricsRequest,
    /// Detailed status, admin only.
    AgentStatus,
    /// Reload the policy set, admin only; answers after the reload finished.
    AgentReload,
    /// Stop the agent, admin only.
    AgentStop,
    /// The effective configuration and where each value came from, admin only.
    AgentConfig,
    /// Describe the live policy set, admin only.
    PolicyList,
    /// Evaluate a described request against the live set, admin only.
    PolicyTest,
    /// Redeem a capability to read a secret.
    SecretRead,
    /// Redeem a capability to write a secret.
    SecretWrite,
    /// Redeem a capability to list secrets.
    SecretList,
    /// Redeem a capability to delete a secret.
    SecretDelete,
    /// The systemd credential mappings in force, admin only.
    CredentialList,
    /// What a unit's start would get for a credential, admin only.
    CredentialTest,
}

impl RequestType {
    /// For a secret message: the capability action it needs.
    pub fn secret_action(self) -> Option<&'static str> {
        match self {
            RequestType::SecretRead => Some("read"),
            RequestType::SecretWrite => Some("write"),
            RequestType::SecretList => Some("list"),
            RequestType::SecretDelete => Some("delete"),
            _ => None,
        }
    }

    /// Every known request type, for docs and for the status `capabilities` list.
    pub const ALL: [RequestType; 19] = [
        RequestType::CapabilityRequest,
        RequestType::CapabilityValidate,
        RequestType::CapabilityRevoke,
        RequestType::CapabilityList,
        RequestType::StatusRequest,
        RequestType::PingRequest,
        RequestType::MetricsRequest,
        RequestType::AgentStatus,
        RequestType::AgentReload,
        RequestType::AgentStop,
        RequestType::AgentConfig,
        RequestType::PolicyList,
        RequestType::PolicyTest,
        RequestType::SecretRead,
        RequestType::SecretWrite,
        RequestType::SecretList,
        RequestType::SecretDelete,
        RequestType::CredentialList,
        RequestType::CredentialTest,
    ];

    /// Parses the envelope's `type` field; `None` for a type this agent does not know.
    pub fn parse(kind: &str) -> Option<RequestType> {
        RequestType::ALL.into_iter().find(|t| t.as_str() == kind)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::CapabilityRequest => "capability_request",
            RequestType::CapabilityValidate => "capability_validate",
            RequestType::CapabilityRevoke => "capability_revoke",
            RequestType::CapabilityList => "capability_list",
            RequestType::StatusRequest => "status_request",
            RequestType::PingRequest => "ping_request",
            RequestType::MetricsRequest => "metrics_request",
            RequestType::AgentStatus => "agent_status",
            RequestType::AgentReload => "agent_reload",
            RequestType::AgentStop => "agent_stop",
            RequestType::AgentConfig => "agent_config",
            RequestType::PolicyList => "policy_list",
            RequestType::PolicyTest => "policy_test",
            RequestType::SecretRead => "secret_read",
            RequestType::SecretWrite => "secret_write",
            RequestType::SecretList => "secret_list",
            RequestType::SecretDelete => "secret_delete",
            RequestType::CredentialList => "credential_list",
            RequestType::CredentialTest => "credential_test",
        }
    }

    /// The response type a successful answer carries.
    pub fn response_type(self) -> ResponseType {
        match self {
            RequestType::CapabilityRequest
            | RequestType::CapabilityRevoke
            | RequestType::CapabilityList => ResponseType::CapabilityResponse,
            RequestType::CapabilityValidate => ResponseType::ValidationResponse,
            RequestType::StatusRequest | RequestType::AgentStatus => ResponseType::StatusResponse,
            RequestType::PingRequest => ResponseType::PingResponse,
            RequestType::MetricsRequest => ResponseType::MetricsResponse,
            RequestType::AgentReload => ResponseType::ReloadResponse,
            RequestType::AgentStop => ResponseType::StopResponse,
            RequestType::AgentConfig => ResponseType::ConfigResponse,
            RequestType::PolicyList => ResponseType::PolicyListResponse,
            RequestType::PolicyTest => ResponseType::PolicyTestResponse,
            RequestType::SecretRead
            | RequestType::SecretWrite
            | RequestType::SecretList
            | RequestType::SecretDelete => ResponseType::SecretResponse,
            RequestType::CredentialList => ResponseType::CredentialListResponse,
            RequestType::CredentialTest => ResponseType::CredentialTestResponse,
        }
    }

    /// Whether only an administrator may send it.
    pub fn is_admin_only(self) -> bool {
        matches!(
            self,
            RequestType::AgentStatus
                | RequestType::AgentReload
                | RequestType::AgentStop
                | RequestType::AgentConfig
                | RequestType::PolicyList
                | RequestType::PolicyTest
                | RequestType::CredentialList
                | RequestType::CredentialTest
        )
    }
}

/// A response type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// Answer to capability request, revoke and list.
    CapabilityResponse,
    /// Answer to validate.
    ValidationResponse,
    /// Answer to status and agent_status.
    StatusResponse,
    /// Answer to ping.
    PingResponse,
    /// Answer to metrics_request.
    MetricsResponse,
    /// Answer to agent_reload.
    ReloadResponse,
    /// Answer to agent_stop.
    StopResponse,
    /// Answer to agent_config.
    ConfigResponse,
    /// Answer to policy_list.
    PolicyListResponse,
    /// Answer to policy_test.
    PolicyTestResponse,
    /// Answer to the secret messages.
    SecretResponse,
    /// Answer to credential_list.
    CredentialListResponse,
    /// Answer to credential_test.
    CredentialTestResponse,
    /// Any error.
    ErrorResponse,
}

impl ResponseType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::CapabilityResponse => "capability_response",
            ResponseType::ValidationResponse => "validation_response",
            ResponseType::StatusResponse => "status_response",
            ResponseType::PingResponse => "ping_response",
            ResponseType::MetricsResponse => "metrics_response",
            ResponseType::ReloadResponse => "reload_response",
            ResponseType::StopResponse => "stop_response",
            ResponseType::ConfigResponse => "config_response",
            ResponseType::PolicyListResponse => "policy_list_response",
            ResponseType::PolicyTestResponse => "policy_test_response",
            ResponseType::SecretResponse => "secret_response",
            ResponseType::CredentialListResponse => "credential_list_response",
            ResponseType::CredentialTestResponse => "credential_test_response",
            ResponseType::ErrorResponse => "error_response",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_none() {
        for t in RequestType::ALL {
            assert_eq!(RequestType::parse(t.as_str()), Some(t));
        }
        assert_eq!(RequestType::parse("secret_dump"), None);
        assert_eq!(RequestType::parse("PING_REQUEST"), None);
    }

    #[test]
    fn only_agent_and_policy_tool_messages_are_admin() {
        let admin: Vec<_> = RequestType::ALL
            .into_iter()
            .filter(|t| t.is_admin_only())
            .collect();
        assert_eq!(
            admin,
            vec![
                RequestType::AgentStatus,
                RequestType::AgentReload,
                RequestType::AgentStop,
                RequestType::AgentConfig,
                RequestType::PolicyList,
                RequestType::PolicyTest,
                RequestType::CredentialList,
                RequestType::CredentialTest
            ]
        );
    }
}
