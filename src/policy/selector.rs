//! Identity selectors and glob patterns.
//!
//! Selectors name kernel-verified attributes only. A bare name (`billing-app`) or a selector
//! over the label a client gives itself is refused at load time: upstream matched the
//! client's own claim, which let any process be anyone.
//!
//! Selectors join with `+` into a conjunction that all must match:
//! `user:billing+exe:/usr/bin/billing-export`. A `+` starts the next selector only when a
//! selector kind and `:` follow it (`exe:/usr/bin/g++` is one selector).
//!
//! A test of a selector is three-valued ([`Tri`]): an attribute the agent could not verify for
//! this caller (its process exited before it was read, say) gives `Maybe`, so that a deny rule
//! needing it applies while an allow rule needing it does not.

use std::fmt;

use wildmatch::WildMatch;

use super::glob::{Glob, Tri};
use crate::identity::{Attribute, PeerIdentity};

/// A glob over resources, actions or unit names: `*` is any run of characters, `?` one.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: WildMatch,
    /// The same glob, compiled to be compared with a request's pattern.
    glob: Glob,
}

impl Pattern {
    /// Compiles a glob.
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
            matcher: WildMatch::new(text),
            glob: Glob::new(text),
        }
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        self.matcher.matches(s)
    }

    /// How the strings `q` stands for relate to this pattern: all match (`Yes`), none
    /// (`No`), or some, or it cannot tell (`Maybe`). A concrete `q` is one string.
    pub fn relation(&self, q: &Query<'_>) -> Tri {
        if !q.pattern {
            return Tri::from_bool(self.matcher.matches(q.text));
        }
        let compiled;
        let other = match q.glob {
            Some(g) => g,
            None => {
                compiled = Glob::new(q.text);
                &compiled
            }
        };
        if self.glob.contains(other) {
            Tri::Yes
        } else if self.glob.intersects(other) {
            Tri::Maybe
        } else {
            Tri::No
        }
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A resource or action as a request names it: one string, or a pattern standing for a set.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The text.
    pub text: &'a str,
    /// Whether it holds `*` or `?`.
    pub pattern: bool,
    /// For a pattern, the text compiled once for every rule it meets (else compiled at each).
    pub glob: Option<&'a Glob>,
}

impl<'a> Query<'a> {
    /// A query for `text`.
    pub fn new(text: &'a str) -> Query<'a> {
        Query {
            text,
            pattern: crate::resource::is_pattern(text),
            glob: None,
        }
    }

    /// A query for `text`, with `glob` its compiled form when it is a pattern.
    pub fn compiled(text: &'a str, glob: Option<&'a Glob>) -> Query<'a> {
        Query {
            glob,
            ..Query::new(text)
        }
    }
}

/// `text` compiled, if it is a pattern.
pub fn compile_if_pattern(text: &str) -> Option<Glob> {
    crate::resource::is_pattern(text).then(|| Glob::new(text))
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
    /// All of these (two or more, none of them `*` or a conjunction).
    All(Vec<Selector>),
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

const KNOWN: &str = "use *, uid:N, uid:N-M, user:NAME, group:NAME, unit:GLOB or exe:/PATH, or join them with + (user:NAME+exe:/PATH)";

/// The selector kinds, as written before the `:`.
const KINDS: &[&str] = &["uid", "user", "group", "unit", "exe"];

/// Splits `user:a+exe:/x` at each `+` that a selector kind and `:` follow.
fn conjuncts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices('+') {
        let rest = &text[i + 1..];
        if KINDS
            .iter()
            .any(|k| rest.strip_prefix(k).is_some_and(|r| r.starts_with(':')))
        {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

impl Selector {
    /// Parses a selector, or a conjunction of selectors joined with `+`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let parts = conjuncts(text);
        if parts.len() == 1 {
            return Selector::parse_one(text);
        }
        let err = |reason: String| SelectorError {
            selector: text.to_string(),
            reason,
        };
        let mut all = Vec::with_capacity(parts.len());
        for part in parts {
            if part == "*" {
                return Err(err(
                    "* in a conjunction adds nothing; leave it out".to_string()
                ));
            }
            let s = Selector::parse_one(part).map_err(|e| err(e.reason))?;
            if all.contains(&s) {
                return Err(err(format!("{s} appears twice")));
            }
            all.push(s);
        }
        Ok(Selector::All(all))
    }

    /// Whether the selector, or every part of a conjunction, is an `exe:` selector: what
    /// policy refuses as the whole identity of an allow rule, since a process of the same uid
    /// can run any code under a given executable (`LD_PRELOAD`, ptrace).
    ///
    /// Parts that match every caller (`*`, `uid:0-4294967295`, `unit:*`) add nothing, so
    /// `unit:*+exe:/x` is exe alone too.
    pub fn is_exe_only(&self) -> bool {
        match self {
            Selector::Exe(_) => true,
            Selector::All(parts) => {
                parts.iter().any(|p| matches!(p, Selector::Exe(_)))
                    && parts
                        .iter()
                        .all(|p| matches!(p, Selector::Exe(_)) || p.is_everyone())
            }
            _ => false,
        }
    }

    /// Whether the selector matches every caller on a systemd host: `*`, the whole uid range,
    /// `unit:*`, or a conjunction of those.
    pub fn is_everyone(&self) -> bool {
        match self {
            Selector::Any => true,
            Selector::UidRange(0, u32::MAX) => true,
            Selector::Unit(p) => p.as_str().chars().all(|c| c == '*'),
            Selector::All(parts) => parts.iter().all(Selector::is_everyone),
            _ => false,
        }
    }

    /// The attributes this selector tests that `id` could not verify.
    pub fn unverified_in(&self, id: &PeerIdentity) -> Vec<Attribute> {
        let attr = match self {
            Selector::User(_) => Attribute::User,
            Selector::Group(_) => Attribute::Groups,
            Selector::Unit(_) => Attribute::Unit,
            Selector::Exe(_) => Attribute::Exe,
            Selector::All(parts) => {
                let mut out: Vec<Attribute> =
                    parts.iter().flat_map(|p| p.unverified_in(id)).collect();
                out.sort();
                out.dedup();
                return out;
            }
            _ => return Vec::new(),
        };
        if id.is_unverified(attr) {
            vec![attr]
        } else {
            Vec::new()
        }
    }

    /// Parses one selector.
    fn parse_one(text: &str) -> Result<Selector, SelectorError> {
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
            "unit" if !value.contains(['.', '*', '?']) => Err(err(format!(
                "a unit's name ends in its type ({value}.service, {value}.scope…), so unit:{value} could never match"
            ))),
            "unit" => Ok(Selector::Unit(Pattern::new(value))),
            "exe" => check_exe(value).map(Selector::Exe).map_err(err),
            "identity" | "label" | "name" | "client" | "app" => Err(err(format!(
                "{kind}: would match what the client claims about itself, which is never trusted; {KNOWN}"
            ))),
            _ => Err(err(format!("unknown selector kind {kind:?}; {KNOWN}"))),
        }
    }

    /// Whether the verified identity matches: `Yes`, `No`, or `Maybe` when an attribute it
    /// tests could not be verified for this caller (and, for a group, the groups that could be
    /// read do not already match).
    pub fn test(&self, id: &PeerIdentity) -> Tri {
        let known = |attr: Attribute, matched: bool| {
            if matched {
                Tri::Yes
            } else if id.is_unverified(attr) {
                Tri::Maybe
            } else {
                Tri::No
            }
        };
        match self {
            Selector::Any => Tri::Yes,
            Selector::Uid(u) => Tri::from_bool(id.uid == *u),
            Selector::UidRange(a, b) => Tri::from_bool((*a..=*b).contains(&id.uid)),
            Selector::User(name) => {
                known(Attribute::User, id.user.as_deref() == Some(name.as_str()))
            }
            Selector::Group(name) => known(Attribute::Groups, id.has_group_name(name)),
            Selector::Unit(p) => known(
                Attribute::Unit,
                id.unit.as_deref().is_some_and(|u| p.matches(u)),
            ),
            Selector::Exe(path) => known(Attribute::Exe, id.exe.as_deref() == Some(path.as_str())),
            Selector::All(parts) => Tri::all(parts.iter().map(|p| p.test(id))),
        }
    }

    /// Whether the identity certainly matches (`test` says `Yes`).
    pub fn matches(&self, id: &PeerIdentity) -> bool {
        self.test(id) == Tri::Yes
    }
}

/// An `exe:` value: an absolute path in the form /proc shows executables, fully resolved, or
/// it could never match. Checked on the text (no empty, `.` or `..` components, no trailing
/// `/`), and, when the path exists here, against the file system: a symbolic link is refused,
/// naming the file it leads to.
fn check_exe(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        return Err("exe: needs an absolute path".into());
    }
    let rest = &value[1..];
    if value.len() > 1
        && (value.ends_with('/')
            || rest
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".."))
    {
        return Err(
            "an executable's path as /proc shows it has no empty, '.' or '..' component and no trailing '/', so this could never match".into(),
        );
    }
    if let Ok(real) = std::fs::canonicalize(value) {
        if real.as_os_str() != value {
            return Err(format!(
                "{value} leads to {}, and /proc shows an executable by the file it runs: name exe:{}",
                real.display(),
                real.display()
            ));
        }
    }
    Ok(value.to_string())
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
            Selector::All(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str("+")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
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
    fn absent_attributes_match_nothing_and_unverified_ones_maybe() {
        let id = PeerIdentity::bare(1000, 1000);
        for s in [
            "user:alice",
            "group:deploy",
            "unit:*",
            "exe:/usr/bin/billing",
        ] {
            assert_eq!(Selector::parse(s).unwrap().test(&id), Tri::No, "{s}");
        }
        let mut gone = PeerIdentity::bare(1000, 1000);
        gone.unverified = vec![Attribute::Unit, Attribute::Exe];
        for (s, t) in [
            ("unit:*", Tri::Maybe),
            ("exe:/usr/bin/billing", Tri::Maybe),
            ("uid:1000+exe:/usr/bin/billing", Tri::Maybe),
            ("uid:1001+exe:/usr/bin/billing", Tri::No),
            ("user:alice", Tri::No),
            ("uid:1000", Tri::Yes),
        ] {
            let sel = Selector::parse(s).unwrap();
            assert_eq!(sel.test(&gone), t, "{s}");
        }
        assert_eq!(
            Selector::parse("user:a+unit:x.service+exe:/b")
                .unwrap()
                .unverified_in(&gone),
            vec![Attribute::Unit, Attribute::Exe]
        );
    }

    #[test]
    fn conjunctions() {
        let id = alice();
        let s = Selector::parse("user:alice+exe:/usr/bin/billing").unwrap();
        assert!(s.matches(&id));
        assert_eq!(s.to_string(), "user:alice+exe:/usr/bin/billing");
        assert!(
            !Selector::parse("user:bob+exe:/usr/bin/billing")
                .unwrap()
                .matches(&id)
        );
        assert!(
            !Selector::parse("user:alice+exe:/usr/bin/other")
                .unwrap()
                .matches(&id)
        );
        // A `+` not followed by a selector kind is part of the value.
        assert_eq!(
            Selector::parse("exe:/opt/none/g++").unwrap(),
            Selector::Exe("/opt/none/g++".into())
        );
        assert_eq!(
            Selector::parse("exe:/opt/none/g+++uid:5").unwrap(),
            Selector::All(vec![
                Selector::Exe("/opt/none/g++".into()),
                Selector::Uid(5)
            ])
        );
        assert!(Selector::parse("exe:/a+exe:/b").unwrap().is_exe_only());
        assert!(Selector::parse("exe:/a").unwrap().is_exe_only());
        assert!(!Selector::parse("uid:1+exe:/a").unwrap().is_exe_only());
        for bad in ["uid:1+*", "uid:1+uid:1", "uid:1+foo:x", "uid:1+user:"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        // Parts that match everyone add nothing to an exe.
        for exe_alone in ["unit:*+exe:/a", "uid:0-4294967295+exe:/a"] {
            assert!(
                Selector::parse(exe_alone).unwrap().is_exe_only(),
                "{exe_alone}"
            );
        }
        assert!(
            !Selector::parse("unit:*+uid:5+exe:/a")
                .unwrap()
                .is_exe_only()
        );
    }

    #[test]
    fn values_that_could_never_match_are_refused() {
        for bad in [
            "exe://usr/bin/x",
            "exe:/usr/bin/../bin/x",
            "exe:/usr/bin/./x",
            "exe:/usr/bin/x/",
            "unit:backup",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        // A symbolic link: /proc shows the file it leads to.
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("tool-1.2");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("tool");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = Selector::parse(&format!("exe:{}", link.display())).unwrap_err();
        assert!(e.reason.contains(&real.display().to_string()), "{e}");
        assert!(Selector::parse(&format!("exe:{}", real.display())).is_ok());
        assert!(Selector::parse("unit:backup.*").is_ok());
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
