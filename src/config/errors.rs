//! Configuration errors as an operator reads them: where the value came from, once (the file
//! with its line and column, the environment variable, or the command-line flag), the key in
//! plain dotted form (`ipc.max_connections`, never figment's `default.ipc…`), and what is wrong,
//! with the fix where one is known (a near key for a misspelt one; quotes for a version that
//! YAML read as a number).
//!
//! The same words name where each value of the effective configuration came from
//! (`agent config --running`): [`source_of`].

use figment::{Figment, Metadata, Source};

use super::{ConfigError, YamlFile, env_key};

/// The command-line flag that sets `key`, if one does.
fn flag_for(key: &str) -> Option<&'static str> {
    Some(match key {
        "mode" => "--mode",
        "socket_path" => "--socket-path",
        "log_level" => "--log-level",
        "state_dir" => "--state-dir",
        "policy_engine.directory" => "--policy-dir",
        "audit.log_file" => "--audit-file",
        "credentials.socket_path" => "--credentials-socket",
        _ => return None,
    })
}

/// The `VAULT_AGENT_*` variable of this process's environment that sets `key`, if one does.
fn env_var_for(key: &str) -> Option<String> {
    std::env::vars_os().find_map(|(name, _)| {
        let name = name.into_string().ok()?;
        let suffix = name.strip_prefix("VAULT_AGENT_")?;
        (suffix != "CONFIG_FILE" && env_key(suffix) == key).then_some(name)
    })
}

/// The 1-based line and column of `key`'s value in the file, or of the nearest enclosing key.
fn position(file: &YamlFile, key: &str) -> Option<(usize, usize)> {
    let positions = crate::yaml::positions(file.text());
    let mut parts: Vec<&str> = key.split('.').collect();
    while !parts.is_empty() {
        let joined = parts.join("/");
        let alias = joined.replacen("capability_engine", "capabilities", 1);
        if let Some(at) = positions.get(&joined).or_else(|| positions.get(&alias)) {
            return Some(*at);
        }
        parts.pop();
    }
    None
}

/// Where the value of `key` came from, in words: `FILE:LINE:COLUMN` (or `FILE`),
/// `environment variable NAME`, `command-line flag --NAME`, or the built-in defaults.
pub(super) fn origin(md: Option<&Metadata>, key: &str, file: Option<&YamlFile>) -> String {
    let Some(md) = md else {
        return "built-in defaults".to_string();
    };
    if let Some(Source::File(path)) = &md.source {
        return match file.filter(|f| f.path() == path.as_path()) {
            Some(f) => match position(f, key) {
                Some((line, column)) => format!("{}:{line}:{column}", path.display()),
                None => path.display().to_string(),
            },
            None => path.display().to_string(),
        };
    }
    if md.name.contains("environment") {
        return match env_var_for(key) {
            Some(var) => format!("environment variable {var}"),
            None => "VAULT_AGENT_* environment variables".to_string(),
        };
    }
    if md.name == super::FLAGS {
        return match flag_for(key) {
            Some(flag) => format!("command-line flag {flag}"),
            None => super::FLAGS.to_string(),
        };
    }
    md.name.to_string()
}

/// Where the effective value of `key` came from (`file /etc/…/agent.yaml:3:7`, `environment
/// variable VAULT_AGENT_MODE`, `command-line flag --mode`, `default (standard mode)`).
pub(super) fn source_of(figment: &Figment, key: &str, file: Option<&YamlFile>) -> String {
    let md = figment.find_metadata(key);
    match md {
        Some(m) if matches!(m.source, Some(Source::File(_))) => {
            format!("file {}", origin(md, key, file))
        }
        Some(m) if m.name.starts_with(super::DEFAULTS) => {
            m.name.replacen(super::DEFAULTS, "default", 1)
        }
        None => "default".to_string(),
        _ => origin(md, key, file),
    }
}

/// A figment error as one plain sentence.
pub(super) fn from_figment(e: figment::Error, file: Option<&YamlFile>) -> ConfigError {
    use figment::error::Kind;
    let mut key = e.path.join(".");
    let raw = |key: &str| {
        file.and_then(|f| {
            crate::yaml::plain_scalars(f.text())
                .get(&key.replace('.', "/"))
                .cloned()
        })
    };
    let from_file = matches!(
        e.metadata.as_ref().and_then(|m| m.source.as_ref()),
        Some(Source::File(_))
    );
    let message = match &e.kind {
        Kind::UnknownVariant(found, expected) => {
            format!("{found:?} is not one of {}", expected.join(", "))
        }
        // Upstream's high-availability keys at the top level: the reason, not the key list.
        Kind::UnknownField(found, _) if key == *found && super::HA_KEYS.contains(&key.as_str()) => {
            format!("unknown key: {}", super::NO_HA)
        }
        Kind::UnknownField(found, expected) => match closest(found, expected) {
            Some(near) => format!("unknown key; did you mean {near}?"),
            None => format!("unknown key; the keys here are {}", expected.join(", ")),
        },
        Kind::MissingField(field) => {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(field);
            "missing: it has no default and must be set".to_string()
        }
        Kind::InvalidType(found, expected) => {
            let found_text = raw(&key).unwrap_or_else(|| found.to_string().replace('`', ""));
            let expected = plain_expected(&expected.to_string());
            let number = matches!(
                found,
                figment::error::Actual::Float(_)
                    | figment::error::Actual::Unsigned(_)
                    | figment::error::Actual::Signed(_)
                    | figment::error::Actual::Bool(_)
            );
            let leaf = key.rsplit('.').next().unwrap_or_default();
            if from_file && number && expected == "a string" {
                format!(
                    "{found_text} is read as a number, not text: write {leaf}: \"{found_text}\""
                )
            } else {
                format!("expected {expected}, found {found_text}")
            }
        }
        other => other.to_string(),
    };
    let origin = origin(e.metadata.as_ref(), &key, file);
    if key.is_empty() {
        return ConfigError::File(format!("{origin}: {message}"));
    }
    ConfigError::Value {
        origin,
        key,
        message,
    }
}

/// serde's name of an expected type, in words.
fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a mapping of keys".into(),
        e => e.to_string(),
    }
}

/// The known key nearest to a misspelt one (at most two edits away).
fn closest<'a>(found: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(found, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_keys_are_suggested() {
        assert_eq!(
            closest("max_conections", &["max_connections", "conn_timeout"]),
            Some("max_connections")
        );
        assert_eq!(closest("zzzzzz", &["mode"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
