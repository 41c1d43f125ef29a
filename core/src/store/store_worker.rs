//! The store worker: one thread that applies writes in order, as group commits.
//!
//! Writes that arrive while a commit is running wait, and then go together in the
//! next commit, so many connections (or many quick edits) share one fsync. A short
//! window before each commit gathers writes that are about to arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Store, StoreWrite};
use crate::sync::OpId;

/// What one finished group commit reports.
#[derive(Debug)]
pub struct CommitReport {
    /// The operations it carried, in order.
    pub ops: Vec<OpId>,
    /// Whether the batch is durable (a failed batch applied nothing).
    pub result: Result<(), String>,
    /// How many writes the batch held.
    pub writes: usize,
    /// How many submitted batches it merged.
    pub batches: usize,
    /// How long the commit took, fsync included.
    pub elapsed: Duration,
}

/// The handle to the store thread.
pub struct StoreWorker {
    jobs: Option<mpsc::Sender<Vec<(OpId, StoreWrite)>>>,
    thread: Option<JoinHandle<()>>,
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for StoreWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWorker")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl StoreWorker {
    /// Start the thread. `on_commit` runs on it after every commit; the batch counts
    /// as finished (see [`in_flight`](Self::in_flight)) only once it returns, so a
    /// shutdown that waits for zero has every report.
    pub fn start(
        store: Arc<dyn Store>,
        window: Duration,
        on_commit: impl FnMut(CommitReport) + Send + 'static,
    ) -> Self {
        let (jobs, rx) = mpsc::channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = in_flight.clone();
        let thread = std::thread::Builder::new()
            .name("coachsync-store".into())
            .spawn(move || run(store, rx, window, counter, on_commit))
            .expect("spawning the store thread");
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
            in_flight,
        }
    }

    /// Queue writes, to be applied after everything queued before.
    pub fn submit(&self, batch: Vec<(OpId, StoreWrite)>) {
        if let Some(jobs) = &self.jobs {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if jobs.send(batch).is_err() {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                tracing::error!("the store thread is gone; a write was not applied");
            }
        }
    }

    /// Batches submitted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Finish every queued batch and stop the thread.
    pub fn stop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<Vec<(OpId, StoreWrite)>>,
    window: Duration,
    in_flight: Arc<AtomicUsize>,
    mut on_commit: impl FnMut(CommitReport),
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + window;
        loop {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        let n_jobs = jobs.len();
        let (ops, writes): (Vec<OpId>, Vec<StoreWrite>) = jobs.into_iter().flatten().unzip();
        let started = Instant::now();
        let result = store.commit(&writes).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = writes.len(), "group commit failed");
        }
        on_commit(CommitReport {
            ops,
            result,
            writes: writes.len(),
            batches: n_jobs,
            elapsed: started.elapsed(),
        });
        in_flight.fetch_sub(n_jobs, Ordering::SeqCst);
    }
}
