//! Group commit: one thread owns a durable sink (the audit log, the capability store) and
//! writes whatever has been queued since its last write as one batch — one write, one
//! `fdatasync` — then tells every waiter. Concurrent requests share a sync: durability costs each
//! a little latency, not the agent its throughput.
//!
//! When many clients are being answered at once, a batch waits a little for more before it is
//! written (`audit.group_commit_delay_us`), as PostgreSQL's `commit_delay` does and Linux's
//! jbd2 journal batches synchronous commits: if at least [`MIN_OTHERS`] other requests are in
//! flight ([`Busy`]), and at least as many as the batch holds jobs, it waits the average time a
//! write has taken, at most the configured delay, and takes what arrived meanwhile. A lone
//! client never waits, nor do a few clients that are all in the batch already. Fewer, larger
//! batches pay where the CPU is short and each sync's own work competes with the requests
//! (durable grants at 64 connections on two CPUs: 12 % more a second, 13 % less CPU each);
//! where the disk alone is the limit a wait costs throughput, so it is on by default only with
//! `audit.sync: periodic` (docs/benchmarks.md). A job waits at most about the delay longer.
//!
//! Jobs run in the order they were queued; a [`Committer::run`] job (compaction, rotation) runs
//! between the writes queued before and after it. [`Committer::idle`] says whether any job is
//! queued or running, so that a caller that owns the sink too may write it itself, in order,
//! when nothing is in between (see [`crate::actors::audit_writer`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Something batches of items can be written to durably.
pub trait Sink: Send + 'static {
    /// What is written.
    type Item: Send + 'static;
    /// Writes `items` durably, all or nothing.
    fn write(&mut self, items: &[Self::Item]) -> Result<(), String>;
}

/// A result to wait for.
pub type Pending = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Control<S> = Box<dyn FnOnce(&mut S) -> Result<(), String> + Send>;

enum Job<S: Sink> {
    Write(Vec<S::Item>, oneshot::Sender<Result<(), String>>),
    Run(Control<S>, oneshot::Sender<Result<(), String>>),
}

/// The handle to a sink's writer thread.
pub struct Committer<S: Sink> {
    jobs: mpsc::Sender<Job<S>>,
    counts: Arc<Counts>,
}

/// Jobs queued or running, and jobs taken so far.
#[derive(Default)]
struct Counts {
    pending: AtomicUsize,
    taken: AtomicU64,
}

impl<S: Sink> Clone for Committer<S> {
    fn clone(&self) -> Self {
        Committer {
            jobs: self.jobs.clone(),
            counts: self.counts.clone(),
        }
    }
}

/// Most items written in one batch.
const MAX_BATCH: usize = 4096;

fn stopped() -> String {
    "the writer thread has stopped".to_string()
}

impl<S: Sink> Committer<S> {
    /// Starts the writer thread `name` owning `sink`, batching as `batching` says.
    pub fn start(name: &str, mut sink: S, batching: Batching) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job<S>>();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut pace = Pace::new(batching.max_delay);
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    // Only batches with requests' records and room left wait: a periodic
                    // sync or a seal (`run` jobs) is not held back. The thread sleeps the whole
                    // wait, then takes what came: one wake-up per batch, not one per job as a
                    // receive with a timeout would be.
                    let writes = jobs.iter().any(|j| matches!(j, Job::Write(..)));
                    let wait = if writes && jobs.len() < MAX_BATCH {
                        pace.wait(jobs.len(), (batching.in_flight)())
                    } else {
                        None
                    };
                    if let Some(wait) = wait {
                        std::thread::sleep(wait);
                        while jobs.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(j) => jobs.push(j),
                                Err(_) => break,
                            }
                        }
                    }
                    c.taken.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                    let mut items = Vec::new();
                    let mut waiters = Vec::new();
                    for job in jobs {
                        match job {
                            Job::Write(mut batch, done) => {
                                items.append(&mut batch);
                                waiters.push(done);
                            }
                            Job::Run(f, done) => {
                                flush(&mut sink, &mut items, &mut waiters, &c);
                                let result = f(&mut sink);
                                c.pending.fetch_sub(1, Ordering::AcqRel);
                                let _ = done.send(result);
                            }
                        }
                    }
                    let began = Instant::now();
                    if flush(&mut sink, &mut items, &mut waiters, &c) {
                        pace.wrote(began.elapsed());
                    }
                }
            })?;
        Ok(Committer { jobs: tx, counts })
    }

    /// Queues `items`; the result resolves once they are durable (or failed).
    pub fn submit(&self, items: Vec<S::Item>) -> Pending {
        let (done, wait) = oneshot::channel();
        self.queue(Job::Write(items, done), wait)
    }

    /// Runs `f` on the sink in queue order (after everything queued before it).
    pub fn run(&self, f: impl FnOnce(&mut S) -> Result<(), String> + Send + 'static) -> Pending {
        let (done, wait) = oneshot::channel();
        self.queue(Job::Run(Box::new(f), done), wait)
    }

    fn queue(&self, job: Job<S>, wait: oneshot::Receiver<Result<(), String>>) -> Pending {
        self.counts.pending.fetch_add(1, Ordering::AcqRel);
        if self.jobs.send(job).is_err() {
            self.counts.pending.fetch_sub(1, Ordering::AcqRel);
            return Box::pin(async { Err(stopped()) });
        }
        Box::pin(async move { wait.await.unwrap_or_else(|_| Err(stopped())) })
    }

    /// Whether no job is queued or running: whatever was queued has been done (and answered
    /// or about to be).
    pub fn idle(&self) -> bool {
        self.counts.pending.load(Ordering::Acquire) == 0
    }

    /// Jobs the writer thread has taken so far.
    pub fn jobs_taken(&self) -> u64 {
        self.counts.taken.load(Ordering::Relaxed)
    }
}

/// Writes what `items` holds, if anything, and answers `waiters`; whether the sink was written.
fn flush<S: Sink>(
    sink: &mut S,
    items: &mut Vec<S::Item>,
    waiters: &mut Vec<oneshot::Sender<Result<(), String>>>,
    counts: &Counts,
) -> bool {
    if waiters.is_empty() {
        return false;
    }
    let wrote = !items.is_empty();
    let result = if wrote { sink.write(items) } else { Ok(()) };
    items.clear();
    counts.pending.fetch_sub(waiters.len(), Ordering::AcqRel);
    for w in waiters.drain(..) {
        let _ = w.send(result.clone());
    }
    wrote
}

/// Requests being answered now, all connections together: the writers that may still join a
/// batch. A request counts from its frame's decoding to its answer ([`Busy::enter`] in
/// [`crate::actors::dispatch::handle_frame`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One request being answered, counted in [`Busy::count`] until dropped.
#[derive(Debug)]
pub struct Busy(());

impl Busy {
    /// Counts one more request in flight.
    pub fn enter() -> Busy {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Busy(())
    }

    /// Requests in flight now.
    pub fn count() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Fewest other requests in flight for a batch to wait for them (PostgreSQL's
/// `commit_siblings`): a few clients in a closed loop reach the batch by themselves, and
/// waiting with them cost up to a fifth of the durable grants at 8 connections
/// (docs/benchmarks.md).
pub const MIN_OTHERS: usize = 16;

/// How a writer thread batches: at most `max_delay` of waiting for more jobs, decided on the
/// number of requests `in_flight` returns.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// The longest wait; zero never waits.
    pub max_delay: Duration,
    /// Requests in flight now ([`Busy::count`] in the agent).
    pub in_flight: fn() -> usize,
}

impl Batching {
    /// Never waits: each batch is what was queued when the thread came to it.
    pub fn off() -> Batching {
        Batching {
            max_delay: Duration::ZERO,
            in_flight: || 0,
        }
    }

    /// Waits up to `max_delay`, deciding on the agent's requests in flight.
    pub fn up_to(max_delay: Duration) -> Batching {
        Batching {
            max_delay,
            in_flight: Busy::count,
        }
    }
}

/// How long a batch waits for more jobs (see the module header). Plain arithmetic on what the
/// writer thread saw, so that it is tested without threads or clocks.
#[derive(Debug, Clone)]
pub struct Pace {
    max_delay: Duration,
    /// Average time of a write (an exponential average over the last writes).
    average_write: Duration,
}

impl Pace {
    /// No waiting until a write has been timed.
    pub fn new(max_delay: Duration) -> Pace {
        Pace {
            max_delay,
            average_write: Duration::ZERO,
        }
    }

    /// How long a batch of `jobs` jobs waits for more while `in_flight` requests are being
    /// answered (those in the batch among them); `None`: it does not wait.
    pub fn wait(&self, jobs: usize, in_flight: usize) -> Option<Duration> {
        let others = in_flight.saturating_sub(jobs);
        if jobs == 0 || others < jobs.max(MIN_OTHERS) {
            return None;
        }
        Some(self.average_write.min(self.max_delay)).filter(|w| !w.is_zero())
    }

    /// A write took `took`.
    pub fn wrote(&mut self, took: Duration) {
        // A single write of seconds (a stalled disk) must not make every later batch wait for
        // long: the wait is capped by max_delay anyway; the average moves by an eighth.
        self.average_write = if self.average_write.is_zero() {
            took
        } else {
            (self.average_write * 7 + took) / 8
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct Recorder(Arc<Mutex<Vec<Vec<u32>>>>);

    impl Sink for Recorder {
        type Item = u32;
        fn write(&mut self, items: &[u32]) -> Result<(), String> {
            if items.contains(&13) {
                return Err("unlucky".into());
            }
            self.0.lock().unwrap().push(items.to_vec());
            Ok(())
        }
    }

    #[actix_rt::test]
    async fn batches_in_order_and_reports_failures_to_every_waiter_of_the_batch() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = Committer::start("test-writer", Recorder(log.clone()), Batching::off()).unwrap();
        let waits: Vec<Pending> = (100..150).map(|i| c.submit(vec![i])).collect();
        for w in waits {
            w.await.unwrap();
        }
        let all: Vec<u32> = log.lock().unwrap().iter().flatten().copied().collect();
        assert_eq!(all, (100..150).collect::<Vec<_>>(), "order is kept");
        assert!(c.submit(vec![13]).await.is_err());
        let marker = Arc::new(Mutex::new(false));
        let m = marker.clone();
        c.run(move |_| {
            *m.lock().unwrap() = true;
            Ok(())
        })
        .await
        .unwrap();
        assert!(*marker.lock().unwrap());
        assert!(c.submit(vec![]).await.is_ok());
    }

    #[actix_rt::test]
    async fn idle_once_every_queued_job_is_done() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = Committer::start("test-writer", Recorder(log), Batching::off()).unwrap();
        assert!(c.idle());
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let blocked = c.run(move |_| wait.recv().map_err(|e| e.to_string()));
        let queued = c.submit(vec![1]);
        assert!(!c.idle(), "a job runs, another is queued");
        go.send(()).unwrap();
        blocked.await.unwrap();
        queued.await.unwrap();
        assert!(c.idle());
        assert_eq!(c.jobs_taken(), 2);
    }

    #[test]
    fn a_batch_waits_only_with_enough_others_in_flight_and_a_timed_write() {
        let max = Duration::from_micros(200);
        let mut pace = Pace::new(max);
        assert_eq!(pace.wait(1, 100), None, "no write timed yet");
        pace.wrote(Duration::from_micros(500));
        assert_eq!(pace.wait(1, 1), None, "a lone client");
        assert_eq!(pace.wait(8, 8), None, "everyone is in the batch");
        assert_eq!(pace.wait(4, 4 + MIN_OTHERS - 1), None, "too few others");
        assert_eq!(
            pace.wait(4, 4 + MIN_OTHERS),
            Some(max),
            "capped by the delay"
        );
        assert_eq!(pace.wait(20, 39), None, "fewer others than jobs");
        assert_eq!(pace.wait(20, 40), Some(max));
        assert_eq!(pace.wait(0, 100), None);
        // The average write, when shorter than the delay; it moves by an eighth.
        let mut fast = Pace::new(max);
        fast.wrote(Duration::from_micros(80));
        assert_eq!(fast.wait(1, 64), Some(Duration::from_micros(80)));
        fast.wrote(Duration::from_micros(160));
        assert_eq!(fast.wait(1, 64), Some(Duration::from_micros(90)));
        // Off: never waits.
        let mut off = Pace::new(Duration::ZERO);
        off.wrote(Duration::from_micros(500));
        assert_eq!(off.wait(1, 1000), None);
    }

    /// A writer whose writes take 100 ms: a job that arrives 5 ms after another joins its
    /// batch when many requests are in flight, and gets a batch of its own when none are.
    async fn batches_of_two_jobs_5_ms_apart(batching: Batching) -> Vec<Vec<u32>> {
        struct Slow(Arc<Mutex<Vec<Vec<u32>>>>);
        impl Sink for Slow {
            type Item = u32;
            fn write(&mut self, items: &[u32]) -> Result<(), String> {
                std::thread::sleep(Duration::from_millis(100));
                self.0.lock().unwrap().push(items.to_vec());
                Ok(())
            }
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = Committer::start("test-writer", Slow(log.clone()), batching).unwrap();
        // Times a first write (the wait is the average write, at most the delay).
        c.submit(vec![1]).await.unwrap();
        let first = c.submit(vec![2]);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = c.submit(vec![3]);
        first.await.unwrap();
        second.await.unwrap();
        log.lock().unwrap().clone()
    }

    #[actix_rt::test]
    async fn with_many_requests_in_flight_a_batch_waits_for_the_next_job() {
        let busy = Batching {
            max_delay: Duration::from_millis(300),
            in_flight: || 64,
        };
        assert_eq!(
            batches_of_two_jobs_5_ms_apart(busy).await,
            vec![vec![1], vec![2, 3]]
        );
        let alone = Batching {
            max_delay: Duration::from_millis(300),
            in_flight: || 1,
        };
        assert_eq!(
            batches_of_two_jobs_5_ms_apart(alone).await,
            vec![vec![1], vec![2], vec![3]]
        );
        assert_eq!(
            batches_of_two_jobs_5_ms_apart(Batching::off()).await,
            vec![vec![1], vec![2], vec![3]]
        );
    }

    #[test]
    fn busy_counts_requests_until_dropped() {
        let a = Busy::enter();
        let b = Busy::enter();
        // Other tests may count requests of their own meanwhile: at least these two.
        assert!(Busy::count() >= 2);
        drop(a);
        drop(b);
    }
}
