//! libvirt 9.0.0's own RPC decoder (libvirt.so.0 via FFI): a differential oracle for fuzzing and
//! timing anchors for the benchmarks. The one FFI binding to libvirt.so in virtwire.
//!
//! - `anchor` (feature `anchor`, which links libvirt.so.0 9.0.0 and its private
//!   `LIBVIRT_PRIVATE_9.0.0` symbols): libvirt's decode and encode paths as the benchmarks call
//!   them (`benches/`, feature `libvirt`).
//! - the oracle (built only with `--cfg fuzzing`, see below): calls `virNetMessageDecodeLength`,
//!   `…DecodeHeader`, `…DecodeNumFDs` and `…DecodePayload` with the generated `xdr_*` filters, and
//!   maps the C structs to [`OValue`](virtwire_protocol::fuzzing::OValue) trees. It loads
//!   libvirt.so at run time (`dlopen`, symbols by name): `libvirt.so.0` as the dynamic loader finds
//!   it, or the file `$VIRTWIRE_LIBVIRT_SO` names — libvirt 11.3.0's from the private prefix
//!   `scripts/setup.sh` unpacks (`.cache/libvirtd-11.3.0/usr/lib/x86_64-linux-gnu/libvirt.so.0`);
//!   `loaded` says which version answered.
//!
//! The `virNetMessage` layout (`src/ffi.rs`) and the struct layouts in `src/oracle.rs` are those of
//! libvirt 9.0.0 on x86_64 (`virnetmessage.h`, `src/remote_protocol-structs`; unchanged in
//! 11.3.0). Nothing else in virtwire needs libvirt0.
//!
//! Oracle bodies decoded: the error struct (REPLY/ERROR, STREAM/ERROR), the stream hole, and every
//! remote, qemu and lxc procedure body (by its `xdr_*` filter); the values of the
//! connection-lifecycle procedures and CONNECT_GET_ALL_DOMAIN_STATS are mapped too (see `Proc`).
//! The verdict is the harness's own type, `virtwire_protocol::fuzzing::LibvirtVerdict`. The oracle
//! exists only with `--cfg fuzzing` (the harness it reports to exists only then): run cargo from
//! inside `fuzz/`, whose `.cargo/config.toml` sets it.

#![allow(unsafe_code)]

#[cfg(feature = "anchor")]
pub mod anchor;
mod ffi;

#[cfg(fuzzing)]
mod oracle;
#[cfg(fuzzing)]
pub use oracle::*;
