//! Reading a policy directory, all or nothing.
//!
//! Files are read in lexical order: `*.json` (upstream's format) and `*.yaml`/`*.yml` (the
//! same schema). Dotfiles, editor and package-manager leftovers (`*~`, `*.swp`, `#*#`,
//! `*.dpkg-*`, `*.rpmnew`…) and other suffixes are ignored, and listed as ignored. Every file
//! must parse (unknown fields are errors, reported as `file:line:column`), every rule and every
//! credential mapping ([`super::credentials`]) must validate, policy ids must be unique across
//! files and so must the `(unit, id)` of credential mappings; any error returns nothing at all, so a
//! caller never holds half a set.
//!
//! Like sudo and sshd, the loader refuses a policy directory or file that anyone but root or the
//! agent's own user can write (owner, or a group/other write bit), and a symlink that leads out
//! of the directory: whoever can write policy can grant anything.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;
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

/// What a directory entry is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A JSON policy file.
    Json,
    /// A YAML policy file.
    Yaml,
    /// Not a policy file, and why.
    Ignored(&'static str),
}

/// Classifies a directory entry by its name.
pub fn classify(name: &str) -> FileKind {
    const LEFTOVER: &str = "editor or package-manager leftover";
    if name.starts_with('.') {
        return FileKind::Ignored("hidden file");
    }
    if name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || [
            ".swp",
            ".swo",
            ".swx",
            ".bak",
            ".orig",
            ".rej",
            ".tmp",
            ".rpmnew",
            ".rpmsave",
            ".rpmorig",
            ".ucf-dist",
            ".ucf-old",
            ".ucf-new",
        ]
        .iter()
        .any(|s| name.ends_with(s))
        || name.contains(".dpkg-")
    {
        return FileKind::Ignored(LEFTOVER);
    }
    if name.ends_with(".json") {
        FileKind::Json
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        FileKind::Yaml
    } else {
        FileKind::Ignored("not a .json, .yaml or .yml file")
    }
}

/// Who may own policy files besides root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// The agent's own uid (root is always trusted).
    pub agent_uid: u32,
}

impl LoadOptions {
    /// Options for the current process.
    pub fn current() -> Self {
        LoadOptions {
            agent_uid: nix::unistd::geteuid().as_raw(),
        }
    }
}

/// A successfully loaded directory.
#[derive(Debug, Clone, Default)]
pub struct LoadedPolicies {
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Entries ignored, and why.
    pub ignored: Vec<(PathBuf, String)>,
    /// Ids of the active policies.
    pub policies: Vec<String>,
    /// All rules of the active policies, in file order.
    pub rules: Vec<Rule>,
    /// One line per file read.
    pub summaries: Vec<FileSummary>,
    /// The credential mappings of the active policies.
    pub credentials: super::credentials::CredentialMap,
    /// Whether the directory exists.
    pub dir_exists: bool,
}

/// What one policy file contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// Its policy id.
    pub policy_id: String,
    /// How many rules it has.
    pub rules: usize,
    /// How many credential mappings it has.
    pub credentials: usize,
    /// Whether its rules are in force (`status` active).
    pub active: bool,
}

/// Checks that only root or the agent's user can write `path` (already resolved).
fn check_trusted(path: &Path, what: &str, opts: LoadOptions) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadError::in_file(path, format!("cannot read {what}: {e}")))?;
    check_owner_mode(path, what, meta.uid(), meta.mode() & 0o7777, opts)
}

/// Refuses an owner other than root or the agent's user, and group or other write bits (the
/// rule every file the agent trusts follows: [`crate::trust::check_owner_mode`]).
fn check_owner_mode(
    path: &Path,
    what: &str,
    owner: u32,
    mode: u32,
    opts: LoadOptions,
) -> Result<(), LoadError> {
    let trusted = crate::trust::Owner::root_or_agent(opts.agent_uid);
    let dir = what.ends_with("directory");
    crate::trust::check_owner_mode(path, what, owner, mode, trusted, dir)
        .map_err(|e| LoadError::in_file(path, format!("{what} {}", e.detail())))
}

/// How often a load is retried when the directory changes while it is read.
const SNAPSHOT_TRIES: usize = 10;
/// Largest policy file read.
pub const MAX_POLICY_FILE_BYTES: u64 = 4 << 20;

/// One directory entry as read: what the checks and the parser need, so that two reads can be
/// compared whole.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: std::ffi::OsString,
    /// The resolved path, or why it could not be resolved.
    real: Result<PathBuf, String>,
    /// Owner and mode of the resolved file.
    meta: Option<(u32, u32)>,
    is_file: bool,
    /// The contents, for policy files (or why they could not be read).
    bytes: Option<Result<Vec<u8>, String>>,
}

/// The whole directory as read at one moment (as far as a directory can be).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    real_dir: PathBuf,
    entries: Vec<Entry>,
}

/// Reads the directory into memory; `Ok(None)` if it does not exist.
fn snapshot(dir: &Path) -> Result<Option<Snapshot>, LoadError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::in_file(
                dir,
                format!("cannot read directory: {e}"),
            ));
        }
    };
    let real_dir = std::fs::canonicalize(dir)
        .map_err(|e| LoadError::in_file(dir, format!("cannot resolve: {e}")))?;
    let mut entries = Vec::new();
    for entry in listing {
        let entry =
            entry.map_err(|e| LoadError::in_file(dir, format!("cannot read directory: {e}")))?;
        let name = entry.file_name();
        let path = dir.join(&name);
        let real = std::fs::canonicalize(&path).map_err(|e| e.to_string());
        let meta = real.as_ref().ok().and_then(|r| std::fs::metadata(r).ok());
        let is_file = meta.as_ref().is_some_and(|m| m.is_file());
        let wanted = name
            .to_str()
            .is_some_and(|n| !matches!(classify(n), FileKind::Ignored(_)));
        let bytes = (wanted && is_file).then(|| match &meta {
            Some(m) if m.len() > MAX_POLICY_FILE_BYTES => {
                Err(format!("larger than {MAX_POLICY_FILE_BYTES} bytes"))
            }
            _ => std::fs::read(real.as_ref().map_err(Clone::clone)?).map_err(|e| e.to_string()),
        });
        entries.push(Entry {
            name,
            real,
            meta: meta.map(|m| (m.uid(), m.mode() & 0o7777)),
            is_file,
            bytes,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(Snapshot { real_dir, entries }))
}

/// Reads and validates every policy file in `dir`. A missing directory is an empty set.
///
/// A directory cannot be read atomically: a read that races with writes can see a combination
/// of files the directory never held (say, a new allow-everything file without the broken file
/// written just before it). So the directory is read whole, twice in a row, and only a state
/// that reads the same both times is evaluated; if it keeps changing, the load fails and the
/// previous set stays in force.
pub fn load_dir(dir: &Path, opts: LoadOptions) -> Result<LoadedPolicies, LoadError> {
    let mut first = snapshot(dir)?;
    for _ in 0..SNAPSHOT_TRIES {
        let second = snapshot(dir)?;
        if first == second {
            return match first {
                None => Ok(LoadedPolicies::default()),
                Some(snap) => evaluate_snapshot(dir, &snap, opts),
            };
        }
        first = second;
    }
    Err(LoadError::in_file(
        dir,
        "the policy directory kept changing while it was read; the previous set stays in force",
    ))
}

/// Applies the checks and the parser to a snapshot.
fn evaluate_snapshot(
    dir: &Path,
    snap: &Snapshot,
    opts: LoadOptions,
) -> Result<LoadedPolicies, LoadError> {
    check_trusted(&snap.real_dir, "policy directory", opts)?;
    let mut out = LoadedPolicies {
        dir_exists: true,
        ..Default::default()
    };
    let mut docs = Vec::new();
    for e in &snap.entries {
        let path = dir.join(&e.name);
        let Some(name) = e.name.to_str() else {
            out.ignored.push((path, "name is not UTF-8".to_string()));
            continue;
        };
        let kind = classify(name);
        if let FileKind::Ignored(why) = kind {
            out.ignored.push((path, why.to_string()));
            continue;
        }
        let real = e
            .real
            .as_ref()
            .map_err(|err| LoadError::in_file(&path, format!("cannot resolve: {err}")))?;
        if real.parent() != Some(snap.real_dir.as_path()) {
            return Err(LoadError::in_file(
                &path,
                format!(
                    "refusing a symlink that leads out of the policy directory (to {})",
                    real.display()
                ),
            ));
        }
        if !e.is_file {
            out.ignored.push((path, "not a regular file".to_string()));
            continue;
        }
        let (owner, mode) = e
            .meta
            .ok_or_else(|| LoadError::in_file(&path, "cannot read its metadata"))?;
        check_owner_mode(&path, "policy file", owner, mode, opts)?;
        let bytes = match &e.bytes {
            Some(Ok(b)) => b,
            Some(Err(err)) => return Err(LoadError::in_file(&path, format!("cannot read: {err}"))),
            None => return Err(LoadError::in_file(&path, "cannot read")),
        };
        let text =
            std::str::from_utf8(bytes).map_err(|_| LoadError::in_file(&path, "not UTF-8 text"))?;
        let doc = match kind {
            FileKind::Yaml => parse_yaml_document(&path, text)?,
            _ => parse_document(&path, text)?,
        };
        docs.push((path, doc, Some(text)));
    }
    let compiled = compile_sources(docs)?;
    out.files = compiled.files;
    out.policies = compiled.policies;
    out.rules = compiled.rules;
    out.summaries = compiled.summaries;
    out.credentials = compiled.credentials;
    Ok(out)
}

/// Reads one policy file (`real` is its resolved path) after checking who can write it; its
/// document and text.
fn read_file(
    path: &Path,
    real: &Path,
    kind: FileKind,
    opts: LoadOptions,
) -> Result<(PolicyDocument, String), LoadError> {
    check_trusted(real, "policy file", opts)?;
    let size = std::fs::metadata(real).map(|m| m.len()).unwrap_or(0);
    if size > MAX_POLICY_FILE_BYTES {
        return Err(LoadError::in_file(
            path,
            format!("larger than {MAX_POLICY_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(real)
        .map_err(|e| LoadError::in_file(path, format!("cannot read: {e}")))?;
    let doc = match kind {
        FileKind::Yaml => parse_yaml_document(path, &text),
        _ => parse_document(path, &text),
    }?;
    Ok((doc, text))
}

/// Checks one policy file on its own: its name, owner, mode, size, syntax and rules. The
/// checks that concern a directory (its own owner and mode, symlinks leading out of it, policy
/// ids unique across files) apply only when the directory is loaded.
pub fn load_file(path: &Path, opts: LoadOptions) -> Result<LoadedPolicies, LoadError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let kind = match classify(name) {
        FileKind::Ignored(why) => {
            return Err(LoadError::in_file(
                path,
                format!("not a policy file ({why}); the agent would ignore it"),
            ));
        }
        k => k,
    };
    let real = std::fs::canonicalize(path)
        .map_err(|e| LoadError::in_file(path, format!("cannot resolve: {e}")))?;
    let (doc, text) = read_file(path, &real, kind, opts)?;
    compile_sources(vec![(path.to_path_buf(), doc, Some(&text))])
}

/// Parses one JSON policy file's text.
pub fn parse_document(path: &Path, text: &str) -> Result<PolicyDocument, LoadError> {
    serde_json::from_str(text).map_err(|e| LoadError {
        file: Some(path.to_path_buf()),
        line: Some(e.line().max(1)),
        // serde_json says column 0 at the start of a line (an empty file, or EOF after a
        // newline); columns here are 1-based, as editors read `file:line:column`.
        column: Some(e.column().max(1)),
        message: strip_position(&e.to_string()),
    })
}

/// Parses one YAML policy file's text, with positions for schema errors too.
pub fn parse_yaml_document(path: &Path, text: &str) -> Result<PolicyDocument, LoadError> {
    let value = crate::yaml::parse(text).map_err(|e| {
        let at = (e.line > 0).then(|| within(text, e.line, e.column));
        LoadError {
            file: Some(path.to_path_buf()),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            message: e.message.clone(),
        }
    })?;
    serde_path_to_error::deserialize::<_, PolicyDocument>(value).map_err(|e| {
        let positions = crate::yaml::positions(text);
        let mut path_parts: Vec<String> = e
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => String::new(),
            })
            .collect();
        let message = e.inner().to_string();
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            if path_parts.last().map(String::as_str) != Some(field) {
                path_parts.push(field.to_string());
            }
        }
        let at = nearest(&positions, path_parts).map(|(line, column)| within(text, line, column));
        LoadError {
            file: Some(path.to_path_buf()),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            message,
        }
    })
}

/// The position of the value at `path` (keys and indices), or of the nearest enclosing value
/// that has one.
fn nearest(
    positions: &HashMap<String, (usize, usize)>,
    mut path: Vec<String>,
) -> Option<(usize, usize)> {
    while !path.is_empty() {
        if let Some(at) = positions.get(&path.join("/")) {
            return Some(*at);
        }
        path.pop();
    }
    None
}

/// The 1-based position in `text` (a JSON or YAML policy file) of the value at `pointer`
/// (`rules/0/resources/1`), or of the nearest enclosing value that has one.
pub(super) fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let path = pointer.split('/').map(str::to_string).collect();
    nearest(&crate::yaml::positions(text), path).map(|(l, c)| within(text, l, c))
}

/// A 1-based position kept inside `text`. The YAML scanner ends the input with an implicit
/// line break, so an error at the end of a file without a final newline (or at a NUL, where it
/// stops reading) is reported on the line after the last; that is the end of the last line.
fn within(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = text.split('\n').count();
    if line <= lines {
        return (line, column.max(1));
    }
    let last = text.rsplit('\n').next().unwrap_or_default();
    (lines, last.chars().count() + 1)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Validates parsed documents together: unique policy ids, every rule valid.
pub fn compile(docs: Vec<(PathBuf, PolicyDocument)>) -> Result<LoadedPolicies, LoadError> {
    compile_sources(docs.into_iter().map(|(p, d)| (p, d, None)).collect())
}

/// [`compile`], with each document's text when it is known, so that an error in a rule is
/// reported at its line and column.
fn compile_sources(
    docs: Vec<(PathBuf, PolicyDocument, Option<&str>)>,
) -> Result<LoadedPolicies, LoadError> {
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut out = LoadedPolicies::default();
    for (path, doc, text) in docs {
        if doc.id.trim().is_empty() {
            return Err(LoadError::in_file(&path, "the policy needs a non-empty id"));
        }
        if let Some(first) = seen.get(&doc.id) {
            return Err(LoadError::in_file(
                &path,
                format!(
                    "policy id {:?} is already used by {}",
                    doc.id,
                    first.display()
                ),
            ));
        }
        seen.insert(doc.id.clone(), path.clone());
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
        for (k, r) in doc.rules.iter().enumerate() {
            if !rule_ids.insert(r.id.clone()) {
                return Err(LoadError::in_file(
                    &path,
                    format!("rule id {:?} appears twice", r.id),
                ));
            }
            let rule = compile_rule(&doc.id, r).map_err(|e| {
                let pointer = match e.at.as_str() {
                    "" => format!("rules/{k}"),
                    at => format!("rules/{k}/{at}"),
                };
                let at = text.and_then(|t| locate(t, &pointer));
                LoadError {
                    file: Some(path.clone()),
                    line: at.map(|a| a.0),
                    column: at.map(|a| a.1),
                    message: e.message,
                }
            })?;
            if active {
                out.rules.push(rule);
            }
        }
        let credentials = &doc.credentials;
        let map = &mut out.credentials;
        super::credentials::compile_list(&doc.id, &path, credentials, text, active, map)?;
        if active {
            out.policies.push(doc.id.clone());
        }
        out.summaries.push(FileSummary {
            path: path.clone(),
            policy_id: doc.id.clone(),
            rules: doc.rules.len(),
            credentials: doc.credentials.len(),
            active,
        });
        out.files.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const GOOD: &str = r#"{"id":"p1","rules":[{"id":"r1","effect":"allow","resources":["secret:*"],"actions":["read"],"identities":["uid:1000"]}]}"#;

    fn opts() -> LoadOptions {
        LoadOptions::current()
    }

    #[test]
    fn classification() {
        for (name, kind) in [
            ("a.json", FileKind::Json),
            ("b.yaml", FileKind::Yaml),
            ("c.yml", FileKind::Yaml),
            (".hidden.json", FileKind::Ignored("hidden file")),
            (
                "a.json~",
                FileKind::Ignored("editor or package-manager leftover"),
            ),
            (".a.json.swp", FileKind::Ignored("hidden file")),
            (
                "a.json.swp",
                FileKind::Ignored("editor or package-manager leftover"),
            ),
            (
                "#a.json#",
                FileKind::Ignored("editor or package-manager leftover"),
            ),
            (
                "a.json.dpkg-dist",
                FileKind::Ignored("editor or package-manager leftover"),
            ),
            (
                "a.json.rpmnew",
                FileKind::Ignored("editor or package-manager leftover"),
            ),
            (
                "a.json.example",
                FileKind::Ignored("not a .json, .yaml or .yml file"),
            ),
            (
                "README",
                FileKind::Ignored("not a .json, .yaml or .yml file"),
            ),
        ] {
            assert_eq!(classify(name), kind, "{name}");
        }
    }

    #[test]
    fn loads_json_and_yaml_in_order_and_lists_the_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), GOOD.replace("p1", "p2")).unwrap();
        std::fs::write(dir.path().join("a.json"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            "id: p3\nrules:\n  - id: r\n    effect: deny\n    resources: [\"secret:/x\"]\n    actions: [\"*\"]\n    identities: [\"*\"]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".hidden.json"), "garbage").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "garbage").unwrap();
        std::fs::write(dir.path().join("a.json~"), "garbage").unwrap();
        let l = load_dir(dir.path(), opts()).unwrap();
        assert_eq!(l.policies, vec!["p1", "p2", "p3"]);
        assert_eq!(l.rules.len(), 3);
        assert_eq!(l.ignored.len(), 3);
        assert!(l.dir_exists);
    }

    #[test]
    fn one_bad_file_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), GOOD).unwrap();
        std::fs::write(dir.path().join("b.json"), "{\"id\":\"p2\",\n \"rules\": [}").unwrap();
        let e = load_dir(dir.path(), opts()).unwrap_err();
        assert!(e.file.as_ref().unwrap().ends_with("b.json"));
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().contains("b.json:2:"), "{e}");
    }

    /// Regression (found by fuzzing, fuzz/regressions/policy_parse/): an empty file, or one
    /// that ends after a newline, was reported at column 0 (`x.json:1:0`).
    #[test]
    fn json_errors_have_one_based_positions_even_at_the_start_of_a_line() {
        for (text, line) in [("", 1), ("{\"id\":\"p2\",\n", 2), ("{\n\n", 3)] {
            let e = parse_document(Path::new("x.json"), text).unwrap_err();
            assert_eq!((e.line, e.column), (Some(line), Some(1)), "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("x.json:{line}:1: ")),
                "{e}"
            );
        }
    }

    /// Regression (found by fuzzing, fuzz/regressions/policy_parse/): a YAML error at the end
    /// of a file without a final newline was reported on a line the file does not have.
    #[test]
    fn yaml_errors_at_the_end_of_the_file_point_inside_it() {
        for (text, at) in [
            ("id: p\nrules: [", (2, 9)),
            ("{\"id\": 1", (1, 9)),
            ("id: p\nrules: [\n", (3, 1)),
            // A NUL ends the YAML scanner's input: the schema error's position was past it.
            ("- \0", (1, 4)),
        ] {
            let e = parse_yaml_document(Path::new("x.yaml"), text).unwrap_err();
            assert_eq!(
                (e.line, e.column),
                (Some(at.0), Some(at.1)),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn yaml_errors_have_positions() {
        let text = "id: p\nrules:\n  - id: r\n    effect: allow\n    resources: [\"*\"]\n    actions: [\"*\"]\n    identities: [\"*\"]\n    efect: deny\n";
        let e = parse_yaml_document(Path::new("x.yaml"), text).unwrap_err();
        assert_eq!((e.line, e.column), (Some(8), Some(5)), "{e}");
        assert!(e.message.contains("efect"));
        let e = parse_yaml_document(Path::new("x.yaml"), "id: p\nrules: [\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        let e = parse_yaml_document(
            Path::new("x.yaml"),
            "id: p\nrules:\n  - id: r\n    effect: perhaps\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
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
        let e = compile(dup).unwrap_err();
        assert!(e.message.contains("already used by a.json"), "{e}");
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
    fn writable_files_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, GOOD).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_dir(dir.path(), opts()).unwrap_err();
        assert!(e.message.contains("writable by group or others"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = load_dir(dir.path(), opts()).unwrap_err();
        assert!(e.message.contains("policy directory"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let other = LoadOptions { agent_uid: 4242 };
        if nix::unistd::geteuid().as_raw() != 0 {
            assert!(
                load_dir(dir.path(), other)
                    .unwrap_err()
                    .message
                    .contains("neither root")
            );
        }
        assert!(load_dir(dir.path(), opts()).is_ok());
    }

    #[test]
    fn symlinks_out_of_the_directory_are_refused_but_inside_are_fine() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("evil.json"), GOOD).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("evil.json"),
            dir.path().join("evil.json"),
        )
        .unwrap();
        let e = load_dir(dir.path(), opts()).unwrap_err();
        assert!(e.message.contains("symlink"), "{e}");
        std::fs::remove_file(dir.path().join("evil.json")).unwrap();
        std::fs::write(dir.path().join("real.json.disabled"), GOOD).unwrap();
        std::os::unix::fs::symlink("real.json.disabled", dir.path().join("enabled.json")).unwrap();
        assert_eq!(load_dir(dir.path(), opts()).unwrap().policies, vec!["p1"]);
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
        let l = load_dir(Path::new("/nonexistent/policies"), opts()).unwrap();
        assert!(!l.dir_exists && l.rules.is_empty());
    }
}
