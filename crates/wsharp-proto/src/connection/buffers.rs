//! The receive buffer lent to the I/O layer, and giving buffers back when idle.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::{COMPACT_MAX, Connection, InFrame, READ_SLACK};

impl Connection {
    /// The receive buffer, with room for a read appended at its end
    /// ([`Config::read_buffer_size`](crate::Config::read_buffer_size), or more while a large frame arrives). Read into its spare
    /// capacity; [`poll_event`](Self::poll_event) then parses frames as it is asked for them,
    /// one message at a time, so that replies to a message leave before the outcome of any later
    /// frame (a protocol error in the next frame closes the connection only after the
    /// application saw this message).
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        self.prepare_read();
        &mut self.rbuf
    }

    /// [`recv_buffer`](Self::recv_buffer)'s spare room as the next read should fill it: all
    /// of it, but while a frame larger than [`Config::read_buffer_size`](crate::Config::read_buffer_size) arrives, only up to
    /// 64 bytes past that frame's end, and between such frames one frame's worth and 64 bytes.
    /// Each large frame then arrives in a buffer of its own size and leaves without a copy,
    /// where a read that ran far into the next frame would make the buffer grow (and copy) for
    /// its tail; the 64 bytes make a read short when the socket holds no more, so that the
    /// I/O layer knows it is drained without another read.
    pub fn recv_room(&mut self) -> bytes::buf::Limit<&mut BytesMut> {
        let limit = self.prepare_read();
        bytes::BufMut::limit(&mut self.rbuf, limit)
    }

    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size), at least 1.
    pub(super) fn read_size(&self) -> usize {
        self.config.read_buffer_size.max(1)
    }

    /// Makes room for the next read; returns the most bytes it should take.
    pub(super) fn prepare_read(&mut self) -> usize {
        let read_size = self.read_size();
        let (want, limit) = match &self.frame {
            Some(InFrame { header, .. }) => {
                // The room grows with what has arrived, so a header that claims a huge
                // payload reserves nothing before its bytes come.
                let rest = (header.payload_len as usize)
                    .saturating_sub(self.rbuf.len())
                    .min(self.rbuf.len().max(read_size));
                if header.payload_len as usize > read_size {
                    (rest + READ_SLACK, rest + READ_SLACK)
                } else {
                    (read_size, usize::MAX)
                }
            }
            None if self.large_frame > 0 => {
                let room = self.large_frame + READ_SLACK;
                (room, room)
            }
            None => (read_size, usize::MAX),
        };
        if self.rbuf.capacity() == 0 {
            self.rbuf = crate::pool::take(want);
        } else if self.rbuf.capacity() - self.rbuf.len() < want {
            self.rbuf.reserve(want);
        }
        limit.max(1)
    }

    /// Gives back the buffers that hold nothing: the receive buffer between frames (to this
    /// thread's buffer pool), the reassembly and inflate buffers between messages, and the
    /// output buffers once written. A partial frame, or output the peer has not taken yet, of a
    /// few bytes moves to a buffer of its own size. Call it when the transport has nothing to read (a read would block), so that an
    /// idle connection holds no buffer; the next read takes one again.
    pub fn release_idle_buffers(&mut self) {
        let read_size = self.read_size();
        if self.rbuf.is_empty() {
            crate::pool::give(std::mem::take(&mut self.rbuf), read_size);
        } else if self.rbuf.len() <= COMPACT_MAX && self.rbuf.capacity() >= 4 * self.rbuf.len() {
            let partial = BytesMut::from(&self.rbuf[..]);
            let mut buf = std::mem::replace(&mut self.rbuf, partial);
            buf.clear();
            crate::pool::give(buf, read_size);
        }
        if self.fragments.is_empty() && self.fragments.capacity() > 0 {
            self.fragments = Vec::new();
        }
        if self.inflated().is_some_and(Vec::is_empty) {
            self.drop_inflated();
        }
        if self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        if self.out.len == 0 {
            if self.out.queue.capacity() > 0 {
                self.out.queue = VecDeque::new();
            }
            crate::pool::give(std::mem::take(&mut self.out.tail), read_size);
        } else if self.out.tail.len() <= COMPACT_MAX
            && self.out.tail.capacity() >= 4 * self.out.tail.len()
        {
            // Output the peer has not taken yet: kept in a buffer of its size.
            let pending = BytesMut::from(&self.out.tail[..]);
            let mut buf = std::mem::replace(&mut self.out.tail, pending);
            buf.clear();
            crate::pool::give(buf, read_size);
        }
    }

    /// Bytes of buffer memory the connection holds (capacity, used or not), compression state
    /// aside.
    pub fn buffer_capacity(&self) -> usize {
        self.rbuf.capacity()
            + self.fragments.capacity()
            + self.inflated().map_or(0, Vec::capacity)
            + self.out.tail.capacity()
            + self.out.queue.iter().map(Bytes::len).sum::<usize>()
    }

    /// Frees an empty receive buffer that a large frame grew past four reads' worth.
    pub(super) fn drop_grown_buffer(&mut self) {
        if self.rbuf.capacity() > 4 * self.read_size() {
            self.rbuf = BytesMut::new();
        }
    }
}
