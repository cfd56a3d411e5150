//! Replays every seed (`corpus/<target>/`) and every regression (`corpus/regressions/<target>/`)
//! through the same harness the fuzz targets run, on stable, as part of `cargo test`.

use std::path::{Path, PathBuf};

use virtwire_protocol::fuzzing;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// Every file under `corpus/<target>/` and `corpus/regressions/<target>/`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [
        corpus_root().join(target),
        corpus_root().join("regressions").join(target),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let p = e.expect("readable corpus dir").path();
            if p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, min_seeds: usize, f: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= min_seeds,
        "corpus/{target}/ holds {} inputs, expected at least {min_seeds}",
        files.len()
    );
    for p in &files {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(
            r.is_ok(),
            "{target}: input {} fails the harness",
            p.display()
        );
    }
    eprintln!("{target}: replayed {} inputs", files.len());
}

#[test]
fn replay_header() {
    replay("header", 5, fuzzing::header);
}

#[test]
fn replay_frame_stream() {
    replay("frame_stream", 5, fuzzing::frame_stream);
}

#[test]
fn replay_body() {
    replay("body", 20, fuzzing::body);
}

#[test]
fn replay_validate_vs_decode() {
    replay("validate_vs_decode", 20, fuzzing::validate_vs_decode);
}

#[test]
fn replay_stream() {
    replay("stream", 8, fuzzing::stream);
}

#[test]
fn replay_stream_reassembly() {
    replay("stream_reassembly", 8, fuzzing::stream_reassembly);
}

#[test]
fn replay_roundtrip_structured() {
    replay("roundtrip_structured", 3, fuzzing::roundtrip_structured);
}

/// Regenerates `corpus/roundtrip_structured/`: one small input per body shape, found by a seeded
/// search over byte strings (run with `cargo test -- --ignored generate_structured_seeds`).
#[test]
#[ignore = "writes seed files; run by hand to regenerate"]
fn generate_structured_seeds() {
    use arbitrary::{Arbitrary, Unstructured};
    use fuzzing::ArbMessage;
    let dir = corpus_root().join("roundtrip_structured");
    std::fs::create_dir_all(&dir).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut found = std::collections::BTreeMap::new();
    for _ in 0..400_000 {
        let len = 8 + (x % 120) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let Ok(m) = ArbMessage::arbitrary(&mut Unstructured::new(&bytes)) else {
            continue;
        };
        let shape = format!("{:?}", m.body);
        let mut name = shape.split(['(', ' ', '{']).next().unwrap().to_lowercase();
        if let fuzzing::ArbBody::Typed(prog, _, role) = m.body {
            // Typed bodies: one seed per (program, role), so every program's schema is reached.
            name = format!("typed-program{}-role{}", prog % 8, role % 3);
        }
        found.entry(name).or_insert(bytes);
    }
    for (name, bytes) in &found {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
    assert!(found.len() >= 10, "only {} shapes found", found.len());
}

/// Regenerates `corpus/stream/` (scripts that upload or download on several streams with data,
/// holes and ends) and `corpus/stream_reassembly/` (operation programs), by a seeded search.
#[test]
#[ignore = "writes seed files; run by hand to regenerate"]
fn generate_stream_seeds() {
    use arbitrary::{Arbitrary, Unstructured};
    use fuzzing::{StreamScript, StreamStep};
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let dir = corpus_root().join("stream");
    std::fs::create_dir_all(&dir).unwrap();
    let mut found = std::collections::BTreeMap::new();
    for _ in 0..100_000 {
        let bytes = next(24 + 40);
        let Ok(s) = StreamScript::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        let has = |f: fn(&StreamStep) -> bool| s.steps.iter().any(f);
        let (d, h, e) = (
            has(|s| matches!(s, StreamStep::Data { .. })),
            has(|s| matches!(s, StreamStep::Hole { .. })),
            has(|s| matches!(s, StreamStep::End { .. })),
        );
        let sparse = s.sparse.iter().any(|b| *b);
        let name = format!(
            "{}{}{}{}{}",
            if s.server_sends { "download" } else { "upload" },
            if d { "-data" } else { "" },
            if h {
                if sparse {
                    "-sparse-holes"
                } else {
                    "-refused-holes"
                }
            } else {
                ""
            },
            if e { "-end" } else { "" },
            if s.steps.len() > 4 {
                "-interleaved"
            } else {
                ""
            },
        );
        found.entry(name).or_insert(bytes);
    }
    for (name, bytes) in &found {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
    assert!(
        found.len() >= 8,
        "only {} stream scripts found",
        found.len()
    );
    let dir = corpus_root().join("stream_reassembly");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..8 {
        std::fs::write(dir.join(format!("program-{i}.bin")), next(64 + 16 * i)).unwrap();
    }
}

/// The differential corpus through libvirt.so.0's decoder and ours (needs `--features libvirt`),
/// with what each seed reached: every seed whose body the oracle maps to a value (and that is not a
/// `synthetic-*` hostile frame or a `*-malformed` captured one, scripts/make-seeds.py) must reach a
/// value comparison, and every value-mapped body must be
/// value-compared on some seed — a mapping that silently stops matching fails here.
#[cfg(feature = "libvirt")]
#[test]
fn replay_differential_libvirt() {
    use std::collections::BTreeMap;
    use virtwire_libvirt_oracle::{Libvirt, Proc};
    use virtwire_protocol::Header;
    use virtwire_protocol::fuzzing::{BodyCompared, Compared};

    let files = inputs("differential_libvirt");
    assert!(files.len() >= 100, "{} seeds", files.len());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut valued: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in &files {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let r = std::panic::catch_unwind(|| fuzzing::differential_libvirt(&data, &Libvirt));
        let Ok(compared) = r else {
            panic!(
                "differential_libvirt: input {} fails the harness",
                p.display()
            );
        };
        let stage = match &compared {
            Compared::LengthRejected => "length rejected",
            Compared::Incomplete => "incomplete",
            Compared::HeaderRejected => "header rejected",
            Compared::FdsRejected => "FD count rejected",
            Compared::Header => "header only (body not decoded by the oracle)",
            Compared::Body { reached, .. } => match reached {
                BodyCompared::Rejected => "body rejected by both",
                BodyCompared::Accepted => "body accepted by both (verdict only)",
                BodyCompared::Value => "body values compared",
            },
        };
        *counts.entry(stage).or_default() += 1;
        if let Compared::Body {
            filter,
            reached: BodyCompared::Value,
        } = compared
        {
            *valued.entry(filter).or_default() += 1;
        }
        // What the oracle would decode for this frame's header, if it is a whole frame.
        let h = Header::peek(&data);
        let mapped = (data.len() >= 28)
            .then(|| h.header())
            .flatten()
            .and_then(|h| Proc::of(&h, data.len() - 28))
            .filter(|w| w.maps_value());
        if let Some(w) = mapped
            && !name.starts_with("synthetic-")
            && !name.contains("-malformed")
            && compared.body() != Some(BodyCompared::Value)
        {
            problems.push(format!(
                "{name}: xdr_{} maps a value, but the seed reached {compared:?}",
                w.filter_name()
            ));
        }
    }
    for w in Proc::VALUE_MAPPED {
        if !valued.contains_key(w.filter_name()) {
            problems.push(format!(
                "no seed reaches a value comparison of xdr_{}",
                w.filter_name()
            ));
        }
    }
    eprintln!(
        "differential_libvirt: {} seeds: {counts:?}; value comparisons per filter: {valued:?}",
        files.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
