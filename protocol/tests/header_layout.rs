//! The header's layout lives in `protocol/src/header.rs` and nowhere else (DESIGN.md, "The house
//! rules"): no other source of the protocol crate, and no file of conformance/ outside the capture
//! layer, reads header words out of raw bytes. Fields are read through `Header::decode` (on a
//! `Reader`) or `Header::peek`, and errors about a field are built by `HeaderField::error`.
//!
//! A source scan, so that a new `buf[16..20]` is caught in review's stead.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its path relative to `dir` (`/`-separated).
fn sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.map(|e| e.expect("readable dir").path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// Literal ranges over the frame's first 28 bytes that start and end on a header word:
/// `[16..20]`, `get(4..28)`, `[..4]`, ….
fn header_ranges(text: &str) -> Vec<String> {
    const WORDS: [&str; 8] = ["0", "4", "8", "12", "16", "20", "24", "28"];
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("..") {
        let dots = at + i;
        at = dots + 2;
        let mut s = dots;
        while s > 0 && b[s - 1].is_ascii_digit() {
            s -= 1;
        }
        let mut e = dots + 2;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        let (lo, hi) = (&text[s..dots], &text[dots + 2..e]);
        let open = s > 0 && (b[s - 1] == b'[' || text[..s].ends_with("get("));
        let close = e < b.len() && (b[e] == b']' || b[e] == b')');
        if open
            && close
            && (lo.is_empty() || WORDS.contains(&lo))
            && WORDS[1..].contains(&hi)
            && lo.parse::<u32>().unwrap_or(0) < hi.parse::<u32>().unwrap()
        {
            found.push(text[s.saturating_sub(4)..(e + 1).min(b.len())].to_string());
        }
    }
    found
}

/// Where `pat` occurs as a whole path (not preceded by an identifier character).
fn find_token(text: &str, pat: &str) -> Option<usize> {
    text.match_indices(pat).map(|(i, _)| i).find(|&i| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map_or(0, |i| text[..i].matches('\n').count() + 1)
}

#[test]
fn only_header_rs_reads_header_bytes_in_protocol() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&src);
    assert!(
        files.iter().any(|(p, _)| p == "header.rs"),
        "scan found no header.rs"
    );
    let mut bad = Vec::new();
    for (path, text) in &files {
        if path == "header.rs" {
            continue;
        }
        // 4-byte words are read by the XDR reader.
        for pat in ["u32::from_be_bytes", "i32::from_be_bytes"] {
            if path != "xdr.rs" && text.contains(pat) {
                bad.push(format!(
                    "{path}:{}: reads a 4-byte word by hand (use Reader or Header::peek)",
                    line_of(text, pat)
                ));
            }
        }
        for r in header_ranges(text) {
            bad.push(format!(
                "{path}:{}: indexes header bytes `{r}`",
                line_of(text, &r)
            ));
        }
        for f in ["prog", "vers", "proc", "type", "serial", "status"] {
            let pat = format!("in_field(\"{f}\")");
            if text.contains(&pat) {
                bad.push(format!(
                    "{path}:{}: builds a header.{f} error by hand (use HeaderField::error)",
                    line_of(text, &pat)
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "header layout outside header.rs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn conformance_reads_no_header_bytes() {
    let src: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/src");
    if !src.is_dir() {
        // A protocol crate published or copied alone has no conformance/ to check.
        assert!(
            std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "VIRTWIRE_REQUIRE_ALL=1 but {} is missing",
            src.display()
        );
        eprintln!("SKIPPED: no conformance/ beside protocol/");
        return;
    }
    let mut bad = Vec::new();
    let files = sources(&src);
    assert!(!files.is_empty());
    for (path, text) in &files {
        // The capture layer reads pcap, link, IP and TCP headers: not libvirt bytes.
        let first = path.split(['/', '.']).next().unwrap_or_default();
        if ["capture", "net", "reassembly"].contains(&first) {
            continue;
        }
        for pat in [
            "from_be_bytes",
            "Header::decode(",
            "Reader::new(",
            "Reader::with_base(",
        ] {
            if let Some(i) = find_token(text, pat) {
                bad.push(format!(
                    "conformance/src/{path}:{}: `{pat}` (frames and headers are read by protocol: \
                     parse_frame, FrameDecoder, Header::peek)",
                    text[..i].matches('\n').count() + 1
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "conformance reads libvirt bytes:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_sees_what_it_forbids() {
    assert_eq!(header_ranges("x = &buf[16..20];").len(), 1);
    assert_eq!(header_ranges("head.get(4..28)").len(), 1);
    assert_eq!(header_ranges("buf[..4].try_into()").len(), 1);
    assert!(header_ranges("data[1..25] buf[..10] s[1..] x[..] y[4..]").is_empty());
    assert_eq!(find_token("CaptureReader::new(x)", "Reader::new("), None);
    assert_eq!(find_token("a(Reader::new(x)", "Reader::new("), Some(2));
}
