//! The vault secrets backend against a real OpenBao server (`bao server -dev`, see
//! tests/common/bao.rs): the agent and the CLI as a user runs them, the server as its operator
//! sets it up with OpenBao's own CLI.

mod common;

use common::bao::Bao;
use common::{Agent, stderr, stdout};

/// The agent's configuration for `bao`, with `auth` as YAML lines under `auth:` and `extra` lines
/// under `vault:`.
fn vault_config(bao: &Bao, auth: &str, extra: &str) -> String {
    let mut c = format!(
        "secrets:\n  backend: vault\n  vault:\n    address: {}\n",
        bao.addr
    );
    if let Some(ca) = &bao.ca_cert {
        c += &format!("    ca_cert: {}\n", ca.display());
    }
    for l in extra.lines().filter(|l| !l.trim().is_empty()) {
        c += &format!("    {l}\n");
    }
    c += "    auth:\n";
    for l in auth.lines().filter(|l| !l.trim().is_empty()) {
        c += &format!("      {l}\n");
    }
    c
}

#[test]
fn kv2_with_a_token_file_round_trip() {
    let Some(bao) = Bao::start("kv2_with_a_token_file_round_trip") else {
        return;
    };
    let token = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&vault_config(
            &bao,
            &format!("token_file: {}", token.display()),
            "cache_ttl: 0",
        ))
        .start();
    let out = agent.cli(&["secret", "put", "app/db", "password=from-bao"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        bao.ok(&["kv", "get", "-field=password", "secret/app/db"]),
        "from-bao"
    );
    bao.ok(&["kv", "put", "secret/app/db", "password=rotated"]);
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(stdout(&out), "rotated\n", "{}", stderr(&out));
}
