//! Between the command line and `target/`: the target options every subcommand that talks to a
//! server shares, and turning them into the runner's [`Connector`] (plus, for a self-started
//! libvirtd, its hooks and the guard that stops it).

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use virtwire_protocol::schema::Schema;

use crate::runner::{Connector, ServerHooks};
use crate::wire::Judge;
use crate::wire::peer::Transport;

/// Options about reaching the target.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Longest wait for a connection, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = super::check_secs)]
    pub connect_timeout: Duration,
    /// The libvirtd binary to start when no TARGET is given (any build, e.g. a libvirt tree's
    /// build/src/libvirtd).
    #[arg(long, value_name = "PATH")]
    pub libvirtd: Option<PathBuf>,
    /// Leave the self-started libvirtd running at the end (its PID and how to stop it are printed).
    #[arg(long)]
    pub keep_libvirtd: bool,
    /// A test-driver world (XML) for the self-started libvirtd.
    #[arg(long, value_name = "FILE.xml")]
    pub world: Option<PathBuf>,
    /// TLS: the CA certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: the client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// TLS: the client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// A target ready for the runner.
pub struct Opened {
    /// How to connect.
    pub connector: Box<dyn Connector>,
    /// Hooks into a server virtwire controls.
    pub hooks: Option<Arc<dyn ServerHooks>>,
    /// Dropped at the end: stops a self-started server.
    pub guard: Box<dyn Any>,
    /// One line saying what the target is.
    pub banner: String,
}

struct Tcp {
    addr: String,
    uri: String,
    name: String,
}

impl Connector for Tcp {
    fn connect(&self, timeout: Duration) -> Result<Box<dyn Transport>, String> {
        use std::net::ToSocketAddrs;
        let mut last = format!("{} resolves to no address", self.addr);
        for a in self.addr.to_socket_addrs().map_err(|e| e.to_string())? {
            match std::net::TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => return Ok(Box::new(s)),
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        Err(last)
    }
    fn describe(&self) -> String {
        self.uri.clone()
    }
    fn open_name(&self) -> Option<String> {
        Some(self.name.clone())
    }
}

/// Open the target: `uri`, or a self-started libvirtd when `None`.
pub fn open(uri: Option<&str>, _opts: &TargetArgs, _judge: &Arc<Judge>) -> Result<Opened, String> {
    let uri = uri.ok_or("a self-started libvirtd is not wired in yet: give a test+tcp:// URI")?;
    let rest = uri
        .split_once("+tcp://")
        .ok_or_else(|| format!("{uri}: only DRIVER+tcp://HOST:PORT/PATH for now"))?;
    let (addr, path) = rest.1.split_once('/').unwrap_or((rest.1, ""));
    let name = format!("{}:///{}", rest.0, path);
    Ok(Opened {
        connector: Box::new(Tcp {
            addr: addr.to_string(),
            uri: uri.to_string(),
            name,
        }),
        hooks: None,
        guard: Box::new(()),
        banner: format!("target {uri}"),
    })
}

/// Load libvirt's protocol schema from `dir` or the default places (protocol_files): a conformance
/// run needs it to judge reply bodies.
pub fn schema(dir: Option<&Path>) -> Result<Schema, String> {
    crate::protocol_files::Search::standard(dir)
        .load()
        .map(|(schema, _)| schema)
        .map_err(|e| e.to_string())
}
