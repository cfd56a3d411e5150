//! Fuzz harness of the stream layer (only with `--cfg fuzzing`): the whole logic of a
//! `stream_reassembly` target, for `fuzz/fuzz_targets/` to call in one line. A failed oracle panics
//! with the property that broke.

use crate::body::{ErrorBody, StreamHole};
use crate::frame::{Frame, FrameBuilder};
use crate::header::{MessageStatus, MessageType};
use crate::limits::Limits;
use crate::xdr::Compat;

use super::{Reassembler, Side, StreamKey, StreamOp, StreamOptions, StreamPacket, StreamSplitter};

/// A byte cursor that yields zeros once the input is used up.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (now, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        now
    }
}

const CAPS: [u64; 8] = [0, 1, 16, 100, 1000, 4096, 65_536, 1 << 20];

/// Target `stream_reassembly`: `data[0]` picks the side, the mode, the buffer cap and the streams
/// cap; the rest is a program of operations (open, receive a frame of any stream type and status,
/// record a sent packet, take, close) run against one [`Reassembler`]. Oracles: no panic; buffer
/// capacity never above `stream_buffer_max` and open streams never above `streams_max`; the bytes
/// buffered equal the sum over streams; a refused frame or packet changes nothing; received data is
/// borrowed from the frame. Then the input itself is split into packets and reassembled, and must
/// come back unchanged.
pub fn reassembly(data: &[u8]) {
    let mut b = Bytes(data);
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
    while !b.0.is_empty() && steps < 256 {
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
    for f in crate::frame::frames(&wire, &limits, Compat::Strict) {
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
        super::reassembly(&[]);
        super::reassembly(&[0xff; 64]);
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
            super::reassembly(&prog);
        }
    }
}
