//! Helpers shared by the tests of the `wsharp` binary.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The venv Python with the `websockets` package (scripts/test.sh creates it).
pub fn python() -> PathBuf {
    let path = std::env::var_os("WSHARP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    assert!(
        path.exists(),
        "no Python with `websockets` at {}: run scripts/test.sh or set WSHARP_PYTHON",
        path.display()
    );
    path
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
    let mut server = Reap(
        Command::new(env!("CARGO_BIN_EXE_wsharp"))
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wsharp"),
    );
    let stderr = BufReader::new(server.0.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    // Reads the whole log, so the server never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split(prefix.as_str()).nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = tx.send(digits);
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(digits) => (server, digits.parse().unwrap()),
        Err(e) => panic!("wsharp {args:?} printed no address within 30 s ({e})"),
    }
}
