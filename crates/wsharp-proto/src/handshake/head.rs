use bytes::BytesMut;

use super::HandshakeError;

/// The longest request or status line accepted. Over it: 414.
pub const MAX_REQUEST_LINE: usize = 8 << 10;

/// Collects an HTTP head from a byte stream, finding its end in linear time however the bytes
/// arrive, and keeps any bytes after it (the first frames may share a segment with the head).
#[derive(Debug)]
pub struct HeadReader {
    buf: BytesMut,
    scanned: usize,
    max: usize,
    /// Whether the first line is known to end within its limit.
    line_ok: bool,
}

impl HeadReader {
    /// A reader that refuses heads over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            max,
            line_ok: false,
        }
    }

    /// The buffer to read into (append to its end), with spare room reserved.
    pub fn buffer(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        &mut self.buf
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been received.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Looks for the end of the head in what was received. `Ok(Some(head))` splits the complete
    /// head off, leaving the bytes after it in the buffer ([`into_rest`](Self::into_rest)).
    ///
    /// # Errors
    /// [`HandshakeError::UriTooLong`] or [`HandshakeError::HeadTooLarge`] once a limit is passed.
    pub fn poll_head(&mut self) -> Result<Option<BytesMut>, HandshakeError> {
        let line_limit = MAX_REQUEST_LINE.min(self.max);
        // A TLS record (a handshake, 22, or an alert, 21, of version 3.x) can never start an
        // HTTP head: say so at once rather than wait for a head that never ends.
        if !self.line_ok
            && self.buf.len() >= 2
            && matches!(self.buf[0], 0x15 | 0x16)
            && self.buf[1] == 0x03
        {
            return Err(HandshakeError::TlsOnPlainConnection);
        }
        if !self.line_ok {
            // The first line fits if its CRLF starts within `line_limit` bytes. Checked for a
            // complete head too, and only until it is known, so the scan stays linear.
            let window = &self.buf[..self.buf.len().min(line_limit + 2)];
            if find(window, b"\r\n").is_some() {
                self.line_ok = true;
            } else if window.len() > line_limit
                && !(window.len() == line_limit + 1 && window[line_limit] == b'\r')
            {
                return Err(HandshakeError::UriTooLong { max: line_limit });
            }
        }
        let from = self.scanned.saturating_sub(3);
        if let Some(i) = find(&self.buf[from..], b"\r\n\r\n") {
            let end = from + i + 4;
            if end > self.max {
                return Err(HandshakeError::HeadTooLarge { max: self.max });
            }
            self.scanned = 0;
            self.line_ok = false;
            return Ok(Some(self.buf.split_to(end)));
        }
        self.scanned = self.buf.len();
        if self.buf.len() > self.max {
            return Err(HandshakeError::HeadTooLarge { max: self.max });
        }
        Ok(None)
    }

    /// The bytes received after the head.
    pub fn into_rest(self) -> BytesMut {
        self.buf
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_by_byte_keeps_the_rest() {
        let mut r = HeadReader::new(1024);
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x80";
        let mut head = None;
        for &b in input {
            r.buffer().extend_from_slice(&[b]);
            if let Some(h) = r.poll_head().unwrap() {
                head = Some(h);
            }
        }
        assert_eq!(&head.unwrap()[..], &input[..input.len() - 2]);
        assert_eq!(&r.into_rest()[..], b"\x81\x80");
    }

    #[test]
    fn a_tls_record_is_refused_at_its_second_byte() {
        let mut r = HeadReader::new(1024);
        r.buffer().extend_from_slice(&[0x16]);
        assert!(
            matches!(r.poll_head(), Ok(None)),
            "one byte says nothing yet"
        );
        r.buffer().extend_from_slice(&[0x03, 0x01, 0x02, 0x00]);
        assert!(matches!(
            r.poll_head(),
            Err(HandshakeError::TlsOnPlainConnection)
        ));
        // An HTTP head that merely contains those bytes later is still read.
        let mut r = HeadReader::new(1024);
        r.buffer()
            .extend_from_slice(b"GET /\x16\x03 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(r.poll_head().unwrap().is_some());
    }

    #[test]
    fn limits() {
        let mut r = HeadReader::new(16 << 10);
        r.buffer()
            .extend_from_slice(&vec![b'a'; MAX_REQUEST_LINE + 1]);
        assert!(matches!(
            r.poll_head(),
            Err(HandshakeError::UriTooLong { .. })
        ));
        // A complete head is held to the same line limit.
        let mut r = HeadReader::new(16 << 10);
        let line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        r.buffer().extend_from_slice(line.as_bytes());
        assert!(matches!(
            r.poll_head(),
            Err(HandshakeError::UriTooLong { .. })
        ));
        let mut r = HeadReader::new(16 << 10);
        let line = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE - 15)
        );
        r.buffer().extend_from_slice(line.as_bytes());
        assert!(r.poll_head().unwrap().is_some());
        let mut r = HeadReader::new(100);
        r.buffer().extend_from_slice(b"GET / HTTP/1.1\r\n");
        r.buffer().extend_from_slice(&[b'x'; 100]);
        assert!(matches!(
            r.poll_head(),
            Err(HandshakeError::HeadTooLarge { max: 100 })
        ));
    }
}
