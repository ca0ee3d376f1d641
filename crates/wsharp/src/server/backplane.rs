//! [`Backplane`]: what carries a service's broadcasts, directed sends and session count
//! between the nodes of a cluster. Without one (the default) everything stays in the process.
//!
//! A server hands its backplane every service's [`Sessions`](super::Sessions): a broadcast is
//! delivered to the local sessions first and then [published](Backplane::publish) once; a
//! `send_to` or `close_session` for an id that is not local is [routed](Backplane::route);
//! [`Sessions::cluster_count`](super::Sessions::cluster_count) asks it. What arrives from other
//! nodes comes back through [`LocalDelivery`], which never waits.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use wsharp_proto::{CloseFrame, Message};

/// A message for one session on whatever node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directed {
    /// Send this message.
    Send(Message),
    /// Close the session with this frame (`None`: no status code).
    Close(Option<CloseFrame>),
}

/// Why a backplane could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackplaneError {
    /// No node holds a session with this id.
    #[error("no session {0} on any node")]
    NotFound(String),
    /// The node that holds the session did not receive the message (it is gone or deaf).
    #[error("the node holding session {0} is unreachable")]
    Unreachable(String),
    /// The backplane's store cannot be reached now.
    #[error("backplane unavailable: {0}")]
    Unavailable(String),
}

/// The backplane's connection to its store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Connected and subscribed; a liveness probe that does not come back in time ends it.
    Up,
    /// Not connected: reconnecting, with this many attempts so far.
    Reconnecting {
        /// Attempts since the connection was lost.
        attempt: u32,
    },
    /// Shut down.
    Down,
}

/// Counters of a backplane since it started, for logs and health checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// Envelopes published (broadcasts, directed messages, beacons and probes).
    pub published: u64,
    /// Envelopes that could not be published (store error, outbox full, or too old to send).
    pub publish_dropped: u64,
    /// Broadcasts from other nodes delivered to this node's sessions.
    pub delivered: u64,
    /// Broadcasts from other nodes that never arrived, by their sequence numbers.
    pub gaps: u64,
    /// Envelopes received twice and dropped.
    pub duplicates: u64,
    /// Envelopes received that could not be handled here (undecodable, or a directed message
    /// for a session that is gone).
    pub rejected: u64,
    /// Envelopes received and dropped: the inbound queue was full, or they were too old to
    /// deliver (they count as gaps too once the sender's next envelope arrives).
    pub inbound_dropped: u64,
    /// Reconnections to the store.
    pub reconnects: u64,
    /// Liveness probes that did not come back in time.
    pub probe_failures: u64,
}

/// Delivery to this node's own sessions, for what arrives from other nodes. Implemented by
/// the server; a backplane calls it from its receiving task, and it never waits: full session
/// queues follow each service's [`Overflow`](super::Overflow) policy.
pub trait LocalDelivery: Send + Sync + 'static {
    /// Delivers a broadcast to the local sessions of the service at `path` (never re-published).
    fn broadcast(&self, path: &str, message: Message);
    /// Delivers a directed message to one local session; whether it was there.
    fn directed(&self, path: &str, id: &str, directed: Directed) -> bool;
    /// How many sessions the service at `path` holds on this node.
    fn count(&self, path: &str) -> usize;
    /// The paths of the services and the ids of their sessions on this node.
    fn sessions(&self) -> Vec<(String, Vec<String>)>;
}

/// Carries broadcasts, directed messages and session counts between nodes.
///
/// Implementations must not wait in the synchronous methods: they are called on the paths of
/// `broadcast` and of every session's start and end.
pub trait Backplane: Send + Sync + 'static {
    /// Starts the backplane's tasks with this node's delivery; called once, from within a
    /// tokio runtime, when the server starts.
    fn start(&self, local: Arc<dyn LocalDelivery>);
    /// Publishes a broadcast to the other nodes (queued: never waits).
    fn publish(&self, path: &str, message: &Message);
    /// Delivers a directed message to the session `id` on the node that holds it.
    fn route<'a>(
        &'a self,
        path: &'a str,
        id: &'a str,
        directed: Directed,
    ) -> BoxFuture<'a, Result<(), BackplaneError>>;
    /// A session of the service at `path` opened on this node (queued: never waits).
    fn session_opened(&self, path: &str, id: &str);
    /// A session of the service at `path` closed on this node (queued: never waits).
    fn session_closed(&self, path: &str, id: &str);
    /// The number of sessions of the service at `path` on every live node.
    fn cluster_count<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<usize, BackplaneError>>;
    /// The connection to the store now.
    fn health(&self) -> Health;
    /// The counters.
    fn stats(&self) -> BackplaneStats;
    /// Stops the tasks and removes this node's records from the store.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// A service's link to the server's backplane.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) path: Arc<str>,
    pub(crate) backplane: Arc<dyn Backplane>,
}
