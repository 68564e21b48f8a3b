//! A hostile hub: any answers, nothing written outside the cache, the token never leaked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::hub_response(data);
});
