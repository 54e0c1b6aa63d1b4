//! ssh-agent as a peer of the agent in the benchmarks: OpenSSH's own `ssh-agent -D -a SOCKET`
//! (foreground, on a Unix socket of ours), holding one Ed25519 key generated with `ssh-keygen`
//! and added with `ssh-add` when those are installed (none otherwise), and asked for its
//! identities: the simplest request it answers from memory, writing nothing.
//!
//! The protocol (draft-miller-ssh-agent): each message is a 4-byte big-endian length, then a
//! type byte and its contents. `SSH2_AGENTC_REQUEST_IDENTITIES` (11) has no contents; the answer
//! is `SSH2_AGENT_IDENTITIES_ANSWER` (12), a 4-byte key count and the keys.
//!
//! Nothing here panics: every failure is an error for the benchmark to report. [`binary`] finds
//! `ssh-agent` on `PATH`; the caller decides what a missing one means. The process is killed
//! when the [`SshAgent`] is dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// `SSH2_AGENTC_REQUEST_IDENTITIES`, framed: length 1, type 11.
pub const REQUEST_IDENTITIES: [u8; 5] = [0, 0, 0, 1, 11];
/// `SSH2_AGENT_IDENTITIES_ANSWER`.
const IDENTITIES_ANSWER: u8 = 12;
/// The largest answer read: a few keys are a few hundred bytes.
pub const MAX_ANSWER: usize = 256 * 1024;

/// The first `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The `ssh-agent` binary on `PATH`.
pub fn binary() -> Option<PathBuf> {
    on_path("ssh-agent")
}

/// Whether `answer` (a whole framed message) is an identities answer.
pub fn is_identities_answer(answer: &[u8]) -> bool {
    answer.len() >= 9 && answer[4] == IDENTITIES_ANSWER
}

/// The key count of an identities answer.
fn key_count(answer: &[u8]) -> Option<u32> {
    is_identities_answer(answer)
        .then(|| u32::from_be_bytes([answer[5], answer[6], answer[7], answer[8]]))
}

/// A running `ssh-agent -D`.
pub struct SshAgent {
    child: Child,
    /// Its socket.
    pub socket: PathBuf,
    /// The keys it holds (0 or 1).
    pub keys: u32,
}

impl SshAgent {
    /// Starts `bin` on a socket in `dir` (created), adds a generated key when `ssh-keygen` and
    /// `ssh-add` are on `PATH`, and checks that it answers a request for its identities.
    pub fn start(bin: &Path, dir: &Path) -> Result<SshAgent> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let socket = dir.join("ssh-agent.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(bin)
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut agent = SshAgent {
            child,
            socket,
            keys: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&agent.socket).is_err() {
            if let Some(status) = agent.child.try_wait()? {
                bail!("ssh-agent exited ({status}) before listening");
            }
            if Instant::now() > deadline {
                bail!("ssh-agent did not listen within 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let (Some(keygen), Some(add)) = (on_path("ssh-keygen"), on_path("ssh-add")) {
            let key = dir.join("id_ed25519");
            let _ = std::fs::remove_file(&key);
            run(Command::new(keygen)
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "aether-vault-bench",
                    "-f",
                ])
                .arg(&key))?;
            run(Command::new(add)
                .arg("-q")
                .arg(&key)
                .env("SSH_AUTH_SOCK", &agent.socket))?;
        }
        agent.keys = agent.identities()?;
        Ok(agent)
    }

    /// The process id (for its CPU time and RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks for the identities on a new connection; the number of keys.
    fn identities(&self) -> Result<u32> {
        let mut c = UnixStream::connect(&self.socket)
            .with_context(|| format!("connect {}", self.socket.display()))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.write_all(&REQUEST_IDENTITIES)?;
        let mut len = [0u8; 4];
        c.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_ANSWER {
            bail!("ssh-agent answered a message of {n} bytes");
        }
        let mut answer = len.to_vec();
        answer.resize(4 + n, 0);
        c.read_exact(&mut answer[4..])?;
        key_count(&answer).ok_or_else(|| {
            anyhow::anyhow!(
                "ssh-agent answered type {} to a request for identities",
                answer[4]
            )
        })
    }

    /// `OpenSSH_9.2p1 …` from `ssh -V`, or plain `ssh-agent` without `ssh`.
    pub fn version(&self) -> String {
        on_path("ssh")
            .and_then(|ssh| Command::new(ssh).arg("-V").output().ok())
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "ssh-agent".to_string())
    }
}

/// Runs `cmd`, an error unless it succeeds.
fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
