//! JUnit XML for CI (with quick-junit): one test suite per family, one test case per case. The
//! mapping of verdicts to `<failure>`, `<error>` and `<skipped>` is in the [module docs](super).

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::terminal::{Paint, write_details};
use super::{Details, Standing};
use crate::runner::{CaseReport, KnownList, Level, RunReport};
use crate::wire::Decoder;

/// What goes into the XML beyond the run itself.
#[derive(Clone, Debug)]
pub struct Options {
    /// When the run started (the suites' `timestamp`); none when not given.
    pub started: Option<SystemTime>,
    /// Wire records summarised per connection in a failure's text (the last ones).
    pub wire_lines: usize,
    /// Server log lines in a failure's text (the last ones).
    pub log_lines: usize,
    /// The name of `<testsuites>`: the command the report is of (`virtwire check`,
    /// `virtwire check-client`).
    pub name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            started: None,
            wire_lines: 20,
            log_lines: 40,
            name: "virtwire check".into(),
        }
    }
}

/// The case's details as plain text (the terminal's block without colour).
fn text(case: &CaseReport, strict: bool, decoder: &Decoder, opts: &Options) -> io::Result<String> {
    let d = Details::of(case, strict, decoder, opts.wire_lines, opts.log_lines)?;
    let mut out = Vec::new();
    write_details(&mut out, &d, Paint::default(), "")?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The status of one case (see the module docs' table).
fn status(
    case: &CaseReport,
    strict: bool,
    decoder: &Decoder,
    opts: &Options,
) -> io::Result<TestCaseStatus> {
    let reason = case.known.as_ref().map_or("", |k| k.reason.as_str());
    let (mut st, message, ty) = match Standing::of(case, strict) {
        Standing::Pass | Standing::NonStrict => return Ok(TestCaseStatus::success()),
        Standing::Failure => (
            TestCaseStatus::non_success(NonSuccessKind::Failure),
            case.actual.clone(),
            case.verdict.name(),
        ),
        Standing::StaleKnown => (
            TestCaseStatus::non_success(NonSuccessKind::Failure),
            format!(
                "listed as known-failing ({reason}) but the verdict is {}: update the list",
                case.verdict
            ),
            "stale-known-failing",
        ),
        Standing::FailsDifferently => (
            TestCaseStatus::non_success(NonSuccessKind::Failure),
            format!(
                "fails otherwise than its known-failing entry expects: {}",
                case.known
                    .as_ref()
                    .and_then(|k| k.differs.as_deref())
                    .unwrap_or("")
            ),
            "fails-differently",
        ),
        Standing::MissingRequired => (
            TestCaseStatus::non_success(NonSuccessKind::Failure),
            format!("required (--require) but {}: {}", case.verdict, case.actual),
            "required-not-run",
        ),
        Standing::Error => (
            TestCaseStatus::non_success(NonSuccessKind::Error),
            case.actual.clone(),
            "error",
        ),
        Standing::KnownFailure => (
            TestCaseStatus::skipped(),
            format!("known failing: {reason}"),
            "known-failing",
        ),
        Standing::Flaky => (
            TestCaseStatus::skipped(),
            format!("known flaky: {reason}"),
            "known-flaky",
        ),
        Standing::Unsupported | Standing::Omitted => (
            TestCaseStatus::skipped(),
            format!("{}: {}", case.verdict, case.actual),
            case.verdict.name(),
        ),
    };
    st.set_message(message)
        .set_type(ty)
        .set_description(text(case, strict, decoder, opts)?);
    Ok(st)
}

/// The run as a JUnit report.
pub fn to_report(report: &RunReport, decoder: &Decoder, opts: &Options) -> io::Result<Report> {
    let mut out = Report::new(opts.name.as_str());
    out.set_time(report.duration);
    let timestamp = opts.started.map(chrono::DateTime::<chrono::Utc>::from);
    if let Some(t) = timestamp {
        out.set_timestamp(t);
    }
    let mut suites: Vec<TestSuite> = Vec::new();
    for c in &report.cases {
        let family = c.case.family();
        let i = match suites.iter().position(|s| s.name.as_str() == family) {
            Some(i) => i,
            None => {
                let mut s = TestSuite::new(family);
                s.add_property(Property::new("target", &report.target));
                s.add_property(Property::new("strict", report.strict.to_string()));
                s.set_time(Duration::ZERO);
                if let Some(t) = timestamp {
                    s.set_timestamp(t);
                }
                suites.push(s);
                suites.len() - 1
            }
        };
        let mut tc = TestCase::new(c.case.id.as_ref(), status(c, report.strict, decoder, opts)?);
        tc.set_classname(family).set_time(c.duration);
        tc.add_property(Property::new("verdict", c.verdict.name()));
        tc.add_property(Property::new(
            "level",
            match c.case.level {
                Level::Must => "must",
                Level::Should => "should",
            },
        ));
        tc.add_property(Property::new("source", c.case.source.as_ref()));
        if let Some(k) = &c.known {
            let name = match k.list {
                KnownList::Failing => "known-failing",
                KnownList::Flaky => "known-flaky",
            };
            tc.add_property(Property::new(name, &k.reason));
            if let Some(sig) = &k.signature {
                tc.add_property(Property::new("known-signature", sig));
            }
        }
        suites[i].add_test_case(tc);
    }
    for s in &mut suites {
        s.set_time(family_wall_time(report, s.name.as_str()));
    }
    out.add_test_suites(suites);
    Ok(out)
}

/// A family's wall time: from the start of its first case to the end of its last (cases run in
/// parallel overlap, so this is not the sum of their durations), never more than the run's.
pub fn family_wall_time(report: &RunReport, family: &str) -> Duration {
    let ran = report
        .cases
        .iter()
        .filter(|c| c.case.family() == family && !c.duration.is_zero());
    let (mut first, mut last) = (None::<Duration>, Duration::ZERO);
    for c in ran {
        first = Some(first.map_or(c.started, |f| f.min(c.started)));
        last = last.max(c.started + c.duration);
    }
    first.map_or(Duration::ZERO, |f| {
        last.saturating_sub(f).min(report.duration)
    })
}

/// The run as JUnit XML text.
pub fn to_string(report: &RunReport, decoder: &Decoder, opts: &Options) -> io::Result<String> {
    to_report(report, decoder, opts)?
        .to_string()
        .map_err(io::Error::other)
}

/// Write the run as JUnit XML to `path` (replacing it).
pub fn write(report: &RunReport, decoder: &Decoder, path: &Path, opts: &Options) -> io::Result<()> {
    let xml = to_string(report, decoder, opts)?;
    std::fs::write(path, xml)
}
