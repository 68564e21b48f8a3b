//! The safetensors header (tensor table, dtypes, shapes, offsets) of a model folder: loads or errors.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::safetensors(data);
});
