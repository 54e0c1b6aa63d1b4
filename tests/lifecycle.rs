//! The agent process's life: binding and cleaning up its socket, socket activation, sd_notify
//! (with the watchdog and the status line), idle exit, signals, reloads, connection limits,
//! idle timeouts and configuration errors.

mod common;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{AGENT, Agent, NotifySocket, RawClient, status_of, watchdogs};
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
    common::pass_as_fd3(&mut cmd, fd);
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
    // Status updates (STATUS= alone) may come between the state changes; skip them.
    let recv = |buf: &mut [u8]| loop {
        let n = notify.recv(buf).expect("a notification");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.lines().any(|l| !l.starts_with("STATUS=")) {
            return m;
        }
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
    // agent_reload (the packaged unit's ExecReload=) tells systemd the same, and answers only
    // after READY=1 went out, so `systemctl reload` waits for the reload.
    let r = agent.client().call("agent_reload", Value::Null);
    assert_eq!(r["payload"]["status"], "reloaded", "{r}");
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
        .config("ipc:\n  max_connections: 2\n  admin_reserved_connections: 0\n")
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
    // Activity keeps it open well past one period: the timer measures from the last request.
    let start = std::time::Instant::now();
    let mut last_sent = start;
    while start.elapsed() < Duration::from_millis(2500) {
        last_sent = std::time::Instant::now();
        assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
        std::thread::sleep(Duration::from_millis(400));
    }
    let r = c.read().expect("an idle notice");
    assert_eq!(r["payload"]["code"], "IDLE_TIMEOUT");
    assert!(
        last_sent.elapsed() >= Duration::from_secs(1),
        "closed only once idle for the whole period ({:?} after the last request)",
        last_sent.elapsed()
    );
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

/// Starts the prepared agent through `sh -c 'WATCHDOG_PID=$$ exec …'` when `own_pid` says so
/// (systemd sets WATCHDOG_PID to the main process), with `NOTIFY_SOCKET` and `env` set.
fn spawn_notifying(
    agent: &mut Agent,
    cmd: &Command,
    notify: &NotifySocket,
    env: &[(&str, String)],
    own_watchdog_pid: bool,
) {
    let vars: &[&str] = if own_watchdog_pid {
        &["WATCHDOG_PID"]
    } else {
        &[]
    };
    let mut sh = common::with_own_pid(vars, AGENT);
    common::clean_env(&mut sh, agent.dir.path());
    sh.args(cmd.get_args())
        .env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&agent.stderr_file).unwrap());
    for (k, v) in env {
        sh.env(k, v);
    }
    agent.child = Some(sh.spawn().unwrap());
    agent.wait_ready();
}

fn is_watchdog(m: &str) -> bool {
    m.lines().any(|l| l == "WATCHDOG=1")
}

/// Waits until the process (or thread) at `/proc/…/stat` is in one of `states`.
fn wait_state(stat: &std::path::Path, states: &[char]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::proc_state(stat).is_some_and(|s| states.contains(&s)) {
        assert!(
            Instant::now() < deadline,
            "{} never reached {states:?}",
            stat.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_watchdog_is_fed_every_half_period_and_never_while_the_agent_is_stopped() {
    let (mut agent, cmd) = Agent::builder().prepare();
    let notify = NotifySocket::bind(agent.dir.path());
    let usec = ("WATCHDOG_USEC", "200000".to_string());
    spawn_notifying(&mut agent, &cmd, &notify, &[usec], true);
    let pid = agent.child.as_ref().unwrap().id();

    let running = notify.collect_for(Duration::from_millis(1500));
    // Every 100 ms: about 15; a loaded machine may delay some, never all.
    assert!(watchdogs(&running) >= 3, "{running:?}");

    agent.signal(Signal::SIGSTOP);
    let stat = std::path::PathBuf::from(format!("/proc/{pid}/stat"));
    wait_state(&stat, &['T']);
    notify.drain();
    let stopped = notify.collect_for(Duration::from_millis(600));
    assert_eq!(watchdogs(&stopped), 0, "a stopped agent sent {stopped:?}");

    agent.signal(Signal::SIGCONT);
    assert!(
        notify
            .wait_for(Duration::from_secs(10), is_watchdog)
            .is_some(),
        "no WATCHDOG=1 after SIGCONT:\n{}",
        agent.stderr()
    );
    let resumed = notify.collect_for(Duration::from_millis(1000));
    assert!(watchdogs(&resumed) >= 2, "{resumed:?}");
    assert!(agent.stop().success());
}

#[test]
fn the_watchdog_follows_watchdog_usec_and_watchdog_pid() {
    let me = std::process::id().to_string();
    // (WATCHDOG_USEC, WATCHDOG_PID: none, the agent's own, or another process's), expected.
    let cases: [(Option<&str>, Option<&str>, bool); 3] = [
        (None, None, false),
        (Some("200000"), Some(&me), false),
        (Some("200000"), None, true),
    ];
    for (usec, pid, fed) in cases {
        let (mut agent, cmd) = Agent::builder().prepare();
        let notify = NotifySocket::bind(agent.dir.path());
        let mut env = vec![];
        if let Some(u) = usec {
            env.push(("WATCHDOG_USEC", u.to_string()));
        }
        if let Some(p) = pid {
            env.push(("WATCHDOG_PID", p.to_string()));
        }
        spawn_notifying(&mut agent, &cmd, &notify, &env, false);
        let got = notify.collect_for(Duration::from_millis(1200));
        assert!(got.iter().any(|m| m.contains("READY=1")), "{got:?}");
        let n = watchdogs(&got);
        assert_eq!(
            n > 0,
            fed,
            "WATCHDOG_USEC={usec:?} WATCHDOG_PID={pid:?}: {n} WATCHDOG=1 in {got:?}"
        );
        assert!(agent.stop().success());
    }
}

/// The id of the agent's thread named `name` (`/proc/PID/task/TID/comm`).
fn thread_id(pid: u32, name: &str) -> i32 {
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let entry = entry.unwrap();
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return entry.file_name().to_string_lossy().parse().unwrap();
        }
    }
    panic!("the agent has no thread named {name}");
}

/// One thread of the agent held in a ptrace stop. Dropping it lets the thread go, even when the
/// test fails: a process with a traced, stopped thread could not be reaped otherwise.
struct FrozenThread {
    pid: u32,
    tid: i32,
    attached: bool,
}

impl FrozenThread {
    /// Stops thread `tid` of `pid`; `None` (saying why) where ptrace is not permitted.
    fn freeze(pid: u32, tid: i32) -> Option<FrozenThread> {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: plain ptrace requests on a thread of our own child; no memory is passed.
        if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) } != 0 {
            eprintln!(
                "SKIPPED: ptrace is not permitted here ({})",
                std::io::Error::last_os_error()
            );
            return None;
        }
        let frozen = FrozenThread {
            pid,
            tid,
            attached: true,
        };
        // SAFETY: as above; waitpid only writes the status into our own variable.
        unsafe {
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null), 0);
            let mut st = 0;
            assert_eq!(libc::waitpid(tid, &mut st, libc::__WALL), tid);
        }
        Some(frozen)
    }

    /// Lets the thread run on.
    fn thaw(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if !std::mem::replace(&mut self.attached, false) {
            return;
        }
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: as in `freeze`.
        if unsafe { libc::ptrace(libc::PTRACE_DETACH, self.tid, null, null) } == 0 {
            return;
        }
        // Not in a stop we can detach from: kill the agent and reap the traced thread, so that
        // the process can be reaped.
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        let mut st = 0;
        // SAFETY: as above.
        unsafe { libc::waitpid(self.tid, &mut st, libc::__WALL) };
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        self.release();
    }
}

/// Freezes only the audit log's writer thread (ptrace stops one thread; SIGSTOP would stop the
/// whole process): the agent still answers on its socket, but the AuditWriter's health ping
/// cannot complete, so no WATCHDOG=1 goes out and the status says what is wedged.
#[test]
fn a_wedged_audit_writer_thread_starves_the_watchdog_while_the_socket_still_answers() {
    let (mut agent, cmd) = Agent::builder().prepare();
    let notify = NotifySocket::bind(agent.dir.path());
    let usec = ("WATCHDOG_USEC", "200000".to_string());
    spawn_notifying(&mut agent, &cmd, &notify, &[usec], true);
    assert!(
        notify
            .wait_for(Duration::from_secs(10), is_watchdog)
            .is_some()
    );
    let pid = agent.child.as_ref().unwrap().id();
    let Some(frozen) = FrozenThread::freeze(pid, thread_id(pid, "audit-writer")) else {
        return;
    };
    // A round in flight when the thread stopped may still have been answered.
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = notify.drain();
    let wedged = notify.collect_for(Duration::from_millis(700));
    assert_eq!(watchdogs(&wedged), 0, "fed while wedged: {wedged:?}");
    seen.extend(wedged);
    assert_eq!(
        agent.client().call("ping_request", Value::Null)["type"],
        "ping_response",
        "only the writer thread is stopped"
    );
    let unhealthy = |m: &str| status_of(m).is_some_and(|s| s.starts_with("UNHEALTHY: AuditWriter"));
    if !seen.iter().any(|m| unhealthy(m)) {
        assert!(
            notify
                .wait_for(Duration::from_secs(10), unhealthy)
                .is_some(),
            "the status never named the wedged actor: {seen:?}"
        );
    }

    frozen.thaw();
    assert!(
        notify
            .wait_for(Duration::from_secs(10), is_watchdog)
            .is_some(),
        "no WATCHDOG=1 after the thread resumed"
    );
    assert!(
        notify
            .wait_for(Duration::from_secs(10), |m| status_of(m)
                .is_some_and(|s| !s.contains("UNHEALTHY")))
            .is_some()
    );
    assert!(agent.stop().success());
    let log = agent.stderr();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("health ping failed"))
        .collect();
    assert_eq!(warned.len(), 1, "one warning per failure: {warned:?}");
    assert!(warned[0].contains("AuditWriter"), "{}", warned[0]);
    assert!(log.contains("health ping answered again"), "{log}");
}

#[test]
fn status_tells_connections_capabilities_generation_and_the_last_error() {
    let (mut agent, mut cmd) = Agent::builder().prepare();
    let notify = NotifySocket::bind(agent.dir.path());
    cmd.env("NOTIFY_SOCKET", &notify.path);
    agent.child = Some(cmd.spawn().unwrap());
    let ready = notify
        .wait_for(Duration::from_secs(20), |m| m.contains("READY=1"))
        .expect("READY=1");
    let first = status_of(&ready).unwrap().to_string();
    assert_eq!(
        first,
        format!(
            "serving {}; 0 connections; 0 active capabilities; policy generation 1; last error: none",
            agent.socket.display()
        )
    );
    agent.wait_ready();
    let status_with = |parts: &[&str]| {
        notify
            .wait_for(Duration::from_secs(10), |m| {
                status_of(m).is_some_and(|s| parts.iter().all(|p| s.contains(p)))
            })
            .unwrap_or_else(|| panic!("no STATUS= with {parts:?}:\n{}", agent.stderr()))
    };

    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/db","actions":["read"]}),
    );
    assert_eq!(r["payload"]["status"], "granted", "{r}");
    status_with(&["; 1 connection; 1 active capability; policy generation 1;"]);
    drop(c);
    status_with(&["; 0 connections; 1 active capability;"]);

    // A policy set that fails to load (on the directory change, on SIGHUP, whichever comes
    // first) is the last error until a good one loads.
    std::fs::write(agent.policy_dir.join("bad.json"), "{not json").unwrap();
    agent.signal(Signal::SIGHUP);
    let failed = status_with(&["last error: policy: ", "bad.json"]);
    assert!(!failed.contains('\r'), "{failed:?}");
    assert_eq!(
        failed.lines().filter(|l| l.starts_with("STATUS=")).count(),
        1
    );
    std::fs::remove_file(agent.policy_dir.join("bad.json")).unwrap();
    agent.signal(Signal::SIGHUP);
    let fixed = status_with(&["last error: none"]);
    let generation: u64 = status_of(&fixed)
        .and_then(|s| s.split("policy generation ").nth(1))
        .and_then(|s| s.split(';').next())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("{fixed}"));
    assert!(generation >= 2, "{fixed}");
    assert!(agent.stop().success());
}

#[test]
fn an_idle_socket_activated_agent_exits_and_the_next_one_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activated.sock");
    // The test holds the listening socket for the whole test, as the socket unit does.
    let listener = UnixListener::bind(&path).unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(&config, "idle_exit_seconds: 1\n").unwrap();
    let stderr = || std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default();
    let mut first = common::activated_agent(dir.path(), &listener, &[])
        .arg("--config")
        .arg(&config)
        .spawn()
        .unwrap();

    // A connection made before the agent accepts waits in the socket's queue.
    let mut c = RawClient::connect(&path).unwrap();
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/db","actions":["read"],"maxUses":5}),
    );
    assert_eq!(r["payload"]["status"], "granted", "{r}\n{}", stderr());
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = c.call("capability_validate", json!({"capability_id": id}));
    assert_eq!(v["payload"]["valid"], true, "{v}");

    // Twice the idle time with a client connected: the agent stays.
    std::thread::sleep(Duration::from_millis(2200));
    assert!(
        first.try_wait().unwrap().is_none(),
        "exited with a client connected:\n{}",
        stderr()
    );
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
    drop(c);
    let left = Instant::now();
    let status = loop {
        if let Some(s) = first.try_wait().unwrap() {
            break s;
        }
        assert!(
            left.elapsed() < Duration::from_secs(10),
            "no idle exit:\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let idle = left.elapsed();
    assert!(status.success(), "{status}\n{}", stderr());
    assert!(
        idle >= Duration::from_millis(500),
        "exited after only {idle:?}"
    );
    assert!(path.exists(), "the activated socket file must stay");
    let audit: Vec<Value> = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = audit.last().unwrap();
    assert_eq!(last["type"], "agent_stop", "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("after 1 s idle"),
        "{last}"
    );
    assert_eq!(
        stderr()
            .matches("no client connected for idle_exit_seconds")
            .count(),
        1
    );

    // No agent is running; a client connects anyway (the socket unit would start one now) and
    // is answered by the next agent, which has the capability and its use count.
    let mut d = RawClient::connect(&path).unwrap();
    d.send(
        format!(
            "{}\n",
            json!({"version":"1.0","type":"capability_validate","id":"v","timestamp":"2026-01-01T00:00:00Z","payload":{"capability_id": id}})
        )
        .as_bytes(),
    );
    let mut second = common::activated_agent(dir.path(), &listener, &[])
        .spawn()
        .unwrap();
    let v = d.read().expect("an answer from the next agent");
    assert_eq!(v["payload"]["valid"], true, "{v}\n{}", stderr());
    let l = d.call("capability_list", json!({}));
    assert_eq!(l["payload"]["capabilities"][0]["usedCount"], 2, "{l}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    drop(d);
    assert!(second.wait().unwrap().success());
    assert!(path.exists());
}

#[test]
fn idle_exit_is_ignored_when_the_agent_binds_its_own_socket() {
    let mut agent = Agent::builder()
        .env("VAULT_AGENT_IDLE_EXIT_SECONDS", "1")
        .start();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        agent.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "exited:\n{}",
        agent.stderr()
    );
    assert_eq!(
        agent.client().call("ping_request", Value::Null)["type"],
        "ping_response"
    );
    assert_eq!(
        agent
            .stderr()
            .matches("idle_exit_seconds is ignored")
            .count(),
        1,
        "{}",
        agent.stderr()
    );
    assert!(agent.stop().success());
}

/// Clients arrive around the moment the agent decides it has been idle long enough. Each must
/// be answered: by the agent, or, when it has exited meanwhile, by the next one, started the
/// way systemd does when a connection waits on the socket. A connection the exiting agent
/// accepted and then dropped would fail this.
#[test]
fn connections_racing_the_idle_exit_are_all_answered() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(&config, "idle_exit_seconds: 1\n").unwrap();
    let stderr = || std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default();
    let spawn = || {
        common::activated_agent(dir.path(), &listener, &[])
            .arg("--config")
            .arg(&config)
            .spawn()
            .unwrap()
    };
    let mut agent = spawn();
    let mut restarts = 0;
    for gap in [0, 950, 1050, 1150, 1250] {
        std::thread::sleep(Duration::from_millis(gap));
        let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        (&stream)
            .write_all(b"{\"type\":\"ping_request\"}\n")
            .unwrap();
        let mut reader = BufReader::new(&stream);
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match reader.read_line(&mut line) {
                Ok(0) => panic!(
                    "connection closed without an answer (gap {gap} ms):\n{}",
                    stderr()
                ),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(status) = agent.try_wait().unwrap() {
                        assert!(status.success(), "{status}:\n{}", stderr());
                        agent = spawn();
                        restarts += 1;
                    }
                    assert!(Instant::now() < deadline, "no answer:\n{}", stderr());
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
        let r: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(r["type"], "ping_response", "{r}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
    assert!(restarts >= 1, "the agent never exited for idleness");
    let idle_stops = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"agent_stop\"") && l.contains("s idle"))
        .count();
    assert!(
        idle_stops >= restarts,
        "{idle_stops} idle stops, {restarts} restarts"
    );
}
