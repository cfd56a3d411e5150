//! # virtwire-conformance
//!
//! The `virtwire` command line and what it is built from: capture reading ([`capture`]: pcap and
//! pcapng files, link/IP/TCP headers, TCP reassembly), and the decoder of libvirt RPC traffic in
//! captures ([`decode`]) with its text and JSON output ([`render`]). All parsing of libvirt bytes goes
//! through `virtwire_protocol`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod decode;
pub mod render;
pub mod synth;
