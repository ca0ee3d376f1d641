//! The `wsharp` binary against headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol): the browser offers permessage-deflate and round-trips text and binary messages.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
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

fn chromium() -> PathBuf {
    let path = std::env::var_os("WSHARP_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {}: install Debian's chromium (scripts/test.sh does) or set WSHARP_CHROMIUM",
        path.display()
    );
    path
}

/// Starts `wsharp echo` on a free port; returns it and the port it printed in its log.
fn echo_server() -> (Reap, u16) {
    let mut server = Reap(
        Command::new(env!("CARGO_BIN_EXE_wsharp"))
            .args(["echo", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wsharp echo"),
    );
    let stderr = BufReader::new(server.0.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return (server, digits.parse().unwrap());
        }
    }
    panic!("wsharp echo printed no address");
}

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
