//! The closing handshake and failing the connection (RFC 6455 §5.5.1, §7.1.7, §7.4).

use bytes::Bytes;

use super::{Connection, Event, Life};
use crate::close::{CloseCode, CloseFrame, CloseStatus};
use crate::error::{Failure, SendError};
use crate::frame::OpCode;
use crate::message::Utf8Bytes;

/// The peer's close frame and our failure, once there is one.
#[derive(Debug, Default)]
pub(super) struct Ending {
    /// `Some` once the peer's close frame arrived (`Some(None)`: it had no status code).
    pub(super) peer_close: Option<Option<CloseFrame>>,
    pub(super) failure: Option<Failure>,
    /// The transport's input ended (EOF).
    pub(super) eof: bool,
}

/// A close reason cut to at most 123 bytes on a character boundary.
pub(super) fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(crate::close::MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

impl Connection {
    /// The code and reason the application should see for the end of the connection, once
    /// closed: the peer's close code (1005 if its close had none), or 1006 if the connection
    /// ended without a close frame from the peer.
    pub fn close_status(&self) -> Option<CloseStatus> {
        if self.is_receiving() {
            return None;
        }
        let (code, reason) = match self.ending.as_ref().and_then(|e| e.peer_close.as_ref()) {
            Some(Some(frame)) => (frame.code, frame.reason.clone()),
            Some(None) => (CloseCode::NO_STATUS, Utf8Bytes::default()),
            None => (CloseCode::ABNORMAL, Utf8Bytes::default()),
        };
        Some(CloseStatus {
            code,
            reason,
            was_clean: self.is_close_handshake_done(),
        })
    }

    /// Whether the close handshake completed: both close frames were exchanged and the
    /// connection did not fail. Nothing more is due from the peer, so a server may then close
    /// the transport at once instead of reading until the peer's end of stream (RFC 6455 §7.1.1:
    /// the server closes the TCP connection first).
    pub fn is_close_handshake_done(&self) -> bool {
        !self.is_receiving()
            && self
                .ending
                .as_ref()
                .is_some_and(|e| e.peer_close.is_some() && e.failure.is_none())
    }

    /// Why we failed the connection, if we did.
    pub fn failure(&self) -> Option<&Failure> {
        self.ending.as_ref().and_then(|e| e.failure.as_ref())
    }

    /// How the connection ended, recorded from the first close frame or failure on.
    pub(super) fn ending_mut(&mut self) -> &mut Ending {
        self.ending.get_or_insert_with(Box::default)
    }

    /// Starts the close handshake with `frame` (`None`: no status code). Does nothing if a close
    /// frame was already sent.
    ///
    /// # Errors
    /// [`SendError::InvalidCloseCode`] for a code that may not be sent (1005, 1006, 1015, ...),
    /// [`SendError::CloseReasonTooLong`] for a reason over 123 bytes; nothing is sent.
    pub fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), SendError> {
        if let Some(f) = &frame {
            CloseFrame::new(f.code, f.reason.as_str())?;
        }
        if self.life == Life::Open {
            self.send_close_frame(frame.as_ref());
        }
        Ok(())
    }

    /// Fails the connection (RFC 6455 §7.1.7): queues a close frame with the error's code unless
    /// one was sent, stops processing input, and reports the error.
    pub(super) fn fail(&mut self, error: impl Into<Failure>) {
        let error = error.into();
        if self.life == Life::Open {
            let frame = CloseFrame {
                code: error.close_code(),
                reason: Utf8Bytes::from(truncate_reason(&error.to_string())),
            };
            self.send_close_frame(Some(&frame));
        }
        self.rbuf.clear();
        self.frame = None;
        self.message = None;
        self.fragments = Vec::new();
        self.compressed = false;
        self.drop_inflated();
        self.set_closed();
        self.events.push_back(Event::Failed(error.clone()));
        self.ending_mut().failure = Some(error);
    }

    pub(super) fn send_close_frame(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map_or_else(Bytes::new, CloseFrame::to_payload);
        self.write_frame(OpCode::Close, true, payload);
        self.life = Life::Closing;
        // A message in parts ends unfinished: nothing may follow the close.
        self.sending = None;
    }
}
