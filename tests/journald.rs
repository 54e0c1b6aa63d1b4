//! Operational logs reach a real journald with their structured fields: journald is started by
//! hand in a private mount namespace (its own tmpfs /run and /var/log/journal, so the machine's
//! are untouched), the agent logs to it, and `journalctl -o json` reads the fields back.

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
