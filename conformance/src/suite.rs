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
use crate::runner::{
    self, Case, Config, Connector, Credentials, Endpoint, Fact, ListError, LocalServer, Progress,
    RunReport, ServerEvent, ServerHooks, Unavailable,
};
use crate::target::{
    self, ConnectOptions, Connection, Libvirtd, LibvirtdOptions, Sidecar, SidecarKind, TargetError,
    TargetUri, TlsFiles,
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
    fn send_fd(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
        Connection::send_fd(self, fd)
    }
}

/// A target URI as the runner's [`Connector`]: the target itself (with the endpoints beside it) or
/// one of those endpoints.
struct UriConnector {
    uri: TargetUri,
    opts: ConnectOptions,
    /// The program it serves.
    program: u32,
    /// What it is, for messages (the URI, or `virtlogd at unix PATH`).
    label: String,
    credentials: Option<Credentials>,
    /// The endpoints beside the target (only the target's own connector has them).
    extras: Option<Arc<Extras>>,
}

impl UriConnector {
    fn new(uri: TargetUri, opts: ConnectOptions) -> Self {
        let program = if uri.is_admin() {
            virtwire_protocol::header::ADMIN_PROGRAM
        } else {
            REMOTE_PROGRAM
        };
        UriConnector {
            label: uri.to_string(),
            uri,
            opts,
            program,
            credentials: None,
            extras: None,
        }
    }
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
        self.label.clone()
    }
    fn open_name(&self) -> Option<String> {
        self.uri.open_name()
    }
    fn program(&self) -> u32 {
        self.program
    }
    fn endpoint(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
        match &self.extras {
            Some(x) => x.get(which),
            None => Err(Unavailable::Absent(format!(
                "{} has no endpoints of its own",
                self.label
            ))),
        }
    }
    fn credentials(&self) -> Option<Credentials> {
        self.credentials.clone()
    }
}

/// What keeps a lazily started endpoint's server alive (dropped with the connector).
type Keeper = Box<dyn Send + Sync>;
/// Starts an endpoint's server on first use.
type Starter = Box<dyn Fn() -> Started + Send + Sync>;

/// A lazily started endpoint: its connector and what keeps its server alive, or why it failed.
type Started = Result<(Arc<dyn Connector>, Keeper), String>;

/// One endpoint beside the target.
enum Slot {
    /// Given by the user, or part of the self-started libvirtd.
    Ready(Arc<dyn Connector>),
    /// Not there, and why.
    Absent(String),
    /// A private daemon started the first time a case asks for it (once; its failure is kept).
    Lazy {
        start: Starter,
        cell: std::sync::OnceLock<Started>,
    },
}

/// The endpoints beside the target.
struct Extras(std::collections::BTreeMap<Endpoint, Slot>);

impl Extras {
    fn get(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
        match self.0.get(&which) {
            None => Err(Unavailable::Absent("not provided".into())),
            Some(Slot::Ready(c)) => Ok(c.clone()),
            Some(Slot::Absent(why)) => Err(Unavailable::Absent(why.clone())),
            Some(Slot::Lazy { start, cell }) => cell
                .get_or_init(start)
                .as_ref()
                .map(|(c, _)| c.clone())
                .map_err(|e| Unavailable::Broken(e.clone())),
        }
    }
}

/// How virtwire's own log and lock daemons are bounded: no longer than the private libvirtd.
const SIDECAR_LIFETIME: Duration = Duration::from_secs(3600);

/// The private virtlogd / virtlockd started so far, for the hooks that notice one died.
type Sidecars = Arc<Mutex<Vec<Arc<Mutex<Sidecar>>>>>;

fn sidecar_slot(kind: SidecarKind, opts: &ConnectOptions, started: &Sidecars) -> Slot {
    let opts = opts.clone();
    let started = started.clone();
    Slot::Lazy {
        start: Box::new(move || {
            let d = Sidecar::start(kind, SIDECAR_LIFETIME, Duration::from_secs(10), |u, o| {
                target::probe_connect(u, o)
            })
            .map_err(|e| format!("starting a private {}: {e}", kind.name()))?;
            let c = sidecar_connector(kind, d.uri().clone(), &opts, &format!("pid {}", d.pid()));
            let d = Arc::new(Mutex::new(d));
            started
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(d.clone());
            Ok((c, Box::new(d) as Keeper))
        }),
        cell: std::sync::OnceLock::new(),
    }
}

fn sidecar_connector(
    kind: SidecarKind,
    uri: TargetUri,
    opts: &ConnectOptions,
    how: &str,
) -> Arc<dyn Connector> {
    let mut c = UriConnector::new(uri, opts.clone());
    c.program = match kind {
        SidecarKind::Virtlogd => virtwire_protocol::header::LOG_PROGRAM,
        SidecarKind::Virtlockd => virtwire_protocol::header::LOCK_PROGRAM,
    };
    c.label = format!(
        "{} at {} ({how})",
        kind.name(),
        c.uri.socket_path().unwrap_or_default().display()
    );
    Arc::new(c)
}

/// The SASL user of virtwire's own SASL-configured libvirtd.
pub const SASL_USER: &str = "virtwire";

/// A libvirtd like the target's but whose TCP listener wants SASL (DIGEST-MD5 against a private
/// sasldb made with `saslpasswd2 -f`; cyrus finds the daemon's `libvirt.conf` through
/// `SASL_CONF_PATH`, so no system file is read or written).
fn sasl_slot(base: &LibvirtdOptions, opts: &ConnectOptions, judge: &Arc<Judge>) -> Slot {
    let base = base.clone();
    let opts = opts.clone();
    let judge = judge.clone();
    Slot::Lazy {
        start: Box::new(move || {
            let password = format!("pw-{}-{}", std::process::id(), fastrand_suffix());
            let conf = sasl_conf_dir(&password)?;
            let mut lo = base.clone();
            lo.keep = false;
            lo.extra_config.push("auth_tcp = \"sasl\"".into());
            lo.env
                .push(("SASL_CONF_PATH".into(), conf.path().as_os_str().to_owned()));
            let d = Libvirtd::start(lo, auth_list_probe(judge.clone()))
                .map_err(|e| format!("starting a SASL-configured libvirtd: {e}"))?;
            let mut c = UriConnector::new(d.uri().clone(), opts.clone());
            c.label = format!(
                "{} (SASL DIGEST-MD5, user {SASL_USER}; pid {})",
                d.uri(),
                d.pid().map_or_else(|| "?".into(), |p| p.to_string())
            );
            c.credentials = Some(Credentials {
                user: SASL_USER.into(),
                password,
            });
            Ok((
                Arc::new(c) as Arc<dyn Connector>,
                Box::new((d, conf)) as Keeper,
            ))
        }),
        cell: std::sync::OnceLock::new(),
    }
}

/// A few random-ish hex digits (time-based) so that each run's password differs.
fn fastrand_suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{n:08x}")
}

/// A directory with cyrus-sasl's `libvirt.conf` (mechanism DIGEST-MD5, the sasldb in the same
/// directory) and that sasldb, holding [`SASL_USER`] with `password` (`saslpasswd2 -f DB -a
/// libvirt -c -p`, from sasl2-bin).
fn sasl_conf_dir(password: &str) -> Result<tempfile::TempDir, String> {
    use std::io::Write;
    let dir = tempfile::Builder::new()
        .prefix("virtwire-sasl.")
        .tempdir()
        .map_err(|e| format!("create a directory for the SASL config: {e}"))?;
    let db = dir.path().join("passwd.db");
    std::fs::write(
        dir.path().join("libvirt.conf"),
        format!(
            "# virtwire's private SASL config (SASL_CONF_PATH)\nmech_list: digest-md5\nsasldb_path: {}\n",
            db.display()
        ),
    )
    .map_err(|e| format!("write libvirt.conf for SASL: {e}"))?;
    let mut child = std::process::Command::new("saslpasswd2")
        .arg("-f")
        .arg(&db)
        .args(["-a", "libvirt", "-c", "-p", SASL_USER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("saslpasswd2 (package sasl2-bin; scripts/setup.sh installs it): {e}")
        })?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(password.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("saslpasswd2: {e}"))?;
    if !out.status.success() || !db.exists() {
        return Err(format!(
            "saslpasswd2 -f {} failed ({}): {}",
            db.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(dir)
}

/// Readiness of a daemon that wants authentication: AUTH_LIST (allowed before it) is answered OK.
fn auth_list_probe(
    judge: Arc<Judge>,
) -> impl Fn(&TargetUri, &ConnectOptions) -> Result<(), String> {
    move |uri, opts| {
        let conn = target::connect(uri, opts).map_err(|e| e.to_string())?;
        let mut peer = Peer::new(Box::new(conn), judge.clone());
        let serial = peer.serial();
        let frame = FrameBuilder::call(REMOTE_PROGRAM, proc::AUTH_LIST, serial)
            .encode(judge.limits())
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + opts.io_timeout.unwrap_or(Duration::from_secs(5));
        peer.send(&frame, Duration::from_secs(5))
            .map_err(|e| format!("sending AUTH_LIST: {e}"))?;
        match peer.reply(serial, deadline) {
            Ok(r) if r.header.status == MessageStatus::Ok => Ok(()),
            Ok(r) => Err(format!("AUTH_LIST answered {r}")),
            Err(ev) => Err(format!("no answer to AUTH_LIST: {ev:?}")),
        }
    }
}

/// A self-started libvirtd seen by the runner: its log, a restart when a case killed it, and what
/// cases may know of it ([`LocalServer`]).
struct DaemonHooks {
    daemon: Arc<Mutex<Libvirtd>>,
    local: LocalServer,
    /// The private virtlogd / virtlockd, once started: checked after each case like libvirtd.
    sidecars: Sidecars,
}

/// How long a daemon that stopped answering is given to end before it is called hung.
const DYING_GRACE: Duration = Duration::from_secs(5);

/// A self-started libvirtd that does not answer a CONNECT_OPEN within this, after a case failed,
/// is hung (it answers in milliseconds when well).
const HUNG_AFTER: Duration = Duration::from_secs(3);

/// libvirt's own keepalive defaults (libvirtd.conf: `keepalive_interval = 5`, `keepalive_count = 5`).
const LIBVIRT_KEEPALIVE: (u32, u32) = (5, 5);

/// The keepalive settings the suite gives the libvirtd it starts, unless told otherwise: a client
/// that stops answering PINGs is dropped after 1 × (2 + 1) = 3 s, so the case that measures it takes
/// seconds. Only clients that ask for keepalive (CONNECT_SUPPORTS_FEATURE 10) get PINGs, and the
/// runner's connections answer them while they wait.
const SUITE_KEEPALIVE: [&str; 2] = ["keepalive_interval = 1", "keepalive_count = 2"];

/// The last value `key` is given in libvirtd.conf lines (`key = value`).
fn config_number(lines: &[String], key: &str) -> Option<u32> {
    lines.iter().rev().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

impl DaemonHooks {
    fn new(daemon: Arc<Mutex<Libvirtd>>, sidecars: Sidecars) -> std::io::Result<Self> {
        let d = daemon.lock().unwrap_or_else(|p| p.into_inner());
        let scratch = d.dir().join("scratch");
        std::fs::create_dir_all(&scratch)?;
        let opts = d.options();
        let extra = &opts.extra_config;
        let local = LocalServer {
            scratch,
            max_client_requests: config_number(extra, "max_client_requests")
                .unwrap_or(opts.max_client_requests),
            keepalive: (
                config_number(extra, "keepalive_interval").unwrap_or(LIBVIRT_KEEPALIVE.0),
                config_number(extra, "keepalive_count").unwrap_or(LIBVIRT_KEEPALIVE.1),
            ),
            log: Some(d.log_path()),
        };
        drop(d);
        Ok(DaemonHooks {
            daemon,
            local,
            sidecars,
        })
    }
}

/// How a process that ended is named in a known-failing signature: `signal SIGSEGV` (also for a
/// status 128 + N, which `timeout` and shells report for a death by signal N), else `exit N`.
fn death_fact(st: std::process::ExitStatus) -> Option<Fact> {
    use std::os::unix::process::ExitStatusExt;
    let sig = st
        .signal()
        .or_else(|| st.code().filter(|c| *c > 128 && *c < 160).map(|c| c - 128));
    match (sig, st.code()) {
        (Some(n), _) => Some(Fact::Signal {
            name: nix::sys::signal::Signal::try_from(n)
                .map_or_else(|_| format!("SIG{n}"), |s| s.as_str().to_owned()),
        }),
        (None, Some(c)) => Some(Fact::Exit { status: c }),
        (None, None) => None,
    }
}

impl DaemonHooks {
    /// A private virtlogd / virtlockd that died: said, with the end of its log, and restarted.
    fn sidecars_after_case(&self) -> Option<ServerEvent> {
        let list = self.sidecars.lock().ok()?.clone();
        let mut said = Vec::new();
        let mut facts = Vec::new();
        for s in list {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_alive() {
                continue;
            }
            let name = s.kind().name();
            let how = s.exit_description().unwrap_or_else(|| "ended".into());
            facts.extend(s.exit_status().and_then(death_fact));
            let log = s.output();
            let last: Vec<&str> = log.lines().rev().take(3).collect();
            let last = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
            said.push(match s.restart() {
                Ok(()) => format!(
                    "{name} died during this case ({how}; its log ends: {last}); restarted it for \
                     the next case (restart {})",
                    s.restarts()
                ),
                Err(e) => format!(
                    "{name} died during this case ({how}; its log ends: {last}); restarting it \
                     failed: {e}"
                ),
            });
        }
        (!said.is_empty()).then(|| ServerEvent {
            what: said.join("; "),
            facts,
        })
    }
}

impl ServerHooks for DaemonHooks {
    fn log_mark(&self) -> u64 {
        self.daemon.lock().map_or(0, |d| d.log_offset())
    }
    fn log_since(&self, mark: u64) -> String {
        self.daemon
            .lock()
            .map_or_else(|_| String::new(), |d| d.log_since(mark))
    }
    fn after_case(&self) -> Option<ServerEvent> {
        let mut ev = self.sidecars_after_case().unwrap_or_default();
        let mut d = self.daemon.lock().ok()?;
        if !d.is_alive() {
            let how = d.exit_description().unwrap_or_else(|| "exited".to_string());
            ev.facts.extend(d.exit_status().and_then(death_fact));
            let what = match d.restart() {
                Ok(()) => format!(
                    "libvirtd died during this case ({how}); restarted it for the next case (restart {})",
                    d.restarts()
                ),
                Err(e) => {
                    format!("libvirtd died during this case ({how}); restarting it failed: {e}")
                }
            };
            ev.what = if ev.what.is_empty() {
                what
            } else {
                format!("{}; {what}", ev.what)
            };
        }
        (!ev.what.is_empty()).then_some(ev)
    }
    fn after_failure(&self) -> Option<ServerEvent> {
        let mut d = self.daemon.lock().ok()?;
        let hung = d.responds(HUNG_AFTER).err()?;
        // A daemon that stopped answering may be dying rather than hung: one killed by a signal can
        // take seconds to end (a core dump, a sanitizer writing its report). Wait for that before
        // calling it a hang, so that its death is reported as one.
        let until = Instant::now() + DYING_GRACE;
        while d.is_alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !d.is_alive() {
            let how = d.exit_description().unwrap_or_else(|| "exited".to_string());
            let facts = d.exit_status().and_then(death_fact).into_iter().collect();
            let what = match d.restart() {
                Ok(()) => format!(
                    "libvirtd died during this case ({how}; it stopped answering first: {hung}); \
                     restarted it for the next case (restart {})",
                    d.restarts()
                ),
                Err(e) => {
                    format!("libvirtd died during this case ({how}); restarting it failed: {e}")
                }
            };
            return Some(ServerEvent { what, facts });
        }
        let what = match d.restart() {
            Ok(()) => format!(
                "libvirtd is running but hung ({hung}); stopped it and restarted it for the next case (restart {})",
                d.restarts()
            ),
            Err(e) => format!("libvirtd is running but hung ({hung}); restarting it failed: {e}"),
        };
        Some(ServerEvent {
            what,
            facts: vec![Fact::Hang],
        })
    }
    fn local(&self) -> Option<LocalServer> {
        Some(self.local.clone())
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
    /// With a URI target: the endpoints beside it (self-started targets provide their own).
    pub endpoints: EndpointSpec,
}

/// Endpoints beside a URI target, as the user names them (`--readonly-uri` …). Each one not given
/// makes the cases that need it `unsupported`.
#[derive(Clone, Debug, Default)]
pub struct EndpointSpec {
    /// The target's read-only socket, e.g. `qemu+unix:///system?socket=/run/libvirt/libvirt-sock-ro`.
    pub readonly: Option<String>,
    /// The target's admin socket, e.g. `libvirtd:///system`.
    pub admin: Option<String>,
    /// A virtlogd's socket.
    pub virtlogd: Option<PathBuf>,
    /// A virtlockd's socket.
    pub virtlockd: Option<PathBuf>,
    /// A libvirtd URI whose transport requires SASL, with a user and password it accepts.
    pub sasl: Option<(String, Credentials)>,
}

/// The flag that names each endpoint beside a URI target.
fn endpoint_flag(e: Endpoint) -> &'static str {
    match e {
        Endpoint::ReadOnly => "--readonly-uri URI",
        Endpoint::Admin => "--admin-uri URI",
        Endpoint::Virtlogd => "--virtlogd-socket PATH",
        Endpoint::Virtlockd => "--virtlockd-socket PATH",
        Endpoint::Sasl => "--sasl-uri URI with --sasl-user and --sasl-password-file",
    }
}

fn given_endpoints(spec: &EndpointSpec, opts: &ConnectOptions) -> Result<Extras, SuiteError> {
    let mut m = std::collections::BTreeMap::new();
    for e in Endpoint::ALL {
        m.insert(
            e,
            Slot::Absent(format!(
                "the target is a URI and {} was not given",
                endpoint_flag(e)
            )),
        );
    }
    let uri_slot = |u: &str| -> Result<Slot, SuiteError> {
        Ok(Slot::Ready(Arc::new(UriConnector::new(
            TargetUri::parse(u)?,
            opts.clone(),
        ))))
    };
    if let Some(u) = &spec.readonly {
        m.insert(Endpoint::ReadOnly, uri_slot(u)?);
    }
    if let Some(u) = &spec.admin {
        m.insert(Endpoint::Admin, uri_slot(u)?);
    }
    for (e, kind, path) in [
        (Endpoint::Virtlogd, SidecarKind::Virtlogd, &spec.virtlogd),
        (Endpoint::Virtlockd, SidecarKind::Virtlockd, &spec.virtlockd),
    ] {
        if let Some(p) = path {
            let uri = TargetUri::parse(&format!(
                "test+unix:///default?socket={}",
                target::uri::escape_path(&p.to_string_lossy())
            ))?;
            m.insert(e, Slot::Ready(sidecar_connector(kind, uri, opts, "given")));
        }
    }
    if let Some((u, cred)) = &spec.sasl {
        let mut c = UriConnector::new(TargetUri::parse(u)?, opts.clone());
        c.credentials = Some(cred.clone());
        m.insert(Endpoint::Sasl, Slot::Ready(Arc::new(c)));
    }
    Ok(Extras(m))
}

fn self_started_endpoints(
    d: &Libvirtd,
    lo: &LibvirtdOptions,
    opts: &ConnectOptions,
    judge: &Arc<Judge>,
    sidecars: &Sidecars,
) -> Extras {
    let mut m = std::collections::BTreeMap::new();
    m.insert(
        Endpoint::ReadOnly,
        Slot::Ready(Arc::new(UriConnector::new(
            d.unix_ro_uri().clone(),
            opts.clone(),
        ))),
    );
    m.insert(
        Endpoint::Admin,
        Slot::Ready(Arc::new(UriConnector::new(
            d.admin_uri().clone(),
            opts.clone(),
        ))),
    );
    m.insert(
        Endpoint::Virtlogd,
        sidecar_slot(SidecarKind::Virtlogd, opts, sidecars),
    );
    m.insert(
        Endpoint::Virtlockd,
        sidecar_slot(SidecarKind::Virtlockd, opts, sidecars),
    );
    m.insert(Endpoint::Sasl, sasl_slot(lo, opts, judge));
    Extras(m)
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
        let mut c = UriConnector::new(uri, opts.clone());
        c.extras = Some(Arc::new(given_endpoints(&spec.endpoints, &opts)?));
        return Ok(OpenTarget {
            banner: format!("target {}", c.uri),
            connector: Box::new(c),
            hooks: None,
            daemon: None,
        });
    }
    let mut lopts = spec.libvirtd.clone();
    if config_number(&lopts.extra_config, "keepalive_interval").is_none() {
        lopts.extra_config.extend(SUITE_KEEPALIVE.map(String::from));
    }
    let daemon = Libvirtd::start(lopts, rpc_probe(judge.clone()))?;
    let banner = format!(
        "libvirtd {} started by virtwire: {} (pid {}, log {})",
        daemon.version().unwrap_or("(version unknown)"),
        daemon.uri(),
        daemon.pid().map_or_else(|| "?".into(), |p| p.to_string()),
        daemon.log_path().display()
    );
    let mut c = UriConnector::new(daemon.uri().clone(), opts.clone());
    let sidecars = Sidecars::default();
    c.extras = Some(Arc::new(self_started_endpoints(
        &daemon,
        &spec.libvirtd,
        &opts,
        judge,
        &sidecars,
    )));
    let daemon = Arc::new(Mutex::new(daemon));
    let hooks = DaemonHooks::new(daemon.clone(), sidecars)
        .map_err(|e| TargetError::io("create the scratch directory in libvirtd's directory", e))?;
    Ok(OpenTarget {
        connector: Box::new(c),
        hooks: Some(Arc::new(hooks)),
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

/// The cases for one libvirt version: the catalogue with its schema-generated families (limits,
/// security, programs…) generated from that version's `schema`.
pub fn cases_for(schema: &Arc<Schema>, extra: &[PathBuf]) -> Result<Vec<Case>, SuiteError> {
    all_cases(extra, Some(schema))
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
    let schema = Arc::new(schema);
    let cases = cases_for(&schema, extra)?;
    let selected = runner::select(&cases, config)?;
    let judge = Arc::new(Judge::new(
        Limits::default(),
        Compat::Libvirt,
        Some((*schema).clone()),
    ));
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

/// Every case `check` knows: the built-in catalogue (its generated families only with a
/// `schema`), the committed traces, and the traces in `extra` (files).
pub fn all_cases(extra: &[PathBuf], schema: Option<&Arc<Schema>>) -> Result<Vec<Case>, SuiteError> {
    let mut cases = catalogue::builtin(schema);
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
        let search = crate::protocol_files::Search::standard(self.protocol_dir.as_deref())
            .with_version(self.libvirt_version.as_deref());
        let schema = Arc::new(load_schema_from(&search)?);
        let cases = all_cases(&self.traces, Some(&schema))?;
        let selected = runner::select(&cases, &self.config)?;
        let judge = Arc::new(Judge::new(
            Limits::default(),
            Compat::Libvirt,
            Some((*schema).clone()),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_numbers_take_the_last_line_for_the_key() {
        let lines: Vec<String> = [
            "keepalive_interval = 1",
            "keepalive_count=2",
            "keepalive_interval = \"4\"",
            "max_clients = x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(config_number(&lines, "keepalive_interval"), Some(4));
        assert_eq!(config_number(&lines, "keepalive_count"), Some(2));
        assert_eq!(config_number(&lines, "max_clients"), None);
        assert_eq!(config_number(&lines, "keepalive"), None);
    }
}
