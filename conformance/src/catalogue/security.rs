//! Who may call what: the read-only socket and SASL authentication, both generated from the
//! schema (never hand-listed).
//!
//! **Read-only.** libvirtd marks a connection that arrives on its read-only socket VIR_CONNECT_RO
//! (src/remote/remote_daemon_dispatch.c remoteDispatchConnectOpen), and every public API that
//! changes state begins with `virCheckReadOnlyGoto(conn->flags, error)` (src/internal.h), which
//! refuses with VIR_ERR_OPERATION_DENIED, "operation forbidden: read only access prevents
//! <the API>". Which procedures reach such a check is derived from libvirt's sources
//! (`scripts/derive-readonly.py`, [`super::readonly_calls`], docs/readonly.md), one table per
//! release; a case asks the daemon its version (CONNECT_GET_LIB_VERSION) and uses that release's
//! table. `security/readonly-<proc>` (MUST) follows the table: a refused procedure must get that
//! code and that exact text, the others must not get the read-only refusal. A call that the API's
//! argument checks refuse before its read-only check (a zero pid, no new name, no CPU XML, no
//! descriptor) is retried with arguments that pass them ([`retry_args`]; a descriptor is sent over
//! the read-only unix socket) before the case says it cannot reach the check. A check that applies
//! only under a condition (`flags & VIR_DOMAIN_XML_SECURE`, `source == …_SRC_AGENT`) has a second
//! MUST case, `security/readonly-<proc>-<secure|guest|agent>`, that meets it ([`condition_args`]).
//!
//! The `@acl:` annotations of remote_protocol.x, with viraccessperm.h's `@anonymous` flags
//! ([`ANONYMOUS`]; docs/acl.rst), feed a different mechanism: the access-control drivers. Where a
//! procedure's annotation says otherwise than libvirt's check, `security/readonly-acl-<proc>`
//! (SHOULD) compares the annotation with what the server did: a disagreement is libvirt's own
//! annotation being inconsistent with its enforcement, reported as non-strict.
//!
//! **SASL.** Before a client on a listener with `auth_tcp = "sasl"` authenticates, only the
//! authentication procedures (`AUTH_*`: AUTH_LIST, AUTH_SASL_INIT/START/STEP, AUTH_POLKIT) are
//! dispatched; every other call is refused with VIR_ERR_RPC "authentication required"
//! (src/rpc/gendispatch.pl marks every procedure but the AUTH ones as needing authentication;
//! src/rpc/virnetserverprogram.c refuses them; docs/protocol.md §4). A wrong password fails the
//! SASL exchange. The mechanism is DIGEST-MD5 (RFC 2831, cyrus-sasl's `libdigestmd5`): over plain
//! TCP libvirtd asks SASL for a security layer of at least 56 bits (remoteDispatchAuthSaslInit),
//! which rules out PLAIN and SCRAM; DIGEST-MD5 with `qop=auth-conf` provides one, and its
//! exchange is two MD5 computations (the `md-5` crate).

use std::os::fd::AsFd;
use std::sync::Arc;

use md5::{Digest, Md5};
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::{Procedure, Schema, Value, bounds};
use virtwire_protocol::{Limits, MessageStatus, Writer};

use super::readonly_calls::{self, Refused, Row, Table};
use crate::runner::ctx::{Endpoint, proc};
use crate::runner::{Case, Ctx, Level, Outcome, Verdict};
use crate::wire::peer::{Peer, Reply};

/// VIR_ERR_OPERATION_DENIED (virerror.h): what virCheckReadOnlyGoto reports.
pub const OPERATION_DENIED: i32 = 29;
/// VIR_ERR_RPC.
const RPC: i32 = 39;
/// VIR_ERR_AUTH_FAILED.
pub const AUTH_FAILED: i32 = 45;
/// The text libvirt's read-only refusal carries ("read only access prevents virDomainDestroy").
pub const READ_ONLY_TEXT: &str = "read only access prevents";

/// The permissions marked `@anonymous: 1` in libvirt's src/access/viraccessperm.h: what a
/// read-only connection may exercise.
pub const ANONYMOUS: &[&str] = &[
    "connect:getattr",
    "connect:read",
    "connect:search_domains",
    "connect:search_networks",
    "connect:search_storage_pools",
    "connect:search_node_devices",
    "connect:search_interfaces",
    "connect:search_secrets",
    "connect:search_nwfilters",
    "connect:search_nwfilter_bindings",
    "domain:getattr",
    "domain:read",
    "interface:getattr",
    "interface:read",
    "network:getattr",
    "network:read",
    "network_port:getattr",
    "network_port:read",
    "node_device:getattr",
    "nwfilter:getattr",
    "nwfilter:read",
    "nwfilter_binding:getattr",
    "nwfilter_binding:read",
    "secret:getattr",
    "secret:read",
    "storage_pool:getattr",
    "storage_pool:read",
    "storage_vol:getattr",
    "storage_vol:read",
];

/// The first `@acl:` permission of `p` that applies to a call with minimal arguments and is not
/// anonymous: `Some` when the annotation says a read-only connection may not make that call (what
/// `security/readonly-acl-<proc>` compares with libvirt's check). `Err` when `p` has no `@acl:`
/// line at all.
pub fn write_permission(p: &Procedure) -> Result<Option<String>, String> {
    let rules: Vec<&str> = p.annotation("acl").collect();
    if rules.is_empty() {
        return Err(format!("{} has no @acl annotation", p.constant));
    }
    for rule in rules {
        if rule == "none" {
            continue;
        }
        let mut parts = rule.splitn(3, ':');
        let (object, perm, cond) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        // `FLAG|FLAG`: only when a flag is set (flags are 0). `!FLAG`: when none is (applies).
        // `:param:value`: only when the parameter has that value (minimal args: 0, never a name).
        let applies = cond.is_empty() || cond.starts_with('!') || cond == ":" || {
            cond.strip_prefix(':')
                .and_then(|pv| pv.split_once(':'))
                .is_some_and(|(_, v)| v == "0")
        };
        let name = format!("{object}:{perm}");
        if applies && !ANONYMOUS.contains(&name.as_str()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// A procedure name as a case ID part: `DOMAIN_GET_XML_DESC` → `domain-get-xml-desc`.
pub fn kebab(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Procedures a client calls: those with an args body or a ret body or neither; a procedure with
/// only a msg body is a server-to-client event, never called.
fn callable(p: &Procedure) -> bool {
    !(p.msg.is_some() && p.args.is_none() && p.ret.is_none())
}

/// The minimal args of `p` (flags 0, empty strings, absent optionals, zero counts).
fn minimal_args(schema: &Schema, p: &Procedure) -> Vec<u8> {
    p.args
        .as_ref()
        .map_or_else(Vec::new, |(_, ty)| bounds::zero_bytes(schema, *ty))
}

const SRC_RO: &str = "src/internal.h virCheckReadOnlyGoto (VIR_ERR_OPERATION_DENIED \"read only \
                      access prevents %s\"); each API's check in src/libvirt-*.c, derived by \
                      scripts/derive-readonly.py (docs/readonly.md); \
                      src/remote/remote_daemon_dispatch.c remoteDispatchConnectOpen (VIR_CONNECT_RO)";
const SRC_ACL: &str = "remote_protocol.x @acl; src/access/viraccessperm.h @anonymous; libvirt \
                       docs/acl.rst; the derived read-only table (docs/readonly.md)";
const SRC_SASL: &str = "src/rpc/gendispatch.pl (needAuth: all but AUTH_*); \
                        src/rpc/virnetserverprogram.c (\"authentication required\"); \
                        src/remote/remote_daemon_dispatch.c (SASL); RFC 2831; docs/protocol.md §4";

/// The ID every read-only case needs.
pub const RO_OPEN: &str = "security/readonly-open";
/// The ID every SASL case needs.
pub const SASL_LIST: &str = "security/sasl-auth-list";

/// The security cases for the remote program of `schema`.
pub fn cases(schema: &Schema) -> Vec<Case> {
    let mut out = vec![Case::new(
        RO_OPEN,
        Level::Must,
        "CONNECT_OPEN on the read-only socket is answered REPLY/OK",
        "docs/protocol.md §6; libvirtd.conf unix_sock_ro_perms",
        |ctx| {
            let (mut peer, ep) = ctx.connect_to(Endpoint::ReadOnly)?;
            ctx.open_as(&mut peer, ep.open_name().as_deref())?;
            Ok(Outcome::pass(
                "REPLY/OK",
                format!("opened on {}", ep.describe()),
            ))
        },
    )];
    let Some(remote) = schema.program(REMOTE_PROGRAM, 1) else {
        return out;
    };
    let tables = match readonly_calls::tables() {
        Ok(t) => t,
        Err(e) => {
            out.push(Case::new(
                "security/readonly-table",
                Level::Must,
                "The committed read-only tables parse",
                SRC_RO,
                move |_| {
                    Ok(Outcome::error(format!(
                        "the read-only table is broken: {e}"
                    )))
                },
            ));
            &[]
        }
    };
    for p in remote.procedure_list() {
        if !callable(p) || p.number == proc::CONNECT_OPEN {
            continue;
        }
        // The AUTH_* steps of a mechanism the socket does not use are refused without an error of
        // their own (libvirtd 9.0 logs "client tried invalid … request" and sends "Library function
        // returned error but did not set virError"); under --jobs 2 AUTH_POLKIT's refusal was twice
        // seen carrying another connection's error instead ("read only access prevents
        // virDomainMigratePerform"; FINDINGS.md). No read-only verdict can be read from such a
        // reply; what it carries is STALE_ERROR's question.
        if p.name.starts_with("AUTH_") && p.number != proc::AUTH_LIST {
            continue;
        }
        let plan = Arc::new(Plan {
            number: p.number,
            name: p.name.clone(),
            args: minimal_args(schema, p),
            retry: retry_args(schema, p),
        });
        let plan2 = plan.clone();
        out.push(
            Case::new(
                format!("security/readonly-{}", kebab(&p.name)),
                Level::Must,
                must_requirement(&p.name, tables),
                SRC_RO,
                move |ctx| must_case(ctx, &plan),
            )
            .needs(&[RO_OPEN]),
        );
        // A conditional check (`if` in some release's table): the call that meets the condition.
        let conditional = tables.iter().any(|t| {
            t.row(&p.name)
                .is_some_and(|r| matches!(r.refused, Refused::If(_)))
        });
        if let Some((suffix, args, what)) = conditional.then(|| condition_args(schema, p)).flatten()
        {
            let (name, number) = (p.name.clone(), p.number);
            out.push(
                Case::new(
                    format!("security/readonly-{}-{suffix}", kebab(&p.name)),
                    Level::Must,
                    format!(
                        "MUST (libvirt's own enforcement): {name} with {what} on the read-only \
                         socket is refused with REPLY/ERROR code {OPERATION_DENIED} as libvirt's \
                         conditional check says; {}",
                        table_summary(&p.name, tables)
                    ),
                    SRC_RO,
                    move |ctx| condition_case(ctx, &name, number, &args, what),
                )
                .needs(&[RO_OPEN]),
            );
        }
        // The annotation's own case, where it and some release's check disagree.
        let Ok(perm) = write_permission(p) else {
            continue;
        };
        let disagrees = tables.iter().any(|t| {
            t.row(&p.name)
                .is_some_and(|r| (r.refused == Refused::Yes) != perm.is_some())
        });
        if !disagrees {
            continue;
        }
        let acl = p.annotation("acl").collect::<Vec<_>>().join(", ");
        let says = match &perm {
            Some(x) => {
                format!("needs {x}, which is not anonymous: refused on a read-only connection")
            }
            None => "needs only anonymous permissions: allowed on a read-only connection".into(),
        };
        let requirement = format!(
            "SHOULD: {name}'s @acl annotation ({acl}) {says}; what the server does on the read-only \
             socket agrees with it. libvirt enforces read-only with virCheckReadOnlyGoto, not with \
             the annotations, so a disagreement is libvirt's annotation being inconsistent with its \
             own check (non-strict), never a MUST failure; {table}",
            name = p.name,
            table = table_summary(&p.name, tables),
        );
        let annotation_refuses = perm.is_some();
        out.push(
            Case::new(
                format!("{ACL_PREFIX}{}", kebab(&p.name)),
                Level::Should,
                requirement,
                SRC_ACL,
                move |ctx| acl_case(ctx, &plan2, annotation_refuses, &acl),
            )
            .needs(&[RO_OPEN]),
        );
    }
    if let (Some(polkit), Some(lookup)) = (
        remote.procedure_by_name("AUTH_POLKIT"),
        remote.procedure_by_name("NETWORK_LOOKUP_BY_NAME"),
    ) {
        out.push(stale_error_case(polkit.number, lookup.number));
    }
    out.extend(sasl_cases(schema));
    out
}

/// The ID of the case that looks for another connection's error in a refusal.
pub const STALE_ERROR: &str = "security/no-stale-error-across-connections";

/// How many (failing call, AUTH_POLKIT) pairs [`STALE_ERROR`] tries: libvirtd runs calls on a pool
/// of worker threads (5 by default), so each pair lands both calls on one thread with a chance of
/// about 1 in 5; 50 pairs miss a leak with a chance of about 1 in 70,000.
const STALE_TRIES: usize = 50;

/// A refused AUTH_POLKIT (on a socket that does not use polkit) must carry its own error, never the
/// error of a call another connection made: on connection A a NETWORK_LOOKUP_BY_NAME of a unique
/// name fails ("no network with matching name 'virtwire-stale-…'"), then on a fresh connection B
/// AUTH_POLKIT is refused; the refusal must not name A's network.
fn stale_error_case(polkit: i32, lookup: i32) -> Case {
    Case::new(
        STALE_ERROR,
        Level::Must,
        "A refused AUTH_POLKIT carries its own error, never the error of another connection's call \
         (each reply's error is its call's; an error message can hold names, paths and XML)",
        "src/remote/remote_daemon_dispatch.c remoteDispatchAuthPolkit (authfail: VIR_ERROR, then \
         virNetMessageSaveError of the thread's last error); CVE-2011-1486 (docs/protocol.md §8)",
        move |ctx| {
            let mut a = ctx.opened()?;
            let mut last = None;
            for i in 0..STALE_TRIES {
                let marker = format!("virtwire-stale-{}-{i}", std::process::id());
                let s = ctx.call(
                    &mut a,
                    REMOTE_PROGRAM,
                    lookup,
                    &super::xdr_string(&marker),
                )?;
                let ra = ctx.expect_error(&mut a, s, None, &marker)?;
                let mut b = ctx.connect()?;
                let s = ctx.call(&mut b, REMOTE_PROGRAM, polkit, &[])?;
                let rb = ctx.expect_reply(&mut b, s)?;
                let leaked = rb
                    .error
                    .as_ref()
                    .and_then(|e| e.message.as_deref())
                    .is_some_and(|m| m.contains(&marker));
                if leaked {
                    return Ok(Outcome::fail(
                        "AUTH_POLKIT refused with its own error",
                        format!(
                            "try {}: connection A's NETWORK_LOOKUP_BY_NAME got {ra}; then AUTH_POLKIT \
                             on connection B got {rb} — A's error, sent to B",
                            i + 1
                        ),
                    ));
                }
                last = Some(rb.to_string());
                if rb.header.status == MessageStatus::Ok {
                    return Ok(Outcome::unsupported(format!(
                        "AUTH_POLKIT was accepted on this socket (it uses polkit): {rb}"
                    )));
                }
            }
            Ok(Outcome::pass(
                "AUTH_POLKIT refused with its own error",
                format!(
                    "{STALE_TRIES} pairs: no refusal named connection A's network (the last: {})",
                    last.unwrap_or_default()
                ),
            ))
        },
    )
    .needs(&[super::OPEN])
    .exclusive()
}

/// The ID prefix of the annotation cases (`security/readonly-acl-domain-set-scheduler-parameters`).
pub const ACL_PREFIX: &str = "security/readonly-acl-";

/// What a read-only case sends: the minimal arguments, and what to retry with when the API's
/// argument checks refuse those before its read-only check.
struct Plan {
    number: i32,
    name: String,
    args: Vec<u8>,
    retry: Option<Result<Retry, String>>,
}

/// Arguments that pass an API's argument checks.
struct Retry {
    args: Vec<u8>,
    /// How many descriptors to pass (CALL_WITH_FDS; each one end of a fresh socket pair).
    fds: usize,
    /// In words, for the report.
    what: &'static str,
}

/// VIR_ERR_INVALID_ARG.
const INVALID_ARG: i32 = 8;

/// A `remote_nonnull_domain` naming nothing (the read-only check comes before any lookup).
fn any_domain() -> Value<'static> {
    Value::Struct(vec![
        ("name", Value::String(b"")),
        ("uuid", Value::Opaque(&[0; 16])),
        ("id", Value::Int(0)),
    ])
}

/// Arguments that pass the argument checks some APIs make before `virCheckReadOnlyGoto` (libvirt
/// 9.0.0 src/libvirt-domain.c virDomainSendProcessSignal: virCheckNonZeroArgGoto(pid_value);
/// virDomainRename: virCheckNonEmptyStringArgGoto(new_name); virDomainSetLaunchSecurityState:
/// virCheckNonNullArgGoto(params), virCheckPositiveArgGoto(nparams); virDomainOpenGraphics: a
/// descriptor that is a socket; virDomainFDAssociate: virCheckNonZeroArgGoto(nfds);
/// src/libvirt-host.c virConnectBaselineHypervisorCPU: virCheckNonNullArgGoto(xmlCPUs)), encoded
/// through the schema (`Err` when its layout is not the one these are written for).
fn retry_args(schema: &Schema, p: &Procedure) -> Option<Result<Retry, String>> {
    let flags = || ("flags", Value::UInt(0));
    let (value, fds, what) = match p.name.as_str() {
        "DOMAIN_SEND_PROCESS_SIGNAL" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("pid_value", Value::Hyper(1)),
                ("signum", Value::UInt(0)),
                flags(),
            ]),
            0,
            "pid_value 1 (a non-zero pid), signal 0",
        ),
        "DOMAIN_RENAME" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                (
                    "new_name",
                    Value::Optional(Some(Box::new(Value::String(b"virtwire-ro-new-name")))),
                ),
                flags(),
            ]),
            0,
            "new_name \"virtwire-ro-new-name\"",
        ),
        "CONNECT_BASELINE_HYPERVISOR_CPU" => (
            Value::Struct(vec![
                ("emulator", Value::Optional(None)),
                ("arch", Value::Optional(None)),
                ("machine", Value::Optional(None)),
                ("virttype", Value::Optional(None)),
                (
                    "xmlCPUs",
                    Value::Array(vec![Value::String(
                        b"<cpu><arch>x86_64</arch><model>qemu64</model></cpu>",
                    )]),
                ),
                flags(),
            ]),
            0,
            "one CPU XML",
        ),
        "DOMAIN_SET_LAUNCH_SECURITY_STATE" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                (
                    "params",
                    Value::Array(vec![Value::Struct(vec![
                        ("field", Value::String(b"sev-secret")),
                        (
                            "value",
                            Value::Union {
                                discriminant: Box::new(Value::Int(7)), // VIR_TYPED_PARAM_STRING
                                arm: Some("s"),
                                value: Box::new(Value::String(b"virtwire")),
                            },
                        ),
                    ])]),
                ),
                flags(),
            ]),
            0,
            "one typed parameter (sev-secret)",
        ),
        "DOMAIN_OPEN_GRAPHICS" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("idx", Value::UInt(0)),
                flags(),
            ]),
            1,
            "a socket descriptor passed with the call (CALL_WITH_FDS)",
        ),
        "DOMAIN_FD_ASSOCIATE" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("name", Value::String(b"virtwire-ro")),
                flags(),
            ]),
            1,
            "name \"virtwire-ro\" and one descriptor passed with the call (CALL_WITH_FDS)",
        ),
        // Getters whose argument checks come first: with these they reach the driver, so a reply
        // shows whether anything on the way refused the read-only connection.
        "DOMAIN_GET_VCPUS" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("maxinfo", Value::Int(1)),
                ("maplen", Value::Int(1)),
            ]),
            0,
            "maxinfo 1, maplen 1",
        ),
        "DOMAIN_GET_SCHEDULER_PARAMETERS" => (
            Value::Struct(vec![("dom", any_domain()), ("nparams", Value::Int(1))]),
            0,
            "nparams 1",
        ),
        "DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("nparams", Value::Int(1)),
                flags(),
            ]),
            0,
            "nparams 1",
        ),
        "NODE_GET_CELLS_FREE_MEMORY" => (
            Value::Struct(vec![
                ("startCell", Value::Int(0)),
                ("maxcells", Value::Int(1)),
            ]),
            0,
            "maxcells 1",
        ),
        "CONNECT_BASELINE_CPU" => (
            Value::Struct(vec![
                (
                    "xmlCPUs",
                    Value::Array(vec![Value::String(
                        b"<cpu><arch>x86_64</arch><model>qemu64</model></cpu>",
                    )]),
                ),
                flags(),
            ]),
            0,
            "one CPU XML",
        ),
        "DOMAIN_GET_BLOCK_INFO" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("path", Value::String(b"vda")),
                flags(),
            ]),
            0,
            "path \"vda\"",
        ),
        "DOMAIN_GET_VCPU_PIN_INFO" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("ncpumaps", Value::Int(1)),
                ("maplen", Value::Int(1)),
                flags(),
            ]),
            0,
            "ncpumaps 1, maplen 1",
        ),
        "DOMAIN_GET_EMULATOR_PIN_INFO" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                ("maplen", Value::Int(1)),
                flags(),
            ]),
            0,
            "maplen 1",
        ),
        "CONNECT_GET_CPU_MODEL_NAMES" => (
            Value::Struct(vec![
                ("arch", Value::String(b"x86_64")),
                ("need_results", Value::Int(0)),
                flags(),
            ]),
            0,
            "arch \"x86_64\"",
        ),
        "NODE_GET_FREE_PAGES" => (
            Value::Struct(vec![
                ("pages", Value::Array(vec![Value::UInt(4)])),
                ("startCell", Value::Int(0)),
                ("cellCount", Value::UInt(1)),
                flags(),
            ]),
            0,
            "one page size (4 KiB), one cell",
        ),
        "DOMAIN_DEL_THROTTLE_GROUP" => (
            Value::Struct(vec![
                ("dom", any_domain()),
                (
                    "group",
                    Value::Optional(Some(Box::new(Value::String(b"virtwire-ro")))),
                ),
                flags(),
            ]),
            0,
            "group \"virtwire-ro\"",
        ),
        _ => return None,
    };
    let (_, ty) = p.args.as_ref()?;
    let mut args = Vec::new();
    Some(
        schema
            .encode_type(*ty, &value, &mut args, &Limits::default())
            .map(|()| Retry { args, fds, what })
            .map_err(|e| format!("the retry arguments for {} do not encode: {e}", p.name)),
    )
}

/// What each table says about `name`, in words.
fn table_summary(name: &str, tables: &[Table]) -> String {
    let one = |t: &Table| match t.row(name) {
        None => format!("libvirt {}: no row", t.version),
        Some(r) => match &r.refused {
            Refused::Yes => format!("libvirt {}: refused by {} ({})", t.version, r.api, r.at),
            Refused::No => format!(
                "libvirt {}: no read-only check in {} ({})",
                t.version, r.api, r.at
            ),
            Refused::If(c) => format!(
                "libvirt {}: refused by {} only when {c} ({}), which a call with zero flags is not",
                t.version, r.api, r.at
            ),
        },
    };
    tables.iter().map(one).collect::<Vec<_>>().join("; ")
}

/// The MUST requirement for `name`, from the tables.
fn must_requirement(name: &str, tables: &[Table]) -> String {
    format!(
        "MUST (libvirt's own enforcement): {name} on the read-only socket follows libvirt's \
         read-only check (the table of the daemon's release): a refused procedure gets REPLY/ERROR \
         code {OPERATION_DENIED} \
         \"operation forbidden: read only access prevents <API>\", any other is not refused for \
         read-only access. {}",
        table_summary(name, tables)
    )
}

/// A refusal by the public API's own argument checks, before anything else ran: VIR_ERR_INVALID_ARG
/// from the virCheck*Arg macros (src/util/virerror.h virReportInvalid*Arg: "<arg> in <virXxx> must
/// not be zero/NULL", "string <arg> in <virXxx> must not be empty",
/// "… must be greater than zero"), or the file-descriptor slot the daemon's handler expects and a
/// plain call cannot fill (src/rpc/virnetmessage.c virNetMessageDupFD: "No FD available at slot
/// 0"). An INVALID_ARG from a driver ("unsupported flags … in function testDomain…") comes after
/// the API's checks and is not one.
fn argument_refusal(r: &Reply) -> Option<String> {
    let e = r
        .error
        .as_ref()
        .filter(|_| r.header.status == MessageStatus::Error)?;
    let msg = e.message.as_deref().unwrap_or("");
    let api_check = e.code == INVALID_ARG && msg.contains(" in vir") && msg.contains(" must ");
    (api_check || msg.contains("No FD available")).then(|| format!("error code {} {msg:?}", e.code))
}

/// Any read-only refusal: code 29 with libvirt's read-only wording.
fn is_ro_refusal(r: &Reply) -> bool {
    r.header.status == MessageStatus::Error
        && r.error.as_ref().is_some_and(|e| {
            e.code == OPERATION_DENIED
                && e.message.as_deref().unwrap_or("").contains(READ_ONLY_TEXT)
        })
}

/// The read-only refusal of `row`'s API, code and text exactly.
fn is_refusal_of(r: &Reply, row: &Row) -> bool {
    r.header.status == MessageStatus::Error
        && r.error.as_ref().is_some_and(|e| {
            e.code == OPERATION_DENIED
                && e.message.as_deref().map(str::trim) == Some(row.refusal_text().as_str())
        })
}

/// The table for the daemon behind `peer` (asked with CONNECT_GET_LIB_VERSION, which no release
/// refuses on a read-only connection), and a note when it is not the daemon's own release's.
fn ro_table(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
) -> Result<(&'static Table, Option<String>), Outcome> {
    let tables = readonly_calls::tables().map_err(Outcome::error)?;
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_LIB_VERSION, &[])?;
    let r = ctx.expect_reply(peer, s)?;
    let v = (r.header.status == MessageStatus::Ok)
        .then(|| r.body["lib_ver"].as_u64())
        .flatten();
    readonly_calls::table_for(tables, v)
        .ok_or_else(|| Outcome::error("no read-only table is committed"))
}

/// Open the read-only socket, pick the table, call the plan's procedure (retrying with arguments
/// that pass the argument checks when the minimal ones do not): the table, the reply, and notes.
fn ro_call(
    ctx: &mut Ctx<'_>,
    plan: &Plan,
) -> Result<(&'static Table, Reply, Vec<String>), Outcome> {
    let (mut peer, ep) = ctx.connect_to(Endpoint::ReadOnly)?;
    ctx.open_as(&mut peer, ep.open_name().as_deref())?;
    let (table, why) = ro_table(ctx, &mut peer)?;
    let mut notes: Vec<String> = why.into_iter().collect();
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, plan.number, &plan.args)?;
    let r = ctx.expect_reply(&mut peer, s)?;
    let Some(refusal) = argument_refusal(&r) else {
        return Ok((table, r, notes));
    };
    let retry = match &plan.retry {
        None => return Ok((table, r, notes)),
        Some(Err(e)) => return Err(Outcome::error(e.clone())),
        Some(Ok(retry)) => retry,
    };
    notes.push(format!(
        "minimal arguments were refused by the argument checks ({refusal}); retried with {}",
        retry.what
    ));
    let pairs = (0..retry.fds)
        .map(|_| std::os::unix::net::UnixStream::pair())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Outcome::error(format!("cannot make a socket pair to pass: {e}")))?;
    let fds: Vec<_> = pairs.iter().map(|(a, _)| a.as_fd()).collect();
    let s = if fds.is_empty() {
        ctx.call(&mut peer, REMOTE_PROGRAM, plan.number, &retry.args)?
    } else {
        ctx.call_with_fds(&mut peer, REMOTE_PROGRAM, plan.number, &retry.args, &fds)
            .map_err(|o| match o.verdict {
                Verdict::Unsupported => Outcome::unsupported(format!(
                    "{}; minimal arguments were refused by the argument checks before the \
                     read-only check ({refusal}), and the retry needs a descriptor: {}",
                    plan.name, o.actual
                )),
                _ => o,
            })?
    };
    let r = ctx.expect_reply(&mut peer, s)?;
    drop(pairs);
    Ok((table, r, notes))
}

fn with_notes(reply: &Reply, notes: &[String]) -> String {
    if notes.is_empty() {
        reply.to_string()
    } else {
        format!("{reply} ({})", notes.join("; "))
    }
}

/// `security/readonly-<proc>`: the server follows libvirt's read-only check.
fn must_case(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, Outcome> {
    let (table, r, notes) = ro_call(ctx, plan)?;
    let Some(row) = table.row(&plan.name) else {
        return Ok(Outcome::unsupported(format!(
            "libvirt {}'s read-only table has no row for {} (derive it again: docs/readonly.md); \
             the server answered {}",
            table.version,
            plan.name,
            with_notes(&r, &notes)
        )));
    };
    let actual = with_notes(&r, &notes);
    Ok(match &row.refused {
        Refused::Yes => {
            let expected = format!(
                "REPLY/ERROR code {OPERATION_DENIED} {:?} (libvirt {}: {})",
                row.refusal_text(),
                table.version,
                row.at
            );
            if is_refusal_of(&r, row) {
                Outcome::pass(expected, actual)
            } else if let Some(why) = argument_refusal(&r) {
                Outcome::unsupported(format!(
                    "the API's argument checks, which come before its read-only check, refuse \
                     every argument tried, so this call cannot reach it: {why}; {actual}"
                ))
            } else {
                Outcome::fail(expected, actual)
            }
        }
        Refused::No | Refused::If(_) => {
            let expected = format!(
                "not refused for read-only access (libvirt {}: no read-only check for this call in \
                 {}, {})",
                table.version, row.api, row.at
            );
            let denied = r.header.status == MessageStatus::Error
                && r.error.as_ref().is_some_and(|e| e.code == OPERATION_DENIED);
            if is_ro_refusal(&r) || denied {
                Outcome::fail(expected, actual)
            } else if let Some(why) = argument_refusal(&r) {
                // Refused before anything else ran: a read-only check after the argument checks
                // would not show, so this is no evidence either way.
                Outcome::unsupported(format!(
                    "the API's argument checks refuse every argument tried, so whether anything \
                     after them refuses a read-only connection cannot be seen: {why}; {actual}"
                ))
            } else {
                Outcome::pass(expected, actual)
            }
        }
    })
}

/// A conditional check's case: the ID suffix, the encoded arguments (or why they do not encode),
/// and the condition in words.
type Condition = (&'static str, Result<Vec<u8>, String>, &'static str);

/// Arguments that meet the condition of a conditional read-only check (the `if` rows of the
/// table): the ID suffix, the arguments, and the condition in words. The flag values are libvirt's
/// (include/libvirt/libvirt-domain.h: VIR_DOMAIN_XML_SECURE = 1, VIR_DOMAIN_VCPU_GUEST = 8,
/// VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT = 1; VIR_DOMAIN_SAVE_IMAGE_XML_SECURE and
/// VIR_DOMAIN_SNAPSHOT_XML_SECURE = VIR_DOMAIN_XML_SECURE; libvirt-domain-checkpoint.h:
/// VIR_DOMAIN_CHECKPOINT_XML_SECURE = 1).
fn condition_args(schema: &Schema, p: &Procedure) -> Option<Condition> {
    let named = |what: &'static [u8]| {
        Value::Struct(vec![("name", Value::String(what)), ("dom", any_domain())])
    };
    let (suffix, value, what) = match p.name.as_str() {
        "DOMAIN_GET_XML_DESC" => (
            "secure",
            Value::Struct(vec![("dom", any_domain()), ("flags", Value::UInt(1))]),
            "flags VIR_DOMAIN_XML_SECURE",
        ),
        "DOMAIN_MANAGED_SAVE_GET_XML_DESC" => (
            "secure",
            Value::Struct(vec![("dom", any_domain()), ("flags", Value::UInt(1))]),
            "flags VIR_DOMAIN_SAVE_IMAGE_XML_SECURE",
        ),
        "DOMAIN_SNAPSHOT_GET_XML_DESC" => (
            "secure",
            Value::Struct(vec![
                ("snap", named(b"virtwire-ro")),
                ("flags", Value::UInt(1)),
            ]),
            "flags VIR_DOMAIN_SNAPSHOT_XML_SECURE",
        ),
        "DOMAIN_CHECKPOINT_GET_XML_DESC" => (
            "secure",
            Value::Struct(vec![
                ("checkpoint", named(b"virtwire-ro")),
                ("flags", Value::UInt(1)),
            ]),
            "flags VIR_DOMAIN_CHECKPOINT_XML_SECURE",
        ),
        "DOMAIN_GET_VCPUS_FLAGS" => (
            "guest",
            Value::Struct(vec![("dom", any_domain()), ("flags", Value::UInt(8))]),
            "flags VIR_DOMAIN_VCPU_GUEST",
        ),
        "DOMAIN_INTERFACE_ADDRESSES" => (
            "agent",
            Value::Struct(vec![
                ("dom", any_domain()),
                ("source", Value::UInt(1)),
                ("flags", Value::UInt(0)),
            ]),
            "source VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT",
        ),
        _ => return None,
    };
    let (_, ty) = p.args.as_ref()?;
    let mut args = Vec::new();
    let encoded = schema
        .encode_type(*ty, &value, &mut args, &Limits::default())
        .map(|()| args)
        .map_err(|e| {
            format!(
                "the arguments for {} with {what} do not encode: {e}",
                p.name
            )
        });
    Some((suffix, encoded, what))
}

/// What libvirt answers a read-only call that meets `row`'s condition: a `virCheckReadOnlyGoto`
/// under an `if` gives its usual text; the XML getters' own test of VIR_CONNECT_RO with the
/// secure flag reports "operation forbidden: virDomainGetXMLDesc with secure flag"
/// (src/libvirt-domain.c virDomainGetXMLDesc and its siblings).
fn conditional_refusal_text(row: &Row) -> String {
    match &row.refused {
        Refused::If(c) if c.contains("VIR_CONNECT_RO") => {
            format!("operation forbidden: {} with secure flag", row.api)
        }
        _ => row.refusal_text(),
    }
}

/// `security/readonly-<proc>-<suffix>`: a call that meets a conditional check's condition is
/// refused as libvirt's source says.
fn condition_case(
    ctx: &mut Ctx<'_>,
    name: &str,
    number: i32,
    args: &Result<Vec<u8>, String>,
    what: &str,
) -> Result<Outcome, Outcome> {
    let args = args.as_ref().map_err(|e| Outcome::error(e.clone()))?;
    let (mut peer, ep) = ctx.connect_to(Endpoint::ReadOnly)?;
    ctx.open_as(&mut peer, ep.open_name().as_deref())?;
    let (table, why) = ro_table(ctx, &mut peer)?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, number, args)?;
    let r = ctx.expect_reply(&mut peer, s)?;
    let actual = with_notes(&r, &why.into_iter().collect::<Vec<_>>());
    let Some(row) = table.row(name) else {
        return Ok(Outcome::unsupported(format!(
            "libvirt {}'s read-only table has no row for {name}; the server answered {actual}",
            table.version
        )));
    };
    if row.refused == Refused::No {
        // This release has no check at all: the condition changes nothing.
        let expected = format!(
            "not refused for read-only access with {what} (libvirt {}: no read-only check in {}, \
             {})",
            table.version, row.api, row.at
        );
        return Ok(if is_ro_refusal(&r) {
            Outcome::fail(expected, actual)
        } else {
            Outcome::pass(expected, actual)
        });
    }
    let text = conditional_refusal_text(row);
    let expected = format!(
        "REPLY/ERROR code {OPERATION_DENIED} {text:?} (libvirt {}: {}{})",
        table.version,
        row.at,
        match &row.refused {
            Refused::If(c) => format!(", when {c}"),
            _ => String::new(),
        }
    );
    let exact = r.header.status == MessageStatus::Error
        && r.error.as_ref().is_some_and(|e| {
            e.code == OPERATION_DENIED && e.message.as_deref().map(str::trim) == Some(text.as_str())
        });
    Ok(if exact {
        Outcome::pass(expected, actual)
    } else if let Some(why) = argument_refusal(&r) {
        Outcome::unsupported(format!(
            "the API's argument checks refuse the call before its read-only check: {why}; {actual}"
        ))
    } else {
        Outcome::fail(expected, actual)
    })
}

/// `security/readonly-acl-<proc>`: what the server did agrees with the `@acl` annotation.
fn acl_case(
    ctx: &mut Ctx<'_>,
    plan: &Plan,
    annotation_refuses: bool,
    acl: &str,
) -> Result<Outcome, Outcome> {
    let (table, r, notes) = ro_call(ctx, plan)?;
    let actual = with_notes(&r, &notes);
    let refused = if is_ro_refusal(&r) {
        true
    } else if let Some(why) = argument_refusal(&r) {
        return Ok(Outcome::unsupported(format!(
            "the argument checks refuse every argument tried before any read-only check, so \
             neither the annotation nor the check can be seen: {why}; {actual}"
        )));
    } else {
        false
    };
    let says = |x: bool| if x { "refused" } else { "not refused" };
    let expected = format!(
        "{} on a read-only connection, as @acl {acl} says",
        says(annotation_refuses)
    );
    let check = match table.row(&plan.name) {
        Some(row) => match row.refused {
            Refused::Yes => format!("{} refuses it ({})", row.api, row.at),
            _ => format!("{} has no read-only check for it ({})", row.api, row.at),
        },
        None => format!("libvirt {}'s table has no row for it", table.version),
    };
    if refused == annotation_refuses {
        return Ok(Outcome::pass(expected, actual));
    }
    let kind = if annotation_refuses {
        "the annotation names a permission a read-only connection lacks, but libvirt does not \
         refuse the call: a getter annotated too strictly, or a call that changes state without \
         its read-only check (FINDINGS.md S5)"
    } else {
        "the annotation allows read-only connections, but libvirt refuses the call: the \
         annotation is wrong (FINDINGS.md S5)"
    };
    Ok(Outcome::non_strict(
        expected,
        format!(
            "{} in libvirt {} ({check}): {actual}; {kind}",
            says(refused),
            table.version
        ),
    ))
}

/// `remote_auth_type` REMOTE_AUTH_SASL.
const AUTH_SASL: i64 = 1;
/// REMOTE_PROC_AUTH_SASL_INIT, _START, _STEP.
const AUTH_SASL_INIT: i32 = 67;
const AUTH_SASL_START: i32 = 68;
const AUTH_SASL_STEP: i32 = 69;

fn sasl_cases(schema: &Schema) -> Vec<Case> {
    let mut out = vec![
        Case::new(
            SASL_LIST,
            Level::Must,
            "On a SASL listener, AUTH_LIST before anything else is answered REPLY/OK listing SASL",
            SRC_SASL,
            |ctx| {
                let (mut peer, _) = ctx.connect_to(Endpoint::Sasl)?;
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::AUTH_LIST, &[])?;
                let r = ctx.expect_ok(&mut peer, s)?;
                let types = r.body["types"].as_array().cloned().unwrap_or_default();
                let sasl = types
                    .iter()
                    .any(|t| t.as_i64() == Some(AUTH_SASL) || t.as_str() == Some("REMOTE_AUTH_SASL"));
                Ok(if sasl {
                    Outcome::pass("REPLY/OK with REMOTE_AUTH_SASL", r.body.to_string())
                } else {
                    Outcome::fail("REPLY/OK with REMOTE_AUTH_SASL", r.body.to_string())
                })
            },
        ),
        Case::new(
            "security/sasl-right-password",
            Level::Must,
            "DIGEST-MD5 with the right password completes (AUTH_SASL_INIT/START/STEP end with complete = 1)",
            SRC_SASL,
            |ctx| sasl_login(ctx, false),
        )
        .needs(&[SASL_LIST]),
        Case::new(
            "security/sasl-wrong-password",
            Level::Must,
            "DIGEST-MD5 with a wrong password fails: AUTH_SASL_STEP is answered REPLY/ERROR, never complete = 1",
            SRC_SASL,
            |ctx| sasl_login(ctx, true),
        )
        .needs(&[SASL_LIST]),
    ];
    let Some(remote) = schema.program(REMOTE_PROGRAM, 1) else {
        return out;
    };
    for p in remote.procedure_list() {
        if !callable(p) || p.name.starts_with("AUTH_") {
            continue;
        }
        let args = minimal_args(schema, p);
        let (number, name) = (p.number, p.name.clone());
        out.push(
            Case::new(
                format!("security/sasl-unauthenticated-{}", kebab(&p.name)),
                Level::Must,
                format!(
                    "{name} before SASL authentication is refused with VIR_ERR_RPC \
                     \"authentication required\", connection kept"
                ),
                SRC_SASL,
                move |ctx| {
                    let (mut peer, _) = ctx.connect_to(Endpoint::Sasl)?;
                    let s = ctx.call(&mut peer, REMOTE_PROGRAM, number, &args)?;
                    let r = ctx.expect_error(&mut peer, s, Some(RPC), "authentication required")?;
                    // Still the same connection: AUTH_LIST answers.
                    let s2 = ctx.call(&mut peer, REMOTE_PROGRAM, proc::AUTH_LIST, &[])?;
                    ctx.expect_ok(&mut peer, s2)?;
                    Ok(Outcome::pass(
                        "REPLY/ERROR \"authentication required\", then AUTH_LIST answered",
                        r.to_string(),
                    ))
                },
            )
            .needs(&[SASL_LIST]),
        );
    }
    out
}

/// rpcgen `char data<N>`: a count, then each byte as a 4-byte int.
fn sasl_data(w: &mut Writer<'_>, data: &[u8]) {
    w.u32(data.len() as u32);
    for b in data {
        w.i32(*b as i8 as i32);
    }
}

/// The bytes of a SASL ret's `data` (rpcgen chars, decoded by the schema as numbers).
fn ret_data(r: &Reply) -> Vec<u8> {
    r.body["data"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_i64().unwrap_or(0) as u8).collect())
        .unwrap_or_default()
}

fn ret_complete(r: &Reply) -> bool {
    r.body["complete"].as_i64() == Some(1)
}

/// AUTH_SASL_INIT, START (DIGEST-MD5, no initial data), STEP with the response to the challenge;
/// with `wrong` the password is not the user's.
fn sasl_login(ctx: &mut Ctx<'_>, wrong: bool) -> Result<Outcome, Outcome> {
    let (mut peer, ep) = ctx.connect_to(Endpoint::Sasl)?;
    let cred = ep.credentials().ok_or_else(|| {
        Outcome::unsupported(format!("no SASL credentials for {}", ep.describe()))
    })?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, AUTH_SASL_INIT, &[])?;
    let r = ctx.expect_ok(&mut peer, s)?;
    let mechs = r.body["mechlist"]
        .as_str()
        .unwrap_or("")
        .to_ascii_uppercase();
    if !mechs.split([',', ' ']).any(|m| m == "DIGEST-MD5") {
        return Ok(Outcome::unsupported(format!(
            "the server offers SASL mechanisms {mechs:?}, not DIGEST-MD5"
        )));
    }
    let mut args = Vec::new();
    let mut w = Writer::new(&mut args);
    w.string(b"DIGEST-MD5", u32::MAX)
        .map_err(|e| Outcome::error(e.to_string()))?;
    w.i32(1); // nil: no initial response
    sasl_data(&mut w, &[]);
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, AUTH_SASL_START, &args)?;
    let r = ctx.expect_ok(&mut peer, s)?;
    let challenge = String::from_utf8_lossy(&ret_data(&r)).into_owned();
    let password = if wrong {
        format!("{}-wrong", cred.password)
    } else {
        cred.password.clone()
    };
    let response = digest_md5_response(&challenge, &cred.user, &password, &cnonce())
        .map_err(|e| Outcome::fail("a DIGEST-MD5 challenge (RFC 2831 §2.1.1)", e))?;
    let mut args = Vec::new();
    let mut w = Writer::new(&mut args);
    w.i32(0);
    sasl_data(&mut w, response.as_bytes());
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, AUTH_SASL_STEP, &args)?;
    let r = ctx.expect_reply(&mut peer, s)?;
    let mut r = r;
    // The server's rspauth may come with complete = 0: then an empty step finishes.
    if r.header.status == MessageStatus::Ok && !ret_complete(&r) {
        let mut args = Vec::new();
        let mut w = Writer::new(&mut args);
        w.i32(0);
        sasl_data(&mut w, &[]);
        let s = ctx.call(&mut peer, REMOTE_PROGRAM, AUTH_SASL_STEP, &args)?;
        r = ctx.expect_reply(&mut peer, s)?;
    }
    let done = r.header.status == MessageStatus::Ok && ret_complete(&r);
    Ok(match (wrong, done) {
        (false, true) => Outcome::pass("complete = 1", r.to_string()),
        (false, false) => Outcome::fail("complete = 1", format!("{r} {}", r.body)),
        (true, false)
            if r.header.status == MessageStatus::Error
                && r.error.as_ref().is_some_and(|e| e.code == AUTH_FAILED) =>
        {
            Outcome::pass("REPLY/ERROR code 45 (authentication failed)", r.to_string())
        }
        (true, _) => Outcome::fail(
            "REPLY/ERROR code 45 (authentication failed)",
            format!("{r} {}", r.body),
        ),
    })
}

/// A client nonce: 16 bytes of MD5 over the time and the process, in hex.
fn cnonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hex(&Md5::digest(
        format!("{t}-{}", std::process::id()).as_bytes(),
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `key=value` / `key="value"` pairs of a DIGEST-MD5 challenge.
fn directives(challenge: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = challenge.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start_matches([',', ' ']);
    }
    out
}

/// The client's DIGEST-MD5 response (RFC 2831 §2.1.2) to `challenge`, with `qop=auth-conf` and
/// the strongest offered cipher (libvirt asks for a security layer of ≥ 56 bits over TCP).
pub fn digest_md5_response(
    challenge: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<String, String> {
    let d = directives(challenge);
    let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let nonce = get("nonce").ok_or_else(|| format!("no nonce in {challenge:?}"))?;
    let realm = get("realm").unwrap_or("");
    let qops = get("qop").unwrap_or("auth");
    let qop = if qops.split(',').any(|q| q.trim() == "auth-conf") {
        "auth-conf"
    } else if qops.split(',').any(|q| q.trim() == "auth-int") {
        "auth-int"
    } else {
        "auth"
    };
    let ciphers = get("cipher").unwrap_or("");
    let cipher = ["rc4", "3des", "rc4-56", "des"]
        .into_iter()
        .find(|c| ciphers.split(',').any(|x| x.trim() == *c));
    let host = if realm.is_empty() { "localhost" } else { realm };
    let digest_uri = format!("libvirt/{host}");
    let nc = "00000001";
    let mut a1 = Md5::digest(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&Md5::digest(&a1));
    let a2 = if qop == "auth" {
        format!("AUTHENTICATE:{digest_uri}")
    } else {
        format!("AUTHENTICATE:{digest_uri}:00000000000000000000000000000000")
    };
    let ha2 = hex(&Md5::digest(a2.as_bytes()));
    let response = hex(&Md5::digest(
        format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
    ));
    let mut out = format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc={nc},\
         cnonce=\"{cnonce}\",digest-uri=\"{digest_uri}\",response={response},qop={qop}"
    );
    if qop == "auth-conf" {
        match cipher {
            Some(c) => out.push_str(&format!(",cipher={c}")),
            None => {
                return Err(format!(
                    "auth-conf offered with no known cipher: {challenge:?}"
                ));
            }
        }
    }
    out.push_str(",maxbuf=65536");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_md5_matches_rfc_2831_worked_example() {
        // RFC 2831 §4, example 1 (IMAP): qop=auth, so no cipher; the response value is the RFC's.
        let challenge = "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",\
                         algorithm=md5-sess,charset=utf-8";
        let d = directives(challenge);
        assert_eq!(d[0], ("realm".into(), "elwood.innosoft.com".into()));
        assert_eq!(d[2], ("qop".into(), "auth".into()));
        // The RFC uses digest-uri "imap/elwood.innosoft.com"; ours is "libvirt/<realm>", so check
        // the computation with the RFC's values directly.
        let mut a1 = Md5::digest(b"chris:elwood.innosoft.com:secret").to_vec();
        a1.extend_from_slice(b":OA6MG9tEQGm2hh:OA6MHXh6VqTrRk");
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(b"AUTHENTICATE:imap/elwood.innosoft.com"));
        let resp = hex(&Md5::digest(
            format!("{ha1}:OA6MG9tEQGm2hh:00000001:OA6MHXh6VqTrRk:auth:{ha2}").as_bytes(),
        ));
        assert_eq!(resp, "d388dad90d4bbd760a152321f2143af7");
        let out = digest_md5_response(challenge, "chris", "secret", "OA6MHXh6VqTrRk").unwrap();
        assert!(
            out.contains("qop=auth,") && !out.contains("cipher="),
            "{out}"
        );
        assert!(
            out.contains("digest-uri=\"libvirt/elwood.innosoft.com\""),
            "{out}"
        );
    }

    #[test]
    fn auth_conf_picks_a_cipher_and_escapes_are_read() {
        let c = "nonce=\"a\\\"b\",realm=\"r\",qop=\"auth,auth-int,auth-conf\",cipher=\"rc4-40,rc4-56,rc4,des,3des\",maxbuf=65536";
        let out = digest_md5_response(c, "u", "p", "c").unwrap();
        assert!(out.contains("nonce=\"a\"b\""), "{out}");
        assert!(
            out.contains("qop=auth-conf") && out.contains("cipher=rc4,"),
            "{out}"
        );
        assert!(digest_md5_response("realm=\"r\"", "u", "p", "c").is_err());
    }

    fn proc_with(acl: &[&str]) -> Procedure {
        Procedure {
            number: 1,
            name: "X".into(),
            constant: "REMOTE_PROC_X".into(),
            args: None,
            ret: None,
            msg: None,
            annotations: acl
                .iter()
                .map(|a| ("acl".to_string(), a.to_string()))
                .collect(),
        }
    }

    #[test]
    fn write_is_a_non_anonymous_permission_that_applies_with_flags_zero() {
        let w = |acl: &[&str]| write_permission(&proc_with(acl)).unwrap();
        assert_eq!(w(&["none"]), None);
        assert_eq!(w(&["domain:read"]), None);
        assert_eq!(w(&["domain:write"]), Some("domain:write".into()));
        assert_eq!(
            w(&["domain:read", "domain:read_secure:VIR_DOMAIN_XML_SECURE"]),
            None
        );
        assert_eq!(
            w(&[
                "domain:read",
                "domain:save:!VIR_DOMAIN_AFFECT_CONFIG|VIR_DOMAIN_AFFECT_LIVE"
            ]),
            Some("domain:save".into())
        );
        assert_eq!(w(&["domain:read", "domain:write::source:VIR_X"]), None);
        assert_eq!(w(&["node_device:read"]), Some("node_device:read".into()));
        assert!(write_permission(&proc_with(&[])).is_err());
        assert_eq!(kebab("DOMAIN_GET_XML_DESC"), "domain-get-xml-desc");
    }
}
