//! Fake clients for `virtwire check-client`'s own tests: the session a scripted server replays (a
//! `virtwire-trace 1` written here with `virtwire_protocol`'s builders), and `check-client` run
//! against `conformance/tests/clients/fake_client.py` in one of its modes (a Go-like panic, an
//! uncaught Python exception, a Rust panic, a client that takes an over-max value silently, one
//! that never enables keepalive, one with a bool encoded 0x01000000, a racy one, …).
#![allow(dead_code)] // each test binary uses its own part of the kit

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, MessageStatus, MessageType, Writer};

const CONNECT_OPEN: i32 = 1;
const CONNECT_CLOSE: i32 = 2;
const CONNECT_SUPPORTS_FEATURE: i32 = 60;
const DOMAIN_SCREENSHOT: i32 = 211;
const CONNECT_LIST_ALL_DOMAINS: i32 = 273;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn body(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut b = Vec::new();
    f(&mut Writer::new(&mut b));
    b
}

fn frame(
    procedure: i32,
    serial: u32,
    t: MessageType,
    s: MessageStatus,
    payload: Vec<u8>,
) -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, procedure, serial)
        .msg_type(t)
        .status(s)
        .payload(payload)
        .build_unchecked()
}

/// The trace the fake client's session is: CONNECT_SUPPORTS_FEATURE(10) → 1 (with `keepalive`),
/// CONNECT_OPEN, then CONNECT_LIST_ALL_DOMAINS (one domain, `test`) or, with `screenshot`,
/// DOMAIN_SCREENSHOT with one data packet and the empty one that ends the data, the client's finish and the server's STREAM/OK (the
/// final STREAM/OK comes only after the client finishes, as libvirtd sends it), then CONNECT_CLOSE.
pub fn session(keepalive: bool, screenshot: bool) -> String {
    use MessageStatus::{Continue, Ok};
    use MessageType::{Call, Reply, Stream};
    let mut t = String::from("virtwire-trace 1\n");
    let mut step = |dir: &str, what: &str, name: &str, serial: u32, status: &str, f: Vec<u8>| {
        t.push_str(&format!(
            "{dir} {what} remote.{name} serial={serial}{status}\n  frame {}\n",
            hex(&f)
        ));
    };
    if keepalive {
        let name = "CONNECT_SUPPORTS_FEATURE";
        let args = body(|w| w.i32(10));
        step(
            ">",
            "CALL",
            name,
            1,
            "",
            frame(CONNECT_SUPPORTS_FEATURE, 1, Call, Ok, args),
        );
        let ret = body(|w| w.i32(1));
        step(
            "<",
            "REPLY",
            name,
            1,
            " status=OK",
            frame(CONNECT_SUPPORTS_FEATURE, 1, Reply, Ok, ret),
        );
    }
    let args = body(|w| {
        w.optional(true);
        w.string(b"test:///default", 4_194_304).unwrap();
        w.u32(0);
    });
    step(
        ">",
        "CALL",
        "CONNECT_OPEN",
        2,
        "",
        frame(CONNECT_OPEN, 2, Call, Ok, args),
    );
    step(
        "<",
        "REPLY",
        "CONNECT_OPEN",
        2,
        " status=OK",
        frame(CONNECT_OPEN, 2, Reply, Ok, vec![]),
    );
    let dom = |w: &mut Writer<'_>| {
        w.string(b"test", 4_194_304).unwrap();
        w.opaque_fixed(&[0x11; 16]);
        w.i32(1);
    };
    if screenshot {
        let name = "DOMAIN_SCREENSHOT";
        let args = body(|w| {
            dom(w);
            w.u32(0);
            w.u32(0);
        });
        step(
            ">",
            "CALL",
            name,
            3,
            "",
            frame(DOMAIN_SCREENSHOT, 3, Call, Ok, args),
        );
        let ret = body(|w| {
            w.optional(true);
            w.string(b"image/png", 4_194_304).unwrap();
        });
        step(
            "<",
            "REPLY",
            name,
            3,
            " status=OK",
            frame(DOMAIN_SCREENSHOT, 3, Reply, Ok, ret),
        );
        let data = b"PNGDATA!".to_vec();
        let f = frame(DOMAIN_SCREENSHOT, 3, Stream, Continue, data);
        step("<", "STREAM", name, 3, " status=CONTINUE", f);
        // The end of the data: an empty packet.
        let f = frame(DOMAIN_SCREENSHOT, 3, Stream, Continue, vec![]);
        step("<", "STREAM", name, 3, " status=CONTINUE", f);
        step(
            ">",
            "STREAM",
            name,
            3,
            "",
            frame(DOMAIN_SCREENSHOT, 3, Stream, Ok, vec![]),
        );
        let f = frame(DOMAIN_SCREENSHOT, 3, Stream, Ok, vec![]);
        step("<", "STREAM", name, 3, " status=OK", f);
    } else {
        let name = "CONNECT_LIST_ALL_DOMAINS";
        let args = body(|w| {
            w.i32(1);
            w.u32(0);
        });
        step(
            ">",
            "CALL",
            name,
            3,
            "",
            frame(CONNECT_LIST_ALL_DOMAINS, 3, Call, Ok, args),
        );
        let ret = body(|w| {
            w.u32(1);
            dom(w);
            w.u32(1);
        });
        step(
            "<",
            "REPLY",
            name,
            3,
            " status=OK",
            frame(CONNECT_LIST_ALL_DOMAINS, 3, Reply, Ok, ret),
        );
    }
    step(
        ">",
        "CALL",
        "CONNECT_CLOSE",
        4,
        "",
        frame(CONNECT_CLOSE, 4, Call, Ok, vec![]),
    );
    step(
        "<",
        "REPLY",
        "CONNECT_CLOSE",
        4,
        " status=OK",
        frame(CONNECT_CLOSE, 4, Reply, Ok, vec![]),
    );
    t
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One `virtwire check-client` run against the fake client.
pub struct Run {
    /// Its exit status.
    pub code: Option<i32>,
    /// Its JSON report.
    pub report: Value,
    /// stdout and stderr, for assertion messages.
    pub output: String,
}

impl Run {
    /// The report's entry for case `id`.
    pub fn case(&self, id: &str) -> &Value {
        self.report["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("no cases in the report:\n{}", self.output))
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no case {id}:\n{}", self.output))
    }

    /// Case `id`'s verdict.
    pub fn verdict(&self, id: &str) -> &str {
        self.case(id)["verdict"].as_str().unwrap_or("")
    }

    /// Case `id`'s Actual.
    pub fn actual(&self, id: &str) -> &str {
        self.case(id)["actual"].as_str().unwrap_or("")
    }
}

/// `virtwire check-client --trace (session) --json … --run GLOB EXTRA -- python3 fake_client.py
/// MODES {uri}`, with `env` set for the client.
pub fn check_client(
    session: &str,
    modes: &str,
    run: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("session.trace");
    std::fs::write(&trace, session).unwrap();
    let json = dir.path().join("report.json");
    // VIRTWIRE_TEST_BIN runs another build (say, an older one, to see these tests fail on it).
    let bin = std::env::var_os("VIRTWIRE_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_virtwire")),
        PathBuf::from,
    );
    let out = Command::new(bin)
        .current_dir(root())
        .arg("check-client")
        .arg("--trace")
        .arg(&trace)
        .arg("--json")
        .arg(&json)
        .args(["--run", run])
        .args(extra)
        .envs(env.iter().copied())
        .arg("--")
        .arg("/usr/bin/python3")
        .arg(root().join("conformance/tests/clients/fake_client.py"))
        .arg(modes)
        .arg("{uri}")
        .output()
        .unwrap();
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code(),
        report,
        output,
    }
}
