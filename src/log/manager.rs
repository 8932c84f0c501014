//! The log manager of one log directory: opens partition logs, keeps the recovery-point and
//! log-start-offset checkpoints, runs retention and time-based flushes, and handles clean shutdown.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::checkpoint::{
    read_checkpoint, write_checkpoint, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
};
use super::cleaner::{CleanerConfig, CleanerStats};
use super::config::LogConfig;
use super::error::LogError;
use super::partition::PartitionLog;
use super::volume::VolumeSpace;
use super::TopicPartition;
use crate::util::durable;

/// Marker written last by a clean shutdown; its presence at startup means indexes can be trusted.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const DELETE_DIR_SUFFIX: &str = "-delete";
/// Stripes of the open/delete lock: partitions in different stripes open concurrently.
const OPEN_LOCK_STRIPES: usize = 64;

/// Threads closing partition logs at shutdown: enough to overlap their fsyncs, bounded so a
/// shutdown does not spawn a thread per partition.
const CLOSE_THREADS: usize = 8;

/// Whether `e` is the process (EMFILE) or system (ENFILE) running out of file descriptors.
pub fn is_fd_exhaustion(e: &LogError) -> bool {
    matches!(e, LogError::Io(io) if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
}

/// How often start-up progress is logged while partition logs are opened.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Which of the partitions found on disk at start-up are not open yet.
#[derive(Debug)]
struct StartupProgress {
    total: usize,
    pending: HashSet<TopicPartition>,
    last_report: Instant,
}

impl StartupProgress {
    /// Partitions open and found at start-up, when a progress line is due at `now` (some are
    /// still to open and the last line is [`PROGRESS_INTERVAL`] old); the line counts as written.
    fn due(&mut self, now: Instant) -> Option<(usize, usize)> {
        if self.pending.is_empty()
            || now.saturating_duration_since(self.last_report) < PROGRESS_INTERVAL
        {
            return None;
        }
        self.last_report = now;
        Some((self.total - self.pending.len(), self.total))
    }
}

pub struct LogManager {
    dir: PathBuf,
    logs: RwLock<HashMap<TopicPartition, Arc<PartitionLog>>>,
    /// Serializes opening/deleting a partition, striped by partition (never held by appends or
    /// reads), so different partitions open in parallel.
    open_locks: Vec<Mutex<()>>,
    /// Opening a partition failed for lack of file descriptors (EMFILE/ENFILE).
    fd_exhausted: AtomicBool,
    /// Checkpoint values read at startup (kept for partitions not opened yet).
    recovery_points: Mutex<HashMap<TopicPartition, i64>>,
    log_starts: Mutex<HashMap<TopicPartition, i64>>,
    had_clean_shutdown: bool,
    /// Partitions on disk that have not been opened (recovered) since an unclean shutdown.
    dirty: Mutex<HashSet<TopicPartition>>,
    checkpoint_lock: Mutex<()>,
    /// First dirty offsets of compacted partitions (`cleaner-offset-checkpoint`), including
    /// partitions not opened yet.
    cleaner_checkpoints: Mutex<HashMap<TopicPartition, i64>>,
    cleaner_config: RwLock<CleanerConfig>,
    /// Partitions whose cleaning failed (corrupt data): skipped by `run_cleaner` until reopened,
    /// like Kafka's uncleanable partitions.
    uncleanable: Mutex<HashSet<TopicPartition>>,
    /// Start-up progress: partitions found on disk and not opened yet.
    startup: Mutex<StartupProgress>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("dir", &self.dir)
            .field("had_clean_shutdown", &self.had_clean_shutdown)
            .finish()
    }
}

fn read_checkpoint_lenient(path: &Path) -> Result<HashMap<TopicPartition, i64>, LogError> {
    match read_checkpoint(path) {
        Ok(m) => Ok(m),
        Err(LogError::Corrupt(why)) => {
            tracing::warn!(%why, "ignoring damaged checkpoint file; affected logs are fully recovered");
            Ok(HashMap::new())
        }
        Err(e) => Err(e),
    }
}

impl LogManager {
    /// Creates the dir if missing, reads the recovery-point and log-start-offset checkpoints, notes
    /// and removes the clean-shutdown marker, removes leftover `-delete` directories. Does not open
    /// partitions.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Arc<LogManager>, LogError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let recovery_points = read_checkpoint_lenient(&dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let log_starts = read_checkpoint_lenient(&dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        let cleaner_checkpoints = read_checkpoint_lenient(&dir.join(CLEANER_OFFSET_CHECKPOINT))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let had_clean_shutdown = marker.exists();
        // Partitions that were not cleanly closed even though the directory was shut down cleanly
        // (never opened during a run that itself started after a crash). Odradek lists them in the
        // marker, one directory name a line; Kafka's marker is empty, meaning all clean.
        let mut dirty: HashSet<TopicPartition> = HashSet::new();
        if had_clean_shutdown {
            let text = fs::read(&marker).unwrap_or_default();
            for line in String::from_utf8_lossy(&text).lines() {
                match TopicPartition::parse_dir_name(line.trim()) {
                    Some(tp) => {
                        dirty.insert(tp);
                    }
                    None if line.trim().is_empty() => {}
                    None => tracing::warn!(line, "ignoring unknown line in clean shutdown marker"),
                }
            }
            fs::remove_file(&marker)?;
            durable::sync_dir(&dir)?;
        } else {
            // Everything on disk is suspect until opened (and recovered) in this run.
            for e in fs::read_dir(&dir)? {
                let e = e?;
                if let Some(tp) = e
                    .file_name()
                    .to_str()
                    .and_then(TopicPartition::parse_dir_name)
                {
                    dirty.insert(tp);
                }
            }
        }
        let mut on_disk = HashSet::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let name = e.file_name();
            let name = name.to_str();
            if name.is_some_and(|n| n.ends_with(DELETE_DIR_SUFFIX)) {
                fs::remove_dir_all(e.path())?;
            } else if let Some(tp) = name.and_then(TopicPartition::parse_dir_name) {
                on_disk.insert(tp);
            }
        }
        tracing::info!(dir = %dir.display(), clean = had_clean_shutdown, "opened log directory");
        Ok(Arc::new(LogManager {
            dir,
            logs: RwLock::new(HashMap::new()),
            open_locks: (0..OPEN_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            fd_exhausted: AtomicBool::new(false),
            recovery_points: Mutex::new(recovery_points),
            log_starts: Mutex::new(log_starts),
            had_clean_shutdown,
            dirty: Mutex::new(dirty),
            checkpoint_lock: Mutex::new(()),
            cleaner_checkpoints: Mutex::new(cleaner_checkpoints),
            cleaner_config: RwLock::new(CleanerConfig::default()),
            uncleanable: Mutex::new(HashSet::new()),
            startup: Mutex::new(StartupProgress {
                total: on_disk.len(),
                pending: on_disk,
                last_report: Instant::now(),
            }),
        }))
    }

    /// At most every [`PROGRESS_INTERVAL`] while partitions found on disk at start-up are still
    /// being opened: how many are open, and which one is being recovered, if any. Cheap: one
    /// clock read per partition opened.
    fn report_progress(&self, recovering: Option<&TopicPartition>) {
        let Some((opened, total)) = self.startup.lock().due(Instant::now()) else {
            return;
        };
        match recovering {
            Some(tp) => tracing::info!(
                partition = %tp,
                "opening partition logs: {opened}/{total} open; recovering {tp} (not shut down cleanly)"
            ),
            None => tracing::info!("opening partition logs: {opened}/{total} open"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open_lock(&self, tp: &TopicPartition) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        tp.hash(&mut h);
        self.open_locks[(h.finish() as usize) % self.open_locks.len()].lock()
    }

    /// Whether opening a partition failed because the process or the system ran out of file
    /// descriptors (each open partition keeps its active segment's log file open).
    pub fn fd_exhausted(&self) -> bool {
        self.fd_exhausted.load(Ordering::Relaxed)
    }

    /// Whether the previous run ended with a clean shutdown.
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    /// Opens (recovering if needed) or creates a partition log; returns the existing one if open.
    pub fn open_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        tp.validate()?;
        let _g = self.open_lock(tp);
        if let Some(l) = self.logs.read().get(tp) {
            return Ok(l.clone());
        }
        let dir = self.dir.join(tp.dir_name());
        let rp = self.recovery_points.lock().get(tp).copied();
        let ls = self.log_starts.lock().get(tp).copied();
        let clean = self.had_clean_shutdown && !self.dirty.lock().contains(tp);
        if !clean {
            self.report_progress(Some(tp));
        }
        let log = match PartitionLog::open(tp.clone(), dir, config, clean, rp, ls) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                if is_fd_exhaustion(&e) {
                    self.fd_exhausted.store(true, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        let was_pending = self.startup.lock().pending.remove(tp);
        if was_pending {
            self.report_progress(None);
        }
        if let Some(o) = self.cleaner_checkpoints.lock().get(tp) {
            log.set_cleaner_checkpoint(*o);
        }
        self.dirty.lock().remove(tp);
        self.logs.write().insert(tp.clone(), log.clone());
        Ok(log)
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.logs.read().get(tp).cloned()
    }

    /// Partition directories found on disk (opened or not).
    pub fn partitions_on_disk(&self) -> Result<Vec<TopicPartition>, LogError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(tp) = TopicPartition::parse_dir_name(name) {
                out.push(tp);
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn open_partitions(&self) -> Vec<(TopicPartition, Arc<PartitionLog>)> {
        let mut v: Vec<_> = self
            .logs
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Closes the partition and removes its directory (renamed to `<dir>.<counter>-delete` first).
    pub fn delete_partition(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let _g = self.open_lock(tp);
        if let Some(log) = self.logs.write().remove(tp) {
            log.mark_closed();
        }
        self.recovery_points.lock().remove(tp);
        self.dirty.lock().remove(tp);
        self.log_starts.lock().remove(tp);
        self.cleaner_checkpoints.lock().remove(tp);
        self.uncleanable.lock().remove(tp);
        let dir = self.dir.join(tp.dir_name());
        let target = self.dir.join(format!(
            "{}.{}{DELETE_DIR_SUFFIX}",
            tp.dir_name(),
            uuid::Uuid::new_v4().simple()
        ));
        match durable::rename(&dir, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        durable::sync_dir(&self.dir)?;
        fs::remove_dir_all(&target)?;
        tracing::info!(partition = %tp, "deleted partition log");
        Ok(())
    }

    pub fn update_config(&self, tp: &TopicPartition, config: LogConfig) {
        if let Some(l) = self.get(tp) {
            l.set_config(config);
        }
    }

    /// Applies time and size retention to every open partition; returns segments deleted.
    /// Checkpoints the new log start offsets when anything was deleted.
    pub fn run_retention(&self, now_ms: i64) -> usize {
        let mut total = 0;
        for (tp, log) in self.open_partitions() {
            match log.apply_retention(now_ms) {
                Ok(n) => total += n,
                Err(e) => tracing::warn!(partition = %tp, error = %e, "retention failed"),
            }
            log.expire_producers(now_ms);
        }
        if total > 0 {
            if let Err(e) = self.checkpoint() {
                tracing::warn!(error = %e, "checkpoint after retention failed");
            }
        }
        total
    }

    /// Flushes partitions whose `flush_interval_ms` elapsed.
    pub fn flush_due(&self, now_ms: i64) {
        for (tp, log) in self.open_partitions() {
            if let Err(e) = log.flush_if_due(now_ms) {
                tracing::warn!(partition = %tp, error = %e, "flush failed");
            }
        }
    }

    /// Writes the recovery-point and log-start-offset checkpoint files atomically.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let _g = self.checkpoint_lock.lock();
        let mut rps = self.recovery_points.lock().clone();
        for (tp, log) in self.open_partitions() {
            rps.insert(tp, log.recovery_point());
        }
        write_checkpoint(&self.dir.join(RECOVERY_POINT_CHECKPOINT), &rps)?;
        self.write_log_starts_locked()?;
        self.write_cleaner_checkpoint_locked()?;
        Ok(())
    }

    /// Writes `log-start-offset-checkpoint` now (durably: it is fsynced and renamed into place).
    /// A moved log start (DeleteRecords, or a follower taking its leader's) is written with it
    /// before it is acknowledged, so a crash cannot bring deleted records back. Values are read
    /// under the checkpoint lock, so a later write never holds older values than an earlier one.
    pub fn checkpoint_log_start_offsets(&self) -> Result<(), LogError> {
        let _g = self.checkpoint_lock.lock();
        self.write_log_starts_locked()
    }

    fn write_log_starts_locked(&self) -> Result<(), LogError> {
        let mut starts = self.log_starts.lock().clone();
        for (tp, log) in self.open_partitions() {
            starts.insert(tp, log.log_start_offset());
        }
        write_checkpoint(&self.dir.join(LOG_START_OFFSET_CHECKPOINT), &starts)
    }

    /// Total and usable bytes of the volume the log directory is on.
    pub fn volume_space(&self) -> io::Result<VolumeSpace> {
        VolumeSpace::of(&self.dir)
    }

    fn write_cleaner_checkpoint_locked(&self) -> Result<(), LogError> {
        let mut cps = self.cleaner_checkpoints.lock();
        for (tp, log) in self.open_partitions() {
            let o = log.cleaner_checkpoint();
            if o >= 0 {
                cps.insert(tp, o);
            }
        }
        write_checkpoint(&self.dir.join(CLEANER_OFFSET_CHECKPOINT), &cps)
    }

    /// Writes `cleaner-offset-checkpoint` (the first dirty offset of every compacted partition).
    pub fn write_cleaner_checkpoint(&self) -> Result<(), LogError> {
        let _g = self.checkpoint_lock.lock();
        self.write_cleaner_checkpoint_locked()
    }

    pub fn cleaner_config(&self) -> CleanerConfig {
        self.cleaner_config.read().clone()
    }

    /// Sets the cleaner settings used by later `run_cleaner` calls.
    pub fn set_cleaner_config(&self, c: CleanerConfig) {
        *self.cleaner_config.write() = c;
    }

    /// One log cleaner iteration (Kafka's LogCleanerManager.grabFilthiestCompactedLog + one
    /// clean): among open partitions whose policy includes `compact`, cleans the one with the
    /// highest dirty ratio above its `min_cleanable_dirty_ratio`, or whose oldest dirty segment is
    /// older than `max_compaction_lag_ms`; failing that, one whose retained tombstones reached their
    /// delete horizon. Then writes `cleaner-offset-checkpoint`. Meant to be called periodically
    /// from a blocking background task; `partition: None` in the result means nothing was due.
    pub fn run_cleaner(&self, now_ms: i64) -> CleanerStats {
        let ccfg = self.cleaner_config();
        let mut best: Option<(f64, Arc<PartitionLog>)> = None;
        let mut tombstones: Option<Arc<PartitionLog>> = None;
        let skip = self.uncleanable.lock().clone();
        for (tp, log) in self.open_partitions() {
            if skip.contains(&tp) {
                continue;
            }
            let Some(c) = log.cleanable(now_ms) else {
                continue;
            };
            let min_ratio = log.config().min_cleanable_dirty_ratio;
            let due = c.dirty_bytes > 0 && (c.must_clean || c.ratio > min_ratio);
            if due {
                if best.as_ref().is_none_or(|(r, _)| c.ratio > *r) {
                    best = Some((c.ratio, log));
                }
            } else if c.tombstones_due && tombstones.is_none() {
                tombstones = Some(log);
            }
        }
        let Some(log) = best.map(|(_, l)| l).or(tombstones) else {
            return CleanerStats::default();
        };
        let stats = match log.clean(now_ms, &ccfg) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(partition = %log.topic_partition(), error = %e,
                    "log cleaning failed; partition marked uncleanable");
                self.uncleanable
                    .lock()
                    .insert(log.topic_partition().clone());
                return CleanerStats::default();
            }
        };
        if stats.partition.is_some() {
            if let Err(e) = self.write_cleaner_checkpoint() {
                tracing::warn!(error = %e, "writing the cleaner checkpoint failed");
            }
        }
        stats
    }

    /// Closes every open partition log on [`CLOSE_THREADS`] threads (each close may fsync the
    /// active segment and write a producer snapshot); returns the first error.
    fn close_all(&self) -> Option<LogError> {
        let logs = self.open_partitions();
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<LogError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..CLOSE_THREADS.min(logs.len()) {
                scope.spawn(|| {
                    while let Some((tp, log)) = logs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = log.close() {
                            tracing::error!(partition = %tp, error = %e, "closing partition log failed");
                            first_err.lock().get_or_insert(e);
                        }
                    }
                });
            }
        });
        first_err.into_inner()
    }

    /// Clean shutdown: close (flush + producer snapshot) every partition, write the checkpoints, then
    /// the fsynced `.kafka_cleanshutdown` marker. The marker is not written if anything failed.
    pub fn shutdown(&self) -> Result<(), LogError> {
        if let Some(e) = self.close_all() {
            return Err(e);
        }
        self.checkpoint()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let mut dirty: Vec<String> = self
            .dirty
            .lock()
            .iter()
            .filter(|tp| self.dir.join(tp.dir_name()).is_dir())
            .map(|tp| tp.dir_name())
            .collect();
        dirty.sort();
        let text: String = dirty.iter().map(|d| format!("{d}\n")).collect();
        durable::write_atomically(&marker, text.as_bytes())?;
        tracing::info!(dir = %self.dir.display(), "log directory shut down cleanly");
        Ok(())
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn progress_is_due_every_interval_until_every_partition_is_open() {
        let t0 = Instant::now();
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("b", 0);
        let mut p = StartupProgress {
            total: 2,
            pending: [a.clone(), b.clone()].into_iter().collect(),
            last_report: t0,
        };
        assert_eq!(p.due(t0 + Duration::from_secs(1)), None);
        p.pending.remove(&a);
        assert_eq!(p.due(t0 + PROGRESS_INTERVAL), Some((1, 2)));
        assert_eq!(p.due(t0 + PROGRESS_INTERVAL + Duration::from_secs(1)), None);
        assert_eq!(p.due(t0 + PROGRESS_INTERVAL * 2), Some((1, 2)));
        p.pending.remove(&b);
        assert_eq!(p.due(t0 + PROGRESS_INTERVAL * 10), None, "all open: quiet");
    }

    #[test]
    fn partitions_on_disk_at_open_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t-0", "t-1", "u-0", "gone-0.abc-delete"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        let m = LogManager::open(dir.path()).unwrap();
        assert_eq!(m.startup.lock().total, 3);
        m.open_partition(&TopicPartition::new("t", 1), LogConfig::default())
            .unwrap();
        assert_eq!(m.startup.lock().pending.len(), 2);
        m.open_partition(&TopicPartition::new("new", 0), LogConfig::default())
            .unwrap();
        assert_eq!(
            m.startup.lock().pending.len(),
            2,
            "a new partition is not counted"
        );
    }
}
