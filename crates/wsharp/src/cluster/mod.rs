//! Many server nodes, one set of services, through Redis (feature `redis`): a
//! [`Backplane`] on redis-rs.
//!
//! ```no_run
//! # async fn run() -> wsharp::Result<()> {
//! use wsharp::cluster::{RedisBackplane, RedisOptions};
//! use wsharp::server::WebSocketServer;
//!
//! let backplane = RedisBackplane::new(RedisOptions::new("redis://127.0.0.1:6379/"))?;
//! let server = WebSocketServer::bind("0.0.0.0:4649").await?.backplane(backplane);
//! server.add_service("/Chat", wsharp::demo::Chat::factory(""))?;
//! server.start();
//! # Ok(()) }
//! ```
//!
//! How it works, and what it guarantees (`docs/cluster.md` has the table and the tests):
//! - A broadcast reaches this node's sessions first (so a node keeps serving with Redis down),
//!   then one envelope is queued for `PUBLISH` on the service's channel; every other node
//!   delivers it to its own sessions with their bounded queues and overflow policy. The node
//!   that published ignores its own copy.
//! - Delivery is at most once. Every broadcast carries its node, the node's run and a sequence
//!   number: receivers drop duplicates and count gaps (lost broadcasts), per sender in order.
//!   A beacon every heartbeat carries the last number, so a loss at the end is counted too. An
//!   envelope that cannot be published within `max_delay` (Redis down or slow) is dropped and
//!   counted, never delivered late.
//! - Sessions are registered (`{prefix}:sid:{path}:{id}` → node, with a TTL refreshed while the
//!   node lives and written again after Redis comes back empty). `send_to` and
//!   `close_session` for a session elsewhere look it up and publish to its node's inbox: no
//!   node holds it, or `PUBLISH` reached nobody, is an error at once.
//! - Each node writes its session counts in a hash with a TTL every heartbeat: the cluster's
//!   count is the sum over live nodes and heals itself when a node dies. A graceful stop
//!   removes the node's records at once.
//! - The node owns its reconnection: one subscriber and one command connection, rebuilt with
//!   jittered exponential backoff forever; a probe published to its own inbox every
//!   `probe_interval` must come back through the subscription within `probe_timeout`, else the
//!   connection counts as deaf and is rebuilt. Received envelopes wait in a bounded queue;
//!   what does not fit is dropped (and shows as gaps).

mod envelope;
mod registry;
mod sequence;
mod stats;
mod subscriber;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};
use wsharp_proto::Message;

use crate::error::{Error, Result};
use crate::server::{Backplane, BackplaneError, BackplaneStats, Directed, Health, LocalDelivery};
use envelope::{Body, Envelope};
use registry::RegistryOp;
use stats::{Counters, add};

/// Settings of a [`RedisBackplane`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    url: String,
    prefix: String,
    node_id: Option<String>,
    heartbeat: Duration,
    ttl: Duration,
    probe_interval: Duration,
    probe_timeout: Duration,
    backoff: (Duration, Duration),
    outbox: usize,
    inbound: usize,
    max_delay: Duration,
    clock_tolerance: Duration,
    response_timeout: Duration,
}

impl RedisOptions {
    /// Defaults for the Redis at `url` (`redis://host:port/db`): prefix `wsharp`, a random
    /// node id, heartbeat 1 s, TTL 15 s, a probe every 5 s answered within 2 s, backoff from
    /// 100 ms to 5 s, 4096 envelopes waiting to be published for at most 1 s, 10 000 received
    /// envelopes waiting to be delivered, commands answered within 2 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "wsharp".into(),
            node_id: None,
            heartbeat: Duration::from_secs(1),
            ttl: Duration::from_secs(15),
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            outbox: 4096,
            inbound: 10_000,
            max_delay: Duration::from_secs(1),
            clock_tolerance: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
        }
    }

    /// The prefix of every key and channel (pub/sub ignores database numbers: clusters that
    /// share a Redis need their own prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This node's name in the cluster (unique; at most 64 bytes). Default: 16 random hex
    /// digits.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// How often the node writes its counts and beacons, and the TTL of its records (a dead
    /// node's sessions and counts are gone after `ttl`; sessions are refreshed every `ttl/3`).
    pub fn heartbeat(mut self, every: Duration, ttl: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self.ttl = ttl.max(self.heartbeat * 2);
        self
    }

    /// The liveness probe: sent every `interval`, it must come back within `timeout`.
    pub fn probe(mut self, interval: Duration, timeout: Duration) -> Self {
        self.probe_interval = interval.max(Duration::from_millis(10));
        self.probe_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// The reconnection backoff: from `min`, doubling to `max`, each wait jittered.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min.max(Duration::from_millis(1)), max.max(min));
        self
    }

    /// Envelopes waiting to be published, at most, and how long one may wait before it is
    /// dropped rather than delivered late.
    pub fn outbox(mut self, capacity: usize, max_delay: Duration) -> Self {
        self.outbox = capacity.max(1);
        self.max_delay = max_delay;
        self
    }

    /// Received envelopes waiting to be delivered, at most; past it they are dropped (and
    /// counted as gaps).
    pub fn inbound(mut self, capacity: usize) -> Self {
        self.inbound = capacity.max(1);
        self
    }

    /// How far apart the nodes' clocks may be (default 1 s). A received envelope older than
    /// `max_delay` plus this, by its sender's clock, is dropped (and counted), never delivered
    /// late: one that waited in a stalled Redis, or in a node's own inbound queue.
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.clock_tolerance = tolerance;
        self
    }

    /// How long a Redis command may take.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    fn channel_broadcast(&self, path: &str) -> String {
        format!("{}:b:{path}", self.prefix)
    }

    fn channel_node(&self, node: &str) -> String {
        format!("{}:n:{node}", self.prefix)
    }

    fn key_session(&self, path: &str, id: &str) -> String {
        format!("{}:sid:{path}:{id}", self.prefix)
    }

    fn key_node(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    fn key_nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
}

/// A message waiting to be published.
struct Outgoing {
    channel: String,
    payload: Bytes,
    queued: Instant,
}

/// What the backplane's tasks share.
struct Shared {
    options: RedisOptions,
    client: redis::Client,
    node: String,
    incarnation: u64,
    counters: Counters,
    health: watch::Sender<Health>,
    /// The next broadcast sequence number, and the outbox it is queued in (one lock, so that
    /// numbers are queued in order).
    outbox: Mutex<(u64, Option<mpsc::Sender<Outgoing>>)>,
    registry: RwLock<Option<mpsc::Sender<RegistryOp>>>,
    /// The command connection while connected.
    commands: RwLock<Option<redis::aio::MultiplexedConnection>>,
    local: RwLock<Option<Arc<dyn LocalDelivery>>>,
    running: AtomicBool,
    /// How many [`DeliveryHold`]s are alive.
    held: watch::Sender<usize>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Delivery held back by [`RedisBackplane::hold_delivery`] while this lives.
#[must_use = "delivery resumes when the hold is dropped"]
pub struct DeliveryHold(Arc<Shared>);

impl std::fmt::Debug for DeliveryHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DeliveryHold").field(&self.0.node).finish()
    }
}

impl Drop for DeliveryHold {
    fn drop(&mut self) {
        self.0.held.send_modify(|n| *n -= 1);
    }
}

/// A [`Backplane`] on Redis pub/sub: see the [module](self) for how it works and what it
/// guarantees. Cheap to clone; clones are the same node. Its tasks run from the server's
/// start to its stop: a server dropped without `stop` leaves them running.
#[derive(Clone)]
pub struct RedisBackplane(Arc<Shared>);

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("node", &self.0.node)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl RedisBackplane {
    /// A backplane on the Redis `options` name; it connects when the server starts.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL redis-rs does not accept, or a node id over 64 bytes.
    pub fn new(options: RedisOptions) -> Result<Self> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| Error::InvalidUrl(format!("{}: {e}", options.url)))?;
        let node = options.node_id.clone().unwrap_or_else(|| {
            let bytes: [u8; 8] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        if node.is_empty() || node.len() > 64 {
            return Err(Error::InvalidUrl(format!(
                "node id {node:?}: 1 to 64 bytes"
            )));
        }
        Ok(Self(Arc::new(Shared {
            options,
            client,
            node,
            incarnation: rand::random(),
            counters: Counters::default(),
            health: watch::channel(Health::Down).0,
            outbox: Mutex::new((0, None)),
            registry: RwLock::new(None),
            commands: RwLock::new(None),
            local: RwLock::new(None),
            running: AtomicBool::new(false),
            held: watch::channel(0).0,
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        })))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.0.node
    }

    /// Follows the health: resolves on each change (for health checks and tests).
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.0.health.subscribe()
    }

    /// Holds back delivery to this node's sessions until the guard is dropped, as a node
    /// too busy to keep up would: envelopes from other nodes wait in the inbound queue
    /// ([`RedisOptions::inbound`]), and once it is full they are dropped and counted
    /// ([`BackplaneStats::inbound_dropped`], then as gaps), so memory stays bounded. Meant for
    /// maintenance windows and for testing a cluster's behaviour under a slow node.
    pub fn hold_delivery(&self) -> DeliveryHold {
        self.0.held.send_modify(|n| *n += 1);
        DeliveryHold(self.0.clone())
    }

    fn commands(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.0.commands.read().expect("not poisoned").clone()
    }
}

impl Shared {
    /// Queues an envelope for `PUBLISH`; a full outbox drops it (counted).
    fn enqueue(&self, channel: String, make: impl FnOnce(u64) -> Envelope, counts: bool) {
        let mut outbox = self.outbox.lock().expect("not poisoned");
        if counts {
            outbox.0 += 1;
        }
        let payload = make(outbox.0).encode();
        let queued = match &outbox.1 {
            Some(tx) => tx
                .try_send(Outgoing {
                    channel,
                    payload,
                    queued: Instant::now(),
                })
                .is_ok(),
            None => false,
        };
        if !queued {
            add(&self.counters.publish_dropped, 1);
        }
    }

    fn envelope(&self, seq: u64, path: &str, target: &str, body: Body) -> Envelope {
        Envelope {
            origin: self.node.clone(),
            incarnation: self.incarnation,
            seq,
            sent_ms: registry::now_ms(),
            path: path.to_owned(),
            target: target.to_owned(),
            body,
        }
    }

    fn set_health(&self, health: Health) {
        self.health.send_if_modified(|now| {
            if *now == health {
                return false;
            }
            match &health {
                Health::Up => tracing::info!(node = %self.node, "backplane up"),
                Health::Reconnecting { attempt } if *attempt <= 1 => {
                    tracing::warn!(node = %self.node, "backplane lost Redis: reconnecting");
                }
                Health::Reconnecting { .. } => {}
                Health::Down => tracing::info!(node = %self.node, "backplane down"),
            }
            *now = health;
            true
        });
    }

    fn registry_op(&self, op: RegistryOp) {
        let registry = self.registry.read().expect("not poisoned");
        if let Some(tx) = registry.as_ref()
            && tx.try_send(op).is_err()
        {
            tracing::debug!("registry queue full: the next refresh makes it right");
        }
    }
}

/// Envelopes published in one round trip, at most.
const PUBLISH_BATCH: usize = 256;

/// Publishes what the outbox holds, in order, what is waiting at once in one pipeline (so a
/// burst reaches the other nodes as a burst, and their sessions write it in few writes);
/// what waited past `max_delay` or cannot be published is dropped and counted.
async fn run_publisher(shared: Arc<Shared>, mut outbox: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while outbox.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let connection = shared.commands.read().expect("not poisoned").clone();
        let taken = batch.len();
        let fresh: Vec<Outgoing> = batch
            .drain(..)
            .filter(|out| out.queued.elapsed() <= shared.options.max_delay)
            .collect();
        add(
            &shared.counters.publish_dropped,
            (taken - fresh.len()) as u64,
        );
        let Some(mut connection) = connection else {
            add(&shared.counters.publish_dropped, fresh.len() as u64);
            continue;
        };
        if fresh.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for out in &fresh {
            pipe.cmd("PUBLISH").arg(&out.channel).arg(&out.payload[..]);
        }
        let published: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut connection).await;
        match published {
            Ok(_) => add(&shared.counters.published, fresh.len() as u64),
            Err(e) => {
                tracing::debug!("PUBLISH failed: {e}");
                add(&shared.counters.publish_dropped, fresh.len() as u64);
            }
        }
    }
}

impl Backplane for RedisBackplane {
    fn start(&self, local: Arc<dyn LocalDelivery>) {
        if self.0.running.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.0.local.write().expect("not poisoned") = Some(local);
        self.0.stop.send_replace(false);
        let (out_tx, out_rx) = mpsc::channel(self.0.options.outbox);
        self.0.outbox.lock().expect("not poisoned").1 = Some(out_tx);
        let (reg_tx, reg_rx) = mpsc::channel(8192);
        *self.0.registry.write().expect("not poisoned") = Some(reg_tx);
        let refresh = Arc::new(tokio::sync::Notify::new());
        let (inbound_tx, inbound_rx) = mpsc::channel(self.0.options.inbound);
        let tasks = vec![
            tokio::spawn(run_publisher(self.0.clone(), out_rx)),
            tokio::spawn(subscriber::deliver(self.0.clone(), inbound_rx)),
            tokio::spawn(subscriber::run(self.0.clone(), inbound_tx, refresh.clone())),
            tokio::spawn(registry::run(self.0.clone(), reg_rx, refresh)),
        ];
        *self.0.tasks.lock().expect("not poisoned") = tasks;
        tracing::info!(node = %self.0.node, "backplane started");
    }

    fn publish(&self, path: &str, message: &Message) {
        let channel = self.0.options.channel_broadcast(path);
        self.0.enqueue(
            channel,
            |seq| {
                self.0
                    .envelope(seq, path, "", Body::Broadcast(message.clone()))
            },
            true,
        );
    }

    fn route<'a>(
        &'a self,
        path: &'a str,
        id: &'a str,
        directed: Directed,
    ) -> BoxFuture<'a, std::result::Result<(), BackplaneError>> {
        Box::pin(async move {
            if id.len() > 255 {
                // Session ids are 32 hex digits; an envelope carries at most 255 bytes of id.
                return Err(BackplaneError::NotFound(id.to_owned()));
            }
            let unavailable = |e: redis::RedisError| BackplaneError::Unavailable(e.to_string());
            let mut connection = self
                .commands()
                .ok_or_else(|| BackplaneError::Unavailable("not connected to Redis".into()))?;
            let node: Option<String> = redis::cmd("GET")
                .arg(self.0.options.key_session(path, id))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let Some(node) = node.filter(|n| *n != self.0.node) else {
                return Err(BackplaneError::NotFound(id.to_owned()));
            };
            let envelope = self.0.envelope(0, path, id, Body::Directed(directed));
            let receivers: i64 = redis::cmd("PUBLISH")
                .arg(self.0.options.channel_node(&node))
                .arg(&envelope.encode()[..])
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            add(&self.0.counters.published, 1);
            if receivers == 0 {
                return Err(BackplaneError::Unreachable(id.to_owned()));
            }
            Ok(())
        })
    }

    fn session_opened(&self, path: &str, id: &str) {
        self.0
            .registry_op(RegistryOp::Opened(self.0.options.key_session(path, id)));
    }

    fn session_closed(&self, path: &str, id: &str) {
        self.0
            .registry_op(RegistryOp::Closed(self.0.options.key_session(path, id)));
    }

    fn cluster_count<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, std::result::Result<usize, BackplaneError>> {
        Box::pin(async move {
            let unavailable = |e: redis::RedisError| BackplaneError::Unavailable(e.to_string());
            let mut connection = self
                .commands()
                .ok_or_else(|| BackplaneError::Unavailable("not connected to Redis".into()))?;
            let nodes = registry::live_nodes(&self.0, &mut connection)
                .await
                .map_err(unavailable)?;
            let mut pipe = redis::pipe();
            let others: Vec<&String> = nodes.iter().filter(|n| **n != self.0.node).collect();
            for node in &others {
                pipe.hget(self.0.options.key_node(node), path);
            }
            let counts: Vec<Option<usize>> = if others.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut connection)
                    .await
                    .map_err(unavailable)?
            };
            let local = self
                .0
                .local
                .read()
                .expect("not poisoned")
                .as_ref()
                .map_or(0, |l| l.count(path));
            Ok(local + counts.into_iter().flatten().sum::<usize>())
        })
    }

    fn health(&self) -> Health {
        self.0.health.borrow().clone()
    }

    fn stats(&self) -> BackplaneStats {
        self.0.counters.snapshot()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.0.running.load(Ordering::Acquire) {
                return;
            }
            // The registry removes this node's records (after the changes queued before),
            // then everything stops.
            let (done_tx, done_rx) = oneshot::channel();
            let registry = self.0.registry.read().expect("not poisoned").clone();
            if let Some(registry) = registry {
                let wait = self.0.options.response_timeout * 2;
                let left = async {
                    if registry.send(RegistryOp::Leave(done_tx)).await.is_ok() {
                        let _ = done_rx.await;
                    }
                };
                let _ = tokio::time::timeout(wait, left).await;
            }
            self.0.stop.send_replace(true);
            self.0.outbox.lock().expect("not poisoned").1 = None;
            *self.0.registry.write().expect("not poisoned") = None;
            let tasks = std::mem::take(&mut *self.0.tasks.lock().expect("not poisoned"));
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
            *self.0.commands.write().expect("not poisoned") = None;
            self.0.set_health(Health::Down);
            // Only now: a start while this ran did nothing, one after it starts afresh.
            self.0.running.store(false, Ordering::Release);
            let stats = self.stats();
            tracing::info!(node = %self.0.node, ?stats, "backplane stopped");
        })
    }
}
