//! Connection management against an in-process broker, over the raw protocol:
//! `connections.max.idle.ms` closes idle connections, and `max.connections.per.ip` (with
//! `max.connections.per.ip.overrides`) closes a connection over its address's limit at accept.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Client, TestBroker};
use kafka_protocol::messages::*;

/// True once the connection has answered an ApiVersions request.
async fn served(c: &mut Client) -> bool {
    c.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    matches!(
        c.receive::<ApiVersionsResponse>(3).await,
        Some(r) if r.error_code == 0
    )
}

/// Connects until a connection is served (a closed connection's slot is given back once the
/// broker has seen the close, which is not instantaneous); panics after many tries.
async fn connect_served(b: &TestBroker) -> Client {
    for _ in 0..200 {
        let mut c = b.client().await;
        if served(&mut c).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no connection served after 200 tries");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_connections_max_idle_ms() {
    let b = TestBroker::start(&["connections.max.idle.ms=300"]).await;
    // Never sent anything.
    let mut silent = b.client().await;
    // Served one request, then went quiet: the clock starts again after the response.
    let mut once = b.client().await;
    assert!(served(&mut once).await);
    assert!(silent.is_closed().await, "a silent connection is closed");
    assert!(
        once.is_closed().await,
        "a connection idle after a request is closed"
    );
    // The broker still serves new connections.
    let mut fresh = b.client().await;
    assert!(served(&mut fresh).await);
}

#[tokio::test]
async fn without_an_idle_limit_connections_stay_open() {
    let b = TestBroker::start(&["connections.max.idle.ms=-1"]).await;
    let mut c = b.client().await;
    assert!(served(&mut c).await);
    // is_closed waits up to 10 s for the close.
    assert!(!c.is_closed().await, "no idle limit, no close");
    assert!(served(&mut c).await);
}

#[tokio::test]
async fn over_max_connections_per_ip_a_connection_is_closed_at_accept() {
    let b = TestBroker::start(&["max.connections.per.ip=2"]).await;
    let mut first = b.client().await;
    let mut second = b.client().await;
    assert!(served(&mut first).await);
    assert!(served(&mut second).await);
    let mut third = b.client().await;
    assert!(
        third.is_closed().await,
        "the third connection from 127.0.0.1 is closed"
    );
    // The two admitted ones are untouched.
    assert!(served(&mut first).await);
    // Closing one frees its slot.
    drop(second);
    let mut again = connect_served(&b).await;
    assert!(served(&mut again).await);
    let mut over = b.client().await;
    assert!(over.is_closed().await, "two open again: the next is closed");
}

#[tokio::test]
async fn a_per_ip_override_raises_the_limit_for_its_address() {
    let b = TestBroker::start(&[
        "max.connections.per.ip=2",
        "max.connections.per.ip.overrides=10.1.2.3:1,127.0.0.1:3",
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = b.client().await;
        assert!(served(&mut c).await, "the override admits three");
        held.push(c);
    }
    let mut fourth = b.client().await;
    assert!(fourth.is_closed().await, "the fourth is closed");
}

#[tokio::test]
async fn a_bad_per_ip_override_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = odradek::app::load_config(
        None,
        &[
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().display()),
            "max.connections.per.ip.overrides=127.0.0.1".to_string(),
        ],
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("max.connections.per.ip.overrides"),
        "{err:#}"
    );
}
