//! Reads a replica serves: fetches, offset lookups and leader-epoch lookups (Kafka's
//! `Partition.fetchRecords`, `fetchOffsetForTimestamp` and `lastOffsetForLeaderEpoch`). Every one
//! passes one gate first ([`Partition::check_serving`], Kafka's `localLogWithEpochOrThrow`): this
//! broker leads the partition at the leader epoch the caller knows. Reads then stay within the
//! bound the reader may see ([`FetchIsolation`]).

use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, warn};

use super::{EpochMismatch, FollowerFetchError, Partition};
use crate::log::{AbortedTxn, BatchHeader, CompressionType, LogError, ReadError, TimestampOffset};

/// How far a reader may read (Kafka's `FetchIsolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Follower brokers: everything the leader has.
    LogEnd,
    /// read_uncommitted consumers: what the in-sync replicas have.
    HighWatermark,
    /// read_committed consumers: up to the last stable offset.
    TxnCommitted,
}

/// Why a replica does not serve a read; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("this broker does not host the partition")]
    UnknownTopicOrPartition,
    #[error("no topic has this id")]
    UnknownTopicId,
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error(transparent)]
    Epoch(#[from] EpochMismatch),
    #[error("offset {offset} outside [{log_start_offset}, {upper}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        upper: i64,
    },
    #[error(transparent)]
    Follower(#[from] FollowerFetchError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Storage(#[from] LogError),
    /// The topic is configured `compression.type=zstd` and the fetch version predates zstd
    /// (Kafka refuses consumer fetches below v10 of such topics).
    #[error("the topic stores zstd batches, which this fetch version cannot carry")]
    UnsupportedCompressionType,
    /// The requester may not READ the topic (refused before the replica layer is asked).
    #[error("not authorized to read the topic")]
    TopicAuthorizationFailed,
}

/// One partition's part of a fetch answer. The offsets are -1 when the partition is not hosted.
#[derive(Debug)]
pub struct FetchedPartition {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Stored record batches as they are on disk (empty when nothing is read).
    pub records: Bytes,
    /// read_committed readers: the aborted transactions overlapping the records read, sorted by
    /// first offset (empty when none); `None` for other readers and on errors.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    pub error: Option<ServeError>,
}

impl FetchedPartition {
    /// The answer for a partition this broker cannot even look at.
    pub fn failed(error: ServeError) -> FetchedPartition {
        FetchedPartition {
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Bytes::new(),
            aborted_transactions: None,
            error: Some(error),
        }
    }

    fn refuse(mut self, error: ServeError) -> FetchedPartition {
        self.error = Some(error);
        self.aborted_transactions = None;
        self
    }
}

/// What a ListOffsets request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The high watermark (read_committed: the last stable offset).
    Latest,
    /// The log start offset (also "earliest local": all data is local).
    Earliest,
    /// The highest offset in remote storage: none here.
    LatestTiered,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// The first offset whose timestamp is at least this.
    Timestamp(i64),
}

/// A ListOffsets answer: the leader's epoch, and the offset found (`None`: none matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetLookup {
    pub leader_epoch: i32,
    pub found: Option<TimestampOffset>,
}

/// The offset right after the last whole batch of `records` (`None` when there is none).
fn records_end(records: &[u8]) -> Option<i64> {
    let mut pos = 0usize;
    let mut end = None;
    while let Some(h) = records.get(pos..).and_then(BatchHeader::parse) {
        let size = h.size().filter(|s| *s > 0 && pos + *s <= records.len())?;
        end = Some(h.next_offset());
        pos += size;
    }
    end
}

impl Partition {
    /// The gate of every read: this broker leads the partition, at `current_leader_epoch` if the
    /// caller gave one (-1: not given). Followers serve no reads (KIP-392 is not implemented).
    pub fn check_serving(&self, current_leader_epoch: i32) -> Result<(), ServeError> {
        if !self.is_leader() {
            return Err(ServeError::NotLeader);
        }
        self.check_leader_epoch(current_leader_epoch)?;
        Ok(())
    }

    /// The offset a reader with `isolation` may read up to (exclusive).
    pub fn read_bound(&self, isolation: FetchIsolation) -> i64 {
        match isolation {
            FetchIsolation::LogEnd => self.log.log_end_offset(),
            FetchIsolation::HighWatermark => self.high_watermark(),
            FetchIsolation::TxnCommitted => self.last_stable_offset(),
        }
    }

    /// The last stable offset (Kafka's `lastStableOffset`): below it no transaction is open,
    /// nor completed by a marker the high watermark has not passed; never above the high
    /// watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.log
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw))
    }

    /// The leader side of a follower's fetch, recorded once before its first read (as Kafka):
    /// through the gate, then the follower's position, unless the offset is not a position in
    /// this log (the read answers OFFSET_OUT_OF_RANGE then; Kafka records only successful reads).
    pub fn accept_follower_fetch(
        self: &Arc<Self>,
        replica_id: i32,
        fetch_offset: i64,
        follower_log_start: i64,
        current_leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(), ServeError> {
        self.check_serving(current_leader_epoch)?;
        if fetch_offset < self.log.log_start_offset() || fetch_offset > self.log.log_end_offset() {
            return Ok(());
        }
        self.record_follower_fetch(replica_id, fetch_offset, follower_log_start, now_ms)?;
        Ok(())
    }

    /// Reads for a fetch: the gate, then up to `max_bytes` from `fetch_offset` within the
    /// isolation bound. `min_one_batch` hands out a first batch larger than `max_bytes` (Kafka's
    /// minOneMessage: the first partition of a response with data always gets one batch).
    pub fn fetch_read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        current_leader_epoch: i32,
        isolation: FetchIsolation,
    ) -> FetchedPartition {
        let high_watermark = self.high_watermark();
        let log_start_offset = self.log.log_start_offset();
        let committed = isolation == FetchIsolation::TxnCommitted;
        let answer = FetchedPartition {
            high_watermark,
            last_stable_offset: self.last_stable_offset(),
            log_start_offset,
            records: Bytes::new(),
            aborted_transactions: committed.then(Vec::new),
            error: None,
        };
        if let Err(e) = self.check_serving(current_leader_epoch) {
            return answer.refuse(e);
        }
        let upper = self.read_bound(isolation);
        // The offset may equal the bound (nothing new yet); past it is out of range.
        if fetch_offset > upper || fetch_offset < log_start_offset {
            return answer.refuse(ServeError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset,
                upper,
            });
        }
        if fetch_offset == upper || (max_bytes == 0 && !min_one_batch) {
            return answer;
        }
        match self
            .log
            .read(fetch_offset, max_bytes, min_one_batch, Some(upper))
        {
            Ok(data) => FetchedPartition {
                aborted_transactions: match records_end(&data.records) {
                    Some(end) if committed => {
                        Some(self.log.collect_aborted_transactions(fetch_offset, end))
                    }
                    _ => answer.aborted_transactions.clone(),
                },
                records: data.records,
                ..answer
            },
            Err(e) => answer.refuse(e.into()),
        }
    }

    /// ListOffsets: through the gate, then the offset `spec` asks for, among the records
    /// consumers may read (below the high watermark).
    pub fn offset_lookup(
        &self,
        spec: OffsetSpec,
        current_leader_epoch: i32,
    ) -> Result<OffsetLookup, ServeError> {
        self.offset_lookup_isolated(spec, current_leader_epoch, FetchIsolation::HighWatermark)
    }

    /// ListOffsets at an isolation level: the bound is the high watermark, or for
    /// `TxnCommitted` (read_committed) the last stable offset, as in Kafka: LATEST answers the
    /// bound, timestamp lookups find only offsets below it.
    pub fn offset_lookup_isolated(
        &self,
        spec: OffsetSpec,
        current_leader_epoch: i32,
        isolation: FetchIsolation,
    ) -> Result<OffsetLookup, ServeError> {
        self.check_serving(current_leader_epoch)?;
        let hw = match isolation {
            FetchIsolation::TxnCommitted => self.last_stable_offset(),
            _ => self.high_watermark(),
        };
        let visible = |found: Option<TimestampOffset>| found.filter(|t| t.offset < hw);
        let found = match spec {
            OffsetSpec::Latest => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: hw,
            })),
            OffsetSpec::Earliest => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: self.log.log_start_offset(),
            })),
            OffsetSpec::LatestTiered => Ok(None),
            OffsetSpec::MaxTimestamp => self.log.max_timestamp_offset().map(visible),
            OffsetSpec::Timestamp(ts) => self.log.offset_for_timestamp(ts).map(visible),
        }
        .inspect_err(|e| warn!(partition = %self.tp, error = %e, "offset lookup failed"))?;
        Ok(OffsetLookup {
            leader_epoch: self.leader_epoch(),
            found,
        })
    }

    /// OffsetForLeaderEpoch: through the gate, then where `requested_epoch` ends in the leader's
    /// log, as (epoch, end offset) from the leader epoch cache.
    pub fn epoch_end_offset(
        &self,
        requested_epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<(i32, i64), ServeError> {
        self.check_serving(current_leader_epoch)?;
        let (epoch, end_offset) = self.log.leader_epoch_end_offset(requested_epoch);
        debug!(partition = %self.tp, requested = requested_epoch, epoch, end_offset,
            "leader epoch end");
        Ok((epoch, end_offset))
    }

    /// Reads this replica's own log from `offset` to `upper` (exclusive), at most `max_bytes`
    /// but at least one batch, whatever its role (a coordinator loading its state).
    pub fn read_local(
        &self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<Bytes, ReadError> {
        self.log
            .read(offset, max_bytes, true, Some(upper))
            .map(|d| d.records)
    }

    /// The topic's `compression.type`, as this replica's log has it.
    pub fn compression(&self) -> CompressionType {
        self.log.config().compression
    }

    /// The first offset of this replica's log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// The offset the next record appended to this replica's log gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The latest leader epoch in this replica's own log (follower truncation).
    pub fn latest_local_epoch(&self) -> Option<i32> {
        self.log.latest_epoch()
    }

    /// Where `epoch` ends in this replica's own log, as (epoch, end offset) (follower truncation).
    pub fn local_epoch_end_offset(&self, epoch: i32) -> (i32, i64) {
        self.log.leader_epoch_end_offset(epoch)
    }

    /// This replica's leader epoch cache as (epoch, start offset) pairs (diagnostics, tests).
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.log.epoch_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::config::ReplicationSettings;
    use crate::log::batch::test_util::{batch, TestBatch};
    use crate::log::LogManager;
    use crate::replica::link::LeaderAndIsr;

    fn leader(dir: &std::path::Path) -> Arc<Partition> {
        let logs = LogManager::open(dir).unwrap();
        let tp = TopicPartition::new("t", 0);
        let log = logs.open_partition(&tp, Default::default()).unwrap();
        let shared = Arc::new(Shared::new(1, ReplicationSettings::default(), logs));
        let p = Arc::new(Partition::new(tp, log, shared, 2, None));
        p.apply(
            &LeaderAndIsr {
                leader: 1,
                leader_epoch: 0,
                isr: vec![1, 2],
                replicas: vec![1, 2],
                controller_epoch: 1,
                state_version: 0,
            },
            1,
        );
        p
    }

    fn read(p: &Partition, offset: i64, isolation: FetchIsolation) -> FetchedPartition {
        p.fetch_read(offset, 1 << 20, true, -1, isolation)
    }

    fn latest(p: &Partition, isolation: FetchIsolation) -> i64 {
        p.offset_lookup_isolated(OffsetSpec::Latest, -1, isolation)
            .unwrap()
            .found
            .unwrap()
            .offset
    }

    #[test]
    fn read_committed_stops_at_the_lso_and_gets_the_aborted_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let p = leader(dir.path());
        let txn = TestBatch::new(2, 1_000).transactional(7, 0, 0).build();
        let guard = p.verification_guard(7);
        p.append_as_leader_verified(&txn, 1, 0, Some(guard))
            .unwrap(); // 0-1
        p.append_as_leader(&batch(1, 1_000), 1, 0).unwrap(); // 2
        p.record_follower_fetch(2, 3, 0, 10).unwrap();
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(
            p.last_stable_offset(),
            0,
            "transaction of producer 7 is open"
        );
        let f = read(&p, 0, FetchIsolation::TxnCommitted);
        assert!(f.records.is_empty());
        assert_eq!(f.last_stable_offset, 0);
        assert_eq!(f.aborted_transactions, Some(vec![]));
        assert_eq!(latest(&p, FetchIsolation::TxnCommitted), 0);
        assert_eq!(latest(&p, FetchIsolation::HighWatermark), 3);
        let f = read(&p, 0, FetchIsolation::HighWatermark);
        assert!(!f.records.is_empty());
        assert_eq!(f.aborted_transactions, None);

        assert_eq!(p.log.append_marker(7, 0, false, 0, 0, 2_000).unwrap(), 3);
        assert_eq!(
            p.last_stable_offset(),
            0,
            "the marker is not replicated yet"
        );
        p.record_follower_fetch(2, 4, 0, 20).unwrap();
        assert_eq!(p.last_stable_offset(), 4);
        assert_eq!(latest(&p, FetchIsolation::TxnCommitted), 4);
        let expect = vec![AbortedTxn {
            producer_id: 7,
            first_offset: 0,
            last_offset: 3,
            last_stable_offset: 4,
        }];
        for from in [0, 2, 3] {
            let f = read(&p, from, FetchIsolation::TxnCommitted);
            assert!(!f.records.is_empty());
            assert_eq!(
                f.aborted_transactions.as_ref(),
                Some(&expect),
                "from {from}"
            );
        }
        // Past the marker there is nothing aborted; errors carry none.
        assert_eq!(
            read(&p, 4, FetchIsolation::TxnCommitted).aborted_transactions,
            Some(vec![])
        );
        assert_eq!(
            read(&p, 9, FetchIsolation::TxnCommitted).aborted_transactions,
            None
        );
        assert_eq!(
            records_end(&read(&p, 0, FetchIsolation::LogEnd).records),
            Some(4)
        );
    }
}
