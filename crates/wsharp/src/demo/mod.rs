//! The behaviors of websocket-sharp's example servers, ready to mount: [`Echo`] and [`Chat`].
//!
//! ```no_run
//! # async fn run() -> wsharp::Result<()> {
//! use wsharp::demo::{Chat, Echo};
//! use wsharp::server::WebSocketServer;
//!
//! let server = WebSocketServer::bind("127.0.0.1:4649").await?;
//! server.add_service("/Echo", || Echo)?;
//! let chat = Chat::factory("");
//! server.add_service("/Chat", chat)?;
//! let nyan = Chat::factory(" Nyan!");
//! server.add_service("/ChatWithNyan", nyan)?;
//! server.start();
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Message;
use crate::server::{Behavior, CloseStatus, Session};

/// Sends every text or binary message back to its sender.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Behavior for Echo {
    async fn on_message(&mut self, session: &Session, message: Message) {
        if message.is_data() {
            let _ = session.send(message).await;
        }
    }
}

/// A chat room: names come from `?name=` or are `Anon#N`; every message goes to everyone as
/// `name: text` (plus the room's suffix), with "has logged in!" and "got logged off..." notices.
#[derive(Debug)]
pub struct Chat {
    name: String,
    suffix: Arc<str>,
    counter: Arc<AtomicUsize>,
    /// Appended to anonymous names: the node's id in a cluster, so that two nodes never hand
    /// out the same name.
    node: Arc<str>,
}

impl Chat {
    /// A factory of chat behaviors sharing one `Anon#N` counter; `suffix` is appended to each
    /// message (websocket-sharp's `ChatWithNyan` uses `" Nyan!"`).
    pub fn factory(suffix: &str) -> impl Fn() -> Self + Send + Sync + 'static {
        Self::factory_on_node(suffix, "")
    }

    /// As [`factory`](Self::factory), for one node of a cluster: anonymous names are
    /// `Anon#N@node`, unique across nodes whose ids differ.
    pub fn factory_on_node(suffix: &str, node: &str) -> impl Fn() -> Self + Send + Sync + 'static {
        let suffix: Arc<str> = suffix.into();
        let node: Arc<str> = if node.is_empty() {
            "".into()
        } else {
            format!("@{node}").into()
        };
        let counter = Arc::new(AtomicUsize::new(0));
        move || Self {
            name: String::new(),
            suffix: suffix.clone(),
            counter: counter.clone(),
            node: node.clone(),
        }
    }
}

impl Behavior for Chat {
    async fn on_open(&mut self, session: &Session) {
        self.name = match session.query("name") {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => format!(
                "Anon#{}{}",
                self.counter.fetch_add(1, Ordering::Relaxed) + 1,
                self.node
            ),
        };
        let _ = session
            .sessions()
            .broadcast(format!("{} has logged in!", self.name));
    }

    async fn on_message(&mut self, session: &Session, message: Message) {
        if let Message::Text(text) = message {
            let _ = session
                .sessions()
                .broadcast(format!("{}: {}{}", self.name, text, self.suffix));
        }
    }

    async fn on_close(&mut self, session: &Session, _close: &CloseStatus) {
        let _ = session
            .sessions()
            .broadcast(format!("{} got logged off...", self.name));
    }
}

/// The browser page of the HTTP server example: an echo test against `/Echo` (text and binary
/// round trips) and a small chat on `/Chat`.
pub const INDEX_HTML: &str = include_str!("index.html");

/// The demo's visitor cookie (a [`CookiesValidator`](crate::server::CookiesValidator)): an
/// upgrade without a `wsharp-visitor` cookie gets one on its 101 (`Path=/`, `SameSite=Strict`,
/// 64 random bits); one that carries it is logged as a returning visitor. Never refuses.
///
/// ```
/// use wsharp::demo::visitor_cookie;
/// use wsharp::server::CookiesValidator;
/// let mut set = Vec::new();
/// assert!(visitor_cookie(&[], &mut set));
/// assert!(set[0].starts_with("wsharp-visitor="));
/// ```
pub fn visitor_cookie(request: &[(String, String)], response: &mut Vec<String>) -> bool {
    match request.iter().find(|(name, _)| name == VISITOR) {
        Some((_, id)) => tracing::info!(visitor = %id, "a returning visitor"),
        None => {
            let id: u64 = rand::random();
            response.push(format!("{VISITOR}={id:016x}; Path=/; SameSite=Strict"));
        }
    }
    true
}

/// The name of the [`visitor_cookie`].
const VISITOR: &str = "wsharp-visitor";
