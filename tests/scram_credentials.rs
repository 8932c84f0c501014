//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) against an in-process
//! standalone broker, in raw protocol: upserts stored as Kafka stores them, described with
//! their iterations, deleted; Kafka's refusals per user; cluster authorization.

// Test code throughout (clippy.toml allows unwrap/expect only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::auth::scram::{ScramCredential, ScramMechanism};
use odradek::config::{ClientEntity, EntityName};

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"salty"))
        .with_salted_password(Bytes::from_static(&[9; 32]))
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

async fn alter(
    c: &mut Client,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) -> Vec<(String, i16)> {
    let req = AlterUserScramCredentialsRequest::default()
        .with_upsertions(upsertions)
        .with_deletions(deletions);
    let resp: AlterUserScramCredentialsResponse =
        c.call(ApiKey::AlterUserScramCredentials, 0, &req).await;
    let mut out: Vec<(String, i16)> = resp
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    out.sort();
    out
}

async fn describe(c: &mut Client, users: Option<&[&str]>) -> DescribeUserScramCredentialsResponse {
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(s(n)))
            .collect()
    }));
    c.call(ApiKey::DescribeUserScramCredentials, 0, &req).await
}

#[tokio::test]
async fn credentials_are_stored_described_and_deleted() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let codes = alter(
        &mut c,
        vec![
            upsert("alice", SHA256, 4096),
            upsert("alice", SHA512, 8192),
            upsert("bob", SHA512, 16384),
        ],
        vec![],
    )
    .await;
    assert_eq!(codes, vec![("alice".into(), 0), ("bob".into(), 0)]);

    // Stored as Kafka stores them: the credential derived from the salted password.
    let broker = &b.running.as_ref().unwrap().broker;
    let stored = broker.cluster.client_entities();
    let alice = ClientEntity::User(EntityName::Named("alice".into()));
    let cred = ScramCredential::parse(stored.value(&alice, "SCRAM-SHA-256").unwrap()).unwrap();
    assert_eq!(
        cred,
        ScramCredential::from_salted_password(
            ScramMechanism::Sha256,
            b"salty".to_vec(),
            &[9; 32],
            4096
        )
    );

    let all = describe(&mut c, None).await;
    assert_eq!(all.error_code, 0);
    let listed: Vec<(String, Vec<(i8, i32)>)> = all
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("alice".into(), vec![(SHA256, 4096), (SHA512, 8192)]),
            ("bob".into(), vec![(SHA512, 16384)])
        ]
    );
    let named = describe(&mut c, Some(&["bob", "nobody", "", "bob2", "bob2"])).await;
    let codes: Vec<(String, i16)> = named
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("bob".into(), 0),
            ("nobody".into(), ResponseError::ResourceNotFound.code()),
            ("".into(), ResponseError::ResourceNotFound.code()),
            ("bob2".into(), ResponseError::DuplicateResource.code()),
        ]
    );

    // Deleting one mechanism keeps the other; deleting what is not there is refused.
    assert_eq!(
        alter(
            &mut c,
            vec![],
            vec![delete("alice", SHA256), delete("bob", SHA256)]
        )
        .await,
        vec![
            ("alice".into(), 0),
            ("bob".into(), ResponseError::ResourceNotFound.code())
        ]
    );
    let alice_now = describe(&mut c, Some(&["alice"])).await;
    assert_eq!(alice_now.results[0].credential_infos.len(), 1);
    assert_eq!(alice_now.results[0].credential_infos[0].mechanism, SHA512);
}

#[tokio::test]
async fn bad_alterations_are_refused_per_user() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let unacceptable = ResponseError::UnacceptableCredential.code();
    let codes = alter(
        &mut c,
        vec![
            upsert("", SHA256, 4096),
            upsert("few", SHA256, 4095),
            upsert("many", SHA512, 16385),
            upsert("mech", 3, 4096),
            upsert("twice", SHA256, 4096),
            upsert("ok", SHA256, 4096),
        ],
        vec![delete("twice", SHA256)],
    )
    .await;
    assert_eq!(
        codes,
        vec![
            ("".into(), unacceptable),
            ("few".into(), unacceptable),
            ("many".into(), unacceptable),
            (
                "mech".into(),
                ResponseError::UnsupportedSaslMechanism.code()
            ),
            ("ok".into(), 0),
            ("twice".into(), ResponseError::DuplicateResource.code()),
        ]
    );
    let all = describe(&mut c, None).await;
    let users: Vec<&str> = all.results.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, vec!["ok"]);
}

#[tokio::test]
async fn credentials_need_cluster_permissions() {
    let b =
        TestBroker::start(&["authorizer.class.name=kafka.security.authorizer.AclAuthorizer"]).await;
    let mut c = b.client().await;
    let denied = ResponseError::ClusterAuthorizationFailed.code();
    assert_eq!(
        alter(&mut c, vec![upsert("u", SHA256, 4096)], vec![]).await,
        vec![("u".into(), denied)]
    );
    assert_eq!(describe(&mut c, None).await.error_code, denied);
}
