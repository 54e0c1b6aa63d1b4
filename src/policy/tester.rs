//! Asking "what would the policy decide?" without issuing anything: the engine of
//! `aether-vault policy test` (offline against a directory, or live against the agent's set).
//!
//! The identity here is described by the operator, not read from the kernel, which is why the
//! live form is for administrators only. It goes through the same evaluation and grant terms as
//! a real request.

use nix::unistd::{Gid, Group, Uid, User};

use super::{EvalInput, PolicySet, evaluate};
use crate::capability::{GrantLimits, plan_grant};
use crate::identity::PeerIdentity;
use crate::protocol::types::{CapabilityRequest, IdentitySpec, PolicyTestResponse, TestedIdentity};

/// The identity as the engine sees it, with names resolved through NSS.
pub fn resolve(spec: &IdentitySpec) -> Result<PeerIdentity, String> {
    {
        let this = spec;
        let user = match (&this.uid, &this.user) {
            (_, Some(name)) => Some(
                User::from_name(name)
                    .map_err(|e| format!("cannot look up user {name:?}: {e}"))?
                    .ok_or_else(|| format!("no user named {name:?}"))?,
            ),
            (Some(uid), None) => User::from_uid(Uid::from_raw(*uid)).ok().flatten(),
            (None, None) => return Err("name the identity with a uid or a user".into()),
        };
        if let (Some(uid), Some(u)) = (this.uid, &user) {
            if u.uid.as_raw() != uid {
                return Err(format!("user {:?} has uid {}, not {uid}", u.name, u.uid));
            }
        }
        let uid = this
            .uid
            .or(user.as_ref().map(|u| u.uid.as_raw()))
            .unwrap_or_default();
        let gid = user.as_ref().map(|u| u.gid.as_raw()).unwrap_or(uid);
        let mut id = PeerIdentity::bare(uid, gid);
        id.user = user.as_ref().map(|u| u.name.clone());
        if let Some(g) = Group::from_gid(Gid::from_raw(gid)).ok().flatten() {
            id.group_names.push(g.name);
        }
        for name in &this.groups {
            let g = Group::from_name(name)
                .map_err(|e| format!("cannot look up group {name:?}: {e}"))?
                .ok_or_else(|| format!("no group named {name:?}"))?;
            id.groups.push(g.gid.as_raw());
            if !id.group_names.contains(&g.name) {
                id.group_names.push(g.name);
            }
        }
        id.unit = this.unit.clone();
        id.exe = this.exe.clone();
        Ok(id)
    }
}

/// Decides `actions` on `resource` for `identity` with `set`, and the terms a grant would get.
pub fn explain(
    set: &PolicySet,
    identity: PeerIdentity,
    resource: &str,
    actions: &[String],
    limits: &GrantLimits,
) -> PolicyTestResponse {
    let started = std::time::Instant::now();
    let d = evaluate(
        set,
        EvalInput {
            identity: &identity,
            resource,
            actions,
            now: jiff::Timestamp::now(),
        },
    );
    let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let tested = TestedIdentity {
        uid: identity.uid,
        gid: identity.gid,
        user: identity.user.clone(),
        groups: identity.group_names.clone(),
        unit: identity.unit.clone(),
        exe: identity.exe.clone(),
    };
    let mut out = PolicyTestResponse {
        result: d.policy_result(elapsed),
        ttl: None,
        max_uses: None,
        generation: d.generation,
        identity: tested,
    };
    if d.allowed {
        let req = CapabilityRequest {
            resource: resource.to_string(),
            actions: actions.to_vec(),
            ..Default::default()
        };
        if let Ok(plan) = plan_grant(&req, limits, &d) {
            out.ttl = Some(plan.ttl);
            out.max_uses = Some(plan.max_uses);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Fallback;
    use crate::policy::load::{compile, parse_document};
    use std::path::{Path, PathBuf};

    #[test]
    fn explains_with_caps_and_resolves_root() {
        let doc = r#"{"id":"p","rules":[{"id":"r","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["user:root","group:nogroup"],"max_ttl":30,"max_uses":3}]}"#;
        let l = compile(vec![(
            PathBuf::from("p.json"),
            parse_document(Path::new("p"), doc).unwrap(),
        )])
        .unwrap();
        let set = PolicySet::from_loaded(4, l, Fallback::DenyAll);
        let limits = GrantLimits {
            default_ttl: 300,
            max_ttl: 3600,
            max_uses: 100,
            issuer: "i".into(),
        };
        let root = resolve(&IdentitySpec {
            uid: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(root.user.as_deref(), Some("root"));
        let o = explain(&set, root, "secret:/x", &["read".to_string()], &limits);
        assert_eq!(
            (o.result.decision.as_str(), o.ttl, o.max_uses, o.generation),
            ("allow", Some(30), Some(3), 4)
        );
        assert_eq!(o.result.applied_rules, vec!["p/r"]);
        let o = explain(
            &set,
            PeerIdentity::bare(12345, 12345),
            "secret:/x",
            &["read".to_string()],
            &limits,
        );
        assert_eq!(o.result.decision, "deny");
        assert!(o.ttl.is_none());
        let grouped = resolve(&IdentitySpec {
            uid: Some(12345),
            groups: vec!["nogroup".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            explain(&set, grouped, "secret:/x", &["read".to_string()], &limits)
                .result
                .decision,
            "allow"
        );
    }

    #[test]
    fn inconsistent_or_unknown_names_are_errors() {
        assert!(resolve(&IdentitySpec::default()).is_err());
        assert!(
            resolve(&IdentitySpec {
                user: Some("no-such-user-xyz".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            resolve(&IdentitySpec {
                uid: Some(5),
                user: Some("root".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            resolve(&IdentitySpec {
                uid: Some(0),
                groups: vec!["no-such-group-xyz".into()],
                ..Default::default()
            })
            .is_err()
        );
    }
}
