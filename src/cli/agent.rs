//! `agent start|stop|status|reload|config` (`health` and `metrics` are in [`super::health`]): running the agent in the foreground, managing a
//! running one over its socket, and showing or checking the configuration locally.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt};
use serde_json::{Value, json};

use super::args::{AgentCommand, ConfigArgs, StartArgs};
use super::context::Context;
use super::error::{CliError, Outcome};
use super::output::{self, Format, KeyValues, human_nanos, human_seconds};
use crate::client::ClientError;
use crate::config::{self, PathDefaults};
use crate::daemon::{self, DaemonOptions};
use crate::protocol::types::{ConfigResponse, ReloadResponse, StatusResponse, StopResponse};
use crate::protocol::{ErrorCode, RequestType};
use crate::secrets::CacheStats;

/// How long `agent stop` waits for the agent to go away.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `agent stop` looks.
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs an `agent` subcommand other than `start` (see [`start`]).
pub fn run(ctx: &mut Context<'_>, command: &AgentCommand) -> Result<Outcome, CliError> {
    match command {
        AgentCommand::Start(args) => start(ctx.config.clone(), ctx.socket_flag.clone(), args),
        AgentCommand::Stop => stop(ctx),
        AgentCommand::Status => status(ctx),
        AgentCommand::Reload => reload(ctx),
        AgentCommand::Health => super::health::health(ctx),
        AgentCommand::Metrics => super::health::metrics(ctx),
        AgentCommand::Config(args) => show_config(ctx, args),
    }
}

/// `agent start`: takes the socket systemd passed (first, before any thread exists), then runs
/// the agent in the foreground. `socket_flag` is `--socket-path` only if given on the command
/// line, so that otherwise the configuration layers decide.
pub fn start(
    config_file: Option<PathBuf>,
    socket_flag: Option<PathBuf>,
    args: &StartArgs,
) -> Result<Outcome, CliError> {
    let activated = crate::transport::socket::take_activated()?;
    let options = DaemonOptions {
        config_file,
        overrides: args.flags.overrides(socket_flag),
        log_target: args.log_target,
    };
    daemon::run(options, activated)?;
    Ok(Outcome::Success)
}

fn stop(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let mut session = ctx.connect()?;
    let path = session.path().to_path_buf();
    // Admin detail tells whether systemd owns the socket: then its file stays, connecting would
    // start the agent again, and the pid to watch is the detail's. A socket the agent bound
    // itself names the agent as the listening process, in this process's pid namespace.
    let detail = session
        .exchange::<StatusResponse>(RequestType::AgentStatus, &Value::Null)
        .ok()
        .and_then(|(s, _)| s.detail);
    let watch = match &detail {
        Some(d) if d.socket_activated => Watch {
            socket: None,
            pid: Some(d.pid),
        },
        _ => Watch {
            socket: Some(path.clone()),
            pid: listener_pid(&path),
        },
    };
    let (_, raw): (StopResponse, Value) = session.exchange(RequestType::AgentStop, &Value::Null)?;
    drop(session);
    if watch.socket.is_none() {
        ctx.note("note: the socket belongs to systemd; the next connection starts the agent again");
    }
    ctx.debug(&format!(
        "waiting for the agent at {} to stop",
        path.display()
    ));
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !watch.gone() {
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "the agent at {} did not stop within {} s",
                path.display(),
                STOP_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(STOP_POLL);
    }
    ctx.print(&output::render(ctx.format, &raw, || {
        "Agent stopped\n".to_string()
    }))?;
    Ok(Outcome::Success)
}

/// What tells that the agent is gone: its socket no longer answers and its process exited.
struct Watch {
    /// The socket the agent bound, when it did.
    socket: Option<PathBuf>,
    /// The agent's pid, when known.
    pid: Option<u32>,
}

impl Watch {
    fn gone(&self) -> bool {
        self.socket.as_deref().is_none_or(|p| !socket_answers(p))
            && self.pid.is_none_or(process_gone)
    }
}

/// The pid of the process listening on `path` (the one that called `listen`), if it answers
/// and is not this process (which cannot wait for itself to exit).
pub fn listener_pid(path: &Path) -> Option<u32> {
    let stream = UnixStream::connect(path).ok()?;
    let cred = getsockopt(&stream, sockopt::PeerCredentials).ok()?;
    u32::try_from(cred.pid())
        .ok()
        .filter(|&pid| pid > 0 && pid != std::process::id())
}

/// Whether process `pid` has exited: it no longer exists, or it is a zombie nobody reaped yet.
pub fn process_gone(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None)
        == Err(nix::errno::Errno::ESRCH)
    {
        return true;
    }
    // `/proc/<pid>/stat` is `pid (comm) state …`; comm may contain spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Whether the socket file exists and something accepts connections on it.
pub fn socket_answers(path: &Path) -> bool {
    path.exists() && UnixStream::connect(path).is_ok()
}

fn status(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let mut session = ctx.connect()?;
    let answer = if ctx.verbose {
        match session.exchange::<StatusResponse>(RequestType::AgentStatus, &Value::Null) {
            Err(CliError::Client(ClientError::Agent(e)))
                if e.code == ErrorCode::PermissionDenied =>
            {
                ctx.note(&format!(
                    "note: detailed status needs admin rights ({}); showing the public status",
                    e.error
                ));
                None
            }
            other => Some(other?),
        }
    } else {
        None
    };
    let (status, raw) = match answer {
        Some(a) => a,
        None => session.exchange::<StatusResponse>(RequestType::StatusRequest, &Value::Null)?,
    };
    ctx.print(&output::render(ctx.format, &raw, || status_table(&status)))?;
    Ok(Outcome::Success)
}

/// Table form of a status answer (with the admin detail when present).
pub fn status_table(s: &StatusResponse) -> String {
    let mut kv = KeyValues::new();
    kv.row("version", &s.version)
        .row("mode", &s.mode)
        .row("socket", &s.socket_path)
        .opt("region", s.region.as_deref())
        .row("uptime", human_nanos(s.uptime))
        .row(
            "connections",
            format!("{} of {}", s.connection_count, s.max_connections),
        )
        .row("active capabilities", s.capabilities_active)
        .row(
            "policy",
            format!(
                "generation {} ({} files, {} rules), loaded {}",
                s.policy_generation, s.policy_files, s.policy_rules, s.policy_loaded_at
            ),
        )
        .opt("policy error", s.policy_last_error.as_deref())
        .row("policy fallback", &s.policy_fallback)
        .opt(
            "credentials",
            s.credentials.as_ref().map(|c| match &c.socket {
                Some(socket) => format!(
                    "{socket}{}: {} delivered, {} refused",
                    if c.activated { " (from systemd)" } else { "" },
                    c.delivered,
                    c.refused
                ),
                None => "no socket".to_string(),
            }),
        )
        .row("audit", audit_health(s))
        .row("secrets", secrets_health(s))
        .row("public key", &s.public_key);
    if let Some(d) = &s.detail {
        kv.row("pid", d.pid)
            .row("uid", d.uid)
            .row("started_at", &d.started_at)
            .row(
                "socket activated",
                if d.socket_activated { "yes" } else { "no" },
            )
            .row("policy directory", &d.policy_directory)
            .row("state directory", &d.state_directory)
            .row(
                "audit file",
                match (&d.audit_file, &d.audit_sync) {
                    (Some(f), Some(sync)) => format!("{f} (sync: {sync})"),
                    (Some(f), None) => f.clone(),
                    (None, _) => "(auditing off)".to_string(),
                },
            )
            .row(
                "ttl",
                format!(
                    "default {}, max {}",
                    human_seconds(d.default_ttl),
                    human_seconds(d.max_ttl)
                ),
            )
            .row(
                "max uses",
                if d.max_uses == 0 {
                    "unlimited".to_string()
                } else {
                    d.max_uses.to_string()
                },
            );
        let by_status: Vec<String> = d
            .capabilities_by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        kv.row("capabilities held", by_status.join(", "));
        let backend = s.secrets.as_ref().map_or("", |h| h.backend.as_str());
        kv.row(
            "secrets cache",
            match &d.secrets_cache {
                Some(c) => cache_summary(c),
                None if backend == "file" => "none (the file backend has no cache)".to_string(),
                None => "none".to_string(),
            },
        );
        for f in &d.policy_file_list {
            kv.row("policy file", f);
        }
    }
    kv.row("features", s.capabilities.join(", "));
    kv.render()
}

/// The `audit` row: `healthy`, or `FAILING` (requests are refused) with the detail an admin
/// gets (the last error, the failures since start).
fn audit_health(s: &StatusResponse) -> String {
    let detail = s.detail.as_ref();
    let mut text = if s.audit_healthy {
        "healthy".to_string()
    } else {
        "FAILING: requests are refused until audit records can be written".to_string()
    };
    if let Some(e) = detail.and_then(|d| d.audit_last_error.as_deref()) {
        text.push_str(&format!(" (last error: {e})"));
    }
    if let Some(n) = detail.map(|d| d.audit_failures).filter(|n| *n > 0) {
        text.push_str(&format!(" ({n} failed writes since start)"));
    }
    text
}

/// The `secrets` row: the backend and whether it is reachable, with its last error.
fn secrets_health(s: &StatusResponse) -> String {
    match &s.secrets {
        None => "none configured".to_string(),
        Some(h) if h.healthy => format!("{}, healthy", h.backend),
        Some(h) => match &h.last_error {
            Some(e) => format!("{}, FAILING: {e}", h.backend),
            None => format!("{}, FAILING", h.backend),
        },
    }
}

/// One line for the cache's figures, each a name and a number, so that
/// `agent status --verbose | grep -i cache` shows them all.
pub fn cache_summary(c: &CacheStats) -> String {
    let reads = c.hits + c.misses;
    let rate = if reads == 0 {
        "-".to_string()
    } else {
        format!("{:.1} %", c.hits as f64 * 100.0 / reads as f64)
    };
    format!(
        "entries {} ({} fresh), hits {}, misses {}, hit rate {rate}, stale answers served {}; ttl {}, stale_if_error {}",
        c.entries,
        c.fresh,
        c.hits,
        c.misses,
        c.stale_served,
        match c.ttl {
            0.0 => "0 (no cache)".to_string(),
            t if t.fract() == 0.0 && t < 9.0e15 => human_seconds(t as u64),
            t => format!("{t}s"),
        },
        if c.stale_if_error { "on" } else { "off" }
    )
}

fn reload(ctx: &mut Context<'_>) -> Result<Outcome, CliError> {
    let mut session = ctx.connect()?;
    let (resp, raw): (ReloadResponse, Value) =
        session.exchange(RequestType::AgentReload, &Value::Null)?;
    match reload_failure(&resp) {
        // With --format json|yaml the answer is printed with the error (see `error::report`).
        Some(error) => Err(CliError::WithReport {
            error: Box::new(error),
            report: raw,
        }),
        None => {
            ctx.print(&output::render(ctx.format, &raw, || reload_table(&resp)))?;
            if let Some(notice) = &resp.notice {
                ctx.note(&format!("Warning: {notice}"));
            }
            Ok(Outcome::Success)
        }
    }
}

/// The error a reload answer means, if it failed.
pub fn reload_failure(resp: &ReloadResponse) -> Option<CliError> {
    (resp.status == "failed").then(|| {
        CliError::Failed(format!(
            "{} (generation {} stays in force)",
            resp.error.as_deref().unwrap_or("the policy reload failed"),
            resp.generation
        ))
    })
}

/// Table form of a successful reload.
pub fn reload_table(resp: &ReloadResponse) -> String {
    format!(
        "Policies reloaded: generation {}, {} files, {} rules\n",
        resp.generation, resp.files, resp.rules
    )
}

fn show_config(ctx: &mut Context<'_>, args: &ConfigArgs) -> Result<Outcome, CliError> {
    if args.running {
        return running_config(ctx, args);
    }
    let overrides = args.flags.overrides(ctx.socket_flag.clone());
    let loaded = config::load(
        ctx.config.as_deref(),
        &overrides,
        &PathDefaults::for_current_user(),
    )?;
    let file = loaded.file.as_ref().map(|f| f.display().to_string());
    if args.validate {
        let text = match ctx.format {
            Format::Table => "Configuration is valid\n".to_string(),
            f => output::render(f, &json!({"valid": true, "file": file}), String::new),
        };
        ctx.print(&text)?;
        return Ok(Outcome::Success);
    }
    let value = serde_json::to_value(&loaded.config)
        .map_err(|e| CliError::Failed(format!("cannot show the configuration: {e}")))?;
    let text = output::render(ctx.format, &value, || {
        let origin = match &file {
            Some(f) => format!("# configuration file: {f}\n"),
            None => "# no configuration file: defaults, environment and flags\n".to_string(),
        };
        origin + &crate::yaml::to_string(&value)
    });
    ctx.print(&text)?;
    Ok(Outcome::Success)
}

/// `agent config --running`: the running agent's configuration, over its socket.
fn running_config(ctx: &mut Context<'_>, args: &ConfigArgs) -> Result<Outcome, CliError> {
    if !args.flags.overrides(None).is_empty() || ctx.config.is_some() {
        return Err(CliError::Input(
            "--running shows the configuration the running agent loaded; --config and the configuration flags do not apply to it".into(),
        ));
    }
    let (resp, raw): (ConfigResponse, Value) = ctx
        .connect()?
        .exchange(RequestType::AgentConfig, &Value::Null)?;
    ctx.print(&output::render(ctx.format, &raw, || running_table(&resp)))?;
    if let Some(notice) = &resp.file_changed {
        ctx.note(&format!("Warning: {notice}"));
    }
    Ok(Outcome::Success)
}

/// The table form of `agent config --running`: one row per key, with its value and source.
pub fn running_table(r: &ConfigResponse) -> String {
    let mut out = match &r.file {
        Some(f) => format!("# configuration file: {f}\n"),
        None => "# no configuration file: defaults, environment and flags\n".to_string(),
    };
    let rows: Vec<Vec<String>> = r
        .sources
        .iter()
        .map(|(key, source)| {
            let value = key
                .split('.')
                .try_fold(&r.config, |v, k| v.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            vec![key.clone(), value, source.clone()]
        })
        .collect();
    out.push_str(&output::columns(&["KEY", "VALUE", "SOURCE"], &rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reload_resp(status: &str, error: Option<&str>) -> ReloadResponse {
        ReloadResponse {
            status: status.into(),
            generation: 3,
            files: 2,
            rules: 7,
            error: error.map(String::from),
            notice: None,
        }
    }

    #[test]
    fn reload_outcomes() {
        assert!(reload_failure(&reload_resp("reloaded", None)).is_none());
        assert_eq!(
            reload_table(&reload_resp("reloaded", None)),
            "Policies reloaded: generation 3, 2 files, 7 rules\n"
        );
        let e = reload_failure(&reload_resp("failed", Some("a.json: bad rule"))).unwrap();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "a.json: bad rule (generation 3 stays in force)"
        );
    }

    #[test]
    fn status_table_shows_counts_and_detail() {
        let mut s: StatusResponse = serde_json::from_value(json!({
            "version":"0.1.0","capabilities":["ping_request","status_request"],"uptime":5_000_000_000u64,
            "connectionCount":2,"mode":"standard","socket_path":"/s","max_connections":100,
            "capabilities_active":4,"policy_generation":1,"policy_files":1,"policy_rules":2,
            "policy_loaded_at":"2026-01-01T00:00:00Z","policy_last_error":null,
            "policy_fallback":"deny everything","public_key":"k"
        }))
        .unwrap();
        let t = status_table(&s);
        assert!(t.contains("connections:          2 of 100\n"), "{t}");
        assert!(t.contains("active capabilities:  4\n"), "{t}");
        assert!(t.contains("audit:                healthy\n"), "{t}");
        assert!(t.contains("secrets:              none configured\n"), "{t}");
        assert!(!t.contains("pid:"));
        assert!(
            !t.contains("credentials:"),
            "an older agent says nothing: {t}"
        );
        s.credentials = Some(crate::protocol::credentials::CredentialsStatus {
            socket: Some("/run/c.sock".into()),
            activated: true,
            delivered: 3,
            refused: 1,
        });
        let t = status_table(&s);
        assert!(
            t.contains("/run/c.sock (from systemd): 3 delivered, 1 refused"),
            "{t}"
        );
        s.audit_healthy = false;
        s.secrets = Some(crate::secrets::BackendHealth {
            backend: "vault".into(),
            healthy: false,
            last_error: Some("connection refused".into()),
        });
        let t = status_table(&s);
        assert!(t.contains("audit:                FAILING: "), "{t}");
        assert!(
            t.contains("secrets:              vault, FAILING: connection refused\n"),
            "{t}"
        );
        s.audit_healthy = true;
        s.detail = serde_json::from_value(json!({
            "pid":42,"uid":0,"started_at":"2026-01-01T00:00:00Z","policy_directory":"/p",
            "state_directory":"/st","audit_file":null,"socket_activated":true,
            "capabilities_by_status":{"active":4,"revoked":1},"default_ttl":300,"max_ttl":3600,
            "max_uses":0,"policy_file_list":["/p/a.json"]
        }))
        .unwrap();
        let t = status_table(&s);
        assert!(t.contains("pid:"), "{t}");
        assert!(t.contains("active 4, revoked 1"), "{t}");
        assert!(t.contains("default 5m 0s, max 1h 0m 0s"), "{t}");
        assert!(t.contains("(auditing off)"), "{t}");
        if let Some(d) = s.detail.as_mut() {
            d.audit_file = Some("/var/log/a.log".into());
            d.audit_sync = Some("periodic".into());
        }
        let t = status_table(&s);
        assert!(t.contains("/var/log/a.log (sync: periodic)"), "{t}");
    }

    #[test]
    fn exited_and_zombie_processes_are_gone() {
        assert!(!process_gone(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !process_gone(pid) {
            assert!(
                Instant::now() < deadline,
                "an exited, unreaped child counts as gone"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(process_gone(pid));
    }

    #[test]
    fn a_missing_socket_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        assert!(!socket_answers(&path));
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(socket_answers(&path));
        assert_eq!(
            listener_pid(&path),
            None,
            "this process cannot wait for itself"
        );
        drop(listener);
        // A child spawned by a concurrent test may briefly hold a copy of the listening fd
        // between fork and exec; wait that out.
        let deadline = Instant::now() + Duration::from_secs(5);
        while socket_answers(&path) {
            assert!(
                Instant::now() < deadline,
                "a stale socket file does not answer"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_cache_line_names_every_figure() {
        let mut c = CacheStats {
            entries: 3,
            fresh: 2,
            hits: 1,
            misses: 3,
            stale_served: 1,
            ttl: 90.0,
            stale_if_error: true,
        };
        assert_eq!(
            cache_summary(&c),
            "entries 3 (2 fresh), hits 1, misses 3, hit rate 25.0 %, stale answers served 1; ttl 1m 30s, stale_if_error on"
        );
        (c.hits, c.misses, c.ttl, c.stale_if_error) = (0, 0, 0.5, false);
        assert!(
            cache_summary(&c)
                .ends_with("hit rate -, stale answers served 1; ttl 0.5s, stale_if_error off"),
            "{}",
            cache_summary(&c)
        );
        c.ttl = 0.0;
        assert!(cache_summary(&c).contains("ttl 0 (no cache)"));
    }
}
