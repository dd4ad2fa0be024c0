//! HAProxy's runtime API, for the one thing Coffer asks of it: a map from tenant slug to
//! the node serving it (`deploy/haproxy/`), kept equal to the placements without a reload
//! (a reload would not drop connections either, but would re-read every map from disk).
//!
//! The protocol is HAProxy's text one: a connection per command, the answer read to the
//! end. `show map` lists the map; `add map`, `set map` and `del map` change one entry.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

/// Where HAProxy's runtime API listens: `unix:/run/haproxy/admin.sock` or `host:port`
/// (a `stats socket ... level admin` line).
#[derive(Debug, Clone)]
pub enum RuntimeApi {
    Unix(std::path::PathBuf),
    Tcp(String),
}

/// A slow or stuck HAProxy must not hold a sync forever.
const TIMEOUT: Duration = Duration::from_secs(5);

impl RuntimeApi {
    pub fn parse(text: &str) -> RuntimeApi {
        match text.strip_prefix("unix:") {
            Some(path) => RuntimeApi::Unix(path.into()),
            None => RuntimeApi::Tcp(text.to_owned()),
        }
    }

    /// Sends one command and returns the whole answer.
    pub fn command(&self, command: &str) -> std::io::Result<String> {
        fn exchange(mut stream: impl Read + Write, command: &str) -> std::io::Result<String> {
            stream.write_all(command.as_bytes())?;
            stream.write_all(b"\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        }
        match self {
            RuntimeApi::Unix(path) => {
                let stream = std::os::unix::net::UnixStream::connect(path)?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                exchange(stream, command)
            }
            RuntimeApi::Tcp(addr) => {
                let stream = std::net::TcpStream::connect(addr)?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                exchange(stream, command)
            }
        }
    }

    /// The entries of `map` (a map file HAProxy loaded), key to value.
    pub fn show_map(&self, map: &str) -> std::io::Result<BTreeMap<String, String>> {
        let answer = self.command(&format!("show map {map}"))?;
        let mut entries = BTreeMap::new();
        for line in answer.lines().filter(|l| !l.trim().is_empty()) {
            // `<reference> <key> <value>`
            let mut fields = line.split_whitespace();
            match (fields.next(), fields.next(), fields.next()) {
                (Some(reference), Some(key), Some(value)) if reference.starts_with("0x") => {
                    entries.insert(key.to_owned(), value.to_owned());
                }
                _ => return Err(refused(&format!("show map {map}"), &answer)),
            }
        }
        Ok(entries)
    }

    /// Makes `map` equal to `wanted` with one command per difference; returns how many
    /// entries changed.
    pub fn sync_map(&self, map: &str, wanted: &BTreeMap<String, String>) -> std::io::Result<usize> {
        let current = self.show_map(map)?;
        let mut commands = Vec::new();
        for (key, value) in wanted {
            match current.get(key) {
                Some(now) if now == value => {}
                Some(_) => commands.push(format!("set map {map} {key} {value}")),
                None => commands.push(format!("add map {map} {key} {value}")),
            }
        }
        for key in current.keys().filter(|k| !wanted.contains_key(*k)) {
            commands.push(format!("del map {map} {key}"));
        }
        for command in &commands {
            let answer = self.command(command)?;
            if !answer.trim().is_empty() {
                return Err(refused(command, &answer));
            }
        }
        Ok(commands.len())
    }
}

fn refused(command: &str, answer: &str) -> std::io::Error {
    std::io::Error::other(format!("HAProxy refused `{command}`: {}", answer.trim()))
}
