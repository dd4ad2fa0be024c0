//! The `coffer` binary: a thin shell over `coffer::cli`.

fn main() {
    std::process::exit(coffer::cli::main());
}
