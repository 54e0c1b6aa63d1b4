//! Issue 13: no request gets past policy by spelling, by pattern, or with a borrowed identity.
//!
//! Each test acts as an unprivileged local user would (uid 65534 through `setpriv`, as root)
//! against a real standard-mode agent on its real socket, over the raw protocol (the CLI
//! canonicalises what it sends; a hostile client need not). Each failed on the code before the
//! fix: the request named here was granted, or the old behaviour was observed.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Agent, envelope, stderr, stdout};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const NOBODY: u32 = 65534;

fn request(resource: &str, actions: &[&str]) -> Value {
    envelope(
        "capability_request",
        "c",
        json!({"identity":"x","resource":resource,"actions":actions}),
    )
}

/// The one answer to one capability request as `uid`.
fn ask(agent: &Agent, uid: u32, resource: &str, actions: &[&str]) -> Value {
    agent
        .raw_as(uid, &[], &[request(resource, actions)])
        .remove(0)
}

fn granted(r: &Value) -> bool {
    r["type"] == "capability_response" && r["payload"]["status"] == "granted"
}

fn reasoning(r: &Value) -> String {
    r["payload"]["policyResult"]["reasoning"]
        .as_str()
        .or(r["payload"]["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A standard-mode agent with one policy file.
fn standard(name: &str, policy: &str) -> Agent {
    Agent::builder()
        .mode("standard")
        .policy(name, policy)
        .start()
}

fn python() -> PathBuf {
    std::fs::canonicalize("/usr/bin/python3").expect("python3")
}

const SECRETS: &str = r#"{"id":"p","rules":[
  {"id":"root","effect":"allow","resources":["*"],"actions":["*"],"identities":["uid:0"]},
  {"id":"all","effect":"allow","resources":["secret:*"],"actions":["*"],"identities":["uid:65534"]},
  {"id":"noprod","effect":"deny","resources":["secret:/prod/*"],"actions":["*"],"identities":["uid:65534"]}]}"#;

/// `secret://prod/db` was granted (the deny pattern did not match that text), and a secret
/// message without a path then read `prod/db`, as the backend stripped the extra slash.
#[test]
fn other_spellings_of_a_denied_resource_are_refused_naming_the_canonical_form() {
    require_root!();
    let agent = standard("p.json", SECRETS);
    for spelling in [
        "secret://prod/db",
        "secret:/prod//db",
        "secret:/./prod/db",
        "secret:/pub/../prod/db",
        "SECRET:/prod/db",
        "secret:prod/db",
    ] {
        let r = ask(&agent, NOBODY, spelling, &["read"]);
        assert_eq!(r["type"], "error_response", "{spelling}: {r}");
        assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
        assert!(
            reasoning(&r).contains("\"secret:/prod/db\""),
            "{spelling}: the error names the canonical form: {r}"
        );
    }
    let r = ask(&agent, NOBODY, "secret:/prod/db", &["read"]);
    assert!(!granted(&r) && reasoning(&r).contains("p/noprod"), "{r}");
    // What a user types is canonicalised by the CLI before it is sent, so it meets the deny.
    let out = agent.cli_as(
        NOBODY,
        &[
            "capability",
            "request",
            "--resource",
            "secret://prod/db",
            "--action",
            "read",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("p/noprod"), "{}", stdout(&out));
}

/// A capability for `secret:/prod` (allowed: the deny covers `secret:/prod/*`) listed the
/// keys of the folder `prod/` when the path was left out or given as `prod`.
#[test]
fn a_list_acts_on_the_folder_that_was_decided_on() {
    require_root!();
    let agent = standard("p.json", SECRETS);
    let out = agent.cli(&["secret", "put", "prod/db", "password=hunter2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = ask(&agent, NOBODY, "secret:/prod", &["list"]);
    assert!(granted(&r), "{r}");
    let cap = r["payload"]["capability"]["id"].as_str().unwrap();
    let answers = agent.raw_as(
        NOBODY,
        &[],
        &[
            envelope("secret_list", "l1", json!({"capability_id": cap})),
            envelope(
                "secret_list",
                "l2",
                json!({"capability_id": cap, "path": "prod"}),
            ),
            envelope(
                "secret_list",
                "l3",
                json!({"capability_id": cap, "path": "prod/"}),
            ),
        ],
    );
    for a in &answers {
        assert_eq!(a["type"], "error_response", "{a}");
        assert!(a["payload"].get("keys").is_none(), "{a}");
    }
    assert_eq!(
        answers[0]["payload"]["code"], "INVALID_PAYLOAD",
        "{}",
        answers[0]
    );
    assert!(
        reasoning(&answers[1]).contains("\"prod/\""),
        "{}",
        answers[1]
    );
    // `prod/` is a folder the capability does not cover.
    assert_eq!(
        answers[2]["payload"]["code"], "PERMISSION_DENIED",
        "{}",
        answers[2]
    );
    // And the folder itself is denied.
    assert!(!granted(&ask(&agent, NOBODY, "secret:/prod/", &["list"])));
}

const PATTERNS: &str = r#"{"id":"q","rules":[
  {"id":"db-one","effect":"allow","resources":["svc:/db/?"],"actions":["read"],"identities":["uid:65534"]},
  {"id":"config","effect":"allow","resources":["config:*"],"actions":["*"],"identities":["uid:65534"]},
  {"id":"noprod","effect":"deny","resources":["config:/prod/*"],"actions":["*"],"identities":["uid:65534"]},
  {"id":"nodelete","effect":"deny","resources":["config:*"],"actions":["delete"],"identities":["uid:65534"]}]}"#;

/// A request's resource or actions may be patterns; rules matched them as text, so a pattern
/// covering denied resources or actions was granted, and validated.
#[test]
fn patterns_in_requests_are_decided_as_sets() {
    require_root!();
    let agent = standard("q.json", PATTERNS);
    for (resource, actions, rule) in [
        ("svc:/db/*", &["read"][..], "q/db-one"),
        ("config:/*", &["read"], "q/noprod"),
        ("config:/pro?/x", &["read"], "q/noprod"),
        ("config:/dev/x", &["*"], "q/nodelete"),
        ("config:/dev/x", &["d*"], "q/nodelete"),
        ("config:/dev/x", &["read", "?elete"], "q/nodelete"),
    ] {
        let r = ask(&agent, NOBODY, resource, actions);
        assert!(!granted(&r), "{resource} {actions:?} was granted: {r}");
        assert!(
            reasoning(&r).contains(rule),
            "{resource} {actions:?}: the reason names {rule}: {r}"
        );
    }
    // What policy allows whole is still granted, and validates.
    assert!(granted(&ask(&agent, NOBODY, "svc:/db/a", &["read"])));
    let r = ask(&agent, NOBODY, "config:/dev/*", &["re*", "write"]);
    assert!(granted(&r), "{r}");
    let cap = r["payload"]["capability"]["id"].as_str().unwrap();
    let v = agent.raw_as(
        NOBODY,
        &[],
        &[envelope(
            "capability_validate",
            "v",
            json!({"capability_id": cap}),
        )],
    );
    assert_eq!(v[0]["payload"]["valid"], true, "{}", v[0]);
}

/// Policy said capabilities keep their terms across reloads and redemption re-checks policy;
/// a validation after a reload that denies what a capability carries said valid.
#[test]
fn every_use_of_a_capability_is_decided_again_under_the_policy_in_force() {
    require_root!();
    let agent = standard("q.json", PATTERNS);
    let r = ask(&agent, NOBODY, "config:/dev/x", &["read"]);
    assert!(granted(&r), "{r}");
    let cap = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let validate = || {
        agent
            .raw_as(
                NOBODY,
                &[],
                &[envelope(
                    "capability_validate",
                    "v",
                    json!({"capability_id": cap}),
                )],
            )
            .remove(0)
    };
    assert_eq!(validate()["payload"]["valid"], true);
    std::fs::write(
        agent.policy_dir.join("z.json"),
        r#"{"id":"z","rules":[{"id":"nodev","effect":"deny","resources":["config:/dev/*"],"actions":["*"],"identities":["*"]}]}"#,
    )
    .unwrap();
    let out = agent.cli(&["agent", "reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = validate();
    assert_eq!(v["payload"]["valid"], false, "{v}");
    assert_eq!(
        v["payload"]["errors"][0]["code"], "PERMISSION_DENIED",
        "{v}"
    );
    assert!(
        v["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("z/nodev"),
        "{v}"
    );
    // Taking the deny away lets it be used again: the terms were never changed.
    std::fs::remove_file(agent.policy_dir.join("z.json")).unwrap();
    assert!(agent.cli(&["agent", "reload"]).status.success());
    assert_eq!(validate()["payload"]["valid"], true);
}

/// An `exe:` allow was met by any process that runs the executable, including one whose code
/// was replaced (`LD_PRELOAD`); policy now refuses it alone, with a reason and a position.
#[test]
fn an_allow_on_exe_alone_and_non_canonical_patterns_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(common::CLI)
            .args(["policy", "check"])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        (out.status.code(), stderr(&out))
    };
    let (code, err) = check(
        "exe.json",
        "{\"id\":\"e\",\"rules\":[{\"id\":\"r\",\"effect\":\"allow\",\"resources\":[\"svc:/x\"],\n  \"actions\":[\"read\"],\n  \"identities\":[\"uid:5\", \"exe:/usr/bin/python3.11\"]}]}",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("exe.json:3:") && err.contains("LD_PRELOAD") && err.contains("user:NAME+exe:"),
        "{err}"
    );
    let (code, err) = check(
        "cond.yaml",
        "id: c\nrules:\n  - id: r\n    effect: allow\n    resources: [\"svc:/x\"]\n    actions: [read]\n    identities: [\"*\"]\n    conditions:\n      - {type: identity, key: exe, value: /usr/bin/x}\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cond.yaml:9:"), "{err}");
    for (pattern, canonical) in [
        ("secret://prod/*", "secret:/prod/*"),
        ("secret:prod/*", "secret:/prod/*"),
        ("Secret:/prod/*", "secret:/prod/*"),
        ("secret:/a/../prod/*", "secret:/prod/*"),
    ] {
        let (code, err) = check(
            "deny.json",
            &format!(
                "{{\"id\":\"d\",\"rules\":[\n {{\"id\":\"r\",\"effect\":\"deny\",\n  \"resources\":[\"secret:/ok\", \"{pattern}\"],\"actions\":[\"*\"],\"identities\":[\"*\"]}}]}}"
            ),
        );
        assert_eq!(code, Some(1), "{pattern}: {err}");
        assert!(
            err.contains("deny.json:3:30") && err.contains(&format!("\"{canonical}\"")),
            "{pattern}: {err}"
        );
    }
    // A conjunction with who runs it is accepted, as is an exe deny on its own.
    let (code, err) = check(
        "ok.json",
        r#"{"id":"o","rules":[{"id":"a","effect":"allow","resources":["svc:/x"],"actions":["read"],"identities":["user:nobody+exe:/usr/bin/python3.11"]},{"id":"d","effect":"deny","resources":["svc:/x"],"actions":["*"],"identities":["exe:/usr/bin/evil"]}]}"#,
    );
    assert_eq!(code, Some(0), "{err}");
}

/// Inside an unprivileged user and mount namespace (`unshare -Urm`) a user can bind-mount any
/// file over the allowed executable's path; /proc showed the path, and the allow granted.
#[test]
fn a_bind_mount_in_a_user_namespace_does_not_borrow_an_executable() {
    require_root!();
    let py = python();
    let agent = Agent::builder()
        .mode("standard")
        .policy(
            "e.json",
            &json!({"id":"e","rules":[{"id":"py","effect":"allow","resources":["svc:/x"],"actions":["read"],
                   "identities":[format!("uid:65534+exe:{}", py.display())]}]})
            .to_string(),
        )
        .start();
    // The real executable, run by the user it names, is granted.
    let r = ask(&agent, NOBODY, "svc:/x", &["read"]);
    assert!(granted(&r), "{r}");
    // Another file (a copy: same code, another inode) mounted over that path is not.
    let evil = agent.dir.path().join("evil-python");
    std::fs::copy(&py, &evil).unwrap();
    let script = format!(
        "mount --bind {} {} && exec \"$0\" \"$@\"",
        evil.display(),
        py.display()
    );
    let r = agent
        .raw_as(
            NOBODY,
            &["unshare", "-Urm", "sh", "-c", &script],
            &[request("svc:/x", &["read"])],
        )
        .remove(0);
    assert!(!granted(&r), "{r}");
    assert!(reasoning(&r).contains("exe"), "{r}");
}

/// A client that connects, hands its socket to a child and exits; the child sends `argv[3]`
/// once the file `argv[2]` exists and prints the answer.
const CONNECT_AND_EXIT: &str = r#"
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
if os.fork():
    os._exit(0)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
s.sendall(sys.argv[3].encode() + b"\n")
sys.stdout.buffer.write(s.makefile("rb").readline())
"#;

/// Starts [`CONNECT_AND_EXIT`] as uid 65534: it connects to `agent`, hands the socket to a
/// child and exits; the child sends `request` once `go` exists and prints the answer.
fn connect_and_exit(agent: &Agent, go: &std::path::Path, request: &Value) -> std::process::Child {
    Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
        ])
        .args(["/usr/bin/python3", "-c", CONNECT_AND_EXIT])
        .arg(&agent.socket)
        .arg(go)
        .arg(request.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A client that connects and exits at once left the agent with only its uid and gid: a deny
/// on `exe:` no longer matched, and the allow on `uid:` granted.
#[test]
fn a_deny_on_an_attribute_applies_when_it_cannot_be_verified() {
    require_root!();
    let py = python();
    let agent = Agent::builder()
        .mode("standard")
        .policy(
            "d.json",
            &json!({"id":"d","rules":[
                {"id":"all","effect":"allow","resources":["svc:/x"],"actions":["read"],"identities":["uid:65534"]},
                {"id":"nopy","effect":"deny","resources":["svc:/x"],"actions":["*"],"identities":[format!("exe:{}", py.display())]}]})
            .to_string(),
        )
        .start();
    // Connected normally, the deny applies.
    let r = ask(&agent, NOBODY, "svc:/x", &["read"]);
    assert!(!granted(&r) && reasoning(&r).contains("d/nopy"), "{r}");
    // Now the process that connects is gone before the agent accepts: the agent is stopped
    // while it connects, hands the socket to a child and exits (and is reaped).
    let go = agent.dir.path().join("go");
    let script = CONNECT_AND_EXIT;
    agent.signal(Signal::SIGSTOP);
    let mut child = Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".into(),
        ])
        .args(["/usr/bin/python3", "-c", script])
        .arg(&agent.socket)
        .arg(&go)
        .arg(request("svc:/x", &["read"]).to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let status = child.wait().unwrap();
    agent.signal(Signal::SIGCONT);
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&go, "").unwrap();
    let mut line = String::new();
    out.read_to_string(&mut line).unwrap();
    let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(!granted(&r), "{r}");
    assert!(
        reasoning(&r).contains("d/nopy") && reasoning(&r).contains("could not be verified"),
        "{r}"
    );
    // The audit record says what could not be verified.
    let records = agent.audit();
    let denial = records
        .iter()
        .rev()
        .find(|e| e["type"] == "capability_request")
        .unwrap();
    assert_eq!(denial["outcome"], "denied", "{denial}");
    assert_eq!(
        denial["identity"]["unverified"],
        json!(["unit", "exe"]),
        "{denial}"
    );
}

/// A TTL past the last representable time panicked the registry with a large max_ttl; the
/// agent then answered INTERNAL_ERROR to every capability request. Such a max_ttl is refused
/// at start now, naming the key and the limit.
#[test]
fn a_max_ttl_beyond_the_limit_is_refused_at_start() {
    let (mut agent, mut cmd) = Agent::builder()
        .mode("standard")
        .config("capability_engine:\n  max_ttl: 1000000000000\n")
        .prepare();
    agent.child = Some(cmd.spawn().unwrap());
    let status = agent.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let err = agent.stderr();
    assert!(
        err.contains("capability_engine.max_ttl") && err.contains("315360000"),
        "{err}"
    );
}

/// If an actor dies anyway, the agent stops, non-zero, and says why, instead of answering
/// INTERNAL_ERROR from then on (a fault injected in test builds only).
#[test]
fn a_panicking_actor_stops_the_agent() {
    let mut agent = Agent::builder()
        .env("AETHER_VAULT_AGENT_TEST_PANIC_ON", "fault:/panic")
        .start();
    let mut c = agent.client();
    c.send(format!("{}\n", request("fault:/panic", &["read"])).as_bytes());
    let status = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(70), "{}", agent.stderr());
    assert!(
        agent.stderr().contains("panicked; stopping"),
        "{}",
        agent.stderr()
    );
}

/// `line` without terminal colour sequences (ESC `[` … `m`).
fn without_colours(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A newline in a resource, or in a revocation's reason, forged a line of its own in the
/// operational log on stderr.
#[test]
fn client_text_cannot_forge_a_log_line() {
    let mut agent = Agent::dev();
    let mut c = agent.client();
    let newline_resource = c.call(
        "capability_request",
        json!({"resource":"secret:/a\nINFO forged: granted everything","actions":["read"]}),
    );
    let cap = agent.grant("secret:/a", &["read"]);
    let r = c.call(
        "capability_revoke",
        json!({"capability_id": cap, "reason": "done\nERROR forged: audit disabled\u{1b}[2J"}),
    );
    assert_eq!(r["payload"]["status"], "revoked", "{r}");
    let r = c.call(
        "capability_validate",
        json!({"capability_id": "cap_x\nWARN forged"}),
    );
    assert_ne!(r["payload"]["valid"], true, "{r}");
    agent.stop();
    let log = agent.stderr();
    assert!(log.contains("forged: audit disabled"), "{log}");
    // Every line the agent writes begins with its timestamp; a client's text never begins one.
    for line in log.lines() {
        assert!(
            without_colours(line).starts_with(|c: char| c.is_ascii_digit()),
            "a line the agent did not begin: {line:?}\n{log}"
        );
    }
    // Nor does a terminal escape sequence reach the log (the client sent one).
    assert!(!log.contains('\u{1b}'), "{log}");
    // A resource with a control character has no canonical form: refused before any log.
    assert_eq!(
        newline_resource["payload"]["code"], "INVALID_PAYLOAD",
        "{newline_resource}"
    );
}

/// A client whose connecting process has exited but is not reaped yet (a zombie) still
/// answers its pidfd; on hosts with only cgroup v1 its /proc entry then names the root group,
/// so a deny on `unit:` stopped applying. Its unit is unverified now, and the deny applies.
#[test]
fn a_deny_on_the_unit_applies_to_a_client_whose_process_has_exited_unreaped() {
    require_root!();
    let agent = Agent::builder()
        .mode("standard")
        .policy(
            "u.json",
            &json!({"id":"u","rules":[
                {"id":"all","effect":"allow","resources":["svc:/x"],"actions":["read"],"identities":["uid:65534"]},
                {"id":"units","effect":"deny","resources":["svc:/x"],"actions":["*"],"identities":["unit:*"]}]})
            .to_string(),
        )
        .start();
    let go = agent.dir.path().join("go");
    agent.signal(Signal::SIGSTOP);
    let mut child = connect_and_exit(&agent, &go, &request("svc:/x", &["read"]));
    // Wait until the connecting process is a zombie, without reaping it.
    let stat = PathBuf::from(format!("/proc/{}/stat", child.id()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::proc_state(&stat) != Some('Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the client did not exit"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    agent.signal(Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&go, "").unwrap();
    let mut line = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut line)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(!granted(&r), "{r}");
    assert!(
        reasoning(&r).contains("u/units") && reasoning(&r).contains("unit"),
        "{r}"
    );
}
