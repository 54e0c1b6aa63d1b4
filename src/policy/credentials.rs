//! The `credentials` list of a policy file: which secret a unit gets as which systemd
//! credential (`LoadCredential=ID:/run/aether-vault/credentials.sock`).
//!
//! ```json
//! {"id":"billing","rules":[…],
//!  "credentials":[{"unit":"billing.service","id":"db-password",
//!                  "secret":"secret:/db/primary#password"}]}
//! ```
//!
//! `#field` is optional: without it the unit gets the whole secret as a JSON object. Each
//! entry is checked when the set loads (the unit and the id as systemd checks them, the secret
//! as a canonical resource naming one secret), and a `(unit, id)` pair may be mapped only once
//! across the files in force; an error is reported at its `file:line:column`, like a rule's,
//! and the set is not loaded. A mapping grants nothing by itself: delivery also needs the rules
//! to allow `read` on the secret to the service manager starting that unit
//! ([`crate::credentials::decide`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::load::LoadError;
use crate::credentials::names::{check_credential_id, check_unit_name};
use crate::resource::{PathKind, check_request_resource, check_secret_path};

/// One entry of a policy file's `credentials` list, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDocument {
    /// The unit that gets it (`billing.service`).
    pub unit: String,
    /// The credential id in its `LoadCredential=ID:…` (`db-password`).
    pub id: String,
    /// `secret:/PATH` or `secret:/PATH#field`.
    pub secret: String,
}

/// A checked mapping, as the set in force holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialMapping {
    /// The unit.
    pub unit: String,
    /// The credential id.
    pub id: String,
    /// The secret as written (`secret:/db/primary#password`).
    pub secret: String,
    /// The resource policy decides on (`secret:/db/primary`).
    pub resource: String,
    /// The secret's path for the backend (`db/primary`).
    pub path: String,
    /// The field delivered alone, if one is named.
    pub field: Option<String>,
    /// The policy that maps it.
    pub policy_id: String,
    /// The file it is in.
    pub file: PathBuf,
}

/// The mappings in force, by `(unit, id)`.
pub type CredentialMap = BTreeMap<(String, String), CredentialMapping>;

/// What is wrong with one entry: where in it (`unit`, `id`, `secret`, or empty for the entry)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// The key at fault, or empty.
    pub at: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Checks one entry of `policy_id` in `file`.
pub fn compile_mapping(
    policy_id: &str,
    file: &Path,
    doc: &CredentialDocument,
) -> Result<CredentialMapping, MappingError> {
    let fail = |at: &'static str, message: String| MappingError { at, message };
    check_unit_name(&doc.unit).map_err(|m| fail("unit", format!("credentials: {m}")))?;
    check_credential_id(&doc.id).map_err(|m| fail("id", format!("credentials: {m}")))?;
    let (resource, field) = split_secret(&doc.secret).map_err(|m| {
        fail(
            "secret",
            format!(
                "credentials: secret {:?} {m}",
                crate::oplog::clean(&doc.secret)
            ),
        )
    })?;
    Ok(CredentialMapping {
        unit: doc.unit.clone(),
        id: doc.id.clone(),
        secret: doc.secret.clone(),
        path: resource["secret:/".len()..].to_string(),
        resource,
        field,
        policy_id: policy_id.to_string(),
        file: file.to_path_buf(),
    })
}

/// Splits `secret:/PATH#field` into the resource and the field, checking that the resource is
/// canonical and names one secret.
pub fn split_secret(secret: &str) -> Result<(String, Option<String>), String> {
    let (resource, field) = match secret.split_once('#') {
        Some((_, "")) => return Err("has an empty #field".into()),
        Some((r, f)) => (r, Some(f.to_string())),
        None => (secret, None),
    };
    let Some(path) = resource.strip_prefix("secret:/") else {
        return Err("is not secret:/PATH or secret:/PATH#field".into());
    };
    check_request_resource(resource).map_err(|e| e.to_string())?;
    check_secret_path(path, PathKind::Secret).map_err(|e| e.to_string())?;
    if let Some(c) = field
        .as_deref()
        .and_then(|f| f.chars().find(|c| c.is_control()))
    {
        return Err(format!("has a #field holding the control character {c:?}"));
    }
    Ok((resource.to_string(), field))
}

/// Checks the `credentials` of one policy file (`text` locates errors) and, when the policy is
/// active, adds them to `map`, refusing a `(unit, id)` another file in force already maps.
pub(super) fn compile_list(
    policy_id: &str,
    path: &Path,
    docs: &[CredentialDocument],
    text: Option<&str>,
    active: bool,
    map: &mut CredentialMap,
) -> Result<(), LoadError> {
    let mut here: HashMap<(&str, &str), usize> = HashMap::new();
    for (k, doc) in docs.iter().enumerate() {
        let located = |at: &str, message: String| {
            let pointer = match at {
                "" => format!("credentials/{k}"),
                at => format!("credentials/{k}/{at}"),
            };
            let pos = text.and_then(|t| super::load::locate(t, &pointer));
            LoadError {
                file: Some(path.to_path_buf()),
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                message,
            }
        };
        let m = compile_mapping(policy_id, path, doc).map_err(|e| located(e.at, e.message))?;
        if let Some(first) = here.insert((&doc.unit, &doc.id), k) {
            return Err(located(
                "",
                format!(
                    "credentials: credential {:?} of unit {} is mapped twice in this file (entries {first} and {k})",
                    doc.id, doc.unit
                ),
            ));
        }
        if !active {
            continue;
        }
        let key = (m.unit.clone(), m.id.clone());
        if let Some(other) = map.get(&key) {
            return Err(located(
                "",
                format!(
                    "credentials: credential {:?} of unit {} is already mapped by {} (policy {:?})",
                    m.id,
                    m.unit,
                    other.file.display(),
                    other.policy_id
                ),
            ));
        }
        map.insert(key, m);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(unit: &str, id: &str, secret: &str) -> CredentialDocument {
        CredentialDocument {
            unit: unit.into(),
            id: id.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn a_mapping_names_its_resource_path_and_field() {
        let m = compile_mapping(
            "p",
            Path::new("/p.json"),
            &doc(
                "billing.service",
                "db-password",
                "secret:/db/primary#password",
            ),
        )
        .unwrap();
        assert_eq!(
            (m.resource.as_str(), m.path.as_str(), m.field.as_deref()),
            ("secret:/db/primary", "db/primary", Some("password"))
        );
        let whole = compile_mapping(
            "p",
            Path::new("/p.json"),
            &doc("billing.service", "db", "secret:/db/primary"),
        )
        .unwrap();
        assert_eq!(whole.field, None);
    }

    #[test]
    fn bad_entries_say_which_key_and_why() {
        for (d, at, why) in [
            (doc("billing", "x", "secret:/a"), "unit", "no type suffix"),
            (doc("billing.service", "a/b", "secret:/a"), "id", "'/'"),
            (doc("billing.service", "", "secret:/a"), "id", "empty"),
            (
                doc("billing.service", "x", "secret://a"),
                "secret",
                "canonical form",
            ),
            (
                doc("billing.service", "x", "config:/a"),
                "secret",
                "secret:/PATH",
            ),
            (
                doc("billing.service", "x", "secret:/a/"),
                "secret",
                "folder",
            ),
            (doc("billing.service", "x", "secret:/a*"), "secret", "'*'"),
            (
                doc("billing.service", "x", "secret:/a#"),
                "secret",
                "empty #field",
            ),
            (doc("billing.service", "x", "secret:/"), "secret", "empty"),
        ] {
            let e = compile_mapping("p", Path::new("/p.json"), &d).unwrap_err();
            assert_eq!(e.at, at, "{d:?}: {}", e.message);
            assert!(e.message.contains(why), "{d:?}: {}", e.message);
        }
    }

    #[test]
    fn a_bad_entry_is_reported_at_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let json = "{\"id\":\"p\",\n \"credentials\":[\n  {\"unit\":\"billing.service\",\"id\":\"pw\",\"secret\":\"secret:/a#f\"},\n  {\"unit\":\"billing.service\",\"id\":\"x\",\n   \"secret\":\"secret://db\"}]}\n";
        std::fs::write(dir.path().join("a.json"), json).unwrap();
        let e =
            crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(5), Some(4)), "{e}");
        assert!(
            e.to_string().contains("a.json:5:4: credentials: secret"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        let yaml = "id: p\ncredentials:\n  - unit: billing\n    id: pw\n    secret: secret:/a\n";
        std::fs::write(dir.path().join("b.yaml"), yaml).unwrap();
        let e =
            crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(5)), "{e}");
        assert!(e.message.contains("no type suffix"), "{e}");
        let unknown =
            "id: p\ncredentials:\n  - unit: billing.service\n    id: pw\n    secrte: secret:/a\n";
        std::fs::write(dir.path().join("b.yaml"), unknown).unwrap();
        let e =
            crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
    }

    #[test]
    fn a_unit_and_id_are_mapped_once_across_the_files_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let one = |policy: &str, status: &str| {
            format!(
                "{{\"id\":\"{policy}\",\"status\":\"{status}\",\"credentials\":[{{\"unit\":\"billing.service\",\"id\":\"pw\",\"secret\":\"secret:/db/{policy}\"}}]}}"
            )
        };
        std::fs::write(dir.path().join("a.json"), one("a", "active")).unwrap();
        std::fs::write(dir.path().join("b.json"), one("b", "inactive")).unwrap();
        let l = crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap();
        assert_eq!(l.credentials.len(), 1, "an inactive policy maps nothing");
        let m = &l.credentials[&("billing.service".to_string(), "pw".to_string())];
        assert_eq!((m.policy_id.as_str(), m.path.as_str()), ("a", "db/a"));
        std::fs::write(dir.path().join("b.json"), one("b", "active")).unwrap();
        let e =
            crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap_err();
        assert!(
            e.file.as_ref().unwrap().ends_with("b.json")
                && e.message.contains("already mapped by")
                && e.message.contains("a.json"),
            "{e}"
        );
        assert_eq!(e.line, Some(1), "{e}");
        let twice = "{\"id\":\"c\",\"credentials\":[{\"unit\":\"x.service\",\"id\":\"pw\",\"secret\":\"secret:/a\"},{\"unit\":\"x.service\",\"id\":\"pw\",\"secret\":\"secret:/b\"}]}";
        std::fs::remove_file(dir.path().join("b.json")).unwrap();
        std::fs::write(dir.path().join("c.json"), twice).unwrap();
        let e =
            crate::policy::load_dir(dir.path(), crate::policy::LoadOptions::current()).unwrap_err();
        assert!(e.message.contains("mapped twice in this file"), "{e}");
    }

    #[test]
    fn the_shipped_example_loads_and_says_what_it_says() {
        let text = include_str!("../../etc/policies.d/20-credentials.yaml.example");
        let path = Path::new("20-credentials.yaml");
        let doc = crate::policy::load::parse_yaml_document(path, text).unwrap();
        let l = crate::policy::load::compile(vec![(path.to_path_buf(), doc)]).unwrap();
        let set = crate::policy::PolicySet::from_loaded(1, l, crate::policy::Fallback::DenyAll);
        assert_eq!(set.credentials.len(), 3);
        for (id, decision) in [
            ("db-password", "deliver"),
            ("api-client.json", "deliver"),
            ("legacy-key", "refuse"),
            ("other", "refuse"),
        ] {
            let t = crate::credentials::explain(&set, "billing.service", id);
            assert_eq!(t.decision, decision, "{id}: {}", t.reason);
        }
        assert!(text.contains(crate::oplog::CREDENTIAL_REFUSED));
    }
}
