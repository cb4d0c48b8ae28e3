//! HTTP to E2B over reqwest (rustls, HTTP/1.1): the control plane (REST/JSON with `X-API-Key`)
//! and a sandbox's envd (Connect JSON and `/files`, with `X-Access-Token` and the
//! `E2b-Sandbox-Id` / `E2b-Sandbox-Port` routing headers).
//!
//! Retries (exponential backoff from 250 ms, ×2, equal jitter, capped at 4 s; a `Retry-After`
//! header wins, capped at 30 s; at most 4 attempts) depend on what a repeat could do:
//! - [`Retry::Idempotent`] (GET, DELETE, timeout refresh, pause and connect, metrics, process
//!   List / SendSignal / CloseStdin, ListDir, Stat, Remove, file reads): 429, 500, 502, 503,
//!   504 and any transport failure;
//! - [`Retry::Create`] (create): 429 and 503 (E2B created nothing) and connection failures;
//! - [`Retry::Once`] (process Start and Connect, SendInput, file writes, MakeDir, the health
//!   probe): only a failure to connect, when nothing was sent.
//!
//! No `Accept-Encoding` is sent (reqwest is built without gzip), so bodies arrive unencoded.
//! Requests are traced at debug level by method, URL path and status; keys and tokens never are.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde_json::Value;
use tracing::debug;

use super::connect::{encode_envelope, truncate, RpcError};
use super::options::E2bOptions;
use crate::core::error::{ErrorCode, Result, SandboxError};

/// envd's port inside every sandbox.
pub const ENVD_PORT: u16 = 49983;
/// Seconds between envd keepalive events on idle process streams (the SDK uses 50; lower keeps
/// idle proxies from closing the stream and lets long silent processes refresh the lifetime).
pub const KEEPALIVE_SECONDS: u32 = 30;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(4);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: u32 = 4;

/// Which failures a request may be repeated after (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
  Idempotent,
  Create,
  Once,
}

/// A sandbox's envd endpoint, from a create or connect response.
#[derive(Debug, Clone)]
pub struct Remote {
  pub sandbox_id: String,
  pub envd_url: String,
  /// `X-Access-Token` value (marked sensitive); `None` for a sandbox created without `secure`
  pub access_token: Option<HeaderValue>,
  /// envd's version; `None` when the response did not say (treated as current)
  pub envd_version: Option<(u32, u32, u32)>,
}

impl Remote {
  /// From a `Sandbox` JSON object (`sandboxID`, `envdAccessToken`, `domain`, `envdVersion`).
  pub fn from_sandbox(v: &Value, opts: &E2bOptions) -> Result<Remote> {
    let id = v.get("sandboxID").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
      return Err(SandboxError::provider(format!(
        "E2B answered without a usable sandboxID: {}",
        truncate(&v.to_string(), 300)
      )));
    }
    let access_token = match v.get("envdAccessToken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
      Some(t) => {
        let mut h = HeaderValue::from_str(t).map_err(|_| SandboxError::provider("E2B sent an envd access token that cannot be sent in a header"))?;
        h.set_sensitive(true);
        Some(h)
      }
      None => None,
    };
    let domain = v.get("domain").and_then(Value::as_str).filter(|d| !d.is_empty()).unwrap_or(&opts.domain);
    let envd_url = match &opts.sandbox_url {
      Some(u) => u.clone(),
      None => format!("https://{ENVD_PORT}-{id}.{domain}"),
    };
    let envd_version = v.get("envdVersion").and_then(Value::as_str).and_then(parse_version);
    Ok(Remote { sandbox_id: id.to_string(), envd_url, access_token, envd_version })
  }

  /// True when envd is at least `v` (or its version is unknown).
  pub fn envd_at_least(&self, v: (u32, u32, u32)) -> bool {
    self.envd_version.is_none_or(|have| have >= v)
  }
}

pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
  let mut it = s.trim().trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u32>().ok());
  Some((it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0)))
}

/// A completed HTTP exchange (any status).
#[derive(Debug)]
pub struct Exchange {
  pub status: u16,
  pub body: Vec<u8>,
  pub attempts: u32,
  /// the body was longer than the limit and was not read to its end
  pub too_large: bool,
}

/// No response at all.
#[derive(Debug, Clone)]
pub struct Transport {
  pub message: String,
  pub attempts: u32,
  pub timed_out: bool,
}

pub struct Client {
  http: reqwest::Client,
  pub opts: Arc<E2bOptions>,
  pub(crate) backoff_base: Duration,
}

impl std::fmt::Debug for Client {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Client").field("opts", &self.opts).finish()
  }
}

pub(crate) fn is_loopback(url: &str) -> bool {
  let Ok(url) = Url::parse(url) else { return false };
  match url.host_str() {
    Some(h) if h.eq_ignore_ascii_case("localhost") => true,
    Some(h) => h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    None => false,
  }
}

/// The error and its sources, without repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
  let mut parts = vec![e.to_string()];
  let mut source = e.source();
  while let Some(s) = source {
    let text = s.to_string();
    if !parts.iter().any(|p| p.contains(&text)) {
      parts.push(text);
    }
    source = s.source();
  }
  parts.join(": ")
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
  let secs = headers.get("retry-after")?.to_str().ok()?.trim().parse::<f64>().ok()?;
  Duration::try_from_secs_f64(secs).ok().map(|d| d.min(RETRY_AFTER_CAP))
}

fn status_retryable(retry: Retry, status: u16) -> bool {
  match retry {
    Retry::Idempotent => matches!(status, 429 | 500 | 502 | 503 | 504),
    Retry::Create => matches!(status, 429 | 503),
    Retry::Once => false,
  }
}

impl Client {
  pub fn new(opts: Arc<E2bOptions>) -> Result<Client> {
    let mut builder = reqwest::Client::builder()
      .connect_timeout(opts.request_timeout.min(Duration::from_secs(15)))
      .user_agent(concat!("agentic-sandbox/", env!("CARGO_PKG_VERSION")));
    // a local fake must not go through HTTP(S)_PROXY
    if is_loopback(&opts.api_url) || opts.sandbox_url.as_deref().is_some_and(is_loopback) {
      builder = builder.no_proxy();
    }
    let http = builder.build().map_err(|e| SandboxError::provider(format!("could not set up the HTTP client for E2B: {e}")))?;
    Ok(Client { http, opts, backoff_base: BACKOFF_BASE })
  }

  /// Delay before retry number `attempt` (1-based): base × 2^(attempt−1), capped, half of it random.
  fn backoff(&self, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    let full = self.backoff_base.saturating_mul(factor).min(BACKOFF_CAP);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
  }

  /// Send the request `build` makes (once per attempt) and read the whole body, at most `limit`
  /// bytes. Retries as `retry` allows.
  /// `label` ("GET /sandboxes/{id}/metrics") is what the debug trace shows.
  pub async fn exchange(
    &self,
    label: &str,
    retry: Retry,
    limit: usize,
    build: &(dyn Fn() -> RequestBuilder + Send + Sync),
  ) -> std::result::Result<Exchange, Transport> {
    self.exchange_limited(label, retry, limit, false, build).await
  }

  /// Like `exchange`, but a body longer than `limit` still gives its first `limit` bytes (with
  /// `too_large` set) instead of none.
  pub async fn exchange_prefix(
    &self,
    label: &str,
    retry: Retry,
    limit: usize,
    build: &(dyn Fn() -> RequestBuilder + Send + Sync),
  ) -> std::result::Result<Exchange, Transport> {
    self.exchange_limited(label, retry, limit, true, build).await
  }

  async fn exchange_limited(
    &self,
    label: &str,
    retry: Retry,
    limit: usize,
    prefix: bool,
    build: &(dyn Fn() -> RequestBuilder + Send + Sync),
  ) -> std::result::Result<Exchange, Transport> {
    let mut attempt = 0u32;
    loop {
      attempt += 1;
      let started = Instant::now();
      let outcome = match build().send().await {
        Ok(resp) => {
          let status = resp.status().as_u16();
          let wait = retry_after(resp.headers());
          read_limited(resp, limit, prefix).await.map(|(body, too_large)| (status, wait, body, too_large))
        }
        Err(e) => Err(e),
      };
      let ms = started.elapsed().as_millis() as u64;
      match outcome {
        Ok((status, wait, body, too_large)) => {
          debug!(request = label, status, attempt, duration_ms = ms, "e2b request");
          if status_retryable(retry, status) && attempt < MAX_ATTEMPTS {
            tokio::time::sleep(wait.unwrap_or_else(|| self.backoff(attempt))).await;
            continue;
          }
          return Ok(Exchange { status, body, attempts: attempt, too_large });
        }
        Err(e) => {
          let message = error_chain(&e);
          debug!(request = label, attempt, duration_ms = ms, error = %message, "e2b request failed");
          let may_retry = e.is_connect() || retry == Retry::Idempotent;
          if may_retry && attempt < MAX_ATTEMPTS {
            tokio::time::sleep(self.backoff(attempt)).await;
            continue;
          }
          let message = match e.url() {
            Some(u) => message.replace(&format!(" for url ({u})"), ""),
            None => message,
          };
          return Err(Transport { message, attempts: attempt, timed_out: e.is_timeout() });
        }
      }
    }
  }

  // ---------------------------------------------------------------- control plane

  /// A control-plane call: JSON body (if any), `X-API-Key`, the request timeout.
  pub async fn api(&self, method: Method, path: &str, body: Option<&Value>, retry: Retry) -> std::result::Result<Exchange, Transport> {
    let url = format!("{}{path}", self.opts.api_url);
    let label = format!("{method} {path}");
    let body = body.map(|b| b.to_string());
    let build = || {
      let mut key = HeaderValue::from_str(&self.opts.api_key).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
      key.set_sensitive(true);
      let mut rb = self.http.request(method.clone(), &url).timeout(self.opts.request_timeout).header("X-API-Key", key);
      if let Some(b) = &body {
        rb = rb.header(CONTENT_TYPE, "application/json").body(b.clone());
      }
      rb
    };
    self.exchange(&label, retry, 64 << 20, &build).await
  }

  // ---------------------------------------------------------------- envd

  /// A request to envd with the routing and auth headers.
  pub fn envd(&self, remote: &Remote, method: Method, url: Url) -> RequestBuilder {
    let mut rb = self
      .http
      .request(method, url)
      .header("E2b-Sandbox-Id", remote.sandbox_id.as_str())
      .header("E2b-Sandbox-Port", ENVD_PORT.to_string());
    if let Some(t) = &remote.access_token {
      rb = rb.header("X-Access-Token", t.clone());
    }
    // envd before 0.4.0 had no default user: the SDKs always name `user` there
    if !remote.envd_at_least((0, 4, 0)) {
      rb = rb.header("Authorization", "Basic dXNlcjo=");
    }
    rb
  }

  pub fn envd_url(&self, remote: &Remote, path: &str) -> std::result::Result<Url, RpcError> {
    Url::parse(&format!("{}/{}", remote.envd_url, path.trim_start_matches('/')))
      .map_err(|e| RpcError::new("invalid_argument", format!("bad envd URL: {e}"), 0))
  }

  /// A unary Connect call (`filesystem.Filesystem/ListDir`, `process.Process/List`, …).
  pub async fn unary(&self, remote: &Remote, rpc: &str, body: &Value, retry: Retry) -> std::result::Result<Value, RpcError> {
    let url = self.envd_url(remote, rpc)?;
    let body = body.to_string();
    let build = || {
      self
        .envd(remote, Method::POST, url.clone())
        .timeout(self.opts.request_timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("Connect-Protocol-Version", "1")
        .body(body.clone())
    };
    let ex = self.exchange(&format!("POST envd /{rpc}"), retry, 64 << 20, &build).await.map_err(transport_rpc)?;
    if ex.status != 200 {
      return Err(RpcError::from_response(ex.status, &ex.body));
    }
    if ex.body.iter().all(u8::is_ascii_whitespace) {
      return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&ex.body).map_err(|e| RpcError::new("internal", format!("{rpc} answered with a body that is not JSON ({e})"), 200))
  }

  /// Open a server-streaming Connect call (`process.Process/Start` or `/Connect`). The response
  /// has no overall timeout (it lasts as long as the process); `timeout_ms` is sent as
  /// `Connect-Timeout-Ms`, which envd applies as the process's lifetime. Only a failure to
  /// connect is retried: a Start that reached envd is never repeated.
  pub async fn open_stream(&self, remote: &Remote, rpc: &str, body: &Value, timeout_ms: Option<u64>) -> std::result::Result<Response, RpcError> {
    let url = self.envd_url(remote, rpc)?;
    let body = encode_envelope(0, body.to_string().as_bytes());
    let mut attempt = 0;
    loop {
      attempt += 1;
      let mut rb = self
        .envd(remote, Method::POST, url.clone())
        .header(CONTENT_TYPE, "application/connect+json")
        .header("Connect-Protocol-Version", "1")
        .header("Keepalive-Ping-Interval", KEEPALIVE_SECONDS.to_string())
        .body(body.clone());
      if let Some(ms) = timeout_ms {
        rb = rb.header("Connect-Timeout-Ms", ms.clamp(1, 9_999_999_999).to_string());
      }
      let started = Instant::now();
      let sent = tokio::time::timeout(self.opts.request_timeout, rb.send()).await;
      let ms = started.elapsed().as_millis() as u64;
      match sent {
        Err(_) => {
          return Err(RpcError::new("unavailable", format!("envd did not answer {rpc} within {} s", self.opts.request_timeout.as_secs()), 0))
        }
        Ok(Err(e)) => {
          debug!(url = %url.path(), attempt, duration_ms = ms, error = %error_chain(&e), "e2b stream failed");
          if e.is_connect() && attempt < MAX_ATTEMPTS {
            tokio::time::sleep(self.backoff(attempt)).await;
            continue;
          }
          return Err(RpcError::new("unavailable", error_chain(&e), 0));
        }
        Ok(Ok(resp)) => {
          let status = resp.status().as_u16();
          debug!(url = %url.path(), status, attempt, duration_ms = ms, "e2b stream");
          if status == 200 {
            return Ok(resp);
          }
          let (body, _) = read_limited(resp, 1 << 20, false).await.unwrap_or_default();
          return Err(RpcError::from_response(status, &body));
        }
      }
    }
  }
}

pub fn transport_rpc(t: Transport) -> RpcError {
  let code = if t.timed_out { "deadline_exceeded" } else { "unavailable" };
  let tries = if t.attempts > 1 { format!(" ({} attempts)", t.attempts) } else { String::new() };
  RpcError::new(code, format!("could not reach envd{tries}: {}", t.message), 0)
}

/// The whole body, or its first `limit` bytes and `true` when it is longer.
/// The body, at most `limit` bytes, and whether there was more. With `prefix` a longer body gives
/// its first `limit` bytes; without, it is not read at all when its length is announced.
async fn read_limited(mut resp: Response, limit: usize, prefix: bool) -> std::result::Result<(Vec<u8>, bool), reqwest::Error> {
  if !prefix && resp.content_length().is_some_and(|n| n > limit as u64) {
    return Ok((Vec::new(), true));
  }
  let mut body = Vec::new();
  while let Some(chunk) = resp.chunk().await? {
    if body.len() + chunk.len() > limit {
      if prefix {
        body.extend_from_slice(&chunk[..limit - body.len()]);
      }
      return Ok((body, true));
    }
    body.extend_from_slice(&chunk);
  }
  Ok((body, false))
}

/// E2B's own message from a control-plane error body (`{"code": 404, "message": "…"}`), quoted,
/// or a short excerpt of whatever came.
pub fn quoted_message(body: &[u8]) -> String {
  let v: Option<Value> = serde_json::from_slice(body).ok();
  match v.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str) {
    Some(m) => format!("\"{}\"", truncate(m, 500)),
    None => {
      let text = String::from_utf8_lossy(body).split_whitespace().collect::<Vec<_>>().join(" ");
      if text.is_empty() {
        "(empty body)".to_string()
      } else {
        format!("'{}'", truncate(&text, 300))
      }
    }
  }
}

/// A failed control-plane call as a `SandboxError`: 401/403 `PERMISSION_DENIED`, 404
/// `SANDBOX_NOT_FOUND`, 429 `QUOTA_EXCEEDED`, 400/422 `INVALID_ARGUMENT`, other statuses
/// `PROVIDER_ERROR`, no response `PROVIDER_UNAVAILABLE`. `what` names the operation.
pub fn api_error(opts: &E2bOptions, what: &str, r: std::result::Result<&Exchange, &Transport>) -> SandboxError {
  let ex = match r {
    Err(t) => {
      let tries = if t.attempts > 1 { format!(" after {} attempts", t.attempts) } else { String::new() };
      return SandboxError::new(
        ErrorCode::ProviderUnavailable,
        format!(
          "{what}: could not reach the E2B API at {}{tries}: {}. Check the network, or E2B_API_URL / E2B_DOMAIN",
          opts.api_url, t.message
        ),
      );
    }
    Ok(ex) => ex,
  };
  let quoted = quoted_message(&ex.body);
  let status = ex.status;
  let tries = if ex.attempts > 1 { format!(" after {} attempts", ex.attempts) } else { String::new() };
  match status {
    401 | 403 => SandboxError::new(
      ErrorCode::PermissionDenied,
      format!("{what}: E2B rejected the API key ({status}): {quoted}. Check E2B_API_KEY / e2b.apiKey (create one at https://e2b.dev/dashboard?tab=keys)"),
    ),
    404 => SandboxError::new(ErrorCode::SandboxNotFound, format!("{what}: E2B does not know this sandbox (404): {quoted}")),
    429 => SandboxError::new(
      ErrorCode::QuotaExceeded,
      format!(
        "{what}: E2B rate or concurrency limit reached (429){tries}: {quoted}. Destroy sandboxes you no longer need, \
         wait and retry, or raise your team's limits"
      ),
    ),
    400 | 422 => SandboxError::new(ErrorCode::InvalidArgument, format!("{what}: E2B rejected the request ({status}): {quoted}")),
    s if s >= 500 => SandboxError::provider(format!("{what}: E2B failed ({s}){tries}: {quoted}; retry later")),
    s => SandboxError::provider(format!("{what}: E2B answered {s}: {quoted}")),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn opts() -> E2bOptions {
    E2bOptions::resolve(None, &|k| (k == "E2B_API_KEY").then(|| "e2b_00ff".to_string())).unwrap()
  }

  fn ex(status: u16, body: &str) -> Exchange {
    Exchange { status, body: body.as_bytes().to_vec(), attempts: 1, too_large: false }
  }

  #[test]
  fn control_plane_errors_map_from_status_and_quote_e2b() {
    let o = opts();
    let e = api_error(&o, "create sandbox", Ok(&ex(401, r#"{"code":401,"message":"Invalid API key, please visit https://e2b.dev/docs/api-key"}"#)));
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    assert!(e.message.contains("\"Invalid API key") && e.message.contains("E2B_API_KEY"), "{}", e.message);
    assert_eq!(api_error(&o, "x", Ok(&ex(403, ""))).code, ErrorCode::PermissionDenied);
    let e = api_error(&o, "kill", Ok(&ex(404, r#"{"code":404,"message":"Sandbox \"abc\" doesn't exist or you don't have access to it"}"#)));
    assert_eq!(e.code, ErrorCode::SandboxNotFound);
    assert!(e.message.contains("doesn't exist"), "{}", e.message);
    let e = api_error(&o, "x", Ok(&Exchange { attempts: 4, ..ex(429, r#"{"code":429,"message":"you have reached the maximum number of concurrent E2B sandboxes (20)"}"#) }));
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    assert!(e.message.contains("after 4 attempts") && e.message.contains("(20)"), "{}", e.message);
    assert_eq!(api_error(&o, "x", Ok(&ex(400, r#"{"code":400,"message":"validation error: x"}"#))).code, ErrorCode::InvalidArgument);
    let e = api_error(&o, "x", Ok(&ex(503, "")));
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert!(e.message.contains("(empty body)"), "{}", e.message);
    assert_eq!(api_error(&o, "x", Ok(&ex(500, "<html>bad gateway</html>"))).code, ErrorCode::ProviderError);
    let t = Transport { message: "tcp connect error: Connection refused".into(), attempts: 4, timed_out: false };
    let e = api_error(&o, "x", Err(&t));
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    assert!(e.message.contains("https://api.e2b.app") && e.message.contains("refused"), "{}", e.message);
  }

  #[test]
  fn remote_from_a_create_response() {
    let o = opts();
    let v = serde_json::json!({"sandboxID":"abc123","envdAccessToken":"tok","domain":"e2b.dev","envdVersion":"0.6.13","clientID":"6532622b","templateID":"base"});
    let r = Remote::from_sandbox(&v, &o).unwrap();
    assert_eq!(r.envd_url, "https://49983-abc123.e2b.dev");
    assert!(r.access_token.as_ref().unwrap().is_sensitive());
    assert_eq!(r.envd_version, Some((0, 6, 13)));
    assert!(r.envd_at_least((0, 5, 7)));
    // null domain: the client's; an override URL wins
    let v = serde_json::json!({"sandboxID":"abc123","domain":null,"envdVersion":"0.3.0"});
    let r = Remote::from_sandbox(&v, &o).unwrap();
    assert_eq!(r.envd_url, "https://49983-abc123.e2b.app");
    assert!(!r.envd_at_least((0, 4, 0)));
    let o2 = E2bOptions { sandbox_url: Some("http://127.0.0.1:9".into()), ..o.clone() };
    assert_eq!(Remote::from_sandbox(&v, &o2).unwrap().envd_url, "http://127.0.0.1:9");
    assert!(Remote::from_sandbox(&serde_json::json!({"sandboxID":"../x"}), &o).is_err());
    assert!(Remote::from_sandbox(&serde_json::json!({}), &o).is_err());
  }

  #[test]
  fn versions_parse() {
    assert_eq!(parse_version("0.6.13"), Some((0, 6, 13)));
    assert_eq!(parse_version("v1.2"), Some((1, 2, 0)));
    assert_eq!(parse_version("0.5.7-rc1"), Some((0, 5, 7)));
    assert_eq!(parse_version("dev"), None);
  }
}
