//! [`Behavior`]: what a service does with each session (websocket-sharp's `WebSocketBehavior`).

use std::future::Future;

use wsharp_proto::{CloseStatus, Message};

use super::session::Session;
use crate::error::Error;

/// The callbacks of one session. A service makes a fresh value for each session, so `self`
/// holds per-session state; shared state goes in an `Arc` the factory clones.
///
/// Callbacks of one session run one at a time, in order; meanwhile the session keeps reading
/// into a bounded queue. A callback that panics closes its session with 1011 and no other.
///
/// ```
/// use wsharp::server::{Behavior, Session};
/// use wsharp::Message;
///
/// struct Echo;
///
/// impl Behavior for Echo {
///     async fn on_message(&mut self, session: &Session, message: Message) {
///         let _ = session.send(message).await;
///     }
/// }
/// ```
pub trait Behavior: Send + 'static {
    /// The session is open.
    fn on_open(&mut self, session: &Session) -> impl Future<Output = ()> + Send {
        let _ = session;
        async {}
    }

    /// A text or binary message arrived (and pings/pongs when the service emits them).
    fn on_message(
        &mut self,
        session: &Session,
        message: Message,
    ) -> impl Future<Output = ()> + Send;

    /// The connection failed: a protocol error (the close code is already sent) or I/O.
    fn on_error(&mut self, session: &Session, error: &Error) -> impl Future<Output = ()> + Send {
        let _ = (session, error);
        async {}
    }

    /// The session ended. Called once, last.
    fn on_close(
        &mut self,
        session: &Session,
        close: &CloseStatus,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, close);
        async {}
    }
}
