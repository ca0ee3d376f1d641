//! permessage-deflate (RFC 7692): parameter negotiation and the per-message codec.

#[cfg(feature = "deflate")]
mod codec;
#[cfg(not(feature = "deflate"))]
#[path = "codec_off.rs"]
mod codec;
mod params;

#[cfg(feature = "deflate")]
/// The per-message codec a [`Connection`](crate::Connection) uses once permessage-deflate is
/// negotiated. An extension point, not needed to use the connection: public for tools that
/// measure or drive the codec alone (the benchmarks, a custom transport's own framing).
pub use codec::{Deflater, Inflater};
#[cfg(not(feature = "deflate"))]
pub(crate) use codec::{Deflater, Inflater};
pub use params::{Deflate, Negotiated, NegotiationError};

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";
