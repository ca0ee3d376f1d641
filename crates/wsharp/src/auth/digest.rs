//! The arithmetic of HTTP Digest (RFC 7616 §3.4): the algorithms and the `response` value,
//! shared by the client and the server.

use md5::Md5;
use sha2::{Sha256, Sha512_256};

/// A Digest algorithm (RFC 7616 §3.3 and the IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `MD5`: what every Digest peer speaks, and the weakest.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`, the RFC 7616 recommendation.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl DigestAlgorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [Self; 6] = [
        Self::Sha512_256,
        Self::Sha512_256Sess,
        Self::Sha256,
        Self::Sha256Sess,
        Self::Md5,
        Self::Md5Sess,
    ];

    /// The algorithm named `name` (case-insensitive), or `None` for one we do not know.
    ///
    /// ```
    /// use wsharp::auth::DigestAlgorithm;
    /// assert_eq!(DigestAlgorithm::from_name("sha-256"), Some(DigestAlgorithm::Sha256));
    /// assert_eq!(DigestAlgorithm::from_name("SHA-1"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The registered name: `MD5`, `SHA-256-sess`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (HA1 bound to the nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// The same hash without `-sess`.
    pub fn base(self) -> Self {
        match self {
            Self::Md5 | Self::Md5Sess => Self::Md5,
            Self::Sha256 | Self::Sha256Sess => Self::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => Self::Sha512_256,
        }
    }

    /// How strong the hash is, for choosing among challenges: higher is stronger.
    #[cfg(feature = "client")]
    pub(crate) fn strength(self) -> u8 {
        match self.base() {
            Self::Md5 => 1,
            _ => 2,
        }
    }

    /// The hash of the `:`-joined `parts`, in lower-case hex.
    pub(crate) fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self.base() {
            Self::Md5 => run::<Md5>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            _ => run::<Sha512_256>(parts),
        }
    }

    /// HA1 of a user in a realm: `H(user:realm:password)`, what a server may keep instead of
    /// the password (an htdigest file holds the MD5 one).
    ///
    /// ```
    /// use wsharp::auth::DigestAlgorithm;
    /// // RFC 7616 §3.9.1's example.
    /// let ha1 = DigestAlgorithm::Md5.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
    /// assert_eq!(ha1.len(), 32);
    /// ```
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash(&[user.as_bytes(), realm.as_bytes(), password.as_bytes()])
    }
}

impl std::fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The inputs of one Digest `response` beyond HA1.
pub(crate) struct ResponseInput<'a> {
    pub(crate) algorithm: DigestAlgorithm,
    pub(crate) nonce: &'a str,
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
    /// `(qop, nc, cnonce)`, or `None` for the RFC 2069 form.
    pub(crate) qop: Option<(&'a str, &'a str, &'a str)>,
    /// The cnonce when there is no qop but the algorithm is `-sess`.
    pub(crate) cnonce: &'a str,
}

impl ResponseInput<'_> {
    /// The `response` value for the user whose plain HA1 is `ha1`.
    pub(crate) fn response(&self, ha1: &str) -> String {
        let a = self.algorithm;
        let cnonce = self.qop.map_or(self.cnonce, |(_, _, c)| c);
        let ha1 = if a.is_session() {
            a.hash(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()])
        } else {
            ha1.to_owned()
        };
        let ha2 = a.hash(&[self.method.as_bytes(), self.uri.as_bytes()]);
        match self.qop {
            Some((qop, nc, cnonce)) => a.hash(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ]),
            None => a.hash(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
    #[test]
    fn rfc_7616_examples() {
        let input = |algorithm| ResponseInput {
            algorithm,
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            method: "GET",
            uri: "/dir/index.html",
            qop: Some((
                "auth",
                "00000001",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            )),
            cnonce: "",
        };
        let md5 = DigestAlgorithm::Md5;
        let ha1 = md5.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            input(md5).response(&ha1),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let sha = DigestAlgorithm::Sha256;
        let ha1 = sha.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            input(sha).response(&ha1),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// RFC 2617 §3.5: the MD5 example, and the RFC 2069 form computed by hand.
    #[test]
    fn rfc_2617_example_and_the_form_without_qop() {
        let md5 = DigestAlgorithm::Md5;
        let ha1 = md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let mut input = ResponseInput {
            algorithm: md5,
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            method: "GET",
            uri: "/dir/index.html",
            qop: Some(("auth", "00000001", "0a4f113b")),
            cnonce: "",
        };
        assert_eq!(input.response(&ha1), "6629fae49393a05397450978507c4ef1");
        input.qop = None;
        let ha2 = md5.hash(&[b"GET", b"/dir/index.html"]);
        let expect = md5.hash(&[
            ha1.as_bytes(),
            b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            ha2.as_bytes(),
        ]);
        assert_eq!(input.response(&ha1), expect);
    }

    #[test]
    fn names_round_trip() {
        for a in DigestAlgorithm::ALL {
            assert_eq!(DigestAlgorithm::from_name(a.name()), Some(a));
            assert!(!a.base().is_session());
            assert_eq!(a.is_session(), a.name().ends_with("-sess"));
        }
        assert_eq!(DigestAlgorithm::Sha512_256.ha1("u", "r", "p").len(), 64);
    }
}
