//! Link libtirpc (xdr_free) and glib (g_malloc0) by soname, so no -dev package is needed; libvirt.so
//! itself is loaded at run time with dlopen (libvirt.so.0, or $VIRTWIRE_LIBVIRT_SO), so one build
//! runs against libvirt 9.0.0 or 11.3.0. The packages libtirpc3 and libglib2.0-0 must be installed.
fn main() {
    for lib in ["libtirpc.so.3", "libglib-2.0.so.0"] {
        println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
