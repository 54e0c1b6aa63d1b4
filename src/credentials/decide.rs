//! The decision on one credential request, as plain functions over plain data: who is asking
//! ([`decide`]), what the unit gets ([`render`]), and what a start would get for
//! `credential test` ([`explain`]).
//!
//! The caller is believed to be the service manager starting the unit its address names only
//! if it is uid 0 and its process, pinned by a pidfd when its identity was read, is in that
//! unit's cgroup (its verified `unit` is the one named). Then the set in force must map the
//! `(unit, id)` to a secret, and its rules must allow `read` on that secret to the caller,
//! evaluated as any capability request is (a deny wins).
//!
//! A refusal answers one of two ways ([`Answer`]). A caller that is not verified as the service
//! manager starting the unit gets nothing: the connection is closed without a byte. The service
//! manager itself is sent more bytes than systemd takes for a credential (1 MiB, its
//! `CREDENTIAL_SIZE_MAX`), so that the unit's start fails ("Failed to set up credentials",
//! status 243/CREDENTIALS): an empty answer would be stored as an empty credential, and the
//! unit would start without its secret (so systemd 252 does).

use jiff::Timestamp;
use zeroize::Zeroizing;

use super::address::{AddressError, PeerAddress};
use crate::audit::Outcome;
use crate::identity::{Attribute, PeerIdentity};
use crate::policy::credentials::CredentialMapping;
use crate::policy::{EvalInput, PolicySet, evaluate};
use crate::protocol::credentials::CredentialTestResponse;
use crate::secrets::SecretVersion;

/// How many bytes make systemd refuse a credential: one more than its `CREDENTIAL_SIZE_MAX`.
pub const FAIL_START_BYTES: usize = crate::config::CREDENTIAL_SIZE_MAX + 1;

/// What a refused caller is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Nothing: the connection is closed without a byte.
    Nothing,
    /// [`FAIL_START_BYTES`] zero bytes, so that the unit's start fails.
    FailStart,
}

/// A request to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The mapping.
    pub mapping: CredentialMapping,
    /// Rules that allowed it, as `policy/rule`.
    pub rules: Vec<String>,
    /// Why, in words (`"read" is allowed by rule p/r`).
    pub reasoning: String,
    /// The policy generation that decided.
    pub generation: u64,
}

/// A request refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the caller is sent.
    pub answer: Answer,
    /// `Denied` (who asks, the mapping or the policy said no) or `Failure` (the value could not
    /// be had).
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
    /// The mapping, if the request got that far.
    pub mapping: Option<CredentialMapping>,
    /// Rules that decided, as `policy/rule`.
    pub rules: Vec<String>,
    /// The policy generation that decided, once a set was consulted.
    pub generation: Option<u64>,
}

impl Refusal {
    fn caller(reason: String) -> Refusal {
        Refusal {
            answer: Answer::Nothing,
            outcome: Outcome::Denied,
            reason,
            mapping: None,
            rules: Vec::new(),
            generation: None,
        }
    }

    /// A refusal of a delivery the decision allowed, because its value could not be had (the
    /// backend failed, the field is missing, the value is too large).
    pub fn failure(delivery: &Delivery, reason: String) -> Refusal {
        Refusal {
            answer: Answer::FailStart,
            outcome: Outcome::Failure,
            reason,
            mapping: Some(delivery.mapping.clone()),
            rules: delivery.rules.clone(),
            generation: Some(delivery.generation),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Read the secret and send it.
    Deliver(Delivery),
    /// Send nothing, or make the start fail.
    Refuse(Refusal),
}

/// Decides a request from `caller` (its identity read at accept, pinned) bound to `address`,
/// with the set in force.
pub fn decide(
    set: &PolicySet,
    caller: &PeerIdentity,
    address: &Result<PeerAddress, AddressError>,
    now: Timestamp,
) -> Verdict {
    let refuse = |reason: String| Verdict::Refuse(Refusal::caller(reason));
    let address = match address {
        Ok(a) => a,
        Err(e) => return refuse(format!("refused: {e}")),
    };
    if caller.uid != 0 {
        return refuse(format!(
            "refused: the caller is uid {}, not root: only the service manager (uid 0) is given credentials",
            caller.uid
        ));
    }
    if !caller.pinned || caller.is_unverified(Attribute::Unit) {
        return refuse(format!(
            "refused: the caller's process could not be verified (it exited, or its /proc entry could not be read), so it is not known to be in {}",
            address.unit
        ));
    }
    match caller.unit.as_deref() {
        Some(unit) if unit == address.unit => {}
        Some(unit) => {
            return refuse(format!(
                "refused: the caller's address names unit {}, but its process is in unit {unit}",
                address.unit
            ));
        }
        None => {
            return refuse(format!(
                "refused: the caller's address names unit {}, but its process is in no unit",
                address.unit
            ));
        }
    }
    decide_for_unit(set, caller, &address.unit, &address.id, now)
}

/// The decision once the caller is known to be the service manager starting `unit`.
fn decide_for_unit(
    set: &PolicySet,
    caller: &PeerIdentity,
    unit: &str,
    id: &str,
    now: Timestamp,
) -> Verdict {
    let Some(mapping) = set.credential(unit, id) else {
        return Verdict::Refuse(Refusal {
            answer: Answer::FailStart,
            outcome: Outcome::Denied,
            reason: format!(
                "refused: no policy maps credential {id} of unit {unit} (policy generation {})",
                set.generation
            ),
            mapping: None,
            rules: Vec::new(),
            generation: Some(set.generation),
        });
    };
    let actions = ["read".to_string()];
    let d = evaluate(
        set,
        EvalInput {
            identity: caller,
            resource: &mapping.resource,
            actions: &actions,
            now,
        },
    );
    if !d.allowed {
        return Verdict::Refuse(Refusal {
            answer: Answer::FailStart,
            outcome: Outcome::Denied,
            reason: format!(
                "refused: the rules do not allow read on {} to unit {unit} ({})",
                mapping.resource, d.reasoning
            ),
            mapping: Some(mapping.clone()),
            rules: d.applied_rules,
            generation: Some(d.generation),
        });
    }
    // "granted: …" is the capability request's word for it.
    let reasoning = d
        .reasoning
        .strip_prefix("granted: ")
        .unwrap_or(&d.reasoning)
        .to_string();
    Verdict::Deliver(Delivery {
        mapping: mapping.clone(),
        rules: d.applied_rules,
        reasoning,
        generation: d.generation,
    })
}

/// The bytes the unit gets from `version` of its secret: the `#field`'s value as it is, or
/// without one the whole secret as a compact JSON object; `Err` (naming no value) if the field
/// is missing or the bytes are more than `max`.
pub fn render(
    version: &SecretVersion,
    mapping: &CredentialMapping,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let bytes = match &mapping.field {
        Some(field) => {
            let value = version.data.get(field).ok_or_else(|| {
                let fields: Vec<&str> = version.data.keys().map(String::as_str).collect();
                format!(
                    "{} has no field {:?} (its fields: {})",
                    mapping.resource,
                    crate::oplog::clean(field),
                    crate::oplog::clean(&fields.join(", "))
                )
            })?;
            Zeroizing::new(value.expose().as_bytes().to_vec())
        }
        None => {
            let size: usize = version
                .data
                .iter()
                .map(|(k, v)| 2 * (k.len() + v.expose().len()) + 8)
                .sum();
            let mut out = Zeroizing::new(Vec::with_capacity(size + 2));
            serde_json::to_writer(&mut *out, &version.data)
                .map_err(|e| format!("{} could not be written as JSON: {e}", mapping.resource))?;
            out
        }
    };
    if bytes.len() > max {
        return Err(format!(
            "the value of {} is {} bytes, more than credentials.max_value_bytes ({max})",
            mapping.secret,
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The identity the service manager has when it starts `unit`, as far as policy sees it: uid
/// 0 (root, its groups), in `unit`. Its executable is not known here, so rules that test
/// `exe:` do not allow it.
pub fn service_manager(unit: &str) -> PeerIdentity {
    let spec = crate::protocol::types::IdentitySpec {
        uid: Some(0),
        unit: Some(unit.to_string()),
        ..Default::default()
    };
    let mut id = crate::policy::tester::resolve(&spec).unwrap_or_else(|_| PeerIdentity::bare(0, 0));
    id.unit = Some(unit.to_string());
    id.pinned = true;
    id
}

/// What a start of `unit` asking for credential `id` would get with `set`, without the backend
/// (`backend` and `bytes` are left for the caller to fill).
pub fn explain(set: &PolicySet, unit: &str, id: &str) -> CredentialTestResponse {
    let mut out = CredentialTestResponse {
        unit: unit.to_string(),
        id: id.to_string(),
        decision: "refuse".into(),
        reason: String::new(),
        mapping: None,
        rules: Vec::new(),
        generation: set.generation,
        backend: None,
        bytes: None,
    };
    if let Err(e) = super::names::check_unit_name(unit).and(super::names::check_credential_id(id)) {
        out.reason = format!("refused: systemd never asks for this: {e}");
        return out;
    }
    let caller = service_manager(unit);
    match decide_for_unit(set, &caller, unit, id, Timestamp::now()) {
        Verdict::Deliver(d) => {
            out.decision = "deliver".into();
            out.reason = format!("delivered: {}", d.reasoning);
            out.mapping = Some((&d.mapping).into());
            out.rules = d.rules;
        }
        Verdict::Refuse(r) => {
            out.reason = r.reason;
            out.mapping = r.mapping.as_ref().map(Into::into);
            out.rules = r.rules;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Fallback;
    use crate::policy::load::{compile, parse_document};
    use crate::secrets::SecretString;
    use std::path::{Path, PathBuf};

    const POLICY: &str = r#"{"id":"p","rules":[
        {"id":"billing","effect":"allow","resources":["secret:/db/*"],"actions":["read"],"identities":["unit:billing.service"]},
        {"id":"no-legacy","effect":"deny","resources":["secret:/db/legacy"],"actions":["*"],"identities":["*"]}],
      "credentials":[
        {"unit":"billing.service","id":"db-password","secret":"secret:/db/primary#password"},
        {"unit":"billing.service","id":"db","secret":"secret:/db/primary"},
        {"unit":"billing.service","id":"legacy","secret":"secret:/db/legacy#password"},
        {"unit":"other.service","id":"db-password","secret":"secret:/db/primary#password"}]}"#;

    fn set() -> PolicySet {
        let l = compile(vec![(
            PathBuf::from("/p/p.json"),
            parse_document(Path::new("p"), POLICY).unwrap(),
        )])
        .unwrap();
        PolicySet::from_loaded(7, l, Fallback::DenyAll)
    }

    fn addr(unit: &str, id: &str) -> Result<PeerAddress, AddressError> {
        Ok(PeerAddress {
            unit: unit.into(),
            id: id.into(),
        })
    }

    fn refused(v: Verdict) -> Refusal {
        match v {
            Verdict::Refuse(r) => r,
            Verdict::Deliver(d) => panic!("delivered: {d:?}"),
        }
    }

    #[test]
    fn the_service_manager_in_the_unit_gets_a_mapped_and_allowed_secret() {
        let set = set();
        let caller = service_manager("billing.service");
        let Verdict::Deliver(d) = decide(
            &set,
            &caller,
            &addr("billing.service", "db-password"),
            Timestamp::now(),
        ) else {
            panic!("refused")
        };
        assert_eq!(d.mapping.path, "db/primary");
        assert_eq!(d.rules, vec!["p/billing"]);
        assert_eq!(d.generation, 7);
    }

    #[test]
    fn callers_that_are_not_verified_get_nothing() {
        let set = set();
        let now = Timestamp::now();
        let good = addr("billing.service", "db-password");
        let mut not_root = service_manager("billing.service");
        not_root.uid = 1000;
        let mut unpinned = service_manager("billing.service");
        unpinned.pinned = false;
        let mut exited = service_manager("billing.service");
        exited.unit = None;
        exited.unverified = vec![Attribute::Unit];
        let elsewhere = service_manager("shell.service");
        let mut nowhere = service_manager("billing.service");
        nowhere.unit = None;
        let malformed = Err(AddressError::Unnamed);
        for (caller, address, why) in [
            (&not_root, &good, "uid 1000, not root"),
            (&unpinned, &good, "could not be verified"),
            (&exited, &good, "could not be verified"),
            (&elsewhere, &good, "is in unit shell.service"),
            (&nowhere, &good, "in no unit"),
            (
                &service_manager("billing.service"),
                &malformed,
                "no address",
            ),
        ] {
            let r = refused(decide(&set, caller, address, now));
            assert_eq!(r.answer, Answer::Nothing, "{why}");
            assert_eq!(r.outcome, Outcome::Denied);
            assert!(r.reason.contains(why), "{why}: {}", r.reason);
            assert!(r.mapping.is_none() && r.generation.is_none());
        }
    }

    #[test]
    fn the_service_manager_refused_by_mapping_or_rules_fails_the_start() {
        let set = set();
        let now = Timestamp::now();
        let r = refused(decide(
            &set,
            &service_manager("billing.service"),
            &addr("billing.service", "api-key"),
            now,
        ));
        assert_eq!((r.answer, r.outcome), (Answer::FailStart, Outcome::Denied));
        assert!(
            r.reason.contains("no policy maps credential api-key"),
            "{}",
            r.reason
        );
        let r = refused(decide(
            &set,
            &service_manager("billing.service"),
            &addr("billing.service", "legacy"),
            now,
        ));
        assert_eq!(r.answer, Answer::FailStart);
        assert_eq!(r.rules, vec!["p/no-legacy"], "the deny wins: {}", r.reason);
        let r = refused(decide(
            &set,
            &service_manager("other.service"),
            &addr("other.service", "db-password"),
            now,
        ));
        assert!(r.reason.contains("do not allow read"), "{}", r.reason);
        assert_eq!(r.mapping.unwrap().unit, "other.service");
    }

    #[test]
    fn a_field_is_sent_raw_and_a_whole_secret_as_json() {
        let set = set();
        let version = SecretVersion {
            version: 3,
            created_time: "t".into(),
            data: [
                ("password".to_string(), SecretString::new("s3cr\"et".into())),
                ("user".to_string(), SecretString::new("billing".into())),
            ]
            .into(),
        };
        let field = set.credential("billing.service", "db-password").unwrap();
        assert_eq!(&render(&version, field, 100).unwrap()[..], b"s3cr\"et");
        let whole = set.credential("billing.service", "db").unwrap();
        assert_eq!(
            &render(&version, whole, 100).unwrap()[..],
            br#"{"password":"s3cr\"et","user":"billing"}"#
        );
        let e = render(&version, whole, 10).unwrap_err();
        assert!(
            e.contains("credentials.max_value_bytes (10)") && !e.contains("s3cr"),
            "{e}"
        );
        let mut other = field.clone();
        other.field = Some("pw".into());
        let e = render(&version, &other, 100).unwrap_err();
        assert!(
            e.contains("no field \"pw\"") && e.contains("password, user"),
            "{e}"
        );
    }

    #[test]
    fn explain_says_what_a_start_would_get() {
        let set = set();
        let t = explain(&set, "billing.service", "db-password");
        assert_eq!(t.decision, "deliver", "{}", t.reason);
        assert_eq!(t.mapping.unwrap().resource, "secret:/db/primary");
        let t = explain(&set, "billing.service", "nope");
        assert_eq!(t.decision, "refuse");
        assert!(t.reason.contains("no policy maps"), "{}", t.reason);
        let t = explain(&set, "billing", "x");
        assert!(t.reason.contains("never asks"), "{}", t.reason);
    }
}
