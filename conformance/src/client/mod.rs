//! Client conformance (`virtwire check-client`): a scripted libvirt server that replays the server
//! side of a recorded session and changes one thing per case, and the client under test run once
//! per case against it, judged on how it ended (exit status, signal, hang) and on what it put on
//! the wire.
//!
//! - [`script`]: a recorded session (a trace) as the client's messages and the answers that followed;
//!   matching by type, program and procedure in order, serials rewritten to the client's.
//! - [`server`]: the scripted server (loopback TCP or a unix socket), serving each connection through
//!   a server-side [`Peer`](crate::wire::peer::Peer), and the [`Twist`](server::Twist)s it applies.
//! - [`process`]: the client as a process: stdin closed, bounded time, its process group killed at
//!   the deadline, the tail of its output kept.
//! - [`record`]: the session recorded on the fly: the client command run once through `virtwire
//!   record`'s proxy against a real server.
//! - [`crash`]: whether the client crashed, in any common runtime (signal, Go, Python, Rust, Java,
//!   sanitizers, the user's patterns), and the line that says so.
//! - [`cases`]: the client cases and their verdicts, as runner cases (run `--repeat` times; a
//!   verdict that differs between runs is flaky).
//!
//! It imports `runner`, `wire`, `trace` and `proxy`; never `target` (the composition root,
//! [`crate::suite`], starts the libvirtd a recording needs).

pub mod cases;
pub mod crash;
pub mod process;
pub mod record;
pub mod script;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

pub use script::Script;
pub use server::{Listen, UriForm};

use crate::runner::Connector;
use crate::wire::Judge;
use crate::wire::peer::Transport;

/// What every client case of a run shares.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The session the scripted server replays.
    pub script: Arc<Script>,
    /// The client command, with `{uri}` where the server's URI goes.
    pub command: Vec<String>,
    /// TCP or a unix socket.
    pub listen: Listen,
    /// The URI's driver and path.
    pub form: UriForm,
    /// How messages are judged (limits, schema).
    pub judge: Arc<Judge>,
    /// The client's exit status against the real server (0 for a given trace unless told).
    pub expected_exit: i32,
    /// What the client wrote on stderr against the real server (empty for a given trace).
    pub baseline_stderr: String,
    /// How many bytes it wrote to stdout against the real server (`None` for a given trace).
    pub baseline_stdout_bytes: Option<u64>,
}

/// The runner's view of a check-client run: there is no server to connect to (each case starts its
/// own scripted server); it describes the client command.
pub struct CommandConnector(pub String);

impl Connector for CommandConnector {
    fn connect(&self, _timeout: Duration) -> Result<Box<dyn Transport>, String> {
        Err("check-client cases start their own scripted server; they do not connect".into())
    }
    fn describe(&self) -> String {
        self.0.clone()
    }
    fn open_name(&self) -> Option<String> {
        None
    }
}
