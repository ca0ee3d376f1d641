//! `wsharp connect` through a real Squid: `--proxy` with credentials, `--proxy-user`,
//! `HTTPS_PROXY` from the environment and `--no-proxy`; exit 10 when the proxy cannot be
//! reached, 12 when it wants credentials (naming the proxy), 13 when it refuses the tunnel.

mod common;

use common::{connect, connect_with_env, echo_server, tls_echo};
use wsharp_testkit::certs::TestPki;
use wsharp_testkit::proxies::{Squid, SquidAuth};

#[test]
fn connect_through_squid_and_each_proxy_failure_has_its_exit_code() {
    let (_echo, port) = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let squid = Squid::start(SquidAuth::Digest {
        user: "nobita".into(),
        password: "sekret".into(),
    });
    let with_user = format!("http://nobita:sekret@127.0.0.1:{}", squid.port());
    let (code, out, err) = connect(&["--proxy", &with_user], &url);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    let (code, out, err) = connect_with_env(
        &["--proxy", &squid.url(), "--proxy-user", "nobita"],
        &url,
        &[("WSHARP_PROXY_PASSWORD", "sekret")],
    );
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    squid.wait_for_access(&format!("CONNECT 127.0.0.1:{port} nobita"));

    let (code, _, err) = connect(
        &["--proxy", &squid.url(), "--proxy-user", "nobita:wrong"],
        &url,
    );
    assert_eq!(code, 12, "{err}");
    assert!(err.contains(&squid.url()) && err.contains("407"), "{err}");
    assert!(err.contains(r#"Digest realm="wsharp-digest""#), "{err}");

    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = connect(&["--proxy", &format!("http://127.0.0.1:{dead}")], &url);
    assert_eq!(code, 10, "{err}");
    assert!(
        err.contains(&format!("proxy http://127.0.0.1:{dead}")),
        "{err}"
    );
    // Squid cannot reach the server: it refuses the tunnel.
    let (code, _, err) = connect(&["--proxy", &with_user], &format!("ws://127.0.0.1:{dead}/"));
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("tunnel refused"), "{err}");
}

#[test]
fn https_proxy_from_the_environment_and_no_proxy() {
    let pki = TestPki::new();
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let (_echo, port) = tls_echo(&pki.server, &[]);
    let url = format!("wss://localhost:{port}/");
    let squid = Squid::start(SquidAuth::Basic {
        user: "nobita".into(),
        password: "sekret".into(),
    });
    let proxy = format!("http://nobita:sekret@127.0.0.1:{}", squid.port());
    let (code, out, err) = connect_with_env(&["--ca", &ca], &url, &[("HTTPS_PROXY", &proxy)]);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    squid.wait_for_access(&format!("CONNECT localhost:{port} nobita"));
    // --no-proxy ignores a proxy that cannot be reached.
    let dead = "http://127.0.0.1:9";
    let (code, _, err) = connect_with_env(&["--ca", &ca], &url, &[("https_proxy", dead)]);
    assert_eq!(code, 10, "{err}");
    let (code, out, err) =
        connect_with_env(&["--ca", &ca, "--no-proxy"], &url, &[("https_proxy", dead)]);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
}
