//! Seals against the real agent: what `audit verify` says about a log cut, emptied, replaced or
//! missing a rotated file once the agent has sealed it, and that a healthy log keeps passing
//! across rotations, restarts and SIGKILL.
//!
//! `audit verify` is run as an operator would, with a configuration file that names the log and
//! the state directory (so it finds the seal file and the key by itself).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Agent, json_out, stderr, stdout};
use serde_json::{Value, json};

fn activity(agent: &Agent, n: usize) {
    let mut c = agent.client();
    for i in 0..n {
        let r = c.call(
            "capability_request",
            json!({"resource": format!("secret:/{i}"), "actions": ["read"]}),
        );
        let id = r["payload"]["capability"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        c.call("capability_validate", json!({"capability_id": id}));
    }
}

/// `aether-vault audit verify --format json` with a configuration naming the agent's log and
/// state directory.
fn verify(agent: &Agent) -> Output {
    let config = agent.dir.path().join("verify.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\naudit:\n  log_file: {}\n",
            agent.state_dir.display(),
            agent.audit_file.display()
        ),
    )
    .unwrap();
    agent.cli(&[
        "audit",
        "verify",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ])
}

fn passes(agent: &Agent) -> Value {
    let out = verify(agent);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    json_out(&out)
}

/// Runs verify, expects exit 1, returns (stdout JSON, stderr).
fn fails(agent: &Agent) -> (Value, String) {
    let out = verify(agent);
    assert_eq!(
        out.status.code(),
        Some(1),
        "must fail:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (v, stderr(&out))
}

/// The seq of the last record of the log: in the active file, or, when a rotation has just
/// left it empty, in the newest rotated file.
fn last_seq(agent: &Agent) -> u64 {
    let set = aether_vault_agent::audit::chain::rotation_set(&agent.audit_file);
    set.iter()
        .rev()
        .find_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let last = text.lines().last()?;
            serde_json::from_str::<Value>(last).ok()?["seq"].as_u64()
        })
        .expect("the log has a record")
}

fn rotated(agent: &Agent) -> Vec<PathBuf> {
    let mut set = aether_vault_agent::audit::chain::rotation_set(&agent.audit_file);
    set.pop();
    set
}

fn keep_lines(path: &Path, n: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
    std::fs::write(path, kept).unwrap();
}

#[test]
fn a_cut_tail_after_a_clean_stop_names_the_missing_records() {
    let mut agent = Agent::dev();
    activity(&agent, 4);
    assert!(agent.stop().success());
    let last = last_seq(&agent);
    passes(&agent);
    keep_lines(&agent.audit_file, last as usize - 3);
    let (v, err) = fails(&agent);
    assert_eq!(v["seals"]["last"]["seq"], last, "sealed at stop: {v}");
    let want = format!("records {}–{last} are missing", last - 2);
    assert!(err.contains(&want), "{err}");
    assert_eq!(v["problems"][0]["kind"], "tail_cut", "{v}");
    assert_eq!(v["problems"][0]["missing"], json!([last - 2, last]));
}

#[test]
fn an_emptied_log_fails() {
    let mut agent = Agent::dev();
    activity(&agent, 2);
    assert!(agent.stop().success());
    let last = last_seq(&agent);
    std::fs::write(&agent.audit_file, "").unwrap();
    let (_, err) = fails(&agent);
    assert!(
        err.contains(&format!("records 1–{last} are missing")),
        "{err}"
    );
}

#[test]
fn a_log_replaced_by_a_longer_valid_chain_fails() {
    let mut agent = Agent::dev();
    activity(&agent, 2);
    assert!(agent.stop().success());
    let sealed = last_seq(&agent);
    // Another agent's log: a valid chain from seq 1, longer than the sealed one.
    let mut other = Agent::dev();
    activity(&other, 6);
    assert!(other.stop().success());
    let forged = std::fs::read(&other.audit_file).unwrap();
    std::fs::write(&agent.audit_file, forged).unwrap();
    // The chain alone is valid (without a configuration, as root, nothing requires seals).
    let out = agent.cli(&["audit", "verify", agent.audit_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "the chain itself is valid");
    let (v, err) = fails(&agent);
    assert!(
        err.contains("is not the record the agent sealed") && err.contains("replaced"),
        "{err}"
    );
    assert_eq!(v["problems"][0]["kind"], "not_as_sealed", "{v}");
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("record ")
    );
    assert!(sealed > 1);
}

#[test]
fn a_log_deleted_while_the_agent_runs_is_missing_its_records() {
    let mut agent = Agent::dev();
    activity(&agent, 2);
    let before = last_seq(&agent);
    std::fs::remove_file(&agent.audit_file).unwrap();
    activity(&agent, 1);
    assert!(agent.stop().success());
    assert!(
        agent.audit()[0]["seq"].as_u64().unwrap() > before,
        "a new file"
    );
    let (v, err) = fails(&agent);
    assert!(err.contains("missing from the start of the set"), "{err}");
    assert_eq!(v["problems"][0]["missing"][0], 1, "{v}");
}

/// Rotated files, deleted by count (`min_retention_days: 0`): a healthy set (with the agent's
/// own deletions) passes across a restart; a deleted oldest file and a deleted middle file are
/// named.
#[test]
fn rotations_and_a_restart_pass_and_a_deleted_rotated_file_is_named() {
    let mut agent = Agent::builder()
        .config("audit:\n  max_file_size: 3000\n  max_backup_files: 3\n  min_retention_days: 0\n")
        .start();
    activity(&agent, 12);
    assert!(agent.stop().success());
    agent.restart();
    activity(&agent, 12);
    assert!(agent.stop().success());
    let set = rotated(&agent);
    assert_eq!(set.len(), 3, "three rotated files kept: {set:?}");
    let v = passes(&agent);
    assert_eq!(
        v["from_genesis"], false,
        "the agent deleted older files: {v}"
    );
    assert_eq!(v["seals"]["last"]["seq"], last_seq(&agent));
    assert!(v["seals"]["last"]["kept_from"].as_u64().unwrap() > 1);
    assert_eq!(
        v["seals"]["last"]["kept_from"], v["first_seq"],
        "sealed as kept: exactly the files left"
    );

    let oldest = set[0].clone();
    assert!(oldest.to_str().unwrap().ends_with(".3"));
    let saved = std::fs::read(&oldest).unwrap();
    std::fs::remove_file(&oldest).unwrap();
    let (v, err) = fails(&agent);
    assert!(
        err.contains(&format!("missing file {}", oldest.display())),
        "{err}"
    );
    assert_eq!(v["problems"][0]["kind"], "files_missing", "{v}");

    std::fs::write(&oldest, saved).unwrap();
    passes(&agent);
    // A rotation's renames cut short by a crash (.3 → .4 and .2 → .3 done, .1 → .2 not): a gap
    // in the numbering, but no record is missing.
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", agent.audit_file.display()));
    std::fs::rename(numbered(3), numbered(4)).unwrap();
    std::fs::rename(numbered(2), numbered(3)).unwrap();
    passes(&agent);
    std::fs::rename(numbered(3), numbered(2)).unwrap();
    std::fs::rename(numbered(4), numbered(3)).unwrap();
    let middle = set[1].clone();
    std::fs::remove_file(&middle).unwrap();
    let (_, err) = fails(&agent);
    assert!(
        err.contains(&format!("{} is missing", middle.display())),
        "{err}"
    );
}

/// With `audit.min_retention_days` (7 by default) the agent keeps rotated files past
/// `max_backup_files` until they are that old, and its seals vouch for exactly the files it
/// keeps: all of them while they are young, then, once the oldest are old enough, all but the
/// ones the next rotation deletes. A file it keeps past the count, deleted by hand, is named.
#[test]
fn seals_follow_the_files_kept_past_the_count_until_they_are_old_enough() {
    let mut agent = Agent::builder()
        .config(
            "audit:\n  max_file_size: 3000\n  max_backup_files: 2\n  seal_interval_seconds: 1\n",
        )
        .start();
    while rotated(&agent).len() < 6 {
        activity(&agent, 2);
    }
    let v = passes(&agent);
    assert_eq!(v["from_genesis"], true, "nothing deleted yet: {v}");
    assert_eq!(
        v["seals"]["last"]["kept_from"], 1,
        "every file sealed as kept, past the count: {v}"
    );

    // The files numbered 3 and up turn eight days old: the next rotation (renaming them to 4
    // and up) deletes them; FILE.2, young, becomes FILE.3 and stays past the count.
    let set = rotated(&agent);
    let eight_days_ago = std::time::SystemTime::now() - Duration::from_secs(8 * 86400);
    for f in &set[..set.len() - 2] {
        let file = std::fs::File::options().append(true).open(f).unwrap();
        file.set_modified(eight_days_ago).unwrap();
    }
    let young = std::fs::read_to_string(&set[set.len() - 2]).unwrap();
    let young_first: u64 =
        serde_json::from_str::<Value>(young.lines().next().unwrap()).unwrap()["seq"]
            .as_u64()
            .unwrap();
    let before = set.len();
    while rotated(&agent).len() == before {
        activity(&agent, 1);
    }
    assert!(agent.stop().success());
    let set = rotated(&agent);
    assert_eq!(
        set.len(),
        3,
        "two past the old ones deleted, one young past the count: {set:?}"
    );
    let v = passes(&agent);
    assert_eq!(v["from_genesis"], false, "{v}");
    assert_eq!(v["first_seq"], young_first, "{v}");
    assert_eq!(
        v["seals"]["last"]["kept_from"], young_first,
        "the deleted files are no longer sealed as kept, the young one past the count is: {v}"
    );

    // The file kept past the count, deleted by hand: named.
    let oldest = set[0].clone();
    assert!(oldest.to_str().unwrap().ends_with(".3"), "{oldest:?}");
    std::fs::remove_file(&oldest).unwrap();
    let (v, err) = fails(&agent);
    assert!(
        err.contains(&format!("missing file {}", oldest.display())),
        "{err}"
    );
    assert_eq!(v["problems"][0]["missing"][0], young_first, "{v}");
}

/// The same with a generous retention: deleting the oldest file (which the agent still keeps)
/// is not "rotated away".
#[test]
fn a_deleted_oldest_file_is_not_taken_for_rotated_away() {
    let mut agent = Agent::builder()
        .config("audit:\n  max_file_size: 3000\n  max_backup_files: 50\n")
        .start();
    activity(&agent, 15);
    assert!(agent.stop().success());
    let set = rotated(&agent);
    assert!(set.len() >= 3, "{set:?}");
    passes(&agent);
    std::fs::remove_file(&set[0]).unwrap();
    let (_, err) = fails(&agent);
    assert!(
        err.contains(&format!("missing file {}", set[0].display())),
        "{err}"
    );
    assert!(err.contains("records 1–"), "{err}");
}

#[test]
fn a_deleted_seal_file_is_reported_not_passed() {
    let mut agent = Agent::dev();
    activity(&agent, 1);
    assert!(agent.stop().success());
    passes(&agent);
    std::fs::remove_file(agent.state_dir.join("audit.seals")).unwrap();
    let (v, err) = fails(&agent);
    assert!(
        err.contains("seal file") && err.contains("is missing"),
        "{err}"
    );
    assert_eq!(v["problems"][0]["kind"], "seals_missing", "{v}");
}

/// Cut while the agent was down, then started again: the agent goes on from its sealed record,
/// so the gap stays in the chain, and says so at start.
#[test]
fn a_log_cut_while_the_agent_was_down_stays_evident_after_a_restart() {
    let mut agent = Agent::dev();
    activity(&agent, 3);
    assert!(agent.stop().success());
    let last = last_seq(&agent);
    keep_lines(&agent.audit_file, 2);
    agent.restart();
    activity(&agent, 2);
    assert!(agent.stop().success());
    assert!(
        agent
            .stderr()
            .contains(&format!("records 3–{last} are missing")),
        "the agent says it at start:\n{}",
        agent.stderr()
    );
    let out = verify(&agent);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("records 3–{last} are missing")),
        "{}",
        stderr(&out)
    );
}

/// SIGKILL in the middle of load: the seal file may be behind the log but never ahead of it,
/// with either `audit.sync`.
#[test]
fn sigkill_under_load_then_restart_verifies() {
    for sync in ["always", "periodic"] {
        let mut agent = Agent::builder()
            .config(&format!(
                "capability_engine:\n  max_uses: 0\n  max_active_per_uid: 0\nipc:\n  rate_limit_per_uid: 0\naudit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  sync: {sync}\n  seal_interval_seconds: 1\n  max_file_size: 20000\n  max_backup_files: 100\n"
            ))
            .start();
        let id = agent.grant("secret:/load", &["read"]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load: Vec<_> = (0..3)
            .map(|_| {
                let (socket, id, stop) = (agent.socket.clone(), id.clone(), stop.clone());
                std::thread::spawn(move || {
                    let Ok(mut c) = common::RawClient::connect(&socket) else {
                        return;
                    };
                    let line = format!("{}\n", json!({"type":"capability_validate","id":"x","payload":{"capability_id": id}}));
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        use std::io::Write;
                        if c.stream.write_all(line.as_bytes()).is_err() || c.read_quietly().is_none() {
                            return;
                        }
                    }
                })
            })
            .collect();
        let until = Instant::now() + Duration::from_millis(2600);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let child = agent.child.as_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        agent.child = None;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in load {
            t.join().unwrap();
        }
        let v = passes(&agent);
        let sealed = v["seals"]["last"]["seq"].as_u64().unwrap();
        assert!(sealed > 10, "{sync}: interval seals under load: {v}");
        assert!(
            !rotated(&agent).is_empty(),
            "{sync}: the load rotated the log"
        );
        agent.restart();
        activity(&agent, 1);
        assert!(agent.stop().success());
        assert!(
            !agent.stderr().contains("are missing"),
            "{sync}: {}",
            agent.stderr()
        );
        let v = passes(&agent);
        assert_eq!(v["seals"]["last"]["seq"], last_seq(&agent), "{sync}");
    }
}
