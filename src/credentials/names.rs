//! The names systemd gives a credential request: the unit's name and the credential's id,
//! checked as systemd itself checks them (`unit_name_is_valid`, `credential_name_valid`), so
//! that a policy file can only map names a start could ask for.

/// The unit types whose processes systemd starts with credentials (`LoadCredential=` is an
/// execution setting: services, sockets, mounts and swaps).
pub const UNIT_TYPES: &[&str] = &["service", "socket", "mount", "swap"];

/// Longest unit name systemd accepts (`UNIT_NAME_MAX` less its NUL).
pub const UNIT_NAME_MAX: usize = 255;

/// Longest credential id systemd accepts (`CREDENTIAL_NAME_MAX`, as a file name).
pub const CREDENTIAL_ID_MAX: usize = 255;

/// Checks a unit name: `NAME.TYPE` or `TEMPLATE@INSTANCE.TYPE`, with a type that runs
/// processes, at most [`UNIT_NAME_MAX`] bytes, of the characters systemd allows (letters,
/// digits, `:`, `-`, `_`, `.`, `\` and `@`). A template without an instance (`foo@.service`)
/// is refused: no process ever runs in one.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the unit name is empty".into());
    }
    if name.len() > UNIT_NAME_MAX {
        return Err(format!(
            "the unit name is {} bytes long, more than systemd allows ({UNIT_NAME_MAX})",
            name.len()
        ));
    }
    let Some((stem, kind)) = name.rsplit_once('.') else {
        return Err(format!(
            "unit {name:?} has no type suffix (like billing.service)"
        ));
    };
    if !UNIT_TYPES.contains(&kind) {
        return Err(format!(
            "unit {name:?} is of type {kind:?}; only {} units start processes with credentials",
            UNIT_TYPES.join(", ")
        ));
    }
    if let Some(c) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "unit {name:?} holds {c:?}; a unit name is letters, digits, ':', '-', '_', '.', '\\' and '@'"
        ));
    }
    match stem.find('@') {
        None if stem.is_empty() => Err(format!("unit {name:?} has no name before its type")),
        Some(0) => Err(format!("unit {name:?} starts with '@'")),
        Some(at) if at + 1 == stem.len() => Err(format!(
            "unit {name:?} is a template; name an instance of it (like {}@NAME.{kind})",
            &stem[..at]
        )),
        _ => Ok(()),
    }
}

/// Checks a credential id as systemd does: not empty, not `.` or `..`, at most
/// [`CREDENTIAL_ID_MAX`] bytes of printable ASCII (space included), without `/` or `:`.
pub fn check_credential_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the credential id is empty".into());
    }
    if id.len() > CREDENTIAL_ID_MAX {
        return Err(format!(
            "the credential id is {} bytes long, more than systemd allows ({CREDENTIAL_ID_MAX})",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("{id:?} is not a credential id"));
    }
    if let Some(c) = id.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "credential id {:?} holds {c:?}; systemd takes printable ASCII only",
            crate::oplog::clean(id)
        ));
    }
    if let Some(c) = id.chars().find(|c| *c == '/' || *c == ':') {
        return Err(format!(
            "credential id {id:?} holds {c:?}, which systemd does not allow in one"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_follow_systemd() {
        for ok in [
            "billing.service",
            "getty@tty1.service",
            "a.b-c_d:e\\x2d.service",
            "x@y@z.service",
            "db.socket",
            "srv-data.mount",
            "dev-sda2.swap",
        ] {
            assert_eq!(check_unit_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("billing", "no type suffix"),
            ("billing.target", "only service"),
            ("user.slice", "only service"),
            ("bill ing.service", "holds ' '"),
            ("bill/ing.service", "holds '/'"),
            ("billing\n.service", "holds '\\n'"),
            ("@x.service", "starts with '@'"),
            ("getty@.service", "is a template"),
            (".service", "no name"),
        ] {
            let e = check_unit_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("{}.service", "a".repeat(250));
        assert!(check_unit_name(&long).unwrap_err().contains("more than"));
        assert_eq!(
            check_unit_name(&format!("{}.service", "a".repeat(247))),
            Ok(())
        );
    }

    #[test]
    fn credential_ids_follow_systemd() {
        for ok in ["db-password", "a", "with space", "tls.key", "x~y"] {
            assert_eq!(check_credential_id(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".", "not a credential id"),
            ("..", "not a credential id"),
            ("a/b", "'/'"),
            ("a:b", "':'"),
            ("a\u{7f}", "printable"),
            ("tab\there", "printable"),
            ("é", "printable"),
        ] {
            let e = check_credential_id(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(check_credential_id(&"x".repeat(256)).is_err());
        assert_eq!(check_credential_id(&"x".repeat(255)), Ok(()));
    }
}
