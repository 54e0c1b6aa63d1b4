//! Compiled rules and conditions: what a policy document means once validated.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::document::{ConditionDocument, Effect, RuleDocument};
use super::selector::{Pattern, Selector};
use crate::identity::PeerIdentity;

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
    /// Upstream priority (reporting order only).
    pub priority: i64,
    /// Cap on the TTL of a grant through this rule.
    pub max_ttl: Option<u64>,
    /// Cap on the uses of a grant through this rule.
    pub max_uses: Option<u64>,
}

impl Rule {
    /// `policy/rule`, the name decisions use.
    pub fn qualified_id(&self) -> String {
        format!("{}/{}", self.policy_id, self.id)
    }

    /// Whether the rule applies to this caller and resource at this time (actions aside).
    pub fn applies(&self, id: &PeerIdentity, resource: &str, now: Timestamp) -> bool {
        self.identities.iter().any(|s| s.matches(id))
            && self.resources.iter().any(|p| p.matches(resource))
            && self.conditions.iter().all(|c| c.holds(now))
    }

    /// Whether the rule covers this action.
    pub fn covers_action(&self, action: &str) -> bool {
        self.actions.iter().any(|p| p.matches(action))
    }
}

/// A condition over facts the agent knows itself (here: the time, in UTC).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The current UTC hour is (or, negated, is not) one of these.
    Hours {
        /// Hours 0–23.
        hours: BTreeSet<u8>,
        /// Inverts the test.
        negate: bool,
    },
    /// The current UTC weekday (0 = Sunday) is (or is not) one of these.
    DaysOfWeek {
        /// Days 0–6.
        days: BTreeSet<u8>,
        /// Inverts the test.
        negate: bool,
    },
}

impl Condition {
    /// Whether the condition holds at `now`.
    pub fn holds(&self, now: Timestamp) -> bool {
        let t = now.to_zoned(jiff::tz::TimeZone::UTC);
        match self {
            Condition::Hours { hours, negate } => hours.contains(&(t.hour() as u8)) != *negate,
            Condition::DaysOfWeek { days, negate } => {
                days.contains(&(t.weekday().to_sunday_zero_offset() as u8)) != *negate
            }
        }
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
            "{what}: the list is empty, so the rule could never apply"
        ));
    }
    Ok(out)
}

/// Compiles one condition, refusing anything that tests what the client says.
pub fn compile_condition(c: &ConditionDocument) -> Result<Condition, String> {
    let op = c.operator.as_deref().unwrap_or("in");
    if c.kind == "context" || c.kind == "request" || c.kind == "label" {
        return Err(format!(
            "condition type {:?} tests what the client supplies about itself, which it can set to anything; conditions may test only the time, the verified identity, the resource and the action",
            c.kind
        ));
    }
    if c.kind != "time" {
        return Err(format!(
            "unsupported condition type {:?} (supported: time)",
            c.kind
        ));
    }
    if op != "in" {
        return Err(format!(
            "unsupported operator {op:?} for a time condition (supported: in)"
        ));
    }
    match c.key.as_deref() {
        Some("hours") => Ok(Condition::Hours {
            hours: small_ints(&c.value, 23, "hours")?,
            negate: c.negate,
        }),
        Some("daysOfWeek") => Ok(Condition::DaysOfWeek {
            days: small_ints(&c.value, 6, "daysOfWeek")?,
            negate: c.negate,
        }),
        other => Err(format!(
            "time condition key {other:?} is not hours or daysOfWeek"
        )),
    }
}

/// Validates and compiles one rule of `policy_id`.
pub fn compile_rule(policy_id: &str, r: &RuleDocument) -> Result<Rule, String> {
    if r.id.trim().is_empty() {
        return Err("a rule needs a non-empty id".to_string());
    }
    let ctx = |m: String| format!("rule {:?}: {m}", r.id);
    if r.resources.is_empty() {
        return Err(ctx(
            "resources is empty, so the rule could never apply".into()
        ));
    }
    if r.actions.is_empty() {
        return Err(ctx("actions is empty, so the rule could never apply".into()));
    }
    if r.identities.is_empty() {
        return Err(ctx(
            "identities is empty: name who the rule applies to (\"*\" for everyone)".into(),
        ));
    }
    if r.max_ttl == Some(0) {
        return Err(ctx("max_ttl must be at least 1 second".into()));
    }
    let identities = r
        .identities
        .iter()
        .map(|s| Selector::parse(s).map_err(|e| ctx(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = r
        .conditions
        .iter()
        .map(|c| compile_condition(c).map_err(&ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        policy_id: policy_id.to_string(),
        id: r.id.clone(),
        description: r.description.clone().or_else(|| r.name.clone()),
        effect: r.effect,
        resources: r.resources.iter().map(|p| Pattern::new(p)).collect(),
        actions: r.actions.iter().map(|p| Pattern::new(p)).collect(),
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

    #[test]
    fn time_conditions() {
        // 2023-11-14T22:13:20Z is a Tuesday (2), hour 22.
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        assert!(
            cond(json!({"type":"time","key":"hours","value":[22,23]}))
                .unwrap()
                .holds(now)
        );
        assert!(
            !cond(json!({"type":"time","key":"hours","value":[9]}))
                .unwrap()
                .holds(now)
        );
        assert!(
            !cond(json!({"type":"time","key":"hours","value":[22],"negate":true}))
                .unwrap()
                .holds(now)
        );
        assert!(
            cond(json!({"type":"time","key":"daysOfWeek","value":[2]}))
                .unwrap()
                .holds(now)
        );
        assert!(
            !cond(json!({"type":"time","key":"daysOfWeek","value":[0,6]}))
                .unwrap()
                .holds(now)
        );
    }

    #[test]
    fn context_conditions_and_nonsense_are_refused() {
        let e = cond(json!({"type":"context","key":"env","value":"prod"})).unwrap_err();
        assert!(e.contains("client"), "{e}");
        assert!(cond(json!({"type":"time","key":"hours","value":[24]})).is_err());
        assert!(cond(json!({"type":"time","key":"hours","value":[]})).is_err());
        assert!(cond(json!({"type":"time","key":"minutes","value":[1]})).is_err());
        assert!(cond(json!({"type":"geo","key":"x","value":[1]})).is_err());
    }
}
