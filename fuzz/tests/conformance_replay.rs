//! Replays every seed (`corpus/<target>/`) and regression (`corpus/regressions/<target>/`) of the
//! targets over the conformance crate (`virtwire_conformance::fuzzing`) through the same harness, on
//! stable, as part of `cargo test` (as `replay.rs` does for the protocol crate's targets).

use std::path::{Path, PathBuf};

use virtwire_conformance::fuzzing;

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
fn replay_capture_file() {
    replay("capture_file", 8, fuzzing::capture_file);
}

#[test]
fn replay_trace_parse() {
    replay("trace_parse", 8, fuzzing::trace_parse);
}

#[test]
fn replay_known_list() {
    replay("known_list", 8, fuzzing::known_list);
}

#[test]
fn replay_uri() {
    replay("uri", 8, fuzzing::uri);
}

/// The seeds reach what the targets are for: the captures decode to messages, the traces parse,
/// the list lines carry signatures, the URIs parse. A seed directory of inputs the parsers refuse
/// would replay green and fuzz nothing.
#[test]
fn seeds_reach_the_parsers() {
    use virtwire_conformance::runner::lists::{ListKind, known_line};
    use virtwire_conformance::target::TargetUri;
    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    let traces = inputs("trace_parse")
        .iter()
        .filter(|p| {
            virtwire_conformance::trace::parse(&String::from_utf8_lossy(&read(p)), "t").is_ok()
        })
        .count();
    assert!(traces >= 8, "only {traces} trace seeds parse");
    let signed = inputs("known_list")
        .iter()
        .filter(|p| {
            let data = read(p);
            let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
            matches!(
                known_line(&String::from_utf8_lossy(line), "seed", ListKind::Flaky),
                Ok(Some(k)) if k.signature.is_some()
            )
        })
        .count();
    assert!(
        signed >= 8,
        "only {signed} known_list seeds carry a signature"
    );
    let uris = inputs("uri")
        .iter()
        .filter(|p| TargetUri::parse(&String::from_utf8_lossy(&read(p))).is_ok())
        .count();
    assert!(uris >= 8, "only {uris} URI seeds parse");
}
