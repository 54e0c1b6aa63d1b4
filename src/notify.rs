//! Telling systemd how we are: `READY=1`, `RELOADING=1` (with `MONOTONIC_USEC`), `STOPPING=1`,
//! `STATUS=…`, `WATCHDOG=1`. Every call is a no-op without `NOTIFY_SOCKET`, and a failure to
//! notify is only logged: it must never stop the agent from serving.
//!
//! A status may carry text from outside (a policy file's name in a load error), and the
//! notification protocol is one `KEY=value` per line: [`one_line`] makes every status a single
//! line of printable characters, so it cannot add a `READY=1` or `MAINPID=` of its own.

use std::time::Duration;

use sd_notify::NotifyState;

/// The longest status sent, in characters (`systemctl status` shows one line).
pub const MAX_STATUS_CHARS: usize = 400;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// `text` as one line of at most `max_chars` characters: control characters (newlines
/// included) become spaces, runs of whitespace one space, and a cut is marked with `…`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    let mut space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == max_chars {
            // Replace the last character with the mark, so the result stays within the limit.
            out.pop();
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The agent is serving.
pub fn ready(status: &str) {
    let status = one_line(status, MAX_STATUS_CHARS);
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// A reload is done (systemd's `reload` returns); the status follows separately.
pub fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// A reload started (systemd waits for the next `READY=1`).
pub fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The agent is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The agent is stopping with a reason (`stopping: idle for 30 s`).
pub fn stopping_because(why: &str) {
    let status = one_line(&format!("stopping: {why}"), MAX_STATUS_CHARS);
    send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
}

/// A one-line status.
pub fn status(status: &str) {
    let status = one_line(status, MAX_STATUS_CHARS);
    send(&[NotifyState::Status(&status)]);
}

/// Every component answered: keep the watchdog from firing.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The watchdog timeout systemd asks us to honour, read from `WATCHDOG_USEC` and
/// `WATCHDOG_PID`; `None` when there is no watchdog for this process.
pub fn watchdog_timeout() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_timeout_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The rule of `sd_watchdog_enabled(3)`: `WATCHDOG_USEC` must be a number of microseconds
/// other than 0 and infinity, and `WATCHDOG_PID`, when set, must be `own_pid` (else the
/// watchdog belongs to another process, e.g. the shell that started us). Anything unreadable
/// means no watchdog. (The sd-notify crate's `watchdog_enabled` also requires `WATCHDOG_PID`
/// to be set, which libsystemd does not.)
pub fn watchdog_timeout_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 || usec == u64::MAX {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_one_printable_line() {
        assert_eq!(
            one_line("ok\nREADY=1\r\nMAINPID=1", 100),
            "ok READY=1 MAINPID=1"
        );
        assert_eq!(one_line("  a \t\u{7f} b  ", 100), "a b");
        assert_eq!(one_line("", 10), "");
    }

    #[test]
    fn a_long_status_is_cut_on_a_character_with_a_mark() {
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcde…");
        let cut = one_line(&"é".repeat(50), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn the_watchdog_follows_sd_watchdog_enabled() {
        let us = Some;
        assert_eq!(
            watchdog_timeout_from(us("200000"), None, 42),
            Some(Duration::from_millis(200)),
            "no WATCHDOG_PID: ours"
        );
        assert_eq!(
            watchdog_timeout_from(us("200000"), Some("42"), 42),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            watchdog_timeout_from(us("200000"), Some("41"), 42),
            None,
            "another process's watchdog"
        );
        assert_eq!(watchdog_timeout_from(None, Some("42"), 42), None);
        assert_eq!(watchdog_timeout_from(us("0"), None, 42), None);
        let infinity = u64::MAX.to_string();
        assert_eq!(watchdog_timeout_from(us(&infinity), None, 42), None);
        assert_eq!(watchdog_timeout_from(us("soon"), None, 42), None);
        assert_eq!(watchdog_timeout_from(us("-5"), None, 42), None);
        assert_eq!(watchdog_timeout_from(us("100"), Some("x"), 42), None);
    }
}
