//! TCP stream reassembly, per connection and direction, sans-IO: TCP segments in (in capture order),
//! in-order byte runs and stream events out.
//!
//! - Connections are keyed by their 4-tuple; the client is the side that sent the SYN, else the side
//!   whose port is not a server port. A new SYN with another initial sequence number on a known
//!   4-tuple (port reuse) ends the old connection and opens a new one.
//! - Out-of-order segments wait in a buffer until the hole before them is filled; retransmitted and
//!   overlapping bytes are delivered once (the first copy wins).
//! - **Gaps are reported, never guessed.** libvirt's framing has no marker to resynchronise on, so a
//!   direction with a hole is stopped at the hole: one [`Event::Gap`] ("gap of N bytes at seq X,
//!   direction stopped") and nothing more for that direction. A hole is declared as soon as it is
//!   certain or too costly to wait for:
//!   1. the peer acknowledges bytes that were never captured (they will not be sent again);
//!   2. the segments buffered behind the hole exceed [`Config::max_pending`] bytes (memory bound);
//!   3. the connection ends (FIN reached, RST) or the capture ends with bytes still missing.
//! - Memory: at most `max_pending` bytes of out-of-order data per direction; in-order bytes are handed
//!   out at once and never kept.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

use super::net::{TcpSegment, flags};

/// A connection number, in order of first appearance (0, 1, 2, …).
pub type ConnId = u64;

/// Direction of a byte stream within a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

impl Dir {
    /// `c2s` or `s2c`.
    pub fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }
    fn idx(self) -> usize {
        match self {
            Dir::C2s => 0,
            Dir::S2c => 1,
        }
    }
    fn other(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a gap was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The peer acknowledged bytes that are not in the capture (dropped by the capturing host, or cut
    /// by a snap length).
    AckedNotCaptured,
    /// Out-of-order segments behind the hole exceeded [`Config::max_pending`].
    BufferFull,
    /// The connection was closed (FIN or RST) with bytes still missing.
    Closed,
    /// The capture ended with bytes still missing.
    EndOfCapture,
}

impl GapReason {
    /// A short explanation.
    pub fn describe(self) -> &'static str {
        match self {
            GapReason::AckedNotCaptured => {
                "the peer acknowledged bytes that are not in the capture"
            }
            GapReason::BufferFull => "too many out-of-order bytes waiting behind the hole",
            GapReason::Closed => "the connection closed with bytes missing",
            GapReason::EndOfCapture => "the capture ended with bytes missing",
        }
    }
}

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// All bytes up to the sender's FIN were delivered.
    Fin,
    /// A RST was seen.
    Rst,
    /// The capture ended while the direction was open.
    EndOfCapture,
    /// A new connection reused the 4-tuple.
    Reused,
    /// The direction was stopped at a gap earlier.
    Gap,
}

impl EndReason {
    /// `fin`, `rst`, `end-of-capture`, `reused`, `gap`.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::EndOfCapture => "end-of-capture",
            EndReason::Reused => "reused",
            EndReason::Gap => "gap",
        }
    }
}

/// What the reassembler reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A new connection.
    Open {
        /// Its number.
        conn: ConnId,
        /// Client address.
        client: SocketAddr,
        /// Server address.
        server: SocketAddr,
        /// False when the handshake was captured; true when the capture starts inside the connection
        /// (the first frame may then start in the middle).
        midstream: bool,
    },
    /// The next in-order bytes of a direction, starting at stream offset `offset`.
    Data {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Stream offset of `data[0]` (0 = first byte after the SYN).
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// Bytes are missing; the direction is stopped.
    Gap {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Stream offset of the first missing byte.
        offset: u64,
        /// TCP sequence number of the first missing byte.
        seq: u32,
        /// How many bytes are missing before the next captured byte, if one is known.
        len: Option<u64>,
        /// Why it was declared.
        reason: GapReason,
    },
    /// A direction ended; no more events for it.
    End {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Bytes delivered in total.
        offset: u64,
        /// How.
        reason: EndReason,
    },
}

/// Reassembly settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Ports that identify the server side when no SYN was captured.
    pub server_ports: Vec<u16>,
    /// Most out-of-order bytes held per direction before the hole in front of them is declared a gap.
    pub max_pending: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_ports: vec![virtwire_protocol::ports::TCP, virtwire_protocol::ports::TLS],
            max_pending: 64 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct DirState {
    started: bool,
    base: u32,
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    fin: Option<u64>,
    syn_seq: Option<u32>,
    ended: bool,
}

impl DirState {
    fn start(&mut self, base: u32) {
        self.started = true;
        self.base = base;
    }

    /// Stream offset of sequence number `seq`: the 64-bit value nearest to `next`. Negative = before
    /// the stream's first byte.
    fn offset_of(&self, seq: u32) -> i64 {
        let next_seq = self.base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32)
    }

    fn seq_of(&self, offset: u64) -> u32 {
        self.base.wrapping_add(offset as u32)
    }
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    dirs: [DirState; 2],
}

/// The reassembler. Feed it every TCP segment of the capture in order with [`Reassembler::push`], then
/// call [`Reassembler::finish`].
#[derive(Debug)]
pub struct Reassembler {
    config: Config,
    /// (client, server) → connection.
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    next_id: ConnId,
}

impl Reassembler {
    /// A reassembler with these settings.
    pub fn new(config: Config) -> Self {
        Reassembler {
            config,
            conns: HashMap::new(),
            next_id: 0,
        }
    }

    /// Connections seen so far.
    pub fn connections(&self) -> u64 {
        self.next_id
    }

    /// Process one segment; events go to `sink` in order.
    pub fn push(&mut self, seg: &TcpSegment<'_>, sink: &mut dyn FnMut(Event<'_>)) {
        let syn_only = seg.flags & (flags::SYN | flags::ACK) == flags::SYN;
        let (key, dir) = if self.conns.contains_key(&(seg.src, seg.dst)) {
            ((seg.src, seg.dst), Dir::C2s)
        } else if self.conns.contains_key(&(seg.dst, seg.src)) {
            ((seg.dst, seg.src), Dir::S2c)
        } else {
            let src_is_client = if seg.flags & flags::SYN != 0 {
                syn_only
            } else {
                let s = self.config.server_ports.contains(&seg.src.port());
                let d = self.config.server_ports.contains(&seg.dst.port());
                match (s, d) {
                    (false, true) => true,
                    (true, false) => false,
                    _ => seg.src.port() > seg.dst.port(),
                }
            };
            let key = if src_is_client {
                (seg.src, seg.dst)
            } else {
                (seg.dst, seg.src)
            };
            self.open(key, seg.flags & flags::SYN == 0, sink);
            (key, if src_is_client { Dir::C2s } else { Dir::S2c })
        };
        // A client SYN on a known 4-tuple with a new ISN: the port was reused.
        if syn_only && dir == Dir::C2s {
            let conn = self.conns.get(&key).expect("connection present");
            let d = &conn.dirs[0];
            let reused =
                d.started && d.syn_seq != Some(seg.seq) || conn.dirs.iter().all(|d| d.ended);
            if reused {
                let mut old = self.conns.remove(&key).expect("connection present");
                for dir in [Dir::C2s, Dir::S2c] {
                    end_dir(
                        old.id,
                        dir,
                        &mut old.dirs[dir.idx()],
                        EndReason::Reused,
                        sink,
                    );
                }
                self.open(key, false, sink);
            }
        }
        let conn = self.conns.get_mut(&key).expect("connection present");
        process(conn, dir, seg, self.config.max_pending, sink);
    }

    fn open(
        &mut self,
        key: (SocketAddr, SocketAddr),
        midstream: bool,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let id = self.next_id;
        self.next_id += 1;
        sink(Event::Open {
            conn: id,
            client: key.0,
            server: key.1,
            midstream,
        });
        self.conns.insert(
            key,
            Conn {
                id,
                dirs: [DirState::default(), DirState::default()],
            },
        );
    }

    /// End of capture: report the holes still open and end every direction, in connection order.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        let mut conns: Vec<_> = self.conns.drain().map(|(_, c)| c).collect();
        conns.sort_by_key(|c| c.id);
        for mut c in conns {
            for dir in [Dir::C2s, Dir::S2c] {
                end_dir(
                    c.id,
                    dir,
                    &mut c.dirs[dir.idx()],
                    EndReason::EndOfCapture,
                    sink,
                );
            }
        }
    }
}

/// End a direction: a gap first if bytes are known to be missing (pending data, or a FIN not reached).
fn end_dir(
    conn: ConnId,
    dir: Dir,
    d: &mut DirState,
    reason: EndReason,
    sink: &mut dyn FnMut(Event<'_>),
) {
    if d.ended {
        return;
    }
    let first_pending = d.pending.keys().next().copied();
    let missing_to = first_pending.or(d.fin.filter(|&f| f > d.next));
    if let Some(to) = missing_to {
        let gap_reason = match reason {
            EndReason::EndOfCapture => GapReason::EndOfCapture,
            _ => GapReason::Closed,
        };
        stop_at_gap(conn, dir, d, Some(to - d.next), gap_reason, sink);
        return;
    }
    d.ended = true;
    if d.started || reason != EndReason::EndOfCapture {
        sink(Event::End {
            conn,
            dir,
            offset: d.next,
            reason,
        });
    }
}

fn stop_at_gap(
    conn: ConnId,
    dir: Dir,
    d: &mut DirState,
    len: Option<u64>,
    reason: GapReason,
    sink: &mut dyn FnMut(Event<'_>),
) {
    sink(Event::Gap {
        conn,
        dir,
        offset: d.next,
        seq: d.seq_of(d.next),
        len,
        reason,
    });
    d.ended = true;
    d.pending = BTreeMap::new();
    d.pending_bytes = 0;
    sink(Event::End {
        conn,
        dir,
        offset: d.next,
        reason: EndReason::Gap,
    });
}

fn process(
    conn: &mut Conn,
    dir: Dir,
    seg: &TcpSegment<'_>,
    max_pending: usize,
    sink: &mut dyn FnMut(Event<'_>),
) {
    let id = conn.id;
    {
        let d = &mut conn.dirs[dir.idx()];
        let mut data_seq = seg.seq;
        if seg.flags & flags::SYN != 0 {
            data_seq = seg.seq.wrapping_add(1);
            if !d.started {
                d.start(data_seq);
                d.syn_seq = Some(seg.seq);
            }
        } else if !d.started {
            d.start(seg.seq);
        }
        if !d.ended && seg.flags & flags::RST == 0 {
            let off = d.offset_of(data_seq);
            if seg.wire_len > 0 {
                data(id, dir, d, off, seg.payload, max_pending, sink);
            }
            if seg.flags & flags::FIN != 0 && d.fin.is_none() && !d.ended {
                let fin = off + i64::from(seg.wire_len);
                if fin >= 0 {
                    d.fin = Some(fin as u64);
                }
            }
            if !d.ended && d.fin == Some(d.next) {
                d.ended = true;
                sink(Event::End {
                    conn: id,
                    dir,
                    offset: d.next,
                    reason: EndReason::Fin,
                });
            }
        }
    }
    if seg.flags & flags::RST != 0 {
        for dir in [Dir::C2s, Dir::S2c] {
            end_dir(id, dir, &mut conn.dirs[dir.idx()], EndReason::Rst, sink);
        }
        return;
    }
    // An acknowledgement for bytes of the other direction that were never captured: certain gap.
    if seg.flags & flags::ACK != 0 {
        let o = &mut conn.dirs[dir.other().idx()];
        if o.started && !o.ended {
            let acked = o.offset_of(seg.ack);
            // The FIN takes one sequence number.
            let limit = o.next as i64 + i64::from(o.fin == Some(o.next));
            if acked > limit {
                let to = o.pending.keys().next().copied().unwrap_or(acked as u64);
                let len = to.min(acked as u64) - o.next;
                stop_at_gap(
                    id,
                    dir.other(),
                    o,
                    Some(len),
                    GapReason::AckedNotCaptured,
                    sink,
                );
            }
        }
    }
}

fn data(
    id: ConnId,
    dir: Dir,
    d: &mut DirState,
    off: i64,
    payload: &[u8],
    max_pending: usize,
    sink: &mut dyn FnMut(Event<'_>),
) {
    let next = d.next as i64;
    let end = off + payload.len() as i64;
    if end <= next {
        return; // retransmission of delivered bytes
    }
    if let Some(fin) = d.fin
        && off >= fin as i64
    {
        return; // bytes after the FIN: not part of the stream
    }
    let (off, payload) = if off < next {
        (next as u64, &payload[(next - off) as usize..])
    } else {
        (off as u64, payload)
    };
    if off == d.next {
        sink(Event::Data {
            conn: id,
            dir,
            offset: off,
            data: payload,
        });
        d.next += payload.len() as u64;
        // Drain what the new bytes made contiguous.
        while let Some(entry) = d.pending.first_entry() {
            let k = *entry.key();
            if k > d.next {
                break;
            }
            let v = entry.remove();
            d.pending_bytes -= v.len();
            let end = k + v.len() as u64;
            if end <= d.next {
                continue;
            }
            let s = &v[(d.next - k) as usize..];
            sink(Event::Data {
                conn: id,
                dir,
                offset: d.next,
                data: s,
            });
            d.next = end;
        }
        return;
    }
    // Out of order: keep it (the longest copy for a given start) until the hole fills.
    if payload.is_empty() {
        return;
    }
    let slot = d.pending.entry(off).or_default();
    if slot.len() < payload.len() {
        d.pending_bytes = d.pending_bytes - slot.len() + payload.len();
        *slot = payload.to_vec();
    }
    if d.pending_bytes > max_pending {
        let to = d.pending.keys().next().copied().unwrap_or(off);
        stop_at_gap(id, dir, d, Some(to - d.next), GapReason::BufferFull, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::net::flags::*;

    const C: &str = "127.0.0.1:40000";
    const S: &str = "127.0.0.1:16509";

    /// Owned copy of an event, for comparisons.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Ev {
        Open(ConnId, bool),
        Data(ConnId, Dir, u64, Vec<u8>),
        Gap(ConnId, Dir, u64, u32, Option<u64>, GapReason),
        End(ConnId, Dir, u64, EndReason),
    }

    fn own(e: Event<'_>) -> Ev {
        match e {
            Event::Open {
                conn, midstream, ..
            } => Ev::Open(conn, midstream),
            Event::Data {
                conn,
                dir,
                offset,
                data,
            } => Ev::Data(conn, dir, offset, data.to_vec()),
            Event::Gap {
                conn,
                dir,
                offset,
                seq,
                len,
                reason,
            } => Ev::Gap(conn, dir, offset, seq, len, reason),
            Event::End {
                conn,
                dir,
                offset,
                reason,
            } => Ev::End(conn, dir, offset, reason),
        }
    }

    struct T {
        r: Reassembler,
        ev: Vec<Ev>,
    }

    impl T {
        fn new() -> Self {
            T {
                r: Reassembler::new(Config::default()),
                ev: Vec::new(),
            }
        }
        fn with_max(max_pending: usize) -> Self {
            T {
                r: Reassembler::new(Config {
                    max_pending,
                    ..Config::default()
                }),
                ev: Vec::new(),
            }
        }
        fn seg(&mut self, c2s: bool, seq: u32, ack: u32, fl: u8, data: &[u8]) {
            self.seg_wire(c2s, seq, ack, fl, data, data.len() as u32);
        }
        fn seg_wire(&mut self, c2s: bool, seq: u32, ack: u32, fl: u8, data: &[u8], wire: u32) {
            let (src, dst) = if c2s { (C, S) } else { (S, C) };
            let s = TcpSegment {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                seq,
                ack,
                flags: fl,
                payload: data,
                wire_len: wire,
            };
            let ev = &mut self.ev;
            self.r.push(&s, &mut |e| ev.push(own(e)));
        }
        fn finish(&mut self) -> Vec<Ev> {
            let ev = &mut self.ev;
            self.r.finish(&mut |e| ev.push(own(e)));
            std::mem::take(&mut self.ev)
        }
        /// Concatenated data of a direction.
        fn bytes(ev: &[Ev], dir: Dir) -> Vec<u8> {
            let mut v = Vec::new();
            for e in ev {
                if let Ev::Data(_, d, off, b) = e
                    && *d == dir
                {
                    assert_eq!(
                        *off,
                        v.len() as u64,
                        "data delivered in order without holes"
                    );
                    v.extend_from_slice(b);
                }
            }
            v
        }
        /// A handshake with ISNs 1000 (client) and 5000 (server).
        fn handshake(&mut self) {
            self.seg(true, 1000, 0, SYN, b"");
            self.seg(false, 5000, 1001, SYN | ACK, b"");
            self.seg(true, 1001, 5001, ACK, b"");
        }
    }

    #[test]
    fn in_order_with_handshake_and_fin() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK | PSH, b"hello ");
        t.seg(false, 5001, 1007, ACK | PSH, b"world");
        t.seg(true, 1007, 5006, ACK | FIN, b"bye");
        t.seg(false, 5006, 1011, ACK | FIN, b"");
        t.seg(true, 1011, 5007, ACK, b"");
        let ev = t.finish();
        assert_eq!(ev[0], Ev::Open(0, false));
        assert_eq!(T::bytes(&ev, Dir::C2s), b"hello bye");
        assert_eq!(T::bytes(&ev, Dir::S2c), b"world");
        assert!(ev.contains(&Ev::End(0, Dir::C2s, 9, EndReason::Fin)));
        assert!(ev.contains(&Ev::End(0, Dir::S2c, 5, EndReason::Fin)));
        assert!(!ev.iter().any(|e| matches!(e, Ev::Gap(..))));
    }

    #[test]
    fn reordering_is_repaired() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1011, 5001, ACK, b"KLMNO");
        t.seg(true, 1006, 5001, ACK, b"FGHIJ");
        t.seg(true, 1001, 5001, ACK, b"ABCDE");
        let ev = t.finish();
        assert_eq!(T::bytes(&ev, Dir::C2s), b"ABCDEFGHIJKLMNO");
        assert!(ev.contains(&Ev::End(0, Dir::C2s, 15, EndReason::EndOfCapture)));
    }

    #[test]
    fn retransmission_and_overlap_are_delivered_once() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"ABCDE");
        t.seg(true, 1001, 5001, ACK, b"ABCDE"); // plain retransmission
        t.seg(true, 1004, 5001, ACK, b"DEFGH"); // overlaps the tail
        t.seg(true, 1012, 5001, ACK, b"LM"); // out of order
        t.seg(true, 1010, 5001, ACK, b"JKL"); // out of order, overlapping the later one
        t.seg(true, 1009, 5001, ACK, b"IJ"); // fills the hole, overlaps
        t.seg(true, 1002, 5001, ACK, b"B"); // old
        let ev = t.finish();
        assert_eq!(T::bytes(&ev, Dir::C2s), b"ABCDEFGHIJKLM");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = T::new();
        let isn = u32::MAX - 3;
        t.seg(true, isn, 0, SYN, b"");
        t.seg(true, isn.wrapping_add(1), 0, ACK, b"abc");
        t.seg(true, isn.wrapping_add(7), 0, ACK, b"ghi"); // after the wrap, out of order
        t.seg(true, isn.wrapping_add(4), 0, ACK, b"def");
        let ev = t.finish();
        assert_eq!(T::bytes(&ev, Dir::C2s), b"abcdefghi");
    }

    #[test]
    fn ack_of_uncaptured_bytes_is_a_gap_and_stops_the_direction() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"ABCDE");
        // 1006..1011 lost by the capture; 1011.. captured.
        t.seg(true, 1011, 5001, ACK, b"KLMNO");
        t.seg(false, 5001, 1016, ACK, b""); // the server got everything
        t.seg(true, 1016, 5001, ACK, b"more"); // ignored: direction stopped
        let ev = t.finish();
        assert_eq!(T::bytes(&ev, Dir::C2s), b"ABCDE");
        assert!(ev.contains(&Ev::Gap(
            0,
            Dir::C2s,
            5,
            1006,
            Some(5),
            GapReason::AckedNotCaptured
        )));
        assert!(ev.contains(&Ev::End(0, Dir::C2s, 5, EndReason::Gap)));
        // The other direction is unaffected.
        assert!(ev.contains(&Ev::End(0, Dir::S2c, 0, EndReason::EndOfCapture)));
        // Exactly one gap, and nothing after the End for that direction.
        let end_at = ev
            .iter()
            .position(|e| *e == Ev::End(0, Dir::C2s, 5, EndReason::Gap))
            .unwrap();
        assert!(
            !ev[end_at + 1..]
                .iter()
                .any(|e| matches!(e, Ev::Data(_, Dir::C2s, ..) | Ev::Gap(..)))
        );
    }

    #[test]
    fn ack_of_fin_is_not_a_gap() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK | FIN, b"ab");
        t.seg(false, 5001, 1004, ACK, b"");
        let ev = t.finish();
        assert!(!ev.iter().any(|e| matches!(e, Ev::Gap(..))), "{ev:?}");
    }

    #[test]
    fn hole_at_end_of_capture_is_reported() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"AB");
        t.seg(true, 1010, 5001, ACK, b"XY");
        let ev = t.finish();
        assert!(ev.contains(&Ev::Gap(
            0,
            Dir::C2s,
            2,
            1003,
            Some(7),
            GapReason::EndOfCapture
        )));
    }

    #[test]
    fn pending_memory_is_bounded() {
        let mut t = T::with_max(100);
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"A");
        // byte 1 never comes; 60-byte segments pile up behind it
        t.seg(true, 1003, 5001, ACK, &[b'x'; 60]);
        assert!(!t.ev.iter().any(|e| matches!(e, Ev::Gap(..))));
        t.seg(true, 1063, 5001, ACK, &[b'y'; 60]);
        assert!(
            t.ev.contains(&Ev::Gap(
                0,
                Dir::C2s,
                1,
                1002,
                Some(1),
                GapReason::BufferFull
            )),
            "{:?}",
            t.ev
        );
        assert_eq!(t.r.conns.values().next().unwrap().dirs[0].pending_bytes, 0);
    }

    #[test]
    fn rst_ends_both_directions() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"abc");
        t.seg(false, 5001, 1004, RST | ACK, b"");
        let ev = t.finish();
        assert!(ev.contains(&Ev::End(0, Dir::C2s, 3, EndReason::Rst)));
        assert!(ev.contains(&Ev::End(0, Dir::S2c, 0, EndReason::Rst)));
    }

    #[test]
    fn fin_with_hole_before_it_is_a_gap() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK, b"ab");
        t.seg(true, 1005, 5001, ACK | FIN, b"ef");
        t.seg(false, 5001, 1003, RST | ACK, b"");
        let ev = t.finish();
        assert!(ev.contains(&Ev::Gap(0, Dir::C2s, 2, 1003, Some(2), GapReason::Closed)));
    }

    #[test]
    fn midstream_start_uses_first_seen_sequence_and_orientation_by_port() {
        let mut t = T::new();
        t.seg(false, 777, 1, ACK, b"reply"); // server speaks first in the capture
        t.seg(true, 1, 782, ACK, b"call");
        let ev = t.finish();
        assert_eq!(ev[0], Ev::Open(0, true));
        assert_eq!(T::bytes(&ev, Dir::S2c), b"reply");
        assert_eq!(T::bytes(&ev, Dir::C2s), b"call");
    }

    #[test]
    fn port_reuse_opens_a_new_connection() {
        let mut t = T::new();
        t.handshake();
        t.seg(true, 1001, 5001, ACK | FIN, b"one");
        t.seg(false, 5001, 1005, ACK | FIN, b"");
        t.seg(true, 9000, 0, SYN, b"");
        t.seg(true, 9001, 0, ACK, b"two");
        let ev = t.finish();
        assert!(ev.contains(&Ev::Open(1, false)));
        assert!(ev.contains(&Ev::Data(1, Dir::C2s, 0, b"two".to_vec())));
    }

    #[test]
    fn snaplen_cut_segment_becomes_a_gap() {
        let mut t = T::new();
        t.handshake();
        t.seg_wire(true, 1001, 5001, ACK, b"abcd", 10); // 6 bytes not captured
        t.seg(true, 1011, 5001, ACK, b"next");
        t.seg(false, 5001, 1015, ACK, b"");
        let ev = t.finish();
        assert_eq!(T::bytes(&ev, Dir::C2s), b"abcd");
        assert!(ev.contains(&Ev::Gap(
            0,
            Dir::C2s,
            4,
            1005,
            Some(6),
            GapReason::AckedNotCaptured
        )));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Any segmentation, reordering and duplication of a byte stream is reassembled to the same bytes;
        /// dropping a segment gives the bytes before the hole and exactly one gap.
        #[test]
        fn any_segmentation_order_and_duplication(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..400),
            cuts in proptest::collection::vec(1usize..60, 1..40),
            order_seed in proptest::collection::vec(proptest::prelude::any::<u32>(), 40),
            dups in proptest::collection::vec(0usize..40, 0..6),
            drop in proptest::option::of(0usize..40),
            isn in proptest::prelude::any::<u32>(),
        ) {
            // Cut the stream into segments.
            let mut segs = Vec::new();
            let mut at = 0;
            for c in cuts.iter().cycle() {
                if at >= data.len() { break; }
                let end = (at + c).min(data.len());
                segs.push((at, end));
                at = end;
            }
            let drop = drop.filter(|&i| i < segs.len());
            let mut order: Vec<usize> = (0..segs.len()).collect();
            order.sort_by_key(|&i| order_seed[i % order_seed.len()]);
            for d in dups { if d < segs.len() { order.push(d); } }
            let mut t = T::new();
            t.seg(true, isn, 0, SYN, b"");
            for &i in &order {
                if Some(i) == drop { continue; }
                let (s, e) = segs[i];
                t.seg(true, isn.wrapping_add(1).wrapping_add(s as u32), 0, ACK, &data[s..e]);
            }
            let ev = t.finish();
            let got = T::bytes(&ev, Dir::C2s);
            let gaps: Vec<_> = ev.iter().filter(|e| matches!(e, Ev::Gap(..))).collect();
            match drop {
                None => {
                    proptest::prop_assert_eq!(&got, &data);
                    proptest::prop_assert!(gaps.is_empty());
                }
                Some(i) => {
                    let (s, e) = segs[i];
                    proptest::prop_assert_eq!(&got[..], &data[..s]);
                    if e < data.len() {
                        proptest::prop_assert_eq!(gaps.len(), 1);
                        let want = Ev::Gap(0, Dir::C2s, s as u64,
                            isn.wrapping_add(1).wrapping_add(s as u32), Some((e - s) as u64),
                            GapReason::EndOfCapture);
                        proptest::prop_assert_eq!(gaps[0], &want);
                    }
                }
            }
        }
    }
}
