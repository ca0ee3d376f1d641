use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use wsharp::ServerBuilder;

pub(crate) use wsharp_testkit::peers::python;
pub(crate) use wsharp_testkit::raw::{
    UPGRADE, accept as raw_accept, client_frame, exchange as raw_exchange, read_head,
};
pub(crate) use wsharp_testkit::{LIMIT, bounded};

pub(crate) fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(name)
}

/// An echo server on a free loopback port, accepting with `server`; returns its address.
pub(crate) async fn echo_server(server: ServerBuilder) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = server.accept(tcp).await else {
                    return;
                };
                while let Some(msg) = ws.recv().await {
                    match msg {
                        Ok(m) if m.is_data() => {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {}
                    }
                }
            });
        }
    });
    addr
}
