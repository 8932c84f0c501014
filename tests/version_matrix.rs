//! Every served API answers at every version it is advertised and accepted at: a response that
//! cannot be encoded at some version would otherwise close the client's connection.

mod common;

use common::{batch, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use odradek::api::versions::SERVED_APIS;

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("matrix"))
}

#[tokio::test]
async fn every_api_answers_at_every_accepted_version() {
    let b = TestBroker::start(&[]).await;
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
                ApiKey::ListPartitionReassignments => {
                    let r: ListPartitionReassignmentsResponse = c
                        .call(api.key, v, &ListPartitionReassignmentsRequest::default())
                        .await;
                    r.error_code == 0
                }
                other => panic!("no case for served API {other:?}: add one"),
            };
            assert!(answered, "{what} answered with an error");
        }
    }
}
