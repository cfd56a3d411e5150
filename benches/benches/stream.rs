//! Streams and split replies.
//!
//! `cargo bench -p virtwire-benches --bench stream` (add `-- <filter>` for one group).
//!
//! - `stream_split`: data → STREAM packets of 262120 bytes → encoded frames in one buffer.
//! - `stream_reassemble`: those frames → packets again: `zero_copy` (borrowed data, nothing copied),
//!   `assemble` (one contiguous buffer), `incremental` (bytes fed to the `FrameDecoder` in 64 KiB
//!   reads, then assembled), against `memcpy` (copying the data once: the floor of any assembling).
//!   1 and 32 MiB; 1 GiB too with `VIRTWIRE_BENCH_GIB=1`.
//! - `split_reply`: a 64 MiB reply as split parts (NOT libvirt's protocol) against one 64 MiB message
//!   under a limit raised to fit it, on the sending side (`encode/*`) and the receiving side
//!   (`decode/*`: the wire bytes in a buffer; `recv/*`: the bytes fed in 256 KiB reads to the
//!   incremental decoder, as a socket would give them), against `read_every_byte`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use virtwire_benches::{MIB, data};
use virtwire_protocol::stream::{
    Reassembler, Side, SplitReplyAssembler, SplitReplyCodec, SplitReplyEvent, StreamKey, StreamOp,
    StreamOptions, StreamSplitter,
};
use virtwire_protocol::{
    Compat, Frame, FrameDecoder, Header, Limits, MessageStatus, encode_frame, frames,
};

const REMOTE: u32 = 0x2000_8086;
const KEY: StreamKey = StreamKey::new(REMOTE, 1, 208, 1);

fn split(data: &[u8], l: &Limits, out: &mut Vec<u8>) {
    out.clear();
    let mut s = StreamSplitter::new(KEY, Side::Client, l).unwrap();
    for p in s.data(data).unwrap() {
        p.encode(out, l).unwrap();
    }
    s.finish().unwrap().encode(out, l).unwrap();
}

/// The sizes streamed: 1 and 32 MiB, and 1 GiB when `VIRTWIRE_BENCH_GIB=1` (scripts/bench.sh sets
/// it; about 4 GiB of memory at the peak, so not in `cargo test --benches`).
fn sizes() -> Vec<usize> {
    let mut v = vec![MIB, 32 * MIB];
    if std::env::var_os("VIRTWIRE_BENCH_GIB").is_some_and(|v| v == "1") {
        v.push(1024 * MIB);
    }
    v
}

fn stream(c: &mut Criterion) {
    let l = Limits::default();
    for size in sizes() {
        let input = data(size);
        let mut wire = Vec::with_capacity(size + size / 1000 + 64);
        split(&input, &l, &mut wire);
        let label = format!("{}MiB", size / MIB);

        let mut g = c.benchmark_group("stream_split");
        g.sample_size(10);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("encode", &label), |b| {
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                split(black_box(&input), &l, &mut out);
                black_box(out.len())
            })
        });
        g.finish();

        let mut g = c.benchmark_group("stream_reassemble");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("zero_copy", &label), |b| {
            b.iter(|| {
                let mut r = Reassembler::new(Side::Server, &l, Compat::Strict);
                r.open(KEY, StreamOptions::new()).unwrap();
                let mut n = 0usize;
                for f in frames(black_box(&wire), &l, Compat::Strict) {
                    if let Some(p) = r.receive(f.unwrap().1).unwrap()
                        && let StreamOp::Data(d) = p.op
                    {
                        n += d.len();
                    }
                }
                assert_eq!(n, size);
                n
            })
        });
        let la = l
            .to_builder()
            .stream_buffer_max(size as u64)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("assemble", &label), |b| {
            b.iter(|| {
                let mut r = Reassembler::new(Side::Server, &la, Compat::Strict);
                r.open(KEY, StreamOptions::new().assemble(true)).unwrap();
                for f in frames(black_box(&wire), &la, Compat::Strict) {
                    r.receive(f.unwrap().1).unwrap();
                }
                r.take_assembled(KEY).unwrap().data
            })
        });
        g.bench_function(BenchmarkId::new("incremental", &label), |b| {
            b.iter(|| {
                let mut r = Reassembler::new(Side::Server, &la, Compat::Strict);
                r.open(KEY, StreamOptions::new().assemble(true)).unwrap();
                let mut d = FrameDecoder::new(&la, Compat::Strict);
                for read in black_box(&wire).chunks(64 * 1024) {
                    d.feed(read);
                    while let Some(f) = d.next_frame().unwrap() {
                        r.receive(f.frame()).unwrap();
                    }
                }
                r.take_assembled(KEY).unwrap().data
            })
        });
        g.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            b.iter(|| black_box(&input).to_vec())
        });
        g.finish();
    }
}

fn split_reply(c: &mut Criterion) {
    let size = 64 * MIB;
    let payload = data(size);
    let header = Header::call(REMOTE, 344, 9).reply_to(MessageStatus::Ok);
    // One message: the limit raised just enough.
    let one_l = Limits::builder()
        .message_max(size as u32 + 24)
        .build()
        .unwrap();
    // Split: today's 32 MiB parts, at most 8 parts / 256 MiB.
    let codec = SplitReplyCodec::new(&Limits::default(), 8, 256 * MIB as u64).unwrap();
    let plan = codec.plan(size as u64).unwrap();
    let mut one_wire = Vec::new();
    encode_frame(&mut one_wire, &header, None, &payload, &one_l).unwrap();
    let mut split_wire = Vec::new();
    codec
        .encode_into(&header, &payload, &mut split_wire)
        .unwrap();
    assert_eq!(split_wire.len() as u64, plan.wire_bytes());
    assert_eq!(one_wire.len() as u64, plan.single_message_bytes());
    eprintln!(
        "split_reply: {} B payload, {} parts, {} B wire (one message: {} B, +{} B = {:.6} %)",
        size,
        plan.parts,
        plan.wire_bytes(),
        plan.single_message_bytes(),
        plan.extra_bytes(),
        plan.extra_percent()
    );

    let mut g = c.benchmark_group("split_reply");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("encode/one_message", |b| {
        let mut out = Vec::with_capacity(one_wire.len());
        b.iter(|| {
            out.clear();
            encode_frame(&mut out, &header, None, black_box(&payload), &one_l).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("encode/split", |b| {
        let mut out = Vec::with_capacity(split_wire.len());
        b.iter(|| {
            out.clear();
            codec
                .encode_into(&header, black_box(&payload), &mut out)
                .unwrap()
        })
    });
    g.bench_function("decode/one_message", |b| {
        b.iter(|| {
            let f = Frame::decode(black_box(&one_wire), &one_l, Compat::Strict).unwrap();
            black_box(f.payload.len())
        })
    });
    g.bench_function("decode/split", |b| {
        b.iter(|| {
            let mut a = SplitReplyAssembler::new(codec);
            let mut out = None;
            for f in frames(black_box(&split_wire), codec.limits(), Compat::Strict) {
                if let SplitReplyEvent::Complete(r) = a.push(f.unwrap().1).unwrap() {
                    out = Some(r.payload.into_owned());
                }
            }
            out.unwrap()
        })
    });
    g.bench_function("recv/one_message", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(&one_l, Compat::Strict);
            let mut out = None;
            for read in black_box(&one_wire).chunks(256 * 1024) {
                d.feed(read);
                if let Some(f) = d.next_frame().unwrap() {
                    out = Some(f);
                }
            }
            out.unwrap()
        })
    });
    g.bench_function("recv/split", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(codec.limits(), Compat::Strict);
            let mut a = SplitReplyAssembler::new(codec);
            let mut out = None;
            for read in black_box(&split_wire).chunks(256 * 1024) {
                d.feed(read);
                while let Some(f) = d.next_frame().unwrap() {
                    if let SplitReplyEvent::Complete(r) = a.push(f.frame()).unwrap() {
                        out = Some(r.payload.into_owned());
                    }
                }
            }
            out.unwrap()
        })
    });
    g.bench_function("read_every_byte", |b| {
        b.iter(|| {
            black_box(&payload)
                .iter()
                .fold(0u8, |acc, &x| acc.wrapping_add(x))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Large inputs on a shared 2-core machine: few samples, short runs.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = stream, split_reply
}
criterion_main!(benches);
