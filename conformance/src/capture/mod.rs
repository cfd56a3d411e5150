//! Capture reading: from a pcap or pcapng file to in-order TCP byte runs. Feeds the `wire` layer only;
//! nothing here reads libvirt bytes.
//!
//! - [`file`]: the pcap / pcapng container, one [`Packet`] at a time ([`CaptureReader`]).
//! - [`net`]: link, IP and TCP headers, from a packet to a [`TcpSegment`].
//! - [`tcp`]: TCP reassembly per connection and direction ([`Reassembler`]), gaps reported.

pub mod file;
pub mod net;
pub mod tcp;

pub use file::{CaptureError, CaptureErrorKind, CaptureReader, Format, MAX_RECORD, Packet};
pub use net::{Decoded, TcpSegment};
pub use tcp::{ConnId, Dir, EndReason, Event, GapReason, Reassembler};
