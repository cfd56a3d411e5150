//! Opening a connection: TCP with a deadline over every resolved address, unix sockets (a full
//! backlog waits, up to the deadline), TLS on top of TCP. Nothing here blocks without a deadline:
//! name resolution runs in a helper thread the caller does not wait for past the deadline.

use std::collections::HashSet;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};

use super::error::TargetError;
use super::tls::{self, TlsFiles};
use super::transport::{Connection, TlsStream};
use super::uri::{TargetUri, Transport, host_port};

/// How to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Deadline for the whole of connecting: resolving, TCP connect to each address in turn, the
    /// TLS handshake and libvirt's TLS confirmation byte (`--connect-timeout`). Default 10 s.
    pub connect_timeout: Duration,
    /// Read and write timeout set on the returned connection (`None`: none). Default 60 s; the
    /// runner sets its own per-read deadline.
    pub io_timeout: Option<Duration>,
    /// `--ca`, `--cert`, `--key`.
    pub tls_files: TlsFiles,
    /// Read libvirt's TLS confirmation byte after the handshake (a libvirt server sends 1 when its
    /// checks of our certificate and address passed) and fail unless it is 1. Default on; turn
    /// it off to see that byte as the first byte of the stream.
    pub tls_confirmation: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Some(Duration::from_secs(60)),
            tls_files: TlsFiles::default(),
            tls_confirmation: true,
        }
    }
}

/// Open a connection to the server `uri` names.
pub fn connect(uri: &TargetUri, opts: &ConnectOptions) -> Result<Connection, TargetError> {
    let deadline = Instant::now() + opts.connect_timeout;
    let conn = match uri.transport() {
        Transport::Unix => {
            let path = uri.socket_path().unwrap_or_default();
            let s = connect_unix(&path, deadline, opts.connect_timeout)?;
            Connection::unix(s, format!("unix {}", path.display()))
        }
        Transport::Tcp => {
            let (s, addr) = connect_tcp(uri.connect_host(), port(uri), deadline, opts)?;
            Connection::tcp(s, describe("tcp", uri, addr))
        }
        Transport::Tls => connect_tls(uri, deadline, opts)?,
    };
    let what = conn.description().to_owned();
    let set = |r: io::Result<()>| r.map_err(|e| TargetError::io(format!("{what}: set timeout"), e));
    set(conn.set_read_timeout(opts.io_timeout))?;
    set(conn.set_write_timeout(opts.io_timeout))?;
    Ok(conn)
}

/// A readiness probe that only opens (and closes) a connection. It proves a listener, not a
/// server that answers RPC: the runner's probe makes a round trip through wire/.
pub fn probe_connect(uri: &TargetUri, opts: &ConnectOptions) -> Result<(), String> {
    connect(uri, opts).map(drop).map_err(|e| e.to_string())
}

fn port(uri: &TargetUri) -> u16 {
    uri.port().unwrap_or(0)
}

/// `tcp localhost:16509 (127.0.0.1:16509)`, or `tcp 127.0.0.1:16509` when they are the same.
fn describe(kind: &str, uri: &TargetUri, addr: SocketAddr) -> String {
    let named = host_port(uri.connect_host(), port(uri));
    if named == addr.to_string() {
        format!("{kind} {named}")
    } else {
        format!("{kind} {named} ({addr})")
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Resolve `host`, within the deadline.
fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, TargetError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    // getaddrinfo has no timeout of its own; the thread is left to finish on its own if the
    // deadline passes first.
    std::thread::Builder::new()
        .name("virtwire-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| TargetError::io("start the name resolver thread", e))?;
    let target = format!("tcp {}", host_port(host, port));
    match rx.recv_timeout(remaining(deadline).unwrap_or_default()) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(TargetError::Resolve {
            host: host.into(),
            port,
            message: "no addresses".into(),
        }),
        Ok(Err(e)) => Err(TargetError::Resolve {
            host: host.into(),
            port,
            message: e.to_string(),
        }),
        Err(_) => Err(TargetError::ConnectTimeout {
            target,
            timeout,
            stage: format!("resolving \"{host}\""),
        }),
    }
}

fn connect_tcp(
    host: &str,
    port: u16,
    deadline: Instant,
    opts: &ConnectOptions,
) -> Result<(TcpStream, SocketAddr), TargetError> {
    let target = format!("tcp {}", host_port(host, port));
    let addrs = resolve(host, port, deadline, opts.connect_timeout)?;
    let mut failures = Vec::new();
    let mut timed_out = None;
    for (i, addr) in addrs.iter().enumerate() {
        let Some(left) = remaining(deadline) else {
            timed_out = Some(format!(
                "before trying {addr} ({} of {})",
                i + 1,
                addrs.len()
            ));
            break;
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                // Messages are written whole; small ones should not wait for Nagle.
                let _ = s.set_nodelay(true);
                return Ok((s, *addr));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                failures.push(format!("{addr}: no answer"));
                timed_out = Some(format!("connecting to {addr}"));
            }
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    if let Some(stage) = timed_out
        && remaining(deadline).is_none()
    {
        return Err(TargetError::ConnectTimeout {
            target,
            timeout: opts.connect_timeout,
            stage,
        });
    }
    let refused = failures.iter().any(|f| f.contains("refused"));
    let mut detail = failures.join("; ");
    if refused {
        detail.push_str(
            " (nothing listens there: is the server running, and listening on TCP — libvirtd \
             needs --listen and listen_tcp/listen_tls?)",
        );
    }
    Err(TargetError::Connect { target, detail })
}

/// Connect to a unix socket. A listener whose backlog is full makes a blocking connect wait for
/// ever; non-blocking, it answers EAGAIN, which is retried until the deadline.
fn connect_unix(
    path: &Path,
    deadline: Instant,
    timeout: Duration,
) -> Result<UnixStream, TargetError> {
    let fail = |e: Errno| TargetError::Unix {
        path: path.to_owned(),
        source: io::Error::from(e),
        hint: unix_hint(e).into(),
    };
    let addr = UnixAddr::new(path).map_err(fail)?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(fail)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => match remaining(deadline) {
                Some(left) => std::thread::sleep(left.min(Duration::from_millis(20))),
                None => {
                    return Err(TargetError::ConnectTimeout {
                        target: format!("unix {}", path.display()),
                        timeout,
                        stage: "the listener's backlog stayed full".into(),
                    });
                }
            },
            Err(e) => return Err(fail(e)),
        }
    }
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)
        .map_err(|e| TargetError::io(format!("unix {}: set blocking", path.display()), e))?;
    Ok(s)
}

fn unix_hint(e: Errno) -> &'static str {
    match e {
        Errno::ENOENT => "no such socket: is the daemon running, and is this its unix_sock_dir?",
        Errno::ECONNREFUSED => "a socket file with no listener: the daemon that made it is gone",
        Errno::EACCES | Errno::EPERM => {
            "permission denied: the read-write socket usually needs root or the libvirt group; \
             ?readonly uses libvirt-sock-ro"
        }
        Errno::ENAMETOOLONG => "socket paths are limited to 107 bytes",
        Errno::ENOTSOCK => "this file is not a socket",
        _ => "",
    }
}

fn connect_tls(
    uri: &TargetUri,
    deadline: Instant,
    opts: &ConnectOptions,
) -> Result<Connection, TargetError> {
    // Credentials first: a missing file should not cost a network round trip.
    let prepared = tls::prepare(uri, &opts.tls_files)?;
    let (sock, addr) = connect_tcp(uri.connect_host(), port(uri), deadline, opts)?;
    let target = describe("tls", uri, addr);
    let conn = rustls::ClientConnection::new(prepared.config.clone(), prepared.server_name.clone())
        .map_err(|e| TargetError::Tls {
            target: target.clone(),
            message: e.to_string(),
            hint: String::new(),
        })?;
    let stream = Arc::new(
        TlsStream::new(conn, sock)
            .map_err(|e| TargetError::io(format!("{target}: clone the socket"), e))?,
    );
    let timed = |stage: &str| TargetError::ConnectTimeout {
        target: target.clone(),
        timeout: opts.connect_timeout,
        stage: stage.into(),
    };
    let set_deadline = |c: &Connection| -> Result<(), TargetError> {
        let left = remaining(deadline).ok_or_else(|| timed("before the TLS handshake"))?;
        c.set_read_timeout(Some(left))
            .and_then(|()| c.set_write_timeout(Some(left)))
            .map_err(|e| TargetError::io(format!("{target}: set timeout"), e))
    };
    let mut warnings = Vec::new();
    if let Some(w) = &prepared.warning {
        warn_once(w);
        warnings.push(w.clone());
    }
    let mut conn = Connection::tls(stream.clone(), target.clone(), warnings);
    set_deadline(&conn)?;
    if let Err(e) = stream.handshake() {
        return Err(handshake_error(e, &target, uri, &prepared, &timed));
    }
    if opts.tls_confirmation {
        set_deadline(&conn)?;
        let client_cert = prepared
            .located
            .client
            .as_ref()
            .map_or_else(|| "none".to_owned(), |(c, _)| c.display().to_string());
        let mut byte = [0u8; 1];
        let got = match conn.read(&mut byte) {
            Ok(1) if byte[0] == 1 => None,
            Ok(1) => Some(format!("the server sent byte {} instead of 1", byte[0])),
            Ok(_) => Some("the server closed the connection instead of sending 1".to_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(timed("waiting for libvirt's TLS confirmation byte"));
            }
            Err(e) => Some(match rustls_error(&e) {
                Some(t) => format!("TLS error instead of the byte 1: {t}"),
                None => format!("{e} instead of the byte 1"),
            }),
        };
        if let Some(got) = got {
            return Err(TargetError::TlsConfirmation {
                target,
                got,
                client_cert,
            });
        }
    }
    Ok(conn)
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

fn handshake_error(
    e: io::Error,
    target: &str,
    uri: &TargetUri,
    prepared: &tls::Prepared,
    timed: &dyn Fn(&str) -> TargetError,
) -> TargetError {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return timed("TLS handshake");
    }
    let (message, hint) = match rustls_error(&e) {
        Some(t) => (
            t.to_string(),
            tls::handshake_hint(t, uri.connect_host(), prepared.located.ca.as_deref()),
        ),
        None => (
            e.to_string(),
            "is this a TLS listener? libvirtd's TLS port is 16514, its plain TCP port 16509".into(),
        ),
    };
    TargetError::Tls {
        target: target.into(),
        message,
        hint,
    }
}

/// Print a warning to standard error once per process.
fn warn_once(w: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(w.to_owned())
    {
        eprintln!("virtwire: {w}");
    }
}
