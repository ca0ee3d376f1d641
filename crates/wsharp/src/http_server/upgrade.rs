//! Upgrading a hyper request (and so an axum one) to a wsharp WebSocket.

use bytes::Bytes;
use http::{Request, Response};
use hyper_util::rt::TokioIo;
use wsharp_proto::Role;

use crate::error::{Error, Result};
use crate::server::{BoxIo, Refusal, ServerBuilder};
use crate::socket::WebSocket;

/// The response to return to hyper, and a future that resolves to the WebSocket once hyper has
/// switched protocols.
pub struct UpgradeResponse {
    /// Return this response from the hyper (or axum) handler.
    pub response: Response<Bytes>,
    /// Await this (in a spawned task) for the WebSocket.
    pub websocket: std::pin::Pin<Box<dyn Future<Output = Result<WebSocket<BoxIo>>> + Send>>,
}

impl std::fmt::Debug for UpgradeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeResponse")
            .field("response", &self.response)
            .finish_non_exhaustive()
    }
}

/// Checks an upgrade request that hyper (or axum) received and prepares the switch, with the
/// settings of `server` (hook, subprotocols, compression, limits). Return
/// [`UpgradeResponse::response`] from the handler and await [`UpgradeResponse::websocket`] in
/// a task.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use wsharp::http_server::upgrade;
///
/// async fn handle(req: wsharp::http::Request<hyper::body::Incoming>) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
///     let up = match upgrade(req, &wsharp::ServerBuilder::new()) {
///         Ok(up) => up,
///         Err(refusal) => return Ok(refusal.into_response().map(|b| Full::new(Bytes::from(b)))),
///     };
///     tokio::spawn(async move {
///         if let Ok(mut ws) = up.websocket.await {
///             while let Some(Ok(msg)) = ws.recv().await {
///                 if msg.is_data() && ws.send(msg).await.is_err() {
///                     break;
///                 }
///             }
///         }
///     });
///     Ok(up.response.map(Full::new))
/// }
/// ```
///
/// # Errors
/// The [`Refusal`] to send back (400, 426, or the hook's own) when the request is not a
/// valid upgrade.
pub fn upgrade<B>(request: Request<B>, server: &ServerBuilder) -> Result<UpgradeResponse, Refusal> {
    let (parts, body) = request.into_parts();
    let head = Request::from_parts(parts, ());
    let decision = server.decide(&head)?;
    let mut request = Request::from_parts(head.into_parts().0, body);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (response, conn, protocol) = decision;
    let websocket = Box::pin(async move {
        let upgraded = on_upgrade
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let io: BoxIo = Box::new(TokioIo::new(upgraded));
        debug_assert_eq!(conn.role(), Role::Server);
        Ok(WebSocket::from_connection(io, conn, &[], protocol))
    });
    Ok(UpgradeResponse {
        response: response.map(|()| Bytes::new()),
        websocket,
    })
}
