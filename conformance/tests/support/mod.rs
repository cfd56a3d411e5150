//! Shared by the integration tests: libvirt's schema, found the way the tools find it, in the two
//! places a test may rely on: `$VIRTWIRE_PROTOCOL_DIR` (when set and not empty), else the
//! repository's `.cache/libvirt-9.0.0` (`scripts/setup.sh --xdr-only`). The user's cache is not
//! searched: the tests pin libvirt 9.0.0.

#![allow(dead_code)] // each test binary uses its own part of the kit

use std::path::PathBuf;

use virtwire_conformance::protocol_files::PROTOCOL_DIR_ENV;
use virtwire_protocol::schema::Schema;

/// The schema, or why there is none (tests then skip what needs it, and say so).
pub fn schema() -> Result<Schema, String> {
    let dir = std::env::var_os(PROTOCOL_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0")
        });
    Schema::load_dir(&dir)
        .map_err(|e| format!("{e} (set {PROTOCOL_DIR_ENV}, or run scripts/setup.sh --xdr-only)"))
}

pub mod fake;
#[allow(unused_imports)]
pub use fake::*;
