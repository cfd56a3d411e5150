//! Performance anchor: one frame through libvirt 9.0's own decoder (libvirt.so.0, the same calls the
//! daemon makes) and through ours (validate-only walk and full decode, libvirt-compatible mode).
//!
//!     scripts/capture.sh big /tmp/big.pcapng            # a 14.5 MB GET_ALL_DOMAIN_STATS reply
//!     (extract the reply frame, e.g. with scripts/make-seeds.py's stream reader, to FRAME)
//!     cd fuzz && cargo run --release -p virtwire-libvirt-oracle --example anchor -- FRAME [RUNS]
//!
//! Prints the best of RUNS (default 5) wall times for each. A measurement, not a test.

use std::time::{Duration, Instant};

use virtwire_protocol::fuzzing::LibvirtVerdict;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{Compat, Frame, Limits};

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: anchor FRAME [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("anchor: {path}: {e}");
        std::process::exit(2)
    });
    let schema = virtwire_protocol::fuzzing::protocol_dir()
        .and_then(|d| Schema::load_dir(&d).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| {
            eprintln!("anchor: {e}");
            std::process::exit(2)
        });
    let limits = Limits::default();
    let frame = Frame::decode(&bytes, &limits, Compat::Libvirt).unwrap_or_else(|e| {
        eprintln!("anchor: {path}: {e}");
        std::process::exit(1)
    });
    println!("frame: {} bytes, {}", bytes.len(), frame.header);
    match virtwire_libvirt_oracle::decode(&bytes) {
        LibvirtVerdict::Frame {
            body: Some(body), ..
        } if body.verdict.accepted() => {
            println!("libvirt decodes it with xdr_{}", body.filter)
        }
        other => println!("libvirt's verdict: {other:?}"),
    }
    let lv = best(runs, || {
        std::hint::black_box(virtwire_libvirt_oracle::decode(&bytes));
    });
    let base = frame.payload_offset() as u64;
    let val = best(runs, || {
        schema
            .validate_body(&frame.header, frame.payload, base, &limits, Compat::Libvirt)
            .expect("valid body");
    });
    let dec = best(runs, || {
        std::hint::black_box(
            schema
                .decode_body(&frame.header, frame.payload, base, &limits, Compat::Libvirt)
                .expect("valid body"),
        );
    });
    let mb = bytes.len() as f64 / 1e6;
    for (name, d) in [
        ("libvirt.so (DecodeLength/Header/Payload + xdr_free)", lv),
        ("virtwire validate_body", val),
        ("virtwire decode_body (tree built and dropped)", dec),
    ] {
        println!(
            "{name:<55} {:>8.1} ms  {:>7.0} MB/s",
            d.as_secs_f64() * 1e3,
            mb / d.as_secs_f64()
        );
    }
}
