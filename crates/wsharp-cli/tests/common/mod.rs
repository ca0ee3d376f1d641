//! Helpers shared by the tests of the `wsharp` binary.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;

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
