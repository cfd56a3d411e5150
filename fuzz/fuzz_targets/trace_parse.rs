#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| virtwire_conformance::fuzzing::trace_parse(data));
