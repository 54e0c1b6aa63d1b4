//! The agent process's life: binding and cleaning up its socket, socket activation, sd_notify,
//! signals, reloads, connection limits, idle timeouts and configuration errors.

mod common;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{AGENT, Agent, RawClient};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

#[test]
fn sigterm_exits_zero_removes_the_socket_and_records_the_stop() {
    let mut agent = Agent::dev();
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o666,
        "socket mode defaults to 0666"
    );
    let parent = std::fs::metadata(agent.socket.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o777, 0o755);
    assert!(agent.stop().success());
    assert!(!agent.socket.exists());
    assert_eq!(agent.audit().last().unwrap()["type"], "agent_stop");
}

#[test]
fn sigint_also_stops_cleanly() {
    let mut agent = Agent::dev();
    agent.signal(Signal::SIGINT);
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
    assert!(!agent.socket.exists());
}

#[test]
fn an_in_flight_connection_is_answered_before_shutdown_completes() {
    let mut agent = Agent::dev();
    let mut c = agent.client();
    // Half a request is in the agent's buffer when the signal arrives; the agent closes the idle
    // session without waiting for the rest, and exits within the drain timeout.
    c.send(b"{\"type\":\"ping_request\",");
    let t = std::time::Instant::now();
    assert!(agent.stop().success());
    assert!(t.elapsed() < Duration::from_secs(6));
    assert!(c.closed());
}

#[test]
fn socket_mode_is_configurable() {
    let agent = Agent::builder()
        .config("ipc:\n  socket_mode: \"0600\"\n")
        .start();
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let (mut agent, mut cmd) = Agent::builder().prepare();
    std::fs::create_dir_all(agent.socket.parent().unwrap()).unwrap();
    drop(UnixListener::bind(&agent.socket).unwrap()); // leaves a socket file nobody answers on
    assert!(agent.socket.exists());
    agent.child = Some(cmd.spawn().unwrap());
    agent.wait_ready();
}

#[test]
fn a_live_agent_is_never_displaced_and_a_regular_file_is_never_replaced() {
    let agent = Agent::dev();
    let (_second, mut cmd) = Agent::builder().socket(&agent.socket).prepare();
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already listening"), "{err}");
    assert_eq!(
        agent.client().call("ping_request", Value::Null)["type"],
        "ping_response"
    );

    let (other, mut cmd) = Agent::builder().prepare();
    std::fs::create_dir_all(other.socket.parent().unwrap()).unwrap();
    std::fs::write(&other.socket, "precious").unwrap();
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&other.socket).unwrap(), "precious");
}

/// Starts the agent the way systemd does: the listening socket as fd 3, LISTEN_PID set to the
/// agent's own pid (the shell execs into it), LISTEN_FDS=1, LISTEN_FDNAMES=agent.
#[test]
fn socket_activation_serves_the_inherited_socket_and_never_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let fd = listener.into_raw_fd();
    let mut cmd = Command::new("sh");
    common::clean_env(&mut cmd, dir.path());
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(AGENT)
        .args(["--mode", "development", "--log-target", "stderr"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--policy-dir")
        .arg(dir.path().join("policies"))
        .arg("--audit-file")
        .arg(dir.path().join("audit.log"))
        .arg("--socket-path")
        .arg(dir.path().join("unused.sock"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "agent")
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
    // SAFETY: dup2 is async-signal-safe; fd stays valid in the parent until after spawn.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // dup2 onto itself would keep FD_CLOEXEC, so clear the flag in that case.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // SAFETY: we own fd; close our copy so only the agent holds the socket.
    unsafe { libc::close(fd) };
    let mut ok = false;
    for _ in 0..500 {
        if let Ok(mut c) = RawClient::connect(&path) {
            let s = c.call("agent_status", Value::Null);
            assert_eq!(s["payload"]["detail"]["socket_activated"], true, "{s}");
            assert_eq!(s["payload"]["socket_path"], path.display().to_string());
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ok,
        "{}",
        std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
    );
    assert!(
        !dir.path().join("unused.sock").exists(),
        "an activated agent binds nothing itself"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        path.exists(),
        "the socket unit owns the socket file; the agent must not remove it"
    );
}

#[test]
fn notifies_ready_status_reloading_and_stopping() {
    let (mut agent, mut cmd) = Agent::builder().prepare();
    let notify_path = agent.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    cmd.env("NOTIFY_SOCKET", &notify_path);
    agent.child = Some(cmd.spawn().unwrap());
    let mut buf = [0u8; 4096];
    let recv = |buf: &mut [u8]| {
        let n = notify.recv(buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv(&mut buf);
    assert!(
        first.contains("READY=1") && first.contains("STATUS="),
        "{first}"
    );
    agent.wait_ready();
    agent.signal(Signal::SIGHUP);
    let reloading = recv(&mut buf);
    assert!(
        reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading}"
    );
    let ready = recv(&mut buf);
    assert!(ready.contains("READY=1"), "{ready}");
    agent.signal(Signal::SIGTERM);
    let stopping = recv(&mut buf);
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    assert!(agent.wait_exit(Duration::from_secs(10)).success());
    let _ = notify.as_raw_fd();
}

#[test]
fn sighup_and_agent_reload_swap_policies_and_a_bad_set_changes_nothing() {
    let me = nix::unistd::geteuid().as_raw();
    let agent = Agent::builder().mode("standard").start();
    let mut c = agent.client();
    let ask = |c: &mut RawClient| {
        c.call(
            "capability_request",
            json!({"resource":"secret:/a","actions":["read"]}),
        )["payload"]["status"]
            .clone()
    };
    assert_eq!(ask(&mut c), "denied");
    let good = json!({"id":"p","rules":[{"id":"r","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":[format!("uid:{me}")]}]});
    std::fs::write(agent.policy_dir.join("p.json"), good.to_string()).unwrap();
    agent.signal(Signal::SIGHUP);
    let mut generation = Value::Null;
    for _ in 0..200 {
        generation = c.call("status_request", Value::Null)["payload"]["policy_generation"].clone();
        if generation == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(generation, 2);
    assert_eq!(ask(&mut c), "granted");

    std::fs::write(agent.policy_dir.join("q.json"), "{\"id\":\"q\",\n\"rules\":[{\"id\":\"x\",\"effect\":\"allow\",\"resources\":[\"*\"],\"actions\":[\"*\"],\"identities\":[\"everyone\"]}]}").unwrap();
    let r = c.call("agent_reload", Value::Null);
    assert_eq!(r["payload"]["status"], "failed");
    assert_eq!(r["payload"]["generation"], 2);
    let err = r["payload"]["error"].as_str().unwrap();
    assert!(err.contains("q.json") && err.contains("everyone"), "{err}");
    assert_eq!(ask(&mut c), "granted", "the last good set stays in force");
    let s = c.call("status_request", Value::Null);
    assert!(
        s["payload"]["policy_last_error"]
            .as_str()
            .unwrap()
            .contains("q.json")
    );
    std::fs::remove_file(agent.policy_dir.join("q.json")).unwrap();
    let r = c.call("agent_reload", Value::Null);
    assert_eq!(r["payload"]["status"], "reloaded");
    assert_eq!(r["payload"]["generation"], 3);
    // Reloads are audited without holding up the reload (and inotify may add reloads of its
    // own): wait for a failure that names q.json followed by a success.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reloads: Vec<Value> = agent
            .audit()
            .into_iter()
            .filter(|r| r["type"] == "policy_reload")
            .collect();
        let failed_at = reloads.iter().position(|r| {
            r["outcome"] == "failure" && r["reason"].as_str().unwrap_or_default().contains("q.json")
        });
        if failed_at.is_some_and(|i| reloads[i..].iter().any(|r| r["outcome"] == "success")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reloads not audited as expected: {reloads:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_over_the_limit_get_an_error_and_others_are_served() {
    let agent = Agent::builder()
        .config("ipc:\n  max_connections: 2\n")
        .start();
    let mut a = agent.client();
    let mut b = agent.client();
    assert_eq!(a.call("ping_request", Value::Null)["type"], "ping_response");
    assert_eq!(b.call("ping_request", Value::Null)["type"], "ping_response");
    let mut over = agent.client();
    let r = over.read().expect("an error before the close");
    assert_eq!(r["payload"]["code"], "TOO_MANY_CONNECTIONS");
    assert!(over.closed());
    assert_eq!(a.call("ping_request", Value::Null)["type"], "ping_response");
    drop(b);
    let mut ok = false;
    for _ in 0..100 {
        let mut c = agent.client();
        c.send(b"{\"type\":\"ping_request\"}\n");
        if c.read().is_some_and(|r| r["type"] == "ping_response") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "a freed slot is usable again");
    // The rejection is recorded without holding anyone up; give the writer a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !agent
        .audit()
        .iter()
        .any(|r| r["type"] == "connection_rejected")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the rejection was not audited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn idle_connections_are_told_and_closed() {
    let agent = Agent::builder().config("ipc:\n  conn_timeout: 1\n").start();
    let mut c = agent.client();
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
    let r = c.read().expect("an idle notice");
    assert_eq!(r["payload"]["code"], "IDLE_TIMEOUT");
    assert!(c.closed());
}

#[test]
fn configuration_errors_name_the_key_and_the_file_and_exit_1() {
    let (agent, mut cmd) = Agent::builder()
        .config("ipc:\n  max_conections: 5\n")
        .prepare();
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(
        err.contains("max_conections") && err.contains("agent.yaml"),
        "{err}"
    );
    assert!(!agent.socket.exists());

    let (_a, mut cmd) = Agent::builder()
        .env("VAULT_AGENT_IPC__MAX_CONNECTIONS", "lots")
        .prepare();
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("max_connections") && err.contains("VAULT_AGENT_"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let agent = Agent::builder()
        .config("ipc:\n  max_connections: 11\ncapability_engine:\n  default_ttl: 100\n")
        .env("VAULT_AGENT_IPC__MAX_CONNECTIONS", "12")
        .start();
    let s = agent.client().call("agent_status", Value::Null);
    assert_eq!(s["payload"]["max_connections"], 12);
    assert_eq!(s["payload"]["detail"]["default_ttl"], 100);
    // --socket-path (a flag) beat nothing here; check the policy dir flag beat the env var.
    let agent = Agent::builder()
        .env("VAULT_AGENT_POLICY_DIR", "/nonexistent/env-dir")
        .start();
    let s = agent.client().call("agent_status", Value::Null);
    assert_eq!(
        s["payload"]["detail"]["policy_directory"],
        agent.policy_dir.display().to_string()
    );
}
