//! The recording proxy (`virtwire record`) and its pcapng writer.
//!
//! - The proxy: byte-exact in both directions under load, several connections at once, half-close,
//!   resets, a peer that stops reading, stopping, unix sockets, the recording cap; a real virsh
//!   session through it prints what it prints without it; the command line.
//! - The pcapng writer (`capture::write`): a capture of recorded chunks decodes, through `virtwire
//!   decode`'s library (`Decoder::decode_capture`), to the same messages as the chunks themselves
//!   (`Decoder::decode_chunks`), over IPv4 and IPv6, with frames split across chunks and chunks split
//!   across packets; and tshark reads it without complaint.
//!
//! The virsh test needs virsh and libvirtd (scripts/setup.sh installs them), the tshark checks need
//! tshark: without them they print SKIPPED and pass, unless `VIRTWIRE_REQUIRE_ALL=1`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value as J;
use virtwire_conformance::capture::tcp::Dir;
use virtwire_conformance::capture::write::{Close, Flow, FlowEnd, write_pcapng};
use virtwire_conformance::proxy::{Addr, Config, Connection, EndHow, Event, Proxy};
use virtwire_conformance::wire::peer::Chunk;
use virtwire_conformance::wire::{Decoder, Options, Record, Stats};
use virtwire_protocol::{Header, Limits, MessageStatus, MessageType, encode_frame};

// ---------------------------------------------------------------------------------------------
// Helpers

/// xorshift64*: random sizes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The byte stream `seed` from offset `off`: every 8-byte word encodes its own position, so a
/// dropped, duplicated or reordered byte shows at its offset.
fn fill(seed: u64, off: u64, buf: &mut [u8]) {
    let (mut p, mut i) = (off, 0);
    while i < buf.len() {
        let w = p / 8;
        let bytes = ((w ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (w >> 3)).to_le_bytes();
        let o = (p % 8) as usize;
        let n = (8 - o).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&bytes[o..o + n]);
        i += n;
        p += n as u64;
    }
}

/// Check `got` is the stream `seed` at `off`; panics naming the first wrong offset.
fn check(seed: u64, off: u64, got: &[u8], scratch: &mut Vec<u8>) {
    scratch.resize(got.len(), 0);
    fill(seed, off, scratch);
    if got != &scratch[..] {
        let i = got
            .iter()
            .zip(scratch.iter())
            .position(|(a, b)| a != b)
            .unwrap();
        panic!("stream {seed:#x}: wrong byte at offset {}", off + i as u64);
    }
}

/// Send `len` bytes of stream `seed` in random-sized writes, then close the sending half.
fn send_stream(mut w: impl Write, seed: u64, len: u64, max_write: usize) {
    let mut rng = Rng(seed ^ 0xA5A5);
    let mut buf = vec![0u8; max_write];
    let mut off = 0;
    while off < len {
        let n = (1 + rng.below(max_write)).min((len - off) as usize);
        fill(seed, off, &mut buf[..n]);
        w.write_all(&buf[..n]).unwrap();
        off += n as u64;
    }
}

/// Read stream `seed` in random-sized reads until end-of-file; it must be exactly `len` bytes.
fn recv_stream(mut r: impl Read, seed: u64, len: u64, max_read: usize) {
    let mut rng = Rng(seed ^ 0x5A5A);
    let mut buf = vec![0u8; max_read];
    let mut scratch = Vec::new();
    let mut off = 0u64;
    loop {
        let want = 1 + rng.below(max_read);
        let n = r.read(&mut buf[..want]).unwrap();
        if n == 0 {
            break;
        }
        check(seed, off, &buf[..n], &mut scratch);
        off += n as u64;
    }
    assert_eq!(off, len, "stream {seed:#x}: length");
}

fn tcp_upstream() -> (TcpListener, Addr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, Addr::Tcp(a))
}

fn start(upstream: Addr, tweak: impl FnOnce(&mut Config)) -> (Proxy, Receiver<Event>, SocketAddr) {
    let mut cfg = Config::new(Addr::Tcp("127.0.0.1:0".parse().unwrap()), upstream);
    tweak(&mut cfg);
    let (p, rx) = Proxy::start(cfg).unwrap();
    let Addr::Tcp(a) = p.local_addr().clone() else {
        panic!("TCP listener")
    };
    (p, rx, a)
}

/// The next `n` finished connections (by id), within `within`.
fn closed(rx: &Receiver<Event>, n: usize, within: Duration) -> Vec<Connection> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Closed(c)) => out.push(*c),
            Ok(_) => {}
            Err(e) => panic!(
                "{} of {n} connections closed within {within:?}: {e}",
                out.len()
            ),
        }
    }
    out.sort_by_key(|c| c.id);
    out
}

fn how(c: &Connection, d: Dir) -> EndHow {
    let t = if d == Dir::C2s { &c.c2s } else { &c.s2c };
    t.end.as_ref().expect("the direction ended").how.clone()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("virtwire-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An upstream that echoes every connection until end-of-file, then closes.
fn echo_tcp(l: TcpListener, conns: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut hs = Vec::new();
        for _ in 0..conns {
            let (s, _) = l.accept().unwrap();
            hs.push(thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                std::io::copy(&mut &s, &mut w).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Byte-exactness under load

/// 100 MB each way at once, through one connection, in random write and read sizes: every byte
/// arrives, once, in order, and the recording holds exactly the same two streams.
#[test]
fn hundred_megabytes_each_way_arrive_and_are_recorded_exactly() {
    const LEN: u64 = 100_000_000;
    let (seed_up, seed_down) = (0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321);
    let (l, up) = tcp_upstream();
    let (proxy, rx, at) = start(up, |_| {});
    let t0 = Instant::now();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let r = s.try_clone().unwrap();
        let reader = thread::spawn(move || recv_stream(r, seed_up, LEN, 256 << 10));
        send_stream(&s, seed_down, LEN, 256 << 10);
        s.shutdown(Shutdown::Write).unwrap();
        reader.join().unwrap();
    });
    let c = TcpStream::connect(at).unwrap();
    let r = c.try_clone().unwrap();
    let reader = thread::spawn(move || recv_stream(r, seed_down, LEN, 256 << 10));
    send_stream(&c, seed_up, LEN, 256 << 10);
    c.shutdown(Shutdown::Write).unwrap();
    reader.join().unwrap();
    server.join().unwrap();
    let relayed = t0.elapsed();
    let conn = closed(&rx, 1, Duration::from_secs(30)).remove(0);
    assert_eq!((conn.c2s.bytes, conn.s2c.bytes), (LEN, LEN));
    assert_eq!(
        (how(&conn, Dir::C2s), how(&conn, Dir::S2c)),
        (EndHow::Fin, EndHow::Fin)
    );
    assert!(!conn.capped);
    // The recording: both streams complete and in order, times never going backwards.
    let mut off = [0u64; 2];
    let mut scratch = Vec::new();
    let mut last = Duration::ZERO;
    for ch in &conn.chunks {
        assert!(ch.at >= last, "chunk times go backwards");
        last = ch.at;
        let (i, seed) = if ch.dir == Dir::C2s {
            (0, seed_up)
        } else {
            (1, seed_down)
        };
        check(seed, off[i], &ch.bytes, &mut scratch);
        off[i] += ch.bytes.len() as u64;
    }
    assert_eq!(off, [LEN, LEN]);
    eprintln!(
        "100 MB each way (200 MB) relayed in {:.2} s ({:.0} MB/s), {} chunks recorded; checked in {:.2} s",
        relayed.as_secs_f64(),
        2.0 * LEN as f64 / 1e6 / relayed.as_secs_f64(),
        conn.chunks.len(),
        t0.elapsed().as_secs_f64()
    );
    proxy.stop();
    let summary = proxy.wait();
    assert_eq!((summary.c2s_bytes, summary.s2c_bytes), (LEN, LEN));
}

/// Eight clients at once, each with its own conversation against an echo server: each gets its own
/// bytes back, each recording holds its own bytes, and `stop_after_connections` stops the proxy.
#[test]
fn concurrent_connections_stay_separate() {
    const N: usize = 8;
    let (l, up) = tcp_upstream();
    let echo = echo_tcp(l, N);
    let (proxy, rx, at) = start(up, |c| c.stop_after_connections = Some(N as u64));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            thread::spawn(move || {
                let seed = 0x1000 + i as u64;
                let len = 100_000 + 37_000 * i as u64;
                let c = TcpStream::connect(at).unwrap();
                let r = c.try_clone().unwrap();
                let reader = thread::spawn(move || recv_stream(r, seed, len, 5000));
                send_stream(&c, seed, len, 3000);
                c.shutdown(Shutdown::Write).unwrap();
                reader.join().unwrap();
                (c.local_addr().unwrap(), seed, len)
            })
        })
        .collect();
    let sent: Vec<_> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    echo.join().unwrap();
    let conns = closed(&rx, N, Duration::from_secs(20));
    let summary = proxy.wait();
    assert_eq!(summary.connections, N as u64);
    let mut scratch = Vec::new();
    for c in &conns {
        let (_, seed, len) = sent
            .iter()
            .find(|(a, ..)| Some(*a) == c.client)
            .expect("a client of ours");
        for d in [Dir::C2s, Dir::S2c] {
            let bytes = c.recorded(d);
            assert_eq!(bytes.len() as u64, *len);
            check(*seed, 0, &bytes, &mut scratch);
        }
    }
    // Every event was sent: the channel ends once the proxy has finished.
    assert!(rx.iter().all(|e| !matches!(e, Event::Closed(_))));
}

// ---------------------------------------------------------------------------------------------
// Ends: half-close, resets, stalls, stop

/// The client closes its sending half; the server still answers after reading end-of-file, and the
/// client gets the whole answer.
#[test]
fn half_close_keeps_the_other_direction_open() {
    let (l, up) = tcp_upstream();
    let (_proxy, rx, at) = start(up, |_| {});
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"request");
        thread::sleep(Duration::from_millis(50));
        s.write_all(b"answer after your FIN").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    });
    let mut c = TcpStream::connect(at).unwrap();
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer after your FIN");
    server.join().unwrap();
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert_eq!(
        (how(&conn, Dir::C2s), how(&conn, Dir::S2c)),
        (EndHow::Fin, EndHow::Fin)
    );
    assert!(conn.c2s.end.as_ref().unwrap().at < conn.s2c.end.as_ref().unwrap().at);
    assert_eq!(conn.recorded(Dir::S2c), b"answer after your FIN");
}

fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// A client that resets: the server sees a reset too (not a clean end-of-file), after the bytes
/// that came before it.
#[test]
fn a_client_reset_reaches_the_server_as_a_reset() {
    let (l, up) = tcp_upstream();
    let (_proxy, rx, at) = start(up, |_| {});
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        let mut more = [0u8; 16];
        s.read(&mut more)
    });
    let mut c = TcpStream::connect(at).unwrap();
    c.write_all(b"hello").unwrap();
    thread::sleep(Duration::from_millis(100));
    reset(c);
    let err = server
        .join()
        .unwrap()
        .expect_err("the server must not read a clean end");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert!(
        matches!(how(&conn, Dir::C2s), EndHow::Reset(_)),
        "{:?}",
        conn.c2s
    );
    assert_eq!(how(&conn, Dir::S2c), EndHow::Aborted);
}

/// And the other way: a server that resets is a reset at the client.
#[test]
fn a_server_reset_reaches_the_client_as_a_reset() {
    let (l, up) = tcp_upstream();
    let (_proxy, rx, at) = start(up, |_| {});
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"bye").unwrap();
        thread::sleep(Duration::from_millis(100));
        reset(s);
    });
    let mut c = TcpStream::connect(at).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = [0u8; 3];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"bye");
    let err = c
        .read(&mut [0u8; 8])
        .expect_err("the client must not read a clean end");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    server.join().unwrap();
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert!(
        matches!(how(&conn, Dir::S2c), EndHow::Reset(_)),
        "{:?}",
        conn.s2c
    );
}

/// A server that never reads: the proxy's write times out, both sides are reset, the connection
/// ends (no hang), and the client's writes fail instead of blocking forever.
#[test]
fn a_peer_that_stops_reading_does_not_hang_the_proxy() {
    let (l, up) = tcp_upstream();
    let (_proxy, rx, at) = start(up, |c| c.write_timeout = Duration::from_millis(300));
    let (tx_done, rx_done) = std::sync::mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        // Hold the socket open, unread, until the test is over.
        let _ = rx_done.recv_timeout(Duration::from_secs(20));
        drop(s);
    });
    let mut c = TcpStream::connect(at).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let t0 = Instant::now();
    let block = vec![7u8; 1 << 16];
    let err = loop {
        if let Err(e) = c.write_all(&block) {
            break e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the client could write forever"
        );
    };
    assert_ne!(
        err.kind(),
        std::io::ErrorKind::WouldBlock,
        "the proxy never gave up: {err}"
    );
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert_eq!(how(&conn, Dir::C2s), EndHow::Stalled);
    eprintln!(
        "stalled peer: connection reset after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    tx_done.send(()).unwrap();
    server.join().unwrap();
}

/// `stop_after` stops the proxy with a connection open: the client reads a clean end-of-file and
/// the recording is delivered.
#[test]
fn stopping_closes_open_connections_cleanly() {
    let (l, up) = tcp_upstream();
    let (proxy, rx, at) = start(up, |c| c.stop_after = Some(Duration::from_millis(400)));
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"greeting").unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest
    });
    let mut c = TcpStream::connect(at).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hi").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"greeting");
    assert_eq!(server.join().unwrap(), b"hi");
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert_eq!(
        (how(&conn, Dir::C2s), how(&conn, Dir::S2c)),
        (EndHow::Stopped, EndHow::Stopped)
    );
    let s = proxy.wait();
    assert_eq!(s.connections, 1);
    // The listener is gone. Another test of this binary may bind the freed port for a moment (they
    // run in parallel, each on a port the kernel picks): a listener that stays is the proxy's.
    let gone = (0..30).any(|_| {
        let refused = TcpStream::connect(at).is_err();
        if !refused {
            thread::sleep(Duration::from_millis(100));
        }
        refused
    });
    assert!(
        gone,
        "something still listens on the proxy's address {at} after 3 s"
    );
}

/// An upstream that is not there: the client is closed, the connection reported with the reason.
#[test]
fn an_unreachable_upstream_is_reported() {
    let (l, up) = tcp_upstream();
    drop(l);
    let (_proxy, rx, at) = start(up, |_| {});
    let mut c = TcpStream::connect(at).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(c.read(&mut [0u8; 4]).unwrap_or(0), 0);
    let conn = closed(&rx, 1, Duration::from_secs(10)).remove(0);
    assert!(conn.upstream_error.is_some());
    assert!(conn.flow().refused);
}

// ---------------------------------------------------------------------------------------------
// Unix sockets, the recording cap

/// Unix socket on both sides, several connections; the recordings decode as a capture with invented
/// 127.0.0.1 ports.
#[test]
fn unix_sockets_both_sides() {
    let dir = tempdir("proxy-unix");
    let (up_path, listen_path) = (dir.join("upstream.sock"), dir.join("proxy.sock"));
    let l = UnixListener::bind(&up_path).unwrap();
    let echo = thread::spawn(move || {
        for _ in 0..3 {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            std::io::copy(&mut &s, &mut w).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        }
    });
    let mut cfg = Config::new(Addr::Unix(listen_path.clone()), Addr::Unix(up_path));
    cfg.stop_after_connections = Some(3);
    let (proxy, rx) = Proxy::start(cfg).unwrap();
    for i in 0..3u64 {
        let c = UnixStream::connect(&listen_path).unwrap();
        let r = c.try_clone().unwrap();
        let reader = thread::spawn(move || recv_stream(r, i, 300_000, 7000));
        send_stream(&c, i, 300_000, 9000);
        c.shutdown(Shutdown::Write).unwrap();
        reader.join().unwrap();
    }
    echo.join().unwrap();
    let conns = closed(&rx, 3, Duration::from_secs(10));
    proxy.wait();
    assert!(!listen_path.exists(), "the proxy removes its socket");
    let flows: Vec<_> = conns.iter().map(Connection::flow).collect();
    assert_eq!(flows[1].client.to_string(), "127.0.0.1:40001");
    assert_eq!(flows[1].server.to_string(), "127.0.0.1:16509");
    let pcap = write_pcapng(Vec::new(), &flows).unwrap();
    // Not libvirt bytes, so no messages: but three connections, each direction complete (framing
    // errors aside, the decoder read every byte up to the FIN).
    let d = Decoder::new(Options::default());
    let mut conn_records = 0;
    let mut sink = |r: &Record<'_>| {
        conn_records += usize::from(matches!(r, Record::Conn { .. }));
        Ok(())
    };
    let stats = d.decode_capture("unix", &pcap[..], &mut sink).unwrap();
    assert_eq!((stats.connections, stats.gaps), (3, 0));
    assert_eq!(conn_records, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Past `max_record_bytes` the connection is still relayed in full but no longer recorded: the
/// recording is a prefix, flagged, with an event.
#[test]
fn the_recording_cap_stops_recording_not_relaying() {
    let (l, up) = tcp_upstream();
    let echo = echo_tcp(l, 1);
    let (_proxy, rx, at) = start(up, |c| c.max_record_bytes = 200_000);
    let c = TcpStream::connect(at).unwrap();
    let r = c.try_clone().unwrap();
    let reader = thread::spawn(move || recv_stream(r, 9, 1_000_000, 4000));
    send_stream(&c, 9, 1_000_000, 4000);
    c.shutdown(Shutdown::Write).unwrap();
    reader.join().unwrap();
    echo.join().unwrap();
    let mut capped = false;
    let conn = loop {
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::Capped { limit, .. } => {
                assert_eq!(limit, 200_000);
                capped = true;
            }
            Event::Closed(c) => break *c,
            _ => {}
        }
    };
    assert!(capped && conn.capped);
    assert_eq!((conn.c2s.bytes, conn.s2c.bytes), (1_000_000, 1_000_000));
    let recorded: usize = conn.chunks.iter().map(|c| c.bytes.len()).sum();
    assert!(recorded <= 200_000 && recorded > 0, "{recorded}");
    let mut scratch = Vec::new();
    check(9, 0, &conn.recorded(Dir::C2s), &mut scratch);
    check(9, 0, &conn.recorded(Dir::S2c), &mut scratch);
}

// ---------------------------------------------------------------------------------------------
// The pcapng writer

/// Records as JSON, without what differs between a capture and chunks (file, packet number, time).
fn messages(records: &[J]) -> Vec<J> {
    records
        .iter()
        .filter(|r| r["record"] != "summary" && r["record"] != "conn" && r["record"] != "end")
        .map(|r| {
            let mut r = r.clone();
            if let Some(m) = r.as_object_mut() {
                for k in ["file", "pkt", "ts"] {
                    m.remove(k);
                }
            }
            r
        })
        .collect()
}

fn decode_chunks(conn: u64, chunks: &[Chunk]) -> (Stats, Vec<J>) {
    let d = Decoder::new(Options::default());
    let mut out = Vec::new();
    let mut sink = |r: &Record<'_>| {
        out.push(serde_json::to_value(r).unwrap());
        Ok(())
    };
    let stats = d.decode_chunks("chunks", conn, chunks, &mut sink).unwrap();
    (stats, out)
}

fn decode_capture(bytes: &[u8], ports: &[u16]) -> (Stats, Vec<J>) {
    let mut opts = Options::default();
    opts.ports.extend_from_slice(ports);
    let d = Decoder::new(opts);
    let mut out = Vec::new();
    let mut sink = |r: &Record<'_>| {
        out.push(serde_json::to_value(r).unwrap());
        Ok(())
    };
    let stats = d.decode_capture("pcapng", bytes, &mut sink).unwrap();
    (stats, out)
}

fn frame(h: Header, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, &h, None, payload, &Limits::default()).unwrap();
    v
}

const REMOTE: u32 = 0x2000_8086;
const KEEPALIVE: u32 = 0x6b65_6570;

/// A conversation: calls, replies, a keepalive, a 200,000-byte stream packet; frames cut across
/// chunk boundaries.
fn chunks() -> Vec<Chunk> {
    let call = |serial| frame(Header::call(REMOTE, 1, serial), &[0, 0, 0, 0, 0, 0, 0, 0]);
    let reply = |serial| {
        frame(
            Header::new(REMOTE, 1, 1, MessageType::Reply, serial, MessageStatus::Ok),
            &[],
        )
    };
    let ping = frame(
        Header::new(KEEPALIVE, 1, 1, MessageType::Message, 0, MessageStatus::Ok),
        &[],
    );
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let stream = frame(
        Header::new(
            REMOTE,
            1,
            2,
            MessageType::Stream,
            2,
            MessageStatus::Continue,
        ),
        &data,
    );
    let mut ms = 1;
    let mut at = || {
        ms += 1;
        Duration::from_millis(ms)
    };
    let c = |dir, at, bytes: Vec<u8>| Chunk { dir, at, bytes };
    let two_calls = [call(1), call(2)].concat();
    let (a, b) = two_calls.split_at(30);
    let (s1, s2) = stream.split_at(70_000);
    vec![
        c(Dir::C2s, at(), a.to_vec()),
        c(Dir::C2s, at(), b.to_vec()),
        c(Dir::S2c, at(), [reply(1), ping].concat()),
        c(Dir::S2c, at(), [reply(2), s1.to_vec()].concat()),
        c(Dir::S2c, at(), s2.to_vec()),
        c(Dir::C2s, at(), call(3)),
        c(Dir::S2c, at(), reply(3)),
    ]
}

fn flow<'a>(client: &str, server: &str, chunks: &'a [Chunk]) -> Flow<'a> {
    let sent = |d| {
        chunks
            .iter()
            .filter(|c| c.dir == d)
            .map(|c| c.bytes.len() as u64)
            .sum()
    };
    let end = chunks.last().map_or(Duration::ZERO, |c| c.at);
    Flow {
        client: client.parse().unwrap(),
        server: server.parse().unwrap(),
        start: SystemTime::now(),
        chunks,
        sent: [sent(Dir::C2s), sent(Dir::S2c)],
        ends: vec![
            FlowEnd {
                from: Dir::C2s,
                at: end + Duration::from_millis(1),
                close: Close::Fin,
            },
            FlowEnd {
                from: Dir::S2c,
                at: end + Duration::from_millis(2),
                close: Close::Fin,
            },
        ],
        refused: false,
    }
}

/// tshark reads `file` with no error and no warning on stderr; with checksum validation on, every IP
/// and TCP checksum is good; its expert info has no warning or error; and the libvirt dissector (if
/// installed) finds `messages` messages when told the server port. One tshark run (they are slow to
/// start).
fn tshark_accepts(file: &std::path::Path, port: u16, messages: usize) {
    let run = |libvirt: bool| {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(file);
        cmd.args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ]);
        cmd.args([
            "-T",
            "fields",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
        ]);
        if libvirt {
            cmd.args([
                "-d",
                &format!("tcp.port=={port},libvirt"),
                "-e",
                "libvirt.serial",
            ]);
        }
        cmd.args(["-z", "expert,warn"]).output()
    };
    let Ok(mut out) = run(true) else {
        assert!(
            !require_all(),
            "tshark is required (VIRTWIRE_REQUIRE_ALL=1)"
        );
        eprintln!("SKIPPED tshark checks: tshark not installed");
        return;
    };
    let mut libvirt = true;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("libvirt") {
        assert!(
            !require_all(),
            "no libvirt dissector (libvirt-wireshark) (VIRTWIRE_REQUIRE_ALL=1)"
        );
        eprintln!("SKIPPED dissector count: no libvirt dissector (libvirt-wireshark)");
        libvirt = false;
        out = run(false).unwrap();
    }
    // Running tshark as root prints a warning about that; anything else on stderr is a complaint.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect();
    assert!(out.status.success(), "tshark -r failed: {stderr}");
    assert!(stderr.trim().is_empty(), "tshark -r complained: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (mut packets, mut seen) = (0, 0);
    for line in stdout.lines().filter(|l| l.contains('\t')) {
        let f: Vec<&str> = line.split('\t').collect();
        packets += 1;
        // 1 = good (0 bad, 2 unverified); IPv6 has no header checksum.
        assert!(
            matches!(f[0], "1" | "") && f[1] == "1",
            "checksum status of packet {packets}: {line}"
        );
        if libvirt {
            seen += f[2].split(',').filter(|s| !s.is_empty()).count();
        }
    }
    assert!(packets > 0);
    assert!(
        !stdout.contains("Errors (") && !stdout.contains("Warnings ("),
        "tshark's expert info has warnings or errors:\n{stdout}"
    );
    if libvirt {
        assert_eq!(seen, messages, "messages tshark's libvirt dissector finds");
    }
}

#[test]
fn pcapng_decodes_like_the_chunks_v4_and_v6() {
    let chunks = chunks();
    let (cstats, from_chunks) = decode_chunks(0, &chunks);
    assert!(!cstats.has_decode_problems(), "{from_chunks:#?}");
    assert_eq!(cstats.messages, 8);
    for (client, server) in [
        ("127.0.0.1:40000", "127.0.0.1:16509"),
        ("[::1]:40000", "[::1]:16509"),
        ("127.0.0.1:51234", "127.0.0.1:23456"),
    ] {
        let port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();
        let bytes = write_pcapng(Vec::new(), &[flow(client, server, &chunks)]).unwrap();
        let (stats, from_capture) = decode_capture(&bytes, &[port]);
        assert!(!stats.has_decode_problems(), "{from_capture:#?}");
        assert_eq!(stats.connections, 1);
        assert_eq!(
            messages(&from_capture),
            messages(&from_chunks),
            "{client} → {server}"
        );
        // Both directions end with a FIN, as written.
        let ends: Vec<_> = from_capture
            .iter()
            .filter(|r| r["record"] == "end")
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ends, ["fin", "fin"]);

        let path = std::env::temp_dir().join(format!(
            "virtwire-pcapng-{}-{port}-{}.pcapng",
            std::process::id(),
            client.starts_with('[')
        ));
        std::fs::write(&path, &bytes).unwrap();
        tshark_accepts(&path, port, 8);
        let _ = std::fs::remove_file(&path);
    }
}

/// A recording that was capped: the FIN carries the real end, so the decoder reports the missing
/// bytes as a gap instead of a shorter stream that looks complete.
#[test]
fn capped_recording_shows_a_gap() {
    let chunks = chunks();
    let mut f = flow("127.0.0.1:40000", "127.0.0.1:16509", &chunks);
    f.sent[1] += 1000;
    let bytes = write_pcapng(Vec::new(), &[f]).unwrap();
    let (stats, records) = decode_capture(&bytes, &[]);
    assert_eq!(stats.gaps, 1, "{records:#?}");
    assert_eq!(stats.messages, 8);
}

/// A reset and a refused connection are written as RSTs; several flows in one file are several
/// connections.
#[test]
fn resets_refusals_and_several_flows() {
    let chunks = chunks();
    let mut reset = flow("127.0.0.1:40001", "127.0.0.1:16509", &chunks);
    reset.ends = vec![FlowEnd {
        from: Dir::C2s,
        at: Duration::from_millis(100),
        close: Close::Reset,
    }];
    let mut refused = flow("127.0.0.1:40002", "127.0.0.1:16509", &[]);
    refused.refused = true;
    refused.ends.clear();
    let ok = flow("127.0.0.1:40003", "127.0.0.1:16509", &chunks);
    let bytes = write_pcapng(Vec::new(), &[reset, refused, ok]).unwrap();
    let (stats, records) = decode_capture(&bytes, &[]);
    assert!(!stats.has_decode_problems(), "{records:#?}");
    assert_eq!(stats.messages, 16);
    let ends: Vec<_> = records
        .iter()
        .filter(|r| r["record"] == "end" && r["conn"] == 0)
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(ends.iter().all(|e| e == "rst"), "{ends:?}");
    let path =
        std::env::temp_dir().join(format!("virtwire-pcapng-rst-{}.pcapng", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("tshark").arg("-r").arg(&path).output();
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------------
// A real client and server: virsh through the proxy against a private libvirtd

/// Is `VIRTWIRE_REQUIRE_ALL=1` set (skips become failures)?
fn require_all() -> bool {
    std::env::var("VIRTWIRE_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!require_all(), "{why} (VIRTWIRE_REQUIRE_ALL=1)");
    eprintln!("SKIPPED: {why}");
}

/// A private libvirtd started by scripts/libvirtd.sh, stopped (by its PID file) when dropped.
struct Libvirtd {
    rundir: PathBuf,
    port: u16,
}

impl Libvirtd {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/libvirtd.sh")
    }

    fn start(name: &str) -> Result<Libvirtd, String> {
        for tool in ["virsh", "libvirtd"] {
            let found = std::env::var_os("PATH").is_some_and(|p| {
                std::env::split_paths(&p).any(|d| d.join(tool).is_file())
                    || Path::new("/usr/sbin").join(tool).is_file()
            });
            if !found {
                return Err(format!(
                    "{tool} is not installed (scripts/setup.sh installs it)"
                ));
            }
        }
        let rundir = tempdir(name);
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(&rundir)
            .output()
            .map_err(|e| format!("scripts/libvirtd.sh: {e}"))?;
        let port = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "scripts/libvirtd.sh start failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        Ok(Libvirtd { rundir, port })
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.rundir)
            .status();
        let _ = std::fs::remove_dir_all(&self.rundir);
    }
}

fn virsh(port: u16, commands: &str) -> std::process::Output {
    let mut cmd = Command::new("virsh");
    cmd.args([
        "-c",
        &format!("test+tcp://127.0.0.1:{port}/default"),
        commands,
    ])
    .stdin(Stdio::null())
    .env("LC_ALL", "C");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("virsh did not finish within 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// virsh's output through the proxy is the same as without it, and the recording decodes to
/// messages with no errors; its pcapng decodes to the same messages and tshark reads it.
#[test]
fn virsh_through_the_proxy_prints_the_same() {
    let daemon = match Libvirtd::start("proxy-virsh") {
        Ok(d) => d,
        Err(why) => return skip(&why),
    };
    let commands = "list --all; dominfo test; version";
    let direct = virsh(daemon.port, commands);
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
    let (proxy, rx, at) = start(
        Addr::Tcp(SocketAddr::from(([127, 0, 0, 1], daemon.port))),
        |_| {},
    );
    let proxied = virsh(at.port(), commands);
    assert!(
        proxied.status.success(),
        "{}",
        String::from_utf8_lossy(&proxied.stderr)
    );
    // The test driver's "CPU time" is the wall clock (seconds since the epoch, observed with
    // libvirt 9.0): it differs between any two runs, proxy or not, so that one value is masked.
    let masked = |out: &[u8]| -> String {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| {
                if l.starts_with("CPU time:") {
                    "CPU time: (masked)"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(masked(&proxied.stdout), masked(&direct.stdout));
    assert!(String::from_utf8_lossy(&direct.stdout).contains("Running hypervisor"));
    let conns = closed(&rx, 1, Duration::from_secs(10));
    proxy.stop();
    proxy.wait();
    let conn = &conns[0];
    assert_eq!(
        (how(conn, Dir::C2s), how(conn, Dir::S2c)),
        (EndHow::Fin, EndHow::Fin)
    );

    let (stats, from_chunks) = decode_chunks(conn.id, &conn.chunks);
    assert!(!stats.has_decode_problems(), "{from_chunks:#?}");
    assert!(stats.messages >= 10, "{} messages", stats.messages);

    let pcap = write_pcapng(Vec::new(), &[conn.flow()]).unwrap();
    let (cstats, from_capture) = decode_capture(&pcap, &[daemon.port]);
    assert!(!cstats.has_decode_problems(), "{from_capture:#?}");
    assert_eq!(messages(&from_capture), messages(&from_chunks));
    let path = daemon.rundir.join("virsh.pcapng");
    std::fs::write(&path, &pcap).unwrap();
    tshark_accepts(&path, daemon.port, stats.messages as usize);
    eprintln!(
        "virsh through the proxy: same output ({} bytes), {} messages recorded and decoded, {} packets",
        direct.stdout.len(),
        stats.messages,
        cstats.packets
    );
}

// ---------------------------------------------------------------------------------------------
// The command line

/// `virtwire record` against an echo server: the wire log and the pcapng hold the conversation; it
/// stops after `--connections 1`; and a second run stops on SIGINT with the recording written.
#[test]
fn the_record_command() {
    let dir = tempdir("record-cli");
    for stop_by_signal in [false, true] {
        let (l, up) = tcp_upstream();
        let Addr::Tcp(up_addr) = up else {
            unreachable!()
        };
        let echo = echo_tcp(l, 1);
        let (log, pcap) = (dir.join("wire.jsonl"), dir.join("wire.pcapng"));
        let trace = dir.join("session.trace");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtwire"));
        cmd.args(["record", "--listen", "127.0.0.1:0"])
            .arg("--target")
            .arg(format!("test+tcp://{up_addr}/default"))
            .arg("-o")
            .arg(&trace)
            .arg("--wire-log")
            .arg(&log)
            .arg("--pcapng")
            .arg(&pcap)
            .args(["--duration", "60"]);
        if !stop_by_signal {
            cmd.args(["--connections", "1"]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
        let listen: SocketAddr = first
            .split("listening on ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let rest = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let c = TcpStream::connect(listen).unwrap();
        let r = c.try_clone().unwrap();
        let reader = thread::spawn(move || recv_stream(r, 5, 200_000, 3000));
        send_stream(&c, 5, 200_000, 3000);
        c.shutdown(Shutdown::Write).unwrap();
        reader.join().unwrap();
        echo.join().unwrap();
        drop(c);
        if stop_by_signal {
            // Wait for the connection's close to be written, then interrupt.
            let t0 = Instant::now();
            while std::fs::metadata(&log).map_or(0, |m| m.len()) == 0 {
                assert!(t0.elapsed() < Duration::from_secs(10), "nothing written");
                thread::sleep(Duration::from_millis(20));
            }
            let st = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap();
            assert!(st.success());
        }
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("virtwire record did not stop");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = rest.join().unwrap();
        assert!(status.success(), "{status}: {stderr}");
        assert!(stderr.contains("conn 0: closed"), "{stderr}");
        // The trace: written, and it parses (the echo server's bytes are no libvirt frames: they
        // become raw steps and problems, never a failure to write).
        let text = std::fs::read_to_string(&trace).unwrap();
        assert!(text.starts_with("virtwire-trace 1"), "{text}");
        virtwire_conformance::trace::parse(&text, "session.trace").unwrap();
        // The wire log: one JSON object per chunk; the hex of each direction is the stream.
        let text = std::fs::read_to_string(&log).unwrap();
        let mut dirs = [Vec::new(), Vec::new()];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["conn"], 0);
            assert!(v["at_us"].is_u64());
            let hex = v["hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            dirs[usize::from(v["dir"] == "s2c")].extend(bytes);
        }
        let mut scratch = Vec::new();
        for d in &dirs {
            assert_eq!(d.len(), 200_000);
            check(5, 0, d, &mut scratch);
        }
        // The pcapng: one connection, both directions complete.
        let mut opts = Options::default();
        opts.ports.push(up_addr.port());
        let d = Decoder::new(opts);
        let stats = d
            .decode_capture(
                "cli",
                std::fs::File::open(&pcap).unwrap(),
                &mut |_: &Record<'_>| Ok(()),
            )
            .unwrap();
        assert_eq!(
            (stats.connections, stats.gaps, stats.capture_error),
            (1, 0, false)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
