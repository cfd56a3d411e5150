//! `cve/`: one case per RPC-layer CVE of libvirt that a client can express on the wire. Each case
//! reaches the code the CVE was in with a real object of the target's world (the first running
//! domain, `test` in the test driver's default world) and passes only on the fix's own answer:
//! the error code and message the fix commit raises (or, where the fix added no check, the answer
//! of the public API the call reaches past the fixed code), the connection kept and the daemon
//! still serving new clients. Any other answer fails, saying what came instead; a closed connection
//! or a dead daemon fails (the runner notes the death and restarts a self-started libvirtd for the
//! next case). A case whose vulnerable code this target cannot reach is `unsupported`, saying why.
//! Each case runs alone (exclusive), so that a crash it causes fails no other case.
//!
//! Each case's source names the fix (the commit where it could be confirmed from the sources on
//! this machine: Debian's patches for 9.0.0-4+deb12u2 carry the upstream commit ids of the 2024
//! fixes) and the first libvirt release that has it. Debian's 9.0.0-4+deb12u2 carries the fixes
//! of CVE-2024-1441 and CVE-2024-2494 as backports (debian/patches/backport/), so a pass of those
//! two cases against it says nothing of upstream 9.0.0.
//!
//! Not here: CVE-2013-1962 (FD exhaustion by many calls: a load test), CVE-2013-4399 (needs ACLs),
//! CVE-2014-8135 (a VOL_UPLOAD stream: the streams family), CVE-2019-10161…10168 (the read-only
//! socket: the security family), CVE-2020-25637 (the guest agent path; the test driver has none),
//! CVE-2024-4418 (a client-side race), CVE-2011-1486 (a thread-safety race).

use std::sync::Arc;

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{BodyRole, MessageStatus};

use super::{OPEN, running_domain};
use crate::runner::ctx::{code, proc};
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::peer::{Peer, Reply};

/// `remote` procedure numbers of the CVE cases (remote_protocol.x).
mod rproc {
    pub const DOMAIN_GET_VCPUS: i32 = 20;
    pub const CONNECT_LIST_DEFINED_DOMAINS: i32 = 21;
    pub const DOMAIN_SET_SCHEDULER_PARAMETERS: i32 = 58;
    pub const CONNECT_NUM_OF_INTERFACES: i32 = 126;
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

/// virErrorNumber values the cases name (libvirt's include/libvirt/virterror.h).
mod err {
    /// VIR_ERR_INVALID_ARG.
    pub const INVALID_ARG: i32 = 8;
}

/// XDR words, big-endian.
pub(crate) fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// `dom` followed by `ws`.
fn with_dom(dom: &[u8], ws: &[u32]) -> Vec<u8> {
    let mut v = dom.to_vec();
    v.extend(words(ws));
    v
}

/// −1 as an XDR `int`.
const NEG: u32 = u32::MAX;

/// `procedure(args)` on `peer` must be refused the way the fix refuses it: REPLY/ERROR with `code`
/// and a message containing `text`. Anything else (another error, REPLY/OK, a close) fails, saying
/// what came instead.
fn fix_refuses(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    what: &str,
    procedure: i32,
    args: &[u8],
    code: i32,
    text: &str,
) -> Result<String, Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, procedure, args)?;
    let r = ctx
        .expect_error(peer, s, Some(code), text)
        .map_err(|mut o| {
            o.expected = format!("{what}: the fix's refusal, {}", o.expected);
            o
        })?;
    Ok(format!("{what}: {r}"))
}

/// Send one CALL on `peer` and take its REPLY, whatever its status.
fn ask(ctx: &mut Ctx<'_>, peer: &mut Peer, procedure: i32, args: &[u8]) -> Result<Reply, Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, procedure, args)?;
    ctx.expect_reply(peer, s)
}

/// The connection still answers, and the daemon still serves a new client.
fn survived(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(), Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(peer, s)
        .map_err(|o| Outcome::fail("the connection still answers CONNECT_GET_TYPE", o.actual))?;
    ctx.expect_still_serving()
}

/// The error code and message of a REPLY/ERROR.
fn error_of(r: &Reply) -> Option<(i32, &str)> {
    (r.header.status == MessageStatus::Error)
        .then_some(())
        .and(r.error.as_ref())
        .map(|e| (e.code, e.message.as_deref().unwrap_or("")))
}

/// The target's driver name (CONNECT_GET_TYPE: "TEST" for the test driver).
fn driver_type(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<String, Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    let r = ctx.expect_ok(peer, s)?;
    Ok(r.body
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string())
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
            "DOMAIN_GET_VCPUS on a real domain whose maxinfo × maplen overflows 32 bits is refused \
             (\"maxinfo * maplen > REMOTE_CPUMAPS_MAX\"), not allocated from the wrapped product",
            "CVE-2011-2511, fixed in libvirt 0.9.3 (the CVE record: \"before 0.9.3\"; the commit is not \
             confirmed from sources on this machine): src/remote/remote_daemon_dispatch.c \
             remoteDispatchDomainGetVcpus, VIR_INT_MULTIPLY_OVERFLOW(maxinfo, maplen) → \
             VIR_ERR_INTERNAL_ERROR \"maxinfo * maplen > REMOTE_CPUMAPS_MAX\" (after the domain lookup)",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (name, dom) = running_domain(ctx, &mut peer)?;
                let mut got = Vec::new();
                // Both positive ints (CVE-2024-2494's negative checks stay out of the way); the
                // products wrap to 16384 (a small buffer the driver indexes up to 2³²) and to 2³¹
                // (negative in 32 bits).
                for (what, maxinfo, maplen) in [
                    ("maxinfo 16384 × maplen 262145 (2³² + 16384)", 16384, 262_145),
                    ("maxinfo 2 × maplen 2³⁰ (2³¹)", 2, 1 << 30),
                ] {
                    got.push(fix_refuses(
                        ctx,
                        &mut peer,
                        &format!("domain {name}, {what}"),
                        rproc::DOMAIN_GET_VCPUS,
                        &with_dom(&dom, &[maxinfo, maplen]),
                        code::INTERNAL_ERROR,
                        "maxinfo * maplen > REMOTE_CPUMAPS_MAX",
                    )?);
                }
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "code 1 \"maxinfo * maplen > REMOTE_CPUMAPS_MAX\" for each, the daemon still serving",
                    got.join("; "),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2012-3445-typed-params-nparams-0",
            Level::Must,
            "Calls carrying a typed-parameter array with 0 elements on a real domain (and the node) get \
             through the daemon's deserialisation and its cleanup to the public API's own answer",
            "CVE-2012-3445 (virTypedParameterArrayClear on a zero-length array; the CVE record: libvirt \
             0.9.13 affected, fixed in 0.10.0; the commit is not confirmed from sources on this machine). \
             The fix added no refusal: the call must reach the public API, whose answer is REPLY/OK or its \
             own argument check (src/libvirt-domain.c virDomainSetSchedulerParameters, \
             virDomainSetMemoryParameters; src/libvirt-host.c virNodeSetMemoryParameters: \
             virCheckNonNullArgGoto(params) → VIR_ERR_INVALID_ARG \"params in vir… must not be NULL\")",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (name, dom) = running_domain(ctx, &mut peer)?;
                let mut got = Vec::new();
                for (what, api, p, args) in [
                    (
                        "DOMAIN_SET_SCHEDULER_PARAMETERS",
                        "virDomainSetSchedulerParameters",
                        rproc::DOMAIN_SET_SCHEDULER_PARAMETERS,
                        with_dom(&dom, &[0]),
                    ),
                    (
                        "DOMAIN_SET_MEMORY_PARAMETERS",
                        "virDomainSetMemoryParameters",
                        rproc::DOMAIN_SET_MEMORY_PARAMETERS,
                        with_dom(&dom, &[0, 0]),
                    ),
                    (
                        "NODE_SET_MEMORY_PARAMETERS",
                        "virNodeSetMemoryParameters",
                        rproc::NODE_SET_MEMORY_PARAMETERS,
                        words(&[0, 0]),
                    ),
                ] {
                    let r = ask(ctx, &mut peer, p, &args)?;
                    let reached = match error_of(&r) {
                        None => r.header.status == MessageStatus::Ok,
                        Some((c, m)) => c == err::INVALID_ARG && m.contains(api),
                    };
                    if !reached {
                        return Ok(Outcome::fail(
                            format!(
                                "{what} (domain {name}, params<> empty): REPLY/OK or {api}'s own \
                                 argument check (code 8 naming {api})"
                            ),
                            r.to_string(),
                        ));
                    }
                    got.push(format!("{what}: {r}"));
                }
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "each answered by the public API past the deserialiser, the daemon still serving",
                    got.join("; "),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2013-4292-huge-param-count",
            Level::Must,
            "A typed-parameter count of 2³²−1 (migration params) is refused as undecodable before anything is allocated",
            "CVE-2013-4292, fixed in libvirt 1.1.2 (distribution changelogs of 1.1.2; the commit is not \
             confirmed from sources on this machine): the migration params array bounded in \
             src/remote/remote_protocol.x (REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX = 64), so the XDR \
             decoder refuses it: VIR_ERR_RPC \"Unable to decode message payload\" \
             (src/rpc/virnetmessage.c virNetMessageDecodePayload)",
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
            "DOMAIN_MEMORY_STATS on a real domain with maxStats over REMOTE_DOMAIN_MEMORY_STATS_MAX is \
             refused (\"maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX\") without freeing an uninitialised pointer",
            "CVE-2013-4296, fixed in libvirt 1.1.3 (distribution changelogs of 1.1.3; the commit is not \
             confirmed from sources on this machine): src/remote/remote_daemon_dispatch.c \
             remoteDispatchDomainMemoryStats, VIR_ERR_INTERNAL_ERROR \
             \"maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX\", its cleanup freeing only what it allocated",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (name, dom) = running_domain(ctx, &mut peer)?;
                let a = fix_refuses(
                    ctx,
                    &mut peer,
                    &format!("domain {name}, maxStats 1025"),
                    rproc::DOMAIN_MEMORY_STATS,
                    &with_dom(&dom, &[1025, 0]),
                    code::INTERNAL_ERROR,
                    "maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX",
                )?;
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "code 1 \"maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX\", the daemon still serving",
                    a,
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2024-1441-list-interfaces-maxnames",
            Level::Must,
            "CONNECT_LIST_INTERFACES with maxnames 0 while the host has active interfaces is answered with \
             no name (the udev backend writes none past the array); the daemon survives",
            "CVE-2024-1441, fixed by libvirt commit c664015fe3a7bf59db26686e9ed69af011c6ebb8 \
             (\"Fix off-by-one error in udevListInterfacesByStatus\"; first in libvirt 10.2.0; backported \
             in Debian 9.0.0-4+deb12u1): src/interface/interface_backend_udev.c \
             udevListInterfacesByStatus, `count >= names_len` → break. No refusal: the fixed backend \
             returns what fits",
            |ctx| {
                let mut peer = ctx.opened()?;
                let ty = driver_type(ctx, &mut peer)?;
                if ty.eq_ignore_ascii_case("test") {
                    return Ok(Outcome::unsupported(format!(
                        "the target's driver is {ty:?}: the test driver lists interfaces from its own \
                         world (src/test/test_driver.c testConnectListInterfaces), so \
                         udevListInterfacesByStatus (the udev interface backend), where the \
                         off-by-one was, is never reached"
                    )));
                }
                let r = ask(ctx, &mut peer, rproc::CONNECT_NUM_OF_INTERFACES, &[])?;
                let n = (r.header.status == MessageStatus::Ok)
                    .then(|| r.body.get("num").and_then(|n| n.as_i64()))
                    .flatten();
                let n = match n {
                    Some(n) if n > 0 => n,
                    Some(_) => {
                        return Ok(Outcome::unsupported(format!(
                            "the {ty} driver's host has no active interface (CONNECT_NUM_OF_INTERFACES: \
                             {r}): the backend's loop never runs"
                        )));
                    }
                    None => {
                        return Ok(Outcome::unsupported(format!(
                            "the {ty} driver does not count interfaces (CONNECT_NUM_OF_INTERFACES: {r})"
                        )));
                    }
                };
                let r = ask(ctx, &mut peer, rproc::CONNECT_LIST_INTERFACES, &words(&[0]))?;
                let names = (r.header.status == MessageStatus::Ok)
                    .then(|| r.body.get("names").and_then(|n| n.as_array()).map(Vec::len))
                    .flatten();
                if names != Some(0) {
                    return Ok(Outcome::fail(
                        format!("REPLY/OK with no name to maxnames 0 ({n} active interfaces)"),
                        format!("{r}: {}", r.body),
                    ));
                }
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "REPLY/OK with no name, the daemon still serving",
                    format!(
                        "{n} active interfaces; maxnames 0: {r} (which backend serves the {ty} driver, \
                         udev or netcf, is not visible on the wire)"
                    ),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2024-2494-negative-nparams",
            Level::Must,
            "A negative nparams (NODE_GET_MEMORY_PARAMETERS, NODE_GET_CPU_STATS, DOMAIN_GET_MEMORY_PARAMETERS \
             on a real domain) or maxnames (CONNECT_LIST_DEFINED_DOMAINS) is refused before anything is \
             allocated from it, with the fix's own messages",
            "CVE-2024-2494, fixed by libvirt commit 8a3f8d957507c1f8223fdcf25a3ff885b15557f2 (\"remote: \
             check for negative array lengths before allocation\"; first in libvirt 10.2.0; backported in \
             Debian 9.0.0-4+deb12u1): src/remote/remote_daemon_dispatch.c remoteDispatchNodeGetMemoryParameters, \
             remoteDispatchNodeGetCPUStats, remoteDispatchDomainGetMemoryParameters → VIR_ERR_INTERNAL_ERROR \
             \"nparams must be non-negative\"; src/rpc/gendispatch.pl (generated list calls) → VIR_ERR_RPC \
             \"maxnames must be non-negative\"",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (name, dom) = running_domain(ctx, &mut peer)?;
                let nparams = "nparams must be non-negative";
                let mut got = Vec::new();
                for (what, p, args, code, text) in [
                    (
                        "NODE_GET_MEMORY_PARAMETERS nparams −1".to_string(),
                        rproc::NODE_GET_MEMORY_PARAMETERS,
                        words(&[NEG, 0]),
                        code::INTERNAL_ERROR,
                        nparams,
                    ),
                    (
                        "NODE_GET_CPU_STATS nparams −1".to_string(),
                        rproc::NODE_GET_CPU_STATS,
                        words(&[0, NEG, 0]),
                        code::INTERNAL_ERROR,
                        nparams,
                    ),
                    (
                        format!("DOMAIN_GET_MEMORY_PARAMETERS domain {name} nparams −1"),
                        rproc::DOMAIN_GET_MEMORY_PARAMETERS,
                        with_dom(&dom, &[NEG, 0]),
                        code::INTERNAL_ERROR,
                        nparams,
                    ),
                    (
                        "CONNECT_LIST_DEFINED_DOMAINS maxnames −1".to_string(),
                        rproc::CONNECT_LIST_DEFINED_DOMAINS,
                        words(&[NEG]),
                        code::RPC,
                        "maxnames must be non-negative",
                    ),
                ] {
                    got.push(fix_refuses(ctx, &mut peer, &what, p, &args, code, text)?);
                }
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "the fix's refusal for each (\"nparams must be non-negative\" code 1, \"maxnames must \
                     be non-negative\" code 39), the daemon still serving",
                    got.join("; "),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "cve/2026-18917-free-pages-overflow",
            Level::Must,
            "NODE_GET_FREE_PAGES whose pages_len × cellCount wraps in 32 bits is refused by the \
             REMOTE_NODE_MAX_CELLS check, as one over it without wrapping is, not answered from an \
             undersized buffer",
            "CVE-2026-18917, fixed upstream on 2026-08-12 (\"remote: Fix integer overflow in RPC handler for \
             virNodeGetFreePages\"; in no release on this machine: libvirt 9.0.0 and 11.3.0 both die of \
             SIGSEGV; its commit text is not on this machine, so the refusal asserted is the check it \
             repairs): src/remote/remote_daemon_dispatch.c remoteDispatchNodeGetFreePages, \
             VIR_ERR_INTERNAL_ERROR \"the result won't fit into REMOTE_NODE_MAX_CELLS\"",
            |ctx| {
                let mut peer = ctx.opened()?;
                // The dispatcher's own bound, without wrapping: 4 pages × 257 cells = 1028 > 1024.
                let control = |cells: u32| {
                    let mut a = words(&[4, 4, 8, 16, 32]);
                    a.extend(words(&[0, cells, 0]));
                    a
                };
                let r = ask(ctx, &mut peer, rproc::NODE_GET_FREE_PAGES, &control(257))?;
                match error_of(&r) {
                    Some((c, m)) if c == code::INTERNAL_ERROR && m.contains("REMOTE_NODE_MAX_CELLS") => {}
                    Some((c, m))
                        if c == code::NO_SUPPORT
                            || (c == code::RPC && m.contains("unknown procedure")) =>
                    {
                        return Ok(Outcome::unsupported(format!(
                            "the target has no NODE_GET_FREE_PAGES handler (4 pages × 257 cells: {r})"
                        )));
                    }
                    _ => {
                        return Ok(Outcome::fail(
                            "4 pages × 257 cells (1028, over REMOTE_NODE_MAX_CELLS 1024): code 1 \
                             \"the result won't fit into REMOTE_NODE_MAX_CELLS\"",
                            r.to_string(),
                        ));
                    }
                }
                let control_answer = r.to_string();
                // 4 pages × 0x40000001 cells = 0x1_0000_0004: 4 in 32 bits, under the bound.
                let a = fix_refuses(
                    ctx,
                    &mut peer,
                    "4 pages × 0x40000001 cells (4 in 32 bits)",
                    rproc::NODE_GET_FREE_PAGES,
                    &control(0x4000_0001),
                    code::INTERNAL_ERROR,
                    "REMOTE_NODE_MAX_CELLS",
                )?;
                survived(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "code 1 \"… REMOTE_NODE_MAX_CELLS\" for the wrapped product as for 1028, the daemon still serving",
                    format!("4 pages × 257 cells: {control_answer}; {a}"),
                ))
            },
        )
        .needs(&[OPEN]),
    ]);
    // A server that crashes takes every case running beside it down too: run these alone.
    v.into_iter().map(Case::exclusive).collect()
}

/// CVE-2012-4423: a CALL of a procedure number the server has no handler for — every event
/// procedure of the remote program (a MESSAGE body, no args, no ret) and every gap in the table, and
/// the number past the last — is answered with the fix's refusal, never a crash.
fn event_procedures(schema: Arc<Schema>) -> Case {
    Case::new(
        "cve/2012-4423-event-and-gap-procedures",
        Level::Must,
        "A CALL of an event procedure, a gap in the procedure table or the number past its end is answered \
         REPLY/ERROR code 39 \"unknown procedure: N\"; the daemon survives",
        "CVE-2012-4423, fixed in libvirt 0.10.2 (the CVE record: \"before 0.10.2\"; the commit is not \
         confirmed from sources on this machine): src/rpc/virnetserverprogram.c \
         virNetServerProgramGetProc returns no dispatcher for a procedure without a handler, and \
         virNetServerProgramDispatchCall answers VIR_ERR_RPC \"unknown procedure: %d\"",
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
                let r = ask(ctx, &mut peer, *n, &[])?;
                // The whole number, not a prefix of it: "unknown procedure: 1" is not 12's answer.
                let want = format!("unknown procedure: {n}");
                if !error_of(&r).is_some_and(|(c, m)| c == code::RPC && m.ends_with(&want)) {
                    return Ok(Outcome::fail(
                        format!("a CALL of procedure {n} {name}: REPLY/ERROR code 39 {want:?}"),
                        r.to_string(),
                    ));
                }
            }
            survived(ctx, &mut peer)?;
            Ok(Outcome::pass(
                "code 39 \"unknown procedure: N\" to each, the daemon still serving",
                format!(
                    "{events} event procedures, {gaps} gaps and procedure {} answered code 39 \"unknown procedure\"",
                    last + 1
                ),
            ))
        },
    )
    .needs(&[OPEN])
}
