//! The error type of every decode and encode operation: what failed, where (byte offset and field
//! path), and which class of failure it is.

use std::borrow::Cow;
use std::fmt;

/// Which direction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reading bytes into values.
    Decode,
    /// Writing values into bytes.
    Encode,
}

/// The broad class of an [`Error`]: what a caller (or a conformance verdict) usually branches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// The bytes are not a valid encoding: truncated, bad padding, bad bool, trailing bytes, …
    Malformed,
    /// A length or count is larger than a limit ([`LimitKind`] says which).
    OverLimit,
    /// A program, procedure, message type or status this decoder does not know.
    Unknown,
}

impl Category {
    /// The name shown to users (`category` in JSON): `malformed`, `over-limit` or `unknown`.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Malformed => "malformed",
            Category::OverLimit => "over-limit",
            Category::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which limit an [`ErrorKind::OverLimit`] hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The frame's length word exceeds `Limits::message_max + 4`.
    Message,
    /// A payload larger than `Limits::payload_max` (encoder side).
    Payload,
    /// A `string<N>` longer than N (or than `Limits::string_max` for protocol strings).
    String,
    /// An `opaque<N>` longer than N.
    Opaque,
    /// A `T x<N>` with more than N elements.
    Array,
    /// An FD count above `Limits::fds_max`.
    FdCount,
    /// Nesting deeper than `Limits::nesting_max`.
    Nesting,
    /// A stream chunk larger than the chosen chunk size.
    StreamChunk,
    /// Buffered stream bytes above `Limits::stream_buffer_max`.
    StreamBuffer,
    /// More open streams than `Limits::streams_max`.
    Streams,
    /// Split replies: more parts than the codec's cap.
    SplitParts,
    /// Split replies: more total bytes than the codec's cap.
    SplitTotal,
}

impl LimitKind {
    /// The name used in messages (`message`, `string`, `array`, …).
    pub const fn name(self) -> &'static str {
        match self {
            LimitKind::Message => "message",
            LimitKind::Payload => "payload",
            LimitKind::String => "string",
            LimitKind::Opaque => "opaque",
            LimitKind::Array => "array",
            LimitKind::FdCount => "FD count",
            LimitKind::Nesting => "nesting",
            LimitKind::StreamChunk => "stream chunk",
            LimitKind::StreamBuffer => "stream buffer",
            LimitKind::Streams => "open streams",
            LimitKind::SplitParts => "split parts",
            LimitKind::SplitTotal => "split total",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer bytes than the encoding needs.
    #[error("truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the item needs from here.
        needed: u64,
        /// Bytes that are left.
        available: u64,
    },
    /// The length word is below 4, the smallest value libvirt's `virNetMessageDecodeLength` accepts.
    #[error("length word {length} is below the minimum {min}")]
    LengthTooSmall {
        /// The length word read.
        length: u32,
        /// The minimum.
        min: u32,
    },
    /// A length or count above its limit.
    #[error("{} limit exceeded: {actual} > {max}", limit.name())]
    OverLimit {
        /// Which limit.
        limit: LimitKind,
        /// The largest allowed value.
        max: u64,
        /// The value found.
        actual: u64,
    },
    /// Padding bytes after opaque or string data are not zero (strict mode).
    #[error("non-zero padding byte {byte:#04x}")]
    NonZeroPadding {
        /// The first non-zero padding byte.
        byte: u8,
    },
    /// A bool other than 0 or 1 (strict mode).
    #[error("bool value {0} is neither 0 nor 1")]
    InvalidBool(u32),
    /// An enum value outside the declared members (strict mode).
    #[error("value {value} is not a member of enum {enum_name}")]
    InvalidEnum {
        /// The value read.
        value: i32,
        /// The enum's name.
        enum_name: Cow<'static, str>,
    },
    /// A 4-byte `char`/`short` whose value does not fit the declared C type (strict mode).
    #[error("value {value} does not fit {type_name}")]
    ValueOutOfRange {
        /// The value read.
        value: i64,
        /// The C type (`char`, `unsigned short`, …).
        type_name: &'static str,
    },
    /// A union discriminant with no arm and no default (rejected in both modes, as rpcgen does).
    #[error("union discriminant {0} has no arm")]
    InvalidDiscriminant(i64),
    /// Bytes left after the body (strict mode; libvirt ignores them).
    #[error("{count} trailing bytes after the body")]
    TrailingBytes {
        /// How many.
        count: u64,
    },
    /// A message type value outside 0..=6 (strict mode).
    #[error("unknown message type {0}")]
    UnknownType(i32),
    /// A message status value outside 0..=2 (strict mode).
    #[error("unknown message status {0}")]
    UnknownStatus(i32),
    /// A program (or program version) with no schema.
    #[error("unknown program {prog:#010x} version {vers}")]
    UnknownProgram {
        /// Program number.
        prog: u32,
        /// Program version.
        vers: u32,
    },
    /// A procedure the program does not define.
    #[error("unknown procedure {procedure} of program {prog:#010x}")]
    UnknownProcedure {
        /// Program number.
        prog: u32,
        /// Procedure number.
        procedure: i32,
    },
    /// A (type, status) pair libvirt never sends, e.g. a CALL with status ERROR.
    #[error("message type {ty} with status {status} is not part of the protocol")]
    UnexpectedStatus {
        /// Raw type.
        ty: i32,
        /// Raw status.
        status: i32,
    },
    /// The frame's length word does not match the bytes given (one-shot decode of a single frame).
    #[error("length word says {length} bytes, buffer holds {actual}")]
    LengthMismatch {
        /// The length word.
        length: u64,
        /// The bytes present.
        actual: u64,
    },
    /// A value the encoder cannot write (e.g. a value of the wrong shape for the schema).
    #[error("{0}")]
    Invalid(Cow<'static, str>),
}

impl ErrorKind {
    /// The broad class of this kind.
    pub fn category(&self) -> Category {
        match self {
            ErrorKind::OverLimit { .. } => Category::OverLimit,
            ErrorKind::UnknownType(_)
            | ErrorKind::UnknownStatus(_)
            | ErrorKind::UnknownProgram { .. }
            | ErrorKind::UnknownProcedure { .. } => Category::Unknown,
            _ => Category::Malformed,
        }
    }
}

/// One step of a field path: a struct field / union arm, or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A named field.
    Field(Cow<'static, str>),
    /// An element index.
    Index(u64),
}

/// A decode or encode failure: the [`ErrorKind`], the byte offset (from the start of the frame's length
/// word for frame-level decoding, or of the stream for the incremental decoder), and the field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    op: Op,
    kind: ErrorKind,
    offset: u64,
    /// Innermost segment first (segments are pushed while the error travels outwards).
    path_rev: Vec<PathSeg>,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A decode error at `offset`.
    pub fn decode(kind: ErrorKind, offset: u64) -> Self {
        Error {
            op: Op::Decode,
            kind,
            offset,
            path_rev: Vec::new(),
        }
    }

    /// An encode error at output position `offset`.
    pub fn encode(kind: ErrorKind, offset: u64) -> Self {
        Error {
            op: Op::Encode,
            kind,
            offset,
            path_rev: Vec::new(),
        }
    }

    /// Decode or encode.
    pub fn op(&self) -> Op {
        self.op
    }
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
    /// The broad class.
    pub fn category(&self) -> Category {
        self.kind.category()
    }
    /// Byte offset where it went wrong.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The field path, outermost first.
    pub fn path(&self) -> impl Iterator<Item = &PathSeg> {
        self.path_rev.iter().rev()
    }
    /// The path as text: `retStats[17].params[3].value.s` (empty at top level).
    pub fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in self.path() {
            match seg {
                PathSeg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                PathSeg::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// Prefix the path with a field name (call while the error travels out of that field).
    #[must_use]
    pub fn in_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.path_rev.push(PathSeg::Field(name.into()));
        self
    }
    /// Prefix the path with an array index.
    #[must_use]
    pub fn at_index(mut self, i: u64) -> Self {
        self.path_rev.push(PathSeg::Index(i));
        self
    }
    /// Shift the offset by `base` (when a sub-slice was decoded on its own).
    #[must_use]
    pub fn offset_by(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
    /// The same error with its offset counted from `base` instead (the inverse of
    /// [`Error::offset_by`]): e.g. from a frame's first byte rather than from the stream's.
    pub fn relative_to(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_sub(base);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Decode => "decode",
            Op::Encode => "encode",
        };
        write!(f, "{op} error at byte {}", self.offset)?;
        if !self.path_rev.is_empty() {
            write!(f, " in {}", self.path_string())?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_display() {
        let e = Error::decode(
            ErrorKind::OverLimit {
                limit: LimitKind::String,
                max: 4,
                actual: 5,
            },
            120,
        )
        .in_field("s")
        .in_field("value")
        .at_index(3)
        .in_field("params")
        .at_index(17)
        .in_field("retStats");
        assert_eq!(e.path_string(), "retStats[17].params[3].value.s");
        assert_eq!(e.category(), Category::OverLimit);
        assert_eq!(
            e.to_string(),
            "decode error at byte 120 in retStats[17].params[3].value.s: string limit exceeded: 5 > 4"
        );
        let e = e.offset_by(8);
        assert_eq!(e.offset(), 128);
        assert_eq!(e.relative_to(100).offset(), 28);
    }

    #[test]
    fn names_shown_to_users() {
        assert_eq!(Category::Malformed.name(), "malformed");
        assert_eq!(Category::OverLimit.to_string(), "over-limit");
        assert_eq!(Category::Unknown.name(), "unknown");
        assert_eq!(LimitKind::FdCount.to_string(), "FD count");
    }
}
