//! Reports of a conformance run ([`RunReport`]) for people and CI: a terminal tree with progress
//! ([`terminal`]), JUnit XML ([`junit`]) and a JSON document with a stable schema ([`json`]).
//!
//! # What report/ owns and may import
//!
//! It owns how a run looks: the verdict words, the failure blocks, the XML and JSON shapes. It reads
//! `runner`'s result types and `wire`'s record model, and nothing else of the crate: never a target
//! (reports are the same whoever the server was) and never libvirt bytes. A case's traffic is a list
//! of raw chunks; to show it, report/ hands them to [`Decoder::decode_chunks`](crate::wire::Decoder)
//! (the wire layer reads the bytes) and shows the [`Record`](crate::wire::Record)s that come back: as
//! one-line summaries in the terminal and JUnit ([`wire_log`]), as their own serde form in JSON.
//!
//! # How a case counts ([`Standing`])
//!
//! A verdict is read with `--strict`, `--require` and the known lists: a failure (`fail`, or
//! `non-strict` under `--strict`) is *unexpected* unless the case is known-failing or known-flaky
//! *and* fails as the entry's signature says (otherwise it *fails differently*, which is
//! unexpected); a case `--require` names that is unsupported or omitted is unexpected too; a
//! known-failing case that passes, or becomes unsupported, omitted or an error, is *stale* (the list
//! must be updated: exit status 2); `error` is the harness's, whatever the lists say (exit status 3).
//!
//! # JUnit mapping ([`junit`])
//!
//! One `<testsuites name="virtwire check">` with the run's wall time; one `<testsuite>` per family
//! (the case ID up to its first `/`), in catalogue order, with the family's wall time (from its first
//! case's start to its last case's end: with `--jobs N` cases overlap, so this is not their sum, and
//! never more than the run's) and properties `target` and `strict`; one
//! `<testcase>` per case: `name` = case ID, `classname` = family, `time` = the case's duration, and
//! properties `verdict`, `level`, `source` (and `known-failing` / `known-flaky` with the reason). By
//! standing:
//!
//! | standing | element | `message` | `type` |
//! |---|---|---|---|
//! | pass, non-strict (lenient) | none (success) | | |
//! | unexpected failure | `<failure>` | Actual | `fail` / `non-strict` |
//! | fails differently | `<failure>` | `fails otherwise than its known-failing entry expects: …` | `fails-differently` |
//! | required, not run | `<failure>` | `required (--require) but unsupported: WHY` | `required-not-run` |
//! | stale known-failing | `<failure>` | `listed as known-failing (REASON) but the verdict is V: update the list` | `stale-known-failing` |
//! | error | `<error>` | Actual | `error` |
//! | known-failing failure | `<skipped>` | `known failing: REASON` | `known-failing` |
//! | known-flaky failure | `<skipped>` | `known flaky: REASON` | `known-flaky` |
//! | unsupported, omitted | `<skipped>` | `unsupported: WHY` / `omitted: WHY` | the verdict |
//!
//! The element's text is the case's block as in the terminal (Requirement, Source, Expected, Actual,
//! notes, the wire summary, the server log's tail, the rerun command), without colour. So CI counts
//! exactly what the exit status counts: failures and errors are what makes the run fail; known cases
//! are skipped, never silently passed.
//!
//! # JSON schema `virtwire-check/1` ([`json`])
//!
//! One document (pretty-printed); fields are always present (null when there is no value), in this
//! order. A later change that removes or retypes a field changes the schema name; new fields may be
//! added to `/1`.
//!
//! ```text
//! {
//!   "schema": "virtwire-check/1",
//!   "target": "test+tcp://127.0.0.1:16509/default",   // the target as users write it
//!   "strict": false,                                   // non-strict counted as failure?
//!   "started": "2026-05-01T12:00:00.000Z",             // RFC 3339 UTC, null when not given
//!   "duration_ms": 3120,                               // wall time of the run
//!   "counts": {"pass": 9, "fail": 1, "non-strict": 1, "unsupported": 1, "omitted": 1, "error": 0},
//!   "unexpected_failures": 1,                          // failures on no known list
//!   "stale_known": 0,                                  // known-failing cases that did not fail
//!   "not_run": [{"family": "keepalive", "verdict": "unsupported", // what did not run, by family
//!                "reason": "…", "count": 1, "required": 0}],     // and reason
//!   "exit_code": 1,                                    // 0 ok, 1 failures, 2 stale list, 3 harness
//!   "exit_meaning": "1 unexpected failure",
//!   "stopped": null,                                   // why the run stopped early (--max-fail, --deadline)
//!   "cases": [{                                        // catalogue order
//!     "id": "dispatch/unknown-procedure",
//!     "family": "dispatch",
//!     "requirement": "…", "source": "…",
//!     "level": "must",                                 // must | should
//!     "needs": ["handshake/connect-open"],             // cases that had to pass first
//!     "verdict": "fail",                               // pass | fail | non-strict | unsupported | omitted | error
//!     "counts_as": "failure",                          // see below
//!     "expected": "…", "actual": "…",                  // words, decoded; "" when the verdict has none
//!     "notes": ["…"],
//!     "duration_ms": 12,
//!     "started_ms": 1034,                              // since the run started (0: not run)
//!     "known": {"list": "failing", "reason": "…",      // list: failing | flaky; null when on none
//!               "at": "FILE:LINE",                     // the entry
//!               "signature": "closed; signal SIGSEGV", // the failure it expects (null: none given)
//!               "differs": null},                      // set when it failed otherwise: what did not hold
//!     "required": false,                               // named by --require
//!     "facts": [{"kind": "closed"}, {"kind": "code", "code": 39, "message": "…"},
//!               {"kind": "signal", "name": "SIGSEGV"}], // what a signature is checked against
//!     "rerun": "virtwire check --run 'dispatch/unknown-procedure'",
//!     "server_log": "…",                               // null unless the runner controlled the server
//!     "wire": [{                                       // one per connection the case opened
//!       "label": "conn 1",
//!       "records": [{"record": "message", …}, …, {"record": "summary", …}],
//!       "truncated": 0,                                // records left out (see below)
//!       "cut_sent": 0, "cut_received": 1048576,        // bytes past the wire log's cap, not kept
//!       "cap": 262144                                  // the cap each way (--wire-log-max)
//!     }]
//!   }]
//! }
//! ```
//!
//! `counts_as` is the [`Standing`]: `pass`, `non-strict` (lenient, not counted), `failure`
//! (unexpected), `known-failure` (as its signature says), `fails-differently` (listed, but failing
//! another way: unexpected), `missing-required` (named by `--require` but unsupported or omitted:
//! unexpected), `flaky` (a known-flaky case's failure), `stale-known` (listed as known-failing but
//! it passed, or became unsupported, omitted or an error), `unsupported`, `omitted`, `error`.
//!
//! `records` are exactly the objects `virtwire decode --format json` prints (the serde form of
//! [`Record`](crate::wire::Record), conformance/README.md), from
//! [`Decoder::decode_chunks`](crate::wire::Decoder::decode_chunks) over the connection's chunks with
//! `file` = the case ID and `conn` = the connection's number (1 for `conn 1`); `pkt` is the chunk's
//! number and `ts` its time in seconds since the connection opened. At most
//! [`json::Options::max_records`] records per connection are kept, then the closing `summary` record
//! (whose counts cover everything); `truncated` says how many were left out.
//!
//! A run keeps a passing case's traffic only when asked ([`Config::keep_passing_wire`](crate::runner::Config::keep_passing_wire),
//! which `check --json` sets): otherwise a passing case (on no known list) has `"wire": []`.

use std::fmt::Write as _;
use std::io;

use serde::Serialize;

use crate::runner::{CaseReport, KnownList, Level, RunReport, Verdict};
use crate::wire::Decoder;

pub mod html;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod merge;
pub mod terminal;
pub mod wire_log;

/// How a case counts for the run: its verdict read with `strict` and the known lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Passed.
    Pass,
    /// Lenient where a strict peer is not; a failure only under `--strict`.
    NonStrict,
    /// A failure on no known list: exit status 1.
    Failure,
    /// A failure the known-failing list expects, as its signature says.
    KnownFailure,
    /// A listed case that failed otherwise than its signature says: counted as unexpected (exit 1).
    FailsDifferently,
    /// Named by `--require` but unsupported or omitted: counted as unexpected (exit 1).
    MissingRequired,
    /// A failure of a known-flaky case: not counted.
    Flaky,
    /// Listed as known-failing, but did not fail: exit status 2.
    StaleKnown,
    /// Does not apply to the target.
    Unsupported,
    /// Not run: a case it needs did not pass.
    Omitted,
    /// The harness could not run it: exit status 3.
    Error,
}

impl Standing {
    /// How `case` counts in a run with `strict`.
    pub fn of(case: &CaseReport, strict: bool) -> Standing {
        if case.is_missing_required() {
            return Standing::MissingRequired;
        }
        match case.verdict {
            Verdict::Error => return Standing::Error,
            Verdict::Omitted | Verdict::Unsupported if case.is_stale_known(strict) => {
                return Standing::StaleKnown;
            }
            Verdict::Omitted => return Standing::Omitted,
            Verdict::Unsupported => return Standing::Unsupported,
            _ => {}
        }
        match (case.is_failure(strict), &case.known) {
            (true, None) => Standing::Failure,
            (true, Some(k)) if k.differs.is_some() => Standing::FailsDifferently,
            (true, Some(k)) if k.list == KnownList::Failing => Standing::KnownFailure,
            (true, Some(_)) => Standing::Flaky,
            (false, Some(k)) if k.list == KnownList::Failing => Standing::StaleKnown,
            (false, _) if case.verdict == Verdict::NonStrict => Standing::NonStrict,
            (false, _) => Standing::Pass,
        }
    }

    /// True when the case gets a block of details in the terminal (and its text in JUnit): it is
    /// what makes the run fail.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            Standing::Failure
                | Standing::FailsDifferently
                | Standing::MissingRequired
                | Standing::StaleKnown
                | Standing::Error
        )
    }
}

/// The cases that did not run (unsupported or omitted), by family and reason: what a run leaves
/// untested, said next to the counts so that a family cannot vanish unseen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotRun {
    /// The family.
    pub family: String,
    /// `unsupported` or `omitted`.
    pub verdict: Verdict,
    /// The reason, as the cases say it.
    pub reason: String,
    /// How many cases of the family have this verdict and reason.
    pub count: usize,
    /// How many of those `--require` names (each one is an unexpected failure).
    pub required: usize,
}

/// [`NotRun`] rows of `report`: families in catalogue order, reasons in order of first appearance.
pub fn not_run(report: &RunReport) -> Vec<NotRun> {
    let mut out: Vec<NotRun> = Vec::new();
    for c in &report.cases {
        if !matches!(c.verdict, Verdict::Unsupported | Verdict::Omitted) {
            continue;
        }
        let family = c.case.family();
        match out
            .iter_mut()
            .find(|r| r.family == family && r.verdict == c.verdict && r.reason == c.actual)
        {
            Some(r) => {
                r.count += 1;
                r.required += usize::from(c.required);
            }
            None => out.push(NotRun {
                family: family.to_string(),
                verdict: c.verdict,
                reason: c.actual.clone(),
                count: 1,
                required: usize::from(c.required),
            }),
        }
    }
    // Keep families together, in the order they first appear.
    let mut order: Vec<String> = Vec::new();
    for r in &out {
        if !order.contains(&r.family) {
            order.push(r.family.clone());
        }
    }
    out.sort_by_key(|r| order.iter().position(|f| *f == r.family));
    out
}

/// True for a case the run did not start because it stopped early (`--max-fail`, `--deadline`):
/// counted as omitted, not listed one by one.
pub fn not_started(report: &RunReport, case: &CaseReport) -> bool {
    report.stopped.is_some()
        && case.verdict == Verdict::Omitted
        && case.known.is_none()
        && case.actual.starts_with("not run: ")
}

/// `n thing` / `n things`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the run's exit status means, in words: `1 unexpected failure`, `2 known-failing cases now
/// pass: remove them from FILE`, … (every reason that applies, the one deciding the status first).
/// `known_list` names the known-failing list (a file, or "the known-failing list").
pub fn exit_meaning(report: &RunReport, known_list: &str) -> String {
    let errors = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Error)
        .count();
    let failures = report.unexpected_failures().count();
    let differently = report
        .cases
        .iter()
        .filter(|c| c.fails_differently(report.strict))
        .count();
    let missing = report
        .cases
        .iter()
        .filter(|c| c.is_missing_required())
        .count();
    let stale = report.stale_known().count();
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(format!(
            "{} could not be run (harness error)",
            plural(errors, "case", "cases")
        ));
    }
    if failures > 0 {
        let mut p = plural(failures, "unexpected failure", "unexpected failures");
        let mut of = Vec::new();
        if differently > 0 {
            of.push(format!(
                "{differently} listed but failing otherwise than the list expects"
            ));
        }
        if missing > 0 {
            of.push(format!("{missing} required but not run"));
        }
        if !of.is_empty() {
            p.push_str(&format!(" ({})", of.join(", ")));
        }
        parts.push(p);
    }
    if let Some(why) = &report.stopped {
        parts.push(format!("the run did not finish ({why})"));
    }
    if stale > 0 {
        parts.push(if stale == 1 {
            format!(
                "1 known-failing case no longer fails (it passes or did not run): update {known_list}"
            )
        } else {
            format!(
                "{stale} known-failing cases no longer fail (they pass or did not run): update {known_list}"
            )
        });
    }
    if parts.is_empty() {
        let known = report
            .cases
            .iter()
            .filter(|c| {
                matches!(
                    Standing::of(c, report.strict),
                    Standing::KnownFailure | Standing::Flaky
                )
            })
            .count();
        if known > 0 {
            format!(
                "all as expected ({} on the known lists)",
                plural(known, "failure", "failures")
            )
        } else {
            "all as expected".into()
        }
    } else {
        parts.join("; ")
    }
}

/// A duration for people: `0 ms`, `12 ms`, `1.25 s`, `2 min 5 s`.
pub(crate) fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// Milliseconds, saturating (for JSON).
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Text for a terminal or an XML text node: control characters (escape sequences a server put in an
/// error message or a log line) shown escaped, never interpreted.
pub(crate) fn printable(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of a log, and how many there were in all.
pub(crate) fn tail(log: &str, n: usize) -> (Vec<&str>, usize) {
    let lines: Vec<&str> = log.lines().collect();
    let total = lines.len();
    (lines[total.saturating_sub(n)..].to_vec(), total)
}

/// The details of one case that needs attention, ready to show: labelled lines, the wire summary
/// per connection, the server log's tail and the rerun command. The terminal shows it with colour,
/// JUnit as the failure's text without.
#[derive(Clone, Debug, Default)]
pub(crate) struct Details {
    /// `(label, text)`: Requirement, Source, Level, Known failing, Expected, Actual, Note…
    pub fields: Vec<(&'static str, String)>,
    /// Per connection: its label, how many records in all, the last ones as one-line summaries.
    pub wire: Vec<(String, usize, Vec<String>)>,
    /// The server log's last lines, and how many lines in all.
    pub server_log: Option<(Vec<String>, usize)>,
    /// The command that reruns the case.
    pub rerun: String,
}

impl Details {
    /// The details of `case`, with at most `wire_lines` summaries per connection and `log_lines`
    /// lines of server log.
    pub fn of(
        case: &CaseReport,
        strict: bool,
        decoder: &Decoder,
        wire_lines: usize,
        log_lines: usize,
    ) -> io::Result<Details> {
        let mut fields: Vec<(&'static str, String)> = vec![
            ("Requirement", printable(&case.case.requirement)),
            ("Source", printable(&case.case.source)),
            (
                "Level",
                match case.case.level {
                    Level::Must => "MUST".into(),
                    Level::Should => {
                        "SHOULD (lenience is non-strict, a failure with --strict)".into()
                    }
                },
            ),
        ];
        if let Some(k) = &case.known {
            let label = match k.list {
                KnownList::Failing => "Known failing",
                KnownList::Flaky => "Known flaky",
            };
            fields.push((
                label,
                format!("{} ({})", printable(&k.reason), printable(&k.at)),
            ));
            if let Some(sig) = &k.signature {
                fields.push(("Expects", format!("{{{}}}", printable(sig))));
            }
            if let Some(d) = &k.differs {
                fields.push((
                    "Fails otherwise",
                    format!(
                        "{}: not the known failure, so it counts as unexpected",
                        printable(d)
                    ),
                ));
            }
        }
        match Standing::of(case, strict) {
            Standing::StaleKnown => fields.push((
                "Stale",
                format!(
                    "listed as known-failing, but the verdict is {}: the entry no longer shows \
                     what it claims (fix it or remove it from the list)",
                    case.verdict
                ),
            )),
            Standing::MissingRequired => fields.push((
                "Required",
                format!(
                    "--require names this case, and it is {}: a required case must run",
                    case.verdict
                ),
            )),
            _ => {}
        }
        if !case.expected.is_empty() {
            fields.push(("Expected", printable(&case.expected)));
        }
        if !case.actual.is_empty() {
            fields.push(("Actual", printable(&case.actual)));
        }
        for n in &case.notes {
            fields.push(("Note", printable(n)));
        }
        let mut wire = Vec::with_capacity(case.wire.len());
        for (i, w) in case.wire.iter().enumerate() {
            let mut lines = wire_log::summarise(decoder, &case.case.id, i as u64 + 1, w)?;
            let total = lines.len();
            lines.drain(..total.saturating_sub(wire_lines));
            wire.push((printable(&w.label), total, lines));
        }
        let server_log = case.server_log.as_deref().map(|log| {
            let (lines, total) = tail(log, log_lines);
            (lines.into_iter().map(printable).collect(), total)
        });
        Ok(Details {
            fields,
            wire,
            server_log,
            rerun: case.rerun.clone(),
        })
    }
}
