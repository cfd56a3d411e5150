//! What a case is, and what it can conclude.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::ctx::Ctx;

/// How binding the requirement a case checks is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// What libvirt's own peers rely on: breaking it breaks clients (or lets one harm the server).
    Must,
    /// What the protocol's definition asks but libvirt itself does not enforce (RFC 4506 strictness):
    /// a server that is lenient here gets "non-strict", a failure only with `--strict`.
    Should,
}

/// The check a case runs.
pub type CaseFn = dyn Fn(&mut Ctx<'_>) -> CaseResult + Send + Sync;

/// One conformance case: a stable ID, the requirement it checks, where that requirement comes from,
/// and the code that checks it against a target. Built-in cases are Rust functions; generated cases
/// (one per bounded field) and trace replays are closures over their data.
#[derive(Clone)]
pub struct Case {
    /// Stable, readable ID: `family/what` (`framing/length-below-4`). Never renumbered.
    pub id: Cow<'static, str>,
    /// The requirement, in one line.
    pub requirement: Cow<'static, str>,
    /// Where it comes from: a docs/protocol.md section, a libvirt file or commit.
    pub source: Cow<'static, str>,
    /// How binding it is.
    pub level: Level,
    /// Cases that must pass first; when one does not, this case is omitted.
    pub needs: Vec<Cow<'static, str>>,
    /// Runs alone, with no other case at the same time (it changes state other cases see, such as
    /// the test driver's shared world).
    pub exclusive: bool,
    /// The check.
    pub run: Arc<CaseFn>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Case {
    /// A case checking `requirement` (from `source`) with `run`.
    pub fn new(
        id: impl Into<Cow<'static, str>>,
        level: Level,
        requirement: impl Into<Cow<'static, str>>,
        source: impl Into<Cow<'static, str>>,
        run: impl Fn(&mut Ctx<'_>) -> CaseResult + Send + Sync + 'static,
    ) -> Self {
        Case {
            id: id.into(),
            requirement: requirement.into(),
            source: source.into(),
            level,
            needs: Vec::new(),
            exclusive: false,
            run: Arc::new(run),
        }
    }

    /// The same case, omitted unless `ids` pass first.
    pub fn needs(mut self, ids: &[&'static str]) -> Self {
        self.needs.extend(ids.iter().map(|i| Cow::Borrowed(*i)));
        self
    }

    /// The same case, run with no other case at the same time.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// The same case, run alone when `yes`.
    pub fn exclusive_if(mut self, yes: bool) -> Self {
        self.exclusive |= yes;
        self
    }

    /// The family: the ID up to its first `/`.
    pub fn family(&self) -> &str {
        self.id.split('/').next().unwrap_or(&self.id)
    }
}

/// A case's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The server did what the requirement says.
    Pass,
    /// The server broke the requirement.
    Fail,
    /// The server accepted what a strict peer rejects, as libvirt itself does (a SHOULD-level lenience).
    NonStrict,
    /// The case does not apply to this target (transport, program, driver).
    Unsupported,
    /// Not run: a case it needs did not pass.
    Omitted,
    /// The harness could not run the case (target unreachable, a bug of ours); says nothing about the server.
    Error,
}

impl Verdict {
    /// The verdict's name as reports show it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NonStrict => "non-strict",
            Verdict::Unsupported => "unsupported",
            Verdict::Omitted => "omitted",
            Verdict::Error => "error",
        }
    }

    /// Every verdict, in report order.
    pub const ALL: [Verdict; 6] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::NonStrict,
        Verdict::Unsupported,
        Verdict::Omitted,
        Verdict::Error,
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a case concluded: the verdict, what the requirement expected and what the server did
/// (decoded, in words), and notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// What the requirement expects.
    pub expected: String,
    /// What the server did.
    pub actual: String,
    /// What was observed, as facts a known-failing entry's signature is checked against (the runner
    /// adds the wire's and the server's own; a case adds what only it can see, such as a client's crash).
    pub facts: Vec<Fact>,
}

/// One thing observed during a case, in a form a known-failing signature can name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fact {
    /// A peer's connection was closed (end of file) with no answer to a call still waiting.
    Closed,
    /// A connection was reset.
    Reset,
    /// An error body came back (REPLY/ERROR or STREAM/ERROR): `virErrorNumber` and message.
    Code {
        /// `virErrorNumber`.
        code: i32,
        /// The message, if any.
        message: String,
    },
    /// A process (the server, or the client under test) was killed by this signal (`SIGSEGV`).
    Signal {
        /// The signal's name.
        name: String,
    },
    /// A process (the server, or the client under test) exited with this status.
    Exit {
        /// The status.
        status: i32,
    },
    /// A process crashed in its runtime (a Go panic, an uncaught Python exception, a Rust panic,
    /// a sanitizer report): the line that says so.
    Crash {
        /// The crash line as the process wrote it.
        line: String,
    },
    /// Nothing came back before the deadline.
    Hang,
}

impl Outcome {
    fn new(verdict: Verdict, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Outcome {
            verdict,
            expected: expected.into(),
            actual: actual.into(),
            facts: Vec::new(),
        }
    }
    /// The same outcome with one more observed fact.
    pub fn with_fact(mut self, fact: Fact) -> Self {
        self.facts.push(fact);
        self
    }
    /// The server did what was expected.
    pub fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(Verdict::Pass, expected, actual)
    }
    /// The server broke the requirement.
    pub fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(Verdict::Fail, expected, actual)
    }
    /// The server was lenient where a strict peer is not.
    pub fn non_strict(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(Verdict::NonStrict, expected, actual)
    }
    /// The case does not apply to this target, and why.
    pub fn unsupported(why: impl Into<String>) -> Self {
        Self::new(Verdict::Unsupported, "", why)
    }
    /// The harness could not run the case, and why.
    pub fn error(why: impl Into<String>) -> Self {
        Self::new(Verdict::Error, "", why)
    }
}

/// A case's result: `Err` is an outcome reached early (the `?` of a step that already decided, such
/// as a failed connect), `Ok` the outcome at the end. Both count the same.
pub type CaseResult = Result<Outcome, Outcome>;
