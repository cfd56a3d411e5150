//! The connection's life: CONNECT_OPEN first, once; calls answered exactly once, in any order;
//! CONNECT_CLOSE last (PROTOCOL.md §4, §6; libvirt `remote_daemon_dispatch.c`).

use std::collections::BTreeMap;

use virtwire_protocol::MessageStatus;
use virtwire_protocol::header::REMOTE_PROGRAM;

use super::{OPEN, call};
use crate::runner::ctx::{code, connect_open_args, proc};
use crate::runner::{Case, Level, Outcome};
use crate::wire::peer::Event;

const SRC_LIFE: &str = "PROTOCOL.md §4, §6; src/remote/remote_daemon_dispatch.c";

/// The case every other one needs: a client can connect and open.
pub fn base() -> Vec<Case> {
    vec![Case::new(
        OPEN,
        Level::Must,
        "CONNECT_OPEN with the target's name is answered REPLY/OK with an empty body",
        "PROTOCOL.md §6 (worked bytes: a 28-byte reply)",
        |ctx| {
            let prog = ctx.env().connector.program();
            if prog != REMOTE_PROGRAM {
                return Ok(Outcome::unsupported(format!(
                    "the target serves program {prog:#x} (an admin socket); the built-in cases speak \
                     the remote program"
                )));
            }
            let mut peer = ctx.connect()?;
            let args = connect_open_args(ctx.env().connector.open_name().as_deref(), 0);
            let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_OPEN, &args)?;
            let r = ctx.expect_ok(&mut peer, s)?;
            if r.len != 28 {
                return Ok(Outcome::fail(
                    "a 28-byte REPLY/OK (void ret)",
                    r.to_string(),
                ));
            }
            Ok(Outcome::pass("a 28-byte REPLY/OK", r.to_string()))
        },
    )]
}

/// The dispatch cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "dispatch/auth-list-before-open",
            Level::Must,
            "AUTH_LIST is answered before CONNECT_OPEN (it is how a client learns how to log in)",
            "PROTOCOL.md §6, §11",
            |ctx| {
                let mut peer = ctx.connect()?;
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::AUTH_LIST, &[])?;
                let r = ctx.expect_ok(&mut peer, s)?;
                Ok(Outcome::pass("REPLY/OK with the auth types", r.to_string()))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "dispatch/call-before-open",
            Level::Must,
            "A driver call before CONNECT_OPEN gets REPLY/ERROR \"connection not open\"",
            "PROTOCOL.md §4, §11",
            |ctx| {
                let mut peer = ctx.connect()?;
                let args = [0, 0, 0, 1, 0, 0, 0, 0];
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_LIST_ALL_DOMAINS, &args)?;
                let r = ctx.expect_error(&mut peer, s, Some(code::INTERNAL_ERROR), "not open")?;
                Ok(Outcome::pass("REPLY/ERROR \"connection not open\"", r.to_string()))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "dispatch/open-twice",
            Level::Must,
            "A second CONNECT_OPEN on a connection gets REPLY/ERROR \"already open\"",
            SRC_LIFE,
            |ctx| {
                let mut peer = ctx.opened()?;
                let args = connect_open_args(ctx.env().connector.open_name().as_deref(), 0);
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_OPEN, &args)?;
                let r = ctx.expect_error(&mut peer, s, None, "already open")?;
                Ok(Outcome::pass("REPLY/ERROR \"connection already open\"", r.to_string()))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "dispatch/pipelined-answered-once",
            Level::Must,
            "Calls sent without waiting are each answered exactly once, in any order",
            "PROTOCOL.md §1 (calls may be pipelined; replies may come back out of order)",
            |ctx| {
                let mut peer = ctx.opened()?;
                let first = peer.serial();
                let n = 4u32; // within libvirt's default max_client_requests (5)
                let mut bytes = Vec::new();
                for i in 0..n {
                    bytes.extend(call(proc::CONNECT_GET_TYPE, first + i, &[]));
                }
                for _ in 1..n {
                    peer.serial();
                }
                ctx.send(&mut peer, &bytes)?;
                let mut answers: BTreeMap<u32, usize> = BTreeMap::new();
                let deadline = ctx.read_deadline();
                let silence = ctx.env().silence;
                // Collect until all are in, then watch a moment longer for duplicates.
                let mut until = deadline;
                loop {
                    match peer.next_event(until) {
                        Event::Frame(f) if f.header().msg_type.is_reply() => {
                            *answers.entry(f.header().serial).or_default() += 1;
                            if answers.len() == n as usize {
                                until = (std::time::Instant::now() + silence).min(deadline);
                            }
                        }
                        Event::Frame(_) => {}
                        Event::Timeout => break,
                        ev => {
                            return Ok(Outcome::fail(
                                format!("{n} replies"),
                                ctx.describe(&peer, &ev),
                            ));
                        }
                    }
                }
                let want: Vec<u32> = (first..first + n).collect();
                let ok = answers.keys().copied().collect::<Vec<_>>() == want
                    && answers.values().all(|c| *c == 1);
                let got = answers
                    .iter()
                    .map(|(s, c)| format!("serial {s}×{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let expected = format!("one reply each to serials {first}..{}", first + n - 1);
                Ok(if ok {
                    Outcome::pass(expected, got)
                } else {
                    Outcome::fail(expected, if got.is_empty() { "no reply".into() } else { got })
                })
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "dispatch/call-after-close",
            Level::Must,
            "CONNECT_CLOSE is answered REPLY/OK; a call after it is refused or the connection closes",
            "PROTOCOL.md §6 (CONNECT_CLOSE: delayed close of the socket)",
            |ctx| {
                let mut peer = ctx.opened()?;
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_CLOSE, &[])?;
                ctx.expect_ok(&mut peer, s)?;
                let s2 = peer.serial();
                // The server may already have closed: a failed send is then the answer.
                if peer
                    .send(&call(proc::CONNECT_GET_TYPE, s2, &[]), ctx.env().read_timeout)
                    .is_err()
                {
                    return Ok(Outcome::pass(
                        "a refusal or a close",
                        "the connection was closed after CONNECT_CLOSE",
                    ));
                }
                let deadline = ctx.read_deadline();
                match peer.reply(s2, deadline) {
                    Ok(r) if r.header.status == MessageStatus::Error => {
                        Ok(Outcome::pass("a refusal or a close", r.to_string()))
                    }
                    Ok(r) => Ok(Outcome::fail("a refusal or a close", r.to_string())),
                    Err(ev @ (Event::Closed { .. } | Event::Reset(_))) => {
                        Ok(Outcome::pass("a refusal or a close", ctx.describe(&peer, &ev)))
                    }
                    Err(ev) => Ok(Outcome::fail("a refusal or a close", ctx.describe(&peer, &ev))),
                }
            },
        )
        .needs(&[OPEN]),
    ]
}
