//! AlterConfigs, IncrementalAlterConfigs and DescribeConfigs in raw protocol against an
//! in-process broker: the request checks real clients never let through (a resource twice, a
//! key twice, null values, unsupported resource types), documentation and types by version,
//! validate_only, and dynamic configs kept across a restart.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn legacy(
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> alter_configs_request::AlterConfigsResource {
    alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    alter_configs_request::AlterableConfig::default()
                        .with_name(s(k))
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

fn incremental(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> incremental_alter_configs_request::AlterConfigsResource {
    incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configs(
            ops.iter()
                .map(|(k, op, v)| {
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s(k))
                        .with_config_operation(*op)
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

async fn alter(
    c: &mut Client,
    resources: Vec<alter_configs_request::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<i16> {
    let req = AlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req).await;
    r.responses.iter().map(|r| r.error_code).collect()
}

async fn alter_incremental(
    c: &mut Client,
    resources: Vec<incremental_alter_configs_request::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<i16> {
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    r.responses.iter().map(|r| r.error_code).collect()
}

async fn describe(
    c: &mut Client,
    version: i16,
    resource_type: i8,
    name: &str,
) -> describe_configs_response::DescribeConfigsResult {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name)),
        ]);
    let mut r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, version, &req).await;
    r.results.remove(0)
}

fn value_of(
    result: &describe_configs_response::DescribeConfigsResult,
    key: &str,
) -> (Option<String>, i8) {
    let e = result
        .configs
        .iter()
        .find(|e| e.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"));
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

async fn create_topic(c: &mut Client, name: &str) {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(r.topics[0].error_code, 0);
}

#[tokio::test]
async fn malformed_requests_get_invalid_request_per_resource() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t").await;
    let codes = alter(
        &mut c,
        vec![
            legacy(TOPIC, "t", &[("retention.ms", Some("1"))]),
            legacy(TOPIC, "t", &[("retention.ms", Some("2"))]),
            legacy(TOPIC, "", &[("retention.ms", Some("2"))]),
            legacy(BROKER, "0", &[("message.max.bytes", None)]),
            legacy(99, "x", &[]),
            legacy(16, "metrics", &[]),
            legacy(8, "0", &[]),
        ],
        false,
    )
    .await;
    assert_eq!(codes, vec![INVALID_REQUEST; 7]);
    let codes = alter_incremental(
        &mut c,
        vec![
            incremental(
                TOPIC,
                "t",
                &[("retention.ms", 0, Some("1")), ("retention.ms", 1, None)],
            ),
            incremental(TOPIC, "t2", &[("retention.ms", 9, Some("1"))]),
            incremental(BROKER, "0", &[("message.max.bytes", 0, None)]),
            incremental(8, "0", &[]),
        ],
        false,
    )
    .await;
    assert_eq!(codes, vec![INVALID_REQUEST; 4]);
    // Nothing was stored.
    let t = describe(&mut c, 4, TOPIC, "t").await;
    assert_eq!(value_of(&t, "retention.ms").1, 5, "DEFAULT_CONFIG");
}

#[tokio::test]
async fn documentation_and_types_by_version_and_validate_only() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "docs").await;
    let v4 = describe(&mut c, 4, TOPIC, "docs").await;
    let e = v4
        .configs
        .iter()
        .find(|e| e.name.as_str() == "cleanup.policy")
        .unwrap();
    assert_eq!(e.config_type, 7, "LIST");
    assert!(e.documentation.as_ref().is_some_and(|d| !d.is_empty()));
    let v1 = describe(&mut c, 1, TOPIC, "docs").await;
    let e = v1
        .configs
        .iter()
        .find(|e| e.name.as_str() == "cleanup.policy")
        .unwrap();
    // Fields a version does not carry decode as their defaults.
    assert!(
        e.documentation.as_ref().is_none_or(|d| d.is_empty()) && e.config_type == 0,
        "v1 carries neither"
    );

    assert_eq!(
        alter_incremental(
            &mut c,
            vec![incremental(
                TOPIC,
                "docs",
                &[("retention.ms", 0, Some("5"))]
            )],
            true
        )
        .await,
        vec![0]
    );
    assert_eq!(
        alter(
            &mut c,
            vec![legacy(BROKER, "0", &[("message.max.bytes", Some("5000"))])],
            true
        )
        .await,
        vec![0]
    );
    assert_eq!(
        alter(
            &mut c,
            vec![legacy(TOPIC, "docs", &[("segment.bytes", Some("1"))])],
            true
        )
        .await,
        vec![INVALID_CONFIG]
    );
    assert_eq!(
        value_of(&describe(&mut c, 4, TOPIC, "docs").await, "retention.ms").1,
        5
    );
    assert_eq!(
        value_of(&describe(&mut c, 4, BROKER, "0").await, "message.max.bytes").1,
        5
    );
    // A per-broker resource of another broker is refused when described too.
    assert_eq!(
        describe(&mut c, 4, BROKER, "3").await.error_code,
        INVALID_REQUEST
    );
}

#[tokio::test]
async fn dynamic_configs_survive_a_restart() {
    let mut b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "kept").await;
    assert_eq!(
        alter_incremental(
            &mut c,
            vec![
                incremental(TOPIC, "kept", &[("cleanup.policy", 2, Some("compact"))]),
                incremental(BROKER, "", &[("log.retention.bytes", 0, Some("1000000"))]),
                incremental(BROKER, "0", &[("log.cleaner.backoff.ms", 0, Some("2000"))]),
            ],
            false,
        )
        .await,
        vec![0, 0, 0]
    );
    b.restart().await;
    let mut c = b.client().await;
    let t = describe(&mut c, 4, TOPIC, "kept").await;
    assert_eq!(
        value_of(&t, "cleanup.policy"),
        (Some("delete,compact".into()), 1)
    );
    assert_eq!(value_of(&t, "retention.bytes"), (Some("1000000".into()), 3));
    let broker = describe(&mut c, 4, BROKER, "0").await;
    assert_eq!(
        value_of(&broker, "log.cleaner.backoff.ms"),
        (Some("2000".into()), 2)
    );
    let defaults = describe(&mut c, 4, BROKER, "").await;
    assert_eq!(defaults.configs.len(), 1);
    assert_eq!(
        value_of(&defaults, "log.retention.bytes"),
        (Some("1000000".into()), 3)
    );
    let live = b.running.as_ref().unwrap().broker.config.current();
    assert_eq!(
        live.cleaner_backoff_ms, 2000,
        "the live configuration has the stored value"
    );
}
