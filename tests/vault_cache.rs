//! The vault backend's cache as `agent status --verbose` shows it, against a real OpenBao server
//! (`bao server -dev`, see tests/common/bao.rs): reads counted as hits and misses, a stale answer
//! served during an outage counted as such, and the file backend saying it has no cache.

mod common;

use common::bao::{Bao, token_auth};
use common::{Agent, json_out, stderr, stdout};
use serde_json::json;

/// An agent on `bao` with the root token and `extra` settings under `vault:`.
fn agent_on(bao: &Bao, extra: &str) -> Agent {
    let token = bao.token_file("token", common::bao::ROOT);
    Agent::builder()
        .config(&bao.config(&token_auth(&token), extra))
        .start()
}

/// `aether-vault secret get PATH --field password`: (exit code, stdout).
fn get(agent: &Agent, path: &str) -> (Option<i32>, String) {
    let out = agent.cli(&["secret", "get", path, "--field", "password"]);
    (out.status.code(), stdout(&out))
}

/// What `aether-vault agent status --verbose | grep -i cache` prints, with the padding that
/// aligns the table's values made one space.
fn grep_cache(agent: &Agent) -> Vec<String> {
    let out = agent.cli(&["agent", "status", "--verbose"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.to_lowercase().contains("cache"))
        .map(one_space)
        .collect()
}

/// `key:    value` → `key: value`.
fn one_space(line: &str) -> String {
    match line.split_once(':') {
        Some((k, v)) => format!("{k}: {}", v.trim_start()),
        None => line.to_string(),
    }
}

/// `detail.secrets_cache` of `agent status --verbose --format json`.
fn cache_json(agent: &Agent) -> serde_json::Value {
    let out = agent.cli(&["agent", "status", "--verbose", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json_out(&out)["detail"]["secrets_cache"].clone()
}

#[test]
fn reads_show_as_hits_and_misses_in_agent_status() {
    let Some(bao) = Bao::start("reads_show_as_hits_and_misses_in_agent_status") else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/db", "password=one"]);
    let agent = agent_on(&bao, "");
    assert_eq!(
        grep_cache(&agent),
        [
            "secrets cache: entries 0 (0 fresh), hits 0, misses 0, hit rate -, stale answers served 0; ttl 1m 0s, stale_if_error off"
        ]
    );

    // The first read asks bao; the next two are answered from memory: bao's new value is not
    // seen within cache_ttl.
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()));
    bao.ok(&["kv", "put", "secret/app/db", "password=two"]);
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()));
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()));
    // A secret bao does not have: asked, and not cached.
    assert_ne!(get(&agent, "app/nosuch").0, Some(0));
    assert_eq!(
        grep_cache(&agent),
        [
            "secrets cache: entries 1 (1 fresh), hits 2, misses 2, hit rate 50.0 %, stale answers served 0; ttl 1m 0s, stale_if_error off"
        ]
    );
    assert_eq!(
        cache_json(&agent),
        json!({"entries": 1, "fresh": 1, "hits": 2, "misses": 2, "stale_served": 0,
               "ttl": 60, "stale_if_error": false})
    );

    // A write through the agent drops what was cached of the path: the next read asks bao.
    let out = agent.cli(&["secret", "put", "app/db", "password=three"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(cache_json(&agent)["entries"], 0);
    assert_eq!(get(&agent, "app/db"), (Some(0), "three\n".into()));
    let c = cache_json(&agent);
    assert_eq!(
        (&c["entries"], &c["hits"], &c["misses"]),
        (&json!(1), &json!(2), &json!(3))
    );

    // YAML carries the same figures; the public status has neither them nor a cache line.
    let out = agent.cli(&["agent", "status", "--verbose", "--format", "yaml"]);
    let yaml = stdout(&out);
    assert!(
        yaml.contains("secrets_cache:") && yaml.contains("misses: 3"),
        "{yaml}"
    );
    let out = agent.cli(&["agent", "status"]);
    let public = stdout(&out);
    assert!(
        public.contains("secrets:") && public.contains("vault, healthy"),
        "{public}"
    );
    assert!(!public.to_lowercase().contains("cache"), "{public}");
    let out = agent.cli(&["agent", "status", "--format", "json"]);
    assert!(json_out(&out).get("detail").is_none());
}

#[test]
fn a_stale_answer_during_an_outage_is_counted() {
    let Some(mut bao) = Bao::start("a_stale_answer_during_an_outage_is_counted") else {
        return;
    };
    bao.ok(&["kv", "put", "secret/app/db", "password=one"]);
    // cache_ttl 0: every read asks bao, but the last value is kept for an outage.
    let agent = agent_on(&bao, "cache_ttl: 0\nstale_if_error: true");
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()));
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()));
    assert_eq!(
        cache_json(&agent),
        json!({"entries": 1, "fresh": 0, "hits": 0, "misses": 2, "stale_served": 0,
               "ttl": 0, "stale_if_error": true})
    );

    bao.kill();
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()), "stale");
    assert_eq!(get(&agent, "app/db"), (Some(0), "one\n".into()), "stale");
    // Nothing kept for this one: the outage is the answer, and no stale answer is counted.
    let out = agent.cli(&["secret", "get", "app/other"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    assert_eq!(
        grep_cache(&agent),
        [
            "secrets cache: entries 1 (0 fresh), hits 0, misses 5, hit rate 0.0 %, stale answers served 2; ttl 0 (no cache), stale_if_error on"
        ]
    );
    let out = agent.cli(&["agent", "status"]);
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("secrets:"))
        .map(one_space);
    assert!(
        line.as_deref()
            .is_some_and(|l| l.starts_with("secrets: vault, FAILING: ")),
        "{line:?}"
    );
}

#[test]
fn the_file_backend_says_it_has_no_cache() {
    let agent = Agent::dev();
    assert_eq!(
        grep_cache(&agent),
        ["secrets cache: none (the file backend has no cache)"]
    );
    assert!(cache_json(&agent).is_null());
}
