//! A real Redis on loopback for the cluster tests: Debian's `redis-server`, on a fresh port,
//! without persistence, in a directory of its own. It can be killed (SIGKILL) and started
//! again on the same port, and driven with `redis-cli`. A missing Redis fails the test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LIMIT, TempDir};

/// Debian's Redis server and client.
const SERVER: &str = "redis-server";
const CLI: &str = "redis-cli";

/// A `redis-server` owned by the test; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    starts: u32,
}

impl RedisServer {
    /// Starts a Redis on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` is not installed or not ready within [`LIMIT`].
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir: TempDir::new("redis"),
            starts: 0,
        };
        redis.launch();
        redis
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it with SIGKILL (its data is gone: nothing is persisted).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it accepts connections.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs `redis-cli` with `args` against it; returns its standard output, trimmed.
    ///
    /// # Panics
    /// When `redis-cli` cannot run or fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(CLI)
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {CLI} (Debian's redis-tools): {e}"));
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log: PathBuf = self.dir.path().join(format!("redis-{}.log", self.starts));
        let child = Command::new(SERVER)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(["--daemonize", "no", "--enable-debug-command", "local"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {SERVER} (Debian's redis-server package): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + LIMIT;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Ready to accept connections") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{SERVER} exited ({status}) at start: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "{SERVER} not ready within {LIMIT:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
