//! Routes a decoded request header to the handler of its API and encodes the answer.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use tracing::debug;

use super::frame::{FrameError, Request};
use crate::api::{self, versions};
use crate::broker::Broker;
use crate::protocol::encode::{encode_frame, ResponseFrame};
use crate::protocol::guard;

/// Fetch record sets at least this long are written from their read buffers instead of being
/// copied into the encoded response (below it a copy is cheaper than another iovec).
pub const SHARE_RECORDS_MIN: usize = 4096;

/// Answers one request. `Ok(None)` means no response is sent (Produce with acks=0).
pub async fn dispatch(
    broker: &Broker,
    request: Request,
    peer: std::net::SocketAddr,
) -> Result<Option<ResponseFrame>, FrameError> {
    let Request {
        api_key,
        api_version,
        header,
        body,
    } = request;
    let correlation_id = header.correlation_id;
    if api_key == ApiKey::ApiVersions && !versions::accepts(api_key, api_version) {
        // Unknown ApiVersions version: error 35 with a v0 body so the client can retry lower.
        let response = api::api_versions::unsupported_version();
        return encode(api_key, 0, correlation_id, &response).map(Some);
    }
    if !versions::accepts(api_key, api_version) {
        return Err(FrameError::Malformed(format!(
            "{api_key:?} v{api_version} is not served"
        )));
    }
    guard::check_request_body(api_key as i16, api_version, &body)
        .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{api_version}: {e}")))?;
    debug!(?api_key, api_version, correlation_id, client_id = ?header.client_id, "request");
    let v = api_version;
    macro_rules! handle {
        ($req:ty, $handler:path) => {{
            let request = decode::<$req>(body, v, api_key)?;
            let response = $handler(broker, request, v).await;
            encode(api_key, v, correlation_id, &response).map(Some)
        }};
    }
    match api_key {
        ApiKey::Produce => {
            let request = decode::<ProduceRequest>(body, v, api_key)?;
            let silent = request.acks == 0;
            let response = api::produce::handle(broker, request, v).await;
            if silent {
                Ok(None)
            } else {
                encode(api_key, v, correlation_id, &response).map(Some)
            }
        }
        ApiKey::Fetch => {
            let request = decode::<FetchRequest>(body, v, api_key)?;
            let response = api::fetch::handle(broker, request, v).await;
            let shared = fetch_record_sets(&response, SHARE_RECORDS_MIN);
            encode_shared(api_key, v, correlation_id, &response, &shared).map(Some)
        }
        ApiKey::ListOffsets => handle!(ListOffsetsRequest, api::list_offsets::handle),
        ApiKey::Metadata => handle!(MetadataRequest, api::metadata::handle),
        ApiKey::ApiVersions => handle!(ApiVersionsRequest, api::api_versions::handle),
        ApiKey::CreateTopics => handle!(CreateTopicsRequest, api::topics::create_topics),
        ApiKey::DeleteTopics => handle!(DeleteTopicsRequest, api::topics::delete_topics),
        ApiKey::CreatePartitions => {
            handle!(CreatePartitionsRequest, api::topics::create_partitions)
        }
        ApiKey::InitProducerId => handle!(InitProducerIdRequest, api::producer_id::handle),
        ApiKey::DescribeConfigs => handle!(DescribeConfigsRequest, api::configs::describe),
        ApiKey::DescribeCluster => handle!(DescribeClusterRequest, api::cluster::describe),
        ApiKey::ListPartitionReassignments => {
            handle!(ListPartitionReassignmentsRequest, api::reassignments::list)
        }
        ApiKey::FindCoordinator => handle!(FindCoordinatorRequest, api::groups::find_coordinator),
        ApiKey::JoinGroup => {
            let request = decode::<JoinGroupRequest>(body, v, api_key)?;
            let client = api::groups::ClientInfo {
                client_id: header.client_id.as_deref().unwrap_or_default().to_string(),
                client_host: format!("/{}", peer.ip()),
            };
            let response = api::groups::join_group(broker, request, v, &client).await;
            encode(api_key, v, correlation_id, &response).map(Some)
        }
        ApiKey::SyncGroup => handle!(SyncGroupRequest, api::groups::sync_group),
        ApiKey::Heartbeat => handle!(HeartbeatRequest, api::groups::heartbeat),
        ApiKey::LeaveGroup => handle!(LeaveGroupRequest, api::groups::leave_group),
        ApiKey::ListGroups => handle!(ListGroupsRequest, api::groups::list_groups),
        ApiKey::DescribeGroups => handle!(DescribeGroupsRequest, api::groups::describe_groups),
        ApiKey::DeleteGroups => handle!(DeleteGroupsRequest, api::groups::delete_groups),
        ApiKey::OffsetCommit => handle!(OffsetCommitRequest, api::offsets::offset_commit),
        ApiKey::OffsetFetch => handle!(OffsetFetchRequest, api::offsets::offset_fetch),
        ApiKey::OffsetDelete => handle!(OffsetDeleteRequest, api::offsets::offset_delete),
        ApiKey::OffsetForLeaderEpoch => {
            handle!(OffsetForLeaderEpochRequest, api::leader_epoch::handle)
        }
        other => Err(FrameError::Malformed(format!("{other:?} is not served"))),
    }
}

fn decode<T: Decodable>(mut body: Bytes, version: i16, key: ApiKey) -> Result<T, FrameError> {
    T::decode(&mut body, version)
        .map_err(|e| FrameError::Malformed(format!("cannot decode {key:?} v{version}: {e}")))
}

/// Encodes a size-prefixed response frame.
pub fn encode<T: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<ResponseFrame, FrameError> {
    encode_shared(key, version, correlation_id, body, &[])
}

/// Encodes a size-prefixed response frame whose `shared` byte fields (in encoding order) are
/// referenced by the frame rather than copied into it.
pub fn encode_shared<T: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
    shared: &[Bytes],
) -> Result<ResponseFrame, FrameError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    encode_frame(&header, header_version, body, version, shared)
        .map_err(|e| FrameError::Malformed(format!("cannot encode {key:?}: {e}")))
}

/// The record sets of a Fetch answer of at least `min_len` bytes, in the order they are encoded.
pub fn fetch_record_sets(response: &FetchResponse, min_len: usize) -> Vec<Bytes> {
    response
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .filter_map(|p| p.records.as_ref())
        .filter(|r| r.len() >= min_len)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};

    use super::*;

    #[test]
    fn fetch_frames_share_record_sets_and_match_the_copied_encoding() {
        let set = |len: usize, seed: u8| -> Bytes {
            (0..len)
                .map(|i| (i as u8) ^ seed)
                .collect::<Vec<u8>>()
                .into()
        };
        let partition = |i: i32, records: Bytes| {
            PartitionData::default()
                .with_partition_index(i)
                .with_records(Some(records))
        };
        let topic = |parts| FetchableTopicResponse::default().with_partitions(parts);
        let response = FetchResponse::default().with_responses(vec![
            topic(vec![
                partition(0, set(100_000, 1)),
                partition(1, set(10, 2)),
            ]),
            topic(vec![partition(0, Bytes::new()), partition(1, set(4096, 3))]),
        ]);
        let shared = fetch_record_sets(&response, SHARE_RECORDS_MIN);
        assert_eq!(shared.len(), 2);
        for v in 4..=17 {
            let copied = encode(ApiKey::Fetch, v, 9, &response).unwrap();
            let vectored = encode_shared(ApiKey::Fetch, v, 9, &response, &shared).unwrap();
            assert_eq!(copied.part_count(), 1);
            assert!(vectored.part_count() >= 4, "v{v}: record sets are parts");
            assert_eq!(vectored.to_bytes(), copied.to_bytes(), "v{v}");
        }
    }
}
