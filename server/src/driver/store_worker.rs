//! The store worker: one thread that applies writes in order, as group commits.
//!
//! Writes that arrive while a commit is running wait, and then go together in the
//! next commit, so many connections share one fsync. A short window before each
//! commit gathers writes that are about to arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coachsync_core::store::{Store, StoreWrite};
use coachsync_core::sync::OpId;

use super::{DriverHandle, DriverMsg};
use crate::metrics::Metrics;

/// Work for the store thread.
#[derive(Debug)]
pub enum StoreJob {
    /// Writes to apply, in order.
    Commit(Vec<(OpId, StoreWrite)>),
}

/// The handle to the store thread.
pub struct StoreWorker {
    jobs: Option<std_mpsc::Sender<StoreJob>>,
    thread: Option<JoinHandle<()>>,
    in_flight: Arc<AtomicUsize>,
}

impl StoreWorker {
    /// Start the thread.
    pub fn start(
        store: Arc<dyn Store>,
        driver: DriverHandle,
        metrics: Arc<Metrics>,
        window: Duration,
    ) -> Self {
        let (jobs, rx) = std_mpsc::channel::<StoreJob>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = in_flight.clone();
        let thread = std::thread::Builder::new()
            .name("coachsync-store".into())
            .spawn(move || run(store, rx, driver, metrics, window, counter))
            .expect("spawning the store thread");
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
            in_flight,
        }
    }

    /// Queue a job.
    pub fn submit(&self, job: StoreJob) {
        if let Some(jobs) = &self.jobs {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if jobs.send(job).is_err() {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                tracing::error!("the store thread is gone; a write was not applied");
            }
        }
    }

    /// Jobs submitted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Finish every queued job and stop the thread.
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
    rx: std_mpsc::Receiver<StoreJob>,
    driver: DriverHandle,
    metrics: Arc<Metrics>,
    window: Duration,
    in_flight: Arc<AtomicUsize>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + window;
        loop {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(std_mpsc::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                Err(std_mpsc::TryRecvError::Disconnected) => break,
            }
        }
        let n_jobs = jobs.len();
        let mut ops = Vec::new();
        let mut writes = Vec::new();
        for StoreJob::Commit(batch) in jobs {
            for (op, write) in batch {
                ops.push(op);
                writes.push(write);
            }
        }
        let started = Instant::now();
        let result = store.commit(&writes).map_err(|e| e.to_string());
        metrics
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.store_batch_writes.observe(writes.len() as f64);
        if result.is_ok() {
            metrics.fsyncs.inc();
        } else if let Err(e) = &result {
            tracing::error!(error = %e, writes = writes.len(), "group commit failed");
        }
        // Answer before counting the jobs done, so a shutdown that waits for the count
        // to reach zero has the answers in its inbox.
        let _ = driver.blocking_send(DriverMsg::Committed { ops, result });
        in_flight.fetch_sub(n_jobs, Ordering::SeqCst);
    }
}
