//! The agent under test: its temporary files and configuration ([`Env`]), its process
//! ([`Agent`]), and a blocking client for setup and admin requests ([`SyncClient`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::common::{self, CLI};
use crate::opts::Opts;
use crate::{RESOURCE, SECRET_VALUE};

/// The temporary directory the agent runs in.
pub struct Env {
    pub root: tempfile::TempDir,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub policy_dir: PathBuf,
    pub state_dir: PathBuf,
    pub audit_file: PathBuf,
    pub stderr_file: PathBuf,
    pub agent: PathBuf,
    /// The agent's effective `audit.sync` (`always` or `periodic`), as the CLI reads the
    /// configuration.
    pub sync: String,
}

/// The agent's configuration: standard mode, as installed, except that the limits which would
/// throttle one uid making thousands of connections and requests a second (the benchmark) are
/// off, capabilities are unlimited in uses (so that one can be validated for ever), and up to
/// 20,000 connections are allowed. `conn_timeout`, the request deadline, the send queue and the
/// write timeout keep their defaults; `audit.sync` is `audit_sync`, or the mode's default when
/// `None` (the key left out). No credentials socket: the agents run side by side, and the system
/// path is not theirs.
pub fn config_yaml(root: &Path, audit_sync: Option<&str>) -> String {
    let sync = audit_sync.map_or(String::new(), |s| format!("  sync: {s}\n"));
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
{sync}ipc:
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
    pub fn new(opts: &Opts) -> Result<Env> {
        Env::with(opts, opts.audit_sync.as_deref(), "")
    }

    /// An environment whose configuration ends with `secrets` (YAML: a `secrets:` section).
    pub fn with_secrets(opts: &Opts, secrets: &str) -> Result<Env> {
        Env::with(opts, opts.audit_sync.as_deref(), secrets)
    }

    /// An environment with `audit.sync` set to `sync` (`None`: the mode's default) and a
    /// configuration ending with `secrets`.
    pub fn with(opts: &Opts, sync: Option<&str>, secrets: &str) -> Result<Env> {
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
        std::fs::write(&config, config_yaml(&r, sync) + secrets)?;
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
        // The effective `audit.sync`, which the rows say they ran with.
        let shown = Command::new(CLI)
            .args(["agent", "config", "--format", "json", "--config"])
            .arg(&config)
            .env("HOME", &r)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {CLI}"))?;
        let effective: Value = serde_json::from_slice(&shown.stdout).with_context(|| {
            format!(
                "`aether-vault agent config --format json`: {}",
                String::from_utf8_lossy(&shown.stderr).trim()
            )
        })?;
        let sync = effective["audit"]["sync"]
            .as_str()
            .ok_or_else(|| anyhow!("no audit.sync in the effective configuration"))?
            .to_string();
        Ok(Env {
            sync,
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

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Bytes in the audit log and its rotated files.
    pub fn audit_bytes(&self) -> u64 {
        let dir = self.audit_file.parent().unwrap_or(self.path());
        files_bytes(dir, |name| name.starts_with("audit.log"))
    }

    /// Bytes in every file the agent writes to disk: the audit log (and its rotated files and
    /// seals) and the state directory (the capability store, keys, the file backend's secrets).
    pub fn disk_bytes(&self) -> u64 {
        let log = self.audit_file.parent().unwrap_or(self.path());
        files_bytes(log, |_| true) + files_bytes(&self.state_dir, |_| true)
    }

    /// Stores [`SECRET_VALUE`] at [`RESOURCE`] through the running agent (a write capability,
    /// then `secret_write`).
    pub fn store_secret(&self) -> Result<()> {
        let mut admin = SyncClient::connect(&self.socket)?;
        let write_cap = admin.grant(RESOURCE, &["write"])?;
        let w = admin.call(
            "secret_write",
            json!({"capability_id": write_cap, "data": {"username": "bench", "password": SECRET_VALUE}}),
        )?;
        if w["type"] != "secret_response" {
            bail!("secret_write failed: {w}");
        }
        Ok(())
    }

    /// The agent's command line, environment cleaned as the tests do.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
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

    pub fn agent_command(&self) -> Result<Command> {
        let mut cmd = self.command(&self.agent)?;
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--log-target", "stderr"]);
        Ok(cmd)
    }

    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Replaces the policy directory's files with a set of `rules` rules (at least 2): an allow
    /// rule for our uid on `secret:/bench/*`, a deny rule on `secret:/denied/*`, and filler rules
    /// for other uids and resources, 1 % of them starting with a wildcard (candidates for every
    /// resource), 500 rules per file. `variant` changes one filler value, to make a reload real.
    pub fn write_policies(&self, rules: usize, variant: u64) -> Result<()> {
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
pub struct Agent {
    pub child: Option<Child>,
    pub pid: u32,
}

impl Agent {
    pub fn start(env: &Env) -> Result<Agent> {
        let child = env.agent_command()?.spawn().context("start the agent")?;
        let mut agent = Agent {
            pid: child.id(),
            child: Some(child),
        };
        agent.wait_answering(env, &env.socket)?;
        Ok(agent)
    }

    pub fn wait_answering(&mut self, env: &Env, socket: &Path) -> Result<()> {
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

    pub fn rss_mb(&self) -> Result<f64> {
        rss_mb(self.pid)
    }

    /// SIGTERM, then wait (at most 20 s).
    pub fn stop(mut self) -> Result<ExitStatus> {
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

/// The sizes of the regular files in `dir` and its subdirectories whose names `wanted` accepts
/// (0 for what cannot be read).
pub fn files_bytes(dir: &Path, wanted: impl Fn(&str) -> bool + Copy) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files_bytes(&e.path(), wanted),
            Ok(t) if t.is_file() && wanted(&e.file_name().to_string_lossy()) => {
                e.metadata().map_or(0, |m| m.len())
            }
            _ => 0,
        })
        .sum()
}

pub fn rss_mb(pid: u32) -> Result<f64> {
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
pub struct SyncClient {
    pub stream: StdStream,
    pub reader: BufReader<StdStream>,
}

impl SyncClient {
    pub fn connect(path: &Path) -> Result<SyncClient> {
        let stream =
            StdStream::connect(path).with_context(|| format!("connect {}", path.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(SyncClient { stream, reader })
    }

    pub fn call(&mut self, kind: &str, payload: Value) -> Result<Value> {
        let line = json!({"version": "1.0", "type": kind, "id": "setup", "payload": payload});
        self.stream.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            bail!("the agent closed the connection instead of answering {kind}");
        }
        serde_json::from_str(&answer).with_context(|| format!("{kind}: bad answer {answer:?}"))
    }

    pub fn grant(&mut self, resource: &str, actions: &[&str]) -> Result<String> {
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
