//! HTTP authentication and cookies against peers we did not write: curl (Basic and Digest),
//! Python `requests` (Digest), the Python `websockets` client and server (Basic, cookies),
//! and lighttpd's Digest in front of our echo server; our client against our server in every
//! Digest algorithm; the fault catalogue's handshake items 10, 15, 16 and 22.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsharp::auth::{AuthFailure, AuthScheme, Authenticator, DigestAlgorithm, Identity, Users};
use wsharp::http::{Method, Request, Response};
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::{Behavior, ServiceOptions, Session, WebSocketServer};
use wsharp::{ClientBuilder, CookieJar, Error, Message, ServerBuilder};

use wsharp_testkit::TempDir;

use crate::util::{bounded, echo_server, python, script};

fn users() -> Users {
    Users::new().with("nobita", "sekret")
}

/// Says who logged in (`user NAME SCHEME`), then echoes.
struct Who;

impl Behavior for Who {
    async fn on_open(&mut self, session: &Session) {
        let who = session.identity().map_or_else(
            || "nobody".to_owned(),
            |i| format!("{} {}", i.name(), i.scheme()),
        );
        let _ = session.send(format!("user {who}")).await;
    }

    async fn on_message(&mut self, session: &Session, message: Message) {
        let _ = session.send(message).await;
    }
}

/// A started WebSocketServer with the `Who` service at `/who` behind `auth`.
async fn who_server(auth: Authenticator) -> (WebSocketServer, SocketAddr) {
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .auth(auth);
    server.add_service("/who", || Who).unwrap();
    server.start();
    let addr = server.local_addr();
    (server, addr)
}

async fn first_text(builder: ClientBuilder) -> Result<String, Error> {
    let mut ws = bounded(builder.connect()).await?;
    match bounded(ws.recv()).await {
        Some(Ok(Message::Text(t))) => Ok(t.to_string()),
        other => panic!("{other:?}"),
    }
}

fn auth_error(result: Result<String, Error>) -> wsharp::auth::AuthError {
    match result {
        Err(Error::Auth(e)) => *e,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[tokio::test]
async fn our_digest_client_and_server_in_every_algorithm() {
    for algorithm in DigestAlgorithm::ALL {
        let auth = Authenticator::digest("chat", users()).digest_algorithms([algorithm]);
        let (server, addr) = who_server(auth).await;
        let url = format!("ws://{addr}/who?room=1");
        let ok = first_text(ClientBuilder::new(&url).credentials("nobita", "sekret")).await;
        assert_eq!(ok.unwrap(), "user nobita Digest", "{algorithm}");
        let wrong = first_text(ClientBuilder::new(&url).credentials("nobita", "nope")).await;
        let e = auth_error(wrong);
        assert_eq!(e.status, 401);
        assert_eq!(e.failure, AuthFailure::Refused);
        let none = auth_error(first_text(ClientBuilder::new(&url)).await);
        assert_eq!(none.failure, AuthFailure::NoCredentials);
        assert!(
            none.to_string().contains(r#"Digest realm="chat""#),
            "{none}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn basic_challenged_preauthenticated_from_the_url_and_blocking() {
    let auth = Authenticator::basic("chat", users());
    let (server, addr) = who_server(auth).await;
    let url = format!("ws://{addr}/who");
    let challenged = first_text(ClientBuilder::new(&url).credentials("nobita", "sekret")).await;
    assert_eq!(challenged.unwrap(), "user nobita Basic");
    let pre = ClientBuilder::new(&url)
        .credentials("nobita", "sekret")
        .preauthenticate(true);
    assert_eq!(first_text(pre).await.unwrap(), "user nobita Basic");
    // Percent-encoded user-info ("s%65kret" is "sekret").
    let in_url = format!("ws://nobita:s%65kret@{addr}/who");
    assert_eq!(
        first_text(ClientBuilder::new(&in_url)).await.unwrap(),
        "user nobita Basic"
    );
    // A Digest-only client has nothing to answer Basic with.
    let digest_only = ClientBuilder::new(&url)
        .credentials("nobita", "sekret")
        .auth_scheme(AuthScheme::Digest);
    assert_eq!(
        auth_error(first_text(digest_only).await).failure,
        AuthFailure::NoSupportedScheme
    );
    let blocking_url = url.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut ws = ClientBuilder::new(&blocking_url)
            .credentials("nobita", "sekret")
            .connect_blocking()
            .unwrap();
        ws.recv().unwrap().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(text, Message::text("user nobita Basic"));
    server.stop().await;
}

/// An HttpServer with Digest (SHA-256 and MD5) and Basic on everything, a file, a page at `/`,
/// and a POST handler that greets the user.
async fn protected_http_server(auth: Authenticator) -> (HttpServer, SocketAddr, TempDir) {
    let dir = TempDir::new("wsharp-auth");
    std::fs::write(dir.path().join("file.txt"), "the file\n").unwrap();
    let options = HttpServerOptions::default()
        .document_root(dir.path())
        .index_page("the page\n")
        .auth(auth);
    let server = HttpServer::bind("127.0.0.1:0", options).await.unwrap();
    server.on(Method::POST, |req: Request<Bytes>| async move {
        let user = req
            .extensions()
            .get::<Identity>()
            .map_or("nobody", Identity::name)
            .to_owned();
        Response::new(Bytes::from(format!("hello {user}\n")))
    });
    server.add_service("/who", || Who).unwrap();
    server.start();
    let addr = server.local_addr();
    (server, addr, dir)
}

/// Runs curl with `args`; returns (status line code, body, stderr).
async fn curl(args: &[&str]) -> (String, String, String) {
    let out = bounded(
        tokio::process::Command::new("curl")
            .args(["-s", "-S", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (
        code.to_owned(),
        body.to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn curl_basic_and_digest_fetch_the_protected_page_file_and_handler() {
    let auth = Authenticator::digest("site", users()).with_basic(true);
    let (server, addr, _dir) = protected_http_server(auth).await;
    let base = format!("http://{addr}");
    for how in ["--basic", "--digest"] {
        let file = curl(&[how, "-u", "nobita:sekret", &format!("{base}/file.txt")]).await;
        assert_eq!(
            (file.0.as_str(), file.1.as_str()),
            ("200", "the file\n"),
            "{how}: {file:?}"
        );
        let page = curl(&[how, "-u", "nobita:sekret", &format!("{base}/")]).await;
        assert_eq!(
            (page.0.as_str(), page.1.as_str()),
            ("200", "the page\n"),
            "{how}"
        );
        let handler = curl(&[how, "-u", "nobita:sekret", "-d", "x", &format!("{base}/hi")]).await;
        assert_eq!(handler.1, "hello nobita\n", "{how}");
        let wrong = curl(&[how, "-u", "nobita:wrong", &format!("{base}/file.txt")]).await;
        assert_eq!(wrong.0, "401", "{how}");
    }
    let anonymous = curl(&[&format!("{base}/file.txt")]).await;
    assert_eq!(anonymous.0, "401");
    server.stop().await;
}

#[tokio::test]
async fn python_requests_digest_md5_fetches_the_file() {
    // requests answers the last Digest challenge it sees: offer one algorithm.
    let auth = Authenticator::digest("site", users()).digest_algorithms([DigestAlgorithm::Md5]);
    let (server, addr, _dir) = protected_http_server(auth).await;
    for (password, expect) in [
        ("sekret", "200 the file"),
        ("wrong", "401 401 Unauthorized"),
    ] {
        let out = bounded(
            tokio::process::Command::new(python())
                .arg(script("requests_digest.py"))
                .args([&format!("http://{addr}/file.txt"), "nobita", password])
                .output(),
        )
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.trim(),
            expect,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn python_websockets_client_sends_basic_from_the_uri() {
    let (server, addr) = who_server(Authenticator::basic("chat", users())).await;
    let run = |uri: String| async move {
        let out = bounded(
            tokio::process::Command::new(python())
                .arg(script("auth_client.py"))
                .arg(uri)
                .output(),
        )
        .await
        .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        run(format!("ws://nobita:sekret@{addr}/who")).await,
        "user nobita Basic"
    );
    assert_eq!(
        run(format!("ws://nobita:wrong@{addr}/who")).await,
        "status 401"
    );
    assert_eq!(run(format!("ws://{addr}/who")).await, "status 401");
    server.stop().await;
}

#[tokio::test]
async fn a_captured_digest_authorization_replayed_is_refused() {
    let auth = Authenticator::digest("site", users());
    let (server, addr, _dir) = protected_http_server(auth).await;
    let url = format!("http://{addr}/file.txt");
    let (code, _, log) = curl(&["-v", "--digest", "-u", "nobita:sekret", &url]).await;
    assert_eq!(code, "200");
    let captured = log
        .lines()
        .find_map(|l| l.strip_prefix("> Authorization: "))
        .expect("curl -v shows the Authorization it sent")
        .trim()
        .to_owned();
    let request =
        format!("GET /file.txt HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {captured}\r\n\r\n");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 4096];
    let n = bounded(tcp.read(&mut head)).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: digest"),
        "{head}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_expired_nonce_is_answered_stale_and_curl_retries() {
    // The test's clock reads ten minutes later from its second reading on: the nonce of the
    // first challenge (its first reading) has expired by the time curl answers it.
    let start = SystemTime::now();
    let readings = Arc::new(AtomicU64::new(0));
    let counted = readings.clone();
    let auth = Authenticator::digest("site", users())
        .digest_algorithms([DigestAlgorithm::Md5])
        .nonce_lifetime(Duration::from_secs(60))
        .clock(Arc::new(move || {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                start
            } else {
                start + Duration::from_secs(600)
            }
        }));
    let (server, addr, _dir) = protected_http_server(auth).await;
    let (code, body, log) = curl(&[
        "-v",
        "--digest",
        "-u",
        "nobita:sekret",
        &format!("http://{addr}/file.txt"),
    ])
    .await;
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", "the file\n"),
        "{log}"
    );
    let answered: Vec<_> = log
        .lines()
        .filter(|l| {
            l.starts_with("< HTTP/1.1") || l.to_ascii_lowercase().starts_with("< www-authenticate")
        })
        .collect();
    assert_eq!(answered.len(), 5, "401, 401 stale, 200: {log}");
    assert!(answered[3].contains("stale=true"), "{log}");
    assert!(answered[4].starts_with("< HTTP/1.1 200"), "{log}");
    server.stop().await;
}

#[tokio::test]
async fn our_client_against_the_python_basic_server() {
    let mut command = Command::new(python());
    command
        .arg(script("basic_auth_server.py"))
        .args(["nobita", "sekret"]);
    let (_server, port) = wsharp_testkit::peers::spawn_reporting_port(command, "the Python server");
    let url = format!("ws://127.0.0.1:{port}/");
    let challenged = first_text(ClientBuilder::new(&url).credentials("nobita", "sekret")).await;
    assert_eq!(challenged.unwrap(), "user nobita");
    let pre = ClientBuilder::new(&url)
        .credentials("nobita", "sekret")
        .preauthenticate(true);
    assert_eq!(first_text(pre).await.unwrap(), "user nobita");
    let wrong = auth_error(first_text(ClientBuilder::new(&url).credentials("nobita", "x")).await);
    assert_eq!(wrong.failure, AuthFailure::Refused);
    assert_eq!(wrong.challenges[0].realm(), Some("py-realm"));
    let wrong_pre = ClientBuilder::new(&url)
        .credentials("nobita", "x")
        .preauthenticate(true);
    assert_eq!(
        auth_error(first_text(wrong_pre).await).failure,
        AuthFailure::Refused
    );
}

/// lighttpd (Debian's, mod_auth Digest with an htdigest file, mod_proxy forwarding the
/// upgrade) in front of our echo server.
struct Lighttpd {
    _process: wsharp_testkit::peers::Reap,
    port: u16,
    _dir: TempDir,
}

impl Lighttpd {
    async fn start(algorithms: &str, backend: SocketAddr) -> Self {
        let dir = TempDir::new("wsharp-auth");
        let (user, realm, password) = ("nobita", "wsharp", "sekret");
        let mut htdigest = String::new();
        for a in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            htdigest.push_str(&format!(
                "{user}:{realm}:{}\n",
                a.ha1(user, realm, password)
            ));
        }
        std::fs::write(dir.path().join("htdigest"), htdigest).unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = format!(
            r#"server.modules = ( "mod_auth", "mod_authn_file", "mod_proxy" )
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{d}/www"
server.errorlog = "{d}/error.log"
auth.backend = "htdigest"
auth.backend.htdigest.userfile = "{d}/htdigest"
auth.require = ( "/" => ( "method" => "digest", "realm" => "{realm}", "algorithm" => "{algorithms}", "require" => "valid-user" ) )
proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => {} ) ) )
proxy.header = ( "upgrade" => "enable" )
"#,
            backend.port()
        );
        std::fs::write(dir.path().join("lighttpd.conf"), config).unwrap();
        let binary = ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("lighttpd is installed (scripts/test.sh installs Debian's)");
        let process = wsharp_testkit::peers::Reap(
            Command::new(binary)
                .args(["-D", "-f"])
                .arg(dir.path().join("lighttpd.conf"))
                .spawn()
                .expect("lighttpd starts"),
        );
        // Ready when it accepts connections.
        bounded(async {
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        Self {
            _process: process,
            port,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_digest_client_through_lighttpd() {
    let backend = echo_server(ServerBuilder::new()).await;
    for (algorithms, expect) in [
        ("MD5", "MD5"),
        ("SHA-256", "SHA-256"),
        ("MD5|SHA-256", "SHA-256"),
    ] {
        let proxy = Lighttpd::start(algorithms, backend).await;
        let url = format!("ws://127.0.0.1:{}/ws/echo?x=1", proxy.port);
        let mut ws = bounded(
            ClientBuilder::new(&url)
                .credentials("nobita", "sekret")
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("{algorithms}: {e}"));
        ws.send("through lighttpd").await.unwrap();
        assert_eq!(
            bounded(ws.recv()).await.unwrap().unwrap(),
            Message::text("through lighttpd")
        );
        let wrong = ClientBuilder::new(&url)
            .credentials("nobita", "wrong")
            .connect();
        match bounded(wrong).await {
            Err(Error::Auth(e)) => {
                assert_eq!(e.failure, AuthFailure::Refused);
                assert!(
                    e.challenges
                        .iter()
                        .any(|c| c.param("algorithm") == Some(expect)),
                    "{algorithms}: {e}"
                );
            }
            other => panic!("{algorithms}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn cookies_set_by_a_python_server_come_back_on_the_next_connection() {
    let mut command = Command::new(python());
    command.arg(script("cookie_server.py"));
    let (_server, port) = wsharp_testkit::peers::spawn_reporting_port(command, "the Python server");
    let url = format!("ws://127.0.0.1:{port}/");
    let jar = Arc::new(CookieJar::new());
    let (mut ws, response) = bounded(
        ClientBuilder::new(&url)
            .cookie_jar(jar.clone())
            .connect_with_response(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["set-cookie"],
        "visit=py-1; Path=/; HttpOnly"
    );
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("cookie <none>")
    );
    let mut again = bounded(
        ClientBuilder::new(&url)
            .cookie("lang", "ja")
            .cookie_jar(jar.clone())
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(
        bounded(again.recv()).await.unwrap().unwrap(),
        Message::text("cookie lang=ja; visit=py-1")
    );
    // Another host gets nothing from the jar.
    assert!(jar.cookies(&format!("ws://localhost:{port}/")).is_empty());
}

/// Fault catalogue 22: CR, LF or NUL in anything that goes into the request is refused when
/// the request is built, and nothing reaches the network.
#[tokio::test]
async fn header_injection_is_refused_before_anything_is_written() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("ws://{addr}/");
    let builders = [
        ClientBuilder::new(&url).header("X-A", "v\r\nX-Injected: 1"),
        ClientBuilder::new(&url).header("X-A", "v\0"),
        ClientBuilder::new(&url).header("X-A\r\nX-B", "v"),
        ClientBuilder::new(&url).subprotocols(["chat\r\nX-Injected: 1"]),
        ClientBuilder::new(&url).origin("http://a\r\nX-Injected: 1"),
        ClientBuilder::new(&url).cookie("a", "b\r\nX-Injected: 1"),
        ClientBuilder::new(&url).cookie("a;b", "c"),
        ClientBuilder::new(format!("ws://{addr}/a\r\nX-Injected: 1")),
        ClientBuilder::new(format!("ws://{addr}/a b")),
    ];
    for builder in builders {
        let shown = format!("{builder:?}");
        match bounded(builder.connect()).await {
            Err(Error::Handshake(_) | Error::InvalidUrl(_)) => {}
            other => panic!("{shown}: {other:?}"),
        }
    }
    // No connection was ever made.
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

/// Fault catalogue 10: an upgrade refused for want of credentials, with a request pipelined
/// behind it, gets one 401 with its challenge and `Connection: close`; the second request is
/// never answered. On both servers.
#[tokio::test]
async fn a_refused_upgrade_with_a_pipelined_request_closes_the_connection() {
    let (ws_server, ws_addr) = who_server(Authenticator::digest("chat", users())).await;
    let (http_server, http_addr, _dir) =
        protected_http_server(Authenticator::digest("site", users())).await;
    for addr in [ws_addr, http_addr] {
        let upgrade = format!(
            "GET /who HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\
             GET /file.txt HTTP/1.1\r\nHost: {addr}\r\n\r\n"
        );
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(upgrade.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        bounded(tcp.read_to_end(&mut all)).await.unwrap();
        let all = String::from_utf8_lossy(&all).to_ascii_lowercase();
        assert!(all.starts_with("http/1.1 401"), "{all}");
        assert!(all.contains("connection: close"), "{all}");
        assert!(all.contains("www-authenticate: digest"), "{all}");
        assert_eq!(all.matches("http/1.1 ").count(), 1, "{all}");
    }
    ws_server.stop().await;
    http_server.stop().await;
}

/// A service's own authenticator decides its upgrades; the server's covers the rest.
#[tokio::test]
async fn a_service_authenticator_overrides_the_servers() {
    let server = WebSocketServer::bind("127.0.0.1:0")
        .await
        .unwrap()
        .auth(Authenticator::basic("server", users()));
    server.add_service("/who", || Who).unwrap();
    server
        .add_service_with(
            "/admin",
            ServiceOptions::default().auth(Authenticator::digest(
                "admin",
                Users::new().with("dora", "pocket"),
            )),
            || Who,
        )
        .unwrap();
    server.start();
    let addr = server.local_addr();
    let admin = format!("ws://{addr}/admin");
    let as_dora = ClientBuilder::new(&admin).credentials("dora", "pocket");
    assert_eq!(first_text(as_dora).await.unwrap(), "user dora Digest");
    let as_nobita = ClientBuilder::new(&admin).credentials("nobita", "sekret");
    let e = auth_error(first_text(as_nobita).await);
    assert_eq!(e.challenges[0].realm(), Some("admin"));
    let who = ClientBuilder::new(format!("ws://{addr}/who")).credentials("nobita", "sekret");
    assert_eq!(first_text(who).await.unwrap(), "user nobita Basic");
    server.stop().await;
}

/// A Bearer token through `header()` and the request hook of `ServerBuilder`, which can also
/// run an `Authenticator` itself.
#[tokio::test]
async fn bearer_tokens_and_authenticators_in_the_request_hook() {
    let digest = Arc::new(Authenticator::digest("hook", users()));
    let check = digest.clone();
    let server =
        ServerBuilder::new().on_request(move |req: &Request<()>, _: &wsharp::UpgradeRequest| {
            let bearer = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v == "Bearer let-me-in");
            if bearer {
                return Ok(None);
            }
            check.authenticate(req).map(|_| None)
        });
    let addr = echo_server(server).await;
    let url = format!("ws://{addr}/");
    let bearer = ClientBuilder::new(&url).header("Authorization", "Bearer let-me-in");
    let mut ws = bounded(bearer.connect()).await.unwrap();
    ws.send("hi").await.unwrap();
    assert_eq!(
        bounded(ws.recv()).await.unwrap().unwrap(),
        Message::text("hi")
    );
    let wrong = ClientBuilder::new(&url).header("Authorization", "Bearer nope");
    match bounded(wrong.connect()).await {
        Err(Error::Auth(e)) => assert_eq!(e.failure, AuthFailure::Refused),
        other => panic!("{other:?}"),
    }
    let with_digest = ClientBuilder::new(&url).credentials("nobita", "sekret");
    assert!(bounded(with_digest.connect()).await.is_ok());
}
