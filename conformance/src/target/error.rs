//! The one error type of target/: everything that can go wrong while reaching a server or running
//! the private libvirtd. Each message says what failed and where (the position in a URI, a file,
//! an address, the timeout that ran out), and, when there is one, what the user can do about it.
//! For the runner every variant is a harness error (exit code 3), never a verdict on the server.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a target could not be reached, or the private libvirtd could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// A connection URI that does not parse, or asks for something virtwire does not do.
    #[error("invalid target URI: {message} (at byte {at})\n  {uri}\n  {}^", " ".repeat(caret_column(uri, *at)))]
    Uri {
        /// The URI as given.
        uri: String,
        /// Byte offset in `uri` where the problem is.
        at: usize,
        /// What is wrong there.
        message: String,
    },

    /// The host name did not resolve.
    #[error("cannot resolve {host}:{port}: {message}")]
    Resolve {
        /// Host as written in the URI.
        host: String,
        /// Port that was to be used.
        port: u16,
        /// The resolver's answer.
        message: String,
    },

    /// No resolved address accepted a TCP connection.
    #[error("cannot connect to {target}: {detail}")]
    Connect {
        /// What was being reached, e.g. `tcp localhost:16509`.
        target: String,
        /// Every address tried and why it failed.
        detail: String,
    },

    /// The connect deadline (`--connect-timeout`) ran out.
    #[error(
        "cannot connect to {target}: no answer within the connect timeout of {} ({stage}); \
         raise it with --connect-timeout",
        fmt_duration(*timeout)
    )]
    ConnectTimeout {
        /// What was being reached.
        target: String,
        /// The deadline that ran out.
        timeout: Duration,
        /// Where it ran out: resolving, connecting to an address, the TLS handshake…
        stage: String,
    },

    /// A unix socket could not be connected to.
    #[error("cannot connect to unix socket {}: {source}{}", path.display(), hint_suffix(hint))]
    Unix {
        /// The socket path.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: io::Error,
        /// What usually causes this.
        hint: String,
    },

    /// A TLS credential file that is missing or unreadable.
    #[error("cannot use the {what} {}: {message}; {hint}", path.display())]
    TlsFile {
        /// Which credential: "CA certificate", "client certificate", "client private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
        /// How to point virtwire at the right file.
        hint: String,
    },

    /// The TLS handshake with the server failed.
    #[error("TLS handshake with {target} failed: {message}{}", hint_suffix(hint))]
    Tls {
        /// What was being reached.
        target: String,
        /// rustls' or the socket's error.
        message: String,
        /// What usually causes this.
        hint: String,
    },

    /// libvirt's TLS confirmation byte: after the handshake a libvirt server sends one byte, 1
    /// when its checks of our certificate and address passed (virNetClientSetTLSSession).
    #[error(
        "server verification (of our certificate or IP address) failed on {target}: {got}; \
         the server rejected our client certificate ({client_cert}) or our address \
         (libvirtd.conf: tls_allowed_dn_list, tls_no_verify_certificate)"
    )]
    TlsConfirmation {
        /// What was being reached.
        target: String,
        /// What came instead of the byte 1.
        got: String,
        /// The client certificate offered, or "none".
        client_cert: String,
    },

    /// Reading or writing on an established connection, or another system call, failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The system's answer.
        #[source]
        source: io::Error,
    },

    /// No libvirtd binary to start.
    #[error(
        "libvirtd not found ({looked}); install it with \
         `apt-get install --no-install-recommends libvirt-daemon` (Debian/Ubuntu), \
         or pass --libvirtd PATH"
    )]
    LibvirtdNotFound {
        /// Where it was looked for.
        looked: String,
    },

    /// A helper program the private libvirtd needs (e.g. coreutils `timeout`) is missing.
    #[error("{tool} not found on PATH: {why}")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// What it is needed for.
        why: &'static str,
    },

    /// The custom world file (`--world`) is not usable.
    #[error("cannot use the world file {}: {message}", path.display())]
    World {
        /// The file as given.
        path: PathBuf,
        /// Why.
        message: String,
    },

    /// The private libvirtd exited, or never answered, during start or restart.
    #[error("{message}{}", log_suffix(log))]
    Libvirtd {
        /// What happened (exit status, timeout with the probe's last answer, …).
        message: String,
        /// The end of the daemon's log and standard error, when there is any.
        log: String,
    },

    /// The process-wide SIGINT/SIGTERM handler could not be installed.
    #[error(
        "cannot install the SIGINT/SIGTERM handler that stops the private libvirtd: {message}; \
         an application with its own handler should turn this off (LibvirtdOptions::stop_on_signals) \
         and call target::stop_all_daemons() from it"
    )]
    SignalHandler {
        /// ctrlc's error.
        message: String,
    },
}

impl TargetError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TargetError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The column of byte offset `at` when `uri` is printed (characters, not bytes).
fn caret_column(uri: &str, at: usize) -> usize {
    let at = at.min(uri.len());
    uri.char_indices().take_while(|(i, _)| *i < at).count()
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

fn log_suffix(log: &str) -> String {
    if log.trim().is_empty() {
        return String::new();
    }
    let mut s = String::from("\n--- libvirtd log (end) ---\n");
    for line in log.trim_end().lines() {
        let _ = writeln!(s, "  {line}");
    }
    s.push_str("---");
    s
}

/// `1.5 s`, `250 ms`, `10 s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_error_points_at_the_byte() {
        let e = TargetError::Uri {
            uri: "qemu+ssh://h/system".into(),
            at: 5,
            message: "unsupported".into(),
        };
        let text = e.to_string();
        assert!(
            text.ends_with("\n  qemu+ssh://h/system\n       ^"),
            "{text}"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(fmt_duration(Duration::from_secs(10)), "10 s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
