//! Frames: the length word, the header, the FD count and the payload; one-shot, partial and
//! incremental (sans-IO) decoding, and the encoder.
//!
//! A frame is `len:u32 | header (24) | [nfds:u32 for *_WITH_FDS] | payload`, where `len` counts the
//! whole frame including itself. The length word is checked against [`Limits`] the moment its four
//! bytes are known, and a peer's claimed length is never used as an allocation size.

use crate::error::{Error, ErrorKind, LimitKind, Result};
use crate::header::{Header, MessageStatus, MessageType};
use crate::limits::{FD_COUNT_LEN, HEADER_LEN, LEN_WORD, Limits, MIN_FRAME};
use crate::xdr::{Compat, Reader, Writer};

/// Check a length word the way `virNetMessageDecodeLength` does, plus the header rule:
/// below 4 → [`ErrorKind::LengthTooSmall`]; 4..=27 → [`ErrorKind::Truncated`] at `header` (no
/// header fits); above `message_max + 4` → [`ErrorKind::OverLimit`] ([`LimitKind::Message`]).
/// Returns the frame length as `usize`. Offsets are relative to the length word.
pub fn check_length(len: u32, limits: &Limits) -> Result<usize> {
    if (len as usize) < LEN_WORD {
        return Err(Error::decode(
            ErrorKind::LengthTooSmall {
                length: len,
                min: LEN_WORD as u32,
            },
            0,
        )
        .in_field("length"));
    }
    if len as u64 > limits.frame_max() {
        return Err(Error::decode(
            ErrorKind::OverLimit {
                limit: LimitKind::Message,
                max: limits.frame_max(),
                actual: len as u64,
            },
            0,
        )
        .in_field("length"));
    }
    if (len as usize) < MIN_FRAME {
        return Err(Error::decode(
            ErrorKind::Truncated {
                needed: HEADER_LEN as u64,
                available: len as u64 - LEN_WORD as u64,
            },
            LEN_WORD as u64,
        )
        .in_field("header"));
    }
    Ok(len as usize)
}

/// A decoded frame borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header.
    pub header: Header,
    /// The FD count of `*_WITH_FDS` frames, `None` for the others.
    pub nfds: Option<u32>,
    /// The payload (after the header and FD count).
    pub payload: &'a [u8],
    /// The whole frame, length word included.
    pub bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Offset of the payload in the frame (28, or 32 with an FD count).
    pub fn payload_offset(&self) -> usize {
        self.bytes.len() - self.payload.len()
    }

    /// The length word.
    pub fn len_word(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// A [`Reader`] over the payload whose offsets are frame offsets.
    pub fn payload_reader(&self, compat: Compat) -> Reader<'a> {
        Reader::with_base(self.payload, self.payload_offset() as u64, compat)
    }

    /// Decode exactly one frame from `buf`: the length word must equal `buf.len()`.
    #[inline]
    pub fn decode(buf: &'a [u8], limits: &Limits, compat: Compat) -> Result<Frame<'a>> {
        match Frame::decode_valid(buf, limits, compat) {
            Some(frame) => Ok(frame),
            None => Frame::decode_slow(buf, limits, compat),
        }
    }

    /// The fast path of [`Frame::decode`]: the frame when `buf` is exactly one frame that decodes,
    /// `None` otherwise (and [`Frame::decode_slow`] says why). It must take every frame that
    /// decodes: a unit test holds it to that.
    #[inline]
    fn decode_valid(buf: &'a [u8], limits: &Limits, compat: Compat) -> Option<Frame<'a>> {
        let len = Header::len_word(buf)?;
        if len as usize != buf.len()
            || buf.len() < MIN_FRAME
            || buf.len() as u64 > limits.frame_max()
        {
            return None;
        }
        let (header, nfds, payload_at) = decode_head_valid(buf, limits, compat)?;
        Some(Frame {
            header,
            nfds,
            payload: &buf[payload_at..],
            bytes: buf,
        })
    }

    /// [`Frame::decode`] for a frame the fast path did not accept: the errors. On its own it is a
    /// whole decoder (the fast path is only a shortcut to the same frames).
    #[cold]
    #[inline(never)]
    fn decode_slow(buf: &'a [u8], limits: &Limits, compat: Compat) -> Result<Frame<'a>> {
        match parse_frame(buf, limits, compat)? {
            Parsed::Complete { value, consumed } if consumed == buf.len() => Ok(value),
            Parsed::Complete { consumed, .. } => Err(Error::decode(
                ErrorKind::LengthMismatch {
                    length: consumed as u64,
                    actual: buf.len() as u64,
                },
                0,
            )
            .in_field("length")),
            Parsed::Incomplete { .. } => {
                let length = Header::peek(buf).len.map_or(LEN_WORD as u64, u64::from);
                Err(Error::decode(
                    ErrorKind::LengthMismatch {
                        length,
                        actual: buf.len() as u64,
                    },
                    0,
                )
                .in_field("length"))
            }
        }
    }

    /// Encode this frame again (header, FD count and payload as they are).
    pub fn encode(&self, out: &mut Vec<u8>, limits: &Limits) -> Result<()> {
        encode_frame(out, &self.header, self.nfds, self.payload, limits)
    }
}

/// Outcome of a partial parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A whole item, and how many input bytes it used.
    Complete {
        /// The item.
        value: T,
        /// Bytes consumed.
        consumed: usize,
    },
    /// Not enough bytes yet: at least `needed` more are required.
    Incomplete {
        /// Bytes still missing (a lower bound while the length word is incomplete).
        needed: usize,
    },
}

/// The header, FD count and payload offset of `buf` (a frame's first bytes) when [`decode_head`]
/// would accept them; `None` when it would not (or the bytes are not all in), and the caller asks
/// it for the error.
#[inline]
fn decode_head_valid(
    buf: &[u8],
    limits: &Limits,
    compat: Compat,
) -> Option<(Header, Option<u32>, usize)> {
    let header = Header::decode_valid(buf, compat)?;
    if !header.msg_type.has_fds() {
        return Some((header, None, MIN_FRAME));
    }
    let n = Header::fd_count_word(buf)?;
    (n <= limits.fds_max()).then_some((header, Some(n), MIN_FRAME + FD_COUNT_LEN))
}

/// Decode the header and FD count of a frame whose length word is `len` and whose first bytes are
/// `buf` (at least the header, and the FD count when the type has one).
#[inline]
fn decode_head(
    buf: &[u8],
    limits: &Limits,
    compat: Compat,
) -> Result<(Header, Option<u32>, usize)> {
    match decode_head_valid(buf, limits, compat) {
        Some(head) => Ok(head),
        None => decode_head_slow(buf, limits, compat),
    }
}

/// [`decode_head`] for a head the fast path did not accept: the errors.
#[cold]
#[inline(never)]
fn decode_head_slow(
    buf: &[u8],
    limits: &Limits,
    compat: Compat,
) -> Result<(Header, Option<u32>, usize)> {
    let mut r = Reader::new(buf, compat);
    r.bytes(LEN_WORD)?;
    let header = Header::decode(&mut r)?;
    let nfds = if header.msg_type.has_fds() {
        let at = r;
        let n = r.u32().map_err(|e| e.in_field("nfds"))?;
        if n > limits.fds_max() {
            return Err(at
                .error(ErrorKind::OverLimit {
                    limit: LimitKind::FdCount,
                    max: limits.fds_max() as u64,
                    actual: n as u64,
                })
                .in_field("nfds"));
        }
        Some(n)
    } else {
        None
    };
    Ok((header, nfds, r.position() as usize))
}

/// Parse one frame from the start of `buf`, which may hold less (→ [`Parsed::Incomplete`]) or more
/// (the rest is not looked at). Errors as soon as what is present is known to be bad: a bad length
/// word with only 4 bytes in, a bad header with only 28.
pub fn parse_frame<'a>(
    buf: &'a [u8],
    limits: &Limits,
    compat: Compat,
) -> Result<Parsed<Frame<'a>>> {
    let Some(len) = Header::len_word(buf) else {
        return Ok(Parsed::Incomplete {
            needed: MIN_FRAME - buf.len(),
        });
    };
    let len = check_length(len, limits)?;
    if buf.len() < len {
        // Report a bad header early: a frame's head is judged once its bytes are in.
        if let Some(head_len) = Header::peek(buf).head_len()
            && buf.len() >= MIN_FRAME
            && buf.len() >= head_len.min(len)
        {
            decode_head(&buf[..len.min(buf.len())], limits, compat)?;
        }
        return Ok(Parsed::Incomplete {
            needed: len - buf.len(),
        });
    }
    let bytes = &buf[..len];
    let (header, nfds, payload_at) = decode_head(bytes, limits, compat)?;
    Ok(Parsed::Complete {
        value: Frame {
            header,
            nfds,
            payload: &bytes[payload_at..],
            bytes,
        },
        consumed: len,
    })
}

/// The fast path of [`parse_frame`]: the frame at the start of `buf` and its length when it is
/// whole and decodes (what [`parse_frame`] returns as [`Parsed::Complete`]), `None` otherwise (and
/// [`parse_frame`] says what it is: incomplete, or the error). No `Result`, no error built: the
/// common path of [`Frames`] and [`FrameDecoder`]. Unit tests hold it to [`parse_frame`].
#[inline]
fn parse_frame_valid<'a>(
    buf: &'a [u8],
    limits: &Limits,
    compat: Compat,
) -> Option<(Frame<'a>, usize)> {
    let len = Header::len_word(buf)? as usize;
    if len < MIN_FRAME || len as u64 > limits.frame_max() {
        return None;
    }
    let bytes = buf.get(..len)?;
    let (header, nfds, payload_at) = decode_head_valid(bytes, limits, compat)?;
    Some((
        Frame {
            header,
            nfds,
            payload: &bytes[payload_at..],
            bytes,
        },
        len,
    ))
}

/// Iterate over the frames of a buffer that holds whole frames back to back. Stops after the first
/// error; a buffer that ends mid-frame yields a [`ErrorKind::Truncated`] error.
pub fn frames<'a>(buf: &'a [u8], limits: &Limits, compat: Compat) -> Frames<'a> {
    Frames {
        buf,
        pos: 0,
        limits: *limits,
        compat,
        failed: false,
    }
}

/// Iterator returned by [`frames`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: Limits,
    compat: Compat,
    failed: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(usize, Frame<'a>)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos == self.buf.len() {
            return None;
        }
        let at = self.pos;
        if let Some((frame, len)) = parse_frame_valid(&self.buf[at..], &self.limits, self.compat) {
            self.pos += len;
            return Some(Ok((at, frame)));
        }
        self.next_slow()
    }
}

impl<'a> Frames<'a> {
    /// [`Frames::next`] for what the fast path did not take: the last frame's truncation, or the
    /// error.
    #[cold]
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<(usize, Frame<'a>)>> {
        let rest = &self.buf[self.pos..];
        let at = self.pos;
        match parse_frame(rest, &self.limits, self.compat) {
            Ok(Parsed::Complete { value, consumed }) => {
                self.pos += consumed;
                Some(Ok((at, value)))
            }
            Ok(Parsed::Incomplete { needed }) => {
                self.failed = true;
                Some(Err(Error::decode(
                    ErrorKind::Truncated {
                        needed: (rest.len() + needed) as u64,
                        available: rest.len() as u64,
                    },
                    at as u64,
                )))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e.offset_by(at as u64)))
            }
        }
    }
}

/// A frame that owns its bytes, as produced by [`FrameDecoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    bytes: Vec<u8>,
    header: Header,
    nfds: Option<u32>,
    payload_at: usize,
    stream_offset: u64,
}

impl OwnedFrame {
    /// A borrowed view.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            header: self.header,
            nfds: self.nfds,
            payload: &self.bytes[self.payload_at..],
            bytes: &self.bytes,
        }
    }
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The FD count, for `*_WITH_FDS`.
    pub fn nfds(&self) -> Option<u32> {
        self.nfds
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload_at..]
    }
    /// The whole frame, length word included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Offset of the frame's first byte in the byte stream fed to the decoder.
    pub fn stream_offset(&self) -> u64 {
        self.stream_offset
    }
    /// The frame's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Incremental, sans-IO frame decoder: feed bytes in any chunking, take out whole frames.
///
/// Memory: the decoder holds only bytes it was given and has not yet handed out; its buffer grows
/// exactly to what was fed (never to a length a peer claims). After an error it is poisoned: the
/// same error is returned again and further input is dropped, as libvirt drops the connection.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    compat: Compat,
    buf: Vec<u8>,
    start: usize,
    consumed: u64,
    error: Option<Error>,
}

impl FrameDecoder {
    /// A decoder with these limits (copied) and mode.
    pub fn new(limits: &Limits, compat: Compat) -> Self {
        FrameDecoder {
            limits: *limits,
            compat,
            buf: Vec::new(),
            start: 0,
            consumed: 0,
            error: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Add bytes. They are buffered until [`FrameDecoder::next_frame`] takes whole frames out.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Exact growth: capacity never exceeds the bytes actually held.
        self.buf.reserve_exact(data.len());
        self.buf.extend_from_slice(data);
    }

    /// Bytes held and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The bytes held and not yet returned as frames: the start of the next frame. After an error,
    /// the bytes of the frame that failed (what was held when it failed), so that a caller can say
    /// what the peer sent; nothing more is ever added to them.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Bytes of memory the buffer holds (its capacity).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Total bytes taken out as frames so far: the stream offset of the next frame.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The error the decoder stopped on, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// How many more bytes are needed before the next frame is complete: 0 when one is ready (or the
    /// decoder failed), otherwise the exact count once the length word is in, and the bytes missing
    /// to the 28-byte minimum before that.
    pub fn needed(&self) -> usize {
        if self.error.is_some() {
            return 0;
        }
        match parse_frame(&self.buf[self.start..], &self.limits, self.compat) {
            Ok(Parsed::Incomplete { needed }) => needed,
            _ => 0,
        }
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed, or the error that stops decoding.
    /// Error offsets are offsets in the whole byte stream fed so far.
    pub fn next_frame(&mut self) -> Result<Option<OwnedFrame>> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let rest = &self.buf[self.start..];
        let parsed = match parse_frame_valid(rest, &self.limits, self.compat) {
            Some((value, consumed)) => Ok(Parsed::Complete { value, consumed }),
            None => parse_frame(rest, &self.limits, self.compat),
        };
        let (header, nfds, len, payload_at) = match parsed {
            Ok(Parsed::Incomplete { .. }) => return Ok(None),
            Ok(Parsed::Complete { value, consumed }) => {
                (value.header, value.nfds, consumed, value.payload_offset())
            }
            Err(e) => {
                let e = e.offset_by(self.consumed);
                self.error = Some(e.clone());
                // Keep the failed frame's bytes for `pending`, without the frames before it.
                self.buf.drain(..self.start);
                self.buf.shrink_to_fit();
                self.start = 0;
                return Err(e);
            }
        };
        let bytes = if self.start == 0 && self.buf.len() == len {
            // The buffer is exactly this frame: hand it over.
            std::mem::take(&mut self.buf)
        } else if self.start == 0 && self.buf.len() - len <= len {
            // The frame is the larger part: keep its allocation, copy the (smaller) tail out.
            let tail = self.buf.split_off(len);
            std::mem::replace(&mut self.buf, tail)
        } else {
            let b = self.buf[self.start..self.start + len].to_vec();
            self.start += len;
            if self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            b
        };
        let stream_offset = self.consumed;
        self.consumed += len as u64;
        Ok(Some(OwnedFrame {
            bytes,
            header,
            nfds,
            payload_at,
            stream_offset,
        }))
    }
}

/// Append one frame to `out`: length word, header, FD count (required exactly for `*_WITH_FDS`
/// types), payload. Checks the FD count and the total size against `limits`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    header: &Header,
    nfds: Option<u32>,
    payload: &[u8],
    limits: &Limits,
) -> Result<()> {
    let fd_len = if header.msg_type.has_fds() {
        FD_COUNT_LEN
    } else {
        0
    };
    match (header.msg_type.has_fds(), nfds) {
        (true, None) => {
            return Err(Error::encode(
                ErrorKind::Invalid("a *_WITH_FDS frame needs an FD count".into()),
                0,
            )
            .in_field("nfds"));
        }
        (false, Some(_)) => {
            return Err(Error::encode(
                ErrorKind::Invalid(format!("type {} carries no FD count", header.msg_type).into()),
                0,
            )
            .in_field("nfds"));
        }
        (true, Some(n)) if n > limits.fds_max() => {
            return Err(Error::encode(
                ErrorKind::OverLimit {
                    limit: LimitKind::FdCount,
                    max: limits.fds_max() as u64,
                    actual: n as u64,
                },
                MIN_FRAME as u64,
            )
            .in_field("nfds"));
        }
        _ => {}
    }
    let total = MIN_FRAME as u64 + fd_len as u64 + payload.len() as u64;
    if total > limits.frame_max() {
        return Err(Error::encode(
            ErrorKind::OverLimit {
                limit: LimitKind::Payload,
                max: limits.payload_max() as u64 - fd_len as u64,
                actual: payload.len() as u64,
            },
            (MIN_FRAME + fd_len) as u64,
        )
        .in_field("payload"));
    }
    out.reserve(total as usize);
    let mut w = Writer::new(out);
    w.u32(total as u32);
    header.encode(&mut w);
    if let Some(n) = nfds {
        w.u32(n);
    }
    w.raw(payload);
    Ok(())
}

/// Builder for any frame, valid or not.
///
/// [`FrameBuilder::encode`] checks limits and consistency; [`FrameBuilder::build_unchecked`] writes
/// whatever was set, including a wrong length word, an FD count on a type without one, a huge FD
/// count, or a payload over the limit — for conformance cases and fuzz seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    header: Header,
    nfds: Option<u32>,
    payload: Vec<u8>,
    length_override: Option<u32>,
}

impl FrameBuilder {
    /// A builder for a frame with this header, no FD count, empty payload.
    pub fn new(header: Header) -> Self {
        let nfds = header.msg_type.has_fds().then_some(0);
        FrameBuilder {
            header,
            nfds,
            payload: Vec::new(),
            length_override: None,
        }
    }
    /// A CALL/OK builder.
    pub fn call(prog: u32, procedure: i32, serial: u32) -> Self {
        FrameBuilder::new(Header::call(prog, procedure, serial))
    }
    /// Set the type.
    #[must_use]
    pub fn msg_type(mut self, t: MessageType) -> Self {
        self.header.msg_type = t;
        if t.has_fds() && self.nfds.is_none() {
            self.nfds = Some(0);
        }
        self
    }
    /// Set the status.
    #[must_use]
    pub fn status(mut self, s: MessageStatus) -> Self {
        self.header.status = s;
        self
    }
    /// Set the serial.
    #[must_use]
    pub fn serial(mut self, s: u32) -> Self {
        self.header.serial = s;
        self
    }
    /// Set the version.
    #[must_use]
    pub fn vers(mut self, v: u32) -> Self {
        self.header.vers = v;
        self
    }
    /// Set (or with `None` remove) the FD count word.
    #[must_use]
    pub fn nfds(mut self, n: Option<u32>) -> Self {
        self.nfds = n;
        self
    }
    /// Set the payload.
    #[must_use]
    pub fn payload(mut self, p: impl Into<Vec<u8>>) -> Self {
        self.payload = p.into();
        self
    }
    /// Write this length word instead of the true one.
    #[must_use]
    pub fn length_word(mut self, len: u32) -> Self {
        self.length_override = Some(len);
        self
    }
    /// The header as set.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Encode, checking limits and that the FD count matches the type. A length-word override is an
    /// error here (use [`FrameBuilder::build_unchecked`]).
    pub fn encode(&self, limits: &Limits) -> Result<Vec<u8>> {
        if self.length_override.is_some() {
            return Err(Error::encode(
                ErrorKind::Invalid("a length-word override needs build_unchecked".into()),
                0,
            ));
        }
        let mut out = Vec::new();
        encode_frame(&mut out, &self.header, self.nfds, &self.payload, limits)?;
        Ok(out)
    }

    /// Write exactly what was set, without any check.
    pub fn build_unchecked(&self) -> Vec<u8> {
        let true_len = MIN_FRAME + self.nfds.map_or(0, |_| FD_COUNT_LEN) + self.payload.len();
        let mut out = Vec::with_capacity(true_len);
        let mut w = Writer::new(&mut out);
        w.u32(self.length_override.unwrap_or(true_len as u32));
        self.header.encode(&mut w);
        if let Some(n) = self.nfds {
            w.u32(n);
        }
        w.raw(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Category;
    use crate::header::REMOTE_PROGRAM;

    #[test]
    fn length_word_rules() {
        let l = Limits::default();
        assert!(matches!(
            check_length(3, &l).unwrap_err().kind(),
            ErrorKind::LengthTooSmall { length: 3, min: 4 }
        ));
        let e = check_length(20, &l).unwrap_err();
        assert_eq!(e.path_string(), "header");
        assert_eq!(check_length(28, &l).unwrap(), 28);
        assert_eq!(check_length(33_554_436, &l).unwrap(), 33_554_436);
        assert_eq!(
            check_length(33_554_437, &l).unwrap_err().category(),
            Category::OverLimit
        );
    }

    #[test]
    fn fd_count_is_checked() {
        let l = Limits::default();
        let f = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
            .msg_type(MessageType::CallWithFds)
            .nfds(Some(33))
            .build_unchecked();
        let e = Frame::decode(&f, &l, Compat::Libvirt).unwrap_err();
        assert_eq!(e.path_string(), "nfds");
        assert_eq!(e.offset(), 28);
        let f = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
            .msg_type(MessageType::CallWithFds)
            .nfds(Some(32))
            .payload(vec![0; 8])
            .encode(&l)
            .unwrap();
        let d = Frame::decode(&f, &l, Compat::Strict).unwrap();
        assert_eq!(d.nfds, Some(32));
        assert_eq!(d.payload.len(), 8);
        assert_eq!(d.payload_offset(), 32);
    }

    #[test]
    fn decoder_rejects_hostile_length_with_four_bytes() {
        let mut d = FrameDecoder::new(&Limits::default(), Compat::Strict);
        d.feed(&[0xff, 0xff]);
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.needed(), 26);
        d.feed(&[0xff, 0xff]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.category(), Category::OverLimit);
        // poisoned: input is dropped, the failed frame's bytes stay readable
        d.feed(&[0; 100]);
        assert_eq!(d.next_frame().unwrap_err(), e);
        assert_eq!(d.pending(), &[0xff; 4]);
    }

    #[test]
    fn decoder_keeps_only_the_failed_frame_after_an_error() {
        let l = Limits::default();
        let mut d = FrameDecoder::new(&Limits::default(), Compat::Libvirt);
        let good = FrameBuilder::call(REMOTE_PROGRAM, 1, 7).encode(&l).unwrap();
        let mut bytes = good.clone();
        bytes.extend_from_slice(&[0, 0, 0, 3, 0xaa]);
        d.feed(&bytes);
        assert_eq!(d.pending(), &bytes[..]);
        assert_eq!(d.next_frame().unwrap().unwrap().bytes(), &good[..]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.offset(), good.len() as u64);
        assert_eq!(e.clone().relative_to(good.len() as u64).offset(), 0);
        assert_eq!(d.pending(), &[0, 0, 0, 3, 0xaa]);
    }

    fn small_limits() -> Limits {
        Limits::builder()
            .message_max(4096)
            .stream_chunk(1024)
            .fds_max(8)
            .build()
            .unwrap()
    }

    /// Frames that decode, with the limits and mode they decode under: every type (with and without
    /// an FD count, at 0 and at the limit), status, payload sizes from none to the largest the
    /// limits allow, and unknown type and status values in libvirt mode.
    fn frames_that_decode() -> Vec<(Vec<u8>, Limits, Compat)> {
        let d = Limits::default();
        let s = small_limits();
        let call = |t, nfds: Option<u32>, payload: usize| {
            FrameBuilder::call(REMOTE_PROGRAM, 3, 9)
                .msg_type(t)
                .nfds(nfds)
                .payload(vec![0x5a; payload])
                .build_unchecked()
        };
        let mut v = Vec::new();
        for compat in [Compat::Strict, Compat::Libvirt] {
            v.push((call(MessageType::Call, None, 0), d, compat));
            v.push((call(MessageType::Reply, None, 8), d, compat));
            v.push((call(MessageType::Message, None, 100), d, compat));
            v.push((call(MessageType::Stream, None, 3), d, compat));
            v.push((call(MessageType::CallWithFds, Some(0), 0), d, compat));
            v.push((call(MessageType::CallWithFds, Some(32), 12), d, compat));
            v.push((call(MessageType::ReplyWithFds, Some(8), 4), s, compat));
            // Exactly the largest frame the limits allow, with and without an FD count.
            v.push((call(MessageType::Reply, None, 4096 - 24), s, compat));
            v.push((
                call(MessageType::CallWithFds, Some(1), 4096 - 28),
                s,
                compat,
            ));
        }
        let unknown = FrameBuilder::call(REMOTE_PROGRAM, 3, 9)
            .msg_type(MessageType::Unknown(9))
            .status(MessageStatus::Unknown(77))
            .payload(vec![1; 4])
            .build_unchecked();
        v.push((unknown, d, Compat::Libvirt));
        v
    }

    /// Bytes that are not exactly one frame that decodes (each for the reason named).
    fn frames_that_do_not_decode() -> Vec<(&'static str, Vec<u8>, Limits, Compat)> {
        let d = Limits::default();
        let s = small_limits();
        let good = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
            .payload(vec![0; 8])
            .build_unchecked();
        let with = |f: &[u8], more: &[u8]| [f, more].concat();
        let fds = |n| {
            FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                .msg_type(MessageType::CallWithFds)
                .nfds(Some(n))
                .build_unchecked()
        };
        vec![
            ("no length word", vec![0, 0, 0], d, Compat::Strict),
            (
                "bytes after the frame",
                with(&good, &[0; 4]),
                d,
                Compat::Strict,
            ),
            (
                "the frame cut short",
                good[..good.len() - 1].to_vec(),
                d,
                Compat::Strict,
            ),
            (
                "length word 3",
                with(&3u32.to_be_bytes(), &[0; 24]),
                d,
                Compat::Libvirt,
            ),
            (
                "length word 27",
                FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                    .length_word(27)
                    .build_unchecked()[..27]
                    .to_vec(),
                d,
                Compat::Libvirt,
            ),
            (
                "one byte over the limit",
                FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                    .payload(vec![0; 4096 - 23])
                    .build_unchecked(),
                s,
                Compat::Libvirt,
            ),
            (
                "unknown type, strict",
                FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                    .msg_type(MessageType::Unknown(9))
                    .build_unchecked(),
                d,
                Compat::Strict,
            ),
            (
                "unknown status, strict",
                FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                    .status(MessageStatus::Unknown(77))
                    .build_unchecked(),
                d,
                Compat::Strict,
            ),
            ("an FD count over the limit", fds(9), s, Compat::Libvirt),
            (
                "an FD count over the default limit",
                fds(33),
                d,
                Compat::Libvirt,
            ),
            (
                "no room for the FD count",
                FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
                    .msg_type(MessageType::CallWithFds)
                    .nfds(None)
                    .build_unchecked(),
                d,
                Compat::Libvirt,
            ),
        ]
    }

    /// The fast paths are what make decoding fast: they must take every frame that decodes (a
    /// fast path that falls back to the slow one would give the same answers, slowly), and agree
    /// with the slow paths, which on their own are whole decoders.
    #[test]
    fn fast_paths_take_every_frame_that_decodes() {
        for (f, l, compat) in frames_that_decode() {
            let slow = Frame::decode_slow(&f, &l, compat)
                .unwrap_or_else(|e| panic!("{compat:?} {:02x?}: {e}", &f[..32.min(f.len())]));
            assert_eq!(Frame::decode_valid(&f, &l, compat), Some(slow), "{slow:?}");
            assert_eq!(Frame::decode(&f, &l, compat), Ok(slow));
            let head = decode_head_slow(&f, &l, compat).unwrap();
            assert_eq!(head, (slow.header, slow.nfds, slow.payload_offset()));
            assert_eq!(decode_head_valid(&f, &l, compat), Some(head), "{slow:?}");
            // parse_frame's fast path, on the frame alone and with more bytes after it.
            let mut longer = f.clone();
            longer.extend_from_slice(&[0, 0, 0, 28, 1]);
            for buf in [&f[..], &longer[..]] {
                assert_eq!(
                    parse_frame_valid(buf, &l, compat),
                    Some((slow, f.len())),
                    "{slow:?}"
                );
                assert_eq!(
                    parse_frame(buf, &l, compat),
                    Ok(Parsed::Complete {
                        value: slow,
                        consumed: f.len()
                    })
                );
            }
        }
    }

    /// …and refuse everything else, leaving the error to the slow paths.
    #[test]
    fn fast_paths_refuse_what_does_not_decode() {
        for (why, f, l, compat) in frames_that_do_not_decode() {
            assert_eq!(Frame::decode_valid(&f, &l, compat), None, "{why}");
            // parse_frame's fast path takes no frame parse_frame does not return whole.
            if !matches!(parse_frame(&f, &l, compat), Ok(Parsed::Complete { .. })) {
                assert_eq!(parse_frame_valid(&f, &l, compat), None, "{why}");
            }
            let e = Frame::decode_slow(&f, &l, compat).expect_err(why);
            assert_eq!(Frame::decode(&f, &l, compat), Err(e), "{why}");
            if let Err(e) = decode_head_slow(&f, &l, compat) {
                assert_eq!(decode_head_valid(&f, &l, compat), None, "{why}: {e}");
                assert_eq!(decode_head(&f, &l, compat), Err(e), "{why}");
            }
        }
    }

    #[test]
    fn decoder_hands_out_frames_fed_together_in_order() {
        let l = Limits::default();
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        let serials = [1u32, 2, 3];
        for s in serials {
            d.feed(&FrameBuilder::call(REMOTE_PROGRAM, 1, s).encode(&l).unwrap());
        }
        d.feed(&[0, 0]);
        for s in serials {
            assert_eq!(d.next_frame().unwrap().unwrap().header().serial, s);
        }
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!((d.consumed(), d.buffered()), (84, 2));
    }

    #[test]
    fn frames_iterator_reports_truncation() {
        let l = Limits::default();
        let mut buf = FrameBuilder::call(REMOTE_PROGRAM, 1, 1).encode(&l).unwrap();
        buf.extend_from_slice(&FrameBuilder::call(REMOTE_PROGRAM, 2, 2).encode(&l).unwrap()[..10]);
        // `take`: an iterator that does not advance fails here rather than running forever.
        let v: Vec<_> = frames(&buf, &l, Compat::Strict).take(5).collect();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err();
        assert_eq!(e.offset(), 28);
        // The second frame's length word is in: it needs 28 bytes and 10 are there.
        assert_eq!(
            e.kind(),
            &ErrorKind::Truncated {
                needed: 28,
                available: 10
            }
        );
        // Two bytes of a third frame: not even its length word, so at least a header's worth.
        buf.truncate(30);
        let e = frames(&buf, &l, Compat::Strict)
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (
                &ErrorKind::Truncated {
                    needed: 28,
                    available: 2
                },
                28
            )
        );
    }
}
