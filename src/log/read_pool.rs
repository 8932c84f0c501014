//! Reusable buffers for segment reads (fetch).
//!
//! A fetch reads up to `partition_max_bytes` (1 MiB by default) per partition into a buffer that
//! the response then shares with the socket write. Allocating that buffer fresh per fetch costs a
//! memset (or, for large allocations, page faults on freshly mapped, kernel-zeroed pages, and an
//! munmap afterwards). Buffers taken from this pool go back to it when the last `Bytes` referring
//! to them is dropped (once the response is written), so steady consumption reuses memory that
//! is already mapped and initialised: no allocation, no zeroing, no page faults per fetch.

use std::fs::File;
use std::io;
use std::sync::LazyLock;

use bytes::Bytes;
use parking_lot::Mutex;

use super::segment::pread_full;

/// Buffers kept for reuse (one consumer of 6 partitions holds 6 at a time).
const MAX_POOLED: usize = 8;
/// Larger buffers (reads of one huge batch) are freed rather than kept.
const MAX_POOLED_BYTES: usize = 2 << 20;

static POOL: LazyLock<ReadPool> = LazyLock::new(|| ReadPool::new(MAX_POOLED, MAX_POOLED_BYTES));

/// A bounded stack of initialised buffers.
pub(crate) struct ReadPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
    max_buffer_bytes: usize,
}

impl ReadPool {
    pub(crate) fn new(max_buffers: usize, max_buffer_bytes: usize) -> ReadPool {
        ReadPool {
            free: Mutex::new(Vec::with_capacity(max_buffers)),
            max_buffers,
            max_buffer_bytes,
        }
    }

    /// A buffer of at least `len` initialised bytes: a pooled one if any (grown if needed, which
    /// zeroes only the growth), else a new zeroed one.
    fn take(&self, len: usize) -> Vec<u8> {
        let pooled = self.free.lock().pop();
        match pooled {
            Some(mut buf) => {
                if buf.len() < len {
                    buf.resize(len, 0);
                }
                buf
            }
            None => vec![0u8; len],
        }
    }

    /// Keeps `buf` for reuse unless the pool is full or the buffer is too large to keep.
    fn give(&self, buf: Vec<u8>) {
        if buf.len() > self.max_buffer_bytes {
            return;
        }
        let mut free = self.free.lock();
        if free.len() < self.max_buffers {
            free.push(buf);
        }
    }

    /// Buffers currently kept.
    #[cfg(test)]
    fn pooled(&self) -> usize {
        self.free.lock().len()
    }
}

/// A pool buffer lent to a `Bytes`; returns to the pool on drop.
struct Lent {
    buf: Vec<u8>,
    pool: &'static ReadPool,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Reads up to `len` bytes at `pos` (fewer at end of file) into a buffer of the process-wide
/// pool; the buffer returns to the pool when the returned `Bytes` and all its clones are dropped.
pub(crate) fn read_at(file: &File, len: usize, pos: u64) -> io::Result<Bytes> {
    read_at_with(&POOL, file, len, pos)
}

fn read_at_with(pool: &'static ReadPool, file: &File, len: usize, pos: u64) -> io::Result<Bytes> {
    let mut buf = pool.take(len);
    let n = match pread_full(file, &mut buf[..len], pos) {
        Ok(n) => n,
        Err(e) => {
            pool.give(buf);
            return Err(e);
        }
    };
    let mut bytes = Bytes::from_owner(Lent { buf, pool });
    bytes.truncate(n);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(data: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data).unwrap();
        let f = File::open(&path).unwrap();
        (dir, f)
    }

    #[test]
    fn reads_what_is_there_and_stops_at_end_of_file() {
        static P: LazyLock<ReadPool> = LazyLock::new(|| ReadPool::new(2, 1 << 20));
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (_d, f) = file_with(&data);
        assert_eq!(read_at_with(&P, &f, 100, 17).unwrap(), &data[17..117]);
        assert_eq!(read_at_with(&P, &f, 5_000, 9_000).unwrap(), &data[9_000..]);
        assert!(read_at_with(&P, &f, 10, 20_000).unwrap().is_empty());
        assert!(read_at_with(&P, &f, 0, 0).unwrap().is_empty());
    }

    #[test]
    fn buffers_return_when_the_last_clone_is_dropped_and_are_reused() {
        static P: LazyLock<ReadPool> = LazyLock::new(|| ReadPool::new(2, 1 << 20));
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
        let (_d, f) = file_with(&data);
        let a = read_at_with(&P, &f, 4096, 0).unwrap();
        let part = a.slice(10..20);
        drop(a);
        assert_eq!(P.pooled(), 0, "a slice still holds the buffer");
        assert_eq!(part, &data[10..20]);
        drop(part);
        assert_eq!(P.pooled(), 1);
        // Reused: a shorter read into the same (longer, stale) buffer shows only what was read.
        let b = read_at_with(&P, &f, 100, 4000).unwrap();
        assert_eq!(P.pooled(), 0);
        assert_eq!(b, &data[4000..]);
        let c = read_at_with(&P, &f, 4096, 0).unwrap();
        let d = read_at_with(&P, &f, 4096, 0).unwrap();
        let e = read_at_with(&P, &f, 4096, 0).unwrap();
        drop((b, c, d, e));
        assert_eq!(P.pooled(), 2, "the pool keeps at most its bound");
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        static P: LazyLock<ReadPool> = LazyLock::new(|| ReadPool::new(4, 1024));
        let (_d, f) = file_with(&[1u8; 4096]);
        drop(read_at_with(&P, &f, 4096, 0).unwrap());
        assert_eq!(P.pooled(), 0);
        drop(read_at_with(&P, &f, 1000, 0).unwrap());
        assert_eq!(P.pooled(), 1);
    }
}
