//! The built-in web console on the HTTP listener: read-only pages rendered on the server from
//! [`crate::broker::overview`] (no JavaScript, one embedded stylesheet). Routes:
//!
//! | path | page |
//! |---|---|
//! | `/` | cluster id, brokers and controller, counts |
//! | `/topics`, `/topics/<name>` | topics; one topic's partitions (leader, replicas, ISR, offsets, size) and configs |
//! | `/groups`, `/groups/<id>` | consumer groups; one group's members and lag per partition |
//! | `/configs`, `/brokers/<id>/configs` | this broker's configs; another live broker's, asked of it |
//!
//! Names in paths are one percent-encoded segment (a group id may hold `/`). An unknown topic,
//! group or broker gets a 404 page; a path outside these routes is `None`.

mod configs;
mod groups;
mod html;
mod overview;
mod topics;

use crate::broker::Broker;

pub use html::{decode_segment, encode_segment, esc};

/// A rendered answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

const HTML: &str = "text/html; charset=utf-8";

impl Page {
    fn html(body: String) -> Page {
        Page {
            status: 200,
            content_type: HTML,
            body,
        }
    }

    /// The 404 page, naming what was not found.
    fn not_found(what: &str) -> Page {
        let body = format!(
            "<p class=\"note\">{} does not exist (or is not known to this broker).</p>\n\
             <p><a href=\"/\">Back to the overview</a></p>\n",
            html::esc(what)
        );
        Page {
            status: 404,
            content_type: HTML,
            body: html::layout("Not found", "", "", &body),
        }
    }
}

/// A console route, parsed from the raw (still percent-encoded) path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Overview,
    Topics,
    Topic(String),
    Groups,
    Group(String),
    Configs,
    BrokerConfigs(String),
    /// A console path whose name did not decode.
    BadName,
}

fn route(path: &str) -> Option<Route> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let named = |segment: &str, make: fn(String) -> Route| {
        Some(html::decode_segment(segment).map_or(Route::BadName, make))
    };
    match path {
        "/" | "" => return Some(Route::Overview),
        "/topics" => return Some(Route::Topics),
        "/groups" => return Some(Route::Groups),
        "/configs" => return Some(Route::Configs),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/topics/").filter(|n| !n.contains('/')) {
        return named(name, Route::Topic);
    }
    if let Some(id) = path.strip_prefix("/groups/").filter(|n| !n.contains('/')) {
        return named(id, Route::Group);
    }
    let broker = path.strip_prefix("/brokers/")?.strip_suffix("/configs")?;
    named(broker, Route::BrokerConfigs)
}

/// The console page at `path` (raw, percent-encoded; `query` is ignored: no page takes
/// parameters). `None` for a path that is not the console's.
pub async fn page(broker: &Broker, path: &str, _query: Option<&str>) -> Option<Page> {
    let page = match route(path)? {
        Route::Overview => Page::html(overview::render(broker).await),
        Route::Topics => Page::html(topics::list(broker)),
        Route::Topic(name) => match topics::detail(broker, &name).await {
            Some(body) => Page::html(body),
            None => Page::not_found(&format!("Topic '{name}'")),
        },
        Route::Groups => Page::html(groups::list(broker).await),
        Route::Group(id) => match groups::detail(broker, &id).await {
            Some(body) => Page::html(body),
            None => Page::not_found(&format!("Consumer group '{id}'")),
        },
        Route::Configs => Page::html(configs::render(broker)),
        Route::BrokerConfigs(id) => match configs::of_broker(broker, &id).await {
            Some(body) => Page::html(body),
            None => Page::not_found(&format!("Broker '{id}'")),
        },
        Route::BadName => Page::not_found("A name with a malformed %-escape"),
    };
    tracing::debug!(path, status = page.status, "console page");
    Some(page)
}

/// The line under the title bar: cluster and broker.
fn context(broker: &Broker) -> String {
    format!(
        "cluster {} · broker {}",
        html::esc(&broker.cluster.cluster_id()),
        broker.broker_id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_names_as_one_segment() {
        assert_eq!(route("/"), Some(Route::Overview));
        assert_eq!(route("/topics/"), Some(Route::Topics));
        assert_eq!(route("/topics/orders"), Some(Route::Topic("orders".into())));
        assert_eq!(
            route("/groups/team%2Fa%20b"),
            Some(Route::Group("team/a b".into()))
        );
        assert_eq!(route("/groups/a%2"), Some(Route::BadName));
        assert_eq!(
            route("/brokers/2/configs"),
            Some(Route::BrokerConfigs("2".into()))
        );
        assert_eq!(route("/configs"), Some(Route::Configs));
    }

    #[test]
    fn paths_outside_the_console_are_not_routed() {
        for p in [
            "/metrics",
            "/topicsx",
            "/topics/a/b",
            "/groups/a/b",
            "/brokers/1",
            "/x",
        ] {
            assert_eq!(route(p), None, "{p}");
        }
    }
}
