//! Captures: from a pcap or pcapng file to in-order TCP byte runs, and back. Feeds the `wire` layer only;
//! nothing here reads libvirt bytes.
//!
//! - [`file`]: the pcap / pcapng container, one [`Packet`] at a time ([`CaptureReader`]).
//! - [`net`]: link, IP and TCP headers, from a packet to a [`TcpSegment`].
//! - [`tcp`]: TCP reassembly per connection and direction ([`Reassembler`]), gaps reported.
//! - [`write`]: the other way: recorded connections written as pcapng (for `virtwire record`).
//!
//! Parsing is by kept crates where they fit: `pcap-parser` reads pcap records and pcapng blocks,
//! `etherparse` Ethernet, VLAN, IPv4, IPv6 and TCP headers. Ours: the file buffer and record framing
//! (bounded lengths, clear errors, short reads), obsolete packet blocks, the Linux cooked v1 / v2 and BSD
//! loopback link headers (each module says which case fails), and reassembly (no kept crate does it).

pub mod file;
pub mod net;
pub mod tcp;
pub mod write;

pub use file::{CaptureError, CaptureErrorKind, CaptureReader, Format, MAX_RECORD, Packet};
pub use net::{Decoded, TcpSegment};
pub use tcp::{ConnId, Dir, EndReason, Event, GapReason, Reassembler};
