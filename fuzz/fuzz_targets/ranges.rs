//! `cargo +nightly fuzz run ranges`: the body in `bodies/ranges.rs`, shared with the replay test.
#![no_main]

#[path = "../bodies/world.rs"]
mod world;
#[path = "../bodies/ranges.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
