//! Resources: the one spelling of each thing policy decides about.
//!
//! A resource is `SCHEME:PATH`:
//!
//! - `SCHEME` is lowercase ASCII: a letter, then letters, digits, `+`, `-` or `.`
//!   (`secret`, `config`, `operation`);
//! - `PATH` is absolute: `/`, then segments separated by single `/`. A segment is never empty
//!   (no `//`), never `.` or `..`, and holds no control character. Every other character stands
//!   for itself (there is no escaping, and no case folding).
//! - A trailing `/` names a folder: `secret:/db/` is the folder `db` (what `secret_list` lists),
//!   a different resource from the secret `secret:/db`. `secret:/` is the top folder.
//!
//! `*` and `?` are pattern characters. In a policy they are globs; in a request they make the
//! request a set of resources, decided as a set (see [`crate::policy::glob`]); in a secret path
//! they are refused, since a secret path names one secret or folder.
//!
//! Every resource the agent decides about or acts on goes through this module: requests
//! ([`check_request_resource`]), policy patterns ([`check_pattern`]), secret message paths and
//! every path a secrets backend is asked for ([`check_secret_path`]). None of these functions
//! changes what it is given: text that is not already canonical is refused, naming the
//! canonical form when there is one ([`canonicalize`], which the CLI applies to what a user
//! types). So the text a decision was made on is the text that is acted on.

use std::fmt;

/// Most bytes a resource may have.
pub const MAX_RESOURCE_LEN: usize = 1024;
/// Most bytes a secret path (a resource's path without its leading `/`) may have.
pub const MAX_SECRET_PATH_LEN: usize = 512;

/// Why a resource, pattern or path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ResourceError {
    /// What was checked, for the message (`resource`, `path`, `resource pattern`).
    pub what: &'static str,
    /// The text as given.
    pub given: String,
    /// Why it is refused.
    pub reason: String,
    /// The canonical spelling of the same thing, when there is one.
    pub canonical: Option<String>,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {}", self.what, self.given, self.reason)?;
        if let Some(c) = &self.canonical {
            write!(f, "; its canonical form is {c:?}")?;
        }
        Ok(())
    }
}

/// Whether `s` holds a pattern character (`*` or `?`).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

fn valid_scheme(s: &str, globs: bool) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ok = |c: char, first: bool| {
        c.is_ascii_lowercase()
            || (globs && (c == '*' || c == '?'))
            || (!first && (c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
    };
    ok(first, true) && chars.all(|c| ok(c, false))
}

/// The canonical spelling of `text` as a resource, or why it has none. Pattern characters are
/// ordinary characters here. `//` and `.` segments are dropped, `..` removes the segment before
/// it, an upper-case scheme is lowered and a missing leading `/` is added; a path that climbs
/// above `/`, a control character or a scheme that is not one has no canonical form.
pub fn canonicalize(text: &str) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "holds the control character {:?}",
            c.escape_default().to_string()
        ));
    }
    let Some((scheme, path)) = text.split_once(':') else {
        return Err("is not SCHEME:/PATH (it has no ':')".into());
    };
    let scheme = scheme.to_ascii_lowercase();
    if !valid_scheme(&scheme, true) {
        return Err(format!(
            "has the scheme {scheme:?}: a scheme is a letter, then letters, digits, '+', '-' or '.'"
        ));
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err("climbs above the top with '..'".into());
                }
            }
            s => segments.push(s),
        }
    }
    // The last segment decides: `a/b/`, `a/b/.` and `a/b/c/..` are folders, `a/./b` is not.
    let folder = matches!(path.rsplit('/').next(), Some("" | "." | ".."));
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(&scheme);
    out.push_str(":/");
    out.push_str(&segments.join("/"));
    if folder && !segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn refused(
    what: &'static str,
    given: &str,
    reason: String,
    canonical: Option<String>,
) -> ResourceError {
    ResourceError {
        what,
        given: given.to_string(),
        reason,
        canonical,
    }
}

/// Whether `text` is its own canonical form ([`canonicalize`] gives it back unchanged), in one
/// pass without allocating: what every request pays.
pub fn is_canonical(text: &str) -> bool {
    let Some((scheme, path)) = text.split_once(':') else {
        return false;
    };
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if !valid_scheme(scheme, true) || path.chars().any(char::is_control) {
        return false;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            // Only the last may be empty: a trailing `/`, or the top folder itself.
            "" if last => {}
            "" | "." | ".." => return false,
            _ => {}
        }
    }
    true
}

/// Refuses an empty `text`, or one longer than [`MAX_RESOURCE_LEN`] bytes.
fn sized(what: &'static str, text: &str) -> Result<(), ResourceError> {
    if text.is_empty() {
        return Err(refused(what, text, "is empty".into(), None));
    }
    if text.len() > MAX_RESOURCE_LEN {
        return Err(refused(
            what,
            text,
            format!("is longer than {MAX_RESOURCE_LEN} bytes"),
            None,
        ));
    }
    Ok(())
}

/// Checks a resource as a request names it (a capability request, a policy test): canonical,
/// at most [`MAX_RESOURCE_LEN`] bytes. It may hold pattern characters (a request for a set).
pub fn check_request_resource(text: &str) -> Result<(), ResourceError> {
    const WHAT: &str = "resource";
    sized(WHAT, text)?;
    if is_canonical(text) {
        return Ok(());
    }
    match canonicalize(text) {
        Ok(c) if c == text => Ok(()),
        Ok(c) => Err(refused(
            WHAT,
            text,
            "is not canonical (SCHEME:/PATH: a lowercase scheme, an absolute path without empty, '.' or '..' segments)".into(),
            Some(c),
        )),
        Err(why) => Err(refused(WHAT, text, why, None)),
    }
}

/// Checks a resource pattern of a policy (a rule's `resources`, a `resource` condition): the
/// same spelling as a resource, where `*` and `?` may stand anywhere. A pattern that could only
/// match a spelling no request may use (`secret://prod/*`, `secret:prod/*`, `Secret:/x`) is
/// refused: as a deny rule it would silently never apply.
///
/// The parts that are literal are checked: the scheme, when no pattern character comes before
/// the first `:`, must be a lowercase scheme followed by `/` or a pattern character; no `//`,
/// `/./` or `/../` anywhere, nor a final `/.` or `/..`; no control characters.
pub fn check_pattern(text: &str) -> Result<(), ResourceError> {
    const WHAT: &str = "resource pattern";
    let suggest = || canonicalize(text).ok().filter(|c| c != text);
    sized(WHAT, text)?;
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(refused(
            WHAT,
            text,
            format!(
                "holds the control character {:?}",
                c.escape_default().to_string()
            ),
            None,
        ));
    }
    if text.trim() != text {
        return Err(refused(
            WHAT,
            text,
            "begins or ends with a space, so it would match only resources that do".into(),
            Some(text.trim().to_string()),
        ));
    }
    let first_glob = text.find(['*', '?']).unwrap_or(text.len());
    match text.find(':') {
        Some(colon) if colon < first_glob => {
            let scheme = &text[..colon];
            if !valid_scheme(scheme, false) {
                return Err(refused(
                    WHAT,
                    text,
                    format!(
                        "has the scheme {scheme:?}: a scheme is a lowercase letter, then lowercase letters, digits, '+', '-' or '.'"
                    ),
                    suggest(),
                ));
            }
            let after = &text[colon + 1..];
            if !after.starts_with(['/', '*', '?']) {
                return Err(refused(
                    WHAT,
                    text,
                    "has a path that does not start with '/', so no resource could match it".into(),
                    suggest(),
                ));
            }
        }
        Some(_) => {}
        None if first_glob == text.len() => {
            return Err(refused(
                WHAT,
                text,
                "is not SCHEME:/PATH (it has no ':'), so no resource could match it".into(),
                None,
            ));
        }
        None => {}
    }
    if text.contains("//")
        || text.contains("/./")
        || text.contains("/../")
        || text.ends_with("/.")
        || text.ends_with("/..")
    {
        return Err(refused(
            WHAT,
            text,
            "has an empty, '.' or '..' segment, which no canonical resource has, so it could never match"
                .into(),
            suggest(),
        ));
    }
    Ok(())
}

/// Most bytes an action name may have (the default of `capability_engine.max_action_len`).
pub const MAX_ACTION_LEN: usize = 64;

/// Whether `c` may appear in an action name: ASCII letters and digits, `_`, `-`, `.` and `:`.
pub fn is_action_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// Checks an action name (`read`, `db:migrate`), or with `pattern`, an action pattern that may
/// also hold `*` and `?`: not empty, at most `max_len` bytes, only [`is_action_char`]s.
pub fn check_action(text: &str, pattern: bool, max_len: usize) -> Result<(), String> {
    if text.is_empty() {
        return Err("an action is empty".into());
    }
    if text.len() > max_len {
        return Err(format!(
            "action {:?}… is longer than {max_len} bytes",
            text.chars().take(32).collect::<String>()
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !is_action_char(*c) && !(pattern && (*c == '*' || *c == '?')))
    {
        return Err(format!(
            "action {text:?} holds {:?}: an action is made of ASCII letters, digits, '_', '-', '.' and ':'{}",
            c.escape_default().to_string(),
            if pattern {
                ", with '*' and '?' as patterns"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// What a secret path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// One secret: not empty, no trailing `/`.
    Secret,
    /// A folder to list: empty (the top) or ending in `/`.
    Folder,
}

/// Checks a secret path (`db/primary`, or `db/` for a folder): the path of the resource
/// `secret:/PATH`, which must be canonical, without pattern characters, at most
/// [`MAX_SECRET_PATH_LEN`] bytes, and name what `kind` says. Returns it unchanged.
pub fn check_secret_path(path: &str, kind: PathKind) -> Result<&str, ResourceError> {
    const WHAT: &str = "secret path";
    let err =
        |reason: String, canonical: Option<String>| Err(refused(WHAT, path, reason, canonical));
    if path.len() > MAX_SECRET_PATH_LEN {
        return err(format!("is longer than {MAX_SECRET_PATH_LEN} bytes"), None);
    }
    let full = format!("secret:/{path}");
    let canonical = match canonicalize(&full) {
        Ok(c) => c["secret:/".len()..].to_string(),
        Err(why) => return err(why, None),
    };
    if canonical != path {
        return err(
            "is not canonical (relative, '/'-separated, without empty, '.' or '..' segments)"
                .into(),
            Some(fix_kind(canonical, kind)),
        );
    }
    if is_pattern(path) {
        return err(
            "holds '*' or '?': a secret path names one secret or folder, not a pattern".into(),
            None,
        );
    }
    match kind {
        PathKind::Secret if path.is_empty() => err("is empty".into(), None),
        PathKind::Secret if path.ends_with('/') => err(
            "names a folder, not a secret".into(),
            Some(path.trim_end_matches('/').to_string()).filter(|p| !p.is_empty()),
        ),
        PathKind::Folder if !path.is_empty() && !path.ends_with('/') => err(
            "names a secret, not a folder (a folder ends in '/')".into(),
            Some(format!("{path}/")),
        ),
        _ => Ok(path),
    }
}

/// `canonical` adjusted to name what `kind` asks for, for a suggestion.
fn fix_kind(canonical: String, kind: PathKind) -> String {
    match kind {
        PathKind::Folder if !canonical.is_empty() && !canonical.ends_with('/') => {
            format!("{canonical}/")
        }
        PathKind::Secret => canonical.trim_end_matches('/').to_string(),
        _ => canonical,
    }
}

/// The canonical form of a secret path as a user typed it (`/db//primary` → `db/primary`;
/// for a folder, `db` → `db/`), for the CLI to send.
pub fn canonical_secret_path(path: &str, kind: PathKind) -> Result<String, String> {
    let c = canonicalize(&format!("secret:/{path}"))?;
    Ok(fix_kind(c["secret:/".len()..].to_string(), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (given, canonical) in [
            ("secret:/db/primary", "secret:/db/primary"),
            ("secret://prod/db", "secret:/prod/db"),
            ("secret:/prod//db", "secret:/prod/db"),
            ("secret:/./prod/db", "secret:/prod/db"),
            ("secret:/x/../prod/db", "secret:/prod/db"),
            ("secret:prod/db", "secret:/prod/db"),
            ("SECRET:/prod/db", "secret:/prod/db"),
            ("secret:/db/", "secret:/db/"),
            ("secret:/db//", "secret:/db/"),
            ("secret:/db/.", "secret:/db/"),
            ("secret:/db/x/..", "secret:/db/"),
            ("secret:/", "secret:/"),
            ("secret:", "secret:/"),
            ("secret:///", "secret:/"),
            ("secret:/db/*", "secret:/db/*"),
            ("svc:/a b/ü", "svc:/a b/ü"),
            ("a+b.c-d:/x", "a+b.c-d:/x"),
        ] {
            assert_eq!(canonicalize(given).unwrap(), canonical, "{given}");
        }
        for bad in [
            "secret:/..",
            "secret:/a/../..",
            "nocolon",
            ":/x",
            "1x:/a",
            "se_cret:/a",
            "secret:/a\nb",
            "secret:/\u{7f}",
        ] {
            assert!(canonicalize(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// The one-pass check agrees with the canonical form.
        #[test]
        fn is_canonical_agrees_with_canonicalize(
            text in proptest::string::string_regex("[a-zA-Z:]{0,3}:?[/a.*\\x01]{0,8}").unwrap()
        ) {
            proptest::prop_assert_eq!(
                is_canonical(&text),
                canonicalize(&text).is_ok_and(|c| c == text),
                "{:?}", text
            );
        }
    }

    #[test]
    fn requests_must_be_canonical_and_errors_name_the_canonical_form() {
        assert!(check_request_resource("secret:/prod/db").is_ok());
        assert!(check_request_resource("secret:/prod/*").is_ok());
        assert!(check_request_resource("*:/x").is_ok());
        let e = check_request_resource("secret://prod/db").unwrap_err();
        assert_eq!(e.canonical.as_deref(), Some("secret:/prod/db"));
        assert!(e.to_string().contains("\"secret:/prod/db\""), "{e}");
        for bad in ["", "secret:/a\nb", "secret:/..", "secret:*", "x"] {
            assert!(check_request_resource(bad).is_err(), "{bad:?}");
        }
        let long = format!("secret:/{}", "a".repeat(MAX_RESOURCE_LEN));
        assert!(
            check_request_resource(&long)
                .unwrap_err()
                .reason
                .contains("1024")
        );
    }

    #[test]
    fn patterns() {
        for ok in [
            "*",
            "secret:*",
            "secret:/prod/*",
            "secret:/db/?",
            "*:/svc1",
            "secret:/a*/b",
            "secret:/db/*/",
            "sec*",
            "?ecret:/x",
        ] {
            check_pattern(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "secret://prod/*",
            "secret:prod/*",
            "Secret:/x",
            "secret:/a/./b",
            "secret:/a/../b",
            "secret:/a/..",
            "secret",
            "",
            "secret:/a\tb",
            "*//x",
            "secret:/prod/* ",
            " secret:/prod/*",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_pattern("secret://prod/*")
                .unwrap_err()
                .canonical
                .as_deref(),
            Some("secret:/prod/*")
        );
    }

    #[test]
    fn secret_paths() {
        assert_eq!(
            check_secret_path("db/primary", PathKind::Secret).unwrap(),
            "db/primary"
        );
        assert_eq!(check_secret_path("db/", PathKind::Folder).unwrap(), "db/");
        assert_eq!(check_secret_path("", PathKind::Folder).unwrap(), "");
        for (bad, kind, canonical) in [
            ("/prod/db", PathKind::Secret, Some("prod/db")),
            ("prod//db", PathKind::Secret, Some("prod/db")),
            ("prod/./db", PathKind::Secret, Some("prod/db")),
            ("x/../prod/db", PathKind::Secret, Some("prod/db")),
            ("prod", PathKind::Folder, Some("prod/")),
            ("/prod/", PathKind::Folder, Some("prod/")),
            ("db/", PathKind::Secret, Some("db")),
            ("", PathKind::Secret, None),
            ("../etc", PathKind::Secret, None),
            ("a\nb", PathKind::Secret, None),
            ("db/*", PathKind::Secret, None),
            ("db/?", PathKind::Folder, None),
        ] {
            let e = check_secret_path(bad, kind).unwrap_err();
            assert_eq!(e.canonical.as_deref(), canonical, "{bad:?}: {e}");
        }
        assert_eq!(
            canonical_secret_path("/db//x", PathKind::Secret).unwrap(),
            "db/x"
        );
        assert_eq!(
            canonical_secret_path("db", PathKind::Folder).unwrap(),
            "db/"
        );
        assert_eq!(canonical_secret_path("/", PathKind::Folder).unwrap(), "");
        let long = "a".repeat(MAX_SECRET_PATH_LEN + 1);
        assert!(check_secret_path(&long, PathKind::Secret).is_err());
    }
}
