//! What the runner allocates against a hostile server, counted by this binary's global allocator
//! (process-wide: the runner's workers are threads of their own): no single allocation is ever sized
//! from a peer's length word, and a server that floods keeps the runner's memory bounded.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Conn, Fake, FakeServer, Next};
use virtwire_conformance::catalogue::OPEN;
use virtwire_conformance::runner::{Config, Pattern, RunReport, Verdict};
use virtwire_conformance::wire::peer::LOG_KEEP;
use virtwire_protocol::{FrameBuilder, Header, MessageStatus, MessageType};

/// The system allocator, counting live bytes, their peak, and the largest single request.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
    LARGEST.fetch_max(n, Ordering::Relaxed);
}

// SAFETY: every method forwards to the system allocator unchanged and only updates counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run the catalogue against `server`, returning the report, the largest single allocation and the
/// peak of live bytes above what was live before (the report itself included).
fn measured(server: FakeServer, cfg: &Config) -> (RunReport, usize, usize) {
    let _ = support::judge(); // the schema is loaded before counting
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    let rep = support::run_catalogue(server.addr(), cfg);
    drop(server);
    let largest = LARGEST.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (rep, largest, peak)
}

const MIB: usize = 1 << 20;

/// What a fake answers a call with, made from the call's header.
type Answer = fn(&Header) -> Vec<u8>;

/// Answer the first call with `head`, then say nothing more.
fn then_nothing(head: Answer) -> FakeServer {
    FakeServer::start(move |mut c: Conn| {
        if let Next::Frame(f) = c.next_frame() {
            c.write(&head(f.header()));
            c.drain();
        }
    })
}

#[test]
fn a_peer_length_word_is_never_an_allocation_size() {
    let _one = support::one_at_a_time();
    let servers: [(&str, Answer); 2] = [
        ("largest legal length (33554436) + header", |h| {
            FrameBuilder::new(h.reply_to(MessageStatus::Ok))
                .length_word(33_554_436)
                .build_unchecked()
        }),
        ("length 0xFFFFFFFF", |_| vec![0xff; 4]),
    ];
    for (name, head) in servers {
        let (rep, largest, peak) = measured(then_nothing(head), &support::quick_config());
        println!(
            "{name}: largest allocation {largest} bytes, peak live {:.2} MiB; {:?}",
            peak as f64 / MIB as f64,
            rep.counts()
        );
        assert_eq!(
            rep.cases.len(),
            virtwire_conformance::catalogue::builtin(None).len()
        );
        assert!(
            rep.cases.iter().all(|c| c.verdict != Verdict::Error),
            "{name}: an error verdict"
        );
        assert!(largest < MIB, "{name}: one allocation of {largest} bytes");
    }
}

/// Bytes the report keeps of each connection's traffic, largest first.
fn kept_per_connection(rep: &RunReport) -> Vec<usize> {
    let mut v: Vec<usize> = rep
        .cases
        .iter()
        .flat_map(|c| &c.wire)
        .map(|w| w.chunks.iter().map(|c| c.bytes.len()).sum())
        .collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

/// A server that floods: the runner's memory is what its report keeps (a bounded head of each
/// connection's traffic) plus a bounded working set, however long a case waits; no allocation is
/// large.
#[test]
fn a_flooding_server_keeps_memory_bounded() {
    let _one = support::one_at_a_time();
    let stream_forever = || {
        FakeServer::start(|mut c: Conn| {
            if let Next::Frame(f) = c.next_frame() {
                let mut h = *f.header();
                h.msg_type = MessageType::Stream;
                h.status = MessageStatus::Continue;
                let data = FrameBuilder::new(h)
                    .payload(vec![0x5a; 16 << 10])
                    .build_unchecked();
                while c.write(&data) {}
            }
        })
    };
    let flood_events = || {
        let f = Fake {
            flood_events: true,
            ..Fake::default()
        };
        FakeServer::start(move |c| f.serve(c))
    };
    let open_only = |read_ms| Config {
        read_timeout: Duration::from_millis(read_ms),
        run: vec![Pattern::new(OPEN, "test").expect("pattern")],
        ..support::quick_config()
    };
    let runs: [(&str, &dyn Fn() -> FakeServer, Config); 3] = [
        (
            "streams CONTINUE forever, 0.3 s wait",
            &stream_forever,
            open_only(300),
        ),
        (
            "streams CONTINUE forever, 1.2 s wait",
            &stream_forever,
            open_only(1200),
        ),
        (
            "floods events while answering",
            &flood_events,
            Config {
                // It sends a 32 MiB frame on purpose (in 256 KiB pieces), and the fake, in this
                // process, holds it whole to answer it as libvirtd does: not the runner's memory.
                skip: vec![Pattern::new("framing/largest-legal-frame", "test").expect("pattern")],
                ..support::quick_config()
            },
        ),
    ];
    for (name, start, cfg) in runs {
        let (rep, largest, peak) = measured(start(), &cfg);
        let kept = kept_per_connection(&rep);
        let kept_all: usize = kept.iter().sum();
        println!(
            "{name}: largest allocation {largest} bytes, peak live {:.1} MiB, the report keeps \
             {:.1} MiB of traffic ({} connections); {:?} in {:.2} s",
            peak as f64 / MIB as f64,
            kept_all as f64 / MIB as f64,
            kept.len(),
            rep.counts(),
            rep.duration.as_secs_f64(),
        );
        assert!(largest < MIB, "{name}: one allocation of {largest} bytes");
        assert!(
            kept.first().is_none_or(|k| *k <= 2 * LOG_KEEP),
            "{name}: {kept:?} bytes kept of one connection"
        );
        let working = peak.saturating_sub(kept_all);
        assert!(
            working < 16 * MIB,
            "{name}: {:.1} MiB live beyond what the report keeps",
            working as f64 / MIB as f64
        );
        assert!(
            rep.cases.iter().all(|c| c.verdict != Verdict::Error),
            "{name}: an error verdict"
        );
    }
}

/// Once a run is over, its report holds the traffic of the cases that did not pass and none of the
/// cases that passed (unless `keep_passing_wire` asks for it, as `check --json` does): the live
/// memory the report holds is that traffic plus a small, bounded amount per case.
#[test]
fn passing_cases_keep_no_wire() {
    let _one = support::one_at_a_time();
    let well_behaved = || {
        let f = Fake::default();
        FakeServer::start(move |c| f.serve(c))
    };
    let cfg = |keep_passing_wire| Config {
        // The fake holds this case's 32 MiB frame whole in this process: not the runner's memory.
        skip: vec![Pattern::new("framing/largest-legal-frame", "test").expect("pattern")],
        keep_passing_wire,
        ..support::quick_config()
    };
    let _ = support::judge();
    let mut kept_by_setting = Vec::new();
    for keep in [false, true] {
        let server = well_behaved();
        let base = LIVE.load(Ordering::Relaxed);
        let rep = support::run_catalogue(server.addr(), &cfg(keep));
        drop(server);
        let held = LIVE.load(Ordering::Relaxed).saturating_sub(base);
        let kept: usize = kept_per_connection(&rep).iter().sum();
        let passed: Vec<_> = rep
            .cases
            .iter()
            .filter(|c| c.verdict == Verdict::Pass)
            .collect();
        let others = || rep.cases.iter().filter(|c| c.verdict != Verdict::Pass);
        println!(
            "keep_passing_wire {keep}: the report keeps {:.1} KiB of traffic, {:.1} KiB live in \
             all after the run; {:?}",
            kept as f64 / 1024.0,
            held as f64 / 1024.0,
            rep.counts()
        );
        assert!(passed.len() > 10, "{:?}", rep.counts());
        assert!(
            others().any(|c| c.verdict == Verdict::Fail || c.verdict == Verdict::NonStrict),
            "the fake is expected to fail some cases: {:?}",
            rep.counts()
        );
        // The cases that did not pass and spoke to the server keep what they said.
        for c in others().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::NonStrict)) {
            assert!(
                !c.wire.is_empty(),
                "{} ({}) kept no wire",
                c.case.id,
                c.verdict
            );
        }
        let passing_with_wire = passed.iter().filter(|c| !c.wire.is_empty()).count();
        if keep {
            assert_eq!(passing_with_wire, passed.len(), "every pass keeps its wire");
        } else {
            assert_eq!(passing_with_wire, 0, "a pass keeps no wire");
            // What is live after the run is the report: the kept traffic and a bounded amount per
            // case (its words, notes, the case itself).
            let per_case = held.saturating_sub(kept) / rep.cases.len();
            assert!(
                per_case < 16 << 10,
                "{per_case} bytes live per case beyond the kept traffic"
            );
        }
        kept_by_setting.push(kept);
    }
    assert!(
        kept_by_setting[0] < kept_by_setting[1],
        "dropping the passes' wire keeps less: {kept_by_setting:?}"
    );
}
