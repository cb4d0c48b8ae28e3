//! DNS: the gateway's own resolver (a minimal A-query client) and the responder the sandbox
//! uses as its nameserver.
//!
//! The client does not use getaddrinfo: a static glibc cannot load its NSS modules reliably. It
//! asks the nameservers of the gateway container's /etc/resolv.conf directly over UDP (random
//! query id, the answer must echo the id and the question), follows a CNAME chain inside the
//! answer and keeps at most `MAX_ADDRS` A records. No search domains: single-label names are
//! asked as they are (Docker's embedded DNS answers container names that way).
//!
//! The responder answers an A query only with addresses the policy lets the sandbox reach on
//! some port, and NXDOMAIN otherwise, so a denied name does not even resolve; other types of an
//! allowed name get an empty NOERROR (IPv4 only). It is a convenience, not the enforcement:
//! every connection is decided again by the proxies.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Event, Gw};
use crate::egress::{normalize_name, Policy};

const TRY_TIMEOUT: Duration = Duration::from_secs(2);
const TRIES: usize = 2;
const MAX_ADDRS: usize = 16;
/// Queries being answered at once; more are dropped (the client retries).
const MAX_INFLIGHT: usize = 64;
const TTL: u32 = 30;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;
const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ResolveError {
  NotFound,
  Failed(String),
}

impl fmt::Display for ResolveError {
  fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
    match self {
      ResolveError::NotFound => write!(f, "no such name (or no IPv4 address)"),
      ResolveError::Failed(s) => write!(f, "{s}"),
    }
  }
}

/// The addresses of `name`: its `extraHosts` entry, itself if it is an IPv4 literal, else what
/// the nameservers of /etc/resolv.conf answer.
pub(super) fn resolve(policy: &Policy, name: &str) -> Result<Vec<Ipv4Addr>, ResolveError> {
  if let Some(ip) = policy.resolve_static(name) {
    return Ok(vec![ip]);
  }
  if let Ok(ip) = name.parse::<Ipv4Addr>() {
    return Ok(vec![ip]);
  }
  let servers = nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
  if servers.is_empty() {
    return Err(ResolveError::Failed("no IPv4 nameserver in /etc/resolv.conf".to_string()));
  }
  lookup(&servers, name, TRY_TIMEOUT)
}

/// The IPv4 `nameserver` lines of a resolv.conf (at most 3, as libc).
fn nameservers(conf: &str) -> Vec<SocketAddr> {
  conf
    .lines()
    .filter_map(|l| {
      let mut w = l.split_whitespace();
      match (w.next(), w.next()) {
        (Some("nameserver"), Some(a)) => a.parse::<Ipv4Addr>().ok(),
        _ => None,
      }
    })
    .take(3)
    .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, 53)))
    .collect()
}

/// Ask `servers` in turn, `TRIES` rounds; the first definite answer wins.
pub(super) fn lookup(servers: &[SocketAddr], name: &str, timeout: Duration) -> Result<Vec<Ipv4Addr>, ResolveError> {
  let mut last = String::from("no nameserver");
  for _ in 0..TRIES {
    for s in servers {
      match query_once(*s, name, timeout) {
        Ok(v) if v.is_empty() => return Err(ResolveError::NotFound),
        Ok(v) => return Ok(v),
        Err(ResolveError::NotFound) => return Err(ResolveError::NotFound),
        Err(ResolveError::Failed(e)) => last = format!("nameserver {s}: {e}"),
      }
    }
  }
  Err(ResolveError::Failed(last))
}

fn random_id() -> u16 {
  let mut b = [0u8; 2];
  let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 2, 0) };
  if n == 2 {
    return u16::from_ne_bytes(b);
  }
  let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
  (t ^ (t >> 16)) as u16
}

fn query_once(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<Ipv4Addr>, ResolveError> {
  let fail = |e: std::io::Error| ResolveError::Failed(e.to_string());
  let sock = UdpSocket::bind("0.0.0.0:0").map_err(fail)?;
  sock.connect(server).map_err(fail)?;
  let id = random_id();
  let q = encode_query(id, name, TYPE_A).ok_or_else(|| ResolveError::Failed("invalid name".to_string()))?;
  sock.send(&q).map_err(fail)?;
  let deadline = Instant::now() + timeout;
  let mut buf = vec![0u8; 4096];
  loop {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
      return Err(ResolveError::Failed("timed out".to_string()));
    }
    sock.set_read_timeout(Some(left)).map_err(fail)?;
    let n = match sock.recv(&mut buf) {
      Ok(n) => n,
      Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => continue,
      Err(e) => return Err(fail(e)),
    };
    match parse_response(&buf[..n], id, name) {
      Answer::Ignore => continue,
      Answer::Addrs(v) => return Ok(v),
      Answer::NotFound => return Err(ResolveError::NotFound),
      Answer::Failed(e) => return Err(ResolveError::Failed(e)),
    }
  }
}

/// The wire form of a name (None if it is not a valid domain name).
fn encode_name(name: &str) -> Option<Vec<u8>> {
  let n = normalize_name(name)?;
  let mut out = Vec::with_capacity(n.len() + 2);
  for label in n.split('.') {
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
  }
  out.push(0);
  Some(out)
}

/// A query for `name` with recursion desired.
pub(super) fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
  let mut q = Vec::with_capacity(64);
  q.extend_from_slice(&id.to_be_bytes());
  q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  q.extend_from_slice(&encode_name(name)?);
  q.extend_from_slice(&qtype.to_be_bytes());
  q.extend_from_slice(&CLASS_IN.to_be_bytes());
  Some(q)
}

fn u16_at(m: &[u8], i: usize) -> Option<u16> {
  Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]))
}

/// The name at `pos` (lowercase labels joined by '.', compression pointers followed, at most
/// 255 bytes and 128 jumps) and the position after it.
fn read_name(m: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
  let mut name = Vec::new();
  let mut end = None;
  for _ in 0..128 {
    let len = *m.get(pos)? as usize;
    match len {
      0 => {
        return Some((name, end.unwrap_or(pos + 1)));
      }
      l if l & 0xc0 == 0xc0 => {
        let ptr = (u16_at(m, pos)? & 0x3fff) as usize;
        end.get_or_insert(pos + 2);
        pos = ptr;
      }
      l if l < 64 => {
        let label = m.get(pos + 1..pos + 1 + l)?;
        if !name.is_empty() {
          name.push(b'.');
        }
        name.extend(label.iter().map(|b| b.to_ascii_lowercase()));
        if name.len() > 255 {
          return None;
        }
        pos += 1 + l;
      }
      _ => return None,
    }
  }
  None
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
  /// Not the answer to our query (another id, another question): keep waiting.
  Ignore,
  Addrs(Vec<Ipv4Addr>),
  NotFound,
  Failed(String),
}

/// Read a response to the A query `id` for `name`.
fn parse_response(m: &[u8], id: u16, name: &str) -> Answer {
  let want = match normalize_name(name) {
    Some(n) => n.into_bytes(),
    None => return Answer::Failed("invalid name".to_string()),
  };
  let (Some(rid), Some(flags), Some(qd), Some(an)) = (u16_at(m, 0), u16_at(m, 2), u16_at(m, 4), u16_at(m, 6)) else {
    return Answer::Ignore;
  };
  if rid != id || flags & 0x8000 == 0 || qd != 1 {
    return Answer::Ignore;
  }
  let Some((qname, pos)) = read_name(m, 12) else { return Answer::Ignore };
  if qname != want || u16_at(m, pos) != Some(TYPE_A) || u16_at(m, pos + 2) != Some(CLASS_IN) {
    return Answer::Ignore;
  }
  match flags & 0x000f {
    NOERROR => {}
    NXDOMAIN => return Answer::NotFound,
    rc => return Answer::Failed(format!("answered with rcode {rc}")),
  }
  match records(m, pos + 4, an) {
    Some(rrs) => Answer::Addrs(follow(&want, &rrs)),
    None => Answer::Failed("malformed answer".to_string()),
  }
}

/// An answer record we care about.
enum Rr {
  A(Vec<u8>, Ipv4Addr),
  Cname(Vec<u8>, Vec<u8>),
}

/// The A and CNAME records of the answer section (None if it is malformed).
fn records(m: &[u8], mut pos: usize, count: u16) -> Option<Vec<Rr>> {
  let mut out = Vec::new();
  for _ in 0..count {
    let (owner, p) = read_name(m, pos)?;
    let (ty, class, len) = (u16_at(m, p)?, u16_at(m, p + 2)?, u16_at(m, p + 8)? as usize);
    let data = p + 10;
    let rdata = m.get(data..data + len)?;
    match (ty, class) {
      (TYPE_A, CLASS_IN) if len == 4 => out.push(Rr::A(owner, Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))),
      (TYPE_CNAME, CLASS_IN) => out.push(Rr::Cname(owner, read_name(m, data)?.0)),
      _ => {}
    }
    pos = data + len;
  }
  Some(out)
}

/// The addresses of `name` in `rrs`, through its CNAME chain (at most 16 links).
fn follow(name: &[u8], rrs: &[Rr]) -> Vec<Ipv4Addr> {
  let mut chain: Vec<&[u8]> = vec![name];
  for _ in 0..16 {
    let last = chain[chain.len() - 1];
    let next = rrs.iter().find_map(|r| match r {
      Rr::Cname(o, t) if o.as_slice() == last && !chain.contains(&t.as_slice()) => Some(t.as_slice()),
      _ => None,
    });
    match next {
      Some(t) => chain.push(t),
      None => break,
    }
  }
  let mut out = Vec::new();
  for r in rrs {
    if let Rr::A(o, ip) = r {
      if chain.contains(&o.as_slice()) && !out.contains(ip) && out.len() < MAX_ADDRS {
        out.push(*ip);
      }
    }
  }
  out
}

/// A query to the responder.
#[derive(Debug)]
struct Query {
  id: u16,
  rd: bool,
  /// The question section as received (echoed in the answer, the client's case kept).
  question: Vec<u8>,
  name: Vec<u8>,
  qtype: u16,
  qclass: u16,
}

/// Parse a query: Err(Some(id)) for a malformed one worth a FORMERR, Err(None) to drop it.
fn parse_query(m: &[u8]) -> Result<Query, Option<u16>> {
  let (Some(id), Some(flags), Some(qd)) = (u16_at(m, 0), u16_at(m, 2), u16_at(m, 4)) else { return Err(None) };
  if m.len() > 512 || flags & 0x8000 != 0 {
    return Err(None); // oversized, or a response (never answer those: no loops)
  }
  if flags & 0x7800 != 0 || qd != 1 {
    return Err(Some(id));
  }
  // the question name, without compression (nothing precedes it to point to)
  let mut pos = 12;
  loop {
    let len = *m.get(pos).ok_or(Some(id))? as usize;
    if len == 0 {
      pos += 1;
      break;
    }
    if len >= 64 || pos - 12 > 255 {
      return Err(Some(id));
    }
    pos += 1 + len;
  }
  let (Some(qtype), Some(qclass)) = (u16_at(m, pos), u16_at(m, pos + 2)) else { return Err(Some(id)) };
  let (name, _) = read_name(m, 12).ok_or(Some(id))?;
  Ok(Query { id, rd: flags & 0x0100 != 0, question: m[12..pos + 4].to_vec(), name, qtype, qclass })
}

/// A response: header, the question (if any), A records pointing at the question's name.
fn build_response(id: u16, rd: bool, rcode: u16, question: Option<&[u8]>, addrs: &[Ipv4Addr]) -> Vec<u8> {
  let mut r = Vec::with_capacity(64 + addrs.len() * 16);
  r.extend_from_slice(&id.to_be_bytes());
  let flags: u16 = 0x8000 | if rd { 0x0100 } else { 0 } | 0x0080 | rcode;
  r.extend_from_slice(&flags.to_be_bytes());
  r.extend_from_slice(&(question.is_some() as u16).to_be_bytes());
  r.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
  r.extend_from_slice(&[0, 0, 0, 0]);
  if let Some(q) = question {
    r.extend_from_slice(q);
  }
  for ip in addrs {
    r.extend_from_slice(&[0xc0, 0x0c]);
    r.extend_from_slice(&TYPE_A.to_be_bytes());
    r.extend_from_slice(&CLASS_IN.to_be_bytes());
    r.extend_from_slice(&TTL.to_be_bytes());
    r.extend_from_slice(&[0, 4]);
    r.extend_from_slice(&ip.octets());
  }
  r
}

/// The answer to one query (None: drop it) and the event it is reported with.
fn answer(policy: &Policy, m: &[u8], resolve: impl Fn(&Policy, &str) -> Result<Vec<Ipv4Addr>, ResolveError>) -> (Option<Vec<u8>>, Option<Event>) {
  let q = match parse_query(m) {
    Ok(q) => q,
    Err(Some(id)) => return (Some(build_response(id, false, FORMERR, None, &[])), None),
    Err(None) => return (None, None),
  };
  let reply = |rcode, addrs: &[Ipv4Addr]| Some(build_response(q.id, q.rd, rcode, Some(&q.question), addrs));
  if q.qclass != CLASS_IN {
    return (reply(NOTIMP, &[]), None);
  }
  let raw = String::from_utf8_lossy(&q.name).into_owned();
  let ev = Event::new("dns", &raw, 0);
  let Some(name) = std::str::from_utf8(&q.name).ok().and_then(normalize_name) else {
    return (reply(NXDOMAIN, &[]), Some(ev.denied("invalid name", "not a valid domain name")));
  };
  if let Some(d) = policy.deny_name(&name) {
    return (reply(NXDOMAIN, &[]), Some(ev.denied(&d.rule, "denied by policy")));
  }
  let addrs = match resolve(policy, &name) {
    Ok(a) => a,
    Err(ResolveError::NotFound) => return (reply(NXDOMAIN, &[]), Some(ev.denied("resolve", "no such name"))),
    Err(e) => return (reply(SERVFAIL, &[]), Some(ev.denied("resolve", &format!("cannot resolve: {e}")))),
  };
  let decisions: Vec<_> = addrs.iter().map(|ip| (*ip, policy.decide_any_port(Some(&name), *ip))).collect();
  let allowed: Vec<Ipv4Addr> = decisions.iter().filter(|(_, d)| d.allow).map(|(ip, _)| *ip).collect();
  match decisions.iter().find(|(_, d)| d.allow).or(decisions.first()) {
    Some((ip, d)) if d.allow => {
      let ev = ev.ip(Some(*ip)).allowed(&d.rule);
      (reply(NOERROR, if q.qtype == TYPE_A { &allowed } else { &[] }), Some(ev))
    }
    Some((ip, d)) => (reply(NXDOMAIN, &[]), Some(ev.ip(Some(*ip)).denied(&d.rule, "denied by policy"))),
    None => (reply(NXDOMAIN, &[]), Some(ev.denied("resolve", "no IPv4 address"))),
  }
}

/// The responder: one thread per query, at most `MAX_INFLIGHT` at once.
pub(super) fn serve(gw: Arc<Gw>, sock: UdpSocket) {
  let sock = Arc::new(sock);
  let inflight = Arc::new(AtomicUsize::new(0));
  let mut buf = vec![0u8; 1500];
  loop {
    let (n, peer) = match sock.recv_from(&mut buf) {
      Ok(r) => r,
      Err(_) => {
        std::thread::sleep(Duration::from_millis(10));
        continue;
      }
    };
    if n > 512 || inflight.fetch_add(1, Ordering::Relaxed) >= MAX_INFLIGHT {
      if n <= 512 {
        inflight.fetch_sub(1, Ordering::Relaxed);
      }
      continue;
    }
    let msg = buf[..n].to_vec();
    let (g, s, inf) = (gw.clone(), sock.clone(), inflight.clone());
    let spawned = super::spawn(move || {
      let (reply, ev) = answer(&g.policy(), &msg, resolve);
      if let Some(r) = reply {
        let _ = s.send_to(&r, peer);
      }
      if let Some(e) = ev {
        g.event(e);
      }
      inf.fetch_sub(1, Ordering::Relaxed);
    });
    if spawned.is_err() {
      inflight.fetch_sub(1, Ordering::Relaxed);
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::egress::PolicyWire;

  fn policy(allow: &[&str], deny: &[&str]) -> Policy {
    Policy::compile(&PolicyWire {
      allow_out: allow.iter().map(|s| s.to_string()).collect(),
      deny_out: deny.iter().map(|s| s.to_string()).collect(),
      ..Default::default()
    })
    .unwrap()
  }

  /// A response to `q` from a nameserver, with raw answer records appended.
  fn response(q: &[u8], rcode: u16, answers: &[Vec<u8>]) -> Vec<u8> {
    let mut r = q.to_vec();
    r[2] = 0x81;
    r[3] = 0x80 | rcode as u8;
    r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    for a in answers {
      r.extend_from_slice(a);
    }
    r
  }

  fn rr(owner: &[u8], ty: u16, data: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&ty.to_be_bytes());
    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
    r.extend_from_slice(data);
    r
  }

  #[test]
  fn query_encoding() {
    let q = encode_query(0x1234, "Www.Example.com.", TYPE_A).unwrap();
    assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&q[12..], b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    assert!(encode_query(1, "bad name", TYPE_A).is_none());
    let p = parse_query(&q).unwrap();
    assert_eq!((p.id, p.rd, p.qtype, p.name.as_slice()), (0x1234, true, TYPE_A, &b"www.example.com"[..]));
  }

  #[test]
  fn responses_with_cname_chains() {
    let q = encode_query(7, "www.example.com", TYPE_A).unwrap();
    let ptr_q = [0xc0u8, 12];
    // www.example.com CNAME edge.cdn.net (a pointer into the question), then A of edge.cdn.net
    let target = b"\x04edge\x03cdn\x03net\x00";
    let mut answers = vec![rr(&ptr_q, TYPE_CNAME, target)];
    let edge_at = (q.len() + 2 + 10) as u16; // where the CNAME's rdata starts (after owner pointer and fixed fields)
    let ptr_edge = (0xc000 | edge_at).to_be_bytes();
    answers.push(rr(&ptr_edge, TYPE_A, &[1, 2, 3, 4]));
    answers.push(rr(&ptr_edge, TYPE_A, &[1, 2, 3, 5]));
    answers.push(rr(b"\x05other\x00", TYPE_A, &[9, 9, 9, 9])); // not in the chain
    let r = response(&q, 0, &answers);
    assert_eq!(parse_response(&r, 7, "www.example.com"), Answer::Addrs(vec![Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(1, 2, 3, 5)]));
    assert_eq!(parse_response(&r, 8, "www.example.com"), Answer::Ignore);
    assert_eq!(parse_response(&r, 7, "other.example.com"), Answer::Ignore);
    assert_eq!(parse_response(&response(&q, 3, &[]), 7, "www.example.com"), Answer::NotFound);
    assert!(matches!(parse_response(&response(&q, 2, &[]), 7, "www.example.com"), Answer::Failed(_)));
    // a pointer loop or a truncated record is malformed, not a panic
    let mut bad = response(&q, 0, &[rr(&[0xc0, 0x00], TYPE_A, &[1, 2, 3, 4])]);
    assert!(matches!(parse_response(&bad, 7, "www.example.com"), Answer::Failed(_) | Answer::Addrs(_)));
    bad.truncate(bad.len() - 2);
    assert_eq!(parse_response(&bad, 7, "www.example.com"), Answer::Failed("malformed answer".into()));
    let looped = response(&q, 0, &[rr(&[0xc0, (q.len()) as u8], TYPE_A, &[1, 2, 3, 4])]);
    let _ = parse_response(&looped, 7, "www.example.com");
  }

  #[test]
  fn lookup_against_a_local_server() {
    let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    std::thread::spawn(move || {
      let mut buf = [0u8; 512];
      for i in 0.. {
        let (n, peer) = srv.recv_from(&mut buf).unwrap();
        let q = &buf[..n];
        if i == 0 {
          // first a stray answer with the wrong id, which must be ignored
          let mut wrong = response(q, 0, &[rr(&[0xc0, 12], TYPE_A, &[6, 6, 6, 6])]);
          wrong[0] ^= 0xff;
          srv.send_to(&wrong, peer).unwrap();
        }
        srv.send_to(&response(q, 0, &[rr(&[0xc0, 12], TYPE_A, &[93, 184, 216, 34])]), peer).unwrap();
      }
    });
    assert_eq!(lookup(&[addr], "example.com", Duration::from_secs(2)), Ok(vec![Ipv4Addr::new(93, 184, 216, 34)]));
    // nobody answers: a failure after the tries
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t = Instant::now();
    assert!(matches!(lookup(&[dead.local_addr().unwrap()], "example.com", Duration::from_millis(100)), Err(ResolveError::Failed(_))));
    assert!(t.elapsed() < Duration::from_secs(2));
  }

  #[test]
  fn resolv_conf() {
    let s = nameservers("# x\nsearch a\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 1.1.1.1 \n");
    assert_eq!(s, vec!["10.0.0.2:53".parse().unwrap(), "1.1.1.1:53".parse().unwrap()]);
  }

  fn fake(_: &Policy, name: &str) -> Result<Vec<Ipv4Addr>, ResolveError> {
    match name {
      "good.test" => Ok(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(93, 184, 216, 34)]),
      "bad.test" => Ok(vec![Ipv4Addr::new(93, 184, 216, 35)]),
      "private.test" => Ok(vec![Ipv4Addr::new(192, 168, 0, 1)]),
      _ => Err(ResolveError::NotFound),
    }
  }

  #[test]
  fn responder() {
    let p = policy(&[], &["bad.test"]);
    let ask = |name: &str, ty: u16| {
      let q = encode_query(99, name, ty).unwrap();
      let (r, ev) = answer(&p, &q, fake);
      (r.unwrap(), ev.unwrap())
    };
    let (r, ev) = ask("good.test", TYPE_A);
    assert_eq!(r[3] & 0x0f, 0);
    assert_eq!(u16_at(&r, 6), Some(1)); // only the public address: 10.0.0.1 is in the deny set
    assert_eq!(&r[r.len() - 4..], &[93, 184, 216, 34]);
    assert!(ev.allow);
    let (r, ev) = ask("good.test", 28);
    assert_eq!((r[3] & 0x0f, u16_at(&r, 6)), (0, Some(0)));
    assert!(ev.allow);
    for n in ["bad.test", "private.test", "missing.test"] {
      let (r, ev) = ask(n, TYPE_A);
      assert_eq!(r[3] & 0x0f, NXDOMAIN as u8, "{n}");
      assert!(!ev.allow);
    }
    assert_eq!(ask("bad.test", TYPE_A).1.rule, "denyOut bad.test");
    // malformed: FORMERR, a response or a runt: dropped
    let mut q = encode_query(5, "good.test", TYPE_A).unwrap();
    q.truncate(q.len() - 3);
    assert_eq!(answer(&p, &q, fake).0.unwrap()[3] & 0x0f, FORMERR as u8);
    assert!(answer(&p, &[1, 2, 3], fake).0.is_none());
    let mut resp = encode_query(5, "good.test", TYPE_A).unwrap();
    resp[2] |= 0x80;
    assert!(answer(&p, &resp, fake).0.is_none());
    // a hostile name is reported escaped, not resolved
    let mut q = encode_query(5, "aaaa.test", TYPE_A).unwrap();
    q[13..17].copy_from_slice(b"a\"\n\0");
    let (r, ev) = answer(&p, &q, fake);
    assert_eq!(r.unwrap()[3] & 0x0f, NXDOMAIN as u8);
    assert_eq!(ev.unwrap().rule, "invalid name");
  }
}
