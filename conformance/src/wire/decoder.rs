//! Decoding an input: a capture (pcap / pcapng, TCP reassembled by [`crate::capture`]) or a raw byte
//! stream of frames, through per-connection [`Session`]s and the [`Judge`], into records for a
//! [`Sink`].

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use virtwire_protocol::schema::Schema;
use virtwire_protocol::{Compat, Frame, Header, Limits};

use super::judge::Judge;
use super::record::{MessageRecord, Origin, Record, Stats};
use super::session::{Direction, Out, Packet, Session};
use super::{DEFAULT_PORTS, Sink};
use crate::capture::net::{self, Decoded};
use crate::capture::tcp::{self as reassembly, ConnId, EndReason, Event, Reassembler};
use crate::capture::{CaptureReader, Packet as CapturePacket};

/// Decoding options.
#[derive(Clone, Debug)]
pub struct Options {
    /// TCP ports whose traffic is libvirt RPC (default [`DEFAULT_PORTS`]).
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
            ports: DEFAULT_PORTS.to_vec(),
            compat: Compat::Libvirt,
            limits: Limits::default(),
            max_pending: reassembly::Config::default().max_pending,
        }
    }
}

/// The decoder: options, and the judge that decodes each message (with the schema for procedure
/// bodies, if one was given; without one they are reported raw).
#[derive(Debug)]
pub struct Decoder {
    ports: Vec<u16>,
    max_pending: usize,
    judge: Arc<Judge>,
}

/// Why a direction's unfinished frame got no more bytes.
fn end_why(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Fin => "the sender closed the connection",
        EndReason::Rst => "the connection was reset",
        EndReason::EndOfCapture => "the capture ends",
        EndReason::Reused => "the connection was replaced",
        EndReason::Gap => "bytes are missing after it",
    }
}

impl Decoder {
    /// A decoder with these options and no schema: procedure bodies stay raw.
    pub fn new(opts: Options) -> Self {
        Self::build(opts, None)
    }

    /// A decoder that decodes procedure bodies with `schema`.
    pub fn with_schema(opts: Options, schema: Schema) -> Self {
        Self::build(opts, Some(schema))
    }

    fn build(opts: Options, schema: Option<Schema>) -> Self {
        Decoder {
            ports: opts.ports,
            max_pending: opts.max_pending,
            judge: Arc::new(Judge::new(opts.limits, opts.compat, schema)),
        }
    }

    /// The same decoder with procedure bodies decoded into tapes ([`Judge::tape_bodies`]): for
    /// sinks that serialise records, such as `decode --format json`.
    pub fn tape_bodies(mut self, on: bool) -> Self {
        if let Some(j) = Arc::get_mut(&mut self.judge) {
            j.tape = on;
        } else {
            let j = &self.judge;
            self.judge =
                Arc::new(Judge::new(*j.limits(), j.compat(), j.schema().cloned()).tape_bodies(on));
        }
        self
    }

    /// A decoder that judges with `judge` (shared, e.g. with a conformance run), on the default
    /// ports.
    pub fn from_judge(judge: Arc<Judge>) -> Self {
        let d = Options::default();
        Decoder {
            ports: d.ports,
            max_pending: d.max_pending,
            judge,
        }
    }

    /// The judge every message goes through.
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// The schema, if one was given.
    pub fn schema(&self) -> Option<&Schema> {
        self.judge.schema()
    }

    /// The procedure's name (`CONNECT_OPEN`, `PING`), when known.
    pub fn procedure_name(&self, h: &Header) -> Option<&str> {
        self.judge.procedure_name(h)
    }

    /// Judge one frame (see [`Judge::message`]).
    pub fn message<'a>(&'a self, origin: Origin<'a>, lenient: Frame<'a>) -> MessageRecord<'a> {
        self.judge.message(origin, lenient)
    }

    /// Decode a capture (pcap or pcapng) read from `input`. Returns the counts; IO errors of the sink
    /// are returned as errors, capture errors are reported as records (and in [`Stats::capture_error`]).
    pub fn decode_capture(
        &self,
        file: &str,
        input: impl Read,
        sink: &mut dyn Sink,
    ) -> io::Result<Stats> {
        let mut out = Out {
            file,
            sink,
            stats: Stats::default(),
        };
        let mut reader = match CaptureReader::new(input) {
            Ok(r) => r,
            Err(e) => {
                out.stats.capture_error = true;
                out.stats.capture_error_message = Some(e.to_string());
                out.emit(&Record::CaptureError { file, error: &e })?;
                return Ok(out.stats);
            }
        };
        let mut reasm = Reassembler::new(reassembly::Config {
            server_ports: self.ports.clone(),
            max_pending: self.max_pending,
        });
        let mut sessions: HashMap<ConnId, Session> = HashMap::new();
        let mut skipped: Vec<(&'static str, u64, u64)> = Vec::new();
        let mut pkt = CapturePacket::default();
        let mut io_err: Option<io::Error> = None;
        loop {
            match reader.next_packet(&mut pkt) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    out.stats.capture_error = true;
                    out.stats.capture_error_message = Some(e.to_string());
                    out.emit(&Record::CaptureError { file, error: &e })?;
                    break;
                }
            }
            out.stats.packets += 1;
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
            if !self.ports.contains(&seg.src.port()) && !self.ports.contains(&seg.dst.port()) {
                continue;
            }
            let at = Packet {
                number: Some(pkt.number),
                ts_ns: Some(pkt.ts_ns),
            };
            reasm.push(&seg, &mut |ev| {
                if io_err.is_none()
                    && let Err(e) = self.on_event(&mut out, &mut sessions, ev, at)
                {
                    io_err = Some(e);
                }
            });
            if let Some(e) = io_err.take() {
                return Err(e);
            }
        }
        let at = Packet {
            number: Some(pkt.number),
            ts_ns: Some(pkt.ts_ns),
        };
        reasm.finish(&mut |ev| {
            if io_err.is_none()
                && let Err(e) = self.on_event(&mut out, &mut sessions, ev, at)
            {
                io_err = Some(e);
            }
        });
        if let Some(e) = io_err {
            return Err(e);
        }
        out.stats.connections = reasm.connections();
        for (reason, count, first_pkt) in skipped {
            out.emit(&Record::Skipped {
                file,
                reason,
                count,
                first_pkt,
            })?;
        }
        out.finish()
    }

    /// One reassembly event: a connection opens, bytes arrive, bytes are missing, a direction ends.
    fn on_event(
        &self,
        out: &mut Out<'_>,
        sessions: &mut HashMap<ConnId, Session>,
        ev: Event<'_>,
        at: Packet,
    ) -> io::Result<()> {
        let origin = |file, conn, dir, offset| Origin {
            file,
            pkt: at.number,
            ts_ns: at.ts_ns,
            conn: Some(conn),
            dir,
            offset,
        };
        match ev {
            Event::Open {
                conn,
                client,
                server,
                midstream,
            } => {
                sessions.insert(conn, Session::new(midstream));
                out.emit(&Record::Conn {
                    origin: origin(out.file, conn, None, 0),
                    client,
                    server,
                    midstream,
                })
            }
            Event::Data {
                conn,
                dir,
                offset,
                data,
            } => sessions
                .entry(conn)
                .or_default()
                .direction_at(&self.judge, conn, dir, offset)
                .feed(&self.judge, out, at, data),
            Event::Gap {
                conn,
                dir,
                offset,
                seq,
                len,
                reason,
            } => {
                if let Some(d) = sessions.get_mut(&conn).and_then(|s| s.direction(dir)) {
                    d.stop(out, "bytes are missing after it")?;
                }
                out.emit(&Record::Gap {
                    origin: origin(out.file, conn, Some(dir), offset),
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
                if let Some(d) = sessions.get_mut(&conn).and_then(|s| s.direction(dir)) {
                    d.stop(out, end_why(reason))?;
                }
                out.emit(&Record::End {
                    origin: origin(out.file, conn, Some(dir), offset),
                    reason,
                })
            }
        }
    }

    /// Decode the traffic of one live connection (a [`WireLog`](super::peer::WireLog)'s chunks, both
    /// directions in the order they crossed): records as for a capture, with `conn` = `conn`, `pkt` =
    /// the chunk's number (1-based) and `ts` = its time since the connection opened.
    pub fn decode_chunks(
        &self,
        file: &str,
        conn: ConnId,
        chunks: &[super::peer::Chunk],
        sink: &mut dyn Sink,
    ) -> io::Result<Stats> {
        let mut out = Out {
            file,
            sink,
            stats: Stats::default(),
        };
        let mut session = Session::new(false);
        for (i, c) in chunks.iter().enumerate() {
            let at = Packet {
                number: Some(i as u64 + 1),
                ts_ns: Some(u64::try_from(c.at.as_nanos()).unwrap_or(u64::MAX)),
            };
            out.stats.packets += 1;
            session.direction_at(&self.judge, conn, c.dir, 0).feed(
                &self.judge,
                &mut out,
                at,
                &c.bytes,
            )?;
        }
        for dir in [crate::capture::tcp::Dir::C2s, crate::capture::tcp::Dir::S2c] {
            if let Some(d) = session.direction(dir) {
                d.stop(&mut out, "the connection ended")?;
            }
        }
        out.finish()
    }

    /// Decode a raw byte stream of frames (e.g. a file written by a proxy): no TCP, no directions.
    pub fn decode_raw(
        &self,
        file: &str,
        mut input: impl Read,
        sink: &mut dyn Sink,
    ) -> io::Result<Stats> {
        let mut out = Out {
            file,
            sink,
            stats: Stats::default(),
        };
        let mut stream = Direction::new(&self.judge, None, None, 0, false);
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match input.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            stream.feed(&self.judge, &mut out, Packet::default(), &chunk[..n])?;
            if stream.stopped() {
                break;
            }
        }
        stream.stop(&mut out, "the file ends")?;
        out.finish()
    }
}
