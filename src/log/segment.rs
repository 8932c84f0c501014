//! One log segment: `{base:020}.log` plus its offset and time indexes and its aborted-transaction
//! index (`txn_index`).
//!
//! The log file is written with positioned writes by the single appender; readers use positioned reads
//! bounded by the published `size`, so they never wait for an append.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::batch::{self, BatchHeader, HEADER_SIZE};
use super::index::{OffsetIndex, TimeIndex};
use super::read_pool;
use super::txn_index::{self, txn_index_path, TxnIndex};
use crate::util::clock::now_ms;
use crate::util::durable;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

pub(crate) fn file_name(base: i64, suffix: &str) -> String {
    format!("{base:020}{suffix}")
}

/// Mutable per-segment metadata (indexes and timestamps), behind a short lock.
#[derive(Debug)]
pub(crate) struct SegMeta {
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Aborted transactions whose ABORT marker is in this segment (`.txnindex`).
    pub txn_index: TxnIndex,
    /// Largest batch maxTimestamp seen, -1 if none.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    pub bytes_since_index: usize,
    /// maxTimestamp of the first batch (time-based rolling), loaded lazily.
    pub first_batch_timestamp: Option<i64>,
    pub created_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    file: File,
    size: AtomicU64,
    next_offset: AtomicI64,
    /// The log file was written or cut since its last fsync. Set after a write and before the new
    /// size (and so the log end offset) is published, cleared just before an fsync.
    log_dirty: AtomicBool,
    pub meta: Mutex<SegMeta>,
}

/// Result of a full scan of a segment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScanResult {
    pub truncated_bytes: u64,
    pub next_offset: i64,
    pub batches: u64,
}

/// Reads exactly `buf.len()` bytes at `pos` unless EOF; returns how many were read.
pub(crate) fn pread_full(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl Segment {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(file_name(self.base_offset, LOG_SUFFIX))
    }

    /// Creates a new empty segment (truncating any leftover files of that name).
    pub fn create(dir: &Path, base: i64, index_bytes: usize, now_ms: i64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(dir.join(file_name(base, LOG_SUFFIX)))?;
        let index =
            OffsetIndex::create(dir.join(file_name(base, INDEX_SUFFIX)), base, index_bytes)?;
        let time_index = TimeIndex::create(
            dir.join(file_name(base, TIME_INDEX_SUFFIX)),
            base,
            index_bytes,
        )?;
        let txn_index = TxnIndex::create(txn_index_path(dir, base))?;
        Ok(Segment {
            base_offset: base,
            dir: dir.to_path_buf(),
            file,
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base),
            log_dirty: AtomicBool::new(true),
            meta: Mutex::new(SegMeta {
                index,
                time_index,
                txn_index,
                max_timestamp: -1,
                offset_of_max_timestamp: base,
                bytes_since_index: 0,
                first_batch_timestamp: None,
                created_ms: now_ms,
            }),
        })
    }

    /// Opens an existing segment trusting its indexes if they pass the sanity checks.
    /// Returns the segment and whether its indexes were unusable (the caller must then `recover` it).
    pub fn open(dir: &Path, base: i64, index_bytes: usize) -> io::Result<(Segment, bool)> {
        let log_path = dir.join(file_name(base, LOG_SUFFIX));
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let md = file.metadata()?;
        let size = md.len();
        let created_ms = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or_else(now_ms);
        let ipath = dir.join(file_name(base, INDEX_SUFFIX));
        let tpath = dir.join(file_name(base, TIME_INDEX_SUFFIX));
        let loaded_index = OffsetIndex::load(ipath.clone(), base, index_bytes, size)?;
        let loaded_time = TimeIndex::load(tpath.clone(), base, index_bytes, size)?;
        let (txn_index, txn_damaged) = TxnIndex::load(txn_index_path(dir, base))?;
        let damaged = loaded_index.is_none() || loaded_time.is_none() || txn_damaged;
        let index = match loaded_index {
            Some(i) => i,
            None => OffsetIndex::create(ipath, base, index_bytes)?,
        };
        let time_index = match loaded_time {
            Some(t) => t,
            None => TimeIndex::create(tpath, base, index_bytes)?,
        };
        let (max_timestamp, offset_of_max_timestamp) =
            time_index.last_entry().unwrap_or((-1, base));
        Ok((
            Segment {
                base_offset: base,
                dir: dir.to_path_buf(),
                file,
                size: AtomicU64::new(size),
                next_offset: AtomicI64::new(base),
                log_dirty: AtomicBool::new(false),
                meta: Mutex::new(SegMeta {
                    index,
                    time_index,
                    txn_index,
                    max_timestamp,
                    offset_of_max_timestamp,
                    bytes_since_index: 0,
                    first_batch_timestamp: None,
                    created_ms,
                }),
            },
            damaged,
        ))
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn set_next_offset(&self, o: i64) {
        self.next_offset.store(o, Ordering::Release)
    }

    pub fn read_header(&self, pos: u64) -> io::Result<Option<BatchHeader>> {
        let mut buf = [0u8; HEADER_SIZE];
        let n = pread_full(&self.file, &mut buf, pos)?;
        Ok(if n < HEADER_SIZE {
            None
        } else {
            BatchHeader::parse(&buf)
        })
    }

    /// Reads up to `len` bytes at `pos` (fewer at end of file) into a reused buffer (see
    /// `read_pool`): no allocation, zeroing or page faults in the steady state.
    pub fn read_bytes(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        read_pool::read_at(&self.file, len, pos)
    }

    /// Walks batch headers from `pos` to the published size, calling `f(pos, header, size)`; stops when
    /// `f` returns false or at the first structurally broken header. Only structure is checked.
    pub fn walk_headers(
        &self,
        mut pos: u64,
        mut f: impl FnMut(u64, &BatchHeader, usize) -> bool,
    ) -> io::Result<()> {
        // Headers are read through a 16 KiB window, refilled when a header crosses its end, so a
        // walk costs one read per window rather than one per batch.
        const WINDOW: usize = 16 * 1024;
        let end = self.size();
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = 0u64;
        while pos + HEADER_SIZE as u64 <= end {
            if pos < buf_start || pos + HEADER_SIZE as u64 > buf_start + buf.len() as u64 {
                let want = ((end - pos) as usize).min(WINDOW);
                buf.resize(want, 0);
                let n = pread_full(&self.file, &mut buf, pos)?;
                buf.truncate(n);
                buf_start = pos;
                if n < HEADER_SIZE {
                    break;
                }
            }
            let Some(h) = BatchHeader::parse(&buf[(pos - buf_start) as usize..]) else {
                break;
            };
            let Ok(sz) = batch::check_structure(&h, (end - pos) as usize) else {
                break;
            };
            if !f(pos, &h, sz) {
                break;
            }
            pos += sz as u64;
        }
        Ok(())
    }

    /// Start position and header of the first batch whose last offset is >= `offset`.
    pub fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let start = u64::from(self.meta.lock().index.lookup(offset).1);
        let mut found = None;
        self.walk_headers(start, |pos, h, _| {
            if h.last_offset() >= offset {
                found = Some((pos, *h));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Computes the next offset by walking from the last index entry (Kafka's readNextOffset).
    /// Returns false if the tail is not made of whole batches (the segment needs recovery).
    pub fn load_next_offset(&self) -> io::Result<bool> {
        let start = u64::from(self.meta.lock().index.last_position());
        let mut next = self.base_offset;
        let mut end = start;
        self.walk_headers(start, |pos, h, sz| {
            next = next.max(h.next_offset());
            end = pos + sz as u64;
            true
        })?;
        self.set_next_offset(next);
        let whole = end == self.size() || (start == 0 && self.size() == 0);
        let meta = self.meta.lock();
        if let Some((_, o)) = meta.time_index.last_entry() {
            if o >= next && self.size() > 0 {
                return Ok(false);
            }
        }
        Ok(whole)
    }

    /// maxTimestamp of the first batch (rolling by time), -1 if unknown.
    pub fn first_batch_timestamp(&self) -> io::Result<Option<i64>> {
        if let Some(t) = self.meta.lock().first_batch_timestamp {
            return Ok(Some(t));
        }
        if self.size() == 0 {
            return Ok(None);
        }
        let t = self.read_header(0)?.map(|h| h.max_timestamp);
        if let Some(t) = t {
            self.meta.lock().first_batch_timestamp = Some(t);
        }
        Ok(t)
    }

    /// Appends already validated and patched batches (`batches`: (position in buf, header, size)) at
    /// the end of the segment and updates the indexes. Publishes the new size last.
    pub fn append(
        &self,
        buf: &[u8],
        batches: &[(usize, BatchHeader, usize)],
        index_interval: usize,
    ) -> io::Result<()> {
        let start = self.size();
        // Marked after the write (even a failed one) so a flush racing with it either syncs it or
        // leaves the mark for the next flush; before the size is published, so a flush that sees
        // the new log end also sees the mark.
        let written = self.file.write_all_at(buf, start);
        self.log_dirty.store(true, Ordering::Release);
        written?;
        let mut meta = self.meta.lock();
        for (rel, h, sz) in batches {
            let pos = start + *rel as u64;
            if meta.first_batch_timestamp.is_none() && pos == 0 {
                meta.first_batch_timestamp = Some(h.max_timestamp);
            }
            if h.max_timestamp > meta.max_timestamp {
                meta.max_timestamp = h.max_timestamp;
                meta.offset_of_max_timestamp = h.last_offset();
            }
            if meta.bytes_since_index > index_interval && !meta.index.is_full() {
                meta.index.append(h.last_offset(), pos as u32)?;
                let (t, o) = (meta.max_timestamp, meta.offset_of_max_timestamp);
                meta.time_index.maybe_append(t, o, false)?;
                meta.bytes_since_index = 0;
            }
            meta.bytes_since_index += *sz;
        }
        drop(meta);
        if let Some((_, h, _)) = batches.last() {
            self.set_next_offset(h.next_offset());
        }
        self.size.store(start + buf.len() as u64, Ordering::Release);
        Ok(())
    }

    pub fn index_full(&self) -> bool {
        let m = self.meta.lock();
        m.index.is_full() || m.time_index.is_full()
    }

    /// Full scan: validates every batch (structure, CRC, offsets increasing and relative to base),
    /// rebuilds both indexes and truncates the file at the first invalid batch.
    pub fn recover(&self, index_interval: usize) -> io::Result<ScanResult> {
        let file_len = self.file.metadata()?.len();
        let mut pos = 0u64;
        let mut next = self.base_offset;
        let mut idx = Vec::new();
        let mut tidx: Vec<(i64, u32)> = Vec::new();
        let mut max_ts = -1i64;
        let mut off_max = self.base_offset;
        let mut since = 0usize;
        let mut first_ts = None;
        let mut batches = 0u64;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if pos + HEADER_SIZE as u64 > file_len {
                break;
            }
            let Some(h) = self.read_header(pos)? else {
                break;
            };
            let Ok(sz) = batch::check_structure(&h, (file_len - pos) as usize) else {
                break;
            };
            if h.base_offset < next
                || h.last_offset() - self.base_offset > i64::from(i32::MAX)
                || pos + sz as u64 > u64::from(u32::MAX)
            {
                break;
            }
            // CRC over bytes 21..end, streamed in bounded chunks.
            let mut crc = 0u32;
            let mut at = pos + batch::CRC_START as u64;
            let end = pos + sz as u64;
            let mut short = false;
            while at < end {
                let n = ((end - at) as usize).min(chunk.len());
                let got = pread_full(&self.file, &mut chunk[..n], at)?;
                if got < n {
                    short = true;
                    break;
                }
                crc = crc32c::crc32c_append(crc, &chunk[..n]);
                at += n as u64;
            }
            if short || crc != h.crc {
                break;
            }
            if first_ts.is_none() {
                first_ts = Some(h.max_timestamp);
            }
            if h.max_timestamp > max_ts {
                max_ts = h.max_timestamp;
                off_max = h.last_offset();
            }
            if since > index_interval {
                idx.push(((h.last_offset() - self.base_offset) as u32, pos as u32));
                if tidx.last().is_none_or(|&(t, _)| max_ts > t) {
                    tidx.push((max_ts, (off_max - self.base_offset) as u32));
                }
                since = 0;
            }
            since += sz;
            next = h.next_offset();
            pos = end;
            batches += 1;
        }
        if max_ts >= 0 && tidx.last().is_none_or(|&(t, _)| max_ts > t) {
            tidx.push((max_ts, (off_max - self.base_offset) as u32));
        }
        let truncated = file_len - pos;
        if truncated > 0 {
            self.file.set_len(pos)?;
        }
        // What was scanned may exist only in the page cache (the writer crashed before its fsync):
        // the next flush must sync it before the recovery point moves past it.
        self.log_dirty.store(true, Ordering::Release);
        let mut meta = self.meta.lock();
        meta.index.replace(idx)?;
        meta.time_index.replace(tidx)?;
        meta.max_timestamp = max_ts;
        meta.offset_of_max_timestamp = off_max;
        meta.bytes_since_index = since;
        meta.first_batch_timestamp = first_ts;
        drop(meta);
        self.size.store(pos, Ordering::Release);
        self.set_next_offset(next);
        Ok(ScanResult {
            truncated_bytes: truncated,
            next_offset: next,
            batches,
        })
    }

    /// Cuts the log file at `pos` and rebuilds the indexes from what remains; aborted
    /// transactions whose marker was cut leave the transaction index.
    pub fn truncate_to_position(&self, pos: u64, index_interval: usize) -> io::Result<ScanResult> {
        self.size.store(pos.min(self.size()), Ordering::Release);
        self.file.set_len(pos)?;
        let r = self.recover(index_interval)?;
        self.meta.lock().txn_index.truncate_to(r.next_offset)?;
        Ok(r)
    }

    /// fsyncs whichever of the log file and the two indexes were written since their last fsync;
    /// the metadata lock is not held during the fsyncs. Files nothing was written to are skipped,
    /// so flushing an idle segment costs no fsync.
    pub fn flush(&self) -> io::Result<()> {
        if self.log_dirty.swap(false, Ordering::AcqRel) {
            self.file
                .sync_data()
                .inspect_err(|_| self.log_dirty.store(true, Ordering::Release))?;
        }
        let (handles, txn) = {
            let mut m = self.meta.lock();
            (
                [
                    m.index.take_sync_handle()?,
                    m.time_index.take_sync_handle()?,
                ],
                m.txn_index.take_sync_path(),
            )
        };
        if let Some(p) = txn {
            txn_index::sync_file(&p).inspect_err(|_| self.meta.lock().txn_index.mark_dirty())?;
        }
        let [index, time_index] = handles;
        if let Some(f) = index {
            f.sync_all()
                .inspect_err(|_| self.meta.lock().index.mark_dirty())?;
        }
        if let Some(f) = time_index {
            f.sync_all()
                .inspect_err(|_| self.meta.lock().time_index.mark_dirty())?;
        }
        Ok(())
    }

    /// Whether any of the segment's files was written since its last fsync.
    #[cfg(test)]
    pub fn is_dirty(&self) -> bool {
        let m = self.meta.lock();
        self.log_dirty.load(Ordering::Acquire)
            || m.index.is_dirty()
            || m.time_index.is_dirty()
            || m.txn_index.is_dirty()
    }

    /// The segment stops being the active one: final time index entry, close index handles.
    pub fn seal(&self) -> io::Result<()> {
        let mut m = self.meta.lock();
        if m.max_timestamp >= 0 {
            let (t, o) = (m.max_timestamp, m.offset_of_max_timestamp);
            m.time_index.maybe_append(t, o, true)?;
        }
        m.index.sync()?;
        m.time_index.sync()?;
        m.index.close_handle();
        m.time_index.close_handle();
        Ok(())
    }

    pub fn set_index_bytes(&self, b: usize) {
        let mut m = self.meta.lock();
        m.index.set_max_bytes(b);
        m.time_index.set_max_bytes(b);
    }

    /// Largest timestamp for retention: max batch timestamp, or the file's mtime if none.
    pub fn largest_timestamp(&self) -> i64 {
        let m = self.meta.lock();
        if m.max_timestamp >= 0 {
            m.max_timestamp
        } else {
            self.file
                .metadata()
                .ok()
                .and_then(|md| md.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .unwrap_or(m.created_ms)
        }
    }

    /// Deletes the segment files: rename to `.deleted`, then remove. Open readers keep their handle.
    pub fn delete_files(&self) -> io::Result<()> {
        let (ip, tp, xp) = {
            let m = self.meta.lock();
            (
                m.index.path().to_path_buf(),
                m.time_index.path().to_path_buf(),
                m.txn_index.path().to_path_buf(),
            )
        };
        for p in [self.log_path(), ip, tp, xp] {
            let mut del = p.clone().into_os_string();
            del.push(DELETED_SUFFIX);
            match durable::rename(&p, Path::new(&del)) {
                Ok(()) => fs::remove_file(&del)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
