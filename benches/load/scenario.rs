//! What the load clients send and what they expect back: one [`Scenario`] per row, its request
//! bytes and the check of each answer.

use crate::RESOURCE;
use crate::SECRET_VALUE;
use crate::ssh_agent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Ping,
    Validate,
    Grant,
    GrantRevoke,
    SecretRead,
    /// `secret_read` on an agent with `audit.sync: always`, whatever the others run with.
    SecretReadAlways,
    Denied,
    /// `secret_read` on an agent whose vault backend has `cache_ttl: 0`.
    SecretReadVault,
    /// `secret_read` on an agent whose vault backend has the default cache.
    SecretReadVaultCached,
    /// The same KV v2 read sent to bao's HTTP API directly.
    BaoHttp,
    /// The same read sent to the peers part's bao, which has a file audit device.
    BaoAudited,
    /// ssh-agent's `SSH2_AGENTC_REQUEST_IDENTITIES`.
    SshIdentities,
}

impl Scenario {
    /// The scenarios on the agent with the file backend, each beside the echo baseline.
    pub const ALL: [Scenario; 7] = [
        Scenario::Ping,
        Scenario::Validate,
        Scenario::Grant,
        Scenario::GrantRevoke,
        Scenario::SecretRead,
        Scenario::SecretReadAlways,
        Scenario::Denied,
    ];

    /// The rows of the peers part (`--peers`), in the order each number of connections runs
    /// them.
    pub const PEERS: [Scenario; 5] = [
        Scenario::SecretRead,
        Scenario::SecretReadAlways,
        Scenario::BaoAudited,
        Scenario::Ping,
        Scenario::SshIdentities,
    ];

    /// Who answers.
    pub fn server(self) -> &'static str {
        match self {
            Scenario::BaoHttp | Scenario::BaoAudited => "bao",
            Scenario::SshIdentities => "ssh-agent",
            _ => "agent",
        }
    }

    /// The scenarios with bao (part 6), in the order each number of connections runs them.
    pub const VAULT: [Scenario; 3] = [
        Scenario::SecretReadVault,
        Scenario::SecretReadVaultCached,
        Scenario::BaoHttp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ping => "ping",
            Scenario::Validate => "validate",
            Scenario::Grant => "grant",
            Scenario::GrantRevoke => "grant_revoke",
            Scenario::SecretRead => "secret_read",
            Scenario::SecretReadAlways => "secret_read_always",
            Scenario::Denied => "denied",
            Scenario::SecretReadVault => "secret_read_vault",
            Scenario::SecretReadVaultCached => "secret_read_vault_cached",
            Scenario::BaoHttp => "bao_http",
            Scenario::BaoAudited => "bao_audited",
            Scenario::SshIdentities => "ssh_identities",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Ping => "ping_request",
            Scenario::Validate => "capability_validate",
            Scenario::Grant => "capability_request (grant, durable)",
            Scenario::GrantRevoke => "grant + revoke",
            Scenario::SecretRead => "secret_read (file backend)",
            Scenario::SecretReadAlways => "secret_read (file backend, audit.sync always)",
            Scenario::Denied => "capability_request (denied)",
            Scenario::SecretReadVault => "secret_read (vault backend, cache_ttl 0)",
            Scenario::SecretReadVaultCached => "secret_read (vault backend, cached)",
            Scenario::BaoHttp => "bao: GET /v1/secret/data/… over HTTP",
            Scenario::BaoAudited => "bao: GET /v1/secret/data/… over HTTP, file audit device",
            Scenario::SshIdentities => "ssh-agent: request identities",
        }
    }

    /// Requests per cycle on one connection.
    pub fn steps(self) -> usize {
        match self {
            Scenario::GrantRevoke => 2,
            _ => 1,
        }
    }

    /// The request line for `step`; `cap` is the connection's capability, `last` the id the
    /// previous step was granted.
    pub fn request(self, step: usize, cap: &str, last: &str) -> Vec<u8> {
        match (self, step) {
            (Scenario::Ping, _) => envelope("ping_request", "null"),
            (Scenario::Validate, _) => envelope(
                "capability_validate",
                &format!("{{\"capability_id\":\"{cap}\"}}"),
            ),
            (Scenario::Grant, _) | (Scenario::GrantRevoke, 0) => envelope(
                "capability_request",
                &format!(
                    "{{\"identity\":\"bench\",\"resource\":\"{RESOURCE}\",\"actions\":[\"read\"],\"ttl\":300}}"
                ),
            ),
            (Scenario::GrantRevoke, _) => envelope(
                "capability_revoke",
                &format!("{{\"capability_id\":\"{last}\",\"reason\":\"bench\"}}"),
            ),
            (
                Scenario::SecretRead
                | Scenario::SecretReadAlways
                | Scenario::SecretReadVault
                | Scenario::SecretReadVaultCached,
                _,
            ) => envelope("secret_read", &format!("{{\"capability_id\":\"{cap}\"}}")),
            // Sent as `HttpRead::request` and `ssh_agent::REQUEST_IDENTITIES`, never built here.
            (Scenario::BaoHttp | Scenario::BaoAudited | Scenario::SshIdentities, _) => Vec::new(),
            (Scenario::Denied, _) => envelope(
                "capability_request",
                "{\"identity\":\"bench\",\"resource\":\"secret:/denied/db\",\"actions\":[\"read\"],\"ttl\":300}",
            ),
        }
    }

    /// Whether the agent's answer to `step` is the expected one.
    pub fn ok(self, step: usize, answer: &[u8]) -> bool {
        let want: &[u8] = match (self, step) {
            (Scenario::Ping, _) => b"\"type\":\"ping_response\"",
            (Scenario::Validate, _) => b"\"valid\":true",
            (Scenario::Grant, _) | (Scenario::GrantRevoke, 0) => b"\"status\":\"granted\"",
            (Scenario::GrantRevoke, _) => b"\"status\":\"revoked\"",
            (Scenario::SecretRead | Scenario::SecretReadAlways, _) => {
                b"\"type\":\"secret_response\""
            }
            // The value bao holds, not only a secret_response.
            (Scenario::SecretReadVault | Scenario::SecretReadVaultCached, _) => {
                SECRET_VALUE.as_bytes()
            }
            (Scenario::SshIdentities, _) => return ssh_agent::is_identities_answer(answer),
            (Scenario::BaoHttp | Scenario::BaoAudited, _) => {
                return answer.starts_with(b"HTTP/1.1 200 ")
                    && contains(answer, SECRET_VALUE.as_bytes());
            }
            (Scenario::Denied, _) => b"\"status\":\"denied\"",
        };
        contains(answer, want)
    }
}

pub fn envelope(kind: &str, payload: &str) -> Vec<u8> {
    format!(
        "{{\"version\":\"1.0\",\"type\":\"{kind}\",\"id\":\"bench\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"payload\":{payload}}}\n"
    )
    .into_bytes()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The first capability id in an answer.
pub fn cap_id(answer: &[u8]) -> Option<String> {
    let key = b"\"id\":\"cap_";
    let at = answer.windows(key.len()).position(|w| w == key)? + key.len() - 4;
    let len = answer[at..].iter().position(|b| *b == b'"')?;
    String::from_utf8(answer[at..at + len].to_vec()).ok()
}

/// A number field in an answer.
pub fn number_field(answer: &[u8], field: &str) -> Option<u64> {
    let key = format!("\"{field}\":");
    let at = answer
        .windows(key.len())
        .position(|w| w == key.as_bytes())?
        + key.len();
    let digits: String = answer[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().ok()
}
