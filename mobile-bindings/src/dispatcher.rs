//! Callbacks to the app run on one thread of their own, in order: never on the
//! device's task, so a listener that is slow, or that calls the device again, cannot
//! stall or deadlock syncing.

use std::sync::OnceLock;
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The process's dispatcher.
pub(crate) fn dispatch(job: impl FnOnce() + Send + 'static) {
    static SENDER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let sender = SENDER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("coachsync-callbacks".into())
            .spawn(move || {
                for job in rx {
                    // A listener that panics must not take the others with it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("starting the callback thread");
        tx
    });
    let _ = sender.send(Box::new(job));
}
