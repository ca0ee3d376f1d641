//! The sans-IO core of wsharp: RFC 6455 WebSockets as a state machine that takes bytes and gives
//! bytes and events. It performs no I/O, spawns nothing and reads no clock, so any runtime (or
//! none) can drive it, and every rule is testable byte for byte.
//!
//! ```text
//!   socket bytes ──► Connection::recv_buffer ──► poll_event ──► application
//!   application  ──► Connection::send / close ──► transmit_slices / advance_transmit ──► socket
//! ```
//!
//! The opening handshake lives in [`handshake`] (on `http` types); after it, a [`Connection`]
//! does the framing, masking, fragmentation, UTF-8 checks, ping/pong and the close handshake.
//!
//! # Example: one message between two in-memory endpoints
//! ```
//! use wsharp_proto::{Config, Connection, Event, Message, Role};
//! use std::io::IoSlice;
//!
//! let mut client = Connection::new(Role::Client, Config::default());
//! let mut server = Connection::new(Role::Server, Config::default());
//! client.send(Message::text("hello")).unwrap();
//!
//! let mut slices = [IoSlice::new(&[]); 8];
//! let n = client.transmit_slices(&mut slices);
//! let wire: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
//! client.advance_transmit(wire.len());
//!
//! server.handle_data(&wire);
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::text("hello"))));
//! ```
//!
//! # Limits
//! Every size the peer controls is bounded by [`Limits`], checked before memory is allocated:
//! frames 16 MiB, messages 64 MiB, handshake heads 16 KiB and 100 headers by default. A message
//! being received holds at most its limit plus [`growth::GROWTH_STEP_MAX`] while it grows.
#![deny(unsafe_code)]

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod growth;
pub mod handshake;
pub mod message;
mod pool;
pub mod utf8;

pub use close::{CloseCode, CloseFrame, CloseStatus};
pub use config::{Config, Limits, Role};
pub use connection::{Connection, Event, Lifecycle, PreparedMessage, State};
pub use error::{Failure, ProtocolError, SendError};
pub use message::{Message, MessageKind, Part, Utf8Bytes};

pub use bytes;
pub use http;
