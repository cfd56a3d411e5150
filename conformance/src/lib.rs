//! # virtwire-conformance
//!
//! The `virtwire` command line and what it is built from (map and import rules: conformance/README.md):
//!
//! - [`cli`]: one file per subcommand;
//! - [`capture`]: capture files (pcap, pcapng), link/IP/TCP headers and TCP reassembly, which
//!   feed [`wire`] only; and recorded connections written back as pcapng;
//! - [`wire`]: the only module that reads libvirt bytes (through `virtwire_protocol`): framing,
//!   judging each message, the record model and its JSON form;
//! - [`proxy`]: the recording proxy behind `virtwire record` (relays bytes, never reads them);
//! - [`render`]: records as text or JSON lines;
//! - [`proxy`]: the transparent recording proxy of `virtwire record` (bytes only, never parsed);
//! - [`protocol_files`]: where libvirt's `.x` files are found, and how to get them;
//! - [`report`]: a conformance run for people and CI (terminal, JUnit, JSON);
//! - [`suite`]: the composition root: target + catalogue + runner, as `virtwire check` and as a
//!   library ([`Suite`]);
//! - [`synth`]: synthetic captures for tests;
//! - [`target`]: reaching a server (URIs, tcp/unix/tls connections, the private libvirtd).
//! - [`trace`]: the trace format (text and JSON only), [`replay`]: traces replayed against a server
//!   as runner cases.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod catalogue;
pub mod cli;
pub mod client;
/// Fuzz harnesses over this crate's parsers of untrusted input (only with `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod protocol_files;
pub mod proxy;
pub mod render;
pub mod replay;
pub mod report;
pub mod runner;
pub mod suite;
pub mod synth;
pub mod sys;
pub mod target;
pub mod trace;
pub mod wire;

pub use suite::Suite;
