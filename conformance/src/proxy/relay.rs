//! One relayed connection: its two streams, its recording, and the loop that pumps one direction.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::stream::Stream;
use super::{Connection, DirTotals, End, EndHow, Event};
use crate::capture::tcp::Dir;
use crate::wire::peer::Chunk;

/// What a recorded chunk costs besides its bytes (its `Vec`, time and direction), counted against
/// the recording cap so that a flood of one-byte reads is bounded too.
const CHUNK_OVERHEAD: usize = 48;

/// The recording of one connection, behind one lock: chunks and ends get their time inside it, so
/// times never go backwards in recording order.
#[derive(Debug, Default)]
struct Recording {
    chunks: Vec<Chunk>,
    /// Bytes counted against the cap (chunk bytes plus [`CHUNK_OVERHEAD`] each).
    used: usize,
    capped: bool,
    /// Bytes read from each side, recorded or not: [c2s, s2c].
    read: [u64; 2],
    ends: [Option<End>; 2],
}

/// A connection being relayed, shared by its two relay threads and the proxy (which may stop it).
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) client: Stream,
    pub(crate) upstream: OnceLock<Stream>,
    /// Peer addresses, taken while connected (a reset socket no longer knows them).
    client_addr: Option<std::net::SocketAddr>,
    server_addr: OnceLock<std::net::SocketAddr>,
    opened: Instant,
    opened_wall: SystemTime,
    max_record: usize,
    rec: Mutex<Recording>,
    /// One direction failed: both sides are being reset; the other direction's end is [`EndHow::Aborted`].
    aborted: AtomicBool,
    /// The proxy is stopping: both sides are being closed; ends are [`EndHow::Stopped`].
    stopping: AtomicBool,
    events: Sender<Event>,
    /// Orders [`Conn::stop`] against [`Conn::set_upstream`], so a stop never misses the upstream.
    gate: Mutex<()>,
}

fn idx(dir: Dir) -> usize {
    match dir {
        Dir::C2s => 0,
        Dir::S2c => 1,
    }
}

impl Conn {
    pub(crate) fn new(id: u64, client: Stream, max_record: usize, events: Sender<Event>) -> Self {
        Conn {
            id,
            client_addr: client.peer_tcp(),
            client,
            upstream: OnceLock::new(),
            server_addr: OnceLock::new(),
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            max_record,
            rec: Mutex::new(Recording::default()),
            aborted: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            events,
            gate: Mutex::new(()),
        }
    }

    /// The upstream is connected: relaying can start. If the proxy began stopping meanwhile, it is
    /// shut down at once (the relay threads then end as stopped).
    pub(crate) fn set_upstream(&self, s: Stream) {
        if let Some(a) = s.peer_tcp() {
            let _ = self.server_addr.set(a);
        }
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.upstream.set(s);
        if self.is_stopping() {
            self.shut_both();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        // A relay thread that panicked mid-push leaves a consistent Vec: keep recording.
        self.rec.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record `bytes` read from `dir`'s sender (before they are forwarded: a reply is never recorded
    /// before the call it answers).
    fn record(&self, dir: Dir, bytes: &[u8]) {
        let mut r = self.lock();
        r.read[idx(dir)] += bytes.len() as u64;
        if r.capped {
            return;
        }
        let cost = bytes.len() + CHUNK_OVERHEAD;
        if r.used.saturating_add(cost) > self.max_record {
            r.capped = true;
            drop(r);
            let _ = self.events.send(Event::Capped {
                id: self.id,
                limit: self.max_record,
            });
            return;
        }
        r.used += cost;
        let at = self.opened.elapsed();
        r.chunks.push(Chunk {
            dir,
            at,
            bytes: bytes.to_vec(),
        });
    }

    fn end(&self, dir: Dir, how: EndHow) {
        let mut r = self.lock();
        let at = self.opened.elapsed();
        r.ends[idx(dir)] = Some(End { at, how });
    }

    /// Stop relaying because the proxy stops: both sides get a FIN, both relay threads wake up.
    pub(crate) fn stop(&self) {
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.stopping.store(true, Ordering::SeqCst);
        self.shut_both();
    }

    fn shut_both(&self) {
        self.client.shutdown(Shutdown::Both);
        if let Some(u) = self.upstream.get() {
            u.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// One side failed: reset both (the closes that follow send RST on TCP) and wake the other
    /// relay thread without sending anything (shutting down the read half sends no FIN).
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        for s in std::iter::once(&self.client).chain(self.upstream.get()) {
            s.reset_on_close();
            s.shutdown(Shutdown::Read);
        }
    }

    /// How a direction ends when the proxy itself caused it (stop or abort), if it did.
    fn caused_by_us(&self) -> Option<EndHow> {
        if self.stopping.load(Ordering::SeqCst) {
            Some(EndHow::Stopped)
        } else if self.aborted.load(Ordering::SeqCst) {
            Some(EndHow::Aborted)
        } else {
            None
        }
    }

    /// Relay `dir` (client → upstream for [`Dir::C2s`]) until it ends; record how.
    pub(crate) fn pump(&self, dir: Dir, buf_size: usize) {
        let Some(upstream) = self.upstream.get() else {
            return;
        };
        let (src, dst) = match dir {
            Dir::C2s => (&self.client, upstream),
            Dir::S2c => (upstream, &self.client),
        };
        let how = self.relay(dir, src, dst, &mut vec![0; buf_size.max(1)]);
        self.end(dir, how);
    }

    fn relay(&self, dir: Dir, mut src: &Stream, mut dst: &Stream, buf: &mut [u8]) -> EndHow {
        loop {
            let n = match src.read(buf) {
                Ok(0) => {
                    if let Some(how) = self.caused_by_us() {
                        return how;
                    }
                    // Half-close: pass the FIN on; the other direction keeps going.
                    dst.shutdown(Shutdown::Write);
                    return EndHow::Fin;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Some(how) = self.caused_by_us() {
                        return how;
                    }
                    self.abort();
                    return EndHow::Reset(e.to_string());
                }
            };
            self.record(dir, &buf[..n]);
            if let Err(e) = dst.write_all(&buf[..n]) {
                if let Some(how) = self.caused_by_us() {
                    return how;
                }
                self.abort();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => EndHow::Stalled,
                    _ => EndHow::WriteFailed(e.to_string()),
                };
            }
        }
    }

    /// The finished connection's record (the recording moves out).
    pub(crate) fn finish(&self, upstream_error: Option<String>) -> Connection {
        let mut r = self.lock();
        let r = std::mem::take(&mut *r);
        let [c2s_end, s2c_end] = r.ends;
        Connection {
            id: self.id,
            client: self.client_addr,
            server: self.server_addr.get().copied(),
            opened: self.opened_wall,
            chunks: r.chunks,
            c2s: DirTotals {
                bytes: r.read[0],
                end: c2s_end,
            },
            s2c: DirTotals {
                bytes: r.read[1],
                end: s2c_end,
            },
            capped: r.capped,
            upstream_error,
            duration: self.opened.elapsed(),
        }
    }
}

/// Connect to the upstream within `timeout` (unix sockets connect at once or fail).
pub(crate) fn connect(to: &super::Addr, timeout: Duration) -> io::Result<Stream> {
    match to {
        super::Addr::Tcp(a) => {
            std::net::TcpStream::connect_timeout(a, timeout.max(Duration::from_millis(1)))
                .map(Stream::Tcp)
        }
        super::Addr::Unix(p) => std::os::unix::net::UnixStream::connect(p).map(Stream::Unix),
    }
}
