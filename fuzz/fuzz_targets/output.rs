//! The output writers: every format reads back to the rows, ids and texts written.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::output(data);
});
