//! Administrators always get in: other users holding every connection they may have cannot
//! lock root, the agent's user or `ipc.admin_group` out (`ipc.admin_reserved_connections`).
//! Connections are held by a small Python client run as other uids through `setpriv`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Agent;
use serde_json::Value;

/// Opens `N` connections to `PATH`, pings on each (a refused one gets an error line and is
/// closed), prints how many were served and refused, and holds the served ones until its
/// stdin closes.
const HOLDER: &str = r#"
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
held, served, refused = [], 0, []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(b'{"type":"ping_request"}\n')
    except OSError:
        pass  # refused and closed already: its error line is still there to read
    f = s.makefile("rb")
    line = f.readline().decode(errors="replace")
    if "ping_response" in line:
        served += 1
        held.append((s, f))
    else:
        refused.append(line.strip())
        s.close()
print(json.dumps({"served": served, "refused": refused}), flush=True)
sys.stdin.read()
"#;

/// A process holding connections as `uid`, and what it reported.
struct Holder {
    child: Child,
    served: u64,
    refused: Vec<String>,
}

impl Holder {
    /// Runs the holder as `uid` (primary group `uid`, no other groups) for `n` connections.
    fn start(agent: &Agent, uid: u32, n: usize) -> Holder {
        let script = agent.dir.path().join("holder.py");
        if !script.exists() {
            std::fs::write(&script, HOLDER).unwrap();
        }
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            // The system's interpreter: one found on root's PATH may live where `uid` cannot go.
            .arg("/usr/bin/python3")
            .arg(&script)
            .arg(&agent.socket)
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        common::clean_env(&mut cmd, agent.dir.path());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            panic!("holder as uid {uid} said {line:?} ({e}):\n{err}")
        });
        Holder {
            child,
            served: v["served"].as_u64().unwrap(),
            refused: v["refused"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect(),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI as `uid` with `nogroup` (65534) as a supplementary group.
fn cli_in_nogroup(agent: &Agent, uid: u32, args: &[&str]) -> std::process::Output {
    let copy = agent.dir.path().join("aether-vault-cli");
    if !copy.exists() {
        std::fs::copy(common::CLI, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--groups=65534")
        .arg(&copy)
        .args(args)
        .arg("--socket-path")
        .arg(&agent.socket);
    common::clean_env(&mut cmd, agent.dir.path());
    cmd.env("HOME", "/nonexistent").output().unwrap()
}

#[test]
fn two_uids_at_their_per_uid_maximum_cannot_lock_the_administrators_out() {
    require_root!();
    // Two uids may each hold 5 of 10 connections; the default reserve keeps 4 for admins.
    let mut agent = Agent::builder()
        .config(
            "ipc:\n  max_connections: 10\n  max_connections_per_uid: 5\n  admin_group: nogroup\n",
        )
        .start();
    let a = Holder::start(&agent, 60001, 5);
    let b = Holder::start(&agent, 60002, 5);
    // Root gets in.
    let status = agent.cli(&["agent", "status", "--format", "json"]);
    assert_eq!(status.status.code(), Some(0), "{}", common::stderr(&status));
    let s = common::json_out(&status);
    assert_eq!(s["connectionCount"], 7, "{s}");
    assert_eq!(
        a.served + b.served,
        6,
        "users other than administrators hold at most max_connections - 4: {:?} {:?}",
        a.refused,
        b.refused
    );
    assert_eq!(a.served, 5, "the first uid got its per-uid maximum");
    assert_eq!(b.refused.len(), 4);
    for r in &b.refused {
        let r: Value = serde_json::from_str(r).unwrap();
        assert_eq!(r["payload"]["code"], "TOO_MANY_CONNECTIONS", "{r}");
        assert!(
            r["payload"]["error"]
                .as_str()
                .unwrap()
                .contains("other than administrators"),
            "{r}"
        );
    }
    // A third ordinary uid is refused too, with the code.
    let c = Holder::start(&agent, 60003, 1);
    assert_eq!(c.served, 0);
    assert!(
        c.refused[0].contains("TOO_MANY_CONNECTIONS"),
        "{:?}",
        c.refused
    );
    // A member of ipc.admin_group (a supplementary group, read from the kernel) gets in.
    let member = cli_in_nogroup(&agent, 60004, &["agent", "status", "--format", "json"]);
    assert_eq!(
        member.status.code(),
        Some(0),
        "admin group member: {}",
        common::stderr(&member)
    );
    // Root stops the agent.
    let stop = agent.cli(&["agent", "stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", common::stderr(&stop));
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
    // The refusals were audited, naming the key.
    let audited = agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "connection_rejected")
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("ipc.admin_reserved_connections")
        })
        .count();
    assert!(audited >= 4, "{audited} refusals audited");
}

#[test]
fn the_reserve_must_leave_room_for_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.yaml");
    std::fs::write(&file, "ipc:\n  max_connections: 4\n").unwrap();
    let mut cmd = Command::new(common::CLI);
    common::clean_env(&mut cmd, dir.path());
    let out = cmd
        .args(["agent", "config", "--validate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", common::stdout(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("ipc.admin_reserved_connections") && err.contains("not below"),
        "{err}"
    );
}
