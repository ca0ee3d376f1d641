//! Incremental UTF-8 validation: a text message fails on the fragment where the error appears,
//! and a code point may be split across fragments.

/// Validates a byte stream chunk by chunk.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The bytes of an incomplete code point at the end of the last chunk (at most 3).
    partial: [u8; 4],
    partial_len: u8,
}

/// The stream is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk.
    ///
    /// # Errors
    /// As soon as the bytes seen so far cannot start a valid UTF-8 stream.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            // Complete the code point carried over from the last chunk, one byte at a time.
            while self.partial_len > 0 && !chunk.is_empty() {
                self.partial[self.partial_len as usize] = chunk[0];
                self.partial_len += 1;
                chunk = &chunk[1..];
                match simdutf8::compat::from_utf8(&self.partial[..self.partial_len as usize]) {
                    Ok(_) => self.partial_len = 0,
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) if self.partial_len == 4 => return Err(InvalidUtf8),
                    Err(_) => {}
                }
            }
            if self.partial_len > 0 {
                return Ok(());
            }
        }
        match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &chunk[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// If the stream ends inside a code point.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Whether the stream so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.partial_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(parts: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in parts {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn split_code_points_are_accepted() {
        let s = "κόσμε 𝄞".as_bytes();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                assert_eq!(feed_all(&[&s[..i], &s[i..j], &s[j..]]), Ok(()), "{i} {j}");
            }
        }
    }

    #[test]
    fn fails_on_the_chunk_with_the_error() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"abc"), Ok(()));
        assert_eq!(v.feed(&[0xC0, 0xAF]), Err(InvalidUtf8));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xED]), Ok(()));
        assert_eq!(
            v.feed(&[0xA0]),
            Err(InvalidUtf8),
            "surrogate fails before its last byte"
        );
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xF4, 0x90]), Err(InvalidUtf8), "above U+10FFFF");
    }

    #[test]
    fn truncated_at_the_end_fails() {
        assert_eq!(feed_all(&[&[0xE2, 0x82]]), Err(InvalidUtf8));
        assert_eq!(feed_all(&[b"a", &[0xF0], &[0x9D, 0x84]]), Err(InvalidUtf8));
    }
}
