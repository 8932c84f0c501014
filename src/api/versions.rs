//! The APIs this broker serves and the version range of each: the single source for both the
//! ApiVersions answer and request dispatch.

use kafka_protocol::messages::ApiKey;

/// One served API: the range advertised in ApiVersions, and the range actually decoded.
#[derive(Clone, Copy, Debug)]
pub struct ServedApi {
    pub key: ApiKey,
    pub advertised_min: i16,
    pub max: i16,
    /// Lowest version decoded; below it (but >= advertised_min) requests are refused.
    pub accepted_min: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ServedApi {
    ServedApi {
        key,
        advertised_min: min,
        max,
        accepted_min: min,
    }
}

/// Served APIs. Minimums are Kafka 4.0's; maximums are the newest versions Kafka 3.9's Java client,
/// librdkafka and kafka-python send that this broker implements fully.
pub const SERVED_APIS: &[ServedApi] = &[
    // Produce is advertised from v0 (older librdkafka only compresses when it sees v0) but, as
    // in Kafka 4.0, v0-v2 requests are refused.
    ServedApi {
        key: ApiKey::Produce,
        advertised_min: 0,
        max: 11,
        accepted_min: 3,
    },
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 9),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    api(ApiKey::FindCoordinator, 0, 5),
    api(ApiKey::JoinGroup, 2, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    // Kafka 4.0 serves 2-4 (0-1 were removed with KIP-896).
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
];

/// The served range of `key`, if served at all.
pub fn served(key: ApiKey) -> Option<&'static ServedApi> {
    SERVED_APIS.iter().find(|a| a.key == key)
}

/// Whether a request at `version` is decoded and answered.
pub fn accepts(key: ApiKey, version: i16) -> bool {
    served(key).is_some_and(|a| (a.accepted_min..=a.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn decodable(key: ApiKey) -> (i16, i16) {
        let r = match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
            other => panic!("no decoder listed for {other:?}"),
        };
        (r.min, r.max)
    }

    #[test]
    fn every_accepted_version_can_be_decoded() {
        for api in SERVED_APIS {
            let (min, max) = decodable(api.key);
            assert!(api.accepted_min >= min && api.max <= max, "{:?}", api.key);
            assert!(api.advertised_min <= api.accepted_min);
        }
    }
}
