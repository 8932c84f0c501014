//! Every served API answers at every version it is advertised and accepted at: a response that
//! cannot be encoded at some version would otherwise close the client's connection.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{batch, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use odradek::api::SERVED_APIS;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("matrix"))
}

/// A transactional id no producer initialized.
fn unknown_txn() -> TransactionalId {
    TransactionalId(StrBytes::from_static_str("nobody-txn"))
}

#[tokio::test]
async fn every_api_answers_at_every_accepted_version() {
    // Kafka's ACL authorizer on, with the anonymous principal a super user: every check runs
    // and passes, and the ACL APIs answer.
    let b = TestBroker::start(&[
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "super.users=User:ANONYMOUS",
    ])
    .await;
    let mut c = b.client().await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(topic()))])),
        )
        .await;
    let topic_id = md.topics[0].topic_id;
    // The transaction samples need __transaction_state: finding a transaction coordinator
    // creates it (and this broker loads every partition of it).
    let found: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_key(StrBytes::from_static_str("matrix-txn")),
        )
        .await;
    assert_eq!(found.error_code, 0, "transaction coordinator not found");
    for api in SERVED_APIS {
        for v in api.accepted_min..=api.max {
            let what = format!("{:?} v{v}", api.key);
            eprintln!("calling {what}");
            let answered = match api.key {
                ApiKey::Produce => {
                    let data = produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&["m"], Compression::None)));
                    let req = ProduceRequest::default()
                        .with_acks(1)
                        .with_timeout_ms(1000)
                        .with_topic_data(vec![produce_request::TopicProduceData::default()
                            .with_name(topic())
                            .with_partition_data(vec![data])]);
                    let r: ProduceResponse = c.call(api.key, v, &req).await;
                    r.responses[0].partition_responses[0].error_code == 0
                }
                ApiKey::Fetch => {
                    let mut t =
                        fetch_request::FetchTopic::default()
                            .with_partitions(vec![fetch_request::FetchPartition::default()
                                .with_partition_max_bytes(1024)]);
                    if v >= 13 {
                        t = t.with_topic_id(topic_id);
                    } else {
                        t = t.with_topic(topic());
                    }
                    let mut req = FetchRequest::default()
                        .with_max_bytes(4096)
                        .with_topics(vec![t]);
                    if v < 15 {
                        req = req.with_replica_id(BrokerId(-1));
                    }
                    let r: FetchResponse = c.call(api.key, v, &req).await;
                    r.responses[0].partitions[0].error_code == 0
                }
                ApiKey::ListOffsets => {
                    let req = ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_timestamp(-1),
                            ])]);
                    let r: ListOffsetsResponse = c.call(api.key, v, &req).await;
                    r.topics[0].partitions[0].error_code == 0
                }
                ApiKey::Metadata => {
                    let topics =
                        vec![metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(topic()))];
                    let r: MetadataResponse = c
                        .call(
                            api.key,
                            v,
                            &MetadataRequest::default().with_topics(Some(topics)),
                        )
                        .await;
                    r.topics[0].error_code == 0
                }
                ApiKey::ApiVersions => {
                    let r: ApiVersionsResponse =
                        c.call(api.key, v, &ApiVersionsRequest::default()).await;
                    r.error_code == 0
                }
                ApiKey::CreateTopics => {
                    let name = TopicName(StrBytes::from_string(format!("created-v{v}")));
                    let req = CreateTopicsRequest::default().with_topics(vec![
                        create_topics_request::CreatableTopic::default()
                            .with_name(name)
                            .with_num_partitions(1)
                            .with_replication_factor(1),
                    ]);
                    let r: CreateTopicsResponse = c.call(api.key, v, &req).await;
                    r.topics[0].error_code == 0
                }
                ApiKey::DeleteTopics => {
                    let name =
                        TopicName(StrBytes::from_string(format!("created-v{}", v.clamp(2, 7))));
                    let req = if v >= 6 {
                        DeleteTopicsRequest::default()
                            .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(name))])
                    } else {
                        DeleteTopicsRequest::default().with_topic_names(vec![name])
                    };
                    let r: DeleteTopicsResponse = c.call(api.key, v, &req).await;
                    r.responses.len() == 1
                }
                ApiKey::InitProducerId => {
                    let req = InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1);
                    let r: InitProducerIdResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0
                }
                ApiKey::DescribeConfigs => {
                    let req = DescribeConfigsRequest::default().with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("matrix")),
                    ]);
                    let r: DescribeConfigsResponse = c.call(api.key, v, &req).await;
                    r.results[0].error_code == 0 && !r.results[0].configs.is_empty()
                }
                ApiKey::AlterConfigs => {
                    let req = AlterConfigsRequest::default().with_resources(vec![
                        alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("matrix"))
                            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_string(format!(
                                    "{}",
                                    1_000_000 + i32::from(v)
                                ))))]),
                    ]);
                    let r: AlterConfigsResponse = c.call(api.key, v, &req).await;
                    r.responses.len() == 1 && r.responses[0].error_code == 0
                }
                ApiKey::IncrementalAlterConfigs => {
                    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("matrix"))
                            .with_configs(vec![
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(StrBytes::from_static_str("cleanup.policy"))
                                    .with_config_operation(2)
                                    .with_value(Some(StrBytes::from_static_str("delete"))),
                            ]),
                    ]);
                    let r: IncrementalAlterConfigsResponse = c.call(api.key, v, &req).await;
                    r.responses.len() == 1 && r.responses[0].error_code == 0
                }
                ApiKey::CreatePartitions => {
                    let req = CreatePartitionsRequest::default()
                        .with_validate_only(true)
                        .with_topics(vec![
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(topic())
                                .with_count(2)
                                .with_assignments(None),
                        ]);
                    let r: CreatePartitionsResponse = c.call(api.key, v, &req).await;
                    r.results[0].error_code == 0
                }
                ApiKey::DescribeCluster => {
                    let r: DescribeClusterResponse = c
                        .call(
                            api.key,
                            v,
                            &DescribeClusterRequest::default().with_endpoint_type(1),
                        )
                        .await;
                    r.error_code == 0
                }
                ApiKey::DescribeProducers => {
                    let req = DescribeProducersRequest::default().with_topics(vec![
                        describe_producers_request::TopicRequest::default()
                            .with_name(topic())
                            .with_partition_indexes(vec![0]),
                    ]);
                    let r: DescribeProducersResponse = c.call(api.key, v, &req).await;
                    let p = &r.topics[0].partitions[0];
                    r.topics[0].name == topic() && p.partition_index == 0 && p.error_code == 0
                }
                ApiKey::ElectLeaders => {
                    // A standalone broker already leads with its preferred (only) replica.
                    let req = ElectLeadersRequest::default()
                        .with_election_type(0)
                        .with_timeout_ms(5000)
                        .with_topic_partitions(Some(vec![
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(topic())
                                .with_partitions(vec![0]),
                        ]));
                    let r: ElectLeadersResponse = c.call(api.key, v, &req).await;
                    let p = &r.replica_election_results[0].partition_result[0];
                    r.error_code == 0
                        && p.partition_id == 0
                        && p.error_code == ResponseError::ElectionNotNeeded.code()
                }
                ApiKey::AlterPartitionReassignments => {
                    // Broker 9 does not exist: refused, nothing moves.
                    let req = AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(5000)
                        .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    alter_partition_reassignments_request::ReassignablePartition::default()
                                        .with_partition_index(0)
                                        .with_replicas(Some(vec![BrokerId(9)])),
                                ]),
                        ]);
                    let r: AlterPartitionReassignmentsResponse = c.call(api.key, v, &req).await;
                    let p = &r.responses[0].partitions[0];
                    r.error_code == 0
                        && p.error_code == ResponseError::InvalidReplicaAssignment.code()
                }
                ApiKey::ListPartitionReassignments => {
                    let r: ListPartitionReassignmentsResponse = c
                        .call(api.key, v, &ListPartitionReassignmentsRequest::default())
                        .await;
                    r.error_code == 0
                }
                ApiKey::FindCoordinator => {
                    let mut req = FindCoordinatorRequest::default().with_key_type(0);
                    if v >= 4 {
                        req = req
                            .with_coordinator_keys(vec![StrBytes::from_static_str("matrix-group")]);
                    } else {
                        req = req.with_key(StrBytes::from_static_str("matrix-group"));
                    }
                    let r: FindCoordinatorResponse = c.call(api.key, v, &req).await;
                    if v >= 4 {
                        r.coordinators[0].error_code == 0
                    } else {
                        r.error_code == 0
                    }
                }
                ApiKey::JoinGroup => {
                    let req = JoinGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_string(format!("join-v{v}"))))
                        .with_session_timeout_ms(10_000)
                        .with_rebalance_timeout_ms(10_000)
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                        .with_group_instance_id(None)
                        .with_reason(None)
                        .with_protocols(vec![
                            join_group_request::JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_static_str("range"))
                                .with_metadata(bytes::Bytes::from_static(&[
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                ])),
                        ]);
                    let mut r: JoinGroupResponse = c.call(api.key, v, &req).await;
                    if r.error_code == 79 {
                        let again = req.with_member_id(r.member_id.clone());
                        r = c.call(api.key, v, &again).await;
                    }
                    r.error_code == 0 && r.generation_id == 1 && r.leader == r.member_id
                }
                ApiKey::SyncGroup => {
                    let req = SyncGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("nobody")))
                        .with_member_id(StrBytes::from_static_str("ghost"))
                        .with_group_instance_id(None);
                    let r: SyncGroupResponse = c.call(api.key, v, &req).await;
                    r.error_code == 25
                }
                ApiKey::Heartbeat => {
                    let req = HeartbeatRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("nobody")))
                        .with_member_id(StrBytes::from_static_str("ghost"))
                        .with_group_instance_id(None);
                    let r: HeartbeatResponse = c.call(api.key, v, &req).await;
                    r.error_code == 25
                }
                ApiKey::LeaveGroup => {
                    let mut req = LeaveGroupRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("nobody")));
                    if v >= 3 {
                        req =
                            req.with_members(vec![leave_group_request::MemberIdentity::default()
                                .with_member_id(StrBytes::from_static_str("ghost"))
                                .with_group_instance_id(None)
                                .with_reason(None)]);
                    } else {
                        req = req.with_member_id(StrBytes::from_static_str("ghost"));
                    }
                    let r: LeaveGroupResponse = c.call(api.key, v, &req).await;
                    if v >= 3 {
                        r.error_code == 0 && r.members[0].error_code == 25
                    } else {
                        r.error_code == 25
                    }
                }
                ApiKey::OffsetCommit => {
                    let group = GroupId(StrBytes::from_string(format!("commit-v{v}")));
                    let req = OffsetCommitRequest::default()
                        .with_group_id(group)
                        .with_generation_id_or_member_epoch(-1)
                        .with_group_instance_id(None)
                        .with_retention_time_ms(-1)
                        .with_topics(vec![
                            offset_commit_request::OffsetCommitRequestTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    offset_commit_request::OffsetCommitRequestPartition::default()
                                        .with_committed_offset(1)
                                        .with_committed_metadata(Some(StrBytes::from_static_str(
                                            "m",
                                        ))),
                                ]),
                        ]);
                    let r: OffsetCommitResponse = c.call(api.key, v, &req).await;
                    r.topics[0].partitions[0].error_code == 0
                }
                ApiKey::OffsetFetch => {
                    if v >= 8 {
                        let req = OffsetFetchRequest::default().with_groups(vec![
                            offset_fetch_request::OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(StrBytes::from_static_str("commit-v9")))
                                .with_member_id(None)
                                .with_topics(None),
                        ]);
                        let r: OffsetFetchResponse = c.call(api.key, v, &req).await;
                        r.groups[0].error_code == 0
                            && r.groups[0].topics[0].partitions[0].committed_offset == 1
                    } else {
                        let req = OffsetFetchRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("commit-v9")))
                            .with_topics(Some(vec![
                                offset_fetch_request::OffsetFetchRequestTopic::default()
                                    .with_name(topic())
                                    .with_partition_indexes(vec![0]),
                            ]));
                        let r: OffsetFetchResponse = c.call(api.key, v, &req).await;
                        r.error_code == 0 && r.topics[0].partitions[0].committed_offset == 1
                    }
                }
                ApiKey::ListGroups => {
                    let r: ListGroupsResponse =
                        c.call(api.key, v, &ListGroupsRequest::default()).await;
                    r.error_code == 0 && !r.groups.is_empty()
                }
                ApiKey::DescribeGroups => {
                    let req = DescribeGroupsRequest::default()
                        .with_groups(vec![GroupId(StrBytes::from_static_str("join-v9"))]);
                    let r: DescribeGroupsResponse = c.call(api.key, v, &req).await;
                    r.groups[0].error_code == 0
                }
                ApiKey::DeleteGroups => {
                    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(
                        StrBytes::from_string(format!("commit-v{}", v + 2)),
                    )]);
                    let r: DeleteGroupsResponse = c.call(api.key, v, &req).await;
                    r.results[0].error_code == 0
                }
                ApiKey::OffsetDelete => {
                    let req = OffsetDeleteRequest::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("commit-v8")))
                        .with_topics(vec![
                            offset_delete_request::OffsetDeleteRequestTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    offset_delete_request::OffsetDeleteRequestPartition::default(),
                                ]),
                        ]);
                    let r: OffsetDeleteResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0 && r.topics[0].partitions[0].error_code == 0
                }
                ApiKey::OffsetForLeaderEpoch => {
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
                    let r: OffsetForLeaderEpochResponse = c.call(api.key, v, &req).await;
                    let p = &r.topics[0].partitions[0];
                    // The topic was created at epoch 0, which is the latest: it ends at the log end.
                    p.error_code == 0 && p.leader_epoch == 0 && p.end_offset > 0
                }
                ApiKey::DeleteRecords => {
                    // Offset 0: the log start stays where it is (later samples read from 0).
                    let req = DeleteRecordsRequest::default()
                        .with_timeout_ms(5000)
                        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(0),
                            ])]);
                    let r: DeleteRecordsResponse = c.call(api.key, v, &req).await;
                    let p = &r.topics[0].partitions[0];
                    r.topics[0].name == topic() && p.error_code == 0 && p.low_watermark == 0
                }
                ApiKey::DescribeLogDirs => {
                    let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
                        describe_log_dirs_request::DescribableLogDirTopic::default()
                            .with_topic(topic())
                            .with_partitions(vec![0]),
                    ]));
                    let r: DescribeLogDirsResponse = c.call(api.key, v, &req).await;
                    let dir = &r.results[0];
                    let sized = v < 4 || (dir.total_bytes > 0 && dir.usable_bytes >= 0);
                    r.results.len() == 1
                        && dir.error_code == 0
                        && sized
                        && dir.topics.len() == 1
                        && dir.topics[0].partitions[0].partition_size > 0
                }
                ApiKey::AddPartitionsToTxn => {
                    let topics = vec![
                        add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![0]),
                    ];
                    if v >= 4 {
                        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
                            add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                                .with_transactional_id(unknown_txn())
                                .with_producer_id(ProducerId(1))
                                .with_verify_only(true)
                                .with_topics(topics),
                        ]);
                        let r: AddPartitionsToTxnResponse = c.call(api.key, v, &req).await;
                        r.error_code == 0
                            && r.results_by_transaction[0].topic_results[0].results_by_partition[0]
                                .partition_error_code
                                == ResponseError::InvalidProducerIdMapping.code()
                    } else {
                        let req = AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(unknown_txn())
                            .with_v3_and_below_producer_id(ProducerId(1))
                            .with_v3_and_below_topics(topics);
                        let r: AddPartitionsToTxnResponse = c.call(api.key, v, &req).await;
                        r.results_by_topic_v3_and_below[0].results_by_partition[0]
                            .partition_error_code
                            == ResponseError::InvalidProducerIdMapping.code()
                    }
                }
                ApiKey::AddOffsetsToTxn => {
                    let req = AddOffsetsToTxnRequest::default()
                        .with_transactional_id(unknown_txn())
                        .with_producer_id(ProducerId(1))
                        .with_group_id(GroupId(StrBytes::from_static_str("matrix-group")));
                    let r: AddOffsetsToTxnResponse = c.call(api.key, v, &req).await;
                    r.error_code == ResponseError::InvalidProducerIdMapping.code()
                }
                ApiKey::EndTxn => {
                    let req = EndTxnRequest::default()
                        .with_transactional_id(unknown_txn())
                        .with_producer_id(ProducerId(1))
                        .with_committed(true);
                    let r: EndTxnResponse = c.call(api.key, v, &req).await;
                    r.error_code == ResponseError::InvalidProducerIdMapping.code()
                }
                ApiKey::WriteTxnMarkers => {
                    // An abort marker for a producer without state is written (as Kafka does).
                    let req = WriteTxnMarkersRequest::default().with_markers(vec![
                        write_txn_markers_request::WritableTxnMarker::default()
                            .with_producer_id(ProducerId(424_242))
                            .with_transaction_result(false)
                            .with_topics(vec![
                                write_txn_markers_request::WritableTxnMarkerTopic::default()
                                    .with_name(topic())
                                    .with_partition_indexes(vec![0]),
                            ]),
                    ]);
                    let r: WriteTxnMarkersResponse = c.call(api.key, v, &req).await;
                    r.markers[0].producer_id == ProducerId(424_242)
                        && r.markers[0].topics[0].partitions[0].error_code == 0
                }
                ApiKey::TxnOffsetCommit => {
                    let req = TxnOffsetCommitRequest::default()
                        .with_transactional_id(unknown_txn())
                        .with_group_id(GroupId(StrBytes::from_string(format!("txn-commit-v{v}"))))
                        .with_producer_id(ProducerId(424_243))
                        .with_generation_id(-1)
                        .with_group_instance_id(None)
                        .with_topics(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                        .with_committed_offset(1)
                                        .with_committed_metadata(None),
                                ]),
                        ]);
                    let r: TxnOffsetCommitResponse = c.call(api.key, v, &req).await;
                    r.topics[0].partitions[0].error_code == 0
                }
                ApiKey::DescribeTransactions => {
                    let req = DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![unknown_txn()]);
                    let r: DescribeTransactionsResponse = c.call(api.key, v, &req).await;
                    r.transaction_states[0].error_code
                        == ResponseError::TransactionalIdNotFound.code()
                }
                ApiKey::ListTransactions => {
                    let req = ListTransactionsRequest::default()
                        .with_state_filters(vec![StrBytes::from_static_str("Bogus")])
                        .with_duration_filter(-1);
                    let r: ListTransactionsResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0 && r.unknown_state_filters.len() == 1
                }
                ApiKey::CreateAcls => {
                    let req = CreateAclsRequest::default().with_creations(vec![
                        create_acls_request::AclCreation::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_string(format!("acl-v{v}")))
                            .with_resource_pattern_type(3)
                            .with_principal(StrBytes::from_static_str("User:alice"))
                            .with_host(StrBytes::from_static_str("*"))
                            .with_operation(3)
                            .with_permission_type(3),
                    ]);
                    let r: CreateAclsResponse = c.call(api.key, v, &req).await;
                    r.results.len() == 1 && r.results[0].error_code == 0
                }
                ApiKey::DescribeAcls => {
                    let req = DescribeAclsRequest::default()
                        .with_resource_type_filter(2)
                        .with_resource_name_filter(Some(StrBytes::from_static_str("acl-v1")))
                        .with_pattern_type_filter(3)
                        .with_principal_filter(None)
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1);
                    let r: DescribeAclsResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0 && r.resources.len() == 1 && r.resources[0].acls.len() == 1
                }
                ApiKey::DeleteAcls => {
                    let req = DeleteAclsRequest::default().with_filters(vec![
                        delete_acls_request::DeleteAclsFilter::default()
                            .with_resource_type_filter(2)
                            .with_resource_name_filter(Some(StrBytes::from_string(format!(
                                "acl-v{v}"
                            ))))
                            .with_pattern_type_filter(3)
                            .with_principal_filter(None)
                            .with_host_filter(None)
                            .with_operation(1)
                            .with_permission_type(1),
                    ]);
                    let r: DeleteAclsResponse = c.call(api.key, v, &req).await;
                    r.filter_results[0].error_code == 0
                        && r.filter_results[0].matching_acls.len() == 1
                }
                ApiKey::DescribeClientQuotas => {
                    let req = DescribeClientQuotasRequest::default().with_components(vec![
                        describe_client_quotas_request::ComponentData::default()
                            .with_entity_type(StrBytes::from_static_str("user"))
                            .with_match_type(0)
                            .with_match(Some(StrBytes::from_static_str("matrix-user"))),
                    ]);
                    let r: DescribeClientQuotasResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0 && r.entries.is_some()
                }
                ApiKey::AlterClientQuotas => {
                    let req = AlterClientQuotasRequest::default().with_entries(vec![
                        alter_client_quotas_request::EntryData::default()
                            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                                .with_entity_type(StrBytes::from_static_str("client-id"))
                                .with_entity_name(Some(StrBytes::from_string(format!(
                                    "matrix-v{v}"
                                ))))])
                            .with_ops(vec![alter_client_quotas_request::OpData::default()
                                .with_key(StrBytes::from_static_str("producer_byte_rate"))
                                .with_value(1024.0)]),
                    ]);
                    let r: AlterClientQuotasResponse = c.call(api.key, v, &req).await;
                    r.entries.len() == 1 && r.entries[0].error_code == 0
                }
                ApiKey::DescribeUserScramCredentials => {
                    let req = DescribeUserScramCredentialsRequest::default().with_users(None);
                    let r: DescribeUserScramCredentialsResponse = c.call(api.key, v, &req).await;
                    r.error_code == 0
                }
                ApiKey::AlterUserScramCredentials => {
                    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                            .with_name(StrBytes::from_static_str("matrix-user"))
                            .with_mechanism(1)
                            .with_iterations(4096)
                            .with_salt(bytes::Bytes::from_static(b"salt"))
                            .with_salted_password(bytes::Bytes::from_static(&[7; 32])),
                    ]);
                    let r: AlterUserScramCredentialsResponse = c.call(api.key, v, &req).await;
                    r.results.len() == 1 && r.results[0].error_code == 0
                }
                // On this PLAINTEXT listener both answer ILLEGAL_SASL_STATE, as Kafka does (the
                // exchange on a SASL listener is tests/sasl.rs).
                ApiKey::SaslHandshake => {
                    let req = SaslHandshakeRequest::default()
                        .with_mechanism(StrBytes::from_static_str("PLAIN"));
                    let r: SaslHandshakeResponse = c.call(api.key, v, &req).await;
                    r.error_code == 34
                }
                ApiKey::SaslAuthenticate => {
                    let req = SaslAuthenticateRequest::default()
                        .with_auth_bytes(bytes::Bytes::from_static(b"\0u\0p"));
                    let r: SaslAuthenticateResponse = c.call(api.key, v, &req).await;
                    r.error_code == 34
                }
                other => panic!("no case for served API {other:?}: add one"),
            };
            assert!(answered, "{what} answered with an error");
        }
    }
}
