//! `suite [--quick]`: the benchmark matrix. Servers run one after another on loopback, pinned to
//! core 0 (`taskset`, when it exists), each driven by `wsharp bench` pinned to core 1:
//!
//! - echo: wsharp, tokio-tungstenite, fastwebsockets, tokio-websockets, sockudo-ws and the floor
//!   peer (`peer_floor`, the kernel's ceiling) over connections x payload x pipelining depth,
//!   with the server's CPU time per message;
//! - permessage-deflate echo without context takeover: wsharp, Python `websockets`, Node `ws`;
//! - handshakes per second and idle memory: wsharp and the same Rust peers;
//! - clients: wsharp's client (`wsharp bench --mask-each`) and a tokio-tungstenite client
//!   (`load_tungstenite`) driving the floor peer, with each generator's CPU time per message;
//! - instructions: each echo server under `valgrind --tool=callgrind`, counting the user-space
//!   instructions it executes per echoed message (two runs of different lengths, subtracted, so
//!   start-up and handshakes cancel out). Unlike times, these counts repeat exactly from run to
//!   run whatever else the machine does; they leave out the kernel's share.
//!
//! Each sequence is repeated `--rounds` times, each round starting with another server, and every
//! cell shows the run with the median rate. Prints Markdown tables with wsharp's ratio to each
//! peer. First builds what it needs (`--no-build` skips it; `WSHARP_BIN` names another `wsharp`
//! binary, `WSHARP_PYTHON` the Python with `websockets`). Exits non-zero when a server did not
//! start, a run gave no figure, or connections failed; never because of the figures themselves.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

/// Runs the benchmark matrix against wsharp and its peers.
#[derive(Debug, Parser)]
struct Args {
    /// One short run of one configuration per section (a CI smoke test).
    #[arg(long)]
    quick: bool,
    /// Seconds per run (default 3, or 1 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds of each sequence (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Connections held open for the memory figure (default 10000, or 1000 with --quick).
    #[arg(long)]
    idle_connections: Option<usize>,
    /// Only these sections (echo, deflate, handshakes, memory, clients, tls, instructions); all
    /// by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The echo section's load generator: `wsharp` (`wsharp bench`, the default; it also
    /// reports latency) or `tungstenite` (`load_tungstenite`, a tokio-tungstenite client; the
    /// server's CPU time is read from /proc around each run).
    #[arg(long, default_value = "wsharp")]
    generator: String,
    /// Do not build first.
    #[arg(long)]
    no_build: bool,
    /// Only these servers in the echo, memory and instructions sections (wsharp, tungstenite,
    /// fastwebsockets, tokio-websockets, sockudo-ws, framework, http-server, serve, floor); all
    /// by default.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
}

/// A server under test: a name and how to start it on an address (appended last).
struct Server {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// The echo endpoint's path.
    path: &'static str,
    /// Whether the server runs as shipped, with as many runtime workers as it picks; otherwise
    /// it gets one (`TOKIO_WORKER_THREADS=1`, for the servers that size themselves from it).
    as_shipped: bool,
    /// Whether it serves TLS (`wss://`; the generator accepts its throw-away certificate).
    tls: bool,
}

impl Server {
    fn url(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{addr}{}", self.path)
    }
}

/// One measured load.
#[derive(Debug, Clone, Copy)]
struct Load {
    connections: usize,
    size: usize,
    depth: usize,
    compression: bool,
    handshakes: bool,
}

impl Load {
    fn echo(connections: usize, size: usize, depth: usize) -> Self {
        Self {
            connections,
            size,
            depth,
            compression: false,
            handshakes: false,
        }
    }

    fn label(&self) -> String {
        if self.handshakes {
            return format!("{} slots", self.connections);
        }
        let size = match self.size {
            s if s >= 1024 => format!("{} KiB", s / 1024),
            s => format!("{s} B"),
        };
        format!("{} conns, {size}, depth {}", self.connections, self.depth)
    }
}

/// What one `wsharp bench` run reported.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    errors: f64,
    cpu_us: Option<f64>,
}

struct Paths {
    bins: PathBuf,
    root: PathBuf,
    wsharp: PathBuf,
    python: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seconds = args.seconds.unwrap_or(if args.quick { 1.0 } else { 3.0 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let idle = args
        .idle_connections
        .unwrap_or(if args.quick { 1000 } else { 10_000 });
    let want = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let bins = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let paths = Paths {
        wsharp: std::env::var_os("WSHARP_BIN").map_or_else(|| bins.join("wsharp"), PathBuf::from),
        python: std::env::var_os("WSHARP_PYTHON")
            .map_or_else(|| root.join("../.venv/bin/python"), PathBuf::from),
        bins,
        root,
    };
    if !args.no_build && !build() {
        eprintln!("suite: the build failed");
        return ExitCode::FAILURE;
    }
    if want("deflate") && !install_node_peer(&paths.root) {
        eprintln!("suite: `npm ci` for the Node peer failed (is Node.js installed?)");
        return ExitCode::FAILURE;
    }
    // Servers and the generator inherit this: 10 000 connections need more than 1024 files.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let pin = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    eprintln!(
        "suite: {seconds} s per run, {rounds} round(s), cores {}",
        if pin {
            "pinned (server 0, load generator 1)"
        } else {
            "not pinned (no taskset)"
        }
    );
    let mut problems = 0;

    if want("echo") {
        let loads: Vec<Load> = if args.quick {
            vec![Load::echo(16, 1024, 16)]
        } else {
            vec![
                Load::echo(16, 16, 16),
                Load::echo(256, 16, 16),
                Load::echo(16, 1024, 16),
                Load::echo(256, 1024, 16),
                Load::echo(16, 65536, 16),
                Load::echo(16, 16, 1),
                Load::echo(16, 1024, 1),
                Load::echo(16, 65536, 1),
            ]
        };
        let mut servers = echo_servers(&paths);
        servers.push(server(&paths.bins, "floor", "peer_floor", &["--listen"]));
        servers.retain(|s| args.servers.is_empty() || args.servers.iter().any(|n| n == s.name));
        let generator = match args.generator.as_str() {
            "wsharp" => Generator::Wsharp(paths.wsharp.clone()),
            "tungstenite" => Generator::Tungstenite(paths.bins.join("load_tungstenite"), None),
            other => {
                eprintln!("suite: unknown generator {other:?} (wsharp or tungstenite)");
                return ExitCode::FAILURE;
            }
        };
        println!("Load generator: {}\n", args.generator);
        let runs = run_section(&servers, &loads, seconds, rounds, pin, &generator);
        println!("## Echo: messages per second (ratios above 1: wsharp faster)\n");
        print_rates(&servers, &loads, &runs, "msg/s");
        println!("\n## Echo: server CPU time per message, µs (ratios below 1: wsharp cheaper)\n");
        print_cpu(&servers, &loads, &runs);
        println!("\n## Echo: latency p50 / p99, µs\n");
        print_latency(&servers, &loads, &runs);
        problems += count_problems(&runs);
    }
    if want("deflate") {
        let load = |size| Load {
            compression: true,
            ..Load::echo(16, size, 16)
        };
        let loads: Vec<Load> = if args.quick {
            vec![load(1024)]
        } else {
            vec![load(16), load(1024)]
        };
        let servers = vec![
            server(&paths.bins, "wsharp", "", &[]),
            Server {
                name: "python-websockets",
                program: paths.python.clone(),
                args: vec![paths.root.join("py/echo_deflate.py").display().to_string()],
                path: "/",
                as_shipped: false,
                tls: false,
            },
            Server {
                name: "node-ws",
                program: PathBuf::from("node"),
                args: vec![paths.root.join("node/echo.js").display().to_string()],
                path: "/",
                as_shipped: false,
                tls: false,
            },
        ];
        let servers = with_wsharp(servers, &paths.wsharp);
        let runs = run_section(
            &servers,
            &loads,
            seconds,
            rounds,
            pin,
            &Generator::Wsharp(paths.wsharp.clone()),
        );
        println!("\n## permessage-deflate echo, no context takeover: messages per second\n");
        print_rates(&servers, &loads, &runs, "msg/s");
        println!("\n## permessage-deflate echo: server CPU time per message, µs\n");
        print_cpu(&servers, &loads, &runs);
        problems += count_problems(&runs);
    }
    if want("handshakes") {
        let loads = vec![Load {
            handshakes: true,
            ..Load::echo(16, 0, 1)
        }];
        let servers = echo_servers(&paths);
        let runs = run_section(
            &servers,
            &loads,
            seconds,
            rounds,
            pin,
            &Generator::Wsharp(paths.wsharp.clone()),
        );
        println!("\n## Handshakes: connections opened, upgraded and closed per second\n");
        print_rates(&servers, &loads, &runs, "handshakes/s");
        println!("\n## Handshakes: server CPU time per handshake, µs\n");
        print_cpu(&servers, &loads, &runs);
        problems += count_problems(&runs);
    }
    if want("tls") {
        match TlsFiles::new() {
            None => {
                eprintln!("suite: cannot write the TLS section's certificate");
                problems += 1;
            }
            Some(files) => {
                problems += tls_section(&paths, &files, &args, seconds, rounds, idle, pin)
            }
        }
    }
    if want("memory") {
        println!("\n## Idle memory: server RSS growth per open connection ({idle} connections)\n");
        println!("| server | RSS before (KiB) | RSS after (KiB) | per connection (bytes) |");
        println!("|---|---:|---:|---:|");
        let servers = echo_servers(&paths)
            .into_iter()
            .filter(|s| args.servers.is_empty() || args.servers.iter().any(|n| n == s.name));
        for s in servers {
            match measure_memory(&s, idle, pin) {
                Some((before, after)) => {
                    let per = after.saturating_sub(before) * 1024 / idle as u64;
                    println!("| {} | {before} | {after} | {per} |", s.name);
                }
                None => {
                    eprintln!("suite: memory of {} not measured", s.name);
                    println!("| {} | missing | missing | missing |", s.name);
                    problems += 1;
                }
            }
        }
    }
    if want("clients") {
        let loads: Vec<Load> = if args.quick {
            vec![Load::echo(16, 1024, 16)]
        } else {
            vec![
                Load::echo(16, 16, 16),
                Load::echo(16, 1024, 16),
                Load::echo(256, 1024, 16),
                Load::echo(16, 1024, 1),
            ]
        };
        let floor = server(&paths.bins, "floor", "peer_floor", &["--listen"]);
        let generators = [
            Generator::Wsharp(paths.wsharp.clone()),
            Generator::Tungstenite(paths.bins.join("load_tungstenite"), None),
        ];
        let runs = run_clients(&floor, &generators, &loads, seconds, rounds, pin);
        println!(
            "\n## Clients driving the floor peer: messages per second and client CPU per message\n"
        );
        println!(
            "| config | wsharp/tungstenite msg/s | wsharp/tungstenite client µs | wsharp msg/s | \
             tungstenite msg/s | wsharp client µs/msg | tungstenite client µs/msg |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (l, load) in loads.iter().enumerate() {
            let cell = |g: usize| median(&runs[g][l]);
            match (cell(0), cell(1)) {
                (Some(w), Some(t)) => {
                    let (wc, tc) = (w.cpu_us.unwrap_or(f64::NAN), t.cpu_us.unwrap_or(f64::NAN));
                    println!(
                        "| {} | {:.2} | {:.2} | {:.0} | {:.0} | {wc:.2} | {tc:.2} |",
                        load.label(),
                        w.rate / t.rate,
                        wc / tc,
                        w.rate,
                        t.rate
                    );
                }
                _ => println!("| {} | missing | | | | | |", load.label()),
            }
        }
        problems += count_problems(&runs);
    }
    if want("instructions") {
        let (loads, count) = if args.quick {
            (vec![Load::echo(16, 16, 1)], 2_000)
        } else {
            (
                vec![
                    Load::echo(16, 16, 1),
                    Load::echo(16, 16, 16),
                    Load::echo(16, 1024, 16),
                ],
                5_000,
            )
        };
        let mut servers = echo_servers(&paths);
        servers.push(server(&paths.bins, "floor", "peer_floor", &["--listen"]));
        servers.retain(|s| args.servers.is_empty() || args.servers.iter().any(|n| n == s.name));
        println!(
            "\n## User-space instructions per echoed message (callgrind; ratios below 1: wsharp leaner)\n"
        );
        header(&servers, "instr");
        for load in &loads {
            // Under callgrind each read brings all that is in flight: full batches at depth 16.
            let count = if load.depth > 1 { count * 20 } else { count };
            let cells: Vec<Option<f64>> = servers
                .iter()
                .map(|s| {
                    let cell = instructions_per_message(s, &paths.wsharp, load, count);
                    eprintln!(
                        "suite: instructions {} {} -> {cell:?}",
                        s.name,
                        load.label()
                    );
                    cell
                })
                .collect();
            problems += cells.iter().filter(|c| c.is_none()).count();
            print_row(&load.label(), &cells, 0);
        }
    }
    if problems > 0 {
        eprintln!("suite: {problems} figure(s) missing or run(s) with failed connections");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A throw-away certificate for localhost and 127.0.0.1 and its key, in a directory removed
/// on drop.
struct TlsFiles {
    dir: PathBuf,
    cert: String,
    key: String,
}

impl TlsFiles {
    fn new() -> Option<Self> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).ok()?;
        let dir = std::env::temp_dir().join(format!("wsharp-suite-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).ok()?;
        std::fs::write(&key, certified.signing_key.serialize_pem()).ok()?;
        Some(Self {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            dir,
        })
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TLS section: wsharp's wss echo beside tokio-tungstenite over tokio-rustls and the TLS
/// floor, all on rustls with aws-lc-rs; then TLS handshakes and idle memory per TLS
/// connection. Returns the number of problems.
fn tls_section(
    paths: &Paths,
    files: &TlsFiles,
    args: &Args,
    seconds: f64,
    rounds: usize,
    idle: usize,
    pin: bool,
) -> usize {
    let tls_server = |name, program: PathBuf, mut head: Vec<String>| {
        head.extend(
            [
                "--tls-cert",
                &files.cert,
                "--tls-key",
                &files.key,
                "--listen",
            ]
            .map(String::from),
        );
        Server {
            name,
            program,
            args: head,
            path: "/",
            as_shipped: false,
            tls: true,
        }
    };
    let servers = vec![
        tls_server(
            "wsharp",
            paths.wsharp.clone(),
            vec!["--quiet".into(), "echo".into()],
        ),
        tls_server(
            "tungstenite-rustls",
            paths.bins.join("peer_tungstenite_tls"),
            Vec::new(),
        ),
        tls_server("tls-floor", paths.bins.join("peer_floor"), Vec::new()),
    ];
    let loads: Vec<Load> = if args.quick {
        vec![Load::echo(16, 1024, 16)]
    } else {
        vec![
            Load::echo(16, 16, 16),
            Load::echo(16, 1024, 16),
            Load::echo(16, 65536, 16),
            Load::echo(16, 16, 1),
            Load::echo(16, 1024, 1),
            Load::echo(16, 65536, 1),
        ]
    };
    let generators = [
        ("wsharp", Generator::Wsharp(paths.wsharp.clone())),
        (
            "tungstenite",
            Generator::Tungstenite(
                paths.bins.join("load_tungstenite"),
                Some(files.cert.clone()),
            ),
        ),
    ];
    let mut problems = 0;
    for (client, generator) in &generators {
        let runs = run_section(&servers, &loads, seconds, rounds, pin, generator);
        println!(
            "\n## TLS echo, {client} client: messages per second (ratios above 1: wsharp faster)\n"
        );
        print_rates(&servers, &loads, &runs, "msg/s");
        println!(
            "\n## TLS echo, {client} client: server CPU time per message, µs (ratios below 1: \
             wsharp cheaper)\n"
        );
        print_cpu(&servers, &loads, &runs);
        if matches!(generator, Generator::Wsharp(_)) {
            println!("\n## TLS echo, {client} client: latency p50 / p99, µs\n");
            print_latency(&servers, &loads, &runs);
        }
        problems += count_problems(&runs);
    }
    let generator = &generators[0].1;

    let handshake_servers = &servers[..2];
    let loads = vec![Load {
        handshakes: true,
        ..Load::echo(16, 0, 1)
    }];
    let runs = run_section(handshake_servers, &loads, seconds, rounds, pin, generator);
    println!("\n## TLS handshakes: connections opened, upgraded and closed per second\n");
    print_rates(handshake_servers, &loads, &runs, "handshakes/s");
    println!("\n## TLS handshakes: server CPU time per handshake, µs\n");
    print_cpu(handshake_servers, &loads, &runs);
    problems += count_problems(&runs);

    println!("\n## Idle memory per TLS connection: server RSS growth ({idle} connections)\n");
    println!("| server | RSS before (KiB) | RSS after (KiB) | per connection (bytes) |");
    println!("|---|---:|---:|---:|");
    for s in &servers {
        match measure_memory(s, idle, pin) {
            Some((before, after)) => {
                let per = after.saturating_sub(before) * 1024 / idle as u64;
                println!("| {} | {before} | {after} | {per} |", s.name);
            }
            None => {
                eprintln!("suite: memory of {} over TLS not measured", s.name);
                println!("| {} | missing | missing | missing |", s.name);
                problems += 1;
            }
        }
    }
    problems
}

/// wsharp and the Rust peers (tokio-tungstenite, fastwebsockets, tokio-websockets, sockudo-ws), as
/// echo servers.
fn echo_servers(paths: &Paths) -> Vec<Server> {
    with_wsharp(
        vec![
            server(&paths.bins, "wsharp", "", &[]),
            server(
                &paths.bins,
                "tungstenite",
                "peer_tungstenite",
                &["--listen"],
            ),
            server(
                &paths.bins,
                "fastwebsockets",
                "peer_fastwebsockets",
                &["--listen"],
            ),
            server(
                &paths.bins,
                "tokio-websockets",
                "peer_tokio_websockets",
                &["--listen"],
            ),
            server(&paths.bins, "sockudo-ws", "peer_sockudo", &["--listen"]),
            server(&paths.bins, "framework", "peer_framework", &["--listen"]),
            server(
                &paths.bins,
                "http-server",
                "peer_framework",
                &["--http", "--listen"],
            ),
            Server {
                path: "/Echo",
                as_shipped: true,
                ..server(&paths.bins, "serve", "", &[])
            },
        ],
        &paths.wsharp,
    )
}

fn server(bins: &Path, name: &'static str, bin: &str, args: &[&str]) -> Server {
    Server {
        name,
        program: bins.join(bin),
        args: args.iter().map(ToString::to_string).collect(),
        path: "/",
        as_shipped: false,
        tls: false,
    }
}

/// Fills in the `wsharp echo` entry.
fn with_wsharp(mut servers: Vec<Server>, wsharp: &Path) -> Vec<Server> {
    for s in servers.iter_mut().filter(|s| s.name == "wsharp") {
        s.program = wsharp.to_path_buf();
        s.args = ["--quiet", "echo", "--listen"].map(String::from).to_vec();
    }
    for s in servers.iter_mut().filter(|s| s.name == "serve") {
        s.program = wsharp.to_path_buf();
        s.args = ["--quiet", "serve", "--listen"].map(String::from).to_vec();
    }
    servers
}

/// `runs[server][load]`: one entry per round.
type Runs = Vec<Vec<Vec<Option<Figures>>>>;

/// A load generator for the client comparison.
enum Generator {
    /// `wsharp bench --mask-each`: wsharp's whole client send path.
    Wsharp(PathBuf),
    /// `load_tungstenite`: tokio-tungstenite's client doing the same (over TLS, trusting the
    /// certificate file given).
    Tungstenite(PathBuf, Option<String>),
}

/// Each round starts the floor peer once and runs every load with each generator in turn
/// (the first generator alternating between rounds). `runs[generator][load]`, with the
/// generator's own CPU time per message as `cpu_us`.
fn run_clients(
    floor: &Server,
    generators: &[Generator],
    loads: &[Load],
    seconds: f64,
    rounds: usize,
    pin: bool,
) -> Runs {
    let mut runs = vec![vec![Vec::new(); loads.len()]; generators.len()];
    for round in 1..=rounds {
        let started = start_server(floor, pin);
        for (l, load) in loads.iter().enumerate() {
            for g in (0..generators.len()).map(|i| (i + round - 1) % generators.len()) {
                let figures = started.as_ref().and_then(|(_, addr)| {
                    let mut cmd = match &generators[g] {
                        Generator::Wsharp(bin) => {
                            let mut cmd = command(bin, 1, pin);
                            cmd.args(["--quiet", "bench", "--json", "--mask-each"]);
                            cmd
                        }
                        Generator::Tungstenite(bin, _) => command(bin, 1, pin),
                    };
                    cmd.arg(format!("ws://{addr}/"))
                        .args(["--connections", &load.connections.to_string()])
                        .args(["--size", &load.size.to_string()])
                        .args(["--depth", &load.depth.to_string()])
                        .args(["--duration", &seconds.to_string()]);
                    let json = run_json(cmd, seconds)?;
                    let num = |k: &str| json[k].as_f64();
                    (num("messages")? > 0.0).then_some(Figures {
                        rate: num("msgs_per_sec")?,
                        p50_us: f64::NAN,
                        p99_us: f64::NAN,
                        errors: num("errors")?,
                        cpu_us: num("client_cpu_us_per_msg"),
                    })
                });
                let name = match generators[g] {
                    Generator::Wsharp(_) => "wsharp client",
                    Generator::Tungstenite(..) => "tungstenite client",
                };
                eprintln!(
                    "suite: round {round} {name} {} -> {figures:?}",
                    load.label()
                );
                runs[g][l].push(figures);
            }
        }
        if started.is_none() {
            eprintln!("suite: the floor peer did not start");
        }
        if let Some((mut child, _)) = started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    runs
}

fn run_section(
    servers: &[Server],
    loads: &[Load],
    seconds: f64,
    rounds: usize,
    pin: bool,
    generator: &Generator,
) -> Runs {
    let mut runs = vec![vec![Vec::new(); loads.len()]; servers.len()];
    for round in 1..=rounds {
        // Each round starts with another server, so that no server always runs first.
        for s in (0..servers.len()).map(|i| (i + round - 1) % servers.len()) {
            let server = &servers[s];
            let started = start_server(server, pin);
            if started.is_none() {
                eprintln!(
                    "suite: {} did not start ({})",
                    server.name,
                    server.program.display()
                );
            }
            for (l, load) in loads.iter().enumerate() {
                let figures = started.as_ref().and_then(|(child, addr)| {
                    let url = server.url(*addr);
                    match generator {
                        Generator::Wsharp(wsharp) => {
                            run_bench(wsharp, &url, child.id(), load, seconds, pin)
                        }
                        Generator::Tungstenite(bin, ca) => run_tungstenite(
                            bin,
                            ca.as_deref(),
                            &url,
                            child.id(),
                            load,
                            seconds,
                            pin,
                        ),
                    }
                });
                eprintln!(
                    "suite: round {round} {} {} -> {figures:?}",
                    server.name,
                    load.label()
                );
                runs[s][l].push(figures);
            }
            if let Some((mut child, _)) = started {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    runs
}

fn count_problems(runs: &Runs) -> usize {
    let cells = runs.iter().flatten().flatten();
    cells.filter(|r| r.is_none_or(|f| f.errors > 0.0)).count()
}

/// Builds the binaries in release mode, one package at a time as `cargo run` would.
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

/// Installs the Node peer's `ws` (pinned by its package-lock.json) unless it is there.
fn install_node_peer(root: &Path) -> bool {
    let dir = root.join("node");
    dir.join("node_modules/ws").exists()
        || Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success())
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
fn start_server(server: &Server, pin: bool) -> Option<(Child, SocketAddr)> {
    let addr = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?;
    let mut cmd = command(&server.program, 0, pin);
    cmd.args(&server.args).arg(addr.to_string());
    if !server.as_shipped {
        // wsharp's runtime sizes itself from this; the Rust peers set one worker themselves.
        cmd.env("TOKIO_WORKER_THREADS", "1");
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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

/// Runs `wsharp bench --json` once; `None` if it failed, timed out or nothing was echoed.
fn run_bench(
    wsharp: &Path,
    url: &str,
    server_pid: u32,
    load: &Load,
    seconds: f64,
    pin: bool,
) -> Option<Figures> {
    let mut cmd = command(wsharp, 1, pin);
    cmd.args(["--quiet", "bench", "--json"])
        .arg(url)
        .args(["--connections", &load.connections.to_string()])
        .args(["--size", &load.size.to_string()])
        .args(["--depth", &load.depth.to_string()])
        .args(["--duration", &seconds.to_string()])
        .args(["--server-pid", &server_pid.to_string()]);
    if load.compression {
        cmd.arg("--compression");
    }
    if url.starts_with("wss:") {
        cmd.arg("--insecure");
    }
    if load.handshakes {
        cmd.arg("--handshakes");
    }
    let json = run_json(cmd, seconds)?;
    let num = |k: &str| json[k].as_f64();
    (num("messages")? > 0.0).then_some(Figures {
        rate: num("msgs_per_sec")?,
        p50_us: num("p50_us")?,
        p99_us: num("p99_us")?,
        errors: num("errors")?,
        cpu_us: num("server_cpu_us_per_msg"),
    })
}

/// Runs `load_tungstenite` once against an echo server, reading the server's CPU time from
/// /proc around the run; no latency figures (0).
fn run_tungstenite(
    bin: &Path,
    ca: Option<&str>,
    url: &str,
    server_pid: u32,
    load: &Load,
    seconds: f64,
    pin: bool,
) -> Option<Figures> {
    let mut cmd = command(bin, 1, pin);
    cmd.arg(url)
        .args(["--connections", &load.connections.to_string()])
        .args(["--size", &load.size.to_string()])
        .args(["--depth", &load.depth.to_string()])
        .args(["--duration", &seconds.to_string()]);
    if let Some(ca) = ca {
        cmd.args(["--ca", ca]);
    }
    let before = cpu_seconds(server_pid)?;
    let json = run_json(cmd, seconds)?;
    let after = cpu_seconds(server_pid)?;
    let num = |k: &str| json[k].as_f64();
    let messages = num("messages")?;
    (messages > 0.0).then_some(Figures {
        rate: num("msgs_per_sec")?,
        p50_us: 0.0,
        p99_us: 0.0,
        errors: num("errors")?,
        cpu_us: Some((after - before) * 1e6 / messages),
    })
}

/// The CPU time (user + system) process `pid` has used, in seconds (/proc counts clock ticks
/// of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs a load generator that prints one JSON object last; `None` if it failed or did not end
/// within `seconds` + 30 s.
fn run_json(mut cmd: Command, seconds: f64) -> Option<serde_json::Value> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().ok()?;
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
    serde_json::from_str(out.lines().last()?).ok()
}

/// The run with the median rate among those that gave figures.
fn median(runs: &[Option<Figures>]) -> Option<Figures> {
    let mut done: Vec<Figures> = runs.iter().flatten().copied().collect();
    done.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    done.get(done.len() / 2).copied()
}

fn header(servers: &[Server], unit: &str) {
    let peers: Vec<String> = servers[1..]
        .iter()
        .map(|s| format!("wsharp/{}", s.name))
        .collect();
    let values: Vec<String> = servers
        .iter()
        .map(|s| format!("{} {unit}", s.name))
        .collect();
    println!(
        "| config | {} | {} |",
        peers.join(" | "),
        values.join(" | ")
    );
    println!(
        "|---|{}|",
        vec!["---:"; peers.len() + values.len()].join("|")
    );
}

/// A table of `value` per server and load with wsharp's (the first server's) ratio to each.
fn print_table(
    servers: &[Server],
    loads: &[Load],
    runs: &Runs,
    unit: &str,
    value: &dyn Fn(&Figures) -> Option<f64>,
    digits: usize,
) {
    header(servers, unit);
    for (l, load) in loads.iter().enumerate() {
        let cells: Vec<Option<f64>> = (0..servers.len())
            .map(|s| median(&runs[s][l]).and_then(|f| value(&f)))
            .collect();
        print_row(&load.label(), &cells, digits);
    }
}

/// One table row: wsharp's (the first cell's) ratio to each other cell, then the values.
fn print_row(label: &str, cells: &[Option<f64>], digits: usize) {
    let ratios: Vec<String> = cells[1..]
        .iter()
        .map(|c| match (cells[0], *c) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "missing".into(),
        })
        .collect();
    let values: Vec<String> = cells
        .iter()
        .map(|c| c.map_or_else(|| "missing".into(), |v| format!("{v:.digits$}")))
        .collect();
    println!(
        "| {label} | {} | {} |",
        ratios.join(" | "),
        values.join(" | ")
    );
}

fn print_rates(servers: &[Server], loads: &[Load], runs: &Runs, unit: &str) {
    print_table(servers, loads, runs, unit, &|f| Some(f.rate), 0);
}

fn print_cpu(servers: &[Server], loads: &[Load], runs: &Runs) {
    print_table(servers, loads, runs, "µs", &|f| f.cpu_us, 2);
}

fn print_latency(servers: &[Server], loads: &[Load], runs: &Runs) {
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    println!("| config | {} |", names.join(" | "));
    println!("|---|{}|", vec!["---:"; names.len()].join("|"));
    for (l, load) in loads.iter().enumerate() {
        let cells: Vec<String> = (0..servers.len())
            .map(|s| {
                median(&runs[s][l]).map_or_else(
                    || "missing".into(),
                    |f| format!("{} / {}", f.p50_us, f.p99_us),
                )
            })
            .collect();
        println!("| {} | {} |", load.label(), cells.join(" | "));
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Starts `server`, warms it up, opens `n` connections that each exchange one message, and
/// returns its RSS before and after, in KiB.
fn measure_memory(server: &Server, n: usize, pin: bool) -> Option<(u64, u64)> {
    let (mut child, addr) = start_server(server, pin)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let result = runtime.block_on(async {
        let url = server.url(addr);
        let open = |count: usize| {
            let url = url.clone();
            async move {
                let mut sockets = Vec::with_capacity(count);
                for _ in 0..count {
                    let tls = wsharp::tls::ClientTls::new().dangerous_accept_any_certificate();
                    let mut ws = wsharp::ClientBuilder::new(&url)
                        .tls(tls)
                        .connect()
                        .await
                        .ok()?;
                    ws.send("a message of some forty bytes, echoed back")
                        .await
                        .ok()?;
                    ws.recv().await?.ok()?;
                    sockets.push(ws);
                }
                Some(sockets)
            }
        };
        // Warm up the server's runtime and allocator before the baseline.
        drop(open(20).await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = rss_kib(child.id())?;
        let sockets = open(n).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(child.id())?;
        drop(sockets);
        Some((before, after))
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// User-space instructions `server` executes per echoed message of `load`: the server runs
/// under callgrind twice, echoing `count` and then `3 * count` messages; the difference of the
/// two totals over `2 * count` leaves out start-up, handshakes and shutdown.
fn instructions_per_message(
    server: &Server,
    wsharp: &Path,
    load: &Load,
    count: u64,
) -> Option<f64> {
    let short = callgrind_total(server, wsharp, load, count)?;
    let long = callgrind_total(server, wsharp, load, 3 * count)?;
    Some((long.checked_sub(short)?) as f64 / (2 * count) as f64)
}

/// Runs `server` under callgrind for one `wsharp bench --count count` and returns the total
/// instructions it executed.
fn callgrind_total(server: &Server, wsharp: &Path, load: &Load, count: u64) -> Option<u64> {
    let out = std::env::temp_dir().join(format!(
        "wsharp-suite-callgrind-{}-{}.out",
        std::process::id(),
        server.name
    ));
    let mut valgrind = Server {
        name: server.name,
        program: PathBuf::from("valgrind"),
        args: vec![
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", out.display()),
            server.program.display().to_string(),
        ],
        path: server.path,
        as_shipped: server.as_shipped,
        tls: server.tls,
    };
    valgrind.args.extend(server.args.iter().cloned());
    let (mut child, addr) = start_server(&valgrind, false)?;
    let mut cmd = Command::new(wsharp);
    cmd.args(["--quiet", "bench", "--json"])
        .arg(server.url(addr))
        .args(["--connections", &load.connections.to_string()])
        .args(["--size", &load.size.to_string()])
        .args(["--depth", &load.depth.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--duration", "300"]);
    // tokio-tungstenite zero-fills its read buffer for every read: 100x the others' count.
    let echoed = run_json(cmd, 300.0).and_then(|json| json["messages"].as_u64());
    // SIGTERM: callgrind writes its totals as the program ends.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&out).ok();
    let _ = std::fs::remove_file(&out);
    if echoed != Some(count) {
        return None;
    }
    text?
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
