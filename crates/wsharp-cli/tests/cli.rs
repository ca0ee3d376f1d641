//! End-to-end tests of the `wsharp` binary: `connect` in pipes against `wsharp echo` and the
//! Python `websockets` server, every way a connection can end and its exit code, `serve`
//! fetched with curl, `bench --json`, and an interactive session in a terminal under tmux.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::{Reap, echo_server, python, start};

const WSHARP: &str = env!("CARGO_BIN_EXE_wsharp");

/// Runs `wsharp ARGS` with `input` on standard input, within 60 s.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(WSHARP)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = finish(child);
    writer.join().unwrap();
    output
}

/// Waits for `child` and collects its output, failing the test after 60 s.
fn finish(child: std::process::Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("wsharp (pid {pid}) did not finish in 60 s");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit code and the one line on standard error of a failed run.
fn failure(output: &Output) -> (i32, String) {
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("wsharp: "), "{stderr}");
    (output.status.code().unwrap(), lines[0].to_owned())
}

#[test]
fn connect_in_a_pipe_against_wsharp_echo() {
    let (_server, port) = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = run(&["connect", &url], b"a\nb\n");
    assert_eq!(text(&out.stdout), "a\nb\n", "{}", text(&out.stderr));
    assert!(out.status.success());

    // Many lines, in order, with compression off and on; CRLF input; binary mode.
    let input: String = (0..2000)
        .map(|i| format!("line {i} {}\n", "é".repeat(i % 50)))
        .collect();
    for extra in [&[][..], &["--no-compression"]] {
        let args = [&["connect", url.as_str()][..], extra].concat();
        let out = run(&args, input.as_bytes());
        assert_eq!(text(&out.stdout), input);
        assert!(out.status.success());
    }
    let out = run(&["connect", &url], b"crlf\r\n");
    assert_eq!(text(&out.stdout), "crlf\n");
    let out = run(&["connect", "--binary", &url], b"\x00\x01\xff\n");
    assert_eq!(out.stdout, b"\x00\x01\xff\n");
    // Text mode refuses input that is not UTF-8, with a usage error.
    let out = run(&["connect", &url], b"\xff\n");
    let (code, line) = failure(&out);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("--binary"), "{line}");
}

#[test]
fn connect_shows_pings_pongs_and_the_close() {
    let (_server, port) = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut child = Command::new(WSHARP)
        .args(["connect", "--show-control", "--ping-interval", "0.1", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    // The input stays open until the second pong is shown; then its end closes the session.
    let stderr_lines = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        for line in stderr_lines.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|l| l == "# pong 2") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("no second pong within 20 s ({e}); standard error so far: {seen:?}"),
        }
    }
    drop(stdin);
    let out = finish(child);
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let stderr: String = seen.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(text(&out.stdout), "hello\n");
    assert!(stderr.contains("# ping 1\n"), "{stderr}");
    assert!(stderr.contains("# pong 1\n"), "{stderr}");
    assert!(stderr.contains("# pong 2\n"), "{stderr}");
    assert!(stderr.ends_with("# close 1000 \n"), "{stderr}");
    assert!(out.status.success());
}

/// The Python echo server of the library's interop tests; prints its port.
fn python_echo_server() -> (Reap, u16) {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wsharp/tests/it/py/echo_server.py");
    let mut command = Command::new(python());
    command.arg(script);
    wsharp_testkit::peers::spawn_reporting_port(command, "the Python echo server")
}

/// `wsharp connect` to `url` with `input` on standard input, which stays open until `lines` lines
/// came back (`None`: until the process exits). The server then has everything before our close:
/// Python websockets answers a close at once, so an echo still on its way would be dropped.
fn converse(
    url: &str,
    input: &[u8],
    lines: Option<usize>,
) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(WSHARP)
        .args(["connect", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    if let Some(n) = lines {
        while seen.len() < n {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        drop(stdin);
        let out = finish(child);
        reader.join().unwrap();
        seen.extend(rx.try_iter());
        return (out.status, seen.join("\n"), text(&out.stderr));
    }
    let out = finish(child);
    drop(stdin);
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    (out.status, seen.join("\n"), text(&out.stderr))
}

#[test]
fn connect_against_the_python_server_and_its_close_codes() {
    let (_server, port) = python_echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = run(&["connect", "-H", "X-Test: 1", "-p", "chat", &url], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (status, stdout, stderr) = converse(&url, b"a\nb\n", Some(2));
    assert_eq!(stdout, "a\nb", "{stderr}");
    assert!(status.success(), "{stderr}");

    // The server closes with 4001: exit code 3, and the line says so.
    let (status, stdout, stderr) = converse(&url, b"one\nclose 4001 custom reason\n", None);
    assert_eq!(stdout, "one");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("wsharp: ") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        stderr.contains("4001") && stderr.contains("custom reason"),
        "{stderr}"
    );
    // 1001 is a normal end.
    let (status, _, stderr) = converse(&url, b"close 1001 bye\n", None);
    assert!(status.success(), "{stderr}");
}

#[test]
fn linger_keeps_the_replies_a_python_server_would_drop_at_our_close() {
    let (_server, port) = python_echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    // Input ends at once; the close waits until nothing has come for 0.5 s, so every echo is
    // printed, in order, and the session still ends normally.
    let input: String = (1..=300).map(|i| format!("{i}\n")).collect();
    let started = Instant::now();
    let out = run(&["connect", "--linger", "0.5", &url], input.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), input);
    assert!(started.elapsed() >= Duration::from_millis(500));
    // A negative linger is a usage error.
    let out = run(&["connect", "--linger=-1", &url], b"");
    let (code, line) = failure(&out);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("--linger"), "{line}");
}

/// A server that reads the upgrade request and runs `answer` on the socket.
fn raw_server(answer: impl FnOnce(TcpStream, String) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read_exact(&mut byte).is_err() {
                return;
            }
            head.push(byte[0]);
        }
        answer(tcp, String::from_utf8(head).unwrap());
    });
    addr
}

/// A raw server that accepts the upgrade and then runs `then`.
fn upgrading_server(then: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    raw_server(|mut tcp, head| {
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = wsharp::proto::handshake::accept_key(key.as_bytes());
        write!(
            tcp,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        then(tcp);
    })
}

/// `wsharp connect` to `addr` with its input held open, so that it never closes first.
fn connect_with_open_input(addr: SocketAddr) -> Output {
    connect_with_open_input_and(addr, &[])
}

/// As [`connect_with_open_input`], with `options` before the URL.
fn connect_with_open_input_and(addr: SocketAddr, options: &[&str]) -> Output {
    let mut child = Command::new(WSHARP)
        .arg("connect")
        .args(options)
        .arg(format!("ws://{addr}/"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let out = finish(child);
    drop(stdin);
    out
}

#[test]
fn every_ending_has_its_exit_code_and_one_line() {
    // Unreachable: a port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, line) = failure(&run(&["connect", &format!("ws://127.0.0.1:{port}/")], b""));
    assert_eq!(code, 10, "{line}");
    assert!(line.contains("cannot connect"), "{line}");
    let (code, line) = failure(&run(&["connect", "ws://no-such-host.invalid/"], b""));
    assert_eq!(code, 10, "{line}");

    // Invalid URL and invalid header: usage errors.
    let (code, line) = failure(&run(&["connect", "http://127.0.0.1/"], b""));
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("invalid URL"), "{line}");
    let (code, line) = failure(&run(&["connect", "-H", "no colon", "ws://127.0.0.1/"], b""));
    assert_eq!(code, 2, "{line}");

    // 401: authentication required.
    let addr = raw_server(|mut tcp, _| {
        let _ = tcp.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let (code, line) = failure(&run(&["connect", &format!("ws://{addr}/")], b""));
    assert_eq!(code, 12, "{line}");
    assert!(line.contains("401"), "{line}");

    // A refused upgrade: `wsharp serve` answers 404 for a path without a service.
    let (_serve, port) = start(&["serve", "--listen", "127.0.0.1:0"], "http://127.0.0.1:");
    let (code, line) = failure(&run(
        &["connect", &format!("ws://127.0.0.1:{port}/Nope")],
        b"",
    ));
    assert_eq!(code, 13, "{line}");
    assert!(line.contains("404"), "{line}");

    // A wrong Sec-WebSocket-Accept is a refused upgrade too.
    let addr = raw_server(|mut tcp, _| {
        let _ = tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
    });
    let (code, line) = failure(&run(&["connect", &format!("ws://{addr}/")], b""));
    assert_eq!(code, 13, "{line}");

    // A server that never answers the upgrade: handshake timeout. It holds the connection
    // until the client has given up.
    let (gave_up, wait) = std::sync::mpsc::channel::<()>();
    let addr = raw_server(move |tcp, _| {
        let _ = wait.recv_timeout(Duration::from_secs(60));
        drop(tcp);
    });
    let started = Instant::now();
    let (code, line) = failure(&run(
        &[
            "connect",
            "--connect-timeout",
            "0.3",
            &format!("ws://{addr}/"),
        ],
        b"",
    ));
    assert_eq!(code, 14, "{line}");
    assert!(started.elapsed() < Duration::from_secs(4));
    drop(gave_up);

    // The server breaks the protocol (a masked frame): exit 5, and it got our 1002 first.
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = upgrading_server(move |mut tcp| {
        tcp.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
            .unwrap();
        let mut got = Vec::new();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = tcp.read_to_end(&mut got);
        tx.send(got).unwrap();
    });
    let out = connect_with_open_input(addr);
    let got = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let (code, line) = failure(&out);
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("1002"), "{line}");
    assert_eq!(got[0], 0x88, "a close frame: {got:?}");
    assert_eq!(u16::from_be_bytes([got[6] ^ got[2], got[7] ^ got[3]]), 1002);

    // The server vanishes without a close: connection lost. It vanishes once the client has
    // shown it is in the open state, by answering a ping.
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = upgrading_server(move |mut tcp| {
        tcp.write_all(&[0x89, 4, b'l', b'i', b'v', b'e']).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The pong: a masked frame with the same 4-byte payload.
        let mut pong = [0u8; 10];
        let answered = tcp.read_exact(&mut pong).is_ok();
        drop(tcp);
        tx.send((answered, pong)).unwrap();
    });
    let out = connect_with_open_input(addr);
    let (answered, pong) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(answered, "no pong: {pong:?}");
    assert_eq!(pong[..2], [0x8a, 0x84], "a pong of 4 bytes: {pong:?}");
    let payload: Vec<u8> = (0..4).map(|i| pong[6 + i] ^ pong[2 + i]).collect();
    assert_eq!(payload, b"live");
    let (code, line) = failure(&out);
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("connection lost"), "{line}");

    // With --keepalive, a server that goes silent (it holds the connection open and reads
    // nothing) is found dead: connection lost, within two intervals.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let addr = upgrading_server(move |tcp| {
        let _ = released.recv_timeout(Duration::from_secs(20));
        drop(tcp);
    });
    let started = Instant::now();
    let out = connect_with_open_input_and(addr, &["--keepalive", "0.2"]);
    let took = started.elapsed();
    release.send(()).unwrap();
    let (code, line) = failure(&out);
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("keepalive"), "{line}");
    assert!(took < Duration::from_secs(3), "ended after {took:?}");
}

#[test]
fn serve_is_fetched_with_curl() {
    let root = std::env::temp_dir().join(format!("wsharp-cli-root-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from the root\n").unwrap();
    let (_serve, port) = start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().unwrap(),
        ],
        "http://127.0.0.1:",
    );
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl must be installed (scripts/test.sh installs it)");
        assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let base = format!("http://127.0.0.1:{port}");
    let page = curl(&[&format!("{base}/")]);
    assert!(page.contains("<html") && page.contains("/Echo"), "{page}");
    assert_eq!(
        curl(&[&format!("{base}/hello.txt")]),
        "hello from the root\n"
    );
    let head = curl(&["-I", &format!("{base}/hello.txt")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let missing = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/missing"),
    ]);
    assert_eq!(missing, "404");
    // curl speaks WebSocket too: a refused upgrade of a bad request is a 4xx, not a hang.
    let bad = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Connection: Upgrade",
        &format!("{base}/Echo"),
    ]);
    assert!(bad.starts_with('4'), "{bad}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bench_against_echo_reports_json() {
    let (server, port) = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let pid = server.0.id().to_string();
    let out = run(
        &[
            "bench",
            "--json",
            "--duration",
            "1",
            "-c",
            "4",
            "-s",
            "64",
            "-d",
            "8",
            "--server-pid",
            &pid,
            &url,
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(n("messages") > 100.0, "{v}");
    assert_eq!(n("errors"), 0.0);
    assert_eq!((n("connections"), n("size"), n("depth")), (4.0, 64.0, 8.0));
    assert!(n("msgs_per_sec") > 0.0 && n("mb_per_sec") > 0.0);
    assert!(n("p50_us") <= n("p90_us") && n("p90_us") <= n("p99_us") && n("p99_us") <= n("max_us"));
    assert!((0.9..2.0).contains(&n("seconds")), "{v}");
    assert!(
        n("server_cpu_seconds") > 0.0 && n("server_cpu_us_per_msg") > 0.0,
        "{v}"
    );
    assert!(n("client_cpu_us_per_msg") > 0.0, "{v}");
    // Pre-built frames by default.
    assert_eq!(v["mask_each"].as_bool(), Some(false));

    // Exact counts with pre-built text frames and through the client's send path.
    for (mode, mask_each) in [("--text", false), ("--mask-each", true)] {
        let out = run(&["bench", "--json", mode, "--count", "3000", &url], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["messages"].as_u64(), Some(3000), "{v}");
        assert_eq!(v["mask_each"].as_bool(), Some(mask_each));
    }

    // A count: exactly that many, with compression and text.
    let out = run(
        &[
            "bench",
            "--json",
            "--count",
            "5000",
            "--compression",
            "--text",
            &url,
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"].as_u64(), Some(5000), "{v}");
    assert_eq!(v["compression"].as_bool(), Some(true));

    // The table names every figure.
    let out = run(&["bench", "--duration", "0.5", &url], b"");
    let table = text(&out.stdout);
    for figure in ["messages/s", "MB/s", "p50", "p90", "p99", "max", "errors"] {
        assert!(table.contains(figure), "{figure}: {table}");
    }
    // Nothing listening: the connect failure's code.
    let (code, _) = failure(&run(
        &["bench", "--duration", "0.5", "ws://127.0.0.1:1/"],
        b"",
    ));
    assert_eq!(code, 10);
}

/// tmux on a private socket, ended when dropped.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/test.sh installs it)")
    }

    fn pane(&self) -> String {
        text(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout)
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pane = self.pane();
            if pane.contains(needle) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the pane:\n{pane}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn an_interactive_session_in_a_terminal() {
    let (_server, port) = echo_server();
    let tmux = Tmux(format!("wsharp-test-{}", std::process::id()));
    let shell =
        format!("{WSHARP} connect --show-control ws://127.0.0.1:{port}/; echo exit=$?; sleep 60");
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "30",
        &shell,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmux.cmd(&["send-keys", "-t", "t", "hello terminal", "Enter"]);
    tmux.wait_for("< hello terminal");
    tmux.cmd(&["send-keys", "-t", "t", "second", "Enter"]);
    tmux.wait_for("< second");
    // Ctrl-D ends the input: the close handshake, then a normal exit.
    tmux.cmd(&["send-keys", "-t", "t", "C-d"]);
    let pane = tmux.wait_for("exit=");
    assert!(pane.contains("# close 1000"), "{pane}");
    assert!(pane.contains("exit=0"), "{pane}");
}

#[test]
fn every_command_has_help_with_examples() {
    for command in ["connect", "serve", "echo", "bench"] {
        let out = run(&[command, "--help"], b"");
        let help = text(&out.stdout);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        assert!(help.contains("Example"), "{command}: {help}");
    }
    let out = run(&["connect", "--help"], b"");
    assert!(text(&out.stdout).contains("Exit codes:"));
    // A bad flag is a usage error with clap's message, not a panic.
    let out = run(&["connect", "--no-such-flag", "ws://x/"], b"");
    assert_eq!(out.status.code(), Some(2));
}
