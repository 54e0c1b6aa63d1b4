//! The vault secrets backend against a real OpenBao server (`bao server -dev`, see
//! tests/common/bao.rs): the agent and the CLI as a user runs them, the server as its operator
//! sets it up with OpenBao's own CLI, and what the server saw read from its own audit log.
//!
//! Here: KV version 2 (versions, deleted versions, values that are not strings, lists, delete,
//! percent-encoded paths), KV version 1 on a mount of two segments, namespaces (from the file and
//! from `VAULT_NAMESPACE`, with a token and with AppRole), the `VAULT_*` variables overriding the
//! file, and `aether-vault exec`. Authentication is in vault_bao_auth.rs, TLS in
//! vault_bao_tls.rs, outages and sealing in vault_bao_outage.rs.

mod common;

use common::bao::{Bao, approle_auth, assert_no_leak, failure, success, token_auth};
use common::{Agent, json_out, stderr, stdout};
use serde_json::json;

/// Reading and writing everything under `secret/` (KV version 2).
const RW: &str =
    r#"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#;

#[test]
fn kv2_put_get_versions_list_delete() {
    let Some(bao) = Bao::start("kv2_put_get_versions_list_delete") else {
        return;
    };
    bao.policy("rw", RW);
    let token = bao.token(&["rw"], &[]);
    let file = bao.token_file("token", &token);
    bao.audit_headers(&["User-Agent", "X-Vault-Request"]);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();

    let out = agent.cli(&["secret", "put", "app/db", "user=app", "password=kv2-first"]);
    assert_eq!(
        success(&out),
        "Success! Data written to: app/db (version 1)\n"
    );
    assert_eq!(
        bao.ok(&["kv", "get", "-field=password", "secret/app/db"]),
        "kv2-first"
    );
    let out = agent.cli(&["secret", "put", "app/db", "password=kv2-second"]);
    assert_eq!(
        success(&out),
        "Success! Data written to: app/db (version 2)\n"
    );
    // A version written by someone else is read at once (no cache).
    bao.ok(&["kv", "put", "secret/app/db", "password=kv2-third"]);
    let meta = bao.json(&["kv", "metadata", "get", "-format=json", "secret/app/db"]);
    let out = agent.cli(&["secret", "get", "app/db", "--format", "json"]);
    let got = json_out(&out);
    assert_eq!(got["version"], 3, "{got}");
    assert_eq!(got["data"], json!({"password": "kv2-third"}));
    assert_eq!(
        got["created_time"], meta["data"]["versions"]["3"]["created_time"],
        "Vault's own timestamp"
    );
    let out = agent.cli(&["secret", "get", "app/db", "--version", "1"]);
    assert_eq!(success(&out), "password:  kv2-first\nuser:      app\n");
    let out = agent.cli(&[
        "secret",
        "get",
        "app/db",
        "--version",
        "2",
        "--field",
        "password",
    ]);
    assert_eq!(success(&out), "kv2-second\n");
    let out = agent.cli(&["secret", "get", "app/db", "--version", "9"]);
    failure(&out, 1, &["no secret at app/db version 9"]);

    // A version deleted in Vault (metadata without data) is not found; the others still are.
    bao.ok(&["kv", "delete", "secret/app/db"]);
    let out = agent.cli(&["secret", "get", "app/db"]);
    failure(&out, 1, &["no secret at app/db"]);
    let out = agent.cli(&[
        "secret",
        "get",
        "app/db",
        "--version",
        "2",
        "--field",
        "password",
    ]);
    assert_eq!(success(&out), "kv2-second\n");
    bao.ok(&["kv", "destroy", "-versions=2", "secret/app/db"]);
    let out = agent.cli(&["secret", "get", "app/db", "--version", "2"]);
    failure(&out, 1, &["no secret at app/db version 2"]);

    // Values Vault holds that are not strings come out as their JSON text.
    let typed = bao.dir.path().join("typed.json");
    std::fs::write(
        &typed,
        r#"{"n": 5, "o": {"a": [1, true]}, "f": 1.5, "z": null}"#,
    )
    .unwrap();
    bao.ok(&[
        "kv",
        "put",
        "secret/app/typed",
        &format!("@{}", typed.display()),
    ]);
    let out = agent.cli(&["secret", "get", "app/typed", "--format", "json"]);
    assert_eq!(
        json_out(&out)["data"],
        json!({"n": "5", "o": r#"{"a":[1,true]}"#, "f": "1.5", "z": "null"})
    );

    // Paths with spaces and non-ASCII characters are percent-encoded and arrive as written.
    let odd = "app/sp ace/é+%";
    let out = agent.cli(&["secret", "put", odd, "k=odd-value"]);
    success(&out);
    assert_eq!(
        bao.ok(&["kv", "get", "-field=k", &format!("secret/{odd}")]),
        "odd-value"
    );
    let out = agent.cli(&["secret", "get", odd, "--field", "k"]);
    assert_eq!(success(&out), "odd-value\n");

    let out = agent.cli(&["secret", "list", "app"]);
    assert_eq!(success(&out), "db\nsp ace/\ntyped\n");
    let out = agent.cli(&["secret", "list"]);
    assert_eq!(success(&out), "app/\n");

    // Delete removes every version and the metadata.
    let out = agent.cli(&["secret", "delete", "app/db"]);
    assert_eq!(success(&out), "Success! Data deleted at: app/db\n");
    assert!(
        !bao.bao(&["kv", "metadata", "get", "secret/app/db"])
            .status
            .success()
    );
    let out = agent.cli(&["secret", "get", "app/db", "--version", "1"]);
    failure(&out, 1, &["no secret at app/db version 1"]);
    let out = agent.cli(&["secret", "list", "app/"]);
    assert_eq!(success(&out), "sp ace/\ntyped\n");

    // The calls are the ones docs/secrets.md lists, as the server saw them, with its headers.
    let agent_calls: Vec<(String, String)> = bao
        .requests()
        .into_iter()
        .filter(|r| r.by_agent())
        .inspect(|r| assert_eq!(r.headers["x-vault-request"], json!(["true"]), "{r:?}"))
        .map(|r| (r.operation, r.path))
        .collect();
    let expected = [
        ("create", "secret/data/app/db"),
        ("update", "secret/data/app/db"),
        ("read", "secret/data/app/db"),
        ("read", "secret/data/app/typed"),
        ("create", "secret/data/app/sp ace/é+%"),
        ("read", "secret/data/app/sp ace/é+%"),
        ("list", "secret/metadata/app/"),
        ("list", "secret/metadata/"),
        ("read", "secret/metadata/app/db"),
        ("delete", "secret/metadata/app/db"),
        ("read", "sys/internal/ui/mounts/secret"),
    ];
    for (o, p) in &agent_calls {
        assert!(
            expected.contains(&(o.as_str(), p.as_str())),
            "unexpected call {o} {p}"
        );
    }
    for call in expected {
        assert!(
            agent_calls
                .iter()
                .any(|(o, p)| (o.as_str(), p.as_str()) == call),
            "{call:?} not among {agent_calls:?}"
        );
    }
    let status = agent.client().call("agent_status", serde_json::Value::Null);
    assert_eq!(
        status["payload"]["secrets"],
        json!({"backend": "vault", "healthy": true, "last_error": null})
    );
    let accesses: Vec<_> = agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "secret_access")
        .collect();
    assert!(accesses.iter().any(|r| r["resource"] == "secret:/app/db"
        && r["actions"] == json!(["read"])
        && r["version"] == 3
        && r["outcome"] == "success"));
    assert_no_leak(
        &agent,
        &[&token, "kv2-first", "kv2-second", "kv2-third", "odd-value"],
    );
}

#[test]
fn kv1_on_a_mount_of_two_segments() {
    let Some(bao) = Bao::start("kv1_on_a_mount_of_two_segments") else {
        return;
    };
    bao.ok(&["secrets", "enable", "-path=team/kv1", "-version=1", "kv"]);
    bao.policy(
        "kv1",
        r#"path "team/kv1/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
    );
    let token = bao.token(&["kv1"], &[]);
    let file = bao.token_file("token", &token);
    let agent = Agent::builder()
        .config(&bao.config(
            &token_auth(&file),
            "mount: team/kv1\nkv_version: 1\ncache_ttl: 0",
        ))
        .start();

    let out = agent.cli(&["secret", "put", "app/x", "p=kv1-first"]);
    assert_eq!(
        success(&out),
        "Success! Data written to: app/x (version 1)\n"
    );
    let out = agent.cli(&["secret", "put", "app/x", "p=kv1-second", "q=2"]);
    assert_eq!(
        success(&out),
        "Success! Data written to: app/x (version 1)\n",
        "KV version 1 keeps one version"
    );
    assert_eq!(
        bao.ok(&["kv", "get", "-field=p", "team/kv1/app/x"]),
        "kv1-second"
    );
    bao.ok(&["kv", "put", "team/kv1/app/y", "from=bao"]);
    let out = agent.cli(&["secret", "get", "app/y", "--format", "json"]);
    assert_eq!(
        json_out(&out),
        json!({"path": "app/y", "version": 1, "created_time": "", "data": {"from": "bao"}})
    );
    let out = agent.cli(&["secret", "get", "app/x", "--version", "1", "--field", "q"]);
    assert_eq!(success(&out), "2\n");
    let out = agent.cli(&["secret", "get", "app/x", "--version", "2"]);
    failure(&out, 1, &["no secret at app/x version 2"]);
    let out = agent.cli(&["secret", "list", "app"]);
    assert_eq!(success(&out), "x\ny\n");
    let out = agent.cli(&["secret", "delete", "app/x"]);
    assert_eq!(success(&out), "Success! Data deleted at: app/x\n");
    assert!(!bao.bao(&["kv", "get", "team/kv1/app/x"]).status.success());
    let out = agent.cli(&["secret", "get", "app/x"]);
    failure(&out, 1, &["no secret at app/x"]);

    // Version 1's paths: no data/ or metadata/.
    let paths: Vec<String> = bao.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "team/kv1/app/x"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "team/kv1/app/"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("/data/") || p.contains("/metadata/"))
    );
    assert_no_leak(&agent, &[&token, "kv1-first", "kv1-second"]);
}

#[test]
fn namespaces_from_the_file_and_from_vault_namespace() {
    let Some(bao) = Bao::start("namespaces_from_the_file_and_from_vault_namespace") else {
        return;
    };
    bao.ok(&["namespace", "create", "ns1"]);
    bao.ok(&[
        "secrets",
        "enable",
        "-namespace=ns1",
        "-path=secret",
        "kv-v2",
    ]);
    bao.ok(&["kv", "put", "secret/app/db", "password=root-ns-value"]);
    bao.ok(&[
        "kv",
        "put",
        "-namespace=ns1",
        "secret/app/db",
        "password=ns1-value",
    ]);

    // A namespace in the file, with a token.
    let file = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "namespace: ns1\ncache_ttl: 0"))
        .start();
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(success(&out), "ns1-value\n");
    let out = agent.cli(&["secret", "put", "app/new", "k=written-in-ns1"]);
    success(&out);
    assert_eq!(
        bao.ok(&["kv", "get", "-namespace=ns1", "-field=k", "secret/app/new"]),
        "written-in-ns1"
    );
    assert!(!bao.bao(&["kv", "get", "secret/app/new"]).status.success());
    let out = agent.cli(&["secret", "list", "app"]);
    assert_eq!(success(&out), "db\nnew\n");

    // VAULT_NAMESPACE, with AppRole enabled inside the namespace: the login is namespaced too.
    bao.policy(
        "ns-read",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    bao.ok(&[
        "policy",
        "write",
        "-namespace=ns1",
        "ns-read",
        bao.dir.path().join("ns-read.hcl").to_str().unwrap(),
    ]);
    let (role_id, secret_id) = bao.approle("ns1", "app", &["token_policies=ns-read"]);
    let agent2 = Agent::builder()
        .config(&bao.config(&approle_auth(&role_id, &secret_id), "cache_ttl: 0"))
        .env("VAULT_NAMESPACE", "ns1")
        .start();
    let out = agent2.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(success(&out), "ns1-value\n");
    let login = bao
        .requests()
        .into_iter()
        .find(|r| r.path == "auth/approle/login")
        .expect("a login");
    assert_eq!(login.namespace, "ns1/");
    assert!(login.error.is_empty(), "{login:?}");
    assert!(
        bao.requests()
            .iter()
            .filter(|r| r.path == "secret/data/app/db" && r.operation == "read")
            .all(|r| r.namespace == "ns1/"),
        "the agents read only in ns1"
    );
    let secret_id = std::fs::read_to_string(&secret_id).unwrap();
    assert_no_leak(&agent, &["ns1-value", "written-in-ns1"]);
    assert_no_leak(&agent2, &["ns1-value", &secret_id]);
}

#[test]
fn vault_variables_override_the_file() {
    let Some(bao) = Bao::start("vault_variables_override_the_file") else {
        return;
    };
    bao.ok(&["secrets", "enable", "-path=team/kv1", "-version=1", "kv"]);
    bao.ok(&["kv", "put", "team/kv1/app/x", "k=from-the-env-mount"]);
    bao.policy("kv1", r#"path "team/kv1/*" { capabilities = ["read"] }"#);
    let (role_id, secret_id) = bao.approle("", "app", &["token_policies=kv1"]);
    // Everything in the file is wrong but the secret id file; the variables put it right.
    let config = common::bao::vault_config(
        "https://vault.invalid:8200",
        None,
        &approle_auth("not-the-role-id", &secret_id),
        "mount: secret\nkv_version: 2\ncache_ttl: 0",
    );
    let agent = Agent::builder()
        .config(&config)
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_MOUNT_PATH", "team/kv1")
        .env("VAULT_KV_VERSION", "1")
        .env("VAULT_ROLE_ID", &role_id)
        .start();
    let out = agent.cli(&["secret", "get", "app/x", "--field", "k"]);
    assert_eq!(success(&out), "from-the-env-mount\n");
    assert_eq!(bao.logins(), 1);
}

#[test]
fn exec_passes_vault_secrets_to_the_command_only() {
    let Some(bao) = Bao::start("exec_passes_vault_secrets_to_the_command_only") else {
        return;
    };
    bao.policy("rw", RW);
    let token = bao.token(&["rw"], &[]);
    let file = bao.token_file("token", &token);
    bao.ok(&[
        "kv",
        "put",
        "secret/app/db",
        "user=exec-user",
        "password=exec-pass",
    ]);
    bao.ok(&["kv", "put", "secret/app/single", "token=exec-single"]);
    let agent = Agent::builder()
        .config(&bao.config(&token_auth(&file), "cache_ttl: 0"))
        .start();
    let seen = agent.dir.path().join("seen");
    let script = format!(
        "printf '%s|%s|%s' \"$DB_USER\" \"$DB_PASS\" \"$ONE\" > {}; exit 7",
        seen.display()
    );
    let out = agent.cli(&[
        "exec",
        "--secret",
        "DB_USER=secret:/app/db#user",
        "--secret",
        "DB_PASS=secret:/app/db#password",
        "--secret",
        "ONE=secret:/app/single",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "exec-user|exec-pass|exec-single"
    );
    assert!(!stdout(&out).contains("exec-") && !stderr(&out).contains("exec-"));
    // Each distinct path is read once.
    assert_eq!(bao.count("read", "secret/data/app/db"), 1);
    assert_eq!(bao.count("read", "secret/data/app/single"), 1);

    // A field the secret does not have: exit 1, the command does not run, no value printed.
    std::fs::remove_file(&seen).unwrap();
    let out = agent.cli(&[
        "exec",
        "--secret",
        "X=secret:/app/db#nosuch",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let err = failure(&out, 1, &["secret:/app/db", "password, user"]);
    assert!(!err.contains("exec-"), "{err}");
    assert!(!seen.exists());
    // A missing secret: the same, with the backend's answer.
    let out = agent.cli(&[
        "exec",
        "--secret",
        "X=secret:/app/none#k",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    failure(&out, 1, &["no secret at app/none"]);
    assert!(!seen.exists());
    assert_no_leak(&agent, &[&token, "exec-user", "exec-pass", "exec-single"]);
}

/// systemd credentials with the vault backend: a root process in a cgroup named like the unit
/// (as systemd's would be) gets the field from Vault; with Vault hanging, the start fails once
/// `credentials.deadline_seconds` has passed, and the record says why.
#[test]
fn a_unit_gets_its_credential_from_vault_and_an_outage_fails_its_start() {
    use common::credentials::{Ask, UnitCgroup, ask_with};
    if !common::is_root() {
        eprintln!("SKIPPED: the caller joins a cgroup, which needs root");
        return;
    }
    let Some(cg) = UnitCgroup::create("vault") else {
        return;
    };
    let Some(bao) = Bao::start("a_unit_gets_its_credential_from_vault") else {
        return;
    };
    bao.policy("rw", RW);
    let token = bao.token(&["rw"], &[]);
    let file = bao.token_file("token", &token);
    bao.ok(&[
        "kv",
        "put",
        "secret/db/primary",
        "password=from-vault",
        "user=app",
    ]);
    let policy = json!({"id": "billing",
        "rules": [{"id": "r", "effect": "allow", "resources": ["secret:/db/*"],
                   "actions": ["read"], "identities": ["unit:billing.service"]}],
        "credentials": [{"unit": "billing.service", "id": "db-password",
                         "secret": "secret:/db/primary#password"}]});
    let config =
        bao.config(&token_auth(&file), "cache_ttl: 0") + "credentials:\n  deadline_seconds: 2\n";
    let agent = Agent::builder()
        .mode("standard")
        .credentials()
        .policy("billing.json", &policy.to_string())
        .config(&config)
        .start();
    let socket = agent.credentials_socket.clone().unwrap();
    let how = Ask {
        cgroup: Some(&cg),
        ..Default::default()
    };
    let out = ask_with(&socket, "x/unit/billing.service/db-password", how);
    assert_eq!(out.stdout, b"from-vault", "{}", stderr(&out));
    bao.pause(true);
    let started = std::time::Instant::now();
    let out = ask_with(&socket, "x/unit/billing.service/db-password", how);
    bao.pause(false);
    assert_eq!(out.stdout.len(), (1 << 20) + 1, "the start fails");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    let refused = agent
        .audit()
        .into_iter()
        .find(|r| r["type"] == "credential_delivery" && r["outcome"] == "failure")
        .expect("a failure record");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer within credentials.deadline_seconds (2 s)"),
        "{refused}"
    );
    assert_no_leak(&agent, &["from-vault", &token]);
}
