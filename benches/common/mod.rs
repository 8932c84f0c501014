//! Helpers shared by the bench targets.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One uncompressed v2 record batch (base offset 0, no producer id) of `records` records with a
/// 16-byte key and a `value_size`-byte value each, encoded by kafka-protocol as a client would.
pub fn v2_batch(records: usize, value_size: usize) -> Bytes {
    let now_ms = 1_700_000_000_000i64;
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now_ms + i as i64,
            key: Some(Bytes::from(format!("key-{i:012}"))),
            value: Some(Bytes::from(vec![b'x'.wrapping_add(i as u8); value_size])),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}
