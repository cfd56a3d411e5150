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

use std::fs;
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

/// A private virtlogd or virtlockd, stopped when dropped.
#[derive(Debug)]
pub struct Sidecar {
    kind: SidecarKind,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    child: Child,
    reg: Option<u64>,
    uri: TargetUri,
    socket: PathBuf,
    stopped: bool,
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
        P: Fn(&TargetUri, &ConnectOptions) -> Result<(), String>,
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
        let err = fs::File::create(path.join(format!("{name}.stderr")))
            .map_err(|e| TargetError::io("create the daemon's output file", e))?;
        let err2 = err
            .try_clone()
            .map_err(|e| TargetError::io("duplicate the daemon's output file", e))?;
        // As root: the listeners, bound here and handed over (socket activation).
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
        let mut cmd = Command::new(&timeout);
        cmd.args(["-k", "5"])
            .arg(format!("{}", lifetime.as_secs_f64().max(1.0)))
            .args(activate.iter().flatten())
            .arg(&binary)
            .arg("-f")
            .arg(&conf)
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
            .map_err(|e| TargetError::io(format!("start {}", binary.display()), e))?;
        let reg = Some(registry::lock().add(child.id(), path.clone()));
        let uri = TargetUri::parse(&format!(
            "test+unix:///default?socket={}",
            escape_path(&socket.to_string_lossy())
        ))?;
        let mut me = Sidecar {
            kind,
            socket: socket.clone(),
            dir: Some(dir),
            path,
            child,
            reg,
            uri,
            stopped: false,
        };
        let opts = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Some(Duration::from_secs(5)),
            ..ConnectOptions::default()
        };
        let deadline = Instant::now() + ready;
        loop {
            if let Ok(Some(st)) = me.child.try_wait() {
                let log = me.output();
                me.stopped = true;
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "{name} ended ({st}) before it answered on {socket:?}",
                        socket = me.socket()
                    ),
                    log,
                });
            }
            let last = match me.socket().exists() {
                true => match probe(&me.uri, &opts) {
                    Ok(()) => return Ok(me),
                    Err(e) => e,
                },
                false => "its socket does not exist yet".to_owned(),
            };
            if Instant::now() >= deadline {
                let log = me.output();
                return Err(TargetError::Libvirtd {
                    message: format!(
                        "{name} did not answer on {} within {}: {last}",
                        me.socket().display(),
                        fmt_duration(ready)
                    ),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(30));
        }
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
        self.child.id()
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
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(id) = self.reg.take() {
            registry::lock().remove(id);
        }
        if !self.stopped {
            let pg = Pid::from_raw(self.child.id() as i32);
            if let Ok(None) = self.child.try_wait() {
                let _ = killpg(pg, Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        let _ = killpg(pg, Signal::SIGKILL);
                        let _ = self.child.wait();
                        break;
                    }
                }
            }
        } else {
            let _ = self.child.wait();
        }
        drop(self.dir.take());
    }
}
