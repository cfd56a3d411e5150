//! `virtwire replay TRACE... [--target URI]`: replay traces (files, or directories of `*.trace`)
//! against a server, each as a runner case `trace/<name>`; `--learn` replays each twice and shows
//! the rules that would make the fields that differ match (`--write` writes them into the traces).
//!
//! Exit status as `check`: 0 every replay passed; 1 a replay failed; 3 harness error (a trace that
//! does not parse, no .x files, the target unreachable); 2 usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use virtwire_protocol::{Compat, Limits};

use super::target_args::TargetArgs;
use crate::replay::{self, Observations, learn};
use crate::runner::{self, CaseReport, Config, Connector, Progress, RunReport, Verdict};
use crate::suite;
use crate::trace::{self, Trace};
use crate::wire::Judge;

/// `replay --help`'s closing text.
pub const HELP: &str = "\
--target is a libvirt connection URI (test+tcp://HOST:PORT/default, test+unix:///default?socket=PATH, \
qemu+tls://HOST/system…). Without it, virtwire starts a private libvirtd (test driver) and stops it at \
the end: the committed traces were recorded against that driver.

--learn replays every trace twice and prints, as a unified diff, the rules that cover the fields that \
differ between the recording and the replays (numbers: range MIN.., hex strings: regex, others: any); \
--write also writes them into the trace files. Review them before committing.

Exit status: 0 all passed; 1 a replay failed; 2 usage error; 3 harness error (bad trace, no .x files, \
target unreachable).";

/// `virtwire replay`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server, as a connection URI. Default: a libvirtd virtwire starts itself.
    #[arg(long, value_name = "URI", env = "VIRTWIRE_TARGET")]
    target: Option<String>,
    /// How to reach (or start) the target.
    #[command(flatten)]
    target_opts: TargetArgs,
    /// Replay twice and show the rules that make the fields that differ match.
    #[arg(long)]
    learn: bool,
    /// With --learn: write the learned rules into the trace files.
    #[arg(long, requires = "learn")]
    write: bool,
    /// Which libvirt's .x files (bodies are decoded and judged by them).
    #[command(flatten)]
    protocol: super::protocol_args::ProtocolArgs,
    /// Longest wait for any one message, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    read_timeout: f64,
    /// Longest one replay may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    case_timeout: f64,
    /// Write an HTML report of the replays into DIR (open DIR/index.html from disk).
    #[arg(long, value_name = "DIR", conflicts_with = "learn")]
    html: Option<PathBuf>,
    /// Trace files, or directories whose `*.trace` files are replayed.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
}

/// The trace files named: files as given, directories' `*.trace` in name order.
fn trace_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == trace::EXTENSION))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!("{}: no .{} file", p.display(), trace::EXTENSION));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Prints each case as it finishes.
struct Printer;

impl Progress for Printer {
    fn finished(&mut self, c: &CaseReport) {
        println!(
            "{:<11} {}  ({:.2} s)",
            c.verdict.name(),
            c.case.id,
            c.duration.as_secs_f64()
        );
        if c.verdict != Verdict::Pass {
            println!("    requirement: {}", c.case.requirement);
            if !c.expected.is_empty() {
                println!("    expected:    {}", c.expected);
            }
            println!("    actual:      {}", c.actual);
            for n in &c.notes {
                println!("    note:        {n}");
            }
        }
    }
}

fn config(args: &Args) -> Config {
    Config {
        read_timeout: Duration::from_secs_f64(args.read_timeout.clamp(0.01, 3600.0)),
        case_timeout: Duration::from_secs_f64(args.case_timeout.clamp(0.1, 86400.0)),
        rerun: "virtwire replay".into(),
        ..Config::default()
    }
}

fn summary(r: &RunReport) {
    let counts: Vec<String> = r.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    println!(
        "{} replays against {} in {:.1} s: {}",
        r.cases.len(),
        r.target,
        r.duration.as_secs_f64(),
        counts.join(", ")
    );
}

/// Run `virtwire replay`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let files = match trace_files(&args.traces) {
        Ok(f) => f,
        Err(e) => {
            say!("virtwire: {e}");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    let mut traces = Vec::new();
    for f in &files {
        match trace::parse::load(f) {
            Ok(t) => traces.push((f.clone(), Arc::new(t))),
            Err(e) => {
                say!("virtwire: {e}");
                return ExitCode::from(runner::EXIT_HARNESS);
            }
        }
    }
    let schema = match args.protocol.search().load() {
        Ok((s, _)) => s,
        Err(e) => {
            say!("virtwire: {e} (replays match bodies field by field: they need the schema)");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, Some(schema)));
    let cfg = config(&args);
    let spec = match args.target_opts.spec(args.target.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            say!("virtwire: {e}");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    let target = match suite::open_target(&spec, &judge) {
        Ok(t) => t,
        Err(e) => {
            say!("virtwire: {e}");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    say!("virtwire replay: {}", target.banner);
    let connector: Arc<dyn Connector> = Arc::from(target.connector);
    if args.learn {
        return learn_all(&args, &cfg, &connector, judge, &traces);
    }
    let cases: Vec<_> = traces
        .iter()
        .map(|(_, t)| replay::case(t.clone()))
        .collect();
    let report = runner::run(
        &cases,
        &cfg,
        Box::new(connector),
        judge.clone(),
        target.hooks,
        &mut Printer,
    );
    if let Some(dir) = &args.html {
        let opts = crate::report::html::Options {
            title: "virtwire replay".into(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            ..crate::report::html::Options::default()
        };
        let decoder = crate::wire::Decoder::from_judge(judge);
        if let Err(e) = crate::report::html::write_run(&report, &decoder, dir, &opts).map(drop) {
            say!("virtwire replay: --html {}: {e}", dir.display());
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    }
    for c in report.cases.iter().filter(|c| c.verdict != Verdict::Pass) {
        if let Some((f, _)) = traces.iter().find(|(_, t)| replay::case_id(t) == c.case.id) {
            match &args.target {
                Some(t) => println!("rerun: virtwire replay {} --target '{t}'", f.display()),
                None => println!("rerun: virtwire replay {}", f.display()),
            }
        }
    }
    summary(&report);
    ExitCode::from(report.exit_code())
}

/// Replay each trace twice in learning mode, then show (and with --write, write) the rules.
fn learn_all(
    args: &Args,
    cfg: &Config,
    target: &Arc<dyn Connector>,
    judge: Arc<Judge>,
    traces: &[(PathBuf, Arc<Trace>)],
) -> ExitCode {
    let observations: Vec<Observations> = traces
        .iter()
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let cases: Vec<_> = traces
        .iter()
        .zip(&observations)
        .map(|((_, t), o)| replay::learning_case(t.clone(), o.clone()))
        .collect();
    let mut failed = vec![false; traces.len()];
    let mut status = runner::EXIT_OK;
    for round in 1..=2 {
        println!("learning, replay {round} of 2:");
        let report = runner::run(
            &cases,
            cfg,
            Box::new(target.clone()),
            judge.clone(),
            None,
            &mut Printer,
        );
        for (i, c) in report.cases.iter().enumerate() {
            if c.verdict != Verdict::Pass {
                failed[i] = true;
            }
        }
        status = status.max(report.exit_code());
    }
    for (i, (file, t)) in traces.iter().enumerate() {
        if failed[i] {
            println!(
                "{}: not learned: a replay failed (the header or status of a message differs, or it never came)",
                file.display()
            );
            continue;
        }
        let runs = observations[i]
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        let learned = match learn::learn(t, &runs) {
            Ok(l) => l,
            Err(e) => {
                println!("{}: not learned: {e}", file.display());
                status = status.max(runner::EXIT_FAILURES);
                continue;
            }
        };
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                say!("virtwire: {}: {e}", file.display());
                return ExitCode::from(runner::EXIT_HARNESS);
            }
        };
        let d = learn::diff(&file.display().to_string(), &text, &learned);
        if d.is_empty() {
            println!("{}: nothing to learn", file.display());
            continue;
        }
        print!("{d}");
        if args.write {
            if let Err(e) = write_learned(file, &text, &learned) {
                say!("virtwire: {e}");
                return ExitCode::from(runner::EXIT_HARNESS);
            }
            println!("{}: rules written", file.display());
        }
    }
    if !args.write {
        println!("(review the rules above; --write writes them into the traces)");
    }
    ExitCode::from(status)
}

/// Insert the learned rules and check the result still parses before replacing the file.
fn write_learned(file: &Path, text: &str, learned: &[learn::Learned]) -> Result<(), String> {
    let new = learn::apply(text, learned);
    trace::parse(&new, &file.display().to_string())
        .map_err(|e| format!("learned rules do not parse: {e}"))?;
    std::fs::write(file, new).map_err(|e| format!("{}: {e}", file.display()))
}
