//! The SOCKS5 port (RFC 1928): no authentication, CONNECT only, IPv4 addresses and names.
//!
//! The sandbox needs no credentials: only it can reach the port. BIND and UDP ASSOCIATE are not
//! offered (they would open inbound paths the policy does not describe).

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Instant;

use super::{open, read_exact_by, splice, Event, Gw, Refusal, Target, HEAD_TIMEOUT};

const SUCCEEDED: u8 = 0x00;
const GENERAL_FAILURE: u8 = 0x01;
const NOT_ALLOWED: u8 = 0x02;
const NETWORK_UNREACHABLE: u8 = 0x03;
const HOST_UNREACHABLE: u8 = 0x04;
const REFUSED: u8 = 0x05;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_NOT_SUPPORTED: u8 = 0x08;

/// Serve one client of the SOCKS5 port.
pub(super) fn handle(gw: &Gw, mut c: TcpStream) {
  let deadline = Instant::now() + HEAD_TIMEOUT;
  let _ = negotiate(gw, &mut c, deadline);
}

fn reply(c: &mut TcpStream, code: u8, bound: Option<SocketAddr>) -> io::Result<()> {
  let (ip, port) = match bound {
    Some(SocketAddr::V4(a)) => (*a.ip(), a.port()),
    _ => (Ipv4Addr::UNSPECIFIED, 0),
  };
  let mut r = vec![5, code, 0, 1];
  r.extend_from_slice(&ip.octets());
  r.extend_from_slice(&port.to_be_bytes());
  c.write_all(&r)
}

/// What a client asked for.
enum Request {
  Connect(String, u16),
  Refuse(u8),
}

/// Method selection and the request; then connect (or refuse) and splice.
fn negotiate(gw: &Gw, c: &mut TcpStream, deadline: Instant) -> io::Result<()> {
  let mut hdr = [0u8; 2];
  read_exact_by(c, &mut hdr, deadline)?;
  if hdr[0] != 5 {
    return Ok(());
  }
  let mut methods = vec![0u8; hdr[1] as usize];
  read_exact_by(c, &mut methods, deadline)?;
  if !methods.contains(&0) {
    return c.write_all(&[5, 0xff]);
  }
  c.write_all(&[5, 0])?;
  let (host, port) = match read_request(c, deadline)? {
    Request::Connect(h, p) => (h, p),
    Request::Refuse(code) => return reply(c, code, None),
  };
  let Some(target) = Target::parse(&host) else {
    gw.event(Event::new("socks", &host, port).denied("resolve", "not a valid host name"));
    return reply(c, HOST_UNREACHABLE, None);
  };
  let up = match open(&gw.policy(), &target, port) {
    Ok(o) => o,
    Err(r) => {
      gw.event(r.event("socks", &host, port));
      return reply(c, code_of(&r), None);
    }
  };
  gw.event(Event::new("socks", &host, port).ip(Some(up.ip)).allowed(&up.rule));
  reply(c, SUCCEEDED, up.stream.local_addr().ok())?;
  let client = c.try_clone()?;
  splice(client, up.stream, &[]);
  Ok(())
}

/// The request: VER CMD RSV ATYP DST.ADDR DST.PORT.
fn read_request(c: &mut TcpStream, deadline: Instant) -> io::Result<Request> {
  let mut h = [0u8; 4];
  read_exact_by(c, &mut h, deadline)?;
  if h[0] != 5 {
    return Ok(Request::Refuse(GENERAL_FAILURE));
  }
  let host = match h[3] {
    1 => {
      let mut a = [0u8; 4];
      read_exact_by(c, &mut a, deadline)?;
      Ipv4Addr::from(a).to_string()
    }
    3 => {
      let mut n = [0u8; 1];
      read_exact_by(c, &mut n, deadline)?;
      let mut name = vec![0u8; n[0] as usize];
      read_exact_by(c, &mut name, deadline)?;
      String::from_utf8_lossy(&name).into_owned()
    }
    _ => return Ok(Request::Refuse(ADDRESS_NOT_SUPPORTED)),
  };
  let mut p = [0u8; 2];
  read_exact_by(c, &mut p, deadline)?;
  if h[1] != 1 {
    return Ok(Request::Refuse(COMMAND_NOT_SUPPORTED));
  }
  Ok(Request::Connect(host, u16::from_be_bytes(p)))
}

/// The reply code for a refusal.
fn code_of(r: &Refusal) -> u8 {
  match r {
    Refusal::Denied { .. } => NOT_ALLOWED,
    Refusal::Resolve(_) => HOST_UNREACHABLE,
    Refusal::Connect { err, .. } => match err.kind() {
      io::ErrorKind::ConnectionRefused => REFUSED,
      io::ErrorKind::TimedOut => HOST_UNREACHABLE,
      _ => match err.raw_os_error() {
        Some(libc::ENETUNREACH) => NETWORK_UNREACHABLE,
        Some(libc::EHOSTUNREACH) => HOST_UNREACHABLE,
        _ => GENERAL_FAILURE,
      },
    },
  }
}
