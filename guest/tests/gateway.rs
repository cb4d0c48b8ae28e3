//! End-to-end test of `agentic-sandbox-guest gateway`, on loopback only: the gateway listens on
//! 127.0.0.1, the "outside" is a tiny HTTP server and an echo server on 127.0.0.1, and names
//! come from `extraHosts` (no query ever leaves the machine). Loopback is in the fixed deny set,
//! so the policy's explicit `127.0.0.1:<port>` entries are what let connections through.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

struct Gateway {
  child: Child,
  stdin: Option<ChildStdin>,
  lines: Receiver<Value>,
  http: u16,
  socks: u16,
  dns: u16,
}

impl Gateway {
  fn start() -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentic-sandbox-guest"))
      .args(["gateway", "--listen", "127.0.0.1", "--http-port", "0", "--socks-port", "0", "--dns-port", "0"])
      .stdin(Stdio::piped())
      .stdout(Stdio::piped())
      .spawn()
      .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
      for l in BufReader::new(stdout).lines() {
        let l = l.unwrap();
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
        if tx.send(v).is_err() {
          return;
        }
      }
    });
    let ready = lines.recv_timeout(T).unwrap();
    let port = |k: &str| ready["ready"][k].as_u64().unwrap() as u16;
    let (http, socks, dns) = (port("http"), port("socks"), port("dns"));
    Gateway { stdin: child.stdin.take(), child, lines, http, socks, dns }
  }

  fn send(&mut self, v: Value) {
    let s = self.stdin.as_mut().unwrap();
    writeln!(s, "{v}").unwrap();
    s.flush().unwrap();
  }

  /// The next line that is not an event.
  fn reply(&self) -> Value {
    loop {
      let v = self.lines.recv_timeout(T).unwrap();
      if v.get("event").is_none() {
        return v;
      }
    }
  }

  fn policy(&mut self, seq: u64, p: Value) {
    self.send(json!({ "seq": seq, "policy": p }));
    assert_eq!(self.reply(), json!({ "applied": seq }));
  }

  /// The next event (skipping other lines).
  fn event(&self) -> Value {
    loop {
      let v = self.lines.recv_timeout(T).expect("an event");
      if let Some(e) = v.get("event") {
        return e.clone();
      }
    }
  }
}

impl Drop for Gateway {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

/// An HTTP server answering every request with its request line and Host header.
fn http_server() -> u16 {
  let l = TcpListener::bind("127.0.0.1:0").unwrap();
  let port = l.local_addr().unwrap().port();
  std::thread::spawn(move || {
    for s in l.incoming() {
      let mut s = s.unwrap();
      std::thread::spawn(move || {
        let head = read_head(&mut s);
        let first = head.lines().next().unwrap_or("").to_string();
        let host = head.lines().find(|l| l.to_ascii_lowercase().starts_with("host:")).unwrap_or("").to_string();
        let conn = head.lines().find(|l| l.to_ascii_lowercase().starts_with("connection:")).unwrap_or("").to_string();
        let proxy = head.to_ascii_lowercase().contains("proxy-");
        let body = format!("{first}|{host}|{conn}|proxy headers: {proxy}");
        let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
      });
    }
  });
  port
}

/// A server echoing every byte back.
fn echo_server() -> u16 {
  let l = TcpListener::bind("127.0.0.1:0").unwrap();
  let port = l.local_addr().unwrap().port();
  std::thread::spawn(move || {
    for s in l.incoming() {
      let mut s = s.unwrap();
      std::thread::spawn(move || {
        let mut w = s.try_clone().unwrap();
        let _ = std::io::copy(&mut s, &mut w);
      });
    }
  });
  port
}

fn read_head(s: &mut TcpStream) -> String {
  s.set_read_timeout(Some(T)).unwrap();
  let mut buf = Vec::new();
  let mut b = [0u8; 1];
  while !buf.ends_with(b"\r\n\r\n") {
    match s.read(&mut b) {
      Ok(1) => buf.push(b[0]),
      _ => break,
    }
  }
  String::from_utf8_lossy(&buf).into_owned()
}

fn read_all(s: &mut TcpStream) -> String {
  s.set_read_timeout(Some(T)).unwrap();
  let mut out = Vec::new();
  let _ = s.read_to_end(&mut out);
  String::from_utf8_lossy(&out).into_owned()
}

fn connect(g: &Gateway) -> TcpStream {
  let s = TcpStream::connect(("127.0.0.1", g.http)).unwrap();
  s.set_read_timeout(Some(T)).unwrap();
  s
}

/// A TLS 1.3-style ClientHello record naming `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
  let mut body = vec![3, 3];
  body.extend_from_slice(&[7; 32]);
  body.push(0);
  body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
  let n = sni.len() as u16;
  let mut ext = vec![0, 0];
  ext.extend_from_slice(&(n + 5).to_be_bytes());
  ext.extend_from_slice(&(n + 3).to_be_bytes());
  ext.push(0);
  ext.extend_from_slice(&n.to_be_bytes());
  ext.extend_from_slice(sni.as_bytes());
  body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
  body.extend_from_slice(&ext);
  let mut hs = vec![1, 0];
  hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
  hs.extend_from_slice(&body);
  let mut rec = vec![0x16, 3, 1];
  rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
  rec.extend_from_slice(&hs);
  rec
}

fn dns_query(g: &Gateway, name: &str) -> Vec<u8> {
  let s = UdpSocket::bind("127.0.0.1:0").unwrap();
  s.set_read_timeout(Some(T)).unwrap();
  let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for l in name.split('.') {
    q.push(l.len() as u8);
    q.extend_from_slice(l.as_bytes());
  }
  q.extend_from_slice(&[0, 0, 1, 0, 1]);
  s.send_to(&q, ("127.0.0.1", g.dns)).unwrap();
  let mut buf = [0u8; 512];
  let n = s.recv(&mut buf).unwrap();
  assert_eq!(&buf[..2], &[0xab, 0xcd]);
  buf[..n].to_vec()
}

fn socks(g: &Gateway, ip: [u8; 4], port: u16) -> (TcpStream, u8) {
  let mut s = TcpStream::connect(("127.0.0.1", g.socks)).unwrap();
  s.set_read_timeout(Some(T)).unwrap();
  s.write_all(&[5, 1, 0]).unwrap();
  let mut r = [0u8; 2];
  s.read_exact(&mut r).unwrap();
  assert_eq!(r, [5, 0]);
  let mut req = vec![5, 1, 0, 1];
  req.extend_from_slice(&ip);
  req.extend_from_slice(&port.to_be_bytes());
  s.write_all(&req).unwrap();
  let mut r = [0u8; 10];
  s.read_exact(&mut r).unwrap();
  (s, r[1])
}

#[test]
fn gateway_end_to_end() {
  let web = http_server();
  let echo = echo_server();
  let mut g = Gateway::start();

  // before any policy: everything is denied
  let mut c = connect(&g);
  write!(c, "CONNECT 127.0.0.1:{echo} HTTP/1.1\r\n\r\n").unwrap();
  assert!(read_all(&mut c).starts_with("HTTP/1.1 403"));
  assert_eq!(g.event()["allow"], false);

  // a bad policy is an error and changes nothing
  g.send(json!({ "seq": 1, "policy": { "allowOut": ["bad_name"] } }));
  let r = g.reply();
  assert_eq!(r["seq"], 1);
  assert!(r["error"].as_str().unwrap().contains("bad_name"), "{r}");

  let policy = |echo_allowed: bool| {
    let mut allow = vec![format!("127.0.0.1:{web}"), "allowed.test".to_string()];
    if echo_allowed {
      allow.push(format!("127.0.0.1:{echo}"));
    }
    json!({
      "allowOut": allow,
      "denyOut": ["denied.test", "0.0.0.0/0"],
      "extraHosts": { "allowed.test": "127.0.0.1", "other.test": "127.0.0.1", "denied.test": "192.0.2.1", "loop.test": "127.0.0.2" },
    })
  };
  g.policy(2, policy(true));

  // plain HTTP through the proxy
  let mut c = connect(&g);
  write!(c, "GET http://allowed.test:{web}/path?q=1 HTTP/1.1\r\nHost: allowed.test:{web}\r\nProxy-Connection: keep-alive\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
  assert!(r.contains(&format!("GET /path?q=1 HTTP/1.1|Host: allowed.test:{web}|Connection: close|proxy headers: false")), "{r}");
  let e = g.event();
  assert_eq!((e["proto"].as_str(), e["dest"].as_str(), e["ip"].as_str(), e["allow"].as_bool()), (Some("http"), Some("allowed.test"), Some("127.0.0.1"), Some(true)));
  assert_eq!(e["rule"], format!("allowOut 127.0.0.1:{web}"));
  assert_eq!(e["port"], web);

  // domain fronting: the Host header names another host
  let mut c = connect(&g);
  write!(c, "GET http://allowed.test:{web}/ HTTP/1.1\r\nHost: other.test\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 403"), "{r}");
  assert_eq!(g.event()["allow"], false);

  // CONNECT to an allowed name: bytes both ways, the ClientHello naming the host passes
  let mut c = connect(&g);
  write!(c, "CONNECT allowed.test:{echo} HTTP/1.1\r\nHost: allowed.test:{echo}\r\n\r\n").unwrap();
  assert_eq!(read_head(&mut c), "HTTP/1.1 200 Connection established\r\n\r\n");
  let hello = client_hello("allowed.test");
  c.write_all(&hello).unwrap();
  let mut back = vec![0u8; hello.len()];
  c.read_exact(&mut back).unwrap();
  assert_eq!(back, hello);
  c.write_all(b"more bytes").unwrap();
  let mut back = [0u8; 10];
  c.read_exact(&mut back).unwrap();
  assert_eq!(&back, b"more bytes");
  let e = g.event();
  assert_eq!((e["proto"].as_str(), e["allow"].as_bool()), (Some("connect"), Some(true)));
  drop(c);

  // CONNECT whose ClientHello names another server: cut
  let mut c = connect(&g);
  write!(c, "CONNECT allowed.test:{echo} HTTP/1.1\r\n\r\n").unwrap();
  assert_eq!(read_head(&mut c), "HTTP/1.1 200 Connection established\r\n\r\n");
  c.write_all(&client_hello("other.test")).unwrap();
  assert_eq!(read_all(&mut c), "", "nothing may come back");
  let e = g.event();
  assert_eq!(e["allow"], false);
  assert_eq!(e["rule"], format!("tls: server name other.test does not match CONNECT host allowed.test"));

  // the same with the ClientHello sent along with the CONNECT head
  let mut c = connect(&g);
  let mut req = format!("CONNECT allowed.test:{echo} HTTP/1.1\r\n\r\n").into_bytes();
  req.extend_from_slice(&client_hello("other.test"));
  c.write_all(&req).unwrap();
  assert_eq!(read_all(&mut c), "HTTP/1.1 200 Connection established\r\n\r\n");
  assert_eq!(g.event()["allow"], false);

  // a denied name: 403 with the rule
  let mut c = connect(&g);
  write!(c, "CONNECT denied.test:443 HTTP/1.1\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{r}");
  assert!(r.contains("X-Agentic-Sandbox-Egress: denied\r\n"), "{r}");
  assert!(r.ends_with("agentic-sandbox egress: denied.test:443 denied (denyOut denied.test)\n"), "{r}");
  let e = g.event();
  assert_eq!((e["dest"].as_str(), e["ip"].as_str(), e["rule"].as_str()), (Some("denied.test"), Some("192.0.2.1"), Some("denyOut denied.test")));

  // an allowed name resolving to loopback at a port no entry opens: the deny set
  let mut c = connect(&g);
  write!(c, "CONNECT loop.test:{echo} HTTP/1.1\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 403") && r.contains("deny set: loopback 127.0.0.0/8"), "{r}");
  g.event();

  // a denied address / port
  let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
  let mut c = connect(&g);
  write!(c, "CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 403") && r.contains(&format!("127.0.0.1:{closed_port} denied (deny set: loopback")), "{r}");
  let e = g.event();
  assert_eq!((e["dest"].as_str(), e["allow"].as_bool()), (Some("127.0.0.1"), Some(false)));

  // garbage and origin-form requests: 400
  let mut c = connect(&g);
  write!(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
  assert!(read_all(&mut c).starts_with("HTTP/1.1 400"));

  // SOCKS5: allowed ip:port passes bytes, another port is refused with 0x02
  let (mut s, code) = socks(&g, [127, 0, 0, 1], echo);
  assert_eq!(code, 0);
  s.write_all(b"ping").unwrap();
  let mut b = [0u8; 4];
  s.read_exact(&mut b).unwrap();
  assert_eq!(&b, b"ping");
  let e = g.event();
  assert_eq!((e["proto"].as_str(), e["allow"].as_bool()), (Some("socks"), Some(true)));
  let (_, code) = socks(&g, [127, 0, 0, 1], closed_port);
  assert_eq!(code, 2);
  let e = g.event();
  assert_eq!((e["proto"].as_str(), e["allow"].as_bool()), (Some("socks"), Some(false)));

  // DNS: an allowed name answers its address, a denied one NXDOMAIN
  let r = dns_query(&g, "allowed.test");
  assert_eq!((r[3] & 0x0f, r[7]), (0, 1));
  assert_eq!(&r[r.len() - 4..], &[127, 0, 0, 1]);
  let e = g.event();
  assert_eq!((e["proto"].as_str(), e["dest"].as_str(), e["allow"].as_bool()), (Some("dns"), Some("allowed.test"), Some(true)));
  let r = dns_query(&g, "denied.test");
  assert_eq!((r[3] & 0x0f, r[7]), (3, 0));
  assert_eq!(g.event()["allow"], false);

  // a policy update applies to the next connection
  g.policy(3, policy(false));
  let mut c = connect(&g);
  write!(c, "CONNECT allowed.test:{echo} HTTP/1.1\r\n\r\n").unwrap();
  let r = read_all(&mut c);
  assert!(r.starts_with("HTTP/1.1 403") && r.contains("deny set: loopback"), "{r}");
  assert_eq!(g.event()["allow"], false);

  // the end of stdin ends the gateway
  drop(g.stdin.take());
  let t = Instant::now();
  loop {
    if let Some(st) = g.child.try_wait().unwrap() {
      assert!(st.success());
      break;
    }
    assert!(t.elapsed() < T, "the gateway did not exit");
    std::thread::sleep(Duration::from_millis(20));
  }
}

#[test]
fn an_overlong_control_line_is_fatal() {
  let mut g = Gateway::start();
  let s = g.stdin.as_mut().unwrap();
  let _ = s.write_all(&vec![b' '; 1024 * 1024 + 10]);
  let r = g.reply();
  assert!(r["fatal"].as_str().unwrap().contains("longer than"), "{r}");
  let t = Instant::now();
  loop {
    if let Some(st) = g.child.try_wait().unwrap() {
      assert_eq!(st.code(), Some(2));
      break;
    }
    assert!(t.elapsed() < T, "the gateway did not exit");
    std::thread::sleep(Duration::from_millis(20));
  }
}
