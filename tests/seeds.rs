//! The seeds' scripts, run unchanged against the real agent and CLI, with the CLI on PATH under
//! the name `vault` (a symlink made here), as the seed documents use it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Agent, CLI};

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seeds");

/// A directory holding `vault` -> the CLI, to put first on PATH.
fn vault_on_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("vault");
    if !link.exists() {
        std::os::unix::fs::symlink(CLI, &link).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn seed_command(agent: &Agent, program: &str) -> Command {
    let mut cmd = Command::new(program);
    common::clean_env(&mut cmd, agent.dir.path());
    cmd.env("PATH", vault_on_path(agent.dir.path()))
        .env("VAULT_AGENT_SOCKET_PATH", &agent.socket)
        .env("TZ", "UTC")
        .current_dir(agent.dir.path())
        .stdin(Stdio::null());
    cmd
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        common::stdout(o),
        common::stderr(o)
    )
}

#[test]
fn integration_test_sh_passes_unchanged() {
    let agent = Agent::dev();
    let out = seed_command(&agent, "bash")
        .arg(format!("{SEEDS}/integration-test.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = common::stdout(&out);
    assert!(text.contains("Capability granted: cap_"), "{text}");
    assert!(text.contains("Capability validation passed"), "{text}");
    assert!(text.contains("Capability revocation passed"), "{text}");
    assert!(text.contains("All integration tests passed!"), "{text}");
}

#[test]
fn python_vault_client_class_works_unchanged() {
    let agent = Agent::dev();
    // The seed's own example main(), then every method of the class.
    let driver = r#"
import sys, os
sys.path.insert(0, os.environ["SEEDS"])
import vault_client
vault_client.main()
v = vault_client.VaultClient()
cap = v.get_capability("secret:/db/primary", "read", 300)
assert cap["id"].startswith("cap_"), cap
assert v.get_capability("secret:/db/primary", "read", 300) is cap, "cached until expiry"
assert v.validate_capability(cap["id"]) is True
assert v.revoke_capability(cap["id"], "done") is True
assert v.validate_capability(cap["id"]) is False
assert v.revoke_capability("cap_unknown") is False
explicit = vault_client.VaultClient(socket_path=os.environ["VAULT_AGENT_SOCKET_PATH"])
assert explicit.get_capability("secret:/other", "write", 60)["actions"] == ["write"]
print("DRIVER OK")
"#;
    let out = seed_command(&agent, "python3")
        .arg("-c")
        .arg(driver)
        .env("SEEDS", SEEDS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = common::stdout(&out);
    assert!(text.contains("Using capability cap_"), "{text}");
    assert!(
        text.contains("Connecting to database with capability cap_"),
        "{text}"
    );
    assert!(text.contains("DRIVER OK"), "{text}");
}

/// The CI pipelines in the seeds: `vault agent start --mode development &`, request with
/// `--output`, then `vault agent stop`.
#[test]
fn ci_pipeline_flow_start_request_output_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("vault.sock");
    let path = vault_on_path(dir.path());
    let vault = |args: &[&str]| {
        let mut cmd = Command::new("vault");
        common::clean_env(&mut cmd, dir.path());
        cmd.env("PATH", &path)
            .env("VAULT_AGENT_SOCKET_PATH", &socket)
            .env("VAULT_AGENT_STATE_DIR", dir.path().join("state"))
            .env("VAULT_AGENT_POLICY_DIR", dir.path().join("policies"))
            .env("VAULT_AGENT_AUDIT_FILE", dir.path().join("audit.log"))
            .current_dir(dir.path())
            .args(args);
        cmd
    };
    let mut agent = vault(&["agent", "start", "--mode", "development"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("agent.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..500 {
        if vault(&["capability", "status"])
            .output()
            .unwrap()
            .status
            .success()
        {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        up,
        "{}",
        std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default()
    );
    let out = vault(&[
        "capability",
        "request",
        "--resource",
        "secret:/deploy/production",
        "--action",
        "execute",
        "--ttl",
        "600",
        "--identity",
        "github-actions",
        "--purpose",
        "Production deployment",
        "--output",
        "capability.json",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let file = dir.path().join("capability.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["status"], "granted");
    assert_eq!(saved["capability"]["type"], "execute");
    assert_eq!(
        saved["capability"]["metadata"]["purpose"],
        "Production deployment"
    );
    let out = vault(&["agent", "stop"]).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let status = agent.wait().unwrap();
    assert!(status.success());
    assert!(!socket.exists());
    let _: PathBuf = file;
}
