//! Parts 1 and 2 of the benchmark and their helpers: time to `READY=1`, the first request
//! through socket activation, idle connections (for the RSS figure) and the file limit.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixListener as StdListener, UnixStream as StdStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::agent::{Agent, Env, SyncClient};
use crate::common;
use crate::report::round2;
use crate::scenario::Scenario;

/// Milliseconds from spawning the agent to `READY=1` on its `NOTIFY_SOCKET`.
pub fn time_to_ready(env: &Env) -> Result<f64> {
    let notify_path = env.path().join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path)?;
    notify.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut cmd = env.agent_command()?;
    cmd.env("NOTIFY_SOCKET", &notify_path);
    let t0 = Instant::now();
    let child = cmd.spawn().context("start the agent")?;
    let agent = Agent {
        pid: child.id(),
        child: Some(child),
    };
    let mut buf = [0u8; 4096];
    let ready = loop {
        let n = notify
            .recv(&mut buf)
            .with_context(|| format!("no READY=1 within 20 s:\n{}", env.stderr_tail()))?;
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            break t0.elapsed();
        }
    };
    // Keep reading notifications while it stops, so that none of its sends can block.
    notify.set_nonblocking(true)?;
    let status = agent.stop()?;
    while notify.recv(&mut buf).is_ok() {}
    if !status.success() {
        bail!("the agent exited with {status}:\n{}", env.stderr_tail());
    }
    Ok(t0.elapsed().min(ready).as_secs_f64() * 1000.0)
}

/// Milliseconds from a client's connect, on a socket systemd would hold, to the answer of its
/// first request, the agent being started (socket-activated) right after the connect.
pub fn first_request_activated(env: &Env) -> Result<f64> {
    use std::os::fd::AsRawFd;
    let path = env.path().join("activated.sock");
    let _ = std::fs::remove_file(&path);
    let listener = StdListener::bind(&path)?;
    let fd = listener.as_raw_fd();
    // `sh -c 'LISTEN_PID=$$ exec agent …'`: LISTEN_PID must name the agent's own pid.
    let mut cmd = env.command("sh")?;
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(&env.agent)
        .arg("--config")
        .arg(&env.config)
        .args(["--log-target", "stderr"])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "agent");
    // `fd` stays open in this process until after the spawn.
    common::pass_as_fd3(&mut cmd, fd);
    let t0 = Instant::now();
    let mut client = StdStream::connect(&path)?;
    client.set_read_timeout(Some(Duration::from_secs(20)))?;
    client.write_all(&Scenario::Ping.request(0, "", ""))?;
    let child = cmd.spawn().context("start the socket-activated agent")?;
    let agent = Agent {
        pid: child.id(),
        child: Some(child),
    };
    let mut answer = String::new();
    BufReader::new(&client)
        .read_line(&mut answer)
        .with_context(|| format!("no answer:\n{}", env.stderr_tail()))?;
    let elapsed = t0.elapsed();
    if !answer.contains("ping_response") {
        bail!("unexpected first answer {answer:?}");
    }
    drop(client);
    let status = agent.stop()?;
    if !status.success() {
        bail!(
            "the activated agent exited with {status}:\n{}",
            env.stderr_tail()
        );
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    Ok(elapsed.as_secs_f64() * 1000.0)
}

pub fn stats_ms(v: &[f64]) -> Value {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return Value::Null;
    }
    json!({"min": round2(s[0]), "median": round2(s[s.len() / 2]), "max": round2(s[s.len() - 1]),
           "runs": s.len()})
}

// ---------------------------------------------------------------------------------------------
// Idle connections

/// Opens `n` idle connections and waits until the agent counts them; returns them with the
/// seconds it took.
pub fn open_idle(env: &Env, n: usize) -> Result<(Vec<StdStream>, f64)> {
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(StdStream::connect(&env.socket).with_context(|| {
            format!("idle connection {i} of {n} (RLIMIT_NOFILE? ipc.max_connections?)")
        })?);
    }
    let mut status = SyncClient::connect(&env.socket)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = status.call("status_request", Value::Null)?;
        let counted = r["payload"]["connectionCount"].as_u64().unwrap_or(0) as usize;
        if counted > n {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent counts {counted} of {n} idle connections after 120 s: {r}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((conns, t0.elapsed().as_secs_f64()))
}

/// Waits until the agent counts at most `n` connections (besides the asking one).
pub fn wait_connections_at_most(env: &Env, n: u64) -> Result<()> {
    let mut status = SyncClient::connect(&env.socket)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = status.call("status_request", Value::Null)?;
        let counted = r["payload"]["connectionCount"].as_u64().unwrap_or(u64::MAX);
        if counted <= n + 1 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agent still counts {counted} connections after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn raise_nofile(want: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
        Ok(lim.rlim_cur)
    }
}
