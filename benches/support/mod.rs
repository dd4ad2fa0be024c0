//! Helpers shared by the benchmarks: arguments, memory readings, throughput.
#![allow(dead_code)] // each benchmark uses a subset

/// The numeric value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM:` is the peak RSS, `VmRSS:` the current).
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Peak RSS of another process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmHWM:")
}

pub fn mib_s(bytes: u64, d: std::time::Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64()
}
