//! The scripted server: listens on loopback (TCP, or a unix socket in a private directory), answers
//! each client connection from a recorded [`Script`], and changes one thing in that conversation
//! (a [`Twist`] at a [`Target`]). Every connection is served through a server-side
//! [`Peer`](crate::wire::peer::Peer): the client's bytes are framed and judged in the wire layer,
//! never here. What the client did wrong on the wire is collected in [`Observed`].

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::schema::TypeId;
use virtwire_protocol::schema::bounds::{self, BoundedField};
use virtwire_protocol::{
    ErrorBody, FrameBuilder, Header, KeepaliveProc, Limits, MessageStatus, MessageType, Writer,
};

use super::script::{Matcher, Script};
use crate::runner::ctx::proc;
use crate::wire::Judge;
use crate::wire::Origin;
use crate::wire::frames::{frame_header, frame_json, frame_parts};
use crate::wire::peer::{Event, Peer, Transport, WireLog};

/// REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE: the event the cases send.
pub const DOMAIN_EVENT_LIFECYCLE: i32 = 107;
/// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE (10 in libvirt's `src/libvirt_internal.h`, the first probe of
/// libvirt's remote driver after CONNECT_OPEN): the feature a client asks about to use keepalive.
pub const FEATURE_PROGRAM_KEEPALIVE: i64 = 10;
/// How much of each frame [`Twist::OneByteAtATime`] sends one byte per write.
const PIECES_PREFIX: usize = 512;
/// VIR_FROM_RPC.
const FROM_RPC: i32 = 7;

/// What a case changes in the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Twist {
    /// Nothing: the recording as it was.
    Replay,
    /// A domain lifecycle event before the target's answers (put the target on CONNECT_OPEN).
    EventBefore,
    /// This many domain lifecycle events after the target's answers.
    EventFlood(usize),
    /// The target's reply is held until the client's next call, whose answers go first.
    OutOfOrder,
    /// A copy of the target's reply with a serial no call used, before the real one.
    UnusedSerial,
    /// The target's reply twice.
    DuplicateReply,
    /// The target's reply with another procedure's number (and nothing else).
    WrongProcedure,
    /// A keepalive PING after the target's answers; the next call is answered once the client
    /// PONGs (or after 3 s).
    ServerPing,
    /// No answer to the target, and nothing more at all: PINGs are not answered either. With
    /// `keepalive: false` the server also says it does not support keepalive
    /// (CONNECT_SUPPORTS_FEATURE for VIR_DRV_FEATURE_PROGRAM_KEEPALIVE answers 0).
    Silence {
        /// Whether the client may use keepalive.
        keepalive: bool,
    },
    /// The target's reply with this length word (its header after it), then silence.
    LengthWord(u32),
    /// A length word of the largest legal frame and a header, then nothing (silence).
    LargestThenNothing,
    /// Every frame of the session sent one byte per write (its first 512 bytes; the rest of a
    /// larger frame in one write).
    OneByteAtATime,
    /// Half of the target's reply, then the connection is closed.
    CloseMidFrame,
    /// The connection is reset (TCP RST) instead of the target's reply.
    Reset,
    /// The target's reply replaced by REPLY/ERROR with every optional field absent.
    ErrorAllAbsent,
    /// The target's reply replaced by REPLY/ERROR whose message has this many bytes.
    ErrorMessage(u32),
    /// The target's reply with its first word (an array's count) replaced.
    Count(u32),
    /// The target's reply with these bytes after its body.
    Trailing(Vec<u8>),
    /// The target's reply with its payload replaced.
    Payload(Vec<u8>),
    /// The target's reply with a payload generated from the schema: the minimal value of its type
    /// with one bounded field at its maximum (`over: false`) or one over it.
    Bound {
        /// The reply body's type.
        root: TypeId,
        /// The field.
        field: BoundedField,
        /// One over the maximum.
        over: bool,
    },
    /// The target's STREAM packets without the final one (status OK).
    StreamNoEnd,
    /// The target's STREAM packets, then one more data packet after the final one.
    StreamDataAfterEnd,
    /// A STREAM_HOLE packet before the target's first STREAM packet (the stream was not opened
    /// sparse).
    StreamHole,
    /// The first STREAM data packet of the target, then STREAM/ERROR instead of the rest.
    StreamError,
}

impl Twist {
    /// What the twist changes, for "the session has no … to change".
    pub fn what(&self) -> &'static str {
        match self {
            Twist::Count(_) => "reply with an array count (to this call)",
            Twist::StreamNoEnd => "final STREAM/OK from the server (to remove)",
            Twist::StreamDataAfterEnd | Twist::StreamError => {
                "STREAM data packet from the server (after this call)"
            }
            Twist::StreamHole => "STREAM packet from the server (after this call)",
            Twist::OutOfOrder => "second call outstanding (to answer first)",
            Twist::Replay => "message",
            _ => "reply (to this call)",
        }
    }
}

/// Which client message a twist applies to: the first matched to this recorded exchange.
pub type Target = Option<usize>;

/// How the scripted server is reached.
#[derive(Clone, Debug)]
pub enum Listen {
    /// 127.0.0.1, a free port.
    Tcp,
    /// A unix socket in a private temporary directory.
    Unix,
}

/// What the URI looks like apart from the address: `DRIVER+tcp://ADDR/PATH`.
#[derive(Clone, Debug)]
pub struct UriForm {
    /// The driver part (`test`, `qemu`).
    pub driver: String,
    /// The path (`/default`, `/system`).
    pub path: String,
}

/// What the scripted server saw the client do.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Faults of the client's own traffic (framing, serials, bodies that do not decode).
    pub violations: Vec<String>,
    /// The target message came (the twist was tried).
    pub applied: bool,
    /// The twist changed something: the conversation had what it changes (a reply to alter, a
    /// STREAM/OK to remove, a stream data packet to repeat, …).
    pub changed: bool,
    /// The client asked for keepalive (CONNECT_SUPPORTS_FEATURE with
    /// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE) and was told yes: the only clients libvirtd PINGs
    /// (remoteDispatchConnectSupportsFeature starts the server's keepalive there).
    pub keepalive_enabled: bool,
    /// What of the client's own messages strict XDR (RFC 4506) refuses and libvirt's decoder takes
    /// (a bool encoded 0x01000000, non-zero padding, …): each message's header, and in words the
    /// message, offset and field.
    pub strict: Vec<(Header, String)>,
    /// The twist needed the client to have two calls outstanding, and it did.
    pub pipelined: bool,
    /// Keepalive PINGs and PONGs from the client.
    pub pings: usize,
    /// PONGs from the client.
    pub pongs: usize,
    /// Client messages the recording has no answer for.
    pub unmatched: Vec<String>,
    /// Client connections accepted.
    pub connections: usize,
    /// Things worth saying in the report.
    pub notes: Vec<String>,
}

/// A running scripted server.
pub struct Server {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// The URI a client uses to reach it.
    pub uri: String,
    observed: Arc<Mutex<Observed>>,
    logs: Arc<Mutex<Vec<WireLog>>>,
    _dir: Option<tempfile::TempDir>,
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }
    fn boxed(self) -> Box<dyn Transport> {
        match self {
            Conn::Tcp(s) => Box::new(s),
            Conn::Unix(s) => Box::new(s),
        }
    }
    fn close(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
    /// Close with a TCP reset (SO_LINGER 0); a unix socket just closes.
    fn reset(&self) {
        match self {
            Conn::Tcp(s) => {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
            Conn::Unix(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Accepts the next client: `None` when none is waiting.
type Accept = Box<dyn FnMut() -> io::Result<Option<Conn>> + Send>;

/// Everything a connection's handler needs.
struct Job {
    script: Arc<Script>,
    twist: Twist,
    target: Target,
    judge: Arc<Judge>,
    /// The same schema in strict mode: every client message is judged by it too.
    strict: Option<Arc<Judge>>,
    observed: Arc<Mutex<Observed>>,
    logs: Arc<Mutex<Vec<WireLog>>>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

impl Server {
    /// Listen and serve every connection from `script` with `twist` at `target` until
    /// [`Server::finish`] or `deadline`. With `strict`, every client message is also judged in
    /// strict mode ([`Observed::strict`]).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        script: Arc<Script>,
        twist: Twist,
        target: Target,
        listen: &Listen,
        form: &UriForm,
        judge: Arc<Judge>,
        strict: Option<Arc<Judge>>,
        deadline: Instant,
    ) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let job = Arc::new(Job {
            script,
            twist,
            target,
            judge,
            strict,
            observed: observed.clone(),
            logs: logs.clone(),
            stop: stop.clone(),
            deadline,
        });
        let (uri, dir, accept): (String, Option<tempfile::TempDir>, Accept) = match listen {
            Listen::Tcp => {
                let l = TcpListener::bind(("127.0.0.1", 0))?;
                l.set_nonblocking(true)?;
                let addr = l.local_addr()?;
                let uri = format!("{}+tcp://{addr}{}", form.driver, form.path);
                let accept = move || match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false)?;
                        let _ = s.set_nodelay(true);
                        Ok(Some(Conn::Tcp(s)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                };
                (uri, None, Box::new(accept))
            }
            Listen::Unix => {
                let dir = tempfile::Builder::new()
                    .prefix("virtwire-client-")
                    .tempdir()?;
                let path: PathBuf = dir.path().join("sock");
                let l = UnixListener::bind(&path)?;
                l.set_nonblocking(true)?;
                let uri = format!(
                    "{}+unix://{}?socket={}",
                    form.driver,
                    form.path,
                    path.display()
                );
                let accept = move || match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false)?;
                        Ok(Some(Conn::Unix(s)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                };
                (uri, Some(dir), Box::new(accept))
            }
        };
        let mut accept = accept;
        let handle = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            while !job.stop.load(Ordering::SeqCst) && Instant::now() < job.deadline {
                match accept() {
                    Ok(Some(conn)) => {
                        let job = job.clone();
                        handlers.push(std::thread::spawn(move || serve(conn, &job)));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => {
                        note(&job.observed, format!("accepting a client failed: {e}"));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            job.stop.store(true, Ordering::SeqCst);
            for h in handlers {
                let _ = h.join();
            }
        });
        Ok(Server {
            stop,
            accept: Some(handle),
            uri,
            observed,
            logs,
            _dir: dir,
        })
    }

    /// Stop serving (open connections are closed) and say what the client did.
    pub fn finish(mut self) -> (Observed, Vec<WireLog>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let o = self.observed.lock().map(|o| o.clone()).unwrap_or_default();
        let l = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
        (o, l)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn note(o: &Mutex<Observed>, n: String) {
    if let Ok(mut o) = o.lock()
        && o.notes.len() < 20
    {
        o.notes.push(n);
    }
}

fn with<R>(o: &Mutex<Observed>, f: impl FnOnce(&mut Observed) -> R) -> Option<R> {
    o.lock().ok().map(|mut o| f(&mut o))
}

/// A frame's header in words for reports.
fn words(h: &Header) -> String {
    format!(
        "{}/{} prog {:#x} proc {} serial {}",
        h.msg_type.name(),
        h.status.name(),
        h.prog,
        h.procedure,
        h.serial
    )
}

/// A `remote_domain_event_lifecycle_msg` for a domain `virtwire` (event 0 DEFINED, detail 0).
pub fn lifecycle_event(limits: &Limits) -> Vec<u8> {
    let mut body = Vec::new();
    let mut w = Writer::new(&mut body);
    let _ = w.string(b"virtwire", 256);
    w.opaque_fixed(&[0x76; 16]);
    w.i32(-1);
    w.i32(0);
    w.i32(0);
    FrameBuilder::new(Header::new(
        REMOTE_PROGRAM,
        1,
        DOMAIN_EVENT_LIFECYCLE,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    ))
    .payload(body)
    .encode(limits)
    .unwrap_or_default()
}

/// `h`'s reply frame with `payload` (and status `status`).
fn reply_with(h: &Header, status: MessageStatus, payload: Vec<u8>) -> Vec<u8> {
    let mut r = *h;
    r.msg_type = MessageType::Reply;
    r.status = status;
    FrameBuilder::new(r).payload(payload).build_unchecked()
}

/// The first answer that is a reply (index).
fn reply_index(answers: &[Vec<u8>]) -> Option<usize> {
    answers
        .iter()
        .position(|a| frame_header(a).is_some_and(|h| h.msg_type.is_reply()))
}

/// A frame rebuilt from its parts with `edit` applied to its header and payload (the length word
/// recomputed).
fn rebuild(frame: &[u8], edit: impl FnOnce(&mut Header, &mut Vec<u8>)) -> Vec<u8> {
    let Some((mut h, nfds, payload)) = frame_parts(frame) else {
        return frame.to_vec();
    };
    let mut p = payload.to_vec();
    edit(&mut h, &mut p);
    FrameBuilder::new(h).nfds(nfds).payload(p).build_unchecked()
}

/// What the handler does next.
enum Act {
    Send(Vec<u8>),
    Close,
    Reset,
    /// From now on nothing is sent, PINGs included.
    Mute,
}

fn is_stream_frame(f: &[u8]) -> Option<Header> {
    frame_header(f).filter(|h| matches!(h.msg_type, MessageType::Stream | MessageType::StreamHole))
}

/// The actions for the target message, given its recorded answers (serials rewritten), and whether
/// the twist found what it changes (a reply, a stream packet); `false`: the answers went out as
/// recorded.
fn twisted(job: &Job, call: &Header, answers: Vec<Vec<u8>>, limits: &Limits) -> (Vec<Act>, bool) {
    let has_reply = reply_index(&answers).is_some();
    let stream_ok = |a: &Vec<u8>| is_stream_frame(a).is_some_and(|h| h.status == MessageStatus::Ok);
    let stream_data =
        |a: &Vec<u8>| is_stream_frame(a).is_some_and(|h| h.status == MessageStatus::Continue);
    let changed = match &job.twist {
        Twist::Replay | Twist::OutOfOrder => false,
        Twist::UnusedSerial
        | Twist::DuplicateReply
        | Twist::WrongProcedure
        | Twist::Trailing(_)
        | Twist::Payload(_) => has_reply,
        Twist::Count(_) => reply_index(&answers)
            .and_then(|i| frame_parts(&answers[i]))
            .is_some_and(|(_, _, p)| p.len() >= 4),
        Twist::Bound { .. } => has_reply && job.judge.schema().is_some(),
        Twist::StreamNoEnd => answers.iter().any(stream_ok),
        Twist::StreamDataAfterEnd | Twist::StreamError => answers.iter().any(stream_data),
        Twist::StreamHole => answers.iter().any(|a| is_stream_frame(a).is_some()),
        // The rest change the conversation whatever the answers are.
        Twist::EventBefore
        | Twist::EventFlood(_)
        | Twist::ServerPing
        | Twist::Silence { .. }
        | Twist::LengthWord(_)
        | Twist::LargestThenNothing
        | Twist::OneByteAtATime
        | Twist::CloseMidFrame
        | Twist::Reset
        | Twist::ErrorAllAbsent
        | Twist::ErrorMessage(_) => true,
    };
    (twisted_acts(job, call, answers, limits), changed)
}

fn twisted_acts(job: &Job, call: &Header, answers: Vec<Vec<u8>>, limits: &Limits) -> Vec<Act> {
    let ri = reply_index(&answers);
    let reply = ri.map(|i| answers[i].clone());
    let send_all = |a: Vec<Vec<u8>>| a.into_iter().map(Act::Send).collect::<Vec<_>>();
    // The answers with the reply replaced by `r` (when there is a reply).
    let replace = |r: Vec<u8>| -> Vec<Act> {
        let mut a = answers.clone();
        match ri {
            Some(i) => a[i] = r,
            None => a.insert(0, r),
        }
        send_all(a)
    };
    let reply_header = reply.as_deref().and_then(frame_header).unwrap_or_else(|| {
        let mut h = *call;
        h.msg_type = MessageType::Reply;
        h
    });
    let header_of_reply = || reply_header;
    match &job.twist {
        Twist::Replay | Twist::OneByteAtATime | Twist::OutOfOrder => send_all(answers),
        Twist::EventBefore => {
            let mut v = vec![Act::Send(lifecycle_event(limits))];
            v.extend(send_all(answers));
            v
        }
        Twist::EventFlood(n) => {
            let mut v = send_all(answers);
            let ev = lifecycle_event(limits);
            // In batches of about 64 KiB: one write each.
            let per = (65536 / ev.len().max(1)).max(1);
            let mut left = *n;
            while left > 0 {
                let k = left.min(per);
                v.push(Act::Send(ev.repeat(k)));
                left -= k;
            }
            v
        }
        Twist::UnusedSerial => {
            let mut v = Vec::new();
            if let Some(r) = &reply {
                v.push(Act::Send(rebuild(r, |h, _| {
                    h.serial = h.serial.wrapping_add(0x0010_0000)
                })));
            }
            v.extend(send_all(answers));
            v
        }
        Twist::DuplicateReply => {
            let mut v = send_all(answers);
            if let Some(r) = reply {
                v.push(Act::Send(r));
            }
            v
        }
        Twist::WrongProcedure => {
            let other = if call.procedure == proc::CONNECT_GET_TYPE {
                proc::CONNECT_GET_URI
            } else {
                proc::CONNECT_GET_TYPE
            };
            match reply {
                Some(r) => vec![Act::Send(rebuild(&r, |h, _| h.procedure = other))],
                None => send_all(answers),
            }
        }
        Twist::ServerPing => {
            let mut v = send_all(answers);
            v.push(Act::Send(KeepaliveProc::Ping.frame()));
            v
        }
        Twist::Silence { .. } => vec![Act::Mute],
        Twist::LengthWord(len) => {
            let mut b = len.to_be_bytes().to_vec();
            b.extend_from_slice(&header_frame(&header_of_reply())[4..]);
            vec![Act::Send(b), Act::Mute]
        }
        Twist::LargestThenNothing => {
            let max = u32::try_from(limits.frame_max()).unwrap_or(u32::MAX);
            let mut b = max.to_be_bytes().to_vec();
            b.extend_from_slice(&header_frame(&header_of_reply())[4..]);
            vec![Act::Send(b), Act::Mute]
        }
        Twist::CloseMidFrame => {
            let r = reply.unwrap_or_else(|| header_frame(&header_of_reply()));
            let half = (r.len() / 2).max(5);
            vec![Act::Send(r[..half.min(r.len())].to_vec()), Act::Close]
        }
        Twist::Reset => vec![Act::Reset],
        Twist::ErrorAllAbsent => {
            let e = ErrorBody {
                code: 1,
                domain: FROM_RPC,
                level: 2,
                ..ErrorBody::default()
            };
            let payload = e.to_bytes(limits).unwrap_or_default();
            replace(reply_with(
                &header_of_reply(),
                MessageStatus::Error,
                payload,
            ))
        }
        Twist::ErrorMessage(n) => {
            let msg = vec![b'A'; *n as usize];
            let mut payload = Vec::new();
            let mut w = Writer::new(&mut payload);
            w.i32(1); // code: VIR_ERR_INTERNAL_ERROR
            w.i32(FROM_RPC);
            w.optional(true);
            // Over the maximum on purpose: written unchecked (the same bytes as a string).
            w.opaque_var_unchecked(&msg, 0);
            w.i32(2); // level: VIR_ERR_ERROR
            w.optional(false); // dom
            w.optional(false); // str1
            w.optional(false); // str2
            w.optional(false); // str3
            w.i32(0);
            w.i32(0);
            w.optional(false); // net
            replace(reply_with(
                &header_of_reply(),
                MessageStatus::Error,
                payload,
            ))
        }
        Twist::Count(c) => match reply {
            Some(r) => replace(rebuild(&r, |_, p| {
                if p.len() >= 4 {
                    p[..4].copy_from_slice(&c.to_be_bytes());
                }
            })),
            None => send_all(answers),
        },
        Twist::Trailing(t) => match reply {
            Some(r) => replace(rebuild(&r, |_, p| p.extend_from_slice(t))),
            None => send_all(answers),
        },
        Twist::Payload(new) => match reply {
            Some(r) => replace(rebuild(&r, |_, p| *p = new.clone())),
            None => send_all(answers),
        },
        Twist::Bound { root, field, over } => match (reply, job.judge.schema()) {
            (Some(r), Some(schema)) => {
                let count = if *over {
                    field.max.saturating_add(1)
                } else {
                    field.max
                };
                let payload = bounds::with_count(schema, *root, field, count, b'x');
                replace(rebuild(&r, |_, p| *p = payload))
            }
            _ => send_all(answers),
        },
        Twist::StreamNoEnd => {
            let last_end = answers
                .iter()
                .rposition(|a| is_stream_frame(a).is_some_and(|h| h.status == MessageStatus::Ok));
            let mut a = answers;
            if let Some(i) = last_end {
                a.remove(i);
            }
            send_all(a)
        }
        Twist::StreamDataAfterEnd => {
            let data = answers
                .iter()
                .find(|a| is_stream_frame(a).is_some_and(|h| h.status == MessageStatus::Continue));
            let extra = data.cloned();
            let mut v = send_all(answers.clone());
            if let Some(d) = extra {
                v.push(Act::Send(d));
            }
            v
        }
        Twist::StreamHole => {
            let first = answers.iter().position(|a| is_stream_frame(a).is_some());
            let mut a = answers.clone();
            if let Some(i) = first
                && let Some(h) = frame_header(&a[i])
            {
                let mut hh = h;
                hh.msg_type = MessageType::StreamHole;
                hh.status = MessageStatus::Continue;
                let mut p = Vec::new();
                let mut w = Writer::new(&mut p);
                w.i64(65536);
                w.u32(0);
                a.insert(i, FrameBuilder::new(hh).payload(p).build_unchecked());
            }
            send_all(a)
        }
        Twist::StreamError => {
            let first = answers.iter().position(|a| {
                is_stream_frame(a).is_some_and(|h| h.status == MessageStatus::Continue)
            });
            match first {
                Some(i) => {
                    let mut a: Vec<Vec<u8>> = answers[..=i].to_vec();
                    if let Some(h) = frame_header(&answers[i]) {
                        let payload = ErrorBody::new(1, FROM_RPC, "virtwire: an error mid-stream")
                            .to_bytes(limits)
                            .unwrap_or_default();
                        let mut hh = h;
                        hh.status = MessageStatus::Error;
                        a.push(FrameBuilder::new(hh).payload(payload).build_unchecked());
                    }
                    send_all(a)
                }
                None => send_all(answers),
            }
        }
    }
}

/// [`twisted`], noting in [`Observed::changed`] whether it changed anything.
fn apply(job: &Job, call: &Header, answers: Vec<Vec<u8>>, limits: &Limits) -> Vec<Act> {
    let (acts, changed) = twisted(job, call, answers, limits);
    if changed {
        with(&job.observed, |o| o.changed = true);
    }
    acts
}

/// The procedure's name for reports (`CONNECT_OPEN`), or its number.
fn judge_name(judge: &Judge, h: &Header) -> String {
    judge
        .procedure_name(h)
        .map_or_else(|| format!("procedure {}", h.procedure), str::to_string)
}

/// A frame of just `h` (no payload).
fn header_frame(h: &Header) -> Vec<u8> {
    FrameBuilder::new(*h).build_unchecked()
}

/// A reply went out: its call no longer waits (a batch of frames, e.g. an event flood, is looked at
/// by its first frame only).
fn forget(outstanding: &mut VecDeque<u32>, sent: &[u8]) {
    if let Some(h) = frame_header(sent)
        && h.msg_type.is_reply()
    {
        outstanding.retain(|s| *s != h.serial);
    }
}

/// Serve one client connection.
fn serve(conn: Conn, job: &Job) {
    with(&job.observed, |o| o.connections += 1);
    let ctl = conn.try_clone().ok();
    let mut peer = Peer::server_side(conn.boxed(), job.judge.clone());
    if let Ok(mut l) = job.logs.lock() {
        l.push(peer.log());
    }
    let limits = *job.judge.limits();
    let script = &job.script;
    let mut m = Matcher::new(script);
    let mut muted = false;
    let mut target_done = false;
    let mut outstanding: VecDeque<u32> = VecDeque::new();
    // OutOfOrder: the target's answers, held for the next call, and until when.
    let mut held: Option<(Vec<Vec<u8>>, Instant)> = None;
    // ServerPing: PING sent; the next call's answers wait for the PONG (until when).
    let mut ping_sent: Option<Instant> = None;
    let mut waiting: Option<Vec<Vec<u8>>> = None;
    let mut hold_next = false;
    let pieces = job.twist == Twist::OneByteAtATime;
    let send = |peer: &mut Peer, bytes: &[u8]| -> bool {
        let left = job.deadline.saturating_duration_since(Instant::now());
        let r = if pieces {
            // The first PIECES_PREFIX bytes of each frame (length word, header and the start of the
            // body) one byte per write; the rest of a large frame in one write, so that the server
            // still answers the client's keepalive in time.
            let cut = bytes.len().min(PIECES_PREFIX);
            peer.send_in_pieces(&bytes[..cut], 1, Duration::from_micros(50), left)
                .and_then(|()| peer.send(&bytes[cut..], left))
        } else {
            peer.send(bytes, left)
        };
        if let Err(e) = &r {
            note(
                &job.observed,
                format!(
                    "the scripted server could not send {} bytes: {e}",
                    bytes.len()
                ),
            );
        }
        r.is_ok()
    };
    for g in &script.greeting {
        if !send(&mut peer, g) {
            return;
        }
    }
    'conn: loop {
        if job.stop.load(Ordering::SeqCst) || Instant::now() >= job.deadline {
            break;
        }
        // Held answers whose time has come.
        if let Some((a, until)) = &held
            && Instant::now() >= *until
        {
            for f in a.clone() {
                if !send(&mut peer, &f) {
                    break 'conn;
                }
                forget(&mut outstanding, &f);
            }
            held = None;
        }
        if let (Some(sent), Some(a)) = (ping_sent, &waiting) {
            let pong = with(&job.observed, |o| o.pongs > 0).unwrap_or(false);
            if pong || sent.elapsed() > Duration::from_secs(3) {
                for f in a.clone() {
                    if !send(&mut peer, &f) {
                        break 'conn;
                    }
                    forget(&mut outstanding, &f);
                }
                waiting = None;
            }
        }
        let tick = (Instant::now() + Duration::from_millis(50)).min(job.deadline);
        let f = match peer.next_event(tick) {
            Event::Timeout => continue,
            Event::Closed { .. } | Event::Reset(_) => break,
            Event::FramingError { error, head } => {
                let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
                with(&job.observed, |o| {
                    o.violations.push(format!(
                        "the client sent bytes that cannot be framed ({error}); they start {hex}"
                    ))
                });
                break;
            }
            Event::Frame(f) => f,
        };
        let h = *f.header();
        let judged = peer.judge_frame(&f);
        if judged.decode_error.is_none()
            && let Some(strict) = &job.strict
        {
            let origin = Origin {
                file: "",
                pkt: None,
                ts_ns: None,
                conn: None,
                dir: None,
                offset: f.stream_offset(),
            };
            if let Some(e) = strict.message(origin, f.frame()).error {
                with(&job.observed, |o| {
                    if o.strict.len() < 20 {
                        o.strict.push((
                            h,
                            format!(
                                "the client's {} {} is not strict XDR: {e}",
                                judge_name(&job.judge, &h),
                                words(&h)
                            ),
                        ))
                    }
                });
            }
        }
        match &judged.decode_error {
            // A procedure newer than the schema (a newer client) is not the client's fault.
            Some(e) if e.category() == virtwire_protocol::Category::Unknown => note(
                &job.observed,
                format!("the client's {} is not in the schema: {e}", words(&h)),
            ),
            Some(e) => {
                with(&job.observed, |o| {
                    o.violations
                        .push(format!("the client's {} does not decode: {e}", words(&h)))
                });
            }
            None => {}
        }
        if h.prog == KEEPALIVE_PROGRAM {
            with(&job.observed, |o| match h.procedure {
                1 => o.pings += 1,
                2 => o.pongs += 1,
                _ => {}
            });
            continue;
        }
        if h.msg_type.is_call() {
            if outstanding.contains(&h.serial) {
                with(&job.observed, |o| {
                    o.violations.push(format!(
                        "the client's {} reuses the serial of a call still waiting for its reply",
                        words(&h)
                    ))
                });
            }
            outstanding.push_back(h.serial);
            if outstanding.len() > 256 {
                outstanding.pop_front();
            }
        }
        if muted {
            continue;
        }
        let (index, mut answers) = match m.answer(script, &h) {
            Some(x) => (Some(x.0), x.1),
            None => {
                with(&job.observed, |o| {
                    if o.unmatched.len() < 20 {
                        o.unmatched.push(words(&h))
                    }
                });
                let answers = if h.msg_type.is_call() {
                    let payload = ErrorBody::new(
                        1,
                        FROM_RPC,
                        "virtwire scripted server: the recording has no answer to this call",
                    )
                    .to_bytes(&limits)
                    .unwrap_or_default();
                    vec![reply_with(&h, MessageStatus::Error, payload)]
                } else {
                    Vec::new()
                };
                (None, answers)
            }
        };
        // Silence without keepalive: the server says it has no keepalive.
        if job.twist == (Twist::Silence { keepalive: false })
            && h.prog == REMOTE_PROGRAM
            && h.procedure == proc::CONNECT_SUPPORTS_FEATURE
            && judged.body.get("feature").and_then(|v| v.as_i64())
                == Some(FEATURE_PROGRAM_KEEPALIVE)
            && let Some(i) = reply_index(&answers)
        {
            answers[i] = rebuild(&answers[i], |_, p| *p = 0u32.to_be_bytes().to_vec());
        }
        // The client asked for keepalive and is told yes.
        if h.prog == REMOTE_PROGRAM
            && h.procedure == proc::CONNECT_SUPPORTS_FEATURE
            && judged.body.get("feature").and_then(|v| v.as_i64())
                == Some(FEATURE_PROGRAM_KEEPALIVE)
            && reply_index(&answers)
                .and_then(|i| frame_json(&job.judge, &answers[i]).ok())
                .and_then(|j| j["body"]["supported"].as_i64())
                .is_some_and(|v| v != 0)
        {
            with(&job.observed, |o| o.keepalive_enabled = true);
        }
        // CONTINUE without end: once the target's stream has begun, no STREAM/OK from the server.
        if job.twist == Twist::StreamNoEnd && target_done {
            let before = answers.len();
            answers.retain(|a| is_stream_frame(a).is_none_or(|h| h.status != MessageStatus::Ok));
            if answers.len() < before {
                with(&job.observed, |o| o.changed = true);
            }
        }
        // A call while the target's reply is held: this one's answers first.
        if let Some((a, _)) = held.take() {
            with(&job.observed, |o| {
                o.pipelined = true;
                o.changed = true;
            });
            for f in answers.into_iter().chain(a) {
                if !send(&mut peer, &f) {
                    break 'conn;
                }
                forget(&mut outstanding, &f);
            }
            continue;
        }
        if hold_next && h.msg_type.is_call() {
            hold_next = false;
            waiting = Some(answers);
            continue;
        }
        let acts = if !target_done && index.is_some() && index == job.target {
            target_done = true;
            with(&job.observed, |o| o.applied = true);
            match job.twist {
                Twist::OutOfOrder => {
                    held = Some((answers, Instant::now() + Duration::from_millis(500)));
                    Vec::new()
                }
                Twist::ServerPing => {
                    ping_sent = Some(Instant::now());
                    hold_next = true;
                    apply(job, &h, answers, &limits)
                }
                _ => apply(job, &h, answers, &limits),
            }
        } else {
            answers.into_iter().map(Act::Send).collect()
        };
        for act in acts {
            match act {
                Act::Send(b) => {
                    if !send(&mut peer, &b) {
                        break 'conn;
                    }
                    forget(&mut outstanding, &b);
                }
                Act::Close => {
                    if let Some(c) = &ctl {
                        c.close();
                    }
                    break 'conn;
                }
                Act::Reset => {
                    if let Some(c) = &ctl {
                        c.reset();
                    }
                    break 'conn;
                }
                Act::Mute => {
                    muted = true;
                    peer.auto_pong = false;
                }
            }
        }
    }
    drop(peer);
    drop(ctl);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse;
    use virtwire_protocol::{Compat, OwnedFrame};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// AUTH_LIST then CONNECT_GET_TYPE, as recorded with serials 1 and 2.
    fn script() -> Arc<Script> {
        let call = |p: i32, s: u32| FrameBuilder::call(REMOTE_PROGRAM, p, s).build_unchecked();
        let reply = |p: i32, s: u32, body: Vec<u8>| {
            FrameBuilder::call(REMOTE_PROGRAM, p, s)
                .msg_type(MessageType::Reply)
                .payload(body)
                .build_unchecked()
        };
        let text = format!(
            "virtwire-trace 1\n> CALL remote.AUTH_LIST serial=1\n  frame {}\n< REPLY remote.AUTH_LIST serial=1\n  frame {}\n> CALL remote.CONNECT_GET_TYPE serial=2\n  frame {}\n< REPLY remote.CONNECT_GET_TYPE serial=2\n  frame {}\n",
            hex(&call(66, 1)),
            hex(&reply(66, 1, vec![0, 0, 0, 1, 0, 0, 0, 0])),
            hex(&call(3, 2)),
            hex(&reply(3, 2, vec![0, 0, 0, 4, b'T', b'E', b'S', b'T'])),
        );
        Arc::new(Script::from_trace(&parse::parse(&text, "t").unwrap()).unwrap())
    }

    fn judge() -> Arc<Judge> {
        Arc::new(Judge::new(Limits::default(), Compat::Libvirt, None))
    }

    /// Start a server with `twist` at exchange `target`, connect a client peer to it.
    fn start(twist: Twist, target: usize) -> (Server, Peer) {
        let form = UriForm {
            driver: "test".into(),
            path: "/default".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let server = Server::start(
            script(),
            twist,
            Some(target),
            &Listen::Tcp,
            &form,
            judge(),
            None,
            deadline,
        )
        .unwrap();
        let addr = server
            .uri
            .trim_start_matches("test+tcp://")
            .trim_end_matches("/default")
            .to_string();
        let s = TcpStream::connect(addr).unwrap();
        (server, Peer::new(Box::new(s), judge()))
    }

    fn call(peer: &mut Peer, procedure: i32, serial: u32) {
        let f = FrameBuilder::call(REMOTE_PROGRAM, procedure, serial).build_unchecked();
        peer.send(&f, Duration::from_secs(5)).unwrap();
    }

    fn next(peer: &mut Peer) -> OwnedFrame {
        match peer.next_event(Instant::now() + Duration::from_secs(5)) {
            Event::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn replies_take_the_clients_serial_and_an_event_can_come_first() {
        let (server, mut peer) = start(Twist::EventBefore, 0);
        call(&mut peer, 66, 77);
        let ev = next(&mut peer);
        assert_eq!(ev.header().msg_type, MessageType::Message);
        assert_eq!(ev.header().procedure, DOMAIN_EVENT_LIFECYCLE);
        let r = next(&mut peer);
        assert_eq!((r.header().procedure, r.header().serial), (66, 77));
        call(&mut peer, 3, 78);
        let r = next(&mut peer);
        assert_eq!((r.header().procedure, r.header().serial), (3, 78));
        assert_eq!(&r.payload()[4..8], b"TEST");
        drop(peer);
        let (obs, logs) = server.finish();
        assert!(obs.applied);
        assert!(obs.violations.is_empty(), "{:?}", obs.violations);
        assert_eq!(obs.connections, 1);
        assert_eq!(logs.len(), 1);
    }

    #[test]
    fn twists_change_the_target_reply_only() {
        // Duplicate: the second call's reply comes twice.
        let (server, mut peer) = start(Twist::DuplicateReply, 1);
        call(&mut peer, 66, 1);
        assert_eq!(next(&mut peer).header().serial, 1);
        call(&mut peer, 3, 2);
        assert_eq!(next(&mut peer).header().serial, 2);
        assert_eq!(next(&mut peer).header().serial, 2);
        drop(peer);
        server.finish();
        // Wrong procedure: the reply to CONNECT_GET_TYPE says CONNECT_GET_URI.
        let (server, mut peer) = start(Twist::WrongProcedure, 1);
        call(&mut peer, 66, 1);
        next(&mut peer);
        call(&mut peer, 3, 2);
        let r = next(&mut peer);
        assert_eq!(
            (r.header().procedure, r.header().serial),
            (proc::CONNECT_GET_URI, 2)
        );
        drop(peer);
        server.finish();
        // A length word of 0xFFFFFFFF: the client's framing refuses it.
        let (server, mut peer) = start(Twist::LengthWord(u32::MAX), 1);
        call(&mut peer, 66, 1);
        next(&mut peer);
        call(&mut peer, 3, 2);
        match peer.next_event(Instant::now() + Duration::from_secs(5)) {
            Event::FramingError { head, .. } => assert_eq!(&head[..4], &[0xff; 4]),
            other => panic!("expected a framing error, got {other:?}"),
        }
        drop(peer);
        server.finish();
    }

    #[test]
    fn a_client_that_reuses_a_waiting_serial_is_reported() {
        let (server, mut peer) = start(Twist::Silence { keepalive: true }, 1);
        call(&mut peer, 66, 1);
        next(&mut peer);
        call(&mut peer, 3, 2); // no answer: silence from here on
        call(&mut peer, 3, 2);
        std::thread::sleep(Duration::from_millis(300));
        drop(peer);
        let (obs, _) = server.finish();
        assert!(
            obs.violations
                .iter()
                .any(|v| v.contains("reuses the serial of a call still waiting")),
            "{:?}",
            obs.violations
        );
    }

    #[test]
    fn a_unix_socket_server_in_a_private_directory() {
        let form = UriForm {
            driver: "test".into(),
            path: "/default".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let server = Server::start(
            script(),
            Twist::Replay,
            None,
            &Listen::Unix,
            &form,
            judge(),
            None,
            deadline,
        )
        .unwrap();
        let (prefix, path) = server.uri.split_once("?socket=").unwrap();
        assert_eq!(prefix, "test+unix:///default");
        let dir = std::path::Path::new(path).parent().unwrap().to_path_buf();
        let mut peer = Peer::new(Box::new(UnixStream::connect(path).unwrap()), judge());
        call(&mut peer, 66, 5);
        assert_eq!(next(&mut peer).header().serial, 5);
        drop(peer);
        let (obs, _) = server.finish();
        assert!(!obs.applied, "no twist, nothing applied");
        assert!(!dir.exists(), "the private directory is removed");
    }
}
