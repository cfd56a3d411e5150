//! Fuzz harnesses (only with `--cfg fuzzing`).
//!
//! Each public `fn name(data: &[u8])` is the whole logic of one fuzz target, oracle included; the
//! targets in `fuzz/fuzz_targets/` are one-liners calling them, and `fuzz/tests/` replays every seed
//! and regression file through the same functions on stable. A failed oracle panics (that is how
//! libFuzzer learns of it); the message says which property broke.

use arbitrary::{Arbitrary, Unstructured};

use std::sync::OnceLock;

use crate::body::{ErrorDomain, ErrorNetwork};
use crate::header::PROGRAMS;
use crate::schema::{Schema, Value};
use crate::*;

/// libvirt's schema, loaded once per process from [`protocol_dir`]. Panics with what to do when
/// there is none: a fuzz run without the schema would test nothing.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        protocol_dir()
            .and_then(|dir| Schema::load_dir(&dir).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("fuzz harness: cannot load libvirt's .x files: {e}"))
    })
}

/// Where the harness reads libvirt's `.x` files: `$VIRTWIRE_PROTOCOL_DIR` (when set and not
/// empty); else `libvirt-protocol/` beside the fuzz binary (where `.clusterfuzzlite/build.sh` puts
/// them); else the repository's `.cache/libvirt-9.0.0` (`scripts/setup.sh --xdr-only`), or the
/// newest `.cache/libvirt-*` there (the harness is test code and may know the repository). The
/// error says where it looked and what to do.
pub fn protocol_dir() -> Result<std::path::PathBuf, String> {
    const ENV: &str = "VIRTWIRE_PROTOCOL_DIR";
    if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        return Ok(d.into());
    }
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("libvirt-protocol")));
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache");
    let mut versions: Vec<(Vec<u64>, std::path::PathBuf)> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix("libvirt-")?;
            Some((
                v.split('.').map(|p| p.parse().unwrap_or(0)).collect(),
                e.path(),
            ))
        })
        .collect();
    versions.sort();
    let candidates: Vec<_> = beside_exe
        .into_iter()
        .chain([cache.join("libvirt-9.0.0")])
        .chain(versions.into_iter().rev().map(|(_, p)| p))
        .collect();
    candidates
        .iter()
        .find(|d| d.join("src/remote/remote_protocol.x").is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<_> = candidates.iter().map(|d| d.display().to_string()).collect();
            format!(
                "none in ${ENV} (unset) or {}: run scripts/setup.sh --xdr-only, or set {ENV} to a \
                 libvirt source tree",
                looked.join(", ")
            )
        })
}

/// Limits for fuzzing: index 0..=2 are the named profiles, 3 is a small custom profile whose edges a
/// fuzzer reaches with short inputs.
pub fn fuzz_limits(sel: u8) -> Limits {
    match sel % 4 {
        0 => Limits::LEGACY_256K,
        1 => Limits::DYNAMIC_16M,
        2 => Limits::CURRENT_32M,
        _ => Limits::builder()
            .message_max(1024)
            .stream_chunk(512)
            .string_max(64)
            .fds_max(4)
            .build()
            .expect("coherent limits"),
    }
}

/// Target `header`: decode a header and a frame from raw bytes in both modes. Oracles: a decoded
/// header re-encodes to the same 24 bytes; strict acceptance implies libvirt acceptance with the same
/// values; a frame that decodes (and its body, in strict mode) re-encodes byte for byte.
pub fn header(data: &[u8]) {
    let strict = Header::decode(&mut Reader::new(data, Compat::Strict));
    let lib = Header::decode(&mut Reader::new(data, Compat::Libvirt));
    if let Ok(h) = &lib {
        assert_eq!(
            &h.to_bytes()[..],
            &data[..Header::LEN],
            "header re-encoding differs"
        );
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
    for r in frames(stream, &limits, compat) {
        match r {
            Ok((at, f)) => one_shot.push((at as u64, f.bytes)),
            Err(e) => one_shot_err = Some(e),
        }
    }

    let mut dec = FrameDecoder::new(&limits, compat);
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
    /// A schema-typed body: program and procedure indices (folded onto the schema's lists) and the
    /// role (args, ret, msg); the value itself is generated from the rest of the input.
    Typed(u8, u16, u8),
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
    let mut u = Unstructured::new(data);
    let Ok(m) = ArbMessage::arbitrary(&mut u) else {
        return;
    };
    if let ArbBody::Typed(prog, procedure, role) = m.body {
        return roundtrip_typed(prog, procedure, role, m.serial, &mut u);
    }
    use MessageStatus as S;
    use MessageType as T;
    let limits = fuzz_limits(3)
        .to_builder()
        .string_max(256)
        .build()
        .expect("coherent limits");
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
        ArbBody::Typed(..) => unreachable!("handled above"),
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
            let too_many = nfds.is_some_and(|n| n > limits.fds_max());
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
    let mut dec = FrameDecoder::new(&limits, Compat::Strict);
    dec.feed(&bytes);
    let f = dec.next_frame().expect("decoder").expect("a whole frame");
    assert_eq!(f.bytes(), &bytes[..]);
}

/// An owned value tree that both libvirt's C structs and our decoders map to, for comparison.
///
/// Mapping: `int`/`hyper`/enum/bool → `I`; `unsigned`/`unsigned hyper` → `U`; `double` → `D` (bits);
/// string and opaque → `Bytes`; optional → `Opt`; array → `List`; struct → `Rec` (fields in order);
/// union → `Rec([discriminant, arm])` (`Rec([discriminant])` for a void arm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OValue {
    /// Signed integer.
    I(i64),
    /// Unsigned integer.
    U(u64),
    /// A double's bits.
    D(u64),
    /// String or opaque bytes.
    Bytes(Vec<u8>),
    /// Optional.
    Opt(Option<Box<OValue>>),
    /// Array.
    List(Vec<OValue>),
    /// Struct or union.
    Rec(Vec<OValue>),
}

impl OValue {
    /// Strings as libvirt's C code sees them: cut at the first NUL (`xdr_string` keeps the bytes, but
    /// every consumer reads a C string). Applied to both sides before comparing.
    pub fn c_strings(self) -> OValue {
        match self {
            OValue::Bytes(mut b) => {
                if let Some(n) = b.iter().position(|&c| c == 0) {
                    b.truncate(n);
                }
                OValue::Bytes(b)
            }
            OValue::Opt(o) => OValue::Opt(o.map(|v| Box::new(v.c_strings()))),
            OValue::List(v) => OValue::List(v.into_iter().map(OValue::c_strings).collect()),
            OValue::Rec(v) => OValue::Rec(v.into_iter().map(OValue::c_strings).collect()),
            v => v,
        }
    }

    /// The error body as an `OValue`.
    pub fn from_error(e: &ErrorBody<'_>) -> OValue {
        let s = |b: Option<&[u8]>| OValue::Opt(b.map(|b| Box::new(OValue::Bytes(b.to_vec()))));
        OValue::Rec(vec![
            OValue::I(e.code as i64),
            OValue::I(e.domain as i64),
            s(e.message),
            OValue::I(e.level as i64),
            OValue::Opt(e.dom.map(|d| {
                Box::new(OValue::Rec(vec![
                    OValue::Bytes(d.name.to_vec()),
                    OValue::Bytes(d.uuid.to_vec()),
                    OValue::I(d.id as i64),
                ]))
            })),
            s(e.str1),
            s(e.str2),
            s(e.str3),
            OValue::I(e.int1 as i64),
            OValue::I(e.int2 as i64),
            OValue::Opt(e.net.map(|n| {
                Box::new(OValue::Rec(vec![
                    OValue::Bytes(n.name.to_vec()),
                    OValue::Bytes(n.uuid.to_vec()),
                ]))
            })),
        ])
    }

    /// A schema value as an `OValue` (the mapping in the type's docs).
    pub fn from_value(v: &Value<'_>) -> OValue {
        match v {
            Value::Void => OValue::Rec(Vec::new()),
            Value::Int(i) => OValue::I(*i as i64),
            Value::UInt(u) => OValue::U(*u as u64),
            Value::Hyper(i) => OValue::I(*i),
            Value::UHyper(u) => OValue::U(*u),
            Value::Float(f) => OValue::D((*f as f64).to_bits()),
            Value::Double(d) => OValue::D(d.to_bits()),
            Value::Bool(b) => OValue::I(*b as i64),
            Value::Enum { value, .. } => OValue::I(*value as i64),
            Value::String(b) | Value::Opaque(b) => OValue::Bytes(b.to_vec()),
            Value::Array(items) => OValue::List(items.iter().map(OValue::from_value).collect()),
            Value::Struct(fields) => {
                OValue::Rec(fields.iter().map(|(_, v)| OValue::from_value(v)).collect())
            }
            Value::Union {
                discriminant,
                value,
                ..
            } => match value.as_ref() {
                Value::Void => OValue::Rec(vec![OValue::from_value(discriminant)]),
                v => OValue::Rec(vec![
                    OValue::from_value(discriminant),
                    OValue::from_value(v),
                ]),
            },
            Value::Optional(o) => OValue::Opt(o.as_ref().map(|v| Box::new(OValue::from_value(v)))),
        }
    }

    /// A hole as an `OValue`.
    pub fn from_hole(h: &StreamHole) -> OValue {
        OValue::Rec(vec![OValue::I(h.length), OValue::U(h.flags as u64)])
    }
}

/// What libvirt's own decoder made of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtVerdict {
    /// `virNetMessageDecodeLength` failed.
    LengthRejected,
    /// The length word is fine but the input holds fewer bytes than it says.
    Incomplete,
    /// `virNetMessageDecodeHeader` failed.
    HeaderRejected,
    /// `virNetMessageDecodeNumFDs` failed (only called for `*_WITH_FDS`).
    FdsRejected,
    /// Header (and FD count) decoded; `body` is `None` when the oracle does not decode this body.
    Frame {
        /// The header.
        header: Header,
        /// The FD count of `*_WITH_FDS` frames.
        nfds: Option<u32>,
        /// What `virNetMessageDecodePayload` made of the body, if the oracle decodes this kind.
        body: Option<TheirBody>,
    },
}

/// libvirt's verdict on a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TheirBody {
    /// The filter failed.
    Rejected,
    /// The filter succeeded; the oracle does not map this struct's value (accept/reject only).
    Accepted,
    /// The filter succeeded, with the value it decoded.
    Value(OValue),
}

/// libvirt's decoder, seen from the harness (implemented over FFI by `fuzz/libvirt-oracle`).
pub trait LibvirtOracle {
    /// Decode one frame (the input may be shorter or longer than its length word).
    fn decode(&self, frame: &[u8]) -> LibvirtVerdict;
}

/// Largest frame the differential target pads a short input up to (bigger claims compare only the
/// length verdict).
pub const DIFFERENTIAL_PAD_MAX: usize = 1 << 16;

/// Target `differential_libvirt`: the same bytes through libvirt.so's decoder and ours (libvirt-
/// compatible mode, current limits). Oracles: same accept/reject at each stage (length, header, FD
/// count, payload), same header fields and FD count, same body values (strings compared as C strings).
pub fn differential_libvirt(data: &[u8], oracle: &dyn LibvirtOracle) {
    let limits = Limits::default();
    // Complete a short frame with zeros so both sides judge whole frames.
    let mut buf = data.to_vec();
    if let Some(claimed) = Header::peek(&buf).len.map(|l| l as usize)
        && claimed > buf.len()
        && claimed <= DIFFERENTIAL_PAD_MAX
    {
        buf.resize(claimed, 0);
    }
    let theirs = oracle.decode(&buf);
    let ours = parse_frame(&buf, &limits, Compat::Libvirt);
    match (&theirs, &ours) {
        (LibvirtVerdict::LengthRejected, Err(e)) => assert!(
            e.path_string() == "length",
            "libvirt rejected the length word, we failed elsewhere: {e}"
        ),
        (LibvirtVerdict::HeaderRejected, Err(e)) => assert!(
            e.path_string().starts_with("header"),
            "libvirt rejected the header, we failed elsewhere: {e}"
        ),
        (LibvirtVerdict::FdsRejected, Err(e)) => assert!(
            e.path_string() == "nfds",
            "libvirt rejected the FD count, we failed elsewhere: {e}"
        ),
        (LibvirtVerdict::Incomplete, Ok(Parsed::Incomplete { .. })) => {}
        (LibvirtVerdict::Incomplete, Err(e)) if buf.len() < 4 || e.path_string() == "nfds" => {}
        (
            LibvirtVerdict::Frame { header, nfds, body },
            Ok(Parsed::Complete { value: frame, .. }),
        ) => {
            assert_eq!(&frame.header, header, "header fields differ");
            assert_eq!(&frame.nfds, nfds, "FD count differs");
            let Some(their_body) = body else { return };
            let mut our_error: Option<Error> = None;
            let our_body = match Message::decode(*frame, &limits, Compat::Libvirt) {
                Ok(Message {
                    body: Body::Error(e),
                    ..
                }) => Some(Some(OValue::from_error(&e))),
                Ok(Message {
                    body: Body::StreamHole(h),
                    ..
                }) => Some(Some(OValue::from_hole(&h))),
                Ok(Message {
                    body: Body::Procedure { .. },
                    ..
                }) => Some(
                    match schema().decode_body(
                        &frame.header,
                        frame.payload,
                        frame.payload_offset() as u64,
                        &limits,
                        Compat::Libvirt,
                    ) {
                        Ok(v) => Some(OValue::from_value(&v)),
                        Err(e) => {
                            our_error = Some(e);
                            None
                        }
                    },
                ),
                Ok(_) => None,
                Err(e)
                    if e.path_string().starts_with("error")
                        || e.path_string().starts_with("hole") =>
                {
                    our_error = Some(e);
                    Some(None)
                }
                Err(e) => panic!("our body decode failed outside the body: {e}"),
            };
            let Some(our_body) = our_body else { return };
            match (their_body, our_body) {
                (TheirBody::Rejected, None) | (TheirBody::Accepted, Some(_)) => {}
                (TheirBody::Value(a), Some(b)) => assert_eq!(
                    a.clone().c_strings(),
                    b.c_strings(),
                    "body values differ for {}",
                    frame.header
                ),
                (a, b) => panic!(
                    "libvirt {} the body of {}, we {}",
                    if matches!(a, TheirBody::Rejected) {
                        "rejected"
                    } else {
                        "accepted"
                    },
                    frame.header,
                    match b {
                        Some(_) => "accepted it".to_string(),
                        None => format!(
                            "rejected it: {}",
                            our_error.map_or_else(String::new, |e| e.to_string())
                        ),
                    }
                ),
            }
        }
        (t, o) => panic!("libvirt says {t:?}, we say {o:?}"),
    }
}

/// Split a `body` / `validate_vs_decode` input: `data[0]` picks limits, bytes 1..25 are a header,
/// the rest is the payload. Unless `data[0]` has bit 7 (resp. 6) set, an unknown program (resp.
/// procedure) is folded onto a known one, so most inputs reach a real body type.
fn body_input(data: &[u8]) -> Option<(Header, &[u8], Limits)> {
    if data.len() < 25 {
        return None;
    }
    let s = schema();
    let mut h = Header::decode(&mut Reader::new(&data[1..25], Compat::Libvirt)).ok()?;
    let programs = s.programs();
    if data[0] & 0x80 == 0 && s.program(h.prog, h.vers).is_none() && !programs.is_empty() {
        let p = &programs[h.prog as usize % programs.len()];
        h.prog = p.number();
        h.vers = p.version();
    }
    if data[0] & 0x40 == 0
        && let Some(p) = s.program(h.prog, h.vers)
        && p.procedure(h.procedure).is_none()
        && !p.procedure_list().is_empty()
    {
        let list = p.procedure_list();
        h.procedure = list[h.procedure.unsigned_abs() as usize % list.len()].number;
    }
    let mut limits = fuzz_limits(data[0]);
    if data[0] & 0x20 != 0 {
        limits = limits
            .to_builder()
            .nesting_max(3)
            .build()
            .expect("coherent limits");
    }
    Some((h, &data[25..], limits))
}

/// Target `body`: a (program, procedure, type, status, payload) through the schema codec in both
/// modes. Oracles: strict acceptance implies libvirt acceptance; a strictly accepted body re-encodes
/// to the same bytes (from either mode's value); a libvirt-accepted body that encodes gives a
/// canonical encoding that strict decoding accepts and that re-encodes identically.
pub fn body(data: &[u8]) {
    let Some((h, payload, limits)) = body_input(data) else {
        return;
    };
    let s = schema();
    let base = 28;
    let strict = s.decode_body(&h, payload, base, &limits, Compat::Strict);
    let lib = s.decode_body(&h, payload, base, &limits, Compat::Libvirt);
    if let Ok(v) = &strict {
        let Ok(lv) = &lib else {
            panic!(
                "strict accepted, libvirt mode refused: {}",
                lib.unwrap_err()
            )
        };
        for (mode, value) in [("strict", v), ("libvirt", lv)] {
            let mut out = Vec::new();
            s.encode_body(&h, value, &mut out, &limits)
                .unwrap_or_else(|e| panic!("{mode} value of a strict body does not encode: {e}"));
            assert_eq!(out, payload, "{mode} value re-encodes differently");
        }
    }
    if let Ok(v) = &lib {
        let mut canon = Vec::new();
        if s.encode_body(&h, v, &mut canon, &limits).is_ok() {
            let v2 = s
                .decode_body(&h, &canon, base, &limits, Compat::Strict)
                .unwrap_or_else(|e| panic!("canonical encoding is not strict: {e}"));
            let mut again = Vec::new();
            s.encode_body(&h, &v2, &mut again, &limits)
                .expect("a strict value encodes");
            assert_eq!(canon, again, "canonical encoding is not stable");
        }
    }
}

/// Target `validate_vs_decode`: the validate-only walk and the full decoder give the same verdict
/// (the same error, at the same offset and path) for every input, in both modes.
pub fn validate_vs_decode(data: &[u8]) {
    let Some((h, payload, limits)) = body_input(data) else {
        return;
    };
    let s = schema();
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = s.decode_body(&h, payload, 28, &limits, compat).map(|_| ());
        let v = s.validate_body(&h, payload, 28, &limits, compat);
        assert_eq!(d, v, "validate and decode disagree ({})", compat.name());
    }
}

/// One step of a [`StreamScript`].
#[derive(Debug, Clone, Arbitrary)]
pub enum StreamStep {
    /// `len % 1024` bytes of value `fill` on stream `stream % 4` (16 KiB a script at most).
    Data {
        /// Stream index.
        stream: u8,
        /// Bytes.
        len: u16,
        /// Their value.
        fill: u8,
    },
    /// A hole of `len` bytes (refused by the splitter unless the stream is sparse and len > 0, as
    /// libvirt refuses holes of length 0).
    Hole {
        /// Stream index.
        stream: u8,
        /// Hole length.
        len: u16,
    },
    /// The sender's end of the stream (finish from a client, EOF from a server).
    End {
        /// Stream index.
        stream: u8,
    },
}

/// Input of the `stream` target: interleaved streams sent by one side and received by the other.
#[derive(Debug, Clone, Arbitrary)]
pub struct StreamScript {
    /// True: the server sends (downloads); false: the client sends (uploads).
    pub server_sends: bool,
    /// Which of the four streams are sparse.
    pub sparse: [bool; 4],
    /// Chunk size selector (1..=2048 bytes).
    pub chunk: u16,
    /// Reassembler buffer cap in 16-byte units (0 = 0 bytes).
    pub cap: u16,
    /// How the wire is cut into reads (cycled; each 1..=4096 bytes).
    pub reads: Vec<u16>,
    /// The operations, in send order.
    pub steps: Vec<StreamStep>,
}

/// Target `stream`: an `Arbitrary` [`StreamScript`] → one splitter per stream → frames on one wire
/// → read in arbitrary pieces by a [`FrameDecoder`] → a reassembler (assembling) on the other side.
/// Oracles: the splitter refuses exactly holes on non-sparse streams, zero-length holes and anything
/// after the end; every frame is within the limits and the chunk; the reassembler's memory never
/// passes its cap and it refuses only with the buffer cap, and never while the data sent stays well
/// within it; when nothing was refused, each stream's data and holes come back exactly and every
/// ended stream is seen as ended.
pub fn stream(data: &[u8]) {
    use crate::stream::{
        Assembled, HoleAt, Reassembler, Side, StreamError, StreamKey, StreamOptions, StreamSplitter,
    };
    let Ok(script) = StreamScript::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let sender = if script.server_sends {
        Side::Server
    } else {
        Side::Client
    };
    let cap = script.cap as u64 * 16;
    let limits = Limits::builder()
        .message_max(24 + 4096)
        .stream_chunk(2048)
        .stream_buffer_max(cap)
        .streams_max(4)
        .build()
        .expect("coherent limits");
    let chunk = 1 + script.chunk as usize % 2048;
    let keys: Vec<StreamKey> = (0..4u32)
        .map(|i| StreamKey::new(header::REMOTE_PROGRAM, 1, 209, 10 + i))
        .collect();
    let mut splitters: Vec<StreamSplitter> = keys
        .iter()
        .zip(script.sparse)
        .map(|(k, sparse)| {
            StreamSplitter::new(*k, sender, &limits)
                .and_then(|s| s.with_chunk(chunk, &limits))
                .map(|s| s.sparse(sparse))
                .expect("chunk within limits")
        })
        .collect();
    let mut model: Vec<Assembled> = vec![Assembled::default(); 4];
    let mut ended = [false; 4];
    let mut wire = Vec::new();
    let mut frames_sent = 0usize;
    for step in &script.steps {
        let (i, packets) = match *step {
            StreamStep::Data { stream, len, fill } => {
                let i = stream as usize % 4;
                // At most 1 KiB a step and 16 KiB a script: chunks of 1 byte stay reachable without
                // turning one input into tens of thousands of frames.
                let budget =
                    (16usize << 10).saturating_sub(model.iter().map(|m| m.data.len()).sum());
                let bytes = vec![fill; (len as usize % 1024).min(budget)];
                let r = splitters[i].data(&bytes).map(|p| {
                    p.map(|p| p.to_bytes(&limits).expect("data packet encodes"))
                        .collect::<Vec<_>>()
                });
                match (r, ended[i]) {
                    (Ok(p), false) => {
                        assert_eq!(
                            p.len(),
                            bytes.len().div_ceil(chunk),
                            "ceil(len / chunk) frames"
                        );
                        model[i].data.extend_from_slice(&bytes);
                        (i, p)
                    }
                    (Err(_), true) => continue,
                    (r, e) => panic!("data on stream {i} (ended {e}): {r:?}"),
                }
            }
            StreamStep::Hole { stream, len } => {
                let i = stream as usize % 4;
                let r = splitters[i].hole(len as i64);
                let legal = script.sparse[i] && len > 0 && !ended[i];
                match r {
                    Ok(p) if legal => {
                        let offset = model[i].data.len() as u64;
                        model[i].holes.push(HoleAt {
                            offset,
                            length: len as u64,
                        });
                        (i, vec![p.to_bytes(&limits).expect("hole encodes")])
                    }
                    Err(_) if !legal => continue,
                    r => panic!(
                        "hole of {len} on stream {i} (sparse {}, ended {}): {r:?}",
                        script.sparse[i], ended[i]
                    ),
                }
            }
            StreamStep::End { stream } => {
                let i = stream as usize % 4;
                match (splitters[i].end(), ended[i]) {
                    (Ok(p), false) => {
                        ended[i] = true;
                        (i, vec![p.to_bytes(&limits).expect("end encodes")])
                    }
                    (Err(_), true) => continue,
                    (r, e) => panic!("end of stream {i} (ended {e}): {r:?}"),
                }
            }
        };
        let _ = i;
        for p in packets {
            assert!(p.len() as u64 <= limits.frame_max(), "frame over the limit");
            assert!(
                p.len() <= 28 + chunk.max(StreamHole::LEN),
                "frame over the chunk"
            );
            frames_sent += 1;
            wire.extend_from_slice(&p);
        }
    }

    let mut rx = Reassembler::new(sender.peer(), &limits, Compat::Strict);
    for (k, sparse) in keys.iter().zip(script.sparse) {
        rx.open(*k, StreamOptions::new().sparse(sparse).assemble(true))
            .expect("four streams fit streams_max");
    }
    let mut dec = FrameDecoder::new(&limits, Compat::Strict);
    let (mut at, mut n, mut refused) = (0usize, 0usize, None::<StreamError>);
    let mut frames_got = 0usize;
    'wire: while at < wire.len() {
        let step = if script.reads.is_empty() {
            wire.len()
        } else {
            1 + script.reads[n % script.reads.len()] as usize % 4096
        };
        n += 1;
        let end = (at + step).min(wire.len());
        dec.feed(&wire[at..end]);
        at = end;
        while let Some(f) = dec.next_frame().expect("own frames decode") {
            frames_got += 1;
            match rx.receive(f.frame()) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a stream frame was not taken as one"),
                Err(e) => {
                    refused = Some(e);
                    break 'wire;
                }
            }
            assert!(
                rx.memory() <= cap,
                "reassembler memory {} over cap {cap}",
                rx.memory()
            );
        }
    }
    let sent_bytes: u64 = model
        .iter()
        .map(|m| m.data.len() as u64 + 16 * m.holes.len() as u64)
        .sum();
    if let Some(e) = refused {
        assert_eq!(
            e.limit(),
            Some(LimitKind::StreamBuffer),
            "refused a valid stream for another reason: {e}"
        );
        assert!(
            sent_bytes * 2 > cap,
            "refused {sent_bytes} bytes with a cap of {cap}: {e}"
        );
        return;
    }
    assert_eq!(frames_got, frames_sent, "frame count");
    for (i, k) in keys.iter().enumerate() {
        let got = rx.take_assembled(*k).expect("stream is open");
        let dense = |a: &Assembled| a.to_dense(1 << 24).expect("dense form");
        assert_eq!(
            dense(&got),
            dense(&model[i]),
            "stream {i} data/holes differ"
        );
        assert_eq!(got.data, model[i].data, "stream {i} data differs");
        let status = rx.status(*k).expect("stream is open");
        assert_eq!(status.received_end.is_some(), ended[i], "stream {i} end");
    }
}

/// Target `stream_reassembly`: a byte program of operations against one reassembler (see
/// [`crate::stream::fuzz::reassembly`]).
pub fn stream_reassembly(data: &[u8]) {
    crate::stream::fuzz::reassembly(data)
}

/// Zeros for fixed-length opaques when the input runs out.
static ZEROS: [u8; 4096] = [0; 4096];

/// Elements and nesting a generated value may use (keeps executions fast).
struct Budget {
    elems: u32,
}

/// A strictly valid value of type `ty`, driven by `u`: every bound respected, enums members,
/// small ints in range, union discriminants naming an arm. Byte data borrows the input.
fn arbitrary_value<'a>(
    s: &'static Schema,
    ty: crate::schema::TypeId,
    u: &mut Unstructured<'a>,
    budget: &mut Budget,
    depth: u32,
) -> arbitrary::Result<Value<'a>> {
    use crate::schema::Type;
    let deep = depth > 16;
    Ok(match s.ty(ty) {
        Type::Void => Value::Void,
        Type::Int => Value::Int(u.arbitrary()?),
        Type::UInt => Value::UInt(u.arbitrary()?),
        Type::Hyper => Value::Hyper(u.arbitrary()?),
        Type::UHyper => Value::UHyper(u.arbitrary()?),
        Type::Float => Value::Float(f32::from_bits(u.arbitrary()?)),
        Type::Double => Value::Double(f64::from_bits(u.arbitrary()?)),
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::Small(k) => {
            let (lo, hi) = k.range();
            let v = u.int_in_range(lo..=hi)?;
            if k.is_unsigned() {
                Value::UInt(v as u32)
            } else {
                Value::Int(v as i32)
            }
        }
        Type::Enum(e) => match e.members.is_empty() {
            true => Value::Enum {
                value: 0,
                name: None,
            },
            false => {
                let (name, value) = u.choose(&e.members)?;
                Value::Enum {
                    value: *value,
                    name: Some(name.as_str()),
                }
            }
        },
        Type::String { max } => {
            let n = u.int_in_range(0..=(*max).min(64))? as usize;
            Value::String(u.bytes(n.min(u.len()))?)
        }
        Type::Opaque { max } => {
            let n = u.int_in_range(0..=(*max).min(64))? as usize;
            Value::Opaque(u.bytes(n.min(u.len()))?)
        }
        Type::OpaqueFixed { len } => {
            let n = *len as usize;
            Value::Opaque(match u.bytes(n) {
                Ok(b) => b,
                Err(_) if n <= ZEROS.len() => &ZEROS[..n],
                Err(e) => return Err(e),
            })
        }
        Type::Array { elem, max } => {
            let cap = if deep {
                0
            } else {
                (*max).min(8).min(budget.elems)
            };
            let n = u.int_in_range(0..=cap)?;
            budget.elems -= n;
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(arbitrary_value(s, *elem, u, budget, depth + 1)?);
            }
            Value::Array(v)
        }
        Type::FixedArray { elem, len } => {
            budget.elems = budget.elems.saturating_sub(*len);
            let mut v = Vec::with_capacity((*len).min(4096) as usize);
            for _ in 0..*len {
                v.push(arbitrary_value(s, *elem, u, budget, depth + 1)?);
            }
            Value::Array(v)
        }
        Type::Optional(t) => {
            if !deep && budget.elems > 0 && u.arbitrary::<bool>()? {
                budget.elems -= 1;
                Value::Optional(Some(Box::new(arbitrary_value(
                    s,
                    *t,
                    u,
                    budget,
                    depth + 1,
                )?)))
            } else {
                Value::Optional(None)
            }
        }
        Type::Struct(st) => {
            let mut fields = Vec::with_capacity(st.fields.len());
            for f in &st.fields {
                fields.push((
                    f.name.as_str(),
                    arbitrary_value(s, f.ty, u, budget, depth + 1)?,
                ));
            }
            Value::Struct(fields)
        }
        Type::Union(un) => {
            // Discriminant values a strict decoder accepts for each arm: its cases, or for the
            // default arm any value no case names (an enum member, for enum discriminants).
            let disc_ty = s.ty(un.discriminant.ty);
            let named = |v: i64| un.arms.iter().any(|a| a.cases.contains(&v));
            let free = match disc_ty {
                Type::Enum(e) => e.members.iter().map(|m| m.1 as i64).find(|v| !named(*v)),
                Type::Bool => [0, 1].into_iter().find(|v| !named(*v)),
                _ => (0..).take(64).find(|v| !named(*v)),
            };
            let choices: Vec<(usize, i64)> = un
                .arms
                .iter()
                .enumerate()
                .flat_map(|(i, a)| {
                    let keys: Vec<i64> = if a.cases.is_empty() {
                        free.into_iter().collect()
                    } else {
                        a.cases.clone()
                    };
                    keys.into_iter().map(move |k| (i, k))
                })
                .collect();
            let &(ai, key) = u.choose(&choices)?;
            let arm = &un.arms[ai];
            let discriminant = match disc_ty {
                Type::Enum(e) => Value::Enum {
                    value: key as i32,
                    name: e.member_name(key as i32),
                },
                Type::Bool => Value::Bool(key != 0),
                Type::UInt => Value::UInt(key as u32),
                Type::Small(k) if k.is_unsigned() => Value::UInt(key as u32),
                _ => Value::Int(key as i32),
            };
            Value::Union {
                discriminant: Box::new(discriminant),
                arm: arm.name.as_deref(),
                value: Box::new(arbitrary_value(s, arm.ty, u, budget, depth + 1)?),
            }
        }
    })
}

/// The typed half of `roundtrip_structured`: a generated value for one procedure body → encode →
/// frame → decode (strict) → the same value, and the same bytes again.
fn roundtrip_typed(prog: u8, procedure: u16, role: u8, serial: u32, u: &mut Unstructured<'_>) {
    let s = schema();
    let programs = s.programs();
    let p = &programs[prog as usize % programs.len()];
    let procs = p.procedure_list();
    if procs.is_empty() {
        return;
    }
    let pr = &procs[procedure as usize % procs.len()];
    let role = BodyRole::ALL[role as usize % BodyRole::ALL.len()];
    let h = Header::new(
        p.number(),
        p.version(),
        pr.number,
        role.message_type(),
        serial,
        MessageStatus::Ok,
    );
    let value = match pr.body(role) {
        Some((_, ty)) => {
            let mut budget = Budget { elems: 256 };
            match arbitrary_value(s, ty, u, &mut budget, 0) {
                Ok(v) => v,
                Err(_) => return,
            }
        }
        None => Value::Void,
    };
    let limits = Limits::default();
    let mut payload = Vec::new();
    s.encode_body(&h, &value, &mut payload, &limits)
        .unwrap_or_else(|e| panic!("generated value for {} does not encode: {e}", pr.name));
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, &h, None, &payload, &limits).expect("small frame encodes");
    let frame = Frame::decode(&bytes, &limits, Compat::Strict).expect("own frame decodes");
    let back = s
        .decode_body(&frame.header, frame.payload, 28, &limits, Compat::Strict)
        .unwrap_or_else(|e| panic!("{} body does not decode strictly: {e}", pr.name));
    assert_eq!(
        OValue::from_value(&back),
        OValue::from_value(&value),
        "{} value differs after a round trip",
        pr.name
    );
    let mut again = Vec::new();
    s.encode_body(&h, &back, &mut again, &limits)
        .expect("decoded value encodes");
    assert_eq!(again, payload, "{} re-encoding differs", pr.name);
}
