//! Replays: against scripted in-memory servers (serial rewriting, out-of-order replies, events and
//! keepalives at any time, echoes, closes, and the field path of a mismatch), and every committed
//! trace against a real libvirtd started here (skipped with a reason when libvirtd is not
//! installed, a failure when `VIRTWIRE_REQUIRE_ALL=1`).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use virtwire_conformance::catalogue;
use virtwire_conformance::replay;
use virtwire_conformance::runner::{self, CaseReport, Config, Connector, Verdict};
use virtwire_conformance::trace;
use virtwire_conformance::wire::Judge;
use virtwire_conformance::wire::json::hex;
use virtwire_conformance::wire::peer::Transport;
use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{
    Compat, FrameBuilder, FrameDecoder, Header, KeepaliveProc, Limits, MessageStatus, MessageType,
    OwnedFrame, Writer,
};

use support::skip;

fn schema() -> Option<&'static Schema> {
    static S: OnceLock<Option<Schema>> = OnceLock::new();
    S.get_or_init(|| support::schema_or_skip("replaying the traces' bodies"))
        .as_ref()
}

fn judge() -> Option<Arc<Judge>> {
    let s = schema()?.clone();
    Some(Arc::new(Judge::new(
        Limits::default(),
        Compat::Libvirt,
        Some(s),
    )))
}

// ---- a scripted server ------------------------------------------------------------------------

/// What the server writes for one frame it reads (with everything it read so far).
type Script = dyn Fn(&OwnedFrame, &mut Vec<OwnedFrame>) -> Reply + Send + Sync;

enum Reply {
    Send(Vec<u8>),
    Close(Vec<u8>),
}

/// Each connection gets a server thread running the script; what it reads is kept in `seen`.
struct Fake {
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<OwnedFrame>>>,
}

impl Connector for Fake {
    fn connect(&self, _: Duration) -> Result<Box<dyn Transport>, String> {
        let (ours, mut theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
        let (script, seen) = (self.script.clone(), self.seen.clone());
        std::thread::spawn(move || {
            let _ = theirs.set_read_timeout(Some(Duration::from_secs(10)));
            let mut dec = FrameDecoder::new(&Limits::default(), Compat::Libvirt);
            let mut buf = [0u8; 4096];
            let mut mine = Vec::new();
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => {
                        let reply = script(&f, &mut mine);
                        mine.push(f.clone());
                        seen.lock().unwrap().push(f);
                        match reply {
                            Reply::Send(b) => {
                                if theirs.write_all(&b).is_err() {
                                    return;
                                }
                            }
                            Reply::Close(b) => {
                                let _ = theirs.write_all(&b);
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
                match theirs.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => dec.feed(&buf[..n]),
                }
            }
        });
        Ok(Box::new(ours))
    }
    fn describe(&self) -> String {
        "a scripted server".into()
    }
    fn open_name(&self) -> Option<String> {
        Some("test:///default".into())
    }
}

fn call(procedure: i32, serial: u32, args: &[u8]) -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, procedure, serial)
        .payload(args.to_vec())
        .build_unchecked()
}

fn reply(to: &OwnedFrame, ret: &[u8]) -> Vec<u8> {
    FrameBuilder::new(to.header().reply_to(MessageStatus::Ok))
        .payload(ret.to_vec())
        .build_unchecked()
}

fn xdr_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Writer::new(&mut out)
        .string(s.as_bytes(), u32::MAX)
        .unwrap();
    out
}

/// `remote_nonnull_domain`.
fn domain(name: &str, uuid: [u8; 16], id: i32) -> Vec<u8> {
    let mut out = xdr_string(name);
    let mut w = Writer::new(&mut out);
    w.opaque_fixed(&uuid);
    w.i32(id);
    out
}

/// DOMAIN_EVENT_CALLBACK_LIFECYCLE (318) with `event`.
fn lifecycle_event(event: i32) -> Vec<u8> {
    let mut body = Vec::new();
    Writer::new(&mut body).i32(0);
    body.extend(domain("test", [0x66; 16], 1));
    let mut w = Writer::new(&mut body);
    w.i32(event);
    w.i32(0);
    FrameBuilder::new(Header::new(
        REMOTE_PROGRAM,
        1,
        318,
        MessageType::Message,
        1,
        MessageStatus::Ok,
    ))
    .payload(body)
    .build_unchecked()
}

/// Frame bytes as a trace writes them.
fn frame_line(bytes: &[u8]) -> String {
    format!("  frame {}\n", hex(bytes))
}

/// Replay `text` against a server running `script`; the report and the frames the server read.
fn replay_against(
    text: &str,
    script: impl Fn(&OwnedFrame, &mut Vec<OwnedFrame>) -> Reply + Send + Sync + 'static,
) -> Option<(CaseReport, Vec<OwnedFrame>)> {
    let Some(judge) = judge() else {
        skip("no libvirt .x files (scripts/setup.sh --xdr-only)");
        return None;
    };
    let t = trace::parse(text, "scripted.trace").unwrap_or_else(|e| panic!("{e}"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        script: Arc::new(script),
        seen: seen.clone(),
    };
    let cfg = Config {
        read_timeout: Duration::from_secs(3),
        case_timeout: Duration::from_secs(20),
        ..Config::default()
    };
    let case = replay::case(Arc::new(t));
    let mut report = runner::run(&[case], &cfg, Box::new(fake), judge, None, &mut ());
    let c = report.cases.remove(0);
    eprintln!(
        "{} | {} | {} | {:?}",
        c.verdict, c.expected, c.actual, c.notes
    );
    // The client's last frames (a PONG) may still be on their way to the fake when the case ends:
    // wait until what the fake has seen stops growing.
    let mut last = usize::MAX;
    for _ in 0..40 {
        let n = seen.lock().unwrap().len();
        if n == last {
            break;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(50));
    }
    let frames = seen.lock().unwrap().clone();
    Some((c, frames))
}

fn get_type_trace(rules: &str) -> String {
    format!(
        "virtwire-trace 1\n> CALL remote.CONNECT_GET_TYPE serial=0\n{}\n\
         < REPLY remote.CONNECT_GET_TYPE serial=0 status=OK\n{rules}  body {{\"type\":\"TEST\"}}\n",
        frame_line(&call(3, 0, &[]))
    )
}

#[test]
fn a_mismatch_names_the_field_path() {
    let answer_qemu =
        |f: &OwnedFrame, _: &mut Vec<OwnedFrame>| Reply::Send(reply(f, &xdr_string("QEMU")));
    let Some((c, seen)) = replay_against(&get_type_trace(""), answer_qemu) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(
        c.actual
            .starts_with("body.type: expected \"TEST\", got \"QEMU\""),
        "{}",
        c.actual
    );
    assert!(
        c.expected
            .starts_with("scripted.trace:5: < REPLY remote.CONNECT_GET_TYPE serial=1"),
        "{}",
        c.expected
    );
    assert!(
        c.notes.iter().any(|n| n.contains("body.type")),
        "{:?}",
        c.notes
    );
    // The recorded serial 0 was sent as the connection's first serial, 1.
    assert_eq!(seen[0].header().serial, 1);

    // A rule lets it pass.
    let Some((c, _)) = replay_against(
        &get_type_trace("  rule body.type regex [A-Z]+\n"),
        answer_qemu,
    ) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.actual);
}

#[test]
fn replies_in_any_order_with_events_and_keepalives_between() {
    let text = format!(
        "virtwire-trace 1
> CALL remote.CONNECT_GET_TYPE serial=5
{}> CALL remote.CONNECT_GET_HOSTNAME serial=6
{}< REPLY remote.CONNECT_GET_TYPE serial=5 status=OK
  body {{\"type\":\"TEST\"}}
< REPLY remote.CONNECT_GET_HOSTNAME serial=6 status=OK
  rule body.hostname any
  body {{\"hostname\":\"vm\"}}
< MESSAGE remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE serial=1 status=OK async
  body {{\"callbackID\":0,\"msg\":{{\"dom\":{{\"name\":\"test\",\"uuid\":\"{}\",\"id\":1}},\"event\":3,\"detail\":0}}}}
",
        frame_line(&call(3, 5, &[])),
        frame_line(&call(59, 6, &[])),
        hex(&[0x66; 16]),
    );
    let script = |f: &OwnedFrame, before: &mut Vec<OwnedFrame>| {
        if f.header().procedure != 59 {
            return Reply::Send(Vec::new());
        }
        // Both calls are in: a PING, an event nobody expects, the replies backwards, then the
        // event the trace waits for.
        let first = &before[0];
        let mut out = KeepaliveProc::Ping.frame();
        out.extend(lifecycle_event(4));
        out.extend(reply(f, &xdr_string("builder")));
        out.extend(reply(first, &xdr_string("TEST")));
        out.extend(lifecycle_event(3));
        Reply::Send(out)
    };
    let Some((c, seen)) = replay_against(&text, script) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{} / {}", c.expected, c.actual);
    let calls: Vec<u32> = seen
        .iter()
        .filter(|f| f.header().msg_type == MessageType::Call)
        .map(|f| f.header().serial)
        .collect();
    assert_eq!(calls, [1, 2], "recorded serials 5, 6 renumbered in order");
    assert!(
        seen.iter()
            .any(|f| f.header().prog == KEEPALIVE_PROGRAM && f.header().procedure == 2),
        "the server's PING was answered"
    );
    assert!(
        c.notes.iter().any(|n| n.contains("skipped")),
        "{:?}",
        c.notes
    );
}

#[test]
fn an_async_message_that_never_comes_fails() {
    let text = format!(
        "{}< MESSAGE remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE serial=1 status=OK async\n",
        get_type_trace("")
    );
    let Some((c, _)) = replay_against(&text, |f, _| Reply::Send(reply(f, &xdr_string("TEST"))))
    else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(c.actual.contains("never came"), "{}", c.actual);
}

/// A value the server chose (a new domain's UUID) and the client sends back is rewritten.
#[test]
fn echoes_of_server_chosen_values_are_rewritten() {
    let recorded = [0x01; 16];
    let now = [0x02; 16];
    let text = format!(
        "virtwire-trace 1
> CALL remote.DOMAIN_DEFINE_XML serial=0
{}< REPLY remote.DOMAIN_DEFINE_XML serial=0 status=OK
  rule body.dom.uuid regex [0-9a-f]{{32}}
  body {{\"dom\":{{\"name\":\"new\",\"uuid\":\"{}\",\"id\":-1}}}}
> CALL remote.DOMAIN_CREATE serial=1
{}< REPLY remote.DOMAIN_CREATE serial=1 status=OK
  body null
> CALL remote.DOMAIN_LOOKUP_BY_NAME serial=2
{}< REPLY remote.DOMAIN_LOOKUP_BY_NAME serial=2 status=OK
  body {{\"dom\":{{\"name\":\"new\",\"uuid\":\"{}\",\"id\":3}}}}
",
        frame_line(&call(11, 0, &xdr_string("<domain/>"))),
        hex(&recorded),
        frame_line(&call(9, 1, &domain("new", recorded, -1))),
        frame_line(&call(23, 2, &xdr_string("new"))),
        hex(&recorded),
    );
    let script = move |f: &OwnedFrame, _: &mut Vec<OwnedFrame>| match f.header().procedure {
        11 => Reply::Send(reply(f, &domain("new", now, -1))),
        9 if f.payload() == domain("new", now, -1).as_slice() => Reply::Send(reply(f, &[])),
        9 => Reply::Send(
            FrameBuilder::new(f.header().reply_to(MessageStatus::Error)).build_unchecked(),
        ),
        _ => Reply::Send(reply(f, &domain("new", now, 3))),
    };
    let Some((c, _)) = replay_against(&text, script) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{} / {}", c.expected, c.actual);
    assert!(c.actual.contains("echoed"), "{}", c.actual);
}

#[test]
fn closes_and_silence() {
    let close = format!(
        "virtwire-trace 1\n> CALL remote.CONNECT_CLOSE serial=0\n{}< REPLY remote.CONNECT_CLOSE serial=0 status=OK\nexpect-close\n",
        frame_line(&call(2, 0, &[]))
    );
    let Some((c, _)) = replay_against(&close, |f, _| Reply::Close(reply(f, &[]))) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.actual);

    // The server closes where the trace only allows it: the rest is not run, and that passes.
    let may = format!(
        "virtwire-trace 1\nmay-close\n> CALL remote.CONNECT_CLOSE serial=0\n{}< REPLY remote.CONNECT_CLOSE serial=0 status=OK\n",
        frame_line(&call(2, 0, &[]))
    );
    let Some((c, _)) = replay_against(&may, |_, _| Reply::Close(Vec::new())) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.actual);
    assert!(c.actual.contains("may-close"), "{}", c.actual);
    let Some((c, _)) = replay_against(&may.replace("may-close\n", ""), |_, _| {
        Reply::Close(Vec::new())
    }) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Fail);

    // Silence: a REPLY sent by a client gets no answer; an answer fails the step.
    let silent = format!(
        "virtwire-trace 1\n> REPLY remote.CONNECT_CLOSE serial=9\n{}silence 300 ms\n",
        frame_line(
            &FrameBuilder::new(Header::call(REMOTE_PROGRAM, 2, 9).reply_to(MessageStatus::Ok))
                .build_unchecked()
        )
    );
    let Some((c, _)) = replay_against(&silent, |_, _| Reply::Send(Vec::new())) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.actual);
    let Some((c, _)) = replay_against(&silent, |f, _| Reply::Send(reply(f, &[]))) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(
        c.expected.contains("nothing from the server for 300 ms"),
        "{}",
        c.expected
    );
}

#[test]
fn a_header_line_that_lies_about_its_frame_is_a_harness_error() {
    let text = format!(
        "virtwire-trace 1\n> CALL remote.CONNECT_OPEN serial=0\n{}",
        frame_line(&call(3, 0, &[]))
    );
    let Some((c, seen)) = replay_against(&text, |_, _| Reply::Send(Vec::new())) else {
        return;
    };
    assert_eq!(c.verdict, Verdict::Error);
    assert!(c.actual.contains("scripted.trace:2"), "{}", c.actual);
    assert!(seen.is_empty(), "nothing sent");
}

// ---- a real libvirtd ---------------------------------------------------------------------------

/// The example in docs/traces.md.
fn docs_example() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/traces.md")).unwrap();
    let start = doc.find("```text\nvirtwire-trace 1").expect("an example") + "```text\n".len();
    let len = doc[start..].find("```").expect("its end");
    doc[start..start + len].to_string()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Stops the daemon started in `dir` (by the PID it wrote), whatever happens to the test.
struct Daemon(PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/libvirtd.sh"))
            .arg("stop")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Tcp(String);

impl Connector for Tcp {
    fn connect(&self, t: Duration) -> Result<Box<dyn Transport>, String> {
        let a: std::net::SocketAddr = self.0.parse().map_err(|e| format!("{e}"))?;
        std::net::TcpStream::connect_timeout(&a, t)
            .map(|s| Box::new(s) as Box<dyn Transport>)
            .map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        format!("test+tcp://{}/default", self.0)
    }
    fn open_name(&self) -> Option<String> {
        Some("test:///default".into())
    }
}

#[test]
fn committed_traces_replay_against_a_fresh_libvirtd() {
    let installed = Command::new("sh")
        .args(["-c", "command -v libvirtd && command -v virsh"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        skip("libvirtd / virsh not installed (scripts/setup.sh installs them)");
        return;
    }
    let Some(judge) = judge() else {
        skip("no libvirt .x files (scripts/setup.sh --xdr-only)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("virtwire-trace-replay-{}", std::process::id()));
    let out = Command::new(repo().join("scripts/libvirtd.sh"))
        .arg("start")
        .arg(&dir)
        .output()
        .expect("scripts/libvirtd.sh runs");
    let _daemon = Daemon(dir.clone());
    assert!(
        out.status.success(),
        "libvirtd did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut cases = catalogue::dispatch::base();
    cases.extend(catalogue::traces::traces());
    let example = trace::parse(&docs_example(), "docs/traces.md").unwrap_or_else(|e| panic!("{e}"));
    cases.push(replay::case(Arc::new(example)));
    let cfg = Config {
        read_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let report = runner::run(
        &cases,
        &cfg,
        Box::new(Tcp(format!("127.0.0.1:{port}"))),
        judge,
        None,
        &mut (),
    );
    let mut failed = Vec::new();
    for c in &report.cases {
        println!("{:<11} {:<32} {}", c.verdict.name(), c.case.id, c.actual);
        if c.verdict != Verdict::Pass {
            failed.push(format!("{}: {} | {}", c.case.id, c.expected, c.actual));
        }
    }
    assert_eq!(report.cases.len(), 2 + catalogue::traces::COMMITTED.len());
    assert!(failed.is_empty(), "{failed:#?}");
}
