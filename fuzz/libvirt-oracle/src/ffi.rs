//! The struct layouts the oracle and the timing anchors share (libvirt 9.0.0 on x86_64:
//! `virnetmessage.h`, unchanged in 11.3.0), and the libvirt.so.0 symbols the anchors call. The
//! anchors (feature `anchor`) link libvirt.so.0; the oracle loads it with `dlopen` (see `oracle`),
//! so a fuzz build links no libvirt and can run against 9.0.0 or 11.3.0.

// Without --cfg fuzzing only the anchors are built, and some symbols are the oracle's alone.
#![cfg_attr(not(fuzzing), allow(dead_code))]

use std::ffi::{c_char, c_int, c_uint, c_void};
#[cfg(feature = "anchor")]
use std::sync::Once;

/// `virNetMessageHeader`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CHeader {
    pub prog: c_uint,
    pub vers: c_uint,
    pub proc_: c_int,
    pub type_: c_int,
    pub serial: c_uint,
    pub status: c_int,
}

/// `struct _virNetMessage` of libvirt 9.0.0.
#[repr(C)]
pub(crate) struct CMessage {
    pub tracked: bool,
    pub buffer: *mut c_char,
    pub buffer_length: usize,
    pub buffer_offset: usize,
    pub header: CHeader,
    pub cb: *mut c_void,
    pub opaque: *mut c_void,
    pub nfds: usize,
    pub fds: *mut c_int,
    pub donefds: usize,
    pub next: *mut CMessage,
}

/// An `xdr_*` filter: `bool_t f(XDR *, T *)`.
pub(crate) type XdrProc = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

#[cfg(feature = "anchor")]
unsafe extern "C" {
    pub(crate) fn virInitialize() -> c_int;
    pub(crate) fn virSetErrorFunc(
        data: *mut c_void,
        f: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    );
    pub(crate) fn virNetMessageNew(tracked: bool) -> *mut CMessage;
    pub(crate) fn virNetMessageFree(msg: *mut CMessage);
    pub(crate) fn virNetMessageDecodeLength(msg: *mut CMessage) -> c_int;
    pub(crate) fn virNetMessageDecodeHeader(msg: *mut CMessage) -> c_int;
    pub(crate) fn virNetMessageDecodeNumFDs(msg: *mut CMessage) -> c_int;
    pub(crate) fn virNetMessageDecodePayload(
        msg: *mut CMessage,
        filter: XdrProc,
        data: *mut c_void,
    ) -> c_int;
    pub(crate) fn virNetMessageEncodeHeader(msg: *mut CMessage) -> c_int;
    pub(crate) fn virNetMessageEncodePayload(
        msg: *mut CMessage,
        filter: XdrProc,
        data: *mut c_void,
    ) -> c_int;
    pub(crate) fn virNetMessageClear(msg: *mut CMessage);
    pub(crate) fn xdrmem_create(xdrs: *mut c_void, addr: *mut c_char, size: c_uint, op: c_int);
}

// libtirpc, glib and libdl: linked by build.rs (libtirpc, glib) or part of libc.
unsafe extern "C" {
    pub(crate) fn xdr_free(filter: XdrProc, data: *mut c_void);
    pub(crate) fn g_malloc0(n: usize) -> *mut c_void;
    pub(crate) fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

#[cfg(feature = "anchor")]
unsafe extern "C" fn quiet(_: *mut c_void, _: *mut c_void) {}

/// `virInitialize` once per process, with libvirt's error printing silenced.
#[cfg(feature = "anchor")]
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain library initialisation; the error callback ignores its arguments.
        unsafe {
            virInitialize();
            virSetErrorFunc(std::ptr::null_mut(), Some(quiet));
        }
    });
}
