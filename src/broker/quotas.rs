//! Client byte-rate quotas (`producer_byte_rate`, `consumer_byte_rate`), measured and enforced
//! as Kafka's `ClientQuotaManager` does.
//!
//! - Which quota applies to a (user, client id) follows Kafka's precedence: `/users/<u>/clients/<c>`,
//!   `/users/<u>/clients/<default>`, `/users/<u>`, `/users/<default>/clients/<c>`,
//!   `/users/<default>/clients/<default>`, `/users/<default>`, `/clients/<c>`, `/clients/<default>`.
//!   The match decides the metric's key (its "tags"): a user quota is one rate shared by all the
//!   user's client ids, a client-id quota one rate shared by all users of that client id.
//! - The rate is Kafka's `Rate` over a `WindowedSum` of `quota.window.num` samples of
//!   `quota.window.size.seconds`: recorded first, then measured; above the bound the throttle
//!   time is `(rate - bound) / bound * window` (not capped for byte-rate quotas, as in Kafka:
//!   only the request-percentage quota caps it at one window).
//! - Quotas are read from the cluster metadata's user and client entities, re-read when the
//!   metadata generation moves, so a changed or removed quota applies to the next request.
//!   With no quota of a type the check is one generation compare and one `Option`.
//! - Rates of clients idle for an hour are dropped (Kafka's inactive sensor expiry).
//!
//! Differences from Kafka: a client no quota applies to is not measured at all (Kafka keeps an
//! unlimited rate for it once any quota has been set), so a quota added later starts from an
//! empty window; IP entities hold connection-rate quotas, which are not enforced.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

use crate::cluster::{ClusterMetadata, MetadataVersion};
use crate::config::client_entity::{
    ClientEntity, ClientEntityConfigs, EntityName, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE,
};
use crate::config::BrokerConfig;

/// Kafka's inactive sensor expiry: a rate not recorded for an hour is dropped.
const INACTIVE_SENSOR_EXPIRY_MS: i64 = 3_600_000;
/// How often idle rates are looked for (Kafka's sensor purger runs every 30 s).
const EXPIRY_SWEEP_MS: i64 = 30_000;

/// The two byte-rate quota types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaType {
    Produce,
    Fetch,
}

impl QuotaType {
    /// The entity config key holding the quota.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
        }
    }
}

/// The sample windows rates are measured over (`quota.window.num`, `quota.window.size.seconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    pub samples: u32,
    pub window_ms: i64,
}

impl Default for QuotaWindow {
    /// Kafka's defaults: 11 windows of 1 s.
    fn default() -> Self {
        QuotaWindow {
            samples: 11,
            window_ms: 1_000,
        }
    }
}

impl QuotaWindow {
    /// The static broker keys; unparseable or below 1 falls back to the default.
    pub fn of(config: &BrokerConfig) -> QuotaWindow {
        let int = |key: &str| {
            config
                .effective(key)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|v| *v >= 1)
        };
        let default = QuotaWindow::default();
        QuotaWindow {
            samples: int("quota.window.num").unwrap_or(default.samples),
            window_ms: int("quota.window.size.seconds")
                .map_or(default.window_ms, |s| i64::from(s) * 1_000),
        }
    }
}

/// Quotas of one level that may name an entity or hold its default.
#[derive(Clone, Debug, Default, PartialEq)]
struct Level {
    named: HashMap<String, f64>,
    default: Option<f64>,
}

impl Level {
    fn set(&mut self, name: &EntityName, quota: f64) {
        match name {
            EntityName::Named(n) => {
                self.named.insert(n.clone(), quota);
            }
            EntityName::Default => self.default = Some(quota),
        }
    }

    fn named(&self, name: &str) -> Option<f64> {
        self.named.get(name).copied()
    }
}

/// Every quota of one type, arranged for lookups without allocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaTable {
    /// `/users/<u>/clients/<c>` and `/users/<u>/clients/<default>`, per named user.
    user_clients: HashMap<String, Level>,
    /// `/users/<default>/clients/<c>` and `/users/<default>/clients/<default>`.
    default_user_clients: Level,
    /// `/users/<u>` and `/users/<default>`.
    users: Level,
    /// `/clients/<c>` and `/clients/<default>`.
    clients: Level,
}

impl QuotaTable {
    /// The quotas of `kind` among the stored entity configs; `None` when there is none.
    /// Values that are not numbers are skipped with a warning.
    pub fn of(configs: &ClientEntityConfigs, kind: QuotaType) -> Option<QuotaTable> {
        let mut table = QuotaTable::default();
        let mut any = false;
        for (entity, values) in &configs.entities {
            let Some(raw) = values.get(kind.key()) else {
                continue;
            };
            let Some(quota) = raw.trim().parse::<f64>().ok().filter(|q| *q > 0.0) else {
                warn!(?entity, key = kind.key(), value = %raw, "ignoring a quota that is not a positive number");
                continue;
            };
            if matches!(entity, ClientEntity::Ip(_)) {
                continue;
            }
            any = true;
            match entity {
                ClientEntity::User(u) => table.users.set(u, quota),
                ClientEntity::ClientId(c) => table.clients.set(c, quota),
                ClientEntity::UserClientId(EntityName::Named(u), c) => table
                    .user_clients
                    .entry(u.clone())
                    .or_default()
                    .set(c, quota),
                ClientEntity::UserClientId(EntityName::Default, c) => {
                    table.default_user_clients.set(c, quota)
                }
                ClientEntity::Ip(_) => {}
            }
        }
        any.then_some(table)
    }

    /// Kafka's `quotaMetricTags`: whether the most specific quota that applies to `user` and
    /// `client_id` keys its rate by the user, by the client id (or both).
    fn tags(&self, user: &str, client_id: &str) -> (bool, bool) {
        let user_clients = self.user_clients.get(user);
        // 1 and 2: /users/<u>/clients/<c>, /users/<u>/clients/<default>.
        if user_clients.is_some_and(|l| l.named(client_id).is_some() || l.default.is_some()) {
            return (true, true);
        }
        // 3: /users/<u>.
        if self.users.named(user).is_some() {
            return (true, false);
        }
        // 4 and 5: /users/<default>/clients/<c>, /users/<default>/clients/<default>.
        if self.default_user_clients.named(client_id).is_some()
            || self.default_user_clients.default.is_some()
        {
            return (true, true);
        }
        // 6: /users/<default>.
        if self.users.default.is_some() {
            return (true, false);
        }
        // 7 and 8: /clients/<c>, /clients/<default>.
        (false, true)
    }

    /// Kafka's `quotaLimit` of a rate's tags (bytes/s); `None` for unlimited. Looks only at the
    /// levels that key their rate that way, so it agrees with [`QuotaTable::tags`].
    pub fn limit(&self, user: &str, client_id: &str) -> Option<f64> {
        match (user.is_empty(), client_id.is_empty()) {
            (false, false) => {
                let own = self.user_clients.get(user);
                own.and_then(|l| l.named(client_id))
                    .or_else(|| own.and_then(|l| l.default))
                    .or_else(|| self.default_user_clients.named(client_id))
                    .or(self.default_user_clients.default)
            }
            (false, true) => self.users.named(user).or(self.users.default),
            (true, false) => self.clients.named(client_id).or(self.clients.default),
            (true, true) => None,
        }
    }

    /// The rate key and bound that apply to `user` and `client_id`; `None` when unlimited.
    pub fn resolve<'a>(
        &self,
        user: &'a str,
        client_id: &'a str,
    ) -> Option<(&'a str, &'a str, f64)> {
        let (by_user, by_client) = self.tags(user, client_id);
        let (u, c) = (
            if by_user { user } else { "" },
            if by_client { client_id } else { "" },
        );
        self.limit(u, c).map(|bound| (u, c, bound))
    }
}

/// One sample window of a `WindowedSum`.
#[derive(Clone, Copy, Debug)]
struct Sample {
    value: f64,
    event_count: u64,
    start_ms: i64,
    last_event_ms: i64,
}

impl Sample {
    fn new(now: i64) -> Sample {
        Sample {
            value: 0.0,
            event_count: 0,
            start_ms: now,
            last_event_ms: now,
        }
    }

    fn reset(&mut self, now: i64) {
        *self = Sample::new(now);
    }
}

/// Kafka's `Rate` over a `WindowedSum`: per-second rate of the values recorded in the last
/// `samples` windows (one more slot is kept for the window overlapping the oldest).
#[derive(Clone, Debug, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    /// Adds `value` at `now` (a new window starts when the current one is `window_ms` old).
    pub fn record(&mut self, window: QuotaWindow, value: f64, now: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        if now - self.samples[self.current].start_ms >= window.window_ms {
            self.current = (self.current + 1) % (window.samples as usize + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now));
            } else {
                self.samples[self.current].reset(now);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.value += value;
        sample.event_count += 1;
        sample.last_event_ms = now;
    }

    /// Resets windows whose last event is older than all the windows together.
    fn purge(&mut self, window: QuotaWindow, now: i64) {
        let expire = i64::from(window.samples) * window.window_ms;
        for s in &mut self.samples {
            if now - s.last_event_ms >= expire {
                s.reset(now);
            }
        }
    }

    /// Kafka's `Rate.windowSize`: the time since the oldest window started, counting missing
    /// windows as empty ones so it is at least `samples - 1` windows; at least 1 ms.
    pub fn window_size(&mut self, window: QuotaWindow, now: i64) -> i64 {
        self.purge(window, now);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let mut elapsed = now - oldest;
        let full = elapsed / window.window_ms;
        let min_full = i64::from(window.samples) - 1;
        if full < min_full {
            elapsed += (min_full - full) * window.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now`.
    pub fn measure(&mut self, window: QuotaWindow, now: i64) -> f64 {
        self.purge(window, now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (self.window_size(window, now) as f64 / 1_000.0)
    }
}

/// Kafka's throttle time: how long, with nothing more recorded, until the rate `value`
/// measured over `window_size_ms` falls to `bound`: `(value - bound) / bound * window`, rounded.
pub fn throttle_time_ms(value: f64, bound: f64, window_size_ms: i64) -> i64 {
    ((value - bound) / bound * window_size_ms as f64).round() as i64
}

/// The rate kept for one quota entity.
#[derive(Debug)]
struct Sensor {
    rate: Rate,
    last_record_ms: i64,
}

/// Rates by user tag, then client-id tag (nested so lookups borrow the request's names).
#[derive(Debug, Default)]
struct Sensors {
    by_tags: HashMap<Arc<str>, HashMap<Arc<str>, Sensor>>,
    last_sweep_ms: i64,
}

/// Kafka's `ClientQuotaManager` for one quota type: the rates per quota entity.
#[derive(Debug)]
pub struct ClientQuotaManager {
    kind: QuotaType,
    window: QuotaWindow,
    sensors: Mutex<Sensors>,
}

impl ClientQuotaManager {
    pub fn new(kind: QuotaType, window: QuotaWindow) -> ClientQuotaManager {
        ClientQuotaManager {
            kind,
            window,
            sensors: Mutex::new(Sensors::default()),
        }
    }

    /// Records `value` bytes of `user` / `client_id` at `now` and returns the throttle time
    /// (0 when within the quota). With `unrecord_if_throttled` a throttled value is taken back
    /// again (a throttled fetch sends nothing, Kafka's `unrecordQuotaSensor`).
    pub fn record(
        &self,
        table: &QuotaTable,
        user: &str,
        client_id: &str,
        value: f64,
        now: i64,
        unrecord_if_throttled: bool,
    ) -> i64 {
        let Some((u, c, bound)) = table.resolve(user, client_id) else {
            return 0;
        };
        let mut sensors = self.sensors.lock();
        self.expire_idle(&mut sensors, now);
        if !sensors.by_tags.get(u).is_some_and(|m| m.contains_key(c)) {
            sensors.by_tags.entry(Arc::from(u)).or_default().insert(
                Arc::from(c),
                Sensor {
                    rate: Rate::default(),
                    last_record_ms: now,
                },
            );
        }
        let Some(sensor) = sensors.by_tags.get_mut(u).and_then(|m| m.get_mut(c)) else {
            return 0;
        };
        sensor.last_record_ms = now;
        sensor.rate.record(self.window, value, now);
        let measured = sensor.rate.measure(self.window, now);
        if measured <= bound {
            return 0;
        }
        let throttle = throttle_time_ms(measured, bound, sensor.rate.window_size(self.window, now));
        if unrecord_if_throttled {
            sensor.rate.record(self.window, -value, now);
        }
        tracing::debug!(quota = ?self.kind, user = u, client_id = c, rate = measured, bound, throttle_ms = throttle, "quota violated");
        throttle.max(0)
    }

    /// Kafka's `getMaxValueInQuotaWindow`: the most bytes one request may take without being
    /// certain to be throttled (`bound * (samples - 1) * window seconds`); `None` when unlimited.
    pub fn max_value_in_window(
        &self,
        table: &QuotaTable,
        user: &str,
        client_id: &str,
    ) -> Option<f64> {
        table.resolve(user, client_id).map(|(_, _, bound)| {
            bound * f64::from(self.window.samples - 1) * (self.window.window_ms as f64 / 1_000.0)
        })
    }

    /// Drops rates not recorded for an hour, looking at most every 30 s.
    fn expire_idle(&self, sensors: &mut Sensors, now: i64) {
        if now - sensors.last_sweep_ms < EXPIRY_SWEEP_MS {
            return;
        }
        sensors.last_sweep_ms = now;
        sensors.by_tags.retain(|_, clients| {
            clients.retain(|_, s| now - s.last_record_ms <= INACTIVE_SENSOR_EXPIRY_MS);
            !clients.is_empty()
        });
    }

    /// How many rates are kept.
    pub fn sensor_count(&self) -> usize {
        self.sensors.lock().by_tags.values().map(HashMap::len).sum()
    }
}

/// The quotas of the current metadata generation.
#[derive(Debug, Default)]
struct Tables {
    generation: u64,
    produce: Option<QuotaTable>,
    fetch: Option<QuotaTable>,
}

/// The broker's client quotas: the produce and fetch managers and the quotas they enforce,
/// followed from the cluster metadata.
pub struct ClientQuotas {
    metadata: Arc<dyn ClusterMetadata>,
    version: watch::Receiver<MetadataVersion>,
    tables: ArcSwap<Tables>,
    pub produce: ClientQuotaManager,
    pub fetch: ClientQuotaManager,
    /// Time zero of the managers' millisecond clock (tokio's, so tests can pause it).
    base: Instant,
}

impl ClientQuotas {
    pub fn new(metadata: Arc<dyn ClusterMetadata>, window: QuotaWindow) -> ClientQuotas {
        let version = metadata.subscribe();
        ClientQuotas {
            metadata,
            version,
            // A generation no metadata has, so the first request reads the quotas.
            tables: ArcSwap::from_pointee(Tables {
                generation: u64::MAX,
                ..Tables::default()
            }),
            produce: ClientQuotaManager::new(QuotaType::Produce, window),
            fetch: ClientQuotaManager::new(QuotaType::Fetch, window),
            base: Instant::now(),
        }
    }

    /// The quotas of the current generation, re-read when the metadata changed.
    fn tables(&self) -> Arc<Tables> {
        let generation = self.version.borrow().generation;
        let tables = self.tables.load();
        if tables.generation == generation {
            return arc_swap::Guard::into_inner(tables);
        }
        let configs = self.metadata.client_entities();
        let fresh = Arc::new(Tables {
            generation,
            produce: QuotaTable::of(&configs, QuotaType::Produce),
            fetch: QuotaTable::of(&configs, QuotaType::Fetch),
        });
        self.tables.store(fresh.clone());
        fresh
    }

    fn now_ms(&self) -> i64 {
        self.base.elapsed().as_millis() as i64
    }

    /// Records a Produce request of `bytes` (Kafka counts the request header and body) and
    /// returns its throttle time in ms.
    pub fn record_produce(&self, user: &str, client_id: &str, bytes: usize) -> i64 {
        let tables = self.tables();
        let Some(table) = &tables.produce else {
            return 0;
        };
        self.produce
            .record(table, user, client_id, bytes as f64, self.now_ms(), false)
    }

    /// Records a consumer Fetch answer of `bytes` (size prefix and body, as Kafka counts it)
    /// and returns its throttle time in ms; a throttled answer is not counted (it is sent
    /// empty).
    pub fn record_fetch(&self, user: &str, client_id: &str, bytes: usize) -> i64 {
        let tables = self.tables();
        let Some(table) = &tables.fetch else {
            return 0;
        };
        self.fetch
            .record(table, user, client_id, bytes as f64, self.now_ms(), true)
    }

    /// Whether any fetch quota is set (a consumer fetch then needs its answer's size).
    pub fn fetch_enabled(&self) -> bool {
        self.tables().fetch.is_some()
    }

    /// Whether any produce quota is set.
    pub fn produce_enabled(&self) -> bool {
        self.tables().produce.is_some()
    }

    /// The most bytes a consumer fetch may return without certain throttling; `None` when
    /// unlimited.
    pub fn fetch_max_bytes(&self, user: &str, client_id: &str) -> Option<usize> {
        let tables = self.tables();
        let table = tables.fetch.as_ref()?;
        self.fetch
            .max_value_in_window(table, user, client_id)
            .map(|v| v.min(i32::MAX as f64).max(0.0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn n(s: &str) -> EntityName {
        EntityName::Named(s.into())
    }

    fn table(entries: &[(ClientEntity, f64)]) -> QuotaTable {
        let configs = ClientEntityConfigs {
            entities: entries
                .iter()
                .map(|(e, q)| {
                    (
                        e.clone(),
                        BTreeMap::from([(PRODUCER_BYTE_RATE.to_string(), q.to_string())]),
                    )
                })
                .collect(),
        };
        QuotaTable::of(&configs, QuotaType::Produce).unwrap()
    }

    fn all_levels() -> Vec<(ClientEntity, f64)> {
        use ClientEntity::*;
        use EntityName::Default as D;
        vec![
            (UserClientId(n("alice"), n("app")), 1.0),
            (UserClientId(n("alice"), D), 2.0),
            (User(n("alice")), 3.0),
            (UserClientId(D, n("app")), 4.0),
            (UserClientId(D, D), 5.0),
            (User(D), 6.0),
            (ClientId(n("app")), 7.0),
            (ClientId(D), 8.0),
        ]
    }

    #[test]
    fn precedence_is_kafkas_eight_levels() {
        let mut levels = all_levels();
        let expected = [
            ("alice", "app", 1.0),
            ("alice", "app", 2.0),
            ("alice", "", 3.0),
            ("alice", "app", 4.0),
            ("alice", "app", 5.0),
            ("alice", "", 6.0),
            ("", "app", 7.0),
            ("", "app", 8.0),
        ];
        for (u, c, q) in expected {
            let t = table(&levels);
            assert_eq!(
                t.resolve("alice", "app"),
                Some((u, c, q)),
                "level of quota {q}"
            );
            levels.remove(0);
        }
        assert_eq!(
            QuotaTable::of(&ClientEntityConfigs::default(), QuotaType::Produce),
            None
        );
    }

    #[test]
    fn rates_are_shared_by_the_matched_entity() {
        use ClientEntity::*;
        let t = table(&[(User(n("alice")), 100.0), (ClientId(n("app")), 50.0)]);
        // Every client id of alice shares her user quota.
        assert_eq!(t.resolve("alice", "x"), Some(("alice", "", 100.0)));
        assert_eq!(t.resolve("alice", "app"), Some(("alice", "", 100.0)));
        // Other users of "app" share the client-id quota; others are unlimited.
        assert_eq!(t.resolve("bob", "app"), Some(("", "app", 50.0)));
        assert_eq!(t.resolve("bob", "other"), None);
        // Another type's quota and non-numbers are not this type's.
        let configs = ClientEntityConfigs {
            entities: BTreeMap::from([(
                User(n("alice")),
                BTreeMap::from([
                    (CONSUMER_BYTE_RATE.to_string(), "10".to_string()),
                    (PRODUCER_BYTE_RATE.to_string(), "lots".to_string()),
                ]),
            )]),
        };
        assert_eq!(QuotaTable::of(&configs, QuotaType::Produce), None);
        assert!(QuotaTable::of(&configs, QuotaType::Fetch).is_some());
    }

    #[test]
    fn rate_counts_missing_windows_as_empty() {
        let w = QuotaWindow::default();
        let mut rate = Rate::default();
        rate.record(w, 1_000.0, 0);
        // First window: 10 whole windows assumed before it, so 1000 bytes over 10 s.
        assert_eq!(rate.window_size(w, 0), 10_000);
        assert_eq!(rate.measure(w, 0), 100.0);
        assert_eq!(rate.window_size(w, 500), 10_500);
        // After 11 windows without events everything is purged.
        assert_eq!(rate.measure(w, 11_000), 0.0);
    }

    #[test]
    fn rate_slides_over_its_samples() {
        let w = QuotaWindow {
            samples: 2,
            window_ms: 1_000,
        };
        let mut rate = Rate::default();
        rate.record(w, 100.0, 0);
        rate.record(w, 100.0, 1_000);
        rate.record(w, 100.0, 2_000);
        // The window of time 0 ended two windows ago: purged; 200 bytes over 1 s.
        assert_eq!(rate.window_size(w, 2_000), 1_000);
        assert_eq!(rate.measure(w, 2_000), 200.0);
        // Three slots for two samples: the slot of time 0 is reused, that of 1000 purged.
        rate.record(w, 100.0, 3_000);
        assert_eq!(rate.measure(w, 3_000), 200.0);
        assert_eq!(rate.window_size(w, 3_000), 1_000);
    }

    #[test]
    fn throttle_time_brings_the_rate_back_to_the_bound() {
        assert_eq!(throttle_time_ms(200.0, 100.0, 10_000), 10_000);
        assert_eq!(throttle_time_ms(150.0, 100.0, 10_000), 5_000);
        assert_eq!(throttle_time_ms(100.4, 100.0, 1_001), 4);
        let t = table(&[(ClientEntity::ClientId(n("app")), 100.0)]);
        let m = ClientQuotaManager::new(QuotaType::Produce, QuotaWindow::default());
        // 1000 bytes over the assumed 10 s: exactly the bound, not throttled.
        assert_eq!(m.record(&t, "u", "app", 1_000.0, 0, false), 0);
        // 3000 bytes: 300 B/s against 100: twice the 10 s window.
        assert_eq!(m.record(&t, "u", "app", 2_000.0, 0, false), 20_000);
        // Unlimited clients are not measured.
        assert_eq!(m.record(&t, "u", "other", 1e9, 0, false), 0);
        assert_eq!(m.sensor_count(), 1);
    }

    #[test]
    fn a_throttled_fetch_is_unrecorded() {
        let t = table(&[(ClientEntity::ClientId(EntityName::Default), 100.0)]);
        let m = ClientQuotaManager::new(QuotaType::Fetch, QuotaWindow::default());
        assert!(m.record(&t, "u", "c", 5_000.0, 0, true) > 0);
        // The throttled bytes were taken back: a small fetch passes.
        assert_eq!(m.record(&t, "u", "c", 500.0, 100, true), 0);
        assert_eq!(m.max_value_in_window(&t, "u", "c"), Some(1_000.0));
        assert_eq!(
            m.max_value_in_window(&table(&[(ClientEntity::User(n("x")), 1.0)]), "u", "c"),
            None
        );
    }

    #[test]
    fn idle_rates_expire_after_an_hour() {
        let t = table(&[(ClientEntity::ClientId(EntityName::Default), 100.0)]);
        let m = ClientQuotaManager::new(QuotaType::Produce, QuotaWindow::default());
        m.record(&t, "u", "a", 1.0, 0, false);
        m.record(&t, "u", "b", 1.0, 1_800_000, false);
        assert_eq!(m.sensor_count(), 2);
        m.record(&t, "u", "b", 1.0, INACTIVE_SENSOR_EXPIRY_MS + 1, false);
        assert_eq!(m.sensor_count(), 1, "a expired, b kept");
    }
}
