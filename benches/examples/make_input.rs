//! Write the GET_ALL_DOMAIN_STATS reply frame for N domains (64 iothreads each) to a file, as a raw
//! stream for `virtwire decode --raw` (scripts/bench.sh's scaling and whole-process runs):
//!
//!     cargo run --release -p virtwire-benches --example make_input -- DOMAINS OUT [REPEAT]
//!
//! REPEAT (default 1) writes the frame that many times back to back (a longer capture).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(domains), Some(out)) = (args.first().and_then(|d| d.parse().ok()), args.get(1))
    else {
        eprintln!("usage: make_input DOMAINS OUT [REPEAT]");
        std::process::exit(2);
    };
    let repeat: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1);
    let frame = virtwire_benches::stats_frame(domains);
    let mut all = Vec::with_capacity(frame.len() * repeat);
    for _ in 0..repeat {
        all.extend_from_slice(&frame);
    }
    if let Err(e) = std::fs::write(out, &all) {
        eprintln!("make_input: {out}: {e}");
        std::process::exit(1);
    }
}
