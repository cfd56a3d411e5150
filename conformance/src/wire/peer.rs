//! One live connection to a libvirt server, from the client's side: bytes out as they are given,
//! frames in through protocol's [`FrameDecoder`], and every wait bounded by a deadline. The runner's
//! cases talk to servers only through a [`Peer`].
//!
//! Nothing here trusts the server: a length word is checked before anything is sized from it (the
//! decoder never buffers more than arrived), a server that says nothing is a [`Event::Timeout`] at
//! the deadline, and one that closes or resets is an event like any other. What a peer keeps of a
//! server that floods is bounded too: frames it set aside while waiting for a reply (64 replies and 64
//! others, one largest frame's worth of bytes) and the traffic log ([`LOG_KEEP`] each way).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtwire_protocol::{
    Body, Compat, Error, FrameDecoder, Header, KeepaliveProc, MessageType, OwnedFrame,
    header::KEEPALIVE_PROGRAM,
};

use super::judge::Judge;
use super::record::{BodyOut, Origin};
use crate::capture::tcp::Dir;

/// How many replies, and how many other frames, [`Peer::reply`] sets aside at most ([`Stash`]).
const STASH_FRAMES: usize = 64;

/// Frames [`Peer::reply`] set aside for later waits: at most [`STASH_FRAMES`] replies and as many
/// other frames, and in all at most one largest frame's worth of bytes. What does not fit is
/// dropped, so a server that floods events while a case waits for its reply costs that case time,
/// never memory.
#[derive(Debug, Default)]
struct Stash {
    frames: VecDeque<OwnedFrame>,
    replies: usize,
    bytes: usize,
}

impl Stash {
    /// Keep `f` if there is room (`room`: the byte budget); false when it was dropped.
    fn keep(&mut self, f: OwnedFrame, room: usize) -> bool {
        let reply = f.header().msg_type.is_reply();
        let same_kind = if reply {
            self.replies
        } else {
            self.frames.len() - self.replies
        };
        if same_kind >= STASH_FRAMES || self.bytes + f.bytes().len() > room {
            return false;
        }
        self.replies += usize::from(reply);
        self.bytes += f.bytes().len();
        self.frames.push_back(f);
        true
    }

    /// Take out the first frame that `which` picks.
    fn take(&mut self, which: impl Fn(&OwnedFrame) -> bool) -> Option<OwnedFrame> {
        let f = self.frames.remove(self.frames.iter().position(which)?)?;
        self.replies -= usize::from(f.header().msg_type.is_reply());
        self.bytes -= f.bytes().len();
        Some(f)
    }
}

/// Whether `f` is a keepalive PING (a MESSAGE of the keepalive program, procedure PING).
pub fn is_ping(f: &OwnedFrame) -> bool {
    let h = f.header();
    h.prog == KEEPALIVE_PROGRAM
        && h.msg_type == MessageType::Message
        && KeepaliveProc::from_raw(h.procedure) == KeepaliveProc::Ping
}

/// How many sent calls a [`Peer`] remembers for checking their replies.
const CALLS_KEPT: usize = 64;

/// How many stray frames a [`Watch`] keeps (the rest are counted).
const STRAYS_KEPT: usize = 8;

/// A watch for frames the server must not send ([`Peer::watch`]): from `since` (when the message
/// that must go unanswered was sent), every frame [`Peer::reply`] sets aside that `allow` does not
/// accept (a keepalive PING aside) is kept with its arrival time, for the case to fail on.
#[derive(Debug)]
struct Watch {
    since: Instant,
    what: String,
    allow: fn(&Reply) -> bool,
    strays: Vec<(Duration, Reply)>,
    more: usize,
}

/// A byte stream to a server: TCP, a unix socket, TLS, or a test's in-memory fake.
pub trait Transport: Read + Write + Send {
    /// Longest a read may block (`None`: forever; never used by a [`Peer`]).
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
    /// Longest a write may block.
    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
    /// Close the sending half (the server reads end-of-file).
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Pass one file descriptor as libvirt does (src/util/virsocket.c virSocketSendFD: one byte
    /// of data carrying an SCM_RIGHTS message; the receiver's recvmsg consumes the byte, so it is
    /// no part of the message stream). Only a unix socket can: the default refuses.
    fn send_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let _ = fd;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this connection cannot carry file descriptors (only a unix socket can)",
        ))
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Transport for UnixStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn send_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        crate::sys::send_fd(self.as_fd(), fd)
    }
}

/// One chunk of traffic as it crossed the connection: which way, when (since the connection
/// opened) and the bytes. The wire log of a case is these chunks, for traces and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Direction: [`Dir::C2s`] for what we sent.
    pub dir: Dir,
    /// Time since the connection opened.
    pub at: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// How much of each direction's traffic a [`WireLog`] keeps: the first 256 KiB. What comes after is
/// counted, not kept, so a server that floods cannot grow a case's report without bound.
pub const LOG_KEEP: usize = 256 << 10;
/// The cap in force: [`LOG_KEEP`] unless [`set_log_max`] changed it (`--wire-log-max`).
static LOG_MAX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(LOG_KEEP);

/// Keep the first `bytes` of each direction of every connection's log from now on (the process's
/// setting, made once by the command line before a run).
pub fn set_log_max(bytes: usize) {
    LOG_MAX.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// How much of each direction a [`WireLog`] keeps now: [`LOG_KEEP`] unless [`set_log_max`] said.
pub fn log_max() -> usize {
    LOG_MAX.load(std::sync::atomic::Ordering::Relaxed)
}
/// Bursts are merged into one chunk up to this size (so no chunk's buffer grows large).
const CHUNK_MERGE: usize = 64 << 10;

/// How the other side ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// End of file: it closed the connection.
    Closed,
    /// The connection failed (reset, broken pipe…).
    Reset,
}

/// The traffic of one connection, shared between the [`Peer`] and whoever reports on it: the
/// first [`LOG_KEEP`] bytes of each direction, and a count of the rest.
#[derive(Clone, Debug, Default)]
pub struct WireLog(Arc<Mutex<LogInner>>);

#[derive(Debug, Default)]
struct LogInner {
    chunks: Vec<Chunk>,
    /// How the connection ended from the other side, once it did.
    ending: Option<Ending>,
    /// The other side is the client (the log of a scripted server's connection).
    theirs_is_client: bool,
    /// Bytes kept, and bytes seen but not kept: [sent, received].
    kept: [usize; 2],
    omitted: [usize; 2],
}

fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::C2s => 0,
        Dir::S2c => 1,
    }
}

impl WireLog {
    fn push(&self, dir: Dir, at: Duration, bytes: &[u8]) {
        if let Ok(mut log) = self.0.lock() {
            let d = dir_index(dir);
            let keep = bytes.len().min(log_max().saturating_sub(log.kept[d]));
            log.kept[d] += keep;
            log.omitted[d] += bytes.len() - keep;
            let bytes = &bytes[..keep];
            if bytes.is_empty() {
                return;
            }
            // Merge consecutive reads / writes of one direction: one chunk per burst.
            match log.chunks.last_mut() {
                Some(last)
                    if last.dir == dir
                        && at.saturating_sub(last.at) < Duration::from_millis(1)
                        && last.bytes.len() < CHUNK_MERGE =>
                {
                    last.bytes.extend_from_slice(bytes)
                }
                _ => log.chunks.push(Chunk {
                    dir,
                    at,
                    bytes: bytes.to_vec(),
                }),
            }
        }
    }

    /// Add bytes as if a peer had moved them (for tests of what reads a log).
    #[doc(hidden)]
    pub fn push_for_test(&self, dir: Dir, bytes: &[u8]) {
        self.push(dir, Duration::ZERO, bytes);
    }

    /// Note how the other side ended the connection (the first call counts).
    pub fn note_ending(&self, how: Ending) {
        if let Ok(mut l) = self.0.lock() {
            l.ending.get_or_insert(how);
        }
    }

    /// The direction the other side's bytes travel in: server-to-client for a client's connection,
    /// client-to-server for a scripted server's.
    pub fn theirs(&self) -> Dir {
        match self.0.lock() {
            Ok(l) if l.theirs_is_client => Dir::C2s,
            _ => Dir::S2c,
        }
    }

    /// How the other side ended the connection, if it did (the first ending seen).
    pub fn ending(&self) -> Option<Ending> {
        self.0.lock().ok().and_then(|l| l.ending)
    }

    /// A copy of the kept chunks, in order.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.0
            .lock()
            .map(|log| log.chunks.clone())
            .unwrap_or_default()
    }

    /// Total bytes each way, kept or not: (sent, received).
    pub fn totals(&self) -> (usize, usize) {
        self.0
            .lock()
            .map(|l| (l.kept[0] + l.omitted[0], l.kept[1] + l.omitted[1]))
            .unwrap_or_default()
    }

    /// Bytes each way past [`LOG_KEEP`], counted but not kept: (sent, received).
    pub fn omitted(&self) -> (usize, usize) {
        self.0
            .lock()
            .map(|l| (l.omitted[0], l.omitted[1]))
            .unwrap_or_default()
    }
}

/// What the server did next.
#[derive(Debug)]
pub enum Event {
    /// A whole frame (framed as libvirt frames: the length word within the limits).
    Frame(OwnedFrame),
    /// The server closed the connection cleanly (end of file), with `unfinished` bytes of a frame
    /// it had started.
    Closed {
        /// Bytes of an unfinished frame when it closed.
        unfinished: usize,
    },
    /// The connection failed (reset, broken pipe…).
    Reset(String),
    /// Nothing (more) came before the deadline.
    Timeout,
    /// The server's bytes cannot be framed: the length word is out of bounds. Nothing more will be
    /// read from this connection.
    FramingError {
        /// The error, counted from the frame's first byte.
        error: Error,
        /// The first bytes of that frame (at most 32).
        head: Vec<u8>,
    },
}

/// A server's error reply, decoded (`virNetMessageError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// `virErrorNumber` (e.g. 39 `VIR_ERR_RPC`, 1 `VIR_ERR_INTERNAL_ERROR`).
    pub code: i32,
    /// `virErrorDomain` (e.g. 7 `VIR_FROM_RPC`).
    pub domain: i32,
    /// The message, lossily as UTF-8.
    pub message: Option<String>,
}

/// A received message, judged: its header, what its body is, and (for errors) the error.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The header.
    pub header: Header,
    /// The length word.
    pub len: u32,
    /// The error body, for REPLY/ERROR and STREAM/ERROR.
    pub error: Option<RpcError>,
    /// Why the message did not decode in the judge's mode, if it did not.
    pub decode_error: Option<Error>,
    /// The body as JSON (the `decode --format json` form), for reports and rules.
    pub body: serde_json::Value,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.header;
        write!(
            f,
            "{} {}/{} prog {:#x} proc {} serial {}",
            self.len,
            h.msg_type.name(),
            h.status.name(),
            h.prog,
            h.procedure,
            h.serial
        )?;
        if let Some(e) = &self.error {
            write!(
                f,
                ": error code {} domain {} {:?}",
                e.code,
                e.domain,
                e.message.as_deref().unwrap_or("(no message)")
            )?;
        }
        if let Some(e) = &self.decode_error {
            write!(f, " (does not decode: {e})")?;
        }
        Ok(())
    }
}

/// A connection to a server, from the client's side.
pub struct Peer {
    io: Box<dyn Transport>,
    dec: FrameDecoder,
    judge: Arc<Judge>,
    opened: Instant,
    log: WireLog,
    /// False once the server closed, reset, or sent bytes that cannot be framed.
    readable: bool,
    /// Answer the server's keepalive PING with PONG while waiting.
    pub auto_pong: bool,
    /// A PONG could not be written (the server does not read): no more are tried.
    pong_failed: bool,
    /// Frames set aside by [`Peer::reply`] while it looked for another one (bounded).
    stash: Stash,
    /// Frames dropped because the stash was full.
    dropped: u64,
    /// Frames the server must not send, watched for while waiting for replies ([`Peer::watch`]).
    watch: Option<Watch>,
    /// When the latest bytes were sent (the connection's opening before any).
    last_sent: Instant,
    /// The latest calls noted by [`Peer::sent_call`] (at most [`CALLS_KEPT`]).
    calls: VecDeque<Header>,
    next_serial: u32,
    /// What each read fills (one buffer for the connection's life, not one per wait).
    rbuf: Vec<u8>,
    /// The direction of what this peer sends: [`Dir::C2s`] for a client (the default),
    /// [`Dir::S2c`] for the server side of a connection ([`Peer::server_side`]).
    sends: Dir,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("readable", &self.readable)
            .field("buffered", &self.dec.buffered())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A peer over `io`, judging what arrives with `judge` (framing always as libvirt frames).
    pub fn new(io: Box<dyn Transport>, judge: Arc<Judge>) -> Self {
        let dec = FrameDecoder::new(judge.limits(), Compat::Libvirt);
        Peer {
            io,
            dec,
            judge,
            opened: Instant::now(),
            log: WireLog::default(),
            readable: true,
            auto_pong: true,
            pong_failed: false,
            stash: Default::default(),
            dropped: 0,
            watch: None,
            last_sent: Instant::now(),
            calls: Default::default(),
            next_serial: 1,
            rbuf: vec![0u8; 64 << 10],
            sends: Dir::C2s,
        }
    }

    /// A peer that is the *server* side of a connection a client opened (the scripted server of
    /// `check-client`): the same framing, deadlines and bounds, with the directions turned round —
    /// what it sends is logged as server-to-client, what it reads as client-to-server, and what it
    /// reads is judged as the client's. PINGs from the client are answered with PONGs, as libvirtd
    /// does, while [`Peer::auto_pong`] is set.
    pub fn server_side(io: Box<dyn Transport>, judge: Arc<Judge>) -> Self {
        let p = Peer {
            sends: Dir::S2c,
            ..Peer::new(io, judge)
        };
        if let Ok(mut l) = p.log.0.lock() {
            l.theirs_is_client = true;
        }
        p
    }

    /// The traffic so far (shared: it keeps growing as the peer is used).
    pub fn log(&self) -> WireLog {
        self.log.clone()
    }

    /// The judge.
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// A fresh serial for a call: 1, 2, 3…
    pub fn serial(&mut self) -> u32 {
        let s = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        s
    }

    /// Note that a CALL with header `h` was sent, so that its reply can be checked to echo it.
    pub fn sent_call(&mut self, h: Header) {
        if self.calls.len() == CALLS_KEPT {
            self.calls.pop_front();
        }
        self.calls.push_back(h);
    }

    /// The header of the latest call noted with this serial.
    pub fn call_with_serial(&self, serial: u32) -> Option<&Header> {
        self.calls.iter().rev().find(|h| h.serial == serial)
    }

    /// Send bytes as they are, within `timeout` for all of them. A server that does not read fails
    /// the send at the timeout instead of blocking forever (and a server that reads a little at a
    /// time cannot stretch it: the timeout is one deadline, not one per partial write).
    pub fn send(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        self.log.push(self.sends, self.opened.elapsed(), bytes);
        self.last_sent = Instant::now();
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            self.io
                .set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.io.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if !rest.is_empty() && Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} of {} bytes written when the time ran out",
                        bytes.len() - rest.len(),
                        bytes.len()
                    ),
                ));
            }
        }
        self.io.flush()
    }

    /// Pass one file descriptor after a `*_WITH_FDS` message ([`Transport::send_fd`]), within
    /// `timeout`. The byte that carries it is consumed by the server's recvmsg and is no part of
    /// the message stream, so the wire log does not show it.
    pub fn send_fd(&mut self, fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
        self.io
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        self.io.send_fd(fd)
    }

    /// Send bytes in pieces of `size`, each its own write (flushed), `pause` apart.
    pub fn send_in_pieces(
        &mut self,
        bytes: &[u8],
        size: usize,
        pause: Duration,
        timeout: Duration,
    ) -> io::Result<()> {
        for piece in bytes.chunks(size.max(1)) {
            self.send(piece, timeout)?;
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        Ok(())
    }

    /// Close our sending half: the server reads end-of-file.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.io.shutdown_write()
    }

    /// The next thing the server does, waiting until `deadline` at most. Keepalive PINGs are
    /// answered (when [`Peer::auto_pong`]) and still reported.
    pub fn next_event(&mut self, deadline: Instant) -> Event {
        if let Some(f) = self.stash.take(|_| true) {
            return Event::Frame(f);
        }
        loop {
            match self.dec.next_frame() {
                Ok(Some(frame)) => {
                    self.pong_if_ping(&frame, deadline);
                    return Event::Frame(frame);
                }
                Ok(None) => {}
                Err(error) => {
                    self.readable = false;
                    let head = self.dec.pending();
                    return Event::FramingError {
                        error: error.relative_to(self.dec.consumed()),
                        head: head[..head.len().min(32)].to_vec(),
                    };
                }
            }
            if !self.readable {
                return Event::Closed {
                    unfinished: self.dec.buffered(),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Event::Timeout;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if let Err(e) = self.io.set_read_timeout(Some(wait)) {
                self.readable = false;
                return Event::Reset(e.to_string());
            }
            match self.io.read(&mut self.rbuf) {
                Ok(0) => {
                    self.readable = false;
                    self.log.note_ending(Ending::Closed);
                    return Event::Closed {
                        unfinished: self.dec.buffered(),
                    };
                }
                Ok(n) => {
                    self.log
                        .push(self.sends.reverse(), self.opened.elapsed(), &self.rbuf[..n]);
                    self.dec.feed(&self.rbuf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Event::Timeout;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.readable = false;
                    self.log.note_ending(Ending::Reset);
                    return Event::Reset(e.to_string());
                }
            }
        }
    }

    /// Answer a PING with PONG, within `deadline`. A server that stops reading makes the PONG's write
    /// block: it may block until the deadline once, then no more PONGs are sent on this connection
    /// (otherwise every PING of a flood would cost a write timeout, long past the deadline).
    fn pong_if_ping(&mut self, frame: &OwnedFrame, deadline: Instant) {
        let h = frame.header();
        if self.auto_pong
            && !self.pong_failed
            && h.prog == KEEPALIVE_PROGRAM
            && h.msg_type == MessageType::Message
            && KeepaliveProc::from_raw(h.procedure) == KeepaliveProc::Ping
        {
            let mut pong = *h;
            pong.procedure = 2;
            let mut bytes = Vec::with_capacity(28);
            if virtwire_protocol::encode_frame(&mut bytes, &pong, None, &[], self.judge.limits())
                .is_ok()
            {
                let left = deadline.saturating_duration_since(Instant::now());
                // A PONG is not one of the case's messages: `last_sent` stays the case's.
                let last = self.last_sent;
                if self.send(&bytes, left).is_err() {
                    self.pong_failed = true;
                }
                self.last_sent = last;
            }
        }
    }

    /// Judge a received frame into a [`Reply`].
    pub fn judge_frame(&self, frame: &OwnedFrame) -> Reply {
        let origin = Origin {
            file: "",
            pkt: None,
            ts_ns: None,
            conn: None,
            dir: Some(self.sends.reverse()),
            offset: frame.stream_offset(),
        };
        let rec = self.judge.message(origin, frame.frame());
        let error = match &rec.body {
            BodyOut::Core(Body::Error(e)) => Some(RpcError {
                code: e.code,
                domain: e.domain,
                message: e.message.map(|m| String::from_utf8_lossy(m).into_owned()),
            }),
            _ => None,
        };
        Reply {
            header: *frame.header(),
            len: rec.frame.len_word(),
            error,
            decode_error: rec.error.clone(),
            body: serde_json::to_value(super::json::BodyJson(&rec.body))
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Wait for the reply to call `serial` (type REPLY or REPLY_WITH_FDS, any program), until
    /// `deadline`. Other frames that arrive meanwhile (events, keepalives, other replies) are set aside
    /// for [`Peer::next_event`], up to 64 replies and 64 other frames and one largest frame's
    /// worth of bytes; the rest are dropped ([`Peer::dropped`]). Returns the reply, or the event
    /// that ended the wait.
    pub fn reply(&mut self, serial: u32, deadline: Instant) -> Result<Reply, Event> {
        let is_it = |f: &OwnedFrame| f.header().msg_type.is_reply() && f.header().serial == serial;
        if let Some(f) = self.stash.take(is_it) {
            return Ok(self.judge_frame(&f));
        }
        // What was set aside before is not it; wait with the stash out of next_event's way.
        let mut aside = std::mem::take(&mut self.stash);
        let room = self.judge.limits().frame_max() as usize;
        let out = loop {
            match self.next_event(deadline) {
                Event::Frame(f) if is_it(&f) => {
                    break Ok(self.judge_frame(&f));
                }
                Event::Frame(f) => {
                    self.note_if_stray(&f);
                    if !aside.keep(f, room) {
                        self.dropped += 1;
                    }
                }
                other => break Err(other),
            }
        };
        self.stash = aside;
        out
    }

    /// When the latest bytes were sent on this connection (when it opened, before any).
    pub fn last_sent(&self) -> Instant {
        self.last_sent
    }

    /// Watch, from `since` on, for frames the server must not send: every frame that arrives while
    /// [`Peer::reply`] waits for another one, is not a keepalive PING and that `allow` does not
    /// accept is kept (the first 8, the rest counted) with its arrival time since `since`, until
    /// [`Peer::take_strays`] takes them. The frames are still set aside as before. Replaces any
    /// earlier watch; [`Peer::unwatch`] ends it.
    /// `what` says what must not come, for reports.
    pub fn watch(&mut self, since: Instant, allow: fn(&Reply) -> bool, what: impl Into<String>) {
        self.watch = Some(Watch {
            since,
            what: what.into(),
            allow,
            strays: Vec::new(),
            more: 0,
        });
    }

    /// End the watch ([`Peer::watch`]).
    pub fn unwatch(&mut self) {
        self.watch = None;
    }

    /// The watch's start, what it watches for, and whether it accepts `r`, when a watch is on.
    pub fn watched(&self, r: &Reply) -> Option<(Instant, &str, bool)> {
        self.watch
            .as_ref()
            .map(|w| (w.since, w.what.as_str(), (w.allow)(r)))
    }

    /// What the watch watches for, when one is on.
    pub fn watching(&self) -> Option<&str> {
        self.watch.as_ref().map(|w| w.what.as_str())
    }

    /// The stray frames kept so far (arrival time since the watch's start, the frame judged) and how
    /// many more came; the watch goes on.
    pub fn take_strays(&mut self) -> (Vec<(Duration, Reply)>, usize) {
        match self.watch.as_mut() {
            Some(w) => (std::mem::take(&mut w.strays), std::mem::take(&mut w.more)),
            None => (Vec::new(), 0),
        }
    }

    /// Keep `f` as a stray when a watch is on and does not allow it (a keepalive PING is never a
    /// stray: a server that asked for keepalive may PING at any time, and it is answered).
    fn note_if_stray(&mut self, f: &OwnedFrame) {
        if self.watch.is_none() || is_ping(f) {
            return;
        }
        let r = self.judge_frame(f);
        if let Some(w) = self.watch.as_mut()
            && !(w.allow)(&r)
        {
            if w.strays.len() < STRAYS_KEPT {
                w.strays.push((w.since.elapsed(), r));
            } else {
                w.more += 1;
            }
        }
    }

    /// Frames that arrived while a case waited for another one and were dropped because the stash
    /// was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
