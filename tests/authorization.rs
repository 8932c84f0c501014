//! No served API skips its authorization check: every API in the served table is sent, at its
//! highest version, by a principal every ACL denies, and each answer must carry Kafka's
//! authorization error for the resource it names (or, for the APIs Kafka filters instead of
//! refusing, show nothing). An API added to the table without a row here fails the test.
//! Afterwards nothing the refused requests asked for has happened.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{batch, produce_request, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use odradek::api::SERVED_APIS;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

const SECRET: &str = "secret";
const GROUP: &str = "secret-group";
const TXN: &str = "secret-txn";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic() -> TopicName {
    TopicName(s(SECRET))
}

fn group() -> GroupId {
    GroupId(s(GROUP))
}

fn txn() -> TransactionalId {
    TransactionalId(s(TXN))
}

/// What a refused principal must get from one API.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// Every error code of the answer that concerns the named resources is this one.
    Error(i16),
    /// Kafka filters instead of refusing: the answer lists nothing and carries no error.
    Filtered,
    /// Kafka does not authorize this API (answered for anyone).
    NotChecked,
}

/// What one API's answer showed: its error codes (top level and per resource), or how many
/// resources it listed.
#[derive(Debug)]
enum Answer {
    Codes(Vec<i16>),
    Listed(usize),
    Answered,
}

/// Denies everything to `User:ANONYMOUS` (the principal of a PLAINTEXT listener): a DENY ALL
/// on every topic, group and transactional id (the `*` wildcard) and on the cluster, the
/// cluster last since creating ACLs needs ALTER on it.
async fn deny_everything(c: &mut Client) {
    let deny = |resource_type: i8, name: &str| {
        create_acls_request::AclCreation::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_resource_pattern_type(3)
            .with_principal(s("User:ANONYMOUS"))
            .with_host(s("*"))
            .with_operation(2)
            .with_permission_type(2)
    };
    let req = CreateAclsRequest::default().with_creations(vec![
        deny(2, "*"),
        deny(3, "*"),
        deny(5, "*"),
        deny(4, "kafka-cluster"),
    ]);
    let r: CreateAclsResponse = c.call(ApiKey::CreateAcls, 3, &req).await;
    assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");
}

#[tokio::test]
async fn every_served_api_refuses_a_principal_without_rights() {
    // No ACL yet: everyone may do everything, so the test sets up its topic, then denies.
    let b = TestBroker::start(&[
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found=true",
    ])
    .await;
    let mut c = b.client().await;
    let req = common::create_topics_request(SECRET, 1, &[]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 0);
    let topic_id = r.topics[0].topic_id;
    let req = produce_request(SECRET, 0, batch(&["kept"], Compression::None), 5000);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    deny_everything(&mut c).await;

    for api in SERVED_APIS {
        let expected = refusal(api.key);
        let answer = call(&mut c, api.key, api.max, topic_id).await;
        let what = format!("{:?} v{}", api.key, api.max);
        match (&expected, &answer) {
            (Refusal::Error(code), Answer::Codes(codes)) => {
                assert!(!codes.is_empty(), "{what}: no error code to check");
                assert!(
                    codes.iter().all(|c| c == code),
                    "{what}: expected {code} everywhere, got {codes:?}"
                );
            }
            (Refusal::Filtered, Answer::Listed(n)) => assert_eq!(*n, 0, "{what} listed {n}"),
            (Refusal::NotChecked, Answer::Answered) => {}
            _ => panic!("{what}: expected {expected:?}, got {answer:?}"),
        }
    }
    assert_nothing_happened(&b).await;
}

/// Kafka's answer to a principal without rights, per API (KafkaApis' checks).
fn refusal(key: ApiKey) -> Refusal {
    use ApiKey::*;
    match key {
        Produce
        | Fetch
        | ListOffsets
        | CreateTopics
        | DeleteTopics
        | DescribeConfigs
        | AlterConfigs
        | IncrementalAlterConfigs
        | CreatePartitions
        | DescribeProducers
        | OffsetForLeaderEpoch
        | DeleteRecords => Refusal::Error(TOPIC_AUTHORIZATION_FAILED),
        Metadata => Refusal::Error(TOPIC_AUTHORIZATION_FAILED),
        FindCoordinator | JoinGroup | SyncGroup | Heartbeat | LeaveGroup | OffsetCommit
        | OffsetFetch | DescribeGroups | DeleteGroups | OffsetDelete => {
            Refusal::Error(GROUP_AUTHORIZATION_FAILED)
        }
        AddOffsetsToTxn | EndTxn | TxnOffsetCommit | DescribeTransactions => {
            Refusal::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        }
        // From v4 only brokers send it (verification), which takes ClusterAction.
        AddPartitionsToTxn
        | WriteTxnMarkers
        | InitProducerId
        | ElectLeaders
        | AlterPartitionReassignments
        | ListPartitionReassignments
        | DescribeLogDirs
        | CreateAcls
        | DescribeAcls
        | DeleteAcls
        | DescribeClientQuotas
        | AlterClientQuotas
        | DescribeUserScramCredentials
        | AlterUserScramCredentials => Refusal::Error(CLUSTER_AUTHORIZATION_FAILED),
        ListGroups | ListTransactions => Refusal::Filtered,
        // Authentication itself (on this PLAINTEXT listener: ILLEGAL_SASL_STATE).
        ApiVersions | DescribeCluster | SaslHandshake | SaslAuthenticate => Refusal::NotChecked,
        other => panic!("no authorization row for served API {other:?}: add one"),
    }
}

/// Sends `key`'s sample request at `v` and collects what the answer says.
async fn call(c: &mut Client, key: ApiKey, v: i16, topic_id: uuid::Uuid) -> Answer {
    use ApiKey::*;
    let codes = Answer::Codes;
    match key {
        Produce => {
            let req = produce_request(SECRET, 0, batch(&["refused"], Compression::None), 5000);
            let r: ProduceResponse = c.call(key, v, &req).await;
            codes(
                r.responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        Fetch => {
            let t = fetch_request::FetchTopic::default()
                .with_topic_id(topic_id)
                .with_topic(topic())
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition_max_bytes(1024)
                ]);
            let req = FetchRequest::default()
                .with_max_bytes(4096)
                .with_topics(vec![t]);
            let r: FetchResponse = c.call(key, v, &req).await;
            let mut all = vec![];
            for t in &r.responses {
                all.extend(t.partitions.iter().map(|p| p.error_code));
            }
            codes(all)
        }
        ListOffsets => {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                    ])]);
            let r: ListOffsetsResponse = c.call(key, v, &req).await;
            codes(
                r.topics[0]
                    .partitions
                    .iter()
                    .map(|p| p.error_code)
                    .collect(),
            )
        }
        Metadata => {
            // Named: refused. (Asking for every topic lists none: checked below.)
            let req = MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ]));
            let r: MetadataResponse = c.call(key, v, &req).await;
            let all: MetadataResponse = c
                .call(key, v, &MetadataRequest::default().with_topics(None))
                .await;
            assert!(all.topics.is_empty(), "every-topic Metadata lists nothing");
            codes(r.topics.iter().map(|t| t.error_code).collect())
        }
        CreateTopics => {
            let r: CreateTopicsResponse = c
                .call(
                    key,
                    v,
                    &common::create_topics_request("refused-new", 1, &[]),
                )
                .await;
            codes(r.topics.iter().map(|t| t.error_code).collect())
        }
        DeleteTopics => {
            let req = DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(topic())),
            ]);
            let r: DeleteTopicsResponse = c.call(key, v, &req).await;
            codes(r.responses.iter().map(|t| t.error_code).collect())
        }
        InitProducerId => {
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let r: InitProducerIdResponse = c.call(key, v, &req).await;
            let with_txn = InitProducerIdRequest::default()
                .with_transactional_id(Some(txn()))
                .with_transaction_timeout_ms(10_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let t: InitProducerIdResponse = c.call(key, v, &with_txn).await;
            assert_eq!(
                t.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "InitProducerId with a transactional id"
            );
            codes(vec![r.error_code])
        }
        DescribeConfigs => {
            let req = DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(SECRET)),
            ]);
            let r: DescribeConfigsResponse = c.call(key, v, &req).await;
            let broker = DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("0")),
            ]);
            let rb: DescribeConfigsResponse = c.call(key, v, &broker).await;
            assert_eq!(
                rb.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED,
                "broker configs"
            );
            codes(r.results.iter().map(|r| r.error_code).collect())
        }
        AlterConfigs => {
            let req = AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(SECRET))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1")))]),
            ]);
            let r: AlterConfigsResponse = c.call(key, v, &req).await;
            codes(r.responses.iter().map(|r| r.error_code).collect())
        }
        IncrementalAlterConfigs => {
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(SECRET))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s("1"))),
                    ]),
            ]);
            let r: IncrementalAlterConfigsResponse = c.call(key, v, &req).await;
            codes(r.responses.iter().map(|r| r.error_code).collect())
        }
        CreatePartitions => {
            let req = CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic())
                    .with_count(3)
                    .with_assignments(None),
            ]);
            let r: CreatePartitionsResponse = c.call(key, v, &req).await;
            codes(r.results.iter().map(|r| r.error_code).collect())
        }
        DescribeCluster => {
            let r: DescribeClusterResponse = c
                .call(
                    key,
                    v,
                    &DescribeClusterRequest::default().with_endpoint_type(1),
                )
                .await;
            assert_eq!(r.error_code, 0);
            Answer::Answered
        }
        DescribeProducers => {
            let req = DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0]),
            ]);
            let r: DescribeProducersResponse = c.call(key, v, &req).await;
            codes(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        ElectLeaders => {
            let req = ElectLeadersRequest::default()
                .with_election_type(0)
                .with_timeout_ms(5000)
                .with_topic_partitions(Some(vec![
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(topic())
                        .with_partitions(vec![0]),
                ]));
            let r: ElectLeadersResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        AlterPartitionReassignments => {
            let req = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(Some(vec![BrokerId(0)])),
                        ]),
                ]);
            let r: AlterPartitionReassignmentsResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        ListPartitionReassignments => {
            let r: ListPartitionReassignmentsResponse = c
                .call(key, v, &ListPartitionReassignmentsRequest::default())
                .await;
            codes(vec![r.error_code])
        }
        FindCoordinator => {
            let req = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![s(GROUP)]);
            let r: FindCoordinatorResponse = c.call(key, v, &req).await;
            let t = FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s(TXN)]);
            let rt: FindCoordinatorResponse = c.call(key, v, &t).await;
            assert_eq!(
                rt.coordinators[0].error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "transaction coordinator"
            );
            codes(r.coordinators.iter().map(|c| c.error_code).collect())
        }
        JoinGroup => {
            let req = JoinGroupRequest::default()
                .with_group_id(group())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[0; 10]))]);
            let r: JoinGroupResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        SyncGroup => {
            let req = SyncGroupRequest::default()
                .with_group_id(group())
                .with_member_id(s("m"));
            let r: SyncGroupResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        Heartbeat => {
            let req = HeartbeatRequest::default()
                .with_group_id(group())
                .with_member_id(s("m"));
            let r: HeartbeatResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        LeaveGroup => {
            let req = LeaveGroupRequest::default()
                .with_group_id(group())
                .with_members(vec![
                    leave_group_request::MemberIdentity::default().with_member_id(s("m"))
                ]);
            let r: LeaveGroupResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        OffsetCommit => {
            let req = OffsetCommitRequest::default()
                .with_group_id(group())
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(1),
                        ]),
                ]);
            let r: OffsetCommitResponse = c.call(key, v, &req).await;
            codes(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        OffsetFetch => {
            let req = OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(group())
                    .with_topics(None),
            ]);
            let r: OffsetFetchResponse = c.call(key, v, &req).await;
            codes(r.groups.iter().map(|g| g.error_code).collect())
        }
        DescribeGroups => {
            let req = DescribeGroupsRequest::default().with_groups(vec![group()]);
            let r: DescribeGroupsResponse = c.call(key, v, &req).await;
            codes(r.groups.iter().map(|g| g.error_code).collect())
        }
        DeleteGroups => {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![group()]);
            let r: DeleteGroupsResponse = c.call(key, v, &req).await;
            codes(r.results.iter().map(|g| g.error_code).collect())
        }
        OffsetDelete => {
            let req = OffsetDeleteRequest::default()
                .with_group_id(group())
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]);
            let r: OffsetDeleteResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        ListGroups => {
            let r: ListGroupsResponse = c.call(key, v, &ListGroupsRequest::default()).await;
            assert_eq!(r.error_code, 0);
            Answer::Listed(r.groups.len())
        }
        OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(topic())
                        .with_partitions(vec![
                            offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_current_leader_epoch(-1)
                                .with_leader_epoch(0),
                        ]),
                ]);
            let r: OffsetForLeaderEpochResponse = c.call(key, v, &req).await;
            codes(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        DeleteRecords => {
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(-1),
                    ])]);
            let r: DeleteRecordsResponse = c.call(key, v, &req).await;
            codes(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        DescribeLogDirs => {
            let r: DescribeLogDirsResponse = c
                .call(key, v, &DescribeLogDirsRequest::default().with_topics(None))
                .await;
            assert!(r.results.is_empty(), "no log dir shown");
            codes(vec![r.error_code])
        }
        AddPartitionsToTxn => {
            let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn())
                    .with_producer_id(ProducerId(1))
                    .with_verify_only(true)
                    .with_topics(vec![
                        add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![0]),
                    ]),
            ]);
            let r: AddPartitionsToTxnResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        AddOffsetsToTxn => {
            let req = AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn())
                .with_producer_id(ProducerId(1))
                .with_group_id(group());
            let r: AddOffsetsToTxnResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        EndTxn => {
            let req = EndTxnRequest::default()
                .with_transactional_id(txn())
                .with_producer_id(ProducerId(1))
                .with_committed(true);
            let r: EndTxnResponse = c.call(key, v, &req).await;
            codes(vec![r.error_code])
        }
        WriteTxnMarkers => {
            let req = WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(7))
                    .with_transaction_result(false)
                    .with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(topic())
                            .with_partition_indexes(vec![0]),
                    ]),
            ]);
            let r: WriteTxnMarkersResponse = c.call(key, v, &req).await;
            codes(
                r.markers
                    .iter()
                    .flat_map(|m| m.topics.iter())
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        TxnOffsetCommit => {
            let req = TxnOffsetCommitRequest::default()
                .with_transactional_id(txn())
                .with_group_id(group())
                .with_producer_id(ProducerId(1))
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_committed_offset(1),
                        ]),
                ]);
            let r: TxnOffsetCommitResponse = c.call(key, v, &req).await;
            codes(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
            )
        }
        DescribeTransactions => {
            let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn()]);
            let r: DescribeTransactionsResponse = c.call(key, v, &req).await;
            codes(r.transaction_states.iter().map(|t| t.error_code).collect())
        }
        ListTransactions => {
            let r: ListTransactionsResponse = c
                .call(
                    key,
                    v,
                    &ListTransactionsRequest::default().with_duration_filter(-1),
                )
                .await;
            assert_eq!(r.error_code, 0);
            Answer::Listed(r.transaction_states.len())
        }
        CreateAcls => {
            let req = CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s(SECRET))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:ANONYMOUS"))
                    .with_host(s("*"))
                    .with_operation(2)
                    .with_permission_type(3),
            ]);
            let r: CreateAclsResponse = c.call(key, v, &req).await;
            codes(r.results.iter().map(|r| r.error_code).collect())
        }
        DescribeAcls => {
            let r: DescribeAclsResponse = c.call(key, v, &any_acl_describe()).await;
            assert!(r.resources.is_empty());
            codes(vec![r.error_code])
        }
        DeleteAcls => {
            let req = DeleteAclsRequest::default().with_filters(vec![any_acl_delete()]);
            let r: DeleteAclsResponse = c.call(key, v, &req).await;
            codes(r.filter_results.iter().map(|f| f.error_code).collect())
        }
        DescribeClientQuotas => {
            let r: DescribeClientQuotasResponse = c
                .call(key, v, &DescribeClientQuotasRequest::default())
                .await;
            assert!(r.entries.is_none_or(|e| e.is_empty()), "no quota shown");
            codes(vec![r.error_code])
        }
        AlterClientQuotas => {
            let req = AlterClientQuotasRequest::default().with_entries(vec![
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![alter_client_quotas_request::EntityData::default()
                        .with_entity_type(s("user"))
                        .with_entity_name(Some(s("ANONYMOUS")))])
                    .with_ops(vec![alter_client_quotas_request::OpData::default()
                        .with_key(s("producer_byte_rate"))
                        .with_value(1.0)]),
            ]);
            let r: AlterClientQuotasResponse = c.call(key, v, &req).await;
            codes(r.entries.iter().map(|e| e.error_code).collect())
        }
        DescribeUserScramCredentials => {
            let r: DescribeUserScramCredentialsResponse = c
                .call(
                    key,
                    v,
                    &DescribeUserScramCredentialsRequest::default().with_users(None),
                )
                .await;
            assert!(r.results.is_empty(), "no user shown");
            codes(vec![r.error_code])
        }
        AlterUserScramCredentials => {
            let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(s("mallory"))
                    .with_mechanism(1)
                    .with_iterations(4096)
                    .with_salt(bytes::Bytes::from_static(b"salt"))
                    .with_salted_password(bytes::Bytes::from_static(&[7; 32])),
            ]);
            let r: AlterUserScramCredentialsResponse = c.call(key, v, &req).await;
            codes(r.results.iter().map(|e| e.error_code).collect())
        }
        SaslHandshake => {
            let req = SaslHandshakeRequest::default().with_mechanism(s("PLAIN"));
            let r: SaslHandshakeResponse = c.call(key, v, &req).await;
            assert_eq!(
                r.error_code, 34,
                "ILLEGAL_SASL_STATE on a PLAINTEXT listener"
            );
            Answer::Answered
        }
        SaslAuthenticate => {
            let req = SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from_static(b"\0u\0p"));
            let r: SaslAuthenticateResponse = c.call(key, v, &req).await;
            assert_eq!(
                r.error_code, 34,
                "ILLEGAL_SASL_STATE on a PLAINTEXT listener"
            );
            Answer::Answered
        }
        ApiVersions => {
            let r: ApiVersionsResponse = c.call(key, v, &ApiVersionsRequest::default()).await;
            assert_eq!(r.error_code, 0);
            Answer::Answered
        }
        other => panic!("no sample request for served API {other:?}: add one"),
    }
}

fn any_acl_describe() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

fn any_acl_delete() -> delete_acls_request::DeleteAclsFilter {
    delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

/// The refused requests changed nothing: the topic keeps its one partition, its one record,
/// its configs; no topic was created; the ACLs are all still there.
async fn assert_nothing_happened(b: &TestBroker) {
    let broker = &b.running.as_ref().unwrap().broker;
    let topics: Vec<String> = broker
        .cluster
        .topics()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(!topics.iter().any(|t| t == "refused-new"), "{topics:?}");
    let secret = broker.cluster.topic(SECRET).expect("not deleted");
    assert_eq!(secret.partitions.len(), 1, "no partition added");
    assert!(
        secret.configs.is_empty(),
        "configs unchanged: {:?}",
        secret.configs
    );
    let any = odradek::auth::AclFilter::from_wire(1, None, 1, None, None, 1, 1).unwrap();
    let acls = broker.authorizer.describe(&any);
    assert_eq!(acls.len(), 4, "no ACL created or deleted");
    let end = broker
        .replicas
        .partition(SECRET, 0)
        .expect("partition hosted here")
        .log_end_offset();
    assert_eq!(
        end, 1,
        "only the record produced before the denial is stored"
    );
    assert!(
        broker.cluster.client_entities().entities.is_empty(),
        "no quota or credential stored"
    );
}

/// TxnOffsetCommit with one topic the principal may not READ: as in Kafka, that topic's
/// partitions are refused and the other topic's offset is committed with the transaction.
#[tokio::test]
async fn a_transactional_commit_refuses_only_the_unreadable_topic() {
    let b = TestBroker::start(&[
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found=true",
        "transaction.state.log.num.partitions=1",
        "offsets.topic.num.partitions=1",
    ])
    .await;
    let mut c = b.client().await;
    for t in ["open", "hidden"] {
        let r: CreateTopicsResponse = c
            .call(
                ApiKey::CreateTopics,
                7,
                &common::create_topics_request(t, 1, &[]),
            )
            .await;
        assert_eq!(r.topics[0].error_code, 0);
    }
    let deny_read = CreateAclsRequest::default().with_creations(vec![
        create_acls_request::AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s("hidden"))
            .with_resource_pattern_type(3)
            .with_principal(s("User:ANONYMOUS"))
            .with_host(s("*"))
            .with_operation(3)
            .with_permission_type(2),
    ]);
    let r: CreateAclsResponse = c.call(ApiKey::CreateAcls, 3, &deny_read).await;
    assert_eq!(r.results[0].error_code, 0);

    let (pid, epoch) = init_transactional(&mut c).await;
    let r: AddOffsetsToTxnResponse = c
        .call(
            ApiKey::AddOffsetsToTxn,
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn())
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let topic = |name: &str| {
        txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s(name)))
            .with_partitions(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_committed_offset(5),
            ])
    };
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn())
        .with_group_id(group())
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![topic("open"), topic("hidden")]);
    let r: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, 3, &commit).await;
    let codes: Vec<i16> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, vec![0, TOPIC_AUTHORIZATION_FAILED]);
    let r: EndTxnResponse = c
        .call(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(txn())
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(true),
        )
        .await;
    assert_eq!(r.error_code, 0);

    let broker = &b.running.as_ref().unwrap().broker;
    let wanted = Some(vec![
        ("open".to_string(), vec![0]),
        ("hidden".to_string(), vec![0]),
    ]);
    let mut committed = vec![];
    for _ in 0..200 {
        let (error, topics) = broker
            .groups
            .fetch_offsets(GROUP, wanted.clone(), true)
            .await;
        assert_eq!(error, None);
        committed = topics
            .iter()
            .map(|(_, partitions)| partitions[0].1.as_ref().map(|v| v.offset))
            .collect();
        if committed[0].is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(committed, vec![Some(5), None], "open committed, hidden not");
}

/// InitProducerId for [`TXN`] once its coordinator is ready: (producer id, epoch).
async fn init_transactional(c: &mut Client) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn()))
        .with_transaction_timeout_ms(30_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(s(TXN));
    let mut last = 0;
    for _ in 0..400 {
        let f: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &find).await;
        if f.error_code != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            continue;
        }
        let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &req).await;
        last = r.error_code;
        if r.error_code == 0 {
            return (r.producer_id.0, r.producer_epoch);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("InitProducerId never succeeded (last error {last})");
}

/// ElectLeaders v0 has no top-level error: a refusal shows on every partition named.
#[tokio::test]
async fn a_refused_election_names_every_partition_also_at_v0() {
    let b = TestBroker::start(&[
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found=false",
    ])
    .await;
    let mut c = b.client().await;
    let req = ElectLeadersRequest::default()
        .with_timeout_ms(5000)
        .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default(
        )
        .with_topic(topic())
        .with_partitions(vec![0, 1])]));
    for v in [0, 2] {
        let r: ElectLeadersResponse = c.call(ApiKey::ElectLeaders, v, &req).await;
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![CLUSTER_AUTHORIZATION_FAILED; 2], "v{v}");
    }
}
