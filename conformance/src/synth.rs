//! Synthetic captures for tests and hand-made conformance traces: TCP conversations over
//! Ethernet/IPv4 or IPv6, written as classic pcap.

use std::net::{IpAddr, SocketAddr};

use crate::capture::net::flags;

/// A TCP header + payload.
pub fn tcp_bytes(sport: u16, dport: u16, seq: u32, ack: u32, fl: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(5 << 4);
    t.push(fl);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// An IPv4 (protocol TCP) packet around `l4`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&u16::try_from(20 + l4.len()).unwrap_or(0).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

/// An IPv6 (next header TCP) packet around `l4`.
pub fn ipv6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(l4.len()).unwrap_or(0).to_be_bytes());
    p.extend_from_slice(&[6, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(l4);
    p
}

/// An Ethernet frame around an IP packet.
pub fn ether(ip: &[u8]) -> Vec<u8> {
    let mut e = vec![0; 12];
    e.extend_from_slice(if ip.first().is_some_and(|b| b >> 4 == 6) {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    e.extend_from_slice(ip);
    e
}

/// An Ethernet packet carrying one TCP segment from `src` to `dst` (both IPv4 or both IPv6).
pub fn packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    fl: u8,
    data: &[u8],
) -> Vec<u8> {
    let t = tcp_bytes(src.port(), dst.port(), seq, ack, fl, data);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ether(&ipv4(s.octets(), d.octets(), &t)),
        (IpAddr::V6(s), IpAddr::V6(d)) => ether(&ipv6(s, d, &t)),
        (s, d) => panic!("mixed address families {s} / {d}"),
    }
}

/// A classic pcap file (little-endian, microseconds) of Ethernet (or `linktype`) packets, 1 ms apart.
pub fn pcap(linktype: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let len = u32::try_from(p.len()).unwrap_or(u32::MAX);
        v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        v.extend_from_slice(&(u32::try_from(i).unwrap_or(0) * 1000).to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

/// A TCP conversation being built packet by packet (Ethernet link type).
#[derive(Debug, Clone)]
pub struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
    /// The packets so far.
    pub packets: Vec<Vec<u8>>,
}

impl Conversation {
    /// A conversation with a captured three-way handshake (client ISN 1000, server ISN 5000).
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        let mut c = Conversation {
            client,
            server,
            cseq: 1001,
            sseq: 5001,
            packets: Vec::new(),
        };
        c.packets
            .push(packet(client, server, 1000, 0, flags::SYN, b""));
        c.packets.push(packet(
            server,
            client,
            5000,
            1001,
            flags::SYN | flags::ACK,
            b"",
        ));
        c.packets
            .push(packet(client, server, 1001, 5001, flags::ACK, b""));
        c
    }

    /// The client sends `data` in one segment.
    pub fn c2s(&mut self, data: &[u8]) -> &mut Self {
        let p = packet(
            self.client,
            self.server,
            self.cseq,
            self.sseq,
            flags::ACK | flags::PSH,
            data,
        );
        self.cseq = self.cseq.wrapping_add(data.len() as u32);
        self.packets.push(p);
        self
    }

    /// The server sends `data` in one segment.
    pub fn s2c(&mut self, data: &[u8]) -> &mut Self {
        let p = packet(
            self.server,
            self.client,
            self.sseq,
            self.cseq,
            flags::ACK | flags::PSH,
            data,
        );
        self.sseq = self.sseq.wrapping_add(data.len() as u32);
        self.packets.push(p);
        self
    }

    /// The client sends `n` bytes that the capture misses, then the server acknowledges them.
    pub fn c2s_lost(&mut self, n: u32) -> &mut Self {
        self.cseq = self.cseq.wrapping_add(n);
        let p = packet(
            self.server,
            self.client,
            self.sseq,
            self.cseq,
            flags::ACK,
            b"",
        );
        self.packets.push(p);
        self
    }

    /// Both sides close.
    pub fn close(&mut self) -> &mut Self {
        let fin = flags::FIN | flags::ACK;
        self.packets.push(packet(
            self.client,
            self.server,
            self.cseq,
            self.sseq,
            fin,
            b"",
        ));
        self.cseq = self.cseq.wrapping_add(1);
        self.packets.push(packet(
            self.server,
            self.client,
            self.sseq,
            self.cseq,
            fin,
            b"",
        ));
        self.sseq = self.sseq.wrapping_add(1);
        self.packets.push(packet(
            self.client,
            self.server,
            self.cseq,
            self.sseq,
            flags::ACK,
            b"",
        ));
        self
    }

    /// The conversation as a pcap file.
    pub fn pcap(&self) -> Vec<u8> {
        pcap(crate::capture::net::LINKTYPE_ETHERNET, &self.packets)
    }
}
