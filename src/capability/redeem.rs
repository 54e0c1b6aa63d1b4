//! The checks of a capability's use that go beyond its own record ([`super::record::check`]):
//! whether the policy in force still allows it for the caller ([`still_allowed`], at every
//! validation and redemption), and which secret path a redemption acts on ([`redemption_path`]).
//! Plain functions; the `CapabilityRegistry` actor calls them.

use jiff::Timestamp;

use crate::identity::PeerIdentity;
use crate::policy::{EvalInput, PolicySet, evaluate};
use crate::protocol::ErrorCode;
use crate::protocol::types::Capability;

/// Whether the policy in force still allows `cap`'s actions on its resource for the caller as
/// verified on this connection; if not, why, and the rules that decided. Every use of a
/// capability (a validation, a redemption) is decided again: a reload that denies what it
/// carries stops it at its next use, and a reload that allows more never widens it.
pub fn still_allowed(
    policy: &PolicySet,
    identity: &PeerIdentity,
    cap: &Capability,
    now: Timestamp,
) -> Result<(), (String, Vec<String>)> {
    // A capability issued before resources had one spelling (restored from the store) may
    // name one in another: decided as text, it could pass a deny rule. It is refused.
    if let Err(e) = crate::resource::check_request_resource(&cap.resource) {
        return Err((
            format!(
                "the capability was issued for a resource in a spelling the agent no longer accepts ({e}); ask for a new one"
            ),
            Vec::new(),
        ));
    }
    let decision = evaluate(
        policy,
        EvalInput {
            identity,
            resource: &cap.resource,
            actions: &cap.actions,
            now,
        },
    );
    if decision.allowed {
        return Ok(());
    }
    Err((
        format!(
            "the policy in force (generation {}) no longer allows this capability: {}",
            decision.generation, decision.reasoning
        ),
        decision.applied_rules,
    ))
}

/// The secret path a redemption of `cap` for `action` acts on, from the `path` the message
/// gives (canonical, naming a folder for `list` and a secret otherwise), or, when it gives
/// none, from the capability's resource if that names one secret; refused unless the
/// capability carries the action and its resource covers `secret:/PATH`.
pub fn redemption_path(
    cap: &Capability,
    action: &str,
    path: Option<&str>,
) -> Result<String, (ErrorCode, String)> {
    use crate::resource::{PathKind, check_secret_path};
    let carries = cap
        .actions
        .iter()
        .any(|a| crate::policy::selector::Pattern::new(a).matches(action));
    if !carries {
        return Err((
            ErrorCode::PermissionDenied,
            format!("the capability does not carry the {action} action"),
        ));
    }
    let Some(of_cap) = cap.resource.strip_prefix("secret:/") else {
        return Err((
            ErrorCode::PermissionDenied,
            "the capability is not for a secret".into(),
        ));
    };
    let kind = if action == "list" {
        PathKind::Folder
    } else {
        PathKind::Secret
    };
    let path = match path {
        Some(p) => check_secret_path(p, kind)
            .map_err(|e| (ErrorCode::InvalidPayload, e.to_string()))?
            .to_string(),
        None if crate::resource::is_pattern(of_cap) => {
            return Err((
                ErrorCode::InvalidPayload,
                "path is required: the capability covers a pattern".into(),
            ));
        }
        None => check_secret_path(of_cap, kind)
            .map_err(|e| (ErrorCode::InvalidPayload, format!("path is required: {e}")))?
            .to_string(),
    };
    let concrete = format!("secret:/{path}");
    if !crate::policy::selector::Pattern::new(&cap.resource).matches(&concrete) {
        return Err((
            ErrorCode::PermissionDenied,
            format!("the capability does not cover {concrete}"),
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(resource: &str, actions: &[&str]) -> Capability {
        serde_json::from_value(serde_json::json!({
            "id": "cap_1", "type": "read", "resource": resource, "actions": actions,
            "identity": "", "issuer": "i", "issued_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-01T01:00:00Z", "ttl": 3600, "maxUses": 0, "usedCount": 0,
            "signature": "", "metadata": {}
        }))
        .unwrap()
    }

    #[test]
    fn a_capability_for_a_resource_spelled_otherwise_is_never_allowed_again() {
        let set = crate::policy::PolicySet::empty(1, crate::policy::Fallback::OwnerOnly { uid: 0 });
        let id = PeerIdentity::bare(0, 0);
        let now = Timestamp::now();
        assert!(still_allowed(&set, &id, &cap("secret:/prod/db", &["read"]), now).is_ok());
        let (why, _) =
            still_allowed(&set, &id, &cap("secret://prod/db", &["read"]), now).unwrap_err();
        assert!(why.contains("secret:/prod/db"), "{why}");
    }

    #[test]
    fn the_path_acted_on_is_the_path_decided_on() {
        let db = cap("secret:/db/*", &["re*", "list"]);
        assert_eq!(redemption_path(&db, "read", Some("db/x")).unwrap(), "db/x");
        assert_eq!(redemption_path(&db, "list", Some("db/")).unwrap(), "db/");
        for (action, path, code) in [
            ("read", Some("/db/x"), ErrorCode::InvalidPayload),
            ("read", Some("db//x"), ErrorCode::InvalidPayload),
            ("list", Some("db"), ErrorCode::InvalidPayload),
            ("read", None, ErrorCode::InvalidPayload),
            ("read", Some("web/x"), ErrorCode::PermissionDenied),
            ("write", Some("db/x"), ErrorCode::PermissionDenied),
            ("list", Some(""), ErrorCode::PermissionDenied),
        ] {
            let (c, why) = redemption_path(&db, action, path).unwrap_err();
            assert_eq!(c, code, "{action} {path:?}: {why}");
        }
        let folder = cap("secret:/db/", &["list"]);
        assert_eq!(redemption_path(&folder, "list", None).unwrap(), "db/");
        let one = cap("secret:/db", &["list", "read"]);
        assert_eq!(redemption_path(&one, "read", None).unwrap(), "db");
        assert_eq!(
            redemption_path(&one, "list", None).unwrap_err().0,
            ErrorCode::InvalidPayload
        );
        assert_eq!(
            redemption_path(&cap("config:/x", &["read"]), "read", None)
                .unwrap_err()
                .0,
            ErrorCode::PermissionDenied
        );
    }
}
