//! What the operating system does for more than one layer, with std and nix only: it imports nothing
//! of this crate, so `target/` (reaching a server) and `wire/` (a connection's traffic) may both use it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Pass one file descriptor over the unix socket `sock` the way libvirt does (src/util/virsocket.c
/// `virSocketSendFD`: one byte of data carrying an SCM_RIGHTS message).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_raw_fd()];
    let byte = [0u8];
    let iov = [io::IoSlice::new(&byte)];
    let n = sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)?;
    if n == 1 {
        Ok(())
    } else {
        Err(io::ErrorKind::WriteZero.into())
    }
}
