//! Identity selectors and glob patterns.
//!
//! Selectors name kernel-verified attributes only. A bare name (`billing-app`) or a selector
//! over the label a client gives itself is refused at load time: upstream matched the
//! client's own claim, which let any process be anyone.

use std::fmt;

use wildmatch::WildMatch;

use crate::identity::PeerIdentity;

/// A glob over resources, actions or unit names: `*` is any run of characters, `?` one.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: WildMatch,
}

impl Pattern {
    /// Compiles a glob.
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
            matcher: WildMatch::new(text),
        }
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        self.matcher.matches(s)
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// Every caller.
    Any,
    /// One uid.
    Uid(u32),
    /// An inclusive uid range.
    UidRange(u32, u32),
    /// The user with this name.
    User(String),
    /// Members (primary or supplementary) of the group with this name.
    Group(String),
    /// Processes of a systemd unit matching this glob.
    Unit(Pattern),
    /// Processes running this executable (absolute path).
    Exe(String),
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// The selector as written.
    pub selector: String,
    /// Why.
    pub reason: String,
}

const KNOWN: &str = "use *, uid:N, uid:N-M, user:NAME, group:NAME, unit:GLOB or exe:/PATH";

impl Selector {
    /// Parses a selector.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let err = |reason: String| SelectorError {
            selector: text.to_string(),
            reason,
        };
        if text == "*" {
            return Ok(Selector::Any);
        }
        let Some((kind, value)) = text.split_once(':') else {
            return Err(err(format!(
                "a bare name would match the label a client claims for itself, which is never trusted; {KNOWN}"
            )));
        };
        if value.is_empty() {
            return Err(err(format!("empty value; {KNOWN}")));
        }
        if value.trim() != value {
            return Err(err(
                "the value has leading or trailing spaces, so it would never match".to_string(),
            ));
        }
        match kind {
            "uid" => match value.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (parse_uid(a).map_err(err)?, parse_uid(b).map_err(err)?);
                    if a > b {
                        return Err(err(format!("range {a}-{b} is empty")));
                    }
                    Ok(Selector::UidRange(a, b))
                }
                None => Ok(Selector::Uid(parse_uid(value).map_err(err)?)),
            },
            "user" => Ok(Selector::User(value.to_string())),
            "group" => Ok(Selector::Group(value.to_string())),
            "unit" => Ok(Selector::Unit(Pattern::new(value))),
            "exe" if value.starts_with('/') => Ok(Selector::Exe(value.to_string())),
            "exe" => Err(err("exe: needs an absolute path".to_string())),
            "identity" | "label" | "name" | "client" | "app" => Err(err(format!(
                "{kind}: would match what the client claims about itself, which is never trusted; {KNOWN}"
            ))),
            _ => Err(err(format!("unknown selector kind {kind:?}; {KNOWN}"))),
        }
    }

    /// Whether the verified identity matches. Attributes that could not be verified are
    /// absent and match nothing.
    pub fn matches(&self, id: &PeerIdentity) -> bool {
        match self {
            Selector::Any => true,
            Selector::Uid(u) => id.uid == *u,
            Selector::UidRange(a, b) => (*a..=*b).contains(&id.uid),
            Selector::User(name) => id.user.as_deref() == Some(name.as_str()),
            Selector::Group(name) => id.has_group_name(name),
            Selector::Unit(p) => id.unit.as_deref().is_some_and(|u| p.matches(u)),
            Selector::Exe(path) => id.exe.as_deref() == Some(path.as_str()),
        }
    }
}

fn parse_uid(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a uid (a number from 0 to 4294967295)"
        ));
    }
    s.parse::<u32>()
        .map_err(|_| format!("{s} is not a uid (a number from 0 to 4294967295)"))
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Any => f.write_str("*"),
            Selector::Uid(u) => write!(f, "uid:{u}"),
            Selector::UidRange(a, b) => write!(f, "uid:{a}-{b}"),
            Selector::User(n) => write!(f, "user:{n}"),
            Selector::Group(n) => write!(f, "group:{n}"),
            Selector::Unit(p) => write!(f, "unit:{}", p.as_str()),
            Selector::Exe(p) => write!(f, "exe:{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> PeerIdentity {
        let mut id = PeerIdentity::bare(1000, 1000);
        id.user = Some("alice".into());
        id.group_names = vec!["alice".into(), "deploy".into()];
        id.unit = Some("billing.service".into());
        id.exe = Some("/usr/bin/billing".into());
        id
    }

    #[test]
    fn every_kind_matches_what_it_names() {
        let id = alice();
        for (s, expect) in [
            ("*", true),
            ("uid:1000", true),
            ("uid:0", false),
            ("uid:900-1100", true),
            ("uid:1001-2000", false),
            ("user:alice", true),
            ("user:bob", false),
            ("group:deploy", true),
            ("group:wheel", false),
            ("unit:billing.service", true),
            ("unit:bill*.service", true),
            ("unit:nginx.service", false),
            ("exe:/usr/bin/billing", true),
            ("exe:/usr/bin/other", false),
        ] {
            assert_eq!(Selector::parse(s).unwrap().matches(&id), expect, "{s}");
        }
    }

    #[test]
    fn unverified_attributes_match_nothing() {
        let id = PeerIdentity::bare(1000, 1000);
        for s in [
            "user:alice",
            "group:deploy",
            "unit:*",
            "exe:/usr/bin/billing",
        ] {
            assert!(!Selector::parse(s).unwrap().matches(&id), "{s}");
        }
    }

    #[test]
    fn claims_and_bad_values_are_refused_with_a_reason() {
        for s in [
            "billing-app",
            "app-*",
            "identity:billing",
            "label:x",
            "uid:-1",
            "uid:4294967296",
            "uid:abc",
            "uid:5-2",
            "exe:relative/path",
            "foo:bar",
            "user:",
        ] {
            let e = Selector::parse(s).unwrap_err();
            assert!(!e.reason.is_empty(), "{s}");
        }
        assert!(
            Selector::parse("billing-app")
                .unwrap_err()
                .reason
                .contains("claims")
        );
        assert_eq!(
            Selector::parse("uid:4294967295").unwrap(),
            Selector::Uid(u32::MAX)
        );
    }

    #[test]
    fn globs() {
        let p = Pattern::new("secret:*");
        assert!(p.matches("secret:/db/primary") && p.matches("secret:"));
        assert!(!p.matches("config:/x"));
        let q = Pattern::new("secret:/db/?");
        assert!(q.matches("secret:/db/a") && !q.matches("secret:/db/ab"));
    }
}
