//! The trace format (`virtwire-trace 1`, docs/traces.md): one libvirt connection as text, readable
//! and diffable. One message per entry, both directions: a symbolic header line (`> CALL
//! remote.CONNECT_OPEN serial=1`, `< REPLY remote.CONNECT_OPEN serial=1 status=OK`), the body as
//! the JSON value tree `virtwire decode --format json` prints, and the raw frame in hex beside it
//! (what a replay sends). Client steps send; server steps are expectations, matched by their header
//! and body under per-field [rules](Rule) (`equal` by default; `any`, `present`, `absent`, `range`,
//! `regex`), addressed by [paths](Path) into the message JSON. `silence N ms`, `may-close` and
//! `expect-close` are steps of their own.
//!
//! This module handles text and JSON only: it never reads libvirt bytes. Turning frames into JSON
//! and rewriting serials is the wire layer's job (`crate::wire::frames`).
//!
//! - [`mod@parse`]: text → [`Trace`], with `file:line: message` errors; never panics.
//! - [`mod@write`]: [`Trace`] → text; `parse(write(t)) == t`.
//! - [`rules`]: rules and the matcher that compares an expected message with what came.
//! - [`path`]: paths into message JSON.
//! - [`header`]: the header line.
//! - [`import`]: a captured connection (frames and their JSON from the wire layer) → a trace.

use std::fmt;

pub mod header;
pub mod import;
pub mod parse;
pub mod path;
pub mod rules;
pub mod write;

pub use header::{HeaderLine, Sym};
pub use parse::{ParseError, parse};
pub use path::{Path, Seg};
pub use rules::{Mismatch, Num, Rule, RuleKind};
pub use write::write;

/// The format's name, the first word of every trace.
pub const MAGIC: &str = "virtwire-trace";
/// The format's version, the second word of every trace.
pub const VERSION: u32 = 1;
/// The file name extension of traces.
pub const EXTENSION: &str = "trace";

/// A line number in the trace's text (1-based), kept for messages and learning; 0 when the step was
/// built in memory. Never part of equality: a trace equals its own round trip through text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Line(pub usize);

impl PartialEq for Line {
    fn eq(&self, _: &Line) -> bool {
        true
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One connection's traffic, as steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The trace's name: its file name without `.trace` (not written in the text).
    pub name: String,
    /// Where it came from (`source …` lines: capture, connection, addresses), in order.
    pub source: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A comment line (`# …` at the start of a line), kept so that edits survive rewriting.
    Comment(String),
    /// `> …`: the client sends this message (its frame, serial rewritten).
    Send(Message),
    /// `< …`: the server must send a message like this one.
    Expect(Message),
    /// `> raw`: the client sends these bytes exactly as they are (malformed traffic).
    Raw(Raw),
    /// `silence N ms`: the server sends nothing for that long (keepalives and async messages aside).
    Silence {
        /// How long, in milliseconds.
        ms: u64,
        /// Where it is in the text.
        line: Line,
    },
    /// `may-close`: from here on the server may close the connection; if it does, the replay ends
    /// there and passes.
    MayClose {
        /// Where it is in the text.
        line: Line,
    },
    /// `expect-close`: the server closes (or resets) the connection now, sending nothing more.
    ExpectClose {
        /// Where it is in the text.
        line: Line,
    },
}

impl Step {
    /// The step's line in the text (0 for comments and steps built in memory).
    pub fn line(&self) -> Line {
        match self {
            Step::Comment(_) => Line(0),
            Step::Send(m) | Step::Expect(m) => m.line,
            Step::Raw(r) => r.line,
            Step::Silence { line, .. } | Step::MayClose { line } | Step::ExpectClose { line } => {
                *line
            }
        }
    }
}

/// A message step: its header line, notes, rules, body and frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The header line, by name.
    pub header: HeaderLine,
    /// Server messages only: `async` on the header line. The message may arrive at any time during
    /// the replay (events); it is matched out of order and only needs to have arrived by the end.
    pub is_async: bool,
    /// Comment lines inside the step (indented `# …`), e.g. why a body did not decode.
    pub notes: Vec<String>,
    /// Rules for fields of the message JSON (server messages; ignored on client messages).
    pub rules: Vec<Rule>,
    /// The body as JSON (`decode --format json`'s `body`). On a server message, `None` means the
    /// body is not compared. On a client message it is for readers: the frame is what is sent.
    pub body: Option<serde_json::Value>,
    /// The frame, length word included. Required on client messages (it is what is sent); on
    /// server messages it shows what was recorded and is not compared.
    pub frame: Option<Vec<u8>>,
    /// The header line's place in the text.
    pub line: Line,
}

/// `> raw`: bytes sent exactly as they are, with no serial rewriting.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw {
    /// Comment lines inside the step.
    pub notes: Vec<String>,
    /// The bytes.
    pub frame: Vec<u8>,
    /// Where it is in the text.
    pub line: Line,
}

impl Trace {
    /// Counts of (client messages and raw sends, server messages).
    pub fn counts(&self) -> (usize, usize) {
        self.steps.iter().fold((0, 0), |(s, e), st| match st {
            Step::Send(_) | Step::Raw(_) => (s + 1, e),
            Step::Expect(_) => (s, e + 1),
            _ => (s, e),
        })
    }

    /// The trace's name from a file name or path: the last component without `.trace`.
    pub fn name_from(origin: &str) -> String {
        let base = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
        base.strip_suffix(".trace").unwrap_or(base).to_string()
    }
}
