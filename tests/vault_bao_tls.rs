//! The vault backend over TLS to a real OpenBao server (`bao server -dev -dev-tls`, see
//! tests/common/bao.rs): a certificate for 127.0.0.1 signed by a CA of its own, trusted through
//! `ca_cert` or `VAULT_CACERT`; refused, naming the unknown issuer, without that CA; and accepted
//! with `skip_verify` or `VAULT_SKIP_VERIFY`, with a warning. A CA file that is not one stops the
//! agent's start.

mod common;

use common::Agent;
use common::bao::{Bao, assert_no_leak, failure, success, token_auth, vault_config};
use serde_json::Value;

#[test]
fn tls_with_the_servers_ca_from_the_file_or_vault_cacert() {
    let Some(bao) = Bao::start_tls("tls_with_the_servers_ca_from_the_file_or_vault_cacert") else {
        return;
    };
    assert!(bao.addr.starts_with("https://"));
    let ca = bao.ca_cert.clone().unwrap();
    let file = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "put", "app/tls", "k=over-tls"]);
    success(&out);
    assert_eq!(
        bao.ok(&["kv", "get", "-field=k", "secret/app/tls"]),
        "over-tls"
    );
    let out = agent.cli(&["secret", "get", "app/tls", "--field", "k"]);
    assert_eq!(success(&out), "over-tls\n");

    let agent = Agent::builder()
        .config(&vault_config(
            &bao.addr,
            None,
            &token_auth(&file),
            "cache_ttl: 0",
        ))
        .env("VAULT_CACERT", ca.to_str().unwrap())
        .start();
    let out = agent.cli(&["secret", "get", "app/tls", "--field", "k"]);
    assert_eq!(success(&out), "over-tls\n");
    assert!(!agent.stderr().contains("TLS verification is OFF"));
    assert_no_leak(&agent, &["over-tls"]);
}

#[test]
fn tls_without_the_ca_is_refused_naming_the_unknown_issuer() {
    let Some(bao) = Bao::start_tls("tls_without_the_ca_is_refused_naming_the_unknown_issuer")
    else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/tls", "k=never-read"]);
    let file = bao.token_file("token", common::bao::ROOT);
    // Without ca_cert only the bundled public roots are trusted, not the dev server's CA.
    let agent = Agent::builder()
        .config(&vault_config(&bao.addr, None, &token_auth(&file), ""))
        .start();
    let out = agent.cli(&["secret", "get", "app/tls"]);
    failure(
        &out,
        1,
        &[
            "secrets backend misconfigured",
            "is not trusted",
            "invalid peer certificate: UnknownIssuer",
            "set `ca_cert`",
        ],
    );
    let status = agent.client().call("agent_status", Value::Null);
    let secrets = &status["payload"]["secrets"];
    assert_eq!(secrets["healthy"], false, "{secrets}");
    assert!(
        secrets["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("UnknownIssuer")),
        "{secrets}"
    );
    let out = agent.cli(&["secret", "put", "app/tls", "k=never-written"]);
    failure(&out, 1, &["UnknownIssuer"]);
    assert_eq!(
        bao.ok(&["kv", "get", "-field=k", "secret/app/tls"]),
        "never-read"
    );

    // The server's own certificate is not a CA: trusting it alone does not do either.
    let leaf = bao.dir.path().join("tls/vault-cert.pem");
    assert!(leaf.is_file());
    let agent = Agent::builder()
        .config(&vault_config(
            &bao.addr,
            Some(&leaf),
            &token_auth(&file),
            "",
        ))
        .start();
    let out = agent.cli(&["secret", "get", "app/tls"]);
    failure(
        &out,
        1,
        &["is not trusted", "invalid peer certificate: UnknownIssuer"],
    );
    // The agents' requests never reached the server: the only write is the harness's.
    assert_eq!(
        bao.count("create", "secret/data/app/tls") + bao.count("update", "secret/data/app/tls"),
        1
    );
    assert_no_leak(&agent, &["never-read"]);
}

#[test]
fn tls_skip_verify_from_the_file_or_vault_skip_verify_warns() {
    let Some(bao) = Bao::start_tls("tls_skip_verify_from_the_file_or_vault_skip_verify_warns")
    else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/tls", "k=unverified"]);
    let file = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&vault_config(
            &bao.addr,
            None,
            &token_auth(&file),
            "skip_verify: true",
        ))
        .start();
    let out = agent.cli(&["secret", "get", "app/tls", "--field", "k"]);
    assert_eq!(success(&out), "unverified\n");
    assert!(
        agent
            .stderr()
            .contains("TLS verification is OFF; for labs only")
    );

    let agent = Agent::builder()
        .config(&vault_config(&bao.addr, None, &token_auth(&file), ""))
        .env("VAULT_SKIP_VERIFY", "true")
        .start();
    let out = agent.cli(&["secret", "get", "app/tls", "--field", "k"]);
    assert_eq!(success(&out), "unverified\n");
    assert!(
        agent
            .stderr()
            .contains("TLS verification is OFF; for labs only")
    );
    assert_no_leak(&agent, &["unverified"]);
}

#[test]
fn a_ca_file_that_is_not_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let token = dir.path().join("token");
    common::bao::write_private(&token, "s.unused");
    for (ca, why) in [
        (&junk, "no certificate in it"),
        (&missing, "No such file or directory"),
    ] {
        let (agent, mut cmd) = Agent::builder()
            .config(&vault_config(
                "https://127.0.0.1:8200",
                Some(ca),
                &token_auth(&token),
                "",
            ))
            .prepare();
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(1), "{}", agent.stderr());
        let said = format!("vault CA file {}: {why}", ca.display());
        assert!(
            agent.stderr().contains(&said),
            "{said:?} not in:\n{}",
            agent.stderr()
        );
    }
}
