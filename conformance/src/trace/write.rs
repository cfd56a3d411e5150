//! [`Trace`] → text, in the one layout the parser reads back to the same trace: a blank line before
//! each message, notes and rules right under the header line, the body as compact JSON (pretty
//! over several lines when long), the frame as 4-byte words, eight to a line.

use std::fmt::Write as _;

use super::{MAGIC, Message, Step, Trace, VERSION};

/// Longest body written on one line; longer ones are pretty-printed.
const ONE_LINE_BODY: usize = 100;
/// Indentation of attribute lines.
const ATTR: &str = "  ";
/// Indentation of continuation lines (deeper than attributes).
const CONT: &str = "        ";

/// One line of free text: line breaks would end it.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn write_frame(out: &mut String, bytes: &[u8]) {
    for (i, line) in bytes.chunks(32).enumerate() {
        out.push_str(if i == 0 { "  frame " } else { CONT });
        for (j, word) in line.chunks(4).enumerate() {
            if j > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{}", crate::wire::json::Hex(word));
        }
        out.push('\n');
    }
}

fn write_body(out: &mut String, body: &serde_json::Value) {
    let compact = body.to_string();
    if compact.len() <= ONE_LINE_BODY {
        let _ = writeln!(out, "{ATTR}body {compact}");
        return;
    }
    let pretty = serde_json::to_string_pretty(body).unwrap_or(compact);
    for (i, line) in pretty.lines().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "{ATTR}body {line}");
        } else {
            let _ = writeln!(out, "    {line}");
        }
    }
}

fn write_message(out: &mut String, m: &Message, send: bool) {
    let _ = write!(
        out,
        "{} {}",
        if send { '>' } else { '<' },
        m.header.render(!send)
    );
    if m.is_async && !send {
        out.push_str(" async");
    }
    out.push('\n');
    for n in &m.notes {
        let _ = writeln!(out, "{ATTR}#{}", one_line(n));
    }
    if !send {
        for r in &m.rules {
            let _ = writeln!(out, "{ATTR}rule {}", one_line(&r.to_string()));
        }
    }
    if let Some(b) = &m.body {
        write_body(out, b);
    }
    if let Some(f) = m.frame.as_deref().filter(|f| !f.is_empty()) {
        write_frame(out, f);
    }
}

/// The trace as text.
pub fn write(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MAGIC} {VERSION}");
    for s in &t.source {
        let _ = writeln!(out, "source {}", one_line(s).trim());
    }
    let mut after_comment = false;
    for step in &t.steps {
        let is_comment = matches!(step, Step::Comment(_));
        if !after_comment && !matches!(step, Step::MayClose { .. } | Step::ExpectClose { .. }) {
            out.push('\n');
        }
        after_comment = is_comment;
        match step {
            Step::Comment(c) => {
                let _ = writeln!(out, "#{}", one_line(c));
            }
            Step::Send(m) => write_message(&mut out, m, true),
            Step::Expect(m) => write_message(&mut out, m, false),
            Step::Raw(r) => {
                out.push_str("> raw\n");
                for n in &r.notes {
                    let _ = writeln!(out, "{ATTR}#{}", one_line(n));
                }
                write_frame(&mut out, &r.frame);
            }
            Step::Silence { ms, .. } => {
                let _ = writeln!(out, "silence {ms} ms");
            }
            Step::MayClose { .. } => out.push_str("may-close\n"),
            Step::ExpectClose { .. } => out.push_str("expect-close\n"),
        }
    }
    out
}
