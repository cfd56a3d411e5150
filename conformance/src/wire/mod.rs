//! The wire layer: the one place in this crate where libvirt bytes are read, always through
//! `virtwire_protocol`.
//!
//! - [`session`]: per connection and direction, bytes → frames with protocol's `FrameDecoder`;
//!   a framing error, a gap or the end stops a direction.
//! - [`judge`]: one frame → header and body decoded in the chosen mode, with the schema → a record.
//! - [`record`]: the record model, serde-serialisable (the JSON schema of `decode --format json`).
//! - [`json`]: how protocol values (schema values, the error struct, errors) look in JSON.
//! - [`facts`]: the error bodies in a connection's kept traffic (for the runner's facts).
//! - [`decoder`]: captures and raw streams driven through sessions into a [`Sink`].
//! - [`frames`]: what traces and replays need of frames (message JSON, serial rewriting, a capture
//!   split per connection), so that they never read libvirt bytes themselves.
//!
//! Framing always uses libvirt's own rule (length word checked against the limits profile, header
//! read leniently), so that one bad message does not lose the framing: the chosen mode then judges
//! each frame's header and body. A message that fails to decode is still reported with its header
//! and the error, and decoding goes on with the next frame. Only a bad length word (or a hole in
//! the TCP stream) stops a direction: there is no way to find the next frame without guessing.

use std::io;

pub mod decoder;
pub mod facts;
pub mod frames;
pub mod json;
pub mod judge;
pub mod peer;
pub mod record;
pub mod session;

pub use decoder::{Decoder, Options};
pub use judge::Judge;
pub use record::{BodyOut, MessageRecord, Origin, Record, Stats};

/// The ports whose traffic is libvirt RPC by default: libvirtd's plain TCP and TLS ports.
pub const DEFAULT_PORTS: [u16; 2] = [virtwire_protocol::ports::TCP, virtwire_protocol::ports::TLS];

/// [`DEFAULT_PORTS`] and then `extra` (a `--port` flag's values), each once, in that order.
pub fn ports_with(extra: &[u16]) -> Vec<u16> {
    let mut ports = DEFAULT_PORTS.to_vec();
    for p in extra {
        if !ports.contains(p) {
            ports.push(*p);
        }
    }
    ports
}

/// Where records go.
pub trait Sink {
    /// Take one record.
    fn record(&mut self, r: &Record<'_>) -> io::Result<()>;
}

impl<F: FnMut(&Record<'_>) -> io::Result<()>> Sink for F {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        self(r)
    }
}
