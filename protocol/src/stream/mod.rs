//! Streams as libvirt runs them: split data into STREAM packets, reassemble them, and follow each
//! stream's handshakes (docs/protocol.md §5) — plus the opt-in, **non-libvirt** [split replies](split_reply).
//!
//! A stream is opened by an ordinary call (STORAGE_VOL_UPLOAD 208, STORAGE_VOL_DOWNLOAD 209,
//! DOMAIN_OPEN_CONSOLE 201, DOMAIN_SCREENSHOT 211, …). Every later packet, in both directions, repeats
//! that call's prog, vers, proc and serial ([`StreamKey`]) with type STREAM or STREAM_HOLE:
//!
//! | packet | frame | sent by | meaning |
//! |---|---|---|---|
//! | [`StreamOp::Data`] | STREAM/CONTINUE, raw bytes | either | data; libvirt uses chunks of 262120 bytes |
//! | [`StreamOp::Hole`] | STREAM_HOLE/CONTINUE, `{i64 length; u32 flags}` | either | a hole (sparse streams only) |
//! | [`StreamOp::Eof`] | STREAM/CONTINUE, empty | server | no more data |
//! | [`StreamOp::Finish`] | STREAM/OK, empty | client | no more data; please confirm |
//! | [`StreamOp::Abort`] | STREAM/ERROR, empty | client | abort; please confirm |
//! | [`StreamOp::Confirm`] | STREAM/OK, empty | server | finish or abort done: the stream is over |
//! | [`StreamOp::Error`] | STREAM/ERROR, error body | server | the stream (or its finish) failed: over |
//!
//! An upload is client data…, finish, then the server's confirm (or error). A download is server
//! data…, end of file, the client's finish, the server's confirm. Either side may end early: the
//! client by abort, the server by error.
//!
//! - [`StreamSplitter`]: one side of one stream → packets of at most a chosen chunk size (default
//!   [`Limits::stream_chunk`](crate::Limits::stream_chunk) = 262120), lazily, borrowing the data.
//! - [`Reassembler`]: one end of a connection → every stream's packets back, borrowing the frames
//!   (or, for streams opened to assemble, one contiguous buffer), with the caps of
//!   [`Limits::stream_buffer_max`](crate::Limits::stream_buffer_max) and
//!   [`Limits::streams_max`](crate::Limits::streams_max), refusing what libvirt refuses.
//! - [`split_reply`]: the 2017 proposal of replies split into CONTINUE parts, made measurable. Not
//!   libvirt's protocol; never on by default.
//!
//! ```
//! use virtwire_protocol::{Compat, Frame, Limits};
//! use virtwire_protocol::stream::{Reassembler, Side, StreamKey, StreamOp, StreamOptions, StreamSplitter};
//! let limits = Limits::default();
//! // DOMAIN_SCREENSHOT (211), serial 3: the server sends 70000 bytes, then end of file.
//! let key = StreamKey::new(0x2000_8086, 1, 211, 3);
//! let mut server = StreamSplitter::new(key, Side::Server, &limits)?.with_chunk(32768, &limits)?;
//! let png = vec![7u8; 70_000];
//! let mut frames = Vec::new();
//! for p in server.data(&png)? { frames.push(p.to_bytes(&limits)?); }
//! frames.push(server.eof()?.to_bytes(&limits)?);
//!
//! let mut client = Reassembler::new(Side::Client, &limits, Compat::Strict);
//! client.open(key, StreamOptions::new())?;
//! let mut got = Vec::new();
//! for f in &frames {
//!     let frame = Frame::decode(f, &limits, Compat::Strict).unwrap();
//!     match client.receive(frame)?.unwrap().op {
//!         StreamOp::Data(d) => got.extend_from_slice(d), // borrowed from `f`
//!         StreamOp::Eof => break,
//!         other => panic!("{other:?}"),
//!     }
//! }
//! assert_eq!(got, png);
//! # Ok::<(), virtwire_protocol::stream::StreamError>(())
//! ```

use std::fmt;

use crate::header::{Header, MessageStatus, MessageType, program_name};

mod error;
mod packet;
mod reassemble;
mod split;
pub mod split_reply;

pub use error::{StreamError, cap_source};
pub use packet::{StreamOp, StreamPacket};
pub use reassemble::{Assembled, HoleAt, Reassembler, StreamOptions, StreamStatus};
pub use split::{DataPackets, StreamSplitter};
pub use split_reply::{
    SplitPlan, SplitReply, SplitReplyAssembler, SplitReplyCodec, SplitReplyEvent,
};

/// What identifies a stream on a connection: the opening call's program, version, procedure and
/// serial, repeated by every packet of the stream (libvirt matches all four).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Program number.
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number.
    pub procedure: i32,
    /// Serial of the opening call.
    pub serial: u32,
}

impl StreamKey {
    /// A key.
    pub const fn new(prog: u32, vers: u32, procedure: i32, serial: u32) -> Self {
        StreamKey {
            prog,
            vers,
            procedure,
            serial,
        }
    }

    /// The key of a header (the opening call, its reply, or any packet of the stream).
    pub const fn of(h: &Header) -> Self {
        StreamKey::new(h.prog, h.vers, h.procedure, h.serial)
    }

    /// A header of this stream with the given type and status.
    pub const fn header(&self, msg_type: MessageType, status: MessageStatus) -> Header {
        Header::new(
            self.prog,
            self.vers,
            self.procedure,
            msg_type,
            self.serial,
            status,
        )
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match program_name(self.prog) {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "{:#010x}", self.prog)?,
        }
        write!(
            f,
            " v{} proc {} serial {}",
            self.vers, self.procedure, self.serial
        )
    }
}

/// An end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that sends calls.
    Client,
    /// The end that sends replies.
    Server,
}

impl Side {
    /// The other end.
    pub const fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    /// `client` or `server`.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// How a side ended (its part of) a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The server's end of file (empty STREAM/CONTINUE).
    Eof,
    /// The client's finish (STREAM/OK).
    Finish,
    /// The client's abort (empty STREAM/ERROR).
    Abort,
    /// The server's confirmation (STREAM/OK): the stream is over.
    Confirm,
    /// The server's error (STREAM/ERROR with a body): the stream is over.
    Error,
}

impl End {
    /// `eof`, `finish`, `abort`, `confirm` or `error`.
    pub const fn name(self) -> &'static str {
        match self {
            End::Eof => "eof",
            End::Finish => "finish",
            End::Abort => "abort",
            End::Confirm => "confirm",
            End::Error => "error",
        }
    }
}
