//! `wsharp serve`: the HTTP server example's setup (the page, `/Echo` and `/Chat`).

use std::net::SocketAddr;
use std::path::PathBuf;

use wsharp::auth::{Authenticator, Users};
use wsharp::cluster::{RedisBackplane, RedisOptions};
use wsharp::demo::{Chat, Echo, INDEX_HTML, visitor_cookie};
use wsharp::http_server::{HttpServer, HttpServerOptions};
use wsharp::server::ServiceOptions;

use crate::exit::{Failure, code};

/// The authentication options of `wsharp serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuthArgs {
    /// Demand HTTP authentication for the page, the files and the services: `basic` (send it
    /// over https only: the password crosses in the clear) or `digest` (SHA-256 and MD5).
    #[arg(long, value_enum, value_name = "SCHEME", requires = "users")]
    auth: Option<AuthScheme>,
    /// The realm named in the challenge.
    #[arg(long, default_value = "wsharp", value_name = "REALM")]
    realm: String,
    /// The users: `user:password` lines, `#` comments.
    #[arg(long, value_name = "FILE", requires = "auth")]
    users: Option<PathBuf>,
}

/// The cluster options of `wsharp serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Run as one node of a cluster through this Redis (`redis://host:port/`): broadcasts,
    /// the chat included, reach the sessions of every node.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// This node's id in the cluster (default: random).
    #[arg(long, value_name = "ID", requires = "redis")]
    node_id: Option<String>,
    /// The prefix of the cluster's keys and channels in Redis.
    #[arg(
        long,
        default_value = "wsharp",
        value_name = "PREFIX",
        requires = "redis"
    )]
    redis_prefix: String,
    /// How long a dead node's sessions stay registered, in seconds (the heartbeat is a fifth).
    #[arg(
        long,
        default_value_t = 15.0,
        value_name = "SECONDS",
        requires = "redis"
    )]
    redis_ttl: f64,
}

impl ClusterArgs {
    /// The backplane asked for.
    pub(crate) fn backplane(self) -> Result<Option<RedisBackplane>, Failure> {
        let Some(url) = self.redis else {
            return Ok(None);
        };
        let ttl = std::time::Duration::try_from_secs_f64(self.redis_ttl)
            .map_err(|e| Failure::new(code::USAGE, format!("--redis-ttl: {e}")))?;
        let mut options = RedisOptions::new(&url)
            .prefix(self.redis_prefix)
            .heartbeat(ttl / 5, ttl);
        if let Some(id) = self.node_id {
            options = options.node_id(id);
        }
        let backplane = RedisBackplane::new(options)
            .map_err(|e| Failure::new(code::USAGE, format!("--redis {url}: {e}")))?;
        tracing::info!(node = backplane.node_id(), "cluster node through {url}");
        Ok(Some(backplane))
    }
}

/// `--auth`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuthScheme {
    Basic,
    Digest,
}

impl AuthArgs {
    /// The authenticator asked for, its users read now.
    pub(crate) fn authenticator(self) -> Result<Option<Authenticator>, Failure> {
        let (Some(scheme), Some(file)) = (self.auth, self.users) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Failure::new(code::USAGE, format!("--users {}: {e}", file.display())))?;
        let users = Users::parse(&text)
            .map_err(|e| Failure::new(code::USAGE, format!("--users {}: {e}", file.display())))?;
        tracing::info!(users = users.len(), realm = %self.realm, "authentication: {scheme:?}");
        Ok(Some(match scheme {
            AuthScheme::Basic => Authenticator::basic(self.realm, users),
            AuthScheme::Digest => Authenticator::digest(self.realm, users),
        }))
    }
}

/// Serves the built-in page at `/` (unless `root` has its own `index.html`), the files of
/// `root`, and the `/Echo` and `/Chat` services, until Ctrl-C; then closes every session with
/// 1001.
pub(crate) async fn serve(
    listen: SocketAddr,
    root: Option<PathBuf>,
    tls: Option<wsharp::tls::ServerTls>,
    auth: Option<Authenticator>,
    backplane: Option<RedisBackplane>,
) -> Result<(), Failure> {
    let root = root.unwrap_or_else(|| PathBuf::from("./public"));
    let secure = tls.is_some();
    let mut options = HttpServerOptions::default()
        .document_root(&root)
        .index_page(INDEX_HTML);
    if let Some(tls) = tls {
        options = options.tls(tls);
    }
    if let Some(auth) = auth {
        options = options.auth(auth);
    }
    let server = HttpServer::bind(listen, options)
        .await
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot listen on {listen}: {e}")))?;
    // Each service hands out the demo's visitor cookie and logs it when it comes back.
    let options = ServiceOptions::default().cookies(visitor_cookie);
    server.add_service_with("/Echo", options.clone(), || Echo)?;
    let node = backplane.as_ref().map_or("", RedisBackplane::node_id);
    server.add_service_with("/Chat", options, Chat::factory_on_node("", node))?;
    if let Some(backplane) = backplane {
        server.set_backplane(backplane);
    }
    server.start();
    let addr = server.local_addr();
    let (http, ws) = if secure {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    tracing::info!(
        "serving {http}://{addr}/ with {ws}://{addr}/Echo and {ws}://{addr}/Chat (files from {})",
        root.display()
    );
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping: closing every session with 1001");
    server.stop().await;
    Ok(())
}
