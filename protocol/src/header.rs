//! The 24-byte message header (`virNetMessageHeader`), message types, statuses and known programs.

use std::fmt;

use crate::error::{ErrorKind, Result};
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

    /// libvirt's name without the `VIR_NET_` prefix (`CALL`, `REPLY_WITH_FDS`, …), or `UNKNOWN`.
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

    /// `OK`, `ERROR`, `CONTINUE` or `UNKNOWN`.
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

    /// Decode. Strict mode rejects unknown type and status values (error category Unknown);
    /// libvirt mode keeps them as `Unknown(raw)` (libvirt's XDR does not range-check enums).
    pub fn decode(r: &mut Reader<'_>) -> Result<Header> {
        let field = |e: crate::Error, name: &'static str| e.in_field(name).in_field("header");
        let prog = r.u32().map_err(|e| field(e, "prog"))?;
        let vers = r.u32().map_err(|e| field(e, "vers"))?;
        let procedure = r.i32().map_err(|e| field(e, "proc"))?;
        let at = *r;
        let msg_type = MessageType::from_raw(r.i32().map_err(|e| field(e, "type"))?);
        if r.compat() == Compat::Strict
            && let MessageType::Unknown(v) = msg_type
        {
            return Err(field(at.error(ErrorKind::UnknownType(v)), "type"));
        }
        let serial = r.u32().map_err(|e| field(e, "serial"))?;
        let at = *r;
        let status = MessageStatus::from_raw(r.i32().map_err(|e| field(e, "status"))?);
        if r.compat() == Compat::Strict
            && let MessageStatus::Unknown(v) = status
        {
            return Err(field(at.error(ErrorKind::UnknownStatus(v)), "status"));
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
