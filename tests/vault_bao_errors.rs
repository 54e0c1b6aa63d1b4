//! What the vault backend says when a real OpenBao server says no: a policy denial (403) is
//! `BACKEND_DENIED`, spends no token and serves nothing cached; a missing namespace or mount, a
//! KV version mismatch and a TLS mismatch are `BACKEND_MISCONFIGURED` with the server's own
//! words; the two backends agree on a delete of a missing secret, an empty folder and version 0.

mod common;

use std::time::Duration;

use common::bao::{Bao, token_auth, vault_config, write_private};
use common::{Agent, stderr, stdout};

/// A policy that lets a token read and write `secret/app/*` (KV v2) and nothing else.
const APP_POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/app/*" { capabilities = ["read", "list", "delete"] }
"#;

/// The agent with a token file holding `token`.
fn agent_with_token(bao: &Bao, token: &str, extra: &str) -> (Agent, std::path::PathBuf) {
    let file = bao.token_file(&format!("token-{}", token.len()), token);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), extra))
        .start();
    (agent, file)
}

/// An agent that reads `bao` with its root token, `extra` lines under `vault:`.
fn root_agent(bao: &Bao, extra: &str) -> Agent {
    let file = bao.token_file("root-token", common::bao::ROOT);
    Agent::builder()
        .config(&bao.config(&token_auth(&file), extra))
        .start()
}

fn status_secrets(agent: &Agent) -> serde_json::Value {
    agent.client().call("agent_status", serde_json::Value::Null)["payload"]["secrets"].clone()
}

#[test]
fn a_denied_read_spends_no_approle_secret_id_use_and_keeps_the_token() {
    let Some(bao) = Bao::start("a_denied_read_spends_no_approle_secret_id_use") else {
        return;
    };
    bao.policy("app", APP_POLICY);
    bao.ok(&["auth", "enable", "approle"]);
    bao.ok(&[
        "write",
        "auth/approle/role/r",
        "token_policies=app",
        "secret_id_num_uses=2",
        "token_ttl=1h",
    ]);
    let role_id = bao.ok(&["read", "-field=role_id", "auth/approle/role/r/role-id"]);
    let secret_id = bao.ok(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/r/secret-id",
    ]);
    let sid = bao.dir.path().join("secret-id");
    write_private(&sid, secret_id.trim());
    bao.ok(&["kv", "put", "secret/app/db", "password=pw1"]);
    bao.ok(&["kv", "put", "secret/other/x", "password=nope"]);
    let agent = Agent::builder()
        .config(&bao.config(
            &common::bao::approle_auth(role_id.trim(), &sid),
            "cache_ttl: 0",
        ))
        .start();

    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(stdout(&out), "pw1\n", "{}", stderr(&out));
    for _ in 0..3 {
        let out = agent.cli(&["secret", "get", "other/x"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("403") && err.contains("permission denied"),
            "{err}"
        );
        assert!(
            !err.contains("error occurred") && !err.contains("unavailable"),
            "one line, the cause named: {err}"
        );
    }
    // The denials did not throw the token away: the agent still reads, and has logged in once,
    // so the secret_id (two uses) has one use left.
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(stdout(&out), "pw1\n", "{}", stderr(&out));
    let lookup = bao.json(&[
        "write",
        "-format=json",
        "auth/approle/role/r/secret-id/lookup",
        &format!("secret_id={}", secret_id.trim()),
    ]);
    assert_eq!(lookup["data"]["secret_id_num_uses"], 1, "{lookup}");
    // A policy denial is not an outage.
    let s = status_secrets(&agent);
    assert_eq!(s["healthy"], true, "{s}");
}

#[test]
fn after_vault_says_no_nothing_cached_is_served() {
    let Some(bao) = Bao::start("after_vault_says_no_nothing_cached_is_served") else {
        return;
    };
    bao.policy("app", APP_POLICY);
    bao.ok(&["kv", "put", "secret/app/db", "password=cached-value"]);
    let token = bao.token(&["app"], &[]);
    let (agent, _) = agent_with_token(&bao, &token, "cache_ttl: 1\nstale_if_error: true");
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(stdout(&out), "cached-value\n", "{}", stderr(&out));

    // The policy drops the path: once the cache entry is old, the read is denied, whatever
    // stale_if_error says.
    bao.policy(
        "app",
        "path \"secret/data/elsewhere/*\" { capabilities = [\"read\"] }\n",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let out = agent.cli(&["secret", "get", "app/db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("cached-value"));
    // And later, the token itself revoked (its file not rewritten): still nothing stale.
    bao.policy("app", APP_POLICY);
    bao.ok(&["token", "revoke", &token]);
    let out = agent.cli(&["secret", "get", "app/db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("cached-value"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("does not accept the agent's token"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&token) && !agent.stderr().contains(&token));
}

/// `secret get` through an agent configured with `extra`; returns (exit code, stderr).
fn get_with(bao: &Bao, address: &str, extra: &str, path: &str) -> (Option<i32>, String) {
    let file = bao.token_file("root-token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&vault_config(address, None, &token_auth(&file), extra))
        .start();
    let out = agent.cli(&["secret", "get", path]);
    (out.status.code(), stderr(&out))
}

#[test]
fn a_missing_namespace_or_mount_is_named_not_an_empty_store() {
    let Some(bao) = Bao::start("a_missing_namespace_or_mount_is_named") else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/db", "password=x"]);
    let (code, err) = get_with(&bao, &bao.addr, "namespace: nope", "app/db");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("misconfigured") && err.contains("namespace not found"),
        "{err}"
    );
    let (code, err) = get_with(&bao, &bao.addr, "mount: nosuch", "app/db");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no secrets engine mounted at nosuch/")
            && err.contains("no handler for route"),
        "{err}"
    );
    // A list of a missing mount is not an empty list.
    let agent = root_agent(&bao, "mount: nosuch");
    let out = agent.cli(&["secret", "list", "app"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no handler for route"),
        "{}",
        stderr(&out)
    );
    let s = status_secrets(&agent);
    assert_eq!(
        s["healthy"], false,
        "a broken configuration is unhealthy: {s}"
    );
}

#[test]
fn kv_version_mismatches_are_refused_before_anything_is_written() {
    let Some(bao) = Bao::start("kv_version_mismatches_are_refused") else {
        return;
    };
    bao.ok(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    bao.ok(&["kv", "put", "secret/app/db", "password=v2"]);
    bao.ok(&["write", "kv1/app/db", "password=v1"]);
    // kv_version 1 against a version 2 mount.
    let (code, err) = get_with(&bao, &bao.addr, "kv_version: 1", "app/db");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("is KV version 2") && err.contains("kv_version: 2"),
        "{err}"
    );
    // kv_version 2 against a version 1 mount: the write is refused and does not happen.
    let agent = root_agent(&bao, "mount: kv1\nkv_version: 2");
    let out = agent.cli(&["secret", "put", "app/new", "password=w"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is KV version 1") && stderr(&out).contains("kv_version: 1"),
        "{}",
        stderr(&out)
    );
    assert!(!bao.bao(&["read", "kv1/data/app/new"]).status.success());
    let keys = bao.ok(&["list", "-format=json", "kv1/"]);
    assert!(
        !keys.contains("data"),
        "nothing written under data/: {keys}"
    );
    // Left out, the version is detected: the same agent setup without kv_version works on both.
    for mount in ["kv1", "secret"] {
        let (code, err) = get_with(&bao, &bao.addr, &format!("mount: {mount}"), "app/db");
        assert_eq!(code, Some(0), "{mount}: {err}");
    }
}

#[test]
fn tls_mismatches_say_which_way() {
    let Some(tls) = Bao::start_tls("tls_mismatches_say_which_way") else {
        return;
    };
    tls.ok(&["kv", "put", "secret/app/db", "password=x"]);
    // http:// to a TLS port: the server's own words, and the fix.
    let (code, err) = get_with(
        &tls,
        &format!("http://127.0.0.1:{}", tls.port),
        "",
        "app/db",
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Client sent an HTTP request to an HTTPS server") && err.contains("https://"),
        "{err}"
    );
    // Without the CA: not trusted, and which key fixes it.
    let (code, err) = get_with(&tls, &tls.addr, "", "app/db");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not trusted") && err.contains("ca_cert"),
        "{err}"
    );
    // https:// to a plain HTTP port.
    let Some(plain) = Bao::start("tls_mismatches_say_which_way (plain)") else {
        return;
    };
    let (code, err) = get_with(
        &plain,
        &format!("https://127.0.0.1:{}", plain.port),
        "",
        "app/db",
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("does not speak TLS") && err.contains("http://"),
        "{err}"
    );
}

/// The same steps through the file backend and through the vault backend: what a user sees
/// (exit code, and the kind of answer) is the same.
#[test]
fn both_backends_agree_on_missing_secrets_empty_folders_and_version_0() {
    let Some(bao) = Bao::start("both_backends_agree") else {
        return;
    };
    let vault = root_agent(&bao, "cache_ttl: 0");
    let local = Agent::builder().start();
    let steps: &[(&[&str], Option<i32>, &str)] = &[
        (
            &["secret", "put", "app/db", "password=pw"],
            Some(0),
            "version 1",
        ),
        (
            &["secret", "delete", "app/missing"],
            Some(1),
            "no secret at app/missing",
        ),
        (&["secret", "list", "empty"], Some(1), "no secret at empty/"),
        (
            &["secret", "get", "app/db", "--version", "0"],
            Some(1),
            "versions start at 1",
        ),
        (
            &["secret", "get", "app/db", "--version", "9"],
            Some(1),
            "no secret at app/db version 9",
        ),
        (&["secret", "list", "app"], Some(0), "db"),
        (&["secret", "delete", "app/db"], Some(0), ""),
        (&["secret", "get", "app/db"], Some(1), "no secret at app/db"),
        (
            &["secret", "delete", "app/db"],
            Some(1),
            "no secret at app/db",
        ),
    ];
    for (agent, name) in [(&local, "file"), (&vault, "vault")] {
        for (args, code, says) in steps {
            let out = agent.cli(args);
            let text = stdout(&out) + &stderr(&out);
            assert_eq!(out.status.code(), *code, "{name} backend, {args:?}: {text}");
            assert!(text.contains(says), "{name} backend, {args:?}: {text}");
        }
    }
}
