//! What every target shares: libvirt's schema, found and loaded once per process, and the limits
//! profiles the targets pick from.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::Limits;
use crate::schema::Schema;

/// libvirt's schema, loaded once per process from [`protocol_dir`]. Panics with what to do when
/// there is none: a fuzz run without the schema would test nothing.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        protocol_dir()
            .and_then(|dir| Schema::load_dir(&dir).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("fuzz harness: cannot load libvirt's .x files: {e}"))
    })
}

/// Where the harness reads libvirt's `.x` files: `$VIRTWIRE_PROTOCOL_DIR` (when set and not
/// empty); else `libvirt-protocol/` beside the fuzz binary (where `.clusterfuzzlite/build.sh` puts
/// them); else the repository's `.cache/libvirt-9.0.0` (`scripts/setup.sh --xdr-only`), or the
/// newest `.cache/libvirt-*` there (the harness is test code and may know the repository). The
/// error says where it looked and what to do.
pub fn protocol_dir() -> Result<PathBuf, String> {
    const ENV: &str = "VIRTWIRE_PROTOCOL_DIR";
    if let Some(d) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        return Ok(d.into());
    }
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("libvirt-protocol")));
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache");
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix("libvirt-")?;
            Some((
                v.split('.').map(|p| p.parse().unwrap_or(0)).collect(),
                e.path(),
            ))
        })
        .collect();
    versions.sort();
    let candidates: Vec<_> = beside_exe
        .into_iter()
        .chain([cache.join("libvirt-9.0.0")])
        .chain(versions.into_iter().rev().map(|(_, p)| p))
        .collect();
    candidates
        .iter()
        .find(|d| d.join("src/remote/remote_protocol.x").is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<_> = candidates.iter().map(|d| d.display().to_string()).collect();
            format!(
                "none in ${ENV} (unset) or {}: run scripts/setup.sh --xdr-only, or set {ENV} to a \
                 libvirt source tree",
                looked.join(", ")
            )
        })
}

/// Limits for fuzzing: index 0..=2 are the named profiles, 3 is a small custom profile whose edges a
/// fuzzer reaches with short inputs.
pub fn fuzz_limits(sel: u8) -> Limits {
    match sel % 4 {
        0 => Limits::LEGACY_256K,
        1 => Limits::DYNAMIC_16M,
        2 => Limits::CURRENT_32M,
        _ => Limits::builder()
            .message_max(1024)
            .stream_chunk(512)
            .string_max(64)
            .fds_max(4)
            .build()
            .expect("coherent limits"),
    }
}
