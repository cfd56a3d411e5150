//! `virtwire import CAPTURE... -o DIR`: one trace per libvirt connection of each capture
//! (`DIR/<capture-stem>-c<N>.trace`, N as `virtwire decode` numbers connections).
//!
//! Exit status: 0 every connection imported whole; 1 some connection had a gap, a framing error or a
//! frame cut off (its trace says where, and the rest of that direction is missing); 2 usage error, a
//! capture that cannot be read, or a trace that cannot be written (or exists, without `--force`).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::trace::{self, import};
use crate::wire::frames::capture_connections;
use crate::wire::{Decoder, Options, ports_with};

/// `import --help`'s closing text.
pub const HELP: &str = "\
Each TCP connection on a libvirt port becomes one trace (docs/traces.md): client messages as `>` steps \
with their frames, server messages as `<` expectations (events marked async), timer-driven keepalives \
left out. Review the result, then `virtwire replay --learn` adds rules for the fields that change from \
run to run.

Exit status: 0 all imported; 1 some connection had a gap or framing error (noted in its trace); 2 usage \
error, unreadable capture, or a trace that cannot be written.";

/// `virtwire import`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory the traces are written to (created if missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// Another TCP port carrying libvirt RPC (repeatable), besides 16509 and 16514.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Which libvirt's .x files (bodies are decoded and judged by them).
    #[command(flatten)]
    protocol: super::protocol_args::ProtocolArgs,
    /// Overwrite traces that exist (learned and hand-written rules in them are lost).
    #[arg(long)]
    force: bool,
    /// Capture files (pcap, pcapng).
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
}

/// Run `virtwire import`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let opts = Options {
        ports: ports_with(&args.ports),
        ..Options::default()
    };
    let decoder = match args.protocol.search().load() {
        Ok((schema, _)) => Decoder::with_schema(opts, schema),
        Err(e) if e.is_fatal() => {
            eprintln!("virtwire: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!(
                "virtwire: warning: {e}; traces get procedure numbers and hex bodies, which replays \
                 cannot match"
            );
            Decoder::new(opts)
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.output) {
        eprintln!("virtwire: {}: {e}", args.output.display());
        return ExitCode::from(2);
    }
    let mut status = 0u8;
    for path in &args.captures {
        let name = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("virtwire: {name}: {e}");
                status = 2;
                continue;
            }
        };
        let (conns, stats) =
            match capture_connections(&decoder, &name, BufReader::with_capacity(1 << 16, file)) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("virtwire: {name}: {e}");
                    status = 2;
                    continue;
                }
            };
        if let Some(e) = &stats.capture_error_message {
            eprintln!("virtwire: {name}: {e} (connections up to there are imported)");
            status = 2;
        }
        if conns.is_empty() {
            eprintln!(
                "virtwire: {name}: no libvirt connection (ports {:?})",
                ports_with(&args.ports)
            );
        }
        for c in &conns {
            let imported = import::from_connection(&name, c);
            let t = &imported.trace;
            let (sends, expects) = t.counts();
            if sends + expects == 0 {
                eprintln!(
                    "virtwire: {name}: conn {} carries no message: no trace",
                    c.conn
                );
                continue;
            }
            let out = args.output.join(format!("{}.{}", t.name, trace::EXTENSION));
            if out.exists() && !args.force {
                eprintln!(
                    "virtwire: {} exists (its rules may have been reviewed): not overwritten without --force",
                    out.display()
                );
                status = 2;
                continue;
            }
            if let Err(e) = std::fs::write(&out, trace::write(t)) {
                eprintln!("virtwire: {}: {e}", out.display());
                status = 2;
                continue;
            }
            println!(
                "{}: {sends} client messages, {expects} server messages",
                out.display()
            );
            for p in &imported.problems {
                eprintln!("virtwire: {}: {p}", out.display());
                status = status.max(1);
            }
        }
    }
    ExitCode::from(status)
}
