//! The target options every subcommand that talks to a server shares (`check`, `replay`), and
//! turning them into the suite's [`TargetSpec`].

use std::path::PathBuf;
use std::time::Duration;

use crate::runner::Credentials;
use crate::suite::{EndpointSpec, TargetSpec};
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
    /// With TARGET: the same daemon's read-only socket (security/readonly cases), e.g.
    /// qemu+unix:///system?socket=/run/libvirt/libvirt-sock-ro.
    #[arg(long, value_name = "URI", requires = "target")]
    pub readonly_uri: Option<String>,
    /// With TARGET: its admin socket (programs/admin cases), e.g. libvirtd:///system.
    #[arg(long, value_name = "URI", requires = "target")]
    pub admin_uri: Option<String>,
    /// With TARGET: a virtlogd's socket (programs/log cases).
    #[arg(long, value_name = "PATH", requires = "target")]
    pub virtlogd_socket: Option<PathBuf>,
    /// With TARGET: a virtlockd's socket (programs/lock cases).
    #[arg(long, value_name = "PATH", requires = "target")]
    pub virtlockd_socket: Option<PathBuf>,
    /// With TARGET: a libvirtd URI whose transport requires SASL (security/sasl cases); needs
    /// --sasl-user and --sasl-password.
    #[arg(long, value_name = "URI", requires_all = ["target", "sasl_user", "sasl_password"])]
    pub sasl_uri: Option<String>,
    /// The SASL user --sasl-uri accepts.
    #[arg(long, value_name = "NAME", requires = "sasl_uri")]
    pub sasl_user: Option<String>,
    /// Its password.
    #[arg(long, value_name = "PASSWORD", requires = "sasl_uri")]
    pub sasl_password: Option<String>,
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
            endpoints: EndpointSpec {
                readonly: self.readonly_uri.clone(),
                admin: self.admin_uri.clone(),
                virtlogd: self.virtlogd_socket.clone(),
                virtlockd: self.virtlockd_socket.clone(),
                sasl: self.sasl_uri.clone().map(|u| {
                    (
                        u,
                        Credentials {
                            user: self.sasl_user.clone().unwrap_or_default(),
                            password: self.sasl_password.clone().unwrap_or_default(),
                        },
                    )
                }),
            },
        }
    }
}
