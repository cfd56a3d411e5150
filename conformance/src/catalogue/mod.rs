//! The built-in cases, by family. Each case has a stable ID (`family/what`), a one-line requirement
//! and a source pointer (PROTOCOL.md of this repository's shared notes, libvirt's files). Cases ask
//! the runner's [`Ctx`](crate::runner::Ctx) for connections; they never open sockets themselves and
//! never read libvirt bytes (the wire layer judges what comes back).
//!
//! Families: [`framing`] (length words and how bytes are split), [`header`] (message types,
//! programs, versions, procedures, statuses, serials), [`dispatch`] (the connection's life:
//! CONNECT_OPEN, pipelining, CONNECT_CLOSE), [`keepalive`], [`payload`] (bodies that do not decode);
//! generated from the schema ([`from_schema`]): [`security`] (read-only socket, SASL), [`programs`]
//! (the admin, log and lock programs on their own servers);
//! [`traces`]: recorded sessions of libvirt's own clients, replayed (`trace/<name>`, not part of
//! [`builtin`]).

use virtwire_protocol::FrameBuilder;
use virtwire_protocol::header::REMOTE_PROGRAM;

use crate::runner::Case;

pub mod dispatch;
pub mod framing;
pub mod header;
pub mod keepalive;
pub mod payload;
pub mod programs;
pub mod security;
pub mod traces;

/// The ID every case that needs an open connection depends on.
pub const OPEN: &str = "dispatch/open";

/// Every built-in case, in the order they run (a case's needs come before it).
pub fn builtin() -> Vec<Case> {
    let mut all = dispatch::base();
    all.extend(framing::cases());
    all.extend(header::cases());
    all.extend(dispatch::cases());
    all.extend(keepalive::cases());
    all.extend(payload::cases());
    all
}

/// The cases generated from libvirt's protocol schema: [`security`] (read-only socket, SASL; from
/// the `@acl:` annotations and procedure names) and [`programs`] (admin, log, lock).
pub fn from_schema(schema: &virtwire_protocol::schema::Schema) -> Vec<Case> {
    let mut all = security::cases(schema);
    all.extend(programs::cases(schema));
    all
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
        let cases = builtin();
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
            assert_eq!(c.id.split('/').count(), 2, "{}: family/what", c.id);
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
}
