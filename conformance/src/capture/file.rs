//! Capture files: classic pcap (µs and ns, both byte orders, and the little-endian "modified" format)
//! and pcapng (any number of sections and interfaces, enhanced / simple / obsolete packet blocks),
//! detected by their magic number.
//!
//! Records and blocks are parsed by `pcap-parser`, zero-copy, from a buffer of ours; the framing around
//! them (length words bounded by [`MAX_RECORD`], the trailing length, byte offsets in errors) and the
//! buffer are ours. The buffer grows only when it is full of bytes that actually arrived (never from a
//! length field alone); a record's original length may exceed the snap length (a truncated capture is
//! a gap, which the reassembler reports); every malformed or truncated record is an error naming its
//! byte offset, after the packets before it.
//!
//! Not taken from pcap-parser 0.17, with the case that fails:
//! - its streaming readers (`LegacyPcapReader`, `PcapNGReader`): a record claiming 0xFFFFFFF0 bytes, and
//!   an enhanced packet block whose captured length (100) exceeds its 4 data bytes, both give
//!   `BufferTooSmall` with no length, so neither a bound nor a clear error is possible without reading
//!   on; their constructors make one `read()`, so a pipe that hands over 3 bytes at a time fails with
//!   `Incomplete(9)`; an IO error becomes `ReadError` and the `io::Error` is lost.
//! - obsolete packet blocks (type 2): pcap-parser returns them as `Block::Unknown`, so they are read here.
//!
//! (pcap-file 2.0 was rejected earlier: it refuses `orig_len > snaplen` records, which every
//! `-s`-limited capture has, and allocates an 8 MB buffer per reader.)

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use pcap_parser::nom::Offset;
use pcap_parser::{
    BOM_MAGIC, EPB_MAGIC, IDB_MAGIC, PcapError, SHB_MAGIC, SPB_MAGIC, parse_enhancedpacketblock_be,
    parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_frame_modified, parse_pcap_header, parse_sectionheaderblock,
    parse_simplepacketblock_be, parse_simplepacketblock_le,
};

/// Largest record (pcap packet or pcapng block) accepted: 256 MiB. Nothing real comes near it; it stops
/// a corrupt length from being followed for gigabytes.
pub const MAX_RECORD: u32 = 256 << 20;

/// First size of a reader's buffer (64 KiB, one loopback packet); it doubles, as bytes arrive, only
/// for a record that does not fit.
const INITIAL_BUFFER: usize = 64 << 10;

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

fn invalid(offset: u64, s: String) -> CaptureError {
    CaptureError {
        offset,
        kind: CaptureErrorKind::Invalid(s),
    }
}

fn truncated(offset: u64, what: &'static str, needed: usize, available: usize) -> CaptureError {
    CaptureError {
        offset,
        kind: CaptureErrorKind::Truncated {
            what,
            needed: needed as u64,
            available: available as u64,
        },
    }
}

/// One captured packet, owning its bytes.
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

/// One captured packet, borrowing its bytes from the reader's buffer (valid until the next read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRef<'a> {
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
    pub data: &'a [u8],
}

/// A packet's description, with where its bytes are in the buffer.
struct Found {
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
    at: u64,
    data: Range<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    /// Nanoseconds per timestamp unit as a ratio (numerator, denominator).
    tick_num: u64,
    tick_den: u64,
}

type PcapFrameParser = for<'a> fn(
    &'a [u8],
) -> pcap_parser::nom::IResult<
    &'a [u8],
    pcap_parser::LegacyPcapBlock<'a>,
    PcapError<&'a [u8]>,
>;

#[derive(Debug)]
enum State {
    Pcap {
        /// 16, or 24 in the modified format.
        record_header: usize,
        big: bool,
        nanos: bool,
        linktype: u32,
        parse: PcapFrameParser,
    },
    PcapNg {
        big: bool,
        interfaces: Vec<Interface>,
    },
}

/// Bytes read and not consumed yet: `mem[start..end]`. It grows only when it is full of bytes that
/// arrived, at most doubling, so its size is at most twice the largest record actually read.
#[derive(Default)]
struct Buffer {
    mem: Vec<u8>,
    start: usize,
    end: usize,
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("size", &self.mem.len())
            .field("start", &self.start)
            .field("end", &self.end)
            .finish()
    }
}

impl Buffer {
    fn data(&self) -> &[u8] {
        self.mem.get(self.start..self.end).unwrap_or_default()
    }

    /// Read until `n` bytes are buffered or the input ends; returns how many are buffered.
    fn fill(&mut self, r: &mut impl Read, n: usize) -> io::Result<usize> {
        while self.end - self.start < n {
            if self.end == self.mem.len() {
                if self.start > 0 {
                    self.mem.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    let size = self
                        .mem
                        .len()
                        .saturating_mul(2)
                        .clamp(INITIAL_BUFFER, n.max(INITIAL_BUFFER));
                    self.mem.resize(size, 0);
                }
            }
            let Some(space) = self.mem.get_mut(self.end..) else {
                break;
            };
            match r.read(space) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }
}

/// Streaming reader of pcap and pcapng files.
#[derive(Debug)]
pub struct CaptureReader<R> {
    inner: R,
    buf: Buffer,
    /// File offset of `buf.start`.
    offset: u64,
    count: u64,
    state: State,
}

/// A 32-bit word in the file's byte order.
fn word(b: [u8; 4], big: bool) -> u32 {
    if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// The word at `at` of `b`, if `b` has it.
fn word_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    Some(word(*b.get(at..)?.first_chunk::<4>()?, big))
}

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;
const PCAP_MODIFIED: u32 = 0xa1b2_cd34;
/// Obsolete packet block: an enhanced packet block with a 16-bit interface and a drop count.
const OPB_MAGIC: u32 = 2;

impl<R: Read> CaptureReader<R> {
    /// Read the file header and detect the format.
    pub fn new(inner: R) -> Result<Self, CaptureError> {
        let mut me = CaptureReader {
            inner,
            buf: Buffer::default(),
            offset: 0,
            count: 0,
            state: State::PcapNg {
                big: false,
                interfaces: Vec::new(),
            },
        };
        me.fill(4)?;
        let not_a_capture = |magic: &[u8]| CaptureError {
            offset: 0,
            kind: CaptureErrorKind::NotACapture {
                magic: magic.to_vec(),
            },
        };
        let Some(&magic) = me.buf.data().first_chunk::<4>() else {
            return Err(not_a_capture(me.buf.data()));
        };
        match u32::from_le_bytes(magic) {
            PCAP_US | PCAP_NS | PCAP_MODIFIED => me.read_pcap_header()?,
            m if m.swap_bytes() == PCAP_US || m.swap_bytes() == PCAP_NS => me.read_pcap_header()?,
            SHB_MAGIC => match me.frame_block(false)? {
                Some((SHB_MAGIC, total, big)) => me.section_header(total, big)?,
                // frame_block reads a block starting with this magic as a section header.
                _ => return Err(not_a_capture(&magic)),
            },
            _ => return Err(not_a_capture(&magic)),
        }
        Ok(me)
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

    /// Read the next packet into `pkt` (its buffer is reused). `Ok(false)` at a clean end of file.
    pub fn next_packet(&mut self, pkt: &mut Packet) -> Result<bool, CaptureError> {
        let Some(p) = self.read_packet()? else {
            return Ok(false);
        };
        let (number, file_offset, ts_ns, linktype, orig_len) =
            (p.number, p.file_offset, p.ts_ns, p.linktype, p.orig_len);
        pkt.data.clear();
        pkt.data.extend_from_slice(p.data);
        pkt.number = number;
        pkt.file_offset = file_offset;
        pkt.ts_ns = ts_ns;
        pkt.linktype = linktype;
        pkt.orig_len = orig_len;
        Ok(true)
    }

    /// Read the next packet without copying it. `Ok(None)` at a clean end of file.
    pub fn read_packet(&mut self) -> Result<Option<PacketRef<'_>>, CaptureError> {
        let found = match self.state {
            State::Pcap {
                record_header,
                big,
                nanos,
                linktype,
                parse,
            } => self.advance_pcap(record_header, big, nanos, linktype, parse)?,
            State::PcapNg { .. } => self.advance_pcapng()?,
        };
        let Some(f) = found else {
            return Ok(None);
        };
        self.count += 1;
        Ok(Some(PacketRef {
            number: self.count,
            file_offset: f.at,
            ts_ns: f.ts_ns,
            linktype: f.linktype,
            orig_len: f.orig_len,
            data: self.buf.mem.get(f.data).unwrap_or_default(),
        }))
    }

    /// Buffer `n` bytes (fewer at end of file); returns how many are buffered.
    fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        self.buf.fill(&mut self.inner, n).map_err(|e| CaptureError {
            offset: self.offset + (self.buf.end - self.buf.start) as u64,
            kind: CaptureErrorKind::Io(e),
        })
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.end - self.buf.start);
        self.buf.start += n;
        self.offset += n as u64;
    }

    /// The 24-byte file header of classic pcap.
    fn read_pcap_header(&mut self) -> Result<(), CaptureError> {
        let have = self.fill(24)?;
        let head = self.buf.data();
        let h = match parse_pcap_header(head) {
            Ok((_, h)) if have >= 24 => h,
            _ => return Err(truncated(0, "pcap file header", 24, have)),
        };
        if h.version_major != 2 {
            return Err(invalid(
                0,
                format!("pcap version {} (only 2.x exists)", h.version_major),
            ));
        }
        let modified = h.is_modified_format();
        self.state = State::Pcap {
            record_header: if modified { 24 } else { 16 },
            big: h.is_bigendian(),
            nanos: h.is_nanosecond_precision(),
            // The upper bits of the link type field carry FCS information (pcap spec §4).
            linktype: (h.network.0 as u32) & 0x03FF_FFFF,
            parse: if modified {
                parse_pcap_frame_modified
            } else if h.is_bigendian() {
                parse_pcap_frame_be
            } else {
                parse_pcap_frame
            },
        };
        self.consume(24);
        Ok(())
    }

    fn advance_pcap(
        &mut self,
        record_header: usize,
        big: bool,
        nanos: bool,
        linktype: u32,
        parse: PcapFrameParser,
    ) -> Result<Option<Found>, CaptureError> {
        let at = self.offset;
        let have = self.fill(record_header)?;
        if have == 0 {
            return Ok(None);
        }
        let incl = match word_at(self.buf.data(), 8, big) {
            Some(incl) if have >= record_header => incl,
            _ => return Err(truncated(at, "pcap record header", record_header, have)),
        };
        if incl > MAX_RECORD {
            return Err(invalid(
                at,
                format!("record length {incl} is over the {MAX_RECORD}-byte bound"),
            ));
        }
        let total = record_header + incl as usize;
        let have = self.fill(total)?;
        let Some(rec) = self.buf.data().get(..total) else {
            return Err(truncated(at, "pcap packet", total, have));
        };
        let Ok((_, b)) = parse(rec) else {
            return Err(invalid(at, "pcap record does not parse".into()));
        };
        let frac = u64::from(b.ts_usec);
        let found = Found {
            ts_ns: u64::from(b.ts_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(if nanos {
                    frac
                } else {
                    frac.saturating_mul(1000)
                }),
            linktype,
            orig_len: b.origlen.max(b.caplen),
            at,
            data: self.data_range(rec, b.data),
        };
        self.consume(total);
        Ok(Some(found))
    }

    /// Where `data` (a slice of `block`, itself at the start of the buffer's data) is in the buffer.
    fn data_range(&self, block: &[u8], data: &[u8]) -> Range<usize> {
        let from = self.buf.start + block.offset(data);
        from..from + data.len()
    }

    /// Frame the next pcapng block: `Ok(None)` at a clean end of file, else its type, total length and
    /// byte order, with the whole block buffered and its two length fields checked.
    fn frame_block(&mut self, big: bool) -> Result<Option<(u32, usize, bool)>, CaptureError> {
        let at = self.offset;
        let have = self.fill(8)?;
        if have == 0 {
            return Ok(None);
        }
        let Some(&[t0, t1, t2, t3, l0, l1, l2, l3]) = self.buf.data().first_chunk::<8>() else {
            return Err(truncated(at, "pcapng block header", 8, have));
        };
        let (btype, big, what) = if u32::from_le_bytes([t0, t1, t2, t3]) == SHB_MAGIC {
            // A section's byte order is its own: the byte-order magic after the length says which.
            let have = self.fill(12)?;
            let big = match word_at(self.buf.data(), 8, false) {
                None => return Err(truncated(at, "pcapng section header", 12, have)),
                Some(BOM_MAGIC) => false,
                Some(m) if m.swap_bytes() == BOM_MAGIC => true,
                Some(other) => {
                    return Err(invalid(
                        at,
                        format!("pcapng byte-order magic {other:#010x}"),
                    ));
                }
            };
            (SHB_MAGIC, big, "pcapng section header")
        } else {
            (word([t0, t1, t2, t3], big), big, "pcapng block")
        };
        let total = word([l0, l1, l2, l3], big);
        let min = if btype == SHB_MAGIC { 28 } else { 12 };
        if total < min || !total.is_multiple_of(4) || total > MAX_RECORD {
            return Err(invalid(
                at,
                if btype == SHB_MAGIC {
                    format!("section header length {total}")
                } else {
                    format!("block type {btype:#x} has length {total}")
                },
            ));
        }
        let total = total as usize;
        let have = self.fill(total)?;
        let Some(block) = self.buf.data().get(..total) else {
            return Err(truncated(at, what, total, have));
        };
        let trailer = word_at(block, total - 4, big).unwrap_or_default();
        if trailer as usize != total {
            return Err(invalid(
                at,
                format!("block length {total} and trailing length {trailer} differ"),
            ));
        }
        Ok(Some((btype, total, big)))
    }

    /// A framed section header block: a new section, with its byte order and no interfaces yet.
    fn section_header(&mut self, total: usize, big: bool) -> Result<(), CaptureError> {
        let block = self.buf.data().get(..total).unwrap_or_default();
        let shb = match parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            Err(_) => return Err(invalid(self.offset, "section header does not parse".into())),
        };
        if shb.major_version != 1 {
            return Err(invalid(
                self.offset,
                format!("pcapng major version {}", shb.major_version),
            ));
        }
        self.state = State::PcapNg {
            big,
            interfaces: Vec::new(),
        };
        self.consume(total);
        Ok(())
    }

    /// Read pcapng blocks up to the next packet.
    fn advance_pcapng(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            let at = self.offset;
            let State::PcapNg { big, .. } = self.state else {
                return Ok(None);
            };
            let Some((btype, total, big)) = self.frame_block(big)? else {
                return Ok(None);
            };
            let block = self.buf.data().get(..total).unwrap_or_default();
            let State::PcapNg { interfaces, .. } = &mut self.state else {
                return Ok(None);
            };
            let data_len = total.saturating_sub(32);
            let too_long = |cap: u32| {
                invalid(
                    at,
                    format!(
                        "captured length {cap} is larger than its block ({data_len} bytes of data)"
                    ),
                )
            };
            let packet = |iface: u32, interfaces: &[Interface]| {
                interfaces
                    .get(iface as usize)
                    .copied()
                    .ok_or_else(|| invalid(at, format!("packet on undeclared interface {iface}")))
            };
            let (ts_ns, ifc, orig_len, data) = match btype {
                SHB_MAGIC => {
                    self.section_header(total, big)?;
                    continue;
                }
                IDB_MAGIC => {
                    let parsed = if big {
                        parse_interfacedescriptionblock_be(block)
                    } else {
                        parse_interfacedescriptionblock_le(block)
                    };
                    let Ok((_, idb)) = parsed else {
                        return Err(invalid(at, "interface description block too short".into()));
                    };
                    let (tick_num, tick_den) = tsresol(idb.if_tsresol);
                    interfaces.push(Interface {
                        linktype: idb.linktype.0 as u32,
                        tick_num,
                        tick_den,
                    });
                    self.consume(total);
                    continue;
                }
                EPB_MAGIC => {
                    let parsed = if big {
                        parse_enhancedpacketblock_be(block)
                    } else {
                        parse_enhancedpacketblock_le(block)
                    };
                    let epb = match parsed {
                        Ok((_, epb)) => epb,
                        Err(_) if total < 32 => {
                            return Err(invalid(at, "packet block too short".into()));
                        }
                        // The block is whole and its lengths agree: only the data can not fit.
                        Err(_) => {
                            return Err(too_long(word_at(block, 20, big).unwrap_or_default()));
                        }
                    };
                    let ifc = packet(epb.if_id, interfaces)?;
                    let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    // The data is padded to 32 bits; the captured length says how much is packet.
                    let data = epb.data.get(..epb.caplen as usize).unwrap_or(epb.data);
                    (ts, ifc, epb.origlen.max(epb.caplen), data)
                }
                // Obsolete packet block: pcap-parser does not know it (Block::Unknown).
                OPB_MAGIC => {
                    let fields = |at| word_at(block, at, big).unwrap_or_default();
                    if total < 32 {
                        return Err(invalid(at, "packet block too short".into()));
                    }
                    let iface = if big {
                        fields(8) >> 16
                    } else {
                        fields(8) & 0xffff
                    };
                    let (cap, orig) = (fields(20), fields(24));
                    if cap as usize > data_len {
                        return Err(too_long(cap));
                    }
                    let data = block.get(28..28 + cap as usize).unwrap_or_default();
                    let ifc = packet(iface, interfaces)?;
                    let ts = (u64::from(fields(12)) << 32) | u64::from(fields(16));
                    (ts, ifc, orig.max(cap), data)
                }
                // Simple packet block: interface 0, no timestamp.
                SPB_MAGIC => {
                    let parsed = if big {
                        parse_simplepacketblock_be(block)
                    } else {
                        parse_simplepacketblock_le(block)
                    };
                    let Ok((_, spb)) = parsed else {
                        return Err(invalid(at, "simple packet block too short".into()));
                    };
                    let Some(&ifc) = interfaces.first() else {
                        return Err(invalid(
                            at,
                            "simple packet block before any interface".into(),
                        ));
                    };
                    (
                        0,
                        ifc,
                        spb.origlen,
                        spb.data.get(..spb.origlen as usize).unwrap_or(spb.data),
                    )
                }
                // Name resolution, statistics, custom, journal, decryption secrets…: not packets.
                _ => {
                    self.consume(total);
                    continue;
                }
            };
            let found = Found {
                ts_ns: scale_ts(ts_ns, ifc.tick_num, ifc.tick_den),
                linktype: ifc.linktype,
                orig_len,
                at,
                data: self.data_range(block, data),
            };
            self.consume(total);
            return Ok(Some(found));
        }
    }
}

/// Nanoseconds per unit of an `if_tsresol` value (pcapng §4.2), as a ratio; pcap-parser gives 6
/// (microseconds) when the option is absent.
fn tsresol(v: u8) -> (u64, u64) {
    let exp = u32::from(v & 0x7f);
    if v & 0x80 != 0 {
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
    }
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
        b.extend_from_slice(&w32(BOM_MAGIC));
        b.extend_from_slice(&w16(1));
        b.extend_from_slice(&w16(0));
        b.extend_from_slice(&[0xff; 8]);
        (SHB_MAGIC, b)
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

    /// A reader that hands over at most 3 bytes a call, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = b.len().min(3).min(self.0.len());
            b[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_from(r: impl Read) -> Result<Vec<Packet>, CaptureError> {
        let mut r = CaptureReader::new(r)?;
        let mut out = Vec::new();
        let mut p = Packet::default();
        while r.next_packet(&mut p)? {
            out.push(p.clone());
        }
        Ok(out)
    }

    #[test]
    fn short_reads_are_waited_for() {
        let pcap = pcap_file(true, 1, &[b"abc", &[5; 70_000], b"z"]);
        let ng = pcapng_file(
            false,
            &[shb(false), idb(false, 1, None), epb(false, 0, 1, b"abcd")],
        );
        for f in [pcap, ng] {
            assert_eq!(read_from(Trickle(&f)).unwrap(), read_all(&f).unwrap());
        }
    }

    #[test]
    fn io_errors_keep_their_message() {
        let f = pcap_file(false, 1, &[b"abc"]);
        let failing = (&f[..30]).chain(Failing);
        let e = read_from(failing).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Io(_)), "{e}");
        assert_eq!(e.to_string(), "read error at byte 30: disk on fire");
    }

    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn buffer_grows_with_the_bytes_not_with_the_length_field() {
        // A 300 KiB packet is read whole.
        let big = vec![7u8; 300 << 10];
        let pk = read_all(&pcap_file(false, 1, &[&big])).unwrap();
        assert_eq!(pk[0].data, big);
        // A record claiming 200 MiB in a 100 KiB file: truncated, and the buffer stays near the file size.
        let mut f = pcap_file(false, 1, &[&[1; 100 << 10]]);
        f[24 + 8..24 + 12].copy_from_slice(&(200u32 << 20).to_le_bytes());
        let mut r = CaptureReader::new(&f[..]).unwrap();
        let e = r.next_packet(&mut Packet::default()).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { .. }), "{e}");
        assert!(r.buf.mem.len() <= 256 << 10, "{}", r.buf.mem.len());
    }

    #[test]
    fn packet_blocks_of_every_kind() {
        for big in [false, true] {
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
            // Obsolete packet block on interface 1: u16 interface, u16 drops, then as an EPB.
            let mut opb = Vec::new();
            opb.extend_from_slice(&w16(1));
            opb.extend_from_slice(&w16(0));
            opb.extend_from_slice(&w32(0));
            opb.extend_from_slice(&w32(3_000));
            opb.extend_from_slice(&w32(3));
            opb.extend_from_slice(&w32(9));
            opb.extend_from_slice(b"opb");
            // Simple packet block: original length, then the data (here cut at 5 of 8 bytes).
            let mut spb = Vec::new();
            spb.extend_from_slice(&w32(5));
            spb.extend_from_slice(b"simple!!");
            let f = pcapng_file(
                big,
                &[
                    shb(big),
                    idb(big, 101, None),
                    idb(big, 1, Some(3)),
                    (2, opb),
                    (3, spb),
                ],
            );
            let pk = read_all(&f).unwrap();
            assert_eq!(pk.len(), 2);
            assert_eq!((pk[0].linktype, &pk[0].data[..]), (1, &b"opb"[..]));
            assert_eq!((pk[0].ts_ns, pk[0].orig_len), (3_000_000_000, 9));
            assert_eq!((pk[1].linktype, &pk[1].data[..]), (101, &b"simpl"[..]));
            assert_eq!((pk[1].ts_ns, pk[1].orig_len), (0, 5));
        }
    }

    #[test]
    fn captured_length_larger_than_its_block() {
        let mut b = epb(false, 0, 1, b"abcd").1;
        b[12..16].copy_from_slice(&100u32.to_le_bytes());
        let f = pcapng_file(false, &[shb(false), idb(false, 1, None), (6, b)]);
        let e = read_all(&f).unwrap_err();
        assert_eq!(e.offset, 48);
        assert!(
            e.to_string()
                .contains("captured length 100 is larger than its block (4 bytes of data)"),
            "{e}"
        );
    }

    #[test]
    fn section_header_trailer_is_checked() {
        let mut f = pcapng_file(false, &[shb(false), idb(false, 1, None)]);
        f[24] ^= 1;
        let e = read_all(&f).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.to_string().contains("trailing length"), "{e}");
    }

    #[test]
    fn modified_pcap_records_have_24_byte_headers() {
        let mut f = pcap_file(false, 1, &[]);
        f[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for (i, p) in [&b"one"[..], b"two!"].iter().enumerate() {
            for w in [7 + i as u32, 0, p.len() as u32, p.len() as u32, 0, 0] {
                f.extend_from_slice(&w.to_le_bytes());
            }
            f.extend_from_slice(p);
        }
        let pk = read_all(&f).unwrap();
        assert_eq!(pk.len(), 2);
        assert_eq!(
            (&pk[1].data[..], pk[1].ts_ns),
            (&b"two!"[..], 8_000_000_000)
        );
    }

    #[test]
    fn borrowed_packets_are_the_owned_ones() {
        let f = pcap_file(false, 113, &[b"abc", b"", b"defgh"]);
        let mut r = CaptureReader::new(&f[..]).unwrap();
        let owned = read_all(&f).unwrap();
        for o in &owned {
            let p = r.read_packet().unwrap().unwrap();
            assert_eq!(
                (
                    p.number,
                    p.file_offset,
                    p.ts_ns,
                    p.linktype,
                    p.orig_len,
                    p.data
                ),
                (
                    o.number,
                    o.file_offset,
                    o.ts_ns,
                    o.linktype,
                    o.orig_len,
                    &o.data[..]
                )
            );
        }
        assert!(r.read_packet().unwrap().is_none());
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
