//! The audit trail against the real agent: a hash chain that `audit verify` checks across
//! restarts, tampering it names, `audit tail`, and a full disk that refuses requests until space
//! comes back.

mod common;

use std::io::Write;
use std::process::Command;
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

fn verify(agent: &Agent, file: &std::path::Path) -> std::process::Output {
    agent.cli(&["audit", "verify", file.to_str().unwrap()])
}

#[test]
fn the_chain_verifies_across_restarts_and_names_tampered_records() {
    let mut agent = Agent::dev();
    activity(&agent, 5);
    assert!(agent.stop().success());
    agent.restart();
    activity(&agent, 2);
    assert!(agent.stop().success());

    let records = agent.audit();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=records.len() as u64).collect::<Vec<_>>(),
        "one chain across the restart"
    );
    let out = verify(&agent, &agent.audit_file);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{} records", records.len())),
        "{}",
        stdout(&out)
    );

    let text = std::fs::read_to_string(&agent.audit_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // One byte changed in the middle of record 6.
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[5] = tampered[5].replacen("secret:/", "secret:%", 1);
    std::fs::write(&agent.audit_file, tampered.join("\n") + "\n").unwrap();
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(
        (v["line"].clone(), v["seq"].clone()),
        (json!(6), json!(6)),
        "{v}"
    );
    assert!(stderr(&out).contains(":6: record 6"), "{}", stderr(&out));
    // One line deleted.
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(3);
    std::fs::write(&agent.audit_file, deleted.join("\n") + "\n").unwrap();
    let out = verify(&agent, &agent.audit_file);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(":4: record 5"), "{}", stderr(&out));
}

#[test]
fn a_rotated_set_verifies_whole() {
    let mut agent = Agent::dev();
    activity(&agent, 3);
    assert!(agent.stop().success());
    let backup = agent.audit_file.with_extension("log.1");
    std::fs::rename(&agent.audit_file, &backup).unwrap();
    agent.restart();
    activity(&agent, 1);
    assert!(agent.stop().success());
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["from_genesis"], true);
    assert_eq!(v["files"].as_array().unwrap().len(), 2);
    // The new file alone starts mid-chain, which is fine, and said.
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "given newest first, the chain is out of order"
    );
}

#[test]
fn tail_shows_records_for_people_and_filters() {
    let agent = Agent::dev();
    activity(&agent, 2);
    let file = agent.audit_file.to_str().unwrap().to_string();
    let out = agent.cli(&[
        "audit",
        "tail",
        "--file",
        &file,
        "--type",
        "capability_request",
    ]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains("capability_request granted uid=")),
        "{text}"
    );
    let out = agent.cli(&[
        "audit", "tail", "--file", &file, "-n", "1", "--format", "json",
    ]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v["hash"].as_str().unwrap().len() == 64);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts a 64 KiB tmpfs at `base/name` (as root); `None` if this machine cannot.
    fn mount(base: &std::path::Path, name: &str, extra: &str) -> Option<SmallDisk> {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let opts = format!("size=64k{extra}");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here");
            return None;
        }
        Some(SmallDisk(dir))
    }

    /// Fills the disk with a file (returned, to free the space later).
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[b'x'; 4096]).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

/// An agent whose audit log is on a fresh 64 KiB tmpfs under `base`, started with the YAML
/// `config` (none if empty); `None` when this machine cannot mount one (the test is skipped).
fn agent_with_audit_on_small_disk(
    base: &std::path::Path,
    config: &str,
) -> Option<(SmallDisk, Agent)> {
    // A tmpfs root is 1777 by default; the agent refuses an audit directory others can write.
    let disk = SmallDisk::mount(base, "small", ",mode=0750")?;
    let mut builder = Agent::builder().audit_file(&disk.0.join("audit.log"));
    if !config.is_empty() {
        builder = builder.config(config);
    }
    Some((disk, builder.start()))
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_requests_and_service_comes_back_by_itself() {
    require_root!();
    let base = tempfile::tempdir().unwrap();
    let Some((disk, mut agent)) = agent_with_audit_on_small_disk(base.path(), "") else {
        return;
    };
    let mut c = agent.client();
    let before = c.call(
        "capability_request",
        json!({"resource": "secret:/a", "actions": ["read"]}),
    );
    assert_eq!(before["payload"]["status"], "granted", "{before}");
    let early = before["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Fill the disk.
    let filler = disk.fill();

    // The log's last page may still hold a few records; then writes fail.
    let mut granted = vec![early.clone()];
    let mut refused = None;
    for i in 0..64 {
        let r = c.call(
            "capability_request",
            json!({"resource": format!("secret:/b{i}"), "actions": ["read"]}),
        );
        match r["payload"]["status"].as_str() {
            Some("granted") => granted.push(
                r["payload"]["capability"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.expect("a full disk must refuse requests");
    let st = c.call("agent_status", Value::Null);
    assert_eq!(st["payload"]["audit_healthy"], false, "{st}");
    assert!(
        st["payload"]["detail"]["audit_last_error"]
            .as_str()
            .unwrap()
            .contains("No space"),
        "{st}"
    );
    assert_eq!(r["payload"]["status"], "error", "{r}");
    assert_eq!(r["payload"]["code"], "AUDIT_UNAVAILABLE");
    assert!(r["payload"]["capability"].is_null());
    let r = c.call("capability_validate", json!({"capability_id": early}));
    assert_eq!(r["payload"]["code"], "AUDIT_UNAVAILABLE", "{r}");
    // Nothing was granted unaudited: exactly the grants that were answered as granted exist.
    let l = c.call("capability_list", json!({}));
    let mut ids: Vec<String> = l["payload"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    granted.sort();
    assert_eq!(ids, granted);

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.call(
            "capability_request",
            json!({"resource": "secret:/c", "actions": ["read"]}),
        );
        if r["payload"]["status"] == "granted" {
            break;
        }
        assert!(Instant::now() < deadline, "service did not come back: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        c.call("status_request", Value::Null)["payload"]["audit_healthy"],
        true
    );
    drop(c);
    assert!(agent.stop().success());
    let out = agent.cli(&["audit", "verify", agent.audit_file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the chain survived the full disk: {}",
        stderr(&out)
    );
}

#[test]
fn failure_action_halt_exits_non_zero() {
    require_root!();
    let base = tempfile::tempdir().unwrap();
    let config = "audit:\n  failure_action: halt\n";
    let Some((disk, mut agent)) = agent_with_audit_on_small_disk(base.path(), config) else {
        return;
    };
    disk.fill();
    let mut c = agent.client();
    for i in 0..64 {
        let line = format!(
            "{}\n",
            json!({"type":"capability_request","payload":{"resource":format!("svc:/r{i}"),"actions":["read"]}})
        );
        if c.stream.write_all(line.as_bytes()).is_err() || c.read_quietly().is_none() {
            break;
        }
    }
    let status = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(1),
        "halt exits non-zero so systemd restarts the agent"
    );
}

#[test]
fn logrotate_rename_then_sighup_and_size_rotation_keep_one_verifiable_chain() {
    let agent = Agent::builder()
        .config("audit:\n  max_file_size: 4000\n  max_backup_files: 50\n")
        .start();
    activity(&agent, 10);
    let rotated: Vec<_> = std::fs::read_dir(agent.audit_file.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert!(rotated.len() > 2, "size rotation made backups: {rotated:?}");
    // logrotate without copytruncate: move the file away, then SIGHUP.
    let mut moved = agent.audit_file.as_os_str().to_owned();
    moved.push(".0");
    let moved = std::path::PathBuf::from(moved);
    std::fs::rename(&agent.audit_file, &moved).unwrap();
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.audit_file.exists() {
        activity(&agent, 1);
        assert!(Instant::now() < deadline, "no new audit file after SIGHUP");
    }
    activity(&agent, 2);
    // The moved file sits between the numbered backups and the new file in the chain.
    let mut files = common::audit_set_without(&agent.audit_file, &moved);
    let live = files.pop().unwrap();
    files.push(moved);
    files.push(live);
    let args: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut argv = vec!["audit", "verify"];
    argv.extend(args.iter().map(String::as_str));
    let out = agent.cli(&argv);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_revocation_refused_for_a_full_disk_is_durable_once_retried() {
    require_root!();
    let base = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(base.path(), "state", ",mode=0700") else {
        return;
    };
    let state = disk.0.clone();
    let mut agent = Agent::builder().state_dir(&state).start();
    let id = agent.grant("secret:/r", &["read"]);
    let filler = disk.fill();
    let mut c = agent.client();
    // The store's last page may still hold a few records: use it up with grants first.
    let full = (0..64).any(|i| {
        let r = c.call(
            "capability_request",
            json!({"resource": format!("secret:/fill{i}"), "actions": ["read"]}),
        );
        r["payload"]["code"] == "STORE_UNAVAILABLE"
    });
    assert!(full, "the store must fill up");
    let r = c.call("capability_revoke", json!({"capability_id": id}));
    assert_eq!(r["payload"]["code"], "STORE_UNAVAILABLE", "{r}");
    std::fs::remove_file(&filler).unwrap();
    let r = c.call("capability_revoke", json!({"capability_id": id}));
    assert_eq!(r["payload"]["status"], "revoked", "{r}");
    drop(c);
    assert!(agent.stop().success());
    agent.restart();
    let v = agent
        .client()
        .call("capability_validate", json!({"capability_id": id}));
    assert_eq!(
        v["payload"]["errors"][0]["code"], "REVOKED",
        "the acknowledged revocation survived: {v}"
    );
}

/// `audit.sync: periodic` on a full disk: validations (whose records are written, not waited
/// for) are refused once a record cannot be written, every validation answered `valid` has its
/// record in the log, and service comes back by itself once there is room.
#[test]
fn periodic_sync_on_a_full_disk_answers_nothing_without_its_record() {
    require_root!();
    let base = tempfile::tempdir().unwrap();
    let config = "capability_engine:\n  max_uses: 0\naudit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  sync: periodic\n";
    let Some((disk, mut agent)) = agent_with_audit_on_small_disk(base.path(), config) else {
        return;
    };
    let id = agent.grant("secret:/periodic", &["read"]);
    let mut c = agent.client();
    let filler = disk.fill();
    let mut valid = 0;
    let mut refused = None;
    for _ in 0..2000 {
        let r = c.call("capability_validate", json!({"capability_id": id}));
        if r["payload"]["valid"] == true {
            valid += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a full disk must refuse validations");
    eprintln!("{valid} validations answered valid before the disk refused");
    assert_eq!(r["payload"]["code"], "AUDIT_UNAVAILABLE", "{r}");
    assert_eq!(
        c.call("agent_status", Value::Null)["payload"]["audit_healthy"],
        false
    );
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.call("capability_validate", json!({"capability_id": id}));
        if r["payload"]["valid"] == true {
            valid += 1;
            break;
        }
        assert!(Instant::now() < deadline, "service did not come back: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(c);
    assert!(agent.stop().success());
    let on_record = agent
        .audit()
        .iter()
        .filter(|r| {
            r["type"] == "capability_validation"
                && r["outcome"] == "valid"
                && r["capability_id"] == id.as_str()
        })
        .count();
    assert_eq!(
        on_record, valid,
        "every validation answered valid is on record, no more"
    );
    let out = agent.cli(&["audit", "verify", agent.audit_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
