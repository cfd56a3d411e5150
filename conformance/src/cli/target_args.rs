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
    /// --sasl-user and the password (--sasl-password-file, or $VIRTWIRE_SASL_PASSWORD).
    #[arg(long, value_name = "URI", requires_all = ["target", "sasl_user"])]
    pub sasl_uri: Option<String>,
    /// The SASL user --sasl-uri accepts.
    #[arg(long, value_name = "NAME", requires = "sasl_uri")]
    pub sasl_user: Option<String>,
    /// A file whose first line is the password of --sasl-user (or set $VIRTWIRE_SASL_PASSWORD).
    #[arg(
        long,
        value_name = "FILE",
        requires = "sasl_uri",
        conflicts_with = "sasl_password"
    )]
    pub sasl_password_file: Option<PathBuf>,
    /// Deprecated: the password on the command line, where `ps` shows it to every user of the
    /// machine (a warning is printed); use --sasl-password-file or $VIRTWIRE_SASL_PASSWORD.
    #[arg(long, value_name = "PASSWORD", requires = "sasl_uri")]
    pub sasl_password: Option<String>,
}

/// The environment variable that holds the SASL password (`--sasl-uri`).
pub const SASL_PASSWORD_ENV: &str = "VIRTWIRE_SASL_PASSWORD";

/// The SASL password, first found of: `--sasl-password-file` (its first line), `env` (the value of
/// [`SASL_PASSWORD_ENV`]), `--sasl-password` (with a warning on `warn`: argv is visible to `ps`).
pub(crate) fn sasl_password(
    file: Option<&std::path::Path>,
    env: Option<std::ffi::OsString>,
    flag: Option<&str>,
    warn: &mut dyn FnMut(&str),
) -> Result<String, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--sasl-password-file {}: {e}", path.display()))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(format!(
                "--sasl-password-file {}: the first line is empty",
                path.display()
            ));
        }
        return Ok(line.to_string());
    }
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return v
            .into_string()
            .map_err(|_| format!("${SASL_PASSWORD_ENV} is not UTF-8"));
    }
    if let Some(p) = flag {
        warn(&format!(
            "warning: --sasl-password puts the password in the command line, which `ps` shows to \
             every user of this machine; use --sasl-password-file FILE or ${SASL_PASSWORD_ENV}"
        ));
        return Ok(p.to_string());
    }
    Err(format!(
        "--sasl-uri needs a password: --sasl-password-file FILE or ${SASL_PASSWORD_ENV}"
    ))
}

impl TargetArgs {
    /// The suite's target: `uri`, or a private libvirtd (these options) when `None`. Fails when the
    /// SASL password cannot be read.
    pub fn spec(&self, uri: Option<&str>) -> Result<TargetSpec, String> {
        let sasl = match &self.sasl_uri {
            None => None,
            Some(u) => {
                let password = sasl_password(
                    self.sasl_password_file.as_deref(),
                    std::env::var_os(SASL_PASSWORD_ENV),
                    self.sasl_password.as_deref(),
                    &mut |w| super::say(format_args!("virtwire: {w}")),
                )?;
                Some((
                    u.clone(),
                    Credentials {
                        user: self.sasl_user.clone().unwrap_or_default(),
                        password,
                    },
                ))
            }
        };
        Ok(TargetSpec {
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
                sasl,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(
        file: Option<&std::path::Path>,
        env: Option<&str>,
        flag: Option<&str>,
    ) -> (Result<String, String>, Vec<String>) {
        let mut warned = Vec::new();
        let r = sasl_password(file, env.map(Into::into), flag, &mut |w| {
            warned.push(w.to_string())
        });
        (r, warned)
    }

    #[test]
    fn the_sasl_password_comes_from_a_file_or_the_environment_and_argv_warns() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\nignored\n").unwrap();
        assert_eq!(
            pw(Some(&f), Some("env"), Some("flag")),
            (Ok("s3cret".into()), vec![])
        );
        assert_eq!(
            pw(None, Some("from-env"), Some("flag")),
            (Ok("from-env".into()), vec![])
        );
        let (r, warned) = pw(None, None, Some("flag"));
        assert_eq!(r.as_deref(), Ok("flag"));
        assert!(warned[0].contains("`ps`"), "{warned:?}");
        let (r, _) = pw(None, Some(""), None);
        assert!(r.unwrap_err().contains("--sasl-password-file"));
        let (r, _) = pw(Some(&dir.path().join("absent")), None, None);
        assert!(r.unwrap_err().contains("absent"));
        std::fs::write(&f, "\n").unwrap();
        assert!(pw(Some(&f), None, None).0.unwrap_err().contains("empty"));
    }
}
