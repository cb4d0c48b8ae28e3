//! The sandbox service: an HTTP server (axum over tokio) over one [`Manager`], serving seed
//! 004's API to tenants identified by API keys.
//!
//! - `options`: what the server is told (address, keys, limits, timeouts);
//! - `auth`: the API key of a request → its tenant (or the anonymous tenant on loopback);
//! - `quota`: per-tenant counters behind `maxSandboxes` and `maxConcurrentExecutions`;
//! - `error`: the one error shape and the code → HTTP status table; redaction of secrets;
//! - `body`: JSON bodies within the tenant's byte limit, field checks naming the field;
//! - `environments`: seed 004's environment names → the library's templates;
//! - `state`: the server's sandboxes, their lifetimes, the work a shutdown waits for;
//! - `execute`: files, then commands, with test runs parsed;
//! - `seed`: the seed's routes and response shapes;
//! - `cluster`: distributed mode: the worker's registration and heartbeats in Redis, and the
//!   routing of each request to the worker that holds its sandbox (forwarding over HTTP);
//! - `metrics`: `GET /metrics` (Prometheus) and the observability options;
//! - `audit`: the audit log, a JSON line per command run;
//! - `v1`: the library's sandbox at the provider level (what the `remote` provider calls) and
//!   sessions, documented in `openapi.json`.
//!
//! Versioning: the seed's routes are served as the seed has them, unversioned, and stay frozen.
//! The library's whole surface is `/v1/...` (the `v1` module's handlers, nested under the prefix
//! in [`router`]), sharing the extractors ([`Caller`], [`SandboxId`]), the error table,
//! the body limits and the tracked work; a breaking change later is a `/v2` nested beside it.

pub mod audit;
pub mod auth;
pub mod body;
pub mod cluster;
pub mod e2b;
pub mod environments;
pub mod error;
pub mod execute;
pub mod metrics;
pub mod options;
pub mod quota;
pub mod seed;
pub mod state;
pub mod v1;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::core::error::{Result, SandboxError};
use crate::core::manager::Manager;
use crate::server::auth::Tenant;
use crate::server::error::{ApiError, Redactor};
use crate::server::options::ServerOptions;
use crate::server::state::AppState;

/// The `tracing` target of the access log (one `info` event per request).
pub const ACCESS_LOG: &str = "agentic_sandbox::server::access";

/// The caller's tenant (401 UNAUTHORIZED without a valid key). Extracted before the body is read.
pub struct Caller(pub Arc<Tenant>);

impl FromRequestParts<Arc<AppState>> for Caller {
  type Rejection = ApiError;

  async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> std::result::Result<Self, ApiError> {
    state.keys.authenticate(&parts.headers).map(Caller)
  }
}

/// The `{id}` of a route, as INVALID_ARGUMENT when it is not UTF-8.
pub struct SandboxId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SandboxId {
  type Rejection = ApiError;

  async fn from_request_parts(parts: &mut Parts, state: &S) -> std::result::Result<Self, ApiError> {
    match Path::<String>::from_request_parts(parts, state).await {
      Ok(Path(id)) => Ok(SandboxId(id)),
      Err(e) => Err(ApiError::invalid(format!("the sandbox id in the path is not valid: {e}"))),
    }
  }
}

const ROUTES: &str = "POST /sandbox/create, POST /sandbox/{id}/execute, GET /sandbox/{id}/status, DELETE /sandbox/{id}, GET /sandboxes, GET /health, GET /metrics, and /v1/... (GET /v1/openapi.json lists them)";

async fn no_route(method: Method, uri: Uri) -> ApiError {
  ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no route {method} {}; the routes are {ROUTES}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
  ApiError::new(
    StatusCode::METHOD_NOT_ALLOWED,
    "METHOD_NOT_ALLOWED",
    format!("{} does not take {method}; the routes are {ROUTES}", uri.path()),
  )
}

/// One `info` event per request on [`ACCESS_LOG`]: method, route (the router's pattern), path,
/// status, time, tenant name.
/// Never a header or a body; the path goes through the redactor.
async fn access_log(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
  if !tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO) {
    return next.run(req).await;
  }
  let t0 = Instant::now();
  let method = req.method().clone();
  let path = state.redactor.redact(req.uri().path());
  let tenant = state.keys.authenticate(req.headers()).map(|t| t.name.clone()).unwrap_or_else(|_| "-".into());
  let res = next.run(req).await;
  // `-`: not served here (forwarded to another worker) or refused before routing
  let route = res.extensions().get::<metrics::RoutePattern>().map_or("-", |r| r.0.as_str()).to_string();
  let ms = (t0.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
  tracing::info!(target: ACCESS_LOG, %method, %route, %path, status = res.status().as_u16(), ms, %tenant, "request");
  res
}

/// Error bodies pass through the redactor: a message from the engine or a provider never carries
/// a key or a secret of the server's environment.
async fn redact_errors(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
  let res = next.run(req).await;
  if res.status().is_success() {
    return res;
  }
  let (parts, body) = res.into_parts();
  let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
    return (parts.status, "").into_response();
  };
  let text = String::from_utf8_lossy(&bytes);
  let clean = state.redactor.redact(&text);
  let mut parts = parts;
  parts.headers.remove(axum::http::header::CONTENT_LENGTH);
  Response::from_parts(parts, axum::body::Body::from(clean))
}

/// The whole HTTP surface: the seed's routes and `/v1`, JSON errors for unknown routes
/// and methods, error redaction and the access log.
/// In distributed mode, [`cluster::route`] sends each request to its worker first: it wraps the
/// whole router, so it sees every path as the client sent it.
pub fn router(state: Arc<AppState>) -> Router {
  let routes = Router::new()
    .merge(seed::routes())
    .nest("/v1", v1::routes())
    .route(metrics::ROUTE, axum::routing::get(metrics::handler))
    .fallback(no_route)
    .method_not_allowed_fallback(wrong_method)
    .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
    .with_state(state.clone());
  Router::new()
    .fallback_service(routes)
    .layer(middleware::from_fn_with_state(state.clone(), cluster::route))
    // E2B's requests never go to another worker: the self-hosted E2B is per server
    .layer(middleware::from_fn_with_state(state.clone(), e2b::route))
    .layer(middleware::from_fn_with_state(state.clone(), redact_errors))
    .layer(middleware::from_fn_with_state(state.clone(), access_log))
    .with_state(state)
}

struct Running {
  addr: SocketAddr,
  stop: tokio::sync::oneshot::Sender<()>,
  task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The server: `listen()` binds and serves; `close()` shuts down gracefully (see [`Server::close`]).
pub struct Server {
  state: Arc<AppState>,
  running: tokio::sync::Mutex<Option<Running>>,
  /// set once close() began; listen() is refused after it
  closing: tokio::sync::Mutex<bool>,
  addr: std::sync::Mutex<Option<SocketAddr>>,
}

/// How long a shutdown waits for cancelled work to return, and for connections to end.
const AFTER_CANCEL: Duration = Duration::from_secs(15);
const CONNECTIONS: Duration = Duration::from_secs(5);

impl Server {
  /// Makes the server's manager (its configuration: `options.manager_config` over the file and
  /// the environment). INVALID_CONFIG for a bad configuration.
  pub fn new(opts: ServerOptions) -> Result<Self> {
    let manager = Manager::with_config_file(opts.manager_config.as_ref(), opts.config_file.as_deref())?;
    let secrets = opts.keys.iter().map(|k| k.key.as_str()).chain(opts.obs.metrics_token.as_deref());
    let redactor = Redactor::new(secrets, std::env::vars());
    let metrics = metrics::Metrics::new(&opts.obs.worker_id);
    let audit = audit::Audit::open(opts.obs.audit_log.as_deref(), &opts.obs.worker_id, metrics.audit_dropped.clone())?;
    if opts.access_log {
      crate::core::logging::init();
      crate::core::logging::enable(&format!("{ACCESS_LOG}=info"));
    }
    Ok(Self {
      state: AppState::observed(Arc::new(manager), opts, redactor, metrics, audit),
      running: tokio::sync::Mutex::new(None),
      closing: tokio::sync::Mutex::new(false),
      addr: std::sync::Mutex::new(None),
    })
  }

  pub fn state(&self) -> &Arc<AppState> {
    &self.state
  }

  /// Where it listens (after `listen`).
  pub fn address(&self) -> Option<SocketAddr> {
    *self.addr.lock().unwrap()
  }

  /// Binds `host:port` (port 0: any free port) and serves in the background; resolves with the
  /// bound address. Without API keys, only a loopback address is allowed (INVALID_CONFIG).
  pub async fn listen(&self) -> Result<SocketAddr> {
    if *self.closing.lock().await {
      return Err(SandboxError::invalid_argument("this server was closed; create a new SandboxServer to listen again"));
    }
    let mut running = self.running.lock().await;
    if let Some(r) = running.as_ref() {
      return Err(SandboxError::invalid_argument(format!("the server already listens on {}", r.addr)));
    }
    let (host, port) = (self.state.opts.host.clone(), self.state.opts.port);
    let listener = tokio::net::TcpListener::bind((host.trim_matches(|c| c == '[' || c == ']'), port))
      .await
      .map_err(|e| SandboxError::invalid_config(format!("cannot listen on {host}:{port} ({e}); choose another port or host")))?;
    let addr = listener.local_addr().map_err(|e| SandboxError::provider(format!("the listening socket has no address ({e})")))?;
    if self.state.keys.is_open() && !addr.ip().is_loopback() {
      let ip = addr.ip().to_string();
      let shown = if ip == host { host } else { format!("{host} ({ip})") };
      return Err(SandboxError::invalid_config(format!(
        "listening on {shown} is beyond loopback and needs API keys: set SANDBOX_API_KEYS, pass apiKeys / --api-keys-file, or listen on 127.0.0.1"
      )));
    }
    if let Some(settings) = &self.state.opts.cluster {
      if self.state.worker.get().is_none() {
        let w = cluster::Worker::join(settings, addr, self.state.opts.max_timeout).await?;
        w.beat(&self.state).await?;
        w.start(Arc::downgrade(&self.state), settings.heartbeat);
        tracing::info!(worker = %w.id, url = %w.url, "distributed mode: this server is a worker");
        let _ = self.state.worker.set(w);
      }
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(self.state.clone());
    // TCP_NODELAY: a /v1 process stream is several small writes (started, output, exit); with
    // Nagle's algorithm each waits for the client's delayed ACK (~40 ms per remote execute)
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
      if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
      }
    });
    let task = tokio::spawn(async move {
      axum::serve(listener, app)
        .with_graceful_shutdown(async move {
          let _ = stopped.await;
        })
        .await
    });
    tracing::info!(%addr, tenants = self.state.keys.tenants().len(), "sandbox service listening");
    *running = Some(Running { addr, stop, task });
    *self.addr.lock().unwrap() = Some(addr);
    Ok(addr)
  }

  /// Graceful shutdown: stop accepting connections and new work (503 SHUTTING_DOWN), let the work
  /// in flight finish within `shutdownTimeout`, then kill what still runs (its requests answer
  /// 503 ABORTED), and destroy every sandbox of the server. A second call waits for the first.
  pub async fn close(&self) -> Result<()> {
    let mut closing = self.closing.lock().await;
    if *closing {
      return Ok(());
    }
    *closing = true;
    let state = &self.state;
    state.shutting_down.store(true, Ordering::SeqCst);
    // no more placements here; other workers see its sandboxes gone once they are destroyed
    if let Some(w) = state.worker.get() {
      w.stop().await;
    }
    let running = self.running.lock().await.take();
    let task = running.map(|r| {
      let _ = r.stop.send(());
      r.task
    });
    let in_flight = state.work.count();
    if !state.work.idle_within(state.opts.shutdown_timeout).await {
      tracing::warn!(in_flight = state.work.count(), "shutdown: work still running after the shutdown timeout is cancelled");
    } else if in_flight > 0 {
      tracing::info!(in_flight, "shutdown: in-flight work finished");
    }
    let first = state.destroy_everything().await;
    state.work.idle_within(AFTER_CANCEL).await;
    // sandboxes whose creation ended after the first sweep
    let second = state.destroy_everything().await;
    if let Some(mut task) = task {
      if tokio::time::timeout(CONNECTIONS, &mut task).await.is_err() {
        task.abort();
      }
    }
    state.audit.flush(CONNECTIONS).await;
    tracing::info!("sandbox service closed");
    first.and(second).map_err(|e| SandboxError::provider(e.message))
  }
}
