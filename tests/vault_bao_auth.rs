//! How the vault backend logs in to a real OpenBao server (`bao server -dev`, see
//! tests/common/bao.rs): a token file read when first needed and read again after its token is
//! rotated and revoked; AppRole with short TTLs (renewal before expiry, a new login after the
//! maximum TTL), a failed login explained, and a secret id with a use limit that denied reads must
//! not burn. Logins and renewals are counted in the server's own audit log.

mod common;

use std::time::{Duration, Instant};

use common::Agent;
use common::bao::{Bao, approle_auth, assert_no_leak, failure, success, token_auth, write_private};

/// Reading what is under `secret/app/` (KV version 2), nothing else.
const READ_APP: &str = r#"path "secret/data/app/*" { capabilities = ["read"] }"#;

#[test]
fn token_file_read_when_needed_and_again_after_rotation() {
    let Some(bao) = Bao::start("token_file_read_when_needed_and_again_after_rotation") else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/x", "k=rotation-value"]);
    let file = bao.dir.path().join("token");
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();

    // The file is not there yet: said at the first read, and read again at the next.
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(
        &out,
        1,
        &[
            "cannot read the vault token file",
            &file.display().to_string(),
        ],
    );
    let first = bao.token(&["read-app"], &[]);
    write_private(&file, &format!("{first}\n"));
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "rotation-value\n");

    // Rotation as a token sink does it: a new token in the file, the old one revoked.
    let second = bao.token(&["read-app"], &[]);
    write_private(&file, &second);
    bao.ok(&["token", "revoke", &first]);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "rotation-value\n");
    let reads: Vec<String> = bao
        .requests()
        .into_iter()
        .filter(|r| r.path == "secret/data/app/x" && r.operation == "read")
        .map(|r| r.error)
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert_eq!(reads[0], "", "the first token worked");
    assert!(reads[1].contains("permission denied"), "{reads:?}");
    assert_eq!(reads[2], "", "the retry with the new token worked");

    // Revoked with nothing new in the file: Vault's own word for it.
    bao.ok(&["token", "revoke", &second]);
    let out = agent.cli(&["secret", "get", "app/x"]);
    let err = failure(&out, 1, &["permission denied"]);
    assert!(!err.contains(&second), "{err}");
    assert_no_leak(&agent, &[&first, &second, "rotation-value"]);
}

#[test]
fn approle_renews_before_expiry_and_logs_in_again_after_max_ttl() {
    let Some(bao) = Bao::start("approle_renews_before_expiry_and_logs_in_again_after_max_ttl")
    else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/x", "k=approle-value"]);
    let (role_id, secret_id) = bao.approle(
        "",
        "short",
        &[
            "token_policies=read-app",
            "token_ttl=3s",
            "token_max_ttl=8s",
        ],
    );
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();

    // Read every 0.4 s until the agent has logged in a second time (the token's 8 s are over).
    let start = Instant::now();
    let mut seen = Vec::new(); // (seconds since the first read, logins, renewals)
    while bao.logins() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no second login in 15 s: {seen:?}\n{}",
            agent.stderr()
        );
        let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
        assert_eq!(success(&out), "approle-value\n", "at {:?}", start.elapsed());
        seen.push((start.elapsed().as_secs_f64(), bao.logins(), bao.renewals()));
        std::thread::sleep(Duration::from_millis(400));
    }
    // Not renewed before two thirds of the 3 s lease …
    assert!(
        seen.iter()
            .filter(|(t, _, _)| *t < 1.8)
            .all(|(_, _, r)| *r == 0),
        "{seen:?}"
    );
    // … and past the first token's 3 s it was still the first login's token, renewed.
    let late = seen
        .iter()
        .find(|(t, _, _)| *t > 4.5)
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(late.1, 1, "one login until 4.5 s: {seen:?}");
    assert!(late.2 >= 1, "renewed by 4.5 s: {seen:?}");
    let relogin = seen.iter().find(|(_, l, _)| *l == 2).unwrap();
    assert!(
        relogin.0 > 6.0,
        "the second login came at the max TTL: {seen:?}"
    );
    assert!(bao.renewals() >= 2, "{seen:?}");
    // And it works on with the new token.
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "approle-value\n");
    assert_eq!(bao.logins(), 2);
    let secret_id = std::fs::read_to_string(&secret_id).unwrap();
    assert_no_leak(&agent, &[&secret_id, "approle-value"]);
}

#[test]
fn approle_login_failure_is_explained_and_the_secret_id_read_again() {
    let Some(bao) = Bao::start("approle_login_failure_is_explained_and_the_secret_id_read_again")
    else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/x", "k=login-value"]);
    let (role_id, secret_id) = bao.approle("", "app", &["token_policies=read-app"]);
    let good = std::fs::read_to_string(&secret_id).unwrap();
    let wrong = "0f0f0f0f-dead-beef-0f0f-0f0f0f0f0f0f";
    write_private(&secret_id, wrong);
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "get", "app/x"]);
    let err = failure(
        &out,
        1,
        &[
            "AppRole login at auth/approle failed (400)",
            "invalid role or secret ID",
        ],
    );
    assert!(!err.contains(wrong), "{err}");
    // The secret id file is read at each login.
    write_private(&secret_id, &good);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "login-value\n");
    assert_no_leak(&agent, &[wrong, &good, "login-value"]);
}

#[test]
fn approle_logs_in_again_when_the_token_expired_or_its_renewal_is_denied() {
    let Some(bao) =
        Bao::start("approle_logs_in_again_when_the_token_expired_or_its_renewal_is_denied")
    else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/x", "k=relogin-value"]);

    // Not used for longer than its TTL: a new login, no renewal of a dead token.
    let (role_id, secret_id) =
        bao.approle("", "brief", &["token_policies=read-app", "token_ttl=2s"]);
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "relogin-value\n");
    std::thread::sleep(Duration::from_millis(2300));
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "relogin-value\n");
    assert_eq!((bao.logins(), bao.renewals()), (2, 0));
    drop(agent);

    // A token whose policies do not allow renew-self (no `default` policy): Vault answers 403
    // to the renewal, and the agent logs in again in time; every read works.
    let (role_id, secret_id) = bao.approle(
        "",
        "norenew",
        &[
            "token_policies=read-app",
            "token_ttl=3s",
            "token_no_default_policy=true",
        ],
    );
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
        assert_eq!(success(&out), "relogin-value\n", "at {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(400));
    }
    let renewals: Vec<_> = bao
        .requests()
        .into_iter()
        .filter(|r| r.path == "auth/token/renew-self")
        .collect();
    assert!(!renewals.is_empty());
    assert!(
        renewals
            .iter()
            .all(|r| r.error.contains("permission denied")),
        "{renewals:?}"
    );
    assert!(bao.logins() >= 4, "logins: {}", bao.logins());
    assert!(
        bao.requests()
            .iter()
            .filter(|r| r.path == "secret/data/app/x")
            .all(|r| r.error.is_empty()),
        "no read was refused"
    );
}

#[test]
fn approle_token_revoked_on_the_server_one_login_for_concurrent_reads() {
    let Some(bao) =
        Bao::start("approle_token_revoked_on_the_server_one_login_for_concurrent_reads")
    else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/x", "k=revoked-value"]);
    let (role_id, secret_id) = bao.approle("", "app", &["token_policies=read-app"]);
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();
    // A status before any call asks sys/health, which needs no login.
    let status = agent.client().call("agent_status", serde_json::Value::Null);
    assert_eq!(status["payload"]["secrets"]["healthy"], true, "{status}");
    assert_eq!(bao.logins(), 0);
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "revoked-value\n");
    assert_eq!(bao.logins(), 1);

    // Every token AppRole issued is revoked; four reads at once find theirs refused.
    bao.ok(&["lease", "revoke", "-sync", "-prefix", "auth/approle/login"]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
                assert_eq!(success(&out), "revoked-value\n");
            });
        }
    });
    assert_eq!(bao.logins(), 2, "one new login serves every read");
    let secret_id = std::fs::read_to_string(&secret_id).unwrap();
    assert_no_leak(&agent, &[&secret_id, "revoked-value"]);
}

#[test]
fn approle_secret_id_with_a_use_limit_survives_denied_reads() {
    let Some(bao) = Bao::start("approle_secret_id_with_a_use_limit_survives_denied_reads") else {
        return;
    };
    bao.policy("read-app", READ_APP);
    bao.ok(&["kv", "put", "secret/app/ok", "k=allowed-value"]);
    bao.ok(&["kv", "put", "secret/other/x", "k=denied-value"]);
    let (role_id, secret_id) = bao.approle(
        "",
        "limited",
        &["token_policies=read-app", "secret_id_num_uses=2"],
    );
    let agent = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "get", "app/ok", "--field", "k"]);
    assert_eq!(success(&out), "allowed-value\n");
    // Two reads Vault's policy denies: each is refused, saying so …
    for _ in 0..2 {
        let out = agent.cli(&["secret", "get", "other/x"]);
        let err = failure(&out, 1, &["other/x", "permission denied"]);
        assert!(!err.contains("denied-value"), "{err}");
    }
    // … and the token, which is fine, is kept: no login spent on them.
    let out = agent.cli(&["secret", "get", "app/ok", "--field", "k"]);
    assert_eq!(success(&out), "allowed-value\n", "{}", agent.stderr());
    assert_eq!(bao.logins(), 1);
    let secret_id = std::fs::read_to_string(&secret_id).unwrap();
    assert_no_leak(&agent, &[&secret_id, "allowed-value"]);
}
