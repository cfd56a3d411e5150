//! # virtwire-conformance
//!
//! The `virtwire` command line and what it is built from: capture reading ([`capture`]), link/IP/TCP
//! headers ([`net`]), TCP reassembly ([`reassembly`]), and the decoder of libvirt RPC traffic in
//! captures ([`decode`]) with its text and JSON output ([`render`]), and where the `.x` protocol
//! files are found ([`protocol_files`]). All parsing of libvirt bytes goes through
//! `virtwire_protocol`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod decode;
pub mod net;
pub mod protocol_files;
pub mod reassembly;
pub mod render;
pub mod synth;
