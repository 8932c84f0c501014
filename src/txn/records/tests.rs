//! Byte-exact checks of the `__transaction_state` formats, derived by hand from Kafka's
//! TransactionLogKey.json and TransactionLogValue.json.

use super::*;

fn empty_value() -> TxnLogValue {
    TxnLogValue {
        producer_id: 1000,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 0,
        transaction_timeout_ms: 60_000,
        transaction_status: 0,
        transaction_partitions: None,
        transaction_last_update_timestamp_ms: 5,
        transaction_start_timestamp_ms: -1,
        client_transaction_version: 0,
    }
}

fn ongoing_value() -> TxnLogValue {
    TxnLogValue {
        producer_id: 7,
        producer_epoch: 2,
        transaction_timeout_ms: 1000,
        transaction_status: 1,
        transaction_partitions: Some(vec![TxnLogPartitions {
            topic: "t".into(),
            partition_ids: vec![0, 1],
        }]),
        transaction_last_update_timestamp_ms: 9,
        transaction_start_timestamp_ms: 8,
        ..empty_value()
    }
}

#[test]
fn key_is_version_zero_then_a_classic_string() {
    let key = TxnLogKey::new("tx");
    let bytes = key.encode();
    assert_eq!(&bytes[..], &[0, 0, 0, 2, b't', b'x']);
    assert_eq!(TxnLogKey::decode(&bytes), Ok(key));
}

#[test]
fn key_of_another_version_is_unknown_and_bad_keys_are_errors() {
    assert_eq!(
        TxnLogKey::decode(&[0, 1, 0, 0]),
        Err(TxnRecordError::UnknownVersion {
            what: "key",
            version: 1
        })
    );
    assert_eq!(
        TxnLogKey::decode(&[0, 0, 0, 5, b'a']),
        Err(TxnRecordError::Truncated("transactional id"))
    );
    assert_eq!(
        TxnLogKey::decode(&[0, 0, 0xff, 0xff]),
        Err(TxnRecordError::Invalid("transactional id"))
    );
    assert_eq!(
        TxnLogKey::decode(&[0, 0, 0, 1, 0xff]),
        Err(TxnRecordError::Invalid("transactional id"))
    );
    assert_eq!(
        TxnLogKey::decode(&[0]),
        Err(TxnRecordError::Truncated("key version"))
    );
}

#[test]
fn empty_value_v0_has_a_null_partition_array() {
    let bytes = empty_value().encode(VALUE_VERSION_CLASSIC);
    let mut expected = vec![0, 0]; // version
    expected.extend_from_slice(&1000i64.to_be_bytes());
    expected.extend_from_slice(&[0, 0]); // epoch
    expected.extend_from_slice(&[0, 0, 0xea, 0x60]); // timeout 60000
    expected.push(0); // status Empty
    expected.extend_from_slice(&[0xff; 4]); // null array
    expected.extend_from_slice(&5i64.to_be_bytes());
    expected.extend_from_slice(&[0xff; 8]); // start -1
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnLogValue::decode(&bytes), Ok(empty_value()));
}

#[test]
fn ongoing_value_v0_lists_topics_and_partitions() {
    let v = ongoing_value();
    let bytes = v.encode(VALUE_VERSION_CLASSIC);
    let mut expected = vec![0, 0];
    expected.extend_from_slice(&7i64.to_be_bytes());
    expected.extend_from_slice(&[0, 2, 0, 0, 0x03, 0xe8, 1]);
    expected.extend_from_slice(&[0, 0, 0, 1]); // one topic
    expected.extend_from_slice(&[0, 1, b't']);
    expected.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
    expected.extend_from_slice(&9i64.to_be_bytes());
    expected.extend_from_slice(&8i64.to_be_bytes());
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnLogValue::decode(&bytes), Ok(v));
}

#[test]
fn value_v1_is_compact_and_writes_no_tags_at_defaults() {
    let v = ongoing_value();
    let bytes = v.encode(VALUE_VERSION_FLEXIBLE);
    let mut expected = vec![0, 1];
    expected.extend_from_slice(&7i64.to_be_bytes());
    expected.extend_from_slice(&[0, 2, 0, 0, 0x03, 0xe8, 1]);
    expected.push(2); // compact array: one entry
    expected.extend_from_slice(&[2, b't']); // compact string
    expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 1]); // two ids
    expected.push(0); // the entry's tagged fields
    expected.extend_from_slice(&9i64.to_be_bytes());
    expected.extend_from_slice(&8i64.to_be_bytes());
    expected.push(0); // no tagged fields
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnLogValue::decode(&bytes), Ok(v));
}

#[test]
fn value_v1_writes_tagged_fields_in_tag_order() {
    let v = TxnLogValue {
        previous_producer_id: 6,
        next_producer_id: 8,
        client_transaction_version: 2,
        ..empty_value()
    };
    let bytes = v.encode(VALUE_VERSION_FLEXIBLE);
    let mut expected = vec![0, 1];
    expected.extend_from_slice(&1000i64.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0, 0xea, 0x60, 0]);
    expected.push(0); // null compact array
    expected.extend_from_slice(&5i64.to_be_bytes());
    expected.extend_from_slice(&[0xff; 8]);
    expected.extend_from_slice(&[3, 0, 8]);
    expected.extend_from_slice(&6i64.to_be_bytes());
    expected.extend_from_slice(&[1, 8]);
    expected.extend_from_slice(&8i64.to_be_bytes());
    expected.extend_from_slice(&[2, 2, 0, 2]);
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnLogValue::decode(&bytes), Ok(v.clone()));
    // Version 0 has no place for them: they read back as their defaults.
    let classic = TxnLogValue::decode(&v.encode(VALUE_VERSION_CLASSIC));
    assert_eq!(classic, Ok(empty_value()));
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let mut bytes = empty_value().encode(VALUE_VERSION_FLEXIBLE).to_vec();
    let last = bytes.len() - 1;
    bytes.truncate(last);
    bytes.extend_from_slice(&[1, 9, 3, 0xaa, 0xbb, 0xcc]);
    assert_eq!(TxnLogValue::decode(&bytes), Ok(empty_value()));
}

#[test]
fn bad_values_are_errors_never_panics() {
    assert_eq!(
        TxnLogValue::decode(&[0, 2]),
        Err(TxnRecordError::UnknownVersion {
            what: "value",
            version: 2
        })
    );
    // Every strict prefix of a valid value is refused.
    for version in [VALUE_VERSION_CLASSIC, VALUE_VERSION_FLEXIBLE] {
        let bytes = ongoing_value().encode(version);
        for len in 0..bytes.len() {
            assert!(
                TxnLogValue::decode(&bytes[..len]).is_err(),
                "v{version} len {len}"
            );
        }
    }
    // A huge array count with few bytes behind it is refused before allocating.
    let mut huge = vec![0, 0];
    huge.extend_from_slice(&[0; 8 + 2 + 4 + 1]);
    huge.extend_from_slice(&i32::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 16]);
    assert_eq!(
        TxnLogValue::decode(&huge),
        Err(TxnRecordError::Truncated("transaction partitions"))
    );
    // A negative array count other than -1.
    let mut negative = vec![0, 0];
    negative.extend_from_slice(&[0; 15]);
    negative.extend_from_slice(&(-2i32).to_be_bytes());
    assert_eq!(
        TxnLogValue::decode(&negative),
        Err(TxnRecordError::Invalid("transaction partitions"))
    );
    // A known tag of the wrong size.
    let mut bad_tag = empty_value().encode(VALUE_VERSION_FLEXIBLE).to_vec();
    let last = bad_tag.len() - 1;
    bad_tag.truncate(last);
    bad_tag.extend_from_slice(&[1, 2, 1, 0]);
    assert_eq!(
        TxnLogValue::decode(&bad_tag),
        Err(TxnRecordError::Invalid("client transaction version"))
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic fuzz: mutate valid encodings byte by byte.
    for version in [VALUE_VERSION_CLASSIC, VALUE_VERSION_FLEXIBLE] {
        let bytes = ongoing_value().encode(version).to_vec();
        for i in 0..bytes.len() {
            for b in [0x00, 0x7f, 0x80, 0xff] {
                let mut m = bytes.clone();
                m[i] = b;
                let _ = TxnLogValue::decode(&m);
                let _ = TxnLogKey::decode(&m);
            }
        }
    }
}
