//! The egress gateway of a sandbox with `network` rules (README "Network").
//!
//! Such a sandbox sits on its own internal network (no route out, no address on the host side of
//! the bridge). Its only way out is a second container, the gateway: the guest binary in its
//! `gateway` mode, attached to that internal network at a fixed address (the last one of the
//! sandbox's /28) and to `docker.egressNetwork`. It serves an HTTP(S) proxy (port 3128), a SOCKS5
//! endpoint (1080) and a resolver (53) on the internal address only, and decides every connection
//! and every DNS answer with the policy this module sends it.
//!
//! The control channel is the gateway's stdin and stdout (a Docker attach), never a network port:
//! the sandbox can reach the gateway's proxy ports, not its policy. The policy goes in as one JSON
//! line per update (acknowledged by sequence number); decisions come out as JSON lines, which
//! become the sandbox's `network` log entries and counters. The gateway's output is hostile input
//! as much as the sandbox's (a proxy bug could hand the sandbox the gateway): lines are capped,
//! unparsable ones are dropped, acknowledgements have deadlines.
//!
//! The gateway runs as `nobody` with no capabilities, a read-only root, no new privileges, IP
//! forwarding off (so a route set through it would lead nowhere) and small memory and pids limits.
//! When the owning process goes away its attach closes, the gateway sees the end of its input and
//! exits; the reaper removes the container with the sandbox's other resources.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::super::guest::{InputStream, OutputStream};
use crate::core::config::NetworkPolicy;
use crate::core::error::{Result, SandboxError};
use crate::core::provider::{NetworkEvent, NetworkLog, NetworkStatus};

pub const HTTP_PORT: u16 = 3128;
pub const SOCKS_PORT: u16 = 1080;
/// The longest line the host accepts from the gateway; longer ones are dropped whole.
const MAX_LINE: usize = 64 * 1024;
/// How long the gateway may take to bind its ports, and to apply a policy.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
const APPLY_DEADLINE: Duration = Duration::from_secs(5);

/// The gateway's address on a sandbox network: the last usable address of the subnet (Docker
/// hands the sandbox addresses from the bottom; the first one is the reserved bridge address).
pub fn address_in(subnet: &str) -> Option<Ipv4Addr> {
  let (base, prefix) = subnet.split_once('/')?;
  let base: Ipv4Addr = base.parse().ok()?;
  let prefix: u32 = prefix.parse().ok()?;
  if !(8..=29).contains(&prefix) {
    return None;
  }
  let size = 1u32 << (32 - prefix);
  Some(Ipv4Addr::from(u32::from(base) + size - 2))
}

/// What the sandbox's processes get, so that ordinary clients use the gateway: HTTP(S) through
/// the proxy (curl, pip, npm, requests, git, wget …), anything else through SOCKS5 for clients
/// that take `ALL_PROXY` (curl) or are pointed at it.
pub fn proxy_env(ip: Ipv4Addr) -> Vec<String> {
  let http = format!("http://{ip}:{HTTP_PORT}");
  let socks = format!("socks5h://{ip}:{SOCKS_PORT}");
  let no = "localhost,127.0.0.1,::1";
  let mut v = Vec::new();
  for (k, val) in [("HTTP_PROXY", &http), ("HTTPS_PROXY", &http), ("ALL_PROXY", &socks), ("NO_PROXY", &no.to_string())] {
    v.push(format!("{k}={val}"));
    v.push(format!("{}={val}", k.to_ascii_lowercase()));
  }
  v
}

/// The line the gateway prints once its ports are bound.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
  pub http: u16,
  pub socks: u16,
  pub dns: u16,
}

struct Shared {
  acks: Mutex<HashMap<u64, oneshot::Sender<std::result::Result<(), String>>>>,
  ready: Mutex<Option<oneshot::Sender<Ready>>>,
  allowed: AtomicU64,
  denied: AtomicU64,
  log: Mutex<Option<NetworkLog>>,
  /// why the gateway is gone, once it is
  dead: Mutex<Option<String>>,
}

/// The host's end of one gateway's control channel.
pub struct Gateway {
  pub ip: Ipv4Addr,
  pub container: String,
  input: tokio::sync::Mutex<InputStream>,
  seq: AtomicU64,
  policy: Mutex<NetworkPolicy>,
  /// the rest of every policy the gateway gets: extraHosts and the engine host's addresses
  fixed: Value,
  shared: Arc<Shared>,
  reader: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
  fn drop(&mut self) {
    self.reader.abort();
  }
}

impl Gateway {
  /// Take over an attached, started gateway container: wait for its ready line, then send the
  /// first policy and wait for it to be applied.
  #[allow(clippy::too_many_arguments)]
  pub async fn connect(
    ip: Ipv4Addr,
    container: String,
    output: OutputStream,
    input: InputStream,
    policy: NetworkPolicy,
    extra_hosts: &std::collections::BTreeMap<String, String>,
    host_addrs: Vec<Ipv4Addr>,
    log: Option<NetworkLog>,
  ) -> Result<Self> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let shared = Arc::new(Shared {
      acks: Mutex::new(HashMap::new()),
      ready: Mutex::new(Some(ready_tx)),
      allowed: AtomicU64::new(0),
      denied: AtomicU64::new(0),
      log: Mutex::new(log),
      dead: Mutex::new(None),
    });
    let reader = tokio::spawn(read_loop(shared.clone(), output));
    let fixed = json!({
      "extraHosts": extra_hosts,
      "hostAddrs": host_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    });
    let gw = Self {
      ip,
      container,
      input: tokio::sync::Mutex::new(input),
      seq: AtomicU64::new(0),
      policy: Mutex::new(policy.clone()),
      fixed,
      shared,
      reader,
    };
    match tokio::time::timeout(READY_DEADLINE, ready_rx).await {
      Ok(Ok(_)) => {}
      Ok(Err(_)) => {
        let why = gw.shared.dead.lock().unwrap().clone().unwrap_or_default();
        return Err(SandboxError::provider(format!("the egress gateway did not start: {why}")));
      }
      Err(_) => {
        return Err(SandboxError::provider(format!(
          "the egress gateway did not bind its ports within {} s",
          READY_DEADLINE.as_secs()
        )))
      }
    }
    gw.apply(&policy).await?;
    Ok(gw)
  }

  pub fn set_log(&self, log: NetworkLog) {
    *self.shared.log.lock().unwrap() = Some(log);
  }

  /// Replace the rules; resolves once the gateway applies them to new connections.
  pub async fn apply(&self, policy: &NetworkPolicy) -> Result<()> {
    if let Some(why) = self.shared.dead.lock().unwrap().clone() {
      return Err(SandboxError::provider(format!("the sandbox's egress gateway is gone ({why}); destroy the sandbox and create a new one")));
    }
    let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut wire = self.fixed.clone();
    wire["allowOut"] = json!(policy.allow_out);
    wire["denyOut"] = json!(policy.deny_out);
    let mut line = serde_json::to_vec(&json!({ "seq": seq, "policy": wire })).unwrap_or_default();
    line.push(b'\n');
    let (tx, rx) = oneshot::channel();
    self.shared.acks.lock().unwrap().insert(seq, tx);
    let sent = tokio::time::timeout(APPLY_DEADLINE, async {
      let mut input = self.input.lock().await;
      input.write_all(&line).await?;
      input.flush().await
    })
    .await;
    let failed = |why: String| {
      self.shared.acks.lock().unwrap().remove(&seq);
      Err(SandboxError::provider(format!("could not update the egress gateway: {why}")))
    };
    match sent {
      Err(_) => return failed(format!("it did not take the rules within {} s", APPLY_DEADLINE.as_secs())),
      Ok(Err(e)) => return failed(e.to_string()),
      Ok(Ok(())) => {}
    }
    match tokio::time::timeout(APPLY_DEADLINE, rx).await {
      Ok(Ok(Ok(()))) => {
        *self.policy.lock().unwrap() = policy.clone();
        Ok(())
      }
      // the rules were checked by the same module before they were sent: this is a version skew
      Ok(Ok(Err(why))) => Err(SandboxError::invalid_config(format!("the egress gateway refused the rules: {why}"))),
      Ok(Err(_)) => failed(self.shared.dead.lock().unwrap().clone().unwrap_or_else(|| "it went away".into())),
      Err(_) => failed(format!("it did not apply the rules within {} s", APPLY_DEADLINE.as_secs())),
    }
  }

  pub fn status(&self) -> NetworkStatus {
    NetworkStatus {
      policy: self.policy.lock().unwrap().clone(),
      gateway: Some(self.ip.to_string()),
      allowed: self.shared.allowed.load(Ordering::Relaxed),
      denied: self.shared.denied.load(Ordering::Relaxed),
    }
  }
}

async fn read_loop(shared: Arc<Shared>, mut output: OutputStream) {
  let mut buf: Vec<u8> = Vec::new();
  // inside an overlong line: everything up to its newline is dropped
  let mut skipping = false;
  let why = loop {
    let chunk = match output.next().await {
      Some(Ok(bollard::container::LogOutput::StdOut { message })) => message,
      // the gateway writes nothing to stderr; whatever comes there is ignored
      Some(Ok(_)) => continue,
      Some(Err(e)) => break format!("its output failed: {e}"),
      None => break "it exited".to_string(),
    };
    let mut rest: &[u8] = &chunk;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
      if !skipping {
        buf.extend_from_slice(&rest[..nl]);
        handle_line(&shared, &buf);
      }
      buf.clear();
      skipping = false;
      rest = &rest[nl + 1..];
    }
    if !skipping {
      buf.extend_from_slice(rest);
      if buf.len() > MAX_LINE {
        tracing::warn!(len = buf.len(), "egress gateway line over the cap dropped");
        buf.clear();
        skipping = true;
      }
    }
  };
  tracing::debug!(why = %why, "egress gateway channel closed");
  *shared.dead.lock().unwrap() = Some(why.clone());
  shared.ready.lock().unwrap().take();
  for (_, tx) in shared.acks.lock().unwrap().drain() {
    let _ = tx.send(Err(why.clone()));
  }
  notice(&shared, false, "gateway stopped", format!("the egress gateway stopped ({why}): the sandbox has no way out now"));
}

/// A log entry about the gateway itself (not a connection's decision).
fn notice(shared: &Shared, allow: bool, rule: &str, reason: String) {
  let log = shared.log.lock().unwrap().clone();
  if let Some(log) = log {
    log(NetworkEvent { proto: "gateway".into(), dest: "-".into(), ip: None, port: 0, allow, rule: rule.into(), reason: Some(reason) });
  }
}

fn handle_line(shared: &Shared, line: &[u8]) {
  let Ok(v) = serde_json::from_slice::<Value>(line) else {
    tracing::debug!("unparsable egress gateway line dropped");
    return;
  };
  if let Some(r) = v.get("ready") {
    let port = |k: &str| r.get(k).and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    if let Some(tx) = shared.ready.lock().unwrap().take() {
      let _ = tx.send(Ready { http: port("http"), socks: port("socks"), dns: port("dns") });
    }
  } else if let Some(seq) = v.get("applied").and_then(Value::as_u64) {
    if let Some(tx) = shared.acks.lock().unwrap().remove(&seq) {
      let _ = tx.send(Ok(()));
    }
  } else if let (Some(seq), Some(err)) = (v.get("seq").and_then(Value::as_u64), v.get("error")) {
    if let Some(tx) = shared.acks.lock().unwrap().remove(&seq) {
      let _ = tx.send(Err(cut(err.as_str().unwrap_or("?"), 1000)));
    }
  } else if let Some(e) = v.get("event") {
    let Some(event) = parse_event(e) else { return };
    let counter = if event.allow { &shared.allowed } else { &shared.denied };
    counter.fetch_add(1, Ordering::Relaxed);
    let log = shared.log.lock().unwrap().clone();
    if let Some(log) = log {
      log(event);
    }
  } else if let Some(n) = v.get("dropped").and_then(Value::as_u64) {
    notice(shared, true, "log", format!("{n} decisions were not logged (too many at once); the counters lack them too"));
  }
}

fn cut(s: &str, max: usize) -> String {
  if s.len() <= max {
    return s.to_string();
  }
  let mut end = max;
  while !s.is_char_boundary(end) {
    end -= 1;
  }
  format!("{}…", &s[..end])
}

fn parse_event(e: &Value) -> Option<NetworkEvent> {
  let s = |k: &str| e.get(k).and_then(Value::as_str).map(|v| cut(v, 300));
  Some(NetworkEvent {
    proto: s("proto")?,
    dest: s("dest")?,
    ip: s("ip"),
    port: e.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
    allow: e.get("allow").and_then(Value::as_bool)?,
    rule: s("rule").unwrap_or_default(),
    reason: s("reason"),
  })
}

/// The engine host's own addresses, for the gateway's deny set: the egress network's gateway
/// (the host's side of its bridge) and, since the engine usually runs on this machine, this
/// machine's interface addresses (on a remote engine they are merely extra denials).
/// The gateway container's endpoint on that network names it (the network's IPAM config may not,
/// when the network was created with a subnet but no explicit gateway).
pub async fn host_addresses(docker: &bollard::Docker, gateway_container: &str, egress_network: &str, deadline: Duration) -> Vec<Ipv4Addr> {
  let mut out = local_ipv4_addresses();
  if let Ok(Ok(c)) = tokio::time::timeout(
    deadline,
    docker.inspect_container(gateway_container, None::<bollard::query_parameters::InspectContainerOptions>),
  )
  .await
  {
    let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
    for (name, ep) in networks {
      if name == egress_network || ep.network_id.as_deref() == Some(egress_network) {
        if let Some(ip) = ep.gateway.and_then(|g| g.parse().ok()) {
          out.push(ip);
        }
      }
    }
  }
  out.sort();
  out.dedup();
  out
}

fn local_ipv4_addresses() -> Vec<Ipv4Addr> {
  let mut out = Vec::new();
  let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
  // SAFETY: getifaddrs fills `head` with a list we only read and then free with freeifaddrs
  unsafe {
    if libc::getifaddrs(&mut head) != 0 {
      return out;
    }
    let mut p = head;
    while !p.is_null() {
      let a = (*p).ifa_addr;
      if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
        let sin = &*(a as *const libc::sockaddr_in);
        out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
      }
      p = (*p).ifa_next;
    }
    libc::freeifaddrs(head);
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_gateway_takes_the_last_address_of_the_subnet() {
    assert_eq!(address_in("10.213.4.16/28"), Some(Ipv4Addr::new(10, 213, 4, 30)));
    assert_eq!(address_in("10.0.0.0/24"), Some(Ipv4Addr::new(10, 0, 0, 254)));
    assert_eq!(address_in("10.0.0.0/30"), None);
    assert_eq!(address_in("nonsense"), None);
  }

  #[test]
  fn events_from_the_gateway_are_checked_and_cut() {
    let e = parse_event(&json!({ "proto": "connect", "dest": "x".repeat(5000), "ip": "10.0.0.1", "port": 443, "allow": false, "rule": "denyOut 10.0.0.0/8" })).unwrap();
    assert!(e.dest.len() < 400);
    assert_eq!((e.port, e.allow), (443, false));
    assert!(parse_event(&json!({ "proto": "http", "dest": "a" })).is_none(), "no decision: dropped");
    assert!(parse_event(&json!({ "proto": "http", "dest": "a", "allow": true, "port": 99999 })).unwrap().port == 0);
  }

  #[test]
  fn proxy_variables_name_the_gateway() {
    let env = proxy_env(Ipv4Addr::new(10, 213, 0, 14));
    assert!(env.contains(&"HTTPS_PROXY=http://10.213.0.14:3128".to_string()));
    assert!(env.contains(&"all_proxy=socks5h://10.213.0.14:1080".to_string()));
  }
}
