//! Services across nodes through a real Redis (`redis-server` started by each test on a free
//! loopback port): broadcasts reach every client of every node exactly once and in order per
//! sender, `send_to` and `close_session` cross nodes or fail at once, counts heal, and Redis
//! faults (killed, restarted, the subscription killed, stalled) are survived and counted.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use wsharp::cluster::{RedisBackplane, RedisOptions};
use wsharp::server::{Backplane, BackplaneError, Behavior, Health, Session, WebSocketServer};
use wsharp::{CloseCode, Error, Message, Transport, WebSocket};
use wsharp_testkit::redis::RedisServer;

use crate::util::{bounded, python, script};
use wsharp_testkit::eventually;

/// One node: a server with the `/room` service on its own backplane, and the sessions it
/// opens.
struct Node {
    server: WebSocketServer,
    backplane: RedisBackplane,
    url: String,
    opened: mpsc::UnboundedReceiver<Session>,
}

/// Hands each session to the test.
struct Handover(mpsc::UnboundedSender<Session>);

impl Behavior for Handover {
    async fn on_open(&mut self, session: &Session) {
        let _ = self.0.send(session.clone());
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}
}

/// Test timings: a beat every 100 ms, records gone 1 s after a node dies, a probe every
/// 200 ms answered within 400 ms.
fn options(redis: &RedisServer, node: &str) -> RedisOptions {
    RedisOptions::new(redis.url())
        .prefix("t")
        .node_id(node)
        .heartbeat(Duration::from_millis(100), Duration::from_secs(1))
        .probe(Duration::from_millis(200), Duration::from_millis(400))
        .backoff(Duration::from_millis(20), Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
}

impl Node {
    async fn start(redis: &RedisServer, name: &str) -> Self {
        Self::start_with(options(redis, name)).await
    }

    async fn start_with(options: RedisOptions) -> Self {
        let backplane = RedisBackplane::new(options).unwrap();
        let (tx, opened) = mpsc::unbounded_channel();
        let server = WebSocketServer::bind("127.0.0.1:0")
            .await
            .unwrap()
            .backplane(backplane.clone());
        server
            .add_service("/room", move || Handover(tx.clone()))
            .unwrap();
        server.start();
        let node = Self {
            url: format!("ws://{}/room", server.local_addr()),
            server,
            backplane,
            opened,
        };
        node.until_health(Health::Up).await;
        node
    }

    async fn until_health(&self, health: Health) {
        let mut watch = self.backplane.watch_health();
        bounded(watch.wait_for(|h| *h == health)).await.unwrap();
    }

    async fn until_not_up(&self) {
        let mut watch = self.backplane.watch_health();
        bounded(watch.wait_for(|h| *h != Health::Up)).await.unwrap();
    }

    /// A client of ours, and its session here.
    async fn client(&mut self) -> (WebSocket<Transport>, Session) {
        let ws = bounded(wsharp::connect(&self.url)).await.unwrap();
        let session = bounded(self.opened.recv()).await.unwrap();
        (ws, session)
    }

    fn sessions(&self) -> wsharp::server::Sessions {
        self.server.sessions("/room").unwrap()
    }
}

async fn next_text(ws: &mut WebSocket<Transport>) -> String {
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_broadcast_once_in_order_per_sender() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(Node::start(&redis, name).await);
    }
    const EACH: usize = 100;
    let total = 3 * EACH;
    let mut clients = Vec::new();
    for node in &mut nodes {
        for _ in 0..2 {
            clients.push(node.client().await.0);
        }
    }
    // A Python websockets client on node b.
    let mut python_client = tokio::process::Command::new(python())
        .arg(script("cluster_client.py"))
        .arg(&nodes[1].url)
        .arg(total.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(python_client.stdout.take().unwrap()).lines();
    assert_eq!(bounded(lines.next_line()).await.unwrap().unwrap(), "ready");
    bounded(nodes[1].opened.recv()).await.unwrap();

    for i in 0..EACH {
        for (n, node) in nodes.iter().enumerate() {
            let report = node.sessions().broadcast(format!("{n}:{i}")).unwrap();
            assert!(report.published);
        }
    }
    let check = |received: Vec<String>| {
        assert_eq!(received.len(), total);
        let mut next = HashMap::new();
        for tag in &received {
            let (origin, i) = tag.split_once(':').unwrap();
            let i: usize = i.parse().unwrap();
            let expected = next.entry(origin.to_owned()).or_insert(0);
            assert_eq!(i, *expected, "origin {origin} out of order or repeated");
            *expected += 1;
        }
        assert!(next.values().all(|n| *n == EACH), "{next:?}");
    };
    for ws in &mut clients {
        let mut received = Vec::new();
        for _ in 0..total {
            received.push(next_text(ws).await);
        }
        check(received);
    }
    let mut from_python = Vec::new();
    for _ in 0..total {
        from_python.push(bounded(lines.next_line()).await.unwrap().unwrap());
    }
    check(from_python);
    assert!(bounded(python_client.wait()).await.unwrap().success());
    for node in &nodes {
        let stats = node.backplane.stats();
        assert_eq!((stats.gaps, stats.duplicates), (0, 0), "{stats:?}");
        assert_eq!(stats.delivered, 2 * EACH as u64, "{stats:?}");
    }
    for node in &nodes {
        node.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_and_close_session_cross_nodes_and_fail_fast() {
    let redis = RedisServer::start();
    let mut a = Node::start(&redis, "a").await;
    let mut c = Node::start(&redis, "c").await;
    let (_on_a, _) = a.client().await;
    let (mut on_c, session_c) = c.client().await;
    let id = session_c.id().to_owned();

    // Registered within a beat; then reachable from a.
    eventually("the session registered", || {
        let redis = &redis;
        let key = format!("t:sid:/room:{id}");
        async move { redis.cli(&["GET", &key]) == "c" }
    })
    .await;
    a.sessions().send_to(&id, "from a").await.unwrap();
    assert_eq!(next_text(&mut on_c).await, "from a");

    // Unknown: an error at once.
    let started = std::time::Instant::now();
    let err = a.sessions().send_to("nobody", "x").await.unwrap_err();
    assert!(
        matches!(err, Error::Backplane(BackplaneError::NotFound(_))),
        "{err:?}"
    );
    // Registered on a node nobody runs: PUBLISH reaches no one, an error too.
    redis.cli(&["SET", "t:sid:/room:ghost", "gone-node", "PX", "60000"]);
    let err = a.sessions().send_to("ghost", "x").await.unwrap_err();
    assert!(
        matches!(err, Error::Backplane(BackplaneError::Unreachable(_))),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The cluster's count, from either node.
    eventually("cluster count 2", || {
        let sessions = a.sessions();
        async move { sessions.cluster_count().await.unwrap() == 2 }
    })
    .await;

    // Closing a session on another node, with its code and reason.
    a.sessions()
        .close_session(&id, CloseCode(4001), "moved away")
        .await
        .unwrap();
    match bounded(on_c.recv()).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!((frame.code.0, frame.reason.as_str()), (4001, "moved away"));
        }
        other => panic!("{other:?}"),
    }
    eventually("count back to 1 and the key gone", || {
        let sessions = c.sessions();
        let redis = &redis;
        let key = format!("t:sid:/room:{id}");
        async move {
            sessions.cluster_count().await.unwrap() == 1 && redis.cli(&["EXISTS", &key]) == "0"
        }
    })
    .await;

    // A graceful stop removes the node's records at once.
    c.server.stop().await;
    assert_eq!(redis.cli(&["EXISTS", "t:node:c"]), "0");
    assert_eq!(redis.cli(&["ZSCORE", "t:nodes", "c"]), "");
    a.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_local_delivery_goes_on_and_the_loss_is_counted() {
    let mut redis = RedisServer::start();
    let mut a = Node::start(&redis, "a").await;
    let mut b = Node::start(&redis, "b").await;
    let (mut on_a, _) = a.client().await;
    let (mut on_b, session_b) = b.client().await;
    a.sessions().broadcast("before").unwrap();
    assert_eq!(next_text(&mut on_a).await, "before");
    assert_eq!(next_text(&mut on_b).await, "before");

    redis.kill();
    a.until_not_up().await;
    b.until_not_up().await;
    const LOST: u64 = 5;
    for i in 0..LOST {
        a.sessions().broadcast(format!("lost {i}")).unwrap();
        // This node's own sessions get them without Redis.
        assert_eq!(next_text(&mut on_a).await, format!("lost {i}"));
    }

    redis.restart();
    a.until_health(Health::Up).await;
    b.until_health(Health::Up).await;
    // The registry is written again: b's session is reachable from a.
    let id = session_b.id().to_owned();
    eventually("b's session registered again", || {
        let redis = &redis;
        let key = format!("t:sid:/room:{id}");
        async move { redis.cli(&["GET", &key]) == "b" }
    })
    .await;
    a.sessions().send_to(&id, "direct").await.unwrap();
    assert_eq!(next_text(&mut on_b).await, "direct");
    a.sessions().broadcast("after").unwrap();
    // Nothing published during the outage arrives late.
    assert_eq!(next_text(&mut on_b).await, "after");
    eventually("b counted the lost broadcasts", || {
        let backplane = b.backplane.clone();
        async move { backplane.stats().gaps == LOST }
    })
    .await;
    assert!(a.backplane.stats().publish_dropped >= LOST);
    assert!(a.backplane.stats().reconnects >= 1);
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_killed_or_stalled_by_redis_is_noticed_and_rebuilt() {
    let redis = RedisServer::start();
    let mut a = Node::start(&redis, "a").await;
    let mut b = Node::start(&redis, "b").await;
    let (_on_a, _) = a.client().await;
    let (mut on_b, _) = b.client().await;

    // Redis ends the subscriber connections: both nodes see it and subscribe again.
    let killed: u32 = redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .parse()
        .unwrap();
    assert!(killed >= 2, "{killed}");
    eventually("both reconnected", || {
        let (a, b) = (a.backplane.clone(), b.backplane.clone());
        async move {
            a.stats().reconnects >= 1
                && b.stats().reconnects >= 1
                && a.health() == Health::Up
                && b.health() == Health::Up
        }
    })
    .await;
    a.sessions().broadcast("after the kill").unwrap();
    assert_eq!(next_text(&mut on_b).await, "after the kill");

    // Redis stalls past the probe's deadline: the node finds its subscription deaf.
    let stalled = {
        let port = redis.port();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "DEBUG", "SLEEP", "1.5"])
                .output()
                .unwrap()
        })
    };
    b.until_not_up().await;
    bounded(stalled).await.unwrap();
    b.until_health(Health::Up).await;
    let stats = b.backplane.stats();
    assert!(
        stats.probe_failures >= 1 || stats.reconnects >= 2,
        "{stats:?}"
    );
    eventually("a is up again too", || {
        let a = a.backplane.clone();
        async move { a.health() == Health::Up }
    })
    .await;
    a.sessions().broadcast("after the stall").unwrap();
    assert_eq!(next_text(&mut on_b).await, "after the stall");
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_keep_up_drops_and_counts_instead_of_growing() {
    let redis = RedisServer::start();
    let a = Node::start(&redis, "a").await;
    const QUEUE: usize = 50;
    let mut b = Node::start_with(options(&redis, "b").inbound(QUEUE)).await;
    let mut c = Node::start(&redis, "c").await;
    let (mut on_b, _) = b.client().await;
    let (mut on_c, _) = c.client().await;

    let hold = b.backplane.hold_delivery();
    const SENT: u64 = 1000;
    for i in 0..SENT {
        // Never waits, whoever is slow.
        a.sessions().broadcast(i.to_string()).unwrap();
    }
    // The node that keeps up gets everything, in order.
    for i in 0..SENT {
        assert_eq!(next_text(&mut on_c).await, i.to_string());
    }
    eventually("b dropped what its queue could not hold", || {
        let b = b.backplane.clone();
        async move { b.stats().inbound_dropped >= SENT - QUEUE as u64 - 1 }
    })
    .await;
    drop(hold);
    // Once a's next beacon is through, every broadcast is either delivered or counted lost.
    eventually("b accounted for every broadcast", || {
        let b = b.backplane.clone();
        async move {
            let stats = b.stats();
            stats.delivered + stats.gaps == SENT
        }
    })
    .await;
    let stats = b.backplane.stats();
    // At most what the queue held (less if some waited past the delivery deadline).
    assert!(stats.delivered <= QUEUE as u64 + 1, "{stats:?}");
    let mut last = None;
    for _ in 0..stats.delivered {
        let n: u64 = next_text(&mut on_b).await.parse().unwrap();
        assert!(last.is_none_or(|l| n > l), "in order");
        last = Some(n);
    }
    assert_eq!(c.backplane.stats().gaps, 0);
    for node in [&a, &b, &c] {
        node.server.stop().await;
    }
}
