//! The client cases: each runs the client once against the scripted server with one thing changed,
//! and judges how the client ended and what it put on the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use virtwire_protocol::header::REMOTE_PROGRAM;

use super::Setup;
use super::process::{self, ClientRun, Ending};
use super::server::{Observed, Server, Target, Twist};
use crate::runner::ctx::proc;
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::frames::{frame_header, frame_json, frame_parts};
use virtwire_protocol::schema::bounds;

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
pub fn cases(setup: Arc<Setup>) -> Vec<Case> {
    specs(&setup)
        .into_iter()
        .map(|spec| {
            let id = spec.id.clone();
            let baseline = id == "client/baseline";
            let (level, req, src) = (spec.level, spec.requirement.clone(), spec.source.clone());
            let setup = setup.clone();
            let case = Case::new(id, level, req, src, move |ctx| run(&setup, &spec, ctx));
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

/// Run one case.
fn run(setup: &Setup, spec: &Spec, ctx: &mut Ctx<'_>) -> Result<Outcome, Outcome> {
    let baseline = spec.twist == Twist::Replay;
    if !baseline && spec.target.is_none() {
        return Ok(Outcome::unsupported(spec.not_applicable));
    }
    // The client's deadline leaves a second of the case's for tearing down.
    let deadline = ctx
        .deadline()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now)
        .max(Instant::now());
    let server = Server::start(
        setup.script.clone(),
        spec.twist.clone(),
        spec.target,
        &setup.listen,
        &setup.form,
        setup.judge.clone(),
        deadline + Duration::from_millis(500),
    )
    .map_err(|e| Outcome::error(format!("the scripted server cannot listen: {e}")))?;
    let argv = process::substitute(&setup.command, &server.uri);
    let run = process::run(&argv, deadline);
    let (obs, logs) = server.finish();
    for (n, log) in logs.into_iter().enumerate() {
        ctx.attach_log(format!("conn {}", n + 1), log);
    }
    ctx.note(format!("client: {}", run.command));
    for n in &obs.notes {
        ctx.note(n.clone());
    }
    if !obs.unmatched.is_empty() {
        ctx.note(format!(
            "calls the recording has no answer for (answered with an error): {}",
            obs.unmatched.join("; ")
        ));
    }
    Ok(verdict(setup, spec, &run, &obs))
}

/// The verdict for one run.
pub fn verdict(setup: &Setup, spec: &Spec, run: &ClientRun, obs: &Observed) -> Outcome {
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
    };
    match &run.ending {
        Ending::NotStarted(e) => return Outcome::error(format!("the client {e}")),
        Ending::Signaled { .. } => return Outcome::fail(expected, words(run)),
        Ending::Hung(_) => {
            return match spec.hang {
                Level::Must => Outcome::fail(expected, words(run)),
                Level::Should => Outcome::non_strict(expected, words(run)),
            };
        }
        Ending::Exited(_) => {}
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
    let Ending::Exited(code) = run.ending else {
        return Outcome::error("unreachable");
    };
    let got = words(run);
    // An error message the baseline did not print counts as complaining (virsh prints "error: …"
    // and still exits 0 when a later command in its list succeeds).
    let lines = |s: &str| s.lines().filter(|l| !l.trim().is_empty()).count();
    let complained = lines(&run.stderr) > lines(&setup.baseline_stderr);
    match spec.expect {
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
        Expect::Rejects if code != 0 || complained => Outcome::pass(expected, got),
        // A generated over-max reply that the client neither reported nor showed: libvirt's
        // decoder refuses it and many commands drop a failed call's error silently (virsh dominfo
        // and the OS type); accepted is said only with evidence in the output.
        Expect::Rejects
            if matches!(spec.twist, Twist::Bound { .. }) && !showed_it(setup, spec, run) =>
        {
            Outcome::pass(
                expected,
                format!(
                    "{got}, without an error message and with nothing of the over-long value in its output ({} bytes): refused silently, or not shown",
                    run.stdout_bytes
                ),
            )
        }
        Expect::Rejects => match spec.level {
            Level::Must => Outcome::fail(expected, format!("it accepted it: {got}")),
            Level::Should => Outcome::non_strict(expected, format!("it accepted it: {got}")),
        },
    }
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

/// Whether the client's output shows a generated over-max value: a run of 64 fill bytes (`x`), or
/// output grown by more than half the field's maximum over the recording's.
fn showed_it(setup: &Setup, spec: &Spec, run: &ClientRun) -> bool {
    let Twist::Bound { field, .. } = &spec.twist else {
        return false;
    };
    let run_of_fill = run.stdout.contains(&"x".repeat(64));
    let grown = setup
        .baseline_stdout_bytes
        .is_some_and(|b| run.stdout_bytes > b + u64::from(field.max / 2));
    run_of_fill || grown
}
