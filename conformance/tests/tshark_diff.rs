//! Differential test against Wireshark's libvirt dissector (package libvirt-wireshark) on the committed
//! traces: the same messages in the same packets, the same header fields, and the same body values
//! where the dissector has them.
//!
//! Known dissector faults (PROTOCOL.md §9), accepted here and counted separately:
//! - stream data (STREAM/CONTINUE) is shown 28 bytes short: the dissector subtracts the header twice;
//! - absent optionals (`opt<string>`, `dom`, `net` of the error struct) are shown as "" — equal to our
//!   null for this comparison;
//! - the FD count of `*_WITH_FDS` frames is never dissected (it compares the status with type values);
//!   TCP captures carry no such frames, so this fault cannot show here.
//!
//! Runs only when `tshark` and the libvirt dissector are installed; otherwise it says SKIPPED and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as J;
use virtwire_conformance::decode::{BodyOut, Decoder, Options, Record};
use virtwire_protocol::Body;

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
}

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
            });
        }
    }
    v
}

fn our_messages(path: &Path) -> Vec<Seen> {
    let bytes = std::fs::read(path).unwrap();
    let decoder = Decoder::new(Options::default());
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
    let mut compared = 0;
    let mut error_bodies = 0;
    let mut known_stream_short = 0;
    let mut report = String::new();
    for path in traces() {
        let theirs = tshark_messages(&path);
        let ours = our_messages(&path);
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
            compared += 1;
        }
        report.push_str(&format!("  {name}: {} messages\n", ours.len()));
    }
    eprintln!(
        "tshark differential: {compared} messages, identical headers; {error_bodies} error structs \
         identical; {known_stream_short} stream data packets shown 28 bytes short by the dissector \
         (known fault)\n{report}"
    );
    assert!(compared > 500);
    assert!(error_bodies >= 7);
    assert!(known_stream_short >= 1);
}
