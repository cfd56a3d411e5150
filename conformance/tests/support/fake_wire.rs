//! Fakes for the stray-frame and weak-pass tests (`wire_verdicts.rs`): a minimal libvirt look-alike
//! whose answers a test overrides per frame ([`Mini`]), a connector with an admin endpoint beside
//! the target, and server hooks that say the server is local (scratch directory, log file,
//! `max_client_requests`). Every wait is bounded by the fake servers' own limits (`fake.rs`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use virtwire_conformance::runner::Connector;
use virtwire_conformance::runner::ctx::{Endpoint, LocalServer, Unavailable};
use virtwire_conformance::runner::{ServerEvent, ServerHooks};
use virtwire_conformance::wire::peer::Transport;
use virtwire_protocol::header::KEEPALIVE_PROGRAM;
use virtwire_protocol::{
    ErrorBody, FrameBuilder, Header, KeepaliveProc, Limits, MessageStatus, MessageType, OwnedFrame,
    Writer,
};

use crate::support::{Conn, Next, Tcp};

/// VIR_ERR_INTERNAL_ERROR, VIR_ERR_NO_SUPPORT, VIR_ERR_NO_DOMAIN; VIR_FROM_RPC.
pub const ERR_INTERNAL: i32 = 1;
pub const ERR_NO_SUPPORT: i32 = 3;
pub const ERR_NO_DOMAIN: i32 = 42;
pub const FROM_RPC: i32 = 7;

/// What a test's override does with a frame.
pub enum Answer {
    /// Not overridden: the default answer.
    Default,
    /// Write these bytes (maybe several frames), after waiting this long.
    After(Duration, Vec<u8>),
    /// Write the first bytes, wait, then write the second (nothing is read meanwhile).
    Twice(Vec<u8>, Duration, Vec<u8>),
}

/// A test's override: called on every frame before the default answer.
pub type Override = dyn Fn(&OwnedFrame) -> Answer + Send + Sync;

/// A minimal server, sequential as libvirtd's dispatch of one client is from the wire's point of
/// view: one frame is answered before the next is read. Defaults: PING gets PONG, other non-CALL
/// frames nothing; every CALL of any program is answered REPLY/OK with an empty body, except
/// CONNECT_GET_TYPE (remote 3: "Test"), CONNECT_GET_LIB_VERSION (admin 3: a hyper) and
/// CONNECT_SUPPORTS_FEATURE (remote 60: 1); the override comes first.
pub struct Mini {
    pub over: Box<Override>,
}

impl Mini {
    pub fn new(over: impl Fn(&OwnedFrame) -> Answer + Send + Sync + 'static) -> Self {
        Mini {
            over: Box::new(over),
        }
    }

    pub fn serve(&self, mut c: Conn) {
        while let Next::Frame(f) = c.next_frame() {
            let bytes = match (self.over)(&f) {
                Answer::After(wait, b) => {
                    std::thread::sleep(wait);
                    b
                }
                Answer::Twice(first, wait, b) => {
                    if !c.write(&first) {
                        break;
                    }
                    std::thread::sleep(wait);
                    b
                }
                Answer::Default => default_answer(&f),
            };
            if !bytes.is_empty() && !c.write(&bytes) {
                break;
            }
        }
        c.close();
    }
}

fn default_answer(f: &OwnedFrame) -> Vec<u8> {
    let h = *f.header();
    if !h.msg_type.is_call() {
        let ping = h.prog == KEEPALIVE_PROGRAM
            && h.msg_type == MessageType::Message
            && KeepaliveProc::from_raw(h.procedure) == KeepaliveProc::Ping;
        return if ping {
            KeepaliveProc::Pong.frame()
        } else {
            Vec::new()
        };
    }
    let mut body = Vec::new();
    if h.prog == virtwire_protocol::header::REMOTE_PROGRAM && h.procedure == 60 {
        // CONNECT_SUPPORTS_FEATURE: yes (keepalive included).
        Writer::new(&mut body).i32(1);
    }
    if h.procedure == 3 {
        if h.prog == virtwire_protocol::header::REMOTE_PROGRAM {
            Writer::new(&mut body)
                .string(b"Test", 256)
                .expect("a short string");
        } else {
            Writer::new(&mut body).u64(9_000_000);
        }
    }
    ok(&h, body)
}

/// REPLY/OK to `call` with `body`.
pub fn ok(call: &Header, body: Vec<u8>) -> Vec<u8> {
    FrameBuilder::new(call.reply_to(MessageStatus::Ok))
        .payload(body)
        .build_unchecked()
}

/// REPLY/ERROR to `call`: `code`, VIR_FROM_RPC, `message`.
pub fn error(call: &Header, code: i32, message: &str) -> Vec<u8> {
    let body = ErrorBody::new(code, FROM_RPC, message)
        .to_bytes(&Limits::default())
        .expect("a short error");
    FrameBuilder::new(call.reply_to(MessageStatus::Error))
        .payload(body)
        .build_unchecked()
}

/// A connector to the target with an admin endpoint beside it (another fake).
pub struct WithAdmin {
    pub target: Tcp,
    pub admin: SocketAddr,
}

struct AdminTcp(Tcp);

impl Connector for AdminTcp {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        self.0.connect(timeout)
    }
    fn describe(&self) -> String {
        format!("admin at {}", self.0.addr)
    }
    fn open_name(&self) -> Option<String> {
        None
    }
    fn program(&self) -> u32 {
        virtwire_protocol::header::ADMIN_PROGRAM
    }
}

impl Connector for WithAdmin {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        self.target.connect(timeout)
    }
    fn describe(&self) -> String {
        self.target.describe()
    }
    fn open_name(&self) -> Option<String> {
        self.target.open_name()
    }
    fn endpoint(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
        match which {
            Endpoint::Admin => Ok(Arc::new(AdminTcp(Tcp {
                addr: self.admin,
                send_buffer: None,
            }))),
            other => Err(Unavailable::Absent(format!("no {other} in this test"))),
        }
    }
}

/// Hooks for a "local" fake: what [`LocalServer`] says, nothing checked after cases.
pub struct LocalHooks {
    pub local: LocalServer,
}

impl LocalHooks {
    /// A local server with a scratch directory in `dir`, `max_client_requests`, and `log`.
    pub fn new(dir: PathBuf, max_client_requests: u32, log: Option<PathBuf>) -> Self {
        LocalHooks {
            local: LocalServer {
                scratch: dir,
                max_client_requests,
                keepalive: (5, 5),
                log,
            },
        }
    }
}

impl ServerHooks for LocalHooks {
    fn log_mark(&self) -> u64 {
        0
    }
    fn log_since(&self, _mark: u64) -> String {
        String::new()
    }
    fn after_case(&self) -> Option<ServerEvent> {
        None
    }
    fn local(&self) -> Option<LocalServer> {
        Some(self.local.clone())
    }
}
