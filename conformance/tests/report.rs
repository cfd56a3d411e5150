//! The reports of a conformance run (terminal, JUnit, JSON), from a `RunReport` built by hand: one
//! case of each verdict, known-failing and known-flaky cases, a known-failing case that passes, and a
//! wire log with a real CONNECT_OPEN call answered by an error reply.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use quick_junit::{NonSuccessKind, TestCaseStatus};
use serde_json::Value;
use virtwire_conformance::capture::tcp::Dir;
use virtwire_conformance::report::{self, Standing, json, junit, terminal};
use virtwire_conformance::runner::ctx::connect_open_args;
use virtwire_conformance::runner::{
    Case, CaseReport, KnownAs, KnownList, Level, Outcome, Progress, RunReport, Verdict, Wire,
};
use virtwire_conformance::wire::peer::Chunk;
use virtwire_conformance::wire::{Decoder, Options, Record};
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{ErrorBody, FrameBuilder, Limits, MessageStatus, MessageType, Writer};

/// Enough of remote_protocol.x to name CONNECT_OPEN and decode its arguments.
const REMOTE_X: &str = "
const REMOTE_STRING_MAX = 4194304;
typedef string remote_nonnull_string<REMOTE_STRING_MAX>;
typedef remote_nonnull_string *remote_string;
struct remote_connect_open_args { remote_string name; unsigned int flags; };
const REMOTE_PROGRAM = 0x20008086;
const REMOTE_PROTOCOL_VERSION = 1;
enum remote_procedure { REMOTE_PROC_CONNECT_OPEN = 1, REMOTE_PROC_CONNECT_CLOSE = 2 };
";

fn decoder() -> Decoder {
    let schema = Schema::from_sources(&[("src/remote/remote_protocol.x", REMOTE_X)]).unwrap();
    Decoder::with_schema(Options::default(), schema)
}

const UNKNOWN_PROC_ID: &str = "dispatch/unknown-procedure";
const ACTUAL: &str = "REPLY/OK to CONNECT_OPEN (serial 1)";
const EXPECTED: &str = "REPLY/ERROR to serial 1 with code 39";
const KNOWN_REASON: &str = "the daemon answers VIR_ERR_RPC (issue 12)";

/// CONNECT_OPEN("test:///default") serial 1, then its REPLY/ERROR "unknown procedure: 9999".
fn open_and_error() -> Vec<Chunk> {
    let limits = Limits::default();
    let call = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .payload(connect_open_args(Some("test:///default"), 0))
        .encode(&limits)
        .unwrap();
    let mut body = Vec::new();
    ErrorBody::new(39, 7, "unknown procedure: 9999")
        .encode(&mut Writer::new(&mut body), &limits)
        .unwrap();
    let reply = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .msg_type(MessageType::Reply)
        .status(MessageStatus::Error)
        .payload(body)
        .encode(&limits)
        .unwrap();
    vec![
        Chunk {
            dir: Dir::C2s,
            at: Duration::from_micros(150),
            bytes: call,
        },
        Chunk {
            dir: Dir::S2c,
            at: Duration::from_millis(3),
            bytes: reply,
        },
    ]
}

/// A REPLY/ERROR whose error body is cut short: a message that does not decode.
fn broken_reply() -> Vec<Chunk> {
    let reply = FrameBuilder::call(REMOTE_PROGRAM, 1, 5)
        .msg_type(MessageType::Reply)
        .status(MessageStatus::Error)
        .payload(vec![0, 0, 0, 39])
        .encode(&Limits::default())
        .unwrap();
    vec![Chunk {
        dir: Dir::S2c,
        at: Duration::from_millis(1),
        bytes: reply,
    }]
}

fn case(id: &'static str, level: Level) -> Case {
    Case::new(
        id,
        level,
        format!("requirement of {id}"),
        format!("docs/protocol.md, for {id}"),
        |_| Ok(Outcome::pass("", "")),
    )
}

/// A known-list entry that applies (its failure fits).
fn known(list: KnownList, reason: &str) -> KnownAs {
    KnownAs {
        list,
        reason: reason.into(),
        at: "known-failing.txt:3".into(),
        signature: Some("code 1".into()),
        differs: None,
    }
}

fn result(
    id: &'static str,
    level: Level,
    verdict: Verdict,
    known: Option<KnownAs>,
    actual: &str,
) -> CaseReport {
    CaseReport {
        case: case(id, level),
        verdict,
        expected: if matches!(
            verdict,
            Verdict::Unsupported | Verdict::Omitted | Verdict::Error
        ) {
            String::new()
        } else {
            format!("expected of {id}")
        },
        actual: actual.into(),
        notes: Vec::new(),
        duration: Duration::from_millis(7),
        started: Duration::ZERO,
        known,
        required: false,
        facts: Vec::new(),
        wire: Vec::new(),
        server_log: None,
        rerun: format!("virtwire check --run '{id}'"),
    }
}

/// A run with every verdict and standing.
fn run_report(strict: bool) -> RunReport {
    let log: String = (1..=30)
        .map(|i| format!("line {i:02} of the log\n"))
        .collect();
    let mut unknown = result(UNKNOWN_PROC_ID, Level::Must, Verdict::Fail, None, ACTUAL);
    unknown.expected = EXPECTED.into();
    unknown.notes = vec!["the server said \x1b[31mred\x1b[0m".into()];
    unknown.wire = vec![
        Wire {
            label: "conn 1".into(),
            chunks: open_and_error(),
            cut: (0, 0),
            cap: 256 << 10,
        },
        Wire {
            label: "conn 2".into(),
            chunks: broken_reply(),
            cut: (0, 0),
            cap: 256 << 10,
        },
    ];
    unknown.server_log = Some(log);
    let mut omitted = result(
        "streams/upload",
        Level::Must,
        Verdict::Omitted,
        None,
        "needs handshake/x, which did not pass (fail)",
    );
    omitted.duration = Duration::ZERO;
    omitted.case.needs = vec![Cow::Borrowed("handshake/x")];
    RunReport {
        target: "test+tcp://127.0.0.1:16509/default".into(),
        started: std::time::SystemTime::UNIX_EPOCH,
        cases: vec![
            result(
                "handshake/connect-open",
                Level::Must,
                Verdict::Pass,
                None,
                "REPLY/OK",
            ),
            unknown,
            result(
                "dispatch/unknown-program",
                Level::Must,
                Verdict::Fail,
                Some(known(KnownList::Failing, KNOWN_REASON)),
                "REPLY/ERROR code 1",
            ),
            result(
                "payload/padding-nonzero",
                Level::Should,
                Verdict::NonStrict,
                None,
                "accepted non-zero padding",
            ),
            result(
                "transport/tls-only",
                Level::Must,
                Verdict::Unsupported,
                None,
                "the target is not TLS",
            ),
            omitted,
            result(
                "limits/remote_nonnull_string/over-max",
                Level::Must,
                Verdict::Error,
                None,
                "cannot connect to test+tcp://127.0.0.1:16509/default: refused",
            ),
            result(
                "framing/length-below-4",
                Level::Must,
                Verdict::Pass,
                Some(known(KnownList::Failing, "was fixed in 9.1")),
                "the connection closed",
            ),
            result(
                "keepalive/ping",
                Level::Must,
                Verdict::Fail,
                Some(known(KnownList::Flaky, "timing")),
                "nothing within 1.0 s",
            ),
        ],
        duration: Duration::from_millis(3120),
        strict,
        stopped: None,
    }
}

fn terminal_text(r: &RunReport, color: bool) -> String {
    let mut out = Vec::new();
    let opts = terminal::Options {
        color,
        known_failing_list: Some("known-failing.txt".into()),
        ..Default::default()
    };
    terminal::print(r, &decoder(), &mut out, &opts).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn standings_read_verdicts_with_strict_and_the_known_lists() {
    let r = run_report(false);
    let got: Vec<Standing> = r.cases.iter().map(|c| Standing::of(c, false)).collect();
    use Standing::*;
    assert_eq!(
        got,
        [
            Pass,
            Failure,
            KnownFailure,
            NonStrict,
            Unsupported,
            Omitted,
            Error,
            StaleKnown,
            Flaky
        ]
    );
    assert_eq!(Standing::of(&r.cases[3], true), Failure);
}

#[test]
fn terminal_shows_the_tree_details_decoded_wire_and_exit_meaning() {
    let r = run_report(false);
    let t = terminal_text(&r, false);
    assert!(!t.contains('\x1b'), "no colour, no raw escapes:\n{t}");
    // The tree: families, one line per case with verdict and duration.
    assert!(
        t.starts_with("virtwire check: test+tcp://127.0.0.1:16509/default\n"),
        "{t}"
    );
    for line in [
        "dispatch (2)",
        "  dispatch/unknown-procedure                  7 ms  FAIL",
        &format!("dispatch/unknown-program                    7 ms  fail (known: {KNOWN_REASON})"),
        "payload/padding-nonzero                     7 ms  non-strict",
        "transport/tls-only                          7 ms  unsupported: the target is not TLS",
        "streams/upload                                 -  omitted: needs handshake/x, which did not pass (fail)",
        "limits/remote_nonnull_string/over-max       7 ms  ERROR",
        "framing/length-below-4                      7 ms  PASS BUT LISTED AS KNOWN-FAILING (was fixed in 9.1)",
        "keepalive/ping                              7 ms  fail (flaky: timing)",
    ] {
        assert!(t.contains(line), "missing {line:?} in\n{t}");
    }
    // The failure's block.
    let block = t
        .split("\nFAIL dispatch/unknown-procedure\n")
        .nth(1)
        .expect("a block for the unexpected failure")
        .split("\n\n")
        .next()
        .unwrap();
    for line in [
        "  Requirement:   requirement of dispatch/unknown-procedure\n",
        "  Source:        docs/protocol.md, for dispatch/unknown-procedure\n",
        "  Level:         MUST\n",
        &format!("  Expected:      {EXPECTED}\n"),
        &format!("  Actual:        {ACTUAL}\n"),
        "  Note:          the server said \\u{1b}[31mred\\u{1b}[0m\n",
        "  Wire, conn 1 (2 records):\n",
        "    +0.000s c2s CALL remote CONNECT_OPEN serial 1\n",
        "    +0.003s s2c REPLY/ERROR remote CONNECT_OPEN serial 1: unknown procedure: 9999 (code 39, domain 7)\n",
        "  Wire, conn 2 (1 record):\n",
        "  Server log (last 20 of 30 lines):\n",
        "    line 11 of the log\n",
        "    line 30 of the log\n",
        "  Rerun:         virtwire check --run 'dispatch/unknown-procedure'",
    ] {
        assert!(block.contains(line), "missing {line:?} in\n{block}");
    }
    assert!(!block.contains("line 10 of the log"), "{block}");
    // A frame that does not decode: its words, the error, and its first bytes in hex.
    let broken = block
        .lines()
        .find(|l| l.contains("serial 5"))
        .expect("the broken reply");
    assert!(
        broken.starts_with(
            "    +0.001s s2c REPLY/ERROR remote CONNECT_OPEN serial 5 - does not decode: "
        ) && broken.ends_with("; body 00000027"),
        "{broken}"
    );
    // Blocks for the error and the stale entry too, none for the known and the lenient.
    assert!(
        t.contains("\nERROR limits/remote_nonnull_string/over-max\n"),
        "{t}"
    );
    assert!(
        t.contains("\nSTALE KNOWN-FAILING framing/length-below-4\n"),
        "{t}"
    );
    assert!(
        t.contains(
            "  Known failing: was fixed in 9.1 (known-failing.txt:3)\n  Expects:       {code 1}\n"
        ),
        "{t}"
    );
    // What did not run, by family and reason, before the closing lines.
    assert!(
        t.contains(
            "Not run, by family (`--require GLOB` makes them failures):\n  \
             transport  1 unsupported: the target is not TLS\n  \
             streams    1 omitted: needs handshake/x, which did not pass (fail)\n"
        ),
        "{t}"
    );
    assert!(!t.contains("\nFAIL dispatch/unknown-program\n"), "{t}");
    assert!(!t.contains("\nNON-STRICT payload/"), "{t}");
    // The closing lines.
    assert!(
        t.ends_with(
            "9 cases in 3.12 s: 2 pass (1 listed as known-failing), 3 fail (1 known, 1 flaky), \
             1 non-strict, 1 unsupported, 1 omitted, 1 error\n\
             exit 3: 1 case could not be run (harness error); 1 unexpected failure; \
             1 known-failing case no longer fails (it passes or did not run): update known-failing.txt\n"
        ),
        "{t}"
    );
}

#[test]
fn terminal_colours_only_when_asked_and_strict_counts_non_strict() {
    let t = terminal_text(&run_report(false), true);
    assert!(t.contains("\x1b[1;31mFAIL\x1b[0m"), "{t}");
    // A family whose cases all pass is one green line.
    assert!(t.contains("\x1b[32mall pass\x1b[0m"), "{t}");
    // Server text stays escaped even with colour on.
    assert!(t.contains("said \\u{1b}[31mred"), "{t}");
    let t = terminal_text(&run_report(true), false);
    assert!(t.contains("NON-STRICT (a failure under --strict)"), "{t}");
    assert!(t.contains("\nNON-STRICT payload/padding-nonzero\n"), "{t}");
    assert!(t.contains("SHOULD (lenience is non-strict"), "{t}");
    assert!(t.contains("; 2 unexpected failures;"), "{t}");
}

#[test]
fn exit_meaning_names_the_list_and_all_as_expected() {
    let mut r = run_report(false);
    r.cases
        .retain(|c| !matches!(c.verdict, Verdict::Error) && c.case.id != UNKNOWN_PROC_ID);
    assert_eq!(r.exit_code(), 2);
    assert_eq!(
        report::exit_meaning(&r, "k.txt"),
        "1 known-failing case no longer fails (it passes or did not run): update k.txt"
    );
    r.cases.retain(|c| c.case.id != "framing/length-below-4");
    assert_eq!(r.exit_code(), 0);
    assert_eq!(
        report::exit_meaning(&r, "k.txt"),
        "all as expected (2 failures on the known lists)"
    );
}

#[test]
fn color_needs_a_terminal_and_no_no_color() {
    use std::ffi::OsStr;
    assert!(terminal::use_color(true, None));
    assert!(terminal::use_color(true, Some(OsStr::new(""))));
    assert!(!terminal::use_color(true, Some(OsStr::new("1"))));
    assert!(!terminal::use_color(false, None));
}

/// A writer the test can read after the progress took it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_lines_in_ci() {
    let r = run_report(false);
    assert!(terminal::TerminalProgress::new(true, false).is_bar());
    assert!(!terminal::TerminalProgress::new(true, true).is_bar());
    assert!(!terminal::TerminalProgress::new(false, false).is_bar());
    let buf = Shared::default();
    let mut p = terminal::TerminalProgress::with_lines_to(false, true, Box::new(buf.clone()));
    p.start(r.cases.len());
    for c in &r.cases[..3] {
        p.finished(c);
    }
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        format!(
            "[1/9] pass handshake/connect-open (7 ms)\n\
             [2/9] FAIL dispatch/unknown-procedure (7 ms)\n\
             [3/9] fail (known: {KNOWN_REASON}) dispatch/unknown-program (7 ms)\n"
        )
    );
    // The bar takes the whole run without a terminal to draw on.
    let mut bar = terminal::TerminalProgress::new(true, false).strict(true);
    bar.start(r.cases.len());
    for c in &r.cases {
        bar.finished(c);
    }
}

#[test]
fn junit_parses_with_the_right_counts_and_texts() {
    let r = run_report(false);
    let dir = std::env::temp_dir().join(format!("vw-report-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("check.xml");
    let opts = junit::Options {
        started: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..Default::default()
    };
    junit::write(&r, &decoder(), &path, &opts).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.name.as_deref(), Some("virtwire check"));
    // Unexpected failure + stale known-failing; the harness error; known, flaky, unsupported, omitted.
    assert_eq!(
        (parsed.tests, parsed.failures, parsed.errors, parsed.skipped),
        (9, 2, 1, 4),
        "{xml}"
    );
    let suites: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        suites,
        [
            "handshake",
            "dispatch",
            "payload",
            "transport",
            "streams",
            "limits",
            "framing",
            "keepalive"
        ]
    );
    let case = |id: &str| {
        parsed
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .find(|c| c.name.as_str() == id)
            .unwrap_or_else(|| panic!("no testcase {id}"))
    };
    let c = case(UNKNOWN_PROC_ID);
    assert_eq!(c.classname.as_deref(), Some("dispatch"));
    assert_eq!(c.time, Some(Duration::from_millis(7)));
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Failure,
        message,
        ty,
        description,
        ..
    } = &c.status
    else {
        panic!("{:?}", c.status)
    };
    assert_eq!(message.as_deref(), Some(ACTUAL));
    assert_eq!(ty.as_deref(), Some("fail"));
    let d = description.as_deref().unwrap();
    for line in [
        "Requirement:   requirement of dispatch/unknown-procedure\n",
        &format!("Expected:      {EXPECTED}\n"),
        &format!("Actual:        {ACTUAL}\n"),
        "  +0.000s c2s CALL remote CONNECT_OPEN serial 1\n",
        "s2c REPLY/ERROR remote CONNECT_OPEN serial 1: unknown procedure: 9999",
        "Rerun:         virtwire check --run 'dispatch/unknown-procedure'",
    ] {
        assert!(d.contains(line), "missing {line:?} in\n{d}");
    }
    let TestCaseStatus::Skipped { message, ty, .. } = &case("dispatch/unknown-program").status
    else {
        panic!()
    };
    assert_eq!(
        message.as_deref(),
        Some(&*format!("known failing: {KNOWN_REASON}"))
    );
    assert_eq!(ty.as_deref(), Some("known-failing"));
    let known = case("dispatch/unknown-program");
    assert!(
        known
            .properties
            .iter()
            .any(|p| p.name.as_str() == "known-failing" && p.value.as_str() == KNOWN_REASON)
    );
    assert!(matches!(
        &case("framing/length-below-4").status,
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, ty: Some(t), .. } if t.as_str() == "stale-known-failing"
    ));
    assert!(matches!(
        &case("limits/remote_nonnull_string/over-max").status,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ..
        }
    ));
    assert!(matches!(
        &case("payload/padding-nonzero").status,
        TestCaseStatus::Success { .. }
    ));
    let TestCaseStatus::Skipped { message, .. } = &case("streams/upload").status else {
        panic!()
    };
    assert_eq!(
        message.as_deref(),
        Some("omitted: needs handshake/x, which did not pass (fail)")
    );
    // Under --strict the lenient case is a failure too.
    let strict =
        junit::to_string(&run_report(true), &decoder(), &junit::Options::default()).unwrap();
    let strict = quick_junit::Report::deserialize_from_str(&strict).unwrap();
    assert_eq!((strict.failures, strict.errors, strict.skipped), (3, 1, 4));
}

/// The decoder's own records for a connection, as `decode --format json` would print them.
fn decoder_records(id: &str, conn: u64, chunks: &[Chunk]) -> Vec<Value> {
    let mut out = Vec::new();
    decoder()
        .decode_chunks(id, conn, chunks, &mut |r: &Record<'_>| {
            out.push(serde_json::to_value(r).map_err(std::io::Error::from)?);
            Ok(())
        })
        .unwrap();
    out
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn json_follows_its_schema_and_carries_the_wire_records_verbatim() {
    let r = run_report(false);
    let dir = std::env::temp_dir().join(format!("vw-report-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("check.json");
    let opts = json::Options {
        started: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)),
        ..Default::default()
    };
    json::write(&r, &decoder(), &path, &opts).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The documented fields, in the documented order.
    assert_eq!(
        keys(&doc),
        [
            "schema",
            "target",
            "strict",
            "started",
            "duration_ms",
            "counts",
            "unexpected_failures",
            "stale_known",
            "not_run",
            "exit_code",
            "exit_meaning",
            "stopped",
            "cases"
        ]
    );
    assert_eq!(doc["schema"], json::SCHEMA);
    assert_eq!(doc["schema"], "virtwire-check/1");
    assert_eq!(doc["target"], "test+tcp://127.0.0.1:16509/default");
    assert_eq!(doc["strict"], false);
    assert_eq!(doc["started"], "2023-11-14T22:13:20.250Z");
    assert_eq!(doc["duration_ms"], 3120);
    assert_eq!(
        doc["counts"],
        serde_json::json!({"pass": 2, "fail": 3, "non-strict": 1, "unsupported": 1, "omitted": 1, "error": 1})
    );
    assert_eq!(
        keys(&doc["counts"]),
        [
            "pass",
            "fail",
            "non-strict",
            "unsupported",
            "omitted",
            "error"
        ]
    );
    assert_eq!(doc["unexpected_failures"], 1);
    assert_eq!(doc["stale_known"], 1);
    assert_eq!(doc["exit_code"], 3);
    assert!(
        doc["exit_meaning"]
            .as_str()
            .unwrap()
            .starts_with("1 case could not be run")
    );
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        assert_eq!(
            keys(c),
            [
                "id",
                "family",
                "requirement",
                "source",
                "level",
                "needs",
                "verdict",
                "counts_as",
                "expected",
                "actual",
                "notes",
                "duration_ms",
                "started_ms",
                "known",
                "required",
                "facts",
                "rerun",
                "server_log",
                "wire"
            ]
        );
    }
    let verdicts: Vec<&str> = cases
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "pass",
            "fail",
            "fail",
            "non-strict",
            "unsupported",
            "omitted",
            "error",
            "pass",
            "fail"
        ]
    );
    let standings: Vec<&str> = cases
        .iter()
        .map(|c| c["counts_as"].as_str().unwrap())
        .collect();
    assert_eq!(
        standings,
        [
            "pass",
            "failure",
            "known-failure",
            "non-strict",
            "unsupported",
            "omitted",
            "error",
            "stale-known",
            "flaky"
        ]
    );
    let c = &cases[1];
    assert_eq!(c["id"], UNKNOWN_PROC_ID);
    assert_eq!(c["family"], "dispatch");
    assert_eq!(c["level"], "must");
    assert_eq!(c["expected"], EXPECTED);
    assert_eq!(c["actual"], ACTUAL);
    assert_eq!(
        c["notes"],
        serde_json::json!(["the server said \x1b[31mred\x1b[0m"])
    );
    assert_eq!(c["duration_ms"], 7);
    assert_eq!(c["known"], Value::Null);
    assert_eq!(
        c["rerun"],
        "virtwire check --run 'dispatch/unknown-procedure'"
    );
    assert!(
        c["server_log"]
            .as_str()
            .unwrap()
            .starts_with("line 01 of the log\n")
    );
    assert_eq!(
        cases[2]["known"],
        serde_json::json!({"list": "failing", "reason": KNOWN_REASON,
            "at": "known-failing.txt:3", "signature": "code 1", "differs": null})
    );
    assert_eq!(
        cases[8]["known"],
        serde_json::json!({"list": "flaky", "reason": "timing",
            "at": "known-failing.txt:3", "signature": "code 1", "differs": null})
    );
    assert_eq!(cases[3]["level"], "should");
    assert_eq!(cases[5]["needs"], serde_json::json!(["handshake/x"]));
    assert_eq!(cases[0]["wire"], serde_json::json!([]));
    // The wire: per connection, exactly the decoder's records.
    let wire = c["wire"].as_array().unwrap();
    assert_eq!(wire.len(), 2);
    assert_eq!(
        keys(&wire[0]),
        [
            "label",
            "records",
            "truncated",
            "cut_sent",
            "cut_received",
            "cap"
        ]
    );
    assert_eq!(wire[0]["label"], "conn 1");
    let expected = decoder_records(UNKNOWN_PROC_ID, 1, &open_and_error());
    assert_eq!(expected.len(), 3, "two messages and the summary");
    assert_eq!(wire[0]["records"], Value::Array(expected.clone()));
    assert_eq!(wire[0]["truncated"], 0);
    assert_eq!(
        wire[1]["records"],
        Value::Array(decoder_records(UNKNOWN_PROC_ID, 2, &broken_reply()))
    );
    // And they are real decodes: the call's arguments, the error reply's message.
    let call = &wire[0]["records"][0];
    assert_eq!(call["proc_name"], "CONNECT_OPEN");
    assert_eq!(call["dir"], "c2s");
    assert_eq!(
        call["body"],
        serde_json::json!({"name": "test:///default", "flags": 0})
    );
    let reply = &wire[0]["records"][1];
    assert_eq!(reply["status_name"], "ERROR");
    assert_eq!(reply["body"]["message"], "unknown procedure: 9999");
    assert_eq!(wire[0]["records"][2]["record"], "summary");
    assert_ne!(wire[1]["records"][0]["error"], Value::Null);
}

#[test]
fn json_bounds_records_per_connection_and_keeps_the_summary() {
    let r = run_report(false);
    let mut out = Vec::new();
    let opts = json::Options {
        max_records: 1,
        ..Default::default()
    };
    json::to_writer(&r, &decoder(), &opts, &mut out).unwrap();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["started"], Value::Null);
    let conn = &doc["cases"][1]["wire"][0];
    let all = decoder_records(UNKNOWN_PROC_ID, 1, &open_and_error());
    assert_eq!(conn["records"], serde_json::json!([all[0], all[2]]));
    assert_eq!(conn["truncated"], 1);
    // The summary's counts cover what was left out.
    assert_eq!(conn["records"][1]["messages"], 2);
}

#[test]
fn wire_summaries_cover_framing_errors_and_unfinished_frames() {
    let call = open_and_error().remove(0).bytes;
    let wire = |bytes: Vec<u8>| Wire {
        label: "conn 1".into(),
        chunks: vec![
            Chunk {
                dir: Dir::C2s,
                at: Duration::ZERO,
                bytes: call.clone(),
            },
            Chunk {
                dir: Dir::S2c,
                at: Duration::from_millis(1500),
                bytes,
            },
        ],
        cut: (0, 0),
        cap: 256 << 10,
    };
    // A length word below the header's size: the direction cannot be framed on.
    let lines =
        report::wire_log::summarise(&decoder(), "framing/x", 1, &wire(vec![0, 0, 0, 2])).unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].starts_with("+1.500s s2c FRAMING ERROR: ")
            && lines[1].contains("(length word 2)")
            && lines[1].ends_with("; nothing more read this way"),
        "{lines:?}"
    );
    // Half a frame, then the end of the log.
    let half = call[..20].to_vec();
    let lines = report::wire_log::summarise(&decoder(), "framing/x", 1, &wire(half)).unwrap();
    assert_eq!(
        lines[1],
        "+1.500s s2c unfinished frame: 20 of 56 bytes, then the connection ended"
    );
}

/// House rule: reports never reach a target or a socket; they show what the runner recorded.
#[test]
fn report_imports_no_target_and_opens_nothing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report");
    let forbidden = [
        "crate::target",
        "super::target",
        "TcpStream",
        "UnixStream",
        "Connector",
        "runner::ctx",
    ];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for f in forbidden {
            assert!(!text.contains(f), "{} mentions {f}", path.display());
        }
    }
}
