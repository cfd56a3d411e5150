//! The process-wide list of private daemons to stop if the process is interrupted, and the
//! SIGINT/SIGTERM/SIGHUP handler (ctrlc, on its own thread) that stops them and exits with 130.
//!
//! Invariant: a registered process group's leader has not been reaped, so its id cannot have been
//! reused; whoever reaps it (stop, `is_alive`) deregisters it first, under this lock.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::error::TargetError;

/// One daemon: its process group (the leader is our child) and its watchdog (also our child).
#[derive(Debug)]
pub(crate) struct Entry {
    id: u64,
    pgid: i32,
    watchdog: Option<i32>,
    /// Removed once the daemon is stopped (the process exits without running destructors).
    dir: PathBuf,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 1,
    entries: Vec::new(),
});

pub(crate) struct Registry {
    next: u64,
    entries: Vec<Entry>,
}

pub(crate) fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub(crate) fn add(&mut self, pgid: u32, dir: PathBuf) -> u64 {
        let id = self.next;
        self.next += 1;
        self.entries.push(Entry {
            id,
            pgid: pgid as i32,
            watchdog: None,
            dir,
        });
        id
    }

    pub(crate) fn set_watchdog(&mut self, id: u64, pid: u32) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.watchdog = Some(pid as i32);
        }
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.entries.retain(|e| e.id != id);
    }
}

/// Stop every registered private daemon: its watchdog is killed, its process group gets SIGTERM,
/// then SIGKILL after 5 s, and its directory is removed. For applications that handle signals themselves (see
/// [`super::LibvirtdOptions::stop_on_signals`]). Returns how many were stopped.
pub fn stop_all_daemons() -> usize {
    let mut reg = lock();
    let entries = std::mem::take(&mut reg.entries);
    for e in &entries {
        if let Some(w) = e.watchdog {
            let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(w), None);
        }
        let _ = killpg(Pid::from_raw(e.pgid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<i32> = entries.iter().map(|e| e.pgid).collect();
    while !left.is_empty() {
        left.retain(|&pg| {
            matches!(
                waitpid(Pid::from_raw(pg), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        if Instant::now() >= deadline {
            for &pg in &left {
                let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pg), None);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for e in &entries {
        let _ = std::fs::remove_dir_all(&e.dir);
    }
    // Held to the end: a concurrent stop must not reap (and free the ids of) these groups.
    drop(reg);
    entries.len()
}

/// Install the SIGINT/SIGTERM/SIGHUP handler once per process.
pub(crate) fn install_handler() -> Result<(), TargetError> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                let n = lock().entries.len();
                if n > 0 {
                    eprintln!("virtwire: interrupted: stopping {n} private libvirtd");
                }
                stop_all_daemons();
                std::process::exit(130);
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| TargetError::SignalHandler { message })
}
