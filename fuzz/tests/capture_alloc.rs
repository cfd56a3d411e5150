//! A capture file's length fields are untrusted: a few bytes that claim a huge block or record make
//! the reader allocate nothing large (issue 25). Measured by this binary's global allocator, as
//! protocol's and conformance's hostile-length tests do (`conformance/tests/misbehaving_alloc.rs`):
//! the largest single allocation and the peak of live bytes while the capture is read.
//!
//! It lives in the fuzz crate, beside the `capture_file` target whose seeds these captures are
//! (`corpus/capture_file/hostile-*`), and runs in its plain `cargo test` on stable.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use virtwire_conformance::capture::CaptureReader;
use virtwire_conformance::wire::{Decoder, Options, Record};

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

/// One measurement at a time: the counters are process-wide and tests run on threads.
static SERIAL: Mutex<()> = Mutex::new(());

/// Run `f`, returning the largest single allocation and the peak of live bytes above the start.
fn measured(f: impl FnOnce()) -> (usize, usize) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    LARGEST.store(0, Ordering::Relaxed);
    f();
    let largest = LARGEST.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (largest, peak)
}

const MIB: usize = 1 << 20;

/// A pcapng section header block of 28 bytes (the least there is) whose length field says `total`.
fn shb_claiming(total: u32) -> Vec<u8> {
    let mut b = vec![0x0a, 0x0d, 0x0d, 0x0a];
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes()); // byte-order magic
    b.extend_from_slice(&1u16.to_le_bytes()); // major
    b.extend_from_slice(&0u16.to_le_bytes()); // minor
    b.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
    b.extend_from_slice(&28u32.to_le_bytes()); // trailing length
    assert_eq!(b.len(), 28);
    b
}

/// A classic pcap header and one record header whose captured length says `incl` (40 bytes).
fn pcap_record_claiming(incl: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for w in [0, 0, incl, incl] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b
}

/// The hostile captures: each claims a block or record of about 4 GiB, or just at the reader's own
/// bound, in a few dozen bytes.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut epb = shb_claiming(28);
    epb.extend_from_slice(&6u32.to_le_bytes()); // enhanced packet block
    epb.extend_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
    vec![
        ("28-byte SHB claiming 4 GiB", shb_claiming(0xFFFF_FFFC)),
        ("28-byte SHB claiming 256 MiB", shb_claiming(256 << 20)),
        ("SHB then an EPB claiming 4 GiB", epb),
        ("pcap record claiming 4 GiB", pcap_record_claiming(u32::MAX)),
        (
            "pcap record claiming 256 MiB",
            pcap_record_claiming(256 << 20),
        ),
    ]
}

/// The capture reader alone: each hostile capture is an error (not a packet, not a hang), and
/// reading it allocates at most its 64 KiB buffer.
#[test]
fn a_capture_claiming_a_huge_block_allocates_nothing_large() {
    for (what, bytes) in hostile() {
        let mut outcome = String::new();
        let (largest, peak) = measured(|| {
            outcome = match CaptureReader::new(&bytes[..]) {
                Err(e) => format!("refused: {e}"),
                Ok(mut r) => match r.read_packet() {
                    Err(e) => format!("refused: {e}"),
                    Ok(Some(p)) => format!("a packet of {} bytes", p.data.len()),
                    Ok(None) => "clean end".into(),
                },
            };
        });
        eprintln!("{what}: {outcome}; largest allocation {largest} B, peak {peak} B");
        assert!(
            outcome.starts_with("refused"),
            "{what}: {outcome}, expected an error"
        );
        assert!(
            largest < MIB && peak < 2 * MIB,
            "{what}: largest allocation {largest} B, peak {peak} B (bound: 1 MiB, 2 MiB)"
        );
    }
}

/// The same through what `virtwire decode` runs (reader, TCP reassembly, decoder, a sink): the
/// capture error is reported as a record, and memory stays as small.
#[test]
fn decoding_a_capture_claiming_a_huge_block_allocates_nothing_large() {
    let decoder = Decoder::new(Options::default());
    for (what, bytes) in hostile() {
        let mut records = 0usize;
        let mut stats = None;
        let (largest, peak) = measured(|| {
            let mut sink = |_: &Record<'_>| {
                records += 1;
                Ok(())
            };
            stats = Some(decoder.decode_capture("hostile", &bytes[..], &mut sink));
        });
        let stats = stats.unwrap().expect("the sink cannot fail");
        eprintln!(
            "{what}: {records} records, {:?}; largest allocation {largest} B, peak {peak} B",
            stats.capture_error_message
        );
        assert!(stats.capture_error, "{what}: no capture error");
        assert!(
            largest < MIB && peak < 2 * MIB,
            "{what}: largest allocation {largest} B, peak {peak} B (bound: 1 MiB, 2 MiB)"
        );
    }
}
