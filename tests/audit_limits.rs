//! Bounded audit records against the real agent: an unprivileged uid flooding refusals at full
//! speed cannot erase history, long client-supplied fields are cut with a digest of the whole,
//! and refusals beyond the per-uid budget are summarized, never dropped (at stop too).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, json_out, stderr};
use serde_json::{Value, json};

/// A client for the flood: `python3 flood.py SOCKET REQUEST_FILE SECONDS CONNECTIONS` sends the
/// request line as fast as the agent takes it from each connection (one thread writing, one
/// reading), then prints how many answers of each kind it read.
const FLOOD: &str = r#"
import socket, sys, threading, time
path, reqfile, secs, conns = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
line = open(reqfile, "rb").read()
batch = line * 4
stop = time.monotonic() + secs
totals = {"denied": 0, "rate_limited": 0, "other": 0}
lock = threading.Lock()

def connection():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    seen = {"denied": 0, "rate_limited": 0, "other": 0}
    def reader():
        buf = bytearray()
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
            start = 0
            while True:
                end = buf.find(b"\n", start)
                if end < 0:
                    break
                r = bytes(buf[start:end])
                if b'"status":"denied"' in r:
                    seen["denied"] += 1
                elif b"RATE_LIMITED" in r:
                    seen["rate_limited"] += 1
                else:
                    seen["other"] += 1
                start = end + 1
            del buf[:start]
    t = threading.Thread(target=reader)
    t.start()
    while time.monotonic() < stop:
        try:
            s.sendall(batch)
        except OSError:
            break
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    t.join()
    with lock:
        for k in seen:
            totals[k] += seen[k]

threads = [threading.Thread(target=connection) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(totals["denied"], totals["rate_limited"], totals["other"])
"#;

/// A python3 that another user may run (not one under root's home, as pyenv's shims are).
fn system_python() -> &'static str {
    ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3")
}

/// A `capability_request` envelope as one line.
fn request_line(id: &str, resource: &str, identity: &str, actions: &[String]) -> String {
    let env = json!({"version":"1.0","type":"capability_request","id":id,
                     "payload":{"resource":resource,"identity":identity,"actions":actions}});
    format!("{env}\n")
}

/// The largest denied `capability_request` the agent takes (within `ipc.max_request_bytes`,
/// 64 KiB by default, and the default `requests` limits): as many actions, as long, as it
/// accepts, with a long resource and label and a request id longer than `audit.max_field_bytes`.
/// Found by asking (as root, who is denied this resource too) and shrinking until the answer
/// is `denied`.
fn largest_denied_request(agent: &Agent) -> String {
    let limits = aether_vault_agent::config::RequestLimits::default();
    let mut c = agent.client();
    for (count, scale) in [
        (32, 1.0),
        (32, 0.5),
        (16, 1.0),
        (16, 0.25),
        (8, 0.5),
        (4, 0.1),
    ] {
        let long =
            |n: f64, most: usize, c: char| c.to_string().repeat(((n * scale) as usize).min(most));
        let resource = format!(
            "secret:/flood/{}",
            long(980.0, limits.max_resource_len - 14, 'r')
        );
        let identity = long(1000.0, limits.max_identity_len, 'i');
        let id = format!("flood-{}", long(2000.0, usize::MAX, 'q'));
        let count = count.min(limits.max_actions);
        let room = 65536 - 4400 - 120;
        let action_len = (((room / count - 4) as f64 * scale) as usize).min(limits.max_action_len);
        let actions: Vec<String> = (0..count)
            .map(|i| {
                let prefix = format!(
                    "{}{}",
                    (b'a' + (i / 26) as u8) as char,
                    (b'a' + (i % 26) as u8) as char
                );
                format!("{prefix}{}", "x".repeat(action_len.saturating_sub(2)))
            })
            .collect();
        let line = request_line(&id, &resource, &identity, &actions);
        assert!(line.len() <= 65536, "{}", line.len());
        c.send(line.as_bytes());
        let r = c.read().expect("an answer");
        if r["payload"]["status"] == "denied" {
            eprintln!(
                "flood request: {} bytes, {count} actions of {action_len} bytes",
                line.len()
            );
            return line;
        }
        eprintln!(
            "{count} actions of {action_len} bytes not taken: {}",
            r["payload"]
        );
    }
    panic!("no denied request shape found");
}

/// Records of the live rotation set (oldest first) with the byte length of each line.
fn live_records(log: &Path) -> Vec<(Value, usize)> {
    aether_vault_agent::audit::chain::rotation_set(log)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(|l| (serde_json::from_str(l).unwrap(), l.len() + 1))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `audit verify` of a stopped agent's log against its seals (its state directory given, so
/// that the key and the seal file are found): exits 0, the seals were read, the newest one (at
/// stop) is of the last record, and it vouches for exactly the records kept: from the first
/// one on disk.
fn verify_sealed(agent: &Agent) -> Value {
    let out = agent.cli(&[
        "audit",
        "verify",
        agent.audit_file.to_str().unwrap(),
        "--state-dir",
        agent.state_dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_out(&out);
    let seals = &v["seals"];
    assert!(
        seals["checked"] == true && seals["from_seal_file"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(seals["last"]["seq"], v["last_seq"], "sealed at stop: {v}");
    assert_eq!(seals["last"]["kept_from"], v["first_seq"], "{v}");
    v
}

/// What a summary record says it counted.
fn summarized(r: &Value) -> u64 {
    r["summary"]["total"].as_u64().unwrap_or(0)
}

/// The issue's case: with the default configuration (standard mode, a policy in force), uid
/// 65534 floods maximal denied requests from several connections at full speed. The record of a
/// grant made before the flood must still be in the live set and the chain must verify from its
/// first record; and the audit bytes the flood writes a second, times ten minutes, must not even
/// fill one file, so that no rotation, let alone a deletion, could be forced.
#[test]
fn an_unprivileged_flood_of_refusals_erases_no_record() {
    require_root!();
    let policy = json!({"id":"p","rules":[{"id":"root-before","effect":"allow",
        "resources":["secret:/before"],"actions":["read"],"identities":["uid:0"]}]});
    let mut agent = Agent::builder()
        .mode("standard")
        .policy("p.json", &policy.to_string())
        .start();
    let before = agent.grant("secret:/before", &["read"]);
    let line = largest_denied_request(&agent);
    let req = agent.dir.path().join("flood.req");
    std::fs::write(&req, &line).unwrap();
    let script = agent.dir.path().join("flood.py");
    std::fs::write(&script, FLOOD).unwrap();
    let head_before = live_records(&agent.audit_file).last().unwrap().0["seq"]
        .as_u64()
        .unwrap();

    let seconds = 20.0;
    let t0 = Instant::now();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(system_python())
        .arg(&script)
        .arg(&agent.socket)
        .arg(&req)
        .arg(seconds.to_string())
        .arg("4")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let flood = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let counts: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (denied, rate_limited, other) = (counts[0], counts[1], counts[2]);
    eprintln!(
        "flood of {flood:?}: {denied} denied, {rate_limited} RATE_LIMITED, {other} other answers"
    );
    assert!(denied > 1000, "the flood was a flood: {denied} denials");
    assert!(agent.stop().success());

    let records = live_records(&agent.audit_file);
    let first_seq = records[0].0["seq"].as_u64().unwrap();
    let head = records.last().unwrap().0["seq"].as_u64().unwrap();
    let written: usize = records
        .iter()
        .filter(|(r, _)| r["seq"].as_u64().unwrap() > head_before)
        .map(|(_, n)| n)
        .sum();
    let live_flood_records = records
        .iter()
        .filter(|(r, _)| r["seq"].as_u64().unwrap() > head_before)
        .count() as u64;
    // Records rotated away (the old behaviour) are counted at the live ones' average size.
    let rotated_away = (head - head_before).saturating_sub(live_flood_records);
    let written = written as u64 + rotated_away * (written as u64 / live_flood_records.max(1));
    let per_second = written as f64 / flood.as_secs_f64();
    let ten_minutes = per_second * 600.0;
    eprintln!(
        "audit growth during the flood: {written} bytes in {} records, {per_second:.0} bytes/s; \
         ten minutes: {:.1} MiB",
        head - head_before,
        ten_minutes / (1024.0 * 1024.0)
    );

    assert!(
        records
            .iter()
            .any(|(r, _)| r["capability_id"] == before.as_str() && r["outcome"] == "granted"),
        "the grant made before the flood was erased (the live set starts at seq {first_seq})"
    );
    let v = verify_sealed(&agent);
    assert_eq!(v["from_genesis"], true, "nothing rotated away");
    assert!(
        ten_minutes < (100 << 20) as f64,
        "ten minutes of this flood would write {ten_minutes:.0} bytes: more than one 100 MiB file"
    );
    // Nothing was dropped: every refusal the client was answered is on record, one by one or
    // in a summary.
    let on_record: u64 = records
        .iter()
        .filter(|(r, _)| r["identity"]["uid"] == 65534)
        .map(|(r, _)| match r["type"].as_str() {
            Some("refusal_summary") => summarized(r),
            _ => 1,
        })
        .sum();
    assert!(
        on_record >= denied + rate_limited,
        "{on_record} refusals on record, {denied} + {rate_limited} answered"
    );
}

/// Sends each line of a file and reads one answer for each, in lockstep; prints the answers as
/// a JSON array.
const LOCKSTEP: &str = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
out = []
for line in open(sys.argv[2], "rb"):
    s.sendall(line)
    out.append(json.loads(f.readline()))
print(json.dumps(out))
"#;

/// Sends `lines` as uid 65534 from one connection; the answers.
fn as_nobody(agent: &Agent, lines: &[String]) -> Vec<Value> {
    let script = agent.dir.path().join("lockstep.py");
    std::fs::write(&script, LOCKSTEP).unwrap();
    let req = agent.dir.path().join("lockstep.req");
    std::fs::write(&req, lines.concat()).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(system_python())
        .arg(&script)
        .arg(&agent.socket)
        .arg(&req)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn envelope(kind: &str, id: &str, payload: Value) -> String {
    format!(
        "{}\n",
        json!({"version":"1.0","type":kind,"id":id,"payload":payload})
    )
}

/// 20 denied requests, 10 validations of an unknown capability, 5 revocations of one.
fn refusals() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..20 {
        lines.push(envelope(
            "capability_request",
            &format!("req-{i}"),
            json!({"resource":"secret:/x","actions":["read"]}),
        ));
    }
    for i in 0..10 {
        lines.push(envelope(
            "capability_validate",
            &format!("val-{i}"),
            json!({"capability_id":"cap_unknown"}),
        ));
    }
    for i in 0..5 {
        lines.push(envelope(
            "capability_revoke",
            &format!("rev-{i}"),
            json!({"capability_id":"cap_unknown"}),
        ));
    }
    lines
}

/// Beyond its budget a uid's refusals are counted, answered as usual, and written as one
/// `refusal_summary` when the agent stops (before `agent_stop`): every refusal is on record,
/// one by one or counted, with the first and last request id. An administrator's are all
/// recorded one by one.
#[test]
fn refusals_beyond_the_budget_are_summarized_at_stop_and_none_is_lost() {
    require_root!();
    let mut agent = Agent::builder()
        .mode("standard")
        .config("audit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  refusal_budget: 5\n  summary_interval_seconds: 3600\n")
        .start();
    let answers = as_nobody(&agent, &refusals());
    assert_eq!(answers.len(), 35);
    assert!(
        answers[..20]
            .iter()
            .all(|a| a["payload"]["status"] == "denied"),
        "{answers:?}"
    );
    assert!(
        answers[20..30]
            .iter()
            .all(|a| a["payload"]["valid"] == false)
    );
    assert!(
        answers[30..]
            .iter()
            .all(|a| a["payload"]["code"] == "CAP_NOT_FOUND")
    );
    // Root's refusals are never counted.
    let mut c = agent.client();
    for _ in 0..10 {
        let r = c.call(
            "capability_request",
            json!({"resource":"secret:/x","actions":["read"]}),
        );
        assert_eq!(r["payload"]["status"], "denied", "{r}");
    }
    drop(c);
    assert!(
        !agent.audit().iter().any(|r| r["type"] == "refusal_summary"),
        "no summary before the interval ends"
    );
    assert!(agent.stop().success());

    let records = agent.audit();
    let nobody: Vec<&Value> = records
        .iter()
        .filter(|r| r["identity"]["uid"] == 65534)
        .collect();
    let one_by_one: Vec<&str> = nobody
        .iter()
        .filter(|r| r["type"] != "refusal_summary")
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(one_by_one, ["req-0", "req-1", "req-2", "req-3", "req-4"]);
    let summaries: Vec<&&Value> = nobody
        .iter()
        .filter(|r| r["type"] == "refusal_summary")
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let s = &summaries[0]["summary"];
    assert_eq!(s["total"], 30, "{s}");
    assert_eq!(
        s["counts"],
        json!({"capability_request denied": 15, "capability_validation invalid": 10,
               "capability_revocation rejected": 5})
    );
    assert_eq!(
        (
            s["first_request_id"].as_str(),
            s["last_request_id"].as_str()
        ),
        (Some("req-5"), Some("rev-4"))
    );
    assert_eq!(
        (s["budget"].as_u64(), s["period_seconds"].as_u64()),
        (Some(5), Some(3600))
    );
    assert_eq!(summaries[0]["outcome"], "rejected");
    let root_denials = records
        .iter()
        .filter(|r| r["identity"]["uid"] == 0 && r["outcome"] == "denied")
        .count();
    assert_eq!(
        root_denials, 10,
        "an administrator's refusals are all recorded"
    );
    let stop = records.last().unwrap();
    assert_eq!(
        stop["type"], "agent_stop",
        "the summary comes before the stop"
    );
    assert!(
        stop["reason"]
            .as_str()
            .unwrap()
            .contains("1 refusal_summary records written at stop"),
        "{stop}"
    );
    verify_sealed(&agent);
}

/// While the agent runs, each interval's counts are written at its end, and the budget is
/// whole again after it.
#[test]
fn summaries_are_written_every_interval_while_the_agent_runs() {
    require_root!();
    let agent = Agent::builder()
        .mode("standard")
        .config("audit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  refusal_budget: 2\n  summary_interval_seconds: 1\n")
        .start();
    let lines: Vec<String> = refusals().into_iter().take(10).collect();
    as_nobody(&agent, &lines);
    let deadline = Instant::now() + Duration::from_secs(5);
    let summary = loop {
        let found = agent
            .audit()
            .into_iter()
            .find(|r| r["type"] == "refusal_summary");
        if let Some(s) = found {
            break s;
        }
        assert!(Instant::now() < deadline, "no summary within 5 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The 10 requests may straddle an interval's end: two budgets may have been spent.
    let total = summary["summary"]["total"].as_u64().unwrap();
    assert!((6..=8).contains(&total), "{summary}");
    std::thread::sleep(Duration::from_millis(1100));
    // A new interval: the budget is whole again.
    let answers = as_nobody(&agent, &lines[..1]);
    assert_eq!(answers[0]["payload"]["status"], "denied");
    let last = agent.audit().into_iter().last().unwrap();
    assert_eq!(last["request_id"], "req-0", "{last}");
    assert_eq!(last["identity"]["uid"], 65534);
}

/// A long client-supplied value is cut in its record, with its length and SHA-256; the
/// record stays within `audit.max_record_bytes` and the chain verifies. (The request limits
/// keep most fields short — a capability id is at most 64 bytes — but not a request id, which
/// only `ipc.max_request_bytes` bounds.)
#[test]
fn a_long_value_is_cut_in_its_record_with_a_digest_of_the_whole() {
    use sha2::Digest;
    let mut agent = Agent::dev();
    let id = format!("cap_{}", "0".repeat(32));
    let rid = "r".repeat(10_000);
    let mut c = agent.client();
    c.send(envelope("capability_validate", &rid, json!({"capability_id": id})).as_bytes());
    let r = c.read().unwrap();
    assert_eq!(r["payload"]["valid"], false, "{r}");
    drop(c);
    assert!(agent.stop().success());
    let text = std::fs::read_to_string(&agent.audit_file).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("capability_validation"))
        .unwrap();
    assert!(line.len() <= 8192 + 200, "{} bytes", line.len());
    let rec: Value = serde_json::from_str(line).unwrap();
    let digest = |s: &str| hex::encode(sha2::Sha256::digest(s.as_bytes()));
    assert_eq!(rec["capability_id"], id.as_str(), "a short value is whole");
    let kept = rec["request_id"].as_str().unwrap();
    assert!(
        kept.split('…').next() == Some("r".repeat(1024).as_str())
            && kept.ends_with(&format!(
                "…[cut: {} bytes, sha256:{}]",
                rid.len(),
                digest(&rid)
            )),
        "{kept}"
    );
    verify_sealed(&agent);
}

/// Rotation keeps rotated files beyond `audit.max_backup_files` while they are younger than
/// `audit.min_retention_days` (7 by default): the chain still starts at its first record. With
/// `min_retention_days: 0` the count alone decides, as before.
#[test]
fn rotation_deletes_no_file_younger_than_the_retention_age() {
    for (retention, kept_from_genesis) in [("", true), ("  min_retention_days: 0\n", false)] {
        let mut agent = Agent::builder()
            .config(&format!(
                "audit:\n  enable: true\n  log_file: /overridden/by/flag.log\n  max_file_size: 2000\n  max_backup_files: 2\n{retention}"
            ))
            .start();
        let mut c = agent.client();
        for i in 0..40 {
            let r = c.call(
                "capability_request",
                json!({"resource": format!("secret:/r{i}"), "actions": ["read"]}),
            );
            assert_eq!(r["payload"]["status"], "granted", "{r}");
        }
        drop(c);
        assert!(agent.stop().success());
        let files = aether_vault_agent::audit::chain::rotation_set(&agent.audit_file);
        let v = verify_sealed(&agent);
        assert_eq!(v["from_genesis"], kept_from_genesis, "{retention:?}: {v}");
        if kept_from_genesis {
            assert!(files.len() > 3, "kept past the count: {files:?}");
        } else {
            assert_eq!(files.len(), 3, "two rotated files and the log: {files:?}");
        }
    }
}
