//! Self-hosted E2B: the E2B control plane and envd protocols served by `agentic-sandbox serve`
//! on its own port, over the server's sandboxes (README "Use the E2B SDK with your own Docker
//! host"). The official SDKs run unchanged with `E2B_API_URL` and `E2B_SANDBOX_URL` both set to
//! the server's address.
//!
//! Requests are told apart before the server's own routes see them ([`route`]):
//! - envd (the data plane): every request with an `E2b-Sandbox-Id` header (the SDKs send it, with
//!   `E2b-Sandbox-Port: 49983`, on every envd call), or a `Host` of the form
//!   `49983-<sandboxID>.<domain>` (E2B's per-port host names) → [`envd_routes`]: the Connect
//!   services `process.Process` (`process.rs`) and `filesystem.Filesystem`, `/files`, `/health`,
//!   `/envs`, `/metrics` (`fs.rs`);
//! - the control plane: `POST /sandboxes`, `/v2/sandboxes…`, `/sandboxes/{id}…` (E2B's REST
//!   API, `api.rs`). `GET /sandboxes` without an id stays seed 004's list (E2B's SDKs list with
//!   `GET /v2/sandboxes`).
//!
//! Each E2B sandbox is one of the server's sandboxes (an [`Entry`]: tenant, lifetime, counters)
//! plus what E2B keeps about it ([`E2bBox`]). Its E2B id is 20 characters of `[a-z0-9]`, as E2B's.
//! The control plane authenticates with `X-API-Key` (the server's API keys: each key a tenant);
//! envd requests carry no API key, as on E2B: they name the sandbox, and a `secure` sandbox (the
//! SDKs' default) requires its `X-Access-Token`.

// A handler's early answer is a ready `Response` (as the envd helpers below return it): boxing
// it would buy nothing on these paths.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod fs;
pub mod process;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::server::state::{AppState, Entry};

/// envd's port, in `E2b-Sandbox-Port` and in per-port host names.
pub const ENVD_PORT: u16 = 49983;
/// The envd version reported to the SDKs (they gate features on it; this is the one whose
/// protocol `../shared/reference/e2b-protocol.md` describes).
pub const ENVD_VERSION: &str = "0.6.13";
/// E2B's constant `clientID`.
pub const CLIENT_ID: &str = "6532622b";
/// The envd user the SDKs default to, and its home (the sandbox's workspace is mounted there).
pub const USER: &str = "user";
pub const HOME: &str = "/home/user";

/// What E2B keeps about one sandbox, beside the server's [`Entry`].
pub struct E2bBox {
  /// E2B's id: 20 characters of `[a-z0-9]`
  pub id: String,
  pub entry: Arc<Entry>,
  /// `templateID` as created (the template or its alias)
  pub template: String,
  pub metadata: BTreeMap<String, String>,
  /// `envVars` of the create request: every process's default environment
  pub env_vars: BTreeMap<String, String>,
  /// `envdAccessToken` of a `secure` sandbox: every envd request but `/health` must carry it
  /// (or, for `/files`, a signature made with it)
  pub access_token: Option<String>,
  /// paused with `POST /sandboxes/{id}/pause`; envd answers 502 until it is connected again
  pub paused: AtomicBool,
  /// `allow_internet_access` and `network` as created or last updated
  pub network: Mutex<Value>,
  /// envd's processes: pid → the process, its tag, output subscribers and retained end
  pub processes: process::Table,
}

/// The E2B sandboxes of a server, by E2B id.
#[derive(Default)]
pub struct E2bState {
  pub boxes: Mutex<HashMap<String, Arc<E2bBox>>>,
}

impl E2bState {
  pub fn get(&self, id: &str) -> Option<Arc<E2bBox>> {
    self.boxes.lock().unwrap().get(id).cloned()
  }
}

/// A new E2B sandbox id: 20 characters of `[a-z0-9]`.
pub fn new_id() -> String {
  const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
  (0..20).map(|_| CHARS[rand::random::<u32>() as usize % CHARS.len()] as char).collect()
}

/// The control plane's error body: `{"code": <status>, "message": …}`.
pub fn api_error(status: StatusCode, message: impl Into<String>) -> Response {
  (status, axum::Json(json!({ "code": status.as_u16(), "message": message.into() }))).into_response()
}

/// A Connect error (unary calls): the code's HTTP status, `{"code": "not_found", "message": …}`.
/// Codes: canceled, unknown, invalid_argument, deadline_exceeded, not_found, already_exists,
/// permission_denied, resource_exhausted, failed_precondition, aborted, out_of_range,
/// unimplemented, internal, unavailable, data_loss, unauthenticated.
pub fn connect_error(code: &str, message: impl Into<String>) -> Response {
  let status = match code {
    "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
    "invalid_argument" | "out_of_range" => StatusCode::BAD_REQUEST,
    "deadline_exceeded" => StatusCode::GATEWAY_TIMEOUT,
    "not_found" => StatusCode::NOT_FOUND,
    "already_exists" | "aborted" => StatusCode::CONFLICT,
    "permission_denied" => StatusCode::FORBIDDEN,
    "resource_exhausted" => StatusCode::TOO_MANY_REQUESTS,
    "failed_precondition" => StatusCode::PRECONDITION_FAILED,
    "unimplemented" => StatusCode::NOT_IMPLEMENTED,
    "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
    "unauthenticated" => StatusCode::UNAUTHORIZED,
    _ => StatusCode::INTERNAL_SERVER_ERROR,
  };
  (status, axum::Json(json!({ "code": code, "message": message.into() }))).into_response()
}

/// What the edge answers for a sandbox it cannot reach (unknown, killed or paused): 502, which
/// the SDKs map to "not running" / a timeout error.
pub fn edge_not_found(id: &str) -> Response {
  (StatusCode::BAD_GATEWAY, axum::Json(json!({ "sandboxId": id, "message": "The sandbox was not found", "code": 502 }))).into_response()
}

/// The sandbox an envd request is for: `E2b-Sandbox-Id`, else a `49983-<id>.<domain>` Host.
pub fn envd_target(headers: &HeaderMap) -> Option<String> {
  if let Some(id) = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok()) {
    return Some(id.trim().to_string());
  }
  let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok())?;
  let first = host.split('.').next()?;
  let (port, id) = first.split_once('-')?;
  (port == ENVD_PORT.to_string() && !id.is_empty() && host.contains('.')).then(|| id.to_string())
}

/// The running, reachable E2B sandbox an envd request is for, without the token check (`/files`
/// also accepts a signature instead): the edge's 502 for an unknown, killed or paused sandbox.
pub fn envd_box_unchecked(state: &AppState, headers: &HeaderMap) -> Result<Arc<E2bBox>, Response> {
  let id = envd_target(headers).unwrap_or_default();
  match state.e2b.get(&id) {
    Some(b) if !b.paused.load(std::sync::atomic::Ordering::SeqCst) => Ok(b),
    _ => Err(edge_not_found(&id)),
  }
}

/// Whether the request carries the sandbox's envd access token (always true for a sandbox
/// created with `secure: false`). Compared in constant time.
pub fn token_ok(b: &E2bBox, headers: &HeaderMap) -> bool {
  let Some(want) = &b.access_token else { return true };
  let Some(got) = headers.get("x-access-token") else { return false };
  let (a, g) = (want.as_bytes(), got.as_bytes());
  a.len() == g.len() && a.iter().zip(g).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// [`envd_box_unchecked`] plus the token: envd's 401 (JSON `{"code":401,…}`, as envd sends it)
/// without it.
pub fn envd_box(state: &AppState, headers: &HeaderMap) -> Result<Arc<E2bBox>, Response> {
  let b = envd_box_unchecked(state, headers)?;
  if !token_ok(&b, headers) {
    return Err(api_error(
      StatusCode::UNAUTHORIZED,
      "unauthorized access, please provide a valid access token or method signing if supported",
    ));
  }
  Ok(b)
}

/// The envd user of a request (`Authorization: Basic base64("<user>:")`, absent: `user`). Only
/// `user` exists: every process and file operation runs as the sandbox's one user, whose home is
/// [`HOME`] (the workspace). Another name is Connect's `unauthenticated`, as envd answers it.
pub fn envd_user(headers: &HeaderMap) -> Result<(), Response> {
  let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(()) };
  use base64::Engine;
  let name = v
    .strip_prefix("Basic ")
    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
    .map(|d| String::from_utf8_lossy(&d).split(':').next().unwrap_or("").to_string())
    .unwrap_or_default();
  if name == USER || name.is_empty() {
    Ok(())
  } else {
    Err(connect_error(
      "unauthenticated",
      format!("invalid username: '{name}' (this server's sandboxes have one user, 'user', home {HOME}; 'root' is not available: the sandbox has no privileges to give it)"),
    ))
  }
}

/// A path as envd resolves it: absolute as is, `~/x` and relative ones under [`HOME`].
pub fn resolve_path(p: &str) -> String {
  let p = p.trim();
  let joined = if let Some(rest) = p.strip_prefix("~/") {
    format!("{HOME}/{rest}")
  } else if p == "~" || p.is_empty() {
    HOME.to_string()
  } else if p.starts_with('/') {
    p.to_string()
  } else {
    format!("{HOME}/{p}")
  };
  crate::core::paths::normalize(&joined)
}

fn is_control(method: &axum::http::Method, path: &str) -> bool {
  path.starts_with("/v2/sandboxes")
    || (path == "/sandboxes" && method == axum::http::Method::POST)
    || path.starts_with("/sandboxes/")
}

/// Sends E2B's requests to the E2B routes, everything else on to the server's own.
pub async fn route(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
  let envd = envd_target(req.headers()).is_some();
  if !envd && !is_control(req.method(), req.uri().path()) {
    return next.run(req).await;
  }
  let (envd_router, api_router) = state
    .e2b_routers
    .get_or_init(|| (envd_routes().with_state(state.clone()), api::routes().with_state(state.clone())))
    .clone();
  use tower::ServiceExt;
  let router = if envd { envd_router } else { api_router };
  match router.oneshot(req).await {
    Ok(r) => r,
    Err(e) => match e {},
  }
}

/// envd's routes (the sandbox is named by the request's headers, see [`envd_target`]).
pub fn envd_routes() -> Router<Arc<AppState>> {
  Router::new().merge(process::routes()).merge(fs::routes())
}
