//! The `virtwire` command line: one file per subcommand. Exit codes are shared by all of them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod decode;
pub mod import;
pub mod replay;

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
    /// Decode libvirt RPC messages from captures (pcap, pcapng) or raw frame streams.
    #[command(after_help = decode::HELP)]
    Decode(decode::Args),
    /// Turn captures into traces: one per libvirt connection.
    #[command(after_help = import::HELP)]
    Import(import::Args),
    /// Replay traces against a server and match its answers under the traces' rules.
    #[command(after_help = replay::HELP)]
    Replay(replay::Args),
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
        Command::Decode(args) => decode::run(args),
        Command::Import(args) => import::run(args),
        Command::Replay(args) => replay::run(args),
    }
}
