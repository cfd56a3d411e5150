//! Link, IP and TCP headers: from a captured packet to a TCP segment.
//!
//! Link types: Ethernet (with 802.1Q / QinQ tags), Linux cooked capture v1 and v2, raw IP, and BSD
//! loopback (null / loop). IPv4 and IPv6 (hop-by-hop, routing and destination-options extension headers
//! are skipped). IP fragments are not reassembled (libvirt traffic is never fragmented on loopback, and
//! rarely anywhere): they are reported. Checksums are not verified (loopback captures carry offloaded,
//! unfilled checksums).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `LINKTYPE_NULL`: 4-byte address family in the capturing host's byte order.
pub const LINKTYPE_NULL: u32 = 0;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_RAW`: a bare IPv4 or IPv6 packet.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_LOOP`: 4-byte address family in network byte order.
pub const LINKTYPE_LOOP: u32 = 108;
/// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1 (16-byte header).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_IPV4`.
pub const LINKTYPE_IPV4: u32 = 228;
/// `LINKTYPE_IPV6`.
pub const LINKTYPE_IPV6: u32 = 229;
/// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2 (20-byte header).
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A TCP segment found in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when [`flags::ACK`] is set).
    pub ack: u32,
    /// Flag bits ([`flags`]).
    pub flags: u8,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length on the wire (from the IP length); larger than `payload.len()` when the
    /// capture cut the packet short.
    pub wire_len: u32,
}

/// What a packet turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// Not TCP over IP (ARP, UDP, ICMP, …): not ours, skipped silently.
    Other,
    /// Something we cannot or do not decode, with the reason (unsupported link type, IP fragment,
    /// malformed header).
    Skipped(&'static str),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decode a captured packet of the given link type.
pub fn decode(linktype: u32, data: &[u8]) -> Decoded<'_> {
    let (ethertype, rest) = match linktype {
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut et = match be16(data, at) {
                Some(v) => v,
                None => return Decoded::Skipped("Ethernet header truncated"),
            };
            // 802.1Q, 802.1ad and the old QinQ tag.
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                at += 4;
                et = match be16(data, at) {
                    Some(v) => v,
                    None => return Decoded::Skipped("VLAN tag truncated"),
                };
            }
            (et, &data[at + 2..])
        }
        LINKTYPE_LINUX_SLL => match be16(data, 14) {
            Some(et) => (et, &data[16..]),
            None => return Decoded::Skipped("Linux cooked header truncated"),
        },
        LINKTYPE_LINUX_SLL2 => match (be16(data, 0), data.get(20..)) {
            (Some(et), Some(rest)) => (et, rest),
            _ => return Decoded::Skipped("Linux cooked v2 header truncated"),
        },
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let Some(af) = data.get(..4) else {
                return Decoded::Skipped("loopback header truncated");
            };
            let af = [af[0], af[1], af[2], af[3]];
            let fam = if linktype == LINKTYPE_LOOP {
                u32::from_be_bytes(af)
            } else {
                // Host byte order of the capturing machine: take whichever order gives a small number.
                let le = u32::from_le_bytes(af);
                if le < 0x100 {
                    le
                } else {
                    u32::from_be_bytes(af)
                }
            };
            let et = match fam {
                2 => 0x0800,
                // AF_INET6 on Linux, BSDs, Darwin.
                10 | 24 | 28 | 30 => 0x86dd,
                _ => return Decoded::Other,
            };
            (et, &data[4..])
        }
        LINKTYPE_RAW | 12 | 14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => match data.first() {
            Some(b) if b >> 4 == 4 => (0x0800, data),
            Some(b) if b >> 4 == 6 => (0x86dd, data),
            _ => return Decoded::Skipped("raw IP packet of unknown version"),
        },
        _ => return Decoded::Skipped("unsupported link type"),
    };
    match ethertype {
        0x0800 => ipv4(rest),
        0x86dd => ipv6(rest),
        _ => Decoded::Other,
    }
}

fn ipv4(b: &[u8]) -> Decoded<'_> {
    let (Some(&vihl), Some(total), Some(frag)) = (b.first(), be16(b, 2), be16(b, 6)) else {
        return Decoded::Skipped("IPv4 header truncated");
    };
    if vihl >> 4 != 4 {
        return Decoded::Skipped("IPv4 version field is not 4");
    }
    let ihl = usize::from(vihl & 0xf) * 4;
    if ihl < 20 || b.len() < ihl {
        return Decoded::Skipped("IPv4 header truncated or too short");
    }
    if b[9] != 6 {
        return Decoded::Other;
    }
    if frag & 0x3fff != 0 {
        return Decoded::Skipped("IPv4 fragment (fragments are not reassembled)");
    }
    let total = usize::from(total);
    if total < ihl {
        return Decoded::Skipped("IPv4 total length shorter than its header");
    }
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    // TSO captures can carry total length 0; then trust what was captured.
    let wire = if total == 0 {
        b.len() - ihl
    } else {
        total - ihl
    };
    let end = (ihl + wire).min(b.len());
    tcp(src, dst, &b[ihl..end], wire)
}

fn ipv6(b: &[u8]) -> Decoded<'_> {
    let Some(plen) = be16(b, 4) else {
        return Decoded::Skipped("IPv6 header truncated");
    };
    if b.len() < 40 {
        return Decoded::Skipped("IPv6 header truncated");
    }
    if b[0] >> 4 != 6 {
        return Decoded::Skipped("IPv6 version field is not 6");
    }
    let mut next = b[6];
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(8), addr(24));
    // Payload length 0 means a jumbogram (or TSO): trust what was captured.
    let mut wire = if plen == 0 {
        b.len() - 40
    } else {
        usize::from(plen)
    };
    let mut at = 40;
    loop {
        match next {
            6 => break,
            0 | 43 | 60 => {
                let (Some(&nh), Some(&len)) = (b.get(at), b.get(at + 1)) else {
                    return Decoded::Skipped("IPv6 extension header truncated");
                };
                let l = (usize::from(len) + 1) * 8;
                if wire < l || b.len() < at + l {
                    return Decoded::Skipped("IPv6 extension header truncated");
                }
                next = nh;
                at += l;
                wire -= l;
            }
            44 => return Decoded::Skipped("IPv6 fragment (fragments are not reassembled)"),
            _ => return Decoded::Other,
        }
    }
    let end = (at + wire).min(b.len());
    tcp(src, dst, &b[at..end], wire)
}

fn tcp(src: IpAddr, dst: IpAddr, b: &[u8], wire: usize) -> Decoded<'_> {
    let (Some(sport), Some(dport), Some(seq), Some(ack), Some(&off), Some(&fl)) = (
        be16(b, 0),
        be16(b, 2),
        be32(b, 4),
        be32(b, 8),
        b.get(12),
        b.get(13),
    ) else {
        return Decoded::Skipped("TCP header truncated");
    };
    let hl = usize::from(off >> 4) * 4;
    if hl < 20 || b.len() < hl || wire < hl {
        return Decoded::Skipped("TCP header truncated or too short");
    }
    Decoded::Tcp(TcpSegment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        ack,
        flags: fl,
        payload: &b[hl..],
        wire_len: u32::try_from(wire - hl).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::{
        Decoded, LINKTYPE_ETHERNET, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
        LINKTYPE_NULL, LINKTYPE_RAW, TcpSegment, decode, flags,
    };
    use crate::synth::{ether, ipv4, ipv6, tcp_bytes};
    use std::net::Ipv6Addr;

    fn seg(d: Decoded<'_>) -> TcpSegment<'_> {
        match d {
            Decoded::Tcp(s) => s,
            other => panic!("not TCP: {other:?}"),
        }
    }

    #[test]
    fn every_link_type() {
        let t = tcp_bytes(40000, 16509, 7, 9, flags::ACK | flags::PSH, b"hello");
        let ip4 = ipv4([127, 0, 0, 1], [127, 0, 0, 2], &t);
        let ip6 = ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &t);
        let mut sll = vec![0; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip4);
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip6);
        let mut null_le = 2u32.to_le_bytes().to_vec();
        null_le.extend_from_slice(&ip4);
        let mut null_be = 30u32.to_be_bytes().to_vec();
        null_be.extend_from_slice(&ip6);
        let mut vlan = vec![0; 12];
        vlan.extend_from_slice(&[0x81, 0, 0, 5, 0x08, 0]);
        vlan.extend_from_slice(&ip4);
        let cases: Vec<(u32, Vec<u8>, bool)> = vec![
            (LINKTYPE_ETHERNET, ether(&ip4), false),
            (LINKTYPE_ETHERNET, ether(&ip6), true),
            (LINKTYPE_ETHERNET, vlan, false),
            (LINKTYPE_LINUX_SLL, sll, false),
            (LINKTYPE_LINUX_SLL2, sll2, true),
            (LINKTYPE_NULL, null_le, false),
            (LINKTYPE_NULL, null_be, true),
            (LINKTYPE_RAW, ip4.clone(), false),
            (LINKTYPE_IPV6, ip6.clone(), true),
        ];
        for (lt, pkt, v6) in cases {
            let s = seg(decode(lt, &pkt));
            assert_eq!(s.src.port(), 40000, "linktype {lt}");
            assert_eq!(s.dst.port(), 16509);
            assert_eq!(s.src.is_ipv6(), v6);
            assert_eq!(
                (s.seq, s.ack, s.payload, s.wire_len),
                (7, 9, &b"hello"[..], 5)
            );
        }
    }

    #[test]
    fn ethernet_padding_and_snaplen() {
        let t = tcp_bytes(1, 2, 0, 0, 0, b"ab");
        let mut e = ether(&ipv4([1, 1, 1, 1], [2, 2, 2, 2], &t));
        e.extend_from_slice(&[0; 6]); // padding to 60 bytes
        assert_eq!(seg(decode(1, &e)).payload, b"ab");
        let t = tcp_bytes(1, 2, 0, 0, 0, &[9; 100]);
        let e = ether(&ipv4([1, 1, 1, 1], [2, 2, 2, 2], &t));
        let s = seg(decode(1, &e[..e.len() - 60]));
        assert_eq!((s.payload.len(), s.wire_len), (40, 100));
    }

    #[test]
    fn fragments_and_garbage_are_skipped_not_panics() {
        let t = tcp_bytes(1, 2, 0, 0, 0, b"ab");
        let mut ip = ipv4([1, 1, 1, 1], [2, 2, 2, 2], &t);
        ip[6] = 0x20; // MF
        assert!(matches!(decode(LINKTYPE_RAW, &ip), Decoded::Skipped(m) if m.contains("fragment")));
        assert!(matches!(
            decode(147, b"xx"),
            Decoded::Skipped("unsupported link type")
        ));
        let good = ether(&ipv4([1, 1, 1, 1], [2, 2, 2, 2], &t));
        for cut in 0..good.len() {
            let _ = decode(LINKTYPE_ETHERNET, &good[..cut]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Any bytes of any link type decode to something without panicking.
        #[test]
        fn arbitrary_packets_never_panic(lt in proptest::sample::select(vec![0u32, 1, 101, 108, 113, 228, 229, 276]),
                                         data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let _ = decode(lt, &data);
        }
    }
}
