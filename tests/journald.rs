//! Operational logs reach a real journald with their structured fields: journald is started by
//! hand in a private mount namespace (its own tmpfs /run and /var/log/journal, so the machine's
//! are untouched), the agent logs to it, and `journalctl -o json` reads the fields back. Logs on
//! a piped stderr carry no colour codes.

mod common;

use std::process::Command;

use serde_json::Value;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

const SCRIPT: &str = r#"
set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || true
mkdir -p /run/systemd/journal
"$JOURNALD" >"$DIR/journald.log" 2>&1 &
JPID=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
mkdir -p "$DIR/pol"
printf 'id: journal\nrules:\n  - id: r\n    effect: allow\n    resources: ["secret:/journal"]\n    actions: [read]\n    identities: ["uid:0"]\n' >"$DIR/pol/journal.yaml"
"$AGENT" --mode development --log-target journald --log-level debug --socket-path "$DIR/j.sock" \
  --state-dir "$DIR/state" --policy-dir "$DIR/pol" --audit-file "$DIR/audit.log" &
APID=$!
for i in $(seq 200); do "$CLI" capability status --socket-path "$DIR/j.sock" >/dev/null 2>&1 && break; sleep 0.05; done
"$CLI" capability request --resource secret:/journal --action read --format json --socket-path "$DIR/j.sock" >"$DIR/grant.json"
"$CLI" capability request --resource secret:/journal --action read --ttl 999999 --format json --socket-path "$DIR/j.sock" >"$DIR/deny.json" || true
"$CLI" capability revoke "$(jq -r .capability.id "$DIR/grant.json")" --reason "$(printf 'done\nERROR forged')" --socket-path "$DIR/j.sock" >/dev/null
kill $APID; wait $APID || true
sleep 0.3
journalctl --no-pager -o json SYSLOG_IDENTIFIER=aether-vault-agent >"$DIR/journal.json"
kill $JPID
"#;

#[test]
fn decisions_reach_journald_with_structured_fields_and_no_secrets() {
    require_root!();
    if !std::path::Path::new(JOURNALD).exists() {
        eprintln!("SKIPPED: {JOURNALD} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", SCRIPT])
        .env("DIR", dir.path())
        .env("AGENT", common::AGENT)
        .env("CLI", common::CLI)
        .env("JOURNALD", JOURNALD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let grant: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("grant.json")).unwrap()).unwrap();
    let cap_id = grant["capability"]["id"].as_str().unwrap();
    let signature = grant["capability"]["signature"].as_str().unwrap();
    let journal = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
    assert!(
        !journal.contains(signature),
        "signatures never appear in any log"
    );
    let entries: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |outcome: &str| {
        entries
            .iter()
            .find(|e| e["AV_EVENT"] == "capability_request" && e["AV_OUTCOME"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} capability_request entry in:\n{journal}"))
            .clone()
    };
    let granted = find("granted");
    assert_eq!(
        granted["MESSAGE_ID"],
        aether_vault_agent::oplog::message_id(
            aether_vault_agent::audit::EventType::CapabilityRequest
        )
    );
    assert_eq!(granted["AV_CAPABILITY_ID"], cap_id);
    assert_eq!(granted["AV_RESOURCE"], "secret:/journal");
    assert_eq!(granted["AV_UID"], "0");
    assert!(
        granted["AV_PID"]
            .as_str()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    );
    assert_eq!(granted["AV_POLICY_GENERATION"], "1");
    assert_eq!(granted["PRIORITY"], "6", "a grant is informational");
    let denied = find("denied");
    assert_eq!(denied["PRIORITY"], "5", "a denial is a notice");
    assert_eq!(denied["AV_DECISION"], "denied");
    assert!(entries.iter().any(|e| e["AV_EVENT"] == "agent_start"));
    // What the stderr line says (directory, counts) is in the entry's MESSAGE, which is what
    // `journalctl -u` shows, and in fields of its own.
    let policy = entries
        .iter()
        .find(|e| {
            e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.starts_with("policy set in force"))
        })
        .unwrap_or_else(|| panic!("no policy load entry in:\n{journal}"));
    let pol_dir = dir.path().join("pol");
    let message = policy["MESSAGE"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "policy set in force directory={} generation=1 files=1 rules=1 fallback=",
            pol_dir.display()
        )),
        "{message}"
    );
    assert_eq!(policy["FILES"], "1");
    assert_eq!(policy["RULES"], "1");
    assert_eq!(policy["DIRECTORY"], pol_dir.display().to_string());
    // A client's text (here a revocation's reason) cannot add a line to an entry.
    let revoked = entries
        .iter()
        .find(|e| e["AV_EVENT"] == "capability_revocation")
        .unwrap_or_else(|| panic!("no capability_revocation entry in:\n{journal}"));
    let message = revoked["MESSAGE"].as_str().unwrap();
    assert!(
        message.contains("done\\u{a}ERROR forged") && !message.contains('\n'),
        "{message:?}"
    );
}

const SEAL_SCRIPT: &str = r#"
set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || true
mkdir -p /run/systemd/journal
"$JOURNALD" >"$DIR/journald.log" 2>&1 &
JPID=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
# Hardened mode logs at warn: seals reach the journal all the same.
"$AGENT" --mode hardened --log-target journald --socket-path "$DIR/j.sock" \
  --state-dir "$DIR/state" --policy-dir "$DIR/pol" --audit-file "$DIR/log/audit.log" &
APID=$!
for i in $(seq 200); do "$CLI" capability status --socket-path "$DIR/j.sock" >/dev/null 2>&1 && break; sleep 0.05; done
for i in 1 2 3; do
  "$CLI" capability request --resource secret:/journal --action read --socket-path "$DIR/j.sock" >/dev/null 2>&1 || true
done
kill $APID; wait $APID || true
sleep 0.3
printf 'state_dir: %s\naudit:\n  log_file: %s\n' "$DIR/state" "$DIR/log/audit.log" >"$DIR/verify.yaml"
verify() {
  rc=0
  "$CLI" audit verify --config "$DIR/verify.yaml" --format json >"$DIR/$1.json" 2>"$DIR/$1.err" || rc=$?
  echo $rc >"$DIR/$1.rc"
}
verify healthy
# Anyone may log with any MESSAGE_ID: a forged seal claiming far more records is ignored.
LOG="$(realpath "$DIR/log")/audit.log"
printf 'MESSAGE_ID=%s\nAV_SEAL_LOG=%s\nAV_SEAL={"files":[1],"hash":"%s","log":"%s","n":0,"reason":"stop","seq":999,"sig":"AAAA","start":"x","time":"2026-01-01T00:00:00Z","v":1}\nMESSAGE=forged\n' \
  "$SEAL_ID" "$LOG" "$(printf 'f%.0s' $(seq 64))" "$LOG" | logger --journald
sleep 0.3
verify forged
# Cut the tail and delete the seal file: the journal still holds the seals.
head -n 1 "$DIR/log/audit.log" >"$DIR/cut" && cat "$DIR/cut" >"$DIR/log/audit.log"
rm "$DIR/state/audit.seals"
verify cut
journalctl --no-pager -o json MESSAGE_ID="$SEAL_ID" >"$DIR/seals.json"
kill $JPID
"#;

#[test]
fn seals_reach_journald_and_verify_reads_them_back_when_the_seal_file_is_gone() {
    require_root!();
    if !std::path::Path::new(JOURNALD).exists() {
        eprintln!("SKIPPED: {JOURNALD} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            SEAL_SCRIPT,
        ])
        .env("DIR", dir.path())
        .env("AGENT", common::AGENT)
        .env("CLI", common::CLI)
        .env("JOURNALD", JOURNALD)
        .env("SEAL_ID", aether_vault_agent::oplog::AUDIT_SEAL_MESSAGE_ID)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let entries: Vec<Value> = read("seals.json")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Value| e["AV_SEAL_SEQ"].is_string())
        .collect();
    let reasons: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["AV_SEAL_REASON"].as_str())
        .collect();
    assert!(
        reasons.contains(&"start") && reasons.contains(&"stop"),
        "seals in the journal: {reasons:?}"
    );
    let stop = entries
        .iter()
        .find(|e| e["AV_SEAL_REASON"] == "stop")
        .unwrap();
    assert_eq!(stop["PRIORITY"], "5", "a notice, at info level");
    assert_eq!(stop["AV_SEAL_HASH"].as_str().unwrap().len(), 64);
    assert!(stop["AV_SEAL_SIGNATURE"].as_str().unwrap().len() > 80);
    let sealed: u64 = stop["AV_SEAL_SEQ"].as_str().unwrap().parse().unwrap();
    assert!(sealed >= 4, "{stop}");

    let report = |name: &str| {
        let rc = read(&format!("{name}.rc"));
        let json: Value = serde_json::from_str(&read(&format!("{name}.json"))).unwrap_or_default();
        (rc.trim().to_string(), json, read(&format!("{name}.err")))
    };
    let (rc, v, err) = report("healthy");
    assert_eq!(rc, "0", "{v}\n{err}");
    assert!(v["seals"]["from_journal"].as_u64().unwrap() >= 2, "{v}");
    let (rc, v, err) = report("forged");
    assert_eq!(rc, "0", "a forged seal is ignored: {v}\n{err}");
    assert_eq!(v["seals"]["rejected"], 1, "{v}");
    let (rc, v, err) = report("cut");
    assert_eq!(rc, "1", "{v}\n{err}");
    assert!(
        err.contains("seal file") && err.contains("is missing"),
        "{err}"
    );
    assert!(
        err.contains(&format!("records 2–{sealed} are missing")),
        "the journal's seals name the cut: {err}"
    );
}

#[test]
fn stderr_logs_carry_no_colour_codes() {
    let agent = common::Agent::builder()
        .arg("--log-level")
        .arg("debug")
        .start();
    let out = agent.cli(&[
        "capability",
        "request",
        "--resource",
        "secret:/colour",
        "--action",
        "read",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let mut agent = agent;
    agent.stop();
    let log = agent.stderr();
    assert!(log.contains("policy set in force"), "{log}");
    assert!(log.contains("capability_request granted"), "{log}");
    assert!(
        !log.contains('\x1b') && !log.contains("\\x1b["),
        "colour codes on a piped stderr:\n{log}"
    );
}
