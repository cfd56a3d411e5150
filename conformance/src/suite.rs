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
    load_schema_from(&crate::protocol_files::Search::standard(dir))
}

/// libvirt's protocol schema where `search` finds it (`--protocol-dir`, `--libvirt-version`, …).
pub fn load_schema_from(search: &crate::protocol_files::Search) -> Result<Schema, SuiteError> {
    search
        .load()
        .map(|(schema, _)| schema)
        .map_err(|e| SuiteError::Schema(e.to_string()))
}

/// The cases for one libvirt version: today's catalogue is the same for every version; the
/// schema-generated families (limits, …) take `schema`, so that each version's run uses its own.
pub fn cases_for(schema: &Schema, extra: &[PathBuf]) -> Result<Vec<Case>, SuiteError> {
    let _ = schema;
    all_cases(extra)
}

/// A libvirt version the matrix runs: its `.x` files and how to start its daemon.
#[derive(Clone, Debug)]
pub struct VersionTarget {
    /// The version (`11.3.0`).
    pub version: String,
    /// Its libvirt source tree (the `.x` files).
    pub protocol_dir: PathBuf,
    /// Its daemon: the binary, and `LD_LIBRARY_PATH` for one unpacked into a private prefix.
    pub libvirtd: LibvirtdOptions,
    /// Where the daemon came from (for the banner).
    pub daemon_from: String,
}

/// `binary --version`'s last word (`libvirtd (libvirt) 9.0.0` → `9.0.0`), within 5 s.
fn daemon_version(
    binary: &Path,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Option<String> {
    let mut child = std::process::Command::new(binary)
        .arg("--version")
        .envs(env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    out.split_whitespace().last().map(str::to_string)
}

/// `LD_LIBRARY_PATH` for a libvirtd unpacked into a private prefix (`PREFIX/usr/sbin/libvirtd` beside
/// `PREFIX/usr/lib/x86_64-linux-gnu/libvirt.so.0`, as `scripts/setup.sh` unpacks 11.3.0); nothing for
/// any other binary.
pub fn prefix_env(binary: &Path) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let lib = binary
        .parent()
        .filter(|d| d.ends_with("usr/sbin"))
        .and_then(|d| d.parent())
        .map(|usr| usr.join("lib/x86_64-linux-gnu"));
    match lib {
        Some(lib) if lib.join("libvirt.so.0").exists() => {
            vec![("LD_LIBRARY_PATH".into(), lib.into_os_string())]
        }
        _ => Vec::new(),
    }
}

/// The version of the libvirtd these options start (`binary --version`), if it answers.
pub fn libvirtd_version(opts: &LibvirtdOptions) -> Option<String> {
    let binary = target::find_libvirtd(opts.binary.as_deref()).ok()?;
    daemon_version(&binary, &opts.env)
}

fn version_matches(have: &str, want: &str) -> bool {
    have == want || have.strip_prefix(want).is_some_and(|r| r.starts_with('.'))
}

/// The daemon of libvirt `version` (`11.3`, `9.0.0`): `libvirtd-<version>/usr/sbin/libvirtd` in the
/// user cache or a checkout's `.cache` (what `scripts/setup.sh` unpacks, started with
/// `LD_LIBRARY_PATH` on its `usr/lib/x86_64-linux-gnu`), else the installed libvirtd when its
/// `--version` is that version. The binary's `--version` must say `version` either way.
pub fn libvirtd_for(
    version: &str,
    search: &crate::protocol_files::Search,
) -> Result<(LibvirtdOptions, String), SuiteError> {
    let mut looked = Vec::new();
    for root in search.user_caches.iter().chain(&search.repo_caches) {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        let mut prefixes: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("libvirtd-"))
                    .is_some_and(|v| version_matches(v, version))
            })
            .map(|e| e.path())
            .collect();
        prefixes.sort();
        looked.push(
            root.join(format!("libvirtd-{version}*"))
                .display()
                .to_string(),
        );
        for prefix in prefixes.into_iter().rev() {
            let binary = prefix.join("usr/sbin/libvirtd");
            let env = prefix_env(&binary);
            if let Some(v) = daemon_version(&binary, &env)
                && version_matches(&v, version)
            {
                let opts = LibvirtdOptions {
                    binary: Some(binary),
                    env,
                    ..LibvirtdOptions::default()
                };
                return Ok((opts, format!("{} (private prefix)", prefix.display())));
            }
        }
    }
    if let Ok(binary) = target::find_libvirtd(None) {
        looked.push(binary.display().to_string());
        if let Some(v) = daemon_version(&binary, &[])
            && version_matches(&v, version)
        {
            let opts = LibvirtdOptions {
                binary: Some(binary.clone()),
                ..LibvirtdOptions::default()
            };
            return Ok((opts, format!("{} (installed)", binary.display())));
        }
    }
    Err(SuiteError::Schema(format!(
        "no libvirtd {version} (looked in {}); scripts/setup.sh unpacks libvirt 11.3.0's into \
         .cache/libvirtd-11.3.0",
        looked.join(", ")
    )))
}

/// The versions to run: each one's `.x` files (`--libvirt-version` search) and daemon.
pub fn version_targets(versions: &[String]) -> Result<Vec<VersionTarget>, SuiteError> {
    let base = crate::protocol_files::Search::standard(None);
    versions
        .iter()
        .map(|v| {
            let found = base
                .clone()
                .with_version(Some(v))
                .locate()
                .map_err(|e| SuiteError::Schema(e.to_string()))?;
            let (libvirtd, daemon_from) = libvirtd_for(v, &base)?;
            Ok(VersionTarget {
                version: v.clone(),
                protocol_dir: found.dir,
                libvirtd,
                daemon_from,
            })
        })
        .collect()
}

/// Every version that has both `.x` files and a daemon here, oldest first (the matrix's default).
pub fn available_versions() -> Vec<String> {
    let base = crate::protocol_files::Search::standard(None);
    base.available()
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| libvirtd_for(v, &base).is_ok())
        .collect()
}

/// Run the catalogue against one version's self-started daemon, judged by that version's schema.
/// `config` is the caller's (its known-failing list is for this version).
pub fn run_version(
    vt: &VersionTarget,
    config: &Config,
    extra: &[PathBuf],
    progress: &mut dyn Progress,
) -> Result<(RunReport, String), SuiteError> {
    let schema = Schema::load_dir(&vt.protocol_dir)
        .map_err(|e| SuiteError::Schema(format!("{}: {e}", vt.protocol_dir.display())))?;
    let cases = cases_for(&schema, extra)?;
    let selected = runner::select(&cases, config)?;
    let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, Some(schema)));
    let spec = TargetSpec {
        libvirtd: vt.libvirtd.clone(),
        ..TargetSpec::default()
    };
    let target = open_target(&spec, &judge)?;
    let banner = target.banner.clone();
    let report = runner::run(
        &selected,
        config,
        target.connector,
        judge,
        target.hooks,
        progress,
    );
    drop(target.daemon);
    Ok((report, banner))
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
    libvirt_version: Option<String>,
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
            libvirt_version: None,
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

    /// Use this libvirt version's `.x` files (`11.3.0`, `11.3`: `libvirt-<version>` in the user
    /// cache or the checkout's `.cache`), as `--libvirt-version` does.
    pub fn libvirt_version(mut self, version: impl Into<String>) -> Self {
        self.libvirt_version = Some(version.into());
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
        let search = crate::protocol_files::Search::standard(self.protocol_dir.as_deref())
            .with_version(self.libvirt_version.as_deref());
        let schema = load_schema_from(&search)?;
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
