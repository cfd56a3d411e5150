//! The client under test as a process: run once with a bounded time, its stdin closed, in a process
//! group of its own (killed as a group when it overstays: a client is never left running), its
//! output kept within a bound (the first [`HEAD`] and the last [`TAIL`] bytes of each stream: a Go
//! panic's first line comes before pages of goroutine frames, a Python exception's after them).
//! `GOTRACEBACK=crash` is set in its environment, so that a Go client's fatal panic ends in SIGABRT
//! (a crash by signal) after printing its `panic:` line.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How much of the start of each of the client's output streams is kept.
pub const HEAD: usize = 16 * 1024;
/// How much of the end of each of the client's output streams is kept.
pub const TAIL: usize = 16 * 1024;

/// How the client ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled {
        /// The signal's number.
        signal: i32,
        /// A core was dumped.
        core: bool,
    },
    /// Still running at the deadline: its process group was killed.
    Hung(Duration),
    /// It could not be started.
    NotStarted(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(c) => write!(f, "exit status {c}"),
            Ending::Signaled { signal, core } => write!(
                f,
                "killed by {}{}",
                signal_name(*signal),
                if *core { " (core dumped)" } else { "" }
            ),
            Ending::Hung(d) => write!(
                f,
                "still running after {:.1} s (hang); its process group was killed",
                d.as_secs_f64()
            ),
            Ending::NotStarted(e) => write!(f, "could not be started: {e}"),
        }
    }
}

/// `SIGSEGV` and so on, or the number.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

/// One run of the client.
#[derive(Clone, Debug)]
pub struct ClientRun {
    /// The command as run (`{uri}` replaced), shell-quoted.
    pub command: String,
    /// How it ended.
    pub ending: Ending,
    /// How long it ran.
    pub duration: Duration,
    /// Its standard output: the first [`HEAD`] and the last [`TAIL`] bytes (with a line saying how
    /// much was left out between them).
    pub stdout: String,
    /// How many bytes it wrote to standard output in all.
    pub stdout_bytes: u64,
    /// Its standard error, kept as [`ClientRun::stdout`] is.
    pub stderr: String,
}

#[cfg(test)]
impl ClientRun {
    /// A run that ended as `ending` having written `stderr` (for the verdict and crash tests).
    pub(crate) fn for_test(ending: Ending, stderr: &str) -> Self {
        ClientRun {
            command: "client".into(),
            ending,
            duration: Duration::ZERO,
            stdout: String::new(),
            stdout_bytes: 0,
            stderr: stderr.into(),
        }
    }
}

/// `argv` with every `{uri}` replaced by `uri`.
pub fn substitute(argv: &[String], uri: &str) -> Vec<String> {
    argv.iter().map(|a| a.replace("{uri}", uri)).collect()
}

/// `argv` as one shell-quoted line (for reports and reproductions).
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%{}".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What [`tail`] sends: the kept head, the kept tail, and how many bytes came in all.
type Kept = (Vec<u8>, Vec<u8>, u64);

/// Read `r` to its end, keeping the first [`HEAD`] and the last [`TAIL`] bytes (memory bounded by
/// their sum whatever the client writes); sends them with the total byte count.
fn tail(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Kept> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut keep = Vec::new();
        let mut total = 0u64;
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n as u64;
                    let mut b = &buf[..n];
                    if head.len() < HEAD {
                        let k = b.len().min(HEAD - head.len());
                        head.extend_from_slice(&b[..k]);
                        b = &b[k..];
                    }
                    keep.extend_from_slice(b);
                    if keep.len() > 2 * TAIL {
                        keep.drain(..keep.len() - TAIL);
                    }
                }
            }
        }
        if keep.len() > TAIL {
            keep.drain(..keep.len() - TAIL);
        }
        let _ = tx.send((head, keep, total));
    });
    rx
}

/// The kept head and tail of a stream as text, with a line where bytes were left out.
fn kept_text(head: &[u8], tail: &[u8], total: u64) -> String {
    let mut s = String::from_utf8_lossy(head).into_owned();
    let left_out = total.saturating_sub((head.len() + tail.len()) as u64);
    if left_out > 0 {
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&format!("[virtwire: {left_out} bytes not kept]\n"));
    }
    s.push_str(&String::from_utf8_lossy(tail));
    s
}

fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Run `argv` (already substituted) until it ends or `deadline`; at the deadline its whole process
/// group is killed. Standard input is closed (`/dev/null`).
pub fn run(argv: &[String], deadline: Instant) -> ClientRun {
    let command = shell_line(argv);
    let started = Instant::now();
    let not_started = |e: String| ClientRun {
        command: command.clone(),
        ending: Ending::NotStarted(e),
        duration: Duration::ZERO,
        stdout: String::new(),
        stdout_bytes: 0,
        stderr: String::new(),
    };
    let Some((prog, args)) = argv.split_first() else {
        return not_started("no command".into());
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GOTRACEBACK", "crash")
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return not_started(format!("{prog}: {e}")),
    };
    let out = child.stdout.take().map(tail);
    let err = child.stderr.take().map(tail);
    let ending = loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                break match (st.code(), st.signal()) {
                    (Some(c), _) => Ending::Exited(c),
                    (None, Some(s)) => Ending::Signaled {
                        signal: s,
                        core: st.core_dumped(),
                    },
                    (None, None) => Ending::Exited(-1),
                };
            }
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&child);
                let _ = child.wait();
                break Ending::Hung(started.elapsed());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(&child);
                let _ = child.wait();
                break Ending::NotStarted(format!("waiting for it failed: {e}"));
            }
        }
    };
    let duration = started.elapsed();
    // A child the client left behind may hold the pipes open: the group gets one kill, and the
    // output is taken with a bounded wait.
    kill_group(&child);
    let text = |rx: Option<mpsc::Receiver<Kept>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
            .map(|(h, t, n)| (kept_text(&h, &t, n), n))
            .unwrap_or_default()
    };
    let (stdout, stdout_bytes) = text(out);
    ClientRun {
        command,
        ending,
        duration,
        stdout,
        stdout_bytes,
        stderr: text(err).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, secs: f64) -> ClientRun {
        let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        run(&argv, Instant::now() + Duration::from_secs_f64(secs))
    }

    #[test]
    fn exit_status_signal_and_hang_are_told_apart() {
        let r = sh("echo out; echo err >&2; exit 3", 10.0);
        assert_eq!(r.ending, Ending::Exited(3));
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.stderr, "err\n");
        let r = sh("kill -SEGV $$", 10.0);
        assert!(
            matches!(r.ending, Ending::Signaled { signal: 11, .. }),
            "{:?}",
            r.ending
        );
        assert!(r.ending.to_string().starts_with("killed by SIGSEGV"));
        // The hung client and the child it started are both killed (the pipe closes).
        let r = sh("sleep 30 & sleep 30", 0.5);
        assert!(matches!(r.ending, Ending::Hung(_)), "{:?}", r.ending);
        assert!(r.duration < Duration::from_secs(5));
    }

    #[test]
    fn output_keeps_its_head_and_tail_within_a_bound_and_gotraceback_is_crash() {
        // A Go panic's line first, then far more frames than are kept, then the last line.
        let r = sh(
            "echo \"panic: boom $GOTRACEBACK\" >&2; i=0; while [ $i -lt 4000 ]; do echo 'goroutine 1 [running]: main.f()' >&2; i=$((i+1)); done; echo last >&2; exit 2",
            20.0,
        );
        assert_eq!(r.ending, Ending::Exited(2));
        assert!(
            r.stderr.starts_with("panic: boom crash\n"),
            "{}",
            &r.stderr[..80]
        );
        assert!(r.stderr.ends_with("last\n"));
        assert!(r.stderr.contains("bytes not kept]"));
        assert!(r.stderr.len() <= HEAD + TAIL + 64, "{}", r.stderr.len());
    }

    #[test]
    fn stdin_is_closed_and_uri_substituted() {
        let argv = substitute(
            &["sh".into(), "-c".into(), "cat; echo {uri}".into()],
            "test+tcp://127.0.0.1:1/default",
        );
        let r = run(&argv, Instant::now() + Duration::from_secs(10));
        assert_eq!(r.ending, Ending::Exited(0));
        assert_eq!(r.stdout, "test+tcp://127.0.0.1:1/default\n");
        assert_eq!(
            shell_line(&["virsh".into(), "list --all".into()]),
            "virsh 'list --all'"
        );
    }
}
