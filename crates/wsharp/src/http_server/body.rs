//! Response bodies of handlers: whole, or streamed from a reader or a channel (websocket-sharp's
//! `SendChunked` and `OutputStream`), and [`Abort`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::Response;
use http_body_util::channel::{Channel, Sender};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, SizeHint};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest chunk [`Body::from_reader`] reads at once.
const READ_CHUNK: usize = 64 << 10;

/// The body of a response from a handler registered with
/// [`HttpServer::on_body`](super::HttpServer::on_body): whole (from [`Bytes`], a `Vec<u8>`, a
/// `String`, ...; sent with a `Content-Length`), or streamed with chunked transfer encoding,
/// its length unknown in advance (websocket-sharp's `SendChunked`), from
/// [`from_reader`](Self::from_reader) or [`channel`](Self::channel).
///
/// A streamed body holds a bounded amount in memory: it is produced as the client reads it.
/// When it fails (the reader fails, or [`BodySender::abort`]), the connection is closed
/// without the body's last chunk, so the client sees an incomplete response.
///
/// ```
/// use wsharp::http_server::Body;
/// let whole = Body::from("hello");
/// let streamed = Body::from_reader(&b"hello"[..]);
/// let (sender, from_a_task) = Body::channel(4);
/// ```
pub struct Body(UnsyncBoxBody<Bytes, BoxError>);

impl Body {
    /// Any [`http_body::Body`](hyper::body::Body) of [`Bytes`], e.g. one of `http_body_util`'s.
    pub fn new<B>(body: B) -> Self
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from(Bytes::new())
    }

    /// A body streamed from `reader` until its end, read in chunks of at most 64 KiB, each read
    /// when the connection can take more (websocket-sharp's `OutputStream` with `SendChunked`).
    ///
    /// ```
    /// use wsharp::http::{Method, Response, StatusCode};
    /// use wsharp::http_server::{Body, HttpServer};
    ///
    /// fn serve_log(server: &HttpServer) {
    ///     server.on_body(Method::GET, |_req| async {
    ///         match tokio::fs::File::open("server.log").await {
    ///             Ok(file) => Response::new(Body::from_reader(file)),
    ///             Err(_) => {
    ///                 let mut response = Response::new(Body::empty());
    ///                 *response.status_mut() = StatusCode::NOT_FOUND;
    ///                 response
    ///             }
    ///         }
    ///     });
    /// }
    /// ```
    pub fn from_reader<R>(reader: R) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        let frames = ReaderStream::with_capacity(reader, READ_CHUNK).map_ok(Frame::data);
        Self::new(StreamBody::new(frames))
    }

    /// A body streamed from a [`BodySender`], typically moved into a task that writes the chunks:
    /// at most `capacity` chunks wait to be sent, and [`BodySender::send`] waits while the client
    /// is slow to read. The body ends when the sender is dropped.
    ///
    /// # Panics
    /// If `capacity` is 0.
    ///
    /// ```
    /// use wsharp::http::{Method, Response};
    /// use wsharp::http_server::{Body, HttpServer};
    ///
    /// fn count(server: &HttpServer) {
    ///     server.on_body(Method::GET, |_req| async {
    ///         let (mut sender, body) = Body::channel(8);
    ///         tokio::spawn(async move {
    ///             for i in 0..1000 {
    ///                 if sender.send(format!("{i}\n")).await.is_err() {
    ///                     return; // the client has gone
    ///                 }
    ///             }
    ///         });
    ///         Response::new(body)
    ///     });
    /// }
    /// ```
    pub fn channel(capacity: usize) -> (BodySender, Self) {
        let (sender, body) = Channel::new(capacity);
        (BodySender(sender), Self::new(body))
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("size_hint", &hyper::body::Body::size_hint(&self.0))
            .finish_non_exhaustive()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::new(Full::new(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Writes the chunks of a [`Body::channel`] (websocket-sharp's `OutputStream`). Dropping it
/// ends the body.
pub struct BodySender(Sender<Bytes, BoxError>);

impl BodySender {
    /// Sends a chunk, waiting while the channel is full (the client reads slower than the
    /// chunks come).
    ///
    /// # Errors
    /// [`BodyClosed`] when the response is no longer sent: the client has gone.
    pub async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), BodyClosed> {
        self.0.send_data(chunk.into()).await.map_err(|_| BodyClosed)
    }

    /// Ends the body in failure: once the chunks already sent are written, the connection is
    /// closed without the body's last chunk, so the client sees an incomplete response.
    pub fn abort(self) {
        self.0.abort(Box::new(Aborted));
    }
}

impl std::fmt::Debug for BodySender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySender").finish_non_exhaustive()
    }
}

/// The client no longer reads the response body of a [`BodySender`]: the connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body is no longer sent: the connection is gone")]
pub struct BodyClosed;

/// A handler's answer that closes the connection without a response (websocket-sharp's
/// `HttpListenerResponse.Abort`): the marker in the extensions of [`Abort::response`].
///
/// ```
/// use bytes::Bytes;
/// use wsharp::http::{Method, Request, Response};
/// use wsharp::http_server::{Abort, HttpServer};
///
/// fn guard(server: &HttpServer) {
///     server.on(Method::POST, |req: Request<Bytes>| async move {
///         if req.body().is_empty() {
///             return Abort::response();
///         }
///         Response::new(req.into_body())
///     });
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Abort;

impl Abort {
    /// A response that is never sent: the server closes the connection instead.
    pub fn response<B: Default>() -> Response<B> {
        let mut response = Response::new(B::default());
        response.extensions_mut().insert(Self);
        response
    }

    /// Whether `response` is an [`Abort::response`].
    pub fn is_abort<B>(response: &Response<B>) -> bool {
        response.extensions().get::<Self>().is_some()
    }
}

/// Why the server closed a connection without (all of) a response.
#[derive(Debug, thiserror::Error)]
#[error("the handler aborted the response")]
pub(crate) struct Aborted;
