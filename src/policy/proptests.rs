//! Property tests of the decision rule over random rule sets: adding a deny rule never grants
//! more, removing an allow rule never grants more, the order of files never changes a decision,
//! the prefix index never changes a decision (checked against a scan of every rule), a granted
//! pattern request covers only what is granted when asked for concretely, and a caller whose
//! attributes could not be verified is granted nothing that some value of them would be
//! refused.

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
const IDENTITIES: &[&str] = &[
    "*",
    "uid:1000",
    "uid:1001",
    "uid:1000-1001",
    "uid:0-999",
    "uid:1000+exe:/bin/a",
    "user:u1000",
    "unit:a.service",
];
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
    decide_as(set, &PeerIdentity::bare(uid, uid), res, actions)
}

fn decide_as(
    set: &PolicySet,
    id: &PeerIdentity,
    res: &str,
    actions: &[String],
) -> (bool, Option<u64>) {
    let d = evaluate(
        set,
        EvalInput {
            identity: id,
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
        let f = Facts::new(&id, res, a, jiff::Timestamp::now());
        let m: Vec<_> = set.rules().iter().filter(|r| r.matches(&f)).collect();
        !m.iter().any(|r| r.effect == Effect::Deny) && m.iter().any(|r| r.effect == Effect::Allow)
    })
}

/// Concrete resources and actions, to check what a granted pattern covers.
const CONCRETE_RESOURCES: &[&str] = &[
    "secret:/a",
    "secret:/b",
    "secret:/ab",
    "secret:/a/",
    "secret:/a/x",
    "secret:/b/a",
    "secret:/",
    "config:/c",
    "config:/a",
];
const CONCRETE_ACTIONS: &[&str] = &["read", "write", "delete", "list", "rexd"];
/// Requests for sets.
const PATTERN_RESOURCES: &[&str] = &[
    "secret:/*",
    "secret:/a*",
    "secret:/?",
    "secret:/a/*",
    "*",
    "*:/a",
    "secret:/?/*",
    "config:/*",
    "secret:/a",
];
const PATTERN_ACTIONS: &[&str] = &["*", "re*", "?ead", "d*", "read", "write"];

/// Identities whose unit, exe and user are known, or unverified (`None`).
fn identity(uid: u32, user: bool, unit: Option<bool>, exe: Option<bool>) -> PeerIdentity {
    use crate::identity::Attribute;
    let mut id = PeerIdentity::bare(uid, uid);
    if user {
        id.user = Some(format!("u{uid}"));
    }
    match unit {
        Some(true) => id.unit = Some("a.service".into()),
        Some(false) => {}
        None => id.unverified.push(Attribute::Unit),
    }
    match exe {
        Some(true) => id.exe = Some("/bin/a".into()),
        Some(false) => {}
        None => id.unverified.push(Attribute::Exe),
    }
    id
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A pattern request is granted only if every concrete resource and action it covers is
    /// granted when asked for on its own.
    #[test]
    fn a_granted_pattern_covers_only_what_is_granted(rules in prop::collection::vec(rule_strategy(), 0..8)) {
        let set = build(&rules, 1, &[0]);
        for uid in [1000, 1001, 5] {
            for res in PATTERN_RESOURCES {
                for (i, first) in PATTERN_ACTIONS.iter().enumerate() {
                    // One action, or two.
                    let mut acts = vec![first.to_string()];
                    if i % 2 == 1 {
                        acts.push(PATTERN_ACTIONS[(i + 1) % PATTERN_ACTIONS.len()].to_string());
                    }
                    if !decide(&set, uid, res, &acts).0 {
                        continue;
                    }
                    let rm = wildmatch::WildMatch::new(res);
                    for r in CONCRETE_RESOURCES.iter().filter(|r| rm.matches(r)) {
                        for pat in &acts {
                            let am = wildmatch::WildMatch::new(pat);
                            for a in CONCRETE_ACTIONS.iter().filter(|a| am.matches(a)) {
                                prop_assert!(
                                    decide(&set, uid, r, &[a.to_string()]).0,
                                    "{} {} {:?} granted, but not {} {}", uid, res, acts, r, a
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A caller whose unit or exe could not be verified is granted only what it would be
    /// granted whatever they are.
    #[test]
    fn an_unverified_attribute_grants_nothing_a_value_of_it_would_refuse(rules in prop::collection::vec(rule_strategy(), 0..8)) {
        let set = build(&rules, 1, &[0]);
        for uid in [1000, 1001] {
            for res in CONCRETE_RESOURCES.iter().chain(PATTERN_RESOURCES) {
                for acts in [&["read"][..], &["write"], &["*"]] {
                    let acts: Vec<String> = acts.iter().map(|a| a.to_string()).collect();
                    for (unit, exe) in [(None, None), (None, Some(true)), (Some(true), None), (None, Some(false))] {
                        let unknown = identity(uid, true, unit, exe);
                        if !decide_as(&set, &unknown, res, &acts).0 {
                            continue;
                        }
                        for u in unit.map_or(vec![true, false], |u| vec![u]) {
                            for e in exe.map_or(vec![true, false], |e| vec![e]) {
                                let known = identity(uid, true, Some(u), Some(e));
                                prop_assert!(
                                    decide_as(&set, &known, res, &acts).0,
                                    "{} {} {:?} granted with unit/exe unverified, not with unit {} exe {}", uid, res, acts, u, e
                                );
                            }
                        }
                    }
                }
            }
        }
    }

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
