//! The runner against servers that misbehave: it never hangs, never panics and never sizes anything
//! from a peer's number. Each server below is an in-process fake on 127.0.0.1 (tests/support); the
//! whole built-in catalogue runs against each with short timeouts, and every case must get a
//! verdict within its deadline, none of them a panic, and the run must end. Where the verdicts are
//! determined (a server that never answers: `dispatch/open` fails, everything else is omitted) they
//! are checked too. `cargo test --test misbehaving -- --nocapture` prints the table.
//!
//! The second half shows each kind of verdict coming out of a fake built for it: unsupported,
//! omitted, error (exit 3), non-strict, and a stale known-failing entry (exit 2); the last test
//! holds one send to its timeout against a server that reads slowly. What the runner allocates
//! against such servers is measured in `misbehaving_alloc.rs` (a global allocator is per binary).

mod support;

use std::time::{Duration, Instant};

use support::{Conn, Fake, FakeServer, Next, Pace, event_batch, noise, one_at_a_time};
use virtwire_conformance::catalogue::{self, OPEN};
use virtwire_conformance::runner::{self, Config, Known, Pattern, RunReport, Verdict};
use virtwire_conformance::wire::peer::Peer;
use virtwire_protocol::{FrameBuilder, Header, KeepaliveProc, MessageStatus, MessageType};

/// Beyond `case_timeout`, what a case may take (scheduling on a busy machine).
const MARGIN: Duration = Duration::from_millis(1000);

/// What the verdicts must be.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// As against libvirtd 9.0: all pass, the three SHOULD-level payload cases non-strict.
    LikeLibvirt,
    /// `dispatch/open` gets this verdict (fail, or error: exit 3), saying one of these; every other
    /// case is omitted.
    Open(Verdict, &'static [&'static str]),
    /// Nothing is determined beyond the rules every run keeps.
    Any,
}

/// A misbehaviour: how to start its server, and what the verdicts must be.
struct Behaviour {
    name: &'static str,
    start: fn() -> FakeServer,
    expect: Expect,
    /// The client's SO_SNDBUF, when the behaviour needs the client's writes to block soon.
    client_send_buffer: Option<usize>,
}

/// Reply to the first call with these bytes (built from its header), then hold the connection
/// open, reading and dropping, until the server stops.
fn answer_first_call_then_hang(mut c: Conn, bytes: impl Fn(&Header) -> Vec<u8>) {
    if let Next::Frame(f) = c.next_frame() {
        c.write(&bytes(f.header()));
        c.drain();
    }
}

fn behaviours() -> Vec<Behaviour> {
    vec![
        Behaviour {
            name: "well-behaved (a libvirt look-alike)",
            start: || {
                let f = Fake::default();
                FakeServer::start(move |c| f.serve(c))
            },
            client_send_buffer: None,
            expect: Expect::LikeLibvirt,
        },
        Behaviour {
            name: "never answers (reads, never writes)",
            start: || FakeServer::start(|mut c| c.drain()),
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "never accepts: bound, not listening",
            start: FakeServer::bound_not_listening,
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Error, &["cannot connect"]),
        },
        Behaviour {
            name: "never accepts: listening, accept never called",
            start: FakeServer::listening_never_accepting,
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "sends garbage (4 KiB of noise at once)",
            start: || {
                FakeServer::start(|mut c| {
                    let mut g = noise(4096, 0x9e37_79b9_7f4a_7c15);
                    g[0] |= 0x80; // a length word over any limit, whatever the seed
                    c.write(&g);
                    c.drain();
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["cannot be framed"]),
        },
        Behaviour {
            name: "length word 0xFFFFFFFF, then nothing",
            start: || FakeServer::start(|c| answer_first_call_then_hang(c, |_| vec![0xff; 4])),
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["cannot be framed"]),
        },
        Behaviour {
            name: "length word 33554436 (largest legal) + header, then nothing",
            start: || {
                FakeServer::start(|c| {
                    answer_first_call_then_hang(c, |h| {
                        FrameBuilder::new(h.reply_to(MessageStatus::Ok))
                            .length_word(33_554_436)
                            .build_unchecked()
                    })
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "answers one byte at a time (1 ms apart)",
            start: || {
                let f = Fake {
                    pace: Pace::ByteByByte(Duration::from_millis(1)),
                    ..Fake::default()
                };
                FakeServer::start(move |c| f.serve(c))
            },
            client_send_buffer: None,
            expect: Expect::LikeLibvirt,
        },
        Behaviour {
            name: "closes at once",
            start: || FakeServer::start(drop),
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["closed", "failed"]),
        },
        Behaviour {
            name: "closes mid-frame (14 of 28 bytes)",
            start: || {
                FakeServer::start(|mut c| {
                    if let Next::Frame(f) = c.next_frame() {
                        let r = FrameBuilder::new(f.header().reply_to(MessageStatus::Ok))
                            .build_unchecked();
                        c.write(&r[..14]);
                    }
                    c.close();
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(
                Verdict::Fail,
                &["in the middle of a frame (14 bytes of it sent)"],
            ),
        },
        Behaviour {
            name: "resets (SO_LINGER 0 after reading the call)",
            start: || {
                FakeServer::start(|mut c| {
                    let _ = c.next_frame();
                    c.reset();
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["reset", "failed"]),
        },
        Behaviour {
            name: "resets (closes with the call unread)",
            start: || {
                FakeServer::start(|mut c| {
                    c.wait_for_data();
                    drop(c);
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["reset", "failed"]),
        },
        Behaviour {
            name: "answers with the wrong serial (+1)",
            start: || {
                let f = Fake {
                    serial_shift: 1,
                    ..Fake::default()
                };
                FakeServer::start(move |c| f.serve(c))
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "answers with the wrong procedure (+1)",
            start: || {
                let f = Fake {
                    proc_shift: 1,
                    ..Fake::default()
                };
                FakeServer::start(move |c| f.serve(c))
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["proc 2"]),
        },
        Behaviour {
            name: "streams CONTINUE frames forever (16 KiB each)",
            start: || {
                FakeServer::start(|mut c| {
                    if let Next::Frame(f) = c.next_frame() {
                        let mut h = *f.header();
                        h.msg_type = MessageType::Stream;
                        h.status = MessageStatus::Continue;
                        let data = FrameBuilder::new(h)
                            .payload(vec![0x5a; 16 << 10])
                            .build_unchecked();
                        while c.write(&data) {}
                    }
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "floods events, answers nothing",
            start: || {
                FakeServer::start(|mut c| {
                    let batch = event_batch(64 << 10);
                    while c.write(&batch) {}
                })
            },
            client_send_buffer: None,
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
        Behaviour {
            name: "floods events while answering like libvirt",
            start: || {
                let f = Fake {
                    flood_events: true,
                    ..Fake::default()
                };
                FakeServer::start(move |c| f.serve(c))
            },
            client_send_buffer: None,
            expect: Expect::Any,
        },
        Behaviour {
            name: "floods keepalive PINGs, reads nothing (client send buffer 4 KiB)",
            start: || {
                FakeServer::start(|mut c| {
                    c.receive_buffer(4096);
                    let ping = KeepaliveProc::Ping.frame();
                    let batch: Vec<u8> = ping
                        .iter()
                        .copied()
                        .cycle()
                        .take(ping.len() * 2048)
                        .collect();
                    while c.write(&batch) {}
                })
            },
            client_send_buffer: Some(4096),
            expect: Expect::Open(Verdict::Fail, &["nothing within"]),
        },
    ]
}

/// One behaviour's row of the table.
struct Row {
    name: &'static str,
    report: RunReport,
    max: Duration,
    problems: Vec<String>,
}

/// The rules every run keeps, whatever the server: every case has a verdict, none took longer than
/// its deadline (plus a margin), none is a panic or a case the runner gave up on.
fn check_run(rep: &RunReport, cfg: &Config, problems: &mut Vec<String>) {
    let n = catalogue::builtin(None).len();
    if rep.cases.len() != n {
        problems.push(format!("{} verdicts for {n} cases", rep.cases.len()));
    }
    for c in &rep.cases {
        if c.duration > cfg.case_timeout + MARGIN {
            problems.push(format!("{} took {:?}", c.case.id, c.duration));
        }
        if c.verdict == Verdict::Error
            && (c.actual.contains("panicked") || c.actual.contains("did not finish"))
        {
            problems.push(format!("{}: {}", c.case.id, c.actual));
        }
    }
}

/// Cases a fake cannot serve: they need a server the runner started on this machine (a world file,
/// its keepalive and max_client_requests settings), or a running domain (the fake has none).
const NEEDS_LOCAL_OR_DOMAIN: &[&str] = &[
    "dispatch/over-max-client-requests",
    "keepalive/unanswered-ping-drops-client",
    "keepalive/ping-during-long-call",
    "reply/over-limit-is-error",
    "streams/screenshot-end-to-end",
    "streams/upload",
    "events/lifecycle-received",
];
/// CVE cases whose vulnerable code the look-alike cannot reach: it has no running domain, its
/// driver is the test driver (no udev interface backend) and it has no NODE_GET_FREE_PAGES.
const CVE_UNREACHABLE: &[&str] = &[
    "cve/2011-2511-get-vcpus-overflow",
    "cve/2012-3445-typed-params-nparams-0",
    "cve/2013-4296-memory-stats-over-max",
    "cve/2024-1441-list-interfaces-maxnames",
    "cve/2024-2494-negative-nparams",
    "cve/2026-18917-free-pages-overflow",
];
/// Cases that need one of those, hence omitted.
const NEEDS_UNSUPPORTED: &[&str] = &[
    "streams/data-after-finish",
    "streams/abort",
    "streams/hole-on-non-sparse-stream",
    "events/none-after-deregister",
];

fn check_expect(rep: &RunReport, expect: Expect, problems: &mut Vec<String>) {
    let verdict_of = |id: &str| rep.cases.iter().find(|c| c.case.id == id);
    match expect {
        Expect::Any => {}
        Expect::LikeLibvirt => {
            for c in &rep.cases {
                let want = match c.case.id.as_ref() {
                    "payload/trailing-bytes" | "payload/nonzero-padding" | "payload/bool-2" => {
                        Verdict::NonStrict
                    }
                    id if NEEDS_LOCAL_OR_DOMAIN.contains(&id) || CVE_UNREACHABLE.contains(&id) => {
                        Verdict::Unsupported
                    }
                    id if NEEDS_UNSUPPORTED.contains(&id) => Verdict::Omitted,
                    _ => Verdict::Pass,
                };
                if c.verdict != want {
                    problems.push(format!(
                        "{}: {} (want {want}): {}",
                        c.case.id, c.verdict, c.actual
                    ));
                }
            }
            if rep.exit_code() != runner::EXIT_OK {
                problems.push(format!("exit code {}", rep.exit_code()));
            }
        }
        Expect::Open(want, says) => {
            let exit = if want == Verdict::Error {
                runner::EXIT_HARNESS
            } else {
                runner::EXIT_FAILURES
            };
            match verdict_of(OPEN) {
                Some(o) if o.verdict == want && says.iter().any(|s| o.actual.contains(s)) => {}
                Some(o) => problems.push(format!(
                    "{OPEN}: {} {:?} (want {want} saying one of {says:?})",
                    o.verdict, o.actual
                )),
                None => problems.push(format!("no verdict for {OPEN}")),
            }
            for c in rep.cases.iter().filter(|c| c.case.id != OPEN) {
                if c.verdict != Verdict::Omitted {
                    problems.push(format!(
                        "{}: {} (want omitted): {}",
                        c.case.id, c.verdict, c.actual
                    ));
                }
            }
            if rep.exit_code() != exit {
                problems.push(format!("exit code {} (want {exit})", rep.exit_code()));
            }
        }
    }
}

fn counts(rep: &RunReport) -> String {
    let c = rep.counts();
    Verdict::ALL
        .iter()
        .filter_map(|v| c.get(v).map(|n| format!("{n} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every misbehaviour of the issue, against the whole catalogue.
#[test]
fn misbehaving_servers_get_verdicts_in_time() {
    let _one = one_at_a_time();
    let cfg = support::quick_config();
    let schema =
        support::schema_or_skip("verdicts of the well-behaved fakes (reply bodies stay raw)")
            .is_some();
    let started = Instant::now();
    let mut rows = Vec::new();
    for b in behaviours() {
        let server = (b.start)();
        let t = Instant::now();
        let tcp = support::Tcp {
            addr: server.addr(),
            send_buffer: b.client_send_buffer,
        };
        let report = support::run_catalogue_via(tcp, &cfg);
        let wall = t.elapsed();
        drop(server);
        let mut problems = Vec::new();
        check_run(&report, &cfg, &mut problems);
        if wall > cfg.case_timeout * 2 + Duration::from_secs(20) {
            problems.push(format!("the run took {wall:?}"));
        }
        if schema || !matches!(b.expect, Expect::LikeLibvirt) {
            check_expect(&report, b.expect, &mut problems);
        }
        let max = report
            .cases
            .iter()
            .map(|c| c.duration)
            .max()
            .unwrap_or_default();
        rows.push(Row {
            name: b.name,
            report,
            max,
            problems,
        });
    }
    println!(
        "\n| server | verdicts ({} cases) | max time to verdict | run | exit |\n|---|---|---|---|---|",
        catalogue::builtin(None).len()
    );
    for r in &rows {
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {} |",
            r.name,
            counts(&r.report),
            r.max.as_secs_f64(),
            r.report.duration.as_secs_f64(),
            r.report.exit_code()
        );
    }
    println!(
        "(read timeout {:?}, silence {:?}, case timeout {:?}, jobs {}; all rows in {:.1} s)\n",
        cfg.read_timeout,
        cfg.silence,
        cfg.case_timeout,
        cfg.jobs,
        started.elapsed().as_secs_f64()
    );
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.name)))
        .collect();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Each kind of verdict, from a fake built for it.

/// A calm configuration for fakes that answer: a generous read timeout, the silence kept short.
fn calm() -> Config {
    Config {
        read_timeout: Duration::from_secs(2),
        ..support::quick_config()
    }
}

fn serve(f: Fake) -> FakeServer {
    FakeServer::start(move |c| f.serve(c))
}

fn verdict(rep: &RunReport, id: &str) -> Verdict {
    rep.cases
        .iter()
        .find(|c| c.case.id == id)
        .unwrap_or_else(|| panic!("no verdict for {id}"))
        .verdict
}

fn needs_schema() -> bool {
    support::schema_or_skip("reply bodies cannot be read").is_some()
}

/// CONNECT_SUPPORTS_FEATURE(keepalive) = 0: the keepalive family does not apply.
#[test]
fn keepalive_feature_0_is_unsupported_and_its_cases_omitted() {
    let _one = one_at_a_time();
    if !needs_schema() {
        return;
    }
    let server = serve(Fake {
        keepalive: false,
        ..Fake::default()
    });
    let rep = support::run_catalogue(server.addr(), &calm());
    assert_eq!(
        verdict(&rep, "keepalive/feature-supported"),
        Verdict::Unsupported
    );
    for id in [
        "keepalive/ping-gets-pong",
        "keepalive/unsolicited-pong-ignored",
        "keepalive/unknown-procedure-ignored",
    ] {
        assert_eq!(verdict(&rep, id), Verdict::Omitted, "{id}");
    }
    assert_eq!(verdict(&rep, OPEN), Verdict::Pass);
    assert_eq!(rep.exit_code(), runner::EXIT_OK, "{:?}", rep.counts());
    // The family did not run, and the report says so by family, with the reason.
    let not_run = virtwire_conformance::report::not_run(&rep);
    let keepalive: Vec<_> = not_run.iter().filter(|r| r.family == "keepalive").collect();
    assert!(
        keepalive
            .iter()
            .any(|r| r.verdict == Verdict::Unsupported
                && r.reason.contains("does not speak keepalive")),
        "{not_run:?}"
    );
    assert!(
        keepalive
            .iter()
            .any(|r| r.verdict == Verdict::Omitted && r.count >= 3),
        "{not_run:?}"
    );
    // Required, the same family is a failure.
    let cfg = Config {
        require: vec![Pattern::new("keepalive/*", "--require").expect("pattern")],
        ..calm()
    };
    let rep = support::run_catalogue(server.addr(), &cfg);
    assert!(
        rep.unexpected_failures()
            .any(|c| c.case.id == "keepalive/ping-gets-pong"),
        "{:?}",
        rep.counts()
    );
    assert_eq!(rep.exit_code(), runner::EXIT_FAILURES);
}

/// CONNECT_OPEN refused: `dispatch/open` fails, and every case that needs it is omitted rather
/// than failed; the cases that do not need an open connection still run.
#[test]
fn a_failing_open_omits_its_dependents() {
    let _one = one_at_a_time();
    let server = serve(Fake {
        open_fails: true,
        ..Fake::default()
    });
    let rep = support::run_catalogue(server.addr(), &calm());
    let open = rep.cases.iter().find(|c| c.case.id == OPEN).expect("open");
    assert_eq!(open.verdict, Verdict::Fail, "{}", open.actual);
    assert!(
        open.actual.contains("no connection driver"),
        "{}",
        open.actual
    );
    for c in rep.cases.iter().filter(|c| c.case.id != OPEN) {
        assert_eq!(c.verdict, Verdict::Omitted, "{}: {}", c.case.id, c.actual);
        assert!(c.actual.contains("needs "), "{}: {}", c.case.id, c.actual);
    }
    assert_eq!(rep.exit_code(), runner::EXIT_FAILURES);

    // Listed as known-failing with the failure it shows, the same run is as expected.
    let listed = |sig: &str| Config {
        known_failing: vec![Known {
            pattern: Pattern::new(OPEN, "test").expect("pattern"),
            signature: Some(runner::Signature::parse(sig).expect("signature")),
            reason: "the fake has no driver".into(),
        }],
        ..calm()
    };
    let rep = support::run_catalogue(server.addr(), &listed("actual ~ /no connection driver/"));
    assert_eq!(rep.exit_code(), runner::EXIT_OK);
    // Listed with another failure (the connection closed), it fails differently: unexpected.
    let rep = support::run_catalogue(server.addr(), &listed("closed"));
    let open = rep.cases.iter().find(|c| c.case.id == OPEN).expect("open");
    assert!(open.fails_differently(false), "{:?}", open.known);
    let differs = open
        .known
        .as_ref()
        .and_then(|k| k.differs.as_deref())
        .unwrap_or("");
    assert!(
        differs.starts_with("expected {closed}, observed {"),
        "{differs}"
    );
    assert!(differs.contains("closed did not hold"), "{differs}");
    assert_eq!(rep.exit_code(), runner::EXIT_FAILURES);
}

/// Nothing listens: each case that runs is a harness error, not a failure of the server; exit 3.
#[test]
fn a_refused_connection_is_a_harness_error() {
    let _one = one_at_a_time();
    let server = FakeServer::bound_not_listening();
    let rep = support::run_catalogue(server.addr(), &calm());
    let open = rep.cases.iter().find(|c| c.case.id == OPEN).expect("open");
    assert_eq!(open.verdict, Verdict::Error);
    assert!(
        open.actual
            .starts_with("cannot connect to test+tcp://127.0.0.1:"),
        "{}",
        open.actual
    );
    assert!(
        rep.cases
            .iter()
            .all(|c| c.case.id == OPEN || c.verdict == Verdict::Omitted)
    );
    assert_eq!(rep.exit_code(), runner::EXIT_HARNESS);
    assert_eq!(server.accepted(), 0);
}

/// Bytes after a complete argument body: accepted (as libvirt does) is non-strict, a failure only
/// with `strict`; refused is a pass.
#[test]
fn trailing_bytes_accepted_is_non_strict() {
    let _one = one_at_a_time();
    if !needs_schema() {
        return;
    }
    let only = |strict| Config {
        run: vec![Pattern::new("payload/trailing-bytes", "test").expect("pattern")],
        strict,
        ..calm()
    };
    let lenient = serve(Fake::default());
    let rep = support::run_catalogue(lenient.addr(), &only(false));
    let c = rep
        .cases
        .iter()
        .find(|c| c.case.id == "payload/trailing-bytes");
    let c = c.expect("the case ran");
    assert_eq!(c.verdict, Verdict::NonStrict, "{}", c.actual);
    assert!(
        c.actual.starts_with("accepted: 32 REPLY/OK"),
        "{}",
        c.actual
    );
    assert_eq!(rep.cases.len(), 2, "the case and the one it needs");
    assert_eq!(rep.exit_code(), runner::EXIT_OK);
    let rep = support::run_catalogue(lenient.addr(), &only(true));
    assert_eq!(
        rep.exit_code(),
        runner::EXIT_FAILURES,
        "non-strict fails a strict run"
    );

    let strict = serve(Fake {
        strict_args: true,
        ..Fake::default()
    });
    let rep = support::run_catalogue(strict.addr(), &only(true));
    assert_eq!(verdict(&rep, "payload/trailing-bytes"), Verdict::Pass);
    assert_eq!(rep.exit_code(), runner::EXIT_OK);
}

/// A known-failing entry for a case that passes has gone stale: exit 2, and the report names it.
#[test]
fn a_stale_known_failing_entry_exits_2() {
    let _one = one_at_a_time();
    let server = serve(Fake::default());
    let cfg = Config {
        run: vec![Pattern::new("framing/one-byte-at-a-time", "test").expect("pattern")],
        known_failing: vec![Known {
            pattern: Pattern::new("framing/one-byte-*", "known-failing:1").expect("pattern"),
            signature: Some(runner::Signature::parse("closed").expect("signature")),
            reason: "was broken once".into(),
        }],
        ..calm()
    };
    let rep = support::run_catalogue(server.addr(), &cfg);
    assert_eq!(verdict(&rep, "framing/one-byte-at-a-time"), Verdict::Pass);
    let stale: Vec<&str> = rep.stale_known().map(|c| c.case.id.as_ref()).collect();
    assert_eq!(stale, ["framing/one-byte-at-a-time"]);
    assert_eq!(rep.exit_code(), runner::EXIT_STALE_KNOWN);
}

/// A server that reads a little at a time cannot stretch a send past its timeout (the timeout is
/// one deadline for the whole send, not one per partial write).
#[test]
fn a_send_to_a_slow_reader_ends_at_its_timeout() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|mut c| {
        c.receive_buffer(64 << 10);
        c.trickle(16 << 10, Duration::from_millis(50));
    });
    let io = std::net::TcpStream::connect(server.addr()).expect("connect");
    socket2::SockRef::from(&io)
        .set_send_buffer_size(64 << 10)
        .expect("SO_SNDBUF");
    let mut peer = Peer::new(Box::new(io), support::judge());
    let t = Instant::now();
    let r = peer.send(&vec![0u8; 4 << 20], Duration::from_millis(300));
    let took = t.elapsed();
    r.expect_err("4 MiB cannot drain at 320 KiB/s in 300 ms");
    assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
}
