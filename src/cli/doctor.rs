//! `aether-vault doctor`: loads the configuration as `agent start` would (same file, flags and
//! environment), asks the running agent for its status if it answers, and runs the checks of
//! [`crate::doctor`]. Prints one line per finding (or `--format json|yaml`); exits 0 when no
//! finding is a problem (warnings alone included), 1 when one is.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::args::DoctorArgs;
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format};
use crate::client::Client;
use crate::config::{self, AgentConfig, DefaultPaths, Mode, PathDefaults};
use crate::doctor::{self, Finding, Report, socket, unit};
use crate::protocol::RequestType;
use crate::protocol::types::StatusResponse;

/// How long doctor waits for each answer of the agent.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The user the packaged service runs as (`User=` in aether-vault-agent.service).
pub const PACKAGED_USER: &str = "aether-vault";

/// Runs `doctor`.
pub fn run(ctx: &mut Context<'_>, args: &DoctorArgs) -> Result<Outcome, CliError> {
    let overrides = args.flags.overrides(ctx.socket_flag.clone());
    let mut report = Report::default();
    match config::load(
        ctx.config.as_deref(),
        &overrides,
        &PathDefaults::for_current_user(),
    ) {
        Err(e) => report.findings.push(Finding::problem(
            "config",
            e.to_string(),
            "correct the configuration (aether-vault agent config --validate checks it)",
        )),
        Ok(loaded) => check_all(&mut report, &loaded.config, loaded.file.as_deref(), args)?,
    }
    finish(ctx, report)
}

/// Every check, in order, with the configuration the agent would run with.
fn check_all(
    report: &mut Report,
    config: &AgentConfig,
    file: Option<&Path>,
    args: &DoctorArgs,
) -> Result<(), CliError> {
    let f = &mut report.findings;
    f.push(Finding::ok(
        "config",
        match file {
            Some(p) => format!("{}: valid, {} mode", p.display(), config.mode),
            None => format!(
                "no configuration file: defaults, environment and flags, {} mode",
                config.mode
            ),
        },
    ));
    let state = socket::probe(&config.socket_path);
    let status = matches!(state, socket::State::Listening { .. })
        .then(|| ask_status(&config.socket_path))
        .flatten();
    let agent_uid = agent_uid(args.agent_user.as_deref(), status.as_ref(), config)?;
    f.extend(socket::findings(&config.socket_path, &state, agent_uid));
    if let Some(s) = &status {
        f.extend(socket::agent_status(s));
    }
    f.extend(unit::units(unit::systemd_running(), &unit::systemctl));
    f.extend(doctor::files::agent_files(config, file, agent_uid));
    f.extend(doctor::files::keys(config));
    let (policy, loaded) =
        doctor::policy::policy_dir(&config.policy_engine.directory, config.mode, agent_uid);
    f.extend(policy);
    if let Some(loaded) = &loaded {
        f.extend(doctor::policy::unknown_names(
            loaded,
            &doctor::policy::host_has,
        ));
    }
    f.extend(doctor::audit::audit_log(config));
    f.push(doctor::secrets::backend(config, agent_uid));
    Ok(())
}

/// The running agent's status: the detailed one when this user may have it, else the public.
fn ask_status(path: &Path) -> Option<StatusResponse> {
    for kind in [RequestType::AgentStatus, RequestType::StatusRequest] {
        let Ok(mut client) = Client::connect(path, STATUS_TIMEOUT) else {
            return None;
        };
        if let Ok((_, raw)) = client.call(kind.as_str(), Value::Null) {
            if let Ok(s) = serde_json::from_value::<StatusResponse>(raw) {
                return Some(s);
            }
        }
    }
    None
}

/// Whose files these are: `--agent-user`; else the running agent's uid (from its detailed
/// status, or the kernel's word on who listens on the socket, unless that is systemd); else,
/// with the system paths, the packaged service's user when it exists; else this process's uid.
fn agent_uid(
    flag: Option<&str>,
    status: Option<&StatusResponse>,
    config: &AgentConfig,
) -> Result<u32, CliError> {
    if let Some(name) = flag {
        if let Ok(uid) = name.parse::<u32>() {
            return Ok(uid);
        }
        return match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(u.uid.as_raw()),
            _ => Err(CliError::Input(format!(
                "--agent-user: no user {name:?} on this host"
            ))),
        };
    }
    if let Some(d) = status.and_then(|s| s.detail.as_ref()) {
        return Ok(d.uid);
    }
    if let Some(uid) = status.and_then(|_| listener_uid(&config.socket_path)) {
        return Ok(uid);
    }
    let euid = nix::unistd::geteuid();
    if config.mode != Mode::Development && config.state_dir == DefaultPaths::system().state_dir {
        if let Ok(Some(u)) = nix::unistd::User::from_name(PACKAGED_USER) {
            return Ok(u.uid.as_raw());
        }
    }
    Ok(euid.as_raw())
}

/// The uid of the process that listens on `path`, unless it is systemd (pid 1), which
/// listens for the packaged agent as root.
fn listener_uid(path: &Path) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt};
    let stream = std::os::unix::net::UnixStream::connect(path).ok()?;
    let cred = getsockopt(&stream, sockopt::PeerCredentials).ok()?;
    (cred.pid() != 1).then_some(cred.uid())
}

/// Prints the report; a problem makes the command fail (exit 1) after printing it.
fn finish(ctx: &mut Context<'_>, report: Report) -> Result<Outcome, CliError> {
    let problems = report.count(doctor::Status::Problem);
    let error = || {
        CliError::Failed(format!(
            "doctor found {problems} problem{}",
            if problems == 1 { "" } else { "s" }
        ))
    };
    match ctx.format {
        Format::Table => {
            ctx.print(&report.table())?;
            if problems > 0 {
                return Err(error());
            }
        }
        format if problems > 0 => {
            // The report is the one document on stdout, with `error` and `code` added.
            let _ = format;
            return Err(CliError::WithReport {
                error: Box::new(error()),
                report: report.to_json(),
            });
        }
        format => ctx.print(&output::render(format, &report.to_json(), String::new))?,
    }
    Ok(Outcome::Success)
}
