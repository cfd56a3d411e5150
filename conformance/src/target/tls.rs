//! TLS through rustls, with libvirt's credential layout and its meaning of `no_verify`.
//!
//! Where the files are (libvirt src/rpc/virnettlsconfig.c, virnettlscontext.c
//! `virNetTLSContextLocateCredentials`):
//!
//! - `?pkipath=DIR`: `DIR/cacert.pem`, `DIR/clientcert.pem`, `DIR/clientkey.pem`, used whether or
//!   not they exist;
//! - else, when not root, `~/.pki/libvirt/cacert.pem` and the pair `~/.pki/libvirt/clientcert.pem`
//!   + `clientkey.pem`, each falling back to the system file when missing;
//! - the system files: `/etc/pki/CA/cacert.pem`, `/etc/pki/libvirt/clientcert.pem`,
//!   `/etc/pki/libvirt/private/clientkey.pem`.
//!
//! `--ca`, `--cert`, `--key` ([`TlsFiles`]) override all of that. The CA certificate is required
//! (unless `no_verify`); the client certificate and key are optional, as in libvirt: without them
//! the handshake goes on and a server that requires one says no.
//!
//! `no_verify=1` (libvirt: "disables client checks of the server's certificate") keeps checking
//! the handshake's signatures but accepts any server certificate, with a loud warning.
//!
//! After the handshake a libvirt server sends one byte, 1, once its own checks of the client
//! (certificate, `tls_allowed_dn_list`) passed (virNetClientSetTLSSession): see
//! [`super::ConnectOptions::tls_confirmation`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::error::TargetError;
use super::uri::TargetUri;

/// The system CA certificate libvirt's client uses (`LIBVIRT_CACERT`).
pub const SYSTEM_CACERT: &str = "/etc/pki/CA/cacert.pem";
/// The system client certificate (`LIBVIRT_CLIENTCERT`).
pub const SYSTEM_CLIENTCERT: &str = "/etc/pki/libvirt/clientcert.pem";
/// The system client key (`LIBVIRT_CLIENTKEY`).
pub const SYSTEM_CLIENTKEY: &str = "/etc/pki/libvirt/private/clientkey.pem";

/// TLS files given on the command line (`--ca`, `--cert`, `--key`); each overrides libvirt's
/// location for that file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s), PEM.
    pub ca: Option<PathBuf>,
    /// Client certificate (chain), PEM.
    pub cert: Option<PathBuf>,
    /// Client private key, PEM (PKCS#1, PKCS#8 or SEC1).
    pub key: Option<PathBuf>,
}

/// Where the credentials for one connection come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    pub ca: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Who we are, for the user PKI directory.
pub(crate) struct PkiEnv {
    pub root: bool,
    pub home: Option<PathBuf>,
}

impl PkiEnv {
    pub(crate) fn from_process() -> PkiEnv {
        PkiEnv {
            root: nix::unistd::geteuid().is_root(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

const HOW: &str = "pass --ca FILE (and --cert FILE --key FILE for a client certificate), or \
                   ?pkipath=DIR in the URI for DIR/cacert.pem, DIR/clientcert.pem, DIR/clientkey.pem";

/// Find the CA and client credentials libvirt would use for this URI.
pub(crate) fn locate(
    uri: &TargetUri,
    files: &TlsFiles,
    env: &PkiEnv,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Located, TargetError> {
    let user_dir = (!env.root)
        .then(|| env.home.as_ref().map(|h| h.join(".pki/libvirt")))
        .flatten();
    let (ca_default, cert_default, key_default) = if let Some(dir) = uri.pkipath() {
        (
            dir.join("cacert.pem"),
            dir.join("clientcert.pem"),
            dir.join("clientkey.pem"),
        )
    } else {
        let mut ca = PathBuf::from(SYSTEM_CACERT);
        let mut pair = (
            PathBuf::from(SYSTEM_CLIENTCERT),
            PathBuf::from(SYSTEM_CLIENTKEY),
        );
        if let Some(dir) = &user_dir {
            let user_ca = dir.join("cacert.pem");
            if exists(&user_ca) {
                ca = user_ca;
            }
            let user_pair = (dir.join("clientcert.pem"), dir.join("clientkey.pem"));
            if exists(&user_pair.0) && exists(&user_pair.1) {
                pair = user_pair;
            }
        }
        (ca, pair.0, pair.1)
    };

    let missing = |what: &'static str, path: &Path| TargetError::TlsFile {
        what,
        path: path.to_owned(),
        message: "no such file".into(),
        hint: HOW.into(),
    };

    let ca = match &files.ca {
        Some(p) if !exists(p) => return Err(missing("CA certificate", p)),
        Some(p) => Some(p.clone()),
        None if exists(&ca_default) => Some(ca_default),
        // no_verify does not need a CA; libvirt would still insist on the file.
        None if uri.no_verify() => None,
        None => return Err(missing("CA certificate", &ca_default)),
    };

    let client = match (&files.cert, &files.key) {
        (Some(c), Some(k)) => {
            for (what, p) in [("client certificate", c), ("client private key", k)] {
                if !exists(p) {
                    return Err(missing(what, p));
                }
            }
            Some((c.clone(), k.clone()))
        }
        (Some(c), None) => {
            return Err(TargetError::TlsFile {
                what: "client certificate",
                path: c.clone(),
                message: "given without its key".into(),
                hint: "pass --key FILE with --cert FILE".into(),
            });
        }
        (None, Some(k)) => {
            return Err(TargetError::TlsFile {
                what: "client private key",
                path: k.clone(),
                message: "given without its certificate".into(),
                hint: "pass --cert FILE with --key FILE".into(),
            });
        }
        (None, None) => match (exists(&cert_default), exists(&key_default)) {
            (true, true) => Some((cert_default, key_default)),
            (false, false) => None,
            (true, false) => return Err(missing("client private key", &key_default)),
            (false, true) => return Err(missing("client certificate", &cert_default)),
        },
    };
    Ok(Located { ca, client })
}

/// A ready rustls client configuration and what went into it.
pub(crate) struct Prepared {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub located: Located,
    /// Set when `no_verify` is on: the warning to show.
    pub warning: Option<String>,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(what: &'static str, path: &Path, message: impl fmt::Display) -> TargetError {
    TargetError::TlsFile {
        what,
        path: path.to_owned(),
        message: message.to_string(),
        hint: HOW.into(),
    }
}

pub(crate) fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TargetError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path, pem_message(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, pem_message(e)))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no PEM CERTIFICATE block in it"));
    }
    Ok(certs)
}

pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TargetError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let m = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key block (RSA, PKCS#8 or EC) in it".to_owned()
            }
            e => pem_message(e),
        };
        file_error("client private key", path, m)
    })
}

fn pem_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        e => format!("not usable PEM: {e}"),
    }
}

/// Build the rustls configuration for this URI.
pub(crate) fn prepare(uri: &TargetUri, files: &TlsFiles) -> Result<Prepared, TargetError> {
    let located = locate(uri, files, &PkiEnv::from_process(), &|p: &Path| p.is_file())?;
    let provider = provider();
    let host = uri.connect_host();
    let server_name = ServerName::try_from(host.to_owned()).map_err(|e| TargetError::Tls {
        target: format!("tls {}", uri.address()),
        message: format!("\"{host}\" cannot be checked against a certificate: {e}"),
        hint: String::new(),
    })?;

    let mut roots = RootCertStore::empty();
    if let Some(ca) = &located.ca {
        for c in load_certs("CA certificate", ca)? {
            roots
                .add(c)
                .map_err(|e| file_error("CA certificate", ca, format!("not a usable CA: {e}")))?;
        }
    }
    let webpki = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TargetError::Tls {
                    target: format!("tls {}", uri.address()),
                    message: format!("cannot build the certificate verifier: {e}"),
                    hint: String::new(),
                })?,
        )
    };

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Tls {
            target: format!("tls {}", uri.address()),
            message: e.to_string(),
            hint: String::new(),
        })?;
    let (builder, warning) = if uri.no_verify() {
        let warning = format!(
            "WARNING: no_verify is set in {uri}: the server's certificate is NOT checked{}; \
             anyone in the path can pose as the server",
            match &located.ca {
                Some(ca) => format!(" (failures against {} are ignored)", ca.display()),
                None => String::new(),
            }
        );
        let v = Arc::new(NoVerify {
            inner: webpki,
            provider: provider.clone(),
        });
        (
            builder.dangerous().with_custom_certificate_verifier(v),
            Some(warning),
        )
    } else {
        let Some(v) = webpki else {
            // locate() insists on a CA unless no_verify.
            return Err(file_error(
                "CA certificate",
                located.ca.as_deref().unwrap_or(Path::new(SYSTEM_CACERT)),
                "holds no certificate",
            ));
        };
        (builder.with_webpki_verifier(v), None)
    };
    let config = match &located.client {
        Some((cert, key)) => {
            let chain = load_certs("client certificate", cert)?;
            let key_der = load_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TargetError::TlsFile {
                    what: "client private key",
                    path: key.clone(),
                    message: format!("does not go with {}: {e}", cert.display()),
                    hint: HOW.into(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Prepared {
        config: Arc::new(config),
        server_name,
        located,
        warning,
    })
}

/// A short explanation of a failed handshake, for [`TargetError::Tls`]'s hint.
pub(crate) fn handshake_hint(e: &rustls::Error, host: &str, ca: Option<&Path>) -> String {
    use rustls::Error as E;
    let ca = ca.map_or_else(|| "the CA".to_owned(), |p| p.display().to_string());
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer)
        | E::InvalidCertificate(CertificateError::BadSignature) => format!(
            "the server's certificate is not signed by {ca}: pass the right --ca or ?pkipath=DIR, \
             or ?no_verify=1 to skip the check"
        ),
        E::InvalidCertificate(CertificateError::NotValidForName)
        | E::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => format!(
            "the server's certificate does not name \"{host}\" in subjectAltName (rustls ignores \
             the CN; libvirt's certificate guide adds dns_name / ip_address): connect by a name \
             the certificate holds, or ?no_verify=1"
        ),
        E::InvalidCertificate(CertificateError::Expired)
        | E::InvalidCertificate(CertificateError::ExpiredContext { .. })
        | E::InvalidCertificate(CertificateError::NotValidYet)
        | E::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            "the server's certificate is outside its validity period (check both clocks)".into()
        }
        E::AlertReceived(_) => "the server refused the handshake: it may want a client \
                                certificate (--cert/--key, ?pkipath=DIR) signed by a CA it trusts"
            .into(),
        _ => String::new(),
    }
}

/// `no_verify`: accept the server's certificate whatever it is, but still check that the peer
/// holds its key (the handshake signatures).
#[derive(Debug)]
struct NoVerify {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // libvirt: "Ignoring bad certificate at user request"; the result is not used.
        if let Some(v) = &self.inner {
            let _ = v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> TargetUri {
        TargetUri::parse(s).unwrap()
    }

    #[test]
    fn pkipath_layout() {
        let l = locate(
            &uri("qemu+tls://h/system?pkipath=/pki"),
            &TlsFiles::default(),
            &PkiEnv {
                root: true,
                home: None,
            },
            &|_| true,
        )
        .unwrap();
        assert_eq!(l.ca.as_deref(), Some(Path::new("/pki/cacert.pem")));
        assert_eq!(
            l.client,
            Some((
                PathBuf::from("/pki/clientcert.pem"),
                PathBuf::from("/pki/clientkey.pem")
            ))
        );
    }

    #[test]
    fn system_and_user_layout() {
        let root = PkiEnv {
            root: true,
            home: Some("/home/u".into()),
        };
        let l = locate(
            &uri("qemu://h/system"),
            &TlsFiles::default(),
            &root,
            &|_| true,
        )
        .unwrap();
        assert_eq!(l.ca.as_deref(), Some(Path::new(SYSTEM_CACERT)));
        assert_eq!(
            l.client,
            Some((SYSTEM_CLIENTCERT.into(), SYSTEM_CLIENTKEY.into()))
        );
        let user = PkiEnv {
            root: false,
            home: Some("/home/u".into()),
        };
        // The user's CA exists, the user's key does not: the pair falls back as a pair.
        let l = locate(&uri("qemu://h/system"), &TlsFiles::default(), &user, &|p| {
            p != Path::new("/home/u/.pki/libvirt/clientkey.pem")
        })
        .unwrap();
        assert_eq!(
            l.ca.as_deref(),
            Some(Path::new("/home/u/.pki/libvirt/cacert.pem"))
        );
        assert_eq!(
            l.client,
            Some((SYSTEM_CLIENTCERT.into(), SYSTEM_CLIENTKEY.into()))
        );
    }

    #[test]
    fn missing_files_are_named_with_the_way_out() {
        let env = PkiEnv {
            root: true,
            home: None,
        };
        let e = locate(&uri("qemu://h/system"), &TlsFiles::default(), &env, &|_| {
            false
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/pki/CA/cacert.pem"), "{e}");
        assert!(e.contains("--ca FILE") && e.contains("pkipath"), "{e}");
        // No client pair at all is fine (libvirt allows it); half a pair is not.
        let l = locate(&uri("qemu://h/system"), &TlsFiles::default(), &env, &|p| {
            p == Path::new(SYSTEM_CACERT)
        })
        .unwrap();
        assert_eq!(l.client, None);
        let e = locate(&uri("qemu://h/system"), &TlsFiles::default(), &env, &|p| {
            p != Path::new(SYSTEM_CLIENTKEY)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains(SYSTEM_CLIENTKEY), "{e}");
        let files = TlsFiles {
            cert: Some("/c.pem".into()),
            ..TlsFiles::default()
        };
        let e = locate(&uri("qemu://h/system"), &files, &env, &|_| true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--key"), "{e}");
    }

    #[test]
    fn no_verify_needs_no_ca() {
        let env = PkiEnv {
            root: true,
            home: None,
        };
        let l = locate(
            &uri("qemu://h/system?no_verify=1"),
            &TlsFiles::default(),
            &env,
            &|_| false,
        )
        .unwrap();
        assert_eq!(
            l,
            Located {
                ca: None,
                client: None
            }
        );
    }
}
