//! The client through proxies nobody here wrote: Debian's Squid (CONNECT without credentials,
//! with Basic, with Digest), a SOCKS5 server (with and without a password, remote name
//! resolution), chosen explicitly or from the environment's variables; the async and the
//! blocking layers; the fault catalogue's proxy items 23, 24 and 25.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsharp::tls::{ClientTls, ServerTls};
use wsharp::{ClientBuilder, Config, Error, Message, ProxyFailure, ProxySettings, ServerBuilder};
use wsharp_testkit::certs::TestPki;
use wsharp_testkit::peers::spawn_reporting_port;
use wsharp_testkit::proxies::{Socks5, Squid, SquidAuth};

use crate::util::{bounded, echo_server, python, script};

/// A `wss` echo server with the test PKI's server certificate; returns its port.
async fn tls_echo_server(pki: &TestPki) -> u16 {
    let tls = ServerTls::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = ServerBuilder::new();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (server, tls) = (server.clone(), tls.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept_tls(&tls, tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.recv().await {
                    if m.is_data() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn trusting(pki: &TestPki) -> ClientTls {
    ClientTls::new().add_ca_pem(pki.ca.cert_pem.as_bytes())
}

async fn round_trip(builder: ClientBuilder, text: &str) -> Result<(), Error> {
    let mut ws = bounded(builder.connect()).await?;
    ws.send(text).await?;
    assert_eq!(bounded(ws.recv()).await.unwrap()?, Message::text(text));
    Ok(())
}

fn proxy_failure(result: Result<(), Error>) -> ProxyFailure {
    match result {
        Err(Error::Proxy(e)) => e.failure,
        other => panic!("expected a proxy error, got {other:?}"),
    }
}

fn with_credentials(squid: &Squid, user: &str, password: &str) -> String {
    format!("http://{user}:{password}@127.0.0.1:{}", squid.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_squid_for_ws_and_wss_with_every_kind_of_credentials() {
    let pki = TestPki::new();
    let plain = echo_server(ServerBuilder::new()).await;
    let secure = tls_echo_server(&pki).await;
    let targets = |builder: fn(String) -> ClientBuilder| {
        [
            builder(format!("ws://127.0.0.1:{}/", plain.port())),
            builder(format!("wss://localhost:{secure}/")).tls(trusting(&pki)),
        ]
    };

    let open = Squid::start(SquidAuth::None);
    for target in targets(ClientBuilder::new) {
        round_trip(target.proxy(&open.url()), "through squid")
            .await
            .unwrap();
    }
    // Squid logs a tunnel once it is closed.
    open.wait_for_access(&format!("CONNECT 127.0.0.1:{}", plain.port()));
    open.wait_for_access(&format!("CONNECT localhost:{secure}"));

    for auth in ["basic", "digest", "both"] {
        let squid = Squid::start(match auth {
            "basic" => SquidAuth::Basic {
                user: "nobita".into(),
                password: "sekret".into(),
            },
            "digest" => SquidAuth::Digest {
                user: "nobita".into(),
                password: "sekret".into(),
            },
            _ => SquidAuth::Both {
                user: "nobita".into(),
                password: "sekret".into(),
            },
        });
        for target in targets(ClientBuilder::new) {
            let good = target
                .clone()
                .proxy(&with_credentials(&squid, "nobita", "sekret"));
            round_trip(good, auth)
                .await
                .unwrap_or_else(|e| panic!("{auth}: {e}"));
            let wrong = target
                .clone()
                .proxy(&with_credentials(&squid, "nobita", "wrong"));
            match proxy_failure(round_trip(wrong, auth).await) {
                ProxyFailure::Auth(e) => {
                    assert_eq!(e.status, 407);
                    assert_eq!(e.failure, wsharp::auth::AuthFailure::Refused);
                }
                other => panic!("{auth}: {other:?}"),
            }
            match proxy_failure(round_trip(target.proxy(&squid.url()), auth).await) {
                ProxyFailure::Auth(e) => {
                    assert_eq!(e.failure, wsharp::auth::AuthFailure::NoCredentials);
                    assert!(!e.challenges.is_empty());
                }
                other => panic!("{auth}: {other:?}"),
            }
        }
    }
}

/// Fault catalogue 25: the server never sees `Proxy-Authorization`; the proxy never sees the
/// messages of a `wss` connection in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_messages_go_only_where_they_belong() {
    let squid = Squid::start(SquidAuth::Basic {
        user: "nobita".into(),
        password: "sekret".into(),
    });
    let proxy = with_credentials(&squid, "nobita", "sekret");
    let mut command = Command::new(python());
    command.arg(script("redirect_server.py")).arg("1");
    let (_recorder, port) = spawn_reporting_port(command, "the Python recording server");
    let mut ws = bounded(
        ClientBuilder::new(format!("ws://127.0.0.1:{port}/record"))
            .proxy(&proxy)
            .connect(),
    )
    .await
    .unwrap();
    let seen = bounded(ws.recv()).await.unwrap().unwrap();
    assert_eq!(seen, Message::text("authorization=- cookie=- path=/record"));

    // A tap between Squid and the wss server keeps every byte the proxy passed on.
    let pki = TestPki::new();
    let secure = tls_echo_server(&pki).await;
    let tap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tap_port = tap.local_addr().unwrap().port();
    let tapped = Arc::new(Mutex::new(Vec::new()));
    let record = tapped.clone();
    tokio::spawn(async move {
        let (mut from_proxy, _) = tap.accept().await.unwrap();
        let mut to_server = TcpStream::connect(("127.0.0.1", secure)).await.unwrap();
        let (mut up, mut down) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
        loop {
            tokio::select! {
                n = from_proxy.read(&mut up) => {
                    let Ok(n @ 1..) = n else { break };
                    record.lock().unwrap().extend_from_slice(&up[..n]);
                    if to_server.write_all(&up[..n]).await.is_err() { break; }
                }
                n = to_server.read(&mut down) => {
                    let Ok(n @ 1..) = n else { break };
                    record.lock().unwrap().extend_from_slice(&down[..n]);
                    if from_proxy.write_all(&down[..n]).await.is_err() { break; }
                }
            }
        }
    });
    let secret = "a message only the server may read";
    let builder = ClientBuilder::new(format!("wss://localhost:{tap_port}/chat"))
        .tls(trusting(&pki))
        .credentials("nobita", "target-password")
        .preauthenticate(true)
        .proxy(&proxy);
    round_trip(builder, secret).await.unwrap();
    let bytes = tapped.lock().unwrap().clone();
    assert!(bytes.len() > 1000, "the tap saw the TLS handshake");
    for plain in [
        secret.as_bytes(),
        b"target-password",
        b"/chat",
        b"Authorization",
    ] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain),
            "{:?} crossed the proxy in the clear",
            String::from_utf8_lossy(plain)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_picks_the_proxy_and_no_proxy_bypasses_it() {
    let pki = TestPki::new();
    let plain = echo_server(ServerBuilder::new()).await;
    let secure = tls_echo_server(&pki).await;
    let squid = Squid::start(SquidAuth::None);
    // A port nothing listens on: any use of it fails.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = |pairs: Vec<(&'static str, String)>| {
        ProxySettings::from_vars(move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    };
    // HTTPS_PROXY for wss, the dead http_proxy never used for it.
    let settings = vars(vec![
        ("HTTPS_PROXY", squid.url()),
        ("http_proxy", format!("http://127.0.0.1:{dead}")),
    ]);
    let wss = ClientBuilder::new(format!("wss://localhost:{secure}/"))
        .tls(trusting(&pki))
        .proxy_settings(settings.clone());
    round_trip(wss, "https_proxy").await.unwrap();
    squid.wait_for_access(&format!("CONNECT localhost:{secure}"));
    // ... and the dead one for ws: the proxy, named, cannot be reached.
    let ws =
        ClientBuilder::new(format!("ws://127.0.0.1:{}/", plain.port())).proxy_settings(settings);
    match proxy_failure(round_trip(ws, "x").await) {
        ProxyFailure::Unreachable(_) => {}
        other => panic!("{other:?}"),
    }
    // no_proxy lists the target: the dead proxy is never tried.
    let bypass = vars(vec![
        ("all_proxy", format!("http://127.0.0.1:{dead}")),
        ("no_proxy", "example.com, 127.0.0.0/8".into()),
    ]);
    let direct =
        ClientBuilder::new(format!("ws://127.0.0.1:{}/", plain.port())).proxy_settings(bypass);
    round_trip(direct, "no_proxy").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_through_squid_and_socks5() {
    let pki = TestPki::new();
    let plain = echo_server(ServerBuilder::new()).await;
    let secure = tls_echo_server(&pki).await;
    let squid = Squid::start(SquidAuth::Digest {
        user: "nobita".into(),
        password: "sekret".into(),
    });
    let socks = Socks5::start(Some(("nobita", "sekret")));
    let proxies = [
        with_credentials(&squid, "nobita", "sekret"),
        format!("socks5h://nobita:sekret@127.0.0.1:{}", socks.port()),
    ];
    let ca = pki.ca.cert_pem.clone();
    tokio::task::spawn_blocking(move || {
        for proxy in &proxies {
            for url in [
                format!("ws://127.0.0.1:{}/", plain.port()),
                format!("wss://localhost:{secure}/"),
            ] {
                let mut ws = ClientBuilder::new(&url)
                    .tls(ClientTls::new().add_ca_pem(ca.as_bytes()))
                    .proxy(proxy)
                    .connect_blocking()
                    .unwrap_or_else(|e| panic!("{proxy} {url}: {e}"));
                ws.send("blocking").unwrap();
                assert_eq!(ws.recv().unwrap().unwrap(), Message::text("blocking"));
            }
        }
        let wrong = ClientBuilder::new(format!("ws://127.0.0.1:{}/", plain.port()))
            .proxy(&proxies[0].replace("sekret", "wrong"))
            .connect_blocking();
        assert!(
            matches!(wrong, Err(Error::Proxy(e)) if matches!(e.failure, ProxyFailure::Auth(_)))
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_socks5_with_and_without_a_password() {
    let pki = TestPki::new();
    let plain = echo_server(ServerBuilder::new()).await;
    let secure = tls_echo_server(&pki).await;
    let open = Socks5::start(None);
    let locked = Socks5::start(Some(("nobita", "sekret")));
    for (proxy, label) in [
        (format!("socks5://127.0.0.1:{}", open.port()), "socks5"),
        (format!("socks5h://127.0.0.1:{}", open.port()), "socks5h"),
        (
            format!("socks5h://nobita:sekret@127.0.0.1:{}", locked.port()),
            "password",
        ),
    ] {
        // `localhost` is resolved here for socks5, by the proxy for socks5h.
        let ws = ClientBuilder::new(format!("ws://localhost:{}/", plain.port())).proxy(&proxy);
        round_trip(ws, label)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let wss = ClientBuilder::new(format!("wss://localhost:{secure}/"))
            .tls(trusting(&pki))
            .proxy(&proxy);
        round_trip(wss, label)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let wrong = ClientBuilder::new(format!("ws://127.0.0.1:{}/", plain.port())).proxy(&format!(
        "socks5://nobita:wrong@127.0.0.1:{}",
        locked.port()
    ));
    match proxy_failure(round_trip(wrong, "x").await) {
        ProxyFailure::Protocol(e) => assert!(e.contains("SOCKS5"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// Fault catalogue 24: a proxy that never answers the CONNECT costs the handshake timeout; one
/// that answers with a header that never ends is cut at the head limit.
#[tokio::test]
async fn a_silent_or_endless_proxy_is_bounded() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            kept.push(tcp);
        }
    });
    let slow = ClientBuilder::new("ws://127.0.0.1:9/")
        .config(Config::default().handshake_timeout(Duration::from_millis(300)))
        .proxy(&format!("http://127.0.0.1:{silent_port}"));
    assert!(matches!(
        bounded(slow.connect()).await,
        Err(Error::HandshakeTimeout)
    ));

    let endless = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endless_port = endless.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = endless.accept().await {
            tokio::spawn(async move {
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
                let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                for _ in 0..(4 << 20) / line.len() {
                    if tcp.write_all(line).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let long =
        ClientBuilder::new("ws://127.0.0.1:9/").proxy(&format!("http://127.0.0.1:{endless_port}"));
    match proxy_failure(bounded(long.connect()).await.map(drop)) {
        ProxyFailure::Protocol(e) => assert!(e.contains("longer than"), "{e}"),
        other => panic!("{other:?}"),
    }
}
