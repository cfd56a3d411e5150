//! Targets `stream` and `stream_reassembly`: the stream layer's splitter and reassembler, driven
//! by an `Arbitrary` script of interleaved streams, and by a byte program of operations against one
//! reassembler.

use arbitrary::{Arbitrary, Unstructured};

use super::cursor::Cursor;
use super::generate::{StreamScript, StreamStep};
use crate::stream::{
    Assembled, HoleAt, Reassembler, Side, StreamError, StreamKey, StreamOp, StreamOptions,
    StreamPacket, StreamSplitter,
};
use crate::*;

/// Target `stream`: an `Arbitrary` [`StreamScript`] → one splitter per stream → frames on one wire
/// → read in arbitrary pieces by a [`FrameDecoder`] → a reassembler (assembling) on the other side.
/// Oracles: the splitter refuses exactly holes on non-sparse streams, zero-length holes and anything
/// after the end; every frame is within the limits and the chunk; the reassembler's memory never
/// passes its cap and it refuses only with the buffer cap, and never while the data sent stays well
/// within it; when nothing was refused, each stream's data and holes come back exactly and every
/// ended stream is seen as ended.
pub fn stream(data: &[u8]) {
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

const CAPS: [u64; 8] = [0, 1, 16, 100, 1000, 4096, 65_536, 1 << 20];

/// Target `stream_reassembly`: the first byte picks the side, the mode, the buffer cap and the streams
/// cap; the rest is a program of operations (open, receive a frame of any stream type and status,
/// record a sent packet, take, close) run against one [`Reassembler`]. Oracles: no panic; buffer
/// capacity never above `stream_buffer_max` and open streams never above `streams_max`; the bytes
/// buffered equal the sum over streams; a refused frame or packet changes nothing; received data is
/// borrowed from the frame. Then the input itself is split into packets and reassembled, and must
/// come back unchanged.
pub fn stream_reassembly(data: &[u8]) {
    let mut b = Cursor::new(data);
    let conf = b.u8();
    let local = if conf & 1 == 0 {
        Side::Client
    } else {
        Side::Server
    };
    let compat = if conf & 2 == 0 {
        Compat::Strict
    } else {
        Compat::Libvirt
    };
    let cap = CAPS[(conf >> 2) as usize & 7];
    let streams_max = 1 + (conf >> 5 & 3) as u32;
    let limits = Limits::builder()
        .message_max(24 + 4096)
        .stream_chunk(512)
        .stream_buffer_max(cap)
        .streams_max(streams_max)
        .build()
        .expect("coherent limits");
    let mut r = Reassembler::new(local, &limits, compat);
    let key = |id: u8| StreamKey::new(0x2000_8086, 1, 208 + (id & 1) as i32, (id % 5) as u32);

    let mut steps = 0;
    while !b.is_empty() && steps < 256 {
        steps += 1;
        let op = b.u8();
        let id = b.u8();
        match op % 5 {
            0 => {
                let _ = r.open(
                    key(id),
                    StreamOptions::new()
                        .sparse(op & 0x10 != 0)
                        .assemble(op & 0x20 != 0),
                );
            }
            1 => {
                let (t, s) = match (op >> 3) % 6 {
                    0 | 1 => (MessageType::Stream, MessageStatus::Continue),
                    2 => (MessageType::Stream, MessageStatus::Ok),
                    3 => (MessageType::Stream, MessageStatus::Error),
                    4 => (MessageType::StreamHole, MessageStatus::Continue),
                    _ => (MessageType::StreamHole, MessageStatus::Unknown(op as i32)),
                };
                let payload = if t == MessageType::StreamHole && op & 0x40 == 0 {
                    // A well-formed hole most of the time, so that sparse states are reached.
                    StreamHole {
                        length: b.u16() as i64,
                        flags: 0,
                    }
                    .to_bytes()
                    .to_vec()
                } else {
                    let len = (b.u16() % 4097) as usize;
                    b.take(len).to_vec()
                };
                let bytes = FrameBuilder::new(key(id).header(t, s))
                    .payload(payload)
                    .build_unchecked();
                let Ok(frame) = Frame::decode(&bytes, &limits, compat) else {
                    continue;
                };
                let before = r.status(key(id));
                match r.receive(frame) {
                    Ok(Some(p)) => {
                        if let StreamOp::Data(d) = p.op {
                            assert!(
                                d.is_empty() || std::ptr::eq(d.as_ptr(), frame.payload.as_ptr()),
                                "received data is not borrowed from the frame"
                            );
                        }
                    }
                    Ok(None) => panic!("a stream frame was not taken as a stream packet"),
                    Err(_) => assert_eq!(
                        r.status(key(id)),
                        before,
                        "a refused frame changed the stream"
                    ),
                }
            }
            2 => {
                let _ = r.take_assembled(key(id));
            }
            3 => {
                let _ = r.close(key(id));
            }
            _ => {
                let d = [0u8; 3];
                let op = match (op >> 3) % 7 {
                    0 => StreamOp::Data(&d),
                    1 => StreamOp::Hole(StreamHole {
                        length: 5,
                        flags: 0,
                    }),
                    2 => StreamOp::Eof,
                    3 => StreamOp::Finish,
                    4 => StreamOp::Abort,
                    5 => StreamOp::Confirm,
                    _ => StreamOp::Error(ErrorBody::new(1, 7, "x")),
                };
                let before = r.status(key(id));
                if r.sent(&StreamPacket::new(key(id), op)).is_err() {
                    assert_eq!(
                        r.status(key(id)),
                        before,
                        "a refused sent packet changed the stream"
                    );
                }
            }
        }
        assert!(
            r.memory() <= cap,
            "buffer memory {} above cap {cap}",
            r.memory()
        );
        assert!(r.buffered() <= r.memory(), "buffered above memory");
        assert!(r.open_streams() <= streams_max as usize, "too many streams");
        let sum: u64 = r
            .keys()
            .map(|k| r.status(k).map_or(0, |s| s.buffered))
            .sum();
        assert_eq!(
            sum,
            r.buffered(),
            "buffered differs from the sum over streams"
        );
    }

    // Round trip of the input as stream data, in chunks picked by the input.
    let chunk = 1 + (conf as usize * 7) % 600;
    let limits = Limits::builder()
        .stream_buffer_max(data.len() as u64)
        .build()
        .expect("coherent limits");
    let k = StreamKey::new(0x2000_8086, 1, 209, 1);
    let mut s = StreamSplitter::new(k, local.peer(), &limits)
        .and_then(|s| s.with_chunk(chunk, &limits))
        .expect("chunk within limits");
    let mut back = Reassembler::new(local, &limits, Compat::Strict);
    back.open(k, StreamOptions::new().assemble(true))
        .expect("one stream");
    let mut wire = Vec::new();
    for p in s.data(data).expect("open splitter") {
        p.encode(&mut wire, &limits).expect("data packet encodes");
    }
    s.end()
        .and_then(|p| p.encode(&mut wire, &limits))
        .expect("end packet encodes");
    for f in frames(&wire, &limits, Compat::Strict) {
        let (_, f) = f.expect("split frames decode");
        back.receive(f).expect("split packets reassemble");
    }
    assert_eq!(
        back.take_assembled(k).expect("open").data,
        data,
        "round trip changed the data"
    );
}

#[cfg(test)]
mod tests {
    /// A few thousand pseudo-random programs built from valid operation encodings: a smoke run of
    /// the harness without libFuzzer that reaches data, holes, ends and the caps.
    #[test]
    fn harness_survives_random_programs() {
        super::stream_reassembly(&[]);
        super::stream_reassembly(&[0xff; 64]);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let mut prog = vec![next() as u8];
            for _ in 0..(next() % 40) {
                let r = next();
                let kind = (r % 5) as u8;
                // op byte: kind in op % 5, selectors in the upper bits
                let op = kind + 5 * ((r >> 8) as u8 % 51);
                prog.push(op);
                prog.push((r >> 16) as u8 % 5);
                if kind == 1 {
                    let len = [0u16, 3, 12, 100, 600][(r >> 24) as usize % 5];
                    prog.extend_from_slice(&len.to_be_bytes());
                    prog.extend(std::iter::repeat_n((r >> 32) as u8, len as usize));
                }
            }
            super::stream_reassembly(&prog);
        }
    }
}
