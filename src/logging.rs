//! Operational logs through tracing: to journald when the agent runs under systemd (or has no
//! terminal and the journal is there), else to stderr. `RUST_LOG` overrides the configured level.
//! These logs are for operators; the audit log is the record of decisions.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::daemon::LogTarget;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

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
    if journald_wanted(target) {
        match tracing_journald::layer() {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(
                        layer
                            .with_syslog_identifier("aether-vault-agent".to_string())
                            // Fields keep their own names: av_event becomes AV_EVENT.
                            .with_field_prefix(None),
                    )
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
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .try_init();
}
