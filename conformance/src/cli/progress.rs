//! Minimal terminal output of a run (until the report module lands).

use std::io::{self, Write};
use std::path::Path;

use crate::runner::{CaseReport, Progress, RunReport};

/// One line per finished case.
#[derive(Default)]
pub struct Lines;

impl Lines {
    /// A printer to stderr.
    pub fn new() -> Self {
        Lines
    }
}

impl Progress for Lines {
    fn finished(&mut self, c: &CaseReport) {
        eprintln!("{:<11} {}", c.verdict.name(), c.case.id);
    }
}

/// The failures and a summary line.
pub fn summary(r: &RunReport, out: &mut impl Write) -> io::Result<()> {
    for c in r.unexpected_failures() {
        writeln!(
            out,
            "FAIL {}\n  Requirement: {}\n  Expected: {}\n  Actual: {}\n  Rerun: {}",
            c.case.id, c.case.requirement, c.expected, c.actual, c.rerun
        )?;
    }
    writeln!(out, "{:?} in {:.1} s", r.counts(), r.duration.as_secs_f64())
}

/// Raw wire logs of failing cases.
pub fn write_wire_logs(r: &RunReport, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for c in r.cases.iter().filter(|c| c.is_failure(r.strict)) {
        let name = c.case.id.replace('/', "__");
        for w in &c.wire {
            let mut f = std::fs::File::create(
                dir.join(format!("{name}-{}.log", w.label.replace(' ', ""))),
            )?;
            for ch in &w.chunks {
                writeln!(
                    f,
                    "{} {:?} {}",
                    ch.dir,
                    ch.at,
                    crate::wire::json::hex(&ch.bytes)
                )?;
            }
        }
    }
    Ok(())
}
