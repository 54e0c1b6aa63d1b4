//! Listing capabilities: who may list what, the filters, the order (newest first) and the
//! page.
//!
//! Plain functions over the registry's records; the `CapabilityRegistry` actor calls them.

use jiff::Timestamp;

use super::record::Record;
use crate::protocol::types::{Capability, CapabilityFilter, ListResponse};
use crate::protocol::{ErrorCode, ErrorPayload};

/// Most capabilities one list answer carries.
pub const MAX_LIST: usize = 1000;

/// The capabilities among `caps` that `f` selects, for a caller with `caller_uid` (all uids'
/// only for an administrator), as they stand at `now`.
pub fn list<'a>(
    caps: impl Iterator<Item = &'a Record>,
    f: &CapabilityFilter,
    caller_uid: u32,
    is_admin: bool,
    now: Timestamp,
) -> Result<ListResponse, ErrorPayload> {
    if !is_admin && f.uid.is_some_and(|u| u != caller_uid) {
        return Err(ErrorPayload::new(
            ErrorCode::PermissionDenied,
            "only administrators may list other users' capabilities",
        ));
    }
    if let Some(s) = &f.status {
        if !["active", "revoked", "expired"].contains(&s.as_str()) {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidPayload,
                format!("status {s:?} is not active, revoked or expired"),
            ));
        }
    }
    let uid = if is_admin { f.uid } else { Some(caller_uid) };
    let mut matching: Vec<&Record> = caps
        .filter(|r| uid.is_none_or(|u| r.holder.uid == u))
        .filter(|r| f.id.as_deref().is_none_or(|s| r.cap.id == s))
        .filter(|r| {
            f.status
                .as_deref()
                .is_none_or(|s| r.status(now).as_str() == s)
        })
        .filter(|r| f.resource.as_deref().is_none_or(|s| r.cap.resource == s))
        .filter(|r| f.identity.as_deref().is_none_or(|s| r.cap.identity == s))
        .filter(|r| f.kind.as_deref().is_none_or(|s| r.cap.kind == s))
        .filter(|r| f.issuer.as_deref().is_none_or(|s| r.cap.issuer == s))
        .collect();
    matching.sort_by(|a, b| {
        b.cap
            .issued_at
            .cmp(&a.cap.issued_at)
            .then_with(|| a.cap.id.cmp(&b.cap.id))
    });
    let total = matching.len();
    let capabilities: Vec<Capability> = matching
        .into_iter()
        .skip(f.offset.unwrap_or(0))
        .take(f.limit.unwrap_or(MAX_LIST).min(MAX_LIST))
        .map(|r| r.to_wire(now))
        .collect();
    Ok(ListResponse {
        count: capabilities.len(),
        capabilities,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::Holder;

    fn record(id: &str, uid: u32, issued: i64) -> Record {
        let expires = Timestamp::from_second(issued + 600).unwrap();
        Record {
            cap: super::super::issue::sample(id, issued, 600),
            holder: Holder {
                uid,
                gid: uid,
                user: None,
                unit: None,
            },
            expires_at: expires,
            revoked: None,
        }
    }

    #[test]
    fn a_user_lists_only_their_own_newest_first_an_admin_anyone() {
        let caps = [
            record("a", 1000, 100),
            record("b", 1001, 200),
            record("c", 1000, 300),
        ];
        let now = Timestamp::from_second(400).unwrap();
        let all = CapabilityFilter::default();
        let own = list(caps.iter(), &all, 1000, false, now).unwrap();
        let ids: Vec<&str> = own.capabilities.iter().map(|c| c.id.as_str()).collect();
        assert_eq!((ids, own.total), (vec!["c", "a"], 2));
        let other = CapabilityFilter {
            uid: Some(1001),
            ..Default::default()
        };
        let e = list(caps.iter(), &other, 1000, false, now).unwrap_err();
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        let theirs = list(caps.iter(), &other, 0, true, now).unwrap();
        assert_eq!(theirs.capabilities[0].id, "b");
    }
}
