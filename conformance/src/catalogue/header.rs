//! The header: message types a client may not send, programs, versions, procedures, statuses and
//! serials (docs/protocol.md §1, §4; libvirt `virNetServerProcessMsg`, `virNetServerProgramDispatch`).

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, MessageStatus, MessageType};

use super::OPEN;
use crate::runner::ctx::{code, proc};
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};

const SRC_DISPATCH: &str =
    "docs/protocol.md §4; src/rpc/virnetserverprogram.c virNetServerProgramDispatch";

/// On an open connection, a message of type `t` from the client gets no answer, and the connection
/// keeps working.
fn ignored_type(ctx: &mut Ctx<'_>, t: MessageType) -> CaseResult {
    let mut peer = ctx.opened()?;
    let f = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, 100)
        .msg_type(t)
        .build_unchecked();
    ctx.send(&mut peer, &f)?;
    let silence = ctx.env().silence;
    ctx.expect_silence(&mut peer, silence)?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(&mut peer, s)?;
    Ok(Outcome::pass(
        format!("no answer to type {}, connection kept", t.raw()),
        format!(
            "nothing for {:.1} s, then CONNECT_GET_TYPE answered on the same connection",
            silence.as_secs_f64()
        ),
    ))
}

/// On an open connection, `frame` (serial `serial`) gets REPLY/ERROR `code` with `contains`, and the
/// reply echoes the call's program, version and procedure.
fn rejected(ctx: &mut Ctx<'_>, frame: FrameBuilder, code: i32, contains: &str) -> CaseResult {
    let mut peer = ctx.opened()?;
    let h = *frame.header();
    ctx.send(&mut peer, &frame.build_unchecked())?;
    let r = ctx.expect_error(&mut peer, h.serial, Some(code), contains)?;
    if (r.header.prog, r.header.vers, r.header.procedure) != (h.prog, h.vers, h.procedure) {
        return Ok(Outcome::fail(
            format!(
                "the error reply echoes prog {:#x} vers {} proc {}",
                h.prog, h.vers, h.procedure
            ),
            r.to_string(),
        ));
    }
    Ok(Outcome::pass(
        format!("REPLY/ERROR code {code} containing {contains:?}"),
        r.to_string(),
    ))
}

/// A remote procedure number inside the table that no CALL may reach: the first number the schema
/// skips, else the first procedure with a MESSAGE body and no args or ret (an event).
fn hole_in_table(ctx: &Ctx<'_>) -> Option<(i32, String)> {
    let prog = ctx.env().judge.schema()?.program(REMOTE_PROGRAM, 1)?;
    let list = prog.procedure_list();
    let last = list.last()?.number;
    if let Some(n) = (1..last).find(|n| prog.procedure(*n).is_none()) {
        return Some((n, format!("a gap in 1..{last}")));
    }
    list.iter()
        .find(|p| p.msg.is_some() && p.args.is_none() && p.ret.is_none())
        .map(|p| {
            (
                p.number,
                format!(
                    "1..{last} has no gap; {} is an event (a MESSAGE body only)",
                    p.name
                ),
            )
        })
}

/// The header cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "header/client-sends-reply",
            Level::Must,
            "A REPLY from a client is dropped without an answer; the connection stays usable",
            SRC_DISPATCH,
            |ctx| ignored_type(ctx, MessageType::Reply),
        )
        .needs(&[OPEN]),
        Case::new(
            "header/client-sends-message",
            Level::Must,
            "A MESSAGE (event) from a client on the remote program is dropped without an answer",
            SRC_DISPATCH,
            |ctx| ignored_type(ctx, MessageType::Message),
        )
        .needs(&[OPEN]),
        Case::new(
            "header/client-sends-stream-hole",
            Level::Must,
            "A STREAM_HOLE for no open stream is dropped without an answer",
            SRC_DISPATCH,
            |ctx| ignored_type(ctx, MessageType::StreamHole),
        )
        .needs(&[OPEN]),
        Case::new(
            "header/type-unknown",
            Level::Must,
            "A message type libvirt does not define (7, 0xFFFFFFFF) is dropped without an answer",
            SRC_DISPATCH,
            |ctx| {
                ignored_type(ctx, MessageType::from_raw(7))?;
                ignored_type(ctx, MessageType::from_raw(-1))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/unknown-program",
            Level::Must,
            "A CALL to a program the server does not serve gets REPLY/ERROR \"Cannot find program\" (VIR_ERR_RPC)",
            "docs/protocol.md §4, §11; src/rpc/virnetserver.c",
            |ctx| {
                let f = FrameBuilder::call(0x1234_5678, 1, 7);
                rejected(ctx, f, code::RPC, "Cannot find program")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/wrong-version",
            Level::Must,
            "A CALL to the remote program with version 2 gets REPLY/ERROR \"Cannot find program … version 2\"",
            "docs/protocol.md §4, §11",
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, 8).vers(2);
                rejected(ctx, f, code::RPC, "version 2")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/unknown-procedure",
            Level::Must,
            "A procedure number past the table gets REPLY/ERROR \"unknown procedure\"",
            SRC_DISPATCH,
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, 9999, 9);
                rejected(ctx, f, code::RPC, "unknown procedure: 9999")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/negative-procedure",
            Level::Must,
            "A negative procedure number gets REPLY/ERROR \"unknown procedure\" (never an index)",
            "docs/protocol.md §4, §8 (CVE-2012-4423)",
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, -1, 10);
                rejected(ctx, f, code::RPC, "unknown procedure: -1")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/procedure-zero",
            Level::Must,
            "Procedure 0 (no such remote procedure) gets REPLY/ERROR \"unknown procedure\"",
            SRC_DISPATCH,
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, 0, 11);
                rejected(ctx, f, code::RPC, "unknown procedure: 0")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/call-with-status-error",
            Level::Must,
            "A CALL whose status is not OK gets REPLY/ERROR \"Unexpected message status\"",
            SRC_DISPATCH,
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, 12)
                    .status(MessageStatus::Error);
                rejected(ctx, f, code::RPC, "Unexpected message status")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/call-with-status-continue",
            Level::Must,
            "A CALL with status CONTINUE (a stream status) gets REPLY/ERROR \"Unexpected message status 2\"",
            SRC_DISPATCH,
            |ctx| {
                let f = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, 13)
                    .status(MessageStatus::Continue);
                rejected(ctx, f, code::RPC, "Unexpected message status 2")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/procedure-in-gap",
            Level::Must,
            "A procedure number inside the table with no handler (a number the .x skips; else an event procedure, server-to-client only) gets REPLY/ERROR \"unknown procedure\"",
            "docs/protocol.md §4, §8 (CVE-2012-4423: holes in the dispatch table)",
            |ctx| {
                let Some((number, what)) = hole_in_table(ctx) else {
                    return Ok(Outcome::error(
                        "no schema: the procedure table comes from libvirt's .x files (--protocol-dir)",
                    ));
                };
                ctx.note(format!("procedure {number}: {what}"));
                let f = FrameBuilder::call(REMOTE_PROGRAM, number, 14);
                rejected(ctx, f, code::RPC, &format!("unknown procedure: {number}"))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "header/serial-echoed",
            Level::Must,
            "A reply carries its call's serial, 0 and 0xFFFFFFFF included",
            "docs/protocol.md §1 (serial rules)",
            |ctx| {
                let mut peer = ctx.opened()?;
                let mut seen = Vec::new();
                for serial in [0u32, u32::MAX, 0x8000_0000] {
                    let f = FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, serial)
                        .build_unchecked();
                    ctx.send(&mut peer, &f)?;
                    let r = ctx.expect_ok(&mut peer, serial)?;
                    seen.push(format!("{:#x}", r.header.serial));
                }
                Ok(Outcome::pass(
                    "REPLY/OK with serials 0x0, 0xffffffff, 0x80000000",
                    format!("REPLY/OK with serials {}", seen.join(", ")),
                ))
            },
        )
        .needs(&[OPEN]),
    ]
}
