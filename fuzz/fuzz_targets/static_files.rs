//! A Model2Vec folder with one file replaced by the input: loads or errors, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::static_files(data);
});
