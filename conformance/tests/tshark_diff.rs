//! Differential test against Wireshark's libvirt dissector (package libvirt-wireshark) on the committed
//! traces: the same messages in the same packets, the same header fields, and the same body values
//! where the dissector has them.
//!
//! Bodies are compared leaf by leaf in `.x` order (numbers, strings, opaque bytes, absent optionals),
//! for every message both sides decode; union discriminants are not compared (the dissector does not
//! show them, only the arm).
//!
//! Known dissector faults (PROTOCOL.md §9 and found here), accepted and counted separately:
//! - stream data (STREAM/CONTINUE) is shown 28 bytes short: the dissector subtracts the header twice;
//! - every field named `type` is registered as an unsigned int whatever its XDR type, so a `string`
//!   named `type` (CONNECT_GET_TYPE, DOMAIN_GET_OS_TYPE, DOMAIN_GET_SCHEDULER_TYPE… replies) is shown
//!   as its length word, not its text (`tshark -G fields`: `libvirt.remote_connect_get_type_ret.type
//!   FT_UINT32`);
//! - a variable-length opaque (`opaque x<N>`, e.g. DOMAIN_GET_VCPUS's `cpumaps`, NODE_GET_CPU_MAP's
//!   `cpumap`) is shown as its whole XDR encoding — length word, data and padding — not as its data;
//! - the FD count of `*_WITH_FDS` frames is never dissected (it compares the status with type values);
//!   TCP captures carry no such frames, so this fault cannot show here.
//!
//! Representation differences (not faults): absent optionals and empty arrays are "" in tshark's
//! JSON, enums are numbers, opaque bytes are colon-separated hex.
//!
//! Runs only when `tshark` and the libvirt dissector are installed; otherwise it says SKIPPED and passes.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as J;
use virtwire_conformance::wire::{BodyOut, Decoder, Options, Record};
use virtwire_protocol::Body;
use virtwire_protocol::schema::{Schema, Value};

fn traces() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/traces");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus/traces")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng" || e == "pcap"))
        .collect();
    v.sort();
    v
}

fn tshark_ready() -> Result<(), String> {
    let out = Command::new("tshark")
        .args(["-G", "protocols"])
        .output()
        .map_err(|e| format!("tshark not runnable ({e})"))?;
    let list = String::from_utf8_lossy(&out.stdout);
    if !list
        .lines()
        .any(|l| l.split('\t').nth(2) == Some("libvirt"))
    {
        return Err("tshark has no libvirt dissector (package libvirt-wireshark)".into());
    }
    Ok(())
}

/// One message as both sides see it: header fields as strings, and body fields as flat path → value.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    frame: u64,
    header: [String; 7],
    /// Error struct fields (absent = "").
    error: Option<BTreeMap<String, String>>,
    /// Stream data bytes.
    stream_len: Option<usize>,
    /// Body leaves in order, (tshark key, value); our side has no keys. `None`: not compared (no
    /// schema body on our side, or a message that did not decode).
    leaves: Option<Vec<(String, String)>>,
}

/// Our leaves, normalised to tshark's representation.
fn value_leaves(v: &Value<'_>, out: &mut Vec<(String, String)>) {
    let mut push = |s: String| out.push((String::new(), s));
    match v {
        Value::Void => {}
        Value::Int(i) => push(i.to_string()),
        Value::UInt(i) => push(i.to_string()),
        Value::Hyper(i) => push(i.to_string()),
        Value::UHyper(i) => push(i.to_string()),
        Value::Float(f) => push(f.to_string()),
        Value::Double(f) => push(f.to_string()),
        Value::Bool(b) => push(u8::from(*b).to_string()),
        Value::Enum { value, .. } => push(value.to_string()),
        Value::String(b) => push(String::from_utf8_lossy(b).into_owned()),
        Value::Opaque(b) => push(
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        Value::Optional(None) => push(String::new()),
        Value::Optional(Some(v)) => value_leaves(v, out),
        Value::Array(items) if items.is_empty() => push(String::new()),
        Value::Array(items) => items.iter().for_each(|i| value_leaves(i, out)),
        Value::Struct(fields) => fields.iter().for_each(|(_, f)| value_leaves(f, out)),
        Value::Union { value, .. } => value_leaves(value, out),
        other => panic!("value kind {} not handled", other.kind_name()),
    }
}

/// The colon-hex of an `opaque<>`'s XDR encoding, from the colon-hex of its data.
fn xdr_opaque_hex(data_hex: &str) -> String {
    let n = if data_hex.is_empty() {
        0
    } else {
        data_hex.split(':').count()
    };
    let mut parts: Vec<String> = (n as u32)
        .to_be_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    parts.extend(
        data_hex
            .split(':')
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    parts.extend(std::iter::repeat_n("00".to_string(), (4 - n % 4) % 4));
    parts.join(":")
}

fn json_leaves(key: &str, v: &J, out: &mut Vec<(String, String)>) {
    match v {
        J::Object(m) => m.iter().for_each(|(k, v)| json_leaves(k, v, out)),
        J::Array(a) => a.iter().for_each(|v| json_leaves(key, v, out)),
        J::String(s) => out.push((key.to_string(), s.clone())),
        other => out.push((key.to_string(), other.to_string())),
    }
}

const HEADER_KEYS: [&str; 8] = [
    "libvirt.length",
    "libvirt.program",
    "libvirt.version",
    "libvirt.procedure",
    "libvirt.type",
    "libvirt.serial",
    "libvirt.status",
    "libvirt.stream",
];

fn tshark_messages(path: &Path) -> Vec<Seen> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-d",
            "tcp.port==16509,libvirt",
            "-T",
            "json",
            "--no-duplicate-keys",
            "-J",
            "libvirt",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: Vec<J> = serde_json::from_slice(&out.stdout).expect("tshark JSON");
    let mut v = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let pdus = match &p["_source"]["layers"]["libvirt"] {
            J::Null => continue,
            J::Array(a) => a.clone(),
            o => vec![o.clone()],
        };
        for l in pdus {
            let f = |k: &str| l[format!("libvirt.{k}")].as_str().unwrap_or("").to_string();
            let prog = u32::from_str_radix(f("program").trim_start_matches("0x"), 16)
                .map(|p| p.to_string())
                .unwrap_or_default();
            let error = l["libvirt.remote_error"].as_object().map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.trim_start_matches("libvirt.remote_error.").to_string(),
                            v.as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            });
            let mut leaves = Vec::new();
            if let J::Object(m) = &l {
                for (k, v) in m.iter().filter(|(k, _)| !HEADER_KEYS.contains(&k.as_str())) {
                    json_leaves(k, v, &mut leaves);
                }
            }
            let stream_len = l["libvirt.stream"].as_str().map(|s| {
                if s.is_empty() {
                    0
                } else {
                    s.split(':').count()
                }
            });
            v.push(Seen {
                frame: i as u64 + 1,
                header: [
                    f("length"),
                    prog,
                    f("version"),
                    f("procedure"),
                    f("type"),
                    f("serial"),
                    f("status"),
                ],
                error,
                stream_len,
                leaves: Some(leaves),
            });
        }
    }
    v
}

fn our_messages(path: &Path, schema: Option<Schema>) -> Vec<Seen> {
    let bytes = std::fs::read(path).unwrap();
    let decoder = match schema {
        Some(s) => Decoder::with_schema(Options::default(), s),
        None => Decoder::new(Options::default()),
    };
    let mut v = Vec::new();
    let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
        if let Record::Message(m) = r {
            let h = m.frame.header;
            let opt = |s: Option<&[u8]>| {
                s.map_or(String::new(), |b| String::from_utf8_lossy(b).into_owned())
            };
            let error = match &m.body {
                BodyOut::Core(Body::Error(e)) => Some(BTreeMap::from([
                    ("code".to_string(), e.code.to_string()),
                    ("domain".to_string(), e.domain.to_string()),
                    ("message".to_string(), opt(e.message)),
                    ("level".to_string(), e.level.to_string()),
                    ("dom".to_string(), String::new()),
                    ("str1".to_string(), opt(e.str1)),
                    ("str2".to_string(), opt(e.str2)),
                    ("str3".to_string(), opt(e.str3)),
                    ("int1".to_string(), e.int1.to_string()),
                    ("int2".to_string(), e.int2.to_string()),
                    ("net".to_string(), String::new()),
                ])),
                _ => None,
            };
            assert!(
                !matches!(&m.body, BodyOut::Core(Body::Error(e)) if e.dom.is_some() || e.net.is_some()),
                "dom/net present: extend the comparison"
            );
            v.push(Seen {
                frame: m.origin.pkt.unwrap(),
                header: [
                    m.frame.len_word().to_string(),
                    h.prog.to_string(),
                    h.vers.to_string(),
                    h.procedure.to_string(),
                    h.msg_type.raw().to_string(),
                    h.serial.to_string(),
                    h.status.raw().to_string(),
                ],
                error,
                stream_len: match &m.body {
                    BodyOut::Core(Body::StreamData(d)) => Some(d.len()),
                    _ => None,
                },
                leaves: match (&m.body, &m.error) {
                    (BodyOut::Value { value, .. }, None) => {
                        let mut l = Vec::new();
                        value_leaves(value, &mut l);
                        Some(l)
                    }
                    _ => None,
                },
            });
        }
        Ok(())
    };
    decoder
        .decode_capture(
            &path.display().to_string(),
            std::io::Cursor::new(bytes),
            &mut sink,
        )
        .unwrap();
    v
}

#[test]
fn same_messages_headers_and_bodies_as_tshark() {
    if let Err(why) = tshark_ready() {
        eprintln!("SKIPPED: differential test against tshark: {why}");
        return;
    }
    let schema = match support::schema() {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("SKIPPED (bodies only): no schema to decode procedure bodies: {e}");
            None
        }
    };
    let mut compared = 0;
    let mut error_bodies = 0;
    let mut bodies = 0;
    let mut leaves_compared = 0;
    let mut known_stream_short = 0;
    let mut known_type_as_length = 0;
    let mut known_opaque_xdr = 0;
    let mut report = String::new();
    for path in traces() {
        let theirs = tshark_messages(&path);
        let ours = our_messages(&path, schema.clone());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: we see {} messages, tshark {}",
            ours.len(),
            theirs.len()
        );
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o.frame, t.frame, "{name}: message in a different packet");
            assert_eq!(o.header, t.header, "{name} packet {}: header", o.frame);
            if let (Some(a), Some(b)) = (&o.error, &t.error) {
                assert_eq!(a, b, "{name} packet {}: error struct", o.frame);
                error_bodies += 1;
            } else {
                assert_eq!(
                    o.error.is_some(),
                    t.error.is_some(),
                    "{name} packet {}",
                    o.frame
                );
            }
            match (o.stream_len, t.stream_len) {
                (Some(a), Some(b)) if a == b + 28 => known_stream_short += 1,
                (Some(0), None) => {} // empty data: the dissector shows no stream field at all
                (a, b) => assert_eq!(a, b, "{name} packet {}: stream data length", o.frame),
            }
            if let (Some(a), Some(b)) = (&o.leaves, &t.leaves)
                && o.error.is_none()
            {
                let b: Vec<_> = b.iter().filter(|(k, _)| !k.starts_with("_ws.")).collect();
                assert_eq!(
                    a.len(),
                    b.len(),
                    "{name} packet {}: {} leaves, tshark {}\n ours {a:?}\n tshark {b:?}",
                    o.frame,
                    a.len(),
                    b.len()
                );
                for ((_, ours), (key, theirs)) in a.iter().zip(&b) {
                    if ours == theirs {
                        continue;
                    }
                    if key.ends_with(".type") && theirs.parse() == Ok(ours.len()) {
                        known_type_as_length += 1;
                        continue;
                    }
                    if theirs == &xdr_opaque_hex(ours) {
                        known_opaque_xdr += 1;
                        continue;
                    }
                    let same_float = matches!(
                        (ours.parse::<f64>(), theirs.parse::<f64>()),
                        (Ok(x), Ok(y)) if x == y
                    );
                    assert!(
                        same_float,
                        "{name} packet {}: field {key}: ours {ours:?}, tshark {theirs:?}",
                        o.frame
                    );
                }
                leaves_compared += a.len();
                bodies += 1;
            }
            compared += 1;
        }
        report.push_str(&format!("  {name}: {} messages\n", ours.len()));
    }
    eprintln!(
        "tshark differential: {compared} messages, identical headers; {error_bodies} error structs \
         identical; {bodies} procedure bodies with {leaves_compared} leaf values identical; known \
         dissector faults: {known_stream_short} stream data packets shown 28 bytes short, \
         {known_type_as_length} `type` strings shown as their length, {known_opaque_xdr} variable \
         opaques shown with their length word and padding\n{report}"
    );
    assert!(compared > 500);
    if schema.is_some() {
        assert!(bodies > 400, "{bodies}");
        assert!(known_type_as_length >= 2);
    }
    assert!(error_bodies >= 7);
    assert!(known_stream_short >= 1);
}
