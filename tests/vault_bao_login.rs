//! The vault backend's Kubernetes and JWT logins against a real OpenBao server (`bao server
//! -dev`, see tests/common/bao.rs), through the agent and the CLI as a user runs them.
//!
//! - `jwt`: OpenBao checks the JWT's signature against a static public key (an RSA key made
//!   here with the `openssl` command, which also signs the JWTs: RS256).
//! - `kubernetes`: OpenBao is real; only Kubernetes' TokenReview endpoint (`POST
//!   /apis/authentication.k8s.io/v1/tokenreviews`) is stood in for, by a thread here that
//!   answers as the API server does. The service-account tokens are signed like a cluster's
//!   (OpenBao checks them with `pem_keys`) and carry the claims of a projected token.
//!
//! Both renew their token like AppRole (short TTLs here: renew-self at two thirds of the lease,
//! a new login at the max TTL), and read the token file again at each login.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use common::bao::{Bao, write_private};
use common::{Agent, stderr, stdout};

/// The agent's configuration for `bao`, with `auth` as YAML lines under `auth:` and `extra` lines
/// under `vault:` (as tests/vault_bao.rs writes it).
fn vault_config(bao: &Bao, auth: &str, extra: &str) -> String {
    let mut c = format!(
        "secrets:\n  backend: vault\n  vault:\n    address: {}\n",
        bao.addr
    );
    if let Some(ca) = &bao.ca_cert {
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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("these tests sign JWTs with the `openssl` command");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key that signs JWTs (RS256), and its public half in PEM for OpenBao.
struct Signer {
    key: PathBuf,
    public: PathBuf,
}

impl Signer {
    fn new(dir: &Path, name: &str) -> Signer {
        let key = dir.join(format!("{name}.key"));
        let public = dir.join(format!("{name}.pub.pem"));
        openssl(&["genrsa", "-out", key.to_str().unwrap(), "2048"], None);
        openssl(
            &[
                "rsa",
                "-in",
                key.to_str().unwrap(),
                "-pubout",
                "-out",
                public.to_str().unwrap(),
            ],
            None,
        );
        Signer { key, public }
    }

    /// A compact JWS: base64url(header).base64url(claims).base64url(RS256 signature).
    fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT" });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = openssl(
            &["dgst", "-sha256", "-sign", self.key.to_str().unwrap()],
            Some(input.as_bytes()),
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// `@file` for the `bao` CLI.
    fn public_arg(&self, key: &str) -> String {
        format!("{key}=@{}", self.public.display())
    }
}

/// The pieces of a JWT that must never appear in a message: its claims and its signature.
fn secret_parts(jwt: &str) -> Vec<&str> {
    jwt.split('.').skip(1).collect()
}

fn assert_no_jwt(text: &str, jwts: &[&str]) {
    for jwt in jwts {
        for part in secret_parts(jwt) {
            assert!(!text.contains(part), "a JWT leaked into:\n{text}");
        }
    }
}

fn read_password(agent: &Agent) -> Result<String, String> {
    let out = agent.cli(&["secret", "get", "app/db", "--field", "password"]);
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(stderr(&out))
    }
}

/// Reads the secret every half second for `period`; every read must succeed.
fn keep_reading(agent: &Agent, period: Duration) -> usize {
    let start = Instant::now();
    let mut reads = 0;
    while start.elapsed() < period {
        let got = read_password(agent);
        assert_eq!(
            got.as_deref(),
            Ok("from-bao\n"),
            "read {reads} at {:?}",
            start.elapsed()
        );
        reads += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    reads
}

/// Sets up the secret and a policy that may read it.
fn secret_and_policy(bao: &Bao) {
    bao.ok(&["kv", "put", "secret/app/db", "password=from-bao"]);
    bao.policy(
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
}

fn jwt_claims(sub: &str, aud: &str, exp: u64) -> Value {
    json!({ "iss": "https://ci.example", "sub": sub, "aud": aud, "iat": now(), "exp": exp })
}

/// Whether OpenBao has an identity alias `name` on the auth mount `mount` (made by a login).
fn has_alias(bao: &Bao, mount: &str, name: &str) -> bool {
    let mounts = bao.json(&["auth", "list", "-format=json"]);
    let accessor = mounts[format!("{mount}/")]["accessor"].as_str().unwrap();
    let out = bao.bao(&[
        "write",
        "-format=json",
        "identity/lookup/entity",
        &format!("alias_name={name}"),
        &format!("alias_mount_accessor={accessor}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).contains(name)
}

fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn jwt_login_renews_and_logs_in_again_with_the_rotated_jwt() {
    let Some(bao) = Bao::start("jwt_login_renews_and_logs_in_again_with_the_rotated_jwt") else {
        return;
    };
    let signer = Signer::new(bao.dir.path(), "issuer");
    secret_and_policy(&bao);
    bao.ok(&["auth", "enable", "jwt"]);
    bao.ok(&[
        "write",
        "auth/jwt/config",
        &signer.public_arg("jwt_validation_pubkeys"),
    ]);
    bao.ok(&[
        "write",
        "auth/jwt/role/agent",
        "role_type=jwt",
        "user_claim=sub",
        "bound_audiences=aether",
        "token_policies=app",
        "token_ttl=3s",
        "token_max_ttl=8s",
    ]);
    let jwt_file = bao.dir.path().join("jwt");
    let first = signer.sign(&jwt_claims("host-1", "aether", now() + 600));
    write_private(&jwt_file, &first);
    let agent = Agent::builder()
        .config(&vault_config(
            &bao,
            &format!("jwt:\n  role: agent\n  token_file: {}", jwt_file.display()),
            "cache_ttl: 0",
        ))
        .start();

    assert_eq!(read_password(&agent).as_deref(), Ok("from-bao\n"));
    assert!(has_alias(&bao, "jwt", "host-1"));
    // The issuer rotates the JWT; the agent keeps its token, and the next login (at the max
    // TTL) sends the new JWT.
    let second = signer.sign(&jwt_claims("host-2", "aether", now() + 600));
    write_private(&jwt_file, &second);
    assert!(!has_alias(&bao, "jwt", "host-2"));
    keep_reading(&agent, Duration::from_secs(10));

    let log = agent.stderr();
    assert!(
        count(&log, "renewed the vault token") >= 1,
        "renew-self before the max TTL:\n{log}"
    );
    assert!(
        count(&log, "logged in to vault with JWT") >= 2,
        "a new login at the max TTL:\n{log}"
    );
    assert!(
        has_alias(&bao, "jwt", "host-2"),
        "the new login sent the rotated JWT"
    );
    assert_no_jwt(&log, &[&first, &second]);
}

#[test]
fn jwt_login_failures_name_the_method_and_vault_s_reason_without_the_jwt() {
    let Some(bao) =
        Bao::start("jwt_login_failures_name_the_method_and_vault_s_reason_without_the_jwt")
    else {
        return;
    };
    let signer = Signer::new(bao.dir.path(), "issuer");
    let stranger = Signer::new(bao.dir.path(), "stranger");
    secret_and_policy(&bao);
    // A mount of its own: the agent must send the login there.
    bao.ok(&["auth", "enable", "-path=ci/jwt", "jwt"]);
    bao.ok(&[
        "write",
        "auth/ci/jwt/config",
        &signer.public_arg("jwt_validation_pubkeys"),
    ]);
    bao.ok(&[
        "write",
        "auth/ci/jwt/role/agent",
        "role_type=jwt",
        "user_claim=sub",
        "bound_audiences=aether",
        "token_policies=app",
    ]);
    let jwt_file = bao.dir.path().join("jwt");
    write_private(&jwt_file, "placeholder");
    let agent = Agent::builder()
        .config(&vault_config(
            &bao,
            &format!(
                "jwt:\n  role: agent\n  token_file: {}\n  mount: ci/jwt",
                jwt_file.display()
            ),
            "cache_ttl: 0",
        ))
        .start();

    let unknown_key = stranger.sign(&jwt_claims("host-1", "aether", now() + 600));
    let expired = signer.sign(&jwt_claims("host-1", "aether", now() - 600));
    let other_audience = signer.sign(&jwt_claims("host-1", "someone-else", now() + 600));
    let cases: [(&str, &str); 3] = [
        (
            &unknown_key,
            "no known key successfully validated the token signature",
        ),
        (&expired, "token is expired"),
        (&other_audience, "audience claim does not match"),
    ];
    for (jwt, reason) in cases {
        write_private(&jwt_file, jwt);
        let e = read_password(&agent).expect_err(reason);
        assert!(
            e.contains("JWT login at auth/ci/jwt failed (400)") && e.contains(reason),
            "{e}"
        );
        assert!(e.contains("secrets backend misconfigured"), "{e}");
        assert_no_jwt(&e, &[jwt]);
    }
    // What is not a JWT at all is refused before Vault is asked, naming the file only.
    write_private(&jwt_file, "hvs.not-a-jwt-but-some-token");
    let e = read_password(&agent).expect_err("not a JWT");
    assert!(
        e.contains("does not hold a signed JWT") && e.contains(&jwt_file.display().to_string()),
        "{e}"
    );
    assert!(!e.contains("not-a-jwt-but-some-token"), "{e}");

    // A good JWT in the file is used at the next read, with no restart.
    let good = signer.sign(&jwt_claims("host-1", "aether", now() + 600));
    write_private(&jwt_file, &good);
    assert_eq!(read_password(&agent).as_deref(), Ok("from-bao\n"));

    let log = agent.stderr() + &std::fs::read_to_string(&agent.audit_file).unwrap();
    assert_no_jwt(&log, &[&unknown_key, &expired, &other_audience, &good]);
    assert!(!log.contains("not-a-jwt-but-some-token"));
}

// ---- Kubernetes ---------------------------------------------------------------------------

const NAMESPACE: &str = "apps";
const ACCOUNT: &str = "aether";
const ACCOUNT_UID: &str = "7d4b1c2e-5a3f-4c1b-9e0d-2f6a8b9c0d1e";

/// Kubernetes' TokenReview endpoint and nothing else, answering as the API server does: the
/// reviewer must present its bearer token; a token in `accepted` is authenticated as the
/// service account `apps/aether`, with the audiences asked for; any other is not.
struct TokenReview {
    port: u16,
    /// The tokens that authenticate (the ones Kubernetes has issued and not revoked).
    accepted: Arc<Mutex<Vec<String>>>,
    /// Every review: (the reviewer's bearer token, the token reviewed).
    seen: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenReview {
    fn start() -> TokenReview {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, st) = (accepted.clone(), seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    review(stream, &a, &s);
                }
            }
        });
        TokenReview {
            port,
            accepted,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn accept_only(&self, tokens: &[&str]) {
        *self.accepted.lock().unwrap() = tokens.iter().map(|t| t.to_string()).collect();
    }

    fn reviewed(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TokenReview {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request (then closes the connection).
fn review(stream: TcpStream, accepted: &Mutex<Vec<String>>, seen: &Mutex<Vec<(String, String)>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let (mut length, mut bearer) = (0usize, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or_default();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => {
                bearer = value.trim().trim_start_matches("Bearer ").to_string();
            }
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (status, answer) = if !request_line
        .starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews ")
    {
        (
            404,
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404 }),
        )
    } else {
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let token = request["spec"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        seen.lock().unwrap().push((bearer, token.clone()));
        let review = if accepted.lock().unwrap().contains(&token) {
            json!({
                "authenticated": true,
                "user": {
                    "username": format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}"),
                    "uid": ACCOUNT_UID,
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{NAMESPACE}")]
                },
                "audiences": request["spec"]["audiences"]
            })
        } else {
            json!({ "authenticated": false, "error": "[invalid bearer token, token has been invalidated]" })
        };
        (
            201,
            json!({
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "spec": request["spec"],
                "status": review
            }),
        )
    };
    let body = answer.to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A projected service-account token of `apps/aether` in pod `pod`, as the kubelet mounts it.
fn service_account_token(signer: &Signer, pod: &str) -> String {
    let now = now();
    signer.sign(&json!({
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": format!("{pod}-{now}"),
        "kubernetes.io": {
            "namespace": NAMESPACE,
            "pod": { "name": pod, "uid": format!("{pod}-uid") },
            "serviceaccount": { "name": ACCOUNT, "uid": ACCOUNT_UID }
        },
        "sub": format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}")
    }))
}

#[test]
fn kubernetes_login_against_openbao_with_a_stand_in_token_review() {
    let Some(bao) = Bao::start("kubernetes_login_against_openbao_with_a_stand_in_token_review")
    else {
        return;
    };
    let cluster = Signer::new(bao.dir.path(), "service-account-issuer");
    let api = TokenReview::start();
    secret_and_policy(&bao);
    // OpenBao insists on a CA for the API server once it is told not to look for the pod's own;
    // the stand-in speaks plain HTTP, so it is never used.
    let ca = bao.dir.path().join("kubernetes-ca.pem");
    let ca_cert = rcgen::generate_simple_self_signed(vec!["kubernetes.invalid".to_string()])
        .unwrap()
        .cert
        .pem();
    std::fs::write(&ca, ca_cert).unwrap();
    let reviewer = service_account_token(&cluster, "vault-token-reviewer");
    bao.ok(&["auth", "enable", "kubernetes"]);
    bao.ok(&[
        "write",
        "auth/kubernetes/config",
        &format!("kubernetes_host=http://127.0.0.1:{}", api.port),
        &format!("kubernetes_ca_cert=@{}", ca.display()),
        &format!("token_reviewer_jwt={reviewer}"),
        "disable_local_ca_jwt=true",
        &cluster.public_arg("pem_keys"),
    ]);
    bao.ok(&[
        "write",
        "auth/kubernetes/role/aether",
        &format!("bound_service_account_names={ACCOUNT}"),
        &format!("bound_service_account_namespaces={NAMESPACE}"),
        "token_policies=app",
        "token_ttl=3s",
        "token_max_ttl=6s",
    ]);

    let token_file = bao.dir.path().join("serviceaccount-token");
    let first = service_account_token(&cluster, "aether-0");
    write_private(&token_file, &first);
    // The role comes from VAULT_KUBERNETES_ROLE, as the upstream documents configure it; the
    // mount is the default one.
    let agent = Agent::builder()
        .config(&vault_config(
            &bao,
            &format!("kubernetes:\n  token_file: {}", token_file.display()),
            "cache_ttl: 0",
        ))
        .env("VAULT_KUBERNETES_ROLE", "aether")
        .start();

    // Kubernetes does not know the token (yet): Vault says no, and the agent says so.
    let e = read_password(&agent).expect_err("an unknown service-account token");
    assert!(
        e.contains("Kubernetes login at auth/kubernetes failed (403)")
            && e.contains("permission denied"),
        "{e}"
    );
    assert_no_jwt(&e, &[&first]);
    api.accept_only(&[&first]);
    assert_eq!(read_password(&agent).as_deref(), Ok("from-bao\n"));

    // The kubelet rotates the token and the old one stops authenticating; the agent's Vault
    // token is renewed meanwhile, and the login at the max TTL sends the new one.
    let second = service_account_token(&cluster, "aether-0-rotated");
    write_private(&token_file, &second);
    api.accept_only(&[&second]);
    keep_reading(&agent, Duration::from_secs(8));

    let reviewed = api.reviewed();
    let tokens: Vec<&str> = reviewed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(tokens[..2], [first.as_str(), first.as_str()], "{tokens:?}");
    assert!(tokens[2..].contains(&second.as_str()), "{tokens:?}");
    assert!(
        reviewed.iter().all(|(bearer, _)| *bearer == reviewer),
        "OpenBao reviews with its reviewer token"
    );
    let log = agent.stderr();
    assert!(count(&log, "renewed the vault token") >= 1, "{log}");
    assert!(
        count(&log, "logged in to vault with Kubernetes") >= 2,
        "{log}"
    );
    assert_no_jwt(&log, &[&first, &second]);
}
