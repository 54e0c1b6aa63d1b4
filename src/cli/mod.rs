//! The `aether-vault` command line (installed as `vault`): the command tree ([`args`]), the
//! commands ([`agent`], [`capability`], [`policy`], [`credential`], [`audit`], [`secret`],
//! [`completions`], [`doctor`]), output formats ([`output`]), TTLs ([`ttl`]) and how a command ends
//! ([`error`]).
//!
//! Only the requested output goes to stdout; errors go to stderr as `Error: <message>` (with
//! `--format json|yaml` also to stdout as `{"error": …, "code": …}`) and exit 1; a "no" from
//! the agent (denied, invalid) exits 2.

pub mod agent;
pub mod args;
pub mod audit;
pub mod capability;
pub mod capability_table;
pub mod completions;
pub mod context;
pub mod credential;
pub mod doctor;
pub mod error;
pub mod health;
pub mod output;
pub mod policy;
pub mod secret;
pub mod ttl;

#[cfg(test)]
mod tests;

use std::io::Write;

pub use args::{Cli, report_parse_error};
pub use error::{CliError, Outcome};
pub use output::Format;

use args::{AgentCommand, Command};
use context::Context;

/// Runs a parsed command line against the process's stdout and stderr.
pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    // `agent start` must take the activation sockets before anything else happens.
    if let Command::Agent(AgentCommand::Start(args)) = &cli.command {
        return agent::start(cli.config.clone(), cli.socket_path.clone(), args);
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    run_with(cli, &mut out, &mut err)
}

/// Runs a parsed command line, writing its output to `out` and notes to `err`.
pub fn run_with(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    let mut ctx = Context {
        format: cli.format,
        verbose: cli.verbose,
        socket_flag: cli.socket_path,
        config: cli.config,
        out,
        err,
    };
    match &cli.command {
        Command::Agent(command) => agent::run(&mut ctx, command),
        Command::Capability(command) => capability::run(&mut ctx, command),
        Command::Policy(command) => policy::run(&mut ctx, command),
        Command::Credential(command) => credential::run(&mut ctx, command),
        Command::Audit(command) => audit::run(&mut ctx, command),
        Command::Secret(command) => secret::run(&mut ctx, command),
        Command::Exec(args) => secret::exec(&mut ctx, args),
        Command::Completions(args) => completions::run(&mut ctx, args),
        Command::Doctor(args) => doctor::run(&mut ctx, args),
    }
}
