//! Kafka wire-protocol helpers that sit in front of the `kafka-protocol` crate.
//!
//! `kafka-protocol` 0.18 trusts the element counts it reads off the wire: its `Array` and
//! `CompactArray` decoders call `Vec::with_capacity(count)` before reading a single element, and
//! its `Vec<u8>`/`String` decoders allocate `vec![0; len]` before checking that `len` bytes
//! remain. A 20-byte request that declares 2^31-1 elements therefore makes the process abort on
//! allocation failure. [`guard`] walks a request body against the request's wire schema and
//! rejects such frames *before* they are handed to `kafka-protocol`.
//!
//! Usage in the request path (after framing and header decoding):
//!
//! ```ignore
//! protocol::guard::check_request_body(header.request_api_key, header.request_api_version, &body)?;
//! let request = MetadataRequest::decode(&mut body, header.request_api_version)?;
//! ```
//!
//! The request header itself needs no guard: `RequestHeader` (v1/v2) decodes two `i16`s, an
//! `i32`, a nullable non-compact `client_id` string read via `try_get_bytes` (bounds-checked, no
//! pre-allocation) and, for v2, unknown tagged fields that are also read with `try_get_bytes`
//! into a `BTreeMap`. None of these pre-allocate from a wire-supplied count.
//!
//! [`encode`] builds response frames as lists of parts, so the record sets of a Fetch answer are
//! written to the socket from the buffers they were read into, without another copy.
pub mod encode;
pub mod guard;
pub mod schema_reader;
