//! Writing captures: recorded connections ([`Chunk`]s) as a pcapng file that Wireshark, tshark and
//! `virtwire decode` open like a capture taken on the wire.
//!
//! The file has one section header block, one interface description block (`LINKTYPE_RAW` = 101, so
//! each packet is a bare IPv4 or IPv6 packet; snap length 65535; microsecond timestamps) and one
//! enhanced packet block per packet. The packets are synthesized, one TCP connection per [`Flow`]:
//!
//! - a three-way handshake (SYN, SYN-ACK, ACK, with MSS and window-scale options) at the flow's start;
//! - each chunk as data segments from its sender (`PSH|ACK`, the last one `PSH`), split so that no
//!   packet exceeds 65535 bytes (payloads of at most 65535 − 40 bytes over IPv4, 65535 − 60 over
//!   IPv6), followed by the receiver's pure ACK; sequence and acknowledgement numbers are those of a
//!   real connection (initial sequence numbers derived from the addresses and start time);
//! - each direction's end as a FIN (acknowledged) or a RST, at its time; a flow whose server refused
//!   the connection is a SYN answered by a RST;
//! - when a direction sent more than was recorded (a capped recording), its FIN or RST carries the
//!   sequence number of the real end, so readers see the missing bytes as a gap instead of a
//!   silently shorter stream.
//!
//! Flows are written one after the other, each complete (a recording proxy writes a connection when
//! it has closed), so packets of concurrent connections are grouped by connection rather than
//! interleaved by time; readers reassemble per connection and do not mind.
//!
//! IPv4 header checksums and TCP checksums (with the pseudo-header) are computed, so Wireshark's
//! checksum validation passes when it is switched on. Timestamps are the flow's start (wall clock)
//! plus each chunk's time, in microseconds, never going backwards within a flow.
//!
//! Addresses are the caller's. For a unix-socket connection there are none: the proxy shows such an
//! end on 127.0.0.1 (client port 40000 + connection number, server port 16509, libvirtd's, which
//! `virtwire decode` and Wireshark's libvirt dissector pick up without options); see
//! [`crate::proxy::Connection::flow`].

use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::capture::net::{LINKTYPE_RAW, flags};
use crate::capture::tcp::Dir;
use crate::wire::peer::Chunk;

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// A FIN.
    Fin,
    /// A RST (ends the whole connection).
    Reset,
}

/// A FIN or RST sent by one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEnd {
    /// The side that sends it: [`Dir::C2s`] for the client.
    pub from: Dir,
    /// Time since the flow's start.
    pub at: Duration,
    /// FIN or RST.
    pub close: Close,
}

/// One TCP connection to write.
#[derive(Clone, Debug)]
pub struct Flow<'a> {
    /// The client (sends the SYN).
    pub client: SocketAddr,
    /// The server.
    pub server: SocketAddr,
    /// When the connection opened (wall clock).
    pub start: SystemTime,
    /// The traffic, both directions in order, times since `start`.
    pub chunks: &'a [Chunk],
    /// Bytes each side really sent, `[client, server]`: more than `chunks` holds when the recording
    /// was capped.
    pub sent: [u64; 2],
    /// FINs and RSTs, in time order.
    pub ends: Vec<FlowEnd>,
    /// The server refused the connection: only a SYN and a RST are written.
    pub refused: bool,
}

/// Largest packet written (and the interface's snap length).
pub const MAX_PACKET: usize = 65535;

const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
/// SYN options: MSS (kind 2, 4 bytes), NOP, window scale (kind 3, 3 bytes).
const SYN_OPTIONS: [u8; 8] = [2, 4, 0xff, 0xd7, 1, 3, 3, 7];
/// Advertised window (scaled by 2^7 per [`SYN_OPTIONS`]: 8 MiB).
const WINDOW: u16 = 0xffff;

const BLOCK_SHB: u32 = 0x0A0D_0D0A;
const BLOCK_IDB: u32 = 1;
const BLOCK_EPB: u32 = 6;

/// A pcapng file being written: the headers at once, then flows one by one.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    ip_id: u16,
    packets: u64,
    pkt: Vec<u8>,
    block: Vec<u8>,
}

/// Write `flows` as one pcapng file (flows one after the other, each in its own time order).
pub fn write_pcapng<W: Write>(out: W, flows: &[Flow<'_>]) -> io::Result<W> {
    let mut w = PcapngWriter::new(out)?;
    for f in flows {
        w.write_flow(f)?;
    }
    w.finish()
}

fn push_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    b.resize(b.len().next_multiple_of(4), 0);
}

impl<W: Write> PcapngWriter<W> {
    /// Start a file: section header and interface description.
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            ip_id: 0,
            packets: 0,
            pkt: Vec::with_capacity(MAX_PACKET),
            block: Vec::with_capacity(MAX_PACKET + 64),
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes()); // byte-order magic
        shb.extend_from_slice(&1u16.to_le_bytes()); // major version
        shb.extend_from_slice(&0u16.to_le_bytes()); // minor version
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
        push_option(&mut shb, 4, b"virtwire record"); // shb_userappl
        push_option(&mut shb, 0, b""); // opt_endofopt
        w.write_block(BLOCK_SHB, &shb)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&(LINKTYPE_RAW as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes()); // snap length
        push_option(&mut idb, 2, b"virtwire-proxy"); // if_name
        push_option(&mut idb, 9, &[6]); // if_tsresol: 10^-6 s
        push_option(&mut idb, 0, b"");
        w.write_block(BLOCK_IDB, &idb)?;
        Ok(w)
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flush and give the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_block(&mut self, kind: u32, body: &[u8]) -> io::Result<()> {
        let total = (12 + body.len().next_multiple_of(4)) as u32;
        self.out.write_all(&kind.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(body)?;
        self.out
            .write_all(&[0; 3][..body.len().next_multiple_of(4) - body.len()])?;
        self.out.write_all(&total.to_le_bytes())
    }

    /// Write `self.pkt` as an enhanced packet block at `ts_us`.
    fn write_packet(&mut self, ts_us: u64) -> io::Result<()> {
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        block.extend_from_slice(&0u32.to_le_bytes()); // interface 0
        block.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        block.extend_from_slice(&(ts_us as u32).to_le_bytes());
        let len = self.pkt.len() as u32;
        block.extend_from_slice(&len.to_le_bytes()); // captured
        block.extend_from_slice(&len.to_le_bytes()); // on the wire
        block.extend_from_slice(&self.pkt);
        let r = self.write_block(BLOCK_EPB, &block);
        self.block = block;
        self.packets += 1;
        r
    }

    /// Write one connection.
    pub fn write_flow(&mut self, flow: &Flow<'_>) -> io::Result<()> {
        let t0 = flow
            .start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut tcp = Tcp::new(flow, t0);
        let isn = tcp.isn;
        tcp.segment(self, 0, isn[0], 0, flags::SYN, &SYN_OPTIONS, &[])?;
        if flow.refused {
            let ack = isn[0].wrapping_add(1);
            return tcp.segment(self, 1, 0, ack, flags::RST | flags::ACK, &[], &[]);
        }
        let ack = isn[0].wrapping_add(1);
        tcp.segment(
            self,
            1,
            isn[1],
            ack,
            flags::SYN | flags::ACK,
            &SYN_OPTIONS,
            &[],
        )?;
        tcp.pure_ack(self, 0)?;
        let fins = flow.ends.iter().filter(|e| e.close == Close::Fin);
        let mut fins = fins.peekable();
        for c in flow.chunks {
            while let Some(e) = fins.next_if(|e| e.at < c.at) {
                tcp.fin(self, e)?;
            }
            tcp.data(self, c)?;
        }
        for e in fins {
            tcp.fin(self, e)?;
        }
        // A reset ends everything: written last, whatever a racing direction recorded after it.
        if let Some(e) = flow.ends.iter().find(|e| e.close == Close::Reset) {
            let side = side(e.from);
            tcp.at(e.at);
            tcp.jump_to_sent(side);
            let (seq, ack) = (tcp.next[side], tcp.next[1 - side]);
            tcp.segment(self, side, seq, ack, flags::RST | flags::ACK, &[], &[])?;
        }
        Ok(())
    }
}

fn side(d: Dir) -> usize {
    match d {
        Dir::C2s => 0,
        Dir::S2c => 1,
    }
}

/// The state of one synthesized TCP connection.
struct Tcp {
    addr: [SocketAddr; 2],
    isn: [u32; 2],
    /// Next sequence number per side.
    next: [u32; 2],
    /// Payload bytes written per side.
    written: [u64; 2],
    sent: [u64; 2],
    fin: [bool; 2],
    t0: u64,
    ts: u64,
}

/// An initial sequence number, fixed by the connection's addresses and start (FNV-1a).
fn isn(a: SocketAddr, b: SocketAddr, t0: u64) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = format!("{a}>{b}@{t0}");
    for &x in bytes.as_bytes() {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

impl Tcp {
    fn new(flow: &Flow<'_>, t0: u64) -> Self {
        let isn = [
            isn(flow.client, flow.server, t0),
            isn(flow.server, flow.client, t0),
        ];
        Tcp {
            addr: [flow.client, flow.server],
            next: [isn[0].wrapping_add(1), isn[1].wrapping_add(1)],
            isn,
            written: [0; 2],
            sent: flow.sent,
            fin: [false; 2],
            t0,
            ts: t0,
        }
    }

    /// Move the clock to `at` since the start (never backwards).
    fn at(&mut self, at: Duration) {
        self.ts = self.ts.max(self.t0 + at.as_micros() as u64);
    }

    /// Before a side's FIN or RST: account for bytes it sent that were not recorded.
    fn jump_to_sent(&mut self, side: usize) {
        let missing = self.sent[side].saturating_sub(self.written[side]);
        if missing > 0 {
            self.next[side] = self.next[side].wrapping_add(missing as u32);
            self.written[side] += missing;
        }
    }

    fn data<W: Write>(&mut self, w: &mut PcapngWriter<W>, c: &Chunk) -> io::Result<()> {
        let side = side(c.dir);
        self.at(c.at);
        let v6 = self.v6();
        let max = MAX_PACKET - TCP_HEADER - if v6 { IPV6_HEADER } else { IPV4_HEADER };
        let n = c.bytes.chunks(max).count();
        for (i, piece) in c.bytes.chunks(max).enumerate() {
            let fl = flags::ACK | if i + 1 == n { flags::PSH } else { 0 };
            let (seq, ack) = (self.next[side], self.next[1 - side]);
            self.segment(w, side, seq, ack, fl, &[], piece)?;
            self.next[side] = seq.wrapping_add(piece.len() as u32);
            self.written[side] += piece.len() as u64;
        }
        if n > 0 {
            self.pure_ack(w, 1 - side)?;
        }
        Ok(())
    }

    fn fin<W: Write>(&mut self, w: &mut PcapngWriter<W>, e: &FlowEnd) -> io::Result<()> {
        let side = side(e.from);
        if self.fin[side] {
            return Ok(());
        }
        self.at(e.at);
        self.jump_to_sent(side);
        let (seq, ack) = (self.next[side], self.next[1 - side]);
        self.segment(w, side, seq, ack, flags::FIN | flags::ACK, &[], &[])?;
        self.next[side] = seq.wrapping_add(1);
        self.fin[side] = true;
        self.pure_ack(w, 1 - side)
    }

    fn pure_ack<W: Write>(&mut self, w: &mut PcapngWriter<W>, side: usize) -> io::Result<()> {
        let (seq, ack) = (self.next[side], self.next[1 - side]);
        self.segment(w, side, seq, ack, flags::ACK, &[], &[])
    }

    fn v6(&self) -> bool {
        self.addr.iter().any(|a| a.is_ipv6())
    }

    /// One packet from `side` (0 client, 1 server).
    #[allow(clippy::too_many_arguments)]
    fn segment<W: Write>(
        &mut self,
        w: &mut PcapngWriter<W>,
        side: usize,
        seq: u32,
        ack: u32,
        fl: u8,
        options: &[u8],
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst) = (self.addr[side], self.addr[1 - side]);
        let tcp_len = TCP_HEADER + options.len() + payload.len();
        let mut pkt = std::mem::take(&mut w.pkt);
        pkt.clear();
        let (sip, dip) = (src.ip(), dst.ip());
        let v6 = self.v6();
        // The pseudo-header's sum (RFC 793 §3.1, RFC 8200 §8.1).
        let mut sum: u64 = 6 + tcp_len as u64;
        if v6 {
            let (s6, d6) = (as_v6(sip), as_v6(dip));
            pkt.push(0x60);
            pkt.extend_from_slice(&[0, 0, 0]);
            pkt.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            pkt.extend_from_slice(&[6, 64]); // next header TCP, hop limit
            pkt.extend_from_slice(&s6.octets());
            pkt.extend_from_slice(&d6.octets());
            sum += words(&s6.octets()) + words(&d6.octets());
        } else {
            let (IpAddr::V4(s4), IpAddr::V4(d4)) = (sip, dip) else {
                unreachable!("v6() is false only when both addresses are IPv4")
            };
            w.ip_id = w.ip_id.wrapping_add(1);
            pkt.push(0x45);
            pkt.push(0);
            pkt.extend_from_slice(&((IPV4_HEADER + tcp_len) as u16).to_be_bytes());
            pkt.extend_from_slice(&w.ip_id.to_be_bytes());
            pkt.extend_from_slice(&[0x40, 0]); // don't fragment
            pkt.extend_from_slice(&[64, 6, 0, 0]); // TTL, TCP, checksum (below)
            pkt.extend_from_slice(&s4.octets());
            pkt.extend_from_slice(&d4.octets());
            let c = fold(words(&pkt[..IPV4_HEADER]));
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            sum += words(&s4.octets()) + words(&d4.octets());
        }
        let t = pkt.len();
        pkt.extend_from_slice(&src.port().to_be_bytes());
        pkt.extend_from_slice(&dst.port().to_be_bytes());
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&ack.to_be_bytes());
        pkt.push((((TCP_HEADER + options.len()) / 4) as u8) << 4);
        pkt.push(fl);
        pkt.extend_from_slice(&WINDOW.to_be_bytes());
        pkt.extend_from_slice(&[0, 0, 0, 0]); // checksum (below), urgent pointer
        pkt.extend_from_slice(options);
        pkt.extend_from_slice(payload);
        let c = fold(sum + words(&pkt[t..]));
        pkt[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        w.pkt = pkt;
        w.write_packet(self.ts)
    }
}

fn as_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// The sum of `b` as big-endian 16-bit words (an odd last byte padded with zero), unfolded.
fn words(b: &[u8]) -> u64 {
    let mut it = b.chunks_exact(8);
    let mut sum: u64 = 0;
    for w in &mut it {
        let x = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        sum += (x >> 48) + ((x >> 32) & 0xffff) + ((x >> 16) & 0xffff) + (x & 0xffff);
    }
    let rest = it.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The Internet checksum (RFC 1071) of an unfolded sum.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        // The example header of RFC 1071 style write-ups: 4500 0073 0000 4000 4011 ---- c0a8 0001 c0a8 00c7.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(fold(words(&h)), 0xb861);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(words(&[1, 2, 3]), 0x0102 + 0x0300);
        assert_eq!(words(&[0xff; 9]), 4 * 0xffff + 0xff00);
    }

    /// Every packet of a written flow: IPv4 header and TCP checksums verify (sum to zero with the
    /// pseudo-header), no packet exceeds 65535 bytes, and a 70,001-byte chunk is two segments.
    #[test]
    fn checksums_verify_and_segments_fit() {
        let chunk = Chunk {
            dir: Dir::C2s,
            at: Duration::from_millis(3),
            bytes: (0..70_001u32).map(|i| i as u8).collect(),
        };
        for (c, s) in [
            ("127.0.0.1:40000", "127.0.0.1:16509"),
            ("[::1]:40000", "[::1]:16509"),
        ] {
            let flow = Flow {
                client: c.parse().unwrap(),
                server: s.parse().unwrap(),
                start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                chunks: std::slice::from_ref(&chunk),
                sent: [70_001, 0],
                ends: vec![FlowEnd {
                    from: Dir::C2s,
                    at: Duration::from_millis(4),
                    close: Close::Fin,
                }],
                refused: false,
            };
            let file = write_pcapng(Vec::new(), &[flow]).unwrap();
            let mut r = crate::capture::CaptureReader::new(&file[..]).unwrap();
            let mut pkt = crate::capture::Packet::default();
            let mut payloads = Vec::new();
            while r.next_packet(&mut pkt).unwrap() {
                let p = &pkt.data;
                assert!(p.len() <= MAX_PACKET);
                assert_eq!(pkt.linktype, LINKTYPE_RAW);
                let (ip, pseudo) = if p[0] >> 4 == 4 {
                    assert_eq!(fold(words(&p[..IPV4_HEADER])), 0, "IPv4 header checksum");
                    (IPV4_HEADER, words(&p[12..20]))
                } else {
                    (IPV6_HEADER, words(&p[8..40]))
                };
                let tcp = &p[ip..];
                let sum = pseudo + 6 + tcp.len() as u64 + words(tcp);
                assert_eq!(fold(sum), 0, "TCP checksum");
                let off = usize::from(tcp[12] >> 4) * 4;
                payloads.push(tcp.len() - off);
            }
            // SYN, SYN-ACK, ACK, two data segments, ACK, FIN, ACK.
            let max = if c.starts_with('[') { 65_475 } else { 65_495 };
            assert_eq!(payloads, [0, 0, 0, max, 70_001 - max, 0, 0, 0]);
        }
    }
}
