//! `/`: the cluster at a glance — its id, the live brokers with the controller marked, and
//! counts of topics, partitions and groups, with links to the other pages.

use crate::broker::overview::ClusterView;
use crate::broker::Broker;

use super::html::{badge, bytes, esc, facts, layout, table, UNKNOWN};

pub async fn render(broker: &Broker) -> String {
    let view = broker.cluster_view();
    let groups_here = broker.local_groups().await.len();
    let mut body = facts(&summary(&view, groups_here));
    body.push_str("<h2>Brokers</h2>\n");
    body.push_str(&brokers(&view));
    body.push_str(&format!(
        "<p>See the <a href=\"/topics\">topics</a>, the <a href=\"/groups\">consumer groups</a> \
         and <a href=\"/configs\">this broker's configs</a>. Metrics for Prometheus are at \
         <a href=\"/metrics\">/metrics</a>. This broker's replicas hold {}.</p>\n",
        bytes(view.topics.iter().map(|t| t.size_here).sum())
    ));
    layout("Cluster overview", "/", &super::context(broker), &body)
}

fn summary(view: &ClusterView, groups_here: usize) -> Vec<(&'static str, String)> {
    let user = view.topics.iter().filter(|t| !t.internal).count();
    let partitions: usize = view.topics.iter().map(|t| t.partitions).sum();
    let under: usize = view.topics.iter().map(|t| t.under_replicated).sum();
    let offline: usize = view.topics.iter().map(|t| t.offline).sum();
    let controller = if view.controller >= 0 {
        view.controller.to_string()
    } else {
        UNKNOWN.to_string()
    };
    vec![
        (
            "Cluster id",
            format!("<code id=\"cluster-id\">{}</code>", esc(&view.cluster_id)),
        ),
        ("This broker", view.this_broker.to_string()),
        ("Controller", controller),
        ("Brokers", view.brokers.len().to_string()),
        (
            "Topics",
            format!("{user} (+{} internal)", view.topics.len() - user),
        ),
        ("Partitions", partitions.to_string()),
        ("Under-replicated", under.to_string()),
        ("Offline", offline.to_string()),
        ("Groups coordinated here", groups_here.to_string()),
    ]
}

fn brokers(view: &ClusterView) -> String {
    let rows: Vec<Vec<String>> = view
        .brokers
        .iter()
        .map(|b| {
            let mut roles = String::new();
            if b.id == view.controller {
                roles.push_str(&badge("ok", "controller"));
            }
            if b.id == view.this_broker {
                roles.push_str(&badge("", "this broker"));
            }
            vec![
                b.id.to_string(),
                b.endpoints
                    .iter()
                    .map(|e| esc(&e.connection_string()))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                b.rack.as_deref().map_or_else(|| UNKNOWN.to_string(), esc),
                roles,
                format!("<a href=\"/brokers/{}/configs\">configs</a>", b.id),
            ]
        })
        .collect();
    table(
        "brokers",
        &["id", "endpoints", "rack", "role", ""],
        &rows,
        "No live broker is registered.",
    )
}
