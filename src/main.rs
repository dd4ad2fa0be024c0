//! The `coffer` binary: a thin shell over `coffer::cli`.

/// jemalloc rather than glibc's malloc: under a long mixed load (uploads, exports,
/// SQLite, threads of the blocking pool coming and going) glibc's per-thread arenas kept
/// freed memory, and the server's RSS grew without bound while its live heap stayed
/// flat (`cargo bench --bench soak`, measured in issue 8). jemalloc returns freed pages
/// to the system after a short decay.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(coffer::cli::main());
}
