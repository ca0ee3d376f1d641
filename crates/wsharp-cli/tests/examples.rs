//! websocket-sharp's three examples, rebuilt in `examples/`, each run against a peer:
//! Example2 (`server`) with the Python `websockets` client and our client asking for its ID,
//! Example (`client`) reading lines from its input against Example2, and Example3
//! (`http_server`) with curl and the Python client.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Reap, python};

/// The example `name`, built beside this test binary (target/PROFILE/examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: build the workspace's examples (cargo build --all-targets)",
        path.display()
    );
    path
}

/// Starts an example server on a free port; returns it and the address from its first line,
/// the text between `prefix` and the next `/` or `:` past the port.
fn start(name: &str, args: &[&str], prefix: &str) -> (Reap, String) {
    let mut child = Reap(
        Command::new(example(name))
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let rest = line
        .split(prefix)
        .nth(1)
        .unwrap_or_else(|| panic!("{name} printed {line:?}"));
    let port: String = rest
        .trim_start_matches("127.0.0.1:")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (child, format!("127.0.0.1:{port}"))
}

/// The Python `websockets` client of the library's tests: connects, sends "hello", prints the
/// first message.
fn python_client(url: &str) -> String {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wsharp/tests/it/py/auth_client.py");
    let out = Command::new(python())
        .arg(script)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn example2_serves_echo_and_chats_and_answers_request_for_id() {
    let (_server, addr) = start("server", &[], "ws://");
    assert_eq!(python_client(&format!("ws://{addr}/Echo")), "hello");
    assert_eq!(
        python_client(&format!("ws://{addr}/Chat?name=py")),
        "py has logged in!"
    );
    assert_eq!(
        python_client(&format!("ws://{addr}/ChatWithNyan?name=cat")),
        "cat has logged in!"
    );
    let (_ws, response) = wsharp::ClientBuilder::new(format!("ws://{addr}/Chat"))
        .header("RequestForID", "please")
        .connect_blocking_with_response()
        .unwrap();
    let id = response.headers()["id"].to_str().unwrap();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // Example: the client reads lines from its input and prints what the chat sends back.
    let mut client = Reap(
        Command::new(example("client"))
            .arg(format!("ws://{addr}/ChatWithNyan?name=me"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = client.0.stdin.take().unwrap();
    let mut lines = BufReader::new(client.0.stdout.take().unwrap()).lines();
    stdin.write_all(b"hello\n").unwrap();
    let said = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("me: "))
        .expect("the chat's answer");
    assert_eq!(said, "me: hello Nyan!");
    stdin.write_all(b"exit\n").unwrap();
    drop(stdin);
    assert!(client.0.wait().unwrap().success());
}

#[test]
fn example3_serves_the_page_files_posts_and_services() {
    let root = wsharp_testkit::TempDir::new("wsharp-example3");
    std::fs::write(root.path().join("hello.txt"), "hello file\n").unwrap();
    let (_server, addr) = start(
        "http_server",
        &[root.path().to_str().unwrap()],
        "serving http://",
    );
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = curl(&[&format!("http://{addr}/")]);
    assert!(page.contains("Echo on load"), "the page: {page}");
    assert_eq!(curl(&[&format!("http://{addr}/hello.txt")]), "hello file\n");
    assert_eq!(
        curl(&["-d", "posted", &format!("http://{addr}/echo")]),
        "posted"
    );
    assert_eq!(python_client(&format!("ws://{addr}/Echo")), "hello");
    assert_eq!(
        python_client(&format!("ws://{addr}/ChatWithNyan?name=cat")),
        "cat has logged in!"
    );
}
