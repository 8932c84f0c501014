//! DescribeClientQuotas and AlterClientQuotas against an in-process standalone broker, in raw
//! protocol: quotas set, filtered, removed, kept across a restart; Kafka's refusals per entity;
//! cluster authorization.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// An entity of `(type, name)` parts, `None` names meaning the default.
fn entity(parts: &[(&str, Option<&str>)]) -> Vec<EntityData> {
    parts
        .iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(s(t))
                .with_entity_name(n.map(s))
        })
        .collect()
}

fn set(key: &str, value: f64) -> OpData {
    OpData::default().with_key(s(key)).with_value(value)
}

fn remove(key: &str) -> OpData {
    OpData::default().with_key(s(key)).with_remove(true)
}

async fn alter(
    c: &mut Client,
    entries: Vec<(Vec<EntityData>, Vec<OpData>)>,
    validate_only: bool,
) -> Vec<i16> {
    let req = AlterClientQuotasRequest::default()
        .with_validate_only(validate_only)
        .with_entries(
            entries
                .into_iter()
                .map(|(e, ops)| EntryData::default().with_entity(e).with_ops(ops))
                .collect(),
        );
    let resp: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, 1, &req).await;
    resp.entries.iter().map(|e| e.error_code).collect()
}

/// `(entity as "type=name" parts, sorted values)` of every entry the filter selects.
async fn describe(
    c: &mut Client,
    components: Vec<(&str, i8, Option<&str>)>,
    strict: bool,
) -> Result<Vec<(String, Vec<(String, f64)>)>, i16> {
    let req = DescribeClientQuotasRequest::default()
        .with_strict(strict)
        .with_components(
            components
                .into_iter()
                .map(|(t, m, n)| {
                    ComponentData::default()
                        .with_entity_type(s(t))
                        .with_match_type(m)
                        .with_match(n.map(s))
                })
                .collect(),
        );
    let resp: DescribeClientQuotasResponse = c.call(ApiKey::DescribeClientQuotas, 1, &req).await;
    if resp.error_code != 0 {
        return Err(resp.error_code);
    }
    let mut out: Vec<(String, Vec<(String, f64)>)> = resp
        .entries
        .unwrap()
        .iter()
        .map(|e| {
            let mut parts: Vec<String> = e
                .entity
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        p.entity_type.as_str(),
                        p.entity_name.as_ref().map_or("<default>", |n| n.as_str())
                    )
                })
                .collect();
            parts.sort();
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (parts.join(","), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

const EXACT: i8 = 0;
const DEFAULT: i8 = 1;
const ANY: i8 = 2;

#[tokio::test]
async fn quotas_are_set_filtered_removed_and_kept() {
    let mut b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let codes = alter(
        &mut c,
        vec![
            (
                entity(&[("user", Some("alice"))]),
                vec![
                    set("producer_byte_rate", 1024.0),
                    set("request_percentage", 12.5),
                ],
            ),
            (
                entity(&[("user", Some("alice")), ("client-id", Some("app"))]),
                vec![set("consumer_byte_rate", 2048.0)],
            ),
            (
                entity(&[("user", None)]),
                vec![set("producer_byte_rate", 10.0)],
            ),
            (
                entity(&[("client-id", None)]),
                vec![set("consumer_byte_rate", 20.0)],
            ),
            (
                entity(&[("ip", Some("10.1.2.3"))]),
                vec![set("connection_creation_rate", 5.0)],
            ),
        ],
        false,
    )
    .await;
    assert_eq!(codes, vec![0; 5]);

    let all = describe(&mut c, vec![], false).await.unwrap();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "client-id=<default>",
            "client-id=app,user=alice",
            "ip=10.1.2.3",
            "user=<default>",
            "user=alice"
        ]
    );
    assert_eq!(
        all[4].1,
        vec![
            ("producer_byte_rate".to_string(), 1024.0),
            ("request_percentage".to_string(), 12.5)
        ]
    );
    // Exact user, not strict: the user and the user/client-id entity.
    let alice = describe(&mut c, vec![("user", EXACT, Some("alice"))], false)
        .await
        .unwrap();
    assert_eq!(alice.len(), 2);
    // Strict: only the user entity.
    let alice = describe(&mut c, vec![("user", EXACT, Some("alice"))], true)
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    let defaults = describe(&mut c, vec![("user", DEFAULT, None)], true)
        .await
        .unwrap();
    assert_eq!(defaults[0].0, "user=<default>");
    let pairs = describe(
        &mut c,
        vec![("user", ANY, None), ("client-id", ANY, None)],
        true,
    )
    .await
    .unwrap();
    assert_eq!(pairs.len(), 1);
    let ips = describe(&mut c, vec![("ip", ANY, None)], true)
        .await
        .unwrap();
    assert_eq!(
        ips[0].1,
        vec![("connection_creation_rate".to_string(), 5.0)]
    );

    // Removing the last key drops the entity; validate_only changes nothing.
    assert_eq!(
        alter(
            &mut c,
            vec![(
                entity(&[("user", None)]),
                vec![remove("producer_byte_rate")]
            )],
            false
        )
        .await,
        vec![0]
    );
    assert_eq!(
        alter(
            &mut c,
            vec![(
                entity(&[("client-id", Some("new"))]),
                vec![set("producer_byte_rate", 1.0)]
            )],
            true
        )
        .await,
        vec![0]
    );
    b.restart().await;
    let mut c = b.client().await;
    let after = describe(&mut c, vec![], false).await.unwrap();
    let names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "client-id=<default>",
            "client-id=app,user=alice",
            "ip=10.1.2.3",
            "user=alice"
        ]
    );
}

#[tokio::test]
async fn bad_entities_and_keys_are_refused_per_entity() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let invalid_request = ResponseError::InvalidRequest.code();
    let codes = alter(
        &mut c,
        vec![
            (entity(&[]), vec![set("producer_byte_rate", 1.0)]),
            (
                entity(&[("user", Some(""))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
            (
                entity(&[("topic", Some("t"))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
            (
                entity(&[("user", Some("u")), ("ip", Some("10.0.0.1"))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
            (
                entity(&[("user", Some("u"))]),
                vec![set("connection_creation_rate", 1.0)],
            ),
            (
                entity(&[("user", Some("u"))]),
                vec![set("producer_byte_rate", 1.5)],
            ),
            (
                entity(&[("ip", Some("10.0.0.1"))]),
                vec![set("producer_byte_rate", 1.0)],
            ),
            (
                entity(&[("client-id", Some("ok"))]),
                vec![set("producer_byte_rate", 3.0)],
            ),
        ],
        false,
    )
    .await;
    assert_eq!(
        codes,
        vec![
            invalid_request,
            invalid_request,
            invalid_request,
            invalid_request,
            invalid_request,
            invalid_request,
            invalid_request,
            0
        ]
    );
    let left = describe(&mut c, vec![], false).await.unwrap();
    assert_eq!(left.len(), 1, "only the valid entity was stored: {left:?}");
    // Bad filters fail the whole describe.
    assert_eq!(
        describe(
            &mut c,
            vec![("user", ANY, None), ("user", DEFAULT, None)],
            false
        )
        .await,
        Err(invalid_request)
    );
    assert_eq!(
        describe(&mut c, vec![("user", ANY, None), ("ip", ANY, None)], false).await,
        Err(invalid_request)
    );
    assert_eq!(
        describe(&mut c, vec![("group", ANY, None)], false).await,
        Err(ResponseError::UnsupportedVersion.code())
    );
}

#[tokio::test]
async fn quotas_need_cluster_config_permissions() {
    let b =
        TestBroker::start(&["authorizer.class.name=kafka.security.authorizer.AclAuthorizer"]).await;
    let mut c = b.client().await;
    let denied = ResponseError::ClusterAuthorizationFailed.code();
    assert_eq!(
        alter(
            &mut c,
            vec![(
                entity(&[("user", Some("u"))]),
                vec![set("producer_byte_rate", 1.0)]
            )],
            false
        )
        .await,
        vec![denied]
    );
    assert_eq!(describe(&mut c, vec![], false).await, Err(denied));
}
