//! The `wsharp` binary against headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol): the browser offers permessage-deflate and round-trips text and binary messages.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{chromium, echo_server, python, start};

#[test]
fn chromium_round_trips_compressed_messages() {
    let (_server, port) = echo_server();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py");
    let page = std::fs::read_to_string(dir.join("deflate_page.js")).unwrap();
    let script =
        std::env::temp_dir().join(format!("wsharp-deflate-page-{}.js", std::process::id()));
    std::fs::write(
        &script,
        format!("globalThis.WSHARP_URL = 'ws://127.0.0.1:{port}/';\n{page}"),
    )
    .unwrap();
    let out = Command::new(python())
        .arg(dir.join("chromium.py"))
        .arg(chromium())
        .arg(&script)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    assert!(
        line.contains(r#""extensions":"permessage-deflate"#),
        "compression not negotiated: {line}"
    );
    assert!(line.contains(r#""text":[true,true,true,true]"#), "{line}");
    assert!(line.contains(r#""binary":[true,true,true,true]"#), "{line}");
    assert!(line.contains(r#""close":1000"#), "{line}");
}

#[test]
fn the_page_of_wsharp_serve_in_chromium() {
    let (server, port) = start(&["serve", "--listen", "127.0.0.1:0"], "http://127.0.0.1:");
    page_test(&server, &format!("http://127.0.0.1:{port}/"), None);
}

/// The same page over https, its WebSockets over wss, with `wsharp serve --tls-self-signed`:
/// Chromium trusts that one certificate for this run only, by its public key's hash.
#[test]
fn the_page_of_wsharp_serve_over_https_in_chromium() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsharp"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--tls-self-signed"]);
    let (server, log) = wsharp_testkit::peers::spawn_with_log(command);
    let spki_line = wsharp_testkit::peers::wait_for_line(&log, "SPKI SHA-256");
    let spki = spki_line.rsplit(' ').next().unwrap().trim().to_owned();
    let serving = wsharp_testkit::peers::wait_for_line(&log, "serving https://127.0.0.1:");
    let port = common::port_after(&serving, "https://127.0.0.1:");
    // Keep reading the log so the server never writes into a full pipe.
    std::thread::spawn(move || while log.recv().is_ok() {});
    page_test(&server, &format!("https://127.0.0.1:{port}/"), Some(&spki));
}

/// Runs the page test against `url`, served by `server`.
fn page_test(server: &common::Reap, url: &str, spki: Option<&str>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py");
    let mut command = Command::new(python());
    command
        .arg(dir.join("page_test.py"))
        .arg(chromium())
        .arg(url)
        .arg(server.0.id().to_string());
    if let Some(spki) = spki {
        command.arg(spki);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "page test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    for expected in [
        r#""title": "wsharp""#,
        "CONNECTED (extensions: permessage-deflate",
        "SENT: WebSocket rocks",
        "RESPONSE: WebSocket rocks",
        "DISCONNECTED 1000",
        r#""echo": "héllo from the page""#,
        "received: héllo from the page",
        r#""binary": true"#,
        "ok 70000 bytes",
        "open (permessage-deflate",
        "alice has logged in!",
        "bob: hello alice",
        r#""close_echo": "closed 1001"#,
        r#""close_chat": "closed 1001"#,
    ] {
        assert!(line.contains(expected), "missing {expected:?} in {line}");
    }
}

/// `wsharp serve` hands the page a cookie on its first WebSocket upgrade; Chromium keeps it
/// and sends it on the next upgrade, where the server logs the returning visitor.
#[test]
fn the_page_keeps_the_visitor_cookie_in_chromium() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsharp"));
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let (_server, log) = wsharp_testkit::peers::spawn_with_log(command);
    let serving = wsharp_testkit::peers::wait_for_line(&log, "serving http://127.0.0.1:");
    let port = common::port_after(&serving, "http://127.0.0.1:");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py");
    let out = Command::new(python())
        .arg(dir.join("cookie_page.py"))
        .arg(chromium())
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cookie page failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let id = line
        .split("wsharp-visitor=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_hexdigit)
                .collect::<String>()
        })
        .unwrap_or_else(|| panic!("the page got no cookie: {line}"));
    assert_eq!(id.len(), 16, "{line}");
    let returning = wsharp_testkit::peers::wait_for_line(&log, "a returning visitor");
    assert!(returning.contains(&id), "{returning} should name {id}");
}
