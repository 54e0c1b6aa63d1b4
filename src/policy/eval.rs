//! The decision, as a pure function of a policy set and a request.
//!
//! For each requested action: a matching deny rule denies it, whatever the priorities;
//! otherwise it is allowed when some allow rule matches it. The request is granted only when
//! every action is allowed; no matching rule means deny. A granted request carries the smallest
//! `max_ttl` and `max_uses` of the rules that granted it.
//!
//! A request whose resource or actions are patterns is a set, decided as one: a deny rule that
//! reaches any part of it denies it, and an allow rule grants only if it covers all of it
//! ([`super::glob`]). A deny rule that tests an attribute the agent could not verify for the
//! caller applies; an allow rule that needs one does not grant.

use jiff::Timestamp;

use super::document::Effect;
use super::glob::Tri;
use super::rules::Facts;
use super::selector::{Query, compile_if_pattern};
use super::{Fallback, PolicySet, Rule};
use crate::identity::{Attribute, PeerIdentity};
use crate::protocol::types::PolicyResult;

/// What is being decided.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    /// The kernel-verified caller.
    pub identity: &'a PeerIdentity,
    /// The resource requested.
    pub resource: &'a str,
    /// The actions requested; all must be allowed.
    pub actions: &'a [String],
    /// The time conditions are evaluated at.
    pub now: Timestamp,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Granted or not.
    pub allowed: bool,
    /// Policies whose rules decided.
    pub applied_policies: Vec<String>,
    /// Rules that decided, as `policy/rule`.
    pub applied_rules: Vec<String>,
    /// Why, in words.
    pub reasoning: String,
    /// Smallest `max_ttl` among the granting rules.
    pub max_ttl: Option<u64>,
    /// The granting rule (`policy/rule`) whose `max_ttl` that is, to name it when it shortens
    /// a grant.
    pub max_ttl_rule: Option<String>,
    /// Smallest `max_uses` among the granting rules.
    pub max_uses: Option<u64>,
    /// The generation of the set that decided.
    pub generation: u64,
}

impl Decision {
    /// The decision as the protocol reports it, with how long evaluation took.
    pub fn policy_result(&self, evaluation_time: u64) -> PolicyResult {
        PolicyResult {
            decision: if self.allowed { "allow" } else { "deny" }.to_string(),
            applied_policies: self.applied_policies.clone(),
            applied_rules: self.applied_rules.clone(),
            reasoning: self.reasoning.clone(),
            evaluation_time,
        }
    }

    fn new(set: &PolicySet, allowed: bool, reasoning: String) -> Decision {
        Decision {
            allowed,
            applied_policies: Vec::new(),
            applied_rules: Vec::new(),
            reasoning,
            max_ttl: None,
            max_ttl_rule: None,
            max_uses: None,
            generation: set.generation,
        }
    }

    fn apply(&mut self, rule: &Rule) {
        let q = rule.qualified_id();
        if !self.applied_rules.contains(&q) {
            self.applied_rules.push(q);
        }
        if !self.applied_policies.contains(&rule.policy_id) {
            self.applied_policies.push(rule.policy_id.clone());
        }
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Why a rule only `Maybe` applies: an attribute it tests could not be verified, or the request
/// is a pattern that it covers only in part. `does` is what the rule would do (`applies`,
/// `grants`).
fn why_maybe(rule: &Rule, facts: &Facts<'_>, does: &str) -> String {
    let unverified = rule.unverified_in(facts.identity);
    if !unverified.is_empty() {
        let names: Vec<&str> = unverified
            .iter()
            .map(|a| Attribute::selector_kind(*a))
            .collect();
        return match does {
            "applies" => format!(
                "it applies because the caller's {} could not be verified",
                names.join(" and ")
            ),
            _ => format!(
                "needs the caller's {}, which could not be verified",
                names.join(" and ")
            ),
        };
    }
    match does {
        "applies" => "the request's pattern reaches what it denies".to_string(),
        _ => "allows only part of what the request's pattern covers".to_string(),
    }
}

/// What a request names that no rule of the set mentions at all, so that a typo (`sekret:`,
/// `fly`) reads as one and not as policy: `no rule mentions scheme `sekret:``, `no rule
/// mentions action `fly``. Only consulted for an action no rule allows.
fn unmentioned(set: &PolicySet, resource: &str, action: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((scheme, _)) = resource.split_once(':') {
        if !scheme.is_empty() && !crate::resource::is_pattern(scheme) {
            let every = format!("{scheme}:*");
            let glob = compile_if_pattern(&every);
            let q = Query::compiled(&every, glob.as_ref());
            let mentioned = set
                .rules()
                .iter()
                .any(|r| r.resources.iter().any(|p| p.relation(&q) != Tri::No));
            if !mentioned {
                found.push(format!("no rule mentions scheme `{scheme}:`"));
            }
        }
    }
    let glob = compile_if_pattern(action);
    let q = Query::compiled(action, glob.as_ref());
    let mentioned = set
        .rules()
        .iter()
        .any(|r| r.actions.iter().any(|p| p.relation(&q) != Tri::No));
    if !mentioned {
        found.push(format!("no rule mentions action `{action}`"));
    }
    found
}

/// Decides a request.
pub fn evaluate(set: &PolicySet, input: EvalInput<'_>) -> Decision {
    if input.actions.is_empty() {
        return Decision::new(set, false, "denied: no action was requested".to_string());
    }
    if set.rules().is_empty() {
        return match set.fallback {
            Fallback::OwnerOnly { uid } if input.identity.uid == uid => Decision::new(
                set,
                true,
                format!(
                    "granted: development mode without policies allows the agent's own uid {uid}"
                ),
            ),
            Fallback::OwnerOnly { .. } => Decision::new(
                set,
                false,
                format!(
                    "denied: {} ({} is not the agent's uid)",
                    set.fallback.describe(),
                    input.identity.describe()
                ),
            ),
            Fallback::DenyAll => Decision::new(
                set,
                false,
                "denied: no policy is loaded, so nothing is allowed".to_string(),
            ),
        };
    }
    let resource_glob = compile_if_pattern(input.resource);
    let resource = Query::compiled(input.resource, resource_glob.as_ref());
    let candidates = if resource.pattern {
        set.index.candidates_for_pattern(input.resource)
    } else {
        set.index.candidates(input.resource)
    };
    // What does not depend on the action (the resource above all, costly for a pattern) is
    // related once per rule, not once per action.
    let base_facts = Facts {
        identity: input.identity,
        resource,
        action: Query::new(""),
        now: input.now,
    };
    let based: Vec<(&Rule, Tri)> = candidates
        .into_iter()
        .map(|i| &set.rules()[i])
        .filter_map(|rule| {
            let t = rule.base_relation(&base_facts);
            (t != Tri::No).then_some((rule, t))
        })
        .collect();

    let mut granted = Decision::new(set, true, String::new());
    let mut denied = Decision::new(set, false, String::new());
    let mut granted_parts = Vec::new();
    let mut denied_parts = Vec::new();
    for action in input.actions {
        let action_glob = compile_if_pattern(action);
        let facts = Facts {
            identity: input.identity,
            resource,
            action: Query::compiled(action, action_glob.as_ref()),
            now: input.now,
        };
        let mut denies: Vec<(&Rule, Tri)> = Vec::new();
        let mut allows: Vec<&Rule> = Vec::new();
        let mut partial: Vec<&Rule> = Vec::new();
        for &(rule, base) in &based {
            match (rule.effect, base.and(rule.action_relation(&facts))) {
                (_, Tri::No) => {}
                (Effect::Deny, t) => denies.push((rule, t)),
                (Effect::Allow, Tri::Yes) => allows.push(rule),
                (Effect::Allow, Tri::Maybe) => partial.push(rule),
            }
        }
        if !denies.is_empty() {
            let names: Vec<String> = denies
                .iter()
                .map(|(r, t)| match t {
                    Tri::Yes => r.qualified_id(),
                    _ => format!("{} ({})", r.qualified_id(), why_maybe(r, &facts, "applies")),
                })
                .collect();
            denies.iter().for_each(|(r, _)| denied.apply(r));
            denied_parts.push(format!("{action:?} is denied by rule {}", names.join(", ")));
            continue;
        }
        if allows.is_empty() {
            let mut part = format!(
                "no rule allows {action:?} on {:?} for {}",
                input.resource,
                input.identity.describe()
            );
            if !partial.is_empty() {
                let names: Vec<String> = partial
                    .iter()
                    .map(|r| format!("{} {}", r.qualified_id(), why_maybe(r, &facts, "grants")))
                    .collect();
                part.push_str(&format!(" (rule {})", names.join("; ")));
            }
            let unmentioned = unmentioned(set, input.resource, action);
            if !unmentioned.is_empty() {
                part.push_str(&format!(": {}", unmentioned.join(", and ")));
            }
            denied_parts.push(part);
            continue;
        }
        let names: Vec<String> = allows.iter().map(|r| r.qualified_id()).collect();
        for r in &allows {
            granted.apply(r);
            if let Some(t) = r.max_ttl.filter(|t| granted.max_ttl.is_none_or(|m| *t < m)) {
                granted.max_ttl = Some(t);
                granted.max_ttl_rule = Some(r.qualified_id());
            }
            granted.max_uses = min_opt(granted.max_uses, r.max_uses);
        }
        granted_parts.push(format!(
            "{action:?} is allowed by rule {}",
            names.join(", ")
        ));
    }
    if denied_parts.is_empty() {
        granted.reasoning = format!("granted: {}", granted_parts.join("; "));
        granted
    } else {
        denied.reasoning = format!("denied: {}", denied_parts.join("; "));
        denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::{compile, parse_document};
    use std::path::{Path, PathBuf};

    fn set(json_docs: &[&str]) -> PolicySet {
        let docs = json_docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    PathBuf::from(format!("{i}.json")),
                    parse_document(Path::new("x"), d).unwrap(),
                )
            })
            .collect();
        PolicySet::from_loaded(1, compile(docs).unwrap(), Fallback::DenyAll)
    }

    fn decide(s: &PolicySet, id: &PeerIdentity, resource: &str, actions: &[&str]) -> Decision {
        let actions: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
        evaluate(
            s,
            EvalInput {
                identity: id,
                resource,
                actions: &actions,
                now: Timestamp::now(),
            },
        )
    }

    const READ_ONLY: &str = r#"{"id":"p","rules":[{"id":"read","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["uid:1000"],"max_ttl":120,"max_uses":5}]}"#;

    #[test]
    fn table() {
        let deny_write = r#"{"id":"d","rules":[{"id":"nowrite","effect":"deny","resources":["secret:/prod/*"],"actions":["write","delete"],"identities":["*"],"priority":-100}]}"#;
        let allow_all = r#"{"id":"a","rules":[{"id":"all","effect":"allow","resources":["*"],"actions":["*"],"identities":["uid:1000"],"priority":1000}]}"#;
        let s = set(&[READ_ONLY, deny_write, allow_all]);
        let alice = PeerIdentity::bare(1000, 1000);
        let bob = PeerIdentity::bare(1001, 1001);
        let cases: &[(&PeerIdentity, &str, &[&str], bool)] = &[
            (&alice, "secret:/db", &["read"], true),
            (&alice, "secret:/db", &["read", "write"], true),
            (&alice, "secret:/prod/db", &["read"], true),
            // A deny wins over a higher-priority allow.
            (&alice, "secret:/prod/db", &["write"], false),
            (&alice, "secret:/prod/db", &["read", "write"], false),
            (&bob, "secret:/db", &["read"], false),
            (&alice, "secret:/db", &[], false),
        ];
        for (id, res, actions, expect) in cases {
            let d = decide(&s, id, res, actions);
            assert_eq!(
                d.allowed, *expect,
                "{} {res} {actions:?}: {}",
                id.uid, d.reasoning
            );
        }
    }

    #[test]
    fn a_read_rule_does_not_grant_read_and_write() {
        // Upstream flaw: a rule for `read` granted a request for `read`+`write`.
        let s = set(&[READ_ONLY]);
        let d = decide(
            &s,
            &PeerIdentity::bare(1000, 1000),
            "secret:/db",
            &["read", "write"],
        );
        assert!(!d.allowed);
        assert!(
            d.reasoning.contains("no rule allows \"write\""),
            "{}",
            d.reasoning
        );
    }

    #[test]
    fn grants_carry_the_smallest_caps_and_name_the_rules() {
        let looser = r#"{"id":"q","rules":[{"id":"r2","effect":"allow","resources":["secret:/db"],"actions":["read"],"identities":["*"],"max_ttl":60,"max_uses":50}]}"#;
        let s = set(&[READ_ONLY, looser]);
        let d = decide(&s, &PeerIdentity::bare(1000, 1000), "secret:/db", &["read"]);
        assert!(d.allowed);
        assert_eq!((d.max_ttl, d.max_uses), (Some(60), Some(5)));
        assert_eq!(d.max_ttl_rule.as_deref(), Some("q/r2"));
        assert_eq!(d.applied_rules, vec!["p/read", "q/r2"]);
        assert_eq!(d.applied_policies, vec!["p", "q"]);
    }

    #[test]
    fn denial_names_the_deny_rule() {
        let deny = r#"{"id":"d","rules":[{"id":"x","effect":"deny","resources":["*"],"actions":["*"],"identities":["uid:1000"]}]}"#;
        let s = set(&[READ_ONLY, deny]);
        let d = decide(&s, &PeerIdentity::bare(1000, 1000), "secret:/db", &["read"]);
        assert!(!d.allowed);
        assert_eq!(d.applied_rules, vec!["d/x"]);
        assert!(d.reasoning.contains("denied by rule d/x"));
    }

    #[test]
    fn an_action_or_scheme_no_rule_mentions_is_named() {
        let s = set(&[READ_ONLY]);
        let alice = PeerIdentity::bare(1000, 1000);
        let d = decide(&s, &alice, "secret:/db", &["fly"]);
        assert!(!d.allowed);
        assert!(
            d.reasoning.contains("no rule mentions action `fly`"),
            "{}",
            d.reasoning
        );
        assert!(!d.reasoning.contains("scheme"), "{}", d.reasoning);
        let d = decide(&s, &alice, "sekret:/db", &["read"]);
        assert!(!d.allowed);
        assert!(
            d.reasoning.contains("no rule mentions scheme `sekret:`"),
            "{}",
            d.reasoning
        );
        assert!(!d.reasoning.contains("action `"), "{}", d.reasoning);
        // A known action and scheme, merely not allowed to this caller: no such remark.
        let d = decide(&s, &PeerIdentity::bare(1001, 1001), "secret:/db", &["read"]);
        assert!(!d.allowed);
        assert!(!d.reasoning.contains("mentions"), "{}", d.reasoning);
        // A rule for every action mentions them all.
        let any = r#"{"id":"w","rules":[{"id":"w","effect":"allow","resources":["*"],"actions":["*"],"identities":["uid:5"]}]}"#;
        let d = decide(&set(&[any]), &alice, "sekret:/db", &["fly"]);
        assert!(!d.reasoning.contains("mentions"), "{}", d.reasoning);
    }

    #[test]
    fn fallbacks() {
        let owner = PolicySet::empty(0, Fallback::OwnerOnly { uid: 1000 });
        assert!(decide(&owner, &PeerIdentity::bare(1000, 1000), "x", &["read"]).allowed);
        assert!(!decide(&owner, &PeerIdentity::bare(1001, 1000), "x", &["read"]).allowed);
        let none = PolicySet::empty(0, Fallback::DenyAll);
        assert!(!decide(&none, &PeerIdentity::bare(1000, 1000), "x", &["read"]).allowed);
    }
}
