//! The HTTP side of the remote provider: the options (`remote: { url, apiKey }` over
//! `SANDBOX_SERVICE_URL` / `SANDBOX_API_KEY`), and calls to `/v1` with a deadline each, retries of
//! idempotent calls with backoff, bounded reads of every answer, and errors mapped back to the
//! library's codes from the server's JSON error body.

use std::time::Duration;

use serde_json::Value;

use crate::core::error::{ErrorCode, Result, SandboxError};

/// Default deadline of a call (`remote.timeoutSeconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of creating / starting a sandbox (an image may be pulled, packages installed).
pub const START_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest JSON answer read (file listings are the big ones).
pub const MAX_JSON: usize = 32 * 1024 * 1024;
/// Largest error body read.
const MAX_ERROR: usize = 64 * 1024;
/// Attempts of an idempotent call (the first included).
pub const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(150);

#[derive(Clone, PartialEq)]
pub struct RemoteOptions {
  /// `http(s)://host:port`, without a trailing slash
  pub url: String,
  pub api_key: Option<String>,
  pub timeout: Duration,
}

impl std::fmt::Debug for RemoteOptions {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("RemoteOptions").field("url", &self.url).field("api_key", &self.api_key.as_ref().map(|_| "***")).field("timeout", &self.timeout).finish()
  }
}

/// The keys of the `remote` config object.
pub const REMOTE_KEYS: [&str; 3] = ["url", "apiKey", "timeoutSeconds"];

impl RemoteOptions {
  /// The `remote` object over the environment (`SANDBOX_SERVICE_URL`, `SANDBOX_API_KEY`).
  pub fn resolve(v: Option<&Value>, get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
    let o = match v {
      None | Some(Value::Null) => serde_json::Map::new(),
      Some(Value::Object(o)) => o.clone(),
      Some(_) => return Err(SandboxError::invalid_config("remote must be an object { url, apiKey }")),
    };
    let s = |k: &str| -> Result<Option<String>> {
      match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Ok(None),
        Some(_) => Err(SandboxError::invalid_config(format!("remote.{k} must be a string"))),
      }
    };
    let url = s("url")?.or_else(|| get("SANDBOX_SERVICE_URL").filter(|v| !v.trim().is_empty())).ok_or_else(|| {
      SandboxError::invalid_config(
        "provider 'remote' needs the sandbox service's URL: remote: { url: 'http://host:8003' } or SANDBOX_SERVICE_URL (start one with `npx agentic-sandbox serve`)",
      )
    })?;
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
      return Err(SandboxError::invalid_config(format!("remote.url must be an http:// or https:// URL, got {url:?}")));
    }
    let api_key = s("apiKey")?.or_else(|| get("SANDBOX_API_KEY").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()));
    let timeout = match o.get("timeoutSeconds") {
      None | Some(Value::Null) => DEFAULT_TIMEOUT,
      Some(v) => crate::core::config::seconds("remote.timeoutSeconds", v.as_f64().unwrap_or(-1.0), false)?,
    };
    Ok(Self { url, api_key, timeout })
  }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
  let mut out = String::with_capacity(s.len());
  for b in s.bytes() {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
      out.push(b as char);
    } else {
      out.push_str(&format!("%{b:02X}"));
    }
  }
  out
}

/// Percent-encodes one path segment (a `/` too).
pub fn encode_segment(s: &str) -> String {
  encode(s).replace('/', "%2F")
}

/// A body of a call (rebuilt for each attempt).
#[derive(Clone)]
pub enum Payload {
  None,
  Json(Value),
  Bytes(bytes::Bytes),
}

pub struct Client {
  http: reqwest::Client,
  pub opts: RemoteOptions,
}

/// The library's error for a failed answer: the code from the server's JSON body (an HTTP-only
/// code such as UNAUTHORIZED stays what `err.code` shows), the server's message, the URL.
pub fn error_from(status: u16, body: &[u8], url: &str) -> SandboxError {
  let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
  let code = v["error"]["code"].as_str().map(|c| c.chars().take(64).collect::<String>());
  let message = v["error"]["message"].as_str().map(|m| m.chars().take(4096).collect::<String>()).unwrap_or_else(|| {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string();
    format!("HTTP {status}{}", if text.is_empty() { String::new() } else { format!(": {text}") })
  });
  let message = format!("sandbox service {url}: {message}");
  match code.as_deref() {
    Some(c) => match SandboxError::code_from_str(c) {
      Some(code) => SandboxError::new(code, message),
      None => {
        let base = match c {
          "UNAUTHORIZED" => ErrorCode::PermissionDenied,
          "PAYLOAD_TOO_LARGE" => ErrorCode::QuotaExceeded,
          "SHUTTING_DOWN" => ErrorCode::ProviderUnavailable,
          "FILE_ERROR" => ErrorCode::ExecutionError,
          _ => ErrorCode::ProviderError,
        };
        SandboxError { code: base, message, foreign_code: Some(c.to_string()) }
      }
    },
    None => SandboxError::new(
      match status {
        401 | 403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::SandboxNotFound,
        429 => ErrorCode::QuotaExceeded,
        502..=504 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::ProviderError,
      },
      message,
    ),
  }
}

/// Whether an answer of an idempotent call is worth another attempt.
fn transient(status: u16) -> bool {
  matches!(status, 502..=504)
}

impl Client {
  pub fn new(opts: RemoteOptions) -> Result<Self> {
    let b = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).pool_idle_timeout(Duration::from_secs(30));
    // a service on this machine is reached directly, whatever HTTP(S)_PROXY says
    let b = if crate::providers::e2b::client::is_loopback(&opts.url) { b.no_proxy() } else { b };
    let http = b
      .build()
      .map_err(|e| SandboxError::provider(format!("cannot make the HTTP client of provider 'remote': {e}")))?;
    Ok(Self { http, opts })
  }

  fn unavailable(&self, e: &reqwest::Error) -> SandboxError {
    let url = &self.opts.url;
    if e.is_connect() {
      SandboxError::new(
        ErrorCode::ProviderUnavailable,
        format!("the sandbox service at {url} cannot be reached ({e}); start it (`npx agentic-sandbox serve`) or fix remote.url / SANDBOX_SERVICE_URL"),
      )
    } else {
      SandboxError::new(ErrorCode::ProviderUnavailable, format!("the sandbox service at {url} failed to answer ({e})"))
    }
  }

  /// Sends `method path` and waits for the answer's head within `limit`; a 2xx answer is returned
  /// for the caller to read, others become errors. Connection failures are retried for every
  /// call (nothing reached the server); 502-504 answers and cut connections only for idempotent
  /// ones.
  pub async fn send(&self, method: reqwest::Method, path: &str, payload: Payload, idempotent: bool, limit: Duration) -> Result<reqwest::Response> {
    let url = format!("{}{path}", self.opts.url);
    let mut attempt = 0;
    loop {
      attempt += 1;
      let mut req = self.http.request(method.clone(), &url);
      if let Some(k) = &self.opts.api_key {
        req = req.bearer_auth(k);
      }
      req = match &payload {
        Payload::None => req,
        Payload::Json(v) => req.header("content-type", "application/json").body(v.to_string()),
        Payload::Bytes(b) => req.header("content-type", "application/octet-stream").body(b.clone()),
      };
      let last = attempt >= ATTEMPTS;
      let r = tokio::time::timeout(limit, req.send()).await;
      let err = match r {
        Err(_) => {
          let e = SandboxError::new(
            ErrorCode::ProviderUnavailable,
            format!("the sandbox service at {} did not answer {method} {path} within {} s", self.opts.url, limit.as_secs_f64()),
          );
          if idempotent && !last {
            e
          } else {
            return Err(e);
          }
        }
        Ok(Err(e)) => {
          let mapped = self.unavailable(&e);
          if (e.is_connect() || idempotent) && !last {
            mapped
          } else {
            return Err(mapped);
          }
        }
        Ok(Ok(res)) if res.status().is_success() => return Ok(res),
        Ok(Ok(res)) => {
          let status = res.status().as_u16();
          let body = read_limited(res, MAX_ERROR, limit).await.unwrap_or_default();
          let e = error_from(status, &body, &self.opts.url);
          if idempotent && transient(status) && !last {
            e
          } else {
            return Err(e);
          }
        }
      };
      let wait = BACKOFF * 2u32.pow(attempt - 1) + Duration::from_millis(rand::random::<u64>() % 100);
      tracing::debug!(error = %err, attempt, "provider 'remote': retrying");
      tokio::time::sleep(wait).await;
    }
  }

  /// A call answered with JSON (read up to [`MAX_JSON`] bytes).
  pub async fn json(&self, method: reqwest::Method, path: &str, payload: Payload, idempotent: bool, limit: Duration) -> Result<Value> {
    let res = self.send(method, path, payload, idempotent, limit).await?;
    let body = read_limited(res, MAX_JSON, limit).await?;
    if body.len() > MAX_JSON {
      return Err(SandboxError::provider(format!("the sandbox service's answer is larger than {MAX_JSON} bytes")));
    }
    serde_json::from_slice(&body).map_err(|e| SandboxError::provider(format!("the sandbox service answered something that is not JSON ({e})")))
  }
}

/// At most `max + 1` bytes of an answer's body (one more than allowed tells the caller it was
/// cut), within `limit`.
pub async fn read_limited(mut res: reqwest::Response, max: usize, limit: Duration) -> Result<Vec<u8>> {
  let read = async {
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| SandboxError::new(ErrorCode::ProviderUnavailable, format!("reading the sandbox service's answer failed ({e})")))? {
      let room = (max + 1).saturating_sub(out.len());
      out.extend_from_slice(&chunk[..chunk.len().min(room)]);
      if out.len() > max {
        break;
      }
    }
    Ok(out)
  };
  tokio::time::timeout(limit, read)
    .await
    .map_err(|_| SandboxError::new(ErrorCode::ProviderUnavailable, format!("the sandbox service's answer did not arrive within {} s", limit.as_secs_f64())))?
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::testutil::{json_resp, Resp, Server};
  use serde_json::json;
  use std::sync::atomic::{AtomicUsize, Ordering};
  use std::sync::Arc;

  fn opts(url: &str) -> RemoteOptions {
    RemoteOptions { url: url.into(), api_key: Some("k-0123456789abcdef".into()), timeout: Duration::from_secs(5) }
  }

  #[test]
  fn options_from_config_and_environment() {
    let none = |_: &str| None;
    let env = |k: &str| match k {
      "SANDBOX_SERVICE_URL" => Some("http://127.0.0.1:8003/".to_string()),
      "SANDBOX_API_KEY" => Some("k-env".to_string()),
      _ => None,
    };
    let o = RemoteOptions::resolve(None, &env).unwrap();
    assert_eq!((o.url.as_str(), o.api_key.as_deref()), ("http://127.0.0.1:8003", Some("k-env")));
    let o = RemoteOptions::resolve(Some(&json!({ "url": "https://sb.example:9", "apiKey": "k-cfg", "timeoutSeconds": 5 })), &env).unwrap();
    assert_eq!((o.url.as_str(), o.api_key.as_deref(), o.timeout), ("https://sb.example:9", Some("k-cfg"), Duration::from_secs(5)));
    let e = RemoteOptions::resolve(None, &none).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert!(e.message.contains("SANDBOX_SERVICE_URL"), "{}", e.message);
    assert!(RemoteOptions::resolve(Some(&json!({ "url": "ftp://x/y/z" })), &none).is_err());
    assert!(!format!("{o:?}").contains("k-cfg"));
  }

  #[test]
  fn errors_keep_their_codes() {
    let e = error_from(404, br#"{"error":{"code":"SANDBOX_NOT_FOUND","message":"no sandbox"}}"#, "http://h:1");
    assert_eq!((e.code, e.code_str()), (ErrorCode::SandboxNotFound, "SANDBOX_NOT_FOUND"));
    assert!(e.message.contains("http://h:1") && e.message.contains("no sandbox"));
    let e = error_from(401, br#"{"error":{"code":"UNAUTHORIZED","message":"bad key"}}"#, "http://h:1");
    assert_eq!((e.code, e.code_str()), (ErrorCode::PermissionDenied, "UNAUTHORIZED"));
    let e = error_from(502, b"<html>bad gateway</html>", "http://h:1");
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    assert!(e.message.contains("HTTP 502"));
    assert_eq!(encode("/a b/é?&"), "/a%20b/%C3%A9%3F%26");
    assert_eq!(encode_segment("a/b"), "a%2Fb");
  }

  #[tokio::test]
  async fn idempotent_calls_are_retried_others_are_not() {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let server = Server::start(move |_| {
      if seen.fetch_add(1, Ordering::SeqCst) < 2 {
        json_resp(503, json!({ "error": { "code": "SHUTTING_DOWN", "message": "later" } }))
      } else {
        json_resp(200, json!({ "ok": true }))
      }
    })
    .await;
    let c = Client::new(opts(&server.url)).unwrap();
    let v = c.json(reqwest::Method::GET, "/v1/sandboxes", Payload::None, true, Duration::from_secs(5)).await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(n.load(Ordering::SeqCst), 3);
    let reqs = server.seen();
    assert_eq!(reqs[0].header("authorization"), Some("Bearer k-0123456789abcdef"));
    // not idempotent: the first 503 is the answer
    n.store(0, Ordering::SeqCst);
    let e = c.json(reqwest::Method::POST, "/v1/sandboxes", Payload::Json(json!({})), false, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!((e.code, e.code_str()), (ErrorCode::ProviderUnavailable, "SHUTTING_DOWN"));
    assert_eq!(n.load(Ordering::SeqCst), 1);
  }

  #[tokio::test]
  async fn a_server_that_is_down_is_provider_unavailable() {
    // a port nothing listens on: bind one, then let it go
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let c = Client::new(opts(&url)).unwrap();
    let e = c.json(reqwest::Method::POST, "/v1/sandboxes", Payload::None, false, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    assert!(e.message.contains(&url) && e.message.contains("SANDBOX_SERVICE_URL"), "{}", e.message);
  }

  #[tokio::test]
  async fn calls_have_deadlines_and_bounded_reads() {
    let server = Server::start(|r| if r.path == "/hang" { Resp::Hang } else { Resp::Full { status: 200, headers: vec![], body: vec![b'x'; 1000] } }).await;
    let c = Client::new(opts(&server.url)).unwrap();
    let t0 = std::time::Instant::now();
    let e = c.send(reqwest::Method::POST, "/hang", Payload::None, false, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    assert!(t0.elapsed() < Duration::from_secs(3));
    let res = c.send(reqwest::Method::GET, "/big", Payload::None, true, Duration::from_secs(5)).await.unwrap();
    assert_eq!(read_limited(res, 100, Duration::from_secs(5)).await.unwrap().len(), 101);
  }
}
