//! The committed real captures (corpus/traces/): every message decodes, round-trips (decode → encode
//! gives the same bytes), and each trace holds what its name promises.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;

use virtwire_conformance::wire::{BodyOut, Decoder, Options, Record, Stats};
use virtwire_protocol::schema::Schema;
use virtwire_protocol::{Body, Compat, Frame, Limits, Message, MessageStatus, MessageType};

/// The schema ($VIRTWIRE_PROTOCOL_DIR, else the repository's .cache/libvirt-9.0.0), if present.
fn schema() -> Option<&'static Schema> {
    static S: OnceLock<Option<Schema>> = OnceLock::new();
    S.get_or_init(|| support::schema_or_skip("procedure bodies of the traces"))
        .as_ref()
}

fn trace(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/traces")
        .join(name)
}

const TRACES: [&str; 8] = [
    "list-sll.pcap",
    "list-sll2.pcap",
    "lifecycle.pcapng",
    "domstats-small.pcapng",
    "screenshot-stream.pcapng",
    "events.pcapng",
    "keepalive.pcapng",
    "errors.pcapng",
];

/// What a test needs of one message, owned.
#[derive(Debug, Clone)]
struct Msg {
    pkt: u64,
    dir: &'static str,
    prog: u32,
    procedure: i32,
    ty: MessageType,
    status: MessageStatus,
    serial: u32,
    payload_len: usize,
    error_message: Option<String>,
    stream_len: Option<usize>,
    failed: Option<String>,
    /// The schema decoded the body and re-encoding it gave back exactly the payload (None: no body
    /// value); Some(false): re-encoding gave a prefix (trailing bytes ignored in libvirt mode).
    body_round_trip: Option<bool>,
}

fn decode(name: &str, compat: Compat) -> (Vec<Msg>, Stats) {
    let bytes = std::fs::read(trace(name)).expect("trace present");
    let opts = Options {
        compat,
        ..Options::default()
    };
    let decoder = match schema() {
        Some(s) => Decoder::with_schema(opts, s.clone()),
        None => Decoder::new(opts),
    };
    let mut msgs = Vec::new();
    let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
        match r {
            Record::Message(m) => {
                // Round trip: the frame re-encodes to the same bytes, and so does the decoded body.
                let limits = Limits::default();
                let mut again = Vec::new();
                m.frame.encode(&mut again, &limits).expect("frame encodes");
                assert_eq!(
                    again, m.frame.bytes,
                    "frame round trip, {name} packet {:?}",
                    m.origin.pkt
                );
                if m.error.is_none() {
                    let f = Frame::decode(m.frame.bytes, &limits, compat).unwrap();
                    let msg = Message::decode(f, &limits, compat).unwrap();
                    let mut again = Vec::new();
                    msg.encode(&mut again, &limits).expect("message encodes");
                    assert_eq!(
                        again, m.frame.bytes,
                        "message round trip, {name} packet {:?}",
                        m.origin.pkt
                    );
                }
                let h = m.frame.header;
                let body_round_trip = match (&m.body, schema()) {
                    (BodyOut::Value { value, .. }, Some(s)) => {
                        let mut out = Vec::new();
                        s.encode_body(&h, value, &mut out, &limits)
                            .expect("body encodes");
                        assert!(
                            m.frame.payload.starts_with(&out),
                            "{name} packet {:?}: body round trip",
                            m.origin.pkt
                        );
                        Some(out.len() == m.frame.payload.len())
                    }
                    _ => None,
                };
                msgs.push(Msg {
                    body_round_trip,
                    pkt: m.origin.pkt.unwrap(),
                    dir: m.origin.dir.unwrap().name(),
                    prog: h.prog,
                    procedure: h.procedure,
                    ty: h.msg_type,
                    status: h.status,
                    serial: h.serial,
                    payload_len: m.frame.payload.len(),
                    error_message: match &m.body {
                        BodyOut::Core(Body::Error(e)) => Some(e.message_lossy().into_owned()),
                        _ => None,
                    },
                    stream_len: match &m.body {
                        BodyOut::Core(Body::StreamData(d)) => Some(d.len()),
                        _ => None,
                    },
                    failed: m.error.as_ref().map(|e| e.to_string()),
                });
            }
            Record::Gap { .. } | Record::FramingError { .. } | Record::Incomplete { .. } => {
                panic!("{name}: unexpected {r:?}")
            }
            _ => {}
        }
        Ok(())
    };
    let stats = decoder
        .decode_capture(name, std::io::Cursor::new(bytes), &mut sink)
        .unwrap();
    (msgs, stats)
}

#[test]
fn every_trace_decodes_and_round_trips() {
    let mut total = 0;
    for name in TRACES {
        let (msgs, stats) = decode(name, Compat::Libvirt);
        assert!(!stats.capture_error, "{name}");
        assert_eq!(
            stats.gaps + stats.framing_errors + stats.incomplete,
            0,
            "{name}"
        );
        assert_eq!(stats.messages as usize, msgs.len());
        assert!(msgs.len() >= 10, "{name}: only {} messages", msgs.len());
        let failed: Vec<_> = msgs.iter().filter(|m| m.failed.is_some()).collect();
        let expected = expected_failures(name, Compat::Libvirt);
        assert_eq!(failed.len(), expected.len(), "{name}: {failed:?}");
        for (m, want) in failed.iter().zip(expected) {
            assert!(
                m.failed.as_deref().unwrap().contains(want),
                "{name}: {m:?} should say {want:?}"
            );
        }
        if schema().is_some() {
            let decoded = msgs.iter().filter(|m| m.body_round_trip.is_some()).count();
            let procedure_bodies = msgs
                .iter()
                .filter(|m| {
                    matches!(
                        m.ty,
                        MessageType::Call | MessageType::Reply | MessageType::Message
                    )
                })
                .filter(|m| m.error_message.is_none() && m.prog != 0x6b65_6570)
                .count();
            assert_eq!(
                decoded + failed.len(),
                procedure_bodies,
                "{name}: every procedure body decodes"
            );
            let short = msgs
                .iter()
                .filter(|m| m.body_round_trip == Some(false))
                .count();
            let trailing = usize::from(name == "errors.pcapng");
            assert_eq!(
                short, trailing,
                "{name}: only the call with junk appended keeps trailing bytes"
            );
        }
        // Every call has a reply with the same serial, program and procedure, except the REPLY a
        // client sent on purpose in errors.pcapng (it has no answer).
        for c in msgs.iter().filter(|m| m.ty == MessageType::Call) {
            let answered = msgs.iter().any(|r| {
                r.ty == MessageType::Reply
                    && r.serial == c.serial
                    && r.prog == c.prog
                    && r.procedure == c.procedure
                    && r.dir == "s2c"
                    && r.pkt > c.pkt
            });
            assert!(answered, "{name}: call {c:?} has no reply");
        }
        total += msgs.len();
    }
    assert!(total > 500, "{total}");
}

/// The messages of a trace that do not decode, in order, by a word of their error. Only the hand-made
/// frames of errors.pcapng (libvirtd rejects the same ones).
fn expected_failures(name: &str, compat: Compat) -> Vec<&'static str> {
    if name != "errors.pcapng" || schema().is_none() {
        return vec![];
    }
    let mut v = vec![
        "unknown procedure 9999",
        "unknown program 0x12345678",
        "unknown program 0x20008086 version 2",
        "truncated",
    ];
    if compat == Compat::Strict {
        v.push("trailing bytes");
    }
    v
}

#[test]
fn strict_mode_accepts_real_libvirt_traffic() {
    // What libvirt writes is strict XDR: strict mode fails only the hand-made frames, and every body
    // it decodes re-encodes to exactly the same bytes.
    for name in TRACES {
        let (msgs, _) = decode(name, Compat::Strict);
        let failed: Vec<_> = msgs.iter().filter_map(|m| m.failed.as_deref()).collect();
        let expected = expected_failures(name, Compat::Strict);
        assert_eq!(failed.len(), expected.len(), "{name}: {failed:?}");
        for (f, want) in failed.iter().zip(expected) {
            assert!(f.contains(want), "{name}: {f} should say {want}");
        }
        assert!(
            msgs.iter().all(|m| m.body_round_trip != Some(false)),
            "{name}"
        );
    }
}

#[test]
fn lifecycle_opens_and_closes() {
    let (msgs, _) = decode("lifecycle.pcapng", Compat::Libvirt);
    let has = |p: i32, t| {
        msgs.iter()
            .filter(|m| m.procedure == p && m.ty == t)
            .count()
    };
    assert_eq!(
        has(1, MessageType::Call),
        2,
        "CONNECT_OPEN from virsh and python"
    );
    assert_eq!(has(2, MessageType::Reply), 2, "CONNECT_CLOSE replies");
    assert!(has(66, MessageType::Reply) >= 2, "AUTH_LIST");
}

#[test]
fn screenshot_stream_carries_the_png() {
    let (msgs, _) = decode("screenshot-stream.pcapng", Compat::Libvirt);
    let data: Vec<_> = msgs.iter().filter_map(|m| m.stream_len).collect();
    assert_eq!(data.iter().sum::<usize>(), 33_443);
    assert_eq!(
        data.last(),
        Some(&0),
        "the server's end of file is an empty STREAM/CONTINUE"
    );
    let ends: Vec<_> = msgs
        .iter()
        .filter(|m| m.ty == MessageType::Stream && m.status == MessageStatus::Ok)
        .map(|m| m.dir)
        .collect();
    assert_eq!(ends, ["c2s", "s2c"], "finish and its confirmation");
    assert!(
        msgs.iter()
            .filter(|m| m.ty == MessageType::Stream)
            .all(|m| m.procedure == 211)
    );
}

#[test]
fn keepalive_and_events() {
    let (msgs, _) = decode("keepalive.pcapng", Compat::Libvirt);
    let keep: Vec<_> = msgs.iter().filter(|m| m.prog == 0x6b65_6570).collect();
    assert!(keep.len() >= 4, "{keep:?}");
    assert!(
        keep.iter()
            .all(|m| m.ty == MessageType::Message && m.serial == 0 && m.payload_len == 0)
    );
    assert!(keep.iter().any(|m| m.procedure == 1) && keep.iter().any(|m| m.procedure == 2));
    let (msgs, _) = decode("events.pcapng", Compat::Libvirt);
    let events = msgs
        .iter()
        .filter(|m| m.ty == MessageType::Message && m.procedure == 318 && m.dir == "s2c")
        .count();
    assert!(
        events >= 4,
        "DOMAIN_EVENT_CALLBACK_LIFECYCLE messages: {events}"
    );
}

#[test]
fn errors_carry_libvirts_messages() {
    let (msgs, _) = decode("errors.pcapng", Compat::Libvirt);
    let errs: Vec<_> = msgs
        .iter()
        .filter_map(|m| m.error_message.as_deref())
        .collect();
    for want in [
        "Domain not found",
        "internal error: hypervisor connection not open",
        "unknown procedure: 9999",
        "Cannot find program 305419896 version 1",
        "Cannot find program 536903814 version 2",
        "Unable to decode message payload",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{want:?} not in {errs:?}"
        );
    }
    // A REPLY sent by the client gets no answer.
    let client_reply = msgs
        .iter()
        .find(|m| m.ty == MessageType::Reply && m.dir == "c2s");
    assert!(client_reply.is_some());
}

#[test]
fn domstats_reply_is_large() {
    let (msgs, _) = decode("domstats-small.pcapng", Compat::Libvirt);
    let replies: Vec<_> = msgs
        .iter()
        .filter(|m| m.procedure == 344 && m.ty == MessageType::Reply)
        .collect();
    assert_eq!(replies.len(), 4);
    assert!(replies.iter().filter(|m| m.payload_len > 19_000).count() == 2);
}

/// Without any `.x` file (Decoder::new, as the CLI falls back to when none is found), headers, the
/// error struct, keepalive and stream bodies still decode; procedure bodies stay raw, not failed.
#[test]
fn core_bodies_decode_without_any_schema() {
    let mut errors = Vec::new();
    let (mut keepalives, mut stream_bytes, mut stream_ends, mut raw, mut failed) = (0, 0, 0, 0, 0);
    for name in [
        "errors.pcapng",
        "keepalive.pcapng",
        "screenshot-stream.pcapng",
    ] {
        let bytes = std::fs::read(trace(name)).expect("trace present");
        let decoder = Decoder::new(Options::default());
        let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
            if let Record::Message(m) = r {
                if m.error.is_some() {
                    failed += 1;
                }
                match &m.body {
                    BodyOut::Core(Body::Error(e)) => errors.push(e.message_lossy().into_owned()),
                    BodyOut::Core(Body::Keepalive(_)) => keepalives += 1,
                    BodyOut::Core(Body::StreamData(d)) => stream_bytes += d.len(),
                    BodyOut::Core(Body::StreamEnd) => stream_ends += 1,
                    BodyOut::Raw(_) => raw += 1,
                    BodyOut::Value { .. } => panic!("{name}: a schema value without a schema"),
                    _ => {}
                }
            }
            Ok(())
        };
        let stats = decoder
            .decode_capture(name, std::io::Cursor::new(bytes), &mut sink)
            .unwrap();
        assert!(stats.messages > 0, "{name}");
    }
    assert!(
        errors.iter().any(|m| m.contains("unknown procedure: 9999")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|m| m.contains("Domain not found")),
        "{errors:?}"
    );
    assert_eq!(keepalives, 8, "4 PINGs and 4 PONGs");
    assert_eq!(stream_bytes, 33_443, "the screenshot's PNG bytes");
    assert_eq!(
        stream_ends, 2,
        "the client's finish and the server's confirmation"
    );
    assert!(raw > 20, "procedure bodies kept raw: {raw}");
    // Unknown programs and procedures, and the body that does not decode, can only be judged with
    // a schema: without one nothing fails, those bodies are kept raw.
    assert_eq!(failed, 0);
}
