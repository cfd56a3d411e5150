//! The oracle itself (compiled only with `--cfg fuzzing`; see the crate docs).

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int, c_uint, c_ulong, c_void};
use std::sync::{Mutex, OnceLock};

use virtwire_protocol::fuzzing::{BodyVerdict, LibvirtOracle, LibvirtVerdict, OValue, TheirBody};
use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::header::{LXC_PROGRAM, QEMU_PROGRAM};
use virtwire_protocol::{BodyKind, BodyRole, Header, MessageStatus, MessageType};

use crate::ffi::{CMessage, XdrProc, dlsym, g_malloc0, xdr_free};

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}

const RTLD_NOW: c_int = 2;

/// The environment variable naming the libvirt.so to load (e.g. libvirt 11.3's, unpacked by
/// `scripts/setup.sh` into `.cache/libvirtd-11.3.0/usr/lib/x86_64-linux-gnu/libvirt.so.0`).
/// Unset: `libvirt.so.0` as the dynamic loader finds it (the installed 9.0.0).
pub const LIBVIRT_SO_ENV: &str = "VIRTWIRE_LIBVIRT_SO";

/// libvirt.so's entry points, resolved with `dlsym` on the library `dlopen` loaded: by name, so
/// any libvirt version whose `virNetMessage` layout is 9.0.0's loads (11.3.0's is the same;
/// `src/rpc/virnetmessage.h` did not change), whatever its private symbol version.
struct Lib {
    handle: usize,
    path: String,
    version: String,
    new: NewFn,
    free: FreeFn,
    decode_length: StepFn,
    decode_header: StepFn,
    decode_num_fds: StepFn,
    decode_payload: PayloadFn,
}

type NewFn = unsafe extern "C" fn(bool) -> *mut CMessage;
type FreeFn = unsafe extern "C" fn(*mut CMessage);
type StepFn = unsafe extern "C" fn(*mut CMessage) -> c_int;
type PayloadFn = unsafe extern "C" fn(*mut CMessage, XdrProc, *mut c_void) -> c_int;
type InitFn = unsafe extern "C" fn() -> c_int;
type ErrorFunc = Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>;
type SetErrorFn = unsafe extern "C" fn(*mut c_void, ErrorFunc);
type VersionFn = unsafe extern "C" fn(*mut c_ulong, *const c_char, *mut c_ulong) -> c_int;

unsafe extern "C" fn quiet(_: *mut c_void, _: *mut c_void) {}

fn sym(handle: *mut c_void, name: &str) -> *mut c_void {
    let c = CString::new(name).expect("no NUL");
    // SAFETY: a handle from dlopen and a NUL-terminated name.
    let p = unsafe { dlsym(handle, c.as_ptr()) };
    assert!(!p.is_null(), "libvirt.so has no {name}");
    p
}

fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        let path = std::env::var(LIBVIRT_SO_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "libvirt.so.0".to_string());
        let c = CString::new(path.clone()).expect("no NUL");
        // SAFETY: dlopen of a library path; errors are read from dlerror.
        let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW) };
        if handle.is_null() {
            // SAFETY: dlerror returns a NUL-terminated message after a failed dlopen.
            let why = unsafe { std::ffi::CStr::from_ptr(dlerror()) }.to_string_lossy();
            panic!("cannot load {path} (${LIBVIRT_SO_ENV}): {why}");
        }
        // SAFETY: each symbol is the libvirt function of that name, with the C signature given
        // (libvirt's virnetmessage.h, libvirt-host.h, virterror.h).
        unsafe {
            use std::mem::transmute;
            let init = transmute::<*mut c_void, InitFn>(sym(handle, "virInitialize"));
            let set_err = transmute::<*mut c_void, SetErrorFn>(sym(handle, "virSetErrorFunc"));
            let get_version = transmute::<*mut c_void, VersionFn>(sym(handle, "virGetVersion"));
            init();
            set_err(std::ptr::null_mut(), Some(quiet));
            let mut v: c_ulong = 0;
            get_version(&mut v, std::ptr::null(), std::ptr::null_mut());
            Lib {
                handle: handle as usize,
                path,
                version: format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000),
                new: transmute::<*mut c_void, NewFn>(sym(handle, "virNetMessageNew")),
                free: transmute::<*mut c_void, FreeFn>(sym(handle, "virNetMessageFree")),
                decode_length: transmute::<*mut c_void, StepFn>(sym(
                    handle,
                    "virNetMessageDecodeLength",
                )),
                decode_header: transmute::<*mut c_void, StepFn>(sym(
                    handle,
                    "virNetMessageDecodeHeader",
                )),
                decode_num_fds: transmute::<*mut c_void, StepFn>(sym(
                    handle,
                    "virNetMessageDecodeNumFDs",
                )),
                decode_payload: transmute::<*mut c_void, PayloadFn>(sym(
                    handle,
                    "virNetMessageDecodePayload",
                )),
            }
        }
    })
}

/// The libvirt the oracle runs: (path given to dlopen, version from `virGetVersion`, e.g. `9.0.0`).
pub fn loaded() -> (&'static str, &'static str) {
    let l = lib();
    (&l.path, &l.version)
}

/// A body the oracle can decode, with the libvirt filter that decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// `virNetMessageError`.
    Error,
    /// `virNetStreamHole`.
    Hole,
    /// CONNECT_OPEN (1) args.
    ConnectOpenArgs,
    /// AUTH_LIST (66) ret.
    AuthListRet,
    /// CONNECT_SUPPORTS_FEATURE (60) args.
    SupportsFeatureArgs,
    /// CONNECT_SUPPORTS_FEATURE (60) ret.
    SupportsFeatureRet,
    /// CONNECT_GET_URI (110) ret.
    GetUriRet,
    /// CONNECT_GET_LIB_VERSION (157) ret.
    GetLibVersionRet,
    /// CONNECT_LIST_ALL_DOMAINS (273) args.
    ListAllDomainsArgs,
    /// CONNECT_LIST_ALL_DOMAINS (273) ret.
    ListAllDomainsRet,
    /// CONNECT_GET_ALL_DOMAIN_STATS (344) args.
    AllDomainStatsArgs,
    /// CONNECT_GET_ALL_DOMAIN_STATS (344) ret.
    AllDomainStatsRet,
    /// Any other remote, qemu or lxc body, by the name of its `xdr_*` filter in libvirt.so
    /// (found with `dlsym`): accepted or rejected, its value not mapped.
    Other(&'static str),
}

/// `xdr_<name>` from libvirt.so, looked up once per name (the names are leaked: at most one per body
/// type of the schema).
fn filter_named(name: &str) -> Option<(&'static str, XdrProc)> {
    /// Filter name → (leaked name, filter address), `None` when libvirt.so has no such filter.
    type Cache = HashMap<String, Option<(&'static str, usize)>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("cache lock");
    let hit = cache.entry(name.to_string()).or_insert_with(|| {
        let sym = CString::new(format!("xdr_{name}")).ok()?;
        // SAFETY: dlsym on the handle of the libvirt.so the oracle loaded.
        let p = unsafe { dlsym(lib().handle as *mut c_void, sym.as_ptr()) };
        (!p.is_null()).then(|| (&*Box::leak(name.to_string().into_boxed_str()), p as usize))
    });
    // SAFETY: the address is an `xdr_*` filter of the form bool_t f(XDR *, T *).
    hit.map(|(n, p)| (n, unsafe { std::mem::transmute::<usize, XdrProc>(p) }))
}

impl Proc {
    /// Every body whose value the oracle reads (all but [`Proc::Other`]): the differential replay
    /// asserts each reaches a value comparison on some seed.
    pub const VALUE_MAPPED: [Proc; 12] = [
        Proc::Error,
        Proc::Hole,
        Proc::ConnectOpenArgs,
        Proc::AuthListRet,
        Proc::SupportsFeatureArgs,
        Proc::SupportsFeatureRet,
        Proc::GetUriRet,
        Proc::GetLibVersionRet,
        Proc::ListAllDomainsArgs,
        Proc::ListAllDomainsRet,
        Proc::AllDomainStatsArgs,
        Proc::AllDomainStatsRet,
    ];

    /// True when the oracle reads this body's value (not only its accept/reject verdict).
    pub fn maps_value(self) -> bool {
        !matches!(self, Proc::Other(_))
    }

    /// Which body of a frame with this header the oracle decodes, if any.
    pub fn of(h: &Header, payload_len: usize) -> Option<Proc> {
        use BodyRole::{Args, Ret};
        let role = match BodyKind::of(h) {
            BodyKind::Error => return Some(Proc::Error),
            BodyKind::StreamError if payload_len > 0 => return Some(Proc::Error),
            BodyKind::StreamHole => return Some(Proc::Hole),
            kind => kind.role()?,
        };
        if ![REMOTE_PROGRAM, QEMU_PROGRAM, LXC_PROGRAM].contains(&h.prog) || h.vers != 1 {
            return None;
        }
        let remote = h.prog == REMOTE_PROGRAM;
        Some(match (remote, h.procedure, role) {
            (true, 1, Args) => Proc::ConnectOpenArgs,
            (true, 66, Ret) => Proc::AuthListRet,
            (true, 60, Args) => Proc::SupportsFeatureArgs,
            (true, 60, Ret) => Proc::SupportsFeatureRet,
            (true, 110, Ret) => Proc::GetUriRet,
            (true, 157, Ret) => Proc::GetLibVersionRet,
            (true, 273, Args) => Proc::ListAllDomainsArgs,
            (true, 273, Ret) => Proc::ListAllDomainsRet,
            (true, 344, Args) => Proc::AllDomainStatsArgs,
            (true, 344, Ret) => Proc::AllDomainStatsRet,
            _ => {
                // The harness's schema (loaded once per process, found where the harness finds it).
                let name = virtwire_protocol::fuzzing::schema().body_type_name(h)?;
                return filter_named(name).map(|(n, _)| Proc::Other(n));
            }
        })
    }

    /// The name of its `xdr_*` filter without the prefix: the body's `.x` struct name.
    pub fn filter_name(self) -> &'static str {
        match self {
            Proc::Error => "virNetMessageError",
            Proc::Hole => "virNetStreamHole",
            Proc::ConnectOpenArgs => "remote_connect_open_args",
            Proc::AuthListRet => "remote_auth_list_ret",
            Proc::SupportsFeatureArgs => "remote_connect_supports_feature_args",
            Proc::SupportsFeatureRet => "remote_connect_supports_feature_ret",
            Proc::GetUriRet => "remote_connect_get_uri_ret",
            Proc::GetLibVersionRet => "remote_connect_get_lib_version_ret",
            Proc::ListAllDomainsArgs => "remote_connect_list_all_domains_args",
            Proc::ListAllDomainsRet => "remote_connect_list_all_domains_ret",
            Proc::AllDomainStatsArgs => "remote_connect_get_all_domain_stats_args",
            Proc::AllDomainStatsRet => "remote_connect_get_all_domain_stats_ret",
            Proc::Other(name) => name,
        }
    }

    fn filter(self) -> XdrProc {
        filter_named(self.filter_name())
            .unwrap_or_else(|| panic!("libvirt.so has no xdr_{}", self.filter_name()))
            .1
    }
}

/// Raw memory reads of libvirt 9.0's structs (x86_64 layouts).
mod read {
    use super::*;

    /// # Safety
    /// `p + off` must be readable for `T` and suitably aligned.
    unsafe fn at<T: Copy>(p: *const u8, off: usize) -> T {
        // SAFETY: guaranteed by the caller.
        unsafe { (p.add(off) as *const T).read() }
    }

    /// A C string (NUL-terminated), as the bytes before the NUL.
    unsafe fn cstr(p: *const c_char) -> Vec<u8> {
        // SAFETY: xdr_string always NUL-terminates what it allocates.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().to_vec()
    }

    unsafe fn nonnull_string(p: *const u8, off: usize) -> OValue {
        // SAFETY: caller passes the offset of a `char *` a successful decode filled.
        OValue::Str(unsafe { cstr(at::<*const c_char>(p, off)) })
    }

    unsafe fn opt_string(p: *const u8, off: usize) -> OValue {
        // SAFETY: `char **`, NULL when absent.
        let pp = unsafe { at::<*const *const c_char>(p, off) };
        OValue::Opt(if pp.is_null() {
            None
        } else {
            // SAFETY: present → points at a decoded `char *`.
            Some(Box::new(OValue::Str(unsafe { cstr(*pp) })))
        })
    }

    unsafe fn uuid(p: *const u8, off: usize) -> OValue {
        // SAFETY: 16 bytes inline.
        OValue::Bytes(unsafe { std::slice::from_raw_parts(p.add(off), 16) }.to_vec())
    }

    /// `remote_nonnull_domain` (size 32): name, uuid[16], id.
    unsafe fn domain(p: *const u8) -> OValue {
        // SAFETY: p points at a decoded remote_nonnull_domain.
        unsafe {
            OValue::Rec(vec![
                nonnull_string(p, 0),
                uuid(p, 8),
                OValue::I(at::<c_int>(p, 24) as i64),
            ])
        }
    }

    /// `struct { u_int len; T *val; }` at `off`, each element read by `elem` with stride `size`.
    unsafe fn list(
        p: *const u8,
        off: usize,
        size: usize,
        elem: unsafe fn(*const u8) -> OValue,
    ) -> OValue {
        // SAFETY: a decoded array: `len` elements at `val`.
        unsafe {
            let n = at::<c_uint>(p, off) as usize;
            let v = at::<*const u8>(p, off + 8);
            OValue::List((0..n).map(|i| elem(v.add(i * size))).collect())
        }
    }

    /// `remote_typed_param` (size 24): field, value { int type; union @8 }.
    unsafe fn typed_param(p: *const u8) -> OValue {
        // SAFETY: p points at a decoded remote_typed_param; the arm read matches the discriminant.
        unsafe {
            let t = at::<c_int>(p, 8);
            let arm = match t {
                1 | 6 => OValue::I(at::<c_int>(p, 16) as i64),
                2 => OValue::U(at::<c_uint>(p, 16) as u64),
                3 => OValue::I(at::<i64>(p, 16)),
                4 => OValue::U(at::<u64>(p, 16)),
                5 => OValue::D(at::<f64>(p, 16).to_bits()),
                7 => nonnull_string(p, 16),
                _ => unreachable!("xdr_remote_typed_param_value accepted type {t}"),
            };
            OValue::Rec(vec![
                nonnull_string(p, 0),
                OValue::Rec(vec![OValue::I(t as i64), arm]),
            ])
        }
    }

    /// `remote_domain_stats_record` (size 48): dom, params.
    unsafe fn stats_record(p: *const u8) -> OValue {
        // SAFETY: p points at a decoded record.
        unsafe { OValue::Rec(vec![domain(p), list(p, 32, 24, typed_param)]) }
    }

    unsafe fn int_elem(p: *const u8) -> OValue {
        // SAFETY: p points at an int.
        OValue::I(unsafe { at::<c_int>(p, 0) } as i64)
    }

    /// The decoded struct at `p` as an `OValue`.
    pub(super) unsafe fn body(which: Proc, p: *const u8) -> OValue {
        // SAFETY: `p` holds the struct the filter for `which` decoded.
        unsafe {
            match which {
                Proc::Error => {
                    let dom = at::<*const u8>(p, 24);
                    let net = at::<*const u8>(p, 64);
                    OValue::Rec(vec![
                        OValue::I(at::<c_int>(p, 0) as i64),
                        OValue::I(at::<c_int>(p, 4) as i64),
                        opt_string(p, 8),
                        OValue::I(at::<c_int>(p, 16) as i64),
                        OValue::Opt((!dom.is_null()).then(|| Box::new(domain(dom)))),
                        opt_string(p, 32),
                        opt_string(p, 40),
                        opt_string(p, 48),
                        OValue::I(at::<c_int>(p, 56) as i64),
                        OValue::I(at::<c_int>(p, 60) as i64),
                        OValue::Opt((!net.is_null()).then(|| {
                            Box::new(OValue::Rec(vec![nonnull_string(net, 0), uuid(net, 8)]))
                        })),
                    ])
                }
                Proc::Hole => OValue::Rec(vec![
                    OValue::I(at::<i64>(p, 0)),
                    OValue::U(at::<c_uint>(p, 8) as u64),
                ]),
                Proc::ConnectOpenArgs => {
                    OValue::Rec(vec![opt_string(p, 0), OValue::U(at::<c_uint>(p, 8) as u64)])
                }
                Proc::AuthListRet => OValue::Rec(vec![list(p, 0, 4, int_elem)]),
                Proc::SupportsFeatureArgs | Proc::SupportsFeatureRet => {
                    OValue::Rec(vec![OValue::I(at::<c_int>(p, 0) as i64)])
                }
                Proc::GetUriRet => OValue::Rec(vec![nonnull_string(p, 0)]),
                Proc::GetLibVersionRet => OValue::Rec(vec![OValue::U(at::<u64>(p, 0))]),
                Proc::ListAllDomainsArgs => OValue::Rec(vec![
                    OValue::I(at::<c_int>(p, 0) as i64),
                    OValue::U(at::<c_uint>(p, 4) as u64),
                ]),
                Proc::ListAllDomainsRet => OValue::Rec(vec![
                    list(p, 0, 32, domain),
                    OValue::U(at::<c_uint>(p, 16) as u64),
                ]),
                Proc::AllDomainStatsArgs => OValue::Rec(vec![
                    list(p, 0, 32, domain),
                    OValue::U(at::<c_uint>(p, 16) as u64),
                    OValue::U(at::<c_uint>(p, 20) as u64),
                ]),
                Proc::AllDomainStatsRet => OValue::Rec(vec![list(p, 0, 48, stats_record)]),
                Proc::Other(_) => unreachable!("values of other bodies are not read"),
            }
        }
    }
}

/// Run libvirt's decoder on `frame`. With `values`, the body structs the oracle maps are read into
/// [`OValue`]s (before they are freed); without, bodies get accept/reject verdicts only.
fn run(frame: &[u8], values: bool) -> LibvirtVerdict {
    let l = lib();
    if frame.len() < 4 {
        return LibvirtVerdict::Incomplete;
    }
    // SAFETY: the message is created, filled and freed here; its buffer is glib-allocated as
    // libvirt's realloc expects; every length used is the one libvirt set after its own checks.
    unsafe {
        let msg = (l.new)(false);
        assert!(!msg.is_null(), "virNetMessageNew failed");
        let buf = g_malloc0(4) as *mut u8;
        std::ptr::copy_nonoverlapping(frame.as_ptr(), buf, 4);
        (*msg).buffer = buf as *mut c_char;
        (*msg).buffer_length = 4;
        (*msg).buffer_offset = 0;
        let out = 'out: {
            if (l.decode_length)(msg) < 0 {
                break 'out LibvirtVerdict::LengthRejected;
            }
            let total = (*msg).buffer_length;
            if frame.len() < total {
                break 'out LibvirtVerdict::Incomplete;
            }
            std::ptr::copy_nonoverlapping(frame.as_ptr(), (*msg).buffer as *mut u8, total);
            if (l.decode_header)(msg) < 0 {
                break 'out LibvirtVerdict::HeaderRejected;
            }
            let h = (*msg).header;
            let header = Header::new(
                h.prog,
                h.vers,
                h.proc_,
                MessageType::from_raw(h.type_),
                h.serial,
                MessageStatus::from_raw(h.status),
            );
            let nfds = if header.msg_type.has_fds() {
                if (l.decode_num_fds)(msg) < 0 {
                    break 'out LibvirtVerdict::FdsRejected;
                }
                Some((*msg).nfds as u32)
            } else {
                None
            };
            let payload_len = total - (*msg).buffer_offset;
            let body = Proc::of(&header, payload_len).map(|which| {
                // Zeroed, 8-aligned, far larger than any libvirt body struct (the largest hold a few
                // fixed arrays of 4-byte chars, well under 4 KiB).
                let mut obj = vec![0u64; 2048];
                let p = obj.as_mut_ptr() as *mut c_void;
                let ok = (l.decode_payload)(msg, which.filter(), p) == 0;
                let verdict = match which {
                    _ if !ok => BodyVerdict::Rejected,
                    Proc::Other(_) => BodyVerdict::Accepted,
                    _ if !values => BodyVerdict::Accepted,
                    // The filter for `which` just decoded the struct at `p`.
                    _ => BodyVerdict::Value(read::body(which, p as *const u8)),
                };
                xdr_free(which.filter(), p);
                TheirBody {
                    filter: which.filter_name(),
                    verdict,
                }
            });
            LibvirtVerdict::Frame { header, nfds, body }
        };
        (l.free)(msg);
        out
    }
}

/// Decode `frame` with libvirt's decoder: the stages' verdicts, and for a body the oracle knows,
/// whether its filter accepted it (values are not read: this is what a timing anchor measures).
pub fn decode(frame: &[u8]) -> LibvirtVerdict {
    run(frame, false)
}

/// libvirt.so.0 as the differential oracle: verdicts, and the values of the bodies it maps.
#[derive(Debug, Default, Clone, Copy)]
pub struct Libvirt;

impl LibvirtOracle for Libvirt {
    fn decode(&self, frame: &[u8]) -> LibvirtVerdict {
        run(frame, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version `virGetVersion` reports is the library's file name's (`libvirt.so.0.9000.0` is
    /// 9.0.0, `libvirt.so.0.11003.0` 11.3.0): `$VIRTWIRE_LIBVIRT_SO` chooses what is loaded.
    #[test]
    fn the_loaded_library_is_the_one_asked_for() {
        let (path, version) = loaded();
        let file = if path.contains('/') {
            std::path::PathBuf::from(path)
        } else {
            std::path::PathBuf::from("/usr/lib/x86_64-linux-gnu").join(path)
        };
        let real = std::fs::canonicalize(&file).unwrap();
        let n: u64 = real
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_prefix("libvirt.so.0.")
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", real.display()));
        assert_eq!(
            version,
            format!("{}.{}.0", n / 1000, n % 1000),
            "{}",
            real.display()
        );
        eprintln!("oracle: libvirt {version} from {}", real.display());
    }
    use virtwire_protocol::{ErrorBody, FrameBuilder, KeepaliveProc, Limits};

    #[test]
    fn lengths_as_libvirt_judges_them() {
        assert_eq!(decode(&3u32.to_be_bytes()), LibvirtVerdict::LengthRejected);
        assert_eq!(
            decode(&33_554_437u32.to_be_bytes()),
            LibvirtVerdict::LengthRejected
        );
        assert_eq!(
            decode(&33_554_436u32.to_be_bytes()),
            LibvirtVerdict::Incomplete
        );
        let mut short = 20u32.to_be_bytes().to_vec();
        short.resize(20, 0);
        assert_eq!(decode(&short), LibvirtVerdict::HeaderRejected);
    }

    #[test]
    fn frames_decode_like_ours() {
        let ping = KeepaliveProc::Ping.frame();
        match decode(&ping) {
            LibvirtVerdict::Frame { header, nfds, body } => {
                assert_eq!(header.procedure, 1);
                assert_eq!(nfds, None);
                assert_eq!(body, None);
            }
            o => panic!("{o:?}"),
        }
        let l = Limits::default();
        let err = ErrorBody::new(39, 7, "unknown procedure: 9999")
            .to_bytes(&l)
            .unwrap();
        let f = FrameBuilder::new(Header::new(
            REMOTE_PROGRAM,
            1,
            9999,
            MessageType::Reply,
            5,
            MessageStatus::Error,
        ))
        .payload(err.clone())
        .encode(&l)
        .unwrap();
        assert!(matches!(
            decode(&f),
            LibvirtVerdict::Frame {
                body: Some(TheirBody {
                    filter: "virNetMessageError",
                    verdict: BodyVerdict::Accepted,
                }),
                ..
            }
        ));
        let f = FrameBuilder::new(Header::new(
            REMOTE_PROGRAM,
            1,
            9999,
            MessageType::Reply,
            5,
            MessageStatus::Error,
        ))
        .payload(&err[..err.len() - 4])
        .encode(&l)
        .unwrap();
        assert!(matches!(
            decode(&f),
            LibvirtVerdict::Frame {
                body: Some(TheirBody {
                    filter: "virNetMessageError",
                    verdict: BodyVerdict::Rejected,
                }),
                ..
            }
        ));
        // DOMAIN_GET_INFO (16) args: remote_nonnull_domain; judged through dlsym'd xdr_remote_*.
        let mut args = vec![0, 0, 0, 3, b'v', b'm', b'1', 0];
        args.extend([0u8; 16]);
        args.extend((-1i32).to_be_bytes());
        let f = FrameBuilder::call(REMOTE_PROGRAM, 16, 2)
            .payload(args.clone())
            .encode(&l)
            .unwrap();
        assert!(matches!(
            decode(&f),
            LibvirtVerdict::Frame {
                body: Some(TheirBody {
                    filter: "remote_domain_get_info_args",
                    verdict: BodyVerdict::Accepted,
                }),
                ..
            }
        ));
        let f = FrameBuilder::call(REMOTE_PROGRAM, 16, 2)
            .payload(&args[..20])
            .encode(&l)
            .unwrap();
        assert!(matches!(
            decode(&f),
            LibvirtVerdict::Frame {
                body: Some(TheirBody {
                    filter: "remote_domain_get_info_args",
                    verdict: BodyVerdict::Rejected,
                }),
                ..
            }
        ));
        let f = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
            .msg_type(MessageType::CallWithFds)
            .nfds(Some(33))
            .build_unchecked();
        assert_eq!(decode(&f), LibvirtVerdict::FdsRejected);
    }

    #[test]
    fn the_oracle_reads_the_values_it_maps() {
        let l = Limits::default();
        let err = ErrorBody::new(39, 7, "unknown procedure: 9999");
        let f = FrameBuilder::new(Header::new(
            REMOTE_PROGRAM,
            1,
            9999,
            MessageType::Reply,
            5,
            MessageStatus::Error,
        ))
        .payload(err.to_bytes(&l).unwrap())
        .encode(&l)
        .unwrap();
        match Libvirt.decode(&f) {
            LibvirtVerdict::Frame {
                body:
                    Some(TheirBody {
                        filter: "virNetMessageError",
                        verdict: BodyVerdict::Value(v),
                    }),
                ..
            } => assert_eq!(v, OValue::from_error(&err)),
            o => panic!("{o:?}"),
        }
    }
}
