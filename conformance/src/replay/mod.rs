//! Replaying a trace against a server: a trace becomes a runner [`Case`] whose closure asks the
//! [`Ctx`] for a connection (it never opens sockets itself) and plays the client's side while
//! matching the server's.
//!
//! - **Serials.** The client's serials are renumbered in order with the connection's own counter
//!   (`1, 2, 3…`): each new serial of a client message (a CALL, or anything but MESSAGE and stream
//!   packets) gets the next one; stream packets (STREAM, STREAM_HOLE) reuse their call's; MESSAGE
//!   (keepalive) keeps its own. Server messages are expected with the rewritten serials (MESSAGE:
//!   as recorded). The frames are rewritten by `wire::frames::rewrite_serial`.
//! - **Matching.** Consecutive server steps form a group matched in any order: a message that comes
//!   is the group's first unmatched step of the same type, program, version, procedure and
//!   serial, then its status and body must match under the step's rules. A message meant for a later
//!   step (pipelined replies) is kept for it. Server messages of type MESSAGE (events, keepalive)
//!   nobody expects are skipped (and noted); `async` steps may be matched at any time and must have
//!   come by the end. The Peer answers the server's keepalive PINGs itself.
//! - **Echoes.** When a server value differs from the recorded one (a string or opaque value of
//!   at least 8 characters: a new domain's UUID), later client messages that send the recorded value
//!   back are rewritten to send the new one (`wire::frames::rewrite_echoes`), and later expected
//!   bodies expect the new one.
//! - **Verdict.** Pass, or fail with Expected (the trace's step, `file:line`) and Actual (what came,
//!   decoded), naming the path of the first field that differs. A trace whose header lines do not
//!   say what their frames hold is a harness error.
//!
//! [`learn`]: replay twice and turn the fields that differ into rules.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::trace::rules::{self, Mismatch, preview};
use crate::trace::{HeaderLine, Line, Message, Step, Trace};
use crate::wire::Judge;
use crate::wire::frames;
use crate::wire::peer::{Event, Peer};

pub mod learn;

/// The family of trace cases: their IDs are `trace/<name>`.
pub const FAMILY: &str = "trace";

/// Shortest recorded string whose echoes are rewritten (UUIDs are 32 hex digits).
const ECHO_MIN: usize = 8;

/// The case ID of a trace: `trace/<name>`.
pub fn case_id(trace: &Trace) -> String {
    format!("{FAMILY}/{}", trace.name)
}

fn requirement(trace: &Trace) -> String {
    let (sends, expects) = trace.counts();
    format!(
        "The server answers the recorded client of trace {} as it did then \
         ({sends} client messages, {expects} server messages, under the trace's rules)",
        trace.name
    )
}

fn source(trace: &Trace) -> String {
    match trace.source.first() {
        Some(s) => format!("corpus/traces/{}.trace (recorded: {s})", trace.name),
        None => format!("{}.trace", trace.name),
    }
}

/// The trace as a case: `trace/<name>`, level MUST. Exclusive: a replay may change the server's
/// state (the test driver's world is shared by every connection), so it runs alone.
pub fn case(trace: Arc<Trace>) -> Case {
    Case::new(
        case_id(&trace),
        Level::Must,
        requirement(&trace),
        source(&trace),
        move |ctx| run(ctx, &trace, None),
    )
    .exclusive()
}

/// What one replay saw: the message JSON that matched each server step, by step index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Step index → the message that matched it.
    pub actual: BTreeMap<usize, Value>,
    /// Step index → the body it was expected to have then: the recorded one with that replay's
    /// echoes applied (only for steps with a body).
    pub expected: BTreeMap<usize, Value>,
}

/// Where learning replays put what they saw (one [`Observed`] per replay).
pub type Observations = Arc<Mutex<Vec<Observed>>>;

/// The trace as a learning case: it fails only when a message does not come or its header or
/// status differ; bodies are recorded into `into` (for [`learn::learn`]), not judged.
pub fn learning_case(trace: Arc<Trace>, into: Observations) -> Case {
    Case::new(
        case_id(&trace),
        Level::Must,
        requirement(&trace),
        source(&trace),
        move |ctx| run(ctx, &trace, Some(&into)),
    )
    .exclusive()
}

/// `name.trace:line`.
fn at(trace: &Trace, line: Line) -> String {
    format!("{}.trace:{line}", trace.name)
}

/// Replay `trace` in `ctx`; with `learn`, bodies are recorded there instead of judged.
pub fn run(ctx: &mut Ctx<'_>, trace: &Trace, learn: Option<&Observations>) -> CaseResult {
    let judge = ctx.env().judge.clone();
    if judge.schema().is_none() {
        return Err(Outcome::error(
            "replaying a trace needs libvirt's .x files for procedure names and bodies \
             (--protocol-dir DIR or $VIRTWIRE_PROTOCOL_DIR)",
        ));
    }
    // What each client frame is (type, serial), and whether its header line says so.
    let mut sends = HashMap::new();
    for (i, step) in trace.steps.iter().enumerate() {
        let Step::Send(m) = step else { continue };
        let bytes = m.frame.as_deref().unwrap_or(&[]);
        let json = frames::frame_json(&judge, bytes).map_err(|e| {
            Outcome::error(format!(
                "{}: this client message's frame {e} (use `> raw` for bytes that are not a frame)",
                at(trace, m.line)
            ))
        })?;
        let mut wrong = Vec::new();
        rules::compare_header(&m.header, m.header.serial, &json, &[], false, &mut wrong);
        if let Some(x) = wrong.first() {
            return Err(Outcome::error(format!(
                "{}: the header line does not say what its frame holds ({x})",
                at(trace, m.line)
            )));
        }
        let h = &json["header"];
        let ty = h["type"].as_i64().unwrap_or(-1);
        let serial = h["serial"].as_u64().and_then(|s| u32::try_from(s).ok());
        sends.insert(i, (ty, serial.unwrap_or(m.header.serial)));
    }
    let mut peer = ctx.connect()?;
    let mut r = Replay {
        trace,
        judge,
        sends,
        serials: HashMap::new(),
        pending_async: trace
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::Expect(m) if m.is_async))
            .map(|(i, _)| i)
            .collect(),
        early: Vec::new(),
        swaps: Vec::new(),
        may_close: false,
        ended: None,
        matched: 0,
        skipped: 0,
        observed: Observed::default(),
        learning: learn.is_some(),
    };
    let result = r.go(ctx, &mut peer);
    if let Some(into) = learn
        && let Ok(mut v) = into.lock()
    {
        v.push(std::mem::take(&mut r.observed));
    }
    result
}

/// Message types by number (virNetMessageType).
const MESSAGE: i64 = 2;
const STREAM: i64 = 3;
const STREAM_HOLE: i64 = 6;

struct Replay<'t> {
    trace: &'t Trace,
    judge: Arc<Judge>,
    /// Client step index → the frame's (type, serial).
    sends: HashMap<usize, (i64, u32)>,
    /// Recorded client serial → the serial used now.
    serials: HashMap<u32, u32>,
    /// Async server steps not matched yet.
    pending_async: Vec<usize>,
    /// Messages that came before their (later) step: step index, message JSON.
    early: Vec<(usize, Value)>,
    /// Echoes: recorded string / hex value → the value the server sent this time.
    swaps: Vec<(String, String)>,
    may_close: bool,
    /// The server closed where the trace allows it: the line of the `may-close` in force.
    ended: Option<String>,
    matched: usize,
    skipped: usize,
    observed: Observed,
    learning: bool,
}

/// How a received message was placed.
enum Placed {
    /// It matched step `i`.
    Step(usize),
    /// An async step, an early message for a later step, or a MESSAGE nobody expects.
    Aside,
}

impl<'t> Replay<'t> {
    fn message(&self, i: usize) -> &'t Message {
        match &self.trace.steps[i] {
            Step::Send(m) | Step::Expect(m) => m,
            // Only called with indices of message steps.
            _ => unreachable!("step {i} is not a message"),
        }
    }

    fn is_message_type(h: &HeaderLine) -> bool {
        h.type_is("MESSAGE", MESSAGE)
    }

    /// The serial step `m` is expected with now.
    fn expected_serial(&self, m: &Message) -> u32 {
        if Self::is_message_type(&m.header) {
            m.header.serial
        } else {
            *self
                .serials
                .get(&m.header.serial)
                .unwrap_or(&m.header.serial)
        }
    }

    /// The step with echoes applied to its body.
    fn with_echoes(&self, m: &Message) -> Message {
        let mut m = m.clone();
        if let Some(b) = &mut m.body
            && !self.swaps.is_empty()
        {
            swap_json(b, &self.swaps);
        }
        m
    }

    fn identity(&self, i: usize, actual: &Value) -> bool {
        let m = self.message(i);
        let mut out = Vec::new();
        rules::compare_header(
            &m.header,
            self.expected_serial(m),
            actual,
            &m.rules,
            true,
            &mut out,
        );
        out.is_empty()
    }

    /// Everything that differs (at most `limit`): header and status always, the body unless
    /// learning.
    fn differences(&self, i: usize, actual: &Value, limit: usize) -> Vec<Mismatch> {
        let m = self.with_echoes(self.message(i));
        let serial = self.expected_serial(&m);
        if self.learning {
            let mut out = Vec::new();
            rules::compare_header(&m.header, serial, actual, &m.rules, false, &mut out);
            out.truncate(limit);
            out
        } else {
            rules::compare_message(&m, serial, actual, limit)
        }
    }

    /// Step `i` matched `actual`: record it, learn its echoes.
    fn accept(&mut self, i: usize, actual: Value) {
        let m = self.with_echoes(self.message(i));
        if let Some(b) = &m.body {
            if let Some(a) = actual.get("body") {
                find_echoes(b, a, &mut self.swaps);
            }
            self.observed.expected.insert(i, b.clone());
        }
        self.observed.actual.insert(i, actual);
        self.matched += 1;
    }

    fn expected_text(&self, i: usize) -> String {
        let m = self.message(i);
        let mut h = m.header.clone();
        let serial = self.expected_serial(m);
        let recorded = (serial != h.serial).then_some(h.serial);
        h.serial = serial;
        let mut s = format!(
            "{}: < {}{}",
            at(self.trace, m.line),
            h.render(true),
            if m.is_async { " async" } else { "" }
        );
        if let Some(r) = recorded {
            s.push_str(&format!(" (recorded serial={r})"));
        }
        if let Some(b) = &self.with_echoes(m).body {
            s.push(' ');
            s.push_str(&preview(Some(b)));
        }
        s
    }

    fn fail_mismatch(&self, ctx: &mut Ctx<'_>, i: usize, x: &Mismatch, actual: &Value) -> Outcome {
        ctx.note(format!("first mismatching field: {}", x.path));
        Outcome::fail(
            self.expected_text(i),
            format!("{x}; the message: {}", describe(actual)),
        )
    }

    /// Place a received message: in the group (its first unmatched step of the same identity),
    /// an async step, a later step, or skipped when it is a MESSAGE. Anything else fails.
    fn place(
        &mut self,
        ctx: &mut Ctx<'_>,
        actual: Value,
        group: &[usize],
        done: &[bool],
        expected_now: &str,
        later_than: usize,
    ) -> Result<Placed, Outcome> {
        for (k, &i) in group.iter().enumerate() {
            if done[k] || !self.identity(i, &actual) {
                continue;
            }
            if let Some(x) = self.differences(i, &actual, 1).first() {
                return Err(self.fail_mismatch(ctx, i, x, &actual));
            }
            self.accept(i, actual);
            return Ok(Placed::Step(i));
        }
        if self.place_async(&actual) {
            return Ok(Placed::Aside);
        }
        let later = self
            .trace
            .steps
            .iter()
            .enumerate()
            .skip(later_than)
            .find(|(i, s)| {
                matches!(s, Step::Expect(m) if !m.is_async)
                    && !self.early.iter().any(|(e, _)| e == i)
                    && self.identity(*i, &actual)
            })
            .map(|(i, _)| i);
        if let Some(i) = later {
            self.early.push((i, actual));
            return Ok(Placed::Aside);
        }
        if actual["header"]["type"].as_i64() == Some(MESSAGE) {
            self.skipped += 1;
            if self.skipped <= 5 {
                ctx.note(format!(
                    "skipped (nobody expects it): {}",
                    describe(&actual)
                ));
            }
            return Ok(Placed::Aside);
        }
        Err(Outcome::fail(
            expected_now.to_string(),
            format!("an unexpected message: {}", describe(&actual)),
        ))
    }

    /// Match a message against the pending async steps; true when one took it.
    fn place_async(&mut self, actual: &Value) -> bool {
        let found = self
            .pending_async
            .iter()
            .position(|&i| self.identity(i, actual) && self.differences(i, actual, 1).is_empty());
        match found {
            Some(k) => {
                let i = self.pending_async.remove(k);
                self.accept(i, actual.clone());
                true
            }
            None => false,
        }
    }

    /// The server closed: fine under `may-close` (the replay ends), a failure otherwise.
    fn closed(&mut self, ctx: &Ctx<'_>, peer: &Peer, ev: &Event, expected: String) -> Outcome {
        if self.may_close {
            self.ended = Some(ctx.describe(peer, ev));
            Outcome::pass("", "")
        } else {
            Outcome::fail(expected, ctx.describe(peer, ev))
        }
    }

    fn next(&mut self, peer: &mut Peer, deadline: Instant) -> Result<Value, Event> {
        match peer.next_event(deadline) {
            Event::Frame(f) => Ok(frames::owned_frame_json(&self.judge, &f)),
            other => Err(other),
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, peer: &mut Peer, i: usize) -> Result<(), Outcome> {
        let Some(&(ty, serial)) = self.sends.get(&i) else {
            return Ok(());
        };
        let m = self.message(i);
        let line = m.line;
        let mut bytes = m.frame.clone().unwrap_or_default();
        if !self.swaps.is_empty() {
            match frames::rewrite_echoes(&self.judge, &bytes, &self.swaps) {
                Ok(Some(b)) => bytes = b,
                Ok(None) => {}
                Err(e) => ctx.note(format!(
                    "{}: echoes not rewritten: {e}",
                    at(self.trace, line)
                )),
            }
        }
        let now = match ty {
            MESSAGE => serial,
            STREAM | STREAM_HOLE => *self.serials.get(&serial).unwrap_or(&serial),
            _ => match self.serials.get(&serial) {
                Some(s) => *s,
                None => {
                    let s = peer.serial();
                    self.serials.insert(serial, s);
                    s
                }
            },
        };
        if now != serial {
            bytes = frames::rewrite_serial(&bytes, now).map_err(|e| {
                Outcome::error(format!(
                    "{}: cannot rewrite the serial: {e}",
                    at(self.trace, line)
                ))
            })?;
        }
        self.send_bytes(ctx, peer, &bytes, line)
    }

    fn send_bytes(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: &mut Peer,
        bytes: &[u8],
        line: Line,
    ) -> Result<(), Outcome> {
        let left = ctx
            .read_deadline()
            .saturating_duration_since(Instant::now());
        if let Err(e) = peer.send(bytes, left.max(Duration::from_millis(100))) {
            if self.may_close {
                self.ended = Some(format!("sending failed: {e}"));
                return Ok(());
            }
            return Err(Outcome::fail(
                format!(
                    "{}: the server reads what the client sends",
                    at(self.trace, line)
                ),
                format!("sending failed: {e}"),
            ));
        }
        Ok(())
    }

    /// Wait for every step of `group` (indices of consecutive server steps).
    fn expect_group(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: &mut Peer,
        group: &[usize],
    ) -> Result<(), Outcome> {
        let mut done = vec![false; group.len()];
        // Messages that came early for these steps.
        for (k, &i) in group.iter().enumerate() {
            if let Some(pos) = self.early.iter().position(|(e, _)| *e == i) {
                let (_, actual) = self.early.remove(pos);
                if let Some(x) = self.differences(i, &actual, 1).first() {
                    return Err(self.fail_mismatch(ctx, i, x, &actual));
                }
                self.accept(i, actual);
                done[k] = true;
            }
        }
        let mut deadline = ctx.read_deadline();
        while let Some(k) = done.iter().position(|d| !d) {
            let expected = self.expected_text(group[k]);
            match self.next(peer, deadline) {
                Ok(actual) => {
                    let after = group.last().map_or(0, |l| l + 1);
                    if let Placed::Step(i) =
                        self.place(ctx, actual, group, &done, &expected, after)?
                    {
                        if let Some(k) = group.iter().position(|g| *g == i) {
                            done[k] = true;
                        }
                        deadline = ctx.read_deadline();
                    }
                }
                Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => {
                    let o = self.closed(ctx, peer, &ev, expected);
                    return if self.ended.is_some() { Ok(()) } else { Err(o) };
                }
                Err(ev) => return Err(Outcome::fail(expected, ctx.describe(peer, &ev))),
            }
        }
        Ok(())
    }

    /// Nothing but async / skipped messages for `ms`.
    fn silence(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: &mut Peer,
        ms: u64,
        line: Line,
        after: usize,
    ) -> CaseResult {
        let want = format!(
            "{}: nothing from the server for {ms} ms",
            at(self.trace, line)
        );
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            match self.next(peer, deadline) {
                Err(Event::Timeout) => return Ok(Outcome::pass("", "")),
                Ok(actual) => {
                    let before = self.early.len();
                    self.place(ctx, actual, &[], &[], &want, after)?;
                    // A message for a later step is not silence.
                    if self.early.len() > before
                        && let Some((_, a)) = self.early.pop()
                    {
                        return Err(Outcome::fail(want, format!("a message: {}", describe(&a))));
                    }
                }
                Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => {
                    let o = self.closed(ctx, peer, &ev, want);
                    return if self.ended.is_some() { Ok(o) } else { Err(o) };
                }
                Err(ev) => return Err(Outcome::fail(want, ctx.describe(peer, &ev))),
            }
        }
    }

    /// The server closes the connection, sending nothing but async / skipped messages first.
    fn expect_close(
        &mut self,
        ctx: &mut Ctx<'_>,
        peer: &mut Peer,
        line: Line,
        after: usize,
    ) -> CaseResult {
        let want = format!("{}: the server closes the connection", at(self.trace, line));
        let deadline = ctx.read_deadline();
        loop {
            match self.next(peer, deadline) {
                Ok(actual) => {
                    let before = self.early.len();
                    self.place(ctx, actual, &[], &[], &want, after)?;
                    if self.early.len() > before
                        && let Some((_, a)) = self.early.pop()
                    {
                        return Err(Outcome::fail(want, format!("a message: {}", describe(&a))));
                    }
                }
                Err(Event::Closed { .. } | Event::Reset(_)) => return Ok(Outcome::pass("", "")),
                Err(ev) => return Err(Outcome::fail(want, ctx.describe(peer, &ev))),
            }
        }
    }

    fn go(&mut self, ctx: &mut Ctx<'_>, peer: &mut Peer) -> CaseResult {
        let trace = self.trace;
        let steps = &trace.steps;
        let mut i = 0;
        while i < steps.len() && self.ended.is_none() {
            match &steps[i] {
                Step::Comment(_) => {}
                Step::Send(_) => self.send(ctx, peer, i)?,
                Step::Raw(r) => self.send_bytes(ctx, peer, &r.frame, r.line)?,
                Step::Expect(m) if m.is_async => {}
                Step::Expect(_) => {
                    let mut group = vec![i];
                    let mut j = i + 1;
                    while j < steps.len() {
                        match &steps[j] {
                            Step::Expect(m) if !m.is_async => group.push(j),
                            Step::Expect(_) | Step::Comment(_) => {}
                            _ => break,
                        }
                        j += 1;
                    }
                    self.expect_group(ctx, peer, &group)?;
                    i = j;
                    continue;
                }
                Step::Silence { ms, line } => {
                    self.silence(ctx, peer, *ms, *line, i + 1)?;
                }
                Step::MayClose { .. } => self.may_close = true,
                Step::ExpectClose { line } => {
                    self.expect_close(ctx, peer, *line, i + 1)?;
                }
            }
            i += 1;
        }
        // Async steps still to come.
        let deadline = ctx.read_deadline();
        while let Some(&first) = self.pending_async.first() {
            if self.ended.is_some() {
                break;
            }
            let expected = self.expected_text(first);
            match self.next(peer, deadline) {
                Ok(actual) => {
                    self.place(ctx, actual, &[], &[], &expected, steps.len())?;
                }
                Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => {
                    return Err(Outcome::fail(expected, ctx.describe(peer, &ev)));
                }
                Err(ev) => {
                    return Err(Outcome::fail(
                        format!("{expected} (async: any time before the end)"),
                        format!("it never came: {}", ctx.describe(peer, &ev)),
                    ));
                }
            }
        }
        let (sends, expects) = self.trace.counts();
        let expected = format!(
            "the server's {expects} messages of {}.trace, as recorded under its rules",
            self.trace.name
        );
        let mut actual = format!("{} matched after {sends} client messages", self.matched);
        if self.skipped > 0 {
            actual.push_str(&format!(
                "; {} MESSAGE(s) nobody expects skipped",
                self.skipped
            ));
        }
        if !self.swaps.is_empty() {
            actual.push_str(&format!(
                "; {} recorded value(s) echoed with the server's new ones",
                self.swaps.len()
            ));
        }
        if let Some(how) = &self.ended {
            actual.push_str(&format!(
                "; then {how}, where the trace allows it (may-close)"
            ));
        }
        Ok(Outcome::pass(expected, actual))
    }
}

/// A received message in words: its header line, body and decode error.
pub fn describe(actual: &Value) -> String {
    let head = HeaderLine::from_message_json(actual)
        .map_or_else(|| "(no header)".to_string(), |h| h.render(true));
    let mut s = format!("< {head} {}", preview(actual.get("body")));
    if let Some(e) = actual.get("error").and_then(|e| e.get("message")) {
        s.push_str(&format!(
            " (does not decode: {})",
            e.as_str().unwrap_or("?")
        ));
    }
    s
}

/// Replace every string leaf of `v` equal to a swap's old value with its new value.
fn swap_json(v: &mut Value, swaps: &[(String, String)]) {
    match v {
        Value::String(s) => {
            if let Some((_, new)) = swaps.iter().find(|(old, _)| old == s) {
                *s = new.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| swap_json(i, swaps)),
        Value::Object(m) => m.values_mut().for_each(|i| swap_json(i, swaps)),
        _ => {}
    }
}

/// Strings of at least [`ECHO_MIN`] characters that the server sent differently this time, as
/// (recorded, now) pairs.
fn find_echoes(expected: &Value, actual: &Value, out: &mut Vec<(String, String)>) {
    match (expected, actual) {
        (Value::String(e), Value::String(a))
            if e != a && e.chars().count() >= ECHO_MIN && !out.iter().any(|(o, _)| o == e) =>
        {
            out.push((e.clone(), a.clone()));
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (x, y) in e.iter().zip(a) {
                find_echoes(x, y, out);
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, x) in e {
                if let Some(y) = a.get(k) {
                    find_echoes(x, y, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn echoes_found_and_swapped() {
        let mut out = Vec::new();
        find_echoes(
            &json!({"dom": {"name": "virtwire-new", "uuid": "01ff2a617e284f8b8fd75b805a250c73", "id": -1}, "h": "vm"}),
            &json!({"dom": {"name": "virtwire-new", "uuid": "aaaa2a617e284f8b8fd75b805a250c73", "id": -1}, "h": "host"}),
            &mut out,
        );
        assert_eq!(
            out,
            [(
                "01ff2a617e284f8b8fd75b805a250c73".to_string(),
                "aaaa2a617e284f8b8fd75b805a250c73".to_string()
            )]
        );
        let mut v = json!({"dom": {"uuid": "01ff2a617e284f8b8fd75b805a250c73"}, "xs": ["01ff2a617e284f8b8fd75b805a250c73"]});
        swap_json(&mut v, &out);
        assert_eq!(v["xs"][0], "aaaa2a617e284f8b8fd75b805a250c73");
        assert_eq!(v["dom"]["uuid"], "aaaa2a617e284f8b8fd75b805a250c73");
    }
}
