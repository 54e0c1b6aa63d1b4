//! The disk floor: what the file system under `--dir` takes for one `write` + `fdatasync` of
//! the bytes one `secret_read` adds to the audit log, measured in the same run as the agent's
//! `secret_read` with `audit.sync: always`, next to its audit log. No agent can answer a read
//! whose records must be on disk first faster than that plus its socket's round trip (the echo
//! baseline): the issue-18 target is `secret_read` p50 ≤ 1.25 × (floor p50 + echo p50).
//!
//! [`record_bytes`] sizes the write from what the agent wrote (the growth of its audit log over
//! single reads). [`paired`] then alternates, round after round, one `secret_read` on the agent
//! (a connection of its own) and one append of that many bytes to a file of its own in the same
//! directory followed by `fdatasync` (the file grows as the log does, so each sync also carries
//! the new size, as the agent's do). Pairing them matters: on a shared machine the time of an
//! `fdatasync` moves from one second to the next (0.15 to 4 ms on the development VM), and only
//! rounds side by side meet the same disk. So does their order: there a sync right after
//! another one is the fast kind, so each of the two follows the other as often as itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::agent::{Env, SyncClient};
use crate::driver::histogram;
use crate::report::{fs_type, round1};
use crate::scenario::{Scenario, cap_id};
use crate::{READ_TIMEOUT, RESOURCE, SECRET_VALUE};

/// Rounds before the measured ones (the file's first blocks, the page cache).
const WARMUP_ROUNDS: usize = 10;

/// What [`paired`] found.
pub struct Floor {
    /// The bytes of each write.
    pub bytes: usize,
    /// `write` + `fdatasync` time of each measured round, nanoseconds.
    pub hist: Histogram<u64>,
    /// The agent's `secret_read` in the same rounds, nanoseconds.
    pub read: Histogram<u64>,
    /// The file system's type.
    pub fs: String,
}

impl Floor {
    /// The floor's latency at quantile `q`, microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// The paired reads' latency at quantile `q`, microseconds.
    pub fn read_us(&self, q: f64) -> f64 {
        self.read.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn json(&self) -> Value {
        json!({
            "bytes": self.bytes,
            "rounds": self.hist.len(),
            "filesystem": self.fs,
            "p50_us": round1(self.us(0.5)),
            "p90_us": round1(self.us(0.9)),
            "p99_us": round1(self.us(0.99)),
            "paired_secret_read_p50_us": round1(self.read_us(0.5)),
            "paired_secret_read_p99_us": round1(self.read_us(0.99)),
        })
    }
}

/// The bytes one `secret_read` adds to the audit log of `env`'s running agent, whose
/// `audit.sync` must be `always` (so that its records are in the file when it answers): the
/// median growth over `reads` reads, one at a time (a seal or summary written in between moves
/// one of them, not the median).
pub fn record_bytes(env: &Env, reads: usize) -> Result<usize> {
    if env.sync != "always" {
        bail!(
            "the disk floor is sized on an agent with audit.sync always, not {}",
            env.sync
        );
    }
    let mut c = SyncClient::connect(&env.socket)?;
    let cap = c.grant(RESOURCE, &["read"])?;
    let mut growth = Vec::with_capacity(reads);
    for _ in 0..reads.max(1) {
        let before = env.audit_bytes();
        let r = c.call("secret_read", json!({ "capability_id": cap }))?;
        if r["payload"]["data"]["password"] != SECRET_VALUE {
            bail!("secret_read failed while sizing the disk floor: {r}");
        }
        growth.push(env.audit_bytes().saturating_sub(before));
    }
    growth.sort_unstable();
    let median = growth[growth.len() / 2];
    if median == 0 {
        return Err(anyhow!(
            "the audit log did not grow with a secret_read (audit.sync {})",
            env.sync
        ));
    }
    Ok(median as usize)
}

/// One request line and its answer, timed.
fn exchange(
    stream: &mut UnixStream,
    reader: &mut impl BufRead,
    line: &[u8],
) -> Result<(u64, Vec<u8>)> {
    let t0 = Instant::now();
    stream.write_all(line)?;
    let mut answer = Vec::with_capacity(1024);
    if reader.read_until(b'\n', &mut answer)? == 0 {
        bail!("the agent closed the connection");
    }
    Ok((
        u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX),
        answer,
    ))
}

/// Alternates one `secret_read` on `env`'s agent (a new connection, the load clients' request
/// bytes, each answer checked) and one append of `bytes` bytes (a line of JSON's size) to a new
/// file beside its audit log followed by `fdatasync`, in the order R S S R R S …: [`WARMUP_ROUNDS`], then `rounds` rounds or
/// until `budget` has passed (at least 20 measured rounds). The file is removed afterwards.
pub fn paired(env: &Env, bytes: usize, rounds: usize, budget: Duration) -> Result<Floor> {
    let mut stream = UnixStream::connect(&env.socket)
        .with_context(|| format!("connect {}", env.socket.display()))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let sc = Scenario::SecretReadAlways;
    let (_, granted) = exchange(
        &mut stream,
        &mut reader,
        &Scenario::Grant.request(0, "", ""),
    )?;
    let cap = cap_id(&granted).ok_or_else(|| {
        anyhow!(
            "setup grant refused: {}",
            String::from_utf8_lossy(&granted).trim()
        )
    })?;
    let request = sc.request(0, &cap, "");

    let dir = env.audit_file.parent().unwrap_or(env.path());
    let path = dir.join("disk-floor.bin");
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let mut line = vec![b'x'; bytes.max(1)];
    if let Some(last) = line.last_mut() {
        *last = b'\n';
    }
    let (mut hist, mut read) = (histogram(), histogram());
    let started = Instant::now();
    let mut read_once = || -> Result<u64> {
        let (ns, answer) = exchange(&mut stream, &mut reader, &request)?;
        if !sc.ok(0, &answer) {
            bail!(
                "secret_read failed beside the disk floor: {}",
                String::from_utf8_lossy(&answer).trim()
            );
        }
        Ok(ns)
    };
    let mut sync_once = || -> Result<u64> {
        let t0 = Instant::now();
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("write + fdatasync {}", path.display()))?;
        Ok(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    };
    let mut rounds_done = || -> Result<()> {
        for round in 0..WARMUP_ROUNDS + rounds {
            // Read then sync, then sync then read: each of the two follows the other as often
            // as itself (a sync right after another one is faster here).
            let (read_ns, sync_ns) = if round % 2 == 0 {
                let r = read_once()?;
                (r, sync_once()?)
            } else {
                let f = sync_once()?;
                (read_once()?, f)
            };
            if round >= WARMUP_ROUNDS {
                hist.saturating_record(sync_ns.max(1));
                read.saturating_record(read_ns.max(1));
                if hist.len() >= 20 && started.elapsed() > budget {
                    break;
                }
            }
        }
        Ok(())
    };
    let result = rounds_done();
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?;
    Ok(Floor {
        bytes,
        hist,
        read,
        fs: fs_type(dir),
    })
}
