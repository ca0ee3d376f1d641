//! `tls::ServerStream`, the server's TLS on rustls' unbuffered API, against rustls' own
//! buffered client (tokio-rustls) over an in-memory pipe smaller than a record: every size
//! through large and tiny reads, TLS 1.2 and 1.3, a key update, both ways of closing, an end
//! without close_notify, garbage, records filled across the slices of a write, and no buffer
//! held while idle.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf};
use wsharp::tls::rustls::{self, ProtocolVersion};
use wsharp::tls::tokio_rustls::{TlsConnector, client::TlsStream};
use wsharp::tls::{ServerStream, ServerTls, TlsError};
use wsharp_testkit::certs::TestPki;

use crate::util::bounded;

/// A client configuration trusting the test CA, for `versions`.
fn client_config(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = wsharp::tls::pem::certificates(pki.ca.cert_pem.as_bytes()).unwrap();
    roots.add(ca[0].clone()).unwrap();
    let provider = wsharp::tls::crypto_provider().unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Our server and rustls' client, handshaken over an in-memory pipe holding `pipe` bytes.
async fn pair_with(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    pipe: usize,
) -> (ServerStream<DuplexStream>, TlsStream<DuplexStream>) {
    let (client_io, server_io) = tokio::io::duplex(pipe);
    let tls = ServerTls::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let server = tokio::spawn(async move { tls.accept(server_io).await });
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let client = bounded(TlsConnector::from(client_config(pki, versions)).connect(name, client_io))
        .await
        .unwrap();
    let server = bounded(server).await.unwrap().unwrap();
    (server, client)
}

/// Over a pipe smaller than a record: every read and write is partial.
async fn pair(pki: &TestPki) -> (ServerStream<DuplexStream>, TlsStream<DuplexStream>) {
    pair_with(pki, rustls::DEFAULT_VERSIONS, 1024).await
}

/// Over a pipe that holds whatever a test sends, for tests that write before they read.
async fn roomy_pair(pki: &TestPki) -> (ServerStream<DuplexStream>, TlsStream<DuplexStream>) {
    pair_with(pki, rustls::DEFAULT_VERSIONS, 1 << 20).await
}

/// Echoes what arrives, reading `chunk` bytes at most at a time, until end of stream.
fn echo(mut server: ServerStream<DuplexStream>, chunk: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; chunk];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            server.write_all(&buf[..n]).await.unwrap();
            server.flush().await.unwrap();
        }
        server.shutdown().await.unwrap();
    })
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends each size and reads it back whole (writing and reading at once: the pipe holds less
/// than a record); then closes with close_notify and expects the server's in return, a clean
/// end of stream.
async fn round_trips(client: TlsStream<DuplexStream>) {
    let (mut reader, mut writer) = tokio::io::split(client);
    for (i, len) in [1, 100, 16_383, 16_384, 16_385, 100_000, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let sent = pattern(len, i as u8);
        let mut got = vec![0u8; len];
        let (written, read) = bounded(async {
            tokio::join!(
                async {
                    writer.write_all(&sent).await?;
                    writer.flush().await
                },
                reader.read_exact(&mut got)
            )
        })
        .await;
        written.unwrap();
        read.unwrap();
        assert!(got == sent, "{len} bytes came back changed");
    }
    writer.shutdown().await.unwrap();
    let mut rest = Vec::new();
    assert_eq!(bounded(reader.read_to_end(&mut rest)).await.unwrap(), 0);
}

#[tokio::test]
async fn every_size_round_trips_through_large_and_tiny_reads() {
    let pki = TestPki::new();
    for chunk in [64 * 1024, 7] {
        let (server, client) = pair(&pki).await;
        assert_eq!(
            server.tls().protocol_version(),
            Some(ProtocolVersion::TLSv1_3)
        );
        assert_eq!(server.tls().alpn_protocol(), None);
        let served = echo(server, chunk);
        round_trips(client).await;
        bounded(served).await.unwrap();
    }
}

#[tokio::test]
async fn tls_1_2_round_trips_too() {
    let pki = TestPki::new();
    let (server, client) = pair_with(&pki, &[&rustls::version::TLS12], 1024).await;
    assert_eq!(
        server.tls().protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    let served = echo(server, 4096);
    round_trips(client).await;
    bounded(served).await.unwrap();
}

#[tokio::test]
async fn a_key_update_from_the_client_is_taken_in_stride() {
    let pki = TestPki::new();
    let (server, mut client) = roomy_pair(&pki).await;
    let served = echo(server, 4096);
    for round in 0..3u8 {
        let sent = pattern(40_000, round);
        client.write_all(&sent).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0u8; sent.len()];
        bounded(client.read_exact(&mut got)).await.unwrap();
        assert!(got == sent);
        // New keys for what follows, announced with a KeyUpdate the server must process (and
        // answer, since rustls asks for the peer's update too).
        client.get_mut().1.refresh_traffic_keys().unwrap();
    }
    client.shutdown().await.unwrap();
    bounded(served).await.unwrap();
}

#[tokio::test]
async fn an_end_without_close_notify_is_an_unexpected_eof() {
    let pki = TestPki::new();
    let (mut server, client) = pair(&pki).await;
    let (io, _) = client.into_inner();
    drop(io);
    let mut buf = [0u8; 16];
    let e = bounded(server.read(&mut buf)).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_is_refused_with_an_alert() {
    let pki = TestPki::new();
    let (mut client_io, server_io) = tokio::io::duplex(1024);
    let tls = ServerTls::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    client_io
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = bounded(tls.accept(server_io)).await.unwrap_err();
    assert!(
        matches!(e, wsharp::Error::Tls(TlsError::NotTls)),
        "not TLS: {e:?}"
    );
    let mut reply = Vec::new();
    bounded(client_io.read_to_end(&mut reply)).await.unwrap();
    assert_eq!(reply.first(), Some(&0x15), "an alert record: {reply:?}");
}

/// One round trip, so that the client has read everything the handshake left in the pipe
/// (TLS 1.3 session tickets) and what comes next is data.
async fn round_trip(server: &mut ServerStream<DuplexStream>, client: &mut TlsStream<DuplexStream>) {
    client.write_all(b"x").await.unwrap();
    client.flush().await.unwrap();
    let mut byte = [0u8; 1];
    bounded(server.read_exact(&mut byte)).await.unwrap();
    server.write_all(b"y").await.unwrap();
    server.flush().await.unwrap();
    bounded(client.read_exact(&mut byte)).await.unwrap();
}

/// The lengths of the TLS records that carry `plaintext` bytes, read raw from the client's
/// side of the pipe (TLS 1.3: each record adds a content type byte and a 16-byte tag).
async fn record_lengths(client: &mut TlsStream<DuplexStream>, plaintext: usize) -> Vec<usize> {
    let io = &mut client.get_mut().0;
    let mut raw = Vec::new();
    let mut lengths = Vec::new();
    let mut parsed = 0;
    let mut carried = 0;
    while carried < plaintext {
        let mut chunk = [0u8; 4096];
        let n = bounded(io.read(&mut chunk)).await.unwrap();
        assert!(
            n > 0,
            "the stream ended after {carried} of {plaintext} bytes"
        );
        raw.extend_from_slice(&chunk[..n]);
        while raw.len() >= parsed + 5 {
            assert_eq!(raw[parsed], 23, "an application data record");
            let len = usize::from(u16::from_be_bytes([raw[parsed + 3], raw[parsed + 4]]));
            if raw.len() < parsed + 5 + len {
                break;
            }
            lengths.push(len);
            carried += len - 17;
            parsed += 5 + len;
        }
    }
    assert_eq!(carried, plaintext);
    lengths
}

/// The plaintext one record carries in the configuration `ServerTls` builds: rustls'
/// `max_fragment_size` less the 5-byte record header.
fn record_plaintext(pki: &TestPki) -> usize {
    let tls = ServerTls::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let size = tls.config().max_fragment_size.expect("a fragment size");
    // At most 16 KiB, and rustls' buffer for a record (plaintext + 22 bytes) within 16 KiB.
    assert!(size - 5 + 22 <= 16 * 1024, "{size}");
    size - 5
}

#[tokio::test]
async fn a_vectored_write_fills_records_across_its_slices() {
    let pki = TestPki::new();
    let (mut server, mut client) = roomy_pair(&pki).await;
    round_trip(&mut server, &mut client).await;
    // Sixteen 1 KiB messages with their 4-byte headers, then one large payload.
    let header = [0x82u8, 0x7e, 0x04, 0x00];
    let payload = vec![7u8; 1024];
    let large = vec![9u8; 40_000];
    let mut slices = Vec::new();
    for _ in 0..16 {
        slices.push(std::io::IoSlice::new(&header));
        slices.push(std::io::IoSlice::new(&payload));
    }
    slices.push(std::io::IoSlice::new(&large));
    assert!(tokio::io::AsyncWrite::is_write_vectored(&server));
    let total = 16 * 1028 + 40_000;
    let n = bounded(server.write_vectored(&slices)).await.unwrap();
    assert_eq!(n, total, "all of them in one call");
    bounded(server.flush()).await.unwrap();
    let lengths = record_lengths(&mut client, total).await;
    // 56 448 bytes: three full records and one of the rest.
    let record = record_plaintext(&pki);
    assert_eq!(
        lengths,
        [
            record + 17,
            record + 17,
            record + 17,
            total - 3 * record + 17
        ]
    );
}

#[tokio::test]
async fn a_long_write_is_taken_in_whole_records() {
    let pki = TestPki::new();
    let (mut server, mut client) = roomy_pair(&pki).await;
    round_trip(&mut server, &mut client).await;
    let data = pattern(200_000, 3);
    let n = bounded(server.write(&data)).await.unwrap();
    let record = record_plaintext(&pki);
    assert_eq!(n, 4 * record, "whole records, up to 64 KiB");
    bounded(server.flush()).await.unwrap();
    assert_eq!(record_lengths(&mut client, n).await, [record + 17; 4]);
}

#[tokio::test]
async fn an_idle_connection_holds_no_buffer() {
    let pki = TestPki::new();
    let (mut server, mut client) = roomy_pair(&pki).await;
    let sent = pattern(50_000, 9);
    client.write_all(&sent).await.unwrap();
    client.flush().await.unwrap();
    let mut got = vec![0u8; sent.len()];
    bounded(server.read_exact(&mut got)).await.unwrap();
    server.write_all(&got).await.unwrap();
    server.flush().await.unwrap();
    // Nothing more to read: the read waits, and holds nothing while it does.
    let mut buf = [0u8; 64];
    let waiting = std::future::poll_fn(|cx| {
        let mut buf = ReadBuf::new(&mut buf);
        Poll::Ready(Pin::new(&mut server).poll_read(cx, &mut buf).is_pending())
    })
    .await;
    assert!(waiting);
    assert_eq!(server.buffered_capacity(), 0);
    let mut echoed = vec![0u8; sent.len()];
    bounded(client.read_exact(&mut echoed)).await.unwrap();
    assert!(echoed == sent);
}
