//! Link libvirt.so.0 (its private LIBVIRT_PRIVATE_9.0.0 symbols), libtirpc and glib by soname, so no
//! -dev package is needed; the packages libvirt0, libtirpc3 and libglib2.0-0 must be installed.
fn main() {
    for lib in ["libvirt.so.0", "libtirpc.so.3", "libglib-2.0.so.0"] {
        println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
