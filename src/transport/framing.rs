//! Splits the incoming byte stream into requests.
//!
//! Upstream reads a *stream of JSON values*: newline-delimited, merely concatenated, compact or
//! pretty-printed. This decoder finds where each top-level object ends by scanning bytes (strings
//! and escapes respected), without parsing, so that the limits apply before any allocation grows:
//!
//! - a value longer than `max_bytes` is [`FrameError::TooLarge`] as soon as the limit is crossed,
//!   however slowly the bytes arrive;
//! - nesting deeper than `max_depth` is [`FrameError::TooDeep`];
//! - anything but `{` at the start of a value is [`FrameError::Malformed`].
//!
//! Whitespace between values is skipped and never buffered. The frame is then handed to
//! serde_json, which checks the syntax and UTF-8 properly. Scanning resumes where it stopped, so
//! a request that arrives a byte at a time costs O(n), not O(n²).

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Why the byte stream cannot go on; each is answered with an error, then the connection closes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A request is larger than the limit.
    #[error("request exceeds the maximum size of {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A request nests deeper than the limit.
    #[error("request nests deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// The bytes are not a JSON object.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Reading the socket failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Decoder for a stream of concatenated JSON objects.
#[derive(Debug)]
pub struct JsonStreamDecoder {
    max_bytes: usize,
    max_depth: usize,
    /// Bytes of the current value already scanned.
    scanned: usize,
    /// Whether a value has started (its `{` seen).
    in_value: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// Default nesting limit; generous for any real request, small enough to keep serde_json's
/// recursion (limit 128) and our stack safe.
pub const DEFAULT_MAX_DEPTH: usize = 64;

impl JsonStreamDecoder {
    /// A decoder with a size limit and a nesting limit.
    pub fn new(max_bytes: usize, max_depth: usize) -> Self {
        JsonStreamDecoder {
            max_bytes,
            max_depth,
            scanned: 0,
            in_value: false,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Whether part of a request has been seen and the rest is awaited.
    pub fn in_progress(&self) -> bool {
        self.in_value
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.in_value = false;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Decoder for JsonStreamDecoder {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if !self.in_value {
            let skip = src.iter().take_while(|b| is_json_whitespace(**b)).count();
            src.advance(skip);
            match src.first() {
                None => return Ok(None),
                Some(b'{') => {
                    self.in_value = true;
                }
                Some(_) => {
                    return Err(FrameError::Malformed(
                        "expected a JSON object starting with '{'".to_string(),
                    ));
                }
            }
        }
        while self.scanned < src.len() {
            let b = src[self.scanned];
            self.scanned += 1;
            if self.scanned > self.max_bytes {
                return Err(FrameError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > self.max_depth {
                        return Err(FrameError::TooDeep {
                            limit: self.max_depth,
                        });
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        let frame = src.split_to(self.scanned).freeze();
                        self.reset();
                        return Ok(Some(frame));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if self.in_value => Err(FrameError::Malformed(
                "connection closed in the middle of a request".to_string(),
            )),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> (Vec<String>, Option<FrameError>) {
        let mut dec = JsonStreamDecoder::new(max, DEFAULT_MAX_DEPTH);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Feed one byte at a time: the worst case for resumable scanning.
        for b in input {
            buf.extend_from_slice(&[*b]);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(f)) => out.push(String::from_utf8(f.to_vec()).unwrap()),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        match dec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(String::from_utf8(f.to_vec()).unwrap()),
            Ok(None) => {}
            Err(e) => return (out, Some(e)),
        }
        (out, None)
    }

    #[test]
    fn newline_delimited_concatenated_and_pretty() {
        let input = b"{\"a\":1}\n{\"b\":2}{\"c\":\n  {\"d\": [1, {\"e\": \"}\"}]}\n}  \n";
        let (f, err) = frames(input, 1024);
        assert!(err.is_none());
        assert_eq!(
            f,
            vec![
                "{\"a\":1}",
                "{\"b\":2}",
                "{\"c\":\n  {\"d\": [1, {\"e\": \"}\"}]}\n}"
            ]
        );
    }

    #[test]
    fn braces_and_escaped_quotes_inside_strings_do_not_end_a_value() {
        let (f, err) = frames(br#"{"s":"a\"}{\\"}{"t":1}"#, 1024);
        assert!(err.is_none());
        assert_eq!(f, vec![r#"{"s":"a\"}{\\"}"#, r#"{"t":1}"#]);
    }

    #[test]
    fn too_large_is_detected_before_the_value_ends() {
        let mut input = b"{\"a\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200));
        let (f, err) = frames(&input, 100);
        assert!(f.is_empty());
        assert!(matches!(err, Some(FrameError::TooLarge { limit: 100 })));
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let v = format!("{{\"a\":\"{}\"}}", "x".repeat(92));
        assert_eq!(v.len(), 100);
        let (f, err) = frames(v.as_bytes(), 100);
        assert!(err.is_none());
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn non_object_values_are_malformed() {
        for input in [&b"[1,2]"[..], b"123", b"\"str\"", b"null", b"garbage{}"] {
            let (_, err) = frames(input, 100);
            assert!(matches!(err, Some(FrameError::Malformed(_))), "{input:?}");
        }
    }

    #[test]
    fn trailing_garbage_after_a_value_is_malformed_after_the_value() {
        let (f, err) = frames(b"{\"a\":1}xyz", 100);
        assert_eq!(f, vec!["{\"a\":1}"]);
        assert!(matches!(err, Some(FrameError::Malformed(_))));
    }

    #[test]
    fn eof_inside_a_value_is_malformed_but_eof_between_values_is_clean() {
        let (_, err) = frames(b"{\"a\":", 100);
        assert!(matches!(err, Some(FrameError::Malformed(_))));
        let (f, err) = frames(b"{}\n\n  ", 100);
        assert!(err.is_none());
        assert_eq!(f, vec!["{}"]);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let input = "{\"a\":".to_string() + &"[".repeat(100);
        let (_, err) = frames(input.as_bytes(), 10_000);
        assert!(matches!(
            err,
            Some(FrameError::TooDeep {
                limit: DEFAULT_MAX_DEPTH
            })
        ));
    }

    #[test]
    fn whitespace_between_values_is_not_buffered() {
        let mut dec = JsonStreamDecoder::new(10, DEFAULT_MAX_DEPTH);
        let mut buf = BytesMut::from(&b"                                              "[..]);
        assert!(dec.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
    }
}
