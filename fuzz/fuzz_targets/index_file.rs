//! A corrupted index database or scan file: errors, never a crash or a wrong hit.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::index_file(data);
});
