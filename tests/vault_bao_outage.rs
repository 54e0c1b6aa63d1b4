//! The vault backend when a real OpenBao server (`bao server -dev`, see tests/common/bao.rs) goes
//! away: killed (connection refused), stopped with SIGSTOP (a hang, cut by `timeout`), sealed;
//! each reported `BACKEND_UNAVAILABLE` (CLI exit status 1) with the cause, and each recovered
//! from. The cache: `cache_ttl` serves reads from memory (also while Vault is down) until a
//! write, a delete or its end; `stale_if_error` serves the last value read during an outage,
//! and only then.

mod common;

use std::time::{Duration, Instant};

use common::Agent;
use common::bao::{Bao, assert_no_leak, failure, success, token_auth};
use serde_json::{Value, json};

/// The `secrets` object of the agent's status.
fn secrets_status(agent: &Agent) -> Value {
    agent.client().call("agent_status", Value::Null)["payload"]["secrets"].clone()
}

/// A raw `secret_read` of `path` through a capability for `secret:/app/*`: the whole answer.
fn raw_read(agent: &Agent, path: &str) -> Value {
    let cap = agent.grant("secret:/app/*", &["read"]);
    agent
        .client()
        .call("secret_read", json!({"capability_id": cap, "path": path}))
}

#[test]
fn a_killed_server_is_unavailable_until_it_is_back() {
    let Some(mut bao) = Bao::start("a_killed_server_is_unavailable_until_it_is_back") else {
        return;
    };
    // The dev server's root token is the same after a restart; a created one would not be.
    let file = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "put", "app/x", "k=before-outage"]);
    success(&out);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "before-outage\n");

    bao.kill();
    let refused = [
        "secrets backend unavailable",
        &format!("cannot reach vault at {}: ", bao.addr),
        "Connection refused",
    ];
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &refused);
    let out = agent.cli(&["secret", "put", "app/x", "k=during-outage"]);
    failure(&out, 1, &refused);
    let out = agent.cli(&["secret", "list", "app"]);
    failure(&out, 1, &refused);
    let out = agent.cli(&["secret", "delete", "app/x"]);
    failure(&out, 1, &refused);
    let answer = raw_read(&agent, "app/x");
    assert_eq!(answer["type"], "error_response", "{answer}");
    assert_eq!(answer["payload"]["code"], "BACKEND_UNAVAILABLE", "{answer}");
    let status = secrets_status(&agent);
    assert_eq!(status["healthy"], false, "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{status}"
    );
    let failed = agent
        .audit()
        .into_iter()
        .rfind(|r| r["type"] == "secret_access")
        .unwrap();
    assert_eq!(failed["outcome"], "failure", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot reach vault")),
        "{failed}"
    );

    // Back, but a dev server comes back empty: Vault answers, so that is a missing secret.
    bao.spawn();
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &["no secret at app/x"]);
    assert_eq!(secrets_status(&agent)["healthy"], true);
    bao.ok(&["kv", "put", "secret/app/x", "k=after-outage"]);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "after-outage\n");
    let out = agent.cli(&["secret", "put", "app/y", "k=written-after"]);
    success(&out);
    assert_eq!(
        bao.ok(&["kv", "get", "-field=k", "secret/app/y"]),
        "written-after"
    );
    assert_eq!(
        secrets_status(&agent),
        json!({"backend": "vault", "healthy": true, "last_error": null})
    );
    assert_no_leak(
        &agent,
        &[
            "before-outage",
            "during-outage",
            "after-outage",
            "written-after",
        ],
    );
}

#[test]
fn a_hanging_server_times_out_and_recovers() {
    let Some(bao) = Bao::start("a_hanging_server_times_out_and_recovers") else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/x", "k=hang-value"]);
    bao.policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    let token = bao.token(&["read-app"], &[]);
    let file = bao.token_file("token", &token);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0\ntimeout: 1"))
        .start();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "hang-value\n");

    bao.pause(true);
    let started = Instant::now();
    let out = agent.cli(&["secret", "get", "app/x"]);
    let took = started.elapsed();
    let err = failure(
        &out,
        1,
        &[
            "secrets backend unavailable",
            "cannot reach vault",
            "timed out",
        ],
    );
    assert!(
        !err.contains(&token) && !err.contains("hang-value"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the 1 s timeout cut it: {took:?}"
    );
    bao.pause(false);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "hang-value\n");
    assert_no_leak(&agent, &[&token, "hang-value"]);
}

#[test]
fn sealed_is_said_before_and_after_the_first_call_and_unseal_recovers() {
    let Some(bao) =
        Bao::start("sealed_is_said_before_and_after_the_first_call_and_unseal_recovers")
    else {
        return;
    };
    bao.policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    let token = bao.token(&["read-app"], &[]);
    let file = bao.token_file("token", &token);
    bao.ok(&["kv", "put", "secret/app/x", "k=sealed-value"]);
    bao.seal();
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();
    // Before any call the status asks sys/health.
    assert_eq!(
        secrets_status(&agent),
        json!({"backend": "vault", "healthy": false, "last_error": "vault is sealed"})
    );
    let out = agent.cli(&["secret", "get", "app/x"]);
    let err = failure(
        &out,
        1,
        &[
            "secrets backend unavailable",
            "vault is sealed or unavailable (503)",
            "Vault is sealed",
        ],
    );
    assert!(!err.contains(&token), "{err}");
    let answer = raw_read(&agent, "app/x");
    assert_eq!(answer["payload"]["code"], "BACKEND_UNAVAILABLE", "{answer}");
    let status = secrets_status(&agent);
    assert_eq!(status["healthy"], false);
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Vault is sealed")),
        "{status}"
    );

    bao.unseal();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "sealed-value\n");
    assert_eq!(secrets_status(&agent)["healthy"], true);
    // Sealed again while the agent holds its token; unsealed again, the token still works.
    bao.seal();
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &["Vault is sealed"]);
    bao.unseal();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "sealed-value\n");
    assert_no_leak(&agent, &[&token, "sealed-value"]);
}

#[test]
fn cache_ttl_serves_reads_from_memory_until_a_write_or_its_end() {
    let Some(mut bao) = Bao::start("cache_ttl_serves_reads_from_memory_until_a_write_or_its_end")
    else {
        return;
    };
    let file = bao.token_file("token", common::bao::ROOT);
    bao.ok(&["kv", "put", "secret/app/x", "k=cached-first"]);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 2"))
        .start();
    let reads = |bao: &Bao| {
        bao.requests()
            .iter()
            .filter(|r| r.by_agent() && r.operation == "read" && r.path.starts_with("secret/"))
            .count()
    };
    bao.audit_headers(&["User-Agent"]);
    let get = |args: &[&str]| {
        let mut a = vec!["secret", "get", "app/x", "--field", "k"];
        a.extend_from_slice(args);
        success(&agent.cli(&a))
    };
    assert_eq!(get(&[]), "cached-first\n");
    bao.ok(&["kv", "put", "secret/app/x", "k=cached-second"]);
    assert_eq!(get(&[]), "cached-first\n", "within cache_ttl: from memory");
    assert_eq!(reads(&bao), 1);
    // (path, version) is an entry of its own.
    assert_eq!(get(&["--version", "2"]), "cached-second\n");
    assert_eq!(get(&["--version", "2"]), "cached-second\n");
    assert_eq!(reads(&bao), 2);
    // A write through the agent drops what was cached of the path; so does a delete.
    success(&agent.cli(&["secret", "put", "app/x", "k=cached-third"]));
    assert_eq!(get(&[]), "cached-third\n");
    assert_eq!(reads(&bao), 3);
    success(&agent.cli(&["secret", "delete", "app/x"]));
    failure(
        &agent.cli(&["secret", "get", "app/x"]),
        1,
        &["no secret at app/x"],
    );
    success(&agent.cli(&["secret", "put", "app/x", "k=cached-fourth"]));
    assert_eq!(get(&[]), "cached-fourth\n");

    // Down: a fresh entry is still the answer; once cache_ttl is over, it is not.
    bao.kill();
    let read_at = Instant::now();
    assert_eq!(get(&[]), "cached-fourth\n");
    std::thread::sleep(
        Duration::from_secs(2).saturating_sub(read_at.elapsed()) + Duration::from_millis(300),
    );
    failure(
        &agent.cli(&["secret", "get", "app/x"]),
        1,
        &["secrets backend unavailable", "Connection refused"],
    );
    assert!(!agent.stderr().contains("serving the cached value"));
    assert_no_leak(
        &agent,
        &[
            "cached-first",
            "cached-second",
            "cached-third",
            "cached-fourth",
        ],
    );
}

#[test]
fn stale_if_error_serves_the_last_value_only_while_vault_is_down() {
    let Some(mut bao) = Bao::start("stale_if_error_serves_the_last_value_only_while_vault_is_down")
    else {
        return;
    };
    let file = bao.token_file("token", common::bao::ROOT);
    bao.ok(&["kv", "put", "secret/app/x", "k=stale-first"]);
    bao.ok(&["kv", "put", "secret/app/unread", "k=never-read"]);
    // cache_ttl 0: every read goes to Vault, and the last value is kept for outages.
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0\nstale_if_error: true"))
        .start();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "stale-first\n");
    bao.ok(&["kv", "put", "secret/app/x", "k=stale-second"]);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "stale-second\n", "not served from the cache");

    bao.kill();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "stale-second\n");
    assert!(
        agent
            .stderr()
            .contains("vault is unavailable; serving the cached value (stale_if_error)")
    );
    let access = agent
        .audit()
        .into_iter()
        .rfind(|r| r["type"] == "secret_access")
        .unwrap();
    assert_eq!(access["outcome"], "success", "{access}");
    assert_eq!(access["version"], 2, "{access}");
    // Nothing read before, or anything but a read: unavailable.
    let out = agent.cli(&["secret", "get", "app/unread"]);
    failure(
        &out,
        1,
        &["secrets backend unavailable", "Connection refused"],
    );
    let out = agent.cli(&["secret", "get", "app/x", "--version", "1"]);
    failure(&out, 1, &["secrets backend unavailable"]);
    let out = agent.cli(&["secret", "list", "app"]);
    failure(&out, 1, &["secrets backend unavailable"]);
    let out = agent.cli(&["secret", "put", "app/x", "k=not-written"]);
    failure(&out, 1, &["secrets backend unavailable"]);

    // Back and empty: Vault says there is no such secret, which is an answer, not an outage.
    bao.spawn();
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &["no secret at app/x"]);
    // That answer dropped the cached value: down again, there is nothing to serve.
    bao.kill();
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &["secrets backend unavailable"]);
    bao.spawn();
    bao.ok(&["kv", "put", "secret/app/x", "k=stale-third"]);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "stale-third\n");
    assert_no_leak(
        &agent,
        &["stale-first", "stale-second", "stale-third", "never-read"],
    );
}

#[test]
fn stale_if_error_is_not_served_after_vault_said_no() {
    let Some(bao) = Bao::start("stale_if_error_is_not_served_after_vault_said_no") else {
        return;
    };
    bao.policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    let token = bao.token(&["read-app"], &[]);
    let file = bao.token_file("token", &token);
    bao.ok(&["kv", "put", "secret/app/x", "k=revoked-value"]);
    bao.ok(&["kv", "put", "secret/app/y", "k=dropped-value"]);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0\nstale_if_error: true"))
        .start();
    for path in ["app/x", "app/y"] {
        let out = agent.cli(&["secret", "get", path]);
        success(&out);
    }
    // The policy no longer allows app/y: Vault answers, and says no.
    bao.policy(
        "read-app",
        r#"path "secret/data/app/x" { capabilities = ["read"] }"#,
    );
    let out = agent.cli(&["secret", "get", "app/y"]);
    failure(&out, 1, &["permission denied"]);
    // The token revoked: the same.
    bao.ok(&["token", "revoke", &token]);
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(
        &out,
        1,
        &["does not accept the agent's token", "permission denied"],
    );
    assert!(!agent.stderr().contains("serving the cached value"));
    assert_no_leak(&agent, &[&token, "revoked-value", "dropped-value"]);
}
