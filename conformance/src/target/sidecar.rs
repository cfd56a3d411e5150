//! Private virtlogd and virtlockd (the log and lock programs' servers; they ship in the libvirt
//! daemon package beside libvirtd).
//!
//! Neither has a config key for its socket: a privileged one (euid 0) listens on
//! `/run/libvirt/virtlogd-sock` (`virtlockd-sock`, and the `-admin-sock`s), the system's own,
//! which must not be touched; an unprivileged one listens in `$XDG_RUNTIME_DIR/libvirt/` but
//! refuses clients of another uid ("Disallowing client … with uid …"). So:
//!
//! - as root, the daemon gets its sockets by **systemd socket activation**, which both support:
//!   `systemd-socket-activate -l DIR/NAME-sock -l DIR/NAME-admin-sock
//!   --fdname=NAME.socket:NAME-admin.socket NAME …` binds the two listeners in a private temp dir
//!   and, on the first connection (the readiness probe's), execs the daemon with them as fds 3
//!   and 4 (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID`); the daemon then creates no socket of
//!   its own. (virtwire forbids `unsafe`, so it cannot place fds in a child itself.)
//! - as another user, it runs unprivileged with `XDG_RUNTIME_DIR` in the temp dir (same uid as
//!   virtwire, so it accepts us).
//!
//! Its config (`-f`) sends its log to the temp dir, its pid file (`-p`) too. Like the private
//! libvirtd: a child in its own process group, its run time bounded by coreutils
//! `timeout -k 5 SECS` (it dies even if virtwire is SIGKILLed), registered with the signal
//! handler, ready when the caller's probe succeeds on its socket, and stopped by its process
//! group id (SIGTERM, then SIGKILL after 5 s) on drop.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, Uid};

use super::connect::ConnectOptions;
use super::error::{TargetError, fmt_duration};
use super::registry;
use super::uri::{TargetUri, escape_path};

/// Which daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarKind {
    /// virtlogd: the log program (`virLogManagerProtocol`).
    Virtlogd,
    /// virtlockd: the lock program (`virLockSpaceProtocol`).
    Virtlockd,
}

impl SidecarKind {
    /// The binary's name (also its socket's prefix).
    pub fn name(self) -> &'static str {
        match self {
            SidecarKind::Virtlogd => "virtlogd",
            SidecarKind::Virtlockd => "virtlockd",
        }
    }
}

/// The readiness probe a sidecar keeps for its restarts.
type SidecarProbe = dyn Fn(&TargetUri, &ConnectOptions) -> Result<(), String> + Send + Sync;

/// A private virtlogd or virtlockd, stopped when dropped.
pub struct Sidecar {
    kind: SidecarKind,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    /// `timeout` (leading the daemon's process group); `None` before the first spawn.
    child: Option<Child>,
    reg: Option<u64>,
    uri: TargetUri,
    socket: PathBuf,
    /// Reaped (its status kept), or never to be waited for again.
    exited: Option<std::process::ExitStatus>,
    binary: PathBuf,
    timeout: PathBuf,
    /// `systemd-socket-activate …` before the binary, as root.
    activate: Option<Vec<std::ffi::OsString>>,
    lifetime: Duration,
    ready: Duration,
    probe: Box<SidecarProbe>,
    restarts: u32,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("kind", &self.kind)
            .field("socket", &self.socket)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

fn find(name: &str) -> Option<PathBuf> {
    let exec = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .chain([Path::new("/usr/sbin").join(name)])
        .find(|p| exec(p))
}

impl Sidecar {
    /// Start `kind` in a private directory, bounded to `lifetime`, and wait (up to `ready`) until
    /// `probe` succeeds on its socket.
    pub fn start<P>(
        kind: SidecarKind,
        lifetime: Duration,
        ready: Duration,
        probe: P,
    ) -> Result<Sidecar, TargetError>
    where
        P: Fn(&TargetUri, &ConnectOptions) -> Result<(), String> + Send + Sync + 'static,
    {
        let name = kind.name();
        let binary = find(name).ok_or_else(|| TargetError::Libvirtd {
            message: format!(
                "{name} not found on PATH or in /usr/sbin (it ships with libvirt's daemons: \
                 scripts/setup.sh installs it)"
            ),
            log: String::new(),
        })?;
        let timeout = find("timeout").ok_or(TargetError::MissingTool {
            tool: "timeout",
            why: "coreutils timeout bounds the private daemons' run time",
        })?;
        registry::install_handler()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("virtwire-{name}."))
            .tempdir_in("/tmp")
            .map_err(|e| TargetError::io(format!("create a temporary directory for {name}"), e))?;
        let path = dir.path().to_owned();
        for sub in ["xdg", "home"] {
            let d = path.join(sub);
            fs::create_dir_all(&d)
                .map_err(|e| TargetError::io(format!("create {}", d.display()), e))?;
        }
        let _ = fs::set_permissions(path.join("xdg"), fs::Permissions::from_mode(0o700));
        let root = Uid::effective().is_root();
        let conf = path.join(format!("{name}.conf"));
        fs::write(
            &conf,
            format!(
                "# virtwire's private {name}: sockets and log in {d}\nlog_outputs = \"3:file:{d}/{name}.log\"\n",
                d = path.display()
            ),
        )
        .map_err(|e| TargetError::io(format!("write {}", conf.display()), e))?;
        let socket = if root {
            path.join(format!("{name}-sock"))
        } else {
            path.join("xdg/libvirt").join(format!("{name}-sock"))
        };
        let activate = if root {
            let tool = find("systemd-socket-activate").ok_or(TargetError::MissingTool {
                tool: "systemd-socket-activate",
                why: "a root virtwire hands the private virtlogd/virtlockd their sockets by socket \
                      activation (package systemd)",
            })?;
            Some(vec![
                tool.into_os_string(),
                "-l".into(),
                socket.clone().into_os_string(),
                "-l".into(),
                path.join(format!("{name}-admin-sock")).into_os_string(),
                format!("--fdname={name}.socket:{name}-admin.socket").into(),
            ])
        } else {
            None
        };
        let uri = TargetUri::parse(&format!(
            "test+unix:///default?socket={}",
            escape_path(&socket.to_string_lossy())
        ))?;
        let mut me = Sidecar {
            kind,
            dir: Some(dir),
            path,
            child: None,
            reg: None,
            uri,
            socket,
            exited: None,
            binary,
            timeout,
            activate,
            lifetime,
            ready,
            probe: Box::new(probe),
            restarts: 0,
        };
        me.spawn_and_wait()?;
        Ok(me)
    }

    fn spawn_and_wait(&mut self) -> Result<(), TargetError> {
        let name = self.kind.name();
        let path = self.path.clone();
        // A socket file left by the previous run (socket activation binds it again).
        if self.activate.is_some() {
            let _ = fs::remove_file(&self.socket);
            let _ = fs::remove_file(path.join(format!("{name}-admin-sock")));
        }
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join(format!("{name}.stderr")))
            .map_err(|e| TargetError::io("open the daemon's output file", e))?;
        let err2 = err
            .try_clone()
            .map_err(|e| TargetError::io("duplicate the daemon's output file", e))?;
        let mut cmd = Command::new(&self.timeout);
        cmd.args(["-k", "5"])
            .arg(format!("{}", self.lifetime.as_secs_f64().max(1.0)))
            .args(self.activate.iter().flatten())
            .arg(&self.binary)
            .arg("-f")
            .arg(path.join(format!("{name}.conf")))
            .arg("-p")
            .arg(path.join(format!("{name}.pid")))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", path.join("home"))
            .env("XDG_RUNTIME_DIR", path.join("xdg"))
            .env("XDG_CONFIG_HOME", path.join("home/.config"))
            .env("XDG_CACHE_HOME", path.join("home/.cache"))
            .env("XDG_DATA_HOME", path.join("home/.local/share"))
            .current_dir(&path)
            .stdin(Stdio::null())
            .stdout(err)
            .stderr(err2)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| TargetError::io(format!("start {}", self.binary.display()), e))?;
        self.exited = None;
        self.reg = Some(registry::lock().add(child.id(), path.clone()));
        self.child = Some(child);
        let opts = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Some(Duration::from_secs(5)),
            ..ConnectOptions::default()
        };
        let deadline = Instant::now() + self.ready;
        loop {
            if !self.is_alive() {
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "{name} {} before it answered on {}",
                        self.exit_description().unwrap_or_else(|| "ended".into()),
                        self.socket.display()
                    ),
                    log: self.output(),
                });
            }
            let last = match self.socket.exists() {
                true => match (self.probe)(&self.uri, &opts) {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                },
                false => "its socket does not exist yet".to_owned(),
            };
            if Instant::now() >= deadline {
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "{name} did not answer on {} within {}: {last}",
                        self.socket.display(),
                        fmt_duration(self.ready)
                    ),
                    log: self.output(),
                });
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Whether the daemon runs; one that ended is reaped here (see [`Sidecar::exit_description`]).
    pub fn is_alive(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        let mut reg = registry::lock();
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(st)) => {
                self.exited = Some(st);
                if let Some(id) = self.reg.take() {
                    reg.remove(id);
                }
                false
            }
            Err(_) => {
                self.exited = Some(std::os::unix::process::ExitStatusExt::from_raw(9));
                if let Some(id) = self.reg.take() {
                    reg.remove(id);
                }
                false
            }
        }
    }

    /// Its exit status, once it ended (through `timeout`: a signal N shows as status 128 + N).
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.exited
    }

    /// How it ended, once it did: `exited with status 1`, `was killed by signal 11 (SIGSEGV)`
    /// (through `timeout`, which reports a signal as 128 + N).
    pub fn exit_description(&self) -> Option<String> {
        let st = self.exited?;
        use std::os::unix::process::ExitStatusExt;
        let sig = st
            .signal()
            .or_else(|| st.code().filter(|c| *c > 128 && *c < 160).map(|c| c - 128));
        Some(match (sig, st.code()) {
            (Some(n), _) => {
                let name = nix::sys::signal::Signal::try_from(n)
                    .map_or_else(|_| "?".to_owned(), |s| s.as_str().to_owned());
                format!("was killed by signal {n} ({name})")
            }
            (None, Some(124)) => format!(
                "was stopped when its lifetime of {} ran out",
                fmt_duration(self.lifetime)
            ),
            (None, Some(c)) => format!("exited with status {c}"),
            (None, None) => format!("ended ({st})"),
        })
    }

    /// Start it again in the same directory, on the same socket, and wait until it answers.
    pub fn restart(&mut self) -> Result<(), TargetError> {
        self.stop();
        self.restarts += 1;
        self.spawn_and_wait()
    }

    /// How many times [`Sidecar::restart`] ran.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Which daemon.
    pub fn kind(&self) -> SidecarKind {
        self.kind
    }

    /// A unix URI whose `socket=` is the daemon's socket (only the socket matters to connect).
    pub fn uri(&self) -> &TargetUri {
        &self.uri
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.socket.clone()
    }

    /// The PID of our child (`timeout`, leading the daemon's process group).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The daemon's directory.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Its log and standard error (the last 4 KiB of each).
    pub fn output(&self) -> String {
        let tail = |p: PathBuf| {
            let b = fs::read(&p).unwrap_or_default();
            let from = b.len().saturating_sub(4096);
            String::from_utf8_lossy(&b[from..]).into_owned()
        };
        let name = self.kind.name();
        format!(
            "{}{}",
            tail(self.path.join(format!("{name}.log"))),
            tail(self.path.join(format!("{name}.stderr")))
        )
    }

    /// SIGTERM to its process group, SIGKILL after 5 s; reaped.
    fn stop(&mut self) {
        if let Some(id) = self.reg.take() {
            registry::lock().remove(id);
        }
        if self.exited.is_some() {
            return;
        }
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let pg = Pid::from_raw(child.id() as i32);
        if let Ok(None) = child.try_wait() {
            let _ = killpg(pg, Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.exited = Some(st);
                    break;
                }
                Err(_) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = killpg(pg, Signal::SIGKILL);
                    self.exited = child.wait().ok();
                    break;
                }
            }
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
        drop(self.dir.take());
    }
}
