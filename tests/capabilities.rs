//! The capability lifecycle against the real agent: grant terms, signatures, use limits,
//! expiry, revocation, constraints, policy decisions, the development-mode default, and holder
//! binding across users.

mod common;

use std::time::Duration;

use aether_vault_agent::capability::signing::canonical_bytes;
use aether_vault_agent::protocol::types::Capability;
use base64::Engine;
use common::Agent;
use serde_json::{Value, json};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[test]
fn grant_has_upstream_fields_and_a_signature_that_verifies_with_the_status_key() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"identity":"billing","resource":"secret:/db/primary","actions":["read","write"],
               "ttl":120,"maxUses":7,"purpose":"nightly export","context":{"job":"42"},
               "constraints":{"timeWindow":{"hours":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23]}}}),
    );
    let p = &r["payload"];
    assert_eq!(p["status"], "granted", "{r}");
    assert_eq!(p["message"], "Capability granted");
    assert_eq!(p["policyResult"]["decision"], "allow");
    let cap = &p["capability"];
    let id = cap["id"].as_str().unwrap();
    assert!(
        id.starts_with("cap_") && id.len() == 36 && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
    );
    assert_eq!(cap["type"], "write");
    assert_eq!(cap["issuer"], "aether-vault-agent");
    assert_eq!(cap["identity"], "billing");
    assert_eq!(cap["ttl"], 120);
    assert_eq!(cap["maxUses"], 7);
    assert_eq!(cap["usedCount"], 0);
    assert_eq!(cap["metadata"]["purpose"], "nightly export");
    assert_eq!(cap["metadata"]["context"], json!({"job":"42"}));
    assert_eq!(cap["status"], "active");
    assert_eq!(cap["holder"]["uid"], my_uid());
    let issued: jiff::Timestamp = cap["issued_at"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = cap["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - issued).get_seconds(), 120);
    assert!(cap["expires_at"].as_str().unwrap().ends_with('Z'));

    let key = c.call("status_request", Value::Null)["payload"]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&b64(&key).try_into().unwrap()).unwrap();
    let parsed: Capability = serde_json::from_value(cap.clone()).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&b64(&parsed.signature)).unwrap();
    vk.verify_strict(&canonical_bytes(&parsed, my_uid()), &sig)
        .expect("signature verifies with the published key");
    let mut forged = parsed.clone();
    forged.resource = "secret:/other".into();
    assert!(
        vk.verify_strict(&canonical_bytes(&forged, my_uid()), &sig)
            .is_err()
    );
}

#[test]
fn ttl_defaults_to_the_mode_and_above_the_maximum_is_denied_naming_it() {
    let agent = Agent::builder().mode("development").start();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"]}),
    );
    assert_eq!(r["payload"]["capability"]["ttl"], 3600);
    assert_eq!(r["payload"]["capability"]["maxUses"], 100);
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"ttl":7201}),
    );
    assert_eq!(r["payload"]["status"], "denied");
    assert!(
        r["payload"]["message"].as_str().unwrap().contains("7200"),
        "{r}"
    );
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"ttl":7200}),
    );
    assert_eq!(r["payload"]["status"], "granted");
}

#[test]
fn configured_max_uses_zero_means_unlimited() {
    let agent = Agent::builder()
        .config("capability_engine:\n  max_uses: 0\n")
        .start();
    let r = agent.client().call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"]}),
    );
    assert_eq!(r["payload"]["capability"]["maxUses"], 0);
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = agent.client();
    for _ in 0..150 {
        assert_eq!(
            c.call("capability_validate", json!({"capability_id":id}))["payload"]["valid"],
            true
        );
    }
}

#[test]
fn each_successful_validation_uses_one_and_the_limit_holds() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"maxUses":2}),
    );
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = c.call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["valid"], true);
    assert_eq!(v["payload"]["errors"], json!([]));
    assert!(v["payload"]["validationTime"].is_u64());
    assert_eq!(
        c.call("capability_validate", json!({"capability_id":id}))["payload"]["valid"],
        true
    );
    let v = c.call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["valid"], false);
    assert_eq!(v["payload"]["errors"][0]["code"], "USAGE_LIMIT_EXCEEDED");
    let l = c.call("capability_list", json!({}));
    assert_eq!(l["payload"]["capabilities"][0]["usedCount"], 2);
}

#[test]
fn revoked_capabilities_fail_validation_and_list_as_revoked() {
    let agent = Agent::dev();
    let id = agent.grant("secret:/x", &["read"]);
    let mut c = agent.client();
    let r = c.call(
        "capability_revoke",
        json!({"capability_id":id,"reason":"rotated"}),
    );
    assert_eq!(r["payload"]["status"], "revoked");
    assert_eq!(r["payload"]["message"], "Capability revoked successfully");
    let v = c.call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["errors"][0]["code"], "REVOKED");
    let l = c.call("capability_list", json!({"filter":{"status":"revoked"}}));
    assert_eq!(l["payload"]["count"], 1);
    assert_eq!(l["payload"]["capabilities"][0]["status"], "revoked");
    let l = c.call("capability_list", json!({"filter":{"status":"active"}}));
    assert_eq!(l["payload"]["count"], 0);
    let s = c.call("status_request", Value::Null);
    assert_eq!(s["payload"]["capabilities_active"], 0);
}

#[test]
fn expired_capabilities_fail_validation_and_stay_listable() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"ttl":1}),
    );
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(2100));
    let v = c.call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["errors"][0]["code"], "EXPIRED");
    let l = c.call("capability_list", json!({"filter":{"status":"expired"}}));
    assert_eq!(l["payload"]["capabilities"][0]["id"], id.as_str());
}

#[test]
fn constraints_are_enforced_at_validation() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"constraints":{"ipAddresses":["10.0.0.0/8"],"environment":{"stage":"prod"}}}),
    );
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = c.call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["errors"][0]["code"], "CONSTRAINT_VIOLATION");
    let v = c.call("capability_validate", json!({"capability_id":id,"context":{"ipAddress":"192.168.0.1","environment":{"stage":"prod"}}}));
    assert_eq!(v["payload"]["errors"][0]["code"], "CONSTRAINT_VIOLATION");
    let v = c.call("capability_validate", json!({"capability_id":id,"context":{"ipAddress":"10.9.8.7","environment":{"stage":"prod"}}}));
    assert_eq!(v["payload"]["valid"], true, "{v}");
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"constraints":{"timeWindow":{"hours":[25]}}}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD");
}

fn policy(rules: Value) -> String {
    json!({"id":"test","name":"Test","version":"1.0","status":"active","rules":rules}).to_string()
}

#[test]
fn policy_files_decide_and_a_deny_wins() {
    let me = my_uid();
    let agent = Agent::builder()
        .mode("standard")
        .policy(
            "10-allow.json",
            &policy(json!([{"id":"read-secrets","effect":"allow","resources":["secret:*"],"actions":["read","list"],
                            "identities":[format!("uid:{me}")],"priority":100,"max_ttl":60}])),
        )
        .policy(
            "20-deny.json",
            &json!({"id":"lockdown","rules":[{"id":"no-prod","effect":"deny","resources":["secret:/prod/*"],
                    "actions":["*"],"identities":["*"],"priority":-1}]})
            .to_string(),
        )
        .start();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/db","actions":["read"],"ttl":300}),
    );
    assert_eq!(r["payload"]["status"], "granted", "{r}");
    assert_eq!(
        r["payload"]["capability"]["ttl"], 60,
        "the rule's max_ttl caps the grant"
    );
    assert_eq!(
        r["payload"]["policyResult"]["appliedRules"],
        json!(["test/read-secrets"])
    );
    assert_eq!(
        r["payload"]["policyResult"]["appliedPolicies"],
        json!(["test"])
    );
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/db","actions":["read","write"]}),
    );
    assert_eq!(
        r["payload"]["status"], "denied",
        "a read rule must not grant read+write"
    );
    assert!(
        r["payload"]["policyResult"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("write")
    );
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/prod/db","actions":["read"]}),
    );
    assert_eq!(r["payload"]["status"], "denied");
    assert_eq!(
        r["payload"]["policyResult"]["appliedRules"],
        json!(["lockdown/no-prod"])
    );
    let s = c.call("status_request", Value::Null);
    assert_eq!(s["payload"]["policy_files"], 2);
    assert_eq!(s["payload"]["policy_rules"], 2);
}

#[test]
fn a_bad_policy_file_at_start_denies_everything_in_standard_mode() {
    let me = my_uid();
    let agent = Agent::builder()
        .mode("standard")
        .policy("a.json", &policy(json!([{"id":"ok","effect":"allow","resources":["*"],"actions":["*"],"identities":[format!("uid:{me}")]}])))
        .policy("b.json", "{\"id\": \"broken\", \"rules\": [")
        .start();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/x","actions":["read"]}),
    );
    assert_eq!(
        r["payload"]["status"], "denied",
        "one bad file must not half-load the set"
    );
    let s = c.call("status_request", Value::Null);
    assert!(
        s["payload"]["policy_last_error"]
            .as_str()
            .unwrap()
            .contains("b.json"),
        "{s}"
    );
}

#[test]
fn identity_label_in_the_request_decides_nothing() {
    let agent = Agent::builder()
        .mode("standard")
        .policy("a.json", &policy(json!([{"id":"root-only","effect":"allow","resources":["*"],"actions":["*"],"identities":["uid:4000000000"]}])))
        .start();
    let r = agent.client().call(
        "capability_request",
        json!({"identity":"uid:4000000000","resource":"svc:/x","actions":["read"]}),
    );
    assert_eq!(r["payload"]["status"], "denied");
}

#[test]
fn audit_records_each_decision_with_the_verified_identity() {
    let mut agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_request",
        json!({"identity":"claimed-label","resource":"secret:/a","actions":["read"]}),
    );
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.call("capability_validate", json!({"capability_id":id}));
    c.call(
        "capability_revoke",
        json!({"capability_id":id,"reason":"done"}),
    );
    drop(c);
    assert!(agent.stop().success());
    let records = agent.audit();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "agent_start",
            "capability_request",
            "capability_validation",
            "capability_revocation",
            "agent_stop"
        ]
    );
    let grant = &records[1];
    assert_eq!(grant["outcome"], "granted");
    assert_eq!(grant["identity"]["uid"], my_uid());
    assert_eq!(grant["identity"]["pid"], std::process::id());
    assert_eq!(grant["claimed_identity"], "claimed-label");
    assert_eq!(grant["capability_id"], id.as_str());
    let text = std::fs::read_to_string(&agent.audit_file).unwrap();
    assert!(
        !text.contains("signature"),
        "signatures never appear in the audit log"
    );
}

#[test]
fn the_signing_key_survives_a_restart() {
    let mut agent = Agent::dev();
    let key =
        |a: &Agent| a.client().call("status_request", Value::Null)["payload"]["public_key"].clone();
    let before = key(&agent);
    assert!(agent.stop().success());
    agent.restart();
    assert_eq!(key(&agent), before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(agent.state_dir.join("signing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

// ---- Holder binding across users (root only: the second client runs as `nobody`). ----

const NOBODY: u32 = 65534;

#[test]
fn another_user_cannot_validate_revoke_list_or_administer() {
    require_root!();
    let agent = Agent::dev();
    let id = agent.grant("secret:/root-only", &["read"]);

    let out = agent.cli_as(NOBODY, &["capability", "validate", &id, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let v = common::json_out(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["errors"],
        json!([{"code":"NOT_HOLDER","message":"the capability was not issued to the caller"}])
    );

    let out = agent.cli_as(NOBODY, &["capability", "revoke", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("holder"),
        "{}",
        common::stderr(&out)
    );

    let out = agent.cli_as(NOBODY, &["capability", "list", "--format", "json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::json_out(&out)["count"], 0);

    for admin in [&["agent", "reload"][..], &["agent", "stop"]] {
        let out = agent.cli_as(NOBODY, admin);
        assert_eq!(out.status.code(), Some(1), "{admin:?}");
        assert!(
            common::stderr(&out).contains("administrators"),
            "{}",
            common::stderr(&out)
        );
    }

    // Development mode without policy grants only the agent's own uid.
    let out = agent.cli_as(
        NOBODY,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/x",
            "--action",
            "read",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert_eq!(common::json_out(&out)["status"], "denied");

    // Nothing of the above disturbed the holder's capability.
    let v = agent
        .client()
        .call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["valid"], true);
    let audit = std::fs::read_to_string(&agent.audit_file).unwrap();
    assert!(
        audit.contains(&format!("\"uid\":{NOBODY}")),
        "the other user's attempts are audited"
    );
}

#[test]
fn a_policy_can_grant_another_user_and_then_only_that_user_holds_it() {
    require_root!();
    let agent = Agent::builder()
        .mode("standard")
        .policy("a.json", &policy(json!([{"id":"nobody-reads","effect":"allow","resources":["secret:/shared/*"],"actions":["read"],"identities":["uid:65534"]}])))
        .start();
    let out = agent.cli_as(
        NOBODY,
        &[
            "capability",
            "request",
            "--resource",
            "secret:/shared/x",
            "--action",
            "read",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let cap = common::json_out(&out);
    let id = cap["capability"]["id"].as_str().unwrap().to_string();
    assert_eq!(cap["capability"]["holder"]["uid"], NOBODY);
    // root is not the holder: validation says NOT_HOLDER; as an admin it may revoke.
    let v = agent
        .client()
        .call("capability_validate", json!({"capability_id":id}));
    assert_eq!(v["payload"]["errors"][0]["code"], "NOT_HOLDER");
    let out = agent.cli_as(NOBODY, &["capability", "validate", &id, "--format", "json"]);
    assert_eq!(common::json_out(&out)["valid"], true);
    let l = agent
        .client()
        .call("capability_list", json!({"filter":{"uid":NOBODY}}));
    assert_eq!(l["payload"]["count"], 1, "admins list others' capabilities");
    let r = agent
        .client()
        .call("capability_revoke", json!({"capability_id":id}));
    assert_eq!(
        r["payload"]["status"], "revoked",
        "admins may revoke any capability"
    );
}
