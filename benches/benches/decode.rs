//! The issue-11 table: ours against libvirt.so 9.0's own code, in the same run.
//!
//! `cargo bench -p virtwire-benches --bench decode [--features libvirt] [-- <filter>]`
//! (`scripts/bench.sh` runs it with the anchors and prints the table).
//!
//! - `body/2000`: the GET_ALL_DOMAIN_STATS reply for 2000 domains (390,000 typed params, 14.5 MB),
//!   whole frame to value: `libvirt` (`virNetMessageDecodeLength` + `DecodeHeader` +
//!   `DecodePayload` + `xdr_free`, the frame copied into the message's buffer as the daemon reads
//!   it), `tape` (frame, header, body into a reused [`TapeBuf`]), `tape_fresh` (a new tape each
//!   time, dropped), `tree` (the [`Value`](virtwire_protocol::schema::Value) tree, dropped) and
//!   `validate` (the check alone).
//! - `header`: frame + header of one 28-byte message (`frame_header/ours` is `Frame::decode`) and of
//!   1000 messages back to back (`frames`, the iterator a stream is split with), against
//!   `virNetMessageDecodeLength` + `DecodeHeader` (`frame_header/libvirt`).
//! - `encode/2000`: the reply's value encoded to a frame: ours from the tree (`tree`) against
//!   libvirt's send path (`libvirt_message`: `EncodeHeader` + `EncodePayload`, which re-encodes into
//!   a 4× larger buffer until the value fits) and its filter alone into a large enough buffer
//!   (`libvirt_xdr`).
//! - `scaling/<what>/<domains>`: decode (tape), validate and encode at 1, 10, 100, 1000 and 2000
//!   domains, throughput in typed params (elements/s), for the flat-per-param table.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use virtwire_benches::{PARAMS_PER_DOMAIN, schema, stats_frame, stats_header};
use virtwire_protocol::schema::{Schema, TapeBuf};
use virtwire_protocol::{Compat, Frame, FrameBuilder, Header, KeepaliveProc, Limits, frames};

const COMPAT: Compat = Compat::Libvirt;

fn body(c: &mut Criterion) {
    let s = schema();
    let l = Limits::default();
    let frame = stats_frame(2000);
    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    #[cfg(feature = "libvirt")]
    {
        use virtwire_libvirt_oracle::anchor::{Anchor, Filter};
        let filter = Filter::named("remote_connect_get_all_domain_stats_ret").expect("filter");
        let mut a = Anchor::new();
        assert!(a.decode_body(&frame, filter), "libvirt rejects the reply");
        g.bench_function(BenchmarkId::new("libvirt", 2000), |b| {
            b.iter(|| a.decode_body(black_box(&frame), filter))
        });
    }
    let mut buf = TapeBuf::new();
    g.bench_function(BenchmarkId::new("tape", 2000), |b| {
        b.iter(|| {
            let f = Frame::decode(black_box(&frame), &l, COMPAT).unwrap();
            let base = f.payload_offset() as u64;
            let t = s
                .decode_body_tape(
                    &f.header,
                    f.payload,
                    base,
                    &l,
                    COMPAT,
                    std::mem::take(&mut buf),
                )
                .unwrap();
            let n = t.node_count();
            buf = t.into_buf();
            n
        })
    });
    g.bench_function(BenchmarkId::new("tape_fresh", 2000), |b| {
        b.iter(|| {
            let f = Frame::decode(black_box(&frame), &l, COMPAT).unwrap();
            let base = f.payload_offset() as u64;
            s.decode_body_tape(&f.header, f.payload, base, &l, COMPAT, TapeBuf::new())
                .unwrap()
                .node_count()
        })
    });
    g.bench_function(BenchmarkId::new("tree", 2000), |b| {
        b.iter(|| {
            let f = Frame::decode(black_box(&frame), &l, COMPAT).unwrap();
            let base = f.payload_offset() as u64;
            s.decode_body(&f.header, f.payload, base, &l, COMPAT)
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("validate", 2000), |b| {
        b.iter(|| {
            let f = Frame::decode(black_box(&frame), &l, COMPAT).unwrap();
            let base = f.payload_offset() as u64;
            s.validate_body(&f.header, f.payload, base, &l, COMPAT)
                .unwrap()
        })
    });
    g.finish();
}

fn header(c: &mut Criterion) {
    let l = Limits::default();
    let ping = KeepaliveProc::Ping.frame();
    let mut g = c.benchmark_group("header");
    g.throughput(Throughput::Elements(1));
    #[cfg(feature = "libvirt")]
    {
        let mut a = virtwire_libvirt_oracle::anchor::Anchor::new();
        assert_eq!(a.frame_header(&ping), Some(1));
        g.bench_function("frame_header/libvirt", |b| {
            b.iter(|| a.frame_header(black_box(&ping)))
        });
    }
    g.bench_function("frame_header/ours", |b| {
        b.iter(|| {
            Frame::decode(black_box(&ping), &l, COMPAT)
                .map(|f| f.header.procedure)
                .ok()
        })
    });
    // 1000 messages back to back: what splitting a stream costs per message.
    let mut stream = Vec::new();
    for i in 0..1000u32 {
        let h = Header::call(0x2000_8086, 1 + (i % 400) as i32, i);
        stream.extend(FrameBuilder::new(h).encode(&l).unwrap());
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function("frames/ours/1000", |b| {
        b.iter(|| {
            let mut n = 0i64;
            for f in frames(black_box(&stream), &l, COMPAT) {
                n += f.unwrap().1.header.procedure as i64;
            }
            n
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let s = schema();
    let l = Limits::default();
    let frame = stats_frame(2000);
    let f = Frame::decode(&frame, &l, COMPAT).unwrap();
    let value = s.decode_body(&f.header, f.payload, 28, &l, COMPAT).unwrap();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    #[cfg(feature = "libvirt")]
    {
        use virtwire_libvirt_oracle::anchor::{Anchor, Filter};
        let filter = Filter::named("remote_connect_get_all_domain_stats_ret").expect("filter");
        let mut a = Anchor::new();
        assert!(a.decode_and_keep(&frame, filter));
        assert_eq!(a.encode_message(), Some(frame.len()));
        assert_eq!(a.encode_xdr(frame.len()), Some(frame.len() - 28));
        g.bench_function(BenchmarkId::new("libvirt_message", 2000), |b| {
            b.iter(|| a.encode_message())
        });
        g.bench_function(BenchmarkId::new("libvirt_xdr", 2000), |b| {
            b.iter(|| a.encode_xdr(frame.len()))
        });
    }
    let h = stats_header();
    let mut out = Vec::with_capacity(frame.len());
    g.bench_function(BenchmarkId::new("tree", 2000), |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&h.to_bytes());
            s.encode_body(&h, black_box(&value), &mut out, &l).unwrap();
            let len = (out.len() as u32).to_be_bytes();
            out[..4].copy_from_slice(&len);
            out.len()
        })
    });
    g.finish();
}

fn scaling_one(c: &mut Criterion, s: &Schema, domains: u32) {
    let l = Limits::default();
    let frame = stats_frame(domains);
    let f = Frame::decode(&frame, &l, COMPAT).unwrap();
    let value = s.decode_body(&f.header, f.payload, 28, &l, COMPAT).unwrap();
    let params = u64::from(domains * PARAMS_PER_DOMAIN);
    let mut g = c.benchmark_group("scaling");
    g.throughput(Throughput::Elements(params));
    if domains >= 1000 {
        g.sample_size(10).measurement_time(Duration::from_secs(3));
    }
    let mut buf = TapeBuf::new();
    g.bench_function(BenchmarkId::new("decode", domains), |b| {
        b.iter(|| {
            let t = s
                .decode_body_tape(
                    &f.header,
                    black_box(f.payload),
                    28,
                    &l,
                    COMPAT,
                    std::mem::take(&mut buf),
                )
                .unwrap();
            buf = t.into_buf();
        })
    });
    g.bench_function(BenchmarkId::new("validate", domains), |b| {
        b.iter(|| {
            s.validate_body(&f.header, black_box(f.payload), 28, &l, COMPAT)
                .unwrap()
        })
    });
    let mut out = Vec::with_capacity(frame.len());
    g.bench_function(BenchmarkId::new("encode", domains), |b| {
        b.iter(|| {
            out.clear();
            s.encode_body(&f.header, black_box(&value), &mut out, &l)
                .unwrap();
            out.len()
        })
    });
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let s = schema();
    for d in [1, 10, 100, 1000, 2000] {
        scaling_one(c, &s, d);
    }
}

criterion_group!(benches, body, header, encode, scaling);
criterion_main!(benches);
