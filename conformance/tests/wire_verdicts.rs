//! Issue 19, items 4 and 5: verdicts that need positive evidence. Each test stages a fake server
//! that the catalogue used to pass and must not: a forbidden frame that comes late (after the
//! silence window, before the follow-up call's reply), errors in other words than libvirt's, a
//! refusal of a value at its bound, a server that never enforces `max_client_requests`.

#[path = "support/fake_wire.rs"]
mod fake_wire;
mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_wire::{Answer, ERR_INTERNAL, ERR_NO_DOMAIN, ERR_NO_SUPPORT, LocalHooks, Mini, WithAdmin};
use support::{FakeServer, Tcp, judge, one_at_a_time};
use virtwire_conformance::catalogue;
use virtwire_conformance::runner::{
    self, Config, Connector, Pattern, RunReport, ServerHooks, Verdict,
};
use virtwire_protocol::KeepaliveProc;
use virtwire_protocol::header::{ADMIN_PROGRAM, KEEPALIVE_PROGRAM, REMOTE_PROGRAM};

/// Run the cases matching `globs` (and what they need) against `connector`.
fn run(
    connector: Box<dyn Connector>,
    hooks: Option<Arc<dyn ServerHooks>>,
    globs: &[&str],
    cfg: Config,
) -> RunReport {
    let schema = support::schema().ok().map(Arc::new);
    let all = catalogue::builtin(schema.as_ref());
    let cfg = Config {
        run: globs
            .iter()
            .map(|g| Pattern::new(g, "test").expect("pattern"))
            .collect(),
        ..cfg
    };
    let cases = runner::select(&all, &cfg).expect("the globs match cases");
    runner::run(&cases, &cfg, connector, judge(), hooks, &mut ())
}

fn tcp(server: &FakeServer) -> Box<dyn Connector> {
    Box::new(Tcp {
        addr: server.addr(),
        send_buffer: None,
    })
}

/// The verdict and actual of case `id`.
fn verdict(report: &RunReport, id: &str) -> (Verdict, String) {
    let c = report
        .cases
        .iter()
        .find(|c| c.case.id == id)
        .unwrap_or_else(|| panic!("{id} did not run"));
    (c.verdict, c.actual.clone())
}

fn config() -> Config {
    Config {
        read_timeout: Duration::from_secs(4),
        silence: Duration::from_millis(1000),
        case_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        jobs: 4,
        ..Config::default()
    }
}

/// A forbidden answer 1.5 s after a message that must go unanswered: the silence window (1 s)
/// is over, the case's follow-up call is on its way, and the server (answering in order) sends
/// the stray frame before the follow-up's reply. Each case that requires silence must fail,
/// saying when the frame came.
#[test]
fn a_stray_frame_at_1_5_s_fails_the_silence_cases() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            let ping = h.prog == KEEPALIVE_PROGRAM
                && KeepaliveProc::from_raw(h.procedure) == KeepaliveProc::Ping;
            if h.msg_type.is_call() || ping {
                return Answer::Default;
            }
            // Whatever it was, it gets an "answer" it must not get, late.
            Answer::After(
                Duration::from_millis(1500),
                fake_wire::error(&h, ERR_INTERNAL, "internal error: a late answer"),
            )
        })
        .serve(c)
    });
    let ids = [
        "header/client-sends-reply",
        "header/client-sends-message",
        "header/client-sends-stream-hole",
        "keepalive/unsolicited-pong-ignored",
        "keepalive/unknown-procedure-ignored",
        "streams/data-for-no-stream",
    ];
    let report = run(tcp(&server), None, &ids, config());
    for id in ids {
        let (v, actual) = verdict(&report, id);
        assert_eq!(v, Verdict::Fail, "{id}: {actual}");
        let ms: u128 = actual
            .split(" ms after the message was sent")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{id}: no arrival time in {actual:?}"));
        assert!((1400..3000).contains(&ms), "{id}: {ms} ms in {actual:?}");
        assert!(actual.contains("a late answer"), "{id}: {actual}");
    }
}

/// A second reply to the last of the pipelined calls, 1.5 s after the first: it fails
/// `dispatch/pipelined-answered-once` (it used to look for duplicates for 1 s only).
#[test]
fn a_late_duplicate_reply_fails_pipelined_answered_once() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.procedure == 3 && h.serial == 5 {
                // The last of the 4 pipelined CONNECT_GET_TYPE (serials 2 to 5) is answered, and
                // again 1.5 s later: after the 1 s the case used to wait for duplicates.
                let once = fake_wire::ok(&h, b"\0\0\0\x04Test".to_vec());
                return Answer::Twice(once.clone(), Duration::from_millis(1500), once);
            }
            Answer::Default
        })
        .serve(c)
    });
    let report = run(
        tcp(&server),
        None,
        &["dispatch/pipelined-answered-once"],
        config(),
    );
    let (v, actual) = verdict(&report, "dispatch/pipelined-answered-once");
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("ms after the message was sent"), "{actual}");
}

/// events/deregister-unknown-id: libvirt answers VIR_ERR_INTERNAL_ERROR "domain event callback
/// N not registered"; a server that answers "not supported" instead does not pass.
#[test]
fn deregister_unknown_id_with_another_error_fails() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.procedure == 317 {
                return Answer::After(
                    Duration::ZERO,
                    fake_wire::error(&h, ERR_NO_SUPPORT, "this function is not supported"),
                );
            }
            Answer::Default
        })
        .serve(c)
    });
    let report = run(
        tcp(&server),
        None,
        &["events/deregister-unknown-id"],
        config(),
    );
    let (v, actual) = verdict(&report, "events/deregister-unknown-id");
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("not supported"), "{actual}");
}

/// admin/unknown-procedure: libvirt answers VIR_ERR_RPC "unknown procedure: N"; code 1 "internal
/// error" does not pass.
#[test]
fn admin_unknown_procedure_with_internal_error_fails() {
    let _one = one_at_a_time();
    let target = FakeServer::start(|c| Mini::new(|_| Answer::Default).serve(c));
    let admin = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.prog == ADMIN_PROGRAM && h.procedure > 19 {
                return Answer::After(
                    Duration::ZERO,
                    fake_wire::error(&h, ERR_INTERNAL, "internal error: no such call"),
                );
            }
            Answer::Default
        })
        .serve(c)
    });
    let connector = WithAdmin {
        target: Tcp {
            addr: target.addr(),
            send_buffer: None,
        },
        admin: admin.addr(),
    };
    let report = run(
        Box::new(connector),
        None,
        &["admin/unknown-procedure"],
        config(),
    );
    let (v, actual) = verdict(&report, "admin/unknown-procedure");
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("no such call"), "{actual}");
}

/// admin/remote-program-call: a remote-program CONNECT_OPEN may be refused or ignored, never
/// served. A REPLY/OK 1.5 s later (after the 1 s the case used to wait) fails it, with its time.
#[test]
fn a_late_reply_ok_fails_remote_program_call() {
    let _one = one_at_a_time();
    let target = FakeServer::start(|c| Mini::new(|_| Answer::Default).serve(c));
    let admin = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.prog == REMOTE_PROGRAM && h.procedure == 1 {
                return Answer::After(Duration::from_millis(1500), fake_wire::ok(&h, Vec::new()));
            }
            Answer::Default
        })
        .serve(c)
    });
    let connector = WithAdmin {
        target: Tcp {
            addr: target.addr(),
            send_buffer: None,
        },
        admin: admin.addr(),
    };
    let id = "admin/remote-program-call";
    let report = run(Box::new(connector), None, &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("REPLY/OK"), "{actual}");
    assert!(actual.contains("ms after the message was sent"), "{actual}");
}

/// limits/…/max: a server that refuses the value at its bound in words of its own (code 1, not
/// "Unable to decode") while it answers the same call with one item otherwise does not pass.
#[test]
fn a_refusal_at_the_bound_in_other_words_fails_max() {
    let _one = one_at_a_time();
    if support::schema().is_err() {
        support::skip("limits cases need the .x files");
        return;
    }
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            // DOMAIN_SET_SCHEDULER_PARAMETERS (58): one param is "not supported"; 16 (its bound)
            // "too long".
            if h.msg_type.is_call() && h.prog == REMOTE_PROGRAM && h.procedure == 58 {
                let m = if f.payload().len() > 100 {
                    (ERR_INTERNAL, "internal error: argument too long")
                } else {
                    (ERR_NO_SUPPORT, "this function is not supported")
                };
                return Answer::After(Duration::ZERO, fake_wire::error(&h, m.0, m.1));
            }
            Answer::Default
        })
        .serve(c)
    });
    let id = "limits/remote/domain-set-scheduler-parameters/params/max";
    let report = run(tcp(&server), None, &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("argument too long"), "{actual}");

    // The same server answering both alike (driver errors of one class) passes: the value was
    // decoded and reached the same place.
    let alike = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.prog == REMOTE_PROGRAM && h.procedure == 58 {
                return Answer::After(
                    Duration::ZERO,
                    fake_wire::error(
                        &h,
                        ERR_NO_DOMAIN,
                        "Domain not found: no domain with matching name ''",
                    ),
                );
            }
            Answer::Default
        })
        .serve(c)
    });
    let report = run(tcp(&alike), None, &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Pass, "{actual}");
}

/// A "local" fake: a scratch directory and a log file the test owns.
fn local_hooks(max: u32, log: bool) -> (tempfile::TempDir, Arc<dyn ServerHooks>) {
    let dir = tempfile::Builder::new()
        .prefix("virtwire-wire-")
        .tempdir()
        .expect("temp dir");
    let log = log.then(|| {
        let p = dir.path().join("libvirtd.log");
        std::fs::write(&p, "").expect("log");
        p
    });
    let hooks = Arc::new(LocalHooks::new(dir.path().to_path_buf(), max, log));
    (dir, hooks)
}

/// dispatch/over-max-client-requests: a server that answers every call at once never showed that
/// it enforces max_client_requests. With its log known (and silent): fail; without: unsupported.
#[test]
fn a_server_that_answers_everything_at_once_does_not_pass_over_max() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| Mini::new(|_| Answer::Default).serve(c));
    let id = "dispatch/over-max-client-requests";
    let (_dir, hooks) = local_hooks(5, true);
    let report = run(tcp(&server), Some(hooks), &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("Client hit max requests limit"), "{actual}");

    let (_dir, hooks) = local_hooks(5, false);
    let report = run(tcp(&server), Some(hooks), &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Unsupported, "{actual}");
}

/// reply/over-limit-is-error: libvirt answers VIR_ERR_RPC "Unable to encode message payload"; an
/// internal error in other words does not pass.
#[test]
fn an_over_limit_reply_refused_in_other_words_fails() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.procedure == 344 {
                return Answer::After(
                    Duration::ZERO,
                    fake_wire::error(&h, ERR_INTERNAL, "internal error: too many domains"),
                );
            }
            Answer::Default
        })
        .serve(c)
    });
    let id = "reply/over-limit-is-error";
    let (_dir, hooks) = local_hooks(5, true);
    let report = run(tcp(&server), Some(hooks), &[id], config());
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("too many domains"), "{actual}");
}

/// framing/largest-legal-frame: libvirt's test driver skips the missing domains and answers
/// REPLY/OK with no record; "Domain not found" (an error that is not "Unable to decode") does
/// not pass.
#[test]
fn the_largest_frame_answered_with_an_error_fails() {
    let _one = one_at_a_time();
    let server = FakeServer::start(|c| {
        Mini::new(|f| {
            let h = *f.header();
            if h.msg_type.is_call() && h.procedure == 344 {
                return Answer::After(
                    Duration::ZERO,
                    fake_wire::error(&h, ERR_NO_DOMAIN, "Domain not found: no such domain"),
                );
            }
            Answer::Default
        })
        .serve(c)
    });
    let id = "framing/largest-legal-frame";
    let cfg = Config {
        case_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(15),
        ..config()
    };
    let report = run(tcp(&server), None, &[id], cfg);
    let (v, actual) = verdict(&report, id);
    assert_eq!(v, Verdict::Fail, "{actual}");
    assert!(actual.contains("Domain not found"), "{actual}");
}
