//! Who is calling: the API key of a request (`Authorization: Bearer <key>` or `X-API-Key: <key>`)
//! names its tenant. Without configured keys the server has one anonymous tenant and serves
//! loopback only: requests must then be addressed to a loopback host name (`Host:`), so a web page
//! cannot reach the server through DNS rebinding.

use std::sync::Arc;

use axum::http::{header, HeaderMap};

use crate::core::error::ErrorCode;
use crate::server::error::ApiError;
use crate::server::options::{ApiKey, TenantLimits};
use crate::server::quota::Counter;

/// A tenant: one API key (or the anonymous tenant), with its limits and what it holds now.
#[derive(Debug)]
pub struct Tenant {
  pub name: String,
  pub limits: TenantLimits,
  /// sandboxes held (creations in progress count)
  pub sandboxes: Arc<Counter>,
  /// execute requests running
  pub executions: Arc<Counter>,
  /// background processes running
  pub background: Arc<Counter>,
}

impl Tenant {
  pub fn new(name: &str, limits: TenantLimits) -> Arc<Self> {
    Arc::new(Self {
      name: name.to_string(),
      limits,
      sandboxes: Counter::new(limits.max_sandboxes),
      executions: Counter::new(limits.max_concurrent_executions),
      background: Counter::new(limits.max_background_processes),
    })
  }
}

pub const ANONYMOUS: &str = "anonymous";

pub struct Keys {
  keys: Vec<(Vec<u8>, Arc<Tenant>)>,
  /// set when no key is configured
  anonymous: Option<Arc<Tenant>>,
}

/// Equal contents, in a time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
  if a.len() != b.len() {
    return false;
  }
  std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The key a request carries, if any (`Authorization: Bearer` first, then `X-API-Key`).
fn presented(headers: &HeaderMap) -> Result<Option<&[u8]>, ApiError> {
  if let Some(v) = headers.get(header::AUTHORIZATION) {
    let v = v.as_bytes();
    let scheme_ok = v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ");
    if !scheme_ok {
      return Err(ApiError::unauthorized("the Authorization header must be 'Bearer <API key>'"));
    }
    return Ok(Some(v[7..].trim_ascii()));
  }
  Ok(headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii()))
}

/// A `Host` header that names this machine's loopback interface (with any port), or none.
pub fn loopback_host(headers: &HeaderMap) -> bool {
  let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
    return true;
  };
  let name = if let Some(rest) = host.strip_prefix('[') {
    rest.split(']').next().unwrap_or("")
  } else {
    host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
  };
  let name = name.to_ascii_lowercase();
  name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Keys {
  /// Every key a tenant; none: the anonymous tenant with `anonymous_limits`.
  pub fn new(keys: &[ApiKey], anonymous_limits: TenantLimits) -> Self {
    if keys.is_empty() {
      return Self { keys: Vec::new(), anonymous: Some(Tenant::new(ANONYMOUS, anonymous_limits)) };
    }
    Self { keys: keys.iter().map(|k| (k.key.as_bytes().to_vec(), Tenant::new(&k.name, k.limits))).collect(), anonymous: None }
  }

  /// Without keys: one anonymous tenant (and loopback only).
  pub fn is_open(&self) -> bool {
    self.anonymous.is_some()
  }

  pub fn tenants(&self) -> Vec<Arc<Tenant>> {
    self.anonymous.iter().cloned().chain(self.keys.iter().map(|(_, t)| t.clone())).collect()
  }

  /// The tenant of a request: 401 UNAUTHORIZED without a valid key. Every key is compared, in
  /// constant time, whatever matches.
  pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Tenant>, ApiError> {
    if let Some(t) = &self.anonymous {
      if !loopback_host(headers) {
        return Err(ApiError::coded(
          ErrorCode::PermissionDenied,
          "this server runs without API keys and only answers requests addressed to a loopback host (127.0.0.1, localhost, [::1]); configure API keys to serve other names",
        ));
      }
      return Ok(t.clone());
    }
    let Some(given) = presented(headers)? else {
      return Err(ApiError::unauthorized("this server needs an API key: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')"));
    };
    let mut found = None;
    for (key, tenant) in &self.keys {
      if same(key, given) && found.is_none() {
        found = Some(tenant.clone());
      }
    }
    found.ok_or_else(|| ApiError::unauthorized("the API key is not valid for this server"))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use axum::http::HeaderValue;

  const K1: &str = "k1-0123456789abcdef";
  const K2: &str = "k2-0123456789abcdef";

  fn keys() -> Keys {
    let limits = TenantLimits::default();
    Keys::new(&[ApiKey { name: "a".into(), key: K1.into(), limits }, ApiKey { name: "b".into(), key: K2.into(), limits }], limits)
  }

  fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
      h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
  }

  #[test]
  fn bearer_and_x_api_key_name_the_tenant() {
    let k = keys();
    assert_eq!(k.authenticate(&headers(&[("authorization", &format!("Bearer {K1}"))])).unwrap().name, "a");
    assert_eq!(k.authenticate(&headers(&[("authorization", &format!("bearer  {K2} "))])).unwrap().name, "b");
    assert_eq!(k.authenticate(&headers(&[("x-api-key", K2)])).unwrap().name, "b");
    assert!(!k.is_open());
  }

  #[test]
  fn missing_wrong_or_malformed_keys_are_401_without_the_key() {
    let k = keys();
    for h in [
      headers(&[]),
      headers(&[("authorization", "Bearer k1-0123456789abcdeX")]),
      headers(&[("authorization", &format!("Basic {K1}"))]),
      headers(&[("authorization", "Bearer ")]),
      headers(&[("x-api-key", &K1[..10])]),
      // Authorization wins over X-API-Key
      headers(&[("authorization", "Bearer nope-nope-nope-nope"), ("x-api-key", K1)]),
    ] {
      let e = k.authenticate(&h).unwrap_err();
      assert_eq!((e.status.as_u16(), e.code.as_str()), (401, "UNAUTHORIZED"), "{h:?}");
      assert!(!e.message.contains("k1-") && !e.message.contains("nope"), "{}", e.message);
    }
  }

  #[test]
  fn anonymous_tenant_on_loopback_names_only() {
    let k = Keys::new(&[], TenantLimits::default());
    assert!(k.is_open());
    for host in ["127.0.0.1:8003", "localhost", "LOCALHOST:1", "[::1]:8003", "127.1.2.3"] {
      assert_eq!(k.authenticate(&headers(&[("host", host)])).unwrap().name, ANONYMOUS, "{host}");
    }
    assert!(k.authenticate(&headers(&[])).is_ok(), "no Host header (HTTP/1.0)");
    for host in ["evil.example:8003", "10.0.0.1", "localhost.evil.example", "[::2]:1"] {
      let e = k.authenticate(&headers(&[("host", host)])).unwrap_err();
      assert_eq!((e.status.as_u16(), e.code.as_str()), (403, "PERMISSION_DENIED"), "{host}");
    }
  }

  #[test]
  fn constant_time_comparison() {
    assert!(same(b"abc", b"abc"));
    assert!(!same(b"abc", b"abd"));
    assert!(!same(b"abc", b"abcd"));
  }
}
