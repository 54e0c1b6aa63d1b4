//! Load benchmark: the real agent under persistent connections, against the physical limit of
//! its socket — a trivial echo server on the same kind of Unix socket answering each request
//! line with a response line of the same size as the agent's.
//!
//! `cargo bench --bench load` runs everything and prints Markdown tables; `-- --json` prints one
//! JSON document instead, `-- --quick` is a smoke run, `-- --help` lists the options. Progress
//! goes to stderr. Nothing here asserts a figure: the targets are printed as met or not. But
//! every answer is checked, and a run in which any request or reload failed exits 1 after its
//! report (CI relies on that with a `--quick` run).
//!
//! What it does, in order, with its own temporary configuration, state, policy and audit paths
//! (on the file system of `--dir`, default the system temporary directory, since the cost of
//! `fdatasync` there is part of every durable answer):
//!
//! 1. time from exec to `READY=1` on a `NOTIFY_SOCKET` (a fresh state directory first, then
//!    restarts), and the latency of a first request through socket activation (the listening
//!    socket passed as fd 3 with `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`; the clock starts
//!    when the client connects, before the agent is started, as under systemd);
//! 2. the agent's RSS idle and with 10,000 idle connections;
//! 3. for each scenario (`ping_request`, `capability_validate`, a durable `capability_request`,
//!    grant+revoke, `secret_read` from the file backend, the same on a second agent with
//!    `audit.sync: always` whatever `--audit-sync` says, a denied request) and each number of
//!    connections (1, 8, 64, 512): closed-loop requests for `--duration` seconds on the agent,
//!    then the same on the echo server; throughput, latency percentiles (HDR histogram), each
//!    server's CPU time per request (all its threads, from `/proc/PID/task/*/schedstat`: the
//!    figure that moves least when the machine is shared) and the agent/baseline ratios. Right
//!    after the `always` read at the fewest connections, the disk floor (load/disk_floor.rs):
//!    one `write` + `fdatasync` of the bytes a read adds to the audit log, in the same
//!    directory, p50 over many rounds. Each row says the `audit.sync` its agent ran with (the
//!    mode's default unless `--audit-sync` is given);
//! 4. policy decision time (the agent's own `evaluationTime`) and reload time at 10, 1,000 and
//!    10,000 rules;
//! 5. reloads of the 10,000-rule set while 64 connections ask for grants: failed requests must
//!    be 0;
//! 6. `secret_read` through the `vault` backend against a real OpenBao server (`bao server -dev`,
//!    started once, see peers/bao.rs): on an agent with `cache_ttl: 0` (every read is a KV v2
//!    GET to bao) and on one with the default cache, beside bao answering the same GET itself
//!    over keep-alive HTTP connections driven by the same client threads (`bao_http`). Each
//!    number of connections runs them back to back after a `secret_read` on the file-backend
//!    agent (so that the rows compared met the same load of the machine), with the agent's and
//!    bao's CPU time per request. Without `bao` (on `PATH`, or `AETHER_VAULT_TEST_BAO`) these rows are skipped
//!    with a line saying so, unless `AETHER_VAULT_REQUIRE_BAO=1` (CI), which makes it an error;
//! 7. with `--peers` (load/peers.rs), beside the agent's `secret_read` and `ping_request`: a real
//!    OpenBao server with a file audit device answering a KV v2 read over keep-alive HTTP, and
//!    ssh-agent answering a request for its identities, driven by the same client, with each
//!    server's CPU per request, RSS and bytes written per request; a peer whose binary is
//!    missing is skipped with a line saying so.
//!
//! Then every target of the issues is printed as met or not, with the figures it comes from.
//!
//! The load clients are a few threads each driving many connections (tokio, current-thread), so
//! 512 connections do not mean 512 threads. Client, agent and echo server share the machine's
//! cores; the figures say what one machine does with both ends on it. `--agent PATH` measures
//! another build of the agent (another commit's), to compare two builds back to back.
//! docs/benchmarks.md records a run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// Progress, on stderr (defined before the modules, which use it).
macro_rules! say {
    ($($t:tt)*) => {{ eprintln!($($t)*); }};
}

/// The tests' harness, for what the benchmark shares with them (passing a socket as fd 3).
#[path = "../tests/common/mod.rs"]
mod common;

/// OpenBao as the agent's peer (the vault backend's server, and a peer in `--peers`).
#[path = "peers/bao.rs"]
mod bao;
/// ssh-agent as a peer (`--peers`).
#[path = "peers/ssh_agent.rs"]
mod ssh_agent;

#[path = "load/agent.rs"]
mod agent;
#[path = "load/disk_floor.rs"]
mod disk_floor;
#[path = "load/driver.rs"]
mod driver;
#[path = "load/echo.rs"]
mod echo;
#[path = "load/lifecycle.rs"]
mod lifecycle;
#[path = "load/opts.rs"]
mod opts;
#[path = "load/peers.rs"]
mod peers;
#[path = "load/report.rs"]
mod report;
#[path = "load/scenario.rs"]
mod scenario;
#[path = "load/vault.rs"]
mod vault;

use agent::{Agent, Env, SyncClient, config_yaml};
use driver::{Cell, Tally, Target};
use echo::{Echo, echo_server};
use lifecycle::{
    first_request_activated, open_idle, raise_nofile, stats_ms, time_to_ready,
    wait_connections_at_most,
};
use opts::Opts;
use report::{Group, Row, fmt_rps, fmt_us, fs_type, loadavg, machine, round1, round2};
use scenario::Scenario;

/// How long one response may take before the connection counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A capability id of the right length, for the baseline (which has no capabilities).
const FAKE_CAP: &str = "cap_00000000000000000000000000000000";
/// The resource every granted request asks for.
const RESOURCE: &str = "secret:/bench/db";
/// The password stored at [`RESOURCE`], which every secret read must return.
const SECRET_VALUE: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Policy size and reloads

/// `agent_reload`; milliseconds until the answer, failing unless it reloaded.
fn reload(client: &mut SyncClient) -> Result<(f64, u64)> {
    let t0 = Instant::now();
    let r = client.call("agent_reload", Value::Null)?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if r["payload"]["status"] != "reloaded" {
        bail!("reload failed: {r}");
    }
    Ok((ms, r["payload"]["rules"].as_u64().unwrap_or(0)))
}

/// Lets inotify-triggered reloads of the files just written finish (debounce 200 ms).
fn settle() {
    std::thread::sleep(Duration::from_millis(600));
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--echo-server") {
        let (Some(socket), Some(sizes)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: --echo-server SOCKET SIZE[,SIZE…]");
            std::process::exit(2);
        };
        let sizes: Option<Vec<usize>> = sizes.split(',').map(|s| s.parse().ok()).collect();
        let result = match sizes {
            Some(s) if !s.is_empty() => echo_server(Path::new(socket), &s),
            _ => Err(anyhow!("bad sizes {:?}", args[2])),
        };
        if let Err(e) = result {
            eprintln!("echo server: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run(opts: &Opts) -> Result<()> {
    let nofile = raise_nofile(opts.idle_connections as u64 + 1024)?;
    let env = Env::new(opts)?;
    let mut report = json!({
        "machine": machine(),
        "command": format!("cargo bench --bench load -- {}", std::env::args().skip(1).filter(|a| a != "--bench").collect::<Vec<_>>().join(" ")),
        "state_filesystem": fs_type(env.path()),
        "duration_s": opts.duration.as_secs_f64(),
        "warmup_s": opts.warmup.as_secs_f64(),
        "agent": opts.agent.display().to_string(),
        "agent_config": config_yaml(Path::new("DIR"), opts.audit_sync.as_deref()),
        "audit_sync": env.sync,
    });
    say!(
        "load benchmark in {} ({}); agent {}, audit.sync: {}{}",
        env.path().display(),
        fs_type(env.path()),
        opts.agent.display(),
        env.sync,
        if opts.audit_sync.is_none() {
            " (the mode's default)"
        } else {
            ""
        }
    );
    env.write_policies(10, 0)?;

    // 1. Start-up.
    let mut ready = Vec::new();
    let mut first_start = None;
    if opts.wants("startup") {
        let runs = if opts.quick { 2 } else { 6 };
        for i in 0..runs {
            let ms = time_to_ready(&env)?;
            if i == 0 && !env.state_dir.join("signing.key").exists() {
                bail!("the first start left no signing key");
            }
            if i == 0 {
                first_start = Some(ms);
            } else {
                ready.push(ms);
            }
        }
        say!(
            "exec → READY=1: first start {:.1} ms, restarts {:?} ms",
            first_start.unwrap_or(f64::NAN),
            ready.iter().map(|m| round1(*m)).collect::<Vec<_>>()
        );
        report["startup"] =
            json!({"first_start_ms": first_start.map(round2), "ready_ms": stats_ms(&ready)});
    }
    let mut activation = Vec::new();
    if opts.wants("activation") {
        let runs = if opts.quick { 2 } else { 5 };
        for _ in 0..runs {
            activation.push(first_request_activated(&env)?);
        }
        say!(
            "first request through socket activation: {:?} ms",
            activation.iter().map(|m| round1(*m)).collect::<Vec<_>>()
        );
        report["activation"] = json!({"first_request_ms": stats_ms(&activation),
            "note": "includes exec of sh, which sets LISTEN_PID=$$ and execs the agent"});
    }

    // 2. The agent that serves the rest; RSS.
    let agent = Agent::start(&env)?;
    // A fresh connection for each setup step: one left idle would be closed after
    // `ipc.conn_timeout` (the default, 60 s, as in production).
    let setup = || SyncClient::connect(&env.socket);
    let mut rss_idle = None;
    let mut rss_conns = None;
    if opts.wants("rss") {
        std::thread::sleep(Duration::from_millis(500));
        rss_idle = Some(agent.rss_mb()?);
        let n = opts
            .idle_connections
            .min(nofile.saturating_sub(200) as usize);
        if n < opts.idle_connections {
            say!(
                "note: RLIMIT_NOFILE {nofile} allows only {n} of {} idle connections",
                opts.idle_connections
            );
        }
        let (conns, secs) = open_idle(&env, n)?;
        std::thread::sleep(Duration::from_millis(500));
        let with = agent.rss_mb()?;
        rss_conns = Some((n, with));
        drop(conns);
        wait_connections_at_most(&env, 1)?;
        std::thread::sleep(Duration::from_millis(200));
        let after = agent.rss_mb()?;
        say!(
            "RSS idle {:.1} MB; with {n} idle connections {with:.1} MB (opened in {secs:.1} s); after they closed {after:.1} MB",
            rss_idle.unwrap_or(0.0)
        );
        report["rss_mb"] = json!({"idle": rss_idle.map(round1),
            "idle_connections": n, "with_idle_connections": round1(with),
            "after_closing_them": round1(after), "seconds_to_open": round1(secs)});
    }

    // 3. Load.
    env.store_secret()?;
    // The agent with `audit.sync: always`, for secret_read_always and the peers; the bytes of a
    // read's records, for the disk floor.
    let always = if opts.wants(Scenario::SecretReadAlways.name()) || opts.peers {
        let always_env = Env::with(opts, Some("always"), "")?;
        always_env.write_policies(10, 0)?;
        let always_agent = Agent::start(&always_env)?;
        always_env.store_secret()?;
        let bytes = disk_floor::record_bytes(&always_env, 21)?;
        say!(
            "agent with audit.sync always: pid {}; a secret_read adds {bytes} bytes to its audit log",
            always_agent.pid
        );
        Some((always_env, always_agent, bytes))
    } else {
        None
    };
    let fewest = opts.connections.iter().copied().min().unwrap_or(1);
    let mut floor_report = None;
    let mut rows = Vec::new();
    for sc in Scenario::ALL {
        if !opts.wants(sc.name()) {
            continue;
        }
        for &conns in &opts.connections {
            let cell = |target, socket, server| Cell::new(sc, target, socket, conns, opts, server);
            let (on, sync) = match (sc, &always) {
                (Scenario::SecretReadAlways, Some((e, a, _))) => ((&e.socket, a.pid), &e.sync),
                _ => ((&env.socket, agent.pid), &env.sync),
            };
            let a = cell(Target::Agent, on.0, on.1)
                .run()
                .with_context(|| format!("{} × {conns} on the agent", sc.name()))?;
            // The disk floor, right after the durable read it is the floor of, paired with
            // more of the same reads.
            let floor = match &always {
                Some((e, _, bytes)) if sc == Scenario::SecretReadAlways && conns == fewest => {
                    let rounds = if opts.quick { 300 } else { 3000 };
                    Some(disk_floor::paired(e, *bytes, rounds, opts.duration)?)
                }
                _ => None,
            };
            if let Some(f) = &floor {
                say!(
                    "disk floor: write + fdatasync of {} bytes on {}: p50 {}, p99 {} over {} rounds, alternating with secret_reads (p50 {}, p99 {})",
                    f.bytes,
                    f.fs,
                    fmt_us(f.us(0.5)),
                    fmt_us(f.us(0.99)),
                    f.hist.len(),
                    fmt_us(f.read_us(0.5)),
                    fmt_us(f.read_us(0.99))
                );
                floor_report = Some(f.json());
            }
            let echo = Echo::start(env.path(), &a.mean_sizes())?;
            let e = cell(Target::Echo, &echo.socket, echo.child.id())
                .run()
                .with_context(|| format!("{} × {conns} on the echo server", sc.name()))?;
            drop(echo);
            let mut row = Row::new(sc, conns, Group::Echo, a);
            row.echo = Some(e);
            row.sync = Some(sync.clone());
            row.floor = floor;
            let (tr, lr) = row.ratios().unwrap_or((f64::NAN, f64::NAN));
            say!(
                "{:>18} × {conns:>3}: agent ({}) {:>8} req/s p50 {:>9} p99 {:>9} cpu {:>8}/req | echo {:>8} req/s p50 {:>9} cpu {:>8}/req | {:.0} % thr, {:.2}× p50, {} errors{}",
                sc.name(),
                row.sync_cell(),
                fmt_rps(row.agent.rps()),
                fmt_us(row.agent.us(0.5)),
                fmt_us(row.agent.us(0.99)),
                fmt_us(row.agent.cpu_us().unwrap_or(0.0)),
                fmt_rps(row.echo.as_ref().map_or(0.0, Tally::rps)),
                fmt_us(row.echo.as_ref().map_or(0.0, |e| e.us(0.5))),
                fmt_us(row.echo.as_ref().and_then(Tally::cpu_us).unwrap_or(0.0)),
                tr * 100.0,
                lr,
                row.agent.errors,
                row.agent.first_error_note()
            );
            rows.push(row);
        }
    }
    // 6. secret_read through the vault backend, beside bao.
    let vault: Vec<Scenario> = Scenario::VAULT
        .into_iter()
        .filter(|s| opts.wants(s.name()))
        .collect();
    let mut vault_skipped = None;
    if !vault.is_empty() {
        let (vault_rows, info) = vault::vault_load(
            opts,
            &vault,
            env.path(),
            (&env.socket, agent.pid, &env.sync),
        )?;
        vault_skipped = info["skipped"].as_str().map(str::to_string);
        report["vault"] = info;
        rows.extend(vault_rows);
    }
    // 7. Beside the peers.
    if opts.peers {
        let Some((always_env, always_agent, _)) = &always else {
            bail!("the peers part runs without the agent with audit.sync always");
        };
        let (peer_rows, info) =
            peers::peers_load(opts, env.path(), (always_env, always_agent.pid))?;
        report["peers"] = info;
        rows.extend(peer_rows);
    }
    report["disk_floor"] = floor_report.unwrap_or(Value::Null);
    report["load"] = Value::Array(rows.iter().map(Row::json).collect());

    // 4. Policy size: decision and reload time.
    let mut policy_rows = Vec::new();
    if opts.wants("policy") {
        for rules in [10usize, 1_000, 10_000] {
            env.write_policies(rules, 0)?;
            settle();
            let mut times = Vec::new();
            let mut loaded = 0;
            for _ in 0..if opts.quick { 2 } else { 5 } {
                let (ms, n) = reload(&mut setup()?)?;
                times.push(ms);
                loaded = n;
            }
            if loaded != rules as u64 {
                bail!("the agent loaded {loaded} rules, expected {rules}");
            }
            let t = Cell {
                sc: Scenario::Grant,
                target: Target::Agent,
                socket: &env.socket,
                conns: 8,
                threads: opts.threads_for(8),
                warmup: opts.warmup.min(Duration::from_millis(300)),
                duration: opts.duration.min(Duration::from_secs(2)),
                with_eval: true,
                server: Some(agent.pid),
                peer: None,
                http: None,
            }
            .run()?;
            let ev = t
                .eval
                .as_ref()
                .ok_or_else(|| anyhow!("no evaluation times"))?;
            let row = json!({"rules": rules,
                "decision_p50_us": round2(ev.value_at_quantile(0.5) as f64 / 1000.0),
                "decision_p99_us": round2(ev.value_at_quantile(0.99) as f64 / 1000.0),
                "decisions": ev.len(),
                "grant_p50_us": round1(t.us(0.5)),
                "errors": t.errors,
                "reload_ms": stats_ms(&times)});
            say!("policy {rules:>6} rules: {row}");
            policy_rows.push(row);
        }
        report["policy"] = Value::Array(policy_rows.clone());
    }

    // 5. Reloads under load.
    let mut reload_report = None;
    if opts.wants("reload") {
        env.write_policies(10_000, 0)?;
        settle();
        reload(&mut setup()?)?;
        let duration = opts
            .duration
            .max(Duration::from_secs(if opts.quick { 1 } else { 10 }));
        let warmup = opts.warmup;
        let socket = env.socket.clone();
        let stop_at = Instant::now() + warmup + duration;
        let reloader = {
            let socket = env.socket.clone();
            let env_policy = env.policy_dir.clone();
            std::thread::spawn(move || -> Result<(Vec<f64>, u64)> {
                let mut c = SyncClient::connect(&socket)?;
                let mut times = Vec::new();
                let mut failed = 0;
                let mut variant = 1u64;
                while Instant::now() < stop_at {
                    // Change one value so that each reload compiles a changed set.
                    let first = env_policy.join("00000.json");
                    let text = std::fs::read_to_string(&first)?;
                    let (from, to) = if variant % 2 == 1 {
                        ("\"max_ttl\":600,", "\"max_ttl\":601,")
                    } else {
                        ("\"max_ttl\":601,", "\"max_ttl\":600,")
                    };
                    std::fs::write(&first, text.replacen(from, to, 1))?;
                    variant += 1;
                    match reload(&mut c) {
                        Ok((ms, _)) => times.push(ms),
                        Err(e) => {
                            eprintln!("reload under load: {e:#}");
                            failed += 1
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok((times, failed))
            })
        };
        let t = Cell {
            sc: Scenario::Grant,
            target: Target::Agent,
            socket: &socket,
            conns: 64,
            threads: opts.threads_for(64),
            warmup,
            duration,
            with_eval: false,
            server: Some(agent.pid),
            peer: None,
            http: None,
        }
        .run()?;
        let (times, failed_reloads) = reloader
            .join()
            .map_err(|_| anyhow!("the reload thread panicked"))??;
        let r = json!({"rules": 10_000, "connections": 64, "scenario": "grant",
            "seconds": duration.as_secs_f64(), "requests": t.requests,
            "throughput_rps": round1(t.rps()), "p50_us": round1(t.us(0.5)), "p99_us": round1(t.us(0.99)),
            "max_us": round1(t.hist.max() as f64 / 1000.0),
            "failed_requests": t.errors, "first_error": t.first_error,
            "reloads": times.len(), "failed_reloads": failed_reloads, "reload_ms": stats_ms(&times)});
        say!("reloads under load: {r}");
        reload_report = Some(r.clone());
        report["reload_under_load"] = r;
    }

    let rss_after = agent.rss_mb()?;
    report["rss_mb_after_load"] = json!(round1(rss_after));
    let status = agent.stop()?;
    if !status.success() {
        bail!("the agent exited with {status}:\n{}", env.stderr_tail());
    }
    report["machine"]["loadavg_at_end"] = json!(loadavg());
    if let Some((always_env, always_agent, _)) = always {
        let status = always_agent.stop()?;
        if !status.success() {
            bail!(
                "the agent with audit.sync always exited with {status}:\n{}",
                always_env.stderr_tail()
            );
        }
    }
    report["audit_log_mb"] = json!(round1(env.audit_bytes() as f64 / 1048576.0));

    // Targets.
    let ready_ms = if ready.is_empty() {
        None
    } else {
        let mut s = ready.clone();
        s.sort_by(f64::total_cmp);
        Some(s[s.len() / 2])
    };
    let targets = report::targets(&report::Measured {
        rows: &rows,
        sync: &env.sync,
        rss_idle,
        rss_conns,
        idle_connections: opts.idle_connections,
        ready_ms,
        failed_during_reloads: reload_report
            .as_ref()
            .and_then(|r| r["failed_requests"].as_f64()),
    });
    report["targets"] = Value::Array(targets.clone());

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return all_answered(&report);
    }
    let m = &report["machine"];
    println!(
        "machine: {} × {}, {} GiB, {}; load average {} at start, {} at end",
        m["cpus"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        m["loadavg_at_start"].as_str().unwrap_or("?"),
        m["loadavg_at_end"].as_str().unwrap_or("?")
    );
    println!(
        "state, audit log and sockets on {}; the agent's audit.sync: {}{} (secret_read_always's: always); {} s measured per cell after {} s warm-up",
        report["state_filesystem"].as_str().unwrap_or("?"),
        env.sync,
        if opts.audit_sync.is_none() {
            ", the mode's default"
        } else {
            ""
        },
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64()
    );
    println!();
    if rows.iter().any(|r| r.group == Group::Echo) {
        report::print_load_table(&rows);
        println!();
    }
    if let Some(f) = report.get("disk_floor").filter(|f| !f.is_null()) {
        println!(
            "disk floor: one write + fdatasync of {} bytes (a secret_read's audit records) on {}, beside the agent's log: p50 {}, p99 {} over {} rounds, alternating with secret_reads (audit.sync always) on one connection: p50 {}, p99 {}",
            f["bytes"],
            f["filesystem"].as_str().unwrap_or("?"),
            fmt_us(f["p50_us"].as_f64().unwrap_or(0.0)),
            fmt_us(f["p99_us"].as_f64().unwrap_or(0.0)),
            f["rounds"],
            fmt_us(f["paired_secret_read_p50_us"].as_f64().unwrap_or(0.0)),
            fmt_us(f["paired_secret_read_p99_us"].as_f64().unwrap_or(0.0))
        );
        println!();
    }
    if let Some(why) = &vault_skipped {
        println!("secret_read through the vault backend: SKIPPED, {why}");
        println!();
    } else if rows.iter().any(|r| Scenario::VAULT.contains(&r.sc)) {
        println!(
            "secret_read through the vault backend, beside bao answering the same read ({}, {}):",
            report["vault"]["bao"].as_str().unwrap_or("?"),
            report["vault"]["storage"].as_str().unwrap_or("?")
        );
        println!();
        report::print_vault_table(&rows, &opts.connections);
        println!();
    }
    if let Some(p) = report.get("peers") {
        println!(
            "beside the peers: {}; {} (the same client, the same connections):",
            p["bao"]["version"]
                .as_str()
                .map_or("bao SKIPPED".to_string(), |v| format!(
                    "{v} (bao server -dev, inmem, file audit device)"
                )),
            p["ssh_agent"]["version"].as_str().map_or(
                "ssh-agent SKIPPED".to_string(),
                |v| format!("ssh-agent ({v}, {} key)", p["ssh_agent"]["keys"])
            )
        );
        for why in [&p["bao"]["skipped"], &p["ssh_agent"]["skipped"]] {
            if let Some(why) = why.as_str() {
                println!("SKIPPED: {why}");
            }
        }
        println!();
        peers::print_peers_table(&rows, &opts.connections);
        println!();
    }
    if let Some(s) = report.get("startup") {
        println!(
            "exec → READY=1: first start (creates keys) {} ms; restarts {}",
            s["first_start_ms"], s["ready_ms"]
        );
    }
    if let Some(a) = report.get("activation") {
        println!(
            "first request through socket activation (connect → answer, includes the agent's start): {} ms",
            a["first_request_ms"]
        );
    }
    if let Some(r) = report.get("rss_mb") {
        println!(
            "RSS: idle {} MB; with {} idle connections {} MB; after they closed {} MB",
            r["idle"], r["idle_connections"], r["with_idle_connections"], r["after_closing_them"]
        );
    }
    println!(
        "RSS after the load: {rss_after:.1} MB; audit log {} MB",
        report["audit_log_mb"]
    );
    if !policy_rows.is_empty() {
        println!();
        println!("| rules | decision p50 | decision p99 | grant p50 (8 conns) | reload (median) |");
        println!("|---:|---:|---:|---:|---:|");
        for r in &policy_rows {
            println!(
                "| {} | {} µs | {} µs | {} | {} ms |",
                fmt_rps(r["rules"].as_f64().unwrap_or(0.0)),
                r["decision_p50_us"],
                r["decision_p99_us"],
                fmt_us(r["grant_p50_us"].as_f64().unwrap_or(0.0)),
                r["reload_ms"]["median"]
            );
        }
    }
    if let Some(r) = &reload_report {
        println!();
        println!(
            "reloads of the 10,000-rule set under load (64 connections asking for grants, {} s): {} reloads (median {} ms, max {} ms), {} failed; {} requests, {} req/s, p99 {}; failed requests: {}",
            r["seconds"],
            r["reloads"],
            r["reload_ms"]["median"],
            r["reload_ms"]["max"],
            r["failed_reloads"],
            r["requests"],
            fmt_rps(r["throughput_rps"].as_f64().unwrap_or(0.0)),
            fmt_us(r["p99_us"].as_f64().unwrap_or(0.0)),
            r["failed_requests"]
        );
    }
    println!();
    report::print_targets(&targets);
    all_answered(&report)
}

/// An error unless every request of the run was answered as expected: the figures of a run
/// with failed requests measure something else (CI runs `--quick` and relies on this).
fn all_answered(report: &Value) -> Result<()> {
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let mut failed: u64 = 0;
    for row in report["load"].as_array().into_iter().flatten() {
        // `agent` holds bao's figures in the `bao_http` rows.
        failed += count(&row["agent"]["errors"]) + count(&row["baseline"]["errors"]);
    }
    for row in report["policy"].as_array().into_iter().flatten() {
        failed += count(&row["errors"]);
    }
    let reloads = &report["reload_under_load"];
    failed += count(&reloads["failed_requests"]) + count(&reloads["failed_reloads"]);
    if failed > 0 {
        bail!(
            "{failed} requests or reloads failed (see \"errors\" above): the figures are not valid"
        );
    }
    Ok(())
}
