#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| virtwire_protocol::fuzzing::stream_reassembly(data));
