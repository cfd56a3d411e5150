//! The wire layer on its own: framing through protocol's FrameDecoder in any chunking, framing errors
//! and unfinished frames with their offsets, the JSON form of records, and the rule that nothing
//! outside `wire/` reads libvirt bytes.

use std::path::Path;

use proptest::prelude::*;
use virtwire_conformance::wire::{Decoder, Options, Record};
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, Limits};

/// Decode `chunks` as one raw stream, fed chunk by chunk; every record as its JSON value.
fn decode_chunks(chunks: &[&[u8]]) -> Vec<serde_json::Value> {
    struct Chunked<'a>(std::slice::Iter<'a, &'a [u8]>);
    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // An empty chunk would read as the end of the stream: skip it.
            for c in self.0.by_ref() {
                if !c.is_empty() {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    assert_eq!(n, c.len(), "test chunks fit the decoder's read buffer");
                    return Ok(n);
                }
            }
            Ok(0)
        }
    }
    let dec = Decoder::new(Options::default());
    let mut out = Vec::new();
    let mut sink = |r: &Record<'_>| -> std::io::Result<()> {
        out.push(serde_json::to_value(r).map_err(std::io::Error::other)?);
        Ok(())
    };
    dec.decode_raw("t", Chunked(chunks.iter()), &mut sink)
        .unwrap();
    out
}

fn call(procedure: i32, serial: u32, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::call(REMOTE_PROGRAM, procedure, serial)
        .payload(payload.to_vec())
        .encode(&Limits::default())
        .unwrap()
}

#[test]
fn framing_error_after_good_frames_is_counted_from_its_own_frame() {
    let a = call(1, 1, &[0, 0, 0, 0]);
    let b = call(2, 2, &[]);
    let mut bytes = [a.clone(), b.clone()].concat();
    bytes.extend_from_slice(&[0, 0, 0, 5, 0xde, 0xad]);
    let recs = decode_chunks(&[&bytes]);
    let kinds: Vec<_> = recs.iter().map(|r| r["record"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "message", "framing_error", "summary"]);
    assert_eq!(recs[0]["offset"], 0);
    assert_eq!(recs[1]["offset"], a.len());
    assert_eq!(recs[1]["serial"], 2);
    let fe = &recs[2];
    let at = (a.len() + b.len()) as u64;
    assert_eq!(fe["offset"], at);
    assert_eq!(fe["len"], 5);
    // A length word of 5 passes libvirt's length check; the 24-byte header then cannot fit.
    assert_eq!(fe["error"]["offset"], 4, "{fe}");
    assert_eq!(fe["error"]["path"], "header");
    assert_eq!(fe["error"]["stream_offset"], at + 4);
    assert_eq!(fe["error"]["category"], "malformed");
    assert!(
        fe.get("prog").is_none(),
        "no header fields without 24 header bytes"
    );
    assert_eq!(recs[3]["messages"], 2);
    assert_eq!(recs[3]["framing_errors"], 1);
}

#[test]
fn an_unfinished_frame_is_reported_with_what_was_there() {
    let a = call(1, 1, &[]);
    let b = call(3, 9, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let bytes = [a.clone(), b[..b.len() - 3].to_vec()].concat();
    let recs = decode_chunks(&[&bytes]);
    let inc = recs
        .iter()
        .find(|r| r["record"] == "incomplete")
        .expect("an incomplete record");
    assert_eq!(inc["offset"], a.len());
    assert_eq!(inc["have"], b.len() - 3);
    assert_eq!(inc["len"], b.len());
    assert_eq!(inc["why"], "the file ends");
    assert_eq!(recs.last().unwrap()["incomplete"], 1);
}

#[test]
fn header_fields_of_a_frame_over_the_limit_are_shown() {
    let mut f = call(1, 77, &[]);
    f[..4].copy_from_slice(&(64u32 << 20).to_be_bytes());
    let recs = decode_chunks(&[&f]);
    let fe = &recs[0];
    assert_eq!(fe["record"], "framing_error");
    assert_eq!(fe["error"]["category"], "over-limit");
    assert_eq!(fe["serial"], 77);
    assert_eq!(fe["prog_name"], "remote");
}

fn without_header_of_framing_errors(mut recs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    const HEADER: [&str; 10] = [
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
    ];
    for r in recs.iter_mut().filter(|r| r["record"] == "framing_error") {
        let obj = r.as_object_mut().unwrap();
        for k in HEADER {
            obj.remove(k);
        }
    }
    recs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The same records (offsets, serials, errors) whatever the chunking, a byte at a time included.
    /// Only a framing error's header fields may differ: the error is raised as soon as the length
    /// word is in, and the header is shown only if its bytes had arrived by then.
    #[test]
    fn records_do_not_depend_on_chunking(
        serials in prop::collection::vec(any::<u32>(), 1..6),
        payload_len in 0usize..40,
        tail in prop::collection::vec(any::<u8>(), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut bytes = Vec::new();
        for (i, s) in serials.iter().enumerate() {
            bytes.extend(call(i as i32 + 1, *s, &vec![0; payload_len]));
        }
        bytes.extend(&tail);
        let whole = without_header_of_framing_errors(decode_chunks(&[&bytes]));
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        at.dedup();
        let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        prop_assert_eq!(&without_header_of_framing_errors(decode_chunks(&chunks)), &whole);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&without_header_of_framing_errors(decode_chunks(&bytewise)), &whole);
        let msgs = whole.iter().filter(|r| r["record"] == "message").count();
        prop_assert!(msgs >= serials.len());
    }
}

/// House rule: only `wire/` reads libvirt bytes. The protocol crate's decoding entry points appear
/// nowhere else in the crate's sources.
#[test]
fn only_wire_reads_libvirt_bytes() {
    let decoding = [
        "FrameDecoder",
        "parse_frame",
        "Frame::decode",
        "Message::decode",
        "Header::decode",
        "Header::peek",
        "Reader::new",
        "decode_body",
        "frames(",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != src.join("wire") {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for d in decoding {
                    // `d` as a whole word: `CaptureReader::new` is not `Reader::new`.
                    let hit = line.match_indices(d).any(|(i, _)| {
                        !line[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    });
                    if hit {
                        offenders.push(format!("{}:{}: {d}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "libvirt bytes read outside wire/: {offenders:#?}"
    );
}
