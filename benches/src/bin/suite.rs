//! `suite [--quick]`: runs `wsharp echo`, `peer_tungstenite` and `peer_fastwebsockets` one after
//! another on loopback, drives each with `wsharp bench` over a set of payload sizes and depths, and
//! prints Markdown tables of messages per second with the ratios of wsharp to each peer, and
//! latencies. The whole sequence is repeated `--rounds` times and each cell shows the run with
//! the median rate, which damps bursts of other load on the machine. Each server runs on a one-worker runtime pinned to core 0 and the load generator to
//! core 1 when `taskset` exists.
//!
//! First builds `wsharp-cli` and this crate's binaries in release mode (skip with `--no-build`);
//! `WSHARP_BIN` names another `wsharp` binary. Exits non-zero when a server did not start or a
//! run gave no figure or lost connections (never because of the figures themselves).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

/// Runs the echo benchmark against wsharp and its peers.
#[derive(Debug, Parser)]
struct Args {
    /// One short run of one configuration (a CI smoke test).
    #[arg(long)]
    quick: bool,
    /// Seconds per run (default 3, or 1 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds of the whole sequence (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Do not run `cargo build` first.
    #[arg(long)]
    no_build: bool,
}

/// Connections per run.
const CONNECTIONS: usize = 16;
/// The servers, by name, as (binary, arguments before the listen address).
const SERVERS: [(&str, &str, &[&str]); 3] = [
    ("wsharp", "wsharp", &["--quiet", "echo", "--listen"]),
    ("tungstenite", "peer_tungstenite", &["--listen"]),
    ("fastwebsockets", "peer_fastwebsockets", &["--listen"]),
];

/// What one load generator run reported.
#[derive(Debug, Clone, Copy)]
struct Figures {
    msgs_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    errors: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seconds = args.seconds.unwrap_or(if args.quick { 1.0 } else { 3.0 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let configs: &[(usize, usize)] = if args.quick {
        &[(1024, 16)]
    } else {
        &[
            (16, 16),
            (16, 1),
            (1024, 16),
            (1024, 1),
            (65536, 16),
            (65536, 1),
        ]
    };
    if !args.no_build && !build() {
        eprintln!("suite: cargo build failed");
        return ExitCode::FAILURE;
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let pin = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    eprintln!(
        "suite: {CONNECTIONS} connections, {seconds} s per run, {rounds} round(s), cores {}",
        if pin {
            "pinned (server 0, load generator 1)"
        } else {
            "not pinned (no taskset)"
        }
    );

    // runs[server][config]: one entry per round.
    let mut runs = vec![vec![Vec::new(); configs.len()]; SERVERS.len()];
    for round in 1..=rounds {
        // Each round starts with another server, so that no server always runs first.
        for s in (0..SERVERS.len()).map(|i| (i + round - 1) % SERVERS.len()) {
            let (name, bin, server_args) = SERVERS[s];
            let bin = match name {
                "wsharp" => wsharp_bin(&dir),
                _ => dir.join(bin),
            };
            let started = start_server(&bin, server_args, pin);
            if started.is_none() {
                eprintln!("suite: {name} did not start ({})", bin.display());
            }
            for (c, &(size, depth)) in configs.iter().enumerate() {
                let figures = started.as_ref().and_then(|(_, addr)| {
                    run_bench(&wsharp_bin(&dir), *addr, size, depth, seconds, pin)
                });
                eprintln!(
                    "suite: round {round} {name} {} -> {figures:?}",
                    label(size, depth)
                );
                runs[s][c].push(figures);
            }
            if let Some((mut server, _)) = started {
                let _ = server.kill();
                let _ = server.wait();
            }
        }
    }

    let results: Vec<Vec<Option<Figures>>> = runs
        .iter()
        .map(|row| row.iter().map(|cell| median(cell)).collect())
        .collect();
    print_tables(configs, &results);
    let missing = runs
        .iter()
        .flatten()
        .flatten()
        .filter(|r| r.is_none())
        .count();
    let failed = runs
        .iter()
        .flatten()
        .flatten()
        .flatten()
        .filter(|f| f.errors > 0.0)
        .count();
    if missing + failed > 0 {
        eprintln!("suite: {missing} figure(s) missing, {failed} run(s) with failed connections");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Builds the servers and the load generator in release mode, one package at a time as
/// `cargo run` would (building both at once unifies features and rebuilds shared crates).
fn build() -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    [&["-p", "wsharp-cli"][..], &["-p", "wsharp-bench", "--bins"]]
        .iter()
        .all(|args| {
            Command::new(&cargo)
                .args(["build", "--release"])
                .args(*args)
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// `program args...`, under `taskset -c core` when pinning.
fn command(program: &Path, core: u32, pin: bool) -> Command {
    if pin {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(core.to_string()).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Starts a server on a free loopback port and waits until it accepts connections.
fn start_server(bin: &Path, args: &[&str], pin: bool) -> Option<(Child, SocketAddr)> {
    let addr = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?;
    let mut child = command(bin, 0, pin)
        .args(args)
        .arg(addr.to_string())
        // wsharp's runtime sizes itself from this; the peers set one worker themselves.
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return None;
        }
        if TcpStream::connect(addr).is_ok() {
            return Some((child, addr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The `wsharp` binary: `WSHARP_BIN`, or the one built beside this one.
fn wsharp_bin(dir: &Path) -> PathBuf {
    std::env::var_os("WSHARP_BIN").map_or_else(|| dir.join("wsharp"), PathBuf::from)
}

/// Runs `wsharp bench` once; `None` if it failed, timed out or nothing was echoed.
fn run_bench(
    bin: &Path,
    addr: SocketAddr,
    size: usize,
    depth: usize,
    seconds: f64,
    pin: bool,
) -> Option<Figures> {
    let mut child = command(bin, 1, pin)
        .args(["--quiet", "bench", "--json"])
        .arg(format!("ws://{addr}/"))
        .args(["--connections", &CONNECTIONS.to_string()])
        .args(["--size", &size.to_string(), "--depth", &depth.to_string()])
        .args(["--duration", &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 30.0);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    if !status.success() {
        return None;
    }
    let line = out.lines().last()?;
    let figures = Figures {
        msgs_per_sec: field(line, "msgs_per_sec")?,
        p50_us: field(line, "p50_us")?,
        p99_us: field(line, "p99_us")?,
        errors: field(line, "errors")?,
    };
    (field(line, "messages")? > 0.0).then_some(figures)
}

/// The run with the median rate among those that gave figures.
fn median(runs: &[Option<Figures>]) -> Option<Figures> {
    let mut done: Vec<Figures> = runs.iter().flatten().copied().collect();
    done.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
    done.get(done.len() / 2).copied()
}

/// The number after `"key":` in a flat JSON object.
fn field(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn label(size: usize, depth: usize) -> String {
    let size = match size {
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    };
    format!("{size}, depth {depth}")
}

fn print_tables(configs: &[(usize, usize)], results: &[Vec<Option<Figures>>]) {
    let cell = |f: Option<Figures>, show: &dyn Fn(Figures) -> String| {
        f.map_or_else(|| "missing".into(), show)
    };
    println!(
        "| config | wsharp/tungstenite | wsharp/fastwebsockets | wsharp msg/s | tungstenite msg/s | fastwebsockets msg/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (c, &(size, depth)) in configs.iter().enumerate() {
        let rate = |s: usize| results[s][c].map(|f| f.msgs_per_sec);
        let ratio = |peer: usize| match (rate(0), rate(peer)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "missing".into(),
        };
        let rates: Vec<_> = (0..SERVERS.len())
            .map(|s| cell(results[s][c], &|f| format!("{:.0}", f.msgs_per_sec)))
            .collect();
        println!(
            "| {} | {} | {} | {} |",
            label(size, depth),
            ratio(1),
            ratio(2),
            rates.join(" | ")
        );
    }
    println!();
    println!(
        "| config | wsharp p50 / p99 µs | tungstenite p50 / p99 µs | fastwebsockets p50 / p99 µs |"
    );
    println!("|---|---:|---:|---:|");
    for (c, &(size, depth)) in configs.iter().enumerate() {
        let lat: Vec<_> = (0..SERVERS.len())
            .map(|s| {
                cell(results[s][c], &|f| {
                    let errors = if f.errors > 0.0 {
                        format!(" ({} errors)", f.errors)
                    } else {
                        String::new()
                    };
                    format!("{} / {}{errors}", f.p50_us, f.p99_us)
                })
            })
            .collect();
        println!("| {} | {} |", label(size, depth), lat.join(" | "));
    }
}
