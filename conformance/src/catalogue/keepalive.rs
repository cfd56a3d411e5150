//! Keepalive (PROTOCOL.md §4; libvirt `virkeepaliveprotocol.x`, `virkeepalive.c`): PING is answered
//! with PONG; anything else on the keepalive program is ignored.

use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::{FrameBuilder, Header, MessageStatus, MessageType};

use super::OPEN;
use crate::runner::ctx::proc;
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::Event;

const SRC: &str = "PROTOCOL.md §4 (keepalive); src/rpc/virkeepalive.c";
/// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE.
const FEATURE_KEEPALIVE: i32 = 10;

fn keepalive(procedure: i32) -> Vec<u8> {
    FrameBuilder::new(Header::new(
        KEEPALIVE_PROGRAM,
        1,
        procedure,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    ))
    .build_unchecked()
}

/// A keepalive message the server must ignore: silence, and the connection still works.
fn ignored(ctx: &mut Ctx<'_>, procedure: i32) -> CaseResult {
    let mut peer = ctx.opened()?;
    ctx.send(&mut peer, &keepalive(procedure))?;
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

/// The keepalive cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "keepalive/feature-supported",
            Level::Must,
            "CONNECT_SUPPORTS_FEATURE(10, keepalive) answers 1 on a server that speaks keepalive",
            "PROTOCOL.md §4, §6 (the client asks before CONNECT_OPEN)",
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
                ctx.send(&mut peer, &keepalive(1))?;
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
