//! The input reader: texts read in pieces equal the texts parsed whole.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::input(data);
});
