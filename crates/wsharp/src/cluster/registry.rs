//! The node's records in Redis: its sessions (`{prefix}:sid:{path}:{id}` → node), its
//! counts (`{prefix}:node:{node}`, a hash of path → sessions) and its heartbeat in
//! `{prefix}:nodes` (a sorted set scored by the last beat), all with a TTL, so that a dead
//! node's records go away by themselves; and the beacons that carry its last broadcast number.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot};

use super::Shared;
use super::envelope::Body;

/// Session keys written or deleted in one round trip, at most.
const BATCH: usize = 500;

/// A change for the registry task.
pub(super) enum RegistryOp {
    Opened(String),
    Closed(String),
    /// Remove this node's records, then answer.
    Leave(oneshot::Sender<()>),
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// The nodes whose heartbeat is younger than the TTL.
pub(super) async fn live_nodes(
    shared: &Shared,
    connection: &mut redis::aio::MultiplexedConnection,
) -> redis::RedisResult<Vec<String>> {
    let since = now_ms().saturating_sub(shared.options.ttl.as_millis() as u64);
    redis::cmd("ZRANGEBYSCORE")
        .arg(shared.options.key_nodes())
        .arg(since)
        .arg("+inf")
        .query_async(connection)
        .await
}

/// Runs until the backplane stops.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut ops: mpsc::Receiver<RegistryOp>,
    refresh: Arc<Notify>,
) {
    let mut heartbeat = tokio::time::interval(shared.options.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every_session = shared.options.ttl / 3;
    let mut refreshed: Option<Instant> = None;
    // The session keys this node has written and not deleted: what it must delete when
    // sessions end (even if their change was dropped) and when it leaves.
    let mut registered: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            op = ops.recv() => {
                let Some(op) = op else { return };
                let mut batch = vec![op];
                while batch.len() < BATCH {
                    match ops.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                if apply(&shared, batch, &mut registered).await {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                let all = refreshed.is_none_or(|at| at.elapsed() >= every_session);
                if beat(&shared, all, &mut registered).await && all {
                    refreshed = Some(Instant::now());
                }
            }
            () = refresh.notified() => {
                if beat(&shared, true, &mut registered).await {
                    refreshed = Some(Instant::now());
                }
            }
        }
    }
}

/// Writes a batch of changes; returns whether the node left.
async fn apply(shared: &Shared, batch: Vec<RegistryOp>, registered: &mut HashSet<String>) -> bool {
    let connection = shared.commands.read().expect("not poisoned").clone();
    let ttl = shared.options.ttl.as_millis() as u64;
    let mut pipe = redis::pipe();
    let mut leave = None;
    for op in batch {
        match op {
            RegistryOp::Opened(key) => {
                register(&mut pipe, shared, &key, ttl);
                registered.insert(key);
            }
            RegistryOp::Closed(key) => {
                registered.remove(&key);
                pipe.del(key).ignore();
            }
            RegistryOp::Leave(done) => {
                leave = Some(done);
                break;
            }
        }
    }
    if let Some(mut connection) = connection {
        if let Err(e) = pipe.query_async::<()>(&mut connection).await {
            tracing::debug!("registry write failed (the next refresh repeats it): {e}");
        }
        if leave.is_some() {
            let mut pipe = redis::pipe();
            pipe.del(shared.options.key_node(&shared.node))
                .ignore()
                .zrem(shared.options.key_nodes(), &shared.node)
                .ignore();
            for key in registered.drain().chain(session_keys(shared)) {
                pipe.del(key).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut connection).await {
                tracing::debug!("could not remove this node's records: {e}");
            }
        }
    }
    match leave {
        Some(done) => {
            let _ = done.send(());
            true
        }
        None => false,
    }
}

/// Adds `SET key node PX ttl` (a session of this node) to `pipe`.
fn register(pipe: &mut redis::Pipeline, shared: &Shared, key: &str, ttl: u64) {
    pipe.cmd("SET")
        .arg(key)
        .arg(&shared.node)
        .arg("PX")
        .arg(ttl)
        .ignore();
}

/// The keys of this node's sessions now.
fn session_keys(shared: &Shared) -> Vec<String> {
    let local = shared.local.read().expect("not poisoned").clone();
    local.map_or_else(Vec::new, |local| {
        local
            .sessions()
            .into_iter()
            .flat_map(|(path, ids)| {
                ids.into_iter()
                    .map(move |id| shared.options.key_session(&path, &id))
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// One heartbeat: the node's counts and liveness, a beacon, and with `all` every session's
/// key again. Returns whether it was written.
async fn beat(shared: &Shared, all: bool, registered: &mut HashSet<String>) -> bool {
    let connection = shared.commands.read().expect("not poisoned").clone();
    let Some(mut connection) = connection else {
        return false;
    };
    let options = &shared.options;
    let ttl = options.ttl.as_millis() as u64;
    let now = now_ms();
    let local = shared.local.read().expect("not poisoned").clone();
    let sessions = local.map_or_else(Vec::new, |l| l.sessions());
    let node_key = options.key_node(&shared.node);
    let mut counts: Vec<(String, usize)> = sessions
        .iter()
        .map(|(path, ids)| (path.clone(), ids.len()))
        .collect();
    counts.push(("_".into(), 0));
    let mut pipe = redis::pipe();
    pipe.atomic()
        .del(&node_key)
        .ignore()
        .hset_multiple(&node_key, &counts)
        .ignore()
        .pexpire(&node_key, ttl as i64)
        .ignore()
        .zadd(options.key_nodes(), &shared.node, now)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(options.key_nodes())
        .arg("-inf")
        .arg(now.saturating_sub(10 * ttl))
        .ignore();
    if let Err(e) = pipe.query_async::<()>(&mut connection).await {
        tracing::debug!("heartbeat failed: {e}");
        return false;
    }
    // Broadcasts queued before the beacon leave before it: a receiver that sees it has seen
    // every earlier one that arrived.
    shared.enqueue(
        options.channel_broadcast(""),
        |seq| shared.envelope(seq, "", "", Body::Beacon),
        false,
    );
    if all {
        let keys = session_keys(shared);
        // Keys of sessions that ended while their deletion was lost go now.
        let current: HashSet<String> = keys.iter().cloned().collect();
        let stale: Vec<String> = registered.difference(&current).cloned().collect();
        for chunk in stale.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.del(key).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut connection).await {
                tracing::debug!("stale session cleanup failed: {e}");
                return false;
            }
        }
        *registered = current;
        for chunk in keys.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for key in chunk {
                register(&mut pipe, shared, key, ttl);
            }
            if let Err(e) = pipe.query_async::<()>(&mut connection).await {
                tracing::debug!("session refresh failed: {e}");
                return false;
            }
        }
    }
    true
}
