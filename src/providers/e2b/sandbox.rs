//! One E2B sandbox: lifecycle over the control plane, stats, health and the process table over
//! envd. Processes are in `process.rs`, files in `files.rs`.
//!
//! Lifecycle: `start()` creates the sandbox (`POST /v2/sandboxes`, falling back to the older
//! `POST /sandboxes` when the API answers 404), or after `stop()` resumes it (`POST
//! /v2/sandboxes/{id}/connect`). `stop()` kills the processes started through envd and pauses
//! the sandbox (`POST /sandboxes/{id}/pause`); `destroy()` kills it (`DELETE /sandboxes/{id}`).
//!
//! Lifetime: E2B kills a sandbox `limits.timeoutSeconds` after the last lifetime update. While
//! the sandbox is used it is extended: after every call (and on every output or keepalive event
//! of a running process), when more than 30 s (or half the lifetime, if shorter) passed since the
//! last update, `POST /sandboxes/{id}/timeout {"timeout": timeoutSeconds}` is sent in the
//! background. An idle sandbox therefore ends `timeoutSeconds` after its last use.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use super::client::{api_error, quoted_message, transport_rpc, Client, Remote, Retry};
use super::connect::{int_of, RpcError};
use super::options::E2bOptions;
use crate::core::config::{NetworkPolicy, SandboxConfig, DEFAULT_WORKDIR};
use crate::core::error::{ErrorCode, Result, SandboxError};
use crate::providers::docker::protocol::ProcessEntry;
use crate::core::types::{Health, State, Stats};

/// Where E2B's default user works (its home); used when the config keeps the default workdir,
/// because E2B sandboxes have no `/workspace` and that user cannot create directories at `/`.
pub const E2B_HOME: &str = "/home/user";
const REFRESH_EVERY: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a sandbox shares with its process tasks and lifetime refreshes.
pub(super) struct Shared {
  pub client: Client,
  pub remote: Mutex<Option<Arc<Remote>>>,
  /// running: lifetime refreshes are allowed
  active: AtomicBool,
  /// (time of the last refresh or of the start, a refresh is in flight)
  refresh: Mutex<(Instant, bool)>,
  refresh_every: Mutex<Duration>,
  /// `limits.timeoutSeconds` as E2B's whole-second lifetime
  pub lifetime_secs: u64,
}

impl Shared {
  /// Extend the sandbox's lifetime in the background when the last update is older than the
  /// refresh interval (debounced: at most one request in flight).
  pub fn touch(self: &Arc<Self>) {
    if !self.active.load(Ordering::SeqCst) {
      return;
    }
    let Some(remote) = self.remote.lock().unwrap().clone() else { return };
    let every = *self.refresh_every.lock().unwrap();
    {
      let mut r = self.refresh.lock().unwrap();
      if r.1 || r.0.elapsed() < every {
        return;
      }
      *r = (Instant::now(), true);
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
      self.refresh.lock().unwrap().1 = false;
      return;
    };
    let me = self.clone();
    rt.spawn(async move {
      let body = json!({ "timeout": me.lifetime_secs });
      let path = format!("/sandboxes/{}/timeout", remote.sandbox_id);
      match me.client.api(Method::POST, &path, Some(&body), Retry::Idempotent).await {
        Ok(ex) if (200..300).contains(&ex.status) => tracing::debug!(sandbox = %remote.sandbox_id, secs = me.lifetime_secs, "e2b lifetime extended"),
        r => tracing::warn!(sandbox = %remote.sandbox_id, error = %api_error(&me.client.opts, "extend the lifetime", r.as_ref()), "e2b lifetime refresh failed"),
      }
      me.refresh.lock().unwrap().1 = false;
    });
  }

  fn activate(&self, on: bool) {
    self.active.store(on, Ordering::SeqCst);
    if on {
      *self.refresh.lock().unwrap() = (Instant::now(), false);
    }
  }
}

pub struct E2bSandbox {
  /// ours: `e2b-` + 16 hex digits (E2B's own id is `remote_id()`)
  pub id: String,
  pub config: SandboxConfig,
  pub(super) opts: Arc<E2bOptions>,
  /// `Err` only when the HTTP client could not be set up (reported by `start()`)
  pub(super) shared: std::result::Result<Arc<Shared>, SandboxError>,
  state: Mutex<State>,
  lifecycle: tokio::sync::Mutex<()>,
  /// what the template put in the workdir and /tmp (`dir/name`), which `reset()` keeps
  baseline: Mutex<HashSet<String>>,
  /// the egress rules as the user gave them: `config.network`, then the last `update_network`
  /// (a new E2B sandbox made by a later `start()` gets these)
  network: Mutex<Option<NetworkPolicy>>,
}

impl std::fmt::Debug for E2bSandbox {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("E2bSandbox").field("id", &self.id).field("state", &self.state()).field("remote_id", &self.remote_id()).finish()
  }
}

fn new_id() -> String {
  let bytes: [u8; 8] = rand::random();
  format!("e2b-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn not_running_message(id: &str, state: State) -> String {
  match state {
    State::Destroyed => format!("Sandbox {id} not running: it was destroyed; create a new sandbox"),
    State::Starting => format!("Sandbox {id} not running yet (state: starting); await start() first"),
    State::Error => format!(
      "Sandbox {id} not running (state: error: its start failed or the E2B sandbox was lost); call start() to create a new E2B sandbox (the files are lost) or destroy it"
    ),
    s => format!("Sandbox {id} not running (state: {}); call start() first", s.as_str()),
  }
}

/// `config.metadata` as E2B's string → string map (non-string values as JSON text).
fn metadata_strings(m: Option<&Value>) -> Map<String, Value> {
  match m {
    Some(Value::Object(o)) => o
      .iter()
      .filter(|(_, v)| !v.is_null())
      .map(|(k, v)| (k.clone(), Value::String(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))))
      .collect(),
    Some(Value::Null) | None => Map::new(),
    Some(_) => {
      tracing::warn!("metadata is not an object; E2B gets none");
      Map::new()
    }
  }
}

fn mb(bytes: f64) -> f64 {
  (bytes / (1024.0 * 1024.0) * 100.0).round() / 100.0
}

impl E2bSandbox {
  pub fn new(config: SandboxConfig, opts: E2bOptions) -> Self {
    let opts = Arc::new(opts);
    let lifetime_secs = config.limits.timeout_seconds.ceil().clamp(1.0, i32::MAX as f64) as u64;
    let shared = Client::new(opts.clone()).map(|client| {
      Arc::new(Shared {
        client,
        remote: Mutex::new(None),
        active: AtomicBool::new(false),
        refresh: Mutex::new((Instant::now(), false)),
        refresh_every: Mutex::new(REFRESH_EVERY.min(Duration::from_secs(lifetime_secs / 2).max(Duration::from_secs(1)))),
        lifetime_secs,
      })
    });
    Self {
      id: new_id(),
      network: Mutex::new(config.network.clone()),
      config,
      opts,
      shared,
      state: Mutex::new(State::Created),
      lifecycle: tokio::sync::Mutex::new(()),
      baseline: Mutex::new(HashSet::new()),
    }
  }

  pub fn state(&self) -> State {
    *self.state.lock().unwrap()
  }

  fn set_state(&self, s: State) {
    tracing::debug!(sandbox = %self.id, state = s.as_str(), "state");
    *self.state.lock().unwrap() = s;
  }

  /// E2B's sandboxID once started.
  pub fn remote_id(&self) -> Option<String> {
    let shared = self.shared.as_ref().ok()?;
    let remote = shared.remote.lock().unwrap();
    remote.as_ref().map(|r| r.sandbox_id.clone())
  }

  /// The working directory: `/home/user` (E2B's default user's home) when the config keeps the
  /// default `/workspace`, which E2B sandboxes do not have; otherwise `config.workdir`, created
  /// by `start()`.
  pub fn workdir(&self) -> String {
    if self.config.workdir == DEFAULT_WORKDIR {
      E2B_HOME.to_string()
    } else {
      self.config.workdir.clone()
    }
  }

  /// A file path of the API, resolved inside the sandbox: relative to `workdir()`, and, when
  /// `/workspace` is mapped to `/home/user`, absolute `/workspace/...` paths (as the user guide
  /// writes them) mapped along, so they name the same files as on Docker.
  pub fn resolve_path(&self, path: &str) -> Result<String> {
    let full = crate::core::paths::resolve(&self.workdir(), path)?;
    if self.config.workdir == DEFAULT_WORKDIR {
      if full == DEFAULT_WORKDIR {
        return Ok(E2B_HOME.to_string());
      }
      if let Some(rest) = full.strip_prefix(&format!("{DEFAULT_WORKDIR}/")) {
        return Ok(format!("{E2B_HOME}/{rest}"));
      }
    }
    Ok(full)
  }

  pub(super) fn shared(&self) -> Result<Arc<Shared>> {
    self.shared.clone()
  }

  /// The envd endpoint of a running sandbox, or SANDBOX_NOT_RUNNING.
  pub(super) fn running(&self) -> Result<(Arc<Shared>, Arc<Remote>)> {
    let state = self.state();
    if state != State::Running {
      return Err(SandboxError::new(ErrorCode::SandboxNotRunning, not_running_message(&self.id, state)));
    }
    let shared = self.shared()?;
    let remote = shared.remote.lock().unwrap().clone();
    match remote {
      Some(r) => Ok((shared, r)),
      None => Err(SandboxError::new(ErrorCode::SandboxNotRunning, format!("sandbox {} has no E2B sandbox", self.id))),
    }
  }

  pub(super) fn touch(&self) {
    if let Ok(s) = &self.shared {
      s.touch();
    }
  }

  /// An envd call failed; when E2B says the sandbox is gone, the state becomes `error`.
  pub(super) fn rpc_failed(&self, e: &RpcError, what: &str) -> SandboxError {
    let err = e.to_error(what);
    if e.sandbox_gone() {
      self.lost();
    }
    err
  }

  fn lost(&self) {
    if self.state() == State::Running {
      tracing::warn!(sandbox = %self.id, remote = ?self.remote_id(), "the E2B sandbox is gone");
      self.set_state(State::Error);
      if let Ok(s) = &self.shared {
        s.activate(false);
      }
    }
  }

  #[cfg(test)]
  pub(super) fn set_refresh_every(&self, every: Duration) {
    if let Ok(s) = &self.shared {
      *s.refresh_every.lock().unwrap() = every;
    }
  }

  #[cfg(test)]
  pub(super) fn set_backoff_base(&mut self, base: Duration) {
    if let Ok(s) = &mut self.shared {
      if let Some(s) = Arc::get_mut(s) {
        s.client.backoff_base = base;
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /// Create the E2B sandbox, or resume it after `stop()`. A failed start kills whatever it
  /// created and leaves the state `error`; `start()` may be called again.
  pub async fn start(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    let shared = self.shared()?;
    let state = self.state();
    match state {
      State::Running => return Ok(()),
      State::Destroyed => {
        return Err(SandboxError::new(ErrorCode::SandboxDestroyed, format!("sandbox {} was destroyed; create a new one", self.id)))
      }
      State::Stopped => return self.resume(&shared).await,
      _ => {}
    }
    // what E2B cannot express is refused before anything is sent (the state stays as it was)
    let policy = self.network.lock().unwrap().clone();
    let network = super::network::create_fields(self.config.network_mode, policy.as_ref())?;
    if state == State::Error {
      // whatever is left of the previous E2B sandbox goes; this start begins afresh
      if let Err(e) = self.kill_remote(&shared).await {
        tracing::warn!(sandbox = %self.id, error = %e, "could not kill the previous E2B sandbox");
      }
    }
    self.set_state(State::Starting);
    match self.create(&shared, network).await {
      Ok(()) => {
        shared.activate(true);
        self.set_state(State::Running);
        Ok(())
      }
      Err(e) => {
        if let Err(ke) = self.kill_remote(&shared).await {
          tracing::warn!(sandbox = %self.id, error = %ke, "rollback after failed start incomplete");
        }
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  /// `network`: the `allow_internet_access` / `network` fields (see `network.rs`).
  async fn create(&self, shared: &Arc<Shared>, network: Map<String, Value>) -> Result<()> {
    let mut body = json!({
      "templateID": self.opts.template_id,
      "timeout": shared.lifetime_secs,
      "metadata": metadata_strings(self.config.metadata.as_ref()),
      "envVars": self.config.env,
      "secure": true,
    });
    let has_network = !network.is_empty();
    if let Value::Object(b) = &mut body {
      b.extend(network);
    }
    let what = format!("create an E2B sandbox from template '{}'", self.opts.template_id);
    let mut r = shared.client.api(Method::POST, "/v2/sandboxes", Some(&body), Retry::Create).await;
    if matches!(&r, Ok(ex) if ex.status == 404 || ex.status == 405) {
      // an API without the v2 route (older deployments, some fakes)
      r = shared.client.api(Method::POST, "/sandboxes", Some(&body), Retry::Create).await;
    }
    let ex = match &r {
      Ok(ex) if (200..300).contains(&ex.status) => ex,
      Ok(ex) if ex.status == 404 => {
        return Err(SandboxError::invalid_config(format!(
          "{what}: E2B has no such template (404): {}; check e2b.templateId / E2B_TEMPLATE_ID",
          quoted_message(&ex.body)
        )))
      }
      Ok(ex) if ex.status == 400 => {
        return Err(SandboxError::invalid_config(format!(
          "{}; check limits.timeoutSeconds (E2B's longest lifetime is 1 h on Hobby, 24 h on Pro), metadata and env{}",
          api_error(&self.opts, &what, r.as_ref()).message,
          if has_network { ", and network / networkMode" } else { "" }
        )))
      }
      _ => return Err(api_error(&self.opts, &what, r.as_ref())),
    };
    let v: Value = serde_json::from_slice(&ex.body).map_err(|e| SandboxError::provider(format!("{what}: E2B answered with a body that is not JSON ({e})")))?;
    let remote = Arc::new(Remote::from_sandbox(&v, &self.opts)?);
    tracing::debug!(sandbox = %self.id, remote = %remote.sandbox_id, envd = %remote.envd_url, "e2b sandbox created");
    *shared.remote.lock().unwrap() = Some(remote.clone());
    super::record(&self.id, Some(super::KillTarget::new(&self.opts, &remote.sandbox_id)));
    let workdir = self.workdir();
    if workdir != E2B_HOME {
      match shared.client.unary(&remote, "filesystem.Filesystem/MakeDir", &json!({ "path": workdir }), Retry::Once).await {
        Ok(_) => {}
        Err(e) if e.code == "already_exists" => {}
        Err(e) => {
          return Err(SandboxError::invalid_config(format!(
            "workdir '{workdir}' cannot be created in the E2B sandbox ({}: \"{}\"); E2B's default user can write under {E2B_HOME} and /tmp: \
             set workdir to a path there, or leave it at the default (which maps to {E2B_HOME})",
            e.code, e.message
          )))
        }
      }
    }
    // the template's own files in the workdir and /tmp (dotfiles in /home/user) survive reset()
    let dirs = [workdir, "/tmp".to_string()];
    let bodies: Vec<Value> = dirs.iter().map(|d| json!({ "path": d, "depth": 1 })).collect();
    let lists = bodies.iter().map(|b| shared.client.unary(&remote, "filesystem.Filesystem/ListDir", b, Retry::Idempotent));
    let mut baseline = HashSet::new();
    for (dir, r) in dirs.iter().zip(futures_util::future::join_all(lists).await) {
      for e in r.ok().as_ref().and_then(|v| v["entries"].as_array()).map(Vec::as_slice).unwrap_or_default() {
        if let Some(name) = e["name"].as_str() {
          baseline.insert(format!("{}/{name}", dir.trim_end_matches('/')));
        }
      }
    }
    *self.baseline.lock().unwrap() = baseline;
    Ok(())
  }

  async fn resume(&self, shared: &Arc<Shared>) -> Result<()> {
    let Some(remote) = shared.remote.lock().unwrap().clone() else {
      return Err(SandboxError::provider("stopped sandbox has no E2B sandbox"));
    };
    self.set_state(State::Starting);
    let body = json!({ "timeout": shared.lifetime_secs });
    let what = format!("resume E2B sandbox {}", remote.sandbox_id);
    let mut r = shared.client.api(Method::POST, &format!("/v2/sandboxes/{}/connect", remote.sandbox_id), Some(&body), Retry::Idempotent).await;
    if matches!(&r, Ok(ex) if ex.status == 404 || ex.status == 405) {
      r = shared.client.api(Method::POST, &format!("/sandboxes/{}/connect", remote.sandbox_id), Some(&body), Retry::Idempotent).await;
    }
    let fresh = match &r {
      Ok(ex) if (200..300).contains(&ex.status) => serde_json::from_slice::<Value>(&ex.body)
        .map_err(|e| SandboxError::provider(format!("{what}: E2B answered with a body that is not JSON ({e})")))
        .and_then(|v| Remote::from_sandbox(&v, &self.opts)),
      _ => Err(api_error(&self.opts, &what, r.as_ref())),
    };
    match fresh {
      Ok(fresh) => {
        *shared.remote.lock().unwrap() = Some(Arc::new(fresh));
        shared.activate(true);
        self.set_state(State::Running);
        Ok(())
      }
      Err(e) => {
        self.set_state(State::Error);
        Err(e)
      }
    }
  }

  /// Kill every process and pause the sandbox. No-op unless running.
  pub async fn stop(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    if self.state() != State::Running {
      return Ok(());
    }
    let (shared, remote) = self.running()?;
    // no lifetime refresh may race the pause
    shared.activate(false);
    if let Err(e) = self.kill_all().await {
      tracing::warn!(sandbox = %self.id, error = %e, "could not end the sandbox's processes before pausing");
    }
    self.set_state(State::Stopping);
    let r = shared.client.api(Method::POST, &format!("/sandboxes/{}/pause", remote.sandbox_id), Some(&json!({})), Retry::Idempotent).await;
    match &r {
      // 409: already paused
      Ok(ex) if (200..300).contains(&ex.status) || ex.status == 409 => {
        self.set_state(State::Stopped);
        Ok(())
      }
      _ => {
        self.set_state(State::Error);
        Err(api_error(&self.opts, &format!("stop (pause) E2B sandbox {}", remote.sandbox_id), r.as_ref()))
      }
    }
  }

  /// DELETE the E2B sandbox (404 = already gone) and forget it.
  async fn kill_remote(&self, shared: &Arc<Shared>) -> Result<()> {
    shared.activate(false);
    let Some(remote) = shared.remote.lock().unwrap().clone() else { return Ok(()) };
    let r = shared.client.api(Method::DELETE, &format!("/sandboxes/{}", remote.sandbox_id), None, Retry::Idempotent).await;
    match &r {
      Ok(ex) if (200..300).contains(&ex.status) || ex.status == 404 => {
        shared.remote.lock().unwrap().take();
        super::record(&self.id, None);
        Ok(())
      }
      _ => Err(api_error(&self.opts, &format!("kill E2B sandbox {}", remote.sandbox_id), r.as_ref())),
    }
  }

  /// Kill the E2B sandbox. State `destroyed` even when the kill fails (the exit hook retries it).
  pub async fn destroy(&self) -> Result<()> {
    let _guard = self.lifecycle.lock().await;
    self.set_state(State::Destroyed);
    match &self.shared {
      Ok(shared) => self.kill_remote(shared).await,
      Err(_) => Ok(()),
    }
  }

  // ---------------------------------------------------------------- processes

  /// envd's process table: every process started through this sandbox's envd that still runs.
  /// envd does not report parents, states or memory: `ppid` and `rss_kb` are 0, `state` "running".
  pub async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    let (shared, remote) = self.running()?;
    let v = shared.client.unary(&remote, "process.Process/List", &json!({}), Retry::Idempotent).await.map_err(|e| self.rpc_failed(&e, "list processes"))?;
    self.touch();
    let mut out: Vec<ProcessEntry> = v["processes"]
      .as_array()
      .map(Vec::as_slice)
      .unwrap_or_default()
      .iter()
      .filter_map(|p| {
        let pid = int_of(p.get("pid")).and_then(|n| u32::try_from(n).ok())?;
        let mut cmdline = vec![p["config"]["cmd"].as_str().unwrap_or_default().to_string()];
        cmdline.extend(p["config"]["args"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(|a| a.as_str().unwrap_or_default().to_string()));
        Some(ProcessEntry { pid, ppid: 0, state: "running".into(), cmdline, request: None, rss_kb: 0 })
      })
      .collect();
    out.sort_by_key(|p| p.pid);
    Ok(out)
  }

  /// SIGKILL every process envd lists (everything started through this sandbox's envd).
  pub async fn kill_all(&self) -> Result<()> {
    let (shared, remote) = self.running()?;
    let pids: Vec<u32> = self.processes().await?.into_iter().map(|p| p.pid).collect();
    let kills = pids.iter().map(|pid| super::process::send_signal(&shared, &remote, *pid, 9));
    for (pid, r) in pids.iter().zip(futures_util::future::join_all(kills).await) {
      if let Err(e) = r {
        if e.code != "not_found" {
          return Err(self.rpc_failed(&e, &format!("kill process {pid}")));
        }
      }
    }
    // wait (up to 3 s) until envd no longer lists them: their streams then carry their end
    // events, so a pause right after (stop) does not cut them and nothing is reported as lost
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !pids.is_empty() && std::time::Instant::now() < deadline {
      match self.processes().await {
        Ok(left) if left.iter().all(|p| !pids.contains(&p.pid)) => break,
        Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        Err(_) => break,
      }
    }
    Ok(())
  }

  /// Back to a clean sandbox for the next user of a pool: processes killed, workdir and /tmp
  /// emptied of everything but what the template itself put there at start (such as the
  /// dotfiles in /home/user; their contents are not restored).
  pub async fn reset(&self) -> Result<()> {
    self.kill_all().await?;
    for dir in [self.workdir(), "/tmp".to_string()] {
      for name in self.list_files(&dir, true).await.unwrap_or_default() {
        let path = format!("{}/{name}", dir.trim_end_matches('/'));
        if self.baseline.lock().unwrap().contains(&path) {
          continue;
        }
        let op = self.delete_file(&path, true).await;
        if !op.success {
          return Err(SandboxError::new(ErrorCode::ExecutionError, format!("reset could not clear {dir}/{name}: {}", op.error.unwrap_or_default())));
        }
      }
    }
    Ok(())
  }

  // ---------------------------------------------------------------- network

  /// Replace the egress rules of the running sandbox (`PUT /sandboxes/{id}/network`, the whole
  /// config: E2B clears what the body leaves out). Refused before any request when E2B cannot
  /// express the rules or the sandbox has `networkMode: 'none'`.
  pub async fn update_network(&self, policy: NetworkPolicy) -> Result<()> {
    let body = super::network::update_body(self.config.network_mode, &policy)?;
    let (shared, remote) = self.running()?;
    let what = format!("update the network rules of E2B sandbox {}", remote.sandbox_id);
    let r = shared.client.api(Method::PUT, &format!("/sandboxes/{}/network", remote.sandbox_id), Some(&body), Retry::Idempotent).await;
    match &r {
      Ok(ex) if (200..300).contains(&ex.status) => {
        *self.network.lock().unwrap() = Some(policy);
        self.touch();
        Ok(())
      }
      Ok(ex) if ex.status == 404 => {
        self.lost();
        Err(api_error(&self.opts, &what, r.as_ref()))
      }
      Ok(ex) if ex.status == 400 || ex.status == 422 => Err(SandboxError::invalid_config(format!(
        "{what}: E2B refused the rules ({}): {}",
        ex.status,
        quoted_message(&ex.body)
      ))),
      _ => Err(api_error(&self.opts, &what, r.as_ref())),
    }
  }

  /// The rules as given (`config.network` or the last update); E2B reports no counters and
  /// there is no gateway of ours.
  pub fn network_status(&self) -> Option<crate::core::provider::NetworkStatus> {
    let policy = self.network.lock().unwrap().clone()?;
    Some(crate::core::provider::NetworkStatus { policy, gateway: None, allowed: 0, denied: 0 })
  }

  // ---------------------------------------------------------------- stats and health

  /// The latest sample of `GET /sandboxes/{id}/metrics`, or envd's `GET /metrics` when the API
  /// has none yet (right after a start). `cpuPercent` is of one core (E2B's percentage of the
  /// whole VM × its CPU count), `diskUsageMB` the VM's root filesystem; E2B reports no network
  /// counters (0).
  pub async fn stats(&self) -> Result<Stats> {
    let (shared, remote) = self.running()?;
    self.touch();
    let what = format!("read the metrics of E2B sandbox {}", remote.sandbox_id);
    let r = shared.client.api(Method::GET, &format!("/sandboxes/{}/metrics", remote.sandbox_id), None, Retry::Idempotent).await;
    let api_err = match &r {
      Ok(ex) if (200..300).contains(&ex.status) => {
        let v: Value = serde_json::from_slice(&ex.body).unwrap_or(Value::Null);
        let latest = v.as_array().and_then(|a| a.iter().max_by_key(|m| int_of(m.get("timestampUnix")).unwrap_or(0)));
        if let Some(m) = latest {
          return Ok(stats_from(m, "cpuCount", "cpuUsedPct", "memUsed", "diskUsed"));
        }
        None
      }
      Ok(ex) if ex.status == 404 => {
        self.lost();
        return Err(api_error(&self.opts, &what, r.as_ref()));
      }
      _ => Some(api_error(&self.opts, &what, r.as_ref())),
    };
    let url = shared.client.envd_url(&remote, "metrics").map_err(|e| e.to_error(&what))?;
    let build = || shared.client.envd(&remote, Method::GET, url.clone()).timeout(self.opts.request_timeout);
    let envd = shared.client.exchange("GET envd /metrics", Retry::Idempotent, 1 << 20, &build).await;
    match envd {
      Ok(ex) if ex.status == 200 => {
        let v: Value = serde_json::from_slice(&ex.body).map_err(|e| SandboxError::provider(format!("{what}: envd's /metrics is not JSON ({e})")))?;
        Ok(stats_from(&v, "cpu_count", "cpu_used_pct", "mem_used", "disk_used"))
      }
      Ok(ex) => Err(api_err.unwrap_or_else(|| self.rpc_failed(&RpcError::from_response(ex.status, &ex.body), &what))),
      Err(t) => Err(api_err.unwrap_or_else(|| self.rpc_failed(&transport_rpc(t), &what))),
    }
  }

  /// envd's `GET /health` (204 = healthy) within 5 s.
  pub async fn health(&self) -> Health {
    let (shared, remote) = match self.running() {
      Ok(x) => x,
      Err(_) => return Health { healthy: false, message: Some(format!("Sandbox not running (state: {})", self.state().as_str())) },
    };
    let started = Instant::now();
    let url = match Url::parse(&format!("{}/health", remote.envd_url)) {
      Ok(u) => u,
      Err(e) => return Health { healthy: false, message: Some(format!("bad envd URL: {e}")) },
    };
    let build = || shared.client.envd(&remote, Method::GET, url.clone()).timeout(HEALTH_TIMEOUT);
    let r = shared.client.exchange("GET envd /health", Retry::Once, 64 * 1024, &build).await;
    self.touch();
    match r {
      Ok(ex) if (200..300).contains(&ex.status) => Health { healthy: true, message: Some(format!("responded in {} ms", started.elapsed().as_millis())) },
      Ok(ex) => Health { healthy: false, message: Some(RpcError::from_response(ex.status, &ex.body).to_error("health check").message) },
      Err(t) if t.timed_out => Health { healthy: false, message: Some("no answer within 5 s".into()) },
      Err(t) => Health { healthy: false, message: Some(format!("envd unreachable: {}", t.message)) },
    }
  }
}

fn stats_from(m: &Value, cpu_count: &str, cpu_pct: &str, mem: &str, disk: &str) -> Stats {
  let num = |k: &str| m.get(k).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0.0);
  let cpu = num(cpu_pct) * num(cpu_count).max(1.0);
  Stats {
    memory_usage_mb: mb(num(mem)),
    cpu_percent: (cpu * 100.0).round() / 100.0,
    disk_usage_mb: mb(num(disk)),
    network_rx_mb: 0.0,
    network_tx_mb: 0.0,
  }
}

#[async_trait::async_trait]
impl crate::core::provider::Provider for E2bSandbox {
  fn id(&self) -> &str {
    &self.id
  }
  fn config(&self) -> &SandboxConfig {
    &self.config
  }
  fn state(&self) -> State {
    E2bSandbox::state(self)
  }
  fn engine_name(&self) -> String {
    "e2b".to_string()
  }
  /// E2B reports no start progress.
  async fn start(&self, _progress: Option<crate::core::provider::ProgressFn>) -> Result<()> {
    E2bSandbox::start(self).await
  }
  async fn stop(&self) -> Result<()> {
    E2bSandbox::stop(self).await
  }
  async fn destroy(&self) -> Result<()> {
    E2bSandbox::destroy(self).await
  }
  async fn force_remove(&self) -> Result<bool> {
    super::force_kill(&self.id).await
  }
  async fn spawn(
    &self,
    command: &str,
    args: &[String],
    opts: &crate::core::types::ExecOptions,
    background: bool,
    open_stdin: bool,
    sink: Option<crate::core::process::OutputSink>,
  ) -> Result<crate::core::process::Spawned> {
    E2bSandbox::spawn(self, command, args, opts, background, open_stdin, sink).await
  }
  async fn write_file(&self, path: &str, content: Vec<u8>) -> crate::core::types::FileOp {
    E2bSandbox::write_file(self, path, content).await
  }
  async fn read_file(&self, path: &str) -> crate::core::types::FileOp {
    E2bSandbox::read_file(self, path).await
  }
  async fn read_file_max(&self, path: &str, max: usize) -> crate::core::types::FileOp {
    E2bSandbox::read_file_max(self, path, max).await
  }
  async fn delete_file(&self, path: &str, recursive: bool) -> crate::core::types::FileOp {
    E2bSandbox::delete_file(self, path, recursive).await
  }
  async fn list_files(&self, path: &str, all: bool) -> Result<Vec<String>> {
    E2bSandbox::list_files(self, path, all).await
  }
  async fn list_files_detailed(&self, path: &str, recursive: bool, all: bool) -> Result<Vec<crate::core::types::FileInfo>> {
    E2bSandbox::list_files_detailed(self, path, recursive, all).await
  }
  async fn stats(&self) -> Result<Stats> {
    E2bSandbox::stats(self).await
  }
  async fn health(&self) -> Health {
    E2bSandbox::health(self).await
  }
  async fn kill_all(&self) -> Result<()> {
    E2bSandbox::kill_all(self).await
  }
  async fn processes(&self) -> Result<Vec<ProcessEntry>> {
    E2bSandbox::processes(self).await
  }
  async fn reset(&self) -> Result<()> {
    E2bSandbox::reset(self).await
  }
  async fn update_network(&self, policy: NetworkPolicy) -> Result<()> {
    E2bSandbox::update_network(self, policy).await
  }
  fn network_status(&self) -> Option<crate::core::provider::NetworkStatus> {
    E2bSandbox::network_status(self)
  }
  /// E2B's pause and resume keep one sandbox (its memory too) for later; they do not give a copy
  /// that new sandboxes start from, so snapshots are refused.
  async fn snapshot(&self, _name: Option<String>) -> Result<crate::core::snapshot::SnapshotInfo> {
    Err(crate::core::error::SandboxError::new(
      crate::core::error::ErrorCode::NotSupported,
      format!(
        "snapshot() is not supported by the e2b provider (sandbox {}): E2B's pause/resume keeps this one sandbox for later, it is not a copy new sandboxes can start from; to start sandboxes with prepared files use an E2B template (e2b.templateId), or take the snapshot on a docker sandbox",
        self.id
      ),
    ))
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn ids_are_e2b_16_hex() {
    let id = new_id();
    assert!(id.starts_with("e2b-"));
    assert_eq!(id.len(), 4 + 16);
    assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
  }

  #[test]
  fn metadata_becomes_strings() {
    let m = metadata_strings(Some(&json!({ "userId": "u1", "n": 3, "flag": true, "gone": null })));
    assert_eq!(Value::Object(m), json!({ "userId": "u1", "n": "3", "flag": "true" }));
    assert!(metadata_strings(Some(&json!([1]))).is_empty());
  }

  #[test]
  fn stats_come_from_api_or_envd_shapes() {
    let s = stats_from(&json!({"cpuCount":2,"cpuUsedPct":12.5,"memUsed":268435456,"diskUsed":"1048576","timestampUnix":1}), "cpuCount", "cpuUsedPct", "memUsed", "diskUsed");
    assert_eq!(s, Stats { memory_usage_mb: 256.0, cpu_percent: 25.0, disk_usage_mb: 1.0, network_rx_mb: 0.0, network_tx_mb: 0.0 });
    let s = stats_from(&json!({"cpu_count":1,"cpu_used_pct":3.0,"mem_used":1048576}), "cpu_count", "cpu_used_pct", "mem_used", "disk_used");
    assert_eq!((s.cpu_percent, s.memory_usage_mb, s.disk_usage_mb), (3.0, 1.0, 0.0));
  }

  #[test]
  fn workspace_paths_map_to_the_home_directory() {
    let opts = E2bOptions::resolve(Some(&json!({ "apiKey": "e2b_0123abcd" })), &|_| None).unwrap();
    let cfg = crate::core::config::resolve(&crate::core::config::defaults()).unwrap();
    let sb = E2bSandbox::new(cfg, opts.clone());
    assert_eq!(sb.resolve_path("a.txt").unwrap(), "/home/user/a.txt");
    assert_eq!(sb.resolve_path("/workspace/d/a.txt").unwrap(), "/home/user/d/a.txt");
    assert_eq!(sb.resolve_path("/workspace").unwrap(), "/home/user");
    assert_eq!(sb.resolve_path("/workspaces/x").unwrap(), "/workspaces/x");
    assert_eq!(sb.resolve_path("/tmp/x").unwrap(), "/tmp/x");
    let cfg = crate::core::config::resolve(&crate::core::config::merge(&crate::core::config::defaults(), &json!({ "workdir": "/srv/app" }))).unwrap();
    let sb = E2bSandbox::new(cfg, opts);
    assert_eq!(sb.resolve_path("a").unwrap(), "/srv/app/a");
    assert_eq!(sb.resolve_path("/workspace/a").unwrap(), "/workspace/a");
  }
}
