//! The `wsharp` binary over TLS: `connect` with `--ca`, `--insecure` and client certificates
//! against our `echo --tls-*` and a Python `websockets` TLS server; each TLS failure exits 11
//! with its reason in one line; SIGHUP reloads the certificate; `serve --tls-self-signed`.

mod common;

use std::process::{Command, Stdio};

use common::{Reap, connect, connect_until, python, start, tls_echo};
use wsharp_testkit::certs::TestPki;
use wsharp_testkit::peers::{spawn_reporting_port, spawn_with_log, wait_for_line};

const WSHARP: &str = env!("CARGO_BIN_EXE_wsharp");

#[test]
fn connect_over_wss_and_each_tls_failure_exits_11() {
    let pki = TestPki::new();
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let (_good, port) = tls_echo(&pki.server, &[]);
    let url = format!("wss://localhost:{port}/");
    let (code, out, err) = connect(&["--ca", &ca], &url);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");

    let (code, _, err) = connect(&[], &url);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("unknown authority"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (_expired, port) = tls_echo(&pki.expired, &[]);
    let (code, _, err) = connect(&["--ca", &ca], &format!("wss://localhost:{port}/"));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("expired"), "{err}");
    let (_wrong, port) = tls_echo(&pki.wrong_name, &[]);
    let (code, _, err) = connect(&["--ca", &ca], &format!("wss://localhost:{port}/"));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("not valid for"), "{err}");
    let (_plain, port) = start(&["echo", "--listen", "127.0.0.1:0"], "ws://127.0.0.1:");
    let (code, _, err) = connect(&["--ca", &ca], &format!("wss://localhost:{port}/"));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("does not speak TLS"), "{err}");
    // And a ws:// URL on a TLS port: the TLS server's answer is recognised.
    let (code, _, err) = connect(&[], &format!("ws://localhost:{}/", url_port(&url)));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("speaks TLS"), "{err}");
    // --insecure accepts even the expired certificate.
    let (_expired, port) = tls_echo(&pki.expired, &[]);
    let (code, out, err) = connect(&["--insecure"], &format!("wss://localhost:{port}/"));
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    // An unreadable CA file is a TLS setup failure.
    let (code, _, err) = connect(&["--ca", "/nonexistent/ca.pem"], &url);
    assert_eq!(code, 11, "{err}");
}

fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

#[test]
fn connect_against_python_websockets_over_tls_with_a_client_certificate() {
    let pki = TestPki::new();
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wsharp/tests/it/py/tls_server.py");
    let mut command = Command::new(python());
    command
        .arg(&script)
        .arg(&pki.server.cert_file)
        .arg(&pki.server.key_file)
        .arg(&pki.ca.cert_file);
    let (_server, port) = spawn_reporting_port(command, "the Python TLS server");
    let url = format!("wss://localhost:{port}/");
    let cert = pki.client.cert_file.to_str().unwrap();
    let key = pki.client.key_file.to_str().unwrap();
    let (code, out, err) =
        connect_until(&["--ca", &ca, "--cert", cert, "--key", key], &url, Some(3));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "client wsharp-client\none\ntwo\n", "{err}");
}

#[test]
fn mutual_tls_on_wsharp_echo() {
    let pki = TestPki::new();
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let (_server, port) = tls_echo(&pki.server, &["--tls-client-ca", &ca]);
    let url = format!("wss://localhost:{port}/");
    let cert = pki.client.cert_file.to_str().unwrap();
    let key = pki.client.key_file.to_str().unwrap();
    let (code, out, err) = connect(&["--ca", &ca, "--cert", cert, "--key", key], &url);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    let (code, _, err) = connect(&["--ca", &ca], &url);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn sighup_reloads_the_certificate_files() {
    let pki = TestPki::new();
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let cert = pki.dir().join("live.pem");
    let key = pki.dir().join("live.key");
    std::fs::copy(&pki.server.cert_file, &cert).unwrap();
    std::fs::copy(&pki.server.key_file, &key).unwrap();
    let mut command = Command::new(WSHARP);
    command.args(["echo", "--listen", "127.0.0.1:0", "--tls-cert"]);
    command.arg(&cert).arg("--tls-key").arg(&key);
    let (server, log) = spawn_with_log(command);
    let listening = wait_for_line(&log, "wss://127.0.0.1:");
    let port = listening.rsplit(':').next().unwrap().trim().to_owned();
    let url = format!("wss://localhost:{port}/");
    let (code, _, err) = connect(&["--ca", &ca], &url);
    assert_eq!(code, 0, "{err}");
    // New files in place, then SIGHUP: new connections get the certificate for another name.
    std::fs::copy(&pki.wrong_name.cert_file, &cert).unwrap();
    std::fs::copy(&pki.wrong_name.key_file, &key).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_line(&log, "SIGHUP: reloaded");
    let (code, _, err) = connect(&["--ca", &ca], &url);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("not valid for"), "{err}");
    // A broken file is refused and the certificate in use is kept.
    std::fs::write(&key, "not a key").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    wait_for_line(&log, "kept the old certificate");
    let (code, _, err) = connect(&["--ca", &ca], &url);
    assert!(err.contains("not valid for"), "{code} {err}");
}

#[test]
fn serve_with_a_self_signed_certificate() {
    let mut command = Command::new(WSHARP);
    command.args(["serve", "--listen", "127.0.0.1:0", "--tls-self-signed"]);
    let (_server, log) = spawn_with_log(command);
    let fingerprint = wait_for_line(&log, "SHA-256 fingerprint");
    let hex = fingerprint.rsplit(' ').next().unwrap();
    assert_eq!(hex.split(':').count(), 32, "{fingerprint}");
    let serving = wait_for_line(&log, "serving https://127.0.0.1:");
    assert!(serving.contains("wss://127.0.0.1:"), "{serving}");
    let port = common::port_after(&serving, "https://127.0.0.1:");
    std::thread::spawn(move || while log.recv().is_ok() {});
    let page = Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains("<title>wsharp</title>"));
    let (code, out, err) = connect(&["--insecure"], &format!("wss://127.0.0.1:{port}/Echo"));
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    // Unverified, it is refused.
    let (code, _, err) = connect(&[], &format!("wss://127.0.0.1:{port}/Echo"));
    assert_eq!(code, 11, "{err}");
}

/// The axum example over TLS: the application and its WebSocket route, served on wsharp's
/// `ServerTls`; `wsharp connect` talks to it over wss.
#[test]
fn the_axum_example_over_tls() {
    use std::io::BufRead;
    let pki = TestPki::new();
    // The example is built beside this test binary (target/PROFILE/examples).
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples/axum"))
        .unwrap();
    assert!(
        example.exists(),
        "{} is missing: build the workspace's examples (cargo build --all-targets)",
        example.display()
    );
    let mut child = Reap(
        Command::new(&example)
            .arg("127.0.0.1:0")
            .arg("--tls-cert")
            .arg(&pki.server.cert_file)
            .arg("--tls-key")
            .arg(&pki.server.key_file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    assert!(line.starts_with("listening on https://"), "{line}");
    let ca = pki.ca.cert_file.to_str().unwrap().to_owned();
    let (code, out, err) = connect(&["--ca", &ca], &format!("wss://localhost:{port}/ws"));
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    let page = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            &ca,
            &format!("https://localhost:{port}/"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&page.stdout), "wsharp inside axum");
}
