//! The other programs, each on its own server: admin (libvirtd's admin socket), log (virtlogd)
//! and lock (virtlockd). Per program: the connection's life (admin's CONNECT_OPEN / CLOSE, lock's
//! REGISTER / RESTRICT; log has no open), an unknown procedure and a wrong version (an error reply,
//! connection kept), and a call of another program. Procedure numbers and argument bytes come
//! from the schema (minimal values from `schema::bounds`).
//!
//! Sources: src/admin/admin_protocol.x and src/admin/admin_server_dispatch.c (admin),
//! src/logging/log_protocol.x and log_daemon_dispatch.c (log), src/locking/lock_protocol.x and
//! lock_daemon_dispatch.c (lock), src/rpc/virnetserverprogram.c (unknown procedures and versions:
//! VIR_ERR_RPC replies), docs/protocol.md §4, §6.

use std::sync::Arc;

use virtwire_protocol::header::{ADMIN_PROGRAM, LOCK_PROGRAM, LOG_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::schema::{Schema, bounds};
use virtwire_protocol::{FrameBuilder, Header, MessageStatus, MessageType, Writer};

use super::limits::{ProgramCount, Route, program_cases_via};
use crate::runner::ctx::{Endpoint, connect_open_args, error_replies, proc};
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::peer::{Event, Peer};

/// A procedure of one program, as the cases need it: its number and minimal args.
#[derive(Clone, Debug)]
struct Call {
    number: i32,
    name: String,
    args: Vec<u8>,
}

/// The program's procedures by name, with minimal args; `None` when the schema lacks it.
fn call(schema: &Schema, prog: u32, name: &str) -> Option<Call> {
    let p = schema.program(prog, 1)?.procedure_by_name(name)?;
    let args = p
        .args
        .as_ref()
        .map_or_else(Vec::new, |(_, ty)| bounds::zero_bytes(schema, *ty));
    Some(Call {
        number: p.number,
        name: p.name.clone(),
        args,
    })
}

/// One past the program's highest procedure number.
fn past_the_table(schema: &Schema, prog: u32) -> Option<i32> {
    schema
        .program(prog, 1)?
        .procedure_list()
        .iter()
        .map(|p| p.number)
        .max()
        .map(|n| n + 1)
}

/// Brings a new connection to the state where a program's probe call works.
type Setup = Arc<dyn Fn(&mut Ctx<'_>, &mut Peer) -> Result<(), Outcome> + Send + Sync>;

/// VIR_ERR_RPC.
const RPC: i32 = 39;
/// VIR_FROM_RPC (virerror.h): the domain of errors the RPC layer raises.
const FROM_RPC: i32 = 7;

const SRC_ADMIN: &str =
    "src/admin/admin_protocol.x; src/admin/admin_server_dispatch.c; docs/protocol.md §6";
const SRC_LOG: &str = "src/logging/log_protocol.x; src/logging/log_daemon_dispatch.c";
const SRC_LOCK: &str = "src/locking/lock_protocol.x; src/locking/lock_daemon_dispatch.c";
const SRC_RPC: &str = "src/rpc/virnetserverprogram.c; src/rpc/virnetserver.c; docs/protocol.md §4";
/// The unknown-procedure case's source: where libvirt 9.0.0 refuses a number with no dispatcher.
const SRC_UNKNOWN_PROC: &str = "src/rpc/virnetserverprogram.c virNetServerProgramDispatchCall \
                                (virNetServerProgramGetProc finds no dispatcher: \
                                virReportError(VIR_ERR_RPC, \"unknown procedure: %d\"), VIR_FROM_RPC)";

/// The ID the admin cases need.
pub const ADMIN_OPEN: &str = "admin/open";
/// The ID the log cases need.
pub const LOG_FIRST: &str = "log/first-call";
/// The ID the lock cases need.
pub const LOCK_REGISTER: &str = "lock/register";

/// The admin, log and lock cases of `schema`, their limits cases last.
pub fn cases(schema: &Arc<Schema>) -> Vec<Case> {
    let mut out = Vec::new();
    out.extend(admin(schema));
    out.extend(log(schema));
    out.extend(lock(schema));
    out.extend(limits(schema).0);
    out
}

/// The limits cases of the admin, log and lock programs: the main socket's generator
/// ([`super::limits::program_cases_via`]: every bounded args item at its bound and one over),
/// routed to each program's server, with what they cover.
pub fn limits(schema: &Arc<Schema>) -> (Vec<Case>, Vec<ProgramCount>) {
    let mut routes = Vec::new();
    if let (Some(open), Some(version)) = (
        call(schema, ADMIN_PROGRAM, "CONNECT_OPEN"),
        call(schema, ADMIN_PROGRAM, "CONNECT_GET_LIB_VERSION"),
    ) {
        routes.push((
            ADMIN_PROGRAM,
            Route {
                endpoint: Some(Endpoint::Admin),
                setup: Some((open.number, open.args)),
                check: (version.number, version.args),
                check_ok: true,
                needs: ADMIN_OPEN,
                exclusive: false,
            },
        ));
    }
    if let Some(position) = log_position(schema) {
        routes.push((
            LOG_PROGRAM,
            Route {
                endpoint: Some(Endpoint::Virtlogd),
                setup: None,
                check: (position.number, position.args),
                check_ok: false,
                needs: LOG_FIRST,
                exclusive: false,
            },
        ));
    }
    if let (Some(register), Some(new)) = (lock_register(schema), lock_new_default(schema)) {
        routes.push((
            LOCK_PROGRAM,
            Route {
                endpoint: Some(Endpoint::Virtlockd),
                setup: Some((register.number, register.args)),
                check: (new.number, new.args),
                check_ok: false,
                needs: LOCK_REGISTER,
                // virtlockd 9.0 crashes after NEW with a path at its bound (known-failing).
                exclusive: true,
            },
        ));
    }
    let mut all = Vec::new();
    let mut counts = Vec::new();
    for (prog, route) in routes {
        let (cases, count) = program_cases_via(schema, prog, 1, &route);
        all.extend(cases);
        counts.push(count);
    }
    (all, counts)
}

/// Send a CALL of `prog` with `version` (not necessarily 1) and wait for its reply.
fn call_version(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    prog: u32,
    version: u32,
    c: &Call,
) -> Result<crate::wire::peer::Reply, Outcome> {
    let serial = peer.serial();
    let h = Header::new(
        prog,
        version,
        c.number,
        MessageType::Call,
        serial,
        MessageStatus::Ok,
    );
    let bytes = FrameBuilder::new(h)
        .payload(c.args.clone())
        .encode(ctx.env().judge.limits())
        .map_err(|e| Outcome::error(format!("cannot encode the call: {e}")))?;
    ctx.send(peer, &bytes)?;
    let deadline = ctx.read_deadline();
    peer.reply(serial, deadline).map_err(|ev| {
        Outcome::fail(
            format!("a REPLY to serial {serial}"),
            ctx.describe(peer, &ev),
        )
    })
}

/// `c` on `peer` must be answered: REPLY/OK when `want_ok`, else any REPLY (the call was
/// dispatched; e.g. virtlogd's "No open log file").
fn answered(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    prog: u32,
    c: &Call,
    want_ok: bool,
) -> Result<String, Outcome> {
    if want_ok {
        return ok(ctx, peer, prog, c);
    }
    let s = ctx.call(peer, prog, c.number, &c.args)?;
    Ok(ctx.expect_reply(peer, s)?.to_string())
}

/// `c` on `peer` must be answered REPLY/OK.
fn ok(ctx: &mut Ctx<'_>, peer: &mut Peer, prog: u32, c: &Call) -> Result<String, Outcome> {
    let s = ctx.call(peer, prog, c.number, &c.args)?;
    Ok(ctx.expect_ok(peer, s)?.to_string())
}

/// The cases every program gets: an unknown procedure, a wrong version, another program's call —
/// each an error reply with the connection kept (`probe` answered OK afterwards). `setup` brings a
/// new connection to the state where `probe` works.
#[allow(clippy::too_many_arguments)]
fn common(
    family: &'static str,
    endpoint: Endpoint,
    prog: u32,
    need: &'static str,
    past: Option<i32>,
    probe: Call,
    probe_ok: bool,
    setup: Setup,
) -> Vec<Case> {
    let mut out = Vec::new();
    if let Some(n) = past {
        let (probe, setup) = (probe.clone(), setup.clone());
        out.push(
            Case::new(
                format!("{family}/unknown-procedure"),
                Level::Must,
                format!(
                    "A call of procedure {n} (one past the {family} program's table) gets \
                     REPLY/ERROR, and the connection stays usable"
                ),
                SRC_UNKNOWN_PROC,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(endpoint)?;
                    setup(ctx, &mut peer)?;
                    let unknown = Call {
                        number: n,
                        name: format!("procedure {n}"),
                        args: Vec::new(),
                    };
                    // virNetServerProgramDispatchCall: no dispatcher for the number →
                    // virReportError(VIR_ERR_RPC, "unknown procedure: %d") (VIR_FROM_RPC).
                    let s = ctx.call(&mut peer, prog, unknown.number, &unknown.args)?;
                    let want = format!("unknown procedure: {n}");
                    let r = ctx.expect_error(&mut peer, s, Some(RPC), &want)?;
                    if r.error.as_ref().is_some_and(|e| e.domain != FROM_RPC) {
                        return Ok(Outcome::fail(
                            format!("REPLY/ERROR code {RPC} domain {FROM_RPC} {want:?}"),
                            r.to_string(),
                        ));
                    }
                    let t = answered(ctx, &mut peer, prog, &probe, probe_ok)?;
                    Ok(Outcome::pass(
                        format!(
                            "REPLY/ERROR code {RPC} (VIR_ERR_RPC) domain {FROM_RPC} (VIR_FROM_RPC) \
                             {want:?}, then a working call"
                        ),
                        format!("{r}; then {} answered: {t}", probe.name),
                    ))
                },
            )
            .needs(&[need]),
        );
    }
    {
        let (probe, setup) = (probe.clone(), setup.clone());
        out.push(
            Case::new(
                format!("{family}/wrong-version"),
                Level::Must,
                format!(
                    "{} with program version 2 gets REPLY/ERROR (VIR_ERR_RPC), and the connection \
                     stays usable",
                    probe.name
                ),
                SRC_RPC,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(endpoint)?;
                    setup(ctx, &mut peer)?;
                    let r = call_version(ctx, &mut peer, prog, 2, &probe)?;
                    let refused = r.header.status == MessageStatus::Error
                        && r.error.as_ref().is_some_and(|e| e.code == RPC);
                    if !refused {
                        return Ok(Outcome::fail("REPLY/ERROR code 39", r.to_string()));
                    }
                    answered(ctx, &mut peer, prog, &probe, probe_ok)?;
                    Ok(Outcome::pass(
                        "REPLY/ERROR code 39, then a working call",
                        r.to_string(),
                    ))
                },
            )
            .needs(&[need]),
        );
    }
    out.push(
        Case::new(
            format!("{family}/remote-program-call"),
            Level::Must,
            format!(
                "A remote-program CONNECT_OPEN sent to the {family} server gets REPLY/ERROR or is \
                 ignored, never served, and the connection stays usable"
            ),
            SRC_RPC,
            move |ctx| {
                let (mut peer, _) = ctx.connect_to(endpoint)?;
                setup(ctx, &mut peer)?;
                ctx.call(
                    &mut peer,
                    REMOTE_PROGRAM,
                    proc::CONNECT_OPEN,
                    &connect_open_args(Some("test:///default"), 0),
                )?;
                // A REPLY/ERROR may come (late too); a REPLY/OK never, until the probe's reply.
                let (then, allowed) = ctx.expect_no_answer_until_followup(
                    &mut peer,
                    "REPLY/ERROR or nothing to the remote-program CONNECT_OPEN (never REPLY/OK) \
                     until the next call's reply, connection kept open",
                    error_replies,
                    |ctx, peer| answered(ctx, peer, prog, &probe, probe_ok),
                )?;
                let first = allowed
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "no answer (ignored)".to_string());
                Ok(Outcome::pass(
                    "REPLY/ERROR or silence, then a working call",
                    format!("{first}; then {} answered: {then}", probe.name),
                ))
            },
        )
        .needs(&[need]),
    );
    out
}

fn admin(schema: &Schema) -> Vec<Case> {
    let (Some(open), Some(close), Some(version), Some(servers)) = (
        call(schema, ADMIN_PROGRAM, "CONNECT_OPEN"),
        call(schema, ADMIN_PROGRAM, "CONNECT_CLOSE"),
        call(schema, ADMIN_PROGRAM, "CONNECT_GET_LIB_VERSION"),
        call(schema, ADMIN_PROGRAM, "CONNECT_LIST_SERVERS"),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    {
        let open = open.clone();
        out.push(Case::new(
            ADMIN_OPEN,
            Level::Must,
            "On the admin socket, admin CONNECT_OPEN (flags 0) is answered REPLY/OK",
            SRC_ADMIN,
            move |ctx| {
                let (mut peer, ep) = ctx.connect_to(Endpoint::Admin)?;
                let got = ok(ctx, &mut peer, ADMIN_PROGRAM, &open)?;
                Ok(Outcome::pass(
                    "REPLY/OK",
                    format!("{got} on {}", ep.describe()),
                ))
            },
        ));
    }
    {
        let (open, version) = (open.clone(), version.clone());
        out.push(
            Case::new(
                "admin/call-before-open",
                Level::Should,
                "admin CONNECT_GET_LIB_VERSION before CONNECT_OPEN gets REPLY/ERROR, as the remote \
                 program's calls do (libvirt's admin client always opens first); CONNECT_OPEN then \
                 works",
                SRC_ADMIN,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Admin)?;
                    lenient_if_ok(ctx, &mut peer, ADMIN_PROGRAM, &version, &open)
                },
            )
            .needs(&[ADMIN_OPEN]),
        );
    }
    {
        let (open, version) = (open.clone(), version.clone());
        out.push(
            Case::new(
                "admin/open-twice",
                Level::Should,
                "A second admin CONNECT_OPEN gets REPLY/ERROR, as the remote program's does; the \
                 connection stays open",
                SRC_ADMIN,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Admin)?;
                    ok(ctx, &mut peer, ADMIN_PROGRAM, &open)?;
                    lenient_if_ok(ctx, &mut peer, ADMIN_PROGRAM, &open, &version)
                },
            )
            .needs(&[ADMIN_OPEN]),
        );
    }
    {
        let (open, version, servers) = (open.clone(), version.clone(), servers.clone());
        out.push(
            Case::new(
                "admin/lib-version-and-servers",
                Level::Must,
                "After admin CONNECT_OPEN, CONNECT_GET_LIB_VERSION and CONNECT_LIST_SERVERS are \
                 answered REPLY/OK and decode",
                SRC_ADMIN,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Admin)?;
                    ok(ctx, &mut peer, ADMIN_PROGRAM, &open)?;
                    let v = ok(ctx, &mut peer, ADMIN_PROGRAM, &version)?;
                    let s = ok(ctx, &mut peer, ADMIN_PROGRAM, &servers)?;
                    Ok(Outcome::pass("two REPLY/OK", format!("{v}; {s}")))
                },
            )
            .needs(&[ADMIN_OPEN]),
        );
    }
    {
        let (open, close, version) = (open.clone(), close.clone(), version.clone());
        out.push(
            Case::new(
                "admin/call-after-close",
                Level::Must,
                "admin CONNECT_CLOSE is answered REPLY/OK; a call after it is refused or the \
                 connection closes",
                SRC_ADMIN,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Admin)?;
                    ok(ctx, &mut peer, ADMIN_PROGRAM, &open)?;
                    ok(ctx, &mut peer, ADMIN_PROGRAM, &close)?;
                    after_close(ctx, &mut peer, ADMIN_PROGRAM, &version)
                },
            )
            .needs(&[ADMIN_OPEN]),
        );
    }
    let setup_open = open.clone();
    out.extend(common(
        "admin",
        Endpoint::Admin,
        ADMIN_PROGRAM,
        ADMIN_OPEN,
        past_the_table(schema, ADMIN_PROGRAM),
        version,
        true,
        Arc::new(move |ctx, peer| ok(ctx, peer, ADMIN_PROGRAM, &setup_open).map(drop)),
    ));
    out
}

/// `c` should be refused (REPLY/ERROR, then `then` answered OK): pass; answered REPLY/OK instead:
/// non-strict (a lenient server); anything else fails.
fn lenient_if_ok(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    prog: u32,
    c: &Call,
    then: &Call,
) -> Result<Outcome, Outcome> {
    let s = ctx.call(peer, prog, c.number, &c.args)?;
    let r = ctx.expect_reply(peer, s)?;
    let t = ok(ctx, peer, prog, then)?;
    let got = format!("{r}; then {}: {t}", then.name);
    Ok(match r.header.status {
        MessageStatus::Error => Outcome::pass("REPLY/ERROR, then a working call", got),
        _ => Outcome::non_strict("REPLY/ERROR, then a working call", got),
    })
}

/// After a close: the next call is refused, or the connection closes.
fn after_close(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    prog: u32,
    c: &Call,
) -> Result<Outcome, Outcome> {
    let s = peer.serial();
    let bytes = FrameBuilder::call(prog, c.number, s)
        .payload(c.args.clone())
        .build_unchecked();
    if peer.send(&bytes, ctx.env().read_timeout).is_err() {
        return Ok(Outcome::pass(
            "a refusal or a close",
            "the connection was closed after CONNECT_CLOSE",
        ));
    }
    let deadline = ctx.read_deadline();
    Ok(match peer.reply(s, deadline) {
        Ok(r) if r.header.status == MessageStatus::Error => {
            Outcome::pass("a refusal or a close", r.to_string())
        }
        Ok(r) => Outcome::fail("a refusal or a close", r.to_string()),
        Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => {
            Outcome::pass("a refusal or a close", ctx.describe(peer, &ev))
        }
        Err(ev) => Outcome::fail("a refusal or a close", ctx.describe(peer, &ev)),
    })
}

/// A path no virtlogd has open (nor could create).
const NO_LOG: &[u8] = b"/nonexistent/virtwire/no-such.log";

/// DOMAIN_GET_LOG_FILE_POSITION { path; flags } of a path that names nothing.
fn log_position(schema: &Schema) -> Option<Call> {
    let mut position = call(schema, LOG_PROGRAM, "DOMAIN_GET_LOG_FILE_POSITION")?;
    let mut args = Vec::new();
    let mut w = Writer::new(&mut args);
    let _ = w.string(NO_LOG, u32::MAX);
    w.u32(0);
    position.args = args;
    Some(position)
}

/// REGISTER with [`register_args`].
fn lock_register(schema: &Schema) -> Option<Call> {
    let mut register = call(schema, LOCK_PROGRAM, "REGISTER")?;
    register.args = register_args();
    Some(register)
}

/// NEW { path ""; flags 0 }: the default lockspace, which exists: REPLY/ERROR "already exists"
/// once registered, "not registered" before; either way an error that proves the dispatch.
fn lock_new_default(schema: &Schema) -> Option<Call> {
    let mut new = call(schema, LOCK_PROGRAM, "NEW")?;
    let mut args = Vec::new();
    let mut w = Writer::new(&mut args);
    let _ = w.string(b"", u32::MAX);
    w.u32(0);
    new.args = args;
    Some(new)
}

fn log(schema: &Schema) -> Vec<Case> {
    let Some(position) = log_position(schema) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    {
        let position = position.clone();
        out.push(Case::new(
            LOG_FIRST,
            Level::Must,
            "virtlogd needs no open: a first DOMAIN_GET_LOG_FILE_POSITION for a file it does not \
             have open is dispatched and answered REPLY/ERROR \"No open log file …\"",
            SRC_LOG,
            move |ctx| {
                let (mut peer, ep) = ctx.connect_to(Endpoint::Virtlogd)?;
                let s = ctx.call(&mut peer, LOG_PROGRAM, position.number, &position.args)?;
                let r = ctx.expect_error(&mut peer, s, None, "No open log file")?;
                Ok(Outcome::pass(
                    "REPLY/ERROR \"No open log file …\"",
                    format!("{r} from {}", ep.describe()),
                ))
            },
        ));
    }
    out.extend(common(
        "log",
        Endpoint::Virtlogd,
        LOG_PROGRAM,
        LOG_FIRST,
        past_the_table(schema, LOG_PROGRAM),
        position,
        false,
        Arc::new(|_, _| Ok(())),
    ));
    out
}

/// `virLockSpaceProtocolRegisterArgs` for this process (virtlockd compares the owner's pid with
/// the peer's credentials on the unix socket).
fn register_args() -> Vec<u8> {
    let mut args = Vec::new();
    let mut w = Writer::new(&mut args);
    w.opaque_fixed(&[0x76; 16]);
    let _ = w.string(b"virtwire-conformance", u32::MAX);
    w.u32(1);
    w.u32(std::process::id());
    w.u32(0);
    args
}

fn lock(schema: &Schema) -> Vec<Case> {
    let (Some(register), Some(restrict), Some(new)) = (
        lock_register(schema),
        call(schema, LOCK_PROGRAM, "RESTRICT"),
        lock_new_default(schema),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    {
        let register = register.clone();
        out.push(Case::new(
            LOCK_REGISTER,
            Level::Must,
            "virtlockd REGISTER with this process's pid is answered REPLY/OK",
            SRC_LOCK,
            move |ctx| {
                let (mut peer, ep) = ctx.connect_to(Endpoint::Virtlockd)?;
                let got = ok(ctx, &mut peer, LOCK_PROGRAM, &register)?;
                Ok(Outcome::pass(
                    "REPLY/OK",
                    format!("{got} on {}", ep.describe()),
                ))
            },
        ));
    }
    {
        let (register, new) = (register.clone(), new.clone());
        out.push(
            Case::new(
                "lock/call-before-register",
                Level::Must,
                "A virtlockd call before REGISTER gets REPLY/ERROR \"lock owner details have not \
                 been registered\"; REGISTER then works",
                SRC_LOCK,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Virtlockd)?;
                    let s = ctx.call(&mut peer, LOCK_PROGRAM, new.number, &new.args)?;
                    let r = ctx.expect_error(&mut peer, s, None, "not been registered")?;
                    ok(ctx, &mut peer, LOCK_PROGRAM, &register)?;
                    Ok(Outcome::pass(
                        "REPLY/ERROR \"… not been registered\", then REGISTER OK",
                        r.to_string(),
                    ))
                },
            )
            .needs(&[LOCK_REGISTER]),
        );
    }
    {
        let register = register.clone();
        out.push(
            Case::new(
                "lock/register-twice",
                Level::Should,
                "A second virtlockd REGISTER on a connection gets REPLY/ERROR (an owner is \
                 registered once, like a remote CONNECT_OPEN)",
                SRC_LOCK,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Virtlockd)?;
                    ok(ctx, &mut peer, LOCK_PROGRAM, &register)?;
                    let s = ctx.call(&mut peer, LOCK_PROGRAM, register.number, &register.args)?;
                    let r = ctx.expect_reply(&mut peer, s)?;
                    Ok(match r.header.status {
                        MessageStatus::Error => Outcome::pass("REPLY/ERROR", r.to_string()),
                        _ => Outcome::non_strict("REPLY/ERROR", r.to_string()),
                    })
                },
            )
            .needs(&[LOCK_REGISTER]),
        );
    }
    {
        let (register, restrict, new) = (register.clone(), restrict.clone(), new.clone());
        out.push(
            Case::new(
                "lock/restricted",
                Level::Must,
                "After virtlockd RESTRICT (REPLY/OK), every further call gets REPLY/ERROR \
                 \"restricted\"",
                SRC_LOCK,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Virtlockd)?;
                    ok(ctx, &mut peer, LOCK_PROGRAM, &register)?;
                    ok(ctx, &mut peer, LOCK_PROGRAM, &restrict)?;
                    let s = ctx.call(&mut peer, LOCK_PROGRAM, new.number, &new.args)?;
                    let r = ctx.expect_error(&mut peer, s, None, "restricted")?;
                    Ok(Outcome::pass("REPLY/ERROR \"… restricted\"", r.to_string()))
                },
            )
            .needs(&[LOCK_REGISTER]),
        );
    }
    // The probe for the common cases: REGISTER on a connection that has not registered yet (the
    // only call virtlockd answers OK without a lockspace of ours).
    out.extend(common(
        "lock",
        Endpoint::Virtlockd,
        LOCK_PROGRAM,
        LOCK_REGISTER,
        past_the_table(schema, LOCK_PROGRAM),
        register,
        true,
        Arc::new(|_, _| Ok(())),
    ));
    out
}
