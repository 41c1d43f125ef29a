//! The core's log lines, delivered to the app's logger.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use crate::coachsync_error::CoachsyncError;
use crate::dispatcher::dispatch;

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Things that went wrong and were handled.
    Warn,
    /// What an operator would want to know.
    Info,
    /// Detail for developers.
    Debug,
    /// Everything.
    Trace,
}

/// Receives log lines.
#[uniffi::export(callback_interface)]
pub trait Logger: Send + Sync {
    /// One line: its level, where it comes from (a module path), and the message
    /// with its fields. An exception thrown here is dropped (it cannot be logged).
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), CoachsyncError>;
}

static LOGGER: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);
static LEVEL: AtomicU8 = AtomicU8::new(0);

fn level_of(level: &tracing::Level) -> LogLevel {
    match *level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::TRACE => LogLevel::Trace,
    }
}

/// Send the core's log lines at `level` and above to `logger` (replacing any earlier
/// logger). Lines reach it on the bindings' callback thread.
#[uniffi::export]
pub fn set_logger(logger: Box<dyn Logger>, level: LogLevel) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if let Ok(mut slot) = LOGGER.write() {
        *slot = Some(Arc::from(logger));
    }
    LEVEL.store(level as u8 + 1, Ordering::Relaxed);
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(ForeignLayer);
        // An app (or a test harness) may have its own subscriber already; ours then
        // stays out of the way.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

struct ForeignLayer;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let text = format!("{value:?}");
            self.0.insert_str(0, &text);
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ForeignLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let level = level_of(event.metadata().level());
        let enabled = LEVEL.load(Ordering::Relaxed);
        if enabled == 0 || level as u8 + 1 > enabled {
            return;
        }
        let Some(logger) = LOGGER.read().ok().and_then(|l| l.clone()) else {
            return;
        };
        let mut message = Message::default();
        event.record(&mut message);
        let target = event.metadata().target().to_owned();
        dispatch(move || {
            let _ = logger.log(level, target, message.0);
        });
    }
}
