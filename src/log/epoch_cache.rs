//! Leader epoch cache (KIP-101 / KIP-279): for every leader epoch that wrote to this log, the offset
//! of its first batch. Entries are strictly increasing in both epoch and start offset. It answers
//! OffsetForLeaderEpoch ("where does epoch E end in this log?"), which a follower uses to find the
//! point where its log diverges from the leader's.
//!
//! Persisted as Kafka's `leader-epoch-checkpoint` text file in the partition directory: a version
//! line `0`, a count line, then one `epoch startOffset` line per entry. Every change is written
//! atomically (tmp file, fsync, rename, fsync of the directory), and new entries are written before
//! the data they describe, so the file never lacks an entry of the data on disk; entries beyond the
//! log end (a crash after the file write) are cut at the next open.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::util::durable::write_atomically;

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's UNDEFINED_EPOCH.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One epoch and the offset of its first batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The cache; `path: None` keeps it in memory only (tests, rebuild before the first write).
#[derive(Debug, Default)]
pub struct LeaderEpochCache {
    path: Option<PathBuf>,
    /// Strictly increasing in epoch and start offset.
    entries: Vec<EpochEntry>,
    /// What the file holds, when known (read at open or last written): `flush` skips the write
    /// when the entries equal it, so reopening a partition and re-assigning the epoch it already
    /// recorded writes nothing.
    persisted: Option<Vec<EpochEntry>>,
    /// The file still holds entries cut in memory when the log was opened (at or beyond its end,
    /// below its start): the next `assign` writes it, so no data is appended while the file
    /// holds an entry the data contradicts.
    stale: bool,
}

/// Outcome of reading a checkpoint file.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckpointRead {
    Missing,
    Damaged(String),
    Entries(Vec<EpochEntry>),
}

/// Reads and validates `leader-epoch-checkpoint` (syntax, count, strict monotonicity, no negative
/// values). I/O errors other than "not found" are returned as errors.
pub fn read_checkpoint(path: &Path) -> io::Result<CheckpointRead> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointRead::Missing),
        Err(e) => return Err(e),
    };
    Ok(match parse(&text) {
        Ok(v) => CheckpointRead::Entries(v),
        Err(why) => CheckpointRead::Damaged(why),
    })
}

fn parse(bytes: &[u8]) -> Result<Vec<EpochEntry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err("unsupported version line".into());
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("bad count line")?;
    let mut out: Vec<EpochEntry> = Vec::with_capacity(count.min(1 << 12));
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than declared")?;
        let mut parts = line.split_whitespace();
        let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("malformed entry {line:?}"));
        };
        let epoch: i32 = e.parse().map_err(|_| format!("bad epoch {e:?}"))?;
        let start_offset: i64 = o.parse().map_err(|_| format!("bad offset {o:?}"))?;
        if epoch < 0 || start_offset < 0 {
            return Err(format!("negative entry {line:?}"));
        }
        if let Some(prev) = out.last() {
            if epoch <= prev.epoch || start_offset <= prev.start_offset {
                return Err(format!("entry {line:?} is not after {prev:?}"));
            }
        }
        out.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more entries than declared".into());
    }
    Ok(out)
}

/// Writes the entries atomically in Kafka's format.
pub fn write_checkpoint(path: &Path, entries: &[EpochEntry]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for e in entries {
        text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    write_atomically(path, text.as_bytes())
}

impl LeaderEpochCache {
    /// An in-memory cache (nothing is written).
    pub fn in_memory(entries: Vec<EpochEntry>) -> LeaderEpochCache {
        LeaderEpochCache {
            path: None,
            entries,
            persisted: None,
            stale: false,
        }
    }

    /// A cache backed by `{dir}/leader-epoch-checkpoint` holding `entries` (not written here).
    pub fn with_file(dir: &Path, entries: Vec<EpochEntry>) -> LeaderEpochCache {
        LeaderEpochCache {
            path: Some(dir.join(LEADER_EPOCH_CHECKPOINT)),
            entries,
            persisted: None,
            stale: false,
        }
    }

    /// Records that the file holds `entries` (as just read), so a `flush` of the same entries
    /// writes nothing. A missing file may be recorded as holding no entries: both mean "no
    /// epoch recorded" once the log has been scanned for epochs.
    pub fn set_persisted(&mut self, entries: Vec<EpochEntry>) {
        self.persisted = Some(entries);
    }

    /// Marks the file as holding entries that were cut in memory only (see `stale`).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Writes the file unless it already holds these entries (no-op for an in-memory cache).
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        if self.persisted.as_deref() != Some(&self.entries[..]) {
            // Unknown until the write succeeds (a failed write may have left either content).
            self.persisted = None;
            write_checkpoint(p, &self.entries)?;
            self.persisted = Some(self.entries.clone());
        }
        self.stale = false;
        Ok(())
    }

    /// Kafka's `assign` without the file write: records that `epoch` starts at `start_offset`.
    /// Nothing changes when the latest entry has the same epoch and a start offset <= the given one
    /// (a later batch of the current epoch). Otherwise every entry from the end whose epoch >=
    /// `epoch` or whose start offset >= `start_offset` is removed (they conflict with the new entry)
    /// and the new entry appended. Negative epochs or offsets are ignored (Kafka refuses them; Odradek
    /// stores batches without an epoch, e.g. written by old clients' paths, without an entry).
    /// Returns whether the cache changed.
    pub fn assign_in_memory(&mut self, epoch: i32, start_offset: i64) -> bool {
        if !self.would_change(epoch, start_offset) {
            return false;
        }
        let mut removed = Vec::new();
        while let Some(l) = self.entries.last() {
            if l.epoch >= epoch || l.start_offset >= start_offset {
                removed.push(*l);
                self.entries.pop();
            } else {
                break;
            }
        }
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|r| r.start_offset != start_offset)
        {
            tracing::warn!(
                epoch,
                start_offset,
                ?removed,
                "new leader epoch entry truncated conflicting entries"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Whether `assign(epoch, start_offset)` would change the cache or write a stale file (cheap:
    /// lets callers check under a read lock first, as appends of the current epoch never change
    /// it).
    pub fn needs_assign(&self, epoch: i32, start_offset: i64) -> bool {
        self.stale || self.would_change(epoch, start_offset)
    }

    fn would_change(&self, epoch: i32, start_offset: i64) -> bool {
        epoch >= 0
            && start_offset >= 0
            && self
                .entries
                .last()
                .is_none_or(|l| l.epoch != epoch || start_offset < l.start_offset)
    }

    /// `assign_in_memory` plus a synchronous file write when the cache changed (as Kafka's assign).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<bool> {
        let changed = self.assign_in_memory(epoch, start_offset);
        if changed || self.stale {
            self.flush()?;
        }
        Ok(changed)
    }

    /// Kafka's `endOffsetFor`: (epoch, end offset) for `requested_epoch`.
    /// - UNDEFINED_EPOCH (-1) → (-1, -1);
    /// - the latest epoch → (latest, `log_end_offset`);
    /// - no epoch above the requested one (newer than the latest, or an empty cache) → (-1, -1);
    /// - older than the earliest entry → (requested, start offset of the earliest entry);
    /// - otherwise → (largest epoch <= requested, start offset of the first epoch > requested).
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if requested_epoch == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested_epoch);
        let Some(higher) = higher else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        let floor = self
            .entries
            .iter()
            .rev()
            .find(|e| e.epoch <= requested_epoch);
        match floor {
            None => (requested_epoch, higher.start_offset),
            Some(f) => (f.epoch, higher.start_offset),
        }
    }

    /// Removes the entries with start offset >= `end_offset` (log truncation). Returns whether the
    /// cache changed; does not write the file.
    pub fn truncate_from_end_in_memory(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// `truncate_from_end_in_memory` plus a file write when the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<bool> {
        let changed = self.truncate_from_end_in_memory(end_offset);
        if changed {
            self.flush()?;
        }
        Ok(changed)
    }

    /// Log start offset advance (Kafka's truncateFromStart): the entries with start offset <=
    /// `start_offset` are removed and the last of them comes back with `start_offset` as its start;
    /// an entry starting exactly at `start_offset` is thus kept. Does not write the file.
    pub fn truncate_from_start_in_memory(&mut self, start_offset: i64) -> bool {
        if start_offset < 0 {
            return false;
        }
        let n = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        if n == 0 {
            return false;
        }
        let last_removed = self.entries[n - 1];
        let changed = n > 1 || last_removed.start_offset != start_offset;
        self.entries.drain(..n);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: last_removed.epoch,
                start_offset,
            },
        );
        changed
    }

    /// `truncate_from_start_in_memory` plus a file write when the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> io::Result<bool> {
        let changed = self.truncate_from_start_in_memory(start_offset);
        if changed {
            self.flush()?;
        }
        Ok(changed)
    }

    /// Removes every entry (full truncation) and writes the file.
    pub fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|x| (x.epoch, x.start_offset))
            .collect()
    }

    #[test]
    fn assign_ordering_rules() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign_in_memory(0, 0));
        // Later batches of the current epoch: no change.
        assert!(!c.assign_in_memory(0, 5));
        assert!(!c.assign_in_memory(0, 0));
        assert!(c.assign_in_memory(2, 10));
        assert!(c.assign_in_memory(4, 20));
        assert_eq!(pairs(&c), vec![(0, 0), (2, 10), (4, 20)]);
        // Negative values are ignored.
        assert!(!c.assign_in_memory(-1, 30));
        assert!(!c.assign_in_memory(5, -1));
        // Same epoch, lower start offset: replaces the entry.
        assert!(c.assign_in_memory(4, 15));
        assert_eq!(pairs(&c), vec![(0, 0), (2, 10), (4, 15)]);
        // New epoch with a start offset below existing entries: those entries go.
        assert!(c.assign_in_memory(5, 10));
        assert_eq!(pairs(&c), vec![(0, 0), (5, 10)]);
        // An older epoch at a later offset removes the newer epochs (Kafka's rule).
        assert!(c.assign_in_memory(3, 40));
        assert_eq!(pairs(&c), vec![(0, 0), (3, 40)]);
        // Both older epoch and lower offset: removes back to the first monotonic entry.
        assert!(c.assign_in_memory(1, 0));
        assert_eq!(pairs(&c), vec![(1, 0)]);
        assert_eq!(c.latest_epoch(), Some(1));
    }

    #[test]
    fn end_offset_for_cases() {
        let c = LeaderEpochCache::in_memory(vec![e(2, 10), e(4, 20), e(7, 35)]);
        let leo = 50;
        // UNDEFINED
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, leo), (-1, -1));
        // Older than the earliest: requested epoch with the earliest start offset.
        assert_eq!(c.end_offset_for(1, leo), (1, 10));
        assert_eq!(c.end_offset_for(0, leo), (0, 10));
        // Equal to an entry: the next entry's start.
        assert_eq!(c.end_offset_for(2, leo), (2, 20));
        assert_eq!(c.end_offset_for(4, leo), (4, 35));
        // Between entries: the floor epoch, the next entry's start.
        assert_eq!(c.end_offset_for(3, leo), (2, 20));
        assert_eq!(c.end_offset_for(6, leo), (4, 35));
        // The latest: the log end offset.
        assert_eq!(c.end_offset_for(7, leo), (7, 50));
        // Newer than the latest: undefined.
        assert_eq!(c.end_offset_for(8, leo), (-1, -1));
        // Empty cache.
        let empty = LeaderEpochCache::default();
        assert_eq!(empty.end_offset_for(0, leo), (-1, -1));
        assert_eq!(empty.end_offset_for(-1, leo), (-1, -1));
    }

    #[test]
    fn truncate_from_end_and_start() {
        let mut c = LeaderEpochCache::in_memory(vec![e(1, 0), e(2, 10), e(4, 20), e(5, 30)]);
        assert!(!c.truncate_from_end_in_memory(31));
        assert!(c.truncate_from_end_in_memory(30));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 10), (4, 20)]);
        assert!(c.truncate_from_end_in_memory(15));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 10)]);
        assert!(!c.truncate_from_end_in_memory(-1));

        let mut c = LeaderEpochCache::in_memory(vec![e(1, 0), e(2, 10), e(4, 20), e(5, 30)]);
        // Below the first entry: nothing.
        assert!(!c.truncate_from_start_in_memory(-1));
        // Exactly at an entry's start: earlier entries go, that one stays.
        assert!(c.truncate_from_start_in_memory(10));
        assert_eq!(pairs(&c), vec![(2, 10), (4, 20), (5, 30)]);
        assert!(!c.truncate_from_start_in_memory(10));
        // Inside an epoch: that epoch now starts at the new log start.
        assert!(c.truncate_from_start_in_memory(25));
        assert_eq!(pairs(&c), vec![(4, 25), (5, 30)]);
        // Beyond the last entry's start: only the latest remains, moved.
        assert!(c.truncate_from_start_in_memory(40));
        assert_eq!(pairs(&c), vec![(5, 40)]);
    }

    #[test]
    fn file_round_trip_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(LEADER_EPOCH_CHECKPOINT);
        assert_eq!(read_checkpoint(&p).unwrap(), CheckpointRead::Missing);
        let mut c = LeaderEpochCache::with_file(d.path(), Vec::new());
        c.assign(0, 0).unwrap();
        c.assign(3, 100).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "0\n2\n0 0\n3 100\n");
        assert_eq!(
            read_checkpoint(&p).unwrap(),
            CheckpointRead::Entries(vec![e(0, 0), e(3, 100)])
        );
        c.truncate_from_end(100).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "0\n1\n0 0\n");
        c.clear().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "0\n0\n");
        for bad in [
            "",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 x\n",
            "0\n1\n0 0 0\n",
            "0\n2\n1 10\n1 20\n",
            "0\n2\n1 10\n2 10\n",
            "0\n1\n-1 0\n",
            "0\n1\n0 0\n5 5\n",
        ] {
            fs::write(&p, bad).unwrap();
            assert!(
                matches!(read_checkpoint(&p).unwrap(), CheckpointRead::Damaged(_)),
                "{bad:?}"
            );
        }
    }
}
