//! The journald layer: each event becomes one journal entry in the native protocol
//! (<https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>), with `PRIORITY` from the level, `TARGET`,
//! `CODE_FILE`, `CODE_LINE`, `SYSLOG_IDENTIFIER`, and every field of the event under its own
//! upper-cased name (`av_event` becomes `AV_EVENT`, `files` `FILES`).
//!
//! `MESSAGE` carries what the stderr line carries: the event's message followed by its
//! descriptive fields as `name=value` (`policy set in force generation=1 files=2 rules=5`),
//! so that `journalctl -u aether-vault-agent` shows the file names and counts, not just the
//! words. The identifying fields (`message_id` and the `av_*` fields, whose values the message
//! of those events already states) stay out of `MESSAGE`. Control characters in `MESSAGE` are
//! escaped as on stderr.
//!
//! An entry too large for one datagram goes through a sealed memfd, as the protocol allows.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Where journald listens.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// A tracing layer that writes to journald.
pub struct JournalLayer {
    socket: UnixDatagram,
    identifier: String,
}

impl JournalLayer {
    /// Connects to journald's socket (fails when there is none).
    pub fn new(identifier: &str) -> io::Result<Self> {
        let layer = JournalLayer {
            socket: UnixDatagram::unbound()?,
            identifier: identifier.to_string(),
        };
        // journald discards an empty datagram: this only checks that it listens.
        layer.send(&[])?;
        Ok(layer)
    }

    /// Sends one entry (to the path each time, so that a restarted journald gets it).
    fn send(&self, payload: &[u8]) -> io::Result<()> {
        match self.socket.send_to(payload, SOCKET) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => self.send_large(payload),
            Err(e) => Err(e),
        }
    }

    /// Sends `payload` through a sealed memfd (for entries past the datagram limit).
    fn send_large(&self, payload: &[u8]) -> io::Result<()> {
        use nix::fcntl::{FcntlArg, SealFlag, fcntl};
        use nix::sys::memfd::{MFdFlags, memfd_create};
        use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
        let fd = memfd_create(
            c"aether-vault-journal",
            MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(payload)?;
        // Not `SealFlag::all()`: it includes F_SEAL_FUTURE_WRITE (Linux 5.1), which older kernels
        // (RHEL 8's 4.18) refuse, and every large entry would be lost there.
        fcntl(
            &file,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SEAL
                    | SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE,
            ),
        )?;
        let fds = [file.as_raw_fd()];
        let addr = UnixAddr::new(SOCKET)?;
        sendmsg(
            self.socket.as_raw_fd(),
            &[],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )?;
        Ok(())
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let payload = entry(event, &self.identifier);
        // Nothing can be done about a lost log line here: journald may be restarting.
        let _ = self.send(&payload);
    }
}

/// The journald priority of a level (as tracing-journald maps them: info is a notice).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => b'3',
        Level::WARN => b'4',
        Level::INFO => b'5',
        Level::DEBUG => b'6',
        Level::TRACE => b'7',
    }
}

/// The native-protocol payload of one event.
pub fn entry(event: &Event<'_>, identifier: &str) -> Vec<u8> {
    let meta = event.metadata();
    let mut buf = Vec::with_capacity(512);
    put(&mut buf, "PRIORITY", &[priority(meta.level())]);
    put(&mut buf, "TARGET", meta.target().as_bytes());
    if let Some(file) = meta.file() {
        put(&mut buf, "CODE_FILE", file.as_bytes());
    }
    if let Some(line) = meta.line() {
        put(&mut buf, "CODE_LINE", line.to_string().as_bytes());
    }
    put(&mut buf, "SYSLOG_IDENTIFIER", identifier.as_bytes());
    let mut visitor = Fields {
        buf: &mut buf,
        message: String::new(),
        details: String::new(),
    };
    event.record(&mut visitor);
    let Fields {
        message, details, ..
    } = visitor;
    put(
        &mut buf,
        "MESSAGE",
        escape(&(message + &details)).as_bytes(),
    );
    buf
}

/// Whether a field is named in `MESSAGE` (see the module header).
fn described(name: &str) -> bool {
    name != "message_id" && !name.starts_with("av_")
}

/// Collects the message and the `name=value` details, and writes every other field out.
struct Fields<'a> {
    buf: &'a mut Vec<u8>,
    message: String,
    details: String,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: &str, quoted: bool) {
        let name = field.name();
        if name == "message" {
            self.message.push_str(value);
            return;
        }
        put(self.buf, &journal_name(name), value.as_bytes());
        if described(name) {
            if quoted {
                let _ = write!(self.details, " {name}={value:?}");
            } else {
                let _ = write!(self.details, " {name}={value}");
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As the stderr formatter does: a text field is quoted, a displayed value is not.
        self.field(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format!("{value:?}"), false);
    }
}

/// A field name as journald takes it: upper case, `[A-Z0-9_]`, no leading underscore (those
/// are journald's own, trusted fields).
pub fn journal_name(name: &str) -> String {
    name.chars()
        .map(|c| if c == '.' { '_' } else { c })
        .skip_while(|c| *c == '_')
        .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `s` with control characters but tab written as `\xNN` (as [`super::OneLine`] does on stderr).
fn escape(s: &str) -> String {
    if !s.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_control() && c != '\t' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Appends one field, length-encoded (safe for any value).
fn put(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Parses a native-protocol payload (length-encoded fields only, as [`put`] writes).
    fn parse(mut p: &[u8]) -> HashMap<String, String> {
        let mut out = HashMap::new();
        while !p.is_empty() {
            let nl = p.iter().position(|b| *b == b'\n').unwrap();
            let name = String::from_utf8(p[..nl].to_vec()).unwrap();
            let len = u64::from_le_bytes(p[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = String::from_utf8(p[nl + 9..nl + 9 + len].to_vec()).unwrap();
            assert_eq!(p[nl + 9 + len], b'\n');
            out.insert(name, value);
            p = &p[nl + 10 + len..];
        }
        out
    }

    struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0
                .lock()
                .unwrap()
                .push(entry(event, "aether-vault-agent"));
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<HashMap<String, String>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let seen = seen.lock().unwrap();
        seen.iter().map(|p| parse(p)).collect()
    }

    #[test]
    fn the_message_carries_the_details_and_the_fields_stay_apart() {
        let entries = capture(|| {
            let path = std::path::Path::new("/etc/aether-vault/policies/a.yaml");
            tracing::info!(
                generation = 3u64,
                files = 2usize,
                rules = 7usize,
                file = %path.display(),
                reason = "bad\nline",
                "policy set in force"
            );
        });
        let e = &entries[0];
        assert_eq!(
            e["MESSAGE"],
            "policy set in force generation=3 files=2 rules=7 \
             file=/etc/aether-vault/policies/a.yaml reason=\"bad\\nline\""
        );
        assert_eq!(e["FILES"], "2");
        assert_eq!(e["RULES"], "7");
        assert_eq!(e["FILE"], "/etc/aether-vault/policies/a.yaml");
        assert_eq!(e["REASON"], "bad\nline", "fields keep their exact value");
        assert_eq!(e["PRIORITY"], "5");
        assert_eq!(e["SYSLOG_IDENTIFIER"], "aether-vault-agent");
    }

    #[test]
    fn identifying_fields_stay_out_of_the_message_and_control_characters_are_escaped() {
        let entries = capture(|| {
            tracing::debug!(
                message_id = "ee6fb2ffd9ef443284590a7d0c167059",
                av_event = "capability_request",
                av_uid = 0u32,
                "capability_request granted secret:/a\x1b[31m"
            );
        });
        let e = &entries[0];
        assert_eq!(
            e["MESSAGE"],
            "capability_request granted secret:/a\\x1b[31m"
        );
        assert_eq!(e["MESSAGE_ID"], "ee6fb2ffd9ef443284590a7d0c167059");
        assert_eq!(e["AV_EVENT"], "capability_request");
        assert_eq!(e["AV_UID"], "0");
        assert_eq!(e["PRIORITY"], "6");
    }

    #[test]
    fn field_names_are_made_journald_safe() {
        assert_eq!(journal_name("av_seal_log"), "AV_SEAL_LOG");
        assert_eq!(journal_name("_pid"), "PID");
        assert_eq!(journal_name("a.b-c"), "A_BC");
    }
}
