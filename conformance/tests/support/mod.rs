//! Shared by the integration tests: libvirt's schema, found the way the tools find it, in the two
//! places a test may rely on: `$VIRTWIRE_PROTOCOL_DIR` (when set and not empty), else the
//! repository's `.cache/libvirt-9.0.0` (`scripts/setup.sh --xdr-only`). The user's cache is not
//! searched: the tests pin libvirt 9.0.0. Files missing is a skip (a failure under
//! `VIRTWIRE_REQUIRE_ALL=1`, see [`skip`]); files that do not load are always a failure.

#![allow(dead_code)] // each test binary uses its own part of the kit

use std::path::PathBuf;

use virtwire_conformance::protocol_files::PROTOCOL_DIR_ENV;
use virtwire_protocol::schema::Schema;

/// The libvirt tree the tests read: `$VIRTWIRE_PROTOCOL_DIR` when set and not empty, else the
/// repository's `.cache/libvirt-9.0.0`.
pub fn protocol_dir() -> PathBuf {
    std::env::var_os(PROTOCOL_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0")
        })
}

/// The schema, or why there is none: `Err` only when the .x files are not installed (no
/// `src/remote/remote_protocol.x` in [`protocol_dir`]). Files that are there but do not load (a
/// parser regression, a damaged file) panic: that is a failure, never a skip.
pub fn schema() -> Result<Schema, String> {
    let dir = protocol_dir();
    if !dir.join("src/remote/remote_protocol.x").is_file() {
        return Err(format!(
            "libvirt .x files not installed in {} (set {PROTOCOL_DIR_ENV}, or run \
             scripts/setup.sh --xdr-only)",
            dir.display()
        ));
    }
    Ok(Schema::load_dir(&dir)
        .unwrap_or_else(|e| panic!("the libvirt .x files in {} do not load: {e}", dir.display())))
}

/// Is `VIRTWIRE_REQUIRE_ALL=1` set (scripts/test.sh and CI)? Then every skip is a failure.
pub fn require_all() -> bool {
    std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// A test (or part of one) that cannot run here: print `SKIPPED: why`, or fail naming what is
/// missing when `VIRTWIRE_REQUIRE_ALL=1`.
pub fn skip(why: &str) {
    assert!(
        !require_all(),
        "VIRTWIRE_REQUIRE_ALL=1 but {why} (this check would have been skipped)"
    );
    eprintln!("SKIPPED: {why}");
}

/// The schema, or `None` after [`skip`] (a failure under `VIRTWIRE_REQUIRE_ALL=1`); `what` names
/// the checks that are skipped.
pub fn schema_or_skip(what: &str) -> Option<Schema> {
    match schema() {
        Ok(s) => Some(s),
        Err(e) => {
            skip(&format!("{what}: no schema: {e}"));
            None
        }
    }
}

pub mod fake;
#[allow(unused_imports)]
pub use fake::*;
