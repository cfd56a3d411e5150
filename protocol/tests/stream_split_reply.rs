//! The opt-in split-reply codec (NOT libvirt's protocol): its numbers, its caps, and round trips.
//!
//! `cargo test -p virtwire-protocol --test stream_split_reply -- --nocapture` prints the overhead
//! table quoted in the `stream::split_reply` docs.

use std::borrow::Cow;

use proptest::prelude::*;
use virtwire_protocol::stream::split_reply::PART_OVERHEAD;
use virtwire_protocol::stream::{
    SplitReplyAssembler, SplitReplyCodec, SplitReplyEvent, StreamError, StreamKey,
};
use virtwire_protocol::{
    Compat, Frame, FrameBuilder, FrameDecoder, Header, LimitKind, Limits, MessageStatus,
    MessageType, encode_frame,
};

const REMOTE: u32 = 0x2000_8086;
const MIB: u64 = 1 << 20;

fn reply(serial: u32) -> Header {
    Header::call(REMOTE, 344, serial).reply_to(MessageStatus::Ok)
}

#[test]
fn largest_payload_per_part_cap_matches_docs() {
    let l = Limits::CURRENT_32M;
    let want = [
        (1, 33_554_408u64),
        (2, 67_108_816),
        (8, 268_435_264),
        (32, 1_073_741_056),
        (256, 8_589_928_448),
    ];
    for (parts, max) in want {
        let c = SplitReplyCodec::new(&l, parts, u64::MAX).unwrap();
        assert_eq!(c.max_payload(), max, "max_parts {parts}");
        assert_eq!(c.plan(max).unwrap().parts, parts);
        let e = c.plan(max + 1).unwrap_err();
        assert_eq!(e.limit(), Some(LimitKind::SplitParts));
        assert!(e.to_string().contains("SplitReplyCodec::max_parts"), "{e}");
    }
    assert_eq!(8 * 33_554_408u64, 256 * MIB - 192);
    assert_eq!(32 * 33_554_408u64, 1024 * MIB - 768);
    assert_eq!(256 * 33_554_408u64, 8192 * MIB - 6144);
    // The total cap binds when it is the smaller one.
    let c = SplitReplyCodec::new(&l, 8, 100 * MIB).unwrap();
    assert_eq!(c.max_payload(), 100 * MIB);
    let e = c.plan(100 * MIB + 1).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::SplitTotal));
    assert!(e.to_string().contains("SplitReplyCodec::max_total"), "{e}");
}

#[test]
fn overhead_table_matches_docs() {
    let current = SplitReplyCodec::new(&Limits::CURRENT_32M, u32::MAX, u64::MAX).unwrap();
    let legacy = SplitReplyCodec::new(&Limits::LEGACY_256K, u32::MAX, u64::MAX).unwrap();
    assert_eq!(current.part_payload_max(), 33_554_408);
    assert_eq!(legacy.part_payload_max(), 262_120);
    // payload, (parts, extra bytes) at 32 MiB, (parts, extra bytes) at 256 KiB
    let rows = [
        (MIB, (1, 0), (5, 112)),
        (32 * MIB, (2, 28), (129, 3_584)),
        (64 * MIB, (3, 56), (257, 7_168)),
        (256 * MIB, (9, 224), (1_025, 28_672)),
        (1024 * MIB, (33, 896), (4_097, 114_688)),
    ];
    println!("| payload | parts 32M | extra B | extra % | parts 256K | extra B | extra % |");
    for (payload, (p32, x32), (p256, x256)) in rows {
        let a = current.plan(payload).unwrap();
        let b = legacy.plan(payload).unwrap();
        println!(
            "| {payload} | {} | {} | {:.5} | {} | {} | {:.4} |",
            a.parts,
            a.extra_bytes(),
            a.extra_percent(),
            b.parts,
            b.extra_bytes(),
            b.extra_percent()
        );
        assert_eq!((a.parts, a.extra_bytes()), (p32, x32));
        assert_eq!((b.parts, b.extra_bytes()), (p256, x256));
        assert_eq!(a.extra_bytes(), PART_OVERHEAD * (a.parts as u64 - 1));
        assert_eq!(a.wire_bytes(), payload + 28 * a.parts as u64);
        assert_eq!(a.single_message_bytes(), payload + 28);
        assert_eq!(a.single_message_limit(), payload + 24);
        // The docs round to 0.00008 % and 0.0107 %.
        if a.parts > 1 {
            assert_eq!(format!("{:.5}", a.extra_percent()), "0.00008");
        }
        assert_eq!(format!("{:.4}", b.extra_percent()), "0.0107");
    }
}

#[test]
fn one_part_is_exactly_a_libvirt_reply() {
    let l = Limits::default();
    let c = SplitReplyCodec::new(&l, 4, u64::MAX).unwrap();
    let payload = vec![3u8; 1000];
    let parts = c.split(&reply(7), &payload).unwrap();
    assert_eq!(parts.len(), 1);
    let mut plain = Vec::new();
    encode_frame(&mut plain, &reply(7), None, &payload, &l).unwrap();
    assert_eq!(parts[0], plain);
    // Empty payloads too: one 28-byte REPLY/OK.
    assert_eq!(c.split(&reply(7), &[]).unwrap().len(), 1);
    // And the assembler hands a one-part reply back without copying.
    let mut a = SplitReplyAssembler::new(c);
    let f = Frame::decode(&plain, &l, Compat::Strict).unwrap();
    match a.push(f).unwrap() {
        SplitReplyEvent::Complete(r) => {
            assert_eq!(r.parts, 1);
            assert!(matches!(r.payload, Cow::Borrowed(_)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn codec_refuses_wrong_headers() {
    let c = SplitReplyCodec::new(&Limits::default(), 4, u64::MAX).unwrap();
    assert!(matches!(
        c.parts(&Header::call(REMOTE, 1, 1), &[]),
        Err(StreamError::Invalid(_))
    ));
    let mut h = reply(1);
    h.status = MessageStatus::Continue;
    assert!(matches!(c.parts(&h, &[]), Err(StreamError::Invalid(_))));
    assert!(SplitReplyCodec::new(&Limits::default(), 0, 1).is_err());
}

fn small_limits(part: u32) -> Limits {
    Limits::builder()
        .message_max(24 + part)
        .stream_chunk(part.clamp(1, 12))
        .build()
        .unwrap()
}

fn part_frame(key: StreamKey, status: MessageStatus, n: usize, l: &Limits) -> Vec<u8> {
    FrameBuilder::new(key.header(MessageType::Reply, status))
        .payload(vec![0xee; n])
        .encode(l)
        .unwrap()
}

#[test]
fn assembler_caps_refuse_and_change_nothing() {
    let l = small_limits(100)
        .to_builder()
        .streams_max(2)
        .build()
        .unwrap();
    let c = SplitReplyCodec::new(&l, 3, 250).unwrap();
    let mut a = SplitReplyAssembler::new(c);
    let k1 = StreamKey::new(REMOTE, 1, 344, 1);
    fn push<'a>(
        a: &mut SplitReplyAssembler,
        f: &'a [u8],
    ) -> Result<SplitReplyEvent<'a>, StreamError> {
        let l = small_limits(100);
        a.push(Frame::decode(f, &l, Compat::Strict).unwrap())
    }
    assert!(matches!(
        push(&mut a, &part_frame(k1, MessageStatus::Continue, 100, &l)).unwrap(),
        SplitReplyEvent::Partial {
            parts: 1,
            bytes: 100,
            ..
        }
    ));
    push(&mut a, &part_frame(k1, MessageStatus::Continue, 100, &l)).unwrap();
    // A third CONTINUE would make at least 4 parts.
    let e = push(&mut a, &part_frame(k1, MessageStatus::Continue, 1, &l)).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::SplitParts));
    // A final part of 51 bytes passes the total (251 > 250) …
    let e = push(&mut a, &part_frame(k1, MessageStatus::Ok, 51, &l)).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::SplitTotal));
    assert_eq!(a.buffered(), 200);
    // … 50 is exactly the cap.
    match push(&mut a, &part_frame(k1, MessageStatus::Ok, 50, &l)).unwrap() {
        SplitReplyEvent::Complete(r) => {
            assert_eq!(r.parts, 3);
            assert_eq!(r.payload.len(), 250);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((a.pending(), a.buffered(), a.memory()), (0, 0, 0));
    // At most streams_max replies pending.
    for s in 10..12 {
        push(
            &mut a,
            &part_frame(
                StreamKey::new(REMOTE, 1, 344, s),
                MessageStatus::Continue,
                1,
                &l,
            ),
        )
        .unwrap();
    }
    let e = push(
        &mut a,
        &part_frame(
            StreamKey::new(REMOTE, 1, 344, 12),
            MessageStatus::Continue,
            1,
            &l,
        ),
    )
    .unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::Streams));
    // A final REPLY/ERROR discards the parts and carries the error body.
    match push(
        &mut a,
        &part_frame(
            StreamKey::new(REMOTE, 1, 344, 10),
            MessageStatus::Error,
            4,
            &l,
        ),
    )
    .unwrap()
    {
        SplitReplyEvent::Complete(r) => {
            assert_eq!(r.header.status, MessageStatus::Error);
            assert_eq!(r.parts, 2);
            assert_eq!(r.payload.len(), 4);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.pending(), 1);
    // Calls and stream packets are not replies.
    let call = FrameBuilder::call(REMOTE, 1, 1).encode(&l).unwrap();
    assert_eq!(push(&mut a, &call).unwrap(), SplitReplyEvent::NotAReply);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// split → bytes in arbitrary pieces → FrameDecoder → assembler gives the payload back; every
    /// part fits the message limit; parts = max(1, ceil(len / part)); only the last part has the
    /// final status.
    #[test]
    fn split_reply_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..4000),
        part in 1u32..700,
        pieces in proptest::collection::vec(1usize..500, 1..10),
        serial in any::<u32>(),
    ) {
        let l = small_limits(part);
        let c = SplitReplyCodec::new(&l, u32::MAX, u64::MAX).unwrap();
        let mut wire = Vec::new();
        let n = c.encode_into(&reply(serial), &payload, &mut wire).unwrap();
        let want_parts = (payload.len() as u64).div_ceil(part as u64).max(1);
        prop_assert_eq!(n as u64, want_parts);
        prop_assert_eq!(wire.len() as u64, c.plan(payload.len() as u64).unwrap().wire_bytes());
        prop_assert_eq!(c.split(&reply(serial), &payload).unwrap().concat(), wire.clone());

        let mut dec = FrameDecoder::new(&l, Compat::Strict);
        let mut a = SplitReplyAssembler::new(c);
        let (mut at, mut i, mut seen) = (0, 0, 0u64);
        let mut done = None;
        while at < wire.len() {
            let k = pieces[i % pieces.len()].min(wire.len() - at);
            i += 1;
            dec.feed(&wire[at..at + k]);
            at += k;
            while let Some(f) = dec.next_frame().unwrap() {
                prop_assert!(f.bytes().len() as u64 <= l.frame_max());
                seen += 1;
                let last = seen == want_parts;
                prop_assert_eq!(f.header().status,
                    if last { MessageStatus::Ok } else { MessageStatus::Continue });
                match a.push(f.frame()).unwrap() {
                    SplitReplyEvent::Complete(r) => {
                        prop_assert!(last);
                        prop_assert_eq!(r.parts as u64, want_parts);
                        done = Some(r.payload.into_owned());
                    }
                    SplitReplyEvent::Partial { parts, .. } => prop_assert!(!last && parts as u64 == seen),
                    SplitReplyEvent::NotAReply => prop_assert!(false),
                }
            }
        }
        prop_assert_eq!(done.unwrap(), payload);
        prop_assert_eq!(a.memory(), 0);
    }

    /// A payload of exactly `max_payload` splits; one byte more is refused with the cap that binds.
    #[test]
    fn split_reply_cap_is_exact(part in 1u32..300, max_parts in 1u32..20, max_total in 0u64..8000) {
        let l = small_limits(part);
        let c = SplitReplyCodec::new(&l, max_parts, max_total).unwrap();
        let max = c.max_payload();
        prop_assert_eq!(max, (max_parts as u64 * part as u64).min(max_total));
        let payload = vec![1u8; max as usize + 1];
        let parts = c.split(&reply(1), &payload[..max as usize]).unwrap();
        prop_assert!(parts.len() as u32 <= max_parts);
        let e = c.split(&reply(1), &payload).unwrap_err();
        // When both caps are equal both are passed; the total is checked first.
        let binding = if max_total <= max_parts as u64 * part as u64 {
            LimitKind::SplitTotal
        } else {
            LimitKind::SplitParts
        };
        prop_assert_eq!(e.limit(), Some(binding));
        // The assembler holds the receiving end to the same caps.
        let mut a = SplitReplyAssembler::new(c);
        for f in &parts {
            a.push(Frame::decode(f, &l, Compat::Strict).unwrap()).unwrap();
            prop_assert!(a.memory() <= max_total);
        }
    }

    /// Parts of several replies interleaved on one connection come back whole, each to its serial;
    /// the assembler's memory stays within max_total throughout.
    #[test]
    fn interleaved_split_replies(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..6),
        part in 1u32..200,
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..200),
    ) {
        let l = small_limits(part);
        let total: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let c = SplitReplyCodec::new(&l, u32::MAX, total).unwrap();
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = payloads.iter().enumerate()
            .map(|(i, p)| c.split(&reply(i as u32), p).unwrap().into())
            .collect();
        let mut a = SplitReplyAssembler::new(c);
        let mut got = vec![None; payloads.len()];
        let mut steps = order.iter();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let pick = steps.next().map_or(live[0], |ix| live[ix.index(live.len())]);
            let f = queues[pick].pop_front().unwrap();
            if let SplitReplyEvent::Complete(r) = a.push(Frame::decode(&f, &l, Compat::Strict).unwrap()).unwrap() {
                got[r.header.serial as usize] = Some(r.payload.into_owned());
            }
            prop_assert!(a.memory() <= total);
        }
        for (i, p) in payloads.iter().enumerate() {
            prop_assert_eq!(got[i].as_ref(), Some(p));
        }
    }
}
