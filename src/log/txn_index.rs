//! The aborted-transaction index of a segment (Kafka's `TransactionIndex`, file
//! `{base:020}.txnindex`): one 34-byte entry per transaction aborted by a marker in the segment,
//! `[i16 version 0][i64 producer id][i64 first offset][i64 last offset][i64 last stable offset]`,
//! big endian, in marker order. The file is created with its first entry (segments without
//! aborted transactions have none), kept in memory as well, cut by truncation, rebuilt by
//! recovery and deleted with its segment.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Size of one entry on disk.
pub(crate) const ENTRY_SIZE: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction (Kafka's `AbortedTxn`): the producer, the offsets of its first record
/// and of its ABORT marker, and the log's last stable offset right after the abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// Decodes one entry; `None` for a short slice or an unknown version.
    pub fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let b = b.get(..ENTRY_SIZE)?;
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        if i16::from_be_bytes([b[0], b[1]]) != VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The index of one segment: its entries in memory, appended to the file as they come.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Appended to since the last fsync.
    dirty: bool,
}

pub(crate) fn txn_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}{TXN_INDEX_SUFFIX}"))
}

impl TxnIndex {
    /// An empty index whose file does not exist yet (a new segment); a leftover file is removed.
    pub fn create(path: PathBuf) -> io::Result<TxnIndex> {
        remove_if_exists(&path)?;
        Ok(TxnIndex {
            path,
            entries: Vec::new(),
            dirty: false,
        })
    }

    /// Loads the file (missing = empty). Returns the index and whether the file was damaged (a
    /// partial entry, an unknown version, or last offsets going back): the caller then recovers
    /// the segment, which rebuilds it.
    pub fn load(path: PathBuf) -> io::Result<(TxnIndex, bool)> {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut damaged = bytes.len() % ENTRY_SIZE != 0;
        let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            match AbortedTxn::decode(chunk) {
                Some(e)
                    if entries
                        .last()
                        .is_none_or(|l| e.last_offset >= l.last_offset) =>
                {
                    entries.push(e)
                }
                _ => {
                    damaged = true;
                    break;
                }
            }
        }
        let index = TxnIndex {
            path,
            entries,
            dirty: false,
        };
        Ok((index, damaged))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Appends an entry (file created on the first one). Last offsets never go back (Kafka's
    /// check): such an entry is refused.
    pub fn append(&mut self, e: AbortedTxn) -> io::Result<()> {
        if let Some(last) = self.entries.last() {
            if e.last_offset < last.last_offset {
                return Err(io::Error::other(format!(
                    "aborted transaction ending at {} appended after one ending at {}",
                    e.last_offset, last.last_offset
                )));
            }
        }
        let at = (self.entries.len() * ENTRY_SIZE) as u64;
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.path)?;
        f.set_len(at)?;
        std::os::unix::fs::FileExt::write_all_at(&f, &e.encode(), at)?;
        self.entries.push(e);
        self.dirty = true;
        Ok(())
    }

    /// Drops the entries whose last offset is at or beyond `offset` (log truncation).
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .entries
            .iter()
            .position(|e| e.last_offset >= offset)
            .unwrap_or(self.entries.len());
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.rewrite()
    }

    /// Replaces every entry (recovery rebuilt them from the segment's markers).
    pub fn replace(&mut self, entries: Vec<AbortedTxn>) -> io::Result<()> {
        if entries == self.entries && (!entries.is_empty() || !self.path.exists()) {
            return Ok(());
        }
        self.entries = entries;
        self.rewrite()
    }

    fn rewrite(&mut self) -> io::Result<()> {
        if self.entries.is_empty() {
            self.dirty = false;
            return remove_if_exists(&self.path);
        }
        let mut f = File::create(&self.path)?;
        let mut buf = Vec::with_capacity(self.entries.len() * ENTRY_SIZE);
        for e in &self.entries {
            buf.extend_from_slice(&e.encode());
        }
        f.write_all(&buf)?;
        self.dirty = true;
        Ok(())
    }

    /// The path to fsync when the file was written since the last fsync (the mark is cleared:
    /// [`TxnIndex::mark_dirty`] again if the fsync fails).
    pub fn take_sync_path(&mut self) -> Option<PathBuf> {
        std::mem::take(&mut self.dirty).then(|| self.path.clone())
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    #[cfg(test)]
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Kafka's `collectAbortedTxns`: the entries with last offset >= `fetch_offset` and first
    /// offset < `upper`, added to `out`. Returns true when the search is complete (an entry's
    /// last stable offset reached `upper`: later segments cannot hold a qualifying entry).
    pub fn collect(&self, fetch_offset: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper {
                out.push(*e);
            }
            if e.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }
}

/// fsyncs an index file (a missing one: nothing to sync).
pub(crate) fn sync_file(p: &Path) -> io::Result<()> {
    match File::open(p) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_bytes_are_kafkas() {
        let e = txn(0x0102, 5, 9, 10);
        let b = e.encode();
        let mut want = vec![0u8, 0];
        for v in [0x0102i64, 5, 9, 10] {
            want.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(b.to_vec(), want);
        assert_eq!(AbortedTxn::decode(&b), Some(e));
        let mut bad = b;
        bad[1] = 1;
        assert_eq!(AbortedTxn::decode(&bad), None);
    }

    #[test]
    fn file_round_trip_truncation_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = txn_index_path(dir.path(), 100);
        assert!(path.ends_with("00000000000000000100.txnindex"));
        let mut idx = TxnIndex::create(path.clone()).unwrap();
        assert!(!path.exists(), "no file before the first entry");
        idx.append(txn(1, 100, 105, 100)).unwrap();
        idx.append(txn(2, 101, 110, 111)).unwrap();
        idx.append(txn(3, 112, 120, 121)).unwrap();
        assert!(idx.append(txn(4, 1, 119, 121)).is_err());
        assert!(idx.is_dirty());
        sync_file(&idx.take_sync_path().unwrap()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 3 * 34);
        let (loaded, damaged) = TxnIndex::load(path.clone()).unwrap();
        assert!(!damaged);
        assert_eq!(loaded.entries(), idx.entries());

        let mut out = Vec::new();
        assert!(idx.collect(106, 112, &mut out), "entry 3 reached the bound");
        assert_eq!(out, vec![txn(2, 101, 110, 111)]);
        out.clear();
        assert!(
            idx.collect(0, 111, &mut out),
            "an LSO reached the upper bound"
        );
        assert_eq!(out.len(), 2);

        idx.truncate_to(110).unwrap();
        assert_eq!(idx.entries(), &[txn(1, 100, 105, 100)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), 34);
        idx.truncate_to(0).unwrap();
        assert!(!path.exists());

        // A torn entry is damage: the valid prefix loads and the caller rebuilds.
        fs::write(
            &path,
            [txn(1, 1, 2, 3).encode().as_slice(), &[0u8; 7]].concat(),
        )
        .unwrap();
        let (loaded, damaged) = TxnIndex::load(path.clone()).unwrap();
        assert!(damaged);
        assert_eq!(loaded.entries().len(), 1);
        let (empty, damaged) = TxnIndex::load(txn_index_path(dir.path(), 7)).unwrap();
        assert!(!damaged && empty.entries().is_empty());
    }
}
