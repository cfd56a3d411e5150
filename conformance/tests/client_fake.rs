//! `virtwire check-client`'s verdicts against fake clients (`conformance/tests/clients/
//! fake_client.py`, replaying the session `support/fake_client.rs` writes): a verdict must say what
//! happened, or say that it cannot tell. Each test stages one way a client misbehaves (issue 19,
//! items 7 to 12) and one way it behaves, and checks both verdicts.

#[path = "support/fake_client.rs"]
mod fake_client;

use fake_client::{check_client, session};

const BELOW_HEADER: &str = "client/framing/length-below-header";

#[test]
fn a_crash_in_any_runtime_fails_and_names_its_line() {
    let s = session(true, false);
    for (mode, line) in [
        (
            "go",
            "crashed (Go panic): panic: runtime error: makeslice: len out of range",
        ),
        (
            "python",
            "crashed (Python uncaught exception): ValueError: bad length word 20",
        ),
        (
            "rust",
            "crashed (Rust panic): thread 'main' panicked at src/frame.rs:31:9: bad length word 20",
        ),
    ] {
        let r = check_client(&s, mode, BELOW_HEADER, &[], &[]);
        assert_eq!(r.verdict("client/baseline"), "pass", "{mode}: {}", r.output);
        assert_eq!(r.verdict(BELOW_HEADER), "fail", "{mode}: {}", r.output);
        assert!(
            r.actual(BELOW_HEADER).contains(line),
            "{mode}: {}",
            r.actual(BELOW_HEADER)
        );
        assert_eq!(r.code, Some(1), "{mode}");
    }
    // A graceful refusal ("error: …", exit 1) still rejects.
    let r = check_client(&s, "graceful", BELOW_HEADER, &[], &[]);
    assert_eq!(r.verdict(BELOW_HEADER), "pass", "{}", r.output);
    assert_eq!(r.code, Some(0));
    // Unless the user says exit 1 is not how this client refuses, or that its line is a crash.
    let r = check_client(&s, "graceful", BELOW_HEADER, &["--error-exit", "3,4"], &[]);
    assert_eq!(r.verdict(BELOW_HEADER), "fail", "{}", r.output);
    assert!(
        r.actual(BELOW_HEADER)
            .contains("not one of the client's graceful error exits (--error-exit 3,4)"),
        "{}",
        r.actual(BELOW_HEADER)
    );
    let r = check_client(
        &s,
        "graceful",
        BELOW_HEADER,
        &["--crash-pattern", "^error: bad length"],
        &[],
    );
    assert_eq!(r.verdict(BELOW_HEADER), "fail", "{}", r.output);
    assert!(
        r.actual(BELOW_HEADER)
            .contains("crashed (--crash-pattern /^error: bad length/): error: bad length word 20"),
        "{}",
        r.actual(BELOW_HEADER)
    );
    // A pattern that is not a regular expression is a usage error, not a panic.
    let r = check_client(&s, "graceful", BELOW_HEADER, &["--crash-pattern", "("], &[]);
    assert_eq!(r.code, Some(2), "{}", r.output);
    assert!(
        r.output.contains("not a regular expression"),
        "{}",
        r.output
    );
}

const OVER_MAX: &str = "client/limits/connect_list_all_domains/domains.0.name/over-max";

#[test]
fn an_over_max_value_passes_only_with_evidence_of_refusal() {
    let s = session(true, false);
    // Exit 0, no error, nothing shown, and the field is not shown at its maximum either: nobody
    // can tell, so the verdict says so (it was "pass: refused silently, or not shown").
    let r = check_client(&s, "quiet", OVER_MAX, &[], &[]);
    assert_eq!(r.verdict(OVER_MAX), "unsupported", "{}", r.output);
    assert!(
        r.actual(OVER_MAX).starts_with("inconclusive: "),
        "{}",
        r.actual(OVER_MAX)
    );
    // Exit 0 and nothing shown, but the same field at its maximum is shown: refused silently.
    let r = check_client(&s, "silent", OVER_MAX, &[], &[]);
    assert_eq!(r.verdict(OVER_MAX), "pass", "{}", r.output);
    assert!(
        r.actual(OVER_MAX).contains("refused silently"),
        "{}",
        r.actual(OVER_MAX)
    );
    // Refused with an error: pass.
    let r = check_client(&s, "graceful", OVER_MAX, &[], &[]);
    assert_eq!(r.verdict(OVER_MAX), "pass", "{}", r.output);
    // Taken and shown (exit 0, a run of the fill byte in its output): a MUST failure.
    let r = check_client(&s, "accept", OVER_MAX, &[], &[]);
    assert_eq!(r.verdict(OVER_MAX), "fail", "{}", r.output);
    assert!(
        r.actual(OVER_MAX)
            .contains("it accepted the over-max value and used it"),
        "{}",
        r.actual(OVER_MAX)
    );
}

#[test]
fn keepalive_cases_adapt_to_a_client_that_never_enabled_keepalive() {
    let s = session(false, false);
    let r = check_client(
        &s,
        "nokeepalive",
        "client/{keepalive/*,framing/largest-legal-then-nothing}",
        &["--case-timeout", "3"],
        &[],
    );
    assert_eq!(r.verdict("client/baseline"), "pass", "{}", r.output);
    // libvirtd never PINGs a client that did not ask for keepalive: no false alarm.
    let ping = "client/keepalive/server-ping";
    assert_eq!(r.verdict(ping), "unsupported", "{}", r.output);
    assert!(
        r.actual(ping).contains("never enabled keepalive"),
        "{}",
        r.actual(ping)
    );
    // Silence after a call is silence-without-keepalive's case for it (SHOULD), not a MUST again.
    let silence = "client/keepalive/silence-after-call";
    assert_eq!(r.verdict(silence), "unsupported", "{}", r.output);
    assert!(
        r.actual(silence)
            .contains("client/keepalive/silence-without-keepalive"),
        "{}",
        r.actual(silence)
    );
    assert_eq!(
        r.verdict("client/keepalive/silence-without-keepalive"),
        "non-strict",
        "{}",
        r.output
    );
    let largest = "client/framing/largest-legal-then-nothing";
    assert_eq!(r.verdict(largest), "non-strict", "{}", r.output);
    assert!(
        r.actual(largest).contains("judged at SHOULD"),
        "{}",
        r.actual(largest)
    );
    // The same client with keepalive on answers the PING: pass.
    let r = check_client(&session(true, false), "graceful", ping, &[], &[]);
    assert_eq!(r.verdict(ping), "pass", "{}", r.output);
}

#[test]
fn a_twist_that_changes_nothing_is_unsupported() {
    // The final STREAM/OK comes after the client finishes its stream; this client never does, so
    // there is nothing for continue-without-end to remove.
    let s = session(true, true);
    let id = "client/stream/continue-without-end";
    let r = check_client(&s, "screenshot,nofinish", id, &[], &[]);
    assert_eq!(r.verdict("client/baseline"), "pass", "{}", r.output);
    assert_eq!(r.verdict(id), "unsupported", "{}", r.output);
    assert!(
        r.actual(id)
            .contains("the session has no final STREAM/OK from the server (to remove) to change"),
        "{}",
        r.actual(id)
    );
    // A twist that applies still gets its verdict: a data packet after the stream's first one
    // becomes STREAM/ERROR, which this client refuses.
    let r = check_client(&s, "screenshot", "client/stream/error-mid-stream", &[], &[]);
    assert_eq!(
        r.verdict("client/stream/error-mid-stream"),
        "pass",
        "{}",
        r.output
    );
}

#[test]
fn repeat_reports_a_racy_client_as_flaky() {
    let s = session(true, false);
    let id = "client/order/duplicate-reply";
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("counter");
    let env = [("FAKE_CLIENT_COUNTER", counter.to_str().unwrap())];
    // One run: the race does not show (the client crashes on every second duplicate only).
    let r = check_client(&s, "flaky", id, &[], &env);
    assert_eq!(r.verdict(id), "pass", "{}", r.output);
    std::fs::remove_file(&counter).unwrap();
    let r = check_client(&s, "flaky", id, &["--repeat", "4"], &env);
    assert_eq!(r.verdict(id), "fail", "{}", r.output);
    assert!(
        r.actual(id)
            .starts_with("flaky: fail 2 of 4, pass 2 of 4 (first fail run, run 2 of 4: "),
        "{}",
        r.actual(id)
    );
    assert!(r.actual(id).contains("SIGSEGV"), "{}", r.actual(id));
    assert_eq!(r.code, Some(1));
    // A steady client says so.
    let r = check_client(&s, "graceful", id, &["--repeat", "3"], &[]);
    assert_eq!(r.verdict(id), "pass", "{}", r.output);
    assert!(
        r.actual(id).ends_with("(the same verdict in all 3 runs)"),
        "{}",
        r.actual(id)
    );
}

#[test]
fn a_client_message_that_is_not_strict_xdr_is_named() {
    let s = session(true, false);
    let id = "client/strict-xdr";
    let r = check_client(&s, "badbool", id, &[], &[]);
    assert_eq!(r.verdict("client/baseline"), "pass", "{}", r.output);
    assert_eq!(r.verdict(id), "non-strict", "{}", r.output);
    let actual = r.actual(id);
    assert!(
        actual.contains("the client's CONNECT_OPEN CALL/OK")
            && actual.contains("is not strict XDR"),
        "{actual}"
    );
    assert!(actual.contains("at byte 28 in name"), "{actual}");
    assert_eq!(r.code, Some(0), "{}", r.output);
    let r = check_client(&s, "badbool", id, &["--strict"], &[]);
    assert_eq!(r.verdict(id), "non-strict", "{}", r.output);
    assert_eq!(r.code, Some(1), "--strict makes it a failure: {}", r.output);
    let r = check_client(&s, "graceful", id, &[], &[]);
    assert_eq!(r.verdict(id), "pass", "{}", r.output);
}

/// check-client's reports name check-client (the terminal's first line, JUnit's `<testsuites>`), and
/// a known-failing entry for a client is checked against how the client failed: a Go panic listed
/// as a SIGSEGV fails differently; listed as what it is, it is the known failure.
#[test]
fn client_reports_name_check_client_and_signatures_fit_the_crash() {
    let s = session(true, false);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let list = dir.path().join("known.txt");
    let listed = |sig: &str| {
        std::fs::write(
            &list,
            format!("{BELOW_HEADER}  {{{sig}}}  the fake panics\n"),
        )
        .unwrap();
        check_client(
            &s,
            "go",
            BELOW_HEADER,
            &[
                "--junit",
                junit.to_str().unwrap(),
                "--known-failing",
                list.to_str().unwrap(),
            ],
            &[],
        )
    };
    let r = listed("signal SIGSEGV");
    assert!(
        r.output.starts_with("virtwire check-client: "),
        "{}",
        r.output
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("<testsuites name=\"virtwire check-client\""),
        "{x}"
    );
    assert_eq!(
        r.report["cases"][1]["counts_as"], "fails-differently",
        "{}",
        r.output
    );
    assert!(
        r.output.contains("signal SIGSEGV did not hold"),
        "{}",
        r.output
    );
    assert_eq!(r.code, Some(1));
    let r = listed("exit 2; crash ~ /^panic: runtime error: makeslice/");
    assert_eq!(
        r.report["cases"][1]["counts_as"], "known-failure",
        "{}",
        r.output
    );
    assert_eq!(r.code, Some(0), "{}", r.output);
}
