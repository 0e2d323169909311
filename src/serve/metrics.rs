//! What `GET /metrics` shows, in Prometheus' text format (prometheus-client).
//!
//! Labels are only names from the configuration (a source's path, a
//! destination's name) and fixed reasons: never record data, never secrets.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    // 0.25 ms to about 68 min, doubling.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 25))
}

/// Every counter, gauge and histogram of a running server.
pub struct Metrics {
    registry: Registry,
    /// Requests received, by source.
    pub requests: Family<Labels, Counter>,
    /// Requests refused, by source and reason (`not_json`, `too_large`, `spool_full`, …).
    pub refused: Family<Labels, Counter>,
    /// Records in accepted requests, by source.
    pub records_received: Family<Labels, Counter>,
    /// Records the transform emitted, by source.
    pub transformed: Family<Labels, Counter>,
    /// Records the transform dropped, by source.
    pub dropped: Family<Labels, Counter>,
    /// Records dead-lettered, by destination (`-` for a transform failure).
    pub dead_lettered: Family<Labels, Counter>,
    /// Records delivered, by destination.
    pub delivered: Family<Labels, Counter>,
    /// Delivery attempts that will be retried, by destination.
    pub retried: Family<Labels, Counter>,
    /// Delivery attempts that failed for good, by destination.
    pub failed: Family<Labels, Counter>,
    /// Token requests for a destination's OAuth credentials that failed, by destination.
    pub token_failures: Family<Labels, Counter>,
    /// Records queued, by destination.
    pub queue_depth: Family<Labels, Gauge>,
    /// Age of the oldest queued record, by destination.
    pub oldest_age: Family<Labels, Gauge>,
    /// Whether a destination is disabled (after a 410).
    pub disabled: Family<Labels, Gauge>,
    /// Mails and error webhooks sent about failing destinations.
    pub notices: Family<Labels, Counter>,
    /// From request to 2xx (records durable), by source.
    pub accept_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// One delivery request, by destination.
    pub attempt_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// From receipt to delivery, by destination.
    pub end_to_end_seconds: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("xf");
        let requests = Family::default();
        let refused = Family::default();
        let records_received = Family::default();
        let transformed = Family::default();
        let dropped = Family::default();
        let dead_lettered = Family::default();
        let delivered = Family::default();
        let retried = Family::default();
        let failed = Family::default();
        let queue_depth = Family::default();
        let token_failures = Family::default();
        let oldest_age = Family::default();
        let disabled = Family::default();
        let notices = Family::default();
        let accept_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let attempt_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let end_to_end_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        registry.register("requests", "Requests received", requests.clone());
        registry.register(
            "refused_requests",
            "Requests refused, by reason",
            refused.clone(),
        );
        registry.register(
            "records_received",
            "Records in accepted requests",
            records_received.clone(),
        );
        registry.register(
            "records_transformed",
            "Records the transform emitted",
            transformed.clone(),
        );
        registry.register(
            "records_dropped",
            "Records the transform dropped",
            dropped.clone(),
        );
        registry.register(
            "records_dead_lettered",
            "Records dead-lettered",
            dead_lettered.clone(),
        );
        registry.register("records_delivered", "Records delivered", delivered.clone());
        registry.register(
            "delivery_retries",
            "Delivery attempts to be retried",
            retried.clone(),
        );
        registry.register(
            "delivery_failures",
            "Records a destination refused for good",
            failed.clone(),
        );
        registry.register("queue_depth", "Records queued", queue_depth.clone());
        registry.register(
            "token_failures",
            "Token requests for a destination's OAuth credentials that failed",
            token_failures.clone(),
        );
        registry.register(
            "queue_oldest_age_seconds",
            "Age of the oldest queued record",
            oldest_age.clone(),
        );
        registry.register(
            "destination_disabled",
            "1 while a destination is disabled",
            disabled.clone(),
        );
        registry.register(
            "failure_notices",
            "Notices sent about failing destinations",
            notices.clone(),
        );
        registry.register(
            "accept_seconds",
            "From request to durable answer",
            accept_seconds.clone(),
        );
        registry.register(
            "delivery_attempt_seconds",
            "One delivery request",
            attempt_seconds.clone(),
        );
        registry.register(
            "end_to_end_seconds",
            "From receipt to delivery",
            end_to_end_seconds.clone(),
        );
        Metrics {
            token_failures,
            registry,
            requests,
            refused,
            records_received,
            transformed,
            dropped,
            dead_lettered,
            delivered,
            retried,
            failed,
            queue_depth,
            oldest_age,
            disabled,
            notices,
            accept_seconds,
            attempt_seconds,
            end_to_end_seconds,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// What every accepted request of one source counts, looked up once: a
/// family's lookup hashes its labels and takes a lock each time.
#[derive(Clone)]
pub struct SourceCounters {
    pub requests: Counter,
    pub records_received: Counter,
    pub transformed: Counter,
    pub dropped: Counter,
    pub accept_seconds: Histogram,
}

/// What every delivery to one destination counts, looked up once.
#[derive(Clone)]
pub struct DestinationCounters {
    pub delivered: Counter,
    pub attempt_seconds: Histogram,
    pub end_to_end_seconds: Histogram,
}

impl Metrics {
    /// The counters of the source at `path`.
    pub fn source_counters(&self, path: &str) -> SourceCounters {
        let labels = source(path);
        SourceCounters {
            requests: self.requests.get_or_create(&labels).clone(),
            records_received: self.records_received.get_or_create(&labels).clone(),
            transformed: self.transformed.get_or_create(&labels).clone(),
            dropped: self.dropped.get_or_create(&labels).clone(),
            accept_seconds: self.accept_seconds.get_or_create(&labels).clone(),
        }
    }

    /// The counters of the destination `name`.
    pub fn destination_counters(&self, name: &str) -> DestinationCounters {
        let labels = destination(name);
        DestinationCounters {
            delivered: self.delivered.get_or_create(&labels).clone(),
            attempt_seconds: self.attempt_seconds.get_or_create(&labels).clone(),
            end_to_end_seconds: self.end_to_end_seconds.get_or_create(&labels).clone(),
        }
    }
}

/// Labels for a source.
pub fn source(path: &str) -> Labels {
    vec![("source", path.to_string())]
}

/// Labels for a destination.
pub fn destination(name: &str) -> Labels {
    vec![("destination", name.to_string())]
}

/// Labels for a refusal.
pub fn refusal(path: &str, reason: &'static str) -> Labels {
    vec![("source", path.to_string()), ("reason", reason.to_string())]
}
