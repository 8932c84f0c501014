//! A handler's answer and its encoding into a response frame.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Encodable;

use super::context::RequestContext;
use crate::protocol::encode::{encode_frame, EncodeError, ResponseFrame};

/// What a handler answers: a response body, or nothing at all (Produce with acks=0). Handlers
/// that answer with a plain body return it; `.into()` makes the reply.
#[derive(Debug)]
pub struct Reply<T> {
    body: Option<T>,
    /// Byte fields of `body`, in encoding order, sent from their own buffers instead of being
    /// copied into the frame (record sets read from segment files).
    shared: Vec<Bytes>,
    /// How long the connection reads no further request after this reply (a client quota
    /// was violated; KIP-219: answer at once, then mute).
    throttle: Option<Duration>,
}

impl<T> From<T> for Reply<T> {
    fn from(body: T) -> Reply<T> {
        Reply {
            body: Some(body),
            shared: Vec::new(),
            throttle: None,
        }
    }
}

impl<T: Encodable> Reply<T> {
    /// No response is sent.
    pub fn none() -> Reply<T> {
        Reply {
            body: None,
            shared: Vec::new(),
            throttle: None,
        }
    }

    /// `body`, whose byte fields `shared` (in encoding order) are written from their buffers.
    pub fn sharing(body: T, shared: Vec<Bytes>) -> Reply<T> {
        Reply {
            body: Some(body),
            shared,
            throttle: None,
        }
    }

    /// This reply, muting the connection for `throttle_ms` after it (nothing when 0). A reply
    /// without a body still mutes (Produce with acks=0).
    pub fn throttled(mut self, throttle_ms: i64) -> Reply<T> {
        self.throttle = (throttle_ms > 0).then(|| Duration::from_millis(throttle_ms as u64));
        self
    }

    /// The size-prefixed response frame for the request of `ctx`; `None` when nothing is sent
    /// and nothing muted (an empty frame mutes without sending).
    pub fn encode(self, ctx: &RequestContext) -> Result<Option<ResponseFrame>, EncodeError> {
        let Some(body) = self.body else {
            return Ok(self
                .throttle
                .map(|t| ResponseFrame::default().with_throttle(Some(t))));
        };
        let header = ResponseHeader::default().with_correlation_id(ctx.correlation_id);
        let header_version = ctx.api_key.response_header_version(ctx.api_version);
        encode_frame(
            &header,
            header_version,
            &body,
            ctx.api_version,
            &self.shared,
        )
        .map(|frame| Some(frame.with_throttle(self.throttle)))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Buf;
    use kafka_protocol::messages::{ApiKey, ProduceResponse};

    use super::*;
    use crate::api::Principal;

    fn ctx() -> RequestContext {
        RequestContext {
            api_key: ApiKey::Produce,
            api_version: 9,
            correlation_id: 1,
            client_id: None,
            client_address: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "PLAINTEXT".into(),
            principal: Principal::anonymous(),
        }
    }

    #[test]
    fn a_throttle_travels_with_the_frame_even_without_a_body() {
        let ms = Some(Duration::from_millis(250));
        let frame = Reply::from(ProduceResponse::default())
            .throttled(250)
            .encode(&ctx())
            .unwrap()
            .unwrap();
        assert_eq!(frame.throttle(), ms);
        assert!(frame.has_remaining());
        let mute_only = Reply::<ProduceResponse>::none()
            .throttled(250)
            .encode(&ctx())
            .unwrap()
            .unwrap();
        assert_eq!(mute_only.throttle(), ms);
        assert!(!mute_only.has_remaining(), "nothing is sent");
        assert!(Reply::<ProduceResponse>::none()
            .throttled(0)
            .encode(&ctx())
            .unwrap()
            .is_none());
        let unthrottled = Reply::from(ProduceResponse::default()).encode(&ctx());
        assert_eq!(unthrottled.unwrap().unwrap().throttle(), None);
    }
}
