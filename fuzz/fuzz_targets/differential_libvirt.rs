#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    virtwire_protocol::fuzzing::differential_libvirt(data, &virtwire_libvirt_oracle::Libvirt);
});
