//! Response frames: the size prefix, the response header and the body, encoded by `kafka-protocol`
//! into a list of parts that is written to the socket with vectored writes.
//!
//! Large byte fields the caller names (a Fetch answer's record sets, read from the segment files)
//! become parts of their own, shared with the buffer they were read into instead of being copied
//! into the encoded frame. The bytes on the wire are exactly those of the copying encoder: a part
//! replaces a `put_slice` of the same memory, nothing else changes.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;

/// Why a response could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// `kafka-protocol` refused a value (e.g. a string longer than its length field allows).
    #[error("{0}")]
    Field(String),
    /// The encoder wrote a different number of bytes than it computed for the size prefix.
    #[error("encoded {written} bytes, size prefix says {declared}")]
    SizeMismatch { declared: usize, written: usize },
    /// The frame does not fit the 4-byte size prefix.
    #[error("response of {0} bytes is too large for a frame")]
    TooLarge(usize),
}

/// A size-prefixed response frame as a queue of non-empty parts. Implements [`Buf`], so
/// `write_all_buf` sends it with vectored writes and resumes correctly after a partial write.
/// It may carry a throttle: how long the connection reads no further request once it is sent
/// (an empty frame with a throttle: nothing is sent, the connection is only muted).
#[derive(Debug, Default, Clone)]
pub struct ResponseFrame {
    parts: VecDeque<Bytes>,
    remaining: usize,
    throttle: Option<std::time::Duration>,
}

impl ResponseFrame {
    /// A frame made of the given parts, in order (empty parts are dropped).
    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> ResponseFrame {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = parts.iter().map(Bytes::len).sum();
        ResponseFrame {
            parts,
            remaining,
            throttle: None,
        }
    }

    /// This frame, muting its connection for `throttle` once sent (Kafka's quota throttling).
    pub fn with_throttle(mut self, throttle: Option<std::time::Duration>) -> ResponseFrame {
        self.throttle = throttle;
        self
    }

    /// How long the connection is muted after this frame.
    pub fn throttle(&self) -> Option<std::time::Duration> {
        self.throttle
    }

    /// Number of parts left to write.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The remaining bytes as one contiguous buffer (copies unless there is a single part).
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts[0].clone(),
            _ => {
                let mut out = BytesMut::with_capacity(self.remaining);
                self.parts.iter().for_each(|p| out.extend_from_slice(p));
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(bytes: Bytes) -> ResponseFrame {
        ResponseFrame::from_parts([bytes])
    }
}

impl Buf for ResponseFrame {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |p| p.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        while let Some(front) = self.parts.front_mut() {
            if cnt < front.len() {
                front.advance(cnt);
                self.remaining -= cnt;
                return;
            }
            cnt -= front.len();
            self.remaining -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(&self.parts) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

/// Encodes `header` and `body` into a size-prefixed frame. Every slice of `shared` (at most one
/// per `put_slice` of the encoder, in encoding order) that the encoder writes verbatim becomes a
/// part of its own instead of being copied.
pub fn encode_frame<T: Encodable>(
    header: &ResponseHeader,
    header_version: i16,
    body: &T,
    version: i16,
    shared: &[Bytes],
) -> Result<ResponseFrame, EncodeError> {
    let field = |e: anyhow::Error| EncodeError::Field(e.to_string());
    let size = header.compute_size(header_version).map_err(field)?
        + body.compute_size(version).map_err(field)?;
    let prefix = i32::try_from(size).map_err(|_| EncodeError::TooLarge(size))?;
    let shared_len: usize = shared.iter().map(Bytes::len).sum();
    let mut buf = SplicingBuf::new(size.saturating_sub(shared_len) + 4, shared);
    buf.put_i32(prefix);
    header.encode(&mut buf, header_version).map_err(field)?;
    body.encode(&mut buf, version).map_err(field)?;
    if buf.broken {
        // The encoder moved back into bytes already handed over as parts: encode by copying.
        let mut out = BytesMut::with_capacity(size + 4);
        out.put_i32(prefix);
        header.encode(&mut out, header_version).map_err(field)?;
        body.encode(&mut out, version).map_err(field)?;
        return check_size(ResponseFrame::from(out.freeze()), size);
    }
    check_size(buf.finish(), size)
}

fn check_size(frame: ResponseFrame, size: usize) -> Result<ResponseFrame, EncodeError> {
    if frame.remaining() != size + 4 {
        return Err(EncodeError::SizeMismatch {
            declared: size,
            written: frame.remaining().saturating_sub(4),
        });
    }
    Ok(frame)
}

/// The encoder's output buffer: bytes go into `head`; a `put_slice` of the next `shared` slice
/// closes `head` as a part and appends that slice as a part.
struct SplicingBuf<'a> {
    head: BytesMut,
    parts: Vec<Bytes>,
    /// Bytes already moved into `parts`.
    flushed: usize,
    shared: &'a [Bytes],
    next_shared: usize,
    /// The encoder asked for bytes already moved into `parts` (only gap-based encoders do).
    broken: bool,
    scratch: Vec<u8>,
}

impl<'a> SplicingBuf<'a> {
    fn new(capacity: usize, shared: &'a [Bytes]) -> SplicingBuf<'a> {
        SplicingBuf {
            head: BytesMut::with_capacity(capacity),
            parts: Vec::with_capacity(2 * shared.len() + 1),
            flushed: 0,
            shared,
            next_shared: 0,
            broken: false,
            scratch: Vec::new(),
        }
    }

    /// The next shared slice if `src` is exactly its memory.
    fn take_shared(&mut self, src: &[u8]) -> Option<Bytes> {
        let candidate = self.shared.get(self.next_shared)?;
        if candidate.as_ptr() != src.as_ptr() || candidate.len() != src.len() {
            return None;
        }
        self.next_shared += 1;
        Some(candidate.clone())
    }

    fn close_head(&mut self) {
        if !self.head.is_empty() {
            let done = self.head.split().freeze();
            self.flushed += done.len();
            self.parts.push(done);
        }
    }

    fn finish(mut self) -> ResponseFrame {
        self.close_head();
        ResponseFrame::from_parts(self.parts)
    }
}

// SAFETY: every method delegates to `head`, a `BytesMut`, whose implementation upholds the
// trait's contract; `put_slice` either appends `src` to `head` or keeps a shared copy of `src`,
// never exposing uninitialised memory.
unsafe impl BufMut for SplicingBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of the chunk `head.chunk_mut()` returned.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.take_shared(src) {
            Some(part) => {
                self.close_head();
                self.flushed += part.len();
                self.parts.push(part);
            }
            None => self.head.put_slice(src),
        }
    }
}

impl ByteBufMut for SplicingBuf<'_> {
    fn offset(&self) -> usize {
        self.flushed + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        match offset.checked_sub(self.flushed) {
            Some(in_head) => self.head.resize(in_head, 0),
            None => self.broken = true,
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let in_head = r.start.checked_sub(self.flushed).and_then(|start| {
            let end = r.end.checked_sub(self.flushed)?;
            (start <= end && end <= self.head.len()).then_some(start..end)
        });
        match in_head {
            Some(range) => &mut self.head[range],
            None => {
                self.broken = true;
                self.scratch.clear();
                self.scratch.resize(r.len(), 0);
                &mut self.scratch
            }
        }
    }
}

#[cfg(test)]
mod tests;
