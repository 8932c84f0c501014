use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::*;

/// Distinct, non-repeating bytes so a misplaced part would show.
fn records(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn fetch_response(sets: &[Bytes]) -> FetchResponse {
    let partitions = |sets: &[Bytes], first: i32| -> Vec<PartitionData> {
        sets.iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(first + i as i32)
                    .with_high_watermark(1000 + i as i64)
                    .with_records(Some(r.clone()))
            })
            .collect()
    };
    let (a, b) = sets.split_at(sets.len() / 2);
    let topic = |name: &str, parts| {
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
            .with_partitions(parts)
    };
    FetchResponse::default().with_responses(vec![
        topic("a", partitions(a, 0)),
        topic("b", partitions(b, 0)),
    ])
}

/// The reference: everything copied into one buffer, as the broker encoded responses before.
fn copied(header: &ResponseHeader, hv: i16, body: &FetchResponse, v: i16) -> Bytes {
    let size = header.compute_size(hv).unwrap() + body.compute_size(v).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(size as i32);
    header.encode(&mut out, hv).unwrap();
    body.encode(&mut out, v).unwrap();
    out.freeze()
}

#[test]
fn shared_record_sets_give_the_bytes_of_the_copying_encoder() {
    let sets = vec![
        records(70_000, 1),
        records(10, 2),
        Bytes::new(),
        records(5_000, 3),
        records(300_000, 4),
        records(4_096, 5),
    ];
    let body = fetch_response(&sets);
    let shared: Vec<Bytes> = sets.iter().filter(|s| s.len() >= 4096).cloned().collect();
    let header = ResponseHeader::default().with_correlation_id(77);
    for v in 4..=17i16 {
        let hv = if v >= 12 { 1 } else { 0 };
        let frame = encode_frame(&header, hv, &body, v, &shared).unwrap();
        assert_eq!(frame.to_bytes(), copied(&header, hv, &body, v), "v{v}");
        // Each shared set is a part of its own (the last one may end the frame).
        assert!(frame.part_count() >= 2 * shared.len(), "v{v}");
        for (part, set) in frame.parts.iter().skip(1).step_by(2).zip(&shared) {
            assert_eq!(part.as_ptr(), set.as_ptr(), "v{v}: shared, not copied");
            assert_eq!(part.len(), set.len(), "v{v}");
        }
    }
}

#[test]
fn without_shared_sets_the_frame_is_one_copied_part() {
    let sets = vec![records(9_000, 1), records(20, 2)];
    let body = fetch_response(&sets);
    let header = ResponseHeader::default().with_correlation_id(-5);
    let frame = encode_frame(&header, 1, &body, 12, &[]).unwrap();
    assert_eq!(frame.part_count(), 1);
    assert_eq!(frame.to_bytes(), copied(&header, 1, &body, 12));
}

#[test]
fn a_set_not_written_verbatim_is_copied() {
    // Same content, different memory: not the encoder's slice, so it is copied.
    let sets = vec![records(8_192, 9)];
    let body = fetch_response(&sets);
    let lookalike = vec![Bytes::copy_from_slice(&sets[0])];
    let header = ResponseHeader::default();
    let frame = encode_frame(&header, 1, &body, 13, &lookalike).unwrap();
    assert_eq!(frame.part_count(), 1);
    assert_eq!(frame.to_bytes(), copied(&header, 1, &body, 13));
}

#[test]
fn reaching_back_into_a_shared_part_falls_back_to_copying() {
    let set = records(5_000, 3);
    let shared = [set.clone()];
    let mut buf = SplicingBuf::new(64, &shared);
    buf.put_i32(7);
    buf.put_slice(&set);
    assert_eq!(buf.offset(), 4 + set.len());
    assert_eq!(buf.range(0..4).len(), 4);
    assert!(buf.broken);
    let mut buf = SplicingBuf::new(64, &shared);
    buf.put_slice(&set);
    buf.put_i32(1);
    let at = buf.offset();
    buf.range(at - 4..at).copy_from_slice(&[0, 0, 0, 2]);
    assert!(!buf.broken, "a gap inside the current head is fine");
    buf.seek(1);
    assert!(buf.broken);
}

#[test]
fn frame_buf_advances_across_parts_and_lists_them_for_writev() {
    let mut frame = ResponseFrame::from_parts([
        Bytes::from_static(b"abc"),
        Bytes::new(),
        Bytes::from_static(b"defg"),
        Bytes::from_static(b"h"),
    ]);
    assert_eq!(frame.remaining(), 8);
    assert_eq!(frame.part_count(), 3);
    let mut slices = [IoSlice::new(&[]); 8];
    assert_eq!(frame.chunks_vectored(&mut slices), 3);
    assert_eq!(&*slices[1], b"defg");
    frame.advance(2);
    assert_eq!(frame.chunk(), b"c");
    frame.advance(3);
    assert_eq!(frame.chunk(), b"fg");
    assert_eq!(frame.remaining(), 3);
    assert_eq!(frame.to_bytes(), Bytes::from_static(b"fgh"));
    frame.advance(3);
    assert_eq!(frame.remaining(), 0);
    assert_eq!(frame.chunk(), b"");
}

#[tokio::test]
async fn vectored_write_sends_the_copied_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
    let sets = vec![records(200_000, 1), records(100, 2), records(90_000, 3)];
    let body = fetch_response(&sets);
    let shared: Vec<Bytes> = sets.iter().filter(|s| s.len() >= 4096).cloned().collect();
    let header = ResponseHeader::default().with_correlation_id(3);
    let mut frame = encode_frame(&header, 1, &body, 16, &shared).unwrap();
    let expected = copied(&header, 1, &body, 16);
    let (client, server) = tokio::io::duplex(8 * 1024);
    let reader = tokio::spawn(async move {
        let mut client = client;
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.map(|_| got)
    });
    let mut writer = BufWriter::with_capacity(64 * 1024, server);
    writer.write_all_buf(&mut frame).await.unwrap();
    writer.shutdown().await.unwrap();
    drop(writer);
    assert_eq!(reader.await.unwrap().unwrap(), expected);
}
