//! The read-only web console (placeholder: the console pages replace this module, keeping
//! [`Page`] and [`page`]).

use crate::broker::Broker;

/// One rendered console response.
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// The console page at `path` (`query` without the '?'), or None for an unknown path (404).
pub async fn page(broker: &Broker, path: &str, _query: Option<&str>) -> Option<Page> {
    (path == "/").then(|| Page {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: format!(
            "<!doctype html><title>Odradek</title><h1>Odradek broker {}</h1>\
             <p><a href=\"/metrics\">metrics</a></p>\n",
            broker.broker_id()
        ),
    })
}
