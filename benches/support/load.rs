//! A closed-loop HTTP/1.1 load generator over keep-alive connections (one thread each,
//! so the figures include no client-side scheduling of our own), and the `@row` lines
//! that `benches/run` gathers into its table and JSON.
#![allow(dead_code)] // each benchmark uses a subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Latencies of a finished load, sorted, and its wall time.
pub struct Load {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Load {
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    pub fn pct_ms(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1e3
    }
    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// One keep-alive connection that sends requests and reads whole responses.
pub struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    /// Sends `head` (ending in the blank line) and `body`; returns the status code after
    /// reading the whole response.
    pub fn send(&mut self, head: &[u8], body: &[u8]) -> u16 {
        self.stream.write_all(head).unwrap();
        self.stream.write_all(body).unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        let code = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {status:?}"));
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut sink = vec![0u8; len];
        self.reader.read_exact(&mut sink).unwrap();
        code
    }
}

/// Runs `conns` connections, each sending `per_conn` requests made by
/// `request(connection, i)` = (head, body), and checks every status is `expect`.
pub fn run<F>(addr: SocketAddr, conns: usize, per_conn: usize, expect: u16, request: F) -> Load
where
    F: Fn(usize, usize) -> (Vec<u8>, Vec<u8>) + Send + Sync,
{
    let request = &request;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|c| {
                s.spawn(move || {
                    let mut conn = Conn::open(addr);
                    let mut out = Vec::with_capacity(per_conn);
                    for i in 0..per_conn {
                        let (head, body) = request(c, i);
                        let t = Instant::now();
                        let code = conn.send(&head, &body);
                        out.push(t.elapsed());
                        assert_eq!(code, expect, "{}", String::from_utf8_lossy(&head));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    Load { latencies, elapsed }
}

/// One line of the suite's table: Coffer's figure, the baseline's (when it ran) and the
/// ratio oriented so that above 1 means Coffer is better.
pub fn row(
    workload: &str,
    coffer: f64,
    unit: &str,
    baseline: &str,
    baseline_value: Option<f64>,
    higher_is_better: bool,
) {
    let ratio = baseline_value
        .filter(|b| *b > 0.0 && coffer > 0.0)
        .map(|b| {
            if higher_is_better {
                coffer / b
            } else {
                b / coffer
            }
        });
    let fmt = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    };
    println!(
        "@row\t{workload}\t{}\t{unit}\t{baseline}\t{}\t{}",
        fmt(coffer),
        baseline_value.map_or("-".into(), fmt),
        ratio.map_or("-".into(), |r| format!("{r:.2}")),
    );
}

/// Whether a program is on `PATH`.
pub fn installed(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Open descriptors of another process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resets a process's peak RSS (`VmHWM`) so the next reading covers one workload.
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// CPU ticks (user + system) a process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state (3rd).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Waits (at most two minutes) until a server has gone quiet: its start-up work (the
/// lifecycle pass over every tenant) would otherwise be measured with the first workload.
pub fn wait_idle(pid: u32) {
    let mut quiet = 0;
    for _ in 0..600 {
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_millis(200));
        // Under 10% of one core over the interval (ticks are 10 ms).
        if cpu_ticks(pid) - before < 2 {
            quiet += 1;
            if quiet == 3 {
                return;
            }
        } else {
            quiet = 0;
        }
    }
}
