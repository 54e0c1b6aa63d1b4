//! `aether-vault-agent`: the daemon. Runs in the foreground until SIGTERM, SIGINT or
//! `agent_stop`; SIGHUP reloads policies. See aether-vault-agent(8).

use std::path::PathBuf;
use std::process::ExitCode;

use aether_vault_agent::config::{Mode, Overrides};
use aether_vault_agent::daemon::{self, DaemonOptions, LogTarget};
use aether_vault_agent::transport::socket;
use clap::{CommandFactory, Parser};

/// Local access-control agent: kernel-verified identity, policy, signed capabilities, audit.
#[derive(Debug, Parser)]
#[command(name = "aether-vault-agent", version)]
struct Args {
    /// Configuration file (default: VAULT_AGENT_CONFIG_FILE, else /etc/aether-vault/agent.yaml
    /// for root, not in development mode, or ~/.aether-vault/agent.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Operating mode.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Socket to bind when not socket-activated.
    #[arg(long, value_name = "PATH")]
    socket_path: Option<PathBuf>,
    /// systemd credentials socket to bind when systemd passes none named `credentials`; an
    /// empty value binds none.
    #[arg(long, value_name = "PATH")]
    credentials_socket: Option<String>,
    /// Policy directory.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    /// State directory (signing key).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Audit log file.
    #[arg(long, value_name = "FILE")]
    audit_file: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Where operational logs go.
    #[arg(long, value_enum, default_value_t = LogTarget::Auto)]
    log_target: LogTarget,
    /// A label for where the agent runs (`region`), e.g. us-west-2: shown in the status and
    /// written into every audit record; decides nothing.
    #[arg(long, value_name = "REGION", value_parser = aether_vault_agent::cli::args::parse_region)]
    region: Option<String>,
}

fn main() -> ExitCode {
    // Socket activation must be read (and its variables unset) before any thread exists.
    let activated = match socket::take_activated() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `--enable-ha` (upstream's examples): the reason, as a usage error (exit 2).
    if aether_vault_agent::cli::args::asks_for_ha(std::env::args_os().skip(1)) {
        aether_vault_agent::cli::args::ha_refusal(Args::command()).exit();
    }
    let args = Args::parse();
    let options = DaemonOptions {
        config_file: args.config,
        overrides: Overrides {
            mode: args.mode,
            socket_path: args.socket_path,
            log_level: args.log_level,
            state_dir: args.state_dir,
            policy_dir: args.policy_dir,
            audit_file: args.audit_file,
            credentials_socket: args.credentials_socket.map(PathBuf::from),
            region: args.region,
        },
        log_target: args.log_target,
    };
    match daemon::run(options, activated) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
