//! Who may call what: the read-only socket and SASL authentication, both generated from the
//! schema's `@acl:` annotations and procedure names (never hand-listed).
//!
//! **Read-only.** libvirt's access-control page (docs/acl.rst, "Access control introduction"):
//! after authentication a connection "either has full, unrestricted access to all libvirt API
//! calls, or is locked down to only 'read only' (see 'Anonymous' in the table below) operations,
//! according to what socket a client connection originated on". The anonymous permissions are
//! those marked `@anonymous: 1` in src/access/viraccessperm.h ([`ANONYMOUS`]); every procedure
//! of remote_protocol.x names its permissions in `@acl:` lines (`object:permission`, optionally
//! `:FLAG|FLAG`, `:!FLAG` or `::param:value` for rules that apply only with those flags or
//! values). Called with minimal arguments (flags 0, empty names that match nothing), a procedure
//! is a *write* when a rule that applies then names a permission that is not anonymous: on the
//! read-only socket libvirt must refuse it with VIR_ERR_OPERATION_DENIED ("read only access
//! prevents …", virCheckReadOnlyGoto in src/libvirt-*.c), and must not refuse the others for that
//! reason.
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

use md5::{Digest, Md5};
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::{Procedure, Schema, bounds};
use virtwire_protocol::{MessageStatus, Writer};

use crate::runner::ctx::{Endpoint, proc};
use crate::runner::{Case, Ctx, Level, Outcome};
use crate::wire::peer::Reply;

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
/// anonymous: `Some` makes `p` a write procedure. `Err` when `p` has no `@acl:` line at all.
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

const SRC_RO: &str = "libvirt docs/acl.rst (read-only = 'Anonymous' permissions); \
                      src/access/viraccessperm.h @anonymous; remote_protocol.x @acl; \
                      virCheckReadOnlyGoto in src/libvirt-*.c";
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
        let Ok(write) = write_permission(p) else {
            continue;
        };
        let acl = p.annotation("acl").collect::<Vec<_>>().join(", ");
        let args = minimal_args(schema, p);
        let (number, name) = (p.number, p.name.clone());
        let id = format!("security/readonly-{}", kebab(&p.name));
        let case = match write {
            Some(perm) => Case::new(
                id,
                Level::Must,
                format!(
                    "{name} (needs {perm}) is refused on the read-only socket with \
                     VIR_ERR_OPERATION_DENIED \"{READ_ONLY_TEXT} …\"; ACL {acl}"
                ),
                SRC_RO,
                move |ctx| {
                    let r = ro_call(ctx, number, &args)?;
                    if is_ro_refusal(&r) {
                        Ok(Outcome::pass("the read-only refusal", r.to_string()))
                    } else if let Some(why) = argument_refusal(&r) {
                        Ok(Outcome::unsupported(format!(
                            "minimal arguments are refused by the API's argument checks, which \
                             come before its read-only check, so this call cannot reach it: {why}"
                        )))
                    } else {
                        Ok(Outcome::fail(
                            format!("REPLY/ERROR code {OPERATION_DENIED} \"{READ_ONLY_TEXT} …\""),
                            r.to_string(),
                        ))
                    }
                },
            ),
            None => Case::new(
                id,
                Level::Must,
                format!(
                    "{name} is not refused for read-only access on the read-only socket \
                     (its ACL is read-only-safe: {acl})"
                ),
                SRC_RO,
                move |ctx| {
                    let r = ro_call(ctx, number, &args)?;
                    if is_ro_refusal(&r) {
                        Ok(Outcome::fail(
                            "a reply that is not the read-only refusal",
                            r.to_string(),
                        ))
                    } else {
                        Ok(Outcome::pass(
                            "not refused for read-only access",
                            r.to_string(),
                        ))
                    }
                },
            ),
        };
        out.push(case.needs(&[RO_OPEN]));
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

/// VIR_ERR_INVALID_ARG.
const INVALID_ARG: i32 = 8;

/// A refusal of the call's arguments themselves before anything ran: VIR_ERR_INVALID_ARG ("… must
/// not be zero/NULL"), or a file-descriptor slot the call expects and a TCP or plain unix call
/// cannot carry.
fn argument_refusal(r: &Reply) -> Option<String> {
    let e = r
        .error
        .as_ref()
        .filter(|_| r.header.status == MessageStatus::Error)?;
    let msg = e.message.as_deref().unwrap_or("");
    (e.code == INVALID_ARG || msg.contains("No FD available"))
        .then(|| format!("error code {} {msg:?}", e.code))
}

fn is_ro_refusal(r: &Reply) -> bool {
    r.header.status == MessageStatus::Error
        && r.error.as_ref().is_some_and(|e| {
            e.code == OPERATION_DENIED
                && e.message.as_deref().unwrap_or("").contains(READ_ONLY_TEXT)
        })
}

/// Open the read-only socket, call `procedure` with `args`, return the reply.
fn ro_call(ctx: &mut Ctx<'_>, procedure: i32, args: &[u8]) -> Result<Reply, Outcome> {
    let (mut peer, ep) = ctx.connect_to(Endpoint::ReadOnly)?;
    ctx.open_as(&mut peer, ep.open_name().as_deref())?;
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, procedure, args)?;
    ctx.expect_reply(&mut peer, s)
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
