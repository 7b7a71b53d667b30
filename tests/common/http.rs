//! Raw HTTP/1.1 over a socket, for tests that must control every byte and
//! every timeout (the hostile and trust tests), not just the happy path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// GET with `Connection: close`: (status, body), or why not.
pub fn http_get(addr: &str, path: &str, limit: Duration) -> Result<(u16, String), String> {
    http_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        limit,
    )
}

/// Sends `request` as it is and reads to the end: (status, body), or why not.
pub fn http_raw(addr: &str, request: &str, limit: Duration) -> Result<(u16, String), String> {
    let sock: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sock, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("read: {e} (after {} bytes)", buf.len()))?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
