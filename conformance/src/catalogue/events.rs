//! Events (docs/protocol.md §1, §6; libvirt `remote_daemon_dispatch.c`): a client registers a callback
//! (CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY → callbackID), the server sends a MESSAGE for each
//! event with that id, and after CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY sends none. The cases
//! that cause events suspend and resume a running domain of the shared world, so they run alone
//! and always resume it.

use std::time::Instant;

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{MessageStatus, MessageType};

use super::{OPEN, running_domain};
use crate::runner::ctx::{code, no_frame, proc};
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::{Event, Peer, Reply};

const SRC: &str = "docs/protocol.md §1 (MESSAGE), §6 (DOMAIN_EVENT_CALLBACK_LIFECYCLE 318); src/remote/remote_daemon_dispatch.c";
/// Where libvirt 9.0.0 refuses an unknown callbackID.
const SRC_DEREGISTER_UNKNOWN: &str = "src/remote/remote_daemon_dispatch.c \
    remoteDispatchConnectDomainEventCallbackDeregisterAny (no callback with that id: \
    virReportError(VIR_ERR_INTERNAL_ERROR, \"domain event callback %d not registered\"))";
/// VIR_DOMAIN_EVENT_ID_LIFECYCLE.
const EVENT_ID_LIFECYCLE: i32 = 0;
/// VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_RESUMED.
const SUSPENDED: i64 = 3;
const RESUMED: i64 = 4;

/// Register a lifecycle callback for every domain: its callbackID.
fn register(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<i64, Outcome> {
    let mut args = EVENT_ID_LIFECYCLE.to_be_bytes().to_vec();
    args.extend(0u32.to_be_bytes()); // dom: absent (every domain)
    let s = ctx.call(
        peer,
        REMOTE_PROGRAM,
        proc::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
        &args,
    )?;
    let r = ctx.expect_ok(peer, s)?;
    r.body
        .get("callbackID")
        .and_then(|c| c.as_i64())
        .ok_or_else(|| Outcome::fail("REPLY/OK with a callbackID", r.to_string()))
}

fn deregister(ctx: &mut Ctx<'_>, peer: &mut Peer, id: i64) -> Result<Reply, Outcome> {
    let id = i32::try_from(id).unwrap_or(-1);
    let s = ctx.call(
        peer,
        REMOTE_PROGRAM,
        proc::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
        &id.to_be_bytes(),
    )?;
    ctx.expect_reply(peer, s)
}

/// Suspend (`true`) or resume the domain; the call must succeed.
fn set_paused(ctx: &mut Ctx<'_>, peer: &mut Peer, dom: &[u8], paused: bool) -> Result<(), Outcome> {
    let p = if paused {
        proc::DOMAIN_SUSPEND
    } else {
        proc::DOMAIN_RESUME
    };
    let s = ctx.call(peer, REMOTE_PROGRAM, p, dom)?;
    ctx.expect_ok(peer, s).map(|_| ())
}

/// Resume the domain on a connection of its own, whatever state the case left it in.
fn restore(ctx: &mut Ctx<'_>, dom: &[u8]) {
    if let Ok(mut p) = ctx.opened()
        && let Ok(s) = ctx.call(&mut p, REMOTE_PROGRAM, proc::DOMAIN_RESUME, dom)
    {
        let _ = ctx.expect_reply(&mut p, s);
    }
}

/// Lifecycle MESSAGEs that arrive until `deadline`: (callbackID, domain name, event).
fn lifecycle_events(
    ctx: &Ctx<'_>,
    peer: &mut Peer,
    want: usize,
    deadline: Instant,
) -> (Vec<(i64, String, i64)>, Option<String>) {
    let mut got = Vec::new();
    while got.len() < want {
        match peer.next_event(deadline) {
            Event::Frame(f) => {
                let h = *f.header();
                if h.prog != REMOTE_PROGRAM || h.msg_type != MessageType::Message {
                    continue;
                }
                let r = peer.judge_frame(&f);
                if h.procedure != proc::DOMAIN_EVENT_CALLBACK_LIFECYCLE
                    || h.status != MessageStatus::Ok
                {
                    return (got, Some(format!("an unexpected MESSAGE: {r}")));
                }
                let cb = r
                    .body
                    .get("callbackID")
                    .and_then(|c| c.as_i64())
                    .unwrap_or(-1);
                let msg = r.body.get("msg");
                let name = msg
                    .and_then(|m| m.get("dom"))
                    .and_then(|d| d.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("?")
                    .to_string();
                let event = msg
                    .and_then(|m| m.get("event"))
                    .and_then(|e| e.as_i64())
                    .unwrap_or(-1);
                got.push((cb, name, event));
            }
            Event::Timeout => return (got, None),
            other => return (got, Some(ctx.describe(peer, &other))),
        }
    }
    (got, None)
}

fn show(events: &[(i64, String, i64)]) -> String {
    if events.is_empty() {
        return "no event".into();
    }
    events
        .iter()
        .map(|(cb, name, ev)| format!("callback {cb}: {name} event {ev}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Register, suspend and resume: both lifecycle events must come with the callback's id.
fn received(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut peer = ctx.opened()?;
    let (name, dom) = running_domain(ctx, &mut peer)?;
    let id = register(ctx, &mut peer)?;
    let paused = set_paused(ctx, &mut peer, &dom, true)
        .and_then(|()| set_paused(ctx, &mut peer, &dom, false));
    if let Err(o) = paused {
        restore(ctx, &dom);
        return Err(o);
    }
    let (got, end) = lifecycle_events(ctx, &mut peer, 2, ctx.read_deadline());
    let want = vec![(id, name.clone(), SUSPENDED), (id, name, RESUMED)];
    let expected = format!("MESSAGE 318 for callback {id}: SUSPENDED (3), then RESUMED (4)");
    let r = deregister(ctx, &mut peer, id)?;
    if got != want {
        let extra = end.map_or(String::new(), |e| format!("; then {e}"));
        return Ok(Outcome::fail(expected, format!("{}{extra}", show(&got))));
    }
    if r.header.status != MessageStatus::Ok {
        return Ok(Outcome::fail(
            "DEREGISTER_ANY of a registered callback answered REPLY/OK",
            r.to_string(),
        ));
    }
    Ok(Outcome::pass(
        expected,
        format!("{}; deregistered: {r}", show(&got)),
    ))
}

/// After DEREGISTER_ANY, suspend and resume must bring no event.
fn none_after_deregister(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut peer = ctx.opened()?;
    let (_, dom) = running_domain(ctx, &mut peer)?;
    let id = register(ctx, &mut peer)?;
    let r = deregister(ctx, &mut peer, id)?;
    if r.header.status != MessageStatus::Ok {
        return Ok(Outcome::fail(
            "DEREGISTER_ANY answered REPLY/OK",
            r.to_string(),
        ));
    }
    let paused = set_paused(ctx, &mut peer, &dom, true)
        .and_then(|()| set_paused(ctx, &mut peer, &dom, false));
    if let Err(o) = paused {
        restore(ctx, &dom);
        return Err(o);
    }
    // Every frame from the resume on is examined until the follow-up's reply (events the
    // suspend caused and set aside meanwhile included): any MESSAGE fails the case.
    let quiet = ctx.expect_no_answer_until_followup(
        &mut peer,
        "no MESSAGE after DEREGISTER_ANY (the domain suspended and resumed), until the next \
         call's reply",
        no_frame,
        |ctx, peer| {
            let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
            ctx.expect_ok(peer, s).map(|r| r.to_string())
        },
    );
    let (then, _) = quiet?;
    Ok(Outcome::pass(
        "no MESSAGE after DEREGISTER_ANY, suspend and resume, until the next call's reply",
        format!(
            "callback {id} deregistered; nothing came for {:.1} s, nor before CONNECT_GET_TYPE's reply ({then})",
            ctx.env().silence.as_secs_f64()
        ),
    ))
}

/// The event cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "events/lifecycle-received",
            Level::Must,
            "A registered lifecycle callback gets one MESSAGE per event (suspend, resume) with its callbackID; deregistering it is answered REPLY/OK",
            SRC,
            received,
        )
        .needs(&[OPEN])
        .exclusive(),
        Case::new(
            "events/none-after-deregister",
            Level::Must,
            "After DEREGISTER_ANY the callback gets no more MESSAGEs",
            SRC,
            none_after_deregister,
        )
        .needs(&["events/lifecycle-received"])
        .exclusive(),
        Case::new(
            "events/deregister-unknown-id",
            Level::Must,
            "DEREGISTER_ANY of a callbackID never registered gets REPLY/ERROR VIR_ERR_INTERNAL_ERROR \"domain event callback N not registered\"; the connection stays usable",
            SRC_DEREGISTER_UNKNOWN,
            |ctx| {
                let mut peer = ctx.opened()?;
                let id: i32 = 0x3141_5926;
                let s = ctx.call(
                    &mut peer,
                    REMOTE_PROGRAM,
                    proc::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
                    &id.to_be_bytes(),
                )?;
                let want = format!("domain event callback {id} not registered");
                let r = ctx.expect_error(&mut peer, s, Some(code::INTERNAL_ERROR), &want)?;
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
                ctx.expect_ok(&mut peer, s)?;
                Ok(Outcome::pass(
                    format!("REPLY/ERROR code {} {want:?}, connection kept", code::INTERNAL_ERROR),
                    format!("{r}; the next call answered"),
                ))
            },
        )
        .needs(&[OPEN]),
    ]
}
