//! The provider-independent sandbox manager: configuration layers, the sandbox table, and the
//! operations over all sandboxes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::core::config;
use crate::core::sandbox::{AnySandbox, SessionInfo};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::pool::{Pool, PoolHooks, PoolOptions};
use crate::core::types::{Health, Stats};

pub struct Manager {
  /// defaults < .sandboxrc.json < environment < constructor config
  defaults: Value,
  /// the same without the built-in defaults (what the user set), for `config::warnings`
  given: Value,
  /// distinct warnings about configuration that has no effect, oldest first (`manager.warnings`)
  warnings: Mutex<Vec<String>>,
  /// `createPool` defaults from seed 003's pool variables, read at construction
  pool_defaults: crate::core::pool::PoolDefaults,
  sandboxes: Mutex<Vec<Arc<AnySandbox>>>,
  pools: Mutex<Vec<Arc<Pool<AnySandbox>>>>,
  /// thread id → its session's sandbox (expired ones stay until closed, and are recreated on use)
  sessions: Mutex<HashMap<String, Arc<AnySandbox>>>,
  /// one creation at a time per thread id, so concurrent first calls share one sandbox
  session_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
  reaper_running: AtomicBool,
  /// makes the sandboxes' providers
  providers: Arc<crate::providers::Registry>,
}

/// The most warnings a manager keeps (`manager.warnings`); later ones are only logged.
pub const MAX_WARNINGS: usize = 500;

/// Adds the warnings not in `all` yet, each also logged once with `tracing::warn!`. At most
/// [`MAX_WARNINGS`] are kept; later ones are only logged.
fn record(all: &mut Vec<String>, warnings: Vec<String>) {
  for w in warnings {
    if all.contains(&w) {
      continue;
    }
    tracing::warn!("{w}");
    if all.len() < MAX_WARNINGS {
      all.push(w);
    }
  }
}

/// The default idle timeout of sessions (seed 003's SESSION_TIMEOUT_MINUTES).
pub const DEFAULT_SESSION_MINUTES: f64 = 30.0;

pub struct SessionOptions {
  pub user_id: String,
  pub thread_id: String,
  /// minutes; None: SESSION_TIMEOUT_MINUTES or 30
  pub timeout_minutes: Option<f64>,
  pub auto_retry: bool,
  pub config: Option<Value>,
  /// sessions take a sandbox from the group's own pool (and keep it: it leaves the pool)
  pub pool: Option<Arc<PoolGroup>>,
}

/// The idle timeout: the option, else SESSION_TIMEOUT_MINUTES, else 30 minutes.
pub fn session_timeout(minutes: Option<f64>, get: &dyn Fn(&str) -> Option<String>) -> Result<Duration> {
  let (m, what) = match minutes {
    Some(m) => (m, "timeoutMinutes".to_string()),
    None => match get("SESSION_TIMEOUT_MINUTES").filter(|v| !v.trim().is_empty()) {
      Some(raw) => (
        raw.trim().parse::<f64>().map_err(|_| {
          SandboxError::invalid_config(format!("environment variable SESSION_TIMEOUT_MINUTES={raw:?} is not a number of minutes"))
        })?,
        "SESSION_TIMEOUT_MINUTES".to_string(),
      ),
      None => (DEFAULT_SESSION_MINUTES, String::new()),
    },
  };
  if !(m.is_finite() && m > 0.0) {
    return Err(SandboxError::invalid_argument(format!("{what} must be a positive number of minutes (fractions allowed), got {m}")));
  }
  config::seconds(&what, m * 60.0, false)
}

/// How long an expired session stays recreatable through its old `Sandbox` object before the
/// manager forgets it: another idle timeout, and at least a minute.
pub fn forget_after(idle: Duration) -> Duration {
  idle.max(Duration::from_secs(60))
}

fn check_id(v: &str, what: &str) -> Result<()> {
  if v.trim().is_empty() || v.len() > 256 || v.contains('\0') {
    return Err(SandboxError::invalid_argument(format!("{what} must be a non-empty string of at most 256 bytes, got {v:?}")));
  }
  Ok(())
}

pub type SandboxPool = Pool<AnySandbox>;

/// The manager of sandboxes and pools constructed directly (`new DockerSandbox(config)`,
/// `new SandboxPool(options)`): made on first use like `new SandboxManager()` (defaults from
/// `.sandboxrc.json` and the environment). An invalid configuration fails each such
/// constructor with its error; it is not remembered.
pub fn shared() -> Result<Arc<Manager>> {
  static SHARED: Mutex<Option<Arc<Manager>>> = Mutex::new(None);
  let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
  if let Some(m) = &*shared {
    return Ok(m.clone());
  }
  let made = Arc::new(Manager::new(None)?);
  *shared = Some(made.clone());
  Ok(made)
}

/// What the `SandboxPool` class holds: the pool of its own configuration, plus one pool per
/// other configuration that `acquire(config)` asked for (seed 000: `new SandboxPool()` then
/// `pool.acquire(config)`). Those pools are made on first use, with no warm sandboxes (`min` and
/// `initial` 0: a released sandbox is kept for the next acquire of the same configuration) and
/// the group's `max` and timeouts. A configuration is the same when its JSON is (keys sorted).
pub struct PoolGroup {
  manager: Arc<Manager>,
  config: Option<Value>,
  opts: PoolOptions,
  base: Arc<SandboxPool>,
  others: Mutex<HashMap<String, Arc<SandboxPool>>>,
}

impl PoolGroup {
  /// Fills the group's own pool to its `min` / `initial` (see [`Pool::fill`]).
  pub async fn fill(&self) -> Result<()> {
    self.base.fill().await
  }

  /// A started sandbox from the pool of `config` merged over the group's configuration as a
  /// createSandbox config is merged over the defaults (`env` replaces, `limits` merge key by key);
  /// the group's own pool when `config` is absent or `{}`.
  pub async fn acquire(&self, config: Option<Value>, timeout: Option<Duration>) -> Result<Arc<AnySandbox>> {
    let pool = match config.filter(|c| c.as_object().is_some_and(|o| !o.is_empty())) {
      None => self.base.clone(),
      Some(over) => self.pool_for(over)?,
    };
    pool.acquire(timeout).await
  }

  fn pool_for(&self, over: Value) -> Result<Arc<SandboxPool>> {
    if self.base.is_closed() {
      return Err(SandboxError::new(ErrorCode::PoolClosed, "the sandbox pool was destroyed; create a new pool"));
    }
    let key = over.to_string();
    let mut others = self.others.lock().unwrap();
    if let Some(p) = others.get(&key).filter(|p| !p.is_closed()) {
      return Ok(p.clone());
    }
    let config = match &self.config {
      Some(base) => config::merge(base, &over),
      None => over,
    };
    let opts = PoolOptions { min: 0, initial: 0, ..self.opts.clone() };
    let pool = self.manager.new_pool(Some(config), opts)?;
    others.insert(key, pool.clone());
    Ok(pool)
  }

  fn pools(&self) -> Vec<Arc<SandboxPool>> {
    std::iter::once(self.base.clone()).chain(self.others.lock().unwrap().values().cloned()).collect()
  }

  /// Gives `sb` back to the pool it came from (an unknown sandbox: INVALID_ARGUMENT from the
  /// group's own pool).
  pub async fn release(&self, sb: Arc<AnySandbox>) -> Result<()> {
    let pool = self.pools().into_iter().find(|p| p.contains(sb.id())).unwrap_or_else(|| self.base.clone());
    pool.release(sb).await
  }

  /// Destroys every pool of the group, concurrently; the first failure is returned.
  pub async fn destroy(&self) -> Result<()> {
    let pools = self.pools();
    for p in &pools {
      self.manager.drop_pool(p);
    }
    let results = futures_util::future::join_all(pools.iter().map(|p| p.destroy())).await;
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
  }

  /// The group's pools added up; `min` and `max` are the group's own pool's.
  pub fn stats(&self) -> crate::core::pool::PoolStats {
    let others: Vec<_> = self.others.lock().unwrap().values().cloned().collect();
    others.iter().map(|p| p.stats()).fold(self.base.stats(), |mut sum, s| {
      sum.idle += s.idle;
      sum.in_use += s.in_use;
      sum.creating += s.creating;
      sum.waiting += s.waiting;
      sum
    })
  }
}

impl Manager {
  /// Reads `.sandboxrc.json`, the environment (also seed 003's variables, pool defaults included)
  /// and `user_defaults`, normalised alike (`config::normalize`), and validates the result.
  /// `debug: true` / `verbose: true` raise the library's log level (`logging::raise_to`).
  pub fn new(user_defaults: Option<&Value>) -> Result<Self> {
    Self::with_config_file(user_defaults, None)
  }

  /// [`Manager::new`] reading the configuration file `file` instead of `$SANDBOX_CONFIG_FILE` /
  /// `./.sandboxrc.json` (when given: a missing file is then INVALID_CONFIG).
  pub fn with_config_file(user_defaults: Option<&Value>, file: Option<&std::path::Path>) -> Result<Self> {
    let file = file.map(|f| f.to_string_lossy().into_owned());
    let get = |k: &str| match (&file, k) {
      (Some(f), "SANDBOX_CONFIG_FILE") => Some(f.clone()),
      _ => std::env::var(k).ok(),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let layers = config::manager_layers(&get, &cwd, user_defaults)?;
    let defaults = layers.merged;
    let resolved = config::resolve(&defaults)?;
    let log_level = config::log_level(&defaults)?;
    let pool_defaults = crate::core::pool::PoolDefaults::from_env(&get)?;
    if let Some(level) = log_level {
      crate::core::logging::raise_to(level);
    }
    if let Some(every) = resolved.docker.reaper_interval {
      crate::providers::docker::reaper::set_interval(resolved.docker.socket_path.as_deref(), every);
    }
    let mut warnings = layers.warnings;
    warnings.extend(config::warnings(&resolved, &layers.given, None));
    let mut noted = Vec::new();
    record(&mut noted, warnings);
    Ok(Self {
      defaults,
      given: layers.given,
      warnings: Mutex::new(noted),
      pool_defaults,
      sandboxes: Mutex::new(Vec::new()),
      pools: Mutex::new(Vec::new()),
      sessions: Mutex::new(HashMap::new()),
      session_locks: Mutex::new(HashMap::new()),
      reaper_running: AtomicBool::new(false),
      providers: Arc::new(crate::providers::Registry::default()),
    })
  }

  /// The providers this manager makes sandboxes on (register JavaScript providers here).
  pub fn providers(&self) -> &crate::providers::Registry {
    &self.providers
  }

  pub fn defaults(&self) -> &Value {
    &self.defaults
  }

  /// Every distinct warning so far about configuration that has no effect (see
  /// `config::warnings`), oldest first.
  pub fn warnings(&self) -> Vec<String> {
    self.warnings.lock().unwrap().clone()
  }

  /// Records the warnings not seen before (see [`record`]).
  fn note(&self, warnings: Vec<String>) {
    record(&mut self.warnings.lock().unwrap(), warnings);
  }

  pub fn pool_defaults(&self) -> &crate::core::pool::PoolDefaults {
    &self.pool_defaults
  }

  /// A new sandbox of this manager (not started). Destroying it, through the manager or directly,
  /// removes it from the manager's tables.
  ///
  /// `config` is normalised like the file (`config::normalize`, with `${VAR}` read now); its
  /// warnings are recorded once the sandbox exists.
  pub fn create(self: &Arc<Self>, config: Option<&Value>) -> Result<Arc<AnySandbox>> {
    let (layer, mut warnings) = match config {
      Some(v) if !v.is_null() => {
        if !v.is_object() {
          return Err(SandboxError::invalid_config("config must be an object"));
        }
        config::normalize(v.clone(), "the createSandbox config", &|k| std::env::var(k).ok())?
      }
      _ => (Value::Null, Vec::new()),
    };
    let merged = config::merge(&self.defaults, &layer);
    let cfg = config::resolve(&merged)?;
    warnings.extend(config::warnings(&cfg, &config::merge(&self.given, &layer), Some(&layer)));
    let sb = Arc::new(AnySandbox::new(&cfg, self.providers.clone())?);
    self.note(warnings);
    let weak = Arc::downgrade(self);
    sb.on_destroyed(Box::new(move |id: &str| {
      if let Some(m) = weak.upgrade() {
        m.destroyed(id);
      }
    }));
    self.sandboxes.lock().unwrap().push(sb.clone());
    Ok(sb)
  }

  /// Re-attach to the persistent sandbox `id` on this manager's Docker engine, made by any
  /// process (README "Persistent sandboxes"); the sandbox this manager already holds under that
  /// id when there is one (and the engine still runs it). Its configuration is rebuilt from what the container records, over
  /// this manager's `docker` and `limits` defaults (per-command defaults such as
  /// `limits.timeoutSeconds` are the connecting manager's).
  pub async fn connect(self: &Arc<Self>, id: &str) -> Result<Arc<AnySandbox>> {
    let docker = crate::providers::docker::connect(self.docker_socket().as_deref()).await?;
    // asked of the engine also when held: a sandbox whose lifetime ended is not found
    let found = crate::providers::docker::persistent::find(&docker, id).await?;
    if let Some(sb) = self.get(id) {
      return Ok(sb);
    }
    let base = serde_json::json!({ "docker": self.defaults.get("docker"), "limits": self.defaults.get("limits") });
    let cfg = config::resolve(&config::merge(&config::merge(&config::defaults(), &base), &found.record.config_layer(&found.env)))?;
    let sb = Arc::new(AnySandbox::adopt(&cfg, self.providers.clone(), id)?);
    sb.reconnect().await?;
    let weak = Arc::downgrade(self);
    sb.on_destroyed(Box::new(move |id: &str| {
      if let Some(m) = weak.upgrade() {
        m.destroyed(id);
      }
    }));
    // two connects of the same id at once: the first one registered wins, the other lets go
    let mut all = self.sandboxes.lock().unwrap();
    if let Some(existing) = all.iter().find(|s| s.id() == id).cloned() {
      drop(all);
      // dropping it ends its guest connection; the sandbox itself stays
      drop(sb);
      return Ok(existing);
    }
    all.push(sb.clone());
    Ok(sb)
  }

  /// The persistent sandboxes on this manager's Docker engine that it does not hold
  /// (`list({ includeDetached: true })`).
  pub async fn detached(&self) -> Result<Vec<crate::providers::docker::persistent::Detached>> {
    let docker = crate::providers::docker::connect(self.docker_socket().as_deref()).await?;
    let held: Vec<String> = self.list().iter().map(|s| s.id().to_string()).collect();
    Ok(crate::providers::docker::persistent::list(&docker).await?.into_iter().filter(|d| !held.contains(&d.id)).collect())
  }

  fn docker_socket(&self) -> Option<String> {
    self.defaults.get("docker").and_then(|d| d.get("socketPath")).and_then(|v| v.as_str()).map(str::to_string)
  }

  /// A sandbox of this manager was destroyed (by whoever): forget it everywhere. A pool that
  /// holds it frees its slot; a session of it ends.
  fn destroyed(&self, id: &str) {
    self.forget(id);
    let threads: Vec<String> = {
      let mut sessions = self.sessions.lock().unwrap();
      let threads: Vec<String> = sessions.iter().filter(|(_, s)| s.id() == id).map(|(t, _)| t.clone()).collect();
      threads.iter().for_each(|t| {
        sessions.remove(t);
      });
      threads
    };
    if !threads.is_empty() {
      let mut locks = self.session_locks.lock().unwrap();
      threads.iter().for_each(|t| {
        locks.remove(t);
      });
    }
    let pools = self.pools.lock().unwrap().clone();
    for p in pools {
      p.discard(id);
    }
  }

  pub fn get(&self, id: &str) -> Option<Arc<AnySandbox>> {
    self.sandboxes.lock().unwrap().iter().find(|s| s.id() == id).cloned()
  }

  pub fn list(&self) -> Vec<Arc<AnySandbox>> {
    self.sandboxes.lock().unwrap().clone()
  }

  fn forget(&self, id: &str) {
    self.sandboxes.lock().unwrap().retain(|s| s.id() != id);
  }

  /// Unknown ids resolve (like the proof of concept). A failed destroy keeps the entry. Bounded
  /// like every destroy of the manager (see `AnySandbox::destroy_within`).
  pub async fn destroy(&self, id: &str) -> Result<()> {
    let Some(sb) = self.get(id) else {
      tracing::warn!(sandbox = id, "destroySandbox: no such sandbox");
      return Ok(());
    };
    sb.destroy_within(crate::core::sandbox::teardown_timeout()).await?;
    self.destroyed(id);
    Ok(())
  }

  /// The running sandbox of a conversation thread (seed 003): the same one for the same thread,
  /// created (or taken from `pool`) for a new thread, recreated for an expired one.
  pub async fn get_or_create_session(self: &Arc<Self>, o: SessionOptions) -> Result<Arc<AnySandbox>> {
    check_id(&o.user_id, "userId")?;
    check_id(&o.thread_id, "threadId")?;
    let idle = session_timeout(o.timeout_minutes, &|k| std::env::var(k).ok())?;
    if o.pool.is_none() {
      let layer = match &o.config {
        Some(v) if v.is_object() => config::normalize(v.clone(), "the getOrCreateSession config", &|k| std::env::var(k).ok())?.0,
        _ => Value::Null,
      };
      let cfg = config::resolve(&config::merge(&self.defaults, &layer))?;
      if cfg.provider == config::ProviderKind::Remote {
        return self.remote_session(o, cfg, idle).await;
      }
    }
    let lock = self.session_locks.lock().unwrap().entry(o.thread_id.clone()).or_default().clone();
    let _creating = lock.lock().await;
    let existing = self.sessions.lock().unwrap().get(&o.thread_id).cloned();
    if let Some(sb) = existing {
      let mut info = sb.activity().session.ok_or_else(|| SandboxError::provider("a session sandbox lost its session"))?;
      if info.user_id != o.user_id {
        return Err(SandboxError::new(
          ErrorCode::PermissionDenied,
          format!("thread {:?} belongs to another user; use a thread id of your own", o.thread_id),
        ));
      }
      if o.timeout_minutes.is_some() {
        info.idle = idle;
      }
      info.auto_retry = o.auto_retry;
      let expired = info.expired;
      sb.set_session(Some(info));
      if expired {
        sb.revive().await?;
      }
      drop(sb.enter().await?);
      return Ok(sb);
    }
    let sb = match &o.pool {
      Some(group) => {
        let pool = &group.base;
        let sb = pool.acquire(None).await?;
        pool.detach(&sb)?;
        sb
      }
      None => {
        let sb = self.create(o.config.as_ref())?;
        if let Err(e) = sb.start(None).await {
          let _ = sb.destroy().await;
          self.forget(sb.id());
          return Err(e);
        }
        sb
      }
    };
    sb.set_session(Some(SessionInfo {
      user_id: o.user_id.clone(),
      thread_id: o.thread_id.clone(),
      idle,
      auto_retry: o.auto_retry,
      expired: false,
      expired_at: None,
      closed: false,
    }));
    sb.logs.info(
      crate::core::logs::Source::System,
      format!("Session for thread {:?} of user {:?} (expires after {} idle)", o.thread_id, o.user_id, crate::core::sandbox::human(idle)),
    );
    drop(sb.enter().await?);
    self.sessions.lock().unwrap().insert(o.thread_id.clone(), sb.clone());
    self.start_reaper();
    Ok(sb)
  }

  /// A session of provider `remote`: the sandbox service keeps it (`POST /v1/sessions`, per API
  /// key, user and thread; its idle expiry and `autoRetry` run there), this manager holds a
  /// `Sandbox` attached to it. Its config goes with `installPackages` and `startupScript`, which
  /// the server runs when it creates the sandbox.
  async fn remote_session(self: &Arc<Self>, o: SessionOptions, cfg: config::SandboxConfig, idle: Duration) -> Result<Arc<AnySandbox>> {
    use crate::providers::remote::{client::Payload, Client, RemoteOptions, RemoteSandbox};
    let opts = RemoteOptions::resolve(cfg.remote.as_ref(), &|k| std::env::var(k).ok())?;
    let client = Arc::new(Client::new(opts)?);
    let lock = self.session_locks.lock().unwrap().entry(o.thread_id.clone()).or_default().clone();
    let _creating = lock.lock().await;
    let mut wire = crate::providers::remote::wire_config(&cfg);
    if !cfg.install_packages.is_empty() {
      wire["installPackages"] = serde_json::json!(cfg.install_packages);
    }
    if let Some(script) = &cfg.startup_script {
      wire["startupScript"] = serde_json::json!(script);
    }
    let body = serde_json::json!({
      "userId": o.user_id, "threadId": o.thread_id, "timeoutMinutes": o.timeout_minutes, "autoRetry": o.auto_retry, "config": wire,
    });
    let v = client.json(reqwest::Method::POST, "/v1/sessions", Payload::Json(body), false, crate::providers::remote::client::START_TIMEOUT).await?;
    let server_id = v["sandboxId"].as_str().filter(|s| !s.is_empty() && s.len() <= 256).ok_or_else(|| SandboxError::provider("the sandbox service answered a session without a sandboxId"))?.to_string();
    let existing = self.sessions.lock().unwrap().get(&o.thread_id).cloned();
    if let Some(sb) = existing {
      if sb.id() == server_id {
        return Ok(sb);
      }
      // the server made a new sandbox for the thread (the old one ended there)
      self.sessions.lock().unwrap().remove(&o.thread_id);
      self.forget(sb.id());
    }
    struct Attached(Mutex<Option<RemoteSandbox>>);
    impl crate::core::provider::ProviderFactory for Attached {
      fn create(&self, _config: &config::SandboxConfig, _id: Option<&str>) -> Result<Arc<dyn crate::core::provider::Provider>> {
        match self.0.lock().unwrap().take() {
          Some(s) => Ok(Arc::new(s)),
          None => Err(SandboxError::new(ErrorCode::SandboxNotFound, "this remote session's sandbox ended; call getOrCreateSession again")),
        }
      }
    }
    let provider = RemoteSandbox::attached(cfg.clone(), client, &server_id, Some(o.thread_id.clone()));
    let sb = Arc::new(AnySandbox::new(&cfg, Arc::new(Attached(Mutex::new(Some(provider)))))?);
    let weak = Arc::downgrade(self);
    sb.on_destroyed(Box::new(move |id: &str| {
      if let Some(m) = weak.upgrade() {
        m.destroyed(id);
      }
    }));
    sb.set_session(Some(SessionInfo {
      user_id: o.user_id.clone(),
      thread_id: o.thread_id.clone(),
      idle,
      auto_retry: o.auto_retry,
      expired: false,
      expired_at: None,
      closed: false,
    }));
    self.sandboxes.lock().unwrap().push(sb.clone());
    self.sessions.lock().unwrap().insert(o.thread_id.clone(), sb.clone());
    Ok(sb)
  }

  /// Destroy a thread's session. False when the thread has none.
  pub async fn close_session(&self, thread_id: &str) -> Result<bool> {
    let Some(sb) = self.sessions.lock().unwrap().remove(thread_id) else {
      return Ok(false);
    };
    self.session_locks.lock().unwrap().remove(thread_id);
    sb.set_session(None);
    sb.destroy_within(crate::core::sandbox::teardown_timeout()).await?;
    self.forget(sb.id());
    Ok(true)
  }

  pub fn sessions(&self) -> Vec<Arc<AnySandbox>> {
    self.sessions.lock().unwrap().values().cloned().collect()
  }

  /// An expired session nobody used for another `forget_after(idle)`: drop it from the tables so that a
  /// long-running service does not keep every conversation it ever had. Skipped while
  /// getOrCreateSession is working on the thread.
  fn forget_expired(&self, sb: &Arc<AnySandbox>) {
    let Some(mut info) = sb.activity().session else { return };
    if info.expired_at.is_none_or(|at| at.elapsed() < forget_after(info.idle)) {
      return;
    }
    let lock = self.session_locks.lock().unwrap().get(&info.thread_id).cloned();
    let _guard = match &lock {
      Some(l) => match l.try_lock() {
        Ok(g) => Some(g),
        Err(_) => return,
      },
      None => None,
    };
    {
      let mut sessions = self.sessions.lock().unwrap();
      if !sessions.get(&info.thread_id).is_some_and(|s| Arc::ptr_eq(s, sb)) {
        return;
      }
      sessions.remove(&info.thread_id);
    }
    self.session_locks.lock().unwrap().remove(&info.thread_id);
    self.forget(sb.id());
    info.closed = true;
    sb.logs.info(crate::core::logs::Source::System, "Expired session closed (unused for another timeout)");
    sb.set_session(Some(info));
  }

  /// Expires idle sessions, and forgets sessions that stayed expired for another timeout: checks
  /// a few times per shortest timeout (at most every 30 s, at least every 50 ms); ends when the
  /// manager is gone or has no session left.
  fn start_reaper(self: &Arc<Self>) {
    if self.reaper_running.swap(true, Ordering::SeqCst) {
      return;
    }
    let weak = Arc::downgrade(self);
    tokio::spawn(async move {
      loop {
        let Some(m) = weak.upgrade() else { return };
        // remote sessions expire on their server
        let all: Vec<_> = m.sessions().into_iter().filter(|s| s.config().provider != config::ProviderKind::Remote).collect();
        let shortest = all.iter().filter_map(|s| s.activity().session.map(|i| i.idle)).min();
        let Some(shortest) = shortest else {
          m.reaper_running.store(false, Ordering::SeqCst);
          // a session may have been added between the listing and the store
          if m.sessions().iter().any(|s| s.config().provider != config::ProviderKind::Remote) && !m.reaper_running.swap(true, Ordering::SeqCst) {
            continue;
          }
          return;
        };
        for s in &all {
          let Some(info) = s.activity().session else { continue };
          match info.expired_at {
            None => {
              if s.expire_if_idle().await {
                tracing::info!(sandbox = s.id(), "session expired");
              }
            }
            Some(_) => m.forget_expired(s),
          }
        }
        drop(m);
        let tick = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        tokio::time::sleep(tick).await;
      }
    });
  }

  /// A warm pool of started sandboxes with `config`, filled to `min` before it resolves. Its
  /// sandboxes are ordinary managed sandboxes (listed, destroyed by destroyAll, which also
  /// destroys the pool).
  pub async fn create_pool(self: &Arc<Self>, config: Option<Value>, opts: PoolOptions) -> Result<Arc<PoolGroup>> {
    let group = self.pool_group(config, opts)?;
    if let Err(e) = group.base.fill().await {
      let _ = group.destroy().await;
      return Err(e);
    }
    Ok(group)
  }

  /// A pool group (see [`PoolGroup`]) whose own pool is not filled yet: `fill` it, or let
  /// `acquire` create sandboxes on demand.
  pub fn pool_group(self: &Arc<Self>, config: Option<Value>, opts: PoolOptions) -> Result<Arc<PoolGroup>> {
    let base = self.new_pool(config.clone(), opts.clone())?;
    Ok(Arc::new(PoolGroup { manager: self.clone(), config, opts, base, others: Mutex::new(HashMap::new()) }))
  }

  /// A pool of sandboxes with `config` (validated now), registered with this manager so that
  /// `destroy_all` destroys it; empty until filled or acquired from.
  fn new_pool(self: &Arc<Self>, config: Option<Value>, opts: PoolOptions) -> Result<Arc<SandboxPool>> {
    // validate the configuration now rather than on the first acquire
    let probe = self.create(config.as_ref())?;
    self.forget(probe.id());
    let weak = Arc::downgrade(self);
    let create_weak = weak.clone();
    let hooks = PoolHooks {
      create: Arc::new(move || {
        let (weak, config) = (create_weak.clone(), config.clone());
        Box::pin(async move {
          let m = weak.upgrade().ok_or_else(|| SandboxError::new(ErrorCode::PoolClosed, "the pool's manager is gone"))?;
          let sb = m.create(config.as_ref())?;
          if let Err(e) = sb.start(None).await {
            m.forget(sb.id());
            return Err(e);
          }
          Ok(sb)
        })
      }),
      // the pool bounds the reset (a stuck one counts as failed)
      reset: Arc::new(|sb: Arc<AnySandbox>| Box::pin(async move { sb.reset().await })),
      destroy: Arc::new(move |sb: Arc<AnySandbox>| {
        let weak = weak.clone();
        Box::pin(async move {
          sb.destroy_within(crate::core::sandbox::teardown_timeout()).await?;
          if let Some(m) = weak.upgrade() {
            m.forget(sb.id());
          }
          Ok(())
        })
      }),
      id: Arc::new(|sb: &AnySandbox| sb.id().to_string()),
    };
    let pool = Pool::new(opts, hooks)?;
    self.pools.lock().unwrap().push(pool.clone());
    Ok(pool)
  }

  fn drop_pool(&self, pool: &Arc<SandboxPool>) {
    self.pools.lock().unwrap().retain(|p| !Arc::ptr_eq(p, pool));
  }

  /// Destroys every pool and every sandbox, all concurrently, each destroy bounded (see
  /// `AnySandbox::destroy_within`); all are attempted, failures are reported together.
  pub async fn destroy_all(&self) -> Result<()> {
    self.sessions.lock().unwrap().clear();
    self.session_locks.lock().unwrap().clear();
    let pools: Vec<_> = std::mem::take(&mut *self.pools.lock().unwrap());
    // a pool destroys its own sandboxes (and waits for those it is creating)
    let standalone: Vec<_> = self.list().into_iter().filter(|s| !pools.iter().any(|p| p.contains(s.id()))).collect();
    let limit = crate::core::sandbox::teardown_timeout();
    let (pool_results, results) = futures_util::future::join(
      futures_util::future::join_all(pools.iter().map(|p| p.destroy())),
      futures_util::future::join_all(standalone.iter().map(|s| async move { (s.id().to_string(), s.destroy_within(limit).await) })),
    )
    .await;
    let mut failed = Vec::new();
    for r in pool_results {
      if let Err(e) = r {
        failed.push(e.message);
      }
    }
    for (id, r) in results {
      match r {
        Ok(()) => self.forget(&id),
        Err(e) => failed.push(format!("{id}: {}", e.message)),
      }
    }
    if failed.is_empty() {
      Ok(())
    } else {
      Err(SandboxError::provider(format!("some sandboxes could not be destroyed: {}", failed.join("; "))))
    }
  }

  /// `manager.list`: every sandbox's status, filtered, sorted and cut.
  pub async fn list_status(&self, f: &crate::service::status::ListFilter) -> Vec<crate::service::status::Status> {
    let all = self.list();
    let st = futures_util::future::join_all(all.iter().map(|s| crate::service::status::status(s))).await;
    crate::service::status::filter_sort(st, f)
  }

  /// Stats of every sandbox; a sandbox that is not running reports zeros (PoC behaviour).
  pub async fn all_stats(&self) -> Vec<(String, String, Stats)> {
    let all = self.list();
    futures_util::future::join_all(all.iter().map(|s| async move {
      let st = if s.state() == crate::core::types::State::Running { s.stats().await.unwrap_or_default() } else { Stats::default() };
      (s.id().to_string(), s.config().provider.as_str().to_string(), st)
    }))
    .await
  }

  pub async fn health_all(&self) -> Vec<(String, String, Health)> {
    let all = self.list();
    futures_util::future::join_all(all.iter().map(|s| async move { (s.id().to_string(), s.config().provider.as_str().to_string(), s.health().await) })).await
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn session_timeouts() {
    let none = |_: &str| None;
    assert_eq!(session_timeout(None, &none).unwrap(), Duration::from_secs(30 * 60));
    assert_eq!(session_timeout(Some(0.5), &none).unwrap(), Duration::from_secs(30));
    let env = |k: &str| (k == "SESSION_TIMEOUT_MINUTES").then(|| "2".to_string());
    assert_eq!(session_timeout(None, &env).unwrap(), Duration::from_secs(120));
    assert_eq!(session_timeout(Some(1.0), &env).unwrap(), Duration::from_secs(60));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
      assert!(session_timeout(Some(bad), &none).is_err(), "{bad}");
    }
    assert_eq!(forget_after(Duration::from_secs(1)), Duration::from_secs(60));
    assert_eq!(forget_after(Duration::from_secs(1800)), Duration::from_secs(1800));
    let bad_env = |k: &str| (k == "SESSION_TIMEOUT_MINUTES").then(|| "soon".to_string());
    assert_eq!(session_timeout(None, &bad_env).unwrap_err().code, ErrorCode::InvalidConfig);
    assert!(check_id("", "threadId").is_err());
    assert!(check_id(&"x".repeat(257), "threadId").is_err());
    assert!(check_id("conversation_abc", "threadId").is_ok());
  }
}

#[cfg(test)]
mod forget_tests {
  use super::*;
  use std::time::Instant;

  /// An expired session is dropped from every table and its old Sandbox object refuses to
  /// recreate it; a live one is left alone. (No container is involved: the sandbox never started.)
  #[tokio::test]
  async fn expired_sessions_are_forgotten() {
    let m = Arc::new(Manager::new(Some(&serde_json::json!({ "image": "agentic-sandbox/busybox:1" }))).unwrap());
    let info = |thread: &str, expired: bool| SessionInfo {
      user_id: "u".into(),
      thread_id: thread.into(),
      idle: Duration::from_secs(1),
      auto_retry: true,
      expired,
      expired_at: expired.then(|| Instant::now() - Duration::from_secs(120)),
      closed: false,
    };
    let old = m.create(None).unwrap();
    old.set_session(Some(info("old", true)));
    let live = m.create(None).unwrap();
    live.set_session(Some(info("live", false)));
    for (t, s) in [("old", &old), ("live", &live)] {
      m.sessions.lock().unwrap().insert(t.into(), s.clone());
      m.session_locks.lock().unwrap().insert(t.into(), Default::default());
    }
    m.forget_expired(&old);
    m.forget_expired(&live);
    assert_eq!(m.sessions().len(), 1);
    assert!(m.get(old.id()).is_none() && m.get(live.id()).is_some());
    assert!(!m.session_locks.lock().unwrap().contains_key("old"));
    assert!(old.activity().session.unwrap().closed);
    let e = old.enter().await.err().expect("a closed session must not be recreated");
    assert_eq!(e.code, ErrorCode::SandboxNotFound);
    assert!(e.message.contains("getOrCreateSession"), "{}", e.message);
  }
}
