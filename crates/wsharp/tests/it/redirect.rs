//! Redirects of the upgrade, against Python `websockets` servers that redirect: every status,
//! relative locations, the hop limit, a loop, another origin (which must not see the
//! credentials or cookies), a redirect to `wsharp`'s echo, and `wss` to `ws` refused.

use std::process::Command;

use tokio::net::TcpListener;
use wsharp::http::{Request, StatusCode, Uri};
use wsharp::tls::{ClientTls, ServerTls};
use wsharp::{ClientBuilder, Error, HandshakeError, Message, Refusal, ServerBuilder};
use wsharp_testkit::certs::TestPki;
use wsharp_testkit::peers::{Reap, spawn_reporting_port};

use crate::util::{bounded, echo_server, python, script};

/// A redirect server whose `/other/` paths go to `other_port`.
fn redirect_server(other_port: u16) -> (Reap, u16) {
    let mut command = Command::new(python());
    command
        .arg(script("redirect_server.py"))
        .arg(other_port.to_string());
    spawn_reporting_port(command, "the Python redirect server")
}

async fn first_text(builder: ClientBuilder) -> Result<(String, Uri), Error> {
    let (mut ws, response) = bounded(builder.connect_with_response()).await?;
    let url = response
        .extensions()
        .get::<Uri>()
        .expect("the URL connected to")
        .clone();
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => Ok((t.to_string(), url)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_followed_dropped_across_origins_and_bounded() {
    let echo = echo_server(ServerBuilder::new()).await;
    let (_far, far) = redirect_server(echo.port());
    let (_near, near) = redirect_server(far);
    let base = format!("ws://127.0.0.1:{near}");

    // Not followed unless asked (fault catalogue 20): the 302 is an error with its status.
    match bounded(ClientBuilder::new(format!("{base}/to/302/record")).connect()).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus {
            status, headers, ..
        })) => {
            assert_eq!(status, StatusCode::FOUND);
            assert_eq!(headers["location"], "/record");
        }
        other => panic!("{other:?}"),
    }
    for code in [301, 302, 303, 307, 308] {
        let builder = ClientBuilder::new(format!("{base}/to/{code}/record")).follow_redirects(5);
        let (text, url) = first_text(builder).await.unwrap();
        assert!(text.ends_with("path=/record"), "{code}: {text}");
        assert_eq!(url.to_string(), format!("{base}/record"));
    }

    // The same origin keeps the credentials and cookies; another origin gets neither.
    let carrying = |path: &str| {
        ClientBuilder::new(format!("{base}{path}"))
            .credentials("nobita", "sekret")
            .preauthenticate(true)
            .cookie("session", "s3cr3t")
            .follow_redirects(5)
    };
    let (same, _) = first_text(carrying("/to/307/record")).await.unwrap();
    assert_eq!(
        same,
        "authorization=Basic bm9iaXRhOnNla3JldA== cookie=session=s3cr3t path=/record"
    );
    let (other, url) = first_text(carrying("/other/record")).await.unwrap();
    assert_eq!(other, "authorization=- cookie=- path=/record");
    assert_eq!(url.to_string(), format!("ws://localhost:{far}/record"));
    // An Authorization header set by hand is dropped the same way.
    let by_hand = ClientBuilder::new(format!("{base}/other/record"))
        .header("Authorization", "Bearer t0k3n")
        .follow_redirects(5);
    assert!(
        first_text(by_hand)
            .await
            .unwrap()
            .0
            .starts_with("authorization=- ")
    );

    // Two hops to wsharp's echo server.
    let mut ws = bounded(
        ClientBuilder::new(format!("{base}/other/other/"))
            .follow_redirects(2)
            .connect(),
    )
    .await
    .unwrap();
    ws.send("redirected").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("redirected")
    );

    // The hop limit: /chain/4 takes five redirects, /chain/5 six.
    let five = ClientBuilder::new(format!("{base}/chain/4")).follow_redirects(5);
    assert!(first_text(five).await.is_ok());
    let six = ClientBuilder::new(format!("{base}/chain/5")).follow_redirects(5);
    match first_text(six).await {
        Err(Error::Redirect(e)) => assert!(e.contains("more than 5 redirects"), "{e}"),
        other => panic!("past the limit: {other:?}"),
    }
    match first_text(ClientBuilder::new(format!("{base}/loop")).follow_redirects(5)).await {
        Err(Error::Redirect(e)) => assert!(e.contains("loop"), "{e}"),
        other => panic!("{other:?}"),
    }
    match first_text(ClientBuilder::new(format!("{base}/nowhere")).follow_redirects(5)).await {
        Err(Error::Redirect(e)) => assert!(e.contains("Location"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// A `wss` server that redirects to `ws`: refused, nothing sent in the clear.
#[tokio::test]
async fn a_redirect_from_wss_to_ws_is_refused() {
    let pki = TestPki::new();
    let tls = ServerTls::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let location = format!("ws://127.0.0.1:{plain_port}/");
    let server =
        ServerBuilder::new().on_request(move |_: &Request<()>, _: &wsharp::UpgradeRequest| {
            Err(Refusal::new(StatusCode::MOVED_PERMANENTLY).header("Location", &location))
        });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = server.accept_tls(&tls, tcp).await;
        }
    });
    let builder = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .tls(ClientTls::new().add_ca_pem(pki.ca.cert_pem.as_bytes()))
        .follow_redirects(5);
    match bounded(builder.connect()).await {
        Err(Error::Redirect(e)) => assert!(e.contains("from wss to ws refused"), "{e}"),
        other => panic!("{other:?}"),
    }
    // The plain server never got a connection.
    let accepted = tokio::time::timeout(std::time::Duration::ZERO, plain.accept()).await;
    assert!(accepted.is_err(), "nothing reached the ws:// server");
}
