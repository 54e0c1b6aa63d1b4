//! Reload torture: while clients request in a loop, the policy directory is rewritten hundreds
//! of times — valid sets, syntax errors, truncated files, editor-style write-then-rename,
//! everything deleted, a world-writable file, a symlink out of the directory, unknown fields.
//!
//! Every invalid state contains a file that would allow everything, including
//! `secret:/never`, which no valid set allows. So if any invalid state were ever half-loaded or
//! loaded at all (failing open), `secret:/never` would be granted. The invariant: it never is,
//! and the agent answers every request throughout.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Agent, RawClient};
use serde_json::{Value, json};

const REWRITES: usize = 240;

fn valid(me: u32, variant: usize) -> String {
    json!({"id": "base", "rules": [{"id": "ok", "effect": "allow", "resources": [format!("secret:/ok/{}*", variant % 3)],
        "actions": ["read"], "identities": [format!("uid:{me}")]}]})
    .to_string()
}

fn allow_all(id: &str) -> String {
    json!({"id": id, "rules": [{"id": "everything", "effect": "allow", "resources": ["*"], "actions": ["*"], "identities": ["*"]}]})
        .to_string()
}

/// Puts the directory in an invalid state that contains an allow-everything file, then takes it
/// out again, in an order that never leaves a valid state with the allow-everything file.
fn invalid_episode(dir: &Path, outside: &Path, kind: usize, hold: Duration) {
    let evil = dir.join("50-evil.json");
    match kind % 5 {
        0 => {
            // A syntax error next to a complete allow-everything file.
            std::fs::write(
                dir.join("60-broken.json"),
                "{\"id\": \"broken\", \"rules\": [",
            )
            .unwrap();
            std::fs::write(&evil, allow_all("evil")).unwrap();
            std::thread::sleep(hold);
            std::fs::remove_file(&evil).unwrap();
            std::fs::remove_file(dir.join("60-broken.json")).unwrap();
        }
        1 => {
            // A truncated allow-everything file.
            let full = allow_all("evil");
            std::fs::write(&evil, &full[..full.len() / 2]).unwrap();
            std::thread::sleep(hold);
            std::fs::remove_file(&evil).unwrap();
        }
        2 => {
            // A world-writable allow-everything file: staged under a hidden (ignored) name with
            // its final mode, then renamed in, so it never exists in the directory as a valid file.
            let staged = dir.join(".staged");
            std::fs::write(&staged, allow_all("evil")).unwrap();
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o666)).unwrap();
            std::fs::rename(&staged, &evil).unwrap();
            std::thread::sleep(hold);
            std::fs::remove_file(&evil).unwrap();
        }
        3 => {
            // A symlink to an allow-everything file outside the directory.
            std::os::unix::fs::symlink(outside.join("evil.json"), &evil).unwrap();
            std::thread::sleep(hold);
            std::fs::remove_file(&evil).unwrap();
        }
        _ => {
            // An allow-everything file with an unknown field.
            std::fs::write(
                &evil,
                allow_all("evil").replacen("\"rules\"", "\"rulez\":1,\"rules\"", 1),
            )
            .unwrap();
            std::thread::sleep(hold);
            std::fs::remove_file(&evil).unwrap();
        }
    }
}

#[test]
fn rewriting_the_policy_directory_never_grants_what_the_last_good_set_denies() {
    let me = nix::unistd::geteuid().as_raw();
    // The clients hammer the agent from one uid: the per-uid limits (tested in hostile.rs)
    // would answer RATE_LIMITED whenever the disk is fast.
    let agent = Agent::builder()
        .mode("standard")
        .config("ipc:\n  rate_limit_per_uid: 0\ncapability_engine:\n  max_active_per_uid: 0\n")
        .policy("10-base.json", &valid(me, 0))
        .start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.json"), allow_all("evil")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (path, stop, requests) = (agent.socket.clone(), stop.clone(), requests.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = RawClient::connect(&path).map_err(|e| e.to_string())?;
                while !stop.load(Ordering::Relaxed) {
                    for res in ["secret:/never", "secret:/ok/0x", "secret:/ok/1x"] {
                        let r = c.call(
                            "capability_request",
                            json!({"resource": res, "actions": ["read"]}),
                        );
                        let status = r["payload"]["status"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        if r["type"] != "capability_response"
                            || !(status == "granted" || status == "denied")
                        {
                            return Err(format!("agent did not answer properly: {r}"));
                        }
                        if res == "secret:/never" && status == "granted" {
                            return Err(format!("GRANTED secret:/never: {r}"));
                        }
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();

    // Forced reloads race with the writer, so loads also happen mid-rewrite.
    let forced = {
        let (path, stop) = (agent.socket.clone(), stop.clone());
        std::thread::spawn(move || -> Result<usize, String> {
            let mut c = RawClient::connect(&path).map_err(|e| e.to_string())?;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = c.call("agent_reload", Value::Null);
                if r["type"] != "reload_response" {
                    return Err(format!("reload not answered: {r}"));
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(n)
        })
    };
    let dir = agent.policy_dir.clone();
    let start = Instant::now();
    for i in 0..REWRITES {
        match i % 6 {
            0 => std::fs::write(dir.join("10-base.json"), valid(me, i)).unwrap(),
            1 => {
                let tmp = dir.join(".10-base.json.tmp");
                std::fs::write(&tmp, valid(me, i)).unwrap();
                std::fs::rename(&tmp, dir.join("10-base.json")).unwrap();
            }
            2 => {
                // Delete everything: a valid, empty set that denies everything.
                for e in std::fs::read_dir(&dir).unwrap() {
                    std::fs::remove_file(e.unwrap().path()).unwrap();
                }
                std::thread::sleep(Duration::from_millis(5));
                std::fs::write(dir.join("10-base.json"), valid(me, i)).unwrap();
            }
            // Every 8th invalid state lasts past the debounce, so the watcher loads it too.
            _ => invalid_episode(
                &dir,
                outside.path(),
                i,
                Duration::from_millis(if i % 8 == 3 { 300 } else { 3 }),
            ),
        }
        std::thread::sleep(Duration::from_millis(if i % 10 == 0 { 250 } else { 5 }));
    }
    // Settle on a known valid set and check the agent converges to it.
    std::fs::write(dir.join("10-base.json"), valid(me, 1)).unwrap();
    let mut c = agent.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.call(
            "capability_request",
            json!({"resource": "secret:/ok/1x", "actions": ["read"]}),
        );
        if r["payload"]["status"] == "granted" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not converge on the final set: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap().unwrap();
    }
    let forced = forced.join().unwrap().unwrap();
    let reloads: Vec<Value> = agent
        .audit()
        .into_iter()
        .filter(|r| r["type"] == "policy_reload")
        .collect();
    let ok = reloads.iter().filter(|r| r["outcome"] == "success").count();
    let failed = reloads.len() - ok;
    eprintln!(
        "{REWRITES} rewrites in {:?}; {} requests answered; {forced} forced reloads; {ok} reloads succeeded, {failed} failed",
        start.elapsed(),
        requests.load(Ordering::Relaxed)
    );
    assert!(
        ok > 5 && failed > 5,
        "the torture must exercise both outcomes: {ok} ok, {failed} failed"
    );
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
}
