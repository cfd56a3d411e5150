//! Fuzz harnesses (only with `--cfg fuzzing`).
//!
//! Each public `fn name(data: &[u8])` is the whole logic of one fuzz target, oracle included; the
//! targets in `fuzz/fuzz_targets/` are one-liners calling them, and `fuzz/tests/` replays every seed
//! and regression file through the same functions on stable. A failed oracle panics (that is how
//! libFuzzer learns of it); the message says which property broke.

use arbitrary::{Arbitrary, Unstructured};

use crate::body::{ErrorDomain, ErrorNetwork};
use crate::header::PROGRAMS;
use crate::*;

/// Limits for fuzzing: index 0..=2 are the named profiles, 3 is a small custom profile whose edges a
/// fuzzer reaches with short inputs.
pub fn fuzz_limits(sel: u8) -> Limits {
    match sel % 4 {
        0 => Limits::LEGACY_256K,
        1 => Limits::DYNAMIC_16M,
        2 => Limits::CURRENT_32M,
        _ => Limits::default()
            .with_message_max(1024)
            .with_stream_chunk(512)
            .with_string_max(64)
            .with_fds_max(4),
    }
}

/// Target `header`: decode a header and a frame from raw bytes in both modes. Oracles: a decoded
/// header re-encodes to the same 24 bytes; strict acceptance implies libvirt acceptance with the same
/// values; a frame that decodes (and its body, in strict mode) re-encodes byte for byte.
pub fn header(data: &[u8]) {
    let strict = Header::decode(&mut Reader::new(data, Compat::Strict));
    let lib = Header::decode(&mut Reader::new(data, Compat::Libvirt));
    if let Ok(h) = &lib {
        assert_eq!(&h.to_bytes()[..], &data[..24], "header re-encoding differs");
    }
    if let Ok(h) = &strict {
        assert_eq!(
            lib.as_ref().ok(),
            Some(h),
            "strict accepted a header libvirt mode refused"
        );
    }
    let limits = fuzz_limits(data.first().copied().unwrap_or(0) >> 6);
    for compat in [Compat::Strict, Compat::Libvirt] {
        let Ok(Parsed::Complete {
            value: frame,
            consumed,
        }) = parse_frame(data, &limits, compat)
        else {
            continue;
        };
        assert_eq!(frame.bytes.len(), consumed);
        let mut again = Vec::new();
        frame
            .encode(&mut again, &limits)
            .expect("a decoded frame must encode within the same limits");
        assert_eq!(again, frame.bytes, "frame re-encoding differs");
        match Message::decode(frame, &limits, compat) {
            Ok(m) if compat == Compat::Strict => {
                let mut again = Vec::new();
                m.encode(&mut again, &limits)
                    .expect("strict message must encode");
                assert_eq!(again, frame.bytes, "strict message re-encoding differs");
                let lib = Message::decode(frame, &limits, Compat::Libvirt)
                    .expect("strict accepted a message libvirt mode refused");
                assert_eq!(lib.body, m.body);
            }
            _ => {}
        }
    }
}

/// Deterministic cut points from a seed: a small xorshift so one input byte picks a whole chunking.
fn cuts(len: usize, seed: u16, max_chunk: usize) -> Vec<usize> {
    let mut x = (seed as u32) | 1;
    let mut at = 0;
    let mut out = Vec::new();
    while at < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        at = (at + 1 + (x as usize % max_chunk.max(1))).min(len);
        out.push(at);
    }
    out
}

/// Target `frame_stream`: `data[0]` picks limits and mode, `data[1..3]` seed the chunking, the rest
/// is a byte stream. Oracles: feeding it in that chunking yields exactly the frames (and the error,
/// at the same stream offset) of one-shot decoding; the decoder never holds more bytes than fed and
/// not yet taken out; `needed()` is exact once the length word is in.
pub fn frame_stream(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let limits = fuzz_limits(data[0]);
    let compat = if data[0] & 4 == 0 {
        Compat::Strict
    } else {
        Compat::Libvirt
    };
    let max_chunk = 1 + (data[0] as usize >> 3) * 37;
    let seed = u16::from_be_bytes([data[1], data[2]]);
    let stream = &data[3..];

    let mut one_shot = Vec::new();
    let mut one_shot_err = None;
    for r in frames(stream, limits, compat) {
        match r {
            Ok((at, f)) => one_shot.push((at as u64, f.bytes)),
            Err(e) => one_shot_err = Some(e),
        }
    }

    let mut dec = FrameDecoder::new(limits, compat);
    let mut got = Vec::new();
    let mut err = None;
    let mut fed = 0usize;
    'outer: for end in cuts(stream.len(), seed, max_chunk) {
        dec.feed(&stream[fed..end]);
        fed = end;
        loop {
            assert!(
                dec.capacity() <= fed,
                "decoder holds {} bytes after {} fed",
                dec.capacity(),
                fed
            );
            match dec.next_frame() {
                Ok(Some(f)) => got.push((f.stream_offset(), f.into_bytes())),
                Ok(None) => {
                    assert_eq!(dec.buffered() as u64, fed as u64 - dec.consumed());
                    break;
                }
                Err(e) => {
                    err = Some(e);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(got.len(), one_shot.len(), "frame count differs by chunking");
    for ((a_at, a), (b_at, b)) in got.iter().zip(&one_shot) {
        assert_eq!(a_at, b_at, "frame offset differs");
        assert_eq!(&a[..], *b, "frame bytes differ");
    }
    match (&err, &one_shot_err) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.kind(), b.kind(), "error differs by chunking");
            assert_eq!(a.offset(), b.offset(), "error offset differs by chunking");
        }
        (None, Some(b)) => {
            // One-shot calls an unfinished tail truncated; the decoder is waiting for it.
            assert!(
                matches!(b.kind(), ErrorKind::Truncated { .. }) && b.path_string().is_empty(),
                "only the decoder accepted: {b}"
            );
            assert!(dec.needed() > 0, "decoder waits but needs nothing");
        }
        (Some(a), None) => panic!("only the decoder failed: {a}"),
    }
}

/// A program number for [`ArbMessage`]: mostly known ones.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ArbProg {
    /// One of [`PROGRAMS`] by index.
    Known(u8),
    /// Anything.
    Raw(u32),
}

/// An owned error body for [`ArbMessage`].
#[derive(Debug, Clone, Arbitrary)]
pub struct ArbError {
    /// code, domain, level, int1, int2.
    pub ints: [i32; 5],
    /// The message.
    pub message: Option<Vec<u8>>,
    /// str1..3.
    pub strs: [Option<Vec<u8>>; 3],
    /// The `dom` member.
    pub dom: Option<(Vec<u8>, [u8; 16], i32)>,
    /// The `net` member.
    pub net: Option<(Vec<u8>, [u8; 16])>,
}

impl ArbError {
    /// As an [`ErrorBody`].
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.ints[0],
            domain: self.ints[1],
            message: self.message.as_deref(),
            level: self.ints[2],
            dom: self.dom.as_ref().map(|(n, u, id)| ErrorDomain {
                name: n,
                uuid: *u,
                id: *id,
            }),
            str1: self.strs[0].as_deref(),
            str2: self.strs[1].as_deref(),
            str3: self.strs[2].as_deref(),
            int1: self.ints[3],
            int2: self.ints[4],
            net: self
                .net
                .as_ref()
                .map(|(n, u)| ErrorNetwork { name: n, uuid: *u }),
        }
    }
}

/// The body of an [`ArbMessage`]: every valid (type, status) shape.
#[derive(Debug, Clone, Arbitrary)]
pub enum ArbBody {
    /// CALL, or CALL_WITH_FDS with the count.
    Call(Option<u8>, Vec<u8>),
    /// REPLY/OK, or REPLY_WITH_FDS/OK.
    Reply(Option<u8>, Vec<u8>),
    /// REPLY/ERROR.
    ReplyError(ArbError),
    /// MESSAGE/OK (an event).
    Event(Vec<u8>),
    /// Keepalive PING (true) or PONG.
    Keepalive(bool),
    /// STREAM/CONTINUE.
    StreamData(Vec<u8>),
    /// STREAM/OK.
    StreamEnd,
    /// STREAM/ERROR, empty.
    StreamAbort,
    /// STREAM/ERROR with an error body.
    StreamError(ArbError),
    /// STREAM_HOLE/CONTINUE.
    Hole(i64, u32),
}

/// A structured message for `roundtrip_structured`.
#[derive(Debug, Clone, Arbitrary)]
pub struct ArbMessage {
    /// Program.
    pub prog: ArbProg,
    /// Version.
    pub vers: u32,
    /// Procedure.
    pub procedure: i32,
    /// Serial.
    pub serial: u32,
    /// Body.
    pub body: ArbBody,
}

/// Target `roundtrip_structured`: an [`ArbMessage`] → encode → decode (strict) → the same header, FD
/// count and body, and encoding again gives the same bytes; the frame decoder agrees. Messages over
/// the (small) limits must be refused by the encoder, never half-written.
pub fn roundtrip_structured(data: &[u8]) {
    let Ok(m) = ArbMessage::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    use MessageStatus as S;
    use MessageType as T;
    let limits = fuzz_limits(3).with_string_max(256);
    let mut prog = match m.prog {
        ArbProg::Known(i) => PROGRAMS[i as usize % PROGRAMS.len()].number,
        ArbProg::Raw(p) => p,
    };
    let mut procedure = m.procedure;
    let err_bytes = |e: &ArbError| e.body().to_bytes(&limits);
    let (t, s, nfds, payload, expect) = match &m.body {
        ArbBody::Call(fds, p) => match fds {
            Some(n) => (
                T::CallWithFds,
                S::Ok,
                Some(*n as u32),
                p.clone(),
                BodyKind::Args,
            ),
            None => (T::Call, S::Ok, None, p.clone(), BodyKind::Args),
        },
        ArbBody::Reply(fds, p) => match fds {
            Some(n) => (
                T::ReplyWithFds,
                S::Ok,
                Some(*n as u32),
                p.clone(),
                BodyKind::Ret,
            ),
            None => (T::Reply, S::Ok, None, p.clone(), BodyKind::Ret),
        },
        ArbBody::ReplyError(e) => match err_bytes(e) {
            Ok(b) => (T::Reply, S::Error, None, b, BodyKind::Error),
            Err(err) => {
                assert_eq!(err.category(), Category::OverLimit, "{err}");
                return;
            }
        },
        ArbBody::Event(p) => {
            if prog == header::KEEPALIVE_PROGRAM {
                prog = header::REMOTE_PROGRAM;
            }
            (T::Message, S::Ok, None, p.clone(), BodyKind::Msg)
        }
        ArbBody::Keepalive(ping) => {
            prog = header::KEEPALIVE_PROGRAM;
            procedure = if *ping { 1 } else { 2 };
            (T::Message, S::Ok, None, Vec::new(), BodyKind::Keepalive)
        }
        ArbBody::StreamData(p) => (
            T::Stream,
            S::Continue,
            None,
            p.clone(),
            BodyKind::StreamData,
        ),
        ArbBody::StreamEnd => (T::Stream, S::Ok, None, Vec::new(), BodyKind::StreamEnd),
        ArbBody::StreamAbort => (T::Stream, S::Error, None, Vec::new(), BodyKind::StreamError),
        ArbBody::StreamError(e) => match err_bytes(e) {
            Ok(b) => (T::Stream, S::Error, None, b, BodyKind::StreamError),
            Err(err) => {
                assert_eq!(err.category(), Category::OverLimit, "{err}");
                return;
            }
        },
        ArbBody::Hole(length, flags) => (
            T::StreamHole,
            S::Continue,
            None,
            StreamHole {
                length: *length,
                flags: *flags,
            }
            .to_bytes()
            .to_vec(),
            BodyKind::StreamHole,
        ),
    };
    let h = Header::new(prog, m.vers, procedure, t, m.serial, s);
    let mut bytes = Vec::new();
    match encode_frame(&mut bytes, &h, nfds, &payload, &limits) {
        Ok(()) => {}
        Err(e) => {
            assert!(bytes.is_empty(), "encoder wrote part of a refused frame");
            assert_eq!(e.category(), Category::OverLimit, "{e}");
            let too_big = 32 + payload.len() as u64 > limits.frame_max();
            let too_many = nfds.is_some_and(|n| n > limits.fds_max);
            assert!(too_big || too_many, "encoder refused a legal frame: {e}");
            return;
        }
    }
    let frame = Frame::decode(&bytes, &limits, Compat::Strict).expect("own frame must decode");
    assert_eq!(frame.header, h);
    assert_eq!(frame.nfds, nfds);
    assert_eq!(frame.payload, &payload[..]);
    let msg = Message::decode(frame, &limits, Compat::Strict).expect("own message must decode");
    assert_eq!(msg.kind, expect);
    match (&m.body, &msg.body) {
        (ArbBody::ReplyError(e) | ArbBody::StreamError(e), Body::Error(d)) => {
            assert_eq!(&e.body(), d)
        }
        (ArbBody::Hole(l, f), Body::StreamHole(d)) => {
            assert_eq!((d.length, d.flags), (*l, *f))
        }
        (ArbBody::Keepalive(p), Body::Keepalive(k)) => {
            assert_eq!(
                *k,
                if *p {
                    KeepaliveProc::Ping
                } else {
                    KeepaliveProc::Pong
                }
            )
        }
        (ArbBody::StreamAbort, Body::StreamAbort) | (ArbBody::StreamEnd, Body::StreamEnd) => {}
        (ArbBody::StreamData(p), Body::StreamData(d)) => assert_eq!(&p[..], *d),
        (_, Body::Procedure { payload: d, .. }) => assert_eq!(&payload[..], *d),
        (a, b) => panic!("decoded {b:?} for {a:?}"),
    }
    let mut again = Vec::new();
    msg.encode(&mut again, &limits).expect("re-encode");
    assert_eq!(again, bytes, "re-encoding differs");
    let mut dec = FrameDecoder::new(limits, Compat::Strict);
    dec.feed(&bytes);
    let f = dec.next_frame().expect("decoder").expect("a whole frame");
    assert_eq!(f.bytes(), &bytes[..]);
}
