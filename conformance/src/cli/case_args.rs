//! What `check` and `check-client` share: the case selection and expectation-list options, the
//! report files, `--list`'s output, and running the selected cases with a progress line and then
//! the reports ([`super::check::write_reports`]).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// Write an HTML report into DIR (static, self-contained: open DIR/index.html from disk).
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
    /// List every case in the terminal report (default: a family whose cases all pass is one line,
    /// and passing cases are counted, not listed).
    #[arg(short, long)]
    pub verbose: bool,
    /// Stop starting cases after N unexpected failures; the rest are omitted, counted and said so
    /// (exit status 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_fail: Option<u64>,
    /// Stop starting cases once the run has taken this long (`90`, `90s`, `20m`, `1h`); the cases
    /// running finish within --case-timeout, the rest are omitted and counted (exit status 3 unless
    /// there are unexpected failures: 1).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Keep this much of each direction of every connection in the wire log (`256K`, `4M`, bytes);
    /// past it bytes are counted, not kept, and the report says where the log was cut.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub wire_log_max: Option<usize>,
}

/// A whole-run duration: seconds, or a number with `s`, `m` or `h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let mult = match unit {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: a duration is N, Ns, Nm or Nh")),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: a duration is N, Ns, Nm or Nh"))?;
    let secs = v * mult;
    if !(secs > 0.0 && secs <= 7.0 * 86_400.0) {
        return Err(format!("{s:?}: between 0 and 7 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size in bytes: `N`, `NK`/`NKiB`, `NM`/`NMiB` (powers of 1024), at least 1 KiB, at most 1 GiB.
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(i);
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{s:?}: a size is N, NK or NM")),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?}: a size is N, NK or NM"))?;
    match n.checked_mul(mult) {
        Some(b) if ((1 << 10)..=(1 << 30)).contains(&b) => Ok(b),
        _ => Err(format!("{s:?}: between 1K and 1G")),
    }
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
            max_fail: self
                .max_fail
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            deadline: self.deadline,
            ..cfg
        })
    }

    fn outputs(&self, title: &'static str) -> Outputs<'_> {
        Outputs {
            known_failing: self.known_failing.as_deref(),
            junit: self.junit.as_deref(),
            json: self.json.as_deref(),
            trace_dir: self.trace_dir.as_deref(),
            html: self.html.as_deref(),
            verbose: self.verbose,
            title,
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
    title: &'static str,
    args: &CaseArgs,
    cases: &[Case],
    cfg: &Config,
    connector: Box<dyn Connector>,
    judge: Arc<Judge>,
    hooks: Option<Arc<dyn ServerHooks>>,
) -> Result<RunReport, String> {
    if let Some(max) = args.wire_log_max {
        crate::wire::peer::set_log_max(max);
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut progress = TerminalProgress::new(io::stderr().is_terminal(), ci).strict(cfg.strict);
    let report = runner::run(cases, cfg, connector, judge.clone(), hooks, &mut progress);
    drop(progress);
    write_reports(&report, judge, &args.outputs(title))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0").is_err() && parse_duration("5x").is_err());
        assert_eq!(parse_size("256K"), Ok(256 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("12").is_err() && parse_size("1T").is_err() && parse_size("").is_err());
    }
}
