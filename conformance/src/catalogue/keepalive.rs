//! Keepalive (docs/protocol.md §4; libvirt `virkeepaliveprotocol.x`, `virkeepalive.c`): PING is answered
//! with PONG, also while a call is being worked on; anything else on the keepalive program is
//! ignored; a client that asked for keepalive and then leaves the server's PINGs unanswered is
//! dropped after `keepalive_interval × (keepalive_count + 1)` seconds of silence (libvirtd.conf).

use std::time::{Duration, Instant};

use virtwire_protocol::KeepaliveProc;
use virtwire_protocol::MessageType;
use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};

use super::OPEN;
use super::world::{self, BIG};
use crate::runner::ctx::proc;
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::Event;

const SRC: &str = "docs/protocol.md §4 (keepalive); src/rpc/virkeepalive.c";
/// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE.
const FEATURE_KEEPALIVE: i32 = 10;

/// A keepalive message the server must ignore: silence, and the connection still works.
fn ignored(ctx: &mut Ctx<'_>, procedure: i32) -> CaseResult {
    let mut peer = ctx.opened()?;
    ctx.send(&mut peer, &KeepaliveProc::from_raw(procedure).frame())?;
    let silence = ctx.env().silence;
    ctx.expect_silence(&mut peer, silence)?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(&mut peer, s)?;
    Ok(Outcome::pass(
        "no answer, connection kept",
        format!(
            "nothing for {:.1} s; the next call answered",
            silence.as_secs_f64()
        ),
    ))
}

/// A client that asked for keepalive and never answers: the server PINGs `count` times, `interval`
/// apart, then drops it. The drop time is measured from our last message.
fn unanswered_ping(ctx: &mut Ctx<'_>) -> CaseResult {
    let local = world::local(
        ctx,
        "the case must know the server's keepalive_interval and keepalive_count",
    )?;
    let (interval, count) = local.keepalive;
    if interval == 0 || count == 0 {
        return Ok(Outcome::unsupported(format!(
            "the server's keepalive is off (keepalive_interval {interval}, keepalive_count {count})"
        )));
    }
    let mut peer = ctx.opened()?;
    peer.auto_pong = false;
    let sent = Instant::now();
    let s = ctx.call(
        &mut peer,
        REMOTE_PROGRAM,
        proc::CONNECT_SUPPORTS_FEATURE,
        &FEATURE_KEEPALIVE.to_be_bytes(),
    )?;
    ctx.expect_ok(&mut peer, s)?;
    let due = Duration::from_secs(u64::from(interval) * (u64::from(count) + 1));
    let expected = format!(
        "{count} PING(s) {interval} s apart, then the connection closed {:.0} s (interval × (count + 1)) after our last message",
        due.as_secs_f64()
    );
    let deadline = sent + due * 2 + Duration::from_secs(1);
    let mut pings = Vec::new();
    let ev = loop {
        match peer.next_event(deadline) {
            Event::Frame(f)
                if f.header().prog == KEEPALIVE_PROGRAM && f.header().procedure == 1 =>
            {
                pings.push(sent.elapsed());
            }
            Event::Frame(_) => {}
            ev => break ev,
        }
    };
    let at = sent.elapsed();
    let times = pings
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ");
    let what = format!(
        "PING(s) at {}; {} at {:.2} s",
        if times.is_empty() {
            "(none)".into()
        } else {
            times
        },
        ctx.describe(&peer, &ev),
        at.as_secs_f64()
    );
    let closed = matches!(ev, Event::Closed { .. } | Event::Reset(_));
    // Timers of a loaded machine run late, never early: half a second of slack before, the
    // whole deadline after.
    let early = at + Duration::from_millis(500) < due;
    if !closed || early || pings.len() != count as usize {
        return Ok(Outcome::fail(expected, what));
    }
    Ok(Outcome::pass(expected, what))
}

/// A PING sent while a call is being worked on is answered at once, before the call's reply.
fn ping_during_long_call(ctx: &mut Ctx<'_>) -> CaseResult {
    let local = world::local(
        ctx,
        "the long call is GET_ALL_DOMAIN_STATS on a big test-driver world file",
    )?;
    let uri = BIG.install(&local, "big")?;
    let mut peer = world::open_world(ctx, &uri)?;
    peer.auto_pong = false;
    let t0 = Instant::now();
    let s = ctx.call(
        &mut peer,
        REMOTE_PROGRAM,
        proc::CONNECT_GET_ALL_DOMAIN_STATS,
        &world::all_stats_args(),
    )?;
    ctx.send(&mut peer, &KeepaliveProc::Ping.frame())?;
    let expected = "PONG before the reply to the call in progress";
    let deadline = ctx.read_deadline();
    let mut pong = None;
    loop {
        match peer.next_event(deadline) {
            Event::Frame(f)
                if f.header().prog == KEEPALIVE_PROGRAM && f.header().procedure == 2 =>
            {
                pong = Some(t0.elapsed());
            }
            Event::Frame(f) if f.header().msg_type.is_reply() && f.header().serial == s => {
                let r = peer.judge_frame(&f);
                let at = t0.elapsed().as_secs_f64();
                return Ok(match pong {
                    Some(p) => Outcome::pass(
                        expected,
                        format!(
                            "PONG at {:.3} s; the reply at {at:.2} s: {r}",
                            p.as_secs_f64()
                        ),
                    ),
                    None => Outcome::fail(
                        expected,
                        format!("the reply at {at:.2} s ({r}) with no PONG before it"),
                    ),
                });
            }
            Event::Frame(_) => {}
            ev => return Ok(Outcome::fail(expected, ctx.describe(&peer, &ev))),
        }
    }
}

/// The keepalive cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "keepalive/feature-supported",
            Level::Must,
            "CONNECT_SUPPORTS_FEATURE(10, keepalive) answers 1 on a server that speaks keepalive",
            "docs/protocol.md §4, §6 (the client asks before CONNECT_OPEN)",
            |ctx| {
                let mut peer = ctx.connect()?;
                let s = ctx.call(
                    &mut peer,
                    REMOTE_PROGRAM,
                    proc::CONNECT_SUPPORTS_FEATURE,
                    &FEATURE_KEEPALIVE.to_be_bytes(),
                )?;
                let r = ctx.expect_ok(&mut peer, s)?;
                match r.body.get("supported").and_then(|v| v.as_i64()) {
                    Some(1) => Ok(Outcome::pass("supported = 1", r.body.to_string())),
                    Some(0) => Ok(Outcome::unsupported(
                        "the server does not speak keepalive (supported = 0)",
                    )),
                    _ if r.body.get("hex").is_some() => Ok(Outcome::error(
                        "the reply's body needs libvirt's .x files to decode (--protocol-dir)",
                    )),
                    _ => Ok(Outcome::fail("{\"supported\": 0 or 1}", r.to_string())),
                }
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "keepalive/ping-gets-pong",
            Level::Must,
            "A keepalive PING is answered with PONG (type MESSAGE, serial 0, empty)",
            SRC,
            |ctx| {
                let mut peer = ctx.opened()?;
                peer.auto_pong = false;
                ctx.send(&mut peer, &KeepaliveProc::Ping.frame())?;
                let deadline = ctx.read_deadline();
                loop {
                    match peer.next_event(deadline) {
                        Event::Frame(f) if f.header().prog == KEEPALIVE_PROGRAM => {
                            let h = f.header();
                            let r = peer.judge_frame(&f);
                            if h.procedure == 2
                                && h.msg_type == MessageType::Message
                                && f.payload().is_empty()
                            {
                                return Ok(Outcome::pass("PONG", r.to_string()));
                            }
                            if h.procedure != 1 {
                                return Ok(Outcome::fail("PONG", r.to_string()));
                            }
                        }
                        Event::Frame(_) => {}
                        ev => return Ok(Outcome::fail("PONG", ctx.describe(&peer, &ev))),
                    }
                }
            },
        )
        .needs(&["keepalive/feature-supported"]),
        Case::new(
            "keepalive/unanswered-ping-drops-client",
            Level::Must,
            "A client that asked for keepalive and leaves the server's PINGs unanswered gets keepalive_count PINGs, then is dropped after interval × (count + 1) s of silence",
            "docs/protocol.md §4 (keepalive); libvirtd.conf keepalive_interval, keepalive_count; src/rpc/virkeepalive.c",
            unanswered_ping,
        )
        .needs(&["keepalive/feature-supported"]),
        Case::new(
            "keepalive/ping-during-long-call",
            Level::Must,
            "A PING sent while a long call is being worked on is answered with PONG before that call's reply",
            "docs/protocol.md §4 (keepalive is answered by the connection, not by the call's worker)",
            ping_during_long_call,
        )
        .needs(&["keepalive/ping-gets-pong"]),
        Case::new(
            "keepalive/unsolicited-pong-ignored",
            Level::Must,
            "A PONG nobody asked for is ignored",
            SRC,
            |ctx| ignored(ctx, 2),
        )
        .needs(&["keepalive/feature-supported"]),
        Case::new(
            "keepalive/unknown-procedure-ignored",
            Level::Must,
            "A keepalive message with an unknown procedure (3) is ignored",
            SRC,
            |ctx| ignored(ctx, 3),
        )
        .needs(&["keepalive/feature-supported"]),
    ]
}
