//! Health and metrics against a real agent: `agent health` and its exit codes (0 healthy,
//! 1 unhealthy, 2 no agent), `metrics_request` / `agent metrics` parsed with a real Prometheus
//! text-format parser (Python's `prometheus_client`), and the optional HTTP endpoint
//! (`telemetry.listen`): its paths, limits, health codes and that it never holds up the agent.
//!
//! Where `prometheus_client` is not installed the tests that need it print SKIPPED; with
//! `AETHER_VAULT_REQUIRE_PROMETHEUS=1` (as `.ci/run` sets) they fail instead.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, json_out, stderr, stdout};
use serde_json::{Value, json};

/// Parses Prometheus text with `prometheus_client.parser.text_string_to_metric_families`:
/// `[family, type, sample name, labels, value]` per sample. `None` (SKIPPED) when the module is
/// missing and not required.
fn parse_prometheus(test: &str, text: &str) -> Option<Vec<Value>> {
    const SCRIPT: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = [[f.name, f.type, s.name, s.labels, s.value]\n\
               for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
        print(json.dumps(out))\n";
    let have = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        if std::env::var("AETHER_VAULT_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!(
                "{test}: python3's prometheus_client is not installed (pip install prometheus_client)"
            );
        }
        eprintln!("SKIPPED {test}: python3's prometheus_client is not installed");
        return None;
    }
    let out = common::run_with_input(
        {
            let mut c = Command::new("python3");
            c.args(["-c", SCRIPT]);
            c
        },
        text,
    );
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        stderr(&out)
    );
    Some(serde_json::from_str::<Vec<Value>>(&stdout(&out)).unwrap())
}

/// The value of the sample `name` whose labels include all of `labels` (0 if there is none:
/// a series appears on first use).
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s[2] == name)
        .filter(|s| labels.iter().all(|(k, v)| s[3][*k] == *v))
        .map(|s| s[4].as_f64().unwrap())
        .sum()
}

/// The family names and their types.
fn families(samples: &[Value]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = samples
        .iter()
        .map(|s| (s[0].as_str().unwrap().into(), s[1].as_str().unwrap().into()))
        .collect();
    f.dedup();
    f
}

fn scrape_cli(test: &str, agent: &Agent) -> Option<Vec<Value>> {
    let out = agent.cli(&["agent", "metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    parse_prometheus(test, &stdout(&out))
}

#[test]
fn agent_metrics_counts_requests_and_decisions_by_bounded_labels() {
    let test = "agent_metrics_counts_requests_and_decisions_by_bounded_labels";
    // Standard mode with no policy: every grant is denied.
    let agent = Agent::builder().mode("standard").start();
    let Some(before) = scrape_cli(test, &agent) else {
        return;
    };
    let mut c = agent.client();
    for _ in 0..7 {
        assert_eq!(c.call("ping_request", Value::Null)["type"], "ping_response");
    }
    let r = c.call(
        "capability_request",
        json!({"resource": "secret:/metrics-probe-resource", "actions": ["read"]}),
    );
    assert_eq!(r["payload"]["status"], "denied", "{r}");
    let r = c.call("no_such_type_zq", json!({}));
    assert_eq!(r["payload"]["code"], "UNKNOWN_MESSAGE_TYPE", "{r}");
    let r = c.call("capability_validate", json!({"capability_id": 5}));
    assert_eq!(r["payload"]["code"], "INVALID_PAYLOAD", "{r}");
    drop(c);

    let out = agent.cli(&["agent", "metrics"]);
    let text = stdout(&out);
    let after = parse_prometheus(test, &text).unwrap();
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let ping = [("type", "ping_request"), ("outcome", "ok")];
    assert_eq!(delta("aether_vault_requests_total", &ping), 7.0, "{text}");
    assert_eq!(
        delta("aether_vault_request_duration_seconds_count", &ping),
        7.0
    );
    assert_eq!(
        delta(
            "aether_vault_request_duration_seconds_bucket",
            &[("type", "ping_request"), ("outcome", "ok"), ("le", "+Inf")]
        ),
        7.0
    );
    assert_eq!(
        delta(
            "aether_vault_decisions_total",
            &[("event", "capability_request"), ("outcome", "denied")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        delta(
            "aether_vault_requests_total",
            &[("type", "capability_request"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "aether_vault_requests_total",
            &[("type", "unknown"), ("outcome", "invalid")]
        ),
        1.0,
        "an unknown type is counted under `unknown`: {text}"
    );
    assert_eq!(
        delta(
            "aether_vault_requests_total",
            &[("type", "capability_validate"), ("outcome", "invalid")]
        ),
        1.0
    );
    assert_eq!(sample(&after, "aether_vault_audit_healthy", &[]), 1.0);
    assert_eq!(sample(&after, "aether_vault_store_healthy", &[]), 1.0);
    assert!(sample(&after, "aether_vault_connections", &[]) >= 1.0);
    assert!(sample(&after, "aether_vault_policy_generation", &[]) >= 1.0);
    assert!(sample(&after, "aether_vault_audit_sync_seconds_count", &[]) >= 1.0);
    assert_eq!(
        sample(
            &after,
            "aether_vault_secrets_backend_healthy",
            &[("backend", "file")]
        ),
        1.0
    );
    let fams = families(&after);
    for (name, kind) in [
        ("aether_vault_requests", "counter"),
        ("aether_vault_request_duration_seconds", "histogram"),
        ("aether_vault_decisions", "counter"),
        ("aether_vault_audit_sync_seconds", "histogram"),
        ("aether_vault_capabilities_active", "gauge"),
        ("aether_vault_connections", "gauge"),
        ("aether_vault_policy_generation", "gauge"),
        ("aether_vault_audit_healthy", "gauge"),
    ] {
        assert!(
            fams.contains(&(name.to_string(), kind.to_string())),
            "{name} ({kind}) missing: {fams:?}"
        );
    }
    // Nothing a client chose becomes a label: not the resource, not the unknown type.
    assert!(!text.contains("metrics-probe-resource"), "{text}");
    assert!(!text.contains("no_such_type_zq"), "{text}");

    // The raw answer, as documented.
    let r = agent.client().call("metrics_request", Value::Null);
    assert_eq!(r["type"], "metrics_response", "{r}");
    assert_eq!(
        r["payload"]["content_type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        r["payload"]["text"]
            .as_str()
            .unwrap()
            .contains("# TYPE aether_vault_requests_total counter")
    );
}

#[test]
fn metrics_are_open_to_other_users_like_the_status() {
    require_root!();
    let agent = Agent::dev();
    let out = agent.cli_as(65534, &["agent", "metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("aether_vault_requests_total"));
}

/// `agent health` with `args`: exit code and standard output.
fn health(agent: &Agent, args: &[&str]) -> (i32, String) {
    let mut a = args.to_vec();
    a.extend(["agent", "health"]);
    let out = agent.cli(&a);
    (out.status.code().unwrap(), stdout(&out))
}

#[test]
fn agent_health_exits_0_healthy_1_unhealthy_2_unreachable() {
    let agent = Agent::dev();
    let (code, text) = health(&agent, &[]);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "one line per check: {text}");
    for (line, name) in lines.iter().zip(["audit", "store", "secrets", "policy"]) {
        assert!(line.starts_with(&format!("{name}: ok")), "{text}");
    }
    let (code, text) = health(&agent, &["--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["checks"].as_array().unwrap().len(), 4);

    // A policy load that fails: unhealthy (the previous set stays in force).
    std::fs::write(agent.policy_dir.join("broken.json"), "{ not json").unwrap();
    let out = agent.cli(&["agent", "reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (code, text) = health(&agent, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("policy: FAILING: the last load failed"),
        "{text}"
    );
    assert!(text.contains("audit: ok"), "{text}");
    let (code, text) = health(&agent, &["--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["checks"][3]["name"], "policy");
    assert_eq!(v["checks"][3]["healthy"], false);
    std::fs::remove_file(agent.policy_dir.join("broken.json")).unwrap();
    assert!(agent.cli(&["agent", "reload"]).status.success());
    assert_eq!(health(&agent, &[]).0, 0);

    // No agent at all: 2, and with --format json the error and its code on stdout.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(common::CLI);
        common::clean_env(&mut cmd, dir.path());
        cmd.arg("--socket-path").arg(&missing).args(args);
        cmd.output().unwrap()
    };
    let out = run(&["agent", "health"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Error: "), "{}", stderr(&out));
    let out = run(&["--format", "json", "agent", "health"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_out(&out);
    assert_eq!(v["code"], "CANNOT_CONNECT", "{v}");
    assert!(v["error"].as_str().is_some(), "{v}");
}

#[test]
fn agent_health_reports_an_audit_log_that_cannot_be_written() {
    let test = "agent_health_reports_an_audit_log_that_cannot_be_written";
    let agent = Agent::dev();
    assert_eq!(health(&agent, &[]).0, 0);
    let before = scrape_cli(test, &agent);
    // The audit log's directory is swapped for a file: the log cannot be reopened.
    let log_dir = agent.audit_file.parent().unwrap().to_path_buf();
    std::fs::rename(&log_dir, agent.dir.path().join("log.moved")).unwrap();
    std::fs::write(&log_dir, "not a directory").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = agent.client().call(
            "capability_request",
            json!({"resource": "secret:/x", "actions": ["read"]}),
        );
        if r["payload"]["code"] == "AUDIT_UNAVAILABLE" {
            break;
        }
        assert!(Instant::now() < deadline, "audit writes never failed: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, text) = health(&agent, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("audit: FAILING"), "{text}");
    // The grant refused in its own capability_response counts as an error, not as ok.
    if let (Some(before), Some(after)) = (before, scrape_cli(test, &agent)) {
        let error = [("type", "capability_request"), ("outcome", "error")];
        assert_eq!(
            sample(&after, "aether_vault_requests_total", &error)
                - sample(&before, "aether_vault_requests_total", &error),
            1.0
        );
    }
}

#[test]
fn agent_health_reports_a_secrets_backend_that_is_down() {
    let test = "agent_health_reports_a_secrets_backend_that_is_down";
    let Some(mut bao) = common::bao::Bao::start(test) else {
        return;
    };
    let file = bao.token_file("token", common::bao::ROOT);
    let agent = Agent::builder()
        .config(&bao.config(&common::bao::token_auth(&file), "cache_ttl: 0"))
        .start();
    assert!(
        agent
            .cli(&["secret", "put", "app/x", "k=v"])
            .status
            .success()
    );
    let (code, text) = health(&agent, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("secrets: ok (vault backend answers)"),
        "{text}"
    );
    bao.kill();
    let out = agent.cli(&["secret", "get", "app/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (code, text) = health(&agent, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("secrets: FAILING: vault backend: "), "{text}");
    let out = agent.cli(&["agent", "metrics"]);
    assert!(
        stdout(&out).contains("aether_vault_secrets_backend_healthy{backend=\"vault\"} 0"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(
            "aether_vault_secrets_backend_calls_total{operation=\"read\",outcome=\"unavailable\"} 1"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("aether_vault_secrets_cache_misses_total"));
}

// ---- The HTTP endpoint ---------------------------------------------------------------------

/// An agent serving HTTP on a port of its choosing (`:0`), with `extra` telemetry settings;
/// the address it logged.
fn http_agent(extra: &str) -> (Agent, String) {
    let agent = Agent::builder()
        .config(&format!("telemetry:\n  listen: 127.0.0.1:0\n{extra}"))
        .start();
    let addr = logged_address(&agent).expect("the agent logs the address it serves HTTP on");
    (agent, addr)
}

fn logged_address(agent: &Agent) -> Option<String> {
    let log = agent.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("serving /metrics and /health over HTTP"))?;
    let at = line.find("address=")? + "address=".len();
    Some(
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string(),
    )
}

/// Sends `request` as is; the status code, the headers and the body of the answer (status 0
/// when the connection closed without one).
fn http_raw(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn http_serves_metrics_and_health_and_nothing_else() {
    let test = "http_serves_metrics_and_health_and_nothing_else";
    // Every request gathers its own answer, so that the count below moves.
    let (agent, addr) = http_agent("  cache_ms: 0\n");
    let (code, head, before) = http_get(&addr, "/metrics");
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut c = agent.client();
    for _ in 0..3 {
        c.call("ping_request", Value::Null);
    }
    drop(c);
    let (_, _, after) = http_get(&addr, "/metrics");
    if let (Some(b), Some(a)) = (
        parse_prometheus(test, &before),
        parse_prometheus(test, &after),
    ) {
        let ping = [("type", "ping_request"), ("outcome", "ok")];
        assert_eq!(
            sample(&a, "aether_vault_requests_total", &ping)
                - sample(&b, "aether_vault_requests_total", &ping),
            3.0
        );
    }

    let (code, head, body) = http_get(&addr, "/health");
    assert_eq!(code, 200, "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"healthy": true, "checks": {"audit": true, "store": true, "secrets": true, "policy": true}})
    );

    assert_eq!(http_get(&addr, "/").0, 404);
    assert_eq!(http_get(&addr, "/metrics/x").0, 404);
    assert_eq!(http_get(&addr, "/v1/sys/health").0, 404);
    let (code, head, _) = http_raw(
        &addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    );
    assert_eq!(code, 405, "{head}");
    assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");
    assert_eq!(
        http_raw(&addr, b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n").0,
        405
    );

    // Garbage, a huge header, bytes that are not text: refused or closed, never a crash.
    let (code, _, _) = http_raw(&addr, b"\x00\xff\xfe garbage\r\n\r\n");
    assert!(code == 400 || code == 0, "{code}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let (code, _, _) = http_raw(&addr, huge.as_bytes());
    assert!(code == 431 || code == 400 || code == 0, "{code}");
    assert_eq!(http_get(&addr, "/health").0, 200, "still serving");
    assert_eq!(
        agent.client().call("ping_request", Value::Null)["type"],
        "ping_response"
    );
}

/// A flood of scrapes costs one gathering per `telemetry.cache_ms`: within it, both paths
/// answer what they gathered first, though requests were counted and a policy broke meanwhile.
#[test]
fn http_answers_are_kept_for_cache_ms() {
    let (agent, addr) = http_agent("  cache_ms: 60000\n");
    let (code, _, metrics) = http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    let (code, _, healthy) = http_get(&addr, "/health");
    assert_eq!(code, 200);
    let mut c = agent.client();
    for _ in 0..3 {
        c.call("ping_request", Value::Null);
    }
    drop(c);
    std::fs::write(agent.policy_dir.join("broken.json"), "{ not json").unwrap();
    assert_eq!(agent.cli(&["agent", "reload"]).status.code(), Some(1));
    for _ in 0..20 {
        let (code, _, body) = http_get(&addr, "/metrics");
        assert_eq!(
            (code, body),
            (200, metrics.clone()),
            "kept, not gathered again"
        );
        let (code, _, body) = http_get(&addr, "/health");
        assert_eq!(
            (code, body),
            (200, healthy.clone()),
            "kept, not gathered again"
        );
    }
    // The socket's own answers are not kept: the status says the policy broke.
    let (code, out) = health(&agent, &[]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn http_health_is_503_when_unhealthy_without_saying_why() {
    let (agent, addr) = http_agent("");
    std::fs::write(agent.policy_dir.join("broken.json"), "{ not json").unwrap();
    assert_eq!(agent.cli(&["agent", "reload"]).status.code(), Some(1));
    let (code, head, body) = http_get(&addr, "/health");
    assert_eq!(code, 503, "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["checks"]["policy"], false);
    assert_eq!(v["checks"]["audit"], true);
    assert!(!body.contains("broken.json"), "no error text: {body}");
}

#[test]
fn http_limits_connections_and_slow_heads() {
    let (agent, addr) = http_agent("  max_connections: 2\n  timeout_seconds: 2\n");
    // Two connections that send nothing hold both slots…
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    // …so a third is closed without an answer.
    let (code, _, _) = http_get(&addr, "/health");
    assert_eq!(
        code, 0,
        "a third connection is over telemetry.max_connections"
    );
    // A head that never completes is cut after timeout_seconds: the idle ones are closed.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&addr, "/health").0 != 200 {
        assert!(Instant::now() < deadline, "the slots were never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(agent);
}

#[test]
fn http_never_holds_up_start_or_stop() {
    // A port that is taken: the agent starts all the same, and says so.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut agent = Agent::builder()
        .config(&format!("telemetry:\n  listen: 127.0.0.1:{port}\n"))
        .start();
    assert!(
        agent.stderr().contains("cannot serve telemetry over HTTP"),
        "{}",
        agent.stderr()
    );
    assert!(agent.stop().success());

    // An open HTTP connection does not keep the agent from stopping.
    let (mut agent, addr) = http_agent("  timeout_seconds: 300\n");
    let _open = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(agent.stop().success());
}

#[test]
fn http_on_a_non_loopback_address_is_warned_about() {
    let agent = Agent::builder()
        .config("telemetry:\n  listen: 0.0.0.0:0\n")
        .start();
    assert!(
        agent
            .stderr()
            .contains("telemetry.listen is not a loopback address"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn telemetry_limits_are_checked_at_start() {
    let (_agent, mut cmd) = Agent::builder()
        .config("telemetry:\n  listen: 127.0.0.1:0\n  max_header_bytes: 100\n")
        .prepare();
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("telemetry.max_header_bytes"),
        "{}",
        stderr(&out)
    );
}
