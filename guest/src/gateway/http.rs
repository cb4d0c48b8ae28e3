//! The HTTP proxy port: `CONNECT host:port` tunnels and absolute-form `http://` requests.
//!
//! A tunnel to a name must carry a TLS server name equal to that name (or no TLS at all); a
//! tunnel to an address must carry a server name the policy allows at that address. A plain
//! request's Host header must name the URL's host. Both stop a client from asking an allowed
//! front for another site. Plain requests are forwarded with `Connection: close` (one request
//! per connection, so a second request cannot follow with another Host) and without the
//! `Proxy-*` headers. Everything else is answered 400.

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::Instant;

use super::tls::{self, Hello};
use super::{open, splice, start_down, finish_splice, Event, Gw, Refusal, Target, HEAD_TIMEOUT};
use crate::egress::normalize_name;

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug)]
struct Head {
  method: String,
  target: String,
  version: String,
  headers: Vec<(String, String)>,
}

/// Serve one client of the HTTP proxy port.
pub(super) fn handle(gw: &Gw, mut c: TcpStream) {
  let (raw, rest) = match read_head(&mut c) {
    Ok(h) => h,
    Err(Some(why)) => return respond(&mut c, "400 Bad Request", &why, false),
    Err(None) => return,
  };
  let head = match parse_head(&raw) {
    Some(h) => h,
    None => return respond(&mut c, "400 Bad Request", "agentic-sandbox egress: malformed request", false),
  };
  if head.method == "CONNECT" {
    connect(gw, c, &head, rest)
  } else if head.target.len() > 7 && head.target[..7].eq_ignore_ascii_case("http://") {
    forward(gw, c, &head, rest)
  } else {
    respond(
      &mut c,
      "400 Bad Request",
      "agentic-sandbox egress: this is an HTTP proxy: send CONNECT host:port or a request for an absolute http:// URL",
      false,
    )
  }
}

/// The request head (without its blank line) and whatever followed it. Err(Some) is worth a
/// 400, Err(None) means the client went away or was too slow.
fn read_head(c: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), Option<String>> {
  let deadline = Instant::now() + HEAD_TIMEOUT;
  let mut buf = Vec::with_capacity(1024);
  let mut chunk = vec![0u8; 4096];
  loop {
    let n = match super::read_by(c, &mut chunk, deadline) {
      Ok(0) | Err(_) => return Err(None),
      Ok(n) => n,
    };
    let from = buf.len().saturating_sub(3);
    buf.extend_from_slice(&chunk[..n]);
    if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
      let end = from + i;
      let rest = buf[end + 4..].to_vec();
      buf.truncate(end);
      return Ok((buf, rest));
    }
    if buf.len() > MAX_HEAD {
      return Err(Some(format!("agentic-sandbox egress: request head longer than {MAX_HEAD} bytes")));
    }
  }
}

fn parse_head(raw: &[u8]) -> Option<Head> {
  let text = std::str::from_utf8(raw).ok()?;
  let mut lines = text.split("\r\n");
  let mut parts = lines.next()?.split(' ');
  let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
  if parts.next().is_some() || method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
    return None;
  }
  let mut headers = Vec::new();
  for l in lines {
    let (name, value) = l.split_once(':')?;
    if name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f) || value.contains(['\r', '\n']) {
      return None;
    }
    headers.push((name.to_string(), value.trim().to_string()));
  }
  Some(Head { method: method.to_string(), target: target.to_string(), version: version.to_string(), headers })
}

/// `host:port` (or `host` with `default`). Err: a message for a 400.
fn host_port(s: &str, default: Option<u16>) -> Result<(String, u16), String> {
  if s.starts_with('[') {
    return Err("IPv6 is not supported: sandboxes have IPv4 only".to_string());
  }
  let (h, p) = match (s.rsplit_once(':'), default) {
    (Some((h, p)), _) => (h, p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(format!("bad port in {s:?}"))?),
    (None, Some(d)) => (s, d),
    (None, None) => return Err(format!("{s:?} has no port; write host:port")),
  };
  Ok((h.to_string(), p))
}

/// A short text/plain response, then close.
fn respond(c: &mut TcpStream, status: &str, body: &str, denied: bool) {
  let flag = if denied { "X-Agentic-Sandbox-Egress: denied\r\n" } else { "" };
  let body = format!("{body}\n");
  let r = format!(
    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{flag}Connection: close\r\n\r\n{body}",
    body.len()
  );
  let _ = c.write_all(r.as_bytes());
}

/// Answer a refusal (403 or 502) and report it.
fn refuse(gw: &Gw, c: &mut TcpStream, proto: &'static str, host: &str, port: u16, r: Refusal) {
  let shown = super::clip(host);
  match &r {
    Refusal::Denied { rule, .. } => {
      respond(c, "403 Forbidden", &format!("agentic-sandbox egress: {shown}:{port} denied ({rule})"), true)
    }
    Refusal::Resolve(why) => respond(c, "502 Bad Gateway", &format!("agentic-sandbox egress: cannot resolve {shown}: {why}"), false),
    Refusal::Connect { ip, err, .. } => {
      respond(c, "502 Bad Gateway", &format!("agentic-sandbox egress: cannot connect to {shown}:{port} ({ip}): {err}"), false)
    }
  }
  gw.event(r.event(proto, host, port));
}

/// `CONNECT host:port`.
fn connect(gw: &Gw, mut c: TcpStream, head: &Head, rest: Vec<u8>) {
  let (host, port) = match host_port(&head.target, None) {
    Ok(hp) => hp,
    Err(why) => return respond(&mut c, "400 Bad Request", &format!("agentic-sandbox egress: CONNECT {why}"), false),
  };
  let Some(target) = Target::parse(&host) else {
    return refuse(gw, &mut c, "connect", &host, port, Refusal::Resolve("not a valid host name".to_string()));
  };
  let policy = gw.policy();
  let up = match open(&policy, &target, port) {
    Ok(o) => o,
    Err(r) => return refuse(gw, &mut c, "connect", &host, port, r),
  };
  if c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").is_err() {
    return;
  }
  // the server's bytes may flow at once (a server that speaks first); the client's wait for
  // the check of its first record
  let Some(down) = start_down(&c, &up.stream) else { return };
  let first = tls::read_first(&mut c, rest);
  let ev = Event::new("connect", &host, port).ip(Some(up.ip));
  match check_sni(&policy, &target, &host, up.ip, port, &first) {
    Ok(()) => {
      gw.event(ev.allowed(&up.rule));
      finish_splice(c, up.stream, &first, down)
    }
    Err(rule) => {
      gw.event(ev.denied(&rule, "TLS server name not allowed"));
      let _ = c.shutdown(std::net::Shutdown::Both);
      let _ = up.stream.shutdown(std::net::Shutdown::Both);
      let _ = down.join();
    }
  }
}

/// Whether the tunnel's first bytes may go to `ip:port`; Err: the rule that refuses them.
fn check_sni(policy: &crate::egress::Policy, target: &Target, host: &str, ip: Ipv4Addr, port: u16, first: &[u8]) -> Result<(), String> {
  let sni = match tls::parse(first) {
    Hello::NotTls | Hello::NoSni => return Ok(()),
    Hello::Incomplete => return Err("tls: incomplete ClientHello (split across records or cut)".to_string()),
    Hello::Malformed => return Err("tls: malformed ClientHello".to_string()),
    Hello::Sni(s) => s,
  };
  let shown = super::clip(&sni);
  match target {
    Target::Name(n) if *n == sni => Ok(()),
    Target::Name(_) => Err(format!("tls: server name {shown} does not match CONNECT host {}", super::clip(host))),
    Target::Ip(_) => {
      let Some(name) = normalize_name(&sni) else { return Err(format!("tls: invalid server name {shown:?}")) };
      let d = policy.decide(Some(&name), ip, port);
      if d.allow {
        Ok(())
      } else {
        Err(format!("tls: server name {shown}: {}", d.rule))
      }
    }
  }
}

/// The URL's authority and the origin-form target (path and query, no fragment).
fn split_url(target: &str) -> (&str, String) {
  let rest = &target[7..];
  let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
  let (authority, path) = rest.split_at(end);
  let path = path.split('#').next().unwrap_or("");
  let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
  (authority, path)
}

/// The host part of a Host header value, normalized for comparison.
fn host_of(value: &str) -> Option<String> {
  let (h, _) = host_port(value, Some(80)).ok()?;
  match Target::parse(&h)? {
    Target::Ip(ip) => Some(ip.to_string()),
    Target::Name(n) => Some(n),
  }
}

/// An absolute-form request: decide on the URL's host, forward it origin-form.
fn forward(gw: &Gw, mut c: TcpStream, head: &Head, rest: Vec<u8>) {
  let bad = |c: &mut TcpStream, why: &str| respond(c, "400 Bad Request", &format!("agentic-sandbox egress: {why}"), false);
  let (authority, path) = split_url(&head.target);
  if authority.contains('@') {
    return bad(&mut c, "credentials in the URL are not supported");
  }
  let (host, port) = match host_port(authority, Some(80)) {
    Ok(hp) => hp,
    Err(why) => return bad(&mut c, &why),
  };
  let Some(target) = Target::parse(&host) else {
    return refuse(gw, &mut c, "http", &host, port, Refusal::Resolve("not a valid host name".to_string()));
  };
  let canonical = match &target {
    Target::Ip(ip) => ip.to_string(),
    Target::Name(n) => n.clone(),
  };
  let hosts: Vec<&str> = head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("host")).map(|(_, v)| v.as_str()).collect();
  if hosts.len() > 1 {
    return bad(&mut c, "more than one Host header");
  }
  if let Some(h) = hosts.first() {
    if host_of(h).as_deref() != Some(canonical.as_str()) {
      let rule = format!("http: Host header {} does not match URL host {}", super::clip(h), super::clip(&host));
      respond(&mut c, "403 Forbidden", &format!("agentic-sandbox egress: {}:{port} denied ({rule})", super::clip(&host)), true);
      return gw.event(Event::new("http", &host, port).denied(&rule, "Host header differs from the URL (domain fronting)"));
    }
  }
  let up = match open(&gw.policy(), &target, port) {
    Ok(o) => o,
    Err(r) => return refuse(gw, &mut c, "http", &host, port, r),
  };
  gw.event(Event::new("http", &host, port).ip(Some(up.ip)).allowed(&up.rule));
  let mut req = rewrite(head, &path, authority, hosts.is_empty()).into_bytes();
  req.extend_from_slice(&rest);
  splice(c, up.stream, &req)
}

/// The request head as sent upstream: origin-form, without hop-by-hop and `Proxy-*` headers,
/// with `Connection: close`.
fn rewrite(head: &Head, path: &str, authority: &str, add_host: bool) -> String {
  let listed: Vec<String> = head
    .headers
    .iter()
    .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
    .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>())
    .collect();
  let mut out = format!("{} {} {}\r\n", head.method, path, head.version);
  if add_host {
    out.push_str(&format!("Host: {authority}\r\n"));
  }
  for (n, v) in &head.headers {
    let l = n.to_ascii_lowercase();
    if l.starts_with("proxy-") || l == "connection" || l == "keep-alive" || listed.contains(&l) {
      continue;
    }
    out.push_str(&format!("{n}: {v}\r\n"));
  }
  out.push_str("Connection: close\r\n\r\n");
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn heads() {
    let h = parse_head(b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nProxy-Connection: keep-alive").unwrap();
    assert_eq!((h.method.as_str(), h.target.as_str(), h.headers.len()), ("GET", "http://a.test/x", 2));
    assert!(parse_head(b"GET /x").is_none());
    assert!(parse_head(b"GET  /x HTTP/1.1").is_none());
    assert!(parse_head(b"GET /x HTTP/1.1\r\nno colon").is_none());
    assert!(parse_head(b"GET /x HTTP/1.1\r\nBad Name: x").is_none());
    assert!(parse_head(b"\xff\xfe").is_none());
  }

  #[test]
  fn urls_and_hosts() {
    assert_eq!(split_url("http://a.test:8080/p?q#f"), ("a.test:8080", "/p?q".to_string()));
    assert_eq!(split_url("http://a.test"), ("a.test", "/".to_string()));
    assert_eq!(split_url("http://a.test?q"), ("a.test", "/?q".to_string()));
    assert_eq!(host_port("a.test:443", None), Ok(("a.test".into(), 443)));
    assert!(host_port("a.test", None).is_err());
    assert!(host_port("a.test:0", None).is_err());
    assert!(host_port("[::1]:443", None).unwrap_err().contains("IPv6"));
    assert_eq!(host_of("A.Test.:80"), Some("a.test".into()));
  }

  #[test]
  fn rewrites() {
    let h = parse_head(b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nProxy-Authorization: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept: */*").unwrap();
    let r = rewrite(&h, "/x", "a.test", false);
    assert_eq!(r, "GET /x HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    let h = parse_head(b"GET http://a.test:81/ HTTP/1.0").unwrap();
    assert_eq!(rewrite(&h, "/", "a.test:81", true), "GET / HTTP/1.0\r\nHost: a.test:81\r\nConnection: close\r\n\r\n");
  }

  fn policy(allow: &[&str], deny: &[&str]) -> crate::egress::Policy {
    crate::egress::Policy::compile(&crate::egress::PolicyWire {
      allow_out: allow.iter().map(|s| s.to_string()).collect(),
      deny_out: deny.iter().map(|s| s.to_string()).collect(),
      ..Default::default()
    })
    .unwrap()
  }

  #[test]
  fn sni_checks() {
    let p = policy(&["good.test"], &["0.0.0.0/0"]);
    let ip = Ipv4Addr::new(93, 184, 216, 34);
    let name = Target::Name("good.test".into());
    let hello = |s| tls::client_hello_record(Some(s));
    assert_eq!(check_sni(&p, &name, "good.test", ip, 443, &hello("GOOD.test")), Ok(()));
    assert_eq!(
      check_sni(&p, &name, "good.test", ip, 443, &hello("evil.test")),
      Err("tls: server name evil.test does not match CONNECT host good.test".into())
    );
    assert_eq!(check_sni(&p, &name, "good.test", ip, 443, b"SSH-2.0-x\r\n"), Ok(()));
    assert_eq!(check_sni(&p, &name, "good.test", ip, 443, &tls::client_hello_record(None)), Ok(()));
    let h = hello("good.test");
    assert!(check_sni(&p, &name, "good.test", ip, 443, &h[..h.len() - 1]).is_err());
    // by address (allowed by an address entry): the server name must be allowed too
    let p = policy(&["good.test", "93.184.216.34"], &["evil.test"]);
    let t = Target::Ip(ip);
    assert_eq!(check_sni(&p, &t, "93.184.216.34", ip, 443, &hello("good.test")), Ok(()));
    assert_eq!(check_sni(&p, &t, "93.184.216.34", ip, 443, &hello("evil.test")), Ok(())); // allowOut 93.184.216.34 wins
    let p = policy(&["good.test"], &["evil.test"]);
    assert_eq!(check_sni(&p, &t, "93.184.216.34", ip, 443, &hello("evil.test")), Err("tls: server name evil.test: denyOut evil.test".into()));
  }
}
