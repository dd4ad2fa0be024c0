//! `cargo +nightly fuzz run archive`: the body in `bodies/archive.rs`, shared with the replay test.
#![no_main]

#[path = "../bodies/world.rs"]
mod world;
#[path = "../bodies/archive.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
