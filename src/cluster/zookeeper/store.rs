//! The operations brokers and the controller perform on Kafka's ZooKeeper layout, each a small
//! function over [`ZkClient`].

use std::collections::BTreeMap;

use super::client::{CreateMode, Op, OpResult, ZkClient, ZkError};
use super::paths;
use super::znodes::{
    decode_controller_epoch, encode_controller_epoch, encode_delete_topic_marker,
    BrokerRegistration, ClusterIdZnode, ConfigChangeNotification, ControllerZnode, EntityConfig,
    PartitionStateZnode, ProducerIdBlock, TopicAssignment,
};
use crate::util::clock::now_ms;

/// Failures of store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// `/brokers/ids/<id>` is held by another live session.
    #[error(
        "broker id {id} is already registered in ZooKeeper by another session \
         (0x{owner_session:x}); is another broker running with broker.id={id}?"
    )]
    BrokerIdInUse { id: i32, owner_session: i64 },
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// A conditional update kept losing races.
    #[error("too much contention on {0}")]
    Contention(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Outcome of a controller election attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Election {
    /// This broker is controller with `epoch`; `epoch_zk_version` is the zk version of
    /// `/controller_epoch` after the election, to fence later controller writes.
    Won { epoch: i32, epoch_zk_version: i32 },
    /// Another broker is controller (`None` if it went away meanwhile: try again).
    Lost { controller: Option<i32> },
}

/// The controller's proof of office: writes made with it fail once another controller has
/// bumped `/controller_epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerFence {
    pub epoch: i32,
    pub epoch_zk_version: i32,
}

impl ControllerFence {
    fn check(&self) -> Op {
        Op::Check {
            path: paths::CONTROLLER_EPOCH.into(),
            version: self.epoch_zk_version,
        }
    }
}

/// How many times an optimistic update retries after losing a race.
const MAX_RETRIES: usize = 100;

/// Kafka's ZooKeeper layout over one session.
#[derive(Clone, Debug)]
pub struct ZkStore {
    client: ZkClient,
}

impl ZkStore {
    pub fn new(client: ZkClient) -> ZkStore {
        ZkStore { client }
    }

    pub fn client(&self) -> &ZkClient {
        &self.client
    }

    /// Creates the persistent paths Kafka expects at broker startup (idempotent).
    pub async fn ensure_layout(&self) -> StoreResult<()> {
        for p in paths::persistent_paths() {
            self.client.ensure_path(&p).await?;
        }
        Ok(())
    }

    // -- brokers -------------------------------------------------------------------------------

    /// Registers this broker (ephemeral `/brokers/ids/<id>`). Returns the broker epoch (the
    /// znode's czxid, as Kafka). A znode left by this same session (a retried create) counts as
    /// success; one owned by another session is [`StoreError::BrokerIdInUse`].
    pub async fn register_broker(&self, id: i32, reg: &BrokerRegistration) -> StoreResult<i64> {
        let path = paths::broker(id);
        let data = reg.encode();
        match self
            .client
            .create_with_parents(&path, &data, CreateMode::Ephemeral)
            .await
        {
            Ok((_, stat)) => Ok(stat.czxid),
            Err(ZkError::NodeExists) => match self.client.exists(&path).await? {
                Some(stat) if stat.ephemeral_owner == self.client.session_id() => {
                    self.client.set(&path, &data, Some(stat.version)).await?;
                    Ok(stat.czxid)
                }
                Some(stat) => Err(StoreError::BrokerIdInUse {
                    id,
                    owner_session: stat.ephemeral_owner,
                }),
                // The other session just went away: try once more.
                None => {
                    let (_, stat) = self
                        .client
                        .create(&path, &data, CreateMode::Ephemeral)
                        .await?;
                    Ok(stat.czxid)
                }
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Registered brokers, by id.
    pub async fn live_brokers(&self) -> StoreResult<BTreeMap<i32, BrokerRegistration>> {
        let ids = match self.client.children(paths::BROKER_IDS).await {
            Ok(ids) => ids,
            Err(ZkError::NoNode) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into()),
        };
        let mut brokers = BTreeMap::new();
        for id in ids {
            let Ok(n) = id.parse::<i32>() else { continue };
            // A broker may go away between the listing and the read.
            if let Some((data, _)) = self.client.get_opt(&paths::broker(n)).await? {
                brokers.insert(n, BrokerRegistration::decode(&data)?);
            }
        }
        Ok(brokers)
    }

    // -- cluster id ----------------------------------------------------------------------------

    /// The cluster id in `/cluster/id`, written as `proposed` if there is none yet.
    pub async fn get_or_create_cluster_id(&self, proposed: &str) -> StoreResult<String> {
        if let Some((data, _)) = self.client.get_opt(paths::CLUSTER_ID).await? {
            return Ok(ClusterIdZnode::decode(&data)?.id);
        }
        let data = ClusterIdZnode::new(proposed).encode();
        match self
            .client
            .create_with_parents(paths::CLUSTER_ID, &data, CreateMode::Persistent)
            .await
        {
            Ok(_) => Ok(proposed.to_string()),
            Err(ZkError::NodeExists) => {
                let (data, _) = self.client.get(paths::CLUSTER_ID).await?;
                Ok(ClusterIdZnode::decode(&data)?.id)
            }
            Err(e) => Err(e.into()),
        }
    }

    // -- controller ----------------------------------------------------------------------------

    /// The current controller epoch and the zk version of `/controller_epoch`, if any.
    pub async fn controller_epoch(&self) -> StoreResult<Option<(i32, i32)>> {
        match self.client.get_opt(paths::CONTROLLER_EPOCH).await? {
            Some((data, stat)) => Ok(Some((decode_controller_epoch(&data)?, stat.version))),
            None => Ok(None),
        }
    }

    /// The broker id of the current controller.
    pub async fn get_controller(&self) -> StoreResult<Option<i32>> {
        match self.client.get_opt(paths::CONTROLLER).await? {
            Some((data, _)) => Ok(Some(ControllerZnode::decode(&data)?.brokerid)),
            None => Ok(None),
        }
    }

    /// Tries to become controller: in one transaction, create the ephemeral `/controller` and
    /// bump `/controller_epoch` at the version just read (Kafka's
    /// `registerControllerAndIncrementControllerEpoch`).
    pub async fn elect_controller(&self, broker_id: i32) -> StoreResult<Election> {
        for _ in 0..MAX_RETRIES {
            let (epoch, version) = match self.controller_epoch().await? {
                Some(e) => e,
                None => {
                    // Kafka creates it with epoch 0 (KafkaController.InitialControllerEpoch).
                    match self
                        .client
                        .create(
                            paths::CONTROLLER_EPOCH,
                            &encode_controller_epoch(0),
                            CreateMode::Persistent,
                        )
                        .await
                    {
                        Ok(_) | Err(ZkError::NodeExists) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if let Some(outcome) = self.existing_controller(broker_id).await? {
                return Ok(outcome);
            }
            let new_epoch = epoch + 1;
            let ops = [
                Op::Create {
                    path: paths::CONTROLLER.into(),
                    data: ControllerZnode::new(broker_id, now_ms()).encode(),
                    mode: CreateMode::Ephemeral,
                },
                Op::SetData {
                    path: paths::CONTROLLER_EPOCH.into(),
                    data: encode_controller_epoch(new_epoch),
                    version,
                },
            ];
            match self.client.multi(&ops).await {
                Ok(results) => {
                    let epoch_zk_version = match results.get(1) {
                        Some(OpResult::SetData { stat }) => stat.version,
                        _ => version + 1,
                    };
                    return Ok(Election::Won {
                        epoch: new_epoch,
                        epoch_zk_version,
                    });
                }
                // Someone else created /controller, or bumped the epoch (and may be controller).
                Err(ZkError::NodeExists) | Err(ZkError::BadVersion) => {
                    if let Some(outcome) = self.existing_controller(broker_id).await? {
                        return Ok(outcome);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention(paths::CONTROLLER.into()))
    }

    /// The outcome if `/controller` exists: won if this very session holds it (an earlier
    /// attempt went through but its answer was lost), lost otherwise.
    async fn existing_controller(&self, broker_id: i32) -> StoreResult<Option<Election>> {
        let Some((data, stat)) = self.client.get_opt(paths::CONTROLLER).await? else {
            return Ok(None);
        };
        let controller = ControllerZnode::decode(&data)?.brokerid;
        if controller == broker_id && stat.ephemeral_owner == self.client.session_id() {
            if let Some((epoch, epoch_zk_version)) = self.controller_epoch().await? {
                return Ok(Some(Election::Won {
                    epoch,
                    epoch_zk_version,
                }));
            }
        }
        Ok(Some(Election::Lost {
            controller: Some(controller),
        }))
    }

    /// Gives up the controller role if this session holds it.
    pub async fn resign_controller(&self) -> StoreResult<()> {
        if let Some(stat) = self.client.exists(paths::CONTROLLER).await? {
            if stat.ephemeral_owner == self.client.session_id() {
                match self
                    .client
                    .delete(paths::CONTROLLER, Some(stat.version))
                    .await
                {
                    Ok(()) | Err(ZkError::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    // -- topics --------------------------------------------------------------------------------

    /// Topic names (children of `/brokers/topics`), sorted.
    pub async fn topics(&self) -> StoreResult<Vec<String>> {
        match self.client.children(paths::BROKER_TOPICS).await {
            Ok(t) => Ok(t),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// A topic's replica assignment and its zk version.
    pub async fn get_topic(&self, name: &str) -> StoreResult<Option<(TopicAssignment, i32)>> {
        match self.client.get_opt(&paths::topic(name)).await? {
            Some((data, stat)) => Ok(Some((TopicAssignment::decode(&data)?, stat.version))),
            None => Ok(None),
        }
    }

    /// Creates a topic as `kafka-topics` does: `/config/topics/<t>` first, then
    /// `/brokers/topics/<t>` (whose creation is what the controller watches).
    pub async fn create_topic(
        &self,
        name: &str,
        assignment: &TopicAssignment,
        configs: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let topic_path = paths::topic(name);
        if self.client.exists(&topic_path).await?.is_some() {
            return Err(StoreError::TopicExists(name.to_string()));
        }
        let config = EntityConfig::new(configs.clone()).encode();
        let config_path = paths::topic_config(name);
        match self
            .client
            .create_with_parents(&config_path, &config, CreateMode::Persistent)
            .await
        {
            Ok(_) => {}
            // Left over from an earlier attempt or a deleted topic: overwrite.
            Err(ZkError::NodeExists) => {
                self.client.set(&config_path, &config, None).await?;
            }
            Err(e) => return Err(e.into()),
        }
        match self
            .client
            .create_with_parents(&topic_path, &assignment.encode(), CreateMode::Persistent)
            .await
        {
            Ok(_) => Ok(()),
            Err(ZkError::NodeExists) => Err(StoreError::TopicExists(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites a topic's assignment (partition addition, topic id back-fill) at
    /// `expected_version`; returns the new zk version.
    pub async fn set_topic_assignment(
        &self,
        name: &str,
        assignment: &TopicAssignment,
        expected_version: i32,
    ) -> StoreResult<i32> {
        match self
            .client
            .set(
                &paths::topic(name),
                &assignment.encode(),
                Some(expected_version),
            )
            .await
        {
            Ok(stat) => Ok(stat.version),
            Err(ZkError::NoNode) => Err(StoreError::UnknownTopic(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    // -- partition state -----------------------------------------------------------------------

    /// A partition's leader/ISR state and its zk version.
    pub async fn get_partition_state(
        &self,
        topic: &str,
        partition: i32,
    ) -> StoreResult<Option<(PartitionStateZnode, i32)>> {
        match self
            .client
            .get_opt(&paths::partition_state(topic, partition))
            .await?
        {
            Some((data, stat)) => Ok(Some((PartitionStateZnode::decode(&data)?, stat.version))),
            None => Ok(None),
        }
    }

    /// Creates a partition's state (and `/partitions/<p>` above it); returns its zk version.
    pub async fn create_partition_state(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionStateZnode,
    ) -> StoreResult<i32> {
        if self.client.exists(&paths::topic(topic)).await?.is_none() {
            return Err(StoreError::UnknownTopic(topic.to_string()));
        }
        let (_, stat) = self
            .client
            .create_with_parents(
                &paths::partition_state(topic, partition),
                &state.encode(),
                CreateMode::Persistent,
            )
            .await?;
        Ok(stat.version)
    }

    /// Writes a partition's state only if it is still at `expected_version` (fencing a stale
    /// controller or leader: [`ZkError::BadVersion`]); returns the new zk version.
    pub async fn update_partition_state(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionStateZnode,
        expected_version: i32,
    ) -> StoreResult<i32> {
        let stat = self
            .client
            .set(
                &paths::partition_state(topic, partition),
                &state.encode(),
                Some(expected_version),
            )
            .await?;
        Ok(stat.version)
    }

    /// Creates a partition state as controller (fenced by the controller epoch); returns its
    /// zk version.
    pub async fn create_partition_state_fenced(
        &self,
        fence: ControllerFence,
        topic: &str,
        partition: i32,
        state: &PartitionStateZnode,
    ) -> StoreResult<i32> {
        if self.client.exists(&paths::topic(topic)).await?.is_none() {
            return Err(StoreError::UnknownTopic(topic.to_string()));
        }
        self.client
            .ensure_path(&paths::partition(topic, partition))
            .await?;
        let ops = [
            fence.check(),
            Op::Create {
                path: paths::partition_state(topic, partition),
                data: state.encode(),
                mode: CreateMode::Persistent,
            },
        ];
        let results = self.client.multi(&ops).await?;
        Ok(match results.get(1) {
            Some(OpResult::Created { stat, .. }) => stat.version,
            _ => 0,
        })
    }

    /// Rewrites a partition state as controller, if still at `expected_version` and the
    /// controller epoch is unchanged; returns the new zk version.
    pub async fn update_partition_state_fenced(
        &self,
        fence: ControllerFence,
        topic: &str,
        partition: i32,
        state: &PartitionStateZnode,
        expected_version: i32,
    ) -> StoreResult<i32> {
        let ops = [
            fence.check(),
            Op::SetData {
                path: paths::partition_state(topic, partition),
                data: state.encode(),
                version: expected_version,
            },
        ];
        let results = self.client.multi(&ops).await?;
        Ok(match results.get(1) {
            Some(OpResult::SetData { stat }) => stat.version,
            _ => expected_version + 1,
        })
    }

    /// Rewrites a topic assignment as controller (fenced), if still at `expected_version`.
    pub async fn set_topic_assignment_fenced(
        &self,
        fence: ControllerFence,
        name: &str,
        assignment: &TopicAssignment,
        expected_version: i32,
    ) -> StoreResult<()> {
        let ops = [
            fence.check(),
            Op::SetData {
                path: paths::topic(name),
                data: assignment.encode(),
                version: expected_version,
            },
        ];
        self.client.multi(&ops).await?;
        Ok(())
    }

    // -- controlled shutdown -------------------------------------------------------------------

    /// Asks the controller to move this broker's leaderships away (ephemeral request znode).
    pub async fn request_controlled_shutdown(&self, broker: i32) -> StoreResult<()> {
        match self
            .client
            .create_with_parents(
                &paths::controlled_shutdown(broker),
                &[],
                CreateMode::Ephemeral,
            )
            .await
        {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    // -- deletion ------------------------------------------------------------------------------

    /// Marks a topic for deletion (`/admin/delete_topics/<t>`), as `kafka-topics --delete`.
    pub async fn mark_topic_for_deletion(&self, name: &str) -> StoreResult<()> {
        if self.client.exists(&paths::topic(name)).await?.is_none() {
            return Err(StoreError::UnknownTopic(name.to_string()));
        }
        match self
            .client
            .create_with_parents(
                &paths::delete_topic(name),
                &encode_delete_topic_marker(),
                CreateMode::Persistent,
            )
            .await
        {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Topics marked for deletion, sorted.
    pub async fn pending_deletions(&self) -> StoreResult<Vec<String>> {
        match self.client.children(paths::ADMIN_DELETE_TOPICS).await {
            Ok(t) => Ok(t),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a topic's znodes as the controller does once its logs are gone: assignment and
    /// partition states, config, then the deletion marker.
    pub async fn delete_topic_znodes(&self, name: &str) -> StoreResult<()> {
        self.client.delete_recursive(&paths::topic(name)).await?;
        self.client
            .delete_recursive(&paths::topic_config(name))
            .await?;
        self.client
            .delete_recursive(&paths::delete_topic(name))
            .await?;
        Ok(())
    }

    // -- producer ids --------------------------------------------------------------------------

    /// Claims the next block of producer ids for `broker` with a conditional write of
    /// `/latest_producer_id_block`, retrying when another broker wins the race.
    pub async fn allocate_producer_id_block(&self, broker: i32) -> StoreResult<ProducerIdBlock> {
        for _ in 0..MAX_RETRIES {
            match self.client.get_opt(paths::LATEST_PRODUCER_ID_BLOCK).await? {
                Some((data, stat)) => {
                    // Kafka creates the znode empty at startup.
                    let previous = if data.is_empty() {
                        None
                    } else {
                        Some(ProducerIdBlock::decode(&data)?)
                    };
                    let next = ProducerIdBlock::next_after(previous.as_ref(), broker)?;
                    match self
                        .client
                        .set(
                            paths::LATEST_PRODUCER_ID_BLOCK,
                            &next.encode(),
                            Some(stat.version),
                        )
                        .await
                    {
                        Ok(_) => return Ok(next),
                        Err(ZkError::BadVersion) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    let first = ProducerIdBlock::next_after(None, broker)?;
                    match self
                        .client
                        .create(
                            paths::LATEST_PRODUCER_ID_BLOCK,
                            &first.encode(),
                            CreateMode::Persistent,
                        )
                        .await
                    {
                        Ok(_) => return Ok(first),
                        Err(ZkError::NodeExists) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(StoreError::Contention(
            paths::LATEST_PRODUCER_ID_BLOCK.into(),
        ))
    }

    // -- configs -------------------------------------------------------------------------------

    /// A topic's config overrides (empty when it has none).
    pub async fn topic_config(&self, name: &str) -> StoreResult<BTreeMap<String, String>> {
        match self.client.get_opt(&paths::topic_config(name)).await? {
            Some((data, _)) => Ok(EntityConfig::decode(&data)?.config),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Replaces a topic's config overrides and announces the change with a sequential
    /// `/config/changes/config_change_` znode, as `kafka-configs --zookeeper` does.
    pub async fn set_topic_config(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        if self.client.exists(&paths::topic(name)).await?.is_none() {
            return Err(StoreError::UnknownTopic(name.to_string()));
        }
        self.set_entity_config(
            &paths::topic_config(name),
            paths::topic_entity_path(name),
            configs,
        )
        .await
    }

    /// The dynamic configs of a broker entity (a broker id or `<default>`), empty when none.
    pub async fn broker_config(&self, entity: &str) -> StoreResult<BTreeMap<String, String>> {
        match self
            .client
            .get_opt(&paths::broker_entity_config(entity))
            .await?
        {
            Some((data, _)) => Ok(EntityConfig::decode(&data)?.config),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Replaces the dynamic configs of a broker entity (`/config/brokers/<id>` or
    /// `/config/brokers/<default>`) and announces the change, as Kafka's AdminZkClient does.
    pub async fn set_broker_config(
        &self,
        entity: &str,
        configs: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        self.set_entity_config(
            &paths::broker_entity_config(entity),
            paths::broker_entity_path(entity),
            configs,
        )
        .await
    }

    /// Writes `{"version":1,"config":{...}}` at `path` (creating it if needed), then the
    /// version-2 change notification naming `entity_path`.
    async fn set_entity_config(
        &self,
        path: &str,
        entity_path: String,
        configs: &BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let data = EntityConfig::new(configs.clone()).encode();
        match self.client.set(path, &data, None).await {
            Ok(_) => {}
            Err(ZkError::NoNode) => {
                match self
                    .client
                    .create_with_parents(path, &data, CreateMode::Persistent)
                    .await
                {
                    Ok(_) => {}
                    Err(ZkError::NodeExists) => {
                        self.client.set(path, &data, None).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        let note = ConfigChangeNotification::new(entity_path).encode();
        self.client
            .create_with_parents(
                paths::CONFIG_CHANGE_SEQUENCE,
                &note,
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }

    /// Deletes change notifications created before `before_ms` (Kafka's brokers purge those
    /// older than 15 minutes); a notification another broker deleted first is skipped.
    pub async fn purge_config_changes(&self, names: &[String], before_ms: i64) -> StoreResult<()> {
        for name in names {
            let path = format!("{}/{name}", paths::CONFIG_CHANGES);
            match self.client.exists(&path).await? {
                Some(stat) if stat.ctime < before_ms => match self.client.delete(&path, None).await
                {
                    Ok(()) | Err(ZkError::NoNode) => {}
                    Err(e) => return Err(e.into()),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Pending config change notifications (`config_change_<seq>` names, in order).
    pub async fn config_changes(&self) -> StoreResult<Vec<(String, ConfigChangeNotification)>> {
        let names = match self.client.children(paths::CONFIG_CHANGES).await {
            Ok(n) => n,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for n in names
            .into_iter()
            .filter(|n| n.starts_with(paths::CONFIG_CHANGE_PREFIX))
        {
            if let Some((data, _)) = self
                .client
                .get_opt(&format!("{}/{n}", paths::CONFIG_CHANGES))
                .await?
            {
                out.push((n, ConfigChangeNotification::decode(&data)?));
            }
        }
        Ok(out)
    }
}
