//! The `virtwire` command line: one file per subcommand. Exit codes are shared by all of them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `eprintln!` that a closed standard error cannot make panic ([`say`]).
macro_rules! say {
    ($($t:tt)*) => {
        $crate::cli::say(format_args!($($t)*))
    };
}

pub mod case_args;
pub mod check;
pub mod check_client;
pub mod decode;
pub mod fetch_protocol;
pub mod import;
pub mod matrix;
pub mod protocol_args;
pub mod record;
pub mod replay;
pub mod report_merge;
pub mod schema;
pub mod target_args;

#[derive(Parser, Debug)]
#[command(
    name = "virtwire",
    version,
    about = "Fuzzing and conformance suite for the libvirt RPC wire protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the conformance catalogue against a libvirt server (default: a libvirtd it starts).
    #[command(after_help = check::HELP)]
    Check(Box<check::Args>),
    /// Run the client conformance cases: a scripted libvirt server against a client command.
    #[command(name = "check-client", after_help = check_client::HELP)]
    CheckClient(Box<check_client::Args>),
    /// Decode libvirt RPC messages from captures (pcap, pcapng) or raw frame streams.
    #[command(after_help = decode::HELP)]
    Decode(decode::Args),
    /// Turn captures into traces: one per libvirt connection.
    #[command(after_help = import::HELP)]
    Import(import::Args),
    /// Replay traces against a server and match its answers under the traces' rules.
    #[command(after_help = replay::HELP)]
    Replay(Box<replay::Args>),
    /// Relay clients to a server through a transparent proxy and record the traffic.
    #[command(after_help = record::HELP)]
    Record(record::Args),
    /// Run the catalogue against a self-started libvirtd of each libvirt version; a matrix of verdicts.
    #[command(after_help = matrix::HELP)]
    Matrix(matrix::Args),
    /// Reports of runs already made: `report merge A.json B.json … --html DIR`.
    #[command(subcommand)]
    Report(report_merge::Args),
    /// Compare two libvirt versions' protocols, or show a procedure's bodies.
    #[command(subcommand, after_help = schema::HELP)]
    Schema(schema::Args),
    /// Fetch a libvirt release's .x protocol files into the user cache (checksum-checked).
    #[command(after_help = fetch_protocol::HELP)]
    FetchProtocol(fetch_protocol::Args),
}

/// A number of seconds (`5`, `0.5`, `2s`).
pub(crate) fn check_secs(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s:?}: between 0 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// Exit status after a write to a closed pipe outside the reports: 128 + SIGPIPE.
pub const EXIT_CLOSED_PIPE: u8 = 141;

/// A line on standard error; a closed standard error is not an error (there is no one to tell).
pub(crate) fn say(line: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// True for the error a write to a closed pipe gets (the reader went away: `virtwire … | head`).
pub(crate) fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// True for the panic `println!` / `eprintln!` raise when their stream is a closed pipe.
fn is_print_to_closed_pipe(msg: Option<&str>) -> bool {
    msg.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe"))
}

/// Standard output and error both to /dev/null from now on, so that nothing else fails writing to
/// them (a second panic while unwinding would abort before the private daemons are stopped).
fn silence_std_streams() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Parse the command line and run the subcommand; the process's exit status.
///
/// A closed standard output or error (`virtwire … 2>&1 | head`) is not an error: what was being
/// written to it is dropped, the report files are still written and the exit status is the run's
/// (`check::write_reports`). A `println!`/`eprintln!` somewhere else that meets a closed stream
/// panics; that panic is caught here, silently, the private daemons are stopped as the stack
/// unwinds, and virtwire exits with status 141, what a shell reports for `cat` killed by SIGPIPE.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied());
        if is_print_to_closed_pipe(msg) {
            silence_std_streams();
        } else {
            default_hook(info)
        }
    }));
    match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(code) => code,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied());
            if !is_print_to_closed_pipe(msg) {
                std::panic::resume_unwind(p);
            }
            // The status a shell reports for a filter killed by SIGPIPE (the crate forbids the
            // `unsafe` that restoring SIGPIPE's default disposition would take).
            ExitCode::from(EXIT_CLOSED_PIPE)
        }
    }
}

fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(*args),
        Command::CheckClient(args) => check_client::run(*args),
        Command::Decode(args) => decode::run(args),
        Command::Import(args) => import::run(args),
        Command::Replay(args) => replay::run(*args),
        Command::Record(args) => record::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Report(args) => report_merge::run(args),
        Command::FetchProtocol(args) => fetch_protocol::run(args),
    }
}
