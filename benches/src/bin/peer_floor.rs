//! `peer_floor --listen ADDR`: the floor of the echo benchmark, not a WebSocket implementation.
//! After the opening handshake it only counts the client's frames in the byte stream (headers
//! are located, payloads skipped, nothing is unmasked or checked) and, for each read, writes back
//! one pre-built unmasked frame of the same opcode and length per frame that read completed,
//! in one write. What is left is the kernel's cost of moving the bytes: the ceiling any
//! WebSocket server can reach on this machine. On a multi-thread tokio runtime with one worker,
//! like the other peers of the `suite` benchmark. With `--tls-cert` and `--tls-key` it does the
//! same over tokio-rustls: the TLS floor.

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use clap::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wsharp_proto::Limits;
use wsharp_proto::handshake::{
    HeadReader, accept_response, check_request, encode_response, parse_request,
};

/// The floor peer.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9004")]
    listen: std::net::SocketAddr,
    /// Serve TLS with this certificate chain (PEM), over tokio-rustls.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// The TLS acceptor, when serving TLS.
static TLS: OnceLock<tokio_rustls::TlsAcceptor> = OnceLock::new();

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let config = wsharp_bench::tls_server_config(cert, key)?;
        let _ = TLS.set(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    }
    wsharp_bench::serve_one_worker(args.listen, connection)
}

async fn connection(tcp: TcpStream) {
    match TLS.get() {
        None => {
            let _ = serve(tcp).await;
        }
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = serve(tls).await;
            }
        }
    }
}

/// A frame header as the counter sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    opcode: u8,
    len: u64,
}

/// The length of the header at the start of `b` and the frame's shape, once `b` holds it.
fn header(b: &[u8]) -> Option<(usize, Shape)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    let (ext, len) = match b1 & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)),
        n => (0, u64::from(n)),
    };
    let size = 2 + ext + mask;
    (b.len() >= size).then_some((
        size,
        Shape {
            opcode: b0 & 0x0f,
            len,
        },
    ))
}

/// One unmasked final frame of `shape`, payload bytes 'x'.
fn server_frame(shape: Shape) -> Vec<u8> {
    let mut f = vec![0x80 | shape.opcode];
    match shape.len {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&n.to_be_bytes());
        }
    }
    f.resize(f.len() + shape.len as usize, b'x');
    f
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut tcp: S) -> std::io::Result<()> {
    let limits = Limits::default();
    let mut reader = HeadReader::new(limits.max_handshake_size);
    let head = loop {
        if let Some(head) = reader.poll_head().map_err(std::io::Error::other)? {
            break head;
        }
        if tcp.read_buf(reader.buffer()).await? == 0 {
            return Ok(());
        }
    };
    let request = parse_request(&head, &limits).map_err(std::io::Error::other)?;
    let upgrade = check_request(&request).map_err(std::io::Error::other)?;
    let response = accept_response(&upgrade, None).map_err(std::io::Error::other)?;
    let mut out = BytesMut::new();
    encode_response(&response, b"", &mut out);
    tcp.write_all(&out).await?;

    let mut pending = reader.into_rest().to_vec();
    let mut buf = vec![0u8; 256 << 10];
    let mut reply: Vec<u8> = Vec::new();
    let mut frame: Option<(Shape, Vec<u8>)> = None;
    // Payload bytes of the current frame still to skip.
    let mut skip: u64 = 0;
    loop {
        let mut offset = 0;
        let data: &[u8] = if pending.is_empty() {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            &buf[..n]
        } else {
            &pending
        };
        let mut owned_tail = Vec::new();
        while offset < data.len() {
            if skip > 0 {
                let step = skip.min((data.len() - offset) as u64);
                skip -= step;
                offset += step as usize;
                if skip == 0 {
                    reply.extend_from_slice(&frame.as_ref().expect("a frame is open").1);
                }
                continue;
            }
            let Some((size, shape)) = header(&data[offset..]) else {
                // A header split across reads: keep its start for the next read.
                owned_tail.extend_from_slice(&data[offset..]);
                break;
            };
            offset += size;
            if shape.opcode == 0x8 {
                reply.extend_from_slice(&[0x88, 0]);
                tcp.write_all(&reply).await?;
                return tcp.shutdown().await;
            }
            if frame.as_ref().is_none_or(|(s, _)| *s != shape) {
                frame = Some((shape, server_frame(shape)));
            }
            skip = shape.len;
            if skip == 0 {
                reply.extend_from_slice(&frame.as_ref().expect("just set").1);
            }
        }
        if !reply.is_empty() {
            tcp.write_all(&reply).await?;
            reply.clear();
        }
        if owned_tail.is_empty() {
            pending.clear();
        } else {
            // Prepend the partial header to the next read.
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            owned_tail.extend_from_slice(&buf[..n]);
            pending = owned_tail;
        }
    }
}
