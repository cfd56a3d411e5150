//! What `check` and `check-client` share: the case selection and expectation-list options, the
//! report files, `--list`'s output, and running the selected cases with a progress line and then
//! the reports ([`super::check::write_reports`]).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::report::terminal::TerminalProgress;
use crate::runner::{self, Case, Config, Connector, RunReport, ServerHooks, lists};
use crate::wire::Judge;

use super::check::{Outputs, write_reports};

/// Which cases run, what they are expected to do, and where the reports go.
#[derive(clap::Args, Debug)]
pub struct CaseArgs {
    /// List the cases (ID, level, requirement) that would run, and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only the cases matching this glob (repeatable; @FILE for a list); their needs run too.
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Skip the cases matching this glob (repeatable; @FILE for a list).
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Cases that must run: matching cases that are unsupported or omitted count as unexpected
    /// failures (repeatable; @FILE for a list), e.g. `--require 'keepalive/*'`.
    #[arg(long = "require", value_name = "GLOB")]
    pub require: Vec<String>,
    /// Cases expected to fail: lines of `PATTERN {SIGNATURE} REASON` (docs/known-failing.md). A
    /// listed case that fails otherwise counts as unexpected (exit 1); one that passes or does not
    /// run makes the run exit 2.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Cases whose failures are not counted: lines of `PATTERN [{SIGNATURE}] REASON`.
    #[arg(long, value_name = "FILE")]
    pub known_flaky: Option<PathBuf>,
    /// Count SHOULD-level lenience (verdict non-strict) as failure.
    #[arg(long)]
    pub strict: bool,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report (the wire log of every case as `decode --format json` records).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the wire log of every failing case here: a trace and the decoded records per
    /// connection, and a pcapng of the case.
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
}

impl CaseArgs {
    /// `cfg` with these patterns, lists and strictness (the lists read and checked).
    pub fn config(&self, cfg: Config) -> Result<Config, lists::ListError> {
        let known = |p: &Option<PathBuf>,
                     kind: lists::ListKind|
         -> Result<Vec<runner::Known>, lists::ListError> {
            p.as_deref()
                .map_or(Ok(Vec::new()), |p| lists::known_file(p, kind))
        };
        Ok(Config {
            strict: self.strict,
            run: lists::patterns(&self.run, "--run")?,
            skip: lists::patterns(&self.skip, "--skip")?,
            require: lists::patterns(&self.require, "--require")?,
            known_failing: known(&self.known_failing, lists::ListKind::Failing)?,
            known_flaky: known(&self.known_flaky, lists::ListKind::Flaky)?,
            // The JSON report shows every case's traffic; the other reports only those that did
            // not pass.
            keep_passing_wire: self.json.is_some(),
            ..cfg
        })
    }

    fn outputs(&self) -> Outputs<'_> {
        Outputs {
            known_failing: self.known_failing.as_deref(),
            junit: self.junit.as_deref(),
            json: self.json.as_deref(),
            trace_dir: self.trace_dir.as_deref(),
        }
    }
}

/// `--list`: one line per case (ID, level, requirement), then the count.
pub fn print_list(out: &mut impl Write, cases: &[Case]) -> io::Result<()> {
    for c in cases {
        writeln!(
            out,
            "{:<44} {:<6} {}",
            c.id,
            format!("{:?}", c.level).to_lowercase(),
            c.requirement
        )?;
    }
    writeln!(out, "{} cases", cases.len())
}

/// Run `cases` with a progress line on stderr, then write the reports `args` asks for.
pub fn run_and_report(
    args: &CaseArgs,
    cases: &[Case],
    cfg: &Config,
    connector: Box<dyn Connector>,
    judge: Arc<Judge>,
    hooks: Option<Arc<dyn ServerHooks>>,
) -> Result<RunReport, String> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut progress = TerminalProgress::new(io::stderr().is_terminal(), ci).strict(cfg.strict);
    let report = runner::run(cases, cfg, connector, judge.clone(), hooks, &mut progress);
    drop(progress);
    write_reports(&report, judge, &args.outputs())?;
    Ok(report)
}
