//! Crash safety: the real agent under concurrent grant, validate and revoke traffic is killed
//! with SIGKILL at random moments and restarted, 20 rounds. In every round, against what the
//! clients were told before the kill:
//! - every capability whose grant reached a client is still there and valid (not expired here);
//! - every revocation that reached a client is still in force;
//! - no use count went backwards;
//!
//! At the end the audit log's hash chain verifies across all the crashes, and against the
//! agent's seals. All of this runs once with `audit.sync: always` and once with `periodic`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Agent, RawClient};
use serde_json::{Value, json};

const ROUNDS: usize = 20;

#[derive(Debug, Default, Clone)]
struct Known {
    revoked: bool,
    used: u64,
}

/// A tiny deterministic PRNG (xorshift), seeded per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One request that tolerates the agent dying: `None` when no answer came.
fn try_call(c: &mut RawClient, kind: &str, payload: Value) -> Option<Value> {
    let line = format!("{}\n", json!({"type": kind, "id": "x", "payload": payload}));
    c.stream.write_all(line.as_bytes()).ok()?;
    c.read_quietly()
}

fn traffic(path: std::path::PathBuf, known: Arc<Mutex<HashMap<String, Known>>>, seed: u64) {
    let Ok(mut c) = RawClient::connect(&path) else {
        return;
    };
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<String> = Vec::new();
    loop {
        match rng.next() % 4 {
            0 | 1 => {
                let Some(r) = try_call(
                    &mut c,
                    "capability_request",
                    json!({"resource":"secret:/crash","actions":["read"],"ttl":3600,"maxUses":100000}),
                ) else {
                    return;
                };
                if r["payload"]["status"] == "granted" {
                    let id = r["payload"]["capability"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    known.lock().unwrap().insert(id.clone(), Known::default());
                    mine.push(id);
                }
            }
            2 if !mine.is_empty() => {
                let id = mine[(rng.next() as usize) % mine.len()].clone();
                let Some(r) = try_call(&mut c, "capability_validate", json!({"capability_id": id}))
                else {
                    return;
                };
                if r["payload"]["valid"] == true {
                    let used = 100000 - r["payload"]["remainingUses"].as_u64().unwrap();
                    let mut k = known.lock().unwrap();
                    let e = k.entry(id).or_default();
                    e.used = e.used.max(used);
                }
            }
            3 if !mine.is_empty() => {
                let id = mine[(rng.next() as usize) % mine.len()].clone();
                let Some(r) = try_call(
                    &mut c,
                    "capability_revoke",
                    json!({"capability_id": id.clone()}),
                ) else {
                    return;
                };
                if r["payload"]["status"] == "revoked" {
                    known.lock().unwrap().entry(id).or_default().revoked = true;
                }
            }
            _ => {}
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_that_was_acknowledged() {
    crash_rounds("audit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  sync: always\n");
}

/// The same with `audit.sync: periodic`: grants, revocations and counted uses are still synced
/// before their answers, while refusals and invalid validations are only written; records from
/// the event loop and from the writer thread interleave on one chain, which must survive every
/// kill.
#[test]
fn sigkill_with_periodic_audit_sync_loses_nothing_that_was_acknowledged() {
    crash_rounds("audit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  sync: periodic\n");
}

fn crash_rounds(extra_config: &str) {
    // No configured cap on uses, so each capability's own limit (100000) is the one in force.
    let mut agent = Agent::builder()
        // Per-uid limits are hostile.rs's and exhaustion.rs's subject; here one uid grants as
        // fast as it can, and every capability it revoked stays listable (the retention quota
        // would otherwise forget the oldest revoked ones, by design, once there are 1000).
        .config(&format!(
            "capability_engine:\n  max_uses: 0\n  max_active_per_uid: 0\n  max_retained_per_uid: 1000000\nipc:\n  rate_limit_per_uid: 0\n{extra_config}"
        ))
        .start();
    let known: Arc<Mutex<HashMap<String, Known>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut rng = Rng(0x9e3779b97f4a7c15 ^ std::process::id() as u64);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let (path, known) = (agent.socket.clone(), known.clone());
                let seed = rng.next() ^ i;
                std::thread::spawn(move || traffic(path, known, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 250));
        let child = agent.child.as_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        agent.child = None;
        for c in clients {
            c.join().unwrap();
        }
        agent.restart();

        let mut held: HashMap<String, Value> = HashMap::new();
        let mut lister = agent.client();
        loop {
            let page = lister.call(
                "capability_list",
                json!({"filter": {"limit": 1000, "offset": held.len()}}),
            );
            let caps = page["payload"]["capabilities"].as_array().unwrap().clone();
            let total = page["payload"]["total"].as_u64().unwrap() as usize;
            for c in caps {
                held.insert(c["id"].as_str().unwrap().to_string(), c);
            }
            if held.len() >= total {
                break;
            }
        }
        let k = known.lock().unwrap();
        for (id, want) in k.iter() {
            let got = held
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged grant {id} was lost"));
            let status = got["status"].as_str().unwrap();
            if want.revoked {
                assert_eq!(
                    status, "revoked",
                    "round {round}: acknowledged revocation of {id} was lost"
                );
            } else {
                // It may have been revoked by a request whose answer was cut off; never expired.
                assert!(
                    status == "active" || status == "revoked",
                    "round {round}: {id} is {status}"
                );
            }
            let used = got["usedCount"].as_u64().unwrap();
            assert!(
                used >= want.used,
                "round {round}: {id} use count went back from {} to {used}",
                want.used
            );
        }
        eprintln!(
            "round {round}: {} acknowledged capabilities intact",
            k.len()
        );
    }
    // A sample of the unrevoked ones still validates.
    let mut c = agent.client();
    let k = known.lock().unwrap().clone();
    let mut checked = 0;
    for (id, want) in k.iter().filter(|(_, w)| !w.revoked).take(50) {
        let r = c.call("capability_validate", json!({"capability_id": id}));
        if r["payload"]["valid"] != true {
            // Only a revocation whose answer was lost may explain an invalid one.
            assert_eq!(
                r["payload"]["errors"][0]["code"], "REVOKED",
                "{id} {want:?}: {r}"
            );
        }
        checked += 1;
    }
    assert!(
        k.len() > 50 && checked > 0,
        "the test must exercise enough traffic: {} grants",
        k.len()
    );
    drop(c);
    assert!(agent.stop().success());
    // Held to the agent's seals too: a seal is written only after the records it covers are
    // on disk, so after any kill the seal file may be behind the log, never ahead of it.
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        "--state-dir",
        agent.state_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the audit chain survived every crash: {}",
        common::stderr(&out)
    );
    assert!(
        common::stdout(&out).contains("Sealed:"),
        "{}",
        common::stdout(&out)
    );
    eprintln!(
        "{ROUNDS} crash rounds, {} capabilities, in {:?}",
        k.len(),
        started.elapsed()
    );
}

/// `audit.sync: periodic` answers a validation once its record is written to the log file,
/// before it is synced: killing the agent right after the answers must lose none of those
/// records (they are in the kernel's hands), and the chain must verify. The sync interval is
/// long, so no sync happens before the kill.
#[test]
fn periodic_sync_keeps_every_answered_record_through_sigkill() {
    let me = nix::unistd::getuid().as_raw();
    let policy = json!({"id":"p","rules":[{"id":"read-periodic","effect":"allow",
        "resources":["secret:/periodic"],"actions":["read"],"identities":[format!("uid:{me}")]}]});
    let mut agent = Agent::builder()
        .mode("standard")
        .policy("p.json", &policy.to_string())
        // Unlimited uses: a validation then changes nothing durable, so it is not synced.
        .config("capability_engine:\n  max_uses: 0\naudit:\n  enable: true\n  log_file: /nonexistent/overridden-by-flag.log\n  sync: periodic\n  sync_interval_ms: 1000\n")
        .start();
    let id = agent.grant("secret:/periodic", &["read"]);
    let mut c = agent.client();
    let st = c.call("agent_status", serde_json::Value::Null);
    assert_eq!(st["payload"]["detail"]["audit_sync"], "periodic", "{st}");
    const N: usize = 300;
    for i in 0..N {
        let r = c.call("capability_validate", json!({"capability_id": id}));
        assert_eq!(r["payload"]["valid"], true, "validation {i}: {r}");
    }
    let denied = c.call(
        "capability_request",
        json!({"resource": "secret:/not-in-any-policy", "actions": ["write"]}),
    );
    assert_eq!(denied["payload"]["status"], "denied", "{denied}");
    let child = agent.child.as_mut().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    agent.child = None;
    let records = agent.audit();
    let validations = records
        .iter()
        .filter(|r| r["type"] == "capability_validation" && r["capability_id"] == id.as_str())
        .count();
    assert_eq!(validations, N, "every answered validation is on record");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "capability_request" && r["outcome"] == "denied"),
        "the refusal answered last is on record"
    );
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        "--state-dir",
        agent.state_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    agent.restart();
    assert_eq!(
        agent
            .client()
            .call("capability_validate", json!({"capability_id": id}))["payload"]["valid"],
        true,
        "the grant (synced before its answer) survived"
    );
}
