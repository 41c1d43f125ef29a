//! Callbacks to the app run on one thread of their own, in order: never on the
//! device's task, so a listener that is slow, or that calls the device again, cannot
//! stall or deadlock syncing.
//!
//! The thread does not catch unwinding: a host runtime may end it with a forced
//! unwind (Python does, to threads that call into it while it shuts down), and
//! catching that aborts the process. A callback that panics (a listener that threw)
//! ends the thread instead; the next callback starts a new one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

fn start() -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let started = std::thread::Builder::new()
        .name("coachsync-callbacks".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the callback thread");
    }
    tx
}

static STOPPED: AtomicBool = AtomicBool::new(false);

fn sender() -> &'static Mutex<mpsc::Sender<Job>> {
    static SENDER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SENDER.get_or_init(|| Mutex::new(start()))
}

/// Stop delivering callbacks, after the one running (waiting at most 2 s for it).
/// A Python app calls it at exit (`atexit.register(coachsync.stop_callbacks)`):
/// Python ends threads that call into it while it shuts down, and a callback
/// running then would abort the process.
#[uniffi::export]
pub fn stop_callbacks() {
    STOPPED.store(true, Ordering::SeqCst);
    let (done, wait) = mpsc::channel();
    let sent = sender()
        .lock()
        .map(|s| {
            s.send(Box::new(move || {
                let _ = done.send(());
            }))
            .is_ok()
        })
        .unwrap_or(false);
    if sent {
        let _ = wait.recv_timeout(Duration::from_secs(2));
    }
}

/// Run `job` on the callback thread, after every job queued before it.
pub(crate) fn dispatch(job: impl FnOnce() + Send + 'static) {
    if STOPPED.load(Ordering::SeqCst) {
        return;
    }
    let mut sender = sender().lock().unwrap_or_else(|p| p.into_inner());
    if let Err(mpsc::SendError(job)) = sender.send(Box::new(job)) {
        // The thread is gone (a callback panicked): start another.
        *sender = start();
        let _ = sender.send(job);
    }
}
