//! Behaviours no other test pinned down (each was a surviving cargo-mutants mutant,
//! scripts/mutants.sh): codec paths libvirt's own `.x` files never reach (`bool` and `float` fields,
//! `bool` and `char`/`short` union discriminants, a fixed array that ends exactly at the end of the
//! body), bytes after a frame, the body kind of an event MESSAGE, the length word of a frame, and
//! the numbers in a short frame's error. None needs libvirt's files: the schema here is a small
//! synthetic `.x`.

use virtwire_protocol::schema::{Schema, Value};
use virtwire_protocol::*;

/// Types libvirt's `.x` files do not use, in the forms rpcgen accepts.
const X: &str = "
const TRUE = 1;
const FALSE = 0;
union by_bool switch (bool b) {
case TRUE:
    int yes;
case FALSE:
    void;
};
union by_char switch (char c) {
case -1:
    hyper minus_one;
case 1:
    int one;
default:
    void;
};
union by_ushort switch (unsigned short u) {
case 65535:
    unsigned int top;
default:
    void;
};
struct odd {
    bool flag;
    float f;
    by_bool bb;
    by_char bc;
    by_ushort bu;
    int fixed[3];
};
";

fn schema() -> Schema {
    Schema::from_sources(&[("odd.x", X)]).expect("the synthetic .x compiles")
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn lim() -> Limits {
    Limits::default()
}

/// `odd` as bytes: flag TRUE, 1.5f, bb TRUE → 7, bc -1 → hyper -2, bu 65535 → 9, fixed [1, 2, 3].
fn odd_bytes() -> Vec<u8> {
    words(&[
        1,
        1.5f32.to_bits(),
        1,
        7,
        u32::MAX, // char -1
        u32::MAX,
        u32::MAX - 1, // hyper -2
        65535,
        9,
        1,
        2,
        3,
    ])
}

#[test]
fn bool_float_and_small_discriminants_decode_and_encode() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    let bytes = odd_bytes();
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("flag"), Some(&Value::Bool(true)));
    assert_eq!(v.at("f"), Some(&Value::Float(1.5)));
    let Some(Value::Union {
        discriminant, arm, ..
    }) = v.at("bb")
    else {
        panic!("bb: {v:?}")
    };
    assert_eq!((&**discriminant, *arm), (&Value::Bool(true), Some("yes")));
    assert_eq!(v.at("bb.yes"), Some(&Value::Int(7)));
    let Some(Value::Union { discriminant, .. }) = v.at("bc") else {
        panic!("bc: {v:?}")
    };
    assert_eq!(**discriminant, Value::Int(-1));
    assert_eq!(v.at("bc.minus_one"), Some(&Value::Hyper(-2)));
    let Some(Value::Union { discriminant, .. }) = v.at("bu") else {
        panic!("bu: {v:?}")
    };
    assert_eq!(**discriminant, Value::UInt(65535));
    assert_eq!(v.at("bu.top"), Some(&Value::UInt(9)));
    assert_eq!(v.at("fixed[2]"), Some(&Value::Int(3)));
    // The value encodes to the same bytes (the bool, float and discriminant arms of the encoder).
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, bytes);
    // Validation agrees.
    s.validate_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
}

#[test]
fn false_bool_arm_and_default_arm() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    // flag FALSE, bb FALSE (void), bc 5 (default: void), bu 0 (default: void).
    let bytes = words(&[0, 0, 0, 5, 0, 4, 5, 6]);
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("flag"), Some(&Value::Bool(false)));
    let Some(Value::Union {
        discriminant, arm, ..
    }) = v.at("bb")
    else {
        panic!("{v:?}")
    };
    assert_eq!((&**discriminant, *arm), (&Value::Bool(false), None));
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn small_discriminants_are_range_checked_in_strict_mode_only() {
    let s = schema();
    let ty = s.type_id("by_char").unwrap();
    // char 200 does not fit a C char: strict refuses it at the discriminant, libvirt takes the
    // default arm.
    let bytes = words(&[200]);
    let e = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::ValueOutOfRange { value: 200, .. }),
        "{e}"
    );
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Libvirt)
        .unwrap();
    assert!(
        matches!(&v, Value::Union { discriminant, arm: None, .. } if **discriminant == Value::Int(200)),
        "{v:?}"
    );
    // A bool discriminant of 2: strict refuses it, libvirt reads TRUE.
    let ty = s.type_id("by_bool").unwrap();
    let bytes = words(&[2, 7]);
    assert_eq!(
        s.decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
            .unwrap_err()
            .kind(),
        &ErrorKind::InvalidBool(2)
    );
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Libvirt)
        .unwrap();
    assert_eq!(v.at("yes"), Some(&Value::Int(7)));
}

#[test]
fn a_fixed_array_that_ends_the_body_exactly_decodes() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    let bytes = odd_bytes();
    // Exactly the 12 bytes the array needs, and one byte fewer.
    assert!(
        s.decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
            .is_ok_and(|v| v.at("fixed[0]") == Some(&Value::Int(1)))
    );
    let short = &bytes[..bytes.len() - 1];
    let e = s
        .decode_type(ty, short, 0, &lim(), Compat::Strict)
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::Truncated {
            needed: 12,
            available: 11
        }
    );
    assert_eq!(e.offset(), 36);
}

#[test]
fn bytes_after_a_frame_are_a_length_mismatch() {
    let f = FrameBuilder::new(Header::call(header::REMOTE_PROGRAM, 1, 1))
        .payload(vec![0; 8])
        .build_unchecked();
    let frame = Frame::decode(&f, &lim(), Compat::Strict).unwrap();
    assert_eq!(frame.len_word(), 36);
    assert_eq!(frame.payload, &[0; 8]);
    let mut more = f.clone();
    more.extend([0, 0, 0, 0]);
    let e = Frame::decode(&more, &lim(), Compat::Libvirt).unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::LengthMismatch {
            length: 36,
            actual: 40
        }
    );
    assert_eq!(e.path_string(), "length");
}

#[test]
fn the_length_word_is_the_frame_length() {
    for n in [0usize, 4, 100] {
        let f = FrameBuilder::new(Header::call(header::REMOTE_PROGRAM, 1, 1))
            .payload(vec![0; n])
            .build_unchecked();
        let frame = Frame::decode(&f, &lim(), Compat::Strict).unwrap();
        assert_eq!(frame.len_word() as usize, 28 + n);
        assert_eq!(frame.len_word().to_be_bytes(), f[..4]);
    }
}

#[test]
fn an_event_message_is_a_msg_body_and_a_keepalive_one_is_not() {
    let event = Header::new(
        header::REMOTE_PROGRAM,
        1,
        318, // REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    assert_eq!(BodyKind::of(&event), BodyKind::Msg);
    assert_eq!(BodyKind::of(&event).role(), Some(BodyRole::Msg));
    let ping = Header::new(
        header::KEEPALIVE_PROGRAM,
        1,
        1,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    assert_eq!(BodyKind::of(&ping), BodyKind::Keepalive);
}

#[test]
fn a_length_word_short_of_a_header_says_how_many_bytes_there_are() {
    for len in 4u32..28 {
        let e = frame::check_length(len, &lim()).unwrap_err();
        assert_eq!(
            e.kind(),
            &ErrorKind::Truncated {
                needed: 24,
                available: len as u64 - 4
            },
            "length {len}"
        );
        assert_eq!((e.offset(), e.path_string().as_str()), (4, "header"));
    }
    assert_eq!(frame::check_length(28, &lim()).unwrap(), 28);
}

#[test]
fn encoding_counts_nesting_like_decoding() {
    // Three compound levels: struct l3 → struct l2 → int<4>.
    let x = "typedef int l1<4>; struct l2 { l1 x; }; struct l3 { l2 y; };";
    let s = Schema::from_sources(&[("n.x", x)]).unwrap();
    let ty = s.type_id("l3").unwrap();
    let bytes = words(&[2, 5, 6]);
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("y.x[1]"), Some(&Value::Int(6)));
    let nesting = |n| lim().to_builder().nesting_max(n).build().unwrap();
    // At the limit both directions work…
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &nesting(3)).unwrap();
    assert_eq!(out, bytes);
    assert!(
        s.decode_type(ty, &bytes, 0, &nesting(3), Compat::Strict)
            .is_ok_and(|d| d == v)
    );
    // …one level fewer, both refuse, at the same depth.
    let mut out = Vec::new();
    let e = s.encode_type(ty, &v, &mut out, &nesting(2)).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::OverLimit {
                limit: LimitKind::Nesting,
                max: 2,
                actual: 3
            }
        ),
        "{e}"
    );
    assert!(out.is_empty());
    let d = s
        .decode_type(ty, &bytes, 0, &nesting(2), Compat::Strict)
        .unwrap_err();
    assert_eq!(d.kind(), e.kind());
}

// ---- Frames: the encoder's refusals, FrameBuilder, early header errors, FrameDecoder ----

fn small_limits() -> Limits {
    Limits::builder()
        .message_max(4096)
        .stream_chunk(1024)
        .fds_max(8)
        .build()
        .unwrap()
}

fn hdr(t: MessageType) -> Header {
    Header::new(header::REMOTE_PROGRAM, 1, 1, t, 1, MessageStatus::Ok)
}

fn call(t: MessageType, nfds: Option<u32>, payload: usize, serial: u32) -> Vec<u8> {
    FrameBuilder::call(header::REMOTE_PROGRAM, 3, serial)
        .msg_type(t)
        .nfds(nfds)
        .payload(vec![serial as u8; payload])
        .build_unchecked()
}

#[test]
fn encode_frame_refuses_an_fd_count_that_does_not_fit_the_type_or_the_limit() {
    let l = small_limits();
    let h = hdr;
    let refuse = |t, nfds| {
        let mut out = vec![7];
        let e = encode_frame(&mut out, &h(t), nfds, &[0; 4], &l).unwrap_err();
        assert_eq!(out, [7], "nothing written on {e}");
        assert_eq!(e.path_string(), "nfds");
        e
    };
    let e = refuse(MessageType::CallWithFds, None);
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)), "{e}");
    let e = refuse(MessageType::Reply, Some(0));
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)), "{e}");
    let e = refuse(MessageType::ReplyWithFds, Some(9));
    assert_eq!(
        (e.kind(), e.offset()),
        (
            &ErrorKind::OverLimit {
                limit: LimitKind::FdCount,
                max: 8,
                actual: 9
            },
            28
        )
    );
    // At the limit it is written.
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        &h(MessageType::ReplyWithFds),
        Some(8),
        &[0; 4],
        &l,
    )
    .unwrap();
    let f = Frame::decode(&out, &l, Compat::Strict).unwrap();
    assert_eq!((f.nfds, f.payload), (Some(8), &[0u8; 4][..]));
}

#[test]
fn an_oversized_payload_error_says_the_payload_limit_of_its_type() {
    let l = small_limits();
    // 4096 - 24 bytes of payload fit a frame without an FD count, 4 fewer one with it.
    for (t, nfds, max, at) in [
        (MessageType::Call, None, 4072, 28),
        (MessageType::CallWithFds, Some(0), 4068, 32),
    ] {
        let h = hdr(t);
        let mut out = Vec::new();
        encode_frame(&mut out, &h, nfds, &vec![0; max], &l).unwrap();
        assert_eq!(out.len(), 4100);
        let e = encode_frame(&mut Vec::new(), &h, nfds, &vec![0; max + 1], &l).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset(), e.path_string().as_str()),
            (
                &ErrorKind::OverLimit {
                    limit: LimitKind::Payload,
                    max: max as u64,
                    actual: max as u64 + 1
                },
                at,
                "payload"
            ),
            "{t}"
        );
    }
}

#[test]
fn frame_encode_writes_the_frame_again_or_refuses_it() {
    let l = small_limits();
    for f in [
        call(MessageType::Call, None, 0, 1),
        call(MessageType::ReplyWithFds, Some(3), 12, 2),
    ] {
        let frame = Frame::decode(&f, &l, Compat::Strict).unwrap();
        let mut out = vec![0xee];
        frame.encode(&mut out, &l).unwrap();
        assert_eq!(out[1..], f[..]);
    }
    // A frame built by hand whose FD count does not match its type, or over the limits.
    let bytes = call(MessageType::Call, None, 0, 1);
    let mut frame = Frame::decode(&bytes, &l, Compat::Strict).unwrap();
    frame.header.msg_type = MessageType::CallWithFds;
    let e = frame.encode(&mut Vec::new(), &l).unwrap_err();
    assert_eq!(e.path_string(), "nfds");
    frame.nfds = Some(9);
    let e = frame.encode(&mut Vec::new(), &l).unwrap_err();
    assert_eq!(e.category(), Category::OverLimit);
}

#[test]
fn the_builder_adds_an_fd_count_only_to_the_types_that_carry_one() {
    let l = lim();
    let b = FrameBuilder::call(header::REMOTE_PROGRAM, 1, 1);
    for t in [
        MessageType::Reply,
        MessageType::Message,
        MessageType::Stream,
    ] {
        let f = b.clone().msg_type(t).encode(&l).unwrap();
        assert_eq!(f.len(), 28, "{t}");
        assert_eq!(Frame::decode(&f, &l, Compat::Strict).unwrap().nfds, None);
    }
    let f = b
        .clone()
        .msg_type(MessageType::CallWithFds)
        .encode(&l)
        .unwrap();
    assert_eq!(Frame::decode(&f, &l, Compat::Strict).unwrap().nfds, Some(0));
    // A count already set is kept.
    let f = b
        .nfds(Some(4))
        .msg_type(MessageType::ReplyWithFds)
        .encode(&l)
        .unwrap();
    assert_eq!(Frame::decode(&f, &l, Compat::Strict).unwrap().nfds, Some(4));
}

#[test]
fn a_bad_head_is_reported_before_the_rest_of_the_frame_arrives() {
    let l = lim();
    // A 1000-byte frame whose header has an unknown type: 28 bytes in are enough to say so.
    let f = FrameBuilder::call(header::REMOTE_PROGRAM, 1, 1)
        .msg_type(MessageType::Unknown(9))
        .payload(vec![0; 972])
        .build_unchecked();
    assert_eq!(
        parse_frame(&f[..27], &l, Compat::Strict).unwrap(),
        Parsed::Incomplete { needed: 973 }
    );
    let e = parse_frame(&f[..28], &l, Compat::Strict).unwrap_err();
    assert_eq!((e.kind(), e.offset()), (&ErrorKind::UnknownType(9), 16));
    // libvirt mode takes the type and waits for the rest.
    assert_eq!(
        parse_frame(&f[..28], &l, Compat::Libvirt).unwrap(),
        Parsed::Incomplete { needed: 972 }
    );
    // An FD count over the limit, as soon as its word is in (32 bytes).
    let f = call(MessageType::CallWithFds, Some(33), 100, 1);
    assert!(matches!(
        parse_frame(&f[..31], &l, Compat::Libvirt),
        Ok(Parsed::Incomplete { needed: 101 })
    ));
    let e = parse_frame(&f[..32], &l, Compat::Libvirt).unwrap_err();
    assert_eq!((e.path_string().as_str(), e.offset()), ("nfds", 28));
    // The same through the incremental decoder: the error comes with the bytes that show it.
    let mut d = FrameDecoder::new(&l, Compat::Libvirt);
    d.feed(&f[..32]);
    assert_eq!(d.next_frame().unwrap_err(), e);
}

/// Three frames of 28, 40 (CALL_WITH_FDS, 5 FDs) and 88 bytes.
fn three_frames() -> (Vec<Vec<u8>>, Vec<u8>) {
    let fs = vec![
        call(MessageType::Call, None, 0, 1),
        call(MessageType::CallWithFds, Some(5), 8, 2),
        call(MessageType::Reply, None, 60, 3),
    ];
    let stream = fs.concat();
    (fs, stream)
}

#[test]
fn decoded_frames_keep_their_bytes_fd_count_and_stream_offset_in_any_chunking() {
    let l = small_limits();
    let (fs, stream) = three_frames();
    let offsets = [0u64, 28, 68];
    // All at once, a split inside the second frame's header, a byte at a time.
    let chunkings: [&[usize]; 3] = [&[156], &[30, 126], &[1; 156]];
    for chunks in chunkings {
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        assert_eq!(d.limits(), &l);
        let mut got = Vec::new();
        let mut fed = 0;
        for &n in chunks {
            d.feed(&stream[fed..fed + n]);
            fed += n;
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
                assert!(got.len() <= fs.len(), "more frames out than in");
                assert_eq!(
                    d.consumed(),
                    got.iter().map(|f| f.bytes().len() as u64).sum()
                );
            }
            assert_eq!(d.buffered() as u64, fed as u64 - d.consumed(), "{chunks:?}");
            assert!(d.capacity() >= d.buffered());
        }
        assert_eq!(got.len(), 3, "{chunks:?}");
        for ((f, want), at) in got.iter().zip(&fs).zip(offsets) {
            assert_eq!(f.bytes(), &want[..], "{chunks:?}");
            assert_eq!(f.stream_offset(), at, "{chunks:?}");
            assert_eq!(f.header(), &Header::peek(want).header().unwrap());
            assert_eq!(f.frame(), Frame::decode(want, &l, Compat::Strict).unwrap());
        }
        assert_eq!(
            got.iter().map(OwnedFrame::nfds).collect::<Vec<_>>(),
            [None, Some(5), None]
        );
        assert_eq!(got[1].payload(), &[2; 8]);
        assert_eq!((d.consumed(), d.buffered(), d.error()), (156, 0, None));
    }
}

#[test]
fn the_decoder_reports_the_error_it_stopped_on() {
    let (_, stream) = three_frames();
    let mut d = FrameDecoder::new(&small_limits(), Compat::Strict);
    d.feed(&stream[..30]);
    d.next_frame().unwrap().unwrap();
    assert_eq!(d.buffered(), 2);
    d.feed(&[0xff, 0xff]); // a length word over the limit
    let e = d.next_frame().unwrap_err();
    assert_eq!(d.error(), Some(&e));
    assert_eq!((e.category(), e.offset()), (Category::OverLimit, 28));
    assert_eq!(d.consumed(), 28);
}

#[test]
fn a_decoder_fed_and_drained_forever_holds_a_bounded_buffer() {
    // 36-byte frames fed two and a byte at a time after a one-byte start: the decoder always holds
    // the start of a frame, so its buffer never empties by itself; taking frames out and reusing
    // their room is what keeps the memory bounded.
    let l = lim();
    let frame = call(MessageType::Call, None, 8, 1);
    let stream = frame.repeat(400);
    for chunk in [72usize, 80, 7] {
        let mut d = FrameDecoder::new(&l, Compat::Strict);
        d.feed(&stream[..1]);
        let mut taken = 0;
        for c in stream[1..].chunks(chunk) {
            d.feed(c);
            while let Some(f) = d.next_frame().unwrap() {
                assert_eq!(f.bytes(), &frame[..]);
                taken += 1;
                assert!(taken <= 400, "more frames out than in");
            }
            assert!(d.buffered() < 36 + chunk);
            assert!(
                d.capacity() <= 2 * (36 + chunk),
                "chunks of {chunk}: capacity {} after {taken} frames",
                d.capacity()
            );
        }
        assert_eq!((taken, d.buffered()), (400, 0));
    }
}

#[test]
fn a_feed_moves_the_held_bytes_only_once_half_the_buffer_is_spent() {
    // Moving the unread bytes to the front on every feed would copy a big buffer of small frames
    // once per frame (quadratic); the decoder moves them only when the frames taken out are at
    // least half of what it holds, so every byte is moved a bounded number of times.
    let l = lim();
    let frame = call(MessageType::Call, None, 8, 1);
    let mut d = FrameDecoder::new(&l, Compat::Strict);
    d.feed(&frame.repeat(8));
    for _ in 0..5 {
        d.next_frame().unwrap().unwrap();
    }
    d.feed(&frame[..1]); // five of eight frames spent: the three left and the byte move to the front
    let room = d.capacity();
    assert!(room >= 8 * 36);
    d.next_frame().unwrap().unwrap(); // one of three frames: less than half spent
    let at = d.pending().as_ptr();
    d.feed(&frame[1..2]);
    assert_eq!(d.capacity(), room, "no growth: the byte fits");
    assert_eq!(
        d.pending().as_ptr(),
        at,
        "the unread bytes stay where they are"
    );
    assert_eq!(d.pending(), [&frame[..], &frame[..], &frame[..2]].concat());
    d.next_frame().unwrap().unwrap(); // now two of three: more than half spent
    let at = d.pending().as_ptr();
    d.feed(&[]);
    assert_eq!(d.pending().as_ptr(), at, "an empty feed does nothing");
    d.feed(&frame[2..]);
    assert_eq!(d.capacity(), room, "the spent room is reused");
    assert_eq!(d.buffered(), 72);
}

#[test]
fn a_frame_taken_out_carries_its_own_bytes_and_the_decoder_keeps_only_the_rest() {
    let l = lim();
    // A big frame and the start of the next: the decoder hands over the big frame's memory and
    // keeps only the start of the next.
    let big = call(MessageType::Reply, None, 100_000, 1);
    let small = call(MessageType::Call, None, 8, 2);
    let mut d = FrameDecoder::new(&l, Compat::Strict);
    d.feed(&[&big[..], &small[..10]].concat());
    let f = d.next_frame().unwrap().unwrap();
    assert_eq!(f.bytes(), &big[..]);
    assert_eq!(d.buffered(), 10);
    assert!(
        d.capacity() < 1000,
        "capacity {} after a 100 kB frame",
        d.capacity()
    );
    // Many small frames at once: each taken out is a copy of its own bytes, not the whole batch.
    let mut d = FrameDecoder::new(&l, Compat::Strict);
    d.feed(&small.repeat(10));
    for _ in 0..10 {
        let bytes = d.next_frame().unwrap().unwrap().into_bytes();
        assert_eq!(bytes, small);
        assert!(
            bytes.capacity() < 2 * 36,
            "a 36-byte frame holds {}",
            bytes.capacity()
        );
    }
    assert_eq!(d.buffered(), 0);
}
