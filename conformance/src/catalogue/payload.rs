//! Bodies that do not decode (docs/protocol.md §4, §7): a body that cannot be decoded is refused with
//! "Unable to decode message payload" and the connection is kept; leniency that RFC 4506 forbids but
//! libvirt allows is reported as non-strict.

use virtwire_protocol::header::REMOTE_PROGRAM;

use super::cve::words;
use super::{OPEN, call, refused_or_lenient};
use crate::runner::ctx::{code, proc};
use crate::runner::{Case, Level, Outcome};

/// REMOTE_PROC_NODE_SET_MEMORY_PARAMETERS: `{ remote_typed_param params<64>; unsigned int flags; }`.
const NODE_SET_MEMORY_PARAMETERS: i32 = 288;

/// A body that must be refused with "Unable to decode message payload", the connection kept.
fn undecodable(
    ctx: &mut crate::runner::Ctx<'_>,
    procedure: i32,
    args: &[u8],
    what: &str,
) -> crate::runner::CaseResult {
    let mut peer = ctx.opened()?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, procedure, args)?;
    let r = ctx.expect_error(
        &mut peer,
        s,
        Some(code::RPC),
        "Unable to decode message payload",
    )?;
    let s2 = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(&mut peer, s2)?;
    Ok(Outcome::pass(
        format!("{what}: REPLY/ERROR \"Unable to decode message payload\", connection kept"),
        r.to_string(),
    ))
}

/// The payload cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "payload/bool-2",
            Level::Should,
            "An XDR bool of 2 is refused (RFC 4506 §4.4: 0 or 1); libvirt's .x files declare no bool, so the probe is the optional-data flag (an XDR bool) of CONNECT_OPEN's name",
            "docs/protocol.md §7 (bool accepts any non-zero)",
            |ctx| {
                let mut peer = ctx.connect()?;
                let serial = peer.serial();
                let name = ctx.env().connector.open_name().unwrap_or_else(|| "test:///default".into());
                let mut args = Vec::new();
                {
                    let mut w = virtwire_protocol::Writer::new(&mut args);
                    w.u32(2);
                    w.opaque_var_unchecked(name.as_bytes(), 0);
                    w.u32(0);
                }
                let frame = call(proc::CONNECT_OPEN, serial, &args);
                refused_or_lenient(ctx, &mut peer, &frame, serial, "REPLY/ERROR (optional flag 2)", "accepted as present")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/bad-union-discriminant",
            Level::Must,
            "A typed parameter of type 8 (no such union arm) is refused with \"Unable to decode message payload\"",
            "docs/protocol.md §7 (unions: default: return FALSE); remote_protocol.x remote_typed_param_value",
            |ctx| {
                // params<1> = [{ field "x", value { type 8, … } }], flags 0.
                // 0x7800_0000: the string "x" and its three pad bytes.
                let args = words(&[1, 1, 0x7800_0000, 8, 0, 0]);
                undecodable(ctx, NODE_SET_MEMORY_PARAMETERS, &args, "typed param type 8")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/negative-count",
            Level::Must,
            "An array count of 0x80000000 (negative as a C int) is refused, not used as a size",
            "docs/protocol.md §7, §8 (CVE-2024-2494: negative lengths)",
            |ctx| undecodable(ctx, NODE_SET_MEMORY_PARAMETERS, &words(&[0x8000_0000, 0]), "count 0x80000000"),
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/huge-count",
            Level::Must,
            "An array count of 2³²−1 with no elements after it is refused before anything is allocated",
            "docs/protocol.md §7, §8 (CVE-2013-4292)",
            |ctx| {
                undecodable(
                    ctx,
                    proc::CONNECT_GET_ALL_DOMAIN_STATS,
                    &words(&[u32::MAX, 0, 0]),
                    "doms count 2³²−1",
                )
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/truncated-args",
            Level::Must,
            "Arguments cut short are refused with \"Unable to decode message payload\"; the connection is kept",
            "docs/protocol.md §4, §11; src/rpc/virnetmessage.c virNetMessageDecodePayload",
            |ctx| {
                let mut peer = ctx.opened()?;
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_SUPPORTS_FEATURE, &[0, 0])?;
                let r = ctx.expect_error(&mut peer, s, Some(code::RPC), "Unable to decode message payload")?;
                let s2 = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
                ctx.expect_ok(&mut peer, s2)?;
                Ok(Outcome::pass("REPLY/ERROR, then the connection still answers", r.to_string()))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/trailing-bytes",
            Level::Should,
            "Bytes after a complete argument body are refused (RFC 4506: a body is exactly its type)",
            "docs/protocol.md §4 (libvirt does not check), §7",
            |ctx| {
                let mut peer = ctx.opened()?;
                let serial = peer.serial();
                let mut args = 10i32.to_be_bytes().to_vec();
                args.extend([0xde, 0xad, 0xbe, 0xef]);
                let frame = call(proc::CONNECT_SUPPORTS_FEATURE, serial, &args);
                refused_or_lenient(ctx, &mut peer, &frame, serial, "REPLY/ERROR (4 bytes after the args)", "accepted")
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "payload/nonzero-padding",
            Level::Should,
            "A string whose padding bytes are not zero is refused (RFC 4506 §3: pad bytes are zero)",
            "docs/protocol.md §7",
            |ctx| {
                let mut peer = ctx.connect()?;
                let serial = peer.serial();
                let name = ctx.env().connector.open_name().unwrap_or_else(|| "test:///default".into());
                let mut args = Vec::new();
                {
                    let mut w = virtwire_protocol::Writer::new(&mut args);
                    w.optional(true);
                    w.opaque_var_unchecked(name.as_bytes(), 0xff);
                    w.u32(0);
                }
                if name.len() % 4 == 0 {
                    return Ok(Outcome::unsupported(format!(
                        "the target's name {name:?} needs no padding"
                    )));
                }
                let frame = call(proc::CONNECT_OPEN, serial, &args);
                refused_or_lenient(ctx, &mut peer, &frame, serial, "REPLY/ERROR (padding 0xff)", "accepted")
            },
        )
        .needs(&[OPEN]),
    ]
}
