//! The record model: what the wire layer reports about a byte stream, in order. One record per
//! message, plus connection, gap, framing-error, end and summary records.
//!
//! Records are serde-serialisable: their [`Serialize`] impls below *are* the JSON schema of
//! `virtwire decode --format json` (and of the wire log in the runner's JSON report), one object per
//! record with `"record"` naming its kind first. The field order is part of that schema. The text view
//! is the one hand-written renderer (`crate::render`).

use std::net::SocketAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use virtwire_protocol::{BodyKind, Error, Frame, Header};

use super::json::{BodyJson, ErrorJson, HeaderJson, ts_raw};
use crate::capture::CaptureError;
use crate::capture::tcp::{ConnId, Dir, EndReason, GapReason};

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The input file's name as given.
    pub file: &'a str,
    /// Packet number (1-based) whose bytes completed the record; `None` for raw streams.
    pub pkt: Option<u64>,
    /// That packet's timestamp in nanoseconds since the epoch.
    pub ts_ns: Option<u64>,
    /// Connection; `None` for raw streams.
    pub conn: Option<ConnId>,
    /// Direction; `None` for raw streams.
    pub dir: Option<Dir>,
    /// Offset of the record's first byte in its direction's byte stream (or in the raw file).
    pub offset: u64,
}

impl Origin<'_> {
    /// The origin's fields as map entries: `file`, `pkt`, `ts` (seconds with nanoseconds, a JSON
    /// number), `conn`, `dir` (`c2s` / `s2c`), `offset`.
    fn entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("file", self.file)?;
        m.serialize_entry("pkt", &self.pkt)?;
        m.serialize_entry("ts", &self.ts_ns.map(ts_raw))?;
        m.serialize_entry("conn", &self.conn)?;
        m.serialize_entry("dir", &self.dir.map(Dir::name))?;
        m.serialize_entry("offset", &self.offset)
    }
}

/// A message body as far as it could be decoded.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BodyOut<'a> {
    /// A body the protocol core decodes (error struct, keepalive, stream data / end / abort / hole, or
    /// an unexpected (type, status) pair kept raw).
    Core(virtwire_protocol::Body<'a>),
    /// A procedure body (`_args` / `_ret` / `_msg`) decoded by the schema.
    Value {
        /// The body's `.x` type (`remote_connect_open_args`); `None` for a void body.
        type_name: Option<&'a str>,
        /// The value tree.
        value: virtwire_protocol::schema::Value<'a>,
    },
    /// A procedure body decoded by the schema into a flat tape (what `decode --format json` asks
    /// for: one allocation per message instead of several per value; see
    /// [`Judge::tape_bodies`](super::Judge::tape_bodies)). The same value as [`BodyOut::Value`],
    /// in the same JSON.
    Tape {
        /// The body's `.x` type; `None` for a void body.
        type_name: Option<&'a str>,
        /// The value.
        tape: virtwire_protocol::schema::Tape<'a>,
    },
    /// A body not decoded: a procedure body with no schema loaded, or any body whose message failed
    /// to decode (see the record's error). The raw payload bytes.
    Raw(&'a [u8]),
}

impl<'a> BodyOut<'a> {
    /// The `.x` type of the body: the procedure's struct, or the protocol's own for error and hole
    /// bodies.
    pub fn type_name(&self) -> Option<&'a str> {
        use virtwire_protocol::Body;
        match self {
            BodyOut::Value { type_name, .. } | BodyOut::Tape { type_name, .. } => *type_name,
            BodyOut::Core(Body::Error(_)) => Some("virNetMessageError"),
            BodyOut::Core(Body::StreamHole(_)) => Some("virNetStreamHole"),
            _ => None,
        }
    }
}

/// One decoded (or failed) message.
#[derive(Clone, Debug)]
pub struct MessageRecord<'a> {
    /// Where it came from.
    pub origin: Origin<'a>,
    /// The frame (header, FD count, payload, bytes).
    pub frame: Frame<'a>,
    /// What its header says it carries.
    pub kind: BodyKind,
    /// The procedure's name (`CONNECT_OPEN`, `PING`), when known.
    pub proc_name: Option<&'a str>,
    /// The body.
    pub body: BodyOut<'a>,
    /// Why decoding failed, if it did.
    pub error: Option<Error>,
}

/// What the wire layer reports, in capture order.
///
/// Records are transient (built on the stack, handed to the sink by reference), so the size of the
/// message variant does not matter and boxing it would cost an allocation per message.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
pub enum Record<'a> {
    /// A TCP connection was seen for the first time.
    Conn {
        /// Origin (offset 0, no direction).
        origin: Origin<'a>,
        /// Client address.
        client: SocketAddr,
        /// Server address.
        server: SocketAddr,
        /// True when the capture starts inside the connection.
        midstream: bool,
    },
    /// A message.
    Message(MessageRecord<'a>),
    /// Bytes missing from a direction; the direction is stopped.
    Gap {
        /// Where (offset = first missing byte).
        origin: Origin<'a>,
        /// TCP sequence number of the first missing byte.
        seq: u32,
        /// Missing bytes before the next captured byte, when known.
        len: Option<u64>,
        /// Why the gap was declared.
        reason: GapReason,
    },
    /// A frame whose length word cannot be framed (too small, over the limit) or whose head is
    /// unreadable at the framing level: the direction is stopped.
    FramingError {
        /// Where the frame starts.
        origin: Origin<'a>,
        /// The length word, if four bytes were there.
        len_word: Option<u32>,
        /// The header, if its 24 bytes were there and decode.
        header: Option<Header>,
        /// The error, its offset counted from the frame's first byte.
        error: Error,
        /// A hint (TLS traffic, capture started mid-connection).
        hint: Option<&'static str>,
    },
    /// A direction (or raw stream) ended inside a frame.
    Incomplete {
        /// Where the unfinished frame starts.
        origin: Origin<'a>,
        /// Bytes of it that were there.
        have: u64,
        /// The frame's length word, if known.
        len_word: Option<u32>,
        /// Why no more bytes came.
        why: &'static str,
    },
    /// A direction ended.
    End {
        /// Where (offset = bytes delivered).
        origin: Origin<'a>,
        /// How.
        reason: EndReason,
    },
    /// Packets that were not decoded (unsupported link type, IP fragment, malformed header), counted
    /// per reason at the end of a file.
    Skipped {
        /// The file.
        file: &'a str,
        /// Why.
        reason: &'static str,
        /// How many packets.
        count: u64,
        /// The first such packet.
        first_pkt: u64,
    },
    /// The capture file could not be read on (the records before it stand).
    CaptureError {
        /// The file.
        file: &'a str,
        /// What and where.
        error: &'a CaptureError,
    },
    /// The end of a file.
    Summary {
        /// The file.
        file: &'a str,
        /// Counts.
        stats: &'a Stats,
    },
}

/// The one-line description of a gap, shared by the text and JSON views.
pub fn gap_message(offset: u64, seq: u32, len: Option<u64>, reason: GapReason) -> String {
    let n = match len {
        Some(n) => format!("{n} bytes"),
        None => "unknown length".into(),
    };
    format!(
        "gap of {n} at seq {seq} (stream offset {offset}), direction stopped: {}",
        reason.describe()
    )
}

/// Counts for one input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Packets read.
    pub packets: u64,
    /// TCP connections on libvirt ports.
    pub connections: u64,
    /// Messages reported.
    pub messages: u64,
    /// Messages that failed to decode.
    pub failed: u64,
    /// Gaps.
    pub gaps: u64,
    /// Framing errors (direction stopped).
    pub framing_errors: u64,
    /// Directions that ended inside a frame.
    pub incomplete: u64,
    /// Packets skipped.
    pub skipped: u64,
    /// True when the capture file itself could not be read to its end.
    pub capture_error: bool,
    /// What the capture error was (also reported as a [`Record::CaptureError`]).
    #[serde(skip)]
    pub capture_error_message: Option<String>,
}

impl Stats {
    /// True when some traffic could not be decoded (the `1` exit status).
    pub fn has_decode_problems(&self) -> bool {
        self.failed + self.gaps + self.framing_errors + self.incomplete > 0
    }
}

impl Serialize for MessageRecord<'_> {
    /// `origin…, len, prog, prog_name, vers, proc, proc_name, type, type_name, serial, status,
    /// status_name, nfds, body_kind, body_type, body, error` (after `"record": "message"` when
    /// serialised as a [`Record`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.entries(&mut m)?;
        m.end()
    }
}

impl MessageRecord<'_> {
    fn entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        self.origin.entries(m)?;
        m.serialize_entry("len", &self.frame.len_word())?;
        HeaderJson::new(&self.frame.header, self.proc_name).entries(m)?;
        self.body_entries(m)
    }

    /// `nfds, body_kind, body_type, body, error`: what follows the header in every JSON form of a
    /// message (records here, trace messages in [`super::frames`]).
    pub(crate) fn body_entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        self.body_head_entries(m)?;
        m.serialize_entry("body", &BodyJson(&self.body))?;
        m.serialize_entry("error", &self.error_json())
    }

    /// `nfds, body_kind, body_type`.
    fn body_head_entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("nfds", &self.frame.nfds)?;
        m.serialize_entry("body_kind", self.kind.name())?;
        m.serialize_entry("body_type", &self.body.type_name())
    }

    fn error_json(&self) -> Option<ErrorJson<'_>> {
        self.error.as_ref().map(|e| ErrorJson {
            error: e,
            frame_at: self.origin.offset,
        })
    }
}

impl Serialize for Record<'_> {
    /// One JSON object: `"record"` (`message`, `conn`, `gap`, `end`, `framing_error`, `incomplete`,
    /// `skipped`, `capture_error`, `summary`), then the record's fields (conformance/README.md).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Record::Summary { file, stats } = self {
            return SummaryJson {
                record: "summary",
                file,
                stats,
            }
            .serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        self.entries(&mut m)?;
        m.end()
    }
}

impl Record<'_> {
    /// The record as one line of JSON (no newline), appended to `out`: the same text as
    /// `serde_json::to_writer(out, self)`, with a tape body written by [`super::json::write_item`] rather
    /// than through serde (most of `decode --format json`'s time on a big reply).
    ///
    /// A big body's JSON goes to `spill` in pieces as it is written (see [`super::json::SPILL`]);
    /// what is in `out` at the end follows what `spill` took.
    pub(crate) fn write_json(
        &self,
        out: &mut Vec<u8>,
        spill: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> serde_json::Result<()> {
        if let Record::Message(msg) = self
            && let BodyOut::Tape { tape, .. } = &msg.body
        {
            let mut ser = serde_json::Serializer::new(&mut *out);
            let mut m = ser.serialize_map(None)?;
            m.serialize_entry("record", "message")?;
            msg.origin.entries(&mut m)?;
            m.serialize_entry("len", &msg.frame.len_word())?;
            HeaderJson::new(&msg.frame.header, msg.proc_name).entries(&mut m)?;
            msg.body_head_entries(&mut m)?;
            m.end()?;
            // The map's closing brace makes way for the last two entries.
            if out.pop() != Some(b'}') {
                return Err(serde::ser::Error::custom("a JSON map did not end with `}`"));
            }
            out.extend_from_slice(b",\"body\":");
            super::json::write_item(out, tape.root(), spill)?;
            out.extend_from_slice(b",\"error\":");
            serde_json::to_writer(&mut *out, &msg.error_json())?;
            out.push(b'}');
            return Ok(());
        }
        serde_json::to_writer(out, self)
    }

    fn entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        match self {
            Record::Message(msg) => {
                m.serialize_entry("record", "message")?;
                msg.entries(m)?;
            }
            Record::Conn {
                origin,
                client,
                server,
                midstream,
            } => {
                m.serialize_entry("record", "conn")?;
                origin.entries(m)?;
                m.serialize_entry("client", client)?;
                m.serialize_entry("server", server)?;
                m.serialize_entry("midstream", midstream)?;
            }
            Record::Gap {
                origin,
                seq,
                len,
                reason,
            } => {
                m.serialize_entry("record", "gap")?;
                origin.entries(m)?;
                m.serialize_entry("seq", seq)?;
                m.serialize_entry("gap_len", len)?;
                m.serialize_entry("reason", reason.describe())?;
                m.serialize_entry("message", &gap_message(origin.offset, *seq, *len, *reason))?;
            }
            Record::End { origin, reason } => {
                m.serialize_entry("record", "end")?;
                origin.entries(m)?;
                m.serialize_entry("reason", reason.name())?;
            }
            Record::FramingError {
                origin,
                len_word,
                header,
                error,
                hint,
            } => {
                m.serialize_entry("record", "framing_error")?;
                origin.entries(m)?;
                m.serialize_entry("len", len_word)?;
                if let Some(h) = header {
                    HeaderJson::new(h, super::judge::core_procedure_name(h)).entries(m)?;
                }
                let error = ErrorJson {
                    error,
                    frame_at: origin.offset,
                };
                m.serialize_entry("error", &error)?;
                m.serialize_entry("hint", hint)?;
            }
            Record::Incomplete {
                origin,
                have,
                len_word,
                why,
            } => {
                m.serialize_entry("record", "incomplete")?;
                origin.entries(m)?;
                m.serialize_entry("have", have)?;
                m.serialize_entry("len", len_word)?;
                m.serialize_entry("why", why)?;
            }
            Record::Skipped {
                file,
                reason,
                count,
                first_pkt,
            } => {
                m.serialize_entry("record", "skipped")?;
                m.serialize_entry("file", file)?;
                m.serialize_entry("reason", reason)?;
                m.serialize_entry("count", count)?;
                m.serialize_entry("first_pkt", first_pkt)?;
            }
            Record::CaptureError { file, error } => {
                m.serialize_entry("record", "capture_error")?;
                m.serialize_entry("file", file)?;
                m.serialize_entry("offset", &error.offset)?;
                m.serialize_entry("message", &super::json::Displayed(error))?;
            }
            // Serialised whole by `SummaryJson` (its counts are `Stats`' own fields).
            Record::Summary { .. } => {}
        }
        Ok(())
    }
}

/// The summary record: its counts are [`Stats`]' own fields.
#[derive(Serialize)]
struct SummaryJson<'r> {
    record: &'static str,
    file: &'r str,
    #[serde(flatten)]
    stats: &'r Stats,
}
