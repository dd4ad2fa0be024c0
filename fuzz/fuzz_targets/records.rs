//! `cargo +nightly fuzz run records`: the body in `bodies/records.rs`, shared with the replay test.
#![no_main]

#[path = "../bodies/world.rs"]
mod world;
#[path = "../bodies/records.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
