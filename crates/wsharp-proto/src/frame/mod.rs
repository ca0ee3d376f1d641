//! Frames (RFC 6455 §5.2): header parsing and encoding, and masking.

mod header;
mod mask;

pub use header::{FrameHeader, MAX_HEADER_LEN, OpCode, encode_header, parse_header};
pub use mask::apply_mask;
