//! Any request body on any route of a real server: a 2xx/4xx answer, never a 5xx or a dropped connection.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sembed_fuzz::server_request(data);
});
