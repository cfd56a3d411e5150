//! Stream packets: what a STREAM or STREAM_HOLE frame means, given who sent it (docs/protocol.md §5).

use std::borrow::Cow;

use crate::body::{ErrorBody, StreamHole};
use crate::error::{Error, ErrorKind};
use crate::frame::{Frame, encode_frame};
use crate::header::{Header, MessageStatus, MessageType};
use crate::limits::{HEADER_LEN, LEN_WORD, Limits, MIN_FRAME};
use crate::xdr::{Compat, Reader};

use super::{End, Side, StreamError, StreamKey};

/// One stream packet, as libvirt means it. The same bytes mean different things by direction:
/// STREAM/OK is a client's finish or a server's confirmation; an empty STREAM/CONTINUE is a server's
/// end of file or a client's zero-byte write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamOp<'a> {
    /// STREAM/CONTINUE with raw data (no XDR length, no padding). Never empty from a server (an
    /// empty one is [`StreamOp::Eof`]); may be empty from a client (libvirt writes zero bytes).
    Data(&'a [u8]),
    /// STREAM_HOLE/CONTINUE: `virNetStreamHole` (sparse streams only), either direction.
    Hole(StreamHole),
    /// STREAM/CONTINUE with no data from a server: its end of file (`virNetServerProgramSendStreamData`
    /// with `len == 0`).
    Eof,
    /// STREAM/OK, empty, from a client: finish; the server answers [`StreamOp::Confirm`] or
    /// [`StreamOp::Error`].
    Finish,
    /// STREAM/ERROR, empty, from a client: abort; the server answers [`StreamOp::Confirm`] or
    /// [`StreamOp::Error`].
    Abort,
    /// STREAM/OK, empty, from a server: confirmation of the client's finish or abort.
    Confirm,
    /// STREAM/ERROR with a `virNetMessageError` body, from a server: the stream failed (or the
    /// finish / abort did). Ends the stream.
    Error(ErrorBody<'a>),
}

impl<'a> StreamOp<'a> {
    /// A short name (`data`, `hole`, `eof`, `finish`, `abort`, `confirm`, `error`).
    pub const fn name(&self) -> &'static str {
        match self {
            StreamOp::Data(_) => "data",
            StreamOp::Hole(_) => "hole",
            StreamOp::Eof => "eof",
            StreamOp::Finish => "finish",
            StreamOp::Abort => "abort",
            StreamOp::Confirm => "confirm",
            StreamOp::Error(_) => "error",
        }
    }

    /// The end this packet marks, if it is one.
    pub const fn end(&self) -> Option<End> {
        match self {
            StreamOp::Data(_) | StreamOp::Hole(_) => None,
            StreamOp::Eof => Some(End::Eof),
            StreamOp::Finish => Some(End::Finish),
            StreamOp::Abort => Some(End::Abort),
            StreamOp::Confirm => Some(End::Confirm),
            StreamOp::Error(_) => Some(End::Error),
        }
    }

    /// Whether `sender` can send this packet: data and holes either side; end of file, confirmation
    /// and error a server; finish and abort a client.
    pub const fn sent_by(&self, sender: Side) -> bool {
        match self {
            StreamOp::Data(_) | StreamOp::Hole(_) => true,
            StreamOp::Eof | StreamOp::Confirm | StreamOp::Error(_) => {
                matches!(sender, Side::Server)
            }
            StreamOp::Finish | StreamOp::Abort => matches!(sender, Side::Client),
        }
    }

    /// The frame type and status that carry this packet.
    pub const fn type_status(&self) -> (MessageType, MessageStatus) {
        match self {
            StreamOp::Data(_) | StreamOp::Eof => (MessageType::Stream, MessageStatus::Continue),
            StreamOp::Hole(_) => (MessageType::StreamHole, MessageStatus::Continue),
            StreamOp::Finish | StreamOp::Confirm => (MessageType::Stream, MessageStatus::Ok),
            StreamOp::Abort | StreamOp::Error(_) => (MessageType::Stream, MessageStatus::Error),
        }
    }
}

/// A stream packet with the stream it belongs to: what the splitter produces and the reassembler
/// hands back. The data of [`StreamOp::Data`] and the strings of [`StreamOp::Error`] borrow from the
/// caller's buffer (splitter) or the received frame (reassembler): nothing is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamPacket<'a> {
    /// The opening call's (prog, vers, proc, serial), repeated by every packet of the stream.
    pub key: StreamKey,
    /// What the packet is.
    pub op: StreamOp<'a>,
}

impl<'a> StreamPacket<'a> {
    /// A packet.
    pub const fn new(key: StreamKey, op: StreamOp<'a>) -> Self {
        StreamPacket { key, op }
    }

    /// The header of the frame carrying this packet.
    pub const fn header(&self) -> Header {
        let (t, s) = self.op.type_status();
        self.key.header(t, s)
    }

    /// The payload bytes: borrowed for data, encoded for holes and error bodies, empty otherwise.
    pub fn payload(&self, limits: &Limits) -> Result<Cow<'a, [u8]>, StreamError> {
        Ok(match &self.op {
            StreamOp::Data(d) => Cow::Borrowed(*d),
            StreamOp::Hole(h) => Cow::Owned(h.to_bytes().to_vec()),
            StreamOp::Error(e) => Cow::Owned(
                e.to_bytes(limits)
                    .map_err(|e| StreamError::codec(Some(self.key), e.in_field("error")))?,
            ),
            StreamOp::Eof | StreamOp::Finish | StreamOp::Abort | StreamOp::Confirm => {
                Cow::Borrowed(&[])
            }
        })
    }

    /// The frame split in two for vectored writes: the length word and header (28 bytes), and the
    /// payload (borrowed for data). The total is checked against `limits` as [`encode_frame`] does.
    pub fn wire_parts(
        &self,
        limits: &Limits,
    ) -> Result<([u8; MIN_FRAME], Cow<'a, [u8]>), StreamError> {
        let payload = self.payload(limits)?;
        let total = MIN_FRAME as u64 + payload.len() as u64;
        if total > limits.frame_max() {
            return Err(StreamError::codec(
                Some(self.key),
                Error::encode(
                    ErrorKind::OverLimit {
                        limit: crate::LimitKind::Payload,
                        max: limits.payload_max() as u64,
                        actual: payload.len() as u64,
                    },
                    MIN_FRAME as u64,
                )
                .in_field("payload"),
            ));
        }
        let mut head = [0u8; MIN_FRAME];
        head[..LEN_WORD].copy_from_slice(&(total as u32).to_be_bytes());
        head[LEN_WORD..].copy_from_slice(&self.header().to_bytes());
        Ok((head, payload))
    }

    /// Append the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, limits: &Limits) -> Result<(), StreamError> {
        let payload = self.payload(limits)?;
        encode_frame(out, &self.header(), None, &payload, limits)
            .map_err(|e| StreamError::codec(Some(self.key), e))
    }

    /// The encoded frame.
    pub fn to_bytes(&self, limits: &Limits) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        self.encode(&mut out, limits)?;
        Ok(out)
    }

    /// Read a frame sent by `sender` as a stream packet. `Ok(None)` when the frame is not of type
    /// STREAM or STREAM_HOLE (calls, replies, messages are not stream packets).
    ///
    /// Refused ([`StreamError`]): STREAM with an unknown status or STREAM_HOLE with a status other
    /// than CONTINUE; a hole payload that does not decode, a hole with non-zero flags (libvirt
    /// refuses them) or a length that is not positive ([`StreamError::InvalidHole`], as libvirt); a server's STREAM/ERROR
    /// without a decodable error body (libvirt's client cannot decode it either). Strict mode also refuses payload bytes on finish, abort and
    /// confirmation, and trailing bytes after a hole or error body; libvirt mode ignores them, as
    /// libvirt does.
    pub fn decode(
        frame: &Frame<'a>,
        sender: Side,
        limits: &Limits,
        compat: Compat,
    ) -> Result<Option<StreamPacket<'a>>, StreamError> {
        let h = &frame.header;
        let key = StreamKey::of(h);
        if !matches!(h.msg_type, MessageType::Stream | MessageType::StreamHole) {
            return Ok(None);
        }
        let payload = frame.payload;
        let base = (LEN_WORD + HEADER_LEN) as u64;
        let codec = |e: Error| StreamError::codec(Some(key), e);
        let empty = |what: &'static str| -> Result<(), StreamError> {
            if compat == Compat::Strict && !payload.is_empty() {
                return Err(codec(
                    Error::decode(
                        ErrorKind::TrailingBytes {
                            count: payload.len() as u64,
                        },
                        base,
                    )
                    .in_field(what),
                ));
            }
            Ok(())
        };
        let op = match (h.msg_type, h.status, sender) {
            (MessageType::Stream, MessageStatus::Continue, Side::Server) if payload.is_empty() => {
                StreamOp::Eof
            }
            (MessageType::Stream, MessageStatus::Continue, _) => StreamOp::Data(payload),
            (MessageType::Stream, MessageStatus::Ok, Side::Client) => {
                empty("finish")?;
                StreamOp::Finish
            }
            (MessageType::Stream, MessageStatus::Ok, Side::Server) => {
                empty("confirm")?;
                StreamOp::Confirm
            }
            (MessageType::Stream, MessageStatus::Error, Side::Client) => {
                empty("abort")?;
                StreamOp::Abort
            }
            (MessageType::Stream, MessageStatus::Error, Side::Server) => {
                let mut r = Reader::with_base(payload, base, compat);
                let e = ErrorBody::decode(&mut r, limits)
                    .and_then(|e| r.finish().map(|()| e))
                    .map_err(|e| codec(e.in_field("error")))?;
                StreamOp::Error(e)
            }
            (MessageType::StreamHole, MessageStatus::Continue, _) => {
                let mut r = Reader::with_base(payload, base, compat);
                let hole = StreamHole::decode(&mut r)
                    .and_then(|h| r.finish().map(|()| h))
                    .map_err(|e| codec(e.in_field("hole")))?;
                check_hole(key, hole)?;
                StreamOp::Hole(hole)
            }
            (msg_type, status, _) => {
                return Err(StreamError::UnexpectedFrame {
                    key,
                    msg_type,
                    status,
                });
            }
        };
        Ok(Some(StreamPacket { key, op }))
    }
}

/// libvirt 9.0 refuses a hole whose length is not positive on both sides (`virCheckPositiveArgReturn`
/// in `virFDStreamSendHole` and `virNetClientStreamSetHole`) and flags other than 0 (`virCheckFlags`).
pub(crate) fn check_hole(key: StreamKey, hole: StreamHole) -> Result<(), StreamError> {
    if hole.length <= 0 || hole.flags != 0 {
        return Err(StreamError::InvalidHole {
            key,
            length: hole.length,
            flags: hole.flags,
        });
    }
    Ok(())
}
