//! # virtwire-conformance
//!
//! The `virtwire` command line and what it is built from (map and import rules: conformance/README.md):
//!
//! - [`cli`]: one file per subcommand;
//! - [`capture`], [`net`], [`reassembly`]: capture files, link/IP/TCP headers and TCP reassembly,
//!   which feed [`wire`] only;
//! - [`wire`]: the only module that reads libvirt bytes (through `virtwire_protocol`): framing,
//!   judging each message, the record model and its JSON form;
//! - [`render`]: records as text or JSON lines;
//! - [`synth`]: synthetic captures for tests;
//! - [`trace`]: the trace format (text and JSON only), [`replay`]: traces replayed against a server
//!   as runner cases.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod catalogue;
pub mod cli;
pub mod net;
pub mod reassembly;
pub mod render;
pub mod replay;
pub mod runner;
pub mod synth;
pub mod trace;
pub mod wire;
