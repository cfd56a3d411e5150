//! Replies the server cannot send: a reply over the message limit must become an error reply, not a
//! crash, a cut connection or a frame the client must refuse (docs/protocol.md §2: libvirt's
//! `virNetMessageEncodePayload` gives up with "Unable to encode message payload"; seed 000's
//! problem, seen from the wire).

use virtwire_protocol::MessageStatus;
use virtwire_protocol::header::REMOTE_PROGRAM;

use super::OPEN;
use super::world::{self, BIG};
use crate::runner::ctx::proc;
use crate::runner::{Case, Level, Outcome};

/// The reply cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "reply/over-limit-is-error",
            Level::Must,
            "A GET_ALL_DOMAIN_STATS reply over 32 MiB is answered REPLY/ERROR; the connection stays usable",
            "docs/protocol.md §2 (encode side, the 2017 \"Raising limits\" thread), §11 (5000 × 64 world); \
             src/rpc/virnetmessage.c virNetMessageEncodePayload",
            |ctx| {
                let local = world::local(ctx, "the case writes a test-driver world file the server reads")?;
                let uri = BIG.install(&local, "big")?;
                let mut peer = world::open_world(ctx, &uri)?;
                let s = ctx.call(
                    &mut peer,
                    REMOTE_PROGRAM,
                    proc::CONNECT_GET_ALL_DOMAIN_STATS,
                    &world::all_stats_args(),
                )?;
                let r = ctx.expect_reply(&mut peer, s)?;
                let expected = "REPLY/ERROR (the reply cannot be encoded), then the connection still answers";
                if r.header.status != MessageStatus::Error {
                    return Ok(Outcome::fail(expected, r.to_string()));
                }
                let t = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
                ctx.expect_ok(&mut peer, t)?;
                Ok(Outcome::pass(
                    expected,
                    format!(
                        "{} domains × {} IOThreads: {r}; CONNECT_GET_TYPE answered after it",
                        BIG.domains, BIG.iothreads
                    ),
                ))
            },
        )
        .needs(&[OPEN]),
    ]
}
