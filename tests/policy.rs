//! Policies against the real agent: hot reload through inotify, YAML files, refused files, and
//! the `policy check|test|list` tools.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Agent, RawClient, json_out, stderr, stdout};
use serde_json::{Value, json};

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn allow_read(id: &str, resource: &str) -> String {
    json!({"id": id, "rules": [{"id": "r", "effect": "allow", "resources": [resource], "actions": ["read"],
                                 "identities": [format!("uid:{}", me())]}]})
    .to_string()
}

fn ask(c: &mut RawClient, resource: &str) -> String {
    let r = c.call(
        "capability_request",
        json!({"resource": resource, "actions": ["read"]}),
    );
    r["payload"]["status"]
        .as_str()
        .unwrap_or("error")
        .to_string()
}

/// Calls `probe` every 25 ms until it answers `Ok`, for at most 10 s (inotify reloads are
/// debounced); the last `Err` says what was seen.
fn poll<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {seen}"
            ),
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until the agent's status satisfies `f`.
fn wait_for(c: &mut RawClient, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    poll(what, || {
        let s = c.call("status_request", Value::Null)["payload"].clone();
        if f(&s) { Ok(s) } else { Err(s.to_string()) }
    })
}

/// Waits until a request for `resource` is answered `want`.
fn wait_answer(c: &mut RawClient, resource: &str, want: &str) {
    poll(&format!("{resource} to be {want}"), || {
        match ask(c, resource) {
            got if got == want => Ok(()),
            got => Err(format!("still {got}")),
        }
    })
}

/// Asserts that the agent reloaded, and only on directory changes (no SIGHUP, no agent reload).
fn assert_reloads_by_watch(agent: &Agent) {
    let reasons: Vec<String> = agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "policy_reload")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r.contains("directory change")),
        "{reasons:?}"
    );
}

#[test]
fn a_new_file_takes_effect_without_a_signal_and_a_rename_save_too() {
    let agent = Agent::builder().mode("standard").start();
    let mut c = agent.client();
    assert_eq!(ask(&mut c, "secret:/a"), "denied");
    std::fs::write(
        agent.policy_dir.join("a.json"),
        allow_read("a", "secret:/a"),
    )
    .unwrap();
    wait_for(&mut c, "generation 2", |s| s["policy_generation"] == 2);
    assert_eq!(ask(&mut c, "secret:/a"), "granted");
    // Editor-style save: write a temporary file, rename it over the original.
    let tmp = agent.policy_dir.join(".a.json.swp");
    std::fs::write(&tmp, allow_read("a", "secret:/b")).unwrap();
    std::fs::rename(&tmp, agent.policy_dir.join("a.json")).unwrap();
    wait_for(&mut c, "generation 3", |s| s["policy_generation"] == 3);
    assert_eq!(ask(&mut c, "secret:/a"), "denied");
    assert_eq!(ask(&mut c, "secret:/b"), "granted");
    assert_reloads_by_watch(&agent);
}

#[test]
fn a_burst_of_writes_is_one_reload() {
    let agent = Agent::builder().mode("standard").start();
    let mut c = agent.client();
    for i in 0..20 {
        std::fs::write(
            agent.policy_dir.join("a.json"),
            allow_read("a", &format!("secret:/{i}")),
        )
        .unwrap();
    }
    let s = wait_for(&mut c, "a reload", |s| s["policy_generation"] != 1);
    std::thread::sleep(Duration::from_millis(600));
    let s2 = c.call("status_request", Value::Null)["payload"].clone();
    assert_eq!(s["policy_generation"], s2["policy_generation"]);
    assert!(
        s2["policy_generation"].as_u64().unwrap() <= 3,
        "debounced: {s2}"
    );
    assert_eq!(ask(&mut c, "secret:/19"), "granted");
}

#[test]
fn yaml_policies_load_and_bad_yaml_reports_file_line_column() {
    let yaml = format!(
        "id: y\nrules:\n  - id: r\n    effect: allow\n    resources: [\"secret:/y/*\"]\n    actions: [read]\n    identities: [\"uid:{}\"]\n    max_uses: 3\n",
        me()
    );
    let agent = Agent::builder()
        .mode("standard")
        .policy("y.yaml", &yaml)
        .start();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource": "secret:/y/1", "actions": ["read"]}),
    );
    assert_eq!(r["payload"]["capability"]["maxUses"], 3, "{r}");
    std::fs::write(
        agent.policy_dir.join("z.yml"),
        "id: z\nrules:\n  - id: r\n    efect: allow\n",
    )
    .unwrap();
    let r = c.call("agent_reload", Value::Null);
    let err = r["payload"]["error"].as_str().unwrap();
    assert!(err.contains("z.yml:4:5") && err.contains("efect"), "{err}");
}

#[test]
fn writable_files_and_escaping_symlinks_are_refused_and_the_last_good_set_stays() {
    let agent = Agent::builder()
        .mode("standard")
        .policy("a.json", &allow_read("a", "secret:/a"))
        .start();
    let mut c = agent.client();
    assert_eq!(ask(&mut c, "secret:/a"), "granted");
    let evil = agent.policy_dir.join("evil.json");
    std::fs::write(&evil, allow_read("evil", "*")).unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = c.call("agent_reload", Value::Null);
    assert_eq!(r["payload"]["status"], "failed");
    assert!(
        r["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("chmod go-w"),
        "{r}"
    );
    assert_eq!(ask(&mut c, "secret:/zzz"), "denied");
    assert_eq!(ask(&mut c, "secret:/a"), "granted");
    std::fs::remove_file(&evil).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.json"), allow_read("x", "*")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("x.json"),
        agent.policy_dir.join("x.json"),
    )
    .unwrap();
    let r = c.call("agent_reload", Value::Null);
    assert!(
        r["payload"]["error"].as_str().unwrap().contains("symlink"),
        "{r}"
    );
    assert_eq!(ask(&mut c, "secret:/zzz"), "denied");
}

#[test]
fn policy_check_lints_offline_with_file_line_messages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.json"), allow_read("g", "secret:*")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["policy", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 files, 1 rules") && stdout(&out).contains("notes.txt"),
        "{}",
        stdout(&out)
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"id\":\"b\",\n\"rules\":[{\"id\":\"r\",\"effect\":\"allow\",\"resources\":[\"*\"],\"actions\":[\"*\"],\"identities\":[\"bob\"]}]}").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["policy", "check"])
        .arg(dir.path())
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.json") && err.contains("\"bob\""), "{err}");
    std::fs::write(&bad, "{\"id\":\"b\",\n  \"rulez\": []}").unwrap();
    let out = std::process::Command::new(common::CLI)
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(stderr(&out).contains("bad.json:2:"), "{}", stderr(&out));
}

#[test]
fn policy_test_offline_and_live_agree_and_list_shows_the_set() {
    let agent = Agent::builder()
        .mode("standard")
        .policy("a.json", &json!({"id":"a","rules":[{"id":"root-read","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["user:root"],"max_ttl":42}]}).to_string())
        .policy("README", "not a policy")
        .start();
    let dir = agent.policy_dir.to_str().unwrap().to_string();
    let offline = agent.cli(&[
        "policy",
        "test",
        "--resource",
        "secret:/x",
        "--action",
        "read",
        "--user",
        "root",
        "--dir",
        &dir,
        "--format",
        "json",
    ]);
    assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
    let live = agent.cli(&[
        "policy",
        "test",
        "--resource",
        "secret:/x",
        "--action",
        "read",
        "--user",
        "root",
        "--live",
        "--format",
        "json",
    ]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let (o, l) = (json_out(&offline), json_out(&live));
    assert_eq!(o["decision"], "allow");
    assert_eq!(l["decision"], "allow");
    assert_eq!(o["appliedRules"], l["appliedRules"]);
    assert_eq!(l["ttl"], 42);
    let denied = agent.cli(&[
        "policy",
        "test",
        "--resource",
        "secret:/x",
        "--action",
        "read,write",
        "--uid",
        "0",
        "--live",
    ]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(stdout(&denied).contains("deny"), "{}", stdout(&denied));
    let list = agent.cli(&["policy", "list", "--format", "json"]);
    let v = json_out(&list);
    assert_eq!(v["generation"], 1);
    assert_eq!(v["files"][0]["policy_id"], "a");
    assert_eq!(v["ignored"][0]["reason"], "not a .json, .yaml or .yml file");
    assert!(
        agent
            .audit()
            .iter()
            .any(|r| r["type"] == "policy_evaluation")
    );
}

#[test]
fn policy_tools_on_the_live_agent_are_for_admins_only() {
    require_root!();
    let agent = Agent::dev();
    for args in [
        &["policy", "list"][..],
        &[
            "policy",
            "test",
            "--resource",
            "svc:/x",
            "--action",
            "read",
            "--uid",
            "0",
            "--live",
        ],
    ] {
        let out = agent.cli_as(65534, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("administrators"), "{}", stderr(&out));
    }
}

#[test]
fn development_mode_with_a_bad_set_at_start_behaves_as_an_empty_directory() {
    let agent = Agent::builder()
        .mode("development")
        .policy("bad.json", "{\"id\": ")
        .start();
    let mut c = agent.client();
    assert_eq!(
        ask(&mut c, "secret:/anything"),
        "granted",
        "the agent's own uid, as with no policy"
    );
    let s = c.call("status_request", Value::Null)["payload"].clone();
    assert!(
        s["policy_last_error"]
            .as_str()
            .unwrap()
            .contains("bad.json"),
        "{s}"
    );
    assert!(
        s["policy_fallback"].as_str().unwrap().contains("own uid"),
        "{s}"
    );
}

/// Regression (issue 17): a policy directory created after the agent started, under parents
/// that were missing too, was never watched: only SIGHUP or `agent reload` loaded it.
#[test]
fn a_policy_directory_created_after_start_is_picked_up_without_a_reload() {
    let agent = Agent::builder()
        .mode("standard")
        .missing_policy_dir("later/on/policies")
        .start();
    let mut c = agent.client();
    assert!(!agent.policy_dir.exists());
    assert_eq!(ask(&mut c, "secret:/late"), "denied");
    // Created with a policy, then removed (the agent runs with an empty set and watches for
    // it once more), then created again.
    for (i, id) in ["late", "again"].into_iter().enumerate() {
        if i > 0 {
            std::fs::remove_dir_all(agent.dir.path().join("later")).unwrap();
            wait_answer(&mut c, "secret:/late", "denied");
        }
        std::fs::create_dir_all(&agent.policy_dir).unwrap();
        std::fs::write(
            agent.policy_dir.join(format!("{id}.json")),
            allow_read(id, "secret:/late"),
        )
        .unwrap();
        wait_answer(&mut c, "secret:/late", "granted");
    }
    assert_reloads_by_watch(&agent);
}

/// Regression (issue 17): offline `policy check` called a missing policy directory FAILED
/// (exit 1) while the agent runs with it as an empty set; offline `policy test` ignored the
/// mode's fallback (development mode allows the agent's own uid without policies).
#[test]
fn offline_policy_tools_agree_with_the_agent_on_a_missing_directory() {
    let agent = Agent::builder()
        .mode("development")
        .missing_policy_dir("nothing-here")
        .start();
    let dir = agent.policy_dir.to_str().unwrap().to_string();
    let check = agent.cli(&["policy", "check", &dir, "--mode", "development"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert_eq!(
        stdout(&check),
        format!("WARNING {dir}: missing (empty set)\n")
    );
    assert_eq!(
        stderr(&check),
        format!(
            "Warning: {dir} does not exist; the agent treats a missing policy directory as empty (in development mode only the agent's own uid {} is allowed) and loads it once it is created\n",
            me()
        )
    );
    let test = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "test",
            "--resource",
            "secret:/x",
            "--action",
            "read",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        agent.cli(&args)
    };
    let uid = me().to_string();
    let live = test(&["--uid", &uid, "--live"]);
    let offline = test(&["--uid", &uid, "--dir", &dir, "--mode", "development"]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
    let (l, o) = (json_out(&live), json_out(&offline));
    assert_eq!(
        (&o["decision"], &o["reasoning"]),
        (&l["decision"], &l["reasoning"])
    );
    // Another uid is denied by both.
    let live = test(&["--uid", "65534", "--live"]);
    let offline = test(&["--uid", "65534", "--dir", &dir, "--mode", "development"]);
    assert_eq!(
        (live.status.code(), offline.status.code()),
        (Some(2), Some(2))
    );
    // A named policy file that is missing is still an error (a typo, not a directory).
    let typo = format!("{dir}/typo.json");
    let out = agent.cli(&["policy", "check", &typo]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("typo.json: no such file"),
        "{}",
        stderr(&out)
    );
}
