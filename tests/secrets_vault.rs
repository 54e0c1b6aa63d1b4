//! The vault secrets backend through the real agent and CLI, against a stand-in for Vault's KV
//! version 2 API (tests/support/fake_vault.py, written from the Vault API documentation; no
//! real Vault or OpenBao can be installed here). It checks the wiring end to end: the
//! `secrets.vault` configuration, `VAULT_ADDR` from the environment, the token and request
//! headers, and an outage answered `BACKEND_UNAVAILABLE` with no stale data.

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use common::{Agent, stderr, stdout};

struct FakeVault(Child);

impl Drop for FakeVault {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn put_get_list_delete_through_vault_and_an_outage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let outage = dir.path().join("outage");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/fake_vault.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("s.test-token")
        .arg(&outage)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the fake Vault prints its port");
    let _vault = FakeVault(child);
    let token = dir.path().join("token");
    std::fs::write(&token, "s.test-token\n").unwrap();

    let config = format!(
        "secrets:\n  backend: vault\n  vault:\n    address: https://vault.invalid:8200\n    cache_ttl: 0\n    auth:\n      token_file: {}\n",
        token.display()
    );
    // VAULT_ADDR overrides the file, as the seeds' table says.
    let agent = Agent::builder()
        .config(&config)
        .env("VAULT_ADDR", &format!("http://127.0.0.1:{port}"))
        .start();

    let out = agent.cli(&["secret", "put", "app/db", "password=from-vault", "user=app"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("version 1"), "{}", stdout(&out));
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    assert_eq!(stdout(&out), "from-vault\n", "{}", stderr(&out));
    let out = agent.cli(&["secret", "list", "app"]);
    assert_eq!(stdout(&out), "db\n", "{}", stderr(&out));
    let status = agent.client().call("agent_status", serde_json::Value::Null);
    assert_eq!(status["payload"]["secrets"]["backend"], "vault");

    std::fs::write(&outage, "").unwrap();
    let out = agent.cli(&["secret", "get", "app/db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("from-vault") && !stderr(&out).contains("s.test-token"));
    std::fs::remove_file(&outage).unwrap();

    let out = agent.cli(&["secret", "delete", "app/db"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = agent.cli(&["secret", "get", "app/db"]);
    assert!(stderr(&out).contains("no secret"), "{}", stderr(&out));
    let log = std::fs::read_to_string(&agent.audit_file).unwrap() + &agent.stderr();
    assert!(
        !log.contains("from-vault") && !log.contains("s.test-token"),
        "no value or token in any log:\n{}",
        log.lines()
            .filter(|l| l.contains("from-vault") || l.contains("s.test-token"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
