//! ACLs end to end on an in-process standalone broker with Kafka's AclAuthorizer configured:
//! CreateAcls / DescribeAcls / DeleteAcls round-trip and survive a restart (the ACL file), and
//! the anonymous principal of a PLAINTEXT listener is allowed or refused by them once it is no
//! longer a super user.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{batch, produce_request, Client, TestBroker};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const SECURITY_DISABLED: i16 = 54;
const INVALID_REQUEST: i16 = 42;

// Wire codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

const ANONYMOUS: &str = "User:ANONYMOUS";
const AUTHORIZER: &str = "authorizer.class.name=kafka.security.authorizer.AclAuthorizer";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn creation(resource_type: i8, name: &str, pattern: i8, op: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(ANONYMOUS))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(permission)
}

async fn create_acls(c: &mut Client, creations: Vec<AclCreation>) -> Vec<i16> {
    let resp: CreateAclsResponse = c
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(creations),
        )
        .await;
    resp.results.iter().map(|r| r.error_code).collect()
}

async fn describe_all(c: &mut Client) -> DescribeAclsResponse {
    c.call(
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(ANY)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
    )
    .await
}

async fn create_topic(c: &mut Client, topic: &str) -> i16 {
    let req = common::create_topics_request(topic, 1, &[]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    resp.topics[0].error_code
}

async fn produce(c: &mut Client, topic: &str) -> i16 {
    let req = produce_request(topic, 0, batch(&["v"], Compression::None), 5000);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    resp.responses[0].partition_responses[0].error_code
}

async fn listed_topics(c: &mut Client) -> Vec<String> {
    let resp: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    let mut names: Vec<String> = resp
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

async fn join(c: &mut Client, group: &str) -> i16 {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10000)
        .with_rebalance_timeout_ms(10000)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(bytes::Bytes::new())]);
    let resp: JoinGroupResponse = c.call(ApiKey::JoinGroup, 9, &req).await;
    resp.error_code
}

#[tokio::test]
async fn acls_round_trip_and_are_enforced() {
    let mut broker = TestBroker::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]).await;
    let mut c = broker.client().await;
    // A super user: everything passes, whatever the ACLs.
    for t in ["open", "locked"] {
        assert_eq!(create_topic(&mut c, t).await, 0);
    }
    let codes = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "open", LITERAL, ALL, ALLOW),
            creation(TOPIC, "open", LITERAL, WRITE, DENY),
            creation(TOPIC, "new-", PREFIXED, ALL, ALLOW),
            creation(GROUP, "g", LITERAL, DESCRIBE, ALLOW),
            creation(CLUSTER, "kafka-cluster", LITERAL, ALTER, ALLOW),
            creation(CLUSTER, "kafka-cluster", LITERAL, DESCRIBE, ALLOW),
            // Refused as Kafka refuses them.
            creation(CLUSTER, "other", LITERAL, ALTER, ALLOW),
            creation(TOPIC, "x", ANY, ALL, ALLOW),
        ],
    )
    .await;
    assert_eq!(
        codes,
        vec![0, 0, 0, 0, 0, 0, INVALID_REQUEST, INVALID_REQUEST]
    );
    assert_eq!(
        produce(&mut c, "open").await,
        0,
        "super users bypass a DENY"
    );
    let described = describe_all(&mut c).await;
    assert_eq!(described.error_code, 0);
    let count: usize = described.resources.iter().map(|r| r.acls.len()).sum();
    assert_eq!(count, 6);
    let open = described
        .resources
        .iter()
        .find(|r| r.resource_type == TOPIC && r.resource_name.as_str() == "open")
        .expect("the ACLs of topic open");
    assert_eq!(open.pattern_type, LITERAL);
    assert!(open.acls.iter().any(|a| a.operation == WRITE
        && a.permission_type == DENY
        && a.principal.as_str() == ANONYMOUS));

    // The same data directory, no super user: the stored ACLs decide.
    broker.extra = vec![AUTHORIZER.to_string()];
    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(
        describe_all(&mut c).await.resources.len(),
        4,
        "ACLs survive a restart"
    );
    assert_eq!(produce(&mut c, "open").await, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(produce(&mut c, "locked").await, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(listed_topics(&mut c).await, vec!["open".to_string()]);
    let asked: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(s("locked"))))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(asked.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    // A prefixed ALLOW covers a topic that did not exist when it was made.
    assert_eq!(create_topic(&mut c, "new-orders").await, 0);
    assert_eq!(produce(&mut c, "new-orders").await, 0);
    assert_eq!(
        create_topic(&mut c, "elsewhere").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    // DESCRIBE on the group is not READ.
    assert_eq!(join(&mut c, "g").await, GROUP_AUTHORIZATION_FAILED);

    // Deleting the DENY lets the ALLOW ALL through.
    let deleted: DeleteAclsResponse = c
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(s("open")))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(DENY)]),
        )
        .await;
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(produce(&mut c, "open").await, 0);
}

async fn fetch(c: &mut Client, topic: &str) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    resp.responses[0].partitions[0].error_code
}

async fn commit(c: &mut Client, group: &str, topic: &str) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
    resp.topics[0].partitions[0].error_code
}

async fn init_producer(c: &mut Client, transactional_id: Option<&str>) -> i16 {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .with_transaction_timeout_ms(60000);
    let resp: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &req).await;
    resp.error_code
}

/// One principal, read-only on `ro`, read-write on group `rw`: each API answers Kafka's error
/// for what it may not do, and authorized operations show only what it may.
#[tokio::test]
async fn consumers_and_producers_are_checked_api_by_api() {
    let mut broker = TestBroker::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]).await;
    let mut c = broker.client().await;
    for t in ["ro", "hidden"] {
        assert_eq!(create_topic(&mut c, t).await, 0);
        assert_eq!(produce(&mut c, t).await, 0);
    }
    let codes = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "ro", LITERAL, READ, ALLOW),
            creation(GROUP, "rw", LITERAL, READ, ALLOW),
        ],
    )
    .await;
    assert_eq!(codes, vec![0, 0]);
    broker.extra = vec![AUTHORIZER.to_string()];
    broker.restart().await;
    let mut c = broker.client().await;

    assert_eq!(fetch(&mut c, "ro").await, 0);
    assert_eq!(fetch(&mut c, "hidden").await, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(produce(&mut c, "ro").await, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(
        commit(&mut c, "other", "ro").await,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        commit(&mut c, "rw", "hidden").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    // Idempotence needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic: READ is not enough.
    assert_eq!(
        init_producer(&mut c, None).await,
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(
        init_producer(&mut c, Some("tx")).await,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );

    let configs: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("hidden"))
                    .with_configuration_keys(None),
            ]),
        )
        .await;
    assert_eq!(configs.results[0].error_code, TOPIC_AUTHORIZATION_FAILED);

    // READ implies DESCRIBE; nothing else on `ro`.
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(s("ro"))))
                ]))
                .with_include_topic_authorized_operations(true),
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(
        md.topics[0].topic_authorized_operations,
        (1 << READ) | (1 << DESCRIBE)
    );
    let groups: DescribeGroupsResponse = c
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("rw")), GroupId(s("other"))])
                .with_include_authorized_operations(true),
        )
        .await;
    assert_eq!(groups.groups[0].error_code, 0);
    assert_eq!(
        groups.groups[0].authorized_operations,
        (1 << READ) | (1 << DESCRIBE)
    );
    assert_eq!(groups.groups[1].error_code, GROUP_AUTHORIZATION_FAILED);
}

#[tokio::test]
async fn acl_apis_need_an_authorizer_and_cluster_rights() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(describe_all(&mut c).await.error_code, SECURITY_DISABLED);
    let codes = create_acls(&mut c, vec![creation(TOPIC, "t", LITERAL, ALL, ALLOW)]).await;
    assert_eq!(codes, vec![SECURITY_DISABLED]);
    // Without an authorizer every operation passes.
    assert_eq!(create_topic(&mut c, "t").await, 0);
    assert_eq!(produce(&mut c, "t").await, 0);

    let broker = TestBroker::start(&[AUTHORIZER]).await;
    let mut c = broker.client().await;
    assert_eq!(
        describe_all(&mut c).await.error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    let codes = create_acls(&mut c, vec![creation(TOPIC, "t", LITERAL, ALL, ALLOW)]).await;
    assert_eq!(codes, vec![CLUSTER_AUTHORIZATION_FAILED]);
    assert_eq!(create_topic(&mut c, "t").await, TOPIC_AUTHORIZATION_FAILED);

    let broker = TestBroker::start(&[AUTHORIZER, "allow.everyone.if.no.acl.found=true"]).await;
    let mut c = broker.client().await;
    assert_eq!(describe_all(&mut c).await.error_code, 0);
    assert_eq!(create_topic(&mut c, "t").await, 0);
    assert_eq!(produce(&mut c, "t").await, 0);
}

#[tokio::test]
async fn other_authorizers_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = odradek::app::load_config(
        None,
        &[
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().display()),
            "http.listener=".to_string(),
            "authorizer.class.name=org.example.MyAuthorizer".to_string(),
        ],
    )
    .expect("config");
    let err = match odradek::app::RunningBroker::start(config).await {
        Ok(_) => panic!("the broker started with an unknown authorizer"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("org.example.MyAuthorizer"), "{err}");
}
