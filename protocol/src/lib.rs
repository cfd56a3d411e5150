//! # virtwire-protocol
//!
//! The one decoder of the libvirt RPC wire protocol used by every part of virtwire: frames, the
//! 24-byte header, message types and statuses, FD counts, error bodies, keepalive, stream data and
//! holes — with every size limit enforced before anything is allocated, and an encoder for all of it.
//!
//! No IO, no async, no global state: bytes in, values out ([`FrameDecoder`] for byte streams,
//! [`Frame::decode`] / [`parse_frame`] for buffers, [`Message::decode`] for bodies).
//!
//! ```
//! use virtwire_protocol::{Compat, Frame, Limits, Message, Body};
//! // CONNECT_OPEN("qemu:///system", 0), serial 1.
//! let bytes = [
//!     0x00, 0x00, 0x00, 0x38, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
//!     0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0e, b'q', b'e', b'm', b'u', b':', b'/', b'/', b'/', b's',
//!     b'y', b's', b't', b'e', b'm', 0, 0, 0, 0, 0, 0,
//! ];
//! let frame = Frame::decode(&bytes, &Limits::default(), Compat::Strict)?;
//! assert_eq!(frame.header.prog_name(), Some("remote"));
//! let msg = Message::decode(frame, &Limits::default(), Compat::Strict)?;
//! assert!(matches!(msg.body, Body::Procedure { .. }));
//! # Ok::<(), virtwire_protocol::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod error;
pub mod frame;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod header;
pub mod limits;
pub mod schema;
pub mod stream;
pub mod xdr;

/// libvirtd's listening ports (libvirtd.conf `tcp_port`, `tls_port`; remote_driver.h
/// `LIBVIRTD_TCP_PORT`, `LIBVIRTD_TLS_PORT`): the defaults of every libvirt client and server.
pub mod ports {
    /// Plain TCP (`qemu+tcp://host/system`).
    pub const TCP: u16 = 16509;
    /// TLS (`qemu+tls://host/system`, and `qemu://host/system`).
    pub const TLS: u16 = 16514;
}

pub use body::{Body, BodyKind, BodyRole, ErrorBody, KeepaliveProc, Message, StreamHole};
pub use error::{Category, Error, ErrorKind, LimitKind, Op, PathSeg, Result};
pub use frame::{
    Frame, FrameBuilder, FrameDecoder, OwnedFrame, Parsed, check_length, encode_frame, frames,
    parse_frame,
};
pub use header::{
    Header, HeaderField, HeaderPeek, MessageStatus, MessageType, Program, program, program_name,
};
pub use limits::{InvalidLimits, Limits, LimitsBuilder, Profile};
pub use stream::{Reassembler, StreamError, StreamKey, StreamPacket, StreamSplitter};
pub use xdr::{Compat, Reader, Writer};
