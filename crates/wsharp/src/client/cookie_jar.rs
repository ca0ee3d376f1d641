//! [`CookieJar`]: the client's cookie store, kept between connections.

use std::sync::Mutex;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Uri};

/// Cookies a server set, kept for the next connections to it: the `Set-Cookie` headers of
/// every handshake response (the 101, and 401s and redirects too) are stored, and each
/// upgrade request carries the cookies that match its URL, as a browser would send them:
/// domain, path, expiry and `Secure` honoured (a `Secure` cookie goes only over `wss://` or to
/// a loopback host). Built on the `cookie_store` crate; `ws` URLs count as `http`, `wss` as
/// `https`. Share one jar between builders with an `Arc`.
///
/// ```no_run
/// # async fn run() -> wsharp::Result<()> {
/// use std::sync::Arc;
/// use wsharp::CookieJar;
/// let jar = Arc::new(CookieJar::new());
/// let first = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/").cookie_jar(jar.clone()).connect().await?;
/// // The next connection sends what the first one was given.
/// let second = wsharp::ClientBuilder::new("ws://127.0.0.1:9001/").cookie_jar(jar.clone()).connect().await?;
/// println!("{:?}", jar.cookies("ws://127.0.0.1:9001/"));
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct CookieJar(Mutex<cookie_store::CookieStore>);

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cookies a request to `url` would carry, as name/value pairs.
    pub fn cookies(&self, url: &str) -> Vec<(String, String)> {
        let Some(url) = url.parse::<Uri>().ok().and_then(|u| http_url(&u)) else {
            return Vec::new();
        };
        let store = self.0.lock().expect("not poisoned");
        store
            .get_request_values(&url)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }

    /// The `Cookie` header for a request to `uri`, if any cookie matches.
    pub(crate) fn header_for(&self, uri: &Uri) -> Option<HeaderValue> {
        let url = http_url(uri)?;
        let store = self.0.lock().expect("not poisoned");
        let value = store
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        drop(store);
        (!value.is_empty())
            .then(|| HeaderValue::from_str(&value).ok())
            .flatten()
    }

    /// Keeps the `Set-Cookie`s of a response to a request for `uri`.
    pub(crate) fn store(&self, uri: &Uri, headers: &HeaderMap) {
        let Some(url) = http_url(uri) else { return };
        let cookies = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie_store::RawCookie::parse(v.to_owned()).ok());
        let mut store = self.0.lock().expect("not poisoned");
        store.store_response_cookies(cookies, &url);
    }
}

/// `uri` with `ws` as `http` and `wss` as `https`, as cookie rules know them.
fn http_url(uri: &Uri) -> Option<url::Url> {
    let scheme = match uri.scheme_str()? {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    let authority = uri.authority()?.as_str();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    url::Url::parse(&format!("{scheme}://{authority}{path}")).ok()
}

/// Adds the jar's cookies for `uri` to `headers`, after any set on the builder, in the one
/// `Cookie` header a request may carry (RFC 6265 §5.4).
pub(crate) fn add_cookies(jar: &CookieJar, uri: &Uri, headers: &mut HeaderMap) {
    let Some(value) = jar.header_for(uri) else {
        return;
    };
    let merged = match headers.get(COOKIE) {
        Some(set) => {
            let mut joined = set.as_bytes().to_vec();
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(value.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or(value)
        }
        None => value,
    };
    headers.insert(COOKIE, merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(headers: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for h in headers {
            map.append(SET_COOKIE, HeaderValue::from_str(h).unwrap());
        }
        map
    }

    #[test]
    fn domain_path_secure_and_expiry() {
        let jar = CookieJar::new();
        let uri: Uri = "ws://app.example/chat/room".parse().unwrap();
        jar.store(
            &uri,
            &set(&[
                "a=1",
                "b=2; Path=/other",
                "c=3; Secure",
                "d=4; Max-Age=0",
                "e=5; Domain=other.example",
                "g=7; Domain=example",
                "f=6; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            ]),
        );
        let mut names: Vec<_> = jar
            .cookies("ws://app.example/chat/x")
            .into_iter()
            .map(|c| c.0)
            .collect();
        // The jar keeps no order.
        names.sort();
        assert_eq!(names, ["a", "g"]);
        // A cookie for the parent domain goes to its other hosts; the rest do not.
        let other: Vec<_> = jar
            .cookies("ws://other.example/chat/x")
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(other, ["g"]);
        let secure: Vec<_> = jar
            .cookies("wss://app.example/chat/x")
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(secure.len(), 3, "{secure:?}");
        jar.clear();
        assert!(jar.cookies("wss://app.example/chat/x").is_empty());
    }

    #[test]
    fn a_secure_cookie_goes_to_a_loopback_host_over_ws() {
        let jar = CookieJar::new();
        let uri: Uri = "ws://127.0.0.1:9001/".parse().unwrap();
        jar.store(&uri, &set(&["s=1; Secure; HttpOnly"]));
        assert_eq!(jar.header_for(&uri).unwrap(), "s=1");
    }
}
