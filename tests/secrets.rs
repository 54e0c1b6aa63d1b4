//! Secrets behind capabilities, against the real agent with the file backend: the CLI round
//! trip (versions, a restart in between), the key from a credentials directory and from a key
//! file, a wrong key, the capability rules of redemption, `exec`, and `--output`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Agent, json_out, stderr, stdout};
use serde_json::{Value, json};

fn put(agent: &Agent, path: &str, pairs: &[&str]) {
    let mut args = vec!["secret", "put", path];
    args.extend_from_slice(pairs);
    let out = agent.cli(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn put_get_versions_list_delete_across_a_restart() {
    let mut agent = Agent::dev();
    put(&agent, "db/primary", &["user=app", "password=hunter2"]);
    put(
        &agent,
        "secret:/db/primary",
        &["user=app", "password=hunter3"],
    );
    put(&agent, "web/token", &["token=t0k"]);
    assert!(agent.stop().success());
    agent.restart();
    let out = agent.cli(&["secret", "get", "db/primary", "--format", "json"]);
    let v = json_out(&out);
    assert_eq!(
        (v["version"].clone(), v["data"]["password"].clone()),
        (json!(2), json!("hunter3"))
    );
    let out = agent.cli(&[
        "secret",
        "get",
        "db/primary",
        "--field",
        "password",
        "--version",
        "1",
    ]);
    assert_eq!(stdout(&out), "hunter2\n");
    let out = agent.cli(&["secret", "list"]);
    assert_eq!(stdout(&out), "db/\nweb/\n");
    let out = agent.cli(&["secret", "delete", "web/token"]);
    assert_eq!(out.status.code(), Some(0));
    let out = agent.cli(&["secret", "get", "web/token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no secret"), "{}", stderr(&out));
    // Values never reach the audit log or the agent's log.
    let audit = std::fs::read_to_string(&agent.audit_file).unwrap();
    assert!(!audit.contains("hunter") && audit.contains("secret_access"));
    assert!(!agent.stderr().contains("hunter"));
    let key = agent.state_dir.join("secrets.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_key_can_come_from_a_credentials_directory_and_a_wrong_key_stops_the_start() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("secrets-key"), "ab".repeat(32)).unwrap();
    let mut agent = Agent::builder()
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())
        .start();
    put(&agent, "a", &["k=v"]);
    assert!(
        !agent.state_dir.join("secrets.key").exists(),
        "the credential was used, no key file made"
    );
    assert!(agent.stop().success());
    std::fs::write(creds.path().join("secrets-key"), "cd".repeat(32)).unwrap();
    let mut cmd = std::process::Command::new(common::AGENT);
    common::clean_env(&mut cmd, agent.dir.path());
    cmd.args(["--mode", "development", "--socket-path"])
        .arg(&agent.socket)
        .arg("--state-dir")
        .arg(&agent.state_dir)
        .arg("--audit-file")
        .arg(&agent.audit_file)
        .env("CREDENTIALS_DIRECTORY", creds.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong key"), "{}", stderr(&out));
}

fn grant(c: &mut common::RawClient, resource: &str, actions: &[&str], extra: Value) -> String {
    c.grant(resource, actions, extra)
}

fn code(r: &Value) -> String {
    r["payload"]["code"].as_str().unwrap_or("none").to_string()
}

#[test]
fn a_capability_reads_only_what_it_covers_with_the_actions_it_carries() {
    let agent = Agent::dev();
    put(&agent, "db/primary", &["password=p1"]);
    put(&agent, "other", &["x=y"]);
    let mut c = agent.client();
    let db = grant(&mut c, "secret:/db/*", &["read"], json!({}));
    let r = c.call(
        "secret_read",
        json!({"capability_id": db, "path": "db/primary"}),
    );
    assert_eq!(r["type"], "secret_response", "{r}");
    assert_eq!(r["payload"]["data"]["password"], "p1");
    assert_eq!(
        code(&c.call("secret_read", json!({"capability_id": db, "path": "other"}))),
        "PERMISSION_DENIED"
    );
    assert_eq!(
        code(&c.call("secret_read", json!({"capability_id": db}))),
        "INVALID_PAYLOAD",
        "a pattern needs a path"
    );
    assert_eq!(
        code(&c.call(
            "secret_write",
            json!({"capability_id": db, "path": "db/primary", "data": {"a": "b"}})
        )),
        "PERMISSION_DENIED"
    );
    assert_eq!(
        code(&c.call(
            "secret_read",
            json!({"capability_id": db, "path": "db/../other"})
        )),
        "INVALID_PAYLOAD"
    );
    // An exact capability needs no path.
    let exact = grant(&mut c, "secret:/other", &["read"], json!({}));
    assert_eq!(
        c.call("secret_read", json!({"capability_id": exact}))["payload"]["data"]["x"],
        "y"
    );
    // Revoked, expired, used up.
    c.call("capability_revoke", json!({"capability_id": exact}));
    assert_eq!(
        code(&c.call("secret_read", json!({"capability_id": exact}))),
        "REVOKED"
    );
    let once = grant(&mut c, "secret:/other", &["read"], json!({"maxUses": 1}));
    assert_eq!(
        c.call("secret_read", json!({"capability_id": once}))["type"],
        "secret_response"
    );
    assert_eq!(
        code(&c.call("secret_read", json!({"capability_id": once}))),
        "USAGE_LIMIT_EXCEEDED"
    );
    let short = grant(&mut c, "secret:/other", &["read"], json!({"ttl": 1}));
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        code(&c.call("secret_read", json!({"capability_id": short}))),
        "EXPIRED"
    );
    assert_eq!(
        code(&c.call(
            "secret_read",
            json!({"capability_id": "cap_nope", "path": "other"})
        )),
        "CAP_NOT_FOUND"
    );
    assert_eq!(
        code(&c.call(
            "secret_read",
            json!({"capability_id": db, "path": "db/missing"})
        )),
        "SECRET_NOT_FOUND"
    );
}

#[test]
fn a_foreign_capability_reads_nothing() {
    require_root!();
    let agent = Agent::dev();
    put(&agent, "db/primary", &["password=p1"]);
    let id = agent.grant("secret:/db/primary", &["read"]);
    let out = agent.cli_as(65534, &["secret", "get", "--capability", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not issued to the caller"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("p1"));
}

#[test]
fn exec_passes_secrets_to_the_child_only_and_output_files_are_private() {
    let agent = Agent::dev();
    put(&agent, "db/primary", &["password=s3cr3t-value", "user=app"]);
    put(&agent, "web/token", &["token=tok-value"]);
    let seen = agent.dir.path().join("seen");
    let script = format!(
        "printf '%s %s' \"$DB_PASS\" \"$TOKEN\" > {}; exit 7",
        seen.display()
    );
    let out = agent.cli(&[
        "exec",
        "--secret",
        "DB_PASS=secret:/db/primary#password",
        "--secret",
        "TOKEN=secret:/web/token",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exec exits with the command's status: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "s3cr3t-value tok-value"
    );
    assert!(!stdout(&out).contains("value") && !stderr(&out).contains("value"));
    let out = agent.cli(&["exec", "--secret", "X=secret:/db/primary", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "two fields and none named");
    assert!(
        stderr(&out).contains(
            "has 2 fields; name the one to put in X with #field (its fields: password, user)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cr3t"));
    // A field named that the secret does not have: said so, not "name one with #field".
    let out = agent.cli(&[
        "exec",
        "--secret",
        "X=secret:/db/primary#nosuch",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no field \"nosuch\" to put in X (its fields: password, user)"),
        "{}",
        stderr(&out)
    );
    let file = agent.dir.path().join("pw.txt");
    let out = agent.cli(&[
        "secret",
        "get",
        "db/primary",
        "--field",
        "password",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "s3cr3t-value\n");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_pattern_capability_cannot_reach_what_a_rule_denies() {
    let me = nix::unistd::geteuid().as_raw();
    let policy = json!({"id": "p", "rules": [
        {"id": "all", "effect": "allow", "resources": ["secret:*"], "actions": ["read", "write"], "identities": [format!("uid:{me}")]},
        {"id": "no-prod-writes", "effect": "deny", "resources": ["secret:/prod/*"], "actions": ["write"], "identities": ["*"]}
    ]});
    let agent = Agent::builder()
        .mode("standard")
        .policy("p.json", &policy.to_string())
        .start();
    let mut c = agent.client();
    // A pattern that reaches what a rule denies is refused at once, naming the rule...
    let r = c.call(
        "capability_request",
        json!({"resource": "secret:/*", "actions": ["write"]}),
    );
    assert_eq!(r["payload"]["status"], "denied", "{r}");
    assert!(
        r["payload"]["policyResult"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("no-prod-writes"),
        "{r}"
    );
    // ...one that stays clear of it is granted, and redemption decides again on the concrete
    // path.
    let cap = grant(&mut c, "secret:/app/*", &["write"], json!({"maxUses": 10}));
    let r = c.call(
        "secret_write",
        json!({"capability_id": cap, "path": "app/db", "data": {"pw": "x"}}),
    );
    assert_eq!(r["type"], "secret_response", "{r}");
    // A tightened policy takes effect for capabilities already issued.
    std::fs::write(
        agent.policy_dir.join("p.json"),
        json!({"id": "p", "rules": []}).to_string(),
    )
    .unwrap();
    assert_eq!(
        c.call("agent_reload", Value::Null)["payload"]["status"],
        "reloaded"
    );
    let r = c.call(
        "secret_write",
        json!({"capability_id": cap, "path": "app/db", "data": {"pw": "y"}}),
    );
    assert_eq!(code(&r), "PERMISSION_DENIED", "{r}");
}
