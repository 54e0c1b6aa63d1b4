//! The `aether-vault` CLI for scripts and for people who typed something slightly wrong, against
//! the real agent (issue 17): errors as `{"error", "code"}` on stdout with `--format json|yaml`;
//! TTLs as durations and a shortened grant that says so; denials that name an action or scheme no
//! rule mentions, without a "Denied: denied:" stutter; `capability show`, `--no-headers`, empty
//! lists and health in the status tables; and "cannot connect" that tells why.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Agent, json_out, stderr, stdout};
use serde_json::{Value, json};

/// Parses YAML from stdout.
fn yaml_out(o: &std::process::Output) -> Value {
    aether_vault_agent::yaml::parse(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The CLI with a clean environment (HOME in `dir`), no agent around.
fn cli_alone(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(common::CLI);
    common::clean_env(&mut cmd, dir);
    cmd.args(args).output().unwrap()
}

/// `Agent::cli_as`, again while the fresh copy of the CLI is "Text file busy" (a process another
/// test forked meanwhile still held it open for writing).
fn cli_as(agent: &Agent, uid: u32, args: &[&str]) -> std::process::Output {
    for _ in 0..50 {
        let out = agent.cli_as(uid, args);
        if out.status.code() != Some(126) || !stderr(&out).contains("Text file busy") {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the copy of the CLI stayed busy");
}

#[test]
fn json_and_yaml_errors_go_to_stdout_with_a_code() {
    let agent = Agent::dev();
    // The agent's own code.
    let out = agent.cli(&["capability", "revoke", "cap_nope", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["code"], "CAP_NOT_FOUND", "{v}");
    // People still read it on stderr.
    assert_eq!(
        stderr(&out),
        format!("Error: {}\n", v["error"].as_str().unwrap())
    );
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    // A flag the CLI cannot use.
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--constraints",
        "{not json",
        "--format",
        "yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = yaml_out(&out);
    assert_eq!(v["code"], "INVALID_INPUT", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("--constraints"),
        "{v}"
    );
    // A command line clap refuses.
    let out = agent.cli(&["capability", "request", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["code"], "USAGE");
    assert!(v["error"].as_str().unwrap().contains("--resource"), "{v}");
    // No agent at all.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let out = cli_alone(
        dir.path(),
        &[
            "capability",
            "status",
            "--format",
            "json",
            "--socket-path",
            sock.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["code"], "CANNOT_CONNECT");
    assert!(v["error"].as_str().unwrap().contains("absent.sock"), "{v}");
    // The table form is unchanged: `Error: …` on stderr, nothing on stdout.
    let out = agent.cli(&["capability", "revoke", "cap_nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).starts_with("Error: "), "{}", stderr(&out));
}

const SHORT_RULE: &str = r#"{"id":"p","rules":[{"id":"short","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["*"],"max_ttl":300}]}"#;

#[test]
fn ttls_take_durations_and_a_shortened_grant_says_why() {
    let agent = Agent::builder().policy("p.json", SHORT_RULE).start();
    let request = |ttl: &str| {
        agent.cli(&[
            "capability",
            "request",
            "--resource",
            "secret:/db",
            "--action",
            "read",
            "--ttl",
            ttl,
            "--format",
            "json",
        ])
    };
    let out = request("90s");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["capability"]["ttl"], 90);
    assert_eq!(v["message"], "Capability granted");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(json_out(&request("5m"))["capability"]["ttl"], 300);

    let out = request("1h");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["capability"]["ttl"], 300);
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("for 300 seconds, not the 3600 asked")
            && message.contains("max_ttl of rule p/short"),
        "{message}"
    );
    assert!(
        stderr(&out)
            .contains("note: granted for 300 s, not the 3600 s asked: the max_ttl of rule p/short"),
        "{}",
        stderr(&out)
    );

    for (bad, why) in [
        ("0", "must be positive"),
        ("0s", "must be positive"),
        ("-5m", "must be positive"),
        ("1500ms", "whole number of seconds"),
        ("11years", "too long"),
        ("soon", "5m, 1h30m"),
    ] {
        let out = agent.cli(&[
            "capability",
            "request",
            "--resource",
            "secret:/db",
            "--action",
            "read",
            "--ttl",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(stderr(&out).contains(why), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn denials_name_what_no_rule_mentions_without_stuttering() {
    let rules = r#"{"id":"p","rules":[{"id":"other","effect":"allow","resources":["secret:/other"],"actions":["read"],"identities":["uid:4242"]}]}"#;
    let agent = Agent::builder().policy("p.json", rules).start();
    let reasoning = |resource: &str, action: &str| {
        let out = agent.cli(&[
            "capability",
            "request",
            "--resource",
            resource,
            "--action",
            action,
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        json_out(&out)["policyResult"]["reasoning"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = reasoning("secret:/db", "fly");
    assert!(r.contains("no rule mentions action `fly`"), "{r}");
    let r = reasoning("sekret:/db", "read");
    assert!(r.contains("no rule mentions scheme `sekret:`"), "{r}");
    let r = reasoning("secret:/db", "read");
    assert!(!r.contains("mentions"), "a known action and scheme: {r}");

    let out = agent.cli(&["secret", "get", "db"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("Denied: no rule allows"), "{err}");
    assert!(!err.to_lowercase().contains("denied: denied"), "{err}");
    // A script gets the denial on stdout, as `capability request` prints it.
    let out = agent.cli(&["secret", "get", "db", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["status"], "denied", "{v}");
    assert!(
        v["policyResult"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("no rule allows"),
        "{v}"
    );
}

#[test]
fn show_lists_and_status_tables() {
    let agent = Agent::dev();
    let out = agent.cli(&["capability", "list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("no capabilities"), "{}", stderr(&out));

    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--max-uses",
        "2",
        "--format",
        "json",
    ]);
    let id = json_out(&out)["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let out = agent.cli(&["capability", "show", &id, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json_out(&out);
        assert_eq!(
            (v["id"].as_str(), v["usedCount"].clone()),
            (Some(id.as_str()), json!(0))
        );
    }
    let out = agent.cli(&["capability", "show", &id]);
    let t = stdout(&out);
    assert!(
        t.starts_with("id:") && t.lines().next().unwrap().ends_with(&id),
        "{t}"
    );
    assert!(t.contains("0/2"), "{t}");
    // Showing spent nothing: both uses are left.
    let out = agent.cli(&["capability", "validate", &id, "--format", "json"]);
    assert_eq!(json_out(&out)["remainingUses"], 1, "{}", stdout(&out));

    let out = agent.cli(&["capability", "show", "cap_nope", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_out(&out)["code"], "CAP_NOT_FOUND");
    if common::is_root() {
        // Another user's capability is not there for them.
        let out = cli_as(&agent, 65534, &["capability", "show", &id]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("no capability"), "{}", stderr(&out));
    }

    let out = agent.cli(&["capability", "list", "--no-headers"]);
    let t = stdout(&out);
    assert_eq!(t.lines().count(), 1, "{t}");
    assert!(t.starts_with(&id), "{t}");
    let out = agent.cli(&["capability", "list", "--status", "revoked"]);
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("no capabilities match"),
        "{}",
        stderr(&out)
    );

    let out = agent.cli(&["agent", "status"]);
    let t = stdout(&out);
    assert!(
        t.lines()
            .any(|l| l.starts_with("audit:") && l.ends_with("healthy")),
        "{t}"
    );
    assert!(t.lines().any(|l| l.starts_with("secrets:")), "{t}");
    let out = agent.cli(&["capability", "status"]);
    let t = stdout(&out);
    assert!(t.lines().any(|l| l.starts_with("audit:")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("secrets:")), "{t}");
}

#[test]
fn cannot_connect_names_every_socket_tried_and_why() {
    let system = std::path::Path::new("/run/aether-vault/agent.sock");
    if system.exists() {
        eprintln!("skipped: a system socket exists on this host");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A stale per-user socket: the file is there, nothing listens.
    let user_dir = dir.path().join("home/.aether-vault");
    std::fs::create_dir_all(&user_dir).unwrap();
    let stale = user_dir.join("agent.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = cli_alone(dir.path(), &["capability", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/run/aether-vault/agent.sock (the system agent): no such socket"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} (your per-user agent): stale socket",
            stale.display()
        )),
        "{err}"
    );
    assert!(err.contains("aether-vault agent start"), "{err}");
    assert!(
        err.contains("systemctl start aether-vault-agent.socket"),
        "{err}"
    );

    if common::is_root() {
        // A socket this user may not reach.
        let agent = Agent::dev();
        let run = agent.socket.parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&run).unwrap().permissions().mode();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = cli_as(&agent, 65534, &["capability", "status"]);
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("permission denied"), "{err}");
        assert!(err.contains(agent.socket.to_str().unwrap()), "{err}");
    }
}

/// `aether-vault agent start` with the per-user defaults (HOME in `dir`) and `args`, waited
/// for; answers the child and its socket.
fn start_per_user_agent(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let sock = dir.join("home/.aether-vault/agent.sock");
    let sock = sock.to_str().unwrap().to_string();
    let mut cmd = Command::new(common::CLI);
    common::clean_env(&mut cmd, dir);
    let mut child = cmd
        .args(["agent", "start", "--log-target", "stderr"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.stderr")).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..1000 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the agent exited with {status}: {}",
                std::fs::read_to_string(dir.join("agent.stderr")).unwrap_or_default()
            );
        }
        if cli_alone(dir, &["capability", "status", "--socket-path", &sock])
            .status
            .success()
        {
            return (child, sock);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the agent did not answer");
}

/// The upstream documents' troubleshooting commands (issue 17): `capability status --format
/// json | jq .capability_engine`, `ls ~/.aether-vault/policies/` after a per-user agent's first
/// start, and `--region R` shown in the status and written into the audit records.
#[test]
fn upstream_troubleshooting_commands_region_engine_and_policy_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, sock) = start_per_user_agent(
        dir.path(),
        &["--mode", "development", "--region", "us-west-2"],
    );
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--socket-path", &sock]);
        cli_alone(dir.path(), &all)
    };
    let base = dir.path().join("home/.aether-vault");

    // ls ~/.aether-vault/policies/: the directory, private, with a README and an inert example.
    let policies = base.join("policies");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&policies), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&policies)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["00-example.json.example", "README"]);
    assert_eq!(mode(&policies.join("README")), 0o600);
    let readme = std::fs::read_to_string(policies.join("README")).unwrap();
    assert!(readme.contains("development mode"), "{readme}");
    let copy = dir.path().join("mine.json");
    std::fs::copy(policies.join("00-example.json.example"), &copy).unwrap();
    let out = cli(&["policy", "check", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // capability status --format json | jq .capability_engine: real figures.
    let out = cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = cli(&["capability", "status", "--format", "json"]);
    let v = json_out(&out);
    let engine = &v["capability_engine"];
    assert_eq!(engine["issuer"], "aether-vault-agent", "{v}");
    assert_eq!(engine["signature_algorithm"], "Ed25519", "{v}");
    assert_eq!(engine["default_ttl"], 3600, "{v}");
    assert_eq!(engine["max_ttl"], 7200, "{v}");
    assert_eq!(engine["max_uses"], 100, "{v}");
    assert_eq!(engine["active"], 1, "{v}");
    assert_eq!(engine["held"], json!({"active": 1}), "{v}");
    assert_eq!(v["region"], "us-west-2", "{v}");
    let t = stdout(&cli(&["capability", "status"]));
    assert!(
        t.lines().any(|l| l.starts_with("capability engine:")
            && l.contains("Ed25519")
            && l.contains("held: active 1")),
        "{t}"
    );

    // --region: in agent status, and in every audit record, with the chain intact.
    let v = json_out(&cli(&["agent", "status", "--format", "json"]));
    assert_eq!(v["region"], "us-west-2", "{v}");
    let t = stdout(&cli(&["agent", "status"]));
    assert!(
        t.lines()
            .any(|l| l.starts_with("region:") && l.ends_with("us-west-2")),
        "{t}"
    );
    let out = cli(&["agent", "stop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(child.wait().unwrap().success());
    let log = base.join("audit.log");
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 3, "{records:?}");
    assert!(
        records.iter().all(|r| r["region"] == "us-west-2"),
        "{records:?}"
    );
    let out = cli_alone(
        dir.path(),
        &[
            "audit",
            "verify",
            log.to_str().unwrap(),
            "--state-dir",
            base.join("state").to_str().unwrap(),
            "--no-journal",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `--enable-ha` (in upstream's HA example) says why there is no such mode and what to do, as
/// a usage error; a region that is not a label is refused.
#[test]
fn enable_ha_is_refused_with_the_reason_and_bad_regions_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_alone(
        dir.path(),
        &["agent", "start", "--mode", "standard", "--enable-ha"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: --enable-ha: this agent has no high-availability mode"),
        "{err}"
    );
    assert!(err.contains("one agent on every host"), "{err}");
    assert!(!err.contains("similar"), "{err}");
    assert!(stdout(&out).is_empty());
    let out = cli_alone(
        dir.path(),
        &["agent", "start", "--enable-ha", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["code"], "USAGE", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("high-availability"),
        "{v}"
    );
    // The daemon itself: clap's usage exit code, the same sentence.
    let mut cmd = Command::new(common::AGENT);
    common::clean_env(&mut cmd, dir.path());
    let out = cmd
        .args(["--mode", "standard", "--enable-ha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no high-availability mode"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("similar"), "{}", stderr(&out));

    let out = cli_alone(dir.path(), &["agent", "start", "--region", "us west;2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a region label"),
        "{}",
        stderr(&out)
    );
}
