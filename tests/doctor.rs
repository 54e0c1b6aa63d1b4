//! `aether-vault doctor` against a real agent and real files: a healthy setup passes (exit 0),
//! and each broken one (a group-writable policy file, a world-readable key, no policy
//! directory, an unknown user in a policy, a changed audit record, a Vault address nothing
//! listens on, a stale socket) gives its finding and its fix, as root and as another user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::{Agent, json_out, stdout};
use serde_json::Value;

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn allow(name: &str) -> String {
    format!(
        "id: {name}\nrules:\n  - id: r\n    effect: allow\n    resources: [\"secret:/app/*\"]\n    actions: [read]\n    identities: [\"uid:{}\"]\n",
        me()
    )
}

fn standard() -> Agent {
    Agent::builder()
        .mode("standard")
        .policy("app.yaml", &allow("app"))
        .start()
}

/// The flags that make doctor read the configuration this agent runs with (the socket comes
/// from `Agent::cli`).
fn flags(agent: &Agent, mode: &str) -> Vec<String> {
    let mut f = vec!["doctor".to_string(), "--mode".into(), mode.into()];
    for (flag, path) in [
        ("--policy-dir", &agent.policy_dir),
        ("--state-dir", &agent.state_dir),
        ("--audit-file", &agent.audit_file),
    ] {
        f.push(flag.into());
        f.push(path.display().to_string());
    }
    f
}

fn doctor(agent: &Agent, mode: &str, extra: &[&str]) -> Output {
    let mut args = flags(agent, mode);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    agent.cli(&args)
}

fn json(out: &Output) -> Value {
    json_out(out)
}

/// The findings of `check` with `status`.
fn findings<'a>(report: &'a Value, check: &str, status: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["status"] == status)
        .collect()
}

fn one<'a>(report: &'a Value, check: &str, status: &str) -> &'a Value {
    let f = findings(report, check, status);
    assert_eq!(
        f.len(),
        1,
        "one {status} {check} finding expected in {report:#}"
    );
    f[0]
}

#[test]
fn a_healthy_setup_exits_0_with_one_line_per_check() {
    let agent = standard();
    let out = doctor(&agent, "standard", &[]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        common::stderr(&out)
    );
    assert!(text.ends_with("No problem found.\n"), "{text}");
    for check in [
        "config", "socket", "agent", "files", "keys", "policy", "users", "audit", "secrets",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok ") && l.split_whitespace().nth(1) == Some(check)),
            "no ok line for {check}:\n{text}"
        );
    }
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["problems"], 0);
    assert!(
        one(&report, "audit", "ok")["message"]
            .as_str()
            .unwrap()
            .contains("chain intact")
    );
}

#[test]
fn a_group_writable_policy_file_is_a_problem_with_its_chmod() {
    let agent = standard();
    let file = agent.policy_dir.join("app.yaml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["code"], "FAILED", "{report:#}");
    let f = one(&report, "files", "problem");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("policy file {}", file.display())),
        "{f}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("writable by group or others"),
        "{f}"
    );
    assert_eq!(f["fix"], format!("chmod go-w {}", file.display()));
    // The text form: the same finding on one line, with its fix, and exit 1.
    let out = doctor(&agent, "standard", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l.starts_with("problem  files")
            && l.ends_with(&format!("fix: chmod go-w {}", file.display()))),
        "{text}"
    );
    assert!(
        common::stderr(&out).contains("doctor found"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_world_readable_key_is_a_problem_with_its_chmod() {
    let agent = standard();
    let key = agent.state_dir.join("signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = one(&report, "files", "problem");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("lets others read it"),
        "{f}"
    );
    assert_eq!(f["fix"], format!("chmod 600 {}", key.display()));
}

#[test]
fn a_missing_policy_directory_is_a_warning_and_exits_0() {
    let agent = standard();
    std::fs::remove_dir_all(&agent.policy_dir).unwrap();
    let out = doctor(&agent, "standard", &["--format", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let f = one(&report, "policy", "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("everything is denied until a policy exists"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().starts_with("mkdir"), "{f}");
    assert_eq!(report["warnings"], 1, "{report:#}");
}

#[test]
fn an_unknown_user_in_a_policy_is_a_problem_naming_file_and_rule() {
    let agent = Agent::builder()
        .mode("standard")
        .policy(
            "ghost.yaml",
            "id: ghost\nrules:\n  - id: r\n    effect: allow\n    resources: [\"secret:/x\"]\n    actions: [read]\n    identities: [\"user:av-no-such-user\"]\n",
        )
        .start();
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = one(&report, "users", "problem");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("ghost.yaml: rule ghost/r names user \"av-no-such-user\""),
        "{m}"
    );
    assert!(f["fix"].as_str().unwrap().contains("useradd"), "{f}");
}

#[test]
fn a_changed_audit_record_is_a_problem() {
    let agent = standard();
    agent.grant("secret:/app/db", &["read"]);
    let log = std::fs::read_to_string(&agent.audit_file).unwrap();
    assert!(log.contains("secret:/app/db"));
    std::fs::write(
        &agent.audit_file,
        log.replace("secret:/app/db", "secret:/app/dx"),
    )
    .unwrap();
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = one(&report, "audit", "problem");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("the audit chain is broken at"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("evidence"), "{f}");
}

#[test]
fn a_cut_audit_log_is_caught_by_the_agents_seals() {
    let mut agent = standard();
    agent.grant("secret:/app/db", &["read"]);
    agent.stop();
    let log = std::fs::read_to_string(&agent.audit_file).unwrap();
    let first = log.lines().next().unwrap();
    std::fs::write(&agent.audit_file, format!("{first}\n")).unwrap();
    let report = json(&doctor(&agent, "standard", &["--format", "json"]));
    let f = one(&report, "audit", "problem");
    assert!(f["message"].as_str().unwrap().contains("missing"), "{f}");
}

#[test]
fn a_vault_address_nothing_listens_on_is_a_problem_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s.none").unwrap();
    let agent = Agent::builder()
        .mode("standard")
        .policy("app.yaml", &allow("app"))
        .config(&format!(
            "secrets:\n  backend: vault\n  vault:\n    address: http://127.0.0.1:{port}\n    auth:\n      token_file: {}\n",
            token.display()
        ))
        .start();
    let config = agent.dir.path().join("agent.yaml");
    let config = config.display().to_string();
    let out = doctor(
        &agent,
        "standard",
        &["--config", &config, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = one(&report, "secrets", "problem");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("vault status"), "{f}");
}

#[test]
fn a_stale_socket_is_told_from_a_missing_one() {
    let mut agent = standard();
    agent.signal(nix::sys::signal::Signal::SIGKILL);
    agent.wait_exit(std::time::Duration::from_secs(10));
    assert!(agent.socket.exists(), "a killed agent leaves its socket");
    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let f = one(&report, "socket", "problem");
    assert!(
        f["message"].as_str().unwrap().contains("stale socket"),
        "{f}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .starts_with(&format!("rm {}", agent.socket.display())),
        "{f}"
    );
    std::fs::remove_file(&agent.socket).unwrap();
    let report = json(&doctor(&agent, "standard", &["--format", "json"]));
    let f = one(&report, "socket", "problem");
    assert!(
        f["message"].as_str().unwrap().contains("no socket at"),
        "{f}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("systemctl start aether-vault-agent.socket"),
        "{f}"
    );
}

#[test]
fn as_another_user_the_agents_files_are_judged_by_the_agents_uid() {
    require_root!();
    let agent = standard();
    let mut args = flags(&agent, "standard");
    args.extend(["--format".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = agent.cli_as(65534, &args);
    let report = json(&out);
    // Root's files are right for a root agent (the kernel says who listens on the socket):
    // what nobody may not read is not blamed but said, with how to check it; exit 0.
    assert_eq!(report["problems"], 0, "{report:#}");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let unread = findings(&report, "files", "warning");
    assert!(
        unread
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains(&format!(
                "{} is not readable by uid 65534",
                agent.state_dir.display()
            )) && f["fix"].as_str().unwrap().contains("as root")),
        "{report:#}"
    );
    // A broken file is still found from outside: a group-writable policy file.
    let file = agent.policy_dir.join("app.yaml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = agent.cli_as(65534, &args);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(
        one(&report, "files", "problem")["fix"],
        format!("chmod go-w {}", file.display())
    );
}

/// The review's attack: the agent's user (who owns the store's directory) points the store's
/// check file at a directory (so it "exists" but cannot be read) and the check file's temporary
/// name at a file of root's. The agent's own open would then write a new check file through
/// that link; doctor, often run as root, must write nothing there.
#[test]
fn doctor_writes_nothing_through_links_in_the_secrets_store() {
    let agent = standard();
    let store = agent.state_dir.join("secrets");
    std::fs::create_dir_all(&store).unwrap();
    let check = store.join(".keycheck");
    let _ = std::fs::remove_file(&check);
    std::os::unix::fs::symlink("/", &check).unwrap();
    let victim = agent.state_dir.parent().unwrap().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, store.join("..keycheck.tmp")).unwrap();

    let out = doctor(&agent, "standard", &["--format", "json"]);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "doctor wrote through the link"
    );
    assert!(
        std::fs::symlink_metadata(&check)
            .unwrap()
            .file_type()
            .is_symlink(),
        "doctor replaced the check file"
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = json(&out);
    let f = one(&report, "secrets", "problem");
    assert!(f["message"].as_str().unwrap().contains(".keycheck"), "{f}");
}
