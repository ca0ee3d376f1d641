//! Proxies: HTTP CONNECT ([`tunnel`]) and SOCKS5 ([`socks`]), chosen explicitly or from the
//! environment ([`env`]).

mod env;
mod socks;
mod tunnel;

use std::sync::Arc;

use http::{HeaderMap, StatusCode, Uri};

use crate::auth::{AuthError, AuthScheme, ClientAuth, Credentials};

/// A proxy to reach servers through.
///
/// ```
/// use wsharp::Proxy;
/// let proxy = Proxy::parse("http://nobita:s%65kret@127.0.0.1:3128")?;
/// assert_eq!(proxy.to_string(), "http://127.0.0.1:3128"); // credentials never shown
/// let socks = Proxy::parse("socks5h://127.0.0.1:1080")?;
/// # Ok::<(), wsharp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    auth: ClientAuth,
}

/// What kind of proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy, asked for a tunnel with `CONNECT` (`http://`).
    Http,
    /// SOCKS5, the client resolving the target's name (`socks5://`).
    Socks5,
    /// SOCKS5, the proxy resolving the target's name (`socks5h://`).
    Socks5h,
}

impl Proxy {
    /// A proxy from its URL: `http://[user:password@]host[:port]` (port 80 by default; a URL
    /// without a scheme is `http`), `socks5://` or `socks5h://` (port 1080 by default). The
    /// user-info is percent-decoded into the proxy's credentials.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) for another scheme (`https://` proxies,
    /// TLS to the proxy itself, are not supported) or a URL without a host.
    pub fn parse(url: &str) -> crate::Result<Self> {
        let invalid = |why: &str| crate::Error::InvalidUrl(format!("proxy {url:?}: {why}"));
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let (scheme, rest) = with_scheme.split_once("://").expect("has a scheme");
        let (kind, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (ProxyKind::Http, 80),
            "socks5" => (ProxyKind::Socks5, 1080),
            "socks5h" => (ProxyKind::Socks5h, 1080),
            "https" => return Err(invalid("TLS to the proxy (https://) is not supported")),
            other => return Err(invalid(&format!("unknown scheme {other:?}"))),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let parsed: http::uri::Authority =
            hostport.parse().map_err(|_| invalid("no valid host"))?;
        let host = parsed
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let mut auth = ClientAuth::default();
        if let Some(userinfo) = userinfo {
            auth.set_credentials(Credentials::from_userinfo(userinfo));
        }
        Ok(Self {
            kind,
            host,
            port: parsed.port_u16().unwrap_or(default_port),
            auth,
        })
    }

    /// Sets the credentials for the proxy (instead of those in its URL).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth.set_credentials(Credentials::new(user, password));
        self
    }

    /// Which schemes may answer the proxy's 407 (default: the strongest offered).
    pub fn auth_scheme(mut self, scheme: AuthScheme) -> Self {
        self.auth.set_scheme(scheme);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for Proxy {
    /// The proxy's URL without credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where a client's connections go: straight to the server, through one proxy, or through the
/// proxy the environment names for each URL.
#[derive(Clone, Default)]
pub struct ProxySettings(Choice);

#[derive(Clone, Default)]
enum Choice {
    /// The environment, read at each connection.
    #[default]
    FromEnv,
    Direct,
    Fixed(Proxy),
    Rules(Arc<env::Rules>),
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Choice::FromEnv => f.write_str("ProxySettings::from_env()"),
            Choice::Direct => f.write_str("ProxySettings::none()"),
            Choice::Fixed(p) => write!(f, "ProxySettings::all({p})"),
            Choice::Rules(_) => f.write_str("ProxySettings::from_vars(..)"),
        }
    }
}

impl ProxySettings {
    /// The proxies of the environment, read when each connection is made (the default):
    /// `all_proxy`, `https_proxy` for `wss://`, `http_proxy` for `ws://`, lower case first, then
    /// the upper-case names (`HTTP_PROXY` is ignored when `REQUEST_METHOD` is set: a CGI
    /// program's environment holds the request's headers), and `no_proxy`: host names (`a.b`
    /// and `.a.b` both match `a.b` and its subdomains), `*`, IP addresses, CIDR ranges, and
    /// `host:port` entries for one port.
    pub fn from_env() -> Self {
        Self(Choice::FromEnv)
    }

    /// As [`from_env`](Self::from_env), with the variables from `lookup` instead of the
    /// process's environment (tests, configuration files).
    ///
    /// ```
    /// use wsharp::ProxySettings;
    /// let vars = [("https_proxy", "http://127.0.0.1:3128"), ("no_proxy", ".internal")];
    /// let proxies = ProxySettings::from_vars(|name| {
    ///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    /// });
    /// assert!(proxies.proxy_for("wss://example.com/").is_some());
    /// assert!(proxies.proxy_for("ws://example.com/").is_none());
    /// assert!(proxies.proxy_for("wss://db.internal/").is_none());
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self(Choice::Rules(Arc::new(env::Rules::new(lookup))))
    }

    /// No proxy, whatever the environment says.
    pub fn none() -> Self {
        Self(Choice::Direct)
    }

    /// Every connection through `proxy`.
    pub fn all(proxy: Proxy) -> Self {
        Self(Choice::Fixed(proxy))
    }

    /// The proxy a connection to `url` goes through, if any.
    pub fn proxy_for(&self, url: &str) -> Option<Proxy> {
        let uri: Uri = url.parse().ok()?;
        self.resolve(&uri)
    }

    pub(crate) fn resolve(&self, uri: &Uri) -> Option<Proxy> {
        match &self.0 {
            Choice::Direct => None,
            Choice::Fixed(p) => Some(p.clone()),
            Choice::Rules(rules) => rules.proxy_for(uri),
            Choice::FromEnv => env::Rules::new(|name| std::env::var(name).ok()).proxy_for(uri),
        }
    }
}

/// A proxy failed us: it could not be reached, wanted credentials, or refused the tunnel.
#[derive(Debug)]
#[non_exhaustive]
pub struct ProxyError {
    /// The proxy, without credentials.
    pub proxy: String,
    /// What went wrong.
    pub failure: ProxyFailure,
}

/// What went wrong with a proxy.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The proxy could not be reached.
    Unreachable(std::io::Error),
    /// Proxy authentication failed (407): no credentials, refused ones, or no scheme we can
    /// answer.
    Auth(AuthError),
    /// The proxy refused the tunnel with this status (a 403 by its rules, a 502 when it could not
    /// reach the server).
    Refused {
        /// The status.
        status: StatusCode,
        /// The reply's headers.
        headers: Box<HeaderMap>,
    },
    /// The proxy's reply was not HTTP, too long, or the SOCKS exchange failed.
    Protocol(String),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proxy {}: ", self.proxy)?;
        match &self.failure {
            ProxyFailure::Unreachable(e) => write!(f, "cannot connect: {e}"),
            ProxyFailure::Auth(e) => write!(f, "authentication failed: {e}"),
            ProxyFailure::Refused { status, .. } => write!(f, "tunnel refused: {status}"),
            ProxyFailure::Protocol(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ProxyError {}

impl Proxy {
    pub(crate) fn error(&self, failure: ProxyFailure) -> crate::Error {
        crate::Error::Proxy(Box::new(ProxyError {
            proxy: self.to_string(),
            failure,
        }))
    }

    /// A TCP connection to the proxy.
    async fn reach(&self) -> crate::Result<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.error(ProxyFailure::Unreachable(e)))?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    /// A TCP stream that reaches `host:port` through this proxy, ready for TLS or the upgrade.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        limits: &wsharp_proto::Limits,
    ) -> crate::Result<tokio::net::TcpStream> {
        match self.kind {
            ProxyKind::Http => tunnel::connect(self, host, port, limits).await,
            ProxyKind::Socks5 | ProxyKind::Socks5h => socks::connect(self, host, port).await,
        }
    }

    /// As [`connect`](Self::connect), blocking.
    pub(crate) fn connect_blocking(
        &self,
        host: &str,
        port: u16,
        limits: &wsharp_proto::Limits,
        deadline: std::time::Instant,
    ) -> crate::Result<std::net::TcpStream> {
        match self.kind {
            ProxyKind::Http => tunnel::connect_blocking(self, host, port, limits, deadline),
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                socks::connect_blocking(self, host, port, deadline)
            }
        }
    }
}
