//! libvirt 9.0.0's own RPC decoder as a differential oracle.
//!
//! Calls `virNetMessageDecodeLength`, `…DecodeHeader`, `…DecodeNumFDs` and `…DecodePayload` from
//! libvirt.so.0 with the generated `xdr_*` filters, and maps the C structs to
//! [`OValue`](virtwire_protocol::fuzzing::OValue) trees. The `virNetMessage` layout and the struct
//! layouts in `src/oracle.rs` are those of libvirt 9.0.0 on x86_64 (`virnetmessage.h`,
//! `src/remote_protocol-structs`, unchanged in 11.3.0); nothing else in virtwire needs libvirt0.
//!
//! The library is loaded at run time (`dlopen`, symbols by name): `libvirt.so.0` as the dynamic
//! loader finds it, or the file `$VIRTWIRE_LIBVIRT_SO` names — libvirt 11.3.0's from the private
//! prefix `scripts/setup.sh` unpacks (`.cache/libvirtd-11.3.0/usr/lib/x86_64-linux-gnu/libvirt.so.0`).
//! [`loaded`] says which version answered.
//!
//! Bodies decoded: the error struct (REPLY/ERROR, STREAM/ERROR), the stream hole, and every remote,
//! qemu and lxc procedure body (by its `xdr_*` filter); the values of the connection-lifecycle
//! procedures and CONNECT_GET_ALL_DOMAIN_STATS are mapped too (see [`Proc`]). The verdict is the
//! harness's own type, [`LibvirtVerdict`](virtwire_protocol::fuzzing::LibvirtVerdict).
//!
//! Built only with `--cfg fuzzing` (the harness it reports to exists only then): run cargo from
//! inside `fuzz/`, whose `.cargo/config.toml` sets it.

#![allow(unsafe_code)]

#[cfg(not(fuzzing))]
compile_error!(
    "virtwire-libvirt-oracle needs `--cfg fuzzing` (virtwire_protocol::fuzzing exists only then). \
     Run cargo from inside fuzz/, whose .cargo/config.toml sets it: \
     `cd fuzz && cargo test --workspace --features libvirt`; or set RUSTFLAGS=\"--cfg fuzzing\"."
);

#[cfg(fuzzing)]
mod oracle;
#[cfg(fuzzing)]
pub use oracle::*;
