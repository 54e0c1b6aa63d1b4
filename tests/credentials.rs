//! The systemd credentials socket against the real agent, on real sockets, without systemd:
//! callers that are not root, root callers that forge a unit's address, malformed addresses
//! and callers that exit get nothing and are recorded; a root process placed in a cgroup named
//! like the unit (cgroup v2, as systemd would place it) gets its secret, and a refused one
//! makes the start fail; the limits; socket activation by name; `credential list|test`;
//! `policy check` and hot reload of the `credentials` lists; the journal entry.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::credentials::{Ask, CALLER, UnitCgroup, ask, ask_with};
use common::{Agent, json_out, stderr, stdout};
use serde_json::{Value, json};

/// The bytes systemd refuses: one more than its `CREDENTIAL_SIZE_MAX` (1 MiB).
const FAIL_START_BYTES: usize = (1 << 20) + 1;

fn policy() -> String {
    json!({"id": "billing",
        "rules": [
            {"id": "billing-reads-db", "effect": "allow", "resources": ["secret:/db/*"],
             "actions": ["read"], "identities": ["unit:billing.service"]},
            {"id": "no-legacy", "effect": "deny", "resources": ["secret:/db/legacy"],
             "actions": ["*"], "identities": ["*"]},
            {"id": "root-writes", "effect": "allow", "resources": ["secret:/db/*"],
             "actions": ["write"], "identities": ["uid:0"]}],
        "credentials": [
            {"unit": "billing.service", "id": "db-password", "secret": "secret:/db/primary#password"},
            {"unit": "billing.service", "id": "db", "secret": "secret:/db/primary"},
            {"unit": "billing.service", "id": "legacy", "secret": "secret:/db/legacy#password"},
            {"unit": "billing.service", "id": "missing", "secret": "secret:/db/missing#password"}]})
    .to_string()
}

/// A standard-mode agent serving a credentials socket, with [`policy`] and the secret
/// `db/primary` (`password=s3cret`, `user=billing`).
fn agent() -> Agent {
    let agent = Agent::builder()
        .mode("standard")
        .credentials()
        .policy("billing.json", &policy())
        .start();
    let out = agent.cli(&[
        "secret",
        "put",
        "db/primary",
        "password=s3cret",
        "user=billing",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    agent
}

fn socket(agent: &Agent) -> &Path {
    agent
        .credentials_socket
        .as_deref()
        .expect("a credentials socket")
}

/// The `credential_delivery` records, oldest first.
fn deliveries(agent: &Agent) -> Vec<Value> {
    agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "credential_delivery")
        .collect()
}

/// Waits for the `credential_delivery` record whose reason contains `needle`.
fn record_with(agent: &Agent, needle: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = deliveries(agent)
            .into_iter()
            .find(|r| r["reason"].as_str().is_some_and(|s| s.contains(needle)))
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no credential_delivery record says {needle:?}: {:?}",
            deliveries(agent)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(agent: &Agent) -> Value {
    agent.client().call("status_request", Value::Null)["payload"]["credentials"].clone()
}

#[test]
fn the_socket_is_bound_0600_counted_in_status_and_removed_at_stop() {
    let mut agent = agent();
    let path = socket(&agent).to_path_buf();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only root (the service manager) may connect");
    let s = status(&agent);
    assert_eq!(s["socket"], path.display().to_string(), "{s}");
    assert_eq!(
        (s["delivered"].as_u64(), s["refused"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["activated"], false);
    assert!(agent.stop().success());
    assert!(!path.exists(), "the agent removes the socket it bound");
    let out = Agent::builder()
        .start()
        .cli(&["agent", "status", "--format", "json"]);
    assert_eq!(
        json_out(&out)["credentials"]["socket"],
        Value::Null,
        "off by default in development mode"
    );
}

#[test]
fn a_caller_that_is_not_root_gets_nothing_and_is_recorded() {
    require_root!();
    let agent = agent();
    let path = socket(&agent);
    let name = "1234abcd/unit/billing.service/db-password";
    let denied = ask_with(
        path,
        name,
        Ask {
            uid: Some(65534),
            ..Default::default()
        },
    );
    assert!(!denied.status.success(), "mode 0600 keeps other users out");
    assert!(
        stderr(&denied).contains("Permission denied"),
        "{}",
        stderr(&denied)
    );
    // As if a socket unit made it reachable to all: the agent still checks who is asking.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = ask_with(
        path,
        name,
        Ask {
            uid: Some(65534),
            ..Default::default()
        },
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "not a byte: {} bytes",
        out.stdout.len()
    );
    let r = record_with(&agent, "uid 65534, not root");
    assert_eq!(r["outcome"], "denied", "{r}");
    assert_eq!(r["identity"]["uid"], 65534, "{r}");
    assert_eq!(
        r["credential"],
        json!({"unit": "billing.service", "id": "db-password"}),
        "{r}"
    );
    assert_eq!(status(&agent)["refused"], 1);
}

#[test]
fn a_root_caller_that_forges_a_units_address_gets_nothing_and_is_recorded() {
    require_root!();
    let agent = agent();
    let got = ask(socket(&agent), "x/unit/billing.service/db-password");
    assert!(got.is_empty(), "not a byte: {} bytes", got.len());
    let r = record_with(&agent, "but its process is in");
    assert_eq!(r["outcome"], "denied", "{r}");
    assert_eq!(r["identity"]["uid"], 0, "{r}");
    assert_eq!(r["credential"]["unit"], "billing.service", "{r}");
    assert!(
        r.get("resource").is_none(),
        "nothing was looked up for it: {r}"
    );
}

#[test]
fn malformed_missing_and_odd_addresses_get_nothing() {
    require_root!();
    let agent = agent();
    let path = socket(&agent);
    let long_id = "i".repeat(80);
    for (name, why) in [
        ("garbage", "has no /unit/"),
        ("x/unit/billing/db-password", "no type suffix"),
        ("x/unit/billing.service/", "credential id is empty"),
        ("x/unit/bill ing.service/db-password", "holds ' '"),
        ("x/unit/billing.service/a\u{1b}[2J", "printable ASCII"),
        ("-", "has no address"),
        (
            &format!("x/unit/billing.service/{long_id}"),
            "but its process is in",
        ),
    ] {
        assert!(ask(path, name).is_empty(), "{name:?}: not a byte");
        let r = record_with(&agent, why);
        assert_eq!(r["outcome"], "denied", "{name:?}: {r}");
    }
    let escaped = record_with(&agent, "printable ASCII");
    assert!(!escaped.to_string().contains('\u{1b}'), "{escaped}");
    assert_eq!(status(&agent)["refused"], 7);
}

#[test]
fn policy_check_reports_a_bad_credentials_entry_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: p\ncredentials:\n  - unit: billing.service\n    id: db/password\n    secret: secret:/db/primary\n",
    )
    .unwrap();
    let agent = Agent::dev();
    let out = agent.cli(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let file = dir.path().join("bad.yaml").display().to_string();
    assert!(
        stderr(&out).contains(&format!("{file}:4:5: credentials: credential id")),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        "{\"id\": \"p\",\n \"credentials\": [{\"unit\": \"billing.service\", \"id\": \"pw\",\n   \"secret\": \"secret:/db/primary#\"}]}\n",
    )
    .unwrap();
    let out = agent.cli(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let file = dir.path().join("bad.json").display().to_string();
    assert!(
        stderr(&out).contains(&format!("{file}:3:4: credentials: secret")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn credential_list_and_test_offline_and_live() {
    require_root!();
    let agent = agent();
    let list = json_out(&agent.cli(&["credential", "list", "--format", "json"]));
    let ids: Vec<&str> = list["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["db", "db-password", "legacy", "missing"], "{list}");
    assert_eq!(list["socket"], socket(&agent).display().to_string());
    assert_eq!(list["credentials"][1]["field"], "password");
    let yaml = stdout(&agent.cli(&["credential", "list", "--format", "yaml"]));
    assert!(yaml.contains("secret:/db/primary#password"), "{yaml}");
    let table = stdout(&agent.cli(&["credential", "list"]));
    assert!(
        table.contains("UNIT") && table.contains("billing.json"),
        "{table}"
    );

    let dir = agent.policy_dir.to_str().unwrap();
    let test = |extra: &[&str]| {
        let mut args = vec![
            "credential",
            "test",
            "--unit",
            "billing.service",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        agent.cli(&args)
    };
    let out = test(&["--id", "db-password", "--dir", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = json_out(&out);
    assert_eq!(
        (t["decision"].as_str(), t.get("backend")),
        (Some("deliver"), None),
        "{t}"
    );
    assert_eq!(t["rules"], json!(["billing/billing-reads-db"]));
    let out = test(&["--id", "api-key", "--dir", dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        json_out(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("no policy maps")
    );
    let out = test(&["--id", "db-password", "--live"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t = json_out(&out);
    assert_eq!(
        (t["backend"].as_str(), t["bytes"].as_u64()),
        (Some("ok"), Some(6)),
        "{t}"
    );
    let out = test(&["--id", "legacy", "--live"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_out(&out)["rules"], json!(["billing/no-legacy"]));
    let out = test(&["--id", "missing", "--live"]);
    assert_eq!(out.status.code(), Some(2), "the backend has no such secret");
    assert!(
        json_out(&out)["backend"]
            .as_str()
            .unwrap()
            .contains("no secret at")
    );
    let out = agent.cli(&[
        "credential",
        "test",
        "--unit",
        "billing.service",
        "--id",
        "db",
        "--live",
    ]);
    assert!(stdout(&out).contains("ok: 38 bytes"), "{}", stdout(&out));
    let out = agent.cli(&["credential", "test", "--unit", "billing", "--id", "db"]);
    assert_eq!(out.status.code(), Some(1), "systemd never asks for that");
    // For administrators only, as policy list and policy test.
    for args in [
        &["credential", "list"][..],
        &[
            "credential",
            "test",
            "--unit",
            "billing.service",
            "--id",
            "db",
            "--live",
        ],
    ] {
        let out = agent.cli_as(65534, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("only for administrators"),
            "{}",
            stderr(&out)
        );
    }
    let tests = agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "policy_evaluation")
        .count();
    assert_eq!(tests, 4, "each live test is recorded");
}

#[test]
fn a_reload_that_removes_a_mapping_takes_it_out_of_force_and_a_bad_file_changes_nothing() {
    let agent = agent();
    let file = agent.policy_dir.join("billing.json");
    let listed = || {
        json_out(&agent.cli(&["credential", "list", "--format", "json"]))["credentials"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(listed(), 4);
    let mut p: Value = serde_json::from_str(&policy()).unwrap();
    let removed = p["credentials"].as_array_mut().unwrap().remove(0);
    assert_eq!(removed["id"], "db-password");
    std::fs::write(&file, p.to_string()).unwrap();
    assert_eq!(agent.cli(&["agent", "reload"]).status.code(), Some(0));
    assert_eq!(listed(), 3);
    let out = agent.cli(&[
        "credential",
        "test",
        "--unit",
        "billing.service",
        "--id",
        "db-password",
        "--live",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    p["credentials"][0]["unit"] = json!("billing");
    std::fs::write(&file, p.to_string()).unwrap();
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("credentials: unit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listed(), 3, "the set in force stays");
}

#[test]
fn systemd_passes_the_credentials_socket_by_name() {
    require_root!();
    // Two socket units, each naming its socket: the configured path does not matter.
    activated("agent:credentials", |dir| {
        (
            dir.join("unused.sock"),
            dir.join("configured-elsewhere.sock"),
        )
    });
}

#[test]
fn systemd_passes_both_sockets_of_one_unit_and_their_paths_tell_them_apart() {
    require_root!();
    // FileDescriptorName= names every socket of its unit: both are "credentials".
    activated("credentials:credentials", |dir| {
        (dir.join("a.sock"), dir.join("c.sock"))
    });
}

/// Starts the agent as systemd does with `a.sock` and `c.sock` passed as fds 3 and 4 named
/// `names`, and `--socket-path`, `--credentials-socket` as `paths` says; checks that `c.sock`
/// is served as the credentials socket, and stays after the agent stops.
fn activated(names: &str, paths: impl Fn(&Path) -> (PathBuf, PathBuf)) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/billing.json"), policy()).unwrap();
    let agent_listener = std::os::unix::net::UnixListener::bind(dir.path().join("a.sock")).unwrap();
    let creds = dir.path().join("c.sock");
    let cred_listener = std::os::unix::net::UnixListener::bind(&creds).unwrap();
    let (socket_path, credentials_path) = paths(dir.path());
    let mut cmd = common::with_own_pid(&["LISTEN_PID"], common::AGENT);
    common::clean_env(&mut cmd, dir.path());
    cmd.args(["--mode", "development", "--log-target", "stderr"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--policy-dir")
        .arg(dir.path().join("policies"))
        .arg("--audit-file")
        .arg(dir.path().join("audit.log"))
        .arg("--socket-path")
        .arg(&socket_path)
        .arg("--credentials-socket")
        .arg(&credentials_path)
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", names)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("agent.stderr")).unwrap());
    let (a, c) = (agent_listener.as_raw_fd(), cred_listener.as_raw_fd());
    // SAFETY: only fcntl/dup2/close between fork and exec; both fds stay open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, so that neither lands on the other's target.
            let (a2, c2) = (
                libc::fcntl(a, libc::F_DUPFD, 100),
                libc::fcntl(c, libc::F_DUPFD, 100),
            );
            if a2 < 0 || c2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(c2, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a2);
            libc::close(c2);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let stderr_of = || std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let answer = common::RawClient::connect(&dir.path().join("a.sock"))
            .ok()
            .and_then(|mut c| {
                c.send(b"{\"type\":\"status_request\"}\n");
                c.read_quietly()
            });
        if let Some(s) = answer {
            break s;
        }
        assert!(
            child.try_wait().unwrap().is_none() && Instant::now() < deadline,
            "{names}: no answer on a.sock:\n{}",
            stderr_of()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        s["payload"]["credentials"]["activated"], true,
        "{names}: {s}"
    );
    assert_eq!(
        s["payload"]["credentials"]["socket"],
        creds.display().to_string()
    );
    assert!(ask(&creds, "x/unit/billing.service/db-password").is_empty());
    assert!(
        !credentials_path.exists() || credentials_path == creds,
        "nothing bound"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success(), "{}", stderr_of());
    assert!(creds.exists(), "systemd's socket stays");
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"type\":\"credential_delivery\""),
        "{audit}"
    );
}

#[test]
fn a_root_process_in_the_units_cgroup_gets_its_secret_and_a_refusal_fails_the_start() {
    require_root!();
    let Some(cg) = UnitCgroup::create("deliver") else {
        return;
    };
    let agent = agent();
    let path = socket(&agent);
    let get = |id: &str| {
        let how = Ask {
            cgroup: Some(&cg),
            ..Default::default()
        };
        let out = ask_with(path, &format!("5eed/unit/billing.service/{id}"), how);
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    assert_eq!(get("db-password"), b"s3cret", "the field, as it is");
    let whole: Value = serde_json::from_slice(&get("db")).unwrap();
    assert_eq!(whole, json!({"password": "s3cret", "user": "billing"}));
    let r = record_with(&agent, "delivered 6 bytes of secret:/db/primary#password");
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["identity"]["unit"], "billing.service", "{r}");
    assert_eq!(r["resource"], "secret:/db/primary");
    assert_eq!(r["rules"], json!(["billing/billing-reads-db"]));
    assert_eq!(
        r["credential"],
        json!({"unit": "billing.service", "id": "db-password"})
    );
    assert!(
        !agent
            .audit()
            .iter()
            .any(|r| r.to_string().contains("s3cret")),
        "never the value"
    );

    // Refused to the service manager itself: more than systemd takes, so the start fails.
    for (id, why) in [
        ("api-key", "no policy maps credential api-key"),
        ("legacy", "do not allow read on secret:/db/legacy"),
        ("missing", "no secret at"),
    ] {
        let got = get(id);
        assert_eq!(got.len(), FAIL_START_BYTES, "{id}");
        assert!(got.iter().all(|b| *b == 0), "{id}: zeros only");
        let r = record_with(&agent, why);
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .ends_with("the unit's start fails"),
            "{r}"
        );
        let outcome = if id == "missing" { "failure" } else { "denied" };
        assert_eq!(r["outcome"], outcome, "{r}");
    }
    let s = status(&agent);
    assert_eq!(
        (s["delivered"].as_u64(), s["refused"].as_u64()),
        (Some(2), Some(3)),
        "{s}"
    );

    // A reload that removes the mapping: the next start fails.
    let mut p: Value = serde_json::from_str(&policy()).unwrap();
    let removed = p["credentials"].as_array_mut().unwrap().remove(0);
    assert_eq!(removed["id"], "db-password");
    std::fs::write(agent.policy_dir.join("billing.json"), p.to_string()).unwrap();
    assert_eq!(agent.cli(&["agent", "reload"]).status.code(), Some(0));
    assert_eq!(get("db-password").len(), FAIL_START_BYTES);
    assert_eq!(get("db").len(), 38, "the rest stays in force");
}

#[test]
fn connections_beyond_the_limit_wait_and_a_caller_that_exits_gets_nothing() {
    require_root!();
    let Some(cg) = UnitCgroup::create("limit") else {
        return;
    };
    let agent = Agent::builder()
        .mode("standard")
        .credentials()
        .policy("billing.json", &policy())
        .config("credentials:\n  max_connections: 1\n  deadline_seconds: 2\n")
        .start();
    let path = socket(&agent).to_path_buf();
    // The first holds the only slot: it is refused, and does not read what fails its start
    // until after the deadline.
    let stalled = {
        let (path, procs) = (path.clone(), cg.procs());
        std::thread::spawn(move || {
            let started = Instant::now();
            let out = Command::new("/usr/bin/python3")
                .args(["-c", CALLER])
                .arg(&path)
                .arg("1/unit/billing.service/api-key")
                .arg(procs)
                .args(["4", "0"])
                .output()
                .unwrap();
            (started.elapsed(), out)
        })
    };
    record_with(&agent, "no policy maps credential api-key");
    let started = Instant::now();
    assert!(ask(&path, "x/unit/billing.service/db-password").is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1200),
        "the second caller was served after {waited:?}, before the first left its slot"
    );
    let (_, out) = stalled.join().unwrap();
    assert!(
        out.stdout.len() < FAIL_START_BYTES,
        "the deadline cut the stalled connection: {} bytes",
        out.stdout.len()
    );
    // A caller whose connecting process is gone by the time it is served: unverifiable.
    let stalled = {
        let (path, procs) = (path.clone(), cg.procs());
        std::thread::spawn(move || {
            Command::new("/usr/bin/python3")
                .args(["-c", CALLER])
                .arg(&path)
                .arg("2/unit/billing.service/api-key")
                .arg(procs)
                .args(["4", "0"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let how = Ask {
        cgroup: Some(&cg),
        exit_early: true,
        delay: 3.0,
        ..Default::default()
    };
    let out = ask_with(&path, "3/unit/billing.service/db-password", how);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = stalled.join();
    let r = record_with(&agent, "could not be verified");
    assert_eq!(r["credential"]["id"], "db-password", "{r}");
    assert!(agent.stderr().contains("serving systemd credentials"));
}

#[test]
fn a_refusal_reaches_the_journal_with_its_message_id_unit_id_and_reason() {
    require_root!();
    const JOURNALD: &str = "/lib/systemd/systemd-journald";
    if !Path::new(JOURNALD).exists() {
        eprintln!("SKIPPED: {JOURNALD} is not installed");
        return;
    }
    const SCRIPT: &str = r#"
set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || true
mkdir -p /run/systemd/journal
"$JOURNALD" >"$DIR/journald.log" 2>&1 &
JPID=$!
trap 'kill $JPID' EXIT
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
"$AGENT" --mode development --log-level error --log-target journald --socket-path "$DIR/j.sock" \
  --credentials-socket "$DIR/c.sock" --state-dir "$DIR/state" --policy-dir "$DIR/pol" \
  --audit-file "$DIR/audit.log" &
APID=$!
for i in $(seq 200); do [ -S "$DIR/c.sock" ] && break; sleep 0.05; done
/usr/bin/python3 -c "$CALLER" "$DIR/c.sock" journal-$$/unit/billing.service/db-password - 0 0
kill $APID; wait $APID || true
sleep 0.3
journalctl --no-pager -o json SYSLOG_IDENTIFIER=aether-vault-agent >"$DIR/journal.json"
"#;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", SCRIPT])
        .env("DIR", dir.path())
        .env("AGENT", common::AGENT)
        .env("CALLER", CALLER)
        .env("JOURNALD", JOURNALD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let journal = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
    let entry = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["MESSAGE_ID"] == aether_vault_agent::oplog::CREDENTIAL_REFUSED)
        .unwrap_or_else(|| panic!("no refused-credential entry in:\n{journal}"));
    assert_eq!(entry["AV_CREDENTIAL_UNIT"], "billing.service", "{entry}");
    assert_eq!(entry["AV_CREDENTIAL_ID"], "db-password", "{entry}");
    assert_eq!(
        entry["PRIORITY"], "4",
        "a warning, logged whatever log_level says: {entry}"
    );
    let message = entry["MESSAGE"].as_str().unwrap();
    assert!(
        message.contains("credential db-password of unit billing.service: refused: ")
            && message.contains("but its process is in"),
        "{entry}"
    );
}

/// No value leaves without its record on disk: with the audit log's disk full, the service
/// manager is refused (its start fails) instead of getting the secret.
#[test]
fn a_delivery_that_cannot_be_recorded_is_not_made() {
    require_root!();
    let Some(cg) = UnitCgroup::create("unrecorded") else {
        return;
    };
    let base = tempfile::tempdir().unwrap();
    let disk = base.path().join("small");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0750", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap()
        .success();
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&disk);
    let agent = Agent::builder()
        .mode("standard")
        .credentials()
        .policy("billing.json", &policy())
        .audit_file(&disk.join("audit.log"))
        .start();
    let out = agent.cli(&["secret", "put", "db/primary", "password=s3cret"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    while std::io::Write::write_all(&mut filler, &[b'x'; 4096]).is_ok() {}
    drop(filler);
    let how = Ask {
        cgroup: Some(&cg),
        ..Default::default()
    };
    // The log's last page may still take a record or two: ask until writing fails.
    let got = (0..64)
        .map(|_| ask_with(socket(&agent), "x/unit/billing.service/db-password", how))
        .map(|o| o.stdout)
        .find(|bytes| bytes != b"s3cret")
        .expect("a full audit log must stop deliveries");
    assert_eq!(got.len(), FAIL_START_BYTES, "the start fails instead");
    assert!(!got.windows(6).any(|w| w == b"s3cret"));
    assert!(
        agent.stderr().contains("could not be recorded"),
        "{}",
        agent.stderr()
    );
}
