//! Messages streamed in parts (websocket-sharp's `Send(FileInfo)`, `Send(Stream, int)`): files
//! and readers sent without holding the message, large messages read part by part, sessions
//! streaming while they keep serving, and sends that complete when written. The peer that
//! checks the bytes is Python `websockets`, with permessage-deflate on.

use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use wsharp::server::{Behavior, Session, WebSocketServer};
use wsharp::{ClientBuilder, Deflate, Message, MessageKind, Received};
use wsharp_testkit::TempDir;

use crate::util::{bounded, python, script};

fn python_stream_server() -> (wsharp_testkit::peers::Reap, u16) {
    let mut command = Command::new(python());
    command.arg(script("stream_peer.py")).arg("server");
    wsharp_testkit::peers::spawn_reporting_port(command, "the Python stream peer")
}

fn digest(data: &[u8]) -> String {
    format!("{} {:x}", data.len(), Sha256::digest(data))
}

/// Bytes that compress somewhat and differ along the way.
fn content(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if i % 3 == 0 {
                (state >> 24) as u8
            } else {
                b'a' + (i % 7) as u8
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_and_a_text_reader_streamed_to_python_arrive_whole_and_compressed() {
    let (_peer, port) = python_stream_server();
    let dir = TempDir::new("streamed");
    // Larger than the 64 KiB parts and than the receive buffer's first growth steps.
    let data = content((5 << 20) + 123);
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, &data).unwrap();

    let mut ws = bounded(
        ClientBuilder::new(format!("ws://127.0.0.1:{port}/digest"))
            .compression(Deflate::default())
            .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    let sent = bounded(ws.send_file(&path)).await.unwrap();
    assert_eq!(sent, data.len() as u64);
    let answer = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(answer.as_text(), Some(digest(&data).as_str()));

    // Three-byte characters: 64 KiB parts split some of them; the peer reads one valid text.
    let text = "€uro ".repeat(100_000);
    let sent = bounded(ws.send_reader(MessageKind::Text, text.as_bytes()))
        .await
        .unwrap();
    assert_eq!(sent, text.len() as u64);
    let answer = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(answer.as_text(), Some(digest(text.as_bytes()).as_str()));

    // Text that is not UTF-8 is refused before anything is sent: the connection goes on.
    let err = bounded(ws.send_reader(MessageKind::Text, &b"ok \xff"[..]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, wsharp::Error::Send(wsharp::SendError::InvalidUtf8)),
        "{err:?}"
    );
    ws.send("still open").await.unwrap();
    let answer = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(answer.as_text(), Some(digest(b"still open").as_str()));
}

/// Reads one message in parts; returns its bytes, the number of parts and the largest.
async fn read_in_parts(ws: &mut wsharp::WebSocket<wsharp::Transport>) -> (Vec<u8>, usize, usize) {
    let (mut data, mut parts, mut largest) = (Vec::new(), 0, 0);
    loop {
        match bounded(ws.recv_part()).await.unwrap().unwrap() {
            Received::Part(part) => {
                assert_eq!(part.kind, MessageKind::Binary);
                parts += 1;
                largest = largest.max(part.data.len());
                data.extend_from_slice(&part.data);
                if part.last {
                    return (data, parts, largest);
                }
            }
            Received::Message(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_from_python_are_read_in_parts() {
    let (_peer, port) = python_stream_server();
    // One 8 MiB frame, uncompressed: pieces of about the read buffer as they arrive.
    let mut ws = bounded(wsharp::connect(&format!(
        "ws://127.0.0.1:{port}/big?n={}&frag=0",
        8 << 20
    )))
    .await
    .unwrap();
    let (data, parts, largest) = read_in_parts(&mut ws).await;
    let read_size = wsharp::Config::default().read_buffer_size;
    assert!(parts > 8, "{parts} parts");
    assert!(largest <= 2 * read_size + 64, "largest part {largest}");
    // The text after it arrives whole: recv is back to whole messages.
    let line = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(line.as_text(), Some(digest(&data).as_str()));
    ws.close(wsharp::CloseCode::NORMAL, "").await.unwrap();

    // 24 MiB in 1 MiB compressed fragments: each inflated frame is a part.
    let mut ws = bounded(
        ClientBuilder::new(format!(
            "ws://127.0.0.1:{port}/big?n={}&frag={}",
            24 << 20,
            1 << 20
        ))
        .compression(Deflate::default())
        .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    let (data, parts, largest) = read_in_parts(&mut ws).await;
    assert_eq!(data.len(), 24 << 20);
    assert!(parts >= 24, "{parts} parts");
    assert!(largest <= 1 << 20, "largest part {largest}");
    let line = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(line.as_text(), Some(digest(&data).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_fails_even_in_parts() {
    let (_peer, port) = python_stream_server();
    let mut ws = bounded(
        ClientBuilder::new(format!(
            "ws://127.0.0.1:{port}/big?n={}&frag={}",
            3 << 20,
            1 << 20
        ))
        .config(
            wsharp::Config::default().limits(wsharp::Limits::default().max_message_size(2 << 20)),
        )
        .connect(),
    )
    .await
    .unwrap();
    let mut delivered = 0;
    let err = loop {
        match bounded(ws.recv_part()).await.unwrap() {
            Ok(Received::Part(part)) => delivered += part.data.len(),
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            wsharp::Error::Protocol(wsharp::ProtocolError::MessageTooBig { .. })
        ),
        "{err:?}"
    );
    assert!(delivered <= 2 << 20);
    // The connection ends (we sent 1009); nothing more is delivered.
    while let Some(next) = bounded(ws.recv_part()).await {
        assert!(!matches!(next, Ok(Received::Part(_))), "{next:?}");
    }
}

#[test]
fn the_blocking_client_streams_and_reads_in_parts() {
    let (_peer, port) = python_stream_server();
    let data = content(3 << 20);
    let mut ws = wsharp::blocking::connect(&format!("ws://127.0.0.1:{port}/digest")).unwrap();
    let sent = ws.send_reader(MessageKind::Binary, &data[..]).unwrap();
    assert_eq!(sent, data.len() as u64);
    let answer = ws.recv().unwrap().unwrap();
    assert_eq!(answer.as_text(), Some(digest(&data).as_str()));
    ws.send_part(MessageKind::Text, "two ", false).unwrap();
    ws.send_part(MessageKind::Text, "parts", true).unwrap();
    let answer = ws.recv().unwrap().unwrap();
    assert_eq!(answer.as_text(), Some(digest(b"two parts").as_str()));

    let mut ws =
        wsharp::blocking::connect(&format!("ws://127.0.0.1:{port}/big?n={}&frag=0", 4 << 20))
            .unwrap();
    let (mut got, mut parts) = (Vec::new(), 0);
    loop {
        match ws.recv_part().unwrap().unwrap() {
            Received::Part(part) => {
                parts += 1;
                got.extend_from_slice(&part.data);
                if part.last {
                    break;
                }
            }
            Received::Message(other) => panic!("{other:?}"),
        }
    }
    assert!(parts > 4, "{parts} parts");
    let line = ws.recv().unwrap().unwrap();
    assert_eq!(line.as_text(), Some(digest(&got).as_str()));
}

/// Streams the file it is given on open, then reports what the client answers.
struct FileSender {
    path: std::path::PathBuf,
    answers: mpsc::UnboundedSender<String>,
}

impl Behavior for FileSender {
    async fn on_open(&mut self, session: &Session) {
        let sent = session.send_file(&self.path).await.unwrap();
        let _ = self.answers.send(format!("sent {sent}"));
    }

    async fn on_message(&mut self, _: &Session, message: Message) {
        if let Some(text) = message.as_text() {
            let _ = self.answers.send(text.to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_streams_a_file_to_the_python_client() {
    let dir = TempDir::new("session-file");
    let data = content((6 << 20) + 7);
    let path = dir.path().join("download.bin");
    std::fs::write(&path, &data).unwrap();
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut answers) = mpsc::unbounded_channel();
    server
        .add_service("/file", move || FileSender {
            path: path.clone(),
            answers: tx.clone(),
        })
        .unwrap();
    server.start();
    let url = format!("ws://127.0.0.1:{}/file", server.local_addr().port());
    let client = tokio::process::Command::new(python())
        .arg(script("stream_peer.py"))
        .arg("client")
        .arg(&url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert_eq!(
        bounded(answers.recv()).await.unwrap(),
        format!("sent {}", data.len())
    );
    assert_eq!(bounded(answers.recv()).await.unwrap(), digest(&data));
    server.stop().await;
    let out = bounded(client.wait_with_output()).await.unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest(&data));
}

/// Hands its session to the test.
struct Handover(mpsc::UnboundedSender<Session>);

impl Behavior for Handover {
    async fn on_open(&mut self, session: &Session) {
        let _ = self.0.send(session.clone());
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}
}

async fn handover_server() -> (WebSocketServer, String, mpsc::UnboundedReceiver<Session>) {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    server
        .add_service("/s", move || Handover(tx.clone()))
        .unwrap();
    server.start();
    let url = format!("ws://127.0.0.1:{}/s", server.local_addr().port());
    (server, url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_session_keeps_answering_pings_and_other_sends_wait_for_its_end() {
    let (server, url, mut sessions) = handover_server().await;
    let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
    let session = bounded(sessions.recv()).await.unwrap();

    // A pipe of 4 bytes: once the first half is written, the session's task has taken the
    // stream and read from it.
    let (mut writer, reader) = tokio::io::duplex(4);
    let streaming = tokio::spawn({
        let session = session.clone();
        async move { session.send_reader(MessageKind::Binary, reader).await }
    });
    bounded(writer.write_all(b"first half, ")).await.unwrap();
    // The session is streaming: a send from elsewhere waits for the message's end.
    let after = tokio::spawn({
        let session = session.clone();
        async move { session.send("after").await }
    });
    // And the session still reads: our ping is answered mid-message.
    bounded(ws.ping_and_wait(Duration::from_secs(20)))
        .await
        .unwrap();
    writer.write_all(b"second half").await.unwrap();
    drop(writer);
    assert_eq!(bounded(streaming).await.unwrap().unwrap(), 23);
    bounded(after).await.unwrap().unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::binary(&b"first half, second half"[..])
    );
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("after")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_wait_returns_once_the_client_has_taken_the_message() {
    let (server, url, mut sessions) = handover_server().await;
    let limits = wsharp::Limits::default().max_frame_size(64 << 20);
    let mut ws = bounded(
        ClientBuilder::new(&url)
            .config(wsharp::Config::default().limits(limits))
            .connect(),
    )
    .await
    .unwrap();
    let session = bounded(sessions.recv()).await.unwrap();
    // Far more than the socket buffers hold: it cannot be written while the client reads
    // nothing.
    let big = content(48 << 20);
    let mut waiting = tokio::spawn({
        let session = session.clone();
        let big = big.clone();
        async move { session.send_and_wait(Message::binary(big)).await }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "not written while the client does not read"
    );
    let got = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(got.as_bytes().len(), big.len());
    bounded(waiting).await.unwrap().unwrap();
    // Once the session is gone, the wait fails instead of hanging.
    server.stop().await;
    assert!(session.send_and_wait("late").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_from_a_reader_reaches_every_session_within_its_bound() {
    let (server, url, mut sessions) = handover_server().await;
    let mut a = bounded(wsharp::connect(&url)).await.unwrap();
    let mut b = bounded(wsharp::connect(&url)).await.unwrap();
    let s = bounded(sessions.recv()).await.unwrap();
    bounded(sessions.recv()).await.unwrap();
    let all = s.sessions();
    let (len, report) = all
        .broadcast_reader(MessageKind::Text, "to all".as_bytes(), 100)
        .await
        .unwrap();
    assert_eq!((len, report.queued), (6, 2));
    for ws in [&mut a, &mut b] {
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::text("to all")
        );
    }
    let err = all
        .broadcast_reader(MessageKind::Binary, &[0u8; 101][..], 100)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, wsharp::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData),
        "{err:?}"
    );
    server.stop().await;
}

/// On open, streams a message and sends another in the same poll.
struct StreamThenSend;

impl Behavior for StreamThenSend {
    async fn on_open(&mut self, session: &Session) {
        let (streamed, sent) = futures_util::join!(
            session.send_reader(MessageKind::Binary, &b"streamed first"[..]),
            session.send("sent second"),
        );
        streamed.unwrap();
        sent.unwrap();
    }

    async fn on_message(&mut self, _: &Session, _: Message) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_send_after_its_stream_leaves_after_it() {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap();
    server.add_service("/s", || StreamThenSend).unwrap();
    server.start();
    let url = format!("ws://127.0.0.1:{}/s", server.local_addr().port());
    let mut ws = bounded(wsharp::connect(&url)).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::binary(&b"streamed first"[..])
    );
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("sent second")
    );
    server.stop().await;
}
