//! The private libvirtd: the recipe of shared/LIBVIRTD.md, in Rust.
//!
//! - its own directory (a temp dir): `libvirtd.conf` (TCP on 127.0.0.1 at a free port, no
//!   authentication, unix sockets in `sock/`, the log in `libvirtd.log`), an empty
//!   `LIBVIRT_DRIVER_DIR` (so no stateful driver loads: only the test driver, which is built into
//!   libvirt.so), `HOME` and the XDG directories inside it;
//! - run in the **foreground** as our child, in its own process group, so that we know its PID
//!   and a terminal's Ctrl-C reaches us, not it;
//! - its run time bounded by coreutils `timeout -k 5 SECS` (it dies even if virtwire is
//!   SIGKILLed and nothing else notices), and a watchdog: `sh` reading a pipe only we hold; when
//!   virtwire dies, however it dies, the pipe closes and the watchdog sends SIGTERM to the
//!   daemon's process group (timeout forwards it and sends SIGKILL 5 s later);
//! - ready when the caller's probe (an RPC round trip, built on wire/) succeeds;
//! - stopped on Drop (also when a panic unwinds), on SIGINT/SIGTERM/SIGHUP (the registry's
//!   handler) and by [`Libvirtd::stop`]: SIGTERM to the group, up to 5 s, then SIGKILL; reaped.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::connect::ConnectOptions;
use super::error::{TargetError, fmt_duration};
use super::registry;
use super::uri::{TargetUri, escape_path};

/// A readiness probe: `Ok` once the server at the URI answers. The runner passes one that makes
/// an RPC round trip through wire/; [`super::probe_connect`] only opens a connection.
pub type Probe = dyn Fn(&TargetUri, &ConnectOptions) -> Result<(), String> + Send + Sync;

/// Where libvirtd usually is when it is not on PATH.
pub const DEFAULT_LIBVIRTD: &str = "/usr/sbin/libvirtd";

/// libvirtd's own default for `max_client_requests` (calls in flight per client).
pub const LIBVIRT_DEFAULT_MAX_CLIENT_REQUESTS: u32 = 5;

/// The longest unix socket name the daemon will make in its directory.
const LONGEST_SOCKET: &str = "sock/libvirt-admin-sock";

/// How to run the private libvirtd.
#[derive(Clone, Debug)]
pub struct LibvirtdOptions {
    /// The binary (`--libvirtd PATH`); else `libvirtd` on PATH, else /usr/sbin/libvirtd.
    pub binary: Option<PathBuf>,
    /// A test-driver world (`--world FILE.xml`): the URIs' path becomes its absolute path.
    pub world: Option<PathBuf>,
    /// `max_client_requests` in libvirtd.conf. Default 5, libvirt's default.
    pub max_client_requests: u32,
    /// `log_outputs` level: 1 debug, 2 info, 3 warning (default), 4 error.
    pub log_level: u8,
    /// More libvirtd.conf lines (e.g. `keepalive_interval = 2`); a key given here replaces
    /// virtwire's line for it (e.g. `listen_tls = 1` with `tls_port`, `ca_file`, `cert_file`,
    /// `key_file` for a TLS listener, still on 127.0.0.1).
    pub extra_config: Vec<String>,
    /// More environment for the daemon, applied last (e.g. `LD_LIBRARY_PATH` for a libvirtd
    /// unpacked from another version).
    pub env: Vec<(OsString, OsString)>,
    /// How long start and restart wait for the probe to succeed. Default 10 s.
    pub ready_timeout: Duration,
    /// Upper bound on the daemon's run time, enforced by coreutils `timeout` even if virtwire is
    /// killed; `None` runs it unwrapped. Default 1 h.
    pub lifetime: Option<Duration>,
    /// `--keep-libvirtd`: leave it running when this handle is dropped, and print how to stop it.
    pub keep: bool,
    /// Install the process-wide SIGINT/SIGTERM/SIGHUP handler that stops the daemons and exits
    /// with 130. Default on; an application with its own handler turns it off and calls
    /// [`super::stop_all_daemons`].
    pub stop_on_signals: bool,
    /// Options the probe gets. Default: 2 s to connect, 5 s per read or write.
    pub probe_options: ConnectOptions,
}

impl Default for LibvirtdOptions {
    fn default() -> Self {
        LibvirtdOptions {
            binary: None,
            world: None,
            max_client_requests: LIBVIRT_DEFAULT_MAX_CLIENT_REQUESTS,
            log_level: 3,
            extra_config: Vec::new(),
            env: Vec::new(),
            ready_timeout: Duration::from_secs(10),
            lifetime: Some(Duration::from_secs(3600)),
            keep: false,
            stop_on_signals: true,
            probe_options: ConnectOptions {
                connect_timeout: Duration::from_secs(2),
                io_timeout: Some(Duration::from_secs(5)),
                ..ConnectOptions::default()
            },
        }
    }
}

/// The running process and what we know of it.
struct Running {
    /// Our child: `timeout` (or libvirtd itself without a lifetime); its PID is the group's id.
    child: Child,
    /// `sh` waiting for the end of a pipe only we write to.
    watchdog: Option<Child>,
    /// Our entry in the signal handler's registry.
    reg: Option<u64>,
    /// Set once reaped.
    exited: Option<ExitStatus>,
}

/// A private libvirtd on a loopback port, stopped when dropped.
pub struct Libvirtd {
    opts: LibvirtdOptions,
    probe: Box<Probe>,
    binary: PathBuf,
    timeout_tool: Option<PathBuf>,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    port: u16,
    uri: TargetUri,
    unix_uri: TargetUri,
    unix_ro_uri: TargetUri,
    admin_uri: TargetUri,
    version: Option<String>,
    running: Mutex<Option<Running>>,
    daemon_pid: Option<u32>,
    restarts: u32,
    /// [`Libvirtd::keep`] returned the stop hint: Drop need not print it.
    hint_given: bool,
}

impl std::fmt::Debug for Libvirtd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libvirtd")
            .field("binary", &self.binary)
            .field("dir", &self.path)
            .field("uri", &self.uri.as_str())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Find the libvirtd binary: the given path, else `libvirtd` on PATH, else /usr/sbin/libvirtd.
pub fn find_libvirtd(given: Option<&Path>) -> Result<PathBuf, TargetError> {
    if let Some(p) = given {
        return if is_executable(p) {
            Ok(p.to_owned())
        } else {
            Err(TargetError::LibvirtdNotFound {
                looked: format!("--libvirtd {}: not an executable file", p.display()),
            })
        };
    }
    find_on_path("libvirtd")
        .or_else(|| Some(PathBuf::from(DEFAULT_LIBVIRTD)).filter(|p| is_executable(p)))
        .ok_or_else(|| TargetError::LibvirtdNotFound {
            looked: format!("looked for libvirtd on PATH and at {DEFAULT_LIBVIRTD}"),
        })
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn free_loopback_port() -> Result<u16, TargetError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TargetError::io("find a free port on 127.0.0.1", e))
}

impl Libvirtd {
    /// Start a private libvirtd and wait until `probe` succeeds on [`Libvirtd::uri`].
    pub fn start<P>(opts: LibvirtdOptions, probe: P) -> Result<Libvirtd, TargetError>
    where
        P: Fn(&TargetUri, &ConnectOptions) -> Result<(), String> + Send + Sync + 'static,
    {
        if let Some(line) = opts
            .extra_config
            .iter()
            .find(|l| l.split('=').next().unwrap_or("").trim() == "listen_addr")
        {
            return Err(TargetError::Libvirtd {
                message: format!(
                    "extra config \"{line}\" refused: the private libvirtd listens on 127.0.0.1 only"
                ),
                log: String::new(),
            });
        }
        let binary = find_libvirtd(opts.binary.as_deref())?;
        let timeout_tool = match opts.lifetime {
            Some(_) => Some(find_on_path("timeout").ok_or(TargetError::MissingTool {
                tool: "timeout",
                why: "coreutils timeout bounds the private libvirtd's run time \
                      (install coreutils, or run without a lifetime)",
            })?),
            None => None,
        };
        let world = opts.world.as_deref().map(world_path).transpose()?;
        if opts.stop_on_signals && !opts.keep {
            registry::install_handler()?;
        }
        let dir = make_dir()?;
        let path = dir.path().to_owned();
        for sub in ["sock", "empty-driver-dir", "home", "xdg"] {
            let d = path.join(sub);
            fs::create_dir_all(&d)
                .map_err(|e| TargetError::io(format!("create {}", d.display()), e))?;
        }
        let _ = fs::set_permissions(path.join("xdg"), fs::Permissions::from_mode(0o700));
        let version = version(&binary, &opts.env);

        let mut probe: Box<Probe> = Box::new(probe);
        let mut dir = Some(dir);
        let attempts = 4;
        for attempt in 1..=attempts {
            // A port found free can be taken before the daemon binds it: then try another.
            let port = free_loopback_port()?;
            let mut d = Libvirtd {
                uri: tcp_uri(port, world.as_deref())?,
                unix_uri: unix_uri(&path, "libvirt-sock", world.as_deref())?,
                unix_ro_uri: unix_uri(&path, "libvirt-sock-ro", world.as_deref())?,
                admin_uri: admin_uri(&path)?,
                opts: opts.clone(),
                probe,
                binary: binary.clone(),
                timeout_tool: timeout_tool.clone(),
                dir: dir.take(),
                path: path.clone(),
                port,
                version: version.clone(),
                running: Mutex::new(None),
                daemon_pid: None,
                restarts: 0,
                hint_given: false,
            };
            d.write_config()?;
            match d.spawn_and_wait() {
                Ok(()) => return Ok(d),
                Err(e)
                    if attempt < attempts && e.to_string().contains("Address already in use") =>
                {
                    probe = std::mem::replace(&mut d.probe, Box::new(|_, _| Ok(())));
                    dir = d.dir.take();
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// `test+tcp://127.0.0.1:PORT/default`, or with a world `test+tcp://127.0.0.1:PORT/ABS/world.xml`.
    pub fn uri(&self) -> &TargetUri {
        &self.uri
    }

    /// The same over the read-write unix socket: `test+unix:///default?socket=DIR/sock/libvirt-sock`.
    pub fn unix_uri(&self) -> &TargetUri {
        &self.unix_uri
    }

    /// The same over the read-only unix socket (`libvirt-sock-ro`: the daemon forces
    /// VIR_CONNECT_RO there).
    pub fn unix_ro_uri(&self) -> &TargetUri {
        &self.unix_ro_uri
    }

    /// The admin program's URI: `libvirtd:///system?socket=DIR/sock/libvirt-admin-sock`.
    pub fn admin_uri(&self) -> &TargetUri {
        &self.admin_uri
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options it was started with.
    pub fn options(&self) -> &LibvirtdOptions {
        &self.opts
    }

    /// The daemon's directory (config, sockets, log).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `libvirtd --version`'s answer, e.g. `libvirtd (libvirt) 9.0.0`.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The PID of our child, which leads the daemon's process group: `timeout` wrapping
    /// libvirtd, or libvirtd itself without a lifetime. `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.running)
            .as_ref()
            .filter(|r| r.exited.is_none())
            .map(|r| r.child.id())
    }

    /// libvirtd's own PID (from its pid file), once it was ready.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon_pid
    }

    /// How many times [`Libvirtd::restart`] ran.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// libvirtd.conf.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("libvirtd.conf")
    }

    /// The daemon's log (`log_outputs`).
    pub fn log_path(&self) -> PathBuf {
        self.path.join("libvirtd.log")
    }

    /// Where the daemon's standard output and error go.
    pub fn stderr_path(&self) -> PathBuf {
        self.path.join("libvirtd.stderr")
    }

    /// Whether the daemon is running. A daemon that died is reaped here, and
    /// [`Libvirtd::exit_description`] then says how it ended.
    pub fn is_alive(&self) -> bool {
        let mut g = lock(&self.running);
        let Some(r) = g.as_mut() else { return false };
        if r.exited.is_some() {
            return false;
        }
        // Reaping and deregistering happen together, under the registry's lock.
        let mut reg = registry::lock();
        let mut polls = 0;
        let status = loop {
            match r.child.try_wait() {
                Ok(Some(st)) => break st,
                // Reaped by someone else (the signal handler): gone.
                Err(_) => break ExitStatus::from_raw(Signal::SIGKILL as i32),
                Ok(None) if self.daemon_pid.is_none_or(process_running) => return true,
                // libvirtd is gone; its parent, timeout, follows within moments.
                Ok(None) if polls < 50 => {
                    polls += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return false,
            }
        };
        r.exited = Some(status);
        if let Some(id) = r.reg.take() {
            reg.remove(id);
        }
        drop(reg);
        kill_watchdog(r);
        false
    }

    /// Whether the running daemon still answers: the readiness probe, each read or write bounded by
    /// `timeout`. `Err` says what the probe got and the daemon's process state (`T (stopped)`,
    /// `D (disk sleep)`…), the evidence that it hangs.
    pub fn responds(&self, timeout: Duration) -> Result<(), String> {
        let opts = ConnectOptions {
            connect_timeout: timeout,
            io_timeout: Some(timeout),
            ..self.opts.probe_options.clone()
        };
        (self.probe)(&self.uri, &opts).map_err(|e| {
            let state = self
                .daemon_pid
                .and_then(process_state)
                .map_or_else(String::new, |s| format!("; process state {s}"));
            format!(
                "no answer to the readiness probe within {}: {e}{state}",
                fmt_duration(timeout)
            )
        })
    }

    /// The daemon's exit status, once it ended.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.is_alive();
        lock(&self.running).as_ref().and_then(|r| r.exited)
    }

    /// How the daemon ended, once it did: `exited with status 1`, `was killed by signal 11
    /// (SIGSEGV)`, `was stopped when its lifetime of 1 h ran out`.
    pub fn exit_description(&self) -> Option<String> {
        self.is_alive();
        lock(&self.running)
            .as_ref()
            .and_then(|r| r.exited)
            .map(|st| describe_exit(st, self.opts.lifetime))
    }

    /// Stop the daemon if it runs and start it again on the same port, in the same directory
    /// (the log goes on in the same file), then wait for the probe.
    pub fn restart(&mut self) -> Result<(), TargetError> {
        self.stop_running();
        *lock(&self.running) = None;
        self.daemon_pid = None;
        self.restarts += 1;
        self.spawn_and_wait().map_err(|e| match e {
            TargetError::Libvirtd { message, log } if log.contains("Address already in use") => {
                TargetError::Libvirtd {
                    message: format!(
                        "{message} (port {} was taken by another program while libvirtd was down)",
                        self.port
                    ),
                    log,
                }
            }
            e => e,
        })
    }

    /// Stop the daemon now (SIGTERM to its process group, SIGKILL after 5 s) and say how it ended.
    pub fn stop(&mut self) -> Option<String> {
        self.stop_running()
            .map(|st| describe_exit(st, self.opts.lifetime))
    }

    /// Leave the daemon running and its directory in place; the text says how to stop it.
    pub fn keep(mut self) -> String {
        self.opts.keep = true;
        self.hint_given = true;
        self.stop_hint()
    }

    /// What `--keep-libvirtd` prints: the PIDs, the URI, the directory and the command that stops it.
    pub fn stop_hint(&self) -> String {
        let Some(pgid) = self.pid() else {
            return format!(
                "libvirtd is not running ({}); its files: {}",
                self.exit_description()
                    .unwrap_or_else(|| "never started".to_owned()),
                self.path.display()
            );
        };
        let bound = match self.opts.lifetime {
            Some(l) => format!(
                "; it runs under `timeout` (pid {pgid}), which stops it after {} at the latest",
                fmt_duration(l)
            ),
            None => String::new(),
        };
        format!(
            "libvirtd left running: pid {} (process group {pgid}){bound}; URI {}; files in {}; \
             stop it with: kill -s TERM -- -{pgid}",
            self.daemon_pid
                .map_or_else(|| "?".to_owned(), |p| p.to_string()),
            self.uri,
            self.path.display(),
        )
    }

    /// The log's current size: pass it to [`Libvirtd::log_since`] after a case.
    pub fn log_offset(&self) -> u64 {
        fs::metadata(self.log_path()).map_or(0, |m| m.len())
    }

    /// What the daemon logged since `offset` (at most the last 1 MiB of it).
    pub fn log_since(&self, offset: u64) -> String {
        read_lines_capped(&self.log_path(), offset, 1 << 20, LOG_LINE_KEEP)
    }

    /// The last `max_bytes` of the log, from a line start.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        read_range(&self.log_path(), 0, max_bytes)
    }

    fn failure_log(&self) -> String {
        let mut s = self.log_tail(4096);
        let err = read_range(&self.stderr_path(), 0, 2048);
        if !err.trim().is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("[standard error]\n");
            s.push_str(&err);
        }
        s
    }

    fn write_config(&self) -> Result<(), TargetError> {
        let d = self.path.display();
        let ours = [
            ("listen_tls", "0".to_owned()),
            ("listen_tcp", "1".to_owned()),
            ("listen_addr", "\"127.0.0.1\"".to_owned()),
            ("tcp_port", format!("\"{}\"", self.port)),
            ("auth_tcp", "\"none\"".to_owned()),
            ("auth_unix_rw", "\"none\"".to_owned()),
            ("auth_unix_ro", "\"none\"".to_owned()),
            ("unix_sock_dir", format!("\"{d}/sock\"")),
            (
                "log_outputs",
                format!("\"{}:file:{d}/libvirtd.log\"", self.opts.log_level),
            ),
            (
                "max_client_requests",
                self.opts.max_client_requests.to_string(),
            ),
        ];
        // libvirt's config takes the first value of a key: extra lines replace ours.
        let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_owned();
        let extra: Vec<String> = self.opts.extra_config.iter().map(|l| key(l)).collect();
        let mut conf = format!(
            "# virtwire's private libvirtd: loopback only, no authentication, everything in {d}\n"
        );
        for (k, v) in ours {
            if !extra.iter().any(|e| e == k) {
                conf.push_str(&format!("{k} = {v}\n"));
            }
        }
        for line in &self.opts.extra_config {
            conf.push_str(line);
            conf.push('\n');
        }
        let p = self.config_path();
        fs::write(&p, conf).map_err(|e| TargetError::io(format!("write {}", p.display()), e))
    }

    fn spawn(&self) -> Result<(), TargetError> {
        let mut cmd = match (&self.timeout_tool, self.opts.lifetime) {
            (Some(t), Some(l)) => {
                let mut c = Command::new(t);
                c.args(["-k", "5"])
                    .arg(format!("{}", l.as_secs_f64().max(1.0)))
                    .arg(&self.binary);
                c
            }
            _ => Command::new(&self.binary),
        };
        let p = &self.path;
        cmd.arg("--listen")
            .arg("--config")
            .arg(self.config_path())
            .arg("--pid-file")
            .arg(p.join("libvirtd.pid"));
        // The config file says where to log; these would override it.
        for var in [
            "LIBVIRT_LOG_OUTPUTS",
            "LIBVIRT_LOG_FILTERS",
            "LIBVIRT_DEBUG",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("LIBVIRT_DRIVER_DIR", p.join("empty-driver-dir"))
            .env("HOME", p.join("home"))
            .env("XDG_RUNTIME_DIR", p.join("xdg"))
            .env("XDG_CONFIG_HOME", p.join("home/.config"))
            .env("XDG_CACHE_HOME", p.join("home/.cache"))
            .env("XDG_DATA_HOME", p.join("home/.local/share"));
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let out = append(&self.stderr_path())?;
        let err = out
            .try_clone()
            .map_err(|e| TargetError::io("duplicate the daemon's output file", e))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| TargetError::io(format!("start {}", self.binary.display()), e))?;
        let pgid = child.id();
        let reg = (!self.opts.keep).then(|| registry::lock().add(pgid, self.path.clone()));
        let mut running = Running {
            child,
            watchdog: None,
            reg,
            exited: None,
        };
        if !self.opts.keep {
            match spawn_watchdog(pgid, &self.path) {
                Ok(w) => {
                    if let Some(id) = running.reg {
                        registry::lock().set_watchdog(id, w.id());
                    }
                    running.watchdog = Some(w);
                }
                Err(e) => {
                    *lock(&self.running) = Some(running);
                    self.stop_running();
                    return Err(e);
                }
            }
        }
        *lock(&self.running) = Some(running);
        Ok(())
    }

    fn spawn_and_wait(&mut self) -> Result<(), TargetError> {
        self.spawn()?;
        let started = Instant::now();
        let deadline = started + self.opts.ready_timeout;
        let mut last;
        loop {
            if !self.is_alive() {
                let how = self
                    .exit_description()
                    .unwrap_or_else(|| "stopped".to_owned());
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "libvirtd ({}) {how} before it answered on {} (directory {})",
                        self.binary.display(),
                        self.uri,
                        self.path.display()
                    ),
                    log: self.failure_log(),
                });
            }
            match (self.probe)(&self.uri, &self.opts.probe_options) {
                Ok(()) => break,
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                self.stop_running();
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "libvirtd did not answer on {} within {} (the readiness timeout); the \
                         probe's last answer: {last}",
                        self.uri,
                        fmt_duration(self.opts.ready_timeout)
                    ),
                    log: self.failure_log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.daemon_pid = fs::read_to_string(self.path.join("libvirtd.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Ok(())
    }

    /// Deregister, stop the watchdog, SIGTERM the group, wait ≤ 5 s, SIGKILL, reap.
    fn stop_running(&self) -> Option<ExitStatus> {
        let mut g = lock(&self.running);
        let r = g.as_mut()?;
        if let Some(id) = r.reg.take() {
            registry::lock().remove(id);
        }
        kill_watchdog(r);
        if r.exited.is_some() {
            return r.exited;
        }
        let pg = Pid::from_raw(r.child.id() as i32);
        if let Ok(None) = r.child.try_wait() {
            let _ = killpg(pg, Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match r.child.try_wait() {
                Ok(Some(st)) => {
                    r.exited = Some(st);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = killpg(pg, Signal::SIGKILL);
                    r.exited = r.child.wait().ok();
                    break;
                }
                Err(_) => {
                    r.exited = Some(ExitStatus::from_raw(Signal::SIGKILL as i32));
                    break;
                }
            }
        }
        r.exited
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        if self.opts.keep {
            let alive = self.is_alive();
            if let Some(r) = lock(&self.running).as_mut() {
                if let Some(id) = r.reg.take() {
                    registry::lock().remove(id);
                }
                kill_watchdog(r);
            }
            if alive {
                if let Some(d) = self.dir.take() {
                    let _ = d.keep();
                }
                if !self.hint_given {
                    eprintln!("virtwire: {}", self.stop_hint());
                }
            }
            return;
        }
        self.stop_running();
    }
}

fn kill_watchdog(r: &mut Running) {
    if let Some(mut w) = r.watchdog.take() {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// `sh` blocked reading a pipe whose only writer is this process: when we die, however we die,
/// the read ends; it sends SIGTERM to the daemon's process group (`timeout` forwards it and
/// sends SIGKILL 5 s later), waits up to 10 s for the group to go and removes the directory.
fn spawn_watchdog(pgid: u32, dir: &Path) -> Result<Child, TargetError> {
    const SCRIPT: &str = r#"read -r _ignored
kill -s TERM -- "-$1" 2>/dev/null
i=0
while kill -s 0 -- "-$1" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
case "$2" in */virtwire-libvirtd.*) rm -rf -- "$2" ;; esac
"#;
    Command::new("/bin/sh")
        .args(["-c", SCRIPT, "virtwire-libvirtd-watchdog"])
        .arg(pgid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| TargetError::io("start the libvirtd watchdog (/bin/sh)", e))
}

/// Linux: a process that exists and is not a zombie.
/// The state field of `/proc/PID/stat` with its meaning (`T (stopped)`), when readable.
fn process_state(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    let what = match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        _ => "other",
    };
    Some(format!("{state} ({what})"))
}

fn process_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

fn describe_exit(st: ExitStatus, lifetime: Option<Duration>) -> String {
    if let Some(sig) = st.signal() {
        let name = Signal::try_from(sig).map_or_else(|_| "?".to_owned(), |s| s.as_str().to_owned());
        let core = if st.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        return format!("was killed by signal {sig} ({name}{core})");
    }
    match (st.code(), lifetime) {
        // coreutils timeout: 124 when the command timed out.
        (Some(124), Some(l)) => format!(
            "was stopped when its lifetime of {} ran out (LibvirtdOptions::lifetime)",
            fmt_duration(l)
        ),
        (Some(c), _) => format!("exited with status {c}"),
        (None, _) => format!("ended ({st})"),
    }
}

fn append(p: &Path) -> Result<File, TargetError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| TargetError::io(format!("open {}", p.display()), e))
}

/// The part of a file from `from`, at most its last `max` bytes, starting at a line when cut.
/// How much of one log line [`Libvirtd::log_since`] keeps: libvirtd echoes a hostile argument into its
/// error messages, so one line can be megabytes long and would push every other line of a case out
/// of the excerpt.
const LOG_LINE_KEEP: usize = 2048;

/// The log from `from` on, each line cut to `line_max` bytes (saying how much was cut), and then
/// the last `max` bytes of that, from a line start.
fn read_lines_capped(p: &Path, from: u64, max: usize, line_max: usize) -> String {
    use std::collections::VecDeque;
    use std::io::BufRead;
    let Ok(mut f) = File::open(p) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = if from > len { 0 } else { from };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    // Read at most what was there when asked (a daemon still writing cannot keep this going).
    let mut r = std::io::BufReader::new(f.take(len - from));
    let mut kept: VecDeque<String> = VecDeque::new();
    let (mut kept_bytes, mut dropped) = (0usize, 0u64);
    loop {
        let mut line = Vec::new();
        // One line at most `line_max` bytes in memory: the rest is skipped in pieces.
        let mut cut = 0u64;
        while let Ok(buf) = r.fill_buf() {
            if buf.is_empty() {
                break;
            }
            let (take, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = line_max.saturating_sub(line.len());
            line.extend_from_slice(&buf[..take.min(room)]);
            cut += (take.saturating_sub(room)) as u64;
            r.consume(take);
            if end {
                break;
            }
        }
        if line.is_empty() && cut == 0 {
            break;
        }
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if cut > 0 {
            let nl = text.ends_with('\n');
            if nl {
                text.pop();
            }
            text.push_str(&format!(" […{cut} more bytes of this line not shown]\n"));
        }
        kept_bytes += text.len();
        kept.push_back(text);
        while kept_bytes > max {
            let Some(old) = kept.pop_front() else { break };
            kept_bytes -= old.len();
            dropped += old.len() as u64;
        }
    }
    let mut out = String::with_capacity(kept_bytes + 64);
    if dropped > 0 {
        out.push_str(&format!("[… {dropped} earlier bytes not shown …]\n"));
    }
    for l in kept {
        out.push_str(&l);
    }
    out
}

fn read_range(p: &Path, from: u64, max: u64) -> String {
    let Ok(mut f) = File::open(p) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = if from > len { 0 } else { from };
    let start = from.max(len.saturating_sub(max));
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > from {
        if let Some(nl) = text.find('\n') {
            text.drain(..=nl);
        }
        text.insert_str(
            0,
            &format!("[… {} earlier bytes not shown …]\n", start - from),
        );
    }
    text
}

/// `binary --version`, if it answers within 5 s.
fn version(binary: &Path, env: &[(OsString, OsString)]) -> Option<String> {
    let mut child = Command::new(binary)
        .arg("--version")
        .envs(env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let line = out.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

fn world_path(w: &Path) -> Result<PathBuf, TargetError> {
    let abs = fs::canonicalize(w).map_err(|e| TargetError::World {
        path: w.to_owned(),
        message: e.to_string(),
    })?;
    if !abs.is_file() {
        return Err(TargetError::World {
            path: w.to_owned(),
            message: "not a file".into(),
        });
    }
    if abs.to_str().is_none() {
        return Err(TargetError::World {
            path: w.to_owned(),
            message: "its path is not UTF-8, so it cannot go into a URI".into(),
        });
    }
    Ok(abs)
}

/// A temp dir whose paths fit the config file and the 107-byte unix socket limit.
fn make_dir() -> Result<tempfile::TempDir, TargetError> {
    let usable = |p: &Path| {
        p.join(LONGEST_SOCKET).as_os_str().len() <= 107
            && p.to_str().is_some_and(|s| !s.contains(['"', '\\', '\n']))
    };
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("virtwire-libvirtd.");
        b
    };
    let dir = builder()
        .tempdir()
        .map_err(|e| TargetError::io("create a temporary directory for libvirtd", e))?;
    if usable(dir.path()) {
        return Ok(dir);
    }
    // TMPDIR is too deep (or oddly named) for socket paths.
    builder()
        .tempdir_in("/tmp")
        .map_err(|e| TargetError::io("create a temporary directory for libvirtd in /tmp", e))
}

fn world_or_default(world: Option<&Path>) -> String {
    world.map_or_else(
        || "/default".to_owned(),
        |w| escape_path(&w.to_string_lossy()),
    )
}

fn tcp_uri(port: u16, world: Option<&Path>) -> Result<TargetUri, TargetError> {
    TargetUri::parse(&format!(
        "test+tcp://127.0.0.1:{port}{}",
        world_or_default(world)
    ))
}

fn unix_uri(dir: &Path, sock: &str, world: Option<&Path>) -> Result<TargetUri, TargetError> {
    TargetUri::parse(&format!(
        "test+unix://{}?socket={}",
        world_or_default(world),
        escape_path(&dir.join("sock").join(sock).to_string_lossy())
    ))
}

fn admin_uri(dir: &Path) -> Result<TargetUri, TargetError> {
    TargetUri::parse(&format!(
        "libvirtd:///system?socket={}",
        escape_path(&dir.join("sock/libvirt-admin-sock").to_string_lossy())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multi-megabyte line (an echoed hostile argument) is cut, so the lines around it stay in
    /// the excerpt; the excerpt starts at the offset and is bounded.
    #[test]
    fn log_excerpts_cut_long_lines_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut text = String::from("before the mark\n");
        let mark = text.len() as u64;
        text.push_str("error : XML error: ");
        text.push_str(&"x".repeat(3 << 20));
        text.push('\n');
        text.push_str(
            "warning : virNetServerProgramSendError:174 : Failed to serialize remote error\n",
        );
        std::fs::write(&p, &text).unwrap();
        let got = read_lines_capped(&p, mark, 1 << 20, 2048);
        assert!(!got.contains("before the mark"), "{}", &got[..100]);
        assert!(got.starts_with("error : XML error: xxx"), "{}", &got[..100]);
        assert!(
            got.contains("more bytes of this line not shown]\n"),
            "{}",
            got.len()
        );
        assert!(
            got.ends_with("Failed to serialize remote error\n"),
            "{}",
            got.len()
        );
        assert!(got.len() < 4096, "{}", got.len());
        // Bounded in all: the earliest lines go first.
        let many: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &many).unwrap();
        let got = read_lines_capped(&p, 0, 4096, 2048);
        assert!(got.starts_with("[… "), "{}", &got[..40]);
        assert!(got.ends_with("line 99999\n"));
        assert!(got.len() < 4096 + 64);
    }
}
