//! Helpers shared by the tests of the `wsharp` binary.
#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Stdio};

pub use wsharp_testkit::peers::Reap;
#[allow(unused_imports, reason = "each test binary uses some of these")]
pub use wsharp_testkit::peers::{chromium, python};

/// The port in a log line, right after `prefix` (`serving https://127.0.0.1:PORT/ ...`).
pub fn port_after(line: &str, prefix: &str) -> String {
    line.split(prefix)
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// Starts `wsharp echo` on a free port; returns it and the port it printed in its log.
pub fn echo_server() -> (Reap, u16) {
    start(&["echo", "--listen", "127.0.0.1:0"], "ws://127.0.0.1:")
}

/// Starts `wsharp ARGS` and reads the port from the first log line holding `prefix`; fails the
/// test if none comes within 30 s.
pub fn start(args: &[&str], prefix: &str) -> (Reap, u16) {
    start_with_env(args, prefix, &[])
}

/// As [`start`], with these environment variables set for the server.
pub fn start_with_env(args: &[&str], prefix: &str, env: &[(&str, &str)]) -> (Reap, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsharp"));
    command.args(args).envs(env.iter().copied());
    wsharp_testkit::peers::spawn_logging_port(command, prefix)
}

/// `wsharp connect ARGS URL` with two lines on standard input; exit code, output, errors.
pub fn connect(args: &[&str], url: &str) -> (i32, String, String) {
    connect_with_env(args, url, &[])
}

/// As [`connect`], keeping standard input open until `lines` lines came back (a server that
/// answers a close at once, as Python `websockets` does, drops replies still on their way).
pub fn connect_until(args: &[&str], url: &str, lines: Option<usize>) -> (i32, String, String) {
    run_connect(args, url, lines, &[])
}

/// As [`connect`], with these environment variables set.
pub fn connect_with_env(args: &[&str], url: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    run_connect(args, url, None, env)
}

fn run_connect(
    args: &[&str],
    url: &str,
    lines: Option<usize>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    use std::io::{BufRead, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsharp"))
        .arg("connect")
        .args(args)
        .arg(url)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A connection that fails may end the process before it reads its input.
    let _ = stdin.write_all(b"one\ntwo\n");
    let mut out = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    if let Some(n) = lines {
        for _ in 0..n {
            if stdout.read_line(&mut out).unwrap_or(0) == 0 {
                break;
            }
        }
    }
    drop(stdin);
    stdout.read_to_string(&mut out).unwrap();
    let done = child.wait_with_output().unwrap();
    (
        done.status.code().unwrap_or(-1),
        out,
        String::from_utf8_lossy(&done.stderr).into_owned(),
    )
}

/// `wsharp echo` over TLS with `pair`, plus `extra` options; returns it and its port.
pub fn tls_echo(pair: &wsharp_testkit::certs::Pair, extra: &[&str]) -> (Reap, u16) {
    let cert = pair.cert_file.to_str().unwrap();
    let key = pair.key_file.to_str().unwrap();
    let mut args = vec![
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    args.extend_from_slice(extra);
    start(&args, "wss://127.0.0.1:")
}
