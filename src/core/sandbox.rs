//! One sandbox of any provider. The napi `Sandbox` class, the manager, pools and the agent
//! executor hold an `AnySandbox`; each method dispatches to the provider's implementation, and
//! what is the same for every provider (running a command to its end, the background-process
//! bookkeeping) lives here.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::core::config::SandboxConfig;
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::core::logs::{Level, LogBuffer, Source};
use crate::core::policy::CommandPolicy;
use crate::core::process::{to_result, OutputSink, Spawned};
use crate::core::provider::{ProgressFn, Provider, ProviderFactory};
use crate::core::types::{ExecOptions, ExecResult, FileInfo, FileOp, Health, ProcessEntry, State, Stats};

const MB: f64 = 1024.0 * 1024.0;
/// Largest file `readFile` returns (every provider), and the most any internal reader loads.
pub const MAX_READ_BYTES: usize = 256 * 1024 * 1024;

/// A thread-scoped session's bookkeeping (seed 003), kept on its sandbox.
#[derive(Debug, Clone)]
pub struct SessionInfo {
  pub user_id: String,
  pub thread_id: String,
  pub idle: Duration,
  pub auto_retry: bool,
  /// its container was destroyed after `idle` without use
  pub expired: bool,
  pub expired_at: Option<Instant>,
  /// the manager forgot it (an expired session unused for another `idle`): it cannot be
  /// recreated through this object any more
  pub closed: bool,
}

/// What `getStatus` and `manager.list` report besides the provider's numbers.
#[derive(Debug, Clone)]
pub struct Activity {
  pub created_ms: f64,
  pub started_ms: Option<f64>,
  pub last_activity_ms: f64,
  last_used: Instant,
  /// operations in progress (a session does not expire under them)
  busy: usize,
  pub executions: u64,
  pub successful: u64,
  pub failed: u64,
  pub total_duration_ms: f64,
  pub session: Option<SessionInfo>,
}

/// Marks the sandbox busy while an operation runs; records the activity at the end too.
pub struct Busy<'a>(&'a AnySandbox);

impl Drop for Busy<'_> {
  fn drop(&mut self) {
    let mut a = self.0.activity.lock().unwrap();
    a.busy -= 1;
    a.last_used = Instant::now();
    a.last_activity_ms = crate::core::logs::now_ms();
  }
}

pub struct AnySandbox {
  /// stable for the sandbox's life, also when a fallback provider took over at start
  id: String,
  /// replaced by a provider fallback in `start` and when an expired session is recreated
  backend: RwLock<Arc<dyn Provider>>,
  /// makes `backend` (and its replacements)
  factory: Arc<dyn ProviderFactory>,
  /// pids of background processes started through `spawn` (for `listProcesses`)
  background: Mutex<HashSet<u32>>,
  pub logs: Arc<LogBuffer>,
  activity: Mutex<Activity>,
  policy: Option<CommandPolicy>,
  /// serialises quota checks with their writes, so two writes cannot both pass the same check
  quota_lock: tokio::sync::Mutex<()>,
  /// held while a session's container is destroyed for idleness or recreated
  revive_lock: tokio::sync::Mutex<()>,
  /// called once after the sandbox is destroyed for good (its manager forgets it)
  on_destroyed: Mutex<Option<DestroyedHook>>,
  /// environment added by `configure`: every later command gets it (its own `env` wins)
  configured_env: Mutex<BTreeMap<String, String>>,
  /// the sandbox's code contexts (long-lived interpreters); they end with its processes
  pub contexts: crate::service::contexts::Registry,
}

pub type DestroyedHook = Box<dyn FnOnce(&str) + Send>;

/// Default of [`TEARDOWN_TIMEOUT_ENV`]: how long a destroy, or a pool's reset, may run before it
/// is abandoned.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);
pub const TEARDOWN_TIMEOUT_ENV: &str = "SANDBOX_DESTROY_TIMEOUT_SECONDS";
/// Longest a forced removal (after an abandoned destroy) may take.
pub const FORCE_REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `SANDBOX_DESTROY_TIMEOUT_SECONDS`, else [`TEARDOWN_TIMEOUT`].
pub fn teardown_timeout() -> Duration {
  std::env::var(TEARDOWN_TIMEOUT_ENV)
    .ok()
    .and_then(|v| v.trim().parse::<f64>().ok())
    .filter(|s| s.is_finite() && *s > 0.0 && *s <= crate::core::config::MAX_SECONDS)
    .map(Duration::from_secs_f64)
    .unwrap_or(TEARDOWN_TIMEOUT)
}

/// What every provider checks before starting a command: a command, a valid timeout (foreground
/// calls default to `limits.timeoutSeconds`; background ones have none unless given), the working
/// directory (relative to `workdir`), and valid environment names. Returns (timeout, directory).
pub fn prepare_spawn(
  config: &SandboxConfig,
  workdir: &str,
  command: &str,
  opts: &ExecOptions,
  background: bool,
) -> Result<(Option<Duration>, String)> {
  if command.is_empty() {
    return Err(SandboxError::invalid_argument("command must not be empty"));
  }
  let timeout = if background { opts.timeout } else { Some(opts.timeout.unwrap_or(config.limits.timeout_seconds)) };
  let timeout = timeout.map(|t| crate::core::config::seconds("timeout", t, false)).transpose()?;
  let dir = match &opts.workdir {
    Some(w) => crate::core::paths::resolve(workdir, w)?,
    None => workdir.to_string(),
  };
  for k in opts.env.keys() {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
      return Err(SandboxError::invalid_argument(format!("env key {k:?} is not a valid variable name")));
    }
  }
  Ok((timeout, dir))
}

/// NOT_SUPPORTED for a stream-only spawn (`ExecOptions::stream_only`, what code contexts need)
/// on a provider that does not implement it.
pub fn refuse_stream_only(opts: &ExecOptions, provider: &str) -> Result<()> {
  if opts.stream_only {
    return Err(SandboxError::new(
      ErrorCode::NotSupported,
      format!("provider {provider:?} cannot stream a long-lived process's output without keeping it, so code contexts are not supported on it; use runCode without `context` (a fresh interpreter per call), or a docker sandbox"),
    ));
  }
  Ok(())
}

/// Errors that mean "this provider cannot give us a sandbox now", not "the request is wrong".
fn is_availability(e: &SandboxError) -> bool {
  matches!(e.code, ErrorCode::ProviderUnavailable | ErrorCode::ProviderError | ErrorCode::QuotaExceeded)
}

impl AnySandbox {
  /// A new, not started sandbox of `config.provider`, made by `factory`.
  pub fn new(config: &SandboxConfig, factory: Arc<dyn ProviderFactory>) -> Result<Self> {
    Self::with_id(config, factory, None)
  }

  /// A sandbox object for the existing persistent sandbox `id`, to be re-attached with
  /// [`AnySandbox::reconnect`] instead of started.
  pub fn adopt(config: &SandboxConfig, factory: Arc<dyn ProviderFactory>, id: &str) -> Result<Self> {
    Self::with_id(config, factory, Some(id))
  }

  fn with_id(config: &SandboxConfig, factory: Arc<dyn ProviderFactory>, id: Option<&str>) -> Result<Self> {
    let backend = factory.create(config, id)?;
    let id = backend.id().to_string();
    let policy = match &config.command_policy {
      Some(p) => Some(CommandPolicy::new(p.allow.clone(), p.deny.clone())?),
      None => None,
    };
    let now = crate::core::logs::now_ms();
    let activity = Activity {
      created_ms: now,
      started_ms: None,
      last_activity_ms: now,
      last_used: Instant::now(),
      busy: 0,
      executions: 0,
      successful: 0,
      failed: 0,
      total_duration_ms: 0.0,
      session: None,
    };
    let logs = Arc::new(LogBuffer::default());
    logs.info(Source::System, format!("Sandbox {id} created ({} provider, image {})", config.provider.as_str(), config.image));
    backend.set_network_log(network_log(&logs));
    Ok(Self {
      id,
      backend: RwLock::new(backend),
      factory,
      background: Mutex::new(HashSet::new()),
      logs,
      activity: Mutex::new(activity),
      policy,
      quota_lock: tokio::sync::Mutex::new(()),
      revive_lock: tokio::sync::Mutex::new(()),
      on_destroyed: Mutex::new(None),
      configured_env: Mutex::new(BTreeMap::new()),
      contexts: Default::default(),
    })
  }

  /// Set what runs once when the sandbox is destroyed for good (through `destroy`, from any
  /// caller): its manager forgets it.
  pub fn on_destroyed(&self, hook: DestroyedHook) {
    *self.on_destroyed.lock().unwrap() = Some(hook);
  }

  fn destroyed(&self) {
    let hook = self.on_destroyed.lock().unwrap().take();
    if let Some(hook) = hook {
      hook(&self.id);
    }
  }

  pub fn activity(&self) -> Activity {
    self.activity.lock().unwrap().clone()
  }

  pub fn set_session(&self, info: Option<SessionInfo>) {
    self.activity.lock().unwrap().session = info;
  }

  /// Start an operation: recreate an expired session's container first (or fail with
  /// SANDBOX_NOT_FOUND when the session does not auto-retry), then mark the sandbox busy.
  pub async fn enter(&self) -> Result<Busy<'_>> {
    loop {
      {
        let mut a = self.activity.lock().unwrap();
        match &a.session {
          Some(s) if s.expired => {
            if s.closed {
              return Err(SandboxError::new(
                ErrorCode::SandboxNotFound,
                format!(
                  "the session of thread {:?} expired and was closed after another {} without use; call getOrCreateSession for a new one",
                  s.thread_id,
                  human(s.idle)
                ),
              ));
            }
            if !s.auto_retry {
              return Err(SandboxError::new(
                ErrorCode::SandboxNotFound,
                format!(
                  "the session of thread {:?} expired after {} idle and its sandbox was destroyed; call getOrCreateSession again (or use autoRetry: true)",
                  s.thread_id,
                  human(s.idle)
                ),
              ));
            }
          }
          _ => {
            a.busy += 1;
            a.last_used = Instant::now();
            a.last_activity_ms = crate::core::logs::now_ms();
            return Ok(Busy(self));
          }
        }
      }
      self.revive().await?;
    }
  }

  /// Recreate an expired session's sandbox: a new container with the same configuration (an
  /// empty workspace), started and provisioned again.
  pub async fn revive(&self) -> Result<()> {
    let _g = self.revive_lock.lock().await;
    let (expired, closed) = self.activity.lock().unwrap().session.as_ref().map_or((false, false), |s| (s.expired, s.closed));
    if !expired {
      return Ok(());
    }
    if closed {
      return Err(SandboxError::new(ErrorCode::SandboxNotFound, "this session was closed after it expired; call getOrCreateSession for a new one"));
    }
    let config = self.config();
    let same_id = Some(self.id.as_str()).filter(|id| id.starts_with(config.provider.as_str()));
    let backend = self.factory.create(&config, same_id)?;
    backend.set_network_log(network_log(&self.logs));
    *self.backend.write().unwrap() = backend;
    self.logs.info(Source::System, "Session expired earlier; recreating its sandbox (the workspace starts empty)");
    self.start(None).await?;
    if let Some(s) = self.activity.lock().unwrap().session.as_mut() {
      s.expired = false;
      s.expired_at = None;
    }
    Ok(())
  }

  /// Destroy a session's container when it has been idle for its timeout and nothing is running
  /// through the API. Returns true when it expired it now.
  pub async fn expire_if_idle(&self) -> bool {
    let due = |a: &Activity| a.busy == 0 && a.session.as_ref().is_some_and(|s| !s.expired && a.last_used.elapsed() >= s.idle);
    // the reaper asks every session on every tick: answer "not due" without the async lock
    if !due(&self.activity.lock().unwrap()) {
      return false;
    }
    let _g = self.revive_lock.lock().await;
    let idle = {
      let mut a = self.activity.lock().unwrap();
      if !due(&a) {
        return false;
      }
      match a.session.as_mut() {
        Some(s) => {
          s.expired = true;
          s.expired_at = Some(Instant::now());
          s.idle
        }
        _ => return false,
      }
    };
    self.logs.info(Source::System, format!("Session expired after {} without use; destroying its sandbox", human(idle)));
    // the session stays recreatable: its manager keeps it
    if let Err(e) = self.destroy_backend().await {
      tracing::warn!(sandbox = %self.id, error = %e, "destroying an expired session's sandbox failed");
    }
    true
  }

  /// When an idle session expires (None for sandboxes that are not sessions or already expired).
  /// When the sandbox goes away by itself: a session's idle expiry, or the end of a persistent
  /// sandbox's lifetime (the earlier of the two).
  pub fn expires_at_ms(&self) -> Option<f64> {
    let lifetime = self.backend().expires_at_ms();
    let a = self.activity.lock().unwrap();
    let idle = a.session.as_ref().filter(|s| !s.expired).map(|s| a.last_activity_ms + s.idle.as_secs_f64() * 1000.0);
    match (idle, lifetime) {
      (Some(i), Some(l)) => Some(i.min(l)),
      (i, l) => i.or(l),
    }
  }

  fn record(&self, r: &std::result::Result<ExecResult, SandboxError>) {
    let mut a = self.activity.lock().unwrap();
    a.executions += 1;
    match r {
      Ok(r) if r.exit_code == 0 && !r.timed_out => a.successful += 1,
      _ => a.failed += 1,
    }
    if let Ok(r) = r {
      a.total_duration_ms += r.duration_ms;
    }
  }

  fn backend(&self) -> Arc<dyn Provider> {
    self.backend.read().unwrap().clone()
  }

  pub fn id(&self) -> &str {
    &self.id
  }

  pub fn config(&self) -> SandboxConfig {
    self.backend().config().clone()
  }

  /// Replaces the egress rules of the running sandbox (README "Network"); the entries are
  /// checked first, so a bad one changes nothing.
  pub async fn update_network(&self, policy: crate::core::config::NetworkPolicy) -> Result<()> {
    crate::core::config::check_network(&policy)?;
    let _busy = self.enter().await?;
    let backend = self.backend();
    backend.update_network(policy.clone()).await?;
    self.logs.info(
      Source::System,
      format!("Network rules replaced: allowOut {:?}, denyOut {:?}", policy.allow_out, policy.deny_out),
    );
    Ok(())
  }

  /// The egress policy and counters (`None` without `network` rules).
  pub fn network_status(&self) -> Option<crate::core::provider::NetworkStatus> {
    self.backend().network_status()
  }

  /// The limits alone (the file API reads them on every write; `config()` clones everything).
  pub fn limits(&self) -> crate::core::config::ResourceLimits {
    self.backend().config().limits.clone()
  }

  pub fn workdir(&self) -> String {
    self.backend().config().workdir.clone()
  }

  pub fn state(&self) -> State {
    self.backend().state()
  }

  /// How commands run: 'guest' or 'exec' for Docker.
  pub fn engine_name(&self) -> String {
    self.backend().engine_name()
  }

  /// Starts the sandbox. When the provider cannot provide one for availability reasons (its
  /// service unreachable, 5xx, capacity or rate limits) on the first start, the configured
  /// `fallbackProviders` are tried in order; the sandbox keeps its id, and `provider` then names
  /// the provider that runs it.
  pub async fn start(&self, progress: Option<ProgressFn>) -> Result<()> {
    let first_start = self.state() == State::Created;
    let t0 = Instant::now();
    let r = self.start_any(progress, first_start).await;
    match &r {
      Ok(()) => {
        if first_start || self.activity.lock().unwrap().started_ms.is_none() {
          self.activity.lock().unwrap().started_ms = Some(crate::core::logs::now_ms());
        }
        self.logs.info(
          Source::System,
          format!("Sandbox started ({} provider, {} engine) in {} ms", self.config().provider.as_str(), self.engine_name(), t0.elapsed().as_millis()),
        );
        if first_start {
          if let Err(e) = self.provision().await {
            self.logs.push(Level::Error, Source::System, e.message.clone());
            let _ = self.destroy().await;
            return Err(e);
          }
        }
      }
      Err(e) => self.logs.push(Level::Error, Source::System, format!("Sandbox failed to start: {}", e.message)),
    }
    r
  }

  /// Re-attach to the running persistent sandbox this object was adopted for (instead of
  /// `start`; nothing is provisioned again).
  pub async fn reconnect(&self) -> Result<()> {
    let t0 = Instant::now();
    match self.backend().reconnect().await {
      Ok(()) => {
        self.activity.lock().unwrap().started_ms = Some(crate::core::logs::now_ms());
        self.logs.info(
          Source::System,
          format!("Re-attached to persistent sandbox {} ({} engine) in {} ms", self.id, self.engine_name(), t0.elapsed().as_millis()),
        );
        Ok(())
      }
      Err(e) => {
        self.logs.push(Level::Error, Source::System, format!("Could not re-attach: {}", e.message));
        Err(e)
      }
    }
  }

  /// `installPackages`, then `startupScript`, on the first start. A failure destroys the sandbox
  /// (its caller gets the installer's or the script's output in the error).
  async fn provision(&self) -> Result<()> {
    let config = self.config();
    if !config.install_packages.is_empty() {
      let pkgs = config.install_packages.join(" ");
      let (argv, opts) = installer(&config, &config.install_packages)?;
      self.logs.info(Source::System, format!("Installing packages with {}: {pkgs}", config.package_manager.map(|p| p.as_str()).unwrap_or("?")));
      let r = self.run_unchecked(&argv[0], &argv[1..], opts).await?;
      if r.exit_code != 0 {
        return Err(SandboxError::new(
          ErrorCode::ExecutionError,
          format!(
            "installing packages ({pkgs}) failed with exit code {}{}: {}; the sandbox was destroyed. Check the package names and that the sandbox can reach the package index",
            r.exit_code,
            if r.timed_out { " (timed out)" } else { "" },
            tail(&r)
          ),
        ));
      }
      self.logs.info(Source::System, format!("Installed packages: {pkgs}"));
    }
    if let Some(script) = &config.startup_script {
      self.logs.info(Source::System, "Running the startup script");
      let r = self.run_unchecked("/bin/sh", &["-c".to_string(), script.clone()], ExecOptions::default()).await?;
      self.logs.output(Source::Stdout, &r.stdout);
      self.logs.output(Source::Stderr, &r.stderr);
      if r.exit_code != 0 {
        return Err(SandboxError::new(
          ErrorCode::ExecutionError,
          format!(
            "the startup script failed with exit code {}{}: {}; the sandbox was destroyed",
            r.exit_code,
            if r.timed_out { " (timed out)" } else { "" },
            tail(&r)
          ),
        ));
      }
      self.logs.info(Source::System, "Startup script finished");
    }
    Ok(())
  }

  /// Run a command of ours (not the user's): no command policy, no execution counters.
  async fn run_unchecked(&self, command: &str, args: &[String], opts: ExecOptions) -> Result<ExecResult> {
    let p = self.backend().spawn(command, args, &opts, false, false, None).await?;
    Ok(to_result(p.wait().await?))
  }

  async fn start_any(&self, progress: Option<ProgressFn>, first_start: bool) -> Result<()> {
    let err = match self.start_backend(progress.clone()).await {
      Ok(()) => return Ok(()),
      Err(e) => e,
    };
    let config = self.config();
    if !first_start || config.fallback_providers.is_empty() || !is_availability(&err) {
      return Err(err);
    }
    let mut tried = vec![format!("{}: {}", config.provider.as_str(), err.message)];
    for kind in &config.fallback_providers {
      tracing::warn!(sandbox = %self.id, from = config.provider.as_str(), to = kind.as_str(), error = %err, "provider unavailable; trying a fallback provider");
      let _ = self.destroy_backend().await;
      let backend = match self.factory.create(&SandboxConfig { provider: kind.clone(), ..config.clone() }, None) {
        Ok(b) => b,
        Err(e) => {
          tried.push(format!("{}: {}", kind.as_str(), e.message));
          continue;
        }
      };
      backend.set_network_log(network_log(&self.logs));
      *self.backend.write().unwrap() = backend;
      match self.start_backend(progress.clone()).await {
        Ok(()) => return Ok(()),
        Err(e) => tried.push(format!("{}: {}", kind.as_str(), e.message)),
      }
    }
    Err(SandboxError::new(err.code, format!("no provider could start the sandbox ({})", tried.join("; "))))
  }

  async fn start_backend(&self, progress: Option<ProgressFn>) -> Result<()> {
    self.backend().start(progress).await
  }

  pub async fn stop(&self) -> Result<()> {
    self.contexts.interpreters_end();
    let r = self.backend().stop().await;
    if r.is_ok() {
      self.logs.info(Source::System, "Sandbox stopped");
    }
    r
  }

  /// Destroy for good: the provider's destroy, then the manager forgets the sandbox (also when
  /// this is called directly rather than through `manager.destroySandbox`). A failed destroy
  /// keeps it listed.
  pub async fn destroy(&self) -> Result<()> {
    let r = self.destroy_backend().await;
    if r.is_ok() {
      self.destroyed();
    }
    r
  }

  /// The provider's destroy alone (an expiring session, a provider fallback: the sandbox object lives on).
  async fn destroy_backend(&self) -> Result<()> {
    self.contexts.clear();
    let was = self.state();
    let r = self.backend().destroy().await;
    if r.is_ok() && was != State::Destroyed {
      self.logs.info(Source::System, "Sandbox destroyed");
    }
    r
  }

  /// `destroy` within a bounded time: after `limit` the destroy is abandoned (it goes on in the
  /// background and finishes whenever what blocks it ends) and the sandbox's resources are removed
  /// through the engine directly, within [`FORCE_REMOVE_TIMEOUT`]. PROVIDER_ERROR naming the
  /// sandbox when that fails too.
  pub async fn destroy_within(self: &Arc<Self>, limit: Duration) -> Result<()> {
    let me = self.clone();
    let task = tokio::spawn(async move { me.destroy().await });
    let err = match tokio::time::timeout(limit, task).await {
      Ok(Ok(r)) => return r,
      Ok(Err(e)) => format!("its destroy task failed ({e})"),
      Err(_) => format!("its destroy did not finish within {}", human(limit)),
    };
    tracing::warn!(sandbox = %self.id, reason = %err, "forcing the removal of a sandbox");
    self.logs.push(Level::Warn, Source::System, format!("Destroy abandoned: {err}; removing the sandbox's resources directly"));
    let backend = self.backend();
    let forced = tokio::time::timeout(FORCE_REMOVE_TIMEOUT, backend.force_remove()).await;
    match forced {
      Ok(Ok(_)) => {
        self.logs.info(Source::System, "Sandbox resources removed (forced)");
        self.destroyed();
        Ok(())
      }
      Ok(Err(e)) => Err(SandboxError::provider(format!("sandbox {}: {err}, and removing its resources directly failed: {}", self.id, e.message))),
      Err(_) => Err(SandboxError::provider(format!(
        "sandbox {}: {err}, and removing its resources directly did not finish within {}; remove them with `npx agentic-sandbox prune`",
        self.id,
        human(FORCE_REMOVE_TIMEOUT)
      ))),
    }
  }

  pub async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    self.check_policy(command, args)?;
    let _busy = self.enter().await?;
    self.spawn_raw(command, args, opts, background, open_stdin, sink).await
  }

  /// Starts a long-lived process of ours for something the user asked for (a code context's
  /// interpreter): the command policy judges `shown`, and the process is not listed as one of
  /// the user's background processes. Stream-only (the sink alone gets its output), stdin open,
  /// and no timeout unless `opts` has one (it runs as a background process of the provider).
  pub async fn spawn_as(&self, shown: (&str, &[String]), command: &str, args: &[String], opts: &ExecOptions, sink: Option<OutputSink>) -> Result<Spawned> {
    self.check_policy(shown.0, shown.1)?;
    let _busy = self.enter().await?;
    let opts = ExecOptions { stream_only: true, ..opts.clone() };
    self.spawn_raw(command, args, &opts, false, true, sink).await
  }

  /// The command policy's verdict on a command line (logged when it refuses).
  pub fn check_policy(&self, command: &str, args: &[String]) -> Result<()> {
    if let Some(policy) = &self.policy {
      if let Err(e) = policy.check(command, args) {
        self.logs.push(Level::Warn, Source::Execution, format!("Refused by the command policy: {}", e.message));
        return Err(e);
      }
    }
    Ok(())
  }

  /// Start a command on the provider; the caller checked the policy and holds a `Busy`.
  async fn spawn_raw(
    &self,
    command: &str,
    args: &[String],
    opts: &ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<OutputSink>,
  ) -> Result<Spawned> {
    let merged;
    let opts = {
      let extra = self.configured_env.lock().unwrap();
      if extra.is_empty() {
        opts
      } else {
        let mut o = opts.clone();
        for (k, v) in extra.iter() {
          o.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        merged = o;
        &merged
      }
    };
    let p = self.backend().spawn(command, args, opts, background || opts.stream_only, open_stdin, sink).await?;
    // (a stream-only process is one of ours, e.g. a code context, not the user's)
    if background && p.pid != 0 {
      self.background.lock().unwrap().insert(p.pid);
      self.logs.info(Source::Execution, format!("Started background process {}: {}", p.pid, crate::core::policy::command_line(command, args)));
    }
    Ok(p)
  }

  pub async fn execute(&self, command: &str, args: &[String], opts: ExecOptions) -> Result<ExecResult> {
    self.execute_with(command, args, opts, None, None).await
  }

  /// Run a command to its end, streaming output to `sink`; `abort` kills its process group and
  /// rejects with ABORTED.
  pub async fn execute_with(
    &self,
    command: &str,
    args: &[String],
    opts: ExecOptions,
    sink: Option<OutputSink>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
  ) -> Result<ExecResult> {
    self.check_policy(command, args)?;
    self.run_logged(&crate::core::policy::command_line(command, args), command, args, opts, sink, abort).await
  }

  /// Runs a wrapper script of ours (runCode, runTests) for a command the user asked for: the
  /// command policy judges `shown` (what the user asked to run), the log says `label`.
  #[allow(clippy::too_many_arguments)] // execute's seven, plus what the policy and log show
  pub async fn execute_as(
    &self,
    shown: (&str, &[String]),
    label: &str,
    command: &str,
    args: &[String],
    opts: ExecOptions,
    sink: Option<OutputSink>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
  ) -> Result<ExecResult> {
    self.check_policy(shown.0, shown.1)?;
    self.run_logged(label, command, args, opts, sink, abort).await
  }

  /// Adds `env` to the environment of every later command (a command's own `env` wins).
  pub fn add_env(&self, env: &BTreeMap<String, String>) {
    self.configured_env.lock().unwrap().extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
  }

  /// The environment `configure` added.
  pub fn configured_env(&self) -> BTreeMap<String, String> {
    self.configured_env.lock().unwrap().clone()
  }

  async fn run_logged(
    &self,
    label: &str,
    command: &str,
    args: &[String],
    mut opts: ExecOptions,
    sink: Option<OutputSink>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
  ) -> Result<ExecResult> {
    let stdin = opts.stdin.take();
    // busy from before the spawn to the end: a session cannot expire (or be recreated) in between
    let _busy = self.enter().await?;
    let p = self.spawn_raw(command, args, &opts, false, stdin.is_some(), sink).await?;
    self.logs.info(Source::Execution, format!("Running: {label}"));
    let r = self.finish(command, p, stdin, abort).await;
    self.record(&r);
    match &r {
      Ok(out) => {
        self.logs.output(Source::Stdout, &out.stdout);
        self.logs.output(Source::Stderr, &out.stderr);
        let (level, what) = if out.timed_out {
          (Level::Error, "timed out".to_string())
        } else if out.exit_code == 0 {
          (Level::Info, "finished".to_string())
        } else {
          (Level::Error, format!("failed with exit code {}", out.exit_code))
        };
        self.logs.push(level, Source::Execution, format!("{label} {what} in {} ms", out.duration_ms.round()));
      }
      Err(e) => self.logs.push(Level::Error, Source::Execution, format!("{label}: {}", e.message)),
    }
    r
  }

  async fn finish(
    &self,
    command: &str,
    p: Spawned,
    stdin: Option<Vec<u8>>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
  ) -> Result<ExecResult> {
    if let Some(data) = stdin {
      let _ = p.stdin(data);
      let _ = p.close_stdin();
    }
    let out = match abort {
      None => p.wait().await?,
      Some(abort) => {
        tokio::select! {
          r = p.wait() => r?,
          Ok(()) = abort => {
            let _ = p.signal(9);
            let _ = tokio::time::timeout(Duration::from_secs(10), p.wait()).await;
            return Err(SandboxError::new(ErrorCode::Aborted, format!("{command} was aborted by its AbortSignal; its process group was killed")));
          }
        }
      }
    };
    Ok(to_result(out))
  }

  /// Forget a background process once it ended (for `listProcesses`).
  pub fn background_ended(&self, pid: u32) {
    self.background.lock().unwrap().remove(&pid);
  }

  pub fn is_background(&self, pid: u32) -> bool {
    self.background.lock().unwrap().contains(&pid)
  }

  /// Writes a file, enforcing the workspace quotas (`limits.maxFileSizeMB`, `maxTotalFiles`,
  /// `maxWorkspaceSizeMB`) first: a write over a limit fails with QUOTA_EXCEEDED and writes nothing.
  pub async fn write_file(&self, path: &str, content: Vec<u8>) -> FileOp {
    let _busy = match self.enter().await {
      Ok(b) => b,
      Err(e) => return self.file_failure(path, e),
    };
    let limits = self.limits();
    if let Some(max) = limits.max_file_size_mb {
      if content.len() as f64 > max * MB {
        return self.file_failure(
          path,
          SandboxError::new(
            ErrorCode::QuotaExceeded,
            format!("{path} is {} bytes, over limits.maxFileSizeMB ({max} MB = {} bytes); write a smaller file or raise the limit (MAX_FILE_SIZE_MB)", content.len(), (max * MB) as u64),
          ),
        );
      }
    }
    if limits.max_total_files.is_none() && limits.max_workspace_size_mb.is_none() {
      return self.backend().write_file(path, content).await;
    }
    let _q = self.quota_lock.lock().await;
    if let Err(e) = self.check_workspace_quota(&limits, path, content.len() as u64).await {
      return self.file_failure(path, e);
    }
    self.backend().write_file(path, content).await
  }

  /// A failed file operation, reported at the path it resolves to (as the providers do).
  fn file_failure(&self, path: &str, e: SandboxError) -> FileOp {
    let resolved = crate::core::paths::resolve(&self.workdir(), path).unwrap_or_else(|_| path.to_string());
    FileOp::failed_with(&resolved, e)
  }

  /// Would writing `size` bytes at `path` keep the workspace within its file-count and size limits?
  async fn check_workspace_quota(&self, limits: &crate::core::config::ResourceLimits, path: &str, size: u64) -> Result<()> {
    let wd = self.workdir().trim_end_matches('/').to_string();
    let target = crate::core::paths::resolve(&wd, path)?;
    let Some(rel) = target.strip_prefix(&format!("{wd}/")) else {
      return Ok(()); // outside the workspace: not counted
    };
    let files = self.backend().list_files_detailed(&wd, true, true).await?;
    let (mut count, mut total, mut existing) = (0u64, 0u64, None);
    for f in files.iter().filter(|f| f.kind != "directory") {
      count += 1;
      total += f.size as u64;
      if f.path == rel {
        existing = Some(f.size as u64);
      }
    }
    let (count_after, total_after) = match existing {
      Some(old) => (count, total - old + size),
      None => (count + 1, total + size),
    };
    if let Some(max) = limits.max_total_files {
      if count_after > max {
        return Err(SandboxError::new(
          ErrorCode::QuotaExceeded,
          format!("writing {path} would make {count_after} files in the workspace, over limits.maxTotalFiles ({max}); delete files or raise the limit (MAX_TOTAL_FILES)"),
        ));
      }
    }
    if let Some(max) = limits.max_workspace_size_mb {
      if total_after as f64 > max * MB {
        return Err(SandboxError::new(
          ErrorCode::QuotaExceeded,
          format!(
            "writing {path} ({size} bytes) would make the workspace {total_after} bytes, over limits.maxWorkspaceSizeMB ({max} MB = {} bytes); delete files or raise the limit (MAX_WORKSPACE_SIZE_MB)",
            (max * MB) as u64
          ),
        ));
      }
    }
    Ok(())
  }

  pub async fn read_file(&self, path: &str) -> FileOp {
    let _busy = match self.enter().await {
      Ok(b) => b,
      Err(e) => return self.file_failure(path, e),
    };
    self.backend().read_file(path).await
  }

  /// At most `max` bytes of a file: the whole file when it is no larger, else its first `max`
  /// bytes. For internal readers, which ask for what they can use (the agent's Read tool asks
  /// for what it shows plus one byte, to know the file was cut), so a huge file in a hostile
  /// sandbox never lands in host memory.
  /// `max` is at most [`MAX_READ_BYTES`] + 1.
  pub async fn read_file_max(&self, path: &str, max: usize) -> FileOp {
    let _busy = match self.enter().await {
      Ok(b) => b,
      Err(e) => return self.file_failure(path, e),
    };
    let max = max.min(MAX_READ_BYTES + 1);
    self.backend().read_file_max(path, max).await
  }

  pub async fn delete_file(&self, path: &str, recursive: bool) -> FileOp {
    let _busy = match self.enter().await {
      Ok(b) => b,
      Err(e) => return self.file_failure(path, e),
    };
    self.backend().delete_file(path, recursive).await
  }

  pub async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    let _busy = self.enter().await?;
    self.backend().list_files(path, all).await
  }

  pub async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<FileInfo>> {
    let _busy = self.enter().await?;
    self.backend().list_files_detailed(path, recursive, all).await
  }

  /// Names in `path`, or with `recursive` the relative paths of its whole tree.
  pub async fn list_paths(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<String>> {
    self.backend().list_paths(path, recursive, all).await
  }

  pub async fn stats(&self) -> Result<Stats> {
    self.backend().stats().await
  }

  pub async fn health(&self) -> Health {
    self.backend().health().await
  }

  /// Kill every process started in the sandbox.
  pub async fn kill_all(&self) -> Result<()> {
    self.background.lock().unwrap().clear();
    self.contexts.clear();
    self.backend().kill_all().await
  }

  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    self.backend().processes().await
  }

  /// Saves the sandbox's filesystem as a snapshot (README "Snapshots"); the provider decides how.
  pub async fn snapshot(&self, name: Option<String>) -> Result<crate::core::snapshot::SnapshotInfo> {
    if let Some(n) = &name {
      crate::core::snapshot::validate_name(n, "snapshot name")?;
    }
    let _busy = self.enter().await?;
    let info = self.backend().snapshot(name).await?;
    self.logs.info(Source::System, format!("Snapshot {} saved (image {})", info.name, info.image));
    Ok(info)
  }

  /// Back to a clean sandbox for the next user of a pool: processes killed, workspace and /tmp emptied.
  pub async fn reset(&self) -> Result<()> {
    self.background.lock().unwrap().clear();
    self.contexts.clear();
    self.backend().reset().await
  }
}

/// The argv and options that install `packages` with the template's package manager (pip into
/// `<workdir>/.packages/python`, npm into the workdir), or why they cannot be installed.
pub fn installer(config: &SandboxConfig, packages: &[String]) -> Result<(Vec<String>, ExecOptions)> {
  let wd = &config.workdir;
  let (argv, env) = match config.package_manager {
    Some(crate::core::templates::PackageManager::Pip) => {
      let mut argv: Vec<String> = ["python3", "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-warn-script-location", "--target"]
        .iter()
        .map(|s| s.to_string())
        .collect();
      argv.push(format!("{}/{}", wd.trim_end_matches('/'), crate::core::config::PIP_TARGET));
      argv.extend(packages.iter().cloned());
      (argv, [("PIP_NO_CACHE_DIR", "1"), ("HOME", "/tmp")])
    }
    Some(crate::core::templates::PackageManager::Npm) => {
      let mut argv: Vec<String> =
        ["npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"].iter().map(|s| s.to_string()).collect();
      argv.extend(packages.iter().cloned());
      (argv, [("npm_config_cache", "/tmp/.npm"), ("HOME", "/tmp")])
    }
    // `config::check_install` rejects the other cases
    _ => return Err(SandboxError::invalid_config("installPackages needs a pip or npm template")),
  };
  let opts = ExecOptions { env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() };
  Ok((argv, opts))
}

/// The last part of a failed command's output, for an error message.
fn tail(r: &ExecResult) -> String {
  let text = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
  let t = text.trim();
  let mut start = t.len().saturating_sub(1500);
  while !t.is_char_boundary(start) {
    start += 1;
  }
  if t.is_empty() { "(no output)".into() } else { t[start..].to_string() }
}

/// "30 min", "1.5 s": a duration for messages.
pub fn human(d: Duration) -> String {
  let s = d.as_secs_f64();
  if s >= 60.0 {
    format!("{} min", (s / 60.0 * 100.0).round() / 100.0)
  } else {
    format!("{} s", (s * 100.0).round() / 100.0)
  }
}

/// Network decisions as log entries (`source: 'network'`): allowed ones at info, denied and
/// failed ones at warn.
fn network_log(logs: &Arc<LogBuffer>) -> crate::core::provider::NetworkLog {
  let logs = Arc::downgrade(logs);
  Arc::new(move |e: crate::core::provider::NetworkEvent| {
    let Some(logs) = logs.upgrade() else { return };
    if e.proto == "gateway" {
      // about the gateway itself: it stopped, or decisions went unlogged
      let level = if e.allow { Level::Warn } else { Level::Error };
      logs.push(level, Source::Network, e.reason.unwrap_or(e.rule));
      return;
    }
    let to = match &e.ip {
      Some(ip) if *ip != e.dest => format!("{}:{} ({ip})", e.dest, e.port),
      _ => format!("{}:{}", e.dest, e.port),
    };
    let (level, verb) = if e.allow { (Level::Info, "allowed") } else { (Level::Warn, "denied") };
    let why = e.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    logs.push(level, Source::Network, format!("{} {to} {verb} by {}{why}", e.proto, e.rule));
  })
}
