//! The `wsharp` binary with HTTP authentication: `serve --auth` protecting the page, the files
//! and the services (curl, a client we did not write, and our `connect --user`), logging who
//! logged in; `connect --user`/`--auth`/`--cookie`, exit 12 with the challenge's scheme and
//! realm when authentication fails.

mod common;

use std::process::Command;

use common::{connect, connect_with_env, python};
use wsharp_testkit::TempDir;
use wsharp_testkit::peers::{spawn_reporting_port, spawn_with_log, wait_for_line};

/// `wsharp serve --auth SCHEME` with one user, nobita:sekret; the server, its port, its log.
fn protected_serve(
    scheme: &str,
    dir: &TempDir,
) -> (common::Reap, u16, std::sync::mpsc::Receiver<String>) {
    let users = dir.path().join("users");
    std::fs::write(&users, "# test users\nnobita:sekret\n").unwrap();
    std::fs::write(dir.path().join("file.txt"), "the file\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsharp"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth",
            scheme,
            "--realm",
            "test realm",
        ])
        .arg("--users")
        .arg(&users)
        .arg("--root")
        .arg(dir.path());
    let (server, log) = spawn_with_log(command);
    let line = wait_for_line(&log, "serving http://127.0.0.1:");
    let port = common::port_after(&line, "serving http://127.0.0.1:")
        .parse()
        .unwrap();
    (server, port, log)
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or_default();
    (code.to_owned(), body.to_owned())
}

#[test]
fn serve_with_digest_protects_page_files_and_services() {
    let dir = TempDir::new("wsharp-cli-auth");
    let (_server, port, log) = protected_serve("digest", &dir);
    let base = format!("http://127.0.0.1:{port}");
    let (code, page) = curl(&["--digest", "-u", "nobita:sekret", &format!("{base}/")]);
    assert_eq!(code, "200");
    assert!(page.contains("<html"), "{page}");
    let line = wait_for_line(&log, "logged in");
    assert!(line.contains("nobita"), "{line}");
    let (code, file) = curl(&[
        "--digest",
        "-u",
        "nobita:sekret",
        &format!("{base}/file.txt"),
    ]);
    assert_eq!((code.as_str(), file.as_str()), ("200", "the file\n"));
    assert_eq!(curl(&[&format!("{base}/file.txt")]).0, "401");
    assert_eq!(
        curl(&["--digest", "-u", "nobita:nope", &format!("{base}/")]).0,
        "401"
    );

    let echo = format!("ws://127.0.0.1:{port}/Echo");
    let (code, out, err) = connect(&["--user", "nobita:sekret"], &echo);
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    let (code, out, err) = connect_with_env(
        &["--user", "nobita"],
        &echo,
        &[("WSHARP_PASSWORD", "sekret")],
    );
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    let (code, _, err) = connect(&["--user", "nobita:nope"], &echo);
    assert_eq!(code, 12, "{err}");
    assert!(
        err.contains("credentials refused") && err.contains(r#"Digest realm="test realm""#),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = connect(&[], &echo);
    assert_eq!(code, 12, "{err}");
    assert!(err.contains("none given"), "{err}");
    let (code, _, err) = connect(&["--user", "nobita:sekret", "--auth", "basic"], &echo);
    assert_eq!(code, 12, "{err}");
    // Without a terminal or WSHARP_PASSWORD there is no password to use.
    let (code, _, err) = connect(&["--user", "nobita"], &echo);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn serve_with_basic_and_connect_auth_basic() {
    let dir = TempDir::new("wsharp-cli-auth");
    let (_server, port, _log) = protected_serve("basic", &dir);
    let (code, _) = curl(&[
        "--basic",
        "-u",
        "nobita:sekret",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(code, "200");
    let echo = format!("ws://127.0.0.1:{port}/Echo");
    for how in ["any", "basic"] {
        let (code, out, err) = connect(&["--user", "nobita:sekret", "--auth", how], &echo);
        assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{how}: {err}");
    }
    let (code, _, err) = connect(&["--user", "nobita:sekret", "--auth", "digest"], &echo);
    assert_eq!(code, 12, "{err}");
    assert!(err.contains(r#"Basic realm="test realm""#), "{err}");
}

#[test]
fn connect_sends_cookies() {
    let mut command = Command::new(python());
    command.arg(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../wsharp/tests/it/py/cookie_server.py"),
    );
    let (_server, port) = spawn_reporting_port(command, "the Python cookie server");
    let (code, out, err) = connect(
        &[
            "--cookie",
            "lang=ja",
            "--cookie",
            "theme=dark",
            "--linger",
            "0.5",
        ],
        &format!("ws://127.0.0.1:{port}/"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().next(),
        Some("cookie lang=ja; theme=dark"),
        "{out}"
    );
    let (code, _, err) = connect(
        &["--cookie", "no-equals"],
        &format!("ws://127.0.0.1:{port}/"),
    );
    assert_eq!(code, 2, "{err}");
}
