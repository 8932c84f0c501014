//! One partition's log: an ordered list of segments, offset assignment, reads, producer state,
//! recovery at open, retention and truncation.
//!
//! Locking: appends (and every structural change: roll, retention, truncation) are serialized by the
//! per-partition `append` mutex. The segment list sits behind an `RwLock` held only to clone or swap
//! `Arc`s; segment data is read with positioned reads bounded by the published segment size and log
//! end offset, so a reader never waits for an append's disk write. The log cleaner (`cleaner.rs`)
//! reads and rewrites sealed segments without any lock and takes the append lock only to swap the
//! rewritten segments into the list.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::batch::{self, BatchHeader, PayloadBatch};
use super::cleaner;
use super::config::{LogConfig, TimestampType};
use super::epoch_cache::{self, CheckpointRead, LeaderEpochCache};
use super::error::{AppendError, FollowerAppendError, LogError, LogStartError, ReadError};
use super::producer_state::{
    self, ActiveProducer, CompletedTxn, ProducerEntry, ProducerState, VerificationGuard,
    VerificationStates,
};
use super::segment::{self, Segment};
use super::txn_index::{AbortedTxn, TXN_INDEX_SUFFIX};
use super::validator;
use super::TopicPartition;
use crate::util::clock::now_ms;

/// Who appends a leader's batches: a client (sequences checked) or a coordinator of this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    Client,
    Coordinator,
}

/// Result of a successful append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time written into the batches for LogAppendTime topics, -1 for CreateTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The payload duplicated one of the producer's last 5 batches: nothing was written and the
    /// offsets are the original ones.
    pub duplicate: bool,
    pub records_count: u32,
    /// Bytes of the payload consumed: the whole payload for leader appends; for follower appends
    /// the whole batches stored, a partial trailing batch excluded.
    pub valid_bytes: usize,
}

/// Bytes of whole stored batches.
#[derive(Clone, Debug, Default)]
pub struct FetchData {
    pub records: Bytes,
}

/// A (timestamp, offset) answer of ListOffsets-style lookups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

/// What opening the partition had to do; lets callers and tests see whether segments were scanned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Segments found on disk.
    pub segments_loaded: usize,
    /// Segments fully scanned (CRC-checked, indexes rebuilt).
    pub segments_recovered: usize,
    /// Segments whose index files were missing or failed the sanity checks (included in
    /// `segments_recovered`).
    pub indexes_rebuilt: usize,
    /// Bytes cut off torn or corrupt segment tails.
    pub bytes_truncated: u64,
    /// Segments removed because they followed a corruption.
    pub segments_deleted: usize,
    /// Batch headers replayed to rebuild producer state after the newest snapshot.
    pub batches_replayed: u64,
    /// The leader epoch cache was rebuilt from batch headers (its file was missing or damaged).
    pub epoch_cache_rebuilt: bool,
}

#[derive(Debug, Default)]
pub(super) struct AppendState {
    pub(super) producers: ProducerState,
    /// Verification guards of transactional producers (KIP-890), in memory only.
    pub(super) verification: VerificationStates,
}

/// What bounds the last stable offset, published by appends for readers (who never take the
/// append lock): the oldest ongoing transaction, and completed transactions whose marker the
/// high watermark has not passed yet (Kafka's `unreplicatedTxns`), first offset -> marker offset.
#[derive(Debug, Default)]
struct UnstableTxns {
    first_ongoing: Option<i64>,
    unreplicated: BTreeMap<i64, i64>,
}

pub struct PartitionLog {
    pub(super) tp: TopicPartition,
    pub(super) dir: PathBuf,
    pub(super) config: RwLock<LogConfig>,
    pub(super) segments: RwLock<Vec<Arc<Segment>>>,
    pub(super) append: Mutex<AppendState>,
    /// Leader epoch cache (`leader-epoch-checkpoint`); changed only with the append lock held.
    epochs: RwLock<LeaderEpochCache>,
    log_end_offset: AtomicI64,
    log_start_offset: AtomicI64,
    recovery_point: AtomicI64,
    /// Upper bound for retention and cleaning (Kafka never deletes at or beyond the high watermark,
    /// nor compacts beyond the first unstable offset); -1 = unset, the log end offset is used.
    pub(super) high_watermark: AtomicI64,
    /// Serializes cleaner passes over this log (never held by appends or reads).
    pub(super) clean_lock: Mutex<()>,
    /// The cleaner's first dirty offset (`cleaner-offset-checkpoint`); -1 = unknown.
    pub(super) first_dirty_offset: AtomicI64,
    /// Earliest delete horizon of tombstones retained by the last pass (i64::MAX = none known).
    pub(super) tombstone_horizon: AtomicI64,
    unflushed_messages: AtomicI64,
    last_flush_ms: AtomicI64,
    pub(super) closed: AtomicBool,
    snapshots_written: AtomicUsize,
    unstable: Mutex<UnstableTxns>,
    stats: RecoveryStats,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("tp", &self.tp)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .finish()
    }
}

fn closed_err() -> io::Error {
    io::Error::other("partition log is closed")
}

/// The file names in `dir` (one listing, shared by the steps of opening a partition).
fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        if let Some(name) = e?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Segment base offsets of the `.log` files among `names` (the files of `dir`); removes leftovers
/// of interrupted deletions, temporary files and index files without a log file. The removed
/// names are dropped from `names`.
fn scan_dir(dir: &Path, names: &mut Vec<String>) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut removed = Vec::new();
    for name in names.iter() {
        if name.ends_with(segment::DELETED_SUFFIX) || name.ends_with(".tmp") {
            fs::remove_file(dir.join(name))?;
            removed.push(name.clone());
            continue;
        }
        if let Some(stem) = name.strip_suffix(segment::LOG_SUFFIX) {
            if stem.len() == 20 {
                if let Ok(b) = stem.parse::<i64>() {
                    if b >= 0 {
                        bases.push(b);
                    }
                }
            }
        }
    }
    bases.sort_unstable();
    // Index files without a log file are orphans.
    for name in names.iter() {
        let stem = name
            .strip_suffix(segment::INDEX_SUFFIX)
            .or_else(|| name.strip_suffix(segment::TIME_INDEX_SUFFIX))
            .or_else(|| name.strip_suffix(TXN_INDEX_SUFFIX));
        if let Some(stem) = stem {
            if let Ok(b) = stem.parse::<i64>() {
                if bases.binary_search(&b).is_err() {
                    fs::remove_file(dir.join(name))?;
                    removed.push(name.clone());
                }
            }
        }
    }
    names.retain(|n| !removed.contains(n));
    Ok(bases)
}

impl PartitionLog {
    /// Opens or creates the log in `dir`. With `clean_shutdown` the indexes are trusted after sanity
    /// checks; otherwise every segment from the one holding `recovery_point` on is scanned.
    pub(crate) fn open(
        tp: TopicPartition,
        dir: PathBuf,
        config: LogConfig,
        clean_shutdown: bool,
        recovery_point: Option<i64>,
        log_start_checkpoint: Option<i64>,
    ) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(&dir)?;
        // The directory is listed once; only a completed cleaner swap changes it on the way.
        let mut names = list_names(&dir)?;
        // Finish or roll back an interrupted cleaner swap before listing segments.
        let (swapped, swap_changed) = cleaner::complete_swaps(&dir, &names)?;
        if swap_changed {
            names = list_names(&dir)?;
        }
        let bases = scan_dir(&dir, &mut names)?;
        let snapshots = producer_state::snapshot_offsets(&names);
        let mut stats = RecoveryStats {
            segments_loaded: bases.len(),
            ..Default::default()
        };
        let idx_bytes = config.segment_index_bytes;
        let interval = config.index_interval_bytes;
        let mut segs: Vec<Arc<Segment>> = Vec::with_capacity(bases.len().max(1));
        let mut needs_scan: Vec<bool> = Vec::new();
        for b in &bases {
            let (s, mut damaged) = Segment::open(&dir, *b, idx_bytes)?;
            damaged |= swapped.contains(b);
            if damaged {
                stats.indexes_rebuilt += 1;
            }
            segs.push(Arc::new(s));
            needs_scan.push(damaged);
        }
        let mut recovered_any = false;
        let mut first_scanned: Option<i64> = None;
        let mut scanned_bases: Vec<i64> = Vec::new();
        if !segs.is_empty() {
            if !clean_shutdown {
                let rp = recovery_point.unwrap_or(0);
                let first = segs.iter().rposition(|s| s.base_offset <= rp).unwrap_or(0);
                for n in needs_scan.iter_mut().skip(first) {
                    *n = true;
                }
            }
            let last = segs.len() - 1;
            if !needs_scan[last] && !segs[last].load_next_offset()? {
                needs_scan[last] = true;
            }
            let mut i = 0;
            while i < segs.len() {
                if needs_scan[i] {
                    let r = segs[i].recover(interval)?;
                    recovered_any = true;
                    stats.segments_recovered += 1;
                    stats.bytes_truncated += r.truncated_bytes;
                    tracing::info!(partition = %tp, segment = segs[i].base_offset,
                        batches = r.batches, truncated = r.truncated_bytes, "recovered segment");
                    let is_recovery_zone = !clean_shutdown;
                    let next_base = segs.get(i + 1).map(|s| s.base_offset);
                    let broken =
                        r.truncated_bytes > 0 || next_base.is_some_and(|nb| r.next_offset > nb);
                    if broken && (is_recovery_zone || i == last) && i + 1 < segs.len() {
                        // Everything after the first corruption is unreliable.
                        for s in segs.drain(i + 1..) {
                            tracing::warn!(partition = %tp, segment = s.base_offset,
                                "deleting segment after corruption");
                            s.delete_files()?;
                            stats.segments_deleted += 1;
                        }
                        needs_scan.truncate(i + 1);
                    } else if broken {
                        tracing::warn!(partition = %tp, segment = segs[i].base_offset,
                            "truncated a segment below the recovery point");
                    }
                }
                i += 1;
            }
            for w in 0..segs.len().saturating_sub(1) {
                if !needs_scan[w] {
                    segs[w].set_next_offset(segs[w + 1].base_offset);
                }
            }
            // An empty non-first segment left by truncation at its end is harmless; keep it.
            scanned_bases = segs
                .iter()
                .zip(&needs_scan)
                .filter(|(_, n)| **n)
                .map(|(s, _)| s.base_offset)
                .collect();
            first_scanned = scanned_bases.first().copied();
        } else {
            let base = log_start_checkpoint.unwrap_or(0).max(0);
            segs.push(Arc::new(Segment::create(&dir, base, idx_bytes, now_ms())?));
        }
        if recovered_any {
            for (s, scanned) in segs.iter().zip(&needs_scan) {
                if *scanned {
                    s.flush()?;
                }
            }
        }
        let last = segs
            .last()
            .ok_or_else(|| LogError::Corrupt("no segment".into()))?;
        {
            let mut m = last.meta.lock();
            let since = last
                .size()
                .saturating_sub(u64::from(m.index.last_position()));
            m.bytes_since_index = since as usize;
        }
        let leo = last.next_offset();
        let first_base = segs.first().map(|s| s.base_offset).unwrap_or(0);
        let lso = log_start_checkpoint
            .unwrap_or(first_base)
            .max(first_base)
            .min(leo);
        let rp = if clean_shutdown || recovered_any {
            leo
        } else {
            recovery_point.unwrap_or(0).min(leo)
        };
        let log = PartitionLog {
            tp,
            dir,
            config: RwLock::new(config),
            segments: RwLock::new(segs),
            append: Mutex::new(AppendState::default()),
            epochs: RwLock::new(LeaderEpochCache::default()),
            log_end_offset: AtomicI64::new(leo),
            log_start_offset: AtomicI64::new(lso),
            recovery_point: AtomicI64::new(rp),
            high_watermark: AtomicI64::new(-1),
            clean_lock: Mutex::new(()),
            first_dirty_offset: AtomicI64::new(-1),
            tombstone_horizon: AtomicI64::new(i64::MAX),
            unflushed_messages: AtomicI64::new(0),
            last_flush_ms: AtomicI64::new(now_ms()),
            closed: AtomicBool::new(false),
            snapshots_written: AtomicUsize::new(0),
            unstable: Mutex::new(UnstableTxns::default()),
            stats,
        };
        let (producers, replayed) = log.load_producer_state(leo, &scanned_bases, snapshots)?;
        log.append.lock().producers = producers;
        let mut stats = log.stats;
        stats.batches_replayed = replayed;
        let resume_from = if clean_shutdown { None } else { first_scanned };
        stats.epoch_cache_rebuilt = log.load_epoch_cache(resume_from, leo, lso)?;
        tracing::info!(partition = %log.tp, log_start = lso, log_end = leo,
            segments = log.segments.read().len(), recovered = stats.segments_recovered,
            "opened partition log");
        Ok(PartitionLog { stats, ..log })
    }

    /// Loads `leader-epoch-checkpoint`. A missing or damaged file is rebuilt from the batch headers
    /// of the whole log (Kafka's segment recovery rule: a batch's partitionLeaderEpoch becomes an
    /// entry at its baseOffset when it is above the latest cached epoch). After an unclean
    /// shutdown, the entries from `resume_from` (the first segment recovery scanned) on are
    /// re-derived from the headers the same way. Entries at or beyond the log end are dropped and
    /// the earliest entry is moved up to the log start. Returns whether the file was rebuilt.
    fn load_epoch_cache(
        &self,
        resume_from: Option<i64>,
        leo: i64,
        lso: i64,
    ) -> Result<bool, LogError> {
        let path = self.dir.join(epoch_cache::LEADER_EPOCH_CHECKPOINT);
        let (mut cache, scan_from, rebuilt) = match epoch_cache::read_checkpoint(&path)? {
            CheckpointRead::Entries(v) => {
                let mut cache = LeaderEpochCache::with_file(&self.dir, v.clone());
                cache.set_persisted(v);
                (cache, resume_from, false)
            }
            CheckpointRead::Missing => {
                // A rebuild that finds no epoch in the log leaves the file missing (same meaning).
                let mut cache = LeaderEpochCache::with_file(&self.dir, Vec::new());
                cache.set_persisted(Vec::new());
                (cache, Some(i64::MIN), true)
            }
            CheckpointRead::Damaged(why) => {
                tracing::warn!(partition = %self.tp, %why,
                    "damaged leader-epoch-checkpoint; rebuilding it from the log");
                (
                    LeaderEpochCache::with_file(&self.dir, Vec::new()),
                    Some(i64::MIN),
                    true,
                )
            }
        };
        let mut changed = rebuilt;
        if let Some(from) = scan_from {
            changed |= cache.truncate_from_end_in_memory(from.max(0));
            let segs = self.segments.read().clone();
            for (i, s) in segs.iter().enumerate() {
                let end = segs.get(i + 1).map(|n| n.base_offset).unwrap_or(i64::MAX);
                if end <= from {
                    continue;
                }
                s.walk_headers(0, |_, h, _| {
                    if h.base_offset >= leo {
                        return false;
                    }
                    let e = h.partition_leader_epoch;
                    if h.base_offset >= from && e >= 0 && cache.latest_epoch().is_none_or(|l| e > l)
                    {
                        changed |= cache.assign_in_memory(e, h.base_offset);
                    }
                    true
                })?;
            }
        }
        // Entries at or beyond the log end and below the log start are cut in memory only: the
        // next open cuts them again, and the next assign (before any data is appended, or on
        // becoming leader) writes the file unless it then holds the same entries, as a restarted
        // leader re-assigning the epoch it recorded at the empty log end does. Only what the scan
        // re-derived is written now.
        let cut = cache.truncate_from_end_in_memory(leo) | cache.truncate_from_start_in_memory(lso);
        if changed {
            cache.flush()?;
        } else if cut {
            cache.mark_stale();
        }
        *self.epochs.write() = cache;
        Ok(rebuilt && leo > lso)
    }

    /// Producer state from the newest snapshot <= `leo` (among `snapshots`, the snapshot offsets
    /// on disk) plus the batches after it (transaction markers read from the log). The transaction indexes of the segments in `rebuild` (recovered
    /// ones) are rebuilt from the markers replayed: the snapshot is then taken at or below the
    /// first of them. Publishes the unstable transactions for the last stable offset.
    fn load_producer_state(
        &self,
        leo: i64,
        rebuild: &[i64],
        snapshots: Vec<i64>,
    ) -> Result<(ProducerState, u64), LogError> {
        let snapshots = producer_state::delete_listed_snapshots_above(&self.dir, snapshots, leo)?;
        let upto = rebuild.first().map_or(leo, |b| (*b).min(leo));
        let (mut state, from) = match producer_state::load_latest(&self.dir, snapshots, upto)? {
            Some((s, o)) => (s, o),
            None => (ProducerState::default(), i64::MIN),
        };
        let mut replayed = 0u64;
        let mut completed: Vec<CompletedTxn> = Vec::new();
        if from < leo {
            let segs = self.segments.read().clone();
            for s in segs.iter() {
                if s.next_offset() <= from && s.base_offset < from {
                    continue;
                }
                let start = if from > s.base_offset {
                    u64::from(s.meta.lock().index.lookup(from).1)
                } else {
                    0
                };
                let mut aborted: Vec<AbortedTxn> = Vec::new();
                let mut failed = None;
                s.walk_headers(start, |pos, h, sz| {
                    if h.base_offset < from {
                        return true;
                    }
                    let marker = if h.is_control() && h.has_producer_id() {
                        match s.read_bytes(pos, sz) {
                            Ok(b) => batch::parse_end_txn_marker(&b),
                            Err(e) => {
                                failed = Some(e);
                                return false;
                            }
                        }
                    } else {
                        None
                    };
                    if let Some(c) = state.replay(h, marker) {
                        aborted.extend(state.aborted_entry(&c));
                        completed.push(c);
                    }
                    replayed += 1;
                    true
                })?;
                if let Some(e) = failed {
                    return Err(e.into());
                }
                if rebuild.contains(&s.base_offset) {
                    s.meta.lock().txn_index.replace(aborted)?;
                }
            }
        }
        let cfg = self.config.read().producer_id_expiration_ms;
        state.expire(now_ms(), cfg);
        {
            let mut u = self.unstable.lock();
            u.first_ongoing = state.first_ongoing_offset();
            u.unreplicated.retain(|_, last| *last < leo);
            for c in completed {
                u.unreplicated.insert(c.first_offset, c.last_offset);
            }
        }
        Ok((state, replayed))
    }

    /// Publishes a change of the unstable transactions (append lock held): the oldest ongoing
    /// one, and `completed` until the high watermark passes its marker. An aborted transaction
    /// enters `seg`'s transaction index first.
    fn on_txn_change(
        &self,
        seg: &Segment,
        state: &ProducerState,
        completed: Option<CompletedTxn>,
    ) -> io::Result<()> {
        if let Some(e) = completed.as_ref().and_then(|c| state.aborted_entry(c)) {
            seg.meta.lock().txn_index.append(e)?;
        }
        let mut u = self.unstable.lock();
        u.first_ongoing = state.first_ongoing_offset();
        if let Some(c) = completed {
            u.unreplicated.insert(c.first_offset, c.last_offset);
        }
        Ok(())
    }

    /// Kafka's `firstUnstableOffset`: the first offset of the oldest transaction that is ongoing,
    /// or completed by a marker the high watermark (`set_high_watermark`, else the log end) has
    /// not passed yet, at least the log start offset. `None` when there is none. The replica's
    /// last stable offset is
    /// `min(this, high watermark)`.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let hw = match self.high_watermark.load(Ordering::Acquire) {
            h if h >= 0 => h,
            _ => self.log_end_offset(),
        };
        let mut u = self.unstable.lock();
        u.unreplicated.retain(|_, last| *last >= hw);
        let unreplicated = u.unreplicated.keys().next().copied();
        let first = match (u.first_ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A transaction may start below the log start (DeleteRecords): Kafka bounds it there.
        first.map(|f| f.max(self.log_start_offset()))
    }

    /// Kafka's `collectAbortedTransactions`: the aborted transactions overlapping
    /// `[fetch_offset, upper)` (last offset >= `fetch_offset`, first offset < `upper`), from the
    /// transaction indexes of the segment holding `fetch_offset` and those after it (until an
    /// entry's last stable offset reaches `upper`), sorted by first offset. Nothing below the log
    /// start offset is served, so an entry ending below it is never returned.
    pub fn collect_aborted_transactions(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        let fetch_offset = fetch_offset.max(self.log_start_offset());
        let segs = self.segments.read().clone();
        let start = segs
            .iter()
            .rposition(|s| s.base_offset <= fetch_offset)
            .unwrap_or(0);
        let mut out = Vec::new();
        for s in &segs[start..] {
            if s.meta
                .lock()
                .txn_index
                .collect(fetch_offset, upper, &mut out)
            {
                break;
            }
        }
        out.sort_by_key(|t| (t.first_offset, t.producer_id));
        out
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the open had to do (see `RecoveryStats`).
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.stats
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The producers with state in this log (DescribeProducers).
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.append.lock().producers.active()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// Offset below which everything is known to be fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        let idx = config.segment_index_bytes;
        *self.config.write() = config;
        if let Some(s) = self.segments.read().last() {
            s.set_index_bytes(idx);
        }
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.size()).sum()
    }

    pub fn num_segments(&self) -> usize {
        self.segments.read().len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.read().iter().map(|s| s.base_offset).collect()
    }

    fn active(&self) -> Result<Arc<Segment>, io::Error> {
        self.segments
            .read()
            .last()
            .cloned()
            .ok_or_else(|| io::Error::other("partition log has no segment"))
    }

    /// Validates and appends one produce payload (one or more concatenated v2 record batches).
    ///
    /// Per batch: size >= 61, batchLength+12 fits, magic 2, CRC-32C over bytes 21..end,
    /// lastOffsetDelta+1 == recordsCount > 0, size <= `max_message_bytes` (else MessageTooLarge),
    /// no control batches, idempotent batches carry a sequence. Then the records checks and the
    /// conversion for `compression.type` of `validator` (keys on compacted topics, timestamp
    /// bounds, re-encoding; records are read only when one of them applies), after which a
    /// converted batch must still fit `max_message_bytes` and the stored payload `segment_bytes`.
    /// Offsets are assigned by patching baseOffset and partitionLeaderEpoch; LogAppendTime topics get attribute bit 3, maxTimestamp =
    /// `now_ms` and a recomputed CRC. Idempotent producers follow Kafka's ProducerAppendInfo rules; if
    /// any batch duplicates one of its producer's last 5 batches, the original offsets are returned
    /// with `duplicate = true` and nothing is written (as Kafka does for the whole request).
    /// A transactional batch may only continue its producer's ongoing transaction here; starting
    /// one takes [`PartitionLog::append_from_verified`] (`InvalidTxnState` otherwise).
    /// All-or-nothing: on error nothing is stored.
    pub fn append(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_from(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`PartitionLog::append`] for an `origin`: a coordinator's batches (transactional offset
    /// commits) carry no sequences, so only their producer epoch is checked (Kafka's
    /// `AppendOrigin.COORDINATOR`). Without a verification guard: a client's transactional batch
    /// can only continue a transaction already ongoing (see
    /// [`PartitionLog::append_from_verified`]).
    pub fn append_from(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, AppendError> {
        self.append_from_verified(records, leader_epoch, now_ms, origin, None)
    }

    /// Whether a transactional batch of `producer_id` appended now would start a transaction in
    /// this log (the producer has none ongoing): the Produce path then verifies the partition
    /// with the transaction coordinator and passes a [`VerificationGuard`] (KIP-890).
    pub fn transaction_needs_verification(&self, producer_id: i64) -> bool {
        !self
            .append
            .lock()
            .producers
            .has_ongoing_txn(&HashMap::new(), producer_id)
    }

    /// The producer's verification guard, created and stored if it has none (Kafka's
    /// `maybeStartTransactionVerification`). It stays until the producer's transaction starts in
    /// this log, a marker of the producer is written, the log is truncated, or it is older than
    /// `producer.id.expiration.ms`.
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.append
            .lock()
            .verification
            .get_or_create(producer_id, now_ms())
    }

    /// [`PartitionLog::append_from`] with a verification guard (KIP-890, Kafka's
    /// `UnifiedLog.append` with a `VerificationGuard`): for a client (`AppendOrigin::Client`), a
    /// transactional batch that starts a transaction of its producer is accepted only when
    /// `guard` is the guard the log stores for the producer
    /// ([`PartitionLog::verification_guard`]); else the whole payload is refused with
    /// `InvalidTxnState` and nothing is stored. Batches of a transaction already ongoing need no
    /// guard, non-transactional batches ignore it, a coordinator's batches are never checked.
    /// Once a transaction starts, its producer's stored guard is cleared.
    pub fn append_from_verified(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
    ) -> Result<AppendInfo, AppendError> {
        let cfg = self.config.read().clone();
        let batches = batch::validate_payload(records, cfg.max_message_bytes)?;
        let received = records.len();
        let validator::Validated {
            bytes: records,
            batches,
        } = validator::validate(records, batches, &cfg, &self.tp, now_ms)?;
        if records.len() as u64 > cfg.segment_bytes {
            return Err(AppendError::MessageTooLarge {
                size: records.len(),
                max: usize::try_from(cfg.segment_bytes).unwrap_or(usize::MAX),
            });
        }
        let lat = cfg.timestamp_type == TimestampType::LogAppendTime;
        let mut st = self.append.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Storage(closed_err()));
        }
        let leo = self.log_end_offset();
        // Assign offsets (on header copies) and check producer state.
        let mut staged: HashMap<i64, ProducerEntry> = HashMap::new();
        // Producers whose transaction this payload starts.
        let mut started: Vec<i64> = Vec::new();
        let mut headers: Vec<(usize, BatchHeader, usize)> = Vec::with_capacity(batches.len());
        let mut next = leo;
        let mut records_count: u32 = 0;
        let mut max_ts = i64::MIN;
        for PayloadBatch {
            position,
            size,
            header,
        } in &batches
        {
            let mut h = *header;
            if h.has_producer_id() && origin == AppendOrigin::Coordinator {
                st.producers.check_epoch(&staged, &h)?;
            } else if h.has_producer_id() {
                if let Some(d) = st.producers.find_duplicate(&h) {
                    return Ok(AppendInfo {
                        first_offset: d.first_offset,
                        last_offset: d.last_offset,
                        log_append_time_ms: if lat { d.timestamp } else { -1 },
                        log_start_offset: self.log_start_offset(),
                        duplicate: true,
                        records_count: (d.last_offset - d.first_offset + 1) as u32,
                        valid_bytes: received,
                    });
                }
                if h.is_transactional()
                    && !st.producers.has_ongoing_txn(&staged, h.producer_id)
                    && !st.verification.verifies(h.producer_id, guard)
                {
                    return Err(AppendError::InvalidTxnState(format!(
                        "transactional batch of producer {} would start a transaction that \
                         was not verified with its coordinator",
                        h.producer_id
                    )));
                }
                st.producers.check(&staged, &h)?;
            }
            if h.is_transactional()
                && h.has_producer_id()
                && !st.producers.has_ongoing_txn(&staged, h.producer_id)
            {
                started.push(h.producer_id);
            }
            h.base_offset = next;
            h.partition_leader_epoch = leader_epoch;
            if lat {
                h.max_timestamp = now_ms;
                h.attributes |= 0x08;
            }
            if h.has_producer_id() {
                let current = staged
                    .remove(&h.producer_id)
                    .or_else(|| st.producers.producers.get(&h.producer_id).cloned());
                let mut e = current.unwrap_or_else(|| ProducerEntry::new(h.producer_epoch));
                e.add_batch(&h, h.base_offset, h.last_offset());
                staged.insert(h.producer_id, e);
            }
            max_ts = max_ts.max(h.max_timestamp);
            records_count = records_count.saturating_add(h.records_count as u32);
            next = h.next_offset();
            headers.push((*position, h, *size));
        }
        let last_offset = next - 1;
        // Patch the stored copy (the payload is copied only here, unless the validator converted it).
        let mut buf = records.into_owned();
        for (pos, h, size) in &headers {
            let b = &mut buf[*pos..*pos + *size];
            batch::patch_offset_and_epoch(b, h.base_offset, leader_epoch);
            if lat {
                batch::patch_log_append_time(b, now_ms);
            }
        }
        let seg = self.maybe_roll(
            &cfg,
            &st.producers,
            buf.len(),
            max_ts,
            leo,
            last_offset,
            now_ms,
        )?;
        // The epoch entry is on disk before the data it describes (as Kafka's assign).
        self.assign_epoch(leader_epoch, leo)?;
        seg.append(&buf, &headers, cfg.index_interval_bytes)?;
        let txn_started = headers.iter().any(|(_, h, _)| h.is_transactional());
        for (id, e) in staged {
            st.producers.insert(id, e);
        }
        for id in started {
            st.verification.clear(id);
        }
        if txn_started {
            self.on_txn_change(&seg, &st.producers, None)?;
        }
        self.log_end_offset.store(next, Ordering::Release);
        let unflushed = self
            .unflushed_messages
            .fetch_add(i64::from(records_count), Ordering::AcqRel)
            + i64::from(records_count);
        drop(st);
        if unflushed >= cfg.flush_interval_messages {
            self.flush().map_err(|e| match e {
                LogError::Io(e) => AppendError::Storage(e),
                other => AppendError::Storage(io::Error::other(other.to_string())),
            })?;
        }
        Ok(AppendInfo {
            first_offset: leo,
            last_offset,
            log_append_time_ms: if lat { now_ms } else { -1 },
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            records_count,
            valid_bytes: received,
        })
    }

    /// Appends batches replicated from the leader (the records of a Fetch response), verbatim: offsets,
    /// partitionLeaderEpoch, timestamps and CRCs are the leader's (Kafka's appendAsFollower).
    ///
    /// Whole batches are validated (see `batch::validate_replicated`: structure, CRC, offsets
    /// increasing; lastOffsetDelta+1 may exceed recordsCount, as in batches compacted on the leader;
    /// `max_message_bytes` is not applied, as Kafka ignores record size for followers, but a batch
    /// larger than `segment_bytes` is refused with `MessageTooLarge`)
    /// and a partial trailing batch is ignored: `valid_bytes` in the result says how much was
    /// stored. The first batch must not start below the log end offset (`OffsetMismatch`); it may
    /// start above it, as when the leader's cleaner removed whole batches (Kafka accepts such gaps).
    /// No producer sequence or epoch checks, but producer state is updated from every batch header,
    /// so duplicates are still recognised after this replica becomes leader. Each batch's
    /// partitionLeaderEpoch (when >= 0) is assigned to the leader epoch cache at its baseOffset.
    /// Verification guards are never checked; a replicated marker, or transactional batch starting
    /// a transaction, clears its producer's guard as on a leader.
    /// Segments roll per batch by the usual rules; the flush policy applies. A payload without a whole
    /// batch stores nothing and returns `records_count == 0`, `valid_bytes == 0`.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, FollowerAppendError> {
        let cfg = self.config.read().clone();
        let batches = batch::validate_replicated(records)?;
        for b in &batches {
            if b.size as u64 > cfg.segment_bytes {
                return Err(AppendError::MessageTooLarge {
                    size: b.size,
                    max: usize::try_from(cfg.segment_bytes).unwrap_or(usize::MAX),
                }
                .into());
            }
        }
        let valid_bytes = batches.last().map(|b| b.position + b.size).unwrap_or(0);
        let mut st = self.append.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_err().into());
        }
        let leo = self.log_end_offset();
        let Some(first) = batches.first() else {
            return Ok(AppendInfo {
                first_offset: leo,
                last_offset: leo - 1,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset(),
                duplicate: false,
                records_count: 0,
                valid_bytes: 0,
            });
        };
        let first_offset = first.header.base_offset;
        if first_offset < leo {
            return Err(FollowerAppendError::OffsetMismatch {
                expected: leo,
                got: first_offset,
                last: batches
                    .last()
                    .map_or(first_offset, |b| b.header.last_offset()),
            });
        }
        let mut records_count: u32 = 0;
        let mut last_offset = leo - 1;
        for b in &batches {
            let h = b.header;
            let seg = self.maybe_roll(
                &cfg,
                &st.producers,
                b.size,
                h.max_timestamp,
                h.base_offset,
                h.last_offset(),
                now_ms,
            )?;
            self.assign_epoch(h.partition_leader_epoch, h.base_offset)?;
            seg.append(
                &records[b.position..b.position + b.size],
                &[(0, h, b.size)],
                cfg.index_interval_bytes,
            )?;
            let marker = if h.is_control() && h.has_producer_id() {
                batch::parse_end_txn_marker(&records[b.position..b.position + b.size])
            } else {
                None
            };
            // A marker, or the start of a transaction, ends the producer's verification.
            let ends_verification = h.has_producer_id()
                && (h.is_control()
                    || (h.is_transactional()
                        && !st.producers.has_ongoing_txn(&HashMap::new(), h.producer_id)));
            if ends_verification {
                st.verification.clear(h.producer_id);
            }
            let completed = st.producers.replay(&h, marker);
            if completed.is_some() || h.is_transactional() {
                self.on_txn_change(&seg, &st.producers, completed)?;
            }
            last_offset = h.last_offset();
            self.log_end_offset
                .store(h.next_offset(), Ordering::Release);
            records_count = records_count.saturating_add(h.records_count.max(0) as u32);
        }
        let unflushed = self
            .unflushed_messages
            .fetch_add(i64::from(records_count), Ordering::AcqRel)
            + i64::from(records_count);
        drop(st);
        if unflushed >= cfg.flush_interval_messages {
            self.flush().map_err(|e| match e {
                LogError::Io(e) => AppendError::Storage(e),
                other => AppendError::Storage(io::Error::other(other.to_string())),
            })?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            records_count,
            valid_bytes,
        })
    }

    /// Leader: appends a COMMIT (`commit`) or ABORT marker of `producer_id` at the log end, as
    /// Kafka writes it (`batch::end_txn_marker_batch`, stamped `leader_epoch` and `timestamp`).
    /// The producer's state is checked first: a marker older than the producer's epoch is
    /// `InvalidProducerEpoch`, one from an older coordinator epoch than its last marker is
    /// `TransactionCoordinatorFenced`; nothing is stored then. Completes the producer's ongoing
    /// transaction (an aborted one enters the transaction index of the segment the marker is in)
    /// and takes the marker's epoch if newer, and clears the producer's verification guard.
    /// Returns the marker's offset.
    #[allow(clippy::too_many_arguments)]
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        timestamp: i64,
    ) -> Result<i64, AppendError> {
        let cfg = self.config.read().clone();
        let marker = batch::EndTxnMarker {
            commit,
            coordinator_epoch,
        };
        let mut st = self.append.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Storage(closed_err()));
        }
        st.producers
            .check_marker(producer_id, producer_epoch, marker)?;
        let offset = self.log_end_offset();
        let bytes = batch::end_txn_marker_batch(
            offset,
            leader_epoch,
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            timestamp,
        );
        let h = BatchHeader::parse(&bytes)
            .ok_or_else(|| AppendError::CorruptMessage("marker batch too short".into()))?;
        let seg = self.maybe_roll(
            &cfg,
            &st.producers,
            bytes.len(),
            timestamp,
            offset,
            offset,
            now_ms(),
        )?;
        self.assign_epoch(leader_epoch, offset)?;
        seg.append(&bytes, &[(0, h, bytes.len())], cfg.index_interval_bytes)?;
        let completed = st.producers.apply_marker(
            producer_id,
            producer_epoch,
            marker,
            offset,
            timestamp,
            false,
        )?;
        self.on_txn_change(&seg, &st.producers, completed)?;
        // A guard taken before this marker never opens the producer's next transaction.
        st.verification.clear(producer_id);
        self.log_end_offset.store(offset + 1, Ordering::Release);
        let unflushed = self.unflushed_messages.fetch_add(1, Ordering::AcqRel) + 1;
        drop(st);
        tracing::debug!(partition = %self.tp, producer_id, producer_epoch, commit, offset,
            "appended transaction marker");
        if unflushed >= cfg.flush_interval_messages {
            self.flush().map_err(|e| match e {
                LogError::Io(e) => AppendError::Storage(e),
                other => AppendError::Storage(io::Error::other(other.to_string())),
            })?;
        }
        Ok(offset)
    }

    /// Assigns an epoch start to the cache (and its file) if it changes it; append lock held.
    fn assign_epoch(&self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if self.epochs.read().needs_assign(epoch, start_offset) {
            self.epochs.write().assign(epoch, start_offset)?;
        }
        Ok(())
    }

    /// Kafka's `maybeAssignEpochStartOffset`: records that `epoch` starts at `start_offset` (Kafka's
    /// Partition.makeLeader calls it with the log end offset on becoming leader, so that
    /// OffsetForLeaderEpoch answers reflect the new epoch before it wrote anything). Same rules as
    /// `LeaderEpochCache::assign`; the file is written when the cache changes. An entry at the log
    /// end without data is dropped at the next open (as in Kafka, where the new leader re-assigns).
    pub fn maybe_assign_epoch_start_offset(
        &self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        let _st = self.append.lock();
        self.assign_epoch(epoch, start_offset)?;
        Ok(())
    }

    /// Kafka's `endOffsetForEpoch` answer for OffsetForLeaderEpoch: (epoch, end offset) of
    /// `requested_epoch` (see `LeaderEpochCache::end_offset_for`; (-1, -1) when undefined).
    pub fn leader_epoch_end_offset(&self, requested_epoch: i32) -> (i32, i64) {
        let cache = self.epochs.read();
        cache.end_offset_for(requested_epoch, self.log_end_offset())
    }

    /// The latest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.read().latest_epoch()
    }

    /// The leader epoch cache as (epoch, start offset) pairs, oldest first (tests, diagnostics).
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs
            .read()
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    /// Rolls the active segment if the incoming payload requires it (Kafka's shouldRoll); called with
    /// the append lock held. Returns the segment to append to.
    #[allow(clippy::too_many_arguments)]
    fn maybe_roll(
        &self,
        cfg: &LogConfig,
        producers: &ProducerState,
        payload: usize,
        max_ts: i64,
        first_offset: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<Arc<Segment>, io::Error> {
        let active = self.active()?;
        let size = active.size();
        let mut reason = None;
        // Positions in the offset index are u32: never let a segment reach 2 GiB either.
        if size > 0
            && (size + payload as u64 > cfg.segment_bytes
                || size + payload as u64 > i32::MAX as u64)
        {
            reason = Some("size");
        } else if size > 0 {
            let waited = match active.first_batch_timestamp()? {
                Some(t) if t >= 0 => max_ts.saturating_sub(t),
                _ => now_ms.saturating_sub(active.meta.lock().created_ms),
            };
            if waited > cfg.segment_ms {
                reason = Some("time");
            }
        }
        if reason.is_none() && size > 0 && active.index_full() {
            reason = Some("index full");
        }
        if reason.is_none() && last_offset - active.base_offset > i64::from(i32::MAX) {
            reason = Some("offset overflow");
        }
        match reason {
            None => Ok(active),
            Some(r) => self.roll(active, first_offset, now_ms, r, producers),
        }
    }

    fn roll(
        &self,
        old: Arc<Segment>,
        new_base: i64,
        now_ms: i64,
        reason: &str,
        producers: &ProducerState,
    ) -> Result<Arc<Segment>, io::Error> {
        if old.base_offset == new_base && old.size() == 0 {
            return Ok(old);
        }
        old.seal()?;
        let cfg = self.config.read().clone();
        let new = Arc::new(Segment::create(
            &self.dir,
            new_base,
            cfg.segment_index_bytes,
            now_ms,
        )?);
        self.segments.write().push(new.clone());
        // Everything before the new segment is now complete: fsync it and move the recovery point.
        self.flush_segments_below(new_base)?;
        tracing::info!(partition = %self.tp, new_segment = new_base, reason, "rolled segment");
        // Producer state snapshot at the roll point (the caller holds the append lock, so the state
        // matches `new_base`). A failure only costs replay time at the next open.
        if let Err(e) = self.write_snapshot_locked(producers, new_base) {
            tracing::warn!(partition = %self.tp, error = %e, "producer state snapshot failed");
        }
        Ok(new)
    }

    fn write_snapshot_locked(&self, state: &ProducerState, offset: i64) -> io::Result<()> {
        if producer_state::write_snapshot(&self.dir, offset, state)? {
            self.snapshots_written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// fsyncs every segment with data between the recovery point and `upto`, then advances the
    /// recovery point to `upto`.
    fn flush_segments_below(&self, upto: i64) -> io::Result<()> {
        let rp = self.recovery_point();
        if upto <= rp {
            return Ok(());
        }
        let segs = self.segments.read().clone();
        for (i, s) in segs.iter().enumerate() {
            let end = segs.get(i + 1).map(|n| n.base_offset).unwrap_or(i64::MAX);
            if end > rp && s.base_offset < upto {
                s.flush()?;
            }
        }
        self.recovery_point.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Reads whole stored batches starting at the batch containing `offset`, up to `max_bytes`
    /// (with `min_one_batch`, at least the first whole batch even if larger: KIP-74), excluding any
    /// batch whose last offset is >= `max_offset_exclusive` (a high watermark; `None` = log end).
    /// An `offset` removed by compaction is served from the next batch holding a later offset.
    /// Serves one segment per call, with one positioned read into one buffer. Empty at log end;
    /// `offset` below the log start or above the log end is `OffsetOutOfRange`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset_exclusive: Option<i64>,
    ) -> Result<FetchData, ReadError> {
        let leo = self.log_end_offset();
        let lso = self.log_start_offset();
        if offset < lso || offset > leo {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start_offset: lso,
                log_end_offset: leo,
            });
        }
        let upper = max_offset_exclusive.unwrap_or(leo).min(leo);
        if offset >= upper {
            return Ok(FetchData::default());
        }
        let segs = self.segments.read().clone();
        let start_idx = segs
            .iter()
            .rposition(|s| s.base_offset <= offset)
            .unwrap_or(0);
        for seg in &segs[start_idx..] {
            let Some((pos, first)) = seg.find_batch(offset)? else {
                continue;
            };
            if first.last_offset() >= upper {
                return Ok(FetchData::default());
            }
            let first_size = first.size().unwrap_or(0);
            let seg_size = seg.size();
            let avail = seg_size.saturating_sub(pos) as usize;
            let want = if first_size > max_bytes {
                if !min_one_batch {
                    return Ok(FetchData::default());
                }
                first_size
            } else {
                max_bytes.min(avail)
            };
            let mut buf = seg.read_bytes(pos, want)?;
            // Cut to whole batches below `upper`.
            let mut cut = 0usize;
            while cut + batch::HEADER_SIZE <= buf.len() {
                let Some(h) = BatchHeader::parse(&buf[cut..]) else {
                    break;
                };
                let Some(sz) = h.size() else { break };
                if sz < batch::HEADER_SIZE || cut + sz > buf.len() || h.last_offset() >= upper {
                    break;
                }
                cut += sz;
            }
            buf.truncate(cut);
            return Ok(FetchData { records: buf });
        }
        Ok(FetchData::default())
    }

    /// First record with timestamp >= `ts` at or after the log start (ListOffsets by timestamp).
    ///
    /// Uses the time index, then a short header scan, then walks the records of that one batch when
    /// it is uncompressed. Limitation: the records of compressed batches are not decoded here; for
    /// such a batch (whose maxTimestamp >= `ts`) the batch's base offset and its maxTimestamp are
    /// returned. For LogAppendTime batches every record has the batch's maxTimestamp, so the answer is
    /// the batch's base offset.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<TimestampOffset>, LogError> {
        let lso = self.log_start_offset();
        let leo = self.log_end_offset();
        let segs = self.segments.read().clone();
        for seg in segs.iter() {
            let start = {
                let m = seg.meta.lock();
                if m.max_timestamp < ts {
                    continue;
                }
                let (_, o) = m.time_index.lookup(ts);
                let o = o.max(lso);
                u64::from(m.index.lookup(o).1)
            };
            let mut found = None;
            seg.walk_headers(start, |pos, h, sz| {
                if h.base_offset >= leo {
                    return false;
                }
                if h.max_timestamp >= ts && h.last_offset() >= lso {
                    found = Some((pos, *h, sz));
                    return false;
                }
                true
            })?;
            let Some((pos, h, sz)) = found else { continue };
            if h.compression() == 0 && !h.is_log_append_time() {
                let bytes = seg.read_bytes(pos, sz)?;
                if let Some(recs) = batch::record_timestamps(&bytes) {
                    if let Some(&(o, t)) = recs.iter().find(|&&(o, t)| t >= ts && o >= lso) {
                        return Ok(Some(TimestampOffset {
                            timestamp: t,
                            offset: o,
                        }));
                    }
                }
            }
            return Ok(Some(TimestampOffset {
                timestamp: h.max_timestamp,
                offset: h.base_offset.max(lso),
            }));
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP); `None` on an empty log.
    /// Limitation: inside a compressed batch the exact record is unknown here and the batch's last
    /// offset is returned; for LogAppendTime batches it is the batch's base offset (all records share
    /// the timestamp).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, LogError> {
        if self.log_end_offset() <= self.log_start_offset() {
            return Ok(None);
        }
        let segs = self.segments.read().clone();
        let mut best: Option<(Arc<Segment>, i64, i64)> = None;
        for s in segs.iter() {
            let (t, o) = {
                let m = s.meta.lock();
                (m.max_timestamp, m.offset_of_max_timestamp)
            };
            if s.size() > 0 && best.as_ref().is_none_or(|b| t > b.1) {
                best = Some((s.clone(), t, o));
            }
        }
        let Some((seg, t, o)) = best else {
            return Ok(None);
        };
        let Some((pos, h)) = seg.find_batch(o)? else {
            return Ok(Some(TimestampOffset {
                timestamp: t,
                offset: o,
            }));
        };
        if h.is_log_append_time() {
            return Ok(Some(TimestampOffset {
                timestamp: t,
                offset: h.base_offset,
            }));
        }
        if h.compression() == 0 {
            let bytes = seg.read_bytes(pos, h.size().unwrap_or(0))?;
            if let Some(recs) = batch::record_timestamps(&bytes) {
                if let Some(&(o, _)) = recs.iter().find(|&&(_, rt)| rt == t) {
                    return Ok(Some(TimestampOffset {
                        timestamp: t,
                        offset: o,
                    }));
                }
            }
        }
        Ok(Some(TimestampOffset {
            timestamp: t,
            offset: h.last_offset(),
        }))
    }

    /// fsyncs all unflushed segments and indexes and advances the recovery point to the log end.
    pub fn flush(&self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let segs = self.segments.read().clone();
        let rp = self.recovery_point();
        for (i, s) in segs.iter().enumerate() {
            let end = segs.get(i + 1).map(|n| n.base_offset).unwrap_or(i64::MAX);
            if end > rp {
                s.flush()?;
            }
        }
        self.recovery_point.fetch_max(leo, Ordering::AcqRel);
        self.unflushed_messages.store(0, Ordering::Release);
        self.last_flush_ms.store(now_ms(), Ordering::Release);
        Ok(())
    }

    /// Flushes if `flush_interval_ms` elapsed since the last flush and there is unflushed data.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool, LogError> {
        let interval = self.config.read().flush_interval_ms;
        let last = self.last_flush_ms.load(Ordering::Acquire);
        if now_ms.saturating_sub(last) >= interval && self.log_end_offset() > self.recovery_point()
        {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Removes every record at and after `offset`. The cut happens at the start of the batch holding
    /// `offset`, so if `offset` falls inside a batch the new log end is that batch's base offset.
    /// Truncating below the first segment empties the log and restarts it at `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::Corrupt(format!(
                "cannot truncate to negative offset {offset}"
            )));
        }
        let mut st = self.append.lock();
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let interval = self.config.read().index_interval_bytes;
        let segs = self.segments.read().clone();
        let first_base = segs.first().map(|s| s.base_offset).unwrap_or(0);
        if offset < first_base {
            return self.reset_locked(&mut st, offset);
        }
        let keep = segs
            .iter()
            .rposition(|s| s.base_offset <= offset)
            .unwrap_or(0);
        let removed: Vec<Arc<Segment>> = segs[keep + 1..].to_vec();
        let target = segs[keep].clone();
        self.segments.write().truncate(keep + 1);
        for s in &removed {
            s.delete_files()?;
        }
        let pos = target.find_batch(offset)?.map(|(p, _)| p);
        let new_leo = match pos {
            Some(p) => target.truncate_to_position(p, interval)?.next_offset,
            None => target.next_offset(),
        };
        self.log_end_offset.store(new_leo, Ordering::Release);
        if self.log_start_offset() > new_leo {
            self.log_start_offset.store(new_leo, Ordering::Release);
        }
        self.recovery_point.fetch_min(new_leo, Ordering::AcqRel);
        self.first_dirty_offset.fetch_min(new_leo, Ordering::AcqRel);
        self.epochs.write().truncate_from_end(new_leo)?;
        // Producer state = newest snapshot at or below the new end + replay of the batches kept,
        // so batches cut away are forgotten (a retry of one is appended again, not deduplicated).
        let snapshots = producer_state::list_snapshots(&self.dir)?;
        let (producers, _) = self.load_producer_state(new_leo, &[], snapshots)?;
        st.producers = producers;
        // Guards were handed out against the state cut away.
        st.verification.clear_all();
        tracing::info!(partition = %self.tp, offset, log_end = new_leo, "truncated log");
        Ok(())
    }

    /// Kafka's truncateFullyAndStartAt: removes every segment and restarts the log, empty, at
    /// `offset` (log start = log end = `offset`, whether below or above the current log end).
    /// Producer state, its snapshots and the leader epoch cache are cleared. A follower uses it when
    /// its fetch offset is out of the leader's range (e.g. below the leader's log start).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::Corrupt(format!(
                "cannot restart the log at negative offset {offset}"
            )));
        }
        let mut st = self.append.lock();
        self.reset_locked(&mut st, offset)
    }

    /// Replaces all segments by one empty segment at `offset`; the append lock is held.
    fn reset_locked(&self, st: &mut AppendState, offset: i64) -> Result<(), LogError> {
        let segs = self.segments.read().clone();
        // Old files go first: the new segment may have the same base offset. Readers keep their
        // open handles to the old files.
        for s in &segs {
            s.delete_files()?;
        }
        let idx = self.config.read().segment_index_bytes;
        let fresh = Arc::new(Segment::create(&self.dir, offset, idx, now_ms())?);
        *self.segments.write() = vec![fresh];
        self.log_start_offset.store(offset, Ordering::Release);
        self.log_end_offset.store(offset, Ordering::Release);
        self.recovery_point.store(offset, Ordering::Release);
        self.first_dirty_offset.store(offset, Ordering::Release);
        self.unflushed_messages.store(0, Ordering::Release);
        producer_state::delete_snapshots_above(&self.dir, -1)?;
        st.producers = ProducerState::default();
        st.verification.clear_all();
        *self.unstable.lock() = UnstableTxns::default();
        self.epochs.write().clear()?;
        tracing::info!(partition = %self.tp, offset, "truncated fully");
        Ok(())
    }

    /// Applies Kafka's segment deletion rules; returns the number of segments deleted: segments
    /// wholly below the log start offset (whatever the cleanup policy, as Kafka's
    /// `deleteLogStartOffsetBreachedSegments`), then time and size retention. The log start offset
    /// moves to the first remaining segment's base offset if that is above it. Files are deleted
    /// right away (`file_delete_delay_ms` is ignored).
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let below_start = self.delete_segments_below_log_start()?;
        let cfg = self.config.read().clone();
        // Kafka applies time and size retention only when the policy includes `delete`.
        if !cfg.cleanup_policy.delete() || (cfg.retention_ms < 0 && cfg.retention_bytes < 0) {
            return Ok(below_start);
        }
        let mut st = self.append.lock();
        let segs = self.segments.read().clone();
        let n = segs.len();
        let leo = self.log_end_offset();
        let hw = match self.high_watermark.load(Ordering::Acquire) {
            h if h >= 0 => h.min(leo),
            _ => leo,
        };
        // Kafka: never the empty active segment, and only segments wholly below the high watermark.
        let deletable = |i: usize, s: &Segment| {
            let upper = segs.get(i + 1).map(|x| x.base_offset).unwrap_or(leo);
            !(i == n - 1 && s.size() == 0) && upper <= hw
        };
        let mut count = 0usize;
        if cfg.retention_ms >= 0 {
            while count < n
                && deletable(count, &segs[count])
                && now_ms.saturating_sub(segs[count].largest_timestamp()) > cfg.retention_ms
            {
                count += 1;
            }
        }
        if cfg.retention_bytes >= 0 {
            let total: i64 = segs[count..].iter().map(|s| s.size() as i64).sum();
            let mut diff = total - cfg.retention_bytes;
            while count < n && deletable(count, &segs[count]) {
                let sz = segs[count].size() as i64;
                if diff - sz >= 0 {
                    diff -= sz;
                    count += 1;
                } else {
                    break;
                }
            }
        }
        if count == 0 {
            return Ok(below_start);
        }
        if count == n {
            // Deleting everything: start a new empty active segment first, as Kafka does.
            let active = segs[n - 1].clone();
            self.roll(active, leo, now_ms, "retention", &st.producers)?;
        }
        self.remove_head_segments_locked(&mut st, count)?;
        st.producers.expire(now_ms, cfg.producer_id_expiration_ms);
        st.verification
            .expire(now_ms, cfg.producer_id_expiration_ms);
        tracing::info!(partition = %self.tp, deleted = count, log_start = self.log_start_offset(),
            "retention deleted segments");
        Ok(below_start + count)
    }

    /// Removes the first `count` segments (never all of them); the append lock is held. The log
    /// start offset moves up to the first remaining segment, the leader epoch cache is cut there,
    /// and producers whose data is all gone are forgotten (Kafka's truncateHead).
    fn remove_head_segments_locked(
        &self,
        st: &mut AppendState,
        count: usize,
    ) -> Result<(), LogError> {
        let gone: Vec<Arc<Segment>> = {
            let mut w = self.segments.write();
            let count = count.min(w.len().saturating_sub(1));
            w.drain(..count).collect()
        };
        let new_start = self
            .segments
            .read()
            .first()
            .map(|s| s.base_offset)
            .unwrap_or_else(|| self.log_end_offset());
        self.log_start_offset.fetch_max(new_start, Ordering::AcqRel);
        for s in &gone {
            s.delete_files()?;
        }
        let lso = self.log_start_offset();
        self.epochs.write().truncate_from_start(lso)?;
        st.producers
            .producers
            .retain(|_, e| e.batches.back().is_some_and(|b| b.last_offset >= lso));
        st.producers.rebuild_ongoing();
        let mut u = self.unstable.lock();
        u.first_ongoing = st.producers.first_ongoing_offset();
        u.unreplicated.retain(|_, last| *last >= lso);
        Ok(())
    }

    /// Kafka's `maybeIncrementLogStartOffset`: moves the log start offset up to `offset` (records
    /// below it are no longer served: reads below answer `OffsetOutOfRange`, ListOffsets earliest
    /// answers it). The start may fall inside a segment, even inside a batch. `high_watermark` is
    /// the replica's: the start never passes it (`BeyondHighWatermark`). Returns whether the start
    /// moved (an offset at or below it changes nothing). The leader epoch cache is cut at the new
    /// start; segments are not deleted here but by [`PartitionLog::delete_segments_below_log_start`],
    /// so that the caller can make the new start durable first
    /// (`LogManager::checkpoint_log_start_offsets`).
    pub fn increment_log_start_offset(
        &self,
        offset: i64,
        high_watermark: i64,
    ) -> Result<bool, LogStartError> {
        let _st = self.append.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_err().into());
        }
        let high_watermark = high_watermark.min(self.log_end_offset());
        if offset > high_watermark {
            return Err(LogStartError::BeyondHighWatermark {
                offset,
                high_watermark,
            });
        }
        if offset <= self.log_start_offset() {
            return Ok(false);
        }
        self.log_start_offset.store(offset, Ordering::Release);
        self.epochs.write().truncate_from_start(offset)?;
        tracing::info!(partition = %self.tp, log_start = offset, "incremented log start offset");
        Ok(true)
    }

    /// Deletes the segments wholly below the log start offset (those whose next segment starts at
    /// or below it; the active segment always stays, as in Kafka). Returns how many were deleted.
    pub fn delete_segments_below_log_start(&self) -> Result<usize, LogError> {
        let mut st = self.append.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        let lso = self.log_start_offset();
        let count = {
            let segs = self.segments.read();
            segs.windows(2)
                .take_while(|w| w[1].base_offset <= lso)
                .count()
        };
        if count == 0 {
            return Ok(0);
        }
        self.remove_head_segments_locked(&mut st, count)?;
        tracing::info!(partition = %self.tp, deleted = count, log_start = lso,
            "deleted segments below the log start offset");
        Ok(count)
    }

    /// Sets the high watermark used to bound retention: segments holding offsets at or beyond it are
    /// never deleted. Until set, the log end offset is the bound.
    pub fn set_high_watermark(&self, hw: i64) {
        self.high_watermark.store(hw, Ordering::Release);
    }

    /// Forgets producers idle for longer than `producer_id_expiration_ms`, and verification
    /// guards created that long ago.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let exp = self.config.read().producer_id_expiration_ms;
        let mut st = self.append.lock();
        st.verification.expire(now_ms, exp);
        st.producers.expire(now_ms, exp)
    }

    /// Number of producer-state snapshots written by this instance (tests, metrics).
    pub fn snapshots_written(&self) -> usize {
        self.snapshots_written.load(Ordering::Relaxed)
    }

    /// Clean close: seal the active segment (final time index entry), flush, write the producer
    /// state snapshot at the log end. Further appends fail.
    pub(crate) fn close(&self) -> Result<(), LogError> {
        let st = self.append.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.active()?.seal()?;
        self.flush()?;
        self.write_snapshot_locked(&st.producers, self.log_end_offset())?;
        Ok(())
    }

    /// Rolls the active segment at the log end (tests).
    #[cfg(test)]
    pub(crate) fn roll_for_test(&self) {
        let st = self.append.lock();
        let active = self.active().unwrap();
        self.roll(
            active,
            self.log_end_offset(),
            now_ms(),
            "test",
            &st.producers,
        )
        .unwrap();
    }

    /// Marks the log closed without flushing (partition deletion).
    pub(crate) fn mark_closed(&self) {
        let _st = self.append.lock();
        self.closed.store(true, Ordering::Release);
    }
}
