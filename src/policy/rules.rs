//! Compiled rules and conditions: what a policy document means once validated.
//!
//! Conditions may test only facts the agent knows itself: the time (`hours`, `daysOfWeek`, in a
//! named time zone or UTC), the verified identity, the resource and the action. A condition on
//! the client-supplied `context` is refused at load time: a client can claim anything.
//!
//! Whether a rule applies is three-valued ([`Tri`]): `Yes` when it applies to everything the
//! request covers, `No` when to nothing, `Maybe` when to part of a pattern request or when it
//! tests an attribute the agent could not verify. [`super::eval`] lets a deny rule apply unless
//! it is `No`, and an allow rule grant only when it is `Yes`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::document::{ConditionDocument, Effect, RuleDocument};
use super::glob::Tri;
use super::selector::{Pattern, Query, Selector};
use crate::identity::{Attribute, PeerIdentity};

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The policy it belongs to.
    pub policy_id: String,
    /// Its id within the policy.
    pub id: String,
    /// For people.
    pub description: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Resource globs; one must match.
    pub resources: Vec<Pattern>,
    /// Action globs; one must match each action considered.
    pub actions: Vec<Pattern>,
    /// Identity selectors; one must match.
    pub identities: Vec<Selector>,
    /// Conditions; all must hold.
    pub conditions: Vec<Condition>,
    /// Upstream priority; accepted and kept, but it decides nothing (a deny always wins).
    pub priority: i64,
    /// Cap on the TTL of a grant through this rule.
    pub max_ttl: Option<u64>,
    /// Cap on the uses of a grant through this rule.
    pub max_uses: Option<u64>,
}

/// The facts one decision is made on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The verified caller.
    pub identity: &'a PeerIdentity,
    /// The resource (one, or a pattern).
    pub resource: Query<'a>,
    /// The action being decided (one, or a pattern).
    pub action: Query<'a>,
    /// Now.
    pub now: Timestamp,
}

impl<'a> Facts<'a> {
    /// Facts for `resource` and `action`, each one string or a pattern.
    pub fn new(
        identity: &'a PeerIdentity,
        resource: &'a str,
        action: &'a str,
        now: Timestamp,
    ) -> Self {
        Facts {
            identity,
            resource: Query::new(resource),
            action: Query::new(action),
            now,
        }
    }
}

impl Rule {
    /// `policy/rule`, the name decisions use.
    pub fn qualified_id(&self) -> String {
        format!("{}/{}", self.policy_id, self.id)
    }

    /// Whether the rule applies to this caller, resource and action at this time: to all the
    /// request covers (`Yes`), to none of it (`No`), or to part of it, or it cannot be told
    /// because it tests an attribute the agent could not verify (`Maybe`).
    pub fn relation(&self, f: &Facts<'_>) -> Tri {
        let base = self.base_relation(f);
        if base == Tri::No {
            return base;
        }
        base.and(self.action_relation(f))
    }

    /// The part of [`Rule::relation`] that does not depend on the action: its resources, its
    /// identities and the conditions that do not test the action. A decision over several
    /// actions computes it once.
    pub fn base_relation(&self, f: &Facts<'_>) -> Tri {
        let mut t = Tri::any(self.resources.iter().map(|p| p.relation(&f.resource)));
        if t == Tri::No {
            return t;
        }
        t = t.and(Tri::any(self.identities.iter().map(|s| s.test(f.identity))));
        if t == Tri::No {
            return t;
        }
        t.and(Tri::all(
            self.conditions
                .iter()
                .filter(|c| !c.tests_action())
                .map(|c| c.test(f)),
        ))
    }

    /// The part of [`Rule::relation`] that depends on the action: its actions and the
    /// conditions that test the action.
    pub fn action_relation(&self, f: &Facts<'_>) -> Tri {
        let t = Tri::any(self.actions.iter().map(|p| p.relation(&f.action)));
        if t == Tri::No {
            return t;
        }
        t.and(Tri::all(
            self.conditions
                .iter()
                .filter(|c| c.tests_action())
                .map(|c| c.test(f)),
        ))
    }

    /// Whether the rule certainly applies ([`Rule::relation`] is `Yes`).
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        self.relation(f) == Tri::Yes
    }

    /// The attributes the rule tests (in its identities or identity conditions) that `id`
    /// could not verify: why a rule is `Maybe` for a concrete request.
    pub fn unverified_in(&self, id: &PeerIdentity) -> Vec<Attribute> {
        let mut out: Vec<Attribute> = self
            .identities
            .iter()
            .chain(self.conditions.iter().flat_map(|c| match c {
                Condition::Identity { selectors, .. } => selectors.as_slice(),
                _ => &[],
            }))
            .flat_map(|s| s.unverified_in(id))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A condition over facts the agent knows itself.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The current hour in `tz` is (or, negated, is not) one of these.
    Hours {
        /// Hours 0–23.
        hours: BTreeSet<u8>,
        /// Zone the hour is read in.
        tz: TimeZone,
        /// Inverts the test.
        negate: bool,
    },
    /// The current weekday in `tz` (0 = Sunday) is (or is not) one of these.
    DaysOfWeek {
        /// Days 0–6.
        days: BTreeSet<u8>,
        /// Zone the day is read in.
        tz: TimeZone,
        /// Inverts the test.
        negate: bool,
    },
    /// The verified identity matches (or does not match) one of these selectors.
    Identity {
        /// Selectors.
        selectors: Vec<Selector>,
        /// Inverts the test.
        negate: bool,
    },
    /// The resource matches (or does not match) one of these globs.
    Resource {
        /// Globs.
        patterns: Vec<Pattern>,
        /// Inverts the test.
        negate: bool,
    },
    /// The action matches (or does not match) one of these globs.
    Action {
        /// Globs.
        patterns: Vec<Pattern>,
        /// Inverts the test.
        negate: bool,
    },
}

impl Condition {
    /// Whether it tests the action (and so must be decided for each action of a request).
    pub fn tests_action(&self) -> bool {
        matches!(self, Condition::Action { .. })
    }

    /// Whether the condition holds for these facts: for all the request covers (`Yes`), for
    /// none (`No`), or for part, or it cannot be told (`Maybe`).
    pub fn test(&self, f: &Facts<'_>) -> Tri {
        let (t, negate) = match self {
            Condition::Hours { hours, tz, negate } => (
                Tri::from_bool(hours.contains(&(f.now.to_zoned(tz.clone()).hour() as u8))),
                negate,
            ),
            Condition::DaysOfWeek { days, tz, negate } => {
                let d = f.now.to_zoned(tz.clone()).weekday().to_sunday_zero_offset() as u8;
                (Tri::from_bool(days.contains(&d)), negate)
            }
            Condition::Identity { selectors, negate } => (
                Tri::any(selectors.iter().map(|s| s.test(f.identity))),
                negate,
            ),
            Condition::Resource { patterns, negate } => (
                Tri::any(patterns.iter().map(|p| p.relation(&f.resource))),
                negate,
            ),
            Condition::Action { patterns, negate } => (
                Tri::any(patterns.iter().map(|p| p.relation(&f.action))),
                negate,
            ),
        };
        if *negate { !t } else { t }
    }

    /// Whether the condition certainly holds ([`Condition::test`] is `Yes`).
    pub fn holds(&self, f: &Facts<'_>) -> bool {
        self.test(f) == Tri::Yes
    }
}

fn small_ints(v: &Value, max: u8, what: &str) -> Result<BTreeSet<u8>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("{what}: value must be a list of numbers"))?;
    let mut out = BTreeSet::new();
    for item in items {
        match item.as_u64() {
            Some(n) if n <= max as u64 => {
                out.insert(n as u8);
            }
            _ => return Err(format!("{what}: {item} is not a number from 0 to {max}")),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{what}: the list is empty, so the condition could never hold"
        ));
    }
    Ok(out)
}

/// A condition's value as a list of strings (a single string is a list of one).
fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("{what}: {other} is not a string")),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "{what}: value must be a string or a list of strings, not {other}"
            ));
        }
    };
    if list.is_empty() {
        return Err(format!(
            "{what}: the list is empty, so the condition could never hold"
        ));
    }
    Ok(list)
}

/// Compiles one condition, refusing anything that tests what the client says.
pub fn compile_condition(c: &ConditionDocument) -> Result<Condition, String> {
    let op = c.operator.as_deref().unwrap_or("in");
    let kind = c.kind.as_str();
    if matches!(kind, "context" | "request" | "label" | "claim" | "metadata") {
        return Err(format!(
            "condition type {kind:?} tests what the client supplies about itself, which it can set to anything; conditions may test only the time, the verified identity, the resource and the action"
        ));
    }
    let accepted: &[&str] = match kind {
        "time" => &["in"],
        _ => &["in", "equals", "matches"],
    };
    if !accepted.contains(&op) {
        return Err(format!(
            "operator {op:?} is not supported for a {kind} condition (use {})",
            accepted.join(", ")
        ));
    }
    if kind != "time" && c.timezone.is_some() {
        return Err(format!(
            "timezone applies only to time conditions, not {kind}"
        ));
    }
    let negate = c.negate;
    match kind {
        "time" => {
            let tz = match c.timezone.as_deref() {
                None | Some("UTC") => TimeZone::UTC,
                Some(name) => {
                    TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))?
                }
            };
            match c.key.as_deref() {
                Some("hours") => Ok(Condition::Hours {
                    hours: small_ints(&c.value, 23, "hours")?,
                    tz,
                    negate,
                }),
                Some("daysOfWeek") => Ok(Condition::DaysOfWeek {
                    days: small_ints(&c.value, 6, "daysOfWeek")?,
                    tz,
                    negate,
                }),
                other => Err(format!(
                    "time condition key {other:?} is not hours or daysOfWeek"
                )),
            }
        }
        "identity" => {
            let key = c.key.as_deref().unwrap_or_default();
            if !["uid", "user", "group", "unit", "exe"].contains(&key) {
                return Err(format!(
                    "identity condition key {key:?} is not uid, user, group, unit or exe"
                ));
            }
            let selectors = strings(&c.value, "identity")?
                .iter()
                .map(|v| Selector::parse(&format!("{key}:{v}")).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            Ok(Condition::Identity { selectors, negate })
        }
        "resource" | "action" if c.key.as_deref().is_some_and(|k| k != kind) => Err(format!(
            "a {kind} condition takes no key (or key {kind:?}), not {:?}",
            c.key.as_deref().unwrap_or_default()
        )),
        "resource" => Ok(Condition::Resource {
            patterns: strings(&c.value, "resource")?
                .iter()
                .map(|p| resource_pattern(p))
                .collect::<Result<_, _>>()?,
            negate,
        }),
        "action" => Ok(Condition::Action {
            patterns: strings(&c.value, "action")?
                .iter()
                .map(|p| action_pattern(p))
                .collect::<Result<_, _>>()?,
            negate,
        }),
        other => Err(format!(
            "unsupported condition type {other:?} (supported: time, identity, resource, action)"
        )),
    }
}

/// A resource pattern, refused unless it is spelled as canonical resources are.
fn resource_pattern(text: &str) -> Result<Pattern, String> {
    crate::resource::check_pattern(text).map_err(|e| e.to_string())?;
    Ok(Pattern::new(text))
}

/// An action pattern, refused unless made of action characters, `*` and `?`.
fn action_pattern(text: &str) -> Result<Pattern, String> {
    crate::resource::check_action(text, true, crate::resource::MAX_ACTION_LEN)?;
    Ok(Pattern::new(text))
}

/// Why a rule was refused, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Where in the rule, as a path of keys and indices (`resources/1`); empty for the rule
    /// as a whole.
    pub at: String,
    /// What is wrong, naming the rule.
    pub message: String,
}

/// Why an allow rule may not rest on `exe:` alone.
const EXE_ALONE: &str = "an allow whose only identity is exe: grants any process that runs that executable, and a process of the same uid can make another run its code (LD_PRELOAD, ptrace), so exe: proves nothing on its own; join it with who runs it, as user:NAME+exe:/PATH, uid:N+exe:/PATH or unit:NAME+exe:/PATH";

/// Validates and compiles one rule of `policy_id`.
pub fn compile_rule(policy_id: &str, r: &RuleDocument) -> Result<Rule, RuleError> {
    let fail = |at: &str, m: String| RuleError {
        at: at.to_string(),
        message: format!("rule {:?}: {m}", r.id),
    };
    if r.id.trim().is_empty() {
        return Err(RuleError {
            at: "id".into(),
            message: "a rule needs a non-empty id".into(),
        });
    }
    if r.resources.is_empty() {
        return Err(fail(
            "resources",
            "resources is empty, so the rule could never apply".into(),
        ));
    }
    if r.actions.is_empty() {
        return Err(fail(
            "actions",
            "actions is empty, so the rule could never apply".into(),
        ));
    }
    if r.identities.is_empty() {
        return Err(fail(
            "identities",
            "identities is empty: name who the rule applies to (\"*\" for everyone)".into(),
        ));
    }
    if r.max_ttl == Some(0) {
        return Err(fail("max_ttl", "max_ttl must be at least 1 second".into()));
    }
    if r.max_uses == Some(0) {
        return Err(fail(
            "max_uses",
            "max_uses must be at least 1 (leave it out for no cap of the rule's own)".into(),
        ));
    }
    let each = |field: &str, items: &[String], f: fn(&str) -> Result<Pattern, String>| {
        items
            .iter()
            .enumerate()
            .map(|(i, p)| f(p).map_err(|m| fail(&format!("{field}/{i}"), m)))
            .collect::<Result<Vec<_>, _>>()
    };
    let resources = each("resources", &r.resources, resource_pattern)?;
    let actions = each("actions", &r.actions, action_pattern)?;
    let mut identities = Vec::with_capacity(r.identities.len());
    for (i, text) in r.identities.iter().enumerate() {
        let at = format!("identities/{i}");
        let s = Selector::parse(text).map_err(|e| fail(&at, e.to_string()))?;
        if r.effect == Effect::Allow && s.is_exe_only() {
            return Err(fail(&at, format!("identity {text:?}: {EXE_ALONE}")));
        }
        identities.push(s);
    }
    let conditions = r
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| compile_condition(c).map_err(|m| fail(&format!("conditions/{i}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    if r.effect == Effect::Allow && identities.iter().any(Selector::is_everyone) {
        // Everyone, narrowed only by exe conditions (or conditions naming everyone), is exe
        // alone.
        let narrowing: Vec<(usize, &Vec<Selector>)> = conditions
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Condition::Identity {
                    selectors,
                    negate: false,
                } => Some((i, selectors)),
                _ => None,
            })
            .collect();
        let exe_only =
            |sels: &Vec<Selector>| sels.iter().all(|s| s.is_exe_only() || s.is_everyone());
        let any_exe = narrowing
            .iter()
            .any(|(_, sels)| sels.iter().any(Selector::is_exe_only));
        if any_exe && narrowing.iter().all(|(_, sels)| exe_only(sels)) {
            let at = narrowing
                .iter()
                .find(|(_, sels)| sels.iter().any(Selector::is_exe_only))
                .map_or(0, |(i, _)| *i);
            return Err(fail(
                &format!("conditions/{at}"),
                format!(
                    "identities that match everyone, narrowed only by an exe condition: {EXE_ALONE}"
                ),
            ));
        }
    }
    Ok(Rule {
        policy_id: policy_id.to_string(),
        id: r.id.clone(),
        description: r.description.clone().or_else(|| r.name.clone()),
        effect: r.effect,
        resources,
        actions,
        identities,
        conditions,
        priority: r.priority,
        max_ttl: r.max_ttl,
        max_uses: r.max_uses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Result<Condition, String> {
        compile_condition(&serde_json::from_value(v).unwrap())
    }

    fn facts<'a>(id: &'a PeerIdentity, resource: &'a str, action: &'a str) -> Facts<'a> {
        // 2023-11-14T22:13:20Z is a Tuesday (2), hour 22 UTC; 23:13 in Paris; 17:13 in New York.
        Facts::new(
            id,
            resource,
            action,
            Timestamp::from_second(1_700_000_000).unwrap(),
        )
    }

    #[test]
    fn time_conditions_in_utc_and_named_zones() {
        let id = PeerIdentity::bare(1000, 1000);
        let f = facts(&id, "r", "read");
        assert!(
            cond(json!({"type":"time","key":"hours","value":[22,23]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"time","key":"hours","value":[9]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"time","key":"hours","value":[22],"negate":true}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            cond(json!({"type":"time","key":"hours","value":[23],"timezone":"Europe/Paris"}))
                .unwrap()
                .holds(&f)
        );
        assert!(cond(json!({"type":"time","key":"hours","value":[9,10,11,12,13,14,15,16,17],"timezone":"America/New_York"})).unwrap().holds(&f));
        assert!(
            cond(json!({"type":"time","key":"daysOfWeek","value":[2]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"time","key":"daysOfWeek","value":[0,6]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            cond(json!({"type":"time","key":"hours","value":[1],"timezone":"Mars/Olympus"}))
                .unwrap_err()
                .contains("time zone")
        );
    }

    #[test]
    fn identity_resource_and_action_conditions() {
        let mut id = PeerIdentity::bare(1000, 1000);
        id.user = Some("alice".into());
        let f = facts(&id, "secret:/db/primary", "read");
        assert!(
            cond(json!({"type":"identity","key":"user","value":["alice","bob"]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"identity","key":"uid","value":"0-999"}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            cond(json!({"type":"identity","key":"uid","value":[1000]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            cond(json!({"type":"resource","operator":"matches","value":"secret:/db/*"}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"resource","value":["secret:/db/*"],"negate":true}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            cond(json!({"type":"action","value":["read","list"]}))
                .unwrap()
                .holds(&f)
        );
        assert!(
            !cond(json!({"type":"action","value":["write"]}))
                .unwrap()
                .holds(&f)
        );
        assert!(cond(json!({"type":"identity","key":"label","value":"x"})).is_err());
    }

    #[test]
    fn an_allow_on_exe_alone_is_refused_however_it_is_spelled() {
        let rule = |identities: Value, conditions: Value| {
            let doc = json!({"id":"r","effect":"allow","resources":["svc:/x"],"actions":["read"],
                             "identities":identities,"conditions":conditions});
            compile_rule("p", &serde_json::from_value(doc).unwrap())
        };
        let exe = json!({"type":"identity","key":"exe","value":"/opt/none/x"});
        let all_uids = json!({"type":"identity","key":"uid","value":"0-4294967295"});
        for (identities, conditions) in [
            (json!(["exe:/opt/none/x"]), json!([])),
            (json!(["uid:1", "exe:/opt/none/x"]), json!([])),
            (json!(["unit:*+exe:/opt/none/x"]), json!([])),
            (json!(["uid:0-4294967295+exe:/opt/none/x"]), json!([])),
            (json!(["*"]), json!([exe])),
            (json!(["uid:0-4294967295"]), json!([exe])),
            (json!(["*"]), json!([exe, all_uids])),
        ] {
            let e = rule(identities.clone(), conditions.clone()).unwrap_err();
            assert!(
                e.message.contains("LD_PRELOAD"),
                "{identities} {conditions}: {e:?}"
            );
        }
        for (identities, conditions) in [
            (json!(["user:root+exe:/opt/none/x"]), json!([])),
            (json!(["uid:5"]), json!([exe])),
            (
                json!(["*"]),
                json!([exe, {"type":"identity","key":"user","value":"root"}]),
            ),
        ] {
            assert!(
                rule(identities.clone(), conditions.clone()).is_ok(),
                "{identities} {conditions}"
            );
        }
    }

    #[test]
    fn context_conditions_and_nonsense_are_refused() {
        let e = cond(json!({"type":"context","key":"env","value":"prod"})).unwrap_err();
        assert!(e.contains("client"), "{e}");
        assert!(cond(json!({"type":"time","key":"hours","value":[24]})).is_err());
        assert!(cond(json!({"type":"time","key":"hours","value":[]})).is_err());
        assert!(cond(json!({"type":"time","key":"minutes","value":[1]})).is_err());
        assert!(
            cond(json!({"type":"time","key":"hours","operator":"equals","value":[1]})).is_err()
        );
        assert!(cond(json!({"type":"geo","key":"x","value":[1]})).is_err());
        assert!(cond(json!({"type":"resource","value":[]})).is_err());
        assert!(cond(json!({"type":"resource","value":"x","timezone":"UTC"})).is_err());
        assert!(cond(json!({"type":"resource","key":"path","value":"x"})).is_err());
        assert!(cond(json!({"type":"action","key":"action","value":"read"})).is_ok());
    }
}
