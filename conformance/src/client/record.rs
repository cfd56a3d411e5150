//! The session a check-client run replays, recorded on the fly: the client command run once through
//! `virtwire record`'s proxy ([`crate::proxy`]) against a real server, and its connection imported
//! as a trace (the wire layer decodes, [`crate::trace::import`] writes the steps).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::UriForm;
use super::process::{self, ClientRun, Ending};
use crate::proxy::{Addr, Config, Event, Proxy};
use crate::trace::Trace;
use crate::wire::Decoder;
use crate::wire::frames::chunk_connection;

/// A recording: the trace of the client's connection and how the client ended.
#[derive(Debug)]
pub struct Recording {
    /// The connection as a trace (the one that carried the most bytes, when there were several).
    pub trace: Trace,
    /// The client's run against the real server.
    pub run: ClientRun,
}

/// Run `command` once against the server at `upstream` through a recording proxy on a free
/// loopback port, within `timeout`.
pub fn record(
    command: &[String],
    upstream: SocketAddr,
    form: &UriForm,
    decoder: &Decoder,
    timeout: Duration,
) -> Result<Recording, String> {
    let cfg = Config::new(
        Addr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
        Addr::Tcp(upstream),
    );
    let (proxy, events) =
        Proxy::start(cfg).map_err(|e| format!("the recording proxy cannot listen: {e}"))?;
    let uri = format!("{}+tcp://{}{}", form.driver, proxy.local_addr(), form.path);
    let argv = process::substitute(command, &uri);
    let run = process::run(&argv, Instant::now() + timeout);
    proxy.stop();
    let mut conns = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while let Ok(ev) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
        if let Event::Closed(c) = ev {
            conns.push(c);
        }
    }
    let _ = proxy.wait();
    match &run.ending {
        Ending::Exited(_) => {}
        other => {
            return Err(format!(
                "the client did not finish against the real server ({other}): {}; stderr: {}",
                run.command,
                run.stderr.trim()
            ));
        }
    }
    let Some(c) = conns.iter().max_by_key(|c| c.c2s.bytes + c.s2c.bytes) else {
        return Err(format!(
            "the client never connected to {uri} ({}); does the command contain {{uri}}? stderr: {}",
            run.ending,
            run.stderr.trim()
        ));
    };
    let source = format!("virtwire check-client recording of {}", run.command);
    let cc = chunk_connection(decoder, &source, c.id, c.client, c.server, &c.chunks)
        .map_err(|e| format!("decoding the recording: {e}"))?;
    let imported = crate::trace::import::from_connection(&source, &cc);
    if let Some(p) = imported.problems.first() {
        return Err(format!("the recording is incomplete: {p}"));
    }
    let mut trace = imported.trace;
    trace.name = "recorded".into();
    Ok(Recording { trace, run })
}
