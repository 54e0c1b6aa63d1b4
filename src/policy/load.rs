//! Reading a policy directory, all or nothing.
//!
//! Every `*.json` file in the directory is read in lexical order; every file must parse
//! (unknown fields are errors, reported as `file:line:column`), every rule must validate, and
//! policy ids must be unique across files. Only then is a list of rules returned; any error
//! returns nothing at all, so a caller never holds half a set. Other files (dotfiles, editor
//! leftovers, other suffixes) are ignored.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::document::PolicyDocument;
use super::rules::{Rule, compile_rule};

/// Why a policy set failed to load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file at fault, if one is.
    pub file: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(col) = self.column {
                    write!(f, ":{col}")?;
                }
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl LoadError {
    fn in_file(file: &Path, message: impl Into<String>) -> Self {
        LoadError {
            file: Some(file.to_path_buf()),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// A successfully loaded directory.
#[derive(Debug, Clone, Default)]
pub struct LoadedPolicies {
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Ids of the active policies.
    pub policies: Vec<String>,
    /// All rules of the active policies, in file order.
    pub rules: Vec<Rule>,
    /// Whether the directory exists.
    pub dir_exists: bool,
}

/// Whether a directory entry is a policy file by its name.
pub fn is_policy_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".json")
}

/// Reads and validates every policy file in `dir`. A missing directory is an empty set.
pub fn load_dir(dir: &Path) -> Result<LoadedPolicies, LoadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadedPolicies::default()),
        Err(e) => {
            return Err(LoadError::in_file(
                dir,
                format!("cannot read directory: {e}"),
            ));
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| LoadError::in_file(dir, format!("cannot read directory: {e}")))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_policy_file_name(name) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    let mut docs = Vec::with_capacity(paths.len());
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::in_file(path, format!("cannot read: {e}")))?;
        docs.push((path.clone(), parse_document(path, &text)?));
    }
    let mut out = compile(docs)?;
    out.dir_exists = true;
    Ok(out)
}

/// Parses one policy file's text.
pub fn parse_document(path: &Path, text: &str) -> Result<PolicyDocument, LoadError> {
    serde_json::from_str(text).map_err(|e| LoadError {
        file: Some(path.to_path_buf()),
        line: Some(e.line()),
        column: Some(e.column()),
        message: strip_position(&e.to_string()),
    })
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Validates parsed documents together: unique policy ids, every rule valid.
pub fn compile(docs: Vec<(PathBuf, PolicyDocument)>) -> Result<LoadedPolicies, LoadError> {
    let mut seen = HashSet::new();
    let mut out = LoadedPolicies::default();
    for (path, doc) in docs {
        if doc.id.trim().is_empty() {
            return Err(LoadError::in_file(&path, "the policy needs a non-empty id"));
        }
        if !seen.insert(doc.id.clone()) {
            return Err(LoadError::in_file(
                &path,
                format!("policy id {:?} is already used by another file", doc.id),
            ));
        }
        let active = match doc.status.as_deref() {
            None | Some("active") => true,
            Some("inactive") | Some("disabled") => false,
            Some(other) => {
                return Err(LoadError::in_file(
                    &path,
                    format!("status {other:?} is not active, inactive or disabled"),
                ));
            }
        };
        let mut rule_ids = HashSet::new();
        for r in &doc.rules {
            if !rule_ids.insert(r.id.clone()) {
                return Err(LoadError::in_file(
                    &path,
                    format!("rule id {:?} appears twice", r.id),
                ));
            }
            let rule = compile_rule(&doc.id, r).map_err(|m| LoadError::in_file(&path, m))?;
            if active {
                out.rules.push(rule);
            }
        }
        if active {
            out.policies.push(doc.id.clone());
        }
        out.files.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"p1","rules":[{"id":"r1","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["uid:1000"]}]}"#;

    #[test]
    fn loads_json_files_in_order_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), GOOD.replace("p1", "p2")).unwrap();
        std::fs::write(dir.path().join("a.json"), GOOD).unwrap();
        std::fs::write(dir.path().join(".hidden.json"), "garbage").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "garbage").unwrap();
        std::fs::write(dir.path().join("a.json~"), "garbage").unwrap();
        let l = load_dir(dir.path()).unwrap();
        assert_eq!(l.policies, vec!["p1", "p2"]);
        assert_eq!(l.rules.len(), 2);
        assert!(l.dir_exists);
    }

    #[test]
    fn one_bad_file_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), GOOD).unwrap();
        std::fs::write(dir.path().join("b.json"), "{\"id\":\"p2\",\n \"rules\": [}").unwrap();
        let e = load_dir(dir.path()).unwrap_err();
        assert!(e.file.as_ref().unwrap().ends_with("b.json"));
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("b.json:2:"), "{e}");
    }

    #[test]
    fn unknown_fields_duplicates_and_bad_selectors_are_errors() {
        let unknown = GOOD.replace("\"effect\"", "\"efect\":\"x\",\"effect\"");
        assert!(
            parse_document(Path::new("x.json"), &unknown)
                .unwrap_err()
                .message
                .contains("efect")
        );
        let dup = vec![
            (
                PathBuf::from("a.json"),
                parse_document(Path::new("a"), GOOD).unwrap(),
            ),
            (
                PathBuf::from("b.json"),
                parse_document(Path::new("b"), GOOD).unwrap(),
            ),
        ];
        assert!(compile(dup).unwrap_err().message.contains("already used"));
        let bare = GOOD.replace("uid:1000", "billing-app");
        let e = compile(vec![(
            PathBuf::from("c.json"),
            parse_document(Path::new("c"), &bare).unwrap(),
        )])
        .unwrap_err();
        assert!(
            e.message.contains("billing-app") && e.message.contains("r1"),
            "{e}"
        );
    }

    #[test]
    fn inactive_policies_contribute_no_rules_and_missing_dir_is_empty() {
        let inactive = GOOD.replace("\"rules\"", "\"status\":\"inactive\",\"rules\"");
        let l = compile(vec![(
            PathBuf::from("a.json"),
            parse_document(Path::new("a"), &inactive).unwrap(),
        )])
        .unwrap();
        assert!(l.rules.is_empty());
        let l = load_dir(Path::new("/nonexistent/policies")).unwrap();
        assert!(!l.dir_exists && l.rules.is_empty());
    }
}
