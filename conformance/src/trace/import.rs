//! A captured connection (decoded by the wire layer into frames and their message JSON) → a trace.
//!
//! - Client messages become `>` steps (header line, body, frame); server messages `<` steps, and
//!   server messages of type MESSAGE (events; not the PONG answering a client's PING) are marked
//!   `async`: when they come depends on other clients and timers, not on this connection's order.
//! - Keepalive traffic driven by timers is left out, with a comment where it was: the server's
//!   PINGs (the replaying peer answers PINGs itself) and the client's PONGs. The client's own PINGs
//!   stay, and so do the server's PONGs to them.
//! - A message that does not decode keeps a note saying why (it is still sent as it was).
//! - Gaps, framing errors and frames cut off are comments (and reported as problems): the rest of
//!   that direction is not in the capture's decoded traffic.
//! - When the server closed its side before the client did, the trace ends with `expect-close`.

use serde_json::Value;

use super::{HeaderLine, Line, Message, Step, Trace};
use crate::capture::tcp::Dir;
use crate::wire::frames::{CaptureConn, ConnEntry};

/// A trace made from one connection, and what could not be imported.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The trace.
    pub trace: Trace,
    /// Gaps, framing errors, unfinished frames: the traffic after them is missing.
    pub problems: Vec<String>,
}

/// The capture's name without its directory and extension (`lifecycle.pcapng` → `lifecycle`).
pub fn capture_stem(capture: &str) -> String {
    let base = capture.rsplit(['/', '\\']).next().unwrap_or(capture);
    [".pcapng", ".pcap", ".cap"]
        .iter()
        .find_map(|e| base.strip_suffix(e))
        .unwrap_or(base)
        .to_string()
}

/// The trace name of connection `conn` of a capture: `<capture-stem>-c<conn>` (`conn` as
/// `virtwire decode` numbers connections, from 0).
pub fn trace_name(capture: &str, conn: u64) -> String {
    format!("{}-c{conn}", capture_stem(capture))
}

fn keepalive(json: &Value, procedure: &str) -> bool {
    let h = &json["header"];
    h["prog_name"] == "keepalive" && h["proc_name"] == procedure
}

fn decode_note(json: &Value) -> Option<String> {
    let msg = json.get("error")?.get("message")?.as_str()?;
    Some(format!(" does not decode: {msg}"))
}

/// One connection of `capture` as a trace.
pub fn from_connection(capture: &str, c: &CaptureConn) -> Imported {
    let mut source = format!("{} conn {}", capture_name(capture), c.conn);
    if let (Some(cl), Some(sv)) = (c.client, c.server) {
        source.push_str(&format!(": {cl} -> {sv}"));
    }
    if c.midstream {
        source.push_str(" (the capture starts inside this connection)");
    }
    let mut steps = Vec::new();
    let mut problems = Vec::new();
    let mut client_ended = false;
    for e in &c.entries {
        match e {
            ConnEntry::Message { dir, frame, json } => {
                let send = *dir == Dir::C2s;
                if send && keepalive(json, "PONG") {
                    steps.push(Step::Comment(
                        " client: keepalive PONG left out (the replay answers PINGs itself)".into(),
                    ));
                    continue;
                }
                if !send && keepalive(json, "PING") {
                    steps.push(Step::Comment(
                        " server: keepalive PING left out (it comes on a timer; the replay answers it)"
                            .into(),
                    ));
                    continue;
                }
                let Some(header) = HeaderLine::from_message_json(json) else {
                    problems.push(format!("{}: a message without a header", dir.name()));
                    continue;
                };
                // Events come when other clients and timers make them; a PONG answers this
                // client's own PING, in order.
                let is_async = !send && json["header"]["type"] == 2 && !keepalive(json, "PONG");
                let m = Message {
                    header,
                    is_async,
                    notes: decode_note(json).into_iter().collect(),
                    rules: Vec::new(),
                    body: json.get("body").cloned(),
                    frame: Some(frame.clone()),
                    line: Line(0),
                };
                steps.push(if send { Step::Send(m) } else { Step::Expect(m) });
            }
            ConnEntry::Problem { dir, what } => {
                let d = dir.map_or("", |d| d.name());
                steps.push(Step::Comment(format!(
                    " {d}: {what}; the rest of this direction is not in the trace"
                )));
                problems.push(format!("{d}: {what}"));
            }
            ConnEntry::End { dir: Dir::C2s, .. } => client_ended = true,
            ConnEntry::End {
                dir: Dir::S2c,
                reason,
            } => {
                if !client_ended && matches!(*reason, "fin" | "rst") {
                    steps.push(Step::ExpectClose { line: Line(0) });
                }
            }
        }
    }
    Imported {
        trace: Trace {
            name: trace_name(capture, c.conn),
            source: vec![source],
            steps,
        },
        problems,
    }
}

/// The capture's file name without its directory.
fn capture_name(capture: &str) -> &str {
    capture.rsplit(['/', '\\']).next().unwrap_or(capture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(capture_stem("corpus/traces/lifecycle.pcapng"), "lifecycle");
        assert_eq!(capture_stem("list-sll.pcap"), "list-sll");
        assert_eq!(trace_name("x/errors.pcapng", 3), "errors-c3");
    }
}
