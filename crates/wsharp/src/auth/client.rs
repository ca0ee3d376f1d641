//! The client's side: answering `WWW-Authenticate` (and, for proxies, `Proxy-Authenticate`)
//! challenges with Basic or Digest credentials.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

use super::digest::{DigestAlgorithm, ResponseInput, hex};
use super::params::{Challenge, push_quoted, push_token};
use super::{AuthFailure, AuthScheme, Credentials};

/// A client's credentials and what it remembers between connections: the last Digest
/// challenge, so the next connection (a reconnect, another clone of the builder) answers at
/// once with the next `nc` instead of being challenged again.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientAuth {
    credentials: Option<Credentials>,
    scheme: AuthScheme,
    preemptive: bool,
    digest: Arc<Mutex<Option<DigestState>>>,
}

/// A Digest challenge being answered.
#[derive(Debug, Clone)]
struct DigestState {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    /// The algorithm's name as the server wrote it, echoed exactly (some servers compare it
    /// case-sensitively); `None` when the challenge named none (MD5, not echoed).
    algorithm_token: Option<String>,
    /// Whether the server offered `qop=auth` (else the RFC 2069 form).
    qop_auth: bool,
    userhash: bool,
    nc: u32,
}

/// What answering a challenge produced.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) authorization: HeaderValue,
    /// The scheme used, for the log and errors.
    pub(crate) scheme: &'static str,
}

impl ClientAuth {
    #[cfg(test)]
    pub(crate) fn new(credentials: Credentials, scheme: AuthScheme, preemptive: bool) -> Self {
        Self {
            credentials: Some(credentials),
            scheme,
            preemptive,
            digest: Arc::default(),
        }
    }

    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Sets the credentials (a new user forgets the remembered challenge).
    pub(crate) fn set_credentials(&mut self, credentials: Credentials) {
        if self.credentials.as_ref() != Some(&credentials) {
            self.digest = Arc::default();
        }
        self.credentials = Some(credentials);
    }

    pub(crate) fn set_scheme(&mut self, scheme: AuthScheme) {
        self.scheme = scheme;
    }

    pub(crate) fn set_preemptive(&mut self, on: bool) {
        self.preemptive = on;
    }

    /// The `Authorization` for a first request, before any challenge: Digest when a challenge
    /// was remembered, Basic when pre-authentication was asked for, else none.
    pub(crate) fn first(&self, method: &str, uri: &str, secure: bool) -> Option<Answer> {
        let credentials = self.credentials.as_ref()?;
        if let Some(state) = self.digest.lock().expect("not poisoned").as_mut() {
            return Some(digest_answer(credentials, state, method, uri));
        }
        (self.preemptive && self.scheme != AuthScheme::Digest).then(|| basic(credentials, secure))
    }

    /// The `Authorization` answering `challenges` (every challenge of the response), the
    /// strongest the settings allow: Digest SHA-256 (or SHA-512-256), then Digest MD5, then
    /// Basic.
    ///
    /// # Errors
    /// [`AuthFailure::NoCredentials`] without credentials, [`AuthFailure::NoSupportedScheme`]
    /// when nothing offered can be answered.
    pub(crate) fn answer(
        &self,
        challenges: &[Challenge],
        method: &str,
        uri: &str,
        secure: bool,
    ) -> Result<Answer, AuthFailure> {
        let Some(credentials) = &self.credentials else {
            return Err(AuthFailure::NoCredentials);
        };
        if self.scheme != AuthScheme::Basic
            && let Some(mut state) = strongest_digest(challenges)
        {
            let answer = digest_answer(credentials, &mut state, method, uri);
            *self.digest.lock().expect("not poisoned") = Some(state);
            return Ok(answer);
        }
        if self.scheme != AuthScheme::Digest && challenges.iter().any(|c| c.is("Basic")) {
            return Ok(basic(credentials, secure));
        }
        Err(AuthFailure::NoSupportedScheme)
    }

    /// Forgets the remembered Digest challenge (the server refused it).
    pub(crate) fn forget(&self) {
        *self.digest.lock().expect("not poisoned") = None;
    }
}

fn basic(credentials: &Credentials, secure: bool) -> Answer {
    if !secure {
        tracing::warn!(
            user = credentials.user(),
            "sending Basic credentials over an unencrypted connection"
        );
    }
    let token = STANDARD.encode(format!("{}:{}", credentials.user(), credentials.password()));
    let mut authorization =
        HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header value");
    authorization.set_sensitive(true);
    Answer {
        authorization,
        scheme: "Basic",
    }
}

fn digest_answer(
    credentials: &Credentials,
    state: &mut DigestState,
    method: &str,
    uri: &str,
) -> Answer {
    state.nc = state.nc.wrapping_add(1).max(1);
    let nc = format!("{:08x}", state.nc);
    let cnonce = hex(&rand::random::<[u8; 16]>());
    let algorithm = state.algorithm;
    let user = credentials.user();
    let ha1 = algorithm.ha1(user, &state.realm, credentials.password());
    let input = ResponseInput {
        algorithm,
        nonce: &state.nonce,
        method,
        uri,
        qop: state
            .qop_auth
            .then_some(("auth", nc.as_str(), cnonce.as_str())),
        cnonce: &cnonce,
    };
    let response = input.response(&ha1);
    let mut out = String::from("Digest ");
    if state.userhash {
        let hashed = algorithm.hash(&[user.as_bytes(), state.realm.as_bytes()]);
        push_quoted(&mut out, "username", &hashed);
    } else if user.is_ascii() {
        push_quoted(&mut out, "username", user);
    } else {
        // RFC 7616 §3.4.4: a name that is not ASCII goes in `username*` (RFC 8187).
        push_token(&mut out, "username*", &ext_value(user));
    }
    push_quoted(&mut out, "realm", &state.realm);
    push_quoted(&mut out, "nonce", &state.nonce);
    push_quoted(&mut out, "uri", uri);
    if state.qop_auth {
        push_token(&mut out, "qop", "auth");
        push_token(&mut out, "nc", &nc);
        push_quoted(&mut out, "cnonce", &cnonce);
    } else if algorithm.is_session() {
        push_quoted(&mut out, "cnonce", &cnonce);
    }
    push_quoted(&mut out, "response", &response);
    if let Some(opaque) = &state.opaque {
        push_quoted(&mut out, "opaque", opaque);
    }
    if let Some(token) = &state.algorithm_token {
        push_token(&mut out, "algorithm", token);
    }
    if state.userhash {
        push_token(&mut out, "userhash", "true");
    }
    let mut authorization = HeaderValue::from_str(&out).unwrap_or_else(|_| {
        // Only a realm, nonce or opaque with control characters gets here: answer
        // something the server will refuse rather than write them.
        HeaderValue::from_static("Digest invalid")
    });
    authorization.set_sensitive(true);
    Answer {
        authorization,
        scheme: "Digest",
    }
}

/// The strongest Digest challenge we can answer: a known algorithm, a nonce, and `qop` absent
/// or offering `auth`. Among equals the first offered wins (as curl chooses).
fn strongest_digest(challenges: &[Challenge]) -> Option<DigestState> {
    let mut best: Option<DigestState> = None;
    for c in challenges.iter().filter(|c| c.is("Digest")) {
        let Some(nonce) = c.param("nonce").filter(|n| !n.is_empty()) else {
            // A Digest challenge without a nonce cannot be answered safely.
            continue;
        };
        let (algorithm, token) = match c.param("algorithm") {
            None => (DigestAlgorithm::Md5, None),
            Some(name) => match DigestAlgorithm::from_name(name) {
                Some(a) => (a, Some(name.to_owned())),
                None => continue,
            },
        };
        let qop_auth = match c.param("qop") {
            None => false,
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    continue;
                }
                true
            }
        };
        let state = DigestState {
            realm: c.realm().unwrap_or_default().to_owned(),
            nonce: nonce.to_owned(),
            opaque: c.param("opaque").map(str::to_owned),
            algorithm,
            algorithm_token: token,
            qop_auth,
            userhash: c
                .param("userhash")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            nc: 0,
        };
        if best
            .as_ref()
            .is_none_or(|b| state.algorithm.strength() > b.algorithm.strength())
        {
            best = Some(state);
        }
    }
    best
}

/// `UTF-8''` and the percent-encoded name (RFC 8187's ext-value).
fn ext_value(s: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scheme: AuthScheme, preemptive: bool) -> ClientAuth {
        ClientAuth::new(
            Credentials::new("Mufasa", "Circle of Life"),
            scheme,
            preemptive,
        )
    }

    fn params(answer: &Answer) -> Challenge {
        Challenge::parse_all(answer.authorization.to_str().unwrap()).remove(0)
    }

    #[test]
    fn basic_is_sent_first_only_when_preemptive() {
        assert!(
            client(AuthScheme::Any, false)
                .first("GET", "/", false)
                .is_none()
        );
        let a = client(AuthScheme::Any, true)
            .first("GET", "/", true)
            .unwrap();
        assert_eq!(
            a.authorization.to_str().unwrap(),
            "Basic TXVmYXNhOkNpcmNsZSBvZiBMaWZl"
        );
        assert!(
            client(AuthScheme::Digest, true)
                .first("GET", "/", true)
                .is_none()
        );
    }

    #[test]
    fn the_strongest_offer_wins() {
        let offered = Challenge::parse_all(
            r#"Basic realm="r", Digest realm="r", nonce="n1", algorithm=MD5, qop="auth", Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth""#,
        );
        let c = client(AuthScheme::Any, false);
        let answer = c.answer(&offered, "GET", "/chat?x=1", false).unwrap();
        let p = params(&answer);
        assert!(p.is("Digest"));
        assert_eq!(p.param("algorithm"), Some("SHA-256"));
        assert_eq!(p.param("nonce"), Some("n2"));
        assert_eq!(p.param("uri"), Some("/chat?x=1"));
        assert_eq!(p.param("nc"), Some("00000001"));
        assert_eq!(p.param("cnonce").unwrap().len(), 32);
        let basic = client(AuthScheme::Basic, false);
        let p = params(&basic.answer(&offered, "GET", "/", false).unwrap());
        assert!(p.is("Basic"));
    }

    #[test]
    fn a_remembered_challenge_is_answered_at_once_with_the_next_nc() {
        let offered = Challenge::parse_all(r#"Digest realm="r", nonce="n", qop="auth""#);
        let c = client(AuthScheme::Any, false);
        c.answer(&offered, "GET", "/", true).unwrap();
        let second = c.clone().first("GET", "/", true).unwrap();
        assert_eq!(params(&second).param("nc"), Some("00000002"));
        // No algorithm in the challenge: none echoed (MD5 implied).
        assert_eq!(params(&second).param("algorithm"), None);
        c.forget();
        assert!(c.first("GET", "/", true).is_none());
    }

    #[test]
    fn the_response_matches_what_a_server_computes() {
        let offered = Challenge::parse_all(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        );
        let c = client(AuthScheme::Digest, false);
        let p = params(&c.answer(&offered, "GET", "/dir/index.html", true).unwrap());
        assert_eq!(
            p.param("opaque"),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        let ha1 = DigestAlgorithm::Md5.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        let expect = ResponseInput {
            algorithm: DigestAlgorithm::Md5,
            nonce: p.param("nonce").unwrap(),
            method: "GET",
            uri: "/dir/index.html",
            qop: Some(("auth", p.param("nc").unwrap(), p.param("cnonce").unwrap())),
            cnonce: "",
        }
        .response(&ha1);
        assert_eq!(p.param("response"), Some(expect.as_str()));
    }

    #[test]
    fn rfc_2069_sess_and_userhash_forms() {
        let c = client(AuthScheme::Any, false);
        let p = params(
            &c.answer(
                &Challenge::parse_all(r#"Digest realm="r", nonce="n""#),
                "GET",
                "/",
                true,
            )
            .unwrap(),
        );
        assert_eq!(p.param("qop"), None);
        assert_eq!(p.param("nc"), None);
        assert_eq!(p.param("cnonce"), None);
        let sess = Challenge::parse_all(
            r#"Digest realm="r", nonce="n", algorithm=SHA-256-sess, qop=auth, userhash=true"#,
        );
        let p = params(&c.answer(&sess, "GET", "/", true).unwrap());
        assert_eq!(p.param("algorithm"), Some("SHA-256-sess"));
        assert_eq!(p.param("userhash"), Some("true"));
        assert_eq!(
            p.param("username"),
            Some(DigestAlgorithm::Sha256.hash(&[b"Mufasa", b"r"]).as_str())
        );
    }

    #[test]
    fn unanswerable_challenges() {
        let c = client(AuthScheme::Any, false);
        for offered in [
            "NTLM, Negotiate",
            r#"Digest realm="r""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-1"#,
            r#"Digest realm="r", nonce="n", qop="auth-int""#,
        ] {
            let all = Challenge::parse_all(offered);
            assert_eq!(
                c.answer(&all, "GET", "/", true).unwrap_err(),
                AuthFailure::NoSupportedScheme,
                "{offered}"
            );
        }
        let digest_only = client(AuthScheme::Digest, false);
        let basic = Challenge::parse_all(r#"Basic realm="r""#);
        assert!(digest_only.answer(&basic, "GET", "/", true).is_err());
    }

    #[test]
    fn a_name_that_is_not_ascii_goes_in_username_star() {
        let c = ClientAuth::new(Credentials::new("Jäsøn Doe", "pw"), AuthScheme::Any, false);
        let p = params(
            &c.answer(
                &Challenge::parse_all(r#"Digest realm="r", nonce="n""#),
                "GET",
                "/",
                true,
            )
            .unwrap(),
        );
        assert_eq!(p.param("username*"), Some("UTF-8''J%C3%A4s%C3%B8n%20Doe"));
    }
}
