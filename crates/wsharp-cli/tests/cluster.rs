//! `wsharp serve --redis`: two processes sharing one chat through a real Redis, driven from
//! outside, and a node killed with SIGKILL leaving the cluster's registry and count once its
//! records' TTL has passed.

mod common;

use std::time::Duration;

use common::start;
use wsharp::cluster::{RedisBackplane, RedisOptions};
use wsharp::server::WebSocketServer;
use wsharp::{Message, Transport, WebSocket};
use wsharp_testkit::redis::RedisServer;
use wsharp_testkit::{bounded, eventually};

async fn next_text(ws: &mut WebSocket<Transport>) -> String {
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_chat_and_a_killed_one_leaves_after_the_ttl() {
    let redis = RedisServer::start();
    let url = redis.url();
    let serve = |node: &str| {
        start(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--redis",
                &url,
                "--node-id",
                node,
                "--redis-prefix",
                "t",
                "--redis-ttl",
                "1",
            ],
            "http://127.0.0.1:",
        )
    };
    let (_n1, p1) = serve("n1");
    let (mut n2, p2) = serve("n2");
    eventually("both nodes beating", || {
        let redis = &redis;
        async move { redis.cli(&["ZCARD", "t:nodes"]) == "2" }
    })
    .await;

    let mut c1 = bounded(wsharp::connect(&format!("ws://127.0.0.1:{p1}/Chat")))
        .await
        .unwrap();
    assert_eq!(next_text(&mut c1).await, "Anon#1@n1 has logged in!");
    let mut c2 = bounded(wsharp::connect(&format!("ws://127.0.0.1:{p2}/Chat")))
        .await
        .unwrap();
    // Each node names its anonymous users after itself: no two alike across the cluster.
    assert_eq!(next_text(&mut c1).await, "Anon#1@n2 has logged in!");
    c1.send("hello from n1").await.unwrap();
    assert_eq!(next_text(&mut c1).await, "Anon#1@n1: hello from n1");
    // c2 may or may not see c1's login, still on its way from n1 when c2 arrived.
    let mut before = Vec::new();
    loop {
        let line = next_text(&mut c2).await;
        if line == "Anon#1@n1: hello from n1" {
            break;
        }
        before.push(line);
    }
    assert!(
        before.contains(&"Anon#1@n2 has logged in!".to_owned()),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .all(|l| l == "Anon#1@n2 has logged in!" || l == "Anon#1@n1 has logged in!"),
        "{before:?}"
    );

    // An observer node of our own, on the same cluster.
    let observer = RedisBackplane::new(
        RedisOptions::new(&url)
            .prefix("t")
            .node_id("observer")
            .heartbeat(Duration::from_millis(200), Duration::from_secs(1)),
    )
    .unwrap();
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .backplane(observer);
    server
        .add_service("/Chat", wsharp::demo::Chat::factory(""))
        .unwrap();
    server.start();
    let chat = server.sessions("/Chat").unwrap();
    eventually("the cluster counts two chatters", || {
        let chat = chat.clone();
        async move { chat.cluster_count().await.ok() == Some(2) }
    })
    .await;
    let on_n2 = redis.cli(&["KEYS", "t:sid:/Chat:*"]);
    let ids: Vec<String> = on_n2
        .lines()
        .filter(|key| redis.cli(&["GET", key]) == "n2")
        .map(|key| key.rsplit(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{on_n2}");
    chat.send_to(&ids[0], "to n2's chatter").await.unwrap();
    assert_eq!(next_text(&mut c2).await, "to n2's chatter");

    // SIGKILL: n2 writes nothing more; its records expire.
    n2.0.kill().unwrap();
    n2.0.wait().unwrap();
    eventually("n2's session and count gone", || {
        let (chat, redis) = (chat.clone(), &redis);
        async move {
            chat.cluster_count().await.ok() == Some(1)
                && redis.cli(&["EXISTS", "t:node:n2"]) == "0"
                && redis.cli(&["KEYS", "t:sid:/Chat:*"]).lines().count() == 1
        }
    })
    .await;
    let err = chat.send_to(&ids[0], "too late").await.unwrap_err();
    assert!(
        matches!(
            err,
            wsharp::Error::Backplane(wsharp::server::BackplaneError::NotFound(_))
        ),
        "{err:?}"
    );
    server.stop().await;
}
