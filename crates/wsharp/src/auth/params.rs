//! The grammar of `WWW-Authenticate`, `Proxy-Authenticate` and `Authorization` (RFC 9110
//! §11): a list of challenges, each a scheme with a token68 or a list of auth-params whose
//! values are tokens or quoted strings.

use std::fmt::Write as _;

/// Most challenges read from one response; more are ignored.
const MAX_CHALLENGES: usize = 16;
/// Most parameters read from one challenge; more are ignored.
const MAX_PARAMS: usize = 32;

/// One challenge (or one set of credentials): a scheme and its parameters.
///
/// ```
/// use wsharp::auth::Challenge;
/// let all = Challenge::parse_all(r#"Digest realm="a, \"b\"", qop="auth", Basic realm=x"#);
/// assert_eq!(all.len(), 2);
/// assert_eq!(all[0].scheme(), "Digest");
/// assert_eq!(all[0].param("realm"), Some(r#"a, "b""#));
/// assert_eq!(all[1].param("REALM"), Some("x"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    pub(super) params: Vec<(String, String)>,
}

impl Challenge {
    /// Every challenge in one header value, in order. Malformed parts end the list; a value
    /// with nothing valid gives an empty list.
    pub fn parse_all(value: &str) -> Vec<Self> {
        let mut out = Vec::new();
        let mut p = Parser {
            s: value.as_bytes(),
            i: 0,
        };
        while out.len() < MAX_CHALLENGES {
            p.skip_list_separators();
            let Some(scheme) = p.token() else { break };
            let mut challenge = Self {
                scheme: scheme.to_owned(),
                token68: None,
                params: Vec::new(),
            };
            p.skip_spaces();
            if let Some(t68) = p.token68() {
                challenge.token68 = Some(t68);
            } else {
                while challenge.params.len() < MAX_PARAMS {
                    let save = p.i;
                    p.skip_list_separators();
                    let Some(name) = p.token() else {
                        p.i = save;
                        break;
                    };
                    p.skip_spaces();
                    if !p.eat(b'=') {
                        // A bare token: the next challenge's scheme.
                        p.i = save;
                        break;
                    }
                    p.skip_spaces();
                    let Some(value) = p.value() else {
                        out.push(challenge);
                        return out;
                    };
                    challenge.params.push((name.to_ascii_lowercase(), value));
                }
            }
            out.push(challenge);
        }
        out
    }

    /// The challenges of every header value in `values` (several headers of one name), in
    /// order.
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a http::HeaderValue>) -> Vec<Self> {
        values
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Self::parse_all)
            .take(MAX_CHALLENGES)
            .collect()
    }

    /// The scheme as written (compare with [`is`](Self::is)).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme`, compared case-insensitively.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68 after the scheme (Basic credentials), if that is its form.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The value of parameter `name` (case-insensitive), unquoted; the first if repeated.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The realm, if any.
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }
}

impl std::fmt::Display for Challenge {
    /// The scheme and realm, as an error message names a challenge: `Digest realm="x"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(realm) = self.realm() {
            write!(f, " realm={}", quote(realm))?;
        }
        Ok(())
    }
}

/// `value` as a quoted string, with `"` and `\` escaped.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Writes `, name=value` (or `name=value` first) with the value quoted.
pub(crate) fn push_quoted(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    let _ = write!(out, "{name}={}", quote(value));
}

/// Writes `, name=value` (or `name=value` first) with the value as a token.
pub(crate) fn push_token(out: &mut String, name: &str, value: &str) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
    let _ = write!(out, "{name}={value}");
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).expect("ASCII"))
    }

    /// A token68 that is the whole of the challenge's rest: `1*( ALPHA / DIGIT / "-" / "." /
    /// "_" / "~" / "+" / "/" ) *"="` followed by the end or a comma. Leaves the position
    /// unchanged when what follows is an auth-param instead.
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        while self.eat(b'=') {}
        let end = self.i;
        self.skip_spaces();
        if matches!(self.peek(), None | Some(b',')) {
            // `name=` with no value is not an auth-param: this is a token68.
            return Some(String::from_utf8_lossy(&self.s[start..end]).into_owned());
        }
        self.i = start;
        None
    }

    fn value(&mut self) -> Option<String> {
        if self.eat(b'"') {
            let mut out = Vec::new();
            loop {
                match self.peek()? {
                    b'"' => {
                        self.i += 1;
                        break;
                    }
                    b'\\' => {
                        self.i += 1;
                        out.push(self.peek()?);
                        self.i += 1;
                    }
                    b => {
                        out.push(b);
                        self.i += 1;
                    }
                }
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        } else {
            self.token().map(str::to_owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_challenges_with_commas_and_escapes_inside_quotes() {
        let all = Challenge::parse_all(
            r#"Digest realm="x, y", nonce="a\"b", algorithm=SHA-256, qop="auth, auth-int", Digest realm="x, y", nonce=n2, algorithm=MD5, Basic realm="b""#,
        );
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].param("realm"), Some("x, y"));
        assert_eq!(all[0].param("nonce"), Some("a\"b"));
        assert_eq!(all[0].param("qop"), Some("auth, auth-int"));
        assert_eq!(all[1].param("algorithm"), Some("MD5"));
        assert!(all[2].is("basic"));
        assert_eq!(all[2].realm(), Some("b"));
    }

    #[test]
    fn unknown_schemes_first_and_upper_case() {
        let all = Challenge::parse_all(r#"NEGOTIATE, NTLM, BASIC realm="x""#);
        let schemes: Vec<_> = all.iter().map(Challenge::scheme).collect();
        assert_eq!(schemes, ["NEGOTIATE", "NTLM", "BASIC"]);
        assert_eq!(all[2].realm(), Some("x"));
    }

    #[test]
    fn token68_credentials() {
        let all = Challenge::parse_all("Basic dXNlcjpwYXNz");
        assert_eq!(all[0].token68(), Some("dXNlcjpwYXNz"));
        let padded = Challenge::parse_all("Basic dXNlcjpwYXM=");
        assert_eq!(padded[0].token68(), Some("dXNlcjpwYXM="));
        let then_more = Challenge::parse_all("Negotiate abc==, Basic realm=r");
        assert_eq!(then_more[0].token68(), Some("abc=="));
        assert_eq!(then_more[1].realm(), Some("r"));
    }

    #[test]
    fn several_header_lines() {
        let values = [
            http::HeaderValue::from_static(r#"Digest realm="r", nonce="1""#),
            http::HeaderValue::from_static(r#"Basic realm="r""#),
        ];
        let all = Challenge::parse_headers(&values);
        assert_eq!(all.len(), 2);
        assert!(all[1].is("Basic"));
    }

    #[test]
    fn malformed_input_is_bounded_and_never_panics() {
        for bad in [
            "",
            ",,,",
            "Digest realm=\"unterminated",
            "Digest realm=\"x\\",
            "=x",
            "Digest ,realm=",
            "Digest a=b=c",
            "\u{e9}",
        ] {
            let _ = Challenge::parse_all(bad);
        }
        let many = "Basic realm=x, ".repeat(100);
        assert_eq!(Challenge::parse_all(&many).len(), MAX_CHALLENGES);
        let params = (0..100)
            .map(|i| format!("p{i}=v"))
            .collect::<Vec<_>>()
            .join(", ");
        let one = Challenge::parse_all(&format!("Digest {params}"));
        assert_eq!(one[0].params.len(), MAX_PARAMS);
    }

    #[test]
    fn quoting_round_trips() {
        let mut out = String::from("Digest ");
        push_quoted(&mut out, "realm", r#"a"b\c"#);
        push_token(&mut out, "algorithm", "MD5");
        let parsed = Challenge::parse_all(&out);
        assert_eq!(parsed[0].realm(), Some(r#"a"b\c"#));
        assert_eq!(parsed[0].param("algorithm"), Some("MD5"));
    }
}
