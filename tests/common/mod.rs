//! Test harness: starts the real `aether-vault-agent` binary on a socket in a temporary
//! directory, with its own policy, state and audit paths, and talks to it over the real socket
//! (raw JSON) or through the real `aether-vault` CLI.
#![allow(dead_code)]

pub mod bao;
pub mod credentials;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const AGENT: &str = env!("CARGO_BIN_EXE_aether-vault-agent");
pub const CLI: &str = env!("CARGO_BIN_EXE_aether-vault");

/// A running agent and its files.
pub struct Agent {
    pub child: Option<Child>,
    /// The arguments and extra environment it was started with, for [`Agent::restart`].
    launch: (Vec<std::ffi::OsString>, Vec<(String, String)>),
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub policy_dir: PathBuf,
    pub state_dir: PathBuf,
    pub audit_file: PathBuf,
    pub stderr_file: PathBuf,
    /// The systemd credentials socket, when [`AgentBuilder::credentials`] asked for one.
    pub credentials_socket: Option<PathBuf>,
}

/// How to start an agent.
pub struct AgentBuilder {
    mode: String,
    policies: Vec<(String, String)>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    config: Option<String>,
    socket: Option<PathBuf>,
    audit: Option<PathBuf>,
    state: Option<PathBuf>,
    /// `--credentials-socket`: `Some("")` (none, the default: a standard-mode agent run as root
    /// must not bind the system's /run/aether-vault/credentials.sock), a path, or `None` (the
    /// flag is not given: the configuration decides).
    credentials: Option<String>,
    /// The policy directory, relative to the test directory, when it is to be missing at start.
    missing_policy_dir: Option<String>,
}

impl AgentBuilder {
    /// Points `--policy-dir` at `relative` in the test directory, without creating it (nor
    /// its missing parents).
    pub fn missing_policy_dir(mut self, relative: &str) -> Self {
        self.missing_policy_dir = Some(relative.to_string());
        self
    }

    /// Serves a systemd credentials socket at `run/credentials.sock` in the test directory.
    pub fn credentials(mut self) -> Self {
        self.credentials = Some("run/credentials.sock".into());
        self
    }

    /// Leaves `credentials.socket_path` to the configuration (no `--credentials-socket`).
    pub fn credentials_from_config(mut self) -> Self {
        self.credentials = None;
        self
    }

    /// Uses this state directory instead of one in the test directory.
    pub fn state_dir(mut self, p: &Path) -> Self {
        self.state = Some(p.to_path_buf());
        self
    }

    /// Uses this audit log instead of one in the test directory.
    pub fn audit_file(mut self, p: &Path) -> Self {
        self.audit = Some(p.to_path_buf());
        self
    }

    /// Uses this socket path instead of one in the test directory.
    pub fn socket(mut self, p: &Path) -> Self {
        self.socket = Some(p.to_path_buf());
        self
    }
    pub fn mode(mut self, m: &str) -> Self {
        self.mode = m.to_string();
        self
    }
    pub fn policy(mut self, name: &str, content: &str) -> Self {
        self.policies.push((name.to_string(), content.to_string()));
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Some(yaml.to_string());
        self
    }

    /// Prepares the directory and the command without starting it.
    pub fn prepare(self) -> (Agent, Command) {
        let dir = tempfile::Builder::new()
            .prefix("av-test")
            .tempdir()
            .unwrap();
        // Other users (the `nobody` tests) must reach the socket: access is decided by identity.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| dir.path().join("run/agent.sock"));
        let policy_dir = match &self.missing_policy_dir {
            Some(relative) => dir.path().join(relative),
            None => {
                let p = dir.path().join("policies");
                std::fs::create_dir_all(&p).unwrap();
                p
            }
        };
        for (name, content) in &self.policies {
            std::fs::write(policy_dir.join(name), content).unwrap();
        }
        let state_dir = self
            .state
            .clone()
            .unwrap_or_else(|| dir.path().join("state"));
        let audit_file = self
            .audit
            .clone()
            .unwrap_or_else(|| dir.path().join("log/audit.log"));
        let stderr_file = dir.path().join("agent.stderr");
        let mut cmd = Command::new(AGENT);
        clean_env(&mut cmd, dir.path());
        cmd.arg("--mode")
            .arg(&self.mode)
            .arg("--socket-path")
            .arg(&socket)
            .arg("--policy-dir")
            .arg(&policy_dir)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--audit-file")
            .arg(&audit_file)
            .arg("--log-target")
            .arg("stderr")
            .args(&self.args);
        let credentials_socket = match self.credentials.as_deref() {
            Some("") => {
                cmd.arg("--credentials-socket").arg("");
                None
            }
            Some(relative) => {
                let path = dir.path().join(relative);
                cmd.arg("--credentials-socket").arg(&path);
                Some(path)
            }
            None => None,
        };
        if let Some(yaml) = &self.config {
            let path = dir.path().join("agent.yaml");
            std::fs::write(&path, yaml).unwrap();
            cmd.arg("--config").arg(path);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).unwrap());
        let launch = (
            cmd.get_args().map(|a| a.to_os_string()).collect(),
            self.env.clone(),
        );
        let agent = Agent {
            child: None,
            launch,
            dir,
            socket,
            policy_dir,
            state_dir,
            audit_file,
            stderr_file,
            credentials_socket,
        };
        (agent, cmd)
    }

    /// Starts the agent and waits until it answers a ping.
    pub fn start(self) -> Agent {
        let (mut agent, mut cmd) = self.prepare();
        agent.child = Some(cmd.spawn().expect("spawn agent"));
        agent.wait_ready();
        agent
    }
}

/// Removes what the caller's environment would tell the agent (VAULT_AGENT_* settings, systemd's
/// notify socket, sockets, watchdog and credentials) and points HOME into the test directory.
pub fn clean_env(cmd: &mut Command, dir: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("VAULT_AGENT_")
            || k == "RUST_LOG"
            || k == "NOTIFY_SOCKET"
            || k.starts_with("LISTEN_")
            || k.starts_with("WATCHDOG_")
            || k == "CREDENTIALS_DIRECTORY"
        {
            cmd.env_remove(k);
        }
    }
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", home);
}

impl Agent {
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            mode: "development".into(),
            policies: vec![],
            args: vec![],
            env: vec![],
            config: None,
            socket: None,
            audit: None,
            state: None,
            credentials: Some(String::new()),
            missing_policy_dir: None,
        }
    }

    /// An agent in development mode with no policies.
    pub fn dev() -> Agent {
        Agent::builder().start()
    }

    /// Starts the agent again with the same arguments, directories and files (after it stopped
    /// or was killed), and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the agent before restarting it");
        let mut cmd = Command::new(AGENT);
        clean_env(&mut cmd, self.dir.path());
        cmd.args(&self.launch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (k, v) in &self.launch.1 {
            cmd.env(k, v);
        }
        cmd.stderr(
            std::fs::File::options()
                .append(true)
                .open(&self.stderr_file)
                .unwrap(),
        );
        self.child = Some(cmd.spawn().unwrap());
        self.wait_ready();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("agent exited early with {status}:\n{}", self.stderr());
            }
            if let Ok(mut c) = RawClient::connect(&self.socket) {
                if c.stream.write_all(b"{\"type\":\"ping_request\"}\n").is_ok()
                    && c.read_quietly()
                        .is_some_and(|r| r["type"] == "ping_response")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> RawClient {
        RawClient::connect(&self.socket).expect("connect")
    }

    /// Runs the CLI against this agent (`--socket-path` added before any `--`).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(CLI);
        clean_env(&mut cmd, self.dir.path());
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        cmd.args(&args[..split])
            .arg("--socket-path")
            .arg(&self.socket)
            .args(&args[split..])
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// Runs the CLI as another user (root only). The CLI is copied into the test directory
    /// first, since the build directory need not be reachable by that user.
    pub fn cli_as(&self, uid: u32, args: &[&str]) -> Output {
        let copy = self.dir.path().join("aether-vault");
        if !copy.exists() {
            std::fs::copy(CLI, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(&copy)
            .args(args)
            .arg("--socket-path")
            .arg(&self.socket);
        clean_env(&mut cmd, self.dir.path());
        cmd.env("HOME", "/nonexistent").stdin(Stdio::null());
        // A process another test thread forks while the copy is still open for writing holds
        // that descriptor until it execs, and exec of the copy then fails (ETXTBSY): try again.
        for _ in 0..20 {
            let out = cmd.output().unwrap();
            if !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        cmd.output().unwrap()
    }

    /// Sends `requests` (envelopes, one line each) over one raw connection as another user
    /// (root only; a Python client under `setpriv`) and returns the responses in order. `wrap`
    /// runs the client in a command prefix (`unshare …`) when not empty.
    pub fn raw_as(&self, uid: u32, wrap: &[&str], requests: &[Value]) -> Vec<Value> {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .args(wrap)
            .args(["/usr/bin/python3", "-c", RAW_CLIENT])
            .arg(&self.socket);
        clean_env(&mut cmd, self.dir.path());
        let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
        let out = run_with_input(cmd, &input);
        assert!(
            out.status.success(),
            "raw client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// Sends a signal to the agent.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    }

    /// Waits for the agent to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10))
    }

    /// The audit log's records.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Grants a capability through the raw protocol and returns its id.
    pub fn grant(&self, resource: &str, actions: &[&str]) -> String {
        let r = self.client().call(
            "capability_request",
            json!({"identity":"test","resource":resource,"actions":actions}),
        );
        assert_eq!(r["payload"]["status"], "granted", "{r}");
        r["payload"]["capability"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw protocol client in Python, for other users: sends each line of stdin over one
/// connection to the socket `argv[1]` and prints each response line.
pub const RAW_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for line in sys.stdin.buffer:
    f.write(line)
    f.flush()
    sys.stdout.buffer.write(f.readline())
    sys.stdout.flush()
"#;

/// Runs `cmd` with `input` on its stdin; its output.
pub fn run_with_input(mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// An envelope of `kind` with `payload`, for [`Agent::raw_as`].
pub fn envelope(kind: &str, id: &str, payload: Value) -> Value {
    json!({"version":"1.0","type":kind,"id":id,"timestamp":"2026-01-01T00:00:00Z","payload":payload})
}

/// A raw protocol client.
pub struct RawClient {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
    n: u64,
}

impl RawClient {
    pub fn connect(path: &Path) -> std::io::Result<RawClient> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(RawClient {
            stream,
            reader,
            n: 0,
        })
    }

    /// A client on an already connected stream.
    pub fn from_stream(stream: UnixStream) -> RawClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        RawClient {
            stream,
            reader,
            n: 0,
        }
    }

    /// Sends an envelope with `kind` and `payload`; returns the whole response envelope.
    pub fn call(&mut self, kind: &str, payload: Value) -> Value {
        self.n += 1;
        let env = json!({"version":"1.0","type":kind,"id":format!("t{}", self.n),
                         "timestamp":"2026-01-01T00:00:00Z","payload":payload});
        self.send(format!("{env}\n").as_bytes());
        self.read().expect("a response")
    }

    /// Asks for `actions` on `resource` (with the request fields in `extra`), asserts it was
    /// granted, and answers the capability id.
    pub fn grant(&mut self, resource: &str, actions: &[&str], extra: Value) -> String {
        let mut req = json!({"resource": resource, "actions": actions});
        if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        let r = self.call("capability_request", req);
        assert_eq!(r["payload"]["status"], "granted", "{r}");
        r["payload"]["capability"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one response line; `None` at EOF or on any error.
    pub fn read_quietly(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).ok(),
            _ => None,
        }
    }

    /// Reads one response line; `None` at EOF.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert!(
                    line.ends_with('\n'),
                    "response must end in a newline: {line:?}"
                );
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}")),
                )
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Whether the agent closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0)) || self.stream.write_all(b" ").is_err()
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips a test that needs root, saying why.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("SKIPPED: this test runs a second client as `nobody` and needs root");
            return;
        }
    };
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

/// The rotation set of `log` (oldest first, `log` last), leaving out `skip`.
pub fn audit_set_without(log: &Path, skip: &Path) -> Vec<PathBuf> {
    aether_vault_agent::audit::chain::rotation_set(log)
        .into_iter()
        .filter(|p| p != skip)
        .collect()
}

/// A datagram socket standing in for systemd's notification socket (`NOTIFY_SOCKET`).
pub struct NotifySocket {
    pub path: PathBuf,
    sock: std::os::unix::net::UnixDatagram,
}

impl NotifySocket {
    /// Binds `dir/notify.sock`.
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        NotifySocket { path, sock }
    }

    /// The next notification, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        let mut buf = [0u8; 4096];
        self.sock.set_nonblocking(false).unwrap();
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Every notification already queued, without waiting.
    pub fn drain(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        self.sock.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.sock.set_nonblocking(false).unwrap();
        out
    }

    /// Every notification that arrives within `period`.
    pub fn collect_for(&self, period: Duration) -> Vec<String> {
        let end = Instant::now() + period;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            if let Some(m) = self.recv(left) {
                out.push(m);
            }
        }
        out
    }

    /// Notifications until one satisfies `want` (returned), or `None` after `timeout`.
    pub fn wait_for(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(m) if want(&m) => return Some(m),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}

/// The `STATUS=` value of a notification, if it has one.
pub fn status_of(notification: &str) -> Option<&str> {
    notification.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// How many `WATCHDOG=1` lines are among `notifications`.
pub fn watchdogs(notifications: &[String]) -> usize {
    notifications
        .iter()
        .flat_map(|n| n.lines())
        .filter(|l| *l == "WATCHDOG=1")
        .count()
}

/// Runs `program` through `sh -c … exec`, so that each of `own_pid_vars` (`LISTEN_PID`,
/// `WATCHDOG_PID`) is set to the pid the program will have, as systemd sets them.
pub fn with_own_pid(own_pid_vars: &[&str], program: &str) -> Command {
    let assignments: String = own_pid_vars.iter().map(|v| format!("{v}=$$ ")).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{assignments}exec \"$0\" \"$@\""))
        .arg(program);
    cmd
}

/// Makes `fd` the child's fd 3 (the first socket-activation descriptor). The caller keeps its
/// own copy open, as systemd does for the socket unit.
pub fn pass_as_fd3(cmd: &mut Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec; `fd` is open in
    // the parent until after spawn.
    unsafe {
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
}

/// A command that starts the agent the way systemd does for a socket unit: `listener` as fd 3,
/// `LISTEN_PID` naming the agent, `LISTEN_FDS=1`, `LISTEN_FDNAMES=agent`, its state, policies
/// and audit log under `dir`, stderr appended to `dir/agent.stderr`, and `extra_own_pid_vars`
/// also set to the agent's pid.
pub fn activated_agent(
    dir: &Path,
    listener: &std::os::unix::net::UnixListener,
    extra_own_pid_vars: &[&str],
) -> Command {
    use std::os::fd::AsRawFd;
    let mut vars = vec!["LISTEN_PID"];
    vars.extend_from_slice(extra_own_pid_vars);
    let mut cmd = with_own_pid(&vars, AGENT);
    clean_env(&mut cmd, dir);
    cmd.args(["--mode", "development", "--log-target", "stderr"])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--policy-dir")
        .arg(dir.join("policies"))
        .arg("--audit-file")
        .arg(dir.join("audit.log"))
        .arg("--socket-path")
        .arg(dir.join("unused.sock"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "agent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(dir.join("agent.stderr"))
                .unwrap(),
        );
    pass_as_fd3(&mut cmd, listener.as_raw_fd());
    cmd
}

/// The state letter of a process or thread in `/proc/PID/stat` (`R`, `S`, `T` stopped, `t`
/// traced), if it exists.
pub fn proc_state(stat_path: &Path) -> Option<char> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name is in parentheses and may contain anything; the state follows it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}
