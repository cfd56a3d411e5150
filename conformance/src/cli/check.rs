//! `virtwire check [TARGET]`: the conformance catalogue against a libvirt server — by default a
//! private libvirtd that virtwire starts (test driver, loopback, stopped at the end).
//!
//! Exit status: 0 as expected; 1 a case failed that is not known to fail; 2 a known-failing case
//! passed (update the list); 3 the harness could not do its job (target unreachable, libvirtd not
//! installed, a bad list, no protocol files).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::io::IsTerminal;
use std::path::Path;

use crate::capture::tcp::Dir;
use crate::capture::write::{Flow, PcapngWriter};
use crate::catalogue;
use crate::report::terminal;
use crate::report::{html, json, junit};
use crate::runner::{self, Case, Config, EXIT_HARNESS, RunReport, lists};
use crate::wire::frames::chunk_connection;
use crate::wire::{Decoder, Judge, Record};

use super::case_args::{CaseArgs, print_list, run_and_report};
use super::target_args::TargetArgs;
use crate::suite;

/// `check --help`'s closing text.
pub const HELP: &str = "\
TARGET is a libvirt connection URI: test+tcp://HOST:PORT/default, qemu+tcp://HOST/system, \
qemu+tls://HOST/system, test+unix:///default?socket=PATH, qemu+unix:///system. Without TARGET, \
virtwire starts its own libvirtd (test driver) on a free loopback port and stops it at the end.

Patterns (--run, --skip, list files) are globs over case IDs: * stays within one /-separated part, \
** crosses parts; @FILE reads patterns from FILE. A known-failing file has one `PATTERN REASON` per \
line; a pattern that matches no case is an error.

Exit status: 0 as expected; 1 a case failed that is not listed as known-failing; 2 a known-failing \
case passed (remove it from the list); 3 harness error (target unreachable, libvirtd missing, bad list, \
or --deadline cut the run short without unexpected failures).

A closed stdout or stderr (virtwire check | head) is not an error: the report files are still written \
and the exit status is the run's.";

/// `virtwire check`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server: a libvirt connection URI. Default: a libvirtd virtwire starts itself.
    #[arg(value_name = "TARGET")]
    pub target: Option<String>,
    /// Case selection, expectation lists and report files.
    #[command(flatten)]
    pub cases: CaseArgs,
    /// Longest wait for one answer, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = super::check_secs)]
    pub read_timeout: Duration,
    /// Longest a case may take, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = super::check_secs)]
    pub case_timeout: Duration,
    /// How long "the server sends nothing" is watched for, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = super::check_secs)]
    pub silence: Duration,
    /// Cases run at once, each on its own connections.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Also replay this trace file (repeatable); the committed traces always run.
    #[arg(long = "trace", value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// Which libvirt's .x files (bodies are decoded and judged by them).
    #[command(flatten)]
    pub protocol: super::protocol_args::ProtocolArgs,
    /// How to reach the target.
    #[command(flatten)]
    pub target_opts: TargetArgs,
}

/// Run `virtwire check`; the exit status.
pub fn run(args: Args) -> ExitCode {
    match check(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = io::stdout().flush();
            say!("virtwire check: {e}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn config(args: &Args) -> Result<Config, lists::ListError> {
    args.cases.config(Config {
        read_timeout: args.read_timeout,
        case_timeout: args.case_timeout,
        silence: args.silence,
        connect_timeout: args.target_opts.connect_timeout,
        jobs: args.jobs.max(1),
        rerun: format!(
            "virtwire check{} --run",
            args.target
                .as_ref()
                .map_or(String::new(), |t| format!(" '{t}'"))
        ),
        ..Config::default()
    })
}

fn check(args: Args) -> Result<u8, String> {
    let cfg = config(&args).map_err(|e| e.to_string())?;
    let spec = args.target_opts.spec(args.target.as_deref())?;
    // Nothing chosen and a self-started daemon: its own version's schema when present (the
    // newest present otherwise).
    let mut search = args.protocol.search();
    if args.target.is_none()
        && search.flag.is_none()
        && search.version.is_none()
        && search.env.is_none()
        && let Some(v) = suite::libvirtd_version(&spec.libvirtd)
        && search.clone().with_version(Some(&v)).locate().is_ok()
    {
        search = search.with_version(Some(&v));
    }
    let schema = suite::load_schema_from(&search).map(Arc::new);
    let catalogue: Vec<Case> =
        suite::all_cases(&args.traces, schema.as_ref().ok()).map_err(|e| e.to_string())?;
    let cases = runner::select(&catalogue, &cfg).map_err(|e| e.to_string())?;
    if args.cases.list {
        let mut out = io::stdout().lock();
        let _ = print_list(&mut out, &cases);
        let err = schema.as_ref().err().map(|e| e.to_string());
        for line in catalogue::generated_summary(schema.as_ref().ok(), err.as_deref()) {
            let _ = writeln!(out, "{line}");
        }
        return Ok(0);
    }
    let schema = schema.map_err(|e| e.to_string())?;
    let judge = Arc::new(Judge::new(
        virtwire_protocol::Limits::default(),
        virtwire_protocol::Compat::Libvirt,
        Some((*schema).clone()),
    ));
    let target = suite::open_target(&spec, &judge).map_err(|e| e.to_string())?;
    say!("virtwire check: {}", target.banner);
    let report = run_and_report(
        "virtwire check",
        &args.cases,
        &cases,
        &cfg,
        target.connector,
        judge,
        target.hooks,
    )?;
    // The private libvirtd (if any) stops here, or stays with --keep-libvirtd (a hint is printed).
    drop(target.daemon);
    Ok(report.exit_code())
}

/// Where a run's reports go.
pub(crate) struct Outputs<'a> {
    /// The known-failing list (named in the terminal report).
    pub known_failing: Option<&'a Path>,
    /// `--junit`.
    pub junit: Option<&'a Path>,
    /// `--json`.
    pub json: Option<&'a Path>,
    /// `--trace-dir`.
    pub trace_dir: Option<&'a Path>,
    /// `--html`.
    pub html: Option<&'a Path>,
    /// `-v`: every case in the terminal report.
    pub verbose: bool,
    /// The command the reports are of (`virtwire check`, `virtwire check-client`).
    pub title: &'static str,
}

/// The terminal report on stdout, and the files `out` asks for (shared by `check` and
/// `check-client`).
pub(crate) fn write_reports(
    report: &RunReport,
    judge: Arc<Judge>,
    out: &Outputs<'_>,
) -> Result<(), String> {
    let stdout_tty = io::stdout().is_terminal();
    let decoder = Decoder::from_judge(judge);
    let opts = terminal::Options {
        color: terminal::use_color(stdout_tty, std::env::var_os("NO_COLOR").as_deref()),
        known_failing_list: out.known_failing.map(|p| p.display().to_string()),
        verbose: out.verbose,
        title: out.title.into(),
        ..terminal::Options::default()
    };
    // A closed stdout (`virtwire check | head`) is not a failure of the run: the rest of the
    // terminal report is dropped, the files below are still written, the exit status is the run's.
    match terminal::print(report, &decoder, &mut io::stdout().lock(), &opts)
        .and_then(|()| io::stdout().flush())
    {
        Err(e) if !super::is_broken_pipe(&e) => {
            return Err(format!("writing the report: {e}"));
        }
        _ => {}
    }
    if let Some(path) = out.junit {
        let o = junit::Options {
            started: Some(report.started),
            name: out.title.into(),
            ..junit::Options::default()
        };
        junit::write(report, &decoder, path, &o)
            .map_err(|e| format!("--junit {}: {e}", path.display()))?;
    }
    if let Some(path) = out.json {
        let o = json::Options {
            started: Some(report.started),
            ..json::Options::default()
        };
        json::write(report, &decoder, path, &o)
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    if let Some(dir) = out.trace_dir {
        write_wire_logs(report, &decoder, dir, out.title)
            .map_err(|e| format!("--trace-dir {}: {e}", dir.display()))?;
    }
    if let Some(dir) = out.html {
        let o = html::Options {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            trace_dir: out.trace_dir.map(Path::to_path_buf),
            title: out.title.into(),
            ..html::Options::default()
        };
        let t = std::time::Instant::now();
        let size = html::write_run(report, &decoder, dir, &o)
            .map_err(|e| format!("--html {}: {e}", dir.display()))?;
        say!(
            "virtwire: HTML report {} ({} KiB, written in {})",
            dir.join("index.html").display(),
            size >> 10,
            crate::report::human_duration(t.elapsed())
        );
    }
    Ok(())
}

/// The wire log of every case that needs attention, for a human and for tools:
/// `DIR/<case id with / as __>.connN.trace` (a trace: replay it, or read it), `.connN.jsonl` (the
/// `decode --format json` records) and one `.pcapng` with every connection of the case (for
/// Wireshark; loopback addresses, port 16509 for the server).
fn write_wire_logs(
    report: &RunReport,
    decoder: &Decoder,
    dir: &Path,
    title: &str,
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for c in &report.cases {
        if !crate::report::Standing::of(c, report.strict).needs_attention() {
            continue;
        }
        let name = c.case.id.replace('/', "__");
        let mut flows = Vec::new();
        for (n, w) in c.wire.iter().enumerate() {
            let conn = n as u64 + 1;
            let base = format!("{name}.conn{conn}");
            let mut out =
                io::BufWriter::new(std::fs::File::create(dir.join(format!("{base}.jsonl")))?);
            let mut sink = |r: &Record<'_>| -> io::Result<()> {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")
            };
            decoder.decode_chunks(&c.case.id, conn, &w.chunks, &mut sink)?;
            out.flush()?;
            let source = format!("{title} case {name}");
            let cc = chunk_connection(decoder, &source, conn, None, None, &w.chunks)?;
            let imported = crate::trace::import::from_connection(&source, &cc);
            std::fs::write(
                dir.join(format!("{base}.trace")),
                crate::trace::write(&imported.trace),
            )?;
            let (sent_c, sent_s) = w
                .chunks
                .iter()
                .fold((0u64, 0u64), |(a, b), ch| match ch.dir {
                    Dir::C2s => (a + ch.bytes.len() as u64, b),
                    Dir::S2c => (a, b + ch.bytes.len() as u64),
                });
            flows.push((conn, &w.chunks, [sent_c, sent_s]));
        }
        if !flows.is_empty() {
            let file = std::fs::File::create(dir.join(format!("{name}.pcapng")))?;
            let mut pcap = PcapngWriter::new(io::BufWriter::new(file))?;
            for (conn, chunks, sent) in flows {
                let lo = std::net::Ipv4Addr::LOCALHOST;
                pcap.write_flow(&Flow {
                    client: (lo, 40000 + conn as u16).into(),
                    server: (lo, virtwire_protocol::ports::TCP).into(),
                    start: report.started,
                    chunks,
                    sent,
                    ends: Vec::new(),
                    refused: false,
                })?;
            }
            pcap.finish()?.flush()?;
        }
    }
    Ok(())
}
