//! Link, IP and TCP headers: from a captured packet to a TCP segment.
//!
//! Link types: Ethernet (with 802.1Q / QinQ tags), Linux cooked capture v1 and v2, raw IP, and BSD
//! loopback (null / loop). IPv4 and IPv6 (hop-by-hop, routing, destination-options and authentication
//! extension headers are skipped). IP fragments are not reassembled (libvirt traffic is never
//! fragmented on loopback, and rarely anywhere): they are reported. Checksums are not verified
//! (loopback captures carry offloaded, unfilled checksums).
//!
//! Ethernet, VLAN tags, IPv4, IPv6 and TCP are parsed by `etherparse` (its lax IP slices keep a packet
//! cut by the snap length, whose wire length then comes from the IP header). The other link headers are
//! a fixed header and an EtherType or address family, read here, because etherparse 0.21 does not fit:
//! - Linux cooked v1: `LinuxSllSlice` refuses ARPHRD_LOOPBACK, the hardware type of every `lo` packet
//!   captured on `any` (corpus/traces/list-sll.pcap, packet 1: `UnsupportedArpHardwareId` 772).
//! - Linux cooked v2, BSD null / loop: etherparse has no such link types; an SLL2 header read as v1
//!   fails (list-sll2.pcap, packet 1: `UnsupportedPacketTypeField` 2048).

use std::net::{IpAddr, SocketAddr};

use etherparse::err::{LenError, ipv4, ipv6, ipv6_exts, tcp};
use etherparse::{
    EtherType, Ethernet2Slice, IpNumber, LaxIpv4Slice, LaxIpv6Slice, SingleVlanSlice, TcpSlice,
};

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
    Some(u16::from_be_bytes(*b.get(at..)?.first_chunk::<2>()?))
}

/// Decode a captured packet of the given link type.
pub fn decode(linktype: u32, data: &[u8]) -> Decoded<'_> {
    let (ethertype, rest) = match link(linktype, data) {
        Ok(v) => v,
        Err(skipped) => return skipped,
    };
    match ethertype {
        EtherType::IPV4 => ipv4(rest),
        EtherType::IPV6 => ipv6(rest),
        _ => Decoded::Other,
    }
}

/// The link header: the EtherType of what follows, and what follows.
fn link(linktype: u32, data: &[u8]) -> Result<(EtherType, &[u8]), Decoded<'_>> {
    let skip = |why| move |_| Decoded::Skipped(why);
    match linktype {
        LINKTYPE_ETHERNET => {
            let eth = Ethernet2Slice::from_slice_without_fcs(data)
                .map_err(skip("Ethernet header truncated"))?;
            let mut p = eth.payload();
            // 802.1Q, 802.1ad and the old QinQ tag.
            while matches!(
                p.ether_type,
                EtherType::VLAN_TAGGED_FRAME
                    | EtherType::PROVIDER_BRIDGING
                    | EtherType::VLAN_DOUBLE_TAGGED_FRAME
            ) {
                p = SingleVlanSlice::from_slice(p.payload)
                    .map_err(skip("VLAN tag truncated"))?
                    .payload();
            }
            Ok((p.ether_type, p.payload))
        }
        // Packet type, ARPHRD type, address length, 8 address bytes, protocol (an EtherType).
        LINKTYPE_LINUX_SLL => match (be16(data, 14), data.get(16..)) {
            (Some(et), Some(rest)) => Ok((EtherType(et), rest)),
            _ => Err(Decoded::Skipped("Linux cooked header truncated")),
        },
        // Protocol (an EtherType) first, then 18 bytes of interface, ARPHRD type and address.
        LINKTYPE_LINUX_SLL2 => match (be16(data, 0), data.get(20..)) {
            (Some(et), Some(rest)) => Ok((EtherType(et), rest)),
            _ => Err(Decoded::Skipped("Linux cooked v2 header truncated")),
        },
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let (Some(&af), Some(rest)) = (data.first_chunk::<4>(), data.get(4..)) else {
                return Err(Decoded::Skipped("loopback header truncated"));
            };
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
            match fam {
                2 => Ok((EtherType::IPV4, rest)),
                // AF_INET6 on Linux, BSDs, Darwin.
                10 | 24 | 28 | 30 => Ok((EtherType::IPV6, rest)),
                _ => Err(Decoded::Other),
            }
        }
        LINKTYPE_RAW | 12 | 14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => match data.first() {
            Some(b) if b >> 4 == 4 => Ok((EtherType::IPV4, data)),
            Some(b) if b >> 4 == 6 => Ok((EtherType::IPV6, data)),
            _ => Err(Decoded::Skipped("raw IP packet of unknown version")),
        },
        _ => Err(Decoded::Skipped("unsupported link type")),
    }
}

/// Shorter than the fixed part of the header (rather than than its options).
fn short_of_fixed(e: &LenError, fixed: usize) -> bool {
    e.required_len <= fixed
}

fn ipv4(b: &[u8]) -> Decoded<'_> {
    let ip = match LaxIpv4Slice::from_slice(b) {
        Ok((ip, _)) => ip,
        Err(e) => {
            return Decoded::Skipped(match e {
                ipv4::HeaderSliceError::Len(l) if short_of_fixed(&l, 20) => "IPv4 header truncated",
                ipv4::HeaderSliceError::Content(ipv4::HeaderError::UnexpectedVersion {
                    ..
                }) => "IPv4 version field is not 4",
                _ => "IPv4 header truncated or too short",
            });
        }
    };
    let (h, payload) = (ip.header(), ip.payload());
    // An authentication header that does not parse leaves AUTH here: not known to be TCP.
    if payload.ip_number != IpNumber::TCP {
        return Decoded::Other;
    }
    if payload.fragmented {
        return Decoded::Skipped("IPv4 fragment (fragments are not reassembled)");
    }
    let (ihl, total) = (h.slice().len(), usize::from(h.total_len()));
    if total != 0 && total < ihl {
        return Decoded::Skipped("IPv4 total length shorter than its header");
    }
    // TSO captures can carry total length 0; then trust what was captured.
    let wire = if total == 0 { b.len() } else { total } - ihl;
    let auth = ip.extensions().auth.map_or(0, |a| a.slice().len());
    tcp(
        IpAddr::V4(h.source_addr()),
        IpAddr::V4(h.destination_addr()),
        payload.payload,
        wire.saturating_sub(auth),
    )
}

fn ipv6(b: &[u8]) -> Decoded<'_> {
    let (ip, ext_err) = match LaxIpv6Slice::from_slice(b) {
        Ok(v) => v,
        Err(ipv6::HeaderSliceError::Content(ipv6::HeaderError::UnexpectedVersion { .. })) => {
            return Decoded::Skipped("IPv6 version field is not 6");
        }
        Err(_) => return Decoded::Skipped("IPv6 header truncated"),
    };
    let (h, payload) = (ip.header(), ip.payload());
    if payload.fragmented {
        return Decoded::Skipped("IPv6 fragment (fragments are not reassembled)");
    }
    match ext_err {
        None => {}
        Some((ipv6_exts::HeaderSliceError::Len(_), _)) => {
            return Decoded::Skipped("IPv6 extension header truncated");
        }
        // Hop-by-hop options not first (RFC 8200 §4.1), or a malformed authentication header.
        Some((ipv6_exts::HeaderSliceError::Content(_), _)) => {
            return Decoded::Skipped("IPv6 extension header invalid");
        }
    }
    if payload.ip_number != IpNumber::TCP {
        return Decoded::Other;
    }
    // Payload length 0 means a jumbogram (or TSO): trust what was captured.
    let wire = match usize::from(h.payload_length()) {
        0 => b.len() - h.slice().len(),
        plen => plen,
    };
    tcp(
        IpAddr::V6(h.source_addr()),
        IpAddr::V6(h.destination_addr()),
        payload.payload,
        wire.saturating_sub(ip.extensions().slice().len()),
    )
}

fn tcp(src: IpAddr, dst: IpAddr, b: &[u8], wire: usize) -> Decoded<'_> {
    let t = match TcpSlice::from_slice(b) {
        Ok(t) => t,
        Err(tcp::HeaderSliceError::Len(l)) if short_of_fixed(&l, 20) => {
            return Decoded::Skipped("TCP header truncated");
        }
        Err(_) => return Decoded::Skipped("TCP header truncated or too short"),
    };
    let hl = t.header_len();
    if wire < hl {
        return Decoded::Skipped("TCP header truncated or too short");
    }
    let flags = [
        t.fin(),
        t.syn(),
        t.rst(),
        t.psh(),
        t.ack(),
        t.urg(),
        t.ece(),
        t.cwr(),
    ]
    .iter()
    .enumerate()
    .fold(0u8, |f, (bit, &on)| f | (u8::from(on) << bit));
    Decoded::Tcp(TcpSegment {
        src: SocketAddr::new(src, t.source_port()),
        dst: SocketAddr::new(dst, t.destination_port()),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags,
        payload: t.payload(),
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

    #[test]
    fn options_extension_headers_and_tags() {
        // TCP options (NOP NOP NOP EOL, MSS, window scale): the payload starts after them.
        let mut t = tcp_bytes(1, 16509, 3, 4, flags::SYN | flags::ACK, b"xy");
        t[12] = 8 << 4;
        t.splice(20..20, [1u8, 1, 1, 0, 2, 4, 5, 0xb4, 1, 3, 3, 7]);
        // IPv6 with hop-by-hop then destination options before TCP.
        let mut ip6 = ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &t);
        ip6[6] = 0;
        let plen = u16::from_be_bytes([ip6[4], ip6[5]]) + 16;
        ip6[4..6].copy_from_slice(&plen.to_be_bytes());
        ip6.splice(40..40, [60u8, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0]);
        // QinQ: an 802.1ad tag, then an 802.1Q tag.
        let mut qinq = vec![0; 12];
        qinq.extend_from_slice(&[0x88, 0xa8, 0, 6, 0x81, 0, 0, 5]);
        qinq.extend_from_slice(&ether(&ip6)[12..]);
        // Linux cooked v1 from `any`: ARPHRD_LOOPBACK (772), which etherparse's LinuxSllSlice refuses.
        let mut sll = vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd];
        sll.extend_from_slice(&ip6);
        for (lt, pkt) in [(LINKTYPE_ETHERNET, qinq), (LINKTYPE_LINUX_SLL, sll)] {
            let s = seg(decode(lt, &pkt));
            assert_eq!((s.flags, s.payload, s.wire_len), (0x12, &b"xy"[..], 2));
        }
        // Hop-by-hop anywhere but first is invalid (RFC 8200 §4.1).
        ip6[40] = 0;
        assert_eq!(
            decode(LINKTYPE_IPV6, &ip6),
            Decoded::Skipped("IPv6 extension header invalid")
        );
    }

    #[test]
    fn ipv6_fragments_and_atomic_fragments() {
        let t = tcp_bytes(1, 2, 0, 0, 0, b"ab");
        let mut ip = ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &t);
        ip[6] = 44;
        let plen = u16::from_be_bytes([ip[4], ip[5]]) + 8;
        ip[4..6].copy_from_slice(&plen.to_be_bytes());
        // Fragment header: next header TCP, offset 0, M set.
        ip.splice(40..40, [6u8, 0, 0, 1, 0, 0, 0, 9]);
        assert!(
            matches!(decode(LINKTYPE_IPV6, &ip), Decoded::Skipped(m) if m.contains("fragment"))
        );
        // Offset 0 and no more fragments: an atomic fragment (RFC 6946), the whole segment.
        ip[43] = 0;
        assert_eq!(seg(decode(LINKTYPE_IPV6, &ip)).payload, b"ab");
    }

    #[test]
    fn ipv4_total_length_zero_trusts_the_capture() {
        // TSO / offloaded captures: total length 0, the segment is what was captured.
        let t = tcp_bytes(1, 2, 0, 0, 0, b"abc");
        let mut ip = ipv4([1, 1, 1, 1], [2, 2, 2, 2], &t);
        ip[2..4].copy_from_slice(&[0, 0]);
        let s = seg(decode(LINKTYPE_RAW, &ip));
        assert_eq!((s.payload, s.wire_len), (&b"abc"[..], 3));
        ip[2..4].copy_from_slice(&[0, 12]);
        assert_eq!(
            decode(LINKTYPE_RAW, &ip),
            Decoded::Skipped("IPv4 total length shorter than its header")
        );
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
