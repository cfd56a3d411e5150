//! An open byte stream to a server: TCP, unix or TLS, one type with `Read + Write`, timeouts,
//! shutdown and `try_clone` (so a reader thread and a writer can share it — TLS included).
//!
//! A TLS connection is shared state behind locks: the rustls session (with bytes read from the
//! socket but not yet given to it), a read side and a write side of the socket. A read takes the
//! socket's read lock only while it waits for bytes, never the session's, so a writer is never
//! held up by a reader blocked in `read`. Encrypted output is handed from the session lock to the
//! socket's write lock before the session is released, so records leave in the order rustls made
//! them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::ClientConnection;

use super::uri::Transport;

/// An open connection to a server.
#[derive(Debug)]
pub struct Connection {
    io: Io,
    description: String,
    warnings: Vec<String>,
}

#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Arc<TlsStream>),
}

impl Connection {
    pub(crate) fn tcp(s: TcpStream, description: String) -> Connection {
        Connection {
            io: Io::Tcp(s),
            description,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn unix(s: UnixStream, description: String) -> Connection {
        Connection {
            io: Io::Unix(s),
            description,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn tls(s: Arc<TlsStream>, description: String, warnings: Vec<String>) -> Connection {
        Connection {
            io: Io::Tls(s),
            description,
            warnings,
        }
    }

    /// What this is connected to, for people: `tcp 127.0.0.1:16509`, `unix /run/…/libvirt-sock`,
    /// `tls localhost:16514 ([::1]:16514)`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        match self.io {
            Io::Tcp(_) => Transport::Tcp,
            Io::Unix(_) => Transport::Unix,
            Io::Tls(_) => Transport::Tls,
        }
    }

    /// Warnings a user must see (e.g. `no_verify`), already printed once to standard error.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// TLS protocol version and cipher suite, e.g. `TLSv1_3 TLS13_AES_256_GCM_SHA384`.
    pub fn tls_summary(&self) -> Option<String> {
        match &self.io {
            Io::Tls(t) => {
                let st = t.state();
                Some(format!(
                    "{} {}",
                    st.conn
                        .protocol_version()
                        .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
                    st.conn
                        .negotiated_cipher_suite()
                        .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
                ))
            }
            _ => None,
        }
    }

    /// Our address (TCP and TLS).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.io {
            Io::Tcp(s) => s.local_addr().ok(),
            Io::Tls(t) => t.sock.local_addr().ok(),
            Io::Unix(_) => None,
        }
    }

    /// The server's address (TCP and TLS).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.io {
            Io::Tcp(s) => s.peer_addr().ok(),
            Io::Tls(t) => t.sock.peer_addr().ok(),
            Io::Unix(_) => None,
        }
    }

    /// Pass one file descriptor the way libvirt does (src/util/virsocket.c virSocketSendFD: one
    /// byte of data carrying an SCM_RIGHTS message). Unix sockets only.
    pub fn send_fd(&self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
        use std::os::fd::AsFd;
        let Io::Unix(s) = &self.io else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} cannot carry file descriptors (only a unix socket can)",
                    self.description
                ),
            ));
        };
        crate::sys::send_fd(s.as_fd(), fd)
    }

    /// Deadline for each `read` (`None`: wait forever). A read that runs out fails with
    /// `WouldBlock` or `TimedOut`. Shared with every clone.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match &self.io {
            Io::Tcp(s) => s.set_read_timeout(d),
            Io::Unix(s) => s.set_read_timeout(d),
            Io::Tls(t) => t.sock.set_read_timeout(d),
        }
    }

    /// Deadline for each `write`. Shared with every clone.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match &self.io {
            Io::Tcp(s) => s.set_write_timeout(d),
            Io::Unix(s) => s.set_write_timeout(d),
            Io::Tls(t) => t.sock.set_write_timeout(d),
        }
    }

    /// The current read deadline.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match &self.io {
            Io::Tcp(s) => s.read_timeout(),
            Io::Unix(s) => s.read_timeout(),
            Io::Tls(t) => t.sock.read_timeout(),
        }
    }

    /// Shut down one or both directions. For TLS, shutting down writing first sends the TLS
    /// close_notify alert.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.io {
            Io::Tcp(s) => s.shutdown(how),
            Io::Unix(s) => s.shutdown(how),
            Io::Tls(t) => {
                if how != Shutdown::Read {
                    // Best effort: the peer may already be gone.
                    let _ = t.close_notify();
                }
                t.sock.shutdown(how)
            }
        }
    }

    /// Another handle on the same connection, e.g. for a reader thread. Timeouts and shutdown
    /// apply to both.
    pub fn try_clone(&self) -> io::Result<Connection> {
        let io = match &self.io {
            Io::Tcp(s) => Io::Tcp(s.try_clone()?),
            Io::Unix(s) => Io::Unix(s.try_clone()?),
            Io::Tls(t) => Io::Tls(Arc::clone(t)),
        };
        Ok(Connection {
            io,
            description: self.description.clone(),
            warnings: self.warnings.clone(),
        })
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.io {
            Io::Tcp(s) => s.read(buf),
            Io::Unix(s) => s.read(buf),
            Io::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.io {
            Io::Tcp(s) => s.write(buf),
            Io::Unix(s) => s.write(buf),
            Io::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Tcp(s) => s.flush(),
            Io::Unix(s) => s.flush(),
            Io::Tls(_) => Ok(()), // written through to the socket by every write
        }
    }
}

/// The rustls session and what has been read for it.
pub(crate) struct TlsState {
    pub conn: ClientConnection,
    /// Bytes read from the socket that rustls has not taken yet.
    pending: Vec<u8>,
    /// The socket said end of stream.
    eof: bool,
    /// rustls has been told.
    eof_fed: bool,
}

/// A TLS session over a TCP socket, shareable between a reader and a writer.
pub(crate) struct TlsStream {
    state: Mutex<TlsState>,
    rsock: Mutex<TcpStream>,
    wsock: Mutex<TcpStream>,
    /// For options, addresses and shutdown.
    sock: TcpStream,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.sock.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A rustls error as an `io::Error` (the original stays reachable through `get_ref`).
pub(crate) fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Wrap a session whose handshake is done (or under way) on `sock`.
    pub(crate) fn new(conn: ClientConnection, sock: TcpStream) -> io::Result<TlsStream> {
        Ok(TlsStream {
            state: Mutex::new(TlsState {
                conn,
                pending: Vec::new(),
                eof: false,
                eof_fed: false,
            }),
            rsock: Mutex::new(sock.try_clone()?),
            wsock: Mutex::new(sock.try_clone()?),
            sock,
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, TlsState> {
        lock(&self.state)
    }

    /// Send what rustls has queued, releasing the session lock once the socket's is held.
    fn flush_out(&self, mut st: MutexGuard<'_, TlsState>) -> io::Result<()> {
        if !st.conn.wants_write() {
            return Ok(());
        }
        let mut out = Vec::new();
        while st.conn.wants_write() {
            st.conn.write_tls(&mut out)?;
        }
        let mut w = lock(&self.wsock);
        drop(st);
        w.write_all(&out)
    }

    fn close_notify(&self) -> io::Result<()> {
        let mut st = self.state();
        st.conn.send_close_notify();
        self.flush_out(st)
    }

    /// Drive the handshake to its end.
    pub(crate) fn handshake(&self) -> io::Result<()> {
        loop {
            let st = self.state();
            if !st.conn.is_handshaking() {
                return self.flush_out(st);
            }
            self.flush_out(st)?;
            if !self.step()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
        }
    }

    /// Give rustls more bytes: pending ones, else one read from the socket. False at end of
    /// stream once rustls knows.
    fn step(&self) -> io::Result<bool> {
        {
            let mut st = self.state();
            if !st.pending.is_empty() || (st.eof && !st.eof_fed) {
                let r = feed(&mut st);
                let flushed = self.flush_out(st);
                r?;
                flushed?;
                return Ok(true);
            }
            if st.eof {
                return Ok(false);
            }
        }
        let mut rs = lock(&self.rsock);
        {
            // Another reader may have read while we waited for the socket.
            let st = self.state();
            if !st.pending.is_empty() || st.eof {
                return Ok(true);
            }
        }
        let mut tmp = [0u8; 16 * 1024];
        let n = rs.read(&mut tmp)?;
        let mut st = self.state();
        if n == 0 {
            st.eof = true;
        } else {
            st.pending.extend_from_slice(&tmp[..n]);
        }
        Ok(true)
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut st = self.state();
                match st.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The peer closed TCP without close_notify (libvirtd does): end of stream;
                    // libvirt's framing carries lengths, so a cut message is still visible.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                if st.eof_fed && st.pending.is_empty() {
                    return Ok(0);
                }
            }
            if !self.step()? {
                return Ok(0);
            }
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.state();
        let n = st.conn.writer().write(buf)?;
        self.flush_out(st)?;
        Ok(n)
    }
}

/// Hand pending bytes (or the end of stream) to rustls and let it process them.
fn feed(st: &mut TlsState) -> io::Result<()> {
    if st.pending.is_empty() {
        if st.eof && !st.eof_fed {
            st.eof_fed = true;
            let mut empty: &[u8] = &[];
            st.conn.read_tls(&mut empty)?;
        }
    } else {
        let mut slice: &[u8] = &st.pending;
        let used = st.conn.read_tls(&mut slice)?;
        if used == 0 {
            return Err(io::Error::other(
                "TLS session took none of the received bytes",
            ));
        }
        st.pending.drain(..used);
    }
    st.conn.process_new_packets().map_err(tls_io_error)?;
    Ok(())
}
