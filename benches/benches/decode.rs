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
//! - `header/mixed/*`: frame + header per message over 100,000 distinct frames back to back
//!   (`virtwire_benches::mixed_frames`: programs, procedures, serials, types and payload lengths
//!   varying), every header field summed into a checksum all sides must agree on: ours through the
//!   `frames` iterator (borrowing, nothing copied) and through `FrameDecoder` fed 64 KiB reads (each
//!   frame copied into its own allocation and dropped), against libvirtd's receive path per message
//!   (`libvirt_daemon`: `virNetMessageNew`, `DecodeLength` with its realloc, the copy,
//!   `DecodeHeader`, `virNetMessageFree`). Divide by 100,000 for per-message figures.
//! - `encode/2000`: the reply's value encoded to a frame: ours from the tree (`tree`) against
//!   libvirt's send path (`libvirt_message`: `EncodeHeader` + `EncodePayload`, which re-encodes into
//!   a 4× larger buffer until the value fits) and its filter alone into a large enough buffer
//!   (`libvirt_xdr`).
//! - `scaling/<what>/<domains>`: decode (tape), validate and encode at 1, 10, 100, 1000 and 2000
//!   domains, throughput in typed params (elements/s), for the flat-per-param table.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use virtwire_benches::{
    MIXED_FRAMES, PARAMS_PER_DOMAIN, mixed_frames, run_frame_decoder, run_frames, schema,
    stats_frame, stats_header,
};
use virtwire_protocol::schema::{Schema, TapeBuf};
use virtwire_protocol::{Compat, Frame, Limits};

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
    // 100,000 distinct frames (programs, procedures, serials, types, lengths varying): the same
    // bytes for every side, a checksum of every header field out, so that nothing is hoisted.
    let stream = mixed_frames(MIXED_FRAMES);
    let expect = run_frames(&stream, &l, COMPAT);
    assert_eq!(expect.0, u64::from(MIXED_FRAMES));
    assert_eq!(run_frame_decoder(&stream, &l, COMPAT), expect);
    let mut g = c.benchmark_group("header");
    g.throughput(Throughput::Elements(u64::from(MIXED_FRAMES)));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    #[cfg(feature = "libvirt")]
    {
        let mut a = virtwire_libvirt_oracle::anchor::Anchor::new();
        assert_eq!(
            virtwire_benches::run_libvirt_daemon(&mut a, &stream),
            expect
        );
        g.bench_function("mixed/libvirt_daemon", |b| {
            b.iter(|| virtwire_benches::run_libvirt_daemon(&mut a, black_box(&stream)))
        });
    }
    g.bench_function("mixed/frames", |b| {
        b.iter(|| run_frames(black_box(&stream), &l, COMPAT))
    });
    g.bench_function("mixed/frame_decoder_64k", |b| {
        b.iter(|| run_frame_decoder(black_box(&stream), &l, COMPAT))
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
