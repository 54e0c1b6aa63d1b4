//! The policy file format (upstream's JSON), parsed strictly.
//!
//! ```json
//! {"id":"default","name":"Default Policy","version":"1.0","status":"active",
//!  "rules":[{"id":"allow-local","effect":"allow","resources":["secret:*"],"actions":["*"],
//!            "identities":["uid:1000"],"priority":100}]}
//! ```

use serde::Deserialize;
use serde_json::Value;

/// One policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Unique across all files.
    pub id: String,
    /// For people.
    #[serde(default)]
    pub name: Option<String>,
    /// Format version (informational).
    #[serde(default)]
    pub version: Option<String>,
    /// `active` (default) or `inactive`/`disabled` (its rules are not loaded).
    #[serde(default)]
    pub status: Option<String>,
    /// For people.
    #[serde(default)]
    pub description: Option<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RuleDocument>,
    /// systemd credentials: which secret a unit gets as which credential
    /// ([`super::credentials`]).
    #[serde(default)]
    pub credentials: Vec<super::credentials::CredentialDocument>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the matching actions unless a deny also matches.
    Allow,
    /// Denies the matching actions, whatever else matches.
    Deny,
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    /// Unique within its policy.
    pub id: String,
    /// For people.
    #[serde(default)]
    pub name: Option<String>,
    /// For people.
    #[serde(default)]
    pub description: Option<String>,
    /// `allow` or `deny`.
    pub effect: Effect,
    /// Resource globs.
    pub resources: Vec<String>,
    /// Action globs.
    pub actions: Vec<String>,
    /// Identity selectors.
    pub identities: Vec<String>,
    /// Extra conditions, all of which must hold.
    #[serde(default)]
    pub conditions: Vec<ConditionDocument>,
    /// Upstream field; accepted, but it decides nothing (a deny wins whatever the priorities).
    #[serde(default)]
    pub priority: i64,
    /// Largest TTL, seconds, a grant through this rule may have.
    #[serde(default)]
    pub max_ttl: Option<u64>,
    /// Most uses a grant through this rule may have.
    #[serde(default)]
    pub max_uses: Option<u64>,
}

/// One condition as written: `{"type":"time","key":"hours","operator":"in","value":[9,17],
/// "timezone":"Europe/Paris"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDocument {
    /// What the condition tests.
    #[serde(rename = "type")]
    pub kind: String,
    /// How it compares (`in` is the default).
    #[serde(default)]
    pub operator: Option<String>,
    /// Which fact.
    #[serde(default)]
    pub key: Option<String>,
    /// The value to compare with.
    #[serde(default)]
    pub value: Value,
    /// Inverts the result.
    #[serde(default)]
    pub negate: bool,
    /// For time conditions: an IANA time zone name (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
}
