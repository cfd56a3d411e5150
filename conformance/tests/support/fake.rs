//! Fake libvirt servers for the runner's tests: in-process, on 127.0.0.1 (ephemeral ports), one
//! thread per connection, every loop bounded in time ([`LIFETIME`]) and bytes, all stopped and
//! joined when the [`FakeServer`] is dropped. A server is a script over a [`Conn`], so a test reads
//! like the conversation it stages: [`Fake`] is a small libvirt look-alike that answers what the
//! built-in catalogue asks, and its knobs (and the scripts beside it) make it misbehave.
//!
//! The fakes read and write frames through `virtwire_protocol` ([`FrameDecoder`], [`FrameBuilder`])
//! like everything else in virtwire: nothing here indexes a frame.
#![allow(dead_code)] // each test binary uses its own part of the kit

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use virtwire_conformance::runner::{self, Config, Connector, RunReport};
use virtwire_conformance::wire::Judge;
use virtwire_conformance::wire::peer::Transport;
use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::{
    Compat, ErrorBody, FrameBuilder, FrameDecoder, Header, KeepaliveProc, Limits, MessageStatus,
    MessageType, OwnedFrame, Reader, Writer,
};

/// The longest any fake server runs, whatever the test does.
pub const LIFETIME: Duration = Duration::from_secs(40);
/// The most one connection's script reads (then it stops reading).
pub const READ_BUDGET: usize = 64 << 20;
/// The most one connection's script writes (then it stops writing).
pub const WRITE_BUDGET: usize = 2 << 30;
/// How often blocked reads and writes look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A connection script.
pub type Script = dyn Fn(Conn) + Send + Sync;

/// A fake server. Dropping it stops every loop and joins every thread.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
    /// Held open for the servers that never accept (a listener or a bound socket).
    _held: Option<Box<dyn Send>>,
}

impl FakeServer {
    /// A server that accepts every connection and runs `script` on it in its own thread.
    pub fn start(script: impl Fn(Conn) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let until = Instant::now() + LIFETIME;
        let acceptor = {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                let mut conns = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    match listener.accept() {
                        Ok((s, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            let (stop, script) = (stop.clone(), script.clone());
                            conns.push(std::thread::spawn(move || {
                                if let Ok(c) = Conn::new(s, stop, until) {
                                    script(c);
                                }
                            }));
                        }
                        // WouldBlock: nobody is connecting; anything else: try again too.
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                for c in conns {
                    let _ = c.join();
                }
            })
        };
        FakeServer {
            addr,
            stop,
            accepted,
            acceptor: Some(acceptor),
            _held: None,
        }
    }

    /// A socket that listens but never calls accept: the kernel completes each TCP handshake into
    /// the backlog, and what the client sends is never read.
    pub fn listening_never_accepting() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        FakeServer {
            addr,
            stop: Arc::new(AtomicBool::new(true)),
            accepted: Arc::new(AtomicUsize::new(0)),
            acceptor: None,
            _held: Some(Box::new(listener)),
        }
    }

    /// A socket bound to a port but not listening: every connect is refused at once (and the port
    /// stays ours, so nothing else answers on it).
    pub fn bound_not_listening() -> Self {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let want: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        s.bind(&want.into()).expect("bind loopback");
        let addr = s
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("an IP address");
        FakeServer {
            addr,
            stop: Arc::new(AtomicBool::new(true)),
            accepted: Arc::new(AtomicUsize::new(0)),
            acceptor: None,
            _held: Some(Box::new(s)),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// What the client did next, as a fake server sees it.
#[derive(Debug)]
pub enum Next {
    /// A whole frame.
    Frame(OwnedFrame),
    /// The client closed, reset, or sent bytes that cannot be framed (libvirt drops such a client).
    Gone,
    /// The server is stopping (or a budget ran out).
    Stop,
}

/// One accepted connection, from the fake server's side. Every blocking call wakes up every
/// [`POLL`] to look at the stop flag and the server's lifetime.
pub struct Conn {
    stream: TcpStream,
    dec: FrameDecoder,
    stop: Arc<AtomicBool>,
    until: Instant,
    read: usize,
    written: usize,
}

impl Conn {
    fn new(stream: TcpStream, stop: Arc<AtomicBool>, until: Instant) -> io::Result<Self> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(POLL))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            dec: FrameDecoder::new(&Limits::default(), Compat::Libvirt),
            stop,
            until,
            read: 0,
            written: 0,
        })
    }

    /// True once the server is stopping.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.until
    }

    /// A second handle on the socket and the stop signal, for a writer thread of its own.
    pub fn writer(&self) -> io::Result<SharedWriter> {
        Ok(SharedWriter {
            stream: Arc::new(Mutex::new(self.stream.try_clone()?)),
            stop: self.stop.clone(),
            until: self.until,
        })
    }

    /// The next frame the client sends.
    pub fn next_frame(&mut self) -> Next {
        let mut buf = [0u8; 16 << 10];
        loop {
            match self.dec.next_frame() {
                Ok(Some(f)) => return Next::Frame(f),
                Ok(None) => {}
                Err(_) => return Next::Gone,
            }
            if self.stopped() || self.read >= READ_BUDGET {
                return Next::Stop;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Next::Gone,
                Ok(n) => {
                    self.read += n;
                    self.dec.feed(&buf[..n]);
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Gone,
            }
        }
    }

    /// Read `n` bytes at a time, `pause` apart, and drop them, until the client goes or the server
    /// stops: a server that drains slowly.
    pub fn trickle(&mut self, n: usize, pause: Duration) {
        let mut buf = vec![0u8; n];
        while !self.stopped() && self.read < READ_BUDGET {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(k) => self.read += k,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
            std::thread::sleep(pause);
        }
    }

    /// Read and drop whatever the client sends until it goes or the server stops.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 16 << 10];
        while !self.stopped() && self.read < READ_BUDGET {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.read += n,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Write all of `bytes`, retrying while the client is slow, until the server stops. False when
    /// the bytes could not all be written.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        if self.written + bytes.len() > WRITE_BUDGET {
            return false;
        }
        self.written += bytes.len();
        write_fully(&mut self.stream, bytes, &self.stop, self.until)
    }

    /// Write `bytes` one byte per write, `pause` apart.
    pub fn write_slowly(&mut self, bytes: &[u8], pause: Duration) -> bool {
        for b in bytes {
            if !self.write(std::slice::from_ref(b)) {
                return false;
            }
            std::thread::sleep(pause);
        }
        true
    }

    /// Close cleanly: end our sending half (the client reads end-of-file), then read until the
    /// client goes, so that no unread byte turns the close into a reset.
    pub fn close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        self.drain();
    }

    /// Shrink the socket's receive buffer to about `n` bytes: what the client sends fills it sooner.
    pub fn receive_buffer(&self, n: usize) {
        let _ = socket2::SockRef::from(&self.stream).set_recv_buffer_size(n);
    }

    /// Wait until the client has sent something (without reading it). False when it went first.
    pub fn wait_for_data(&mut self) -> bool {
        let mut one = [0u8; 1];
        while !self.stopped() {
            match self.stream.peek(&mut one) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Reset the connection: SO_LINGER 0, then close (the kernel sends RST, not FIN).
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        drop(self);
    }
}

/// A shared writing end of a connection, for a script that writes from two threads (replies and a
/// flood): each [`SharedWriter::write`] puts its bytes on the wire whole, never interleaved.
#[derive(Clone)]
pub struct SharedWriter {
    stream: Arc<Mutex<TcpStream>>,
    stop: Arc<AtomicBool>,
    until: Instant,
}

impl SharedWriter {
    /// Write all of `bytes` (see [`Conn::write`]).
    pub fn write(&self, bytes: &[u8]) -> bool {
        match self.stream.lock() {
            Ok(mut s) => write_fully(&mut s, bytes, &self.stop, self.until),
            Err(_) => false,
        }
    }

    /// True once the server is stopping.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.until
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn write_fully(s: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool, until: Instant) -> bool {
    while !bytes.is_empty() {
        if stop.load(Ordering::Relaxed) || Instant::now() >= until {
            return false;
        }
        match s.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// A libvirt look-alike.

/// `remote` procedure numbers the fake knows (remote_protocol.x).
mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    /// The last remote procedure of libvirt 11.7 (docs/protocol.md §4).
    pub const LAST: i32 = 453;
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: i32 = 317;
    pub const CONNECT_GET_ALL_DOMAIN_STATS: i32 = 344;
}
/// VIR_ERR_INTERNAL_ERROR, VIR_ERR_NO_SUPPORT, VIR_ERR_RPC; VIR_FROM_RPC.
const ERR_INTERNAL: i32 = 1;
const ERR_NO_SUPPORT: i32 = 3;
const ERR_RPC: i32 = 39;
const FROM_RPC: i32 = 7;
/// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE.
const FEATURE_KEEPALIVE: i32 = 10;

/// How the server writes its answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pace {
    /// Each answer in one write.
    #[default]
    Whole,
    /// One byte per write, this far apart.
    ByteByByte(Duration),
}

/// A small libvirt look-alike that answers what the built-in catalogue asks the way libvirtd 9.0
/// does (docs/protocol.md §4, §11): CONNECT_OPEN once, AUTH_LIST and CONNECT_SUPPORTS_FEATURE before it,
/// CONNECT_GET_TYPE and CONNECT_LIST_ALL_DOMAINS (a world with no domain, so the stream and event
/// cases are unsupported) after it, a close for CALL_WITH_FDS announcing descriptors (TCP carries
/// none), REPLY/ERROR for unknown programs, versions, procedures (events included) and statuses,
/// silence for anything that is not a CALL, PONG for PING, a close for bytes that cannot be framed
/// and after CONNECT_CLOSE. Its knobs make it misbehave.
#[derive(Clone, Debug)]
pub struct Fake {
    /// CONNECT_SUPPORTS_FEATURE(keepalive) answers 1 and PING gets PONG.
    pub keepalive: bool,
    /// CONNECT_OPEN fails.
    pub open_fails: bool,
    /// Arguments with bytes after them are refused (libvirt accepts them).
    pub strict_args: bool,
    /// Added to the serial of every reply.
    pub serial_shift: u32,
    /// Added to the procedure of every reply.
    pub proc_shift: i32,
    /// How answers are written.
    pub pace: Pace,
    /// Alongside the answers, write MESSAGE frames (domain events) as fast as the client takes them.
    pub flood_events: bool,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            keepalive: true,
            open_fails: false,
            strict_args: false,
            serial_shift: 0,
            proc_shift: 0,
            pace: Pace::Whole,
            flood_events: false,
        }
    }
}

/// What the fake does with one frame.
enum Act {
    Send(Vec<u8>),
    Nothing,
    SendThenClose(Vec<u8>),
}

impl Fake {
    /// Serve one connection.
    pub fn serve(&self, mut c: Conn) {
        let c = &mut c;
        let Ok(w) = c.writer() else { return };
        let flood = self.flood_events.then(|| {
            let w = w.clone();
            std::thread::spawn(move || {
                let batch = event_batch(64 << 10);
                let mut sent = 0;
                while sent < WRITE_BUDGET && w.write(&batch) {
                    sent += batch.len();
                }
            })
        });
        let mut open = false;
        let pace = self.pace;
        let send = |c: &mut Conn, bytes: &[u8]| match pace {
            Pace::Whole => w.write(bytes),
            Pace::ByteByByte(p) => c.write_slowly(bytes, p),
        };
        while let Next::Frame(f) = c.next_frame() {
            match self.answer(&f, &mut open) {
                Act::Nothing => {}
                Act::Send(b) => {
                    if !send(c, &b) {
                        break;
                    }
                }
                Act::SendThenClose(b) => {
                    send(c, &b);
                    break;
                }
            }
        }
        // End our side (a flood's next write fails, and it stops), then read until the client goes:
        // the close is a clean end-of-file, never a reset.
        let _ = c.stream.shutdown(Shutdown::Write);
        c.drain();
        if let Some(t) = flood {
            let _ = t.join();
        }
    }

    fn reply(&self, call: &Header, status: MessageStatus, body: Vec<u8>) -> Vec<u8> {
        let mut h = call.reply_to(status);
        h.serial = h.serial.wrapping_add(self.serial_shift);
        h.procedure = h.procedure.wrapping_add(self.proc_shift);
        FrameBuilder::new(h).payload(body).build_unchecked()
    }

    fn ok(&self, call: &Header, body: Vec<u8>) -> Act {
        Act::Send(self.reply(call, MessageStatus::Ok, body))
    }

    fn error(&self, call: &Header, code: i32, message: &str) -> Act {
        let body = ErrorBody::new(code, FROM_RPC, message)
            .to_bytes(&Limits::default())
            .expect("a short error");
        Act::Send(self.reply(call, MessageStatus::Error, body))
    }

    fn answer(&self, f: &OwnedFrame, open: &mut bool) -> Act {
        let h = *f.header();
        if !h.msg_type.is_call() {
            // Keepalive is MESSAGE traffic; everything else that is not a CALL gets no answer.
            let ping = h.prog == KEEPALIVE_PROGRAM
                && h.msg_type == MessageType::Message
                && KeepaliveProc::from_raw(h.procedure) == KeepaliveProc::Ping;
            return if ping && self.keepalive {
                Act::Send(KeepaliveProc::Pong.frame())
            } else {
                Act::Nothing
            };
        }
        if h.msg_type == MessageType::CallWithFds && f.nfds().unwrap_or(0) > 0 {
            // Over TCP no descriptor can come: libvirtd closes the connection.
            return Act::SendThenClose(Vec::new());
        }
        if (h.prog, h.vers) != (REMOTE_PROGRAM, 1) {
            let m = format!("Cannot find program {} version {}", h.prog, h.vers);
            return self.error(&h, ERR_RPC, &m);
        }
        if h.status != MessageStatus::Ok {
            let m = format!("Unexpected message status {}", h.status.raw());
            return self.error(&h, ERR_RPC, &m);
        }
        if !(1..=proc::LAST).contains(&h.procedure) || is_event(h.procedure) {
            let m = format!("unknown procedure: {}", h.procedure);
            return self.error(&h, ERR_RPC, &m);
        }
        // As libvirt: the arguments are decoded (by the schema, when there is one) before any
        // handler runs; what does not decode is "Unable to decode message payload".
        if let Some(s) = fake_schema()
            && s.validate_body(&h, f.payload(), 28, &Limits::default(), Compat::Libvirt)
                .is_err()
        {
            return self.error(&h, ERR_RPC, "Unable to decode message payload");
        }
        let mut args = Reader::new(f.payload(), Compat::Libvirt);
        let undecodable = |args: &Reader<'_>| self.strict_args && !args.is_empty();
        match h.procedure {
            proc::AUTH_LIST => {
                let mut b = Vec::new();
                let mut w = Writer::new(&mut b);
                w.u32(1);
                w.i32(0); // REMOTE_AUTH_NONE
                self.ok(&h, b)
            }
            proc::CONNECT_SUPPORTS_FEATURE => match args.i32() {
                Ok(feature) if !undecodable(&args) => {
                    let yes = feature == FEATURE_KEEPALIVE && self.keepalive;
                    self.ok(&h, i32::from(yes).to_be_bytes().to_vec())
                }
                _ => self.error(&h, ERR_RPC, "Unable to decode message payload"),
            },
            proc::CONNECT_OPEN if *open => {
                self.error(&h, ERR_INTERNAL, "internal error: connection already open")
            }
            proc::CONNECT_OPEN if self.open_fails => self.error(
                &h,
                ERR_INTERNAL,
                "internal error: no connection driver available",
            ),
            proc::CONNECT_OPEN => {
                *open = true;
                self.ok(&h, Vec::new())
            }
            _ if !*open => self.error(
                &h,
                ERR_INTERNAL,
                "internal error: hypervisor connection not open",
            ),
            proc::CONNECT_CLOSE => {
                Act::SendThenClose(self.reply(&h, MessageStatus::Ok, Vec::new()))
            }
            proc::CONNECT_LIST_ALL_DOMAINS => match (args.i32(), args.u32()) {
                (Ok(_), Ok(_)) if !undecodable(&args) => {
                    // No domains: `domains<>` empty, `ret` 0.
                    self.ok(&h, [0u8; 8].to_vec())
                }
                _ => self.error(&h, ERR_RPC, "Unable to decode message payload"),
            },
            proc::CONNECT_GET_ALL_DOMAIN_STATS => {
                // The fake's world has no domain; libvirt's drivers skip the domains named that
                // do not exist: no record.
                self.ok(&h, 0u32.to_be_bytes().to_vec())
            }
            proc::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => match args.i32() {
                // No callback is ever registered here (remoteDispatchConnectDomainEventCallbackDeregisterAny).
                Ok(id) => self.error(
                    &h,
                    ERR_INTERNAL,
                    &format!("internal error: domain event callback {id} not registered"),
                ),
                Err(_) => self.error(&h, ERR_RPC, "Unable to decode message payload"),
            },
            proc::CONNECT_GET_TYPE => {
                let mut b = Vec::new();
                Writer::new(&mut b)
                    .string(b"Test", 256)
                    .expect("a short string");
                self.ok(&h, b)
            }
            _ => self.error(
                &h,
                ERR_NO_SUPPORT,
                "this function is not supported by the fake",
            ),
        }
    }
}

/// The schema the fake decodes arguments with, loaded once (`None` without the .x files).
fn fake_schema() -> Option<&'static virtwire_protocol::schema::Schema> {
    static S: std::sync::OnceLock<Option<virtwire_protocol::schema::Schema>> =
        std::sync::OnceLock::new();
    S.get_or_init(|| super::schema().ok()).as_ref()
}

/// True for a remote procedure that only the server sends (an event: a MESSAGE body, no args or
/// ret). libvirtd has no handler for it and answers "unknown procedure" (CVE-2012-4423's fix).
fn is_event(procedure: i32) -> bool {
    fake_schema()
        .and_then(|s| s.program(REMOTE_PROGRAM, 1))
        .and_then(|p| p.procedure(procedure))
        .is_some_and(|p| p.msg.is_some() && p.args.is_none() && p.ret.is_none())
}

/// MESSAGE frames of the remote program (DOMAIN_EVENT_CALLBACK_LIFECYCLE, 318, serial 1 as libvirt
/// 9.0 sends them), back to back, about `size` bytes.
pub fn event_batch(size: usize) -> Vec<u8> {
    let mut body = Vec::new();
    {
        let mut w = Writer::new(&mut body);
        w.i32(1); // callbackID
        w.string(b"flood", 256).expect("short");
        w.opaque_fixed(&[7; 16]);
        w.i32(-1);
        w.i32(0); // VIR_DOMAIN_EVENT_DEFINED
        w.i32(0);
    }
    let h = Header::new(
        REMOTE_PROGRAM,
        1,
        318,
        MessageType::Message,
        1,
        MessageStatus::Ok,
    );
    let one = FrameBuilder::new(h).payload(body).build_unchecked();
    let mut out = Vec::with_capacity(size + one.len());
    while out.len() < size {
        out.extend_from_slice(&one);
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), for garbage.
pub fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running the catalogue against a fake.

/// The runner's way to a fake: plain TCP to one address, optionally with a small send buffer (as
/// on a busy host: what the server does not read soon blocks the client's writes).
pub struct Tcp {
    /// The fake's address.
    pub addr: SocketAddr,
    /// SO_SNDBUF for each connection, when set.
    pub send_buffer: Option<usize>,
}

impl Connector for Tcp {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        let s = TcpStream::connect_timeout(&self.addr, timeout).map_err(|e| e.to_string())?;
        if let Some(n) = self.send_buffer {
            socket2::SockRef::from(&s)
                .set_send_buffer_size(n)
                .map_err(|e| e.to_string())?;
        }
        Ok(Box::new(s))
    }
    fn describe(&self) -> String {
        format!("test+tcp://{}/default", self.addr)
    }
    fn open_name(&self) -> Option<String> {
        Some("test:///default".into())
    }
}

/// The judge every run uses: default limits, libvirt's leniency, the schema when there is one.
pub fn judge() -> Arc<Judge> {
    static J: std::sync::OnceLock<Arc<Judge>> = std::sync::OnceLock::new();
    J.get_or_init(|| {
        Arc::new(Judge::new(
            Limits::default(),
            Compat::Libvirt,
            super::schema().ok(),
        ))
    })
    .clone()
}

/// Short timeouts, two jobs: a misbehaving server costs a fraction of a second per case.
pub fn quick_config() -> Config {
    Config {
        read_timeout: Duration::from_millis(300),
        silence: Duration::from_millis(200),
        case_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        jobs: 2,
        ..Config::default()
    }
}

/// The whole built-in catalogue (less what `cfg` leaves out) against `addr`.
pub fn run_catalogue(addr: SocketAddr, cfg: &Config) -> RunReport {
    run_catalogue_via(
        Tcp {
            addr,
            send_buffer: None,
        },
        cfg,
    )
}

/// The same through `tcp`.
pub fn run_catalogue_via(tcp: Tcp, cfg: &Config) -> RunReport {
    let all = virtwire_conformance::catalogue::builtin(None);
    let cases = runner::select(&all, cfg).expect("the lists match cases");
    runner::run(&cases, cfg, Box::new(tcp), judge(), None, &mut ())
}

/// One test at a time: the runs measure time, and the floods would slow their neighbours.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}
