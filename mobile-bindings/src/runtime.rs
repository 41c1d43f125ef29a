//! The tokio runtime every device of the process runs on.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// Two workers: a phone has few cores, and a device's work is mostly waiting.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("coachsync")
            .enable_all()
            .build()
            .expect("starting the coachsync runtime")
    })
}

/// Run a future to completion from a foreign thread (never a runtime thread:
/// callbacks reach apps on the dispatcher's thread, so an app may call back in).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    runtime().handle().block_on(future)
}
