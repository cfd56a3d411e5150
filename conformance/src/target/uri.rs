//! libvirt connection URIs, as users write them, and what libvirt's client makes of them.
//!
//! Facts mirrored from libvirt (src/remote/remote_sockets.c `remoteSplitURIScheme`,
//! `remoteGetUNIXSocket`, `remoteGetURIDaemonInfo`; src/remote/remote_driver.c `doRemoteOpen`,
//! `remoteConnectFormatURI`; src/libvirt-admin.c `getSocketPath`; docs/uri.rst, docs/remote.rst):
//!
//! - `DRIVER[+TRANSPORT]://[USER@][HOST][:PORT]/PATH[?PARAMS][#FRAGMENT]`. Transports are
//!   tls, unix, ssh, ext, tcp, libssh2, libssh; virtwire speaks tcp, tls and unix.
//! - No transport: TLS when the URI names a host, the local unix socket when it does not.
//! - Ports: `LIBVIRTD_TCP_PORT` 16509, `LIBVIRTD_TLS_PORT` 16514; the host defaults to
//!   `localhost`. A unix URI must not name a host.
//! - Unix sockets: `?socket=` wins; else `/var/run/libvirt/libvirt-sock` (`libvirt-sock-ro` for
//!   read-only use) in legacy mode, `/var/run/libvirt/virt<driver>d-sock` in direct mode
//!   (`?mode=`; auto picks direct when that socket exists). Session daemons (path `/session`, or a
//!   `test+…` scheme when not root) use `$XDG_RUNTIME_DIR/libvirt/…-sock`.
//! - The name sent in CONNECT_OPEN is the URI without transport, user, host and port, and without
//!   the parameters the client consumes (`name socket auth sshauth netcat keyfile pkipath
//!   known_hosts known_hosts_verify tls_priority mode proxy command no_sanity no_verify no_tty
//!   authfile`, matched case-insensitively); the others are passed on, each as `name=` plus the
//!   value escaped like glib's `g_string_append_uri_escaped`. `?name=` overrides it; a `remote`
//!   scheme sends the empty name (the server picks its default).
//! - Admin URIs (`libvirtd:///system`, `virtqemud:///system`, …) address the admin program on the
//!   daemon's admin socket: `/run/libvirt/libvirt-admin-sock` (legacy) or
//!   `/run/libvirt/<scheme>-admin-sock`, `$XDG_RUNTIME_DIR/libvirt/…` for `/session`; the only
//!   parameter libvirt accepts is `socket`, and there is no remote admin access.
//! - virtwire's own parameter `readonly` (`?readonly` or `?readonly=1`) picks the read-only socket;
//!   it is not passed on to the server.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::TargetError;

/// libvirtd's plain TCP port (`LIBVIRTD_TCP_PORT`).
pub const DEFAULT_TCP_PORT: u16 = virtwire_protocol::ports::TCP;
/// libvirtd's TLS port (`LIBVIRTD_TLS_PORT`).
pub const DEFAULT_TLS_PORT: u16 = virtwire_protocol::ports::TLS;
/// The system daemon's sockets live here (libvirt: `LOCALSTATEDIR "/run/libvirt"`).
pub const SYSTEM_SOCKET_DIR: &str = "/var/run/libvirt";
/// The system daemon's admin sockets live here (libvirt-admin.c: `RUNSTATEDIR "/libvirt"`).
pub const SYSTEM_ADMIN_SOCKET_DIR: &str = "/run/libvirt";

/// Transports virtwire speaks.
pub const SUPPORTED_TRANSPORTS: &str = "tcp, tls and unix";

/// How the bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP (`+tcp`).
    Tcp,
    /// TLS over TCP (`+tls`, or no transport with a host).
    Tls,
    /// A unix stream socket (`+unix`, or no transport and no host).
    Unix,
}

impl Transport {
    /// The name as written after `+` in a URI.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Unix => "unix",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// libvirt's `mode` parameter: which daemon's socket a unix URI means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SocketMode {
    /// Direct when the per-driver daemon's socket exists, else legacy (the default).
    #[default]
    Auto,
    /// The monolithic libvirtd's `libvirt-sock`.
    Legacy,
    /// The per-driver daemon's socket, e.g. `virtqemud-sock`.
    Direct,
}

/// One query parameter, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Name as written (percent-decoded).
    pub name: String,
    /// Value (percent-decoded); empty when written without `=`.
    pub value: String,
    /// Consumed by the client (libvirt's list, or virtwire's `readonly`): not sent to the server.
    pub consumed: bool,
}

/// Parameters libvirt's remote driver consumes rather than passing on to the server.
const CONSUMED: [&str; 17] = [
    "name",
    "command",
    "socket",
    "auth",
    "sshauth",
    "netcat",
    "keyfile",
    "pkipath",
    "known_hosts",
    "known_hosts_verify",
    "tls_priority",
    "mode",
    "proxy",
    "no_sanity",
    "no_verify",
    "no_tty",
    "authfile",
];

/// virtwire's own parameter: use the read-only socket.
const READONLY: &str = "readonly";

/// A parsed libvirt connection URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUri {
    text: String,
    driver: String,
    transport: Transport,
    explicit_transport: bool,
    user: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    /// Path as written (still percent-escaped), e.g. `/default`.
    path: String,
    params: Vec<Param>,
    fragment: Option<String>,
    admin: bool,
}

/// What decides the default unix socket path: who we are and the runtime directory.
#[derive(Clone, Debug)]
pub(crate) struct LocalEnv {
    /// Running as root (euid 0).
    pub root: bool,
    /// `virGetUserRuntimeDirectory()`: `$XDG_RUNTIME_DIR/libvirt`, else `~/.cache/libvirt`.
    pub user_runtime_dir: PathBuf,
}

impl LocalEnv {
    pub(crate) fn from_process() -> LocalEnv {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/"))
                    .join(".cache")
            });
        LocalEnv {
            root: nix::unistd::geteuid().is_root(),
            user_runtime_dir: base.join("libvirt"),
        }
    }
}

impl TargetUri {
    /// Parse a URI as libvirt users write it.
    pub fn parse(text: &str) -> Result<TargetUri, TargetError> {
        Parser { text }.parse()
    }

    /// The URI as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The driver part of the scheme: `test`, `qemu`, `remote`, `libvirtd`…
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// How to reach the server.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the transport was written (`+tcp`) rather than implied.
    pub fn transport_is_explicit(&self) -> bool {
        self.explicit_transport
    }

    /// The user part (`user@`), percent-decoded.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The host as written (IPv6 without brackets), if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The host to connect to: as written, else `localhost` (libvirt's default).
    pub fn connect_host(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    /// The port as written.
    pub fn explicit_port(&self) -> Option<u16> {
        self.port
    }

    /// The TCP port to connect to: as written, else 16509 for tcp and 16514 for tls; none for unix.
    pub fn port(&self) -> Option<u16> {
        match self.transport {
            Transport::Tcp => Some(self.port.unwrap_or(DEFAULT_TCP_PORT)),
            Transport::Tls => Some(self.port.unwrap_or(DEFAULT_TLS_PORT)),
            Transport::Unix => None,
        }
    }

    /// The path as written (percent-escaped), e.g. `/default`, `/system`, `/abs/world.xml`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The fragment (after `#`), as written.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// Every query parameter in order, decoded.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The last value of a parameter (names compare case-insensitively, as libvirt does).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }

    /// Whether the URI addresses the admin program (`libvirtd:///system`, `virtqemud:///system`).
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// virtwire's `?readonly`: use the read-only socket (and open read-only).
    pub fn readonly(&self) -> bool {
        self.param(READONLY).is_some_and(|v| v != "0")
    }

    /// `?no_verify=N`, N ≠ 0: do not check the server's certificate (libvirt's meaning).
    pub fn no_verify(&self) -> bool {
        self.param("no_verify").is_some_and(|v| v.trim() != "0")
    }

    /// `?pkipath=DIR`: TLS credentials in DIR (cacert.pem, clientcert.pem, clientkey.pem).
    pub fn pkipath(&self) -> Option<&Path> {
        self.param("pkipath").map(Path::new)
    }

    /// `?mode=`.
    pub fn mode(&self) -> SocketMode {
        match self.param("mode").map(str::to_ascii_lowercase).as_deref() {
            Some("legacy") => SocketMode::Legacy,
            Some("direct") => SocketMode::Direct,
            _ => SocketMode::Auto,
        }
    }

    /// The unix socket to connect to (unix transport only): `?socket=`, else libvirt's default
    /// for this URI, this user and `?readonly`.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.socket_path_in(&LocalEnv::from_process(), &|p: &Path| p.exists())
    }

    pub(crate) fn socket_path_in(
        &self,
        env: &LocalEnv,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Option<PathBuf> {
        if self.transport != Transport::Unix {
            return None;
        }
        if let Some(s) = self.param("socket") {
            return Some(PathBuf::from(s));
        }
        if self.admin {
            let base = if self.driver == "libvirtd" {
                "libvirt-admin-sock".to_owned()
            } else {
                format!("{}-admin-sock", self.driver)
            };
            return Some(if self.path == "/session" {
                env.user_runtime_dir.join(base)
            } else {
                Path::new(SYSTEM_ADMIN_SOCKET_DIR).join(base)
            });
        }
        let user = (self.path == "/session" || (self.explicit_transport && self.driver == "test"))
            && !env.root;
        let suffix = if user {
            "sock"
        } else if self.readonly() {
            "sock-ro"
        } else {
            "sock"
        };
        let sock = |prefix: &str| {
            if user {
                env.user_runtime_dir.join(format!("{prefix}-{suffix}"))
            } else {
                Path::new(SYSTEM_SOCKET_DIR).join(format!("{prefix}-{suffix}"))
            }
        };
        let legacy = sock("libvirt");
        let direct = sock(&format!("virt{}d", self.driver));
        Some(match self.mode() {
            SocketMode::Legacy => legacy,
            SocketMode::Direct => direct,
            SocketMode::Auto if exists(&direct) => direct,
            SocketMode::Auto => legacy,
        })
    }

    /// The name libvirt's client sends in CONNECT_OPEN for this URI (remote program), or `None`
    /// for an admin URI (admin's CONNECT_OPEN carries only flags).
    pub fn open_name(&self) -> Option<String> {
        if self.admin {
            return None;
        }
        if let Some(name) = self.param("name") {
            return Some(name.to_owned());
        }
        if self.driver == "remote" {
            return Some(String::new());
        }
        let mut s = format!("{}://{}", self.driver, self.path);
        let mut first = true;
        for p in self.params.iter().filter(|p| !p.consumed) {
            s.push(if first { '?' } else { '&' });
            first = false;
            s.push_str(&p.name);
            s.push('=');
            s.push_str(&escape_query_value(&p.value));
        }
        if let Some(f) = &self.fragment {
            s.push('#');
            s.push_str(f);
        }
        Some(s)
    }

    /// `host:port` (IPv6 in brackets) for TCP and TLS, the socket path for unix.
    pub fn address(&self) -> String {
        match self.transport {
            Transport::Unix => self
                .socket_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            _ => host_port(self.connect_host(), self.port().unwrap_or(0)),
        }
    }
}

/// `host:port`, bracketing IPv6 literals.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl fmt::Display for TargetUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for TargetUri {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetUri::parse(s)
    }
}

/// glib's `g_string_append_uri_escaped(s, v, NULL, FALSE)`: unreserved bytes stay, others `%XX`.
pub(crate) fn escape_query_value(v: &str) -> String {
    escape(v, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Escape a filesystem path for a URI path or query value: unreserved bytes and `/` stay.
pub fn escape_path(p: &str) -> String {
    escape(p, |b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
}

fn escape(v: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(v.len());
    for &b in v.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Parser<'a> {
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> TargetError {
        TargetError::Uri {
            uri: self.text.to_owned(),
            at,
            message: message.into(),
        }
    }

    /// Percent-decode `s`, which starts at byte `at` of the URI.
    fn decode(&self, s: &str, at: usize) -> Result<String, TargetError> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) if s.as_bytes()[i + 1].is_ascii_hexdigit() => {
                        out.push(v);
                        i += 3;
                    }
                    _ => return Err(self.err(at + i, "'%' must be followed by two hex digits")),
                }
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out)
            .map_err(|_| self.err(at, "percent-escapes here do not decode to UTF-8"))
    }

    fn parse(&self) -> Result<TargetUri, TargetError> {
        let s = self.text;
        if s.is_empty() {
            return Err(self.err(0, "empty; write e.g. test+tcp://127.0.0.1:16509/default"));
        }
        if let Some(i) = s.find(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(self.err(i, "whitespace or control character in the URI"));
        }

        // scheme
        let Some(colon) = s.find(':') else {
            return Err(self.err(
                0,
                "no scheme: a libvirt URI starts with DRIVER[+TRANSPORT]://, e.g. \
                 test+tcp://127.0.0.1:16509/default (libvirt.conf URI aliases are not supported)",
            ));
        };
        let scheme = &s[..colon];
        if scheme.is_empty() || !scheme.as_bytes()[0].is_ascii_alphabetic() {
            return Err(self.err(0, "the scheme must start with a letter (e.g. qemu, test)"));
        }
        if let Some(i) = scheme
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
        {
            return Err(self.err(
                i,
                "not allowed in a scheme (letters, digits, '+', '-', '.')",
            ));
        }
        let (driver, transport_text) = match scheme.find('+') {
            Some(p) => (&scheme[..p], Some((&scheme[p + 1..], p + 1))),
            None => (scheme, None),
        };

        let after = colon + 1;
        if !s[after..].starts_with("//") {
            return Err(self.err(
                after,
                format!(
                    "expected \"//\" after \"{scheme}:\" (e.g. {scheme}:///system or \
                     {scheme}://HOST/system)"
                ),
            ));
        }

        // split authority, path, query, fragment
        let auth_start = after + 2;
        let auth_end = s[auth_start..]
            .find(['/', '?', '#'])
            .map_or(s.len(), |i| auth_start + i);
        let authority = &s[auth_start..auth_end];
        let path_end = s[auth_end..]
            .find(['?', '#'])
            .map_or(s.len(), |i| auth_end + i);
        let path = &s[auth_end..path_end];
        let (query, query_start, fragment) = {
            let rest = &s[path_end..];
            if let Some(q) = rest.strip_prefix('?') {
                match q.find('#') {
                    Some(h) => (Some(&q[..h]), path_end + 1, Some(&q[h + 1..])),
                    None => (Some(q), path_end + 1, None),
                }
            } else if let Some(f) = rest.strip_prefix('#') {
                (None, path_end, Some(f))
            } else {
                (None, path_end, None)
            }
        };
        self.decode(path, auth_end)?;

        // authority: [user@]host[:port]
        let (user, hostport, hp_start) = match authority.rfind('@') {
            Some(at) => (
                Some(self.decode(&authority[..at], auth_start)?),
                &authority[at + 1..],
                auth_start + at + 1,
            ),
            None => (None, authority, auth_start),
        };
        let (host, port_text, port_at) = if let Some(v6) = hostport.strip_prefix('[') {
            let Some(close) = v6.find(']') else {
                return Err(self.err(hp_start, "'[' opens an IPv6 address but no ']' closes it"));
            };
            let addr = &v6[..close];
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(self.err(hp_start + 1, format!("\"{addr}\" is not an IPv6 address")));
            }
            let rest = &v6[close + 1..];
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p),
                None if rest.is_empty() => None,
                None => {
                    return Err(self.err(hp_start + close + 2, "after ']' only ':PORT' may follow"));
                }
            };
            (Some(addr.to_owned()), port, hp_start + close + 3)
        } else {
            let (h, p) = match hostport.find(':') {
                Some(c) => (&hostport[..c], Some(&hostport[c + 1..])),
                None => (hostport, None),
            };
            if let Some(i) = h
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)))
            {
                return Err(self.err(hp_start + i, "not allowed in a host name"));
            }
            let h = self.decode(h, hp_start)?;
            (
                (!h.is_empty()).then_some(h),
                p,
                hp_start + hostport.find(':').map_or(0, |c| c + 1),
            )
        };
        let port = match port_text {
            None | Some("") => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) => return Err(self.err(port_at, "port 0; ports are 1 to 65535")),
                Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => {
                    return Err(self.err(port_at, format!("\"{p}\" is not a port (1 to 65535)")));
                }
            },
        };

        // transport
        let admin = driver == "libvirtd"
            || (driver.len() > 5 && driver.starts_with("virt") && driver.ends_with('d'));
        let (transport, explicit) = match transport_text {
            None if host.is_some() => (Transport::Tls, false),
            None => (Transport::Unix, false),
            Some((t, at)) => {
                let lower = t.to_ascii_lowercase();
                let tr = match lower.as_str() {
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    "unix" => Transport::Unix,
                    "ssh" | "libssh" | "libssh2" | "ext" => {
                        return Err(self.err(
                            at,
                            format!(
                                "transport \"{t}\" is not supported: virtwire speaks \
                                 {SUPPORTED_TRANSPORTS}; tunnel ssh yourself (e.g. ssh -N -L \
                                 127.0.0.1:16509:/var/run/libvirt/libvirt-sock HOST) and use \
                                 {driver}+tcp://127.0.0.1:16509{path}"
                            ),
                        ));
                    }
                    "" => return Err(self.err(at, "empty transport after '+'")),
                    _ => {
                        return Err(self.err(
                            at,
                            format!(
                                "unknown transport \"{t}\" (libvirt knows tls, unix, ssh, ext, \
                                 tcp, libssh2, libssh; virtwire speaks {SUPPORTED_TRANSPORTS})"
                            ),
                        ));
                    }
                };
                (tr, true)
            }
        };
        if driver.is_empty() {
            return Err(self.err(0, "empty driver before '+' (e.g. qemu+tcp, test+tcp)"));
        }
        if transport == Transport::Unix
            && let Some(h) = &host
        {
            return Err(self.err(
                hp_start,
                format!(
                    "a unix socket URI cannot name a host (\"{h}\"): drop the host, or use \
                     +tcp or +tls to reach it"
                ),
            ));
        }

        // query
        let mut params = Vec::new();
        if let Some(q) = query {
            let mut at = query_start;
            for part in q.split(['&', ';']) {
                if !part.is_empty() {
                    let (n, v, v_at) = match part.find('=') {
                        Some(e) => (&part[..e], &part[e + 1..], at + e + 1),
                        None => (part, "", at + part.len()),
                    };
                    let name = self.decode(n, at)?;
                    let value = self.decode(v, v_at)?;
                    if name.is_empty() {
                        return Err(self.err(at, "parameter without a name"));
                    }
                    let lower = name.to_ascii_lowercase();
                    if let Some(problem) = param_problem(&lower, &name, &value) {
                        return Err(self.err(v_at, problem));
                    }
                    if admin && lower != "socket" {
                        return Err(self.err(
                            at,
                            format!(
                                "unknown parameter \"{name}\" for an admin URI (libvirt's admin \
                                 client accepts only socket)"
                            ),
                        ));
                    }
                    let consumed = lower == READONLY || CONSUMED.contains(&lower.as_str());
                    params.push(Param {
                        name,
                        value,
                        consumed,
                    });
                }
                at += part.len() + 1;
            }
        }

        if admin {
            if transport != Transport::Unix {
                let at = transport_text.map_or(hp_start, |(_, a)| a);
                return Err(self.err(
                    at,
                    "the admin program is served only on the daemon's admin unix socket \
                     (e.g. libvirtd:///system?socket=/path/libvirt-admin-sock)",
                ));
            }
            let has_socket = params.iter().any(|p| p.name.eq_ignore_ascii_case("socket"));
            if !has_socket && path != "/system" && path != "/session" {
                return Err(self.err(
                    auth_end,
                    format!(
                        "admin URI path \"{path}\": use /system or /session, or give ?socket=PATH"
                    ),
                ));
            }
        }

        Ok(TargetUri {
            text: s.to_owned(),
            driver: driver.to_owned(),
            transport,
            explicit_transport: explicit,
            user,
            host,
            port,
            path: path.to_owned(),
            params,
            fragment: fragment.map(str::to_owned),
            admin,
        })
    }
}

/// What is wrong with a parameter's value, for the parameters whose values are checked.
fn param_problem(lower: &str, name: &str, value: &str) -> Option<String> {
    match lower {
        "no_verify" | "no_sanity" | "no_tty" if value.trim().parse::<i64>().is_err() => Some(
            format!("{name} takes a number (e.g. {name}=1), not \"{value}\""),
        ),
        "mode" if !["auto", "legacy", "direct"].contains(&value.to_ascii_lowercase().as_str()) => {
            Some(format!("unknown mode \"{value}\" (auto, legacy or direct)"))
        }
        "socket" | "pkipath" if value.is_empty() => Some(format!("{name} needs a path")),
        READONLY if !["", "0", "1"].contains(&value) => {
            Some("readonly is a flag: ?readonly or ?readonly=1 (or 0)".to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TargetUri {
        TargetUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (usize, String) {
        match TargetUri::parse(s) {
            Err(TargetError::Uri { at, message, .. }) => (at, message),
            other => panic!("{s}: expected a URI error, got {other:?}"),
        }
    }

    const ROOT: LocalEnv = LocalEnv {
        root: true,
        user_runtime_dir: PathBuf::new(),
    };

    fn sock(u: &TargetUri) -> PathBuf {
        u.socket_path_in(&ROOT, &|_| false).unwrap()
    }

    #[test]
    fn tcp_with_port() {
        let u = p("test+tcp://127.0.0.1:16600/default");
        assert_eq!(u.driver(), "test");
        assert_eq!(u.transport(), Transport::Tcp);
        assert_eq!(u.host(), Some("127.0.0.1"));
        assert_eq!(u.port(), Some(16600));
        assert_eq!(u.open_name().as_deref(), Some("test:///default"));
        assert!(!u.is_admin());
        assert_eq!(u.address(), "127.0.0.1:16600");
    }

    #[test]
    fn tcp_default_port() {
        let u = p("qemu+tcp://host/system");
        assert_eq!(u.port(), Some(16509));
        assert_eq!(u.explicit_port(), None);
        assert_eq!(u.open_name().as_deref(), Some("qemu:///system"));
    }

    #[test]
    fn tls_explicit_and_implied() {
        let u = p("qemu+tls://host/system");
        assert_eq!((u.transport(), u.port()), (Transport::Tls, Some(16514)));
        let u = p("qemu://host/system");
        assert_eq!((u.transport(), u.port()), (Transport::Tls, Some(16514)));
        assert!(!u.transport_is_explicit());
        assert_eq!(u.open_name().as_deref(), Some("qemu:///system"));
        // TLS without a host goes to localhost, as libvirt does.
        let u = p("qemu+tls:///system");
        assert_eq!(u.connect_host(), "localhost");
    }

    #[test]
    fn unix_with_socket() {
        let u = p("test+unix:///default?socket=/tmp/x/libvirt-sock");
        assert_eq!(u.transport(), Transport::Unix);
        assert_eq!(sock(&u), PathBuf::from("/tmp/x/libvirt-sock"));
        assert_eq!(u.open_name().as_deref(), Some("test:///default"));
        assert_eq!(u.port(), None);
    }

    #[test]
    fn unix_default_sockets() {
        let u = p("qemu+unix:///system");
        assert_eq!(sock(&u), PathBuf::from("/var/run/libvirt/libvirt-sock"));
        let u = p("qemu:///system");
        assert_eq!(u.transport(), Transport::Unix);
        assert_eq!(sock(&u), PathBuf::from("/var/run/libvirt/libvirt-sock"));
        let u = p("qemu+unix:///system?readonly");
        assert!(u.readonly());
        assert_eq!(sock(&u), PathBuf::from("/var/run/libvirt/libvirt-sock-ro"));
        // readonly is virtwire's: not passed on.
        assert_eq!(u.open_name().as_deref(), Some("qemu:///system"));
        let u = p("qemu+unix:///system?mode=direct");
        assert_eq!(sock(&u), PathBuf::from("/var/run/libvirt/virtqemud-sock"));
        let u = p("qemu:///system");
        let direct = u
            .socket_path_in(&ROOT, &|p| p.ends_with("virtqemud-sock"))
            .unwrap();
        assert_eq!(direct, PathBuf::from("/var/run/libvirt/virtqemud-sock"));
    }

    #[test]
    fn session_sockets() {
        let user = LocalEnv {
            root: false,
            user_runtime_dir: PathBuf::from("/run/user/1000/libvirt"),
        };
        let u = p("qemu:///session");
        assert_eq!(
            u.socket_path_in(&user, &|_| false).unwrap(),
            PathBuf::from("/run/user/1000/libvirt/libvirt-sock")
        );
        // libvirt: a test+ scheme means the session daemon when not root.
        let u = p("test+unix:///default");
        assert_eq!(
            u.socket_path_in(&user, &|_| false).unwrap(),
            PathBuf::from("/run/user/1000/libvirt/libvirt-sock")
        );
        assert_eq!(sock(&u), PathBuf::from("/var/run/libvirt/libvirt-sock"));
    }

    #[test]
    fn admin_uris() {
        let u = p("libvirtd:///system");
        assert!(u.is_admin());
        assert_eq!(u.open_name(), None);
        assert_eq!(sock(&u), PathBuf::from("/run/libvirt/libvirt-admin-sock"));
        let u = p("virtqemud:///system");
        assert!(u.is_admin());
        assert_eq!(sock(&u), PathBuf::from("/run/libvirt/virtqemud-admin-sock"));
        let u = p("libvirtd:///system?socket=/tmp/d/sock/libvirt-admin-sock");
        assert_eq!(sock(&u), PathBuf::from("/tmp/d/sock/libvirt-admin-sock"));
        let (at, m) = err("libvirtd:///system?foo=1");
        assert_eq!(at, 19);
        assert!(m.contains("only socket"), "{m}");
        let (_, m) = err("libvirtd+tcp://h/system");
        assert!(m.contains("admin unix socket"), "{m}");
        let (_, m) = err("libvirtd:///other");
        assert!(m.contains("/system"), "{m}");
    }

    #[test]
    fn ipv6_user_and_params() {
        let u = p("qemu+tcp://alice@[::1]:1234/system?pkipath=/p&no_verify=1&foo=a%20b#frag");
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.host(), Some("::1"));
        assert_eq!(u.port(), Some(1234));
        assert_eq!(u.address(), "[::1]:1234");
        assert_eq!(u.pkipath(), Some(Path::new("/p")));
        assert!(u.no_verify());
        assert_eq!(u.param("FOO"), Some("a b"));
        // Unconsumed parameters and the fragment go to the server, escaped as glib does.
        assert_eq!(
            u.open_name().as_deref(),
            Some("qemu:///system?foo=a%20b#frag")
        );
        let u = p("qemu+tls://[::1]/system");
        assert_eq!(u.port(), Some(16514));
    }

    #[test]
    fn name_param_overrides_and_remote_probes() {
        let u = p("qemu+tcp://h/system?name=qemu:///session");
        assert_eq!(u.open_name().as_deref(), Some("qemu:///session"));
        let u = p("remote+tcp://h/");
        assert_eq!(u.open_name().as_deref(), Some(""));
        let u = p("test+tcp://127.0.0.1:1/tmp/my%20world.xml");
        assert_eq!(u.open_name().as_deref(), Some("test:///tmp/my%20world.xml"));
    }

    #[test]
    fn other_params_kept() {
        let u = p("qemu+tls://h/system?keyfile=/k&tls_priority=NORMAL&auth=sasl");
        assert_eq!(u.param("keyfile"), Some("/k"));
        assert_eq!(u.param("auth"), Some("sasl"));
        assert_eq!(u.params().len(), 3);
        assert_eq!(u.open_name().as_deref(), Some("qemu:///system"));
    }

    #[test]
    fn unsupported_transports_name_the_supported_ones() {
        for (uri, at) in [
            ("qemu+ssh://h/system", 5),
            ("qemu+libssh2://h/system", 5),
            ("qemu+libssh://h/system", 5),
            ("qemu+ext:///system?command=/bin/x", 5),
        ] {
            let (a, m) = err(uri);
            assert_eq!(a, at, "{uri}");
            assert!(m.contains("tcp, tls and unix"), "{uri}: {m}");
        }
        let (a, m) = err("qemu+udp://h/system");
        assert_eq!(a, 5);
        assert!(m.contains("unknown transport"), "{m}");
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(err("").0, 0);
        assert!(err("qemu").1.contains("no scheme"));
        assert_eq!(err("qemu:/system").0, 5);
        assert_eq!(err("test+tcp://h:99999/default").0, 13);
        assert_eq!(err("test+tcp://h:0/default").0, 13);
        assert_eq!(err("test+tcp://h:1x/default").0, 13);
        assert_eq!(err("test+tcp://[::1/default").0, 11);
        assert_eq!(err("test+tcp://[zz]/default").0, 12);
        assert_eq!(err("test+unix://h/default").0, 12);
        assert_eq!(err("test+tcp://h/default?no_verify=yes").0, 31);
        assert_eq!(err("test+tcp://h/default?mode=fast").0, 26);
        assert_eq!(err("test+tcp://h/default?a=%zz").0, 23);
        assert_eq!(err("test+tcp://h o/default").0, 12);
        assert_eq!(err("+tcp://h/default").0, 0);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_query_value("a b/c~"), "a%20b%2Fc~");
        assert_eq!(escape_path("/tmp/a b/w.xml"), "/tmp/a%20b/w.xml");
    }
}
