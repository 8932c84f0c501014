//! `/groups` and `/groups/<id>`: the consumer groups (those coordinated here with their total
//! lag, and those of the other brokers as they list them), and one group's state, members with
//! their assigned partitions, and committed offset and lag per partition.

use std::fmt::Write;

use crate::broker::overview::{GroupSummary, GroupView, LagRow, MemberView};
use crate::broker::Broker;

use super::html::{badge, esc, facts, href, layout, opt, table, UNKNOWN};

pub async fn list(broker: &Broker) -> String {
    let mut groups = broker.local_groups().await;
    let mut notes = String::new();
    for peer in broker.peer_groups().await {
        match peer.groups {
            Ok(g) => groups.extend(g),
            Err(e) => {
                let _ = writeln!(
                    notes,
                    "<p class=\"note\">Broker {} did not list its groups: {}</p>",
                    peer.broker,
                    esc(&e)
                );
            }
        }
    }
    // A group moving between coordinators may be listed by both for a moment.
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups.dedup_by(|a, b| a.group_id == b.group_id);
    let rows: Vec<Vec<String>> = groups.iter().map(summary_row).collect();
    let mut body = table(
        "groups",
        &[
            "group",
            "state",
            "protocol type",
            "members",
            "coordinator",
            "total lag",
        ],
        &rows,
        "No consumer groups.",
    );
    body.push_str(&notes);
    body.push_str(
        "<p class=\"empty\">Total lag is shown for groups coordinated by this broker; \
         open a group for its lag per partition.</p>\n",
    );
    layout("Consumer groups", "/groups", &super::context(broker), &body)
}

fn summary_row(g: &GroupSummary) -> Vec<String> {
    vec![
        href("/groups/", &g.group_id),
        state(&g.state),
        esc(&g.protocol_type),
        g.members.to_string(),
        g.coordinator.to_string(),
        opt(g.total_lag),
    ]
}

fn state(name: &str) -> String {
    let kind = match name {
        "Stable" => "ok",
        "Empty" => "",
        "Dead" | "unknown" => "bad",
        _ => "warn",
    };
    badge(kind, name)
}

/// The page of one group; `None` when no coordinator knows it.
pub async fn detail(broker: &Broker, id: &str) -> Option<String> {
    let view = broker.group_view(id).await?;
    let total: i64 = view.lag.iter().filter_map(|l| l.lag).sum();
    let mut body = facts(&[
        ("State", state(&view.state)),
        ("Protocol type", esc(&view.protocol_type)),
        ("Assignor", esc(&view.protocol)),
        ("Coordinator", view.coordinator.to_string()),
        ("Members", view.members.len().to_string()),
        (
            "Total lag",
            format!("<span id=\"total-lag\">{total}</span>"),
        ),
    ]);
    if let Some(note) = &view.note {
        let _ = writeln!(body, "<p class=\"note\">{}</p>", esc(note));
    }
    body.push_str("<h2>Members</h2>\n");
    body.push_str(&members(&view));
    body.push_str("<h2>Lag per partition</h2>\n");
    body.push_str(&lag(&view));
    Some(layout(
        &format!("Group {}", view.group_id),
        "/groups",
        &super::context(broker),
        &body,
    ))
}

fn members(view: &GroupView) -> String {
    let rows: Vec<Vec<String>> = view.members.iter().map(member_row).collect();
    table(
        "members",
        &[
            "member id",
            "instance id",
            "client id",
            "host",
            "assigned partitions",
        ],
        &rows,
        "No members (the group is empty).",
    )
}

fn member_row(m: &MemberView) -> Vec<String> {
    let assigned = m
        .assignment
        .iter()
        .map(|(topic, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{}: {}", href("/topics/", topic), ps.join(", "))
        })
        .collect::<Vec<_>>()
        .join("<br>");
    vec![
        format!("<code>{}</code>", esc(&m.member_id)),
        m.group_instance_id
            .as_deref()
            .map_or_else(|| UNKNOWN.to_string(), esc),
        esc(&m.client_id),
        esc(&m.client_host),
        assigned,
    ]
}

fn lag(view: &GroupView) -> String {
    let rows: Vec<Vec<String>> = view.lag.iter().map(lag_row).collect();
    table(
        "lag",
        &[
            "topic",
            "partition",
            "committed offset",
            "end offset",
            "lag",
            "member",
        ],
        &rows,
        "No committed offsets.",
    )
}

fn lag_row(l: &LagRow) -> Vec<String> {
    vec![
        href("/topics/", &l.topic),
        l.partition.to_string(),
        l.committed_offset.to_string(),
        opt(l.end_offset),
        opt(l.lag),
        l.owner.as_deref().map_or_else(
            || UNKNOWN.to_string(),
            |o| format!("<code>{}</code>", esc(o)),
        ),
    ]
}
