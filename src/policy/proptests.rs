//! Property tests of the decision rule over random rule sets: adding a deny rule never grants
//! more, removing an allow rule never grants more, the order of files never changes a decision,
//! and the prefix index never changes a decision (checked against a scan of every rule).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::document::Effect;
use super::load::{compile, parse_document};
use super::rules::Facts;
use super::{EvalInput, Fallback, PolicySet, evaluate};
use crate::identity::PeerIdentity;

const RESOURCES: &[&str] = &[
    "*",
    "secret:*",
    "secret:/a*",
    "secret:/?",
    "secret:/a",
    "config:*",
    "secret:/a/*",
];
const ACTIONS: &[&str] = &["*", "read", "write", "re?d", "delete"];
const IDENTITIES: &[&str] = &["*", "uid:1000", "uid:1001", "uid:1000-1001", "uid:0-999"];
const REQ_RESOURCES: &[&str] = &[
    "secret:/a",
    "secret:/b",
    "secret:/a/x",
    "config:/c",
    "other",
];

#[derive(Debug, Clone)]
struct R {
    allow: bool,
    resources: Vec<usize>,
    actions: Vec<usize>,
    identities: Vec<usize>,
    max_ttl: Option<u64>,
}

fn rule_strategy() -> impl Strategy<Value = R> {
    (
        any::<bool>(),
        prop::collection::vec(0..RESOURCES.len(), 1..3),
        prop::collection::vec(0..ACTIONS.len(), 1..3),
        prop::collection::vec(0..IDENTITIES.len(), 1..3),
        prop::option::of(1u64..100),
    )
        .prop_map(|(allow, resources, actions, identities, max_ttl)| R {
            allow,
            resources,
            actions,
            identities,
            max_ttl,
        })
}

fn rule_json(i: usize, r: &R) -> Value {
    json!({
        "id": format!("r{i}"),
        "effect": if r.allow { "allow" } else { "deny" },
        "resources": r.resources.iter().map(|x| RESOURCES[*x]).collect::<Vec<_>>(),
        "actions": r.actions.iter().map(|x| ACTIONS[*x]).collect::<Vec<_>>(),
        "identities": r.identities.iter().map(|x| IDENTITIES[*x]).collect::<Vec<_>>(),
        "max_ttl": r.max_ttl,
    })
}

/// Builds a set with the rules spread over `files` files, in the given file order.
fn build(rules: &[R], files: usize, order: &[usize]) -> PolicySet {
    let files = files.max(1);
    let mut per_file: Vec<Vec<Value>> = vec![Vec::new(); files];
    for (i, r) in rules.iter().enumerate() {
        per_file[i % files].push(rule_json(i, r));
    }
    let docs = order
        .iter()
        .filter(|f| **f < files)
        .map(|f| {
            let text = json!({"id": format!("p{f}"), "rules": per_file[*f]}).to_string();
            (
                PathBuf::from(format!("{f}.json")),
                parse_document(Path::new("x"), &text).unwrap(),
            )
        })
        .collect();
    PolicySet::from_loaded(1, compile(docs).unwrap(), Fallback::DenyAll)
}

fn requests() -> Vec<(u32, &'static str, Vec<String>)> {
    let mut out = Vec::new();
    for uid in [1000, 1001, 5] {
        for res in REQ_RESOURCES {
            for acts in [
                &["read"][..],
                &["write"],
                &["read", "write"],
                &["delete", "read"],
            ] {
                out.push((uid, *res, acts.iter().map(|a| a.to_string()).collect()));
            }
        }
    }
    out
}

fn decide(set: &PolicySet, uid: u32, res: &str, actions: &[String]) -> (bool, Option<u64>) {
    let id = PeerIdentity::bare(uid, uid);
    let d = evaluate(
        set,
        EvalInput {
            identity: &id,
            resource: res,
            actions,
            now: jiff::Timestamp::now(),
        },
    );
    (d.allowed, d.max_ttl)
}

/// The decision rule written as plainly as possible, scanning every rule.
fn naive(set: &PolicySet, uid: u32, res: &str, actions: &[String]) -> bool {
    let id = PeerIdentity::bare(uid, uid);
    if set.rules().is_empty() {
        return false;
    }
    actions.iter().all(|a| {
        let f = Facts {
            identity: &id,
            resource: res,
            action: a,
            now: jiff::Timestamp::now(),
        };
        let m: Vec<_> = set.rules().iter().filter(|r| r.matches(&f)).collect();
        !m.iter().any(|r| r.effect == Effect::Deny) && m.iter().any(|r| r.effect == Effect::Allow)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn adding_a_deny_rule_never_grants_more(rules in prop::collection::vec(rule_strategy(), 0..8), extra in rule_strategy()) {
        let before = build(&rules, 1, &[0]);
        let mut more = rules.clone();
        more.push(R { allow: false, ..extra });
        let after = build(&more, 1, &[0]);
        for (uid, res, acts) in requests() {
            if decide(&after, uid, res, &acts).0 {
                prop_assert!(decide(&before, uid, res, &acts).0, "{uid} {res} {acts:?}");
            }
        }
    }

    #[test]
    fn removing_an_allow_rule_never_grants_more(rules in prop::collection::vec(rule_strategy(), 1..8), pick in any::<prop::sample::Index>()) {
        let before = build(&rules, 1, &[0]);
        let allows: Vec<usize> = rules.iter().enumerate().filter(|(_, r)| r.allow).map(|(i, _)| i).collect();
        prop_assume!(!allows.is_empty());
        let mut fewer = rules.clone();
        fewer.remove(allows[pick.index(allows.len())]);
        let after = build(&fewer, 1, &[0]);
        for (uid, res, acts) in requests() {
            if decide(&after, uid, res, &acts).0 {
                prop_assert!(decide(&before, uid, res, &acts).0, "{uid} {res} {acts:?}");
            }
        }
    }

    #[test]
    fn the_order_of_files_never_changes_a_decision(rules in prop::collection::vec(rule_strategy(), 0..9), files in 1usize..4, seed in any::<u64>()) {
        let order: Vec<usize> = (0..files).collect();
        let mut shuffled = order.clone();
        // A deterministic permutation from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % (i + 1));
        }
        let a = build(&rules, files, &order);
        let b = build(&rules, files, &shuffled);
        for (uid, res, acts) in requests() {
            prop_assert_eq!(decide(&a, uid, res, &acts), decide(&b, uid, res, &acts));
        }
    }

    #[test]
    fn the_index_never_changes_a_decision(rules in prop::collection::vec(rule_strategy(), 0..10)) {
        let set = build(&rules, 2, &[0, 1]);
        for (uid, res, acts) in requests() {
            prop_assert_eq!(decide(&set, uid, res, &acts).0, naive(&set, uid, res, &acts), "{} {} {:?}", uid, res, acts);
        }
    }
}
