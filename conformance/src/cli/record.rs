//! `virtwire record`: a transparent proxy between real clients and a real server that records what
//! crosses it ([`crate::proxy`]), as traces (`-o`, one per connection, decoded by the wire layer
//! and written by [`crate::trace`]), optionally as pcapng (`--pcapng`, [`crate::capture::write`])
//! and as a JSON-lines wire log (`--wire-log`, one object per recorded chunk:
//! `{"conn":0,"dir":"c2s","at_us":1234,"hex":"0000001c…"}`, `at_us` since the connection was
//! accepted).
//!
//! Exit status: 0 all recorded; 1 something is missing from the recording (a recording capped by
//! `--max-record-bytes`, a client whose server could not be reached); 2 usage error, or the proxy
//! could not listen, or an output could not be written.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::capture::write::PcapngWriter;
use crate::proxy::{Addr, Config, Connection, Event, Proxy};
use crate::target::{TargetUri, Transport};
use crate::wire::DEFAULT_PORTS;
use crate::wire::frames::chunk_connection;
use crate::wire::{Decoder, Options};

/// `record --help`'s closing text.
pub const HELP: &str = "\
Clients connect to --listen as they would to the server; every connection is relayed to --target \
byte for byte, both directions, and recorded. Stop with Ctrl-C (or SIGTERM), --duration or \
--connections: open connections are then closed and every recording written.

-o writes one trace per connection (docs/traces.md): replay it with `virtwire replay` or add it to \
`virtwire check --trace`. --wire-log writes every chunk as JSON lines (conn, dir, at_us, hex). --pcapng writes the same traffic as a capture (synthesized TCP/IP; unix-socket \
ends shown on 127.0.0.1, server port 16509) for `virtwire decode`, tshark or Wireshark.

Exit status: 0 all recorded; 1 a recording was capped or a server could not be reached; 2 usage \
error, cannot listen, or an output could not be written.";

/// `virtwire record`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where clients connect: a loopback HOST:PORT (or a bare PORT on 127.0.0.1; port 0 picks one
    /// and prints it) or unix:PATH.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The server: a libvirt URI (test+tcp://HOST:PORT/NAME, qemu+unix:///system?socket=PATH) or
    /// unix:PATH.
    #[arg(long, value_name = "URI")]
    target: String,
    /// The trace to write (virtwire-trace 1, docs/traces.md): the first connection's to OUT, the
    /// next ones' to OUT with -c1, -c2… before its extension.
    #[arg(short = 'o', long = "output", value_name = "TRACE")]
    output: PathBuf,
    /// Also write every chunk as it crossed, as JSON lines (conn, dir, at_us, hex).
    #[arg(long, value_name = "FILE")]
    wire_log: Option<PathBuf>,
    /// Which libvirt's .x files (bodies are decoded and judged by them).
    #[command(flatten)]
    protocol: super::protocol_args::ProtocolArgs,
    /// Also write the traffic as a pcapng capture.
    #[arg(long, value_name = "FILE")]
    pcapng: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Stop once this many connections have closed.
    #[arg(long, value_name = "N")]
    connections: Option<u64>,
    /// Most bytes recorded per connection (suffixes K, M, G, KiB, MiB, GiB); beyond it the
    /// connection is still relayed but not recorded.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    max_record_bytes: usize,
    /// Seconds a write to a peer that stopped reading may block before the connection is reset.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    write_timeout: f64,
}

/// A size in bytes: digits with an optional K/M/G (powers of 1024, `KiB` etc. also accepted).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..digits]
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1048576, 64KiB, 256M)"))?;
    let shift = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size suffix {other:?} (K, M, G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what} {s} is not a number of seconds"))
}

/// Where to listen: `unix:PATH`, or a loopback TCP address (`127.0.0.1:PORT`, `[::1]:PORT`, or a
/// bare port on 127.0.0.1). Other addresses are refused: the proxy has no authentication of its own.
pub fn parse_listen(s: &str) -> Result<Addr, String> {
    if let Some(p) = s.strip_prefix("unix:") {
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    let a: SocketAddr = match s.parse::<u16>() {
        Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        Err(_) => s
            .parse()
            .map_err(|_| format!("--listen {s:?}: not HOST:PORT, PORT or unix:PATH"))?,
    };
    if !a.ip().is_loopback() {
        return Err(format!(
            "--listen {a}: the proxy listens on loopback addresses only (it relays without \
             authentication)"
        ));
    }
    Ok(Addr::Tcp(a))
}

/// The server to relay to, from a target: `unix:PATH`, or a libvirt URI (`target::TargetUri`) whose
/// transport is tcp (`HOST[:PORT]`) or unix (`?socket=PATH`, else libvirt's default socket). TLS is
/// not relayed: the recording would be encrypted bytes.
pub fn parse_target(s: &str) -> Result<Addr, String> {
    if let Some(p) = s.strip_prefix("unix:") {
        return Ok(Addr::Unix(PathBuf::from(p)));
    }
    let uri = TargetUri::parse(s).map_err(|e| format!("--target: {e}"))?;
    match uri.transport() {
        Transport::Tcp => {
            let addr = uri.address();
            addr.to_socket_addrs()
                .map_err(|e| format!("--target {s:?}: {addr}: {e}"))?
                .next()
                .map(Addr::Tcp)
                .ok_or_else(|| format!("--target {s:?}: {addr} has no address"))
        }
        Transport::Unix => uri
            .socket_path()
            .map(Addr::Unix)
            .ok_or_else(|| format!("--target {s:?}: no socket path")),
        Transport::Tls => Err(format!(
            "--target {s:?}: TLS is not relayed (the recording would be encrypted bytes); point \
             the client and the proxy at a +tcp or +unix target"
        )),
    }
}

/// One recorded chunk of the JSON-lines wire log.
#[derive(serde::Serialize)]
struct LogLine<'a> {
    conn: u64,
    dir: &'a str,
    at_us: u64,
    hex: String,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The trace file of connection `id`: `out` itself for the first, `out` with `-cID` before its
/// extension for the others.
pub fn trace_path(out: &Path, id: u64) -> PathBuf {
    if id == 0 {
        return out.to_path_buf();
    }
    let stem = out
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(ext) => format!("{stem}-c{id}.{}", ext.to_string_lossy()),
        None => format!("{stem}-c{id}"),
    };
    out.with_file_name(name)
}

/// Write one finished connection as a trace (its messages decoded symbolically, raw steps for what
/// does not frame), saying what could not become steps.
fn write_trace(decoder: &Decoder, source: &str, out: &Path, c: &Connection) -> Result<(), String> {
    let path = trace_path(out, c.id);
    let conn = chunk_connection(decoder, source, c.id, c.client, c.server, &c.chunks)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let imported = crate::trace::import::from_connection(source, &conn);
    for p in &imported.problems {
        eprintln!("conn {}: {p}", c.id);
    }
    std::fs::write(&path, crate::trace::write(&imported.trace))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("conn {}: trace written to {}", c.id, path.display());
    Ok(())
}

/// Write one finished connection to `--wire-log`: a JSON object per chunk (`conn`, `dir`,
/// `at_us`, `hex`).
pub fn write_wire_log(out: &mut impl Write, conn: &Connection) -> io::Result<()> {
    for c in &conn.chunks {
        let line = LogLine {
            conn: conn.id,
            dir: c.dir.name(),
            at_us: u64::try_from(c.at.as_micros()).unwrap_or(u64::MAX),
            hex: hex(&c.bytes),
        };
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("virtwire record: {msg}");
    ExitCode::from(2)
}

fn create(path: &PathBuf) -> io::Result<BufWriter<File>> {
    File::create(path).map(BufWriter::new)
}

/// The closing line of a connection.
fn describe(c: &Connection) -> String {
    let end = |e: &Option<crate::proxy::End>| e.as_ref().map_or("-".into(), |e| e.how.to_string());
    let mut s = format!(
        "conn {}: closed after {:.3} s: {} bytes c2s ({}), {} bytes s2c ({})",
        c.id,
        c.duration.as_secs_f64(),
        c.c2s.bytes,
        end(&c.c2s.end),
        c.s2c.bytes,
        end(&c.s2c.end),
    );
    if let Some(e) = &c.upstream_error {
        s = format!("conn {}: the server could not be reached: {e}", c.id);
    }
    if c.capped {
        s.push_str("; recording capped");
    }
    s
}

/// Run `virtwire record`.
pub fn run(args: Args) -> ExitCode {
    let target = match parse_target(&args.target) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let listen = match parse_listen(&args.listen) {
        Ok(l) => l,
        Err(e) => return usage(e),
    };
    let mut cfg = Config::new(listen, target.clone());
    cfg.max_record_bytes = args.max_record_bytes;
    cfg.stop_after_connections = args.connections;
    match args.duration.map(|d| seconds("--duration", d)).transpose() {
        Ok(d) => cfg.stop_after = d,
        Err(e) => return usage(e),
    }
    match seconds("--write-timeout", args.write_timeout) {
        Ok(t) if !t.is_zero() => cfg.write_timeout = t,
        Ok(_) => return usage("--write-timeout must be more than 0"),
        Err(e) => return usage(e),
    }
    let mut log = match args.wire_log.as_ref().map(create).transpose() {
        Ok(f) => f,
        Err(e) => return usage(format!("--wire-log: {e}")),
    };
    let decoder = match args.protocol.search().load() {
        Ok((schema, _)) => Decoder::with_schema(Options::default(), schema),
        Err(e) if e.is_fatal() => return usage(e),
        Err(e) => {
            eprintln!("virtwire record: warning: {e}; trace bodies will be hex");
            Decoder::new(Options::default())
        }
    };
    let source = format!("virtwire record --target {}", args.target);
    let mut pcapng = match &args.pcapng {
        None => None,
        Some(p) => match create(p).and_then(PcapngWriter::new) {
            Ok(w) => Some(w),
            Err(e) => return usage(format!("{}: {e}", p.display())),
        },
    };
    let (proxy, events) = match Proxy::start(cfg) {
        Ok(p) => p,
        Err(e) => return usage(format!("cannot listen on {}: {e}", args.listen)),
    };
    let stopper = proxy.stopper();
    if let Err(e) = ctrlc::set_handler(move || stopper.stop()) {
        eprintln!(
            "virtwire record: warning: no Ctrl-C handler ({e}); stop with --duration or --connections"
        );
    }
    eprintln!(
        "virtwire record: listening on {}, relaying to {target}",
        proxy.local_addr()
    );
    let mut failed_output = None;
    let mut incomplete = false;
    for ev in events {
        match ev {
            Event::Opened { id, client } => match client {
                Some(a) => eprintln!("conn {id}: opened from {a}"),
                None => eprintln!("conn {id}: opened"),
            },
            Event::Capped { id, limit } => eprintln!(
                "conn {id}: recording stopped at {limit} bytes (--max-record-bytes); the \
                 connection is still relayed, the rest of it is not recorded"
            ),
            Event::AcceptFailed(e) => eprintln!("virtwire record: accepting a client failed: {e}"),
            Event::Closed(c) => {
                eprintln!("{}", describe(&c));
                incomplete |= c.capped || c.upstream_error.is_some();
                if failed_output.is_some() {
                    continue;
                }
                let written = write_trace(&decoder, &source, &args.output, &c)
                    .and_then(|()| match (&mut log, &args.wire_log) {
                        (Some(w), Some(p)) => write_wire_log(w, &c)
                            .and_then(|()| w.flush())
                            .map_err(|e| format!("{}: {e}", p.display())),
                        _ => Ok(()),
                    })
                    .and_then(|()| match (&mut pcapng, &args.pcapng) {
                        (Some(w), Some(p)) => w
                            .write_flow(&c.flow())
                            .map_err(|e| format!("{}: {e}", p.display())),
                        _ => Ok(()),
                    });
                if let Err(e) = written {
                    eprintln!("virtwire record: cannot write {e}; stopping");
                    failed_output = Some(e);
                    proxy.stop();
                }
            }
        }
    }
    let summary = proxy.wait();
    if let Some(w) = pcapng
        && let Err(e) = w.finish().and_then(|mut f| f.flush())
        && failed_output.is_none()
    {
        failed_output = Some(format!("pcapng: {e}"));
    }
    eprintln!(
        "virtwire record: {} connection(s), {} bytes c2s, {} bytes s2c{}",
        summary.connections,
        summary.c2s_bytes,
        summary.s2c_bytes,
        if summary.capped > 0 {
            format!(", {} recording(s) capped", summary.capped)
        } else {
            String::new()
        }
    );
    if let (Some(p), Addr::Tcp(a)) = (&args.pcapng, &target)
        && !DEFAULT_PORTS.contains(&a.port())
    {
        eprintln!(
            "virtwire record: decode with: virtwire decode --port {} {}",
            a.port(),
            p.display()
        );
    }
    if failed_output.is_some() {
        ExitCode::from(2)
    } else if incomplete {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let tcp = |s| match parse_target(s) {
            Ok(Addr::Tcp(a)) => a.to_string(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(tcp("test+tcp://127.0.0.1:16600/default"), "127.0.0.1:16600");
        assert_eq!(tcp("qemu+tcp://127.0.0.1/system"), "127.0.0.1:16509");
        assert_eq!(tcp("qemu+tcp://user@127.0.0.1:7/system"), "127.0.0.1:7");
        assert_eq!(tcp("test+tcp://[::1]:16600/default"), "[::1]:16600");
        assert_eq!(tcp("test+tcp://[::1]/default"), "[::1]:16509");
        assert_eq!(
            parse_target("qemu+unix:///system?socket=/tmp/a%20b/libvirt-sock&x=1"),
            Ok(Addr::Unix("/tmp/a b/libvirt-sock".into()))
        );
        assert!(matches!(
            parse_target("qemu+unix:///system"),
            Ok(Addr::Unix(p)) if p.ends_with("libvirt-sock")
        ));
        assert_eq!(parse_target("unix:/x/y"), Ok(Addr::Unix("/x/y".into())));
        for bad in [
            "qemu://host/system",
            "qemu+tls://h/system",
            "qemu+ssh://h/system",
            "nonsense",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("16510"),
            Ok(Addr::Tcp("127.0.0.1:16510".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("[::1]:0"),
            Ok(Addr::Tcp("[::1]:0".parse().unwrap()))
        );
        assert_eq!(parse_listen("unix:/s"), Ok(Addr::Unix("/s".into())));
        assert!(parse_listen("0.0.0.0:16509").is_err());
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("12x").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn wire_log_lines() {
        use crate::capture::tcp::Dir;
        use crate::wire::peer::Chunk;
        let c = Connection {
            id: 3,
            client: None,
            server: None,
            opened: std::time::SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            chunks: vec![Chunk {
                dir: Dir::S2c,
                at: Duration::from_micros(1500),
                bytes: vec![0, 0x1c, 0xff],
            }],
            c2s: Default::default(),
            s2c: Default::default(),
            capped: false,
            upstream_error: None,
        };
        let mut out = Vec::new();
        write_wire_log(&mut out, &c).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"conn\":3,\"dir\":\"s2c\",\"at_us\":1500,\"hex\":\"001cff\"}\n"
        );
    }
}
