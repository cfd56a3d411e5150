//! The recording proxy behind `virtwire record`: a transparent relay between real clients and a real
//! server, over TCP or unix sockets, that keeps what crossed each connection as
//! [`Chunk`]s.
//!
//! It never parses libvirt bytes (only [`crate::wire`] does): what goes in one side comes out of the
//! other, byte for byte, in the same order, in both directions.
//!
//! # Design: a thread per direction
//!
//! Each accepted connection gets two threads (a small stack each and one fixed relay buffer,
//! [`Config::buffer`]): one reads the client and writes the upstream, the other the reverse. Each
//! direction is a plain loop of blocking `read` → record → `write_all`, which gives the guarantees
//! the proxy exists for without any bookkeeping:
//! - **order**: one thread owns a direction and there is no queue, so bytes cannot be reordered,
//!   duplicated or dropped;
//! - **bounded memory**: the thread does not read again until its write is done, so a slow receiver
//!   slows its sender (TCP back-pressure) instead of filling memory; the recording itself is capped
//!   per connection ([`Config::max_record_bytes`]);
//! - **half-close**: end-of-file on one side is passed on as `shutdown(Write)` on the other, and the
//!   other direction keeps going;
//! - **no hang on a peer that stops reading**: writes carry a timeout (`SO_SNDTIMEO`,
//!   [`Config::write_timeout`]); when it fires both sides are reset.
//!
//! A poll loop would use fewer threads, but needs either `unsafe` `poll(2)` (the crate forbids
//! unsafe code) or an event-loop dependency, plus per-direction state for partial writes and
//! explicit write deadlines. A recording proxy for a conformance suite carries a handful of
//! connections, where two threads each cost nothing that matters.
//!
//! # Resets and stops
//!
//! A read error (a reset) or a failed or timed-out write ends the connection: both sockets get
//! `SO_LINGER` 0, so closing them sends a TCP reset, and the other relay thread is woken by shutting
//! down read halves (which sends nothing). A reset by one peer thus reaches the other as a reset,
//! not as a clean end-of-file. [`Proxy::stop`] (Ctrl-C), [`Config::stop_after`] and
//! [`Config::stop_after_connections`] stop accepting and close the connections still open with a FIN
//! each way.
//!
//! # Recording
//!
//! A chunk is what one `read` returned, recorded before it is forwarded, with its time since the
//! connection was accepted taken under the recording's lock: times never go backwards in recording
//! order, and a reply is never recorded before the call it answers. Each finished connection is
//! delivered as an [`Event::Closed`] on the channel [`Proxy::start`] returns.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::capture::tcp::Dir;
use crate::capture::write::{Close, Flow, FlowEnd};
use crate::wire::peer::Chunk;

mod relay;
mod stream;

use relay::Conn;
use stream::Stream;

/// An address to listen on or connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    /// `127.0.0.1:16509`, or `unix:/path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The proxy's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where clients connect (a TCP port of 0 picks a free one: see [`Proxy::local_addr`]).
    pub listen: Addr,
    /// The server every client is relayed to.
    pub upstream: Addr,
    /// Most bytes recorded per connection (chunk bytes plus a small per-chunk overhead); beyond it
    /// the connection is still relayed but no longer recorded ([`Event::Capped`]). Default 256 MiB.
    pub max_record_bytes: usize,
    /// Longest a write to either side may block before the connection is reset. Default 30 s.
    pub write_timeout: Duration,
    /// Longest a TCP connect to the upstream may take. Default 10 s.
    pub connect_timeout: Duration,
    /// Relay buffer per direction (the most one chunk holds). Default 64 KiB.
    pub buffer: usize,
    /// Stop after this long.
    pub stop_after: Option<Duration>,
    /// Stop once this many connections have closed.
    pub stop_after_connections: Option<u64>,
}

impl Config {
    /// Defaults for relaying `listen` to `upstream`.
    pub fn new(listen: Addr, upstream: Addr) -> Self {
        Config {
            listen,
            upstream,
            max_record_bytes: 256 << 20,
            write_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            buffer: 64 << 10,
            stop_after: None,
            stop_after_connections: None,
        }
    }
}

/// How one direction of a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndHow {
    /// The sender closed its half (end-of-file); passed on as a FIN.
    Fin,
    /// Reading the sender failed (it reset the connection): both sides were reset.
    Reset(String),
    /// Writing to the receiver failed (it reset or went away): both sides were reset.
    WriteFailed(String),
    /// The receiver stopped reading for [`Config::write_timeout`]: both sides were reset.
    Stalled,
    /// The proxy stopped while the direction was open: both sides got a FIN.
    Stopped,
    /// The other direction failed first: this one was cut by the resets.
    Aborted,
}

impl fmt::Display for EndHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndHow::Fin => f.write_str("closed (FIN)"),
            EndHow::Reset(e) => write!(f, "reset by the sender ({e})"),
            EndHow::WriteFailed(e) => write!(f, "the receiver failed ({e})"),
            EndHow::Stalled => f.write_str("the receiver stopped reading (write timeout)"),
            EndHow::Stopped => f.write_str("stopped by the proxy"),
            EndHow::Aborted => f.write_str("cut after the other direction failed"),
        }
    }
}

/// When and how a direction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    /// Time since the connection was accepted.
    pub at: Duration,
    /// How.
    pub how: EndHow,
}

/// One direction's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirTotals {
    /// Bytes read from the sender (all relayed unless the direction failed; recorded unless the
    /// recording was capped).
    pub bytes: u64,
    /// How it ended (`None`: it never started, the upstream could not be reached).
    pub end: Option<End>,
}

/// A finished connection and its recording.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Connection number, in accept order from 0.
    pub id: u64,
    /// The client's address (TCP only).
    pub client: Option<SocketAddr>,
    /// The upstream's address (TCP only, once connected).
    pub server: Option<SocketAddr>,
    /// When it was accepted (wall clock).
    pub opened: SystemTime,
    /// How long it lasted.
    pub duration: Duration,
    /// What crossed it, both directions in recording order; times since [`Connection::opened`].
    pub chunks: Vec<Chunk>,
    /// Client to server.
    pub c2s: DirTotals,
    /// Server to client.
    pub s2c: DirTotals,
    /// True when the recording was capped ([`Config::max_record_bytes`]): `chunks` is a prefix.
    pub capped: bool,
    /// Why the upstream could not be reached, if it could not (the client was then closed).
    pub upstream_error: Option<String>,
}

/// The client port shown for a unix-socket client in captures: 40000 + the connection number
/// (mod 20000).
fn invented_client_port(id: u64) -> u16 {
    40000 + (id % 20000) as u16
}

impl Connection {
    /// The bytes recorded in one direction, concatenated.
    pub fn recorded(&self, dir: Dir) -> Vec<u8> {
        let mut v = Vec::new();
        for c in self.chunks.iter().filter(|c| c.dir == dir) {
            v.extend_from_slice(&c.bytes);
        }
        v
    }

    /// The connection as a TCP flow for a capture ([`crate::capture::write`]). Real addresses for TCP
    /// ends; a unix-socket end is shown on 127.0.0.1 (or ::1 facing an IPv6 peer): the client on port
    /// 40000 + id (mod 20000), the server on libvirtd's port 16509, which `virtwire decode` and
    /// Wireshark recognise without options.
    pub fn flow(&self) -> Flow<'_> {
        let v6 =
            self.client.is_some_and(|a| a.is_ipv6()) || self.server.is_some_and(|a| a.is_ipv6());
        let lo: std::net::IpAddr = if v6 {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        let client = self
            .client
            .unwrap_or_else(|| SocketAddr::new(lo, invented_client_port(self.id)));
        let server = self
            .server
            .unwrap_or_else(|| SocketAddr::new(lo, crate::wire::DEFAULT_PORTS[0]));
        let mut ends = Vec::new();
        for (dir, t) in [(Dir::C2s, &self.c2s), (Dir::S2c, &self.s2c)] {
            let Some(end) = &t.end else { continue };
            let other = if dir == Dir::C2s { Dir::S2c } else { Dir::C2s };
            let (from, close) = match end.how {
                EndHow::Fin | EndHow::Stopped => (dir, Close::Fin),
                EndHow::Reset(_) => (dir, Close::Reset),
                EndHow::WriteFailed(_) | EndHow::Stalled => (other, Close::Reset),
                EndHow::Aborted => continue,
            };
            ends.push(FlowEnd {
                from,
                at: end.at,
                close,
            });
        }
        ends.sort_by_key(|e| e.at);
        Flow {
            client,
            server,
            start: self.opened,
            chunks: &self.chunks,
            sent: [self.c2s.bytes, self.s2c.bytes],
            ends,
            refused: self.upstream_error.is_some(),
        }
    }
}

/// What the proxy reports while it runs.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A client connected.
    Opened {
        /// Connection number.
        id: u64,
        /// The client's address (TCP only).
        client: Option<SocketAddr>,
    },
    /// A connection's recording reached [`Config::max_record_bytes`]; it is still relayed.
    Capped {
        /// Connection number.
        id: u64,
        /// The cap.
        limit: usize,
    },
    /// A connection finished (both directions ended), with its recording.
    Closed(Box<Connection>),
    /// Accepting a client failed (e.g. too many open files); the proxy goes on.
    AcceptFailed(String),
}

/// Totals of a proxy run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub connections: u64,
    /// Connections whose upstream could not be reached.
    pub upstream_failures: u64,
    /// Connections whose recording was capped.
    pub capped: u64,
    /// Bytes client → server.
    pub c2s_bytes: u64,
    /// Bytes server → client.
    pub s2c_bytes: u64,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    closed: AtomicU64,
    live: Mutex<HashMap<u64, Arc<Conn>>>,
    summary: Mutex<Summary>,
}

/// Asks a running proxy to stop (cheap to clone, for a Ctrl-C handler).
#[derive(Clone, Debug)]
pub struct Stopper(Arc<Shared>);

impl Stopper {
    /// Stop accepting, close the open connections (FIN both ways) and finish.
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    local: Addr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// How often the accept loop looks at its stop conditions while no client connects.
const POLL: Duration = Duration::from_millis(10);

/// Stack of a relay thread (its buffer is on the heap).
const RELAY_STACK: usize = 256 << 10;

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn bind(addr: &Addr) -> io::Result<(Listener, Addr)> {
        match addr {
            Addr::Tcp(a) => {
                let l = TcpListener::bind(a)?;
                let local = l.local_addr()?;
                l.set_nonblocking(true)?;
                Ok((Listener::Tcp(l), Addr::Tcp(local)))
            }
            Addr::Unix(p) => {
                remove_stale_socket(p)?;
                let l = UnixListener::bind(p)?;
                l.set_nonblocking(true)?;
                Ok((Listener::Unix(l, p.clone()), addr.clone()))
            }
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A unix socket path left by a proxy that died is removed; one that something listens on, or a
/// file that is not a socket, is an error.
fn remove_stale_socket(p: &std::path::Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", p.display()),
        ));
    }
    if UnixStream::connect(p).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("something already listens on {}", p.display()),
        ));
    }
    std::fs::remove_file(p)
}

impl Proxy {
    /// Listen on `config.listen` and relay every client to `config.upstream` until stopped. Returns
    /// the proxy and the channel of its [`Event`]s, which disconnects once the proxy has finished and
    /// every connection's [`Event::Closed`] was sent. Fails only if it cannot listen.
    pub fn start(config: Config) -> io::Result<(Proxy, Receiver<Event>)> {
        let (listener, local) = Listener::bind(&config.listen)?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = channel();
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("virtwire-proxy-accept".into())
            .spawn(move || accept_loop(listener, config, s, tx))?;
        Ok((
            Proxy {
                local,
                shared,
                accept: Some(accept),
            },
            rx,
        ))
    }

    /// Where it listens (with the port the system picked for port 0).
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// A handle that stops the proxy from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }

    /// Stop accepting, close the open connections (FIN both ways) and finish; see [`Proxy::wait`].
    pub fn stop(&self) {
        self.stopper().stop()
    }

    /// Wait until the proxy has finished (stopped, or a [`Config::stop_after`] /
    /// [`Config::stop_after_connections`] condition met, and every connection closed). The totals.
    pub fn wait(mut self) -> Summary {
        self.join();
        self.shared
            .summary
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn join(&mut self) {
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Proxy {
    /// Dropping a running proxy stops it and waits for it.
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
            self.join();
        }
    }
}

fn accept_loop(listener: Listener, cfg: Config, shared: Arc<Shared>, events: Sender<Event>) {
    let deadline = cfg.stop_after.map(|d| Instant::now() + d);
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    loop {
        if shared.stop.load(Ordering::SeqCst)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || cfg
                .stop_after_connections
                .is_some_and(|n| shared.closed.load(Ordering::SeqCst) >= n)
        {
            break;
        }
        match listener.accept() {
            Ok(client) => {
                let id = next_id;
                next_id += 1;
                if let Ok(mut s) = shared.summary.lock() {
                    s.connections += 1;
                }
                let conn = Arc::new(Conn::new(id, client, cfg.max_record_bytes, events.clone()));
                if let Ok(mut live) = shared.live.lock() {
                    live.insert(id, conn.clone());
                }
                let (s, c, e) = (shared.clone(), cfg.clone(), events.clone());
                match std::thread::Builder::new()
                    .name(format!("virtwire-proxy-{id}"))
                    .stack_size(RELAY_STACK)
                    .spawn(move || serve(s, c, conn, e))
                {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        let _ = events.send(Event::AcceptFailed(format!(
                            "no thread for connection {id}: {e}"
                        )));
                        if let Ok(mut live) = shared.live.lock()
                            && let Some(c) = live.remove(&id)
                        {
                            c.stop();
                        }
                    }
                }
                handles.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = events.send(Event::AcceptFailed(e.to_string()));
                std::thread::sleep(POLL * 5);
            }
        }
    }
    drop(listener);
    shared.stop.store(true, Ordering::SeqCst);
    let live: Vec<Arc<Conn>> = shared
        .live
        .lock()
        .map(|l| l.values().cloned().collect())
        .unwrap_or_default();
    for c in live {
        c.stop();
    }
    for h in handles {
        let _ = h.join();
    }
}

/// One connection, start to end: connect upstream, relay both ways, report.
fn serve(shared: Arc<Shared>, cfg: Config, conn: Arc<Conn>, events: Sender<Event>) {
    let id = conn.id;
    let _ = events.send(Event::Opened {
        id,
        client: conn.client.peer_tcp(),
    });
    let upstream = match conn.client.prepare(cfg.write_timeout) {
        Err(e) => Err(format!("the client's socket: {e}")),
        Ok(()) => relay::connect(&cfg.upstream, cfg.connect_timeout)
            .and_then(|s| s.prepare(cfg.write_timeout).map(|()| s))
            .map_err(|e| format!("{}: {e}", cfg.upstream)),
    };
    let upstream_error = match upstream {
        Ok(s) => {
            conn.set_upstream(s);
            let c = conn.clone();
            let buf = cfg.buffer;
            let s2c = std::thread::Builder::new()
                .name(format!("virtwire-proxy-{id}-s2c"))
                .stack_size(RELAY_STACK)
                .spawn(move || c.pump(Dir::S2c, buf));
            match s2c {
                Ok(h) => {
                    conn.pump(Dir::C2s, cfg.buffer);
                    let _ = h.join();
                    None
                }
                Err(e) => Some(format!("no relay thread: {e}")),
            }
        }
        Err(e) => Some(e),
    };
    if upstream_error.is_some() {
        conn.stop();
    }
    let record = conn.finish(upstream_error);
    if let Ok(mut live) = shared.live.lock() {
        live.remove(&id);
    }
    if let Ok(mut s) = shared.summary.lock() {
        s.upstream_failures += u64::from(record.upstream_error.is_some());
        s.capped += u64::from(record.capped);
        s.c2s_bytes += record.c2s.bytes;
        s.s2c_bytes += record.s2c.bytes;
    }
    // Counted before the event is sent: a consumer that sees N closed connections may rely on a
    // `stop_after_connections(N)` proxy stopping.
    shared.closed.fetch_add(1, Ordering::SeqCst);
    let _ = events.send(Event::Closed(Box::new(record)));
}
