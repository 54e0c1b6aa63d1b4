//! Operational logs through tracing: to journald when the agent runs under systemd (or has no
//! terminal and the journal is there), else to stderr. `RUST_LOG` overrides the configured level.
//! These logs are for operators; the audit log is the record of decisions.
//!
//! On stderr, one event is one line: whatever text an event carries, every control character
//! in it but the line's final newline is escaped on the way out ([`OneLine`]), so that no text
//! a client chose can start a line that looks like the agent's (the events that carry client
//! text escape it themselves too: [`crate::oplog::clean`]; journald keeps fields apart by its
//! own protocol).
//!
//! Logs are plain text: no colour codes, on a terminal or not (so `NO_COLOR` is always
//! honoured). The journal gets each event's fields as fields of their own, and a `MESSAGE`
//! with the same details the stderr line has ([`journal`]).

pub mod journal;

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::daemon::LogTarget;

use journal::SOCKET as JOURNAL_SOCKET;

/// Whether `Auto` picks journald here.
fn journald_wanted(target: LogTarget) -> bool {
    match target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => {
            std::env::var_os("JOURNAL_STREAM").is_some()
                || (!std::io::stderr().is_terminal()
                    && std::path::Path::new(JOURNAL_SOCKET).exists())
        }
    }
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(level: &str, target: LogTarget) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // The HTTP and TLS crates log request headers at debug level, and a Vault token travels in
    // a header: they never log below warn, whatever the configured level or RUST_LOG says.
    for quiet in [
        "ureq=warn",
        "ureq_proto=warn",
        "rustls=warn",
        "hyper=warn",
        "h2=warn",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    // The audit chain's seals (docs/durability.md) are evidence, not chatter: they are logged
    // at info level whatever the configured level.
    if let Ok(d) = "aether_vault_seal=info".parse() {
        filter = filter.add_directive(d);
    }
    // So are credential deliveries and refusals: a refusal is why a unit did not start.
    if let Ok(d) = format!("{}=info", crate::oplog::CREDENTIALS_TARGET).parse() {
        filter = filter.add_directive(d);
    }
    if journald_wanted(target) {
        match journal::JournalLayer::new("aether-vault-agent") {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(layer)
                    .try_init();
                return;
            }
            Err(e) => eprintln!("journald is not available ({e}); logging to stderr"),
        }
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| OneLine(std::io::stderr()))
                .with_ansi(false)
                .with_target(false),
        )
        .try_init();
}

/// A writer that passes each formatted event on with its control characters escaped, except
/// a newline that ends the write (the fmt layer writes one whole event, newline last, per
/// write).
pub struct OneLine<W: Write>(pub W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !body.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            if b.is_ascii_control() && b != b'\t' {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            } else {
                out.push(b);
            }
        }
        if body.len() < buf.len() {
            out.push(b'\n');
        }
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_is_one_line() {
        let mut w = OneLine(Vec::new());
        w.write_all(b"INFO decision denied secret:/a\nINFO forged\x1b[0m\ttab\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "INFO decision denied secret:/a\\x0aINFO forged\\x1b[0m\ttab\n"
        );
        let mut w = OneLine(Vec::new());
        w.write_all("plain é line\n".as_bytes()).unwrap();
        assert_eq!(w.0, "plain é line\n".as_bytes());
    }
}
