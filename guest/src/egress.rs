//! Egress rules: parsing `allowOut` / `denyOut` entries, presets, and the decision for one
//! destination.
//!
//! Shared by the host addon (which validates a sandbox's options early, with the same messages)
//! and the guest binary's gateway mode (which enforces them). Self-contained on purpose: std and
//! serde only, no `crate::` paths, so that both crates can include this file with `#[path]`.
//!
//! # Semantics
//!
//! An entry is a domain (`example.com`, or `*.example.com` for every subdomain at any depth but
//! not `example.com` itself), an IPv4 address or an IPv4 CIDR, each optionally with `:port`.
//! For one connection (a name if the client asked for one, the address it resolved to, a port):
//!
//! 1. An address in the fixed deny set (loopback, private ranges, link-local with the cloud
//!    metadata endpoint, ..., and the engine host's own addresses) is denied, unless an
//!    `allowOut` address entry names it explicitly: the entry contains the address *and* lies
//!    inside the fixed range. So `172.17.0.0/16` opens 172.17.x.y, but `0.0.0.0/0` never opens
//!    169.254.169.254; an engine host address is opened only by exactly that `/32`. This check
//!    runs on the resolved address, so an allowed name that resolves to a private address (DNS
//!    rebinding) is still refused.
//! 2. A matching `allowOut` entry allows (`allowOut` wins over `denyOut`).
//! 3. A matching `denyOut` entry denies.
//! 4. Anything else is allowed (so "deny by default" is `denyOut: ['0.0.0.0/0']`).
//!
//! Domain entries match the name the client asked for, address entries the resolved address.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One parsed `allowOut` / `denyOut` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
  pub host: Host,
  pub port: Option<u16>,
  /// The entry as written (for the `rule` of a decision).
  pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
  /// Lowercase, without a trailing dot; `wildcard`: the entry was `*.name`.
  Domain { name: String, wildcard: bool },
  /// An IPv4 network (a single address is a /32), host bits zero.
  Net { addr: u32, prefix: u8 },
}

/// Preset names accepted in `allowOut` / `denyOut` lists.
pub const PRESETS: &[&str] = &["npm", "pypi", "github", "crates", "go", "debian", "registries"];

const NPM: &[&str] = &["registry.npmjs.org", "registry.yarnpkg.com"];
const PYPI: &[&str] = &["pypi.org", "files.pythonhosted.org"];
// codeload.github.com, api.github.com and the like are covered by the wildcard
const GITHUB: &[&str] = &["github.com", "*.github.com", "*.githubusercontent.com"];
const CRATES: &[&str] = &["crates.io", "index.crates.io", "static.crates.io"];
const GO: &[&str] = &["proxy.golang.org", "sum.golang.org"];
const DEBIAN: &[&str] = &["deb.debian.org", "security.debian.org"];
/// Package registries only (npm + pypi + crates + go).
const REGISTRIES: &[&str] = &[
  "registry.npmjs.org",
  "registry.yarnpkg.com",
  "pypi.org",
  "files.pythonhosted.org",
  "crates.io",
  "index.crates.io",
  "static.crates.io",
  "proxy.golang.org",
  "sum.golang.org",
];

/// The entries of a preset, `None` for an unknown name.
pub fn preset(name: &str) -> Option<&'static [&'static str]> {
  Some(match name {
    "npm" => NPM,
    "pypi" => PYPI,
    "github" => GITHUB,
    "crates" => CRATES,
    "go" => GO,
    "debian" => DEBIAN,
    "registries" => REGISTRIES,
    _ => return None,
  })
}

/// Addresses no sandbox reaches unless an `allowOut` entry names them explicitly: (cidr, label).
pub const FIXED_DENY: &[(&str, &str)] = &[
  ("0.0.0.0/8", "this network"),
  ("127.0.0.0/8", "loopback"),
  ("10.0.0.0/8", "private"),
  ("172.16.0.0/12", "private"),
  ("192.168.0.0/16", "private"),
  ("100.64.0.0/10", "carrier-grade NAT"),
  ("169.254.0.0/16", "link-local (cloud metadata 169.254.169.254)"),
  ("224.0.0.0/4", "multicast"),
  ("240.0.0.0/4", "reserved (incl. broadcast)"),
];

fn mask(prefix: u8) -> u32 {
  if prefix == 0 {
    0
  } else {
    u32::MAX << (32 - prefix as u32)
  }
}

fn net_contains(addr: u32, prefix: u8, ip: u32) -> bool {
  ip & mask(prefix) == addr
}

/// A domain name as the rules see it: lowercase, one trailing dot stripped, labels of
/// [a-z0-9-] (1..63 chars, not starting or ending with '-'), at most 253 chars. `None` if it is
/// not one. Also used on names from clients (hostile input) before they are resolved.
pub fn normalize_name(s: &str) -> Option<String> {
  let s = s.strip_suffix('.').unwrap_or(s);
  if s.is_empty() || s.len() > 253 {
    return None;
  }
  let s = s.to_ascii_lowercase();
  for label in s.split('.') {
    let ok = !label.is_empty()
      && label.len() <= 63
      && !label.starts_with('-')
      && !label.ends_with('-')
      && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
      return None;
    }
  }
  Some(s)
}

/// Whether `s` looks like an attempt at an IPv4 address (digits and dots only).
fn looks_numeric(s: &str) -> bool {
  !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn parse_port(entry: &str, p: &str) -> Result<u16, String> {
  match p.parse::<u16>() {
    Ok(n) if n >= 1 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
    _ => Err(format!("egress entry {entry:?}: port {p:?} is not a number from 1 to 65535; write host:port, e.g. example.com:443")),
  }
}

fn parse_cidr(entry: &str, h: &str) -> Result<Host, String> {
  let (a, p) = h.split_once('/').unwrap_or((h, ""));
  let addr: Ipv4Addr = a
    .parse()
    .map_err(|_| format!("egress entry {entry:?}: {a:?} is not an IPv4 address; write a CIDR like 10.0.0.0/8"))?;
  let prefix = match p.parse::<u8>() {
    Ok(n) if n <= 32 && p.bytes().all(|b| b.is_ascii_digit()) => n,
    _ => return Err(format!("egress entry {entry:?}: prefix length {p:?} is not a number from 0 to 32; write a CIDR like 10.0.0.0/8")),
  };
  let a = u32::from(addr);
  let net = a & mask(prefix);
  if net != a {
    return Err(format!(
      "egress entry {entry:?}: {addr} has bits set outside the /{prefix} prefix; write the network address {}/{prefix}",
      Ipv4Addr::from(net)
    ));
  }
  Ok(Host::Net { addr: net, prefix })
}

fn parse_domain(entry: &str, h: &str) -> Result<Host, String> {
  let (rest, wildcard) = match h.strip_prefix("*.") {
    Some(r) => (r, true),
    None => (h, false),
  };
  if rest.contains('*') {
    return Err(format!("egress entry {entry:?}: a wildcard is only allowed as a leading '*.', e.g. *.example.com"));
  }
  match normalize_name(rest) {
    Some(name) if !looks_numeric(&name) => Ok(Host::Domain { name, wildcard }),
    Some(_) => Err(format!("egress entry {entry:?}: {rest:?} is not a valid IPv4 address (four numbers 0-255, e.g. 10.1.2.3)")),
    None => Err(format!(
      "egress entry {entry:?}: {rest:?} is not a valid domain name (labels of a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-'; at most 253 characters)"
    )),
  }
}

/// Parse one entry: `example.com`, `*.example.com`, `db`, `1.2.3.4`, `10.0.0.0/8`, each
/// optionally followed by `:port`.
pub fn parse_entry(s: &str) -> Result<Entry, String> {
  let t = s.trim();
  if t.is_empty() {
    return Err("egress entry \"\" is empty; write a domain, an IPv4 address or a CIDR".to_string());
  }
  if t.contains('[') || t.matches(':').count() > 1 {
    return Err(format!("egress entry {s:?}: IPv6 is not supported: sandboxes have IPv4 only"));
  }
  let (h, port) = match t.split_once(':') {
    Some((h, p)) => (h, Some(parse_port(s, p)?)),
    None => (t, None),
  };
  let host = if h.contains('/') {
    parse_cidr(s, h)?
  } else if let Ok(a) = h.parse::<Ipv4Addr>() {
    Host::Net { addr: u32::from(a), prefix: 32 }
  } else {
    parse_domain(s, h)?
  };
  Ok(Entry { host, port, text: t.to_string() })
}

/// Parse a list, expanding preset names; the error names the bad item.
pub fn expand(list: &[String]) -> Result<Vec<Entry>, String> {
  let mut out = Vec::new();
  for item in list {
    match preset(item.trim()) {
      Some(p) => {
        for e in p {
          out.push(parse_entry(e)?);
        }
      }
      None => out.push(parse_entry(item)?),
    }
  }
  Ok(out)
}

/// The policy as the host sends it (JSON, camelCase).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyWire {
  #[serde(default)]
  pub allow_out: Vec<String>,
  #[serde(default)]
  pub deny_out: Vec<String>,
  /// name -> IPv4 address, answered before any DNS lookup (like `--add-host`).
  #[serde(default)]
  pub extra_hosts: BTreeMap<String, String>,
  /// The engine host's own addresses: denied like the fixed set.
  #[serde(default)]
  pub host_addrs: Vec<String>,
}

/// The outcome for one destination; `rule` says which rule decided, e.g. "allowOut pypi.org",
/// "denyOut 0.0.0.0/0", "deny set: private 10.0.0.0/8", "default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
  pub allow: bool,
  pub rule: String,
}

#[derive(Debug)]
struct DenyNet {
  addr: u32,
  prefix: u8,
  label: String,
  text: String,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
  allow: Vec<Entry>,
  deny: Vec<Entry>,
  deny_set: Vec<DenyNet>,
  extra_hosts: BTreeMap<String, Ipv4Addr>,
}

/// `port` None: "some port" (a DNS answer, before any connection).
fn port_matches(entry: Option<u16>, port: Option<u16>, allowing: bool) -> bool {
  match (entry, port) {
    (None, _) => true,
    (Some(e), Some(p)) => e == p,
    // any port: an allow entry for one port may allow; a deny entry for one port denies not all
    (Some(_), None) => allowing,
  }
}

fn host_matches(host: &Host, name: Option<&str>, ip: u32) -> bool {
  match host {
    Host::Net { addr, prefix } => net_contains(*addr, *prefix, ip),
    Host::Domain { name: n, wildcard } => match name {
      None => false,
      Some(q) if *wildcard => q.len() > n.len() + 1 && q.ends_with(n.as_str()) && q.as_bytes()[q.len() - n.len() - 1] == b'.',
      Some(q) => q == n,
    },
  }
}

fn parse_ipv4(what: &str, s: &str) -> Result<Ipv4Addr, String> {
  s.trim().parse().map_err(|_| format!("{what}: {s:?} is not an IPv4 address (e.g. 10.1.2.3)"))
}

impl Policy {
  pub fn compile(w: &PolicyWire) -> Result<Policy, String> {
    let allow = expand(&w.allow_out).map_err(|e| format!("allowOut: {e}"))?;
    let deny = expand(&w.deny_out).map_err(|e| format!("denyOut: {e}"))?;
    let mut deny_set = Vec::new();
    for (cidr, label) in FIXED_DENY {
      if let Ok(Entry { host: Host::Net { addr, prefix }, .. }) = parse_entry(cidr) {
        deny_set.push(DenyNet { addr, prefix, label: label.to_string(), text: cidr.to_string() });
      }
    }
    for h in &w.host_addrs {
      let a = parse_ipv4("hostAddrs", h)?;
      deny_set.push(DenyNet { addr: u32::from(a), prefix: 32, label: "engine host".to_string(), text: a.to_string() });
    }
    let mut extra_hosts = BTreeMap::new();
    for (name, ip) in &w.extra_hosts {
      let n = normalize_name(name).ok_or_else(|| format!("extraHosts: {name:?} is not a valid host name"))?;
      extra_hosts.insert(n, parse_ipv4(&format!("extraHosts {name:?}"), ip)?);
    }
    Ok(Policy { allow, deny, deny_set, extra_hosts })
  }

  /// Deny everything (what the gateway enforces before it has a policy).
  pub fn deny_all() -> Policy {
    let w = PolicyWire { deny_out: vec!["0.0.0.0/0".to_string()], ..Default::default() };
    match Policy::compile(&w) {
      Ok(p) => p,
      Err(_) => Policy { allow: Vec::new(), deny: Vec::new(), deny_set: Vec::new(), extra_hosts: BTreeMap::new() },
    }
  }

  /// The decision for a connection to `ip:port`, asked for as `name` (None: by address).
  pub fn decide(&self, name: Option<&str>, ip: Ipv4Addr, port: u16) -> Decision {
    self.decide_port(name, ip, Some(port))
  }

  /// Whether some port of `ip` could be reached as `name` (for DNS answers).
  pub fn decide_any_port(&self, name: Option<&str>, ip: Ipv4Addr) -> Decision {
    self.decide_port(name, ip, None)
  }

  fn decide_port(&self, name: Option<&str>, ip: Ipv4Addr, port: Option<u16>) -> Decision {
    let name = name.map(|n| n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase());
    let name = name.as_deref();
    let ip = u32::from(ip);
    // 1. the fixed deny set; ranges that contain one address are nested: the narrowest decides
    if let Some(d) = self.deny_set.iter().filter(|d| net_contains(d.addr, d.prefix, ip)).max_by_key(|d| d.prefix) {
      let lifting = self.allow.iter().find(|e| {
        matches!(e.host, Host::Net { addr, prefix } if prefix >= d.prefix && net_contains(addr, prefix, ip))
          && port_matches(e.port, port, true)
      });
      return match lifting {
        Some(e) => Decision { allow: true, rule: format!("allowOut {}", e.text) },
        None => Decision { allow: false, rule: format!("deny set: {} {}", d.label, d.text) },
      };
    }
    // 2. allowOut wins
    if let Some(e) = self.allow.iter().find(|e| host_matches(&e.host, name, ip) && port_matches(e.port, port, true)) {
      return Decision { allow: true, rule: format!("allowOut {}", e.text) };
    }
    // 3. denyOut
    if let Some(e) = self.deny.iter().find(|e| host_matches(&e.host, name, ip) && port_matches(e.port, port, false)) {
      return Decision { allow: false, rule: format!("denyOut {}", e.text) };
    }
    Decision { allow: true, rule: "default".to_string() }
  }

  /// A denial of `name` whatever it resolves to, if the policy gives one: no `allowOut` domain
  /// entry matches it, there are no `allowOut` address entries, and a port-less `denyOut`
  /// entry matches the name or every address (`0.0.0.0/0`). The gateway checks this before it
  /// resolves a name, so that a sandbox under a deny-by-default policy of domains cannot use
  /// the lookups of names it may not reach to send data to a nameserver. Never contradicts
  /// `decide`: `Some` only when every address would be denied.
  pub fn deny_name(&self, name: &str) -> Option<Decision> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let any_ip = u32::MAX; // in no deny-set range that an allowOut entry could matter for here
    if self.allow.iter().any(|e| matches!(e.host, Host::Net { .. }) || host_matches(&e.host, Some(&name), any_ip)) {
      return None;
    }
    let e = self.deny.iter().find(|e| {
      e.port.is_none() && (matches!(e.host, Host::Net { prefix: 0, .. }) || matches!(e.host, Host::Domain { .. }) && host_matches(&e.host, Some(&name), 0))
    })?;
    Some(Decision { allow: false, rule: format!("denyOut {}", e.text) })
  }

  /// The `extraHosts` address of `name`, if it has one.
  pub fn resolve_static(&self, name: &str) -> Option<Ipv4Addr> {
    self.extra_hosts.get(&normalize_name(name)?).copied()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
  }

  fn pol(allow: &[&str], deny: &[&str]) -> Policy {
    pol_hosts(allow, deny, &[])
  }

  fn pol_hosts(allow: &[&str], deny: &[&str], hosts: &[&str]) -> Policy {
    let w = PolicyWire {
      allow_out: allow.iter().map(|s| s.to_string()).collect(),
      deny_out: deny.iter().map(|s| s.to_string()).collect(),
      host_addrs: hosts.iter().map(|s| s.to_string()).collect(),
      ..Default::default()
    };
    Policy::compile(&w).unwrap()
  }

  fn d(p: &Policy, name: Option<&str>, a: &str, port: u16) -> (bool, String) {
    let r = p.decide(name, ip(a), port);
    (r.allow, r.rule)
  }

  #[test]
  fn parses_domains() {
    let e = parse_entry("Example.COM.").unwrap();
    assert_eq!(e.host, Host::Domain { name: "example.com".into(), wildcard: false });
    assert_eq!(e.port, None);
    let e = parse_entry("*.example.com:443").unwrap();
    assert_eq!(e.host, Host::Domain { name: "example.com".into(), wildcard: true });
    assert_eq!(e.port, Some(443));
    assert_eq!(e.text, "*.example.com:443");
    assert_eq!(parse_entry("db").unwrap().host, Host::Domain { name: "db".into(), wildcard: false });
    assert!(parse_entry(&format!("{}.com", "a".repeat(63))).is_ok());
  }

  #[test]
  fn parses_addresses() {
    assert_eq!(parse_entry("10.1.2.3").unwrap().host, Host::Net { addr: u32::from(ip("10.1.2.3")), prefix: 32 });
    let e = parse_entry("10.0.0.0/8:5432").unwrap();
    assert_eq!(e.host, Host::Net { addr: u32::from(ip("10.0.0.0")), prefix: 8 });
    assert_eq!(e.port, Some(5432));
    assert_eq!(parse_entry("0.0.0.0/0").unwrap().host, Host::Net { addr: 0, prefix: 0 });
  }

  #[test]
  fn rejects_bad_entries() {
    let err = |s: &str| parse_entry(s).unwrap_err();
    assert!(err("10.0.0.1/8").contains("10.0.0.0/8"), "{}", err("10.0.0.1/8"));
    assert!(err("::1").contains("IPv6 is not supported"));
    assert!(err("[2001:db8::1]:443").contains("IPv6 is not supported"));
    assert!(err("example.com:0").contains("port"));
    assert!(err("example.com:65536").contains("port"));
    assert!(err("example.com:http").contains("port"));
    assert!(err("10.0.0.0/33").contains("prefix length"));
    assert!(err("300.1.1.1").contains("IPv4"));
    assert!(err("10.0.0").contains("IPv4"));
    assert!(err("foo.*.com").contains("wildcard"));
    assert!(err("*example.com").contains("wildcard"));
    assert!(err("-bad.com").contains("domain name"));
    assert!(err("bad-.com").contains("domain name"));
    assert!(err("a..com").contains("domain name"));
    assert!(err("under_score.com").contains("domain name"));
    assert!(err(&format!("{}.com", "a".repeat(64))).contains("domain name"));
    assert!(err(&vec!["a"; 130].join(".")).contains("domain name"));
    assert!(err("").contains("empty"));
    // the entry is named in the message
    assert!(err("bad_host:22").contains("\"bad_host:22\""));
  }

  #[test]
  fn presets_expand() {
    for p in PRESETS {
      assert!(preset(p).is_some(), "{p}");
      for e in preset(p).unwrap() {
        parse_entry(e).unwrap();
      }
    }
    assert!(preset("nope").is_none());
    let l = expand(&["npm".to_string(), "10.0.0.0/8".to_string()]).unwrap();
    assert_eq!(l.len(), 3);
    let r = expand(&["registries".to_string()]).unwrap();
    for n in ["npm", "pypi", "crates", "go"] {
      for e in preset(n).unwrap() {
        assert!(r.iter().any(|x| x.text == *e), "{e}");
      }
    }
    assert!(!r.iter().any(|x| x.text.contains("github")));
    let err = expand(&["npm".to_string(), "nope_".to_string()]).unwrap_err();
    assert!(err.contains("nope_"));
    // github's wildcard covers codeload.github.com
    let p = pol(&["github"], &["0.0.0.0/0"]);
    assert!(d(&p, Some("codeload.github.com"), "140.82.112.10", 443).0);
    assert!(d(&p, Some("raw.githubusercontent.com"), "185.199.108.133", 443).0);
    assert!(!d(&p, Some("gitlab.com"), "1.2.3.4", 443).0);
  }

  #[test]
  fn default_allow_deny_and_allow_over_deny() {
    let p = pol(&["pypi.org"], &["pypi.org", "evil.com", "0.0.0.0/0"]);
    assert_eq!(d(&p, Some("pypi.org"), "151.101.0.223", 443), (true, "allowOut pypi.org".into()));
    assert_eq!(d(&p, Some("evil.com"), "1.2.3.4", 443), (false, "denyOut evil.com".into()));
    assert_eq!(d(&p, Some("other.com"), "1.2.3.4", 443), (false, "denyOut 0.0.0.0/0".into()));
    assert_eq!(d(&p, None, "1.2.3.4", 443), (false, "denyOut 0.0.0.0/0".into()));
    let p = pol(&[], &["evil.com"]);
    assert_eq!(d(&p, Some("good.com"), "1.2.3.4", 80), (true, "default".into()));
    assert_eq!(d(&p, Some("EVIL.com."), "1.2.3.4", 80), (false, "denyOut evil.com".into()));
  }

  #[test]
  fn wildcards_match_subdomains_at_any_depth_only() {
    let p = pol(&["*.example.com"], &["0.0.0.0/0"]);
    assert!(d(&p, Some("a.example.com"), "1.2.3.4", 443).0);
    assert!(d(&p, Some("a.b.c.example.com"), "1.2.3.4", 443).0);
    assert!(!d(&p, Some("example.com"), "1.2.3.4", 443).0);
    assert!(!d(&p, Some("badexample.com"), "1.2.3.4", 443).0);
    assert!(!d(&p, None, "1.2.3.4", 443).0);
  }

  #[test]
  fn ports() {
    let p = pol(&["example.com:443", "1.2.3.0/24:22"], &["0.0.0.0/0"]);
    assert!(d(&p, Some("example.com"), "5.6.7.8", 443).0);
    assert!(!d(&p, Some("example.com"), "5.6.7.8", 80).0);
    assert!(d(&p, None, "1.2.3.9", 22).0);
    assert!(!d(&p, None, "1.2.3.9", 23).0);
    assert!(p.decide_any_port(Some("example.com"), ip("5.6.7.8")).allow);
    // a port-specific deny does not deny a name for DNS
    let p = pol(&[], &["example.com:25"]);
    assert!(!d(&p, Some("example.com"), "5.6.7.8", 25).0);
    assert!(d(&p, Some("example.com"), "5.6.7.8", 443).0);
    assert!(p.decide_any_port(Some("example.com"), ip("5.6.7.8")).allow);
    let p = pol(&[], &["example.com"]);
    assert!(!p.decide_any_port(Some("example.com"), ip("5.6.7.8")).allow);
  }

  #[test]
  fn deny_set() {
    let p = pol(&[], &[]);
    assert_eq!(d(&p, None, "10.1.2.3", 80), (false, "deny set: private 10.0.0.0/8".into()));
    assert_eq!(d(&p, None, "127.0.0.1", 80).1, "deny set: loopback 127.0.0.0/8");
    assert!(!d(&p, None, "255.255.255.255", 80).0);
    assert!(!d(&p, None, "224.0.0.1", 80).0);
    assert!(!d(&p, None, "100.64.0.1", 80).0);
    assert!(!d(&p, None, "0.0.0.0", 80).0);
    assert!(d(&p, None, "8.8.8.8", 53).0);
    // an allowed name resolving to a private address (rebinding) is still refused
    let p = pol(&["example.com"], &[]);
    assert!(!d(&p, Some("example.com"), "192.168.1.1", 443).0);
  }

  #[test]
  fn deny_set_is_lifted_only_by_explicit_entries() {
    let p = pol(&["0.0.0.0/0"], &[]);
    assert_eq!(d(&p, None, "169.254.169.254", 80).1, "deny set: link-local (cloud metadata 169.254.169.254) 169.254.0.0/16");
    assert!(!d(&p, None, "169.254.169.254", 80).0);
    assert!(!d(&p, None, "10.0.0.1", 80).0);
    let p = pol(&["0.0.0.0/1", "172.0.0.0/8"], &[]);
    assert!(!d(&p, None, "10.0.0.1", 80).0);
    assert!(!d(&p, None, "172.17.0.2", 80).0);
    let p = pol(&["172.17.0.0/16", "10.1.2.3:5432"], &["0.0.0.0/0"]);
    assert_eq!(d(&p, None, "172.17.9.9", 80), (true, "allowOut 172.17.0.0/16".into()));
    assert!(!d(&p, None, "172.18.0.1", 80).0);
    assert_eq!(d(&p, Some("db"), "10.1.2.3", 5432), (true, "allowOut 10.1.2.3:5432".into()));
    assert!(!d(&p, Some("db"), "10.1.2.3", 22).0);
    assert!(!d(&p, None, "10.1.2.4", 5432).0);
    let p = pol(&["127.0.0.1"], &[]);
    assert!(d(&p, None, "127.0.0.1", 1234).0);
    assert!(!d(&p, None, "127.0.0.2", 1234).0);
  }

  #[test]
  fn host_addresses() {
    let p = pol_hosts(&["172.17.0.0/16", "8.0.0.0/8"], &[], &["172.17.0.1", "8.8.4.4"]);
    assert_eq!(d(&p, None, "172.17.0.1", 80), (false, "deny set: engine host 172.17.0.1".into()));
    assert!(d(&p, None, "172.17.0.2", 80).0);
    assert!(!d(&p, None, "8.8.4.4", 53).0);
    assert!(d(&p, None, "8.8.8.8", 53).0);
    let p = pol_hosts(&["172.17.0.1/32"], &[], &["172.17.0.1"]);
    assert!(d(&p, None, "172.17.0.1", 80).0);
    let p = pol_hosts(&["172.17.0.1:8080"], &[], &["172.17.0.1"]);
    assert!(d(&p, None, "172.17.0.1", 8080).0);
    assert!(!d(&p, None, "172.17.0.1", 80).0);
  }

  #[test]
  fn wire_and_static_hosts() {
    let w: PolicyWire =
      serde_json::from_str(r#"{"allowOut":["npm"],"extraHosts":{"DB.internal":"10.0.0.5"},"hostAddrs":["172.17.0.1"]}"#).unwrap();
    let p = Policy::compile(&w).unwrap();
    assert_eq!(p.resolve_static("db.INTERNAL."), Some(ip("10.0.0.5")));
    assert_eq!(p.resolve_static("other"), None);
    assert!(serde_json::from_str::<PolicyWire>(r#"{"allowout":[]}"#).is_err());
    let bad = PolicyWire { extra_hosts: [("x".to_string(), "nope".to_string())].into(), ..Default::default() };
    assert!(Policy::compile(&bad).unwrap_err().contains("nope"));
    let bad = PolicyWire { deny_out: vec!["a_b".into()], ..Default::default() };
    assert!(Policy::compile(&bad).unwrap_err().starts_with("denyOut: "));
    assert!(!Policy::deny_all().decide(Some("example.com"), ip("1.2.3.4"), 443).allow);
  }

  #[test]
  fn names_denied_before_resolution() {
    assert_eq!(Policy::deny_all().deny_name("x.example.com").unwrap().rule, "denyOut 0.0.0.0/0");
    let p = pol(&["registries"], &["0.0.0.0/0"]);
    assert!(p.deny_name("pypi.org").is_none());
    assert!(p.deny_name("secret.attacker.test").is_some());
    let p = pol(&[], &["evil.test", "*.evil.test:443"]);
    assert_eq!(p.deny_name("EVIL.test.").unwrap().rule, "denyOut evil.test");
    assert!(p.deny_name("a.evil.test").is_none()); // only port 443 is denied
    assert!(p.deny_name("good.test").is_none());
    // an address entry could allow any name that resolves to it
    let p = pol(&["10.1.2.3"], &["0.0.0.0/0"]);
    assert!(p.deny_name("db.internal").is_none());
  }
}
