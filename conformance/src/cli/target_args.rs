//! The target options every subcommand that talks to a server shares (`check`, `replay`), and
//! turning them into the suite's [`TargetSpec`].

use std::path::PathBuf;
use std::time::Duration;

use crate::suite::TargetSpec;
use crate::target::{LibvirtdOptions, TlsFiles};

/// Options about reaching the target.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Longest wait for a connection, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = super::check_secs)]
    pub connect_timeout: Duration,
    /// The libvirtd binary to start when no TARGET is given (any build, e.g. a libvirt tree's
    /// build/src/libvirtd).
    #[arg(long, value_name = "PATH")]
    pub libvirtd: Option<PathBuf>,
    /// Leave the self-started libvirtd running at the end (its PID and how to stop it are printed).
    #[arg(long)]
    pub keep_libvirtd: bool,
    /// A test-driver world (XML) for the self-started libvirtd.
    #[arg(long, value_name = "FILE.xml")]
    pub world: Option<PathBuf>,
    /// TLS: the CA certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: the client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// TLS: the client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl TargetArgs {
    /// The suite's target: `uri`, or a private libvirtd (these options) when `None`.
    pub fn spec(&self, uri: Option<&str>) -> TargetSpec {
        TargetSpec {
            uri: uri.map(str::to_string),
            connect_timeout: Some(self.connect_timeout),
            tls: TlsFiles {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
            },
            libvirtd: LibvirtdOptions {
                binary: self.libvirtd.clone(),
                world: self.world.clone(),
                keep: self.keep_libvirtd,
                // A daemon unpacked into a private prefix (.cache/libvirtd-11.3.0) runs on its own
                // libraries.
                env: self
                    .libvirtd
                    .as_deref()
                    .map(crate::suite::prefix_env)
                    .unwrap_or_default(),
                ..LibvirtdOptions::default()
            },
        }
    }
}
