//! The one table of served APIs. Each API is named once, with its request type, its handler and
//! its versions; the ApiVersions answer, the version check before decoding and the dispatch to
//! the handler all come from this table, and compile-time checks tie each entry to what
//! `kafka-protocol` can decode. Adding an API means one line here and its handler.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Message, Request};

use super::context::RequestContext;
use super::reply::Reply;
use super::{
    acls, alter_configs, api_versions, client_quotas, cluster, configs, delete_records, elections,
    fetch, groups, leader_epoch, list_offsets, log_dirs, metadata, offsets, produce, producer_id,
    producers, reassignments, sasl, scram_credentials, topics, transactions,
};
use crate::broker::Broker;
use crate::protocol::encode::{EncodeError, ResponseFrame};

/// One served API.
#[derive(Clone, Copy, Debug)]
pub struct ServedApi {
    pub key: ApiKey,
    /// The lowest version advertised in ApiVersions.
    pub advertised_min: i16,
    /// The lowest version answered; advertised versions below it are refused.
    pub accepted_min: i16,
    /// The highest version advertised and answered.
    pub max: i16,
}

impl ServedApi {
    /// Whether a request at `version` is decoded and answered.
    pub fn accepts(&self, version: i16) -> bool {
        (self.accepted_min..=self.max).contains(&version)
    }
}

/// Why a served request got no answer (the connection is closed).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?} is not served")]
    NotServed(ApiKey),
    #[error("cannot decode {key:?} v{version}: {reason}")]
    Decode {
        key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {key:?} answer: {source}")]
    Encode { key: ApiKey, source: EncodeError },
}

/// Builds [`SERVED_APIS`] and [`handle`] from one list of
/// `Key: RequestType => handler, min..=max [accepted from v]`.
macro_rules! served_apis {
    ($( $key:ident: $req:ty => $handler:path, $min:literal ..= $max:literal
        $(, accepted from $accepted:literal)? ; )*) => {
        /// Every served API, in the order ApiVersions lists them.
        pub const SERVED_APIS: &[ServedApi] = &[$(
            ServedApi {
                key: ApiKey::$key,
                advertised_min: $min,
                accepted_min: served_apis!(@accepted $min $($accepted)?),
                max: $max,
            },
        )*];

        // Each entry's key is its request type's, and every answered version decodes.
        $(
            const _: () = {
                assert!(ApiKey::$key as i16 == <$req as Request>::KEY);
                let accepted: i16 = served_apis!(@accepted $min $($accepted)?);
                assert!($min <= accepted && accepted <= $max);
                assert!(accepted >= <$req as Message>::VERSIONS.min);
                assert!($max <= <$req as Message>::VERSIONS.max);
            };
        )*

        /// Decodes a served request's body, runs its handler and encodes the reply (`None`: no
        /// response is sent). The caller has checked the version and guarded the body.
        pub async fn handle(
            broker: &Broker,
            ctx: &RequestContext,
            body: Bytes,
        ) -> Result<Option<ResponseFrame>, ApiError> {
            match ctx.api_key {
                $(ApiKey::$key => {
                    let request = decode::<$req>(ctx, body)?;
                    let reply: Reply<<$req as Request>::Response> =
                        $handler(broker, ctx, request).await.into();
                    reply
                        .encode(ctx)
                        .map_err(|source| ApiError::Encode { key: ctx.api_key, source })
                })*
                other => Err(ApiError::NotServed(other)),
            }
        }
    };
    (@accepted $min:literal) => { $min };
    (@accepted $min:literal $accepted:literal) => { $accepted };
}

// Minimums are Kafka 4.0's; maximums are the newest versions Kafka 3.9's Java client,
// librdkafka and kafka-python send that this broker implements fully.
served_apis! {
    // Advertised from v0 (older librdkafka only compresses when it sees v0) but, as in Kafka
    // 4.0, v0-v2 requests are refused.
    Produce: ProduceRequest => produce::handle, 0..=11, accepted from 3;
    Fetch: FetchRequest => fetch::handle, 4..=17;
    ListOffsets: ListOffsetsRequest => list_offsets::handle, 1..=9;
    Metadata: MetadataRequest => metadata::handle, 0..=12;
    ApiVersions: ApiVersionsRequest => api_versions::handle, 0..=4;
    CreateTopics: CreateTopicsRequest => topics::create_topics, 2..=7;
    DeleteTopics: DeleteTopicsRequest => topics::delete_topics, 1..=6;
    InitProducerId: InitProducerIdRequest => producer_id::handle, 0..=5;
    DescribeConfigs: DescribeConfigsRequest => configs::describe, 1..=4;
    AlterConfigs: AlterConfigsRequest => alter_configs::alter, 0..=2;
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest => alter_configs::incremental_alter, 0..=1;
    CreatePartitions: CreatePartitionsRequest => topics::create_partitions, 0..=3;
    DescribeCluster: DescribeClusterRequest => cluster::describe, 0..=1;
    ElectLeaders: ElectLeadersRequest => elections::handle, 0..=2;
    AlterPartitionReassignments: AlterPartitionReassignmentsRequest => reassignments::alter, 0..=1;
    ListPartitionReassignments: ListPartitionReassignmentsRequest => reassignments::list, 0..=0;
    FindCoordinator: FindCoordinatorRequest => groups::find_coordinator, 0..=5;
    JoinGroup: JoinGroupRequest => groups::join_group, 2..=9;
    SyncGroup: SyncGroupRequest => groups::sync_group, 0..=5;
    Heartbeat: HeartbeatRequest => groups::heartbeat, 0..=4;
    LeaveGroup: LeaveGroupRequest => groups::leave_group, 0..=5;
    OffsetCommit: OffsetCommitRequest => offsets::offset_commit, 2..=9;
    OffsetFetch: OffsetFetchRequest => offsets::offset_fetch, 1..=9;
    ListGroups: ListGroupsRequest => groups::list_groups, 0..=5;
    DescribeGroups: DescribeGroupsRequest => groups::describe_groups, 0..=5;
    DeleteGroups: DeleteGroupsRequest => groups::delete_groups, 0..=2;
    OffsetDelete: OffsetDeleteRequest => offsets::offset_delete, 0..=0;
    // Kafka 4.0 serves 2-4 (0-1 were removed with KIP-896).
    OffsetForLeaderEpoch: OffsetForLeaderEpochRequest => leader_epoch::handle, 2..=4;
    DeleteRecords: DeleteRecordsRequest => delete_records::handle, 0..=2;
    // Kafka 3.9 serves 0-4 (0 deprecated, removed in 4.0); kafka-protocol decodes 1-4.
    DescribeLogDirs: DescribeLogDirsRequest => log_dirs::handle, 1..=4;
    DescribeProducers: DescribeProducersRequest => producers::handle, 0..=0;
    // Transactions v1 semantics (KIP-98, KIP-447, KIP-588, KIP-890 part 1): AddPartitionsToTxn
    // v4 is the brokers' batched verify form; the versions above these mean transactions v2.
    AddPartitionsToTxn: AddPartitionsToTxnRequest => transactions::add_partitions_to_txn, 0..=4;
    AddOffsetsToTxn: AddOffsetsToTxnRequest => transactions::add_offsets_to_txn, 0..=4;
    EndTxn: EndTxnRequest => transactions::end_txn, 0..=4;
    WriteTxnMarkers: WriteTxnMarkersRequest => transactions::write_txn_markers, 1..=1;
    TxnOffsetCommit: TxnOffsetCommitRequest => transactions::txn_offset_commit, 0..=4;
    DescribeTransactions: DescribeTransactionsRequest => transactions::describe_transactions, 0..=0;
    ListTransactions: ListTransactionsRequest => transactions::list_transactions, 0..=1;
    // Kafka 3.9 serves 0-3 (0 removed in 4.0); kafka-protocol decodes 1-3.
    CreateAcls: CreateAclsRequest => acls::create_acls, 1..=3;
    DescribeAcls: DescribeAclsRequest => acls::describe_acls, 1..=3;
    DeleteAcls: DeleteAclsRequest => acls::delete_acls, 1..=3;
    DescribeClientQuotas: DescribeClientQuotasRequest => client_quotas::describe, 0..=1;
    AlterClientQuotas: AlterClientQuotasRequest => client_quotas::alter, 0..=1;
    DescribeUserScramCredentials: DescribeUserScramCredentialsRequest => scram_credentials::describe, 0..=0;
    AlterUserScramCredentials: AlterUserScramCredentialsRequest => scram_credentials::alter, 0..=0;
    // Answered here outside a SASL exchange (ILLEGAL_SASL_STATE); a SASL listener's connection
    // runs the exchange itself (sasl::exchange). SaslHandshake is advertised from v0, as Kafka
    // does (librdkafka 2.0 only uses SASL when v0 is advertised), but v0 (raw tokens after the
    // handshake) is refused: clients that see v1 use it.
    SaslHandshake: SaslHandshakeRequest => sasl::handshake, 0..=1, accepted from 1;
    SaslAuthenticate: SaslAuthenticateRequest => sasl::authenticate, 0..=2;
}

/// The table entry of `key`, if it is served.
pub fn served(key: ApiKey) -> Option<&'static ServedApi> {
    SERVED_APIS.iter().find(|a| a.key == key)
}

pub(super) fn decode<T: Decodable>(ctx: &RequestContext, mut body: Bytes) -> Result<T, ApiError> {
    T::decode(&mut body, ctx.api_version).map_err(|e| ApiError::Decode {
        key: ctx.api_key,
        version: ctx.api_version,
        reason: e.to_string(),
    })
}
