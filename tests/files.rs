//! Files the agent trusts are checked like the policy directory is, and development mode never
//! touches the system: a socket directory others can write, a state directory others can write,
//! a foreign-owned signing key, an audit log that is a symbolic link and state files left by a
//! run as root are each refused, naming the file and the command that fixes it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Agent;
use serde_json::{Value, json};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

/// Runs an agent that is expected to refuse to start; one still running after a few seconds
/// (it started) is killed, and its output returned all the same, with a failed status.
fn run_to_exit(mut cmd: Command) -> Output {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(stderr.path()).unwrap(),
    }
}

#[test]
fn a_socket_directory_others_can_write_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let (_agent, cmd) = Agent::builder().socket(&open.join("agent.sock")).prepare();
    let out = run_to_exit(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains(&format!("socket directory {}", open.display())) && err.contains("chmod go-w"),
        "{err}"
    );
    assert!(!open.join("agent.sock").exists(), "nothing was bound there");
}

#[test]
fn a_root_owned_sticky_socket_directory_is_accepted() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let sticky = dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    let mut agent = Agent::builder().socket(&sticky.join("agent.sock")).start();
    let mode = std::fs::symlink_metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666, "the socket has its mode from creation");
    assert!(agent.stop().success());
}

/// A world-writable state directory holding a signing key and a capability store that another
/// user wrote (here: a real key and store, handed to uid 60001, as if that user had made them
/// and signed a capability of their own) is refused; so is the key alone once the directory is
/// closed. The forged capability is never validated.
#[test]
fn a_state_directory_others_can_write_and_a_foreign_key_are_refused() {
    require_root!();
    let mut genuine = Agent::dev();
    let id = genuine.grant("secret:/forged", &["read"]);
    assert!(genuine.stop().success());

    let (agent, cmd) = Agent::builder().prepare();
    let state = &agent.state_dir;
    std::fs::create_dir_all(state).unwrap();
    for f in ["signing.key", "capabilities.log"] {
        std::fs::copy(genuine.state_dir.join(f), state.join(f)).unwrap();
        chown(&state.join(f), 60001);
    }
    chmod(state, 0o777);
    let out = run_to_exit(cmd);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the agent started: {err}");
    assert!(
        err.contains(&format!("state directory {}", state.display()))
            && err.contains(&format!("chmod go-w {}", state.display())),
        "{err}"
    );

    chmod(state, 0o700);
    let (_again, cmd) = Agent::builder().state_dir(state).prepare();
    let out = run_to_exit(cmd);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the agent started: {err}");
    let key = state.join("signing.key");
    assert!(
        err.contains(&format!("signing key {}", key.display()))
            && err.contains("uid 60001")
            && err.contains(&format!("chown root: {}", key.display())),
        "{err}"
    );

    // Given back to root, the same files are the agent's own again: the capability that was
    // refused above validates now, which shows the refusal was about the files' owner.
    chown(&key, 0);
    chown(&state.join("capabilities.log"), 0);
    let restored = Agent::builder().state_dir(state).start();
    let v = restored
        .client()
        .call("capability_validate", json!({"capability_id": id}));
    assert_eq!(v["payload"]["valid"], true, "{v}");
}

#[test]
fn an_audit_log_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("log");
    std::fs::create_dir(&logs).unwrap();
    chmod(&logs, 0o750);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "precious\n").unwrap();
    let audit = logs.join("audit.log");
    std::os::unix::fs::symlink(&elsewhere, &audit).unwrap();
    let (_agent, cmd) = Agent::builder().audit_file(&audit).prepare();
    let out = run_to_exit(cmd);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the agent started: {err}");
    assert!(
        err.contains(&format!("audit log {}", audit.display())) && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        "precious\n",
        "nothing was written through the link"
    );
}

/// What `aether-vault agent start --mode development` used to leave behind as root: a state
/// directory the service user owns, holding root's files. The agent running as that user
/// refuses to start, naming the first such file and the `chown` that gives everything back.
#[test]
fn state_files_left_by_root_stop_the_service_user_with_the_file_and_the_fix() {
    require_root!();
    let service_uid = 60005;
    let mut root_run = Agent::dev();
    assert!(root_run.stop().success());
    let dir = root_run.dir.path();
    chown(&root_run.state_dir, service_uid);
    let run = dir.join("run-service");
    std::fs::create_dir(&run).unwrap();
    chown(&run, service_uid);
    let agent = dir.join("aether-vault-agent");
    std::fs::copy(common::AGENT, &agent).unwrap();
    chmod(&agent, 0o755);
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={service_uid}"))
        .arg(format!("--regid={service_uid}"))
        .arg("--clear-groups")
        .arg(&agent)
        .args(["--mode", "standard", "--log-target", "stderr"])
        .arg("--socket-path")
        .arg(run.join("agent.sock"))
        .arg("--state-dir")
        .arg(&root_run.state_dir)
        .arg("--policy-dir")
        .arg(&root_run.policy_dir)
        .arg("--audit-file")
        .arg(&root_run.audit_file);
    common::clean_env(&mut cmd, dir);
    let out = run_to_exit(cmd);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let key = root_run.state_dir.join("signing.key");
    assert!(
        err.contains(&format!("signing key {}", key.display()))
            && err.contains("belongs to root")
            && err.contains(&format!(
                "chown -R {service_uid}: {}",
                root_run.state_dir.display()
            )),
        "{err}"
    );
    assert!(
        !err.contains("Permission denied") || err.contains("fix:"),
        "never a bare permission error: {err}"
    );
}

/// Development mode as root, with only `HOME` set (no paths on the command line), writes
/// nothing outside `HOME`: /run, /var/lib and /var/log are fresh tmpfs mounts in a private
/// mount namespace, and stay empty while the agent serves, grants and stops.
#[test]
fn development_mode_as_root_writes_nothing_outside_home() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let etc_before = Path::new("/etc/aether-vault").exists();
    const SCRIPT: &str = r#"
set -u
for d in /var/lib /var/log /run; do mount -t tmpfs tmpfs "$d"; done
rm -rf /run/mount  # mount(8)'s own bookkeeping, in the fresh tmpfs
"$AGENT" --mode development --log-target stderr 2>"$DIR/agent.stderr" &
APID=$!
SOCK="$HOME/.aether-vault/agent.sock"
ok=no
for i in $(seq 200); do
  if "$CLI" --socket-path "$SOCK" capability request --resource secret:/dev --action read --format json >"$DIR/grant.json" 2>/dev/null; then ok=yes; break; fi
  sleep 0.05
done
kill $APID; wait $APID
echo "served=$ok"
echo "outside:"
find /run /var/lib /var/log -mindepth 1
"#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "bash", "-c", SCRIPT]);
    common::clean_env(&mut cmd, dir.path());
    let out = cmd
        .env("HOME", &home)
        .env("DIR", dir.path())
        .env("AGENT", common::AGENT)
        .env("CLI", common::CLI)
        .output()
        .unwrap();
    let text = common::stdout(&out);
    let agent_log = std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default();
    let (served, outside) = text.split_once("outside:").expect(&text);
    assert!(
        served.contains("served=yes"),
        "the agent served on $HOME/.aether-vault/agent.sock: {text}\n{}\n{agent_log}",
        common::stderr(&out)
    );
    assert_eq!(
        outside.trim(),
        "",
        "development mode wrote outside HOME:\n{outside}"
    );
    assert_eq!(Path::new("/etc/aether-vault").exists(), etc_before);
    let base = home.join(".aether-vault");
    for f in ["state/signing.key", "state/capabilities.log", "audit.log"] {
        assert!(base.join(f).exists(), "{f} is under HOME");
    }
    let grant: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("grant.json")).unwrap()).unwrap();
    assert!(grant["capability"]["id"].is_string(), "{grant}");
}

/// The refusal reaches journald with its own MESSAGE_ID, the file and the fix as fields: a real
/// journald in a private mount namespace (as tests/journald.rs runs it), and an agent whose
/// signing key belongs to another user.
#[test]
fn a_refused_file_reaches_the_journal_with_its_message_id_file_and_fix() {
    require_root!();
    const JOURNALD: &str = "/lib/systemd/systemd-journald";
    if !Path::new(JOURNALD).exists() {
        eprintln!("SKIPPED: {JOURNALD} is not installed");
        return;
    }
    const SCRIPT: &str = r#"
set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || true
mkdir -p /run/systemd/journal
"$JOURNALD" >"$DIR/journald.log" 2>&1 &
JPID=$!
trap 'kill $JPID' EXIT
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
timeout 10 "$AGENT" --mode development --log-target journald --socket-path "$DIR/j.sock" \
  --state-dir "$DIR/state" --policy-dir "$DIR/pol" --audit-file "$DIR/audit.log" 2>/dev/null || true
sleep 0.3
journalctl --no-pager -o json SYSLOG_IDENTIFIER=aether-vault-agent >"$DIR/journal.json"
"#;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    let key = state.join("signing.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    chmod(&key, 0o600);
    chown(&key, 60001);
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", SCRIPT])
        .env("DIR", dir.path())
        .env("AGENT", common::AGENT)
        .env("JOURNALD", JOURNALD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let journal = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
    let entry = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["MESSAGE_ID"] == aether_vault_agent::oplog::FILE_REFUSED)
        .unwrap_or_else(|| panic!("no refused-file entry in:\n{journal}"));
    assert_eq!(entry["AV_FILE"], key.display().to_string(), "{entry}");
    assert_eq!(
        entry["AV_FIX"],
        format!("chown root: {}", key.display()),
        "{entry}"
    );
    assert_eq!(entry["PRIORITY"], "3", "an error: {entry}");
    assert!(
        entry["MESSAGE"].as_str().unwrap().contains("uid 60001"),
        "{entry}"
    );
}
