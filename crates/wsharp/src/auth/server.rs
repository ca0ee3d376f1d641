//! The server's side: demanding Basic or Digest credentials and checking them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::Identity;
use super::digest::{DigestAlgorithm, ResponseInput, hex};
use super::params::{Challenge, push_quoted, push_token};
use crate::server::Refusal;

/// Looks up a user: websocket-sharp's `UserCredentialsFinder`. Any
/// `Fn(&str) -> Option<UserEntry>` is one, and so is [`Users`].
pub trait CredentialsFinder: Send + Sync + 'static {
    /// The entry of `user`, or `None` if there is no such user.
    fn find(&self, user: &str) -> Option<UserEntry>;
}

impl<F> CredentialsFinder for F
where
    F: Fn(&str) -> Option<UserEntry> + Send + Sync + 'static,
{
    fn find(&self, user: &str) -> Option<UserEntry> {
        self(user)
    }
}

/// What the server knows of a user: the password, or only the Digest HA1 of one algorithm
/// (`H(user:realm:password)`, as an htdigest file keeps it), and the user's roles.
#[derive(Clone)]
pub struct UserEntry {
    secret: Secret,
    roles: Vec<String>,
}

#[derive(Clone)]
enum Secret {
    Password(String),
    Ha1 {
        algorithm: DigestAlgorithm,
        ha1: String,
    },
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl UserEntry {
    /// A user known by password.
    pub fn password(password: impl Into<String>) -> Self {
        Self {
            secret: Secret::Password(password.into()),
            roles: Vec::new(),
        }
    }

    /// A user known by the hex HA1 of `algorithm` (its `-sess` form is the same HA1). Such a
    /// user can log in with Digest of that algorithm and with Basic.
    pub fn ha1(algorithm: DigestAlgorithm, ha1_hex: impl Into<String>) -> Self {
        Self {
            secret: Secret::Ha1 {
                algorithm: algorithm.base(),
                ha1: ha1_hex.into().to_ascii_lowercase(),
            },
            roles: Vec::new(),
        }
    }

    /// The user's roles, readable from the [`Identity`] once logged in.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The plain HA1 for `algorithm`, if this entry can give it.
    fn ha1_for(&self, user: &str, realm: &str, algorithm: DigestAlgorithm) -> Option<String> {
        match &self.secret {
            Secret::Password(p) => Some(algorithm.base().ha1(user, realm, p)),
            Secret::Ha1 { algorithm: a, ha1 } => (*a == algorithm.base()).then(|| ha1.clone()),
        }
    }

    /// Whether `password` is this user's, in time that does not depend on where they differ.
    fn password_matches(&self, user: &str, realm: &str, password: &str) -> bool {
        match &self.secret {
            Secret::Password(p) => {
                // Equal-length digests: the comparison reveals neither content nor length.
                let (a, b) = (Sha256::digest(p.as_bytes()), Sha256::digest(password));
                a.ct_eq(&b).into()
            }
            Secret::Ha1 { algorithm, ha1 } => ct_eq_str(&algorithm.ha1(user, realm, password), ha1),
        }
    }
}

/// A table of users, for [`Authenticator`]s that need no database: from code, or from a file
/// of `user:password` lines (blank lines and `#` comments skipped), as `wsharp serve --users`
/// reads.
///
/// ```
/// use wsharp::auth::{CredentialsFinder, Users};
/// let users = Users::parse("# who may log in\nnobita:sekret\nshizuka:pass:with:colons\n")?;
/// assert!(users.find("shizuka").is_some());
/// assert!(users.find("gian").is_none());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Users(HashMap<String, UserEntry>);

impl Users {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `user`.
    pub fn insert(&mut self, user: impl Into<String>, entry: UserEntry) -> &mut Self {
        self.0.insert(user.into(), entry);
        self
    }

    /// Adds `user` with `password`, builder style.
    pub fn with(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.insert(user, UserEntry::password(password));
        self
    }

    /// Reads `user:password` lines (the password is everything after the first `:`).
    ///
    /// # Errors
    /// The number of the first line that has no `:` or an empty user name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, password)) if !user.is_empty() => {
                    users.insert(user, UserEntry::password(password));
                }
                _ => return Err(format!("line {}: expected user:password", n + 1)),
            }
        }
        Ok(users)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl CredentialsFinder for Users {
    fn find(&self, user: &str) -> Option<UserEntry> {
        self.0.get(user).cloned()
    }
}

/// The clock an [`Authenticator`] dates its nonces with.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Demands HTTP authentication (websocket-sharp's `AuthenticationSchemes`, `Realm` and
/// `UserCredentialsFinder`): Basic (RFC 7617) and/or Digest (RFC 7616, `qop=auth`), checked
/// against a [`CredentialsFinder`]. Give it to a service ([`ServiceOptions::auth`](crate::server::ServiceOptions::auth)),
/// a [`WebSocketServer`](crate::server::WebSocketServer::auth), an
/// [`HttpServer`](crate::http_server::HttpServerOptions::auth), or call
/// [`authenticate`](Self::authenticate) from a [`ServerBuilder`](crate::ServerBuilder)'s request hook.
///
/// Digest is done as a careful server does it, where websocket-sharp is weak: each nonce is
/// 128 random bits from a CSPRNG with its issue time and a MAC under a key drawn when the
/// authenticator is made, so a nonce this server did not issue is refused without any table;
/// a nonce older than [`nonce_lifetime`](Self::nonce_lifetime) is answered with `stale=true`;
/// the highest `nc` seen per nonce is kept (for at most
/// [`max_tracked_nonces`](Self::max_tracked_nonces) nonces, older ones then count as stale) so
/// a replayed or backwards `nc` is refused; the `uri` must be the request's target; every
/// comparison of a secret takes constant time.
///
/// ```
/// use wsharp::auth::{Authenticator, Users};
/// use wsharp::http::Request;
///
/// let auth = Authenticator::digest("chat", Users::new().with("nobita", "sekret"));
/// let request = Request::get("/chat").body(()).unwrap();
/// let refusal = auth.authenticate(&request).unwrap_err();
/// assert_eq!(refusal.response().status(), 401);
/// assert!(refusal.response().headers()["www-authenticate"].to_str().unwrap().starts_with("Digest "));
/// ```
pub struct Authenticator {
    realm: String,
    basic: bool,
    digest: Vec<DigestAlgorithm>,
    finder: Arc<dyn CredentialsFinder>,
    key: [u8; 32],
    opaque: String,
    nonce_lifetime: Duration,
    record: Mutex<NonceRecord>,
    clock: Clock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("basic", &self.basic)
            .field("digest", &self.digest)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish_non_exhaustive()
    }
}

/// Default [`Authenticator::nonce_lifetime`].
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Default [`Authenticator::max_tracked_nonces`].
const MAX_TRACKED_NONCES: usize = 10_000;
/// How far in the future a nonce's time may be (clock steps).
const CLOCK_SKEW_MS: u64 = 5_000;

impl Authenticator {
    fn new(realm: impl Into<String>, finder: impl CredentialsFinder) -> Self {
        Self {
            realm: realm.into(),
            basic: false,
            digest: Vec::new(),
            finder: Arc::new(finder),
            key: rand::random(),
            opaque: hex(&rand::random::<[u8; 16]>()),
            nonce_lifetime: NONCE_LIFETIME,
            record: Mutex::new(NonceRecord::new(MAX_TRACKED_NONCES)),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Basic only (send it only over TLS: the password crosses in the clear).
    pub fn basic(realm: impl Into<String>, finder: impl CredentialsFinder) -> Self {
        Self {
            basic: true,
            ..Self::new(realm, finder)
        }
    }

    /// Digest only, offering SHA-256 then MD5.
    pub fn digest(realm: impl Into<String>, finder: impl CredentialsFinder) -> Self {
        Self {
            digest: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            ..Self::new(realm, finder)
        }
    }

    /// Also (or no longer) accepts Basic.
    pub fn with_basic(mut self, on: bool) -> Self {
        self.basic = on;
        self
    }

    /// The Digest algorithms offered and accepted, most preferred first (one challenge each);
    /// empty turns Digest off.
    pub fn digest_algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = DigestAlgorithm>,
    ) -> Self {
        self.digest = algorithms.into_iter().collect();
        self
    }

    /// How long a nonce may be used; older ones get `stale=true`. Default 5 minutes.
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// How many used nonces have their `nc` remembered; past it the least recently first-used
    /// is forgotten and counts as stale. Default 10 000 (about 0.5 MiB).
    pub fn max_tracked_nonces(self, max: usize) -> Self {
        *self.record.lock().expect("not poisoned") = NonceRecord::new(max.max(1));
        self
    }

    /// The clock nonces are dated with (default the system clock): for tests and simulations.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Checks the request's `Authorization`: the user's [`Identity`], or the 401 to answer
    /// with (with a fresh challenge, `stale=true` when only the nonce's age was wrong).
    ///
    /// # Errors
    /// The 401 refusal.
    pub fn authenticate<B>(&self, request: &Request<B>) -> Result<Identity, Refusal> {
        let Some(value) = request.headers().get(AUTHORIZATION) else {
            return Err(self.challenge(false));
        };
        let Some(credentials) = value
            .to_str()
            .ok()
            .and_then(|v| Challenge::parse_all(v).into_iter().next())
        else {
            return Err(self.refuse("malformed Authorization", false));
        };
        if self.basic && credentials.is("Basic") {
            return self.check_basic(&credentials);
        }
        if !self.digest.is_empty() && credentials.is("Digest") {
            return self.check_digest(&credentials, request);
        }
        Err(self.refuse("scheme not accepted", false))
    }

    /// The 401 with this authenticator's challenges.
    pub fn challenge(&self, stale: bool) -> Refusal {
        let mut refusal = Refusal::new(StatusCode::UNAUTHORIZED).body("401 Unauthorized\n");
        for algorithm in &self.digest {
            let mut value = String::from("Digest ");
            push_quoted(&mut value, "realm", &self.realm);
            push_quoted(&mut value, "qop", "auth");
            push_token(&mut value, "algorithm", algorithm.name());
            push_quoted(&mut value, "nonce", &self.new_nonce());
            push_quoted(&mut value, "opaque", &self.opaque);
            if stale {
                push_token(&mut value, "stale", "true");
            }
            refusal = refusal.header(WWW_AUTHENTICATE.as_str(), &value);
        }
        if self.basic {
            let mut value = String::from("Basic ");
            push_quoted(&mut value, "realm", &self.realm);
            push_quoted(&mut value, "charset", "UTF-8");
            refusal = refusal.header(WWW_AUTHENTICATE.as_str(), &value);
        }
        refusal
    }

    fn refuse(&self, why: &str, stale: bool) -> Refusal {
        tracing::debug!(realm = %self.realm, "authentication refused: {why}");
        self.challenge(stale)
    }

    fn check_basic(&self, credentials: &Challenge) -> Result<Identity, Refusal> {
        let decoded = credentials
            .token68()
            .and_then(|t| STANDARD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Err(self.refuse("malformed Basic credentials", false));
        };
        let entry = self.finder.find(user);
        // An unknown user costs the same hashing as a known one.
        let known = entry.as_ref().unwrap_or(&UNKNOWN_USER);
        let matches = known.password_matches(user, &self.realm, password);
        match entry {
            Some(entry) if matches => Ok(Identity::new(user, entry.roles, "Basic")),
            _ => Err(self.refuse("wrong user or password", false)),
        }
    }

    fn check_digest<B>(&self, c: &Challenge, request: &Request<B>) -> Result<Identity, Refusal> {
        let refuse = |why: &str| Err(self.refuse(why, false));
        let (Some(user), Some(nonce), Some(uri), Some(response)) = (
            c.param("username"),
            c.param("nonce"),
            c.param("uri"),
            c.param("response"),
        ) else {
            return refuse("Digest credentials without username, nonce, uri or response");
        };
        if c.param("userhash")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return refuse("userhash was not offered");
        }
        if c.realm() != Some(self.realm.as_str()) {
            return refuse("another realm");
        }
        if c.param("opaque").is_some_and(|o| o != self.opaque) {
            return refuse("another opaque");
        }
        let algorithm = match c.param("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(name) => match DigestAlgorithm::from_name(name) {
                Some(a) => a,
                None => return refuse("unknown algorithm"),
            },
        };
        if !self.digest.contains(&algorithm) {
            return refuse("algorithm not offered");
        }
        // This server always offers qop=auth: the RFC 2069 form is refused.
        let (Some(qop), Some(nc), Some(cnonce)) =
            (c.param("qop"), c.param("nc"), c.param("cnonce"))
        else {
            return refuse("Digest credentials without qop, nc or cnonce");
        };
        if !qop.eq_ignore_ascii_case("auth") {
            return refuse("qop other than auth");
        }
        let Some(count) = (nc.len() == 8)
            .then(|| u32::from_str_radix(nc, 16).ok())
            .flatten()
        else {
            return refuse("malformed nc");
        };
        if !uri_matches(uri, request.uri()) {
            return refuse("uri is not the request target");
        }
        let Some(issued) = self.open_nonce(nonce) else {
            return refuse("a nonce this server did not issue");
        };
        let entry = self.finder.find(user);
        let ha1 = entry
            .as_ref()
            .and_then(|e| e.ha1_for(user, &self.realm, algorithm))
            .unwrap_or_else(|| algorithm.base().ha1(user, &self.realm, ""));
        let expected = ResponseInput {
            algorithm,
            nonce,
            method: request.method().as_str(),
            uri,
            qop: Some((qop, nc, cnonce)),
            cnonce,
        }
        .response(&ha1);
        let Some(entry) = entry.filter(|_| ct_eq_str(&expected, &response.to_ascii_lowercase()))
        else {
            return refuse("wrong user or password");
        };
        let now = self.now_ms();
        if now > issued.at.saturating_add(millis(self.nonce_lifetime)) {
            return Err(self.refuse("expired nonce", true));
        }
        let check = self.record.lock().expect("not poisoned").check(
            issued,
            count,
            now,
            millis(self.nonce_lifetime),
        );
        match check {
            NcCheck::Fresh => Ok(Identity::new(user, entry.roles, "Digest")),
            NcCheck::Replay => refuse("replayed or backwards nc"),
            NcCheck::Forgotten => Err(self.refuse("nonce no longer tracked", true)),
        }
    }

    fn now_ms(&self) -> u64 {
        (self.clock)().duration_since(UNIX_EPOCH).map_or(0, millis)
    }

    /// `b64url(time_ms ‖ random16 ‖ mac16)`.
    fn new_nonce(&self) -> String {
        let mut raw = [0u8; 40];
        raw[..8].copy_from_slice(&self.now_ms().to_be_bytes());
        raw[8..24].copy_from_slice(&rand::random::<[u8; 16]>());
        let mac = self.mac(&raw[..24]);
        raw[24..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce's issue time and id, if this server issued it (MAC checked in constant time).
    fn open_nonce(&self, nonce: &str) -> Option<Issued> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let raw: [u8; 40] = raw.try_into().ok()?;
        let mac = self.mac(&raw[..24]);
        if !bool::from(mac.ct_eq(&raw[24..])) {
            return None;
        }
        let at = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if at > self.now_ms().saturating_add(CLOCK_SKEW_MS) {
            return None;
        }
        Some(Issued {
            at,
            id: raw[8..24].try_into().expect("16 bytes"),
        })
    }

    fn mac(&self, data: &[u8]) -> [u8; 16] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(data);
        mac.update(self.realm.as_bytes());
        let full = mac.finalize().into_bytes();
        full[..16].try_into().expect("16 bytes")
    }
}

/// Stands in for a user that does not exist, so that the time spent does not tell.
static UNKNOWN_USER: UserEntry = UserEntry {
    secret: Secret::Password(String::new()),
    roles: Vec::new(),
};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Equal strings, compared in constant time for equal lengths (digests have a public length).
fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether the Digest `uri` names the request's target (origin form, or the absolute form
/// the request line carried).
fn uri_matches(digest_uri: &str, target: &http::Uri) -> bool {
    let origin_form = target.path_and_query().map_or("/", |p| p.as_str());
    digest_uri == origin_form || (target.scheme().is_some() && *target == *digest_uri)
}

#[derive(Debug, Clone, Copy)]
struct Issued {
    at: u64,
    id: [u8; 16],
}

#[derive(Debug, PartialEq, Eq)]
enum NcCheck {
    Fresh,
    Replay,
    Forgotten,
}

/// The highest `nc` seen per used nonce, for at most `cap` nonces.
#[derive(Debug)]
struct NonceRecord {
    seen: HashMap<[u8; 16], u32>,
    /// First-use order, with each nonce's issue time.
    order: VecDeque<([u8; 16], u64)>,
    /// Nonces issued at or before this time and not in `seen` were forgotten: stale.
    forgotten_up_to: u64,
    cap: usize,
}

impl NonceRecord {
    fn new(cap: usize) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            forgotten_up_to: 0,
            cap,
        }
    }

    fn check(&mut self, nonce: Issued, nc: u32, now: u64, lifetime: u64) -> NcCheck {
        if let Some(last) = self.seen.get_mut(&nonce.id) {
            if nc <= *last {
                return NcCheck::Replay;
            }
            *last = nc;
            return NcCheck::Fresh;
        }
        if nonce.at <= self.forgotten_up_to {
            return NcCheck::Forgotten;
        }
        // Expired nonces are refused by age: their records can go.
        while let Some(&(id, at)) = self.order.front() {
            if now <= at.saturating_add(lifetime) {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&id);
        }
        if self.order.len() >= self.cap
            && let Some((id, at)) = self.order.pop_front()
        {
            self.seen.remove(&id);
            self.forgotten_up_to = self.forgotten_up_to.max(at);
        }
        self.seen.insert(nonce.id, nc);
        self.order.push_back((nonce.id, nonce.at));
        NcCheck::Fresh
    }
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::auth::{AuthScheme, Credentials, client::ClientAuth};

    fn users() -> Users {
        let mut users = Users::new().with("nobita", "sekret");
        users.insert(
            "dora",
            UserEntry::ha1(
                DigestAlgorithm::Md5,
                DigestAlgorithm::Md5.ha1("dora", "r", "pocket"),
            )
            .roles(["admin"]),
        );
        users
    }

    /// A clock the test moves.
    fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let ms = Arc::new(AtomicU64::new(1_800_000_000_000));
        let read = ms.clone();
        let clock: Clock =
            Arc::new(move || UNIX_EPOCH + Duration::from_millis(read.load(Ordering::SeqCst)));
        (clock, ms)
    }

    fn request(uri: &str, authorization: Option<&str>) -> Request<()> {
        let mut b = Request::get(uri);
        if let Some(a) = authorization {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    fn challenges(refusal: &Refusal) -> Vec<Challenge> {
        Challenge::parse_headers(refusal.response().headers().get_all(WWW_AUTHENTICATE))
    }

    /// Answers `auth`'s challenge for `uri` as our client would.
    fn answer(auth: &Authenticator, user: &str, password: &str, uri: &str) -> String {
        let offered = challenges(&auth.authenticate(&request(uri, None)).unwrap_err());
        let client = ClientAuth::new(Credentials::new(user, password), AuthScheme::Any, false);
        let a = client.answer(&offered, "GET", uri, true).unwrap();
        a.authorization.to_str().unwrap().to_owned()
    }

    #[test]
    fn basic_right_wrong_and_malformed() {
        let auth = Authenticator::basic("r", users());
        let ok = auth
            .authenticate(&request("/", Some("Basic bm9iaXRhOnNla3JldA==")))
            .unwrap();
        assert_eq!(ok.name(), "nobita");
        assert_eq!(ok.scheme(), "Basic");
        for bad in [
            "Basic bm9iaXRhOndyb25n", // nobita:wrong
            "Basic !!!notbase64",     // malformed base64
            "Basic bm9iaXRh",         // "nobita": no colon
            "Basic Z2lhbjpzZWtyZXQ=", // gian:sekret, no such user
            "Bearer abc",
            "Basic",
        ] {
            let refusal = auth.authenticate(&request("/", Some(bad))).unwrap_err();
            assert_eq!(refusal.response().status(), 401, "{bad}");
            assert!(challenges(&refusal)[0].is("Basic"), "{bad}");
        }
        // Basic against an HA1-only user.
        let ha1 = auth
            .authenticate(&request("/", Some("Basic ZG9yYTpwb2NrZXQ=")))
            .unwrap();
        assert_eq!(ha1.roles(), ["admin"]);
    }

    #[test]
    fn digest_every_algorithm_with_our_client() {
        for algorithm in DigestAlgorithm::ALL {
            let auth = Authenticator::digest("r", users()).digest_algorithms([algorithm]);
            let authorization = answer(&auth, "nobita", "sekret", "/chat?room=1");
            let id = auth
                .authenticate(&request("/chat?room=1", Some(&authorization)))
                .unwrap_or_else(|_| panic!("{algorithm}"));
            assert_eq!(id.name(), "nobita");
            let wrong = answer(&auth, "nobita", "wrong", "/chat?room=1");
            assert!(
                auth.authenticate(&request("/chat?room=1", Some(&wrong)))
                    .is_err()
            );
        }
    }

    #[test]
    fn digest_with_a_stored_ha1() {
        let auth = Authenticator::digest("r", users()).digest_algorithms([DigestAlgorithm::Md5]);
        let authorization = answer(&auth, "dora", "pocket", "/");
        let id = auth
            .authenticate(&request("/", Some(&authorization)))
            .unwrap();
        assert!(id.has_role("admin"));
        // An MD5 HA1 cannot answer SHA-256.
        let sha = Authenticator::digest("r", users()).digest_algorithms([DigestAlgorithm::Sha256]);
        let authorization = answer(&sha, "dora", "pocket", "/");
        assert!(
            sha.authenticate(&request("/", Some(&authorization)))
                .is_err()
        );
    }

    #[test]
    fn replays_and_backwards_nc_are_refused() {
        let auth = Authenticator::digest("r", users());
        let first = answer(&auth, "nobita", "sekret", "/");
        assert!(auth.authenticate(&request("/", Some(&first))).is_ok());
        let replay = auth.authenticate(&request("/", Some(&first))).unwrap_err();
        assert_eq!(replay.response().status(), 401);
        assert!(challenges(&replay)[0].param("stale").is_none());
        // The same nonce with nc 2 is fine, then nc 1 again is not.
        let c = Challenge::parse_all(&first).remove(0);
        let with_nc = |nc: &str| {
            let ha1 = DigestAlgorithm::Sha256.ha1("nobita", "r", "sekret");
            let response = ResponseInput {
                algorithm: DigestAlgorithm::Sha256,
                nonce: c.param("nonce").unwrap(),
                method: "GET",
                uri: "/",
                qop: Some(("auth", nc, "abc")),
                cnonce: "abc",
            }
            .response(&ha1);
            format!(
                r#"Digest username="nobita", realm="r", nonce="{}", uri="/", qop=auth, nc={nc}, cnonce="abc", response="{response}", algorithm=SHA-256"#,
                c.param("nonce").unwrap()
            )
        };
        assert!(
            auth.authenticate(&request("/", Some(&with_nc("00000002"))))
                .is_ok()
        );
        assert!(
            auth.authenticate(&request("/", Some(&with_nc("00000001"))))
                .is_err()
        );
        assert!(
            auth.authenticate(&request("/", Some(&with_nc("00000003"))))
                .is_ok()
        );
    }

    #[test]
    fn invented_nonces_other_uris_and_missing_fields_are_refused() {
        let auth = Authenticator::digest("r", users());
        let good = answer(&auth, "nobita", "sekret", "/a");
        // Computed for /a, sent for /b.
        assert!(auth.authenticate(&request("/b", Some(&good))).is_err());
        // A nonce from another server (another key).
        let other = Authenticator::digest("r", users());
        let foreign = answer(&other, "nobita", "sekret", "/a");
        assert!(auth.authenticate(&request("/a", Some(&foreign))).is_err());
        // A nonce made up by the client.
        let invented = good.replace(
            Challenge::parse_all(&good)[0].param("nonce").unwrap(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        );
        assert!(auth.authenticate(&request("/a", Some(&invented))).is_err());
        for field in [
            "response", "nonce", "uri", "username", "nc", "cnonce", "qop",
        ] {
            let c = Challenge::parse_all(&good).remove(0);
            let mut out = String::from("Digest ");
            for (name, value) in &c.params {
                if name != field {
                    push_quoted(&mut out, name, value);
                }
            }
            assert!(
                auth.authenticate(&request("/a", Some(&out))).is_err(),
                "{field}"
            );
        }
        // Still good after all that.
        assert!(auth.authenticate(&request("/a", Some(&good))).is_ok());
    }

    #[test]
    fn an_expired_nonce_is_stale() {
        let (clock, ms) = manual_clock();
        let auth = Authenticator::digest("r", users())
            .nonce_lifetime(Duration::from_secs(60))
            .clock(clock);
        let authorization = answer(&auth, "nobita", "sekret", "/");
        ms.fetch_add(61_000, Ordering::SeqCst);
        let refusal = auth
            .authenticate(&request("/", Some(&authorization)))
            .unwrap_err();
        let offered = challenges(&refusal);
        assert_eq!(offered[0].param("stale"), Some("true"));
        // The wrong password with an expired nonce is not stale: it is wrong.
        let wrong = answer(&auth, "nobita", "bad", "/");
        ms.fetch_add(61_000, Ordering::SeqCst);
        let refusal = auth.authenticate(&request("/", Some(&wrong))).unwrap_err();
        assert!(challenges(&refusal)[0].param("stale").is_none());
        // A nonce from the future (a forged time cannot be made without the key anyway).
        let fresh = answer(&auth, "nobita", "sekret", "/");
        assert!(auth.authenticate(&request("/", Some(&fresh))).is_ok());
    }

    #[test]
    fn the_nonce_record_is_bounded_and_forgotten_nonces_are_stale() {
        let auth = Authenticator::digest("r", users()).max_tracked_nonces(2);
        let (clock, ms) = manual_clock();
        let auth = auth.clock(clock);
        let mut used = Vec::new();
        for _ in 0..3 {
            let a = answer(&auth, "nobita", "sekret", "/");
            ms.fetch_add(1, Ordering::SeqCst);
            assert!(auth.authenticate(&request("/", Some(&a))).is_ok());
            used.push(a);
        }
        assert_eq!(auth.record.lock().unwrap().seen.len(), 2);
        // The first was forgotten: replaying it is stale, never accepted.
        let refusal = auth
            .authenticate(&request("/", Some(&used[0])))
            .unwrap_err();
        assert_eq!(challenges(&refusal)[0].param("stale"), Some("true"));
    }

    #[test]
    fn ten_thousand_nonces_are_distinct() {
        let auth = Authenticator::digest("r", users());
        let nonces: std::collections::HashSet<String> =
            (0..10_000).map(|_| auth.new_nonce()).collect();
        assert_eq!(nonces.len(), 10_000);
    }

    #[test]
    fn challenges_in_order_of_preference_then_basic() {
        let auth = Authenticator::digest("r", users()).with_basic(true);
        let offered = challenges(&auth.challenge(false));
        let names: Vec<_> = offered
            .iter()
            .map(|c| format!("{} {}", c.scheme(), c.param("algorithm").unwrap_or("")))
            .collect();
        assert_eq!(names, ["Digest SHA-256", "Digest MD5", "Basic "]);
        assert_eq!(offered[0].param("qop"), Some("auth"));
    }

    #[test]
    fn users_file() {
        let users = Users::parse("a:b\n\n# c\r\nd:e:f\r\n").unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(
            Users::parse("ok:1\nnocolon\n").unwrap_err(),
            "line 2: expected user:password"
        );
        assert!(Users::parse(":pw").is_err());
    }
}
