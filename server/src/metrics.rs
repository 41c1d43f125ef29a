//! Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Documents held in memory.
    pub documents_loaded: Gauge,
    /// Frames received.
    pub messages_in: Counter,
    /// Frames sent.
    pub messages_out: Counter,
    /// Bytes received in frames.
    pub bytes_in: Counter,
    /// Bytes sent in frames.
    pub bytes_out: Counter,
    /// Connections closed for bad input.
    pub rejected: Counter,
    /// Connections dropped because their send queue was full.
    pub slow_consumers: Counter,
    /// Seconds per group commit (write and fsync).
    pub store_write_seconds: Histogram,
    /// Writes per group commit.
    pub store_batch_writes: Histogram,
    /// fsyncs of the store.
    pub fsyncs: Counter,
    /// Documents quarantined because they do not load.
    pub quarantined: Counter,
    /// Reads, writes and creations refused by access rules.
    pub refused: Counter,
    /// Connection attempts refused for a missing or bad token.
    pub auth_failures: Counter,
    /// Times a connection or user was slowed by the rate limit.
    pub throttled: Counter,
    /// With PostgreSQL: what the database adds (registered only then).
    pub database: DatabaseMetrics,
}

/// What a server on PostgreSQL reports beyond the store's commit times (which
/// `store_write_seconds` holds for every store).
pub struct DatabaseMetrics {
    /// Connections the pool holds open.
    pub pool_connections: Gauge,
    /// Of those, in use by a request.
    pub pool_in_use: Gauge,
    /// Requests waiting for a connection.
    pub pool_waiting: Gauge,
    /// Seconds from another server's commit to its notification arriving here
    /// (by the two servers' clocks).
    pub notification_lag_seconds: Histogram,
    /// Notifications from other servers.
    pub notifications: Counter,
    /// Reads the pool's state when the metrics are rendered.
    pool_probe: std::sync::OnceLock<Box<dyn Fn() -> PoolUse + Send + Sync>>,
}

/// How busy a connection pool is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open.
    pub connections: usize,
    /// Connections idle.
    pub available: usize,
    /// Requests waiting for one.
    pub waiting: usize,
}

impl DatabaseMetrics {
    fn new() -> Self {
        Self {
            pool_connections: Gauge::default(),
            pool_in_use: Gauge::default(),
            pool_waiting: Gauge::default(),
            notification_lag_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            notifications: Counter::default(),
            pool_probe: std::sync::OnceLock::new(),
        }
    }

    /// Read the pool's state with `probe` each time the metrics are rendered.
    pub fn probe_pool(&self, probe: impl Fn() -> PoolUse + Send + Sync + 'static) {
        let _ = self.pool_probe.set(Box::new(probe));
    }

    /// Note a notification sent at `sent_us` (microseconds since the epoch, by the
    /// sender's clock).
    pub fn notified(&self, sent_us: u64) {
        self.notifications.inc();
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        // A sender whose clock is ahead gives a negative lag: counted as none.
        self.notification_lag_seconds
            .observe(now_us.saturating_sub(sent_us) as f64 / 1e6);
    }

    fn refresh(&self) {
        if let Some(probe) = self.pool_probe.get() {
            let now = probe();
            self.pool_connections.set(now.connections as i64);
            self.pool_in_use
                .set(now.connections.saturating_sub(now.available) as i64);
            self.pool_waiting.set(now.waiting as i64);
        }
    }

    fn register(&self, registry: &mut Registry) {
        let db = registry.sub_registry_with_prefix("db");
        db.register(
            "pool_connections",
            "Connections the PostgreSQL pool holds open",
            self.pool_connections.clone(),
        );
        db.register(
            "pool_in_use",
            "PostgreSQL connections in use",
            self.pool_in_use.clone(),
        );
        db.register(
            "pool_waiting",
            "Requests waiting for a PostgreSQL connection",
            self.pool_waiting.clone(),
        );
        db.register(
            "notification_lag_seconds",
            "Time from another server's commit to its notification here, by the two servers' clocks",
            self.notification_lag_seconds.clone(),
        );
        db.register(
            "notifications",
            "Notifications of other servers' commits",
            self.notifications.clone(),
        );
    }
}

impl Metrics {
    /// Register every metric of a server on the embedded store.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// Register every metric of a server on PostgreSQL, [`DatabaseMetrics`] too.
    pub fn with_database() -> Self {
        Self::build(true)
    }

    fn build(database: bool) -> Self {
        let mut registry = Registry::with_prefix("coachsync");
        let m = Metrics {
            connections: Gauge::default(),
            documents_loaded: Gauge::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            rejected: Counter::default(),
            slow_consumers: Counter::default(),
            store_write_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            store_batch_writes: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            fsyncs: Counter::default(),
            quarantined: Counter::default(),
            refused: Counter::default(),
            auth_failures: Counter::default(),
            throttled: Counter::default(),
            database: DatabaseMetrics::new(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents held in memory",
            m.documents_loaded.clone(),
        );
        registry.register("messages_in", "Frames received", m.messages_in.clone());
        registry.register("messages_out", "Frames sent", m.messages_out.clone());
        registry.register("bytes_in", "Bytes received in frames", m.bytes_in.clone());
        registry.register("bytes_out", "Bytes sent in frames", m.bytes_out.clone());
        registry.register(
            "rejected_connections",
            "Connections closed for bad input",
            m.rejected.clone(),
        );
        registry.register(
            "slow_consumers",
            "Connections dropped with a full send queue",
            m.slow_consumers.clone(),
        );
        registry.register(
            "store_write_seconds",
            "Time per group commit: the write and its fsync, or with PostgreSQL the transaction to its COMMIT",
            m.store_write_seconds.clone(),
        );
        registry.register(
            "store_batch_writes",
            "Writes per group commit",
            m.store_batch_writes.clone(),
        );
        registry.register("fsyncs", "fsyncs of the store", m.fsyncs.clone());
        registry.register(
            "quarantined_documents",
            "Documents that do not load, put aside",
            m.quarantined.clone(),
        );
        registry.register(
            "refused_access",
            "Reads, writes and creations refused by access rules",
            m.refused.clone(),
        );
        registry.register(
            "auth_failures",
            "Connection attempts refused for a missing or bad token",
            m.auth_failures.clone(),
        );
        registry.register(
            "throttled",
            "Times a connection or user was slowed by the rate limit",
            m.throttled.clone(),
        );
        if database {
            m.database.register(&mut registry);
        }
        Metrics { registry, ..m }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        self.database.refresh();
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
