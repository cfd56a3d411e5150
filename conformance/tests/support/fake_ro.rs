//! A fake libvirtd read-only socket for the read-only cases: a unix socket in a private temp
//! directory (so descriptors can be passed, as to libvirt-sock-ro), one thread per connection,
//! every wait bounded ([`LIFETIME`]), everything stopped and joined on drop.
//!
//! It answers CONNECT_OPEN with REPLY/OK, CONNECT_GET_LIB_VERSION with the version it was given,
//! and every other call with what its [`Answer`] function returns for the procedure and the number
//! of descriptors that came with the call (it reads them as libvirtd does, one recvmsg each after
//! the message, src/rpc/virnetserverclient.c).
#![allow(dead_code)] // each test binary uses its own part of the kit

use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use virtwire_conformance::runner::Connector;
use virtwire_conformance::runner::ctx::Endpoint;
use virtwire_conformance::wire::peer::Transport;
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{
    Compat, ErrorBody, FrameBuilder, FrameDecoder, Limits, MessageStatus, MessageType, Writer,
};

/// The longest the fake runs.
pub const LIFETIME: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// REMOTE_PROC_CONNECT_OPEN, CONNECT_GET_LIB_VERSION.
const CONNECT_OPEN: i32 = 1;
const CONNECT_GET_LIB_VERSION: i32 = 157;
/// VIR_FROM_REMOTE.
const FROM_REMOTE: i32 = 7;

/// What the fake sends back for a call.
#[derive(Clone, Debug)]
pub enum Reply {
    /// REPLY/OK with this body.
    Ok(Vec<u8>),
    /// REPLY/ERROR with this code and message.
    Error(i32, String),
}

/// The fake's answer to a call of `procedure` that came with `fds` descriptors.
pub type Answer = dyn Fn(i32, usize) -> Reply + Send + Sync;

/// A fake read-only socket.
pub struct FakeRo {
    dir: PathBuf,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Descriptors received, over all calls.
    pub fds_received: Arc<AtomicUsize>,
    /// The procedures called (after CONNECT_OPEN and CONNECT_GET_LIB_VERSION), in order.
    pub calls: Arc<Mutex<Vec<i32>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeRo {
    /// A fake that says it is libvirt `lib_ver` (9000000 for 9.0.0) and answers with `answer`.
    pub fn start(
        lib_ver: u64,
        answer: impl Fn(i32, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "virtwire-fake-ro-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("libvirt-sock-ro");
        let listener = UnixListener::bind(&path).expect("bind the fake socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let fds_received = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let until = Instant::now() + LIFETIME;
        let acceptor = {
            let (stop, fds_received, calls) = (stop.clone(), fds_received.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut conns = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let (stop, fdr, calls, answer) = (
                                stop.clone(),
                                fds_received.clone(),
                                calls.clone(),
                                answer.clone(),
                            );
                            conns.push(std::thread::spawn(move || {
                                serve(s, &stop, until, lib_ver, &*answer, &fdr, &calls);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                for c in conns {
                    let _ = c.join();
                }
            })
        };
        FakeRo {
            dir,
            path,
            stop,
            fds_received,
            calls,
            acceptor: Some(acceptor),
        }
    }

    /// The runner's way to it: the target and its read-only endpoint are both this socket.
    pub fn connector(&self) -> UnixRo {
        UnixRo {
            path: self.path.clone(),
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Drop for FakeRo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connector to the fake's socket, which is also its read-only endpoint.
#[derive(Clone, Debug)]
pub struct UnixRo {
    path: PathBuf,
}

impl Connector for UnixRo {
    fn connect(&self, _timeout: Duration) -> Result<Box<dyn Transport>, String> {
        UnixStream::connect(&self.path)
            .map(|s| Box::new(s) as Box<dyn Transport>)
            .map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        format!("test+unix:///default?socket={}", self.path.display())
    }
    fn open_name(&self) -> Option<String> {
        Some("test:///default".into())
    }
    fn endpoint(
        &self,
        which: Endpoint,
    ) -> Result<Arc<dyn Connector>, virtwire_conformance::runner::ctx::Unavailable> {
        match which {
            Endpoint::ReadOnly => Ok(Arc::new(self.clone())),
            other => Err(virtwire_conformance::runner::ctx::Unavailable::Absent(
                format!("the fake has no {other} endpoint"),
            )),
        }
    }
}

fn stopped(stop: &AtomicBool, until: Instant) -> bool {
    stop.load(Ordering::Relaxed) || Instant::now() >= until
}

/// Read exactly `buf.len()` bytes (never more: a descriptor's byte must stay for recvmsg).
fn read_exact(s: &mut UnixStream, buf: &mut [u8], stop: &AtomicBool, until: Instant) -> bool {
    let mut at = 0;
    while at < buf.len() {
        if stopped(stop, until) {
            return false;
        }
        match s.read(&mut buf[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// One descriptor, as libvirt's virSocketRecvFD reads it (one byte with SCM_RIGHTS).
fn recv_fd(s: &UnixStream, stop: &AtomicBool, until: Instant) -> Option<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    while !stopped(stop, until) {
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        match recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()) {
            Ok(msg) => {
                if msg.bytes == 0 {
                    return None;
                }
                for c in msg.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        // SAFETY: the kernel just gave us these descriptors; we own them.
                        return fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) });
                    }
                }
                return None;
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    None
}

fn serve(
    mut s: UnixStream,
    stop: &AtomicBool,
    until: Instant,
    lib_ver: u64,
    answer: &Answer,
    fds_received: &AtomicUsize,
    calls: &Mutex<Vec<i32>>,
) {
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let limits = Limits::default();
    loop {
        let mut len = [0u8; 4];
        if !read_exact(&mut s, &mut len, stop, until) {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if !(28..=limits.message_max() as usize).contains(&n) {
            return;
        }
        let mut rest = vec![0u8; n - 4];
        if !read_exact(&mut s, &mut rest, stop, until) {
            return;
        }
        let mut dec = FrameDecoder::new(&limits, Compat::Libvirt);
        dec.feed(&len);
        dec.feed(&rest);
        let Ok(Some(f)) = dec.next_frame() else {
            return;
        };
        let h = *f.header();
        let mut got = 0;
        if h.msg_type == MessageType::CallWithFds {
            for _ in 0..f.nfds().unwrap_or(0) {
                if recv_fd(&s, stop, until).is_some() {
                    got += 1;
                }
            }
            fds_received.fetch_add(got, Ordering::Relaxed);
        }
        let reply = if h.prog != REMOTE_PROGRAM {
            Reply::Error(39, "unknown program".into())
        } else if h.procedure == CONNECT_OPEN {
            Reply::Ok(Vec::new())
        } else if h.procedure == CONNECT_GET_LIB_VERSION {
            let mut b = Vec::new();
            Writer::new(&mut b).u64(lib_ver);
            Reply::Ok(b)
        } else {
            calls.lock().unwrap().push(h.procedure);
            answer(h.procedure, got)
        };
        let bytes = match reply {
            Reply::Ok(body) => FrameBuilder::new(h.reply_to(MessageStatus::Ok))
                .payload(body)
                .build_unchecked(),
            Reply::Error(code, msg) => FrameBuilder::new(h.reply_to(MessageStatus::Error))
                .payload(
                    ErrorBody::new(code, FROM_REMOTE, &msg)
                        .to_bytes(&limits)
                        .expect("a short error"),
                )
                .build_unchecked(),
        };
        if s.write_all(&bytes).is_err() {
            return;
        }
    }
}

/// Where the fake's socket is (for messages).
pub fn socket_of(c: &UnixRo) -> &Path {
    &c.path
}
