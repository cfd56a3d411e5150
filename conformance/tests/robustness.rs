//! Hostile input never panics the decoder: corrupted real captures, corrupted frame streams, arbitrary
//! bytes — each run ends with records and counts, whatever the bytes.

mod support;

use std::sync::OnceLock;

use proptest::prelude::*;
use virtwire_conformance::wire::{Decoder, Options, Record};
use virtwire_protocol::Compat;

fn decoder(compat: Compat) -> &'static Decoder {
    static D: OnceLock<[Decoder; 2]> = OnceLock::new();
    let ds = D.get_or_init(|| {
        let make = |compat| {
            let opts = Options {
                compat,
                max_pending: 4096,
                ..Options::default()
            };
            match support::schema_or_skip("hostile input through procedure bodies") {
                Some(s) => Decoder::with_schema(opts, s),
                None => Decoder::new(opts),
            }
        };
        [make(Compat::Libvirt), make(Compat::Strict)]
    });
    &ds[usize::from(compat == Compat::Strict)]
}

fn trace(name: &str) -> &'static [u8] {
    static T: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let names = [
        "errors.pcapng",
        "screenshot-stream.pcapng",
        "domstats-small.pcapng",
    ];
    let all = T.get_or_init(|| {
        names
            .iter()
            .map(|n| {
                std::fs::read(
                    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../corpus/traces")
                        .join(n),
                )
                .unwrap()
            })
            .collect()
    });
    &all[names.iter().position(|n| *n == name).unwrap()]
}

/// Decode, rendering every record in both formats (so the renderers see the hostile values too);
/// the number of records.
fn run(bytes: &[u8], raw: bool, compat: Compat) -> u64 {
    run_counting(bytes, raw, compat).0
}

/// [`run`], returning (records, message records).
fn run_counting(bytes: &[u8], raw: bool, compat: Compat) -> (u64, u64) {
    let mut out = Vec::new();
    let mut n = 0;
    let mut messages = 0;
    let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
        n += 1;
        messages += u64::from(matches!(r, Record::Message(_)));
        let mut t = virtwire_conformance::render::RecordWriter::new(
            &mut out,
            virtwire_conformance::render::Format::Text,
        );
        virtwire_conformance::wire::Sink::record(&mut t, r)?;
        let mut j = virtwire_conformance::render::RecordWriter::new(
            Vec::new(),
            virtwire_conformance::render::Format::Json,
        );
        virtwire_conformance::wire::Sink::record(&mut j, r)?;
        let line = j.into_inner();
        serde_json::from_slice::<serde_json::Value>(&line).expect("valid JSON");
        out.clear();
        Ok(())
    };
    let d = decoder(compat);
    if raw {
        d.decode_raw("x", bytes, &mut sink).unwrap();
    } else {
        d.decode_capture("x", bytes, &mut sink).unwrap();
    }
    (n, messages)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Byte flips and truncation anywhere in a real capture (file headers, TCP headers, libvirt frames).
    #[test]
    fn corrupted_captures(
        which in prop::sample::select(vec!["errors.pcapng", "screenshot-stream.pcapng", "domstats-small.pcapng"]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        strict in any::<bool>(),
    ) {
        let mut b = trace(which).to_vec();
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        let keep = b.len() / 2 + cut.index(b.len() / 2 + 1);
        b.truncate(keep);
        let compat = if strict { Compat::Strict } else { Compat::Libvirt };
        prop_assert!(run(&b, false, compat) >= 1);
    }

    /// Flips in the libvirt payload bytes only (the TCP stream, the length words and the headers stay
    /// intact): every message is still reported, failed or not — one message record per frame.
    #[test]
    fn corrupted_frames_in_a_raw_stream(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        strict in any::<bool>(),
    ) {
        // The client side of errors.pcapng as a raw stream: rebuild it from the decoder itself,
        // with the offsets of the payload bytes (after each frame's 28-byte head).
        static RAW: OnceLock<(Vec<u8>, usize, Vec<usize>)> = OnceLock::new();
        let (raw, frames, payload) = RAW.get_or_init(|| {
            let (mut v, mut frames, mut payload) = (Vec::new(), 0, Vec::new());
            let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
                if let Record::Message(m) = r {
                    assert!(!m.frame.header.msg_type.has_fds(), "no FD frames in errors.pcapng");
                    payload.extend(v.len() + 28..v.len() + m.frame.bytes.len());
                    v.extend_from_slice(m.frame.bytes);
                    frames += 1;
                }
                Ok(())
            };
            decoder(Compat::Libvirt)
                .decode_capture("e", trace("errors.pcapng"), &mut sink)
                .unwrap();
            (v, frames, payload)
        });
        let mut b = raw.clone();
        for (at, v) in flips {
            b[payload[at.index(payload.len())]] = v;
        }
        let compat = if strict { Compat::Strict } else { Compat::Libvirt };
        let (records, messages) = run_counting(&b, true, compat);
        prop_assert!(records >= messages);
        prop_assert_eq!(messages, *frames as u64, "one message record per frame");
    }

    /// Arbitrary bytes as a raw frame stream and as a capture.
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        run(&bytes, true, Compat::Strict);
        run(&bytes, false, Compat::Libvirt);
    }
}
