//! `GET /metrics`: the server's counters in the Prometheus text exposition (OpenMetrics, which
//! Prometheus scrapes as it is), made with `prometheus-client`. Every series carries a `worker`
//! label (`workerId`, `--worker-id`, `WORKER_ID`; the host name by default), so the workers of a
//! cluster can be told apart on one dashboard.
//!
//! Who may read it: the metrics name every tenant and count their work, so they are not for
//! tenants. On a server without API keys (loopback only) it is served like every route; with
//! keys it takes its own token (`metricsToken`, `SANDBOX_METRICS_TOKEN`, `--metrics-token-file`)
//! as `Authorization: Bearer <token>`, which Prometheus sends with `authorization:
//! { credentials_file: ... }`; `metricsPublic: true` serves it to anyone who reaches the port.
//!
//! Also here: the observability options (`workerId`, `auditLog`, `metricsPublic`,
//! `metricsToken`) that `options` hands to this module, and the middleware that counts requests
//! by route and status and errors by code.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};

use crate::core::error::{Result, SandboxError};
use crate::server::error::ApiError;
use crate::server::state::AppState;

pub const ROUTE: &str = "/metrics";
/// What `GET /metrics` answers with: the OpenMetrics text that `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Every metric's name starts with this (`agentic_sandbox_executions_total`).
pub const PREFIX: &str = "agentic_sandbox";

/// The states a sandbox of the server is counted in (seed 004's status words, see `Entry::status`).
pub const STATES: [&str; 6] = ["creating", "ready", "busy", "stopped", "destroyed", "error"];

// ---------------------------------------------------------------------------------------------
// options

/// The observability options of the server.
#[derive(Clone, PartialEq, Eq)]
pub struct ObsOptions {
  /// the `worker` label of every metric and audit line
  pub worker_id: String,
  /// the audit log's file (JSON lines, appended); None: no file
  pub audit_log: Option<PathBuf>,
  /// `/metrics` without any credential
  pub metrics_public: bool,
  /// the bearer token of `/metrics` on a server with API keys
  pub metrics_token: Option<String>,
}

impl std::fmt::Debug for ObsOptions {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ObsOptions")
      .field("worker_id", &self.worker_id)
      .field("audit_log", &self.audit_log)
      .field("metrics_public", &self.metrics_public)
      .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
      .finish()
  }
}

impl Default for ObsOptions {
  fn default() -> Self {
    Self { worker_id: hostname(), audit_log: None, metrics_public: false, metrics_token: None }
  }
}

/// The option names of `new SandboxServer(options)` read here.
pub const OPTIONS: [&str; 4] = ["workerId", "auditLog", "metricsPublic", "metricsToken"];

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `localhost`),
/// cut to 40 characters of `[A-Za-z0-9._-]` (others become `-`), so it is a valid worker id.
pub fn hostname() -> String {
  let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_default();
  let h: String = h.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).take(40).collect();
  if h.is_empty() { "localhost".into() } else { h }
}

fn bad(message: String) -> SandboxError {
  SandboxError::invalid_config(message)
}

fn opt_string(o: &Map<String, Value>, field: &str) -> Result<Option<String>> {
  match o.get(field) {
    None | Some(Value::Null) => Ok(None),
    Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
    Some(_) => Err(bad(format!("{field} must be a non-empty string"))),
  }
}

impl ObsOptions {
  /// Reads [`OPTIONS`] from the options object; `SANDBOX_METRICS_TOKEN` through `get` when
  /// `read_env` (like `SANDBOX_API_KEYS`). Messages never quote the token.
  pub fn from_json(o: &Map<String, Value>, read_env: bool, get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
    let mut s = Self::default();
    if let Some(w) = opt_string(o, "workerId")? {
      if w.len() > 128 || !w.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!("workerId must be 1 to 128 visible ASCII characters (no spaces), got {w:?}")));
      }
      s.worker_id = w;
    }
    s.audit_log = opt_string(o, "auditLog")?.map(PathBuf::from);
    match o.get("metricsPublic") {
      None | Some(Value::Null) => {}
      Some(Value::Bool(b)) => s.metrics_public = *b,
      Some(_) => return Err(bad("metricsPublic must be a boolean".into())),
    }
    s.metrics_token = match o.get("metricsToken") {
      None | Some(Value::Null) => None,
      Some(Value::String(t)) => Some(t.trim().to_string()),
      Some(_) => return Err(bad("metricsToken must be a string".into())),
    };
    if s.metrics_token.is_none() && read_env {
      s.metrics_token = get("SANDBOX_METRICS_TOKEN").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    }
    if let Some(t) = &s.metrics_token {
      crate::server::options::check_key(t, "the metrics token (metricsToken / SANDBOX_METRICS_TOKEN)")?;
    }
    Ok(s)
  }
}

// ---------------------------------------------------------------------------------------------
// the metrics

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
  state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecLabels {
  tenant: String,
  api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
  api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
  code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
  method: &'static str,
  route: String,
  status: u16,
}

type Histograms = Family<ApiLabels, Histogram, fn() -> Histogram>;

/// Upper bounds of the duration buckets, in seconds: 10 ms to 30 min.
pub const DURATION_BUCKETS: [f64; 16] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

fn duration_histogram() -> Histogram {
  Histogram::new(DURATION_BUCKETS)
}

/// Where a command came from: the seed's `POST /sandbox/{id}/execute`, a `/v1` process (which
/// is how the remote mode's executes, runCode, runTests and sessions arrive) or an E2B SDK's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
  Seed,
  V1,
  /// envd's `process.Process/Start` of the self-hosted E2B
  E2b,
}

impl Api {
  pub fn as_str(self) -> &'static str {
    match self {
      Api::Seed => "seed",
      Api::V1 => "v1",
      Api::E2b => "e2b",
    }
  }
}

/// An error answer's code, put on the response by `ApiError` for [`track`] to count.
#[derive(Debug, Clone)]
pub struct ErrorTag(pub String);

/// The server's metrics (see the README's "Sandbox service: observability" for the list).
pub struct Metrics {
  registry: Registry,
  worker: String,
  sandboxes: Family<StateLabels, Gauge>,
  executions_running: Gauge,
  executions: Family<ExecLabels, Counter>,
  duration: Histograms,
  errors: Family<CodeLabels, Counter>,
  requests: Family<HttpLabels, Counter>,
  /// audit lines lost (queue full, or the file could not be written)
  pub audit_dropped: Counter,
  /// one scrape at a time sets the gauges and encodes
  scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Metrics").field("worker", &self.worker).finish_non_exhaustive()
  }
}

impl Metrics {
  pub fn new(worker: &str) -> Self {
    let labels = [(Cow::Borrowed("worker"), Cow::Owned(worker.to_string()))];
    let mut registry = Registry::with_prefix_and_labels(PREFIX, labels.into_iter());
    let sandboxes = Family::<StateLabels, Gauge>::default();
    let executions_running = Gauge::default();
    let executions = Family::<ExecLabels, Counter>::default();
    let duration: Histograms = Family::new_with_constructor(duration_histogram);
    let errors = Family::<CodeLabels, Counter>::default();
    let requests = Family::<HttpLabels, Counter>::default();
    let audit_dropped = Counter::default();
    registry.register("sandboxes", "Sandboxes of this server by state", sandboxes.clone());
    registry.register("executions_running", "Executions (execute requests and foreground processes) running now", executions_running.clone());
    registry.register("executions", "Commands run, by tenant and API (seed: POST /sandbox/{id}/execute; v1: processes)", executions.clone());
    registry.register("execution_duration_seconds", "Time from a command's start to its exit", duration.clone());
    registry.register("errors", "Error answers by error code", errors.clone());
    registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
    registry.register("audit_lines_dropped", "Audit lines lost because the writer was behind or the file could not be written", audit_dropped.clone());
    Self { registry, worker: worker.to_string(), sandboxes, executions_running, executions, duration, errors, requests, audit_dropped, scrape: Mutex::new(()) }
  }

  pub fn worker(&self) -> &str {
    &self.worker
  }

  /// A command that ran (whatever its exit code) for `tenant`, for `seconds`.
  pub fn execution(&self, tenant: &str, api: Api, seconds: f64) {
    self.executions.get_or_create(&ExecLabels { tenant: tenant.to_string(), api: api.as_str() }).inc();
    self.duration.get_or_create(&ApiLabels { api: api.as_str() }).observe(seconds.max(0.0));
  }

  pub fn error(&self, code: &str) {
    self.errors.get_or_create(&CodeLabels { code: code.to_string() }).inc();
  }

  fn request(&self, method: &'static str, route: String, status: u16) {
    self.requests.get_or_create(&HttpLabels { method, route, status }).inc();
  }

  /// The exposition, with the gauges set from `counts` (state → sandboxes) and `running`.
  pub fn render(&self, counts: &[(&'static str, i64)], running: i64) -> String {
    let _one = self.scrape.lock().unwrap();
    self.sandboxes.clear();
    for state in STATES {
      let n = counts.iter().filter(|(s, _)| *s == state).map(|(_, n)| n).sum();
      self.sandboxes.get_or_create(&StateLabels { state }).set(n);
    }
    self.executions_running.set(running);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
    out
  }

  /// The exposition of the server `state`.
  pub fn render_state(&self, state: &AppState) -> String {
    let entries = state.all_entries();
    let counts: Vec<(&'static str, i64)> = entries.iter().map(|e| (e.status(), 1)).collect();
    let running = entries.iter().map(|e| e.running.load(Ordering::SeqCst) as i64).sum();
    self.render(&counts, running)
  }
}

/// A method as a label: the standard ones by name, anything else `other` (a client picks the
/// method, and labels must stay few).
fn method_label(m: &axum::http::Method) -> &'static str {
  use axum::http::Method as M;
  for (k, v) in [(M::GET, "GET"), (M::POST, "POST"), (M::PUT, "PUT"), (M::DELETE, "DELETE"), (M::PATCH, "PATCH"), (M::HEAD, "HEAD"), (M::OPTIONS, "OPTIONS")] {
    if *m == k {
      return v;
    }
  }
  "other"
}

/// Counts every request by method, route (the router's pattern, `/sandbox/{id}/execute`; never
/// the path, whose ids would make a series per sandbox) and status, and error answers by code.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
  let method = method_label(req.method());
  let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
  let mut res = next.run(req).await;
  if let Some(ErrorTag(code)) = res.extensions().get::<ErrorTag>() {
    state.metrics.error(code);
  }
  state.metrics.request(method, route.clone(), res.status().as_u16());
  res.extensions_mut().insert(RoutePattern(route));
  res
}

/// The route pattern that served a request, for the access log (which runs outside the routes,
/// around distributed mode's forwarding: a forwarded request has none here).
#[derive(Clone, Debug)]
pub struct RoutePattern(pub String);

/// Equal contents, in a time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
  a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Who may read `/metrics` (see the module docs).
fn allowed(state: &AppState, headers: &HeaderMap) -> std::result::Result<(), ApiError> {
  let obs = &state.opts.obs;
  if obs.metrics_public {
    return Ok(());
  }
  if let Some(token) = &obs.metrics_token {
    let given = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()).filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "));
    return match given {
      Some(v) if same(v[7..].trim_ascii(), token.as_bytes()) => Ok(()),
      _ => Err(ApiError::unauthorized("GET /metrics needs the metrics token: send 'Authorization: Bearer <metrics token>'")),
    };
  }
  if state.keys.is_open() {
    return state.keys.authenticate(headers).map(|_| ());
  }
  Err(ApiError::unauthorized(
    "GET /metrics is not open on a server with API keys: give the server a metrics token (SANDBOX_METRICS_TOKEN, --metrics-token-file, metricsToken) and send it as 'Authorization: Bearer <token>', or serve it to anyone with --metrics-public",
  ))
}

/// `GET /metrics`
pub async fn handler(State(state): State<Arc<AppState>>, headers: HeaderMap) -> std::result::Result<Response, ApiError> {
  allowed(&state, &headers)?;
  let body = state.metrics.render_state(&state);
  Ok((StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  /// The sample lines of an exposition: (name, labels sorted, value).
  fn samples(text: &str) -> Vec<(String, Vec<String>, f64)> {
    text
      .lines()
      .filter(|l| !l.starts_with('#') && !l.is_empty())
      .map(|l| {
        let (series, v) = l.rsplit_once(' ').expect("a sample line is '<series> <value>'");
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels = labels.strip_suffix('}').expect("labels end with }");
        let mut labels: Vec<String> = labels.split("\",").filter(|s| !s.is_empty()).map(|s| s.trim_end_matches('"').to_string() + "\"").collect();
        labels.sort();
        (name.to_string(), labels, v.parse::<f64>().expect("a number"))
      })
      .collect()
  }

  /// The value of series `name{labels}` (labels in any order, as `k="v"`).
  fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    want.sort();
    samples(text).into_iter().find(|(n, l, _)| n == name && *l == want).map(|(_, _, v)| v)
  }

  #[test]
  fn renders_counts_gauges_and_histograms_with_the_worker_label() {
    let m = Metrics::new("w-1");
    m.execution("alice", Api::Seed, 0.05);
    m.execution("alice", Api::Seed, 3.0);
    m.execution("bob", Api::V1, 0.001);
    m.error("SANDBOX_NOT_FOUND");
    m.request("GET", "/sandbox/{id}/status".into(), 404);
    let text = m.render(&[("ready", 1), ("ready", 1), ("busy", 1)], 1);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(value(&text, "agentic_sandbox_sandboxes", &[r#"state="ready""#, r#"worker="w-1""#]), Some(2.0), "{text}");
    assert_eq!(value(&text, "agentic_sandbox_sandboxes", &[r#"state="busy""#, r#"worker="w-1""#]), Some(1.0));
    assert_eq!(value(&text, "agentic_sandbox_sandboxes", &[r#"state="error""#, r#"worker="w-1""#]), Some(0.0), "every state is shown");
    assert_eq!(value(&text, "agentic_sandbox_executions_running", &[r#"worker="w-1""#]), Some(1.0));
    assert_eq!(value(&text, "agentic_sandbox_executions_total", &[r#"tenant="alice""#, r#"api="seed""#, r#"worker="w-1""#]), Some(2.0));
    assert_eq!(value(&text, "agentic_sandbox_executions_total", &[r#"tenant="bob""#, r#"api="v1""#, r#"worker="w-1""#]), Some(1.0));
    assert_eq!(value(&text, "agentic_sandbox_execution_duration_seconds_count", &[r#"api="seed""#, r#"worker="w-1""#]), Some(2.0));
    assert_eq!(value(&text, "agentic_sandbox_execution_duration_seconds_sum", &[r#"api="seed""#, r#"worker="w-1""#]), Some(3.05));
    assert_eq!(value(&text, "agentic_sandbox_execution_duration_seconds_bucket", &[r#"le="0.05""#, r#"api="seed""#, r#"worker="w-1""#]), Some(1.0), "{text}");
    assert_eq!(value(&text, "agentic_sandbox_execution_duration_seconds_bucket", &[r#"le="+Inf""#, r#"api="seed""#, r#"worker="w-1""#]), Some(2.0));
    assert_eq!(value(&text, "agentic_sandbox_errors_total", &[r#"code="SANDBOX_NOT_FOUND""#, r#"worker="w-1""#]), Some(1.0));
    assert_eq!(value(&text, "agentic_sandbox_http_requests_total", &[r#"method="GET""#, r#"route="/sandbox/{id}/status""#, r#"status="404""#, r#"worker="w-1""#]), Some(1.0));
    assert_eq!(value(&text, "agentic_sandbox_audit_lines_dropped_total", &[r#"worker="w-1""#]), Some(0.0));
    // gauges follow the server, not the past
    let text = m.render(&[], 0);
    assert_eq!(value(&text, "agentic_sandbox_sandboxes", &[r#"state="ready""#, r#"worker="w-1""#]), Some(0.0));
  }

  #[test]
  fn label_values_cannot_break_the_exposition() {
    let m = Metrics::new("w\"1");
    m.error("X\"} 1\nfake_metric 9");
    let text = m.render(&[], 0);
    assert!(!text.lines().any(|l| l.starts_with("fake_metric")), "{text}");
    assert_eq!(samples(&text).len(), text.lines().filter(|l| !l.starts_with('#')).count());
  }

  #[test]
  fn options() {
    let none = |_: &str| None;
    let d = ObsOptions::from_json(&Map::new(), true, &none).unwrap();
    assert_eq!(d.worker_id, hostname());
    assert!(!d.metrics_public && d.metrics_token.is_none() && d.audit_log.is_none());
    let o = json!({ "workerId": "w-2", "auditLog": "/tmp/a.jsonl", "metricsPublic": true, "metricsToken": "m-0123456789abcdef" });
    let s = ObsOptions::from_json(o.as_object().unwrap(), true, &none).unwrap();
    assert_eq!((s.worker_id.as_str(), s.audit_log.as_deref(), s.metrics_public), ("w-2", Some(std::path::Path::new("/tmp/a.jsonl")), true));
    assert!(!format!("{s:?}").contains("m-0123456789abcdef"));
    let env = |k: &str| (k == "SANDBOX_METRICS_TOKEN").then(|| "e-0123456789abcdef".to_string());
    assert_eq!(ObsOptions::from_json(&Map::new(), true, &env).unwrap().metrics_token.as_deref(), Some("e-0123456789abcdef"));
    assert_eq!(ObsOptions::from_json(&Map::new(), false, &env).unwrap().metrics_token, None);
    for (bad, want) in [
      (json!({ "workerId": "a b" }), "workerId must be"),
      (json!({ "auditLog": 1 }), "auditLog must be"),
      (json!({ "metricsPublic": "yes" }), "metricsPublic must be a boolean"),
      (json!({ "metricsToken": "short" }), "API keys need at least"),
    ] {
      let e = ObsOptions::from_json(bad.as_object().unwrap(), true, &none).unwrap_err();
      assert!(e.message.contains(want), "{bad}: {}", e.message);
      assert!(!e.message.contains("short\""), "{}", e.message);
    }
  }
}
