//! Seed 004's API ("Sandbox Service API"), unversioned as the seed has it: create, execute,
//! status, delete, list, health. Field names are the seed's (snake_case); what the seed does
//! not show follows the MCP server's names (`exit_code`, `duration_ms`, `created_at`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::core::error::SandboxError;
use crate::core::logs::{iso, now_ms};
use crate::core::types::ExecResult;
use crate::server::audit::{self, Exited};
use crate::server::body::{self, read_object};
use crate::server::environments::template_for;
use crate::server::error::ApiError;
use crate::server::execute::{self, Outcome, Tests, MAX_COMMANDS, MAX_FILES};
use crate::server::metrics::Api;
use crate::server::state::{AppState, Entry};
use crate::server::{Caller, SandboxId};

type S = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
  Router::new()
    .route("/health", get(health))
    .route("/sandbox/create", post(create))
    .route("/sandbox/{id}/execute", post(execute))
    .route("/sandbox/{id}/status", get(status))
    .route("/sandbox/{id}", delete(destroy))
    .route("/sandboxes", get(list))
}

/// Whole seconds as an integer (`3600`, not `3600.0`), fractions as they are.
fn seconds(d: Duration) -> Value {
  let s = d.as_secs_f64();
  if s.fract() == 0.0 { json!(d.as_secs()) } else { json!(s) }
}

fn uptime_s(e: &Entry) -> u64 {
  e.created.elapsed().as_secs()
}

/// `POST /sandbox/create` `{ environment, timeout? }` → 201 with the sandbox.
async fn create(State(state): S, Caller(tenant): Caller, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let environment = body::opt_string(&o, "environment")?.ok_or_else(|| {
    ApiError::invalid("environment is missing; use one of nodejs-18, python-3.11, go-1.21 (or a template name: python, node, go, base)")
  })?;
  let max = state.opts.max_timeout.as_secs_f64();
  let timeout = body::opt_seconds(&o, "timeout", max)?.map_or(state.opts.default_timeout, Duration::from_secs_f64);
  let template = template_for(&environment, state.templates().as_ref())?;
  let st = state.clone();
  let entry = state
    .work(async move {
      let entry = st.create(tenant, environment.trim().to_string(), template, timeout).await?;
      st.announce(&entry).await?;
      Ok(entry)
    })
    .await?;
  let config = entry.sandbox.config();
  let body = json!({
    "sandbox_id": entry.id,
    "status": entry.status(),
    "environment": entry.environment,
    "template": entry.template,
    "image": config.image,
    "provider": config.provider.as_str(),
    "engine": entry.sandbox.engine_name(),
    "timeout": seconds(entry.timeout),
    "created_at": iso(entry.created_ms),
    "expires_at": iso(entry.expires_ms()),
  });
  Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn tests_json(t: &Tests) -> Value {
  json!({
    "framework": t.framework.map(|f| f.as_str()),
    "total": t.summary.total,
    "passed": t.summary.passed,
    "failed": t.summary.failed,
    "skipped": t.summary.skipped,
    "failures": t.summary.failures.iter().map(|f| json!({ "name": f.name, "message": f.message })).collect::<Vec<_>>(),
    "parsed": t.summary.parsed,
  })
}

fn text(bytes: &[u8]) -> String {
  String::from_utf8_lossy(bytes).into_owned()
}

fn outcome_json(id: &str, o: &Outcome) -> Value {
  let results: Vec<Value> = o
    .results
    .iter()
    .map(|r| {
      let res = r.result.as_ref();
      json!({
        "command": r.command,
        "status": r.status.as_str(),
        "exit_code": res.map(|r| r.exit_code),
        "stdout": res.map_or(String::new(), |r| text(&r.stdout)),
        "stderr": res.map_or(String::new(), |r| text(&r.stderr)),
        "duration_ms": res.map_or(0.0, |r| (r.duration_ms * 10.0).round() / 10.0),
        "timed_out": res.is_some_and(|r| r.timed_out),
        "truncated": res.is_some_and(|r| r.truncated),
        "test_results": r.tests.as_ref().map(tests_json),
      })
    })
    .collect();
  let last_tests = o.results.iter().rev().find_map(|r| r.tests.as_ref()).map(tests_json);
  json!({
    "sandbox_id": id,
    "success": o.success(),
    "files_written": o.files_written,
    "results": results,
    "test_results": last_tests,
    "duration_ms": (o.duration.as_secs_f64() * 10_000.0).round() / 10.0,
  })
}

/// Marks an entry busy while an execution runs.
struct Running(Arc<Entry>);

impl Drop for Running {
  fn drop(&mut self) {
    self.0.running.fetch_sub(1, Ordering::SeqCst);
  }
}

/// `POST /sandbox/{id}/execute` `{ files?, commands?, timeout?, stop_on_error? }` → the results.
async fn execute(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
  let entry = state.entry(&tenant, &id)?;
  let o = read_object(&headers, body, tenant.limits.max_body_bytes).await?;
  let files = body::opt_string_map(&o, "files", MAX_FILES)?;
  let commands = body::opt_strings(&o, "commands", MAX_COMMANDS)?;
  let max = state.opts.max_timeout.as_secs_f64();
  let timeout = body::opt_seconds(&o, "timeout", max)?.map_or(state.opts.default_exec_timeout, Duration::from_secs_f64);
  let stop_on_error = body::opt_bool(&o, "stop_on_error")?.unwrap_or(false);
  let permit = tenant.executions.try_acquire().ok_or_else(|| {
    ApiError::quota(format!(
      "this API key already runs {} executions at once, its limit; wait for one to finish",
      tenant.executions.max()
    ))
  })?;
  let req = execute::Request { files, commands, timeout, stop_on_error };
  let max_output = state.opts.max_output_bytes;
  let cancel = state.cancel.subscribe();
  let st = state.clone();
  let outcome = state
    .work(async move {
      let _permit = permit;
      entry.executions.fetch_add(1, Ordering::SeqCst);
      entry.running.fetch_add(1, Ordering::SeqCst);
      let running = Running(entry.clone());
      let n = req.commands.len() as u64;
      let (st, e) = (st, running.0.clone());
      let no_env = Default::default();
      let observe = move |command: &str, r: Result<&ExecResult, &SandboxError>| {
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), command.to_string()];
        audit::command(&st, Api::Seed, &e.tenant.name, &e.sandbox, argv, &no_env, None, false, r.map(Exited::from).map_err(|e| e.code_str()));
      };
      let r = execute::run(&running.0.sandbox, req, max_output, cancel, &observe).await;
      if let Ok(o) = &r {
        let ran = o.results.iter().filter(|c| c.result.is_some()).count() as u64;
        running.0.commands.fetch_add(ran.min(n), Ordering::SeqCst);
      }
      r
    })
    .await?;
  Ok(Json(outcome_json(&id, &outcome)).into_response())
}

/// `GET /sandbox/{id}/status`
async fn status(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> Result<Response, ApiError> {
  let e = state.entry(&tenant, &id)?;
  let st = crate::service::status::status(&e.sandbox).await;
  let round = |v: f64| (v * 100.0).round() / 100.0;
  Ok(
    Json(json!({
      "sandbox_id": e.id,
      "status": e.status(),
      "state": st.state.as_str(),
      "environment": e.environment,
      "template": e.template,
      "image": st.image,
      "provider": st.provider,
      "engine": st.engine,
      "uptime": uptime_s(&e),
      "timeout": seconds(e.timeout),
      "executions": e.executions.load(Ordering::SeqCst),
      "commands": e.commands.load(Ordering::SeqCst),
      "created_at": iso(e.created_ms),
      "expires_at": iso(e.expires_ms()),
      "last_activity": iso(st.last_activity_ms),
      "resource_usage": {
        "cpu_percent": round(st.stats.cpu_percent),
        "memory_used_mb": round(st.stats.memory_usage_mb),
        "memory_limit_mb": st.memory_limit_mb,
        "disk_used_mb": round(st.stats.disk_usage_mb),
        "disk_limit_mb": st.disk_limit_mb,
      },
    }))
    .into_response(),
  )
}

/// `DELETE /sandbox/{id}`
async fn destroy(State(state): S, Caller(tenant): Caller, SandboxId(id): SandboxId) -> Result<Response, ApiError> {
  state.entry(&tenant, &id)?;
  let st = state.clone();
  let key = id.clone();
  let removed = state.work(async move { st.remove(&key).await }).await?;
  if !removed {
    // deleted by a concurrent request or its lifetime in between
    return Err(ApiError::not_found(&id));
  }
  Ok(Json(json!({ "sandbox_id": id, "deleted": true, "deleted_at": iso(now_ms()) })).into_response())
}

/// `GET /sandboxes`: the caller's sandboxes, oldest first.
async fn list(State(state): S, Caller(tenant): Caller) -> Result<Response, ApiError> {
  let items: Vec<Value> = state
    .entries_of(&tenant)
    .iter()
    .map(|e| {
      json!({
        "sandbox_id": e.id,
        "status": e.status(),
        "environment": e.environment,
        "uptime": uptime_s(e),
        "executions": e.executions.load(Ordering::SeqCst),
        "created_at": iso(e.created_ms),
        "expires_at": iso(e.expires_ms()),
      })
    })
    .collect();
  Ok(Json(json!({ "total": items.len(), "sandboxes": items })).into_response())
}

/// `GET /health`: no key needed. The engine's reachability and the server's counts; with a valid
/// key (or on an anonymous server) also the caller's own counts and limits. 503 when the engine
/// cannot be reached or the server is shutting down.
async fn health(State(state): S, headers: HeaderMap) -> Response {
  let (provider, reachable, message) = state.engine().await;
  let stopping = state.shutting_down.load(Ordering::SeqCst);
  let healthy = reachable != Some(false) && !stopping;
  let all = state.all_entries();
  let mut body = json!({
    "status": if stopping { "shutting_down" } else if healthy { "healthy" } else { "unhealthy" },
    "version": env!("CARGO_PKG_VERSION"),
    "uptime": state.started.elapsed().as_secs(),
    "provider": provider,
    "engine": { "reachable": reachable, "message": message },
    "sandboxes": all.len(),
    "executions_running": all.iter().map(|e| e.running.load(Ordering::SeqCst)).sum::<usize>(),
    "auth": if state.keys.is_open() { "none (loopback only)" } else { "api-key" },
  });
  if let Some(w) = state.worker.get() {
    // distributed mode: this worker and what it sees of the cluster (Redis down: the worker still
    // serves its own sandboxes, so it stays healthy)
    let (redis, workers) = match w.cluster.workers().await {
      Ok(ws) => (json!({ "reachable": true }), json!(ws.iter().map(|w| json!({ "id": w.id, "url": w.url, "sandboxes": w.sandboxes })).collect::<Vec<_>>())),
      Err(e) => (json!({ "reachable": false, "message": state.redactor.redact(&e.message) }), Value::Null),
    };
    body["cluster"] = json!({ "worker": w.id, "url": w.url, "redis": redis, "workers": workers });
  }
  if let Ok(t) = state.keys.authenticate(&headers) {
    body["tenant"] = json!({
      "name": t.name,
      "sandboxes": t.sandboxes.used(),
      "max_sandboxes": t.limits.max_sandboxes,
      "executions_running": t.executions.used(),
      "max_concurrent_executions": t.limits.max_concurrent_executions,
      "max_background_processes": t.limits.max_background_processes,
      "max_body_bytes": t.limits.max_body_bytes,
    });
  }
  let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
  (code, Json(body)).into_response()
}
