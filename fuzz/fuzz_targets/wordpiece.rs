//! The native WordPiece tokenizer against the `tokenizers` crate: the same ids for any text.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sembed_fuzz::wordpiece(data));
