//! `aether-vault` (installed as `vault`): the command-line client of the aether-vault agent.
//! Everything lives in [`aether_vault_agent::cli`]; this only parses, runs and maps the result
//! to an exit code.

use std::process::ExitCode;

use aether_vault_agent::cli::{self, Cli};
use clap::Parser;

fn main() -> ExitCode {
    if cli::args::asks_for_ha(std::env::args_os().skip(1)) {
        let e = cli::args::ha_refusal(<Cli as clap::CommandFactory>::command());
        return ExitCode::from(cli::report_parse_error(&e));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(cli::report_parse_error(&e)),
    };
    let format = cli.format;
    let result = cli::run(cli);
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    ExitCode::from(cli::error::report(
        format,
        result,
        &mut stdout.lock(),
        &mut stderr.lock(),
    ))
}
