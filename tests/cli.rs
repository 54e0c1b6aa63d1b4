//! The `aether-vault` CLI against the real agent: exit codes, formats, and errors.

mod common;

use common::{Agent, json_out, stderr, stdout};
use serde_json::json;

#[test]
fn request_validate_revoke_list_in_every_format() {
    let agent = Agent::dev();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read,write",
        "--ttl",
        "60",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json_out(&out);
    assert_eq!(r["status"], "granted");
    assert_eq!(r["capability"]["actions"], json!(["read", "write"]));
    let id = r["capability"]["id"].as_str().unwrap().to_string();

    let out = agent.cli(&["capability", "validate", &id, "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let y = aether_vault_agent::yaml::parse(&stdout(&out)).unwrap();
    assert_eq!(y["valid"], true);

    let out = agent.cli(&[
        "capability",
        "list",
        "--format",
        "json",
        "--status",
        "active",
    ]);
    assert_eq!(json_out(&out)["count"], 1);
    let out = agent.cli(&["capability", "list"]);
    assert!(
        stdout(&out).contains(&id),
        "table lists the id: {}",
        stdout(&out)
    );

    let out = agent.cli(&["capability", "revoke", &id, "--reason", "Test completed"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "Capability revoked successfully\n");
    assert!(stderr(&out).is_empty());

    let out = agent.cli(&["capability", "validate", &id, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_out(&out)["errors"][0]["code"], "REVOKED");

    let out = agent.cli(&["capability", "revoke", &id, "--format", "json"]);
    let v = json_out(&out);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["message"], "Capability revoked successfully");
}

#[test]
fn denied_exits_2_and_errors_exit_1() {
    let agent = Agent::builder().mode("standard").start();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_out(&out)["status"], "denied");
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--constraints",
        "{not json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Error: --constraints is not valid JSON"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let out = agent.cli(&["capability", "revoke", "cap_nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Error: "));
}

#[test]
fn output_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::dev();
    let file = agent.dir.path().join("cap.json");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "r",
        "--action",
        "read",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["status"], "granted");
}

#[test]
fn status_commands() {
    let agent = Agent::dev();
    let out = agent.cli(&["agent", "status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let s = json_out(&out);
    assert_eq!(s["mode"], "development");
    assert!(s.get("detail").is_none());
    let out = agent.cli(&["agent", "status", "--verbose", "--format", "json"]);
    assert_eq!(json_out(&out)["detail"]["socket_activated"], false);
    let out = agent.cli(&["capability", "status"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).is_empty());
    let out = agent.cli(&["agent", "reload", "--format", "json"]);
    assert_eq!(json_out(&out)["status"], "reloaded");
}

#[test]
fn failed_reload_exits_1() {
    let agent = Agent::dev();
    std::fs::write(agent.policy_dir.join("bad.json"), "{").unwrap();
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.json"), "{}", stderr(&out));
}

#[test]
fn no_agent_names_the_socket_tried() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let out = std::process::Command::new(common::CLI)
        .args(["capability", "status", "--socket-path"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: ") && err.contains(sock.to_str().unwrap()),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = std::process::Command::new(common::CLI)
        .args(["capability", "status"])
        .env("VAULT_AGENT_SOCKET_PATH", &sock)
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains(sock.to_str().unwrap()),
        "the env var is honoured"
    );
}

#[test]
fn config_validate() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "mode: hardened\nipc:\n  max_connections: 5\n").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Configuration is valid\n");
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--format", "json", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let c = json_out(&out);
    assert_eq!(c["mode"], "hardened");
    assert_eq!(c["capability_engine"]["default_ttl"], 60);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "modee: hardened\n").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: ") && err.contains("modee") && err.contains("bad.yaml"),
        "{err}"
    );
}
