//! # virtwire-benches
//!
//! Criterion benchmarks of `virtwire-protocol`; this library only holds the inputs they share.
//! Benchmarks report, tests assert: nothing here is a pass/fail check.
//!
//! - `benches/decode.rs`: the issue-11 table: body decode (tape, tree, validate) against libvirt.so's
//!   `virNetMessageDecodePayload` + `xdr_free`; frame + header per message over 100,000 distinct
//!   frames ([`mixed_frames`]) against libvirtd's receive path per message; encode against libvirt's encoder; and the
//!   scaling of decode / validate / encode per typed param from 1 to 2000 domains. The libvirt
//!   anchors need `--features libvirt` (libvirt0 9.0.0 installed). `cargo bench -p
//!   virtwire-benches --bench decode`.
//! - `benches/stream.rs`: splitting data into STREAM packets and reassembling them (zero-copy and
//!   assembling), and split replies (the non-libvirt codec of `stream::split_reply`) against one
//!   large message under a raised limit. Run with `cargo bench -p virtwire-benches --bench stream`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;

use virtwire_protocol::header::{KEEPALIVE_PROGRAM, QEMU_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::schema::Schema;
use virtwire_protocol::xdr::Writer;
use virtwire_protocol::{
    Compat, FrameBuilder, FrameDecoder, Header, Limits, MessageStatus, MessageType, frames,
};

/// One mebibyte.
pub const MIB: usize = 1 << 20;

/// `len` deterministic pseudo-random bytes (xorshift64), so that inputs are the same on every run
/// and not trivially compressible.
pub fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    out
}

/// Typed params per domain in libvirtd's GET_ALL_DOMAIN_STATS reply for a domain with 64 iothreads
/// (state.state, state.reason, iothread.count, and three per iothread).
pub const PARAMS_PER_DOMAIN: u32 = 3 + 64 * 3;

/// The header of a GET_ALL_DOMAIN_STATS (344) reply.
pub fn stats_header() -> Header {
    Header::call(REMOTE_PROGRAM, 344, 6).reply_to(MessageStatus::Ok)
}

/// The payload of a GET_ALL_DOMAIN_STATS reply shaped like libvirtd 9.0's test driver's for
/// `domains` domains with 64 iothreads each (`scripts/capture.sh big`): per domain its name, uuid
/// and id, then `state.state`, `state.reason` (int), `iothread.count` (uint) and for each iothread
/// `poll-max-ns` (ullong), `poll-grow`, `poll-shrink` (uint). Written by our XDR writer.
pub fn stats_payload(domains: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(domains as usize * 7300 + 4);
    let mut w = Writer::new(&mut out);
    let string = |w: &mut Writer<'_>, s: &str| w.string(s.as_bytes(), u32::MAX).expect("no bound");
    w.u32(domains);
    for d in 1..=domains {
        string(&mut w, &format!("dom{d}"));
        w.opaque_fixed(&[7; 16]);
        w.i32(d as i32);
        w.u32(PARAMS_PER_DOMAIN);
        for (name, v) in [("state.state", 1), ("state.reason", 0)] {
            string(&mut w, name);
            w.i32(1); // VIR_TYPED_PARAM_INT
            w.i32(v);
        }
        string(&mut w, "iothread.count");
        w.i32(2); // VIR_TYPED_PARAM_UINT
        w.u32(64);
        for t in 1..=64 {
            string(&mut w, &format!("iothread.{t}.poll-max-ns"));
            w.i32(4); // VIR_TYPED_PARAM_ULLONG
            w.u64(32768);
            for f in ["poll-grow", "poll-shrink"] {
                string(&mut w, &format!("iothread.{t}.{f}"));
                w.i32(2);
                w.u32(0);
            }
        }
    }
    out
}

/// The whole reply frame for `domains` domains, cached in the target directory
/// (`bench-inputs/stats-<domains>.frame`; never committed): generated once, read after.
pub fn stats_frame(domains: u32) -> Vec<u8> {
    let dir = target_dir().join("bench-inputs");
    let path = dir.join(format!("stats-{domains}.frame"));
    if let Ok(b) = std::fs::read(&path) {
        return b;
    }
    let frame = FrameBuilder::new(stats_header())
        .payload(stats_payload(domains))
        .encode(&Limits::default())
        .expect("the reply fits the default limits");
    let _ = std::fs::create_dir_all(&dir);
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, &frame).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
    frame
}

/// `$CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// libvirt's schema from `$VIRTWIRE_PROTOCOL_DIR`, else the repository's `.cache/libvirt-9.0.0`
/// (`scripts/setup.sh --xdr-only`). Panics saying so when there is none: the benches need it.
pub fn schema() -> Schema {
    let dir = std::env::var_os("VIRTWIRE_PROTOCOL_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0")
        });
    Schema::load_dir(&dir).unwrap_or_else(|e| {
        panic!("benches: {e} (set VIRTWIRE_PROTOCOL_DIR or run scripts/setup.sh --xdr-only)")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stats_payload_has_the_captured_shape() {
        let s = super::schema();
        let p = super::stats_payload(3);
        let v = s
            .decode_body(
                &super::stats_header(),
                &p,
                28,
                &Default::default(),
                Default::default(),
            )
            .unwrap();
        assert_eq!(
            v.at("retStats[2].dom.name").and_then(|n| n.as_str()),
            Some("dom3")
        );
        assert_eq!(
            v.at("retStats[1].params[194].field")
                .and_then(|n| n.as_str()),
            Some("iothread.64.poll-shrink")
        );
        assert_eq!(
            v.at("retStats[0].params[3].value.ul")
                .and_then(|n| n.as_i128()),
            Some(32768)
        );
        // 2000 domains is the 14.5 MB reply of the issue: libvirtd's frame was 14,488,032 bytes,
        // this one is 36 bytes shorter (domain names).
        let per_domain = super::stats_payload(2).len() - super::stats_payload(1).len();
        assert_eq!(per_domain, 7240);
        assert_eq!(super::stats_payload(2000).len() + 28, 14_487_996);
    }

    #[test]
    fn data_is_deterministic_and_sized() {
        assert_eq!(super::data(13).len(), 13);
        assert_eq!(super::data(100), super::data(100));
        assert_ne!(super::data(16)[..8], super::data(16)[8..]);
    }
}

/// Frames in the frame + header row's input ([`mixed_frames`]).
pub const MIXED_FRAMES: u32 = 100_000;

/// `n` distinct frames back to back, deterministic (xorshift64): the frame + header row's input.
/// Programs remote, qemu and keepalive; procedures 1..=450 (keepalive 1..=2); serials random;
/// (type, status) among CALL/OK, REPLY/OK, REPLY/ERROR, MESSAGE/OK, STREAM/CONTINUE, STREAM/OK,
/// STREAM/ERROR; payloads of 0 to 252 bytes (a multiple of 4, random bytes). No `*_WITH_FDS`
/// types: libvirt reads their FD count with a separate call, not in `DecodeHeader`. Every frame is
/// a valid frame for both decoders (the bodies are not decoded).
pub fn mixed_frames(n: u32) -> Vec<u8> {
    const KINDS: [(MessageType, MessageStatus); 7] = [
        (MessageType::Call, MessageStatus::Ok),
        (MessageType::Reply, MessageStatus::Ok),
        (MessageType::Reply, MessageStatus::Error),
        (MessageType::Message, MessageStatus::Ok),
        (MessageType::Stream, MessageStatus::Continue),
        (MessageType::Stream, MessageStatus::Ok),
        (MessageType::Stream, MessageStatus::Error),
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let l = Limits::default();
    let mut out = Vec::with_capacity(n as usize * 160);
    for _ in 0..n {
        let r = next();
        let (prog, procedure) = match r % 8 {
            0 => (KEEPALIVE_PROGRAM, 1 + (r >> 8) % 2),
            1 => (QEMU_PROGRAM, 1 + (r >> 8) % 450),
            _ => (REMOTE_PROGRAM, 1 + (r >> 8) % 450),
        };
        let (t, st) = KINDS[((r >> 24) % KINDS.len() as u64) as usize];
        let len = ((r >> 32) % 64) as usize * 4;
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let h = Header::new(prog, 1, procedure as i32, t, (r >> 40) as u32, st);
        out.extend(
            FrameBuilder::new(h)
                .payload(payload)
                .encode(&l)
                .expect("a valid frame"),
        );
    }
    out
}

/// What one frame contributes to the row's checksum: its header's procedure, serial and type and
/// its payload's length, so that every field of every frame is used (nothing can be hoisted out of
/// the loop: the frames differ) and both sides compute the same sum.
#[inline]
fn mix(sum: u64, procedure: i32, serial: u32, msg_type: i32, payload: usize) -> u64 {
    sum.wrapping_mul(31)
        .wrapping_add(procedure as u32 as u64)
        .wrapping_add(u64::from(serial) << 16)
        .wrapping_add((msg_type as u32 as u64) << 48)
        .wrapping_add(payload as u64)
}

/// The frame + header row, ours through [`frames`]: every frame of `stream` split off and its
/// header decoded, borrowing from `stream` (nothing copied, nothing allocated). Returns the frame
/// count and the checksum.
pub fn run_frames(stream: &[u8], l: &Limits, c: Compat) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    for f in frames(stream, l, c) {
        let (_, f) = f.expect("a valid frame");
        let h = &f.header;
        sum = mix(
            sum,
            h.procedure,
            h.serial,
            h.msg_type.raw(),
            f.payload.len(),
        );
        n += 1;
    }
    (n, sum)
}

/// The frame + header row, ours through [`FrameDecoder`] fed `stream` in 64 KiB reads (as a
/// socket's reads would come): every frame copied out into its own [`OwnedFrame`]
/// (`virtwire_protocol::OwnedFrame`, one allocation) and dropped. Returns the frame count and the
/// checksum.
pub fn run_frame_decoder(stream: &[u8], l: &Limits, c: Compat) -> (u64, u64) {
    let (mut n, mut sum) = (0, 0);
    let mut d = FrameDecoder::new(l, c);
    for read in stream.chunks(64 * 1024) {
        d.feed(read);
        while let Some(f) = d.next_frame().expect("a valid frame") {
            let h = f.header();
            sum = mix(
                sum,
                h.procedure,
                h.serial,
                h.msg_type.raw(),
                f.payload().len(),
            );
            n += 1;
        }
    }
    (n, sum)
}

/// The frame + header row's anchor: libvirtd's receive path per message over the same frames
/// ([`Anchor::daemon_frame`](virtwire_libvirt_oracle::anchor::Anchor::daemon_frame): a new
/// message, length, the buffer reallocated and the frame copied in, header, the message freed).
/// Returns the frame count and the same checksum as [`run_frames`].
#[cfg(feature = "libvirt")]
pub fn run_libvirt_daemon(
    a: &mut virtwire_libvirt_oracle::anchor::Anchor,
    stream: &[u8],
) -> (u64, u64) {
    let (mut n, mut sum, mut at) = (0, 0, 0);
    while at < stream.len() {
        let (len, procedure, serial, msg_type) = a
            .daemon_frame(&stream[at..])
            .expect("libvirt accepts the frame");
        sum = mix(sum, procedure, serial, msg_type, len - 28);
        at += len;
        n += 1;
    }
    (n, sum)
}

#[cfg(test)]
mod mixed_tests {
    use super::*;
    use std::collections::HashSet;

    /// The row's input is what it says: whole frames that both of our decoders take alike, and
    /// that vary in program, procedure, serial, type, status and length (a bench over one frame
    /// repeated lets the compiler and the branch predictor learn it).
    #[test]
    fn mixed_frames_are_valid_and_distinct() {
        let l = Limits::default();
        let stream = mixed_frames(5000);
        let out = run_frames(&stream, &l, Compat::Libvirt);
        assert_eq!(out.0, 5000);
        assert_eq!(run_frame_decoder(&stream, &l, Compat::Libvirt), out);
        assert_eq!(run_frames(&stream, &l, Compat::Strict), out);
        let mut kinds = HashSet::new();
        let (mut lens, mut procs, mut serials) = (HashSet::new(), HashSet::new(), HashSet::new());
        for f in frames(&stream, &l, Compat::Strict) {
            let (_, f) = f.unwrap();
            let h = f.header;
            kinds.insert((h.prog, h.msg_type, h.status));
            lens.insert(f.bytes.len());
            procs.insert(h.procedure);
            serials.insert(h.serial);
        }
        assert!(kinds.len() >= 15, "{kinds:?}");
        assert_eq!(lens.len(), 64);
        assert!(procs.len() > 400 && serials.len() > 4900);
    }
}
