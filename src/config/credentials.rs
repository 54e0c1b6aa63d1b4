//! The `credentials` section of the configuration: the systemd credentials socket and its
//! limits (see [`crate::credentials`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `credentials` section: the socket systemd's service manager reads credentials from when a
/// unit with `LoadCredential=ID:SOCKET` starts (see [`crate::credentials`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialsConfig {
    /// Where the agent binds the credentials socket (mode 0600) when systemd does not pass one
    /// named `credentials`; empty = no socket is bound.
    pub socket_path: PathBuf,
    /// Credential connections served at once; one more is closed without a byte (and audited).
    pub max_connections: usize,
    /// Largest value delivered, bytes (systemd takes at most 1 MiB per credential); a larger
    /// one is refused (and the unit's start fails).
    pub max_value_bytes: usize,
    /// Seconds a credential connection may take from accept to a decision (identifying the
    /// caller, deciding, reading the backend: too slow is a failure, refused); writing the
    /// answer then has as long again, past which the connection is closed.
    pub deadline_seconds: u64,
}

/// The most a credential may hold: systemd's `CREDENTIAL_SIZE_MAX` (1 MiB).
pub const CREDENTIAL_SIZE_MAX: usize = 1 << 20;

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            socket_path: PathBuf::new(),
            max_connections: 16,
            max_value_bytes: 65536,
            deadline_seconds: 30,
        }
    }
}

impl CredentialsConfig {
    /// Checks the values (the agent's own socket is `socket_path`); the offending key and why.
    pub fn validate(&self, socket_path: &Path) -> Result<(), (String, String)> {
        let fail = |k: &str, m: String| Err((k.to_string(), m));
        let c = self;
        let path = c.socket_path.as_os_str();
        if path.len() >= 108 {
            return fail(
                "credentials.socket_path",
                "longer than a Unix socket path may be (107 bytes)".into(),
            );
        }
        if !path.is_empty() && c.socket_path == socket_path {
            return fail(
                "credentials.socket_path",
                "is socket_path: the credentials socket needs a path of its own".into(),
            );
        }
        if !(1..=1024).contains(&c.max_connections) {
            return fail(
                "credentials.max_connections",
                format!("{} is not between 1 and 1024", c.max_connections),
            );
        }
        if !(1..=CREDENTIAL_SIZE_MAX).contains(&c.max_value_bytes) {
            return fail(
                "credentials.max_value_bytes",
                format!(
                    "{} is not between 1 and {CREDENTIAL_SIZE_MAX} (systemd takes no larger credential)",
                    c.max_value_bytes
                ),
            );
        }
        if !(1..=300).contains(&c.deadline_seconds) {
            return fail(
                "credentials.deadline_seconds",
                format!("{} is not between 1 and 300", c.deadline_seconds),
            );
        }
        Ok(())
    }
}
