//! `wsharp connect URL`: standard input lines become messages, received messages go to
//! standard output.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use wsharp::{ClientBuilder, CloseCode, Config, Deflate, Limits, Message};

use crate::exit::{Failure, code};

/// Options of `wsharp connect`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  printf 'a\\nb\\n' | wsharp connect ws://127.0.0.1:9001/\n",
    "  wsharp connect -H 'Authorization: Bearer t0k3n' -p chat.v2 ws://127.0.0.1:4649/Chat\n",
    "  wsharp connect --binary --show-control --ping-interval 5 ws://127.0.0.1:9001/\n",
    "  seq 100 | wsharp connect --linger 0.5 ws://127.0.0.1:9001/\n",
    "  wsharp connect --ca test-ca.pem wss://localhost:9443/\n",
    "  WSHARP_PASSWORD=sekret wsharp connect --user nobita --cookie lang=ja ws://127.0.0.1:4649/Chat\n\n",
    crate::exit::exit_codes!(),
))]
pub(crate) struct ConnectArgs {
    /// The server's URL: ws://host[:port]/path[?query].
    url: String,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A subprotocol to offer, most preferred first (repeatable).
    #[arg(short = 'p', long = "protocol", value_name = "NAME")]
    protocols: Vec<String>,
    /// The Origin header.
    #[arg(long)]
    origin: Option<String>,
    /// Do not offer permessage-deflate.
    #[arg(long)]
    no_compression: bool,
    /// Send each input line as a binary message (received binary messages are written as they
    /// are in both modes).
    #[arg(short, long)]
    binary: bool,
    /// Send a ping every SECS seconds.
    #[arg(long, value_name = "SECS")]
    ping_interval: Option<f64>,
    /// Keepalive: ping after SECS seconds without a frame from the server, and end (connection
    /// lost) if it stays silent as long again.
    #[arg(long, value_name = "SECS")]
    keepalive: Option<f64>,
    /// Show pings, pongs and the close on standard error.
    #[arg(long)]
    show_control: bool,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_message_size: usize,
    /// For wss://: also trust the CA certificates in this PEM file (repeatable).
    #[arg(long = "ca", value_name = "FILE")]
    ca: Vec<std::path::PathBuf>,
    /// For wss://: accept any server certificate, unverified (tests only: anyone in the path
    /// can read and change the connection).
    #[arg(long)]
    insecure: bool,
    /// For wss://: present this client certificate chain (PEM); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// Log in as USER (HTTP Basic or Digest, answering the server's challenge). Without
    /// `:PASS` the password comes from WSHARP_PASSWORD, or is asked for on the terminal.
    #[arg(short = 'u', long = "user", value_name = "USER[:PASS]")]
    user: Option<String>,
    /// Which schemes may answer: `any` (the strongest offered: Digest SHA-256, Digest MD5,
    /// Basic), `digest`, or `basic` (sent with the first request, as curl --basic does).
    #[arg(long, value_enum, default_value_t = AuthArg::Any, value_name = "SCHEME")]
    auth: AuthArg,
    /// Connect through this proxy: http://[user:pass@]host:port (CONNECT), socks5:// or
    /// socks5h://. Without it, the environment's (https_proxy for wss, http_proxy for ws,
    /// all_proxy, no_proxy).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Ignore the environment's proxies.
    #[arg(long)]
    no_proxy: bool,
    /// The proxy's user, `USER[:PASS]` (the password as for --user, from WSHARP_PROXY_PASSWORD).
    #[arg(long, value_name = "USER[:PASS]")]
    proxy_user: Option<String>,
    /// Follow redirects of the upgrade (301, 302, 303, 307, 308).
    #[arg(short = 'L', long)]
    location: bool,
    /// Most redirects followed with --location.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_redirs: usize,
    /// A cookie to send, `name=value` (repeatable).
    #[arg(long = "cookie", value_name = "NAME=VALUE")]
    cookies: Vec<String>,
    /// Seconds to connect and finish the opening handshake.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    connect_timeout: f64,
    /// Seconds to wait for the server's close after ours.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    close_timeout: f64,
    /// At the end of input, keep printing what arrives and close only once nothing has arrived
    /// for SECS seconds (for servers that drop replies still on their way when the client
    /// closes). 0, the default, closes at once.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    linger: f64,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuthArg {
    Any,
    Basic,
    Digest,
}

/// The user and password of `--user USER[:PASS]`: the password after the first `:`, else
/// from WSHARP_PASSWORD, else asked for on the terminal.
fn credentials(user: &str, variable: &str) -> Result<(String, String), Failure> {
    if let Some((user, password)) = user.split_once(':') {
        return Ok((user.to_owned(), password.to_owned()));
    }
    if let Ok(password) = std::env::var(variable) {
        return Ok((user.to_owned(), password));
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let password = rpassword::prompt_password(format!("password for {user}: "))
            .map_err(|e| Failure::new(code::USAGE, format!("cannot read the password: {e}")))?;
        return Ok((user.to_owned(), password));
    }
    Err(Failure::new(
        code::USAGE,
        format!("{user}: no password (give USER:PASS, set {variable}, or run on a terminal)"),
    ))
}

/// The proxies the options ask for: `--proxy` (with `--proxy-user`), none with `--no-proxy`,
/// else the environment's.
fn proxy_settings(args: &ConnectArgs) -> Result<wsharp::ProxySettings, Failure> {
    if args.no_proxy {
        return Ok(wsharp::ProxySettings::none());
    }
    let proxy = match (&args.proxy, &args.proxy_user) {
        (None, None) => return Ok(wsharp::ProxySettings::from_env()),
        (Some(url), _) => url.clone(),
        (None, Some(_)) => {
            // --proxy-user for the environment's proxy.
            let Some(proxy) = wsharp::ProxySettings::from_env().proxy_for(&args.url) else {
                return Err(Failure::new(code::USAGE, "--proxy-user without a proxy"));
            };
            proxy.to_string()
        }
    };
    let mut proxy =
        wsharp::Proxy::parse(&proxy).map_err(|e| Failure::new(code::USAGE, e.to_string()))?;
    if let Some(user) = &args.proxy_user {
        let (user, password) = credentials(user, "WSHARP_PROXY_PASSWORD")?;
        proxy = proxy.credentials(user, password);
    }
    Ok(wsharp::ProxySettings::all(proxy))
}

/// The TLS settings the options ask for (used for wss:// URLs). Files are read here, so that
/// an unreadable one is reported as such.
fn client_tls(args: &ConnectArgs) -> Result<wsharp::tls::ClientTls, wsharp::tls::TlsError> {
    let mut tls = wsharp::tls::ClientTls::new();
    for ca in &args.ca {
        tls = tls.add_ca_pem_file(ca);
    }
    if args.insecure {
        tracing::warn!("--insecure: the server's certificate is not verified");
        tls = tls.dangerous_accept_any_certificate();
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls.client_certificate_pem_files(cert, key);
    }
    if args.url.starts_with("wss:") {
        tls.build()?;
    }
    Ok(tls)
}

/// Runs the session; `Ok` when it closed normally.
pub(crate) async fn connect(args: ConnectArgs) -> Result<(), Failure> {
    let span = tracing::info_span!("connect", url = %args.url);
    tracing::Instrument::instrument(session(args), span).await
}

async fn session(args: ConnectArgs) -> Result<(), Failure> {
    let seconds = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| Failure::new(code::USAGE, format!("{what}: {s} is not a duration")))
    };
    let config = Config::default()
        .limits(Limits::default().max_message_size(args.max_message_size))
        .handshake_timeout(seconds(args.connect_timeout, "--connect-timeout")?)
        .close_timeout(seconds(args.close_timeout, "--close-timeout")?)
        .emit_control_frames(args.show_control)
        .keepalive_interval(
            args.keepalive
                .map(|s| seconds(s, "--keepalive"))
                .transpose()?,
        );
    let linger = seconds(args.linger, "--linger")?;
    let mut builder = ClientBuilder::new(args.url.as_str())
        .config(config)
        .subprotocols(args.protocols.iter().cloned())
        .compression((!args.no_compression).then(Deflate::default));
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin);
    }
    builder = builder.tls(client_tls(&args).map_err(|e| Failure::tls_setup(&e))?);
    if let Some(user) = &args.user {
        let (user, password) = credentials(user, "WSHARP_PASSWORD")?;
        builder = builder
            .credentials(user, password)
            .auth_scheme(match args.auth {
                AuthArg::Any => wsharp::auth::AuthScheme::Any,
                AuthArg::Basic => wsharp::auth::AuthScheme::Basic,
                AuthArg::Digest => wsharp::auth::AuthScheme::Digest,
            });
        builder = builder.preauthenticate(args.auth == AuthArg::Basic);
    }
    builder = builder.proxy_settings(proxy_settings(&args)?);
    if args.location {
        builder = builder.follow_redirects(args.max_redirs);
    }
    for cookie in &args.cookies {
        let (name, value) = cookie.split_once('=').ok_or_else(|| {
            Failure::new(
                code::USAGE,
                format!("--cookie {cookie:?}: expected `name=value`"),
            )
        })?;
        builder = builder.cookie(name.trim(), value.trim());
    }
    for header in &args.headers {
        let (name, value) = header.split_once(':').ok_or_else(|| {
            Failure::new(
                code::USAGE,
                format!("--header {header:?}: expected `Name: value`"),
            )
        })?;
        builder = builder.header(name.trim(), value.trim());
    }
    let mut ws = builder
        .connect()
        .await
        .map_err(|e| Failure::connecting(&args.url, &e))?;
    tracing::info!(
        protocol = ?ws.protocol(),
        compressed = ws.is_compressed(),
        "connected"
    );

    let terminal = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut lines = BufReader::new(tokio::io::stdin()).split(b'\n');
    let mut input_open = true;
    let ping_every = match args.ping_interval {
        Some(s) => Some(seconds(s, "--ping-interval")?),
        None => None,
    };
    let mut ticker = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut pings = 0u64;
    let mut closing = false;
    let linger_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(linger_timer);
    let mut lingering = false;

    loop {
        tokio::select! {
            line = lines.next_segment(), if input_open => {
                match line {
                    Ok(Some(mut line)) => {
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        let message = if args.binary {
                            Message::binary(line)
                        } else {
                            Message::text(String::from_utf8(line).map_err(|_| {
                                Failure::new(code::USAGE, "an input line is not UTF-8 (use --binary)")
                            })?)
                        };
                        ws.send(message).await.map_err(|e| Failure::ended(&e))?;
                    }
                    Ok(None) | Err(_) => {
                        // End of input: close (after the linger), then keep printing until the
                        // server's close.
                        input_open = false;
                        if linger.is_zero() {
                            if !closing {
                                closing = true;
                                ws.close(CloseCode::NORMAL, "").await.map_err(|e| Failure::ended(&e))?;
                            }
                        } else {
                            lingering = true;
                            linger_timer.as_mut().reset(tokio::time::Instant::now() + linger);
                        }
                    }
                }
            }
            () = &mut linger_timer, if lingering && !closing => {
                lingering = false;
                closing = true;
                ws.close(CloseCode::NORMAL, "").await.map_err(|e| Failure::ended(&e))?;
            }
            _ = ticker.tick(), if ping_every.is_some() && !closing => {
                pings += 1;
                ws.send(Message::Ping(pings.to_string().into())).await.map_err(|e| Failure::ended(&e))?;
                if args.show_control {
                    eprintln!("# ping {pings}");
                }
            }
            _ = tokio::signal::ctrl_c(), if !closing => {
                closing = true;
                input_open = false;
                ws.close(CloseCode::GOING_AWAY, "").await.map_err(|e| Failure::ended(&e))?;
            }
            message = ws.recv() => {
                let Some(message) = message else { break };
                if lingering {
                    linger_timer.as_mut().reset(tokio::time::Instant::now() + linger);
                }
                let written = match message.map_err(|e| Failure::ended(&e))? {
                    Message::Text(text) => {
                        let prefix = if terminal { "< " } else { "" };
                        writeln!(stdout, "{prefix}{}", text.as_str()).and_then(|()| stdout.flush())
                    }
                    Message::Binary(data) => stdout
                        .write_all(&data)
                        .and_then(|()| stdout.write_all(b"\n"))
                        .and_then(|()| stdout.flush()),
                    Message::Ping(data) => {
                        eprintln!("# ping {}", String::from_utf8_lossy(&data));
                        Ok(())
                    }
                    Message::Pong(data) => {
                        eprintln!("# pong {}", String::from_utf8_lossy(&data));
                        Ok(())
                    }
                    Message::Close(frame) => {
                        if args.show_control {
                            match &frame {
                                Some(f) => eprintln!("# close {} {}", f.code.0, f.reason.as_str()),
                                None => eprintln!("# close"),
                            }
                        }
                        Ok(())
                    }
                };
                if let Err(e) = written {
                    if !closing {
                        let _ = ws.close(CloseCode::GOING_AWAY, "").await;
                    }
                    return Err(Failure::new(code::FAILURE, format!("cannot write output: {e}")));
                }
            }
        }
    }
    let (code, reason) = ws
        .close_status()
        .map_or((CloseCode::ABNORMAL, String::new()), |s| {
            (s.code, s.reason.to_string())
        });
    tracing::info!(code = code.0, reason = %reason, "closed");
    Failure::closed(code, &reason).map_or(Ok(()), Err)
}
