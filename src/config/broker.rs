//! Broker configuration: Kafka's server.properties keys, defaults and the typed view the broker uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::def::{ConfigDef, ConfigSource, ConfigType as T, Constraint, InvalidValue};
use super::dynamic::{merge_layers, DynamicBrokerConfigs};
use super::listener::{self, Listener, ListenerKeys, SecurityProtocol};
use super::topic::{COMPRESSION_TYPES, GZIP_LEVEL, LZ4_LEVEL, ZSTD_LEVEL};

const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const LOG_FORMATS: &[&str] = &["text", "json"];

/// Every broker key Odradek knows, with Kafka's default. Unknown keys only warn.
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    ConfigDef::new("broker.id", T::Int, Some("-1")),
    ConfigDef::new("broker.rack", T::String, None),
    ConfigDef::new("listeners", T::List, Some("PLAINTEXT://:9092")),
    ConfigDef::new("advertised.listeners", T::List, None),
    ConfigDef::new(
        "listener.security.protocol.map",
        T::List,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ),
    ConfigDef::new("inter.broker.listener.name", T::String, None),
    ConfigDef::new("security.inter.broker.protocol", T::String, None),
    ConfigDef::new("log.dirs", T::List, None),
    ConfigDef::new("log.dir", T::String, Some("/tmp/kafka-logs")),
    // Odradek's own: the broker's log output (not Kafka's partition logs).
    ConfigDef::new("log.format", T::String, Some("text")).with(Constraint::OneOf(LOG_FORMATS)),
    // Odradek's own: the HTTP listener serving /metrics and the web console (empty: none).
    ConfigDef::new("http.listener", T::String, Some("127.0.0.1:9644"))
        .with(Constraint::HostPortOrEmpty),
    ConfigDef::new("num.partitions", T::Int, Some("1")).with(Constraint::AtLeast(1)),
    ConfigDef::new("default.replication.factor", T::Int, Some("1")).with(Constraint::AtLeast(1)),
    ConfigDef::new("auto.create.topics.enable", T::Boolean, Some("true")),
    ConfigDef::new("delete.topic.enable", T::Boolean, Some("true")),
    ConfigDef::new("log.segment.bytes", T::Int, Some("1073741824")).with(Constraint::AtLeast(14)),
    ConfigDef::new("log.roll.ms", T::Long, None).with(Constraint::AtLeast(1)),
    ConfigDef::new("log.roll.hours", T::Int, Some("168")).with(Constraint::AtLeast(1)),
    ConfigDef::new("log.roll.jitter.ms", T::Long, None),
    ConfigDef::new("log.roll.jitter.hours", T::Int, Some("0")).with(Constraint::AtLeast(0)),
    ConfigDef::new("log.retention.ms", T::Long, None),
    ConfigDef::new("log.retention.minutes", T::Int, None),
    ConfigDef::new("log.retention.hours", T::Int, Some("168")),
    ConfigDef::new("log.retention.bytes", T::Long, Some("-1")),
    ConfigDef::new("log.retention.check.interval.ms", T::Long, Some("300000"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("log.index.interval.bytes", T::Int, Some("4096")).with(Constraint::AtLeast(0)),
    ConfigDef::new("log.index.size.max.bytes", T::Int, Some("10485760"))
        .with(Constraint::AtLeast(4)),
    ConfigDef::new("log.message.timestamp.type", T::String, Some("CreateTime"))
        .with(Constraint::OneOf(TIMESTAMP_TYPES)),
    ConfigDef::new(
        "log.message.timestamp.before.max.ms",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new(
        "log.message.timestamp.after.max.ms",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new(
        "log.message.timestamp.difference.max.ms",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new("log.cleanup.policy", T::List, Some("delete"))
        .with(Constraint::ListOf(CLEANUP_POLICIES)),
    ConfigDef::new("log.cleaner.enable", T::Boolean, Some("true")),
    ConfigDef::new("log.cleaner.backoff.ms", T::Long, Some("15000")).with(Constraint::AtLeast(0)),
    ConfigDef::new("log.cleaner.dedupe.buffer.size", T::Long, Some("134217728")),
    ConfigDef::new("log.cleaner.threads", T::Int, Some("1")),
    ConfigDef::new("log.cleaner.delete.retention.ms", T::Long, Some("86400000")),
    ConfigDef::new("log.cleaner.min.compaction.lag.ms", T::Long, Some("0")),
    ConfigDef::new(
        "log.cleaner.max.compaction.lag.ms",
        T::Long,
        Some("9223372036854775807"),
    ),
    ConfigDef::new("log.cleaner.min.cleanable.ratio", T::Double, Some("0.5")),
    ConfigDef::new(
        "log.flush.interval.messages",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("log.flush.interval.ms", T::Long, None),
    ConfigDef::new(
        "log.flush.scheduler.interval.ms",
        T::Long,
        Some("9223372036854775807"),
    ),
    ConfigDef::new(
        "log.flush.offset.checkpoint.interval.ms",
        T::Int,
        Some("60000"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new("log.segment.delete.delay.ms", T::Long, Some("60000"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new("log.preallocate", T::Boolean, Some("false")),
    ConfigDef::new("message.max.bytes", T::Int, Some("1048588")).with(Constraint::AtLeast(0)),
    ConfigDef::new("compression.type", T::String, Some("producer"))
        .with(Constraint::OneOf(COMPRESSION_TYPES)),
    ConfigDef::new("compression.gzip.level", T::Int, Some("-1")).with(GZIP_LEVEL),
    ConfigDef::new("compression.lz4.level", T::Int, Some("9")).with(LZ4_LEVEL),
    ConfigDef::new("compression.zstd.level", T::Int, Some("3")).with(ZSTD_LEVEL),
    ConfigDef::new("socket.request.max.bytes", T::Int, Some("104857600"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("socket.send.buffer.bytes", T::Int, Some("102400")),
    ConfigDef::new("socket.receive.buffer.bytes", T::Int, Some("102400")),
    ConfigDef::new("num.network.threads", T::Int, Some("3")).with(Constraint::AtLeast(1)),
    ConfigDef::new("num.io.threads", T::Int, Some("8")).with(Constraint::AtLeast(1)),
    ConfigDef::new("num.recovery.threads.per.data.dir", T::Int, Some("2"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("max.connections", T::Int, Some("2147483647")).with(Constraint::AtLeast(0)),
    ConfigDef::new("connections.max.idle.ms", T::Long, Some("600000")),
    ConfigDef::new("queued.max.requests", T::Int, Some("500")).with(Constraint::AtLeast(1)),
    ConfigDef::new("min.insync.replicas", T::Int, Some("1")).with(Constraint::AtLeast(1)),
    ConfigDef::new("unclean.leader.election.enable", T::Boolean, Some("false")),
    ConfigDef::new("auto.leader.rebalance.enable", T::Boolean, Some("true")),
    ConfigDef::new("controlled.shutdown.enable", T::Boolean, Some("true")),
    ConfigDef::new("replica.lag.time.max.ms", T::Long, Some("30000")),
    ConfigDef::new("num.replica.fetchers", T::Int, Some("1")),
    ConfigDef::new("replica.fetch.max.bytes", T::Int, Some("1048576")).with(Constraint::AtLeast(0)),
    ConfigDef::new("replica.fetch.response.max.bytes", T::Int, Some("10485760"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new("replica.fetch.wait.max.ms", T::Int, Some("500")).with(Constraint::AtLeast(0)),
    ConfigDef::new("replica.fetch.min.bytes", T::Int, Some("1")),
    ConfigDef::new("replica.fetch.backoff.ms", T::Int, Some("1000")).with(Constraint::AtLeast(0)),
    ConfigDef::new("replica.socket.timeout.ms", T::Int, Some("30000")),
    ConfigDef::new(
        "replica.high.watermark.checkpoint.interval.ms",
        T::Long,
        Some("5000"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "leader.replication.throttled.rate",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new(
        "follower.replication.throttled.rate",
        T::Long,
        Some("9223372036854775807"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new("replication.quota.window.num", T::Int, Some("11")).with(Constraint::AtLeast(1)),
    ConfigDef::new("replication.quota.window.size.seconds", T::Int, Some("1"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("quota.window.num", T::Int, Some("11")).with(Constraint::AtLeast(1)),
    ConfigDef::new("quota.window.size.seconds", T::Int, Some("1")).with(Constraint::AtLeast(1)),
    ConfigDef::new("reserved.broker.max.id", T::Int, Some("1000")),
    ConfigDef::new("authorizer.class.name", T::String, Some("")),
    ConfigDef::new("super.users", T::String, None),
    ConfigDef::new("allow.everyone.if.no.acl.found", T::Boolean, Some("false")),
    ConfigDef::new("broker.id.generation.enable", T::Boolean, Some("true")),
    ConfigDef::new("zookeeper.connect", T::String, None),
    ConfigDef::new("zookeeper.session.timeout.ms", T::Int, Some("18000")),
    ConfigDef::new("zookeeper.connection.timeout.ms", T::Int, None),
    ConfigDef::new(
        "leader.imbalance.check.interval.seconds",
        T::Long,
        Some("300"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("leader.imbalance.per.broker.percentage", T::Int, Some("10"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new("controlled.shutdown.max.retries", T::Int, Some("3"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new(
        "controlled.shutdown.retry.backoff.ms",
        T::Long,
        Some("5000"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new("offsets.topic.replication.factor", T::Short, Some("3"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("offsets.topic.num.partitions", T::Int, Some("50")).with(Constraint::AtLeast(1)),
    ConfigDef::new("offsets.topic.segment.bytes", T::Int, Some("104857600")),
    ConfigDef::new("offsets.retention.minutes", T::Int, Some("10080")).with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "offsets.retention.check.interval.ms",
        T::Long,
        Some("600000"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("offset.metadata.max.bytes", T::Int, Some("4096")),
    ConfigDef::new("group.max.size", T::Int, Some("2147483647")).with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "transaction.state.log.replication.factor",
        T::Short,
        Some("3"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("transaction.state.log.min.isr", T::Int, Some("2")).with(Constraint::AtLeast(1)),
    ConfigDef::new("transaction.state.log.num.partitions", T::Int, Some("50"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "transaction.state.log.segment.bytes",
        T::Int,
        Some("104857600"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("transaction.max.timeout.ms", T::Int, Some("900000"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("transactional.id.expiration.ms", T::Int, Some("604800000"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        T::Int,
        Some("10000"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        T::Int,
        Some("3600000"),
    )
    .with(Constraint::AtLeast(1)),
    ConfigDef::new("group.initial.rebalance.delay.ms", T::Int, Some("3000")),
    ConfigDef::new("group.min.session.timeout.ms", T::Int, Some("6000")),
    ConfigDef::new("group.max.session.timeout.ms", T::Int, Some("1800000")),
    ConfigDef::new("producer.id.expiration.ms", T::Int, Some("86400000"))
        .with(Constraint::AtLeast(1)),
    ConfigDef::new("inter.broker.protocol.version", T::String, Some("3.9-IV0")),
    ConfigDef::new("log.message.format.version", T::String, Some("3.0-IV1")),
    ConfigDef::new(
        "log.message.downconversion.enable",
        T::Boolean,
        Some("true"),
    ),
    ConfigDef::new("log.local.retention.ms", T::Long, Some("-2")).with(Constraint::AtLeast(-2)),
    ConfigDef::new("log.local.retention.bytes", T::Long, Some("-2")).with(Constraint::AtLeast(-2)),
    ConfigDef::new("log.cleaner.io.buffer.size", T::Int, Some("524288"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new("log.cleaner.io.buffer.load.factor", T::Double, Some("0.9")),
    ConfigDef::new(
        "log.cleaner.io.max.bytes.per.second",
        T::Double,
        Some("1.7976931348623157E308"),
    ),
    ConfigDef::new("background.threads", T::Int, Some("10")).with(Constraint::AtLeast(1)),
    ConfigDef::new("metric.reporters", T::List, Some("")),
    ConfigDef::new("max.connections.per.ip", T::Int, Some("2147483647"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new("max.connections.per.ip.overrides", T::String, Some("")),
    ConfigDef::new("max.connection.creation.rate", T::Int, Some("2147483647"))
        .with(Constraint::AtLeast(0)),
    ConfigDef::new(
        "transaction.partition.verification.enable",
        T::Boolean,
        Some("true"),
    ),
    ConfigDef::new("ssl.keystore.type", T::String, Some("JKS")),
    ConfigDef::new("ssl.keystore.location", T::String, None),
    ConfigDef::new("ssl.keystore.certificate.chain", T::Password, None),
    ConfigDef::new("ssl.keystore.key", T::Password, None),
    ConfigDef::new("ssl.truststore.type", T::String, Some("JKS")),
    ConfigDef::new("ssl.truststore.location", T::String, None),
    ConfigDef::new("ssl.truststore.certificates", T::Password, None),
    ConfigDef::new("ssl.client.auth", T::String, Some("none")),
    ConfigDef::new("ssl.enabled.protocols", T::List, Some("TLSv1.2,TLSv1.3")),
    ConfigDef::new("ssl.cipher.suites", T::List, Some("")),
    ConfigDef::new("ssl.principal.mapping.rules", T::String, Some("DEFAULT")),
    ConfigDef::new(
        "ssl.endpoint.identification.algorithm",
        T::String,
        Some("https"),
    ),
    ConfigDef::new("ssl.keystore.password", T::Password, None),
    ConfigDef::new("ssl.key.password", T::Password, None),
    ConfigDef::new("ssl.truststore.password", T::Password, None),
    ConfigDef::new("password.encoder.secret", T::Password, None),
    // SASL listeners (`super::sasl`); GSSAPI is Kafka's default and is refused on a SASL listener.
    ConfigDef::new("sasl.enabled.mechanisms", T::List, Some("GSSAPI")),
    ConfigDef::new(
        "sasl.mechanism.inter.broker.protocol",
        T::String,
        Some("GSSAPI"),
    ),
    ConfigDef::new(
        "connection.failed.authentication.delay.ms",
        T::Int,
        Some("100"),
    )
    .with(Constraint::AtLeast(0)),
    ConfigDef::new("connections.max.reauth.ms", T::Long, Some("0")),
    ConfigDef::new("sasl.server.max.receive.size", T::Int, Some("524288")),
];

/// `listener.name.<listener>.ssl.*` with a known `ssl.*` key: read by that listener's TLS set-up
/// (`super::ssl`), so not an unknown key.
fn is_listener_ssl_key(key: &str) -> bool {
    key.strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(_, k)| k.starts_with("ssl.") && broker_def(k).is_some())
}

/// What `odradek serve` runs with when given no `--config`: Kafka's single-broker quickstart
/// server.properties, listening on 127.0.0.1 and storing data under ./data.
pub const QUICKSTART_PROPERTIES: &str = "\
broker.id=0
listeners=PLAINTEXT://127.0.0.1:9092
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=./data
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
";

/// The shape of the broker's own log lines (`log.format`, a static key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The format of an already validated `log.format` value.
    fn parse(value: &str) -> LogFormat {
        if value.trim() == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}

/// A configuration problem that stops start-up, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("configuration {key}: {reason}")]
    Unsupported { key: &'static str, reason: String },
}

/// The broker's resolved configuration: the static keys (server.properties and `--override`),
/// the dynamic ones stored in the cluster, and the typed view of their merge.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Keys explicitly given (file, then overrides), verbatim: the "static broker config".
    explicit: BTreeMap<String, String>,
    /// The dynamic configs in force (cluster-wide default and this broker's own), already
    /// checked by [`super::dynamic::sanitize`].
    dynamic: DynamicBrokerConfigs,
    /// Static keys overlaid by the dynamic default, then by this broker's dynamic keys.
    effective: BTreeMap<String, String>,
    pub broker_id: i32,
    pub rack: Option<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    /// `listener.security.protocol.map`: listener name → security protocol.
    pub listener_protocols: BTreeMap<String, SecurityProtocol>,
    /// The listener name other brokers are reached on (`inter.broker.listener.name`).
    pub inter_broker_listener: String,
    /// The TLS settings of each SSL listener, by listener name.
    pub listener_ssl: BTreeMap<String, super::ssl::SslConfig>,
    /// The SASL settings of each SASL listener (SASL_PLAINTEXT, SASL_SSL), by listener name.
    pub listener_sasl: BTreeMap<String, super::sasl::SaslListenerConfig>,
    /// What every SASL listener shares.
    pub sasl: SaslSettings,
    pub log_dirs: Vec<PathBuf>,
    /// How the broker writes its own log lines (`log.format`).
    pub log_format: LogFormat,
    /// `http.listener`: `host:port` of the HTTP listener (/metrics, the console); `None` when
    /// the key is empty (no HTTP listener).
    pub http_listener: Option<String>,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: i64,
    pub flush_offset_checkpoint_interval_ms: u64,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// `max.connections.per.ip`: most connections open at once from one address.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides` (`host:count,...`): per-host limits, hosts as given
    /// (addresses or names, resolved by the acceptor).
    pub max_connections_per_ip_overrides: Vec<(String, usize)>,
    /// `connections.max.idle.ms`: a connection with nothing read for this long is closed
    /// (`None` when negative, as in Kafka: never).
    pub connections_max_idle: Option<std::time::Duration>,
    pub zookeeper_connect: Option<String>,
    pub min_insync_replicas: i32,
    pub producer_id_expiration_ms: i64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    /// Key-map memory of one cleaning pass (`log.cleaner.dedupe.buffer.size` / threads).
    pub cleaner_dedupe_buffer_bytes: usize,
    pub group: GroupSettings,
    pub txn: TransactionSettings,
    pub cluster: ClusterSettings,
    pub replication: ReplicationSettings,
    /// The replication throttle rates in force (dynamic).
    pub throttled_rates: ThrottledRates,
}

/// SASL settings shared by every SASL listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslSettings {
    /// `connection.failed.authentication.delay.ms`: a failed authentication is answered and
    /// closed this long after it failed.
    pub failed_authentication_delay: std::time::Duration,
    /// `sasl.server.max.receive.size`: the largest SASL token accepted before authentication.
    pub max_receive_size: usize,
}

/// The JAAS file named by `-Djava.security.auth.login.config=<file>` in `KAFKA_OPTS`, with its
/// text; an unreadable file stops start-up.
fn jaas_file_from_env() -> Result<Option<(String, String)>, InvalidValue> {
    let Some(path) = std::env::var("KAFKA_OPTS")
        .ok()
        .and_then(|opts| super::sasl::jaas_file_from_opts(&opts))
    else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) => Err(InvalidValue {
            key: "KAFKA_OPTS".into(),
            value: format!("{}{path}", super::sasl::JAAS_FILE_OPTION),
            reason: format!("cannot read the JAAS file: {e}"),
        }),
    }
}

/// Kafka's replication throttle rates (`leader.replication.throttled.rate`,
/// `follower.replication.throttled.rate`), in bytes per second; `i64::MAX` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottledRates {
    pub leader: i64,
    pub follower: i64,
}

impl Default for ThrottledRates {
    /// Kafka's defaults: unlimited.
    fn default() -> Self {
        ThrottledRates {
            leader: i64::MAX,
            follower: i64::MAX,
        }
    }
}

/// The broker settings of cluster mode: the ZooKeeper session and the controller.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub zookeeper_session_timeout_ms: u64,
    /// How long start-up waits for ZooKeeper (defaults to the session timeout, as in Kafka).
    pub zookeeper_connection_timeout_ms: u64,
    pub unclean_leader_election_enable: bool,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub leader_imbalance_per_broker_percentage: i32,
    pub controlled_shutdown_enable: bool,
    pub controlled_shutdown_max_retries: i32,
    pub controlled_shutdown_retry_backoff_ms: u64,
}

/// The broker settings of replication (Kafka's `replica.*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// `replica.lag.time.max.ms`: an ISR follower that has not caught up for this long is removed.
    pub lag_time_max_ms: u64,
    /// `replica.fetch.max.bytes`: per-partition bytes a follower asks for.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: bytes of a whole follower fetch response.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`: how long the leader may hold a follower fetch.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`: bytes the leader waits for before answering a follower.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after a fetch error.
    pub fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms`: connect and request timeout of follower connections.
    pub socket_timeout_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (no checkpoint file is written yet).
    pub high_watermark_checkpoint_interval_ms: u64,
    /// `replication.quota.window.num`: sample windows of the replication throttle rates.
    pub quota_window_num: u32,
    /// `replication.quota.window.size.seconds`: length of one sample window.
    pub quota_window_size_seconds: u32,
}

impl Default for ReplicationSettings {
    /// Kafka's defaults.
    fn default() -> Self {
        ReplicationSettings {
            lag_time_max_ms: 30_000,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_backoff_ms: 1_000,
            socket_timeout_ms: 30_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
        }
    }
}

/// The broker settings of the group coordinator.
#[derive(Clone, Debug)]
pub struct GroupSettings {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offset_metadata_max_bytes: usize,
}

/// The broker settings of the transaction coordinator (Kafka's TransactionLogConfig and
/// TransactionStateManagerConfig).
#[derive(Clone, Debug)]
pub struct TransactionSettings {
    pub state_log_num_partitions: i32,
    pub state_log_replication_factor: i16,
    pub state_log_min_isr: i32,
    pub state_log_segment_bytes: i32,
    /// Longest transaction timeout a producer may ask for (`transaction.max.timeout.ms`).
    pub max_timeout_ms: i32,
    /// Idle time after which an Empty or Complete* transactional id is expired.
    pub transactional_id_expiration_ms: i64,
    /// How often Ongoing transactions past their timeout are aborted.
    pub abort_timed_out_interval_ms: u64,
    /// How often expired transactional ids are removed.
    pub remove_expired_interval_ms: u64,
    /// Whether transactional produce verifies its partitions with the coordinator (KIP-890).
    pub partition_verification_enable: bool,
}

impl BrokerConfig {
    /// Resolves explicit properties (already merged: file then overrides) into a typed config.
    /// Unknown keys are returned so the caller can warn about them.
    pub fn from_properties(
        explicit: BTreeMap<String, String>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        Self::from_layers(explicit, DynamicBrokerConfigs::default())
    }

    /// The same static keys with other dynamic configs (already sanitized) over them.
    pub fn with_dynamic(&self, dynamic: DynamicBrokerConfigs) -> Result<BrokerConfig, ConfigError> {
        Self::from_layers(self.explicit.clone(), dynamic).map(|(config, _)| config)
    }

    fn from_layers(
        explicit: BTreeMap<String, String>,
        dynamic: DynamicBrokerConfigs,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut unknown = Vec::new();
        for (key, value) in &explicit {
            match broker_def(key) {
                Some(def) => def.validate(value)?,
                None if is_listener_ssl_key(key) => {}
                None if super::sasl::is_listener_sasl_key(key) => {}
                None => unknown.push(key.clone()),
            }
        }
        let effective = merge_layers(&explicit, &dynamic);
        for (key, value) in &effective {
            if let Some(def) = broker_def(key) {
                def.validate(value)?;
            }
        }
        let view = View {
            explicit: &effective,
        };
        let listener_config = listener::resolve(ListenerKeys {
            listeners: &view.string("listeners"),
            advertised_listeners: view.opt("advertised.listeners").as_deref(),
            protocol_map: &view.string("listener.security.protocol.map"),
            inter_broker_listener_name: view.opt("inter.broker.listener.name").as_deref(),
            security_inter_broker_protocol: view.opt("security.inter.broker.protocol").as_deref(),
        })?;
        let mut listener_ssl = BTreeMap::new();
        let mut listener_sasl = BTreeMap::new();
        let jaas_file = jaas_file_from_env()?;
        for l in &listener_config.listeners {
            if matches!(
                l.protocol,
                SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
            ) {
                listener_ssl.insert(l.name.clone(), super::ssl::resolve(&effective, &l.name)?);
            }
            if matches!(
                l.protocol,
                SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
            ) {
                let sasl = super::sasl::resolve(&effective, &l.name, jaas_file.as_ref())?;
                listener_sasl.insert(l.name.clone(), sasl);
            }
        }
        let log_dirs: Vec<PathBuf> = view
            .opt("log.dirs")
            .unwrap_or_else(|| view.string("log.dir"))
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.len() != 1 {
            return Err(ConfigError::Unsupported {
                key: "log.dirs",
                reason: format!(
                    "exactly one log directory is supported for now, got {}",
                    log_dirs.len()
                ),
            });
        }
        let config = BrokerConfig {
            broker_id: view.int("broker.id"),
            rack: view.opt("broker.rack"),
            listeners: listener_config.listeners,
            advertised_listeners: listener_config.advertised,
            listener_protocols: listener_config.protocol_map,
            inter_broker_listener: listener_config.inter_broker,
            listener_ssl,
            listener_sasl,
            sasl: SaslSettings {
                failed_authentication_delay: std::time::Duration::from_millis(
                    view.int("connection.failed.authentication.delay.ms").max(0) as u64,
                ),
                max_receive_size: view.int("sasl.server.max.receive.size").max(0) as usize,
            },
            log_dirs,
            log_format: LogFormat::parse(&view.string("log.format")),
            http_listener: Some(view.string("http.listener").trim().to_string())
                .filter(|v| !v.is_empty()),
            num_partitions: view.int("num.partitions"),
            default_replication_factor: view.int("default.replication.factor"),
            auto_create_topics_enable: view.bool("auto.create.topics.enable"),
            delete_topic_enable: view.bool("delete.topic.enable"),
            retention_check_interval_ms: view.long("log.retention.check.interval.ms") as u64,
            flush_scheduler_interval_ms: view.long("log.flush.scheduler.interval.ms"),
            flush_offset_checkpoint_interval_ms: view
                .int("log.flush.offset.checkpoint.interval.ms")
                .max(1) as u64,
            message_max_bytes: view.int("message.max.bytes"),
            socket_request_max_bytes: view.int("socket.request.max.bytes") as usize,
            max_connections: view.int("max.connections") as usize,
            max_connections_per_ip: view.int("max.connections.per.ip").max(0) as usize,
            max_connections_per_ip_overrides: parse_per_ip_overrides(
                &view.string("max.connections.per.ip.overrides"),
            )?,
            connections_max_idle: u64::try_from(view.long("connections.max.idle.ms"))
                .ok()
                .map(std::time::Duration::from_millis),
            zookeeper_connect: view.opt("zookeeper.connect").filter(|s| !s.is_empty()),
            min_insync_replicas: view.int("min.insync.replicas"),
            producer_id_expiration_ms: view.long("producer.id.expiration.ms"),
            cleaner_enable: view.bool("log.cleaner.enable"),
            cleaner_backoff_ms: view.long("log.cleaner.backoff.ms").max(100) as u64,
            cleaner_dedupe_buffer_bytes: (view.long("log.cleaner.dedupe.buffer.size").max(1 << 20)
                / i64::from(view.int("log.cleaner.threads").max(1)))
                as usize,
            group: GroupSettings {
                min_session_timeout_ms: view.int("group.min.session.timeout.ms"),
                max_session_timeout_ms: view.int("group.max.session.timeout.ms"),
                initial_rebalance_delay_ms: view.int("group.initial.rebalance.delay.ms").max(0),
                max_size: view.int("group.max.size").max(1) as usize,
                offsets_topic_num_partitions: view.int("offsets.topic.num.partitions"),
                offsets_topic_replication_factor: view.int("offsets.topic.replication.factor")
                    as i16,
                offsets_topic_segment_bytes: view.int("offsets.topic.segment.bytes"),
                offsets_retention_ms: i64::from(view.int("offsets.retention.minutes")) * 60_000,
                offsets_retention_check_interval_ms: view
                    .long("offsets.retention.check.interval.ms")
                    .max(1) as u64,
                offset_metadata_max_bytes: view.int("offset.metadata.max.bytes").max(0) as usize,
            },
            txn: TransactionSettings {
                state_log_num_partitions: view.int("transaction.state.log.num.partitions"),
                state_log_replication_factor: view.int("transaction.state.log.replication.factor")
                    as i16,
                state_log_min_isr: view.int("transaction.state.log.min.isr"),
                state_log_segment_bytes: view.int("transaction.state.log.segment.bytes"),
                max_timeout_ms: view.int("transaction.max.timeout.ms"),
                transactional_id_expiration_ms: i64::from(
                    view.int("transactional.id.expiration.ms"),
                ),
                abort_timed_out_interval_ms: view
                    .int("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                    .max(1) as u64,
                remove_expired_interval_ms: view
                    .int("transaction.remove.expired.transaction.cleanup.interval.ms")
                    .max(1) as u64,
                partition_verification_enable: view
                    .bool("transaction.partition.verification.enable"),
            },
            cluster: ClusterSettings {
                zookeeper_session_timeout_ms: view.int("zookeeper.session.timeout.ms").max(1)
                    as u64,
                zookeeper_connection_timeout_ms: view
                    .opt("zookeeper.connection.timeout.ms")
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or_else(|| view.int("zookeeper.session.timeout.ms"))
                    .max(1) as u64,
                unclean_leader_election_enable: view.bool("unclean.leader.election.enable"),
                auto_leader_rebalance_enable: view.bool("auto.leader.rebalance.enable"),
                leader_imbalance_check_interval_ms: view
                    .long("leader.imbalance.check.interval.seconds")
                    .max(1) as u64
                    * 1000,
                leader_imbalance_per_broker_percentage: view
                    .int("leader.imbalance.per.broker.percentage"),
                controlled_shutdown_enable: view.bool("controlled.shutdown.enable"),
                controlled_shutdown_max_retries: view.int("controlled.shutdown.max.retries"),
                controlled_shutdown_retry_backoff_ms: view
                    .long("controlled.shutdown.retry.backoff.ms")
                    .max(0) as u64,
            },
            replication: ReplicationSettings {
                lag_time_max_ms: view.long("replica.lag.time.max.ms").max(1) as u64,
                fetch_max_bytes: view.int("replica.fetch.max.bytes"),
                fetch_response_max_bytes: view.int("replica.fetch.response.max.bytes"),
                fetch_wait_max_ms: view.int("replica.fetch.wait.max.ms"),
                fetch_min_bytes: view.int("replica.fetch.min.bytes"),
                fetch_backoff_ms: view.int("replica.fetch.backoff.ms").max(0) as u64,
                socket_timeout_ms: view.int("replica.socket.timeout.ms").max(1) as u64,
                high_watermark_checkpoint_interval_ms: view
                    .long("replica.high.watermark.checkpoint.interval.ms")
                    .max(1) as u64,
                quota_window_num: view.int("replication.quota.window.num").max(1) as u32,
                quota_window_size_seconds: view.int("replication.quota.window.size.seconds").max(1)
                    as u32,
            },
            throttled_rates: ThrottledRates {
                leader: view.long("leader.replication.throttled.rate").max(0),
                follower: view.long("follower.replication.throttled.rate").max(0),
            },
            explicit,
            dynamic,
            effective,
        };
        Ok((config, unknown))
    }

    /// The effective value of a known broker key and where it comes from (its own layers only;
    /// `config::describe` adds Kafka's synonyms).
    pub fn value_of(&self, key: &str) -> Option<(Option<String>, ConfigSource)> {
        let def = broker_def(key)?;
        let source = [
            ConfigSource::DynamicBroker,
            ConfigSource::DynamicDefaultBroker,
            ConfigSource::StaticBroker,
        ]
        .into_iter()
        .find(|s| self.layer_value(*s, key).is_some())
        .unwrap_or(ConfigSource::Default);
        let value = self
            .effective(key)
            .map(str::to_string)
            .or_else(|| def.default.map(str::to_string));
        Some((value, source))
    }

    /// The explicitly set (static) value of a key, if any.
    pub fn explicit(&self, key: &str) -> Option<&str> {
        self.explicit.get(key).map(String::as_str)
    }

    /// The value `key` has in one layer: a dynamic layer, the static keys, or the built-in
    /// default (`ConfigSource::TopicOverride` has no broker layer).
    pub fn layer_value(&self, layer: ConfigSource, key: &str) -> Option<&str> {
        match layer {
            ConfigSource::DynamicBroker => self.dynamic.broker.get(key).map(String::as_str),
            ConfigSource::DynamicDefaultBroker => self.dynamic.default.get(key).map(String::as_str),
            ConfigSource::StaticBroker => self.explicit(key),
            ConfigSource::Default => broker_def(key).and_then(|d| d.default),
            ConfigSource::TopicOverride => None,
        }
    }

    /// The value in force of a key set in some layer (static or dynamic), defaults aside.
    pub fn effective(&self, key: &str) -> Option<&str> {
        self.effective.get(key).map(String::as_str)
    }

    /// Every key set in some layer, known or not, with its value in force.
    pub fn effective_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.effective.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The dynamic configs in force.
    pub fn dynamic(&self) -> &DynamicBrokerConfigs {
        &self.dynamic
    }
}

/// Parses Kafka's `max.connections.per.ip.overrides`: `host:count` pairs separated by commas
/// (the count after the last colon, so IPv6 addresses work); an empty value means none.
pub fn parse_per_ip_overrides(value: &str) -> Result<Vec<(String, usize)>, InvalidValue> {
    let bad = |reason: String| InvalidValue {
        key: "max.connections.per.ip.overrides".into(),
        value: value.into(),
        reason,
    };
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("`{entry}` is not host:count")))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad(format!("`{entry}` has no host")));
        }
        let count: i32 = count
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{entry}`: the count is not an integer")))?;
        let count =
            usize::try_from(count).map_err(|_| bad(format!("`{entry}`: negative count")))?;
        out.push((host.to_string(), count));
    }
    Ok(out)
}

/// Looks up a known broker key.
pub fn broker_def(key: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == key)
}

/// Typed reads of validated values, falling back to defaults.
struct View<'a> {
    explicit: &'a BTreeMap<String, String>,
}

impl View<'_> {
    fn opt(&self, key: &str) -> Option<String> {
        self.explicit
            .get(key)
            .map(|v| v.trim().to_string())
            .or_else(|| broker_def(key).and_then(|d| d.default).map(str::to_string))
    }
    fn string(&self, key: &str) -> String {
        self.opt(key).unwrap_or_default()
    }
    // Values were validated against their definitions before any typed read.
    fn long(&self, key: &str) -> i64 {
        self.opt(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
    fn int(&self, key: &str) -> i32 {
        self.opt(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
    fn bool(&self, key: &str) -> bool {
        self.opt(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::parse;

    #[test]
    fn every_key_is_defined_once() {
        let mut seen = std::collections::HashSet::new();
        for d in BROKER_CONFIGS {
            assert!(seen.insert(d.name), "broker key {} defined twice", d.name);
        }
        let mut seen = std::collections::HashSet::new();
        for d in crate::config::topic::TOPIC_CONFIGS {
            assert!(
                seen.insert(d.def.name),
                "topic key {} defined twice",
                d.def.name
            );
        }
    }

    #[test]
    fn quickstart_defaults_resolve() {
        let (c, unknown) = BrokerConfig::from_properties(parse(QUICKSTART_PROPERTIES)).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(c.broker_id, 0);
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.listeners[0].host, "127.0.0.1");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./data")]);
        assert_eq!(c.message_max_bytes, 1048588);
        assert_eq!(c.socket_request_max_bytes, 100 * 1024 * 1024);
        assert_eq!(c.group.offsets_topic_replication_factor, 1);
        assert_eq!(c.group.initial_rebalance_delay_ms, 0);
        assert_eq!(c.txn.state_log_replication_factor, 1);
        assert_eq!(c.txn.state_log_min_isr, 1);
        assert_eq!(c.txn.state_log_num_partitions, 50);
        assert_eq!(c.txn.max_timeout_ms, 900_000);
        assert_eq!(c.txn.transactional_id_expiration_ms, 604_800_000);
        assert_eq!(c.txn.abort_timed_out_interval_ms, 10_000);
        assert_eq!(c.txn.remove_expired_interval_ms, 3_600_000);
        assert!(c.txn.partition_verification_enable);
        assert!(c.auto_create_topics_enable);
        assert_eq!(c.replication, ReplicationSettings::default());
        assert_eq!(c.throttled_rates, ThrottledRates::default());
        assert_eq!(
            c.value_of("num.partitions").unwrap().1,
            ConfigSource::StaticBroker
        );
        assert_eq!(
            c.value_of("message.max.bytes").unwrap(),
            (Some("1048588".into()), ConfigSource::Default)
        );
    }

    #[test]
    fn bad_value_names_the_key() {
        let mut p = parse(QUICKSTART_PROPERTIES);
        p.insert("num.partitions".into(), "lots".into());
        let err = BrokerConfig::from_properties(p).unwrap_err().to_string();
        assert!(err.contains("num.partitions"), "{err}");
    }

    #[test]
    fn log_format_is_text_json_or_refused() {
        let format = |value: Option<&str>| {
            let mut p = parse(QUICKSTART_PROPERTIES);
            if let Some(value) = value {
                p.insert("log.format".into(), value.into());
            }
            BrokerConfig::from_properties(p).map(|(c, _)| c.log_format)
        };
        assert_eq!(format(None).unwrap(), LogFormat::Text);
        assert_eq!(format(Some("text")).unwrap(), LogFormat::Text);
        assert_eq!(format(Some(" json ")).unwrap(), LogFormat::Json);
        for bad in ["JSON", "xml", ""] {
            let err = format(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("log.format"), "{bad:?}: {err}");
        }
        assert!(crate::config::dynamic::read_only("log.format"));
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let mut p = parse(QUICKSTART_PROPERTIES);
        p.insert("made.up.key".into(), "1".into());
        // A listener's own form of a known ssl.* key is known; of anything else, not.
        p.insert("listener.name.ssl.ssl.client.auth".into(), "none".into());
        p.insert("listener.name.ssl.made.up".into(), "1".into());
        let (_, unknown) = BrokerConfig::from_properties(p).unwrap();
        assert_eq!(
            unknown,
            vec![
                "listener.name.ssl.made.up".to_string(),
                "made.up.key".to_string()
            ]
        );
    }

    #[test]
    fn per_ip_overrides_parse_as_kafka_writes_them() {
        assert_eq!(parse_per_ip_overrides("").unwrap(), vec![]);
        assert_eq!(
            parse_per_ip_overrides("127.0.0.1:5, broker-a:0,[::1]:7").unwrap(),
            vec![
                ("127.0.0.1".to_string(), 5),
                ("broker-a".to_string(), 0),
                ("::1".to_string(), 7)
            ]
        );
        for bad in ["127.0.0.1", "h:x", "h:-1", ":3"] {
            let err = parse_per_ip_overrides(bad).unwrap_err();
            assert_eq!(err.key, "max.connections.per.ip.overrides", "{bad}");
        }
        let mut p = parse(crate::config::QUICKSTART_PROPERTIES);
        p.insert("max.connections.per.ip.overrides".into(), "nope".into());
        assert!(BrokerConfig::from_properties(p).is_err());
    }

    #[test]
    fn idle_timeout_and_per_ip_defaults() {
        let (c, _) =
            BrokerConfig::from_properties(parse(crate::config::QUICKSTART_PROPERTIES)).unwrap();
        assert_eq!(
            c.connections_max_idle,
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(c.max_connections_per_ip, i32::MAX as usize);
        assert!(c.max_connections_per_ip_overrides.is_empty());
        let mut p = parse(crate::config::QUICKSTART_PROPERTIES);
        p.insert("connections.max.idle.ms".into(), "-1".into());
        assert_eq!(
            BrokerConfig::from_properties(p)
                .unwrap()
                .0
                .connections_max_idle,
            None
        );
    }
}
