//! Properties of split → frames → bytes in any chunking → reassemble, of the caps, and of interleaved
//! streams on one connection.

use proptest::prelude::*;
use virtwire_protocol::stream::{
    End, Reassembler, Side, StreamError, StreamKey, StreamOp, StreamOptions, StreamSplitter,
};
use virtwire_protocol::{
    Compat, FrameBuilder, FrameDecoder, LimitKind, Limits, MessageStatus, MessageType,
};

const REMOTE: u32 = 0x2000_8086;

/// What one side sends: data and holes, in order.
#[derive(Clone, Debug)]
enum Seg {
    Data(Vec<u8>),
    Hole(i64),
}

/// A received item, owned, for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Data(Vec<u8>),
    Hole(i64),
    End(End),
}

fn seg() -> impl Strategy<Value = Seg> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..1500).prop_map(Seg::Data),
        1 => prop_oneof![1i64..64, 1i64..(1 << 40)].prop_map(Seg::Hole),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Client), Just(Side::Server)]
}

/// Merge adjacent data and drop empty data: the form both ends agree on.
fn normalize(items: impl IntoIterator<Item = Got>) -> Vec<Got> {
    let mut out: Vec<Got> = Vec::new();
    for g in items {
        match (out.last_mut(), g) {
            (_, Got::Data(d)) if d.is_empty() => {}
            (Some(Got::Data(prev)), Got::Data(d)) => prev.extend_from_slice(&d),
            (_, g) => out.push(g),
        }
    }
    out
}

fn expected(segs: &[Seg], sender: Side) -> Vec<Got> {
    let end = match sender {
        Side::Client => End::Finish,
        Side::Server => End::Eof,
    };
    normalize(
        segs.iter()
            .map(|s| match s {
                Seg::Data(d) => Got::Data(d.clone()),
                Seg::Hole(n) => Got::Hole(*n),
            })
            .chain([Got::End(end)]),
    )
}

fn owned(op: &StreamOp<'_>) -> Got {
    match op {
        StreamOp::Data(d) => Got::Data(d.to_vec()),
        StreamOp::Hole(h) => Got::Hole(h.length),
        other => Got::End(other.end().expect("an end")),
    }
}

/// Split `segs` for `sender`, encode every packet; returns the frames.
fn split_all(key: StreamKey, sender: Side, chunk: usize, segs: &[Seg], l: &Limits) -> Vec<Vec<u8>> {
    let mut s = StreamSplitter::new(key, sender, l)
        .unwrap()
        .with_chunk(chunk, l)
        .unwrap()
        .sparse(true);
    let mut frames = Vec::new();
    for g in segs {
        match g {
            Seg::Data(d) => frames.extend(s.data(d).unwrap().map(|p| p.to_bytes(l).unwrap())),
            Seg::Hole(n) => frames.push(s.hole(*n).unwrap().to_bytes(l).unwrap()),
        }
    }
    frames.push(s.end().unwrap().to_bytes(l).unwrap());
    frames
}

/// Limits whose payload max is the chunk (or 12, for holes) plus `slack`.
fn tight(chunk: usize, slack: u32) -> Limits {
    let payload = chunk.max(12) as u32 + slack;
    Limits::builder()
        .message_max(24 + payload)
        .stream_chunk(chunk as u32)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// split → encode → bytes fed in arbitrary pieces → FrameDecoder → reassemble gives back exactly
    /// the data and holes, and the end marker of the sender's side; every frame fits the limit; the
    /// frame count is Σ ceil(len / chunk) + holes + 1. The assembling mode gives the same data in one
    /// buffer with the holes at the right offsets.
    #[test]
    fn split_then_reassemble_round_trips(
        segs in proptest::collection::vec(seg(), 0..10),
        chunk in 1usize..600,
        slack in 0u32..40,
        sender in side(),
        pieces in proptest::collection::vec(1usize..400, 1..20),
        serial in any::<u32>(),
    ) {
        let l = tight(chunk, slack);
        let key = StreamKey::new(REMOTE, 1, 209, serial);
        let frames = split_all(key, sender, chunk, &segs, &l);

        let data_frames: usize = segs.iter().map(|s| match s {
            Seg::Data(d) => d.len().div_ceil(chunk),
            Seg::Hole(_) => 0,
        }).sum();
        let holes = segs.iter().filter(|s| matches!(s, Seg::Hole(_))).count();
        prop_assert_eq!(frames.len(), data_frames + holes + 1);
        for f in &frames {
            prop_assert!(f.len() as u64 <= l.frame_max());
            prop_assert!(f.len() <= 28 + chunk.max(12));
        }

        let wire: Vec<u8> = frames.concat();
        let mut dec = FrameDecoder::new(&l, Compat::Strict);
        let local = sender.peer();
        let mut zero_copy = Reassembler::new(local, &l, Compat::Strict);
        zero_copy.open(key, StreamOptions::new().sparse(true)).unwrap();
        let mut assembling = Reassembler::new(local, &l.to_builder().stream_buffer_max(1 << 24).build().unwrap(), Compat::Strict);
        assembling.open(key, StreamOptions::new().sparse(true).assemble(true)).unwrap();

        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < wire.len() {
            let n = pieces[i % pieces.len()].min(wire.len() - at);
            i += 1;
            dec.feed(&wire[at..at + n]);
            at += n;
            while let Some(f) = dec.next_frame().unwrap() {
                let p = zero_copy.receive(f.frame()).unwrap().unwrap();
                if let StreamOp::Data(d) = p.op {
                    // borrowed straight from the decoder's frame: no copy
                    prop_assert!(std::ptr::eq(d.as_ptr(), f.payload().as_ptr()));
                    prop_assert!(d.len() <= chunk);
                }
                got.push(owned(&p.op));
                assembling.receive(f.frame()).unwrap().unwrap();
            }
        }
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert_eq!(normalize(got), expected(&segs, sender));

        let a = assembling.take_assembled(key).unwrap();
        let all: Vec<u8> = segs.iter().flat_map(|s| match s {
            Seg::Data(d) => d.clone(),
            Seg::Hole(_) => Vec::new(),
        }).collect();
        prop_assert_eq!(&a.data, &all);
        let mut off = 0u64;
        let mut want_holes = Vec::new();
        for s in &segs {
            match s {
                Seg::Data(d) => off += d.len() as u64,
                Seg::Hole(n) => want_holes.push((off, *n as u64)),
            }
        }
        let got_holes: Vec<_> = a.holes.iter().map(|h| (h.offset, h.length)).collect();
        prop_assert_eq!(got_holes, want_holes);
        let logical: u64 = segs.iter().map(|s| match s {
            Seg::Data(d) => d.len() as u64,
            Seg::Hole(n) => *n as u64,
        }).sum();
        prop_assert_eq!(a.logical_len(), Some(logical));
        if logical <= 1 << 20 {
            let dense: Vec<u8> = segs.iter().flat_map(|s| match s {
                Seg::Data(d) => d.clone(),
                Seg::Hole(n) => vec![0; *n as usize],
            }).collect();
            prop_assert_eq!(a.to_dense(1 << 20).unwrap(), dense);
        } else {
            prop_assert_eq!(a.to_dense(1 << 20).unwrap_err().limit(), Some(LimitKind::StreamBuffer));
        }
        prop_assert_eq!(assembling.buffered(), 0);
        prop_assert_eq!(assembling.memory(), 0);
    }

    /// A chunk of exactly `payload_max` is accepted and gives frames of exactly `frame_max` bytes;
    /// one byte more is refused with the stream-chunk cap.
    #[test]
    fn chunk_at_the_message_cap(payload_max in 12u32..70_000, extra in 0usize..3) {
        let l = Limits::builder().message_max(24 + payload_max).stream_chunk(1).build().unwrap();
        let key = StreamKey::new(REMOTE, 1, 208, 1);
        let pm = payload_max as usize;
        let s = StreamSplitter::new(key, Side::Client, &l).unwrap();
        let mut s = s.with_chunk(pm, &l).unwrap();
        let data = vec![0x5a; pm * 2 + extra];
        let frames: Vec<_> = s.data(&data).unwrap().map(|p| p.to_bytes(&l).unwrap()).collect();
        prop_assert_eq!(frames.len(), 2 + usize::from(extra > 0));
        prop_assert_eq!(frames[0].len() as u64, l.frame_max());
        prop_assert_eq!(frames[1].len() as u64, l.frame_max());
        let e = StreamSplitter::new(key, Side::Client, &l).unwrap().with_chunk(pm + 1, &l).unwrap_err();
        prop_assert_eq!(e.limit(), Some(LimitKind::StreamChunk));
        let ok = matches!(e, StreamError::OverCap { max, actual, .. }
            if max == payload_max as u64 && actual == payload_max as u64 + 1);
        prop_assert!(ok, "{:?}", e);
    }

    /// Buffering exactly `stream_buffer_max` bytes (across several streams, in frames of any size)
    /// succeeds; one byte more is refused with an error naming the stream-buffer cap, and nothing
    /// changes; memory held never passes the cap; taking the data frees the cap.
    #[test]
    fn buffer_cap_is_exact(
        cap in 0u64..6000,
        cuts in proptest::collection::vec(1usize..900, 1..30),
        streams in 1u32..4,
    ) {
        let l = Limits::builder().stream_buffer_max(cap).build().unwrap();
        let mut r = Reassembler::new(Side::Server, &l, Compat::Strict);
        let keys: Vec<_> = (0..streams).map(|i| StreamKey::new(REMOTE, 1, 208, i)).collect();
        for k in &keys {
            r.open(*k, StreamOptions::new().assemble(true)).unwrap();
        }
        let mut left = cap as usize;
        let mut i = 0;
        while left > 0 {
            let n = cuts[i % cuts.len()].min(left);
            let k = keys[i % keys.len()];
            i += 1;
            let f = FrameBuilder::new(k.header(MessageType::Stream, MessageStatus::Continue))
                .payload(vec![1u8; n]).encode(&l).unwrap();
            r.receive(virtwire_protocol::Frame::decode(&f, &l, Compat::Strict).unwrap()).unwrap();
            left -= n;
            prop_assert!(r.memory() <= cap);
        }
        prop_assert_eq!(r.buffered(), cap);
        let k = keys[i % keys.len()];
        let one = FrameBuilder::new(k.header(MessageType::Stream, MessageStatus::Continue))
            .payload(vec![2u8]).encode(&l).unwrap();
        let e = r.receive(virtwire_protocol::Frame::decode(&one, &l, Compat::Strict).unwrap()).unwrap_err();
        prop_assert_eq!(e.limit(), Some(LimitKind::StreamBuffer));
        let ok = matches!(e, StreamError::OverCap { max, actual, .. } if max == cap && actual == cap + 1);
        prop_assert!(ok, "{:?}", e);
        let msg = e.to_string();
        prop_assert!(msg.contains("Limits::stream_buffer_max"), "{}", msg);
        prop_assert_eq!(r.buffered(), cap);
        prop_assert_eq!(r.status(k).unwrap().data_received, r.status(k).unwrap().buffered);
        prop_assert!(r.memory() <= cap);
        // Take one stream's data: that much room comes back.
        let freed = r.take_assembled(keys[0]).unwrap().data.len() as u64;
        prop_assert_eq!(r.buffered(), cap - freed);
        if freed > 0 {
            r.receive(virtwire_protocol::Frame::decode(&one, &l, Compat::Strict).unwrap()).unwrap();
        }
    }

    /// Interleaved streams on one connection reassemble independently, and a frame for a stream that
    /// was never opened is reported with its key and changes nothing.
    #[test]
    fn interleaved_streams_reassemble_independently(
        streams in proptest::collection::vec(
            (proptest::collection::vec(seg(), 0..6), 1usize..300), 1..6),
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..400),
        stray_at in any::<proptest::sample::Index>(),
        sender in side(),
    ) {
        let l = Limits::default();
        let keys: Vec<_> = (0..streams.len())
            .map(|i| StreamKey::new(REMOTE, 1, 208 + (i as i32 % 2), 100 + i as u32))
            .collect();
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = streams.iter().zip(&keys)
            .map(|((segs, chunk), k)| split_all(*k, sender, *chunk, segs, &l).into())
            .collect();
        // Interleave: pick a stream with frames left at each step, preserving each stream's order.
        let mut wire = Vec::new();
        let mut steps = order.iter();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let pick = steps.next().map_or(live[0], |ix| live[ix.index(live.len())]);
            wire.push(queues[pick].pop_front().unwrap());
        }
        let stray_key = StreamKey::new(REMOTE, 1, 208, 99);
        let stray = FrameBuilder::new(stray_key.header(MessageType::Stream, MessageStatus::Continue))
            .payload(b"stray".to_vec()).encode(&l).unwrap();
        let stray_pos = stray_at.index(wire.len() + 1);
        wire.insert(stray_pos, stray);

        let mut r = Reassembler::new(sender.peer(), &l, Compat::Strict);
        for k in &keys {
            r.open(*k, StreamOptions::new().sparse(true)).unwrap();
        }
        let mut got: Vec<Vec<Got>> = vec![Vec::new(); keys.len()];
        let mut strays = 0;
        for f in &wire {
            let frame = virtwire_protocol::Frame::decode(f, &l, Compat::Strict).unwrap();
            match r.receive(frame) {
                Ok(Some(p)) => {
                    let i = keys.iter().position(|k| *k == p.key).unwrap();
                    got[i].push(owned(&p.op));
                }
                Err(StreamError::UnknownStream { key }) => {
                    prop_assert_eq!(key, stray_key);
                    strays += 1;
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(strays, 1);
        for (i, (segs, _)) in streams.iter().enumerate() {
            prop_assert_eq!(normalize(got[i].clone()), expected(segs, sender));
        }
    }
}

/// An arbitrary operation on a reassembler.
#[derive(Clone, Debug)]
enum Op {
    Open {
        stream: u8,
        sparse: bool,
        assemble: bool,
    },
    Frame {
        stream: u8,
        kind: u8,
        len: usize,
    },
    Take {
        stream: u8,
    },
    Close {
        stream: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..6, any::<bool>(), any::<bool>())
            .prop_map(|(stream, sparse, assemble)| Op::Open { stream, sparse, assemble }),
        8 => (0u8..6, 0u8..8, 0usize..1200).prop_map(|(stream, kind, len)| Op::Frame { stream, kind, len }),
        1 => (0u8..6).prop_map(|stream| Op::Take { stream }),
        1 => (0u8..6).prop_map(|stream| Op::Close { stream }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever arrives, in whatever order, from either side: no panic, the buffer capacity held never
    /// passes `stream_buffer_max`, the open streams never pass `streams_max`, and the bytes buffered
    /// are the sum of what each stream reports.
    #[test]
    fn reassembler_never_passes_its_caps(
        ops in proptest::collection::vec(op(), 0..120),
        cap in 0u64..8000,
        streams_max in 1u32..5,
        local in side(),
        compat in prop_oneof![Just(Compat::Strict), Just(Compat::Libvirt)],
    ) {
        let l = Limits::builder().stream_buffer_max(cap).streams_max(streams_max).build().unwrap();
        let mut r = Reassembler::new(local, &l, compat);
        let key = |s: u8| StreamKey::new(REMOTE, 1, 208, s as u32);
        for op in ops {
            match op {
                Op::Open { stream, sparse, assemble } => {
                    let _ = r.open(key(stream), StreamOptions::new().sparse(sparse).assemble(assemble));
                }
                Op::Frame { stream, kind, len } => {
                    let (t, s, payload) = match kind {
                        0..=2 => (MessageType::Stream, MessageStatus::Continue, vec![7u8; len]),
                        3 => (MessageType::Stream, MessageStatus::Continue, Vec::new()),
                        4 => (MessageType::StreamHole, MessageStatus::Continue, {
                            let mut p = (len as i64 - 100).to_be_bytes().to_vec();
                            p.extend_from_slice(&0u32.to_be_bytes());
                            p.truncate(len.min(12).max(if len % 7 == 0 { 0 } else { 12 }));
                            p
                        }),
                        5 => (MessageType::Stream, MessageStatus::Ok, vec![0; len % 3]),
                        6 => (MessageType::Stream, MessageStatus::Error, vec![0; len % 60]),
                        _ => (MessageType::Call, MessageStatus::Ok, vec![0; len % 8]),
                    };
                    let f = FrameBuilder::new(key(stream).header(t, s)).payload(payload).encode(&l).unwrap();
                    let frame = virtwire_protocol::Frame::decode(&f, &l, compat).unwrap();
                    let before = r.status(key(stream));
                    if let Err(e) = r.receive(frame) {
                        // A refused frame changes nothing.
                        prop_assert_eq!(r.status(key(stream)), before);
                        if let Some(LimitKind::StreamBuffer) = e.limit() {
                            prop_assert!(e.to_string().contains("stream_buffer_max"));
                        }
                    }
                }
                Op::Take { stream } => { let _ = r.take_assembled(key(stream)); }
                Op::Close { stream } => { let _ = r.close(key(stream)); }
            }
            prop_assert!(r.memory() <= cap, "memory {} > cap {}", r.memory(), cap);
            prop_assert!(r.buffered() <= r.memory());
            prop_assert!(r.open_streams() <= streams_max as usize);
            let sum: u64 = r.keys().map(|k| r.status(k).unwrap().buffered).sum();
            prop_assert_eq!(sum, r.buffered());
        }
    }
}
