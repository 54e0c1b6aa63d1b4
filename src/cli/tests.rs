//! Whole commands against a fake agent: a thread that answers canned payloads on a socket in a
//! temporary directory, so that stdout, stderr and exit codes are checked end to end. Also the
//! command tree against its documentation: man/aether-vault.1 names every command and option.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};

use super::{Cli, CliError, Outcome, run_with};

type Handler = dyn Fn(&str, &Value) -> (String, Value) + Send + Sync;

/// A fake agent serving until the test ends; records every request envelope.
struct FakeAgent {
    _dir: tempfile::TempDir,
    path: PathBuf,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl FakeAgent {
    fn start(
        handler: impl Fn(&str, &Value) -> (String, Value) + Send + Sync + 'static,
    ) -> FakeAgent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, path2) = (seen.clone(), path.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (handler, seen) = (handler.clone(), seen2.clone());
                let path = path2.clone();
                std::thread::spawn(move || {
                    let mut writer = conn.try_clone().unwrap();
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { return };
                        let req: Value = serde_json::from_str(&line).unwrap();
                        seen.lock().unwrap().push(req.clone());
                        let kind = req["type"].as_str().unwrap_or_default().to_string();
                        let (rtype, payload) = handler(&kind, &req["payload"]);
                        let resp = json!({"version":"1.0","type":rtype,"id":req["id"],
                                          "timestamp":"2026-01-01T00:00:00Z","payload":payload});
                        writeln!(writer, "{resp}").unwrap();
                        if kind == "agent_stop" {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                });
            }
        });
        FakeAgent {
            _dir: dir,
            path,
            seen,
        }
    }

    fn requests(&self, kind: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == kind)
            .cloned()
            .collect()
    }
}

struct Ran {
    result: Result<Outcome, CliError>,
    out: String,
    err: String,
}

fn run_cli(socket: &Path, args: &[&str]) -> Ran {
    let argv = ["vault"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--socket-path"]);
    let cli = Cli::try_parse_from(argv.chain([socket.to_str().unwrap()])).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = run_with(cli, &mut out, &mut err);
    Ran {
        result,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn capability() -> Value {
    json!({"id":"cap_00112233445566778899aabbccddeeff","type":"read","resource":"secret:/test",
           "actions":["read"],"identity":"","issuer":"aether-vault-agent",
           "issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:01:00Z","ttl":60,
           "maxUses":100,"usedCount":0,"signature":"c2ln","metadata":{},"status":"active",
           "holder":{"uid":1000,"gid":1000}})
}

fn policy(decision: &str) -> Value {
    json!({"decision":decision,"appliedPolicies":["default"],"appliedRules":["default/r"],
           "reasoning":"rule default/r decided","evaluationTime":100})
}

fn agent() -> FakeAgent {
    FakeAgent::start(|kind, payload| {
        let resp = |t: &str, v: Value| (t.to_string(), v);
        match kind {
            "capability_request" if payload["resource"] == "secret:/denied" => resp(
                "capability_response",
                json!({"status":"denied","message":"Capability denied by policy","requestId":"m",
                       "processingTime":5,"policyResult":policy("deny")}),
            ),
            "capability_request" if payload["resource"] == "secret:/broken" => resp(
                "capability_response",
                json!({"status":"error","message":"signing failed","requestId":"m",
                       "processingTime":5,"code":"INTERNAL_ERROR"}),
            ),
            "capability_request" => resp(
                "capability_response",
                json!({"capability":capability(),"status":"granted","message":"Capability granted",
                       "requestId":"m","processingTime":5,"policyResult":policy("allow"),
                       "futureField":{"kept":true}}),
            ),
            "capability_validate" if payload["capability_id"] == "cap_bad" => resp(
                "validation_response",
                json!({"valid":false,"errors":[{"code":"CAP_NOT_FOUND","message":"no such capability"}],
                       "warnings":[],"validationTime":3}),
            ),
            "capability_validate" => resp(
                "validation_response",
                json!({"valid":true,"errors":[],"warnings":[],"validationTime":3,"remainingUses":99}),
            ),
            "capability_revoke" if payload["capability_id"] == "cap_missing" => resp(
                "error_response",
                json!({"error":"capability cap_missing not found","code":"CAP_NOT_FOUND"}),
            ),
            "capability_revoke" => resp(
                "capability_response",
                json!({"status":"revoked","message":"Capability revoked successfully",
                       "capability_id":payload["capability_id"],"revoked_at":"2026-01-01T00:00:10Z"}),
            ),
            "capability_list" => resp(
                "capability_response",
                json!({"capabilities":[capability()],"count":1,"total":1}),
            ),
            "ping_request" => resp(
                "ping_response",
                json!({"message":"pong","server":"aether-vault-agent"}),
            ),
            "agent_status" => resp(
                "error_response",
                json!({"error":"agent_status is for administrators","code":"PERMISSION_DENIED"}),
            ),
            "status_request" => resp(
                "status_response",
                json!({"version":"0.1.0","capabilities":["ping_request"],"uptime":1_000_000_000u64,
                       "connectionCount":1,"mode":"development","socket_path":"/s",
                       "max_connections":200,"capabilities_active":1,"policy_generation":1,
                       "policy_files":0,"policy_rules":0,"policy_loaded_at":"2026-01-01T00:00:00Z",
                       "policy_last_error":null,"policy_fallback":"own uid allowed","public_key":"k"}),
            ),
            "agent_reload" => resp(
                "reload_response",
                json!({"status":"failed","generation":1,"files":0,"rules":0,"error":"a.json: line 1: bad"}),
            ),
            "agent_stop" => resp(
                "stop_response",
                json!({"status":"stopping","message":"Agent stopping"}),
            ),
            other => resp(
                "error_response",
                json!({"error":format!("unknown {other}"),"code":"UNKNOWN_MESSAGE_TYPE"}),
            ),
        }
    })
}

#[test]
fn request_json_is_the_exact_payload_and_exit_0() {
    let a = agent();
    let r = run_cli(
        &a.path,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/test",
            "--action",
            "read",
            "--ttl",
            "60",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        v["capability"]["id"],
        "cap_00112233445566778899aabbccddeeff"
    );
    assert_eq!(
        v["futureField"],
        json!({"kept": true}),
        "unknown fields are kept"
    );
    assert!(r.err.is_empty(), "{}", r.err);
    let sent = &a.requests("capability_request")[0]["payload"];
    assert_eq!(
        *sent,
        json!({"identity":"","resource":"secret:/test","actions":["read"],"ttl":60})
    );
}

#[test]
fn request_actions_combine_and_output_file_is_private() {
    let a = agent();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capability.json");
    let r = run_cli(
        &a.path,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/build",
            "--action",
            "read,write",
            "--action",
            "delete",
            "--identity",
            "jenkins",
            "--purpose",
            "Build pipeline",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert!(r.out.starts_with("id:"), "{}", r.out);
    let sent = &a.requests("capability_request")[0]["payload"];
    assert_eq!(sent["actions"], json!(["read", "write", "delete"]));
    assert_eq!(sent["identity"], "jenkins");
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["status"], "granted");
}

#[test]
fn denial_exits_2_and_error_exits_1() {
    let a = agent();
    let r = run_cli(
        &a.path,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/denied",
            "--action",
            "read",
        ],
    );
    assert_eq!(r.result.unwrap().code(), 2);
    assert!(
        r.out
            .starts_with("Capability denied: Capability denied by policy\n"),
        "{}",
        r.out
    );
    assert!(r.out.contains("rule default/r decided"));

    let r = run_cli(
        &a.path,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/broken",
            "--action",
            "read",
        ],
    );
    let e = r.result.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(e.to_string(), "signing failed (INTERNAL_ERROR)");
    assert!(r.out.is_empty());

    let r = run_cli(
        &a.path,
        &[
            "capability",
            "request",
            "--resource",
            "r",
            "--action",
            "read",
            "--constraints",
            "{x",
        ],
    );
    assert!(
        r.result
            .unwrap_err()
            .to_string()
            .starts_with("--constraints is not valid JSON: ")
    );
    assert!(
        a.requests("capability_request").len() == 2,
        "bad input is refused before sending"
    );
}

#[test]
fn validate_exit_codes_and_json() {
    let a = agent();
    let r = run_cli(
        &a.path,
        &["capability", "validate", "cap_good", "--format", "json"],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).unwrap()["valid"],
        true
    );
    let r = run_cli(&a.path, &["capability", "validate", "cap_bad"]);
    assert_eq!(r.result.unwrap(), Outcome::Negative);
    assert!(
        r.out.contains("CAP_NOT_FOUND: no such capability"),
        "{}",
        r.out
    );
    let r = run_cli(
        &a.path,
        &[
            "capability",
            "validate",
            "cap_good",
            "--context",
            r#"{"ipAddress":"10.0.0.1"}"#,
        ],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(
        a.requests("capability_validate")[2]["payload"]["context"],
        json!({"ipAddress":"10.0.0.1"})
    );
}

#[test]
fn revoke_prints_exactly_the_line() {
    let a = agent();
    let r = run_cli(
        &a.path,
        &[
            "capability",
            "revoke",
            "cap_1",
            "--reason",
            "Test completed",
        ],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(r.out, "Capability revoked successfully\n");
    assert!(r.err.is_empty());
    assert_eq!(
        a.requests("capability_revoke")[0]["payload"]["reason"],
        "Test completed"
    );

    let r = run_cli(
        &a.path,
        &["capability", "revoke", "cap_1", "--format", "yaml"],
    );
    let v = crate::yaml::parse(&r.out).unwrap();
    assert_eq!(v["status"], "revoked");

    let r = run_cli(&a.path, &["capability", "revoke", "cap_missing"]);
    assert_eq!(
        r.result.unwrap_err().to_string(),
        "capability cap_missing not found"
    );
    assert!(r.out.is_empty());
}

#[test]
fn list_and_status() {
    let a = agent();
    let r = run_cli(&a.path, &["capability", "list", "--status", "active"]);
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(r.out.lines().count(), 2, "{}", r.out);
    assert_eq!(
        a.requests("capability_list")[0]["payload"],
        json!({"filter":{"status":"active"}})
    );
    let r = run_cli(&a.path, &["capability", "list", "--format", "json"]);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        (v["count"].clone(), v["total"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(a.requests("capability_list")[1]["payload"], json!({}));

    let r = run_cli(&a.path, &["capability", "status", "--format", "json"]);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["reachable"], true);
    assert_eq!(v["capabilities_active"], 1);
}

#[test]
fn unreachable_agent_names_the_socket() {
    let r = run_cli(Path::new("/nonexistent.sock"), &["capability", "status"]);
    let e = r.result.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.to_string()
            .starts_with("cannot connect to the agent at /nonexistent.sock: "),
        "{e}"
    );
    assert!(r.out.is_empty());
}

#[test]
fn agent_status_verbose_falls_back_when_not_admin() {
    let a = agent();
    let r = run_cli(
        &a.path,
        &["agent", "status", "--verbose", "--format", "json"],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert!(r.err.contains("showing the public status"), "{}", r.err);
    assert_eq!(
        serde_json::from_str::<Value>(&r.out).unwrap()["mode"],
        "development"
    );
}

#[test]
fn failed_reload_is_an_error_and_stop_waits() {
    let a = agent();
    let r = run_cli(&a.path, &["agent", "reload"]);
    let e = r.result.unwrap_err();
    assert!(e.to_string().starts_with("a.json: line 1: bad"), "{e}");
    assert!(r.out.is_empty());

    let r = run_cli(&a.path, &["agent", "stop"]);
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(r.out, "Agent stopped\n");
}

#[test]
fn config_validate_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "mode: development\ncapability_engine:\n  default_ttl: 120\n  max_ttl: 600\n  max_uses: 5\n  issuer: test\n").unwrap();
    let sock = dir.path().join("agent.sock");
    let r = run_cli(
        &sock,
        &[
            "agent",
            "config",
            "--validate",
            "--config",
            good.to_str().unwrap(),
        ],
    );
    assert_eq!(r.result.unwrap(), Outcome::Success);
    assert_eq!(r.out, "Configuration is valid\n");

    let r = run_cli(
        &sock,
        &[
            "agent",
            "config",
            "--config",
            good.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["capability_engine"]["default_ttl"], 120);
    assert_eq!(
        v["socket_path"],
        sock.to_str().unwrap(),
        "--socket-path given explicitly wins"
    );

    let r = run_cli(
        &sock,
        &["agent", "config", "--config", good.to_str().unwrap()],
    );
    assert!(r.out.starts_with("# configuration file: "), "{}", r.out);
    let v = crate::yaml::parse(&r.out).unwrap();
    assert_eq!(v["mode"], "development");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "mode: sideways\n").unwrap();
    let r = run_cli(
        &sock,
        &[
            "agent",
            "config",
            "--validate",
            "--config",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(r.result.unwrap_err().exit_code(), 1);
    assert!(r.out.is_empty());
}

#[test]
fn completions_print_the_script_without_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.sock");
    for (name, shell) in [
        ("bash", super::args::CompletionShell::Bash),
        ("zsh", super::args::CompletionShell::Zsh),
        ("fish", super::args::CompletionShell::Fish),
    ] {
        let r = run_cli(&absent, &["completions", name, "--format", "json"]);
        assert!(
            matches!(r.result, Ok(Outcome::Success)),
            "{name}: {}",
            r.err
        );
        assert!(r.err.is_empty(), "{name}: {}", r.err);
        assert_eq!(r.out, super::completions::script(shell), "{name}");
        assert!(r.out.contains("aether-vault"), "{name}: {}", r.out);
    }
}

#[test]
fn bash_completion_states_match_their_case_arms() {
    // The word loop sets `cmd="STATE"`; each state is completed by a case arm `STATE)`. A state
    // without an arm completes nothing (clap-rs/clap#6421 for a hyphenated command name).
    let script = super::completions::script(super::args::CompletionShell::Bash);
    let states: std::collections::BTreeSet<&str> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cmd=\"")?.strip_suffix('"'))
        .filter(|s| !s.is_empty())
        .collect();
    let arms: std::collections::BTreeSet<&str> = script
        .lines()
        .filter(|l| l.starts_with("        ") && !l.starts_with("         "))
        .filter_map(|l| l.trim().strip_suffix(')'))
        .collect();
    assert!(states.len() > 20, "{states:?}");
    let unmatched: Vec<_> = states.difference(&arms).collect();
    assert!(
        unmatched.is_empty(),
        "states with no case arm: {unmatched:?}"
    );
}

/// Every command clap knows below `command`, as its path of names (`"agent start"`) and
/// whether it has commands of its own; clap's own `help` and hidden commands left out.
fn command_paths(command: &clap::Command, prefix: &str, paths: &mut Vec<(String, bool)>) {
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let path = format!("{prefix}{}", sub.get_name());
        command_paths(sub, &format!("{path} "), paths);
        paths.push((path, sub.has_subcommands()));
    }
}

/// Every long option (and visible alias) and every possible value that `command` and the
/// commands below it define.
fn option_words(command: &clap::Command, words: &mut std::collections::BTreeSet<String>) {
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        for long in arg
            .get_long()
            .into_iter()
            .chain(arg.get_visible_aliases().unwrap_or_default())
        {
            words.insert(format!("--{long}"));
        }
        for value in arg.get_possible_values() {
            if !value.is_hide_set() {
                words.insert(value.get_name().to_string());
            }
        }
    }
    for sub in command.get_subcommands() {
        option_words(sub, words);
    }
}

#[test]
fn the_man_page_documents_every_command_and_option() {
    use clap::CommandFactory;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/aether-vault.1");
    let page = std::fs::read_to_string(path).unwrap();
    // In roff source a hyphen is written `\-`.
    let page = page.replace("\\-", "-");
    let cli = Cli::command();

    let mut paths = Vec::new();
    command_paths(&cli, "", &mut paths);
    assert!(paths.len() > 20, "{paths:?}");
    // A command is documented by a tagged paragraph headed `.TP` / `.B agent start [--mode …`;
    // a command group may instead be named on a SYNOPSIS line of its own (`.B agent`).
    let lines: Vec<&str> = page.lines().collect();
    let names = |line: &str, name: &str| {
        line.strip_prefix(".B ")
            .is_some_and(|rest| rest == name || rest.starts_with(&format!("{name} ")))
    };
    let missing: Vec<&str> = paths
        .iter()
        .filter(|(name, group)| {
            !lines.windows(2).any(|w| {
                names(w[1], name) && ((*group && w[1] == format!(".B {name}")) || w[0] == ".TP")
            })
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{path} has no `.TP` paragraph (or, for a group, `.B` SYNOPSIS line) for: {missing:?}"
    );

    let mut words = std::collections::BTreeSet::new();
    option_words(&cli, &mut words);
    assert!(words.contains("--socket-path") && words.contains("--log-target"));
    let missing: Vec<&String> = words
        .iter()
        .filter(|w| !page.contains(w.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{path} does not mention these options or values: {missing:?}"
    );
}
