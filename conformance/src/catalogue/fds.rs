//! CALL_WITH_FDS (docs/protocol.md §1): after the header, a 4-byte count of file descriptors, which
//! travel out of band (SCM_RIGHTS, unix sockets only); at most VIR_NET_MESSAGE_NUM_FDS_MAX = 32.
//! Over TCP no descriptor can come, so a server must not wait for one: libvirtd 9.0 closes the
//! connection. A count over the maximum is refused on any transport.

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, MessageStatus, MessageType};

use super::OPEN;
use crate::runner::ctx::proc;
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::Event;

const SRC: &str = "docs/protocol.md §1 (FD passing, VIR_NET_MESSAGE_NUM_FDS_MAX = 32); src/rpc/virnetmessage.c virNetMessageDecodeNumFDs";

/// CONNECT_GET_TYPE as CALL_WITH_FDS announcing `n` descriptors (none is sent).
fn with_fds(serial: u32, n: u32) -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, serial)
        .msg_type(MessageType::CallWithFds)
        .nfds(Some(n))
        .build_unchecked()
}

/// True when the target is reached over a unix socket, where descriptors could come.
fn over_unix(ctx: &Ctx<'_>) -> bool {
    ctx.env().connector.describe().contains("+unix")
}

/// A count that cannot be honoured: the server refuses it (REPLY/ERROR) or closes, never waits for
/// descriptors; and it goes on serving others.
fn refused(ctx: &mut Ctx<'_>, n: u32) -> CaseResult {
    let mut peer = ctx.opened()?;
    let s = peer.serial();
    ctx.send(&mut peer, &with_fds(s, n))?;
    let expected = format!(
        "CALL_WITH_FDS announcing {n} descriptor(s) that cannot come: REPLY/ERROR or a close, not a wait"
    );
    let deadline = ctx.read_deadline();
    let how = match peer.reply(s, deadline) {
        Ok(r) if r.header.status == MessageStatus::Error => r.to_string(),
        Ok(r) => return Ok(Outcome::fail(expected, r.to_string())),
        Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => ctx.describe(&peer, &ev),
        Err(ev) => return Ok(Outcome::fail(expected, ctx.describe(&peer, &ev))),
    };
    ctx.expect_still_serving()?;
    Ok(Outcome::pass(
        expected,
        format!("{how}; the server serves others"),
    ))
}

/// The FD cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "fds/count-0",
            Level::Must,
            "CALL_WITH_FDS with 0 descriptors is dispatched like a CALL (REPLY/OK)",
            SRC,
            |ctx| {
                let mut peer = ctx.opened()?;
                let s = peer.serial();
                ctx.send(&mut peer, &with_fds(s, 0))?;
                let r = ctx.expect_ok(&mut peer, s)?;
                Ok(Outcome::pass("REPLY/OK to CONNECT_GET_TYPE", r.to_string()))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "fds/count-1-over-tcp",
            Level::Must,
            "CALL_WITH_FDS announcing 1 descriptor over TCP (where none can come) is refused or closes the connection, never waited on",
            SRC,
            |ctx| {
                if over_unix(ctx) {
                    return Ok(Outcome::unsupported("the target is a unix socket, where descriptors can come"));
                }
                refused(ctx, 1)
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "fds/count-32-over-tcp",
            Level::Must,
            "CALL_WITH_FDS announcing 32 descriptors (the maximum) over TCP is refused or closes the connection, never waited on",
            SRC,
            |ctx| {
                if over_unix(ctx) {
                    return Ok(Outcome::unsupported("the target is a unix socket, where descriptors can come"));
                }
                refused(ctx, 32)
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "fds/count-33",
            Level::Must,
            "CALL_WITH_FDS announcing 33 descriptors (over VIR_NET_MESSAGE_NUM_FDS_MAX) is refused or closes the connection",
            SRC,
            |ctx| refused(ctx, 33),
        )
        .needs(&[OPEN]),
    ]
}
