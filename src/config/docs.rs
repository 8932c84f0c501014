//! One-line documentation of every config key Odradek knows, reported by DescribeConfigs (v3+)
//! when the client asks for it. The wording is Odradek's; where Odradek ignores a key it says so.

/// Documentation of a broker key.
pub fn broker_doc(name: &str) -> Option<&'static str> {
    Some(match name {
        "broker.id" => "Id of this broker in its cluster.",
        "broker.rack" => "Rack of this broker, used to spread replicas over racks.",
        "listeners" => {
            "Addresses the broker listens on, as NAME://host:port, comma-separated; one per name \
             and port. PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL (for clients)."
        }
        "advertised.listeners" => {
            "Addresses other brokers and clients are told to use, per listener name (a subset of \
             listeners, never 0.0.0.0); the listeners when unset."
        }
        "listener.security.protocol.map" => "Security protocol of each listener name (NAME:PROTOCOL).",
        "inter.broker.listener.name" => {
            "Listener brokers use to reach each other; must be advertised. Excludes \
             security.inter.broker.protocol."
        }
        "security.inter.broker.protocol" => {
            "Names the inter-broker listener when inter.broker.listener.name is unset (PLAINTEXT)."
        }
        "log.dirs" => "Directories holding the partition logs (one is supported).",
        "log.dir" => "Log directory used when log.dirs is not set.",
        "log.format" => "Odradek's own log lines: text (colour on a terminal only) or json.",
        "http.listener" => "host:port of the HTTP listener serving /metrics and the web console; empty: none.",
        "num.partitions" => "Partition count of topics created without one.",
        "default.replication.factor" => "Replication factor of topics created without one.",
        "auto.create.topics.enable" => "Create a topic when a client asks for an unknown one.",
        "delete.topic.enable" => "Whether DeleteTopics may delete topics.",
        "log.segment.bytes" => "Largest size of one log segment file, in bytes.",
        "log.roll.ms" => "Age after which a new segment is started, in ms (beats log.roll.hours).",
        "log.roll.hours" => "Age after which a new segment is started, in hours.",
        "log.roll.jitter.ms" => "Largest random reduction of the roll time, in ms.",
        "log.roll.jitter.hours" => "Largest random reduction of the roll time, in hours.",
        "log.retention.ms" => "How long segments are kept, in ms; -1 keeps them forever.",
        "log.retention.minutes" => "How long segments are kept, in minutes.",
        "log.retention.hours" => "How long segments are kept, in hours.",
        "log.retention.bytes" => {
            "Largest size of a partition log before old segments go; -1: none."
        }
        "log.retention.check.interval.ms" => "How often retention looks for segments to delete.",
        "log.index.interval.bytes" => "Bytes of records between two offset index entries.",
        "log.index.size.max.bytes" => {
            "Largest size of an index file; a full index rolls the segment."
        }
        "log.message.timestamp.type" => {
            "CreateTime keeps producer timestamps; LogAppendTime sets the broker's."
        }
        "log.message.timestamp.before.max.ms" => {
            "How far in the past a record timestamp may be, in ms."
        }
        "log.message.timestamp.after.max.ms" => {
            "How far in the future a record timestamp may be, in ms."
        }
        "log.message.timestamp.difference.max.ms" => {
            "Deprecated bound on timestamp skew (no effect here)."
        }
        "log.cleanup.policy" => "delete (retention), compact (keep the latest per key), or both.",
        "log.cleaner.enable" => "Run the log cleaner that compacts compacted topics.",
        "log.cleaner.backoff.ms" => "Pause of the cleaner when no log needs cleaning, in ms.",
        "log.cleaner.dedupe.buffer.size" => {
            "Memory for the cleaner's key map, shared by its threads."
        }
        "log.cleaner.threads" => "Number of cleaner threads (divides the dedupe buffer).",
        "log.cleaner.delete.retention.ms" => "How long tombstones stay after compaction, in ms.",
        "log.cleaner.min.compaction.lag.ms" => {
            "Youngest age of a record that may be compacted, in ms."
        }
        "log.cleaner.max.compaction.lag.ms" => {
            "Oldest age a record may wait before compaction, in ms."
        }
        "log.cleaner.min.cleanable.ratio" => "Dirty share of a log above which it is compacted.",
        "log.cleaner.io.buffer.size" => "I/O buffer of the cleaner threads (no effect here).",
        "log.cleaner.io.buffer.load.factor" => "Fill ratio of the cleaner's key map.",
        "log.cleaner.io.max.bytes.per.second" => "Cleaner I/O throttle (no effect here).",
        "log.flush.interval.messages" => "Records appended before a log is flushed to disk.",
        "log.flush.interval.ms" => "Longest time a record waits in memory before a flush, in ms.",
        "log.flush.scheduler.interval.ms" => "Flush time used when log.flush.interval.ms is unset.",
        "log.flush.offset.checkpoint.interval.ms" => {
            "How often the recovery points are checkpointed."
        }
        "log.segment.delete.delay.ms" => {
            "Delay before a deleted segment's file goes (no effect here)."
        }
        "log.preallocate" => "Preallocate segment files (no effect here).",
        "log.message.format.version" => "Deprecated record format version; always v2 here.",
        "log.message.downconversion.enable" => {
            "Down-convert records for old consumers (no effect here)."
        }
        "log.local.retention.ms" => "Local retention of tiered topics (no tiered storage here).",
        "log.local.retention.bytes" => {
            "Local size retention of tiered topics (no tiered storage here)."
        }
        "message.max.bytes" => "Largest record batch the broker accepts, in bytes.",
        "compression.type" => {
            "Codec the broker stores batches with; producer keeps the producer's."
        }
        "compression.gzip.level" => "Compression level of gzip when the broker compresses.",
        "compression.lz4.level" => "Compression level of lz4 when the broker compresses.",
        "compression.zstd.level" => "Compression level of zstd when the broker compresses.",
        "socket.request.max.bytes" => "Largest request frame accepted, in bytes.",
        "socket.send.buffer.bytes" => "Socket send buffer size (no effect here).",
        "socket.receive.buffer.bytes" => "Socket receive buffer size (no effect here).",
        "num.network.threads" => "Network thread count (no effect here: one async runtime).",
        "num.io.threads" => "Request handler thread count (no effect here).",
        "num.recovery.threads.per.data.dir" => {
            "Log recovery threads per directory (no effect here)."
        }
        "background.threads" => "Background task thread count (no effect here).",
        "max.connections" => "Most client connections open at once.",
        "max.connections.per.ip" => "Most connections from one address; more are closed at accept.",
        "max.connections.per.ip.overrides" => "Per-address limits overriding max.connections.per.ip (host:count,host:count).",
        "max.connection.creation.rate" => "Most new connections per second (no effect here).",
        "connections.max.idle.ms" => "Idle time after which a connection is closed.",
        "sasl.enabled.mechanisms" => {
            "SASL mechanisms SASL listeners enable: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 \
             (GSSAPI, the default, and OAUTHBEARER are not supported)."
        }
        "sasl.mechanism.inter.broker.protocol" => {
            "SASL mechanism between brokers (no effect: brokers talk over PLAINTEXT)."
        }
        "connection.failed.authentication.delay.ms" => {
            "Delay before a failed authentication is answered and its connection closed, in ms."
        }
        "connections.max.reauth.ms" => {
            "Lifetime of a SASL session, in ms; the client must re-authenticate before it ends (0: never)."
        }
        "sasl.server.max.receive.size" => "Largest SASL token accepted before authentication, in bytes.",
        "queued.max.requests" => "Requests queued before reading stops (no effect here).",
        "min.insync.replicas" => "In-sync replicas an acks=all write needs.",
        "unclean.leader.election.enable" => "Allow electing an out-of-sync replica as last resort.",
        "auto.leader.rebalance.enable" => "Move leadership back to preferred replicas.",
        "controlled.shutdown.enable" => "Hand leaderships over before a broker stops.",
        "controlled.shutdown.max.retries" => "Attempts of a controlled shutdown.",
        "controlled.shutdown.retry.backoff.ms" => {
            "Wait between controlled shutdown attempts, in ms."
        }
        "replica.lag.time.max.ms" => "A follower this far behind for this long leaves the ISR.",
        "num.replica.fetchers" => "Fetcher threads per source broker (no effect here).",
        "replica.fetch.max.bytes" => "Bytes a follower asks for per partition.",
        "replica.fetch.response.max.bytes" => "Bytes a follower asks for per fetch.",
        "replica.fetch.wait.max.ms" => "How long a leader may hold a follower's fetch, in ms.",
        "replica.fetch.min.bytes" => "Bytes a leader waits for before answering a follower.",
        "replica.fetch.backoff.ms" => "Pause of a follower after a fetch error, in ms.",
        "replica.socket.timeout.ms" => "Timeout of a follower's requests, in ms.",
        "replica.high.watermark.checkpoint.interval.ms" => {
            "How often high watermarks are checkpointed."
        }
        "leader.replication.throttled.rate" => {
            "Bytes/s a leader sends to out-of-sync throttled replicas (topic lists)."
        }
        "follower.replication.throttled.rate" => {
            "Bytes/s a follower fetches for out-of-sync throttled replicas (topic lists)."
        }
        "replication.quota.window.num" => "Sample windows the replication throttle rates span.",
        "replication.quota.window.size.seconds" => {
            "Length of one sample window of the replication throttle rates."
        }
        "quota.window.num" => "Sample windows the client byte-rate quotas are measured over.",
        "quota.window.size.seconds" => "Length of one sample window of the client quotas.",
        "reserved.broker.max.id" => "Highest broker id that may be set by hand.",
        "authorizer.class.name" => {
            "kafka.security.authorizer.AclAuthorizer turns on ACL authorization (ACLs in \
             ZooKeeper in cluster mode); empty: none."
        }
        "super.users" => "Principals allowed everything, semicolon-separated (User:admin;User:kafka).",
        "allow.everyone.if.no.acl.found" => "Allow an operation on a resource no ACL matches.",
        "broker.id.generation.enable" => "Generate broker ids (not supported here).",
        "zookeeper.connect" => "ZooKeeper hosts and chroot; unset runs standalone.",
        "zookeeper.session.timeout.ms" => "ZooKeeper session timeout, in ms.",
        "zookeeper.connection.timeout.ms" => "How long start-up waits for ZooKeeper, in ms.",
        "leader.imbalance.check.interval.seconds" => "How often leader balance is checked, in s.",
        "leader.imbalance.per.broker.percentage" => {
            "Imbalance per broker that triggers a rebalance."
        }
        "offsets.topic.replication.factor" => "Replication factor of __consumer_offsets.",
        "offsets.topic.num.partitions" => "Partition count of __consumer_offsets.",
        "offsets.topic.segment.bytes" => "Segment size of __consumer_offsets.",
        "offsets.retention.minutes" => "How long committed offsets of empty groups are kept.",
        "offsets.retention.check.interval.ms" => "How often expired offsets are removed.",
        "offset.metadata.max.bytes" => "Largest metadata string of an offset commit.",
        "group.max.size" => "Most members of one consumer group.",
        "group.initial.rebalance.delay.ms" => "Wait for more members before the first rebalance.",
        "group.min.session.timeout.ms" => "Shortest session timeout a member may ask for.",
        "group.max.session.timeout.ms" => "Longest session timeout a member may ask for.",
        "transaction.state.log.replication.factor" => "Replication factor of __transaction_state.",
        "transaction.state.log.min.isr" => "min.insync.replicas of __transaction_state.",
        "transaction.state.log.num.partitions" => "Partition count of __transaction_state.",
        "transaction.state.log.segment.bytes" => "Segment size of __transaction_state.",
        "transaction.max.timeout.ms" => "Longest transaction timeout a producer may ask for.",
        "transactional.id.expiration.ms" => {
            "Idle time after which a transactional id without a transaction expires."
        }
        "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
            "How often transactions past their timeout are aborted."
        }
        "transaction.remove.expired.transaction.cleanup.interval.ms" => {
            "How often expired transactional ids are removed."
        }
        "transaction.partition.verification.enable" => {
            "Before the first transactional batch of a transaction, a partition leader checks with the coordinator that the partition is in the transaction (KIP-890)."
        }
        "producer.id.expiration.ms" => "Idle time after which a producer id's state is dropped.",
        "inter.broker.protocol.version" => "Protocol version brokers speak to each other.",
        "metric.reporters" => "Metric reporter classes (no effect here).",
        "ssl.keystore.password" => "Password of the PKCS12 key store of SSL listeners.",
        "ssl.key.password" => "Password of the private key in the key store.",
        "ssl.truststore.password" => "Password of the PKCS12 trust store.",
        "ssl.keystore.type" => "PKCS12 or PEM (JKS files must be converted to PKCS12).",
        "ssl.keystore.location" => "The key store file of SSL listeners.",
        "ssl.keystore.certificate.chain" => "PEM certificate chain given inline (KIP-651).",
        "ssl.keystore.key" => "PEM private key given inline (KIP-651).",
        "ssl.truststore.type" => "PKCS12 or PEM.",
        "ssl.truststore.location" => "The trust store file client certificates are checked against.",
        "ssl.truststore.certificates" => "PEM trusted certificates given inline.",
        "ssl.client.auth" => "Client certificates: none, requested or required.",
        "ssl.enabled.protocols" => "TLS versions accepted: TLSv1.2, TLSv1.3.",
        "ssl.cipher.suites" => "Cipher suites accepted (Java names); empty means all.",
        "ssl.principal.mapping.rules" => "Rules mapping a certificate's distinguished name to a principal name.",
        "ssl.endpoint.identification.algorithm" => "https: brokers check that a peer's certificate names the host they dial; empty: no check.",
        "password.encoder.secret" => "Secret that encodes stored dynamic passwords.",
        _ => return None,
    })
}

/// Documentation of a topic key.
pub fn topic_doc(name: &str) -> Option<&'static str> {
    Some(match name {
        "cleanup.policy" => "delete (retention), compact (keep the latest per key), or both.",
        "compression.type" => {
            "Codec the broker stores batches with; producer keeps the producer's."
        }
        "compression.gzip.level" => "Compression level of gzip when the broker compresses.",
        "compression.lz4.level" => "Compression level of lz4 when the broker compresses.",
        "compression.zstd.level" => "Compression level of zstd when the broker compresses.",
        "delete.retention.ms" => "How long tombstones stay after compaction, in ms.",
        "file.delete.delay.ms" => "Delay before a deleted segment's file goes (no effect here).",
        "flush.messages" => "Records appended before the log is flushed to disk.",
        "flush.ms" => "Longest time a record waits in memory before a flush, in ms.",
        "index.interval.bytes" => "Bytes of records between two offset index entries.",
        "max.compaction.lag.ms" => "Oldest age a record may wait before compaction, in ms.",
        "max.message.bytes" => "Largest record batch accepted, in bytes.",
        "message.timestamp.after.max.ms" => {
            "How far in the future a record timestamp may be, in ms."
        }
        "message.timestamp.before.max.ms" => {
            "How far in the past a record timestamp may be, in ms."
        }
        "message.timestamp.difference.max.ms" => {
            "Deprecated bound on timestamp skew (no effect here)."
        }
        "message.timestamp.type" => {
            "CreateTime keeps producer timestamps; LogAppendTime sets the broker's."
        }
        "min.cleanable.dirty.ratio" => "Dirty share of the log above which it is compacted.",
        "min.compaction.lag.ms" => "Youngest age of a record that may be compacted, in ms.",
        "min.insync.replicas" => "In-sync replicas an acks=all write needs.",
        "preallocate" => "Preallocate segment files (no effect here).",
        "retention.bytes" => "Largest size of a partition log before old segments go; -1: none.",
        "retention.ms" => "How long segments are kept, in ms; -1 keeps them forever.",
        "segment.bytes" => "Largest size of one segment file, in bytes.",
        "segment.index.bytes" => "Largest size of an index file; a full index rolls the segment.",
        "segment.jitter.ms" => "Largest random reduction of the roll time, in ms.",
        "segment.ms" => "Age after which a new segment is started, in ms.",
        "unclean.leader.election.enable" => "Allow electing an out-of-sync replica as last resort.",
        "message.format.version" => "Deprecated record format version; always v2 here.",
        "message.downconversion.enable" => {
            "Down-convert records for old consumers (no effect here)."
        }
        "leader.replication.throttled.replicas" => {
            "Replicas throttled on the leader side: * or partition:broker pairs."
        }
        "follower.replication.throttled.replicas" => {
            "Replicas throttled on the follower side: * or partition:broker pairs."
        }
        "remote.storage.enable" => "Tiered storage for this topic (not available here).",
        "local.retention.ms" => "Local retention of a tiered topic (no tiered storage here).",
        "local.retention.bytes" => {
            "Local size retention of a tiered topic (no tiered storage here)."
        }
        "remote.log.copy.disable" => "Stop copying to tiered storage (no tiered storage here).",
        "remote.log.delete.on.disable" => {
            "Delete tiered data when disabled (no tiered storage here)."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::broker::BROKER_CONFIGS;
    use crate::config::topic::TOPIC_CONFIGS;

    #[test]
    fn every_known_key_is_documented() {
        for def in BROKER_CONFIGS {
            assert!(broker_doc(def.name).is_some(), "broker key {}", def.name);
        }
        for def in TOPIC_CONFIGS {
            assert!(
                topic_doc(def.def.name).is_some(),
                "topic key {}",
                def.def.name
            );
        }
    }
}
