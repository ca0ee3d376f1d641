//! Negotiation of permessage-deflate parameters (RFC 7692 §7.1).

use super::EXTENSION_NAME;

/// permessage-deflate settings: what a client offers, or what a server accepts.
///
/// ```
/// use wsharp_proto::deflate::Deflate;
/// let offer = Deflate::default().client_no_context_takeover(true).client_max_window_bits(Some(12));
/// assert_eq!(
///     offer.offer_header(),
///     "permessage-deflate; client_no_context_takeover; client_max_window_bits=12"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deflate {
    /// The server resets its compressor after each message. Default `false`.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message. Default `false`.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (9..=15) the server may compress with; `None`: no limit (15).
    /// A server given 8 by a client declines that offer: the deflate backend cannot make an
    /// 8-bit window (RFC 7692 §7.1.2.1 lets a server decline).
    pub server_max_window_bits: Option<u8>,
    /// The largest window (8..=15) the client may compress with; `None`: no limit. A client
    /// sends a bare `client_max_window_bits` when this is `None`, telling the server it may
    /// limit it.
    pub client_max_window_bits: Option<u8>,
    /// The compression level, 0 (store) to 9 (best). Default 1: fast, as servers want.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 0 (compress everything).
    pub threshold: usize,
}

impl Default for Deflate {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 1,
            threshold: 0,
        }
    }
}

impl Deflate {
    /// Sets [`Deflate::server_no_context_takeover`].
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Sets [`Deflate::client_no_context_takeover`].
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// Sets [`Deflate::server_max_window_bits`] (clamped to 9..=15).
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = bits.map(|b| b.clamp(9, 15));
        self
    }

    /// Sets [`Deflate::client_max_window_bits`] (clamped to 9..=15).
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = bits.map(|b| b.clamp(9, 15));
        self
    }

    /// Sets [`Deflate::level`] (at most 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`Deflate::threshold`].
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The settings as they are used: the level at most 9, window sizes within 9..=15 (fields
    /// set directly are not checked).
    pub fn normalized(&self) -> Self {
        Self {
            level: self.level.min(9),
            server_max_window_bits: self.server_max_window_bits.map(|b| b.clamp(9, 15)),
            client_max_window_bits: self.client_max_window_bits.map(|b| b.clamp(9, 15)),
            ..*self
        }
    }

    /// The client's offer, for `Sec-WebSocket-Extensions`.
    pub fn offer_header(&self) -> String {
        let settings = self.normalized();
        let mut out = String::from(EXTENSION_NAME);
        if settings.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if settings.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = settings.server_max_window_bits {
            out.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match settings.client_max_window_bits {
            Some(bits) => out.push_str(&format!("; client_max_window_bits={bits}")),
            None => out.push_str("; client_max_window_bits"),
        }
        out
    }

    /// Client: checks the server's answer to [`offer_header`](Self::offer_header).
    ///
    /// # Errors
    /// [`NegotiationError`] if the answer names a parameter we did not offer or allow, repeats
    /// one, or gives a window size out of range.
    pub fn accept_response(&self, response: &str) -> Result<Negotiated, NegotiationError> {
        let settings = self.normalized();
        let p = parse_params(response)?;
        if p.client_max_window_bits == Some(None) || p.server_max_window_bits == Some(None) {
            return Err(NegotiationError::InvalidValue);
        }
        let server_bits = p.server_max_window_bits.flatten();
        let client_bits = p.client_max_window_bits.flatten();
        if let (Some(ours), Some(theirs)) = (settings.server_max_window_bits, server_bits)
            && theirs > ours
        {
            return Err(NegotiationError::InvalidValue);
        }
        if settings.server_max_window_bits.is_some() && server_bits.is_none() {
            // We asked the server to limit its window; an answer without the parameter
            // declined that (RFC 7692 §7.1.2.1), as Python `websockets` also judges it.
            return Err(NegotiationError::Unsupported(
                "server_max_window_bits was requested",
            ));
        }
        if settings.server_no_context_takeover && !p.server_no_context_takeover {
            return Err(NegotiationError::Unsupported(
                "server_no_context_takeover was requested",
            ));
        }
        if let (Some(ours), Some(theirs)) = (settings.client_max_window_bits, client_bits)
            && theirs > ours
        {
            return Err(NegotiationError::InvalidValue);
        }
        Ok(Negotiated {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || settings.client_no_context_takeover,
            server_max_window_bits: server_bits.unwrap_or(15),
            client_max_window_bits: client_bits
                .or(settings.client_max_window_bits)
                .unwrap_or(15),
        })
    }

    /// Server: picks the first acceptable offer among `offers` (each one element of
    /// `Sec-WebSocket-Extensions`; other extensions are skipped) and returns the agreement
    /// and the response header value. `None` declines them all.
    pub fn negotiate<S: AsRef<str>>(&self, offers: &[S]) -> Option<(Negotiated, String)> {
        offers
            .iter()
            .find_map(|offer| self.accept_offer(offer.as_ref()).ok())
    }

    fn accept_offer(&self, offer: &str) -> Result<(Negotiated, String), NegotiationError> {
        let settings = self.normalized();
        let p = parse_params(offer)?;
        let server_bits = match (p.server_max_window_bits, settings.server_max_window_bits) {
            (Some(None), _) => return Err(NegotiationError::InvalidValue),
            (Some(Some(8)), _) => return Err(NegotiationError::Unsupported("an 8-bit window")),
            (Some(Some(asked)), ours) => Some(ours.map_or(asked, |o| o.min(asked))),
            (None, ours) => ours,
        };
        // The client's window: we inflate with 15 bits whatever it uses, so a limit is only
        // sent if the client allows one and we configured one.
        let client_bits = match p.client_max_window_bits {
            Some(Some(asked)) => Some(
                settings
                    .client_max_window_bits
                    .map_or(asked, |o| o.min(asked)),
            ),
            Some(None) => settings.client_max_window_bits,
            None => None,
        };
        let negotiated = Negotiated {
            server_no_context_takeover: p.server_no_context_takeover
                || settings.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || settings.client_no_context_takeover,
            server_max_window_bits: server_bits.unwrap_or(15),
            client_max_window_bits: client_bits.unwrap_or(15),
        };
        let mut response = String::from(EXTENSION_NAME);
        if negotiated.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if negotiated.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = server_bits {
            response.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let Some(bits) = client_bits {
            response.push_str(&format!("; client_max_window_bits={bits}"));
        }
        Ok((negotiated, response))
    }
}

/// What both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's compression window, 9..=15.
    pub server_max_window_bits: u8,
    /// The client's compression window, 8..=15 (9..=15 when we compress).
    pub client_max_window_bits: u8,
}

/// Why an offer or a response was not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// Not a permessage-deflate element.
    #[error("not permessage-deflate")]
    OtherExtension,
    /// A parameter RFC 7692 does not define.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("duplicate parameter {0:?}")]
    DuplicateParameter(String),
    /// A value that is missing, not allowed, or out of range.
    #[error("invalid parameter value")]
    InvalidValue,
    /// Valid but not supported here.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

#[derive(Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(None)`: present without a value.
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_params(element: &str) -> Result<Params, NegotiationError> {
    let mut parts = element.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case(EXTENSION_NAME))
    {
        return Err(NegotiationError::OtherExtension);
    }
    let mut p = Params::default();
    let mut seen = [false; 4];
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (part, None),
        };
        let index = match name {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            other => return Err(NegotiationError::UnknownParameter(other.to_owned())),
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(NegotiationError::DuplicateParameter(name.to_owned()));
        }
        match (index, value) {
            (0, None) => p.server_no_context_takeover = true,
            (1, None) => p.client_no_context_takeover = true,
            (2, v) => p.server_max_window_bits = Some(v.map(window_bits).transpose()?),
            (3, v) => p.client_max_window_bits = Some(v.map(window_bits).transpose()?),
            _ => return Err(NegotiationError::InvalidValue),
        }
    }
    Ok(p)
}

fn unquote(value: &str) -> Result<&str, NegotiationError> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(NegotiationError::InvalidValue),
        None => Ok(value),
    }
}

fn window_bits(value: &str) -> Result<u8, NegotiationError> {
    match value {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => Ok(value.parse().expect("listed")),
        _ => Err(NegotiationError::InvalidValue),
    }
}

#[cfg(test)]
mod rfc7692_7_1_negotiation {
    use super::*;

    fn server(offers: &[&str]) -> Option<String> {
        Deflate::default().negotiate(offers).map(|(_, r)| r)
    }

    #[test]
    fn plain_offer_and_parameters() {
        assert_eq!(
            server(&["permessage-deflate"]).unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            server(&["permessage-deflate; client_max_window_bits"]).unwrap(),
            "permessage-deflate"
        );
        let (n, r) = Deflate::default()
            .negotiate(&["permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=\"11\""])
            .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
        );
        assert_eq!(
            (n.server_max_window_bits, n.client_max_window_bits),
            (10, 11)
        );
    }

    #[test]
    fn fault_6_bad_offers_are_declined_and_a_later_one_accepted() {
        for bad in [
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=09",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits=\"10",
            "permessage-deflate; server_max_window_bits=8",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(server(&[bad]), None, "{bad}");
            assert_eq!(
                server(&[bad, "permessage-deflate"]).as_deref(),
                Some("permessage-deflate"),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_limits_apply() {
        let ours = Deflate::default()
            .server_max_window_bits(Some(10))
            .server_no_context_takeover(true);
        let (n, r) = ours
            .negotiate(&["permessage-deflate; server_max_window_bits=12"])
            .unwrap();
        assert_eq!(n.server_max_window_bits, 10);
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
    }

    #[test]
    fn fault_19_client_rejects_what_it_did_not_offer_or_allow() {
        let offer = Deflate::default().server_max_window_bits(Some(10));
        // An answer that drops the window we asked the server to keep declines it.
        assert_eq!(
            offer.accept_response("permessage-deflate"),
            Err(NegotiationError::Unsupported(
                "server_max_window_bits was requested"
            ))
        );
        assert!(
            offer
                .accept_response("permessage-deflate; server_max_window_bits=10")
                .is_ok()
        );
        assert!(
            offer
                .accept_response("permessage-deflate; server_max_window_bits=12")
                .is_err()
        );
        assert!(
            offer
                .accept_response("permessage-deflate; server_max_window_bits=16")
                .is_err()
        );
        assert!(
            offer
                .accept_response("permessage-deflate; server_max_window_bits=7")
                .is_err()
        );
        assert!(
            offer
                .accept_response(
                    "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"
                )
                .is_err()
        );
        assert!(
            offer
                .accept_response("permessage-deflate; mystery")
                .is_err()
        );
        let n = Deflate::default()
            .accept_response("permessage-deflate; client_max_window_bits=9")
            .unwrap();
        assert_eq!(n.client_max_window_bits, 9);
    }
}
