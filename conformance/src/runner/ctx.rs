//! What a case runs in: connections to the target on request (a case never opens a socket itself),
//! deadlines, and the expectations that turn what the server did into an [`Outcome`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, MessageStatus, MessageType, Writer};

use super::case::Outcome;
use crate::wire::Judge;
use crate::wire::json::Hex;
use crate::wire::peer::{Event, Peer, Reply, Transport, WireLog};

/// `remote` procedure numbers the built-in cases use (remote_protocol.x).
pub mod proc {
    /// REMOTE_PROC_CONNECT_OPEN.
    pub const CONNECT_OPEN: i32 = 1;
    /// REMOTE_PROC_CONNECT_CLOSE.
    pub const CONNECT_CLOSE: i32 = 2;
    /// REMOTE_PROC_CONNECT_GET_TYPE.
    pub const CONNECT_GET_TYPE: i32 = 3;
    /// REMOTE_PROC_CONNECT_SUPPORTS_FEATURE.
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    /// REMOTE_PROC_AUTH_LIST.
    pub const AUTH_LIST: i32 = 66;
    /// REMOTE_PROC_CONNECT_GET_URI.
    pub const CONNECT_GET_URI: i32 = 110;
    /// REMOTE_PROC_CONNECT_GET_LIB_VERSION.
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    /// REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS.
    pub const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    /// REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS.
    pub const CONNECT_GET_ALL_DOMAIN_STATS: i32 = 344;
}

/// libvirt error codes the built-in cases expect (virerror.h).
pub mod code {
    /// VIR_ERR_INTERNAL_ERROR.
    pub const INTERNAL_ERROR: i32 = 1;
    /// VIR_ERR_RPC.
    pub const RPC: i32 = 39;
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
}

/// What a case may ask of its run: the target, the judge, and the timeouts.
pub struct Env {
    /// The target.
    pub connector: Box<dyn Connector>,
    /// How received messages are judged.
    pub judge: Arc<Judge>,
    /// Longest wait for any one answer.
    pub read_timeout: Duration,
    /// How long "the server says nothing" is watched for.
    pub silence: Duration,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
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
        let left = self.deadline.saturating_duration_since(Instant::now());
        let io = self
            .env
            .connector
            .connect(self.env.connect_timeout.min(left))
            .map_err(|e| {
                Outcome::error(format!(
                    "cannot connect to {}: {e}",
                    self.env.connector.describe()
                ))
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
        let args = connect_open_args(self.env.connector.open_name().as_deref(), 0);
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
        self.send(peer, &bytes)?;
        peer.sent_call(*call.header());
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
        let r = peer.reply(serial, deadline).map_err(|ev| {
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

    /// The server must send nothing for `within` (keepalive traffic aside). A close counts as
    /// something: the requirement is that the connection stays quietly open.
    pub fn expect_silence(&mut self, peer: &mut Peer, within: Duration) -> Result<(), Outcome> {
        let deadline = (Instant::now() + within).min(self.deadline);
        loop {
            match peer.next_event(deadline) {
                Event::Timeout => return Ok(()),
                Event::Frame(f)
                    if f.header().prog == virtwire_protocol::header::KEEPALIVE_PROGRAM => {}
                ev => {
                    return Err(Outcome::fail(
                        format!(
                            "no answer for {:.1} s, connection kept open",
                            within.as_secs_f64()
                        ),
                        self.describe(peer, &ev),
                    ));
                }
            }
        }
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
