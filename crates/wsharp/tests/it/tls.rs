//! TLS (`wss://`): our client and servers with each other and with peers we did not write
//! (Python `websockets` both ways, `openssl s_client`, curl), certificates made at test time.
//! Every failure is checked for its own error; mutual TLS both ways; certificate reload; the
//! faults a TLS port meets (a silent ClientHello, plain HTTP, garbage).

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::demo::Echo;
use wsharp::http::Request;
use wsharp::server::WebSocketServer;
use wsharp::tls::rustls;
use wsharp::tls::rustls::ProtocolVersion;
use wsharp::tls::{ClientAuth, ClientTls, PeerCertificates, Roots, ServerTls, TlsError};
use wsharp::{ClientBuilder, CloseCode, Config, Error, Message, ServerBuilder, UpgradeRequest};
use wsharp_testkit::certs::{Pair, TestPki};
use wsharp_testkit::peers::{Reap, python, spawn_reporting_port};

use crate::util::{bounded, echo_server, script};

fn server_tls(pair: &Pair) -> ServerTls {
    ServerTls::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap()
}

/// A client that trusts the test CA only.
fn trusting(pki: &TestPki) -> ClientTls {
    ClientTls::new()
        .roots(Roots::AddedOnly)
        .add_ca_pem(pki.ca.cert_pem.clone())
}

/// A `WebSocketServer` echoing on `/` over `tls`.
async fn tls_echo_server(tls: ServerTls) -> (WebSocketServer, SocketAddr) {
    let server = WebSocketServer::bind("127.0.0.1:0").await.unwrap().tls(tls);
    server.add_service("/", || Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    (server, addr)
}

async fn connect(
    url: String,
    tls: ClientTls,
) -> wsharp::Result<wsharp::WebSocket<wsharp::Transport>> {
    bounded(ClientBuilder::new(url).tls(tls).connect()).await
}

async fn echo_round_trip(ws: &mut wsharp::WebSocket<wsharp::Transport>) {
    for message in [
        Message::text("héllo ✓"),
        Message::binary(vec![0u8, 1, 254, 255]),
        Message::binary(vec![7u8; 300_000]),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(bounded(ws.recv()).await.unwrap().unwrap(), message);
    }
}

#[tokio::test]
async fn wss_between_our_client_and_server_with_the_test_ca() {
    let pki = TestPki::new();
    let (_server, addr) = tls_echo_server(server_tls(&pki.server)).await;
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let url = format!("wss://{host}:{}/", addr.port());
        let url = if host == "[::1]" {
            // The server listens on IPv4 only: the name check is what this exercises.
            url.replace("[::1]", "127.0.0.1")
        } else {
            url
        };
        let mut ws = connect(url, trusting(&pki)).await.unwrap();
        let session = ws.get_ref().tls().expect("a TLS session");
        assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        echo_round_trip(&mut ws).await;
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while bounded(ws.recv()).await.is_some() {}
        assert_eq!(ws.close_status().unwrap().code, CloseCode::NORMAL);
    }
}

/// The error a connection to `url` with `tls` fails with.
async fn tls_failure(url: String, tls: ClientTls) -> TlsError {
    match connect(url.clone(), tls).await {
        Err(Error::Tls(e)) => e,
        other => panic!("{url}: expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_client_failure_has_its_own_error() {
    let pki = TestPki::new();
    let (_good, good) = tls_echo_server(server_tls(&pki.server)).await;
    let (_expired, expired) = tls_echo_server(server_tls(&pki.expired)).await;
    let (_wrong, wrong) = tls_echo_server(server_tls(&pki.wrong_name)).await;
    let plain = echo_server(ServerBuilder::new()).await;
    let url = |addr: SocketAddr| format!("wss://localhost:{}/", addr.port());

    // The platform's store does not know the test CA; nor does a client trusting another CA.
    let e = tls_failure(url(good), ClientTls::new()).await;
    assert!(matches!(e, TlsError::UnknownIssuer), "{e:?}");
    let other = ClientTls::new()
        .roots(Roots::AddedOnly)
        .add_ca_pem(pki.other_ca.cert_pem.clone());
    let e = tls_failure(url(good), other).await;
    assert!(matches!(e, TlsError::UnknownIssuer), "{e:?}");
    let e = tls_failure(url(expired), trusting(&pki)).await;
    assert!(matches!(e, TlsError::Expired), "{e:?}");
    let e = tls_failure(url(wrong), trusting(&pki)).await;
    assert!(matches!(e, TlsError::NameMismatch(_)), "{e:?}");
    assert!(e.to_string().contains("localhost"), "{e}");
    let e = tls_failure(url(plain), trusting(&pki)).await;
    assert!(matches!(e, TlsError::NotTls), "{e:?}");
    // Each says why in one line.
    for e in [
        TlsError::UnknownIssuer,
        TlsError::Expired,
        TlsError::NotTls,
        TlsError::NameMismatch("\"localhost\"".into()),
    ] {
        assert!(!e.to_string().contains('\n'));
    }
}

#[tokio::test]
async fn a_verification_callback_sees_the_chain_and_decides() {
    let pki = TestPki::new();
    let (_server, addr) = tls_echo_server(server_tls(&pki.server)).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Not trusted by the standard checks, accepted by the callback (a pinned certificate).
    let pinned = pki.server.cert_pem.clone();
    let log = Arc::clone(&seen);
    let tls = ClientTls::new()
        .roots(Roots::AddedOnly)
        .add_ca_pem(pki.other_ca.cert_pem.clone())
        .verify_with(move |cert| {
            let leaf = wsharp::tls::pem::certificates(pinned.as_bytes()).unwrap();
            log.lock().unwrap().push((
                cert.server_name.clone(),
                cert.chain.len(),
                cert.verdict.as_ref().err().map(ToString::to_string),
            ));
            cert.chain[0] == leaf[0]
        });
    let mut ws = connect(url.clone(), tls).await.unwrap();
    echo_round_trip(&mut ws).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "localhost");
    assert_eq!(seen[0].1, 1, "the server sends its leaf");
    assert!(
        seen[0]
            .2
            .as_deref()
            .is_some_and(|v| v.contains("unknown authority"))
    );
    // A callback that refuses a chain the standard checks accept.
    let e = tls_failure(url.clone(), trusting(&pki).verify_with(|_| false)).await;
    assert!(matches!(e, TlsError::BadCertificate(_)), "{e:?}");
    // The test-only switch accepts even the expired leaf.
    let (_expired, expired) = tls_echo_server(server_tls(&pki.expired)).await;
    let url = format!("wss://localhost:{}/", expired.port());
    let mut ws = connect(url, ClientTls::new().dangerous_accept_any_certificate())
        .await
        .unwrap();
    echo_round_trip(&mut ws).await;
}

#[tokio::test]
async fn mutual_tls_on_our_server_shows_the_certificate_to_the_hook() {
    let pki = TestPki::new();
    let tls = server_tls(&pki.server)
        .with_client_auth(ClientAuth::required_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let server = ServerBuilder::new().on_request(move |req: &Request<()>, _: &UpgradeRequest| {
        let certs = req.extensions().get::<PeerCertificates>();
        log.lock().unwrap().push(certs.map_or(0, |c| c.0.len()));
        Ok(None)
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (server, tls) = (server.clone(), tls.clone());
            tokio::spawn(async move {
                if let Ok(mut ws) = server.accept_tls(&tls, tcp).await {
                    while let Some(Ok(m)) = ws.recv().await {
                        if m.is_data() && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    let url = format!("wss://localhost:{}/", addr.port());
    let with_cert = trusting(&pki)
        .client_certificate_pem(pki.client.cert_pem.clone(), pki.client.key_pem.clone());
    let mut ws = connect(url.clone(), with_cert).await.unwrap();
    echo_round_trip(&mut ws).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [1],
        "the hook saw the client's certificate"
    );
    // Without a certificate, or with one from another CA: refused, and the client says so.
    let e = tls_failure(url.clone(), trusting(&pki)).await;
    assert!(matches!(e, TlsError::Alert(_)), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
    let foreign = trusting(&pki).client_certificate_pem(
        pki.foreign_client.cert_pem.clone(),
        pki.foreign_client.key_pem.clone(),
    );
    let e = tls_failure(url, foreign).await;
    assert!(matches!(e, TlsError::Alert(_)), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "refused before any request");
}

/// A Python `websockets` TLS echo server with `cert`, requiring a client certificate from
/// `client_ca` if given.
fn python_tls_server(cert: &Pair, client_ca: Option<&Pair>) -> (Reap, u16) {
    let mut command = Command::new(python());
    command
        .arg(script("tls_server.py"))
        .arg(&cert.cert_file)
        .arg(&cert.key_file);
    if let Some(ca) = client_ca {
        command.arg(&ca.cert_file);
    }
    spawn_reporting_port(command, "the Python TLS server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_python_websockets_over_tls() {
    let pki = TestPki::new();
    let (_good, port) = python_tls_server(&pki.server, None);
    let url = format!("wss://localhost:{port}/");
    let mut ws = connect(url.clone(), trusting(&pki).clone()).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("no client certificate")
    );
    echo_round_trip(&mut ws).await;
    ws.send("close 4002 done").await.unwrap();
    assert!(
        matches!(bounded(ws.recv()).await, Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode(4002))
    );
    // Deflate over TLS.
    let mut ws = bounded(
        ClientBuilder::new(url.clone())
            .tls(trusting(&pki))
            .compression(wsharp::Deflate::default())
            .connect(),
    )
    .await
    .unwrap();
    assert!(ws.is_compressed());
    bounded(ws.recv()).await.unwrap().unwrap();
    echo_round_trip(&mut ws).await;

    let e = tls_failure(url.clone(), ClientTls::new()).await;
    assert!(matches!(e, TlsError::UnknownIssuer), "{e:?}");
    let (_expired, port) = python_tls_server(&pki.expired, None);
    let e = tls_failure(format!("wss://localhost:{port}/"), trusting(&pki)).await;
    assert!(matches!(e, TlsError::Expired), "{e:?}");
    let (_wrong, port) = python_tls_server(&pki.wrong_name, None);
    let e = tls_failure(format!("wss://127.0.0.1:{port}/"), trusting(&pki)).await;
    assert!(matches!(e, TlsError::NameMismatch(_)), "{e:?}");

    // Mutual TLS: the Python server requires a certificate from the test CA.
    let (_mtls, port) = python_tls_server(&pki.server, Some(&pki.ca));
    let url = format!("wss://localhost:{port}/");
    let with_cert = trusting(&pki)
        .client_certificate_pem_files(pki.client.cert_file.clone(), pki.client.key_file.clone());
    let mut ws = connect(url.clone(), with_cert).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("client wsharp-client")
    );
    echo_round_trip(&mut ws).await;
    // Without one: TLS 1.3 reports the refusal on the first read after the handshake, as
    // the server's alert, or as the end of the stream when the server closes without one
    // (Python's asyncio does), or as a reset when it closes while our Finished is still
    // unread (the kernel answers unread data with RST).
    let refused = |e: &Error| {
        matches!(e, Error::Tls(TlsError::Alert(a)) if a.contains("certificate"))
            || matches!(e, Error::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ))
    };
    match connect(url, trusting(&pki)).await {
        Err(e) => assert!(refused(&e), "{e:?}"),
        Ok(mut ws) => {
            let got = bounded(ws.recv()).await;
            assert!(matches!(&got, Some(Err(e)) if refused(e)), "{got:?}");
        }
    }
}

/// Runs the Python TLS client against `url`; returns its exit code and output.
async fn python_tls_client(url: &str, pki: &TestPki, client: Option<&Pair>) -> (i32, String) {
    let mut command = tokio::process::Command::new(python());
    command
        .arg(script("tls_client.py"))
        .arg(url)
        .arg(&pki.ca.cert_file)
        .kill_on_drop(true);
    if let Some(pair) = client {
        command.arg(&pair.cert_file).arg(&pair.key_file);
    }
    let out = bounded(command.output()).await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_against_our_wss_server() {
    let pki = TestPki::new();
    let (_server, addr) = tls_echo_server(server_tls(&pki.server)).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let (status, out) = python_tls_client(&url, &pki, None).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("tls TLSv1.3"), "{out}");
    assert!(out.contains("extensions permessage-deflate"), "{out}");
    assert!(out.contains("echoed 3"), "{out}");
    assert!(out.contains("closed 4001"), "{out}");

    // Mutual TLS required: with the test client certificate, and without.
    let tls = server_tls(&pki.server)
        .with_client_auth(ClientAuth::required_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let (_mtls, addr) = tls_echo_server(tls).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let (status, out) = python_tls_client(&url, &pki, Some(&pki.client)).await;
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("echoed 3"), "{out}");
    let (status, out) = python_tls_client(&url, &pki, None).await;
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("refused"), "{out}");
}

/// Runs `openssl s_client` against `addr` trusting `ca`, with `args`; writes `input`, then
/// reads its output until `until` appears (or it exits), and ends it.
fn s_client(
    addr: SocketAddr,
    ca: &std::path::Path,
    args: &[&str],
    input: &[u8],
    until: &str,
) -> String {
    use std::io::{Read, Write};
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed (scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let _reap = Reap(child);
    drop(stdin);
    let (tx, rx) = std::sync::mpsc::channel();
    let until = until.to_owned();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&out).contains(until.as_str()) {
                break;
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("openssl s_client answered within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_negotiates_tls_1_3_and_1_2_and_upgrades() {
    let pki = TestPki::new();
    let (_server, addr) = tls_echo_server(server_tls(&pki.server)).await;
    for (version, expect) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let ca = pki.ca.cert_file.clone();
        let out = tokio::task::spawn_blocking(move || {
            s_client(addr, &ca, &[version, "-alpn", "http/1.1"], b"", "closed")
        })
        .await
        .unwrap();
        assert!(out.contains(&format!("New, {expect}, Cipher is")), "{out}");
        assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    }
    let upgrade = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let ca = pki.ca.cert_file.clone();
    let out =
        tokio::task::spawn_blocking(move || s_client(addr, &ca, &["-quiet"], upgrade, "\r\n\r\n"))
            .await
            .unwrap();
    assert!(out.starts_with("HTTP/1.1 101 Switching Protocols"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{out}"
    );
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_and_spares_open_ones() {
    let pki = TestPki::new();
    let tls = server_tls(&pki.server);
    let (_server, addr) = tls_echo_server(tls.clone()).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let mut before = connect(url.clone(), trusting(&pki)).await.unwrap();
    echo_round_trip(&mut before).await;
    // Reload to the certificate for another name: new clients see it, the open one goes on.
    tls.reload_pem_files(&pki.wrong_name.cert_file, &pki.wrong_name.key_file)
        .unwrap();
    let e = tls_failure(url.clone(), trusting(&pki)).await;
    assert!(matches!(e, TlsError::NameMismatch(_)), "{e:?}");
    echo_round_trip(&mut before).await;
    // A bad reload changes nothing; a good one brings the first certificate back.
    assert!(tls.reload_pem(b"not pem", b"not pem").is_err());
    assert!(matches!(
        tls_failure(url.clone(), trusting(&pki)).await,
        TlsError::NameMismatch(_)
    ));
    tls.reload_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let mut after = connect(url, trusting(&pki)).await.unwrap();
    echo_round_trip(&mut after).await;
    echo_round_trip(&mut before).await;
}

#[tokio::test]
async fn a_tls_port_survives_silence_plain_http_and_garbage() {
    let pki = TestPki::new();
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .config(Config::default().handshake_timeout(Duration::from_millis(500)))
        .tls(server_tls(&pki.server));
    server.add_service("/", || Echo).unwrap();
    server.start();
    let addr = server.local_addr();
    // A ClientHello's first bytes, then silence: closed at the handshake timeout (fault 4).
    let mut silent = TcpStream::connect(addr).await.unwrap();
    silent
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = bounded(silent.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Plain HTTP, and garbage: each costs its own connection only.
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        &[0xff; 512][..],
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(bytes).await;
        let mut out = Vec::new();
        let _ = bounded(tcp.read_to_end(&mut out)).await;
        assert!(!String::from_utf8_lossy(&out).contains("101"), "{out:?}");
    }
    // The listener still serves.
    let mut ws = connect(format!("wss://localhost:{}/", addr.port()), trusting(&pki))
        .await
        .unwrap();
    echo_round_trip(&mut ws).await;
    // TLS on a plain port: refused there, the plain server goes on.
    let plain = echo_server(ServerBuilder::new()).await;
    let e = tls_failure(format!("wss://localhost:{}/", plain.port()), trusting(&pki)).await;
    assert!(matches!(e, TlsError::NotTls), "{e:?}");
    let mut ws = bounded(wsharp::connect(&format!("ws://{plain}/")))
        .await
        .unwrap();
    ws.send("still here").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("still here")
    );
}

#[tokio::test]
async fn configurations_build_without_a_process_provider() {
    // No test here installs a process-wide provider: every build below uses the compiled-in
    // one through explicit `*_with_provider` calls, and must not panic.
    let pki = TestPki::new();
    assert!(wsharp::tls::crypto_provider().is_ok());
    assert!(trusting(&pki).build().is_ok());
    assert!(
        ClientTls::new()
            .dangerous_accept_any_certificate()
            .build()
            .is_ok()
    );
    let tls = server_tls(&pki.server)
        .with_client_auth(ClientAuth::optional_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    // A CA list with nothing usable is an error, not an accept-all.
    assert!(matches!(
        ClientTls::new().roots(Roots::AddedOnly).build(),
        Err(TlsError::NoRoots(_))
    ));
    assert!(matches!(
        ServerTls::from_pem(b"", b""),
        Err(TlsError::Config(_))
    ));
}

#[test]
fn blocking_client_and_server_over_tls() {
    let pki = TestPki::new();
    let tls = server_tls(&pki.server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().unwrap();
            let Ok(mut ws) = ServerBuilder::new().accept_blocking_tls(&tls, tcp) else {
                continue;
            };
            while let Some(Ok(m)) = ws.recv() {
                if m.is_data() {
                    ws.send(m).unwrap();
                }
            }
        }
    });
    let url = format!("wss://localhost:{}/", addr.port());
    let mut ws = ClientBuilder::new(url.clone())
        .tls(trusting(&pki))
        .connect_blocking()
        .unwrap();
    assert!(ws.get_ref().tls().is_some());
    for message in [
        Message::text("blocking ✓"),
        Message::binary(vec![9u8; 100_000]),
    ] {
        ws.send(message.clone()).unwrap();
        let echoed = ws.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    while ws.recv_timeout(Duration::from_secs(10)).is_some() {}
    assert_eq!(ws.close_status().unwrap().code, CloseCode::NORMAL);
    // An untrusted server: the blocking client names the cause too.
    match ClientBuilder::new(url)
        .tls(ClientTls::new())
        .connect_blocking()
    {
        Err(Error::Tls(TlsError::UnknownIssuer)) => {}
        other => panic!("expected an unknown issuer, got {other:?}"),
    }
    server.join().unwrap();
}

/// Tells each session, as its first message, whether it is secure and how many certificates
/// its client presented.
struct Describe;

impl wsharp::server::Behavior for Describe {
    async fn on_open(&mut self, session: &wsharp::server::Session) {
        let certs = session.peer_certificates().map_or(0, |c| c.0.len());
        let _ = session
            .send(format!(
                "secure {} certificates {certs}",
                session.is_secure()
            ))
            .await;
    }

    async fn on_message(&mut self, session: &wsharp::server::Session, message: Message) {
        let _ = session.send(message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_files_and_wss_sessions_on_one_port() {
    use wsharp::http_server::{HttpServer, HttpServerOptions};
    let pki = TestPki::new();
    let root = pki.dir().join("public");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "over https\n").unwrap();
    let tls = server_tls(&pki.server)
        .with_client_auth(ClientAuth::optional_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let server = HttpServer::bind(
        "127.0.0.1:0",
        HttpServerOptions::default().document_root(&root).tls(tls),
    )
    .await
    .unwrap();
    server.add_service("/describe", || Describe).unwrap();
    server.start();
    let port = server.local_addr().port();
    // curl, a client we did not write, fetches a file over https.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&pki.ca.cert_file)
        .arg(format!("https://localhost:{port}/hello.txt"))
        .output();
    let out = bounded(out)
        .await
        .expect("curl runs (scripts/test.sh installs it)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "over https\n",
        "{out:?}"
    );
    // Plain HTTP on the https port: that connection only.
    let plain = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-m",
            "5",
            &format!("http://127.0.0.1:{port}/hello.txt"),
        ])
        .output();
    let started = std::time::Instant::now();
    let plain = bounded(plain).await.unwrap();
    assert!(!plain.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once"
    );
    // wss on the same port, without and with a client certificate.
    let url = format!("wss://localhost:{port}/describe");
    let mut ws = connect(url.clone(), trusting(&pki)).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("secure true certificates 0")
    );
    echo_round_trip(&mut ws).await;
    let with_cert = trusting(&pki)
        .client_certificate_pem(pki.client.cert_pem.clone(), pki.client.key_pem.clone());
    let mut ws = connect(url, with_cert).await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("secure true certificates 1")
    );
    drop(ws);
    server.stop().await;
}

/// An RSA key in PKCS#1 and an EC key in SEC1, as openssl writes them "traditionally", each
/// with a self-signed certificate: the server loads both.
#[tokio::test]
async fn servers_load_rsa_and_ec_keys_in_every_pem_form() {
    let pki = TestPki::new();
    // genrsa takes the key size last, after its options.
    let rsa: &[&str] = &["genrsa", "-traditional", "-out", "{key}", "2048"];
    let ec: &[&str] = &[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "{key}",
    ];
    for (name, genkey) in [("rsa", rsa), ("ec", ec)] {
        let key = pki.dir().join(format!("{name}.key"));
        let cert = pki.dir().join(format!("{name}.pem"));
        let args = genkey.iter().map(|a| {
            if *a == "{key}" {
                key.to_str().unwrap()
            } else {
                a
            }
        });
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "{out:?}");
        let pem = std::fs::read_to_string(&key).unwrap();
        let form = if name == "rsa" {
            "BEGIN RSA PRIVATE KEY"
        } else {
            "BEGIN EC PRIVATE KEY"
        };
        assert!(pem.contains(form), "{pem}");
        let out = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
            ])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let tls = ServerTls::from_pem_files(&cert, &key).unwrap();
        let (_server, addr) = tls_echo_server(tls).await;
        // The certificate is its own issuer: trusted here by accepting any, the handshake's
        // signature (RSA or ECDSA) still checked.
        let mut ws = connect(
            format!("wss://localhost:{}/", addr.port()),
            ClientTls::new().dangerous_accept_any_certificate(),
        )
        .await
        .unwrap();
        echo_round_trip(&mut ws).await;
    }
}

/// A caller's own rustls configuration is used as it is.
#[tokio::test]
async fn a_callers_client_config_is_used_as_it_is() {
    let pki = TestPki::new();
    let (_server, addr) = tls_echo_server(server_tls(&pki.server)).await;
    let provider = wsharp::tls::crypto_provider().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(
        wsharp::tls::pem::certificates(pki.ca.cert_pem.as_bytes()).unwrap(),
    );
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = ClientTls::new().config(Arc::new(config));
    let mut ws = connect(format!("wss://localhost:{}/", addr.port()), tls)
        .await
        .unwrap();
    let session = ws.get_ref().tls().unwrap();
    assert_eq!(
        session.protocol_version(),
        Some(ProtocolVersion::TLSv1_2),
        "its TLS 1.2 only"
    );
    assert_eq!(session.alpn_protocol(), None, "its ALPN list, empty");
    echo_round_trip(&mut ws).await;
}
