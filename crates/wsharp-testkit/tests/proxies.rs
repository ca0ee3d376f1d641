//! The proxy launchers, driven by hand-written clients: Squid tunnels `CONNECT` with no
//! authentication, Basic, Digest or both, and answers 407 with its challenges otherwise;
//! microsocks tunnels SOCKS5, with or without a password, resolving host names itself.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};
use wsharp_testkit::LIMIT;
use wsharp_testkit::proxies::{BASIC_REALM, DIGEST_REALM, Socks5, Squid, SquidAuth};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// An echo server on 127.0.0.1 (and on ::1 at the same port when it can, for a `localhost`
/// that resolves there), running until the test ends. Returns its port.
fn echo_target() -> u16 {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the target");
    let port = v4.local_addr().expect("its address").port();
    let mut listeners = vec![v4];
    listeners.extend(TcpListener::bind((Ipv6Addr::LOCALHOST, port)));
    for listener in listeners {
        thread::spawn(move || {
            for mut tcp in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = tcp.read(&mut buf) {
                        if tcp.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }
    port
}

/// A connection to `port` on 127.0.0.1 whose reads give up after [`LIMIT`].
fn dial(port: u16) -> TcpStream {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the proxy");
    tcp.set_read_timeout(Some(LIMIT)).expect("a read timeout");
    tcp
}

/// Sends bytes through an open tunnel to the echo target and checks they come back.
fn assert_echoes(tcp: &mut TcpStream) {
    let message = b"bytes through the tunnel";
    tcp.write_all(message).expect("write into the tunnel");
    let mut back = [0; 24];
    tcp.read_exact(&mut back).expect("read from the tunnel");
    assert_eq!(&back, message);
}

/// A proxy's answer to `CONNECT`.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Reply {
    /// The values of the `Proxy-Authenticate` headers, in order.
    fn challenges(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("proxy-authenticate"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends `CONNECT 127.0.0.1:target` with `authorization` as its `Proxy-Authorization`, and
/// reads the reply's head, and its body when there is one (so the connection can be reused).
fn connect(tcp: &mut TcpStream, target: u16, authorization: Option<&str>) -> Reply {
    let mut request =
        format!("CONNECT 127.0.0.1:{target} HTTP/1.1\r\nHost: 127.0.0.1:{target}\r\n");
    if let Some(value) = authorization {
        request += &format!("Proxy-Authorization: {value}\r\n");
    }
    request += "\r\n";
    tcp.write_all(request.as_bytes()).expect("send CONNECT");
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).expect("the reply's head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("a UTF-8 head");
    let mut lines = head.lines();
    let status = lines.next().expect("a status line");
    let status = status
        .split(' ')
        .nth(1)
        .expect("a status")
        .parse()
        .expect("a code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().expect("a length"));
    let mut body = vec![0; length];
    tcp.read_exact(&mut body).expect("the reply's body");
    Reply { status, headers }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameters of a challenge such as `Digest realm="r", nonce="n", qop="auth"`.
fn params(challenge: &str) -> HashMap<String, String> {
    let (_, rest) = challenge.split_once(' ').expect("a scheme and parameters");
    rest.split(',')
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// The `Proxy-Authorization` answering the Digest `challenge` for `CONNECT 127.0.0.1:target`
/// (MD5, `qop=auth`, the digest-uri in authority form), as request number `nc` on its nonce.
fn digest(challenge: &str, password: &str, target: u16, nc: u32) -> String {
    let p = params(challenge);
    let (realm, nonce) = (&p["realm"], &p["nonce"]);
    assert_eq!(p.get("qop").map(String::as_str), Some("auth"));
    let uri = format!("127.0.0.1:{target}");
    let (nc, cnonce) = (format!("{nc:08x}"), "0a4f113b");
    let ha1 = md5_hex(&format!("{USER}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("CONNECT:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{USER}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         cnonce=\"{cnonce}\", nc={nc}, qop=auth, response=\"{response}\""
    )
}

fn squid(auth: fn(String, String) -> SquidAuth) -> Squid {
    Squid::start(auth(USER.into(), PASSWORD.into()))
}

fn basic_auth(user: String, password: String) -> SquidAuth {
    SquidAuth::Basic { user, password }
}

fn digest_auth(user: String, password: String) -> SquidAuth {
    SquidAuth::Digest { user, password }
}

fn both_auth(user: String, password: String) -> SquidAuth {
    SquidAuth::Both { user, password }
}

#[test]
fn squid_without_auth_tunnels_to_any_port() {
    let target = echo_target();
    let squid = Squid::start(SquidAuth::None);
    assert_eq!(squid.url(), format!("http://127.0.0.1:{}", squid.port()));
    let mut tcp = dial(squid.port());
    let reply = connect(&mut tcp, target, None);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);
    drop(tcp);
    let line = squid.wait_for_access("TCP_TUNNEL/");
    println!("access.log: {line}");
    assert!(line.contains("TCP_TUNNEL/200"), "{line}");
    assert!(
        line.contains(&format!("CONNECT 127.0.0.1:{target} - ")),
        "{line}"
    );
}

#[test]
fn squid_basic_challenges_then_tunnels() {
    let target = echo_target();
    let squid = squid(basic_auth);

    let reply = connect(&mut dial(squid.port()), target, None);
    println!(
        "Basic, no credentials: {} {:#?}",
        reply.status, reply.headers
    );
    assert_eq!(reply.status, 407);
    assert_eq!(
        reply.challenges(),
        [format!("Basic realm=\"{BASIC_REALM}\"")]
    );

    let reply = connect(&mut dial(squid.port()), target, Some(&basic(USER, "wrong")));
    println!(
        "Basic, wrong password: {} {:?}",
        reply.status,
        reply.challenges()
    );
    assert_eq!(reply.status, 407);

    let mut tcp = dial(squid.port());
    let reply = connect(&mut tcp, target, Some(&basic(USER, PASSWORD)));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);
    drop(tcp);
    let line = squid.wait_for_access("TCP_TUNNEL/");
    println!("access.log: {line}");
    assert!(line.contains("TCP_TUNNEL/200"), "{line}");
    assert!(
        line.contains(&format!("CONNECT 127.0.0.1:{target} {USER} ")),
        "{line}"
    );
}

#[test]
fn squid_digest_challenges_then_tunnels_on_the_same_connection() {
    let target = echo_target();
    let squid = squid(digest_auth);

    let mut tcp = dial(squid.port());
    let reply = connect(&mut tcp, target, None);
    println!(
        "Digest, no credentials: {} {:#?}",
        reply.status, reply.headers
    );
    assert_eq!(reply.status, 407);
    let [challenge] = reply.challenges()[..] else {
        panic!("one challenge: {reply:?}");
    };
    assert!(challenge.starts_with("Digest "), "{challenge}");
    let p = params(challenge);
    assert_eq!(p["realm"], DIGEST_REALM);
    assert_eq!(p["stale"], "false");
    assert!(!p.contains_key("algorithm"), "{challenge}");

    let wrong = connect(
        &mut dial(squid.port()),
        target,
        Some(&digest(challenge, "wrong", target, 1)),
    );
    println!(
        "Digest, wrong password: {} {:?}",
        wrong.status,
        wrong.challenges()
    );
    assert_eq!(wrong.status, 407);

    let reply = connect(
        &mut tcp,
        target,
        Some(&digest(challenge, PASSWORD, target, 1)),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);
    drop(tcp);
    let line = squid.wait_for_access("TCP_TUNNEL/");
    println!("access.log: {line}");
    assert!(line.contains("TCP_TUNNEL/200"), "{line}");
    assert!(
        line.contains(&format!("CONNECT 127.0.0.1:{target} {USER} ")),
        "{line}"
    );
}

#[test]
fn squid_with_both_offers_basic_first_and_accepts_either() {
    let target = echo_target();
    let squid = squid(both_auth);

    let reply = connect(&mut dial(squid.port()), target, None);
    println!(
        "Both, no credentials: {} {:#?}",
        reply.status, reply.headers
    );
    assert_eq!(reply.status, 407);
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 2, "{reply:?}");
    assert_eq!(challenges[0], format!("Basic realm=\"{BASIC_REALM}\""));
    assert!(challenges[1].starts_with("Digest "), "{reply:?}");

    let mut tcp = dial(squid.port());
    let reply = connect(&mut tcp, target, Some(&basic(USER, PASSWORD)));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);

    let mut tcp = dial(squid.port());
    let answer = digest(challenges[1], PASSWORD, target, 1);
    let reply = connect(&mut tcp, target, Some(&answer));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);
}

/// `nonce_max_count N` lets a nonce serve N + 1 requests (Squid 5.7 checks the count before
/// it counts the request); the next one gets a 407 with `stale=true` and a fresh nonce.
#[test]
fn squid_extra_config_makes_digest_nonces_stale() {
    let target = echo_target();
    let squid = Squid::start_with_extra(
        digest_auth(USER.into(), PASSWORD.into()),
        "auth_param digest nonce_max_count 2",
    );
    let reply = connect(&mut dial(squid.port()), target, None);
    let challenge = reply.challenges()[0].to_owned();
    for nc in 1..=3 {
        let mut tcp = dial(squid.port());
        let reply = connect(
            &mut tcp,
            target,
            Some(&digest(&challenge, PASSWORD, target, nc)),
        );
        assert_eq!(reply.status, 200, "nc={nc}: {reply:?}");
        assert_echoes(&mut tcp);
    }
    let mut tcp = dial(squid.port());
    let reply = connect(
        &mut tcp,
        target,
        Some(&digest(&challenge, PASSWORD, target, 4)),
    );
    println!(
        "Digest, nonce used a fourth time: {} {:?}",
        reply.status,
        reply.challenges()
    );
    assert_eq!(reply.status, 407);
    let fresh = reply.challenges()[0].to_owned();
    assert_eq!(params(&fresh)["stale"], "true", "{reply:?}");
    assert_ne!(params(&fresh)["nonce"], params(&challenge)["nonce"]);

    let reply = connect(&mut tcp, target, Some(&digest(&fresh, PASSWORD, target, 1)));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_echoes(&mut tcp);
}

/// Sends a SOCKS5 `CONNECT` to `localhost:target` by name (ATYP 3, resolved by the server)
/// and checks the reply.
fn socks5_connect(tcp: &mut TcpStream, target: u16) {
    let mut request = vec![5, 1, 0, 3, 9];
    request.extend_from_slice(b"localhost");
    request.extend_from_slice(&target.to_be_bytes());
    tcp.write_all(&request).expect("send CONNECT");
    let mut reply = [0; 4];
    tcp.read_exact(&mut reply).expect("the reply");
    assert_eq!(reply[..3], [5, 0, 0], "the reply: {reply:?}");
    let address = match reply[3] {
        1 => 4,
        4 => 16,
        atyp => panic!("address type {atyp}"),
    };
    let mut rest = vec![0; address + 2];
    tcp.read_exact(&mut rest).expect("the bound address");
}

#[test]
fn socks5_without_auth_resolves_names_and_tunnels() {
    let target = echo_target();
    let socks = Socks5::start(None);
    assert_eq!(socks.addr().port(), socks.port());
    let mut tcp = dial(socks.port());
    tcp.write_all(&[5, 1, 0]).expect("greet");
    let mut choice = [0; 2];
    tcp.read_exact(&mut choice).expect("the method");
    assert_eq!(choice, [5, 0]);
    socks5_connect(&mut tcp, target);
    assert_echoes(&mut tcp);
}

#[test]
fn socks5_with_password_requires_it() {
    let target = echo_target();
    let socks = Socks5::start(Some((USER, PASSWORD)));
    let mut choice = [0; 2];

    let mut tcp = dial(socks.port());
    tcp.write_all(&[5, 1, 0]).expect("greet");
    tcp.read_exact(&mut choice).expect("the method");
    assert_eq!(choice, [5, 0xff], "no acceptable method without a password");

    let login = |password: &str| {
        let mut tcp = dial(socks.port());
        tcp.write_all(&[5, 2, 0, 2]).expect("greet");
        let mut choice = [0; 2];
        tcp.read_exact(&mut choice).expect("the method");
        assert_eq!(choice, [5, 2]);
        let mut request = vec![1, USER.len() as u8];
        request.extend_from_slice(USER.as_bytes());
        request.push(password.len() as u8);
        request.extend_from_slice(password.as_bytes());
        tcp.write_all(&request).expect("send the password");
        let mut status = [0; 2];
        tcp.read_exact(&mut status).expect("the status");
        (tcp, status)
    };
    let (_, status) = login("wrong");
    assert_eq!(status[0], 1);
    assert_ne!(status[1], 0, "a wrong password is refused");

    let (mut tcp, status) = login(PASSWORD);
    assert_eq!(status, [1, 0]);
    socks5_connect(&mut tcp, target);
    assert_echoes(&mut tcp);
}

#[test]
#[should_panic(expected = "Squid did not start")]
fn squid_that_cannot_start_fails_the_test_with_its_log() {
    Squid::start_with_extra(SquidAuth::None, "no_such_directive on");
}
