//! Timing anchors: libvirt 9.0's own decoder and encoder, called the way the daemon calls them, for
//! the benchmarks to measure ours against (`benches/`, feature `libvirt`). No `--cfg fuzzing` needed.
//!
//! - [`Anchor::frame_header`]: `virNetMessageDecodeLength` + `virNetMessageDecodeHeader` on one
//!   frame, the message (and its buffer) reused as the daemon's client reuses its receive message.
//! - [`Anchor::daemon_frame`]: the same per message as libvirtd runs it: a new message, length,
//!   the buffer reallocated and the frame copied in, header, the message freed.
//! - [`Anchor::decode_body`]: length, header, `virNetMessageDecodePayload` with the body's `xdr_*`
//!   filter, then `xdr_free` (the whole receive path of one message, the C struct built and freed).
//! - [`Anchor::encode_message`] / [`Anchor::encode_xdr`]: the same value encoded back, through
//!   `virNetMessageEncodeHeader` + `virNetMessageEncodePayload` (libvirt's send path, which starts
//!   with a 64 KiB buffer and re-encodes into a four times larger one until the value fits), and
//!   through a bare `xdrmem` stream into a buffer already large enough (the filter alone).

use std::ffi::{CString, c_char, c_void};

use crate::ffi::*;

/// An `xdr_*` filter of libvirt.so, found by its type name.
#[derive(Clone, Copy)]
pub struct Filter {
    f: XdrProc,
}

impl Filter {
    /// `xdr_<name>` (e.g. `remote_connect_get_all_domain_stats_ret`), if libvirt.so has it.
    pub fn named(name: &str) -> Option<Filter> {
        init();
        let sym = CString::new(format!("xdr_{name}")).ok()?;
        // SAFETY: dlsym with RTLD_DEFAULT (null) searches the loaded objects; libvirt.so is linked.
        let p = unsafe { dlsym(std::ptr::null_mut(), sym.as_ptr()) };
        // SAFETY: an `xdr_*` symbol is a filter of the form bool_t f(XDR *, T *).
        (!p.is_null()).then(|| Filter {
            f: unsafe { std::mem::transmute::<*mut c_void, XdrProc>(p) },
        })
    }
}

/// Room for any libvirt body struct (zeroed, 8-aligned; the largest are well under 4 KiB).
const OBJ_WORDS: usize = 2048;

/// One `virNetMessage`, reused across calls, and a decoded body kept for the encode anchors.
pub struct Anchor {
    msg: *mut CMessage,
    obj: Vec<u64>,
    /// The filter that decoded `obj`, if it holds a value.
    decoded: Option<Filter>,
    header: CHeader,
    out: Vec<u8>,
}

impl Default for Anchor {
    fn default() -> Self {
        Self::new()
    }
}

impl Anchor {
    /// A fresh message.
    pub fn new() -> Self {
        init();
        // SAFETY: plain allocation by libvirt; freed in Drop.
        let msg = unsafe { virNetMessageNew(false) };
        assert!(!msg.is_null(), "virNetMessageNew failed");
        Anchor {
            msg,
            obj: vec![0; OBJ_WORDS],
            decoded: None,
            header: CHeader::default(),
            out: Vec::new(),
        }
    }

    /// Length and header of `frame` as libvirt reads them from a socket: the length word into a
    /// 4-byte buffer, `DecodeLength` (which sizes the buffer), the rest copied in, `DecodeHeader`.
    /// Returns the procedure number, or `None` when libvirt rejects the frame or it is incomplete.
    pub fn frame_header(&mut self, frame: &[u8]) -> Option<i32> {
        if frame.len() < 4 {
            return None;
        }
        // SAFETY: `msg` is ours; its buffer is glib-allocated (libvirt reallocs it) and every
        // length used is the one libvirt set after its own checks.
        unsafe {
            let m = self.msg;
            if (*m).buffer.is_null() {
                (*m).buffer = g_malloc0(4) as *mut c_char;
            }
            std::ptr::copy_nonoverlapping(frame.as_ptr(), (*m).buffer as *mut u8, 4);
            (*m).buffer_length = 4;
            (*m).buffer_offset = 0;
            if virNetMessageDecodeLength(m) < 0 {
                return None;
            }
            let total = (*m).buffer_length;
            if frame.len() < total {
                return None;
            }
            std::ptr::copy_nonoverlapping(frame.as_ptr(), (*m).buffer as *mut u8, total);
            if virNetMessageDecodeHeader(m) < 0 {
                return None;
            }
            self.header = (*m).header;
            Some((*m).header.proc_)
        }
    }

    /// The daemon's receive path for the frame at the start of `stream` (which may hold more), as
    /// libvirtd's client code runs it per message (`src/rpc/virnetserverclient.c`,
    /// `virNetServerClientNewInternal` / `virNetServerClientDispatchRead`): a new message
    /// (`virNetMessageNew`) with a zeroed 4-byte buffer, the length word copied in,
    /// `virNetMessageDecodeLength` (which reallocates the buffer to the frame's length), the rest
    /// copied in, `virNetMessageDecodeHeader`, and the message freed (`virNetMessageFree`; the
    /// daemon frees it once the call is dispatched). Returns the frame's length and its header's
    /// procedure, serial and type, or `None` when libvirt rejects the frame or it is incomplete.
    /// The anchor of the frame + header row.
    pub fn daemon_frame(&mut self, stream: &[u8]) -> Option<(usize, i32, u32, i32)> {
        if stream.len() < 4 {
            return None;
        }
        // SAFETY: the message is libvirt's own, freed once below on every path; its buffer is
        // glib-allocated (DecodeLength reallocates it, virNetMessageFree frees it) and every length
        // used is the one libvirt set after its own checks.
        unsafe {
            let m = virNetMessageNew(true);
            if m.is_null() {
                return None;
            }
            (*m).buffer = g_malloc0(4) as *mut c_char;
            (*m).buffer_length = 4;
            std::ptr::copy_nonoverlapping(stream.as_ptr(), (*m).buffer as *mut u8, 4);
            let mut out = None;
            if virNetMessageDecodeLength(m) == 0 {
                let total = (*m).buffer_length;
                if stream.len() >= total {
                    std::ptr::copy_nonoverlapping(
                        stream.as_ptr().add(4),
                        ((*m).buffer as *mut u8).add(4),
                        total - 4,
                    );
                    if virNetMessageDecodeHeader(m) == 0 {
                        let h = (*m).header;
                        out = Some((total, h.proc_, h.serial, h.type_));
                    }
                }
            }
            virNetMessageFree(m);
            out
        }
    }

    /// The whole receive path of one frame: length, header, payload decoded by `filter` into a C
    /// struct, then freed. True when libvirt accepts it.
    pub fn decode_body(&mut self, frame: &[u8], filter: Filter) -> bool {
        self.release();
        if self.frame_header(frame).is_none() {
            return false;
        }
        // SAFETY: `obj` is zeroed and large enough for any body struct; the filter fills it and
        // `xdr_free` with the same filter releases what it allocated.
        unsafe {
            let p = self.obj.as_mut_ptr() as *mut c_void;
            let ok = virNetMessageDecodePayload(self.msg, filter.f, p) == 0;
            xdr_free(filter.f, p);
            self.obj.fill(0);
            ok
        }
    }

    /// Decode `frame`'s body with `filter` and keep the C struct for the encode anchors. True when
    /// libvirt accepts it.
    pub fn decode_and_keep(&mut self, frame: &[u8], filter: Filter) -> bool {
        self.release();
        if self.frame_header(frame).is_none() {
            return false;
        }
        // SAFETY: as in `decode_body`; the struct is freed by `release`.
        unsafe {
            let p = self.obj.as_mut_ptr() as *mut c_void;
            if virNetMessageDecodePayload(self.msg, filter.f, p) == 0 {
                self.decoded = Some(filter);
                true
            } else {
                xdr_free(filter.f, p);
                self.obj.fill(0);
                false
            }
        }
    }

    /// libvirt's send path for the kept value: `virNetMessageClear`, `EncodeHeader`,
    /// `EncodePayload` (which grows its buffer and re-encodes until the value fits). Returns the
    /// frame's length, or `None` when nothing is kept or libvirt fails.
    pub fn encode_message(&mut self) -> Option<usize> {
        let filter = self.decoded?;
        // SAFETY: `msg` is ours; `obj` holds the value `filter` decoded.
        unsafe {
            let m = self.msg;
            virNetMessageClear(m);
            (*m).header = self.header;
            if virNetMessageEncodeHeader(m) < 0 {
                return None;
            }
            if virNetMessageEncodePayload(m, filter.f, self.obj.as_mut_ptr() as *mut c_void) < 0 {
                return None;
            }
            Some((*m).buffer_length)
        }
    }

    /// The kept value through its `xdr_*` filter alone, into an `xdrmem` stream over a buffer of
    /// `capacity` bytes (reused across calls). Returns the bytes written, or `None`.
    pub fn encode_xdr(&mut self, capacity: usize) -> Option<usize> {
        let filter = self.decoded?;
        self.out.resize(capacity, 0);
        // libtirpc's XDR handle: an op, an ops pointer, four pointers and a u_int (48 bytes).
        let mut xdrs = [0u64; 16];
        const XDR_ENCODE: i32 = 0;
        // SAFETY: the stream writes at most `capacity` bytes into `out`; `obj` holds the value.
        unsafe {
            let x = xdrs.as_mut_ptr() as *mut c_void;
            xdrmem_create(
                x,
                self.out.as_mut_ptr() as *mut c_char,
                u32::try_from(capacity).ok()?,
                XDR_ENCODE,
            );
            if (filter.f)(x, self.obj.as_mut_ptr() as *mut c_void) == 0 {
                return None;
            }
            // x_ops->x_getpostn is the first thing we would need; the handle's `x_handy` (the
            // bytes left, at offset 40) says how much was written.
            let handy = *(x as *const u8).add(40).cast::<u32>();
            Some(capacity - handy as usize)
        }
    }

    fn release(&mut self) {
        if let Some(f) = self.decoded.take() {
            // SAFETY: `obj` holds what `f` decoded.
            unsafe { xdr_free(f.f, self.obj.as_mut_ptr() as *mut c_void) };
            self.obj.fill(0);
        }
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        self.release();
        // SAFETY: `msg` came from virNetMessageNew and is freed once.
        unsafe { virNetMessageFree(self.msg) };
    }
}
