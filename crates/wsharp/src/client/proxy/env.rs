//! The proxy the environment names for a URL, on hyper-util's matcher (`no_proxy` with host
//! suffixes, `*`, IP addresses and CIDR ranges), fed the variables in curl's order.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Uri;
use hyper_util::client::proxy::matcher::Matcher;

use super::Proxy;

/// The environment's proxy rules, read once: hyper-util's matcher, and the `no_proxy` entries
/// with a port, which it does not match (`host:port` bypasses only that port, as Python's
/// `proxy_bypass` does).
pub(super) struct Rules {
    matcher: Matcher,
    with_port: Vec<(Matcher, u16)>,
}

impl Rules {
    /// Reads the variables through `lookup`: lower case first, then upper case (an empty value
    /// counts as unset); `HTTP_PROXY` only when `REQUEST_METHOD` is unset (in a CGI program it
    /// comes from the request's `Proxy:` header: httpoxy).
    pub(super) fn new(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
        };
        let http = if lookup("REQUEST_METHOD").is_some() {
            first(&["http_proxy"])
        } else {
            first(&["http_proxy", "HTTP_PROXY"])
        };
        let mut builder = Matcher::builder();
        if let Some(v) = http {
            builder = builder.http(v);
        }
        if let Some(v) = first(&["https_proxy", "HTTPS_PROXY"]) {
            builder = builder.https(v);
        }
        if let Some(v) = first(&["all_proxy", "ALL_PROXY"]) {
            builder = builder.all(v);
        }
        let mut with_port = Vec::new();
        if let Some(v) = first(&["no_proxy", "NO_PROXY"]) {
            let (ported, plain): (Vec<&str>, Vec<&str>) = v
                .split(',')
                .map(str::trim)
                .partition(|e| port_entry(e).is_some());
            for entry in ported {
                let (host, port) = port_entry(entry).expect("partitioned");
                // A matcher that intercepts everything but `host`.
                let one = Matcher::builder().all("http://0.0.0.0:9").no(host).build();
                with_port.push((one, port));
            }
            builder = builder.no(plain.join(","));
        }
        Self {
            matcher: builder.build(),
            with_port,
        }
    }

    /// The proxy for `uri` (`ws` counts as `http`, `wss` as `https`).
    pub(super) fn proxy_for(&self, uri: &Uri) -> Option<Proxy> {
        let scheme = match uri.scheme_str()? {
            "ws" | "http" => "http",
            "wss" | "https" => "https",
            _ => return None,
        };
        let host = uri.host()?;
        let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
        let mapped: Uri = format!("{scheme}://{host}{port}/").parse().ok()?;
        let target_port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if self
            .with_port
            .iter()
            .any(|(m, p)| *p == target_port && m.intercept(&mapped).is_none())
        {
            return None;
        }
        let intercept = self.matcher.intercept(&mapped)?;
        let proxy = match Proxy::parse(&intercept.uri().to_string()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("ignoring the environment's proxy: {e}");
                return None;
            }
        };
        let credentials = intercept
            .raw_auth()
            .map(|(u, p)| (u.to_owned(), p.to_owned()))
            .or_else(|| {
                let basic = intercept
                    .basic_auth()?
                    .to_str()
                    .ok()?
                    .strip_prefix("Basic ")?;
                let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
                let (u, p) = decoded.split_once(':')?;
                Some((u.to_owned(), p.to_owned()))
            });
        Some(match credentials {
            Some((user, password)) => proxy.credentials(user, password),
            None => proxy,
        })
    }
}

/// `host:port` or `[v6]:port` as a `no_proxy` entry with a port.
fn port_entry(entry: &str) -> Option<(&str, u16)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port.parse().ok()?));
    }
    let (host, port) = entry.rsplit_once(':')?;
    if host.contains(':') || host.contains('/') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(vars: &[(&str, &str)]) -> Rules {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        Rules::new(move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
    }

    fn proxy(rules: &Rules, url: &str) -> Option<String> {
        rules
            .proxy_for(&url.parse().unwrap())
            .map(|p| p.to_string())
    }

    /// Fault catalogue 25: https_proxy only for wss, http_proxy only for ws, no_proxy suffixes.
    #[test]
    fn each_scheme_its_variable_and_no_proxy() {
        let r = rules(&[
            ("http_proxy", "http://plain:3128"),
            ("https_proxy", "http://secure:3128"),
            ("no_proxy", ".example.com, 10.0.0.0/8, ::1"),
        ]);
        assert_eq!(
            proxy(&r, "ws://a.test/").as_deref(),
            Some("http://plain:3128")
        );
        assert_eq!(
            proxy(&r, "wss://a.test/").as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(proxy(&r, "wss://a.example.com/"), None);
        assert_eq!(proxy(&r, "ws://example.com/"), None);
        assert_eq!(
            proxy(&r, "ws://notexample.com/").as_deref(),
            Some("http://plain:3128")
        );
        assert_eq!(proxy(&r, "ws://10.1.2.3:9000/"), None);
        assert_eq!(proxy(&r, "ws://[::1]:9000/"), None);
        let ports = rules(&[
            ("all_proxy", "http://p:1"),
            ("no_proxy", "a.test:9000, [::1]:81"),
        ]);
        assert_eq!(proxy(&ports, "ws://a.test:9000/"), None);
        assert_eq!(proxy(&ports, "ws://www.a.test:9000/"), None);
        assert_eq!(
            proxy(&ports, "ws://a.test:9001/").as_deref(),
            Some("http://p:1")
        );
        assert_eq!(proxy(&ports, "ws://a.test/").as_deref(), Some("http://p:1"));
        assert_eq!(proxy(&ports, "ws://[::1]:81/"), None);
        assert_eq!(
            proxy(&ports, "ws://[::1]:82/").as_deref(),
            Some("http://p:1")
        );
        let star = rules(&[("all_proxy", "socks5h://s:1080"), ("no_proxy", "*")]);
        assert_eq!(proxy(&star, "ws://a.test/"), None);
    }

    #[test]
    fn lower_case_first_and_the_cgi_guard() {
        let both = rules(&[
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:1"),
        ]);
        assert_eq!(
            proxy(&both, "ws://a.test/").as_deref(),
            Some("http://lower:1")
        );
        let upper = rules(&[("HTTP_PROXY", "http://upper:1")]);
        assert_eq!(
            proxy(&upper, "ws://a.test/").as_deref(),
            Some("http://upper:1")
        );
        let cgi = rules(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(proxy(&cgi, "ws://a.test/"), None);
        let all = rules(&[("ALL_PROXY", "socks5://s:1080")]);
        assert_eq!(
            proxy(&all, "wss://a.test/").as_deref(),
            Some("socks5://s:1080")
        );
        let empty = rules(&[("http_proxy", ""), ("HTTP_PROXY", "http://upper:1")]);
        assert_eq!(
            proxy(&empty, "ws://a.test/").as_deref(),
            Some("http://upper:1")
        );
    }

    #[test]
    fn credentials_in_the_variable_reach_the_proxy_settings() {
        let r = rules(&[("https_proxy", "http://nobita:s%65kret@p:3128")]);
        let p = r.proxy_for(&"wss://a.test/".parse().unwrap()).unwrap();
        let c = p.auth.credentials().unwrap();
        assert_eq!((c.user(), c.password()), ("nobita", "sekret"));
        assert_eq!(p.to_string(), "http://p:3128");
    }
}
