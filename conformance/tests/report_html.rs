//! Issue 23's reports: the terminal summary (families that all pass on one line), JUnit suite times
//! as wall time, a wire log cut at its cap said as such, `virtwire` on a closed pipe, and the HTML
//! report checked in headless Chromium (counts, a known failing case's details, the filters).

mod support;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::FakeServer;
use virtwire_conformance::capture::tcp::Dir;
use virtwire_conformance::report::{html, junit, terminal, wire_log};
use virtwire_conformance::runner::ctx::connect_open_args;
use virtwire_conformance::runner::{
    Case, CaseReport, Fact, KnownAs, KnownList, Level, Outcome, RunReport, Verdict, Wire,
};
use virtwire_conformance::wire::peer::Chunk;
use virtwire_conformance::wire::{Decoder, Options};
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

fn open_call() -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .payload(connect_open_args(Some("test:///default"), 0))
        .encode(&Limits::default())
        .unwrap()
}

fn error_reply(code: i32, msg: &str) -> Vec<u8> {
    let limits = Limits::default();
    let mut body = Vec::new();
    ErrorBody::new(code, 7, msg)
        .encode(&mut Writer::new(&mut body), &limits)
        .unwrap();
    FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .msg_type(MessageType::Reply)
        .status(MessageStatus::Error)
        .payload(body)
        .encode(&limits)
        .unwrap()
}

fn wire(chunks: Vec<Chunk>, cut: (usize, usize)) -> Wire {
    Wire {
        label: "conn 1".into(),
        chunks,
        cut,
        cap: 256 << 10,
    }
}

fn case_report(id: &'static str, verdict: Verdict, started_ms: u64, ms: u64) -> CaseReport {
    CaseReport {
        case: Case::new(
            id,
            Level::Must,
            format!("requirement of {id}"),
            "src/rpc/virnetserverprogram.c virNetServerProgramDispatchCall",
            |_| Ok(Outcome::pass("", "")),
        ),
        verdict,
        expected: format!("expected of {id}"),
        actual: format!("actual of {id}"),
        notes: Vec::new(),
        duration: Duration::from_millis(ms),
        started: Duration::from_millis(started_ms),
        known: None,
        required: false,
        facts: Vec::new(),
        wire: Vec::new(),
        server_log: None,
        rerun: format!("virtwire check --run '{id}'"),
    }
}

const KNOWN_ID: &str = "limits/remote/connect-open/name/max";
const DIFFERS_ID: &str = "cve/2026-18917-free-pages-overflow";
const FAIL_ID: &str = "dispatch/unknown-procedure";

/// A run of 2 jobs: framing (3 cases, all pass, overlapping in time), dispatch (a failure and a
/// pass), limits (a known failure with a wire log and daemon log), cve (fails differently), and an
/// unsupported case.
fn run() -> RunReport {
    let mut known = case_report(KNOWN_ID, Verdict::Fail, 400, 300);
    known.known = Some(KnownAs {
        list: KnownList::Failing,
        reason: "libvirtd 9.0.0 drops the client: Failed to serialize remote error".into(),
        at: "corpus/known-failing/libvirtd-9.0.txt:44".into(),
        signature: Some("closed; daemon-log ~ /Failed to serialize remote error/".into()),
        differs: None,
    });
    known.facts = vec![Fact::Closed];
    known.server_log =
        Some("error : virNetServerClientSendMessage: Failed to serialize remote error\n".into());
    // The call as far as the log kept it (the cap), then the server's error.
    let call = open_call();
    known.wire = vec![wire(
        vec![
            Chunk {
                dir: Dir::C2s,
                at: Duration::from_micros(100),
                bytes: call[..30].to_vec(),
            },
            Chunk {
                dir: Dir::S2c,
                at: Duration::from_millis(2),
                bytes: error_reply(1, "internal error: <b>markup</b> & more"),
            },
        ],
        (4_000_000, 0),
    )];
    let mut differs = case_report(DIFFERS_ID, Verdict::Fail, 700, 50);
    differs.known = Some(KnownAs {
        list: KnownList::Failing,
        reason: "crashes (SIGSEGV)".into(),
        at: "corpus/known-failing/libvirtd-9.0.txt:7".into(),
        signature: Some("closed; signal SIGSEGV".into()),
        differs: Some("expected closed; signal SIGSEGV, observed code 1: no process died".into()),
    });
    differs.facts = vec![Fact::Code {
        code: 1,
        message: "internal error".into(),
    }];
    let mut fail = case_report(FAIL_ID, Verdict::Fail, 100, 20);
    fail.wire = vec![wire(
        vec![Chunk {
            dir: Dir::C2s,
            at: Duration::ZERO,
            bytes: open_call(),
        }],
        (0, 0),
    )];
    let mut unsupported = case_report("streams/upload", Verdict::Unsupported, 750, 1);
    unsupported.expected = String::new();
    let mut needs = case_report("dispatch/open", Verdict::Pass, 0, 10);
    needs.case.needs = vec![Cow::Borrowed("framing/one")];
    RunReport {
        target: "test+tcp://127.0.0.1:16509/default".into(),
        started: std::time::SystemTime::UNIX_EPOCH,
        cases: vec![
            case_report("framing/one", Verdict::Pass, 0, 100),
            case_report("framing/two", Verdict::Pass, 0, 100),
            case_report("framing/three", Verdict::Pass, 100, 100),
            needs,
            fail,
            known,
            differs,
            unsupported,
        ],
        duration: Duration::from_millis(800),
        strict: false,
        stopped: None,
    }
}

fn terminal_text(r: &RunReport, verbose: bool) -> String {
    let mut opts = terminal::Options::default();
    if verbose {
        // (Set this way so that the default view's test also builds without the field.)
        opts.verbose = true;
    }
    let mut out = Vec::new();
    terminal::print(r, &decoder(), &mut out, &opts).unwrap();
    String::from_utf8(out).unwrap()
}

/// Default view: a family whose cases all pass is one line; a mixed family lists only what did not
/// pass; every non-pass case is in full.
#[test]
fn terminal_collapses_families_that_all_pass() {
    let t = terminal_text(&run(), false);
    assert!(
        t.lines()
            .any(|l| l.starts_with("framing") && l.contains("3 cases") && l.ends_with("all pass")),
        "{t}"
    );
    assert!(
        !t.contains("framing/one"),
        "passing cases are not listed:\n{t}"
    );
    assert!(!t.contains("  dispatch/open "), "{t}");
    assert!(t.contains("dispatch (2): 1 pass"), "{t}");
    assert!(t.contains(&format!("  {FAIL_ID}")), "{t}");
    assert!(t.contains(&format!("FAIL {FAIL_ID}")), "its block:\n{t}");
    assert!(
        t.contains(&format!("FAILS DIFFERENTLY {DIFFERS_ID}")),
        "{t}"
    );
}

#[test]
fn terminal_verbose_lists_every_case() {
    let t = terminal_text(&run(), true);
    for id in [
        "framing/one",
        "framing/two",
        "framing/three",
        "dispatch/open",
    ] {
        assert!(t.contains(&format!("  {id} ")), "{id} in\n{t}");
    }
    assert!(t.contains("framing (3)\n"), "{t}");
}

/// `<testsuite time>` is the family's wall time (cases overlap under --jobs), never more than the
/// run's `<testsuites time>`.
#[test]
fn junit_suite_time_is_the_familys_wall_time() {
    let r = run();
    let rep = junit::to_report(&r, &decoder(), &junit::Options::default()).unwrap();
    let framing = rep
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "framing")
        .unwrap();
    // framing/one and /two run 0..100 ms side by side, /three 100..200 ms: 200 ms of wall time,
    // not the 300 ms of their sum.
    assert_eq!(framing.time, Some(Duration::from_millis(200)));
    for s in &rep.test_suites {
        assert!(s.time.unwrap() <= rep.time.unwrap(), "{:?}", s.name);
    }
}

/// A log cut at its cap says so, with the size and the flag, not "then the connection ended".
#[test]
fn a_wire_log_cut_at_its_cap_says_so() {
    let r = run();
    let known = r.cases.iter().find(|c| c.case.id == KNOWN_ID).unwrap();
    let lines = wire_log::summarise(&decoder(), KNOWN_ID, 1, &known.wire[0]).unwrap();
    let text = lines.join("\n");
    assert!(
        text.contains(
            "c2s the wire log was cut at 256 KiB this way: 4000000 more bytes were not kept"
        ) && text.contains("--wire-log-max"),
        "{text}"
    );
    assert!(!text.contains("then the connection ended"), "{text}");
    // Cut at a frame boundary: said at the end.
    let w = wire(
        vec![Chunk {
            dir: Dir::C2s,
            at: Duration::ZERO,
            bytes: open_call(),
        }],
        (1000, 0),
    );
    let lines = wire_log::summarise(&decoder(), "x/y", 1, &w).unwrap();
    assert!(
        lines.last().unwrap().contains("cut at 256 KiB"),
        "{lines:?}"
    );
}

fn virtwire() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtwire"));
    c.env_remove("CI").env("NO_COLOR", "1");
    c
}

/// `virtwire check … 2>&1 | head`: standard output and error closed. It neither panics (exit 101)
/// nor says "Broken pipe"; the exit status is the run's.
#[test]
fn a_closed_stdout_and_stderr_are_not_errors() {
    let server = FakeServer::start(|c| c.close());
    let uri = format!("test+tcp://{}/default", server.addr());
    // A pipe whose read end is closed before virtwire starts: every write to it fails with EPIPE.
    let pick = |closed: bool| {
        if closed {
            closed_pipe()
        } else {
            Stdio::piped()
        }
    };
    for (close_out, close_err) in [(true, false), (false, true), (true, true)] {
        let mut child = virtwire()
            .args([
                "check",
                &uri,
                "--run",
                "dispatch/open",
                "--connect-timeout",
                "5",
            ])
            .stdin(Stdio::null())
            .stdout(pick(close_out))
            .stderr(pick(close_err))
            .spawn()
            .unwrap();
        let _out = child.stdout.take();
        let kept_err = child.stderr.take();
        let status = wait_with_deadline(&mut child, Duration::from_secs(60));
        let said = kept_err.map_or_else(String::new, |mut e| {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            s
        });
        assert_eq!(
            status.code(),
            Some(1),
            "stdout closed {close_out}, stderr closed {close_err}: the run's status (dispatch/open \
             fails against a server that closes), not a panic (101) or a harness error (3); \
             stderr: {said}"
        );
        assert!(
            !said.contains("Broken pipe") && !said.contains("panicked"),
            "{said}"
        );
    }
}

/// The write end of a pipe whose read end is already closed.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("virtwire did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--sasl-password-file` replaces the password in argv; a file that cannot be read is a clear
/// harness error naming it.
#[test]
fn sasl_password_file_is_read_and_a_missing_one_named() {
    let o = virtwire()
        .args([
            "check",
            "test+tcp://127.0.0.1:9/default",
            "--sasl-uri",
            "test+tcp://127.0.0.1:9/default",
            "--sasl-user",
            "u",
            "--sasl-password-file",
            "/nonexistent/virtwire-pw",
            "--run",
            "dispatch/open",
        ])
        .env_remove("VIRTWIRE_SASL_PASSWORD")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--sasl-password-file /nonexistent/virtwire-pw"),
        "{err}"
    );
}

fn out_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The HTML itself (no browser): self-contained, escaped, every case anchored.
#[test]
fn html_is_self_contained_and_escaped() {
    let dir = out_dir("html-static");
    html::write_run(&run(), &decoder(), &dir, &html::Options::default()).unwrap();
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for bad in ["<script src", "<link", "http://", "@import", "url("] {
        assert!(!page.contains(bad), "{bad:?}: nothing is fetched");
    }
    assert!(!page.contains("<b>markup</b>"), "server text is escaped");
    assert!(page.contains("&lt;b&gt;markup&lt;/b&gt; &amp; more"));
    for c in &run().cases {
        assert!(
            page.contains(&format!("<section class=\"case\" id=\"{}\">", c.case.id)),
            "anchor for {}",
            c.case.id
        );
    }
}

/// Chromium, headless: `Some(path)`, or `None` after a skip (a failure under
/// VIRTWIRE_REQUIRE_ALL=1).
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && o.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        }
    }
    support::skip("no chromium (Debian package `chromium`; scripts/setup.sh installs it)");
    None
}

/// Run headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`), within 90 s.
fn browse(bin: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    let o = Command::new("timeout")
        .arg("90")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `<tr>` of the grid for `id` in a dumped DOM.
fn grid_row<'a>(dom: &'a str, id: &str) -> &'a str {
    let cell = format!("<td><a href=\"#{id}\">{id}</a></td>");
    let at = dom.find(&cell).unwrap_or_else(|| panic!("no row for {id}"));
    let start = dom[..at].rfind("<tr").unwrap();
    &dom[start..at]
}

#[test]
fn html_report_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = out_dir("html-chromium");
    let profile = dir.join("profile");
    let report_dir = dir.join("report");
    html::write_run(&run(), &decoder(), &report_dir, &html::Options::default()).unwrap();
    let index = report_dir.join("index.html");
    let url = format!("file://{}", index.display());

    // Counts, after the page's script ran.
    let dom = browse(&bin, &profile, &url, &["--dump-dom"]);
    assert!(
        dom.contains("<tr data-standing=\"known-failure\"><td class=\"known-failure\">known failure</td><td class=\"num\">1</td></tr>"),
        "the counts table"
    );
    assert!(dom.contains(
        "<tr data-standing=\"pass\"><td class=\"pass\">pass</td><td class=\"num\">4</td></tr>"
    ));
    assert!(
        dom.contains("<span id=\"shown\">8</span> of 8 cases shown"),
        "every row shown"
    );
    // Failures first: what needs attention, before the grid.
    let attention = dom.find("id=\"attention\"").unwrap();
    assert!(attention < dom.find("id=\"grid\"").unwrap());
    let list = &dom[attention..dom[attention..].find("</ul>").unwrap() + attention];
    assert!(list.contains(FAIL_ID) && list.contains(DIFFERS_ID) && !list.contains(KNOWN_ID));

    // A known failing case's details: the entry that applied, its signature, the cut wire log.
    let section = {
        let s = dom
            .find(&format!("<section class=\"case\" id=\"{KNOWN_ID}\">"))
            .unwrap();
        &dom[s..s + dom[s..].find("</section>").unwrap()]
    };
    for want in [
        "corpus/known-failing/libvirtd-9.0.txt:44",
        "{closed; daemon-log ~ /Failed to serialize remote error/}",
        "Failed to serialize remote error",
        "the wire log was cut at 256 KiB",
        "CONNECT_OPEN",
        "&lt;b&gt;markup&lt;/b&gt;",
        "virtwire check --run 'limits/remote/connect-open/name/max'",
    ] {
        assert!(
            section.contains(want),
            "{want:?} in the known case's section:\n{section}"
        );
    }
    // A case that fails differently: what the entry expects against what was observed.
    let s = dom
        .find(&format!("<section class=\"case\" id=\"{DIFFERS_ID}\">"))
        .unwrap();
    let section = &dom[s..s + dom[s..].find("</section>").unwrap()];
    assert!(
        section.contains("<code>{closed; signal SIGSEGV}</code>"),
        "{section}"
    );
    assert!(
        section.contains("Fails otherwise") && section.contains("code 1"),
        "{section}"
    );

    // The filters: by verdict, by family, by text (from the query string, as a link sets them).
    let dom = browse(
        &bin,
        &profile,
        &format!("{url}?verdict=known-failure"),
        &["--dump-dom"],
    );
    assert!(
        dom.contains("<span id=\"shown\">1</span>"),
        "one known failure"
    );
    assert!(!grid_row(&dom, KNOWN_ID).contains("hidden"));
    assert!(grid_row(&dom, "framing/one").contains("hidden"));
    let dom = browse(
        &bin,
        &profile,
        &format!("{url}?family=framing"),
        &["--dump-dom"],
    );
    assert!(dom.contains("<span id=\"shown\">3</span>"));
    let dom = browse(
        &bin,
        &profile,
        &format!("{url}?q=unknown-proc"),
        &["--dump-dom"],
    );
    assert!(dom.contains("<span id=\"shown\">1</span>"));
    assert!(!grid_row(&dom, FAIL_ID).contains("hidden"));

    // Screenshots: the index, and one case alone.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, u) in [
        ("index.png", url.clone()),
        ("known-failing-case.png", format!("{url}?case={KNOWN_ID}")),
    ] {
        let png = shots.join(name);
        let _ = std::fs::remove_file(&png);
        browse(
            &bin,
            &profile,
            &u,
            &[&format!("--screenshot={}", png.display())],
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{name}: {size} bytes (a blank page is ~6 KB)"
        );
    }
}

/// A run stopped by --max-fail: the cases it did not start are counted, not listed one by one, and
/// the closing lines say why it stopped.
#[test]
fn a_run_stopped_early_counts_what_it_did_not_start() {
    let mut r = run();
    r.stopped = Some("--max-fail 1: the run stopped after 1 unexpected failure".into());
    for id in ["streams/upload", "framing/three"] {
        let c = r.cases.iter_mut().find(|c| c.case.id == id).unwrap();
        c.verdict = Verdict::Omitted;
        c.actual = format!("not run: {}", r.stopped.as_deref().unwrap());
        c.expected = String::new();
    }
    let t = terminal_text(&r, false);
    assert!(!t.contains("  streams/upload"), "{t}");
    assert!(
        t.contains("streams (1): 1 not run (the run stopped early) (not listed"),
        "{t}"
    );
    assert!(
        t.contains("framing (3): 2 pass, 1 not run (the run stopped early) (not listed"),
        "{t}"
    );
    assert!(
        t.contains("Stopped early (--max-fail 1: the run stopped after 1 unexpected failure): 2 cases not run, counted as omitted"),
        "{t}"
    );
    assert!(t.contains("exit 1: "), "{t}");
}

/// `--wire-log-max` sets the cap every wire log keeps from then on (`wire::peer::set_log_max`).
#[test]
fn the_wire_log_cap_is_a_setting() {
    use virtwire_conformance::wire::peer::{LOG_KEEP, WireLog, log_max, set_log_max};
    assert_eq!(log_max(), LOG_KEEP);
    set_log_max(1024);
    let log = WireLog::default();
    log.push_for_test(Dir::C2s, &[7u8; 3000]);
    set_log_max(LOG_KEEP);
    assert_eq!(log.omitted(), (3000 - 1024, 0));
    assert_eq!(
        log.chunks().iter().map(|c| c.bytes.len()).sum::<usize>(),
        1024
    );
}

/// `virtwire report merge A.json B.json --html DIR`: each JSON report a column of one grid, a case's
/// traffic as the file recorded it.
#[test]
fn report_merge_puts_json_reports_side_by_side() {
    use virtwire_conformance::report::json;
    let dir = out_dir("html-merge");
    let a = dir.join("libvirtd-9.0.json");
    let b = dir.join("other.json");
    json::write(&run(), &decoder(), &a, &json::Options::default()).unwrap();
    let mut other = run();
    other.cases.retain(|c| c.case.id != "streams/upload");
    other.cases[0].verdict = Verdict::Fail;
    json::write(&other, &decoder(), &b, &json::Options::default()).unwrap();
    let out = dir.join("merged");
    let o = virtwire()
        .args(["report", "merge"])
        .arg(&a)
        .arg(&b)
        .arg("--html")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        page.contains("<th>libvirtd-9.0.json</th><th>other.json</th>"),
        "two columns"
    );
    let row = grid_row(&page, "framing/one");
    assert!(row.contains("data-st=\"pass failure\""), "{row}");
    assert!(page.contains("<td class=\"failure\"><a href=\"#framing/one\">FAIL</a></td>"));
    assert!(grid_row(&page, "streams/upload").contains("data-st=\"unsupported\""));
    assert!(
        page.contains("<td class=\"absent\">—</td>"),
        "a case one file lacks"
    );
    // The failure's traffic, from the file's records.
    assert!(
        page.contains("+0.000s c2s CALL remote CONNECT_OPEN serial 1"),
        "recorded wire"
    );
    assert!(page.contains("as the JSON report recorded them"));
    assert!(page.contains("{closed; daemon-log ~ /Failed to serialize remote error/}"));
    // Not a virtwire-check/1 document: a clear error, exit 3.
    std::fs::write(dir.join("bad.json"), "{\"schema\": \"other\"}").unwrap();
    let o = virtwire()
        .args(["report", "merge"])
        .arg(dir.join("bad.json"))
        .arg("--html")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not virtwire-check/1"));
}

/// Elsewhere (a `println!` of another subcommand) a closed stdout is caught quietly: exit 141, what a
/// shell reports for a filter killed by SIGPIPE, not a panic's 101 and its backtrace.
#[test]
fn a_print_to_a_closed_pipe_elsewhere_exits_141_quietly() {
    let mut child = virtwire()
        .args(["fetch-protocol", "--list"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    let mut said = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut said);
    assert_eq!(status.code(), Some(141), "{said}");
    assert!(said.is_empty(), "nothing said: {said}");
}
