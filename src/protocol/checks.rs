//! The checks a request's payload must pass before any actor sees it: sense (a required id,
//! no negative TTL), the canonical spelling of resources and actions, and the limits of the
//! `requests` configuration section, each refused with a message naming its key. Plain
//! functions over the payload types, shared by the session's dispatch and the fuzzer.

use serde::Serialize;

use super::credentials::CredentialTestRequest;
use super::types::{CapabilityRequest, PolicyTestRequest, RevokeRequest, ValidateRequest};
use crate::config::RequestLimits;

/// Most bytes a capability id may have (`cap_` and 32 hex digits are 36).
pub const MAX_CAPABILITY_ID_LEN: usize = 64;

/// The size of `value` as compact JSON, counted without building it.
pub fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    match serde_json::to_writer(&mut n, value) {
        Ok(()) => n.0,
        Err(_) => usize::MAX,
    }
}

/// `what` at most `max` bytes, else an error naming `key`.
fn at_most(what: &str, len: usize, max: usize, key: &str) -> Result<(), String> {
    if len > max {
        return Err(format!(
            "{what} is {len} bytes, more than the {max} allowed (requests.{key})"
        ));
    }
    Ok(())
}

/// At most `requests.max_wildcards` pattern characters in `text`.
fn wildcards(what: &str, text: &str, l: &RequestLimits) -> Result<(), String> {
    let n = text.chars().filter(|c| *c == '*' || *c == '?').count();
    if n > l.max_wildcards {
        return Err(format!(
            "{what} holds {n} pattern characters (* and ?), more than the {} allowed (requests.max_wildcards)",
            l.max_wildcards
        ));
    }
    Ok(())
}

/// A capability id is given, and could be one.
pub fn check_capability_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("capability_id is required".into());
    }
    if id.len() > MAX_CAPABILITY_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "capability_id is not a capability id (cap_ and 32 hex digits; at most {MAX_CAPABILITY_ID_LEN} printable ASCII characters)"
        ));
    }
    Ok(())
}

/// The resource and actions of a request: given, within their limits, canonical (the error
/// names the canonical form), actions made of action characters.
pub fn check_target(resource: &str, actions: &[String], l: &RequestLimits) -> Result<(), String> {
    if resource.trim().is_empty() {
        return Err("resource is required".into());
    }
    at_most(
        "resource",
        resource.len(),
        l.max_resource_len,
        "max_resource_len",
    )?;
    crate::resource::check_request_resource(resource).map_err(|e| e.to_string())?;
    wildcards("resource", resource, l)?;
    if actions.is_empty() {
        return Err("at least one action is required".into());
    }
    if actions.len() > l.max_actions {
        return Err(format!(
            "{} actions, more than the {} one request may name (requests.max_actions)",
            actions.len(),
            l.max_actions
        ));
    }
    for a in actions {
        at_most("an action", a.len(), l.max_action_len, "max_action_len")?;
        crate::resource::check_action(a, true, usize::MAX)?;
        wildcards("an action", a, l)?;
    }
    Ok(())
}

/// A `capability_request`.
pub fn check_request(req: &CapabilityRequest, l: &RequestLimits) -> Result<(), String> {
    check_target(&req.resource, &req.actions, l)?;
    at_most(
        "identity",
        req.identity.len(),
        l.max_identity_len,
        "max_identity_len",
    )?;
    let purpose = req.purpose.as_ref().map_or(0, String::len);
    at_most("purpose", purpose, l.max_purpose_len, "max_purpose_len")?;
    let context = req.context.as_ref().map_or(0, json_size);
    at_most("context", context, l.max_context_bytes, "max_context_bytes")?;
    let constraints = req.constraints.as_ref().map_or(0, json_size);
    at_most(
        "purpose, context and constraints together",
        purpose.saturating_add(context).saturating_add(constraints),
        l.max_metadata_bytes,
        "max_metadata_bytes",
    )?;
    if req.ttl.is_some_and(|t| t < 0) {
        return Err("ttl must not be negative".into());
    }
    if req.max_uses.is_some_and(|u| u < 0) {
        return Err("maxUses must not be negative".into());
    }
    if let Some(c) = &req.constraints {
        crate::capability::constraints::check_well_formed(c)?;
    }
    Ok(())
}

/// A `capability_validate`.
pub fn check_validate(req: &ValidateRequest, l: &RequestLimits) -> Result<(), String> {
    check_capability_id(&req.capability_id)?;
    let context = req.context.as_ref().map_or(0, json_size);
    at_most("context", context, l.max_context_bytes, "max_context_bytes")
}

/// A `capability_revoke`.
pub fn check_revoke(req: &RevokeRequest, l: &RequestLimits) -> Result<(), String> {
    check_capability_id(&req.capability_id)?;
    let reason = req.reason.as_ref().map_or(0, String::len);
    at_most("reason", reason, l.max_purpose_len, "max_purpose_len")?;
    let by = req.revoked_by.as_ref().map_or(0, String::len);
    at_most("revoked_by", by, l.max_identity_len, "max_identity_len")
}

/// A `policy_test`.
pub fn check_policy_test(req: &PolicyTestRequest, l: &RequestLimits) -> Result<(), String> {
    if req.resource.is_empty() || req.actions.is_empty() {
        return Err("resource and actions are required".into());
    }
    check_target(&req.resource, &req.actions, l)
}

/// Checks a `credential_test` request: a unit and a credential id systemd could ask for.
pub fn check_credential_test(req: &CredentialTestRequest) -> Result<(), String> {
    crate::credentials::names::check_unit_name(&req.unit)?;
    crate::credentials::names::check_credential_id(&req.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: serde_json::Value) -> CapabilityRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_limit_is_named_in_its_error() {
        let l = RequestLimits::default();
        let ok = json!({"resource":"secret:/a","actions":["read"]});
        assert!(check_request(&req(ok), &l).is_ok());
        let long = |n: usize| "x".repeat(n);
        for (payload, key) in [
            (
                json!({"resource":"secret:/a","actions":vec!["read"; 33]}),
                "requests.max_actions",
            ),
            (
                json!({"resource":"secret:/a","actions":[long(65)]}),
                "requests.max_action_len",
            ),
            (
                json!({"resource":format!("secret:/{}", long(1020)),"actions":["read"]}),
                "requests.max_resource_len",
            ),
            (
                json!({"resource":"secret:/a","actions":["read"],"identity":long(257)}),
                "requests.max_identity_len",
            ),
            (
                json!({"resource":"secret:/a","actions":["read"],"purpose":long(1025)}),
                "requests.max_purpose_len",
            ),
            (
                json!({"resource":"secret:/a","actions":["read"],"context":{"k":long(4096)}}),
                "requests.max_context_bytes",
            ),
            (
                json!({"resource":"secret:/a","actions":["read"],"purpose":long(1000),"context":{"k":long(4000)},
                    "constraints":{"environment":{"a":long(3500)}}}),
                "requests.max_metadata_bytes",
            ),
            (
                json!({"resource":"secret:/*a*a*a*a*a*a*a*a*","actions":["read"]}),
                "requests.max_wildcards",
            ),
            (
                json!({"resource":"secret:/a","actions":["*?*?*?*?*"]}),
                "requests.max_wildcards",
            ),
        ] {
            let e = check_request(&req(payload), &l).unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
        let e = check_request(
            &req(json!({"resource":"secret:/a","actions":["re ad"]})),
            &l,
        )
        .unwrap_err();
        assert!(e.contains("ASCII letters"), "{e}");
        let e = check_request(
            &req(json!({"resource":"secret://a","actions":["read"]})),
            &l,
        )
        .unwrap_err();
        assert!(e.contains("\"secret:/a\""), "{e}");
    }

    #[test]
    fn ids_reasons_and_contexts() {
        let l = RequestLimits::default();
        assert!(check_capability_id("cap_0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "cap_\n", &"c".repeat(65)] {
            assert!(check_capability_id(bad).is_err(), "{bad:?}");
        }
        let revoke = |v| serde_json::from_value::<RevokeRequest>(v).unwrap();
        assert!(
            check_revoke(
                &revoke(json!({"capability_id":"cap_1","reason":"x".repeat(1025)})),
                &l
            )
            .unwrap_err()
            .contains("requests.max_purpose_len")
        );
        let validate = |v| serde_json::from_value::<ValidateRequest>(v).unwrap();
        assert!(check_validate(&validate(json!({"capability_id":"cap_1","context":{"environment":{"k":"x".repeat(5000)}}})), &l)
            .unwrap_err()
            .contains("requests.max_context_bytes"));
        assert_eq!(json_size(&json!({"a":[1,2]})), 11);
    }
}
