//! Decode/validate speed on a synthetic CONNECT_GET_ALL_DOMAIN_STATS reply with 390,000 typed
//! params (≈14.5 MB), the largest reply libvirt routinely sends. The timing run is ignored by
//! default (no timing assertions); run it with:
//!
//!     cargo test --release -p virtwire-protocol --test schema_perf -- --ignored --nocapture

mod schema_support;

use std::time::{Duration, Instant};

use virtwire_protocol::schema::{TapeBuf, Value};
use virtwire_protocol::xdr::Writer;
use virtwire_protocol::{Compat, Header, Limits, MessageStatus};

/// The payload of a GET_ALL_DOMAIN_STATS reply: `domains` records of `per_domain` typed params
/// named like libvirt's iothread stats (`iothread.<n>.poll-max-ns` …), with unsigned values and
/// some strings, ints and doubles mixed in. 2000 × 195 mirrors the reply docs/protocol.md §11 measured
/// from a real libvirtd 9.0.0 (2000 domains × 64 iothreads: 390,000 params, 14,488,032 bytes).
fn stats_reply(domains: u32, per_domain: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.u32(domains);
    for d in 0..domains {
        w.string(format!("guest-{d:04}").as_bytes(), u32::MAX)
            .unwrap();
        w.opaque_fixed(&[d as u8; 16]);
        w.i32(d as i32 + 1);
        w.u32(per_domain);
        for i in 0..per_domain {
            let field = format!(
                "iothread.{}.{}",
                i / 3,
                ["poll-max-ns", "poll-grow", "poll-shrink"][i as usize % 3]
            );
            w.string(field.as_bytes(), u32::MAX).unwrap();
            match i % 20 {
                0 => {
                    w.i32(7);
                    w.string(format!("/images/disk{i}.qcow2").as_bytes(), u32::MAX)
                        .unwrap();
                }
                1 => {
                    w.i32(1);
                    w.i32(-(i as i32));
                }
                2 => {
                    w.i32(5);
                    w.f64(i as f64 * 0.5);
                }
                // poll-max-ns is an unsigned long long, poll-grow/-shrink unsigned ints.
                _ if i % 3 == 0 => {
                    w.i32(4);
                    w.u64(i as u64 * 4096);
                }
                _ => {
                    w.i32(2);
                    w.u32(i);
                }
            }
        }
    }
    out
}

fn header() -> Header {
    Header::call(0x2000_8086, 344, 9).reply_to(MessageStatus::Ok)
}

#[test]
fn synthetic_stats_reply_decodes_to_the_right_shape() {
    let s = schema_or_skip!();
    let body = stats_reply(10, 195);
    let lim = Limits::default();
    let v = s
        .decode_body(&header(), &body, 28, &lim, Compat::Strict)
        .unwrap();
    let Some(Value::Array(recs)) = v.field("retStats") else {
        panic!()
    };
    assert_eq!(recs.len(), 10);
    assert_eq!(
        recs[9].at("dom.name").and_then(Value::as_str),
        Some("guest-0009")
    );
    let Some(Value::Array(params)) = recs[3].field("params") else {
        panic!()
    };
    assert_eq!(params.len(), 195);
    assert_eq!(
        params[20].at("value.s").and_then(Value::as_str),
        Some("/images/disk20.qcow2")
    );
    assert_eq!(params[24].at("value.ul"), Some(&Value::UHyper(24 * 4096)));
    s.validate_body(&header(), &body, 28, &lim, Compat::Strict)
        .unwrap();
    // The tape holds the same value, and its accessors find what the tree's find.
    let tape = s
        .decode_body_tape(&header(), &body, 28, &lim, Compat::Strict, TapeBuf::new())
        .unwrap();
    assert!(tape.to_value() == v);
    let root = tape.root();
    for path in [
        "retStats[9].dom.name",
        "retStats[3].params[20].value.s",
        "retStats[3].params[24].value.ul",
        "retStats[3].params[1].value",
        "retStats[0].dom.id",
        "retStats[5].params[194].field",
    ] {
        let (a, b) = (root.at(path), v.at(path));
        assert_eq!(a.map(|i| i.to_value()).as_ref(), b, "{path}");
        assert_eq!(
            a.and_then(|i| i.as_str()),
            b.and_then(Value::as_str),
            "{path}"
        );
        assert_eq!(
            a.and_then(|i| i.as_i128()),
            b.and_then(Value::as_i128),
            "{path}"
        );
        assert_eq!(a.map(|i| i.kind_name()), b.map(Value::kind_name), "{path}");
    }
    assert!(root.at("retStats[10]").is_none() && root.at("retStats[0].nope").is_none());
    // A reused buffer keeps its nodes' storage: decoding again allocates nothing new.
    let buf = tape.into_buf();
    let cap = buf.capacity();
    let again = s
        .decode_body_tape(&header(), &body, 28, &lim, Compat::Strict, buf)
        .unwrap();
    assert!(again.to_value() == v);
    assert_eq!(again.into_buf().capacity(), cap);
    let mut out = Vec::new();
    s.encode_body(&header(), &v, &mut out, &lim).unwrap();
    assert!(out == body);
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "timing run; use --release --ignored --nocapture"]
fn time_decode_and_validate_390k_params() {
    let s = schema_or_skip!();
    let load = best_of(5, || {
        virtwire_protocol::schema::Schema::load_dir(&schema_support::libvirt_dir()).unwrap();
    });
    eprintln!("loading the nine .x files (parse + compile): {load:?}");
    let body = stats_reply(2000, 195);
    let lim = Limits::default();
    let h = header();
    let mut params = 0;
    let decode = best_of(5, || {
        let v = s.decode_body(&h, &body, 28, &lim, Compat::Strict).unwrap();
        let Some(Value::Array(recs)) = v.field("retStats") else {
            panic!()
        };
        params = recs
            .iter()
            .map(|r| match r.field("params") {
                Some(Value::Array(p)) => p.len(),
                _ => 0,
            })
            .sum::<usize>();
    });
    let (mut build, mut drop_t) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let t = Instant::now();
        let v = s.decode_body(&h, &body, 28, &lim, Compat::Strict).unwrap();
        build = build.min(t.elapsed());
        let t = Instant::now();
        drop(v);
        drop_t = drop_t.min(t.elapsed());
    }
    eprintln!("  (decode without drop {build:?}, drop {drop_t:?})");
    let decode_libvirt = best_of(5, || {
        s.decode_body(&h, &body, 28, &lim, Compat::Libvirt).unwrap();
    });
    let validate = best_of(5, || {
        s.validate_body(&h, &body, 28, &lim, Compat::Strict)
            .unwrap()
    });
    let v = s.decode_body(&h, &body, 28, &lim, Compat::Strict).unwrap();
    let encode = best_of(5, || {
        let mut out = Vec::with_capacity(body.len());
        s.encode_body(&h, &v, &mut out, &lim).unwrap();
    });
    let mb = body.len() as f64 / 1e6;
    eprintln!(
        "GET_ALL_DOMAIN_STATS reply: {:.1} MB, {params} typed params, best of 5:\n  \
         decode (strict)  {decode:?}  ({:.0} MB/s)\n  decode (libvirt) {decode_libvirt:?}\n  \
         validate         {validate:?}  ({:.0} MB/s)\n  encode           {encode:?}",
        mb,
        mb / decode.as_secs_f64(),
        mb / validate.as_secs_f64(),
    );
    assert_eq!(params, 390_000);
}
