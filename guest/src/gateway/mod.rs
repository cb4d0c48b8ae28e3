//! Gateway mode: `agentic-sandbox-guest gateway --listen <ipv4> [--http-port 3128]
//! [--socks-port 1080] [--dns-port 53]`.
//!
//! A sandbox with an egress policy sits on an internal network with no route out; this process
//! runs in a second container attached to that network and to one with egress, and is the
//! sandbox's only way out: an HTTP proxy (absolute-form http:// requests and CONNECT), a SOCKS5
//! proxy and a DNS responder, each deciding every destination with the policy of `egress.rs`.
//!
//! The control channel is stdin/stdout (the host attaches to the container), never a network
//! port: the sandbox can reach only the listening ports.
//!
//! - stdout: `{"ready":{"http":P,"socks":P,"dns":P}}` once the ports are bound, then one JSON
//!   line per control reply (`control.rs`) and per decision:
//!   `{"event":{"proto":"http"|"connect"|"socks"|"dns","dest":..,"ip":..|null,"port":N,
//!   "allow":bool,"rule":"..","reason":".."}}` (`reason` only on a denial or a failure; DNS
//!   events have port 0, any port). Events go through a bounded queue to the single writer
//!   thread; when it is full they are counted, not waited for (a slow host must not stall the
//!   sandbox's connections), and reported as `{"dropped":n}`.
//! - stdin: JSON lines `{"seq":N,"policy":{..}}` (`control.rs`); at its end the gateway exits.
//!
//! Until the first policy arrives everything is denied. A new policy applies to connections
//! and queries that start after it; established connections are not cut (a CONNECT tunnel
//! that was allowed stays open until either side closes it).
//!
//! Names are looked up by the gateway, so a lookup is itself traffic: a name the policy denies
//! whatever it resolves to (`Policy::deny_name`: deny by default, only domain entries allowed)
//! is refused without a lookup. With `allowOut` address entries any name may resolve to one of
//! them, so names are then looked up before the decision, and the lookups of denied names do
//! reach the gateway's nameserver.
//!
//! Threads, no async runtime: one accept loop per TCP port, one thread per client connection
//! (at most `MAX_CONNS`, with small stacks) plus one for the second direction of a splice, one
//! UDP loop with a thread per query (at most `MAX_DNS_INFLIGHT`). Everything a client sends is
//! hostile: reads of request heads have deadlines and size caps, and parsing never panics.

mod control;
mod dns;
mod http;
mod socks;
mod tls;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::egress::{normalize_name, Policy};

/// Client connections served at once (HTTP and SOCKS together); more are closed at once.
const MAX_CONNS: usize = 256;
/// Stack of every gateway thread: they parse small heads and copy with heap buffers.
const STACK: usize = 128 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a client's request head (HTTP) or handshake (SOCKS).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Events waiting for the writer; beyond that they are dropped and counted.
const EVENT_QUEUE: usize = 1024;
/// Longest name reported in an event (the longest valid domain name).
const MAX_DEST: usize = 253;

fn log(msg: &str) {
  let _ = writeln!(io::stderr(), "agentic-sandbox-guest gateway: {msg}");
}

enum Msg {
  Line(String),
  Exit(i32),
}

/// The way to stdout: a queue to the writer thread, the only place that writes there.
#[derive(Clone)]
struct Out {
  tx: SyncSender<Msg>,
  dropped: Arc<AtomicU64>,
}

impl Out {
  fn start() -> Out {
    let (tx, rx) = mpsc::sync_channel::<Msg>(EVENT_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    // at startup: if this fails there is nothing to serve
    if let Err(e) = std::thread::Builder::new().stack_size(STACK).spawn(move || write_loop(rx, d)) {
      log(&format!("cannot start the writer thread: {e}"));
      std::process::exit(2);
    }
    Out { tx, dropped }
  }

  /// A line that must not be lost (ready, control replies): waits for room in the queue.
  fn line(&self, s: String) {
    let _ = self.tx.send(Msg::Line(s));
  }

  /// An event: dropped (and counted) when the queue is full.
  fn event(&self, e: &Event) {
    let line = match serde_json::to_string(&serde_json::json!({ "event": e })) {
      Ok(l) => l,
      Err(_) => return,
    };
    match self.tx.try_send(Msg::Line(line)) {
      Ok(()) => {}
      Err(TrySendError::Full(_)) => {
        self.dropped.fetch_add(1, Ordering::Relaxed);
      }
      Err(TrySendError::Disconnected(_)) => {}
    }
  }

  /// Exit once everything queued before is written.
  fn exit(&self, code: i32) -> ! {
    let _ = self.tx.send(Msg::Exit(code));
    std::thread::sleep(Duration::from_secs(5));
    std::process::exit(code)
  }
}

fn write_loop(rx: mpsc::Receiver<Msg>, dropped: Arc<AtomicU64>) {
  let mut stdout = io::stdout().lock();
  loop {
    let msg = rx.recv_timeout(Duration::from_secs(1));
    let n = dropped.swap(0, Ordering::Relaxed);
    let mut text = String::new();
    if n > 0 {
      text.push_str(&format!("{{\"dropped\":{n}}}\n"));
    }
    let exit = match msg {
      Ok(Msg::Line(l)) => {
        text.push_str(&l);
        text.push('\n');
        None
      }
      Ok(Msg::Exit(c)) => Some(c),
      Err(RecvTimeoutError::Timeout) => None,
      Err(RecvTimeoutError::Disconnected) => Some(0),
    };
    if !text.is_empty() && (stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err()) {
      // nobody reads the events any more: the host is gone
      std::process::exit(0);
    }
    if let Some(c) = exit {
      std::process::exit(c);
    }
  }
}

/// One decision (or failure) as reported on stdout.
#[derive(Debug, Clone, Serialize)]
struct Event {
  proto: &'static str,
  dest: String,
  ip: Option<String>,
  port: u16,
  allow: bool,
  rule: String,
  #[serde(skip_serializing_if = "Option::is_none")]
  reason: Option<String>,
}

/// At most `MAX_DEST` bytes of a client-given name (cut on a char boundary).
fn clip(s: &str) -> String {
  let mut end = s.len().min(MAX_DEST);
  while !s.is_char_boundary(end) {
    end -= 1;
  }
  s[..end].to_string()
}

impl Event {
  fn new(proto: &'static str, dest: &str, port: u16) -> Event {
    Event { proto, dest: clip(dest), ip: None, port, allow: false, rule: String::new(), reason: None }
  }

  fn ip(mut self, ip: Option<Ipv4Addr>) -> Event {
    self.ip = ip.map(|i| i.to_string());
    self
  }

  fn allowed(mut self, rule: &str) -> Event {
    self.allow = true;
    self.rule = rule.to_string();
    self
  }

  fn denied(mut self, rule: &str, reason: &str) -> Event {
    self.allow = false;
    self.rule = rule.to_string();
    self.reason = Some(reason.to_string());
    self
  }

  fn reason(mut self, reason: &str) -> Event {
    self.reason = Some(reason.to_string());
    self
  }
}

/// State shared by every thread of the gateway.
struct Gw {
  policy: RwLock<Arc<Policy>>,
  out: Out,
  active: AtomicUsize,
}

impl Gw {
  /// The policy for one connection or query (a snapshot: a later update does not change it).
  fn policy(&self) -> Arc<Policy> {
    self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
  }

  fn set_policy(&self, p: Policy) {
    *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
  }

  fn event(&self, e: Event) {
    self.out.event(&e)
  }
}

/// Start a thread with a small stack; a failure (thread limits) is an error, not an abort.
fn spawn<F: FnOnce() + Send + 'static>(f: F) -> io::Result<std::thread::JoinHandle<()>> {
  std::thread::Builder::new().stack_size(STACK).spawn(f)
}

struct Args {
  listen: Ipv4Addr,
  http: u16,
  socks: u16,
  dns: u16,
}

fn parse_args(args: &[OsString]) -> Result<Args, String> {
  let mut a = Args { listen: Ipv4Addr::UNSPECIFIED, http: 3128, socks: 1080, dns: 53 };
  let mut listen = None;
  let mut it = args.iter().skip(2).map(|s| s.to_string_lossy().into_owned());
  while let Some(flag) = it.next() {
    let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
    let port = || value.parse::<u16>().map_err(|_| format!("{flag} {value:?}: not a port number (0 to 65535)"));
    match flag.as_str() {
      "--listen" => listen = Some(value.parse().map_err(|_| format!("--listen {value:?}: not an IPv4 address"))?),
      "--http-port" => a.http = port()?,
      "--socks-port" => a.socks = port()?,
      "--dns-port" => a.dns = port()?,
      _ => return Err(format!("unknown option {flag:?}")),
    }
  }
  a.listen = listen.ok_or("--listen <ipv4> is required")?;
  Ok(a)
}

/// Entry point of `agentic-sandbox-guest gateway ...`; never returns.
pub fn main(args: Vec<OsString>) -> ! {
  // no process of the same uid may read our memory or reopen the control channel
  unsafe {
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  let a = match parse_args(&args) {
    Ok(a) => a,
    Err(e) => {
      log(&format!("{e}; usage: agentic-sandbox-guest gateway --listen <ipv4> [--http-port 3128] [--socks-port 1080] [--dns-port 53]"));
      std::process::exit(2);
    }
  };
  let bind_err = |what: &str, port: u16, e: io::Error| -> ! {
    log(&format!("cannot bind the {what} port {}:{port}: {e}", a.listen));
    std::process::exit(2);
  };
  let http = TcpListener::bind((a.listen, a.http)).unwrap_or_else(|e| bind_err("HTTP proxy", a.http, e));
  let socks = TcpListener::bind((a.listen, a.socks)).unwrap_or_else(|e| bind_err("SOCKS5", a.socks, e));
  let dns = UdpSocket::bind((a.listen, a.dns)).unwrap_or_else(|e| bind_err("DNS", a.dns, e));
  let port = |r: io::Result<SocketAddr>| r.map(|s| s.port()).unwrap_or(0);
  let ready = serde_json::json!({ "ready": { "http": port(http.local_addr()), "socks": port(socks.local_addr()), "dns": port(dns.local_addr()) } });

  let out = Out::start();
  let gw = Arc::new(Gw { policy: RwLock::new(Arc::new(Policy::deny_all())), out: out.clone(), active: AtomicUsize::new(0) });
  out.line(ready.to_string());
  for (l, proto, handler) in [(http, "http", http::handle as fn(&Gw, TcpStream)), (socks, "socks", socks::handle)] {
    let g = gw.clone();
    if let Err(e) = spawn(move || accept_loop(g, l, proto, handler)) {
      log(&format!("cannot start the {proto} accept thread: {e}"));
      std::process::exit(2);
    }
  }
  let g = gw.clone();
  if let Err(e) = spawn(move || dns::serve(g, dns)) {
    log(&format!("cannot start the DNS thread: {e}"));
    std::process::exit(2);
  }
  control::run(&gw)
}

/// Decrements the count of active connections when the connection's thread ends.
struct Slot(Arc<Gw>);

impl Drop for Slot {
  fn drop(&mut self) {
    self.0.active.fetch_sub(1, Ordering::Relaxed);
  }
}

fn accept_loop(gw: Arc<Gw>, l: TcpListener, proto: &'static str, handler: fn(&Gw, TcpStream)) {
  loop {
    let s = match l.accept() {
      Ok((s, _)) => s,
      Err(_) => {
        // out of fds, or an aborted connection: wait a little rather than spin
        std::thread::sleep(Duration::from_millis(10));
        continue;
      }
    };
    if gw.active.fetch_add(1, Ordering::Relaxed) >= MAX_CONNS {
      gw.active.fetch_sub(1, Ordering::Relaxed);
      drop(s);
      gw.event(Event::new(proto, "", 0).denied("limit", &format!("too many connections (at most {MAX_CONNS})")));
      continue;
    }
    let slot = Slot(gw.clone());
    let g = gw.clone();
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(HEAD_TIMEOUT));
    // on failure the closure (with the stream and the slot) is dropped: closed and counted down
    if let Err(e) = spawn(move || {
      let _slot = slot;
      handler(&g, s)
    }) {
      gw.event(Event::new(proto, "", 0).denied("limit", &format!("cannot start a thread: {e}")));
    }
  }
}

/// Fill `buf` from `s` before `deadline`.
fn read_exact_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
  let mut done = 0;
  while done < buf.len() {
    let n = read_by(s, &mut buf[done..], deadline)?;
    if n == 0 {
      return Err(io::ErrorKind::UnexpectedEof.into());
    }
    done += n;
  }
  Ok(())
}

/// One read that gives up at `deadline` (TimedOut).
fn read_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
  loop {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
      return Err(io::ErrorKind::TimedOut.into());
    }
    s.set_read_timeout(Some(left))?;
    match s.read(buf) {
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(io::ErrorKind::TimedOut.into()),
      r => return r,
    }
  }
}

/// What a client asked to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
  Name(String),
  Ip(Ipv4Addr),
}

impl Target {
  /// An IPv4 literal or a valid domain name; None for anything else.
  fn parse(host: &str) -> Option<Target> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
      return Some(Target::Ip(ip));
    }
    normalize_name(host).map(Target::Name)
  }

  fn name(&self) -> Option<&str> {
    match self {
      Target::Name(n) => Some(n),
      Target::Ip(_) => None,
    }
  }
}

/// An allowed, connected upstream.
struct Opened {
  stream: TcpStream,
  ip: Ipv4Addr,
  rule: String,
}

/// Why no upstream was opened.
enum Refusal {
  Denied { ip: Option<Ipv4Addr>, rule: String },
  Resolve(String),
  Connect { ip: Ipv4Addr, rule: String, err: io::Error },
}

impl Refusal {
  /// The event for this refusal.
  fn event(&self, proto: &'static str, dest: &str, port: u16) -> Event {
    let e = Event::new(proto, dest, port);
    match self {
      Refusal::Denied { ip, rule } => e.ip(*ip).denied(rule, "denied by policy"),
      Refusal::Resolve(why) => e.denied("resolve", &format!("cannot resolve: {why}")),
      Refusal::Connect { ip, rule, err } => e.ip(Some(*ip)).allowed(rule).reason(&format!("connect: {err}")),
    }
  }
}

/// Decide and connect: a name is resolved and its addresses are tried in order, the first one
/// the policy allows for this name and port is connected to; if none is allowed the first
/// address's rule is the answer (an allowed name resolving to a private address is refused).
fn open(policy: &Policy, t: &Target, port: u16) -> Result<Opened, Refusal> {
  let addrs = match t {
    Target::Ip(ip) => vec![*ip],
    Target::Name(n) => {
      if let Some(d) = policy.deny_name(n) {
        return Err(Refusal::Denied { ip: None, rule: d.rule });
      }
      dns::resolve(policy, n).map_err(|e| Refusal::Resolve(e.to_string()))?
    }
  };
  let mut first = None;
  for ip in &addrs {
    let d = policy.decide(t.name(), *ip, port);
    if d.allow {
      let sa = SocketAddr::V4(SocketAddrV4::new(*ip, port));
      return match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
        Ok(stream) => {
          let _ = stream.set_nodelay(true);
          Ok(Opened { stream, ip: *ip, rule: d.rule })
        }
        Err(err) => Err(Refusal::Connect { ip: *ip, rule: d.rule, err }),
      };
    }
    first.get_or_insert((*ip, d.rule));
  }
  match first {
    Some((ip, rule)) => Err(Refusal::Denied { ip: Some(ip), rule }),
    None => Err(Refusal::Resolve("no IPv4 address".to_string())),
  }
}

/// Copy `from` to `to` until `from` ends, then end `to`'s write side; on an error tear both
/// connections down (so that the other direction ends too).
fn copy(mut from: TcpStream, mut to: TcpStream) {
  let mut buf = vec![0u8; 64 * 1024];
  loop {
    match from.read(&mut buf) {
      Ok(0) => {
        let _ = to.shutdown(Shutdown::Write);
        return;
      }
      Ok(n) => {
        if to.write_all(&buf[..n]).is_err() {
          break;
        }
      }
      Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
      Err(_) => break,
    }
  }
  let _ = from.shutdown(Shutdown::Both);
  let _ = to.shutdown(Shutdown::Both);
}

/// Start copying upstream -> client on a thread of its own (None: could not, both closed).
fn start_down(client: &TcpStream, up: &TcpStream) -> Option<std::thread::JoinHandle<()>> {
  let (c, u) = match (client.try_clone(), up.try_clone()) {
    (Ok(c), Ok(u)) => (c, u),
    _ => return None,
  };
  let _ = client.set_read_timeout(None);
  let _ = client.set_write_timeout(None);
  match spawn(move || copy(u, c)) {
    Ok(h) => Some(h),
    Err(_) => {
      let _ = client.shutdown(Shutdown::Both);
      let _ = up.shutdown(Shutdown::Both);
      None
    }
  }
}

/// Send `first` upstream, then copy client -> upstream here until it ends, and wait for the
/// other direction (started by `start_down`).
fn finish_splice(client: TcpStream, mut up: TcpStream, first: &[u8], down: std::thread::JoinHandle<()>) {
  // reading the first bytes set a deadline on the socket; the tunnel itself has none
  let _ = client.set_read_timeout(None);
  if first.is_empty() || up.write_all(first).is_ok() {
    copy(client, up);
  } else {
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
  }
  let _ = down.join();
}

/// Both directions of a connection, `first` sent upstream before the client's next bytes.
fn splice(client: TcpStream, up: TcpStream, first: &[u8]) {
  if let Some(down) = start_down(&client, &up) {
    finish_splice(client, up, first, down);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn clip_cuts_on_char_boundaries() {
    assert_eq!(clip("abc"), "abc");
    let long = "é".repeat(200);
    let c = clip(&long);
    assert!(c.len() <= MAX_DEST && c.len() >= MAX_DEST - 1);
  }

  #[test]
  fn targets() {
    assert_eq!(Target::parse("1.2.3.4"), Some(Target::Ip(Ipv4Addr::new(1, 2, 3, 4))));
    assert_eq!(Target::parse("Example.com."), Some(Target::Name("example.com".into())));
    assert_eq!(Target::parse("a b"), None);
    assert_eq!(Target::parse(""), None);
  }

  #[test]
  fn events_are_escaped_json() {
    let e = Event::new("http", "a\"b\n", 80).denied("r", "x");
    let s = serde_json::to_string(&e).unwrap();
    assert!(s.contains(r#""dest":"a\"b\n""#), "{s}");
    assert!(s.contains(r#""ip":null"#));
    let e = Event::new("dns", "a", 0).allowed("default");
    assert!(!serde_json::to_string(&e).unwrap().contains("reason"));
  }

  #[test]
  fn args() {
    let v = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
    let a = parse_args(&v(&["x", "gateway", "--listen", "10.0.0.1", "--dns-port", "0"])).unwrap();
    assert_eq!((a.listen, a.http, a.socks, a.dns), (Ipv4Addr::new(10, 0, 0, 1), 3128, 1080, 0));
    assert!(parse_args(&v(&["x", "gateway"])).is_err());
    assert!(parse_args(&v(&["x", "gateway", "--listen"])).is_err());
    assert!(parse_args(&v(&["x", "gateway", "--listen", "::1"])).is_err());
    assert!(parse_args(&v(&["x", "gateway", "--listen", "1.2.3.4", "--bogus", "1"])).is_err());
  }
}
