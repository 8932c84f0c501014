//! Log compaction (Kafka's LogCleaner / Cleaner / SkimpyOffsetMap / LogCleanerManager semantics).
//!
//! One pass over a partition whose `cleanup.policy` includes `compact`:
//!
//! 1. The cleanable range is made of whole non-active segments below the first uncleanable offset:
//!    the active segment, the high watermark (`set_high_watermark`, else the log end), the first
//!    unstable offset (an open transaction is never cleaned) and, with
//!    `min_compaction_lag_ms`, the first dirty segment whose largest timestamp is too young.
//!    (Kafka can stop the map inside a segment at the last stable offset; Odradek stops at the
//!    segment below the high watermark: conservative, never less correct.)
//! 2. The dirty part (from the first dirty offset, kept in `cleaner-offset-checkpoint`) is read into
//!    a bounded key map (16-byte key hash -> latest offset). If it does not fit, only the prefix
//!    that fits is mapped, at batch granularity, and the pass ends there (`end_offset`).
//! 3. Every segment from the log start with records below `end_offset` is rewritten, in groups
//!    that stay under `segment_bytes`, the index size and the 32-bit relative-offset range.
//!    A record survives if it has a key, its offset is >= the map's offset for that key, and it is
//!    not a tombstone whose batch delete horizon has passed. Keyless records are dropped.
//!    Batches keep their baseOffset and lastOffset (so offsets and the producer's last sequence are
//!    preserved: Kafka's `overrideLastOffset`); a batch whose records all survive (and needs no
//!    delete horizon) is copied byte for byte; otherwise it is rebuilt with its codec, attributes,
//!    producer fields, base sequence and leader epoch. A batch that loses every record is dropped,
//!    except the last batch of a producer still in the producer state, kept as an empty batch
//!    (Kafka's `RETAIN_EMPTY`).
//!    Transactions (Kafka's `CleanedTransactionMetadata`): the aborted transactions are read from
//!    the transaction indexes of every segment; the batches of an aborted transaction are removed
//!    whatever their keys and take no part in the key map (an aborted value never replaces nor
//!    drops a committed one). A COMMIT/ABORT marker stays while this pass read data of its
//!    transaction (a committed batch kept or not, an aborted one being removed); when a pass
//!    finds none, the marker gets a delete horizon as tombstones do (below) and a pass at or after
//!    the horizon removes it. An active producer's batches are kept empty as above, and when its
//!    state holds no data batch, its markers of the current epoch (they carry the epoch that
//!    fences). A pass that removed the last data of a transaction whose marker it kept makes the
//!    next pass due at once. The cleaned segment's transaction index holds the entries of the
//!    aborted transactions whose markers stay; entries of markers outside the cleaned range stay
//!    in their segments.
//! 4. Tombstones: Kafka 3.x's batch-level delete horizon (KIP-534). When a batch holding retained
//!    tombstones is cleaned the first time, it is rewritten with attribute bit 6 set and
//!    baseTimestamp = clean time + `delete_retention_ms` (record timestamp deltas are relative to
//!    it). Passes at or after that time drop its tombstones.
//! 5. Swap: the group is written to `{base}.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`
//!    and, when it has entries, `.txnindex.cleaned`)
//!    and fsynced without any partition lock. Under the append lock, the segments are checked to be
//!    unchanged (retention or truncation abort the pass), `{base}.swapend` records the exclusive
//!    end offset of the replaced range, the files are renamed to `.swap` (the log file last: its
//!    rename is the commit point), the old segments are deleted and the `.swap` files renamed to
//!    their final names. `complete_swaps` (run when a partition opens) deletes `.cleaned` files and
//!    finishes a committed swap: it removes the old segments of the range (with their transaction
//!    indexes), installs the `.swap` log and has its indexes rebuilt by a full scan (the
//!    transaction index from the markers replayed).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::batch::{compute_crc, parse_end_txn_marker, BatchHeader, EndTxnMarker, HEADER_SIZE};
use super::error::LogError;
use super::index::{OFFSET_ENTRY, TIME_ENTRY};
use super::partition::PartitionLog;
use super::records::{self, Record};
use super::segment::{file_name, pread_full, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::txn_index::{self, AbortedTxn, ENTRY_SIZE as TXN_ENTRY, TXN_INDEX_SUFFIX};
use super::TopicPartition;
use crate::util::durable::{self, sync_dir};

pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";
/// Sidecar of a swap: the exclusive end offset of the range of old segments it replaces.
pub(crate) const SWAP_END_SUFFIX: &str = ".swapend";

/// Settings of the cleaner (Kafka's `log.cleaner.*` broker settings).
#[derive(Clone, Debug)]
pub struct CleanerConfig {
    /// Memory for the key map of one pass (`log.cleaner.dedupe.buffer.size` / threads). Each entry
    /// is accounted as 24 bytes (16-byte key hash + 8-byte offset), like Kafka's SkimpyOffsetMap.
    pub dedupe_buffer_bytes: usize,
    /// Fill ratio of the map (`log.cleaner.io.buffer.load.factor`).
    pub load_factor: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_bytes: 16 * 1024 * 1024,
            load_factor: 0.9,
        }
    }
}

impl CleanerConfig {
    /// Number of keys the map may hold.
    pub fn map_capacity(&self) -> usize {
        (((self.dedupe_buffer_bytes / 24) as f64 * self.load_factor) as usize).max(1)
    }
}

/// What one cleaner pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanerStats {
    /// The partition cleaned; `None` when no partition needed cleaning.
    pub partition: Option<TopicPartition>,
    /// Dirty ratio of the partition when it was chosen.
    pub dirty_ratio: f64,
    pub first_dirty_offset: i64,
    /// Exclusive end of the mapped dirty range: the next pass starts here.
    pub end_offset: i64,
    pub map_entries: usize,
    /// The map filled before the end of the cleanable range (only a prefix was cleaned).
    pub map_full: bool,
    pub segments_cleaned: usize,
    pub segments_written: usize,
    pub batches_read: u64,
    pub batches_copied: u64,
    pub batches_rewritten: u64,
    pub empty_batches_kept: u64,
    pub batches_dropped: u64,
    pub records_read: u64,
    pub records_retained: u64,
    pub keyless_dropped: u64,
    pub tombstones_dropped: u64,
    /// Records of aborted transactions removed.
    pub aborted_records_dropped: u64,
    /// Transaction markers whose delete horizon started (no data of their transaction is left).
    pub markers_horizon_set: u64,
    /// Transaction markers removed (their delete horizon had passed).
    pub markers_removed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The pass was abandoned because the log changed under it (retention, truncation, close).
    pub aborted: bool,
}

/// Bounded map from a 16-byte hash of a key to the latest offset seen for it.
pub(crate) struct OffsetMap {
    map: HashMap<[u8; 16], i64>,
    capacity: usize,
}

fn key_hash(key: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (i as u8).hash(&mut h);
        key.hash(&mut h);
        chunk.copy_from_slice(&h.finish().to_be_bytes());
    }
    out
}

impl OffsetMap {
    pub fn new(capacity: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::with_capacity(capacity.min(1 << 16)),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `more` further keys could exceed the capacity.
    pub fn would_overflow(&self, more: usize) -> bool {
        self.map.len().saturating_add(more) > self.capacity
    }

    pub fn put(&mut self, key: &[u8], offset: i64) {
        let e = self.map.entry(key_hash(key)).or_insert(offset);
        *e = (*e).max(offset);
    }

    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&key_hash(key)).copied()
    }
}

/// The cleanable part of one partition log at a given time.
#[derive(Clone, Debug)]
pub(crate) struct Cleanable {
    pub first_dirty: i64,
    /// Number of leading segments that may be cleaned (all wholly below the uncleanable offset).
    pub segments: usize,
    pub dirty_bytes: u64,
    pub ratio: f64,
    /// `max_compaction_lag_ms` exceeded by the oldest dirty segment.
    pub must_clean: bool,
    /// A delete horizon of retained tombstones has passed.
    pub tombstones_due: bool,
}

/// Reads the batches of `seg` in windows of about 1 MiB (one read per window, bounded memory),
/// calling `f(header, bytes)` until it returns false.
fn for_each_batch(
    seg: &Segment,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    const WINDOW: usize = 1 << 20;
    let mut pos = 0u64;
    let mut list: Vec<(u64, BatchHeader, usize)> = Vec::new();
    loop {
        list.clear();
        let mut len = 0usize;
        seg.walk_headers(pos, |p, h, sz| {
            if !list.is_empty() && len + sz > WINDOW {
                return false;
            }
            list.push((p, *h, sz));
            len += sz;
            true
        })?;
        let Some(&(last_pos, _, last_size)) = list.last() else {
            if pos < seg.size() {
                // Never rewrite a segment past damage: the rest would be lost.
                return Err(LogError::Corrupt(format!(
                    "segment {}: unreadable batch at position {pos}",
                    seg.base_offset
                )));
            }
            return Ok(());
        };
        let buf = seg.read_bytes(pos, len)?;
        if buf.len() < len {
            return Err(LogError::Corrupt(format!(
                "segment {} shorter than its batches",
                seg.base_offset
            )));
        }
        for (p, h, sz) in &list {
            let at = (p - pos) as usize;
            let bytes = &buf[at..at + sz];
            if compute_crc(bytes) != h.crc {
                return Err(LogError::Corrupt(format!(
                    "segment {}: CRC mismatch in the batch at offset {}",
                    seg.base_offset, h.base_offset
                )));
            }
            if !f(h, bytes)? {
                return Ok(());
            }
        }
        pos = last_pos + last_size as u64;
    }
}

fn corrupt(seg: &Segment, h: &BatchHeader, e: String) -> LogError {
    LogError::Corrupt(format!(
        "segment {} batch at offset {}: {e}",
        seg.base_offset, h.base_offset
    ))
}

/// What the cleaner knows of a producer still in the producer state: the batch it must keep
/// (Kafka's `lastRecordsOfActiveProducers`), even when every record of that batch is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastOfProducer {
    /// The last offset of its last data batch (it holds the producer's last sequence).
    Data(i64),
    /// No data batch is retained in the producer state (e.g. after an epoch bump): its markers
    /// of this epoch are kept, as they carry the epoch that fences older producers.
    Marker(i16),
}

impl LastOfProducer {
    fn matches(&self, h: &BatchHeader) -> bool {
        match *self {
            LastOfProducer::Data(o) => h.last_offset() == o,
            LastOfProducer::Marker(epoch) => h.is_control() && h.producer_epoch == epoch,
        }
    }
}

/// A transaction met by a pass: whether any of its data batches were read (its marker stays
/// then) and whether any of them stayed in the cleaned log.
#[derive(Clone, Copy, Debug, Default)]
struct SeenTxn {
    read: bool,
    kept: bool,
}

/// What a control batch may become (Kafka's `CleanedTransactionMetadata.onControlBatchRead`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ControlFate {
    /// Data of its transaction remains (or it is no transaction marker): kept as it is.
    Keep,
    /// No data of its transaction remains: removable once its delete horizon has passed.
    Removable,
}

/// Transaction state carried through one cleaner pass over the log in offset order (Kafka's
/// `CleanedTransactionMetadata`): the aborted transactions known from the transaction indexes,
/// which of them have started at the current offset, the producers with a transaction of
/// unknown outcome (committed, as far as the indexes tell) in progress, and the index entries of
/// aborted transactions whose markers stay.
#[derive(Default)]
struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset (descending: popped from the back).
    pending: Vec<AbortedTxn>,
    /// Aborted transactions in progress at the current offset, by producer.
    aborted: HashMap<i64, (AbortedTxn, SeenTxn)>,
    /// Producers with transactional data read whose transaction is not known to be aborted.
    committed: HashMap<i64, SeenTxn>,
    /// Entries of aborted transactions whose marker was kept since `take_index` (the cleaned
    /// segment's transaction index).
    index: Vec<AbortedTxn>,
    /// A marker stayed only because this pass removed the last data of its transaction: the
    /// next pass can start its delete horizon.
    followup: bool,
}

impl TxnTracker {
    fn new(mut aborted: Vec<AbortedTxn>) -> TxnTracker {
        aborted.sort_by_key(|t| std::cmp::Reverse((t.first_offset, *t)));
        aborted.dedup();
        TxnTracker {
            pending: aborted,
            ..Default::default()
        }
    }

    /// Starts the aborted transactions whose first offset is at or below `offset`.
    fn reach(&mut self, offset: i64) {
        while let Some(t) = self.pending.last().copied() {
            if t.first_offset > offset {
                break;
            }
            self.pending.pop();
            self.aborted
                .entry(t.producer_id)
                .or_insert((t, SeenTxn::default()));
        }
    }

    /// A data batch read in offset order; true if it belongs to an aborted transaction (Kafka's
    /// `onBatchRead`).
    fn on_data(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        if let Some((_, seen)) = self.aborted.get_mut(&h.producer_id) {
            seen.read = true;
            return true;
        }
        self.committed.entry(h.producer_id).or_default().read = true;
        false
    }

    /// The data batch last given to `on_data` stays in the cleaned log (maybe emptied).
    fn kept(&mut self, h: &BatchHeader) {
        if !h.is_transactional() {
            return;
        }
        if let Some((_, seen)) = self.aborted.get_mut(&h.producer_id) {
            seen.kept = true;
        } else if let Some(seen) = self.committed.get_mut(&h.producer_id) {
            seen.kept = true;
        }
    }

    /// A control batch read in offset order (`marker`: its COMMIT/ABORT marker, if it is one).
    fn on_control(&mut self, h: &BatchHeader, marker: Option<EndTxnMarker>) -> ControlFate {
        self.reach(h.last_offset());
        if h.records_count <= 0 {
            // An empty control batch: a marker already cleaned, kept only for its producer.
            return ControlFate::Removable;
        }
        let Some(m) = marker.filter(|_| h.has_producer_id()) else {
            return ControlFate::Keep;
        };
        // Any marker ends the producer's transaction.
        let unknown = self.committed.remove(&h.producer_id);
        let aborted = self.aborted.remove(&h.producer_id);
        let seen = match aborted {
            Some((t, seen)) if !m.commit && seen.read => {
                self.index.push(t);
                Some(seen)
            }
            // A COMMIT, or an ABORT after transactional data that no index entry called aborted:
            // the marker stays while data of its transaction was read (an index that lost an
            // entry must not make aborted data visible).
            _ => unknown,
        };
        match seen {
            Some(s) => {
                self.followup |= !s.kept;
                ControlFate::Keep
            }
            None => ControlFate::Removable,
        }
    }

    /// The entries for the transaction index of the segment written since the last call.
    fn take_index(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.index)
    }
}

/// What the filter decided for one batch.
enum Outcome {
    Copy,
    Rewrite(Vec<u8>),
    Drop,
}

/// Per-pass inputs of the record filter.
struct Filter<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    end_offset: i64,
    /// The batches active producers need kept (Kafka's `lastRecordsOfActiveProducers`).
    producer_last: &'a HashMap<i64, LastOfProducer>,
}

impl Filter<'_> {
    /// Kafka's `checkBatchRetention` + `shouldRetainRecord` + `MemoryRecords.filterTo` for one
    /// batch, read in offset order (`txns` follows the transactions). Also returns the delete
    /// horizon of retained tombstones or transaction markers, if any.
    fn batch(
        &self,
        txns: &mut TxnTracker,
        h: &BatchHeader,
        bytes: &[u8],
        stats: &mut CleanerStats,
    ) -> Result<(Outcome, Option<i64>), String> {
        let last_of_producer = h.has_producer_id()
            && self
                .producer_last
                .get(&h.producer_id)
                .is_some_and(|l| l.matches(h));
        if h.is_control() {
            return self.control(txns, h, bytes, last_of_producer, stats);
        }
        if txns.on_data(h) {
            // Aborted: every record goes, whatever its key (Kafka's `discardBatchRecords`).
            stats.records_read += h.records_count.max(0) as u64;
            stats.aborted_records_dropped += h.records_count.max(0) as u64;
            if !last_of_producer {
                return Ok((Outcome::Drop, None));
            }
            txns.kept(h);
            stats.empty_batches_kept += 1;
            return Ok(if h.records_count == 0 {
                (Outcome::Copy, None)
            } else {
                (Outcome::Rewrite(records::empty_batch(h)), None)
            });
        }
        let out = self.records(h, bytes, last_of_producer, stats)?;
        if !matches!(out.0, Outcome::Drop) {
            txns.kept(h);
        }
        Ok(out)
    }

    /// A control batch. A transaction marker stays while data of its transaction is left in the
    /// log; the first pass that finds none left sets its delete horizon (attribute bit 6,
    /// baseTimestamp = now + `delete_retention_ms`, as for tombstones, KIP-534) and a pass at or
    /// after the horizon removes it (an active producer's marker is kept empty, header only).
    fn control(
        &self,
        txns: &mut TxnTracker,
        h: &BatchHeader,
        bytes: &[u8],
        last_of_producer: bool,
        stats: &mut CleanerStats,
    ) -> Result<(Outcome, Option<i64>), String> {
        let marker = if h.has_producer_id() {
            parse_end_txn_marker(bytes)
        } else {
            None
        };
        if txns.on_control(h, marker) == ControlFate::Keep {
            return Ok((Outcome::Copy, None));
        }
        let had_horizon = records::has_delete_horizon(h);
        if had_horizon && self.now_ms < h.base_timestamp {
            return Ok((Outcome::Copy, Some(h.base_timestamp)));
        }
        if had_horizon || h.records_count <= 0 {
            if h.records_count > 0 {
                stats.markers_removed += 1;
            }
            if !last_of_producer {
                return Ok((Outcome::Drop, None));
            }
            stats.empty_batches_kept += 1;
            return Ok(if h.records_count <= 0 {
                (Outcome::Copy, None)
            } else {
                (Outcome::Rewrite(records::empty_batch(h)), None)
            });
        }
        let (_, recs) = records::decode_records(bytes)?;
        let horizon = self.now_ms.saturating_add(self.delete_retention_ms);
        let mut template = *h;
        template.attributes |= records::ATTR_DELETE_HORIZON;
        stats.markers_horizon_set += 1;
        let out = records::encode_batch(&template, horizon, h.max_timestamp, &recs)?;
        Ok((Outcome::Rewrite(out), Some(horizon)))
    }

    /// The records of a data batch that is not aborted.
    fn records(
        &self,
        h: &BatchHeader,
        bytes: &[u8],
        last_of_producer: bool,
        stats: &mut CleanerStats,
    ) -> Result<(Outcome, Option<i64>), String> {
        if h.base_offset >= self.end_offset {
            return Ok((Outcome::Copy, None));
        }
        let (_, recs) = records::decode_records(bytes)?;
        stats.records_read += recs.len() as u64;
        let had_horizon = records::has_delete_horizon(h);
        let retain_deletes = !had_horizon || self.now_ms < h.base_timestamp;
        let total = recs.len();
        let mut retained: Vec<Record> = Vec::with_capacity(total);
        for r in recs {
            let Some(key) = r.key.as_deref() else {
                stats.keyless_dropped += 1;
                continue;
            };
            let latest = self.map.get(key).is_none_or(|o| r.offset >= o);
            if !latest {
                continue;
            }
            if r.value.is_none() && !retain_deletes {
                stats.tombstones_dropped += 1;
                continue;
            }
            retained.push(r);
        }
        stats.records_retained += retained.len() as u64;
        let tombstones = retained.iter().any(|r| r.value.is_none());
        let need_horizon = tombstones && !had_horizon;
        let horizon = if need_horizon {
            Some(self.now_ms.saturating_add(self.delete_retention_ms))
        } else if had_horizon {
            Some(h.base_timestamp)
        } else {
            None
        };
        let tomb_horizon = if tombstones { horizon } else { None };
        if retained.len() == total && !need_horizon {
            return Ok((Outcome::Copy, tomb_horizon));
        }
        if retained.is_empty() {
            return Ok(if last_of_producer {
                stats.empty_batches_kept += 1;
                (Outcome::Rewrite(records::empty_batch(h)), None)
            } else {
                (Outcome::Drop, None)
            });
        }
        let mut template = *h;
        if h.is_log_append_time() {
            for r in &mut retained {
                r.timestamp = h.max_timestamp;
            }
        }
        let max_ts = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            retained.iter().map(|r| r.timestamp).max().unwrap_or(-1)
        };
        let base_ts = match horizon {
            Some(t) => {
                template.attributes |= records::ATTR_DELETE_HORIZON;
                t
            }
            None => retained[0].timestamp,
        };
        let out = records::encode_batch(&template, base_ts, max_ts, &retained)?;
        Ok((Outcome::Rewrite(out), tomb_horizon))
    }
}

fn suffixed(dir: &Path, base: i64, suffix: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}{extra}", file_name(base, suffix)))
}

/// Writes a cleaned segment's log and index files (`.cleaned`), building Kafka-format indexes as
/// recovery does.
struct CleanedWriter {
    base: i64,
    log: BufWriter<File>,
    pos: u64,
    index_interval: usize,
    max_offset_entries: usize,
    max_time_entries: usize,
    since: usize,
    idx: Vec<(u32, u32)>,
    tidx: Vec<(i64, u32)>,
    max_ts: i64,
    off_max: i64,
}

impl CleanedWriter {
    fn create(
        dir: &Path,
        base: i64,
        index_interval: usize,
        index_bytes: usize,
    ) -> io::Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(suffixed(dir, base, LOG_SUFFIX, CLEANED_SUFFIX))?;
        Ok(CleanedWriter {
            base,
            log: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            index_interval,
            max_offset_entries: (index_bytes / OFFSET_ENTRY).max(1),
            max_time_entries: (index_bytes / TIME_ENTRY).max(2),
            since: 0,
            idx: Vec::new(),
            tidx: Vec::new(),
            max_ts: -1,
            off_max: base,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let h = BatchHeader::parse(bytes).ok_or_else(|| io::Error::other("short batch"))?;
        if h.max_timestamp > self.max_ts {
            self.max_ts = h.max_timestamp;
            self.off_max = h.last_offset();
        }
        if self.since > self.index_interval {
            if self.idx.len() < self.max_offset_entries {
                self.idx
                    .push(((h.last_offset() - self.base) as u32, self.pos as u32));
            }
            if self.tidx.len() + 1 < self.max_time_entries
                && self.tidx.last().is_none_or(|&(t, _)| self.max_ts > t)
            {
                self.tidx
                    .push((self.max_ts, (self.off_max - self.base) as u32));
            }
            self.since = 0;
        }
        self.since += bytes.len();
        self.log.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs the `.cleaned` files (a transaction index only when `aborted` has
    /// entries); returns the log size.
    fn finish(mut self, dir: &Path, aborted: &[AbortedTxn]) -> io::Result<u64> {
        if self.max_ts >= 0 && self.tidx.last().is_none_or(|&(t, _)| self.max_ts > t) {
            self.tidx
                .push((self.max_ts, (self.off_max - self.base) as u32));
        }
        self.log.flush()?;
        self.log.get_ref().sync_all()?;
        let mut ib = Vec::with_capacity(self.idx.len() * OFFSET_ENTRY);
        for (r, p) in &self.idx {
            ib.extend_from_slice(&r.to_be_bytes());
            ib.extend_from_slice(&p.to_be_bytes());
        }
        let mut tb = Vec::with_capacity(self.tidx.len() * TIME_ENTRY);
        for (t, r) in &self.tidx {
            tb.extend_from_slice(&t.to_be_bytes());
            tb.extend_from_slice(&r.to_be_bytes());
        }
        let mut xb = Vec::with_capacity(aborted.len() * TXN_ENTRY);
        for e in aborted {
            xb.extend_from_slice(&e.encode());
        }
        for (suffix, bytes) in [
            (INDEX_SUFFIX, ib),
            (TIME_INDEX_SUFFIX, tb),
            (TXN_INDEX_SUFFIX, xb),
        ] {
            if suffix == TXN_INDEX_SUFFIX && bytes.is_empty() {
                continue;
            }
            let mut f = File::create(suffixed(dir, self.base, suffix, CLEANED_SUFFIX))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        Ok(self.pos)
    }
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_cleaned(dir: &Path, base: i64) -> io::Result<()> {
    for s in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        remove_if_exists(&suffixed(dir, base, s, CLEANED_SUFFIX))?;
    }
    Ok(())
}

/// Exclusive end offset of a swap log file when its sidecar is missing: after its last batch.
fn swap_next_offset(path: &Path, base: i64) -> io::Result<i64> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = 0u64;
    let mut next = base + 1;
    let mut buf = [0u8; HEADER_SIZE];
    while pos + HEADER_SIZE as u64 <= len {
        if pread_full(&f, &mut buf, pos)? < HEADER_SIZE {
            break;
        }
        let Some(h) = BatchHeader::parse(&buf) else {
            break;
        };
        let Some(sz) = h.size().filter(|&s| s >= HEADER_SIZE) else {
            break;
        };
        next = next.max(h.next_offset());
        pos += sz as u64;
    }
    Ok(next)
}

/// Finishes or rolls back interrupted cleaner swaps in a partition directory (Kafka's LogLoader:
/// `.cleaned` files are deleted, `.swap` files completed). Returns the base offsets of installed
/// swap segments: their indexes are gone and they must be fully recovered, and whether any file
/// was changed (then `names`, the directory's file names, are out of date).
pub(crate) fn complete_swaps(dir: &Path, names: &[String]) -> io::Result<(Vec<i64>, bool)> {
    let mut changed = false;
    let mut log_bases = Vec::new();
    let mut swap_logs = Vec::new();
    for n in names {
        if n.ends_with(CLEANED_SUFFIX) {
            remove_if_exists(&dir.join(n))?;
            changed = true;
        } else if let Some(stem) = n.strip_suffix(&format!("{LOG_SUFFIX}{SWAP_SUFFIX}")) {
            if let Ok(b) = stem.parse::<i64>() {
                swap_logs.push(b);
            }
        } else if let Some(stem) = n.strip_suffix(LOG_SUFFIX) {
            if let Ok(b) = stem.parse::<i64>() {
                log_bases.push(b);
            }
        }
    }
    swap_logs.sort_unstable();
    for &base in &swap_logs {
        let swap = suffixed(dir, base, LOG_SUFFIX, SWAP_SUFFIX);
        let sidecar = dir.join(file_name(base, SWAP_END_SUFFIX));
        let end = match fs::read_to_string(&sidecar)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        {
            Some(e) => e,
            None => swap_next_offset(&swap, base)?,
        };
        tracing::warn!(dir = %dir.display(), base, end, "completing interrupted cleaner swap");
        for &b in log_bases.iter().filter(|&&b| b >= base && b < end) {
            for s in [
                LOG_SUFFIX,
                INDEX_SUFFIX,
                TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
            ] {
                remove_if_exists(&dir.join(file_name(b, s)))?;
            }
        }
        // The indexes are rebuilt by the recovery of the installed segment (its transaction
        // index from the markers replayed).
        for s in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
            remove_if_exists(&suffixed(dir, base, s, SWAP_SUFFIX))?;
            remove_if_exists(&dir.join(file_name(base, s)))?;
        }
        durable::rename(&swap, &dir.join(file_name(base, LOG_SUFFIX)))?;
        remove_if_exists(&sidecar)?;
        changed = true;
    }
    // Index swaps and sidecars without a committed log swap belong to a rolled-back pass.
    for n in names {
        if (n.ends_with(SWAP_SUFFIX) && !n.ends_with(&format!("{LOG_SUFFIX}{SWAP_SUFFIX}")))
            || n.ends_with(SWAP_END_SUFFIX)
        {
            remove_if_exists(&dir.join(n))?;
            changed = true;
        }
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok((swap_logs, changed))
}

/// Groups consecutive segments so that each group's total size, index size and offset span fit in
/// one segment (Kafka's `groupSegmentsBySize`). `ends[i]` is the exclusive end offset of segs[i].
fn group_segments(
    segs: &[Arc<Segment>],
    ends: &[i64],
    max_bytes: u64,
    max_index_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    let max_bytes = max_bytes.min(i32::MAX as u64);
    let index_bytes = |s: &Segment| index_len(s);
    let mut out = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let start = i;
        let mut size = segs[i].size();
        let mut idx = index_bytes(&segs[i]);
        i += 1;
        while i < segs.len()
            && size + segs[i].size() <= max_bytes
            && idx + index_bytes(&segs[i]) <= max_index_bytes
            && ends[i] - 1 - segs[start].base_offset <= i64::from(i32::MAX)
        {
            size += segs[i].size();
            idx += index_bytes(&segs[i]);
            i += 1;
        }
        out.push(start..i);
    }
    out
}

fn index_len(s: &Segment) -> usize {
    let m = s.meta.lock();
    fs::metadata(m.index.path())
        .map(|md| md.len() as usize)
        .unwrap_or(0)
}

impl PartitionLog {
    /// The cleanable part of this log now; `None` if its policy does not compact or nothing below
    /// the active segment can be cleaned.
    pub(crate) fn cleanable(&self, now_ms: i64) -> Option<Cleanable> {
        let cfg = self.config.read().clone();
        if !cfg.cleanup_policy.compact() {
            return None;
        }
        let segs = self.segments.read().clone();
        let n = segs.len();
        if n < 2 {
            return None;
        }
        let leo = self.log_end_offset();
        let lso = self.log_start_offset();
        let hw = match self.high_watermark.load(Ordering::Acquire) {
            h if h >= 0 => h.min(leo),
            _ => leo,
        };
        // Kafka's first uncleanable offset is also bounded by the first unstable offset.
        let hw = self.first_unstable_offset().map_or(hw, |f| f.min(hw));
        let mut first_dirty = self.first_dirty_offset.load(Ordering::Acquire);
        if first_dirty < lso || first_dirty > leo {
            first_dirty = lso;
        }
        let lag_horizon = now_ms.saturating_sub(cfg.min_compaction_lag_ms.max(0));
        let mut upper = n - 1;
        for i in 0..n - 1 {
            let end = segs[i + 1].base_offset;
            if end > hw {
                upper = i;
                break;
            }
            if cfg.min_compaction_lag_ms > 0
                && end > first_dirty
                && segs[i].largest_timestamp() > lag_horizon
            {
                upper = i;
                break;
            }
        }
        let mut clean_bytes = 0u64;
        let mut dirty_bytes = 0u64;
        let mut earliest_dirty_ts = i64::MAX;
        for i in 0..upper {
            if segs[i + 1].base_offset <= first_dirty {
                clean_bytes += segs[i].size();
            } else {
                dirty_bytes += segs[i].size();
                if let Ok(Some(t)) = segs[i].first_batch_timestamp() {
                    if t > 0 {
                        earliest_dirty_ts = earliest_dirty_ts.min(t);
                    }
                }
            }
        }
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let max_lag = cfg.max_compaction_lag_ms.max(0);
        let must_clean = dirty_bytes > 0 && earliest_dirty_ts < now_ms.saturating_sub(max_lag);
        let tombstones_due = upper > 0 && self.tombstone_horizon.load(Ordering::Acquire) <= now_ms;
        Some(Cleanable {
            first_dirty,
            segments: upper,
            dirty_bytes,
            ratio,
            must_clean,
            tombstones_due,
        })
    }

    /// First dirty offset known to the cleaner (-1 if never cleaned nor checkpointed).
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.first_dirty_offset.load(Ordering::Acquire)
    }

    pub(crate) fn set_cleaner_checkpoint(&self, offset: i64) {
        self.first_dirty_offset.store(offset, Ordering::Release);
    }

    /// One cleaner pass over this log (see the module docs). Cleans even below the dirty ratio:
    /// choosing when is the caller's (`LogManager::run_cleaner`) business. Returns default stats
    /// with `partition: None` if another pass is running or there is nothing to clean.
    pub fn clean(&self, now_ms: i64, ccfg: &CleanerConfig) -> Result<CleanerStats, LogError> {
        let Some(_pass) = self.clean_lock.try_lock() else {
            return Ok(CleanerStats::default());
        };
        let Some(c) = self.cleanable(now_ms) else {
            return Ok(CleanerStats::default());
        };
        let cfg = self.config.read().clone();
        let mut stats = CleanerStats {
            partition: Some(self.tp.clone()),
            dirty_ratio: c.ratio,
            first_dirty_offset: c.first_dirty,
            ..Default::default()
        };
        let cur = self.segments.read().clone();
        let n = c.segments.min(cur.len().saturating_sub(1));
        let segs: Vec<Arc<Segment>> = cur[..n].to_vec();
        let all_ends: Vec<i64> = (0..n).map(|i| cur[i + 1].base_offset).collect();
        // The aborted transactions, from the transaction indexes of every segment (an entry lives
        // in its marker's segment, which may follow the cleaned range).
        let aborted: Vec<AbortedTxn> = cur
            .iter()
            .flat_map(|s| s.meta.lock().txn_index.entries().to_vec())
            .collect();
        // Build the key map over the dirty part, as far as it fits. Records of aborted
        // transactions take no part in it (Kafka's `buildOffsetMapForSegment`).
        let mut map = OffsetMap::new(ccfg.map_capacity());
        let mut end_offset = c.first_dirty;
        let map_from = segs
            .iter()
            .zip(&all_ends)
            .find(|(_, &e)| e > c.first_dirty)
            .map_or(i64::MAX, |(s, _)| s.base_offset);
        let mut map_txns = TxnTracker::new(
            aborted
                .iter()
                .filter(|t| t.last_offset >= map_from)
                .copied()
                .collect(),
        );
        'segments: for (seg, &seg_end) in segs.iter().zip(&all_ends) {
            if seg_end <= c.first_dirty {
                continue;
            }
            let mut full = false;
            for_each_batch(seg, |h, bytes| {
                if h.is_control() {
                    let marker = parse_end_txn_marker(bytes);
                    map_txns.on_control(h, marker);
                } else if !map_txns.on_data(h) && h.last_offset() >= c.first_dirty {
                    if map.len() > 0 && map.would_overflow(h.records_count.max(0) as usize) {
                        full = true;
                        return Ok(false);
                    }
                    let (_, recs) =
                        records::decode_records(bytes).map_err(|e| corrupt(seg, h, e))?;
                    for r in &recs {
                        if let Some(k) = &r.key {
                            if r.offset >= c.first_dirty {
                                map.put(k, r.offset);
                            }
                        }
                    }
                }
                end_offset = end_offset.max(h.next_offset());
                Ok(true)
            })?;
            if full {
                stats.map_full = true;
                break 'segments;
            }
            end_offset = seg_end;
        }
        stats.map_entries = map.len();
        stats.end_offset = end_offset;
        if end_offset <= c.first_dirty && !c.tombstones_due {
            return Ok(CleanerStats::default());
        }
        // Segments to rewrite: from the log start through the one holding end_offset - 1.
        let count = segs
            .iter()
            .take_while(|s| s.base_offset < end_offset.max(c.first_dirty))
            .count();
        if count == 0 {
            return Ok(CleanerStats::default());
        }
        let producer_last: HashMap<i64, LastOfProducer> = self
            .append
            .lock()
            .producers
            .producers
            .iter()
            .map(|(pid, e)| {
                let last = match e.batches.back() {
                    Some(b) => LastOfProducer::Data(b.last_offset),
                    None => LastOfProducer::Marker(e.epoch),
                };
                (*pid, last)
            })
            .collect();
        let mut txns = TxnTracker::new(aborted);
        let filter = Filter {
            map: &map,
            now_ms,
            delete_retention_ms: cfg.delete_retention_ms.max(0),
            end_offset,
            producer_last: &producer_last,
        };
        let mut min_horizon = i64::MAX;
        for g in group_segments(
            &segs[..count],
            &all_ends[..count],
            cfg.segment_bytes,
            cfg.segment_index_bytes,
        ) {
            let group = &segs[g.clone()];
            let group_end = all_ends[g.end - 1];
            match self.clean_group(
                group,
                group_end,
                &filter,
                &mut txns,
                &cfg,
                &mut stats,
                &mut min_horizon,
            ) {
                Ok(true) => {}
                Ok(false) => {
                    stats.aborted = true;
                    return Ok(stats);
                }
                Err(e) => {
                    let _ = remove_cleaned(&self.dir, group[0].base_offset);
                    return Err(e);
                }
            }
        }
        if txns.followup {
            // A marker outlived the last data of its transaction only by this pass: the next
            // one starts its delete horizon.
            min_horizon = min_horizon.min(now_ms);
        }
        self.tombstone_horizon.store(min_horizon, Ordering::Release);
        self.first_dirty_offset
            .store(end_offset.max(c.first_dirty), Ordering::Release);
        tracing::info!(partition = %self.tp, first_dirty = c.first_dirty, end_offset,
            segments = stats.segments_cleaned, read = stats.bytes_read,
            written = stats.bytes_written, "cleaned log");
        Ok(stats)
    }

    /// Rewrites one group of segments into one cleaned segment and swaps it in. `Ok(false)` if the
    /// log changed meanwhile (nothing swapped, the `.cleaned` files removed).
    #[allow(clippy::too_many_arguments)]
    fn clean_group(
        &self,
        group: &[Arc<Segment>],
        group_end: i64,
        filter: &Filter<'_>,
        txns: &mut TxnTracker,
        cfg: &super::config::LogConfig,
        stats: &mut CleanerStats,
        min_horizon: &mut i64,
    ) -> Result<bool, LogError> {
        let base = group[0].base_offset;
        let sizes: Vec<u64> = group.iter().map(|s| s.size()).collect();
        let mut w = CleanedWriter::create(
            &self.dir,
            base,
            cfg.index_interval_bytes,
            cfg.segment_index_bytes,
        )?;
        for seg in group {
            for_each_batch(seg, |h, bytes| {
                stats.batches_read += 1;
                stats.bytes_read += bytes.len() as u64;
                let (out, horizon) = filter
                    .batch(txns, h, bytes, stats)
                    .map_err(|e| corrupt(seg, h, e))?;
                if let Some(t) = horizon {
                    *min_horizon = (*min_horizon).min(t);
                }
                match out {
                    Outcome::Copy => {
                        stats.batches_copied += 1;
                        stats.bytes_written += bytes.len() as u64;
                        w.append(bytes)?;
                    }
                    Outcome::Rewrite(b) => {
                        stats.batches_rewritten += 1;
                        stats.bytes_written += b.len() as u64;
                        w.append(&b)?;
                    }
                    Outcome::Drop => stats.batches_dropped += 1,
                }
                Ok(true)
            })?;
        }
        // The cleaned segment's transaction index: the aborted transactions whose markers stay
        // (Kafka's cleaned `txnIndex`); the others have no data left.
        let aborted = txns.take_index();
        w.finish(&self.dir, &aborted)?;
        // Swap under the append lock: appends, retention and truncation wait for a few renames.
        let st = self.append.lock();
        let pos = {
            let cur = self.segments.read();
            let p = cur.iter().position(|s| Arc::ptr_eq(s, &group[0]));
            p.filter(|&p| {
                p + group.len() < cur.len()
                    && group
                        .iter()
                        .zip(&sizes)
                        .enumerate()
                        .all(|(k, (s, &sz))| Arc::ptr_eq(&cur[p + k], s) && s.size() == sz)
                    && cur[p + group.len()].base_offset == group_end
            })
        };
        let Some(pos) = pos.filter(|_| !self.closed.load(Ordering::Acquire)) else {
            drop(st);
            remove_cleaned(&self.dir, base)?;
            tracing::info!(partition = %self.tp, base, "log changed during cleaning; pass aborted");
            return Ok(false);
        };
        let dir = &self.dir;
        let sidecar = dir.join(file_name(base, SWAP_END_SUFFIX));
        {
            let mut f = File::create(&sidecar)?;
            f.write_all(group_end.to_string().as_bytes())?;
            f.sync_all()?;
        }
        let with_txn = !aborted.is_empty();
        let suffixes: &[&str] = if with_txn {
            &[
                INDEX_SUFFIX,
                TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
                LOG_SUFFIX,
            ]
        } else {
            &[INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX]
        };
        for s in suffixes {
            durable::rename(
                &suffixed(dir, base, s, CLEANED_SUFFIX),
                &suffixed(dir, base, s, SWAP_SUFFIX),
            )?;
        }
        sync_dir(dir)?; // commit point: the log `.swap` exists
        for old in &group[1..] {
            old.delete_files()?;
        }
        if !with_txn {
            // The first old segment's transaction index has the same name: it must not survive.
            remove_if_exists(&txn_index::txn_index_path(dir, base))?;
        }
        for s in suffixes {
            durable::rename(
                &suffixed(dir, base, s, SWAP_SUFFIX),
                &dir.join(file_name(base, s)),
            )?;
        }
        fs::remove_file(&sidecar)?;
        sync_dir(dir)?;
        let (seg, damaged) = Segment::open(dir, base, cfg.segment_index_bytes)?;
        if damaged {
            seg.recover(cfg.index_interval_bytes)?;
        }
        seg.set_next_offset(group_end);
        self.segments
            .write()
            .splice(pos..pos + group.len(), [Arc::new(seg)]);
        drop(st);
        stats.segments_cleaned += group.len();
        stats.segments_written += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
