//! A thin async wrapper over the `zookeeper-client` crate: typed errors, chroot creation, znode
//! versions for conditional writes, multi-op transactions, one-shot watches and session events.
//!
//! An expired session is final: every call then fails with [`ZkError::SessionExpired`] and the
//! owner must build a new [`ZkClient`] and re-create its ephemeral znodes.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use zookeeper_client as zk;

use super::paths::ConnectString;

pub use zk::{EventType, SessionState, Stat};

/// Failures of ZooKeeper operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    #[error("znode does not exist")]
    NoNode,
    #[error("znode already exists")]
    NodeExists,
    #[error("znode version does not match")]
    BadVersion,
    #[error("znode has children")]
    NotEmpty,
    #[error("ZooKeeper session expired or closed")]
    SessionExpired,
    #[error("connection to ZooKeeper lost")]
    ConnectionLoss,
    /// A znode's data is not what Kafka's layout says it should be.
    #[error("corrupt znode data: {0}")]
    Corrupt(String),
    #[error("ZooKeeper error: {0}")]
    Other(String),
}

impl ZkError {
    /// True when the session is gone for good: build a new client.
    pub fn is_session_lost(&self) -> bool {
        matches!(self, ZkError::SessionExpired)
    }
}

impl From<zk::Error> for ZkError {
    fn from(e: zk::Error) -> Self {
        match e {
            zk::Error::NoNode => ZkError::NoNode,
            zk::Error::NodeExists => ZkError::NodeExists,
            zk::Error::BadVersion => ZkError::BadVersion,
            zk::Error::NotEmpty => ZkError::NotEmpty,
            zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed => {
                ZkError::SessionExpired
            }
            zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::NoHosts => {
                ZkError::ConnectionLoss
            }
            other => ZkError::Other(other.to_string()),
        }
    }
}

impl From<zk::MultiWriteError> for ZkError {
    fn from(e: zk::MultiWriteError) -> Self {
        zk::Error::from(e).into()
    }
}

pub type ZkResult<T> = Result<T, ZkError>;

/// Kind of znode to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    PersistentSequential,
    Ephemeral,
    EphemeralSequential,
}

impl CreateMode {
    fn options(self) -> zk::CreateOptions<'static> {
        let mode = match self {
            CreateMode::Persistent => zk::CreateMode::Persistent,
            CreateMode::PersistentSequential => zk::CreateMode::PersistentSequential,
            CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
            CreateMode::EphemeralSequential => zk::CreateMode::EphemeralSequential,
        };
        // Kafka without zookeeper.set.acl: world-readable and writable.
        mode.with_acls(zk::Acls::anyone_all())
    }
}

/// One operation of a multi-op transaction.
#[derive(Clone, Debug)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    /// `version` -1 matches any version.
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
}

/// Result of one operation of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// The created path (with the sequence number for sequential znodes).
    Created {
        path: String,
        stat: Stat,
    },
    SetData {
        stat: Stat,
    },
    Checked,
    Deleted,
}

/// What fired a one-shot watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventType,
    /// Path relative to the chroot.
    pub path: String,
    /// For `EventType::Session`: the session state that ended the watch (expired, closed).
    pub session_state: SessionState,
}

/// A one-shot watch registered by a read; resolves once.
#[derive(Debug)]
pub struct Watch(zk::OneshotWatcher);

impl Watch {
    /// Waits until the watched znode changes or the session ends.
    pub async fn changed(self) -> WatchEvent {
        let e = self.0.changed().await;
        WatchEvent {
            kind: e.event_type,
            path: e.path,
            session_state: e.session_state,
        }
    }
}

/// Session state changes of one client.
#[derive(Clone, Debug)]
pub struct SessionEvents(zk::StateWatcher);

impl SessionEvents {
    /// The current state.
    pub fn state(&self) -> SessionState {
        self.0.peek_state()
    }

    /// Waits for the next state change and returns the new state.
    pub async fn next(&mut self) -> SessionState {
        self.0.changed().await
    }

    /// Resolves once the session is gone for good (expired, closed, auth failed): the signal to
    /// build a new client and re-register ephemeral znodes.
    pub async fn session_lost(&mut self) -> SessionState {
        let mut state = self.0.peek_state();
        while !state.is_terminated() {
            state = self.0.changed().await;
        }
        state
    }
}

/// A ZooKeeper session, with paths relative to the chroot of the connect string. Clones share
/// the session; [`ZkClient::close`] ends it for all of them.
#[derive(Clone, Debug)]
pub struct ZkClient {
    /// The session's client until it is closed (the session ends once no `zk::Client` is left).
    inner: Arc<RwLock<Option<zk::Client>>>,
    session_id: i64,
    session_timeout: Duration,
    state_watcher: zk::StateWatcher,
    connect: ConnectString,
}

impl ZkClient {
    /// Connects to `connect_string` (`host:port,...[/chroot]`), creating the chroot if missing,
    /// as Kafka does. Fails with [`ZkError::ConnectionLoss`] when no server answers within
    /// `session_timeout`.
    pub async fn connect(connect_string: &str, session_timeout: Duration) -> ZkResult<ZkClient> {
        let connect = ConnectString::parse(connect_string)?;
        let hosts = connect.hosts_string();
        let connecting = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(session_timeout.min(Duration::from_secs(5)))
            .connect(&hosts);
        let root = tokio::time::timeout(session_timeout + Duration::from_secs(1), connecting)
            .await
            .map_err(|_| ZkError::ConnectionLoss)??;
        let inner = match &connect.chroot {
            None => root,
            Some(chroot) => {
                root.mkdir(chroot, &CreateMode::Persistent.options())
                    .await?;
                root.chroot(chroot.as_str())
                    .map_err(|_| ZkError::Other(format!("invalid chroot {chroot}")))?
            }
        };
        Ok(ZkClient {
            session_id: inner.session_id().0,
            session_timeout: inner.session_timeout(),
            state_watcher: inner.state_watcher(),
            inner: Arc::new(RwLock::new(Some(inner))),
            connect,
        })
    }

    /// The session's client, or [`ZkError::SessionExpired`] once it was closed.
    fn live(&self) -> ZkResult<zk::Client> {
        self.inner.read().clone().ok_or(ZkError::SessionExpired)
    }

    pub fn connect_string(&self) -> &ConnectString {
        &self.connect
    }

    /// This session's id: the `ephemeral_owner` of the ephemeral znodes it creates.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    pub fn state(&self) -> SessionState {
        match self.inner.read().as_ref() {
            Some(client) => client.state(),
            None => SessionState::Closed,
        }
    }

    pub fn session_events(&self) -> SessionEvents {
        let mut watcher = self.state_watcher.clone();
        watcher.state();
        SessionEvents(watcher)
    }

    /// Closes the session (its ephemeral znodes go away) and waits until that is done or
    /// `timeout` has passed. Every clone of this client stops working: operations in flight
    /// finish, later ones fail with [`ZkError::SessionExpired`].
    pub async fn close(self, timeout: Duration) {
        let mut events = self.session_events();
        let client = self.inner.write().take();
        drop(client);
        let _ = tokio::time::timeout(timeout, events.session_lost()).await;
    }

    pub async fn get(&self, path: &str) -> ZkResult<(Vec<u8>, Stat)> {
        Ok(self.live()?.get_data(path).await?)
    }

    /// Like [`get`](Self::get) with `None` for a missing znode.
    pub async fn get_opt(&self, path: &str) -> ZkResult<Option<(Vec<u8>, Stat)>> {
        match self.live()?.get_data(path).await {
            Ok(r) => Ok(Some(r)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a znode and leaves a one-shot data watch on it (changed or deleted).
    pub async fn get_and_watch(&self, path: &str) -> ZkResult<(Vec<u8>, Stat, Watch)> {
        let (data, stat, w) = self.live()?.get_and_watch_data(path).await?;
        Ok((data, stat, Watch(w)))
    }

    pub async fn exists(&self, path: &str) -> ZkResult<Option<Stat>> {
        Ok(self.live()?.check_stat(path).await?)
    }

    /// Stat of a znode (or `None`) and a one-shot watch for its creation, change or deletion.
    pub async fn exists_and_watch(&self, path: &str) -> ZkResult<(Option<Stat>, Watch)> {
        let (stat, w) = self.live()?.check_and_watch_stat(path).await?;
        Ok((stat, Watch(w)))
    }

    /// Sets data; with `Some(version)` only if the znode is still at that version
    /// ([`ZkError::BadVersion`] otherwise). Returns the new stat (its `version` for the next
    /// conditional write).
    pub async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> ZkResult<Stat> {
        Ok(self.live()?.set_data(path, data, version).await?)
    }

    /// Creates a znode; returns its actual path (sequential znodes get a suffix) and stat.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        let (stat, seq) = self.live()?.create(path, data, &mode.options()).await?;
        let path = match mode {
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential => {
                format!("{path}{seq}")
            }
            _ => path.to_string(),
        };
        Ok((path, stat))
    }

    /// Creates a persistent znode, creating missing parents (empty) first.
    pub async fn create_with_parents(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        match self.create(path, data, mode).await {
            Err(ZkError::NoNode) => {
                self.ensure_path(super::paths::parent(path)).await?;
                self.create(path, data, mode).await
            }
            other => other,
        }
    }

    /// `mkdir -p`: creates the persistent znode and its parents with empty data if missing.
    pub async fn ensure_path(&self, path: &str) -> ZkResult<()> {
        if path == "/" {
            return Ok(());
        }
        Ok(self
            .live()?
            .mkdir(path, &CreateMode::Persistent.options())
            .await?)
    }

    pub async fn delete(&self, path: &str, version: Option<i32>) -> ZkResult<()> {
        Ok(self.live()?.delete(path, version).await?)
    }

    /// Deletes a znode and everything below it. A missing znode is not an error.
    pub async fn delete_recursive(&self, path: &str) -> ZkResult<()> {
        // Depth-first without recursion in async: collect the subtree, delete deepest first.
        for _attempt in 0..5 {
            let mut order = vec![path.to_string()];
            let mut i = 0;
            while i < order.len() {
                match self.live()?.list_children(&order[i]).await {
                    Ok(children) => {
                        let base = order[i].trim_end_matches('/').to_string();
                        order.extend(children.into_iter().map(|c| format!("{base}/{c}")));
                    }
                    Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
                i += 1;
            }
            let mut raced = false;
            for p in order.iter().rev() {
                match self.live()?.delete(p, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    // Someone added a child meanwhile: walk the tree again.
                    Err(zk::Error::NotEmpty) => {
                        raced = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !raced {
                return Ok(());
            }
        }
        Err(ZkError::NotEmpty)
    }

    /// Children names (not full paths), sorted.
    pub async fn children(&self, path: &str) -> ZkResult<Vec<String>> {
        let mut c = self.live()?.list_children(path).await?;
        c.sort();
        Ok(c)
    }

    /// Children names (sorted) and a one-shot watch for a child added or removed, or the
    /// znode being deleted.
    pub async fn children_and_watch(&self, path: &str) -> ZkResult<(Vec<String>, Watch)> {
        let (mut c, w) = self.live()?.list_and_watch_children(path).await?;
        c.sort();
        Ok((c, Watch(w)))
    }

    /// Commits all operations atomically, or none. On failure the error is the one of the
    /// first failing operation (e.g. `NodeExists`, `BadVersion`).
    pub async fn multi(&self, ops: &[Op]) -> ZkResult<Vec<OpResult>> {
        let client = self.live()?;
        let mut w = client.new_multi_writer();
        for op in ops {
            match op {
                Op::Create { path, data, mode } => w.add_create(path, data, &mode.options())?,
                Op::SetData {
                    path,
                    data,
                    version,
                } => w.add_set_data(path, data, (*version >= 0).then_some(*version))?,
                Op::Check { path, version } => w.add_check_version(path, *version)?,
                Op::Delete { path, version } => {
                    w.add_delete(path, (*version >= 0).then_some(*version))?
                }
            }
        }
        let results = w.commit().await?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                zk::MultiWriteResult::Create { path, stat } => OpResult::Created { path, stat },
                zk::MultiWriteResult::SetData { stat } => OpResult::SetData { stat },
                zk::MultiWriteResult::Delete => OpResult::Deleted,
                _ => OpResult::Checked,
            })
            .collect())
    }
}
