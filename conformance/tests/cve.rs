//! The `cve/` cases against fake daemons (tests/support/fake_cve.rs): one with every fix passes
//! each case (the 2024-1441 one only where a host interface backend could be reached: on the
//! test driver it is unsupported); unfixed ones — answering "Domain not found", another error,
//! REPLY/OK, or dying — fail each case they reach. Before the cases asserted the fix's own
//! refusal on a real domain, any REPLY/ERROR passed, so the "Domain not found" and "other error"
//! fakes passed every case.

mod support;

#[path = "support/fake_cve.rs"]
mod fake_cve;

use std::sync::Arc;
use std::time::Duration;

use fake_cve::{CveFake, Unfixed};
use support::Tcp;
use virtwire_conformance::catalogue;
use virtwire_conformance::runner::{self, Config, Pattern, RunReport, Verdict};

/// Every `cve/` case (and `dispatch/open`, which they need) against `fake`.
fn run_cve(fake: CveFake) -> Option<RunReport> {
    let schema = Arc::new(support::schema_or_skip("cve cases against fakes")?);
    let server = fake.start();
    let cfg = Config {
        read_timeout: Duration::from_millis(1500),
        case_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        jobs: 1,
        run: vec![Pattern::new("cve/*", "test").expect("pattern")],
        ..Config::default()
    };
    let all = catalogue::builtin(Some(&schema));
    let cases = runner::select(&all, &cfg).expect("the pattern matches");
    let tcp = Tcp {
        addr: server.addr(),
        send_buffer: None,
    };
    let rep = runner::run(&cases, &cfg, Box::new(tcp), support::judge(), None, &mut ());
    drop(server);
    Some(rep)
}

/// The verdict of every `cve/` case, by ID.
fn verdicts(rep: &RunReport) -> Vec<(String, Verdict, String)> {
    rep.cases
        .iter()
        .filter(|c| c.case.id.starts_with("cve/"))
        .map(|c| (c.case.id.to_string(), c.verdict, c.actual.clone()))
        .collect()
}

const ALL: [&str; 8] = [
    "cve/2012-4423-event-and-gap-procedures",
    "cve/2011-2511-get-vcpus-overflow",
    "cve/2012-3445-typed-params-nparams-0",
    "cve/2013-4292-huge-param-count",
    "cve/2013-4296-memory-stats-over-max",
    "cve/2024-1441-list-interfaces-maxnames",
    "cve/2024-2494-negative-nparams",
    "cve/2026-18917-free-pages-overflow",
];

/// Every case's verdict is `want(id)`; the problems otherwise.
fn check(rep: &RunReport, want: impl Fn(&str) -> Verdict) -> Vec<String> {
    let got = verdicts(rep);
    for (id, v, actual) in &got {
        eprintln!("{id}: {v}: {actual}");
    }
    let mut problems = Vec::new();
    for id in ALL {
        match got.iter().find(|(i, ..)| i == id) {
            None => problems.push(format!("{id}: no verdict")),
            Some((_, v, actual)) if *v != want(id) => {
                problems.push(format!("{id}: {v} (want {}): {actual}", want(id)))
            }
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn a_daemon_with_every_fix_passes_and_2024_1441_is_unsupported_on_the_test_driver() {
    let Some(rep) = run_cve(CveFake::fixed()) else {
        return;
    };
    let problems = check(&rep, |id| {
        if id == "cve/2024-1441-list-interfaces-maxnames" {
            Verdict::Unsupported
        } else {
            Verdict::Pass
        }
    });
    assert!(problems.is_empty(), "{problems:#?}");
    let why = &verdicts(&rep)
        .into_iter()
        .find(|(i, ..)| i == "cve/2024-1441-list-interfaces-maxnames")
        .expect("verdict")
        .2;
    assert!(
        why.contains("udevListInterfacesByStatus") && why.contains("test driver"),
        "{why}"
    );
}

#[test]
fn a_daemon_with_every_fix_on_a_host_backend_passes_2024_1441() {
    let Some(rep) = run_cve(CveFake {
        driver: "QEMU",
        interfaces: 2,
        ..CveFake::fixed()
    }) else {
        return;
    };
    let problems = check(&rep, |_| Verdict::Pass);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn no_active_interface_makes_2024_1441_unsupported() {
    let Some(rep) = run_cve(CveFake {
        driver: "QEMU",
        interfaces: 0,
        ..CveFake::fixed()
    }) else {
        return;
    };
    let got = verdicts(&rep);
    let (_, v, actual) = got
        .iter()
        .find(|(i, ..)| i == "cve/2024-1441-list-interfaces-maxnames")
        .expect("verdict");
    assert_eq!(*v, Verdict::Unsupported, "{actual}");
}

/// An unfixed daemon on a host backend: every case that reaches the vulnerable call fails, but
/// 2013-4292 (the XDR bound, answered by every fake) and, for REPLY/OK, 2012-3445 (REPLY/OK is
/// what the public API may answer for an empty array once the fix is in).
fn unfixed_fails(u: Unfixed) {
    let Some(rep) = run_cve(CveFake {
        unfixed: Some(u),
        driver: "QEMU",
        interfaces: 2,
    }) else {
        return;
    };
    let problems = check(&rep, |id| match id {
        "cve/2013-4292-huge-param-count" => Verdict::Pass,
        "cve/2012-3445-typed-params-nparams-0" if u == Unfixed::Ok => Verdict::Pass,
        _ => Verdict::Fail,
    });
    assert!(problems.is_empty(), "{u:?}: {problems:#?}");
}

#[test]
fn an_unfixed_daemon_answering_domain_not_found_fails() {
    unfixed_fails(Unfixed::DomainNotFound);
}

#[test]
fn an_unfixed_daemon_answering_another_error_fails() {
    unfixed_fails(Unfixed::OtherError);
}

#[test]
fn an_unfixed_daemon_answering_ok_fails() {
    unfixed_fails(Unfixed::Ok);
}

#[test]
fn an_unfixed_daemon_that_dies_fails() {
    unfixed_fails(Unfixed::Close);
}
