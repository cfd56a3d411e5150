//! A fake libvirtd for the `cve/` cases (tests/cve.rs): a test-driver look-alike whose world has one
//! running domain, `test`, that answers each CVE case's calls either the way a daemon with the fix
//! does (the fix's own error code and message, as libvirt 9.0.0-4+deb12u2 and 11.3.0 answer them)
//! or the way an unfixed one can ([`Unfixed`]): an answer from the wrong place ("Domain not found",
//! another error), REPLY/OK, or a close (the daemon died). Built on [`FakeServer`] and [`Conn`]
//! (bounded in time and bytes, stopped when dropped).
#![allow(dead_code)] // each test binary uses its own part of the kit

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{
    Compat, ErrorBody, FrameBuilder, Header, Limits, MessageStatus, OwnedFrame, Reader, Writer,
};

use crate::support::{Conn, FakeServer, Next};

/// How an unfixed daemon answers the calls that reach the vulnerable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfixed {
    /// "Domain not found" (what the old cases' nameless domain got, fixed or not).
    DomainNotFound,
    /// An error other than the fix's (code 1 "internal error: something else").
    OtherError,
    /// REPLY/OK (an empty body; one interface name for CONNECT_LIST_INTERFACES).
    Ok,
    /// The connection closes without an answer (the daemon died).
    Close,
}

/// The fake's settings.
#[derive(Clone, Copy, Debug)]
pub struct CveFake {
    /// `None`: every fix is in; else how the vulnerable calls are answered.
    pub unfixed: Option<Unfixed>,
    /// CONNECT_GET_TYPE's answer ("TEST" as libvirt's test driver, "QEMU" for a driver whose
    /// interfaces come from a host backend).
    pub driver: &'static str,
    /// Active host interfaces (CONNECT_NUM_OF_INTERFACES).
    pub interfaces: i32,
}

impl CveFake {
    /// A daemon with every fix, on the test driver.
    pub fn fixed() -> Self {
        CveFake {
            unfixed: None,
            driver: "TEST",
            interfaces: 1,
        }
    }

    /// Start serving.
    pub fn start(self) -> FakeServer {
        FakeServer::start(move |c| self.serve(c))
    }

    fn serve(&self, mut c: Conn) {
        while let Next::Frame(f) = c.next_frame() {
            match self.answer(&f) {
                Some(bytes) => {
                    if !c.write(&bytes) {
                        return;
                    }
                }
                None => {
                    c.close();
                    return;
                }
            }
        }
    }

    /// The answer to one frame; `None` closes the connection.
    fn answer(&self, f: &OwnedFrame) -> Option<Vec<u8>> {
        let h = *f.header();
        if h.prog != REMOTE_PROGRAM {
            return Some(error(&h, 39, "Cannot find program"));
        }
        let p = h.procedure;
        let fixed = |code: i32, msg: &str| Some(error(&h, code, msg));
        match p {
            // CONNECT_OPEN, CONNECT_GET_TYPE, CONNECT_LIST_ALL_DOMAINS: the world.
            1 => return Some(ok(&h, Vec::new())),
            3 => {
                let mut b = Vec::new();
                Writer::new(&mut b)
                    .string(self.driver.as_bytes(), 256)
                    .expect("short");
                return Some(ok(&h, b));
            }
            273 => return Some(ok(&h, one_domain())),
            // CONNECT_NUM_OF_INTERFACES.
            126 => return Some(ok(&h, self.interfaces.to_be_bytes().to_vec())),
            // DOMAIN_MIGRATE_PREPARE3_PARAMS: the XDR bound (CVE-2013-4292), fixed in every fake.
            303 => return fixed(39, "Unable to decode message payload"),
            // NODE_GET_FREE_PAGES over REMOTE_NODE_MAX_CELLS without wrapping: refused by every
            // daemon (the check is old; only the wrapped product gets past an unfixed one).
            340 if !wraps(f.payload()) => {
                return fixed(
                    1,
                    "internal error: the result won't fit into REMOTE_NODE_MAX_CELLS",
                );
            }
            _ => {}
        }
        if let Some(u) = self.unfixed {
            return match u {
                Unfixed::DomainNotFound => fixed(
                    42,
                    "Domain not found: no domain with matching uuid '00000000-0000-0000-0000-000000000000'",
                ),
                Unfixed::OtherError => fixed(1, "internal error: something else"),
                Unfixed::Ok if p == 127 => {
                    let mut b = Vec::new();
                    let mut w = Writer::new(&mut b);
                    w.u32(1);
                    w.string(b"eth0", 256).expect("short");
                    Some(ok(&h, b))
                }
                Unfixed::Ok => Some(ok(&h, Vec::new())),
                Unfixed::Close => None,
            };
        }
        match p {
            20 => fixed(1, "internal error: maxinfo * maplen > REMOTE_CPUMAPS_MAX"),
            21 => fixed(39, "maxnames must be non-negative"),
            58 => fixed(
                8,
                "params in virDomainSetSchedulerParameters must not be NULL",
            ),
            197 => fixed(8, "params in virDomainSetMemoryParameters must not be NULL"),
            288 => fixed(8, "params in virNodeSetMemoryParameters must not be NULL"),
            127 => Some(ok(&h, 0u32.to_be_bytes().to_vec())),
            159 => fixed(
                1,
                "internal error: maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX",
            ),
            198 | 227 | 289 => fixed(1, "internal error: nparams must be non-negative"),
            340 => fixed(
                1,
                "internal error: the result won't fit into REMOTE_NODE_MAX_CELLS",
            ),
            _ => fixed(39, &format!("unknown procedure: {p}")),
        }
    }
}

/// True when NODE_GET_FREE_PAGES's `pages_len × cellCount` wraps in 32 bits (an unfixed daemon's
/// REMOTE_NODE_MAX_CELLS check then sees the small wrapped product).
fn wraps(args: &[u8]) -> bool {
    let mut r = Reader::new(args, Compat::Libvirt);
    let Ok(n) = r.u32() else { return false };
    for _ in 0..n.min(1024) {
        if r.u32().is_err() {
            return false;
        }
    }
    let (Ok(_start), Ok(cells)) = (r.i32(), r.u32()) else {
        return false;
    };
    u64::from(n) * u64::from(cells) > u64::from(u32::MAX)
}

/// `remote_connect_list_all_domains_ret` with the running domain `test` (id 1).
fn one_domain() -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = Writer::new(&mut b);
    w.u32(1);
    w.string(b"test", 256).expect("short");
    w.opaque_fixed(&[0x6c; 16]);
    w.i32(1);
    w.u32(1);
    b
}

fn ok(call: &Header, body: Vec<u8>) -> Vec<u8> {
    FrameBuilder::new(call.reply_to(MessageStatus::Ok))
        .payload(body)
        .build_unchecked()
}

fn error(call: &Header, code: i32, message: &str) -> Vec<u8> {
    let body = ErrorBody::new(code, 7, message)
        .to_bytes(&Limits::default())
        .expect("a short error");
    FrameBuilder::new(call.reply_to(MessageStatus::Error))
        .payload(body)
        .build_unchecked()
}
