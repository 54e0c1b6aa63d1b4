//! Payloads of the credential messages (`credential_list`, `credential_test`) and the
//! `credentials` part of `status_response`. The credentials socket itself speaks no protocol:
//! see [`crate::credentials`].

use serde::{Deserialize, Serialize};

/// One credential mapping in force.
///
/// ```json
/// {"unit":"billing.service","id":"db-password","secret":"secret:/db/primary#password",
///  "resource":"secret:/db/primary","field":"password","policy":"billing",
///  "file":"/etc/aether-vault/policies.d/billing.json"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    /// The unit that gets it.
    pub unit: String,
    /// The credential id (`LoadCredential=ID:…`).
    pub id: String,
    /// The secret as the policy file writes it.
    pub secret: String,
    /// The resource policy decides on.
    pub resource: String,
    /// The one field delivered; absent: the whole secret as a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The policy that maps it.
    pub policy: String,
    /// The policy file.
    pub file: String,
}

impl From<&crate::policy::credentials::CredentialMapping> for CredentialInfo {
    fn from(m: &crate::policy::credentials::CredentialMapping) -> Self {
        CredentialInfo {
            unit: m.unit.clone(),
            id: m.id.clone(),
            secret: m.secret.clone(),
            resource: m.resource.clone(),
            field: m.field.clone(),
            policy: m.policy_id.clone(),
            file: m.file.display().to_string(),
        }
    }
}

/// `credential_list` answer (admin only): the mappings of the set in force, by unit and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialListResponse {
    /// The policy generation they belong to.
    pub generation: u64,
    /// The credentials socket, if the agent serves one.
    pub socket: Option<String>,
    /// The mappings.
    pub credentials: Vec<CredentialInfo>,
}

/// `credential_test` request (admin only): what would a start of `unit` asking for `id` get?
///
/// ```json
/// {"unit":"billing.service","id":"db-password"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialTestRequest {
    /// The unit.
    pub unit: String,
    /// The credential id.
    pub id: String,
}

/// What a start would get: `deliver` or `refuse`, why, the mapping and the rules that decided,
/// and (asked of the running agent) whether the backend has the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialTestResponse {
    /// The unit.
    pub unit: String,
    /// The credential id.
    pub id: String,
    /// `deliver` or `refuse`.
    pub decision: String,
    /// Why, in words.
    pub reason: String,
    /// The mapping, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<CredentialInfo>,
    /// Rules that decided, as `policy/rule`.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The policy generation that decided.
    pub generation: u64,
    /// Whether the backend was asked (`credential test --live`) and what it said: `ok` or an
    /// error; absent offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The bytes the unit would get, when the backend was asked and had the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
}

/// The `credentials` part of `status_response`.
///
/// ```json
/// {"socket":"/run/aether-vault/credentials.sock","activated":true,"delivered":12,"refused":1}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsStatus {
    /// The socket served; `null` when there is none.
    pub socket: Option<String>,
    /// Whether it came from systemd.
    #[serde(default)]
    pub activated: bool,
    /// Credentials delivered since start.
    pub delivered: u64,
    /// Requests refused since start (denied or failed).
    pub refused: u64,
}
