//! The `virtwire` command line: one file per subcommand. Exit codes are shared by all of them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

/// Parse the command line and run the subcommand; the process's exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check(args) => check::run(*args),
        Command::CheckClient(args) => check_client::run(*args),
        Command::Decode(args) => decode::run(args),
        Command::Import(args) => import::run(args),
        Command::Replay(args) => replay::run(*args),
        Command::Record(args) => record::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::FetchProtocol(args) => fetch_protocol::run(args),
    }
}
