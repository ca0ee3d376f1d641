//! Without the `deflate` feature there is no codec: these stand-ins cannot be made, so a
//! connection never holds compression state and its compressed paths compile away.

use bytes::Bytes;

use crate::error::ProtocolError;

/// Compresses outgoing messages; uninhabited without the `deflate` feature.
#[derive(Debug)]
pub(crate) enum Deflater {}

/// Inflates incoming messages; uninhabited without the `deflate` feature.
#[derive(Debug)]
pub(crate) enum Inflater {}

impl Deflater {
    pub(crate) fn is_allocated(&self) -> bool {
        match *self {}
    }

    pub(crate) fn compress(&mut self, _input: &[u8]) -> Bytes {
        match *self {}
    }

    pub(crate) fn compress_part(&mut self, _input: &[u8], _last: bool) -> Bytes {
        match *self {}
    }
}

impl Inflater {
    pub(crate) fn is_allocated(&self) -> bool {
        match *self {}
    }

    pub(crate) fn inflate(
        &mut self,
        _input: &[u8],
        _fin: bool,
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), ProtocolError> {
        match *self {}
    }
}
