//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the same
//! bodies the fuzz targets run (`fuzz/bodies`), on stable and on every `cargo test`: each
//! seed and each input that once crashed a target (saved there as a regression) stays
//! checked, without nightly or libFuzzer.

#[path = "../../../fuzz/bodies/archive.rs"]
mod archive;
#[path = "../../../fuzz/bodies/http_app.rs"]
mod http_app;
#[path = "../../../fuzz/bodies/ranges.rs"]
mod ranges;
#[path = "../../../fuzz/bodies/records.rs"]
mod records;
#[path = "../../../fuzz/bodies/vault_path.rs"]
mod vault_path;
#[path = "../../../fuzz/bodies/world.rs"]
mod world;

use std::path::PathBuf;

/// Runs `body` on every file of the target's corpus; fails if the corpus is missing or
/// small (a replay of nothing would pass whatever the code did).
fn replay(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "{target}: only {} corpus files",
        files.len()
    );
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn vault_path_corpus() {
    replay("vault_path", vault_path::run);
}

#[test]
fn ranges_corpus() {
    replay("ranges", ranges::run);
}

#[test]
fn records_corpus() {
    replay("records", records::run);
}

#[test]
fn archive_corpus() {
    replay("archive", archive::run);
}

#[test]
fn http_app_corpus() {
    replay("http_app", http_app::run);
}
