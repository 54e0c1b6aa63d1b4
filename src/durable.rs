//! Group commit: one thread owns a durable sink (the audit log, the capability store) and
//! writes whatever has been queued since its last write as one batch — one write, one
//! `fdatasync` — then tells every waiter. Concurrent requests share a sync: durability costs each
//! a little latency, not the agent its throughput.
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
    /// Starts the writer thread `name` owning `sink`.
    pub fn start(name: &str, mut sink: S) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job<S>>();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
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
                    flush(&mut sink, &mut items, &mut waiters, &c);
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

fn flush<S: Sink>(
    sink: &mut S,
    items: &mut Vec<S::Item>,
    waiters: &mut Vec<oneshot::Sender<Result<(), String>>>,
    counts: &Counts,
) {
    if waiters.is_empty() {
        return;
    }
    let result = if items.is_empty() {
        Ok(())
    } else {
        sink.write(items)
    };
    items.clear();
    counts.pending.fetch_sub(waiters.len(), Ordering::AcqRel);
    for w in waiters.drain(..) {
        let _ = w.send(result.clone());
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
        let c = Committer::start("test-writer", Recorder(log.clone())).unwrap();
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
        let c = Committer::start("test-writer", Recorder(log)).unwrap();
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
}
