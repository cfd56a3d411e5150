//! `virtwire replay TRACE... [--target URI]`: replay traces (files, or directories of `*.trace`)
//! against a server, each as a runner case `trace/<name>`; `--learn` replays each twice and shows
//! the rules that would make the fields that differ match (`--write` writes them into the traces).
//!
//! Exit status as `check`: 0 every replay passed; 1 a replay failed; 3 harness error (a trace that
//! does not parse, no .x files, the target unreachable); 2 usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use virtwire_protocol::{Compat, Limits};

use crate::protocol_files::Search;
use crate::replay::{self, Observations, learn};
use crate::runner::{self, CaseReport, Config, Connector, Progress, RunReport, Verdict};
use crate::trace::{self, Trace};
use crate::wire::Judge;
use crate::wire::peer::Transport;

/// `replay --help`'s closing text.
pub const HELP: &str = "\
Targets for now: test+tcp://HOST[:PORT]/NAME (plain TCP, no auth; PORT defaults to 16509), e.g. a \
private daemon from `scripts/libvirtd.sh start DIR`, which prints its port.

--learn replays every trace twice and prints, as a unified diff, the rules that cover the fields that \
differ between the recording and the replays (numbers: range MIN.., hex strings: regex, others: any); \
--write also writes them into the trace files. Review them before committing.

Exit status: 0 all passed; 1 a replay failed; 2 usage error; 3 harness error (bad trace, no .x files, \
target unreachable).";

/// `virtwire replay`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server, as a connection URI: test+tcp://HOST[:PORT]/NAME.
    #[arg(long, value_name = "URI", env = "VIRTWIRE_TARGET")]
    target: Option<String>,
    /// Replay twice and show the rules that make the fields that differ match.
    #[arg(long)]
    learn: bool,
    /// With --learn: write the learned rules into the trace files.
    #[arg(long, requires = "learn")]
    write: bool,
    /// Directory with libvirt's .x protocol files (needed: traces match bodies by field).
    #[arg(long, value_name = "DIR")]
    protocol_dir: Option<PathBuf>,
    /// Longest wait for any one message, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    read_timeout: f64,
    /// Longest one replay may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    case_timeout: f64,
    /// Trace files, or directories whose `*.trace` files are replayed.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
}

/// A plain TCP connection to `HOST:PORT`, opening `NAME`: the target until the `target` module
/// (URIs, TLS, unix sockets, the self-started libvirtd) replaces it.
#[derive(Debug, Clone)]
struct TcpTarget {
    addr: String,
    uri: String,
    open_name: String,
}

impl Connector for TcpTarget {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<_> = self
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.addr))?
            .collect();
        let mut last = format!("{}: no address", self.addr);
        for a in addrs {
            match std::net::TcpStream::connect_timeout(&a, timeout.max(Duration::from_millis(1))) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Box::new(s));
                }
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        Err(last)
    }
    fn describe(&self) -> String {
        self.uri.clone()
    }
    fn open_name(&self) -> Option<String> {
        Some(self.open_name.clone())
    }
}

/// `DRIVER+tcp://HOST[:PORT]/NAME` → a TCP connector (port 16509 by default) whose CONNECT_OPEN
/// name is `DRIVER:///NAME`, as libvirt's remote driver sends it.
fn tcp_connector(uri: &str) -> Result<TcpTarget, String> {
    let bad = |why: &str| format!("target {uri:?}: {why} (expected test+tcp://HOST[:PORT]/NAME)");
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("no ://"))?;
    let (driver, transport) = scheme
        .split_once('+')
        .ok_or_else(|| bad("no +tcp transport"))?;
    if transport != "tcp" || driver.is_empty() {
        return Err(bad("only DRIVER+tcp is supported for now"));
    }
    if rest.contains('?') {
        return Err(bad("query parameters are not supported yet"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    let has_port = match authority.rfind(']') {
        Some(b) => authority[b..].contains(':'),
        None => authority.contains(':'),
    };
    let addr = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:16509")
    };
    Ok(TcpTarget {
        addr,
        uri: uri.to_string(),
        open_name: format!("{driver}:///{path}"),
    })
}

/// The trace files named: files as given, directories' `*.trace` in name order.
fn trace_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == trace::EXTENSION))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!("{}: no .{} file", p.display(), trace::EXTENSION));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Prints each case as it finishes.
struct Printer;

impl Progress for Printer {
    fn finished(&mut self, c: &CaseReport) {
        println!(
            "{:<11} {}  ({:.2} s)",
            c.verdict.name(),
            c.case.id,
            c.duration.as_secs_f64()
        );
        if c.verdict != Verdict::Pass {
            println!("    requirement: {}", c.case.requirement);
            if !c.expected.is_empty() {
                println!("    expected:    {}", c.expected);
            }
            println!("    actual:      {}", c.actual);
            for n in &c.notes {
                println!("    note:        {n}");
            }
        }
    }
}

fn config(args: &Args) -> Config {
    Config {
        read_timeout: Duration::from_secs_f64(args.read_timeout.clamp(0.01, 3600.0)),
        case_timeout: Duration::from_secs_f64(args.case_timeout.clamp(0.1, 86400.0)),
        rerun: "virtwire replay".into(),
        ..Config::default()
    }
}

fn summary(r: &RunReport) {
    let counts: Vec<String> = r.counts().iter().map(|(v, n)| format!("{n} {v}")).collect();
    println!(
        "{} replays against {} in {:.1} s: {}",
        r.cases.len(),
        r.target,
        r.duration.as_secs_f64(),
        counts.join(", ")
    );
}

/// Run `virtwire replay`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let Some(uri) = args.target.clone() else {
        eprintln!(
            "virtwire: replay needs --target URI for now (test+tcp://HOST:PORT/NAME; \
             `scripts/libvirtd.sh start DIR` starts a private libvirtd and prints its port)"
        );
        return ExitCode::from(2);
    };
    let target = match tcp_connector(&uri) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("virtwire: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match trace_files(&args.traces) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("virtwire: {e}");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    let mut traces = Vec::new();
    for f in &files {
        match trace::parse::load(f) {
            Ok(t) => traces.push((f.clone(), Arc::new(t))),
            Err(e) => {
                eprintln!("virtwire: {e}");
                return ExitCode::from(runner::EXIT_HARNESS);
            }
        }
    }
    let schema = match Search::standard(args.protocol_dir.as_deref()).load() {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("virtwire: {e} (replays match bodies field by field: they need the schema)");
            return ExitCode::from(runner::EXIT_HARNESS);
        }
    };
    let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, Some(schema)));
    let cfg = config(&args);
    if args.learn {
        return learn_all(&args, &cfg, &target, judge, &traces);
    }
    let cases: Vec<_> = traces
        .iter()
        .map(|(_, t)| replay::case(t.clone()))
        .collect();
    let report = runner::run(&cases, &cfg, Box::new(target), judge, None, &mut Printer);
    for c in report.cases.iter().filter(|c| c.verdict != Verdict::Pass) {
        if let Some((f, _)) = traces.iter().find(|(_, t)| replay::case_id(t) == c.case.id) {
            println!("rerun: virtwire replay {} --target {uri}", f.display());
        }
    }
    summary(&report);
    ExitCode::from(report.exit_code())
}

/// Replay each trace twice in learning mode, then show (and with --write, write) the rules.
fn learn_all(
    args: &Args,
    cfg: &Config,
    target: &TcpTarget,
    judge: Arc<Judge>,
    traces: &[(PathBuf, Arc<Trace>)],
) -> ExitCode {
    let observations: Vec<Observations> = traces
        .iter()
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let cases: Vec<_> = traces
        .iter()
        .zip(&observations)
        .map(|((_, t), o)| replay::learning_case(t.clone(), o.clone()))
        .collect();
    let mut failed = vec![false; traces.len()];
    let mut status = runner::EXIT_OK;
    for round in 1..=2 {
        println!("learning, replay {round} of 2:");
        let report = runner::run(
            &cases,
            cfg,
            Box::new(target.clone()),
            judge.clone(),
            None,
            &mut Printer,
        );
        for (i, c) in report.cases.iter().enumerate() {
            if c.verdict != Verdict::Pass {
                failed[i] = true;
            }
        }
        status = status.max(report.exit_code());
    }
    for (i, (file, t)) in traces.iter().enumerate() {
        if failed[i] {
            println!(
                "{}: not learned: a replay failed (the header or status of a message differs, or it never came)",
                file.display()
            );
            continue;
        }
        let runs = observations[i]
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        let learned = match learn::learn(t, &runs) {
            Ok(l) => l,
            Err(e) => {
                println!("{}: not learned: {e}", file.display());
                status = status.max(runner::EXIT_FAILURES);
                continue;
            }
        };
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("virtwire: {}: {e}", file.display());
                return ExitCode::from(runner::EXIT_HARNESS);
            }
        };
        let d = learn::diff(&file.display().to_string(), &text, &learned);
        if d.is_empty() {
            println!("{}: nothing to learn", file.display());
            continue;
        }
        print!("{d}");
        if args.write {
            if let Err(e) = write_learned(file, &text, &learned) {
                eprintln!("virtwire: {e}");
                return ExitCode::from(runner::EXIT_HARNESS);
            }
            println!("{}: rules written", file.display());
        }
    }
    if !args.write {
        println!("(review the rules above; --write writes them into the traces)");
    }
    ExitCode::from(status)
}

/// Insert the learned rules and check the result still parses before replacing the file.
fn write_learned(file: &Path, text: &str, learned: &[learn::Learned]) -> Result<(), String> {
    let new = learn::apply(text, learned);
    trace::parse(&new, &file.display().to_string())
        .map_err(|e| format!("learned rules do not parse: {e}"))?;
    std::fs::write(file, new).map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = tcp_connector("test+tcp://127.0.0.1:40000/default").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.open_name.as_str()),
            ("127.0.0.1:40000", "test:///default")
        );
        let t = tcp_connector("test+tcp://localhost/tmp/w.xml").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.open_name.as_str()),
            ("localhost:16509", "test:///tmp/w.xml")
        );
        let t = tcp_connector("test+tcp://[::1]/default").unwrap();
        assert_eq!(t.addr, "[::1]:16509");
        for bad in [
            "tcp://h/x",
            "test+tls://h/x",
            "test+tcp:///x",
            "nothing",
            "test+tcp://h/x?a=b",
        ] {
            assert!(tcp_connector(bad).is_err(), "{bad}");
        }
    }
}
