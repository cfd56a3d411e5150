//! Decode libvirt RPC traffic from captures (pcap / pcapng, TCP reassembled) or raw frame streams into
//! [`Record`]s: one per message, plus connection, gap and error records. Rendering is [`crate::render`].
//!
//! Framing always uses libvirt's own rule (length word checked against the limits profile, header
//! decoded leniently), so that one bad message does not lose the framing: the chosen [`Compat`] mode
//! then judges each frame's header and body. A message that fails to decode is still reported with its
//! header and the error, and decoding goes on with the next frame. Only a bad length word (or a hole in
//! the TCP stream) stops a direction: there is no way to find the next frame without guessing.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;

use virtwire_protocol::schema::{Schema, Value};
use virtwire_protocol::{
    Body, BodyKind, Compat, Error, Frame, Header, KeepaliveProc, Limits, Message, Parsed,
    header::KEEPALIVE_PROGRAM, parse_frame,
};

use crate::capture::net::{self, Decoded};
use crate::capture::tcp::{
    self as reassembly, ConnId, Dir, EndReason, Event, GapReason, Reassembler,
};
use crate::capture::{CaptureError, CaptureReader, Packet};

/// Decoding options.
#[derive(Clone, Debug)]
pub struct Options {
    /// TCP ports whose traffic is libvirt RPC (default 16509 and 16514).
    pub ports: Vec<u16>,
    /// Strict (RFC 4506) or libvirt-compatible judgement of each message.
    pub compat: Compat,
    /// Size limits (frame length, strings, FD count…).
    pub limits: Limits,
    /// Out-of-order bytes held per direction before a hole is declared a gap.
    pub max_pending: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ports: vec![16509, 16514],
            compat: Compat::Libvirt,
            limits: Limits::default(),
            max_pending: reassembly::Config::default().max_pending,
        }
    }
}

/// Where a message came from.
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

/// A message body as far as it could be decoded.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BodyOut<'a> {
    /// A body the protocol core decodes (error struct, keepalive, stream data / end / abort / hole, or
    /// an unexpected (type, status) pair kept raw).
    Core(Body<'a>),
    /// A procedure body (`_args` / `_ret` / `_msg`) decoded by the schema.
    Value {
        /// The body's `.x` type (`remote_connect_open_args`); `None` for a void body.
        type_name: Option<&'a str>,
        /// The value tree.
        value: Value<'a>,
    },
    /// A body not decoded: a procedure body with no schema loaded, or any body whose message failed
    /// to decode (see the record's error). The raw payload bytes.
    Raw(&'a [u8]),
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

/// What the decoder reports, in capture order.
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
        /// The error.
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

/// Counts for one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    pub capture_error_message: Option<String>,
}

impl Stats {
    /// True when some traffic could not be decoded (the `1` exit status).
    pub fn has_decode_problems(&self) -> bool {
        self.failed + self.gaps + self.framing_errors + self.incomplete > 0
    }
}

/// Where records go.
pub trait Sink {
    /// Take one record.
    fn record(&mut self, r: &Record<'_>) -> io::Result<()>;
}

impl<F: FnMut(&Record<'_>) -> io::Result<()>> Sink for F {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        self(r)
    }
}

/// The name of a procedure when the protocol core knows it without a schema (keepalive).
pub fn core_procedure_name(prog: u32, procedure: i32) -> Option<&'static str> {
    if prog != KEEPALIVE_PROGRAM {
        return None;
    }
    match KeepaliveProc::from_raw(procedure) {
        KeepaliveProc::Ping => Some("PING"),
        KeepaliveProc::Pong => Some("PONG"),
        KeepaliveProc::Unknown(_) => None,
    }
}

/// The decoder: options, and the schema that decodes procedure bodies (without one, procedure bodies
/// are reported raw).
#[derive(Debug)]
pub struct Decoder {
    opts: Options,
    schema: Option<Schema>,
}

/// Bytes of one direction waiting to become frames.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    stopped: bool,
    midstream: bool,
    /// Packet that delivered the latest bytes.
    pkt: Option<u64>,
    ts_ns: Option<u64>,
}

struct Ctx<'s, 'f> {
    file: &'f str,
    sink: &'s mut dyn Sink,
    stats: Stats,
}

impl Decoder {
    /// A decoder with these options and no schema: procedure bodies stay raw.
    pub fn new(opts: Options) -> Self {
        Decoder { opts, schema: None }
    }

    /// A decoder that decodes procedure bodies with `schema`.
    pub fn with_schema(opts: Options, schema: Schema) -> Self {
        Decoder {
            opts,
            schema: Some(schema),
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The schema, if one was given.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The procedure's name (`CONNECT_OPEN`): from the schema's program of this number and version,
    /// else from the protocol core (keepalive PING / PONG).
    pub fn procedure_name(&self, prog: u32, vers: u32, procedure: i32) -> Option<&str> {
        self.schema
            .as_ref()
            .and_then(|s| s.program(prog, vers))
            .and_then(|p| p.procedure(procedure))
            .map(|p| p.name.as_str())
            .or_else(|| {
                (vers == 1)
                    .then(|| core_procedure_name(prog, procedure))
                    .flatten()
            })
    }

    /// The `.x` type name of a procedure body of this kind, if the schema has it.
    fn body_type_name(&self, h: &Header, kind: BodyKind) -> Option<&str> {
        let p = self
            .schema
            .as_ref()?
            .program(h.prog, h.vers)?
            .procedure(h.procedure)?;
        let t = match kind {
            BodyKind::Args => &p.args,
            BodyKind::Ret => &p.ret,
            BodyKind::Msg | BodyKind::Keepalive => &p.msg,
            _ => return None,
        };
        t.as_ref().map(|(name, _)| name.as_str())
    }

    /// Decode one frame, as framed in libvirt mode (length accepted, header decoded leniently), into
    /// a record: the chosen mode then judges the header and the body.
    pub fn message<'a>(&'a self, origin: Origin<'a>, lenient: Frame<'a>) -> MessageRecord<'a> {
        let limits = &self.opts.limits;
        let bytes = lenient.bytes;
        let proc_name = self.procedure_name(
            lenient.header.prog,
            lenient.header.vers,
            lenient.header.procedure,
        );
        let kind = BodyKind::of(&lenient.header);
        let fail = |error: Error, body: BodyOut<'a>| MessageRecord {
            origin,
            frame: lenient,
            kind,
            proc_name,
            body,
            error: Some(error),
        };
        let frame = match Frame::decode(bytes, limits, self.opts.compat) {
            Ok(f) => f,
            Err(e) => return fail(e, BodyOut::Raw(lenient.payload)),
        };
        let msg = match Message::decode(frame, limits, self.opts.compat) {
            Ok(m) => m,
            Err(e) => return fail(e, BodyOut::Raw(lenient.payload)),
        };
        let body = match (msg.body, &self.schema) {
            (Body::Procedure { payload, kind }, Some(schema)) => {
                let base = frame.payload_offset() as u64;
                match schema.decode_body(&frame.header, payload, base, self.opts.compat, limits) {
                    Ok(value) => BodyOut::Value {
                        type_name: self.body_type_name(&frame.header, kind),
                        value,
                    },
                    Err(e) => {
                        return MessageRecord {
                            frame,
                            ..fail(e, BodyOut::Raw(payload))
                        };
                    }
                }
            }
            (Body::Procedure { payload, .. }, None) => BodyOut::Raw(payload),
            (other, _) => BodyOut::Core(other),
        };
        MessageRecord {
            origin,
            frame,
            kind,
            proc_name,
            body,
            error: None,
        }
    }

    /// Decode a capture (pcap or pcapng) read from `input`. Returns the counts; IO errors of the sink
    /// are returned as errors, capture errors are reported as records (and in [`Stats::capture_error`]).
    pub fn decode_capture(
        &self,
        file: &str,
        input: impl Read,
        sink: &mut dyn Sink,
    ) -> io::Result<Stats> {
        let mut ctx = Ctx {
            file,
            sink,
            stats: Stats::default(),
        };
        let mut reader = match CaptureReader::new(input) {
            Ok(r) => r,
            Err(e) => {
                ctx.stats.capture_error = true;
                ctx.stats.capture_error_message = Some(e.to_string());
                ctx.sink.record(&Record::CaptureError { file, error: &e })?;
                return Ok(ctx.stats);
            }
        };
        let mut reasm = Reassembler::new(reassembly::Config {
            server_ports: self.opts.ports.clone(),
            max_pending: self.opts.max_pending,
        });
        let mut framers: HashMap<(ConnId, Dir), Framer> = HashMap::new();
        let mut midstream: HashMap<ConnId, bool> = HashMap::new();
        let mut skipped: Vec<(&'static str, u64, u64)> = Vec::new();
        let mut pkt = Packet::default();
        let mut io_err: Option<io::Error> = None;
        loop {
            match reader.next_packet(&mut pkt) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    ctx.stats.capture_error = true;
                    ctx.stats.capture_error_message = Some(e.to_string());
                    ctx.sink.record(&Record::CaptureError { file, error: &e })?;
                    break;
                }
            }
            ctx.stats.packets += 1;
            let seg = match net::decode(pkt.linktype, &pkt.data) {
                Decoded::Tcp(s) => s,
                Decoded::Other => continue,
                Decoded::Skipped(reason) => {
                    match skipped.iter_mut().find(|(r, ..)| *r == reason) {
                        Some(e) => e.1 += 1,
                        None => skipped.push((reason, 1, pkt.number)),
                    }
                    continue;
                }
            };
            if !self.opts.ports.contains(&seg.src.port())
                && !self.opts.ports.contains(&seg.dst.port())
            {
                continue;
            }
            let (num, ts) = (pkt.number, pkt.ts_ns);
            reasm.push(&seg, &mut |ev| {
                if io_err.is_none()
                    && let Err(e) =
                        self.on_event(&mut ctx, &mut framers, &mut midstream, ev, num, ts)
                {
                    io_err = Some(e);
                }
            });
            if let Some(e) = io_err.take() {
                return Err(e);
            }
        }
        let (num, ts) = (pkt.number, pkt.ts_ns);
        reasm.finish(&mut |ev| {
            if io_err.is_none()
                && let Err(e) = self.on_event(&mut ctx, &mut framers, &mut midstream, ev, num, ts)
            {
                io_err = Some(e);
            }
        });
        if let Some(e) = io_err {
            return Err(e);
        }
        ctx.stats.connections = reasm.connections();
        for (reason, count, first_pkt) in skipped {
            ctx.stats.skipped += count;
            ctx.sink.record(&Record::Skipped {
                file,
                reason,
                count,
                first_pkt,
            })?;
        }
        let stats = ctx.stats.clone();
        ctx.sink.record(&Record::Summary {
            file,
            stats: &stats,
        })?;
        Ok(stats)
    }

    fn on_event(
        &self,
        ctx: &mut Ctx<'_, '_>,
        framers: &mut HashMap<(ConnId, Dir), Framer>,
        midstream: &mut HashMap<ConnId, bool>,
        ev: Event<'_>,
        pkt: u64,
        ts: u64,
    ) -> io::Result<()> {
        let origin = |conn, dir, offset| Origin {
            file: ctx.file,
            pkt: Some(pkt),
            ts_ns: Some(ts),
            conn: Some(conn),
            dir,
            offset,
        };
        match ev {
            Event::Open {
                conn,
                client,
                server,
                midstream: mid,
            } => {
                midstream.insert(conn, mid);
                let o = origin(conn, None, 0);
                ctx.sink.record(&Record::Conn {
                    origin: o,
                    client,
                    server,
                    midstream: mid,
                })
            }
            Event::Data {
                conn,
                dir,
                offset,
                data,
            } => {
                let fr = framers.entry((conn, dir)).or_insert_with(|| Framer {
                    start: offset,
                    midstream: midstream.get(&conn).copied().unwrap_or(false),
                    ..Framer::default()
                });
                fr.pkt = Some(pkt);
                fr.ts_ns = Some(ts);
                self.feed(ctx, fr, Some(conn), Some(dir), data)
            }
            Event::Gap {
                conn,
                dir,
                offset,
                seq,
                len,
                reason,
            } => {
                if let Some(fr) = framers.get_mut(&(conn, dir)) {
                    self.incomplete(ctx, fr, Some(conn), Some(dir), "bytes are missing after it")?;
                    fr.stopped = true;
                }
                ctx.stats.gaps += 1;
                let o = origin(conn, Some(dir), offset);
                ctx.sink.record(&Record::Gap {
                    origin: o,
                    seq,
                    len,
                    reason,
                })
            }
            Event::End {
                conn,
                dir,
                offset,
                reason,
            } => {
                if let Some(fr) = framers.get_mut(&(conn, dir)) {
                    let why = match reason {
                        EndReason::Fin => "the sender closed the connection",
                        EndReason::Rst => "the connection was reset",
                        EndReason::EndOfCapture => "the capture ends",
                        EndReason::Reused => "the connection was replaced",
                        EndReason::Gap => "bytes are missing after it",
                    };
                    self.incomplete(ctx, fr, Some(conn), Some(dir), why)?;
                    fr.stopped = true;
                }
                let o = origin(conn, Some(dir), offset);
                ctx.sink.record(&Record::End { origin: o, reason })
            }
        }
    }

    /// Report the unfinished frame a framer holds, if any.
    fn incomplete(
        &self,
        ctx: &mut Ctx<'_, '_>,
        fr: &mut Framer,
        conn: Option<ConnId>,
        dir: Option<Dir>,
        why: &'static str,
    ) -> io::Result<()> {
        if fr.stopped || fr.buf.is_empty() {
            return Ok(());
        }
        ctx.stats.incomplete += 1;
        let len_word = fr
            .buf
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let origin = Origin {
            file: ctx.file,
            pkt: fr.pkt,
            ts_ns: fr.ts_ns,
            conn,
            dir,
            offset: fr.start,
        };
        let have = fr.buf.len() as u64;
        fr.buf = Vec::new();
        ctx.sink.record(&Record::Incomplete {
            origin,
            have,
            len_word,
            why,
        })
    }

    /// Add bytes to a direction and report every frame they complete.
    fn feed(
        &self,
        ctx: &mut Ctx<'_, '_>,
        fr: &mut Framer,
        conn: Option<ConnId>,
        dir: Option<Dir>,
        data: &[u8],
    ) -> io::Result<()> {
        if fr.stopped {
            return Ok(());
        }
        // Fast path: nothing buffered, frames straight from the new bytes.
        let rest = if fr.buf.is_empty() {
            let used = self.frames_from(ctx, fr, conn, dir, data, fr.start)?;
            fr.start += used as u64;
            if fr.stopped {
                return Ok(());
            }
            &data[used..]
        } else {
            data
        };
        if rest.is_empty() {
            return Ok(());
        }
        fr.buf.extend_from_slice(rest);
        let buf = std::mem::take(&mut fr.buf);
        let used = self.frames_from(ctx, fr, conn, dir, &buf, fr.start)?;
        if !fr.stopped {
            fr.start += used as u64;
            fr.buf = buf;
            fr.buf.drain(..used);
        }
        Ok(())
    }

    /// Report the whole frames at the start of `buf` (stream offset `base`); returns the bytes used.
    /// On a framing error the framer is stopped.
    fn frames_from(
        &self,
        ctx: &mut Ctx<'_, '_>,
        fr: &mut Framer,
        conn: Option<ConnId>,
        dir: Option<Dir>,
        buf: &[u8],
        base: u64,
    ) -> io::Result<usize> {
        let mut pos = 0;
        let limits = &self.opts.limits;
        while pos < buf.len() {
            let origin = Origin {
                file: ctx.file,
                pkt: fr.pkt,
                ts_ns: fr.ts_ns,
                conn,
                dir,
                offset: base + pos as u64,
            };
            match parse_frame(&buf[pos..], limits, Compat::Libvirt) {
                Ok(Parsed::Complete { value, consumed }) => {
                    let rec = self.message(origin, value);
                    ctx.stats.messages += 1;
                    if rec.error.is_some() {
                        ctx.stats.failed += 1;
                    }
                    ctx.sink.record(&Record::Message(rec))?;
                    pos += consumed;
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(error) => {
                    let head = &buf[pos..];
                    let len_word = head
                        .get(..4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    let header = head.get(4..28).and_then(|h| {
                        Header::decode(&mut virtwire_protocol::Reader::new(h, Compat::Libvirt)).ok()
                    });
                    let hint = if head.len() >= 3 && head[0] == 0x16 && head[1] == 0x03 {
                        Some(
                            "this looks like TLS (libvirt's port 16514 is TLS): encrypted traffic cannot be decoded",
                        )
                    } else if fr.midstream && origin.offset == 0 {
                        Some(
                            "the capture starts inside this connection: the first bytes may be the middle of a frame",
                        )
                    } else {
                        None
                    };
                    ctx.stats.framing_errors += 1;
                    fr.stopped = true;
                    fr.buf = Vec::new();
                    ctx.sink.record(&Record::FramingError {
                        origin,
                        len_word,
                        header,
                        error,
                        hint,
                    })?;
                    return Ok(pos);
                }
            }
        }
        Ok(pos)
    }

    /// Decode a raw byte stream of frames (e.g. a file written by a proxy): no TCP, no directions.
    pub fn decode_raw(
        &self,
        file: &str,
        mut input: impl Read,
        sink: &mut dyn Sink,
    ) -> io::Result<Stats> {
        let mut ctx = Ctx {
            file,
            sink,
            stats: Stats::default(),
        };
        let mut fr = Framer::default();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match input.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.feed(&mut ctx, &mut fr, None, None, &chunk[..n])?;
            if fr.stopped {
                break;
            }
        }
        self.incomplete(&mut ctx, &mut fr, None, None, "the file ends")?;
        let stats = ctx.stats.clone();
        ctx.sink.record(&Record::Summary {
            file,
            stats: &stats,
        })?;
        Ok(stats)
    }
}
