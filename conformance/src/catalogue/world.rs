//! Private test-driver worlds. libvirt's test driver gives each connection to
//! `test:///ABSOLUTE/PATH.xml` a world of its own, read from that file on the server's machine, so a
//! case can have a world as large as it needs without touching the one other cases share. Only
//! possible when the server runs on this machine under the runner ([`LocalServer`]): the file is
//! written to its scratch directory.

use std::path::PathBuf;

use virtwire_protocol::header::REMOTE_PROGRAM;

use crate::runner::ctx::{connect_open_args, proc};
use crate::runner::{Ctx, LocalServer, Outcome};
use crate::wire::peer::Peer;

/// A world of `domains` running domains with `iothreads` IOThreads each. In libvirt 9.0 the test
/// driver's GET_ALL_DOMAIN_STATS fills the `state` and `iothread` groups, so its reply grows with
/// domains × IOThreads: measured against libvirtd 9.0.0, 2048 IOThreads per domain make 237,840
/// bytes per domain (237,844 from the tenth domain on: a longer name), so 141 such domains make a
/// 33,536,000-byte reply, the largest under the 33,554,436-byte frame limit, and 142 do not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct World {
    /// Running domains.
    pub domains: u32,
    /// IOThreads per domain.
    pub iothreads: u32,
}

impl World {
    /// The world's XML.
    pub fn xml(&self) -> String {
        let mut x = String::from("<node>\n");
        for i in 1..=self.domains {
            x.push_str(&format!(
                "<domain type='test'><name>vw{i}</name>\
                 <uuid>{i:08x}-7677-4000-8000-000000000000</uuid>\
                 <memory>65536</memory><vcpu>1</vcpu><iothreads>{}</iothreads>\
                 <os><type>hvm</type></os></domain>\n",
                self.iothreads
            ));
        }
        x.push_str("</node>\n");
        x
    }

    /// Write the world to `local`'s scratch directory as `NAME.xml` (once: cases running at the
    /// same time may share it; it is written under a temporary name and renamed) and return the
    /// name a CONNECT_OPEN gives it, `test:///ABSOLUTE/PATH.xml`.
    pub fn install(&self, local: &LocalServer, name: &str) -> Result<String, Outcome> {
        let path: PathBuf = local.scratch.join(format!("{name}.xml"));
        let uri = format!("test://{}", path.display());
        if !uri[7..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
        {
            return Err(Outcome::error(format!(
                "the scratch directory {} has characters a test:/// URI would need escaped",
                local.scratch.display()
            )));
        }
        if !path.exists() {
            let tmp = local.scratch.join(format!(
                "{name}.{}.{:?}.tmp",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&tmp, self.xml())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| Outcome::error(format!("cannot write {}: {e}", path.display())))?;
        }
        Ok(uri)
    }
}

/// The server this case runs against, if the runner started it on this machine; else the case is
/// `unsupported`, saying `why` it needs that.
pub fn local(ctx: &Ctx<'_>, why: &str) -> Result<LocalServer, Outcome> {
    ctx.env().local.clone().ok_or_else(|| {
        Outcome::unsupported(format!(
            "{why}: only possible against a server virtwire started on this machine (run without a target URI)"
        ))
    })
}

/// A new connection opened on `uri` (a private world).
pub fn open_world(ctx: &mut Ctx<'_>, uri: &str) -> Result<Peer, Outcome> {
    let mut peer = ctx.connect()?;
    let s = ctx.call(
        &mut peer,
        REMOTE_PROGRAM,
        proc::CONNECT_OPEN,
        &connect_open_args(Some(uri), 0),
    )?;
    ctx.expect_ok(&mut peer, s).map_err(|mut o| {
        o.expected = format!("CONNECT_OPEN {uri} answered REPLY/OK");
        o
    })?;
    Ok(peer)
}

/// The big world: 20 domains × 16,384 IOThreads, a GET_ALL_DOMAIN_STATS reply well over 32 MiB
/// (about 38 MB) that libvirtd 9.0 spends about a second building.
pub const BIG: World = World {
    domains: 20,
    iothreads: 16384,
};

/// `remote_connect_get_all_domain_stats_args` for every domain: `{ doms<> = []; stats = 0; flags = 0 }`.
pub fn all_stats_args() -> Vec<u8> {
    [0u32, 0, 0].iter().flat_map(|w| w.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_has_its_domains_and_iothreads_and_is_installed_once() {
        let w = World {
            domains: 3,
            iothreads: 7,
        };
        let xml = w.xml();
        assert_eq!(xml.matches("<domain type='test'>").count(), 3);
        assert_eq!(xml.matches("<iothreads>7</iothreads>").count(), 3);
        assert!(xml.contains("<name>vw3</name>") && xml.contains("00000003-7677-4000-8000-"));
        let dir = tempfile::tempdir().unwrap();
        let local = LocalServer {
            scratch: dir.path().to_owned(),
            max_client_requests: 5,
            keepalive: (1, 2),
            log: None,
        };
        let uri = w.install(&local, "small").unwrap();
        let path = dir.path().join("small.xml");
        assert_eq!(uri, format!("test://{}", path.display()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), xml);
        // Installed once: a second install keeps the file (cases share it).
        std::fs::write(&path, "kept").unwrap();
        assert_eq!(w.install(&local, "small").unwrap(), uri);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
        let odd = LocalServer {
            scratch: dir.path().join("a b"),
            ..local
        };
        assert_eq!(
            w.install(&odd, "x").unwrap_err().verdict,
            crate::runner::Verdict::Error
        );
    }
}
