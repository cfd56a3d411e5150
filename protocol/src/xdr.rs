//! XDR (RFC 4506) reader and writer, with libvirt's rpcgen extensions.
//!
//! The [`Reader`] is a copyable cursor over a borrowed buffer. Every read checks the bytes present
//! *before* slicing; every count is checked against its bound and against the bytes left *before* a
//! caller could size anything from it. Data is handed out as borrowed slices: nothing is copied.
//!
//! Two modes ([`Compat`]):
//! - [`Compat::Strict`]: RFC 4506 as written — padding must be zero, a bool must be 0 or 1, enums must
//!   be members, 4-byte `char`/`short` must fit their C type, and (at the message level) no bytes may
//!   trail the body.
//! - [`Compat::Libvirt`]: what libvirt 9.0 (glibc/libtirpc XDR + rpcgen) accepts — padding is skipped
//!   unread, any non-zero bool is true, enums and chars are not range-checked, trailing bytes are
//!   ignored. Bounds (`<N>`) and union discriminants are enforced in both modes, as rpcgen does.

use crate::error::{Error, ErrorKind, LimitKind, Result};

/// How strictly to decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compat {
    /// RFC 4506 exactly; what round-trips byte for byte.
    #[default]
    Strict,
    /// Accept what libvirt 9.0 accepts (docs/protocol.md §7).
    Libvirt,
}

impl Compat {
    /// `strict` or `libvirt`.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Strict => "strict",
            Compat::Libvirt => "libvirt",
        }
    }
}

/// Padding needed after `len` bytes of opaque data to reach a multiple of 4.
#[inline]
pub const fn pad_len(len: usize) -> usize {
    (4 - (len & 3)) & 3
}

/// `len` rounded up to a multiple of 4, or `None` on overflow.
#[inline]
pub const fn padded(len: u64) -> Option<u64> {
    match len.checked_add(3) {
        Some(v) => Some(v & !3),
        None => None,
    }
}

/// A cursor over XDR bytes.
///
/// `position()` is absolute: the offset of the cursor in the buffer plus the `base` it was created
/// with, so errors from a payload reader point into the whole frame.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    compat: Compat,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` whose offsets start at 0.
    pub fn new(buf: &'a [u8], compat: Compat) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
            compat,
        }
    }

    /// A reader over `buf` whose offsets start at `base` (the position of `buf` in a larger whole).
    pub fn with_base(buf: &'a [u8], base: u64, compat: Compat) -> Self {
        Reader {
            buf,
            pos: 0,
            base,
            compat,
        }
    }

    /// The mode.
    #[inline]
    pub fn compat(&self) -> Compat {
        self.compat
    }
    /// Absolute offset of the next byte.
    #[inline]
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }
    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// The unread bytes.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    /// True when everything was read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// An error of `kind` at the current position.
    #[inline]
    pub fn error(&self, kind: ErrorKind) -> Error {
        Error::decode(kind, self.position())
    }

    #[inline]
    fn truncated(&self, needed: u64) -> Error {
        self.error(ErrorKind::Truncated {
            needed,
            available: self.remaining() as u64,
        })
    }

    /// Take `n` raw bytes (no padding).
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(n as u64));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn word(&mut self) -> Result<[u8; 4]> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// `unsigned int`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        self.word().map(u32::from_be_bytes)
    }
    /// `int`.
    #[inline]
    pub fn i32(&mut self) -> Result<i32> {
        self.word().map(i32::from_be_bytes)
    }
    /// `unsigned hyper`.
    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    /// `hyper`.
    #[inline]
    pub fn i64(&mut self) -> Result<i64> {
        self.u64().map(|v| v as i64)
    }
    /// `float` (IEEE single, big-endian).
    #[inline]
    pub fn f32(&mut self) -> Result<f32> {
        self.u32().map(f32::from_bits)
    }
    /// `double` (IEEE double, big-endian).
    #[inline]
    pub fn f64(&mut self) -> Result<f64> {
        self.u64().map(f64::from_bits)
    }

    /// `bool`: strict accepts 0 and 1 only; libvirt mode treats any non-zero as true (libtirpc `xdr_bool`).
    #[inline]
    pub fn bool(&mut self) -> Result<bool> {
        let at = *self;
        let v = self.u32()?;
        match (v, self.compat) {
            (0, _) => Ok(false),
            (1, _) => Ok(true),
            (_, Compat::Libvirt) => Ok(true),
            (_, Compat::Strict) => Err(at.error(ErrorKind::InvalidBool(v))),
        }
    }

    /// The presence flag of an optional `T *x` (a bool).
    #[inline]
    pub fn optional(&mut self) -> Result<bool> {
        self.bool()
    }

    /// An `enum` value checked by `is_member`: strict rejects non-members; libvirt mode accepts any i32.
    pub fn enum_i32(
        &mut self,
        enum_name: &'static str,
        is_member: impl FnOnce(i32) -> bool,
    ) -> Result<i32> {
        let at = *self;
        let v = self.i32()?;
        if self.compat == Compat::Strict && !is_member(v) {
            return Err(at.error(ErrorKind::InvalidEnum {
                value: v,
                enum_name: enum_name.into(),
            }));
        }
        Ok(v)
    }

    /// An rpcgen 4-byte `char` / `short` / `unsigned char` / `unsigned short`, returned as its i32 word.
    /// Strict mode checks the value fits `[min, max]` (libvirt truncates silently).
    pub fn small_int(&mut self, type_name: &'static str, min: i64, max: i64) -> Result<i32> {
        let at = *self;
        let v = self.i32()?;
        // Unsigned C types are decoded by libtirpc from an unsigned word: compare as such.
        let value = if min >= 0 { v as u32 as i64 } else { v as i64 };
        if self.compat == Compat::Strict && !(min..=max).contains(&value) {
            return Err(at.error(ErrorKind::ValueOutOfRange { value, type_name }));
        }
        Ok(v)
    }

    /// Skip `n` padding bytes: strict requires zeros; libvirt mode does not look at them.
    #[inline]
    pub fn padding(&mut self, n: usize) -> Result<()> {
        let at = *self;
        let p = self.bytes(n)?;
        if self.compat == Compat::Strict
            && let Some(&byte) = p.iter().find(|&&b| b != 0)
        {
            return Err(at.error(ErrorKind::NonZeroPadding { byte }));
        }
        Ok(())
    }

    /// Fixed-length `opaque x[n]` with its padding.
    #[inline]
    pub fn opaque_fixed(&mut self, n: usize) -> Result<&'a [u8]> {
        let need = padded(n as u64).unwrap_or(u64::MAX);
        if need > self.remaining() as u64 {
            return Err(self.truncated(need));
        }
        let data = self.bytes(n)?;
        self.padding(pad_len(n))?;
        Ok(data)
    }

    /// A count word checked against `max` (reported as `limit`) and against the bytes left, given
    /// that each counted item takes at least `min_item` bytes. Returns the count; a caller may size
    /// a buffer from it, since it is bounded by the input.
    #[inline]
    pub fn count(&mut self, max: u32, limit: LimitKind, min_item: usize) -> Result<u32> {
        let at = *self;
        let n = self.u32()?;
        if n > max {
            return Err(at.error(ErrorKind::OverLimit {
                limit,
                max: max as u64,
                actual: n as u64,
            }));
        }
        let need = (n as u64).saturating_mul(min_item as u64);
        if need > self.remaining() as u64 {
            return Err(self.truncated(need));
        }
        Ok(n)
    }

    /// Variable-length `opaque x<max>`: count, data, padding.
    #[inline]
    pub fn opaque_var(&mut self, max: u32) -> Result<&'a [u8]> {
        self.counted_bytes(max, LimitKind::Opaque)
    }

    /// `string x<max>`: like opaque; the bytes are returned unchecked (libvirt does not check UTF-8 or
    /// NUL bytes either).
    #[inline]
    pub fn string(&mut self, max: u32) -> Result<&'a [u8]> {
        self.counted_bytes(max, LimitKind::String)
    }

    #[inline]
    fn counted_bytes(&mut self, max: u32, limit: LimitKind) -> Result<&'a [u8]> {
        let n = self.count(max, limit, 1)? as usize;
        let need = padded(n as u64).unwrap_or(u64::MAX);
        if need > self.remaining() as u64 {
            return Err(self.truncated(need));
        }
        let data = self.bytes(n)?;
        self.padding(pad_len(n))?;
        Ok(data)
    }

    /// Strict mode: fail if bytes are left. Libvirt mode: always Ok (libvirt ignores trailing bytes).
    pub fn finish(&self) -> Result<()> {
        if self.compat == Compat::Strict && !self.is_empty() {
            return Err(self.error(ErrorKind::TrailingBytes {
                count: self.remaining() as u64,
            }));
        }
        Ok(())
    }
}

/// An XDR writer appending to a `Vec<u8>`.
///
/// Bounded writers (`opaque_var`, `string`, `count`) check the bound and fail with an encode error;
/// the `*_unchecked` forms and [`Writer::raw`] write anything, for building deliberately malformed
/// messages.
#[derive(Debug)]
pub struct Writer<'w> {
    out: &'w mut Vec<u8>,
    start: usize,
}

impl<'w> Writer<'w> {
    /// A writer appending to `out`; positions count from `out`'s current end.
    pub fn new(out: &'w mut Vec<u8>) -> Self {
        let start = out.len();
        Writer { out, start }
    }

    /// Bytes written by this writer so far.
    #[inline]
    pub fn position(&self) -> u64 {
        (self.out.len() - self.start) as u64
    }

    /// The underlying buffer (everything, including what was there before this writer).
    pub fn buffer(&self) -> &[u8] {
        self.out
    }

    /// An encode error at the current position.
    pub fn error(&self, kind: ErrorKind) -> Error {
        Error::encode(kind, self.position())
    }

    /// Raw bytes, no count, no padding.
    #[inline]
    pub fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    /// `unsigned int`.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }
    /// `int`.
    #[inline]
    pub fn i32(&mut self, v: i32) {
        self.raw(&v.to_be_bytes());
    }
    /// `unsigned hyper`.
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }
    /// `hyper`.
    #[inline]
    pub fn i64(&mut self, v: i64) {
        self.raw(&v.to_be_bytes());
    }
    /// `float`.
    #[inline]
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }
    /// `double`.
    #[inline]
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// `bool` as 0 or 1.
    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.u32(v as u32);
    }
    /// Presence flag of an optional.
    #[inline]
    pub fn optional(&mut self, present: bool) {
        self.bool(present);
    }
    /// `n` padding bytes of value `byte` (0 for a valid encoding).
    #[inline]
    pub fn pad_with(&mut self, n: usize, byte: u8) {
        self.out.resize(self.out.len() + n, byte);
    }
    /// Fixed-length opaque with zero padding (no count).
    #[inline]
    pub fn opaque_fixed(&mut self, data: &[u8]) {
        self.raw(data);
        self.pad_with(pad_len(data.len()), 0);
    }

    /// A count word, checked against `max`.
    pub fn count(&mut self, n: usize, max: u32, limit: LimitKind) -> Result<()> {
        if n > max as usize {
            return Err(self.error(ErrorKind::OverLimit {
                limit,
                max: max as u64,
                actual: n as u64,
            }));
        }
        self.u32(n as u32);
        Ok(())
    }

    /// `opaque x<max>`: count, data, zero padding.
    pub fn opaque_var(&mut self, data: &[u8], max: u32) -> Result<()> {
        self.count(data.len(), max, LimitKind::Opaque)?;
        self.opaque_fixed(data);
        Ok(())
    }

    /// `string x<max>`.
    pub fn string(&mut self, data: &[u8], max: u32) -> Result<()> {
        self.count(data.len(), max, LimitKind::String)?;
        self.opaque_fixed(data);
        Ok(())
    }

    /// Count, data and padding with no bound check; `pad_byte` lets tests write bad padding.
    pub fn opaque_var_unchecked(&mut self, data: &[u8], pad_byte: u8) {
        self.u32(data.len() as u32);
        self.raw(data);
        self.pad_with(pad_len(data.len()), pad_byte);
    }
}

/// A failed [`Scan`] read; the caller falls back to [`Reader`], which names the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bail;

type Fast<T> = std::result::Result<T, Bail>;

/// The XDR reader's fast form, for the schema codec's fast path (schema/program.rs): the same
/// reads and checks as [`Reader`] in the same mode, but every failure is one zero-sized [`Bail`]
/// with no offset, kind or path; the caller reruns [`Reader`] for those.
pub(crate) struct Scan<'a> {
    /// The bytes not yet read.
    rest: &'a [u8],
    strict: bool,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(buf: &'a [u8], compat: Compat) -> Self {
        Scan {
            rest: buf,
            strict: compat == Compat::Strict,
        }
    }

    /// True when every byte was read (strict mode refuses trailing bytes).
    pub(crate) fn is_done(&self, compat: Compat) -> bool {
        compat == Compat::Libvirt || self.rest.is_empty()
    }

    /// Strict mode (zero padding, bool 0 or 1, enum members, `char`/`short` ranges).
    #[inline]
    pub(crate) fn strict(&self) -> bool {
        self.strict
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Fast<[u8; N]> {
        let (b, rest) = self.rest.split_first_chunk::<N>().ok_or(Bail)?;
        self.rest = rest;
        Ok(*b)
    }

    #[inline]
    pub(crate) fn word(&mut self) -> Fast<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }

    #[inline]
    pub(crate) fn dword(&mut self) -> Fast<u64> {
        self.take::<8>().map(u64::from_be_bytes)
    }

    /// A bool or an optional's presence flag: strict 0 or 1, libvirt mode any non-zero is true.
    #[inline]
    pub(crate) fn flag(&mut self) -> Fast<bool> {
        match self.word()? {
            0 => Ok(false),
            1 => Ok(true),
            _ if !self.strict => Ok(true),
            _ => Err(Bail),
        }
    }

    /// `n` bytes and their padding (zero in strict mode).
    #[inline]
    pub(crate) fn fixed(&mut self, n: usize) -> Fast<&'a [u8]> {
        let padded = n.checked_add(3).ok_or(Bail)? & !3;
        let (chunk, rest) = self.rest.split_at_checked(padded).ok_or(Bail)?;
        let (data, pad) = chunk.split_at(n);
        if self.strict && pad.iter().any(|&b| b != 0) {
            return Err(Bail);
        }
        self.rest = rest;
        Ok(data)
    }

    /// A counted `string<max>` / `opaque<max>`.
    #[inline]
    pub(crate) fn counted(&mut self, max: u32) -> Fast<&'a [u8]> {
        let n = self.word()?;
        if n > max {
            return Err(Bail);
        }
        self.fixed(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Category;

    #[test]
    fn primitives_round_trip() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.u32(0xdead_beef);
        w.i32(-2);
        w.u64(u64::MAX - 1);
        w.i64(i64::MIN);
        w.f64(-1.5);
        w.bool(true);
        w.string(b"abcde", 8).unwrap();
        w.opaque_fixed(&[1, 2, 3]);
        assert_eq!(out.len(), 4 + 4 + 8 + 8 + 8 + 4 + 12 + 4);
        let mut r = Reader::new(&out, Compat::Strict);
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.i32().unwrap(), -2);
        assert_eq!(r.u64().unwrap(), u64::MAX - 1);
        assert_eq!(r.i64().unwrap(), i64::MIN);
        assert_eq!(r.f64().unwrap(), -1.5);
        assert!(r.bool().unwrap());
        assert_eq!(r.string(8).unwrap(), b"abcde");
        assert_eq!(r.opaque_fixed(3).unwrap(), &[1, 2, 3]);
        r.finish().unwrap();
    }

    #[test]
    fn bounds_checked_before_data() {
        // count 5 with max 4: over limit, even though the data is truncated.
        let buf = [0, 0, 0, 5, b'a'];
        let e = Reader::new(&buf, Compat::Libvirt).string(4).unwrap_err();
        assert_eq!(e.category(), Category::OverLimit);
        assert_eq!(e.offset(), 0);
        // huge count within max but beyond the input: truncated, nothing sized from it.
        let buf = [0xff, 0xff, 0xff, 0xf0];
        let e = Reader::new(&buf, Compat::Libvirt)
            .string(u32::MAX)
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
        assert_eq!(e.offset(), 4);
        let e = Reader::new(&buf, Compat::Libvirt)
            .count(u32::MAX, LimitKind::Array, 4)
            .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Truncated { needed, .. } if *needed == 0xffff_fff0u64 * 4)
        );
    }

    #[test]
    fn strict_and_libvirt_differ_where_libvirt_is_lenient() {
        let bad_pad = [0, 0, 0, 1, b'x', 0, 9, 0];
        assert!(matches!(
            Reader::new(&bad_pad, Compat::Strict)
                .string(10)
                .unwrap_err()
                .kind(),
            ErrorKind::NonZeroPadding { byte: 9 }
        ));
        assert_eq!(
            Reader::new(&bad_pad, Compat::Libvirt).string(10).unwrap(),
            b"x"
        );
        let two = 2u32.to_be_bytes();
        assert!(Reader::new(&two, Compat::Strict).bool().is_err());
        assert!(Reader::new(&two, Compat::Libvirt).bool().unwrap());
        let e = 7i32.to_be_bytes();
        assert!(
            Reader::new(&e, Compat::Strict)
                .enum_i32("t", |v| v < 3)
                .is_err()
        );
        assert_eq!(
            Reader::new(&e, Compat::Libvirt)
                .enum_i32("t", |v| v < 3)
                .unwrap(),
            7
        );
        let c = 300i32.to_be_bytes();
        assert!(
            Reader::new(&c, Compat::Strict)
                .small_int("unsigned char", 0, 255)
                .is_err()
        );
        assert!(
            Reader::new(&c, Compat::Libvirt)
                .small_int("unsigned char", 0, 255)
                .is_ok()
        );
        let mut r = Reader::new(&[0, 0, 0, 0, 1], Compat::Strict);
        r.u32().unwrap();
        assert!(r.finish().is_err());
        let mut r = Reader::new(&[0, 0, 0, 0, 1], Compat::Libvirt);
        r.u32().unwrap();
        assert!(r.finish().is_ok());
    }

    #[test]
    fn writer_enforces_bounds() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        let e = w.opaque_var(&[0; 5], 4).unwrap_err();
        assert_eq!(e.category(), Category::OverLimit);
        assert!(out.is_empty());
    }
}
