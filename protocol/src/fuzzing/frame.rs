//! Targets `header` and `frame_stream`: the length word, the header and the FD count, one-shot and
//! incremental.

use super::cursor::Cursor;
use super::setup::fuzz_limits;
use crate::*;

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
    // One re-encoding buffer per thread, reused: the target allocates nothing per input once it
    // has grown (allocation under ASan was most of this target's cost).
    thread_local! {
        static AGAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    AGAIN.with_borrow_mut(|again| {
        for compat in [Compat::Strict, Compat::Libvirt] {
            let Ok(Parsed::Complete {
                value: frame,
                consumed,
            }) = parse_frame(data, &limits, compat)
            else {
                continue;
            };
            assert_eq!(frame.bytes.len(), consumed);
            again.clear();
            frame
                .encode(again, &limits)
                .expect("a decoded frame must encode within the same limits");
            assert_eq!(&again[..], frame.bytes, "frame re-encoding differs");
            match Message::decode(frame, &limits, compat) {
                Ok(m) if compat == Compat::Strict => {
                    again.clear();
                    m.encode(again, &limits)
                        .expect("strict message must encode");
                    assert_eq!(
                        &again[..],
                        frame.bytes,
                        "strict message re-encoding differs"
                    );
                    let lib = Message::decode(frame, &limits, Compat::Libvirt)
                        .expect("strict accepted a message libvirt mode refused");
                    assert_eq!(lib.body, m.body);
                }
                _ => {}
            }
        }
    });
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
    let mut input = Cursor::new(data);
    let conf = input.u8();
    let limits = fuzz_limits(conf);
    let compat = if conf & 4 == 0 {
        Compat::Strict
    } else {
        Compat::Libvirt
    };
    let max_chunk = 1 + (conf as usize >> 3) * 37;
    let seed = input.u16();
    let stream = input.rest();

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
