//! E2B's control plane (REST/JSON): create, list, info, kill, timeout, pause, connect, metrics,
//! network. See `../shared/reference/e2b-protocol.md` section 1 and its corrections (the SDKs of
//! 2.x create with `POST /v2/sandboxes` and connect with `POST /v2/sandboxes/{id}/connect`).
//!
//! Every route takes the server's API keys in `X-API-Key` (or `Authorization: Bearer`); each key
//! is a tenant, which sees only its own E2B sandboxes (another tenant's reads as unknown: 404).
//! Errors are E2B's `{"code": <status>, "message": …}`; the SDKs key off `code` (a 404 `kill()`
//! is `false`), 401 is an AuthenticationError, 429 a RateLimitError.
//!
//! What differs from E2B, by design:
//! - a template is one of the server's `templates` (its configuration); a `templateID` the
//!   server does not configure runs the server's default image (reported under the name asked);
//! - limits (CPU, memory, disk, lifetime) are the server's, as for `/v1` (the tenant's config is
//!   bounded by [`crate::server::v1::sanitize`]); the longest `timeout` is the server's
//!   `maxTimeout`;
//! - `autoPause` is accepted, but a lifetime's end always destroys the sandbox (`lifecycle.onTimeout`
//!   reads `kill`);
//! - pause stops the sandbox: its processes are killed and its files kept (E2B keeps memory too);
//!   connect starts it again. A paused sandbox still ends at its end time;
//! - `network.allowOut`/`denyOut` are the library's egress rules and are only given where the
//!   server's sandboxes have Docker's bridge and no rules of the operator's (403 otherwise, never
//!   a wider sandbox than asked); `rules` and `egressProxy` are refused; `allow_internet_access:
//!   false` is `networkMode: none` at create, and `denyOut: 0.0.0.0/0` on an update.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{api_error, new_id, E2bBox, CLIENT_ID, ENVD_VERSION, HOME};
use crate::core::config::NetworkPolicy;
use crate::core::logs::{iso, now_ms};
use crate::server::auth::Tenant;
use crate::server::body::{read_object, Object};
use crate::server::error::ApiError;
use crate::server::state::AppState;

type S = State<Arc<AppState>>;
type R = Result<Response, E2bError>;

/// `timeout` when `POST /sandboxes` has none (E2B's API: 15 s).
pub const V1_DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// `timeout` when `POST /v2/sandboxes` or connect has none (the SDKs send none by default; E2B's
/// v2 API gives 300 s). At most the server's `maxTimeout`.
pub const V2_DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
    .route("/sandboxes", post(create_v1))
    .route("/v2/sandboxes", post(create_v2).get(list))
    .route("/sandboxes/{id}", get(info).delete(kill))
    .route("/sandboxes/{id}/timeout", post(set_timeout))
    .route("/sandboxes/{id}/refreshes", post(refresh))
    .route("/sandboxes/{id}/pause", post(pause))
    .route("/sandboxes/{id}/connect", post(connect))
    .route("/v2/sandboxes/{id}/connect", post(connect))
    .route("/sandboxes/{id}/resume", post(resume))
    .route("/sandboxes/{id}/metrics", get(metrics))
    .route("/sandboxes/{id}/network", put(update_network))
    .fallback(no_route)
    .method_not_allowed_fallback(wrong_method)
}

// ---------------------------------------------------------------------------------------------
// errors

/// An error of the control plane: its status and message, sent as `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct E2bError(pub StatusCode, pub String);

impl E2bError {
  fn bad(message: impl Into<String>) -> Self {
    Self(StatusCode::BAD_REQUEST, message.into())
  }
}

impl IntoResponse for E2bError {
  fn into_response(self) -> Response {
    api_error(self.0, self.1)
  }
}

impl From<ApiError> for E2bError {
  fn from(e: ApiError) -> Self {
    Self(e.status, e.message)
  }
}

impl From<crate::core::error::SandboxError> for E2bError {
  fn from(e: crate::core::error::SandboxError) -> Self {
    ApiError::from(e).into()
  }
}

fn not_found(id: &str) -> E2bError {
  E2bError(StatusCode::NOT_FOUND, format!("Sandbox \"{id}\" doesn't exist or you don't have access to it"))
}

async fn no_route(method: Method, uri: Uri) -> Response {
  api_error(
    StatusCode::NOT_FOUND,
    format!(
      "no route {method} {} in this server's E2B API (it serves POST /v2/sandboxes, GET /v2/sandboxes, GET|DELETE /sandboxes/{{id}}, POST /sandboxes/{{id}}/timeout|pause|connect|resume|refreshes, GET /sandboxes/{{id}}/metrics, PUT /sandboxes/{{id}}/network)",
      uri.path()
    ),
  )
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
  api_error(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()))
}

// ---------------------------------------------------------------------------------------------
// request helpers

/// The caller's tenant: 401 (E2B's message, then the server's reason) without a valid key.
fn tenant(state: &AppState, headers: &HeaderMap) -> Result<Arc<Tenant>, E2bError> {
  state.keys.authenticate(headers).map_err(|e| {
    if e.status == StatusCode::UNAUTHORIZED {
      E2bError(StatusCode::UNAUTHORIZED, format!("Invalid API key, please visit https://e2b.dev/docs/api-key for more information ({})", e.message))
    } else {
      e.into()
    }
  })
}

/// The sandbox id of a path: E2B's `[a-z0-9]+` (a 1.x `<id>-<clientID>` is cut at the dash).
fn sandbox_id(raw: &str) -> Result<String, E2bError> {
  let id = raw.split('-').next().unwrap_or("");
  if id.is_empty() || !id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
    return Err(E2bError::bad("Invalid sandbox ID"));
  }
  Ok(id.to_string())
}

/// `tenant`'s E2B sandbox `raw`: 404 for unknown ids and other tenants' alike.
fn sandbox_of(state: &AppState, tenant: &Tenant, raw: &str) -> Result<Arc<E2bBox>, E2bError> {
  let id = sandbox_id(raw)?;
  match state.e2b.get(&id) {
    Some(b) if b.entry.tenant.name == tenant.name => Ok(b),
    _ => Err(not_found(&id)),
  }
}

async fn body_of(headers: &HeaderMap, body: Body, tenant: &Tenant) -> Result<Object, E2bError> {
  read_object(headers, body, tenant.limits.max_body_bytes).await.map_err(|e| match e.status {
    StatusCode::BAD_REQUEST => E2bError::bad(format!("Error when parsing request: {}", e.message)),
    _ => e.into(),
  })
}

fn human(max: Duration) -> String {
  let s = max.as_secs();
  if s == 3600 {
    "1 hour".to_string()
  } else if s.is_multiple_of(3600) {
    format!("{} hours", s / 3600)
  } else {
    format!("{s} seconds")
  }
}

/// A lifetime field (`timeout`, `duration`): whole seconds in (0, `max`]; `None` when absent.
/// E2B's messages: `Timeout must be greater than 0`, `Timeout cannot be greater than 24 hours`.
pub fn timeout_field(o: &Object, field: &str, max: Duration) -> Result<Option<Duration>, E2bError> {
  let v = match o.get(field) {
    None | Some(Value::Null) => return Ok(None),
    Some(v) => v,
  };
  let secs = match v.as_i64() {
    Some(n) => n,
    None => match v.as_f64() {
      Some(f) if f.is_finite() && f.fract() == 0.0 => f as i64,
      _ => return Err(E2bError::bad(format!("validation error: {field} must be an integer number of seconds, got {v}"))),
    },
  };
  if secs <= 0 {
    return Err(E2bError::bad("Timeout must be greater than 0"));
  }
  if secs as u64 > max.as_secs() {
    return Err(E2bError::bad(format!("Timeout cannot be greater than {}", human(max))));
  }
  Ok(Some(Duration::from_secs(secs as u64)))
}

fn string_map(o: &Object, field: &str) -> Result<BTreeMap<String, String>, E2bError> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(BTreeMap::new()),
    Some(Value::Object(m)) => m
      .iter()
      .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| E2bError::bad(format!("validation error: {field}.{k} must be a string"))))
      .collect(),
    Some(_) => Err(E2bError::bad(format!("validation error: {field} must be an object of strings"))),
  }
}

fn opt_bool(o: &Object, field: &str) -> Result<Option<bool>, E2bError> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::Bool(b)) => Ok(Some(*b)),
    Some(_) => Err(E2bError::bad(format!("validation error: {field} must be a boolean"))),
  }
}

/// `network` of a create or update: `allowOut` and `denyOut` (lists left out are empty). Egress
/// features the server does not have are refused rather than ignored; ingress ones
/// (`allowPublicTraffic`, `maskRequestHost`, `httpsPorts`) mean nothing here: the server's
/// sandboxes take no traffic from outside.
fn network_lists(o: &Map<String, Value>, what: &str) -> Result<NetworkPolicy, E2bError> {
  for k in ["rules", "egressProxy"] {
    if o.get(k).is_some_and(|v| !v.is_null()) {
      return Err(E2bError::bad(format!("{what}.{k} is not supported by this server (only allowOut and denyOut egress rules)")));
    }
  }
  let list = |k: &str| -> Result<Vec<String>, E2bError> {
    match o.get(k) {
      None | Some(Value::Null) => Ok(Vec::new()),
      Some(Value::Array(a)) => a
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| E2bError::bad(format!("validation error: {what}.{k} must be an array of strings"))))
        .collect(),
      Some(_) => Err(E2bError::bad(format!("validation error: {what}.{k} must be an array of strings"))),
    }
  };
  let p = NetworkPolicy { allow_out: list("allowOut")?, deny_out: list("denyOut")? };
  crate::core::config::check_network(&p).map_err(|e| E2bError::bad(e.message))?;
  Ok(p)
}

/// The query of a URI, each value percent-decoded once (`+` a space).
fn query(uri: &Uri) -> HashMap<String, String> {
  crate::server::v1::query(uri)
}

/// Percent-decoding of one query component (`plus`: `+` is a space, as in a form). An
/// unfinished or invalid escape is kept as it is.
fn pct_decode(s: &str, plus: bool) -> Result<String, E2bError> {
  let b = s.as_bytes();
  let mut out = Vec::with_capacity(b.len());
  let mut i = 0;
  while i < b.len() {
    match b[i] {
      b'+' if plus => out.push(b' '),
      b'%' if i + 2 < b.len() => {
        match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
          Some(v) => {
            out.push(v);
            i += 2;
          }
          None => out.push(b'%'),
        }
      }
      c => out.push(c),
    }
    i += 1;
  }
  String::from_utf8(out).map_err(|_| E2bError::bad("Invalid metadata filter: not UTF-8"))
}

/// The `metadata` filter of a list (its query value, decoded once): itself a query string
/// `k1=v1&k2=v2` whose keys and values the SDKs percent-encoded before encoding the whole (E2B's
/// double encoding): split, form-decode, then decode each again. Every pair must match.
pub fn metadata_filter(raw: &str) -> Result<Vec<(String, String)>, E2bError> {
  let mut out = Vec::new();
  for pair in raw.split('&').filter(|p| !p.is_empty()) {
    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
    let (k, v) = (pct_decode(&pct_decode(k, true)?, false)?, pct_decode(&pct_decode(v, true)?, false)?);
    if k.is_empty() {
      return Err(E2bError::bad("Invalid metadata filter: a key is empty"));
    }
    out.push((k, v));
  }
  Ok(out)
}

// ---------------------------------------------------------------------------------------------
// response shapes

fn limits_of(b: &E2bBox) -> (u64, u64, u64) {
  let l = b.entry.sandbox.limits();
  ((l.cpu_cores.ceil() as u64).max(1), l.memory_mb.round() as u64, l.disk_mb.round() as u64)
}

fn state_word(b: &E2bBox) -> &'static str {
  if b.paused.load(Ordering::SeqCst) {
    "paused"
  } else {
    "running"
  }
}

/// `Sandbox` (create, connect, resume).
pub fn sandbox_json(b: &E2bBox) -> Value {
  let mut v = json!({
    "templateID": b.template,
    "alias": b.template,
    "sandboxID": b.id,
    "clientID": CLIENT_ID,
    "envdVersion": ENVD_VERSION,
    "trafficAccessToken": null,
    "domain": null,
  });
  if let Some(t) = &b.access_token {
    v["envdAccessToken"] = json!(t);
  }
  v
}

/// `ListedSandbox` (`GET /v2/sandboxes`): limits are the sandbox's own (cores rounded up).
pub fn listed_json(b: &E2bBox) -> Value {
  let (cpus, mem, disk) = limits_of(b);
  json!({
    "templateID": b.template,
    "alias": b.template,
    "sandboxID": b.id,
    "clientID": CLIENT_ID,
    "startedAt": iso(b.entry.created_ms),
    "endAt": iso(b.entry.expires_ms()),
    "cpuCount": cpus,
    "memoryMB": mem,
    "diskSizeMB": disk,
    "metadata": b.metadata,
    "state": state_word(b),
    "envdVersion": ENVD_VERSION,
  })
}

/// `SandboxDetail` (`GET /sandboxes/{id}`).
pub fn detail_json(b: &E2bBox) -> Value {
  let mut v = listed_json(b);
  if let Some(t) = &b.access_token {
    v["envdAccessToken"] = json!(t);
  }
  v["domain"] = Value::Null;
  let net = b.network.lock().unwrap().clone();
  v["allowInternetAccess"] = net.get("allowInternetAccess").cloned().unwrap_or(Value::Null);
  if let Some(n) = net.get("network").filter(|n| !n.is_null()) {
    v["network"] = n.clone();
  }
  v["lifecycle"] = json!({ "autoResume": false, "onTimeout": "kill" });
  v
}

fn no_content() -> Response {
  StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------
// create

/// What a create request asks for, checked.
#[derive(Debug)]
pub struct NewSandbox {
  pub template: String,
  pub timeout: Duration,
  pub metadata: BTreeMap<String, String>,
  pub env_vars: BTreeMap<String, String>,
  pub secure: bool,
  pub allow_internet_access: Option<bool>,
  pub network: Option<NetworkPolicy>,
}

/// Reads a create body. `v2`: `POST /v2/sandboxes` (always secure; default lifetime 300 s)
/// rather than `POST /sandboxes` (secure only when asked; default 15 s).
pub fn parse_new(o: &Object, v2: bool, max: Duration) -> Result<NewSandbox, E2bError> {
  let template = match o.get("templateID") {
    None | Some(Value::Null) => "base".to_string(),
    Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
    Some(_) => return Err(E2bError::bad("validation error: templateID must be a non-empty string")),
  };
  let default = if v2 { V2_DEFAULT_TIMEOUT } else { V1_DEFAULT_TIMEOUT };
  let timeout = timeout_field(o, "timeout", max)?.unwrap_or(default.min(max));
  let network = match o.get("network") {
    None | Some(Value::Null) => None,
    Some(Value::Object(m)) => Some(network_lists(m, "network")?),
    Some(_) => return Err(E2bError::bad("validation error: network must be an object")),
  };
  opt_bool(o, "autoPause")?;
  for k in ["volumeMounts", "mcp"] {
    if o.get(k).is_some_and(|v| !v.is_null()) {
      return Err(E2bError::bad(format!("{k} is not supported by this server")));
    }
  }
  Ok(NewSandbox {
    template,
    timeout,
    metadata: string_map(o, "metadata")?,
    env_vars: string_map(o, "envVars")?,
    secure: v2 || opt_bool(o, "secure")? == Some(true),
    allow_internet_access: opt_bool(o, "allow_internet_access")?,
    network,
  })
}

/// The createSandbox layer of a new E2B sandbox (before [`crate::server::v1::sanitize`]): the
/// template when the server configures one by that name (otherwise the server's default image),
/// E2B's home as the workdir, `envVars` and `HOME`, the E2B id in the metadata, and the network.
pub fn layer_of(n: &NewSandbox, id: &str, templates: Option<&Value>) -> Value {
  let mut env: Map<String, Value> = n.env_vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
  env.insert("HOME".into(), json!(HOME));
  let mut layer = json!({
    "workdir": HOME,
    "env": env,
    "metadata": { "e2b": id, "e2bTemplate": n.template, "e2bMetadata": n.metadata },
  });
  if templates.and_then(Value::as_object).is_some_and(|m| m.get(&n.template).is_some_and(|v| !v.is_null())) {
    layer["template"] = json!(n.template);
  }
  if n.allow_internet_access == Some(false) {
    layer["networkMode"] = json!("none");
  }
  if let Some(p) = &n.network {
    layer["network"] = p.to_json();
  }
  layer
}

async fn create_v1(state: S, headers: HeaderMap, body: Body) -> R {
  create(state, headers, body, false).await
}

async fn create_v2(state: S, headers: HeaderMap, body: Body) -> R {
  create(state, headers, body, true).await
}

/// `POST /sandboxes`, `POST /v2/sandboxes` → 201 `Sandbox`.
async fn create(State(state): S, headers: HeaderMap, body: Body, v2: bool) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let n = parse_new(&o, v2, state.opts.max_timeout)?;
  let id = new_id();
  let layer = crate::server::v1::sanitize(&layer_of(&n, &id, state.templates().as_ref()), state.manager.defaults())?;
  let slot = tenant.sandboxes.try_acquire().ok_or_else(|| {
    E2bError(
      StatusCode::TOO_MANY_REQUESTS,
      format!(
        "you have reached the maximum number of concurrent E2B sandboxes ({}). Kill one (Sandbox.kill) or wait for one to time out; this server's sandboxes of every API count against it",
        tenant.sandboxes.max()
      ),
    )
  })?;
  let access_token = n.secure.then(|| {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
  });
  let network = json!({ "allowInternetAccess": n.allow_internet_access, "network": n.network.as_ref().map(NetworkPolicy::to_json) });
  let st = state.clone();
  let b = state
    .work(async move {
      let sb = st.manager.create(Some(&layer))?;
      if let Err(e) = sb.start(None).await {
        if let Err(d) = st.manager.destroy(sb.id()).await {
          tracing::warn!(sandbox = sb.id(), error = %d, "destroying an E2B sandbox that failed to start failed");
        }
        return Err(ApiError::from(e));
      }
      let entry = st.add_entry(tenant, sb, "e2b".into(), n.template.clone(), n.timeout, slot);
      let b = Arc::new(E2bBox {
        id: id.clone(),
        entry: entry.clone(),
        template: n.template,
        metadata: n.metadata,
        env_vars: n.env_vars,
        access_token,
        paused: Default::default(),
        network: Mutex::new(network),
        processes: Default::default(),
      });
      st.e2b.boxes.lock().unwrap().insert(id.clone(), b.clone());
      // a lifetime that ended before the box was known: forget it again
      if !st.sandboxes.lock().unwrap().contains_key(&entry.id) {
        st.e2b.boxes.lock().unwrap().remove(&id);
      }
      st.announce(&entry).await?;
      Ok(b)
    })
    .await
    .map_err(|e| if e.status.is_server_error() { E2bError(e.status, format!("Failed to create sandbox: {}", e.message)) } else { e.into() })?;
  Ok((StatusCode::CREATED, Json(sandbox_json(&b))).into_response())
}

// ---------------------------------------------------------------------------------------------
// list, info, kill

/// `GET /v2/sandboxes?metadata=&state=&template=&startedAfter=&order=&limit=&nextToken=` → the
/// caller's E2B sandboxes (newest first unless `order=asc`); `X-Next-Token` when more remain (the
/// token is the offset of the next page), `X-Total-Running` when running ones were asked for.
async fn list(State(state): S, headers: HeaderMap, uri: Uri) -> R {
  let tenant = tenant(&state, &headers)?;
  let q = query(&uri);
  let filter = metadata_filter(q.get("metadata").map_or("", |s| s.as_str()))?;
  let states: Vec<String> = q.get("state").map_or("running,paused", |s| s.as_str()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
  if let Some(bad) = states.iter().find(|s| *s != "running" && *s != "paused") {
    return Err(E2bError::bad(format!("validation error: invalid state {bad:?} (running, paused)")));
  }
  let started_after = match q.get("startedAfter").filter(|s| !s.is_empty()) {
    None => None,
    Some(s) => Some(
      crate::providers::docker::reaper::parse_rfc3339(s).ok_or_else(|| E2bError::bad(format!("validation error: startedAfter must be an RFC 3339 time, got {s:?}")))? as f64 * 1000.0,
    ),
  };
  let template = q.get("template").filter(|s| !s.is_empty());
  let limit = match q.get("limit").filter(|s| !s.is_empty()) {
    None => 100,
    Some(s) => s.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| E2bError::bad("validation error: limit must be between 1 and 100"))?,
  };
  let offset = match q.get("nextToken").filter(|s| !s.is_empty()) {
    None => 0,
    Some(s) => s.parse::<usize>().map_err(|_| E2bError::bad("Invalid next token"))?,
  };
  let mut all: Vec<Arc<E2bBox>> = state
    .e2b
    .boxes
    .lock()
    .unwrap()
    .values()
    .filter(|b| b.entry.tenant.name == tenant.name)
    .filter(|b| states.iter().any(|s| s == state_word(b)))
    .filter(|b| filter.iter().all(|(k, v)| b.metadata.get(k) == Some(v)))
    .filter(|b| template.is_none_or(|t| *t == b.template))
    .filter(|b| started_after.is_none_or(|t| b.entry.created_ms > t))
    .cloned()
    .collect();
  let asc = q.get("order").is_some_and(|o| o == "asc");
  all.sort_by(|a, b| a.entry.created_ms.total_cmp(&b.entry.created_ms).then_with(|| a.id.cmp(&b.id)));
  if !asc {
    all.reverse();
  }
  let running = all.iter().filter(|b| state_word(b) == "running").count();
  let page: Vec<Value> = all.iter().skip(offset).take(limit).map(|b| listed_json(b)).collect();
  let mut res = Json(page).into_response();
  if offset + limit < all.len() {
    res.headers_mut().insert("x-next-token", HeaderValue::from(offset + limit));
  }
  if states.iter().any(|s| s == "running") {
    res.headers_mut().insert("x-total-running", HeaderValue::from(running));
  }
  Ok(res)
}

async fn info(State(state): S, headers: HeaderMap, Path(id): Path<String>) -> R {
  let tenant = tenant(&state, &headers)?;
  let b = sandbox_of(&state, &tenant, &id)?;
  Ok(Json(detail_json(&b)).into_response())
}

/// `DELETE /sandboxes/{id}` → 204; the sandbox is destroyed and forgotten.
async fn kill(State(state): S, headers: HeaderMap, Path(id): Path<String>) -> R {
  let tenant = tenant(&state, &headers)?;
  let b = sandbox_of(&state, &tenant, &id)?;
  let st = state.clone();
  let key = b.entry.id.clone();
  let removed = state.work(async move { st.remove(&key).await }).await?;
  // remove() forgets the box; a sandbox already going (its lifetime ended) is forgotten here too
  state.e2b.boxes.lock().unwrap().remove(&b.id);
  if !removed {
    return Err(not_found(&b.id));
  }
  Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// lifetime

/// Moves the end of `b`'s lifetime to now + `d`. False when it has already ended.
fn reschedule(state: &AppState, b: &E2bBox, d: Duration) -> bool {
  state.reschedule(&b.entry.id, d)
}

/// As [`reschedule`], but only ever later (connect, refreshes).
fn extend(state: &AppState, b: &E2bBox, d: Duration) -> bool {
  if now_ms() + d.as_secs_f64() * 1000.0 <= b.entry.expires_ms() {
    return true;
  }
  reschedule(state, b, d)
}

/// `POST /sandboxes/{id}/timeout` `{"timeout": s}` → 204: the sandbox ends s seconds from now
/// (sooner or later than before). A paused sandbox is 404, as on E2B.
async fn set_timeout(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let b = sandbox_of(&state, &tenant, &id)?;
  if b.paused.load(Ordering::SeqCst) {
    return Err(not_found(&b.id));
  }
  let t = timeout_field(&o, "timeout", state.opts.max_timeout)?.ok_or_else(|| E2bError::bad("validation error: timeout is missing"))?;
  if !reschedule(&state, &b, t) {
    return Err(not_found(&b.id));
  }
  Ok(no_content())
}

/// `POST /sandboxes/{id}/refreshes` `{"duration"?: s}` → 204: at least s (default and minimum
/// 15) seconds from now.
async fn refresh(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let b = sandbox_of(&state, &tenant, &id)?;
  if b.paused.load(Ordering::SeqCst) {
    return Err(not_found(&b.id));
  }
  let d = timeout_field(&o, "duration", state.opts.max_timeout)?.unwrap_or(V1_DEFAULT_TIMEOUT).max(V1_DEFAULT_TIMEOUT.min(state.opts.max_timeout));
  if !extend(&state, &b, d) {
    return Err(not_found(&b.id));
  }
  Ok(no_content())
}

/// Pause, connect and resume of one sandbox take turns.
static LIFECYCLE: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

/// Runs `f` with `id`'s lifecycle lock; the lock is forgotten when nobody else waits for it.
async fn one_at_a_time<T>(id: &str, f: impl std::future::Future<Output = T>) -> T {
  let lock = LIFECYCLE.lock().unwrap().entry(id.to_string()).or_default().clone();
  let r = {
    let _held = lock.lock().await;
    f.await
  };
  let mut locks = LIFECYCLE.lock().unwrap();
  // ours and the map's: nobody else holds or waits for it
  if Arc::strong_count(&lock) == 2 {
    locks.remove(id);
  }
  r
}

/// `POST /sandboxes/{id}/pause` → 204; 409 when already paused. The sandbox is stopped: its
/// processes are killed and its files kept (E2B keeps its memory too), and envd answers 502 until
/// it is connected again. Its lifetime runs on.
async fn pause(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  body_of(&headers, body, &tenant).await?;
  let b = sandbox_of(&state, &tenant, &id)?;
  let st = state.clone();
  one_at_a_time(&b.id.clone(), async move {
    if b.paused.swap(true, Ordering::SeqCst) {
      return Err(E2bError(StatusCode::CONFLICT, format!("Error pausing sandbox - sandbox '{}' is already paused", b.id)));
    }
    let sb = b.entry.sandbox.clone();
    if let Err(e) = st.work(async move { sb.stop().await.map_err(ApiError::from) }).await {
      b.paused.store(false, Ordering::SeqCst);
      return Err(E2bError(e.status, format!("Error pausing sandbox: {}", e.message)));
    }
    Ok(no_content())
  })
  .await
}

/// Starts a paused sandbox again with a lifetime of `t` from now (201 `Sandbox`).
async fn wake(state: &Arc<AppState>, b: &Arc<E2bBox>, t: Duration) -> R {
  let sb = b.entry.sandbox.clone();
  state
    .work(async move { sb.start(None).await.map_err(ApiError::from) })
    .await
    .map_err(|e| E2bError(e.status, format!("Error resuming sandbox: {}", e.message)))?;
  if !reschedule(state, b, t) {
    return Err(not_found(&b.id));
  }
  b.paused.store(false, Ordering::SeqCst);
  Ok((StatusCode::CREATED, Json(sandbox_json(b))).into_response())
}

/// `POST /sandboxes/{id}/connect`, `POST /v2/sandboxes/{id}/connect` `{"timeout"?: s}`: a running
/// sandbox → 200 `Sandbox`, its lifetime extended to s from now if that is later; a paused one is
/// started again → 201 `Sandbox`, ending s from now.
async fn connect(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let t = timeout_field(&o, "timeout", state.opts.max_timeout)?.unwrap_or(V2_DEFAULT_TIMEOUT.min(state.opts.max_timeout));
  let b = sandbox_of(&state, &tenant, &id)?;
  one_at_a_time(&b.id.clone(), async {
    if b.paused.load(Ordering::SeqCst) {
      return wake(&state, &b, t).await;
    }
    if !extend(&state, &b, t) {
      return Err(not_found(&b.id));
    }
    Ok(Json(sandbox_json(&b)).into_response())
  })
  .await
}

/// `POST /sandboxes/{id}/resume` `{"timeout"?: s, "autoPause"?}` (deprecated by connect) → 201
/// `Sandbox`; 409 when it is running.
async fn resume(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let t = timeout_field(&o, "timeout", state.opts.max_timeout)?.unwrap_or(V1_DEFAULT_TIMEOUT.min(state.opts.max_timeout));
  opt_bool(&o, "autoPause")?;
  let b = sandbox_of(&state, &tenant, &id)?;
  one_at_a_time(&b.id.clone(), async {
    if !b.paused.load(Ordering::SeqCst) {
      return Err(E2bError(StatusCode::CONFLICT, format!("Sandbox {} is already running", b.id)));
    }
    wake(&state, &b, t).await
  })
  .await
}

// ---------------------------------------------------------------------------------------------
// metrics, network

/// One `SandboxMetric` of usage `s` against the sandbox's limits, at `now_ms`.
pub fn metric_json(b: &E2bBox, s: &crate::core::types::Stats, now_ms: f64) -> Value {
  const MIB: f64 = 1024.0 * 1024.0;
  let (cpus, mem, disk) = limits_of(b);
  json!({
    "timestamp": iso(now_ms),
    "timestampUnix": (now_ms / 1000.0).floor() as i64,
    "cpuCount": cpus,
    "cpuUsedPct": s.cpu_percent,
    "memUsed": (s.memory_usage_mb * MIB).round() as u64,
    "memTotal": mem * 1024 * 1024,
    "memCache": 0,
    "diskUsed": (s.disk_usage_mb * MIB).round() as u64,
    "diskTotal": disk * 1024 * 1024,
  })
}

/// `GET /sandboxes/{id}/metrics?start=&end=` → a sample taken now (within `start`..`end`, unix
/// seconds), none for a paused sandbox. The server keeps no history.
async fn metrics(State(state): S, headers: HeaderMap, Path(id): Path<String>, uri: Uri) -> R {
  let tenant = tenant(&state, &headers)?;
  let b = sandbox_of(&state, &tenant, &id)?;
  let q = query(&uri);
  let bound = |k: &str| -> Result<Option<i64>, E2bError> {
    match q.get(k).filter(|s| !s.is_empty()) {
      None => Ok(None),
      Some(s) => s.parse::<i64>().map(Some).map_err(|_| E2bError::bad(format!("validation error: {k} must be unix seconds"))),
    }
  };
  let (start, end) = (bound("start")?, bound("end")?);
  if b.paused.load(Ordering::SeqCst) || b.entry.sandbox.state() != crate::core::types::State::Running {
    return Ok(Json(json!([])).into_response());
  }
  let s = b.entry.sandbox.stats().await?;
  let now = now_ms();
  let t = (now / 1000.0).floor() as i64;
  let sample = if start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e) { vec![metric_json(&b, &s, now)] } else { vec![] };
  Ok(Json(sample).into_response())
}

/// `PUT /sandboxes/{id}/network` `{allowOut?, denyOut?, allow_internet_access?}` → 204: the
/// egress rules replaced (lists left out are cleared; `allow_internet_access: false` adds
/// `0.0.0.0/0` to denyOut). The same rule as at create: only on a service whose sandboxes have
/// Docker's bridge and no rules of the operator's (403), and only for a sandbox created with
/// `network` rules (the library's answer otherwise).
async fn update_network(State(state): S, headers: HeaderMap, Path(id): Path<String>, body: Body) -> R {
  let tenant = tenant(&state, &headers)?;
  let o = body_of(&headers, body, &tenant).await?;
  let b = sandbox_of(&state, &tenant, &id)?;
  let internet = opt_bool(&o, "allow_internet_access")?;
  let mut p = network_lists(&o, "network")?;
  if internet == Some(false) && !p.deny_out.iter().any(|d| d == "0.0.0.0/0") {
    p.deny_out.push("0.0.0.0/0".into());
  }
  crate::server::v1::sanitize(&json!({ "network": p.to_json() }), state.manager.defaults())?;
  if b.paused.load(Ordering::SeqCst) {
    return Err(E2bError(StatusCode::CONFLICT, format!("Sandbox \"{}\" is not running (state: paused)", b.id)));
  }
  let sb = b.entry.sandbox.clone();
  let policy = p.clone();
  state.work(async move { sb.update_network(policy).await.map_err(ApiError::from) }).await?;
  let given = NetworkPolicy { allow_out: p.allow_out, deny_out: p.deny_out };
  *b.network.lock().unwrap() = json!({ "allowInternetAccess": internet, "network": given.to_json() });
  Ok(no_content())
}

#[cfg(test)]
mod tests;
