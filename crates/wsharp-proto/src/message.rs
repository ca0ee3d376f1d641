//! Messages and the UTF-8-checked byte buffer that carries text.

use bytes::Bytes;

use crate::close::CloseFrame;

/// Immutable bytes known to be valid UTF-8: a `str` that shares its buffer like [`Bytes`].
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

#[allow(
    unsafe_code,
    reason = "the one place that skips a second UTF-8 check; see SAFETY"
)]
mod unchecked {
    use bytes::Bytes;

    impl super::Utf8Bytes {
        /// Wraps bytes without checking them (the receive path, after its incremental check).
        ///
        /// # Safety
        /// `bytes` must be valid UTF-8: [`as_str`](Self::as_str) hands them out as a `str`
        /// unchecked. Debug builds check it.
        pub(crate) unsafe fn from_utf8_unchecked(bytes: Bytes) -> Self {
            debug_assert!(
                std::str::from_utf8(&bytes).is_ok(),
                "Utf8Bytes::from_utf8_unchecked given invalid UTF-8"
            );
            Self(bytes)
        }

        /// The text as a `str`.
        pub fn as_str(&self) -> &str {
            // SAFETY: every constructor of `Utf8Bytes` validates the bytes as UTF-8 or takes
            // them from a `String`/`&'static str`, and the bytes are immutable afterwards.
            unsafe { std::str::from_utf8_unchecked(&self.0) }
        }
    }
}

impl Utf8Bytes {
    /// Text from a static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl std::fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The kind of a data message, for messages sent or received in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

/// One part of a data message received in parts (see
/// [`Connection::set_receive_parts`](crate::Connection::set_receive_parts)).
///
/// A text message's parts may split a character between them; the message as a whole is
/// checked as it arrives, and the connection fails (1007) before the part holding an invalid
/// byte is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Text or binary: the same for every part of a message.
    pub kind: MessageKind,
    /// The bytes of this part, in order after the previous part's.
    pub data: Bytes,
    /// Whether this part ends the message.
    pub last: bool,
}

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping with its payload (at most 125 bytes).
    Ping(Bytes),
    /// A pong with its payload (at most 125 bytes).
    Pong(Bytes),
    /// A close frame; `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Self::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Binary(b.into())
    }

    /// Whether this is a text or binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b.len(),
            Self::Close(c) => c.as_ref().map_or(0, |c| 2 + c.reason.len()),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text message (websocket-sharp's `IsText`).
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message (websocket-sharp's `IsBinary`).
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// Whether this is a ping (websocket-sharp's `IsPing`).
    pub fn is_ping(&self) -> bool {
        matches!(self, Self::Ping(_))
    }

    /// Whether this is a pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, Self::Pong(_))
    }

    /// Whether this is a close frame.
    pub fn is_close(&self) -> bool {
        matches!(self, Self::Close(_))
    }

    /// The text of a text message (websocket-sharp's `Data`); `None` for the other kinds.
    ///
    /// ```
    /// use wsharp_proto::Message;
    /// assert_eq!(Message::text("héllo").as_text(), Some("héllo"));
    /// assert_eq!(Message::binary(vec![104, 105]).as_text(), None);
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// The payload's bytes (websocket-sharp's `RawData`): the text's UTF-8, the binary data, a
    /// ping's or pong's payload, or a close frame's reason.
    ///
    /// ```
    /// use wsharp_proto::Message;
    /// assert_eq!(Message::text("hi").as_bytes(), b"hi");
    /// assert_eq!(Message::binary(vec![0, 255]).as_bytes(), [0, 255]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.as_ref().map_or(&[][..], |c| c.reason.as_bytes()),
        }
    }

    /// The payload's bytes, owned, without copying (as [`as_bytes`](Self::as_bytes)).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(t) => t.into_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.map_or_else(Bytes::new, |c| c.reason.into_bytes()),
        }
    }

    /// The text of a text message, owned, without copying; any other message back as it was.
    ///
    /// ```
    /// use wsharp_proto::Message;
    /// let text = Message::text("hi").into_text().unwrap();
    /// assert_eq!(text, "hi");
    /// assert!(Message::binary(vec![104, 105]).into_text().is_err());
    /// ```
    ///
    /// # Errors
    /// The message itself when it is not text.
    pub fn into_text(self) -> Result<Utf8Bytes, Self> {
        match self {
            Self::Text(t) => Ok(t),
            other => Err(other),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Self::Binary(v.into())
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b)
    }
}

#[cfg(test)]
mod readers {
    use super::*;
    use crate::CloseCode;

    #[test]
    fn every_kind_answers_its_own_questions() {
        let all = [
            Message::text("t"),
            Message::binary(vec![1]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::from_static(b"q")),
            Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye").unwrap())),
        ];
        let kinds: Vec<[bool; 5]> = all
            .iter()
            .map(|m| {
                [
                    m.is_text(),
                    m.is_binary(),
                    m.is_ping(),
                    m.is_pong(),
                    m.is_close(),
                ]
            })
            .collect();
        for (i, k) in kinds.iter().enumerate() {
            assert_eq!(k.iter().filter(|b| **b).count(), 1);
            assert!(k[i]);
        }
        let bytes: Vec<&[u8]> = all.iter().map(Message::as_bytes).collect();
        assert_eq!(bytes, [&b"t"[..], b"\x01", b"p", b"q", b"bye"]);
        let data: Vec<Bytes> = all.iter().cloned().map(Message::into_data).collect();
        assert_eq!(data[4], "bye");
        assert_eq!(Message::Close(None).as_bytes(), b"");
        assert_eq!(all[0].as_text(), Some("t"));
        assert!(all[1..].iter().all(|m| m.as_text().is_none()));
        assert_eq!(all[2].clone().into_text(), Err(all[2].clone()));
    }
}
