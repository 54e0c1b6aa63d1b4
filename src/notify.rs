//! Telling systemd how we are: `READY=1`, `RELOADING=1` (with `MONOTONIC_USEC`), `STOPPING=1`,
//! `STATUS=…`. Every call is a no-op without `NOTIFY_SOCKET`, and a failure to notify is only
//! logged: it must never stop the agent from serving.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// The agent is serving.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
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

/// A one-line status.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}
