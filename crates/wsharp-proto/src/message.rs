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
