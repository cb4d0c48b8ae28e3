//! What the server holds: its manager, the tenants, the table of sandboxes it created (each with
//! its tenant, environment, lifetime and counters), and the work in flight that a shutdown waits
//! for.
//!
//! Work (creating a sandbox, an execution, a delete) runs in its own task, not in the request's
//! future: a client that goes away does not cancel a creation half-way (which could leave a
//! container no table knows) or free its execution slot while its command still runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::core::error::ErrorCode;
use crate::core::manager::Manager;
use crate::core::sandbox::AnySandbox;
use crate::server::audit::Audit;
use crate::server::auth::{Keys, Tenant};
use crate::server::error::{ApiError, Redactor};
use crate::server::metrics::Metrics;
use crate::server::options::ServerOptions;
use crate::server::quota::Permit;

/// One sandbox the server created, for one tenant.
pub struct Entry {
  pub id: String,
  pub tenant: Arc<Tenant>,
  /// as the client named it (`nodejs-18`)
  pub environment: String,
  pub template: String,
  pub sandbox: Arc<AnySandbox>,
  pub created_ms: f64,
  pub created: Instant,
  /// its lifetime as created (the end moves with [`AppState::reschedule`]: see [`Entry::expires_ms`])
  pub timeout: Duration,
  /// the end of its lifetime, milliseconds since the epoch
  end_ms: Mutex<f64>,
  /// execute requests
  pub executions: AtomicU64,
  /// commands run by them
  pub commands: AtomicU64,
  /// execute requests running now
  pub running: AtomicUsize,
  /// the tenant's sandbox slot, given back when the entry goes
  _slot: Permit,
  expiry: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Entry {
  /// The end of its lifetime: created + timeout, or where [`AppState::reschedule`] moved it.
  pub fn expires_ms(&self) -> f64 {
    *self.end_ms.lock().unwrap()
  }

  /// seed 004's status word: `ready` (running, idle), `busy` (an execution runs), `creating`,
  /// `stopped`, `destroyed`, `error`.
  pub fn status(&self) -> &'static str {
    use crate::core::types::State::*;
    match self.sandbox.state() {
      Running if self.running.load(Ordering::SeqCst) > 0 => "busy",
      Running => "ready",
      Created | Starting => "creating",
      Stopping | Stopped => "stopped",
      Destroyed => "destroyed",
      Error => "error",
    }
  }
}

/// Counts work in flight; a shutdown waits until it is zero.
pub struct InFlight {
  count: watch::Sender<usize>,
}

pub struct WorkGuard {
  count: watch::Sender<usize>,
}

impl Drop for WorkGuard {
  fn drop(&mut self) {
    self.count.send_modify(|n| *n -= 1);
  }
}

impl InFlight {
  fn new() -> Self {
    Self { count: watch::Sender::new(0) }
  }

  /// Counts work that outlives its request's future (a streamed process) until the guard drops.
  pub fn enter(&self) -> WorkGuard {
    self.count.send_modify(|n| *n += 1);
    WorkGuard { count: self.count.clone() }
  }

  pub fn count(&self) -> usize {
    *self.count.borrow()
  }

  /// True when nothing is in flight any more within `limit`.
  pub async fn idle_within(&self, limit: Duration) -> bool {
    let mut rx = self.count.subscribe();
    let idle = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await.is_ok();
    idle
  }
}

pub struct AppState {
  pub manager: Arc<Manager>,
  pub keys: Keys,
  pub opts: ServerOptions,
  pub redactor: Redactor,
  pub sandboxes: Mutex<HashMap<String, Arc<Entry>>>,
  pub work: InFlight,
  pub shutting_down: AtomicBool,
  /// true at the end of the shutdown budget: running executions are killed
  pub cancel: watch::Sender<bool>,
  pub started: Instant,
  /// `/v1`'s running processes
  pub v1: crate::server::v1::V1State,
  /// distributed mode: this server as a worker (set by `listen`)
  pub worker: std::sync::OnceLock<Arc<crate::server::cluster::Worker>>,
  pub metrics: Metrics,
  pub audit: Audit,
  /// the self-hosted E2B's sandboxes (src/server/e2b)
  pub e2b: crate::server::e2b::E2bState,
  /// its envd and control-plane routers, made at the first E2B request
  pub e2b_routers: std::sync::OnceLock<(axum::Router, axum::Router)>,
  me: Weak<AppState>,
}

impl AppState {
  /// A state without an audit file (its metrics labelled with `opts.obs.worker_id`).
  pub fn new(manager: Arc<Manager>, opts: ServerOptions, redactor: Redactor) -> Arc<Self> {
    let metrics = Metrics::new(&opts.obs.worker_id);
    let audit = Audit::open(None, &opts.obs.worker_id, metrics.audit_dropped.clone()).expect("no file to open");
    Self::observed(manager, opts, redactor, metrics, audit)
  }

  pub fn observed(manager: Arc<Manager>, opts: ServerOptions, redactor: Redactor, metrics: Metrics, audit: Audit) -> Arc<Self> {
    let keys = Keys::new(&opts.keys, opts.limits);
    Arc::new_cyclic(|me| Self {
      manager,
      keys,
      opts,
      redactor,
      sandboxes: Mutex::new(HashMap::new()),
      work: InFlight::new(),
      shutting_down: AtomicBool::new(false),
      cancel: watch::Sender::new(false),
      started: Instant::now(),
      v1: Default::default(),
      worker: std::sync::OnceLock::new(),
      metrics,
      audit,
      e2b: Default::default(),
      e2b_routers: std::sync::OnceLock::new(),
      me: me.clone(),
    })
  }

  /// Runs `fut` as tracked work in its own task (see the module docs) and waits for it. 503
  /// SHUTTING_DOWN once a shutdown began.
  pub async fn work<T, F>(&self, fut: F) -> Result<T, ApiError>
  where
    T: Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
  {
    if self.shutting_down.load(Ordering::SeqCst) {
      return Err(ApiError::shutting_down());
    }
    let guard = self.work.enter();
    let task = tokio::spawn(async move {
      let _guard = guard;
      fut.await
    });
    match task.await {
      Ok(r) => r,
      Err(e) => {
        tracing::error!(error = %e, "a request's task failed");
        Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "the request failed inside the server; see its log"))
      }
    }
  }

  /// `tenant`'s sandbox `id`; SANDBOX_NOT_FOUND for unknown ids and other tenants' alike.
  pub fn entry(&self, tenant: &Tenant, id: &str) -> Result<Arc<Entry>, ApiError> {
    let e = self.sandboxes.lock().unwrap().get(id).cloned();
    e.filter(|e| e.tenant.name == tenant.name).ok_or_else(|| ApiError::not_found(id))
  }

  /// `tenant`'s sandboxes, oldest first.
  pub fn entries_of(&self, tenant: &Tenant) -> Vec<Arc<Entry>> {
    let mut v: Vec<_> = self.sandboxes.lock().unwrap().values().filter(|e| e.tenant.name == tenant.name).cloned().collect();
    v.sort_by(|a, b| a.created_ms.total_cmp(&b.created_ms).then_with(|| a.id.cmp(&b.id)));
    v
  }

  pub fn all_entries(&self) -> Vec<Arc<Entry>> {
    self.sandboxes.lock().unwrap().values().cloned().collect()
  }

  /// A started sandbox of `template` for `tenant`, destroyed after `timeout`. QUOTA_EXCEEDED past
  /// the tenant's maxSandboxes. A sandbox that fails to start is destroyed at once.
  pub async fn create(&self, tenant: Arc<Tenant>, environment: String, template: String, timeout: Duration) -> Result<Arc<Entry>, ApiError> {
    let slot = tenant.sandboxes.try_acquire().ok_or_else(|| {
      ApiError::quota(format!(
        "this API key holds {} sandboxes, its limit; DELETE /sandbox/{{id}} one of them (GET /sandboxes lists them) or wait for one to time out",
        tenant.sandboxes.max()
      ))
    })?;
    let config = json!({ "template": template, "metadata": { "environment": environment } });
    let sb = self.manager.create(Some(&config))?;
    if let Err(e) = sb.start(None).await {
      if let Err(d) = self.manager.destroy(sb.id()).await {
        tracing::warn!(sandbox = sb.id(), error = %d, "destroying a sandbox that failed to start failed");
      }
      return Err(e.into());
    }
    Ok(self.add_entry(tenant, sb, environment, template, timeout, slot))
  }

  /// Puts a sandbox of the manager into `tenant`'s table, holding `slot`, destroyed after `timeout`.
  pub fn add_entry(&self, tenant: Arc<Tenant>, sb: Arc<AnySandbox>, environment: String, template: String, timeout: Duration, slot: Permit) -> Arc<Entry> {
    let created_ms = crate::core::logs::now_ms();
    let entry = Arc::new(Entry {
      id: sb.id().to_string(),
      tenant,
      environment,
      template,
      sandbox: sb,
      created_ms,
      created: Instant::now(),
      timeout,
      end_ms: Mutex::new(created_ms + timeout.as_secs_f64() * 1000.0),
      executions: AtomicU64::new(0),
      commands: AtomicU64::new(0),
      running: AtomicUsize::new(0),
      _slot: slot,
      expiry: Mutex::new(None),
    });
    self.sandboxes.lock().unwrap().insert(entry.id.clone(), entry.clone());
    let mut expiry = entry.expiry.lock().unwrap();
    *expiry = Some(self.expire_after(&entry.id, timeout));
    drop(expiry);
    entry
  }

  /// The timer that destroys sandbox `id` after `after`. It acts only while its own handle is the
  /// entry's `expiry` (a timer replaced by [`AppState::reschedule`] that woke anyway does
  /// nothing), and takes the handle first, so that `remove` does not abort the timer running it.
  /// Spawn it while holding the entry's `expiry` lock and store the handle before letting go.
  fn expire_after(&self, id: &str, after: Duration) -> tokio::task::AbortHandle {
    let me = self.me.clone();
    let id = id.to_string();
    let timer = tokio::spawn(async move {
      tokio::time::sleep(after).await;
      let Some(state) = me.upgrade() else { return };
      let entry = state.sandboxes.lock().unwrap().get(&id).cloned();
      let Some(entry) = entry else { return };
      {
        let mut expiry = entry.expiry.lock().unwrap();
        if expiry.as_ref().map(|h| h.id()) != tokio::task::try_id() {
          return;
        }
        expiry.take();
      }
      tracing::info!(sandbox = %id, "destroying a sandbox whose lifetime ended");
      if let Err(e) = state.remove(&id).await {
        tracing::warn!(sandbox = %id, error = %e.message, "destroying an expired sandbox failed");
      }
    });
    timer.abort_handle()
  }

  /// Moves the end of sandbox `id`'s lifetime to now + `from_now` (sooner or later than it was).
  /// False when the server has no such sandbox, or its lifetime has already ended (it is being
  /// destroyed).
  pub fn reschedule(&self, id: &str, from_now: Duration) -> bool {
    let Some(entry) = self.sandboxes.lock().unwrap().get(id).cloned() else {
      return false;
    };
    let mut expiry = entry.expiry.lock().unwrap();
    let Some(old) = expiry.take() else {
      return false;
    };
    old.abort();
    *entry.end_ms.lock().unwrap() = crate::core::logs::now_ms() + from_now.as_secs_f64() * 1000.0;
    *expiry = Some(self.expire_after(id, from_now));
    true
  }

  /// Adds a sandbox made elsewhere to `tenant`'s table (router tests without an engine).
  #[cfg(test)]
  pub fn adopt(&self, tenant: &Arc<Tenant>, sandbox: Arc<AnySandbox>, environment: &str) -> Arc<Entry> {
    let entry = Arc::new(Entry {
      id: sandbox.id().to_string(),
      tenant: tenant.clone(),
      environment: environment.to_string(),
      template: "base".into(),
      sandbox,
      created_ms: crate::core::logs::now_ms(),
      created: Instant::now(),
      timeout: Duration::from_secs(60),
      end_ms: Mutex::new(crate::core::logs::now_ms() + 60_000.0),
      executions: AtomicU64::new(0),
      commands: AtomicU64::new(0),
      running: AtomicUsize::new(0),
      _slot: tenant.sandboxes.try_acquire().expect("a free sandbox slot"),
      expiry: Mutex::new(None),
    });
    self.sandboxes.lock().unwrap().insert(entry.id.clone(), entry.clone());
    entry
  }

  /// Distributed mode: records a new sandbox of this worker in Redis (and the worker's new load).
  /// When Redis cannot record it, the sandbox is destroyed and the error (503
  /// PROVIDER_UNAVAILABLE) returned: no other worker could reach it.
  pub async fn announce(&self, entry: &Entry) -> Result<(), ApiError> {
    let Some(w) = self.worker.get() else {
      return Ok(());
    };
    if let Err(e) = w.cluster.claim(&entry.id, &entry.tenant.name).await {
      if let Err(d) = self.remove(&entry.id).await {
        tracing::warn!(sandbox = %entry.id, error = %d.message, "destroying a sandbox that Redis could not record failed");
      }
      return Err(e.into());
    }
    if let Err(e) = w.beat(self).await {
      tracing::warn!(error = %e.message, "distributed mode: publishing the new load failed");
    }
    Ok(())
  }

  /// Forget sandbox `id` and destroy it. False when the server has no such sandbox.
  pub async fn remove(&self, id: &str) -> Result<bool, ApiError> {
    let Some(entry) = self.sandboxes.lock().unwrap().remove(id) else {
      return Ok(false);
    };
    if let Some(t) = entry.expiry.lock().unwrap().take() {
      t.abort();
    }
    self.forget_e2b(id);
    let destroyed = self.manager.destroy(id).await;
    self.unannounce(&entry).await;
    destroyed?;
    Ok(true)
  }

  /// The self-hosted E2B forgets the E2B sandbox of server sandbox `id` (if it is one): gone from
  /// its list, and envd answers the edge's 502 for it.
  fn forget_e2b(&self, id: &str) {
    self.e2b.boxes.lock().unwrap().retain(|_, b| b.entry.id != id);
  }

  /// Distributed mode: removes a sandbox from Redis (best effort: an entry left behind points at
  /// this worker, which answers SANDBOX_NOT_FOUND for it).
  async fn unannounce(&self, entry: &Entry) {
    let Some(w) = self.worker.get() else {
      return;
    };
    if let Err(e) = w.cluster.forget(&entry.id, &entry.tenant.name).await {
      tracing::warn!(sandbox = %entry.id, error = %e.message, "distributed mode: removing a sandbox from Redis failed");
    }
    let _ = w.beat(self).await;
  }

  /// The end of a shutdown: executions still running are killed, every sandbox is destroyed.
  pub async fn destroy_everything(&self) -> Result<(), ApiError> {
    self.cancel.send_replace(true);
    let entries: Vec<_> = self.sandboxes.lock().unwrap().drain().map(|(_, e)| e).collect();
    for e in &entries {
      if let Some(t) = e.expiry.lock().unwrap().take() {
        t.abort();
      }
      self.forget_e2b(&e.id);
    }
    if let Some(w) = self.worker.get() {
      for e in &entries {
        let _ = w.cluster.forget(&e.id, &e.tenant.name).await;
      }
    }
    drop(entries);
    // the manager also has the sandboxes whose creation is still under way
    self.manager.destroy_all().await.map_err(ApiError::from)
  }

  /// The engine's answer: (reachable, message). Docker is pinged; other providers are not checked.
  pub async fn engine(&self) -> (String, Option<bool>, Option<String>) {
    let config = match crate::core::config::resolve(self.manager.defaults()) {
      Ok(c) => c,
      Err(e) => return ("?".into(), Some(false), Some(e.message)),
    };
    let provider = config.provider.as_str().to_string();
    if provider != "docker" {
      return (provider, None, Some("not checked for this provider".into()));
    }
    let socket = config.docker.socket_path.clone();
    let ping = async move {
      let docker = crate::providers::docker::connect(socket.as_deref()).await?;
      docker.ping().await.map_err(|e| crate::core::error::SandboxError::new(ErrorCode::ProviderUnavailable, format!("the Docker engine did not answer a ping: {e}")))
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
      Ok(Ok(_)) => (provider, Some(true), None),
      Ok(Err(e)) => (provider, Some(false), Some(self.redactor.redact(&e.message))),
      Err(_) => (provider, Some(false), Some("the Docker engine did not answer within 5 s".into())),
    }
  }

  pub fn templates(&self) -> Option<Value> {
    self.manager.defaults().get("templates").cloned()
  }
}
