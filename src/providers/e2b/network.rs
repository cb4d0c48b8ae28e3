//! `network` and `networkMode` as E2B's egress settings (see the module docs of `mod.rs`).
//!
//! E2B takes `network: { allowOut, denyOut }` on create and the same lists in `PUT
//! /sandboxes/{id}/network`; an `allowOut` entry wins over `denyOut`, what neither names is
//! allowed. Domains (with `*.` wildcards) are accepted only in `allowOut`, `denyOut` takes IPv4
//! addresses and CIDRs, and no rule has a port. What E2B cannot express is refused here
//! (`INVALID_CONFIG`, naming the entry), never sent wider than written.

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use crate::core::config::{NetworkMode, NetworkPolicy};
use crate::core::egress::{self, Entry, Host};
use crate::core::error::{Result, SandboxError};

/// One entry as E2B writes it: lowercase domain (`*.` kept), bare address for a /32, CIDR else.
fn wire(e: &Entry) -> String {
  match &e.host {
    Host::Domain { name, wildcard: true } => format!("*.{name}"),
    Host::Domain { name, wildcard: false } => name.clone(),
    Host::Net { addr, prefix: 32 } => Ipv4Addr::from(*addr).to_string(),
    Host::Net { addr, prefix } => format!("{}/{prefix}", Ipv4Addr::from(*addr)),
  }
}

/// One list for E2B: presets expanded to their entries, entries canonical, repeats dropped.
/// `deny`: the list is `denyOut` (no domains there).
fn list(list: &[String], deny: bool) -> Result<Vec<String>> {
  let field = if deny { "network.denyOut" } else { "network.allowOut" };
  let mut out: Vec<String> = Vec::new();
  for item in list {
    let name = item.trim();
    let (entries, preset) = match egress::preset(name) {
      Some(p) => (p.iter().map(|e| egress::parse_entry(e)).collect::<std::result::Result<Vec<_>, _>>(), Some(p)),
      None => (egress::parse_entry(item).map(|e| vec![e]), None),
    };
    let entries = entries.map_err(|e| SandboxError::invalid_config(format!("{field}: {e}")))?;
    for e in &entries {
      if e.port.is_some() {
        let host = wire(e);
        let (verb, fix) = if deny { ("deny", "drop the port") } else { ("allow", "drop the port (every port of it is then allowed)") };
        return Err(SandboxError::invalid_config(format!(
          "{field}: entry {:?} names a port, but E2B's network rules cannot restrict ports: with provider 'e2b' it would {verb} every port of {host}. {fix}, or use the docker provider, whose egress gateway enforces ports",
          item.trim()
        )));
      }
      if deny && matches!(e.host, Host::Domain { .. }) {
        let what = match preset {
          Some(p) => format!("preset {name:?} is a list of domains ({})", p.join(", ")),
          None => format!("entry {name:?} is a domain"),
        };
        return Err(SandboxError::invalid_config(format!(
          "{field}: {what}, but E2B's denyOut takes only IPv4 addresses and CIDRs (domains are accepted only in allowOut). \
           To let a sandbox reach only some domains write denyOut: ['0.0.0.0/0'] and list the domains in allowOut, or use the docker provider"
        )));
      }
      let w = wire(e);
      if !out.contains(&w) {
        out.push(w);
      }
    }
  }
  Ok(out)
}

/// `{ allowOut?, denyOut? }` as E2B takes it (an empty list is left out).
pub fn egress_body(p: &NetworkPolicy) -> Result<Map<String, Value>> {
  let (allow, deny) = (list(&p.allow_out, false)?, list(&p.deny_out, true)?);
  let mut m = Map::new();
  if !allow.is_empty() {
    m.insert("allowOut".into(), allow.into());
  }
  if !deny.is_empty() {
    m.insert("denyOut".into(), deny.into());
  }
  Ok(m)
}

/// The fields the create request gets: `allow_internet_access: false` for `networkMode: 'none'`,
/// `network` for rules; nothing else (E2B's default network).
pub fn create_fields(mode: NetworkMode, policy: Option<&NetworkPolicy>) -> Result<Map<String, Value>> {
  let mut m = Map::new();
  match (mode, policy) {
    (NetworkMode::None, Some(_)) => {
      return Err(SandboxError::invalid_config(
        "network rules need a network, but networkMode is 'none'; drop networkMode or drop network",
      ))
    }
    (NetworkMode::None, None) => {
      m.insert("allow_internet_access".into(), Value::Bool(false));
    }
    (_, Some(p)) => {
      let body = egress_body(p)?;
      if !body.is_empty() {
        m.insert("network".into(), Value::Object(body));
      }
    }
    (_, None) => {}
  }
  Ok(m)
}

/// The body of `PUT /sandboxes/{id}/network`: the whole egress config (E2B clears what is left
/// out, so an empty policy clears every rule).
pub fn update_body(mode: NetworkMode, p: &NetworkPolicy) -> Result<Value> {
  if mode == NetworkMode::None {
    return Err(SandboxError::invalid_config(
      "updateNetwork: this sandbox was created with networkMode 'none' (E2B: no internet access), and network rules would give it a network; create the sandbox without networkMode 'none' to use network rules",
    ));
  }
  Ok(Value::Object(egress_body(p)?))
}

#[cfg(test)]
mod tests {
  use serde_json::json;

  use super::*;
  use crate::core::error::ErrorCode;

  fn pol(allow: &[&str], deny: &[&str]) -> NetworkPolicy {
    NetworkPolicy { allow_out: allow.iter().map(|s| s.to_string()).collect(), deny_out: deny.iter().map(|s| s.to_string()).collect() }
  }

  #[test]
  fn rules_map_to_e2b_lists_with_presets_expanded() {
    let p = pol(&["npm", "API.Example.com.", "*.github.com", "github", "10.1.2.3", "192.168.0.0/16"], &["0.0.0.0/0", " 8.8.8.8/32 "]);
    let m = create_fields(NetworkMode::Isolated, Some(&p)).unwrap();
    assert_eq!(
      Value::Object(m),
      json!({ "network": {
        "allowOut": ["registry.npmjs.org", "registry.yarnpkg.com", "api.example.com", "*.github.com", "github.com", "*.githubusercontent.com", "10.1.2.3", "192.168.0.0/16"],
        "denyOut": ["0.0.0.0/0", "8.8.8.8"],
      } })
    );
    // bridge (E2B's default network) maps the same; empty lists are left out
    let m = create_fields(NetworkMode::Bridge, Some(&pol(&[], &["0.0.0.0/0"]))).unwrap();
    assert_eq!(Value::Object(m), json!({ "network": { "denyOut": ["0.0.0.0/0"] } }));
    assert!(create_fields(NetworkMode::Isolated, Some(&pol(&[], &[]))).unwrap().is_empty());
  }

  #[test]
  fn network_mode_none_is_no_internet_and_the_default_sends_nothing() {
    assert_eq!(Value::Object(create_fields(NetworkMode::None, None).unwrap()), json!({ "allow_internet_access": false }));
    assert!(create_fields(NetworkMode::Isolated, None).unwrap().is_empty());
    assert!(create_fields(NetworkMode::Bridge, None).unwrap().is_empty());
    let e = create_fields(NetworkMode::None, Some(&pol(&["npm"], &[]))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    let e = update_body(NetworkMode::None, &pol(&["npm"], &[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(e.message.contains("networkMode 'none'"), "{}", e.message);
  }

  #[test]
  fn what_e2b_cannot_express_is_refused_naming_the_entry() {
    for (p, field, entry, why) in [
      (pol(&["example.com:443"], &[]), "network.allowOut", "\"example.com:443\"", "allow every port of example.com"),
      (pol(&["1.2.3.0/24:22"], &[]), "network.allowOut", "\"1.2.3.0/24:22\"", "allow every port of 1.2.3.0/24"),
      (pol(&[], &["10.0.0.1:5432"]), "network.denyOut", "\"10.0.0.1:5432\"", "deny every port of 10.0.0.1"),
      (pol(&[], &["evil.example"]), "network.denyOut", "\"evil.example\" is a domain", "only IPv4 addresses and CIDRs"),
      (pol(&[], &["*.evil.example"]), "network.denyOut", "\"*.evil.example\" is a domain", "only IPv4 addresses and CIDRs"),
      (pol(&[], &["npm"]), "network.denyOut", "preset \"npm\" is a list of domains (registry.npmjs.org", "only IPv4 addresses and CIDRs"),
    ] {
      for r in [create_fields(NetworkMode::Isolated, Some(&p)).map(Value::Object), update_body(NetworkMode::Isolated, &p)] {
        let e = r.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig, "{p:?}");
        assert!(e.message.starts_with(field) && e.message.contains(entry) && e.message.contains(why), "{p:?}: {}", e.message);
      }
    }
    // an entry the rules do not parse at all (AnySandbox checks these first; still named here)
    let e = egress_body(&pol(&["not a host"], &[])).unwrap_err();
    assert!(e.message.starts_with("network.allowOut: egress entry \"not a host\""), "{}", e.message);
  }

  #[test]
  fn update_bodies_replace_the_whole_config() {
    assert_eq!(update_body(NetworkMode::Isolated, &pol(&["pypi"], &["0.0.0.0/0"])).unwrap(), json!({ "allowOut": ["pypi.org", "files.pythonhosted.org"], "denyOut": ["0.0.0.0/0"] }));
    // no rules: an empty body, which clears E2B's
    assert_eq!(update_body(NetworkMode::Bridge, &pol(&[], &[])).unwrap(), json!({}));
  }
}
