//! Producer state (Kafka's ProducerStateManager / ProducerAppendInfo): per producer id the epoch,
//! the metadata of its last 5 batches, its last timestamp, the coordinator epoch of its last
//! transaction marker and the first offset of its ongoing transaction; the ongoing transactions
//! ordered by first offset (the first unstable offset); snapshots in `{offset:020}.snapshot` files
//! (own binary format, CRC-32C protected; version 2 adds the transaction fields, version 1 still
//! loads).
//!
//! Transactions: the first transactional data batch of a producer with none ongoing starts one at
//! its first offset; its COMMIT or ABORT marker completes it ([`ProducerState::apply_marker`]). An
//! abort yields the [`AbortedTxn`] entry of the segment's transaction index, whose last stable
//! offset is the first offset of the oldest transaction still ongoing, else the marker's offset + 1.
//!
//! Verification (KIP-890): [`VerificationStates`] holds, per producer and in memory only, the
//! [`VerificationGuard`] a client's batch must carry to start a transaction.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, EndTxnMarker};
use super::error::AppendError;
use super::txn_index::AbortedTxn;
use crate::util::durable::write_atomically;

/// Kafka keeps the metadata of this many batches per producer for duplicate detection.
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"ODPS";
const SNAPSHOT_VERSION: u8 = 2;
/// The idempotent-only format: no coordinator epoch or ongoing transaction per producer.
const SNAPSHOT_VERSION_1: u8 = 1;
const ENTRY_FIXED: usize = 8 + 2 + 8 + 1;
/// Bytes version 2 adds per producer: coordinator epoch, ongoing transaction's first offset.
const ENTRY_TXN: usize = 4 + 8;
const BATCH_META: usize = 4 + 4 + 8 + 8 + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
    /// Coordinator epoch of the last transaction marker, -1 before any.
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction.
    pub current_txn_first_offset: Option<i64>,
}

/// A transaction its marker completed (Kafka's `CompletedTxn`): offsets of its first record and
/// of the marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

impl ProducerEntry {
    /// An entry for a producer first seen at epoch `epoch`.
    pub fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Records a batch (after offsets are assigned); a new epoch forgets the old batches.
    pub fn add_batch(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64) {
        if h.producer_epoch != self.epoch {
            self.batches.clear();
            self.epoch = h.producer_epoch;
        }
        self.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset,
            last_offset,
            timestamp: h.max_timestamp,
        });
        while self.batches.len() > NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp = h.max_timestamp;
        if h.is_transactional() && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(first_offset);
        }
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// Proof that a transactional producer's partition was verified with its transaction
/// coordinator before it opens a transaction in this log (KIP-890; Kafka's `VerificationGuard`).
/// Handed out by `PartitionLog::verification_guard`, non-zero and unique per log; only the guard
/// the log currently stores for the producer lets a transactional batch start a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    /// The guard's number (for logs and diagnostics).
    pub fn value(self) -> u64 {
        self.0
    }
}

/// The verification guards of a log, per producer id (Kafka's `VerificationStateEntry`s): in
/// memory only, never in snapshots, and kept apart from the producers' entries so that a producer
/// without state can hold one. A guard is removed when its producer's transaction starts, when a
/// marker of the producer is written, when the log is truncated, and after
/// `producer.id.expiration.ms`.
#[derive(Debug, Default)]
pub(crate) struct VerificationStates {
    /// The last guard number handed out (0 = none yet).
    last: u64,
    /// Producer id -> (guard, creation time in ms).
    entries: HashMap<i64, (VerificationGuard, i64)>,
}

impl VerificationStates {
    /// The producer's guard, created (stamped `now_ms`) if it has none.
    pub fn get_or_create(&mut self, producer_id: i64, now_ms: i64) -> VerificationGuard {
        if let Some((g, _)) = self.entries.get(&producer_id) {
            return *g;
        }
        self.last = self.last.wrapping_add(1).max(1);
        let g = VerificationGuard(self.last);
        self.entries.insert(producer_id, (g, now_ms));
        g
    }

    /// Whether `guard` is the producer's stored guard (a missing one never verifies).
    pub fn verifies(&self, producer_id: i64, guard: Option<VerificationGuard>) -> bool {
        match (self.entries.get(&producer_id), guard) {
            (Some((stored, _)), Some(g)) => *stored == g,
            _ => false,
        }
    }

    /// Forgets the producer's guard.
    pub fn clear(&mut self, producer_id: i64) {
        self.entries.remove(&producer_id);
    }

    /// Forgets every guard.
    pub fn clear_all(&mut self) {
        self.entries.clear();
    }

    /// Forgets guards created at least `expiration_ms` before `now_ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.entries
            .retain(|_, (_, created)| now_ms.saturating_sub(*created) < expiration_ms);
    }

    /// Whether the producer holds a guard (tests).
    #[cfg(test)]
    pub fn has(&self, producer_id: i64) -> bool {
        self.entries.contains_key(&producer_id)
    }
}

/// One producer of a partition as DescribeProducers reports it (KIP-664).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The last sequence of its retained batches, -1 if none is retained.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// Coordinator epoch of its last transaction marker, -1 before any.
    pub coordinator_epoch: i32,
    /// First offset of its ongoing transaction, -1 if none is ongoing.
    pub current_txn_start_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerState {
    pub producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions: first offset -> producer id (derived from `producers`).
    pub ongoing: BTreeMap<i64, i64>,
}

impl ProducerState {
    /// Every producer with state, by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ActiveProducer {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Stores a producer's updated entry, keeping the ongoing transactions in step.
    pub fn insert(&mut self, producer_id: i64, e: ProducerEntry) {
        if let Some(f) = e.current_txn_first_offset {
            self.ongoing.insert(f, producer_id);
        }
        self.producers.insert(producer_id, e);
    }

    /// Rebuilds `ongoing` from the entries (after loading or removing producers).
    pub fn rebuild_ongoing(&mut self) {
        self.ongoing = self
            .producers
            .iter()
            .filter_map(|(id, e)| e.current_txn_first_offset.map(|f| (f, *id)))
            .collect();
    }

    /// Whether the producer has an ongoing transaction, looking at `staged` entries (earlier
    /// batches of the same payload) first.
    pub fn has_ongoing_txn(&self, staged: &HashMap<i64, ProducerEntry>, producer_id: i64) -> bool {
        staged
            .get(&producer_id)
            .or_else(|| self.producers.get(&producer_id))
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// The first offset of the oldest ongoing transaction.
    pub fn first_ongoing_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Kafka's `appendEndTxnMarker`: applies a COMMIT or ABORT marker at `offset`. With `strict`
    /// (a leader's append) a marker older than the producer's epoch is refused
    /// (`InvalidProducerEpoch`) and so is one from an older coordinator epoch
    /// (`TransactionCoordinatorFenced`); replicated and replayed markers are applied as they
    /// are. A newer epoch replaces the stored one. Completes the ongoing transaction, if any.
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        offset: i64,
        timestamp: i64,
        strict: bool,
    ) -> Result<Option<CompletedTxn>, AppendError> {
        if strict {
            self.check_marker(producer_id, producer_epoch, marker)?;
        }
        let e = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(producer_epoch));
        if producer_epoch != e.epoch {
            e.batches.clear();
            e.epoch = producer_epoch;
        }
        e.coordinator_epoch = marker.coordinator_epoch;
        e.last_timestamp = timestamp;
        let Some(first_offset) = e.current_txn_first_offset.take() else {
            return Ok(None);
        };
        self.ongoing.remove(&first_offset);
        Ok(Some(CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            aborted: !marker.commit,
        }))
    }

    /// The leader's checks of a marker (see [`ProducerState::apply_marker`]).
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
    ) -> Result<(), AppendError> {
        let Some(e) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < e.epoch {
            return Err(AppendError::InvalidProducerEpoch(format!(
                "marker of producer {producer_id} at epoch {producer_epoch} is older than the \
                 current epoch {}",
                e.epoch
            )));
        }
        if e.coordinator_epoch > marker.coordinator_epoch {
            return Err(AppendError::TransactionCoordinatorFenced(format!(
                "marker of producer {producer_id} from coordinator epoch {} is older than {}",
                marker.coordinator_epoch, e.coordinator_epoch
            )));
        }
        Ok(())
    }

    /// The transaction index entry of an aborted transaction just completed: its last stable
    /// offset is the oldest ongoing transaction's first offset, else the marker's offset + 1
    /// (Kafka's `ProducerStateManager.lastStableOffset(completedTxn)`).
    pub fn aborted_entry(&self, c: &CompletedTxn) -> Option<AbortedTxn> {
        c.aborted.then(|| AbortedTxn {
            producer_id: c.producer_id,
            first_offset: c.first_offset,
            last_offset: c.last_offset,
            last_stable_offset: self
                .first_ongoing_offset()
                .unwrap_or(c.last_offset.saturating_add(1)),
        })
    }

    /// The stored metadata of a batch identical (epoch, first and last sequence) to `h`, if the
    /// producer's last 5 batches contain one.
    pub fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMeta> {
        let e = self.producers.get(&h.producer_id)?;
        if e.epoch != h.producer_epoch {
            return None;
        }
        let last = h.last_sequence();
        e.batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last)
            .copied()
    }

    /// The epoch check alone, for a coordinator's batch (no sequences): an older epoch is fenced.
    pub fn check_epoch(
        &self,
        staged: &HashMap<i64, ProducerEntry>,
        h: &BatchHeader,
    ) -> Result<(), AppendError> {
        let current = staged
            .get(&h.producer_id)
            .or_else(|| self.producers.get(&h.producer_id));
        match current {
            Some(e) if h.producer_epoch < e.epoch => {
                Err(AppendError::InvalidProducerEpoch(format!(
                    "producer {} epoch {} is older than the current epoch {}",
                    h.producer_id, h.producer_epoch, e.epoch
                )))
            }
            _ => Ok(()),
        }
    }

    /// Epoch and sequence checks of one client batch against the producer's entry (`staged` holds
    /// entries already updated by earlier batches of the same payload).
    pub fn check(
        &self,
        staged: &HashMap<i64, ProducerEntry>,
        h: &BatchHeader,
    ) -> Result<(), AppendError> {
        let Some(e) = staged
            .get(&h.producer_id)
            .or_else(|| self.producers.get(&h.producer_id))
        else {
            // Unknown producer (new, or its state expired/was deleted): any sequence is accepted.
            return Ok(());
        };
        if h.producer_epoch < e.epoch {
            return Err(AppendError::InvalidProducerEpoch(format!(
                "producer {} epoch {} is older than the current epoch {}",
                h.producer_id, h.producer_epoch, e.epoch
            )));
        }
        if !h.is_transactional() {
            if let Some(first) = e.current_txn_first_offset {
                return Err(AppendError::InvalidTxnState(format!(
                    "expected a transactional write from producer {}: its transaction from \
                     offset {first} is ongoing",
                    h.producer_id
                )));
            }
        }
        if h.producer_epoch != e.epoch {
            if h.base_sequence != 0 {
                return Err(AppendError::OutOfOrderSequence(format!(
                    "producer {} new epoch {} must start at sequence 0, got {}",
                    h.producer_id, h.producer_epoch, h.base_sequence
                )));
            }
            return Ok(());
        }
        let ok = match e.last_seq() {
            Some(last) => in_sequence(last, h.base_sequence),
            None => h.base_sequence == 0,
        };
        if !ok {
            return Err(AppendError::OutOfOrderSequence(format!(
                "producer {} epoch {}: sequence {} does not follow {:?}",
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                e.last_seq()
            )));
        }
        Ok(())
    }

    /// Replays a stored batch header (loading, follower appends), without checks; `marker` is
    /// the transaction marker of a control batch. Returns the transaction a marker completed.
    pub fn replay(
        &mut self,
        h: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> Option<CompletedTxn> {
        if !h.has_producer_id() {
            return None;
        }
        if h.is_control() {
            let m = marker?;
            let (pid, epoch, ts) = (h.producer_id, h.producer_epoch, h.max_timestamp);
            return self
                .apply_marker(pid, epoch, m, h.base_offset, ts, false)
                .ok()
                .flatten();
        }
        let mut e = self
            .producers
            .remove(&h.producer_id)
            .unwrap_or_else(|| ProducerEntry::new(h.producer_epoch));
        e.add_batch(h, h.base_offset, h.last_offset());
        self.insert(h.producer_id, e);
        None
    }

    /// Forgets producers idle for at least `expiration_ms`; never one with an ongoing
    /// transaction (as Kafka).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let per_producer = ENTRY_FIXED + ENTRY_TXN + 5 * BATCH_META;
        let mut b = Vec::with_capacity(32 + self.producers.len() * per_producer);
        b.extend_from_slice(SNAPSHOT_MAGIC);
        b.push(SNAPSHOT_VERSION);
        b.extend_from_slice(&offset.to_be_bytes());
        b.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[&id];
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&e.epoch.to_be_bytes());
            b.extend_from_slice(&e.last_timestamp.to_be_bytes());
            b.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            b.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            b.push(e.batches.len() as u8);
            for m in &e.batches {
                b.extend_from_slice(&m.first_seq.to_be_bytes());
                b.extend_from_slice(&m.last_seq.to_be_bytes());
                b.extend_from_slice(&m.first_offset.to_be_bytes());
                b.extend_from_slice(&m.last_offset.to_be_bytes());
                b.extend_from_slice(&m.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes a snapshot; `None` if it is damaged in any way. Returns the state and its offset.
    pub fn decode(buf: &[u8]) -> Option<(ProducerState, i64)> {
        const HEAD: usize = 4 + 1 + 8 + 4;
        if buf.len() < HEAD + 4 {
            return None;
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body).to_be_bytes() != crc {
            return None;
        }
        let version = body[4];
        if &body[..4] != SNAPSHOT_MAGIC
            || (version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_1)
        {
            return None;
        }
        let mut r = Reader { b: body, p: 5 };
        let offset = r.i64()?;
        let count = r.u32()? as usize;
        if count > (body.len() - HEAD) / ENTRY_FIXED {
            return None;
        }
        let mut producers = HashMap::with_capacity(count);
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let (coordinator_epoch, current_txn_first_offset) = if version >= SNAPSHOT_VERSION {
                (r.i32()?, Some(r.i64()?).filter(|f| *f >= 0))
            } else {
                (-1, None)
            };
            let n = r.u8()? as usize;
            if n > NUM_BATCHES_TO_RETAIN {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    coordinator_epoch,
                    current_txn_first_offset,
                },
            );
        }
        if r.p != body.len() {
            return None;
        }
        let mut state = ProducerState {
            producers,
            ongoing: BTreeMap::new(),
        };
        state.rebuild_ongoing();
        Some((state, offset))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.p..self.p + N)?;
        self.p += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|a| a[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        if let Some(name) = e?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(snapshot_offsets(&names))
}

/// Offsets of the snapshot files among a directory's file `names`, ascending.
pub(crate) fn snapshot_offsets(names: &[String]) -> Vec<i64> {
    let mut out: Vec<i64> = names
        .iter()
        .filter_map(|name| name.strip_suffix(SNAPSHOT_SUFFIX))
        .filter(|stem| stem.len() == 20)
        .filter_map(|stem| stem.parse::<i64>().ok())
        .collect();
    out.sort_unstable();
    out
}

/// Writes a snapshot atomically (tmp, fsync, rename) and keeps only the 2 newest. Returns false
/// without writing when the snapshot file of `offset` already holds exactly these bytes (an idle
/// partition closed again: like Kafka, no new snapshot without a new offset).
pub(crate) fn write_snapshot(dir: &Path, offset: i64, state: &ProducerState) -> io::Result<bool> {
    let path = snapshot_path(dir, offset);
    let bytes = state.encode(offset);
    match fs::read(&path) {
        Ok(on_disk) if on_disk == bytes => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_atomically(&path, &bytes)?;
    let snaps = list_snapshots(dir)?;
    if snaps.len() > 2 {
        for o in &snaps[..snaps.len() - 2] {
            let _ = fs::remove_file(snapshot_path(dir, *o));
        }
    }
    Ok(true)
}

/// Removes snapshots at offsets above `offset` (after truncation/recovery).
pub(crate) fn delete_snapshots_above(dir: &Path, offset: i64) -> io::Result<()> {
    delete_listed_snapshots_above(dir, list_snapshots(dir)?, offset).map(|_| ())
}

/// [`delete_snapshots_above`] for the snapshots `listed` (ascending); returns those kept.
pub(crate) fn delete_listed_snapshots_above(
    dir: &Path,
    mut listed: Vec<i64>,
    offset: i64,
) -> io::Result<Vec<i64>> {
    for o in listed.iter().filter(|o| **o > offset) {
        fs::remove_file(snapshot_path(dir, *o))?;
    }
    listed.retain(|o| *o <= offset);
    Ok(listed)
}

/// The newest readable snapshot at or below `max_offset` among the snapshots `listed`
/// (ascending): (state, offset). Damaged ones are removed.
pub(crate) fn load_latest(
    dir: &Path,
    listed: Vec<i64>,
    max_offset: i64,
) -> io::Result<Option<(ProducerState, i64)>> {
    for o in listed.into_iter().rev() {
        if o > max_offset {
            continue;
        }
        let path = snapshot_path(dir, o);
        let buf = fs::read(&path)?;
        match ProducerState::decode(&buf) {
            Some((s, off)) if off == o => return Ok(Some((s, o))),
            _ => {
                tracing::warn!(path = %path.display(), "removing damaged producer state snapshot");
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::TestBatch;

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            let b = TestBatch::new(2, 100 + i)
                .idempotent(7, 1, (i * 2) as i32)
                .build();
            let mut h = BatchHeader::parse(&b).unwrap();
            h.base_offset = i * 2;
            s.replay(&h, None);
        }
        assert_eq!(s.producers[&7].batches.len(), NUM_BATCHES_TO_RETAIN);
        let enc = s.encode(14);
        let (d, off) = ProducerState::decode(&enc).unwrap();
        assert_eq!(off, 14);
        assert_eq!(d, s);
        let mut bad = enc.clone();
        bad[10] ^= 1;
        assert!(ProducerState::decode(&bad).is_none());
        assert!(ProducerState::decode(&enc[..enc.len() - 5]).is_none());
        let dir = tempfile::tempdir().unwrap();
        for o in [1, 5, 9] {
            write_snapshot(dir.path(), o, &s).unwrap();
        }
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![5, 9]);
        assert_eq!(
            load_latest(dir.path(), list_snapshots(dir.path()).unwrap(), 8)
                .unwrap()
                .unwrap()
                .1,
            5
        );
        fs::write(snapshot_path(dir.path(), 9), b"junk").unwrap();
        assert_eq!(
            load_latest(dir.path(), list_snapshots(dir.path()).unwrap(), 100)
                .unwrap()
                .unwrap()
                .1,
            5
        );
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![5]);
        let names: Vec<String> = ["00000000000000000007.snapshot", "7.snapshot", "x.log"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(snapshot_offsets(&names), vec![7]);
        let kept = delete_listed_snapshots_above(dir.path(), vec![5], 4).unwrap();
        assert!(kept.is_empty());
        assert!(list_snapshots(dir.path()).unwrap().is_empty());
    }

    fn header(b: &[u8], offset: i64) -> BatchHeader {
        let mut h = BatchHeader::parse(b).unwrap();
        h.base_offset = offset;
        h
    }

    fn marker(commit: bool) -> EndTxnMarker {
        EndTxnMarker {
            commit,
            coordinator_epoch: 0,
        }
    }

    #[test]
    fn ongoing_transactions_of_several_producers() {
        let mut s = ProducerState::default();
        let t = |pid, seq| TestBatch::new(2, 0).transactional(pid, 0, seq).build();
        s.replay(&header(&t(1, 0), 10), None);
        s.replay(&header(&t(2, 0), 12), None);
        s.replay(&header(&t(1, 2), 14), None);
        s.replay(&header(&t(3, 0), 16), None);
        // An idempotent producer never has a transaction.
        s.replay(
            &header(&TestBatch::new(1, 0).idempotent(4, 0, 0).build(), 18),
            None,
        );
        assert_eq!(s.first_ongoing_offset(), Some(10));
        assert_eq!(s.ongoing.len(), 3);
        assert_eq!(s.producers[&1].current_txn_first_offset, Some(10));
        // Producer 2 aborts: the LSO of its entry is producer 1's first offset.
        let c = s
            .apply_marker(2, 0, marker(false), 19, 0, true)
            .unwrap()
            .unwrap();
        assert_eq!(
            c,
            CompletedTxn {
                producer_id: 2,
                first_offset: 12,
                last_offset: 19,
                aborted: true
            }
        );
        assert_eq!(s.aborted_entry(&c).unwrap().last_stable_offset, 10);
        let c = s.apply_marker(1, 0, marker(true), 20, 0, true).unwrap();
        assert!(
            s.aborted_entry(&c.unwrap()).is_none(),
            "commits are not indexed"
        );
        assert_eq!(s.first_ongoing_offset(), Some(16));
        let c = s
            .apply_marker(3, 0, marker(false), 21, 0, true)
            .unwrap()
            .unwrap();
        assert_eq!(s.aborted_entry(&c).unwrap().last_stable_offset, 22);
        assert_eq!(s.first_ongoing_offset(), None);
        // A marker without a transaction completes nothing; an older epoch is refused.
        assert_eq!(
            s.apply_marker(3, 0, marker(true), 22, 0, true).unwrap(),
            None
        );
        assert!(matches!(
            s.apply_marker(3, -1, marker(true), 23, 0, true),
            Err(AppendError::InvalidProducerEpoch(_))
        ));
        // Producers with an ongoing transaction never expire.
        s.replay(&header(&t(5, 0), 30), None);
        assert_eq!(s.expire(i64::MAX, 1), 4);
        assert_eq!(s.producers.keys().copied().collect::<Vec<_>>(), vec![5]);
    }

    #[test]
    fn snapshot_keeps_transactions_and_loads_version_1() {
        let mut s = ProducerState::default();
        let b = TestBatch::new(2, 5).transactional(3, 2, 0).build();
        s.replay(&header(&b, 40), None);
        s.apply_marker(8, 1, marker(true), 42, 0, false).unwrap();
        s.producers.get_mut(&8).unwrap().coordinator_epoch = 6;
        let (d, off) = ProducerState::decode(&s.encode(43)).unwrap();
        assert_eq!(off, 43);
        assert_eq!(d, s);
        assert_eq!(d.first_ongoing_offset(), Some(40));
        // Version 1: id, epoch, last timestamp, batches; no transaction fields.
        let mut v1 = SNAPSHOT_MAGIC.to_vec();
        v1.push(1);
        v1.extend_from_slice(&43i64.to_be_bytes());
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&3i64.to_be_bytes());
        v1.extend_from_slice(&2i16.to_be_bytes());
        v1.extend_from_slice(&6i64.to_be_bytes());
        v1.push(1);
        for v in [0i32, 1] {
            v1.extend_from_slice(&v.to_be_bytes());
        }
        for v in [40i64, 41, 6] {
            v1.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_be_bytes());
        let (old, off) = ProducerState::decode(&v1).unwrap();
        assert_eq!(off, 43);
        let e = &old.producers[&3];
        assert_eq!((e.epoch, e.last_timestamp, e.coordinator_epoch), (2, 6, -1));
        assert_eq!(e.current_txn_first_offset, None);
        assert_eq!(e.batches[0].last_offset, 41);
        assert!(old.ongoing.is_empty());
    }

    #[test]
    fn expiry() {
        let mut s = ProducerState::default();
        let b = TestBatch::new(1, 1000).idempotent(1, 0, 0).build();
        s.replay(&BatchHeader::parse(&b).unwrap(), None);
        assert_eq!(s.expire(1500, 1000), 0);
        assert_eq!(s.expire(2000, 1000), 1);
        assert!(s.producers.is_empty());
    }
}
