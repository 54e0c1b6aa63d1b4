//! The `aether-vault` CLI against the real agent: exit codes, formats, and errors; and, without
//! an agent, the shell completion scripts under `packaging/completions/` (current, and working).

mod common;

use common::{Agent, json_out, stderr, stdout};
use serde_json::json;

#[test]
fn request_validate_revoke_list_in_every_format() {
    let agent = Agent::dev();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read,write",
        "--ttl",
        "60",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = json_out(&out);
    assert_eq!(r["status"], "granted");
    assert_eq!(r["capability"]["actions"], json!(["read", "write"]));
    let id = r["capability"]["id"].as_str().unwrap().to_string();

    let out = agent.cli(&["capability", "validate", &id, "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let y = aether_vault_agent::yaml::parse(&stdout(&out)).unwrap();
    assert_eq!(y["valid"], true);

    let out = agent.cli(&[
        "capability",
        "list",
        "--format",
        "json",
        "--status",
        "active",
    ]);
    assert_eq!(json_out(&out)["count"], 1);
    let out = agent.cli(&["capability", "list"]);
    assert!(
        stdout(&out).contains(&id),
        "table lists the id: {}",
        stdout(&out)
    );

    let out = agent.cli(&["capability", "revoke", &id, "--reason", "Test completed"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "Capability revoked successfully\n");
    assert!(stderr(&out).is_empty());

    let out = agent.cli(&["capability", "validate", &id, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_out(&out)["errors"][0]["code"], "REVOKED");

    let out = agent.cli(&["capability", "revoke", &id, "--format", "json"]);
    let v = json_out(&out);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["message"], "Capability revoked successfully");
}

#[test]
fn list_sorts_as_the_flags_say() {
    let agent = Agent::builder().start();
    let mut ids = Vec::new();
    for (resource, ttl) in [
        ("secret:/b", "60"),
        ("secret:/c", "120"),
        ("secret:/a", "30"),
    ] {
        let out = agent.cli(&[
            "capability",
            "request",
            "--resource",
            resource,
            "--action",
            "read",
            "--ttl",
            ttl,
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        ids.push(
            json_out(&out)["capability"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let resources = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["capability", "list", "--format", "json"];
        args.extend_from_slice(extra);
        let out = agent.cli(&args);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        json_out(&out)["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["resource"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        resources(&["--sort-by", "resource"]),
        ["secret:/a", "secret:/b", "secret:/c"]
    );
    assert_eq!(
        resources(&["--sort-by", "resource", "--sort-order", "desc"]),
        ["secret:/c", "secret:/b", "secret:/a"]
    );
    assert_eq!(
        resources(&["--sort-by", "expires_at"]),
        ["secret:/a", "secret:/b", "secret:/c"]
    );
    assert_eq!(
        resources(&[
            "--sort-by",
            "expires-at",
            "--sort-order",
            "desc",
            "--limit",
            "1"
        ]),
        ["secret:/c"]
    );
    let out = agent.cli(&["capability", "list", "--sort-by", "colour"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("issued_at"), "{}", stderr(&out));
}

#[test]
fn denied_exits_2_and_errors_exit_1() {
    let agent = Agent::builder().mode("standard").start();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_out(&out)["status"], "denied");
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/db",
        "--action",
        "read",
        "--constraints",
        "{not json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Error: --constraints is not valid JSON"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let out = agent.cli(&["capability", "revoke", "cap_nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Error: "));
}

#[test]
fn output_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::dev();
    let file = agent.dir.path().join("cap.json");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "svc:/r",
        "--action",
        "read",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["status"], "granted");
}

#[test]
fn status_commands() {
    let agent = Agent::dev();
    let out = agent.cli(&["agent", "status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let s = json_out(&out);
    assert_eq!(s["mode"], "development");
    assert!(s.get("detail").is_none());
    let out = agent.cli(&["agent", "status", "--verbose", "--format", "json"]);
    let detail = json_out(&out)["detail"].clone();
    assert_eq!(detail["socket_activated"], false);
    assert_eq!(
        detail["audit_sync"], "periodic",
        "development mode's default: {detail}"
    );
    let out = agent.cli(&["capability", "status"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).is_empty());
    let out = agent.cli(&["agent", "reload", "--format", "json"]);
    assert_eq!(json_out(&out)["status"], "reloaded");
}

#[test]
fn failed_reload_exits_1() {
    let agent = Agent::dev();
    std::fs::write(agent.policy_dir.join("bad.json"), "{").unwrap();
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.json"), "{}", stderr(&out));
}

#[test]
fn no_agent_names_the_socket_tried() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("absent.sock");
    let out = std::process::Command::new(common::CLI)
        .args(["capability", "status", "--socket-path"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: ") && err.contains(sock.to_str().unwrap()),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = std::process::Command::new(common::CLI)
        .args(["capability", "status"])
        .env("VAULT_AGENT_SOCKET_PATH", &sock)
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains(sock.to_str().unwrap()),
        "the env var is honoured"
    );
}

#[test]
fn config_validate() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "mode: hardened\nipc:\n  max_connections: 5\n").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Configuration is valid\n");
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--format", "json", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let c = json_out(&out);
    assert_eq!(c["mode"], "hardened");
    assert_eq!(c["capability_engine"]["default_ttl"], 60);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "modee: hardened\n").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["agent", "config", "--validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: ") && err.contains("modee") && err.contains("bad.yaml"),
        "{err}"
    );
}

/// Regression (issue 17): configuration errors repeated the file (`in a.yaml YAML file a.yaml`),
/// named keys as figment does (`default.mode`), said `found float 1` for `version: 1.0`, and
/// `~` in a path was taken literally. Each message is asserted whole, as `agent start` prints it.
#[test]
fn config_errors_name_the_file_once_and_the_key_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let start = |file: &std::path::Path, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(common::CLI);
        common::clean_env(&mut cmd, dir.path());
        cmd.args(["agent", "start", "--config"]).arg(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    for (name, yaml, want) in [
        (
            "mode.yaml",
            "mode: devel\n",
            "1:1: mode: \"devel\" is not one of development, standard, hardened",
        ),
        (
            "version.yaml",
            "version: 1.0\n",
            "1:1: version: 1.0 is read as a number, not text: write version: \"1.0\"",
        ),
        (
            "typo.yaml",
            "mode: hardened\nipc:\n  max_conections: 3\n",
            "3:3: ipc.max_conections: unknown key; did you mean max_connections?",
        ),
        (
            "type.yaml",
            "capability_engine:\n  default_ttl: soon\n",
            "2:3: capability_engine.default_ttl: expected a whole number (0 or more), found soon",
        ),
        (
            "range.yaml",
            "capabilities:\n  max_ttl: 5\n",
            "2:3: capability_engine.max_ttl: 5 is below default_ttl 300",
        ),
        (
            "syntax.yaml",
            "mode: [\n",
            "2:1: while parsing a node, did not find expected node content",
        ),
        (
            "tilde.yaml",
            "state_dir: ~/state\n",
            &format!(
                "1:1: state_dir: \"~/state\" starts with ~, which is not expanded (the agent's user and whoever checks the file have different homes): write the full path, such as {}",
                home.join("state").display()
            ),
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, yaml).unwrap();
        let out = start(&file, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("Error: {}:{want}\n", file.display()),
            "{name}"
        );
    }
    let file = dir.path().join("empty.yaml");
    std::fs::write(&file, "").unwrap();
    let out = start(&file, &[("VAULT_AGENT_MODE", "fast")]);
    assert_eq!(
        stderr(&out),
        "Error: environment variable VAULT_AGENT_MODE: mode: \"fast\" is not one of development, standard, hardened\n"
    );
    let out = start(&file, &[("VAULT_AGENT_IPC__MAX_CONNECTIONS", "many")]);
    assert_eq!(
        stderr(&out),
        "Error: environment variable VAULT_AGENT_IPC__MAX_CONNECTIONS: ipc.max_connections: expected a whole number (0 or more), found string \"many\"\n"
    );
}

/// Issue 17: `agent config --running` shows the running agent's configuration with where each
/// value came from (file with line and column, environment variable, flag, default), for
/// administrators only; `agent reload` says when the configuration file changed since start.
#[test]
fn agent_config_running_names_the_sources_and_reload_says_a_changed_file_needs_a_restart() {
    let agent = Agent::builder()
        .mode("standard")
        .config("version: \"1.0\"\nipc:\n  max_connections: 77\n")
        .env("VAULT_AGENT_LOG_LEVEL", "warn")
        .start();
    let file = agent.dir.path().join("agent.yaml");
    let out = agent.cli(&["agent", "config", "--running", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["file"], file.display().to_string());
    assert!(v.get("file_changed").is_none(), "{v}");
    assert_eq!(v["config"]["ipc"]["max_connections"], 77);
    assert_eq!(v["config"]["log_level"], "warn");
    let src = &v["sources"];
    assert_eq!(
        src["ipc.max_connections"],
        format!("file {}:3:3", file.display())
    );
    assert_eq!(
        src["log_level"],
        "environment variable VAULT_AGENT_LOG_LEVEL"
    );
    assert_eq!(src["mode"], "command-line flag --mode");
    assert_eq!(
        src["policy_engine.directory"],
        "command-line flag --policy-dir"
    );
    assert_eq!(
        src["capability_engine.default_ttl"],
        "default for standard mode"
    );
    let table = agent.cli(&["agent", "config", "--running"]);
    let line = stdout(&table)
        .lines()
        .find(|l| l.starts_with("ipc.max_connections "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    assert_eq!(
        line,
        format!("ipc.max_connections 77 file {}:3:3", file.display())
    );
    // A reload with the file as it was says nothing about it.
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    std::fs::write(&file, "ipc:\n  max_connections: 5\n").unwrap();
    let notice = format!(
        "the configuration file {} changed since start; restart the agent to apply it",
        file.display()
    );
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("Warning: {notice} (policies were reloaded)\n")
    );
    let out = agent.cli(&["agent", "reload", "--format", "json"]);
    assert_eq!(
        json_out(&out)["notice"],
        format!("{notice} (policies were reloaded)")
    );
    let v = json_out(&agent.cli(&["agent", "config", "--running", "--format", "json"]));
    assert_eq!(v["file_changed"], notice);
    assert_eq!(
        v["config"]["ipc"]["max_connections"], 77,
        "still what it loaded"
    );
    if common::is_root() {
        let out = agent.cli_as(65534, &["agent", "config", "--running"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("agent_config is only for administrators"),
            "{}",
            stderr(&out)
        );
    }
}

/// How a completion script spells offering the top-level command NAME.
type Offer = fn(&str) -> String;

/// The completion scripts the packages ship: (shell, file under `packaging/completions/`, how
/// the script offers a top-level command).
const COMPLETIONS: [(&str, &str, Offer); 3] = [
    ("bash", "aether-vault.bash", |name| {
        format!("aether__vault,{name})")
    }),
    ("zsh", "_aether-vault", |name| format!("'{name}:")),
    ("fish", "aether-vault.fish", |name| {
        format!("needs_command\" -f -a \"{name}\"")
    }),
];

/// The one line that rewrites every checked-in completion script from the current CLI.
const REGENERATE: &str = "for s in bash:aether-vault.bash zsh:_aether-vault fish:aether-vault.fish; \
     do cargo run -q --bin aether-vault -- completions ${s%%:*} > packaging/completions/${s#*:}; done";

fn completions_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/completions")
}

/// Runs `aether-vault completions SHELL` with no agent and no configuration around.
fn generate_completions(shell: &str, dir: &std::path::Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(common::CLI);
    common::clean_env(&mut cmd, dir);
    cmd.args(["completions", shell])
        .output()
        .expect("run aether-vault completions")
}

#[test]
fn checked_in_completions_are_what_the_cli_generates() {
    let dir = tempfile::tempdir().unwrap();
    let mut stale = Vec::new();
    for (shell, file, _) in COMPLETIONS {
        let out = generate_completions(shell, dir.path());
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{shell}: {}", stderr(&out));
        assert!(!out.stdout.is_empty(), "{shell}: empty script");
        let path = completions_dir().join(file);
        match std::fs::read(&path) {
            Ok(checked_in) if checked_in == out.stdout => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "the checked-in shell completions are stale ({}); regenerate them from the crate root \
         with:\n{REGENERATE}",
        stale.join("; ")
    );
}

#[test]
fn completions_offer_the_main_commands() {
    for (shell, file, offers) in COMPLETIONS {
        let path = completions_dir().join(file);
        let script = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; regenerate with:\n{REGENERATE}", path.display()));
        for name in [
            "agent",
            "capability",
            "policy",
            "audit",
            "secret",
            "exec",
            "completions",
        ] {
            assert!(
                script.contains(&offers(name)),
                "{shell}: {} does not offer `{name}`",
                path.display()
            );
        }
    }
}

#[test]
fn completion_scripts_parse() {
    // bash always (it is on every machine this builds on); zsh and fish where installed.
    for (shell, file, _) in COMPLETIONS {
        let path = completions_dir().join(file);
        let checked = std::process::Command::new(shell)
            .arg("-n")
            .arg(&path)
            .output();
        match checked {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n {}: {}",
                path.display(),
                stderr(&out)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && shell != "bash" => {}
            Err(e) => panic!("cannot run {shell} -n: {e}"),
        }
    }
}

#[test]
fn completions_need_no_agent_and_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "modee: [unclosed\n").unwrap();
    let plain = generate_completions("zsh", dir.path());
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    let mut cmd = std::process::Command::new(common::CLI);
    common::clean_env(&mut cmd, dir.path());
    let out = cmd
        .args(["completions", "zsh", "--config"])
        .arg(&bad)
        .arg("--socket-path")
        .arg(dir.path().join("absent.sock"))
        .env("VAULT_AGENT_CONFIG_FILE", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(out.stdout, plain.stdout);
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate_completions("powershell", dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error: invalid value 'powershell'") && err.contains("bash, zsh, fish"),
        "{err}"
    );
    let mut cmd = std::process::Command::new(common::CLI);
    common::clean_env(&mut cmd, dir.path());
    let out = cmd.arg("completions").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Error: "), "{}", stderr(&out));
}

/// What the checked-in bash script completes for `words` (the last one being completed).
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = completions_dir().join("aether-vault.bash");
    let program = r#"source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _aether__vault aether-vault "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
        printf '%s\n' "${COMPREPLY[@]}""#;
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(&script)
        .args(words)
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{words:?}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_below_the_first_word() {
    let offered = |words: &[&str], expected: &[&str]| {
        let got = bash_completes(words);
        for e in expected {
            assert!(
                got.iter().any(|g| g == e),
                "{words:?} offers {got:?}, not {e}"
            );
        }
    };
    offered(
        &["aether-vault", ""],
        &["agent", "capability", "completions"],
    );
    offered(&["aether-vault", "agent", ""], &["start", "stop", "reload"]);
    offered(
        &["aether-vault", "completions", ""],
        &["bash", "zsh", "fish"],
    );
    offered(
        &[
            "aether-vault",
            "--format",
            "json",
            "capability",
            "list",
            "--status",
            "",
        ],
        &["active", "revoked", "expired"],
    );
    offered(&["aether-vault", "agent", "start", "--mo"], &["--mode"]);
}

/// Run as `vault` (a link, as the upstream documents name the CLI), `completions` writes scripts
/// that complete `vault` too; bash really registers it. The packaged scripts stay
/// `aether-vault`-only (checked above against the plain binary's output).
#[test]
fn completions_through_a_vault_link_complete_vault() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("vault");
    std::os::unix::fs::symlink(common::CLI, &link).unwrap();
    let script = |shell: &str| {
        let mut cmd = std::process::Command::new(&link);
        common::clean_env(&mut cmd, dir.path());
        let out = cmd.args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script("bash");
    let file = dir.path().join("vault.bash");
    std::fs::write(&file, &bash).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p vault; complete -p aether-vault",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(
        registered.contains("-F _aether__vault") && registered.contains(" vault\n"),
        "{registered}"
    );
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef aether-vault vault\n"), "{zsh}");
    assert!(zsh.contains("compdef _aether-vault aether-vault vault\n"));
    assert!(script("fish").contains("\ncomplete -c vault --wraps aether-vault\n"));
    let packaged = std::fs::read_to_string(completions_dir().join("aether-vault.bash")).unwrap();
    assert!(!packaged.contains(" aether-vault vault"));
}
