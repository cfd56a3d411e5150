//! The `virtwire` command line: one file per subcommand. Exit codes are shared by all of them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod decode;
pub mod record;

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
    /// Relay clients to a server through a transparent proxy and record the traffic.
    #[command(after_help = record::HELP)]
    Record(record::Args),
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
        Command::Record(args) => record::run(args),
    }
}
