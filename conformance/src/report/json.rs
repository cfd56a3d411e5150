//! The run as one JSON document, schema `virtwire-check/1` (documented in the [module docs](super)):
//! report-owned view structs over [`RunReport`], serialised with serde; each case's traffic is the
//! wire layer's own records, in exactly the form `virtwire decode --format json` prints them.

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Standing, exit_meaning, millis, wire_log};
use crate::runner::{CaseReport, Fact, KnownAs, Level, RunReport, Verdict};
use crate::wire::Decoder;

/// The schema's name, the document's first field.
pub const SCHEMA: &str = "virtwire-check/1";

/// What goes into the document beyond the run itself.
#[derive(Clone, Debug)]
pub struct Options {
    /// When the run started (`started`); null when not given.
    pub started: Option<SystemTime>,
    /// Wire records kept per connection before the closing summary record; the rest are counted
    /// in `truncated`.
    pub max_records: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            started: None,
            max_records: 500,
        }
    }
}

/// Cases per verdict, every verdict present.
#[derive(Serialize)]
struct CountsJson {
    pass: usize,
    fail: usize,
    #[serde(rename = "non-strict")]
    non_strict: usize,
    unsupported: usize,
    omitted: usize,
    error: usize,
}

/// One connection's traffic.
#[derive(Serialize)]
struct ConnJson<'r> {
    label: &'r str,
    records: Vec<Box<RawValue>>,
    truncated: usize,
    /// Bytes the wire log did not keep (past `cap` each way): sent, received.
    cut_sent: usize,
    cut_received: usize,
    cap: usize,
}

/// One case.
#[derive(Serialize)]
struct CaseJson<'r> {
    id: &'r str,
    family: &'r str,
    requirement: &'r str,
    source: &'r str,
    level: Level,
    needs: Vec<&'r str>,
    verdict: Verdict,
    counts_as: Standing,
    expected: &'r str,
    actual: &'r str,
    notes: &'r [String],
    duration_ms: u64,
    started_ms: u64,
    known: Option<&'r KnownAs>,
    required: bool,
    facts: &'r [Fact],
    rerun: &'r str,
    server_log: Option<&'r str>,
    wire: Vec<ConnJson<'r>>,
}

/// The document.
#[derive(Serialize)]
struct CheckJson<'r> {
    schema: &'static str,
    target: &'r str,
    strict: bool,
    started: Option<String>,
    duration_ms: u64,
    counts: CountsJson,
    unexpected_failures: usize,
    stale_known: usize,
    not_run: Vec<super::NotRun>,
    exit_code: u8,
    exit_meaning: String,
    stopped: Option<&'r str>,
    cases: Vec<CaseJson<'r>>,
}

fn case_json<'r>(
    c: &'r CaseReport,
    strict: bool,
    decoder: &Decoder,
    opts: &Options,
) -> io::Result<CaseJson<'r>> {
    let mut wire = Vec::with_capacity(c.wire.len());
    for (i, w) in c.wire.iter().enumerate() {
        let (records, truncated) =
            wire_log::records(decoder, &c.case.id, i as u64 + 1, w, opts.max_records)?;
        wire.push(ConnJson {
            label: &w.label,
            records,
            truncated,
            cut_sent: w.cut.0,
            cut_received: w.cut.1,
            cap: w.cap,
        });
    }
    Ok(CaseJson {
        id: &c.case.id,
        family: c.case.family(),
        requirement: &c.case.requirement,
        source: &c.case.source,
        level: c.case.level,
        needs: c.case.needs.iter().map(|n| n.as_ref()).collect(),
        verdict: c.verdict,
        counts_as: Standing::of(c, strict),
        expected: &c.expected,
        actual: &c.actual,
        notes: &c.notes,
        duration_ms: millis(c.duration),
        started_ms: millis(c.started),
        known: c.known.as_ref(),
        required: c.required,
        facts: &c.facts,
        rerun: &c.rerun,
        server_log: c.server_log.as_deref(),
        wire,
    })
}

fn document<'r>(
    report: &'r RunReport,
    decoder: &Decoder,
    opts: &Options,
) -> io::Result<CheckJson<'r>> {
    let counts = report.counts();
    let n = |v: Verdict| counts.get(&v).copied().unwrap_or(0);
    let cases = report
        .cases
        .iter()
        .map(|c| case_json(c, report.strict, decoder, opts))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(CheckJson {
        schema: SCHEMA,
        target: &report.target,
        strict: report.strict,
        started: opts.started.map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
        duration_ms: millis(report.duration),
        counts: CountsJson {
            pass: n(Verdict::Pass),
            fail: n(Verdict::Fail),
            non_strict: n(Verdict::NonStrict),
            unsupported: n(Verdict::Unsupported),
            omitted: n(Verdict::Omitted),
            error: n(Verdict::Error),
        },
        unexpected_failures: report.unexpected_failures().count(),
        stale_known: report.stale_known().count(),
        not_run: super::not_run(report),
        exit_code: report.exit_code(),
        exit_meaning: exit_meaning(report, "the known-failing list"),
        stopped: report.stopped.as_deref(),
        cases,
    })
}

/// Write the document (pretty-printed, with a final newline) to `out`.
pub fn to_writer(
    report: &RunReport,
    decoder: &Decoder,
    opts: &Options,
    mut out: impl Write,
) -> io::Result<()> {
    let doc = document(report, decoder, opts)?;
    serde_json::to_writer_pretty(&mut out, &doc).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Write the document to `path` (replacing it).
pub fn write(report: &RunReport, decoder: &Decoder, path: &Path, opts: &Options) -> io::Result<()> {
    let file = std::fs::File::create(path)?;
    to_writer(report, decoder, opts, io::BufWriter::new(file))
}
