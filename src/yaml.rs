//! YAML in and out, through `serde_json::Value`, with the pure-Rust yaml-rust2 parser.
//!
//! figment's own `yaml` feature embeds libyaml (a Debian lintian `embedded-library` error), so
//! the configuration loader parses YAML here and feeds figment the result; the CLI's
//! `--format yaml` emits through the same crate.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// A YAML document that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses one YAML document into JSON data. An empty document is `null`; more than one
/// document is an error.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => to_json(&docs[0]),
        _ => Err(YamlError {
            line: 1,
            column: 1,
            message: "expected one YAML document".into(),
        }),
    }
}

/// Where each mapping key and sequence item starts, by path (`rules/0/effect`), as 1-based
/// (line, column). Used to put a position on errors found after parsing.
pub fn positions(text: &str) -> HashMap<String, (usize, usize)> {
    walk(text).0
}

/// The text of each plain (unquoted) scalar value, by path, exactly as written: for values
/// whose YAML typing loses what the author meant (`0o644` is read as the integer 420).
pub fn plain_scalars(text: &str) -> HashMap<String, String> {
    walk(text).1
}

type Walked = (HashMap<String, (usize, usize)>, HashMap<String, String>);

fn walk(text: &str) -> Walked {
    enum Frame {
        Map { key: Option<String> },
        Seq { index: usize },
    }
    struct Recorder {
        stack: Vec<Frame>,
        path: Vec<String>,
        out: HashMap<String, (usize, usize)>,
        plain: HashMap<String, String>,
    }
    impl Recorder {
        /// A value starts here: returns whether it was a mapping key.
        fn value_at(&mut self, mark: Marker, scalar: Option<&str>) -> bool {
            let at = (mark.line(), mark.col() + 1);
            match self.stack.last_mut() {
                Some(Frame::Map { key }) if key.is_none() => {
                    let k = scalar.unwrap_or_default().to_string();
                    let mut p = self.path.clone();
                    p.push(k.clone());
                    self.out.insert(p.join("/"), at);
                    *key = Some(k);
                    true
                }
                Some(Frame::Map { key }) => {
                    let k = key.take().unwrap_or_default();
                    self.path.push(k);
                    false
                }
                Some(Frame::Seq { index }) => {
                    let i = *index;
                    *index += 1;
                    self.path.push(i.to_string());
                    self.out.insert(self.path.join("/"), at);
                    false
                }
                None => {
                    self.path.push(String::new());
                    false
                }
            }
        }
    }
    impl MarkedEventReceiver for Recorder {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            match ev {
                // A scalar value (not a key) ends where it starts: leave its path at once.
                Event::Scalar(v, style, ..) if !self.value_at(mark, Some(&v)) => {
                    if style == yaml_rust2::scanner::TScalarStyle::Plain {
                        let key = self.path.join("/").trim_start_matches('/').to_string();
                        self.plain.insert(key, v);
                    }
                    self.path.pop();
                }
                Event::Alias(_) if !self.value_at(mark, None) => {
                    self.path.pop();
                }
                Event::MappingStart(..) => {
                    self.value_at(mark, None);
                    self.stack.push(Frame::Map { key: None });
                }
                Event::SequenceStart(..) => {
                    self.value_at(mark, None);
                    self.stack.push(Frame::Seq { index: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.stack.pop();
                    self.path.pop();
                }
                _ => {}
            }
        }
    }
    let mut rec = Recorder {
        stack: Vec::new(),
        path: Vec::new(),
        out: HashMap::new(),
        plain: HashMap::new(),
    };
    let _ = Parser::new_from_str(text).load(&mut rec, false);
    let positions = rec
        .out
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches('/').to_string(), v))
        .collect();
    (positions, rec.plain)
}

fn to_json(y: &Yaml) -> Result<Value, YamlError> {
    let bad = |message: String| YamlError {
        line: 0,
        column: 0,
        message,
    };
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(s) => {
            let f: f64 = s.parse().map_err(|_| bad(format!("invalid number {s}")))?;
            Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| bad(format!("invalid number {s}")))?
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(bad(format!("unsupported mapping key {other:?}"))),
                };
                if map.insert(key.clone(), to_json(v)?).is_some() {
                    return Err(bad(format!("duplicate key {key}")));
                }
            }
            Value::Object(map)
        }
        Yaml::Alias(_) => return Err(bad("YAML aliases are not supported".into())),
        Yaml::BadValue => return Err(bad("invalid YAML value".into())),
    })
}

fn from_json(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(from_json).collect()),
        Value::Object(map) => Yaml::Hash(
            map.iter()
                .map(|(k, v)| (Yaml::String(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}

/// Emits JSON data as a YAML document (without the leading `---`), ending in a newline.
///
/// The block style of yaml-rust2's emitter is what people read, but it leaves some strings
/// unquoted that read back as something else (`0o17` as 15, `++2` as 2) and writes keys over
/// 1024 characters as simple keys, which YAML forbids. So the output is read back, and when it
/// does not give the same data the document is written in flow style instead: JSON's scalars
/// (every string double-quoted) with explicit `?` keys, which any YAML 1.2 reader reads back.
pub fn to_string(v: &Value) -> String {
    let block = block_style(v);
    if parse(&block).is_ok_and(|back| back == *v) {
        return block;
    }
    let mut flow = String::new();
    flow_style(v, &mut flow);
    flow.push('\n');
    flow
}

/// Flow-style YAML: JSON scalars, `[...]` sequences, `{? key: value}` mappings.
fn flow_style(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow_style(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str("? ");
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(" : ");
                flow_style(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// yaml-rust2's block style.
fn block_style(v: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    // Emitting into a String cannot fail for plain data.
    let _ = emitter.dump(&from_json(v));
    let body = out
        .strip_prefix("---\n")
        .or_else(|| out.strip_prefix("---"))
        .unwrap_or(&out);
    let mut body = body.trim_start_matches(' ').to_string();
    body.push('\n');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v = json!({"mode":"standard","ipc":{"max_connections":100,"admin_group":null},
                       "list":["a","b: c","0666","true"],"f":1.5,"t":true});
        let text = to_string(&v);
        assert_eq!(parse(&text).unwrap(), v, "{text}");
    }

    #[test]
    fn strings_that_look_like_numbers_and_long_keys_read_back() {
        // Found by fuzz/ (policy_parse): each read back as something else, or not at all.
        let long = "k".repeat(1500);
        for v in [
            json!({"actions":["0o4"],"id":"p3"}),
            json!({"value":"0o17"}),
            json!(["++2", "+1", "0x1F", ".inf", "~", "null", "yes", "-.5e3"]),
            json!({ long.clone(): {"nested": [1, "0o7", {long.clone(): null}]} }),
            json!("0o17"),
        ] {
            let text = to_string(&v);
            assert_eq!(parse(&text).unwrap(), v, "{text}");
        }
        // Ordinary data keeps the block style people read.
        assert_eq!(to_string(&json!({"a":"b"})), "a: b\n");
    }

    #[test]
    fn errors_carry_a_position() {
        let e = parse("mode: standard\nipc:\n  - a\n  b: c\n").unwrap_err();
        assert!(e.line >= 3, "{e}");
    }

    #[test]
    fn positions_of_keys_and_items() {
        let text = "id: p\nrules:\n  - id: r\n    efect: allow\n  - id: s\n    nested: {a: 1}\n";
        let p = positions(text);
        assert_eq!(p["id"], (1, 1));
        assert_eq!(p["rules"], (2, 1));
        assert_eq!(p["rules/0/efect"], (4, 5));
        assert_eq!(p["rules/1"].0, 5);
        assert_eq!(p["rules/1/nested/a"].0, 6);
    }

    #[test]
    fn plain_scalars_keep_their_text() {
        let p = plain_scalars("ipc:\n  socket_mode: 0o644\n  quoted: \"0o1\"\nlist: [a, 'b']\n");
        assert_eq!(p["ipc/socket_mode"], "0o644");
        assert!(!p.contains_key("ipc/quoted"));
        assert_eq!(p["list/0"], "a");
        assert!(!p.contains_key("list/1"));
    }

    #[test]
    fn empty_is_null_and_duplicate_keys_are_refused() {
        assert_eq!(parse("").unwrap(), Value::Null);
        assert!(parse("a: 1\na: 2\n").is_err());
    }
}
