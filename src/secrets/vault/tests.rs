//! The backend against a stand-in Vault, for what a real server cannot be made to do.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::{Value, json};

use super::*;
use crate::secrets::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;

const SECRET: &str = "s3cr3t-VALUE-do-not-leak";
const ROLE_ID: &str = "db02de05-fa39-4855-059b-67221c5c2f63";
const SECRET_ID: &str = "6a174c20-f6de-a53c-74d2-6018fcceff64";
const TOKEN_PREFIX: &str = "hvs.CAESIFAKE";

// ---- A fake Vault, written from Vault's HTTP API documentation --------------------------
//
// KV v2 mounted at `secret/`, KV v1 at `kv/`, AppRole at `auth/approle/`. Answers carry
// the JSON bodies the API docs show. It checks X-Vault-Request, X-Vault-Namespace (when
// told to expect one) and X-Vault-Token, and can be told to answer 503 (sealed), to refuse
// every token (403), to forget the tokens it issued (expiry), or to hang.

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Decoded path.
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Stored {
    version: u64,
    created_time: String,
    data: Value,
}

#[derive(Default)]
struct State {
    namespace: Option<String>,
    lease: u64,
    renewable: bool,
    tokens: HashSet<String>,
    issued: u32,
    logins: u32,
    renewals: u32,
    fail_renew: bool,
    deny_all: bool,
    force: Option<u16>,
    hang: bool,
    echo_on_write: bool,
    kv2: BTreeMap<String, Vec<Stored>>,
    kv1: BTreeMap<String, Value>,
    seen: Vec<Seen>,
}

struct FakeVault {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeVault {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            lease: 3600,
            renewable: true,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut tcp) = conn else { continue };
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    serve(&mut tcp, &state);
                }
            })
        };
        FakeVault {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// (logins, renewals).
    fn counts(&self) -> (u32, u32) {
        let st = self.state();
        (st.logins, st.renewals)
    }
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S: Read + Write>(stream: &mut S, state: &Mutex<State>) {
    let Some(req) = read_request(stream) else {
        return;
    };
    if lock(state).hang {
        std::thread::sleep(Duration::from_millis(1500));
        return;
    }
    let (status, body) = handle(&mut lock(state), req);
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

fn read_request<S: Read>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    Some(Seen {
        method,
        path: decode(&raw_path),
        query,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn errors(msgs: &[&str]) -> String {
    json!({ "errors": msgs }).to_string()
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn auth_answer(token: &str, st: &State) -> String {
    json!({
        "request_id": "1f5a5c5e-4b0b-4b0a-9f5d-0f5e0c2c2b1a",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": {
            "renewable": st.renewable,
            "lease_duration": st.lease,
            "metadata": { "role_name": "agent" },
            "policies": ["default", "agent"],
            "token_policies": ["default", "agent"],
            "accessor": "fd6c9a00-d2dc-3b11-0be5-af7ae0e1d374",
            "client_token": token,
        }
    })
    .to_string()
}

fn list_keys<'a>(names: impl Iterator<Item = &'a String>, prefix: &str) -> (u16, String) {
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    let mut keys = BTreeSet::new();
    for name in names {
        if let Some(rest) = name.strip_prefix(&prefix) {
            keys.insert(match rest.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => rest.to_string(),
            });
        }
    }
    if keys.is_empty() {
        return (404, errors(&[]));
    }
    (200, json!({ "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0, "data": { "keys": keys }, "wrap_info": null, "warnings": null, "auth": null }).to_string())
}

fn handle(st: &mut State, req: Seen) -> (u16, String) {
    st.seen.push(req.clone());
    if let Some(code) = st.force {
        return (
            code,
            errors(&[if code == 503 {
                "Vault is sealed"
            } else {
                "internal error"
            }]),
        );
    }
    let Some(p) = req.path.strip_prefix("/v1/") else {
        return (404, errors(&[]));
    };
    let method = req.method.as_str();
    if method == "GET" && p == "sys/health" {
        return (
            200,
            json!({ "initialized": true, "sealed": false, "standby": false, "version": "1.15.0" })
                .to_string(),
        );
    }
    if req.header("x-vault-request") != Some("true") {
        return (400, errors(&["missing X-Vault-Request header"]));
    }
    if let Some(ns) = &st.namespace {
        if req.header("x-vault-namespace") != Some(ns.as_str()) {
            return (403, errors(&["permission denied"]));
        }
    }
    if method == "POST" && p == "auth/approle/login" {
        let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        if body["role_id"] != ROLE_ID || body["secret_id"] != SECRET_ID {
            return (400, errors(&["invalid role or secret ID"]));
        }
        st.logins += 1;
        st.issued += 1;
        let token = format!("{TOKEN_PREFIX}{:04}", st.issued);
        st.tokens.insert(token.clone());
        return (200, auth_answer(&token, st));
    }
    let token = req.header("x-vault-token").unwrap_or_default().to_string();
    if st.deny_all || !st.tokens.contains(&token) {
        return (403, errors(&["permission denied"]));
    }
    if method == "POST" && p == "auth/token/renew-self" {
        if st.fail_renew {
            return (403, errors(&["permission denied"]));
        }
        st.renewals += 1;
        return (200, auth_answer(&token, st));
    }
    if let Some(path) = p.strip_prefix("secret/data/") {
        return match method {
            "GET" => {
                let wanted = req
                    .query
                    .strip_prefix("version=")
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|v| *v > 0);
                let versions = st.kv2.get(path);
                let found = versions.and_then(|vs| match wanted {
                    Some(w) => vs.iter().find(|v| v.version == w),
                    None => vs.last(),
                });
                match found {
                    None => (404, errors(&[])),
                    Some(v) => (
                        200,
                        json!({
                            "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
                            "data": {
                                "data": v.data,
                                "metadata": {
                                    "created_time": v.created_time, "custom_metadata": null,
                                    "deletion_time": "", "destroyed": false, "version": v.version
                                }
                            },
                            "wrap_info": null, "warnings": null, "auth": null
                        })
                        .to_string(),
                    ),
                }
            }
            "POST" | "PUT" => {
                if st.echo_on_write {
                    return (
                        400,
                        errors(&[&format!("cannot store {} (token {token})", req.body)]),
                    );
                }
                let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
                if !body["data"].is_object() {
                    return (400, errors(&["no data provided"]));
                }
                let versions = st.kv2.entry(path.to_string()).or_default();
                let version = versions.last().map_or(1, |v| v.version + 1);
                let created_time = now();
                versions.push(Stored {
                    version,
                    created_time: created_time.clone(),
                    data: body["data"].clone(),
                });
                (
                    200,
                    json!({
                        "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0,
                        "data": { "created_time": created_time, "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": version },
                        "wrap_info": null, "warnings": null, "auth": null
                    })
                    .to_string(),
                )
            }
            _ => (405, errors(&["unsupported operation"])),
        };
    }
    if p == "secret/metadata" || p.starts_with("secret/metadata/") {
        let path = p
            .strip_prefix("secret/metadata")
            .unwrap_or_default()
            .trim_start_matches('/');
        let listing =
            method == "LIST" || (method == "GET" && req.query.split('&').any(|q| q == "list=true"));
        if listing {
            return list_keys(st.kv2.keys(), path);
        }
        if method == "DELETE" {
            st.kv2.remove(path);
            return (204, String::new());
        }
        return (405, errors(&["unsupported operation"]));
    }
    if p == "kv" || p.starts_with("kv/") {
        let path = p
            .strip_prefix("kv")
            .unwrap_or_default()
            .trim_start_matches('/');
        return match method {
            "LIST" => list_keys(st.kv1.keys(), path),
            "GET" => match st.kv1.get(path) {
                None => (404, errors(&[])),
                Some(data) => (
                    200,
                    json!({ "request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 2764800, "data": data, "wrap_info": null, "warnings": null, "auth": null }).to_string(),
                ),
            },
            "POST" | "PUT" => {
                let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
                if !body.is_object() {
                    return (400, errors(&["no data provided"]));
                }
                st.kv1.insert(path.to_string(), body);
                (204, String::new())
            }
            "DELETE" => {
                st.kv1.remove(path);
                (204, String::new())
            }
            _ => (405, errors(&["unsupported operation"])),
        };
    }
    (404, errors(&[]))
}

// ---- Helpers -----------------------------------------------------------------------------

fn approle_config(vault: &FakeVault, dir: &tempfile::TempDir) -> VaultConfig {
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&secret_id_file, format!("{SECRET_ID}\n")).expect("write secret id");
    let mut c = VaultConfig::new(VaultAuth::AppRole {
        role_id: ROLE_ID.into(),
        secret_id_file,
        mount: "approle".into(),
    });
    c.address = vault.url();
    c.timeout = Duration::from_secs(5);
    c
}

fn approle_backend(vault: &FakeVault, dir: &tempfile::TempDir) -> VaultBackend {
    VaultBackend::new(approle_config(vault, dir)).expect("backend")
}

fn fields_of(pairs: &[(&str, &str)]) -> SecretMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), SecretString::new(v.to_string())))
        .collect()
}

fn field<'a>(v: &'a SecretVersion, name: &str) -> &'a str {
    v.data.get(name).map(SecretString::expose).expect("field")
}

fn ago(d: Duration) -> Instant {
    Instant::now()
        .checked_sub(d)
        .expect("the clock goes back that far")
}

fn age_token(b: &VaultBackend, by: Duration) {
    lock(&b.token).obtained = ago(by);
}

fn assert_clean(msg: &str) {
    for bad in [SECRET, SECRET_ID, TOKEN_PREFIX, "hvs.FILE"] {
        assert!(!msg.contains(bad), "{msg:?} contains {bad:?}");
    }
}

// ---- Tests -------------------------------------------------------------------------------

#[test]
fn missing_secret_is_not_found() {
    let vault = FakeVault::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = approle_backend(&vault, &dir);
    assert_eq!(
        b.read("nope", None),
        Err(SecretError::NotFound("nope".into()))
    );
    assert!(b.health().healthy, "a 404 reached the store");
    assert!(matches!(
        b.read("../etc", None),
        Err(SecretError::Invalid(_))
    ));
    assert!(matches!(b.read("x", Some(0)), Err(SecretError::Invalid(_))));
    assert!(matches!(
        b.write("x", SecretMap::new()),
        Err(SecretError::Invalid(_))
    ));
}

#[test]
fn concurrent_403s_log_in_once_and_huge_leases_do_not_overflow() {
    let vault = FakeVault::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = approle_config(&vault, &dir);
    config.cache_ttl = Duration::ZERO;
    let b = VaultBackend::new(config).expect("backend");
    b.write("app", fields_of(&[("pw", "x")])).expect("write");
    vault.state().tokens.clear();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    assert_eq!(field(&b.read("app", None).expect("read"), "pw"), "x");
                }
            });
        }
    });
    assert_eq!(vault.counts(), (2, 0), "one re-login serves every thread");

    vault.state().lease = u64::MAX;
    vault.state().tokens.clear();
    b.read("app", None).expect("read");
    age_token(&b, Duration::from_secs(3600));
    b.read("app", None).expect("read");
    assert_eq!(vault.counts(), (3, 0));
}

#[test]
fn errors_never_carry_secret_values_or_tokens() {
    let vault = FakeVault::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let b = approle_backend(&vault, &dir);
    // A server whose error text quotes the request and the token.
    vault.state().echo_on_write = true;
    let err = b
        .write("app", fields_of(&[("pw", SECRET)]))
        .expect_err("rejected");
    let SecretError::Invalid(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("cannot store") && msg.contains("***"), "{msg}");
    assert_clean(&err.to_string());
    assert_clean(&format!("{err:?}"));
    assert_clean(&format!("{b:?}"));
    assert_clean(&format!("{:?}", b.health()));

    // A wrong secret id: the login fails, and says so without quoting it.
    std::fs::write(dir.path().join("secret-id"), format!("{SECRET}\n")).expect("write");
    vault.state().tokens.clear();
    let err = b.read("app", None).expect_err("login refused");
    let SecretError::Misconfigured(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(
        msg.contains("AppRole login") && msg.contains("400"),
        "{msg}"
    );
    assert_clean(&err.to_string());
    assert_clean(&format!("{:?}", b.health()));
}

#[test]
fn config_from_file_shape_with_defaults() {
    let c: VaultConfig =
        serde_json::from_value(json!({ "auth": { "token_file": "/run/vault/token" } }))
            .expect("minimal");
    assert_eq!(
        c,
        VaultConfig::new(VaultAuth::TokenFile("/run/vault/token".into()))
    );
    assert_eq!(
        (c.mount.as_str(), c.kv_version, c.cache_ttl, c.timeout),
        (
            "secret",
            None,
            Duration::from_secs(60),
            Duration::from_secs(10)
        )
    );
    assert!(!c.stale_if_error && !c.skip_verify);

    let c: VaultConfig = serde_json::from_value(json!({
        "address": "https://vault.example.com:8200",
        "namespace": "team-a",
        "kv_version": 1,
        "auth": { "approle": { "role_id": "r", "secret_id_file": "/etc/aether/secret-id" } },
        "cache_ttl": 5,
        "timeout": 2.5,
        "stale_if_error": true
    }))
    .expect("full");
    assert_eq!(
        c.auth,
        VaultAuth::AppRole {
            role_id: "r".into(),
            secret_id_file: "/etc/aether/secret-id".into(),
            mount: "approle".into()
        }
    );
    assert_eq!(
        (c.cache_ttl, c.timeout),
        (Duration::from_secs(5), Duration::from_millis(2500))
    );
    c.validate().expect("valid");
    let back: VaultConfig =
        serde_json::from_value(serde_json::to_value(&c).expect("ser")).expect("de");
    assert_eq!(back, c);

    for bad in [
        json!({ "auth": { "token_file": "/t" }, "adress": "x" }),
        json!({ "auth": { "approle": { "role_id": "r", "secret_id_file": "/s", "secret_id": "x" } } }),
        json!({ "auth": { "kerberos": {} } }),
        json!({ "auth": { "token_file": "/t" }, "cache_ttl": -1 }),
    ] {
        assert!(
            serde_json::from_value::<VaultConfig>(bad.clone()).is_err(),
            "{bad}"
        );
    }

    let mut c = VaultConfig::new(VaultAuth::TokenFile("/t".into()));
    c.validate().expect("defaults are valid");
    c.kv_version = Some(3);
    assert!(matches!(c.validate(), Err(SecretError::Invalid(_))));
    c.kv_version = Some(2);
    for bad in [
        "vault:8200",
        "ftp://vault",
        "https://",
        "https://a b",
        "https://u@vault",
    ] {
        c.address = bad.into();
        assert!(VaultBackend::new(c.clone()).is_err(), "{bad}");
    }
    c.address = "https://vault.example.com:8200/".into();
    c.mount = "/".into();
    assert!(c.validate().is_err());
    c.mount = "kv/team-a".into();
    c.validate().expect("nested mount");
}

#[test]
fn environment_overrides_the_file() {
    let mut c = VaultConfig::new(VaultAuth::AppRole {
        role_id: "file-role".into(),
        secret_id_file: "/s".into(),
        mount: "approle".into(),
    });
    c.address = "https://from-file:8200".into();
    c.namespace = Some("file-ns".into());
    let env: HashMap<&str, &str> = [
        ("VAULT_ADDR", "https://vault.example.com:8200"),
        ("VAULT_NAMESPACE", "atom"),
        ("VAULT_CACERT", "/etc/ssl/vault-ca.pem"),
        ("VAULT_SKIP_VERIFY", "1"),
        ("VAULT_MOUNT_PATH", "kv"),
        ("VAULT_KV_VERSION", "1"),
        ("VAULT_ROLE_ID", "env-role"),
        ("VAULT_TOKEN", "hvs.ignored"),
    ]
    .into();
    c.apply_env(|k| env.get(k).map(|v| v.to_string()))
        .expect("apply");
    assert_eq!(c.address, "https://vault.example.com:8200");
    assert_eq!(c.namespace.as_deref(), Some("atom"));
    assert_eq!(
        c.ca_cert.as_deref(),
        Some(Path::new("/etc/ssl/vault-ca.pem"))
    );
    assert!(c.skip_verify);
    assert_eq!((c.mount.as_str(), c.kv_version), ("kv", Some(1)));
    assert!(matches!(&c.auth, VaultAuth::AppRole { role_id, .. } if role_id == "env-role"));

    let before = c.clone();
    c.apply_env(|k| (k == "VAULT_ADDR").then(String::new))
        .expect("empty is unset");
    assert_eq!(c, before);
    for (value, want) in [
        ("true", true),
        ("false", false),
        ("0", false),
        ("TRUE", true),
    ] {
        c.apply_env(|k| (k == "VAULT_SKIP_VERIFY").then(|| value.to_string()))
            .expect("bool");
        assert_eq!(c.skip_verify, want, "{value}");
    }
    assert!(
        c.apply_env(|k| (k == "VAULT_SKIP_VERIFY").then(|| "maybe".to_string()))
            .is_err()
    );
    assert!(
        c.apply_env(|k| (k == "VAULT_KV_VERSION").then(|| "3".to_string()))
            .is_err()
    );

    let mut t = VaultConfig::new(VaultAuth::TokenFile("/t".into()));
    t.apply_env(|k| (k == "VAULT_ROLE_ID").then(|| "r".to_string()))
        .expect("apply");
    assert_eq!(
        t.auth,
        VaultAuth::TokenFile("/t".into()),
        "a role id alone does not switch to AppRole"
    );
}

#[test]
fn loopback_detection() {
    for a in [
        "http://127.0.0.1:8200",
        "http://localhost:8200",
        "http://[::1]:8200",
        "http://localhost",
    ] {
        assert!(is_loopback(a), "{a}");
    }
    for a in [
        "http://10.0.0.1:8200",
        "http://vault:8200",
        "http://[2001:db8::1]:8200",
    ] {
        assert!(!is_loopback(a), "{a}");
    }
}
