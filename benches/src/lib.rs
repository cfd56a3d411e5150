//! # virtwire-benches
//!
//! Criterion benchmarks of `virtwire-protocol`; this library only holds the inputs they share.
//! Benchmarks report, tests assert: nothing here is a pass/fail check.
//!
//! - `benches/stream.rs`: splitting data into STREAM packets and reassembling them (zero-copy and
//!   assembling), and split replies (the non-libvirt codec of `stream::split_reply`) against one
//!   large message under a raised limit. Run with `cargo bench -p virtwire-benches --bench stream`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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

#[cfg(test)]
mod tests {
    #[test]
    fn data_is_deterministic_and_sized() {
        assert_eq!(super::data(13).len(), 13);
        assert_eq!(super::data(100), super::data(100));
        assert_ne!(super::data(16)[..8], super::data(16)[8..]);
    }
}
