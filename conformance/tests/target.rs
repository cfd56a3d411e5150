//! target/: URIs, connections (tcp, unix, tls against an in-process rustls server) and the private
//! libvirtd (started for real; skipped with a reason when libvirtd or virsh is missing, unless
//! VIRTWIRE_REQUIRE_ALL=1, where a missing tool fails the test).
//!
//! Everything listens on loopback only; every daemon started here has a 120 s lifetime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use virtwire_conformance::target::{
    self, ConnectOptions, Libvirtd, LibvirtdOptions, TargetError, TargetUri, TlsFiles, Transport,
    connect, probe_connect,
};

// ---------------------------------------------------------------------------------------------
// helpers

fn opts(timeout_ms: u64) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_millis(timeout_ms),
        io_timeout: Some(Duration::from_secs(10)),
        ..ConnectOptions::default()
    }
}

fn uri(s: &str) -> TargetUri {
    TargetUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("virtwire-target-test.")
        .tempdir()
        .unwrap()
}

/// A TCP echo server on 127.0.0.1 for one connection.
fn echo_server() -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    (port, h)
}

/// A loopback TCP listener with a backlog of 0, already holding one unaccepted connection:
/// further SYNs are dropped, so a connect waits until its deadline.
fn full_tcp_listener() -> (u16, TcpListener, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // listen(2) again on a listening socket sets its backlog (Linux).
    socket::listen(&l, Backlog::new(0).unwrap()).unwrap();
    let port = l.local_addr().unwrap().port();
    let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (port, l, first)
}

fn tool_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Whether the libvirt tools are here. Missing: skip with a reason, or fail under
/// VIRTWIRE_REQUIRE_ALL=1.
fn need_libvirt(test: &str) -> bool {
    let mut missing = Vec::new();
    if target::find_libvirtd(None).is_err() {
        missing.push("libvirtd (apt-get install --no-install-recommends libvirt-daemon)");
    }
    if !tool_on_path("virsh") {
        missing.push("virsh (apt-get install --no-install-recommends libvirt-clients)");
    }
    if !tool_on_path("timeout") {
        missing.push("timeout (coreutils)");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("VIRTWIRE_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!(
            "{test}: VIRTWIRE_REQUIRE_ALL=1 but missing: {}",
            missing.join(", ")
        );
    }
    // Straight to stderr: the harness would hide eprintln! output of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: missing {}",
        missing.join(", ")
    );
    false
}

fn virsh(uri: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("timeout")
        .args(["10", "virsh", "-q", "-c", uri])
        .args(args)
        .env_remove("LIBVIRT_DEFAULT_URI")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("virsh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "virsh -c {uri} {}: {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The readiness probe for these tests: `virsh -c URI uri` (a real RPC round trip).
fn virsh_probe(u: &TargetUri, _: &ConnectOptions) -> Result<(), String> {
    virsh(u.as_str(), &["uri"]).map(drop)
}

fn daemon_opts() -> LibvirtdOptions {
    LibvirtdOptions {
        lifetime: Some(Duration::from_secs(120)),
        ..LibvirtdOptions::default()
    }
}

/// Gone, or a zombie nobody reaped yet (orphans go to PID 1).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            .is_some_and(|c| c == 'Z' || c == 'X'),
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if gone(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    gone(pid)
}

// ---------------------------------------------------------------------------------------------
// URIs

#[test]
fn uri_table() {
    // uri, transport, host to connect to, port, socket (None: not unix), CONNECT_OPEN name, admin
    type Row = (
        &'static str,
        Transport,
        &'static str,
        Option<u16>,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );
    let rows: &[Row] = &[
        (
            "test+tcp://127.0.0.1:16600/default",
            Transport::Tcp,
            "127.0.0.1",
            Some(16600),
            None,
            Some("test:///default"),
            false,
        ),
        (
            "qemu+tcp://host/system",
            Transport::Tcp,
            "host",
            Some(16509),
            None,
            Some("qemu:///system"),
            false,
        ),
        (
            "qemu+tls://host/system",
            Transport::Tls,
            "host",
            Some(16514),
            None,
            Some("qemu:///system"),
            false,
        ),
        (
            "qemu://host/system",
            Transport::Tls,
            "host",
            Some(16514),
            None,
            Some("qemu:///system"),
            false,
        ),
        (
            "qemu+tcp://[::1]:1234/system",
            Transport::Tcp,
            "::1",
            Some(1234),
            None,
            Some("qemu:///system"),
            false,
        ),
        (
            "qemu+tcp://root@h/system?foo=bar",
            Transport::Tcp,
            "h",
            Some(16509),
            None,
            Some("qemu:///system?foo=bar"),
            false,
        ),
        (
            "test+unix:///default?socket=/tmp/s/libvirt-sock",
            Transport::Unix,
            "localhost",
            None,
            Some("/tmp/s/libvirt-sock"),
            Some("test:///default"),
            false,
        ),
        (
            "qemu+tcp://h/system?name=qemu:///embed",
            Transport::Tcp,
            "h",
            Some(16509),
            None,
            Some("qemu:///embed"),
            false,
        ),
        (
            "libvirtd:///system?socket=/tmp/s/libvirt-admin-sock",
            Transport::Unix,
            "localhost",
            None,
            Some("/tmp/s/libvirt-admin-sock"),
            None,
            true,
        ),
        (
            "test+tcp://127.0.0.1:1/tmp/world.xml",
            Transport::Tcp,
            "127.0.0.1",
            Some(1),
            None,
            Some("test:///tmp/world.xml"),
            false,
        ),
    ];
    for &(s, transport, host, port, sock, name, admin) in rows {
        let u = uri(s);
        assert_eq!(u.transport(), transport, "{s}");
        assert_eq!(u.connect_host(), host, "{s}");
        assert_eq!(u.port(), port, "{s}");
        assert_eq!(u.socket_path().as_deref(), sock.map(Path::new), "{s}");
        assert_eq!(u.open_name().as_deref(), name, "{s}");
        assert_eq!(u.is_admin(), admin, "{s}");
        assert_eq!(u.to_string(), s);
    }
    // libvirt's default sockets (as root; this suite's CI runs as root, otherwise session paths).
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            uri("qemu+unix:///system").socket_path().unwrap(),
            Path::new("/var/run/libvirt/libvirt-sock")
        );
        assert_eq!(
            uri("qemu+unix:///system?readonly").socket_path().unwrap(),
            Path::new("/var/run/libvirt/libvirt-sock-ro")
        );
        assert_eq!(
            uri("libvirtd:///system").socket_path().unwrap(),
            Path::new("/run/libvirt/libvirt-admin-sock")
        );
    }
}

#[test]
fn uri_errors_say_what_and_where() {
    for (s, at, says) in [
        ("qemu+ssh://host/system", 5, "tcp, tls and unix"),
        ("qemu+libssh2://host/system", 5, "tcp, tls and unix"),
        ("qemu+ext:///system", 5, "tcp, tls and unix"),
        ("qemu+carrier-pigeon://h/system", 5, "unknown transport"),
        ("test+tcp://h:70000/default", 13, "not a port"),
        ("test+unix://h/default", 12, "cannot name a host"),
        ("qemu", 0, "no scheme"),
        ("test+tcp://h/default?no_verify=yes", 31, "takes a number"),
    ] {
        let e = TargetUri::parse(s).unwrap_err();
        match &e {
            TargetError::Uri { at: a, message, .. } => {
                assert_eq!(*a, at, "{s}: {e}");
                assert!(message.contains(says), "{s}: {e}");
            }
            other => panic!("{s}: {other:?}"),
        }
        // The message shows the URI and points at the byte.
        let text = e.to_string();
        assert!(text.contains(s) && text.contains('^'), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// TCP and unix

#[test]
fn handles_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<target::Connection>();
    send_sync::<Libvirtd>();
    send_sync::<TargetError>();
}

#[test]
fn tcp_round_trip_split_and_timeouts() {
    let (port, server) = echo_server();
    let u = uri(&format!("test+tcp://127.0.0.1:{port}/default"));
    let mut c = connect(&u, &opts(2000)).unwrap();
    assert_eq!(c.description(), format!("tcp 127.0.0.1:{port}"));
    assert_eq!(c.transport(), Transport::Tcp);
    // A reader thread on a clone, the writer here.
    let mut r = c.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; 100_000];
        r.read_exact(&mut got).unwrap();
        got
    });
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(&data).unwrap();
    assert_eq!(reader.join().unwrap(), data);
    // A read with nothing to read ends at its deadline.
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t = Instant::now();
    let e = c.read(&mut [0u8; 4]).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    assert!(t.elapsed() < Duration::from_secs(2));
    c.shutdown(Shutdown::Both).unwrap();
    server.join().unwrap();
}

#[test]
fn tcp_by_name_tries_every_address() {
    // localhost may resolve to ::1 first, where nothing listens: the next address is tried.
    let (port, server) = echo_server();
    let mut c = connect(
        &uri(&format!("test+tcp://localhost:{port}/default")),
        &opts(3000),
    )
    .unwrap();
    assert!(
        c.description()
            .starts_with(&format!("tcp localhost:{port}")),
        "{}",
        c.description()
    );
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    drop(c);
    server.join().unwrap();
}

#[test]
fn tcp_refused_is_quick_and_named() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Instant::now();
    let e = connect(
        &uri(&format!("test+tcp://127.0.0.1:{port}/default")),
        &opts(5000),
    )
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let text = e.to_string();
    assert!(matches!(e, TargetError::Connect { .. }), "{e:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"),
        "{text}"
    );
}

#[test]
fn tcp_connect_timeout_on_a_full_backlog() {
    let (port, _listener, _first) = full_tcp_listener();
    let t = Instant::now();
    let e = connect(
        &uri(&format!("test+tcp://127.0.0.1:{port}/default")),
        &opts(400),
    )
    .unwrap_err();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let text = e.to_string();
    assert!(matches!(e, TargetError::ConnectTimeout { .. }), "{e:?}");
    assert!(
        text.contains("400 ms") && text.contains("--connect-timeout"),
        "{text}"
    );
}

#[test]
fn unix_round_trip_and_errors() {
    let dir = tempdir();
    let path = dir.path().join("libvirt-sock");
    let l = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
    });
    let u = uri(&format!("test+unix:///default?socket={}", path.display()));
    let mut c = connect(&u, &opts(2000)).unwrap();
    assert_eq!(c.description(), format!("unix {}", path.display()));
    c.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello");
    server.join().unwrap();

    let missing = dir.path().join("nothing-here");
    let e = connect(
        &uri(&format!(
            "test+unix:///default?socket={}",
            missing.display()
        )),
        &opts(1000),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("no such socket"),
        "{e}"
    );
}

#[test]
fn unix_connect_timeout_on_a_full_backlog() {
    let dir = tempdir();
    let path = dir.path().join("full-sock");
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    socket::listen(&fd, Backlog::new(0).unwrap()).unwrap();
    // Fill the queue without blocking ourselves.
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        if socket::connect(s.as_raw_fd(), &UnixAddr::new(&path).unwrap()).is_ok() {
            held.push(s);
        }
    }
    assert!(!held.is_empty());
    let t = Instant::now();
    let e = connect(
        &uri(&format!("test+unix:///default?socket={}", path.display())),
        &opts(300),
    )
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, TargetError::ConnectTimeout { .. }), "{e:?}");
    assert!(e.to_string().contains("backlog"), "{e}");
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Pki {
    dir: tempfile::TempDir,
    server_chain: Vec<CertificateDer<'static>>,
    server_pem: String,
    server_key: String,
    ca: CertificateDer<'static>,
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A CA, a server certificate for localhost and 127.0.0.1, and a client certificate, written in
/// libvirt's pkipath layout (cacert.pem, clientcert.pem, clientkey.pem).
fn pki() -> Pki {
    let dir = tempdir();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "virtwire test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut sp = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server = sp.signed_by(&server_key, &ca).unwrap();

    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name
        .push(DnType::CommonName, "virtwire test client");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client = cp.signed_by(&client_key, &ca).unwrap();

    write(dir.path(), "cacert.pem", &ca.pem());
    write(dir.path(), "clientcert.pem", &client.pem());
    write(dir.path(), "clientkey.pem", &client_key.serialize_pem());
    Pki {
        dir,
        server_chain: vec![server.der().clone()],
        server_pem: server.pem(),
        server_key: server_key.serialize_pem(),
        ca: ca.der().clone(),
    }
}

#[derive(Clone, Copy)]
enum AfterHandshake {
    /// Send this confirmation byte, then echo.
    Confirm(u8),
}

/// An in-process rustls server on 127.0.0.1 for one connection: handshake (optionally
/// requiring a client certificate from the CA), libvirt's confirmation byte, then echo.
fn tls_server(
    pki: &Pki,
    require_client: bool,
    after: AfterHandshake,
) -> (u16, thread::JoinHandle<Result<(), String>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let config = Arc::new(
        builder
            .with_single_cert(pki.server_chain.clone(), key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (sock, _) = l.accept().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let AfterHandshake::Confirm(b) = after;
        tls.write_all(&[b]).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => tls.write_all(&buf[..n]).map_err(|e| e.to_string())?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    (port, h)
}

#[test]
fn tls_round_trip_with_client_auth_and_split() {
    let pki = pki();
    let (port, server) = tls_server(&pki, true, AfterHandshake::Confirm(1));
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let mut c = connect(&u, &opts(5000)).unwrap();
    assert_eq!(c.description(), format!("tls 127.0.0.1:{port}"));
    assert_eq!(c.transport(), Transport::Tls);
    assert!(
        c.tls_summary().unwrap().contains("TLS"),
        "{:?}",
        c.tls_summary()
    );
    assert!(c.warnings().is_empty());
    // Reader thread and writer at once, more than the socket buffers hold.
    let mut r = c.try_clone().unwrap();
    let n = 3 << 20;
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).unwrap();
        got
    });
    let data: Vec<u8> = (0..n as u32).map(|i| (i % 253) as u8).collect();
    for chunk in data.chunks(60_000) {
        c.write_all(chunk).unwrap();
    }
    assert!(reader.join().unwrap() == data, "echo differs");
    // Read deadline on TLS too.
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let e = c.read(&mut [0u8; 1]).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    c.shutdown(Shutdown::Write).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn tls_explicit_files_and_localhost() {
    let pki = pki();
    let (port, server) = tls_server(&pki, false, AfterHandshake::Confirm(1));
    let files = TlsFiles {
        ca: Some(pki.dir.path().join("cacert.pem")),
        cert: None,
        key: None,
    };
    let o = ConnectOptions {
        tls_files: files,
        ..opts(5000)
    };
    // By name: the certificate holds "localhost"; no transport + a host means TLS.
    let mut c = connect(&uri(&format!("test://localhost:{port}/default")), &o).unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    drop(c);
    server.join().unwrap().unwrap();
}

#[test]
fn tls_wrong_ca_is_a_clear_error() {
    let pki = pki();
    let other = self::pki();
    let (port, _server) = tls_server(&pki, false, AfterHandshake::Confirm(1));
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        other.dir.path().display()
    ));
    let e = connect(&u, &opts(5000)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, TargetError::Tls { .. }), "{e:?}");
    assert!(
        text.contains("not signed by") && text.contains("cacert.pem") && text.contains("no_verify"),
        "{text}"
    );
}

#[test]
fn tls_no_verify_accepts_with_a_warning() {
    let pki = pki();
    let other = self::pki();
    let (port, server) = tls_server(&pki, false, AfterHandshake::Confirm(1));
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}&no_verify=1",
        other.dir.path().display()
    ));
    let c = connect(&u, &opts(5000)).unwrap();
    assert!(
        c.warnings()[0].contains("NOT checked"),
        "{:?}",
        c.warnings()
    );
    drop(c);
    server.join().unwrap().unwrap();
}

#[test]
fn tls_missing_client_certificate_and_rejected_confirmation() {
    let pki = pki();
    // The server wants a client certificate; we have none.
    std::fs::remove_file(pki.dir.path().join("clientcert.pem")).unwrap();
    std::fs::remove_file(pki.dir.path().join("clientkey.pem")).unwrap();
    let (port, _server) = tls_server(&pki, true, AfterHandshake::Confirm(1));
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let e = connect(&u, &opts(5000)).unwrap_err().to_string();
    assert!(
        e.contains("client certificate") || e.contains("certificate"),
        "{e}"
    );

    // A libvirt server whose checks of us failed sends something other than 1.
    let pki = self::pki();
    let (port, _server) = tls_server(&pki, false, AfterHandshake::Confirm(0));
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let e = connect(&u, &opts(5000)).unwrap_err();
    assert!(matches!(e, TargetError::TlsConfirmation { .. }), "{e:?}");
    assert!(e.to_string().contains("server verification"), "{e}");
    // With the check off, that byte is the first byte of the stream.
    let (port, _server) = tls_server(&pki, false, AfterHandshake::Confirm(0));
    let o = ConnectOptions {
        tls_confirmation: false,
        ..opts(5000)
    };
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let mut c = connect(&u, &o).unwrap();
    let mut b = [9u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(b, [0]);
}

#[test]
fn tls_missing_ca_names_the_file_and_the_flags() {
    let dir = tempdir();
    let e = connect(
        &uri(&format!(
            "qemu+tls://127.0.0.1:1/system?pkipath={}",
            dir.path().display()
        )),
        &opts(1000),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, TargetError::TlsFile { .. }), "{e:?}");
    assert!(
        text.contains(&dir.path().join("cacert.pem").display().to_string())
            && text.contains("--ca FILE"),
        "{text}"
    );
}

#[test]
fn tls_handshake_has_a_deadline_and_plain_servers_are_recognised() {
    let pki = pki();
    // A server that accepts and says nothing.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    let silent = thread::spawn(move || {
        let (_s, _) = l.accept().unwrap();
        let _ = rx.recv_timeout(Duration::from_secs(10));
    });
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let t = Instant::now();
    let e = connect(&u, &opts(400)).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, TargetError::ConnectTimeout { .. }), "{e:?}");
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    tx.send(()).unwrap();
    silent.join().unwrap();

    // A plain server that closes on the ClientHello (as libvirtd's TCP port does).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let plain = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b);
    });
    let u = uri(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}",
        pki.dir.path().display()
    ));
    let e = connect(&u, &opts(3000)).unwrap_err().to_string();
    assert!(e.contains("TLS listener") && e.contains("16514"), "{e}");
    plain.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// the private libvirtd

#[test]
fn libvirtd_missing_binary_says_what_to_install() {
    let e = Libvirtd::start(
        LibvirtdOptions {
            binary: Some(PathBuf::from("/nonexistent/sbin/libvirtd")),
            ..daemon_opts()
        },
        probe_connect,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("apt-get install --no-install-recommends libvirt-daemon")
            && e.contains("--libvirtd PATH")
            && e.contains("/nonexistent/sbin/libvirtd"),
        "{e}"
    );
}

#[test]
fn libvirtd_stays_on_loopback() {
    let e = Libvirtd::start(
        LibvirtdOptions {
            extra_config: vec!["listen_addr = \"0.0.0.0\"".into()],
            ..daemon_opts()
        },
        probe_connect,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("127.0.0.1 only"), "{e}");
}

#[test]
fn libvirtd_starts_answers_restarts_and_stops() {
    if !need_libvirt("libvirtd_starts_answers_restarts_and_stops") {
        return;
    }
    let mut d = Libvirtd::start(
        LibvirtdOptions {
            env: vec![("VIRTWIRE_TEST_MARK".into(), "42".into())],
            ..daemon_opts()
        },
        virsh_probe,
    )
    .unwrap();
    let port = d.port();
    assert_eq!(
        d.uri().as_str(),
        format!("test+tcp://127.0.0.1:{port}/default")
    );
    // virsh's `uri` prints the URI it connected with.
    for u in [d.uri(), d.unix_uri(), d.unix_ro_uri()] {
        assert_eq!(virsh(u.as_str(), &["uri"]).unwrap(), u.as_str());
    }
    assert!(d.admin_uri().is_admin());
    assert!(d.admin_uri().socket_path().unwrap().exists());
    if tool_on_path("virt-admin") {
        let out = Command::new("timeout")
            .args(["10", "virt-admin", "-c", d.admin_uri().as_str(), "srv-list"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("libvirtd"));
    }
    // Our own connection reaches it too, by TCP and by the socket.
    drop(connect(d.uri(), &opts(2000)).unwrap());
    drop(connect(d.unix_uri(), &opts(2000)).unwrap());

    let config = std::fs::read_to_string(d.config_path()).unwrap();
    assert!(config.contains("max_client_requests = 5"), "{config}");
    assert!(config.contains("listen_addr = \"127.0.0.1\""), "{config}");
    assert!(
        d.version().unwrap().contains("libvirt"),
        "{:?}",
        d.version()
    );
    assert!(d.is_alive());

    let leader = d.pid().unwrap();
    let daemon = d.daemon_pid().unwrap();
    let environ = std::fs::read(format!("/proc/{daemon}/environ")).unwrap();
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|v| v == b"VIRTWIRE_TEST_MARK=42"),
        "extra env reaches the daemon"
    );
    let offset = d.log_offset();

    d.restart().unwrap();
    assert_eq!(d.port(), port);
    assert_eq!(d.restarts(), 1);
    assert!(
        wait_gone(daemon, Duration::from_secs(1)),
        "old daemon {daemon} stopped"
    );
    assert!(wait_gone(leader, Duration::from_secs(1)));
    assert_ne!(d.daemon_pid().unwrap(), daemon);
    assert_eq!(virsh(d.uri().as_str(), &["uri"]).unwrap(), d.uri().as_str());
    let _ = d.log_since(offset);

    let (leader, daemon, dir) = (
        d.pid().unwrap(),
        d.daemon_pid().unwrap(),
        d.dir().to_owned(),
    );
    drop(d);
    assert!(gone(leader), "timeout {leader} reaped");
    assert!(
        wait_gone(daemon, Duration::from_secs(1)),
        "libvirtd {daemon} stopped on drop"
    );
    assert!(!dir.exists(), "its directory is removed");
}

#[test]
fn libvirtd_crash_is_seen_and_restart_recovers() {
    if !need_libvirt("libvirtd_crash_is_seen_and_restart_recovers") {
        return;
    }
    let mut d = Libvirtd::start(
        LibvirtdOptions {
            max_client_requests: 7,
            ..daemon_opts()
        },
        virsh_probe,
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(d.config_path())
            .unwrap()
            .contains("max_client_requests = 7")
    );
    let daemon = d.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::Signal::SIGSEGV,
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while d.is_alive() && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.is_alive());
    let how = d.exit_description().unwrap();
    assert!(
        how.contains("signal 11") && how.contains("SIGSEGV"),
        "{how}"
    );
    d.restart().unwrap();
    assert!(d.is_alive());
    assert_eq!(virsh(d.uri().as_str(), &["uri"]).unwrap(), d.uri().as_str());
}

#[test]
fn libvirtd_world_file_is_the_uri_path() {
    if !need_libvirt("libvirtd_world_file_is_the_uri_path") {
        return;
    }
    let dir = tempdir();
    let world = dir.path().join("my world.xml");
    std::fs::write(
        &world,
        "<node>\n  <domain type='test'>\n    <name>virtwire-world</name>\n    <memory>8192</memory>\n    \
         <os><type>hvm</type></os>\n  </domain>\n</node>\n",
    )
    .unwrap();
    let d = Libvirtd::start(
        LibvirtdOptions {
            world: Some(world.clone()),
            ..daemon_opts()
        },
        virsh_probe,
    )
    .unwrap();
    let abs = std::fs::canonicalize(&world).unwrap();
    assert_eq!(
        d.uri().as_str(),
        format!(
            "test+tcp://127.0.0.1:{}{}",
            d.port(),
            abs.display().to_string().replace(' ', "%20")
        )
    );
    let list = virsh(d.uri().as_str(), &["list", "--all", "--name"]).unwrap();
    assert!(list.contains("virtwire-world"), "{list}");
    let list = virsh(d.unix_uri().as_str(), &["list", "--all", "--name"]).unwrap();
    assert!(list.contains("virtwire-world"), "{list}");
}

#[test]
fn libvirtd_failures_carry_its_log() {
    if !need_libvirt("libvirtd_failures_carry_its_log") {
        return;
    }
    // A config libvirtd refuses: it exits, and the error says so with its own words.
    let e = Libvirtd::start(
        LibvirtdOptions {
            extra_config: vec!["max_clients = \"many\"".into()],
            ..daemon_opts()
        },
        virsh_probe,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("exited with status") && e.contains("libvirtd log"),
        "{e}"
    );
    assert!(e.contains("max_clients"), "{e}");

    // A probe that never succeeds: bounded by ready_timeout, with its last answer.
    let t = Instant::now();
    let e = Libvirtd::start(
        LibvirtdOptions {
            ready_timeout: Duration::from_millis(600),
            ..daemon_opts()
        },
        |_: &TargetUri, _: &ConnectOptions| Err("no round trip today".to_owned()),
    )
    .unwrap_err()
    .to_string();
    assert!(t.elapsed() < Duration::from_secs(8));
    assert!(
        e.contains("did not answer") && e.contains("no round trip today") && e.contains("600 ms"),
        "{e}"
    );
}

#[test]
fn libvirtd_panic_unwinding_stops_it() {
    if !need_libvirt("libvirtd_panic_unwinding_stops_it") {
        return;
    }
    let (tx, rx) = mpsc::channel();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let d = Libvirtd::start(daemon_opts(), probe_connect).unwrap();
        tx.send((d.pid().unwrap(), d.daemon_pid().unwrap()))
            .unwrap();
        panic!("a case went wrong");
    }));
    assert!(r.is_err());
    let (leader, daemon) = rx.recv().unwrap();
    assert!(gone(leader));
    assert!(
        wait_gone(daemon, Duration::from_secs(1)),
        "libvirtd {daemon} stopped while unwinding"
    );
}

#[test]
fn libvirtd_keep_leaves_it_running_and_says_how_to_stop_it() {
    if !need_libvirt("libvirtd_keep_leaves_it_running_and_says_how_to_stop_it") {
        return;
    }
    let d = Libvirtd::start(daemon_opts(), probe_connect).unwrap();
    let (leader, daemon, dir, uri) = (
        d.pid().unwrap(),
        d.daemon_pid().unwrap(),
        d.dir().to_owned(),
        d.uri().to_string(),
    );
    let hint = d.keep();
    let kill_cmd = format!("kill -s TERM -- -{leader}");
    assert!(
        hint.contains(&kill_cmd) && hint.contains(&daemon.to_string()),
        "{hint}"
    );
    assert!(!gone(daemon), "kept");
    assert!(dir.exists());
    assert_eq!(virsh(&uri, &["uri"]).unwrap(), uri);
    // The printed command stops it.
    let st = Command::new("sh").args(["-c", &kill_cmd]).status().unwrap();
    assert!(st.success());
    assert!(wait_gone(daemon, Duration::from_secs(6)));
    // Reap our child (timeout) and clean up what keep left.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(leader as i32), None);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn libvirtd_over_tls_speaks_to_our_client() {
    if !need_libvirt("libvirtd_over_tls_speaks_to_our_client") {
        return;
    }
    // GnuTLS on the server side: our rustls client, libvirt's pkipath layout, and the
    // confirmation byte the server sends once it accepted our certificate.
    let pki = pki();
    let dir = pki.dir.path();
    write(dir, "servercert.pem", &pki.server_pem);
    write(dir, "serverkey.pem", &pki.server_key);
    let tls_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = Libvirtd::start(
        LibvirtdOptions {
            extra_config: vec![
                "listen_tls = 1".into(),
                format!("tls_port = \"{tls_port}\""),
                "auth_tls = \"none\"".into(),
                format!("ca_file = \"{}/cacert.pem\"", dir.display()),
                format!("cert_file = \"{}/servercert.pem\"", dir.display()),
                format!("key_file = \"{}/serverkey.pem\"", dir.display()),
            ],
            ..daemon_opts()
        },
        virsh_probe,
    )
    .unwrap();
    let tls = uri(&format!(
        "test+tls://127.0.0.1:{tls_port}/default?pkipath={}",
        dir.display()
    ));
    let c = connect(&tls, &opts(5000)).unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail(2000)));
    assert_eq!(c.transport(), Transport::Tls);
    drop(c);
    // libvirt's own client agrees on the same URI.
    assert_eq!(virsh(tls.as_str(), &["uri"]).unwrap(), tls.as_str());
    // Without our certificate the server says no, after the handshake.
    std::fs::rename(dir.join("clientcert.pem"), dir.join("elsewhere.pem")).unwrap();
    std::fs::remove_file(dir.join("clientkey.pem")).unwrap();
    let e = connect(&tls, &opts(5000)).unwrap_err().to_string();
    // libvirtd 9.0 closes the connection rather than sending a byte other than 1.
    assert!(
        e.contains("server verification") && e.contains("client certificate (none)"),
        "{e}"
    );
}

/// Runs in a child process for the signal tests: starts a daemon, prints its PIDs, waits.
#[test]
#[ignore = "helper: run by the signal tests in a child process"]
fn helper_hold_libvirtd() {
    if std::env::var_os("VIRTWIRE_TARGET_HELPER").is_none() {
        return;
    }
    let d = Libvirtd::start(daemon_opts(), probe_connect).unwrap();
    println!(
        "PIDS {} {} {}",
        d.pid().unwrap(),
        d.daemon_pid().unwrap(),
        d.dir().display()
    );
    std::io::stdout().flush().unwrap();
    thread::sleep(Duration::from_secs(60));
}

/// Start the helper and read its PIDs: (helper child, timeout, libvirtd, the daemon's directory).
fn helper() -> (std::process::Child, u32, u32, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_hold_libvirtd",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VIRTWIRE_TARGET_HELPER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The harness prints "test helper_hold_libvirtd ... " before it on the same line.
            if let Some((_, rest)) = line.split_once("PIDS ") {
                let mut it = rest.splitn(3, ' ');
                let mut pid = || it.next().unwrap().parse::<u32>().unwrap();
                let (leader, daemon) = (pid(), pid());
                let _ = tx.send((leader, daemon, PathBuf::from(it.next().unwrap())));
            }
        }
    });
    let Ok((leader, daemon, dir)) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the helper did not start a daemon within 30 s");
    };
    (child, leader, daemon, dir)
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the helper did not exit within {within:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn libvirtd_ctrl_c_stops_it_and_exits_130() {
    if !need_libvirt("libvirtd_ctrl_c_stops_it_and_exits_130") {
        return;
    }
    let (mut child, leader, daemon, dir) = helper();
    assert!(!gone(daemon) && dir.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(st.code(), Some(130), "{st}");
    // The handler waited for the daemon before exiting.
    assert!(
        gone(daemon),
        "libvirtd {daemon} stopped by the SIGINT handler"
    );
    assert!(gone(leader));
    assert!(!dir.exists(), "{} removed by the handler", dir.display());
}

#[test]
fn libvirtd_sigkill_of_virtwire_leaves_no_daemon() {
    if !need_libvirt("libvirtd_sigkill_of_virtwire_leaves_no_daemon") {
        return;
    }
    let (mut child, leader, daemon, dir) = helper();
    assert!(!gone(daemon) && dir.exists());
    child.kill().unwrap(); // SIGKILL: no handler, no Drop; the watchdog sees the pipe close
    child.wait().unwrap();
    assert!(
        wait_gone(daemon, Duration::from_secs(8)),
        "libvirtd {daemon} stopped after its parent was SIGKILLed"
    );
    assert!(wait_gone(leader, Duration::from_secs(2)));
    // The watchdog removes the directory once the group is gone (an orphaned zombie counts as
    // present until PID 1 reaps it: up to 10 s where PID 1 does not).
    let end = Instant::now() + Duration::from_secs(15);
    while dir.exists() && Instant::now() < end {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} removed by the watchdog", dir.display());
}
