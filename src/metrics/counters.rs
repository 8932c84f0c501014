//! Kafka's BrokerTopicMetrics as plain counters: one set per topic and one broker-wide.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count (relaxed atomics: a scrape needs no ordering).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        if n != 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Kafka's BrokerTopicMetrics of one topic (or of all topics together).
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Records appended by leader appends of client produce requests.
    pub messages_in: Counter,
    /// Bytes of record batches clients produced.
    pub bytes_in: Counter,
    /// Bytes of record sets sent to consumers (not to follower replicas).
    pub bytes_out: Counter,
    /// Produce requests, counted per partition as Kafka does.
    pub total_produce_requests: Counter,
    /// Fetch requests (consumers and followers), counted per partition.
    pub total_fetch_requests: Counter,
    /// Produce partitions that failed with an unexpected error.
    pub failed_produce_requests: Counter,
    /// Fetch partitions that failed with an unexpected error.
    pub failed_fetch_requests: Counter,
}

/// One family of [`TopicCounters`]: its metric name, help and how to read it.
pub struct CounterFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub read: fn(&TopicCounters) -> u64,
}

/// The families in the order they are exported.
pub const FAMILIES: &[CounterFamily] = &[
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_messagesin_total",
        help: "Records appended from produce requests.",
        read: |c| c.messages_in.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_bytesin_total",
        help: "Bytes of record batches received from producers.",
        read: |c| c.bytes_in.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_bytesout_total",
        help: "Bytes of record sets sent to consumers.",
        read: |c| c.bytes_out.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_totalproducerequests_total",
        help: "Produce requests, per partition.",
        read: |c| c.total_produce_requests.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_totalfetchrequests_total",
        help: "Fetch requests, per partition.",
        read: |c| c.total_fetch_requests.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_failedproducerequests_total",
        help: "Produce requests that failed, per partition.",
        read: |c| c.failed_produce_requests.get(),
    },
    CounterFamily {
        name: "kafka_server_brokertopicmetrics_failedfetchrequests_total",
        help: "Fetch requests that failed, per partition.",
        read: |c| c.failed_fetch_requests.get(),
    },
];
