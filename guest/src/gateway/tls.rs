//! The server name (SNI) of a TLS ClientHello, read from the first bytes of a CONNECT tunnel.
//!
//! A client allowed to CONNECT to `allowed.com` could otherwise ask a shared front (a CDN) for
//! another site by its SNI; the gateway checks the SNI against the CONNECT host. Only the first
//! record is read (a ClientHello fits in one; real clients do not fragment it), so a handshake
//! record whose ClientHello does not fit in it is refused rather than let through unchecked.

use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long the gateway waits for the client's first bytes; a client that sends nothing (the
/// server speaks first) is let through unchecked after it.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RECORD: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Hello {
  /// Not TLS (or nothing was sent): nothing to check.
  NotTls,
  /// A ClientHello without a server name.
  NoSni,
  /// The server name, lowercase, without a trailing dot.
  Sni(String),
  /// A handshake record that does not hold a whole ClientHello.
  Incomplete,
  /// Not a well-formed ClientHello.
  Malformed,
}

/// The client's first bytes: everything up to the end of the first TLS record, or whatever
/// arrived when the first byte is not a handshake record or when `HELLO_TIMEOUT` passed.
/// `buf` holds what was already read (after an HTTP head).
pub(super) fn read_first(c: &mut TcpStream, mut buf: Vec<u8>) -> Vec<u8> {
  let deadline = Instant::now() + HELLO_TIMEOUT;
  let mut chunk = vec![0u8; 4096];
  loop {
    let want = match wanted(&buf) {
      Some(n) if buf.len() < n => n - buf.len(),
      _ => return buf,
    };
    let n = want.min(chunk.len());
    match super::read_by(c, &mut chunk[..n], deadline) {
      Ok(0) | Err(_) => return buf,
      Ok(k) => buf.extend_from_slice(&chunk[..k]),
    }
  }
}

/// How many bytes make the first record complete (None: stop reading, not a handshake record
/// or an impossible length).
fn wanted(buf: &[u8]) -> Option<usize> {
  if buf.is_empty() {
    return Some(1);
  }
  if buf[0] != 0x16 {
    return None;
  }
  if buf.len() < 5 {
    return Some(5);
  }
  let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
  if len > MAX_RECORD {
    return None;
  }
  Some(5 + len)
}

/// A bounds-checked reader over a byte slice.
struct Cur<'a> {
  b: &'a [u8],
}

impl<'a> Cur<'a> {
  fn take(&mut self, n: usize) -> Option<&'a [u8]> {
    if n > self.b.len() {
      return None;
    }
    let (h, t) = self.b.split_at(n);
    self.b = t;
    Some(h)
  }

  fn u8(&mut self) -> Option<usize> {
    self.take(1).map(|b| b[0] as usize)
  }

  fn u16(&mut self) -> Option<usize> {
    self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
  }

  fn u24(&mut self) -> Option<usize> {
    self.take(3).map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
  }

  /// A sub-reader over the next `n` bytes.
  fn sub(&mut self, n: usize) -> Option<Cur<'a>> {
    self.take(n).map(|b| Cur { b })
  }
}

/// What the first bytes of a tunnel are.
pub(super) fn parse(buf: &[u8]) -> Hello {
  if buf.first() != Some(&0x16) {
    return Hello::NotTls;
  }
  if buf.len() < 5 {
    return Hello::Incomplete;
  }
  let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
  if buf[1] != 3 || len > MAX_RECORD {
    return Hello::Malformed;
  }
  let Some(record) = buf.get(5..5 + len) else { return Hello::Incomplete };
  let mut c = Cur { b: record };
  match (c.u8(), c.u24()) {
    (Some(1), Some(n)) if n <= c.b.len() => match client_hello(&mut c.sub(n).unwrap_or(Cur { b: &[] })) {
      Some(h) => h,
      None => Hello::Malformed,
    },
    (Some(1), Some(_)) => Hello::Incomplete,
    (Some(_), Some(_)) => Hello::Malformed,
    _ => Hello::Incomplete,
  }
}

/// The body of a ClientHello (after its 4-byte handshake header).
fn client_hello(c: &mut Cur) -> Option<Hello> {
  c.take(2 + 32)?; // legacy_version, random
  let n = c.u8()?;
  c.take(n)?; // session id
  let n = c.u16()?;
  c.take(n)?; // cipher suites
  let n = c.u8()?;
  c.take(n)?; // compression methods
  if c.b.is_empty() {
    return Some(Hello::NoSni);
  }
  let n = c.u16()?;
  let mut exts = c.sub(n)?;
  while !exts.b.is_empty() {
    let ty = exts.u16()?;
    let n = exts.u16()?;
    let mut data = exts.sub(n)?;
    if ty == 0 {
      return server_name(&mut data);
    }
  }
  Some(Hello::NoSni)
}

/// The server_name extension: a list of (type, name); the host_name (type 0) entry.
fn server_name(c: &mut Cur) -> Option<Hello> {
  let n = c.u16()?;
  let mut list = c.sub(n)?;
  while !list.b.is_empty() {
    let ty = list.u8()?;
    let n = list.u16()?;
    let name = list.take(n)?;
    if ty == 0 {
      let s = std::str::from_utf8(name).ok()?;
      let s = s.strip_suffix('.').unwrap_or(s);
      return Some(Hello::Sni(s.to_ascii_lowercase()));
    }
  }
  Some(Hello::NoSni)
}

/// A ClientHello record as a client would send it, for tests (with `sni` as its server name).
#[cfg(test)]
pub(crate) fn client_hello_record(sni: Option<&str>) -> Vec<u8> {
  let mut body = vec![0x03, 0x03];
  body.extend_from_slice(&[0x11; 32]); // random
  body.push(32);
  body.extend_from_slice(&[0x22; 32]); // session id
  body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]); // cipher suites
  body.extend_from_slice(&[1, 0]); // compression: null
  let mut exts = Vec::new();
  // supported_versions: TLS 1.3
  exts.extend_from_slice(&[0x00, 0x2b, 0, 3, 2, 0x03, 0x04]);
  if let Some(s) = sni {
    let n = s.len() as u16;
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&(n + 5).to_be_bytes());
    exts.extend_from_slice(&(n + 3).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&n.to_be_bytes());
    exts.extend_from_slice(s.as_bytes());
  }
  // supported_groups: x25519
  exts.extend_from_slice(&[0x00, 0x0a, 0, 4, 0, 2, 0x00, 0x1d]);
  body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
  body.extend_from_slice(&exts);
  let mut hs = vec![1];
  hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
  hs.extend_from_slice(&body);
  let mut rec = vec![0x16, 0x03, 0x01];
  rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
  rec.extend_from_slice(&hs);
  rec
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A ClientHello for example.com laid out as OpenSSL 3 sends it (record version 3.1, its
  /// TLS 1.3 + 1.2 cipher list, point formats, groups, supported_versions), written by hand and
  /// shortened to four extensions (no key_share, no padding).
  const OPENSSL_STYLE_HELLO: &str = "16030100be010000ba0303a4e3d1b2b6c9f0c5a7e9b1d4f2a6c8e0b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3\
    20e2c4a6b8d0f2e4c6a8b0d2f4e6c8a0b2d4f6e8c0a2b4d6f8e0c2a4b6d8f0e2c4\
    003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff\
    01000033\
    00000010000e00000b6578616d706c652e636f6d\
    000b000403000102\
    000a000c000a001d0017001e00190018\
    002b0003020304";

  fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
  }

  #[test]
  fn sni_of_a_real_client_hello() {
    let b = hex(OPENSSL_STYLE_HELLO);
    assert_eq!(parse(&b), Hello::Sni("example.com".into()));
    assert_eq!(wanted(&b), Some(b.len()));
  }

  #[test]
  fn sni_of_built_hellos() {
    assert_eq!(parse(&client_hello_record(Some("A.Example.COM."))), Hello::Sni("a.example.com".into()));
    assert_eq!(parse(&client_hello_record(None)), Hello::NoSni);
  }

  #[test]
  fn odd_input() {
    assert_eq!(parse(b""), Hello::NotTls);
    assert_eq!(parse(b"SSH-2.0-OpenSSH\r\n"), Hello::NotTls);
    assert_eq!(parse(&[0x16, 3]), Hello::Incomplete);
    let full = client_hello_record(Some("example.com"));
    for cut in 5..full.len() {
      let mut b = full[..cut].to_vec();
      assert_eq!(parse(&b), Hello::Incomplete, "cut at {cut}");
      // the record claims to be complete but the ClientHello is cut: split across records
      b[3..5].copy_from_slice(&((cut - 5) as u16).to_be_bytes());
      assert!(matches!(parse(&b), Hello::Incomplete | Hello::Malformed), "cut at {cut}");
    }
    let mut bad = full.clone();
    bad[5] = 2; // ServerHello
    assert_eq!(parse(&bad), Hello::Malformed);
    // garbage never panics
    let mut x: u32 = 1;
    for _ in 0..2000 {
      let mut b = full.clone();
      for _ in 0..4 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        let i = (x as usize >> 8) % b.len();
        b[i] = (x >> 16) as u8;
      }
      let _ = parse(&b);
    }
  }
}
