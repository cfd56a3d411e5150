//! Properties of the protocol core: round trips, chunking, limits per profile, strict vs libvirt.

use proptest::prelude::*;
use virtwire_protocol::body::{ErrorDomain, ErrorNetwork};
use virtwire_protocol::header::{KEEPALIVE_PROGRAM, PROGRAMS};
use virtwire_protocol::limits::MIN_FRAME;
use virtwire_protocol::*;

/// Small limits so generated frames reach the edges without huge buffers.
fn small_limits() -> Limits {
    Limits::builder()
        .message_max(4096)
        .stream_chunk(1024)
        .string_max(512)
        .build()
        .unwrap()
}

fn any_prog() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => proptest::sample::select(PROGRAMS.iter().map(|p| p.number).collect::<Vec<_>>()),
        1 => any::<u32>(),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(bytes(max))
}

/// An owned error body (ErrorBody borrows).
#[derive(Debug, Clone)]
struct OwnedError {
    code: i32,
    domain: i32,
    level: i32,
    int1: i32,
    int2: i32,
    message: Option<Vec<u8>>,
    strs: [Option<Vec<u8>>; 3],
    dom: Option<(Vec<u8>, [u8; 16], i32)>,
    net: Option<(Vec<u8>, [u8; 16])>,
}

impl OwnedError {
    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.code,
            domain: self.domain,
            message: self.message.as_deref(),
            level: self.level,
            dom: self.dom.as_ref().map(|(n, u, id)| ErrorDomain {
                name: n,
                uuid: *u,
                id: *id,
            }),
            str1: self.strs[0].as_deref(),
            str2: self.strs[1].as_deref(),
            str3: self.strs[2].as_deref(),
            int1: self.int1,
            int2: self.int2,
            net: self
                .net
                .as_ref()
                .map(|(n, u)| ErrorNetwork { name: n, uuid: *u }),
        }
    }
}

fn any_error() -> impl Strategy<Value = OwnedError> {
    (
        any::<[i32; 5]>(),
        opt_bytes(64),
        [opt_bytes(16), opt_bytes(16), opt_bytes(16)],
        proptest::option::of((bytes(16), any::<[u8; 16]>(), any::<i32>())),
        proptest::option::of((bytes(16), any::<[u8; 16]>())),
    )
        .prop_map(|(n, message, strs, dom, net)| OwnedError {
            code: n[0],
            domain: n[1],
            level: n[2],
            int1: n[3],
            int2: n[4],
            message,
            strs,
            dom,
            net,
        })
}

/// A valid (type, status, payload) combination, with the payload encoded.
fn any_valid_message() -> impl Strategy<Value = (Header, Option<u32>, Vec<u8>)> {
    let l = small_limits();
    let max_payload = l.payload_max() as usize - 4 - 200;
    (
        any_prog(),
        any::<u32>(),
        any::<i32>(),
        any::<u32>(),
        0u8..9,
        0u32..=32,
        bytes(max_payload.min(600)),
        any_error(),
        any::<(i64, u32)>(),
    )
        .prop_map(
            move |(prog, vers, procedure, serial, which, nfds, payload, err, hole)| {
                use MessageStatus as S;
                use MessageType as T;
                let (t, s, nfds, payload) = match which {
                    0 => (T::Call, S::Ok, None, payload),
                    1 => (T::CallWithFds, S::Ok, Some(nfds), payload),
                    2 => (T::Reply, S::Ok, None, payload),
                    3 => (T::ReplyWithFds, S::Ok, Some(nfds), payload),
                    4 => (T::Reply, S::Error, None, err.body().to_bytes(&l).unwrap()),
                    5 => (T::Stream, S::Continue, None, payload),
                    6 => (T::Stream, S::Ok, None, Vec::new()),
                    7 => (
                        T::StreamHole,
                        S::Continue,
                        None,
                        StreamHole {
                            length: hole.0,
                            flags: hole.1,
                        }
                        .to_bytes()
                        .to_vec(),
                    ),
                    _ => (T::Stream, S::Error, None, err.body().to_bytes(&l).unwrap()),
                };
                let prog = if prog == KEEPALIVE_PROGRAM {
                    prog ^ 1
                } else {
                    prog
                };
                (
                    Header::new(prog, vers, procedure, t, serial, s),
                    nfds,
                    payload,
                )
            },
        )
}

fn encode(h: &Header, nfds: Option<u32>, payload: &[u8], l: &Limits) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, h, nfds, payload, l).unwrap();
    out
}

fn split_points(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..40).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn feed_chunked(bytes: &[u8], cuts: &[usize], l: Limits) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut d = FrameDecoder::new(&l, Compat::Strict);
    let mut out = Vec::new();
    let mut prev = 0;
    let mut err = None;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        d.feed(&bytes[prev..c]);
        prev = c;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(d.capacity() <= bytes.len());
                    out.push(f.into_bytes())
                }
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if err.is_some() {
            break;
        }
    }
    (out, err)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// encode → decode → encode is byte-identical in strict mode, for every valid (type, status).
    #[test]
    fn message_round_trip((h, nfds, payload) in any_valid_message()) {
        let l = small_limits();
        let bytes = encode(&h, nfds, &payload, &l);
        let f = Frame::decode(&bytes, &l, Compat::Strict).unwrap();
        prop_assert_eq!(f.header, h);
        prop_assert_eq!(f.nfds, nfds);
        let m = Message::decode(f, &l, Compat::Strict).unwrap();
        let mut again = Vec::new();
        m.encode(&mut again, &l).unwrap();
        prop_assert_eq!(&again, &bytes);
        // The libvirt-compatible decoder accepts everything strict accepts, with the same result.
        let ml = Message::decode(Frame::decode(&bytes, &l, Compat::Libvirt).unwrap(), &l, Compat::Libvirt).unwrap();
        prop_assert_eq!(ml.body, m.body);
    }

    /// Headers with any raw values: libvirt mode round-trips them all; strict accepts exactly the known ones.
    #[test]
    fn header_round_trip(prog in any::<u32>(), vers in any::<u32>(), procedure in any::<i32>(),
                         t in prop_oneof![0i32..7, any::<i32>()], serial in any::<u32>(),
                         s in prop_oneof![0i32..3, any::<i32>()]) {
        let h = Header::new(prog, vers, procedure, MessageType::from_raw(t), serial, MessageStatus::from_raw(s));
        let b = h.to_bytes();
        let d = Header::decode(&mut Reader::new(&b, Compat::Libvirt)).unwrap();
        prop_assert_eq!(d, h);
        prop_assert_eq!(d.to_bytes(), b);
        let strict = Header::decode(&mut Reader::new(&b, Compat::Strict));
        prop_assert_eq!(strict.is_ok(), (0..7).contains(&t) && (0..3).contains(&s));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any chunking of the same byte stream yields the same frames as one-shot decoding, and the same
    /// error at the same offset when the stream ends in a bad frame.
    #[test]
    fn chunking_does_not_matter(msgs in proptest::collection::vec(any_valid_message(), 1..6),
                                tail in prop_oneof![Just(Vec::new()), bytes(40)],
                                seed_cuts in split_points(1 << 16)) {
        let l = small_limits();
        let mut stream = Vec::new();
        for (h, n, p) in &msgs {
            stream.extend(encode(h, *n, p, &l));
        }
        stream.extend(&tail);
        let cuts: Vec<usize> = seed_cuts.iter().map(|c| c % (stream.len() + 1)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let mut one_shot = Vec::new();
        let mut one_shot_err = None;
        for r in frames(&stream, &l, Compat::Strict) {
            match r {
                Ok((_, f)) => one_shot.push(f.bytes.to_vec()),
                Err(e) => one_shot_err = Some(e),
            }
        }
        let (chunked, err) = feed_chunked(&stream, &cuts, l);
        prop_assert_eq!(&chunked, &one_shot);
        prop_assert!(chunked.len() >= msgs.len());
        match (err, one_shot_err) {
            (None, None) => {}
            // A tail that is merely incomplete is an error for frames() but "need more" for the decoder.
            (None, Some(e)) => {
                let truncated = matches!(e.kind(), ErrorKind::Truncated { .. });
                prop_assert!(truncated && e.path_string().is_empty(), "one-shot error: {}", e);
            }
            (Some(a), Some(b)) => { prop_assert_eq!(a.kind(), b.kind()); prop_assert_eq!(a.offset(), b.offset()); }
            (Some(a), None) => prop_assert!(false, "decoder failed where one-shot did not: {}", a),
        }
    }

    /// Strict rejects and libvirt accepts: non-zero padding, bool = 2, unknown type/status, trailing bytes.
    #[test]
    fn strict_rejects_what_libvirt_accepts(err in any_error(), pad in 1u8..=255, b in 2u32..,
                                           t in 7i32.., s in 3i32.., extra in 1usize..16, case in 0u8..4) {
        let l = small_limits();
        let mut e = err.clone();
        let hdr = Header::new(0x2000_8086, 1, 1, MessageType::Reply, 1, MessageStatus::Error);
        let payload = match case {
            0 => {
                // Bad padding after the message string (its length must not be a multiple of 4).
                let mut m = e.message.take().unwrap_or_default();
                if m.len() % 4 == 0 { m.push(b'x'); }
                e.message = Some(m.clone());
                let mut p = e.body().to_bytes(&l).unwrap();
                let pad_at = 8 + 4 + 4 + m.len();
                p[pad_at] = pad;
                p
            }
            1 => {
                // The message's presence flag = b (a non-zero, non-one bool).
                e.message = Some(b"m".to_vec());
                let mut p = e.body().to_bytes(&l).unwrap();
                p[8..12].copy_from_slice(&b.to_be_bytes());
                p
            }
            2 => e.body().to_bytes(&l).unwrap(),
            _ => { let mut p = e.body().to_bytes(&l).unwrap(); p.extend(std::iter::repeat_n(0u8, extra)); p }
        };
        let mut h = hdr;
        if case == 2 {
            h.msg_type = MessageType::from_raw(t);
            h.status = MessageStatus::from_raw(s);
        }
        let bytes = FrameBuilder::new(h).payload(payload).build_unchecked();
        let strict = Frame::decode(&bytes, &l, Compat::Strict).and_then(|f| Message::decode(f, &l, Compat::Strict));
        let lib = Frame::decode(&bytes, &l, Compat::Libvirt).and_then(|f| Message::decode(f, &l, Compat::Libvirt));
        let se = strict.unwrap_err();
        prop_assert!(lib.is_ok(), "libvirt mode refused: {}", lib.unwrap_err());
        let expected = match case {
            0 => matches!(se.kind(), ErrorKind::NonZeroPadding { .. }),
            1 => matches!(se.kind(), ErrorKind::InvalidBool(_)),
            2 => matches!(se.kind(), ErrorKind::UnknownType(_)),
            _ => matches!(se.kind(), ErrorKind::TrailingBytes { .. }),
        };
        prop_assert!(expected, "case {}: {}", case, se);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Every length word up to u32::MAX: accepted iff 28 <= len <= message_max + 4; a decoder given just
    /// the header either waits (legal) or fails with the right class, and buffers only what it was fed.
    #[test]
    fn every_length_word(len in prop_oneof![any::<u32>(), 0u32..64, 262_100u32..262_200,
                                            16_777_200u32..16_777_240, 33_554_420u32..33_554_450,
                                            u32::MAX - 8..=u32::MAX],
                         profile in proptest::sample::select(Profile::NAMED.to_vec())) {
        let l = profile.limits();
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend(Header::call(0x2000_8086, 1, 1).to_bytes());
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        d.feed(&bytes);
        let r = d.next_frame();
        prop_assert!(d.capacity() <= bytes.len());
        let legal = len as u64 >= MIN_FRAME as u64 && len as u64 <= l.frame_max();
        match r {
            Ok(None) => { prop_assert!(legal && len > 28); prop_assert_eq!(d.needed(), len as usize - 28); }
            Ok(Some(f)) => { prop_assert_eq!(len, 28); prop_assert_eq!(f.bytes().len(), 28); }
            Err(e) => {
                prop_assert!(!legal);
                let want = if len < 28 { Category::Malformed } else { Category::OverLimit };
                prop_assert_eq!(e.category(), want);
                if (4..28).contains(&len) { prop_assert_eq!(e.path_string(), "header"); }
            }
        }
    }
}

/// For each profile: the largest legal frame decodes (built in full), one byte more is rejected.
#[test]
fn largest_legal_frame_per_profile() {
    for p in Profile::NAMED {
        let l = p.limits();
        let max_payload = l.payload_max() as usize;
        let h = Header::new(
            0x2000_8086,
            1,
            344,
            MessageType::Reply,
            9,
            MessageStatus::Ok,
        );
        let mut out = Vec::new();
        encode_frame(&mut out, &h, None, &vec![0u8; max_payload], &l).unwrap();
        assert_eq!(out.len() as u64, l.frame_max(), "{p}");
        let f = Frame::decode(&out, &l, Compat::Strict).unwrap();
        assert_eq!(f.payload.len(), max_payload);
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        for chunk in out.chunks(65_536) {
            d.feed(chunk);
        }
        assert_eq!(d.next_frame().unwrap().unwrap().bytes().len(), out.len());
        // One more byte: the encoder refuses, and the decoder refuses the length word alone.
        let e =
            encode_frame(&mut Vec::new(), &h, None, &vec![0u8; max_payload + 1], &l).unwrap_err();
        assert_eq!(e.category(), Category::OverLimit, "{p}");
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        d.feed(&((l.frame_max() + 1) as u32).to_be_bytes());
        let e = d.next_frame().unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::OverLimit { limit: LimitKind::Message, max, actual }
                if *max == l.frame_max() && *actual == l.frame_max() + 1),
            "{p}: {e}"
        );
        // WITH_FDS frames lose 4 bytes of payload to the count.
        let hf = Header {
            msg_type: MessageType::ReplyWithFds,
            ..h
        };
        assert!(
            encode_frame(
                &mut Vec::new(),
                &hf,
                Some(1),
                &vec![0u8; max_payload - 4],
                &l
            )
            .is_ok()
        );
        assert!(
            encode_frame(
                &mut Vec::new(),
                &hf,
                Some(1),
                &vec![0u8; max_payload - 3],
                &l
            )
            .is_err()
        );
    }
}

#[test]
fn every_short_length_fails_at_the_header() {
    let l = Limits::default();
    for len in 4u32..28 {
        let mut b = len.to_be_bytes().to_vec();
        b.resize(len as usize, 0);
        let e = Frame::decode(&b, &l, Compat::Libvirt).unwrap_err();
        assert_eq!(e.path_string(), "header", "len {len}");
        assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
        // The incremental decoder says so as soon as the 4 bytes are in.
        let mut d = FrameDecoder::new(&l, Compat::Libvirt);
        d.feed(&b[..4]);
        assert_eq!(d.next_frame().unwrap_err().path_string(), "header");
    }
}
