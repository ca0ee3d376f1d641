//! Node's `ws` and wsharp with compression, both ways: fault catalogue 45. Every
//! permessage-deflate setting `ws` can offer, against an echo server that answers whole
//! messages and one that fragments its answers, each echo compared byte for byte by the Node
//! script (`tests/node/deflate_matrix.js`); and `ws` servers (`tests/node/deflate_server.js`)
//! against wsharp's client, every window size and context-takeover setting limited by either
//! side. scripts/test.sh installs `ws` (`npm ci` in `tests/node`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use wsharp::{ClientBuilder, CloseCode, Config, Deflate, Message, ServerBuilder};

use crate::util::{LIMIT, bounded, echo_server};

fn node_peer() -> PathBuf {
    wsharp_testkit::peers::node_package_dir(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node"),
    )
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
    let node = wsharp_testkit::peers::node();
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

/// One setting of the client matrix: what wsharp's client offers, how the `ws` server is
/// configured, and whether each side fragments.
struct Setting {
    offer: Deflate,
    server: String,
    server_fragments: bool,
    client_fragments: bool,
    /// The parameters the response must carry.
    expected: BTreeSet<String>,
}

/// Every window size 8..=15 and the four context-takeover combinations, limited once by the
/// client's offer (9..=15: the client cannot offer 8) and once by the server's configuration
/// (8..=15; with a client window of 8 the client sends uncompressed, which is allowed).
fn client_settings() -> Vec<Setting> {
    let mut out = Vec::new();
    for (snct, cnct) in [(false, false), (true, false), (false, true), (true, true)] {
        for bits in 8u8..=15 {
            let mut expected = BTreeSet::from([
                "permessage-deflate".to_owned(),
                format!("server_max_window_bits={bits}"),
                format!("client_max_window_bits={bits}"),
            ]);
            if snct {
                expected.insert("server_no_context_takeover".to_owned());
            }
            if cnct {
                expected.insert("client_no_context_takeover".to_owned());
            }
            let n = out.len();
            if bits >= 9 {
                out.push(Setting {
                    offer: Deflate::default()
                        .server_no_context_takeover(snct)
                        .client_no_context_takeover(cnct)
                        .server_max_window_bits(Some(bits))
                        .client_max_window_bits(Some(bits)),
                    server: "{}".to_owned(),
                    server_fragments: n % 2 == 1,
                    client_fragments: n % 4 >= 2,
                    expected: expected.clone(),
                });
            }
            let n = out.len();
            out.push(Setting {
                offer: Deflate::default(),
                server: format!(
                    r#"{{"serverNoContextTakeover":{snct},"clientNoContextTakeover":{cnct},"serverMaxWindowBits":{bits},"clientMaxWindowBits":{bits}}}"#
                ),
                server_fragments: n % 2 == 1,
                client_fragments: n % 4 >= 2,
                expected,
            });
        }
    }
    out
}

/// The messages sent in every setting: seeded, text (some of it not ASCII) and binary, of many
/// sizes, many repeating earlier ones so that the compressors refer back across messages.
fn matrix_messages(count: usize) -> Vec<Message> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const SIZES: [usize; 10] = [0, 1, 50, 125, 126, 500, 1024, 4000, 9000, 16384];
    const WORDS: [&str; 8] = [
        "wsharp", "deflate", "window", "takeover", "héllo", "мир", "😀", "frame",
    ];
    let mut out: Vec<Message> = Vec::with_capacity(count);
    for _ in 0..count {
        let size = SIZES[(next() % SIZES.len() as u64) as usize];
        let message = match next() % 10 {
            0..4 => {
                let mut text = String::new();
                while text.len() < size {
                    text.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
                    text.push(' ');
                }
                Message::text(text)
            }
            4..6 => Message::binary((0..size).map(|_| next() as u8).collect::<Vec<u8>>()),
            _ if !out.is_empty() => out[(next() % out.len() as u64) as usize].clone(),
            _ => Message::binary(vec![b'a'; size]),
        };
        out.push(message);
    }
    out
}

fn params(header: &str) -> BTreeSet<String> {
    header
        .split(';')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Runs one setting against the `ws` server at `port`; returns what went wrong.
async fn run_client_setting(port: u16, setting: &Setting, messages: &[Message]) -> Vec<String> {
    let mut failures = Vec::new();
    let config = Config::default().fragment_size(setting.client_fragments.then_some(1000));
    let mut ws = match bounded(
        ClientBuilder::new(format!("ws://127.0.0.1:{port}/"))
            .compression(setting.offer)
            .config(config)
            .connect(),
    )
    .await
    {
        Ok(ws) => ws,
        Err(e) => return vec![format!("connect: {e}")],
    };
    if !ws.is_compressed() {
        failures.push("not compressed".to_owned());
    }
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => match t.as_str().strip_prefix("negotiated:") {
            Some(header) if params(header) == setting.expected => {}
            _ => failures.push(format!(
                "negotiated {:?}, expected {:?}",
                t.as_str(),
                setting.expected
            )),
        },
        other => return vec![format!("no negotiation report: {other:?}")],
    }
    // In batches, so that neither side's buffers hold more than a batch.
    for (b, batch) in messages.chunks(25).enumerate() {
        for m in batch {
            if let Err(e) = ws.feed(m.clone()).await {
                return vec![format!("send: {e}")];
            }
        }
        if let Err(e) = ws.flush().await {
            return vec![format!("flush: {e}")];
        }
        for (i, sent) in batch.iter().enumerate() {
            match bounded(ws.recv()).await {
                Some(Ok(echo)) if echo == *sent => {}
                other => {
                    let got = match &other {
                        Some(Ok(m)) => {
                            format!("{} bytes ({:?})", m.len(), matches!(m, Message::Binary(_)))
                        }
                        other => format!("{other:?}"),
                    };
                    failures.push(format!(
                        "message {}: {} bytes (binary {}) came back as {got}",
                        b * 25 + i,
                        sent.len(),
                        matches!(sent, Message::Binary(_))
                    ));
                    return failures;
                }
            }
        }
    }
    if let Err(e) = ws.close(CloseCode::NORMAL, "").await {
        failures.push(format!("close: {e}"));
    }
    let mut last = None;
    while let Some(m) = bounded(ws.recv()).await {
        last = Some(m.map_err(|e| e.to_string()));
    }
    if !matches!(&last, Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::NORMAL) {
        failures.push(format!("close answered with {last:?}"));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_45_wsharp_client_against_node_ws_servers_every_deflate_setting() {
    const MESSAGES: usize = 200;
    let dir = node_peer();
    let settings = client_settings();
    let config: Vec<String> = settings
        .iter()
        .map(|s| {
            format!(
                r#"{{"perMessageDeflate":{},"fragment":{}}}"#,
                s.server, s.server_fragments
            )
        })
        .collect();
    let node = wsharp_testkit::peers::node();
    let mut child = tokio::process::Command::new(node)
        .arg(dir.join("deflate_server.js"))
        .arg(format!("[{}]", config.join(",")))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ports: Vec<u16> = match bounded(lines.next_line()).await.unwrap() {
        Some(line) => line
            .strip_prefix("ports ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .split(' ')
            .map(|p| p.parse().unwrap())
            .collect(),
        None => panic!("the Node servers did not start"),
    };
    assert_eq!(ports.len(), settings.len());
    let messages = matrix_messages(MESSAGES);
    let started = Instant::now();
    let mut failed = Vec::new();
    for (setting, port) in settings.iter().zip(&ports) {
        let failures = run_client_setting(*port, setting, &messages).await;
        if !failures.is_empty() {
            failed.push(format!(
                "offer {:?}, ws {} (fragments: client {}, server {}):\n  {}",
                setting.offer.offer_header(),
                setting.server,
                setting.client_fragments,
                setting.server_fragments,
                failures.join("\n  ")
            ));
        }
    }
    eprintln!(
        "{} settings, {} messages each, in {:?}",
        settings.len(),
        MESSAGES,
        started.elapsed()
    );
    drop(child.stdin.take());
    let _ = bounded(child.wait()).await;
    assert_eq!(settings.len(), 60);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
