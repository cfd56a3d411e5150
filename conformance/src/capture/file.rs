//! Capture files: classic pcap (µs and ns, both byte orders) and pcapng (any number of sections and
//! interfaces, enhanced / simple / obsolete packet blocks), detected by their magic number.
//!
//! A small streaming reader of our own rather than a crate: it reads one record at a time from any
//! [`Read`], allocates only as bytes actually arrive (never from a length field alone), keeps the link
//! type of every pcapng interface, accepts records whose original length exceeds the snap length (a
//! truncated capture is a gap, which the reassembler reports), and reports every malformed or truncated
//! record with its byte offset in the file. (pcap-file 2.0 rejects `orig_len > snaplen` records, which
//! every `-s`-limited capture has, and allocates an 8 MB buffer per reader.)

use std::fmt;
use std::io::{self, Read};

/// Largest record (pcap packet or pcapng block) accepted: 256 MiB. Nothing real comes near it; it stops
/// a corrupt length from being followed for gigabytes.
pub const MAX_RECORD: u32 = 256 << 20;

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Why a capture could not be read.
#[derive(Debug)]
pub enum CaptureErrorKind {
    /// The operating system said no.
    Io(io::Error),
    /// The first bytes are no capture magic number.
    NotACapture {
        /// The first (up to 4) bytes.
        magic: Vec<u8>,
    },
    /// The file ends inside a record.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes the record needs.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },
    /// A field has an impossible value.
    Invalid(String),
}

/// A capture-level error with the byte offset in the file where the failing record starts.
#[derive(Debug)]
pub struct CaptureError {
    /// Offset of the record (or of the file header) in the file.
    pub offset: u64,
    /// What went wrong.
    pub kind: CaptureErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CaptureErrorKind::Io(e) => write!(f, "read error at byte {}: {e}", self.offset),
            CaptureErrorKind::NotACapture { magic } => {
                write!(f, "not a pcap or pcapng file (first bytes: ")?;
                for b in magic {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
            CaptureErrorKind::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated capture: {what} at byte {} needs {needed} bytes, the file has {available}",
                self.offset
            ),
            CaptureErrorKind::Invalid(s) => {
                write!(f, "invalid capture at byte {}: {s}", self.offset)
            }
        }
    }
}

impl std::error::Error for CaptureError {}

/// One captured packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// 1-based packet number (as Wireshark counts them).
    pub number: u64,
    /// Offset of its record in the file.
    pub file_offset: u64,
    /// Timestamp in nanoseconds since the epoch (0 if the file has none).
    pub ts_ns: u64,
    /// `LINKTYPE_*` of the interface it was captured on.
    pub linktype: u32,
    /// Length on the wire (may exceed `data.len()` when the capture was cut by a snap length).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    /// Nanoseconds per timestamp unit as a ratio (numerator, denominator).
    tick_num: u64,
    tick_den: u64,
}

#[derive(Debug)]
enum State {
    Pcap {
        big: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        big: bool,
        interfaces: Vec<Interface>,
    },
}

/// Streaming reader of pcap and pcapng files.
#[derive(Debug)]
pub struct CaptureReader<R> {
    inner: R,
    offset: u64,
    count: u64,
    state: State,
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let a = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Read up to `n` bytes into `buf` (cleared first), growing only as bytes arrive. Returns how many.
fn read_up_to(r: &mut impl Read, n: u64, buf: &mut Vec<u8>) -> io::Result<u64> {
    buf.clear();
    let mut taken = r.take(n);
    loop {
        match taken.read_to_end(buf) {
            Ok(_) => return Ok(buf.len() as u64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

impl<R: Read> CaptureReader<R> {
    /// Read the file header and detect the format.
    pub fn new(mut inner: R) -> Result<Self, CaptureError> {
        let mut head = Vec::new();
        let got = read_up_to(&mut inner, 4, &mut head).map_err(|e| CaptureError {
            offset: 0,
            kind: CaptureErrorKind::Io(e),
        })?;
        if got < 4 {
            return Err(CaptureError {
                offset: 0,
                kind: CaptureErrorKind::NotACapture { magic: head },
            });
        }
        let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let mut me = CaptureReader {
            inner,
            offset: 0,
            count: 0,
            state: State::Pcap {
                big: false,
                nanos: false,
                linktype: 0,
            },
        };
        match magic_le {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
                let big = matches!(magic_le, 0xd4c3_b2a1 | 0x4d3c_b2a1);
                let nanos = matches!(magic_le, 0xa1b2_3c4d | 0x4d3c_b2a1);
                let mut rest = Vec::new();
                let got = me.read(20, &mut rest, "pcap file header")?;
                debug_assert_eq!(got, 20);
                let major = u16_at(&rest, 0, big);
                if major != 2 {
                    return Err(CaptureError {
                        offset: 0,
                        kind: CaptureErrorKind::Invalid(format!(
                            "pcap version {major} (only 2.x exists)"
                        )),
                    });
                }
                // The upper bits of the link type field carry FCS information (pcap spec §4).
                let linktype = u32_at(&rest, 16, big) & 0x03FF_FFFF;
                me.offset = 24;
                me.state = State::Pcap {
                    big,
                    nanos,
                    linktype,
                };
                Ok(me)
            }
            PCAPNG_SHB => {
                me.state = State::PcapNg {
                    big: false,
                    interfaces: Vec::new(),
                };
                // The section header is read by the block loop; hand it the 4 bytes read already.
                me.read_shb(0)?;
                Ok(me)
            }
            _ => Err(CaptureError {
                offset: 0,
                kind: CaptureErrorKind::NotACapture { magic: head },
            }),
        }
    }

    /// The container format.
    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap { .. } => Format::Pcap,
            State::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// Offset in the file of the next byte to be read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Read exactly `n` bytes of a record starting at `record_at` or fail with `Truncated`.
    fn read_exact_rec(
        &mut self,
        n: u64,
        buf: &mut Vec<u8>,
        what: &'static str,
        record_at: u64,
        already: u64,
    ) -> Result<(), CaptureError> {
        let got = read_up_to(&mut self.inner, n, buf).map_err(|e| CaptureError {
            offset: self.offset,
            kind: CaptureErrorKind::Io(e),
        })?;
        self.offset += got;
        if got < n {
            return Err(CaptureError {
                offset: record_at,
                kind: CaptureErrorKind::Truncated {
                    what,
                    needed: already + n,
                    available: already + got,
                },
            });
        }
        Ok(())
    }

    /// Read the fixed header of the next record or block: `Ok(None)` at a clean end of file,
    /// `Truncated` (at the record's offset) when the file ends inside it.
    fn read_record_header(
        &mut self,
        n: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, CaptureError> {
        let at = self.offset;
        let mut h = Vec::new();
        let got = read_up_to(&mut self.inner, n, &mut h).map_err(|e| CaptureError {
            offset: at,
            kind: CaptureErrorKind::Io(e),
        })?;
        self.offset += got;
        if got == 0 {
            return Ok(None);
        }
        if got < n {
            return Err(CaptureError {
                offset: at,
                kind: CaptureErrorKind::Truncated {
                    what,
                    needed: n,
                    available: got,
                },
            });
        }
        Ok(Some(h))
    }

    fn read(&mut self, n: u64, buf: &mut Vec<u8>, what: &'static str) -> Result<u64, CaptureError> {
        let at = self.offset;
        self.read_exact_rec(n, buf, what, at, 0)?;
        Ok(n)
    }

    /// Read a section header block whose 4-byte type was already consumed; `at` is its offset.
    fn read_shb(&mut self, at: u64) -> Result<(), CaptureError> {
        self.offset = at + 4;
        let mut b = Vec::new();
        self.read_exact_rec(8, &mut b, "pcapng section header", at, 4)?;
        let bom_le = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let big = match bom_le {
            PCAPNG_BOM => false,
            0x4D3C_2B1A => true,
            other => {
                return Err(CaptureError {
                    offset: at,
                    kind: CaptureErrorKind::Invalid(format!(
                        "pcapng byte-order magic {other:#010x}"
                    )),
                });
            }
        };
        let total = u32_at(&b, 0, big);
        if total < 28 || !total.is_multiple_of(4) || total > MAX_RECORD {
            return Err(CaptureError {
                offset: at,
                kind: CaptureErrorKind::Invalid(format!("section header length {total}")),
            });
        }
        let mut rest = Vec::new();
        self.read_exact_rec(
            u64::from(total) - 12,
            &mut rest,
            "pcapng section header",
            at,
            12,
        )?;
        let major = u16_at(&rest, 0, big);
        if major != 1 {
            return Err(CaptureError {
                offset: at,
                kind: CaptureErrorKind::Invalid(format!("pcapng major version {major}")),
            });
        }
        self.state = State::PcapNg {
            big,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// Read the next packet into `pkt`. `Ok(false)` at a clean end of file.
    pub fn next_packet(&mut self, pkt: &mut Packet) -> Result<bool, CaptureError> {
        match self.state {
            State::Pcap {
                big,
                nanos,
                linktype,
            } => self.next_pcap(pkt, big, nanos, linktype),
            State::PcapNg { .. } => self.next_pcapng(pkt),
        }
    }

    fn next_pcap(
        &mut self,
        pkt: &mut Packet,
        big: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<bool, CaptureError> {
        let at = self.offset;
        let Some(h) = self.read_record_header(16, "pcap record header")? else {
            return Ok(false);
        };
        let sec = u64::from(u32_at(&h, 0, big));
        let frac = u64::from(u32_at(&h, 4, big));
        let incl = u32_at(&h, 8, big);
        let orig = u32_at(&h, 12, big);
        if incl > MAX_RECORD {
            return Err(CaptureError {
                offset: at,
                kind: CaptureErrorKind::Invalid(format!(
                    "record length {incl} is over the {MAX_RECORD}-byte bound"
                )),
            });
        }
        self.read_exact_rec(u64::from(incl), &mut pkt.data, "pcap packet", at, 16)?;
        self.count += 1;
        pkt.number = self.count;
        pkt.file_offset = at;
        pkt.ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        });
        pkt.linktype = linktype;
        pkt.orig_len = orig.max(incl);
        Ok(true)
    }

    fn next_pcapng(&mut self, pkt: &mut Packet) -> Result<bool, CaptureError> {
        loop {
            let at = self.offset;
            let Some(h) = self.read_record_header(8, "pcapng block header")? else {
                return Ok(false);
            };
            let big = match &self.state {
                State::PcapNg { big, .. } => *big,
                State::Pcap { .. } => unreachable!("pcapng reader in pcap state"),
            };
            let btype = u32_at(&h, 0, big);
            if btype == PCAPNG_SHB {
                // The length's byte order is the new section's: re-read from after the type.
                self.offset = at + 4;
                let bytes = [h[4], h[5], h[6], h[7]];
                let mut chained = (&bytes[..]).chain(&mut self.inner);
                let mut tmp = CaptureReader {
                    inner: &mut chained,
                    offset: at + 4,
                    count: self.count,
                    state: State::PcapNg {
                        big,
                        interfaces: Vec::new(),
                    },
                };
                tmp.read_shb(at)?;
                self.offset = tmp.offset;
                self.state = tmp.state;
                continue;
            }
            let total = u32_at(&h, 4, big);
            if total < 12 || !total.is_multiple_of(4) || total > MAX_RECORD {
                return Err(CaptureError {
                    offset: at,
                    kind: CaptureErrorKind::Invalid(format!(
                        "block type {btype:#x} has length {total}"
                    )),
                });
            }
            let mut body = Vec::new();
            self.read_exact_rec(u64::from(total) - 8, &mut body, "pcapng block", at, 8)?;
            let trailer = u32_at(&body, body.len() - 4, big);
            if trailer != total {
                return Err(CaptureError {
                    offset: at,
                    kind: CaptureErrorKind::Invalid(format!(
                        "block length {total} and trailing length {trailer} differ"
                    )),
                });
            }
            body.truncate(body.len() - 4);
            let invalid = |s: String| CaptureError {
                offset: at,
                kind: CaptureErrorKind::Invalid(s),
            };
            let State::PcapNg { interfaces, .. } = &mut self.state else {
                unreachable!("pcapng reader in pcap state")
            };
            match btype {
                // Interface description block.
                1 => {
                    if body.len() < 8 {
                        return Err(invalid("interface description block too short".into()));
                    }
                    let linktype = u32::from(u16_at(&body, 0, big));
                    let (tick_num, tick_den) = tsresol(&body[8..], big);
                    interfaces.push(Interface {
                        linktype,
                        tick_num,
                        tick_den,
                    });
                    continue;
                }
                // Enhanced packet block / obsolete packet block.
                6 | 2 => {
                    if body.len() < 20 {
                        return Err(invalid("packet block too short".into()));
                    }
                    let iface = if btype == 6 {
                        u32_at(&body, 0, big)
                    } else {
                        u32::from(u16_at(&body, 0, big))
                    };
                    let ts =
                        (u64::from(u32_at(&body, 4, big)) << 32) | u64::from(u32_at(&body, 8, big));
                    let cap = u32_at(&body, 12, big) as usize;
                    let orig = u32_at(&body, 16, big);
                    if cap > body.len() - 20 {
                        return Err(invalid(format!(
                            "captured length {cap} is larger than its block ({} bytes of data)",
                            body.len() - 20
                        )));
                    }
                    let Some(ifc) = interfaces.get(iface as usize) else {
                        return Err(invalid(format!("packet on undeclared interface {iface}")));
                    };
                    pkt.data.clear();
                    pkt.data.extend_from_slice(&body[20..20 + cap]);
                    pkt.ts_ns = scale_ts(ts, ifc.tick_num, ifc.tick_den);
                    pkt.linktype = ifc.linktype;
                    pkt.orig_len = orig.max(cap as u32);
                }
                // Simple packet block: interface 0, no timestamp.
                3 => {
                    if body.len() < 4 {
                        return Err(invalid("simple packet block too short".into()));
                    }
                    let orig = u32_at(&body, 0, big);
                    let Some(ifc) = interfaces.first() else {
                        return Err(invalid("simple packet block before any interface".into()));
                    };
                    let cap = (orig as usize).min(body.len() - 4);
                    pkt.data.clear();
                    pkt.data.extend_from_slice(&body[4..4 + cap]);
                    pkt.ts_ns = 0;
                    pkt.linktype = ifc.linktype;
                    pkt.orig_len = orig;
                }
                // Name resolution, statistics, custom, journal, decryption secrets…: not packets.
                _ => continue,
            }
            self.count += 1;
            pkt.number = self.count;
            pkt.file_offset = at;
            return Ok(true);
        }
    }
}

/// The `if_tsresol` option (code 9) of an interface description block's options, as a ratio of
/// nanoseconds per unit. Default: microseconds.
fn tsresol(mut opts: &[u8], big: bool) -> (u64, u64) {
    while opts.len() >= 4 {
        let code = u16_at(opts, 0, big);
        let len = u16_at(opts, 2, big) as usize;
        let padded = (len + 3) & !3;
        if code == 0 || opts.len() < 4 + padded {
            break;
        }
        if code == 9 && len >= 1 {
            let v = opts[4];
            let exp = u32::from(v & 0x7f);
            return if v & 0x80 != 0 {
                // 2^-exp seconds per unit.
                if exp > 62 {
                    (1, 1)
                } else {
                    (1_000_000_000, 1u64 << exp)
                }
            } else if exp <= 9 {
                (10u64.pow(9 - exp), 1)
            } else if exp <= 18 {
                (1, 10u64.pow(exp - 9))
            } else {
                (1, 1)
            };
        }
        opts = &opts[4 + padded..];
    }
    (1000, 1)
}

fn scale_ts(ts: u64, num: u64, den: u64) -> u64 {
    let v = u128::from(ts) * u128::from(num) / u128::from(den.max(1));
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(big: bool, linktype: u32, pkts: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        w32(&mut v, 0xa1b2_c3d4);
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        for (i, p) in pkts.iter().enumerate() {
            w32(&mut v, 100 + i as u32);
            w32(&mut v, 5);
            w32(&mut v, p.len() as u32);
            w32(&mut v, p.len() as u32 + 10);
            v.extend_from_slice(p);
        }
        v
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Packet>, CaptureError> {
        let mut r = CaptureReader::new(bytes)?;
        let mut out = Vec::new();
        let mut p = Packet::default();
        while r.next_packet(&mut p)? {
            out.push(p.clone());
        }
        Ok(out)
    }

    #[test]
    fn pcap_both_byte_orders() {
        for big in [false, true] {
            let f = pcap_file(big, 1, &[b"abc", b"", b"defgh"]);
            let pk = read_all(&f).unwrap();
            assert_eq!(pk.len(), 3);
            assert_eq!(pk[0].data, b"abc");
            assert_eq!(pk[2].data, b"defgh");
            assert_eq!(pk[2].number, 3);
            assert_eq!(pk[2].orig_len, 15);
            assert_eq!(pk[0].linktype, 1);
            assert_eq!(pk[1].ts_ns, 101_000_005_000);
            assert_eq!(pk[0].file_offset, 24);
        }
    }

    #[test]
    fn pcap_truncated_record_names_offset() {
        let f = pcap_file(false, 1, &[b"abc", b"defgh"]);
        for cut in [f.len() - 1, f.len() - 5, 24 + 16 + 3 + 7] {
            let e = read_all(&f[..cut]).unwrap_err();
            assert!(matches!(e.kind, CaptureErrorKind::Truncated { .. }), "{e}");
            assert_eq!(e.offset, 24 + 16 + 3, "{e}");
        }
        let e = read_all(&f[..20]).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { .. }));
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn not_a_capture() {
        for bad in [&b""[..], b"ab", b"hello world", &[0u8; 64]] {
            let e = read_all(bad).unwrap_err();
            assert!(
                matches!(e.kind, CaptureErrorKind::NotACapture { .. }),
                "{e}"
            );
            assert!(e.to_string().starts_with("not a pcap"));
        }
    }

    #[test]
    fn huge_record_length_is_refused_without_allocating() {
        let mut f = pcap_file(false, 1, &[b"abc"]);
        f[24 + 8..24 + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let e = read_all(&f).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Invalid(_)), "{e}");
        // Within the bound but more than the file holds: truncated, not a huge allocation.
        f[24 + 8..24 + 12].copy_from_slice(&(100u32 << 20).to_le_bytes());
        let e = read_all(&f).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { .. }), "{e}");
    }

    pub(crate) fn pcapng_file(big: bool, blocks: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let mut v = Vec::new();
        for (t, body) in blocks {
            let mut b = body.clone();
            while b.len() % 4 != 0 {
                b.push(0);
            }
            let total = b.len() as u32 + 12;
            v.extend_from_slice(&w32(*t));
            v.extend_from_slice(&w32(total));
            v.extend_from_slice(&b);
            v.extend_from_slice(&w32(total));
        }
        v
    }

    fn shb(big: bool) -> (u32, Vec<u8>) {
        let mut b = Vec::new();
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let w16 = |x: u16| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        b.extend_from_slice(&w32(PCAPNG_BOM));
        b.extend_from_slice(&w16(1));
        b.extend_from_slice(&w16(0));
        b.extend_from_slice(&[0xff; 8]);
        (PCAPNG_SHB, b)
    }

    fn idb(big: bool, linktype: u16, tsresol: Option<u8>) -> (u32, Vec<u8>) {
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let w16 = |x: u16| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w16(linktype));
        b.extend_from_slice(&w16(0));
        b.extend_from_slice(&w32(262144));
        if let Some(r) = tsresol {
            b.extend_from_slice(&w16(9));
            b.extend_from_slice(&w16(1));
            b.extend_from_slice(&[r, 0, 0, 0]);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        (1, b)
    }

    fn epb(big: bool, iface: u32, ts: u64, data: &[u8]) -> (u32, Vec<u8>) {
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(iface));
        b.extend_from_slice(&w32((ts >> 32) as u32));
        b.extend_from_slice(&w32(ts as u32));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(data);
        (6, b)
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_sections() {
        for big in [false, true] {
            let mut f = pcapng_file(
                big,
                &[
                    shb(big),
                    idb(big, 1, None),
                    idb(big, 113, Some(9)),
                    epb(big, 0, 2_000_000, b"eth"),
                    (4, vec![0; 8]), // name resolution: skipped
                    epb(big, 1, 3_000_000_000, b"sll!x"),
                ],
            );
            // A second section in the other byte order with its own interfaces.
            f.extend(pcapng_file(
                !big,
                &[
                    shb(!big),
                    idb(!big, 276, Some(0x80 | 10)),
                    epb(!big, 0, 2048, b"s2"),
                ],
            ));
            let pk = read_all(&f).unwrap();
            assert_eq!(pk.len(), 3);
            assert_eq!((pk[0].linktype, &pk[0].data[..]), (1, &b"eth"[..]));
            assert_eq!(pk[0].ts_ns, 2_000_000_000);
            assert_eq!((pk[1].linktype, &pk[1].data[..]), (113, &b"sll!x"[..]));
            assert_eq!(pk[1].ts_ns, 3_000_000_000);
            assert_eq!(pk[2].linktype, 276);
            assert_eq!(pk[2].ts_ns, 2_000_000_000);
            assert_eq!(pk[2].number, 3);
        }
    }

    #[test]
    fn pcapng_errors() {
        let good = pcapng_file(
            false,
            &[shb(false), idb(false, 1, None), epb(false, 0, 1, b"abcd")],
        );
        // Packet on an interface that was never declared.
        let bad = pcapng_file(false, &[shb(false), epb(false, 0, 1, b"abcd")]);
        let e = read_all(&bad).unwrap_err();
        assert!(e.to_string().contains("undeclared interface"), "{e}");
        // Every truncation of a good file is an error, never a panic, except at block boundaries.
        for cut in 0..good.len() {
            let r = read_all(&good[..cut]);
            if cut == 28 || cut == 48 {
                assert_eq!(r.unwrap().len(), 0, "cut at {cut}");
            } else {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
        // Trailing length mismatch.
        let mut m = good.clone();
        let n = m.len();
        m[n - 4] ^= 1;
        assert!(
            read_all(&m)
                .unwrap_err()
                .to_string()
                .contains("trailing length")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Arbitrary corruption of a valid file gives packets or an error, never a panic.
        #[test]
        fn corrupted_files_never_panic(
            flips in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..400,
            ng in proptest::prelude::any::<bool>(),
        ) {
            let mut f = if ng {
                pcapng_file(false, &[shb(false), idb(false, 1, Some(9)), epb(false, 0, 7, b"0123456789"),
                    epb(false, 0, 9, &[7; 40])])
            } else {
                pcap_file(true, 101, &[b"0123456789", &[7; 40]])
            };
            for (at, b) in flips {
                if at < f.len() { f[at] = b; }
            }
            f.truncate(cut.max(4));
            let _ = read_all(&f);
        }
    }
}
