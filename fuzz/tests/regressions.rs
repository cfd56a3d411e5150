//! One named test per input the fuzzers found, with the bug it caught. The files live in
//! `corpus/regressions/<target>/` (and are also replayed by `replay.rs`).

use std::path::Path;

use virtwire_protocol::fuzzing;

fn input(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/regressions")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The splitter and reassembler accepted a STREAM_HOLE of length 0, which libvirt 9.0 refuses on
/// both sides (`virCheckPositiveArgReturn` in virFDStreamSendHole and virNetClientStreamSetHole).
#[test]
fn stream_zero_length_hole_is_refused() {
    use arbitrary::{Arbitrary, Unstructured};
    use fuzzing::{StreamScript, StreamStep};
    let data = input("stream", "zero-length-hole.bin");
    // The input still has the bug's shape: a hole of length 0 on a sparse stream (the one case the
    // splitter would have let through), so the replay below still reaches the fixed check.
    let script = StreamScript::arbitrary_take_rest(Unstructured::new(&data))
        .expect("the regression input still decodes to a stream script");
    let zero_holes: Vec<u8> = script
        .steps
        .iter()
        .filter_map(|s| match s {
            StreamStep::Hole { stream, len: 0 } if script.sparse[*stream as usize % 4] => {
                Some(*stream)
            }
            _ => None,
        })
        .collect();
    assert!(
        !zero_holes.is_empty(),
        "no zero-length hole on a sparse stream in {script:?}"
    );
    fuzzing::stream(&data);
}

/// A CALL whose header status libvirt never sends (1937008277) over a body that libvirt mode
/// decodes: the harness took the encoder's refusal of that header for a broken value and panicked.
/// Libvirt mode does not judge the header's (type, status) pair; the encoder does, first.
#[test]
fn body_with_an_unexpected_header_status_is_a_leniency_not_a_bug() {
    let data = input("body", "unexpected-status-header.bin");
    fuzzing::body(&data);
}

/// A `source` line with a carriage return inside: the trace parser kept it, the writer wrote it as a
/// space, so the written trace read back as another one. The parser now refuses a `\r` inside a line.
#[test]
fn trace_with_a_carriage_return_inside_a_line_is_refused() {
    let data = input("trace_parse", "carriage-return-in-source.trace");
    let text = String::from_utf8_lossy(&data);
    let e = virtwire_conformance::trace::parse(&text, "x.trace").unwrap_err();
    assert!(e.to_string().contains("carriage return"), "{e}");
    virtwire_conformance::fuzzing::trace_parse(&data);
}
