//! `--protocol-dir DIR` / `--libvirt-version V`: which libvirt's `.x` files a subcommand that reads
//! bodies uses (decode, import, record, replay, check, schema). The search itself is
//! `protocol_files`.

use std::path::PathBuf;

use crate::protocol_files::Search;

/// The schema options shared by every subcommand that reads procedure bodies.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProtocolArgs {
    /// Directory with libvirt's .x protocol files (a libvirt source tree or git checkout, or a
    /// cache made by `virtwire fetch-protocol` / scripts/setup.sh). Default: $VIRTWIRE_PROTOCOL_DIR,
    /// else the newest libvirt-VERSION in ~/.cache/virtwire, else in the checkout's .cache.
    #[arg(long, value_name = "DIR", conflicts_with = "libvirt_version")]
    pub protocol_dir: Option<PathBuf>,
    /// The libvirt version whose .x files to use (11.3.0, or 11.3): libvirt-VERSION in
    /// ~/.cache/virtwire, else in the checkout's .cache (`virtwire fetch-protocol VERSION` gets
    /// them). Default: the newest present.
    #[arg(long, value_name = "VERSION")]
    pub libvirt_version: Option<String>,
}

impl ProtocolArgs {
    /// The standard search with these options.
    pub fn search(&self) -> Search {
        Search::standard(self.protocol_dir.as_deref()).with_version(self.libvirt_version.as_deref())
    }
}
