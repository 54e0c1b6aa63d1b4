//! The load driver: a [`Cell`] is some connections doing one scenario in a closed loop for a
//! warm-up and a measured window, from a few client threads (tokio, current-thread), against
//! the agent, the echo server or a peer (bao over HTTP, ssh-agent); it returns a [`Tally`]:
//! latency histogram, throughput, errors, and the server's CPU time and RSS over the window.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::agent::rss_mb;
use crate::bao;
use crate::opts::Opts;
use crate::report::{round1, round2};
use crate::scenario::{Scenario, cap_id, number_field};
use crate::ssh_agent;
use crate::{FAKE_CAP, READ_TIMEOUT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Agent,
    Echo,
    /// bao's HTTP API ([`HttpRead`]).
    Bao,
    /// ssh-agent's socket.
    SshAgent,
}

/// A request sent over TCP, answered with an HTTP/1.1 response (`Content-Length` framed).
pub struct HttpRead {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The whole request: request line, headers, blank line.
    pub request: Vec<u8>,
}

impl HttpRead {
    /// The KV v2 read of `secret/bench/db` on `server` with its root token: the agent's vault
    /// backend's own request (ureq's headers and the backend's), in one write as ureq sends it.
    pub fn bao_kv_read(server: &bao::BaoServer) -> HttpRead {
        HttpRead {
            addr: format!("127.0.0.1:{}", server.port),
            request: format!(
                "GET /v1/secret/data/bench/db HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: aether-vault-load\r\nAccept: */*\r\nX-Vault-Request: true\r\nX-Vault-Token: {}\r\n\r\n",
                server.port,
                bao::ROOT_TOKEN
            )
            .into_bytes(),
        }
    }
}

/// What one load cell measured.
pub struct Tally {
    /// Latency of each measured request, nanoseconds.
    pub hist: Histogram<u64>,
    /// Requests completed in the measured window.
    pub requests: u64,
    /// Wrong answers, timeouts and broken connections (agent only).
    pub errors: u64,
    pub first_error: Option<String>,
    /// Response bytes and count per step, over every request.
    pub sizes: Vec<(u64, u64)>,
    /// `evaluationTime` of grant answers, nanoseconds, when asked for.
    pub eval: Option<Histogram<u64>>,
    pub window: Duration,
    /// The server's CPU time (all threads) during the window.
    pub server_cpu_ns: Option<u64>,
    /// The CPU time of the server's own peer (bao behind the agent) during the window.
    pub peer_cpu_ns: Option<u64>,
    /// The server's RSS at the end of the window, MB.
    pub rss_mb: Option<f64>,
}

pub fn histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits. Cannot fail with these bounds.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

impl Tally {
    pub fn new(steps: usize, with_eval: bool) -> Tally {
        Tally {
            hist: histogram(),
            requests: 0,
            errors: 0,
            first_error: None,
            sizes: vec![(0, 0); steps],
            eval: with_eval.then(histogram),
            window: Duration::ZERO,
            server_cpu_ns: None,
            peer_cpu_ns: None,
            rss_mb: None,
        }
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    pub fn merge(&mut self, o: &Tally) {
        let _ = self.hist.add(&o.hist);
        self.requests += o.requests;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        for (a, b) in self.sizes.iter_mut().zip(&o.sizes) {
            a.0 += b.0;
            a.1 += b.1;
        }
        if let (Some(a), Some(b)) = (self.eval.as_mut(), o.eval.as_ref()) {
            let _ = a.add(b);
        }
    }

    /// ` (first: …)`, the first error cut to 300 characters, or nothing.
    pub fn first_error_note(&self) -> String {
        self.first_error
            .as_deref()
            .map(|e| format!(" (first: {})", e.chars().take(300).collect::<String>()))
            .unwrap_or_default()
    }

    /// The server's CPU time per request in the window, microseconds.
    pub fn cpu_us(&self) -> Option<f64> {
        self.server_cpu_ns
            .map(|ns| ns as f64 / 1000.0 / (self.requests.max(1) as f64))
    }

    /// The peer's CPU time per request in the window, microseconds.
    pub fn peer_cpu_us(&self) -> Option<f64> {
        self.peer_cpu_ns
            .map(|ns| ns as f64 / 1000.0 / (self.requests.max(1) as f64))
    }

    /// Requests answered, warm-up included (each step of a cycle counted).
    pub fn answered(&self) -> u64 {
        self.sizes.iter().map(|(_, n)| n).sum()
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q`, microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn mean_sizes(&self) -> Vec<usize> {
        self.sizes
            .iter()
            .map(|(bytes, n)| (bytes / (*n).max(1)) as usize)
            .collect()
    }

    pub fn summary(&self) -> Value {
        json!({
            "requests": self.requests,
            "throughput_rps": round1(self.rps()),
            "p50_us": round1(self.us(0.5)),
            "p90_us": round1(self.us(0.9)),
            "p99_us": round1(self.us(0.99)),
            "p999_us": round1(self.us(0.999)),
            "max_us": round1(self.hist.max() as f64 / 1000.0),
            "server_cpu_us_per_request": self.cpu_us().map(round2),
            "peer_cpu_us_per_request": self.peer_cpu_us().map(round2),
            "server_rss_mb": self.rss_mb.map(round1),
            "errors": self.errors,
            "first_error": self.first_error,
        })
    }
}

/// One load cell: `conns` connections to `socket` doing `sc` in a closed loop (one request in
/// flight per connection) for `warmup` + `duration`; only answers completed in the last
/// `duration` are counted. `stop` ends it early (the reload test's background load).
pub struct Cell<'a> {
    pub sc: Scenario,
    pub target: Target,
    pub socket: &'a Path,
    pub conns: usize,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub with_eval: bool,
    /// The server process whose CPU time is measured over the window.
    pub server: Option<u32>,
    /// A second process measured the same way: the server's peer (bao behind the agent).
    pub peer: Option<u32>,
    /// With [`Target::Bao`]: where to send what.
    pub http: Option<Arc<HttpRead>>,
}

/// On-CPU time of each thread of `pid` so far, nanoseconds (`/proc/PID/task/*/schedstat`).
pub fn cpu_ns(pid: u32) -> Option<std::collections::HashMap<String, u64>> {
    let mut threads = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
                threads.insert(task.file_name().to_string_lossy().into_owned(), ns);
            }
        }
    }
    Some(threads)
}

/// CPU time spent between two [`cpu_ns`] samples by the threads in the second (a thread that
/// ended in between is not counted; one that started is counted whole).
pub fn cpu_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

impl<'a> Cell<'a> {
    /// `conns` connections doing `sc` on `socket` with the run's warm-up, duration and client
    /// threads, `server`'s CPU time measured; no peer, no HTTP request, no decision times.
    pub fn new(
        sc: Scenario,
        target: Target,
        socket: &'a Path,
        conns: usize,
        opts: &Opts,
        server: u32,
    ) -> Cell<'a> {
        Cell {
            sc,
            target,
            socket,
            conns,
            threads: opts.threads_for(conns),
            warmup: opts.warmup,
            duration: opts.duration,
            with_eval: false,
            server: Some(server),
            peer: None,
            http: None,
        }
    }

    pub fn run(&self) -> Result<Tally> {
        let threads = self.threads.clamp(1, self.conns);
        // The load threads and this one, which samples the server's CPU time over the window.
        let barrier = Arc::new(Barrier::new(threads + 1));
        let mut handles = Vec::new();
        for t in 0..threads {
            let share = self.conns / threads + usize::from(t < self.conns % threads);
            let (sc, target, socket) = (self.sc, self.target, self.socket.to_path_buf());
            let (warmup, duration, with_eval) = (self.warmup, self.duration, self.with_eval);
            let (barrier, http) = (barrier.clone(), self.http.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn(move || {
                        client_thread(
                            sc, target, &socket, http, share, barrier, warmup, duration, with_eval,
                        )
                    })?,
            );
        }
        barrier.wait();
        let (mut cpu, mut peer_cpu, mut rss) = (None, None, None);
        if self.server.is_some() || self.peer.is_some() {
            let sample = |pid: Option<u32>| pid.and_then(cpu_ns);
            std::thread::sleep(self.warmup);
            let before = (sample(self.server), sample(self.peer));
            std::thread::sleep(self.duration);
            let after = (sample(self.server), sample(self.peer));
            rss = self.server.and_then(|pid| rss_mb(pid).ok());
            cpu = before.0.zip(after.0).map(|(a, b)| cpu_between(&a, &b));
            peer_cpu = before.1.zip(after.1).map(|(a, b)| cpu_between(&a, &b));
        }
        let mut total = Tally::new(self.sc.steps(), self.with_eval);
        total.server_cpu_ns = cpu;
        total.peer_cpu_ns = peer_cpu;
        total.rss_mb = rss;
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(Ok(t)) => {
                    total.window = t.window;
                    total.merge(&t);
                }
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(anyhow!("a load thread panicked")),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// How a connection's messages are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON line each way (the agent, the echo server).
    Line,
    /// HTTP/1.1, kept alive (bao).
    Http,
    /// A 4-byte big-endian length, then the message (ssh-agent).
    Ssh,
}

/// One connection: a Unix socket to the agent or the echo server (one JSON line each way) or to
/// ssh-agent, or TCP to bao (HTTP/1.1, kept alive).
pub struct Conn {
    pub reader: tokio::io::BufReader<Box<dyn tokio::io::AsyncRead + Unpin>>,
    pub writer: Box<dyn tokio::io::AsyncWrite + Unpin>,
    pub cap: String,
    pub framing: Framing,
}

pub async fn exchange(c: &mut Conn, line: &[u8], answer: &mut Vec<u8>) -> Result<()> {
    c.writer.write_all(line).await?;
    answer.clear();
    let read = async {
        match c.framing {
            Framing::Http => read_http(&mut c.reader, answer).await,
            Framing::Ssh => read_ssh(&mut c.reader, answer).await,
            Framing::Line => match c.reader.read_until(b'\n', answer).await? {
                0 => bail!("connection closed"),
                _ => Ok(()),
            },
        }
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => bail!("no answer within {READ_TIMEOUT:?}"),
    }
}

/// Reads one HTTP/1.1 response, head and body, into `answer`; the body must be framed by
/// `Content-Length` (bao's are).
pub async fn read_http(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    answer: &mut Vec<u8>,
) -> Result<()> {
    let mut length = None;
    loop {
        let start = answer.len();
        if reader.read_until(b'\n', answer).await? == 0 {
            bail!("connection closed");
        }
        let line = String::from_utf8_lossy(&answer[start..]).to_ascii_lowercase();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().context("Content-Length")?);
        }
        if line.starts_with("transfer-encoding:") {
            bail!("an HTTP answer with {}", line.trim());
        }
    }
    let length = length.ok_or_else(|| anyhow!("an HTTP answer without Content-Length"))?;
    let start = answer.len();
    answer.resize(start + length, 0);
    tokio::io::AsyncReadExt::read_exact(reader, &mut answer[start..]).await?;
    Ok(())
}

/// Reads one ssh-agent message, its length included, into `answer`.
async fn read_ssh(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    answer: &mut Vec<u8>,
) -> Result<()> {
    let mut len = [0u8; 4];
    tokio::io::AsyncReadExt::read_exact(reader, &mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > ssh_agent::MAX_ANSWER {
        bail!("ssh-agent sent a message of {n} bytes");
    }
    answer.extend_from_slice(&len);
    answer.resize(4 + n, 0);
    tokio::io::AsyncReadExt::read_exact(reader, &mut answer[4..]).await?;
    Ok(())
}

/// Connects and, on the agent, gets the connection's capability.
pub async fn open(
    sc: Scenario,
    target: Target,
    socket: &Path,
    http: Option<&HttpRead>,
) -> Result<Conn> {
    let mut c = match (target, http) {
        (Target::Bao, Some(h)) => {
            let stream = tokio::net::TcpStream::connect(&h.addr)
                .await
                .with_context(|| format!("connect {}", h.addr))?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Conn {
                reader: tokio::io::BufReader::new(Box::new(r)),
                writer: Box::new(w),
                cap: String::new(),
                framing: Framing::Http,
            }
        }
        (Target::Bao, None) => bail!("no HTTP request to send"),
        _ => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .with_context(|| format!("connect {}", socket.display()))?;
            let (r, w) = stream.into_split();
            Conn {
                reader: tokio::io::BufReader::new(Box::new(r)),
                writer: Box::new(w),
                cap: FAKE_CAP.to_string(),
                framing: if target == Target::SshAgent {
                    Framing::Ssh
                } else {
                    Framing::Line
                },
            }
        }
    };
    let redeems = matches!(
        sc,
        Scenario::Validate
            | Scenario::SecretRead
            | Scenario::SecretReadAlways
            | Scenario::SecretReadVault
            | Scenario::SecretReadVaultCached
    );
    if target == Target::Agent && redeems {
        let mut answer = Vec::new();
        exchange(&mut c, &Scenario::Grant.request(0, "", ""), &mut answer).await?;
        c.cap = cap_id(&answer).ok_or_else(|| {
            anyhow!(
                "setup grant refused: {}",
                String::from_utf8_lossy(&answer).trim()
            )
        })?;
    }
    Ok(c)
}

#[allow(clippy::too_many_arguments)]
pub fn client_thread(
    sc: Scenario,
    target: Target,
    socket: &Path,
    http: Option<Arc<HttpRead>>,
    conns: usize,
    barrier: Arc<Barrier>,
    warmup: Duration,
    duration: Duration,
    with_eval: bool,
) -> Result<Tally> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let opened = futures_util::future::join_all(
            (0..conns).map(|_| open(sc, target, socket, http.as_deref())),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>();
        // Wait for every thread even when this one failed, so that none waits forever.
        barrier.wait();
        let opened = opened?;
        let start = Instant::now();
        let (warm_end, end) = (start + warmup, start + warmup + duration);
        let tally = Rc::new(RefCell::new(Tally::new(sc.steps(), with_eval)));
        let mut tasks = Vec::new();
        for mut c in opened {
            let tally = tally.clone();
            // bao's and ssh-agent's requests are the same every time: built once.
            let fixed = match target {
                Target::SshAgent => Some(ssh_agent::REQUEST_IDENTITIES.to_vec()),
                _ => http.as_ref().map(|h| h.request.clone()),
            };
            tasks.push(tokio::task::spawn_local(async move {
                let mut answer = Vec::with_capacity(4096);
                let mut last = FAKE_CAP.to_string();
                let mut step = 0;
                while Instant::now() < end {
                    let built;
                    let line: &[u8] = match &fixed {
                        Some(request) => request,
                        None => {
                            built = sc.request(step, &c.cap, &last);
                            &built
                        }
                    };
                    let sent = Instant::now();
                    if let Err(e) = exchange(&mut c, line, &mut answer).await {
                        tally.borrow_mut().error(format!("{e:#}"));
                        return;
                    }
                    let done = Instant::now();
                    let mut t = tally.borrow_mut();
                    t.sizes[step].0 += answer.len() as u64;
                    t.sizes[step].1 += 1;
                    if done >= warm_end && done <= end {
                        t.requests += 1;
                        let ns = u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX);
                        t.hist.saturating_record(ns.max(1));
                        if target != Target::Echo && !sc.ok(step, &answer) {
                            t.error(String::from_utf8_lossy(&answer).trim().to_string());
                        }
                        if let Some(ev) = t.eval.as_mut() {
                            if let Some(ns) = number_field(&answer, "evaluationTime") {
                                ev.saturating_record(ns.max(1));
                            }
                        }
                    }
                    if sc == Scenario::GrantRevoke && step == 0 && target == Target::Agent {
                        last = cap_id(&answer).unwrap_or_else(|| FAKE_CAP.to_string());
                    }
                    step = (step + 1) % sc.steps();
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let mut t = Rc::try_unwrap(tally)
            .map_err(|_| anyhow!("a connection task outlived the cell"))?
            .into_inner();
        t.window = duration;
        Ok(t)
    })
}
