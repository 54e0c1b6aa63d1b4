//! `aether-vault` (installed as `vault`): the command-line client of the aether-vault agent.
//! Everything lives in [`aether_vault_agent::cli`]; this only parses, runs and maps the result
//! to an exit code.

use std::process::ExitCode;

use aether_vault_agent::cli::{self, Cli};
use clap::Parser;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(cli::report_parse_error(&e)),
    };
    match cli::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
