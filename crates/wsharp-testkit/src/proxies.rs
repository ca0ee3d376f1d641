//! Real proxies on loopback for the proxy tests: Debian's Squid (HTTP `CONNECT`, with no
//! authentication, Basic, Digest or both) and Debian's microsocks (SOCKS5, with or without a
//! user name and password). A proxy that is missing fails the test and says how to get it.
//!
//! Each instance gets a fresh port (bound on 127.0.0.1:0 and released) and, for Squid, its own
//! directory and service name, so tests can run in parallel. None uses port 3128.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::peers::Reap;
use crate::{LIMIT, TempDir};

/// Debian's Squid.
const SQUID: &str = "/usr/sbin/squid";
/// Squid's helper that checks Basic credentials against an htpasswd file.
const BASIC_HELPER: &str = "/usr/lib/squid/basic_ncsa_auth";
/// Squid's helper that checks Digest credentials against a `user:password` file.
const DIGEST_HELPER: &str = "/usr/lib/squid/digest_file_auth";
/// Debian's microsocks.
const MICROSOCKS: &str = "/usr/bin/microsocks";

/// The realm of Squid's Basic challenge.
pub const BASIC_REALM: &str = "wsharp-basic";
/// The realm of Squid's Digest challenge.
pub const DIGEST_REALM: &str = "wsharp-digest";

/// How [`Squid`] authenticates its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SquidAuth {
    /// Anyone may connect.
    None,
    /// Basic only, realm [`BASIC_REALM`].
    Basic {
        /// The one user name accepted.
        user: String,
        /// Its password.
        password: String,
    },
    /// Digest only (MD5, `qop="auth"`), realm [`DIGEST_REALM`].
    Digest {
        /// The one user name accepted.
        user: String,
        /// Its password.
        password: String,
    },
    /// Both schemes for the same user: a 407 carries two `Proxy-Authenticate` headers, Basic
    /// first, then Digest.
    Both {
        /// The one user name accepted.
        user: String,
        /// Its password.
        password: String,
    },
}

/// A Squid listening on 127.0.0.1 that tunnels `CONNECT` to any host and port, run as
/// `nobody` when the tests run as root. Stopped with SIGTERM when dropped, which takes Squid
/// one to two seconds whatever its `shutdown_lifetime`.
#[derive(Debug)]
pub struct Squid {
    child: Child,
    port: u16,
    /// The `-n` service name, which also names Squid's shared-memory segments.
    name: String,
    dir: TempDir,
}

impl Squid {
    /// Starts a Squid that authenticates with `auth`, and waits until it accepts connections.
    ///
    /// # Panics
    /// When Squid or its helpers are not installed, or it is not ready within [`LIMIT`].
    pub fn start(auth: SquidAuth) -> Self {
        Self::start_with_extra(auth, "")
    }

    /// As [`start`](Self::start), with `extra` (whole configuration lines, such as
    /// `auth_param digest nonce_max_count 2`) placed after the `auth_param` lines and before
    /// the `http_access` rules, so an `http_access` line in it is checked first.
    ///
    /// # Panics
    /// When Squid or its helpers are not installed, or it is not ready within [`LIMIT`].
    pub fn start_with_extra(auth: SquidAuth, extra: &str) -> Self {
        installed(SQUID, "squid");
        if matches!(auth, SquidAuth::Basic { .. } | SquidAuth::Both { .. }) {
            installed(BASIC_HELPER, "squid");
        }
        if matches!(auth, SquidAuth::Digest { .. } | SquidAuth::Both { .. }) {
            installed(DIGEST_HELPER, "squid");
        }
        retrying("Squid", || Self::launch(&auth, extra))
    }

    /// Starts Squid on a fresh port, in a fresh directory.
    fn launch(auth: &SquidAuth, extra: &str) -> Result<Self, String> {
        let dir = TempDir::new("wsharp-squid");
        let port = free_port();
        let mut config = format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename {d}/squid.pid\n\
             cache_log {d}/cache.log\n\
             access_log stdio:{d}/access.log\n\
             cache_store_log none\n\
             cache deny all\n\
             cache_mem 8 MB\n\
             coredump_dir {d}\n\
             netdb_filename none\n\
             pinger_enable off\n\
             dns_nameservers 127.0.0.1\n\
             shutdown_lifetime 0 seconds\n\
             visible_hostname wsharp-test\n",
            d = dir.path().display()
        );
        let (basic, digest) = match auth {
            SquidAuth::None => (None, None),
            SquidAuth::Basic { user, password } => (Some((user, password)), None),
            SquidAuth::Digest { user, password } => (None, Some((user, password))),
            SquidAuth::Both { user, password } => (Some((user, password)), Some((user, password))),
        };
        if let Some((user, password)) = basic {
            let file = dir.path().join("basic.passwd");
            write(&file, &format!("{user}:{}\n", apr1(password)));
            config += &format!(
                "auth_param basic program {BASIC_HELPER} {}\n\
                 auth_param basic realm {BASIC_REALM}\n\
                 auth_param basic children 2 startup=1 idle=1\n",
                file.display()
            );
        }
        if let Some((user, password)) = digest {
            let file = dir.path().join("digest.passwd");
            write(&file, &format!("{user}:{password}\n"));
            config += &format!(
                "auth_param digest program {DIGEST_HELPER} {}\n\
                 auth_param digest realm {DIGEST_REALM}\n\
                 auth_param digest children 2 startup=1 idle=1\n",
                file.display()
            );
        }
        config += extra;
        config += "\n";
        config += if *auth == SquidAuth::None {
            "http_access allow all\n"
        } else {
            "acl authed proxy_auth REQUIRED\nhttp_access allow authed\nhttp_access deny all\n"
        };
        let conf = dir.path().join("squid.conf");
        write(&conf, &config);

        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "wsharp{}n{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = File::create(dir.path().join("squid.out")).expect("squid.out");
        let mut command = Command::new(SQUID);
        command
            .args(["-n", &name, "-N", "-d", "1", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("squid.out"))
            .stderr(out);
        if let Some((uid, gid)) = unprivileged(dir.path()) {
            command.uid(uid).gid(gid);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SQUID}: {e}"));
        let mut squid = Self {
            child,
            port,
            name,
            dir,
        };
        squid.wait_until_ready()?;
        Ok(squid)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its `access.log` so far: one line per finished request, such as
    /// `… TCP_TUNNEL/200 3087 CONNECT 127.0.0.1:18765 alice HIER_DIRECT/127.0.0.1 -`. A tunnel
    /// is logged once it closes; see [`wait_for_access`](Self::wait_for_access).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// The first line of `access.log` that holds `needle`, waiting at most [`LIMIT`] for it.
    ///
    /// # Panics
    /// When no such line comes in time.
    pub fn wait_for_access(&self, needle: &str) -> String {
        poll(|| {
            self.access_log()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            panic!(
                "Squid logged no access with {needle:?} within {LIMIT:?}; access.log:\n{}",
                self.access_log()
            )
        })
    }

    /// Polls `cache.log` for the line that says the port is open.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let ready = format!("local=127.0.0.1:{} ", self.port);
        let dir = self.dir.path().to_owned();
        let log = |file| fs::read_to_string(dir.join(file)).unwrap_or_default();
        let child = &mut self.child;
        let started = poll(|| {
            if log("cache.log")
                .lines()
                .any(|l| l.contains("Accepting HTTP Socket connections") && l.contains(&ready))
            {
                Some(true)
            } else {
                matches!(child.try_wait(), Ok(Some(_))).then_some(false)
            }
        });
        match started {
            Some(true) => Ok(()),
            _ => Err(format!(
                "Squid did not start on 127.0.0.1:{} within {LIMIT:?} ({}); cache.log:\n{}\noutput:\n{}",
                self.port,
                if started.is_some() {
                    "it exited"
                } else {
                    "timed out"
                },
                log("cache.log"),
                log("squid.out")
            )),
        }
    }
}

impl Drop for Squid {
    /// SIGTERM, so that Squid removes its shared-memory segments; SIGKILL if it is still
    /// running after 10 s. Leftover segments are removed either way.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("sh")
                .args(["-c", "kill -TERM \"$0\""])
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() >= deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let prefix = format!("{}-", self.name);
        for entry in fs::read_dir("/dev/shm").into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A microsocks SOCKS5 server listening on 127.0.0.1; it resolves host names itself (ATYP 3),
/// as `socks5h://` asks. Killed when dropped.
#[derive(Debug)]
pub struct Socks5 {
    _child: Reap,
    port: u16,
    _dir: TempDir,
}

impl Socks5 {
    /// Starts a server that requires the user name and password `auth` (method 2 only), or no
    /// authentication (method 0) for `None`, and waits until it accepts connections.
    ///
    /// # Panics
    /// When microsocks is not installed, or it is not ready within [`LIMIT`].
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        installed(MICROSOCKS, "microsocks");
        retrying("microsocks", || Self::launch(auth))
    }

    /// Starts microsocks on a fresh port.
    fn launch(auth: Option<(&str, &str)>) -> Result<Self, String> {
        let dir = TempDir::new("wsharp-socks5");
        let port = free_port();
        let out = File::create(dir.path().join("microsocks.out")).expect("microsocks.out");
        let mut command = Command::new(MICROSOCKS);
        command
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("microsocks.out"))
            .stderr(out);
        if let Some((user, password)) = auth {
            command.args(["-u", user, "-P", password]);
        }
        let mut child = Reap(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {MICROSOCKS}: {e}")),
        );
        let ready = poll(|| {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                Some(true)
            } else {
                matches!(child.0.try_wait(), Ok(Some(_))).then_some(false)
            }
        });
        if ready != Some(true) {
            return Err(format!(
                "microsocks did not start on 127.0.0.1:{port} within {LIMIT:?} ({}); output:\n{}",
                if ready.is_some() {
                    "it exited"
                } else {
                    "timed out"
                },
                fs::read_to_string(dir.path().join("microsocks.out")).unwrap_or_default()
            ));
        }
        Ok(Self {
            _child: child,
            port,
            _dir: dir,
        })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address, 127.0.0.1:PORT.
    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }
}

/// Runs `launch` until it starts a proxy: again, on a fresh port, when another process took
/// the port chosen (at most three times); a failure of any other kind fails the test at once.
fn retrying<T>(what: &str, mut launch: impl FnMut() -> Result<T, String>) -> T {
    let mut failure = String::new();
    for _ in 0..3 {
        match launch() {
            Ok(proxy) => return proxy,
            Err(e) if e.contains("Address already in use") => failure = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{what} found no free port in three attempts; the last: {failure}")
}

/// Fails the test when `path` does not exist, naming the Debian package that has it.
fn installed(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "no {path}: install Debian's {package} (scripts/test.sh does)"
    );
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Writes `text` to `path`.
fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// `password`'s Apache MD5 hash (`$apr1$…`), from `openssl passwd`.
fn apr1(password: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["passwd", "-apr1", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl (install Debian's openssl): {e}"));
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .expect("openssl's stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("openssl passwd");
    assert!(out.status.success(), "openssl passwd failed");
    String::from_utf8(out.stdout)
        .expect("an ASCII hash")
        .trim()
        .to_owned()
}

/// When the tests run as root: hands `dir` and its files to `nobody` and returns its user and
/// group ids, for Squid to run as (as root it would switch to `proxy`, which cannot write to
/// `dir`).
fn unprivileged(dir: &Path) -> Option<(u32, u32)> {
    if fs::metadata(dir).expect("the directory").uid() != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, gid) = passwd
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            (fields.first() == Some(&"nobody") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or((65534, 65534));
    for entry in fs::read_dir(dir).expect("the directory").flatten() {
        std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid)).expect("chown");
    }
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown");
    Some((uid, gid))
}

/// Calls `f` every 20 ms until it returns something, for at most [`LIMIT`].
fn poll<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
