//! Reaching a libvirt server: everything about getting a byte stream to one, and nothing about
//! the protocol's bytes.
//!
//! - [`uri`]: libvirt connection URIs as users write them (`test+tcp://host:port/default`,
//!   `qemu+tls://host/system`, `qemu+unix:///system?socket=…`, `libvirtd:///system`), with
//!   libvirt's defaults (ports, socket paths) and the name its client sends in CONNECT_OPEN;
//! - [`connect()`]: TCP (a deadline over every resolved address), unix sockets and TLS (rustls,
//!   libvirt's pkipath layout, `no_verify`, the TLS confirmation byte) → a [`Connection`]:
//!   `Read + Write`, timeouts, shutdown, `try_clone` for a reader thread;
//! - [`Libvirtd`]: the private libvirtd started when no target is given (test driver, loopback
//!   port, temp dir, bounded lifetime, stopped on drop, panic, Ctrl-C and — through a watchdog —
//!   when virtwire itself is killed), its restart, and its log for failing cases;
//! - [`Sidecar`]: a private virtlogd or virtlockd (unprivileged, sockets in a temp dir, bounded
//!   lifetime, stopped by process group on drop);
//! - [`TargetError`]: what failed and where; for the runner, a harness error (exit code 3).
//!
//! Import rule: target/ imports nothing from `wire`, `render` or `capture`, and never frames or
//! decodes a message (only wire/ reads libvirt bytes). Where a round trip is needed — is the
//! daemon ready? — the caller passes a [`Probe`] built on wire/.

pub mod connect;
pub mod error;
pub mod libvirtd;
mod registry;
pub mod sidecar;
pub mod tls;
pub mod transport;
pub mod uri;

pub use connect::{ConnectOptions, connect, probe_connect};
pub use error::TargetError;
pub use libvirtd::{Libvirtd, LibvirtdOptions, Probe, find_libvirtd};
pub use registry::stop_all_daemons;
pub use sidecar::{Sidecar, SidecarKind};
pub use tls::TlsFiles;
pub use transport::Connection;
pub use uri::{Param, SocketMode, TargetUri, Transport};
