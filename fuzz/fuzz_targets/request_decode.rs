//! Fuzzes the request-body guard and, for bodies it accepts, kafka-protocol's request decoder.
//!
//! Input layout: byte 0 selects a covered API (modulo the number of covered APIs), byte 1 selects
//! a version (modulo the supported range plus one, so one out-of-range version is exercised), the
//! rest is the request body. Run with a malloc limit so that any large allocation made by
//! kafka-protocol on a guard-accepted body is reported as a crash:
//!
//! ```text
//! cargo fuzz run request_decode -- -max_len=4096 -malloc_limit_mb=64
//! ```
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use libfuzzer_sys::fuzz_target;
use odradek::protocol::guard::{check_request_body, covered_apis};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let apis: Vec<_> = covered_apis().collect();
    let (api_key, min, max) = apis[data[0] as usize % apis.len()];
    let version = min + (data[1] as i16 % (max - min + 2));
    let body = &data[2..];
    if check_request_body(api_key, version, body).is_ok() {
        assert!(
            version <= max,
            "guard accepted unsupported version {version}"
        );
        let key = ApiKey::try_from(api_key).expect("covered api key is known to kafka-protocol");
        let mut buf = Bytes::copy_from_slice(body);
        let _ = RequestKind::decode(key, &mut buf, version);
    }
});
