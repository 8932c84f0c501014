//! Fuzzes the whole request path after framing: header parsing, version checks, the guard,
//! decoding and every handler, against one in-process broker with a topic holding data.
//!
//! Input: one frame body (what follows the 4-byte size prefix). Requests that wait (long-poll
//! fetches) are cut off after 50 ms. Run with a malloc limit:
//!
//! ```text
//! cargo fuzz run dispatch -- -max_len=4096 -malloc_limit_mb=256
//! ```
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use odradek::app::{load_config, RunningBroker};
use odradek::broker::Broker;
use odradek::server::connection::Connection;
use odradek::server::dispatch::dispatch;
use odradek::server::frame::parse_request;

struct Harness {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _running: RunningBroker,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let overrides = vec![
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().display()),
            "num.partitions=2".to_string(),
        ];
        let config = load_config(None, &overrides).expect("config");
        let running = runtime.block_on(RunningBroker::start(config)).expect("broker");
        let broker = running.broker.clone();
        runtime
            .block_on(broker.auto_create_topic("fuzz"))
            .expect("topic");
        Harness { runtime, broker, _running: running, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let h = harness();
    let Ok(request) = parse_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let broker = h.broker.clone();
    let conn = Connection::new("PLAINTEXT".into(), "127.0.0.1:1".parse().expect("address"));
    let _ = h.runtime.block_on(async move {
        tokio::time::timeout(Duration::from_millis(50), dispatch(&broker, &conn, request)).await
    });
});
