//! The chunker: chunks within the text, the token limit and its lines; every word covered.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::chunker(data);
});
