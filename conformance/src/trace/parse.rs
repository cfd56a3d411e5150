//! Text → [`Trace`]. Errors say `file:line: message`; nothing in a trace, however broken, makes the
//! parser panic (a property test feeds it random and mutated traces).
//!
//! The grammar (docs/traces.md has the whole story):
//!
//! ```text
//! virtwire-trace 1                      first line: the format and its version
//! source TEXT                           where the trace came from (before the first step)
//! # TEXT                                a comment (at the start of a line)
//! > TYPE PROG.PROC serial=N [status=S] [vers=V]       a client message
//! < TYPE PROG.PROC serial=N [status=S] [vers=V] [async]   a server message
//! > raw                                 client bytes sent exactly as they are
//!   # TEXT                              a note of the step (indented comment)
//!   rule PATH KIND [ARG]                a rule (server messages)
//!   body JSON                           the body; JSON may go on over deeper-indented lines
//!   frame HEX                           the frame; hex may go on over the following lines
//! silence N ms | may-close | expect-close
//! ```

use std::fmt;

use super::header::{HeaderLine, Sym, parse_int};
use super::rules::Rule;
use super::{Line, MAGIC, Message, Raw, Step, Trace, VERSION};

/// What is wrong with a trace, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file (or label) the text came from.
    pub file: String,
    /// The line (1-based); 0 when the problem is not on a line (the file cannot be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Read and parse the trace in `path` (its name is the file name without `.trace`).
pub fn load(path: &std::path::Path) -> Result<Trace, ParseError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        file: label.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &label)
}

/// An attribute that may go on over the following lines.
enum Open {
    None,
    Body { line: usize, text: String },
    Frame { parts: Vec<(usize, String)> },
}

/// The message step being read.
enum Current {
    None,
    Message { send: bool, msg: Box<Message> },
    Raw(Raw),
}

struct Parser<'a> {
    file: &'a str,
    trace: Trace,
    current: Current,
    open: Open,
    seen_body: bool,
    seen_frame: bool,
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// Close the open multi-line attribute: parse its JSON or hex into the current step.
    fn close_attr(&mut self) -> Result<(), ParseError> {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => Ok(()),
            Open::Body { line, text } => {
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    // serde's line is within the JSON text, which starts on `line`.
                    let at = line + e.line().saturating_sub(1);
                    self.err(at, format!("bad body JSON: {e}"))
                })?;
                if let Current::Message { msg, .. } = &mut self.current {
                    msg.body = Some(v);
                }
                Ok(())
            }
            Open::Frame { parts } => {
                let mut bytes = Vec::new();
                let mut half: Option<(u8, usize)> = None;
                for (line, text) in &parts {
                    for c in text.bytes() {
                        if c.is_ascii_whitespace() {
                            continue;
                        }
                        let Some(v) = hex_value(c) else {
                            return Err(self.err(
                                *line,
                                format!("bad frame hex: {:?} is not a hex digit", char::from(c)),
                            ));
                        };
                        half = match half {
                            None => Some((v, *line)),
                            Some((hi, _)) => {
                                bytes.push(hi << 4 | v);
                                None
                            }
                        };
                    }
                }
                if let Some((_, line)) = half {
                    return Err(self.err(line, "bad frame hex: an odd number of hex digits"));
                }
                if bytes.is_empty() {
                    let line = parts.first().map_or(0, |p| p.0);
                    return Err(self.err(line, "empty frame"));
                }
                match &mut self.current {
                    Current::Message { msg, .. } => msg.frame = Some(bytes),
                    Current::Raw(r) => r.frame = bytes,
                    Current::None => {}
                }
                Ok(())
            }
        }
    }

    /// Finish the current message step: check it is complete and add it.
    fn finish_step(&mut self) -> Result<(), ParseError> {
        self.close_attr()?;
        match std::mem::replace(&mut self.current, Current::None) {
            Current::None => {}
            Current::Message { send, msg } => {
                if send && msg.frame.is_none() {
                    return Err(self.err(
                        msg.line.0,
                        "a client message (>) needs its frame (`frame HEX`): it is what is sent",
                    ));
                }
                self.trace.steps.push(if send {
                    Step::Send(*msg)
                } else {
                    Step::Expect(*msg)
                });
            }
            Current::Raw(r) => {
                if r.frame.is_empty() {
                    return Err(self.err(r.line.0, "`> raw` needs its bytes (`frame HEX`)"));
                }
                self.trace.steps.push(Step::Raw(r));
            }
        }
        self.seen_body = false;
        self.seen_frame = false;
        Ok(())
    }

    fn header_line(&self, n: usize, rest: &str, send: bool) -> Result<Message, ParseError> {
        let mut toks = rest.split_whitespace();
        let ty = toks
            .next()
            .ok_or_else(|| self.err(n, "a message line is `TYPE PROG.PROC serial=N …`"))?;
        let msg_type =
            Sym::parse(ty).ok_or_else(|| self.err(n, format!("bad message type {ty:?}")))?;
        let pp = toks
            .next()
            .ok_or_else(|| self.err(n, "missing PROG.PROC after the message type"))?;
        let (p, q) = pp
            .split_once('.')
            .ok_or_else(|| self.err(n, format!("{pp:?} is not PROG.PROC")))?;
        let prog = Sym::parse(p).ok_or_else(|| self.err(n, format!("bad program {p:?}")))?;
        let procedure = Sym::parse(q).ok_or_else(|| self.err(n, format!("bad procedure {q:?}")))?;
        let (mut serial, mut status, mut vers, mut is_async) = (None, None, None, false);
        for tok in toks {
            if tok == "async" {
                if send {
                    return Err(self.err(n, "`async` applies to server messages (<) only"));
                }
                if is_async {
                    return Err(self.err(n, "`async` given twice"));
                }
                is_async = true;
                continue;
            }
            let (k, v) = tok
                .split_once('=')
                .ok_or_else(|| self.err(n, format!("unexpected {tok:?} (KEY=VALUE or async)")))?;
            let dup = |name: &str| self.err(n, format!("{name} given twice"));
            let u32_of = |v: &str| {
                parse_int(v)
                    .and_then(|x| u32::try_from(x).ok())
                    .ok_or_else(|| {
                        self.err(n, format!("{k}={v}: not a number from 0 to 4294967295"))
                    })
            };
            match k {
                "serial" if serial.is_some() => return Err(dup(k)),
                "serial" => serial = Some(u32_of(v)?),
                "vers" if vers.is_some() => return Err(dup(k)),
                "vers" => vers = Some(u32_of(v)?),
                "status" if status.is_some() => return Err(dup(k)),
                "status" => {
                    status = Some(
                        Sym::parse(v).ok_or_else(|| self.err(n, format!("bad status {v:?}")))?,
                    )
                }
                _ => {
                    return Err(self.err(
                        n,
                        format!("unknown header field {k:?} (serial, status, vers)"),
                    ));
                }
            }
        }
        let serial = serial.ok_or_else(|| self.err(n, "missing serial=N"))?;
        Ok(Message {
            header: HeaderLine {
                msg_type,
                prog,
                procedure,
                vers: vers.unwrap_or(1),
                serial,
                status: status.unwrap_or(Sym::Name("OK".into())),
            },
            is_async,
            notes: Vec::new(),
            rules: Vec::new(),
            body: None,
            frame: None,
            line: Line(n),
        })
    }

    /// An indented line: an attribute of the current step, or the continuation of one.
    fn attribute(&mut self, n: usize, line: &str) -> Result<(), ParseError> {
        let t = line.trim_start();
        let keyword = |k: &str| {
            t.strip_prefix(k)
                .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
                .map(str::trim_start)
        };
        let is_attr = t.starts_with('#')
            || keyword("body").is_some()
            || keyword("frame").is_some()
            || keyword("rule").is_some();
        if !is_attr {
            return match &mut self.open {
                Open::Body { text, .. } => {
                    text.push('\n');
                    text.push_str(t);
                    Ok(())
                }
                Open::Frame { parts } => {
                    parts.push((n, t.to_string()));
                    Ok(())
                }
                Open::None => Err(self.err(
                    n,
                    format!(
                        "unexpected {:?} (indented lines are `body`, `frame`, `rule` or `# note`)",
                        preview(t)
                    ),
                )),
            };
        }
        if matches!(self.current, Current::None) {
            return Err(self.err(
                n,
                "an indented line belongs to a message step (> or <) and must follow it \
                 (a comment at the start of a line ends the step)",
            ));
        }
        self.close_attr()?;
        if let Some(note) = t.strip_prefix('#') {
            match &mut self.current {
                Current::Message { msg, .. } => msg.notes.push(note.to_string()),
                Current::Raw(r) => r.notes.push(note.to_string()),
                Current::None => {}
            }
            return Ok(());
        }
        let is_raw = matches!(self.current, Current::Raw(_));
        let send = matches!(self.current, Current::Message { send: true, .. });
        if let Some(rest) = keyword("body") {
            if is_raw {
                return Err(self.err(n, "`> raw` has bytes only: no body"));
            }
            if self.seen_body {
                return Err(self.err(n, "a second body for this message"));
            }
            self.seen_body = true;
            if rest.is_empty() {
                return Err(self.err(n, "body needs JSON (`body null` for an empty body)"));
            }
            self.open = Open::Body {
                line: n,
                text: rest.to_string(),
            };
        } else if let Some(rest) = keyword("frame") {
            if self.seen_frame {
                return Err(self.err(n, "a second frame for this message"));
            }
            self.seen_frame = true;
            self.open = Open::Frame {
                parts: vec![(n, rest.to_string())],
            };
        } else if let Some(rest) = keyword("rule") {
            if is_raw || send {
                return Err(self.err(
                    n,
                    "rules apply to server messages (<): a client message is sent as it is",
                ));
            }
            let rule = Rule::parse(rest, Line(n)).map_err(|e| self.err(n, e))?;
            if let Current::Message { msg, .. } = &mut self.current {
                msg.rules.push(rule);
            }
        }
        Ok(())
    }

    /// A line at the start of the line: a step, a comment, or `source`.
    fn step(&mut self, n: usize, line: &str) -> Result<(), ParseError> {
        self.finish_step()?;
        if let Some(c) = line.strip_prefix('#') {
            self.trace.steps.push(Step::Comment(c.to_string()));
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("source") {
            if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                return Err(self.unknown(n, line));
            }
            if !self.trace.steps.is_empty() {
                return Err(self.err(n, "`source` lines come before the first step"));
            }
            self.trace.source.push(rest.trim().to_string());
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [">", "raw"] => {
                self.current = Current::Raw(Raw {
                    notes: Vec::new(),
                    frame: Vec::new(),
                    line: Line(n),
                });
            }
            [">", "raw", ..] => return Err(self.err(n, "`> raw` takes nothing more on its line")),
            [">", ..] | ["<", ..] => {
                let send = words[0] == ">";
                let rest = line.get(1..).unwrap_or("");
                let msg = Box::new(self.header_line(n, rest, send)?);
                self.current = Current::Message { send, msg };
            }
            ["silence", ms, "ms"] => {
                let ms = ms.parse::<u64>().map_err(|_| {
                    self.err(n, format!("silence {ms} ms: not a number of milliseconds"))
                })?;
                self.trace.steps.push(Step::Silence { ms, line: Line(n) });
            }
            ["silence", ..] => return Err(self.err(n, "silence is `silence N ms`")),
            ["may-close"] => self.trace.steps.push(Step::MayClose { line: Line(n) }),
            ["expect-close"] => self.trace.steps.push(Step::ExpectClose { line: Line(n) }),
            [w @ ("may-close" | "expect-close"), ..] => {
                return Err(self.err(n, format!("`{w}` takes nothing more on its line")));
            }
            _ if line.starts_with('>') || line.starts_with('<') => {
                return Err(self.err(n, "a message line starts with `> ` or `< `"));
            }
            _ => return Err(self.unknown(n, line)),
        }
        Ok(())
    }

    fn unknown(&self, n: usize, line: &str) -> ParseError {
        self.err(
            n,
            format!(
                "unknown line {:?} (steps: `> …`, `< …`, `> raw`, `silence N ms`, `may-close`, \
                 `expect-close`; `# comment`; `source …`)",
                preview(line)
            ),
        )
    }
}

/// At most 40 characters of a line, for messages.
fn preview(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Parse a trace. `origin` names it in errors (a path or a label); the trace's name is its last
/// component without `.trace`.
pub fn parse(text: &str, origin: &str) -> Result<Trace, ParseError> {
    let mut p = Parser {
        file: origin,
        trace: Trace {
            name: Trace::name_from(origin),
            source: Vec::new(),
            steps: Vec::new(),
        },
        current: Current::None,
        open: Open::None,
        seen_body: false,
        seen_frame: false,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let magic_err = |line| {
        p.err(
            line,
            format!("not a trace: the first line must be `{MAGIC} {VERSION}`"),
        )
    };
    match lines.next() {
        Some((n, first)) => {
            let words: Vec<&str> = first.split_whitespace().collect();
            match words.as_slice() {
                [m, v] if *m == MAGIC => match v.parse::<u32>() {
                    Ok(VERSION) => {}
                    _ => {
                        return Err(p.err(
                            n,
                            format!(
                                "unsupported trace version {v:?}: this virtwire reads version {VERSION}"
                            ),
                        ));
                    }
                },
                _ => return Err(magic_err(n)),
            }
        }
        None => return Err(magic_err(1)),
    }
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        // `lines()` ends a line at `\n` (and drops the `\r` of `\r\n`); a carriage return left inside
        // a line is a line break to some readers and not to others, and the writer cannot keep it
        // (it writes one as a space), so the trace would not read back the same: refused.
        if let Some(at) = line.find('\r') {
            return Err(p.err(
                n,
                format!(
                    "a carriage return inside the line (at column {}): trace lines end with \\n",
                    at + 1
                ),
            ));
        }
        if line.starts_with(char::is_whitespace) {
            p.attribute(n, line)?;
        } else {
            p.step(n, line)?;
        }
    }
    p.finish_step()?;
    Ok(p.trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_file_and_line() {
        let e = parse("nope", "x.trace").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("x.trace:1: not a trace: the first line must be `{MAGIC} {VERSION}`")
        );
        let e = parse("virtwire-trace 2\n", "x.trace").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("version"), "{e}");
    }

    /// Found by the trace_parse fuzz target: a `\r` inside a line was kept by the parser and
    /// written back as a space, so a written trace did not read back the same.
    #[test]
    fn a_carriage_return_inside_a_line_is_refused() {
        for text in [
            "virtwire-trace 1\nsource a\rb\n",
            "virtwire-trace 1\n# a\rcomment\n",
            "virtwire-trace 1\nsource a\r\r\n",
        ] {
            let e = parse(text, "x.trace").unwrap_err();
            assert_eq!(e.line, 2, "{text:?}: {e}");
            assert!(e.message.contains("carriage return"), "{text:?}: {e}");
        }
        // A CRLF file still reads: `lines()` drops the `\r` of each `\r\n`.
        let t = parse("virtwire-trace 1\r\nsource a b\r\n", "x.trace").unwrap();
        assert_eq!(t.source, ["a b"]);
    }
}
