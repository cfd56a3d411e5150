//! The built-in cases, by family. Each case has a stable ID (`family/what`), a one-line requirement
//! and a source pointer (docs/protocol.md, libvirt's files). Cases ask
//! the runner's [`Ctx`](crate::runner::Ctx) for connections; they never open sockets themselves and
//! never read libvirt bytes (the wire layer judges what comes back).
//!
//! Families: [`framing`] (length words and how bytes are split), [`header`] (message types,
//! programs, versions, procedures, statuses, serials), [`dispatch`] (the connection's life:
//! CONNECT_OPEN, pipelining, CONNECT_CLOSE, flow control), [`keepalive`], [`payload`] (bodies that
//! do not decode), [`streams`] (STREAM and STREAM_HOLE), [`events`] (callbacks and their
//! MESSAGEs), [`fds`] (CALL_WITH_FDS), [`reply`] (replies the server cannot send); generated from
//! the schema: [`limits`] (every bounded args item at its bound and one over) and the
//! event-procedure part of [`cve`]; [`cve`] (one case per RPC CVE expressible on the wire);
//! [`security`] (read-only socket, SASL; from the `@acl:` annotations) and [`programs`] (the admin,
//! log and lock programs on their own servers);
//! [`traces`]: recorded sessions of libvirt's own clients, replayed (`trace/<name>`, not part of
//! [`builtin`]).

use std::sync::Arc;

use serde_json::Value;
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{FrameBuilder, MessageStatus, Writer};

use crate::runner::ctx::proc;
use crate::runner::{Case, CaseResult, Ctx, Outcome};
use crate::wire::peer::Peer;

pub mod cve;
pub mod dispatch;
pub mod events;
pub mod fds;
pub mod framing;
pub mod header;
pub mod keepalive;
pub mod limits;
pub mod payload;
pub mod programs;
pub mod readonly_calls;
pub mod reply;
pub mod security;
pub mod streams;
pub mod traces;
pub mod world;

/// The ID every case that needs an open connection depends on.
pub const OPEN: &str = "dispatch/open";

/// Every built-in case, in the order they run (a case's needs come before it). The families
/// generated from libvirt's protocol schema ([`limits`], and [`cve`]'s event procedures) need
/// `schema`; without it they are absent ([`generated_summary`] says so).
pub fn builtin(schema: Option<&Arc<Schema>>) -> Vec<Case> {
    let mut all = dispatch::base();
    all.extend(framing::cases());
    all.extend(header::cases());
    all.extend(dispatch::cases());
    all.extend(keepalive::cases());
    all.extend(payload::cases());
    all.extend(streams::cases());
    all.extend(events::cases());
    all.extend(fds::cases());
    all.extend(reply::cases());
    all.extend(cve::cases(schema));
    if let Some(s) = schema {
        all.extend(limits::cases(s).0);
        all.extend(from_schema(s));
    }
    all
}

/// One line per generated family: what it covers, or why it is absent (`schema_error` says why
/// there is no schema).
pub fn generated_summary(schema: Option<&Arc<Schema>>, schema_error: Option<&str>) -> Vec<String> {
    let Some(s) = schema else {
        return vec![format!(
            "generated families absent (limits/*, cve/2012-4423-*, security/*, programs/*): no protocol schema{}",
            schema_error.map_or(String::new(), |e| format!(": {e}"))
        )];
    };
    let (_, mut counts) = limits::cases(s);
    counts.extend(programs::limits(s).1);
    counts
        .iter()
        .map(|c| {
            format!(
                "limits/{}: {} procedures with args, {} bounded items, {} cases ({} items whose \
                 over-limit body cannot fit in a frame: their cases say so)",
                c.program,
                c.procedures_with_args,
                c.fields,
                2 * c.fields,
                c.too_big
            )
        })
        .collect()
}

/// The endpoint families generated from libvirt's protocol schema: [`security`] (read-only socket,
/// SASL; from the `@acl:` annotations and procedure names) and [`programs`] (admin, log, lock).
fn from_schema(schema: &Arc<Schema>) -> Vec<Case> {
    let mut all = security::cases(schema);
    all.extend(programs::cases(schema));
    all
}

/// An XDR string (`remote_nonnull_string`).
pub(crate) fn xdr_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Writer::new(&mut out).opaque_var_unchecked(s.as_bytes(), 0);
    out
}

/// Bytes from a hex string (the JSON form of opaque data).
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A `remote_nonnull_domain` (`{ name; uuid[16]; id }`) encoded from its JSON form in a reply.
pub(crate) fn domain_arg(dom: &Value) -> Option<Vec<u8>> {
    let name = dom.get("name")?.as_str()?;
    let uuid = unhex(dom.get("uuid")?.as_str()?).filter(|u| u.len() == 16)?;
    let id = i32::try_from(dom.get("id")?.as_i64()?).ok()?;
    let mut out = xdr_string(name);
    Writer::new(&mut out).opaque_fixed(&uuid);
    out.extend(id.to_be_bytes());
    Some(out)
}

/// VIR_CONNECT_LIST_DOMAINS_RUNNING.
const LIST_RUNNING: u32 = 16;

/// A running domain of the target's world: its name and its `remote_nonnull_domain` argument.
/// No running domain is `unsupported` (the case needs one).
pub(crate) fn running_domain(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
) -> Result<(String, Vec<u8>), Outcome> {
    let mut args = 1i32.to_be_bytes().to_vec();
    args.extend(LIST_RUNNING.to_be_bytes());
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_LIST_ALL_DOMAINS, &args)?;
    let r = ctx.expect_ok(peer, s)?;
    let dom = r
        .body
        .get("domains")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .cloned();
    let Some(dom) = dom else {
        return Err(Outcome::unsupported(format!(
            "the target's world has no running domain (CONNECT_LIST_ALL_DOMAINS: {r})"
        )));
    };
    let name = dom
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_string();
    match domain_arg(&dom) {
        Some(a) => Ok((name, a)),
        None => Err(Outcome::error(format!(
            "cannot read a domain from CONNECT_LIST_ALL_DOMAINS's reply (needs the .x files): {}",
            r.body
        ))),
    }
}

/// Send `frame` (a CALL with `serial` that a strict server refuses) and judge its reply:
/// REPLY/ERROR passes; an OK reply is SHOULD-level lenience, described as `accepted` (`accepted
/// as present`) with the reply.
pub(crate) fn refused_or_lenient(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    frame: &[u8],
    serial: u32,
    expected: &str,
    accepted: &str,
) -> CaseResult {
    ctx.send(peer, frame)?;
    let r = ctx.expect_reply(peer, serial)?;
    Ok(if r.header.status == MessageStatus::Ok {
        Outcome::non_strict(expected, format!("{accepted}: {r}"))
    } else {
        Outcome::pass(expected, r.to_string())
    })
}

/// A valid CALL frame of the remote program.
pub(crate) fn call(procedure: i32, serial: u32, args: &[u8]) -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, procedure, serial)
        .payload(args.to_vec())
        .build_unchecked()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_needs_come_first() {
        let cases = builtin(None);
        let mut seen = std::collections::HashSet::new();
        for c in &cases {
            for n in &c.needs {
                assert!(
                    seen.contains(n.as_ref()),
                    "{} needs {n}, which is not before it",
                    c.id
                );
            }
            assert!(seen.insert(c.id.as_ref()), "duplicate case ID {}", c.id);
            assert!(c.id.split('/').count() >= 2, "{}: family/what", c.id);
            assert!(
                !c.requirement.is_empty() && !c.source.is_empty(),
                "{}",
                c.id
            );
            assert!(
                c.id.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "/-".contains(ch)),
                "{}: lowercase, digits, - and /",
                c.id
            );
        }
        assert!(cases.len() >= 20, "{} cases", cases.len());
    }

    /// The 9.0.0 schema from the repository's cache; `None` (said) when absent, a failure under
    /// `VIRTWIRE_REQUIRE_ALL=1`.
    fn schema() -> Option<Arc<Schema>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0");
        match Schema::load_dir(&dir) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) if std::env::var("VIRTWIRE_REQUIRE_ALL").as_deref() == Ok("1") => {
                panic!("VIRTWIRE_REQUIRE_ALL=1 but no schema: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: no schema ({e}); run scripts/setup.sh --xdr-only");
                None
            }
        }
    }

    #[test]
    fn generated_families_come_with_a_schema_and_are_counted() {
        let without = builtin(None);
        assert!(without.iter().all(|c| c.family() != "limits"));
        let line = generated_summary(None, Some("no .x files"));
        assert!(
            line[0].contains("absent") && line[0].contains("no .x files"),
            "{line:?}"
        );
        let Some(s) = schema() else { return };
        let with = builtin(Some(&s));
        let mut ids = std::collections::HashSet::new();
        for c in &with {
            assert!(ids.insert(c.id.to_string()), "duplicate {}", c.id);
        }
        let (limits, counts) = limits::cases(&s);
        let fields: usize = counts.iter().map(|c| c.fields).sum();
        assert_eq!(
            limits.len(),
            2 * fields + 2,
            "two per field, and the world before and after"
        );
        assert_eq!(
            counts
                .iter()
                .map(|c| c.program.as_str())
                .collect::<Vec<_>>(),
            ["remote", "qemu", "lxc"]
        );
        assert!(ids.contains("limits/remote/domain-create-xml/xml-desc/max"));
        assert!(ids.contains("limits/remote/domain-create-xml/xml-desc/over"));
        assert!(ids.contains("cve/2012-4423-event-and-gap-procedures"));
        assert!(with.len() >= 1000, "{} cases", with.len());
        // security/*, admin/*, log/*, lock/* and limits/{admin,log,lock}/* (programs::limits).
        let endpoint_families = from_schema(&s);
        let (program_limits, program_counts) = programs::limits(&s);
        assert_eq!(
            program_counts
                .iter()
                .map(|c| c.program.as_str())
                .collect::<Vec<_>>(),
            ["admin", "log", "lock"]
        );
        let program_fields: usize = program_counts.iter().map(|c| c.fields).sum();
        assert_eq!(program_limits.len(), 2 * program_fields);
        assert!(ids.contains("limits/lock/new/path/over"));
        assert!(ids.contains("security/readonly-domain-destroy"));
        assert_eq!(
            with.len(),
            without.len() + limits.len() + 1 + endpoint_families.len()
        );
    }
}
