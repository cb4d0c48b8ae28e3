//! `/v1`: the library's sandbox at the provider level, so that a client-side `AnySandbox` (the
//! `remote` provider, `providers::remote`) runs on the server's sandboxes. Same tenants, quotas,
//! error shape and tracked work as the seed's routes; documented in `openapi.json` (served at
//! `GET /v1/openapi.json`), which a test checks against [`table`].
//!
//! - sandboxes: create (a SandboxConfig, which the server bounds by its own: see [`sanitize`]),
//!   describe, list, start, stop, reset, destroy;
//! - processes: `POST .../processes` starts one and answers with its NDJSON stream
//!   (`providers::remote::wire`): `started`, output chunks, `exit`. A client that drops the stream
//!   kills a foreground process; a background one runs on, reached by its handle (stdin,
//!   close-stdin, kill);
//! - files (raw bytes), listings, stats, health, processes, kill-all;
//! - sessions (getOrCreateSession per user and thread, per tenant), so that workers can share them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::core::config::{self, NetworkMode};
use crate::core::error::ErrorCode;
use crate::core::logs::iso;
use crate::core::process::{OutStream, OutputSink, Spawned};
use crate::core::types::{ExecOptions, FileOp};
use crate::providers::remote::wire::{self, Event, Exit};
use crate::server::audit::{self, Exited};
use crate::server::auth::Tenant;
use crate::server::body::{self, read_object, Object};
use crate::server::error::ApiError;
use crate::server::metrics::Api;
use crate::server::state::{AppState, Entry};
use crate::server::{Caller, SandboxId};

type S = State<Arc<AppState>>;
type R = Result<Response, ApiError>;

/// The OpenAPI document of `/v1` (paths relative to the server root).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route of `/v1`: method, path (under `/v1`) and handler. [`routes`] is made from it and
/// the OpenAPI test reads it.
pub fn table() -> Vec<(&'static str, &'static str, MethodRouter<Arc<AppState>>)> {
  vec![
    ("GET", "/openapi.json", get(openapi)),
    ("POST", "/sandboxes", post(create)),
    ("GET", "/sandboxes", get(list)),
    ("GET", "/sandboxes/{id}", get(describe)),
    ("DELETE", "/sandboxes/{id}", delete(destroy)),
    ("POST", "/sandboxes/{id}/start", post(start)),
    ("POST", "/sandboxes/{id}/stop", post(stop)),
    ("POST", "/sandboxes/{id}/reset", post(reset)),
    ("PUT", "/sandboxes/{id}/network", put(update_network)),
    ("POST", "/sandboxes/{id}/processes", post(spawn)),
    ("GET", "/sandboxes/{id}/processes", get(processes)),
    ("DELETE", "/sandboxes/{id}/processes", delete(kill_all)),
    ("POST", "/sandboxes/{id}/processes/{handle}/stdin", post(stdin)),
    ("POST", "/sandboxes/{id}/processes/{handle}/close-stdin", post(close_stdin)),
    ("POST", "/sandboxes/{id}/processes/{handle}/kill", post(kill)),
    ("PUT", "/sandboxes/{id}/files", put(write_file)),
    ("GET", "/sandboxes/{id}/files", get(read_file)),
    ("DELETE", "/sandboxes/{id}/files", delete(delete_file)),
    ("GET", "/sandboxes/{id}/files/list", get(list_files)),
    ("GET", "/sandboxes/{id}/stats", get(stats)),
    ("GET", "/sandboxes/{id}/health", get(health)),
    ("POST", "/sessions", post(open_session)),
    ("GET", "/sessions", get(list_sessions)),
    ("DELETE", "/sessions/{thread}", delete(close_session)),
  ]
}

pub fn routes() -> Router<Arc<AppState>> {
  table().into_iter().fold(Router::new(), |r, (_, path, mr)| r.route(path, mr))
}

/// A process started through `/v1` that has not ended yet.
struct Proc {
  sandbox: String,
  spawned: Spawned,
}

/// `/v1`'s state in the server: running processes by handle.
#[derive(Default)]
pub struct V1State {
  procs: Mutex<HashMap<String, Proc>>,
  next: AtomicU64,
}

/// Most bytes a file upload may have, whatever the tenant's body limit says (the file is held in
/// memory on its way).
const MAX_UPLOAD: usize = 256 * 1024 * 1024;
const MAX_ARGS: usize = 4096;

async fn openapi() -> Response {
  ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

// ---------------------------------------------------------------------------------------------
// helpers

/// The query of a URI, percent-decoded (`+` is a space).
pub fn query(uri: &Uri) -> HashMap<String, String> {
  fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
      match b[i] {
        b'+' => out.push(b' '),
        b'%' if i + 2 < b.len() => {
          match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
            Ok(v) => {
              out.push(v);
              i += 2;
            }
            Err(_) => out.push(b'%'),
          }
        }
        c => out.push(c),
      }
      i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
  }
  uri
    .query()
    .unwrap_or("")
    .split('&')
    .filter(|p| !p.is_empty())
    .map(|p| {
      let (k, v) = p.split_once('=').unwrap_or((p, ""));
      (decode(k), decode(v))
    })
    .collect()
}

fn flag(q: &HashMap<String, String>, k: &str) -> bool {
  q.get(k).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

fn path_param(q: &HashMap<String, String>) -> Result<String, ApiError> {
  match q.get("path") {
    Some(p) if !p.is_empty() && !p.contains('\0') => Ok(p.clone()),
    _ => Err(ApiError::invalid("the query parameter path is missing (e.g. ?path=/workspace/file.txt)")),
  }
}

fn running_guard(e: &Arc<Entry>) -> RunningGuard {
  e.running.fetch_add(1, Ordering::SeqCst);
  RunningGuard(e.clone())
}

struct RunningGuard(Arc<Entry>);

impl Drop for RunningGuard {
  fn drop(&mut self) {
    self.0.running.fetch_sub(1, Ordering::SeqCst);
  }
}

/// The sandbox id and process handle of a process route.
pub struct ProcPath(pub String, pub String);

impl<St: Send + Sync> FromRequestParts<St> for ProcPath {
  type Rejection = ApiError;

  async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
    match Path::<(String, String)>::from_request_parts(parts, state).await {
      Ok(Path((id, handle))) => Ok(ProcPath(id, handle)),
      Err(e) => Err(ApiError::invalid(format!("the path is not valid: {e}"))),
    }
  }
}

fn ok() -> Response {
  Json(json!({ "ok": true })).into_response()
}

fn describe_json(e: &Entry) -> Value {
  let c = e.sandbox.config();
  json!({
    "id": e.id,
    "state": e.sandbox.state().as_str(),
    "status": e.status(),
    "engine": e.sandbox.engine_name(),
    "image": c.image,
    "template": c.template,
    "workdir": c.workdir,
    "limits": config::limits_to_json(&c.limits),
    "networkMode": c.network_mode.as_str(),
    "network": e.sandbox.network_status().map(|n| json!({
      "allowOut": n.policy.allow_out,
      "denyOut": n.policy.deny_out,
      "gateway": n.gateway,
      "allowed": n.allowed,
      "denied": n.denied,
    })),
    "createdAt": iso(e.created_ms),
    "expiresAt": iso(e.expires_ms()),
  })
}

// ---------------------------------------------------------------------------------------------
// the configuration a tenant may ask for

/// Keys the server decides alone: a tenant asking for them is refused.
const SERVER_ONLY: [&str; 7] = ["provider", "docker", "e2b", "remote", "fallbackProviders", "templates", "autoCleanup"];
/// Keys a tenant may give; others are dropped.
const TENANT_KEYS: [&str; 12] =
  ["image", "template", "limits", "networkMode", "network", "env", "workdir", "gpu", "metadata", "name", "installPackages", "startupScript"];

fn strictness(m: NetworkMode) -> u8 {
  match m {
    NetworkMode::None => 0,
    NetworkMode::Isolated => 1,
    NetworkMode::Bridge => 2,
  }
}

/// The createSandbox layer the server uses for a tenant's `config`: what the server decides alone
/// is refused (PERMISSION_DENIED: Docker options, the provider, templates, a command policy over
/// the server's), the image must be the server's default or one of its templates', each limit is
/// cut to the server's own (`server` is the server manager's defaults), the network is the
/// stricter of the two, and a GPU only where the server gives one.
pub fn sanitize(given: &Value, server: &Value) -> Result<Value, ApiError> {
  let o = match given {
    Value::Null => return Ok(json!({})),
    Value::Object(o) => o,
    _ => return Err(ApiError::coded(ErrorCode::InvalidConfig, "config must be an object (a SandboxConfig)")),
  };
  let srv = config::resolve(server).map_err(ApiError::from)?;
  for k in SERVER_ONLY {
    if o.get(k).is_some_and(|v| !v.is_null()) {
      return Err(ApiError::coded(ErrorCode::PermissionDenied, format!("{k} is decided by the sandbox service, not by its clients; leave it out of the config")));
    }
  }
  if o.get("commandPolicy").is_some_and(|v| !v.is_null()) && srv.command_policy.is_some() {
    return Err(ApiError::coded(
      ErrorCode::PermissionDenied,
      "commandPolicy: the sandbox service has its own command policy, which a client cannot replace; enforce yours on the client",
    ));
  }
  let mut out: Map<String, Value> = o.iter().filter(|(k, v)| (TENANT_KEYS.contains(&k.as_str()) || k.as_str() == "commandPolicy") && !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
  if let Some(img) = out.get("image") {
    let img = img.as_str().ok_or_else(|| ApiError::coded(ErrorCode::InvalidConfig, "image must be a string"))?.to_string();
    let templates = server.get("templates");
    let mut allowed = vec![srv.image.clone()];
    let mut names: Vec<String> = ["base", "python", "node", "nodejs", "go"].iter().map(|s| s.to_string()).collect();
    if let Some(Value::Object(m)) = templates {
      names.extend(m.keys().cloned());
    }
    for n in names {
      if let Ok(t) = crate::core::templates::lookup(&n, templates) {
        allowed.push(t.image);
      }
    }
    if !allowed.contains(&img) {
      allowed.sort();
      allowed.dedup();
      return Err(ApiError::coded(
        ErrorCode::PermissionDenied,
        format!("image {img:?} is not offered by this sandbox service; use a template (template: 'python', ...) or one of: {}", allowed.join(", ")),
      ));
    }
  }
  // limits: each at most the server's
  let sl = &srv.limits;
  if let Some(l) = out.get_mut("limits") {
    let m = l.as_object_mut().ok_or_else(|| ApiError::coded(ErrorCode::InvalidConfig, "limits must be an object"))?;
    let cap = |m: &mut Map<String, Value>, k: &str, max: Option<f64>| {
      if let (Some(max), Some(v)) = (max, m.get(k).and_then(Value::as_f64)) {
        if v > max {
          m.insert(k.to_string(), json!(max));
        }
      } else if let (Some(max), None) = (max, m.get(k)) {
        m.insert(k.to_string(), json!(max));
      }
    };
    cap(m, "memoryMB", Some(sl.memory_mb));
    cap(m, "cpuCores", Some(sl.cpu_cores));
    cap(m, "diskMB", Some(sl.disk_mb));
    cap(m, "timeoutSeconds", Some(sl.timeout_seconds));
    cap(m, "pidsLimit", Some(sl.pids_limit as f64));
    cap(m, "maxFileSizeMB", sl.max_file_size_mb);
    cap(m, "maxTotalFiles", sl.max_total_files.map(|n| n as f64));
    cap(m, "maxWorkspaceSizeMB", sl.max_workspace_size_mb);
    m.remove("networkMbps");
  }
  // egress rules open a sandbox as far as they allow: only where the server's own sandboxes have
  // Docker's bridge and no rules of the server's (which a tenant cannot replace)
  if out.contains_key("network") {
    if srv.network.is_some() {
      return Err(ApiError::coded(
        ErrorCode::PermissionDenied,
        "network: the sandbox service has its own egress rules, which a client cannot replace; leave network out",
      ));
    }
    if srv.network_mode != NetworkMode::Bridge {
      return Err(ApiError::coded(
        ErrorCode::PermissionDenied,
        format!(
          "network: this sandbox service's sandboxes have networkMode '{}', and egress rules would open them; leave network out, or ask the operator for networkMode 'bridge'",
          srv.network_mode.as_str()
        ),
      ));
    }
  }
  if let Some(v) = out.get("networkMode") {
    let asked = match v.as_str() {
      Some("none") => NetworkMode::None,
      Some("isolated") => NetworkMode::Isolated,
      Some("bridge") => NetworkMode::Bridge,
      // behind the gateway with the tenant's rules (or none: nothing out); on a server without
      // bridge egress, the server's mode
      Some("restricted") if srv.network_mode == NetworkMode::Bridge && srv.network.is_none() => NetworkMode::Bridge,
      Some("restricted") => srv.network_mode,
      _ => return Err(ApiError::coded(ErrorCode::InvalidConfig, format!("networkMode must be 'none', 'isolated', 'bridge' or 'restricted', got {v}"))),
    };
    let mode = if strictness(asked) <= strictness(srv.network_mode) { asked } else { srv.network_mode };
    let keep_restricted = v.as_str() == Some("restricted") && mode == NetworkMode::Bridge;
    out.insert("networkMode".into(), json!(if keep_restricted { "restricted" } else { mode.as_str() }));
  }
  if out.get("gpu").and_then(Value::as_bool) == Some(true) && !srv.gpu {
    return Err(ApiError::coded(ErrorCode::PermissionDenied, "gpu: this sandbox service gives no GPU"));
  }
  Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// sandboxes

/// `POST /v1/sandboxes` `{ config?, timeout?, start? }` → 201 with the sandbox (started unless
/// `start: false`). `timeout`: its lifetime in seconds.
async fn create(State(state): S, Caller(tenant): Caller, headers: HeaderMap, body: Body) -> R {
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let layer = sanitize(o.get("config").unwrap_or(&Value::Null), state.manager.defaults())?;
  let max = state.opts.max_timeout.as_secs_f64();
  let timeout = body::opt_seconds(&o, "timeout", max)?.map_or(state.opts.default_timeout, Duration::from_secs_f64);
  let start = body::opt_bool(&o, "start")?.unwrap_or(true);
  let slot = tenant.sandboxes.try_acquire().ok_or_else(|| {
    ApiError::quota(format!("this API key holds {} sandboxes, its limit; destroy one (GET /v1/sandboxes lists them)", tenant.sandboxes.max()))
  })?;
  let st = state.clone();
  let entry = state
    .work(async move {
      let sb = st.manager.create(Some(&layer))?;
      if start {
        if let Err(e) = sb.start(None).await {
          let _ = st.manager.destroy(sb.id()).await;
          return Err(ApiError::from(e));
        }
      }
      let template = sb.config().template.unwrap_or_else(|| "-".into());
      let entry = st.add_entry(tenant, sb, "v1".into(), template, timeout, slot);
      st.announce(&entry).await?;
      Ok(entry)
    })
    .await?;
  Ok((StatusCode::CREATED, Json(describe_json(&entry))).into_response())
}

async fn list(State(state): S, Caller(tenant): Caller) -> R {
  let items: Vec<Value> = state.entries_of(&tenant).iter().map(|e| describe_json(e)).collect();
  Ok(Json(json!({ "sandboxes": items })).into_response())
}

async fn describe(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  let e = state.entry(&tenant, &id)?;
  Ok(Json(describe_json(&e)).into_response())
}

async fn destroy(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  state.entry(&tenant, &id)?;
  let st = state.clone();
  let key = id.clone();
  let removed = state.work(async move { st.remove(&key).await }).await?;
  if !removed {
    return Err(ApiError::not_found(&id));
  }
  Ok(Json(json!({ "id": id, "destroyed": true })).into_response())
}

async fn lifecycle(state: Arc<AppState>, tenant: Arc<Tenant>, id: String, op: &'static str) -> R {
  let e = state.entry(&tenant, &id)?;
  let sb = e.sandbox.clone();
  state
    .work(async move {
      match op {
        "start" => sb.start(None).await,
        "stop" => sb.stop().await,
        _ => sb.reset().await,
      }
      .map_err(ApiError::from)
    })
    .await?;
  Ok(Json(json!({ "id": id, "state": e.sandbox.state().as_str() })).into_response())
}

async fn start(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  lifecycle(state, tenant, id, "start").await
}

async fn stop(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  lifecycle(state, tenant, id, "stop").await
}

async fn reset(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  lifecycle(state, tenant, id, "reset").await
}

/// `PUT /v1/sandboxes/{id}/network` `{ allowOut?, denyOut? }` (E2B's update: omitted lists are
/// cleared) → the sandbox described. The same rule as at create: only on a service whose
/// sandboxes have bridge egress and no rules of the operator's.
async fn update_network(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, headers: HeaderMap, body: Body) -> R {
  let e = state.entry(&tenant, &id)?;
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  sanitize(&json!({ "network": Value::Object(o.clone()) }), state.manager.defaults())?;
  let list = |k: &str| -> Result<Vec<String>, ApiError> {
    match o.get(k) {
      None | Some(Value::Null) => Ok(Vec::new()),
      Some(Value::Array(a)) => a
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| ApiError::coded(ErrorCode::InvalidConfig, format!("{k} must be an array of strings"))))
        .collect(),
      Some(_) => Err(ApiError::coded(ErrorCode::InvalidConfig, format!("{k} must be an array of strings"))),
    }
  };
  let policy = config::NetworkPolicy { allow_out: list("allowOut")?, deny_out: list("denyOut")? };
  let sb = e.sandbox.clone();
  state.work(async move { sb.update_network(policy).await.map_err(ApiError::from) }).await?;
  Ok(Json(describe_json(&e)).into_response())
}

// ---------------------------------------------------------------------------------------------
// processes

fn b64_decode(s: &str, what: &str) -> Result<Vec<u8>, ApiError> {
  use base64::Engine;
  base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| ApiError::invalid(format!("{what} must be base64 ({e})")))
}

/// The `options` of a spawn request as `ExecOptions` (the output cap at most the server's).
pub fn exec_options(o: &Object, server_max_output: usize) -> Result<ExecOptions, ApiError> {
  let opts = match o.get("options") {
    None | Some(Value::Null) => Map::new(),
    Some(Value::Object(m)) => m.clone(),
    Some(_) => return Err(ApiError::invalid("options must be an object")),
  };
  let timeout = match opts.get("timeout") {
    None | Some(Value::Null) => None,
    Some(v) => Some(v.as_f64().filter(|t| t.is_finite() && *t > 0.0).ok_or_else(|| ApiError::invalid("options.timeout must be a positive number of seconds"))?),
  };
  let env = match opts.get("env") {
    None | Some(Value::Null) => Default::default(),
    Some(Value::Object(m)) => m
      .iter()
      .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| ApiError::invalid(format!("options.env[{k:?}] must be a string"))))
      .collect::<Result<_, _>>()?,
    Some(_) => return Err(ApiError::invalid("options.env must be an object of strings")),
  };
  let workdir = match opts.get("workdir") {
    None | Some(Value::Null) => None,
    Some(Value::String(s)) => Some(s.clone()),
    Some(_) => return Err(ApiError::invalid("options.workdir must be a string")),
  };
  let max_output = match opts.get("maxOutputBytes") {
    None | Some(Value::Null) => server_max_output,
    Some(v) => (v.as_f64().filter(|n| n.is_finite() && *n >= 0.0).ok_or_else(|| ApiError::invalid("options.maxOutputBytes must be a number"))? as usize).min(server_max_output),
  };
  let stdin = match opts.get("stdin") {
    None | Some(Value::Null) => None,
    Some(Value::String(s)) => Some(b64_decode(s, "options.stdin")?),
    Some(_) => return Err(ApiError::invalid("options.stdin must be a base64 string")),
  };
  Ok(ExecOptions { timeout, env, workdir, max_output_bytes: Some(max_output), stdin, stream_only: false })
}

/// Kills a foreground process when its stream goes (the client dropped the connection).
struct KillOnDrop(Option<Spawned>);

impl Drop for KillOnDrop {
  fn drop(&mut self) {
    if let Some(p) = &self.0 {
      if !p.is_done() {
        let _ = p.signal(9);
      }
    }
  }
}

/// `POST /v1/sandboxes/{id}/processes` `{ command, args?, options?, background?, openStdin? }` →
/// the process's NDJSON stream (see `providers::remote::wire`). Errors before the process runs
/// are ordinary JSON errors.
async fn spawn(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, headers: HeaderMap, body: Body) -> R {
  let entry = state.entry(&tenant, &id)?;
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let command = match o.get("command") {
    Some(Value::String(s)) if !s.is_empty() => s.clone(),
    _ => return Err(ApiError::invalid("command must be a non-empty string")),
  };
  let args: Vec<String> = match o.get("args") {
    None | Some(Value::Null) => Vec::new(),
    Some(Value::Array(a)) if a.len() <= MAX_ARGS => {
      a.iter().enumerate().map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| ApiError::invalid(format!("args[{i}] must be a string")))).collect::<Result<_, _>>()?
    }
    Some(_) => return Err(ApiError::invalid(format!("args must be an array of at most {MAX_ARGS} strings"))),
  };
  let opts = exec_options(&o, state.opts.max_output_bytes)?;
  let background = body::opt_bool(&o, "background")?.unwrap_or(false);
  let open_stdin = body::opt_bool(&o, "openStdin")?.unwrap_or(false);
  if state.shutting_down.load(Ordering::SeqCst) {
    return Err(ApiError::shutting_down());
  }
  let permit = if background {
    tenant.background.try_acquire().ok_or_else(|| {
      ApiError::quota(format!(
        "this API key already runs {} background processes, its limit (maxBackgroundProcesses); kill one (DELETE /v1/sandboxes/{{id}}/processes kills a sandbox's)",
        tenant.background.max()
      ))
    })?
  } else {
    tenant.executions.try_acquire().ok_or_else(|| {
      ApiError::quota(format!("this API key already runs {} executions at once, its limit; wait for one to finish", tenant.executions.max()))
    })?
  };
  let work = state.work.enter();
  let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
  // the engine caps each stream at max_output; counted here too, so a flood never queues more
  let cap = opts.max_output_bytes.unwrap_or(state.opts.max_output_bytes);
  let sent = Arc::new(Mutex::new((0usize, 0usize)));
  let sink: OutputSink = {
    let (tx, sent) = (tx.clone(), sent.clone());
    Arc::new(move |s: OutStream, d: &[u8]| {
      let mut n = sent.lock().unwrap();
      let used = if s == OutStream::Stdout { &mut n.0 } else { &mut n.1 };
      let room = cap.saturating_sub(*used);
      let kept = &d[..d.len().min(room)];
      *used += kept.len();
      if !kept.is_empty() {
        let _ = tx.send(Bytes::from(wire::encode(&Event::Output(s, kept.to_vec()))));
      }
    })
  };
  entry.executions.fetch_add(1, Ordering::SeqCst);
  // a background process does not keep the sandbox busy
  let busy = (!background).then(|| running_guard(&entry));
  let argv: Vec<String> = std::iter::once(command.clone()).chain(args.iter().cloned()).collect();
  let (who, sb, env, workdir) = (tenant.name.clone(), entry.sandbox.clone(), opts.env.clone(), opts.workdir.clone());
  let audited = move |st: &AppState, ran: Result<Exited, &str>| {
    audit::command(st, Api::V1, &who, &sb, argv, &env, workdir.as_deref(), background, ran);
  };
  let p = match entry.sandbox.spawn(&command, &args, &opts, background, open_stdin, Some(sink)).await {
    Ok(p) => p,
    Err(e) => {
      audited(&state, Err(e.code_str()));
      return Err(e.into());
    }
  };
  let handle = format!("p-{}", state.v1.next.fetch_add(1, Ordering::SeqCst) + 1);
  state.v1.procs.lock().unwrap().insert(handle.clone(), Proc { sandbox: id.clone(), spawned: p.clone() });
  let _ = tx.send(Bytes::from(wire::encode(&Event::Started { pid: p.pid, handle: handle.clone() })));
  let (st, waiter, sb) = (state.clone(), p.clone(), entry.sandbox.clone());
  let mut cancel = state.cancel.subscribe();
  tokio::spawn(async move {
    let _work = work;
    let _permit = permit;
    let _busy = busy;
    let cancelled = async move {
      let _ = cancel.wait_for(|c| *c).await;
    };
    let r = tokio::select! {
      r = waiter.wait() => r,
      _ = cancelled => {
        let _ = waiter.signal(9);
        waiter.wait().await
      }
    };
    audited(&st, r.as_ref().map(Exited::from).map_err(|e| e.code_str()));
    let ev = match r {
      Ok(out) => Event::Exit(Exit {
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        truncated: out.truncated,
        signal: out.signal,
        duration_ms: out.duration.as_secs_f64() * 1000.0,
        max_rss_kb: out.max_rss_kb,
      }),
      Err(e) => {
        // the stream's status (200) is sent already: counted here
        st.metrics.error(e.code_str());
        Event::Error { code: e.code_str().to_string(), message: st.redactor.redact(&e.message) }
      }
    };
    let _ = tx.send(Bytes::from(wire::encode(&ev)));
    st.v1.procs.lock().unwrap().remove(&handle);
    if background {
      sb.background_ended(waiter.pid);
    }
  });
  let guard = KillOnDrop((!background).then_some(p));
  let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), (rx, guard))) });
  Ok(([(header::CONTENT_TYPE, wire::NDJSON), (header::CACHE_CONTROL, "no-store")], Body::from_stream(stream)).into_response())
}

fn proc_of(state: &AppState, tenant: &Tenant, id: &str, handle: &str) -> Result<Spawned, ApiError> {
  state.entry(tenant, id)?;
  let procs = state.v1.procs.lock().unwrap();
  match procs.get(handle) {
    Some(p) if p.sandbox == id => Ok(p.spawned.clone()),
    _ => Err(ApiError::coded(ErrorCode::ExecutionError, format!("no running process {handle:?} in sandbox {id:?}: it has already exited"))),
  }
}

/// `POST .../processes/{handle}/stdin`: the body's bytes go to the process's stdin.
async fn stdin(State(state): S, Caller(tenant): Caller, ProcPath(id, handle): ProcPath, headers: HeaderMap, body: Body) -> R {
  let p = proc_of(&state, &tenant, &id, &handle)?;
  let data = body::read_bytes(&headers, body, tenant.limits.max_body_bytes).await?;
  p.stdin(data.to_vec())?;
  Ok(ok())
}

async fn close_stdin(State(state): S, Caller(tenant): Caller, ProcPath(id, handle): ProcPath) -> R {
  proc_of(&state, &tenant, &id, &handle)?.close_stdin()?;
  Ok(ok())
}

/// `POST .../processes/{handle}/kill` `{ signal? }` (a name or number; SIGTERM by default).
async fn kill(State(state): S, Caller(tenant): Caller, ProcPath(id, handle): ProcPath, headers: HeaderMap, body: Body) -> R {
  let p = proc_of(&state, &tenant, &id, &handle)?;
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let sig = match o.get("signal") {
    None | Some(Value::Null) => 15,
    Some(Value::Number(n)) => n.as_i64().filter(|n| (1..=64).contains(n)).map(|n| n as i32).ok_or_else(|| ApiError::invalid("signal must be 1..64"))?,
    Some(Value::String(s)) => crate::core::process::signal_number(s).ok_or_else(|| ApiError::invalid(format!("unknown signal {s:?}")))?,
    Some(_) => return Err(ApiError::invalid("signal must be a name or a number")),
  };
  p.signal(sig)?;
  Ok(ok())
}

async fn processes(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  let e = state.entry(&tenant, &id)?;
  let list = e.sandbox.processes().await?;
  let items: Vec<Value> = list
    .iter()
    .map(|p| json!({ "pid": p.pid, "ppid": p.ppid, "state": p.state, "cmdline": p.cmdline, "rssKb": p.rss_kb, "background": e.sandbox.is_background(p.pid) }))
    .collect();
  Ok(Json(json!({ "processes": items })).into_response())
}

async fn kill_all(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  let e = state.entry(&tenant, &id)?;
  e.sandbox.kill_all().await?;
  Ok(ok())
}

// ---------------------------------------------------------------------------------------------
// files

fn file_op_json(op: &FileOp) -> Value {
  json!({ "path": op.path, "success": op.success, "error": op.error, "code": op.code.map(|c| c.as_str()) })
}

/// `PUT .../files?path=` with the raw bytes as the body → the FileOperation.
async fn write_file(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, uri: Uri, headers: HeaderMap, body: Body) -> R {
  let e = state.entry(&tenant, &id)?;
  let path = path_param(&query(&uri))?;
  let data = body::read_bytes(&headers, body, tenant.limits.max_body_bytes.min(MAX_UPLOAD)).await?;
  let op = e.sandbox.write_file(&path, data.to_vec()).await;
  Ok(Json(file_op_json(&op)).into_response())
}

/// `GET .../files?path=&max=` → the file's first `max` bytes (all of it, up to the library's
/// read limit, without `max`), or an error with the FileOperation's message and code.
async fn read_file(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, uri: Uri) -> R {
  let e = state.entry(&tenant, &id)?;
  let q = query(&uri);
  let path = path_param(&q)?;
  let max = match q.get("max") {
    None => crate::core::sandbox::MAX_READ_BYTES,
    Some(m) => m.parse::<usize>().map_err(|_| ApiError::invalid("max must be a number of bytes"))?.min(crate::core::sandbox::MAX_READ_BYTES + 1),
  };
  let op = e.sandbox.read_file_max(&path, max).await;
  if op.success {
    let content = op.content.unwrap_or_default();
    let mut res = ([(header::CONTENT_TYPE, "application/octet-stream")], content).into_response();
    if let Ok(v) = op.path.parse() {
      res.headers_mut().insert("x-sandbox-path", v);
    }
    return Ok(res);
  }
  let (status, code) = match op.code {
    Some(c) => (crate::server::error::status_of(c), c.as_str()),
    None => (StatusCode::UNPROCESSABLE_ENTITY, "FILE_ERROR"),
  };
  let body = json!({ "error": { "code": code, "message": op.error.unwrap_or_default() }, "path": op.path });
  let mut res = (status, Json(body)).into_response();
  res.extensions_mut().insert(crate::server::metrics::ErrorTag(code.to_string()));
  Ok(res)
}

async fn delete_file(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, uri: Uri) -> R {
  let e = state.entry(&tenant, &id)?;
  let q = query(&uri);
  let path = path_param(&q)?;
  let op = e.sandbox.delete_file(&path, flag(&q, "recursive")).await;
  Ok(Json(file_op_json(&op)).into_response())
}

/// `GET .../files/list?path=&all=&recursive=&detailed=` → `{ names }` or `{ files }`.
async fn list_files(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, uri: Uri) -> R {
  let e = state.entry(&tenant, &id)?;
  let q = query(&uri);
  let path = path_param(&q)?;
  let (all, recursive) = (flag(&q, "all"), flag(&q, "recursive"));
  if flag(&q, "detailed") {
    let files = e.sandbox.list_files_detailed(&path, recursive, all).await?;
    let items: Vec<Value> = files
      .iter()
      .map(|f| json!({ "path": f.path, "name": f.name, "type": f.kind, "size": f.size, "mtimeMs": f.mtime_ms, "permissions": f.permissions }))
      .collect();
    return Ok(Json(json!({ "files": items })).into_response());
  }
  let names = if recursive { e.sandbox.list_paths(&path, true, all).await? } else { e.sandbox.list_files(&path, all).await? };
  Ok(Json(json!({ "names": names })).into_response())
}

async fn stats(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  let e = state.entry(&tenant, &id)?;
  let s = e.sandbox.stats().await?;
  Ok(
    Json(json!({
      "memoryUsageMB": s.memory_usage_mb, "cpuPercent": s.cpu_percent, "diskUsageMB": s.disk_usage_mb,
      "networkRxMB": s.network_rx_mb, "networkTxMB": s.network_tx_mb,
    }))
    .into_response(),
  )
}

async fn health(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> R {
  let e = state.entry(&tenant, &id)?;
  let h = e.sandbox.health().await;
  Ok(Json(json!({ "healthy": h.healthy, "message": h.message.map(|m| state.redactor.redact(&m)) })).into_response())
}

// ---------------------------------------------------------------------------------------------
// sessions

/// The manager's thread key of a tenant's thread (tenants never share threads).
fn thread_key(tenant: &Tenant, thread: &str) -> String {
  format!("{}\u{1f}{thread}", tenant.name)
}

/// The client's thread id in a [`thread_key`].
fn thread_of(key: &str) -> String {
  key.split_once('\u{1f}').map_or(key, |(_, t)| t).to_string()
}

fn session_json(sb: &crate::core::sandbox::AnySandbox, thread: &str, created: bool) -> Value {
  let info = sb.activity().session;
  json!({
    "sandboxId": sb.id(),
    "threadId": thread,
    "userId": info.as_ref().map(|i| i.user_id.clone()),
    "created": created,
    "expired": info.as_ref().is_some_and(|i| i.expired),
    "expiresAt": sb.expires_at_ms().map(iso),
    "state": sb.state().as_str(),
  })
}

/// `POST /v1/sessions` `{ userId, threadId, timeoutMinutes?, autoRetry?, config? }` → the thread's
/// session sandbox (created on first use), in the caller's table like any sandbox of theirs.
async fn open_session(State(state): S, Caller(tenant): Caller, headers: HeaderMap, body: Body) -> R {
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let user = body::opt_string(&o, "userId")?.ok_or_else(|| ApiError::invalid("userId is missing"))?;
  let thread = body::opt_string(&o, "threadId")?.ok_or_else(|| ApiError::invalid("threadId is missing"))?;
  let timeout_minutes = match o.get("timeoutMinutes") {
    None | Some(Value::Null) => None,
    Some(v) => Some(v.as_f64().ok_or_else(|| ApiError::invalid("timeoutMinutes must be a number"))?),
  };
  let auto_retry = body::opt_bool(&o, "autoRetry")?.unwrap_or(false);
  let layer = sanitize(o.get("config").unwrap_or(&Value::Null), state.manager.defaults())?;
  let key = thread_key(&tenant, &thread);
  let had = state.manager.sessions().iter().any(|s| s.activity().session.is_some_and(|i| i.thread_id == key));
  let st = state.clone();
  let t = tenant.clone();
  let (sb, created) = state
    .work(async move {
      let opts = crate::core::manager::SessionOptions {
        user_id: user,
        thread_id: key.clone(),
        timeout_minutes,
        auto_retry,
        config: Some(layer),
        pool: None,
      };
      let sb = st.manager.get_or_create_session(opts).await?;
      let known = st.sandboxes.lock().unwrap().contains_key(sb.id());
      if !known {
        let Some(slot) = t.sandboxes.try_acquire() else {
          let _ = st.manager.close_session(&key).await;
          return Err(ApiError::quota(format!("this API key holds {} sandboxes, its limit; close a session or destroy a sandbox", t.sandboxes.max())));
        };
        let entry = st.add_entry(t.clone(), sb.clone(), "session".into(), sb.config().template.unwrap_or_else(|| "-".into()), st.opts.max_timeout, slot);
        if let Err(e) = st.announce(&entry).await {
          let _ = st.manager.close_session(&key).await;
          return Err(e);
        }
      }
      if let Some(w) = st.worker.get() {
        if let Err(e) = w.cluster.set_session(&t.name, &thread_of(&key), sb.id()).await {
          tracing::warn!(error = %e.message, "distributed mode: recording a session in Redis failed; other workers will not find it");
        }
      }
      Ok((sb, !had))
    })
    .await?;
  Ok(Json(session_json(&sb, &thread, created)).into_response())
}

async fn list_sessions(State(state): S, Caller(tenant): Caller) -> R {
  let prefix = thread_key(&tenant, "");
  let items: Vec<Value> = state
    .manager
    .sessions()
    .iter()
    .filter_map(|sb| {
      let t = sb.activity().session?.thread_id;
      let thread = t.strip_prefix(&prefix)?.to_string();
      Some(session_json(sb, &thread, false))
    })
    .collect();
  Ok(Json(json!({ "sessions": items })).into_response())
}

async fn close_session(State(state): S, Caller(tenant): Caller, Path(thread): Path<String>) -> R {
  let key = thread_key(&tenant, &thread);
  let sb = state.manager.sessions().into_iter().find(|s| s.activity().session.is_some_and(|i| i.thread_id == key));
  let st = state.clone();
  let closed = state
    .work(async move {
      let closed = st.manager.close_session(&key).await?;
      if let Some(sb) = sb {
        st.remove(sb.id()).await?;
      }
      if let Some(w) = st.worker.get() {
        w.cluster.clear_session(&tenant.name, &thread_of(&key)).await?;
      }
      Ok(closed)
    })
    .await?;
  Ok(Json(json!({ "threadId": thread, "closed": closed })).into_response())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn queries_are_decoded() {
    let u: Uri = "/x?path=%2Fworkspace%2Fa%20b.txt&max=10&all=1&plus=a+b&bad=%zz".parse().unwrap();
    let q = query(&u);
    assert_eq!(q["path"], "/workspace/a b.txt");
    assert_eq!(q["max"], "10");
    assert_eq!(q["plus"], "a b");
    assert_eq!(q["bad"], "%zz");
    assert!(flag(&q, "all") && !flag(&q, "none"));
  }

  fn server() -> Value {
    config::merge(
      &config::defaults(),
      &json!({ "image": "agentic-sandbox/busybox:1", "templates": { "python": "agentic-sandbox/devtools:2" }, "networkMode": "isolated", "limits": { "memoryMB": 256, "maxFileSizeMB": 10 } }),
    )
  }

  #[test]
  fn tenant_configs_are_bounded_by_the_server() {
    let s = server();
    let v = sanitize(&json!({ "image": "agentic-sandbox/busybox:1", "limits": { "memoryMB": 4096, "cpuCores": 0.5 }, "networkMode": "bridge", "env": { "A": "1" }, "unknown": 1 }), &s).unwrap();
    assert_eq!(v["limits"]["memoryMB"], 256.0);
    assert_eq!(v["limits"]["cpuCores"], 0.5);
    assert_eq!(v["limits"]["maxFileSizeMB"], 10.0);
    assert_eq!(v["networkMode"], "isolated");
    assert_eq!(v["env"]["A"], "1");
    assert!(v.get("unknown").is_none());
    assert_eq!(sanitize(&json!({ "networkMode": "none" }), &s).unwrap()["networkMode"], "none");
    // egress rules would open an isolated service's sandboxes; on a bridge service they narrow them
    assert_eq!(sanitize(&json!({ "network": { "allowOut": ["npm"] } }), &s).unwrap_err().code, "PERMISSION_DENIED");
    assert_eq!(sanitize(&json!({ "networkMode": "restricted" }), &s).unwrap()["networkMode"], "isolated");
    let bridge = config::merge(&s, &json!({ "networkMode": "bridge" }));
    let v = sanitize(&json!({ "network": { "allowOut": ["npm"], "denyOut": ["0.0.0.0/0"] }, "networkMode": "restricted" }), &bridge).unwrap();
    assert_eq!((v["network"]["allowOut"][0].as_str(), v["networkMode"].as_str()), (Some("npm"), Some("restricted")));
    let ruled = config::merge(&bridge, &json!({ "network": { "denyOut": ["10.0.0.0/8"] } }));
    assert_eq!(sanitize(&json!({ "network": {} }), &ruled).unwrap_err().code, "PERMISSION_DENIED");
    // a template's image is offered; the template resolves on the server
    assert!(sanitize(&json!({ "image": "agentic-sandbox/devtools:2" }), &s).is_ok());
    assert!(sanitize(&json!({ "template": "python" }), &s).is_ok());
    for (bad, code) in [
      (json!({ "image": "evil/miner:latest" }), "PERMISSION_DENIED"),
      (json!({ "docker": { "socketPath": "/x" } }), "PERMISSION_DENIED"),
      (json!({ "provider": "e2b" }), "PERMISSION_DENIED"),
      (json!({ "templates": { "python": "evil:1" } }), "PERMISSION_DENIED"),
      (json!({ "gpu": true }), "PERMISSION_DENIED"),
      (json!("x"), "INVALID_CONFIG"),
    ] {
      assert_eq!(sanitize(&bad, &s).unwrap_err().code, code, "{bad}");
    }
    let with_policy = config::merge(&s, &json!({ "commandPolicy": { "deny": ["rm"] } }));
    assert_eq!(sanitize(&json!({ "commandPolicy": { "allow": ["*"] } }), &with_policy).unwrap_err().code, "PERMISSION_DENIED");
  }

  #[test]
  fn spawn_options() {
    let o = body::parse_object(br#"{"options":{"timeout":5,"env":{"A":"b"},"workdir":"sub","maxOutputBytes":999999,"stdin":"aGk="}}"#).unwrap();
    let e = exec_options(&o, 1000).unwrap();
    assert_eq!((e.timeout, e.max_output_bytes, e.stdin.as_deref()), (Some(5.0), Some(1000), Some(&b"hi"[..])));
    assert_eq!(e.env["A"], "b");
    for bad in [r#"{"options":{"timeout":-1}}"#, r#"{"options":{"env":{"A":1}}}"#, r#"{"options":{"stdin":"!"}}"#, r#"{"options":3}"#] {
      assert_eq!(exec_options(&body::parse_object(bad.as_bytes()).unwrap(), 10).unwrap_err().code, "INVALID_ARGUMENT", "{bad}");
    }
  }

  #[test]
  fn the_openapi_document_lists_every_route() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (method, path, _) in table() {
      let full = format!("/v1{path}");
      let op = paths.get(&full).and_then(|p| p.get(method.to_ascii_lowercase()));
      assert!(op.is_some(), "{method} {full} is not in openapi.json");
      documented += 1;
    }
    let total: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str())).count())).sum();
    assert_eq!(total, documented, "openapi.json documents a route the router does not have");
  }
}
