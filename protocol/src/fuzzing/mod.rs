//! Fuzz harnesses (only with `--cfg fuzzing`).
//!
//! Each public `fn name(data: &[u8])` is the whole logic of one fuzz target, oracle included; the
//! targets in `fuzz/fuzz_targets/` are one-liners calling them, and `fuzz/tests/` replays every seed
//! and regression file through the same functions on stable. A failed oracle panics (that is how
//! libFuzzer learns of it); the message says which property broke.
//!
//! | file | what |
//! |---|---|
//! | `setup` | what every target shares: libvirt's schema ([`schema`], [`protocol_dir`]), [`fuzz_limits`] |
//! | `cursor` | the byte cursor the byte-program targets read their input with |
//! | `generate` | the `Arbitrary` inputs ([`ArbMessage`], [`StreamScript`]) and schema-typed values |
//! | `frame` | targets [`header`] and [`frame_stream`] |
//! | `body` | targets [`body`] and [`validate_vs_decode`] |
//! | `roundtrip` | target [`roundtrip_structured`] |
//! | `stream` | targets [`stream`] and [`stream_reassembly`] |
//! | `verdict` | the differential oracle's data model: [`LibvirtVerdict`], [`OValue`], [`LibvirtOracle`], and what the harness compared ([`Compared`]) |
//! | `differential` | target [`differential_libvirt`] |

mod body;
mod cursor;
mod differential;
mod frame;
mod generate;
mod roundtrip;
mod setup;
mod stream;
mod verdict;

pub use body::{body, validate_vs_decode};
pub use differential::{DIFFERENTIAL_PAD_MAX, differential_libvirt};
pub use frame::{frame_stream, header};
pub use generate::{ArbBody, ArbError, ArbMessage, ArbProg, StreamScript, StreamStep};
pub use roundtrip::roundtrip_structured;
pub use setup::{fuzz_limits, protocol_dir, schema};
pub use stream::{stream, stream_reassembly};
pub use verdict::{
    BodyCompared, BodyVerdict, Compared, LibvirtOracle, LibvirtVerdict, OValue, TheirBody,
};
