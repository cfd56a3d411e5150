//! Fuzz harnesses over the parsers of untrusted input in this crate (only with `--cfg fuzzing`).
//!
//! As in `virtwire_protocol::fuzzing`: each public `fn name(data: &[u8])` is the whole logic of one
//! fuzz target, oracle included; `fuzz/fuzz_targets/<name>.rs` is a one-liner calling it, and
//! `fuzz/tests/` replays every seed (`corpus/<name>/`) and regression
//! (`corpus/regressions/<name>/`) through it on stable. A broken property panics, saying which.
//!
//! | target | input | reaches |
//! |---|---|---|
//! | [`capture_file`] | a capture file | what `virtwire decode FILE` does, output to nowhere: [`crate::capture`]'s reader and TCP reassembly, [`crate::wire`]'s decoder and judge, [`crate::render`] (text and JSON) |
//! | [`trace_parse`] | a trace file | [`crate::trace::parse`], and [`crate::trace::write`] back |
//! | [`known_list`] | a list line, then facts | [`crate::runner::lists::known_line`] (pattern, signature, reason) and [`Signature::mismatch`] |
//! | [`uri`] | a URI | [`TargetUri::parse`] and what the connectors ask of it |

use std::io;
use std::sync::OnceLock;

use virtwire_protocol::{Compat, Limits};

use crate::render::text::text_record;
use crate::runner::lists::{ListKind, known_line};
use crate::runner::signature::{Observed, Signature};
use crate::runner::{Fact, Verdict};
use crate::target::TargetUri;
use crate::wire::{DEFAULT_PORTS, Decoder, Options, Record, Sink};

/// Out-of-order bytes held per TCP direction in [`capture_file`]: 1 MiB (the command line's default
/// is 64 MiB; a fuzz input is far smaller, and a gap is reached sooner).
pub const CAPTURE_MAX_PENDING: usize = 1 << 20;

/// The decoder [`capture_file`] uses: libvirt's schema (`virtwire_protocol::fuzzing::schema`),
/// libvirt-compatible judgement, the current 32 MiB limits, the default ports.
fn decoder() -> &'static Decoder {
    static DECODER: OnceLock<Decoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let opts = Options {
            ports: DEFAULT_PORTS.to_vec(),
            compat: Compat::Libvirt,
            limits: Limits::CURRENT_32M,
            max_pending: CAPTURE_MAX_PENDING,
        };
        Decoder::with_schema(opts, virtwire_protocol::fuzzing::schema().clone()).tape_bodies(true)
    })
}

/// Renders every record both ways `virtwire decode` can (text and JSON lines), into nothing.
struct Discard {
    json: Vec<u8>,
}

impl Sink for Discard {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        text_record(&mut io::sink(), r)?;
        self.json.clear();
        r.write_json(&mut self.json, &mut |_| Ok(()))
            .map_err(io::Error::from)?;
        Ok(())
    }
}

/// Target `capture_file`: `data` is a capture file (pcap or pcapng, or anything else), read the way
/// `virtwire decode FILE` reads it. No panic; a capture error is a record, never an IO error (the
/// sink cannot fail).
pub fn capture_file(data: &[u8]) {
    let mut sink = Discard { json: Vec::new() };
    let stats = decoder()
        .decode_capture("fuzz.pcapng", data, &mut sink)
        .expect("a sink that cannot fail: decode_capture returns its errors only");
    if stats.capture_error {
        assert!(
            stats.capture_error_message.is_some(),
            "a capture error without a message"
        );
    }
}

/// Target `trace_parse`: `data` as a `virtwire-trace 1` text (UTF-8, lossy). A trace that parses is
/// written back ([`crate::trace::write`]) and must parse again to the same trace: the writer's
/// promise ("the one layout the parser reads back to the same trace").
pub fn trace_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(trace) = crate::trace::parse(&text, "fuzz.trace") else {
        return;
    };
    let written = crate::trace::write(&trace);
    match crate::trace::parse(&written, "fuzz.trace") {
        Ok(again) => assert!(
            again == trace,
            "a trace written back parses to another trace:\n{text}\n--- written ---\n{written}"
        ),
        Err(e) => {
            panic!("a trace written back does not parse ({e}):\n{text}\n--- written ---\n{written}")
        }
    }
}

/// Facts for [`known_list`], read from the bytes after the line: one selector byte per fact, its
/// numbers and texts from the bytes that follow (texts are up to a NUL or the end).
struct FactReader<'a> {
    rest: &'a [u8],
}

impl FactReader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn int(&mut self) -> i32 {
        let mut w = [0u8; 4];
        for b in &mut w {
            *b = self.byte().unwrap_or(0);
        }
        i32::from_le_bytes(w)
    }

    fn text(&mut self) -> String {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.rest.len());
        let s = String::from_utf8_lossy(&self.rest[..end]).into_owned();
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        s
    }

    fn fact(&mut self) -> Option<Fact> {
        const SIGNALS: [&str; 6] = [
            "SIGSEGV", "SIGABRT", "SIGKILL", "SIGBUS", "SIGTERM", "SIGILL",
        ];
        Some(match self.byte()? % 8 {
            0 => Fact::Closed,
            1 => Fact::Reset,
            2 => Fact::Hang,
            3 => Fact::Code {
                code: self.int(),
                message: self.text(),
            },
            4 => Fact::Signal {
                name: SIGNALS[usize::from(self.byte().unwrap_or(0)) % SIGNALS.len()].into(),
            },
            5 => Fact::Signal { name: self.text() },
            6 => Fact::Exit { status: self.int() },
            _ => Fact::Crash { line: self.text() },
        })
    }
}

/// Target `known_list`: `data` is one line of a known-failing or known-flaky list (up to the first
/// newline), then what a case observed: a verdict byte, the Actual text, a daemon log, facts
/// ([`FactReader`]). The line is read as both lists read it; a signature that parses is checked
/// against the observation, and its text must parse again to a signature that judges alike.
pub fn known_list(data: &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let failing = known_line(&line, "fuzz.txt:1", ListKind::Failing);
    let flaky = known_line(&line, "fuzz.txt:1", ListKind::Flaky);
    if let Ok(Some(k)) = &failing {
        assert!(
            k.signature.is_some(),
            "a known-failing entry without a signature: {line:?}"
        );
        assert!(
            matches!(&flaky, Ok(Some(_))),
            "a line a known-failing list takes, a flaky list refuses: {line:?}: {flaky:?}"
        );
    }
    let Ok(Some(known)) = flaky else {
        return;
    };
    let _ = known.pattern.matches("framing/length-u32-max");
    let Some(sig) = known.signature else {
        return;
    };
    let mut r = FactReader { rest };
    const VERDICTS: [Verdict; 6] = [
        Verdict::Fail,
        Verdict::NonStrict,
        Verdict::Pass,
        Verdict::Unsupported,
        Verdict::Omitted,
        Verdict::Error,
    ];
    let verdict = VERDICTS[usize::from(r.byte().unwrap_or(0)) % VERDICTS.len()];
    let actual = r.text();
    let log = r.text();
    let mut facts = Vec::new();
    while facts.len() < 16
        && let Some(f) = r.fact()
    {
        facts.push(f);
    }
    let obs = Observed {
        verdict,
        facts: &facts,
        actual: &actual,
        daemon_log: (!log.is_empty()).then_some(log.as_str()),
    };
    let why = sig.mismatch(&obs);
    if let Some(w) = &why {
        assert!(
            !w.is_empty(),
            "a mismatch with no reason: {{{}}}",
            sig.text()
        );
    }
    let again = Signature::parse(sig.text()).unwrap_or_else(|e| {
        panic!(
            "the signature's own text {{{}}} does not parse: {e}",
            sig.text()
        )
    });
    assert_eq!(
        again.mismatch(&obs).is_none(),
        why.is_none(),
        "{{{}}} parsed twice judges the same facts differently",
        sig.text()
    );
}

/// Target `uri`: `data` as a libvirt connection URI (UTF-8, lossy). A URI that parses answers every
/// question the connectors ask of it without panicking.
pub fn uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(u) = TargetUri::parse(&text) else {
        return;
    };
    let _ = (u.driver(), u.transport(), u.transport_is_explicit());
    let _ = (u.user(), u.host(), u.connect_host(), u.explicit_port());
    let _ = (u.port(), u.path(), u.fragment(), u.params());
    let _ = (u.is_admin(), u.readonly(), u.no_verify(), u.pkipath());
    let _ = (u.mode(), u.socket_path(), u.open_name(), u.address());
    let _ = u.param("socket");
    assert_eq!(u.as_str(), text, "the URI as given is not the text given");
}
