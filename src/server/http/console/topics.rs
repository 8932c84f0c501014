//! `/topics` and `/topics/<name>`: every topic with its partition counts and health, and one
//! topic's partitions (leader, replicas, ISR, offline replicas, log start, high watermark, log
//! end and size where this broker hosts a replica) and configs (overrides marked).

use crate::broker::overview::{PartitionView, TopicSummary, TopicView};
use crate::broker::Broker;
use crate::config::ConfigSource;

use super::configs::config_table;
use super::html::{badge, bytes, esc, facts, href, ids, layout, table, UNKNOWN};

pub fn list(broker: &Broker) -> String {
    let view = broker.cluster_view();
    let (internal, user): (Vec<&TopicSummary>, Vec<&TopicSummary>) =
        view.topics.iter().partition(|t| t.internal);
    let mut body = String::new();
    body.push_str(&topic_table("topics", &user, "No topics yet."));
    if !internal.is_empty() {
        body.push_str("<h2>Internal topics</h2>\n");
        body.push_str(&topic_table("internal-topics", &internal, ""));
    }
    layout("Topics", "/topics", &super::context(broker), &body)
}

fn topic_table(id: &str, topics: &[&TopicSummary], empty: &str) -> String {
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                href("/topics/", &t.name),
                t.partitions.to_string(),
                t.replication_factor.to_string(),
                health(t.under_replicated, "warn"),
                health(t.offline, "bad"),
                bytes(t.size_here),
            ]
        })
        .collect();
    table(
        id,
        &[
            "topic",
            "partitions",
            "replication factor",
            "under-replicated",
            "offline",
            "size here",
        ],
        &rows,
        empty,
    )
}

fn health(count: usize, kind: &str) -> String {
    if count == 0 {
        "0".to_string()
    } else {
        badge(kind, &count.to_string())
    }
}

/// The page of one topic; `None` when the topic does not exist.
pub async fn detail(broker: &Broker, name: &str) -> Option<String> {
    let view = broker.topic_view(name).await?;
    let overrides = view
        .configs
        .iter()
        .filter(|c| c.source == ConfigSource::TopicOverride)
        .count();
    let mut body = facts(&[
        ("Topic id", format!("<code>{}</code>", esc(&view.id))),
        ("Partitions", view.partitions.len().to_string()),
        (
            "Replication factor",
            view.partitions
                .first()
                .map_or(0, |p| p.replicas.len())
                .to_string(),
        ),
        ("Config overrides", overrides.to_string()),
    ]);
    if view.internal {
        body.push_str("<p class=\"note\">An internal topic.</p>\n");
    }
    body.push_str("<h2>Partitions</h2>\n");
    body.push_str(&partitions(&view));
    body.push_str(
        "<p class=\"empty\">Offsets and sizes are those of this broker's replica; \
         a partition without one here shows —.</p>\n",
    );
    body.push_str("<h2>Configs</h2>\n");
    body.push_str(&config_table("topic-configs", &view.configs));
    Some(layout(
        &format!("Topic {}", view.name),
        "/topics",
        &super::context(broker),
        &body,
    ))
}

fn partitions(view: &TopicView) -> String {
    let rows: Vec<Vec<String>> = view.partitions.iter().map(partition_row).collect();
    table(
        "partitions",
        &[
            "partition",
            "leader",
            "leader epoch",
            "replicas",
            "ISR",
            "offline replicas",
            "log start",
            "high watermark",
            "log end",
            "size",
        ],
        &rows,
        "The topic has no partitions.",
    )
}

fn partition_row(p: &PartitionView) -> Vec<String> {
    let leader = if p.leader < 0 {
        badge("bad", "none")
    } else {
        p.leader.to_string()
    };
    let isr = if p.isr.len() < p.replicas.len() {
        format!("{} {}", ids(&p.isr), badge("warn", "under-replicated"))
    } else {
        ids(&p.isr)
    };
    let offline = if p.offline.is_empty() {
        String::new()
    } else {
        badge("bad", &ids(&p.offline))
    };
    let (start, hw, end, size) = match p.log {
        Some(l) => (
            l.log_start.to_string(),
            l.high_watermark.to_string(),
            l.log_end.to_string(),
            bytes(l.size_bytes),
        ),
        None => (
            UNKNOWN.to_string(),
            p.end_offset
                .map_or_else(|| UNKNOWN.to_string(), |e| e.to_string()),
            UNKNOWN.to_string(),
            UNKNOWN.to_string(),
        ),
    };
    vec![
        p.partition.to_string(),
        leader,
        p.leader_epoch.to_string(),
        ids(&p.replicas),
        isr,
        offline,
        start,
        hw,
        end,
        size,
    ]
}
