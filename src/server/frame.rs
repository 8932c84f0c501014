//! Request framing: the 4-byte size prefix, its limits, and the request header.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} outside 4..={max} (socket.request.max.bytes)")]
    BadSize { size: i32, max: usize },
    #[error("connection closed mid-frame")]
    Truncated,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    BadHeader(String),
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame body, refusing sizes above `max` before allocating. `Ok(None)` on a clean EOF.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(prefix);
    if size < 4 || size as usize > max {
        return Err(FrameError::BadSize { size, max });
    }
    let mut body = BytesMut::zeroed(size as usize);
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(Some(body.freeze()))
}

/// The parsed start of a request.
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    /// The bytes after the header.
    pub body: Bytes,
}

/// Splits a frame into header and body. The api key must be known; the version is checked later.
pub fn parse_request(mut frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::Malformed(
            "frame shorter than a request header".into(),
        ));
    }
    let raw_key = (&frame[..2]).get_i16();
    let api_version = (&frame[2..4]).get_i16();
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey(raw_key))?;
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| FrameError::BadHeader(e.to_string()))?;
    Ok(Request {
        api_key,
        api_version,
        header,
        body: frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_oversized_prefix_before_reading() {
        let data: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut r = data;
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::BadSize { .. })
        ));
        let data: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let mut r = data;
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::BadSize { .. })
        ));
        let data: &[u8] = &[0, 0, 0, 2, 0, 0];
        let mut r = data;
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::BadSize { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_and_clean_eof() {
        let data: &[u8] = &[0, 0, 0, 10, 1, 2];
        let mut r = data;
        assert!(matches!(
            read_frame(&mut r, 1024).await,
            Err(FrameError::Truncated)
        ));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 1024).await.unwrap().is_none());
    }

    #[test]
    fn unknown_api_key_is_rejected() {
        let frame = Bytes::from_static(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            parse_request(frame),
            Err(FrameError::UnknownApiKey(9999))
        ));
    }
}
