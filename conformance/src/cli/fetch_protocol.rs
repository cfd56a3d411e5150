//! `virtwire fetch-protocol [VERSION]`: libvirt's `.x` files of a release into the user cache
//! (`~/.cache/virtwire/libvirt-VERSION`), where every subcommand finds them. The download, the
//! checksum and the unpacking are `protocol_files::fetch`.
//!
//! Exit status: 0 fetched (or already there); 2 unknown version, download, checksum or unpack error.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::protocol_files::{self, KNOWN_RELEASES};

/// `fetch-protocol --help`'s closing text.
pub const HELP: &str = "\
The upstream release tarball is downloaded from Debian's archive (deb.debian.org, where it is the \
source package's orig tarball), checked against the SHA-256 virtwire pins for that release (the \
value Debian's signed Sources index lists), and only the .x files are unpacked. Needs curl, \
sha256sum and tar. For a version virtwire does not know, point --protocol-dir at its source tree \
(a release tarball or a git checkout of libvirt).";

/// `virtwire fetch-protocol`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The release (9.0.0, 11.3.0, or a prefix such as 11.3). Default: the newest known.
    #[arg(value_name = "VERSION")]
    version: Option<String>,
    /// Cache directory to unpack into (default: $XDG_CACHE_HOME/virtwire, else ~/.cache/virtwire).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// List the known releases and exit.
    #[arg(long)]
    list: bool,
}

/// Run `virtwire fetch-protocol`; the exit status.
pub fn run(args: Args) -> ExitCode {
    if args.list {
        for r in KNOWN_RELEASES {
            println!(
                "{:<8} {} sha256 {} ({})",
                r.version, r.url, r.sha256, r.suite
            );
        }
        return ExitCode::SUCCESS;
    }
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| KNOWN_RELEASES[KNOWN_RELEASES.len() - 1].version.to_string());
    let release = match protocol_files::release(&version) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("virtwire fetch-protocol: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(cache) = args.cache.clone().or_else(protocol_files::user_cache) else {
        eprintln!(
            "virtwire fetch-protocol: no user cache ($XDG_CACHE_HOME and $HOME unset); give --cache DIR"
        );
        return ExitCode::from(2);
    };
    eprintln!(
        "virtwire fetch-protocol: libvirt {} from {}",
        release.version, release.url
    );
    match protocol_files::fetch(release, &cache) {
        Ok(dir) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virtwire fetch-protocol: {e}");
            ExitCode::from(2)
        }
    }
}
