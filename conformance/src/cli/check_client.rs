//! `virtwire check-client [OPTIONS] -- COMMAND ARGS...`: client conformance. Each case starts a
//! scripted libvirt server on loopback that replays the server side of a recorded session with one
//! thing changed, runs COMMAND once with `{uri}` replaced by the server's URI, and judges how the
//! client ended (exit status, signal, hang) and what it sent. Same case selection, lists and
//! reports as `check`.
//!
//! Exit status as `check`: 0 as expected; 1 a case failed that is not known to fail; 2 a
//! known-failing case passed (update the list); 3 harness error (the recording failed, a bad list,
//! no protocol files, the client could not be started).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{self, CommandConnector, Listen, UriForm, process};
use crate::runner::{self, Config, EXIT_HARNESS, lists};
use crate::suite;
use crate::target::LibvirtdOptions;

use super::case_args::{CaseArgs, print_list, run_and_report};
use crate::wire::Judge;

/// `check-client --help`'s closing text.
pub const HELP: &str = "\
COMMAND is run once per case with every {uri} in its arguments replaced by the scripted server's \
URI (DRIVER+tcp://127.0.0.1:PORT/PATH, or DRIVER+unix:///PATH?socket=… with --unix), standard input \
closed, in its own process group; at the case deadline the group is killed. Examples:
  virtwire check-client -- virsh -k 1 -K 2 -c {uri} 'list --all; dominfo test'
  virtwire check-client -- /usr/bin/python3 conformance/tests/clients/python_libvirt.py {uri}

The session the server replays is recorded first: COMMAND is run against a private libvirtd (test \
driver) through virtwire record's proxy. --trace FILE replays a recorded trace instead. Each case \
changes one thing in that conversation (an event before CONNECT_OPEN's reply, a reply with a wrong \
serial, a bad length word, a body over a declared maximum, …); `--list` shows them.

A client that crashes or hangs fails. A crash is a signal, or a runtime's crash report on stderr: Go \
(`panic:` / `fatal error:` with exit 2; the client runs with GOTRACEBACK=crash), Python (an uncaught \
exception's traceback), Rust (exit 101, `panicked at`), Java (`Exception in thread`), sanitizers \
(`ERROR: AddressSanitizer`, UBSan's `runtime error:`), or a line matching --crash-pattern; the verdict \
shows the crash line. A client that exits is judged by its exit status (with --error-exit, any other \
non-zero status is an abnormal end: fail) and by what it sent; every message it sends is also decoded \
as strict XDR (client/strict-xdr). --repeat N runs each case N times: a case whose verdict differs \
between runs is flaky, reported with its counts and the worst verdict (a failure in any run fails). \
Patterns and known-failing files as for `check`.

Exit status: 0 as expected; 1 a case failed that is not listed as known-failing; 2 a known-failing \
case passed (remove it from the list); 3 harness error.";

/// `virtwire check-client`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Case selection, expectation lists and report files.
    #[command(flatten)]
    pub cases: CaseArgs,
    /// Longest a case may take, in seconds (a client still running a second before is killed).
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = super::check_secs)]
    pub case_timeout: Duration,
    /// Cases run at once (each with its own server and client).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Replay this recorded session (a trace) instead of recording COMMAND against a libvirtd.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the session recorded against libvirtd to this file (a trace for --trace).
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    pub save_session: Option<PathBuf>,
    /// The scripted server listens on a unix socket (in a private directory) instead of TCP.
    #[arg(long)]
    pub unix: bool,
    /// The URI's driver: DRIVER+tcp://…
    #[arg(long, value_name = "NAME", default_value = "test")]
    pub driver: String,
    /// The URI's path.
    #[arg(long, value_name = "PATH", default_value = "/default")]
    pub path: String,
    /// The client's exit status the baseline expects (default: its status against libvirtd, or 0
    /// with --trace).
    #[arg(long, value_name = "N")]
    pub expect_exit: Option<i32>,
    /// The libvirtd binary to record against (default: libvirtd on PATH, else /usr/sbin/libvirtd).
    #[arg(long, value_name = "PATH")]
    pub libvirtd: Option<PathBuf>,
    /// A stderr line matching this regular expression is a crash, whatever the exit status
    /// (repeatable; on top of the built-in runtimes' crash reports).
    #[arg(long, value_name = "REGEX", value_parser = crash_pattern)]
    pub crash_pattern: Vec<regex::Regex>,
    /// The exit statuses the client uses for a graceful refusal (comma list, e.g. `1,3`): any
    /// other non-zero status (not the recording's) is an abnormal end and fails. Without it, any
    /// non-zero exit that is not a crash counts as a refusal.
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub error_exit: Option<Vec<i32>>,
    /// Run the client this many times per case (each run with the case timeout); a case whose
    /// verdict differs between runs is reported as flaky with its counts.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Directory with libvirt's .x protocol files.
    #[arg(long, value_name = "DIR")]
    pub protocol_dir: Option<PathBuf>,
    /// The client command; `{uri}` is replaced by the scripted server's URI.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Run `virtwire check-client`; the exit status.
pub fn run(args: Args) -> ExitCode {
    match check_client(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = io::stdout().flush();
            eprintln!("virtwire check-client: {e}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

fn config(args: &Args) -> Result<Config, lists::ListError> {
    let mut rerun = String::from("virtwire check-client");
    if let Some(t) = &args.trace {
        rerun.push_str(&format!(" --trace '{}'", t.display()));
    }
    if args.unix {
        rerun.push_str(" --unix");
    }
    rerun.push_str(" --run {id} -- ");
    rerun.push_str(&process::shell_line(&args.command));
    args.cases.config(Config {
        // Each of the --repeat runs has the case timeout of its own.
        case_timeout: args.case_timeout.saturating_mul(args.repeat.max(1)),
        jobs: args.jobs.max(1),
        rerun,
        ..Config::default()
    })
}

/// `--crash-pattern`'s value: a regular expression.
fn crash_pattern(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| format!("not a regular expression: {e}"))
}

fn check_client(args: Args) -> Result<u8, String> {
    let cfg = config(&args).map_err(|e| e.to_string())?;
    if !args.command.iter().any(|a| a.contains("{uri}")) {
        return Err(format!(
            "the command has no {{uri}}: it could not reach the scripted server ({})",
            process::shell_line(&args.command)
        ));
    }
    let schema = suite::load_schema(args.protocol_dir.as_deref()).map_err(|e| e.to_string())?;
    let judge = Arc::new(Judge::new(
        virtwire_protocol::Limits::default(),
        virtwire_protocol::Compat::Libvirt,
        Some(schema),
    ));
    let spec = suite::ClientSpec {
        command: args.command.clone(),
        trace: args.trace.clone(),
        listen: if args.unix { Listen::Unix } else { Listen::Tcp },
        form: UriForm {
            driver: args.driver.clone(),
            path: args.path.clone(),
        },
        expected_exit: args.expect_exit,
        libvirtd: LibvirtdOptions {
            binary: args.libvirtd.clone(),
            ..LibvirtdOptions::default()
        },
        record_timeout: args.case_timeout,
        save_session: args.save_session.clone(),
    };
    // Listing needs the session too (which cases apply depends on it): it is recorded first.
    let (setup, banner) = suite::client_setup(&spec, &judge).map_err(|e| e.to_string())?;
    let options = client::cases::Options {
        crash: client::crash::CrashRules {
            patterns: args.crash_pattern.clone(),
            error_exit: args.error_exit.clone(),
        },
        repeat: args.repeat,
        run_timeout: args.case_timeout,
    };
    let catalogue = client::cases::cases(Arc::new(setup), options);
    let cases = runner::select(&catalogue, &cfg).map_err(|e| e.to_string())?;
    if args.cases.list {
        let _ = print_list(&mut io::stdout().lock(), &cases);
        return Ok(0);
    }
    eprintln!("virtwire check-client: {banner}");
    let report = run_and_report(
        "virtwire check-client",
        &args.cases,
        &cases,
        &cfg,
        Box::new(CommandConnector(process::shell_line(&args.command))),
        judge,
        None,
    )?;
    Ok(report.exit_code())
}
