//! A pool of connections to peer brokers for requests the broker layer makes itself
//! (transaction markers and verification, end offsets for consumer-group lag): one connection
//! per peer, one request at a time on each, reconnected after any error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use parking_lot::Mutex;

use crate::cluster::ClusterMetadata;
use crate::replica::peer::{PeerConnection, PeerDialer, PeerError};

/// One connection per peer broker, one request at a time each, over the inter-broker listener.
pub(crate) struct PeerPool {
    client_id: String,
    /// How peers are dialled (the inter-broker listener and its security).
    dialer: PeerDialer,
    timeout: Duration,
    max_response_bytes: usize,
    connections: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Option<PeerConnection>>>>>,
}

impl PeerPool {
    /// A pool dialling peers with `dialer`, whose connects and requests each take at most
    /// `timeout`.
    pub(crate) fn new(
        client_id: String,
        dialer: PeerDialer,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> PeerPool {
        PeerPool {
            client_id,
            dialer,
            timeout,
            max_response_bytes,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` to `broker` (connecting first if needed) and decodes its answer.
    pub(crate) async fn call<Req, Resp>(
        &self,
        cluster: &Arc<dyn ClusterMetadata>,
        broker: i32,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, PeerError>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let slot = self.connections.lock().entry(broker).or_default().clone();
        let mut conn = slot.lock().await;
        if conn.is_none() {
            let Some(b) = cluster.live_brokers().into_iter().find(|b| b.id == broker) else {
                return Err(PeerError::Protocol(format!("broker {broker} is not alive")));
            };
            let Some((host, port)) = b.address(self.dialer.listener()) else {
                return Err(PeerError::Protocol(format!(
                    "broker {broker} has no {} listener",
                    self.dialer.listener()
                )));
            };
            *conn = Some(
                self.dialer
                    .connect(
                        &host,
                        port,
                        self.client_id.clone(),
                        self.max_response_bytes,
                        self.timeout,
                    )
                    .await?,
            );
        }
        let Some(c) = conn.as_mut() else {
            return Err(PeerError::Protocol("no connection".into()));
        };
        let result = c.call(key, version, request, Duration::ZERO).await;
        if result.is_err() {
            *conn = None;
        }
        result
    }
}
