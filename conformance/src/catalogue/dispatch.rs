//! The connection's life: CONNECT_OPEN first, once; calls answered exactly once, in any order;
//! CONNECT_CLOSE last (docs/protocol.md §4, §6; libvirt `remote_daemon_dispatch.c`).

use std::collections::BTreeMap;

use virtwire_protocol::MessageStatus;
use virtwire_protocol::header::REMOTE_PROGRAM;

use super::world::{self, World};
use super::{OPEN, call};
use crate::runner::ctx::{code, connect_open_args, no_frame, proc};
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::{Event, Peer};

/// The case every other one needs: a client can connect and open.
pub fn base() -> Vec<Case> {
    vec![Case::new(
        OPEN,
        Level::Must,
        "CONNECT_OPEN with the target's name is answered REPLY/OK with an empty body",
        "docs/protocol.md §6 (worked bytes: a 28-byte reply)",
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

/// A world whose GET_ALL_DOMAIN_STATS reply is about 1.4 MB: a few of them fill the socket buffers
/// between server and client.
const MID: World = World {
    domains: 50,
    iothreads: 256,
};

/// More calls in flight than `max_client_requests`. libvirtd frees a call's slot only once its reply
/// is sent, so calls whose big replies the client does not read keep their slots, and the server
/// stops reading the socket (it logs "Client hit max requests limit"). Once the client reads, every
/// call must be answered exactly once.
fn over_max_requests(ctx: &mut Ctx<'_>) -> CaseResult {
    let local = world::local(
        ctx,
        "the case needs the server's max_client_requests and a world file it reads",
    )?;
    let uri = MID.install(&local, "mid")?;
    let log_mark = local
        .log
        .as_ref()
        .and_then(|l| std::fs::metadata(l).ok())
        .map_or(0, |m| m.len());
    let mut peer = world::open_world(ctx, &uri)?;
    let n = local.max_client_requests + 3;
    let first = peer.serial();
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend(call(
            proc::CONNECT_GET_ALL_DOMAIN_STATS,
            first + i,
            &world::all_stats_args(),
        ));
    }
    for _ in 1..n {
        peer.serial();
    }
    ctx.send(&mut peer, &bytes)?;
    // Read nothing for a while: the replies back up and keep their slots.
    std::thread::sleep(ctx.env().silence);
    let silence = ctx.env().silence;
    let deadline = ctx.read_deadline() + ctx.env().read_timeout;
    let (answers, bad) = match collect_replies(ctx, &mut peer, n, deadline) {
        Ok(r) => r,
        Err(out) => return Ok(out),
    };
    let expected = format!(
        "{n} calls in flight (max_client_requests {}), their ~1.4 MB replies not read for {:.1} s: each answered exactly once, REPLY/OK",
        local.max_client_requests,
        silence.as_secs_f64()
    );
    let want: Vec<u32> = (first..first + n).collect();
    let got = answers
        .iter()
        .map(|(s, c)| format!("serial {s}×{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    if answers.keys().copied().collect::<Vec<_>>() != want
        || answers.values().any(|c| *c != 1)
        || !bad.is_empty()
    {
        let got = if got.is_empty() {
            "no reply".to_string()
        } else {
            got
        };
        return Ok(Outcome::fail(expected, format!("{got} {}", bad.join("; "))));
    }
    // The answers alone do not show the limit: a server that never enforces it answers them all
    // too. libvirt's evidence is its warning when it stops reading (virnetserverclient.c
    // virNetServerClientDispatchRead: VIR_WARN("Client hit max requests limit %zd. …"), once
    // per client), in the log of the daemon the runner started (warning level).
    let Some(log) = local.log.as_ref() else {
        return Ok(Outcome::unsupported(format!(
            "every call answered once ({got}), but the server's log is not known, so nothing \
             shows that max_client_requests took effect"
        )));
    };
    let text = match std::fs::read(log) {
        Ok(b) => {
            String::from_utf8_lossy(b.get(log_mark as usize..).unwrap_or_default()).into_owned()
        }
        Err(e) => {
            return Ok(Outcome::unsupported(format!(
                "every call answered once ({got}), but the server's log {} cannot be read ({e}), \
                 so nothing shows that max_client_requests took effect",
                log.display()
            )));
        }
    };
    let logged = text.lines().find_map(|l| {
        l.find("Client hit max requests limit")
            .map(|i| l[i..].trim().to_string())
    });
    let expected = format!(
        "{expected}; the server stops reading: its log says \"Client hit max requests limit {}\"",
        local.max_client_requests
    );
    match logged {
        Some(l) => Ok(Outcome::pass(
            expected,
            format!("{got}; the server logged: {l}"),
        )),
        None => Ok(Outcome::fail(
            expected,
            format!(
                "{got}; but the server's log ({}) has no \"Client hit max requests limit\" \
                 line since the case began: the limit did not take effect",
                log.display()
            ),
        )),
    }
}

/// The dispatch cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "dispatch/auth-list-before-open",
            Level::Must,
            "AUTH_LIST is answered before CONNECT_OPEN (it is how a client learns how to log in)",
            "docs/protocol.md §6, §11",
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
            "docs/protocol.md §4, §11",
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
            "A second CONNECT_OPEN on a connection gets REPLY/ERROR \"already open\" and changes \
             nothing: the hypervisor connection opened first keeps serving calls",
            "docs/protocol.md §4 (a second CONNECT_OPEN fails with \"connection already open\"), §6 (a \
             connection is open from CONNECT_OPEN until CONNECT_CLOSE); \
             src/remote/remote_daemon_dispatch.c",
            |ctx| {
                let mut peer = ctx.opened()?;
                let args = connect_open_args(ctx.env().connector.open_name().as_deref(), 0);
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_OPEN, &args)?;
                let refused = ctx.expect_error(&mut peer, s, None, "already open")?;
                // A refused call must leave the session as it was: the first open still holds.
                let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
                let after = ctx.expect_reply(&mut peer, s)?;
                let expected = "REPLY/ERROR \"connection already open\", then CONNECT_GET_TYPE \
                                answered REPLY/OK on the connection opened first";
                if after.header.status == MessageStatus::Ok {
                    return Ok(Outcome::pass(
                        expected,
                        format!("{refused}; then CONNECT_GET_TYPE: {after}"),
                    ));
                }
                let closed = after.error.as_ref().is_some_and(|e| {
                    e.message.as_deref().is_some_and(|m| m.contains("not open"))
                });
                Ok(Outcome::fail(
                    expected,
                    if closed {
                        format!(
                            "the refused second open closed the hypervisor connection opened \
                             first: {refused}; then CONNECT_GET_TYPE: {after}"
                        )
                    } else {
                        format!("{refused}; then CONNECT_GET_TYPE failed: {after}")
                    },
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "dispatch/pipelined-answered-once",
            Level::Must,
            "Calls sent without waiting are each answered exactly once, in any order",
            "docs/protocol.md §1 (calls may be pipelined; replies may come back out of order)",
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
                let deadline = ctx.read_deadline();
                let (answers, _) = match collect_replies(ctx, &mut peer, n, deadline) {
                    Ok(r) => r,
                    Err(out) => return Ok(out),
                };
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
            "dispatch/over-max-client-requests",
            Level::Must,
            "More calls in flight than max_client_requests: the server stops reading (no error; it logs \"Client hit max requests limit\") and answers every call exactly once",
            "src/rpc/virnetserverclient.c virNetServerClientDispatchRead (nrequests reaches nrequests_max: \
             no new rx buffer, VIR_WARN(\"Client hit max requests limit %zd…\")); libvirtd.conf max_client_requests",
            over_max_requests,
        )
        .needs(&["dispatch/pipelined-answered-once"]),
        Case::new(
            "dispatch/call-after-close",
            Level::Must,
            "CONNECT_CLOSE is answered REPLY/OK; a call after it is refused or the connection closes",
            "docs/protocol.md §6 (CONNECT_CLOSE: delayed close of the socket)",
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

/// The replies on `peer` until `n` distinct serials are answered, or until `deadline`: how many
/// replies each serial got, and the judged non-OK ones. Once all are answered, a duplicate is
/// watched for until the reply to a follow-up CONNECT_GET_TYPE on the same connection
/// ([`Ctx::expect_no_answer_until_followup`]): any frame before it fails the case, with its
/// arrival time. Anything but a frame or the wait ending is the case's failure (`Err`).
fn collect_replies(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    n: u32,
    deadline: std::time::Instant,
) -> Result<(BTreeMap<u32, usize>, Vec<String>), Outcome> {
    let mut answers: BTreeMap<u32, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    while answers.len() < n as usize {
        match peer.next_event(deadline) {
            Event::Frame(f) if f.header().msg_type.is_reply() => {
                if f.header().status != MessageStatus::Ok {
                    bad.push(peer.judge_frame(&f).to_string());
                }
                *answers.entry(f.header().serial).or_default() += 1;
            }
            Event::Frame(_) => {}
            Event::Timeout => return Ok((answers, bad)),
            ev => {
                return Err(Outcome::fail(
                    format!("{n} replies"),
                    ctx.describe(peer, &ev),
                ));
            }
        }
    }
    ctx.expect_no_answer_until_followup(
        peer,
        "one reply per call: nothing more until the reply to a later CONNECT_GET_TYPE",
        no_frame,
        |ctx, peer| {
            let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
            ctx.expect_ok(peer, s).map(|_| ())
        },
    )?;
    Ok((answers, bad))
}
