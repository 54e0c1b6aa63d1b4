//! The wire protocol against the real agent over its real socket: every message type, every
//! framing rule and error code, and what the upstream Go client sends and decodes.

mod common;

use common::{Agent, RawClient};
use serde_json::{Value, json};

fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {v}"));
    assert_eq!(s.len(), 20, "{s}");
    assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T', "{s}");
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    assert!(
        digits.iter().all(|i| s.as_bytes()[*i].is_ascii_digit()),
        "{s}"
    );
    assert!(s.parse::<jiff::Timestamp>().is_ok(), "{s}");
}

#[test]
fn upstream_go_client_status_handshake_decodes() {
    let agent = Agent::dev();
    let mut c = agent.client();
    // Exactly what the upstream Go client writes: msg_<unixnano>, RFC 3339 with nanoseconds,
    // a null payload, one compact object plus "\n".
    c.send(b"{\"version\":\"1.0\",\"type\":\"status_request\",\"id\":\"msg_1732312345678901234\",\"timestamp\":\"2026-11-23T10:00:00.123456789+01:00\",\"payload\":null}\n");
    let r = c.read().unwrap();
    assert_eq!(r["type"], "status_response");
    assert_eq!(r["id"], "msg_1732312345678901234");
    assert_eq!(r["version"], "1.0");
    assert_timestamp(&r["timestamp"]);
    let p = &r["payload"];
    assert!(p["version"].is_string());
    assert!(
        p["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    assert!(
        p["uptime"].is_u64(),
        "uptime must be integer nanoseconds: {}",
        p["uptime"]
    );
    assert!(p["connectionCount"].is_u64());
    assert_eq!(p["connectionCount"], 1);
    assert_eq!(p["mode"], "development");
    assert_eq!(p["socket_path"], agent.socket.display().to_string());
    assert_eq!(p["max_connections"], 200);
    assert_eq!(p["capabilities_active"], 0);
    assert_eq!(p["policy_generation"], 1);
    assert_eq!(p["policy_files"], 0);
    assert_eq!(p["policy_rules"], 0);
    assert!(p["policy_last_error"].is_null());
    assert_timestamp(&p["policy_loaded_at"]);
    let key = p["public_key"].as_str().unwrap();
    assert_eq!(base64_len(key), 32, "an Ed25519 public key is 32 bytes");
}

fn base64_len(s: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .len()
}

#[test]
fn ping_and_every_message_type_answers_with_its_response_type() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call("ping_request", Value::Null);
    assert_eq!(r["type"], "ping_response");
    assert_eq!(
        r["payload"],
        json!({"message":"pong","server":"aether-vault-agent"})
    );
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/a","actions":["read"]}),
    );
    assert_eq!(r["type"], "capability_response");
    let id = r["payload"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.call("capability_validate", json!({"capability_id": id}))["type"],
        "validation_response"
    );
    assert_eq!(
        c.call("capability_list", json!({}))["type"],
        "capability_response"
    );
    assert_eq!(
        c.call("capability_revoke", json!({"capability_id": id}))["type"],
        "capability_response"
    );
    assert_eq!(
        c.call("agent_status", Value::Null)["type"],
        "status_response"
    );
    let r = c.call("agent_status", Value::Null);
    assert_eq!(
        r["payload"]["detail"]["pid"],
        agent.child.as_ref().unwrap().id()
    );
    let r = c.call("agent_reload", Value::Null);
    assert_eq!(r["type"], "reload_response");
    assert_eq!(r["payload"]["status"], "reloaded");
    assert_eq!(r["payload"]["generation"], 2);
    let r = c.call("agent_stop", Value::Null);
    assert_eq!(r["type"], "stop_response");
}

#[test]
fn responses_echo_ids_in_order_for_concatenated_and_pretty_requests() {
    let agent = Agent::dev();
    let mut c = agent.client();
    c.send(b"{\"type\":\"ping_request\",\"id\":\"a\"}{\"type\":\"ping_request\",\"id\":\"b\"}\n{\n  \"type\": \"status_request\",\n  \"id\": \"c\"\n}\n   {\"type\":\"ping_request\",\"id\":\"d\",\"payload\":{\"ignored\":[1,{\"x\":\"}\"}]}}");
    for id in ["a", "b", "c", "d"] {
        let r = c.read().unwrap();
        assert_eq!(r["id"], id);
    }
}

#[test]
fn oversized_request_gets_request_too_large_then_close() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let big = format!(
        "{{\"type\":\"ping_request\",\"id\":\"x\",\"payload\":\"{}\"}}\n",
        "a".repeat(70_000)
    );
    // The agent may close before reading everything; a failed write is fine.
    let _ = std::io::Write::write_all(&mut c.stream, big.as_bytes());
    let r = c.read().expect("an error before the close");
    assert_eq!(r["type"], "error_response");
    assert_eq!(r["payload"]["code"], "REQUEST_TOO_LARGE");
    assert!(r["payload"]["error"].as_str().unwrap().contains("65536"));
    assert!(c.closed());
    // The agent still serves others.
    assert_eq!(
        agent.client().call("ping_request", Value::Null)["type"],
        "ping_response"
    );
}

#[test]
fn request_just_under_the_limit_is_served() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let head = "{\"type\":\"ping_request\",\"id\":\"x\",\"payload\":\"";
    let pad = 65536 - head.len() - 2;
    c.send(format!("{head}{}\"}}\n", "a".repeat(pad)).as_bytes());
    assert_eq!(c.read().unwrap()["type"], "ping_response");
}

#[test]
fn malformed_json_gets_malformed_request_then_close() {
    let agent = Agent::dev();
    for bad in [
        &b"{\"type\": nope}\n"[..],
        b"[1,2,3]\n",
        b"hello\n",
        b"{\"type\":\"ping_request\",\"id\":\"\xff\xfe\"}\n",
        // What a tree refuses in a field the agent never looks at, or deep in a payload.
        b"{\"type\":\"ping_request\",\"timestamp\":1e400}\n",
        b"{\"type\":\"ping_request\",\"x\":\"\\ud800\"}\n",
        b"{\"type\":\"ping_request\",\"signature\":\"\xff\"}\n",
        b"{\"type\":\"capability_request\",\"payload\":{\"resource\":\"secret:/a\",\"actions\":[\"read\"],\"ttl\":1e400}}\n",
        b"{\"type\":\"capability_validate\",\"payload\":{\"capability_id\":\"cap_x\",\"junk\":\"\\udc00\"}}\n",
    ] {
        let mut c = agent.client();
        c.send(bad);
        let r = c.read().expect("an error before the close");
        assert_eq!(r["payload"]["code"], "MALFORMED_REQUEST", "{bad:?}");
        assert!(c.closed(), "{bad:?}");
    }
}

#[test]
fn unknown_type_gets_upstream_error_and_the_connection_stays_usable() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call("secret_dump", json!({}));
    assert_eq!(r["type"], "error_response");
    assert_eq!(
        r["payload"],
        json!({"error":"unknown message type","code":"UNKNOWN_MESSAGE_TYPE","type":"secret_dump"})
    );
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
}

#[test]
fn missing_type_and_bad_payloads_are_errors_that_keep_the_connection() {
    let agent = Agent::dev();
    let mut c = agent.client();
    c.send(b"{\"id\":\"x\"}\n");
    let r = c.read().unwrap();
    assert_eq!(r["payload"]["code"], "INVALID_REQUEST");
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":"read"}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD");
    assert!(
        r["payload"]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid payload format")
    );
    let r = c.call("capability_validate", json!({}));
    assert_eq!(
        r["payload"],
        json!({"error":"capability_id is required","code":"INVALID_PAYLOAD"})
    );
    let r = c.call("capability_revoke", json!({"capability_id":""}));
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD");
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"ttl":-5}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD");
    let r = c.call(
        "capability_request",
        json!({"resource":"svc:/r","actions":["read"],"constraints":{"geography":["EU"]}}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD");
    assert!(
        r["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("geography")
    );
    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
}

#[test]
fn unknown_capability_is_cap_not_found() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let r = c.call(
        "capability_validate",
        json!({"capability_id":"cap_doesnotexist"}),
    );
    assert_eq!(r["payload"]["valid"], false);
    assert_eq!(r["payload"]["errors"][0]["code"], "CAP_NOT_FOUND");
    let r = c.call(
        "capability_revoke",
        json!({"capability_id":"cap_doesnotexist"}),
    );
    assert_eq!(r["type"], "error_response");
    assert_eq!(r["payload"]["code"], "CAP_NOT_FOUND");
}

#[test]
fn empty_list_is_an_array_never_null() {
    let agent = Agent::dev();
    let r = agent.client().call("capability_list", Value::Null);
    assert_eq!(r["payload"]["capabilities"], json!([]));
    assert_eq!(r["payload"]["count"], 0);
}

#[test]
fn denial_is_a_full_capability_response_with_policy_result() {
    let agent = Agent::builder().mode("standard").start();
    let r = agent.client().call(
        "capability_request",
        json!({"identity":"x","resource":"secret:/db","actions":["read"]}),
    );
    assert_eq!(r["type"], "capability_response");
    let p = &r["payload"];
    assert_eq!(p["status"], "denied");
    assert!(p["capability"].is_null());
    assert!(!p["message"].as_str().unwrap().is_empty());
    assert_eq!(p["requestId"], r["id"]);
    assert!(p["processingTime"].is_u64());
    assert_eq!(p["policyResult"]["decision"], "deny");
    assert!(p["policyResult"]["appliedPolicies"].is_array());
    assert!(p["policyResult"]["appliedRules"].is_array());
    assert!(
        p["policyResult"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("no policy")
    );
    assert!(p["policyResult"]["evaluationTime"].is_u64());
}

#[test]
fn many_requests_on_one_connection_and_many_connections() {
    let agent = Agent::dev();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = agent.socket.clone();
            std::thread::spawn(move || {
                let mut c = RawClient::connect(&path).unwrap();
                for _ in 0..50 {
                    assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Grants `resource` for read to a client labelled as upstream's Go client, with `extra`
/// merged into the request; answers the capability id.
fn grant_with(c: &mut RawClient, resource: &str, extra: Value) -> String {
    let mut extra = extra;
    extra["identity"] = json!("go-client");
    c.grant(resource, &["read"], extra)
}

fn listed_resources(c: &mut RawClient, filter: Value) -> Vec<String> {
    let r = c.call("capability_list", json!({ "filter": filter }));
    assert_eq!(r["type"], "capability_response", "{r}");
    r["payload"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["resource"].as_str().unwrap().to_string())
        .collect()
}

/// The list filters upstream's `CapabilityFilter` carries besides equality (issue 17).
#[test]
fn upstream_list_filters_sort_by_sort_order_time_range_and_metadata() {
    let agent = Agent::dev();
    let mut c = agent.client();
    for (resource, purpose) in [
        ("secret:/b", "nightly"),
        ("secret:/c", "export"),
        ("secret:/a", "nightly"),
    ] {
        grant_with(&mut c, resource, json!({ "purpose": purpose }));
    }
    let sorted = listed_resources(&mut c, json!({"sortBy":"resource"}));
    assert_eq!(sorted, ["secret:/a", "secret:/b", "secret:/c"]);
    let sorted = listed_resources(
        &mut c,
        json!({"sortBy":"resource","sortOrder":"desc","limit":2}),
    );
    assert_eq!(sorted, ["secret:/c", "secret:/b"]);
    let nightly = listed_resources(
        &mut c,
        json!({"sortBy":"resource","metadata":{"purpose":"nightly"}}),
    );
    assert_eq!(nightly, ["secret:/a", "secret:/b"]);
    let all = listed_resources(
        &mut c,
        json!({"timeRange":{"start":"2020-01-01T00:00:00Z","end":"2999-01-01T00:00:00Z"}}),
    );
    assert_eq!(all.len(), 3);
    assert!(
        listed_resources(
            &mut c,
            json!({"timeRange":{"start":"2999-01-01T00:00:00Z"}})
        )
        .is_empty()
    );
    assert!(
        listed_resources(&mut c, json!({"timeRange":{"end":"2020-01-01T00:00:00Z"}})).is_empty()
    );
    // Bad values are refused, naming the field, never ignored.
    for (filter, field) in [
        (json!({"sortBy":"color"}), "sortBy"),
        (json!({"sortOrder":"sideways"}), "sortOrder"),
        (
            json!({"timeRange":{"start":"last week"}}),
            "timeRange.start",
        ),
    ] {
        let r = c.call("capability_list", json!({ "filter": filter }));
        assert_eq!(r["type"], "error_response", "{r}");
        assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
        assert!(
            r["payload"]["error"].as_str().unwrap().contains(field),
            "{r}"
        );
    }
    let r = c.call(
        "capability_list",
        json!({"filter":{"metadata":{"purpose":"x".repeat(20_000)}}}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
    assert!(
        r["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("requests.max_metadata_bytes"),
        "{r}"
    );
}

/// Upstream checks `environment` constraints against the validation context's `runtime`,
/// which is all its Go `RequestContext` can send (issue 17).
#[test]
fn environment_constraints_validate_against_a_go_clients_runtime_context() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let id = grant_with(
        &mut c,
        "secret:/db",
        json!({"constraints":{"environment":{"type":"k8s","container.namespace":"prod"}}}),
    );
    let validate = |c: &mut RawClient, context: Value| {
        c.call(
            "capability_validate",
            json!({"capability_id": id, "context": context}),
        )["payload"]
            .clone()
    };
    let go = json!({"sourceIP":"10.0.0.7","userAgent":"aether-vault-go","runtime":
        {"type":"k8s","id":"pod-1","container":{"id":"c1","namespace":"prod","image":"app:1"}}});
    let v = validate(&mut c, go);
    assert_eq!(v["valid"], true, "{v}");
    let v = validate(
        &mut c,
        json!({"runtime":{"type":"k8s","id":"pod-1","container":{"id":"c1","namespace":"dev"}}}),
    );
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["errors"][0]["code"], "CONSTRAINT_VIOLATION", "{v}");
    // Stating nothing never satisfies it; two sources that disagree do not either.
    let v = validate(&mut c, json!({}));
    assert_eq!(v["valid"], false, "{v}");
    let v = validate(
        &mut c,
        json!({"environment":{"type":"k8s","container.namespace":"prod"},
                                    "runtime":{"type":"docker","id":"x"}}),
    );
    assert_eq!(v["valid"], false, "{v}");
    // An empty required value would match a Go client's empty field: refused at request.
    let r = c.call(
        "capability_request",
        json!({"resource":"secret:/db","actions":["read"],"constraints":{"environment":{"version":""}}}),
    );
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
}

/// `timeWindow.timezones`: the hours and days are read in the one zone it names (issue 17).
#[test]
fn a_time_window_is_read_in_its_time_zone() {
    let agent = Agent::dev();
    let mut c = agent.client();
    let tokyo_hour = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo").unwrap())
        .hour() as u8;
    // This hour and the next (the validation may cross the hour) in Tokyo; every other hour.
    let now_there = [tokyo_hour, (tokyo_hour + 1) % 24];
    let elsewhere: Vec<u8> = (0..24).filter(|h| !now_there.contains(h)).collect();
    let window = |hours: Value| json!({"constraints":{"timeWindow":{"hours": hours, "timezones":["Asia/Tokyo"]}}});
    let open = grant_with(&mut c, "secret:/tz", window(json!(now_there)));
    let closed = grant_with(&mut c, "secret:/tz", window(json!(elsewhere)));
    let valid = |c: &mut RawClient, id: &str| {
        c.call("capability_validate", json!({ "capability_id": id }))["payload"].clone()
    };
    assert_eq!(valid(&mut c, &open)["valid"], true);
    let v = valid(&mut c, &closed);
    assert_eq!(v["valid"], false, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Asia/Tokyo"),
        "{v}"
    );
    for (zones, says) in [
        (
            json!(["Mars/Olympus_Mons"]),
            "not a time zone this host knows",
        ),
        (json!(["UTC", "Asia/Tokyo"]), "only one"),
    ] {
        let r = c.call(
            "capability_request",
            json!({"resource":"secret:/tz","actions":["read"],
                   "constraints":{"timeWindow":{"hours":[1],"timezones":zones}}}),
        );
        assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
        assert!(
            r["payload"]["error"].as_str().unwrap().contains(says),
            "{r}"
        );
    }
}
