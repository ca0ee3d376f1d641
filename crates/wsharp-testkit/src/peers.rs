//! The real peers the tests run against, found where `scripts/test.sh` installs them. A peer
//! that is missing fails the test and says how to get it; nothing is skipped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv Python with `websockets` (`scripts/test.sh` creates `.venv`), or `WSHARP_PYTHON`.
///
/// # Panics
/// When there is none.
pub fn python() -> PathBuf {
    let path = std::env::var_os("WSHARP_PYTHON")
        .map_or_else(|| workspace_root().join(".venv/bin/python"), PathBuf::from);
    assert!(
        path.exists(),
        "no Python with `websockets` at {}: run scripts/test.sh (it creates .venv) or set WSHARP_PYTHON",
        path.display()
    );
    path
}

/// The `node` program (`WSHARP_NODE`, else `node` on the path).
pub fn node() -> PathBuf {
    std::env::var_os("WSHARP_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

/// `dir`, checked to hold Node's `ws` in `node_modules` (`scripts/test.sh` runs `npm ci`).
///
/// # Panics
/// When `ws` is not installed there.
pub fn node_package_dir(dir: PathBuf) -> PathBuf {
    assert!(
        dir.join("node_modules/ws").exists(),
        "no `ws` in {}: run scripts/test.sh (it runs `npm ci` there)",
        dir.display()
    );
    dir
}

/// Debian's Chromium (`WSHARP_CHROMIUM`, else `/usr/bin/chromium`).
///
/// # Panics
/// When it is not installed.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("WSHARP_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {}: install Debian's chromium (scripts/test.sh does) or set WSHARP_CHROMIUM",
        path.display()
    );
    path
}

/// Kills the child when dropped, so a failing test leaves no process behind.
#[derive(Debug)]
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, whose first line on standard output is the port it listens on; returns
/// the process and the port.
///
/// # Panics
/// When it does not start, or prints no port within 30 s.
pub fn spawn_reporting_port(mut command: Command, what: &str) -> (Reap, u16) {
    let mut child = Reap(
        command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
    );
    let stdout = child.0.stdout.take().expect("piped");
    let line =
        first_line_with(stdout, "").unwrap_or_else(|| panic!("{what} printed no port within 30 s"));
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} printed {line:?}, not a port"));
    (child, port)
}

/// Starts `command` and reads the port from the first line of its standard error that holds
/// `prefix` (a log line such as `listening on ws://127.0.0.1:PORT`). The whole log is read, so
/// the process never writes into a closed pipe.
///
/// # Panics
/// When it does not start, or logs no such line within 30 s.
pub fn spawn_logging_port(mut command: Command, prefix: &str) -> (Reap, u16) {
    let mut child = Reap(
        command
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}")),
    );
    let stderr = child.0.stderr.take().expect("piped");
    let Some(line) = first_line_with(stderr, prefix) else {
        panic!("{command:?} logged no address within 30 s");
    };
    let rest = line.split(prefix).nth(1).unwrap_or_default();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (child, digits.parse().expect("a port"))
}

/// Starts `command` and hands over its standard error line by line, for tests that follow a
/// server's log ([`wait_for_line`]).
///
/// # Panics
/// When it does not start.
pub fn spawn_with_log(mut command: Command) -> (Reap, std::sync::mpsc::Receiver<String>) {
    let mut child = Reap(
        command
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}")),
    );
    let stderr = child.0.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The next line from `log` that holds `needle`, waiting at most 30 s.
///
/// # Panics
/// When no such line comes in time.
pub fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within 30 s"),
        }
    }
}

/// The first line of `output` that holds `needle` (any line for an empty one), waiting at
/// most 30 s. The rest of the output is read on to its end, so that the process never writes
/// into a closed pipe.
fn first_line_with(output: impl std::io::Read + Send + 'static, needle: &str) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if line.contains(needle.as_str()) {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).ok()
}
