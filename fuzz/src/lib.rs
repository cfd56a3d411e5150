//! virtwire's cargo-fuzz targets (`fuzz_targets/`, one-liners over `virtwire_protocol::fuzzing`)
//! and the tests that replay their seeds and regressions (`tests/`).
//!
//! The harness exists only with `--cfg fuzzing`. `fuzz/.cargo/config.toml` sets it, but cargo reads
//! that file only when it runs inside `fuzz/`; this library (which every target and test depends
//! on) turns the otherwise puzzling "could not find `fuzzing` in `virtwire_protocol`" into the
//! instruction.

#[cfg(not(fuzzing))]
compile_error!(
    "the fuzz crate needs `--cfg fuzzing`, which fuzz/.cargo/config.toml sets only when cargo runs \
     inside fuzz/. Run `cd fuzz && cargo test` (add `--workspace --features libvirt` for the \
     libvirt.so oracle), or set RUSTFLAGS=\"--cfg fuzzing\" for a build from elsewhere."
);
