//! Integration tests of the tokio layer: real sockets on loopback, real peers.

mod auth;
mod blocking;
mod client_handshake;
mod close;
#[cfg(feature = "redis")]
mod cluster;
mod config_edges;
mod dead_peer;
mod deflate_finished;
mod faults;
mod framework;
mod framework_wire;
mod http_body;
mod http_limits;
mod interop_node;
mod interop_python;
mod peer_and_url;
mod pings;
#[cfg(feature = "tls")]
mod proxy;
#[cfg(feature = "tls")]
mod redirect;
mod restart;
mod server_handshake;
mod session_context;
mod shutdown;
mod streamed;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_stream;
mod util;
