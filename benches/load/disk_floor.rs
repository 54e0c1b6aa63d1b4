//! The disk floor: what the file system under `--dir` takes for one `write` + `fdatasync` of
//! the bytes one `secret_read` adds to the audit log, measured in the same run as the agent's
//! `secret_read` with `audit.sync: always`, next to its audit log. No agent can answer a read
//! whose records must be on disk first faster than that plus its socket's round trip (the echo
//! baseline): the issue-18 target is `secret_read` p50 ≤ 1.25 × (floor p50 + echo p50).
//!
//! [`record_bytes`] sizes the write from what the agent wrote (the growth of its audit log over
//! single reads); [`measure`] appends that many bytes to a file of its own in the same
//! directory and `fdatasync`s it, round after round (the file grows as the log does, so each
//! sync also carries the new size, as the agent's do). The benchmark measures half the rounds
//! right before the agent's read and half right after, and merges them.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::agent::{Env, SyncClient};
use crate::driver::histogram;
use crate::report::{fs_type, round1};
use crate::{RESOURCE, SECRET_VALUE};

/// Rounds before the measured ones (the file's first blocks, the page cache).
const WARMUP_ROUNDS: usize = 10;

/// What [`measure`] found.
pub struct Floor {
    /// The bytes of each write.
    pub bytes: usize,
    /// `write` + `fdatasync` time of each measured round, nanoseconds.
    pub hist: Histogram<u64>,
    /// The file system's type.
    pub fs: String,
}

impl Floor {
    /// Latency at quantile `q`, microseconds.
    pub fn us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// Adds the rounds of `other` (the same bytes, another moment).
    pub fn merge(&mut self, other: &Floor) {
        let _ = self.hist.add(&other.hist);
    }

    pub fn json(&self) -> Value {
        json!({
            "bytes": self.bytes,
            "rounds": self.hist.len(),
            "filesystem": self.fs,
            "p50_us": round1(self.us(0.5)),
            "p90_us": round1(self.us(0.9)),
            "p99_us": round1(self.us(0.99)),
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

/// Appends `bytes` bytes (a line of JSON's size) to a new file in `dir` and `fdatasync`s it,
/// [`WARMUP_ROUNDS`] and then `rounds` times or until `budget` has passed (at least 20
/// measured rounds); the file is removed afterwards.
pub fn measure(dir: &Path, bytes: usize, rounds: usize, budget: Duration) -> Result<Floor> {
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
    let mut hist = histogram();
    let started = Instant::now();
    let mut result = Ok(());
    for round in 0..WARMUP_ROUNDS + rounds {
        let t0 = Instant::now();
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            result = Err(e).with_context(|| format!("write + fdatasync {}", path.display()));
            break;
        }
        if round >= WARMUP_ROUNDS {
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            hist.saturating_record(ns.max(1));
            if hist.len() >= 20 && started.elapsed() > budget {
                break;
            }
        }
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?;
    Ok(Floor {
        bytes,
        hist,
        fs: fs_type(dir),
    })
}
