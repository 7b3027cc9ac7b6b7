#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| drover_apiserver::fuzzing::crd(data));
