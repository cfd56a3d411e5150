//! Per-connection state: each direction of a connection (or a raw stream) frames its bytes with
//! protocol's [`FrameDecoder`] and hands every whole frame to the [`Judge`]. A direction stops for
//! good at a framing error, a gap or its end: libvirt's framing has nothing to resynchronise on.

use std::io;

use virtwire_protocol::{Compat, FrameDecoder, Header};

use super::Sink;
use super::judge::Judge;
use super::record::{Origin, Record, Stats};
use crate::capture::tcp::{ConnId, Dir};

/// Where records of one input go, and the counts kept on the way.
pub struct Out<'s> {
    /// The input's name, as given.
    pub file: &'s str,
    /// Where records go.
    pub sink: &'s mut dyn Sink,
    /// Counts so far.
    pub stats: Stats,
}

impl Out<'_> {
    /// Hand one record to the sink, counting what it says.
    pub fn emit(&mut self, r: &Record<'_>) -> io::Result<()> {
        match r {
            Record::Message(m) => {
                self.stats.messages += 1;
                if m.error.is_some() {
                    self.stats.failed += 1;
                }
            }
            Record::Gap { .. } => self.stats.gaps += 1,
            Record::FramingError { .. } => self.stats.framing_errors += 1,
            Record::Incomplete { .. } => self.stats.incomplete += 1,
            Record::Skipped { count, .. } => self.stats.skipped += count,
            _ => {}
        }
        self.sink.record(r)
    }

    /// The end of the input: the summary record, and the counts.
    pub fn finish(mut self) -> io::Result<Stats> {
        let stats = std::mem::take(&mut self.stats);
        self.sink.record(&Record::Summary {
            file: self.file,
            stats: &stats,
        })?;
        Ok(stats)
    }
}

/// The packet that delivered a direction's latest bytes (none for raw streams).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Packet number, 1-based.
    pub number: Option<u64>,
    /// Its timestamp in nanoseconds since the epoch.
    pub ts_ns: Option<u64>,
}

fn origin(
    conn: Option<ConnId>,
    dir: Option<Dir>,
    last: Packet,
    file: &str,
    offset: u64,
) -> Origin<'_> {
    Origin {
        file,
        pkt: last.number,
        ts_ns: last.ts_ns,
        conn,
        dir,
        offset,
    }
}

/// One direction of a connection, or one raw stream of frames.
#[derive(Debug)]
pub struct Direction {
    /// `None` once the direction stopped.
    dec: Option<FrameDecoder>,
    /// Stream offset of the first byte fed.
    base: u64,
    conn: Option<ConnId>,
    dir: Option<Dir>,
    /// The capture started inside this connection.
    midstream: bool,
    last: Packet,
}

/// The length word and the header of a frame's first bytes, as far as they are there.
fn peek(head: &[u8]) -> (Option<u32>, Option<Header>) {
    let p = Header::peek(head);
    (p.len, p.header())
}

impl Direction {
    /// A direction whose first byte is at stream offset `base`.
    pub fn new(
        judge: &Judge,
        conn: Option<ConnId>,
        dir: Option<Dir>,
        base: u64,
        midstream: bool,
    ) -> Self {
        Direction {
            // Framing always follows libvirt (virNetMessageDecodeLength); the judge then applies the
            // chosen mode to each frame, so that one bad message does not lose the framing.
            dec: Some(FrameDecoder::new(judge.limits(), Compat::Libvirt)),
            base,
            conn,
            dir,
            midstream,
            last: Packet::default(),
        }
    }

    /// True once a framing error, a gap or the end stopped the direction.
    pub fn stopped(&self) -> bool {
        self.dec.is_none()
    }

    fn origin<'a>(&self, file: &'a str, offset: u64) -> Origin<'a> {
        origin(self.conn, self.dir, self.last, file, offset)
    }

    /// Add bytes delivered by packet `pkt` and report every frame they complete. On a framing error
    /// the direction stops.
    pub fn feed(
        &mut self,
        judge: &Judge,
        out: &mut Out<'_>,
        pkt: Packet,
        data: &[u8],
    ) -> io::Result<()> {
        let (conn, dir, midstream, base) = (self.conn, self.dir, self.midstream, self.base);
        let Some(dec) = self.dec.as_mut() else {
            return Ok(());
        };
        self.last = pkt;
        dec.feed(data);
        loop {
            let at = base + dec.consumed();
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    let rec = judge.message(origin(conn, dir, pkt, out.file, at), frame.frame());
                    out.emit(&Record::Message(rec))?;
                }
                Ok(None) => return Ok(()),
                Err(error) => {
                    let head = dec.pending();
                    let (len_word, header) = peek(head);
                    let hint = if head.len() >= 3 && head[0] == 0x16 && head[1] == 0x03 {
                        Some(
                            "this looks like TLS (libvirt's port 16514 is TLS): encrypted traffic cannot be decoded",
                        )
                    } else if midstream && at == 0 {
                        Some(
                            "the capture starts inside this connection: the first bytes may be the middle of a frame",
                        )
                    } else {
                        None
                    };
                    let error = error.relative_to(dec.consumed());
                    let rec = Record::FramingError {
                        origin: origin(conn, dir, pkt, out.file, at),
                        len_word,
                        header,
                        error,
                        hint,
                    };
                    out.emit(&rec)?;
                    self.dec = None;
                    return Ok(());
                }
            }
        }
    }

    /// Stop the direction (`why` no more bytes come), reporting the unfinished frame it holds, if any.
    pub fn stop(&mut self, out: &mut Out<'_>, why: &'static str) -> io::Result<()> {
        let Some(dec) = self.dec.take() else {
            return Ok(());
        };
        if dec.buffered() == 0 {
            return Ok(());
        }
        let (len_word, _) = peek(dec.pending());
        out.emit(&Record::Incomplete {
            origin: self.origin(out.file, self.base + dec.consumed()),
            have: dec.buffered() as u64,
            len_word,
            why,
        })
    }
}

/// One TCP connection: whether the capture started inside it, and its two directions.
#[derive(Debug, Default)]
pub struct Session {
    midstream: bool,
    c2s: Option<Direction>,
    s2c: Option<Direction>,
}

impl Session {
    /// A connection first seen now; `midstream` when the capture starts inside it.
    pub fn new(midstream: bool) -> Self {
        Session {
            midstream,
            ..Session::default()
        }
    }

    /// The direction, if bytes were seen in it.
    pub fn direction(&mut self, dir: Dir) -> Option<&mut Direction> {
        match dir {
            Dir::C2s => self.c2s.as_mut(),
            Dir::S2c => self.s2c.as_mut(),
        }
    }

    /// The direction, made when its first bytes (at stream offset `offset`) arrive.
    pub fn direction_at(
        &mut self,
        judge: &Judge,
        conn: ConnId,
        dir: Dir,
        offset: u64,
    ) -> &mut Direction {
        let midstream = self.midstream;
        let slot = match dir {
            Dir::C2s => &mut self.c2s,
            Dir::S2c => &mut self.s2c,
        };
        slot.get_or_insert_with(|| Direction::new(judge, Some(conn), Some(dir), offset, midstream))
    }
}
