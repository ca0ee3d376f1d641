//! Interop with the Python `websockets` library, both directions.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use wsharp::{ClientBuilder, CloseCode, Config, Deflate, Message, ServerBuilder};

use crate::util::{bounded, echo_server, python, script};

pub(crate) use wsharp_testkit::peers::Reap;

pub(crate) fn python_echo_server() -> (Reap, u16) {
    let mut command = Command::new(python());
    command.arg(script("echo_server.py"));
    wsharp_testkit::peers::spawn_reporting_port(command, "the Python echo server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsharp_client_against_python_server() {
    let (_server, port) = python_echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut ws = bounded(
        ClientBuilder::new(&url)
            .config(Config::default().emit_control_frames(true))
            .connect(),
    )
    .await
    .unwrap();

    for msg in [
        Message::text("héllo ✓"),
        Message::binary(vec![0u8, 1, 254, 255]),
        Message::text(""),
    ] {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(bounded(ws.recv()).await.unwrap().unwrap(), msg);
    }
    let big: Vec<u8> = (0..16 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::binary(big)
    );
    ws.send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::Pong("are you there".into())
    );
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    match bounded(ws.recv()).await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    assert!(bounded(ws.recv()).await.is_none());

    // Fragmented sends, split at 1016 bytes as websocket-sharp does.
    let mut ws = bounded(
        ClientBuilder::new(&url)
            .config(Config::default().fragment_size(Some(1016)))
            .connect(),
    )
    .await
    .unwrap();
    let text = "fragmenté ".repeat(500);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text(text)
    );

    // Each close code the server sends reaches us with its reason.
    // 1012-1014 (registered with IANA: restart, try again later, bad gateway) included.
    for code in [
        1000u16, 1001, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014, 3000, 4999,
    ] {
        let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
        ws.send(format!("close {code} bye {code}")).await.unwrap();
        match bounded(ws.recv()).await {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(
                    (f.code.0, f.reason.as_str()),
                    (code, format!("bye {code}").as_str())
                );
            }
            other => panic!("code {code}: {other:?}"),
        }
        assert!(bounded(ws.recv()).await.is_none());
        assert_eq!(ws.close_status().unwrap().code, CloseCode(code));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_wsharp_server() {
    let addr = echo_server(ServerBuilder::new()).await;
    let out = bounded(
        tokio::process::Command::new(python())
            .arg(script("client.py"))
            .arg(format!("ws://{addr}/"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "python client failed:\n{stdout}\n{stderr}"
    );
}

/// Messages for the compression round trips: text and binary, compressible and random.
fn deflate_messages(seed: u64, count: usize) -> Vec<Message> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|i| {
            let size = [0usize, 1, 10, 100, 1000, 5000, 20000][(next() % 7) as usize];
            match i % 3 {
                0 => Message::binary(
                    (0..size.min(2000))
                        .map(|_| next() as u8)
                        .collect::<Vec<u8>>(),
                ),
                1 => Message::text("wsharp délta 🙂 ".repeat(size / 18 + 1)),
                _ => Message::binary(b"abcabcabd".repeat(size / 9 + 1)[..size].to_vec()),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_deflate_client_against_wsharp_server() {
    let addr = echo_server(ServerBuilder::new().compression(Deflate::default())).await;
    // 80 000 messages through a Python client take about half a minute.
    let run = tokio::process::Command::new(python())
        .arg(script("deflate_client.py"))
        .arg(format!("ws://{addr}/"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("python client timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK 80 combinations"),
        "python client failed:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsharp_deflate_client_against_python_servers() {
    let mut child = Command::new(python())
        .arg(script("deflate_server.py"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Python servers");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _reap = Reap(child);
    let mut servers = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        let (name, port) = line.split_once(' ').unwrap();
        servers.push((name.to_owned(), port.parse::<u16>().unwrap()));
    }
    assert_eq!(servers.len(), 4);
    let windows = [None, Some(9), Some(15)];
    let mut runs = 0;
    for (name, port) in &servers {
        for (snct, cnct) in [(false, false), (false, true), (true, false), (true, true)] {
            for server_bits in windows {
                for client_bits in windows {
                    let deflate = Deflate::default()
                        .server_no_context_takeover(snct)
                        .client_no_context_takeover(cnct)
                        .server_max_window_bits(server_bits)
                        .client_max_window_bits(client_bits);
                    let fragment = (runs % 2 == 1).then_some(700);
                    let config = Config::default().fragment_size(fragment);
                    let url = format!("ws://127.0.0.1:{port}/");
                    let what = format!("{name} {deflate:?} fragments {fragment:?}");
                    let mut ws = bounded(
                        ClientBuilder::new(url)
                            .compression(deflate)
                            .config(config)
                            .connect(),
                    )
                    .await
                    .expect(&what);
                    assert!(ws.is_compressed(), "{what}: not negotiated");
                    let count = if runs % 2 == 1 { 250 } else { 1000 };
                    for msg in deflate_messages(runs + 1, count) {
                        ws.feed(msg.clone()).await.unwrap();
                        ws.flush().await.unwrap();
                        assert_eq!(
                            bounded(ws.recv()).await.unwrap().expect(&what),
                            msg,
                            "{what}"
                        );
                    }
                    ws.close(CloseCode::NORMAL, "").await.unwrap();
                    while bounded(ws.recv()).await.is_some() {}
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 4 * 4 * 9);
}
