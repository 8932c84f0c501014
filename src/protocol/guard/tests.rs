//! Tests for the request-body guard: the schema table is cross-checked against
//! `kafka-protocol`'s own encoder and decoder, for every request type `kafka-protocol` has (the
//! list comes from the generated `schema::for_each_request!`, built from `ApiKey`), at every
//! version it decodes.

use super::samples::Sample;
use super::schema::{for_each_request, MESSAGES};
use super::{check_request_body, covered_apis, walk_request_body, Elem, GuardError, StructDef, Ty};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::messages::{
    create_partitions_request::*, create_topics_request::*, delete_topics_request::*,
    describe_configs_request::*, describe_producers_request::*, fetch_request::*,
    join_group_request::*, leave_group_request::*, list_offsets_request::*,
    list_partition_reassignments_request::*, metadata_request::*, offset_commit_request::*,
    offset_delete_request::*, offset_fetch_request::*, offset_for_leader_epoch_request::*,
    produce_request::*, sync_group_request::*,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

// ---------------------------------------------------------------------------------------------
// Allocation tracking: records the largest single allocation made by this thread while enabled.

struct TrackingAlloc;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

/// Largest single allocation `kafka-protocol` may make for a body the guard accepted: linear in
/// the body length (an accepted count is at most the remaining byte count) times a generous
/// per-element struct size, plus slack for small fixed allocations.
fn alloc_bound(body_len: usize) -> usize {
    body_len * 1024 + 64 * 1024
}

// ---------------------------------------------------------------------------------------------
// Walk coverage: which structs (and known tags) the walker visited, per version.

/// A visited struct (by address: names repeat across requests), version, known tag.
type Walked = (usize, i16, Option<u32>);

thread_local! {
    static WALKED: RefCell<Option<BTreeSet<Walked>>> = const { RefCell::new(None) };
}

/// Called by the walker for every struct it enters and every known tag it reads.
pub(super) fn note_walked(s: &'static StructDef, version: i16, tag: Option<u32>) {
    let _ = WALKED.try_with(|w| {
        if let Some(set) = w.borrow_mut().as_mut() {
            set.insert((s as *const StructDef as usize, version, tag));
        }
    });
}

/// Everything the schema says a body of `s` at `version` can contain (and the structs' names).
fn reachable(
    s: &'static StructDef,
    version: i16,
    out: &mut BTreeSet<Walked>,
    names: &mut HashMap<usize, &'static str>,
) {
    fn inner(ty: Ty) -> Option<&'static StructDef> {
        match ty {
            Ty::Struct(s) | Ty::OptStruct(s) => Some(s),
            Ty::Arr(Elem::Struct(s)) | Ty::CArr(Elem::Struct(s)) => Some(s),
            _ => None,
        }
    }
    names.insert(s as *const StructDef as usize, s.name);
    if !out.insert((s as *const StructDef as usize, version, None)) {
        return;
    }
    for f in s.fields {
        if let (true, Some(child)) = ((f.min..=f.max).contains(&version), inner(f.ty)) {
            reachable(child, version, out, names);
        }
    }
    if version >= s.tagged_from {
        for t in s.tags {
            if (t.min..=t.max).contains(&version) {
                out.insert((s as *const StructDef as usize, version, Some(t.tag)));
                if let Some(child) = inner(t.ty) {
                    reachable(child, version, out, names);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch over the covered request types: every `ApiKey` variant and its request type, from the
// generated `for_each_request!` (`Variant => RequestType, ...`).

/// The request type's decodable versions for every `ApiKey`. The `match` has no wildcard arm,
/// so a variant missing from `for_each_request!` (an API the generator did not cover) is a
/// compile error of the tests.
fn request_versions(key: ApiKey) -> (i16, i16, i16) {
    macro_rules! versions_of {
        ($($variant:ident => $t:ident),* $(,)?) => {
            match key {
                $(
                    ApiKey::$variant => (
                        <$t as Request>::KEY,
                        <$t as Message>::VERSIONS.min,
                        <$t as Message>::VERSIONS.max,
                    ),
                )*
            }
        };
    }
    for_each_request!(versions_of)
}

/// Decodes `body` with kafka-protocol; returns the bytes it consumed. `None` if not covered.
/// Only call this on bodies the guard accepted.
fn kp_decode(api_key: i16, version: i16, body: &[u8]) -> Option<anyhow::Result<usize>> {
    macro_rules! dispatch {
        ($($variant:ident => $t:ty),* $(,)?) => {
            $(
                if api_key == <$t as Request>::KEY {
                    let mut buf = Bytes::copy_from_slice(body);
                    let res = <$t as Decodable>::decode(&mut buf, version);
                    return Some(res.map(|_| body.len() - buf.len()));
                }
            )*
        };
    }
    for_each_request!(dispatch);
    None
}

/// kafka-protocol decode of a guard-accepted body, asserting the allocation bound.
fn decode_tracked(api_key: i16, version: i16, body: &[u8]) -> anyhow::Result<usize> {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let res = kp_decode(api_key, version, body).expect("covered api");
    TRACKING.with(|t| t.set(false));
    let largest = LARGEST.with(Cell::get);
    assert!(
        largest <= alloc_bound(body.len()),
        "api {api_key} v{version}: decode of {} accepted bytes allocated {largest} bytes at once",
        body.len()
    );
    res
}

fn all_versions() -> Vec<(i16, i16)> {
    let mut out = vec![];
    macro_rules! versions {
        ($($variant:ident => $t:ty),* $(,)?) => {
            $(
                for v in <$t as Message>::VERSIONS.min..=<$t as Message>::VERSIONS.max {
                    out.push((<$t as Request>::KEY, v));
                }
            )*
        };
    }
    for_each_request!(versions);
    out
}

// ---------------------------------------------------------------------------------------------
// Sample requests, encoded at every version kafka-protocol can encode them at.

struct Case {
    api_key: i16,
    version: i16,
    label: &'static str,
    bytes: Vec<u8>,
}

fn s(x: &'static str) -> StrBytes {
    StrBytes::from_static_str(x)
}

fn topic(x: &'static str) -> TopicName {
    TopicName(s(x))
}

fn uuid(n: u8) -> uuid::Uuid {
    uuid::Uuid::from_bytes([n; 16])
}

fn push<T: Encodable + Message + Request>(out: &mut Vec<Case>, label: &'static str, msg: T) {
    for version in T::VERSIONS.min..=T::VERSIONS.max {
        let mut buf = BytesMut::new();
        if msg.encode(&mut buf, version).is_ok() {
            out.push(Case {
                api_key: T::KEY,
                version,
                label,
                bytes: buf.to_vec(),
            });
        }
    }
}

fn with_unknown_tag<T>(
    mut msg: T,
    f: impl FnOnce(&mut T) -> &mut std::collections::BTreeMap<i32, Bytes>,
) -> T {
    f(&mut msg).insert(1000, Bytes::from_static(b"xyz"));
    msg
}

/// Label of the generated samples (every field that exists at the version set, see `samples.rs`).
const GENERATED: &str = "generated";
/// Label of the generated samples with nullable fields null.
const GENERATED_NULLS: &str = "generated nulls";

/// Encodes `T`'s generated sample at every version (skipping encodings kafka-protocol refuses;
/// `generated_samples_encode_at_every_version` asserts the populated ones never fail).
fn push_generated<T: Encodable + Message + Request + Sample>(out: &mut Vec<Case>, nulls: bool) {
    let label = if nulls { GENERATED_NULLS } else { GENERATED };
    for version in T::VERSIONS.min..=T::VERSIONS.max {
        let mut buf = BytesMut::new();
        if T::sample(version, nulls).encode(&mut buf, version).is_ok() {
            out.push(Case {
                api_key: T::KEY,
                version,
                label,
                bytes: buf.to_vec(),
            });
        }
    }
}

fn cases() -> Vec<Case> {
    let mut out = vec![];
    macro_rules! defaults {
        ($($variant:ident => $t:ty),* $(,)?) => { $( push(&mut out, "default", <$t>::default()); )* };
    }
    for_each_request!(defaults);
    macro_rules! generated {
        ($($variant:ident => $t:ty),* $(,)?) => {
            $( push_generated::<$t>(&mut out, false); )*
            $( push_generated::<$t>(&mut out, true); )*
        };
    }
    for_each_request!(generated);

    let records = Bytes::from_static(b"not-really-a-record-batch");
    let produce_topics = |with_ids: bool| {
        (0..2u8)
            .map(|t| {
                let tp = TopicProduceData::default().with_partition_data(
                    (0..2)
                        .map(|p| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(records.clone()))
                        })
                        .collect(),
                );
                if with_ids {
                    tp.with_topic_id(uuid(t + 1))
                } else {
                    tp.with_name(topic(if t == 0 { "t0" } else { "t1" }))
                }
            })
            .collect::<Vec<_>>()
    };
    for with_ids in [false, true] {
        let req = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(s("txn"))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(produce_topics(with_ids));
        push(&mut out, "produce 2x2", req.clone());
        push(
            &mut out,
            "produce 2x2 + unknown tag",
            with_unknown_tag(req, |m| &mut m.unknown_tagged_fields),
        );
    }

    for with_ids in [false, true] {
        let fetch_topic = |i: u8| {
            let t = FetchTopic::default().with_partitions(
                (0..2)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(42)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            );
            if with_ids {
                t.with_topic_id(uuid(i))
            } else {
                t.with_topic(topic("fetched"))
            }
        };
        let forgotten = |i: u8| {
            let t = ForgottenTopic::default().with_partitions(vec![1, 2, 3]);
            if with_ids {
                t.with_topic_id(uuid(i))
            } else {
                t.with_topic(topic("forgotten"))
            }
        };
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_topics(vec![fetch_topic(1), fetch_topic(2)])
            .with_forgotten_topics_data(vec![forgotten(3)])
            .with_rack_id(s("rack-a"));
        push(&mut out, "fetch topics+forgotten", req.clone());
        push(
            &mut out,
            "fetch + cluster_id tag",
            req.clone().with_cluster_id(Some(s("cluster"))),
        );
        push(
            &mut out,
            "fetch + replica_state tag",
            req.clone()
                .with_cluster_id(Some(s("cluster")))
                .with_replica_state(
                    ReplicaState::default()
                        .with_replica_id(BrokerId(3))
                        .with_replica_epoch(7),
                ),
        );
        let tagged_partition =
            FetchTopic::default().with_partitions(vec![FetchPartition::default()
                .with_replica_directory_id(uuid(9))
                .with_high_watermark(5)]);
        push(
            &mut out,
            "fetch partition tags",
            req.with_topics(vec![if with_ids {
                tagged_partition.with_topic_id(uuid(4))
            } else {
                tagged_partition.with_topic(topic("x"))
            }]),
        );
    }

    push(
        &mut out,
        "list offsets",
        ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![
                ListOffsetsPartition::default().with_partition_index(0),
                ListOffsetsPartition::default()
                    .with_partition_index(1)
                    .with_timestamp(-2),
            ])]),
    );

    for with_ids in [false, true] {
        let t = |n: &'static str, i: u8| {
            let t = MetadataRequestTopic::default().with_name(Some(topic(n)));
            if with_ids {
                t.with_topic_id(uuid(i))
            } else {
                t
            }
        };
        push(
            &mut out,
            "metadata topics",
            MetadataRequest::default().with_topics(Some(vec![t("a", 1), t("bb", 2), t("ccc", 3)])),
        );
    }
    push(
        &mut out,
        "metadata all topics (null)",
        MetadataRequest::default().with_topics(None),
    );

    push(
        &mut out,
        "offset commit",
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s("m"))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(10)
                        .with_committed_metadata(Some(s("meta"))),
                    OffsetCommitRequestPartition::default().with_committed_metadata(None),
                ])]),
    );

    push(
        &mut out,
        "offset fetch topics",
        OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![0, 1, 2])])),
    );
    push(
        &mut out,
        "offset fetch groups",
        OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("g1")))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0, 1])])),
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("g2")))
                .with_topics(None),
        ]),
    );
    push(
        &mut out,
        "offset fetch groups (member)",
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g2")))
            .with_member_id(Some(s("member")))
            .with_member_epoch(3)
            .with_topics(None)]),
    );
    push(
        &mut out,
        "find coordinator keys",
        FindCoordinatorRequest::default().with_coordinator_keys(vec![s("a"), s("bc")]),
    );
    push(
        &mut out,
        "find coordinator key",
        FindCoordinatorRequest::default().with_key(s("group")),
    );

    push(
        &mut out,
        "join group protocols",
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"\x00\x01abc")),
                JoinGroupRequestProtocol::default().with_name(s("roundrobin")),
            ]),
    );
    push(
        &mut out,
        "leave group members",
        LeaveGroupRequest::default().with_members(vec![
            MemberIdentity::default().with_member_id(s("m1")),
            MemberIdentity::default()
                .with_member_id(s("m2"))
                .with_group_instance_id(Some(s("i2"))),
        ]),
    );
    push(
        &mut out,
        "leave group member",
        LeaveGroupRequest::default().with_member_id(s("m1")),
    );
    push(
        &mut out,
        "sync group assignments",
        SyncGroupRequest::default().with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(s("m1"))
                .with_assignment(Bytes::from_static(b"assignment-bytes")),
            SyncGroupRequestAssignment::default().with_member_id(s("m2")),
        ]),
    );
    push(
        &mut out,
        "describe groups",
        DescribeGroupsRequest::default().with_groups(vec![GroupId(s("a")), GroupId(s("b"))]),
    );
    push(
        &mut out,
        "list groups filters",
        ListGroupsRequest::default()
            .with_states_filter(vec![s("Stable")])
            .with_types_filter(vec![s("classic"), s("consumer")]),
    );
    push(
        &mut out,
        "list groups states",
        ListGroupsRequest::default().with_states_filter(vec![s("Stable"), s("Empty")]),
    );
    push(
        &mut out,
        "api versions client",
        ApiVersionsRequest::default()
            .with_client_software_name(s("odradek-test"))
            .with_client_software_version(s("1.0")),
    );
    push(
        &mut out,
        "create topics assignments+configs",
        CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(topic("t1"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![
                    CreatableReplicaAssignment::default()
                        .with_partition_index(0)
                        .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
                    CreatableReplicaAssignment::default().with_partition_index(1),
                ])
                .with_configs(vec![
                    CreatableTopicConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact"))),
                    CreatableTopicConfig::default()
                        .with_name(s("x"))
                        .with_value(None),
                ]),
            CreatableTopic::default()
                .with_name(topic("t2"))
                .with_num_partitions(3),
        ]),
    );
    push(
        &mut out,
        "delete topics names",
        DeleteTopicsRequest::default().with_topic_names(vec![topic("a"), topic("b")]),
    );
    push(
        &mut out,
        "delete topics states",
        DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic("a"))),
            DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(uuid(1)),
        ]),
    );
    push(
        &mut out,
        "init producer id",
        InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("tx")))),
    );
    push(
        &mut out,
        "offset for leader epoch",
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![
                OffsetForLeaderPartition::default().with_partition(0),
                OffsetForLeaderPartition::default()
                    .with_partition(1)
                    .with_leader_epoch(4),
            ])]),
    );
    push(
        &mut out,
        "describe configs",
        DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("segment.bytes")])),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1"))
                .with_configuration_keys(None),
        ]),
    );
    push(
        &mut out,
        "create partitions",
        CreatePartitionsRequest::default().with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(topic("t"))
                .with_count(4)
                .with_assignments(Some(vec![
                    CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(vec![BrokerId(2), BrokerId(3)]),
                ])),
            CreatePartitionsTopic::default()
                .with_name(topic("u"))
                .with_assignments(None),
        ]),
    );
    push(
        &mut out,
        "delete groups",
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("a")), GroupId(s("b"))]),
    );
    push(
        &mut out,
        "list partition reassignments",
        ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
            ListPartitionReassignmentsTopics::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![0, 5]),
        ])),
    );
    push(
        &mut out,
        "list partition reassignments (all)",
        ListPartitionReassignmentsRequest::default().with_topics(None),
    );
    push(
        &mut out,
        "offset delete",
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0),
                    OffsetDeleteRequestPartition::default().with_partition_index(1),
                ])]),
    );
    push(
        &mut out,
        "describe cluster + unknown tag",
        with_unknown_tag(DescribeClusterRequest::default(), |m| {
            &mut m.unknown_tagged_fields
        }),
    );
    push(
        &mut out,
        "describe producers",
        DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(topic("t"))
            .with_partition_indexes(vec![0, 1, 2])]),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Valid encodings are accepted and consumed exactly.

#[test]
fn table_matches_kafka_protocol_versions() {
    let mut expected = vec![];
    macro_rules! ranges {
        ($($variant:ident => $t:ty),* $(,)?) => {
            $( expected.push((<$t as Request>::KEY, <$t as Message>::VERSIONS.min, <$t as Message>::VERSIONS.max)); )*
        };
    }
    for_each_request!(ranges);
    expected.sort();
    let mut actual: Vec<_> = covered_apis().collect();
    actual.sort();
    assert_eq!(actual, expected);
}

#[test]
fn valid_encodings_are_accepted_and_fully_consumed() {
    let cases = cases();
    let mut failures = vec![];
    for c in &cases {
        match walk_request_body(c.api_key, c.version, &c.bytes) {
            Ok(n) if n == c.bytes.len() => {}
            other => failures.push(format!(
                "api {} v{} [{}] len {}: {:?}",
                c.api_key,
                c.version,
                c.label,
                c.bytes.len(),
                other
            )),
        }
        // The encoding is decodable and kafka-protocol consumes the same number of bytes.
        let consumed = decode_tracked(c.api_key, c.version, &c.bytes)
            .unwrap_or_else(|e| panic!("api {} v{} [{}]: {e}", c.api_key, c.version, c.label));
        assert_eq!(
            consumed,
            c.bytes.len(),
            "api {} v{} [{}]",
            c.api_key,
            c.version,
            c.label
        );
        // Trailing bytes are tolerated by the public API.
        let mut trailing = c.bytes.clone();
        trailing.extend_from_slice(&[0xff; 3]);
        assert_eq!(check_request_body(c.api_key, c.version, &trailing), Ok(()));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every version of every covered api is exercised, and every api has a non-default sample.
    for (key, version) in all_versions() {
        assert!(
            cases
                .iter()
                .any(|c| c.api_key == key && c.version == version),
            "no sample encodes api {key} v{version}"
        );
    }
    for (key, _, _) in covered_apis() {
        assert!(
            cases
                .iter()
                .any(|c| c.api_key == key && c.label != "default"),
            "no populated sample for api {key}"
        );
    }
}

#[test]
fn populated_samples_cover_nested_arrays() {
    // Guard against the samples silently failing to encode (they are skipped on encode error).
    let cases = cases();
    let count = |label: &str| cases.iter().filter(|c| c.label == label).count();
    let mut labels: Vec<_> = cases.iter().map(|c| c.label).collect();
    labels.dedup();
    for l in labels {
        let versions: Vec<_> = cases
            .iter()
            .filter(|c| c.label == l)
            .map(|c| (c.api_key, c.version))
            .collect();
        println!("{l}: {versions:?}");
        assert!(!versions.is_empty());
    }
    assert_eq!(count("produce 2x2"), 2 * 11); // with names v3-12 and with ids v13 .. both
    assert!(count("fetch topics+forgotten") >= 15);
    assert!(count("fetch + replica_state tag") >= 4);
    assert!(count("fetch partition tags") >= 2);
    assert!(count("offset fetch groups") >= 2);
    assert!(count("offset fetch groups (member)") >= 1);
    assert!(count("create topics assignments+configs") >= 6);
    assert!(count("join group protocols") >= 10);
    assert!(count("metadata topics") >= 14);
}

#[test]
fn unknown_api_and_version() {
    // Key 17 (SaslHandshake) used to be the example of an unknown API; every ApiKey is covered
    // now, so an empty SaslHandshake v1 body is truncated, and 4 (LeaderAndIsr, which
    // kafka-protocol 0.18 does not have) is the unknown one.
    assert!(matches!(
        check_request_body(17, 1, &[]),
        Err(GuardError::Truncated { .. })
    ));
    assert!(matches!(
        check_request_body(4, 1, &[]),
        Err(GuardError::UnknownApi { api_key: 4, .. })
    ));
    for key in [5, 6, 7, 88, 89, 93, i16::MAX, i16::MIN] {
        assert!(ApiKey::try_from(key).is_err());
        assert_eq!(
            check_request_body(key, 0, &[0; 64]),
            Err(GuardError::UnknownApi {
                api_key: key,
                api_version: 0
            })
        );
    }
    assert!(matches!(
        check_request_body(3, 99, &[]),
        Err(GuardError::UnsupportedVersion { api_key: 3, .. })
    ));
    assert!(matches!(
        check_request_body(-1, 0, &[]),
        Err(GuardError::UnknownApi { .. })
    ));
}

#[test]
fn every_api_key_is_covered_at_every_decodable_version() {
    // `request_versions` is an exhaustive match over `ApiKey`, so this iterates every request
    // type kafka-protocol has; each must be covered at exactly its `Message::VERSIONS`.
    let covered: Vec<_> = covered_apis().collect();
    let mut missing = vec![];
    for key in ApiKey::iter() {
        let (request_key, min, max) = request_versions(key);
        assert_eq!(request_key, key as i16, "{key:?}: Request::KEY");
        match covered.iter().find(|c| c.0 == key as i16) {
            Some(&c) if c == (key as i16, min, max) => {}
            other => missing.push(format!("{key:?} v{min}..={max}: guard covers {other:?}")),
        }
        for v in [min - 1, max + 1, i16::MIN, i16::MAX] {
            if !(min..=max).contains(&v) {
                assert_eq!(
                    check_request_body(key as i16, v, &[0; 64]),
                    Err(GuardError::UnsupportedVersion {
                        api_key: key as i16,
                        api_version: v,
                        min,
                        max
                    })
                );
            }
        }
        for v in min..=max {
            assert!(
                !matches!(
                    check_request_body(key as i16, v, &[]),
                    Err(GuardError::UnknownApi { .. } | GuardError::UnsupportedVersion { .. })
                ),
                "{key:?} v{v}"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "request types not covered by the guard:\n{}",
        missing.join("\n")
    );
    // Nothing else is covered, each key once, in key order.
    assert_eq!(covered.len(), ApiKey::iter().count());
    assert!(covered.windows(2).all(|w| w[0].0 < w[1].0));
    // Sanity: the list really is kafka-protocol's, not the 25 APIs the guard started with.
    assert!(covered.len() >= 87, "{} apis", covered.len());
    let versions: usize = covered
        .iter()
        .map(|&(_, min, max)| (max - min + 1) as usize)
        .sum();
    assert_eq!(versions, all_versions().len());
    println!("{} api keys, {versions} versions covered", covered.len());
}

#[test]
fn generated_samples_encode_at_every_version() {
    // The populated samples must encode (and so be checked) at every version of every API; the
    // null variants may be refused where a field is not nullable, but not everywhere.
    let mut failures = vec![];
    let mut nulls = 0;
    fn check<T: Encodable + Message + Request + Sample>(
        failures: &mut Vec<String>,
        nulls: &mut usize,
    ) {
        for v in T::VERSIONS.min..=T::VERSIONS.max {
            let mut buf = BytesMut::new();
            if let Err(e) = T::sample(v, false).encode(&mut buf, v) {
                failures.push(format!("api {} v{v}: {e}", T::KEY));
            }
            let mut buf = BytesMut::new();
            if T::sample(v, true).encode(&mut buf, v).is_ok() {
                *nulls += 1;
            }
        }
    }
    macro_rules! each {
        ($($variant:ident => $t:ty),* $(,)?) => { $( check::<$t>(&mut failures, &mut nulls); )* };
    }
    for_each_request!(each);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        nulls > all_versions().len() / 2,
        "{nulls} null samples encode"
    );

    // Every (api, version) has a generated case, and it is not just the default value for APIs
    // with variable-length fields.
    let cases = cases();
    for (key, version) in all_versions() {
        assert!(
            cases
                .iter()
                .any(|c| c.api_key == key && c.version == version && c.label == GENERATED),
            "no generated sample for api {key} v{version}"
        );
    }
    let generated: Vec<_> = cases.iter().filter(|c| c.label == GENERATED).collect();
    let bigger = generated
        .iter()
        .filter(|g| {
            cases.iter().any(|d| {
                d.label == "default"
                    && (d.api_key, d.version) == (g.api_key, g.version)
                    && g.bytes.len() > d.bytes.len()
            })
        })
        .count();
    assert!(
        bigger * 10 >= generated.len() * 9,
        "only {bigger} of {} generated samples are bigger than the default",
        generated.len()
    );
}

#[test]
fn generated_samples_reach_every_struct_and_known_tag() {
    // Walking the generated samples visits every struct of the schema at every version it can
    // occur in, and reads every known tagged field at every version it is valid in: no part of
    // the table goes unchecked against kafka-protocol's encoder.
    let cases = cases();
    WALKED.with(|w| *w.borrow_mut() = Some(BTreeSet::new()));
    for c in cases.iter().filter(|c| c.label == GENERATED) {
        assert_eq!(
            walk_request_body(c.api_key, c.version, &c.bytes),
            Ok(c.bytes.len())
        );
    }
    let walked = WALKED.with(|w| w.borrow_mut().take()).unwrap();
    let mut expected = BTreeSet::new();
    let mut names = HashMap::new();
    for m in MESSAGES {
        for v in m.min..=m.max {
            reachable(m.body, v, &mut expected, &mut names);
        }
    }
    let missing: Vec<_> = expected
        .difference(&walked)
        .map(|&(p, v, tag)| format!("{} v{v} tag {tag:?}", names[&p]))
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    let tags = expected.iter().filter(|e| e.2.is_some()).count();
    println!(
        "{} (struct, version) and {tags} (tag, version) walked",
        expected.len() - tags
    );
    assert!(tags > 0);
}

#[test]
fn strict_prefixes_of_valid_encodings_are_rejected() {
    // The walk of a prefix follows the walk of the whole encoding until it runs out of bytes,
    // so a body the guard consumes exactly is rejected at every shorter length.
    let mut checked = 0;
    for c in cases() {
        assert_eq!(
            walk_request_body(c.api_key, c.version, &c.bytes),
            Ok(c.bytes.len()),
            "api {} v{} [{}]",
            c.api_key,
            c.version,
            c.label
        );
        for cut in 0..c.bytes.len() {
            let res = walk_request_body(c.api_key, c.version, &c.bytes[..cut]);
            assert!(
                matches!(
                    res,
                    Err(GuardError::Truncated { .. } | GuardError::LengthTooLarge { .. })
                ),
                "api {} v{} [{}] cut {cut}/{}: {res:?}",
                c.api_key,
                c.version,
                c.label,
                c.bytes.len()
            );
            checked += 1;
        }
    }
    println!("{checked} strict prefixes rejected");
    assert!(checked > 10_000, "{checked} prefixes");
}

#[test]
fn inflated_lengths_are_rejected_or_decode_safely() {
    // Overwrite every position of every sample with a huge length in each wire form (i16, i32,
    // unsigned varint). Whatever the guard accepts must decode within the allocation bound and
    // agree on the extent; and every API must see inflated lengths rejected as too large.
    let patterns: [(&[u8], usize); 3] = [
        (&[0x7f, 0xff], 2),
        (&[0x7f, 0xff, 0xff, 0xff], 4),
        (&[0xff, 0xff, 0xff, 0xff, 0x0f], 1),
    ];
    let mut too_large: std::collections::BTreeMap<i16, usize> =
        covered_apis().map(|(key, _, _)| (key, 0)).collect();
    let mut accepted = 0;
    for c in cases() {
        if c.label != GENERATED {
            continue;
        }
        for i in 0..c.bytes.len() {
            for (pattern, replaces) in patterns {
                if i + replaces > c.bytes.len() {
                    continue;
                }
                let mut body = c.bytes[..i].to_vec();
                body.extend_from_slice(pattern);
                body.extend_from_slice(&c.bytes[i + replaces..]);
                match walk_request_body(c.api_key, c.version, &body) {
                    Err(GuardError::LengthTooLarge { .. }) => {
                        *too_large.get_mut(&c.api_key).unwrap() += 1;
                    }
                    Err(_) => {}
                    Ok(_) => check_accepted(c.api_key, c.version, &body, &mut accepted),
                }
            }
        }
    }
    println!(
        "{} inflated lengths rejected as too large, {accepted} mutants accepted",
        too_large.values().sum::<usize>()
    );
    let never: Vec<_> = too_large.iter().filter(|(_, &n)| n == 0).collect();
    assert!(
        never.is_empty(),
        "no inflated length rejected for {never:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Tiny requests declaring huge counts are rejected.

#[test]
fn huge_counts_are_rejected() {
    // Metadata v1: topics array of 2^31-1 elements.
    assert_eq!(
        check_request_body(3, 1, &[0x7f, 0xff, 0xff, 0xff]),
        Err(GuardError::LengthTooLarge {
            field: "MetadataRequest.topics",
            declared: i32::MAX as u64,
            remaining: 0
        })
    );
    // Produce v9: null transactional id, acks, timeout, topic_data compact count 2^32-2.
    let body = [
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00,
    ];
    assert!(body.len() < 20);
    assert!(matches!(
        check_request_body(0, 9, &body),
        Err(GuardError::LengthTooLarge { field: "ProduceRequest.topic_data", declared, .. })
            if declared == u64::from(u32::MAX) - 1
    ));
    // Produce v3: one topic whose partition array declares 2^31-1 entries.
    let mut body = vec![0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10];
    body.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(
        check_request_body(0, 3, &body),
        Err(GuardError::LengthTooLarge {
            field: "TopicProduceData.partition_data",
            ..
        })
    ));
    // Bytes and string lengths.
    let mut body = vec![0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10];
    body.extend_from_slice(&[
        0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ]);
    assert!(matches!(
        check_request_body(0, 3, &body),
        Err(GuardError::LengthTooLarge {
            field: "PartitionProduceData.records",
            ..
        })
    ));
    assert!(matches!(
        check_request_body(3, 1, &[0, 0, 0, 1, 0x7f, 0xff]),
        Err(GuardError::LengthTooLarge {
            field: "MetadataRequestTopic.name",
            ..
        })
    ));
    // Fixed-size elements: 4 bytes each.
    assert!(matches!(
        check_request_body(61, 0, &[2, 2, b't', 3, 0, 0, 0, 0]),
        Err(GuardError::LengthTooLarge {
            field: "TopicRequest.partition_indexes",
            declared: 2,
            remaining: 4
        })
    ));
    // Negative lengths other than -1.
    assert!(matches!(
        check_request_body(3, 1, &[0xff, 0xff, 0xff, 0xfe]),
        Err(GuardError::NegativeLength { .. })
    ));
    // Tagged sections: huge tagged-field count, huge tagged-field size.
    assert!(matches!(
        check_request_body(60, 0, &[0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(GuardError::LengthTooLarge {
            field: "DescribeClusterRequest",
            ..
        })
    ));
    assert!(matches!(
        check_request_body(60, 0, &[0, 1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(GuardError::LengthTooLarge {
            field: "DescribeClusterRequest",
            ..
        })
    ));
    // Known tag whose value does not fill its declared size, and tag invalid for the version.
    let mut fetch = BytesMut::new();
    FetchRequest::default().encode(&mut fetch, 12).unwrap();
    let mut body = fetch.to_vec();
    let last = body.len() - 1;
    assert_eq!(body[last], 0);
    body.truncate(last);
    body.extend_from_slice(&[1, 0, 3, 1, b'c', 0]); // cluster_id "c" (2 bytes) in a 3-byte tag
    assert!(matches!(
        check_request_body(1, 12, &body),
        Err(GuardError::TaggedFieldSizeMismatch {
            field: "FetchRequest.cluster_id",
            ..
        })
    ));
    body.truncate(last);
    body.extend_from_slice(&[1, 1, 1, 0]); // replica_state is only valid from v15
    assert!(matches!(
        check_request_body(1, 12, &body),
        Err(GuardError::TagNotValidForVersion { tag: 1, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// 3. Truncations never panic; accepted prefixes decode within the allocation bound.

#[test]
fn truncations_never_panic() {
    for c in cases() {
        for cut in 0..c.bytes.len() {
            let body = &c.bytes[..cut];
            if let Ok(n) = walk_request_body(c.api_key, c.version, body) {
                assert!(n <= cut);
                if let Ok(consumed) = decode_tracked(c.api_key, c.version, body) {
                    assert_eq!(consumed, n, "api {} v{} cut {cut}", c.api_key, c.version);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Random and mutated bodies.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        // Bias towards boundary values that matter for lengths and varints.
        match self.below(8) {
            0 => 0,
            1 => 0xff,
            2 => 0x7f,
            3 => 0x80,
            4 => 1,
            _ => self.next() as u8,
        }
    }
}

fn check_accepted(api_key: i16, version: i16, body: &[u8], accepted: &mut usize) {
    if let Ok(n) = walk_request_body(api_key, version, body) {
        *accepted += 1;
        assert!(n <= body.len());
        // Whatever kafka-protocol makes of it, it must not abort and must stay within the bound;
        // if it decodes, it must agree with the walker on the request's extent.
        if let Ok(consumed) = decode_tracked(api_key, version, body) {
            assert_eq!(consumed, n, "api {api_key} v{version} body {body:02x?}");
        }
    }
}

#[test]
fn random_bodies_never_panic_and_accepted_ones_decode_safely() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for (api_key, version) in all_versions() {
        for _ in 0..300 {
            let len = rng.below(64);
            let body: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            check_accepted(api_key, version, &body, &mut accepted);
        }
    }
    assert!(accepted > 0);
}

#[test]
fn mutated_encodings_never_panic_and_accepted_ones_decode_safely() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut accepted = 0;
    let mut total = 0;
    for c in cases() {
        for _ in 0..60 {
            let mut body = c.bytes.clone();
            for _ in 0..1 + rng.below(3) {
                match rng.below(4) {
                    0 | 1 if !body.is_empty() => {
                        let i = rng.below(body.len());
                        body[i] = rng.byte();
                    }
                    2 => {
                        let i = rng.below(body.len() + 1);
                        body.insert(i, rng.byte());
                    }
                    _ if !body.is_empty() => {
                        let i = rng.below(body.len());
                        body.remove(i);
                    }
                    _ => {}
                }
            }
            total += 1;
            check_accepted(c.api_key, c.version, &body, &mut accepted);
        }
    }
    assert!(
        accepted > total / 20,
        "only {accepted} of {total} mutants accepted"
    );
}

#[test]
fn allocation_tracking_detects_what_the_guard_prevents() {
    // Metadata v1 declaring 1,000,000 topics in a 4-byte body: the guard rejects it, and decoding
    // it unguarded (safe at this size) allocates far beyond the bound the tests enforce.
    let body = 1_000_000i32.to_be_bytes();
    assert!(matches!(
        check_request_body(3, 1, &body),
        Err(GuardError::LengthTooLarge { .. })
    ));
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let res = kp_decode(3, 1, &body).unwrap();
    TRACKING.with(|t| t.set(false));
    assert!(res.is_err());
    assert!(LARGEST.with(Cell::get) > alloc_bound(body.len()));
}

/// Writes every sample encoding as a fuzz seed (`[api selector, version selector, body..]`) into
/// `$ODRADEK_FUZZ_SEED_DIR`: `ODRADEK_FUZZ_SEED_DIR=fuzz/corpus/request_decode cargo test
/// --lib write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::env::var("ODRADEK_FUZZ_SEED_DIR").expect("ODRADEK_FUZZ_SEED_DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let apis: Vec<_> = covered_apis().collect();
    for (i, c) in cases().iter().enumerate() {
        let idx = apis.iter().position(|a| a.0 == c.api_key).unwrap();
        let mut seed = vec![idx as u8, (c.version - apis[idx].1) as u8];
        seed.extend_from_slice(&c.bytes);
        std::fs::write(format!("{dir}/seed-{i:04}"), seed).unwrap();
    }
}
