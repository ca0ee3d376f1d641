//! `tls_state [N]`: what rustls itself holds for an idle server connection. N server
//! connections (rustls 0.23 with aws-lc-rs, the configuration wsharp serves with) each finish a
//! TLS 1.3 handshake in memory with a client, exchange one small record each way, and then sit
//! idle, clients dropped. The heap they hold (counted, the `ServerConnection` values included)
//! and the resident set they add, divided by N, on mimalloc as `wsharp` runs: rustls' own idle
//! state per connection, to compare with `tls_idle`'s figures for wsharp's server.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

#[global_allocator]
static GLOBAL: wsharp_bench::CountingMimalloc = wsharp_bench::CountingMimalloc;

/// Moves what `$from` has to write into `$to`.
macro_rules! pump {
    ($from:expr, $to:expr) => {{
        let mut wire = Vec::new();
        while $from.wants_write() {
            $from.write_tls(&mut wire).expect("write into a Vec");
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            $to.read_tls(&mut rest).expect("read from a slice");
            $to.process_new_packets().expect("a good record");
        }
    }};
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a cert");
    let dir = std::env::temp_dir().join(format!("wsharp-tls-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    let server_config = Arc::new(wsharp_bench::tls_server_config(&cert, &key).expect("config"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).expect("pem"))
        .expect("a root");
    let client_config = Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let make = || {
        let mut server = ServerConnection::new(Arc::clone(&server_config)).expect("server");
        let name = ServerName::try_from("localhost").expect("a name");
        let mut client = ClientConnection::new(Arc::clone(&client_config), name).expect("client");
        while client.is_handshaking() || server.is_handshaking() {
            pump!(client, server);
            pump!(server, client);
        }
        client.writer().write_all(&[0x81; 40]).expect("write");
        pump!(client, server);
        let mut got = [0u8; 40];
        server.reader().read_exact(&mut got).expect("read");
        server.writer().write_all(&got).expect("write");
        pump!(server, client);
        server
    };
    // Warm up the allocator and rustls' lazy statics.
    drop((0..10).map(|_| make()).collect::<Vec<_>>());
    let (heap0, rss0) = (
        wsharp_bench::CountingMimalloc::live_bytes(),
        wsharp_testkit::memory::rss_bytes(),
    );
    let servers: Vec<ServerConnection> = (0..n).map(|_| make()).collect();
    let (heap1, rss1) = (
        wsharp_bench::CountingMimalloc::live_bytes(),
        wsharp_testkit::memory::rss_bytes(),
    );
    println!(
        "rustls idle server connection: {} bytes of heap and {} bytes of RSS each, the \
         `ServerConnection` value's {} bytes included ({n} connections, mimalloc)",
        (heap1 - heap0) / n,
        rss1.saturating_sub(rss0) / n,
        size_of::<ServerConnection>()
    );
    drop(servers);
}
