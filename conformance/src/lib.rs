//! # virtwire-conformance
//!
//! The `virtwire` command line and what it is built from (map and import rules: conformance/README.md):
//!
//! - [`cli`]: one file per subcommand;
//! - [`capture`], [`net`], [`reassembly`]: capture files, link/IP/TCP headers and TCP reassembly,
//!   which feed [`wire`] only;
//! - [`wire`]: the only module that reads libvirt bytes (through `virtwire_protocol`): framing,
//!   judging each message, the record model and its JSON form;
//! - [`proxy`]: the recording proxy behind `virtwire record` (relays bytes, never reads them);
//! - [`capture_out`]: recorded connections written as pcapng;
//! - [`render`]: records as text or JSON lines;
//! - [`synth`]: synthetic captures for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod capture_out;
pub mod catalogue;
pub mod cli;
pub mod net;
pub mod proxy;
pub mod reassembly;
pub mod render;
pub mod runner;
pub mod synth;
pub mod wire;
