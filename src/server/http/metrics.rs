//! `/metrics`: the broker's counters and summaries, and gauges computed from its state at
//! scrape time, under the names Strimzi's Kafka dashboards query (the JMX exporter's
//! lowercased Kafka MBean names) and kafka_exporter's `kafka_consumergroup_lag`.

use std::collections::HashSet;

use crate::broker::Broker;
use crate::metrics::{Exposition, Kind, FAMILIES, QUANTILES};

pub use crate::metrics::CONTENT_TYPE;

/// The whole page.
pub async fn render(broker: &Broker) -> String {
    let mut page = Exposition::new();
    topic_counters(broker, &mut page);
    request_times(broker, &mut page);
    connections(broker, &mut page);
    isr_changes(broker, &mut page);
    replica_gauges(broker, &mut page);
    controller_gauges(broker, &mut page);
    lag(broker, &mut page).await;
    page.finish()
}

/// Kafka's BrokerTopicMetrics: broker-wide (no label) and per topic. Counters of topics the
/// metadata no longer has (deleted) are dropped first.
fn topic_counters(broker: &Broker, page: &mut Exposition) {
    let metrics = broker.metrics();
    metrics.retain_topics(|t| broker.cluster.topic(t).is_some());
    let topics = metrics.topics();
    for family in FAMILIES {
        page.family(family.name, Kind::Counter, family.help);
        page.sample(family.name, &[], (family.read)(metrics.all_topics()) as f64);
        for (name, counters) in &topics {
            page.sample(
                family.name,
                &[("topic", name)],
                (family.read)(counters) as f64,
            );
        }
    }
}

/// Request total time per request type: quantiles over the last minute or so, in ms.
fn request_times(broker: &Broker, page: &mut Exposition) {
    let name = "kafka_network_requestmetrics_totaltimems";
    page.family(
        name,
        Kind::Summary,
        "Time from a request's arrival to its answer written, in ms.",
    );
    let times = broker.metrics().request_times();
    for (request, summary) in &times {
        for ((_, value), (_, label)) in summary.quantiles.iter().zip(QUANTILES) {
            page.sample(name, &[("request", request), ("quantile", label)], *value);
        }
        page.sample(
            &format!("{name}_sum"),
            &[("request", request)],
            summary.sum_ms,
        );
        page.sample(
            &format!("{name}_count"),
            &[("request", request)],
            summary.count as f64,
        );
    }
}

/// Open client connections per listener.
fn connections(broker: &Broker, page: &mut Exposition) {
    let name = "kafka_server_socket_server_metrics_connection_count";
    page.family(name, Kind::Gauge, "Open client connections, per listener.");
    for (listener, open) in broker.metrics().connections() {
        page.sample(name, &[("listener", &listener)], open as f64);
    }
}

/// ISR shrinks and expands this broker made as a leader.
fn isr_changes(broker: &Broker, page: &mut Exposition) {
    let metrics = broker.metrics();
    page.single(
        "kafka_server_replicamanager_isrshrinks_total",
        Kind::Counter,
        "ISR shrinks recorded by this broker as a leader.",
        metrics.isr_shrinks.get() as f64,
    );
    page.single(
        "kafka_server_replicamanager_isrexpands_total",
        Kind::Counter,
        "ISR expansions recorded by this broker as a leader.",
        metrics.isr_expands.get() as f64,
    );
}

/// Partition counts, leaders, under-replicated and under-min-ISR partitions, log sizes.
fn replica_gauges(broker: &Broker, page: &mut Exposition) {
    let hosted: Vec<_> = broker
        .replicas
        .hosted()
        .into_iter()
        .filter_map(|tp| broker.replicas.hosted_partition(&tp))
        .collect();
    let statuses: Vec<_> = hosted.iter().map(|p| p.status()).collect();
    let leaders = statuses.iter().filter(|s| s.is_leader).count();
    let under_replicated = statuses
        .iter()
        .filter(|s| s.is_leader && s.isr < s.replicas)
        .count();
    page.single(
        "kafka_server_replicamanager_partitioncount",
        Kind::Gauge,
        "Partitions with a replica on this broker.",
        hosted.len() as f64,
    );
    page.single(
        "kafka_server_replicamanager_leadercount",
        Kind::Gauge,
        "Partitions this broker leads.",
        leaders as f64,
    );
    page.single(
        "kafka_server_replicamanager_underreplicatedpartitions",
        Kind::Gauge,
        "Partitions led here whose ISR is smaller than their replica set.",
        under_replicated as f64,
    );
    let name = "kafka_cluster_partition_underminisr";
    page.family(
        name,
        Kind::Gauge,
        "1 when a partition led here has fewer in-sync replicas than min.insync.replicas.",
    );
    for (p, s) in hosted.iter().zip(&statuses).filter(|(_, s)| s.is_leader) {
        let partition = p.tp.partition.to_string();
        let under = (s.isr as i64) < i64::from(s.min_isr);
        page.sample(
            name,
            &[("topic", &p.tp.topic), ("partition", &partition)],
            u8::from(under),
        );
    }
    let name = "kafka_log_log_size";
    page.family(
        name,
        Kind::Gauge,
        "Bytes of a partition's log on this broker.",
    );
    for p in &hosted {
        let partition = p.tp.partition.to_string();
        page.sample(
            name,
            &[("topic", &p.tp.topic), ("partition", &partition)],
            p.log_size_bytes() as f64,
        );
    }
}

/// The active controller (1 on the controller) and, there, partitions without a live leader.
fn controller_gauges(broker: &Broker, page: &mut Exposition) {
    let active = broker.cluster.controller_id() == broker.broker_id();
    page.single(
        "kafka_controller_kafkacontroller_activecontrollercount",
        Kind::Gauge,
        "1 on the broker that is the active controller.",
        u8::from(active),
    );
    let offline = if active {
        let live: HashSet<i32> = broker.cluster.live_brokers().iter().map(|b| b.id).collect();
        broker
            .cluster
            .topics()
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| !live.contains(&p.leader))
            .count()
    } else {
        0
    };
    page.single(
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        Kind::Gauge,
        "Partitions without a live leader (counted on the active controller).",
        offline as f64,
    );
}

/// kafka_exporter's consumer-group lag, from the groups this broker coordinates.
async fn lag(broker: &Broker, page: &mut Exposition) {
    let name = "kafka_consumergroup_lag";
    page.family(
        name,
        Kind::Gauge,
        "End offset minus committed offset of a group on a partition (groups coordinated here).",
    );
    for l in broker.consumer_group_lag().await {
        let Some(lag) = l.lag else { continue };
        let partition = l.partition.to_string();
        page.sample(
            name,
            &[
                ("consumergroup", &l.group),
                ("topic", &l.topic),
                ("partition", &partition),
            ],
            lag as f64,
        );
    }
}
