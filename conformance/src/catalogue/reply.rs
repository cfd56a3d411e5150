//! Replies the server cannot send: a reply over the message limit must become an error reply, not a
//! crash, a cut connection or a frame the client must refuse (docs/protocol.md §2: libvirt's
//! `virNetMessageEncodePayload` gives up with "Unable to encode message payload"; seed 000's
//! problem, seen from the wire).

use virtwire_protocol::MessageStatus;
use virtwire_protocol::header::REMOTE_PROGRAM;

use super::OPEN;
use super::world::{self, BIG};
use crate::runner::ctx::{code, proc};

/// VIR_FROM_RPC (virerror.h).
const FROM_RPC: i32 = 7;
use crate::runner::{Case, Level, Outcome};

/// The reply cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "reply/over-limit-is-error",
            Level::Must,
            "A GET_ALL_DOMAIN_STATS reply over 32 MiB is answered REPLY/ERROR; the connection stays usable",
            "docs/protocol.md §2 (encode side, the 2017 \"Raising limits\" thread), §11 (5000 × 64 world); \
             src/rpc/virnetmessage.c virNetMessageEncodePayload (the buffer would pass VIR_NET_MESSAGE_MAX: \
             virReportError(VIR_ERR_RPC, \"Unable to encode message payload\")), sent by \
             src/rpc/virnetserverprogram.c virNetServerProgramDispatchCall's error path",
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
                let expected = "REPLY/ERROR code 39 (VIR_ERR_RPC) domain 7 (VIR_FROM_RPC) \"Unable to encode message payload\", then the connection still answers";
                let refused = r.header.status == MessageStatus::Error
                    && r.error.as_ref().is_some_and(|e| {
                        (e.code, e.domain) == (code::RPC, FROM_RPC)
                            && e.message.as_deref().unwrap_or("").contains("Unable to encode message payload")
                    });
                if !refused {
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
