//! `cve/`: one case per RPC-layer CVE of PROTOCOL.md §8 that a client can express on the wire, each
//! asserting the fixed behaviour: an answer (an error where the fix added a check), the connection
//! kept, and the daemon still serving new clients. A daemon that crashes fails the case (the runner
//! notes the death and restarts a self-started libvirtd for the next case); each case runs alone
//! (exclusive), so that a crash it causes fails no other case.
//!
//! Not here: CVE-2013-1962 (FD exhaustion by many calls: a load test), CVE-2013-4399 (needs ACLs),
//! CVE-2014-8135 (a VOL_UPLOAD stream: the streams family), CVE-2019-10161…10168 (the read-only
//! socket: the security family), CVE-2020-25637 (the guest agent path; the test driver has none),
//! CVE-2024-4418 (a client-side race), CVE-2011-1486 (a thread-safety race).

use std::sync::Arc;

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{BodyRole, MessageStatus};

use super::OPEN;
use crate::runner::ctx::{code, proc};
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::peer::{Peer, Reply};

/// `remote` procedure numbers of the CVE cases (remote_protocol.x).
mod rproc {
    pub const DOMAIN_GET_VCPUS: i32 = 20;
    pub const DOMAIN_SET_SCHEDULER_PARAMETERS: i32 = 58;
    pub const CONNECT_LIST_INTERFACES: i32 = 127;
    pub const DOMAIN_MEMORY_STATS: i32 = 159;
    pub const DOMAIN_SET_MEMORY_PARAMETERS: i32 = 197;
    pub const DOMAIN_GET_MEMORY_PARAMETERS: i32 = 198;
    pub const NODE_GET_CPU_STATS: i32 = 227;
    pub const NODE_SET_MEMORY_PARAMETERS: i32 = 288;
    pub const NODE_GET_MEMORY_PARAMETERS: i32 = 289;
    pub const DOMAIN_MIGRATE_PREPARE3_PARAMS: i32 = 303;
    pub const NODE_GET_FREE_PAGES: i32 = 340;
}

/// REMOTE_INTERFACE_LIST_MAX (remote_protocol.x).
const INTERFACE_LIST_MAX: i32 = 16384;

/// XDR words, big-endian.
pub(crate) fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A `remote_nonnull_domain` that names nothing: empty name, all-zero UUID, id 0 (24 bytes).
pub(crate) fn no_domain() -> Vec<u8> {
    vec![0; 24]
}

/// Send one CALL of the remote program on a new opened connection and take its REPLY.
fn ask(ctx: &mut Ctx<'_>, procedure: i32, args: &[u8]) -> Result<(Peer, Reply), Outcome> {
    let mut peer = ctx.opened()?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, procedure, args)?;
    let r = ctx.expect_reply(&mut peer, s)?;
    Ok((peer, r))
}

/// The connection still answers, and the daemon still serves a new client.
fn survived(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(), Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(peer, s)
        .map_err(|o| Outcome::fail("the connection still answers CONNECT_GET_TYPE", o.actual))?;
    ctx.expect_still_serving()
}

/// `procedure(args)` must be answered REPLY/ERROR (any error), the connection and daemon kept.
fn refused(ctx: &mut Ctx<'_>, what: &str, procedure: i32, args: &[u8]) -> Result<String, Outcome> {
    let (mut peer, r) = ask(ctx, procedure, args)?;
    if r.header.status != MessageStatus::Error {
        return Err(Outcome::fail(format!("{what}: REPLY/ERROR"), r.to_string()));
    }
    survived(ctx, &mut peer)?;
    Ok(format!("{what}: {r}"))
}

/// Every case of the family; the event-procedure one needs the schema (the procedure table).
pub fn cases(schema: Option<&Arc<Schema>>) -> Vec<Case> {
    let mut v = Vec::new();
    if let Some(s) = schema {
        v.push(event_procedures(s.clone()));
    }
    v.extend([
        Case::new(
            "cve/2011-2511-get-vcpus-overflow",
            Level::Must,
            "DOMAIN_GET_VCPUS whose maxinfo × maplen overflows 32 bits is refused, not allocated",
            "PROTOCOL.md §8 (CVE-2011-2511); src/remote/remote_daemon_dispatch.c remoteDispatchDomainGetVcpus",
            |ctx| {
                let mut args = no_domain();
                // 16384 × 262144 = 2³² (0 in 32 bits); 2 × 2³⁰ likewise.
                args.extend(words(&[16384, 262_144]));
                let a = refused(ctx, "maxinfo 16384 maplen 262144", rproc::DOMAIN_GET_VCPUS, &args)?;
                let mut args = no_domain();
                args.extend(words(&[2, 1 << 31]));
                let b = refused(ctx, "maxinfo 2 maplen 2³¹ (negative)", rproc::DOMAIN_GET_VCPUS, &args)?;
                Ok(Outcome::pass(
                    "REPLY/ERROR for each, the daemon still serving",
                    format!("{a}; {b}"),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2012-3445-typed-params-nparams-0",
            Level::Must,
            "Calls carrying a typed-parameter array with 0 elements are answered; the daemon does not free what it never allocated",
            "PROTOCOL.md §8 (CVE-2012-3445); src/util/virtypedparam.c virTypedParamsFree",
            |ctx| {
                let mut got = Vec::new();
                let mut dom_params = no_domain();
                dom_params.extend(words(&[0]));
                let mut dom_params_flags = dom_params.clone();
                dom_params_flags.extend(words(&[0]));
                for (what, p, args) in [
                    ("DOMAIN_SET_SCHEDULER_PARAMETERS", rproc::DOMAIN_SET_SCHEDULER_PARAMETERS, dom_params),
                    ("DOMAIN_SET_MEMORY_PARAMETERS", rproc::DOMAIN_SET_MEMORY_PARAMETERS, dom_params_flags),
                    ("NODE_SET_MEMORY_PARAMETERS", rproc::NODE_SET_MEMORY_PARAMETERS, words(&[0, 0])),
                ] {
                    let (mut peer, r) = ask(ctx, p, &args)?;
                    survived(ctx, &mut peer)?;
                    got.push(format!("{what}: {r}"));
                }
                Ok(Outcome::pass(
                    "a REPLY to each, the daemon still serving",
                    got.join("; "),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2013-4292-huge-param-count",
            Level::Must,
            "A typed-parameter count of 2³²−1 (migration params) is refused as undecodable before anything is allocated",
            "PROTOCOL.md §7, §8 (CVE-2013-4292: arrays bounded in the .x files)",
            |ctx| {
                let mut got = Vec::new();
                for count in [u32::MAX, 1 << 30, 65] {
                    let mut peer = ctx.opened()?;
                    let s = ctx.call(
                        &mut peer,
                        REMOTE_PROGRAM,
                        rproc::DOMAIN_MIGRATE_PREPARE3_PARAMS,
                        &words(&[count, 0, 0]),
                    )?;
                    let r = ctx.expect_error(
                        &mut peer,
                        s,
                        Some(code::RPC),
                        "Unable to decode message payload",
                    )?;
                    survived(ctx, &mut peer)?;
                    got.push(format!("count {count}: {r}"));
                }
                Ok(Outcome::pass(
                    "REPLY/ERROR \"Unable to decode message payload\" for counts 2³²−1, 2³⁰, 65 (bound 64)",
                    got.join("; "),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2013-4296-memory-stats-over-max",
            Level::Must,
            "DOMAIN_MEMORY_STATS with maxStats over REMOTE_DOMAIN_MEMORY_STATS_MAX is refused without freeing an uninitialised pointer",
            "PROTOCOL.md §8 (CVE-2013-4296); remoteDispatchDomainMemoryStats",
            |ctx| {
                let mut args = no_domain();
                args.extend(words(&[1025, 0]));
                let a = refused(ctx, "maxStats 1025", rproc::DOMAIN_MEMORY_STATS, &args)?;
                Ok(Outcome::pass("REPLY/ERROR, the daemon still serving", a))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2024-1441-list-interfaces-maxnames",
            Level::Must,
            "CONNECT_LIST_INTERFACES with maxnames at REMOTE_INTERFACE_LIST_MAX is answered with at most that many names, over it is refused; the daemon survives",
            "PROTOCOL.md §8 (CVE-2024-1441); remoteDispatchConnectListInterfaces",
            |ctx| {
                let (mut peer, r) = ask(ctx, rproc::CONNECT_LIST_INTERFACES, &words(&[INTERFACE_LIST_MAX as u32]))?;
                if r.header.status == MessageStatus::Ok {
                    let n = r.body.get("names").and_then(|n| n.as_array()).map(Vec::len);
                    match n {
                        Some(n) if n <= INTERFACE_LIST_MAX as usize => {}
                        _ => {
                            return Ok(Outcome::fail(
                                "at most 16384 names",
                                format!("{r}: {}", r.body),
                            ));
                        }
                    }
                }
                survived(ctx, &mut peer)?;
                let b = refused(
                    ctx,
                    "maxnames 16385",
                    rproc::CONNECT_LIST_INTERFACES,
                    &words(&[INTERFACE_LIST_MAX as u32 + 1]),
                )?;
                let c = refused(
                    ctx,
                    "maxnames 2³¹−1",
                    rproc::CONNECT_LIST_INTERFACES,
                    &words(&[i32::MAX as u32]),
                )?;
                Ok(Outcome::pass(
                    "an answer within the bound, REPLY/ERROR over it, the daemon still serving",
                    format!("maxnames 16384: {r}; {b}; {c}"),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2024-2494-negative-nparams",
            Level::Must,
            "A negative nparams (NODE_GET_MEMORY_PARAMETERS, NODE_GET_CPU_STATS, DOMAIN_GET_MEMORY_PARAMETERS) is refused before anything is allocated from it",
            "PROTOCOL.md §7, §8 (CVE-2024-2494, fixed in 10.2.0 by 8a3f8d957507)",
            |ctx| {
                let neg = (-1i32) as u32;
                let mut dom = no_domain();
                dom.extend(words(&[neg, 0]));
                let mut got = Vec::new();
                for (what, p, args) in [
                    ("NODE_GET_MEMORY_PARAMETERS nparams −1", rproc::NODE_GET_MEMORY_PARAMETERS, words(&[neg, 0])),
                    ("NODE_GET_CPU_STATS nparams −1", rproc::NODE_GET_CPU_STATS, words(&[0, neg, 0])),
                    ("DOMAIN_GET_MEMORY_PARAMETERS nparams −1", rproc::DOMAIN_GET_MEMORY_PARAMETERS, dom),
                ] {
                    got.push(refused(ctx, what, p, &args)?);
                }
                Ok(Outcome::pass("REPLY/ERROR for each, the daemon still serving", got.join("; ")))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2026-18917-free-pages-overflow",
            Level::Must,
            "NODE_GET_FREE_PAGES whose pages_len × cellCount wraps in 32 bits is refused, not answered from an undersized buffer",
            "PROTOCOL.md §8 (CVE-2026-18917); remoteDispatchNodeGetFreePages",
            |ctx| {
                // 4 pages × 0x40000001 cells = 0x1_0000_0004: 4 in 32 bits, under REMOTE_NODE_MAX_CELLS.
                let mut args = words(&[4, 4, 8, 16, 32]);
                args.extend(words(&[0, 0x4000_0001, 0]));
                let a = refused(ctx, "4 pages × 0x40000001 cells", rproc::NODE_GET_FREE_PAGES, &args)?;
                Ok(Outcome::pass("REPLY/ERROR, the daemon still serving", a))
            },
        )
        .needs(&[OPEN]),
    ]);
    // A server that crashes takes every case running beside it down too: run these alone.
    v.into_iter().map(Case::exclusive).collect()
}

/// CVE-2012-4423: a CALL of a procedure number the server has no handler for — every event
/// procedure of the remote program (a MESSAGE body, no args, no ret) and every gap in the table, and
/// the number past the last — is answered REPLY/ERROR, never a crash.
fn event_procedures(schema: Arc<Schema>) -> Case {
    Case::new(
        "cve/2012-4423-event-and-gap-procedures",
        Level::Must,
        "A CALL of an event procedure, a gap in the procedure table or the number past its end is answered REPLY/ERROR; the daemon survives",
        "PROTOCOL.md §4, §8 (CVE-2012-4423); src/rpc/virnetserverprogram.c virNetServerProgramGetProc",
        move |ctx| {
            let Some(p) = schema.programs().iter().find(|p| p.number() == REMOTE_PROGRAM) else {
                return Ok(Outcome::unsupported("the schema has no remote program"));
            };
            let mut numbers: Vec<(i32, String)> = p
                .procedure_list()
                .iter()
                .filter(|q| {
                    q.body(BodyRole::Msg).is_some()
                        && q.body(BodyRole::Args).is_none()
                        && q.body(BodyRole::Ret).is_none()
                })
                .map(|q| (q.number, q.name.clone()))
                .collect();
            let events = numbers.len();
            let last = p.procedure_list().last().map_or(0, |q| q.number);
            for n in 1..last {
                if p.procedure(n).is_none() {
                    numbers.push((n, "(gap)".into()));
                }
            }
            let gaps = numbers.len() - events;
            numbers.push((last + 1, "(past the end)".into()));
            let mut peer = ctx.opened()?;
            for (n, name) in &numbers {
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, *n, &[])?;
                let r = ctx.expect_reply(&mut peer, s)?;
                if r.header.status != MessageStatus::Error {
                    return Ok(Outcome::fail(
                        format!("REPLY/ERROR to a CALL of procedure {n} {name}"),
                        r.to_string(),
                    ));
                }
            }
            survived(ctx, &mut peer)?;
            Ok(Outcome::pass(
                "REPLY/ERROR to each, the daemon still serving",
                format!(
                    "{events} event procedures, {gaps} gaps and procedure {} answered REPLY/ERROR",
                    last + 1
                ),
            ))
        },
    )
    .needs(&[OPEN])
}
