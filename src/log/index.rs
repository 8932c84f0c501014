//! Sparse offset index (`.index`) and time index (`.timeindex`), kept in memory and appended to
//! their files. File formats are Kafka's: offset index entries are (relative offset u32 BE, position
//! u32 BE); time index entries are (timestamp i64 BE, relative offset u32 BE).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub(crate) const OFFSET_ENTRY: usize = 8;
pub(crate) const TIME_ENTRY: usize = 12;

/// Raw entry file: appended lazily through a handle that is only open while the segment is active.
#[derive(Debug)]
struct EntryFile {
    path: PathBuf,
    file: Option<File>,
    /// Written since the last fsync (or since it was opened, for a file this process did not write).
    dirty: bool,
}

impl EntryFile {
    fn handle(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(io::Error::other("index file handle missing")),
        }
    }

    /// Refers to `path`, taken as durable as it is on disk (nothing written through this yet).
    fn existing(path: PathBuf) -> EntryFile {
        EntryFile {
            path,
            file: None,
            dirty: false,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.dirty = true;
        self.handle()?.write_all(bytes)
    }

    /// Replaces the whole file content.
    fn rewrite(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file = None;
        self.dirty = true;
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        f.write_all(bytes)?;
        drop(f);
        Ok(())
    }

    /// fsyncs the file if it was written since the last fsync.
    fn sync(&mut self) -> io::Result<()> {
        match self.take_sync_handle()? {
            Some(f) => f.sync_all().inspect_err(|_| self.dirty = true),
            None => Ok(()),
        }
    }

    /// A handle to fsync without holding any lock, `None` if the file was not written since the
    /// last fsync (or does not exist). Marks the file clean: a caller whose fsync fails must call
    /// `mark_dirty`.
    fn take_sync_handle(&mut self) -> io::Result<Option<File>> {
        if !self.dirty {
            return Ok(None);
        }
        let handle = match &self.file {
            Some(f) => f.try_clone().map(Some),
            None => match File::open(&self.path) {
                Ok(f) => Ok(Some(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        }?;
        self.dirty = false;
        Ok(handle)
    }
}

/// Reads a whole index file if its size is plausible (multiple of `entry`, at most `max_entries`).
/// `Ok(None)` means missing or implausible: the caller rebuilds.
fn read_entries_file(path: &Path, entry: usize, max_entries: usize) -> io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len % entry as u64 != 0 || len / entry as u64 > max_entries as u64 {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Ok(None);
    }
    Ok(Some(buf))
}

/// Offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    max_entries: usize,
    entries: Vec<(u32, u32)>,
    file: EntryFile,
}

impl OffsetIndex {
    /// An empty index; creates/truncates the file.
    pub fn create(path: PathBuf, base_offset: i64, max_bytes: usize) -> io::Result<Self> {
        let mut idx = OffsetIndex {
            base_offset,
            max_entries: (max_bytes / OFFSET_ENTRY).max(1),
            entries: Vec::new(),
            file: EntryFile::existing(path),
        };
        idx.file.rewrite(&[])?;
        Ok(idx)
    }

    /// Loads and sanity-checks the index file: entry size, strictly increasing offsets and positions,
    /// last position inside the log file. `Ok(None)` if missing or damaged.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        max_bytes: usize,
        log_size: u64,
    ) -> io::Result<Option<Self>> {
        // One entry per batch at most: a batch is at least 61 bytes.
        let plausible = (log_size / 61) as usize + 1;
        let Some(buf) = read_entries_file(&path, OFFSET_ENTRY, plausible)? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(buf.len() / OFFSET_ENTRY);
        for c in buf.chunks_exact(OFFSET_ENTRY) {
            let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            if let Some(&(lr, lp)) = entries.last() {
                if rel <= lr || pos <= lp {
                    return Ok(None);
                }
            }
            if u64::from(pos) >= log_size || rel > i32::MAX as u32 {
                return Ok(None);
            }
            entries.push((rel, pos));
        }
        Ok(Some(OffsetIndex {
            base_offset,
            max_entries: (max_bytes / OFFSET_ENTRY).max(1),
            entries,
            file: EntryFile::existing(path),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_entries = (max_bytes / OFFSET_ENTRY).max(1);
    }

    /// Appends (offset, position) if it is beyond the last entry.
    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let rel = (offset - self.base_offset) as u32;
        if let Some(&(lr, _)) = self.entries.last() {
            if rel <= lr {
                return Ok(());
            }
        }
        let mut e = [0u8; OFFSET_ENTRY];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.file.append(&e)?;
        self.entries.push((rel, position));
        Ok(())
    }

    /// Largest entry with offset <= `offset`, as (offset, position); (base, 0) if none.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let rel = offset - self.base_offset;
        let i = self.entries.partition_point(|&(r, _)| i64::from(r) <= rel);
        if i == 0 {
            (self.base_offset, 0)
        } else {
            let (r, p) = self.entries[i - 1];
            (self.base_offset + i64::from(r), p)
        }
    }

    pub fn last_position(&self) -> u32 {
        self.entries.last().map(|e| e.1).unwrap_or(0)
    }

    /// Replaces all entries (used by recovery) and rewrites the file.
    pub fn replace(&mut self, entries: Vec<(u32, u32)>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * OFFSET_ENTRY);
        for (r, p) in &entries {
            buf.extend_from_slice(&r.to_be_bytes());
            buf.extend_from_slice(&p.to_be_bytes());
        }
        self.file.rewrite(&buf)?;
        self.entries = entries;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    /// See `EntryFile::take_sync_handle`.
    pub fn take_sync_handle(&mut self) -> io::Result<Option<File>> {
        self.file.take_sync_handle()
    }

    /// The file must be fsynced again (a sync through `take_sync_handle` failed).
    pub fn mark_dirty(&mut self) {
        self.file.dirty = true;
    }

    /// Written since the last fsync.
    #[cfg(test)]
    pub fn is_dirty(&self) -> bool {
        self.file.dirty
    }

    /// Drops the append handle (segment became inactive).
    pub fn close_handle(&mut self) {
        self.file.file = None;
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    max_entries: usize,
    entries: Vec<(i64, u32)>,
    file: EntryFile,
}

impl TimeIndex {
    pub fn create(path: PathBuf, base_offset: i64, max_bytes: usize) -> io::Result<Self> {
        let mut idx = TimeIndex {
            base_offset,
            max_entries: (max_bytes / TIME_ENTRY).max(1),
            entries: Vec::new(),
            file: EntryFile::existing(path),
        };
        idx.file.rewrite(&[])?;
        Ok(idx)
    }

    /// Loads and sanity-checks: entry size, strictly increasing timestamps, non-decreasing offsets.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        max_bytes: usize,
        log_size: u64,
    ) -> io::Result<Option<Self>> {
        let plausible = (log_size / 61) as usize + 2;
        let Some(buf) = read_entries_file(&path, TIME_ENTRY, plausible)? else {
            return Ok(None);
        };
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(buf.len() / TIME_ENTRY);
        for c in buf.chunks_exact(TIME_ENTRY) {
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            let ts = i64::from_be_bytes(t);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            if let Some(&(lt, lr)) = entries.last() {
                if ts <= lt || rel < lr {
                    return Ok(None);
                }
            }
            if rel > i32::MAX as u32 {
                return Ok(None);
            }
            entries.push((ts, rel));
        }
        Ok(Some(TimeIndex {
            base_offset,
            max_entries: (max_bytes / TIME_ENTRY).max(1),
            entries,
            file: EntryFile::existing(path),
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_entries = (max_bytes / TIME_ENTRY).max(1);
    }

    /// Last entry as (timestamp, absolute offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// Appends (timestamp, offset) if the timestamp is larger than the last one's. Unless
    /// `skip_full_check`, nothing is appended to a full index.
    pub fn maybe_append(&mut self, ts: i64, offset: i64, skip_full_check: bool) -> io::Result<()> {
        if !skip_full_check && self.is_full() {
            return Ok(());
        }
        if let Some(&(lt, _)) = self.entries.last() {
            if ts <= lt {
                return Ok(());
            }
        }
        let rel = (offset - self.base_offset) as u32;
        let mut e = [0u8; TIME_ENTRY];
        e[..8].copy_from_slice(&ts.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.append(&e)?;
        self.entries.push((ts, rel));
        Ok(())
    }

    /// Largest entry with timestamp <= `ts`, as (timestamp, offset); (-1, base) if none.
    pub fn lookup(&self, ts: i64) -> (i64, i64) {
        let i = self.entries.partition_point(|&(t, _)| t <= ts);
        if i == 0 {
            (-1, self.base_offset)
        } else {
            let (t, r) = self.entries[i - 1];
            (t, self.base_offset + i64::from(r))
        }
    }

    pub fn replace(&mut self, entries: Vec<(i64, u32)>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * TIME_ENTRY);
        for (t, r) in &entries {
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&r.to_be_bytes());
        }
        self.file.rewrite(&buf)?;
        self.entries = entries;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    /// See `EntryFile::take_sync_handle`.
    pub fn take_sync_handle(&mut self) -> io::Result<Option<File>> {
        self.file.take_sync_handle()
    }

    /// The file must be fsynced again (a sync through `take_sync_handle` failed).
    pub fn mark_dirty(&mut self) {
        self.file.dirty = true;
    }

    /// Written since the last fsync.
    #[cfg(test)]
    pub fn is_dirty(&self) -> bool {
        self.file.dirty
    }

    pub fn close_handle(&mut self) {
        self.file.file = None;
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_append_lookup_reload() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.index");
        let mut idx = OffsetIndex::create(p.clone(), 100, 1024).unwrap();
        idx.append(110, 4000).unwrap();
        idx.append(120, 8000).unwrap();
        assert_eq!(idx.lookup(105), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4000));
        assert_eq!(idx.lookup(119), (110, 4000));
        assert_eq!(idx.lookup(500), (120, 8000));
        idx.close_handle();
        let again = OffsetIndex::load(p.clone(), 100, 1024, 9000)
            .unwrap()
            .unwrap();
        assert_eq!(again.entries, idx.entries);
        // position beyond the log file: damaged
        assert!(OffsetIndex::load(p.clone(), 100, 1024, 8000)
            .unwrap()
            .is_none());
        std::fs::write(&p, [1, 2, 3]).unwrap();
        assert!(OffsetIndex::load(p, 100, 1024, 9000).unwrap().is_none());
    }

    #[test]
    fn time_index_lookup_and_full() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.timeindex");
        let mut idx = TimeIndex::create(p.clone(), 0, 24).unwrap();
        idx.maybe_append(10, 5, false).unwrap();
        idx.maybe_append(10, 6, false).unwrap(); // not larger: ignored
        idx.maybe_append(20, 9, false).unwrap();
        assert!(idx.is_full());
        idx.maybe_append(30, 12, false).unwrap();
        assert_eq!(idx.last_entry(), Some((20, 9)));
        idx.maybe_append(30, 12, true).unwrap();
        assert_eq!(idx.lookup(5), (-1, 0));
        assert_eq!(idx.lookup(25), (20, 9));
        let again = TimeIndex::load(p, 0, 24, 10_000).unwrap().unwrap();
        assert_eq!(again.last_entry(), Some((30, 12)));
    }
}
