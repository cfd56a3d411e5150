//! The suite as another project would use it from its own `cargo test`: `Suite` against a libvirtd
//! the suite starts itself (test driver, loopback, stopped at the end), with this repository's
//! known-failing list. This is also CI's conformance run against a real libvirtd 9.0: it fails on
//! any unexpected failure, on a stale known-failing entry, and on a harness error.

use std::path::Path;

use virtwire_conformance::Suite;
use virtwire_conformance::runner::{Config, Verdict, lists};

/// libvirtd must be installed for this test; without it the test says so and passes, unless
/// `VIRTWIRE_REQUIRE_ALL=1` (set by scripts/test.sh and CI), where a missing libvirtd fails it.
fn libvirtd_or_skip() -> bool {
    let found = ["/usr/sbin/libvirtd", "/usr/local/sbin/libvirtd"]
        .iter()
        .any(|p| Path::new(p).exists())
        || std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("libvirtd").exists()));
    if !found {
        let why =
            "libvirtd is not installed (apt-get install --no-install-recommends libvirt-daemon)";
        if std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_some_and(|v| v == "1") {
            panic!("VIRTWIRE_REQUIRE_ALL=1 but {why}");
        }
        eprintln!("SKIPPED: {why}");
    }
    found
}

#[test]
fn the_catalogue_against_a_self_started_libvirtd() {
    if !libvirtd_or_skip() {
        return;
    }
    let known =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/known-failing/libvirtd-9.0.txt");
    let config = Config {
        jobs: 2,
        known_failing: lists::known_file(&known, lists::ListKind::Failing)
            .expect("the committed known-failing list parses"),
        ..Config::default()
    };
    let mut suite = Suite::self_started().config(config);
    if let Ok(dir) = std::env::var("VIRTWIRE_PROTOCOL_DIR")
        && !dir.is_empty()
    {
        suite = suite.protocol_dir(dir);
    }
    let report = suite.run().expect("the suite runs");
    let counts = report.counts();
    eprintln!(
        "{} cases: {counts:?} in {:?}",
        report.cases.len(),
        report.duration
    );
    for c in report.cases.iter().filter(|c| c.verdict != Verdict::Pass) {
        eprintln!(
            "{:<11} {}: {} | {}",
            c.verdict.name(),
            c.case.id,
            c.expected,
            c.actual
        );
    }
    assert!(report.cases.len() >= 40, "{} cases", report.cases.len());
    assert_eq!(counts.get(&Verdict::Error), None, "harness errors");
    let unexpected: Vec<_> = report
        .unexpected_failures()
        .map(|c| c.case.id.to_string())
        .collect();
    assert!(unexpected.is_empty(), "unexpected failures: {unexpected:?}");
    let stale: Vec<_> = report
        .stale_known()
        .map(|c| c.case.id.to_string())
        .collect();
    assert!(stale.is_empty(), "known-failing cases that pass: {stale:?}");
    assert_eq!(report.exit_code(), 0);
    // The basics every client relies on passed for real, not by omission.
    for id in [
        "dispatch/open",
        "framing/length-u32-max",
        "header/unknown-procedure",
        "trace/lifecycle-c0",
    ] {
        let c = report.cases.iter().find(|c| c.case.id == id).expect(id);
        assert_eq!(c.verdict, Verdict::Pass, "{id}: {}", c.actual);
    }
}

#[test]
fn an_unreachable_target_is_a_harness_error_not_a_failure() {
    // Port 1 on loopback: nothing listens there (connection refused at once).
    let config = Config {
        run: lists::patterns(&["dispatch/open".into()], "--run").unwrap(),
        ..Config::default()
    };
    let mut suite = Suite::new("test+tcp://127.0.0.1:1/default").config(config);
    if let Ok(dir) = std::env::var("VIRTWIRE_PROTOCOL_DIR")
        && !dir.is_empty()
    {
        suite = suite.protocol_dir(dir);
    }
    let Ok(report) = suite.run() else {
        // No .x files: the suite says so before it connects (a harness error too).
        return;
    };
    assert_eq!(report.cases.len(), 1);
    assert_eq!(
        report.cases[0].verdict,
        Verdict::Error,
        "{}",
        report.cases[0].actual
    );
    assert!(
        report.cases[0].actual.contains("cannot connect"),
        "{}",
        report.cases[0].actual
    );
    assert_eq!(report.exit_code(), 3);
}

/// A crashed and a hung self-started libvirtd are both seen, reported with evidence in the case
/// that met them, and restarted before the next case, which then passes. The cases here kill or
/// stop the daemon themselves (SIGKILL, SIGSTOP) through the suite's handle on it.
#[test]
fn a_crashed_or_hung_self_started_libvirtd_is_reported_and_restarted() {
    use std::sync::Arc;
    use std::time::Duration;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use virtwire_conformance::runner::{self, Case, Level, Outcome};
    use virtwire_conformance::suite::{TargetSpec, load_schema, open_target};
    use virtwire_conformance::wire::Judge;
    use virtwire_protocol::{Compat, Limits};

    if !libvirtd_or_skip() {
        return;
    }
    let dir = std::env::var("VIRTWIRE_PROTOCOL_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0"));
    let schema = load_schema(Some(&dir)).expect("the .x files (scripts/setup.sh --xdr-only)");
    let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, Some(schema)));
    let target = open_target(&TargetSpec::default(), &judge).expect("libvirtd starts");
    let daemon = target.daemon.clone().expect("self-started");
    let signal = |sig: Signal| {
        let d = daemon.clone();
        move |ctx: &mut runner::Ctx<'_>| {
            let pid = d.lock().unwrap().daemon_pid().expect("libvirtd's pid");
            kill(Pid::from_raw(pid as i32), sig).expect("signal libvirtd");
            // What a case then sees: a server that is gone, or one that says nothing.
            ctx.expect_still_serving()?;
            Ok(Outcome::pass("the server serves", "it does"))
        }
    };
    let serves = |ctx: &mut runner::Ctx<'_>| {
        ctx.expect_still_serving()?;
        Ok(Outcome::pass("the server serves", "it does"))
    };
    let cases = vec![
        Case::new(
            "crash/killed",
            Level::Must,
            "r",
            "s",
            signal(Signal::SIGKILL),
        ),
        Case::new("crash/after-kill", Level::Must, "r", "s", serves),
        Case::new(
            "crash/stopped",
            Level::Must,
            "r",
            "s",
            signal(Signal::SIGSTOP),
        ),
        Case::new("crash/after-stop", Level::Must, "r", "s", serves),
    ];
    let cfg = Config {
        read_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let report = runner::run(&cases, &cfg, target.connector, judge, target.hooks, &mut ());
    let by_id = |id: &str| report.cases.iter().find(|c| c.case.id == id).unwrap();
    let killed = by_id("crash/killed");
    assert_eq!(killed.verdict, Verdict::Fail, "{killed:?}");
    let note = killed.notes.join("\n");
    assert!(
        note.contains("libvirtd died during this case")
            && note.contains("SIGKILL")
            && note.contains("restarted it"),
        "{note}"
    );
    let stopped = by_id("crash/stopped");
    assert_eq!(stopped.verdict, Verdict::Fail, "{stopped:?}");
    assert!(
        stopped.actual.contains("nothing within"),
        "{}",
        stopped.actual
    );
    let note = stopped.notes.join("\n");
    assert!(
        note.contains("running but hung")
            && note.contains("T (stopped)")
            && note.contains("restarted it"),
        "{note}"
    );
    for id in ["crash/after-kill", "crash/after-stop"] {
        let c = by_id(id);
        assert_eq!(c.verdict, Verdict::Pass, "{id}: {} {:?}", c.actual, c.notes);
    }
    assert_eq!(daemon.lock().unwrap().restarts(), 2);
}
