//! The 24-byte message header (`virNetMessageHeader`), message types, statuses and known programs.
//!
//! This module owns the header's layout: the frame offset of each field ([`HeaderField`]), the one
//! way to read fields out of a frame that is short or failed ([`Header::peek`]), and the errors that
//! point at a header field. Nothing else in virtwire indexes header bytes.

use std::fmt;

use crate::error::{Error, ErrorKind, Op, Result};
use crate::limits::{LEN_WORD, MIN_FRAME};
use crate::xdr::{Compat, Reader, Writer};

/// `virNetMessageType`. Unknown raw values are kept ([`MessageType::Unknown`]) so they round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// 0: client → server call; payload `<proc>_args`.
    Call,
    /// 1: server → client reply; `<proc>_ret` (OK) or the error body (ERROR).
    Reply,
    /// 2: asynchronous message (events, keepalive), either direction; `<proc>_msg`, serial 0.
    Message,
    /// 3: stream packet, either direction; raw data (CONTINUE), finish (OK), abort/error (ERROR).
    Stream,
    /// 4: call carrying file descriptors; an FD count follows the header.
    CallWithFds,
    /// 5: reply carrying file descriptors; an FD count follows the header.
    ReplyWithFds,
    /// 6: sparse-stream hole; payload `virNetStreamHole`.
    StreamHole,
    /// Any other value. Construct it through [`MessageType::from_raw`] so that known values are never
    /// wrapped here.
    Unknown(i32),
}

impl MessageType {
    /// All known types, by raw value.
    pub const KNOWN: [MessageType; 7] = [
        MessageType::Call,
        MessageType::Reply,
        MessageType::Message,
        MessageType::Stream,
        MessageType::CallWithFds,
        MessageType::ReplyWithFds,
        MessageType::StreamHole,
    ];

    /// The type for a raw header value.
    pub const fn from_raw(v: i32) -> Self {
        match v {
            0 => MessageType::Call,
            1 => MessageType::Reply,
            2 => MessageType::Message,
            3 => MessageType::Stream,
            4 => MessageType::CallWithFds,
            5 => MessageType::ReplyWithFds,
            6 => MessageType::StreamHole,
            v => MessageType::Unknown(v),
        }
    }

    /// The raw header value.
    pub const fn raw(self) -> i32 {
        match self {
            MessageType::Call => 0,
            MessageType::Reply => 1,
            MessageType::Message => 2,
            MessageType::Stream => 3,
            MessageType::CallWithFds => 4,
            MessageType::ReplyWithFds => 5,
            MessageType::StreamHole => 6,
            MessageType::Unknown(v) => v,
        }
    }

    /// libvirt's name without the `VIR_NET_` prefix (`CALL`, `REPLY_WITH_FDS`, …), or `UNKNOWN`
    /// (shown to users as the `type_name` of a message; [`Display`](fmt::Display) adds the raw value
    /// of an unknown type).
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Call => "CALL",
            MessageType::Reply => "REPLY",
            MessageType::Message => "MESSAGE",
            MessageType::Stream => "STREAM",
            MessageType::CallWithFds => "CALL_WITH_FDS",
            MessageType::ReplyWithFds => "REPLY_WITH_FDS",
            MessageType::StreamHole => "STREAM_HOLE",
            MessageType::Unknown(_) => "UNKNOWN",
        }
    }

    /// True for the known values 0..=6.
    pub const fn is_known(self) -> bool {
        !matches!(self, MessageType::Unknown(_))
    }

    /// True when an FD count follows the header (`CALL_WITH_FDS`, `REPLY_WITH_FDS`).
    pub const fn has_fds(self) -> bool {
        matches!(self, MessageType::CallWithFds | MessageType::ReplyWithFds)
    }

    /// True for the types a client sends to start a request.
    pub const fn is_call(self) -> bool {
        matches!(self, MessageType::Call | MessageType::CallWithFds)
    }

    /// True for the types a server sends in answer to a call.
    pub const fn is_reply(self) -> bool {
        matches!(self, MessageType::Reply | MessageType::ReplyWithFds)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Unknown(v) => write!(f, "UNKNOWN({v})"),
            t => f.write_str(t.name()),
        }
    }
}

/// `virNetMessageStatus`. Unknown raw values are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageStatus {
    /// 0: success / end of stream.
    Ok,
    /// 1: failure; an error body follows (or nothing, for a client's stream abort).
    Error,
    /// 2: more stream data follows.
    Continue,
    /// Any other value; construct through [`MessageStatus::from_raw`].
    Unknown(i32),
}

impl MessageStatus {
    /// All known statuses, by raw value.
    pub const KNOWN: [MessageStatus; 3] = [
        MessageStatus::Ok,
        MessageStatus::Error,
        MessageStatus::Continue,
    ];

    /// The status for a raw header value.
    pub const fn from_raw(v: i32) -> Self {
        match v {
            0 => MessageStatus::Ok,
            1 => MessageStatus::Error,
            2 => MessageStatus::Continue,
            v => MessageStatus::Unknown(v),
        }
    }

    /// The raw header value.
    pub const fn raw(self) -> i32 {
        match self {
            MessageStatus::Ok => 0,
            MessageStatus::Error => 1,
            MessageStatus::Continue => 2,
            MessageStatus::Unknown(v) => v,
        }
    }

    /// `OK`, `ERROR`, `CONTINUE` or `UNKNOWN` (shown to users as the `status_name` of a message;
    /// [`Display`](fmt::Display) adds the raw value of an unknown status).
    pub const fn name(self) -> &'static str {
        match self {
            MessageStatus::Ok => "OK",
            MessageStatus::Error => "ERROR",
            MessageStatus::Continue => "CONTINUE",
            MessageStatus::Unknown(_) => "UNKNOWN",
        }
    }

    /// True for 0..=2.
    pub const fn is_known(self) -> bool {
        !matches!(self, MessageStatus::Unknown(_))
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageStatus::Unknown(v) => write!(f, "UNKNOWN({v})"),
            s => f.write_str(s.name()),
        }
    }
}

/// A program libvirt defines, with its number, name and `.x` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Program {
    /// Program number in the header.
    pub number: u32,
    /// Version used by every libvirt release (1).
    pub version: u32,
    /// Short name (`remote`, `qemu`, …).
    pub name: &'static str,
    /// The constant in the `.x` file.
    pub constant: &'static str,
    /// The `.x` file, relative to a libvirt source tree.
    pub xdr_file: &'static str,
}

/// `REMOTE_PROGRAM`: libvirtd, virtqemud, virtproxyd, …
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// `QEMU_PROGRAM`: QEMU-specific calls.
pub const QEMU_PROGRAM: u32 = 0x2000_8087;
/// `LXC_PROGRAM`: LXC-specific calls.
pub const LXC_PROGRAM: u32 = 0x0006_8000;
/// `KEEPALIVE_PROGRAM` ("keep").
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// `ADMIN_PROGRAM`: the admin socket.
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
/// `VIR_LOG_MANAGER_PROTOCOL_PROGRAM`: virtlogd.
pub const LOG_PROGRAM: u32 = 0x8753_9319;
/// `VIR_LOCK_SPACE_PROTOCOL_PROGRAM`: virtlockd.
pub const LOCK_PROGRAM: u32 = 0x0EA7_BEEF;
/// `VIR_LXC_MONITOR_PROGRAM`: libvirt_lxc ↔ libvirtd.
pub const LXC_MONITOR_PROGRAM: u32 = 0x1234_1234;

/// Every program libvirt 9.0 defines.
pub const PROGRAMS: [Program; 8] = [
    Program {
        number: REMOTE_PROGRAM,
        version: 1,
        name: "remote",
        constant: "REMOTE_PROGRAM",
        xdr_file: "src/remote/remote_protocol.x",
    },
    Program {
        number: QEMU_PROGRAM,
        version: 1,
        name: "qemu",
        constant: "QEMU_PROGRAM",
        xdr_file: "src/remote/qemu_protocol.x",
    },
    Program {
        number: LXC_PROGRAM,
        version: 1,
        name: "lxc",
        constant: "LXC_PROGRAM",
        xdr_file: "src/remote/lxc_protocol.x",
    },
    Program {
        number: KEEPALIVE_PROGRAM,
        version: 1,
        name: "keepalive",
        constant: "KEEPALIVE_PROGRAM",
        xdr_file: "src/rpc/virkeepaliveprotocol.x",
    },
    Program {
        number: ADMIN_PROGRAM,
        version: 1,
        name: "admin",
        constant: "ADMIN_PROGRAM",
        xdr_file: "src/admin/admin_protocol.x",
    },
    Program {
        number: LOG_PROGRAM,
        version: 1,
        name: "log",
        constant: "VIR_LOG_MANAGER_PROTOCOL_PROGRAM",
        xdr_file: "src/logging/log_protocol.x",
    },
    Program {
        number: LOCK_PROGRAM,
        version: 1,
        name: "lock",
        constant: "VIR_LOCK_SPACE_PROTOCOL_PROGRAM",
        xdr_file: "src/locking/lock_protocol.x",
    },
    Program {
        number: LXC_MONITOR_PROGRAM,
        version: 1,
        name: "lxc_monitor",
        constant: "VIR_LXC_MONITOR_PROGRAM",
        xdr_file: "src/lxc/lxc_monitor_protocol.x",
    },
];

/// The known program with this number.
pub fn program(number: u32) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.number == number)
}

/// The short name of a known program number.
pub fn program_name(number: u32) -> Option<&'static str> {
    program(number).map(|p| p.name)
}

/// A field of the header: where it sits in a frame and what error paths call it.
///
/// A frame is `len:u32 | prog:u32 | vers:u32 | proc:i32 | type:i32 | serial:u32 | status:i32 | …`
/// (`virNetMessageHeader`, after the length word that counts the whole frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderField {
    /// Program number.
    Prog,
    /// Program version.
    Vers,
    /// Procedure number.
    Proc,
    /// Message type.
    Type,
    /// Serial.
    Serial,
    /// Status.
    Status,
}

impl HeaderField {
    /// The six fields in wire order.
    pub const ALL: [HeaderField; 6] = [
        HeaderField::Prog,
        HeaderField::Vers,
        HeaderField::Proc,
        HeaderField::Type,
        HeaderField::Serial,
        HeaderField::Status,
    ];

    /// Offset of the field in a frame (from the first byte of the length word): 4, 8, …, 24.
    pub const fn offset(self) -> usize {
        LEN_WORD
            + 4 * match self {
                HeaderField::Prog => 0,
                HeaderField::Vers => 1,
                HeaderField::Proc => 2,
                HeaderField::Type => 3,
                HeaderField::Serial => 4,
                HeaderField::Status => 5,
            }
    }

    /// The field's name in error paths (`header.prog`, …): `prog`, `vers`, `proc`, `type`, `serial`,
    /// `status`.
    pub const fn name(self) -> &'static str {
        match self {
            HeaderField::Prog => "prog",
            HeaderField::Vers => "vers",
            HeaderField::Proc => "proc",
            HeaderField::Type => "type",
            HeaderField::Serial => "serial",
            HeaderField::Status => "status",
        }
    }

    /// The field's 4 bytes in `frame`, if they are there.
    fn word(self, frame: &[u8]) -> Option<[u8; 4]> {
        let at = self.offset();
        frame.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]])
    }

    /// An error about this field of a frame's header, at the field's frame offset, with the path
    /// `header.<field>`.
    pub fn error(self, op: Op, kind: ErrorKind) -> Error {
        let e = match op {
            Op::Decode => Error::decode(kind, self.offset() as u64),
            Op::Encode => Error::encode(kind, self.offset() as u64),
        };
        e.in_field(self.name()).in_field("header")
    }
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields [`Header::peek`] could read from the start of a frame: each one is `Some` when its
/// four bytes are present. Values are raw (libvirt mode): nothing is judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeaderPeek {
    /// The length word (bytes 0..4).
    pub len: Option<u32>,
    /// Program number.
    pub prog: Option<u32>,
    /// Program version.
    pub vers: Option<u32>,
    /// Procedure number.
    pub procedure: Option<i32>,
    /// Message type.
    pub msg_type: Option<MessageType>,
    /// Serial.
    pub serial: Option<u32>,
    /// Status.
    pub status: Option<MessageStatus>,
    /// The FD count after the header, for a `*_WITH_FDS` type whose count word is present (`None`
    /// for other types).
    pub nfds: Option<u32>,
}

impl HeaderPeek {
    /// The whole header, when all 24 bytes were there.
    pub fn header(&self) -> Option<Header> {
        Some(Header {
            prog: self.prog?,
            vers: self.vers?,
            procedure: self.procedure?,
            msg_type: self.msg_type?,
            serial: self.serial?,
            status: self.status?,
        })
    }

    /// Bytes of the frame's head — length word, header and, for `*_WITH_FDS`, the FD count — once the
    /// type is known (`None` before).
    pub fn head_len(&self) -> Option<usize> {
        self.msg_type.map(|t| {
            MIN_FRAME
                + if t.has_fds() {
                    crate::limits::FD_COUNT_LEN
                } else {
                    0
                }
        })
    }
}

/// `virNetMessageHeader`: six 4-byte words after the length word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Program number (`unsigned int`).
    pub prog: u32,
    /// Program version (`unsigned int`).
    pub vers: u32,
    /// Procedure number (`int`: signed on the wire).
    pub procedure: i32,
    /// Message type.
    pub msg_type: MessageType,
    /// Request serial (`unsigned int`): chosen by the caller, echoed by replies and stream packets.
    pub serial: u32,
    /// Status.
    pub status: MessageStatus,
}

impl Header {
    /// Encoded size.
    pub const LEN: usize = crate::limits::HEADER_LEN;

    /// A header with the given fields.
    pub const fn new(
        prog: u32,
        vers: u32,
        procedure: i32,
        msg_type: MessageType,
        serial: u32,
        status: MessageStatus,
    ) -> Self {
        Header {
            prog,
            vers,
            procedure,
            msg_type,
            serial,
            status,
        }
    }

    /// A CALL/OK header.
    pub const fn call(prog: u32, procedure: i32, serial: u32) -> Self {
        Header::new(
            prog,
            1,
            procedure,
            MessageType::Call,
            serial,
            MessageStatus::Ok,
        )
    }

    /// The REPLY header answering this call with `status`.
    pub const fn reply_to(&self, status: MessageStatus) -> Self {
        let msg_type = if matches!(self.msg_type, MessageType::CallWithFds) {
            MessageType::ReplyWithFds
        } else {
            MessageType::Reply
        };
        Header {
            msg_type,
            status,
            ..*self
        }
    }

    /// Read what is there of the length word and the header at the start of `frame`, which may be
    /// short (a cut-off capture) or hold a frame that failed to decode. The one place that reads
    /// header fields out of raw bytes; nothing is checked.
    pub fn peek(frame: &[u8]) -> HeaderPeek {
        let u = |f: HeaderField| f.word(frame).map(u32::from_be_bytes);
        let i = |f: HeaderField| f.word(frame).map(i32::from_be_bytes);
        HeaderPeek {
            len: frame
                .get(..LEN_WORD)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            prog: u(HeaderField::Prog),
            vers: u(HeaderField::Vers),
            procedure: i(HeaderField::Proc),
            msg_type: i(HeaderField::Type).map(MessageType::from_raw),
            serial: u(HeaderField::Serial),
            status: i(HeaderField::Status).map(MessageStatus::from_raw),
            nfds: i(HeaderField::Type)
                .map(MessageType::from_raw)
                .filter(|t| t.has_fds())
                .and_then(|_| Header::fd_count_word(frame)),
        }
    }

    /// The error for a (type, status) pair libvirt never sends ([`ErrorKind::UnexpectedStatus`]),
    /// at `header.status`.
    pub fn unexpected_status(&self, op: Op) -> Error {
        HeaderField::Status.error(
            op,
            ErrorKind::UnexpectedStatus {
                ty: self.msg_type.raw(),
                status: self.status.raw(),
            },
        )
    }

    /// The length word of a frame whose first 4 bytes are in `frame` (the fast path's
    /// [`HeaderPeek::len`]).
    #[inline]
    pub(crate) fn len_word(frame: &[u8]) -> Option<u32> {
        let b = frame.get(..LEN_WORD)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The FD count that follows the header of a `*_WITH_FDS` frame, if its bytes are in `frame`.
    #[inline]
    pub(crate) fn fd_count_word(frame: &[u8]) -> Option<u32> {
        let b = frame.get(MIN_FRAME..MIN_FRAME + crate::limits::FD_COUNT_LEN)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The header of a frame whose first 28 bytes are in `frame`, when [`Header::decode`] would
    /// accept it (in strict mode: a known type and status); `None` otherwise, and the caller asks
    /// [`Header::decode`] for the error. The common path of every frame decode: no `Reader`, no
    /// `Result`, six loads.
    #[inline]
    pub(crate) fn decode_valid(frame: &[u8], compat: Compat) -> Option<Header> {
        let b: &[u8; Header::LEN] = frame.get(LEN_WORD..MIN_FRAME)?.try_into().ok()?;
        let w = |f: HeaderField| {
            let o = f.offset() - LEN_WORD;
            [b[o], b[o + 1], b[o + 2], b[o + 3]]
        };
        let msg_type = MessageType::from_raw(i32::from_be_bytes(w(HeaderField::Type)));
        let status = MessageStatus::from_raw(i32::from_be_bytes(w(HeaderField::Status)));
        if compat == Compat::Strict && !(msg_type.is_known() && status.is_known()) {
            return None;
        }
        Some(Header {
            prog: u32::from_be_bytes(w(HeaderField::Prog)),
            vers: u32::from_be_bytes(w(HeaderField::Vers)),
            procedure: i32::from_be_bytes(w(HeaderField::Proc)),
            msg_type,
            serial: u32::from_be_bytes(w(HeaderField::Serial)),
            status,
        })
    }

    /// Decode. Strict mode rejects unknown type and status values (error category Unknown);
    /// libvirt mode keeps them as `Unknown(raw)` (libvirt's XDR does not range-check enums).
    pub fn decode(r: &mut Reader<'_>) -> Result<Header> {
        let field = |e: crate::Error, f: HeaderField| e.in_field(f.name()).in_field("header");
        let prog = r.u32().map_err(|e| field(e, HeaderField::Prog))?;
        let vers = r.u32().map_err(|e| field(e, HeaderField::Vers))?;
        let procedure = r.i32().map_err(|e| field(e, HeaderField::Proc))?;
        let at = *r;
        let msg_type = MessageType::from_raw(r.i32().map_err(|e| field(e, HeaderField::Type))?);
        if r.compat() == Compat::Strict
            && let MessageType::Unknown(v) = msg_type
        {
            return Err(field(
                at.error(ErrorKind::UnknownType(v)),
                HeaderField::Type,
            ));
        }
        let serial = r.u32().map_err(|e| field(e, HeaderField::Serial))?;
        let at = *r;
        let status = MessageStatus::from_raw(r.i32().map_err(|e| field(e, HeaderField::Status))?);
        if r.compat() == Compat::Strict
            && let MessageStatus::Unknown(v) = status
        {
            return Err(field(
                at.error(ErrorKind::UnknownStatus(v)),
                HeaderField::Status,
            ));
        }
        Ok(Header {
            prog,
            vers,
            procedure,
            msg_type,
            serial,
            status,
        })
    }

    /// Encode the 24 bytes.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.prog);
        w.u32(self.vers);
        w.i32(self.procedure);
        w.i32(self.msg_type.raw());
        w.u32(self.serial);
        w.i32(self.status.raw());
    }

    /// The 24 bytes as an array.
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut v = Vec::with_capacity(24);
        self.encode(&mut Writer::new(&mut v));
        v.try_into().expect("header is 24 bytes")
    }

    /// Write this header over the header of the frame at the start of `frame` (its length word,
    /// FD count and payload stay as they are): how a replay gives a recorded frame a new serial.
    /// An error when `frame` is too short to hold a header.
    pub fn overwrite(&self, frame: &mut [u8]) -> Result<()> {
        let available = frame.len();
        match frame.get_mut(LEN_WORD..LEN_WORD + Header::LEN) {
            Some(slot) => {
                slot.copy_from_slice(&self.to_bytes());
                Ok(())
            }
            None => Err(Error::encode(
                ErrorKind::Truncated {
                    needed: (LEN_WORD + Header::LEN) as u64,
                    available: available as u64,
                },
                0,
            )
            .in_field("header")),
        }
    }

    /// The program's short name if known.
    pub fn prog_name(&self) -> Option<&'static str> {
        program_name(self.prog)
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prog_name() {
            Some(n) => write!(f, "prog={n}")?,
            None => write!(f, "prog={:#010x}", self.prog)?,
        }
        write!(
            f,
            " vers={} proc={} type={} serial={} status={}",
            self.vers, self.procedure, self.msg_type, self.serial, self.status
        )
    }
}

#[cfg(test)]
mod tests {

    /// Each message type's name (what users see as `type_name`) and which side sends it.
    #[test]
    fn message_types_name_themselves_and_their_sender() {
        use MessageType::*;
        let table = [
            (Call, "CALL", true, false, false),
            (Reply, "REPLY", false, true, false),
            (Message, "MESSAGE", false, false, false),
            (Stream, "STREAM", false, false, false),
            (CallWithFds, "CALL_WITH_FDS", true, false, true),
            (ReplyWithFds, "REPLY_WITH_FDS", false, true, true),
            (StreamHole, "STREAM_HOLE", false, false, false),
            (Unknown(9), "UNKNOWN", false, false, false),
        ];
        for (t, name, call, reply, fds) in table {
            assert_eq!(t.name(), name);
            assert_eq!(
                (t.is_call(), t.is_reply(), t.has_fds()),
                (call, reply, fds),
                "{name}"
            );
            assert_eq!(MessageType::from_raw(t.raw()), t, "{name}");
        }
    }

    #[test]
    fn overwrite_replaces_only_the_header() {
        let mut frame = vec![0, 0, 0, 32];
        frame.extend(Header::call(REMOTE_PROGRAM, 3, 7).to_bytes());
        frame.extend([0xaa, 0xbb, 0xcc, 0xdd]);
        let mut h = Header::peek(&frame).header().unwrap();
        h.serial = 0xdead_beef;
        h.overwrite(&mut frame).unwrap();
        assert_eq!(&frame[..4], &[0, 0, 0, 32]);
        assert_eq!(&frame[28..], &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(Header::peek(&frame).serial, Some(0xdead_beef));
        assert_eq!(Header::peek(&frame).procedure, Some(3));
        let e = h.overwrite(&mut frame[..27]).unwrap_err();
        assert_eq!(e.category(), crate::Category::Malformed);
    }

    use super::*;

    #[test]
    fn raw_values_round_trip() {
        for v in [-1, 0, 1, 2, 3, 4, 5, 6, 7, 99, i32::MIN, i32::MAX] {
            assert_eq!(MessageType::from_raw(v).raw(), v);
            assert_eq!(MessageStatus::from_raw(v).raw(), v);
        }
        assert_eq!(MessageType::KNOWN.len(), 7);
        for (i, t) in MessageType::KNOWN.iter().enumerate() {
            assert_eq!(t.raw(), i as i32);
            assert!(t.is_known());
        }
        assert!(!MessageType::from_raw(7).is_known());
    }

    #[test]
    fn programs_have_names() {
        assert_eq!(program_name(0x2000_8086), Some("remote"));
        assert_eq!(program_name(0x6b65_6570), Some("keepalive"));
        assert_eq!(program_name(1), None);
    }

    #[test]
    fn field_offsets_follow_the_wire_order() {
        let h = Header::new(
            0x0102_0304,
            5,
            -6,
            MessageType::Stream,
            7,
            MessageStatus::Continue,
        );
        let mut frame = 28u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&h.to_bytes());
        let mut r = Reader::new(&frame, Compat::Strict);
        r.bytes(LEN_WORD).unwrap();
        for f in HeaderField::ALL {
            assert_eq!(r.position(), f.offset() as u64, "{f}");
            r.u32().unwrap();
        }
        assert_eq!(r.position(), MIN_FRAME as u64);
        let p = Header::peek(&frame);
        assert_eq!(p.len, Some(28));
        assert_eq!(p.header(), Some(h));
        assert_eq!(p.head_len(), Some(28));
    }

    #[test]
    fn peek_reads_what_is_there() {
        let h = Header::new(
            REMOTE_PROGRAM,
            1,
            3,
            MessageType::CallWithFds,
            9,
            MessageStatus::Unknown(77),
        );
        let mut frame = 32u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&h.to_bytes());
        assert_eq!(Header::peek(&[]), HeaderPeek::default());
        assert_eq!(Header::peek(&frame[..3]), HeaderPeek::default());
        let p = Header::peek(&frame[..19]);
        assert_eq!(
            (p.len, p.prog, p.vers, p.procedure, p.msg_type),
            (Some(32), Some(REMOTE_PROGRAM), Some(1), Some(3), None)
        );
        assert_eq!(p.header(), None);
        assert_eq!(p.head_len(), None);
        let p = Header::peek(&frame[..20]);
        assert_eq!(p.msg_type, Some(MessageType::CallWithFds));
        assert_eq!(p.head_len(), Some(32));
        assert_eq!(p.serial, None);
        // Unknown values are kept, as libvirt's XDR keeps them.
        assert_eq!(Header::peek(&frame).header(), Some(h));
    }

    #[test]
    fn header_errors_point_at_the_field() {
        let h = Header::new(
            REMOTE_PROGRAM,
            1,
            1,
            MessageType::Call,
            1,
            MessageStatus::Error,
        );
        let e = h.unexpected_status(Op::Decode);
        assert_eq!(e.offset(), 24);
        assert_eq!(e.path_string(), "header.status");
        assert_eq!(e.op(), Op::Decode);
        assert_eq!(h.unexpected_status(Op::Encode).op(), Op::Encode);
        let e = HeaderField::Proc.error(Op::Decode, ErrorKind::UnknownType(1));
        assert_eq!((e.offset(), e.path_string()), (12, "header.proc".into()));
    }

    #[test]
    fn strict_rejects_unknown_type_libvirt_keeps_it() {
        let h = Header::new(
            REMOTE_PROGRAM,
            1,
            1,
            MessageType::Unknown(9),
            1,
            MessageStatus::Ok,
        );
        let b = h.to_bytes();
        let e = Header::decode(&mut Reader::new(&b, Compat::Strict)).unwrap_err();
        assert_eq!(e.path_string(), "header.type");
        assert_eq!(e.offset(), 12);
        let d = Header::decode(&mut Reader::new(&b, Compat::Libvirt)).unwrap();
        assert_eq!(d, h);
    }
}
