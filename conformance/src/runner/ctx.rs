//! What a case runs in: connections to the target on request (a case never opens a socket itself),
//! deadlines, and the expectations that turn what the server did into an [`Outcome`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, MessageStatus, MessageType, Writer};

use super::case::Outcome;
use crate::wire::Judge;
use crate::wire::json::Hex;
use crate::wire::peer::{Event, Peer, Reply, Transport, WireLog, is_ping};

/// `remote` procedure numbers the built-in cases use (remote_protocol.x).
pub mod proc {
    /// REMOTE_PROC_CONNECT_OPEN.
    pub const CONNECT_OPEN: i32 = 1;
    /// REMOTE_PROC_CONNECT_CLOSE.
    pub const CONNECT_CLOSE: i32 = 2;
    /// REMOTE_PROC_CONNECT_GET_TYPE.
    pub const CONNECT_GET_TYPE: i32 = 3;
    /// REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME.
    pub const DOMAIN_LOOKUP_BY_NAME: i32 = 23;
    /// REMOTE_PROC_DOMAIN_RESUME.
    pub const DOMAIN_RESUME: i32 = 28;
    /// REMOTE_PROC_DOMAIN_SUSPEND.
    pub const DOMAIN_SUSPEND: i32 = 34;
    /// REMOTE_PROC_CONNECT_SUPPORTS_FEATURE.
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    /// REMOTE_PROC_AUTH_LIST.
    pub const AUTH_LIST: i32 = 66;
    /// REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME.
    pub const STORAGE_POOL_LOOKUP_BY_NAME: i32 = 84;
    /// REMOTE_PROC_STORAGE_VOL_CREATE_XML.
    pub const STORAGE_VOL_CREATE_XML: i32 = 93;
    /// REMOTE_PROC_STORAGE_VOL_DELETE.
    pub const STORAGE_VOL_DELETE: i32 = 94;
    /// REMOTE_PROC_CONNECT_GET_URI.
    pub const CONNECT_GET_URI: i32 = 110;
    /// REMOTE_PROC_CONNECT_GET_LIB_VERSION.
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    /// REMOTE_PROC_DOMAIN_OPEN_CONSOLE.
    pub const DOMAIN_OPEN_CONSOLE: i32 = 201;
    /// REMOTE_PROC_STORAGE_VOL_UPLOAD.
    pub const STORAGE_VOL_UPLOAD: i32 = 208;
    /// REMOTE_PROC_DOMAIN_SCREENSHOT.
    pub const DOMAIN_SCREENSHOT: i32 = 211;
    /// REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS.
    pub const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    /// REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: i32 = 316;
    /// REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY.
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: i32 = 317;
    /// REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE (a MESSAGE from the server).
    pub const DOMAIN_EVENT_CALLBACK_LIFECYCLE: i32 = 318;
    /// REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS.
    pub const CONNECT_GET_ALL_DOMAIN_STATS: i32 = 344;
}

/// libvirt error codes the built-in cases expect (virerror.h).
pub mod code {
    /// VIR_ERR_INTERNAL_ERROR.
    pub const INTERNAL_ERROR: i32 = 1;
    /// VIR_ERR_NO_SUPPORT ("this function is not supported by the connection driver").
    pub const NO_SUPPORT: i32 = 3;
    /// VIR_ERR_RPC.
    pub const RPC: i32 = 39;
}

/// A server beside the target that some cases need. The suite provides each when it can (its own
/// daemons, or what the user names with flags beside `--target`); a case whose endpoint is absent
/// is `unsupported`, with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// The same daemon's read-only socket (`libvirt-sock-ro`: the daemon forces VIR_CONNECT_RO).
    ReadOnly,
    /// The daemon's admin socket (the admin program).
    Admin,
    /// A virtlogd (the log program).
    Virtlogd,
    /// A virtlockd (the lock program).
    Virtlockd,
    /// A libvirtd whose TCP listener requires SASL (`auth_tcp = "sasl"`), with a known user.
    Sasl,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 5] = [
        Endpoint::ReadOnly,
        Endpoint::Admin,
        Endpoint::Virtlogd,
        Endpoint::Virtlockd,
        Endpoint::Sasl,
    ];

    /// Its name in messages and flags (`readonly`, `admin`, `virtlogd`, `virtlockd`, `sasl`).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ReadOnly => "readonly",
            Endpoint::Admin => "admin",
            Endpoint::Virtlogd => "virtlogd",
            Endpoint::Virtlockd => "virtlockd",
            Endpoint::Sasl => "sasl",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an endpoint cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Not provided (a URI target without the flag naming it): cases that need it are
    /// `unsupported`.
    Absent(String),
    /// It should be there but could not be made ready (a private daemon that did not start): a
    /// harness error for the cases that need it.
    Broken(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Absent(s) | Unavailable::Broken(s) => f.write_str(s),
        }
    }
}

/// A user name and password an endpoint accepts (SASL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The SASL authentication id.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// How the runner reaches a server: anything that opens byte streams to it.
pub trait Connector: Send + Sync {
    /// A new connection, within `timeout`.
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String>;
    /// The target as users write it (a connection URI).
    fn describe(&self) -> String;
    /// The name sent in CONNECT_OPEN (`test:///default`); `None` sends an absent name.
    fn open_name(&self) -> Option<String>;
    /// The program the target serves: the remote program (libvirtd, virtqemud…) unless the target
    /// is an admin socket.
    fn program(&self) -> u32 {
        REMOTE_PROGRAM
    }
    /// A server beside this one (see [`Endpoint`]); `Err` says why there is none.
    fn endpoint(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
        Err(Unavailable::Absent(format!(
            "the target provides no {which} endpoint"
        )))
    }
    /// Credentials this server accepts, when it asks for some (SASL).
    fn credentials(&self) -> Option<Credentials> {
        None
    }
}

impl<C: Connector + ?Sized> Connector for Arc<C> {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        (**self).connect(timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn open_name(&self) -> Option<String> {
        (**self).open_name()
    }
    fn program(&self) -> u32 {
        (**self).program()
    }
    fn endpoint(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
        (**self).endpoint(which)
    }
    fn credentials(&self) -> Option<Credentials> {
        (**self).credentials()
    }
}

/// What a case may ask of its run: the target, the judge, and the timeouts.
pub struct Env {
    /// The target.
    pub connector: Box<dyn Connector>,
    /// How received messages are judged.
    pub judge: Arc<Judge>,
    /// Longest wait for any one answer.
    pub read_timeout: Duration,
    /// How long the server is left to answer what it must not answer before the follow-up call
    /// ([`Ctx::expect_no_answer_until_followup`]; frames are examined until the follow-up's reply).
    pub silence: Duration,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// What the runner knows of a server it started itself on this machine; `None` for a target
    /// given by URI (cases that need it are then unsupported).
    pub local: Option<LocalServer>,
}

/// A server the runner started on this machine: facts from its configuration, and a directory the
/// server can read (for files named in a CONNECT_OPEN, such as a private test-driver world).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalServer {
    /// A directory the cases may write and the server may read; removed with the server.
    pub scratch: PathBuf,
    /// `max_client_requests`: calls in flight per client before the server stops reading.
    pub max_client_requests: u32,
    /// `keepalive_interval` (seconds) and `keepalive_count`.
    pub keepalive: (u32, u32),
    /// The server's log file, for evidence of what it did (read, never written).
    pub log: Option<PathBuf>,
}

/// One case's context.
pub struct Ctx<'r> {
    env: &'r Env,
    deadline: Instant,
    logs: Vec<(String, WireLog)>,
    notes: Vec<String>,
}

/// A hex preview of bytes for messages (at most 32 bytes).
fn preview(b: &[u8]) -> String {
    let n = b.len().min(32);
    format!("{}{}", Hex(&b[..n]), if b.len() > n { "…" } else { "" })
}

impl<'r> Ctx<'r> {
    /// A context for one case that must end by `deadline`.
    pub fn new(env: &'r Env, deadline: Instant) -> Self {
        Ctx {
            env,
            deadline,
            logs: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The run's settings.
    pub fn env(&self) -> &Env {
        self.env
    }

    /// The traffic of every connection the case opened, labelled `conn 1`, `conn 2`…
    pub fn into_parts(self) -> (Vec<(String, WireLog)>, Vec<String>) {
        (self.logs, self.notes)
    }

    /// Report `log` as one of the case's connections (`label`: `conn 1`…, or what it is), for a
    /// connection the case did not open through [`Ctx::connect`]: the scripted server's side of a
    /// client's connection in `check-client`.
    pub fn attach_log(&mut self, label: impl Into<String>, log: WireLog) {
        self.logs.push((label.into(), log));
    }

    /// The case's deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Add a note to the case's report.
    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// The latest moment the next answer may take: one read timeout from now, within the case's own
    /// deadline.
    pub fn read_deadline(&self) -> Instant {
        (Instant::now() + self.env.read_timeout).min(self.deadline)
    }

    /// A new connection to the target. Failing to connect is a harness error for this case.
    pub fn connect(&mut self) -> Result<Peer, Outcome> {
        let env = self.env;
        self.connect_with(env.connector.as_ref())
    }

    /// The endpoint `which` beside the target; when there is none the case is `unsupported`, with
    /// the reason (a harness error when it should be there but is broken).
    pub fn endpoint(&mut self, which: Endpoint) -> Result<Arc<dyn Connector>, Outcome> {
        self.env.connector.endpoint(which).map_err(|u| match u {
            Unavailable::Absent(why) => Outcome::unsupported(format!("no {which} endpoint: {why}")),
            Unavailable::Broken(why) => Outcome::error(format!("the {which} endpoint: {why}")),
        })
    }

    /// A new connection to the endpoint `which` (see [`Ctx::endpoint`]).
    pub fn connect_to(&mut self, which: Endpoint) -> Result<(Peer, Arc<dyn Connector>), Outcome> {
        let c = self.endpoint(which)?;
        let peer = self.connect_with(c.as_ref())?;
        Ok((peer, c))
    }

    /// A new connection through `connector`.
    pub fn connect_with(&mut self, connector: &dyn Connector) -> Result<Peer, Outcome> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let io = connector
            .connect(self.env.connect_timeout.min(left))
            .map_err(|e| {
                Outcome::error(format!("cannot connect to {}: {e}", connector.describe()))
            })?;
        let peer = Peer::new(io, self.env.judge.clone());
        self.logs
            .push((format!("conn {}", self.logs.len() + 1), peer.log()));
        Ok(peer)
    }

    /// A new connection with CONNECT_OPEN done (the name of the target's URI).
    pub fn opened(&mut self) -> Result<Peer, Outcome> {
        let mut peer = self.connect()?;
        self.open(&mut peer)?;
        Ok(peer)
    }

    /// CONNECT_OPEN on `peer`, which must succeed.
    pub fn open(&mut self, peer: &mut Peer) -> Result<(), Outcome> {
        let name = self.env.connector.open_name();
        self.open_as(peer, name.as_deref())
    }

    /// CONNECT_OPEN of the remote program with `name` on `peer`, which must succeed.
    pub fn open_as(&mut self, peer: &mut Peer, name: Option<&str>) -> Result<(), Outcome> {
        let args = connect_open_args(name, 0);
        let serial = self.call(peer, REMOTE_PROGRAM, proc::CONNECT_OPEN, &args)?;
        let r = self.expect_reply(peer, serial)?;
        if r.header.status != MessageStatus::Ok {
            return Err(Outcome::fail(
                "CONNECT_OPEN answered with status OK",
                r.to_string(),
            ));
        }
        Ok(())
    }

    /// Send bytes as they are.
    pub fn send(&mut self, peer: &mut Peer, bytes: &[u8]) -> Result<(), Outcome> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        peer.send(bytes, left).map_err(|e| {
            Outcome::fail(
                "the server reads what is sent",
                format!("sending failed: {e}"),
            )
        })
    }

    /// Send a CALL of `prog`'s `procedure` with `args` (already XDR-encoded) and a fresh serial;
    /// returns the serial.
    pub fn call(
        &mut self,
        peer: &mut Peer,
        prog: u32,
        procedure: i32,
        args: &[u8],
    ) -> Result<u32, Outcome> {
        let serial = peer.serial();
        let call = FrameBuilder::call(prog, procedure, serial).payload(args.to_vec());
        let bytes = call
            .encode(self.env.judge.limits())
            .map_err(|e| Outcome::error(format!("cannot encode the call: {e}")))?;
        // The frame holds a copy of the arguments (up to the 4 MiB of a limits case): gone before
        // the write, which may wait on a slow server.
        let header = *call.header();
        drop(call);
        self.send(peer, &bytes)?;
        peer.sent_call(header);
        Ok(serial)
    }

    /// Send `procedure` as CALL_WITH_FDS carrying `fds` (each passed after the message as libvirt's
    /// client does, src/rpc/virnetclient.c); returns the serial. A connection that cannot carry
    /// descriptors (not a unix socket) makes the case unsupported.
    pub fn call_with_fds(
        &mut self,
        peer: &mut Peer,
        prog: u32,
        procedure: i32,
        args: &[u8],
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<u32, Outcome> {
        let serial = peer.serial();
        let call = FrameBuilder::call(prog, procedure, serial)
            .msg_type(MessageType::CallWithFds)
            .nfds(Some(fds.len() as u32))
            .payload(args.to_vec());
        let bytes = call
            .encode(self.env.judge.limits())
            .map_err(|e| Outcome::error(format!("cannot encode the call: {e}")))?;
        let header = *call.header();
        drop(call);
        self.send(peer, &bytes)?;
        peer.sent_call(header);
        for fd in fds {
            let left = self.deadline.saturating_duration_since(Instant::now());
            peer.send_fd(*fd, left).map_err(|e| {
                if e.kind() == std::io::ErrorKind::Unsupported {
                    Outcome::unsupported(format!("a file descriptor cannot be sent: {e}"))
                } else {
                    Outcome::fail(
                        "the server takes the file descriptors a CALL_WITH_FDS announces",
                        format!("passing a file descriptor failed: {e}"),
                    )
                }
            })?;
        }
        Ok(serial)
    }

    /// Words for what the server did.
    pub fn describe(&self, peer: &Peer, ev: &Event) -> String {
        match ev {
            Event::Frame(f) => peer.judge_frame(f).to_string(),
            Event::Closed { unfinished: 0 } => "the server closed the connection".into(),
            Event::Closed { unfinished } => format!(
                "the server closed the connection in the middle of a frame ({unfinished} bytes of it sent)"
            ),
            Event::Reset(e) => format!("the connection failed: {e}"),
            Event::Timeout => format!(
                "nothing within {:.1} s",
                self.env.read_timeout.as_secs_f64()
            ),
            Event::FramingError { error, head } => format!(
                "bytes that cannot be framed ({error}); they start {}",
                preview(head)
            ),
        }
    }

    /// The reply to `serial`, whatever its status; anything else that ends the wait is a failure.
    /// A reply to a call sent with [`Ctx::call`] must echo its program, version and procedure.
    pub fn expect_reply(&mut self, peer: &mut Peer, serial: u32) -> Result<Reply, Outcome> {
        let deadline = self.read_deadline();
        let got = peer.reply(serial, deadline);
        // A frame the server must not send, caught while waiting, is the case's failure first.
        self.check_strays(peer)?;
        let r = got.map_err(|ev| {
            Outcome::fail(
                format!("a REPLY to serial {serial}"),
                self.describe(peer, &ev),
            )
        })?;
        if let Some(c) = peer.call_with_serial(serial)
            && (c.prog, c.vers, c.procedure) != (r.header.prog, r.header.vers, r.header.procedure)
        {
            return Err(Outcome::fail(
                format!(
                    "a REPLY to serial {serial} echoing prog {:#x} vers {} proc {}",
                    c.prog, c.vers, c.procedure
                ),
                r.to_string(),
            ));
        }
        Ok(r)
    }

    /// The reply to `serial` must be REPLY/OK and decode.
    pub fn expect_ok(&mut self, peer: &mut Peer, serial: u32) -> Result<Reply, Outcome> {
        let r = self.expect_reply(peer, serial)?;
        if r.header.status != MessageStatus::Ok || r.decode_error.is_some() {
            return Err(Outcome::fail(
                format!("REPLY/OK to serial {serial}"),
                r.to_string(),
            ));
        }
        Ok(r)
    }

    /// The reply to `serial` must be REPLY/ERROR with error `code` (any when `None`) and a message
    /// containing `contains`.
    pub fn expect_error(
        &mut self,
        peer: &mut Peer,
        serial: u32,
        code: Option<i32>,
        contains: &str,
    ) -> Result<Reply, Outcome> {
        let expected = format!(
            "REPLY/ERROR to serial {serial}{}{}",
            code.map_or(String::new(), |c| format!(" with code {c}")),
            if contains.is_empty() {
                String::new()
            } else {
                format!(", message containing {contains:?}")
            }
        );
        let r = self.expect_reply(peer, serial)?;
        let ok = r.header.status == MessageStatus::Error
            && r.header.msg_type == MessageType::Reply
            && r.error.as_ref().is_some_and(|e| {
                code.is_none_or(|c| e.code == c)
                    && e.message.as_deref().unwrap_or("").contains(contains)
            });
        if ok {
            Ok(r)
        } else {
            Err(Outcome::fail(expected, r.to_string()))
        }
    }

    /// The one way a case checks that the server leaves a message unanswered (or answers it only
    /// as `allow` accepts): from when `peer`'s latest message was sent until the reply to the
    /// follow-up call that `followup` makes on the same connection (proof that the connection is
    /// alive and that the server read past the message), every frame the server sends is examined
    /// (a keepalive PING aside), and one that `allow` does not accept fails the case with its
    /// arrival time in ms since the message was sent. The server is given [`Env::silence`] before
    /// the follow-up (less when a frame `allow` accepts comes first: the message got its
    /// answer), but a frame that comes later, while the case waits for the follow-up's reply,
    /// is caught too ([`Peer::watch`]). A close or reset in the window fails the case (the
    /// connection must stay open). Returns what `followup` returned and the frames `allow`
    /// accepted (described, with their arrival times).
    pub fn expect_no_answer_until_followup<T>(
        &mut self,
        peer: &mut Peer,
        what: &str,
        allow: fn(&Reply) -> bool,
        followup: impl FnOnce(&mut Self, &mut Peer) -> Result<T, Outcome>,
    ) -> Result<(T, Vec<String>), Outcome> {
        let since = peer.last_sent();
        peer.watch(since, allow, what);
        let until = (since + self.env.silence).min(self.deadline);
        let out = self.watch_window(peer, until).and_then(|allowed| {
            let t = followup(self, peer)?;
            self.check_strays(peer)?;
            Ok((t, allowed))
        });
        peer.unwatch();
        out
    }

    /// [`Ctx::expect_no_answer_until_followup`] for cases that make their follow-up call
    /// themselves: nothing (a keepalive PING aside) may answer `peer`'s latest message, watched
    /// for `within`, then on through every later reply wait on `peer` ([`Ctx::expect_reply`]), so
    /// a frame that comes while the case waits for its follow-up's reply fails the case, with its
    /// arrival time. A close counts as something: the connection must stay quietly open.
    pub fn expect_silence(&mut self, peer: &mut Peer, within: Duration) -> Result<(), Outcome> {
        peer.watch(
            peer.last_sent(),
            no_frame,
            "no answer to the message (a keepalive PING aside) until the next call's reply, connection kept open",
        );
        let until = (Instant::now() + within).min(self.deadline);
        self.watch_window(peer, until).map(|_| ())
    }

    /// Read `peer` until `until` under its watch: a frame the watch does not allow fails the case
    /// (with its arrival time), as does a close or a reset; the first allowed frame ends the
    /// window. Returns the allowed frame, described.
    fn watch_window(&self, peer: &mut Peer, until: Instant) -> Result<Vec<String>, Outcome> {
        let mut allowed = Vec::new();
        loop {
            match peer.next_event(until) {
                Event::Timeout => return Ok(allowed),
                Event::Frame(f) if is_ping(&f) => {}
                Event::Frame(f) => {
                    let r = peer.judge_frame(&f);
                    let (since, _, ok) = peer.watched(&r).unwrap_or((peer.last_sent(), "", false));
                    let at = since.elapsed().as_millis();
                    if ok {
                        // The message got the answer it may get: the follow-up now (frames
                        // that come later are still examined until its reply).
                        allowed.push(format!("{r} ({at} ms after the message)"));
                        return Ok(allowed);
                    }
                    return Err(Outcome::fail(
                        peer.watching().unwrap_or("no answer").to_string(),
                        format!("{r}, {at} ms after the message was sent"),
                    ));
                }
                ev => {
                    return Err(Outcome::fail(
                        peer.watching().unwrap_or("no answer").to_string(),
                        self.describe(peer, &ev),
                    ));
                }
            }
        }
    }

    /// Fail the case when the watch on `peer` ([`Peer::watch`]) caught frames the server must not
    /// send while a reply was awaited: the first (and up to 7 more), with arrival times.
    fn check_strays(&self, peer: &mut Peer) -> Result<(), Outcome> {
        let (strays, more) = peer.take_strays();
        let Some((at, first)) = strays.first() else {
            return Ok(());
        };
        let mut actual = format!(
            "{first}, {} ms after the message was sent (while waiting for a later reply)",
            at.as_millis()
        );
        for (at, r) in &strays[1..] {
            actual.push_str(&format!("; then {r} at {} ms", at.as_millis()));
        }
        if more > 0 {
            actual.push_str(&format!("; and {more} more"));
        }
        Err(Outcome::fail(
            peer.watching().unwrap_or("no answer").to_string(),
            actual,
        ))
    }

    /// The server must close the connection (or reset it) without sending a message.
    pub fn expect_close(&mut self, peer: &mut Peer) -> Result<String, Outcome> {
        let deadline = self.read_deadline();
        match peer.next_event(deadline) {
            ev @ (Event::Closed { .. } | Event::Reset(_)) => Ok(self.describe(peer, &ev)),
            ev => Err(Outcome::fail(
                "the connection closed, nothing sent",
                self.describe(peer, &ev),
            )),
        }
    }

    /// The server must still serve a new client: connect, CONNECT_OPEN, CONNECT_GET_TYPE.
    pub fn expect_still_serving(&mut self) -> Result<(), Outcome> {
        let mut peer = self.opened().map_err(|o| {
            Outcome::fail(
                "the server still serves new connections",
                format!("it does not: {}", o.actual),
            )
        })?;
        let s = self.call(&mut peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
        self.expect_ok(&mut peer, s)?;
        Ok(())
    }
}

/// A watch that allows no frame: nothing may answer ([`Ctx::expect_no_answer_until_followup`]).
pub fn no_frame(_: &Reply) -> bool {
    false
}

/// A watch that allows REPLY/ERROR only: the message may be refused, never served.
pub fn error_replies(r: &Reply) -> bool {
    r.header.msg_type == MessageType::Reply && r.header.status == MessageStatus::Error
}

/// `remote_connect_open_args`: `{ remote_string name; unsigned int flags }`.
pub fn connect_open_args(name: Option<&str>, flags: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.optional(name.is_some());
    if let Some(n) = name {
        // A name over the string limit is the caller's own test input: encode it anyway.
        if w.string(n.as_bytes(), u32::MAX).is_err() {
            w.opaque_var_unchecked(n.as_bytes(), 0);
        }
    }
    w.u32(flags);
    out
}
