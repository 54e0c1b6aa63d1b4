//! Output formats and the pure pieces of rendering: JSON and YAML of a payload, aligned
//! key/value and column tables for people, human-readable durations, and writing a private
//! (mode 0600) file for `--output`.

use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use super::error::CliError;

/// `--format`: how results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// The agent's payload as pretty-printed JSON.
    Json,
    /// The agent's payload as YAML.
    Yaml,
}

/// Renders `payload` as JSON or YAML, or calls `table` for the text form. Always ends in a
/// newline (unless the table is empty).
pub fn render(format: Format, payload: &Value, table: impl FnOnce() -> String) -> String {
    match format {
        Format::Json => json(payload),
        Format::Yaml => crate::yaml::to_string(payload),
        Format::Table => table(),
    }
}

/// The line a denial prints: `Denied: <why>`, without repeating the `denied: ` the agent's
/// reasoning already starts with (`Denied: no rule allows …`, never `Denied: denied: …`).
pub fn denied_line(why: &str) -> String {
    let why = why.trim();
    let rest = match why.get(..8) {
        Some(head) if head.eq_ignore_ascii_case("denied: ") => &why[8..],
        _ => why,
    };
    format!("Denied: {rest}")
}

/// Pretty-printed JSON followed by a newline.
pub fn json(payload: &Value) -> String {
    // Serialising a `Value` cannot fail: its map keys are strings.
    let mut text = serde_json::to_string_pretty(payload).unwrap_or_default();
    text.push('\n');
    text
}

/// Key/value lines with the values aligned, `key:` first.
#[derive(Debug, Default, Clone)]
pub struct KeyValues {
    rows: Vec<(String, String)>,
}

impl KeyValues {
    /// An empty table.
    pub fn new() -> Self {
        KeyValues::default()
    }

    /// Adds a row.
    pub fn row(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.rows.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a row when `value` is present.
    pub fn opt(&mut self, key: &str, value: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(v) = value {
            self.row(key, v);
        }
        self
    }

    /// The lines, each ending in a newline; values start in the same column.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(k, _)| k.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &self.rows {
            let key = format!("{k}:");
            let line = format!("{key:<width$}  {v}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A header line and rows, columns separated by at least two spaces; trailing spaces trimmed.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            s.extend(std::iter::repeat_n(' ', pad));
        }
        let mut s = s.trim_end().to_string();
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        let cells: Vec<&str> = (0..n)
            .map(|i| row.get(i).map(String::as_str).unwrap_or(""))
            .collect();
        out.push_str(&line(cells));
    }
    out
}

/// A duration given in nanoseconds, for people: `850ns`, `12.5µs`, `3.2ms`, `1.50s`,
/// `2m 5s`, `3h 0m 12s`, `2d 4h 1m`.
pub fn human_nanos(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        n if n < US => format!("{n}ns"),
        n if n < MS => format!("{:.1}µs", n as f64 / US as f64),
        n if n < S => format!("{:.1}ms", n as f64 / MS as f64),
        n if n < 60 * S => format!("{:.2}s", n as f64 / S as f64),
        n => human_seconds(n / S),
    }
}

/// A whole number of seconds, for people: `45s`, `2m 5s`, `3h 0m 12s`, `2d 4h 1m`.
pub fn human_seconds(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Writes `contents` to `path`, readable by its owner only (mode 0600). A file that already
/// exists is truncated and its mode set to 0600 before anything is written into it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let err = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::MetadataExt;

    fn sample() -> Value {
        json!({"status":"granted","capability":{"id":"cap_1","actions":["read","write"],
               "ttl":60,"metadata":{"purpose":"p: q"}},"processingTime":1200,"policyResult":null})
    }

    #[test]
    fn json_parses_back_to_the_same_value() {
        let text = render(Format::Json, &sample(), || unreachable!());
        assert!(text.ends_with("}\n"));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), sample());
    }

    #[test]
    fn yaml_parses_back_to_the_same_value() {
        let text = render(Format::Yaml, &sample(), || unreachable!());
        assert_eq!(crate::yaml::parse(&text).unwrap(), sample(), "{text}");
    }

    #[test]
    fn table_uses_the_table_renderer() {
        assert_eq!(render(Format::Table, &sample(), || "t\n".into()), "t\n");
    }

    #[test]
    fn a_denial_does_not_stutter() {
        assert_eq!(
            denied_line("denied: no rule allows \"read\""),
            "Denied: no rule allows \"read\""
        );
        assert_eq!(denied_line("Denied: x"), "Denied: x");
        assert_eq!(
            denied_line("the caller is locked out"),
            "Denied: the caller is locked out"
        );
        assert_eq!(denied_line("dénié"), "Denied: dénié");
    }

    #[test]
    fn key_values_align_and_trim() {
        let mut kv = KeyValues::new();
        kv.row("id", "cap_1")
            .row("resource", "secret:/x")
            .row("identity", "");
        kv.opt("absent", None::<&str>).opt("uses", Some(3));
        assert_eq!(
            kv.render(),
            "id:        cap_1\nresource:  secret:/x\nidentity:\nuses:      3\n"
        );
    }

    #[test]
    fn columns_align_with_a_header() {
        let rows = vec![
            vec!["cap_1".to_string(), "read".to_string()],
            vec![
                "cap_22222".to_string(),
                "x".to_string(),
                "ignored".to_string(),
            ],
            vec!["c".to_string()],
        ];
        assert_eq!(
            columns(&["ID", "TYPE"], &rows),
            "ID         TYPE\ncap_1      read\ncap_22222  x\nc\n"
        );
        assert_eq!(columns(&["ID", "TYPE"], &[]), "ID  TYPE\n");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_nanos(850), "850ns");
        assert_eq!(human_nanos(12_500), "12.5µs");
        assert_eq!(human_nanos(3_200_000), "3.2ms");
        assert_eq!(human_nanos(1_500_000_000), "1.50s");
        assert_eq!(human_nanos(125_000_000_000), "2m 5s");
        assert_eq!(human_seconds(3 * 3600 + 12), "3h 0m 12s");
        assert_eq!(human_seconds(2 * 86_400 + 4 * 3600 + 60), "2d 4h 1m");
        assert_eq!(human_seconds(0), "0s");
    }

    #[test]
    fn private_file_is_0600_even_when_it_existed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.json");
        write_private_file(&path, b"first, longer content").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);

        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"second").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
    }

    #[test]
    fn private_file_errors_name_the_path() {
        let e = write_private_file(Path::new("/nonexistent-dir/cap.json"), b"x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot write /nonexistent-dir/cap.json: "),
            "{e}"
        );
    }
}
