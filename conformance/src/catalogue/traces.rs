//! Trace cases: real sessions of libvirt's own clients (virsh, python-libvirt, a raw-socket
//! client), recorded against libvirtd 9.0.0 with the test driver, imported from the captures in
//! `corpus/traces/` and replayed as `trace/<name>` (docs/traces.md). Each needs
//! [`OPEN`]: when a client cannot even open a connection, the replays say nothing
//! more.
//!
//! The committed traces are built into the binary ([`COMMITTED`]), so `check` replays them from
//! anywhere; [`from_dir`] loads other ones. They replay against a fresh daemon serving
//! `test:///default`, one at a time: the test driver's default world is shared by the
//! connections open at the same moment, and several traces change it (suspend, destroy, define).

use std::path::Path;
use std::sync::Arc;

use super::OPEN;
use crate::replay;
use crate::runner::{Case, Level, Outcome};
use crate::trace::{self, ParseError, Trace};

macro_rules! committed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../corpus/traces/", $name, ".trace")))),*]
    };
}

/// The committed traces (`corpus/traces/*.trace`) by name, in name order.
pub const COMMITTED: &[(&str, &str)] = committed![
    "errors-c0",
    "errors-c1",
    "errors-c2",
    "errors-c3",
    "events-c1",
    "keepalive-c0",
    "lifecycle-c0",
    "lifecycle-c1",
    "list-sll-c0",
    "screenshot-stream-c0",
];

fn case_of(t: Trace) -> Case {
    replay::case(Arc::new(t)).needs(&[OPEN])
}

/// Every committed trace as a case `trace/<name>`. A trace that does not parse (a bad edit)
/// becomes a case whose verdict is "error", with the `file:line` of the problem.
pub fn traces() -> Vec<Case> {
    COMMITTED
        .iter()
        .map(
            |(name, text)| match trace::parse(text, &format!("corpus/traces/{name}.trace")) {
                Ok(t) => case_of(t),
                Err(e) => {
                    let why = e.to_string();
                    Case::new(
                        format!("{}/{name}", replay::FAMILY),
                        Level::Must,
                        "The trace parses",
                        format!("corpus/traces/{name}.trace"),
                        move |_| Err(Outcome::error(why.clone())),
                    )
                }
            },
        )
        .collect()
}

/// The traces of `dir` (its `*.trace` files, in name order).
pub fn load_dir(dir: &Path) -> Result<Vec<Trace>, ParseError> {
    let err = |message: String| ParseError {
        file: dir.display().to_string(),
        line: 0,
        message,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot read the directory: {e}")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == trace::EXTENSION))
        .collect();
    files.sort();
    files.iter().map(|f| trace::parse::load(f)).collect()
}

/// The traces of `dir` as cases `trace/<name>`.
pub fn from_dir(dir: &Path) -> Result<Vec<Case>, ParseError> {
    Ok(load_dir(dir)?.into_iter().map(case_of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/traces")
    }

    /// The built-in list is exactly the directory's traces, and each parses.
    #[test]
    fn committed_is_the_directory() {
        let on_disk: Vec<String> = load_dir(&dir())
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        let built_in: Vec<&str> = COMMITTED.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, built_in, "update COMMITTED in catalogue/traces.rs");
        for (name, text) in COMMITTED {
            let t = trace::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(trace::parse(&trace::write(&t), name).unwrap(), t, "{name}");
        }
    }

    #[test]
    fn ids() {
        let cases = traces();
        assert_eq!(cases.len(), COMMITTED.len());
        for c in &cases {
            assert!(c.id.starts_with("trace/"), "{}", c.id);
            assert_eq!(c.id.split('/').count(), 2, "{}", c.id);
            assert!(
                c.id.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "/-".contains(ch)),
                "{}",
                c.id
            );
            assert_eq!(c.needs, [OPEN]);
        }
    }
}
