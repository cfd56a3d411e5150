//! The client cases: each runs the client once against the scripted server with one thing changed,
//! and judges how the client ended and what it put on the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use virtwire_protocol::Compat;
use virtwire_protocol::header::REMOTE_PROGRAM;

use super::Setup;
use super::crash::{self, Crash, CrashRules};
use super::process::{self, ClientRun, Ending};
use super::server::{Observed, Server, Target, Twist};
use crate::runner::ctx::proc;
use crate::runner::{Case, Ctx, Fact, Level, Outcome, Verdict};
use crate::wire::Judge;
use crate::wire::frames::{frame_header, frame_json, frame_parts};
use crate::wire::peer::WireLog;
use virtwire_protocol::schema::bounds::{self, BoundedField};

/// How a run judges its clients beyond the cases themselves.
#[derive(Clone, Debug)]
pub struct Options {
    /// What counts as a crash, and which exit statuses are graceful (`--crash-pattern`,
    /// `--error-exit`).
    pub crash: CrashRules,
    /// Runs of the client per case (`--repeat`); a case whose verdict differs between runs is
    /// reported as flaky, with the worst verdict.
    pub repeat: u32,
    /// Longest one run of the client may take (a second of it is kept for tearing down).
    pub run_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            crash: CrashRules::default(),
            repeat: 1,
            run_timeout: Duration::from_secs(15),
        }
    }
}

/// What the client must do in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Finish its job: the exit status of the recorded run.
    Succeeds,
    /// Neither crash nor hang; any exit status (an error is a fine answer to a broken server).
    Survives,
    /// Reject what it got: a non-zero exit status (at the case's level; a client that accepts
    /// it is non-strict when the level is SHOULD).
    Rejects,
    /// Answer the server's keepalive PING with a PONG, and finish its job.
    Pongs,
    /// Send only messages that strict XDR (RFC 4506) decodes.
    StrictXdr,
}

/// One client case before it is a runner case.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The ID (`client/...`).
    pub id: String,
    /// How binding.
    pub level: Level,
    /// The requirement in one line.
    pub requirement: String,
    /// Where it comes from.
    pub source: String,
    /// What changes.
    pub twist: Twist,
    /// Which recorded exchange it changes (`None`: the case does not apply to this session).
    pub target: Target,
    /// Why the case does not apply, when `target` is `None`.
    pub not_applicable: &'static str,
    /// What the client must do.
    pub expect: Expect,
    /// Waiting forever counts as this level's failure (SHOULD: a client with no way to know the
    /// server is gone may wait).
    pub hang: Level,
}

/// Recorded exchanges the cases aim at.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// CONNECT_OPEN.
    pub open: Option<usize>,
    /// AUTH_LIST.
    pub auth: Option<usize>,
    /// The command's own work: the first call after CONNECT_OPEN that is not connection set-up.
    pub work: Option<usize>,
    /// The first call after CONNECT_OPEN.
    pub after_open: Option<usize>,
    /// A reply whose body starts with a variable-length array (its count is the first word).
    pub array: Option<usize>,
    /// The first exchange whose answers carry stream data.
    pub stream: Option<usize>,
}

const CONNECT_UNREGISTER_CLOSE_CALLBACK: i32 = 361;
/// Calls a libvirt client makes to set a connection up, before the command's own work:
/// AUTH_LIST, CONNECT_OPEN, CONNECT_SUPPORTS_FEATURE, CONNECT_GET_URI, CONNECT_GET_LIB_VERSION,
/// CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, CONNECT_REGISTER_CLOSE_CALLBACK.
const SETUP_PROCS: [i32; 7] = [66, 1, 60, 110, 157, 316, 360];
const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: i32 = 317;

impl Targets {
    /// Find the targets in `setup`'s script.
    pub fn find(setup: &Setup) -> Targets {
        let ex = &setup.script.exchanges;
        let is_call = |i: usize, p: i32| {
            ex[i].call.msg_type.is_call()
                && ex[i].call.prog == REMOTE_PROGRAM
                && ex[i].call.procedure == p
        };
        let calls: Vec<usize> = (0..ex.len())
            .filter(|i| ex[*i].call.msg_type.is_call())
            .collect();
        let open = calls
            .iter()
            .copied()
            .find(|i| is_call(*i, proc::CONNECT_OPEN));
        let auth = calls.iter().copied().find(|i| is_call(*i, proc::AUTH_LIST));
        let closing = calls
            .iter()
            .copied()
            .find(|i| {
                is_call(*i, proc::CONNECT_CLOSE)
                    || is_call(*i, CONNECT_UNREGISTER_CLOSE_CALLBACK)
                    || is_call(*i, CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY)
            })
            .unwrap_or(ex.len());
        let after_open = open.and_then(|o| calls.iter().copied().find(|i| *i > o));
        // The command's own work: the first call after CONNECT_OPEN that is not connection set-up
        // (feature probes, callbacks, identity); else the first call after CONNECT_OPEN.
        let setup_call = |i: usize| {
            SETUP_PROCS.iter().any(|p| is_call(i, *p)) || ex[i].call.prog != REMOTE_PROGRAM
        };
        let work = calls
            .iter()
            .copied()
            .find(|i| Some(*i) > open && *i < closing && !setup_call(*i))
            .or(after_open);
        let has_reply = |i: usize| {
            ex[i]
                .answers
                .iter()
                .find(|a| frame_header(a).is_some_and(|h| h.msg_type.is_reply()))
        };
        let starts_with_array = |i: usize| {
            has_reply(i)
                .and_then(|r| frame_json(&setup.judge, r).ok())
                .and_then(|j| {
                    j["body"]
                        .as_object()
                        .and_then(|o| o.values().next().cloned())
                })
                .is_some_and(|v| v.is_array())
        };
        let arrays: Vec<usize> = calls
            .iter()
            .copied()
            .filter(|i| starts_with_array(*i))
            .collect();
        let array = arrays
            .iter()
            .copied()
            .find(|i| Some(*i) != auth)
            .or(arrays.first().copied());
        let stream = (0..ex.len()).find(|i| {
            ex[*i].answers.iter().any(|a| {
                frame_header(a).is_some_and(|h| {
                    h.msg_type == virtwire_protocol::MessageType::Stream
                        && h.status == virtwire_protocol::MessageStatus::Continue
                })
            })
        });
        Targets {
            open,
            auth,
            work,
            after_open,
            array,
            stream,
        }
    }
}

/// Every client case for `setup`'s session.
pub fn specs(setup: &Setup) -> Vec<Spec> {
    let t = Targets::find(setup);
    let limits = *setup.judge.limits();
    let string_max = limits.string_max();
    let frame_max = u32::try_from(limits.frame_max()).unwrap_or(u32::MAX);
    let s = |id: &str,
             level: Level,
             requirement: &str,
             source: &str,
             twist: Twist,
             target: Target,
             expect: Expect| Spec {
        id: format!("client/{id}"),
        level,
        requirement: requirement.into(),
        source: source.into(),
        twist,
        target,
        not_applicable: "",
        expect,
        hang: Level::Must,
    };
    let proto = "docs/protocol.md";
    let mut v = vec![
        s(
            "baseline",
            Level::Must,
            "against the recorded conversation, unchanged, the client does its job as it did against libvirtd",
            "the recording",
            Twist::Replay,
            None,
            Expect::Succeeds,
        ),
        s(
            "strict-xdr",
            Level::Should,
            "every message the client sends is strict XDR (bools 0 or 1, zero padding, known enum values, nothing after the body); libvirt's own decoder is lenient",
            "RFC 4506 §4.4, §4.10, §4.19",
            Twist::Replay,
            None,
            Expect::StrictXdr,
        ),
        s(
            "order/event-before-open-reply",
            Level::Must,
            "an event (DOMAIN_EVENT_LIFECYCLE) before CONNECT_OPEN's reply is ignored or dispatched; the client goes on",
            "docs/protocol.md §1 (MESSAGE at any time); issue 13",
            Twist::EventBefore,
            t.open,
            Expect::Succeeds,
        ),
        s(
            "order/event-flood",
            Level::Must,
            "10,000 events right after CONNECT_OPEN's reply do not stop the client doing its job",
            proto,
            Twist::EventFlood(10_000),
            t.open,
            Expect::Succeeds,
        ),
        s(
            "order/replies-out-of-order",
            Level::Must,
            "replies to pipelined calls are matched by serial, whatever their order",
            "docs/protocol.md §1 (serials)",
            Twist::OutOfOrder,
            t.after_open,
            Expect::Succeeds,
        ),
        s(
            "order/reply-unused-serial",
            Level::Must,
            "a reply with a serial no call used neither crashes nor hangs the client",
            "docs/protocol.md §1 (serials)",
            Twist::UnusedSerial,
            t.work,
            Expect::Survives,
        ),
        s(
            "order/duplicate-reply",
            Level::Must,
            "a second reply to an answered call neither crashes nor hangs the client",
            "docs/protocol.md §1 (serials)",
            Twist::DuplicateReply,
            t.work,
            Expect::Survives,
        ),
        s(
            "order/reply-wrong-procedure",
            Level::Should,
            "a reply whose procedure is not its call's is refused, not decoded as the call's result",
            "docs/protocol.md §1 (a reply echoes its call's program, version and procedure)",
            Twist::WrongProcedure,
            t.work,
            Expect::Rejects,
        ),
        s(
            "keepalive/server-ping",
            Level::Must,
            "a keepalive PING from the server is answered with PONG",
            "virkeepaliveprotocol.x; docs/protocol.md (keepalive)",
            Twist::ServerPing,
            t.open,
            Expect::Pongs,
        ),
        s(
            "keepalive/silence-after-call",
            Level::Must,
            "a server that stops answering (PINGs too) is noticed through keepalive: the client ends with an error",
            "docs/protocol.md (keepalive)",
            Twist::Silence { keepalive: true },
            t.work,
            Expect::Rejects,
        ),
        Spec {
            hang: Level::Should,
            ..s(
                "keepalive/silence-without-keepalive",
                Level::Should,
                "a server without keepalive that stops answering: the client should bound its wait (libvirt has no call timeout)",
                "docs/protocol.md (keepalive)",
                Twist::Silence { keepalive: false },
                t.work,
                Expect::Rejects,
            )
        },
        s(
            "framing/length-0xffffffff",
            Level::Must,
            "a length word of 0xFFFFFFFF is refused: the client closes with an error",
            "virNetMessageDecodeLength",
            Twist::LengthWord(u32::MAX),
            t.work,
            Expect::Rejects,
        ),
        s(
            "framing/largest-legal-then-nothing",
            Level::Must,
            "a frame announced at the largest legal length that never comes: the client gives up (keepalive)",
            "virNetMessageDecodeLength; docs/protocol.md (limits)",
            Twist::LargestThenNothing,
            t.work,
            Expect::Rejects,
        ),
        s(
            "framing/length-over-limit",
            Level::Must,
            "a length word one over the largest frame is refused",
            "virNetMessageDecodeLength; docs/protocol.md (limits)",
            Twist::LengthWord(frame_max.saturating_add(1)),
            t.work,
            Expect::Rejects,
        ),
        s(
            "framing/length-below-header",
            Level::Must,
            "a length word below the 28-byte header is refused",
            "virNetMessageDecodeHeader",
            Twist::LengthWord(20),
            t.work,
            Expect::Rejects,
        ),
        s(
            "framing/one-byte-at-a-time",
            Level::Must,
            "every server frame arriving one byte per write changes nothing",
            "TCP is a byte stream",
            Twist::OneByteAtATime,
            t.open,
            Expect::Succeeds,
        ),
        s(
            "framing/close-mid-frame",
            Level::Must,
            "a connection closed in the middle of a reply ends the client with an error",
            proto,
            Twist::CloseMidFrame,
            t.work,
            Expect::Rejects,
        ),
        s(
            "framing/reset",
            Level::Must,
            "a connection reset instead of a reply ends the client with an error",
            proto,
            Twist::Reset,
            t.work,
            Expect::Rejects,
        ),
        s(
            "body/error-all-absent",
            Level::Must,
            "a REPLY/ERROR with every optional field absent (no message) is reported, not dereferenced",
            "remote_protocol.x remote_error; virNetMessageError",
            Twist::ErrorAllAbsent,
            t.work,
            Expect::Survives,
        ),
        s(
            "body/error-message-at-max",
            Level::Must,
            "a REPLY/ERROR whose message is REMOTE_STRING_MAX bytes is reported",
            "remote_protocol.x REMOTE_STRING_MAX",
            Twist::ErrorMessage(string_max),
            t.work,
            Expect::Survives,
        ),
        s(
            "body/error-message-over-max",
            Level::Must,
            "a REPLY/ERROR whose message is REMOTE_STRING_MAX + 1 bytes is refused or reported, never a crash",
            "remote_protocol.x REMOTE_STRING_MAX",
            Twist::ErrorMessage(string_max.saturating_add(1)),
            t.work,
            Expect::Survives,
        ),
        s(
            "body/count-negative",
            Level::Must,
            "an array count of -1 (0xFFFFFFFF) in a reply is refused",
            "RFC 4506 §4.13; remote_protocol.x maxima",
            Twist::Count(u32::MAX),
            t.array,
            Expect::Rejects,
        ),
        s(
            "body/count-huge",
            Level::Must,
            "an array count of 0x7FFFFFFF with no elements after it is refused",
            "RFC 4506 §4.13; remote_protocol.x maxima",
            Twist::Count(0x7fff_ffff),
            t.array,
            Expect::Rejects,
        ),
        s(
            "body/trailing-bytes",
            Level::Should,
            "a reply with bytes after its body is refused (RFC 4506; libvirt's own server is lenient here)",
            "RFC 4506 §4; virNetMessageDecodePayload",
            Twist::Trailing(vec![0xde, 0xad, 0xbe, 0xef]),
            t.work,
            Expect::Rejects,
        ),
        s(
            "body/unknown-enum",
            Level::Should,
            "an AUTH_LIST reply offering an unknown remote_auth_type (0x7FFF) is refused, not taken for a known one",
            "remote_protocol.x remote_auth_type",
            Twist::Payload([1u32.to_be_bytes(), 0x7fffu32.to_be_bytes()].concat()),
            t.auth,
            Expect::Rejects,
        ),
        s(
            "stream/continue-without-end",
            Level::Should,
            "a download whose data never ends (no STREAM/OK): the client should not wait forever",
            "docs/protocol.md (streams)",
            Twist::StreamNoEnd,
            t.stream,
            Expect::Rejects,
        ),
        s(
            "stream/data-after-finish",
            Level::Must,
            "stream data after the stream's STREAM/OK neither crashes nor hangs the client",
            "docs/protocol.md (streams)",
            Twist::StreamDataAfterEnd,
            t.stream,
            Expect::Survives,
        ),
        s(
            "stream/hole-not-sparse",
            Level::Should,
            "a STREAM_HOLE on a stream not opened sparse is refused",
            "virnetclientstream.c; docs/protocol.md (streams)",
            Twist::StreamHole,
            t.stream,
            Expect::Rejects,
        ),
        s(
            "stream/error-mid-stream",
            Level::Must,
            "a STREAM/ERROR after the first data ends the transfer with that error",
            "docs/protocol.md (streams)",
            Twist::StreamError,
            t.stream,
            Expect::Rejects,
        ),
    ];
    v.extend(generated(setup));
    for spec in &mut v {
        if spec.id.starts_with("client/stream/") {
            spec.hang = spec.level;
            spec.not_applicable = "the recorded session has no stream from the server";
        } else if spec.id == "client/keepalive/silence-without-keepalive" {
            spec.hang = Level::Should;
        }
        if spec.target.is_none() && spec.not_applicable.is_empty() {
            spec.not_applicable = "the recorded session has no message this case changes";
        }
    }
    v
}

/// The runner cases for `setup` (every other case needs the baseline).
pub fn cases(setup: Arc<Setup>, options: Options) -> Vec<Case> {
    // Every client message is judged in strict mode too (the schema once for the whole run).
    let strict = Arc::new(Judge::new(
        *setup.judge.limits(),
        Compat::Strict,
        setup.judge.schema().cloned(),
    ));
    let options = Arc::new(options);
    specs(&setup)
        .into_iter()
        .map(|spec| {
            let id = spec.id.clone();
            let baseline = id == "client/baseline";
            let (level, req, src) = (spec.level, spec.requirement.clone(), spec.source.clone());
            let (setup, options, strict) = (setup.clone(), options.clone(), strict.clone());
            let case = Case::new(id, level, req, src, move |ctx| {
                run(&setup, &spec, &options, &strict, ctx)
            });
            if baseline {
                case
            } else {
                case.needs(&["client/baseline"])
            }
        })
        .collect()
}

/// The last `n` non-empty lines of `s`, each cut at 200 characters.
fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| match l.char_indices().nth(200) {
            Some((i, _)) => format!("{}…", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn words(run: &ClientRun) -> String {
    let mut w = run.ending.to_string();
    let err = tail_lines(&run.stderr, 4);
    if !err.is_empty() {
        w.push_str(&format!("; stderr: {err}"));
    }
    w
}

/// One run of the client against a scripted server with `twist` at `target`, until `deadline`.
fn serve_and_run(
    setup: &Setup,
    twist: &Twist,
    target: Target,
    strict: &Arc<Judge>,
    deadline: Instant,
) -> Result<(ClientRun, Observed, Vec<WireLog>), Outcome> {
    let server = Server::start(
        setup.script.clone(),
        twist.clone(),
        target,
        &setup.listen,
        &setup.form,
        setup.judge.clone(),
        Some(strict.clone()),
        deadline + Duration::from_millis(500),
    )
    .map_err(|e| Outcome::error(format!("the scripted server cannot listen: {e}")))?;
    let argv = process::substitute(&setup.command, &server.uri);
    let run = process::run(&argv, deadline);
    let (obs, logs) = server.finish();
    Ok((run, obs, logs))
}

/// One run of a case: its outcome, wire logs and notes.
struct Once {
    outcome: Outcome,
    logs: Vec<WireLog>,
    notes: Vec<String>,
}

/// Whether the recorded session has a client message of `h`'s type, program and procedure.
fn in_session(setup: &Setup, h: &virtwire_protocol::Header) -> bool {
    setup.script.exchanges.iter().any(|e| {
        e.call.msg_type == h.msg_type && e.call.prog == h.prog && e.call.procedure == h.procedure
    })
}

/// Run the client once for `spec` (and, for an over-max reply it neither refused nor showed, once
/// more with the same field at its maximum, to learn whether it shows that field at all).
fn once(
    setup: &Setup,
    spec: &Spec,
    options: &Options,
    strict: &Arc<Judge>,
    deadline: Instant,
) -> Result<Once, Outcome> {
    let (run, obs, logs) = serve_and_run(setup, &spec.twist, spec.target, strict, deadline)?;
    let mut notes = vec![format!("client: {}", run.command)];
    notes.extend(obs.notes.iter().cloned());
    if !obs.unmatched.is_empty() {
        notes.push(format!(
            "calls the recording has no answer for (answered with an error): {}",
            obs.unmatched.join("; ")
        ));
    }
    if spec.expect != Expect::StrictXdr {
        for (h, v) in &obs.strict {
            if in_session(setup, h) {
                notes.push(format!("{v} (judged by client/strict-xdr)"));
            }
        }
    }
    let mut at_max_shown = None;
    if let Twist::Bound {
        root,
        field,
        over: true,
    } = &spec.twist
        && no_refusal(setup, &run)
        && !showed_it(setup, field, &run)
        && obs.changed
    {
        let at_max = Twist::Bound {
            root: *root,
            field: field.clone(),
            over: false,
        };
        let now = Instant::now();
        let probe_deadline = (now + options.run_timeout.saturating_sub(Duration::from_secs(1)))
            .min(deadline.max(now + Duration::from_secs(2)));
        let (probe, _, _) = serve_and_run(setup, &at_max, spec.target, strict, probe_deadline)?;
        let shown = showed_it(setup, field, &probe);
        notes.push(format!(
            "the same reply with the field at its maximum ({} items), to learn whether the client shows this field: {}, {} bytes of output, the value {}",
            field.max,
            probe.ending,
            probe.stdout_bytes,
            if shown { "shown" } else { "not shown" }
        ));
        at_max_shown = Some(shown);
    }
    let outcome = verdict(setup, spec, &run, &obs, options, at_max_shown);
    Ok(Once {
        outcome,
        logs,
        notes,
    })
}

/// Run one case: the client `options.repeat` times; differing verdicts are a flaky case.
fn run(
    setup: &Setup,
    spec: &Spec,
    options: &Options,
    strict: &Arc<Judge>,
    ctx: &mut Ctx<'_>,
) -> Result<Outcome, Outcome> {
    let replay = spec.twist == Twist::Replay;
    if !replay && spec.target.is_none() {
        return Ok(Outcome::unsupported(spec.not_applicable));
    }
    let n = options.repeat.max(1) as usize;
    // Each run's deadline leaves a second of its share for tearing down, within the case's own.
    let end = ctx
        .deadline()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now)
        .max(Instant::now());
    let mut runs: Vec<Once> = Vec::new();
    for i in 0..n {
        let now = Instant::now();
        if i > 0 && end <= now + Duration::from_millis(200) {
            ctx.note(format!(
                "only {i} of {n} runs fit in the case's deadline; the verdict is theirs"
            ));
            break;
        }
        let deadline = (now + options.run_timeout.saturating_sub(Duration::from_secs(1)))
            .min(end)
            .max(now);
        runs.push(once(setup, spec, options, strict, deadline)?);
    }
    let (chosen, outcome) = combine(&runs);
    let Some(Once { logs, notes, .. }) = runs.into_iter().nth(chosen) else {
        return Ok(outcome);
    };
    for (k, log) in logs.into_iter().enumerate() {
        ctx.attach_log(format!("conn {}", k + 1), log);
    }
    for note in notes {
        ctx.note(note);
    }
    Ok(outcome)
}

/// How bad a verdict is, for choosing among runs: a failure in any run fails the case (a client
/// that fails one run in ten has a race, not a pass).
fn badness(v: Verdict) -> u8 {
    match v {
        Verdict::Fail => 5,
        Verdict::Error => 4,
        Verdict::NonStrict => 3,
        Verdict::Pass => 2,
        Verdict::Unsupported => 1,
        Verdict::Omitted => 0,
    }
}

/// The outcome of several runs of a case, and which run it is (its wire log and notes are the
/// report's). All alike: the first. Differing: the first run with the worst verdict, its Actual
/// prefixed with the counts (`flaky: fail 8 of 10, pass 2 of 10 (run 3: …)`).
fn combine(runs: &[Once]) -> (usize, Outcome) {
    let Some(first) = runs.first() else {
        return (0, Outcome::error("the client was not run"));
    };
    let n = runs.len();
    if runs
        .iter()
        .all(|r| r.outcome.verdict == first.outcome.verdict)
    {
        let mut o = first.outcome.clone();
        if n > 1 {
            o.actual = format!("{} (the same verdict in all {n} runs)", o.actual);
        }
        return (0, o);
    }
    let (chosen, worst) = runs
        .iter()
        .enumerate()
        .max_by_key(|(i, r)| (badness(r.outcome.verdict), std::cmp::Reverse(*i)))
        .map(|(i, r)| (i, &r.outcome))
        .unwrap_or((0, &first.outcome));
    let mut counts: Vec<(Verdict, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|(v, _)| *v == r.outcome.verdict) {
            Some((_, c)) => *c += 1,
            None => counts.push((r.outcome.verdict, 1)),
        }
    }
    counts.sort_by_key(|(v, _)| std::cmp::Reverse(badness(*v)));
    let said = counts
        .iter()
        .map(|(v, c)| format!("{v} {c} of {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut o = worst.clone();
    o.actual = format!(
        "flaky: {said} (first {} run, run {} of {n}: {})",
        worst.verdict,
        chosen + 1,
        worst.actual
    );
    (chosen, o)
}

/// No evidence that the client refused anything: it exited 0 (or as against libvirtd) and wrote
/// no error line the recording did not have.
fn no_refusal(setup: &Setup, run: &ClientRun) -> bool {
    let lines = |s: &str| s.lines().filter(|l| !l.trim().is_empty()).count();
    matches!(run.ending, Ending::Exited(c) if c == 0 || c == setup.expected_exit)
        && lines(&run.stderr) <= lines(&setup.baseline_stderr)
}

/// What was observed of the client's end, as facts for known-failing signatures.
fn facts(run: &ClientRun, crash: Option<&Crash>) -> Vec<Fact> {
    let mut f = Vec::new();
    match &run.ending {
        Ending::Exited(status) => f.push(Fact::Exit { status: *status }),
        Ending::Signaled { signal, .. } => f.push(Fact::Signal {
            name: process::signal_name(*signal),
        }),
        Ending::Hung(_) => f.push(Fact::Hang),
        Ending::NotStarted(_) => {}
    }
    if let Some(c) = crash
        && c.kind != "signal"
    {
        f.push(Fact::Crash {
            line: c.line.clone(),
        });
    }
    f
}

/// The verdict for one run. `at_max_shown`: for an over-max reply the client neither refused nor
/// showed, whether the same field at its maximum shows in its output (`None`: not tried).
pub fn verdict(
    setup: &Setup,
    spec: &Spec,
    run: &ClientRun,
    obs: &Observed,
    options: &Options,
    at_max_shown: Option<bool>,
) -> Outcome {
    let crash = crash::classify(run, &options.crash);
    let mut o = judge(setup, spec, run, obs, options, crash.as_ref(), at_max_shown);
    o.facts.extend(facts(run, crash.as_ref()));
    o
}

const NO_KEEPALIVE: &str = "the client never enabled keepalive (it sent no CONNECT_SUPPORTS_FEATURE for VIR_DRV_FEATURE_PROGRAM_KEEPALIVE that was answered 1), and libvirtd starts its keepalive, PINGs included, only for a client that did (remoteDispatchConnectSupportsFeature)";

#[allow(clippy::too_many_lines)]
fn judge(
    setup: &Setup,
    spec: &Spec,
    run: &ClientRun,
    obs: &Observed,
    options: &Options,
    crash: Option<&Crash>,
    at_max_shown: Option<bool>,
) -> Outcome {
    let expected = match spec.expect {
        Expect::Succeeds => format!(
            "the client does its job: exit status {} and no error message, as against libvirtd",
            setup.expected_exit
        ),
        Expect::Survives => "the client ends by itself without a crash (any exit status)".into(),
        Expect::Rejects => {
            "the client refuses it: an error (non-zero exit, or an error message on stderr)".into()
        }
        Expect::Pongs => format!(
            "the client answers PING with PONG and does its job (exit status {})",
            setup.expected_exit
        ),
        Expect::StrictXdr => {
            "every message the client sends decodes as strict XDR (RFC 4506)".to_string()
        }
    };
    if let Ending::NotStarted(e) = &run.ending {
        return Outcome::error(format!("the client {e}"));
    }
    if let Some(c) = crash {
        // A bare signal says it all with the stderr tail; a runtime's crash names its line (for Go,
        // the `panic:` line, not the goroutine frames that end stderr).
        let actual = if c.kind == "signal" {
            words(run)
        } else {
            format!("{}; {c}", run.ending)
        };
        return Outcome::fail(expected, actual);
    }
    // Keepalive cases for a client that never asked for keepalive.
    let keepalive_off = !obs.keepalive_enabled && obs.connections > 0;
    let mut hang = spec.hang;
    let mut said = String::new();
    match spec.twist {
        Twist::ServerPing if keepalive_off => {
            return Outcome::unsupported(format!(
                "{NO_KEEPALIVE}: a server PING is not what libvirtd sends this client; {}",
                words(run)
            ));
        }
        Twist::Silence { keepalive: true } if keepalive_off => {
            return Outcome::unsupported(format!(
                "{NO_KEEPALIVE}: silence without keepalive is client/keepalive/silence-without-keepalive's case (SHOULD), judged there; {}",
                words(run)
            ));
        }
        Twist::LargestThenNothing if keepalive_off => {
            hang = Level::Should;
            said = format!(
                " ({NO_KEEPALIVE}: only a bound of its own can end this wait, judged at SHOULD as in client/keepalive/silence-without-keepalive)"
            );
        }
        _ => {}
    }
    if let Ending::Hung(_) = run.ending {
        return match hang {
            Level::Must => Outcome::fail(expected, format!("{}{said}", words(run))),
            Level::Should => Outcome::non_strict(expected, format!("{}{said}", words(run))),
        };
    }
    if !obs.violations.is_empty() {
        return Outcome::fail(
            "the client's own traffic is well-formed (framing, serials, bodies)",
            obs.violations.join("; "),
        );
    }
    if obs.connections == 0 {
        return Outcome::fail(
            format!("the client connects to the scripted server; {expected}"),
            format!("it never connected: {}", words(run)),
        );
    }
    if spec.twist != Twist::Replay && !obs.applied {
        return Outcome::unsupported(format!(
            "the client never sent the message this case changes ({})",
            words(run)
        ));
    }
    if spec.twist == Twist::OutOfOrder && !obs.pipelined {
        return Outcome::unsupported(format!(
            "the client never had two calls outstanding (it waits for each reply), so replies cannot come out of order; {}",
            words(run)
        ));
    }
    if spec.twist != Twist::Replay && !obs.changed {
        return Outcome::unsupported(format!(
            "the session has no {} to change: the case changed nothing ({})",
            spec.twist.what(),
            words(run)
        ));
    }
    let Ending::Exited(code) = run.ending else {
        return Outcome::error("unreachable");
    };
    let got = words(run);
    if !options.crash.graceful_exit(code, setup.expected_exit) {
        return Outcome::fail(
            expected,
            format!(
                "exit status {code}, which is not one of the client's graceful error exits (--error-exit {}); {got}",
                options
                    .crash
                    .error_exit
                    .iter()
                    .flatten()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
    }
    if spec.expect == Expect::StrictXdr {
        return if obs.strict.is_empty() {
            Outcome::pass(
                expected,
                format!("every message decoded in strict mode; {got}"),
            )
        } else {
            Outcome::non_strict(
                expected,
                obs.strict
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
    }
    // An error message the baseline did not print counts as complaining (virsh prints "error: …"
    // and still exits 0 when a later command in its list succeeds).
    let lines = |s: &str| s.lines().filter(|l| !l.trim().is_empty()).count();
    let complained = lines(&run.stderr) > lines(&setup.baseline_stderr);
    let full_expected = expected.clone();
    let outcome = match spec.expect {
        Expect::Succeeds if code == setup.expected_exit && !complained => {
            if spec.twist == Twist::Replay && !obs.unmatched.is_empty() {
                return Outcome::fail(
                    "the client's conversation is the recorded one",
                    format!(
                        "calls the recording has no answer for: {}",
                        obs.unmatched.join("; ")
                    ),
                );
            }
            Outcome::pass(expected, got)
        }
        Expect::Pongs if obs.pongs == 0 => Outcome::fail(
            expected,
            format!("no PONG ({} PINGs of its own); {got}", obs.pings),
        ),
        Expect::Pongs if code == setup.expected_exit && !complained => Outcome::pass(expected, got),
        Expect::Succeeds | Expect::Pongs => Outcome::fail(expected, got),
        Expect::Survives => Outcome::pass(expected, got),
        Expect::Rejects if code != 0 || complained => {
            Outcome::pass(expected, format!("{got}{said}"))
        }
        // An over-max reply taken without a word: libvirt's own XDR refuses it, so a client that
        // uses the value breaks the protocol (MUST); one whose output never shows the field may
        // have refused it silently (many virsh commands drop a failed call's error), which only
        // the same field at its maximum, shown, can tell.
        Expect::Rejects if matches!(spec.twist, Twist::Bound { over: true, .. }) => {
            let Twist::Bound { field, .. } = &spec.twist else {
                return Outcome::error("unreachable");
            };
            if showed_it(setup, field, run) {
                Outcome::fail(
                    expected,
                    format!(
                        "it accepted the over-max value and used it: {got}, no error message, and the value in its output ({} bytes{})",
                        run.stdout_bytes,
                        if run.stdout.contains(&"x".repeat(64)) {
                            ", a run of the fill byte"
                        } else {
                            ", grown by more than half the field's maximum"
                        }
                    ),
                )
            } else if at_max_shown == Some(true) {
                Outcome::pass(
                    expected,
                    format!(
                        "{got}, without an error message, and the value is not in its output although the same field at its maximum is: refused silently"
                    ),
                )
            } else {
                Outcome::unsupported(format!(
                    "inconclusive: {got}, without an error message and with nothing of the over-long value in its output ({} bytes); the client does not show this field even at its maximum, so whether it refused the value cannot be told",
                    run.stdout_bytes
                ))
            }
        }
        Expect::Rejects => match spec.level {
            Level::Must => Outcome::fail(expected, format!("it accepted it: {got}{said}")),
            Level::Should => Outcome::non_strict(expected, format!("it accepted it: {got}{said}")),
        },
        Expect::StrictXdr => Outcome::error("unreachable"),
    };
    // A message this case made the client send (not in the recorded session, so not judged by
    // client/strict-xdr) that strict XDR refuses makes a pass non-strict.
    let new_strict: Vec<&str> = obs
        .strict
        .iter()
        .filter(|(h, _)| !in_session(setup, h))
        .map(|(_, v)| v.as_str())
        .collect();
    if outcome.verdict == Verdict::Pass && !new_strict.is_empty() {
        return Outcome::non_strict(
            format!("{full_expected}; and every message the client sends is strict XDR (RFC 4506)"),
            format!("{}; {}", outcome.actual, new_strict.join("; ")),
        );
    }
    outcome
}

/// The cases generated from the schema: for every bounded string, opaque and array of the reply
/// body of every procedure the session called (with a REPLY/OK recorded), a reply whose body is the
/// type's minimal value with that field at its maximum, and one with it one over
/// (`client/limits/<procedure>/<field>/at-max`, `…/over-max`; `[0]` written `.0`); and for every
/// union in such a body whose arms do not take every discriminant, a reply with a discriminant no
/// arm takes (`client/union/<procedure>/<union>/unknown-arm`).
/// A field whose reply would not fit in a frame at its maximum is left out (its over-max case would
/// test the frame limit, not the field's).
pub fn generated(setup: &Setup) -> Vec<Spec> {
    let Some(schema) = setup.judge.schema() else {
        return Vec::new();
    };
    let payload_max = u64::from(setup.judge.limits().payload_max());
    let ex = &setup.script.exchanges;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (i, e) in ex.iter().enumerate() {
        let key = (e.call.prog, e.call.vers, e.call.procedure);
        if !e.call.msg_type.is_call() || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let Some((h, _, payload)) =
            e.answers
                .iter()
                .filter_map(|a| frame_parts(a))
                .find(|(h, _, _)| {
                    h.msg_type.is_reply() && h.status == virtwire_protocol::MessageStatus::Ok
                })
        else {
            continue;
        };
        let Ok(Some(root)) = schema.body_type(&h, payload.len()) else {
            continue;
        };
        let pname = schema
            .procedure_name(h.prog, h.procedure)
            .map_or_else(|| h.procedure.to_string(), |n| n.to_ascii_lowercase());
        let tname = schema
            .type_names()
            .find(|(_, t)| *t == root)
            .map_or_else(|| "the reply".to_string(), |(n, _)| n.to_string());
        // Every union of the reply with a discriminant no arm takes (a union with a default arm
        // takes every value and has no such case).
        for site in bounds::union_sites(schema, root) {
            let Some(key) = bounds::unknown_key(schema, site.ty) else {
                continue;
            };
            let uname = schema
                .type_names()
                .find(|(_, t)| *t == site.ty)
                .map_or_else(|| "the union".to_string(), |(n, _)| n.to_string());
            let path = if site.path.is_empty() {
                "body".to_string()
            } else {
                site.path.replace("[0]", ".0")
            };
            out.push(Spec {
                id: format!("client/union/{pname}/{path}/unknown-arm"),
                level: Level::Must,
                requirement: format!(
                    "{tname}.{} ({uname}) with discriminant {key}, which no arm takes, is refused",
                    site.path
                ),
                source: format!("RFC 4506 §4.15; the .x files: {uname}"),
                twist: Twist::Payload(bounds::with_unknown_arm(schema, root, &site, key)),
                target: Some(i),
                not_applicable: "",
                expect: Expect::Rejects,
                hang: Level::Must,
            });
        }
        for field in bounds::bounded_fields(schema, root) {
            if bounds::len_with_count(schema, root, &field, field.max) > payload_max {
                continue;
            }
            let path = field.path.replace("[0]", ".0");
            for over in [false, true] {
                let (what, expect, req) = if over {
                    (
                        "over-max",
                        Expect::Rejects,
                        format!(
                            "{tname}.{} with {} items (its maximum is {}) is refused",
                            field.path,
                            field.over(),
                            field.max
                        ),
                    )
                } else {
                    (
                        "at-max",
                        Expect::Survives,
                        format!(
                            "{tname}.{} with {} items (its maximum) is taken without a crash or hang",
                            field.path, field.max
                        ),
                    )
                };
                out.push(Spec {
                    id: format!("client/limits/{pname}/{path}/{what}"),
                    level: Level::Must,
                    requirement: req,
                    source: format!("the .x files: {tname}"),
                    twist: Twist::Bound {
                        root,
                        field: field.clone(),
                        over,
                    },
                    target: Some(i),
                    not_applicable: "",
                    expect,
                    hang: Level::Must,
                });
            }
        }
    }
    out
}

/// Whether the client's output shows a generated value of `field`: a run of 64 fill bytes (`x`),
/// or output grown by more than half the field's maximum over the recording's.
fn showed_it(setup: &Setup, field: &BoundedField, run: &ClientRun) -> bool {
    let run_of_fill = run.stdout.contains(&"x".repeat(64));
    let grown = setup
        .baseline_stdout_bytes
        .is_some_and(|b| run.stdout_bytes > b + u64::from(field.max / 2));
    run_of_fill || grown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ending: Ending, stderr: &str) -> ClientRun {
        ClientRun::for_test(ending, stderr)
    }

    #[test]
    fn how_a_client_ended_is_kept_as_facts() {
        let r = client(
            Ending::Exited(2),
            "panic: runtime error: x\n\ngoroutine 1:\n",
        );
        let c = crash::classify(&r, &CrashRules::default());
        assert_eq!(
            facts(&r, c.as_ref()),
            vec![
                Fact::Exit { status: 2 },
                Fact::Crash {
                    line: "panic: runtime error: x".into()
                }
            ]
        );
        let r = client(
            Ending::Signaled {
                signal: 11,
                core: false,
            },
            "",
        );
        let c = crash::classify(&r, &CrashRules::default());
        assert_eq!(
            facts(&r, c.as_ref()),
            vec![Fact::Signal {
                name: "SIGSEGV".into()
            }]
        );
        let r = client(Ending::Hung(Duration::from_secs(3)), "");
        assert_eq!(facts(&r, None), vec![Fact::Hang]);
        let r = client(Ending::Exited(1), "error: no\n");
        let c = crash::classify(&r, &CrashRules::default());
        assert_eq!(facts(&r, c.as_ref()), vec![Fact::Exit { status: 1 }]);
    }

    #[test]
    fn runs_that_differ_are_flaky_with_the_worst_verdict_and_the_counts() {
        let once = |o: Outcome| Once {
            outcome: o,
            logs: Vec::new(),
            notes: Vec::new(),
        };
        let runs = [
            once(Outcome::pass("e", "ok")),
            once(
                Outcome::fail("e", "killed by SIGSEGV").with_fact(Fact::Signal {
                    name: "SIGSEGV".into(),
                }),
            ),
            once(Outcome::pass("e", "ok")),
            once(Outcome::fail("e", "hang")),
        ];
        let (chosen, o) = combine(&runs);
        assert_eq!(chosen, 1);
        assert_eq!(o.verdict, Verdict::Fail);
        assert_eq!(
            o.actual,
            "flaky: fail 2 of 4, pass 2 of 4 (first fail run, run 2 of 4: killed by SIGSEGV)"
        );
        assert_eq!(o.facts.len(), 1);
        let (chosen, o) = combine(&runs[..1]);
        assert_eq!((chosen, o.actual.as_str()), (0, "ok"));
        let same = [
            once(Outcome::pass("e", "ok")),
            once(Outcome::pass("e", "ok")),
        ];
        assert_eq!(
            combine(&same).1.actual,
            "ok (the same verdict in all 2 runs)"
        );
        // A run the client was never asked for (unsupported) does not hide a pass.
        let mixed = [
            once(Outcome::unsupported("never pipelined")),
            once(Outcome::pass("e", "ok")),
        ];
        assert_eq!(combine(&mixed).1.verdict, Verdict::Pass);
    }
}
