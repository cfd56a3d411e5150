//! One end of a relayed connection: a TCP or unix stream, shared by the two relay threads of its
//! connection (one reads it, the other writes it; `Read` and `Write` are implemented for `&Stream`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connected byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Blocking mode, no Nagle delay (libvirt's calls are small: a proxy must not hold them back),
    /// reads without a timeout (a relay thread is woken by [`Stream::shutdown`]) and writes bounded by
    /// `write_timeout` (a peer that stops reading fails the write instead of hanging the relay).
    pub(crate) fn prepare(&self, write_timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(None)?;
                s.set_write_timeout(Some(write_timeout))
            }
            Stream::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(None)?;
                s.set_write_timeout(Some(write_timeout))
            }
        }
    }

    /// Shut down one or both halves; errors (already closed, reset) are of no interest here.
    pub(crate) fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        };
    }

    /// Make the last close send a TCP reset (`SO_LINGER` with a zero timeout) instead of a FIN.
    /// Unix streams have no reset: closing them is all there is.
    pub(crate) fn reset_on_close(&self) {
        if let Stream::Tcp(s) = self {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
    }

    /// The peer's address, for TCP.
    pub(crate) fn peer_tcp(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            Stream::Unix(_) => None,
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
