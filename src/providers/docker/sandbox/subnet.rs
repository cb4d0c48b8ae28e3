//! Addresses for `networkMode: 'isolated'`: every sandbox network gets its own small IPv4 subnet
//! carved from a dedicated pool (`docker.isolatedSubnetPool`, default 10.213.0.0/16), instead of
//! one of Docker's default address pools (about 30 networks on a default engine).

use std::net::Ipv4Addr;

/// Prefix length of one sandbox network: 16 addresses (network, gateway, broadcast, and room for
/// the one container and a few spares).
pub const SUBNET_PREFIX: u8 = 28;

/// At most this many subnets are tried per network (each try is one fast API call).
pub const MAX_ATTEMPTS: u32 = 512;

/// An aligned IPv4 range, split into /28 subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
  base: u32,
  prefix: u8,
}

impl Pool {
  /// `a.b.c.d/n` with `n` from 8 to 28 and no host bits set.
  pub fn parse(s: &str) -> Result<Self, String> {
    let bad = |why: &str| format!("must be an IPv4 range like '10.213.0.0/16' (prefix 8 to {SUBNET_PREFIX}), got {s:?}: {why}");
    let (addr, prefix) = s.trim().split_once('/').ok_or_else(|| bad("no /prefix"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| bad("the prefix is not a number"))?;
    if !(8..=SUBNET_PREFIX).contains(&prefix) {
      return Err(bad("prefix out of range"));
    }
    let base = u32::from(addr);
    let mask = u32::MAX << (32 - prefix);
    if base & !mask != 0 {
      return Err(bad(&format!("host bits are set (did you mean {}/{prefix}?)", Ipv4Addr::from(base & mask))));
    }
    Ok(Self { base, prefix })
  }

  /// How many /28 subnets the pool holds.
  pub fn count(&self) -> u32 {
    1 << (SUBNET_PREFIX - self.prefix)
  }

  /// Subnet number `i` (taken modulo the pool's size) as `a.b.c.d/28`.
  pub fn subnet(&self, i: u32) -> String {
    let step = 1u32 << (32 - SUBNET_PREFIX);
    format!("{}/{SUBNET_PREFIX}", Ipv4Addr::from(self.base + (i % self.count()) * step))
  }

  /// The subnets to try, in order: from `start` on, wrapping around, at most `MAX_ATTEMPTS`.
  pub fn candidates(&self, start: u32) -> impl Iterator<Item = String> + '_ {
    let n = self.count().min(MAX_ATTEMPTS);
    (0..n).map(move |k| self.subnet(start.wrapping_add(k) % self.count()))
  }
}

/// Docker's answer when a requested subnet overlaps a network that exists already.
pub fn is_taken(message: &str) -> bool {
  message.contains("overlaps")
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn parses_and_splits_the_default_pool() {
    let p = Pool::parse(crate::core::config::DEFAULT_ISOLATED_SUBNET_POOL).unwrap();
    assert_eq!(p.count(), 4096);
    assert_eq!(p.subnet(0), "10.213.0.0/28");
    assert_eq!(p.subnet(1), "10.213.0.16/28");
    assert_eq!(p.subnet(4095), "10.213.255.240/28");
    assert_eq!(p.subnet(4096), "10.213.0.0/28");
  }

  #[test]
  fn candidates_wrap_and_are_distinct() {
    let p = Pool::parse("192.168.50.0/26").unwrap();
    assert_eq!(p.count(), 4);
    let c: Vec<String> = p.candidates(2).collect();
    assert_eq!(c, ["192.168.50.32/28", "192.168.50.48/28", "192.168.50.0/28", "192.168.50.16/28"]);
    let big = Pool::parse("10.0.0.0/8").unwrap();
    let c: Vec<String> = big.candidates(u32::MAX).collect();
    assert_eq!(c.len() as u32, MAX_ATTEMPTS);
    assert_eq!(c.iter().collect::<std::collections::HashSet<_>>().len(), c.len());
  }

  #[test]
  fn rejects_bad_pools_saying_why() {
    for (s, why) in [
      ("10.213.0.0", "no /prefix"),
      ("10.213.0.0/29", "out of range"),
      ("10.213.0.0/4", "out of range"),
      ("10.213.1.0/16", "did you mean 10.213.0.0/16"),
      ("fe80::/64", "not an IPv4"),
      ("10.213.0.0/x", "not a number"),
    ] {
      let e = Pool::parse(s).unwrap_err();
      assert!(e.contains(why), "{s}: {e}");
    }
  }

  #[test]
  fn config_keys_and_environment() {
    use crate::core::config::{defaults, env_layer, merge, resolve};
    let c = resolve(&defaults()).unwrap();
    assert_eq!(c.docker.isolated_subnet_pool, "10.213.0.0/16");
    assert_eq!(c.docker.runtime, None);
    let env = |k: &str| match k {
      "SANDBOX_DOCKER_RUNTIME" => Some("runsc".to_string()),
      "SANDBOX_ISOLATED_SUBNET_POOL" => Some("10.99.0.0/20".to_string()),
      _ => None,
    };
    let c = resolve(&merge(&defaults(), &env_layer(&env).unwrap())).unwrap();
    assert_eq!(c.docker.runtime.as_deref(), Some("runsc"));
    assert_eq!(c.docker.isolated_subnet_pool, "10.99.0.0/20");
    let e = resolve(&merge(&defaults(), &serde_json::json!({ "docker": { "isolatedSubnetPool": "10.1.2.3/16" } }))).unwrap_err();
    assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig);
    assert!(e.message.contains("docker.isolatedSubnetPool"), "{}", e.message);
  }

  #[test]
  fn overlap_answers_are_recognised() {
    assert!(is_taken("Pool overlaps with other one on this address space"));
    assert!(!is_taken("network with name x already exists"));
  }
}
