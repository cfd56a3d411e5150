//! One operation on the 2000-domain stats reply, once, for instruction counts that the machine's
//! load does not blur (`valgrind --tool=callgrind`; subtract the `none` run, which only sets up):
//!
//!     cargo build --release -p virtwire-benches --example once --features libvirt
//!     valgrind --tool=callgrind target/release/examples/once tape
//!
//! Operations: none, tape, tree, validate, encode, header, and with `--features libvirt`
//! libvirt_none (libvirt's set-up only), libvirt_decode, libvirt_encode, libvirt_header (`header` runs are 1000 messages).
//! The frame + header row: mixed_none (builds the 100,000 mixed frames only), mixed_frames,
//! mixed_decoder (FrameDecoder, 64 KiB reads) and libvirt_mixed_daemon; subtract mixed_none and
//! divide by 100,000.

use std::hint::black_box;

use virtwire_benches::{
    MIXED_FRAMES, mixed_frames, run_frame_decoder, run_frames, schema, stats_frame,
};
use virtwire_protocol::schema::TapeBuf;
use virtwire_protocol::{Compat, Frame, KeepaliveProc, Limits};

fn main() {
    let op = std::env::args().nth(1).unwrap_or_default();
    let s = schema();
    let l = Limits::default();
    let frame = stats_frame(2000);
    let c = Compat::Libvirt;
    let f = Frame::decode(&frame, &l, c).unwrap();
    let ping = KeepaliveProc::Ping.frame();
    #[cfg(feature = "libvirt")]
    let filter =
        virtwire_libvirt_oracle::anchor::Filter::named("remote_connect_get_all_domain_stats_ret")
            .unwrap();
    #[cfg(feature = "libvirt")]
    let mut a = virtwire_libvirt_oracle::anchor::Anchor::new();
    match op.as_str() {
        "none" => {}
        "tape" => {
            let t = s
                .decode_body_tape(&f.header, f.payload, 28, &l, c, TapeBuf::new())
                .unwrap();
            black_box(t.node_count());
        }
        "tree" => drop(black_box(
            s.decode_body(&f.header, f.payload, 28, &l, c).unwrap(),
        )),
        "validate" => s.validate_body(&f.header, f.payload, 28, &l, c).unwrap(),
        "encode" => {
            let v = s.decode_body(&f.header, f.payload, 28, &l, c).unwrap();
            let mut out = Vec::with_capacity(frame.len());
            s.encode_body(&f.header, &v, &mut out, &l).unwrap();
            black_box(out.len());
        }
        // The frame + header row: 100,000 distinct frames (mixed_none builds them and stops).
        "mixed_none" => {
            black_box(mixed_frames(MIXED_FRAMES));
        }
        "mixed_frames" => {
            let m = mixed_frames(MIXED_FRAMES);
            black_box(run_frames(black_box(&m), &l, c));
        }
        "mixed_decoder" => {
            let m = mixed_frames(MIXED_FRAMES);
            black_box(run_frame_decoder(black_box(&m), &l, c));
        }
        #[cfg(feature = "libvirt")]
        "libvirt_mixed_daemon" => {
            let m = mixed_frames(MIXED_FRAMES);
            black_box(virtwire_benches::run_libvirt_daemon(&mut a, black_box(&m)));
        }
        "header" => {
            for _ in 0..1000 {
                black_box(Frame::decode(black_box(&ping), &l, c).unwrap());
            }
        }
        #[cfg(feature = "libvirt")]
        "libvirt_none" => {}
        #[cfg(feature = "libvirt")]
        "libvirt_decode" => assert!(a.decode_body(&frame, filter)),
        #[cfg(feature = "libvirt")]
        "libvirt_encode" => {
            assert!(a.decode_and_keep(&frame, filter));
            black_box(a.encode_message());
        }
        #[cfg(feature = "libvirt")]
        "libvirt_header" => {
            for _ in 0..1000 {
                black_box(a.frame_header(black_box(&ping)));
            }
        }
        other => {
            eprintln!("once: unknown operation {other:?}");
            std::process::exit(2);
        }
    }
}
