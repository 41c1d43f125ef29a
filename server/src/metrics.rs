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
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Self {
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
            "Time per group commit, write and fsync",
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
        Metrics { registry, ..m }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
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
