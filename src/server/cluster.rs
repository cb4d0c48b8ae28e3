//! Distributed mode in the server (README "Distributed mode"): a `serve` given a Redis is a
//! worker of a cluster. It registers itself and beats with its load ([`Worker::beat`]); records
//! the sandboxes and sessions it holds (`crate::cluster`'s registry); and [`route`] sends every
//! request to the worker it belongs to before the routes see it:
//!
//! - a create (`POST /sandbox/create`, `POST /v1/sandboxes`) goes to the least-loaded live worker;
//! - a request naming a sandbox goes to its owner; an owner that stopped beating means the
//!   sandbox is gone (404 SANDBOX_NOT_FOUND);
//! - `POST /v1/sessions` goes to the worker of the thread's sandbox; when that sandbox is gone the
//!   thread gets a new one on a live worker if the call says `autoRetry: true`, else 404
//!   SANDBOX_NOT_FOUND; `DELETE /v1/sessions/{thread}` goes to the owner too;
//! - lists (`GET /sandboxes`, `GET /v1/sandboxes`, `GET /v1/sessions`) ask every live worker and
//!   merge their answers;
//! - the rest (`/health`, `/v1/openapi.json`, unknown routes) is answered here.
//!
//! A forwarded request keeps the client's headers (its API key: the workers share their keys, so
//! the owner authenticates the caller again and applies the tenant's limits) and carries
//! [`FORWARDED`] with the cluster's secret: the receiving worker then serves it itself, so a
//! request is forwarded at most once. The secret is `SANDBOX_CLUSTER_SECRET`, or else a random
//! one the first worker records in Redis (whoever can write to the Redis is trusted anyway).
//! When Redis cannot be reached, what needs it answers 503 PROVIDER_UNAVAILABLE; a request on a
//! sandbox this worker holds is still served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::cluster::{Cluster, ClusterOptions, WorkerInfo};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::server::auth::Tenant;
use crate::server::error::ApiError;
use crate::server::options::ClusterSettings;
use crate::server::state::AppState;

/// The header of a request one worker forwards to another: the cluster's secret.
pub const FORWARDED: &str = "x-agentic-sandbox-forwarded";
/// The worker that answered a request (set on forwarded answers and on the worker's own).
pub const WORKER_HEADER: &str = "x-agentic-sandbox-worker";
/// How long a worker may take to accept a forwarded connection.
const CONNECT: Duration = Duration::from_secs(5);
/// How long one worker's part of a list may take.
const LIST: Duration = Duration::from_secs(15);
/// Most bytes of one worker's part of a list.
const MAX_LIST_BYTES: usize = 16 << 20;
/// Most bytes of a forwarded request body (the owner applies the tenant's own, smaller limit).
const MAX_FORWARDED_BODY: usize = 256 << 20;

/// This server as a worker of the cluster.
pub struct Worker {
  pub cluster: Cluster,
  pub id: String,
  pub url: String,
  secret: String,
  http: reqwest::Client,
  /// the answer of a forwarded request must start within this (the longest execute, and a margin)
  response_deadline: Duration,
  heartbeats: Mutex<Option<tokio::task::AbortHandle>>,
  /// the last beat reached Redis
  live: AtomicBool,
}

impl Worker {
  /// Connects to Redis and registers this worker (bound at `bound`). PROVIDER_UNAVAILABLE when
  /// Redis cannot be reached.
  pub async fn join(settings: &ClusterSettings, bound: SocketAddr, max_timeout: Duration) -> Result<Arc<Worker>> {
    let id = settings.worker_id.clone().unwrap_or_else(|| format!("{}-{}", crate::server::metrics::hostname(), std::process::id()));
    let url = match &settings.advertise_url {
      Some(u) => u.clone(),
      None => {
        let mut a = bound;
        if a.ip().is_unspecified() {
          tracing::warn!(%bound, "distributed mode: listening on every address without advertiseUrl / WORKER_URL; other workers will use 127.0.0.1, which only works on this machine");
          a.set_ip(if a.is_ipv6() { std::net::Ipv6Addr::LOCALHOST.into() } else { std::net::Ipv4Addr::LOCALHOST.into() });
        }
        format!("http://{a}")
      }
    };
    let mut opts = ClusterOptions::new(settings.redis_url.clone(), id.clone(), url.clone());
    opts.heartbeat = settings.heartbeat;
    opts.ttl = settings.heartbeat * 3;
    let cluster = Cluster::connect(opts).await?;
    let secret = match &settings.secret {
      Some(s) => s.clone(),
      None => cluster.shared_secret(&format!("{:032x}", rand::random::<u128>())).await?,
    };
    let http = reqwest::Client::builder()
      .no_proxy()
      .connect_timeout(CONNECT)
      .pool_idle_timeout(Duration::from_secs(30))
      .build()
      .map_err(|e| SandboxError::provider(format!("cannot make the HTTP client that forwards requests: {e}")))?;
    Ok(Arc::new(Worker {
      cluster,
      id,
      url,
      secret,
      http,
      response_deadline: max_timeout + Duration::from_secs(60),
      heartbeats: Mutex::new(None),
      live: AtomicBool::new(false),
    }))
  }

  /// Publishes the load; after a (re-)registration (the first beat, a Redis that lost its data),
  /// records every sandbox and session of this worker again.
  pub async fn beat(&self, state: &AppState) -> Result<()> {
    let entries = state.all_entries();
    let running: usize = entries.iter().map(|e| e.running.load(Ordering::SeqCst)).sum();
    let fresh = self.cluster.heartbeat(entries.len() as u64, running as u64).await?;
    if fresh {
      for e in &entries {
        self.cluster.claim(&e.id, &e.tenant.name).await?;
      }
      for sb in state.manager.sessions() {
        let Some(info) = sb.activity().session else { continue };
        if let Some((tenant, thread)) = info.thread_id.split_once('\u{1f}') {
          self.cluster.set_session(tenant, thread, sb.id()).await?;
        }
      }
      self.cluster.shared_secret(&self.secret).await?;
      tracing::info!(worker = %self.id, url = %self.url, sandboxes = entries.len(), "distributed mode: worker registered");
    }
    Ok(())
  }

  /// Beats every `heartbeat` until [`Worker::stop`] or the server goes. A failing Redis is logged
  /// once; the beats go on, and the first that succeeds registers the worker again.
  pub fn start(self: &Arc<Self>, state: Weak<AppState>, every: Duration) {
    let me = Arc::downgrade(self);
    let task = tokio::spawn(async move {
      loop {
        let (Some(w), Some(st)) = (me.upgrade(), state.upgrade()) else { break };
        match w.beat(&st).await {
          Ok(()) => {
            if !w.live.swap(true, Ordering::SeqCst) {
              tracing::info!(worker = %w.id, "distributed mode: heartbeats reach Redis");
            }
          }
          Err(e) => {
            if w.live.swap(false, Ordering::SeqCst) {
              tracing::warn!(worker = %w.id, error = %e.message, "distributed mode: a heartbeat failed; retrying every beat");
            }
          }
        }
        drop((w, st));
        tokio::time::sleep(every).await;
      }
    });
    *self.heartbeats.lock().unwrap() = Some(task.abort_handle());
  }

  /// Stops the beats without leaving: to the others, this worker dies (tests).
  #[cfg(test)]
  pub fn halt(&self) {
    if let Some(t) = self.heartbeats.lock().unwrap().take() {
      t.abort();
    }
  }

  /// Stops the beats and leaves the cluster (a graceful shutdown): no more placements here.
  pub async fn stop(&self) {
    if let Some(t) = self.heartbeats.lock().unwrap().take() {
      t.abort();
    }
    if let Err(e) = self.cluster.leave().await {
      tracing::warn!(worker = %self.id, error = %e.message, "distributed mode: could not deregister the worker");
    }
  }

  fn unreachable(&self, to: &WorkerInfo, e: impl std::fmt::Display) -> ApiError {
    ApiError::coded(
      ErrorCode::ProviderUnavailable,
      format!(
        "worker {:?} at {} did not answer ({e}); if it stopped, its sandboxes are reported gone once its heartbeats have stopped for {:?}",
        to.id,
        to.url,
        self.cluster.options().ttl
      ),
    )
  }

  /// Sends `req` to worker `to` and streams its answer back.
  pub async fn forward(&self, to: &WorkerInfo, req: Request) -> std::result::Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", to.url.trim_end_matches('/'));
    let mut seen = 0usize;
    let capped = body.into_data_stream().map(move |chunk| {
      let b = chunk.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
      seen += b.len();
      if seen > MAX_FORWARDED_BODY {
        return Err(format!("the request body is larger than {MAX_FORWARDED_BODY} bytes").into());
      }
      Ok::<Bytes, Box<dyn std::error::Error + Send + Sync>>(b)
    });
    let mut rb = self.http.request(parts.method.clone(), &url).headers(self.forwarded_headers(&parts.headers));
    if parts.method != Method::GET && parts.method != Method::HEAD {
      rb = rb.body(reqwest::Body::wrap_stream(capped));
    }
    let res = match tokio::time::timeout(self.response_deadline, rb.send()).await {
      Ok(Ok(r)) => r,
      Ok(Err(e)) => return Err(self.unreachable(to, short(&e))),
      Err(_) => return Err(self.unreachable(to, format!("no answer within {:?}", self.response_deadline))),
    };
    let mut out = Response::builder().status(res.status().as_u16());
    for (k, v) in res.headers() {
      if !hop_by_hop(k) {
        out = out.header(k, v);
      }
    }
    let stream = res.bytes_stream().map(|r| r.map_err(std::io::Error::other));
    out.body(Body::from_stream(stream)).map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "PROVIDER_ERROR", format!("worker {:?} answered something unusable: {e}", to.id)))
  }

  fn forwarded_headers(&self, given: &HeaderMap) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in given {
      if !hop_by_hop(k) && k != header::HOST && k.as_str() != FORWARDED {
        h.append(k.clone(), v.clone());
      }
    }
    if let Ok(v) = HeaderValue::from_str(&self.secret) {
      h.insert(HeaderName::from_static(FORWARDED), v);
    }
    h
  }

  /// Every live worker's answer to `GET path`, as JSON; workers that fail are left out (logged).
  async fn gather(&self, path: &str, headers: &HeaderMap) -> std::result::Result<Vec<Value>, ApiError> {
    let workers = self.cluster.workers().await?;
    let calls = workers.iter().map(|w| {
      let url = format!("{}{path}", w.url.trim_end_matches('/'));
      let rb = self.http.get(url).headers(self.forwarded_headers(headers)).timeout(LIST);
      async move {
        let r = rb.send().await.map_err(|e| short(&e))?;
        if !r.status().is_success() {
          return Err(format!("status {}", r.status()));
        }
        if r.content_length().is_some_and(|n| n > MAX_LIST_BYTES as u64) {
          return Err("the list is too large".into());
        }
        let b = r.bytes().await.map_err(|e| short(&e))?;
        serde_json::from_slice::<Value>(&b[..b.len().min(MAX_LIST_BYTES)]).map_err(|e| e.to_string())
      }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut out = Vec::new();
    for (w, a) in workers.iter().zip(answers) {
      match a {
        Ok(v) => out.push(v),
        Err(e) => tracing::warn!(worker = %w.id, error = %e, "distributed mode: a worker's part of a list is missing"),
      }
    }
    Ok(out)
  }
}

/// reqwest's message without the URL's query.
fn short(e: &reqwest::Error) -> String {
  let mut m = e.to_string();
  let mut src = std::error::Error::source(e);
  while let Some(s) = src {
    m = format!("{m}: {s}");
    src = s.source();
  }
  m
}

fn hop_by_hop(k: &HeaderName) -> bool {
  matches!(k.as_str(), "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade")
}

/// What a request is, for routing in the cluster.
#[derive(Debug, PartialEq)]
enum Target {
  Here,
  Create,
  Sandbox(String),
  List(&'static str),
  OpenSession,
  CloseSession(String),
}

fn decode(s: &str) -> String {
  let u: axum::http::Uri = format!("/?v={s}").parse().unwrap_or_default();
  crate::server::v1::query(&u).remove("v").unwrap_or_default()
}

fn classify(method: &Method, path: &str) -> Target {
  let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
  match (method.as_str(), segs.as_slice()) {
    ("POST", ["sandbox", "create"]) | ("POST", ["v1", "sandboxes"]) => Target::Create,
    (_, ["sandbox", id, ..]) | (_, ["v1", "sandboxes", id, ..]) if !id.is_empty() => Target::Sandbox(decode(id)),
    ("GET", ["sandboxes"]) => Target::List("seed"),
    ("GET", ["v1", "sandboxes"]) => Target::List("v1"),
    ("GET", ["v1", "sessions"]) => Target::List("sessions"),
    ("POST", ["v1", "sessions"]) => Target::OpenSession,
    ("DELETE", ["v1", "sessions", thread]) if !thread.is_empty() => Target::CloseSession(decode(thread)),
    _ => Target::Here,
  }
}

/// Equal contents, in a time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
  a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The cluster's router (see the module docs): runs before the routes.
pub async fn route(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
  let Some(w) = state.worker.get().cloned() else {
    return next.run(req).await;
  };
  let mut res = if let Some(v) = req.headers().get(FORWARDED) {
    if same(v.as_bytes(), w.secret.as_bytes()) {
      next.run(req).await
    } else {
      ApiError::unauthorized(format!("{FORWARDED} is for requests between the workers of a cluster, and does not carry this cluster's secret")).into_response()
    }
  } else {
    match state.keys.authenticate(req.headers()) {
      // the route answers 401 / 403
      Err(_) => next.run(req).await,
      Ok(tenant) => dispatch(&state, &w, &tenant, req, next).await.unwrap_or_else(IntoResponse::into_response),
    }
  };
  if !res.headers().contains_key(WORKER_HEADER) {
    if let Ok(v) = HeaderValue::from_str(&w.id) {
      res.headers_mut().insert(WORKER_HEADER, v);
    }
  }
  res
}

/// `maxSandboxes` over the whole cluster: a tenant's sandboxes on every live worker, as the
/// registry has them, checked where the request comes in (each worker also checks its own count,
/// creations in progress included, so only creations racing through different workers at the same
/// moment can pass it, each by one).
async fn held_below_limit(w: &Worker, tenant: &Tenant) -> std::result::Result<(), ApiError> {
  let held = w.cluster.tenant_sandboxes(&tenant.name).await?.len();
  if held >= tenant.limits.max_sandboxes {
    return Err(ApiError::quota(format!(
      "this API key holds {held} sandboxes in the cluster, its limit is {}; destroy one (GET /v1/sandboxes lists them)",
      tenant.limits.max_sandboxes
    )));
  }
  Ok(())
}

fn gone(id: &str) -> ApiError {
  ApiError::coded(
    ErrorCode::SandboxNotFound,
    format!("no sandbox {id:?} for this API key; GET /sandboxes lists yours (a sandbox ends after its timeout, when deleted, or when its worker stops)"),
  )
}

async fn dispatch(state: &Arc<AppState>, w: &Arc<Worker>, tenant: &Arc<Tenant>, req: Request, next: Next) -> std::result::Result<Response, ApiError> {
  match classify(req.method(), req.uri().path()) {
    Target::Here => Ok(next.run(req).await),
    Target::Create => {
      held_below_limit(w, tenant).await?;
      let to = w.cluster.place().await?;
      if to.id == w.id { Ok(next.run(req).await) } else { w.forward(&to, req).await }
    }
    Target::Sandbox(id) => {
      if state.sandboxes.lock().unwrap().contains_key(&id) {
        return Ok(next.run(req).await);
      }
      match w.cluster.owner(&id).await? {
        Some(o) if o.tenant != tenant.name => Err(gone(&id)),
        Some(o) if o.worker.id == w.id => Ok(next.run(req).await),
        Some(o) => w.forward(&o.worker, req).await,
        None => Err(gone(&id)),
      }
    }
    Target::List(kind) => {
      let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
      let parts = w.gather(&path, req.headers()).await?;
      let field = if kind == "sessions" { "sessions" } else { "sandboxes" };
      let mut items: Vec<Value> = parts.into_iter().flat_map(|mut p| match p.get_mut(field).map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
      }).collect();
      let by = match kind {
        "seed" => "created_at",
        "v1" => "createdAt",
        _ => "threadId",
      };
      items.sort_by(|a, b| a[by].as_str().cmp(&b[by].as_str()));
      let body = if kind == "seed" { json!({ "total": items.len(), "sandboxes": items }) } else { json!({ field: items }) };
      Ok(Json(body).into_response())
    }
    Target::OpenSession => {
      let (parts, body) = req.into_parts();
      let bytes = crate::server::body::read_bytes(&parts.headers, body, tenant.limits.max_body_bytes).await?;
      let o = serde_json::from_slice::<Value>(&bytes).ok();
      let req = Request::from_parts(parts, Body::from(bytes));
      let Some(thread) = o.as_ref().and_then(|o| o.get("threadId")).and_then(Value::as_str).map(str::to_string) else {
        // the route says what is wrong with the body
        return Ok(next.run(req).await);
      };
      let auto_retry = o.as_ref().and_then(|o| o.get("autoRetry")).and_then(Value::as_bool).unwrap_or(false);
      if let Some(sid) = w.cluster.session(&tenant.name, &thread).await? {
        if state.sandboxes.lock().unwrap().contains_key(&sid) {
          return Ok(next.run(req).await);
        }
        match w.cluster.owner(&sid).await? {
          Some(o) if o.worker.id == w.id => return Ok(next.run(req).await),
          Some(o) => return w.forward(&o.worker, req).await,
          None if auto_retry => {
            tracing::info!(thread = %thread, sandbox = %sid, "distributed mode: the session's sandbox is gone with its worker; autoRetry makes a new one");
            w.cluster.clear_session(&tenant.name, &thread).await?;
          }
          None => {
            return Err(ApiError::coded(
              ErrorCode::SandboxNotFound,
              format!("the sandbox {sid:?} of thread {thread:?} is gone (its worker stopped); call again with autoRetry: true for a new one, or close the session (DELETE /v1/sessions/{{thread}})"),
            ))
          }
        }
      }
      held_below_limit(w, tenant).await?;
      let to = w.cluster.place().await?;
      if to.id == w.id { Ok(next.run(req).await) } else { w.forward(&to, req).await }
    }
    Target::CloseSession(thread) => {
      let Some(sid) = w.cluster.session(&tenant.name, &thread).await? else {
        return Ok(next.run(req).await);
      };
      if state.sandboxes.lock().unwrap().contains_key(&sid) {
        return Ok(next.run(req).await);
      }
      match w.cluster.owner(&sid).await? {
        Some(o) if o.worker.id == w.id => Ok(next.run(req).await),
        Some(o) => w.forward(&o.worker, req).await,
        None => {
          w.cluster.clear_session(&tenant.name, &thread).await?;
          Ok(Json(json!({ "threadId": thread, "closed": true })).into_response())
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn requests_are_classified() {
    let t = |m: &str, p: &str| classify(&Method::from_bytes(m.as_bytes()).unwrap(), p);
    assert_eq!(t("POST", "/sandbox/create"), Target::Create);
    assert_eq!(t("POST", "/v1/sandboxes"), Target::Create);
    assert_eq!(t("POST", "/sandbox/docker-1/execute"), Target::Sandbox("docker-1".into()));
    assert_eq!(t("DELETE", "/sandbox/docker-1"), Target::Sandbox("docker-1".into()));
    assert_eq!(t("GET", "/v1/sandboxes/docker-2/files"), Target::Sandbox("docker-2".into()));
    assert_eq!(t("POST", "/v1/sandboxes/a%20b/processes/p1/kill"), Target::Sandbox("a b".into()));
    assert_eq!(t("GET", "/sandboxes"), Target::List("seed"));
    assert_eq!(t("GET", "/v1/sandboxes"), Target::List("v1"));
    assert_eq!(t("GET", "/v1/sessions"), Target::List("sessions"));
    assert_eq!(t("POST", "/v1/sessions"), Target::OpenSession);
    assert_eq!(t("DELETE", "/v1/sessions/th%2F1"), Target::CloseSession("th/1".into()));
    for (m, p) in [("GET", "/health"), ("GET", "/v1/openapi.json"), ("GET", "/nope"), ("GET", "/sandbox/"), ("PUT", "/v1/sessions")] {
      assert_eq!(t(m, p), Target::Here, "{m} {p}");
    }
  }
}
