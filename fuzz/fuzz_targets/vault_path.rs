//! `cargo +nightly fuzz run vault_path`: the body in `bodies/vault_path.rs`, shared with the replay test.
#![no_main]

#[path = "../bodies/vault_path.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
