//! permessage-deflate (RFC 7692): parameter negotiation and the per-message codec.

mod codec;
mod params;

pub use codec::{Deflater, Inflater};
pub use params::{Deflate, Negotiated, NegotiationError};

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";
