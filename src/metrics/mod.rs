//! Broker metrics for Prometheus: counters kept as atomics (Kafka's BrokerTopicMetrics per
//! topic and broker-wide, ISR shrinks and expands, open connections per listener), request
//! time summaries per request type, and the text format they are scraped in. Gauges that
//! describe state (partition counts, log sizes, lag) are computed from the broker at scrape
//! time by whoever renders the page (the HTTP listener), not kept here.
//!
//! One [`Metrics`] per broker. The hot path touches atomics only: a produce or fetch looks its
//! topic's counters up once per topic of the request ([`Metrics::topic`]), and a request's time
//! is two atomic adds into a bucket array chosen by index.

pub mod counters;
pub mod summary;
pub mod text;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;

pub use counters::{Counter, CounterFamily, TopicCounters, FAMILIES};
pub use summary::{Summary, SummarySnapshot};
pub use text::{Exposition, Kind, CONTENT_TYPE};

/// Highest API key a request time is kept for (Kafka's keys stay well below it).
const MAX_API_KEY: usize = 127;
/// Request-time slots past the API keys: Fetch split as Kafka reports it.
const FETCH_CONSUMER: usize = MAX_API_KEY + 1;
const FETCH_FOLLOWER: usize = MAX_API_KEY + 2;
const REQUEST_SLOTS: usize = MAX_API_KEY + 3;

/// The quantiles exported for request times, with their label values (Kafka's 50th, 99th and
/// 999th percentiles as Strimzi's JMX exporter rules name them).
pub const QUANTILES: &[(f64, &str)] = &[(0.5, "0.50"), (0.99, "0.99"), (0.999, "0.999")];

/// Open connections of one listener; decremented when dropped.
pub struct ConnectionGuard(Arc<AtomicI64>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every counter and summary of one broker.
pub struct Metrics {
    epoch: Instant,
    all: TopicCounters,
    topics: DashMap<Arc<str>, Arc<TopicCounters>>,
    /// Request times by API key, then FetchConsumer and FetchFollower; made on first use.
    requests: Vec<OnceLock<Box<Summary>>>,
    /// ISR changes this broker made as a leader.
    pub isr_shrinks: Counter,
    pub isr_expands: Counter,
    connections: Mutex<Vec<(Arc<str>, Arc<AtomicI64>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            epoch: Instant::now(),
            all: TopicCounters::default(),
            topics: DashMap::new(),
            requests: (0..REQUEST_SLOTS).map(|_| OnceLock::new()).collect(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            connections: Mutex::new(Vec::new()),
        }
    }

    /// The broker-wide counters.
    pub fn all_topics(&self) -> &TopicCounters {
        &self.all
    }

    /// The counters of `topic` (made on first use). Look them up once per topic of a request.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(c) = self.topics.get(topic) {
            return c.clone();
        }
        self.topics.entry(Arc::from(topic)).or_default().clone()
    }

    /// Applies `count` to the broker-wide counters and, if given, to a topic's.
    pub fn count(&self, topic: Option<&TopicCounters>, count: impl Fn(&TopicCounters)) {
        count(&self.all);
        if let Some(t) = topic {
            count(t);
        }
    }

    /// Each topic's counters, sorted by name.
    pub fn topics(&self) -> Vec<(Arc<str>, Arc<TopicCounters>)> {
        let mut v: Vec<_> = self
            .topics
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forgets the counters of topics for which `keep` is false (deleted topics).
    pub fn retain_topics(&self, keep: impl Fn(&str) -> bool) {
        self.topics.retain(|name, _| keep(name));
    }

    /// Records a request's total time (from its last byte read to its answer written). Fetch
    /// is kept apart for consumers and followers, as Kafka reports it.
    pub fn request_time(&self, api_key: i16, follower_fetch: bool, elapsed: Duration) {
        let slot = match usize::try_from(api_key) {
            Ok(1) if follower_fetch => FETCH_FOLLOWER,
            Ok(1) => FETCH_CONSUMER,
            Ok(k) if k <= MAX_API_KEY => k,
            _ => return,
        };
        let now = Instant::now();
        self.requests[slot]
            .get_or_init(|| Box::new(Summary::new(self.epoch)))
            .record(elapsed, now);
    }

    /// Each request type seen so far, by Kafka's name, with its summary now.
    pub fn request_times(&self) -> Vec<(String, SummarySnapshot)> {
        let qs: Vec<f64> = QUANTILES.iter().map(|(q, _)| *q).collect();
        let now = Instant::now();
        self.requests
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((request_name(slot)?, s.get()?.snapshot(&qs, now))))
            .collect()
    }

    /// Counts a connection of `listener` until the guard is dropped.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        let gauge = self.listener_gauge(listener);
        gauge.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(gauge)
    }

    /// The open-connection gauge of `listener`, for an acceptor to hold.
    pub fn listener_gauge(&self, listener: &str) -> Arc<AtomicI64> {
        let mut all = self.connections.lock();
        if let Some((_, g)) = all.iter().find(|(name, _)| &**name == listener) {
            return g.clone();
        }
        let g = Arc::new(AtomicI64::new(0));
        all.push((Arc::from(listener), g.clone()));
        g
    }

    /// Open connections per listener.
    pub fn connections(&self) -> Vec<(Arc<str>, i64)> {
        self.connections
            .lock()
            .iter()
            .map(|(name, g)| (name.clone(), g.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Counts a connection on an acceptor's gauge until the guard is dropped.
pub fn connection_opened(gauge: &Arc<AtomicI64>) -> ConnectionGuard {
    gauge.fetch_add(1, Ordering::Relaxed);
    ConnectionGuard(gauge.clone())
}

/// Kafka's name of a request-time slot.
fn request_name(slot: usize) -> Option<String> {
    match slot {
        FETCH_CONSUMER => Some("FetchConsumer".into()),
        FETCH_FOLLOWER => Some("FetchFollower".into()),
        k => ApiKey::try_from(i16::try_from(k).ok()?)
            .ok()
            .map(|key| format!("{key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_counters_add_up_with_the_broker_wide_ones() {
        let m = Metrics::new();
        let a = m.topic("a");
        m.count(Some(&a), |c| c.messages_in.add(3));
        m.count(Some(&m.topic("b")), |c| c.messages_in.add(4));
        m.count(None, |c| c.failed_produce_requests.inc());
        assert_eq!(m.all_topics().messages_in.get(), 7);
        assert_eq!(m.topic("a").messages_in.get(), 3);
        assert_eq!(m.all_topics().failed_produce_requests.get(), 1);
        m.retain_topics(|t| t != "a");
        let names: Vec<_> = m.topics().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![Arc::from("b")]);
    }

    #[test]
    fn request_times_are_named_as_kafka_names_them() {
        let m = Metrics::new();
        m.request_time(0, false, Duration::from_millis(2));
        m.request_time(1, false, Duration::from_millis(2));
        m.request_time(1, true, Duration::from_millis(2));
        m.request_time(-5, false, Duration::from_millis(2));
        let names: Vec<_> = m.request_times().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Produce", "FetchConsumer", "FetchFollower"]);
    }

    #[test]
    fn connections_are_counted_per_listener_until_closed() {
        let m = Metrics::new();
        let a = m.connection_opened("PLAINTEXT");
        let b = m.connection_opened("PLAINTEXT");
        drop(a);
        assert_eq!(m.connections(), vec![(Arc::from("PLAINTEXT"), 1)]);
        drop(b);
        assert_eq!(m.connections(), vec![(Arc::from("PLAINTEXT"), 0)]);
    }
}
