//! `cargo +nightly fuzz run http_app`: the body in `bodies/http_app.rs`, shared with the replay test.
#![no_main]

#[path = "../bodies/world.rs"]
mod world;
#[path = "../bodies/http_app.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
