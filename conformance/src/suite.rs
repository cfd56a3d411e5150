//! The suite as a library: what `virtwire check` does, callable from another project's `cargo test`
//! against a server it starts (or a libvirtd the suite starts itself).
//!
//! ```no_run
//! use virtwire_conformance::Suite;
//! // Against a server the test started:
//! let report = Suite::new("test+tcp://127.0.0.1:16509/default").run()?;
//! assert_eq!(report.unexpected_failures().count(), 0);
//! // Against a private libvirtd started (and stopped) by the suite:
//! let report = Suite::self_started().run()?;
//! # Ok::<(), virtwire_conformance::suite::SuiteError>(())
//! ```
//!
//! This is the composition root: it is the one module that brings `target` (reaching a server),
//! `wire` (talking to it), `catalogue` (the cases) and `runner` (running them) together. The
//! runner never imports `target`, reports never import either.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{Compat, FrameBuilder, Limits, MessageStatus};

use crate::catalogue;
use crate::runner::ctx::{connect_open_args, proc};
use crate::runner::{self, Case, Config, Connector, ListError, Progress, RunReport, ServerHooks};
use crate::target::{
    self, ConnectOptions, Connection, Libvirtd, LibvirtdOptions, TargetError, TargetUri, TlsFiles,
};
use crate::wire::Judge;
use crate::wire::peer::{Peer, Transport};

/// Why a suite could not run (the harness's fault or the environment's, never the server's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// The target cannot be reached or started.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// libvirt's `.x` files are missing or do not load.
    #[error("{0}")]
    Schema(String),
    /// A case list (run/skip patterns, known-failing files) is wrong.
    #[error(transparent)]
    List(#[from] ListError),
    /// A trace file does not parse.
    #[error("{0}")]
    Trace(String),
}

impl Transport for Connection {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        Connection::set_read_timeout(self, t)
    }
    fn set_write_timeout(&mut self, t: Option<Duration>) -> std::io::Result<()> {
        Connection::set_write_timeout(self, t)
    }
    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// A target URI as the runner's [`Connector`].
struct UriConnector {
    uri: TargetUri,
    opts: ConnectOptions,
}

impl Connector for UriConnector {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        let opts = ConnectOptions {
            connect_timeout: timeout.min(self.opts.connect_timeout),
            ..self.opts.clone()
        };
        target::connect(&self.uri, &opts)
            .map(|c| Box::new(c) as Box<dyn Transport>)
            .map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        self.uri.to_string()
    }
    fn open_name(&self) -> Option<String> {
        self.uri.open_name()
    }
    fn program(&self) -> u32 {
        if self.uri.is_admin() {
            virtwire_protocol::header::ADMIN_PROGRAM
        } else {
            REMOTE_PROGRAM
        }
    }
}

/// A self-started libvirtd seen by the runner: its log, and a restart when a case killed it.
struct DaemonHooks(Arc<Mutex<Libvirtd>>);

impl ServerHooks for DaemonHooks {
    fn log_mark(&self) -> u64 {
        self.0.lock().map_or(0, |d| d.log_offset())
    }
    fn log_since(&self, mark: u64) -> String {
        self.0
            .lock()
            .map_or_else(|_| String::new(), |d| d.log_since(mark))
    }
    fn after_case(&self) -> Option<String> {
        let mut d = self.0.lock().ok()?;
        if d.is_alive() {
            return None;
        }
        let how = d.exit_description().unwrap_or_else(|| "exited".to_string());
        Some(match d.restart() {
            Ok(()) => format!(
                "libvirtd died during this case ({how}); restarted it for the next case (restart {})",
                d.restarts()
            ),
            Err(e) => format!("libvirtd died during this case ({how}); restarting it failed: {e}"),
        })
    }
}

/// A real RPC round trip: connect, CONNECT_OPEN, wait for REPLY/OK. Readiness of a libvirtd is this,
/// not an open port.
fn rpc_probe(judge: Arc<Judge>) -> impl Fn(&TargetUri, &ConnectOptions) -> Result<(), String> {
    move |uri, opts| {
        let conn = target::connect(uri, opts).map_err(|e| e.to_string())?;
        let mut peer = Peer::new(Box::new(conn), judge.clone());
        let serial = peer.serial();
        let frame = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_OPEN, serial)
            .payload(connect_open_args(uri.open_name().as_deref(), 0))
            .encode(judge.limits())
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + opts.io_timeout.unwrap_or(Duration::from_secs(5));
        peer.send(&frame, Duration::from_secs(5))
            .map_err(|e| format!("sending CONNECT_OPEN: {e}"))?;
        match peer.reply(serial, deadline) {
            Ok(r) if r.header.status == MessageStatus::Ok => Ok(()),
            Ok(r) => Err(format!("CONNECT_OPEN answered {r}")),
            Err(ev) => Err(format!("no answer to CONNECT_OPEN: {ev:?}")),
        }
    }
}

/// Where the suite's server is.
#[derive(Clone, Debug, Default)]
pub struct TargetSpec {
    /// A libvirt connection URI; `None` starts a private libvirtd.
    pub uri: Option<String>,
    /// Longest wait for a connection.
    pub connect_timeout: Option<Duration>,
    /// TLS files (`--ca`, `--cert`, `--key`).
    pub tls: TlsFiles,
    /// How to start the private libvirtd (binary, world, keep…).
    pub libvirtd: LibvirtdOptions,
}

/// A target ready for the runner.
pub struct OpenTarget {
    /// How to connect.
    pub connector: Box<dyn Connector>,
    /// Hooks into the server, when the suite started it.
    pub hooks: Option<Arc<dyn ServerHooks>>,
    /// The private libvirtd, when the suite started it: stopped when the last handle is dropped, or
    /// left running (with a printed hint) when its options say `keep`.
    pub daemon: Option<Arc<Mutex<Libvirtd>>>,
    /// One line saying what the target is.
    pub banner: String,
}

/// Open `spec`'s target: connect options for a URI, or start a private libvirtd.
pub fn open_target(spec: &TargetSpec, judge: &Arc<Judge>) -> Result<OpenTarget, SuiteError> {
    let mut opts = ConnectOptions {
        tls_files: spec.tls.clone(),
        ..ConnectOptions::default()
    };
    if let Some(t) = spec.connect_timeout {
        opts.connect_timeout = t;
    }
    if let Some(uri) = &spec.uri {
        let uri = TargetUri::parse(uri)?;
        return Ok(OpenTarget {
            banner: format!("target {uri}"),
            connector: Box::new(UriConnector { uri, opts }),
            hooks: None,
            daemon: None,
        });
    }
    let daemon = Libvirtd::start(spec.libvirtd.clone(), rpc_probe(judge.clone()))?;
    let banner = format!(
        "libvirtd {} started by virtwire: {} (pid {}, log {})",
        daemon.version().unwrap_or("(version unknown)"),
        daemon.uri(),
        daemon.pid().map_or_else(|| "?".into(), |p| p.to_string()),
        daemon.log_path().display()
    );
    let uri = daemon.uri().clone();
    let daemon = Arc::new(Mutex::new(daemon));
    Ok(OpenTarget {
        connector: Box::new(UriConnector { uri, opts }),
        hooks: Some(Arc::new(DaemonHooks(daemon.clone()))),
        daemon: Some(daemon),
        banner,
    })
}

/// libvirt's protocol schema from `dir`, or where the tools look (protocol_files). A conformance
/// run needs it: replies are judged field by field.
pub fn load_schema(dir: Option<&Path>) -> Result<Schema, SuiteError> {
    crate::protocol_files::Search::standard(dir)
        .load()
        .map(|(schema, _)| schema)
        .map_err(|e| SuiteError::Schema(e.to_string()))
}

/// Every case `check` knows: the built-in catalogue, the committed traces, and the traces in
/// `extra` (files).
pub fn all_cases(extra: &[PathBuf]) -> Result<Vec<Case>, SuiteError> {
    let mut cases = catalogue::builtin();
    cases.extend(catalogue::traces::traces());
    for path in extra {
        let t = crate::trace::parse::load(path).map_err(|e| SuiteError::Trace(e.to_string()))?;
        cases.push(crate::replay::case(Arc::new(t)));
    }
    Ok(cases)
}

/// The conformance suite against one target.
#[derive(Debug)]
pub struct Suite {
    target: TargetSpec,
    config: Config,
    protocol_dir: Option<PathBuf>,
    traces: Vec<PathBuf>,
}

impl Suite {
    /// The suite against the server at `uri` (a libvirt connection URI).
    pub fn new(uri: impl Into<String>) -> Self {
        Suite {
            target: TargetSpec {
                uri: Some(uri.into()),
                ..TargetSpec::default()
            },
            config: Config::default(),
            protocol_dir: None,
            traces: Vec::new(),
        }
    }

    /// The suite against a private libvirtd it starts (test driver, loopback) and stops.
    pub fn self_started() -> Self {
        Suite {
            target: TargetSpec::default(),
            ..Suite::new("")
        }
    }

    /// Run settings (timeouts, jobs, case selection, known-failing lists).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How to start the private libvirtd.
    pub fn libvirtd(mut self, opts: LibvirtdOptions) -> Self {
        self.target.libvirtd = opts;
        self
    }

    /// Where libvirt's `.x` files are (default: where the tools look).
    pub fn protocol_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.protocol_dir = Some(dir.into());
        self
    }

    /// Also replay this trace file.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.traces.push(path.into());
        self
    }

    /// Run the selected cases and report. A failing server is a report with failures, not an error.
    pub fn run(&self) -> Result<RunReport, SuiteError> {
        self.run_with(&mut ())
    }

    /// [`Suite::run`], telling `progress` as cases finish.
    pub fn run_with(&self, progress: &mut dyn Progress) -> Result<RunReport, SuiteError> {
        let cases = all_cases(&self.traces)?;
        let selected = runner::select(&cases, &self.config)?;
        let schema = load_schema(self.protocol_dir.as_deref())?;
        let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, Some(schema)));
        let target = open_target(&self.target, &judge)?;
        let report = runner::run(
            &selected,
            &self.config,
            target.connector,
            judge,
            target.hooks,
            progress,
        );
        // The private libvirtd (if any) stops here, or is left running with `keep`.
        drop(target.daemon);
        Ok(report)
    }
}

/// What `check-client` replays and against which client.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// The client command, `{uri}` where the scripted server's URI goes.
    pub command: Vec<String>,
    /// The session to replay; `None` records the command against a private libvirtd first.
    pub trace: Option<PathBuf>,
    /// TCP or a unix socket for the scripted server.
    pub listen: crate::client::Listen,
    /// The URI's driver and path.
    pub form: crate::client::UriForm,
    /// The client's exit status to expect in the baseline (default: the recording's, or 0 for a
    /// given trace).
    pub expected_exit: Option<i32>,
    /// How to start the private libvirtd for the recording.
    pub libvirtd: LibvirtdOptions,
    /// Longest the recording run may take.
    pub record_timeout: Duration,
    /// Write the recorded session here (a trace, for `--trace` next time).
    pub save_session: Option<PathBuf>,
}

/// The shared setup of a check-client run, and one line saying where its session came from.
pub fn client_setup(
    spec: &ClientSpec,
    judge: &Arc<Judge>,
) -> Result<(crate::client::Setup, String), SuiteError> {
    use crate::client::{Script, Setup, record};
    let (trace, exit, banner, stderr, stdout_bytes) = match &spec.trace {
        Some(path) => {
            let t =
                crate::trace::parse::load(path).map_err(|e| SuiteError::Trace(e.to_string()))?;
            let banner = format!("session: {} (given)", path.display());
            (t, 0, banner, String::new(), None)
        }
        None => {
            let daemon = Libvirtd::start(spec.libvirtd.clone(), rpc_probe(judge.clone()))?;
            let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], daemon.port()));
            let decoder = crate::wire::Decoder::from_judge(judge.clone());
            let rec = record::record(
                &spec.command,
                upstream,
                &spec.form,
                &decoder,
                spec.record_timeout,
            )
            .map_err(SuiteError::Trace)?;
            let exit = match rec.run.ending {
                crate::client::process::Ending::Exited(c) => c,
                _ => 0,
            };
            let banner = format!(
                "session: recorded against libvirtd {} (pid {}): {} exchanges, client exit status {exit}",
                daemon.version().unwrap_or("(version unknown)"),
                daemon.pid().map_or_else(|| "?".into(), |p| p.to_string()),
                rec.trace.counts().0,
            );
            drop(daemon);
            if let Some(p) = &spec.save_session {
                std::fs::write(p, crate::trace::write(&rec.trace)).map_err(|e| {
                    SuiteError::Trace(format!("--save-session {}: {e}", p.display()))
                })?;
            }
            let out = Some(rec.run.stdout_bytes);
            (rec.trace, exit, banner, rec.run.stderr, out)
        }
    };
    let script = Script::from_trace(&trace).map_err(|e| SuiteError::Trace(e.to_string()))?;
    Ok((
        Setup {
            script: Arc::new(script),
            command: spec.command.clone(),
            listen: spec.listen.clone(),
            form: spec.form.clone(),
            judge: judge.clone(),
            expected_exit: spec.expected_exit.unwrap_or(exit),
            baseline_stderr: stderr,
            baseline_stdout_bytes: stdout_bytes,
        },
        banner,
    ))
}
