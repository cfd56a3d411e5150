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
    fuzzing::stream(&input("stream", "zero-length-hole.bin"));
}
