//! The terminal view: a tree of cases by family with verdicts and durations, a block of details for
//! every case that makes the run fail, and a closing line with the counts and what the exit status
//! means. [`TerminalProgress`] shows the run as it goes.
//!
//! ```text
//! virtwire check: test+tcp://127.0.0.1:16509/default
//!
//! dispatch (2)
//!   dispatch/unknown-procedure      3 ms  FAIL
//!   dispatch/unknown-program        2 ms  fail (known: the daemon answers VIR_ERR_RPC)
//!
//! FAIL dispatch/unknown-procedure
//!   Requirement:   …
//!   Wire, conn 1 (2 records):
//!     +0.000s c2s CALL remote proc 9999 serial 1
//!     +0.001s s2c REPLY/ERROR remote proc 9999 serial 1: unknown procedure: 9999 (code 39, domain 7)
//!   Rerun:         virtwire check --run 'dispatch/unknown-procedure'
//!
//! 2 cases in 5 ms: 0 pass, 2 fail (1 known)
//! exit 1: 1 unexpected failure
//! ```

use std::ffi::OsStr;
use std::io::{self, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Details, Standing, human_duration, plural, printable};
use crate::runner::{CaseReport, Progress, RunReport, Verdict};
use crate::wire::Decoder;

/// Whether to colour output: only on a terminal, and not when `NO_COLOR` is set to a non-empty
/// value (no-color.org). The caller passes what it found (`stdout().is_terminal()`,
/// `var_os("NO_COLOR")`): the library reads no environment.
pub fn use_color(is_tty: bool, no_color: Option<&OsStr>) -> bool {
    is_tty && no_color.is_none_or(OsStr::is_empty)
}

/// How the terminal view looks.
#[derive(Clone, Debug)]
pub struct Options {
    /// ANSI colours ([`use_color`]).
    pub color: bool,
    /// Wire records shown per connection of a case that needs attention (the last ones).
    pub wire_lines: usize,
    /// Server log lines shown per case (the last ones).
    pub log_lines: usize,
    /// The known-failing list as the user gave it (a file), named when a known-failing case passes.
    pub known_failing_list: Option<String>,
    /// Every case on its own line (`-v`); otherwise a family whose cases all pass is one line, and
    /// a family's passing cases are counted on its heading, not listed.
    pub verbose: bool,
    /// The command the report is of, as its first line names it (`virtwire check`,
    /// `virtwire check-client`).
    pub title: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: false,
            wire_lines: 8,
            log_lines: 20,
            known_failing_list: None,
            verbose: false,
            title: "virtwire check".into(),
        }
    }
}

/// A colour, or emphasis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Bad,
    Good,
    Warn,
    Dim,
    Bold,
}

/// Colours when on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Paint(bool);

impl Paint {
    fn paint(self, style: Style, s: &str) -> String {
        if !self.0 {
            return s.to_string();
        }
        let code = match style {
            Style::Bad => "1;31",
            Style::Good => "32",
            Style::Warn => "33",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    }
}

/// Reasons and explanations in a tree line are cut to this many characters.
const INLINE_MAX: usize = 80;

fn cut(s: &str) -> String {
    let s = printable(s);
    match s.char_indices().nth(INLINE_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A case's verdict in words, and how to colour it: `pass`, `FAIL`, `fail (known: REASON)`,
/// `non-strict`, `unsupported: WHY`, `omitted: WHY`, `ERROR`…
fn verdict_words(case: &CaseReport, strict: bool) -> (String, Style) {
    let reason = case
        .known
        .as_ref()
        .map_or(String::new(), |k| cut(&k.reason));
    match Standing::of(case, strict) {
        Standing::Pass => ("pass".into(), Style::Good),
        Standing::NonStrict => ("non-strict".into(), Style::Warn),
        Standing::Failure if case.verdict == Verdict::NonStrict => {
            ("NON-STRICT (a failure under --strict)".into(), Style::Bad)
        }
        Standing::Failure => ("FAIL".into(), Style::Bad),
        Standing::KnownFailure => (format!("{} (known: {reason})", case.verdict), Style::Warn),
        Standing::Flaky => (format!("{} (flaky: {reason})", case.verdict), Style::Warn),
        Standing::StaleKnown => (
            format!(
                "{} BUT LISTED AS KNOWN-FAILING ({reason})",
                case.verdict.name().to_uppercase()
            ),
            Style::Bad,
        ),
        Standing::FailsDifferently => (
            format!(
                "{} DIFFERENTLY (listed: {reason})",
                case.verdict.name().to_uppercase()
            ),
            Style::Bad,
        ),
        Standing::MissingRequired => (
            format!(
                "{} BUT REQUIRED: {}",
                case.verdict.name().to_uppercase(),
                cut(&case.actual)
            ),
            Style::Bad,
        ),
        Standing::Unsupported => (format!("unsupported: {}", cut(&case.actual)), Style::Dim),
        Standing::Omitted => (format!("omitted: {}", cut(&case.actual)), Style::Dim),
        Standing::Error => ("ERROR".into(), Style::Bad),
    }
}

/// The heading of a case's details block.
fn block_heading(case: &CaseReport, strict: bool) -> &'static str {
    match Standing::of(case, strict) {
        Standing::Error => "ERROR",
        Standing::StaleKnown => "STALE KNOWN-FAILING",
        Standing::FailsDifferently => "FAILS DIFFERENTLY",
        Standing::MissingRequired => "REQUIRED BUT NOT RUN",
        _ if case.verdict == Verdict::NonStrict => "NON-STRICT",
        _ => "FAIL",
    }
}

/// Write a case's details, each line prefixed with `indent`.
pub(crate) fn write_details(
    w: &mut dyn Write,
    d: &Details,
    paint: Paint,
    indent: &str,
) -> io::Result<()> {
    const LABEL: usize = 15;
    let cont = format!("{indent}{:LABEL$}", "");
    let field = |w: &mut dyn Write, label: &str, text: &str| -> io::Result<()> {
        let head = paint.paint(
            Style::Bold,
            &format!("{label:<LABEL$}", label = format!("{label}:")),
        );
        let mut lines = text.lines();
        writeln!(w, "{indent}{head}{}", lines.next().unwrap_or(""))?;
        for l in lines {
            writeln!(w, "{cont}{l}")?;
        }
        Ok(())
    };
    for (label, text) in &d.fields {
        field(w, label, text)?;
    }
    for (label, total, lines) in &d.wire {
        let head = match (*total, lines.len()) {
            (0, _) => format!("Wire, {label}: nothing sent or received"),
            (t, n) if n < t => format!("Wire, {label} (last {n} of {t} records):"),
            (t, _) => format!("Wire, {label} ({}):", plural(t, "record", "records")),
        };
        writeln!(w, "{indent}{}", paint.paint(Style::Bold, &head))?;
        for l in lines {
            writeln!(w, "{indent}  {l}")?;
        }
    }
    if let Some((lines, total)) = &d.server_log {
        let head = match (*total, lines.len()) {
            (0, _) => "Server log: empty".to_string(),
            (t, n) if n < t => format!("Server log (last {n} of {t} lines):"),
            (t, _) => format!("Server log ({}):", plural(t, "line", "lines")),
        };
        writeln!(w, "{indent}{}", paint.paint(Style::Bold, &head))?;
        for l in lines {
            writeln!(w, "{indent}  {l}")?;
        }
    }
    field(w, "Rerun", &d.rerun)
}

/// Families in order of first appearance, each with its cases in catalogue order.
fn by_family(report: &RunReport) -> Vec<(&str, Vec<&CaseReport>)> {
    let mut out: Vec<(&str, Vec<&CaseReport>)> = Vec::new();
    for c in &report.cases {
        let f = c.case.family();
        match out.iter_mut().find(|(name, _)| *name == f) {
            Some((_, v)) => v.push(c),
            None => out.push((f, vec![c])),
        }
    }
    out
}

/// The counts per verdict in words: `9 pass, 2 fail (1 known), 1 non-strict, …` (verdicts with no
/// case left out, except pass).
fn counts_words(report: &RunReport, paint: Paint) -> String {
    let counts = report.counts();
    let standings: Vec<Standing> = report
        .cases
        .iter()
        .map(|c| Standing::of(c, report.strict))
        .collect();
    let mut parts = Vec::new();
    for v in Verdict::ALL {
        let count = counts.get(&v).copied().unwrap_or(0);
        if count == 0 && v != Verdict::Pass {
            continue;
        }
        let mut text = format!("{count} {v}");
        let mut notes = Vec::new();
        let of_v = |s: Standing| {
            report
                .cases
                .iter()
                .zip(&standings)
                .filter(|(c, x)| c.verdict == v && **x == s)
                .count()
        };
        let known = of_v(Standing::KnownFailure);
        let flaky = of_v(Standing::Flaky);
        let stale = of_v(Standing::StaleKnown);
        if known > 0 {
            notes.push(format!("{known} known"));
        }
        if flaky > 0 {
            notes.push(format!("{flaky} flaky"));
        }
        if stale > 0 {
            notes.push(format!("{stale} listed as known-failing"));
        }
        if v == Verdict::NonStrict && report.strict {
            notes.push("failures under --strict".into());
        }
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        let bad = match v {
            Verdict::Error => count > 0,
            Verdict::Fail | Verdict::NonStrict => report
                .cases
                .iter()
                .zip(&standings)
                .any(|(c, s)| c.verdict == v && *s == Standing::Failure),
            Verdict::Pass => stale > 0,
            _ => false,
        };
        parts.push(if bad {
            paint.paint(Style::Bad, &text)
        } else {
            text
        });
    }
    parts.join(", ")
}

/// Print the run: the tree, the details of every case that makes it fail, the closing lines.
/// `decoder` decodes each such case's traffic (the same limits, mode and schema as the run's judge).
pub fn print(
    report: &RunReport,
    decoder: &Decoder,
    out: &mut dyn Write,
    opts: &Options,
) -> io::Result<()> {
    let paint = Paint(opts.color);
    let strict = report.strict;
    writeln!(
        out,
        "{} {}{}",
        paint.paint(Style::Bold, &format!("{}:", opts.title)),
        printable(&report.target),
        if strict { " (--strict)" } else { "" }
    )?;
    let width = report
        .cases
        .iter()
        .map(|c| c.case.id.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    // Families whose cases all pass, one line each (unless verbose), gathered before the others.
    let families = by_family(report);
    let all_pass = |cases: &[&CaseReport]| {
        cases
            .iter()
            .all(|c| Standing::of(c, strict) == Standing::Pass)
    };
    let fam_width = families
        .iter()
        .map(|(f, _)| f.chars().count())
        .max()
        .unwrap_or(0);
    if !opts.verbose && families.iter().any(|(_, c)| all_pass(c)) {
        writeln!(out)?;
        for (family, cases) in families.iter().filter(|(_, c)| all_pass(c)) {
            let time = super::junit::family_wall_time(report, family);
            writeln!(
                out,
                "{:<fam_width$}  {:>5} cases  {:>9}  {}",
                paint.paint(Style::Bold, &printable(family)),
                cases.len(),
                human_duration(time),
                paint.paint(Style::Good, "all pass")
            )?;
        }
    }
    for (family, cases) in families {
        if !opts.verbose && all_pass(&cases) {
            continue;
        }
        let passing = cases
            .iter()
            .filter(|c| Standing::of(c, strict) == Standing::Pass)
            .count();
        let unstarted = cases
            .iter()
            .filter(|c| super::not_started(report, c))
            .count();
        writeln!(out)?;
        let mut hidden = Vec::new();
        if !opts.verbose && passing > 0 {
            hidden.push(format!("{passing} pass"));
        }
        if !opts.verbose && unstarted > 0 {
            hidden.push(format!("{unstarted} not run (the run stopped early)"));
        }
        let hidden = if hidden.is_empty() {
            String::new()
        } else if passing + unstarted == cases.len() {
            format!(": {} (not listed; -v lists them)", hidden.join(", "))
        } else {
            format!(
                ": {} (not listed; -v lists them), the others:",
                hidden.join(", ")
            )
        };
        writeln!(
            out,
            "{} ({}){hidden}",
            paint.paint(Style::Bold, &printable(family)),
            cases.len()
        )?;
        for c in cases {
            if !opts.verbose
                && (Standing::of(c, strict) == Standing::Pass || super::not_started(report, c))
            {
                continue;
            }
            let (words, style) = verdict_words(c, strict);
            let dur = match c.verdict {
                Verdict::Omitted => "-".to_string(),
                _ => human_duration(c.duration),
            };
            writeln!(
                out,
                "  {:<width$}  {dur:>9}  {}",
                printable(&c.case.id),
                paint.paint(style, &words)
            )?;
        }
    }
    for c in report
        .cases
        .iter()
        .filter(|c| Standing::of(c, strict).needs_attention())
    {
        writeln!(out)?;
        writeln!(
            out,
            "{} {}",
            paint.paint(Style::Bad, block_heading(c, strict)),
            paint.paint(Style::Bold, &printable(&c.case.id))
        )?;
        let d = Details::of(c, strict, decoder, opts.wire_lines, opts.log_lines)?;
        write_details(out, &d, paint, "  ")?;
    }
    let not_run = super::not_run(report);
    if !not_run.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} (`--require GLOB` makes them failures):",
            paint.paint(Style::Bold, "Not run, by family")
        )?;
        // One line per family and verdict: the count, the first reason, and how many others.
        let fam_width = not_run
            .iter()
            .map(|r| r.family.chars().count())
            .max()
            .unwrap_or(0);
        let mut rows: Vec<(&str, Verdict, usize, usize, &str, usize)> = Vec::new();
        for r in &not_run {
            match rows
                .iter_mut()
                .find(|x| x.0 == r.family && x.1 == r.verdict)
            {
                Some(x) => {
                    x.2 += r.count;
                    x.3 += r.required;
                    x.5 += 1;
                }
                None => rows.push((&r.family, r.verdict, r.count, r.required, &r.reason, 1)),
            }
        }
        for (family, verdict, count, required, reason, reasons) in rows {
            let req = if required > 0 {
                paint.paint(Style::Bad, &format!(" ({required} required)"))
            } else {
                String::new()
            };
            let others = match reasons {
                1 => String::new(),
                n => format!(" (and {})", plural(n - 1, "other reason", "other reasons")),
            };
            writeln!(
                out,
                "  {:<fam_width$}  {count} {verdict}{req}: {}{others}",
                printable(family),
                cut(reason)
            )?;
        }
    }
    writeln!(out)?;
    if let Some(why) = &report.stopped {
        let not_started = report
            .cases
            .iter()
            .filter(|c| c.verdict == Verdict::Omitted && c.actual.starts_with("not run: "))
            .count();
        writeln!(
            out,
            "{}",
            paint.paint(
                Style::Bad,
                &format!(
                    "Stopped early ({why}): {} not run, counted as omitted",
                    plural(not_started, "case", "cases")
                )
            )
        )?;
    }
    writeln!(
        out,
        "{} in {}: {}",
        plural(report.cases.len(), "case", "cases"),
        human_duration(report.duration),
        counts_words(report, paint)
    )?;
    let code = report.exit_code();
    let list = opts
        .known_failing_list
        .as_deref()
        .unwrap_or("the known-failing list");
    let line = format!("exit {code}: {}", super::exit_meaning(report, list));
    writeln!(
        out,
        "{}",
        paint.paint(if code == 0 { Style::Good } else { Style::Bad }, &line)
    )
}

/// How progress is shown.
enum Mode {
    /// An indicatif bar on the terminal (made when the run starts).
    Bar(Option<ProgressBar>),
    /// One plain line per finished case.
    Lines(Box<dyn Write + Send>),
}

/// Progress as cases finish: a progress bar on a terminal (failures printed above it as they
/// happen), or one plain line per case elsewhere and in CI, so that logs show the run advancing.
pub struct TerminalProgress {
    mode: Mode,
    strict: bool,
    total: usize,
    done: usize,
}

impl std::fmt::Debug for TerminalProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalProgress")
            .field("bar", &self.is_bar())
            .field("done", &self.done)
            .field("total", &self.total)
            .finish()
    }
}

impl TerminalProgress {
    /// A bar on standard error when it is a terminal (`is_tty`) and not in CI (`ci`: the `CI`
    /// variable is set); otherwise plain lines on standard error.
    pub fn new(is_tty: bool, ci: bool) -> Self {
        Self::with_lines_to(is_tty, ci, Box::new(io::stderr()))
    }

    /// As [`TerminalProgress::new`], with plain lines going to `lines` (the bar, when chosen, still
    /// draws on standard error).
    pub fn with_lines_to(is_tty: bool, ci: bool, lines: Box<dyn Write + Send>) -> Self {
        let mode = if is_tty && !ci {
            Mode::Bar(None)
        } else {
            Mode::Lines(lines)
        };
        TerminalProgress {
            mode,
            strict: false,
            total: 0,
            done: 0,
        }
    }

    /// Read verdicts as a `--strict` run does (non-strict is a failure).
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// True when progress is a bar, false when plain lines.
    pub fn is_bar(&self) -> bool {
        matches!(self.mode, Mode::Bar(_))
    }

    fn line(&self, case: &CaseReport) -> String {
        let (words, _) = verdict_words(case, self.strict);
        let w = self.total.to_string().len();
        format!(
            "[{:>w$}/{}] {} {} ({})",
            self.done,
            self.total,
            words,
            printable(&case.case.id),
            human_duration(case.duration)
        )
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, total: usize) {
        self.total = total;
        self.done = 0;
        if let Mode::Bar(bar) = &mut self.mode {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} cases, {elapsed} {wide_msg}")
            {
                b.set_style(style);
            }
            *bar = Some(b);
        }
    }

    fn finished(&mut self, case: &CaseReport) {
        self.done += 1;
        let line = self.line(case);
        match &mut self.mode {
            Mode::Bar(Some(bar)) => {
                if Standing::of(case, self.strict).needs_attention() {
                    bar.println(line);
                }
                bar.set_message(printable(&case.case.id));
                bar.inc(1);
                if self.done >= self.total {
                    bar.finish_and_clear();
                }
            }
            Mode::Bar(None) => {}
            Mode::Lines(out) => {
                // Progress is a courtesy: a closed stream must not stop the run.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
}
