//! The upstream list filters beyond plain equality: `timeRange` (when a capability was issued),
//! `metadata` (values it carries) and the order, `sortBy` and `sortOrder`. Checked once into a
//! [`Query`], which the registry applies to what a caller may see; anything malformed is an
//! error that names the field (answered `INVALID_PAYLOAD`), never an ignored filter that would
//! list more than was asked for.
//!
//! [`list`] is the whole answer: who may list what (a user only their own, an administrator
//! anyone's), the equality filters and the [`Query`], the order (newest first unless `sortBy`
//! says otherwise) and the page. Plain functions over the registry's records; the
//! `CapabilityRegistry` actor calls them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::record::Record;
use crate::config::RequestLimits;
use crate::protocol::types::{Capability, CapabilityFilter, ListResponse};
use crate::protocol::{ErrorCode, ErrorPayload};

/// What a list is ordered by (`sortBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `issued_at` (the default).
    IssuedAt,
    /// `expires_at`.
    ExpiresAt,
    /// `id`.
    Id,
    /// `type`.
    Type,
    /// `resource`.
    Resource,
    /// `identity`.
    Identity,
}

impl SortKey {
    /// The `sortBy` values upstream names, in its spelling and in camel case.
    fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "issued_at" | "issuedAt" => SortKey::IssuedAt,
            "expires_at" | "expiresAt" => SortKey::ExpiresAt,
            "id" => SortKey::Id,
            "type" => SortKey::Type,
            "resource" => SortKey::Resource,
            "identity" => SortKey::Identity,
            _ => return None,
        })
    }
}

/// A checked list filter's ordering and its `timeRange` and `metadata` parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    sort: SortKey,
    descending: bool,
    issued_from: Option<Timestamp>,
    issued_to: Option<Timestamp>,
    metadata: BTreeMap<String, Value>,
}

impl Query {
    /// Checks the filter's `sortBy`, `sortOrder`, `timeRange` and `metadata`. Without `sortBy`
    /// the list is newest first, as it always was; with it, `sortOrder` defaults to `asc`.
    pub fn new(f: &CapabilityFilter) -> Result<Query, String> {
        let sort = match f.sort_by.as_deref() {
            None => SortKey::IssuedAt,
            Some(s) => SortKey::parse(s).ok_or_else(|| {
                format!(
                    "sortBy {s:?} is not one of issued_at, expires_at, id, type, resource, identity"
                )
            })?,
        };
        let descending = match (f.sort_order.as_deref(), f.sort_by.is_some()) {
            (None, false) => true,
            (None, true) => false,
            (Some(o), _) if o.eq_ignore_ascii_case("asc") => false,
            (Some(o), _) if o.eq_ignore_ascii_case("desc") => true,
            (Some(o), _) => return Err(format!("sortOrder {o:?} is not asc or desc")),
        };
        let instant = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, String> {
            v.as_deref()
                .map(|s| {
                    crate::timefmt::parse(s)
                        .ok_or_else(|| format!("timeRange.{name} {s:?} is not an RFC 3339 time"))
                })
                .transpose()
        };
        let (issued_from, issued_to) = match &f.time_range {
            None => (None, None),
            Some(r) => (instant("start", &r.start)?, instant("end", &r.end)?),
        };
        if let (Some(s), Some(e)) = (issued_from, issued_to) {
            if e < s {
                return Err("timeRange.end is before timeRange.start".into());
            }
        }
        let metadata = f.metadata.clone().unwrap_or_default();
        if metadata.keys().any(String::is_empty) {
            return Err("metadata filter: a key is empty".into());
        }
        Ok(Query {
            sort,
            descending,
            issued_from,
            issued_to,
            metadata,
        })
    }

    /// Whether `cap` passes `timeRange` (issued between `start` and `end`, both inclusive) and
    /// `metadata` (every key present with an equal JSON value).
    pub fn admits(&self, cap: &Capability) -> bool {
        if self.issued_from.is_some() || self.issued_to.is_some() {
            let Some(issued) = crate::timefmt::parse(&cap.issued_at) else {
                return false;
            };
            if self.issued_from.is_some_and(|s| issued < s)
                || self.issued_to.is_some_and(|e| issued > e)
            {
                return false;
            }
        }
        self.metadata
            .iter()
            .all(|(k, v)| cap.metadata.get(k) == Some(v))
    }

    /// The order of two capabilities in the list: by the key, then by id (ascending), so the
    /// order (and with it `offset` paging) is stable. The agent writes every time in one form
    /// (`YYYY-MM-DDTHH:MM:SSZ`), so times compare as text.
    pub fn order(&self, a: &Capability, b: &Capability) -> Ordering {
        let by = match self.sort {
            SortKey::IssuedAt => a.issued_at.cmp(&b.issued_at),
            SortKey::ExpiresAt => a.expires_at.cmp(&b.expires_at),
            SortKey::Id => a.id.cmp(&b.id),
            SortKey::Type => a.kind.cmp(&b.kind),
            SortKey::Resource => a.resource.cmp(&b.resource),
            SortKey::Identity => a.identity.cmp(&b.identity),
        };
        let by = if self.descending { by.reverse() } else { by };
        by.then_with(|| a.id.cmp(&b.id))
    }
}

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
    let query = Query::new(f).map_err(|e| ErrorPayload::new(ErrorCode::InvalidPayload, e))?;
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
        .filter(|r| query.admits(&r.cap))
        .collect();
    matching.sort_by(|a, b| query.order(&a.cap, &b.cap));
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

/// Checks a list filter as a request: what [`Query::new`] checks, and the `metadata` filter's
/// size (its compact JSON) against `requests.max_metadata_bytes`.
pub fn check_filter(f: &CapabilityFilter, l: &RequestLimits) -> Result<(), String> {
    Query::new(f)?;
    let size = f
        .metadata
        .as_ref()
        .map_or(0, crate::protocol::checks::json_size);
    if size > l.max_metadata_bytes {
        return Err(format!(
            "the metadata filter is {size} bytes, more than requests.max_metadata_bytes ({})",
            l.max_metadata_bytes
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(v: Value) -> CapabilityFilter {
        serde_json::from_value(v).unwrap()
    }

    fn cap(id: &str, issued: &str, resource: &str, meta: Value) -> Capability {
        let mut c = crate::cli::capability_table::tests::capability();
        c.id = id.into();
        c.issued_at = issued.into();
        c.resource = resource.into();
        c.metadata = serde_json::from_value(meta).unwrap();
        c
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let err = |v: Value| Query::new(&filter(v)).unwrap_err();
        assert!(err(json!({"sortBy":"color"})).contains("sortBy"));
        assert!(err(json!({"sortOrder":"up"})).contains("sortOrder"));
        assert!(err(json!({"timeRange":{"start":"yesterday"}})).contains("timeRange.start"));
        assert!(
            err(json!({"timeRange":{"start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}}))
                .contains("before")
        );
        assert!(err(json!({"metadata":{"":1}})).contains("empty"));
        let small = RequestLimits {
            max_metadata_bytes: 10,
            ..RequestLimits::default()
        };
        let e = check_filter(
            &filter(json!({"metadata":{"purpose":"x".repeat(20)}})),
            &small,
        )
        .unwrap_err();
        assert!(e.contains("requests.max_metadata_bytes"), "{e}");
    }

    #[test]
    fn time_range_and_metadata_select_and_sort_orders() {
        let a = cap(
            "cap_a",
            "2026-01-01T00:00:00Z",
            "secret:/b",
            json!({"purpose":"x"}),
        );
        let b = cap(
            "cap_b",
            "2026-01-02T00:00:00Z",
            "secret:/a",
            json!({"purpose":"y"}),
        );
        let q = Query::new(&filter(
            json!({"timeRange":{"start":"2026-01-02T00:00:00Z"}}),
        ))
        .unwrap();
        assert!(!q.admits(&a) && q.admits(&b));
        let q = Query::new(&filter(json!({"timeRange":{"end":"2026-01-01T00:00:00Z"}}))).unwrap();
        assert!(q.admits(&a) && !q.admits(&b));
        let q = Query::new(&filter(json!({"metadata":{"purpose":"x"}}))).unwrap();
        assert!(q.admits(&a) && !q.admits(&b));
        // Default: newest first.
        let q = Query::new(&filter(json!({}))).unwrap();
        assert_eq!(q.order(&a, &b), Ordering::Greater);
        let q = Query::new(&filter(json!({"sortBy":"resource"}))).unwrap();
        assert_eq!(q.order(&a, &b), Ordering::Greater);
        let q = Query::new(&filter(json!({"sortBy":"issued_at","sortOrder":"ASC"}))).unwrap();
        assert_eq!(q.order(&a, &b), Ordering::Less);
    }

    fn record(id: &str, uid: u32, issued: i64) -> Record {
        let expires = Timestamp::from_second(issued + 600).unwrap();
        Record {
            cap: crate::capability::issue::sample(id, issued, 600),
            holder: crate::protocol::types::Holder {
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
