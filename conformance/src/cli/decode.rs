//! `virtwire decode`: every libvirt RPC message in captures or raw frame streams, as text or JSON.
//!
//! Exit status: 0 everything decoded; 1 some traffic did not decode (a message error, a TCP gap, a
//! framing error, a frame cut off at the end); 2 usage error, or an input that could not be read (no
//! such file, not a pcap/pcapng, a truncated or corrupt capture — whatever was read before is still
//! printed). When several apply, the highest wins.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use virtwire_protocol::{Compat, Profile};

use crate::render::{Format, RecordWriter};
use crate::wire::{Decoder, Options, ports_with};

/// `decode --help`'s closing text.
pub const HELP: &str = "\
Input: pcap and pcapng (detected by their magic number; Ethernet, Linux cooked v1/v2, raw IP and \
loopback link types; IPv4 and IPv6). TCP is reassembled per connection and direction; out-of-order \
and retransmitted segments are handled. A hole in a TCP stream is reported (\"gap of N bytes at seq X, \
direction stopped\") and that direction is not decoded further: libvirt's framing has no marker to \
resynchronise on without guessing. With --raw each FILE is a plain byte stream of frames.

Exit status: 0 all decoded; 1 some message, frame or stream did not decode; 2 usage error or an input \
that cannot be read (missing, not a capture, truncated capture; what was read is still printed).";

/// `virtwire decode`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: an indented tree per message, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Another TCP port carrying libvirt RPC (repeatable), besides 16509 and 16514.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Inputs are raw byte streams of frames, not captures.
    #[arg(long)]
    raw: bool,
    /// Which libvirt's .x files (bodies are decoded and judged by them).
    #[command(flatten)]
    protocol: super::protocol_args::ProtocolArgs,
    /// How strictly each message is judged. Default `libvirt` for captures: accept what libvirt 9.0
    /// accepts (non-zero padding, trailing bytes, unknown enum values…); `strict` follows RFC 4506 and
    /// reports every deviation as a decode error.
    #[arg(long, value_enum, default_value_t = CompatArg::Libvirt)]
    compat: CompatArg,
    /// Size limits of a libvirt era: legacy-256k, dynamic-16m or current-32m.
    #[arg(long, value_name = "PROFILE", default_value = "current-32m", value_parser = parse_profile)]
    limits: Profile,
    /// Most out-of-order bytes buffered per TCP direction before a hole is declared a gap.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    reassembly_max: usize,
    /// Capture files (or raw frame streams with --raw); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompatArg {
    Strict,
    Libvirt,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Profile::NAMED.iter().map(|p| p.name()).collect();
        format!(
            "unknown limits profile {s:?} (one of: {})",
            names.join(", ")
        )
    })
}

/// Run `virtwire decode`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let opts = Options {
        ports: ports_with(&args.ports),
        compat: match args.compat {
            CompatArg::Strict => Compat::Strict,
            CompatArg::Libvirt => Compat::Libvirt,
        },
        limits: args.limits.limits(),
        max_pending: args.reassembly_max,
    };
    // The schema (protocol_files): a --protocol-dir / $VIRTWIRE_PROTOCOL_DIR must load; the caches
    // are optional, without them procedure bodies stay hex.
    let decoder = match args.protocol.search().load() {
        // JSON is written straight from each body's tape (no value tree per message).
        Ok((schema, _)) => {
            Decoder::with_schema(opts, schema).tape_bodies(matches!(args.format, FormatArg::Json))
        }
        Err(e) if e.is_fatal() => {
            eprintln!("virtwire: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("virtwire: warning: {e}; procedure bodies are shown as hex");
            Decoder::new(opts)
        }
    };
    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
    };
    let stdout = io::stdout().lock();
    let mut out = RecordWriter::new(BufWriter::with_capacity(1 << 16, stdout), format);
    let mut status = 0u8;
    for path in &args.files {
        let name = path.display().to_string();
        let input: Box<dyn io::Read> = if name == "-" {
            Box::new(io::stdin().lock())
        } else {
            match File::open(path) {
                // Both readers buffer on their own (64 KiB): no BufReader in front.
                Ok(f) => Box::new(f),
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("virtwire: {name}: {e}");
                    status = 2;
                    continue;
                }
            }
        };
        let result = if args.raw {
            decoder.decode_raw(&name, input, &mut out)
        } else {
            decoder.decode_capture(&name, input, &mut out)
        };
        match result {
            Ok(stats) => {
                if stats.capture_error {
                    let _ = out.flush();
                    eprintln!(
                        "virtwire: {name}: {}",
                        stats
                            .capture_error_message
                            .as_deref()
                            .unwrap_or("capture error")
                    );
                    status = 2;
                } else if stats.has_decode_problems() {
                    status = status.max(1);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::from(status),
            Err(e) => {
                let _ = out.flush();
                eprintln!("virtwire: {name}: {e}");
                status = 2;
            }
        }
    }
    if let Err(e) = out.flush()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("virtwire: writing output: {e}");
        status = 2;
    }
    let _ = io::stderr().flush();
    ExitCode::from(status)
}
