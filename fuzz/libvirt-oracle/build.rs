//! Link libtirpc (xdr_free) and glib (g_malloc0) by soname, so no -dev package is needed. The oracle
//! loads libvirt.so at run time with dlopen (libvirt.so.0, or $VIRTWIRE_LIBVIRT_SO), so one fuzz
//! build runs against libvirt 9.0.0 or 11.3.0; the feature `anchor` (the benchmarks) links
//! libvirt.so.0 too. The packages libtirpc3 and libglib2.0-0 (and libvirt0) must be installed.
fn main() {
    for lib in ["libtirpc.so.3", "libglib-2.0.so.0"] {
        println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    }
    // The benchmarks' anchors call libvirt.so.0 9.0.0's private symbols directly.
    if std::env::var_os("CARGO_FEATURE_ANCHOR").is_some() {
        println!("cargo:rustc-link-lib=dylib:+verbatim=libvirt.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
