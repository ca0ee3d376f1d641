//! [`HttpServer`]: plain HTTP (static files, per-method handlers) and the WebSocket services on
//! one port, on hyper (websocket-sharp's `HttpServer`). [`upgrade`] hands an upgraded hyper or
//! axum request to a wsharp service or a plain [`WebSocket`](crate::WebSocket).

mod body;
mod files;
mod server;
mod upgrade;

pub use body::{Abort, Body, BodyClosed, BodySender};
pub use server::{HttpServer, HttpServerOptions};
pub use upgrade::{UpgradeResponse, upgrade};
