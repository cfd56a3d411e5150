//! `limits/`: every declared maximum of every procedure's arguments, at the bound and one over,
//! generated from the schema (docs/protocol.md §2 "Per-field limits", §7 "Maxima ARE enforced on
//! decode").
//!
//! For each program libvirtd serves on its main socket ([`MAIN_SOCKET_PROGRAMS`]), each procedure
//! with an args struct and each bounded item reachable from it
//! ([`virtwire_protocol::schema::bounds`]), two cases:
//!
//! - `limits/<program>/<procedure>/<path>/max`: the arguments minimal except that item, which holds
//!   exactly its bound (strings and opaques of `x`, arrays of minimal elements). The decoder must
//!   accept it: the answer is REPLY/OK, or of the same class (status, error code and domain, the
//!   message with the value's echo set aside) as the answer to the same call with one item (the
//!   baseline, made first on a connection of its own), so a server that refuses the bound in
//!   words other than "Unable to decode message payload" fails; and the connection still answers.
//! - `limits/<program>/<procedure>/<path>/over`: one more. REPLY/ERROR "Unable to decode message
//!   payload" (VIR_ERR_RPC), and the connection still answers.
//!
//! The minimal arguments name nothing in the test driver's world (empty names, the all-zero UUID),
//! and the bounded strings are runs of `x` that parse as nothing: the cases change no shared state.
//! Bodies are built when the case runs, not when the catalogue is listed (the 4 MiB strings are
//! 4 MiB on the wire at the bound and one over; there is no smaller probe of a 4 MiB bound).

use std::sync::{Arc, Mutex};

use virtwire_protocol::header::{LXC_PROGRAM, QEMU_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::schema::bounds::{self, BoundedField};
use virtwire_protocol::schema::{Schema, TypeId};
use virtwire_protocol::{BodyRole, LimitKind, Limits, MessageStatus};

use super::OPEN;
use crate::runner::ctx::{Endpoint, code, proc};
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::peer::Peer;

/// The programs libvirtd dispatches on its main (TCP, unix) socket: remote, qemu and lxc
/// (`src/remote/remote_daemon.c`, `virNetServerAddProgram`). The admin, log and lock programs
/// have their own daemons or sockets.
pub const MAIN_SOCKET_PROGRAMS: [u32; 3] = [REMOTE_PROGRAM, QEMU_PROGRAM, LXC_PROGRAM];

const SRC: &str = "docs/protocol.md §2 (per-field limits), §7 (maxima enforced on decode), \
                   §11; src/rpc/virnetserverprogram.c virNetServerProgramDispatchCall";

/// The fill byte of bounded strings and opaques.
const FILL: u8 = b'x';

/// What the generator made of one program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramCount {
    /// The program's short name.
    pub program: String,
    /// Procedures with an args struct.
    pub procedures_with_args: usize,
    /// Bounded items reachable from those args.
    pub fields: usize,
    /// Items whose over-the-bound body does not fit in one frame: their cases say so.
    pub too_big: usize,
}

/// The ID of the case that records the test driver's world before the family runs.
pub const WORLD_BEFORE: &str = "limits/world-before";

/// The limits cases of every program in [`MAIN_SOCKET_PROGRAMS`], and what they cover; between
/// [`WORLD_BEFORE`] and `limits/world-after`, which check that the family changed nothing a later
/// case sees.
pub fn cases(schema: &Arc<Schema>) -> (Vec<Case>, Vec<ProgramCount>) {
    let world = Arc::new(Mutex::new(None));
    let mut all = vec![world_case(world.clone(), true)];
    let mut counts = Vec::new();
    for prog in MAIN_SOCKET_PROGRAMS {
        let Some(p) = schema.programs().iter().find(|p| p.number() == prog) else {
            continue;
        };
        let (cases, count) = program_cases(schema, p.number(), p.version());
        all.extend(cases);
        counts.push(count);
    }
    all.push(world_case(world, false));
    (all, counts)
}

/// The objects of the test driver's world, as `CONNECT_LIST_ALL_*` report them (all, then the active
/// ones), each list sorted.
type World = Vec<(String, Vec<String>)>;

/// The `CONNECT_LIST_ALL_*` procedures (remote_protocol.x) and their "active only" flag
/// (`VIR_CONNECT_LIST_*_ACTIVE`; 0 where there is none).
const LIST_ALL: [(&str, i32, u32); 7] = [
    ("domains", 273, 1),
    ("storage pools", 281, 2),
    ("networks", 283, 2),
    ("interfaces", 284, 2),
    ("node devices", 285, 0),
    ("nwfilters", 286, 0),
    ("secrets", 287, 0),
];

/// VIR_ERR_NO_SUPPORT (virerror.h).
const NO_SUPPORT: i32 = 3;

fn snapshot(ctx: &mut Ctx<'_>) -> Result<World, Outcome> {
    let mut peer = ctx.opened()?;
    let mut world = Vec::new();
    for (what, procedure, active) in LIST_ALL {
        let flags: &[u32] = if active == 0 { &[0] } else { &[0, active] };
        for f in flags {
            let mut args = 1i32.to_be_bytes().to_vec();
            args.extend(f.to_be_bytes());
            let s = ctx.call(&mut peer, REMOTE_PROGRAM, procedure, &args)?;
            let r = ctx.expect_reply(&mut peer, s)?;
            // A driver without this kind of object (the test driver has no nwfilters) answers
            // VIR_ERR_NO_SUPPORT: recorded as such, compared like any list.
            if r.header.status != MessageStatus::Ok {
                match &r.error {
                    Some(e) if e.code == NO_SUPPORT => {
                        world.push((what.to_string(), vec!["(not supported)".into()]));
                        break;
                    }
                    _ => {
                        return Err(Outcome::fail(
                            "REPLY/OK or \"not supported\"",
                            r.to_string(),
                        ));
                    }
                }
            }
            let mut items: Vec<String> = match &r.body {
                serde_json::Value::Object(m) => m
                    .values()
                    .filter_map(|v| v.as_array())
                    .flatten()
                    .map(|v| v.to_string())
                    .collect(),
                _ => Vec::new(),
            };
            items.sort();
            let label = if *f == 0 {
                what.to_string()
            } else {
                format!("active {what}")
            };
            world.push((label, items));
        }
    }
    Ok(world)
}

fn describe(w: &World) -> String {
    w.iter()
        .map(|(what, items)| format!("{} {what}", items.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `limits/world-before` records the world; `limits/world-after` must find it unchanged. Both run
/// alone (exclusive), so every case of the family runs between them.
fn world_case(world: Arc<Mutex<Option<World>>>, before: bool) -> Case {
    let src = "docs/protocol.md §11 (the test driver's shared world); the limits family's minimal arguments";
    if before {
        Case::new(
            WORLD_BEFORE,
            Level::Must,
            "The test driver's world (every object CONNECT_LIST_ALL_* reports, and which are active) is listed before the limits family",
            src,
            move |ctx| {
                let w = snapshot(ctx)?;
                let d = describe(&w);
                *world.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
                Ok(Outcome::pass(
                    "every CONNECT_LIST_ALL_* answered (REPLY/OK, or \"not supported\")",
                    d,
                ))
            },
        )
        .needs(&[OPEN])
        .exclusive()
    } else {
        Case::new(
            "limits/world-after",
            Level::Must,
            "The limits family leaves the test driver's world as it found it (its arguments name nothing and parse as nothing)",
            src,
            move |ctx| {
                let now = snapshot(ctx)?;
                let then = world.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let Some(then) = then else {
                    return Ok(Outcome::error("limits/world-before recorded nothing"));
                };
                if now == then {
                    return Ok(Outcome::pass("the same objects, the same active ones", describe(&now)));
                }
                let diff: Vec<String> = then
                    .iter()
                    .zip(&now)
                    .filter(|(a, b)| a != b)
                    .map(|((what, a), (_, b))| format!("{what}: before {a:?}, after {b:?}"))
                    .collect();
                Ok(Outcome::fail(
                    format!("unchanged: {}", describe(&then)),
                    diff.join("; "),
                ))
            },
        )
        .needs(&[OPEN, WORLD_BEFORE])
        .exclusive()
    }
}

/// Where a program's limits cases are sent, and how the connection is shown to still answer.
#[derive(Clone, Debug)]
pub struct Route {
    /// The endpoint serving the program; `None`: the target itself (opened with CONNECT_OPEN).
    pub endpoint: Option<Endpoint>,
    /// A call (procedure, args) a new connection needs answered REPLY/OK before the probe (admin
    /// CONNECT_OPEN, lock REGISTER); when the probe is that procedure, it is made after it.
    pub setup: Option<(i32, Vec<u8>)>,
    /// A call (procedure, args) answered after the probe — REPLY/OK when `check_ok`, else any
    /// REPLY — showing the connection was kept.
    pub check: (i32, Vec<u8>),
    /// Whether `check` must be REPLY/OK.
    pub check_ok: bool,
    /// The case every case of the program needs.
    pub needs: &'static str,
    /// Run each case alone: a probe may crash the server after its connection ends (virtlockd
    /// 9.0), and cases beside it would take the blame.
    pub exclusive: bool,
}

impl Route {
    /// The target's own socket: [`Ctx::opened`] connections, CONNECT_GET_TYPE as the check.
    pub fn main_socket() -> Route {
        Route {
            endpoint: None,
            setup: None,
            check: (proc::CONNECT_GET_TYPE, Vec::new()),
            check_ok: true,
            needs: OPEN,
            exclusive: false,
        }
    }
}

/// The limits cases of one program of the schema (two per bounded args item), sent with
/// [`Ctx::opened`] connections. Empty when the schema has no such program.
pub fn program_cases(schema: &Arc<Schema>, prog: u32, vers: u32) -> (Vec<Case>, ProgramCount) {
    program_cases_via(schema, prog, vers, &Route::main_socket())
}

/// [`program_cases`] for a program served on `route` (the admin, log and lock programs on their
/// own servers).
pub fn program_cases_via(
    schema: &Arc<Schema>,
    prog: u32,
    vers: u32,
    route: &Route,
) -> (Vec<Case>, ProgramCount) {
    let mut out = Vec::new();
    let Some(p) = schema.program(prog, vers) else {
        return (out, ProgramCount::default());
    };
    let mut count = ProgramCount {
        program: p.name().to_string(),
        ..ProgramCount::default()
    };
    let payload_max = Limits::default().payload_max() as u64;
    for q in p.procedure_list() {
        let Some((args_name, args)) = q.body(BodyRole::Args) else {
            continue;
        };
        count.procedures_with_args += 1;
        for f in bounds::bounded_fields(schema, args) {
            count.fields += 1;
            let over_len = bounds::len_with_count(schema, args, &f, f.max.saturating_add(1));
            if over_len > payload_max {
                count.too_big += 1;
            }
            let probe = Arc::new(Probe {
                schema: schema.clone(),
                prog,
                procedure: q.number,
                proc_name: q.name.clone(),
                args,
                field: f,
                over_len,
                payload_max,
                route: route.clone(),
            });
            let base = format!(
                "limits/{}/{}/{}",
                slug(p.name()),
                slug(&q.name),
                path_slug(&probe.field.path)
            );
            let what = format!(
                "{}'s `{}` ({} {}<{}>)",
                args_name,
                probe.field.path,
                limit_word(probe.field.limit),
                probe.field.name,
                probe.field.max
            );
            let pm = probe.clone();
            out.push(
                Case::new(
                    format!("{base}/max"),
                    Level::Must,
                    format!(
                        "{} {what} at its bound decodes: REPLY/OK or the answer the call gets with one item; connection kept",
                        q.name
                    ),
                    SRC,
                    move |ctx| pm.at_max(ctx),
                )
                .needs(&[route.needs])
                .exclusive_if(route.exclusive),
            );
            let po = probe;
            out.push(
                Case::new(
                    format!("{base}/over"),
                    Level::Must,
                    format!(
                        "{} {what} one over its bound is refused with \"Unable to decode message payload\"; connection kept",
                        q.name
                    ),
                    SRC,
                    move |ctx| po.over(ctx),
                )
                .needs(&[route.needs])
                .exclusive_if(route.exclusive),
            );
        }
    }
    (out, count)
}

fn limit_word(l: LimitKind) -> &'static str {
    match l {
        LimitKind::String => "string",
        LimitKind::Opaque => "opaque",
        _ => "array",
    }
}

/// `DOMAIN_CREATE_XML` → `domain-create-xml`, `maxStats` → `max-stats`.
fn slug(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch.is_ascii_uppercase() && prev_lower {
            s.push('-');
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        match ch {
            '_' | '-' | ' ' => {
                if !s.ends_with('-') {
                    s.push('-');
                }
                prev_lower = false;
            }
            c if c.is_ascii_alphanumeric() => s.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    s.trim_matches('-').to_string()
}

/// A field path as ID parts: `params[0].value.s` → `params/0/value/s`.
fn path_slug(path: &str) -> String {
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|p| !p.is_empty())
        .map(slug)
        .collect::<Vec<_>>()
        .join("/")
}

/// One bounded item of one procedure's args.
struct Probe {
    schema: Arc<Schema>,
    prog: u32,
    procedure: i32,
    proc_name: String,
    args: TypeId,
    field: BoundedField,
    over_len: u64,
    payload_max: u64,
    route: Route,
}

impl Probe {
    fn too_big(&self, count: u64) -> Option<Outcome> {
        let len = bounds::len_with_count(&self.schema, self.args, &self.field, count as u32);
        (len > self.payload_max).then(|| {
            Outcome::unsupported(format!(
                "{} args with `{}` holding {count} items take {len} bytes, over the {}-byte \
                 payload limit: no frame can carry them",
                self.proc_name, self.field.path, self.payload_max
            ))
        })
    }

    /// CONNECT_OPEN is probed on a connection not yet open: on an open one libvirtd answers
    /// "connection already open" and, in the same error path, closes the open one
    /// (remoteDispatchConnectOpen's cleanup), which says nothing about the decoder.
    fn is_open_call(&self) -> bool {
        self.prog == REMOTE_PROGRAM && self.procedure == proc::CONNECT_OPEN
    }

    /// Whether the probe is the route's setup call itself (lock REGISTER).
    fn is_setup_call(&self) -> bool {
        self.route
            .setup
            .as_ref()
            .is_some_and(|(n, _)| *n == self.procedure)
    }

    /// A connection to send the probe on: opened, except for CONNECT_OPEN itself.
    fn peer(&self, ctx: &mut Ctx<'_>) -> Result<Peer, Outcome> {
        if let Some(e) = self.route.endpoint {
            let (mut peer, _) = ctx.connect_to(e)?;
            if let Some((n, args)) = self.route.setup.as_ref().filter(|_| !self.is_setup_call()) {
                let s = ctx.call(&mut peer, self.prog, *n, args)?;
                ctx.expect_ok(&mut peer, s)?;
            }
            return Ok(peer);
        }
        if self.is_open_call() {
            ctx.connect()
        } else {
            ctx.opened()
        }
    }

    /// The connection still answers a plain call after the probe (after a normal CONNECT_OPEN
    /// when the probe was CONNECT_OPEN).
    fn still_answers(&self, ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(), Outcome> {
        if self.route.endpoint.is_some() {
            if let Some((n, args)) = self.route.setup.as_ref().filter(|_| self.is_setup_call()) {
                let s = ctx.call(peer, self.prog, *n, args)?;
                ctx.expect_ok(peer, s).map_err(|o| {
                    Outcome::fail("the connection still answers its setup call", o.actual)
                })?;
            }
            let (n, args) = &self.route.check;
            let s = ctx.call(peer, self.prog, *n, args)?;
            let r = ctx
                .expect_reply(peer, s)
                .map_err(|o| Outcome::fail("the connection still answers", o.actual))?;
            if self.route.check_ok && r.header.status != MessageStatus::Ok {
                return Err(Outcome::fail(
                    "the connection still answers REPLY/OK",
                    r.to_string(),
                ));
            }
            // Close our side: the server handles the end of the probe's connection now.
            let _ = peer.shutdown_write();
            return self.still_serves(ctx);
        }
        if self.is_open_call() {
            ctx.open(peer)
                .map_err(|o| Outcome::fail("the connection can still be opened", o.actual))?;
        }
        let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
        ctx.expect_ok(peer, s).map_err(|o| {
            Outcome::fail("the connection still answers CONNECT_GET_TYPE", o.actual)
        })?;
        Ok(())
    }

    /// An endpoint's server (a daemon of its own, which may die after the probe's connection
    /// closes) still serves a new connection: its setup call, or its check, answered.
    fn still_serves(&self, ctx: &mut Ctx<'_>) -> Result<(), Outcome> {
        let Some(e) = self.route.endpoint else {
            return Ok(());
        };
        // Let the server see the probe's connection end before the new one.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (mut peer, _) = ctx.connect_to(e).map_err(|o| {
            Outcome::fail(
                "the server still serves new connections after the probe",
                o.actual,
            )
        })?;
        let (n, args) = self.route.setup.as_ref().unwrap_or(&self.route.check);
        let s = ctx.call(&mut peer, self.prog, *n, args)?;
        ctx.expect_reply(&mut peer, s).map_err(|o| {
            Outcome::fail(
                "the server still serves new connections after the probe",
                o.actual,
            )
        })?;
        Ok(())
    }

    /// The item at its bound must be decoded. The answer alone cannot say so (a server may refuse
    /// the value in words of its own), so the same call with a short legal value of the item (one
    /// item) is made first, on a connection of its own, as the baseline: the answer at the bound
    /// must be of the same class (status, error code and domain, message up to the value's echo
    /// once runs of the fill byte and of digits are set aside), or REPLY/OK, or an error only code
    /// past the decoder raises (VIR_ERR_SYSTEM_ERROR: a system call failed on the value; "Unable
    /// to encode message payload": the answer is what is too big). Anything else is a refusal at
    /// the bound.
    fn at_max(&self, ctx: &mut Ctx<'_>) -> Result<Outcome, Outcome> {
        if let Some(o) = self.too_big(self.field.max as u64) {
            return Ok(o);
        }
        let short = bounds::with_count(
            &self.schema,
            self.args,
            &self.field,
            self.field.max.min(1),
            FILL,
        );
        let base = {
            let mut peer = self.peer(ctx)?;
            let s = ctx.call(&mut peer, self.prog, self.procedure, &short)?;
            ctx.expect_reply(&mut peer, s).map_err(|o| {
                Outcome::fail(
                    format!(
                        "a REPLY to the baseline call (`{}` holding one item)",
                        self.field.path
                    ),
                    o.actual,
                )
            })?
        };
        let body = bounds::at_max(&self.schema, self.args, &self.field, FILL);
        let mut peer = self.peer(ctx)?;
        let s = ctx.call(&mut peer, self.prog, self.procedure, &body)?;
        drop(body);
        let r = ctx.expect_reply(&mut peer, s)?;
        let expected = format!(
            "{} items in `{}` decoded: REPLY/OK, or the answer the same call gets with one item \
             ({})",
            self.field.max,
            self.field.path,
            AnswerClass::of(&base)
        );
        let same = AnswerClass::of(&r) == AnswerClass::of(&base);
        // An OS call failed on the value (virReportSystemError: VIR_ERR_SYSTEM_ERROR, with
        // errno's text, e.g. virtlockd's "File name too long"): only code past the decoder
        // reports that.
        // The reply could not be encoded (virNetMessageEncodePayload's "Unable to encode message
        // payload", VIR_ERR_RPC): the call was decoded and served, and its answer, which echoes
        // the value, is what is over the limit (libvirt 11.3's domain capabilities).
        let past_decoder = r.error.as_ref().is_some_and(|e| {
            e.code == SYSTEM_ERROR
                || (e.code == code::RPC
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("Unable to encode message payload")))
        });
        if !same && !past_decoder && r.header.status != MessageStatus::Ok {
            return Ok(Outcome::fail(
                expected,
                format!("refused at the bound: {r} (with one item: {base})"),
            ));
        }
        self.still_answers(ctx, &mut peer)?;
        Ok(Outcome::pass(
            expected,
            format!("{r}; connection kept (with one item: {base})"),
        ))
    }

    fn over(&self, ctx: &mut Ctx<'_>) -> Result<Outcome, Outcome> {
        if self.over_len > self.payload_max {
            return Ok(self.too_big(self.field.over()).unwrap_or_else(|| {
                Outcome::error("the over-limit body fits after all (schema changed?)")
            }));
        }
        let body = bounds::over_max(&self.schema, self.args, &self.field, FILL);
        let mut peer = self.peer(ctx)?;
        let s = ctx.call(&mut peer, self.prog, self.procedure, &body)?;
        drop(body);
        let r = ctx.expect_error(
            &mut peer,
            s,
            Some(code::RPC),
            "Unable to decode message payload",
        )?;
        self.still_answers(ctx, &mut peer)?;
        Ok(Outcome::pass(
            format!(
                "REPLY/ERROR \"Unable to decode message payload\" for {} items in `{}` (bound {})",
                self.field.over(),
                self.field.path,
                self.field.max
            ),
            format!("{r}; connection kept"),
        ))
    }
}

/// VIR_ERR_SYSTEM_ERROR (virerror.h): a system call failed (virReportSystemError).
const SYSTEM_ERROR: i32 = 38;

/// What kind of answer a reply is, for comparing the answer at a bound with the baseline's: its
/// type and status, and for an error its code, domain and message up to the end of the value's
/// echo (the first run of the fill byte: what follows it may depend on the value, such as
/// errno's text), with every run of the fill byte and of digits replaced by one `…` (a message
/// that echoes the value or a count is the same message).
#[derive(Debug, PartialEq, Eq)]
struct AnswerClass {
    msg_type: i32,
    status: i32,
    error: Option<(i32, i32, String)>,
}

impl AnswerClass {
    fn of(r: &crate::wire::peer::Reply) -> Self {
        AnswerClass {
            msg_type: r.header.msg_type.raw(),
            status: r.header.status.raw(),
            error: r.error.as_ref().map(|e| {
                (
                    e.code,
                    e.domain,
                    squeeze(up_to_echo(e.message.as_deref().unwrap_or(""))),
                )
            }),
        }
    }
}

impl std::fmt::Display for AnswerClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            None if self.status == MessageStatus::Ok.raw() => f.write_str("REPLY/OK"),
            None => write!(f, "type {} status {}", self.msg_type, self.status),
            Some((code, domain, m)) => {
                write!(f, "REPLY/ERROR code {code} domain {domain} {m:?}")
            }
        }
    }
}

/// `m` up to the end of its first run of [`FILL`] bytes that stands alone (no letter just before
/// or after it: the value's echo, not the `x` of a word such as "exist"); all of `m` when there
/// is none.
fn up_to_echo(m: &str) -> &str {
    let b = m.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != FILL {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] == FILL {
            i += 1;
        }
        let before = start.checked_sub(1).map(|k| b[k]);
        let after = b.get(i).copied();
        if !before.is_some_and(|c| c.is_ascii_alphabetic())
            && !after.is_some_and(|c| c.is_ascii_alphabetic())
        {
            return &m[..i];
        }
    }
    m
}

/// `m` with every run of [`FILL`] bytes or of digits replaced by `…`.
fn squeeze(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(256));
    let mut in_run = false;
    for c in m.chars() {
        let run = c == FILL as char || c.is_ascii_digit();
        if run && !in_run {
            out.push('…');
        } else if !run {
            out.push(c);
        }
        in_run = run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeezed_messages() {
        assert_eq!(
            squeeze("Domain not found: no domain with matching name 'xxxxxxxx'"),
            squeeze("Domain not found: no domain with matching name 'x'")
        );
        assert_eq!(squeeze("too many '12' > '3'"), "too many '…' > '…'");
        assert_eq!(
            squeeze(up_to_echo(
                "Unable to open resource xxxx: File name too long"
            )),
            squeeze(up_to_echo("Unable to open resource x: Is a directory"))
        );
        assert_eq!(up_to_echo("no echo here"), "no echo here");
        assert_eq!(
            up_to_echo("does not exist: 'xx', at all"),
            "does not exist: 'xx"
        );
        assert_ne!(
            squeeze("Unable to decode message payload"),
            squeeze("internal error: value too long")
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("DOMAIN_CREATE_XML"), "domain-create-xml");
        assert_eq!(slug("maxStats"), "max-stats");
        assert_eq!(slug("xml_desc"), "xml-desc");
        assert_eq!(slug("cookie_in"), "cookie-in");
        assert_eq!(path_slug("params[0].value.s"), "params/0/value/s");
        assert_eq!(path_slug("dom.name"), "dom/name");
        assert_eq!(path_slug("names[0]"), "names/0");
    }
}
