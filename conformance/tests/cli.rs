//! The `virtwire decode` command: exit statuses, error messages with file / connection / offset, JSON
//! shape, and no panic on bad input.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virtwire_conformance::synth::{self, Conversation};
use virtwire_protocol::{
    ErrorBody, FrameBuilder, Header, Limits, MessageStatus, MessageType, header::REMOTE_PROGRAM,
};

fn virtwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtwire"))
        .args(args)
        .output()
        .expect("virtwire runs")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("virtwire-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn trace(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/traces")
        .join(name)
        .display()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn no_panic(o: &Output) {
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

fn call(serial: u32, procedure: i32, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new(Header::call(REMOTE_PROGRAM, procedure, serial))
        .payload(payload.to_vec())
        .encode(&Limits::default())
        .unwrap()
}

fn error_reply(serial: u32, procedure: i32, msg: &str) -> Vec<u8> {
    let body = ErrorBody::new(39, 7, msg)
        .to_bytes(&Limits::default())
        .unwrap();
    FrameBuilder::new(
        Header::call(REMOTE_PROGRAM, procedure, serial).reply_to(MessageStatus::Error),
    )
    .payload(body)
    .encode(&Limits::default())
    .unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// True when this run found no .x files (the decoder then warns and prints procedure bodies as hex).
fn without_schema(o: &Output) -> bool {
    stderr(o).contains("procedure bodies are shown as hex")
}

#[test]
fn real_trace_json_has_the_fields() {
    let o = virtwire(&["decode", "--format", "json", &trace("lifecycle.pcapng")]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    let msgs: Vec<_> = lines.iter().filter(|l| l["record"] == "message").collect();
    assert!(msgs.len() > 100);
    for m in &msgs {
        for k in [
            "conn",
            "dir",
            "offset",
            "len",
            "prog",
            "prog_name",
            "vers",
            "proc",
            "proc_name",
            "type",
            "type_name",
            "serial",
            "status",
            "status_name",
            "nfds",
            "body",
            "error",
        ] {
            assert!(m.get(k).is_some(), "{k} missing in {m}");
        }
        assert!(m["dir"] == "c2s" || m["dir"] == "s2c");
        assert!(m["error"].is_null());
        assert!(m["nfds"].is_null());
    }
    assert_eq!(lines.last().unwrap()["record"], "summary");
    if without_schema(&o) {
        support::skip("body checks of `virtwire decode`: it found no schema");
        return;
    }
    let open = msgs
        .iter()
        .find(|m| m["proc_name"] == "CONNECT_OPEN" && m["type_name"] == "CALL")
        .expect("CONNECT_OPEN");
    assert_eq!(open["body_type"], "remote_connect_open_args");
    assert_eq!(open["body"]["name"], "test:///default");
    assert_eq!(open["body"]["flags"], 0);
    let auth = msgs
        .iter()
        .find(|m| m["proc_name"] == "AUTH_LIST" && m["type_name"] == "REPLY")
        .unwrap();
    assert_eq!(
        auth["body"]["types"],
        serde_json::json!(["REMOTE_AUTH_NONE"])
    );
    let lookup = msgs
        .iter()
        .find(|m| m["proc_name"] == "DOMAIN_LOOKUP_BY_NAME" && m["type_name"] == "REPLY")
        .unwrap();
    let uuid = lookup["body"]["dom"]["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 32, "opaque as hex");
}

#[test]
fn errors_trace_exits_1_and_says_where() {
    let o = virtwire(&["decode", "--format", "json", &trace("errors.pcapng")]);
    no_panic(&o);
    let lines = json_lines(&o);
    let msgs: Vec<_> = lines.iter().filter(|l| l["record"] == "message").collect();
    let unknown = msgs
        .iter()
        .find(|m| m["body"]["message"] == "unknown procedure: 9999")
        .expect("the unknown-procedure error");
    assert_eq!(unknown["status_name"], "ERROR");
    assert_eq!(unknown["body"]["code"], 39);
    assert!(unknown["body"]["dom"].is_null());
    if without_schema(&o) {
        assert_eq!(o.status.code(), Some(0));
        support::skip("error checks of procedure bodies: `virtwire decode` found no schema");
        return;
    }
    // The hand-made calls libvirtd rejects do not decode here either; decoding goes on after them.
    assert_eq!(o.status.code(), Some(1));
    let failed: Vec<_> = msgs.iter().filter(|m| !m["error"].is_null()).collect();
    assert_eq!(failed.len(), 4);
    let short = failed
        .iter()
        .find(|m| m["proc"] == 344)
        .expect("the 3-byte GET_ALL_DOMAIN_STATS body");
    assert_eq!(short["error"]["category"], "malformed");
    assert_eq!(short["error"]["path"], "doms");
    assert_eq!(short["error"]["offset"], 28);
    assert_eq!(short["body"]["hex"], "000000");
    let unknown_call = failed.iter().find(|m| m["proc"] == 9999).unwrap();
    assert_eq!(unknown_call["error"]["category"], "unknown");
    let summary = lines.last().unwrap();
    assert_eq!(summary["failed"], 4);
}

#[test]
fn text_output_names_things() {
    let o = virtwire(&["decode", &trace("screenshot-stream.pcapng")]);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&o);
    assert!(s.contains("Program: remote (0x20008086)"), "{s}");
    assert!(s.contains("Type: STREAM (3)"));
    assert!(s.contains("Stream data: 33443 bytes"));
    assert!(s.contains("Stream data: 0 bytes (end of file from the server)"));
    let o = virtwire(&["decode", &trace("keepalive.pcapng")]);
    assert!(stdout(&o).contains("Procedure: PING (1)"));
}

#[test]
fn missing_file_and_directory_exit_2_and_go_on() {
    let d = tmpdir("missing");
    let missing = d.join("nope.pcap").display().to_string();
    let o = virtwire(&["decode", &missing, &trace("keepalive.pcapng")]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&missing), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("keepalive.pcapng: "),
        "the next file is still decoded"
    );
    let o = virtwire(&["decode", &d.display().to_string()]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn not_a_capture_exits_2() {
    let d = tmpdir("notcap");
    let f = write(&d, "text.pcap", b"this is not a capture file\n");
    let o = virtwire(&["decode", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a pcap or pcapng file"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&f));
    let empty = write(&d, "empty.pcap", b"");
    assert_eq!(virtwire(&["decode", &empty]).status.code(), Some(2));
}

#[test]
fn truncated_capture_prints_what_was_read_then_exits_2() {
    let bytes = std::fs::read(trace("lifecycle.pcapng")).unwrap();
    let d = tmpdir("trunc");
    for cut in [bytes.len() / 2, bytes.len() - 3, 60] {
        let f = write(&d, "cut.pcapng", &bytes[..cut]);
        let o = virtwire(&["decode", "--format", "json", &f]);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "cut {cut}");
        let err = stderr(&o);
        assert!(
            err.contains("truncated capture") && err.contains("at byte"),
            "{err}"
        );
        let lines = json_lines(&o);
        assert!(lines.iter().any(|l| l["record"] == "capture_error"));
        if cut > 10_000 {
            assert!(lines.iter().filter(|l| l["record"] == "message").count() > 10);
        }
    }
}

#[test]
fn a_bad_message_mid_stream_is_reported_and_decoding_goes_on() {
    let mut c = Conversation::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:16509".parse().unwrap(),
    );
    c.c2s(&call(1, 66, b""));
    // A REPLY/ERROR whose error struct is cut short: the frame is fine, its body is not.
    let mut bad = error_reply(1, 66, "boom");
    bad.truncate(bad.len() - 8);
    let len = bad.len() as u32;
    bad[..4].copy_from_slice(&len.to_be_bytes());
    c.s2c(&bad);
    c.c2s(&call(2, 3, b""));
    c.s2c(&error_reply(2, 3, "after the bad one"));
    c.close();
    let d = tmpdir("badmsg");
    let f = write(&d, "bad.pcap", &c.pcap());
    let o = virtwire(&["decode", "--format", "json", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = json_lines(&o);
    let msgs: Vec<_> = lines.iter().filter(|l| l["record"] == "message").collect();
    assert_eq!(msgs.len(), 4);
    let e = &msgs[1]["error"];
    assert_eq!(msgs[1]["conn"], 0);
    assert_eq!(msgs[1]["dir"], "s2c");
    assert_eq!(msgs[1]["offset"], 0);
    assert_eq!(msgs[1]["serial"], 1, "the header is still printed");
    assert!(e["message"].as_str().unwrap().contains("truncated"), "{e}");
    assert!(e["path"].as_str().unwrap().starts_with("error."), "{e}");
    assert_eq!(msgs[3]["body"]["message"], "after the bad one");
    // The text form says the same.
    let o = virtwire(&["decode", &f]);
    assert!(stdout(&o).contains("DECODE ERROR"), "{}", stdout(&o));
}

#[test]
fn gap_is_reported_with_seq_and_direction_stopped() {
    let mut c = Conversation::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:16509".parse().unwrap(),
    );
    c.c2s(&call(1, 66, b""));
    c.c2s_lost(28);
    c.c2s(&call(3, 66, b""));
    let d = tmpdir("gap");
    let f = write(&d, "gap.pcap", &c.pcap());
    let o = virtwire(&["decode", "--format", "json", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    let gap = lines
        .iter()
        .find(|l| l["record"] == "gap")
        .expect("a gap record");
    assert_eq!(gap["offset"], 28);
    assert_eq!(gap["seq"], 1001 + 28);
    assert_eq!(gap["gap_len"], 28);
    assert!(
        gap["message"]
            .as_str()
            .unwrap()
            .contains("direction stopped")
    );
    assert_eq!(lines.iter().filter(|l| l["record"] == "message").count(), 1);
}

#[test]
fn other_ports_need_port_and_ipv6_works() {
    let mut c = Conversation::new(
        "[::1]:40000".parse().unwrap(),
        "[::1]:5555".parse().unwrap(),
    );
    c.c2s(&call(1, 66, b""));
    c.close();
    let d = tmpdir("port");
    let f = write(&d, "p.pcap", &c.pcap());
    let o = virtwire(&["decode", "--format", "json", &f]);
    assert_eq!(
        json_lines(&o)
            .iter()
            .filter(|l| l["record"] == "message")
            .count(),
        0
    );
    let o = virtwire(&["decode", "--format", "json", "--port", "5555", &f]);
    let lines = json_lines(&o);
    let m = lines.iter().find(|l| l["record"] == "message").unwrap();
    assert_eq!(m["proc"], 66);
    let conn = lines.iter().find(|l| l["record"] == "conn").unwrap();
    assert_eq!(conn["server"], "[::1]:5555");
}

#[test]
fn framing_error_stops_the_direction_with_a_hint_for_tls() {
    let mut c = Conversation::new(
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:16514".parse().unwrap(),
    );
    c.c2s(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ]);
    let d = tmpdir("tls");
    let f = write(&d, "tls.pcap", &c.pcap());
    let o = virtwire(&["decode", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let s = stdout(&o);
    assert!(
        s.contains("FRAMING ERROR: packet 4, conn 0 c2s, offset 0"),
        "{s}"
    );
    assert!(s.contains("TLS"), "{s}");
}

#[test]
fn raw_streams_and_incomplete_frames() {
    let mut raw = call(1, 66, b"");
    raw.extend(error_reply(1, 66, "x"));
    raw.extend(&call(2, 1, b"\0\0\0\0\0\0\0\0")[..20]);
    let d = tmpdir("raw");
    let f = write(&d, "frames.bin", &raw);
    let o = virtwire(&["decode", "--raw", "--format", "json", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert_eq!(lines.iter().filter(|l| l["record"] == "message").count(), 2);
    let inc = lines.iter().find(|l| l["record"] == "incomplete").unwrap();
    assert_eq!(inc["have"], 20);
    assert_eq!(inc["len"], 36);
    assert!(inc["dir"].is_null());
}

#[test]
fn strict_mode_reports_what_libvirt_mode_accepts() {
    // A keepalive PING with 4 trailing bytes: libvirt ignores them, strict mode does not.
    let h = Header::new(
        0x6b65_6570,
        1,
        1,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    let ping = FrameBuilder::new(h)
        .payload(vec![0, 0, 0, 0])
        .encode(&Limits::default())
        .unwrap();
    let d = tmpdir("strict");
    let f = write(&d, "ping.bin", &ping);
    let o = virtwire(&[
        "decode", "--raw", "--format", "json", "--compat", "strict", &f,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trailing"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["proc_name"], "PING");
    let o = virtwire(&[
        "decode", "--raw", "--format", "json", "--compat", "libvirt", &f,
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(json_lines(&o)[0]["error"].is_null());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["decode"][..],
        &["decode", "--format", "xml", "x"],
        &["decode", "--limits", "huge", "x"],
        &["decode", "--port", "notaport", "x"],
        &["frobnicate"],
    ] {
        let o = virtwire(args);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = virtwire(&["decode", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    assert!(
        help.contains("--compat") && help.contains("Default `libvirt` for captures"),
        "{help}"
    );
    assert!(help.contains("Exit status"));
}

#[test]
fn fd_counts_are_shown() {
    // DOMAIN_OPEN_GRAPHICS_FD (remote 319) returns an FD: REPLY_WITH_FDS with a count after the header.
    let h = Header::new(
        REMOTE_PROGRAM,
        1,
        319,
        MessageType::ReplyWithFds,
        4,
        MessageStatus::Ok,
    );
    let f = FrameBuilder::new(h)
        .nfds(Some(1))
        .encode(&Limits::default())
        .unwrap();
    assert_eq!(f.len(), 32);
    let d = tmpdir("fds");
    let file = write(&d, "fds.bin", &f);
    let o = virtwire(&["decode", "--raw", "--format", "json", &file]);
    no_panic(&o);
    let lines = json_lines(&o);
    assert_eq!(lines[0]["nfds"], 1);
    assert_eq!(lines[0]["type_name"], "REPLY_WITH_FDS");
    assert_eq!(lines[0]["len"], 32);
    let o = virtwire(&["decode", "--raw", &file]);
    assert!(stdout(&o).contains("    FD count: 1\n"), "{}", stdout(&o));
}

#[test]
fn protocol_dir_that_does_not_load_exits_2() {
    let d = tmpdir("protodir");
    let o = virtwire(&[
        "decode",
        "--protocol-dir",
        &d.display().to_string(),
        &trace("keepalive.pcapng"),
    ]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot load the protocol files"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("remote_protocol.x"),
        "names what is missing: {}",
        stderr(&o)
    );
}

#[test]
fn limits_profile_applies_to_framing() {
    // The 19.5 KB domstats replies fit every profile; a 300 KB frame does not fit legacy-256k.
    let big = call(1, 344, &vec![0u8; 300_000]);
    let d = tmpdir("limits");
    let f = write(&d, "big.bin", &big);
    let o = virtwire(&[
        "decode",
        "--raw",
        "--format",
        "json",
        "--limits",
        "legacy-256k",
        &f,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    let fe = lines
        .iter()
        .find(|l| l["record"] == "framing_error")
        .unwrap();
    assert_eq!(fe["error"]["category"], "over-limit");
    let o = virtwire(&["decode", "--raw", "--format", "json", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let _ = synth::pcap(1, &[]);
}
