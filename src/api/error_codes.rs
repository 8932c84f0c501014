//! Mapping of the broker's typed errors onto Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::broker::configs::ConfigUpdateError;
use crate::cluster::{ClusterError, ControllerError};
use crate::log::{AppendError, ReadError, RejectionKind};
use crate::replica::{
    DeleteRecordsError, EpochMismatch, FollowerFetchError, LogDirError, ProduceError, ServeError,
};

/// A broker error that a client sees as a Kafka error code.
pub trait KafkaCode {
    fn kafka_error(&self) -> ResponseError;
    fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}

impl KafkaCode for ClusterError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ClusterError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            ClusterError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            ClusterError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            ClusterError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            ClusterError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ClusterError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ClusterError::Storage(_) | ClusterError::Corrupt(_) => {
                ResponseError::UnknownServerError
            }
            ClusterError::Unavailable(_) => ResponseError::RequestTimedOut,
        }
    }
}

impl KafkaCode for ControllerError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ControllerError::NotController => ResponseError::NotController,
            ControllerError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ControllerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ControllerError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
            ControllerError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            ControllerError::PreferredLeaderNotAvailable(_) => {
                ResponseError::PreferredLeaderNotAvailable
            }
            ControllerError::EligibleLeadersNotAvailable(_) => {
                ResponseError::EligibleLeadersNotAvailable
            }
            ControllerError::TimedOut => ResponseError::RequestTimedOut,
            ControllerError::Unavailable(_) => ResponseError::UnknownServerError,
        }
    }
}

impl KafkaCode for ConfigUpdateError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ConfigUpdateError::InvalidRequest(_) => ResponseError::InvalidRequest,
            ConfigUpdateError::InvalidConfig(_) => ResponseError::InvalidConfig,
            ConfigUpdateError::Cluster(e) => e.kafka_error(),
        }
    }
}

impl KafkaCode for AppendError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            AppendError::CorruptMessage(_) => ResponseError::CorruptMessage,
            AppendError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            AppendError::InvalidRecord(_) => ResponseError::InvalidRecord,
            AppendError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            AppendError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
            AppendError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
            AppendError::TransactionCoordinatorFenced(_) => {
                ResponseError::TransactionCoordinatorFenced
            }
            AppendError::RejectedRecords { kind, .. } => match kind {
                RejectionKind::InvalidRecord => ResponseError::InvalidRecord,
                RejectionKind::InvalidTimestamp => ResponseError::InvalidTimestamp,
            },
            AppendError::Conversion(_) => ResponseError::UnknownServerError,
            AppendError::Storage(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl KafkaCode for ProduceError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ProduceError::NotLeader => ResponseError::NotLeaderOrFollower,
            ProduceError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            ProduceError::NotEnoughReplicasAfterAppend { .. } => {
                ResponseError::NotEnoughReplicasAfterAppend
            }
            ProduceError::Timeout => ResponseError::RequestTimedOut,
            ProduceError::Append(e) => e.kafka_error(),
        }
    }
}

impl KafkaCode for ReadError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ReadError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            ReadError::Storage(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl KafkaCode for EpochMismatch {
    fn kafka_error(&self) -> ResponseError {
        match self {
            EpochMismatch::Fenced => ResponseError::FencedLeaderEpoch,
            EpochMismatch::Unknown => ResponseError::UnknownLeaderEpoch,
        }
    }
}

impl KafkaCode for FollowerFetchError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            FollowerFetchError::NotLeader | FollowerFetchError::NotAReplica(_) => {
                ResponseError::NotLeaderOrFollower
            }
        }
    }
}

impl KafkaCode for ServeError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ServeError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            ServeError::UnknownTopicId => ResponseError::UnknownTopicId,
            ServeError::NotLeader => ResponseError::NotLeaderOrFollower,
            ServeError::Epoch(e) => e.kafka_error(),
            ServeError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            ServeError::Follower(e) => e.kafka_error(),
            ServeError::Read(e) => e.kafka_error(),
            ServeError::Storage(_) => ResponseError::KafkaStorageError,
            ServeError::UnsupportedCompressionType => ResponseError::UnsupportedCompressionType,
            ServeError::TopicAuthorizationFailed => ResponseError::TopicAuthorizationFailed,
        }
    }
}

impl KafkaCode for DeleteRecordsError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            DeleteRecordsError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            DeleteRecordsError::NotLeader => ResponseError::NotLeaderOrFollower,
            DeleteRecordsError::InternalTopic(_) => ResponseError::InvalidTopicException,
            DeleteRecordsError::PolicyViolation => ResponseError::PolicyViolation,
            DeleteRecordsError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            DeleteRecordsError::Timeout { .. } => ResponseError::RequestTimedOut,
            DeleteRecordsError::Storage(_) => ResponseError::KafkaStorageError,
            DeleteRecordsError::Internal(_) => ResponseError::UnknownServerError,
        }
    }
}

impl KafkaCode for LogDirError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            LogDirError::Failed(_) => ResponseError::KafkaStorageError,
            LogDirError::Volume(_) => ResponseError::UnknownServerError,
        }
    }
}
