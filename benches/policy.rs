//! Policy decision and load times at 10, 1,000 and 10,000 rules.
//!
//! `cargo bench --bench policy` prints one row per size: the median time of one decision
//! (a granted read on a resource matched by one specific rule, with 1 % of rules being
//! wildcards that are candidates for every resource), the same decision by scanning every rule
//! (what the index saves), the time to load and validate the set from a directory, the check
//! that a request's resource is canonical (done once per request, before the decision), and
//! the decision of a request for a pattern (`secret:/svcN/*`, a set compared with the rules'
//! patterns), and the costliest pattern request the default `requests.*` limits let through (a
//! 1,000-byte resource and 32 actions, each with 8 pattern characters, which every rule's
//! patterns meet).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aether_vault_agent::identity::PeerIdentity;
use aether_vault_agent::policy::rules::Facts;
use aether_vault_agent::policy::{EvalInput, Fallback, LoadOptions, PolicySet, evaluate, load_dir};
use aether_vault_agent::resource::check_request_resource;
use serde_json::json;

fn write_set(dir: &std::path::Path, rules: usize) {
    let per_file = 500;
    for f in 0..rules.div_ceil(per_file) {
        let rs: Vec<_> = (f * per_file..((f + 1) * per_file).min(rules))
            .map(|i| {
                let resource = if i % 100 == 99 { format!("*:/svc{i}") } else { format!("secret:/svc{i}/*") };
                json!({"id": format!("r{i}"), "effect": if i % 10 == 9 { "deny" } else { "allow" },
                       "resources": [resource], "actions": ["read", "list"],
                       "identities": [format!("uid:{}", 1000 + i % 50), "group:ops"], "max_ttl": 600})
            })
            .collect();
        let doc = json!({"id": format!("p{f}"), "rules": rs});
        std::fs::write(dir.join(format!("{f:05}.json")), doc.to_string()).unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    println!(
        "{:>7}  {:>14}  {:>14}  {:>12}  {:>12}  {:>16}  {:>14}",
        "rules", "decision", "full scan", "load", "canonical", "pattern decision", "worst pattern"
    );
    for n in [10usize, 1_000, 10_000] {
        let dir: PathBuf = tempfile::tempdir().unwrap().keep();
        write_set(&dir, n);
        let t = Instant::now();
        let loaded = load_dir(&dir, LoadOptions::current()).unwrap();
        let load = t.elapsed();
        let set = PolicySet::from_loaded(1, loaded, Fallback::DenyAll);
        let target = n / 2 - n / 2 % 10; // an allow rule
        let id = PeerIdentity::bare(1000 + (target % 50) as u32, 100);
        let resource = format!("secret:/svc{target}/db");
        let actions = vec!["read".to_string()];
        let input = EvalInput {
            identity: &id,
            resource: &resource,
            actions: &actions,
            now: jiff::Timestamp::now(),
        };
        assert!(
            evaluate(&set, input).allowed,
            "the benchmark request must be granted"
        );
        let pattern = format!("secret:/svc{target}/*");
        let pattern_input = EvalInput {
            resource: &pattern,
            ..input
        };
        assert!(
            evaluate(&set, pattern_input).allowed,
            "the benchmark pattern request must be granted"
        );
        // Literal runs between the stars, as long as the resource limit allows.
        let worst_resource = format!("secret:/*{}", format!("{}*", "s".repeat(120)).repeat(7));
        let worst_actions: Vec<String> = (0..32).map(|i| format!("*{i}?*?*?*?*?*")).collect();
        let worst_input = EvalInput {
            resource: &worst_resource,
            actions: &worst_actions,
            ..input
        };
        let mut worst = Vec::new();
        let mut decide = Vec::new();
        let mut scan = Vec::new();
        let mut canonical = Vec::new();
        let mut patterned = Vec::new();
        for _ in 0..50 {
            let iters = 200;
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(evaluate(&set, std::hint::black_box(input)));
            }
            decide.push(t.elapsed() / iters);
            let t = Instant::now();
            for _ in 0..iters {
                let f = Facts::new(&id, &resource, "read", input.now);
                std::hint::black_box(set.rules().iter().filter(|r| r.matches(&f)).count());
            }
            scan.push(t.elapsed() / iters);
            let t = Instant::now();
            for _ in 0..iters {
                let _ =
                    std::hint::black_box(check_request_resource(std::hint::black_box(&resource)));
            }
            canonical.push(t.elapsed() / iters);
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(evaluate(&set, std::hint::black_box(pattern_input)));
            }
            patterned.push(t.elapsed() / iters);
            let t = Instant::now();
            for _ in 0..iters / 20 {
                std::hint::black_box(evaluate(&set, std::hint::black_box(worst_input)));
            }
            worst.push(t.elapsed() / (iters / 20));
        }
        println!(
            "{n:>7}  {:>14?}  {:>14?}  {:>12?}  {:>12?}  {:>16?}  {:>14?}",
            median(decide),
            median(scan),
            load,
            median(canonical),
            median(patterned),
            median(worst)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
