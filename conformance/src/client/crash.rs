//! Did the client crash? One classifier for every common runtime, over how the client ended and
//! what it wrote on stderr (bounded: [`process::HEAD`](super::process::HEAD) and
//! [`process::TAIL`](super::process::TAIL) bytes of it).
//!
//! A crash is any of:
//! - death by a signal (SIGSEGV, SIGABRT from `abort()`, …), or an exit status of 128 + SIGILL,
//!   SIGABRT, SIGBUS, SIGFPE or SIGSEGV (a shell wrapper reporting its child's death that way);
//! - Go: a line starting `panic: ` or `fatal error: ` with exit status 2 (the Go runtime's), or
//!   with a signal (`GOTRACEBACK=crash`, which the client runs with, ends a panic in SIGABRT);
//! - Python: an uncaught exception — a non-zero exit whose stderr ends with a traceback
//!   (`Traceback (most recent call last):` and then the exception's line, `Name: message`, last);
//! - Rust: exit status 101 with a `panicked at` line;
//! - Java: an `Exception in thread "…"` line, or the JVM's `A fatal error has been detected`, with a
//!   non-zero exit;
//! - sanitizers: `ERROR: AddressSanitizer:` (any `…Sanitizer`), UBSan's `FILE:LINE:COL: runtime
//!   error: `, or `SUMMARY: …Sanitizer`, whatever the exit status (UBSan goes on by default);
//! - a line matching one of the user's `--crash-pattern` expressions, whatever the exit status.
//!
//! The crash line (the line that says what happened: `panic: runtime error: makeslice: len out of
//! range`, not the goroutine frames after it) is what the verdict shows.

use regex::Regex;

use super::process::{ClientRun, Ending, signal_name};

/// What counts as a crash beyond the built-in runtimes, and which exit statuses are graceful.
#[derive(Clone, Debug, Default)]
pub struct CrashRules {
    /// `--crash-pattern`: a stderr line matching any of these is a crash.
    pub patterns: Vec<Regex>,
    /// `--error-exit`: the exit statuses the client uses for a graceful refusal. `None`: any
    /// non-zero exit that is not a crash is a refusal.
    pub error_exit: Option<Vec<i32>>,
}

impl CrashRules {
    /// Whether `code` is an exit status the client may end with gracefully, given the status it
    /// ended with against the real server (`expected`): 0, `expected`, and the `--error-exit`
    /// set (any status when there is none).
    pub fn graceful_exit(&self, code: i32, expected: i32) -> bool {
        code == 0
            || code == expected
            || self
                .error_exit
                .as_ref()
                .is_none_or(|set| set.contains(&code))
    }
}

/// A crash: in which runtime and the line that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// `Go panic`, `Python uncaught exception`, `signal`, …
    pub kind: String,
    /// The line that says what happened (the signal's name when nothing on stderr says more).
    pub line: String,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "crashed ({}): {}", self.kind, self.line)
    }
}

/// Cut a line at 300 characters.
fn cut(l: &str) -> String {
    let l = l.trim_end();
    match l.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &l[..i]),
        None => l.to_string(),
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("a built-in crash pattern compiles")
}

/// The crash line a runtime wrote on `stderr`, if any (whatever the exit), and its kind: the
/// patterns that need no exit status to be believed.
fn sanitizer(lines: &[&str]) -> Option<Crash> {
    let asan = re(r"ERROR: [A-Za-z]*Sanitizer");
    let ubsan = re(r"^\S+:\d+(:\d+)?: runtime error: ");
    let summary = re(r"^SUMMARY: [A-Za-z]*Sanitizer");
    lines
        .iter()
        .find(|l| asan.is_match(l) || ubsan.is_match(l.trim_start()))
        .or_else(|| lines.iter().find(|l| summary.is_match(l)))
        .map(|l| Crash {
            kind: "sanitizer report".into(),
            line: cut(l),
        })
}

fn go(lines: &[&str]) -> Option<Crash> {
    lines
        .iter()
        .find(|l| l.starts_with("panic: ") || l.starts_with("fatal error: "))
        .map(|l| Crash {
            kind: if l.starts_with("panic: ") {
                "Go panic".into()
            } else {
                "Go fatal error".into()
            },
            line: cut(l),
        })
}

fn rust(lines: &[&str]) -> Option<Crash> {
    let i = lines.iter().position(|l| l.contains("panicked at"))?;
    let mut line = cut(lines[i]);
    // Since Rust 1.73 the message is on the next line ("panicked at src/main.rs:3:5:\nmessage").
    if line.ends_with(':')
        && let Some(next) = lines.get(i + 1)
    {
        line = format!("{line} {}", cut(next));
    }
    Some(Crash {
        kind: "Rust panic".into(),
        line,
    })
}

fn python(lines: &[&str]) -> Option<Crash> {
    let tb = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last):"))?;
    let last = lines.last()?;
    let exception = re(r"^[A-Za-z_][A-Za-z0-9_.]*(: .*)?$");
    (lines.len() > tb + 1 && exception.is_match(last)).then(|| Crash {
        kind: "Python uncaught exception".into(),
        line: cut(last),
    })
}

fn java(lines: &[&str]) -> Option<Crash> {
    lines
        .iter()
        .find(|l| {
            l.starts_with("Exception in thread \"")
                || l.contains("A fatal error has been detected by the Java Runtime Environment")
        })
        .map(|l| Crash {
            kind: "Java uncaught exception".into(),
            line: cut(l),
        })
}

/// Signals whose number plus 128 a shell reports as its child's exit status after a crash.
const CRASH_SIGNALS: [i32; 5] = [4, 6, 7, 8, 11];

/// Whether `run` crashed, and how.
pub fn classify(run: &ClientRun, rules: &CrashRules) -> Option<Crash> {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let custom = || {
        lines.iter().find_map(|l| {
            rules
                .patterns
                .iter()
                .find(|p| p.is_match(l))
                .map(|p| Crash {
                    kind: format!("--crash-pattern /{}/", p.as_str()),
                    line: cut(l),
                })
        })
    };
    let said = sanitizer(&lines).or_else(custom);
    match &run.ending {
        Ending::Signaled { signal, core } => {
            let name = signal_name(*signal);
            let core = if *core { " (core dumped)" } else { "" };
            Some(
                said.or_else(|| go(&lines))
                    .or_else(|| rust(&lines))
                    .or_else(|| java(&lines))
                    .map(|c| Crash {
                        kind: format!("{}, killed by {name}{core}", c.kind),
                        line: c.line,
                    })
                    .unwrap_or_else(|| Crash {
                        kind: "signal".into(),
                        line: format!("killed by {name}{core}"),
                    }),
            )
        }
        Ending::Exited(code) => {
            let code = *code;
            said.or_else(|| (code == 2).then(|| go(&lines)).flatten())
                .or_else(|| (code == 101).then(|| rust(&lines)).flatten())
                .or_else(|| (code != 0).then(|| python(&lines)).flatten())
                .or_else(|| (code != 0).then(|| java(&lines)).flatten())
                .or_else(|| {
                    CRASH_SIGNALS
                        .iter()
                        .find(|s| code == 128 + **s)
                        .map(|s| Crash {
                            kind: "exit status 128 + signal".into(),
                            line: format!(
                                "exit status {code}: a shell's report of its child killed by {}",
                                signal_name(*s)
                            ),
                        })
                })
        }
        Ending::Hung(_) | Ending::NotStarted(_) => said,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ending: Ending, stderr: &str) -> ClientRun {
        ClientRun::for_test(ending, stderr)
    }

    fn kind(ending: Ending, stderr: &str) -> Option<String> {
        classify(&run(ending, stderr), &CrashRules::default()).map(|c| c.to_string())
    }

    #[test]
    fn every_runtime_s_crash_is_told_and_a_graceful_error_is_not() {
        let go = "panic: runtime error: makeslice: len out of range\n\ngoroutine 1 [running]:\nmain.read(...)\n\t/src/main.go:42 +0x1d\nexit status 2\n";
        assert_eq!(
            kind(Ending::Exited(2), go).as_deref(),
            Some("crashed (Go panic): panic: runtime error: makeslice: len out of range")
        );
        assert_eq!(
            kind(
                Ending::Exited(2),
                "fatal error: runtime: out of memory\n\ngoroutine 7 [running]:\n"
            )
            .as_deref(),
            Some("crashed (Go fatal error): fatal error: runtime: out of memory")
        );
        // GOTRACEBACK=crash: the same panic ends in SIGABRT; the line is still the panic's.
        assert_eq!(
            kind(
                Ending::Signaled {
                    signal: 6,
                    core: false
                },
                go
            )
            .as_deref(),
            Some(
                "crashed (Go panic, killed by SIGABRT): panic: runtime error: makeslice: len out of range"
            )
        );
        let py = "Traceback (most recent call last):\n  File \"c.py\", line 3, in <module>\n    main()\nValueError: bad length 20\n";
        assert_eq!(
            kind(Ending::Exited(1), py).as_deref(),
            Some("crashed (Python uncaught exception): ValueError: bad length 20")
        );
        let rust = "thread 'main' panicked at src/main.rs:10:5:\nattempt to subtract with overflow\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            kind(Ending::Exited(101), rust).as_deref(),
            Some(
                "crashed (Rust panic): thread 'main' panicked at src/main.rs:10:5: attempt to subtract with overflow"
            )
        );
        assert!(
            kind(
                Ending::Exited(1),
                "Exception in thread \"main\" java.lang.NegativeArraySizeException: -1\n\tat X.y(X.java:3)\n"
            )
            .is_some_and(|k| k.contains("NegativeArraySizeException"))
        );
        assert!(
            kind(
                Ending::Exited(0),
                "x.c:12:7: runtime error: signed integer overflow\n"
            )
            .is_some_and(|k| k.starts_with("crashed (sanitizer report)"))
        );
        assert!(
            kind(
                Ending::Exited(1),
                "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address\n"
            )
            .is_some()
        );
        assert_eq!(
            kind(
                Ending::Signaled {
                    signal: 11,
                    core: true
                },
                ""
            )
            .as_deref(),
            Some("crashed (signal): killed by SIGSEGV (core dumped)")
        );
        assert!(kind(Ending::Exited(139), "").is_some_and(|k| k.contains("SIGSEGV")));
        // Graceful errors are not crashes: an error line and exit 1; exit 2 without a panic line;
        // a traceback a program printed and went on from (its last line is not the exception).
        assert_eq!(kind(Ending::Exited(1), "error: failed to connect\n"), None);
        assert_eq!(kind(Ending::Exited(2), "usage: client URI\n"), None);
        assert_eq!(
            kind(
                Ending::Exited(1),
                "Traceback (most recent call last):\n  File \"c.py\"\nOSError: x\n  retrying...\n"
            ),
            None
        );
        assert_eq!(kind(Ending::Exited(0), "panic: not really\n"), None);
    }

    #[test]
    fn crash_patterns_and_graceful_exits_are_the_user_s() {
        let rules = CrashRules {
            patterns: vec![Regex::new("^FATAL ").unwrap()],
            error_exit: Some(vec![1]),
        };
        let c = classify(&run(Ending::Exited(0), "ok\nFATAL decoder state\n"), &rules).unwrap();
        assert_eq!(c.kind, "--crash-pattern /^FATAL /");
        assert_eq!(c.line, "FATAL decoder state");
        assert!(rules.graceful_exit(1, 0));
        assert!(rules.graceful_exit(0, 3));
        assert!(rules.graceful_exit(3, 3));
        assert!(!rules.graceful_exit(4, 0));
        assert!(CrashRules::default().graceful_exit(4, 0));
    }
}
