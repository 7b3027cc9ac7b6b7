//! Coverage-guided fuzzing of the protobuf decoder (run by hand where a nightly toolchain exists):
//!
//! ```text
//! cd crates/codec/fuzz && cargo +nightly fuzz run decode ../testdata/corpus/decode
//! ```
//!
//! Whatever decodes must also re-encode without panicking. Copy any crash into
//! `../testdata/corpus/decode/`; the ordinary test suite replays that directory on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = drover_codec::decode(data) {
        let _ = drover_codec::encode(&obj);
    }
    let _ = drover_codec::decode_watch_frame(data);
});
