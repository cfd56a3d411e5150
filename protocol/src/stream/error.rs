//! [`StreamError`]: what the splitter, the reassembler and the split-reply codec refuse, and why.

use std::fmt;

use crate::error::LimitKind;
use crate::header::{MessageStatus, MessageType};

use super::{End, StreamKey};

/// Everything the stream layer refuses. Each variant names the stream it happened on (where there is
/// one) and, for limits, which cap was hit and which field of which type sets it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A stream packet whose (prog, vers, proc, serial) matches no stream opened with
    /// [`Reassembler::open`](super::Reassembler::open). libvirt's daemon drops such packets
    /// ("Ignoring unexpected stream data"); we report them rather than guess.
    #[error("stream packet for unknown stream {key}")]
    UnknownStream {
        /// The packet's key.
        key: StreamKey,
    },
    /// [`Reassembler::open`](super::Reassembler::open) for a key that is already open.
    #[error("stream {key} is already open")]
    AlreadyOpen {
        /// The key.
        key: StreamKey,
    },
    /// A hole on a stream not opened sparse. libvirt raises "Unexpected stream hole" and the daemon
    /// closes the connection.
    #[error("hole on stream {key}, which was not opened sparse")]
    UnexpectedHole {
        /// The stream.
        key: StreamKey,
    },
    /// A hole with flags other than 0 (`virCheckFlags(0)`) or a length that is not positive: libvirt
    /// 9.0 refuses both on either side (`virCheckPositiveArgReturn` in `virFDStreamSendHole` on the
    /// daemon, `virNetClientStreamSetHole` on the client).
    #[error("invalid hole on stream {key}: length {length}, flags {flags:#x}")]
    InvalidHole {
        /// The stream.
        key: StreamKey,
        /// The hole's length.
        length: i64,
        /// The hole's flags.
        flags: u32,
    },
    /// A packet after the side that sent it ended its part of the stream (data after finish, data
    /// after end of file, a second finish, anything after the final confirmation or error).
    #[error("{op} on stream {key} after {}", end.name())]
    AfterEnd {
        /// The stream.
        key: StreamKey,
        /// What came ([`StreamOp::name`](super::StreamOp::name)).
        op: &'static str,
        /// The end it came after.
        end: End,
    },
    /// A packet that is well formed but not allowed here: a confirmation with no finish or abort to
    /// answer, an end-of-file sent by a client, …
    #[error("{op} on stream {key} not allowed: {reason}")]
    NotAllowed {
        /// The stream.
        key: StreamKey,
        /// What came.
        op: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A frame of type STREAM or STREAM_HOLE whose (type, status) pair is no stream packet
    /// (STREAM with an unknown status, STREAM_HOLE with a status other than CONTINUE); or, for split
    /// replies, a part type the codec does not carry.
    #[error("{msg_type}/{status} is not a packet here (stream {key})")]
    UnexpectedFrame {
        /// The frame's key.
        key: StreamKey,
        /// Its type.
        msg_type: MessageType,
        /// Its status.
        status: MessageStatus,
    },
    /// A cap was hit. Nothing was buffered or changed: the packet is refused whole.
    #[error("{} cap exceeded{}: {actual} > {max} (set by {})",
        limit.name(), key.map(|k| format!(" on stream {k}")).unwrap_or_default(), cap_source(*limit))]
    OverCap {
        /// The stream concerned, if one.
        key: Option<StreamKey>,
        /// Which cap.
        limit: LimitKind,
        /// The cap.
        max: u64,
        /// What it would have become.
        actual: u64,
    },
    /// A payload that does not decode (a hole or error body that is truncated, has trailing bytes in
    /// strict mode, …), or a frame that cannot be encoded.
    #[error("{}{source}", key.map(|k| format!("stream {k}: ")).unwrap_or_default())]
    Codec {
        /// The stream concerned, if one.
        key: Option<StreamKey>,
        /// The decode or encode error, with its byte offset in the frame and field path.
        source: crate::Error,
    },
    /// A bad argument or configuration (chunk size 0, a part cap of 0, a header of the wrong type).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
}

/// Which field sets a cap of the stream layer, for messages.
pub fn cap_source(limit: LimitKind) -> &'static str {
    match limit {
        LimitKind::StreamBuffer => "Limits::stream_buffer_max",
        LimitKind::Streams => "Limits::streams_max",
        LimitKind::StreamChunk => "the chunk size / Limits::payload_max",
        LimitKind::SplitParts => "SplitReplyCodec::max_parts",
        LimitKind::SplitTotal => "SplitReplyCodec::max_total",
        LimitKind::Message | LimitKind::Payload => "Limits::message_max",
        _ => "Limits",
    }
}

impl StreamError {
    /// The stream the error concerns, if any.
    pub fn key(&self) -> Option<StreamKey> {
        match self {
            StreamError::UnknownStream { key }
            | StreamError::AlreadyOpen { key }
            | StreamError::UnexpectedHole { key }
            | StreamError::InvalidHole { key, .. }
            | StreamError::AfterEnd { key, .. }
            | StreamError::NotAllowed { key, .. }
            | StreamError::UnexpectedFrame { key, .. } => Some(*key),
            StreamError::OverCap { key, .. } | StreamError::Codec { key, .. } => *key,
            StreamError::Invalid(_) => None,
        }
    }

    /// The cap hit, for [`StreamError::OverCap`].
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            StreamError::OverCap { limit, .. } => Some(*limit),
            StreamError::Codec { source, .. } => match source.kind() {
                crate::ErrorKind::OverLimit { limit, .. } => Some(*limit),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn codec(key: Option<StreamKey>, source: crate::Error) -> Self {
        StreamError::Codec { key, source }
    }

    pub(crate) fn over(key: Option<StreamKey>, limit: LimitKind, max: u64, actual: u64) -> Self {
        StreamError::OverCap {
            key,
            limit,
            max,
            actual,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
