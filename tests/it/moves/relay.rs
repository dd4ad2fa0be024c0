//! A relay that cuts a node-to-node transfer part-way: the node holding a tenant dying
//! mid-copy, as the node pulling from it sees it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// A relay to `upstream` that passes the request and, for requests whose method is
/// `cut` (`GET`: the live copy, `POST`: the fenced one), at most `limit` bytes of the
/// answer, then cuts both connections: the node holding a tenant dying mid-transfer, as
/// the node pulling from it sees it.
pub(super) fn cutting_relay(upstream: String, cut: &'static str, limit: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let upstream = upstream.clone();
            // Each connection on its own: a whole answer's connection stays open (kept
            // alive) while the next request comes in on another.
            std::thread::spawn(move || relay_one(client, &upstream, cut, limit));
        }
    });
    addr
}

fn relay_one(mut client: TcpStream, upstream: &str, cut: &str, limit: usize) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let mut method = [0u8; 4];
    if client.read_exact(&mut method).is_err() || server.write_all(&method).is_err() {
        return;
    }
    let limit = if method.starts_with(cut.as_bytes()) {
        limit
    } else {
        usize::MAX
    };
    let (mut client_in, mut server_out) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
    });
    let mut passed = 0;
    let mut buf = vec![0u8; 8192];
    while passed < limit {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n.min(limit - passed),
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        passed += n;
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = server.shutdown(std::net::Shutdown::Both);
}
