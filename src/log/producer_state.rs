//! Idempotent-producer state (Kafka's ProducerStateManager / ProducerAppendInfo, without transactions):
//! per producer id the epoch, the metadata of its last 5 batches and its last timestamp; snapshots in
//! `{offset:020}.snapshot` files (own binary format, CRC-32C protected).

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::error::AppendError;
use crate::util::durable::write_atomically;

/// Kafka keeps the metadata of this many batches per producer for duplicate detection.
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"ODPS";
const SNAPSHOT_VERSION: u8 = 1;
const ENTRY_FIXED: usize = 8 + 2 + 8 + 1;
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
}

impl ProducerEntry {
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
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerState {
    pub producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
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

    /// Replays a stored batch header (loading), without checks.
    pub fn replay(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let e = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: -1,
            });
        e.add_batch(h, h.base_offset, h.last_offset());
    }

    /// Forgets producers idle for at least `expiration_ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.producers.len() * (ENTRY_FIXED + 5 * BATCH_META));
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
        if &body[..4] != SNAPSHOT_MAGIC || body[4] != SNAPSHOT_VERSION {
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
                },
            );
        }
        if r.p != body.len() {
            return None;
        }
        Some((ProducerState { producers }, offset))
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
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if stem.len() == 20 {
                if let Ok(o) = stem.parse::<i64>() {
                    out.push(o);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
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
    for o in list_snapshots(dir)? {
        if o > offset {
            fs::remove_file(snapshot_path(dir, o))?;
        }
    }
    Ok(())
}

/// The newest readable snapshot at or below `max_offset`: (state, offset). Damaged ones are removed.
pub(crate) fn load_latest(dir: &Path, max_offset: i64) -> io::Result<Option<(ProducerState, i64)>> {
    let snaps = list_snapshots(dir)?;
    for o in snaps.into_iter().rev() {
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
            s.replay(&h);
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
        assert_eq!(load_latest(dir.path(), 8).unwrap().unwrap().1, 5);
        fs::write(snapshot_path(dir.path(), 9), b"junk").unwrap();
        assert_eq!(load_latest(dir.path(), 100).unwrap().unwrap().1, 5);
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![5]);
    }

    #[test]
    fn expiry() {
        let mut s = ProducerState::default();
        let b = TestBatch::new(1, 1000).idempotent(1, 0, 0).build();
        s.replay(&BatchHeader::parse(&b).unwrap());
        assert_eq!(s.expire(1500, 1000), 0);
        assert_eq!(s.expire(2000, 1000), 1);
        assert!(s.producers.is_empty());
    }
}
