//! Node's `ws` as a client of wsharp's server, with compression: fault catalogue 45. Every
//! permessage-deflate setting `ws` can offer, against an echo server that answers whole
//! messages and one that fragments its answers, each echo compared byte for byte by the Node
//! script (`tests/node/deflate_matrix.js`). scripts/test.sh installs `ws` (`npm ci` in
//! `tests/node`).

use std::path::PathBuf;
use std::process::Stdio;

use wsharp::{Config, Deflate, ServerBuilder};

use crate::util::{LIMIT, echo_server};

fn node_peer() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/ws").exists(),
        "no `ws` in {}: run scripts/test.sh (it runs `npm ci` there)",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_45_node_ws_client_round_trips_every_deflate_setting() {
    let dir = node_peer();
    let whole = echo_server(ServerBuilder::new().compression(Deflate::default())).await;
    let fragmented = echo_server(
        ServerBuilder::new()
            .compression(Deflate::default())
            .config(Config::default().fragment_size(Some(1000))),
    )
    .await;
    let node = std::env::var_os("WSHARP_NODE").unwrap_or_else(|| "node".into());
    let child = tokio::process::Command::new(node)
        .arg(dir.join("deflate_matrix.js"))
        .arg(format!("ws://{whole}/"))
        .arg(format!("ws://{fragmented}/"))
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let out = tokio::time::timeout(LIMIT * 4, child.wait_with_output())
        .await
        .expect("the Node client finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // 2 x 2 x 5 x 6 settings on each of the two servers, 20 messages each.
    assert_eq!(
        stdout.trim(),
        "combinations 240 messages 4800 failed 0",
        "{stderr}"
    );
}
