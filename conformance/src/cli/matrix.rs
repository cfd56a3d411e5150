//! `virtwire matrix`: the conformance catalogue against a self-started libvirtd of each version
//! (9.0 installed, 11.3 from the private prefix `scripts/setup.sh` unpacks), each run judged by
//! its own version's schema; the result as a matrix, rows = cases, columns = versions.
//!
//! Exit status: the worst of the runs' (`virtwire check`'s): 0 as expected; 1 a case failed that
//! is not on its version's known-failing list; 2 a known-failing case passed; 3 harness error (a
//! version without `.x` files or daemon, a bad list).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::report::matrix::Matrix;
use crate::report::terminal::TerminalProgress;
use crate::runner::{Config, EXIT_HARNESS, lists};
use crate::suite;

/// `matrix --help`'s closing text.
pub const HELP: &str = "\
Each version needs its .x files (libvirt-VERSION in ~/.cache/virtwire or the checkout's .cache) and \
its daemon (the installed libvirtd when its --version matches, else libvirtd-VERSION/usr/sbin/libvirtd \
in the same caches, started with LD_LIBRARY_PATH on its usr/lib/x86_64-linux-gnu). scripts/setup.sh \
provides both for 9.0.0 and 11.3.0.

Output: Markdown on stdout (the cases whose verdict differs first, each with every version's Actual, \
then every case); --json writes virtwire-matrix/1.";

/// `virtwire matrix`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The versions, comma-separated (9.0.0,11.3 …). Default: every version with .x files and a
    /// daemon here, oldest first.
    #[arg(long, value_name = "V,V…", value_delimiter = ',')]
    pub versions: Vec<String>,
    /// A version's known-failing list: VERSION=FILE (repeatable).
    #[arg(long = "known-failing", value_name = "VERSION=FILE")]
    pub known_failing: Vec<String>,
    /// A directory of known-failing lists named libvirtd-MAJOR.MINOR.txt (corpus/known-failing):
    /// each version uses its own, when there is one.
    #[arg(long, value_name = "DIR")]
    pub known_failing_dir: Option<PathBuf>,
    /// A directory of known-flaky lists named libvirtd-MAJOR.MINOR.txt (corpus/known-flaky): each
    /// version's failures of the cases listed there are not counted.
    #[arg(long, value_name = "DIR")]
    pub known_flaky_dir: Option<PathBuf>,
    /// Run only the cases matching this glob (repeatable; @FILE for a list).
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Skip the cases matching this glob (repeatable).
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Cases run at once per version.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Longest wait for one answer, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = super::check_secs)]
    pub read_timeout: Duration,
    /// Longest a case may take, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = super::check_secs)]
    pub case_timeout: Duration,
    /// Write the matrix as JSON (virtwire-matrix/1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write an HTML report into DIR: a grid of cases × versions, each case's details per version
    /// (open DIR/index.html from disk).
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// Run `virtwire matrix`; the exit status.
pub fn run(args: Args) -> ExitCode {
    match matrix(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = io::stdout().flush();
            say!("virtwire matrix: {e}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn matrix(args: Args) -> Result<u8, String> {
    let versions = if args.versions.is_empty() {
        suite::available_versions()
    } else {
        args.versions.clone()
    };
    if versions.is_empty() {
        return Err(
            "no libvirt version has both .x files and a daemon here (scripts/setup.sh)".into(),
        );
    }
    let targets = suite::version_targets(&versions).map_err(|e| e.to_string())?;
    let mut lists_by_version = Vec::new();
    for kf in &args.known_failing {
        let (v, file) = kf
            .split_once('=')
            .ok_or_else(|| format!("--known-failing {kf:?}: VERSION=FILE"))?;
        if !versions.iter().any(|x| x == v) {
            return Err(format!(
                "--known-failing {kf:?}: {v} is not one of the versions ({})",
                versions.join(", ")
            ));
        }
        let known = lists::known_file(file.as_ref(), lists::ListKind::Failing)
            .map_err(|e| e.to_string())?;
        lists_by_version.push((v.to_string(), known));
    }
    if let Some(dir) = &args.known_failing_dir {
        for v in &versions {
            let mm: Vec<&str> = v.split('.').take(2).collect();
            let file = dir.join(format!("libvirtd-{}.txt", mm.join(".")));
            if file.is_file() && !lists_by_version.iter().any(|(x, _)| x == v) {
                let known = lists::known_file(&file, lists::ListKind::Failing)
                    .map_err(|e| e.to_string())?;
                lists_by_version.push((v.clone(), known));
            }
        }
    }
    let mut flaky_by_version = Vec::new();
    if let Some(dir) = &args.known_flaky_dir {
        for v in &versions {
            let mm: Vec<&str> = v.split('.').take(2).collect();
            let file = dir.join(format!("libvirtd-{}.txt", mm.join(".")));
            if file.is_file() {
                let known =
                    lists::known_file(&file, lists::ListKind::Flaky).map_err(|e| e.to_string())?;
                flaky_by_version.push((v.clone(), known));
            }
        }
    }
    let base = Config {
        read_timeout: args.read_timeout,
        case_timeout: args.case_timeout,
        jobs: args.jobs.max(1),
        run: lists::patterns(&args.run, "--run").map_err(|e| e.to_string())?,
        skip: lists::patterns(&args.skip, "--skip").map_err(|e| e.to_string())?,
        ..Config::default()
    };
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut reports = Vec::new();
    let mut banners = Vec::new();
    let mut code = 0u8;
    for vt in &targets {
        let cfg = Config {
            known_failing: lists_by_version
                .iter()
                .filter(|(v, _)| *v == vt.version)
                .flat_map(|(_, k)| k.clone())
                .collect(),
            known_flaky: flaky_by_version
                .iter()
                .filter(|(v, _)| *v == vt.version)
                .flat_map(|(_, k)| k.clone())
                .collect(),
            rerun: format!(
                "virtwire check --libvirt-version {} --libvirtd {} --run",
                vt.version,
                vt.libvirtd
                    .binary
                    .as_ref()
                    .map_or_else(String::new, |b| b.display().to_string())
            ),
            ..base.clone()
        };
        say!(
            "virtwire matrix: libvirt {} — .x files {}, daemon {}",
            vt.version,
            vt.protocol_dir.display(),
            vt.daemon_from
        );
        let mut progress = TerminalProgress::new(io::stderr().is_terminal(), ci);
        let (report, banner) = suite::run_version(vt, &cfg, &[], &mut progress)
            .map_err(|e| format!("libvirt {}: {e}", vt.version))?;
        drop(progress);
        say!("virtwire matrix: {banner}");
        code = code.max(report.exit_code());
        reports.push(report);
        banners.push(banner);
    }
    let m = Matrix::build(&versions, &banners, &reports);
    let md = m.markdown();
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).map_err(|e| format!("--markdown {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&m.json()).unwrap_or_default();
        std::fs::write(p, text + "\n").map_err(|e| format!("--json {}: {e}", p.display()))?;
    }
    if let Some(dir) = &args.html {
        write_html(dir, &targets, &reports, &banners)
            .map_err(|e| format!("--html {}: {e}", dir.display()))?;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(md.as_bytes())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(format!("writing: {e}"));
    }
    Ok(code)
}

/// The HTML report: one grid column per version, each decoded with its own version's schema.
fn write_html(
    dir: &std::path::Path,
    targets: &[suite::VersionTarget],
    reports: &[crate::runner::RunReport],
    banners: &[String],
) -> Result<(), String> {
    use crate::report::html;
    use crate::wire::Decoder;
    let mut decoders = Vec::new();
    for vt in targets {
        let schema = virtwire_protocol::schema::Schema::load_dir(&vt.protocol_dir)
            .map_err(|e| format!("{}: {e}", vt.protocol_dir.display()))?;
        decoders.push(Decoder::with_schema(
            crate::wire::Options::default(),
            schema,
        ));
    }
    let columns: Vec<html::Column<'_>> = targets
        .iter()
        .zip(reports)
        .zip(banners)
        .zip(&decoders)
        .map(|(((vt, report), banner), decoder)| html::Column {
            name: format!("libvirt {}", vt.version),
            libvirt_version: Some(vt.version.clone()),
            meta: vec![
                ("daemon".into(), banner.clone()),
                (".x files".into(), vt.protocol_dir.display().to_string()),
            ],
            report,
            decoder,
            recorded: None,
        })
        .collect();
    let opts = html::Options {
        title: "virtwire matrix".into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..html::Options::default()
    };
    let t = std::time::Instant::now();
    let size = html::write(&columns, dir, &opts).map_err(|e| e.to_string())?;
    say!(
        "virtwire matrix: HTML report {} ({} KiB, written in {})",
        dir.join("index.html").display(),
        size >> 10,
        crate::report::human_duration(t.elapsed())
    );
    Ok(())
}
